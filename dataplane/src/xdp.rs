//! Loading and attaching the XDP program (`ebpf/xdp`) with aya, one object per port.
//!
//! One object per port gives each port its own XSKMAP, state map and counters, so ports are
//! attached, switched between collecting and not, and detached independently. Attachment uses
//! a BPF link where the kernel has them (detached when the last file descriptor closes, so a
//! crashed daemon leaves no program behind) and netlink otherwise, in driver (native) mode
//! first with a logged fallback to generic mode.

use std::os::fd::AsRawFd;

use aya::maps::{Array, MapData, PerCpuArray, XskMap};
use aya::programs::{ProgramError, TestRun, TestRunAttrs, TestRunOptions, Xdp, XdpMode};
use aya::Ebpf;
use xlagg_common::{names, GenConfig, PortState, XdpCounter};

/// The XDP object built by `build.rs` from `ebpf/xdp`: the port program, nothing else.
pub static XDP_OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/xlagg-xdp"));

/// The benchmark's and tests' programs (`ebpf/xdp/src/bench.rs`), never loaded by the daemon.
pub static BENCH_OBJECT: &[u8] =
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/xlagg-bench-xdp"));

/// Refuses an object this build carries empty (built without bpf-linker or with
/// `XLAGG_NO_EBPF=1`; see `build.rs`), naming the fix.
///
/// # Errors
/// The object is empty.
pub fn ensure_built(object: &[u8], port: &str) -> Result<(), XdpError> {
    if object.is_empty() {
        return Err(XdpError::Load {
            port: port.to_string(),
            detail: "this build carries no eBPF programs (built without bpf-linker or with \
                     XLAGG_NO_EBPF=1): run scripts/setup.sh and build again"
                .into(),
        });
    }
    Ok(())
}

/// Errors loading, attaching or driving a port program.
#[derive(Debug, thiserror::Error)]
pub enum XdpError {
    /// The object could not be loaded (verifier, missing map or program).
    #[error("loading the XDP object for {port}: {detail}")]
    Load {
        /// Port name.
        port: String,
        /// What failed.
        detail: String,
    },
    /// Neither driver nor generic mode attached.
    #[error(
        "attaching XDP to {port} failed in driver mode ({native}) and in generic mode ({generic})"
    )]
    Attach {
        /// Port name.
        port: String,
        /// Error in driver mode.
        native: String,
        /// Error in generic mode.
        generic: String,
    },
    /// A map operation failed.
    #[error("XDP map {map} on {port}: {detail}")]
    Map {
        /// Port name.
        port: String,
        /// Map name.
        map: &'static str,
        /// What failed.
        detail: String,
    },
    /// The kernel refused a live-frames test run (`BPF_F_TEST_XDP_LIVE_FRAMES`); some builds
    /// refuse them all (EPERM) while plain test runs still work.
    #[error("the kernel refuses live-frames XDP test runs (BPF_F_TEST_XDP_LIVE_FRAMES): {source}")]
    LiveFrames {
        /// The system call's error.
        #[source]
        source: std::io::Error,
    },
}

/// Where the program runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttachMode {
    /// In the driver (native XDP).
    Driver,
    /// In the generic networking path (skb mode), slower.
    Generic,
    /// Not XDP: tc programs on the skb path (the host path).
    Tc,
}

impl std::fmt::Display for AttachMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AttachMode::Driver => "driver",
            AttachMode::Generic => "generic",
            AttachMode::Tc => "tc",
        })
    }
}

/// Which program of the object a port runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProgramKind {
    /// Steer to AF_XDP / drop when not collecting / pass slow protocols.
    Port,
    /// Drop everything (test and benchmark sinks).
    Drop,
    /// The benchmark's in-kernel generator (live-frames test runs only, never attached).
    Generator,
    /// The benchmark's sink: per-flow counts, reorderings, latency; drops.
    Sink,
    /// The in-kernel forwarding reference: redirect everything to one device.
    Redirect,
    /// The tests' probe of the shared flow hash (returns the hash; test runs only).
    Hash,
}

