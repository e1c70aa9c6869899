//! A running lagg: its ports, XDP programs, workers and monitors, around the member set that
//! decides.
//!
//! The parts, one job each:
//! - [`MemberSet`] (in [`crate::runtime::members`]): the rules, sans-IO; everything that decides;
//! - `bringup`: checks before anything is created, bring-up with every step recorded in the
//!   [`Lagg`] value at once, so a failure half-way and a normal stop run the same teardown
//!   (workers stopped, programs detached, offloads and promiscuous mode restored, created
//!   interfaces deleted);
//! - `data_path`: the engine that carries the frames, as one value (the workers, or the
//!   kernel's XDP engine or tc host path);
//! - `workers`: the worker pool (threads, UMEM, sockets, the table they read, the mailbox);
//! - `lost`: what the lost-member watch ([`crate::runtime::lost`]) finds, told and logged;
//! - `monitors`: LACP, micro-BFD and the ARP/NS probe monitor over their packet sockets;
//! - `announce`: gratuitous ARP/NA and learning frames when the member set says so;
//! - `reconfig`: membership, addresses and settings changed in place;
//! - `view`: one status from which `xlaggctl`'s table and the API's JSON are rendered, and the
//!   sample the metrics read.
//!
//! This module feeds the member set what the kernel and the monitors report (link
//! notifications, mux decisions, session states, probe replies, deadlines) and carries out
//! what it decides: the next [`DistributionTable`] (derived from the previous one, so only the
//! affected buckets move), the collecting flags in the XDP programs, notifications to send.

mod announce;
mod autoconf;
mod bringup;
mod control_frames;
mod data_path;
mod explain;
mod lost;
mod monitors;
mod reconfig;
mod view;
mod workers;
mod xdp_port;

use std::time::{Duration, Instant};

use xlagg_dataplane::distribution::{flow_seed, DistributionTable, MemberIndex, TxPolicy};
use xlagg_dataplane::xdp::XdpError;
use xlagg_sys::afpacket::PacketSocket;
use xlagg_sys::linkevents::LinkEvent;

use crate::config::{LaggConfig, LaggProto, Upper};
use crate::proto::lacp;
use crate::proto::time::Time;
use crate::runtime::lost::LostWatch;
use crate::runtime::members::{MemberEvent, MemberSet, Rules, Verdict};
use crate::sys::netdev::{format_mac, LinkState, NetdevError, Netlink};

use announce::Announcer;
use autoconf::Autoconf;
pub use autoconf::{DhcpState, DHCP_CLIENT};
use data_path::DataPath;
pub use explain::Explanation;
use monitors::Monitors;
pub use reconfig::Reconciled;
pub use view::{LaggSample, PortSample, WorkerSample};
pub use xdp_port::PortXdp;

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
    program: Option<PortXdp>,
    /// Holds the port promiscuous while open (the kernel undoes it when it closes).
    promiscuous: Option<PacketSocket>,
    /// Whether the upper port's XDP program delivers to the workers (members: see the member
    /// set).
    collecting: bool,
    /// The port's MAC address.
    pub mac: [u8; 6],
    /// Offloads turned off at attach, to set back at teardown.
    restore_features: Vec<(String, bool)>,
    /// Device settings (sysfs file, old value) changed at attach, to set back at teardown.
    restore_sysfs: Vec<(std::path::PathBuf, String)>,
    /// A member of an AF_XDP lagg in the kernel-side carrier watch.
    watched: Option<xdp_port::Watched>,
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

/// What a caller may change about how a lagg starts (the benchmark uses these).
#[derive(Clone, Copy, Debug, Default)]
pub struct StartOptions {
    /// Replace the protocol's policy with this one (e.g. [`TxPolicy::Fixed`] for a ceiling).
    #[cfg(feature = "testing")]
    pub policy_override: Option<TxPolicy>,
}

/// An interface the lagg created (laggN in host mode), deleted at teardown.
#[derive(Debug)]
struct Created {
    index: u32,
    name: String,
}

