//! The worker's frame path allocates nothing: a counting global allocator, a real worker on
//! real veths and AF_XDP sockets in a test-bed namespace, 3000 frames forwarded through
//! loadbalance, and not one allocation while it moves them. Needs root; fails otherwise.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use xlagg_dataplane::afxdp::{RingSizes, Umem};
use xlagg_dataplane::counters::WorkerCounters;
use xlagg_dataplane::distribution::{DistributionTable, TxPolicy};
use xlagg_dataplane::flow::HashLayers;
use xlagg_dataplane::worker::{self, Worker, WorkerLayout, ZeroCopy};

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards every call to the system allocator unchanged; only counts allocations.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

#[path = "support/bed.rs"]
mod bed;
use bed::{sender_and_ports, Bed};

#[path = "support/frames.rs"]
mod frames;

#[test]
fn the_worker_moves_3000_frames_without_a_single_allocation() {
    let bed = Bed::up(&format!("wa{}", std::process::id() % 100_000), 2);

    // The sender on xls0; the worker, built and stepped by this thread inside the appliance
    // namespace.
    let (sender, mut programs, ports) = sender_and_ports(&bed);
    let sizes = RingSizes::default();
    let umem = Umem::new(worker::default_frames(3, sizes)).expect("umem");
    let sockets =
        worker::open_sockets(&umem, &ports, 0, sizes, ZeroCopy::Off, false).expect("sockets");
    for (program, socket) in programs.iter_mut().zip(&sockets) {
        program.register_socket(0, socket).expect("xskmap");
        program.set_collecting(true).expect("state");
    }
    let table = DistributionTable::new(
        TxPolicy::Hash {
            layers: HashLayers::DEFAULT,
        },
        1,
    )
    .with_active(&[0, 1]);
    let counters = Arc::new(WorkerCounters::new(xlagg_dataplane::worker::SLOTS));
    let mut worker = Worker::new(
        umem,
        sockets,
        WorkerLayout {
            members: 2,
            queue: 0,
            learn: None,
            sizes,
            control: None,
            busy_poll: false,
            lost: None,
        },
        Arc::new(ArcSwap::from_pointee(table)),
        Arc::clone(&counters),
        Arc::new(AtomicBool::new(false)),
    );
    // Warm up: fill rings primed, first table load done.
    for _ in 0..10 {
        worker.step();
    }
    let frames: Vec<Vec<u8>> = (0..3000u16).map(frames::udp4).collect();
    for f in &frames {
        sender.send(f).expect("send");
    }
    let tx = || counters.port(0).totals().tx_packets + counters.port(1).totals().tx_packets;
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    let deadline = Instant::now() + Duration::from_secs(10);
    while tx() < 3000 && Instant::now() < deadline {
        worker.step();
    }
    let allocations = ALLOCATIONS.load(Ordering::Relaxed) - before;
    let moved = tx();
    assert_eq!(
        moved,
        3000,
        "every frame forwarded to a member (rx {})",
        counters
            .port(xlagg_dataplane::worker::UPPER_SLOT)
            .totals()
            .rx_packets
    );
    assert!(
        counters.port(0).totals().tx_packets > 0 && counters.port(1).totals().tx_packets > 0,
        "both members used"
    );
    assert_eq!(
        allocations, 0,
        "the worker allocated {allocations} times while moving {moved} frames"
    );
    // Let the last completions come back: then every frame is free or on a fill ring.
    for _ in 0..100 {
        worker.step();
    }
    worker
        .audit()
        .expect("every UMEM frame in exactly one place");
    drop(worker);
    drop(programs);
}