impl ProgramKind {
    fn name(self) -> &'static str {
        match self {
            ProgramKind::Port => names::PORT_PROGRAM,
            ProgramKind::Drop => names::DROP_PROGRAM,
            ProgramKind::Generator => names::GEN_PROGRAM,
            ProgramKind::Sink => names::SINK_PROGRAM,
            ProgramKind::Redirect => names::REDIRECT_PROGRAM,
            ProgramKind::Hash => names::HASH_PROGRAM,
        }
    }

    fn object(self) -> &'static [u8] {
        match self {
            ProgramKind::Port => XDP_OBJECT,
            ProgramKind::Drop
            | ProgramKind::Generator
            | ProgramKind::Sink
            | ProgramKind::Redirect
            | ProgramKind::Hash => BENCH_OBJECT,
        }
    }
}

/// The XDP program of one port: loaded, and attached unless made with [`PortProgram::load`].
#[derive(Debug)]
pub struct PortProgram {
    ebpf: Ebpf,
    port: String,
    kind: ProgramKind,
    mode: Option<AttachMode>,
    /// What userspace last wrote to the port state map.
    state: PortState,
}

impl PortProgram {
    /// Loads a fresh copy of the object without attaching it (for `BPF_PROG_TEST_RUN`).
    ///
    /// # Errors
    /// When the object does not load or lacks the program.
    pub fn load(port: &str, kind: ProgramKind) -> Result<Self, XdpError> {
        let load_err = |detail: String| XdpError::Load {
            port: port.to_string(),
            detail,
        };
        ensure_built(kind.object(), port)?;
        let mut ebpf = Ebpf::load(kind.object()).map_err(|e| load_err(e.to_string()))?;
        let program: &mut Xdp = ebpf
            .program_mut(kind.name())
            .ok_or_else(|| load_err(format!("no program {}", kind.name())))?
            .try_into()
            .map_err(|e: ProgramError| load_err(e.to_string()))?;
        program.load().map_err(|e| load_err(e.to_string()))?;
        Ok(Self {
            ebpf,
            port: port.to_string(),
            kind,
            mode: None,
            state: PortState::collecting(false),
        })
    }

    /// Loads and attaches to `ifindex` (named `port` in messages): driver mode first, then
    /// generic mode with a warning. The port starts not collecting.
    ///
    /// # Errors
    /// When loading fails or neither mode attaches.
    pub fn attach(port: &str, ifindex: u32, kind: ProgramKind) -> Result<Self, XdpError> {
        let mut this = Self::load(port, kind)?;
        let program = this.program_mut()?;
        let native = match program.attach_to_if_index(ifindex, XdpMode::Driver) {
            Ok(_) => {
                this.mode = Some(AttachMode::Driver);
                return Ok(this);
            }
            Err(e) => error_chain(&e),
        };
        match program.attach_to_if_index(ifindex, XdpMode::Skb) {
            Ok(_) => {
                tracing::warn!(port, error = %native, "driver-mode XDP refused; running in generic mode (slower)");
                this.mode = Some(AttachMode::Generic);
                Ok(this)
            }
            Err(e) => Err(XdpError::Attach {
                port: port.to_string(),
                native,
                generic: error_chain(&e),
            }),
        }
    }

    fn program_mut(&mut self) -> Result<&mut Xdp, XdpError> {
        let port = self.port.clone();
        let name = self.kind.name();
        self.ebpf
            .program_mut(name)
            .and_then(|p| <&mut Xdp>::try_from(p).ok())
            .ok_or(XdpError::Load {
                port,
                detail: format!("no XDP program {name}"),
            })
    }

    /// The port's name.
    pub fn port(&self) -> &str {
        &self.port
    }

    /// Driver or generic mode; `None` when loaded without attaching.
    pub fn mode(&self) -> Option<AttachMode> {
        self.mode
    }

    fn map_err(&self, map: &'static str, detail: impl ToString) -> XdpError {
        XdpError::Map {
            port: self.port.clone(),
            map,
            detail: detail.to_string(),
        }
    }

    /// Sets whether frames on this port reach the workers.
    ///
    /// # Errors
    /// When the map update fails.
    pub fn set_collecting(&mut self, collecting: bool) -> Result<(), XdpError> {
        self.set_flag(PortState::COLLECTING, collecting)
    }

    /// Sets which control protocols the control path runs on this port: only their frames
    /// are passed to it, the rest addressed to it is dropped and counted.
    ///
    /// # Errors
    /// When the map update fails.
    pub fn set_control(&mut self, lacp: bool, bfd: bool) -> Result<(), XdpError> {
        let mut flags = self.state.flags & !(PortState::LACP | PortState::BFD);
        if lacp {
            flags |= PortState::LACP;
        }
        if bfd {
            flags |= PortState::BFD;
        }
        self.state.flags = flags;
        self.set_first(names::PORT_STATE, self.state)
    }

