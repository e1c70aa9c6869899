//! The engine that carries a lagg's frames, as one value: the rest of the lagg asks it to
//! attach a port, start, publish a table, add or retire a member, count, and stop, and never
//! asks which engine it is.
//!
//! - [`DataPath::Workers`] (`engine = "afxdp"`): a port program on every port steers frames
//!   into AF_XDP sockets, pinned workers distribute them (see `workers`). A second kernel
//!   object, loaded for the lost-member words alone, watches the members' drops.
//! - [`DataPath::Kernel`] (`engine = "xdp"` or `"tc"`): one object of the lagg on every port
//!   (XDP on each, or tc on the members' ingress and laggN's egress), distributing in the
//!   kernel from the table in its maps; its own redirect or queue watch marks the words.
//!
//! Each variant owns the object holding the lost-member words; what the control thread does
//! with the words is [`crate::runtime::lost`]'s.

use std::sync::{Arc, Mutex};

use xlagg_common::ENGINE_UPPER_SLOT;
use xlagg_dataplane::counters::PortTotals;
use xlagg_dataplane::distribution::{DistributionTable, BUCKETS};
use xlagg_dataplane::engine::{Hooks, XdpEngine};
use xlagg_dataplane::learn::RecentMacs;
use xlagg_dataplane::mapped_words::MappedWords;
use xlagg_dataplane::xdp::{PortProgram, ProgramKind, XdpError};

use super::workers::WorkerPool;
use super::xdp_port::{self, PortXdp, SharedEngine, Watched};
use super::{LaggError, Port, WorkerSample};
use crate::config::{Engine, LaggConfig};
use crate::runtime::status::UmemStatus;

/// A lagg's running engine.
#[derive(Debug)]
pub(super) enum DataPath {
    /// Userspace workers over AF_XDP.
    Workers {
        /// The workers and the table they read.
        pool: WorkerPool,
        /// The object holding the lost-member words and the drop watch; `None` where the
        /// kernel refused it, or after [`shutdown`](DataPath::shutdown).
        watch: Option<SharedEngine>,
    },
    /// The XDP engine or the tc host path: distribution in the kernel.
    Kernel {
        /// The lagg's object; `None` after [`shutdown`](DataPath::shutdown).
        engine: Option<SharedEngine>,
        /// The table last written to its maps.
        table: Arc<DistributionTable>,
    },
}

impl DataPath {
    /// Loads the engine `cfg` names, with `table` as its first table, and starts its
    /// lost-member watch (where the kernel refuses the watch, a member whose link goes is
    /// left when the link event comes; the log says why).
    ///
    /// # Errors
    /// Loading the kernel engine's object.
    pub(super) fn load(cfg: &LaggConfig, table: DistributionTable) -> Result<Self, LaggError> {
        let lagg = &cfg.name;
        let hooks = match cfg.engine {
            Engine::AfXdp => {
                // The AF_XDP engine's transmit is the kernel's copy-mode path: its drops tell
                // a member without carrier (the workers' refused `sendto` alone cannot: a full
                // receiver refuses too).
                let watch = XdpEngine::load(lagg, Hooks::None).map(|mut e| {
                    if let Err(e) = e.watch_drops() {
                        tracing::warn!(lagg = %lagg, error = %e, "no drop watch: a member whose link goes is left when the link event comes");
                    }
                    Arc::new(Mutex::new(e))
                });
                let watch = watch
                    .inspect_err(|e| tracing::warn!(lagg = %lagg, error = %e, "no lost-member words: a member whose link goes is left when the link event comes"))
                    .ok();
                return Ok(DataPath::Workers {
                    pool: WorkerPool::new(lagg, table),
                    watch,
                });
            }
            Engine::Xdp => Hooks::Xdp,
            Engine::Tc => Hooks::Tc,
        };
        let mut engine = XdpEngine::load(lagg, hooks)?;
        let (watch, what) = match hooks {
            Hooks::Tc => (engine.watch_queue(), "queue"),
            _ => (engine.watch_transmit(), "transmit"),
        };
        if let Err(e) = watch {
            tracing::warn!(lagg = %lagg, error = %e, "no {what} watch: a member whose link goes is left when the link event comes");
        }
        Ok(DataPath::Kernel {
            engine: Some(Arc::new(Mutex::new(engine))),
            table: Arc::new(table),
        })
    }

    /// The object holding the lost-member words, while it runs.
    fn words_object(&self) -> Option<&SharedEngine> {
        match self {
            DataPath::Workers { watch, .. } => watch.as_ref(),
            DataPath::Kernel { engine, .. } => engine.as_ref(),
        }
    }

