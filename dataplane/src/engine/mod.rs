//! The engines that distribute inside the kernel, driven by the same control plane as the
//! workers: the XDP engine (`engine = "xdp"`, `ebpf/xdp/src/engine.rs`) and the tc host path
//! (`engine = "tc"`, `ebpf/xdp/src/host.rs`), two sets of hooks ([`Hooks`]) over one object
//! and the same maps.
//!
//! One object per lagg. With XDP hooks its program is attached to every member and to the
//! upper port; with tc hooks one program is on every member's ingress and one on laggN's
//! egress. Every attachment is a BPF link (gone with the process, so a killed daemon leaves no
//! program behind). The control thread never touches a frame: it writes maps.
//! - ports: ingress ifindex -> slot and state (collecting, LACP, micro-BFD, probe MAC), the
//!   same state the AF_XDP engine's port program reads;
//! - the devmap of slots (members, then the upper port), written at attach (XDP), and the
//!   same slots' ifindexes (tc, whose redirect takes an ifindex);
//! - two copies of the table and of the broadcast devmap, and a selector: [`XdpEngine::publish`]
//!   writes the copy frames are not reading, then flips the selector, so a frame sees the old
//!   table or the new one, never a mix;
//! - counters per slot and reason, read by [`XdpEngine::counters`];
//! - the lost-member words: the transmit watch ([`XdpEngine::watch_transmit`], a raw
//!   tracepoint on the kernel's devmap flush) marks a member whose transmit failed whole; the
//!   program then places that member's frames by the table without it (written with every
//!   publish). The AF_XDP workers mark and read the same words ([`XdpEngine::lost_words`]),
//!   so both engines leave a dead member without waiting for the control thread, which clears
//!   a mark once the member is usable again. An AF_XDP lagg loads this object for the words
//!   alone ([`XdpEngine::watch_port`], no XDP attached).
//!
//! Non-goals: deciding anything. The tables are the workers' [`DistributionTable`]s.

use std::collections::BTreeMap;

use std::sync::OnceLock;

use aya::maps::{Array, DevMapHash, HashMap, MapData, PerCpuArray, PerCpuValues};
use aya::programs::tc::TcAttachOptions;
use aya::programs::{
    links::FdLink, LinkOrder, RawTracePoint, SchedClassifier, TcAttachType, TestRun,
    TestRunOptions, Xdp, XdpMode,
};
use aya::{Ebpf, EbpfLoader};
use xlagg_common::{
    engine_policy, names, BucketHits, EngineCounter, EngineCounters, EnginePort, EngineTable,
    PortState, ENGINE_BUCKETS, ENGINE_MEMBERS, ENGINE_SLOTS, ENGINE_UPPER_SLOT, LOST_EPOCH,
    LOST_WORDS,
};

use crate::btf::Btf;
use crate::distribution::DistributionTable;
use crate::mapped_words::MappedWords;

mod maps;
mod watch;
use crate::xdp::{error_chain, AttachMode, XdpError};

/// The XDP engine's object built by `build.rs` from `ebpf/xdp/src/engine.rs`.
pub static ENGINE_OBJECT: &[u8] =
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/xlagg-engine"));

/// Where the object's programs hook into the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hooks {
    /// XDP on every port (the XDP engine).
    Xdp,
    /// tc on laggN's egress and every member's ingress (the host path).
    Tc,
    /// None: the object's maps and watches alone (an AF_XDP lagg's lost-member words).
    None,
}

/// One port of the engine as the control thread last wrote it.
#[derive(Debug)]
struct Attached {
    name: String,
    value: EnginePort,
    link: Option<FdLink>,
    mode: AttachMode,
}

/// A lagg's XDP engine: the loaded object, its links and what was written to its maps.
#[derive(Debug)]
pub struct XdpEngine {
    ebpf: Ebpf,
    lagg: String,
    /// Ports by ifindex.
    ports: BTreeMap<u32, Attached>,
    /// The copy of the table and broadcast map frames read now.
    live: u32,
    /// Links on devices that only receive what the engine redirects (laggN).
    passive: Vec<FdLink>,
    /// When the selector last flipped: the copy it left is rewritten only after frames that
    /// read it before the flip are done (see [`XdpEngine::publish`]).
    flipped: Option<std::time::Instant>,
    /// The lost-member words, mapped: cleared here when a slot is (re)used.
    words: Option<MappedWords>,
    hooks: Hooks,
}

/// How long a frame that read the selector may still be reading the copy it named: one run
/// of the program takes microseconds (it runs with preemption off); this is ample.
const GRACE: std::time::Duration = std::time::Duration::from_millis(1);

