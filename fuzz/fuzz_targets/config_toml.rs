//! The TOML document: any text reads or is refused with messages, never a panic; what reads is
//! judged by the validator; writing and reading it back gives the same document.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xlagg_control::config::ConfigDoc;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match ConfigDoc::from_toml(text) {
        Ok(doc) => {
            let _ = doc.validate();
            let again = ConfigDoc::from_toml(&doc.to_toml()).expect("what was written reads");
            assert_eq!(again, doc);
        }
        Err(e) => assert!(!e.problems.is_empty()),
    }
});