/// A running lagg.
#[derive(Debug)]
pub struct Lagg {
    cfg: LaggConfig,
    policy: TxPolicy,
    /// Members by slot (a member that left keeps its slot, retired, until one joins).
    members: Vec<Port>,
    upper: Option<Port>,
    created: Vec<Created>,
    /// The engine that carries the frames, with the table in force.
    path: DataPath,
    /// Members the data path left on its own (a failed transmit): marked by the engine,
    /// counted, told, cleared and retried here.
    lost: LostWatch,
    /// The members' state and the rules over it (sans-IO; see [`crate::runtime::members`]).
    set: MemberSet,
    /// Time zero of every timer of this lagg (the member set's, LACP's, micro-BFD's).
    epoch: Instant,
    announcer: Announcer,
    /// State changes not yet collected by the daemon's event log.
    events: Vec<LaggEvent>,
    /// LACP, micro-BFD and the probe monitor, as configured.
    monitors: Monitors,
    /// DHCP and SLAAC on laggN (host mode).
    autoconf: Option<Autoconf>,
    /// Each member's share of the traffic, over the last window.
    load: crate::runtime::load::LoadMeter,
    /// `rebalance`: moves buckets off a busy member at gaps in their traffic.
    rebalance: Option<crate::runtime::rebalance::Rebalancer>,
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
    /// Starts a lagg: everything it creates is undone if a later step fails.
    ///
    /// # Errors
    /// The failing step; nothing is left behind.
    pub fn start(nl: &Netlink, cfg: &LaggConfig, options: StartOptions) -> Result<Lagg, LaggError> {
        Self::preflight(nl, cfg)?;
        // The members whose device exists; the others are taken in when it appears.
        let present = bringup::present_ports(nl, &cfg.ports)?;
        #[cfg(feature = "testing")]
        let policy = options.policy_override.unwrap_or_else(|| policy_for(cfg));
        #[cfg(not(feature = "testing"))]
        let policy = {
            let StartOptions {} = options;
            policy_for(cfg)
        };
        let seed = flow_seed(cfg.hash_seed);
        let mut lagg = Lagg {
            cfg: cfg.clone(),
            policy,
            members: Vec::new(),
            upper: None,
            created: Vec::new(),
            path: DataPath::load(cfg, DistributionTable::new(policy, seed))?,
            lost: LostWatch::new(None),
            set: MemberSet::new(rules_for(cfg), &present),
            epoch: Instant::now(),
            announcer: Announcer::new(cfg),
            events: Vec::new(),
            monitors: Monitors::default(),
            autoconf: None,
            load: Default::default(),
            rebalance: cfg
                .rebalance
                .map(crate::runtime::rebalance::Rebalancer::new),
        };
        match lagg.bring_up(nl, &present) {
            Ok(()) => Ok(lagg),
            Err(e) => {
                lagg.teardown(nl);
                Err(e)
            }
        }
    }

    /// `now` on the clock of every timer of this lagg.
    fn time(&self, now: Instant) -> Time {
        Time::at(self.epoch, now)
    }

    /// The instant of `t` on this lagg's clock (an hour on where it cannot be one).
    fn instant(&self, t: Time) -> Instant {
        t.instant(self.epoch)
            .unwrap_or(self.epoch + Duration::from_secs(3600))
    }

