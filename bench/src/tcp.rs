//! `tcp`: TCP throughput through a host-mode `laggN` with iperf3 (the tool users run), per
//! engine and protocol, next to the same iperf3 over a reference link in the same run, both
//! directions, with 1 and 8 streams, at each MTU asked for. Rounds alternate the reference
//! and the laggs, so drift on a shared machine favours none; every figure is a ratio against
//! the reference of its own round.
//!
//! The partner's ports complete their own checksums (`tx off`), as a wire does, so every
//! segment counts only if it was valid on the wire; the receivers' checksum error counters
//! must stay at 0. The same partner settings hold for the reference.
//!
//! Two partners:
//! - `bridge`: a Linux bridge over the partner ports (a static aggregate: `lacp` runs with
//!   `lacp_strict = false`). The reference is one plain veth pair between the same
//!   namespaces, its partner end in a bridge of its own, so that the bridge's cost is in
//!   both figures and the ratio is the lagg's alone. A bridge sends everything for laggN's MAC out of the one port it learnt it
//!   on, so only what laggN sends is spread over the members;
//! - `ovs`: Open vSwitch (Debian's, userspace datapath) with an LACP bond (`balance-tcp`,
//!   rebalanced every second: it puts a new flow on its active member and moves hash buckets
//!   at rebalancing) over the partner ports, so both directions are spread; the reference is
//!   one veth pair into a second OVS bridge.
//!
//! With `--link-mbit N` every link of the test (members, partner ports, the reference) is
//! shaped to N Mbit/s each way by a token bucket (`tbf`) on its egress, so a member is a link
//! of that speed: aggregation is the lagg's figure over the reference's. A lagg engine that
//! sends by XDP redirect bypasses the appliance side's qdiscs; shaping is for the tc host path.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::forward::{Guarded, Spread};
use crate::iperf::{checksum_errors, snmp, IperfRun};
use crate::testbed::{sibling_binary, Bed, TempFile};

/// Who the lagg's members connect to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Partner {
    /// A Linux bridge over the partner ports.
    Bridge,
    /// Open vSwitch with an LACP bond over the partner ports.
    Ovs,
}

/// What `tcp` measures.
#[derive(Clone, Debug, Serialize)]
pub struct TcpOptions {
    /// Protocols of the laggs.
    pub protocols: Vec<String>,
    /// Engines of the laggs (`tc`, `xdp`, `afxdp`).
    pub engines: Vec<String>,
    /// Parallel streams per measurement.
    pub streams: Vec<u32>,
    /// MTUs.
    pub mtus: Vec<u32>,
    /// Rounds.
    pub rounds: usize,
    /// Seconds per iperf3 run.
    pub seconds: u32,
    /// Every link shaped to this rate (Mbit/s), or not shaped.
    pub link_mbit: Option<u32>,
    /// The partner.
    pub partner: Partner,
}

/// Which way the data flows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// laggN (or the reference's appliance end) sends.
    Out,
    /// laggN receives.
    In,
}

/// One cell: a variant at one MTU, stream count and direction, over the rounds.
#[derive(Clone, Debug, Serialize)]
pub struct TcpRow {
    /// `reference`, or `ENGINE PROTO`.
    pub variant: String,
    /// MTU.
    pub mtu: u32,
    /// Parallel streams.
    pub streams: u32,
    /// Which way.
    pub direction: Direction,
    /// Gbit/s per round.
    pub gbits: Vec<f64>,
    /// Spread of `gbits`.
    pub spread: Spread,
    /// Per round, over the reference of the same round, cell and direction.
    pub ratio: Spread,
    /// TCP retransmissions of the senders, summed over rounds.
    pub retransmits: u64,
    /// Checksum errors the receivers counted (must be 0), summed over rounds.
    pub checksum_errors: u64,
}

