//! The one validator: a [`ConfigDoc`] as written becomes a [`Config`] or a list of every
//! problem, each naming its field (`lagg0.laggports: ...`) and what to write instead. Nothing
//! is half-accepted: a document with one problem is refused whole.
//!
//! One function per concern, each reading the fields it owns and reporting through a
//! [`Fields`] that knows which lagg it is in.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr};

use xlagg_dataplane::distribution::MAX_MEMBERS;
use xlagg_dataplane::flow::HashLayers;
use xlagg_dataplane::worker::ZeroCopy;

use super::{
    is_ifname, is_lagg_name, parse_address, parse_mac, ArpOptions, BfdOptions, Config, ConfigDoc,
    ConfigError, DaemonConfig, DaemonSpec, DhcpOptions, Engine, LacpOptions, LaggConfig, LaggProto,
    LaggSpec, Upper, DEFAULT_HTTP, DEFAULT_SOCKET, DEFAULT_TOKEN_FILE, MAX_ADDRESSES, MAX_MTU,
};
use crate::proto::lacp::{MuxMode, SelectionPolicy};

/// Where problems of one lagg go, prefixed with its name (or `lagg[i]` when the name itself
/// is wrong).
struct Fields<'a> {
    at: String,
    problems: &'a mut Vec<String>,
}

impl Fields<'_> {
    fn bad(&mut self, field: &str, msg: impl Into<String>) {
        self.problems
            .push(format!("{}.{field}: {}", self.at, msg.into()));
    }

    /// `v` as a 16-bit LACP priority (lower is preferred).
    fn priority(&mut self, field: &str, v: u32) -> u16 {
        if v > 0xffff {
            self.bad(
                field,
                format!("{v} is out of range: use 0 to 65535 (lower is preferred)"),
            );
        }
        v.min(0xffff) as u16
    }

    /// Reports `value` outside `range` as `{value}{unit} is out of range: use A to B{unit}`.
    fn range(&mut self, field: &str, value: u64, range: std::ops::RangeInclusive<u64>, unit: &str) {
        if !range.contains(&value) {
            let (lo, hi) = (range.start(), range.end());
            self.bad(
                field,
                format!(
                    "{value}{unit} is out of range: use {lo} to {hi}{}",
                    unit.replace(" ms", " milliseconds")
                ),
            );
        }
    }
}

/// Members already taken, with the lagg that has them.
type Taken = Vec<(String, String)>;

impl ConfigDoc {
    /// Validates the document into a [`Config`].
    ///
    /// # Errors
    /// Every problem found, each naming its field.
    pub fn validate(&self) -> Result<Config, ConfigError> {
        let mut problems = Vec::new();
        let daemon = daemon(&self.daemon, &mut problems);
        let budget = self.daemon.memory_budget_mb.saturating_mul(1 << 20);
        let mut names = HashSet::new();
        let mut taken = Taken::new();
        let mut laggs = Vec::new();
        for (i, r) in self.laggs.iter().enumerate() {
            let mut f = Fields {
                at: if is_lagg_name(&r.name) {
                    r.name.clone()
                } else {
                    format!("lagg[{i}]")
                },
                problems: &mut problems,
            };
            laggs.extend(lagg(
                r,
                &mut f,
                &mut names,
                &taken,
                budget,
                self.daemon.memory_budget_mb,
            ));
            for port in &r.laggports {
                taken.push((port.clone(), r.name.clone()));
            }
        }
        forward_ports(&laggs, &taken, &mut problems);
        if problems.is_empty() {
            Ok(Config { daemon, laggs })
        } else {
            problems.dedup();
            Err(ConfigError { problems })
        }
    }
}

