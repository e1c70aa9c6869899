//! The configuration model: parsed from TOML, validated once, into typed values.
//!
//! Every message names the field (`lagg[0].laggproto`, or `lagg0.laggports` once the name is
//! known), says what was wrong and what is allowed. Validation is all-or-nothing: a config with
//! any error is refused whole, and nothing is attached or created for it.
//!
//! Names follow FreeBSD lagg (`laggproto`, `laggport`, `lagghash`, `rr_limit`); Linux bonding
//! mode names are accepted as aliases of the protocols.

pub mod ifconfig;
pub mod rcconf;
pub mod store;
mod validate;

use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use xlagg_dataplane::flow::HashLayers;
use xlagg_dataplane::worker::ZeroCopy;

/// Where a lagg's frames are distributed (`engine`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Engine {
    /// Pinned workers over AF_XDP sockets (forward mode's default; the one with zero-copy).
    #[default]
    AfXdp,
    /// Inside the XDP program itself: devmap redirects, no socket, no worker; for devices
    /// where AF_XDP copies every frame (veth, virtio, most cloud NICs).
    Xdp,
    /// The host path (host mode's default): tc programs place the host's own skbs on the
    /// members and hand the members' skbs to laggN, with segmentation and checksum offloads
    /// kept end to end.
    Tc,
}

impl Engine {
    /// Parses `afxdp`, `xdp` or `tc` (`auto` is resolved by [`Engine::auto`]).
    ///
    /// # Errors
    /// Names what was given and the choices.
    pub fn parse(text: &str) -> Result<Engine, String> {
        match text {
            "afxdp" => Ok(Engine::AfXdp),
            "xdp" => Ok(Engine::Xdp),
            "tc" => Ok(Engine::Tc),
            other => Err(format!(
                "'{other}' is not an engine: use auto, afxdp (workers over AF_XDP sockets), xdp (distribution in the XDP \
                 program) or tc (host mode: the host's skbs placed in the kernel, offloads kept)"
            )),
        }
    }

    /// The engine of `engine = "auto"` (the default): forward mode runs the AF_XDP workers;
    /// host mode runs the tc host path unless a setting only the workers have is given
    /// (`cores`, `busy_poll`, `zero_copy = "required"`), which keeps the workers.
    pub fn auto(forward: bool, wants_workers: bool) -> Engine {
        if forward || wants_workers {
            Engine::AfXdp
        } else {
            Engine::Tc
        }
    }

    /// Whether the engine distributes in the kernel (no workers): `xdp` and `tc`.
    pub fn in_kernel(self) -> bool {
        self != Engine::AfXdp
    }
}

impl fmt::Display for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Engine::AfXdp => "afxdp",
            Engine::Xdp => "xdp",
            Engine::Tc => "tc",
        })
    }
}

/// A lagg protocol (`laggproto`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LaggProto {
    /// Master port, next active port on failure, back to the master when it returns.
    Failover,
    /// Hash over `lagghash` layers through a bucket table (alias `fec`).
    LoadBalance,
    /// IEEE 802.1AX link aggregation.
    Lacp,
    /// Every active port in turn, `rr_limit` frames each.
    RoundRobin,
    /// Every frame on every active port.
    Broadcast,
    /// No traffic; the interface stays.
    None,
}

impl LaggProto {
    /// Parses a lagg name or a Linux bonding alias.
    ///
    /// # Errors
    /// A message listing what is allowed.
    pub fn parse(text: &str) -> Result<Self, String> {
        Ok(match text.trim().to_ascii_lowercase().as_str() {
            "failover" | "active-backup" => LaggProto::Failover,
            "loadbalance" | "fec" | "balance-xor" => LaggProto::LoadBalance,
            "lacp" | "802.3ad" => LaggProto::Lacp,
            "roundrobin" | "balance-rr" => LaggProto::RoundRobin,
            "broadcast" => LaggProto::Broadcast,
            "none" => LaggProto::None,
            other => {
                return Err(format!(
                    "unknown protocol '{other}': use failover, loadbalance (or fec), lacp, roundrobin, broadcast \
                     or none; the Linux bonding names active-backup, balance-xor, 802.3ad and balance-rr are accepted too"
                ))
            }
        })
    }

    /// The lagg name.
    pub fn name(self) -> &'static str {
        match self {
            LaggProto::Failover => "failover",
            LaggProto::LoadBalance => "loadbalance",
            LaggProto::Lacp => "lacp",
            LaggProto::RoundRobin => "roundrobin",
            LaggProto::Broadcast => "broadcast",
            LaggProto::None => "none",
        }
    }
}

impl fmt::Display for LaggProto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What sits above the aggregate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Upper {
    /// A kernel interface named like the lagg, carrying addresses and routes.
    Host {
        /// Addresses with prefix length.
        addresses: Vec<(IpAddr, u8)>,
    },
    /// One downstream port, L2-forwarded to and from the aggregate.
    Forward {
        /// The downstream port's name.
        port: String,
    },
}