/// What one of a lagg's BPF programs cost while it carried a variant's traffic, from the
/// kernel's BPF statistics (`run_time_ns`, `run_cnt`).
#[derive(Clone, Debug, Serialize)]
pub struct ProgramCost {
    /// `ENGINE PROTO`.
    pub variant: String,
    /// MTU.
    pub mtu: u32,
    /// The program (`xlagg_host_out`, `xlagg_host_in`, `xlagg_engine`, `xlagg_port`).
    pub program: String,
    /// Runs over every round.
    pub runs: u64,
    /// Nanoseconds per run.
    pub ns_per_run: f64,
    /// TCP payload bytes the variant carried in the program's direction per run (`out` for
    /// laggN's egress program, `in` for the members' ingress; both for the XDP programs): an
    /// XDP program runs once per wire frame, the host path's once per skb, which GSO and GRO
    /// make up to 64 KiB.
    pub bytes_per_run: f64,
}

/// The report.
#[derive(Debug, Serialize)]
pub struct TcpReport {
    /// The options.
    pub options: TcpOptions,
    /// What the reference is, in words.
    pub reference: String,
    /// Rows: the reference's first.
    pub rows: Vec<TcpRow>,
    /// The lagg programs' cost per run.
    pub programs: Vec<ProgramCost>,
}

/// The lagg's programs the cost is read for.
const PROGRAMS: [&str; 4] = [
    "xlagg_host_out",
    "xlagg_host_in",
    "xlagg_engine",
    "xlagg_port",
];

/// Run time and runs per program name, summed over every loaded program of that name.
fn program_stats() -> std::collections::BTreeMap<String, (u64, u64)> {
    let mut out = std::collections::BTreeMap::new();
    for info in aya::programs::loaded_programs().flatten() {
        let Some(name) = info.name_as_str() else {
            continue;
        };
        if PROGRAMS.contains(&name) {
            let e = out.entry(name.to_string()).or_insert((0, 0));
            e.0 += info.run_time().as_nanos() as u64;
            e.1 += info.run_count();
        }
    }
    out
}

/// One measurement before the rounds are gathered.
struct Sample {
    variant: String,
    mtu: u32,
    streams: u32,
    direction: Direction,
    round: usize,
    gbits: f64,
    retransmits: u64,
    checksum_errors: u64,
}

const REF_APP: &str = "10.79.0.1";
const REF_PTR: &str = "10.79.0.2";
const LAGG_APP: &str = "10.77.0.1";
const LAGG_PTR: &str = "10.77.0.2";

/// `ethtool -K PORT SETTINGS` on each of `ports` in namespace `role`.
fn ethtool(bed: &Bed, role: &str, ports: &[&str], settings: &[&str]) -> Result<()> {
    for p in ports {
        let ok = bed
            .exec(role, Path::new("ethtool"))
            .args(["-K", p])
            .args(settings)
            .stdout(Stdio::null())
            .status()
            .context("ethtool")?
            .success();
        if !ok {
            bail!("ethtool -K {p} {} failed", settings.join(" "));
        }
    }
    Ok(())
}

/// A token bucket of `mbit` Mbit/s on `iface`'s egress in namespace `role`.
fn shape(bed: &Bed, role: &str, iface: &str, mbit: u32) -> Result<()> {
    // A millisecond at the rate, and never below a GSO packet.
    let burst = (u64::from(mbit) * 1000 / 8).max(128 * 1024);
    bed.ip(role, &["link", "set", iface, "txqueuelen", "1000"])?;
    let ok = Command::new("ip")
        .args([
            "netns",
            "exec",
            &bed.ns(role),
            "tc",
            "qdisc",
            "replace",
            "dev",
            iface,
        ])
        .args(["root", "tbf", "rate", &format!("{mbit}mbit")])
        .args(["burst", &burst.to_string(), "latency", "20ms"])
        .status()
        .context("tc")?
        .success();
    if !ok {
        bail!("tc qdisc replace dev {iface} root tbf rate {mbit}mbit failed");
    }
    Ok(())
}