/// `[daemon]`: the management socket, HTTP listener, TLS, token and link polling.
fn daemon(raw: &DaemonSpec, problems: &mut Vec<String>) -> DaemonConfig {
    let mut daemon = DaemonConfig {
        log_level: raw.log_level.clone(),
        status_interval_ms: raw.status_interval_ms,
        link_poll_ms: raw.link_poll_ms,
        socket: raw.socket.clone(),
        http: None,
        token_file: raw.token_file.clone(),
        http_hosts: Vec::new(),
        tls: None,
    };
    for host in &raw.http_hosts {
        let valid = !host.is_empty()
            && host.len() <= 253
            && host.split('.').all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            });
        if valid {
            daemon.http_hosts.push(host.to_ascii_lowercase());
        } else {
            problems.push(format!(
                "daemon.http_hosts: '{host}' is not a host name such as xlagg.example.net"
            ));
        }
    }
    match (raw.tls_cert.as_str(), raw.tls_key.as_str()) {
        ("", "") => {}
        (c, k) if c.starts_with('/') && k.starts_with('/') => {
            daemon.tls = Some((c.to_string(), k.to_string()));
        }
        ("", _) | (_, "") => problems.push(
            "daemon.tls_cert, daemon.tls_key: give both (PEM files) for HTTPS, or neither".into(),
        ),
        _ => problems.push(
            "daemon.tls_cert, daemon.tls_key: must be absolute paths, e.g. /etc/xlagg/tls/cert.pem"
                .into(),
        ),
    }
    if !raw.http.is_empty() {
        match raw.http.parse::<std::net::SocketAddr>() {
            Ok(a) => daemon.http = Some(a),
            Err(_) => problems.push(format!(
                "daemon.http: '{}' is not an address and port such as {DEFAULT_HTTP} (\"\" turns HTTP off)",
                raw.http
            )),
        }
    }
    if !daemon.token_file.starts_with('/') {
        problems.push(format!(
            "daemon.token_file: '{}' must be an absolute path, e.g. {DEFAULT_TOKEN_FILE}",
            daemon.token_file
        ));
    }
    if !daemon.socket.starts_with('/') {
        problems.push(format!(
            "daemon.socket: '{}' must be an absolute path, e.g. {DEFAULT_SOCKET}",
            daemon.socket
        ));
    }
    if daemon.link_poll_ms == 0 || daemon.link_poll_ms > 10_000 {
        problems.push(format!(
            "daemon.link_poll_ms: {} is out of range: use 1 to 10000 milliseconds",
            daemon.link_poll_ms
        ));
    }
    daemon
}

/// One `[[lagg]]`: `None` when a field it cannot run without is wrong (every problem is
/// reported either way).
fn lagg(
    r: &LaggSpec,
    f: &mut Fields<'_>,
    names: &mut HashSet<String>,
    taken: &Taken,
    budget: u64,
    budget_mb: u64,
) -> Option<LaggConfig> {
    name(r, f, names);
    let proto = LaggProto::parse(&r.laggproto)
        .map_err(|e| f.bad("laggproto", e))
        .ok();
    members(r, f, taken);
    let hash = HashLayers::parse(&r.lagghash)
        .map_err(|e| f.bad("lagghash", e))
        .ok();
    let zero_copy = sizing(r, f, budget, budget_mb);
    let upper = upper(r, f);
    let dhcp = autoconf(r, f);
    let lacp = lacp(r, f);
    timers(r, f);
    let bfd = bfd(r, f);
    let arp = probes(r, f);
    let engine = engine(r, f, proto);
    let rebalance = rebalance(r, f, proto);
    let (proto, hash, upper, zero_copy, engine) = (proto?, hash?, upper?, zero_copy?, engine?);
    if r.description.len() > 255 || r.description.contains(['\n', '\0']) {
        f.problems.push(format!(
            "{}.description: at most 255 characters on one line",
            r.name
        ));
    }
    Some(LaggConfig {
        name: r.name.clone(),
        description: r.description.clone(),
        up: r.up,
        hw_offload: r.hw_offload,
        proto,
        ports: r.laggports.clone(),
        hash,
        rr_limit: r.rr_limit,
        hash_seed: r.hash_seed,
        rebalance,
        rx_all: r.rx_all,
        busy_poll: r.busy_poll,
        engine,
        forward_link_local: r.forward_link_local,
        upper,
        dhcp,
        ipv6_auto: r.ipv6_auto && r.upper == "host",
        mtu: r.mtu,
        cores: r.cores.clone(),
        zero_copy,
        ring_size: r.ring_size,
        lacp,
        updelay_ms: r.updelay,
        downdelay_ms: r.downdelay,
        notify_count: r.notify_count,
        notify_interval_ms: r.notify_interval,
        bfd,
        arp,
    })
}