    /// Sets whether IEEE 802.1 link-local frames arriving here are dropped and counted (the
    /// forward port).
    ///
    /// # Errors
    /// When the map update fails.
    pub fn set_drop_link_local(&mut self, on: bool) -> Result<(), XdpError> {
        self.set_flag(PortState::DROP_LINK_LOCAL, on)
    }

    fn set_flag(&mut self, flag: u32, on: bool) -> Result<(), XdpError> {
        if on {
            self.state.flags |= flag;
        } else {
            self.state.flags &= !flag;
        }
        self.set_first(names::PORT_STATE, self.state)
    }

    /// Sets the MAC whose frames go to the control path (the probe monitor's replies).
    ///
    /// # Errors
    /// When the map update fails.
    pub fn set_probe_mac(&mut self, mac: [u8; 6]) -> Result<(), XdpError> {
        self.state.probe_mac = mac;
        self.set_first(names::PORT_STATE, self.state)
    }

    /// Writes entry 0 of the one-entry array map `map`.
    fn set_first<T: aya::Pod>(&mut self, map: &'static str, value: T) -> Result<(), XdpError> {
        let port = self.port.clone();
        let err = |detail: String| XdpError::Map {
            port: port.clone(),
            map,
            detail,
        };
        let data = self
            .ebpf
            .map_mut(map)
            .ok_or_else(|| err("missing".into()))?;
        let mut array: Array<&mut MapData, T> =
            Array::try_from(data).map_err(|e| err(e.to_string()))?;
        array.set(0, value, 0).map_err(|e| err(e.to_string()))
    }

    /// Registers the AF_XDP socket for receive queue `queue`.
    ///
    /// # Errors
    /// When the map update fails.
    pub fn register_socket(&mut self, queue: u32, socket: &impl AsRawFd) -> Result<(), XdpError> {
        let port = self.port.clone();
        let err = |detail: String| XdpError::Map {
            port: port.clone(),
            map: names::XSKS,
            detail,
        };
        let map = self
            .ebpf
            .map_mut(names::XSKS)
            .ok_or_else(|| err("missing".into()))?;
        let mut xsks: XskMap<&mut MapData> =
            XskMap::try_from(map).map_err(|e| err(e.to_string()))?;
        xsks.set(queue, socket.as_raw_fd(), 0)
            .map_err(|e| err(e.to_string()))
    }

    /// The program's counters summed over CPUs, indexed by [`XdpCounter`].
    ///
    /// # Errors
    /// When the map cannot be read.
    pub fn counters(&self) -> Result<[u64; XdpCounter::COUNT as usize], XdpError> {
        let map = self
            .ebpf
            .map(names::COUNTERS)
            .ok_or_else(|| self.map_err(names::COUNTERS, "missing"))?;
        let array: PerCpuArray<&MapData, u64> =
            PerCpuArray::try_from(map).map_err(|e| self.map_err(names::COUNTERS, e))?;
        let mut out = [0u64; XdpCounter::COUNT as usize];
        for counter in XdpCounter::ALL {
            let values = array
                .get(&(counter as u32), 0)
                .map_err(|e| self.map_err(names::COUNTERS, e))?;
            out[counter as usize] = values.iter().sum();
        }
        Ok(out)
    }

    /// Runs the program once on `frame` with `BPF_PROG_TEST_RUN` and returns its XDP action.
    ///
    /// # Errors
    /// When the kernel refuses the test run.
    pub fn test_run(&self, frame: &[u8]) -> Result<u32, XdpError> {
        let program: &Xdp = self
            .ebpf
            .program(self.kind.name())
            .and_then(|p| <&Xdp>::try_from(p).ok())
            .ok_or_else(|| self.map_err("program", "missing"))?;
        let mut out = vec![0u8; frame.len() + 256];
        let opts = TestRunOptions {
            data_in: Some(frame),
            data_out: Some(&mut out),
            ..Default::default()
        };
        program
            .test_run(opts)
            .map(|r| r.return_value)
            .map_err(|e| self.map_err("test_run", error_chain(&e)))
    }

