//! The worker pool of a lagg: one pinned thread per receive queue, each with its UMEM and a
//! socket per port, the table they all read, and the mailbox the control thread talks to
//! them through. The pool is the only part of a lagg that touches worker threads.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use arc_swap::ArcSwap;
use xlagg_dataplane::afxdp::{RingSizes, Umem, XskSocket};
use xlagg_dataplane::counters::{PortTotals, WorkerCounters};
use xlagg_dataplane::distribution::{DistributionTable, MAX_MEMBERS};
use xlagg_dataplane::learn::RecentMacs;
use xlagg_dataplane::mapped_words::MappedWords;
use xlagg_dataplane::worker::{self, Answer, Command, Worker, WorkerControl, WorkerLayout};

use super::{LaggError, Port, WorkerSample};
use crate::config::LaggConfig;
use crate::runtime::status::UmemStatus;

/// How long the control thread waits for a worker to take a membership command.
const CALL_TIMEOUT: Duration = Duration::from_secs(2);

/// One running worker and what the control thread keeps of it.
#[derive(Debug)]
struct WorkerHandle {
    thread: JoinHandle<()>,
    counters: Arc<WorkerCounters>,
    control: Arc<WorkerControl>,
}

/// The workers of a lagg and the distribution table they read.
#[derive(Debug)]
pub(super) struct WorkerPool {
    lagg: String,
    workers: Vec<WorkerHandle>,
    table: Arc<ArcSwap<DistributionTable>>,
    stop: Arc<AtomicBool>,
    /// Every worker's sockets carry packets larger than a UMEM frame (`XDP_USE_SG`).
    multi_buffer: bool,
}

impl WorkerPool {
    /// A pool with no workers yet, publishing `table` first.
    pub(super) fn new(lagg: &str, table: DistributionTable) -> Self {
        Self {
            lagg: lagg.to_string(),
            workers: Vec::new(),
            table: Arc::new(ArcSwap::from_pointee(table)),
            stop: Arc::new(AtomicBool::new(false)),
            multi_buffer: true,
        }
    }

    /// Whether the workers carry packets larger than a UMEM frame, so the MTU may rise
    /// above [`worker::single_frame_mtu`] without new sockets.
    pub(super) fn multi_buffer(&self) -> bool {
        self.multi_buffer
    }

    /// The table the workers read now.
    pub(super) fn table(&self) -> Arc<DistributionTable> {
        self.table.load_full()
    }

    /// Publishes `next`: each worker picks it up at its next iteration, whole.
    pub(super) fn publish(&self, next: DistributionTable) {
        self.table.store(Arc::new(next));
    }

    /// Number of workers.
    pub(super) fn len(&self) -> usize {
        self.workers.len()
    }

    /// Starts one worker per configured core (one unpinned worker when none are listed),
    /// each serving its queue of every port in `ports` (the members in slot order, then the
    /// upper port) and registering its sockets in the ports' programs.
    ///
    /// # Errors
    /// UMEM, socket, mailbox or thread creation; the workers already started stay in the
    /// pool for [`shutdown`](Self::shutdown).
    pub(super) fn spawn(
        &mut self,
        cfg: &LaggConfig,
        mut ports: Vec<&mut Port>,
        members: usize,
        learn: Option<Arc<RecentMacs>>,
        lost: Option<Arc<MappedWords>>,
    ) -> Result<(), LaggError> {
        let cores: Vec<Option<usize>> = if cfg.cores.is_empty() {
            vec![None]
        } else {
            cfg.cores.iter().copied().map(Some).collect()
        };
        let sizes = RingSizes {
            fill: cfg.ring_size,
            completion: cfg.ring_size,
            rx: cfg.ring_size,
            tx: cfg.ring_size,
        };
        let names: Vec<(String, u32)> = ports.iter().map(|p| (p.name.clone(), p.ifindex)).collect();
        for (queue, core) in cores.into_iter().enumerate() {
            let queue = queue as u32;
            let (umem, sockets, frames) =
                self.open_queue(cfg, &mut ports, &names, queue, members, sizes)?;
            let failed = |port: &str, detail: String| LaggError::Socket {
                lagg: self.lagg.clone(),
                port: port.to_string(),
                queue,
                detail,
            };
            tracing::info!(lagg = %self.lagg, queue, core = ?core, mode = %sockets[0].mode(), multi_buffer = sockets[0].multi_buffer(), frames, "worker starting");
            let counters = Arc::new(WorkerCounters::new(worker::SLOTS));
            let control = Arc::new(
                WorkerControl::new().map_err(|e| failed("(worker mailbox)", e.to_string()))?,
            );
            let worker = Worker::new(
                umem,
                sockets,
                WorkerLayout {
                    members,
                    queue,
                    learn: learn.clone(),
                    sizes,
                    control: Some(Arc::clone(&control)),
                    busy_poll: cfg.busy_poll,
                    lost: lost.clone(),
                },
                Arc::clone(&self.table),
                Arc::clone(&counters),
                Arc::clone(&self.stop),
            );
            let thread = std::thread::Builder::new()
                .name(format!("xlagg-{}-w{queue}", self.lagg))
                .spawn(move || worker.run(core))
                .map_err(|e| failed("(thread)", e.to_string()))?;
            self.workers.push(WorkerHandle {
                thread,
                counters,
                control,
            });
        }
        Ok(())
    }

