//! The worker's rules without root: a real worker over heap rings whose kernel side the fake
//! kernel plays ([`crate::afxdp::fake`]), driven one [`Worker::step`] at a time.

use super::*;
use crate::afxdp::fake::{FakeKernel, Faults};
use crate::afxdp::Desc;
use crate::distribution::{TxPolicy, BUCKETS};
use crate::flow::HashLayers;

const FRAMES: u32 = 2048;

fn sizes() -> RingSizes {
    RingSizes {
        fill: 128,
        completion: 512,
        rx: 512,
        tx: 512,
    }
}

/// A worker over `members` fake member sockets and a fake upper port.
struct Bed {
    worker: Worker,
    /// Members in order, then the upper port.
    kernels: Vec<Arc<FakeKernel>>,
    table: Arc<ArcSwap<DistributionTable>>,
    counters: Arc<WorkerCounters>,
    lost: Arc<MappedWords>,
}

impl Bed {
    fn new(members: usize, policy: TxPolicy) -> Bed {
        Bed::with(members, policy, sizes())
    }

    fn with(members: usize, policy: TxPolicy, sizes: RingSizes) -> Bed {
        let umem = Umem::new(FRAMES).expect("anonymous memory");
        let mut sockets = Vec::new();
        let mut kernels = Vec::new();
        for i in 0..=members {
            let (s, k) = FakeKernel::socket(&umem, 10 + i as u32, sizes, true).expect("fake");
            sockets.push(s);
            kernels.push(k);
        }
        let active: Vec<MemberIndex> = (0..members as MemberIndex).collect();
        let table = DistributionTable::new(policy, 0)
            .with_active(&active)
            .with_collecting((1u32 << members) - 1);
        let table = Arc::new(ArcSwap::from_pointee(table));
        let counters = Arc::new(WorkerCounters::new(SLOTS));
        let lost = Arc::new(MappedWords::heap(LOST_EPOCH as usize + 1));
        let layout = WorkerLayout {
            members,
            queue: 0,
            learn: None,
            sizes,
            control: None,
            busy_poll: false,
            lost: Some(Arc::clone(&lost)),
        };
        let worker = Worker::new(
            umem,
            sockets,
            layout,
            Arc::clone(&table),
            Arc::clone(&counters),
            Arc::new(AtomicBool::new(false)),
        );
        Bed {
            worker,
            kernels,
            table,
            counters,
            lost,
        }
    }

    fn upper(&self) -> &FakeKernel {
        &self.kernels[self.kernels.len() - 1]
    }

    /// Steps until nothing moves and every port's transmits are out (at most 50 steps).
    fn settle(&mut self) {
        for _ in 0..50 {
            let moved = self.worker.step();
            let pending: u32 = self.kernels.iter().map(|k| k.tx_pending()).sum();
            if moved == 0 && pending == 0 {
                self.worker.step();
                return;
            }
        }
    }

    /// What each member sent (members in order), taking it.
    fn sent(&self) -> Vec<Vec<Vec<u8>>> {
        self.kernels[..self.kernels.len() - 1]
            .iter()
            .map(|k| k.take_seen().sent)
            .collect()
    }

    fn drops(&self, slot: usize, reason: DropReason) -> u64 {
        self.counters.port(slot).drops[reason as usize].load(Ordering::Relaxed)
    }

    fn audit(&self) {
        self.worker
            .audit()
            .expect("every frame in exactly one place");
    }
}

/// A 60-byte IPv4/UDP frame of flow `flow` (its source port), numbered `seq` in the payload.
fn frame(flow: u16, seq: u32) -> Vec<u8> {
    let mut f = vec![0u8; 60];
    f[0..6].copy_from_slice(&[0x02, 0, 0, 0, 0, 2]);
    f[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 1]);
    f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    f[14] = 0x45;
    f[16..18].copy_from_slice(&46u16.to_be_bytes());
    f[22] = 64;
    f[23] = 17;
    f[26..30].copy_from_slice(&[10, 0, 0, 1]);
    f[30..34].copy_from_slice(&[10, 0, 0, 2]);
    f[34..36].copy_from_slice(&flow.to_be_bytes());
    f[36..38].copy_from_slice(&5001u16.to_be_bytes());
    f[38..40].copy_from_slice(&26u16.to_be_bytes());
    f[42..46].copy_from_slice(&seq.to_be_bytes());
    f
}