/// `name`: present, `lagg` and a number, not used twice.
fn name(r: &LaggSpec, f: &mut Fields<'_>, names: &mut HashSet<String>) {
    if r.name.is_empty() {
        f.bad(
            "name",
            "missing: every [[lagg]] needs a name such as name = \"lagg0\"",
        );
    } else if !is_lagg_name(&r.name) {
        f.bad(
            "name",
            format!(
                "'{}' is not a lagg name: use lagg followed by a number, e.g. lagg0",
                r.name
            ),
        );
    } else if !names.insert(r.name.clone()) {
        f.bad("name", format!("{} is defined twice", r.name));
    }
}

/// `laggports`: at most [`MAX_MEMBERS`] valid names, each once, none another lagg's.
fn members(r: &LaggSpec, f: &mut Fields<'_>, taken: &Taken) {
    if r.laggports.len() > MAX_MEMBERS {
        f.bad(
            "laggports",
            format!(
                "{} ports; at most {MAX_MEMBERS} are allowed",
                r.laggports.len()
            ),
        );
    }
    let mut seen = HashSet::new();
    for port in &r.laggports {
        if !is_ifname(port) {
            f.bad(
                "laggports",
                format!(
                    "'{port}' is not a valid interface name (1 to 15 characters, no '/' or spaces)"
                ),
            );
        } else if !seen.insert(port.as_str()) {
            f.bad("laggports", format!("{port} is listed twice"));
        } else if let Some((_, owner)) = taken.iter().find(|(p, _)| p == port) {
            f.bad(
                "laggports",
                format!("{port} is already a member of {owner}"),
            );
        }
    }
}

/// What the dataplane is sized by: `rr_limit`, `mtu`, `ring_size` (within the daemon's memory
/// budget), `zero_copy`, `cores`.
fn sizing(r: &LaggSpec, f: &mut Fields<'_>, budget: u64, budget_mb: u64) -> Option<ZeroCopy> {
    if r.rr_limit == 0 {
        f.bad(
            "rr_limit",
            "must be at least 1 (frames per port before moving to the next)",
        );
    }
    if !(68..=MAX_MTU).contains(&r.mtu) {
        f.bad(
            "mtu",
            format!(
                "{} is out of range: use 68 to {MAX_MTU} (9000 for jumbo frames)",
                r.mtu
            ),
        );
    }
    if !r.ring_size.is_power_of_two() || !(64..=32768).contains(&r.ring_size) {
        f.bad(
            "ring_size",
            format!("{} must be a power of two from 64 to 32768", r.ring_size),
        );
    }
    let memory = xlagg_dataplane::worker::lagg_memory(
        r.laggports.len(),
        r.ring_size.clamp(64, 32768).next_power_of_two(),
        r.cores.len(),
    );
    if memory > budget {
        f.bad(
            "ring_size",
            format!(
                "its workers would map {} MiB of frames and rings ({} worker(s), {} members, rings of {}), \
                 above daemon.memory_budget_mb = {budget_mb}: use smaller rings or fewer cores, or raise the budget",
                memory >> 20,
                r.cores.len().max(1),
                r.laggports.len(),
                r.ring_size,
            ),
        );
    }
    let zero_copy = match r.zero_copy.as_str() {
        "auto" => Some(ZeroCopy::Auto),
        "off" => Some(ZeroCopy::Off),
        "required" => Some(ZeroCopy::Required),
        other => {
            f.bad(
                "zero_copy",
                format!("'{other}' is not one of auto, off, required"),
            );
            None
        }
    };
    let mut cores_seen = HashSet::new();
    for core in &r.cores {
        if !cores_seen.insert(core) {
            f.bad(
                "cores",
                format!("core {core} is listed twice: one worker per core"),
            );
        }
    }
    zero_copy
}

