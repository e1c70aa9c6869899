//! Prometheus text exposition of every lagg's counters, from one catalog: every metric's name,
//! type, labels and help live in [`CATALOG`], which renders `/metrics`, the documentation
//! table and the snapshot file `dist/metrics.txt` that a test holds the catalog to.

use std::fmt::Write;

use xlagg_common::XdpCounter;
use xlagg_dataplane::counters::{latency_bucket_upper, DropReason, XskCounter, LATENCY_BUCKETS};

use crate::runtime::lagg::LaggSample;

/// One metric family.
#[derive(Debug, Clone, Copy)]
pub struct Metric {
    /// Name.
    pub name: &'static str,
    /// `counter`, `gauge` or `histogram`.
    pub kind: &'static str,
    /// Label names.
    pub labels: &'static [&'static str],
    /// What it counts, with its unit.
    pub help: &'static str,
}

const fn m(
    name: &'static str,
    kind: &'static str,
    labels: &'static [&'static str],
    help: &'static str,
) -> Metric {
    Metric {
        name,
        kind,
        labels,
        help,
    }
}

/// Every metric xlaggd exports.
pub const CATALOG: &[Metric] = &[
    m("xlagg_build_info", "gauge", &["version"], "Always 1; the version of xlaggd."),
    m("xlagg_lagg_up", "gauge", &["lagg"], "1 while the lagg runs, 0 when configured but down or without ports."),
    m("xlagg_lagg_failed", "gauge", &["lagg"], "1 while a lagg that should run does not (it could not start, or stopped on a fault) and is retried."),
    m("xlagg_lagg_active_ports", "gauge", &["lagg"], "Member ports that transmit now."),
    m("xlagg_lagg_missing_ports", "gauge", &["lagg"], "Configured member ports whose device does not exist: the lagg runs on the others and takes them in when they appear."),
    m("xlagg_lagg_failovers_total", "counter", &["lagg"], "Changes of the failover active port since the lagg started."),
    m("xlagg_lagg_link_flaps_total", "counter", &["lagg"], "Member link changes (after updelay/downdelay) since the lagg started."),
    m("xlagg_lagg_lacp_fallback", "gauge", &["lagg"], "LACP laggs: 1 while in LACP fallback (lacp_fallback: no port hears the partner, one port forwards alone), 0 otherwise."),
    m("xlagg_lagg_rebalance_moves_total", "counter", &["lagg"], "With rebalance: buckets moved off a busy member, each at a gap in its traffic, since the lagg started."),
    m("xlagg_lagg_tx_imbalance", "gauge", &["lagg"], "The busiest active member's transmit rate over the active members' mean, over the last second or so: 1 is even, N is everything on one of N members. Absent while nothing is sent."),
    m("xlagg_port_link_up", "gauge", &["lagg", "port"], "1 when the member's link is up (admin up and carrier, after updelay/downdelay)."),
    m("xlagg_port_collecting", "gauge", &["lagg", "port"], "1 when frames received on the port are accepted."),
    m("xlagg_port_distributing", "gauge", &["lagg", "port"], "1 when the port transmits."),
    m("xlagg_port_lacp_alarm", "gauge", &["lagg", "port", "alarm"], "LACP members: 1 while the alarm is raised on the port, 0 otherwise. alarm: partner_mismatch (its partner differs from the other ports'), slow_partner (the partner sends slowly though we asked for fast LACPDUs), defaulted (no LACPDU from the partner), individual (the partner marks the link individual)."),
    m("xlagg_port_tx_share", "gauge", &["lagg", "port"], "The member's share of the bytes the lagg's members sent over the last second or so, 0 to 1. Absent while nothing is sent."),
    m("xlagg_port_data_path_leaves_total", "counter", &["lagg", "port"], "Times the data path left the member by itself, without waiting for the control thread's link event: a frame the kernel dropped for it after its carrier went, its device down (AF_XDP engine), or a devmap flush to it that found no carrier, failed, or took nothing for 250 us (XDP engine)."),
    m("xlagg_port_rx_packets_total", "counter", &["lagg", "port", "role"], "Frames the workers received from the port (role: member or upper)."),
    m("xlagg_port_rx_bytes_total", "counter", &["lagg", "port", "role"], "Bytes the workers received from the port."),
    m("xlagg_port_tx_packets_total", "counter", &["lagg", "port", "role"], "Frames the workers put on the port's transmit ring."),
    m("xlagg_port_tx_bytes_total", "counter", &["lagg", "port", "role"], "Bytes the workers put on the port's transmit ring."),
    m("xlagg_port_drops_total", "counter", &["lagg", "port", "role", "reason"], "Frames dropped at the port, on arrival or on transmit, by reason: worker (tx_ring_full and tx_refused on transmit; no_active_port, no_free_frame, invalid_descriptor), XDP engine (not_redirected), XDP program (not_collecting, no_socket, malformed), kernel socket (rx_dropped, rx_ring_full, fill_ring_empty, rx_invalid_descriptor, tx_invalid_descriptor)."),
    m("xlagg_port_xdp_redirected_total", "counter", &["lagg", "port", "role"], "Frames the XDP program handed to the port's AF_XDP socket."),
    m("xlagg_port_xdp_slow_protocol_total", "counter", &["lagg", "port", "role"], "Slow-protocol frames (LACP, Marker) the XDP program passed to the control path."),
    m("xlagg_port_xdp_probe_total", "counter", &["lagg", "port", "role"], "Probe monitor frames (micro-BFD, replies to ARP/NS probes) the XDP program passed to the control path."),
    m("xlagg_port_tx_ring_empty_total", "counter", &["lagg", "port", "role"], "Times the kernel found the port's transmit ring empty when asked to send."),
    m("xlagg_port_monitor_up", "gauge", &["lagg", "port", "monitor"], "1 while a probe monitor passes the member (monitor: bfd for its micro-BFD session, arp for the ARP/NS probe monitor)."),
    m("xlagg_bfd_packets_total", "counter", &["lagg", "port", "kind"], "Micro-BFD control packets of the member's session: received and accepted (rx), sent (tx), discarded (invalid)."),
    m("xlagg_bfd_session_down_total", "counter", &["lagg", "port"], "Times the member's micro-BFD session went down."),
    m("xlagg_lacp_pdus_total", "counter", &["lagg", "port", "direction"], "LACPDUs received (direction rx) and sent (tx)."),
    m("xlagg_lacp_marker_pdus_total", "counter", &["lagg", "port", "type"], "Marker PDUs: requests received (request_rx), responses sent (response_tx) and received (response_rx)."),
    m("xlagg_lacp_bad_pdus_total", "counter", &["lagg", "port", "type"], "Slow-protocol frames refused: illegal (malformed, or not to 01-80-C2-00-00-02), unknown (other subtype), loop (our own system id), marker_unanswered (Marker Informations beyond 3 per second)."),
    m("xlagg_lacp_churn_total", "counter", &["lagg", "port", "side"], "Times the actor or partner churn machine found the port out of sync too long."),
    m("xlagg_lacp_actor_state", "gauge", &["lagg", "port"], "The actor's LACP state bits (ACTIVITY 1, TIMEOUT 2, AGGREGATION 4, SYNC 8, COLLECTING 16, DISTRIBUTING 32, DEFAULTED 64, EXPIRED 128)."),
    m("xlagg_lacp_partner_state", "gauge", &["lagg", "port"], "The partner's LACP state bits as last received."),
    m("xlagg_lacp_selected", "gauge", &["lagg", "port"], "1 when the port is selected for the active aggregation."),
    m("xlagg_worker_busy_seconds_total", "counter", &["lagg", "worker"], "Seconds the worker spent in loop iterations that moved frames; its rate is the busy ratio."),
    m("xlagg_worker_loops_total", "counter", &["lagg", "worker", "kind"], "Worker loop iterations that moved frames (busy) or nothing (idle)."),
    m("xlagg_worker_latency_seconds", "histogram", &["lagg"], "Time from a frame's batch being read from a receive ring to its transmit submit."),
    m("xlagg_umem_frames", "gauge", &["lagg", "worker", "place"], "UMEM frames by where they are: free, posted (fill rings), in_flight (tx rings), retiring (sockets being closed); they add up to the UMEM's size."),
    m("xlagg_umem_audit_failures_total", "counter", &["lagg", "worker"], "Frame ledger audits (at membership changes and stop) that found a frame lost or held twice; always 0 unless there is a bug."),
    m("xlagg_events_total", "counter", &["kind"], "State changes in the event timeline: link, failover, lacp, bfd, probe, config."),
];