fn hash() -> TxPolicy {
    TxPolicy::Hash {
        layers: HashLayers::DEFAULT,
    }
}

/// The member the table names for `bytes` (the same decision the worker makes).
fn expected(table: &DistributionTable, bytes: &[u8]) -> Egress {
    let mut out = [Egress::Drop];
    distribute(table, &mut RoundRobinCursor::default(), &[bytes], &mut out);
    out[0]
}

use crate::distribution::distribute;

#[test]
fn fill_rings_are_topped_up_to_each_ports_level() {
    let mut bed = Bed::new(2, hash());
    // Member 1 is not collecting: it gets the parked level only.
    bed.table
        .store(Arc::new(bed.table.load().with_collecting(0b01)));
    bed.worker.step();
    let full = bed.worker.fill_full;
    assert_eq!(full, 128, "the ring's size bounds the level");
    assert_eq!(bed.kernels[0].fill_posted(), full);
    assert_eq!(bed.kernels[1].fill_posted(), PARKED_FILL);
    assert_eq!(bed.upper().fill_posted(), full);
    bed.audit();
}

#[test]
fn refill_tops_up_only_what_was_used() {
    let mut bed = Bed::new(2, hash());
    bed.worker.step();
    for i in 0..10 {
        bed.upper().receive(&frame(i, 0)).unwrap();
    }
    assert_eq!(bed.upper().fill_posted(), 118);
    bed.settle();
    assert_eq!(bed.upper().fill_posted(), 128);
    bed.audit();
}

#[test]
fn upper_frames_leave_on_the_member_the_table_names() {
    let mut bed = Bed::new(4, hash());
    bed.worker.step();
    let table = bed.table.load_full();
    let mut want = vec![Vec::new(); 4];
    for flow in 0..100 {
        let f = frame(flow, 0);
        let Egress::Port(m) = expected(&table, &f) else {
            panic!("hash places every frame");
        };
        want[usize::from(m)].push(f.clone());
        bed.upper().receive(&f).unwrap();
    }
    bed.settle();
    assert_eq!(bed.sent(), want);
    bed.audit();
}

#[test]
fn member_frames_go_to_the_upper_port() {
    let mut bed = Bed::new(2, hash());
    bed.worker.step();
    bed.kernels[0].receive(&frame(1, 1)).unwrap();
    bed.kernels[1].receive(&frame(2, 2)).unwrap();
    bed.settle();
    let up = bed.upper().take_seen().sent;
    assert_eq!(up.len(), 2);
    assert!(up.contains(&frame(1, 1)) && up.contains(&frame(2, 2)));
    bed.audit();
}

#[test]
fn failover_sends_everything_on_the_first_active_member() {
    let mut bed = Bed::new(3, TxPolicy::Failover);
    bed.table
        .store(Arc::new(bed.table.load().with_active(&[1, 2])));
    bed.worker.step();
    for flow in 0..20 {
        bed.upper().receive(&frame(flow, 0)).unwrap();
    }
    bed.settle();
    let sent = bed.sent();
    assert_eq!(
        sent.iter().map(Vec::len).collect::<Vec<_>>(),
        [0, 20, 0],
        "member 1 is the first active one in configuration order"
    );
}

