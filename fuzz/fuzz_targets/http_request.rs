//! What the HTTP listener reads of a request before the control loop sees it: the Host
//! header, the query, the JSON bodies of the web form and of ifconfig words. Never a panic;
//! a form that reads names a lagg the validator can judge.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xlagg_control::config::ConfigDoc;
use xlagg_control::mgmt::http;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let names = vec!["xlagg.example.net".to_string()];
    let _ = http::host_allowed(&text, &names);
    if let Ok(dry_run) = http::parse_query(&text) {
        assert!(text.is_empty() || text.contains("dry_run") || !dry_run);
    }
    if let Ok((spec, options)) = http::form(&text) {
        let mut doc = ConfigDoc::default();
        let name = spec.name.clone();
        doc.laggs.push(spec);
        let _ = doc.validate();
        if let Ok(ops) = xlagg_control::config::ifconfig::parse(&options) {
            let _ = xlagg_control::config::ifconfig::apply(&mut doc, &name, &ops);
        }
    }
});