/// `engine` (`auto` resolved), and the settings that apply to one engine only.
fn engine(r: &LaggSpec, f: &mut Fields<'_>, proto: Option<LaggProto>) -> Option<Engine> {
    let forward = r.upper == "forward";
    let engine = if r.engine == "auto" {
        let wants_workers = !r.cores.is_empty() || r.busy_poll || r.zero_copy == "required";
        match Engine::auto(forward, wants_workers) {
            // Before Linux 6.6 (no tcx links) host mode keeps the workers.
            Engine::Tc if !xlagg_sys::kernel::has_tcx() => Engine::AfXdp,
            e => e,
        }
    } else {
        Engine::parse(&r.engine)
            .map_err(|e| f.bad("engine", e))
            .ok()?
    };
    if !engine.in_kernel() {
        return Some(engine);
    }
    let name = engine.to_string();
    if r.busy_poll {
        f.bad(
            "busy_poll",
            format!("applies to the afxdp engine's sockets; the {name} engine has none (remove busy_poll or use engine = \"afxdp\")"),
        );
    }
    if r.zero_copy == "required" {
        f.bad(
            "zero_copy",
            format!("applies to the afxdp engine; the {name} engine never copies to userspace (use zero_copy = \"auto\" or engine = \"afxdp\")"),
        );
    }
    if !r.cores.is_empty() {
        f.bad(
            "cores",
            format!("the {name} engine has no workers: it runs on the CPUs that receive (steer them with the NICs' IRQ affinity); remove cores or use engine = \"afxdp\""),
        );
    }
    if engine == Engine::Tc && forward {
        f.bad(
            "engine",
            "tc is the host path (upper = \"host\"); forward mode runs afxdp or xdp",
        );
    }
    if engine == Engine::Xdp && proto == Some(LaggProto::Broadcast) && r.mtu > XDP_BROADCAST_MAX_MTU
    {
        f.bad(
            "mtu",
            format!(
                "{} is above {XDP_BROADCAST_MAX_MTU}, the largest broadcast frame of the xdp engine (the kernel cannot \
                 copy a multi-buffer frame to several ports): lower the mtu or use engine = \"afxdp\" or \"tc\"",
                r.mtu
            ),
        );
    }
    Some(engine)
}

/// The largest MTU a broadcast lagg of the XDP engine takes: its frames must fit one buffer
/// (a page less headroom and the shared info on every driver), since the kernel's devmap
/// broadcast does not clone multi-buffer frames.
pub(crate) const XDP_BROADCAST_MAX_MTU: u32 = 3000;

/// `upper` with `addresses` (host) or `forward_port` (forward).
fn upper(r: &LaggSpec, f: &mut Fields<'_>) -> Option<Upper> {
    match r.upper.as_str() {
        "host" => {
            if r.forward_port.is_some() {
                f.bad("forward_port", "only meaningful with upper = \"forward\"");
            }
            if r.addresses.len() > MAX_ADDRESSES {
                f.bad(
                    "addresses",
                    format!(
                        "{} addresses; at most {MAX_ADDRESSES} on one lagg",
                        r.addresses.len()
                    ),
                );
            }
            let mut addresses = Vec::new();
            for a in r.addresses.iter().take(MAX_ADDRESSES) {
                match parse_address(a) {
                    Ok(v) => addresses.push(v),
                    Err(e) => f.bad("addresses", e),
                }
            }
            Some(Upper::Host { addresses })
        }
        "forward" => {
            if !r.addresses.is_empty() {
                f.bad(
                    "addresses",
                    "addresses need upper = \"host\"; a forward-mode lagg is a layer-2 bump",
                );
            }
            match &r.forward_port {
                None => {
                    f.bad(
                        "forward_port",
                        "upper = \"forward\" needs forward_port, the downstream interface",
                    );
                    None
                }
                Some(p) if r.laggports.contains(p) => {
                    f.bad("forward_port", format!("{p} is also a member port"));
                    None
                }
                Some(p) if !is_ifname(p) => {
                    f.bad(
                        "forward_port",
                        format!("'{p}' is not a valid interface name"),
                    );
                    None
                }
                Some(p) => Some(Upper::Forward { port: p.clone() }),
            }
        }
        other => {
            f.bad("upper", format!("'{other}' is not one of host, forward"));
            None
        }
    }
}