/// One validated lagg.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LaggConfig {
    /// `laggN`.
    pub name: String,
    /// Free text shown with the status.
    pub description: String,
    /// Whether the lagg runs (`false`: configured, administratively down).
    pub up: bool,
    /// Offloads of the host interface left on.
    pub hw_offload: bool,
    /// Protocol.
    pub proto: LaggProto,
    /// Member ports in order; the first is the failover master.
    pub ports: Vec<String>,
    /// Hash layers for loadbalance.
    pub hash: HashLayers,
    /// Frames per port before roundrobin moves on.
    pub rr_limit: u32,
    /// Keys the flow hash (`hash_seed`; 0 by default): two LAGs in a row with different
    /// seeds split each other's flows instead of following one another (polarization).
    pub hash_seed: u32,
    /// `rebalance`: move buckets off a busy member at gaps in their traffic (hash policy).
    pub rebalance: Option<crate::runtime::rebalance::RebalanceConfig>,
    /// Failover: accept frames on every port, not only the active one.
    pub rx_all: bool,
    /// Preferred busy polling for the workers' AF_XDP sockets: the worker drives the ports'
    /// NAPI itself instead of the softirq.
    pub busy_poll: bool,
    /// Where frames are distributed: AF_XDP workers, the XDP program or the tc host path
    /// (`auto` resolved).
    pub engine: Engine,
    /// Forward mode: IEEE 802.1 link-local frames (STP, PAUSE, EAPOL, LLDP) from downstream
    /// go onto the members; off: dropped and counted at the forward port.
    pub forward_link_local: bool,
    /// Host or forward mode.
    pub upper: Upper,
    /// DHCP on laggN (host mode only).
    pub dhcp: Option<DhcpOptions>,
    /// SLAAC on laggN (host mode only).
    pub ipv6_auto: bool,
    /// MTU of the lagg interface.
    pub mtu: u32,
    /// Cores of the workers; worker `i` serves receive queue `i` of every port. Empty: one
    /// unpinned worker on queue 0.
    pub cores: Vec<usize>,
    /// Zero-copy policy.
    pub zero_copy: ZeroCopy,
    /// AF_XDP ring size (every ring).
    pub ring_size: u32,
    /// LACP settings (used with `laggproto lacp`).
    pub lacp: LacpOptions,
    /// Milliseconds a member's link must stay up before it is used again.
    pub updelay_ms: u64,
    /// Milliseconds a member's link may be down before it is taken out.
    pub downdelay_ms: u64,
    /// Gratuitous ARPs / unsolicited NAs sent per address on an active-port change.
    pub notify_count: u32,
    /// Milliseconds between them.
    pub notify_interval_ms: u64,
    /// Micro-BFD on every member, if enabled.
    pub bfd: Option<BfdOptions>,
    /// The ARP/NS probe monitor, if targets are set.
    pub arp: Option<ArpOptions>,
}

/// DHCP on a host-mode laggN.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DhcpOptions {
    /// Readiness waits for the lease (`SYNCDHCP`).
    pub sync: bool,
    /// How long it waits, seconds.
    pub timeout_s: u64,
}

/// ARP/NS probe monitor settings of a lagg.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArpOptions {
    /// Addresses to probe.
    pub targets: Vec<IpAddr>,
    /// Milliseconds between probe rounds.
    pub interval_ms: u64,
    /// Rounds without a reply before a member is taken out.
    pub missed_max: u32,
}

/// Micro-BFD settings of a lagg.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BfdOptions {
    /// Desired transmit and required receive interval, milliseconds.
    pub interval_ms: u64,
    /// Detection multiplier.
    pub multiplier: u8,
    /// Destination address of the packets (the peer's; broadcast when not set).
    pub peer: std::net::Ipv4Addr,
}

/// LACP options of one lagg (lagg's names where it has them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LacpOptions {
    /// Active (send LACPDUs unprompted) or passive.
    pub active: bool,
    /// `lacp_fast_timeout`: ask the partner for LACPDUs every second (3 s timeout).
    pub fast_timeout: bool,
    /// `lacp_strict`: a port carries nothing until the partner is heard.
    pub strict: bool,
    /// `lacp_fallback`: while no port hears the partner, the port of best priority forwards
    /// alone until LACP comes up.
    pub fallback: bool,
    /// System priority.
    pub system_priority: u16,
    /// System MAC; `None`: the first member's MAC.
    pub system_mac: Option<[u8; 6]>,
    /// Key of every port; `None`: the lagg number plus one.
    pub key: Option<u16>,
    /// Port priority of every port unless listed in `port_priorities`.
    pub port_priority: u16,
    /// Per-port priorities.
    pub port_priorities: Vec<(String, u16)>,
    /// Fewer distributing ports than this: the lagg distributes on none.
    pub min_links: usize,
    /// Mux control: coupled (default) or independent.
    pub mux: crate::proto::lacp::MuxMode,
    /// Aggregator selection: speed, count or stable.
    pub selection: crate::proto::lacp::SelectionPolicy,
}

