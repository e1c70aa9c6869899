//! A running lagg: its ports, XDP programs, workers, and the state the control thread keeps.
//!
//! Start order: check everything that can be checked without touching the machine (protocol
//! available, devices exist, queues), then create the host interface, attach programs, open
//! sockets, spawn workers, and publish the first distribution table. Every step records what it
//! created in the [`Lagg`] value at once, so a failure half-way and a normal stop run the same
//! teardown: workers stopped, programs detached, promiscuous mode restored, created interfaces
//! deleted.
//!
//! Link state is read by the control thread (see [`Lagg::refresh_links`]); on any change it
//! derives the next [`DistributionTable`] from the previous one (so only the affected buckets
//! move), publishes it, and sets each port's collecting flag in its XDP state map.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use xlagg_common::XdpCounter;
use xlagg_dataplane::afpacket::{self, PacketSocket, ETH_P_SLOW};
use xlagg_dataplane::afxdp::{RingSizes, Umem};
use xlagg_dataplane::counters::{DropReason, PortTotals, WorkerCounters, XskCounter};
use xlagg_dataplane::distribution::{DistributionTable, MemberIndex, TxPolicy, MAX_MEMBERS};
use xlagg_dataplane::linkevents::LinkEvent;
use xlagg_dataplane::worker::{self, Worker, WorkerLayout};
use xlagg_dataplane::xdp::{PortProgram, ProgramKind, XdpError};

use crate::bfd;
use crate::config::{BfdOptions, LaggConfig, LaggProto, Upper};
use crate::lacp::pdu::PortState;
use crate::lacp::{self, Lacp, LacpConfig, PortConfig, Time};
use crate::members::{Event as MemberEvent, MemberSet, Rules, Verdict};
use crate::netdev::{format_mac, LinkState, NetdevError, Netlink};
use crate::status::{flag_names, LacpLagg, LacpPort, LaggStatus, PortFlags, PortStatus};

/// Prefix of the kernel-side peer of a host-mode lagg interface (`xlh-lagg0`).
pub const HOST_PEER_PREFIX: &str = "xlh-";

/// Errors starting or running a lagg.
#[derive(Debug, thiserror::Error)]
pub enum LaggError {
    /// A member or forward port does not exist.
    #[error("{lagg}.{field}: {source}")]
    Device {
        /// Lagg name.
        lagg: String,
        /// The config field naming the device.
        field: &'static str,
        /// The look-up error.
        #[source]
        source: NetdevError,
    },
    /// Something that exists already and is not ours.
    #[error("{0}")]
    Conflict(String),
    /// A netlink request failed.
    #[error(transparent)]
    Netdev(#[from] NetdevError),
    /// XDP attach or map error.
    #[error(transparent)]
    Xdp(#[from] XdpError),
    /// A packet socket of a member (LACP, promiscuity) could not be opened.
    #[error("{lagg}: {what} socket on {port}: {source}")]
    PacketSocket {
        /// Lagg name.
        lagg: String,
        /// Port name.
        port: String,
        /// What it was for.
        what: &'static str,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// AF_XDP socket setup failed.
    #[error("{lagg}: AF_XDP socket on {port} queue {queue}: {detail}")]
    Socket {
        /// Lagg name.
        lagg: String,
        /// Port name.
        port: String,
        /// Queue.
        queue: u32,
        /// The error.
        detail: String,
    },
}

/// One port of the lagg: a member or the upper port.
#[derive(Debug)]
pub struct Port {
    /// Interface name.
    pub name: String,
    /// Interface index.
    pub ifindex: u32,
    program: Option<PortProgram>,
    /// Holds the port promiscuous while open (the kernel undoes it when it closes).
    promiscuous: Option<PacketSocket>,
    /// Whether the upper port's XDP program delivers to the workers (members: see the member
    /// set).
    collecting: bool,
    /// The port's MAC address.
    pub mac: [u8; 6],
    /// Offloads turned off at attach, to set back at teardown.
    restore_features: Vec<(String, bool)>,
}

/// The LACP side of a lagg: the sans-IO core and one slow-protocol socket per member.
#[derive(Debug)]
struct LacpRuntime {
    core: Lacp,
    sockets: Vec<Option<PacketSocket>>,
    epoch: Instant,
}

impl LacpRuntime {
    fn now(&self) -> Time {
        Time::from_duration(self.epoch.elapsed())
    }
}

/// Micro-BFD of a lagg: a session and an IPv4 packet socket per member.
#[derive(Debug)]
struct BfdRuntime {
    sessions: Vec<bfd::Session>,
    /// Without a configured peer: the address each session came up with, held while it is
    /// up (packets from anyone else are discarded).
    peers: Vec<Option<[u8; 4]>>,
    sockets: Vec<Option<PacketSocket>>,
    epoch: Instant,
    src_ip: [u8; 4],
    dst_ip: [u8; 4],
}

impl BfdRuntime {
    /// Sends control packet `packet` of member `i` (MAC `mac`) on its link.
    fn send(&self, i: usize, mac: [u8; 6], packet: &[u8; bfd::PACKET_LEN]) -> std::io::Result<()> {
        let frame = bfd::frame(mac, self.src_ip, self.dst_ip, 49152 + i as u16, packet);
        match self.sockets.get(i).and_then(Option::as_ref) {
            Some(socket) => socket.send(&frame),
            None => Ok(()),
        }
    }
}

/// A control-path socket of a lagg: which monitor reads it, for which member.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ControlSocket {
    /// The member's slow-protocol socket (LACP, Marker).
    Lacp(usize),
    /// The member's micro-BFD socket.
    Bfd(usize),
    /// The member's ARP/NS probe monitor socket.
    Probe(usize),
}

/// The ARP/NS probe monitor of a lagg: a packet socket per member, when each member last got a
/// reply, when the next round goes out.
#[derive(Debug)]
struct ArpRuntime {
    targets: Vec<std::net::IpAddr>,
    interval: Duration,
    window: Duration,
    sockets: Vec<Option<PacketSocket>>,
    probe_macs: Vec<[u8; 6]>,
    last_reply: Vec<Option<Instant>>,
    next_round: Instant,
}

/// What a caller may change about how a lagg starts (the benchmark uses these).
#[derive(Clone, Copy, Debug, Default)]
pub struct StartOptions {
    /// Replace the protocol's policy with this one (e.g. [`TxPolicy::Fixed`] for a ceiling).
    pub policy_override: Option<TxPolicy>,
}

/// A running lagg.
#[derive(Debug)]
pub struct Lagg {
    cfg: LaggConfig,
    policy: TxPolicy,
    members: Vec<Port>,
    upper: Option<Port>,
    created: Vec<(u32, String)>,
    table: Arc<ArcSwap<DistributionTable>>,
    stop: Arc<AtomicBool>,
    workers: Vec<(
        JoinHandle<()>,
        Arc<WorkerCounters>,
        Arc<worker::WorkerControl>,
    )>,
    lacp: Option<LacpRuntime>,
    /// The members' state and the rules over it (sans-IO; see [`crate::members`]).
    set: MemberSet,
    /// Time zero of every timer of this lagg (the member set's, LACP's, micro-BFD's).
    epoch: Instant,
    /// Send-only packet sockets per member for peer notifications, opened when first needed.
    notify_sockets: Vec<Option<PacketSocket>>,
    /// Forward mode: source MACs the workers saw from the downstream port.
    recent_macs: Option<Arc<xlagg_dataplane::learn::RecentMacs>>,
    /// The MACs of the previous aging period, and when the current one ends.
    previous_macs: (Vec<[u8; 6]>, Instant),
    /// State changes not yet collected by the daemon's event log.
    events: Vec<LaggEvent>,
    /// Micro-BFD, when enabled.
    bfd: Option<BfdRuntime>,
    /// The ARP/NS probe monitor, when enabled.
    arp: Option<ArpRuntime>,
}

/// A state change of a lagg, for the event timeline.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct LaggEvent {
    /// Milliseconds since the Unix epoch.
    pub time_ms: u64,
    /// `link`, `failover`, `lacp` or `config`.
    pub kind: &'static str,
    /// The lagg.
    pub lagg: String,
    /// The port, if the event concerns one.
    pub port: Option<String>,
    /// What happened, in words.
    pub text: String,
}

/// Milliseconds since the Unix epoch.
pub fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// One worker's loop counters and latency buckets, as last read.
#[derive(Clone, Debug)]
pub struct WorkerSample {
    /// Receive queue it serves.
    pub queue: usize,
    /// Nanoseconds in iterations that moved frames.
    pub busy_ns: u64,
    /// Iterations that moved frames / moved nothing.
    pub loops: (u64, u64),
    /// Frames per latency bucket.
    pub latency: Vec<u64>,
    /// Sum of the frames' latencies, nanoseconds.
    pub latency_sum_ns: u64,
    /// Where its UMEM frames are.
    pub frames: xlagg_dataplane::counters::FrameSnapshot,
}

/// One port's counters and state, as last read.
#[derive(Clone, Debug)]
pub struct PortSample {
    /// Interface name.
    pub name: String,
    /// `member` or `upper`.
    pub role: &'static str,
    /// Link up (members: after updelay/downdelay).
    pub link: bool,
    /// Collecting / distributing.
    pub collecting: bool,
    /// In the distribution.
    pub distributing: bool,
    /// Worker counters summed over workers.
    pub totals: PortTotals,
    /// The XDP program's counters.
    pub xdp: [u64; XdpCounter::COUNT as usize],
    /// LACP, for lacp members.
    pub lacp: Option<lacp::PortStatus>,
    /// Micro-BFD session state and counters, when enabled.
    pub bfd: Option<(bfd::State, bfd::Counters)>,
    /// The ARP/NS probe monitor's verdict, when enabled.
    pub probe_ok: Option<bool>,
}

/// Everything the metrics and the dashboard read of one lagg.
#[derive(Clone, Debug)]
pub struct LaggSample {
    /// The lagg.
    pub name: String,
    /// Protocol.
    pub proto: LaggProto,
    /// Members, then the upper port.
    pub ports: Vec<PortSample>,
    /// Workers.
    pub workers: Vec<WorkerSample>,
    /// Active-port changes (failover).
    pub failovers: u64,
    /// Member link changes.
    pub flaps: u64,
    /// Members that carry traffic now.
    pub active_ports: usize,
}

/// How long a source MAC counts as recently seen (at least; at most twice that).
const MAC_AGING: Duration = Duration::from_secs(60);

/// The member set's rules of a lagg's configuration.
fn rules_for(cfg: &LaggConfig) -> Rules {
    Rules {
        proto: cfg.proto,
        rx_all: cfg.rx_all,
        updelay: Duration::from_millis(cfg.updelay_ms),
        downdelay: Duration::from_millis(cfg.downdelay_ms),
        notify_count: cfg.notify_count,
        notify_interval: Duration::from_millis(cfg.notify_interval_ms),
    }
}

fn policy_for(cfg: &LaggConfig) -> TxPolicy {
    match cfg.proto {
        LaggProto::Failover => TxPolicy::Failover,
        LaggProto::LoadBalance | LaggProto::Lacp => TxPolicy::Hash { layers: cfg.hash },
        LaggProto::RoundRobin => TxPolicy::RoundRobin {
            limit: cfg.rr_limit,
        },
        LaggProto::Broadcast => TxPolicy::Broadcast,
        LaggProto::None => TxPolicy::None,
    }
}

/// Name of the kernel-side peer of host-mode lagg `name`.
pub fn host_peer_name(name: &str) -> String {
    format!("{HOST_PEER_PREFIX}{name}")
}

impl Lagg {
    /// Checks what can be checked before anything is created: the protocol is available and
    /// every device exists with enough receive queues.
    ///
    /// # Errors
    /// The first problem, naming the field.
    pub fn preflight(nl: &Netlink, cfg: &LaggConfig) -> Result<(), LaggError> {
        Self::preflight_owned(nl, cfg, &[])
    }