/// `dhcp`, `dhcp_sync`, `dhcp_timeout` and `ipv6_auto`: addresses laggN obtains itself, so
/// host mode only.
fn autoconf(r: &LaggSpec, f: &mut Fields<'_>) -> Option<DhcpOptions> {
    let host = r.upper == "host";
    if !host && r.dhcp {
        f.bad(
            "dhcp",
            "DHCP needs upper = \"host\": a forward-mode lagg has no address of its own (the downstream hosts run their own clients)",
        );
    }
    if !host && r.ipv6_auto {
        f.bad(
            "ipv6_auto",
            "IPv6 autoconfiguration needs upper = \"host\": a forward-mode lagg has no address of its own",
        );
    }
    if r.dhcp_sync && !r.dhcp {
        f.bad(
            "dhcp_sync",
            "waiting for a DHCP lease needs dhcp = true (the SYNCDHCP word sets both)",
        );
    }
    f.range("dhcp_timeout", r.dhcp_timeout, 1..=600, " s");
    (host && r.dhcp).then_some(DhcpOptions {
        sync: r.dhcp_sync,
        timeout_s: r.dhcp_timeout,
    })
}

/// `rebalance` and its settings (a hash policy only).
fn rebalance(
    r: &LaggSpec,
    f: &mut Fields<'_>,
    proto: Option<LaggProto>,
) -> Option<crate::runtime::rebalance::RebalanceConfig> {
    f.range("rebalance_threshold", r.rebalance_threshold, 5..=1000, " %");
    f.range(
        "rebalance_hold_ms",
        r.rebalance_hold_ms,
        100..=3_600_000,
        " ms",
    );
    f.range("rebalance_idle_ms", r.rebalance_idle_ms, 5..=10_000, " ms");
    if !r.rebalance {
        return None;
    }
    if let Some(p) = proto.filter(|p| !matches!(p, LaggProto::LoadBalance | LaggProto::Lacp)) {
        f.bad(
            "rebalance",
            format!(
                "laggproto {p} has no buckets to move: rebalance works with loadbalance and lacp"
            ),
        );
    }
    Some(crate::runtime::rebalance::RebalanceConfig {
        threshold_pct: r.rebalance_threshold.min(1000) as u32,
        hold: std::time::Duration::from_millis(r.rebalance_hold_ms),
        idle: std::time::Duration::from_millis(r.rebalance_idle_ms),
        window: std::time::Duration::from_secs(1),
    })
}

/// The `lacp_*` fields and `min_links`.
fn lacp(r: &LaggSpec, f: &mut Fields<'_>) -> LacpOptions {
    let mut lacp = LacpOptions {
        active: r.lacp_active,
        fast_timeout: r.lacp_fast_timeout,
        strict: r.lacp_strict,
        fallback: r.lacp_fallback,
        min_links: r.min_links,
        mux: MuxMode::Coupled,
        selection: SelectionPolicy::Speed,
        ..LacpOptions::default()
    };
    lacp.system_priority = f.priority("lacp_system_priority", r.lacp_system_priority);
    lacp.port_priority = f.priority("lacp_port_priority", r.lacp_port_priority);
    for (port, v) in &r.lacp_port_priorities {
        let priority = f.priority("lacp_port_priorities", *v);
        lacp.port_priorities.push((port.clone(), priority));
    }
    for port in r.lacp_port_priorities.keys() {
        if !r.laggports.contains(port) {
            f.bad(
                "lacp_port_priorities",
                format!("{port} is not one of this lagg's laggports"),
            );
        }
    }
    match r.lacp_key {
        Some(0) => f.bad("lacp_key", "0 is reserved: use 1 to 65535"),
        Some(k) if k > 0xffff => f.bad("lacp_key", format!("{k} is out of range: use 1 to 65535")),
        Some(k) => lacp.key = Some(k as u16),
        None => {}
    }
    if let Some(m) = &r.lacp_system_mac {
        match parse_mac(m) {
            Ok(mac) if mac == [0; 6] || mac[0] & 1 == 1 => f.bad(
                "lacp_system_mac",
                format!("{m} must be a unicast, non-zero address"),
            ),
            Ok(mac) => lacp.system_mac = Some(mac),
            Err(e) => f.bad("lacp_system_mac", e),
        }
    }
    f.range("min_links", r.min_links as u64, 1..=MAX_MEMBERS as u64, "");
    match r.lacp_mux.as_str() {
        "coupled" => lacp.mux = MuxMode::Coupled,
        "independent" => lacp.mux = MuxMode::Independent,
        other => f.bad(
            "lacp_mux",
            format!("'{other}' is not one of coupled, independent"),
        ),
    }
    match r.lacp_select.as_str() {
        "speed" => lacp.selection = SelectionPolicy::Speed,
        "count" => lacp.selection = SelectionPolicy::Count,
        "stable" => lacp.selection = SelectionPolicy::Stable,
        other => f.bad(
            "lacp_select",
            format!("'{other}' is not one of speed, count, stable"),
        ),
    }
    lacp
}