impl Default for LacpOptions {
    fn default() -> Self {
        Self {
            active: true,
            fast_timeout: false,
            strict: true,
            fallback: false,
            system_priority: 0x8000,
            system_mac: None,
            key: None,
            port_priority: 0x8000,
            port_priorities: Vec::new(),
            min_links: 1,
            mux: crate::proto::lacp::MuxMode::Coupled,
            selection: crate::proto::lacp::SelectionPolicy::Speed,
        }
    }
}

/// Parses `aa:bb:cc:dd:ee:ff`.
///
/// # Errors
/// The expected form.
pub fn parse_mac(text: &str) -> Result<[u8; 6], String> {
    let parts: Vec<&str> = text.split([':', '-']).collect();
    let bad = || format!("'{text}' is not a MAC address: write it as 02:00:00:00:00:01");
    if parts.len() != 6 {
        return Err(bad());
    }
    let mut mac = [0u8; 6];
    for (b, p) in mac.iter_mut().zip(parts) {
        *b = u8::from_str_radix(p, 16).map_err(|_| bad())?;
    }
    Ok(mac)
}

/// Daemon-wide settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DaemonConfig {
    /// Log filter (tracing's syntax); `RUST_LOG` overrides it.
    pub log_level: String,
    /// Print per-port counters every this many milliseconds; 0: only at exit.
    pub status_interval_ms: u64,
    /// How often member link state is re-read as a safety net, in milliseconds (changes arrive
    /// as kernel notifications; this only catches what a notification overrun lost).
    pub link_poll_ms: u64,
    /// The management socket's path.
    pub socket: String,
    /// The HTTP listener's address, if any.
    pub http: Option<std::net::SocketAddr>,
    /// The API token's file.
    pub token_file: String,
    /// Host names the HTTP listener answers to besides IP addresses and `localhost`.
    pub http_hosts: Vec<String>,
    /// HTTPS: certificate chain and private key files (PEM).
    pub tls: Option<(String, String)>,
}

/// A whole validated configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Daemon settings.
    pub daemon: DaemonConfig,
    /// The laggs, in file order.
    pub laggs: Vec<LaggConfig>,
}

/// A configuration that was refused: every problem found, each naming its field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// One message per problem.
    pub problems: Vec<String>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            f.write_str(p)?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// The configuration as written: the TOML file's shape, and what the CLI, the API and the web
/// UI edit. [`ConfigDoc::validate`] turns it into a [`Config`]; nothing else does.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields)]
pub struct ConfigDoc {
    /// `[daemon]`.
    #[serde(default)]
    pub daemon: DaemonSpec,
    /// `[[lagg]]` tables, in file order.
    #[serde(default, rename = "lagg")]
    pub laggs: Vec<LaggSpec>,
}

/// `[daemon]` as written.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct DaemonSpec {
    /// Log filter.
    pub log_level: String,
    /// Status table interval, milliseconds.
    pub status_interval_ms: u64,
    /// Safety-net link re-read, milliseconds.
    pub link_poll_ms: u64,
    /// The management socket (root only).
    pub socket: String,
    /// The HTTP listener (API, web UI, metrics); empty: none.
    pub http: String,
    /// Where the API token is kept (created on first start, root only).
    pub token_file: String,
    /// Host names the HTTP listener answers to besides IP addresses and `localhost`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub http_hosts: Vec<String>,
    /// HTTPS certificate chain (PEM); with `tls_key`. Empty: plain HTTP.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub tls_cert: String,
    /// HTTPS private key (PEM).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub tls_key: String,
    /// Memory (MiB) the frames and rings of one lagg's workers may take.
    pub memory_budget_mb: u64,
}

impl Default for DaemonSpec {
    fn default() -> Self {
        Self {
            log_level: "info".into(),
            status_interval_ms: 0,
            link_poll_ms: 1000,
            socket: DEFAULT_SOCKET.into(),
            http: DEFAULT_HTTP.into(),
            token_file: DEFAULT_TOKEN_FILE.into(),
            http_hosts: Vec::new(),
            tls_cert: String::new(),
            tls_key: String::new(),
            memory_budget_mb: DEFAULT_MEMORY_BUDGET_MB,
        }
    }
}

/// The memory one lagg's workers may map unless `daemon.memory_budget_mb` says otherwise.
pub const DEFAULT_MEMORY_BUDGET_MB: u64 = 2048;

/// Where `xlaggd` listens for `xlaggctl` unless `daemon.socket` says otherwise.
pub const DEFAULT_SOCKET: &str = "/run/xlagg/xlaggd.sock";
/// The HTTP listener unless `daemon.http` says otherwise: localhost only.
pub const DEFAULT_HTTP: &str = "127.0.0.1:8474";
/// The API token's file unless `daemon.token_file` says otherwise.
pub const DEFAULT_TOKEN_FILE: &str = "/var/lib/xlagg/api-token";