    /// [`preflight`](Self::preflight) while this daemon already holds XDP programs on the
    /// devices `running` (by index): those are not foreign.
    ///
    /// # Errors
    /// The first problem, naming the field.
    pub fn preflight_owned(
        nl: &Netlink,
        cfg: &LaggConfig,
        running: &[u32],
    ) -> Result<(), LaggError> {
        let queues = cfg.cores.len().max(1) as u32;
        let check = |name: &str, field: &'static str| -> Result<(), LaggError> {
            let link = nl.require(name).map_err(|source| LaggError::Device {
                lagg: cfg.name.clone(),
                field,
                source,
            })?;
            // xlaggd's own programs are held by BPF links and go with the process that holds
            // them, so a program found here belongs to something else (or another xlaggd).
            if let Some(id) = link.xdp_prog.filter(|_| !running.contains(&link.index)) {
                return Err(LaggError::Conflict(format!(
                    "{}.{field}: {name} already has an XDP program (id {id}) that this xlaggd did not attach; \
                     detach it (ip link set dev {name} xdp off) or choose another port",
                    cfg.name
                )));
            }
            // RSS spreads flows over the active channels: each needs a worker, or the flows
            // hashed to it are dropped (no socket).
            let active = crate::offload::active_rx_channels(name).unwrap_or(link.rx_queues);
            if active != queues {
                let fix = if active < queues {
                    format!("list {active} cores, or raise the channels (ethtool -L {name} combined {queues})")
                } else {
                    format!(
                        "list {active} cores (one worker per channel), or lower the channels \
                         (ethtool -L {name} combined {queues}); otherwise RSS sends about {}% of the flows to \
                         queues no worker serves",
                        (active - queues) * 100 / active
                    )
                };
                return Err(LaggError::Conflict(format!(
                    "{}.cores: {queues} worker(s), but {name} has {active} active receive channels: {fix}",
                    cfg.name
                )));
            }
            Ok(())
        };
        for port in &cfg.ports {
            check(port, "laggports")?;
        }
        if let Upper::Forward { port } = &cfg.upper {
            check(port, "forward_port")?;
        }
        if let Upper::Host { .. } = cfg.upper {
            if let Some(existing) = nl.link(&cfg.name)? {
                if !is_stale_host_interface(nl, &existing)? {
                    return Err(LaggError::Conflict(format!(
                        "{}: an interface named {} already exists and was not created by xlaggd; remove it or \
                         choose another lagg name",
                        cfg.name, cfg.name
                    )));
                }
            }
        }
        Ok(())
    }

    /// Starts a lagg: everything it creates is undone if a later step fails.
    ///
    /// # Errors
    /// The failing step; nothing is left behind.
    pub fn start(nl: &Netlink, cfg: &LaggConfig, options: StartOptions) -> Result<Lagg, LaggError> {
        Self::preflight(nl, cfg)?;
        let policy = options.policy_override.unwrap_or_else(|| policy_for(cfg));
        let seed = u64::from(std::process::id()).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x7861_6767;
        let mut lagg = Lagg {
            cfg: cfg.clone(),
            policy,
            members: Vec::new(),
            upper: None,
            created: Vec::new(),
            table: Arc::new(ArcSwap::from_pointee(DistributionTable::new(policy, seed))),
            stop: Arc::new(AtomicBool::new(false)),
            workers: Vec::new(),
            lacp: None,
            set: MemberSet::new(rules_for(cfg), &cfg.ports),
            epoch: Instant::now(),
            notify_sockets: Vec::new(),
            recent_macs: matches!(cfg.upper, Upper::Forward { .. })
                .then(|| Arc::new(xlagg_dataplane::learn::RecentMacs::default())),
            previous_macs: (Vec::new(), Instant::now() + MAC_AGING),
            events: Vec::new(),
            bfd: None,
            arp: None,
        };
        match lagg.bring_up(nl) {
            Ok(()) => Ok(lagg),
            Err(e) => {
                lagg.teardown(nl);
                Err(e)
            }
        }
    }

    fn bring_up(&mut self, nl: &Netlink) -> Result<(), LaggError> {
        let cfg = self.cfg.clone();
        let first_member = nl.require(&cfg.ports[0])?;
        let upper_name = match &cfg.upper {
            Upper::Host { .. } => {
                if let Some(stale) = nl.link(&cfg.name)? {
                    tracing::warn!(lagg = %cfg.name, "removing {} left behind by an earlier run", cfg.name);
                    nl.delete(stale.index, &stale.name)?;
                }
                let peer = host_peer_name(&cfg.name);
                if let Some(stale) = nl.link(&peer)? {
                    nl.delete(stale.index, &stale.name)?;
                }
                // One queue per worker at both ends, so the stack's transmit queues map onto the
                // queues the workers serve.
                nl.create_veth(&cfg.name, &peer, cfg.cores.len().max(1) as u32)?;
                let host = nl.require(&cfg.name)?;
                self.created.push((host.index, host.name.clone()));
                // As lagg does: the lagg interface takes the first member's MAC address.
                nl.set_mac(host.index, first_member.mac)?;
                let peer_link = nl.require(&peer)?;
                nl.set_mtu(peer_link.index, cfg.mtu)?;
                nl.set_mtu(host.index, cfg.mtu)?;
                self.complete_frames_on_host()?;
                nl.set_up(peer_link.index, true)?;
                peer
            }
            Upper::Forward { port } => port.clone(),
        };
        for (slot, name) in cfg.ports.iter().enumerate() {
            let port = self.attach_port(nl, name, Some(slot))?;
            self.members.push(port);
        }
        let upper = self.attach_port(nl, &upper_name, None)?;
        self.upper = Some(upper);
        self.spawn_workers()?;
        if let Upper::Host { addresses } = &cfg.upper {
            let host = nl.require(&cfg.name)?;
            nl.set_up(host.index, true)?;
            for (addr, prefix) in addresses {
                nl.add_address(host.index, *addr, *prefix)?;
            }
        }
        if let Some(upper) = self.upper.as_mut() {
            if let Some(program) = upper.program.as_mut() {
                program.set_collecting(true)?;
            }
            upper.collecting = true;
        }
        if cfg.proto == LaggProto::Lacp {
            self.start_lacp()?;
        }
        if let Some(b) = cfg.bfd {
            self.start_bfd(nl, b)?;
        }
        if let Some(a) = &cfg.arp {
            self.start_arp(a)?;
        }
        self.refresh_links(nl)?;
        let all: Vec<usize> = (0..self.members.len()).collect();
        self.publish(&all, true)?;
        // The first read is the starting state, not a flap or a failover.
        self.set.started();
        let mode = self
            .upper
            .as_ref()
            .and_then(|u| u.program.as_ref())
            .and_then(PortProgram::mode);
        tracing::info!(
            lagg = %cfg.name,
            laggproto = %cfg.proto,
            ports = %cfg.ports.join(","),
            upper = %upper_name,
            mac = %format_mac(first_member.mac),
            xdp_mode = %mode.map(|m| m.to_string()).unwrap_or_default(),
            workers = self.workers.len(),
            "lagg up"
        );
        Ok(())
    }

    /// Keeps laggN's transmit path completing every frame in its bytes (see
    /// [`crate::offload`]); called at bring-up and on every link notification of laggN, since
    /// a feature change sends one.
    fn complete_frames_on_host(&mut self) -> Result<(), LaggError> {
        let name = &self.cfg.name;
        let changed = crate::offload::complete_frames_on_host(name, self.cfg.hw_offload)
            .map_err(|e| LaggError::Conflict(e.to_string()))?;
        if !changed.is_empty() {
            tracing::info!(lagg = %name, features = %changed.join(","), "offloads that would leave checksums or VLAN tags unfinished turned off");
        }
        Ok(())
    }

