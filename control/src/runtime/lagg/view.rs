//! A lagg as data: one status (what `xlaggctl` prints, rendered by [`crate::runtime::status::render`],
//! and what the API returns as JSON) and the sample the metrics and the dashboard read (the
//! same state with every counter, per worker and per XDP reason).

use std::collections::BTreeMap;

use xlagg_common::XdpCounter;
use xlagg_dataplane::counters::{DropReason, PortTotals, XskCounter};
use xlagg_dataplane::distribution::{MemberIndex, TxPolicy};
use xlagg_dataplane::worker;

use super::monitors::LacpMonitor;
use super::{Lagg, Port};
use crate::config::{LaggConfig, LaggProto, Upper};
use crate::proto::bfd;
use crate::proto::lacp;
use crate::proto::lacp::pdu::LacpState;
use crate::runtime::status::{flag_names, LacpLagg, LacpPort, LaggStatus, PortFlags, PortStatus};

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
    pub lacp: Option<lacp::LacpPortStatus>,
    /// Micro-BFD session state and counters, when enabled.
    pub bfd: Option<(bfd::State, bfd::Counters)>,
    /// The ARP/NS probe monitor's verdict, when enabled.
    pub probe_ok: Option<bool>,
    /// Members: times the data path left it by itself (see [`PortStatus`]).
    pub data_path_leaves: u64,
    /// Members: share of the bytes the members sent over the last window.
    pub tx_share: Option<f64>,
    /// LACP members: the alarm raised on it, if any (`None` also without LACP).
    pub lacp_alarm: Option<crate::proto::lacp::AlarmKind>,
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
    /// Configured members whose device does not exist.
    pub missing_ports: usize,
    /// The busiest active member's transmit rate over the mean (see [`crate::runtime::load`]).
    pub imbalance: Option<f64>,
    /// LACP laggs: whether the lagg is in LACP fallback (one port forwarding alone).
    pub lacp_fallback: Option<bool>,
    /// With `rebalance`: buckets moved since start.
    pub rebalance_moves: Option<u64>,
    /// Hash policy with an active member: each bucket's member (by name) and what it placed
    /// so far.
    pub buckets: Option<(Vec<String>, Vec<u64>)>,
}

impl Lagg {
    /// The status as the per-port counters table `xlaggd` prints every
    /// `daemon.status_interval_ms` and at exit (see [`crate::runtime::status::table`]).
    pub fn status_table(&self) -> String {
        crate::runtime::status::table(&self.status())
    }

    /// Frame counters of port `index` (members, then the upper port): the workers' summed, or
    /// the kernel engine's.
    pub fn port_totals(&self, index: usize) -> PortTotals {
        // Members sit in the workers' slots by index, the upper port in the upper slot.
        let slot = if index < self.members.len() {
            index
        } else {
            worker::UPPER_SLOT
        };
        let program = self.ports().nth(index).and_then(|p| p.program.as_ref());
        self.path.totals(slot, program)
    }

    /// The XDP program's counters of port `index`.
    pub fn xdp_counters(&self, index: usize) -> Option<[u64; XdpCounter::COUNT as usize]> {
        self.ports().nth(index)?.program.as_ref()?.counters().ok()
    }

    /// Micro-BFD state and counters of member `i`, if enabled.
    pub fn bfd_status(&self, i: usize) -> Option<(bfd::State, bfd::Counters)> {
        self.monitors.bfd.as_ref()?.status(i)
    }

    fn ports(&self) -> impl Iterator<Item = &Port> {
        self.members.iter().chain(self.upper.as_ref())
    }