/// One `[[lagg]]` table as written; every field has lagg's default.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
#[allow(missing_docs)]
pub struct LaggSpec {
    pub name: String,
    pub description: String,
    /// `false` after `xlaggctl laggN down`: kept in the configuration, not running.
    pub up: bool,
    pub laggproto: String,
    pub laggports: Vec<String>,
    /// `false`: turn off the offloads of the host interface (TrueNAS's "Disable Hardware
    /// Offloading").
    pub hw_offload: bool,
    pub lagghash: String,
    pub rr_limit: u32,
    /// Keys the flow hash; 0 (the default) places flows as every xlagg does.
    pub hash_seed: u32,
    /// Move buckets off a busy member at gaps in their traffic.
    pub rebalance: bool,
    /// Percent above the active members' mean rate the busiest may run.
    pub rebalance_threshold: u64,
    /// How long it must run above that before buckets move, milliseconds.
    pub rebalance_hold_ms: u64,
    /// The gap in a bucket's traffic before it moves, milliseconds.
    pub rebalance_idle_ms: u64,
    pub rx_all: bool,
    /// Preferred busy polling (`SO_PREFER_BUSY_POLL`) for the workers' sockets.
    pub busy_poll: bool,
    /// `auto` (host mode: `tc`; forward mode: `afxdp`), `afxdp` (workers over AF_XDP
    /// sockets), `xdp` (distribution in the XDP program) or `tc` (host mode's skb path).
    pub engine: String,
    /// Forward mode: send IEEE 802.1 link-local frames from downstream onto the members.
    pub forward_link_local: bool,
    pub upper: String,
    pub forward_port: Option<String>,
    pub addresses: Vec<String>,
    /// IPv4 address from DHCP on laggN (host mode), beside any static ones (rc.conf's `DHCP`).
    pub dhcp: bool,
    /// Hold xlaggd's readiness until the lease is bound or `dhcp_timeout` passes (`SYNCDHCP`).
    pub dhcp_sync: bool,
    /// Seconds `dhcp_sync` waits for a lease.
    pub dhcp_timeout: u64,
    /// IPv6 addresses and default route from router advertisements (SLAAC) on laggN
    /// (FreeBSD's `accept_rtadv`, TrueNAS's "Autoconfigure IPv6"); off: none are accepted.
    pub ipv6_auto: bool,
    pub mtu: u32,
    pub cores: Vec<usize>,
    pub zero_copy: String,
    pub ring_size: u32,
    pub lacp_active: bool,
    pub lacp_fast_timeout: bool,
    pub lacp_strict: bool,
    pub lacp_fallback: bool,
    pub lacp_system_priority: u32,
    pub lacp_system_mac: Option<String>,
    pub lacp_key: Option<u32>,
    pub lacp_port_priority: u32,
    pub lacp_port_priorities: std::collections::BTreeMap<String, u32>,
    pub min_links: usize,
    pub lacp_mux: String,
    pub lacp_select: String,
    pub updelay: u64,
    pub downdelay: u64,
    pub notify_count: u32,
    pub notify_interval: u64,
    /// Micro-BFD (RFC 7130) on every member.
    pub bfd: bool,
    pub bfd_interval: u64,
    pub bfd_multiplier: u32,
    pub bfd_peer: Option<String>,
    /// ARP/NS probe monitor targets (IPv4: ARP, IPv6: neighbour solicitation); none: off.
    pub arp_targets: Vec<String>,
    pub arp_interval: u64,
    pub arp_missed_max: u32,
}

impl Default for LaggSpec {
    fn default() -> Self {
        Self {
            name: String::new(),
            description: String::new(),
            up: true,
            laggproto: "failover".into(),
            laggports: Vec::new(),
            hw_offload: true,
            lagghash: "l2,l3,l4".into(),
            rr_limit: 1,
            hash_seed: 0,
            rebalance: false,
            rebalance_threshold: 20,
            rebalance_hold_ms: 5000,
            rebalance_idle_ms: 50,
            rx_all: false,
            busy_poll: false,
            engine: "auto".into(),
            forward_link_local: false,
            upper: "host".into(),
            forward_port: None,
            addresses: Vec::new(),
            dhcp: false,
            dhcp_sync: false,
            dhcp_timeout: 30,
            ipv6_auto: false,
            mtu: 1500,
            cores: Vec::new(),
            zero_copy: "auto".into(),
            ring_size: 4096,
            lacp_active: true,
            lacp_fast_timeout: false,
            lacp_strict: true,
            lacp_fallback: false,
            lacp_system_priority: 0x8000,
            lacp_system_mac: None,
            lacp_key: None,
            lacp_port_priority: 0x8000,
            lacp_port_priorities: std::collections::BTreeMap::new(),
            min_links: 1,
            lacp_mux: "coupled".into(),
            lacp_select: "speed".into(),
            updelay: 0,
            downdelay: 0,
            notify_count: 1,
            notify_interval: 200,
            bfd: false,
            bfd_interval: 100,
            bfd_multiplier: 3,
            bfd_peer: None,
            arp_targets: Vec::new(),
            arp_interval: 1000,
            arp_missed_max: 2,
        }
    }
}