    /// Attaches the port program to `name` (the member in slot `member` of the member set, or
    /// the upper port) and holds the port promiscuous.
    fn attach_port(
        &mut self,
        nl: &Netlink,
        name: &str,
        member: Option<usize>,
    ) -> Result<Port, LaggError> {
        let link = nl.require(name)?;
        let mut port = Port {
            name: name.to_string(),
            ifindex: link.index,
            program: None,
            promiscuous: None,
            collecting: false,
            mac: link.mac,
            restore_features: Vec::new(),
        };
        if let Some(slot) = member {
            let mtu_ok = link.mtu >= self.cfg.mtu;
            self.set.set_verdict(slot, Verdict::Mtu, mtu_ok);
            if !mtu_ok {
                tracing::warn!(lagg = %self.cfg.name, port = name, mtu = link.mtu, lagg_mtu = self.cfg.mtu, "member MTU below the lagg's: it carries nothing until raised");
            }
        }
        let member = member.is_some();
        if !link.admin_up {
            nl.set_up(link.index, true)?;
        }
        // Frames for the lagg's MAC arrive on every member; NICs filter them otherwise. Held
        // through a packet socket, so that even a crash leaves the port as it was.
        let holder = PacketSocket::bind(link.index, 0)
            .and_then(|s| s.hold_promiscuous().map(|()| s))
            .map_err(|source| LaggError::PacketSocket {
                lagg: self.cfg.name.clone(),
                port: name.to_string(),
                what: "promiscuous-mode",
                source,
            })?;
        port.promiscuous = Some(holder);
        // A NIC that strips VLAN tags on receive would hand the program untagged frames.
        match crate::offload::keep_vlan_tags(name) {
            Ok(crate::offload::VlanRx { restore, stuck }) => {
                port.restore_features = restore;
                if !stuck.is_empty() {
                    tracing::warn!(lagg = %self.cfg.name, port = name, features = %stuck.join(","), "the driver strips VLAN tags on receive and cannot stop: tagged frames on this port lose their tag");
                }
            }
            Err(e) => {
                tracing::warn!(lagg = %self.cfg.name, port = name, error = %e, "cannot read the port's VLAN offloads")
            }
        }
        match PortProgram::attach(name, link.index, ProgramKind::Port) {
            Ok(program) => port.program = Some(program),
            Err(e) => {
                restore_port(&mut port);
                return Err(e.into());
            }
        }
        // Only members speak LACP and micro-BFD; the upper port passes neither.
        let lacp = member && self.cfg.proto == LaggProto::Lacp;
        let bfd = member && self.cfg.bfd.is_some();
        if let Some(program) = port.program.as_mut() {
            if let Err(e) = program.set_control(lacp, bfd) {
                restore_port(&mut port);
                return Err(e.into());
            }
        }
        Ok(port)
    }

    fn spawn_workers(&mut self) -> Result<(), LaggError> {
        let cores: Vec<Option<usize>> = if self.cfg.cores.is_empty() {
            vec![None]
        } else {
            self.cfg.cores.iter().copied().map(Some).collect()
        };
        let sizes = RingSizes {
            fill: self.cfg.ring_size,
            completion: self.cfg.ring_size,
            rx: self.cfg.ring_size,
            tx: self.cfg.ring_size,
        };
        for (queue, core) in cores.into_iter().enumerate() {
            let queue = queue as u32;
            let mut ports: Vec<(String, u32)> = self
                .members
                .iter()
                .map(|p| (p.name.clone(), p.ifindex))
                .collect();
            if let Some(upper) = &self.upper {
                ports.push((upper.name.clone(), upper.ifindex));
            }
            // Room for members joining at run time, up to MAX_MEMBERS or four more.
            let spare = (MAX_MEMBERS - self.members.len()).min(worker::HOT_ADD_SPARE);
            let frames = worker::frames_for(ports.len(), spare, sizes);
            let umem = Umem::new(frames).map_err(|e| LaggError::Socket {
                lagg: self.cfg.name.clone(),
                port: "(UMEM)".into(),
                queue,
                detail: e.to_string(),
            })?;
            let sockets = worker::open_sockets(&umem, &ports, queue, sizes, self.cfg.zero_copy)
                .map_err(|(port, e)| LaggError::Socket {
                    lagg: self.cfg.name.clone(),
                    port,
                    queue,
                    detail: e.to_string(),
                })?;
            let all = self.members.iter_mut().chain(self.upper.as_mut());
            for (port, socket) in all.zip(&sockets) {
                if let Some(program) = port.program.as_mut() {
                    program.register_socket(queue, socket)?;
                }
            }
            tracing::info!(lagg = %self.cfg.name, queue, core = ?core, mode = %sockets[0].mode(), frames, "worker starting");
            let counters = Arc::new(WorkerCounters::new(worker::SLOTS));
            let control =
                Arc::new(worker::WorkerControl::new().map_err(|e| LaggError::Socket {
                    lagg: self.cfg.name.clone(),
                    port: "(worker mailbox)".into(),
                    queue,
                    detail: e.to_string(),
                })?);
            let worker = Worker::new(
                umem,
                sockets,
                WorkerLayout {
                    members: self.members.len(),
                    queue,
                    learn: self.recent_macs.clone(),
                    sizes,
                    control: Some(Arc::clone(&control)),
                },
                Arc::clone(&self.table),
                Arc::clone(&counters),
                Arc::clone(&self.stop),
            );
            let handle = std::thread::Builder::new()
                .name(format!("xlagg-{}-w{queue}", self.cfg.name))
                .spawn(move || worker.run(core))
                .map_err(|e| LaggError::Socket {
                    lagg: self.cfg.name.clone(),
                    port: "(thread)".into(),
                    queue,
                    detail: e.to_string(),
                })?;
            self.workers.push((handle, counters, control));
        }
        Ok(())
    }

    /// Now, on the clock of every timer of this lagg.
    fn now(&self) -> Time {
        Time::from_duration(self.epoch.elapsed())
    }

    /// The instant of `t` on this lagg's clock.
    fn instant(&self, t: Time) -> Instant {
        self.epoch + Duration::from_nanos(t.0)
    }

    /// Re-reads every member's link state from the kernel (at start, as a safety net, and after
    /// a notification overrun) and applies what changed.
    ///
    /// # Errors
    /// A netlink or map failure.
    pub fn refresh_links(&mut self, nl: &Netlink) -> Result<bool, LaggError> {
        let now = self.now();
        let mut changed = Vec::new();
        for i in 0..self.members.len() {
            if self.set.member(i).retired {
                continue;
            }
            let raw = match nl.link(&self.members[i].name)? {
                Some(LinkState {
                    admin_up,
                    carrier,
                    index,
                    ..
                }) if index == self.members[i].ifindex => admin_up && carrier,
                Some(_) | None => false,
            };
            if self.set.handle_link(now, i, raw) {
                changed.push(i);
            }
        }
        self.after_link_change(nl, &changed)?;
        Ok(!changed.is_empty())
    }

    /// The member slot of the device `ifindex`, if it is a member that has not left.
    fn slot_of(&self, ifindex: u32) -> Option<usize> {
        self.members
            .iter()
            .enumerate()
            .position(|(i, p)| p.ifindex == ifindex && !self.set.member(i).retired)
    }

    /// Applies kernel link notifications; those for other interfaces are ignored.
    ///
    /// # Errors
    /// A netlink or map failure.
    pub fn handle_link_events(
        &mut self,
        nl: &Netlink,
        events: &[LinkEvent],
    ) -> Result<(), LaggError> {
        let started = Instant::now();
        let now = self.now();
        let mut changed = Vec::new();
        let mut usability = Vec::new();
        let host = matches!(self.cfg.upper, Upper::Host { .. })
            .then(|| self.created.first().map(|c| c.0))
            .flatten();
        if host.is_some_and(|h| events.iter().any(|ev| ev.ifindex == h && !ev.removed)) {
            if let Err(e) = self.complete_frames_on_host() {
                tracing::error!(lagg = %self.cfg.name, error = %e, "laggN's offloads");
            }
        }
        for ev in events {
            let Some(i) = self.slot_of(ev.ifindex) else {
                continue;
            };
            if let Some(mtu) = ev.mtu {
                let ok = mtu >= self.cfg.mtu;
                if self.set.set_verdict(i, Verdict::Mtu, ok) {
                    let text = if ok {
                        format!("MTU {mtu}: carries full frames again")
                    } else {
                        format!("MTU {mtu} below the lagg's {}: taken out", self.cfg.mtu)
                    };
                    tracing::warn!(lagg = %self.cfg.name, port = %self.members[i].name, "{text}");
                    let port = self.members[i].name.clone();
                    self.event("mtu", Some(port), text);
                    usability.push(i);
                }
            }
            if let Some(mac) = ev.mac.filter(|m| *m != self.members[i].mac) {
                let text = format!("MAC changed to {}", format_mac(mac));
                tracing::info!(lagg = %self.cfg.name, port = %self.members[i].name, "{text}");
                self.members[i].mac = mac;
                let port = self.members[i].name.clone();
                self.event("link", Some(port), text);
            }
        }
        if !usability.is_empty() {
            self.after_usability_change(nl, &usability)?;
        }
        for ev in events {
            if let Some(i) = self.slot_of(ev.ifindex) {
                let raw = !ev.removed && ev.admin_up && ev.carrier;
                if self.set.handle_link(now, i, raw) && !changed.contains(&i) {
                    changed.push(i);
                }
            }
        }
        self.log_member_events();
        if !changed.is_empty() {
            self.after_link_change(nl, &changed)?;
            tracing::debug!(lagg = %self.cfg.name, micros = started.elapsed().as_micros() as u64, "link change applied");
        }
        Ok(())
    }

    /// Logs what the member set reports and puts it on the timeline.
    fn log_member_events(&mut self) {
        while let Some(e) = self.set.poll_event() {
            let name = |m: Option<usize>| {
                m.and_then(|m| self.members.get(m))
                    .map_or("none".to_string(), |p| p.name.clone())
            };
            match e {
                MemberEvent::Link {
                    member,
                    up,
                    delayed,
                } => {
                    let state = if up { "up" } else { "down" };
                    let port = name(Some(member));
                    if delayed {
                        tracing::info!(lagg = %self.cfg.name, port = %port, "link {state} (after its delay)");
                    } else {
                        tracing::info!(lagg = %self.cfg.name, port = %port, "link {state}");
                    }
                    self.event("link", Some(port), format!("link {state}"));
                }
                MemberEvent::Waiting { member, up, delay } => {
                    tracing::info!(lagg = %self.cfg.name, port = %name(Some(member)), delay_ms = delay.as_millis() as u64,
                        "link {}; waiting {}", if up { "up" } else { "down" }, if up { "updelay" } else { "downdelay" });
                }
                MemberEvent::Withdrawn { member } => {
                    tracing::info!(lagg = %self.cfg.name, port = %name(Some(member)), "link changed back before its delay ran out");
                }
                MemberEvent::Failover { from, to } => {
                    let text = format!("active port {} -> {}", name(from), name(to));
                    tracing::info!(lagg = %self.cfg.name, "failover: {text}");
                    let port = to.map(|t| name(Some(t)));
                    self.event("failover", port, text);
                }
            }
        }
    }

