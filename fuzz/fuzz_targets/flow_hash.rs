//! Flow hash (the one both engines share): any frame, any layer choice, never a panic, the
//! same value twice, and the fast path equal to the general one wherever it applies.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xlagg_common::hash;

fuzz_target!(|data: &[u8]| {
    let Some((&layers, frame)) = data.split_first() else {
        return;
    };
    let chosen = (layers & 7).max(hash::L2);
    let seed = u64::from(layers).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let a = hash::hash_frame(frame, chosen, seed);
    assert_eq!(a, hash::hash_frame(frame, chosen, seed));
    if frame.len() >= 38 && frame[12..15] == [0x08, 0x00, 0x45] {
        assert_eq!(a, hash::hash_general(frame, chosen, seed));
    }
});
