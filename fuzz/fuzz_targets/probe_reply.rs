//! Probe monitor replies: any frame is a reply for one of the targets or not, never a panic.
#![no_main]

use std::net::IpAddr;

use libfuzzer_sys::fuzz_target;
use xlagg_control::proto::probe;

fuzz_target!(|data: &[u8]| {
    let mac = probe::probe_mac([2, 0, 0, 0, 0, 1]);
    let targets: [IpAddr; 2] = [
        "10.77.0.2".parse().expect("v4"),
        "2001:db8:77::2".parse().expect("v6"),
    ];
    if let Some(t) = probe::reply_from(data, mac, &targets) {
        assert!(targets.contains(&t));
    }
    let _ = probe::reply_from(data, [0; 6], &[]);
});