    /// When [`link_tick`](Self::link_tick) is due: a delayed link change, a notification, a
    /// monitor's timer.
    pub fn link_deadline(&self) -> Option<Instant> {
        self.set
            .poll_timeout()
            .map(|t| self.instant(t))
            .into_iter()
            .chain(self.bfd_deadline())
            .chain(self.arp_deadline())
            .min()
    }

    /// Applies delayed link changes and sends peer notifications that are due.
    ///
    /// # Errors
    /// A netlink or map failure.
    pub fn link_tick(&mut self, nl: &Netlink) -> Result<(), LaggError> {
        let changed = self.set.handle_timeout(self.now());
        self.log_member_events();
        self.after_link_change(nl, &changed)?;
        self.bfd_tick(nl)?;
        self.arp_tick(nl)?;
        self.send_due_notifications(nl);
        Ok(())
    }

    /// Feeds LACP, republishes, and has peers told of an active-port change (failover) or of
    /// ports that came back.
    fn after_link_change(&mut self, nl: &Netlink, changed: &[usize]) -> Result<(), LaggError> {
        if changed.is_empty() {
            return Ok(());
        }
        self.after_usability_change(nl, changed)
    }

    /// Before ports that became usable carry traffic: each worker discards what was stuck on
    /// their tx rings while their device was down (a fresh socket, registered here), so no
    /// frame queued before the link went down leaves after it returns.
    fn reset_stuck_sockets(&mut self, changed: &[usize]) {
        for &i in changed {
            if !self.set.usable(i) {
                continue;
            }
            for (q, (_, _, control)) in self.workers.iter().enumerate() {
                match control.call(worker::Command::Reset { slot: i }, Duration::from_secs(2)) {
                    Ok(worker::Answer::Kept { .. }) => {}
                    Ok(worker::Answer::Added { fd, .. }) => {
                        let port = &mut self.members[i];
                        tracing::info!(lagg = %self.cfg.name, port = %port.name, queue = q, "frames queued while the link was down were discarded");
                        if let Some(program) = port.program.as_mut() {
                            if let Err(e) = program.register_socket(q as u32, &fd) {
                                tracing::error!(lagg = %self.cfg.name, port = %port.name, error = %e, "registering the reopened socket");
                            }
                        }
                    }
                    Ok(other) => {
                        tracing::error!(lagg = %self.cfg.name, port = %self.members[i].name, answer = ?other, "resetting the port's socket failed")
                    }
                    Err(e) => {
                        tracing::error!(lagg = %self.cfg.name, port = %self.members[i].name, error = %e, "resetting the port's socket failed")
                    }
                }
            }
        }
    }

    /// After ports became usable or unusable (link, MTU, or a monitor's verdict).
    fn after_usability_change(&mut self, nl: &Netlink, changed: &[usize]) -> Result<(), LaggError> {
        self.reset_stuck_sockets(changed);
        if let Some(rt) = self.lacp.as_mut() {
            let now = Time::from_duration(self.epoch.elapsed());
            for &i in changed {
                let port = &self.members[i];
                rt.core
                    .handle_link(now, i, self.set.usable(i), link_speed(&port.name));
            }
        }
        self.drain_lacp()?;
        self.publish(changed, false)?;
        self.send_due_notifications(nl);
        Ok(())
    }

