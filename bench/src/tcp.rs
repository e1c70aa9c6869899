//! `tcp`: TCP throughput through a host-mode `laggN` with iperf3 (the tool users run), per
//! protocol, next to the same iperf3 over a plain veth pair between the same namespaces in the
//! same run: the ceiling of the machine's own stack, against which the lagg's figure is a
//! ratio.
//!
//! The partner's ports complete their own checksums, as a wire does, so every segment counts
//! only if it was valid on the wire. `lacp` runs against the partner's bridge with
//! `lacp_strict = false` (the bridge speaks no LACP, so the aggregate is static): the data path
//! is the one a negotiated aggregate uses.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::forward::{Guarded, Spread};
use crate::iperf::{checksum_errors, snmp, IperfRun};
use crate::testbed::{sibling_binary, Bed, TempFile};

/// One protocol's figures (Gbit/s per run, both directions).
#[derive(Debug, Serialize)]
pub struct TcpRow {
    /// Protocol, or `veth` for the reference.
    pub proto: String,
    /// From laggN to the partner, Gbit/s per run.
    pub from_lagg: Vec<f64>,
    /// From the partner to laggN.
    pub to_lagg: Vec<f64>,
    /// Spread of both directions together.
    pub gbits: Spread,
    /// Median over the reference's median.
    pub ratio: f64,
    /// Checksum errors the receivers counted (must be 0).
    pub checksum_errors: u64,
}

/// The report.
#[derive(Debug, Serialize)]
pub struct TcpReport {
    /// Bytes per transfer.
    pub bytes: u64,
    /// Rows: the reference first.
    pub rows: Vec<TcpRow>,
}

fn wire_partner(bed: &Bed, ports: &[&str]) -> Result<()> {
    ethtool_ptr(bed, ports, &["tx", "off"])
}