#[test]
fn roundrobin_turns_per_packet_and_keeps_the_order_on_each_member() {
    let mut bed = Bed::new(2, TxPolicy::RoundRobin { limit: 1 });
    bed.worker.step();
    for seq in 0..10 {
        bed.upper().receive(&frame(7, seq)).unwrap();
    }
    bed.settle();
    let sent = bed.sent();
    assert_eq!(sent[0].len(), 5);
    assert_eq!(sent[1].len(), 5);
    let seqs = |v: &Vec<Vec<u8>>| {
        v.iter()
            .map(|f| u32::from_be_bytes(f[42..46].try_into().unwrap()))
            .collect::<Vec<_>>()
    };
    let (a, b) = (seqs(&sent[0]), seqs(&sent[1]));
    assert!(a.windows(2).all(|w| w[0] < w[1]) && b.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(a.iter().chain(&b).count(), 10);
}

#[test]
fn roundrobin_limit_sends_that_many_before_turning() {
    let mut bed = Bed::new(2, TxPolicy::RoundRobin { limit: 3 });
    bed.worker.step();
    for seq in 0..12 {
        bed.upper().receive(&frame(7, seq)).unwrap();
    }
    bed.settle();
    let sent = bed.sent();
    let first: Vec<u32> = sent[0]
        .iter()
        .map(|f| u32::from_be_bytes(f[42..46].try_into().unwrap()))
        .collect();
    assert_eq!(sent[0].len(), 6);
    // Runs of three consecutive sequence numbers.
    assert!(
        first
            .chunks(3)
            .all(|c| c[1] == c[0] + 1 && c[2] == c[0] + 2),
        "{first:?}"
    );
}

#[test]
fn broadcast_puts_a_copy_on_every_active_member() {
    let mut bed = Bed::new(3, TxPolicy::Broadcast);
    bed.worker.step();
    for flow in 0..10 {
        bed.upper().receive(&frame(flow, 0)).unwrap();
    }
    bed.settle();
    for member in bed.sent() {
        assert_eq!(member.len(), 10);
        assert_eq!(member[3], frame(3, 0));
    }
    bed.audit();
}

#[test]
fn with_no_active_member_frames_are_dropped_counted_and_freed() {
    let mut bed = Bed::new(2, hash());
    bed.table.store(Arc::new(bed.table.load().with_active(&[])));
    bed.worker.step();
    let free = bed.worker.free_frames();
    for flow in 0..10 {
        bed.upper().receive(&frame(flow, 0)).unwrap();
    }
    bed.settle();
    assert!(bed.sent().iter().all(Vec::is_empty));
    assert_eq!(bed.drops(UPPER_SLOT, DropReason::NoActivePort), 10);
    assert_eq!(bed.worker.free_frames(), free, "the frames came back");
    bed.audit();
}

#[test]
fn protocol_none_transmits_nothing() {
    let mut bed = Bed::new(2, TxPolicy::None);
    bed.worker.step();
    bed.upper().receive(&frame(1, 0)).unwrap();
    bed.settle();
    assert!(bed.sent().iter().all(Vec::is_empty));
    assert_eq!(bed.drops(UPPER_SLOT, DropReason::NoActivePort), 1);
}

#[test]
fn a_chain_leaves_whole_and_in_order_on_one_member() {
    let mut bed = Bed::new(4, hash());
    bed.worker.step();
    let head = frame(9, 1);
    let tail1 = vec![0xaa; 1000];
    let tail2 = vec![0xbb; 500];
    bed.upper().receive_chain(&[&head, &tail1, &tail2]).unwrap();
    bed.settle();
    let sent: Vec<Vec<u8>> = bed.sent().into_iter().flatten().collect();
    let mut whole = head.clone();
    whole.extend_from_slice(&tail1);
    whole.extend_from_slice(&tail2);
    assert_eq!(sent, vec![whole]);
    let c = bed.counters.port(UPPER_SLOT);
    assert_eq!(
        c.rx_packets.load(Ordering::Relaxed),
        1,
        "a chain is one packet"
    );
    bed.audit();
}

#[test]
fn a_chain_cut_by_the_batch_end_waits_for_the_next_batch() {
    let mut bed = Bed::new(2, hash());
    bed.worker.step();
    for seq in 0..(BATCH as u32 - 1) {
        bed.upper().receive(&frame(3, seq)).unwrap();
    }
    let tail = vec![0xcc; 700];
    bed.upper().receive_chain(&[&frame(3, 999), &tail]).unwrap();
    bed.settle();
    let sent: Vec<Vec<u8>> = bed.sent().into_iter().flatten().collect();
    assert_eq!(sent.len(), BATCH, "every packet, none cut");
    let last = sent.last().unwrap();
    assert_eq!(last.len(), 60 + 700, "the chain whole");
    assert_eq!(bed.drops(UPPER_SLOT, DropReason::InvalidDescriptor), 0);
    bed.audit();
}

#[test]
fn a_descriptor_outside_the_umem_is_dropped_and_counted() {
    let mut bed = Bed::new(2, hash());
    bed.worker.step();
    assert!(bed.upper().receive_raw(Desc {
        addr: u64::from(FRAMES) * 2048 + 256,
        len: 60,
        options: 0,
    }));
    bed.upper().receive(&frame(1, 0)).unwrap();
    bed.settle();
    assert_eq!(bed.drops(UPPER_SLOT, DropReason::InvalidDescriptor), 1);
    assert_eq!(bed.sent().iter().map(Vec::len).sum::<usize>(), 1);
    bed.audit();
}

#[test]
fn a_chain_with_a_bad_descriptor_is_dropped_whole() {
    let mut bed = Bed::new(2, hash());
    bed.worker.step();
    // A good head in a frame the worker posted, continued by a descriptor outside the UMEM.
    let addr = bed.upper().hold_fill_frame().unwrap() + 256;
    assert!(bed.upper().receive_raw(Desc {
        addr,
        len: 60,
        options: libc::XDP_PKT_CONTD,
    }));
    assert!(bed.upper().receive_raw(Desc {
        addr: u64::from(FRAMES) * 4096,
        len: 60,
        options: 0,
    }));
    bed.settle();
    assert_eq!(bed.drops(UPPER_SLOT, DropReason::InvalidDescriptor), 1);
    assert!(bed.sent().iter().all(Vec::is_empty));
    bed.audit();
}

#[test]
fn a_full_tx_ring_drops_whole_packets_and_counts_them() {
    let small = RingSizes {
        fill: 128,
        completion: 512,
        rx: 512,
        tx: 16,
    };
    let mut bed = Bed::with(1, TxPolicy::Failover, small);
    // The member's receiver refuses: its ring does not drain.
    bed.kernels[0].set_faults(Faults {
        down: false,
        refuse: true,
    });
    bed.worker.step();
    for seq in 0..40 {
        bed.upper().receive(&frame(1, seq)).unwrap();
    }
    bed.worker.step();
    assert_eq!(bed.drops(0, DropReason::TxRingFull), 24);
    assert_eq!(bed.kernels[0].tx_pending(), 16);
    bed.audit();
    // Once it drains, what was on the ring goes out in order.
    bed.kernels[0].set_faults(Faults::default());
    bed.settle();
    let sent = &bed.sent()[0];
    assert_eq!(sent.len(), 16);
    assert_eq!(sent[0], frame(1, 0));
    bed.audit();
}

#[test]
fn completions_bring_every_frame_back() {
    let mut bed = Bed::new(2, hash());
    bed.worker.step();
    for round in 0..5 {
        for flow in 0..50 {
            bed.upper().receive(&frame(flow, round)).unwrap();
        }
        bed.settle();
    }
    assert_eq!(bed.sent().iter().map(Vec::len).sum::<usize>(), 250);
    let posted: u32 = bed.kernels.iter().map(|k| k.fill_posted()).sum();
    assert_eq!(bed.worker.free_frames() as u32 + posted, FRAMES);
    bed.audit();
}

#[test]
fn a_member_whose_device_is_down_is_marked_lost_and_left() {
    let mut bed = Bed::new(2, hash());
    bed.worker.step();
    bed.kernels[0].set_faults(Faults {
        down: true,
        refuse: false,
    });
    for flow in 0..40 {
        bed.upper().receive(&frame(flow, 0)).unwrap();
    }
    bed.settle();
    assert_ne!(bed.lost.get(0), 0, "member 0 marked lost");
    assert_eq!(bed.lost.get(1), 0);
    let before = bed.sent();
    // From the next iteration every flow leaves on member 1.
    for flow in 0..40 {
        bed.upper().receive(&frame(flow, 1)).unwrap();
    }
    bed.settle();
    let after = bed.sent();
    assert!(after[0].is_empty());
    assert_eq!(after[1].len(), 40);
    assert!(before[0].is_empty(), "nothing left while down");
    bed.audit();
}

#[test]
fn clearing_the_lost_mark_brings_the_member_back() {
    let mut bed = Bed::new(2, hash());
    bed.worker.step();
    bed.lost.mark(0, LOST_EPOCH as usize);
    for flow in 0..40 {
        bed.upper().receive(&frame(flow, 0)).unwrap();
    }
    bed.settle();
    assert!(bed.sent()[0].is_empty());
    bed.lost.clear(0, LOST_EPOCH as usize);
    for flow in 0..40 {
        bed.upper().receive(&frame(flow, 1)).unwrap();
    }
    bed.settle();
    let sent = bed.sent();
    assert!(!sent[0].is_empty() && !sent[1].is_empty());
}

#[test]
fn a_stalled_port_is_not_woken_again_until_reset() {
    let mut bed = Bed::new(1, TxPolicy::Failover);
    bed.worker.step();
    bed.kernels[0].set_faults(Faults {
        down: true,
        refuse: false,
    });
    bed.upper().receive(&frame(1, 0)).unwrap();
    bed.settle();
    let kicks = bed.kernels[0].take_seen().tx_kicks;
    assert!(kicks >= 1);
    for _ in 0..20 {
        bed.worker.step();
    }
    assert_eq!(
        bed.kernels[0].take_seen().tx_kicks,
        0,
        "a stalled port is not kicked on every iteration"
    );
    assert!(bed.worker.ports[0].as_ref().unwrap().stalled);
    bed.audit();
}

#[test]
fn removing_a_member_retires_its_socket_and_takes_its_frames_back() {
    let mut bed = Bed::new(2, hash());
    bed.worker.step();
    let posted = bed.kernels[1].fill_posted();
    assert!(posted > 0);
    let free = bed.worker.free_frames();
    let answer = bed.worker.remove_port(1);
    assert_eq!(
        answer,
        Answer::Removed {
            slot: 1,
            dropped: 0
        }
    );
    assert!(!bed.worker.present.contains(&1));
    bed.worker.step();
    assert!(
        bed.worker.retiring.is_empty(),
        "nothing in flight: closed at once"
    );
    // Every frame the retired socket held on its fill ring is free again, and nothing else
    // moved (the other rings were full already).
    assert_eq!(bed.worker.free_frames(), free + posted as usize);
    bed.audit();
}

#[test]
fn removing_a_member_drops_what_waits_in_its_queue() {
    let mut bed = Bed::new(1, TxPolicy::Failover);
    bed.worker.step();
    for seq in 0..5 {
        bed.upper().receive(&frame(1, seq)).unwrap();
    }
    // Take the frames into the worker and queue them, without flushing.
    bed.worker.receive_batch(&bed.table.load_full(), UPPER_SLOT);
    assert_eq!(bed.worker.tx_queues[0].len(), 5);
    assert_eq!(
        bed.worker.remove_port(0),
        Answer::Removed {
            slot: 0,
            dropped: 5
        }
    );
    bed.audit();
}

#[test]
fn the_upper_slot_is_not_a_member_to_remove() {
    let mut bed = Bed::new(1, hash());
    assert!(matches!(
        bed.worker.remove_port(UPPER_SLOT),
        Answer::Failed { .. }
    ));
}

#[test]
fn an_occupied_slot_refuses_a_new_member() {
    let mut bed = Bed::new(2, hash());
    assert!(matches!(
        bed.worker.add_port(1, 0, "em9".into(), 99),
        Some(Answer::Failed { slot: 0, .. })
    ));
}

#[test]
fn resetting_a_port_discards_its_stuck_transmits() {
    let mut bed = Bed::new(1, TxPolicy::Failover);
    bed.worker.step();
    bed.kernels[0].set_faults(Faults {
        down: true,
        refuse: false,
    });
    for seq in 0..8 {
        bed.upper().receive(&frame(1, seq)).unwrap();
    }
    bed.settle();
    assert_eq!(bed.kernels[0].tx_pending(), 8, "stuck on the ring");
    let free = bed.worker.free_frames();
    assert_eq!(bed.worker.reset_port(7, 0), None, "reopened later");
    assert!(bed.worker.ports[0].is_none());
    assert_eq!(bed.worker.opening.len(), 1);
    assert!(
        bed.worker.free_frames() >= free + 8,
        "the stuck frames came back"
    );
    bed.audit();
}

#[test]
fn resetting_a_port_with_nothing_stuck_keeps_it() {
    let mut bed = Bed::new(1, hash());
    bed.worker.step();
    assert_eq!(bed.worker.reset_port(1, 0), Some(Answer::Kept { slot: 0 }));
}

#[test]
fn every_packet_counts_once_in_its_bucket_and_in_the_port_counters() {
    let mut bed = Bed::new(2, hash());
    bed.worker.step();
    // Runs of one flow and single packets, interleaved: each packet counts in its bucket.
    let flows: Vec<u16> = (0..30)
        .map(|k| if k % 4 == 3 { k - 1 } else { k / 2 })
        .collect();
    for &flow in &flows {
        bed.upper().receive(&frame(flow, 0)).unwrap();
    }
    bed.upper()
        .receive_chain(&[&frame(99, 0), &[1u8; 100]])
        .unwrap();
    bed.settle();
    let heads: Vec<Vec<u8>> = flows.iter().chain(&[99]).map(|&f| frame(f, 0)).collect();
    let heads: Vec<&[u8]> = heads.iter().map(Vec::as_slice).collect();
    let mut expected = [0u64; BUCKETS];
    distribute_counted(
        &bed.table.load_full(),
        &mut RoundRobinCursor::default(),
        &heads,
        &mut [Egress::Drop; 31],
        |b| expected[b] += 1,
    );
    assert_eq!(bed.counters.bucket_hits(), expected);
    assert_eq!(expected.iter().sum::<u64>(), 31);
    let c = bed.counters.port(UPPER_SLOT);
    assert_eq!(c.rx_packets.load(Ordering::Relaxed), 31);
    assert_eq!(c.rx_bytes.load(Ordering::Relaxed), 31 * 60 + 100);
    let tx: u64 = (0..2)
        .map(|m| bed.counters.port(m).tx_packets.load(Ordering::Relaxed))
        .sum();
    assert_eq!(tx, 31);
}

#[test]
fn the_ledger_holds_under_mixed_traffic_and_faults() {
    let mut bed = Bed::new(3, hash());
    bed.worker.step();
    for round in 0..30u32 {
        let fault = Faults {
            down: round % 7 == 3,
            refuse: round % 5 == 2,
        };
        bed.kernels[(round % 3) as usize].set_faults(fault);
        for flow in 0..(round * 3 % 70) as u16 {
            let _ = bed.upper().receive(&frame(flow, round));
        }
        if round % 4 == 0 {
            let _ = bed.kernels[1].receive(&frame(500, round));
        }
        bed.worker.step();
        bed.audit();
    }
    for k in &bed.kernels {
        k.set_faults(Faults::default());
    }
    bed.lost.clear(0, LOST_EPOCH as usize);
    bed.settle();
    bed.audit();
}