    /// Counters and state for metrics and the dashboard.
    pub fn sample(&self) -> LaggSample {
        let first_active = self.table().active().first().copied();
        let alarms = self
            .monitors
            .lacp
            .as_ref()
            .map(|l| l.alarms(std::time::Instant::now()));
        let lacp_ports = self.monitors.lacp.as_ref().map(LacpMonitor::status);
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
                probe_ok: self.monitors.probe.as_ref().and(member).map(|m| m.probe_ok),
                data_path_leaves: member.map_or(0, |_| self.lost.left(i)),
                tx_share: self.tx_share(i),
                lacp_alarm: member
                    .and(alarms.as_ref())
                    .and_then(|a| a.iter().find(|a| a.port == i).map(|a| a.kind)),
            });
        }
        let workers = self.path.samples();
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
            missing_ports: self.missing().len(),
            imbalance: self.load.load().and_then(|l| l.imbalance),
            buckets: self.bucket_map(),
            lacp_fallback: self
                .monitors
                .lacp
                .as_ref()
                .map(|l| l.fallback_port().is_some()),
            rebalance_moves: self.rebalance.as_ref().map(|r| r.moves),
        }
    }

    /// Each bucket's member and hits, under the hash policy with an active member.
    fn bucket_map(&self) -> Option<(Vec<String>, Vec<u64>)> {
        let table = self.table();
        if !matches!(table.policy(), TxPolicy::Hash { .. }) || table.active().is_empty() {
            return None;
        }
        let names = table
            .buckets()
            .iter()
            .map(|&m| {
                self.members
                    .get(usize::from(m))
                    .map_or_else(String::new, |p| p.name.clone())
            })
            .collect();
        Some((names, self.bucket_hits().to_vec()))
    }

    /// What each bucket of the table placed so far (hash policy): the XDP engine's or the tc
    /// host path's map, or the workers' counters; all zero where none could be read.
    pub fn bucket_hits(&self) -> [u64; xlagg_dataplane::distribution::BUCKETS] {
        self.path.bucket_hits()
    }

    /// Member `i`'s share of the last load window's bytes.
    fn tx_share(&self, i: usize) -> Option<f64> {
        self.load.load()?.share.get(i).copied().flatten()
    }

    /// Takes the members' transmit counters into the load meter (the daemon does it when it
    /// publishes its view, about once a second).
    pub fn measure_load(&mut self, now: std::time::Instant) {
        let table = self.table();
        let n = self.members.len();
        let bytes: Vec<u64> = (0..n).map(|i| self.port_totals(i).tx_bytes).collect();
        let active: Vec<bool> = (0..n)
            .map(|i| table.active().contains(&(i as MemberIndex)))
            .collect();
        let now = self.time(now);
        self.load.update(now, &bytes, &active);
    }

    /// Whether port `i` (members first, then the upper port) is a member that left.
    fn retired(&self, i: usize) -> bool {
        i < self.members.len() && self.set.member(i).retired
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
                XdpCounter::RateLimited,
                XdpCounter::LinkLocal,
            ] {
                if x[c as usize] > 0 {
                    drops.insert(format!("xdp_{}", c.name()), x[c as usize]);
                }
            }
        }
        drops
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
        let ports = self.port_statuses();
        let mut st = Self::configured_status(&self.cfg, "running");
        if let Some(auto) = &self.autoconf {
            st.dhcp = auto.dhcp_state().map(|d| d.to_string());
            st.dynamic_addresses = auto
                .dynamic()
                .iter()
                .map(|(a, p)| format!("{a}/{p}"))
                .collect();
        }
        st.active_ports = ports
            .iter()
            .filter(|p| p.flags.iter().any(|f| f == "ACTIVE"))
            .count();
        st.ports = ports;
        st.imbalance = self.load.load().and_then(|l| l.imbalance);
        st.rebalance = self
            .rebalance
            .as_ref()
            .map(|r| crate::runtime::status::RebalanceStatus {
                moves: r.moves,
                pending: r.pending(),
            });
        st.flapping = self.set.flaps;
        st.lacp = self.lacp_status();
        st.umem = self.path.umem();
        st.upper_port = self.upper.as_ref().map(|upper| {
            let index = self.members.len();
            let t = self.port_totals(index);
            PortStatus {
                flags: Vec::new(),
                link: true,
                rx_packets: t.rx_packets,
                rx_bytes: t.rx_bytes,
                tx_packets: t.tx_packets,
                tx_bytes: t.tx_bytes,
                drops: self.port_drops(index, &t),
                ..PortStatus::idle(&upper.name)
            }
        });
        st
    }

    /// Every member's state, then the configured members that have no device yet.
    fn port_statuses(&self) -> Vec<PortStatus> {
        let first_active = self.table().active().first().copied();
        let lacp_ports = self.monitors.lacp.as_ref().map(LacpMonitor::status);
        let mut ports = Vec::new();
        for (i, port) in self.members.iter().enumerate() {
            let state = self.set.member(i);
            if state.retired {
                continue;
            }
            let t = self.port_totals(i);
            let drops = self.port_drops(i, &t);
            let lacp = lacp_ports.as_ref().and_then(|v| v.get(i)).map(lacp_port);
            let flags = self.port_flags(i, first_active);
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
                    .monitors
                    .probe
                    .as_ref()
                    .map(|_| if state.probe_ok { "ok" } else { "failing" }.to_string()),
                data_path_leaves: self.lost.left(i),
                missing: false,
                tx_share: self.tx_share(i),
            });
        }
        for name in self.missing() {
            ports.push(PortStatus {
                missing: true,
                ..PortStatus::idle(&name)
            });
        }
        ports
    }

    /// LACP's part of the status: the LAG id, mismatches, fallback and alarms.
    fn lacp_status(&self) -> Option<LacpLagg> {
        let rt = self.monitors.lacp.as_ref()?;
        let lag_id = rt
            .status()
            .iter()
            .find(|st| {
                st.partner.state.has(LacpState::DISTRIBUTING)
                    || st.actor.state.has(LacpState::DISTRIBUTING)
            })
            .map(|st| (st.actor.to_string(), st.partner.to_string()));
        Some(LacpLagg {
            lag_id,
            partner_mismatch: rt
                .partner_mismatch()
                .iter()
                .map(|(n, p)| format!("{n} {p}"))
                .collect(),
            fallback: rt
                .fallback_port()
                .and_then(|f| self.members.get(f))
                .map(|p| p.name.clone()),
            alarms: rt
                .alarms(std::time::Instant::now())
                .into_iter()
                .filter_map(|a| {
                    Some(crate::runtime::status::LacpAlarm {
                        port: self.members.get(a.port)?.name.clone(),
                        kind: a.kind.name().into(),
                        text: a.text,
                    })
                })
                .collect(),
        })
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
            engine: cfg.engine.to_string(),
            upper: upper.into(),
            forward_port,
            mtu: cfg.mtu,
            addresses,
            active_ports: 0,
            imbalance: None,
            rebalance: None,
            flapping: 0,
            ports: cfg.ports.iter().map(|p| PortStatus::idle(p)).collect(),
            lacp: None,
            umem: Vec::new(),
            upper_port: None,
            dhcp: None,
            dynamic_addresses: Vec::new(),
        }
    }
}

/// One port's LACP state and counters, as the status shows them.
fn lacp_port(st: &crate::proto::lacp::LacpPortStatus) -> LacpPort {
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
}