/// Where the watches read the running kernel's objects, from its BTF, read once.
#[derive(Clone, Copy, Debug, Default)]
struct KernelOffsets {
    /// `ifindex` in `struct net_device`.
    ifindex: u32,
    /// `state` in `struct net_device` (the carrier bit).
    state: u32,
    /// `dev` in `struct sk_buff`.
    skb_dev: u32,
    /// `nd_net` in `struct net_device` (its network namespace).
    netdev_net: u32,
    /// `net_cookie` in `struct net`.
    net_cookie: u32,
}

fn kernel_offsets() -> &'static Result<KernelOffsets, String> {
    static OFFSETS: OnceLock<Result<KernelOffsets, String>> = OnceLock::new();
    OFFSETS.get_or_init(|| {
        let btf = Btf::vmlinux()?;
        let offset = |object: &str, member: &str| {
            btf.member_offset(object, member)
                .and_then(|off| u32::try_from(off).map_err(|e| e.to_string()))
        };
        let found = KernelOffsets {
            ifindex: offset("net_device", "ifindex")?,
            state: offset("net_device", "state")?,
            skb_dev: offset("sk_buff", "dev")?,
            netdev_net: offset("net_device", "nd_net")?,
            net_cookie: offset("net", "net_cookie")?,
        };
        // The programs take 0 for "unknown"; none of these fields opens its struct.
        let fields = [
            found.ifindex,
            found.state,
            found.skb_dev,
            found.netdev_net,
            found.net_cookie,
        ];
        if fields.contains(&0) {
            return Err(format!(
                "unexpected offsets in the kernel's BTF ({found:?}): not a kernel this knows"
            ));
        }
        Ok(found)
    })
}

impl Hooks {
    fn engine_name(self) -> &'static str {
        match self {
            Hooks::Xdp => "XDP engine",
            Hooks::Tc => "tc host path",
            Hooks::None => "lost-member words",
        }
    }
}

impl XdpEngine {
    /// Loads the object for lagg `lagg` with its programs for `hooks` (nothing attached yet):
    /// the XDP engine's program, the tc host path's two, or none (the maps and watches alone,
    /// for an AF_XDP lagg's lost-member words: see [`watch_drops`](Self::watch_drops); ports
    /// cannot be attached then).
    ///
    /// # Errors
    /// When the object or a program does not load (the verifier's message included).
    pub fn load(lagg: &str, hooks: Hooks) -> Result<Self, XdpError> {
        let load_err = |detail: String| XdpError::Load {
            port: format!("{lagg} ({})", hooks.engine_name()),
            detail,
        };
        // 0 when the kernel has no BTF: the watches then do nothing (and `watch_transmit`
        // and `watch_drops` say why).
        crate::xdp::ensure_built(ENGINE_OBJECT, &format!("{lagg} ({})", hooks.engine_name()))?;
        let at = kernel_offsets().as_ref().copied().unwrap_or_default();
        // 0 without SO_NETNS_COOKIE: the watches then take no device for a member.
        let cookie = xlagg_sys::netns::cookie().unwrap_or(0);
        let mut ebpf = EbpfLoader::new()
            .override_global(names::IFINDEX_OFFSET, &at.ifindex, true)
            .override_global(names::STATE_OFFSET, &at.state, true)
            .override_global(names::SKB_DEV_OFFSET, &at.skb_dev, true)
            .override_global(names::NETDEV_NET_OFFSET, &at.netdev_net, true)
            .override_global(names::NET_COOKIE_OFFSET, &at.net_cookie, true)
            .override_global(names::NETNS_COOKIE, &cookie, true)
            .load(ENGINE_OBJECT)
            .map_err(|e| load_err(error_chain(&e)))?;
        match hooks {
            Hooks::Xdp => {
                let program: &mut Xdp = ebpf
                    .program_mut(names::ENGINE_PROGRAM)
                    .ok_or_else(|| load_err(format!("no program {}", names::ENGINE_PROGRAM)))?
                    .try_into()
                    .map_err(|e: aya::programs::ProgramError| load_err(e.to_string()))?;
                program.load().map_err(|e| load_err(error_chain(&e)))?;
            }
            Hooks::Tc => {
                for name in [names::HOST_OUT_PROGRAM, names::HOST_IN_PROGRAM] {
                    let program: &mut SchedClassifier = ebpf
                        .program_mut(name)
                        .ok_or_else(|| load_err(format!("no program {name}")))?
                        .try_into()
                        .map_err(|e: aya::programs::ProgramError| load_err(e.to_string()))?;
                    program
                        .load()
                        .map_err(|e| load_err(format!("{name}: {}", error_chain(&e))))?;
                }
            }
            Hooks::None => {}
        }
        let mut engine = Self {
            ebpf,
            lagg: lagg.to_string(),
            ports: BTreeMap::new(),
            live: 0,
            passive: Vec::new(),
            flipped: None,
            words: None,
            hooks,
        };
        engine.words = Some(engine.lost_words()?);
        Ok(engine)
    }