impl LaggSpec {
    /// A lagg with lagg's defaults and no ports, as `ifconfig laggN create` makes it.
    pub fn named(name: &str) -> Self {
        Self {
            name: name.into(),
            ..Self::default()
        }
    }
}

impl ConfigDoc {
    /// Parses TOML into the document, without validating values.
    ///
    /// # Errors
    /// The TOML or type error, on one line, naming the key.
    pub fn from_toml(text: &str) -> Result<ConfigDoc, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError {
            problems: vec![e
                .to_string()
                .trim_end()
                .replace('\n', " ")
                .replace("  ", " ")],
        })
    }

    /// The document as TOML, leaving out every key that has its default value (so a file
    /// written by the daemon says only what was chosen).
    pub fn to_toml(&self) -> String {
        let mut out = String::from(
            "# xlagg configuration (written by xlaggd; see xlagg.sample.toml for every key).\n",
        );
        let trimmed = |value: toml::Value, default: toml::Value| -> toml::Table {
            let (toml::Value::Table(mut t), toml::Value::Table(d)) = (value, default) else {
                return toml::Table::new();
            };
            t.retain(|k, v| k == "name" || k == "laggports" || d.get(k) != Some(v));
            t
        };
        let daemon = trimmed(toml_value(&self.daemon), toml_value(&DaemonSpec::default()));
        if !daemon.is_empty() {
            let mut doc = toml::Table::new();
            doc.insert("daemon".into(), toml::Value::Table(daemon));
            out.push_str(&toml::to_string(&doc).unwrap_or_default());
        }
        for lagg in &self.laggs {
            let table = trimmed(toml_value(lagg), toml_value(&LaggSpec::default()));
            let mut doc = toml::Table::new();
            doc.insert(
                "lagg".into(),
                toml::Value::Array(vec![toml::Value::Table(table)]),
            );
            out.push('\n');
            out.push_str(&toml::to_string(&doc).unwrap_or_default());
        }
        out
    }

    /// The lagg named `name`.
    pub fn lagg(&self, name: &str) -> Option<&LaggSpec> {
        self.laggs.iter().find(|l| l.name == name)
    }

    /// The lagg named `name`, to change.
    pub fn lagg_mut(&mut self, name: &str) -> Option<&mut LaggSpec> {
        self.laggs.iter_mut().find(|l| l.name == name)
    }
}

/// A spec as a TOML value (the spec types have only string-keyed maps, so this cannot fail).
fn toml_value<T: Serialize>(v: &T) -> toml::Value {
    toml::Value::try_from(v).unwrap_or(toml::Value::Table(toml::Table::new()))
}

/// Largest MTU a lagg takes: jumbo frames of 9000 bytes, as storage networks run them. Above
/// 1774 a packet spans several UMEM frames (AF_XDP multi-buffer, `xdp.frags` programs).
pub const MAX_MTU: u32 = 9000;

/// Addresses on one lagg at most.
pub const MAX_ADDRESSES: usize = 256;