/// `updelay`, `downdelay` and the peer notifications' `notify_count` and `notify_interval`.
fn timers(r: &LaggSpec, f: &mut Fields<'_>) {
    f.range("updelay", r.updelay, 0..=600_000, " ms");
    f.range("downdelay", r.downdelay, 0..=600_000, " ms");
    f.range("notify_count", u64::from(r.notify_count), 0..=100, "");
    f.range("notify_interval", r.notify_interval, 1..=60_000, " ms");
}

/// Micro-BFD: `bfd`, `bfd_interval`, `bfd_multiplier`, `bfd_peer`.
fn bfd(r: &LaggSpec, f: &mut Fields<'_>) -> Option<BfdOptions> {
    f.range("bfd_interval", r.bfd_interval, 10..=10_000, " ms");
    f.range("bfd_multiplier", u64::from(r.bfd_multiplier), 1..=255, "");
    let peer = match &r.bfd_peer {
        None => Some(Ipv4Addr::BROADCAST),
        Some(a) => match a.parse::<Ipv4Addr>() {
            Ok(a) => Some(a),
            Err(_) => {
                f.bad("bfd_peer", format!("'{a}' is not an IPv4 address"));
                None
            }
        },
    };
    match peer {
        Some(peer) if r.bfd => Some(BfdOptions {
            interval_ms: r.bfd_interval,
            multiplier: r.bfd_multiplier.min(255) as u8,
            peer,
        }),
        _ => None,
    }
}

/// The ARP/NS probe monitor: `arp_targets`, `arp_interval`, `arp_missed_max`.
fn probes(r: &LaggSpec, f: &mut Fields<'_>) -> Option<ArpOptions> {
    let mut targets = Vec::new();
    for t in &r.arp_targets {
        match t.parse::<IpAddr>() {
            Ok(a) if a.is_unspecified() || a.is_multicast() => f.bad(
                "arp_targets",
                format!("{t} cannot answer a probe: give a unicast address"),
            ),
            Ok(a) => targets.push(a),
            Err(_) => f.bad(
                "arp_targets",
                format!("'{t}' is not an IPv4 or IPv6 address"),
            ),
        }
    }
    if r.arp_targets.len() > 16 {
        f.bad(
            "arp_targets",
            format!("{} targets; at most 16", r.arp_targets.len()),
        );
    }
    f.range("arp_interval", r.arp_interval, 10..=60_000, " ms");
    f.range("arp_missed_max", u64::from(r.arp_missed_max), 1..=255, "");
    if targets.is_empty() {
        return None;
    }
    Some(ArpOptions {
        targets,
        interval_ms: r.arp_interval,
        missed_max: r.arp_missed_max,
    })
}

/// Forward ports must not be members or forward ports of another lagg either.
fn forward_ports(laggs: &[LaggConfig], taken: &Taken, problems: &mut Vec<String>) {
    let forwards: Vec<(&str, &str)> = laggs
        .iter()
        .filter_map(|l| match &l.upper {
            Upper::Forward { port } => Some((port.as_str(), l.name.as_str())),
            Upper::Host { .. } => None,
        })
        .collect();
    for (port, lagg) in &forwards {
        if let Some((_, owner)) = taken.iter().find(|(p, _)| p == port) {
            problems.push(format!(
                "{lagg}.forward_port: {port} is already a member of {owner}"
            ));
        }
        if forwards.iter().filter(|(p, _)| p == port).count() > 1 {
            problems.push(format!(
                "{lagg}.forward_port: {port} is the forward port of more than one lagg"
            ));
        }
    }
}
