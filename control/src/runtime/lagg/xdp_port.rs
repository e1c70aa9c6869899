//! A port's XDP program, whichever engine runs the lagg: its own port program (AF_XDP
//! engine: steer to the workers' sockets) or its place in the lagg's XDP engine (one program
//! on every port, distribution in the kernel). The lagg drives both through the same calls:
//! collecting, control protocols, probe MAC, counters, detach.

use std::sync::{Arc, Mutex, MutexGuard};

use xlagg_common::{EngineCounter, XdpCounter};
use xlagg_dataplane::counters::{DropReason, PortTotals};
use xlagg_dataplane::engine::XdpEngine;
use xlagg_dataplane::xdp::{AttachMode, PortProgram, XdpError};

/// A lagg's XDP engine, shared by its ports (only the control thread locks it).
pub(super) type SharedEngine = Arc<Mutex<XdpEngine>>;

/// Locks the engine; a panic while it was held leaves the maps as written, so go on.
pub(super) fn lock(engine: &SharedEngine) -> MutexGuard<'_, XdpEngine> {
    engine
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The XDP side of one port.
#[derive(Debug)]
pub enum PortXdp {
    /// The port's own program (AF_XDP engine).
    Program(PortProgram),
    /// The port's slot in the lagg's XDP engine.
    Engine {
        /// The engine.
        engine: SharedEngine,
        /// The port.
        ifindex: u32,
        /// Its slot (member slot, or the upper slot).
        slot: u32,
    },
}

impl PortXdp {
    /// Sets whether the port's frames are carried.
    ///
    /// # Errors
    /// A map write.
    pub fn set_collecting(&mut self, on: bool) -> Result<(), XdpError> {
        match self {
            PortXdp::Program(p) => p.set_collecting(on),
            PortXdp::Engine {
                engine, ifindex, ..
            } => lock(engine).set_collecting(*ifindex, on),
        }
    }

    /// Sets which control protocols run on the port.
    ///
    /// # Errors
    /// A map write.
    pub fn set_control(&mut self, lacp: bool, bfd: bool) -> Result<(), XdpError> {
        match self {
            PortXdp::Program(p) => p.set_control(lacp, bfd),
            PortXdp::Engine {
                engine, ifindex, ..
            } => lock(engine).set_control(*ifindex, lacp, bfd),
        }
    }

    /// Sets whether IEEE 802.1 link-local frames arriving on the port are dropped (the forward
    /// port, unless the configuration forwards them).
    ///
    /// # Errors
    /// A map write.
    pub fn set_drop_link_local(&mut self, on: bool) -> Result<(), XdpError> {
        match self {
            PortXdp::Program(p) => p.set_drop_link_local(on),
            PortXdp::Engine {
                engine, ifindex, ..
            } => lock(engine).set_drop_link_local(*ifindex, on),
        }
    }

    /// Sets the probe monitor's MAC on the port.
    ///
    /// # Errors
    /// A map write.
    pub fn set_probe_mac(&mut self, mac: [u8; 6]) -> Result<(), XdpError> {
        match self {
            PortXdp::Program(p) => p.set_probe_mac(mac),
            PortXdp::Engine {
                engine, ifindex, ..
            } => lock(engine).set_probe_mac(*ifindex, mac),
        }
    }

    /// Registers a worker's socket for `queue` (the XDP engine has none: nothing to do).
    ///
    /// # Errors
    /// A map write.
    pub fn register_socket(
        &mut self,
        queue: u32,
        socket: &impl std::os::fd::AsRawFd,
    ) -> Result<(), XdpError> {
        match self {
            PortXdp::Program(p) => p.register_socket(queue, socket),
            PortXdp::Engine { .. } => Ok(()),
        }
    }

    /// Driver or generic mode.
    pub fn mode(&self) -> Option<AttachMode> {
        match self {
            PortXdp::Program(p) => p.mode(),
            PortXdp::Engine {
                engine, ifindex, ..
            } => lock(engine).mode(*ifindex),
        }
    }

    /// The port checks' counters, by [`XdpCounter`] (the XDP engine's `redirected` are the
    /// data frames it sent on).
    ///
    /// # Errors
    /// A map read.
    pub fn counters(&self) -> Result<[u64; XdpCounter::COUNT as usize], XdpError> {
        match self {
            PortXdp::Program(p) => p.counters(),
            PortXdp::Engine { engine, slot, .. } => {
                let c = lock(engine).counters(*slot)?;
                let mut out = [0u64; XdpCounter::COUNT as usize];
                out[XdpCounter::Redirected as usize] = c[EngineCounter::RxPackets as usize];
                out[XdpCounter::NotCollecting as usize] = c[EngineCounter::NotCollecting as usize];
                out[XdpCounter::SlowProtocol as usize] = c[EngineCounter::SlowProtocol as usize];
                out[XdpCounter::Malformed as usize] = c[EngineCounter::Malformed as usize];
                out[XdpCounter::Probe as usize] = c[EngineCounter::Probe as usize];
                out[XdpCounter::Unsolicited as usize] = c[EngineCounter::Unsolicited as usize];
                out[XdpCounter::RateLimited as usize] = c[EngineCounter::RateLimited as usize];
                out[XdpCounter::LinkLocal as usize] = c[EngineCounter::LinkLocal as usize];
                Ok(out)
            }
        }
    }

    /// The XDP engine's frame counters of this port, as the workers count theirs; `None` for
    /// a port program (the workers count).
    pub fn engine_totals(&self) -> Option<PortTotals> {
        let PortXdp::Engine { engine, slot, .. } = self else {
            return None;
        };
        let c = lock(engine).counters(*slot).ok()?;
        let mut t = PortTotals {
            rx_packets: c[EngineCounter::RxPackets as usize],
            rx_bytes: c[EngineCounter::RxBytes as usize],
            tx_packets: c[EngineCounter::TxPackets as usize],
            tx_bytes: c[EngineCounter::TxBytes as usize],
            ..PortTotals::default()
        };
        t.drops[DropReason::NoActivePort as usize] = c[EngineCounter::NoActivePort as usize];
        t.drops[DropReason::NotRedirected as usize] = c[EngineCounter::NotRedirected as usize];
        Some(t)
    }

    /// Detaches: the port's own program, or the port from the engine (also done on drop,
    /// so a port dropped on an error path leaves nothing attached).
    pub fn detach(self) {
        drop(self);
    }
}

impl Drop for PortXdp {
    fn drop(&mut self) {
        // A port program detaches itself when dropped; the engine's port is taken out here.
        if let PortXdp::Engine {
            engine, ifindex, ..
        } = self
        {
            lock(engine).detach(*ifindex);
        }
    }
}

/// A member in the carrier watch of an AF_XDP lagg (the watch-only engine object): its slot
/// is known to the kernel-side watch while this lives.
#[derive(Debug)]
pub(super) struct Watched {
    engine: SharedEngine,
    ifindex: u32,
    slot: u32,
}

impl Watched {
    /// Starts watching member `ifindex` in `slot`.
    pub(super) fn new(engine: &SharedEngine, ifindex: u32, slot: u32) -> Result<Self, XdpError> {
        lock(engine).watch_port(ifindex, slot)?;
        Ok(Self {
            engine: Arc::clone(engine),
            ifindex,
            slot,
        })
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        lock(&self.engine).unwatch_port(self.ifindex, self.slot);
    }
}
