//! rc.conf import: any text imports or is refused line by line, never a panic; an import
//! that validates survives the TOML file.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xlagg_control::config::rcconf;
use xlagg_control::config::ConfigDoc;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(import) = rcconf::import(text) {
        if let Ok(config) = import.doc.validate() {
            let again = ConfigDoc::from_toml(&import.doc.to_toml()).expect("re-read");
            assert_eq!(again.validate().map(|c| c.laggs), Ok(config.laggs));
        }
    }
});