    /// The kernel engine's object, while it runs (`None` for the workers).
    fn kernel(&self) -> Option<&SharedEngine> {
        match self {
            DataPath::Kernel { engine, .. } => engine.as_ref(),
            DataPath::Workers { .. } => None,
        }
    }

    /// The lost-member words, mapped (`None`, with a warning, where the kernel refused them;
    /// the workers' watch object then goes too, since nobody would read its marks).
    pub(super) fn lost_words(&mut self, lagg: &str) -> Option<MappedWords> {
        let words = self.words_object()?;
        let mapped = xdp_port::lock(words).lost_words();
        match mapped {
            Ok(w) => Some(w),
            Err(e) => {
                tracing::warn!(lagg = %lagg, error = %e, "no lost-member words: a member whose link goes is left when the link event comes");
                if let DataPath::Workers { watch, .. } = self {
                    *watch = None;
                }
                None
            }
        }
    }

    /// Attaches the lagg's program to `port` (member `slot`, or the upper port with `None`):
    /// its port in the kernel engine's object, or a port program of its own, with a place in
    /// the drop watch for a member of the workers.
    ///
    /// # Errors
    /// The kernel refused the program.
    pub(super) fn attach(
        &self,
        lagg: &str,
        port: &mut Port,
        slot: Option<usize>,
    ) -> Result<(), LaggError> {
        let (name, ifindex) = (port.name.clone(), port.ifindex);
        let upper = slot.is_none();
        let program = match self {
            DataPath::Kernel {
                engine: Some(engine),
                ..
            } => {
                let slot = slot.map_or(ENGINE_UPPER_SLOT, |s| s as u32);
                xdp_port::lock(engine)
                    .attach(&name, ifindex, slot, upper)
                    .map(|_| PortXdp::Engine {
                        engine: Arc::clone(engine),
                        ifindex,
                        slot,
                    })
            }
            DataPath::Kernel { engine: None, .. } => Err(XdpError::Load {
                port: name.clone(),
                detail: "the lagg's engine is stopped".into(),
            }),
            DataPath::Workers { watch, .. } => {
                if let (Some(watch), Some(slot)) = (watch, slot) {
                    match Watched::new(watch, ifindex, slot as u32) {
                        Ok(w) => port.watched = Some(w),
                        Err(e) => {
                            tracing::warn!(lagg = %lagg, port = %name, error = %e, "no lost-member word: this member is left when its link event comes")
                        }
                    }
                }
                PortProgram::attach(&name, ifindex, ProgramKind::Port).map(PortXdp::Program)
            }
        };
        port.program = Some(program?);
        Ok(())
    }

    /// Prepares laggN (`name`, `index`) for what the engine sends it: the XDP engine's
    /// redirects into laggN's peer are taken only while laggN runs XDP (or GRO, which
    /// `hw_offload = false` turns off), so it gets a program that passes everything.
    ///
    /// # Errors
    /// The kernel refused the program.
    pub(super) fn prepare_host(&self, name: &str, index: u32) -> Result<(), LaggError> {
        if let Some(engine) = self.kernel() {
            let mut engine = xdp_port::lock(engine);
            if engine.hooks() == Hooks::Xdp {
                engine.attach_passive(name, index)?;
            }
        }
        Ok(())
    }

    /// Starts carrying frames once every port is attached: the workers, one per configured
    /// core, over `ports` (the members in slot order, then the upper port); or the current
    /// table written to the kernel engine's maps.
    ///
    /// # Errors
    /// A worker's UMEM, socket or thread, or a map write.
    pub(super) fn start(
        &mut self,
        cfg: &LaggConfig,
        ports: Vec<&mut Port>,
        members: usize,
        learn: Option<Arc<RecentMacs>>,
        lost: Option<Arc<MappedWords>>,
    ) -> Result<(), LaggError> {
        match self {
            DataPath::Workers { pool, .. } => pool.spawn(cfg, ports, members, learn, lost),
            DataPath::Kernel {
                engine: Some(engine),
                table,
            } => Ok(xdp_port::lock(engine).publish(table)?),
            DataPath::Kernel { engine: None, .. } => Ok(()),
        }
    }

    /// The table in force.
    pub(super) fn table(&self) -> Arc<DistributionTable> {
        match self {
            DataPath::Workers { pool, .. } => pool.table(),
            DataPath::Kernel { table, .. } => Arc::clone(table),
        }
    }