/// Whether `name` is `lagg` followed by a decimal number.
pub fn is_lagg_name(name: &str) -> bool {
    name.strip_prefix("lagg")
        .is_some_and(|n| !n.is_empty() && n.len() <= 5 && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Parses `addr/prefix`.
///
/// # Errors
/// What is malformed and the expected form.
pub fn parse_address(text: &str) -> Result<(IpAddr, u8), String> {
    let (addr, prefix) = text.split_once('/').ok_or_else(|| {
        format!("'{text}' has no prefix length: write it as 192.168.1.10/24 or 2001:db8::10/64")
    })?;
    let addr: IpAddr = addr
        .parse()
        .map_err(|_| format!("'{addr}' is not an IPv4 or IPv6 address"))?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix: u8 = prefix.parse().ok().filter(|p| *p <= max).ok_or_else(|| {
        format!("prefix length '{prefix}' of {addr} must be a number from 0 to {max}")
    })?;
    Ok((addr, prefix))
}

fn is_ifname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 15
        && !name.contains(['/', ' ', '\0'])
        && name != "."
        && name != ".."
}

impl Config {
    /// Parses and validates a TOML document.
    ///
    /// # Errors
    /// Every problem found, each naming its field.
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        ConfigDoc::from_toml(text)?.validate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> Vec<String> {
        Config::from_toml(text)
            .expect_err("must be refused")
            .problems
    }

    #[test]
    fn a_lagg_beyond_the_memory_budget_is_refused_with_the_figure() {
        let ports: Vec<String> = (0..32).map(|i| format!("\"em{i}\"")).collect();
        let text = format!(
            "[[lagg]]\nname = \"lagg0\"\nring_size = 32768\ncores = [0, 1, 2, 3]\nlaggports = [{}]\n",
            ports.join(", ")
        );
        let e = ConfigDoc::from_toml(&text).unwrap().validate().unwrap_err();
        assert!(
            e.problems[0].starts_with("lagg0.ring_size: its workers would map 32966 MiB"),
            "{e}"
        );
        let raised = format!("[daemon]\nmemory_budget_mb = 40000\n{text}");
        assert!(ConfigDoc::from_toml(&raised).unwrap().validate().is_ok());
        // The default lagg is far below the default budget.
        let small = "[[lagg]]\nname = \"lagg0\"\nlaggports = [\"em0\", \"em1\"]\n";
        assert!(ConfigDoc::from_toml(small).unwrap().validate().is_ok());
    }

    #[test]
    fn minimal_lagg_takes_lagg_defaults() {
        let c = Config::from_toml("[[lagg]]\nname = \"lagg0\"\nlaggports = [\"em0\", \"em1\"]\n")
            .expect("valid");
        let l = &c.laggs[0];
        assert_eq!(l.proto, LaggProto::Failover);
        assert_eq!(l.hash, HashLayers::DEFAULT);
        assert_eq!((l.rr_limit, l.mtu, l.rx_all), (1, 1500, false));
        assert_eq!(l.upper, Upper::Host { addresses: vec![] });
        assert_eq!(c.daemon.link_poll_ms, 1000);
        assert_eq!(
            (
                l.updelay_ms,
                l.downdelay_ms,
                l.notify_count,
                l.notify_interval_ms
            ),
            (0, 0, 1, 200)
        );
    }

    #[test]
    fn the_default_engine_is_the_host_path_in_host_mode_and_the_workers_in_forward_mode() {
        let engine = |extra: &str| {
            let text = format!("[[lagg]]\nname = \"lagg0\"\nlaggports = [\"em0\"]\n{extra}");
            Config::from_toml(&text).expect("valid").laggs[0].engine
        };
        assert_eq!(engine(""), Engine::Tc);
        assert_eq!(engine("engine = \"auto\"\n"), Engine::Tc);
        assert_eq!(
            engine("upper = \"forward\"\nforward_port = \"em9\"\n"),
            Engine::AfXdp
        );
        // Settings only the workers have keep them.
        assert_eq!(engine("cores = [1]\n"), Engine::AfXdp);
        assert_eq!(engine("busy_poll = true\n"), Engine::AfXdp);
        assert_eq!(engine("engine = \"xdp\"\n"), Engine::Xdp);
        assert_eq!(engine("engine = \"afxdp\"\n"), Engine::AfXdp);
    }

    #[test]
    fn sample_config_is_valid() {
        let text = include_str!("../../../xlagg.sample.toml");
        let c = Config::from_toml(text).expect("the sample config must stay valid");
        assert!(!c.laggs.is_empty());
    }

    #[test]
    fn documents_round_trip_through_toml() {
        let text = include_str!("../../../xlagg.sample.toml");
        let doc = ConfigDoc::from_toml(text).unwrap();
        let written = doc.to_toml();
        let again = ConfigDoc::from_toml(&written).expect("what to_toml writes parses");
        assert_eq!(again, doc);
        assert_eq!(again.validate().unwrap(), doc.validate().unwrap());
        // Defaults are left out: a fresh lagg is its name and ports.
        let mut doc = ConfigDoc::default();
        doc.laggs.push(LaggSpec::named("lagg3"));
        assert_eq!(
            doc.to_toml()
                .lines()
                .filter(|l| !l.starts_with('#') && !l.is_empty())
                .collect::<Vec<_>>(),
            ["[[lagg]]", "name = \"lagg3\"", "laggports = []"]
        );
    }

    #[test]
    fn bonding_aliases_map_to_lagg_protocols() {
        for (alias, proto) in [
            ("active-backup", LaggProto::Failover),
            ("balance-xor", LaggProto::LoadBalance),
            ("fec", LaggProto::LoadBalance),
            ("802.3ad", LaggProto::Lacp),
            ("balance-rr", LaggProto::RoundRobin),
            ("Broadcast", LaggProto::Broadcast),
        ] {
            assert_eq!(LaggProto::parse(alias), Ok(proto), "{alias}");
        }
    }

    #[test]
    fn each_rule_names_its_field() {
        let cases: &[(&str, &str)] = &[
            ("[[lagg]]\nlaggports = [\"a\"]", "lagg[0].name: missing: every [[lagg]] needs a name such as name = \"lagg0\""),
            ("[daemon]\nhttp = \"localhost\"", "daemon.http: 'localhost' is not an address and port such as 127.0.0.1:8474"),
            ("[daemon]\nsocket = \"xlagg.sock\"", "daemon.socket: 'xlagg.sock' must be an absolute path"),
            ("[[lagg]]\nname = \"bond0\"\nlaggports = [\"a\"]", "lagg[0].name: 'bond0' is not a lagg name: use lagg followed by a number, e.g. lagg0"),
            ("[[lagg]]\nname = \"lagg0\"\nlaggports = [\"a\", \"a\"]", "lagg0.laggports: a is listed twice"),
            ("[[lagg]]\nname = \"lagg0\"\nlaggproto = \"fast\"\nlaggports = [\"a\"]", "lagg0.laggproto: unknown protocol 'fast'"),
            ("[[lagg]]\nname = \"lagg0\"\nlagghash = \"l7\"\nlaggports = [\"a\"]", "lagg0.lagghash: unknown hash layer 'l7'"),
            ("[[lagg]]\nname = \"lagg0\"\nrr_limit = 0\nlaggports = [\"a\"]", "lagg0.rr_limit: must be at least 1"),
            ("[[lagg]]\nname = \"lagg0\"\nmtu = 9001\nlaggports = [\"a\"]", "lagg0.mtu: 9001 is out of range: use 68 to 9000 (9000 for jumbo frames)"),
            ("[[lagg]]\nname = \"lagg0\"\naddresses = [\"10.0.0.1\"]\nlaggports = [\"a\"]", "lagg0.addresses: '10.0.0.1' has no prefix length"),
            ("[[lagg]]\nname = \"lagg0\"\naddresses = [\"10.0.0.1/33\"]\nlaggports = [\"a\"]", "lagg0.addresses: prefix length '33' of 10.0.0.1 must be a number from 0 to 32"),
            ("[[lagg]]\nname = \"lagg0\"\nupper = \"forward\"\nlaggports = [\"a\"]", "lagg0.forward_port: upper = \"forward\" needs forward_port"),
            ("[[lagg]]\nname = \"lagg0\"\nupper = \"forward\"\nforward_port = \"a\"\nlaggports = [\"a\"]", "lagg0.forward_port: a is also a member port"),
            ("[[lagg]]\nname = \"lagg0\"\nzero_copy = \"yes\"\nlaggports = [\"a\"]", "lagg0.zero_copy: 'yes' is not one of auto, off, required"),
            ("[[lagg]]\nname = \"lagg0\"\nring_size = 1000\nlaggports = [\"a\"]", "lagg0.ring_size: 1000 must be a power of two"),
            ("[[lagg]]\nname = \"lagg0\"\nengine = \"ebpf\"\nlaggports = [\"a\"]", "lagg0.engine: 'ebpf' is not an engine: use auto, afxdp"),
            ("[[lagg]]\nname = \"lagg0\"\nengine = \"tc\"\nupper = \"forward\"\nforward_port = \"b\"\nlaggports = [\"a\"]", "lagg0.engine: tc is the host path"),
            ("[[lagg]]\nname = \"lagg0\"\nengine = \"tc\"\ncores = [1]\nlaggports = [\"a\"]", "lagg0.cores: the tc engine has no workers"),
            ("[[lagg]]\nname = \"lagg0\"\nengine = \"xdp\"\nbusy_poll = true\nlaggports = [\"a\"]", "lagg0.busy_poll: applies to the afxdp engine's sockets"),
            ("[[lagg]]\nname = \"lagg0\"\nengine = \"xdp\"\nzero_copy = \"required\"\nlaggports = [\"a\"]", "lagg0.zero_copy: applies to the afxdp engine"),
            ("[[lagg]]\nname = \"lagg0\"\nengine = \"xdp\"\ncores = [1]\nlaggports = [\"a\"]", "lagg0.cores: the xdp engine has no workers"),
            ("[[lagg]]\nname = \"lagg0\"\nengine = \"xdp\"\nlaggproto = \"broadcast\"\nmtu = 9000\nlaggports = [\"a\"]", "lagg0.mtu: 9000 is above 3000, the largest broadcast frame of the xdp engine"),
            ("[[lagg]]\nname = \"lagg0\"\nlaggports = [\"a\"]\n[[lagg]]\nname = \"lagg1\"\nlaggports = [\"a\"]", "lagg1.laggports: a is already a member of lagg0"),
            ("[[lagg]]\nname = \"lagg0\"\nlaggports = [\"a\"]\n[[lagg]]\nname = \"lagg0\"\nlaggports = [\"b\"]", "lagg0.name: lagg0 is defined twice"),
            ("[daemon]\nlink_poll_ms = 0\n[[lagg]]\nname = \"lagg0\"\nlaggports = [\"a\"]", "daemon.link_poll_ms: 0 is out of range"),
            ("[[lagg]]\nname = \"lagg0\"\nlacp_key = 0\nlaggports = [\"a\"]", "lagg0.lacp_key: 0 is reserved: use 1 to 65535"),
            ("[[lagg]]\nname = \"lagg0\"\ndowndelay = 700000\nlaggports = [\"a\"]", "lagg0.downdelay: 700000 ms is out of range"),
            ("[[lagg]]\nname = \"lagg0\"\nnotify_interval = 0\nlaggports = [\"a\"]", "lagg0.notify_interval: 0 ms is out of range"),
            ("[[lagg]]\nname = \"lagg0\"\nlacp_system_mac = \"01:00:5e:00:00:01\"\nlaggports = [\"a\"]", "lagg0.lacp_system_mac: 01:00:5e:00:00:01 must be a unicast, non-zero address"),
            ("[[lagg]]\nname = \"lagg0\"\nlacp_system_mac = \"zz\"\nlaggports = [\"a\"]", "lagg0.lacp_system_mac: 'zz' is not a MAC address"),
            ("[[lagg]]\nname = \"lagg0\"\nlacp_system_priority = 70000\nlaggports = [\"a\"]", "lagg0.lacp_system_priority: 70000 is out of range"),
            ("[[lagg]]\nname = \"lagg0\"\nlacp_port_priorities = { b = 1 }\nlaggports = [\"a\"]", "lagg0.lacp_port_priorities: b is not one of this lagg's laggports"),
            ("[[lagg]]\nname = \"lagg0\"\nbfd_interval = 5\nlaggports = [\"a\"]", "lagg0.bfd_interval: 5 ms is out of range: use 10 to 10000 milliseconds"),
            ("[[lagg]]\nname = \"lagg0\"\nbfd_multiplier = 0\nlaggports = [\"a\"]", "lagg0.bfd_multiplier: 0 is out of range: use 1 to 255"),
            ("[[lagg]]\nname = \"lagg0\"\nbfd_peer = \"x\"\nlaggports = [\"a\"]", "lagg0.bfd_peer: 'x' is not an IPv4 address"),
            ("[[lagg]]\nname = \"lagg0\"\narp_targets = [\"10.0.0.300\"]\nlaggports = [\"a\"]", "lagg0.arp_targets: '10.0.0.300' is not an IPv4 or IPv6 address"),
            ("[[lagg]]\nname = \"lagg0\"\narp_targets = [\"224.0.0.1\"]\nlaggports = [\"a\"]", "lagg0.arp_targets: 224.0.0.1 cannot answer a probe: give a unicast address"),
            ("[[lagg]]\nname = \"lagg0\"\narp_interval = 1\nlaggports = [\"a\"]", "lagg0.arp_interval: 1 ms is out of range: use 10 to 60000 milliseconds"),
            ("[[lagg]]\nname = \"lagg0\"\narp_missed_max = 0\nlaggports = [\"a\"]", "lagg0.arp_missed_max: 0 is out of range: use 1 to 255"),
            ("[[lagg]]\nname = \"lagg0\"\nmin_links = 0\nlaggports = [\"a\"]", "lagg0.min_links: 0 is out of range"),
            ("[[lagg]]\nname = \"lagg0\"\nlacp_mux = \"loose\"\nlaggports = [\"a\"]", "lagg0.lacp_mux: 'loose' is not one of coupled, independent"),
            ("[[lagg]]\nname = \"lagg0\"\nlacp_select = \"best\"\nlaggports = [\"a\"]", "lagg0.lacp_select: 'best' is not one of speed, count, stable"),
            ("[[lagg]]\nname = \"lagg0\"\nupper = \"forward\"\nforward_port = \"b\"\ndhcp = true\nlaggports = [\"a\"]", "lagg0.dhcp: DHCP needs upper = \"host\""),
            ("[[lagg]]\nname = \"lagg0\"\nupper = \"forward\"\nforward_port = \"b\"\nipv6_auto = true\nlaggports = [\"a\"]", "lagg0.ipv6_auto: IPv6 autoconfiguration needs upper = \"host\""),
            ("[[lagg]]\nname = \"lagg0\"\ndhcp_sync = true\nlaggports = [\"a\"]", "lagg0.dhcp_sync: waiting for a DHCP lease needs dhcp = true"),
            ("[[lagg]]\nname = \"lagg0\"\ndhcp = true\ndhcp_timeout = 0\nlaggports = [\"a\"]", "lagg0.dhcp_timeout: 0 s is out of range: use 1 to 600 s"),
        ];
        for (text, want) in cases {
            let got = err(text);
            assert!(
                got.iter().any(|p| p.starts_with(want)),
                "for {text:?} wanted {want:?}, got {got:?}"
            );
        }
    }

    #[test]
    fn unknown_keys_and_bad_types_name_the_key() {
        let got = err("[[lagg]]\nname = \"lagg0\"\nlaggports = [\"a\"]\nlaggprot = \"lacp\"\n");
        assert!(got[0].contains("unknown field `laggprot`"), "{got:?}");
        let got = err("[[lagg]]\nname = \"lagg0\"\nlaggports = \"a\"\n");
        assert!(got[0].contains("laggports"), "{got:?}");
    }

    #[test]
    fn several_problems_are_all_reported() {
        let got = err("[[lagg]]\nname = \"x\"\nlaggproto = \"y\"\nmtu = 1\n");
        assert_eq!(got.len(), 3, "{got:?}");
    }
}