    /// Generator: sets the number of flows the frames cycle through.
    ///
    /// # Errors
    /// When the map update fails.
    pub fn set_generator_flows(&mut self, flows: u32) -> Result<(), XdpError> {
        self.set_generator(flows, 0)
    }

    /// Generator: flows, and how many bytes the headers add over untagged IPv4 (VLAN 4,
    /// IPv6 20).
    ///
    /// # Errors
    /// When the map update fails.
    pub fn set_generator(&mut self, flows: u32, shift: u32) -> Result<(), XdpError> {
        self.set_first(names::GEN_CONFIG, GenConfig { flows, shift })
    }

    /// Hash probe: the layers (bits of [`xlagg_common::hash`]) and seed it hashes with.
    ///
    /// # Errors
    /// When the map update fails.
    pub fn set_hash_probe(&mut self, layers: u8, seed: u64) -> Result<(), XdpError> {
        let probe = xlagg_common::HashProbe {
            layers: u32::from(layers),
            pad: 0,
            seed,
        };
        self.set_first(names::HASH_CONFIG, probe)
    }

    /// Redirect reference: the device frames are sent to.
    ///
    /// # Errors
    /// When the map update fails.
    pub fn set_redirect_target(&mut self, ifindex: u32) -> Result<(), XdpError> {
        let port = self.port.clone();
        let map = self
            .ebpf
            .map_mut(names::REDIRECT_TARGET)
            .ok_or_else(|| XdpError::Map {
                port: port.clone(),
                map: names::REDIRECT_TARGET,
                detail: "missing".into(),
            })?;
        let mut devmap: aya::maps::DevMap<&mut MapData> = aya::maps::DevMap::try_from(map)
            .map_err(|e| XdpError::Map {
                port: port.clone(),
                map: names::REDIRECT_TARGET,
                detail: e.to_string(),
            })?;
        devmap.set(0, ifindex, None, 0).map_err(|e| XdpError::Map {
            port,
            map: names::REDIRECT_TARGET,
            detail: e.to_string(),
        })
    }

    /// Sink: its counters by [`xlagg_common::SinkCounter`], summed over CPUs.
    ///
    /// # Errors
    /// When the map cannot be read.
    pub fn sink_stats(&self) -> Result<[u64; xlagg_common::SinkCounter::COUNT as usize], XdpError> {
        let mut out = [0u64; xlagg_common::SinkCounter::COUNT as usize];
        let sums = self.per_cpu_sums(names::SINK_STATS, out.len() as u32)?;
        out.copy_from_slice(&sums);
        Ok(out)
    }

    /// Sink: frames per latency bucket, summed over CPUs.
    ///
    /// # Errors
    /// When the map cannot be read.
    pub fn sink_latency(&self) -> Result<Vec<u64>, XdpError> {
        self.per_cpu_sums(names::SINK_LATENCY, xlagg_common::SINK_LATENCY_BUCKETS)
    }

    /// Sink: from now on, stamp the first test frame (and go on stamping the last).
    ///
    /// # Errors
    /// When the map update fails.
    pub fn arm_first_seen(&mut self) -> Result<(), XdpError> {
        let port = self.port.clone();
        let err = |detail: String| XdpError::Map {
            port: port.clone(),
            map: names::SINK_FIRST,
            detail,
        };
        let data = self
            .ebpf
            .map_mut(names::SINK_FIRST)
            .ok_or_else(|| err("missing".into()))?;
        let mut array: Array<&mut MapData, u64> =
            Array::try_from(data).map_err(|e| err(e.to_string()))?;
        array.set(1, 0, 0).map_err(|e| err(e.to_string()))?;
        array.set(5, 0, 0).map_err(|e| err(e.to_string()))?;
        array.set(0, 1, 0).map_err(|e| err(e.to_string()))
    }

    /// Sink: `[first, last, first's sequence number, last's, largest jump]`: the times
    /// (CLOCK_MONOTONIC ns) of the first test frame since armed (0: none yet) and of the last
    /// one, their sequence numbers, and the most numbers missing between two consecutive test
    /// frames since armed.
    ///
    /// # Errors
    /// When the map cannot be read.
    pub fn first_seen(&self) -> Result<[u64; 5], XdpError> {
        let map = self
            .ebpf
            .map(names::SINK_FIRST)
            .ok_or_else(|| self.map_err(names::SINK_FIRST, "missing"))?;
        let array: Array<&MapData, u64> =
            Array::try_from(map).map_err(|e| self.map_err(names::SINK_FIRST, e))?;
        let mut seen = [0u64; 5];
        for (i, v) in seen.iter_mut().enumerate() {
            *v = array
                .get(&(i as u32 + 1), 0)
                .map_err(|e| self.map_err(names::SINK_FIRST, e))?;
        }
        Ok(seen)
    }

