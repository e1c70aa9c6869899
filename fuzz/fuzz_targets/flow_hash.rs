//! Flow hash: any frame, any layer choice, never a panic, and the same value twice.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[allow(dead_code, unreachable_pub)]
#[path = "../../dataplane/src/flow.rs"]
mod flow;

fuzz_target!(|data: &[u8]| {
    let Some((&layers, frame)) = data.split_first() else {
        return;
    };
    let mut chosen = flow::HashLayers::L2;
    if layers & 2 != 0 {
        chosen = chosen.with(flow::HashLayers::L3);
    }
    if layers & 4 != 0 {
        chosen = chosen.with(flow::HashLayers::L4);
    }
    let a = flow::hash_frame(frame, chosen, u64::from(layers));
    assert_eq!(a, flow::hash_frame(frame, chosen, u64::from(layers)));
});