/// The catalog as the snapshot file and the README show it: one line per metric.
pub fn catalog_text() -> String {
    let mut out = String::new();
    for m in CATALOG {
        let _ = writeln!(
            out,
            "{} {} {{{}}} {}",
            m.name,
            m.kind,
            m.labels.join(","),
            m.help
        );
    }
    out
}

/// Latency histogram bounds (seconds) for Prometheus: the fine buckets, coarsened.
const LE_SECONDS: [f64; 14] = [
    1e-6, 2e-6, 5e-6, 10e-6, 20e-6, 50e-6, 100e-6, 200e-6, 500e-6, 1e-3, 2e-3, 5e-3, 10e-3, 100e-3,
];

/// 1 for true, 0 for false.
fn b(v: bool) -> f64 {
    if v {
        1.0
    } else {
        0.0
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

struct Out {
    text: String,
}

impl Out {
    fn header(&mut self, name: &str) {
        if let Some(m) = CATALOG.iter().find(|m| m.name == name) {
            let _ = writeln!(self.text, "# HELP {} {}", m.name, m.help);
            let _ = writeln!(self.text, "# TYPE {} {}", m.name, m.kind);
        }
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.text.push_str(name);
        if !labels.is_empty() {
            self.text.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.text.push(',');
                }
                let _ = write!(self.text, "{k}=\"{}\"", escape(v));
            }
            self.text.push('}');
        }
        let _ = writeln!(self.text, " {value}");
    }
}