    /// Publishes `next`: each worker picks it up at its next iteration, whole; the kernel
    /// engine's frames see it once its maps are written.
    ///
    /// # Errors
    /// Writing the kernel engine's maps (its frames keep the previous table).
    pub(super) fn publish(&mut self, next: DistributionTable) -> Result<(), XdpError> {
        match self {
            DataPath::Workers { pool, .. } => {
                pool.publish(next);
                Ok(())
            }
            DataPath::Kernel { engine, table } => {
                if let Some(engine) = engine {
                    xdp_port::lock(engine).publish(&next)?;
                }
                *table = Arc::new(next);
                Ok(())
            }
        }
    }

    /// The workers' pool, if this is the AF_XDP engine.
    fn pool(&self) -> Option<&WorkerPool> {
        match self {
            DataPath::Workers { pool, .. } => Some(pool),
            DataPath::Kernel { .. } => None,
        }
    }

    /// Number of worker threads (none in the kernel).
    pub(super) fn workers(&self) -> usize {
        self.pool().map_or(0, WorkerPool::len)
    }

    /// Whether the MTU may rise past one UMEM frame without new sockets (the kernel's
    /// engines take any MTU).
    pub(super) fn multi_buffer(&self) -> bool {
        self.pool().is_none_or(WorkerPool::multi_buffer)
    }

    /// Member `slot` is usable again: frames queued for it while it was down are discarded
    /// (the workers' tx rings; the kernel queues none).
    pub(super) fn reset_port(&self, slot: usize, port: &mut Port) {
        if let Some(pool) = self.pool() {
            pool.reset_port(slot, port);
        }
    }

    /// Member `slot` (`name`) left: the workers retire its socket.
    pub(super) fn remove_port(&self, slot: usize, name: &str) {
        if let Some(pool) = self.pool() {
            pool.remove_port(slot, name);
        }
    }

    /// `port` joined in `slot`: every worker opens a socket for it; all or nothing.
    ///
    /// # Errors
    /// Why a worker could not.
    pub(super) fn add_port(&self, slot: usize, port: &mut Port) -> Result<(), String> {
        self.pool().map_or(Ok(()), |pool| pool.add_port(slot, port))
    }

    /// Queues whose worker thread has ended although the lagg was not stopped.
    pub(super) fn dead(&self) -> Vec<usize> {
        self.pool().map(WorkerPool::dead).unwrap_or_default()
    }

    /// Fault injection for tests: makes the worker of `queue` panic.
    ///
    /// # Errors
    /// No such worker.
    #[cfg(feature = "testing")]
    pub(super) fn crash(&self, lagg: &str, queue: usize) -> Result<(), String> {
        match self.pool() {
            Some(pool) => pool.crash(queue),
            None => Err(format!(
                "{lagg} runs in the kernel: it has no worker {queue}"
            )),
        }
    }

    /// The workers' counters of slot `slot`, or the kernel engine's of `program`'s port.
    pub(super) fn totals(&self, slot: usize, program: Option<&PortXdp>) -> PortTotals {
        match self.pool() {
            Some(pool) => pool.totals(slot),
            None => program.and_then(PortXdp::engine_totals).unwrap_or_default(),
        }
    }

    /// Each worker's loop counters (none in the kernel).
    pub(super) fn samples(&self) -> Vec<WorkerSample> {
        self.pool().map(WorkerPool::samples).unwrap_or_default()
    }

    /// Where each worker's UMEM frames are (none in the kernel).
    pub(super) fn umem(&self) -> Vec<UmemStatus> {
        self.pool().map(WorkerPool::umem).unwrap_or_default()
    }

    /// What each bucket of the table placed so far: the kernel engine's map or the workers'
    /// counters; all zero where none could be read.
    pub(super) fn bucket_hits(&self) -> [u64; BUCKETS] {
        match self {
            DataPath::Workers { pool, .. } => pool.bucket_hits(),
            DataPath::Kernel { engine, .. } => engine
                .as_ref()
                .and_then(|e| xdp_port::lock(e).bucket_hits().ok())
                .unwrap_or([0; BUCKETS]),
        }
    }

    /// The errno with which the kernel refused the kernel engine's redirects to member `i`
    /// before any flush (kept by its redirect watch).
    pub(super) fn refused(&self, i: usize) -> Option<i32> {
        xdp_port::lock(self.kernel()?).refused(i as u32)
    }

    /// Stops the workers and lets go of the engine's objects: each closes (laggN's links
    /// with it) when the last port holding it is detached, which teardown does next.
    pub(super) fn shutdown(&mut self) {
        match self {
            DataPath::Workers { pool, watch } => {
                pool.shutdown();
                *watch = None;
            }
            DataPath::Kernel { engine, .. } => *engine = None,
        }
    }
}
