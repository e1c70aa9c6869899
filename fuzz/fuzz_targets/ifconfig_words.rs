//! ifconfig words: any words parse or are refused, never a panic; what parses applies to a
//! lagg or is refused; whatever document results is judged by the validator without a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xlagg_control::config::ifconfig;
use xlagg_control::config::ConfigDoc;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let words: Vec<String> = text.split_whitespace().map(String::from).collect();
    let Ok(ops) = ifconfig::parse(&words) else {
        return;
    };
    let mut doc = ConfigDoc::default();
    let _ = ifconfig::apply(&mut doc, "lagg0", &[ifconfig::Op::Create]);
    if ifconfig::apply(&mut doc, "lagg0", &ops).is_ok() {
        if let Ok(config) = doc.validate() {
            // What validates survives the file.
            let again = ConfigDoc::from_toml(&doc.to_toml()).expect("re-read");
            assert_eq!(again.validate().map(|c| c.laggs), Ok(config.laggs));
        }
    }
});
