//! Micro-BFD: any frame through the frame checks and any packet through a session in every
//! state never panics; a packet that parses emits back to itself.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use xlagg_control::proto::bfd::{self, Addresses, Packet, Session, State};
use xlagg_control::proto::time::Time;

const CFG: bfd::SessionConfig = bfd::SessionConfig {
    interval: Duration::from_millis(50),
    multiplier: 3,
};

fuzz_target!(|data: &[u8]| {
    for addresses in [
        Addresses {
            peer: [10, 0, 0, 1],
            local: [10, 0, 0, 2],
        },
        Addresses {
            peer: bfd::ANY_PEER,
            local: [0; 4],
        },
    ] {
        if let Ok((_, payload)) = bfd::payload(data, &addresses) {
            let _ = Packet::parse(payload);
        }
    }
    if let Ok(p) = Packet::parse(data) {
        assert_eq!(Packet::parse(&p.emit()), Ok(p));
    }
    // A session brought to each state, then fed the bytes as a packet.
    let mut a = Session::new(CFG, 11, Time::ZERO);
    let mut b = Session::new(CFG, 22, Time::ZERO);
    for ms in 0..3000u64 {
        let now = Time::from_millis(ms);
        if let Some(p) = a.poll_transmit(now) {
            let _ = b.handle(now, &p);
        }
        if let Some(p) = b.poll_transmit(now) {
            let _ = a.handle(now, &p);
        }
        if a.state() == State::Up && b.state() == State::Up {
            break;
        }
    }
    let now = Time::from_millis(4000);
    let was_up = a.is_up();
    let result = a.handle(now, data);
    let _ = a.tick(now + Duration::from_millis(10));
    let _ = a.poll_transmit(now + Duration::from_millis(10));
    // A packet without our discriminator never takes an up session down.
    if was_up {
        if let Ok(p) = Packet::parse(data) {
            if p.your_discr != 11 {
                assert!(result.is_err() || a.is_up(), "{p:?} took the session down");
            }
        }
    }
    assert!(a.detection_time() <= bfd::MAX_REMOTE_INTERVAL * 255);
});