    /// Queue `queue`'s UMEM and sockets, one per port in `names`, set up for busy polling
    /// where asked and registered in the ports' programs. Returns them with the UMEM's frames.
    fn open_queue(
        &mut self,
        cfg: &LaggConfig,
        ports: &mut [&mut Port],
        names: &[(String, u32)],
        queue: u32,
        members: usize,
        sizes: RingSizes,
    ) -> Result<(Umem, Vec<XskSocket>, u32), LaggError> {
        let failed = |port: &str, detail: String| LaggError::Socket {
            lagg: self.lagg.clone(),
            port: port.to_string(),
            queue,
            detail,
        };
        // Room for members joining at run time, up to MAX_MEMBERS or four more.
        let spare = (MAX_MEMBERS - members).min(worker::HOT_ADD_SPARE);
        let frames = worker::frames_for(names.len(), spare, sizes);
        let umem = Umem::new(frames).map_err(|e| failed("(UMEM)", e.to_string()))?;
        let jumbo = cfg.mtu > worker::single_frame_mtu();
        let sockets = worker::open_sockets(&umem, names, queue, sizes, cfg.zero_copy, jumbo)
            .map_err(|(port, e)| failed(&port, e.to_string()))?;
        self.multi_buffer &= sockets.iter().all(|s| s.multi_buffer());
        if cfg.busy_poll {
            for ((name, _), socket) in names.iter().zip(&sockets) {
                socket
                    .set_busy_poll(worker::BUSY_POLL_US, worker::BATCH as u32)
                    .map_err(|e| failed(name, e.to_string()))?;
            }
        }
        for (port, socket) in ports.iter_mut().zip(&sockets) {
            if let Some(program) = port.program.as_mut() {
                program.register_socket(queue, socket)?;
            }
        }
        Ok((umem, sockets, frames))
    }

    /// Has every worker discard what is stuck on member `slot`'s tx ring (a fresh socket,
    /// registered in `port`'s program), so no frame queued while its link was down leaves
    /// after it returns.
    pub(super) fn reset_port(&self, slot: usize, port: &mut Port) {
        for (q, w) in self.workers.iter().enumerate() {
            match w.control.call(Command::Reset { slot }, CALL_TIMEOUT) {
                Ok(Answer::Kept { .. }) => {}
                Ok(Answer::Added { fd, .. }) => {
                    tracing::info!(lagg = %self.lagg, port = %port.name, queue = q, "frames queued while the link was down were discarded");
                    if let Some(program) = port.program.as_mut() {
                        if let Err(e) = program.register_socket(q as u32, &fd) {
                            tracing::error!(lagg = %self.lagg, port = %port.name, error = %e, "registering the reopened socket");
                        }
                    }
                }
                Ok(other) => {
                    tracing::error!(lagg = %self.lagg, port = %port.name, answer = ?other, "resetting the port's socket failed")
                }
                Err(e) => {
                    tracing::error!(lagg = %self.lagg, port = %port.name, error = %e, "resetting the port's socket failed")
                }
            }
        }
    }

    /// Has every worker retire member `slot`'s socket (frames queued for it are dropped and
    /// its frames return to the pool as the kernel lets go of them).
    pub(super) fn remove_port(&self, slot: usize, name: &str) {
        for w in &self.workers {
            match w.control.call(Command::Remove { slot }, CALL_TIMEOUT) {
                Ok(Answer::Removed { dropped, .. }) => {
                    tracing::debug!(lagg = %self.lagg, port = %name, dropped, "member socket retired");
                }
                Ok(other) => {
                    tracing::warn!(lagg = %self.lagg, answer = ?other, "unexpected worker answer")
                }
                Err(e) => {
                    tracing::warn!(lagg = %self.lagg, error = %e, "worker did not retire the member socket")
                }
            }
        }
    }