/// The bed of one round: two members, the partner (bridge or Open vSwitch), the reference
/// link.
struct Round {
    bed: Bed,
    ovs: Option<OvsPartner>,
}

impl Round {
    fn up(opts: &TcpOptions, testbed: &Path) -> Result<Round> {
        let bridge = opts.partner == Partner::Bridge;
        let bed = Bed::up(
            testbed,
            &format!("tc{}", std::process::id() % 100_000),
            2,
            bridge,
        )?;
        bed.ip(
            "app",
            &[
                "link",
                "add",
                "xlr0",
                "type",
                "veth",
                "peer",
                "name",
                "xlr1",
                "netns",
                &bed.ns("ptr"),
            ],
        )?;
        bed.ip(
            "app",
            &["addr", "add", &format!("{REF_APP}/24"), "dev", "xlr0"],
        )?;
        bed.set_link("app", "xlr0", true)?;
        bed.set_link("ptr", "xlr1", true)?;
        let ovs = match opts.partner {
            Partner::Bridge => {
                // The partner's end of the reference is bridged too, as the members' are:
                // what the reference leaves out is the lagg alone.
                bed.ip("ptr", &["link", "add", "xlbr1", "type", "bridge"])?;
                bed.ip("ptr", &["link", "set", "xlr1", "master", "xlbr1"])?;
                bed.ip(
                    "ptr",
                    &["addr", "add", &format!("{REF_PTR}/24"), "dev", "xlbr1"],
                )?;
                bed.set_link("ptr", "xlbr1", true)?;
                None
            }
            Partner::Ovs => Some(OvsPartner::start(&bed)?),
        };
        // The partner settings of every variant: checksums completed in software (as on a
        // wire); GRO on, which a veth needs to take the XDP engine's redirects (not under
        // Open vSwitch's userspace datapath, which takes frames of its MTU only).
        let ports = ["xlp0", "xlp1", "xlr1"];
        ethtool(&bed, "ptr", &ports, &["tx", "off"])?;
        if opts.partner == Partner::Bridge {
            ethtool(&bed, "ptr", &ports, &["gro", "on"])?;
        } else {
            // As the members' ends (see `OvsPartner::start_with`).
            ethtool(&bed, "app", &["xlr0"], &["tx", "off"])?;
        }
        if let Some(mbit) = opts.link_mbit {
            for (role, iface) in [
                ("app", "xlm0"),
                ("app", "xlm1"),
                ("app", "xlr0"),
                ("ptr", "xlp0"),
                ("ptr", "xlp1"),
                ("ptr", "xlr1"),
            ] {
                shape(&bed, role, iface, mbit)?;
            }
        }
        Ok(Round { bed, ovs })
    }

    fn set_mtu(&self, mtu: u32) -> Result<()> {
        let m = mtu.to_string();
        for iface in ["xlm0", "xlm1", "xlr0"] {
            self.bed.ip("app", &["link", "set", iface, "mtu", &m])?;
        }
        for iface in ["xlp0", "xlp1", "xlr1"] {
            self.bed.ip("ptr", &["link", "set", iface, "mtu", &m])?;
        }
        match &self.ovs {
            None => {
                self.bed.ip("ptr", &["link", "set", "xlbr0", "mtu", &m])?;
                self.bed.ip("ptr", &["link", "set", "xlbr1", "mtu", &m])?;
            }
            Some(ovs) => ovs.set_mtu(&self.bed, mtu)?,
        }
        Ok(())
    }
}

/// Open vSwitch in the partner namespace: `br0` with an LACP bond over the partner ports and
/// the lagg's partner address; `br1` with the reference link and its address.
pub(crate) struct OvsPartner {
    dir: PathBuf,
    ns: String,
}

