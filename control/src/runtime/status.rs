//! The runtime state of a lagg as data (what `xlaggctl -j` and the API return) and its
//! rendering the way FreeBSD's ifconfig prints a lagg.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::{Deserialize, Serialize};

/// lagg(4) port flag bits, as `ifconfig` prints them (`flags=1c<...>`).
pub const PORT_FLAGS: [(u32, &str); 5] = [
    (0x01, "MASTER"),
    (0x02, "STACK"),
    (0x04, "ACTIVE"),
    (0x08, "COLLECTING"),
    (0x10, "DISTRIBUTING"),
];

/// A lagg port's flags as a bit set (lagg(4)'s bits); names only when rendered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PortFlags(pub u32);

impl PortFlags {
    /// The failover master (the first port).
    pub const MASTER: u32 = 0x01;
    /// The port transmits.
    pub const ACTIVE: u32 = 0x04;
    /// Frames received on it reach the lagg.
    pub const COLLECTING: u32 = 0x08;
    /// The distribution sends on it.
    pub const DISTRIBUTING: u32 = 0x10;

    /// Whether `bit` is set.
    pub const fn has(self, bit: u32) -> bool {
        self.0 & bit != 0
    }

    /// With `bit` set when `on`.
    pub const fn with(self, bit: u32, on: bool) -> Self {
        if on {
            Self(self.0 | bit)
        } else {
            self
        }
    }

    /// The names of the set bits, in lagg(4)'s order.
    pub fn names(self) -> Vec<&'static str> {
        PORT_FLAGS
            .iter()
            .filter(|(bit, _)| self.0 & bit != 0)
            .map(|(_, name)| *name)
            .collect()
    }
}

/// One lagg.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct LaggStatus {
    /// `laggN`.
    pub name: String,
    /// Free text.
    pub description: String,
    /// `running`, `down` (administratively), `no laggports`, or `failed` (should run but
    /// could not start, or stopped on a fault; retried).
    pub state: String,
    /// Why a `failed` lagg does not run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Protocol.
    pub laggproto: String,
    /// Hash layers.
    pub lagghash: String,
    /// `afxdp` (workers) or `xdp` (distribution in the XDP program).
    pub engine: String,
    /// `host` or `forward`.
    pub upper: String,
    /// Forward mode: the downstream port.
    pub forward_port: Option<String>,
    /// MTU.
    pub mtu: u32,
    /// Addresses with prefix length (host mode).
    pub addresses: Vec<String>,
    /// Ports that carry traffic now.
    pub active_ports: usize,
    /// The busiest active member's transmit rate over the active members' mean, over the
    /// last second or so (1.0: even); absent while nothing is sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imbalance: Option<f64>,
    /// With `rebalance`: buckets moved since start and buckets waiting for a gap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rebalance: Option<RebalanceStatus>,
    /// Link changes seen on the members since start.
    pub flapping: u64,
    /// Member ports, in order.
    pub ports: Vec<PortStatus>,
    /// LACP, for `laggproto lacp` while running.
    pub lacp: Option<LacpLagg>,
    /// Where each worker's UMEM frames are (they add up to `total` at each copy).
    #[serde(default)]
    pub umem: Vec<UmemStatus>,
    /// The upper port (laggN's kernel-side peer, or the forward port) and its counters, while
    /// running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upper_port: Option<PortStatus>,
    /// DHCP on laggN while running: `bound`, `waiting for a lease` or `no client: ...`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dhcp: Option<String>,
    /// Addresses laggN obtained itself (DHCP, SLAAC), with prefix length.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dynamic_addresses: Vec<String>,
}

/// The rebalancer of a lagg.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct RebalanceStatus {
    /// Buckets moved since the lagg started.
    pub moves: u64,
    /// Buckets planned to move, waiting for a gap in their traffic.
    pub pending: usize,
}

/// One worker's UMEM frames by place (copied by the worker twice a second).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct UmemStatus {
    /// The queue the worker serves.
    pub queue: usize,
    /// Frames in the UMEM.
    pub total: u64,
    /// On the worker's free stack.
    pub free: u64,
    /// On fill rings.
    pub posted: u64,
    /// On tx rings, not completed.
    pub in_flight: u64,
    /// On sockets being closed.
    pub retiring: u64,
    /// Ledger audits that found a frame lost or held twice.
    pub audit_failures: u64,
}