    /// Sink: test frames of flows `0..flows`.
    ///
    /// # Errors
    /// When the map cannot be read.
    pub fn sink_flows(&self, flows: u32) -> Result<Vec<u64>, XdpError> {
        let map = self
            .ebpf
            .map(names::SINK_FLOWS)
            .ok_or_else(|| self.map_err(names::SINK_FLOWS, "missing"))?;
        let array: aya::maps::Array<&MapData, u64> =
            aya::maps::Array::try_from(map).map_err(|e| self.map_err(names::SINK_FLOWS, e))?;
        (0..flows.min(xlagg_common::SINK_FLOWS))
            .map(|i| {
                array
                    .get(&i, 0)
                    .map_err(|e| self.map_err(names::SINK_FLOWS, e))
            })
            .collect()
    }

    fn per_cpu_sums(&self, name: &'static str, n: u32) -> Result<Vec<u64>, XdpError> {
        let map = self
            .ebpf
            .map(name)
            .ok_or_else(|| self.map_err(name, "missing"))?;
        let array: PerCpuArray<&MapData, u64> =
            PerCpuArray::try_from(map).map_err(|e| self.map_err(name, e))?;
        (0..n)
            .map(|i| {
                array
                    .get(&i, 0)
                    .map(|v| v.iter().sum())
                    .map_err(|e| self.map_err(name, e))
            })
            .collect()
    }

    /// Generator: frames generated so far, summed over CPUs.
    ///
    /// # Errors
    /// When the map cannot be read.
    pub fn generated(&self) -> Result<u64, XdpError> {
        let map = self
            .ebpf
            .map(names::GEN_COUNT)
            .ok_or_else(|| self.map_err(names::GEN_COUNT, "missing"))?;
        let array: PerCpuArray<&MapData, u64> =
            PerCpuArray::try_from(map).map_err(|e| self.map_err(names::GEN_COUNT, e))?;
        let values = array
            .get(&0, 0)
            .map_err(|e| self.map_err(names::GEN_COUNT, e))?;
        Ok(values.iter().sum())
    }

    /// Runs the program `repeat` times on `frame` in the kernel's live-frames mode
    /// (`BPF_F_TEST_XDP_LIVE_FRAMES`), as if the frame had arrived on `ifindex` (of the calling
    /// thread's network namespace): frames the program returns `XDP_TX` for leave on that
    /// device. This is how the benchmark generates traffic without an skb per frame.
    ///
    /// # Errors
    /// When the kernel refuses the run (e.g. no XDP program on the device's veth peer).
    pub fn run_live(&self, frame: &[u8], ifindex: u32, repeat: u32) -> Result<(), XdpError> {
        let program: &Xdp = self
            .ebpf
            .program(self.kind.name())
            .and_then(|p| <&Xdp>::try_from(p).ok())
            .ok_or_else(|| self.map_err("program", "missing"))?;
        // struct xdp_md: data, data_end, data_meta, ingress_ifindex, rx_queue_index,
        // egress_ifindex. The kernel wants data = 0 and data_end = the frame length.
        let md = [0u32, frame.len() as u32, 0, ifindex, 0, 0];
        let mut ctx = [0u8; 24];
        for (chunk, v) in ctx.chunks_exact_mut(4).zip(md) {
            chunk.copy_from_slice(&v.to_ne_bytes());
        }
        let opts = TestRunOptions {
            data_in: Some(frame),
            ctx_in: Some(&ctx),
            repeat,
            attrs: TestRunAttrs::new().xdp_live_frames(64),
            ..Default::default()
        };
        program.test_run(opts).map(|_| ()).map_err(|e| match e {
            ProgramError::SyscallError(e) => XdpError::LiveFrames { source: e.io_error },
            other => self.map_err("test_run (live frames)", error_chain(&other)),
        })
    }

    /// Detaches the program (also done on drop).
    pub fn detach(self) {
        drop(self);
    }
}

pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