    /// The hooks this object was loaded for.
    pub fn hooks(&self) -> Hooks {
        self.hooks
    }

    fn map_err(&self, map: &'static str, detail: impl ToString) -> XdpError {
        XdpError::Map {
            port: format!("{} (XDP engine)", self.lagg),
            map,
            detail: detail.to_string(),
        }
    }

    fn program(&mut self) -> Result<&mut Xdp, XdpError> {
        let err = self.map_err("program", "missing");
        self.ebpf
            .program_mut(names::ENGINE_PROGRAM)
            .and_then(|p| <&mut Xdp>::try_from(p).ok())
            .ok_or(err)
    }

    /// Adds port `name` (`ifindex`) in `slot` (a member slot, or [`ENGINE_UPPER_SLOT`] with
    /// `upper`): its slot's device and its state (not collecting) first, then the program:
    /// XDP in driver mode or, with a warning, generic mode; or the tc host path's program on a
    /// member's ingress or on laggN's (the upper port's) egress.
    ///
    /// # Errors
    /// A map write, or neither mode attaching (the maps are cleaned again).
    pub fn attach(
        &mut self,
        name: &str,
        ifindex: u32,
        slot: u32,
        upper: bool,
    ) -> Result<AttachMode, XdpError> {
        if slot >= ENGINE_SLOTS {
            return Err(self.map_err(names::ENGINE_TX, format!("slot {slot} out of range")));
        }
        let value = EnginePort {
            flags: if upper { EnginePort::UPPER } else { 0 },
            slot,
            probe_mac: [0; 6],
            pad: [0; 2],
        };
        // A slot used before starts from zero, as a fresh port program would.
        self.reset_counters(slot)?;
        if slot < ENGINE_MEMBERS {
            self.array_set(names::ENGINE_REFUSED, slot, 0u32)?;
        }
        self.clear_lost(slot);
        self.write_port(ifindex, value)?;
        let attached = match self.hooks {
            Hooks::Xdp => self
                .tx_map(|m| {
                    m.insert(slot, ifindex, None, 0)
                        .map_err(|e| error_chain(&e))
                })
                .and_then(|()| self.attach_link(name, ifindex)),
            Hooks::Tc => self
                .array_set(names::ENGINE_IFINDEX, slot, ifindex)
                .and_then(|()| self.attach_tc(name, upper)),
            Hooks::None => Err(self.map_err("program", "loaded without hooks")),
        };
        let (link, mode) = match attached {
            Ok(done) => done,
            Err(e) => {
                let _ = self.remove_port(ifindex, slot);
                return Err(e);
            }
        };
        self.ports.insert(
            ifindex,
            Attached {
                name: name.to_string(),
                value,
                link: Some(link),
                mode,
            },
        );
        Ok(mode)
    }

    fn attach_link(&mut self, name: &str, ifindex: u32) -> Result<(FdLink, AttachMode), XdpError> {
        let program = self.program()?;
        let attached = match program.attach_to_if_index(ifindex, XdpMode::Driver) {
            Ok(id) => Ok((id, AttachMode::Driver)),
            Err(native) => match program.attach_to_if_index(ifindex, XdpMode::Skb) {
                Ok(id) => {
                    tracing::warn!(port = name, error = %error_chain(&native), "driver-mode XDP refused; the XDP engine runs in generic mode there (slower)");
                    Ok((id, AttachMode::Generic))
                }
                Err(generic) => Err(XdpError::Attach {
                    port: name.to_string(),
                    native: error_chain(&native),
                    generic: error_chain(&generic),
                }),
            },
        };
        let (id, mode) = attached?;
        // The link is held here, per port, so one port detaches on its own.
        let link = program
            .take_link(id)
            .map_err(|e| XdpError::Load {
                port: name.to_string(),
                detail: error_chain(&e),
            })
            .and_then(|link| {
                FdLink::try_from(link).map_err(|e| XdpError::Load {
                    port: name.to_string(),
                    detail: format!(
                        "the kernel attached without a BPF link ({}); the XDP engine needs BPF links (Linux 5.9)",
                        error_chain(&e)
                    ),
                })
            })?;
        Ok((link, mode))
    }