    fn notification_frames(&self, nl: &Netlink) -> Vec<Vec<u8>> {
        match &self.cfg.upper {
            Upper::Host { .. } => {
                let addresses = match nl
                    .require(&self.cfg.name)
                    .and_then(|l| nl.addresses(l.index))
                {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!(lagg = %self.cfg.name, error = %e, "peer notification: cannot read the lagg's addresses");
                        Vec::new()
                    }
                };
                // laggN carries the first member's MAC.
                let mac = self.members[0].mac;
                addresses
                    .iter()
                    .map(|ip| match ip {
                        std::net::IpAddr::V4(v4) => crate::notify::gratuitous_arp(mac, *v4),
                        std::net::IpAddr::V6(v6) => crate::notify::unsolicited_na(mac, *v6),
                    })
                    .collect()
            }
            Upper::Forward { .. } => {
                let mut macs = self
                    .recent_macs
                    .as_ref()
                    .map(|r| r.macs())
                    .unwrap_or_default();
                for m in &self.previous_macs.0 {
                    if !macs.contains(m) {
                        macs.push(*m);
                    }
                }
                macs.into_iter()
                    .map(|m| xlagg_dataplane::learn::learning_frame(m).to_vec())
                    .collect()
            }
        }
    }

    /// Tells the peers of the members that are due (see [`MemberSet::due_notifications`]).
    fn send_due_notifications(&mut self, nl: &Netlink) {
        // Age the forward-mode MAC table: keep one period's worth as "previous".
        let wall = Instant::now();
        if wall >= self.previous_macs.1 {
            if let Some(r) = &self.recent_macs {
                self.previous_macs = (r.sweep(), wall + MAC_AGING);
            }
        }
        let due = self.set.due_notifications(self.now());
        if due.is_empty() {
            return;
        }
        let frames = self.notification_frames(nl);
        if self.notify_sockets.len() < self.members.len() {
            self.notify_sockets.resize_with(self.members.len(), || None);
        }
        for port in due {
            let ifindex = self.members[port].ifindex;
            if self.notify_sockets[port].is_none() {
                // Protocol 0: a send-only socket, nothing is queued for reading.
                match PacketSocket::bind(ifindex, 0) {
                    Ok(s) => self.notify_sockets[port] = Some(s),
                    Err(e) => {
                        tracing::warn!(lagg = %self.cfg.name, port = %self.members[port].name, error = %e, "peer notification socket")
                    }
                }
            }
            if let Some(socket) = &self.notify_sockets[port] {
                let mut sent = 0;
                for f in &frames {
                    if socket.send(f).is_ok() {
                        sent += 1;
                    }
                }
                tracing::info!(lagg = %self.cfg.name, port = %self.members[port].name, frames = sent, "peer notification sent");
            }
        }
    }

    fn start_lacp(&mut self) -> Result<(), LaggError> {
        let o = &self.cfg.lacp;
        let number: u16 = self
            .cfg
            .name
            .trim_start_matches("lagg")
            .parse()
            .unwrap_or(0);
        let cfg = LacpConfig {
            system_priority: o.system_priority,
            system: o.system_mac.unwrap_or(self.members[0].mac),
            key: o.key.unwrap_or(number.saturating_add(1)),
            active: o.active,
            fast_timeout: o.fast_timeout,
            strict: o.strict,
            min_links: o.min_links,
            mux: o.mux,
            selection: o.selection,
        };
        let mut sockets = Vec::new();
        let mut ports = Vec::new();
        for (i, p) in self.members.iter().enumerate() {
            let socket = PacketSocket::bind(p.ifindex, ETH_P_SLOW).map_err(|source| {
                LaggError::PacketSocket {
                    lagg: self.cfg.name.clone(),
                    port: p.name.clone(),
                    what: "LACP",
                    source,
                }
            })?;
            sockets.push(Some(socket));
            let priority = o
                .port_priorities
                .iter()
                .find(|(n, _)| *n == p.name)
                .map_or(o.port_priority, |(_, v)| *v);
            // Port numbers start at 1: some switches reject port 0.
            ports.push((
                p.name.clone(),
                PortConfig {
                    number: i as u16 + 1,
                    priority,
                    mac: p.mac,
                },
            ));
        }
        let epoch = self.epoch;
        let core = Lacp::new(cfg, &ports, Time::from_duration(epoch.elapsed()));
        tracing::info!(
            lagg = %self.cfg.name,
            system = %format_mac(cfg.system),
            key = cfg.key,
            active = cfg.active,
            fast_timeout = cfg.fast_timeout,
            strict = cfg.strict,
            "LACP started"
        );
        self.lacp = Some(LacpRuntime {
            core,
            sockets,
            epoch,
        });
        Ok(())
    }

    /// The control-path sockets to wait on (LACP and micro-BFD), as (id, socket); hand the id
    /// of a readable one to [`handle_control_frames`](Self::handle_control_frames).
    pub fn control_sockets(&self) -> Vec<(ControlSocket, &PacketSocket)> {
        fn open(
            kind: fn(usize) -> ControlSocket,
            sockets: &[Option<PacketSocket>],
        ) -> Vec<(ControlSocket, &PacketSocket)> {
            sockets
                .iter()
                .enumerate()
                .filter_map(|(i, s)| s.as_ref().map(|s| (kind(i), s)))
                .collect()
        }
        let lacp = self
            .lacp
            .iter()
            .flat_map(|rt| open(ControlSocket::Lacp, &rt.sockets));
        let bfd = self
            .bfd
            .iter()
            .flat_map(|rt| open(ControlSocket::Bfd, &rt.sockets));
        let arp = self
            .arp
            .iter()
            .flat_map(|rt| open(ControlSocket::Probe, &rt.sockets));
        lacp.chain(bfd).chain(arp).collect()
    }

    /// Opens a micro-BFD session on every member; members carry nothing until theirs is up.
    fn start_bfd(&mut self, nl: &Netlink, o: BfdOptions) -> Result<(), LaggError> {
        let cfg = bfd::Config {
            interval: Duration::from_millis(o.interval_ms),
            multiplier: o.multiplier,
        };
        let epoch = self.epoch;
        let seed = (std::process::id() << 12) ^ (unix_ms() as u32);
        let mut sessions = Vec::new();
        let mut sockets = Vec::new();
        for (i, p) in self.members.iter().enumerate() {
            let socket = PacketSocket::bind(p.ifindex, 0x0800).map_err(|source| {
                LaggError::PacketSocket {
                    lagg: self.cfg.name.clone(),
                    port: p.name.clone(),
                    what: "micro-BFD",
                    source,
                }
            })?;
            sockets.push(Some(socket));
            sessions.push(bfd::Session::new(
                cfg,
                seed.wrapping_add(i as u32 * 7919) | 1,
                Duration::ZERO,
            ));
        }
        for i in 0..self.members.len() {
            self.set.set_verdict(i, Verdict::Bfd, false);
        }
        let src_ip = match &self.cfg.upper {
            Upper::Host { addresses } => addresses.iter().find_map(|(a, _)| match a {
                std::net::IpAddr::V4(v4) => Some(v4.octets()),
                std::net::IpAddr::V6(_) => None,
            }),
            Upper::Forward { .. } => None,
        }
        .unwrap_or([0; 4]);
        let _ = nl;
        tracing::info!(lagg = %self.cfg.name, interval_ms = o.interval_ms, multiplier = o.multiplier, "micro-BFD started; members wait for their sessions");
        self.bfd = Some(BfdRuntime {
            peers: vec![None; sessions.len()],
            sessions,
            sockets,
            epoch,
            src_ip,
            dst_ip: o.peer.octets(),
        });
        Ok(())
    }

    /// Sends due micro-BFD packets and applies detection timeouts.
    fn bfd_tick(&mut self, nl: &Netlink) -> Result<(), LaggError> {
        let Some(rt) = self.bfd.as_mut() else {
            return Ok(());
        };
        let now = rt.epoch.elapsed();
        let mut changed = Vec::new();
        let mut packets = Vec::new();
        for (i, s) in rt.sessions.iter_mut().enumerate() {
            if self.set.member(i).retired {
                continue;
            }
            if s.tick(now).is_some() {
                changed.push(i);
            }
            if let Some(p) = s.poll_transmit(now) {
                packets.push((i, p));
            }
        }
        for (i, p) in packets {
            if let Err(e) = rt.send(i, self.members[i].mac, &p) {
                tracing::debug!(lagg = %self.cfg.name, port = %self.members[i].name, error = %e, "micro-BFD packet not sent");
            }
        }
        self.after_bfd_change(nl, &changed)
    }

    /// Applies sessions that changed state to their members' usability.
    fn after_bfd_change(&mut self, nl: &Netlink, changed: &[usize]) -> Result<(), LaggError> {
        let Some(rt) = self.bfd.as_ref() else {
            return Ok(());
        };
        let mut flipped = Vec::new();
        let mut notes = Vec::new();
        for &i in changed {
            let ok = rt.sessions[i].is_up();
            let state = rt.sessions[i].state().name();
            if self.set.set_verdict(i, Verdict::Bfd, ok) {
                flipped.push(i);
            }
            notes.push((self.members[i].name.clone(), format!("micro-BFD {state}")));
        }
        for (port, text) in notes {
            tracing::info!(lagg = %self.cfg.name, port = %port, "{text}");
            self.event("bfd", Some(port), text);
        }
        self.after_usability_change(nl, &flipped)
    }

    /// When micro-BFD next needs [`link_tick`](Self::link_tick).
    fn bfd_deadline(&self) -> Option<Instant> {
        let rt = self.bfd.as_ref()?;
        let next = rt.sessions.iter().map(bfd::Session::deadline).min()?;
        rt.epoch
            .checked_add(next)
            .or(Some(rt.epoch + Duration::from_secs(3600)))
    }

    /// Reads every pending frame of a control socket (see
    /// [`control_sockets`](Self::control_sockets)): LACP into the LACP core, micro-BFD into its
    /// session, probe replies into the probe monitor.
    ///
    /// # Errors
    /// A map failure while applying the result.
    pub fn handle_control_frames(
        &mut self,
        nl: &Netlink,
        socket: ControlSocket,
    ) -> Result<(), LaggError> {
        let port = match socket {
            ControlSocket::Probe(port) => return self.handle_arp_frames(nl, port),
            ControlSocket::Bfd(port) => return self.handle_bfd_frames(nl, port),
            ControlSocket::Lacp(port) => port,
        };
        let Some(rt) = self.lacp.as_mut() else {
            return Ok(());
        };
        if let Some(socket) = rt.sockets.get(port).and_then(Option::as_ref) {
            let (core, epoch) = (&mut rt.core, rt.epoch);
            read_frames(socket, &self.cfg.name, "slow-protocol", |f| {
                core.handle_frame(Time::from_duration(epoch.elapsed()), port, f);
            });
        }
        self.drain_lacp()
    }

    fn handle_bfd_frames(&mut self, nl: &Netlink, port: usize) -> Result<(), LaggError> {
        let Some(rt) = self.bfd.as_mut() else {
            return Ok(());
        };
        let mut changed = Vec::new();
        if let (Some(Some(socket)), Some(session), Some(learnt)) = (
            rt.sockets.get(port),
            rt.sessions.get_mut(port),
            rt.peers.get_mut(port),
        ) {
            let epoch = rt.epoch;
            let lagg = &self.cfg.name;
            let addresses = bfd::Addresses {
                peer: rt.dst_ip,
                local: rt.src_ip,
            };
            read_frames(socket, lagg, "micro-BFD", |f| {
                match bfd::payload(f, &addresses) {
                    Ok((src, p)) => {
                        if !session.is_up() {
                            *learnt = None;
                        }
                        if learnt.is_some_and(|l| l != src) {
                            session.counters.invalid += 1;
                            tracing::debug!(lagg = %lagg, port, "micro-BFD packet from another address than the session's peer discarded");
                            return;
                        }
                        match session.handle(epoch.elapsed(), p) {
                            Ok(Some(_)) => changed.push(port),
                            Ok(None) => {}
                            Err(e) => {
                                tracing::debug!(lagg = %lagg, port, error = %e, "micro-BFD packet discarded")
                            }
                        }
                        if session.is_up() && addresses.peer == bfd::ANY_PEER {
                            learnt.get_or_insert(src);
                        }
                    }
                    Err(bfd::BfdError::NotBfd) => {}
                    Err(e) => {
                        session.counters.invalid += 1;
                        tracing::debug!(lagg = %lagg, port, error = %e, "micro-BFD frame discarded");
                    }
                }
            });
        }
        changed.dedup();
        self.after_bfd_change(nl, &changed)
    }

    /// Starts the ARP/NS probe monitor: a probe MAC per member (set in its XDP program so the
    /// replies reach the control path); members carry nothing until a reply validates them.
    fn start_arp(&mut self, o: &crate::config::ArpOptions) -> Result<(), LaggError> {
        let mut sockets = Vec::new();
        let mut probe_macs = Vec::new();
        for p in &mut self.members {
            let socket = PacketSocket::bind(p.ifindex, afpacket::ETH_P_ALL).map_err(|source| {
                LaggError::PacketSocket {
                    lagg: self.cfg.name.clone(),
                    port: p.name.clone(),
                    what: "ARP/NS probe monitor",
                    source,
                }
            })?;
            sockets.push(Some(socket));
            let mac = crate::probe::probe_mac(p.mac);
            if let Some(program) = p.program.as_mut() {
                program.set_probe_mac(mac)?;
            }
            probe_macs.push(mac);
        }
        for i in 0..self.members.len() {
            self.set.set_verdict(i, Verdict::Probe, false);
        }
        let interval = Duration::from_millis(o.interval_ms);
        tracing::info!(lagg = %self.cfg.name, targets = ?o.targets, interval_ms = o.interval_ms, missed_max = o.missed_max, "ARP/NS probe monitor started; members wait for a reply");
        self.arp = Some(ArpRuntime {
            targets: o.targets.clone(),
            interval,
            window: interval * o.missed_max,
            last_reply: vec![None; sockets.len()],
            sockets,
            probe_macs,
            next_round: Instant::now(),
        });
        Ok(())
    }

    /// Sends a probe round when due and judges every member.
    fn arp_tick(&mut self, nl: &Netlink) -> Result<(), LaggError> {
        let Some(rt) = self.arp.as_mut() else {
            return Ok(());
        };
        let now = Instant::now();
        if now >= rt.next_round {
            rt.next_round = now + rt.interval;
            for (i, socket) in rt.sockets.iter().enumerate() {
                let Some(socket) = socket else { continue };
                for frame in crate::probe::probes(rt.probe_macs[i], &rt.targets) {
                    if let Err(e) = socket.send(&frame) {
                        tracing::debug!(lagg = %self.cfg.name, port = %self.members[i].name, error = %e, "probe not sent");
                    }
                }
            }
        }
        self.judge_arp(nl, now)
    }

    fn judge_arp(&mut self, nl: &Netlink, now: Instant) -> Result<(), LaggError> {
        let Some(rt) = self.arp.as_ref() else {
            return Ok(());
        };
        let mut flipped = Vec::new();
        let mut notes = Vec::new();
        for (i, last) in rt.last_reply.iter().enumerate() {
            if self.set.member(i).retired {
                continue;
            }
            let ok = last.is_some_and(|t| now.saturating_duration_since(t) <= rt.window);
            if self.set.set_verdict(i, Verdict::Probe, ok) {
                flipped.push(i);
                let text = if ok {
                    "probe monitor: replies arrive".to_string()
                } else {
                    format!("probe monitor: no reply for {} ms", rt.window.as_millis())
                };
                notes.push((self.members[i].name.clone(), text));
            }
        }
        for (port, text) in notes {
            tracing::info!(lagg = %self.cfg.name, port = %port, "{text}");
            self.event("probe", Some(port), text);
        }
        self.after_usability_change(nl, &flipped)
    }

    fn handle_arp_frames(&mut self, nl: &Netlink, port: usize) -> Result<(), LaggError> {
        let Some(rt) = self.arp.as_mut() else {
            return Ok(());
        };
        if let Some(Some(socket)) = rt.sockets.get(port) {
            let (macs, targets, last) = (&rt.probe_macs, &rt.targets, &mut rt.last_reply);
            read_frames(socket, &self.cfg.name, "probe monitor", |f| {
                // A reply to any member's probe validates that member: the probe MAC says
                // where the probe left.
                for (m, mac) in macs.iter().enumerate() {
                    if crate::probe::reply_from(f, *mac, targets).is_some() {
                        last[m] = Some(Instant::now());
                    }
                }
            });
        }
        self.judge_arp(nl, Instant::now())
    }

    /// When the probe monitor next needs [`link_tick`](Self::link_tick): the next round, or
    /// the moment a member's last reply leaves the window.
    fn arp_deadline(&self) -> Option<Instant> {
        let rt = self.arp.as_ref()?;
        let expiries = rt
            .last_reply
            .iter()
            .flatten()
            .map(|t| *t + rt.window + Duration::from_millis(1));
        expiries.chain([rt.next_round]).min()
    }

    /// Micro-BFD state and counters of member `i`, if enabled.
    pub fn bfd_status(&self, i: usize) -> Option<(bfd::State, bfd::Counters)> {
        let s = self.bfd.as_ref()?.sessions.get(i)?;
        Some((s.state(), s.counters))
    }

    /// When LACP needs [`lacp_tick`](Self::lacp_tick) next.
    pub fn lacp_deadline(&self) -> Option<Instant> {
        let rt = self.lacp.as_ref()?;
        let t = rt.core.poll_timeout()?;
        Some(rt.epoch + Duration::from_nanos(t.0))
    }

    /// Runs LACP timers due by now.
    ///
    /// # Errors
    /// A map failure while applying the result.
    pub fn lacp_tick(&mut self) -> Result<(), LaggError> {
        if let Some(rt) = self.lacp.as_mut() {
            let now = rt.now();
            rt.core.handle_timeout(now);
        }
        self.drain_lacp()
    }

    /// Sends what LACP wants sent and applies its port decisions to the dataplane.
    fn drain_lacp(&mut self) -> Result<(), LaggError> {
        let Some(rt) = self.lacp.as_mut() else {
            return Ok(());
        };
        while let Some(t) = rt.core.poll_transmit() {
            if let Some(socket) = rt.sockets.get(t.port).and_then(Option::as_ref) {
                if let Err(e) = socket.send(&t.frame) {
                    tracing::debug!(lagg = %self.cfg.name, port = t.port, error = %e, "LACPDU not sent");
                }
            }
        }
        let mut changed = false;
        while let Some(event) = rt.core.poll_event() {
            match event {
                lacp::Event::PortState {
                    port,
                    collecting,
                    distributing,
                } => {
                    if let Some(p) = self.members.get(port) {
                        self.set.set_lacp(port, collecting, distributing);
                        changed = true;
                        let text = format!(
                            "lacp {}{}",
                            if collecting {
                                "collecting"
                            } else {
                                "not collecting"
                            },
                            if distributing { ", distributing" } else { "" }
                        );
                        let name = p.name.clone();
                        self.events.push(LaggEvent {
                            time_ms: unix_ms(),
                            kind: "lacp",
                            lagg: self.cfg.name.clone(),
                            port: Some(name),
                            text,
                        });
                    }
                }
            }
        }
        if changed {
            self.publish(&[], false)?;
        }
        Ok(())
    }

    /// Derives which members distribute and collect, publishes the next table (from the
    /// previous one, so only affected buckets move) and sets the XDP collecting flags.
    fn publish(&mut self, changed: &[usize], force: bool) -> Result<(), LaggError> {
        let before: Vec<bool> = self.set.members().iter().map(|m| m.collecting).collect();
        let decisions = self.set.settle(self.now(), changed);
        self.log_member_events();
        let active = self.set.active();
        let collecting_mask = decisions
            .iter()
            .enumerate()
            .filter(|(_, d)| d.0)
            .fold(0u32, |m, (i, _)| m | (1 << i));
        let current = self.table.load_full();
        if current.collecting() != collecting_mask
            && current.active() == active.as_slice()
            && !force
        {
            self.table
                .store(Arc::new(current.with_collecting(collecting_mask)));
        }
        let current = self.table.load_full();
        if force || current.active() != active.as_slice() {
            let next = current
                .with_active(&active)
                .with_collecting(collecting_mask);
            self.table.store(Arc::new(next));
            let names: Vec<&str> = active
                .iter()
                .map(|&i| self.members[usize::from(i)].name.as_str())
                .collect();
            tracing::info!(lagg = %self.cfg.name, active = %names.join(","), "distribution table published");
        }
        for (i, (port, (collecting, _))) in self.members.iter_mut().zip(decisions).enumerate() {
            if force || before.get(i) != Some(&collecting) {
                if let Some(program) = port.program.as_mut() {
                    program.set_collecting(collecting)?;
                }
            }
        }
        Ok(())
    }

    /// Queues whose worker thread has ended although the lagg was not stopped (it panicked).
    pub fn dead_workers(&self) -> Vec<usize> {
        if self.stop.load(Ordering::Relaxed) {
            return Vec::new();
        }
        self.workers
            .iter()
            .enumerate()
            .filter(|(_, (h, _, _))| h.is_finished())
            .map(|(q, _)| q)
            .collect()
    }

    /// Fault injection for tests: makes the worker of `queue` panic.
    ///
    /// # Errors
    /// No such worker, or it did not take the command.
    pub fn crash_worker(&self, queue: usize) -> Result<(), String> {
        let (_, _, control) = self
            .workers
            .get(queue)
            .ok_or_else(|| format!("{} has no worker {queue}", self.cfg.name))?;
        // The worker panics instead of answering: the call times out by design.
        let _ = control.call(worker::Command::Crash, Duration::from_millis(200));
        Ok(())
    }

    /// The lagg's configuration.
    pub fn config(&self) -> &LaggConfig {
        &self.cfg
    }

    /// The transmit policy in force.
    pub fn policy(&self) -> TxPolicy {
        self.policy
    }

    /// Member ports, in order.
    pub fn members(&self) -> &[Port] {
        &self.members
    }

    /// The current distribution table.
    pub fn table(&self) -> Arc<DistributionTable> {
        self.table.load_full()
    }

    /// Worker counters of port `index` (members, then the upper port) summed over workers.
    pub fn port_totals(&self, index: usize) -> PortTotals {
        let mut sum = PortTotals::default();
        // Members sit in the workers' slots by index, the upper port in the upper slot.
        let slot = if index < self.members.len() {
            index
        } else {
            worker::UPPER_SLOT
        };
        for (_, counters, _) in &self.workers {
            if slot < counters.ports() {
                sum.add(&counters.port(slot).totals());
            }
        }
        sum
    }

    /// The XDP program's counters of port `index`.
    pub fn xdp_counters(&self, index: usize) -> Option<[u64; XdpCounter::COUNT as usize]> {
        self.ports().nth(index)?.program.as_ref()?.counters().ok()
    }

    fn ports(&self) -> impl Iterator<Item = &Port> {
        self.members.iter().chain(self.upper.as_ref())
    }

    /// A per-port counters table as text, the way `xlaggd` prints it.
    pub fn status_table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{}: laggproto {} lagghash {} upper {}",
            self.cfg.name,
            self.cfg.proto,
            self.cfg.hash,
            match &self.cfg.upper {
                Upper::Host { .. } => format!("host ({})", self.cfg.name),
                Upper::Forward { port } => format!("forward ({port})"),
            }
        );
        let _ = writeln!(
            out,
            "  {:<12} {:<42} {:>12} {:>12} {:>12} {:>12}  drops",
            "port", "flags", "rx_packets", "tx_packets", "rx_bytes", "tx_bytes"
        );
        let table = self.table();
        let first_active = table.active().first().copied();
        for (i, port) in self.ports().enumerate() {
            if self.retired(i) {
                continue;
            }
            let t = self.port_totals(i);
            let is_member = i < self.members.len();
            let flags = if is_member {
                self.port_flags(i, first_active).names()
            } else {
                vec!["UPPER"]
            };
            let mut drops = String::new();
            for (reason, n) in self.port_drops(i, &t) {
                let _ = write!(drops, " {reason}={n}");
            }
            let _ = writeln!(
                out,
                "  {:<12} {:<42} {:>12} {:>12} {:>12} {:>12} {}",
                port.name,
                format!("<{}>", flags.join(",")),
                t.rx_packets,
                t.tx_packets,
                t.rx_bytes,
                t.tx_bytes,
                if drops.is_empty() {
                    " -".to_string()
                } else {
                    drops
                }
            );
            if let Some(st) = self
                .lacp
                .as_ref()
                .and_then(|rt| rt.core.status().into_iter().nth(i))
            {
                let c = st.counters;
                let _ = writeln!(
                    out,
                    "    lacp actor {} {} partner {} {} {} mux {} rx {}",
                    st.actor,
                    st.actor.state,
                    st.partner,
                    st.partner.state,
                    st.selected,
                    st.mux,
                    st.rx
                );
                let _ = writeln!(
                    out,
                    "    lacp lacpdu rx/tx {}/{} marker rx/response {}/{} illegal {} unknown {} loop {} churn actor/partner {}/{} flaps {}",
                    c.lacpdu_rx,
                    c.lacpdu_tx,
                    c.marker_rx,
                    c.marker_response_tx,
                    c.illegal_rx,
                    c.unknown_rx,
                    c.loop_rx,
                    c.actor_churn,
                    c.partner_churn,
                    c.flaps
                );
            }
        }
        if let Some(rt) = &self.lacp {
            let mismatch = rt.core.partner_mismatch();
            if !mismatch.is_empty() {
                let list: Vec<String> = mismatch.iter().map(|(n, p)| format!("{n} {p}")).collect();
                let _ = writeln!(
                    out,
                    "  ALARM partner mismatch: ports see different partners: {}",
                    list.join(", ")
                );
            }
        }
        out
    }

    fn event(&mut self, kind: &'static str, port: Option<String>, text: String) {
        self.events.push(LaggEvent {
            time_ms: unix_ms(),
            kind,
            lagg: self.cfg.name.clone(),
            port,
            text,
        });
    }

    /// State changes since the last call (the daemon keeps the timeline).
    pub fn take_events(&mut self) -> Vec<LaggEvent> {
        std::mem::take(&mut self.events)
    }

    /// Counters and state for metrics and the dashboard.
    pub fn sample(&self) -> LaggSample {
        let first_active = self.table().active().first().copied();
        let lacp_ports = self.lacp.as_ref().map(|rt| rt.core.status());
        let mut ports = Vec::new();
        for (i, port) in self.ports().enumerate() {
            if self.retired(i) {
                continue;
            }
            let member = (i < self.members.len()).then(|| self.set.member(i));
            let flags = if member.is_some() {
                self.port_flags(i, first_active)
            } else {
                PortFlags::default()
            };
            ports.push(PortSample {
                name: port.name.clone(),
                role: if member.is_some() { "member" } else { "upper" },
                link: member.is_none_or(|m| m.up),
                collecting: member.map_or(port.collecting, |m| m.collecting),
                distributing: flags.has(PortFlags::DISTRIBUTING),
                totals: self.port_totals(i),
                xdp: self.xdp_counters(i).unwrap_or_default(),
                lacp: lacp_ports.as_ref().and_then(|v| v.get(i)).cloned(),
                bfd: if member.is_some() {
                    self.bfd_status(i)
                } else {
                    None
                },
                probe_ok: self.arp.as_ref().and(member).map(|m| m.probe_ok),
            });
        }
        let workers = self
            .workers
            .iter()
            .enumerate()
            .map(|(q, (_, c, _))| WorkerSample {
                queue: q,
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
            })
            .collect();
        let active_ports = ports
            .iter()
            .filter(|p| p.role == "member" && p.distributing)
            .count();
        LaggSample {
            name: self.cfg.name.clone(),
            proto: self.cfg.proto,
            ports,
            workers,
            failovers: self.set.failovers,
            flaps: self.set.flaps,
            active_ports,
        }
    }

    /// Whether port `i` (members first, then the upper port) is a member that left.
    fn retired(&self, i: usize) -> bool {
        i < self.members.len() && self.set.member(i).retired
    }

    /// Whether `new` differs from this lagg's configuration only in what
    /// [`set_ports`](Self::set_ports) applies in place: the member list (and per-port LACP
    /// priorities), the host interface's addresses, the description, updelay/downdelay and
    /// the peer-notification settings.
    pub fn can_change_ports_in_place(&self, new: &LaggConfig) -> bool {
        let neutral = |c: &LaggConfig| {
            let mut c = c.clone();
            c.ports.clear();
            c.lacp.port_priorities.clear();
            if let Upper::Host { addresses } = &mut c.upper {
                addresses.clear();
            }
            c.description.clear();
            c.updelay_ms = 0;
            c.downdelay_ms = 0;
            c.notify_count = 0;
            c.notify_interval_ms = 0;
            c
        };
        let (a, b) = (neutral(&self.cfg), neutral(new));
        a == b
            && a.proto != LaggProto::None
            && self
                .members
                .iter()
                .enumerate()
                .any(|(i, p)| !self.set.member(i).retired && new.ports.contains(&p.name))
            // Failover's order is its priority: it must come out as configured. The other
            // protocols only show the order (a returning member may take a freed slot).
            && self
                .slots_after(new)
                .is_some_and(|order| a.proto != LaggProto::Failover || order == new.ports)
    }

    /// The member names in slot order after [`set_ports`](Self::set_ports) applied `new`
    /// (members that leave free their slots, joining ones take the first free slot, else the
    /// next); `None` when the slots would run out.
    fn slots_after(&self, new: &LaggConfig) -> Option<Vec<String>> {
        let mut slots: Vec<Option<String>> = self
            .members
            .iter()
            .enumerate()
            .map(|(i, p)| {
                (!self.set.member(i).retired && new.ports.contains(&p.name)).then(|| p.name.clone())
            })
            .collect();
        for name in &new.ports {
            if slots.iter().flatten().any(|n| n == name) {
                continue;
            }
            match slots.iter().position(Option::is_none) {
                Some(free) => slots[free] = Some(name.clone()),
                None => slots.push(Some(name.clone())),
            }
        }
        (slots.len() <= xlagg_dataplane::distribution::MAX_MEMBERS)
            .then(|| slots.into_iter().flatten().collect())
    }

    /// Applies a new member list in place (hot membership): members that left are taken out
    /// of the table, their programs detached and their sockets retired in every worker; new
    /// ones get a program, a socket per worker and join the table taking only their share.
    /// Flows on the other members are not touched. Returns what changed, in words.
    ///
    /// # Errors
    /// A device, socket or map failure; a member that failed to join is undone.
    pub fn set_ports(&mut self, nl: &Netlink, new: &LaggConfig) -> Result<Vec<String>, LaggError> {
        let mut done = Vec::new();
        // Leaving.
        let leaving: Vec<usize> = self
            .members
            .iter()
            .enumerate()
            .filter(|(i, p)| !self.set.member(*i).retired && !new.ports.contains(&p.name))
            .map(|(i, _)| i)
            .collect();
        for &i in &leaving {
            self.set.leave(i);
            if let Some(rt) = self.lacp.as_mut() {
                let now = rt.now();
                rt.core.handle_link(now, i, false, 0);
                rt.sockets[i] = None;
            }
            if let Some(rt) = self.bfd.as_mut() {
                rt.sockets[i] = None;
            }
            if let Some(rt) = self.arp.as_mut() {
                rt.sockets[i] = None;
            }
        }
        if !leaving.is_empty() {
            self.drain_lacp()?;
            // Out of the table and not collecting, before the sockets go.
            self.publish(&leaving, false)?;
            for &i in &leaving {
                restore_port(&mut self.members[i]);
                for (_, _, control) in &self.workers {
                    match control.call(worker::Command::Remove { slot: i }, Duration::from_secs(2))
                    {
                        Ok(worker::Answer::Removed { dropped, .. }) => {
                            tracing::debug!(lagg = %self.cfg.name, port = %self.members[i].name, dropped, "member socket retired");
                        }
                        Ok(other) => {
                            tracing::warn!(lagg = %self.cfg.name, answer = ?other, "unexpected worker answer")
                        }
                        Err(e) => {
                            tracing::warn!(lagg = %self.cfg.name, error = %e, "worker did not retire the member socket")
                        }
                    }
                }
                let name = self.members[i].name.clone();
                tracing::info!(lagg = %self.cfg.name, port = %name, "member left");
                self.event("config", Some(name.clone()), "member left".into());
                done.push(format!("-laggport {name}"));
            }
        }
        // Joining, at the end.
        for name in &new.ports {
            if self
                .members
                .iter()
                .enumerate()
                .any(|(i, p)| &p.name == name && !self.set.member(i).retired)
            {
                continue;
            }
            // A departed member's slot is reused (the workers closed its socket); otherwise the
            // next one.
            let slot = (0..self.members.len())
                .find(|&i| self.set.member(i).retired)
                .unwrap_or(self.members.len());
            self.set.join(slot, name);
            let mut port = match self.attach_port(nl, name, Some(slot)) {
                Ok(p) => p,
                Err(e) => {
                    self.set.leave(slot);
                    return Err(e);
                }
            };
            let mut added = Vec::new();
            let mut failure = None;
            for (q, (_, _, control)) in self.workers.iter().enumerate() {
                let cmd = worker::Command::Add {
                    slot,
                    name: name.clone(),
                    ifindex: port.ifindex,
                };
                match control.call(cmd, Duration::from_secs(2)) {
                    Ok(worker::Answer::Added { fd, .. }) => {
                        added.push(q);
                        if let Some(program) = port.program.as_mut() {
                            if let Err(e) = program.register_socket(q as u32, &fd) {
                                failure = Some(e.to_string());
                                break;
                            }
                        }
                    }
                    Ok(worker::Answer::Failed { error, .. }) => {
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
            if let Some(detail) = failure {
                restore_port(&mut port);
                self.set.leave(slot);
                for q in added {
                    let _ = self.workers[q]
                        .2
                        .call(worker::Command::Remove { slot }, Duration::from_secs(2));
                }
                return Err(LaggError::Socket {
                    lagg: self.cfg.name.clone(),
                    port: name.clone(),
                    queue: 0,
                    detail,
                });
            }
            if let Some(rt) = self.lacp.as_mut() {
                let priority = new
                    .lacp
                    .port_priorities
                    .iter()
                    .find(|(p, _)| p == name)
                    .map_or(new.lacp.port_priority, |(_, v)| *v);
                let now = rt.now();
                let socket = PacketSocket::bind(port.ifindex, ETH_P_SLOW).ok();
                put(&mut rt.sockets, slot, socket);
                rt.core.add_port(
                    now,
                    slot,
                    name,
                    PortConfig {
                        number: (slot + 1) as u16,
                        priority,
                        mac: port.mac,
                    },
                );
            }
            if let Some(rt) = self.bfd.as_mut() {
                let cfg = rt.sessions.first().map(|s| s.config());
                if let Some(cfg) = cfg {
                    let discr = (unix_ms() as u32).wrapping_mul(2_654_435_761) | 1;
                    let session = bfd::Session::new(cfg, discr, rt.epoch.elapsed());
                    put(&mut rt.sessions, slot, session);
                    put(&mut rt.peers, slot, None);
                    put(
                        &mut rt.sockets,
                        slot,
                        PacketSocket::bind(port.ifindex, 0x0800).ok(),
                    );
                    self.set.set_verdict(slot, Verdict::Bfd, false);
                }
            }
            if let Some(rt) = self.arp.as_mut() {
                let mac = crate::probe::probe_mac(port.mac);
                if let Some(program) = port.program.as_mut() {
                    program.set_probe_mac(mac)?;
                }
                let socket = PacketSocket::bind(port.ifindex, afpacket::ETH_P_ALL).ok();
                put(&mut rt.sockets, slot, socket);
                put(&mut rt.probe_macs, slot, mac);
                put(&mut rt.last_reply, slot, None);
                self.set.set_verdict(slot, Verdict::Probe, false);
            }
            if let Some(s) = self.notify_sockets.get_mut(slot) {
                *s = None;
            }
            put(&mut self.members, slot, port);
            tracing::info!(lagg = %self.cfg.name, port = %name, slot, "member joined");
            self.event("config", Some(name.clone()), "member joined".into());
            done.push(format!("laggport {name}"));
        }
        // The host interface's addresses: remove what went, add what came.
        if let (Upper::Host { addresses: old }, Upper::Host { addresses: want }) =
            (&self.cfg.upper, &new.upper)
        {
            let host = nl.require(&self.cfg.name)?;
            for (addr, prefix) in old.iter().filter(|a| !want.contains(a)) {
                nl.delete_address(host.index, *addr)?;
                done.push(format!("-alias {addr}/{prefix}"));
            }
            for (addr, prefix) in want.iter().filter(|a| !old.contains(a)) {
                nl.add_address(host.index, *addr, *prefix)?;
                done.push(format!("alias {addr}/{prefix}"));
            }
        }
        self.cfg = new.clone();
        self.set.set_rules(rules_for(new));
        // New members' link state: joining the table takes only their share of buckets.
        self.refresh_links(nl)?;
        self.publish(&[], false)?;
        Ok(done)
    }

    /// Port `i`'s drops with a count, by reason: the workers', the kernel socket's (`xsk_`
    /// prefixed) and the XDP program's (`xdp_` prefixed).
    fn port_drops(&self, i: usize, t: &PortTotals) -> BTreeMap<String, u64> {
        let mut drops = BTreeMap::new();
        for reason in DropReason::ALL {
            if t.drops[reason as usize] > 0 {
                drops.insert(reason.name().to_string(), t.drops[reason as usize]);
            }
        }
        for c in XskCounter::ALL
            .into_iter()
            .filter(|c| *c != XskCounter::TxRingEmpty)
        {
            if t.xsk[c as usize] > 0 {
                drops.insert(format!("xsk_{}", c.name()), t.xsk[c as usize]);
            }
        }
        if let Some(x) = self.xdp_counters(i) {
            for c in [
                XdpCounter::NotCollecting,
                XdpCounter::NoSocket,
                XdpCounter::Malformed,
                XdpCounter::Unsolicited,
            ] {
                if x[c as usize] > 0 {
                    drops.insert(format!("xdp_{}", c.name()), x[c as usize]);
                }
            }
        }
        drops
    }

    /// The indexes of the devices this lagg holds XDP programs on.
    pub fn ifindexes(&self) -> Vec<u32> {
        self.members
            .iter()
            .chain(self.upper.as_ref())
            .filter(|p| p.program.is_some())
            .map(|p| p.ifindex)
            .collect()
    }

    /// lagg(4) flags of member `i`.
    fn port_flags(&self, i: usize, first_active: Option<MemberIndex>) -> PortFlags {
        let port = self.set.member(i);
        // ACTIVE and DISTRIBUTING: the port transmits (failover: only the first active port;
        // lacp: what the mux decided; others: link up).
        let in_use = match self.cfg.proto {
            LaggProto::Failover => first_active == Some(i as MemberIndex),
            LaggProto::None => false,
            _ => port.distributing,
        };
        PortFlags::default()
            .with(
                PortFlags::MASTER,
                i == 0 && self.cfg.proto == LaggProto::Failover,
            )
            .with(PortFlags::ACTIVE, in_use)
            .with(PortFlags::COLLECTING, port.collecting)
            .with(PortFlags::DISTRIBUTING, in_use)
    }

    /// The lagg's state as data (what `xlaggctl` shows).
    pub fn status(&self) -> LaggStatus {
        let table = self.table();
        let first_active = table.active().first().copied();
        let lacp_ports = self.lacp.as_ref().map(|rt| rt.core.status());
        let mut ports = Vec::new();
        let mut active_ports = 0;
        for (i, port) in self.members.iter().enumerate() {
            let state = self.set.member(i);
            if state.retired {
                continue;
            }
            let t = self.port_totals(i);
            let drops = self.port_drops(i, &t);
            let lacp = lacp_ports.as_ref().and_then(|v| v.get(i)).map(|st| {
                let c = st.counters;
                LacpPort {
                    actor: st.actor.to_string(),
                    actor_state: flag_names(&st.actor.state.to_string()),
                    actor_state_bits: st.actor.state.0,
                    partner: st.partner.to_string(),
                    partner_state: flag_names(&st.partner.state.to_string()),
                    partner_state_bits: st.partner.state.0,
                    selected: st.selected.to_string(),
                    mux: st.mux.to_string(),
                    rx: st.rx.to_string(),
                    counters: [
                        ("lacpdu_rx", c.lacpdu_rx),
                        ("lacpdu_tx", c.lacpdu_tx),
                        ("marker_rx", c.marker_rx),
                        ("marker_response_tx", c.marker_response_tx),
                        ("marker_response_rx", c.marker_response_rx),
                        ("illegal_rx", c.illegal_rx),
                        ("unknown_rx", c.unknown_rx),
                        ("loop_rx", c.loop_rx),
                        ("marker_response_dropped", c.marker_response_dropped),
                        ("actor_churn", c.actor_churn),
                        ("partner_churn", c.partner_churn),
                        ("flaps", c.flaps),
                    ]
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v))
                    .collect(),
                }
            });
            let flags = self.port_flags(i, first_active);
            active_ports += usize::from(flags.has(PortFlags::ACTIVE));
            ports.push(PortStatus {
                name: port.name.clone(),
                flags: flags.names().into_iter().map(String::from).collect(),
                link: state.up,
                rx_packets: t.rx_packets,
                rx_bytes: t.rx_bytes,
                tx_packets: t.tx_packets,
                tx_bytes: t.tx_bytes,
                drops,
                lacp,
                bfd: self.bfd_status(i).map(|(s, _)| s.name().to_string()),
                bfd_counters: self.bfd_status(i).map(|(_, c)| c),
                probe: self
                    .arp
                    .as_ref()
                    .map(|_| if state.probe_ok { "ok" } else { "failing" }.to_string()),
            });
        }
        let lacp = self.lacp.as_ref().map(|rt| {
            let status = rt.core.status();
            let lag_id = status
                .iter()
                .find(|st| {
                    st.partner.state.has(PortState::DISTRIBUTING)
                        || st.actor.state.has(PortState::DISTRIBUTING)
                })
                .map(|st| (st.actor.to_string(), st.partner.to_string()));
            LacpLagg {
                lag_id,
                partner_mismatch: rt
                    .core
                    .partner_mismatch()
                    .iter()
                    .map(|(n, p)| format!("{n} {p}"))
                    .collect(),
            }
        });
        let mut st = Self::configured_status(&self.cfg, "running");
        st.ports = ports;
        st.active_ports = active_ports;
        st.flapping = self.set.flaps;
        st.lacp = lacp;
        st.umem = self
            .workers
            .iter()
            .enumerate()
            .map(|(queue, (_, c, _))| {
                let f = c.frames.snapshot();
                crate::status::UmemStatus {
                    queue,
                    total: f.total,
                    free: f.free,
                    posted: f.posted,
                    in_flight: f.in_flight,
                    retiring: f.retiring,
                    audit_failures: f.audit_failures,
                }
            })
            .collect();
        st
    }

    /// The state of a lagg that is configured but not running (`state`: `down` or
    /// `no laggports`), and the configured part of a running one's.
    pub fn configured_status(cfg: &LaggConfig, state: &str) -> LaggStatus {
        let (upper, forward_port, addresses) = match &cfg.upper {
            Upper::Host { addresses } => (
                "host",
                None,
                addresses.iter().map(|(a, p)| format!("{a}/{p}")).collect(),
            ),
            Upper::Forward { port } => ("forward", Some(port.clone()), Vec::new()),
        };
        LaggStatus {
            name: cfg.name.clone(),
            description: cfg.description.clone(),
            state: state.into(),
            error: None,
            laggproto: cfg.proto.to_string(),
            lagghash: cfg.hash.to_string(),
            upper: upper.into(),
            forward_port,
            mtu: cfg.mtu,
            addresses,
            active_ports: 0,
            flapping: 0,
            ports: cfg.ports.iter().map(|p| PortStatus::idle(p)).collect(),
            lacp: None,
            umem: Vec::new(),
        }
    }

    /// Stops the workers, detaches every program, restores promiscuous mode and deletes the
    /// interfaces this lagg created.
    pub fn stop(mut self, nl: &Netlink) {
        self.teardown(nl);
    }

    fn teardown(&mut self, nl: &Netlink) {
        self.lacp = None;
        if let Some(mut rt) = self.bfd.take() {
            let packets: Vec<_> = rt
                .sessions
                .iter_mut()
                .map(bfd::Session::admin_down)
                .collect();
            for (i, p) in packets.iter().enumerate() {
                let _ = rt.send(i, self.members[i].mac, p);
            }
        }
        self.arp = None;
        self.stop.store(true, Ordering::Relaxed);
        for (handle, _, _) in self.workers.drain(..) {
            if handle.join().is_err() {
                tracing::error!(lagg = %self.cfg.name, "a worker panicked");
            }
        }
        for port in self.members.iter_mut().chain(self.upper.as_mut()) {
            restore_port(port);
        }
        for (index, name) in self.created.drain(..).rev() {
            if let Err(e) = nl.delete(index, &name) {
                tracing::error!(lagg = %self.cfg.name, error = %e, "could not delete {name}");
            }
        }
        tracing::info!(lagg = %self.cfg.name, "lagg stopped; programs detached, interfaces removed");
    }
}