    /// Has every worker open a socket for `port` in member `slot`, registered in its program;
    /// all or nothing.
    ///
    /// # Errors
    /// Why a worker could not; the workers that had added it retire it again.
    pub(super) fn add_port(&self, slot: usize, port: &mut Port) -> Result<(), String> {
        let mut added = Vec::new();
        let mut failure = None;
        for (q, w) in self.workers.iter().enumerate() {
            let cmd = Command::Add {
                slot,
                name: port.name.clone(),
                ifindex: port.ifindex,
            };
            match w.control.call(cmd, CALL_TIMEOUT) {
                Ok(Answer::Added { fd, .. }) => {
                    added.push(q);
                    if let Some(program) = port.program.as_mut() {
                        if let Err(e) = program.register_socket(q as u32, &fd) {
                            failure = Some(e.to_string());
                            break;
                        }
                    }
                }
                Ok(Answer::Failed { error, .. }) => {
                    failure = Some(error);
                    break;
                }
                Ok(other) => {
                    failure = Some(format!("unexpected worker answer {other:?}"));
                    break;
                }
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        match failure {
            None => Ok(()),
            Some(detail) => {
                for q in added {
                    let _ = self.workers[q]
                        .control
                        .call(Command::Remove { slot }, CALL_TIMEOUT);
                }
                Err(detail)
            }
        }
    }

    /// Queues whose worker thread has ended although the pool was not stopped (it panicked).
    pub(super) fn dead(&self) -> Vec<usize> {
        if self.stop.load(Ordering::Relaxed) {
            return Vec::new();
        }
        self.workers
            .iter()
            .enumerate()
            .filter(|(_, w)| w.thread.is_finished())
            .map(|(q, _)| q)
            .collect()
    }

    /// Fault injection for tests: makes the worker of `queue` panic.
    ///
    /// # Errors
    /// No such worker.
    #[cfg(feature = "testing")]
    pub(super) fn crash(&self, queue: usize) -> Result<(), String> {
        let w = self
            .workers
            .get(queue)
            .ok_or_else(|| format!("{} has no worker {queue}", self.lagg))?;
        // The worker panics instead of answering: the call times out by design.
        let _ = w.control.call(Command::Crash, Duration::from_millis(200));
        Ok(())
    }

    /// The counters of worker slot `slot` (a member's slot or [`worker::UPPER_SLOT`]) summed
    /// over the workers.
    pub(super) fn totals(&self, slot: usize) -> PortTotals {
        let mut sum = PortTotals::default();
        for w in &self.workers {
            if slot < w.counters.ports() {
                sum.add(&w.counters.port(slot).totals());
            }
        }
        sum
    }

    /// Each worker's loop counters, latency buckets and frames, as last read.
    pub(super) fn samples(&self) -> Vec<WorkerSample> {
        self.workers
            .iter()
            .enumerate()
            .map(|(queue, w)| {
                let c = &w.counters;
                WorkerSample {
                    queue,
                    busy_ns: c.busy_ns.load(Ordering::Relaxed),
                    loops: (
                        c.busy_loops.load(Ordering::Relaxed),
                        c.idle_loops.load(Ordering::Relaxed),
                    ),
                    latency: c
                        .latency
                        .iter()
                        .map(|b| b.load(Ordering::Relaxed))
                        .collect(),
                    latency_sum_ns: c.latency_sum_ns.load(Ordering::Relaxed),
                    frames: c.frames.snapshot(),
                }
            })
            .collect()
    }

    /// What each bucket placed so far, summed over the workers.
    pub(super) fn bucket_hits(&self) -> [u64; xlagg_dataplane::distribution::BUCKETS] {
        let mut out = [0u64; xlagg_dataplane::distribution::BUCKETS];
        for w in &self.workers {
            for (sum, n) in out.iter_mut().zip(w.counters.bucket_hits()) {
                *sum += n;
            }
        }
        out
    }

    /// Where each worker's UMEM frames are.
    pub(super) fn umem(&self) -> Vec<UmemStatus> {
        self.workers
            .iter()
            .enumerate()
            .map(|(queue, w)| {
                let f = w.counters.frames.snapshot();
                UmemStatus {
                    queue,
                    total: f.total,
                    free: f.free,
                    posted: f.posted,
                    in_flight: f.in_flight,
                    retiring: f.retiring,
                    audit_failures: f.audit_failures,
                }
            })
            .collect()
    }

    /// Stops every worker and waits for it.
    pub(super) fn shutdown(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for w in self.workers.drain(..) {
            if w.thread.join().is_err() {
                tracing::error!(lagg = %self.lagg, "a worker panicked");
            }
        }
    }
}