    /// Attaches the tc host path's program for `name`: laggN's egress (`upper`) or a member's
    /// ingress, by a tcx link (Linux 6.6), so it goes with the process. laggN's program runs
    /// after any other on its egress (a VLAN stand-in's, say); a member's before any other on
    /// its ingress.
    fn attach_tc(&mut self, name: &str, upper: bool) -> Result<(FdLink, AttachMode), XdpError> {
        let (program, direction, order) = if upper {
            (
                names::HOST_OUT_PROGRAM,
                TcAttachType::Egress,
                LinkOrder::last(),
            )
        } else {
            (
                names::HOST_IN_PROGRAM,
                TcAttachType::Ingress,
                LinkOrder::first(),
            )
        };
        let load_err = |detail: String| XdpError::Load {
            port: name.to_string(),
            detail,
        };
        let classifier: &mut SchedClassifier = self
            .ebpf
            .program_mut(program)
            .and_then(|p| <&mut SchedClassifier>::try_from(p).ok())
            .ok_or_else(|| load_err(format!("no program {program}")))?;
        let id = classifier
            .attach_with_options(name, direction, TcAttachOptions::TcxOrder(order))
            .map_err(|e| XdpError::Attach {
                port: name.to_string(),
                native: format!(
                    "tc {} (tcx link): {}",
                    if upper { "egress" } else { "ingress" },
                    error_chain(&e)
                ),
                generic: "the tc host path needs tcx links (Linux 6.6); use engine = \"xdp\" on an older kernel".into(),
            })?;
        let link = classifier
            .take_link(id)
            .map_err(|e| load_err(error_chain(&e)))?;
        let link = FdLink::try_from(link).map_err(|e| load_err(error_chain(&e)))?;
        Ok((link, AttachMode::Tc))
    }

    /// Attaches the program to `name`, which is not a port (frames arriving there pass): a
    /// veth takes frames redirected into its peer only while it runs XDP or GRO, and laggN
    /// must take them whatever its offloads say.
    ///
    /// # Errors
    /// Neither mode attaching.
    pub fn attach_passive(&mut self, name: &str, ifindex: u32) -> Result<(), XdpError> {
        let (link, _) = self.attach_link(name, ifindex)?;
        self.passive.push(link);
        Ok(())
    }

    /// Removes port `ifindex`: its program (link closed), its slot's device and its state.
    pub fn detach(&mut self, ifindex: u32) {
        if let Some(port) = self.ports.remove(&ifindex) {
            drop(port.link);
            let slot = port.value.slot;
            if let Err(e) = self.remove_port(ifindex, slot) {
                tracing::warn!(lagg = %self.lagg, port = %port.name, slot, error = %e, "XDP engine: port entry left in its map");
            }
        }
    }

    /// Where the program runs on port `ifindex`.
    pub fn mode(&self, ifindex: u32) -> Option<AttachMode> {
        self.ports.get(&ifindex).map(|p| p.mode)
    }

    /// Runs the program once on `frame` as if it had arrived on `ifindex`
    /// (`BPF_PROG_TEST_RUN`, nothing is sent) and returns its XDP action: with the counters,
    /// how tests see where the engine places a frame.
    ///
    /// # Errors
    /// When the kernel refuses the run.
    pub fn test_run(&self, frame: &[u8], ifindex: u32) -> Result<u32, XdpError> {
        let program: &Xdp = self
            .ebpf
            .program(names::ENGINE_PROGRAM)
            .and_then(|p| <&Xdp>::try_from(p).ok())
            .ok_or_else(|| self.map_err("program", "missing"))?;
        // struct xdp_md: data, data_end, data_meta, ingress_ifindex, rx_queue_index,
        // egress_ifindex.
        let md = [0u32, frame.len() as u32, 0, ifindex, 0, 0];
        let mut ctx = [0u8; 24];
        for (chunk, v) in ctx.chunks_exact_mut(4).zip(md) {
            chunk.copy_from_slice(&v.to_ne_bytes());
        }
        let mut out = vec![0u8; frame.len() + 256];
        let opts = TestRunOptions {
            data_in: Some(frame),
            data_out: Some(&mut out),
            ctx_in: Some(&ctx),
            ..Default::default()
        };
        program
            .test_run(opts)
            .map(|r| r.return_value)
            .map_err(|e| self.map_err("test_run", error_chain(&e)))
    }
}