/// Puts `value` at `slot` of a per-member vector: replacing a departed member's entry, or
/// appending the next one.
fn put<T>(v: &mut Vec<T>, slot: usize, value: T) {
    if slot < v.len() {
        v[slot] = value;
    } else {
        v.push(value);
    }
}

/// Reads up to 64 frames received on `socket` (frames it sent are skipped) and hands each to
/// `frame`; a receive error is logged and ends the read.
fn read_frames(socket: &PacketSocket, lagg: &str, what: &str, mut frame: impl FnMut(&[u8])) {
    let mut buf = [0u8; 1518];
    for _ in 0..64 {
        match socket.recv(&mut buf, Duration::ZERO) {
            Ok(Some((n, afpacket::Direction::Incoming))) => frame(&buf[..n]),
            Ok(Some((_, afpacket::Direction::Outgoing))) => {}
            Ok(None) => break,
            Err(e) => {
                tracing::warn!(lagg, error = %e, "{what} receive failed");
                break;
            }
        }
    }
}

fn restore_port(port: &mut Port) {
    if let Some(program) = port.program.take() {
        program.detach();
    }
    let restore = std::mem::take(&mut port.restore_features);
    if let Err(e) = crate::offload::set(&port.name, &restore) {
        tracing::warn!(port = %port.name, error = %e, "could not set the port's offloads back");
    }
    // Closing the holder drops the promiscuity it added.
    port.promiscuous = None;
}

/// The link speed in Mb/s from sysfs (0 when the driver does not say).
fn link_speed(name: &str) -> u32 {
    std::fs::read_to_string(format!("/sys/class/net/{name}/speed"))
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok())
        .filter(|s| *s > 0)
        .map_or(0, |s| s.min(i64::from(u32::MAX)) as u32)
}

/// Whether `link` is a lagg interface left by an earlier xlaggd (a veth whose peer carries
/// our prefix).
fn is_stale_host_interface(nl: &Netlink, link: &LinkState) -> Result<bool, NetdevError> {
    Ok(link.kind.as_deref() == Some("veth") && nl.link(&host_peer_name(&link.name))?.is_some())
}