/// What the daemon knows besides the running laggs.
#[derive(Debug, Clone, Default)]
pub struct DaemonFacts {
    /// Configured laggs that are not running.
    pub stopped: Vec<String>,
    /// Laggs that should run but do not (retried).
    pub failed: Vec<String>,
    /// Events so far by kind.
    pub events: Vec<(&'static str, u64)>,
}

/// Renders `/metrics`, family by family.
pub fn render(samples: &[LaggSample], facts: &DaemonFacts) -> String {
    let mut o = Out {
        text: String::new(),
    };
    lagg_families(&mut o, samples, facts);
    port_families(&mut o, samples);
    port_traffic_families(&mut o, samples);
    drop_family(&mut o, samples);
    monitor_families(&mut o, samples);
    lacp_families(&mut o, samples);
    worker_families(&mut o, samples);
    latency_family(&mut o, samples);
    o.header("xlagg_events_total");
    for (kind, n) in &facts.events {
        o.sample("xlagg_events_total", &[("kind", kind)], *n as f64);
    }
    o.text
}

/// The daemon and each lagg.
fn lagg_families(o: &mut Out, samples: &[LaggSample], facts: &DaemonFacts) {
    o.header("xlagg_build_info");
    o.sample(
        "xlagg_build_info",
        &[("version", env!("CARGO_PKG_VERSION"))],
        1.0,
    );
    o.header("xlagg_lagg_up");
    for s in samples {
        o.sample("xlagg_lagg_up", &[("lagg", &s.name)], 1.0);
    }
    for name in &facts.stopped {
        o.sample("xlagg_lagg_up", &[("lagg", name)], 0.0);
    }
    o.header("xlagg_lagg_failed");
    for name in &facts.failed {
        o.sample("xlagg_lagg_failed", &[("lagg", name)], 1.0);
    }
    type LaggValue = fn(&LaggSample) -> f64;
    let per_lagg: [(&str, LaggValue); 4] = [
        ("xlagg_lagg_active_ports", |s| s.active_ports as f64),
        ("xlagg_lagg_missing_ports", |s| s.missing_ports as f64),
        ("xlagg_lagg_failovers_total", |s| s.failovers as f64),
        ("xlagg_lagg_link_flaps_total", |s| s.flaps as f64),
    ];
    for (name, value) in per_lagg {
        o.header(name);
        for s in samples {
            o.sample(name, &[("lagg", &s.name)], value(s));
        }
    }
    o.header("xlagg_lagg_lacp_fallback");
    for s in samples {
        if let Some(on) = s.lacp_fallback {
            o.sample("xlagg_lagg_lacp_fallback", &[("lagg", &s.name)], b(on));
        }
    }
    o.header("xlagg_lagg_rebalance_moves_total");
    for s in samples {
        if let Some(n) = s.rebalance_moves {
            o.sample(
                "xlagg_lagg_rebalance_moves_total",
                &[("lagg", &s.name)],
                n as f64,
            );
        }
    }
    o.header("xlagg_lagg_tx_imbalance");
    for s in samples {
        if let Some(i) = s.imbalance {
            o.sample("xlagg_lagg_tx_imbalance", &[("lagg", &s.name)], i);
        }
    }
}

/// Each port: link, collecting, distributing and traffic.
fn port_families(o: &mut Out, samples: &[LaggSample]) {
    type PortFlag = fn(&crate::runtime::lagg::PortSample) -> bool;
    let flags: [(&str, PortFlag); 3] = [
        ("xlagg_port_link_up", |p| p.link),
        ("xlagg_port_collecting", |p| p.collecting),
        ("xlagg_port_distributing", |p| p.distributing),
    ];
    for (name, value) in flags {
        o.header(name);
        for s in samples {
            for p in s.ports.iter().filter(|p| p.role == "member") {
                o.sample(name, &[("lagg", &s.name), ("port", &p.name)], b(value(p)));
            }
        }
    }
    o.header("xlagg_port_lacp_alarm");
    for s in samples {
        for p in s
            .ports
            .iter()
            .filter(|p| p.role == "member" && p.lacp.is_some())
        {
            for kind in crate::proto::lacp::AlarmKind::ALL {
                let labels = [
                    ("lagg", s.name.as_str()),
                    ("port", &p.name),
                    ("alarm", kind.name()),
                ];
                o.sample(
                    "xlagg_port_lacp_alarm",
                    &labels,
                    b(p.lacp_alarm == Some(kind)),
                );
            }
        }
    }
    o.header("xlagg_port_tx_share");
    for s in samples {
        for p in s.ports.iter().filter(|p| p.role == "member") {
            if let Some(share) = p.tx_share {
                let labels = [("lagg", s.name.as_str()), ("port", &p.name)];
                o.sample("xlagg_port_tx_share", &labels, share);
            }
        }
    }
    let name = "xlagg_port_data_path_leaves_total";
    o.header(name);
    for s in samples {
        for p in s.ports.iter().filter(|p| p.role == "member") {
            o.sample(
                name,
                &[("lagg", &s.name), ("port", &p.name)],
                p.data_path_leaves as f64,
            );
        }
    }
}

/// Each port's traffic: packets, bytes, the XDP program's verdicts and the socket's empty
/// tx ring.
fn port_traffic_families(o: &mut Out, samples: &[LaggSample]) {
    type PortValue = fn(&crate::runtime::lagg::PortSample) -> u64;
    let traffic: [(&str, PortValue); 8] = [
        ("xlagg_port_rx_packets_total", |p| p.totals.rx_packets),
        ("xlagg_port_rx_bytes_total", |p| p.totals.rx_bytes),
        ("xlagg_port_tx_packets_total", |p| p.totals.tx_packets),
        ("xlagg_port_tx_bytes_total", |p| p.totals.tx_bytes),
        ("xlagg_port_xdp_redirected_total", |p| {
            p.xdp[XdpCounter::Redirected as usize]
        }),
        ("xlagg_port_xdp_slow_protocol_total", |p| {
            p.xdp[XdpCounter::SlowProtocol as usize]
        }),
        ("xlagg_port_xdp_probe_total", |p| {
            p.xdp[XdpCounter::Probe as usize]
        }),
        ("xlagg_port_tx_ring_empty_total", |p| {
            p.totals.xsk[XskCounter::TxRingEmpty as usize]
        }),
    ];
    for (name, value) in traffic {
        o.header(name);
        for s in samples {
            for p in &s.ports {
                let labels = [
                    ("lagg", s.name.as_str()),
                    ("port", &p.name),
                    ("role", p.role),
                ];
                o.sample(name, &labels, value(p) as f64);
            }
        }
    }
}

/// Each port's drops, by reason: the worker's, the XDP program's and the kernel socket's.
fn drop_family(o: &mut Out, samples: &[LaggSample]) {
    o.header("xlagg_port_drops_total");
    for s in samples {
        for p in &s.ports {
            let mut reasons: Vec<(&str, u64)> = DropReason::ALL
                .iter()
                .map(|r| (r.name(), p.totals.drops[*r as usize]))
                .collect();
            for c in [
                XdpCounter::NotCollecting,
                XdpCounter::NoSocket,
                XdpCounter::Malformed,
                XdpCounter::Unsolicited,
                XdpCounter::RateLimited,
                XdpCounter::LinkLocal,
            ] {
                reasons.push((c.name(), p.xdp[c as usize]));
            }
            for c in XskCounter::ALL
                .iter()
                .filter(|c| **c != XskCounter::TxRingEmpty)
            {
                reasons.push((c.name(), p.totals.xsk[*c as usize]));
            }
            for (reason, n) in reasons {
                let labels = [
                    ("lagg", s.name.as_str()),
                    ("port", &p.name),
                    ("role", p.role),
                    ("reason", reason),
                ];
                o.sample("xlagg_port_drops_total", &labels, n as f64);
            }
        }
    }
}

/// Each member's micro-BFD session and probe monitor.
fn monitor_families(o: &mut Out, samples: &[LaggSample]) {
    o.header("xlagg_port_monitor_up");
    for s in samples {
        for p in &s.ports {
            if let Some((state, _)) = p.bfd {
                let labels = [
                    ("lagg", s.name.as_str()),
                    ("port", &p.name),
                    ("monitor", "bfd"),
                ];
                o.sample(
                    "xlagg_port_monitor_up",
                    &labels,
                    b(state == crate::proto::bfd::State::Up),
                );
            }
            if let Some(ok) = p.probe_ok {
                let labels = [
                    ("lagg", s.name.as_str()),
                    ("port", &p.name),
                    ("monitor", "arp"),
                ];
                o.sample("xlagg_port_monitor_up", &labels, b(ok));
            }
        }
    }
    o.header("xlagg_bfd_packets_total");
    for s in samples {
        for p in &s.ports {
            if let Some((_, c)) = p.bfd {
                for (kind, n) in [("rx", c.rx), ("tx", c.tx), ("invalid", c.invalid)] {
                    let labels = [("lagg", s.name.as_str()), ("port", &p.name), ("kind", kind)];
                    o.sample("xlagg_bfd_packets_total", &labels, n as f64);
                }
            }
        }
    }
    o.header("xlagg_bfd_session_down_total");
    for s in samples {
        for p in &s.ports {
            if let Some((_, c)) = p.bfd {
                let labels = [("lagg", s.name.as_str()), ("port", &p.name)];
                o.sample("xlagg_bfd_session_down_total", &labels, c.down as f64);
            }
        }
    }
}

/// Each LACP port's PDUs and state.
fn lacp_families(o: &mut Out, samples: &[LaggSample]) {
    let lacp_ports: Vec<(&str, &str, &crate::proto::lacp::LacpPortStatus)> = samples
        .iter()
        .flat_map(|s| {
            s.ports.iter().filter_map(move |p| {
                p.lacp
                    .as_ref()
                    .map(|l| (s.name.as_str(), p.name.as_str(), l))
            })
        })
        .collect();
    type LacpCounts = fn(&crate::proto::lacp::LacpPortStatus) -> Vec<(&'static str, u64)>;
    let counted: [(&str, &str, LacpCounts); 4] = [
        ("xlagg_lacp_pdus_total", "direction", |l| {
            vec![("rx", l.counters.lacpdu_rx), ("tx", l.counters.lacpdu_tx)]
        }),
        ("xlagg_lacp_marker_pdus_total", "type", |l| {
            vec![
                ("request_rx", l.counters.marker_rx),
                ("response_tx", l.counters.marker_response_tx),
                ("response_rx", l.counters.marker_response_rx),
            ]
        }),
        ("xlagg_lacp_bad_pdus_total", "type", |l| {
            vec![
                ("illegal", l.counters.illegal_rx),
                ("unknown", l.counters.unknown_rx),
                ("loop", l.counters.loop_rx),
                ("marker_unanswered", l.counters.marker_response_dropped),
            ]
        }),
        ("xlagg_lacp_churn_total", "side", |l| {
            vec![
                ("actor", l.counters.actor_churn),
                ("partner", l.counters.partner_churn),
            ]
        }),
    ];
    for (name, key, counts) in counted {
        o.header(name);
        for (lagg, port, l) in &lacp_ports {
            for (value, n) in counts(l) {
                o.sample(
                    name,
                    &[("lagg", lagg), ("port", port), (key, value)],
                    n as f64,
                );
            }
        }
    }
    type LacpValue = fn(&crate::proto::lacp::LacpPortStatus) -> f64;
    let lacp_state: [(&str, LacpValue); 3] = [
        ("xlagg_lacp_actor_state", |l| f64::from(l.actor.state.0)),
        ("xlagg_lacp_partner_state", |l| f64::from(l.partner.state.0)),
        ("xlagg_lacp_selected", |l| {
            if l.selected == crate::proto::lacp::Selected::Selected {
                1.0
            } else {
                0.0
            }
        }),
    ];
    for (name, value) in lacp_state {
        o.header(name);
        for (lagg, port, l) in &lacp_ports {
            o.sample(name, &[("lagg", lagg), ("port", port)], value(l));
        }
    }
}

/// Each worker's time, loops and UMEM frames.
fn worker_families(o: &mut Out, samples: &[LaggSample]) {
    o.header("xlagg_worker_busy_seconds_total");
    for s in samples {
        for w in &s.workers {
            let worker = w.queue.to_string();
            o.sample(
                "xlagg_worker_busy_seconds_total",
                &[("lagg", &s.name), ("worker", &worker)],
                w.busy_ns as f64 / 1e9,
            );
        }
    }
    o.header("xlagg_umem_frames");
    for s in samples {
        for w in &s.workers {
            let worker = w.queue.to_string();
            let f = &w.frames;
            for (place, n) in [
                ("free", f.free),
                ("posted", f.posted),
                ("in_flight", f.in_flight),
                ("retiring", f.retiring),
            ] {
                o.sample(
                    "xlagg_umem_frames",
                    &[("lagg", &s.name), ("worker", &worker), ("place", place)],
                    n as f64,
                );
            }
        }
    }
    o.header("xlagg_umem_audit_failures_total");
    for s in samples {
        for w in &s.workers {
            let worker = w.queue.to_string();
            o.sample(
                "xlagg_umem_audit_failures_total",
                &[("lagg", &s.name), ("worker", &worker)],
                w.frames.audit_failures as f64,
            );
        }
    }
    o.header("xlagg_worker_loops_total");
    for s in samples {
        for w in &s.workers {
            let worker = w.queue.to_string();
            for (kind, n) in [("busy", w.loops.0), ("idle", w.loops.1)] {
                o.sample(
                    "xlagg_worker_loops_total",
                    &[("lagg", &s.name), ("worker", &worker), ("kind", kind)],
                    n as f64,
                );
            }
        }
    }
}

/// Each lagg's latency histogram, the fine buckets summed into Prometheus' bounds.
fn latency_family(o: &mut Out, samples: &[LaggSample]) {
    o.header("xlagg_worker_latency_seconds");
    for s in samples {
        let mut buckets = vec![0u64; LATENCY_BUCKETS];
        let mut sum_ns = 0u64;
        for w in &s.workers {
            for (b, n) in buckets.iter_mut().zip(&w.latency) {
                *b += n;
            }
            sum_ns += w.latency_sum_ns;
        }
        let total: u64 = buckets.iter().sum();
        for le in LE_SECONDS {
            // Fine buckets whose upper bound is within `le`.
            let n: u64 = buckets
                .iter()
                .enumerate()
                .filter(|(i, _)| latency_bucket_upper(*i) as f64 <= le * 1e9)
                .map(|(_, n)| n)
                .sum();
            let le = format!("{le}");
            o.sample(
                "xlagg_worker_latency_seconds_bucket",
                &[("lagg", &s.name), ("le", &le)],
                n as f64,
            );
        }
        o.sample(
            "xlagg_worker_latency_seconds_bucket",
            &[("lagg", &s.name), ("le", "+Inf")],
            total as f64,
        );
        o.sample(
            "xlagg_worker_latency_seconds_sum",
            &[("lagg", &s.name)],
            sum_ns as f64 / 1e9,
        );
        o.sample(
            "xlagg_worker_latency_seconds_count",
            &[("lagg", &s.name)],
            total as f64,
        );
    }
}

/// Latency percentiles (nanoseconds) over buckets, through an HDR histogram: p50, p90, p99,
/// p99.9 and max; `None` without samples.
pub fn latency_percentiles(buckets: &[u64]) -> Option<[u64; 5]> {
    let mut h = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 10_000_000_000, 2).ok()?;
    for (i, &n) in buckets.iter().enumerate() {
        if n > 0 {
            // Every frame of a bucket is taken at the bucket's middle.
            let upper = latency_bucket_upper(i);
            let lower = if i == 0 {
                1
            } else {
                latency_bucket_upper(i - 1)
            };
            h.record_n((lower + upper) / 2, n).ok()?;
        }
    }
    if h.is_empty() {
        return None;
    }
    Some([
        h.value_at_quantile(0.5),
        h.value_at_quantile(0.9),
        h.value_at_quantile(0.99),
        h.value_at_quantile(0.999),
        h.max(),
    ])
}

/// The dashboard's view of the laggs: counters (the page takes rates from consecutive
/// snapshots), state, LACP partner, workers and latency percentiles.
pub fn snapshot(samples: &[LaggSample]) -> serde_json::Value {
    use serde_json::json;
    let laggs: Vec<serde_json::Value> = samples
        .iter()
        .map(|s| {
            let ports: Vec<serde_json::Value> = s
                .ports
                .iter()
                .map(|p| {
                    let mut drops = serde_json::Map::new();
                    for r in DropReason::ALL {
                        drops.insert(r.name().into(), json!(p.totals.drops[r as usize]));
                    }
                    for c in [XdpCounter::NotCollecting, XdpCounter::NoSocket, XdpCounter::Malformed, XdpCounter::Unsolicited, XdpCounter::RateLimited, XdpCounter::LinkLocal] {
                        drops.insert(c.name().into(), json!(p.xdp[c as usize]));
                    }
                    for c in XskCounter::ALL.iter().filter(|c| **c != XskCounter::TxRingEmpty) {
                        drops.insert(c.name().into(), json!(p.totals.xsk[*c as usize]));
                    }
                    let lacp = p.lacp.as_ref().map(|l| {
                        json!({
                            "actor": l.actor.to_string(),
                            "actor_state": crate::runtime::status::flag_names(&l.actor.state.to_string()),
                            "partner": l.partner.to_string(),
                            "partner_state": crate::runtime::status::flag_names(&l.partner.state.to_string()),
                            "selected": l.selected.to_string(),
                            "mux": l.mux.to_string(),
                        })
                    });
                    json!({
                        "name": p.name,
                        "role": p.role,
                        "link": p.link,
                        "collecting": p.collecting,
                        "distributing": p.distributing,
                        "rx_packets": p.totals.rx_packets,
                        "rx_bytes": p.totals.rx_bytes,
                        "tx_packets": p.totals.tx_packets,
                        "tx_bytes": p.totals.tx_bytes,
                        "drops": drops,
                        "lacp": lacp,
                        "tx_share": p.tx_share,
                    })
                })
                .collect();
            let mut buckets = vec![0u64; LATENCY_BUCKETS];
            for w in &s.workers {
                for (b, n) in buckets.iter_mut().zip(&w.latency) {
                    *b += n;
                }
            }
            let histogram: Vec<[u64; 2]> = buckets
                .iter()
                .enumerate()
                .filter(|(_, n)| **n > 0)
                .map(|(i, n)| [latency_bucket_upper(i), *n])
                .collect();
            json!({
                "name": s.name,
                "laggproto": s.proto.to_string(),
                "active_ports": s.active_ports,
                "imbalance": s.imbalance,
                "rebalance_moves": s.rebalance_moves,
                "buckets": s.buckets.as_ref().map(|(member, hits)| json!({"member": member, "hits": hits})),
                "failovers": s.failovers,
                "flaps": s.flaps,
                "ports": ports,
                "workers": s.workers.iter().map(|w| json!({"queue": w.queue, "busy_ns": w.busy_ns})).collect::<Vec<_>>(),
                "latency": {
                    "buckets": histogram,
                    "percentiles_ns": latency_percentiles(&buckets),
                },
            })
        })
        .collect();
    json!({ "time_ms": crate::runtime::lagg::unix_ms(), "laggs": laggs })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::lagg::{PortSample, WorkerSample};
    use xlagg_dataplane::counters::PortTotals;

    fn sample() -> LaggSample {
        let lacp = crate::proto::lacp::LacpPortStatus {
            name: "em0".into(),
            actor: Default::default(),
            partner: Default::default(),
            selected: crate::proto::lacp::Selected::Selected,
            rx: crate::proto::lacp::rx::State::Current,
            mux: crate::proto::lacp::mux::State::Detached,
            counters: Default::default(),
        };
        let port = |name: &str, role: &'static str| PortSample {
            name: name.into(),
            role,
            link: true,
            collecting: true,
            distributing: true,
            totals: PortTotals::default(),
            xdp: [0; XdpCounter::COUNT as usize],
            lacp: (role == "member").then(|| lacp.clone()),
            bfd: (role == "member").then_some((crate::proto::bfd::State::Up, Default::default())),
            probe_ok: (role == "member").then_some(true),
            data_path_leaves: u64::from(role == "member") * 4,
            tx_share: (role == "member").then_some(1.0),
            lacp_alarm: None,
        };
        let mut latency = vec![0; LATENCY_BUCKETS];
        latency[10] = 5;
        LaggSample {
            name: "lagg0".into(),
            proto: crate::config::LaggProto::Lacp,
            ports: vec![port("em0", "member"), port("xlh-lagg0", "upper")],
            workers: vec![WorkerSample {
                queue: 0,
                busy_ns: 1_500_000_000,
                loops: (3, 4),
                latency,
                latency_sum_ns: 2_000,
                frames: Default::default(),
            }],
            failovers: 2,
            flaps: 3,
            active_ports: 1,
            missing_ports: 1,
            imbalance: Some(1.0),
            buckets: None,
            lacp_fallback: Some(false),
            rebalance_moves: Some(3),
        }
    }