/// `ethtool -K PORT SETTINGS` on each partner port.
fn ethtool_ptr(bed: &Bed, ports: &[&str], settings: &[&str]) -> Result<()> {
    for p in ports {
        let ok = bed
            .exec("ptr", Path::new("ethtool"))
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

fn both_ways(bed: &Bed, server: &str, client: &str, bytes: u64) -> Result<(f64, f64, u64)> {
    let (app, ptr) = (bed.ns("app"), bed.ns("ptr"));
    let before = checksum_errors(&snmp(&ptr)?) + checksum_errors(&snmp(&app)?);
    let mut g = [0.0; 2];
    for (i, reverse) in [false, true].into_iter().enumerate() {
        let r = IperfRun {
            server_ns: &ptr,
            server_addr: server,
            client_ns: &app,
            client_addr: client,
            bytes,
            reverse,
            udp_rate: None,
            port: 5201,
        }
        .run(Duration::from_secs(120))?;
        g[i] = r.bits_per_second / 1e9;
    }
    let after = checksum_errors(&snmp(&ptr)?) + checksum_errors(&snmp(&app)?);
    Ok((g[0], g[1], after - before))
}

/// MTU `mtu` on `links` of namespace `role`.
fn set_mtu(bed: &Bed, role: &str, links: &[&str], mtu: u32) -> Result<()> {
    for link in links {
        bed.ip(role, &["link", "set", link, "mtu", &mtu.to_string()])?;
    }
    Ok(())
}

/// Runs `runs` rounds over `protocols` at `mtu` (the veth pair, the members, the partner's
/// ports and bridge, and the lagg) and prints the table.
///
/// # Errors
/// A step that could not run.
pub fn run(
    protocols: &[String],
    bytes: u64,
    runs: usize,
    mtu: u32,
    engine: &str,
    testbed: &Path,
) -> Result<TcpReport> {
    crate::iperf::require()?;
    let xlaggd = sibling_binary("xlaggd")?;
    let mut rows: Vec<TcpRow> = Vec::new();
    let mut row = |proto: &str| -> usize {
        if let Some(i) = rows.iter().position(|r| r.proto == proto) {
            return i;
        }
        rows.push(TcpRow {
            proto: proto.to_string(),
            from_lagg: Vec::new(),
            to_lagg: Vec::new(),
            gbits: Spread::of(&[]),
            ratio: 0.0,
            checksum_errors: 0,
        });
        rows.len() - 1
    };
    let mut measured: Vec<(usize, f64, f64, u64)> = Vec::new();
    for _ in 0..runs {
        // The reference: one veth pair between the same namespaces.
        let bed = Bed::up(
            testbed,
            &format!("tc{}", std::process::id() % 100_000),
            1,
            false,
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
        bed.ip("app", &["addr", "add", "10.79.0.1/24", "dev", "xlr0"])?;
        bed.ip("ptr", &["addr", "add", "10.79.0.2/24", "dev", "xlr1"])?;
        set_mtu(&bed, "app", &["xlr0"], mtu)?;
        set_mtu(&bed, "ptr", &["xlr1"], mtu)?;
        bed.set_link("app", "xlr0", true)?;
        bed.set_link("ptr", "xlr1", true)?;
        wire_partner(&bed, &["xlr1"])?;
        let (a, b, e) = both_ways(&bed, "10.79.0.2", "10.79.0.1", bytes)?;
        measured.push((row("veth"), a, b, e));
        drop(bed);
        for proto in protocols {
            let bed = Bed::up(
                testbed,
                &format!("tc{}", std::process::id() % 100_000),
                2,
                true,
            )?;
            wire_partner(&bed, &["xlp0", "xlp1"])?;
            if engine == "xdp" {
                // A veth takes frames redirected into its peer only with GRO (or XDP) on.
                ethtool_ptr(&bed, &["xlp0", "xlp1"], &["gro", "on"])?;
            }
            set_mtu(&bed, "app", &["xlm0", "xlm1"], mtu)?;
            set_mtu(&bed, "ptr", &["xlp0", "xlp1", "xlbr0"], mtu)?;
            let extra = if proto == "lacp" {
                "lacp_strict = false\n"
            } else {
                ""
            };
            let config = format!(
                "[daemon]\nlink_poll_ms = 10000\n\n[[lagg]]\nname = \"lagg0\"\nlaggproto = \"{proto}\"\n\
                 laggports = [\"xlm0\", \"xlm1\"]\naddresses = [\"10.77.0.1/24\"]\nmtu = {mtu}\nengine = \"{engine}\"\n{extra}"
            );
            let config = TempFile::write(&format!("xlagg-tcp-{}.toml", bed.id), &config)?;
            let mut cmd = bed.exec("app", &xlaggd);
            cmd.arg("--config")
                .arg(&config.0)
                .arg("--socket")
                .arg(config.0.with_extension("sock"))
                .args(["--http", "off"])
                .stderr(Stdio::null());
            let daemon = Guarded::spawn_ready(cmd, "xlaggd")?;
            // LACP without a partner becomes a static aggregate after its wait.
            if proto == "lacp" {
                std::thread::sleep(Duration::from_secs(4));
            }
            let (a, b, e) = both_ways(&bed, "10.77.0.2", "10.77.0.1", bytes)
                .with_context(|| format!("TCP through a {proto} lagg"))?;
            measured.push((row(proto), a, b, e));
            drop(daemon);
            drop(config);
        }
    }
    for (i, a, b, e) in measured {
        rows[i].from_lagg.push(a);
        rows[i].to_lagg.push(b);
        rows[i].checksum_errors += e;
    }
    for r in &mut rows {
        let all: Vec<f64> = r.from_lagg.iter().chain(&r.to_lagg).copied().collect();
        r.gbits = Spread::of(&all);
    }
    let reference = rows.first().map_or(1.0, |r| r.gbits.median.max(1e-9));
    for r in &mut rows {
        r.ratio = r.gbits.median / reference;
    }
    println!(
        "TCP through laggN (host mode, 2 members, partner completes its checksums, MTU {mtu}), iperf3 -n {} MB each way, {runs} run(s)",
        bytes >> 20
    );
    println!(
        "{:>12} {:>26} {:>8} {:>10}",
        "", "Gbit/s min/median/max", "ratio", "csum err"
    );
    for r in &rows {
        println!(
            "{:>12} {:>8.2} {:>8.2} {:>8.2} {:>8.3} {:>10}",
            r.proto, r.gbits.min, r.gbits.median, r.gbits.max, r.ratio, r.checksum_errors
        );
    }
    println!("ratio: median against the plain veth pair's median in the same run");
    if rows.iter().any(|r| r.checksum_errors > 0) {
        bail!("checksum errors counted: segments left invalid");
    }
    Ok(TcpReport { bytes, rows })
}
