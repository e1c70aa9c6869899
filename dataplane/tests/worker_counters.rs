//! The counters mean what they say: a real worker on the test bed's veths and AF_XDP sockets,
//! stepped by this thread, real frames sent at it, and each counter read where the metrics
//! read it. Frames with nowhere to go count `no_active_port` one for one; frames arriving
//! before anything is on the fill ring count the socket's `fill_ring_empty` and `rx_dropped`;
//! a flood the worker does not read overflows its rx ring and counts `rx_ring_full`. Needs
//! root; fails otherwise.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use xlagg_dataplane::afxdp::{RingSizes, Umem};
use xlagg_dataplane::counters::{DropReason, PortTotals, WorkerCounters, XskCounter};
use xlagg_dataplane::distribution::{DistributionTable, TxPolicy};
use xlagg_dataplane::flow::HashLayers;
use xlagg_dataplane::worker::{self, Worker, WorkerLayout, ZeroCopy, UPPER_SLOT};
use xlagg_sys::afpacket::PacketSocket;

#[path = "support/bed.rs"]
mod bed;
#[path = "support/frames.rs"]
mod frames;
use bed::{sender_and_ports, Bed};

/// Sends `n` frames of distinct flows and gives the kernel time to deliver them.
fn send(sender: &PacketSocket, n: u16) {
    for flow in 0..n {
        sender.send(&frames::udp4(flow)).expect("send");
    }
    std::thread::sleep(Duration::from_millis(200));
}

#[test]
fn drop_reasons_and_socket_counters_are_reached_by_real_frames() {
    let bed = Bed::up(&format!("wc{}", std::process::id() % 100_000), 2);
    let (sender, mut programs, ports) = sender_and_ports(&bed);
    // A fill ring four times the rx ring: a flood fills the rx ring while frames are posted.
    let sizes = RingSizes {
        fill: 256,
        completion: 256,
        rx: 64,
        tx: 64,
    };
    let umem = Umem::new(worker::default_frames(3, sizes)).expect("umem");
    let sockets =
        worker::open_sockets(&umem, &ports, 0, sizes, ZeroCopy::Off, false).expect("sockets");
    for (program, socket) in programs.iter_mut().zip(&sockets) {
        program.register_socket(0, socket).expect("xskmap");
        program.set_collecting(true).expect("state");
    }
    // No member carries traffic.
    let table = DistributionTable::new(
        TxPolicy::Hash {
            layers: HashLayers::DEFAULT,
        },
        1,
    )
    .with_active(&[]);
    let counters = Arc::new(WorkerCounters::new(worker::SLOTS));
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
    let upper = || -> PortTotals { counters.port(UPPER_SLOT).totals() };
    let members_tx = || counters.port(0).totals().tx_packets + counters.port(1).totals().tx_packets;

    // 1. Nothing is on the fill ring before the first step: the kernel has nowhere to put
    // the frames and says so.
    send(&sender, 20);
    worker.copy_stats();
    let t = upper();
    assert!(
        t.xsk[XskCounter::FillRingEmpty as usize] > 0
            && t.xsk[XskCounter::RxDropped as usize] >= 20,
        "frames before the fill ring was primed: fill_ring_empty {}, rx_dropped {}",
        t.xsk[XskCounter::FillRingEmpty as usize],
        t.xsk[XskCounter::RxDropped as usize]
    );
    assert_eq!(t.rx_packets, 0, "nothing reached the worker");

    // 2. With no active member every frame from the upper port is dropped as such, one for one.
    for _ in 0..10 {
        worker.step();
    }
    let before = upper();
    send(&sender, 50);
    let deadline = Instant::now() + Duration::from_secs(5);
    while upper().rx_packets < before.rx_packets + 50 && Instant::now() < deadline {
        worker.step();
    }
    let after = upper();
    assert_eq!(after.rx_packets - before.rx_packets, 50, "received");
    assert_eq!(
        after.rx_bytes - before.rx_bytes,
        50 * 60,
        "bytes of 60-byte frames"
    );
    assert_eq!(
        after.drops[DropReason::NoActivePort as usize]
            - before.drops[DropReason::NoActivePort as usize],
        50,
        "no_active_port counts every frame that had no member"
    );
    assert_eq!(members_tx(), 0, "nothing left on a member");

    // 3. A flood the worker does not read: its rx ring (64) fills while the fill ring still
    // holds posted frames.
    send(&sender, 1000);
    worker.copy_stats();
    let t = upper();
    assert!(
        t.xsk[XskCounter::RxRingFull as usize] > 0,
        "1000 frames at an unread rx ring of 64: rx_ring_full {}",
        t.xsk[XskCounter::RxRingFull as usize]
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if worker.step() == 0 && upper().rx_packets >= after.rx_packets + 64 {
            break;
        }
    }
    assert!(
        upper().rx_packets >= after.rx_packets + 64,
        "the ring's frames were taken afterwards"
    );
    for _ in 0..100 {
        worker.step();
    }
    worker
        .audit()
        .expect("every UMEM frame in exactly one place");
    drop(worker);
    drop(programs);
}