    #[test]
    fn every_catalog_metric_is_rendered_with_its_labels() {
        let text = render(
            &[sample()],
            &DaemonFacts {
                stopped: vec!["lagg1".into()],
                failed: vec!["lagg1".into()],
                events: vec![("link", 4)],
            },
        );
        for m in CATALOG {
            let line = text
                .lines()
                .find(|l| {
                    !l.starts_with('#')
                        && (l.starts_with(&format!("{}{{", m.name))
                            || l.starts_with(&format!("{}_bucket{{", m.name)))
                })
                .unwrap_or_else(|| panic!("{} has no sample:\n{text}", m.name));
            for label in m.labels {
                assert!(
                    line.contains(&format!("{label}=\"")),
                    "{} lacks {label}: {line}",
                    m.name
                );
            }
            assert!(text.contains(&format!("# HELP {} ", m.name)));
            assert!(text.contains(&format!("# TYPE {} {}", m.name, m.kind)));
        }
        assert!(text.contains("xlagg_worker_busy_seconds_total{lagg=\"lagg0\",worker=\"0\"} 1.5"));
        assert!(text.contains("xlagg_port_data_path_leaves_total{lagg=\"lagg0\",port=\"em0\"} 4"));
        assert!(
            !text.contains("xlagg_port_data_path_leaves_total{lagg=\"lagg0\",port=\"xlh-lagg0\"")
        );
        assert!(text.contains("xlagg_lagg_up{lagg=\"lagg1\"} 0"));
        assert!(text.contains("xlagg_worker_latency_seconds_count{lagg=\"lagg0\"} 5"));
    }

