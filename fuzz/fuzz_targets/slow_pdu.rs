//! Slow-protocol parser: any bytes give a PDU or an error, never a panic; whatever parses
//! re-emits to a frame that parses to the same PDU (as version 1).
#![no_main]

use libfuzzer_sys::fuzz_target;
use xlagg_control::proto::lacp::pdu;

fuzz_target!(|data: &[u8]| {
    match pdu::parse(data) {
        Ok(pdu::SlowPdu::Lacp(p)) => {
            let again = pdu::parse(&p.emit([2, 0, 0, 0, 0, 1]));
            assert_eq!(
                again,
                Ok(pdu::SlowPdu::Lacp(pdu::Lacpdu { version: 1, ..p }))
            );
        }
        Ok(pdu::SlowPdu::Marker(m)) => {
            assert_eq!(
                pdu::parse(&m.emit([2, 0, 0, 0, 0, 1])),
                Ok(pdu::SlowPdu::Marker(m))
            );
        }
        Err(_) => {}
    }
});