    /// Re-reads every member's link state from the kernel (at start, as a safety net, and after
    /// a notification overrun) and applies what changed.
    ///
    /// # Errors
    /// A netlink or map failure.
    pub fn refresh_links(&mut self, nl: &Netlink, now: Instant) -> Result<bool, LaggError> {
        let time = self.time(now);
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
            if self.set.handle_link(time, i, raw) {
                changed.push(i);
            }
        }
        if !changed.is_empty() {
            self.after_usability_change(nl, &changed, now)?;
        }
        Ok(!changed.is_empty())
    }

    /// Records whether member `slot` carries the lagg's frames at its device's MTU
    /// `link_mtu` (at least the lagg's); true when that changed.
    pub(super) fn judge_mtu(&mut self, slot: usize, link_mtu: u32) -> bool {
        self.set
            .set_verdict(slot, Verdict::Mtu, link_mtu >= self.cfg.mtu)
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
        now: Instant,
    ) -> Result<(), LaggError> {
        // How long applying takes (a measurement for the log, not a rule's time).
        let started = Instant::now();
        let time = self.time(now);
        let mut changed = Vec::new();
        let mut usability = Vec::new();
        let host = matches!(self.cfg.upper, Upper::Host { .. })
            .then(|| self.created.first().map(|c| c.index))
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
                if self.judge_mtu(i, mtu) {
                    let ok = self.set.member(i).mtu_ok;
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
            self.after_usability_change(nl, &usability, now)?;
        }
        for ev in events {
            if let Some(i) = self.slot_of(ev.ifindex) {
                let raw = !ev.removed && ev.admin_up && ev.carrier;
                self.lost_link_event(i, raw);
                if self.set.handle_link(time, i, raw) && !changed.contains(&i) {
                    changed.push(i);
                }
            }
        }
        self.log_member_events();
        if !changed.is_empty() {
            self.after_usability_change(nl, &changed, now)?;
            tracing::debug!(lagg = %self.cfg.name, micros = started.elapsed().as_micros() as u64, "link change applied");
        }
        Ok(())
    }

    /// Whether `events` may change which devices the members are: a member's device removed,
    /// or, while a member is missing, a device this lagg does not know.
    pub fn membership_may_change(&self, events: &[LinkEvent]) -> bool {
        let missing = !self.missing().is_empty();
        events.iter().any(|e| match self.slot_of(e.ifindex) {
            Some(_) => e.removed,
            None => missing && !e.removed,
        })
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

    /// When the lagg's timers are next due ([`lacp_tick`](Self::lacp_tick) and
    /// [`link_tick`](Self::link_tick)): a delayed link change, a notification, a monitor's
    /// timer, the look at the lost-member marks, the rebalancer.
    pub fn deadline(&self) -> Option<Instant> {
        let monitors = self.monitors.all().filter_map(|m| m.deadline());
        // A rebalancer without a deadline is due at once.
        let rebalance = self
            .rebalance
            .as_ref()
            .map(|r| r.deadline().unwrap_or(Time::ZERO));
        let cores = [self.set.poll_timeout(), self.lost.deadline(), rebalance];
        cores
            .into_iter()
            .flatten()
            .map(|t| self.instant(t))
            .chain(monitors)
            .min()
    }

    /// Applies delayed link changes, runs the micro-BFD and probe timers and sends peer
    /// notifications that are due by `now`.
    ///
    /// # Errors
    /// A netlink or map failure.
    pub fn link_tick(&mut self, nl: &Netlink, now: Instant) -> Result<(), LaggError> {
        self.check_lost(now);
        let changed = self.set.handle_timeout(self.time(now));
        self.log_member_events();
        if !changed.is_empty() {
            self.after_usability_change(nl, &changed, now)?;
        }
        if let Some(bfd) = self.monitors.bfd.as_mut() {
            let set = &self.set;
            let changed = bfd.tick(now, &self.members, |i| set.member(i).retired);
            self.apply_bfd(nl, &changed, now)?;
        }
        if let Some(probe) = self.monitors.probe.as_mut() {
            probe.tick(now, &self.members);
            self.judge_probes(nl, now)?;
        }
        self.send_due_notifications(nl, now);
        self.rebalance_tick(now)
    }

    /// Runs the rebalancer when due: reads the buckets' counters and publishes the buckets
    /// it moves, each with an event.
    fn rebalance_tick(&mut self, now: Instant) -> Result<(), LaggError> {
        let now = self.time(now);
        let due = self
            .rebalance
            .as_ref()
            .is_some_and(|r| r.deadline().is_none_or(|d| now >= d));
        if !due {
            return Ok(());
        }
        // A hash policy (validated): the buckets are the table's.
        let table = self.table();
        let hits = self.bucket_hits();
        let Some(r) = self.rebalance.as_mut() else {
            return Ok(());
        };
        let moves = r.step(now, &hits, table.buckets(), table.active());
        if moves.is_empty() {
            return Ok(());
        }
        let mut next = (*table).clone();
        for m in &moves {
            next = next.with_bucket(m.bucket, m.to);
        }
        self.path.publish(next)?;
        for m in moves {
            let name = |i: MemberIndex| {
                self.members
                    .get(usize::from(i))
                    .map_or_else(|| format!("slot {i}"), |p| p.name.clone())
            };
            let text = format!(
                "rebalance: bucket {} ({:.0} frames/s) moved from {} to {} after a {} ms gap in its traffic",
                m.bucket,
                m.rate,
                name(m.from),
                name(m.to),
                m.gap.as_millis()
            );
            tracing::info!(lagg = %self.cfg.name, "{text}");
            self.event("rebalance", Some(name(m.from)), text);
        }
        Ok(())
    }

    /// After members became usable or unusable (link, MTU, or a monitor's verdict): the ones
    /// that came back lose what was stuck on their tx rings, LACP hears of it, the table is
    /// republished and peers are told where the lagg now is.
    fn after_usability_change(
        &mut self,
        nl: &Netlink,
        changed: &[usize],
        now: Instant,
    ) -> Result<(), LaggError> {
        for &i in changed {
            if self.set.usable(i) {
                self.path.reset_port(i, &mut self.members[i]);
                self.lost.clear(i);
            }
        }
        if let Some(lacp) = self.monitors.lacp.as_mut() {
            for &i in changed {
                let speed = link_speed(&self.members[i].name);
                lacp.link(i, self.set.usable(i), speed, now);
            }
        }
        self.drain_lacp(now)?;
        self.publish(changed, false, now)?;
        self.send_due_notifications(nl, now);
        Ok(())
    }

    /// Tells the peers of the members that are due (see [`MemberSet::due_notifications`]).
    fn send_due_notifications(&mut self, nl: &Netlink, now: Instant) {
        self.announcer.age(now);
        let due = self.set.due_notifications(self.time(now));
        self.announcer.send(&self.cfg, nl, &self.members, &due);
    }

    /// Derives which members distribute and collect, publishes the next table (from the
    /// previous one, so only affected buckets move) and sets the XDP collecting flags.
    fn publish(&mut self, changed: &[usize], force: bool, now: Instant) -> Result<(), LaggError> {
        let before: Vec<bool> = self.set.members().iter().map(|m| m.collecting).collect();
        let decisions = self.set.settle(self.time(now), changed);
        self.log_member_events();
        let active = self.set.active();
        let collecting_mask = decisions
            .iter()
            .enumerate()
            .filter(|(_, d)| d.0)
            .fold(0u32, |m, (i, _)| m | (1 << i));
        // A table the XDP engine's maps refused is reported after the collecting flags are
        // written: the member set has moved on, and the ports must follow it either way.
        let mut published = Ok(());
        let current = self.path.table();
        if current.collecting() != collecting_mask
            && current.active() == active.as_slice()
            && !force
        {
            published = self.path.publish(current.with_collecting(collecting_mask));
        }
        let current = self.path.table();
        if force || current.active() != active.as_slice() {
            let next = current
                .with_active(&active)
                .with_collecting(collecting_mask);
            if let Err(e) = self.path.publish(next) {
                published = Err(e);
            }
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
        published.map_err(LaggError::from)
    }

    /// Queues whose worker thread has ended although the lagg was not stopped (it panicked).
    pub fn dead_workers(&self) -> Vec<usize> {
        self.path.dead()
    }

    /// Fault injection for tests: makes the worker of `queue` panic.
    ///
    /// # Errors
    /// No such worker.
    #[cfg(feature = "testing")]
    pub fn crash_worker(&self, queue: usize) -> Result<(), String> {
        self.path.crash(&self.cfg.name, queue)
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
    pub fn table(&self) -> std::sync::Arc<DistributionTable> {
        self.path.table()
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

    fn event(&mut self, kind: &'static str, port: Option<String>, text: String) {
        self.events.push(LaggEvent {
            time_ms: unix_ms(),
            kind,
            lagg: self.cfg.name.clone(),
            port,
            text,
        });
    }

    /// Keeps the DHCP client running and notes the addresses laggN obtained (host mode);
    /// called every control step, reads the kernel once a second.
    pub fn autoconf_tick(&mut self, nl: &Netlink) {
        let Some(auto) = self.autoconf.as_mut() else {
            return;
        };
        let configured = match &self.cfg.upper {
            Upper::Host { addresses } => addresses.clone(),
            Upper::Forward { .. } => Vec::new(),
        };
        for text in auto.tick(nl, &configured) {
            self.event("address", None, text);
        }
    }

    /// With `SYNCDHCP` and no lease yet: until when readiness waits for one.
    pub fn awaiting_lease(&self) -> Option<Instant> {
        let auto = self.autoconf.as_ref()?;
        // No lease yet; a client that cannot run (not installed, refused) brings none.
        if auto.bound() || matches!(auto.dhcp_state(), Some(DhcpState::NoClient(_))) {
            return None;
        }
        auto.sync_until()
    }

    /// State changes since the last call (the daemon keeps the timeline).
    pub fn take_events(&mut self) -> Vec<LaggEvent> {
        std::mem::take(&mut self.events)
    }

    /// Stops the workers, detaches every program, restores promiscuous mode and deletes the
    /// interfaces this lagg created.
    pub fn stop(mut self, nl: &Netlink) {
        self.teardown(nl);
    }
}

/// The link speed in Mb/s from sysfs (0 when the driver does not say).
fn link_speed(name: &str) -> u32 {
    std::fs::read_to_string(format!("/sys/class/net/{name}/speed"))
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok())
        .filter(|s| *s > 0)
        .map_or(0, |s| s.min(i64::from(u32::MAX)) as u32)
}