/// One member port.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct PortStatus {
    /// Interface name.
    pub name: String,
    /// lagg(4) flags by name.
    pub flags: Vec<String>,
    /// Kernel link (admin up and carrier), after updelay/downdelay.
    pub link: bool,
    /// Frames received from this port.
    pub rx_packets: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Frames sent on it.
    pub tx_packets: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
    /// Drops by reason (worker and XDP program), only reasons with a count.
    pub drops: BTreeMap<String, u64>,
    /// LACP state of the port.
    pub lacp: Option<LacpPort>,
    /// Micro-BFD session state (`up`, `down`, `init`), when enabled.
    #[serde(default)]
    pub bfd: Option<String>,
    /// Micro-BFD counters (accepted, sent, discarded, downs), when enabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bfd_counters: Option<crate::proto::bfd::Counters>,
    /// ARP/NS probe monitor verdict (`ok`, `failing`), when enabled.
    #[serde(default)]
    pub probe: Option<String>,
    /// Times the data path left this member by itself (a transmit that found its carrier
    /// gone, or its device down) ahead of the control thread's link event.
    #[serde(default)]
    pub data_path_leaves: u64,
    /// A configured member whose device does not exist: the lagg runs on the others and takes
    /// it in when the device appears.
    #[serde(default)]
    pub missing: bool,
    /// Its share of the bytes the members sent over the last second or so, 0 to 1; absent
    /// while nothing is sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tx_share: Option<f64>,
}

impl PortStatus {
    /// A port with no flags, link down and no counts (a lagg that is not running).
    pub fn idle(name: &str) -> Self {
        Self {
            name: name.into(),
            flags: Vec::new(),
            link: false,
            rx_packets: 0,
            rx_bytes: 0,
            tx_packets: 0,
            tx_bytes: 0,
            drops: BTreeMap::new(),
            lacp: None,
            bfd: None,
            bfd_counters: None,
            probe: None,
            data_path_leaves: 0,
            missing: false,
            tx_share: None,
        }
    }
}

/// LACP of a lagg.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct LacpLagg {
    /// Actor and partner of the active aggregation, lagg-style.
    pub lag_id: Option<(String, String)>,
    /// Ports that see a partner other than the active aggregation's.
    pub partner_mismatch: Vec<String>,
    /// What is wrong with each port's aggregation (partner mismatch, a partner that sends
    /// slowly though we asked fast, no LACP on the partner, an individual link).
    #[serde(default)]
    pub alarms: Vec<LacpAlarm>,
    /// With `lacp_fallback`, while no port hears the partner: the port that forwards alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<String>,
}

/// One LACP alarm of a port.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct LacpAlarm {
    /// The member.
    pub port: String,
    /// `partner_mismatch`, `slow_partner`, `defaulted` or `individual`.
    pub kind: String,
    /// What is wrong and what to do.
    pub text: String,
}

/// LACP of one port.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct LacpPort {
    /// `(prio,system,key,port-prio,port)`.
    pub actor: String,
    /// Actor state flags.
    pub actor_state: Vec<String>,
    /// Actor state bits.
    pub actor_state_bits: u8,
    /// The partner as held.
    pub partner: String,
    /// Partner state flags.
    pub partner_state: Vec<String>,
    /// Partner state bits.
    pub partner_state_bits: u8,
    /// Selection.
    pub selected: String,
    /// Mux machine state.
    pub mux: String,
    /// Receive machine state.
    pub rx: String,
    /// Counters by name.
    pub counters: BTreeMap<String, u64>,
}