impl OvsPartner {
    /// Open vSwitch with `br0` and its LACP bond over the partner ports, and the lagg's
    /// partner address.
    ///
    /// # Errors
    /// Open vSwitch could not start.
    pub(crate) fn start_bond(bed: &Bed) -> Result<OvsPartner> {
        Self::start_with(bed, "")
    }

    /// [`start_bond`](Self::start_bond), and `br1` with the reference link and its address.
    fn start(bed: &Bed) -> Result<OvsPartner> {
        Self::start_with(
            bed,
            &format!(
                "ovs-vsctl --db=unix:{{d}}/db.sock add-br br1 -- set bridge br1 datapath_type=netdev; \
                 ovs-vsctl --db=unix:{{d}}/db.sock add-port br1 xlr1; \
                 ip addr add {REF_PTR}/24 dev br1; ip link set br1 up; "
            ),
        )
    }

    fn start_with(bed: &Bed, more: &str) -> Result<OvsPartner> {
        let dir = std::env::temp_dir().join(format!("xlagg-tcp-ovs-{}", bed.id));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        let me = OvsPartner {
            dir,
            ns: bed.ns("ptr"),
        };
        let d = me.dir.display().to_string();
        let more = more.replace("{d}", &d);
        let script = format!(
            "set -e; ovsdb-tool create {d}/conf.db /usr/share/openvswitch/vswitch.ovsschema; \
             ovsdb-server {d}/conf.db --remote=punix:{d}/db.sock --pidfile={d}/ovsdb.pid --unixctl={d}/ovsdb.ctl --log-file={d}/ovsdb.log --detach; \
             ovs-vsctl --db=unix:{d}/db.sock --no-wait init; \
             ovs-vswitchd unix:{d}/db.sock --pidfile={d}/vswitchd.pid --unixctl={d}/vswitchd.ctl --log-file={d}/vswitchd.log --detach; \
             ovs-vsctl --db=unix:{d}/db.sock add-br br0 -- set bridge br0 datapath_type=netdev; \
             ovs-vsctl --db=unix:{d}/db.sock add-bond br0 bond0 xlp0 xlp1 lacp=active bond_mode=balance-tcp other_config:lacp-time=fast other_config:bond-rebalance-interval=1000; \
             sysctl -qw net.ipv4.conf.all.arp_ignore=1; \
             ip addr add {LAGG_PTR}/24 dev br0; ip link set br0 up; {more}"
        );
        let out = Command::new("ip")
            .args(["netns", "exec", &me.ns, "sh", "-c", &script])
            .output()?;
        if !out.status.success() {
            bail!(
                "starting Open vSwitch (openvswitch-switch, which scripts/setup.sh installs): {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        // Its userspace datapath reads frames as bytes from packet sockets: a checksum-partial
        // skb that a veth hands over unfinished would reach it with a bad checksum, where a
        // NIC would have finished it. The members' ends finish theirs.
        ethtool(bed, "app", &["xlm0", "xlm1"], &["tx", "off"])?;
        Ok(me)
    }

    fn set_mtu(&self, bed: &Bed, mtu: u32) -> Result<()> {
        let db = format!("--db=unix:{}/db.sock", self.dir.display());
        for port in ["xlp0", "xlp1", "xlr1", "br0", "br1"] {
            let ok = Command::new("ip")
                .args([
                    "netns",
                    "exec",
                    &self.ns,
                    "ovs-vsctl",
                    &db,
                    "set",
                    "interface",
                    port,
                ])
                .arg(format!("mtu_request={mtu}"))
                .status()?
                .success();
            if !ok {
                bail!("ovs-vsctl set interface {port} mtu_request={mtu} failed");
            }
        }
        bed.ip("ptr", &["link", "set", "br0", "mtu", &mtu.to_string()])?;
        bed.ip("ptr", &["link", "set", "br1", "mtu", &mtu.to_string()])?;
        Ok(())
    }
}

impl Drop for OvsPartner {
    fn drop(&mut self) {
        for ctl in ["vswitchd.ctl", "ovsdb.ctl"] {
            let _ = Command::new("ovs-appctl")
                .arg("-t")
                .arg(self.dir.join(ctl))
                .arg("exit")
                .output();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Every stream count and direction between `app_addr` (in the appliance) and `ptr_addr`
/// (in the partner), as `variant` in round `round`.
fn measure(
    round: &Round,
    opts: &TcpOptions,
    variant: &str,
    mtu: u32,
    index: usize,
    addrs: (&str, &str),
    out: &mut Vec<Sample>,
) -> Result<()> {
    let bed = &round.bed;
    let (app, ptr) = (bed.ns("app"), bed.ns("ptr"));
    for &streams in &opts.streams {
        for direction in [Direction::Out, Direction::In] {
            let before = checksum_errors(&snmp(&ptr)?) + checksum_errors(&snmp(&app)?);
            let r = IperfRun {
                server_ns: &ptr,
                server_addr: addrs.1,
                client_ns: &app,
                client_addr: addrs.0,
                bytes: 0,
                seconds: Some(opts.seconds),
                streams,
                reverse: direction == Direction::In,
                udp_rate: None,
                port: 5201,
            }
            .run(Duration::from_secs(u64::from(opts.seconds) + 30))
            .with_context(|| format!("{variant}, MTU {mtu}, {streams} stream(s), {direction:?}"))?;
            let after = checksum_errors(&snmp(&ptr)?) + checksum_errors(&snmp(&app)?);
            let gbits = r.bits_per_second / 1e9;
            println!(
                "  round {} MTU {mtu:>4} {variant:<22} {streams} stream(s) {:<3} {gbits:7.2} Gbit/s  retr {}",
                index + 1,
                match direction {
                    Direction::Out => "out",
                    Direction::In => "in",
                },
                r.retransmits
            );
            out.push(Sample {
                variant: variant.to_string(),
                mtu,
                streams,
                direction,
                round: index,
                gbits,
                retransmits: r.retransmits,
                checksum_errors: after.saturating_sub(before),
            });
        }
    }
    Ok(())
}

/// The lagg's configuration.
fn lagg_config(proto: &str, engine: &str, mtu: u32, partner: Partner) -> String {
    // Against the bridge LACP has no partner: a static aggregate after its wait.
    let extra = if proto == "lacp" && partner == Partner::Bridge {
        "lacp_strict = false\n"
    } else if proto == "lacp" {
        "lacp_fast_timeout = true\n"
    } else {
        ""
    };
    format!(
        "[daemon]\nlink_poll_ms = 10000\n\n[[lagg]]\nname = \"lagg0\"\nlaggproto = \"{proto}\"\n\
         laggports = [\"xlm0\", \"xlm1\"]\naddresses = [\"{LAGG_APP}/24\"]\nmtu = {mtu}\nengine = \"{engine}\"\n{extra}"
    )
}

/// Waits until `lagg0` distributes on `members` members (LACP with the partner).
///
/// # Errors
/// When it does not within ten seconds.
pub(crate) fn wait_distributing(bed: &Bed, socket: &Path, members: usize) -> Result<()> {
    let ctl = sibling_binary("xlaggctl")?;
    for _ in 0..100 {
        let out = bed
            .exec("app", &ctl)
            .arg("--socket")
            .arg(socket)
            .arg("lagg0")
            .output()?;
        let text = String::from_utf8_lossy(&out.stdout);
        if text.matches("DISTRIBUTING").count() >= members {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("lagg0 never distributed on {members} members (LACP with the partner)")
}

/// Runs the rounds and prints the table.
///
/// # Errors
/// A step that could not run, or checksum errors.
pub fn run(opts: &TcpOptions, testbed: &Path) -> Result<TcpReport> {
    crate::iperf::require()?;
    if opts.partner == Partner::Ovs && opts.protocols.iter().any(|p| p != "lacp") {
        bail!("--partner ovs: the Open vSwitch bond speaks LACP; use --protocols lacp");
    }
    let xlaggd = sibling_binary("xlaggd")?;
    // The kernel counts programs' run time while this is held.
    let _stats = aya::sys::enable_stats(aya::sys::Stats::RunTime)
        .context("enabling the kernel's BPF run-time statistics")?;
    let mut costs: std::collections::BTreeMap<(String, u32, String), (u64, u64)> =
        std::collections::BTreeMap::new();
    let mut samples = Vec::new();
    for index in 0..opts.rounds {
        let round = Round::up(opts, testbed)?;
        for &mtu in &opts.mtus {
            round.set_mtu(mtu)?;
            measure(
                &round,
                opts,
                "reference",
                mtu,
                index,
                (REF_APP, REF_PTR),
                &mut samples,
            )?;
            for engine in &opts.engines {
                for proto in &opts.protocols {
                    let bed = &round.bed;
                    let config = lagg_config(proto, engine, mtu, opts.partner);
                    let config = TempFile::write(&format!("xlagg-tcp-{}.toml", bed.id), &config)?;
                    let socket = config.0.with_extension("sock");
                    let mut cmd = bed.exec("app", &xlaggd);
                    cmd.arg("--config")
                        .arg(&config.0)
                        .arg("--socket")
                        .arg(&socket)
                        .args(["--http", "off"])
                        .stderr(Stdio::null());
                    let daemon = Guarded::spawn_ready(cmd, "xlaggd")?;
                    if proto == "lacp" {
                        wait_distributing(bed, &socket, 2)?;
                    } else {
                        std::thread::sleep(Duration::from_millis(300));
                    }
                    let variant = format!("{engine} {proto}");
                    let before = program_stats();
                    measure(
                        &round,
                        opts,
                        &variant,
                        mtu,
                        index,
                        (LAGG_APP, LAGG_PTR),
                        &mut samples,
                    )?;
                    for (name, (ns, runs)) in program_stats() {
                        let (ns0, runs0) = before.get(&name).copied().unwrap_or((0, 0));
                        let e = costs.entry((variant.clone(), mtu, name)).or_insert((0, 0));
                        e.0 += ns.saturating_sub(ns0);
                        e.1 += runs.saturating_sub(runs0);
                    }
                    drop(daemon);
                    drop(config);
                }
            }
        }
    }
    let mut report = gather(opts, &samples);
    report.programs = program_costs(opts, &samples, costs);
    print_table(&report);
    if report.rows.iter().any(|r| r.checksum_errors > 0) {
        bail!("checksum errors counted: segments left invalid");
    }
    Ok(report)
}

/// Each program's cost per run, with the payload its direction carried per run.
fn program_costs(
    opts: &TcpOptions,
    samples: &[Sample],
    costs: std::collections::BTreeMap<(String, u32, String), (u64, u64)>,
) -> Vec<ProgramCost> {
    costs
        .into_iter()
        .filter(|(_, (_, runs))| *runs > 0)
        .map(|((variant, mtu, program), (ns, runs))| {
            let direction = match program.as_str() {
                "xlagg_host_out" => Some(Direction::Out),
                "xlagg_host_in" => Some(Direction::In),
                _ => None,
            };
            let bytes: f64 = samples
                .iter()
                .filter(|s| s.variant == variant && s.mtu == mtu)
                .filter(|s| direction.is_none_or(|d| d == s.direction))
                .map(|s| s.gbits * 1e9 / 8.0 * f64::from(opts.seconds))
                .sum();
            ProgramCost {
                variant,
                mtu,
                program,
                runs,
                ns_per_run: ns as f64 / runs as f64,
                bytes_per_run: bytes / runs as f64,
            }
        })
        .collect()
}

/// The rows of `samples`, each with its ratios to the reference of its round.
fn gather(opts: &TcpOptions, samples: &[Sample]) -> TcpReport {
    let mut rows: Vec<TcpRow> = Vec::new();
    for s in samples {
        let same = |r: &TcpRow| {
            r.variant == s.variant
                && r.mtu == s.mtu
                && r.streams == s.streams
                && r.direction == s.direction
        };
        let i = match rows.iter().position(same) {
            Some(i) => i,
            None => {
                rows.push(TcpRow {
                    variant: s.variant.clone(),
                    mtu: s.mtu,
                    streams: s.streams,
                    direction: s.direction,
                    gbits: Vec::new(),
                    spread: Spread::of(&[]),
                    ratio: Spread::of(&[]),
                    retransmits: 0,
                    checksum_errors: 0,
                });
                rows.len() - 1
            }
        };
        rows[i].gbits.push(s.gbits);
        rows[i].retransmits += s.retransmits;
        rows[i].checksum_errors += s.checksum_errors;
    }
    for row in &mut rows {
        row.spread = Spread::of(&row.gbits);
        let ratios: Vec<f64> = samples
            .iter()
            .filter(|s| {
                s.variant == row.variant
                    && s.mtu == row.mtu
                    && s.streams == row.streams
                    && s.direction == row.direction
            })
            .filter_map(|s| {
                samples
                    .iter()
                    .find(|r| {
                        r.variant == "reference"
                            && r.round == s.round
                            && r.mtu == s.mtu
                            && r.streams == s.streams
                            && r.direction == s.direction
                    })
                    .map(|r| s.gbits / r.gbits.max(1e-9))
            })
            .collect();
        row.ratio = Spread::of(&ratios);
    }
    let link = opts.link_mbit.map_or(String::new(), |m| {
        format!(", every link shaped to {m} Mbit/s")
    });
    let reference = match opts.partner {
        Partner::Bridge => format!(
            "one plain veth pair between the same namespaces, bridged on the partner's side as the members are{link}"
        ),
        Partner::Ovs => format!("one veth pair into a second Open vSwitch bridge{link}"),
    };
    TcpReport {
        options: opts.clone(),
        reference,
        rows,
        programs: Vec::new(),
    }
}

fn print_table(report: &TcpReport) {
    let o = &report.options;
    println!(
        "TCP through lagg0 (host mode, 2 members, partner {:?}, checksums completed by the partner), iperf3 -t {} per cell, {} round(s)",
        o.partner, o.seconds, o.rounds
    );
    println!("reference: {}", report.reference);
    println!(
        "{:>5} {:<22} {:>7} {:>4} {:>26} {:>23} {:>6} {:>5}",
        "MTU",
        "variant",
        "streams",
        "dir",
        "Gbit/s min/median/max",
        "ratio min/median/max",
        "retr",
        "csum"
    );
    for r in &report.rows {
        println!(
            "{:>5} {:<22} {:>7} {:>4} {:>8.2} {:>8.2} {:>8.2} {:>7.2} {:>7.2} {:>7.2} {:>6} {:>5}",
            r.mtu,
            r.variant,
            r.streams,
            match r.direction {
                Direction::Out => "out",
                Direction::In => "in",
            },
            r.spread.min,
            r.spread.median,
            r.spread.max,
            r.ratio.min,
            r.ratio.median,
            r.ratio.max,
            r.retransmits,
            r.checksum_errors
        );
    }
    println!("ratio: per round, over the reference's figure in the same round, MTU, streams and direction");
    if !report.programs.is_empty() {
        println!("BPF program cost (kernel run-time statistics):");
        println!(
            "{:>5} {:<22} {:<16} {:>12} {:>10} {:>14}",
            "MTU", "variant", "program", "runs", "ns/run", "payload B/run"
        );
        for p in &report.programs {
            println!(
                "{:>5} {:<22} {:<16} {:>12} {:>10.0} {:>14.0}",
                p.mtu, p.variant, p.program, p.runs, p.ns_per_run, p.bytes_per_run
            );
        }
    }
}