    #[test]
    fn names_follow_prometheus_conventions() {
        for m in CATALOG {
            assert!(m.name.starts_with("xlagg_"), "{}", m.name);
            assert_eq!(
                m.kind == "counter",
                m.name.ends_with("_total"),
                "{}: counters end in _total",
                m.name
            );
            assert!(!m.help.is_empty());
        }
    }

    #[test]
    fn catalog_matches_the_snapshot() {
        let committed = include_str!("../../../dist/metrics.txt");
        assert!(
            committed == catalog_text(),
            "the metric catalog changed: if on purpose, run `cargo run -p xlagg-control --bin xlaggd -- --metrics-catalog > dist/metrics.txt` and update the Grafana dashboard"
        );
    }

    #[test]
    fn percentiles_come_from_the_buckets() {
        let mut b = vec![0u64; LATENCY_BUCKETS];
        b[xlagg_dataplane::counters::latency_bucket(10_000)] = 99;
        b[xlagg_dataplane::counters::latency_bucket(1_000_000)] = 1;
        let p = latency_percentiles(&b).unwrap();
        assert!((9_000..12_000).contains(&p[0]), "{p:?}");
        assert!(p[4] >= 900_000, "{p:?}");
        assert_eq!(latency_percentiles(&[0; LATENCY_BUCKETS]), None);
    }
}