/// Splits `<A,B,C>` into names.
pub fn flag_names(text: &str) -> Vec<String> {
    text.trim_matches(['<', '>'])
        .split(',')
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

fn flags_value(flags: &[String]) -> u32 {
    PORT_FLAGS
        .iter()
        .filter(|(_, n)| flags.iter().any(|f| f == n))
        .map(|(b, _)| b)
        .sum()
}

/// Renders a running lagg as the per-port counters table `xlaggd` prints every
/// `daemon.status_interval_ms` and at exit: one row per port with its flags, packets, bytes
/// and drops, LACP details under each member, the upper port last.
pub fn table(l: &LaggStatus) -> String {
    let mut out = String::new();
    let upper = match &l.forward_port {
        Some(port) => format!("forward ({port})"),
        None => format!("host ({})", l.name),
    };
    let engine = if l.engine == "xdp" { " engine xdp" } else { "" };
    let _ = writeln!(
        out,
        "{}: laggproto {} lagghash {}{engine} upper {upper}",
        l.name, l.laggproto, l.lagghash
    );
    let _ = writeln!(
        out,
        "  {:<12} {:<42} {:>12} {:>12} {:>12} {:>12}  drops",
        "port", "flags", "rx_packets", "tx_packets", "rx_bytes", "tx_bytes"
    );
    let row = |out: &mut String, p: &PortStatus, flags: &str| {
        let mut drops = String::new();
        for (reason, n) in &p.drops {
            let _ = write!(drops, " {reason}={n}");
        }
        let _ = writeln!(
            out,
            "  {:<12} {:<42} {:>12} {:>12} {:>12} {:>12} {}",
            p.name,
            format!("<{flags}>"),
            p.rx_packets,
            p.tx_packets,
            p.rx_bytes,
            p.tx_bytes,
            if drops.is_empty() { " -" } else { &drops }
        );
    };
    for p in &l.ports {
        row(&mut out, p, &p.flags.join(","));
        if let Some(lacp) = &p.lacp {
            let _ = writeln!(
                out,
                "    lacp actor {} <{}> partner {} <{}> {} mux {} rx {}",
                lacp.actor,
                lacp.actor_state.join(","),
                lacp.partner,
                lacp.partner_state.join(","),
                lacp.selected,
                lacp.mux,
                lacp.rx
            );
            let mut counters = String::new();
            for (name, n) in &lacp.counters {
                let _ = write!(counters, " {name}={n}");
            }
            let _ = writeln!(out, "    lacp{counters}");
        }
    }
    if let Some(p) = &l.upper_port {
        row(&mut out, p, "UPPER");
    }
    for a in l.lacp.iter().flat_map(|x| &x.alarms) {
        let _ = writeln!(out, "  ALARM {} {}: {}", a.port, a.kind, a.text);
    }
    out
}

/// `link up rx N pkts N bytes tx N pkts N bytes reason=N...`, indented under its port.
fn counters_line(o: &mut String, p: &PortStatus) {
    let _ = write!(
        o,
        "\t\tlink {} rx {} pkts {} bytes tx {} pkts {} bytes",
        if p.link { "up" } else { "down" },
        p.rx_packets,
        p.rx_bytes,
        p.tx_packets,
        p.tx_bytes
    );
    for (reason, n) in &p.drops {
        let _ = write!(o, " {reason}={n}");
    }
    o.push('\n');
}

/// One line: `lagg0: running lacp, 3 of 4 ports active (eth0 eth1 eth3), 10.78.0.1/24`, as
/// the appliance prints it on its console.
pub fn brief(l: &LaggStatus) -> String {
    let mut o = format!("{}: {} {}", l.name, l.state, l.laggproto);
    if let Some(e) = &l.error {
        let _ = write!(o, " ({e})");
    }
    let active: Vec<&str> = l
        .ports
        .iter()
        .filter(|p| p.flags.iter().any(|f| f == "ACTIVE"))
        .map(|p| p.name.as_str())
        .collect();
    let _ = write!(o, ", {} of {} ports active", active.len(), l.ports.len());
    if !active.is_empty() {
        let _ = write!(o, " ({})", active.join(" "));
    }
    let addresses: Vec<&str> = l
        .addresses
        .iter()
        .chain(&l.dynamic_addresses)
        .map(String::as_str)
        .collect();
    if !addresses.is_empty() {
        let _ = write!(o, ", {}", addresses.join(" "));
    }
    if let Some(p) = &l.forward_port {
        let _ = write!(o, ", forwarding to {p}");
    }
    if let Some(d) = l.dhcp.as_ref().filter(|d| *d != "bound") {
        let _ = write!(o, ", dhcp {d}");
    }
    o
}

/// Renders a lagg the way FreeBSD's `ifconfig lagg0` does (`verbose`: `ifconfig -v`, with
/// LACP details and counters).
pub fn render(l: &LaggStatus, verbose: bool) -> String {
    let mut o = String::new();
    let up = l.state == "running";
    let _ = writeln!(
        o,
        "{}: flags=<{}> mtu {}",
        l.name,
        if up {
            "UP,BROADCAST,RUNNING,MULTICAST"
        } else {
            "BROADCAST,MULTICAST"
        },
        l.mtu
    );
    if !l.description.is_empty() {
        let _ = writeln!(o, "\tdescription: {}", l.description);
    }
    if let Some(e) = &l.error {
        let _ = writeln!(o, "\tstatus: failed ({e}); retried until it starts");
    }
    render_addresses(&mut o, l);
    let engine = if l.engine == "xdp" { " engine xdp" } else { "" };
    let _ = writeln!(
        o,
        "\tlaggproto {} lagghash {}{engine}",
        l.laggproto, l.lagghash
    );
    if let Some(p) = &l.forward_port {
        let _ = writeln!(o, "\tupper forward {p}");
    }
    if verbose {
        render_statistics(&mut o, l);
    }
    for p in &l.ports {
        render_port(&mut o, p, verbose);
    }
    if let Some(p) = l.upper_port.as_ref().filter(|_| verbose) {
        let _ = writeln!(o, "\tupper port: {}", p.name);
        counters_line(&mut o, p);
    }
    for a in l.lacp.iter().flat_map(|x| &x.alarms) {
        let _ = writeln!(o, "\tALARM {} {}: {}", a.port, a.kind, a.text);
    }
    if let Some(f) = l.lacp.as_ref().and_then(|x| x.fallback.as_ref()) {
        let _ = writeln!(
            o,
            "\tlacp fallback: {f} forwards alone until the partner speaks LACP"
        );
    }
    let _ = writeln!(
        o,
        "\tstatus: {}",
        match l.state.as_str() {
            "running" if l.active_ports > 0 => "active",
            "running" => "no carrier",
            other => other,
        }
    );
    o
}

/// The `inet`/`inet6` lines: configured addresses, then those DHCP or SLAAC gave, and the
/// DHCP client's state.
fn render_addresses(o: &mut String, l: &LaggStatus) {
    let dynamic = l.dynamic_addresses.iter().map(|a| (a, true));
    for (a, obtained) in l.addresses.iter().map(|a| (a, false)).chain(dynamic) {
        let (addr, len) = a.split_once('/').unwrap_or((a, ""));
        let _ = if addr.contains(':') {
            write!(o, "\tinet6 {addr} prefixlen {len}")
        } else {
            let bits: u32 = len.parse().unwrap_or(32);
            let mask = u32::MAX.checked_shl(32 - bits.min(32)).unwrap_or(0);
            write!(o, "\tinet {addr} netmask 0x{mask:08x}")
        };
        o.push_str(match (obtained, addr.contains(':')) {
            (false, _) => "\n",
            (true, false) => " (dhcp)\n",
            (true, true) => " autoconf\n",
        });
    }
    if let Some(d) = &l.dhcp {
        let _ = writeln!(o, "\tdhcp: {d}");
    }
}

/// `ifconfig -v`'s `lagg statistics` block and the LAG id.
fn render_statistics(o: &mut String, l: &LaggStatus) {
    let _ = writeln!(o, "\tlagg statistics:");
    let _ = writeln!(o, "\t\tactive ports: {}", l.active_ports);
    if let Some(i) = l.imbalance {
        let _ = writeln!(
            o,
            "\t\timbalance: {i:.2} (busiest active port over the mean)"
        );
    }
    if let Some(r) = l.rebalance {
        let _ = writeln!(
            o,
            "\t\trebalance: {} buckets moved, {} waiting for a gap",
            r.moves, r.pending
        );
    }
    let _ = writeln!(o, "\t\tflapping: {}", l.flapping);
    if let Some((actor, partner)) = l.lacp.as_ref().and_then(|x| x.lag_id.as_ref()) {
        let _ = writeln!(o, "\tlag id: [{actor},\n\t\t{partner}]");
    }
}

/// One `laggport:` line, and with `verbose` its LACP, monitor and counter lines.
fn render_port(o: &mut String, p: &PortStatus, verbose: bool) {
    let _ = write!(
        o,
        "\tlaggport: {} flags={:x}<{}>",
        p.name,
        flags_value(&p.flags),
        p.flags.join(",")
    );
    if p.missing {
        o.push_str(" (missing: no such device)");
    }
    if let Some(share) = p.tx_share.filter(|_| verbose) {
        let _ = write!(o, " share={:.0}%", share * 100.0);
    }
    if let Some(lacp) = p.lacp.as_ref().filter(|_| verbose) {
        let _ = write!(
            o,
            " state={:x}<{}>",
            lacp.actor_state_bits,
            lacp.actor_state.join(",")
        );
    }
    o.push('\n');
    if !verbose {
        return;
    }
    if let Some(lacp) = &p.lacp {
        let _ = writeln!(o, "\t\t[{},\n\t\t {}]", lacp.actor, lacp.partner);
        let _ = writeln!(
            o,
            "\t\tpartner state={:x}<{}> {} mux {} rx {}",
            lacp.partner_state_bits,
            lacp.partner_state.join(","),
            lacp.selected,
            lacp.mux,
            lacp.rx
        );
    }
    if let Some(b) = &p.bfd {
        let _ = writeln!(o, "\t\tmicro-BFD {b}");
    }
    if let Some(b) = &p.probe {
        let _ = writeln!(o, "\t\tprobe monitor {b}");
    }
    if let Some(lacp) = &p.lacp {
        let _ = write!(o, "\t\tlacp");
        for (name, n) in &lacp.counters {
            let _ = write!(o, " {name}={n}");
        }
        o.push('\n');
    }
    counters_line(o, p);
}

/// Where the HTTP listener stands, for the status and the dump (the listener reports it).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum HttpState {
    /// None asked for.
    Off,
    /// Serving on this address.
    Listening {
        /// The address.
        addr: String,
    },
    /// Not serving; tried again at the next attempt.
    Retrying {
        /// The address asked for.
        addr: String,
        /// Why the last try failed.
        error: String,
        /// Tries so far.
        attempts: u32,
        /// Seconds until the next.
        next_in_s: u64,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> LaggStatus {
        LaggStatus {
            name: "lagg0".into(),
            description: "uplink".into(),
            state: "running".into(),
            error: None,
            laggproto: "failover".into(),
            lagghash: "l2,l3,l4".into(),
            engine: "afxdp".into(),
            upper: "host".into(),
            forward_port: None,
            mtu: 1500,
            addresses: vec!["192.168.1.10/24".into(), "2001:db8::1/64".into()],
            active_ports: 1,
            imbalance: None,
            rebalance: None,
            flapping: 0,
            umem: Vec::new(),
            upper_port: None,
            dhcp: None,
            dynamic_addresses: Vec::new(),
            ports: vec![
                PortStatus {
                    flags: flag_names("<MASTER,ACTIVE,COLLECTING,DISTRIBUTING>"),
                    link: true,
                    ..PortStatus::idle("em0")
                },
                PortStatus {
                    link: true,
                    ..PortStatus::idle("em1")
                },
            ],
            lacp: None,
        }
    }

    #[test]
    fn the_stats_table_shows_members_then_the_upper_port_from_the_same_status() {
        let mut l = sample();
        l.ports[0].tx_packets = 7;
        l.ports[0].drops.insert("no_member".into(), 3);
        l.upper_port = Some(PortStatus {
            rx_packets: 9,
            ..PortStatus::idle("xlh-lagg0")
        });
        let text = table(&l);
        let rows: Vec<Vec<&str>> = text
            .lines()
            .skip(2)
            .map(|line| line.split_whitespace().collect())
            .collect();
        assert_eq!(
            text.lines().next(),
            Some("lagg0: laggproto failover lagghash l2,l3,l4 upper host (lagg0)")
        );
        assert_eq!(
            rows[0],
            [
                "em0",
                "<MASTER,ACTIVE,COLLECTING,DISTRIBUTING>",
                "0",
                "7",
                "0",
                "0",
                "no_member=3"
            ]
        );
        assert_eq!(rows[1], ["em1", "<>", "0", "0", "0", "0", "-"]);
        assert_eq!(rows[2], ["xlh-lagg0", "<UPPER>", "9", "0", "0", "0", "-"]);
        assert_eq!(rows.len(), 3);
    }

    #[test]
    fn brief_is_one_line_with_what_a_console_needs() {
        let l = sample();
        assert_eq!(
            brief(&l),
            "lagg0: running failover, 1 of 2 ports active (em0), 192.168.1.10/24 2001:db8::1/64"
        );
    }

    #[test]
    fn obtained_addresses_and_dhcp_show_after_the_configured_ones() {
        let mut l = sample();
        l.dynamic_addresses = vec![
            "10.99.0.59/24".into(),
            "fd00:99::4449:2bff:fe08:424f/64".into(),
        ];
        l.dhcp = Some("bound".into());
        let text = render(&l, false);
        assert!(
            text.contains(
                "\tinet6 2001:db8::1 prefixlen 64\n\
                 \tinet 10.99.0.59 netmask 0xffffff00 (dhcp)\n\
                 \tinet6 fd00:99::4449:2bff:fe08:424f prefixlen 64 autoconf\n\
                 \tdhcp: bound\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn renders_like_freebsd_ifconfig() {
        let l = sample();
        assert_eq!(
            render(&l, false),
            "lagg0: flags=<UP,BROADCAST,RUNNING,MULTICAST> mtu 1500\n\
             \tdescription: uplink\n\
             \tinet 192.168.1.10 netmask 0xffffff00\n\
             \tinet6 2001:db8::1 prefixlen 64\n\
             \tlaggproto failover lagghash l2,l3,l4\n\
             \tlaggport: em0 flags=1d<MASTER,ACTIVE,COLLECTING,DISTRIBUTING>\n\
             \tlaggport: em1 flags=0<>\n\
             \tstatus: active\n"
        );
    }
}
