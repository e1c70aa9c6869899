//! `lacp`: LACP convergence time, from the member links coming up to every member
//! distributing on the appliance, against an xlagg partner and against Open vSwitch.
//!
//! Each run takes the four member links down on the partner side, waits until the appliance
//! distributes on none, then brings them up together and times until the appliance's status
//! (printed every 10 ms) shows all four distributing. Expected: aggregate_wait (2 s) plus one
//! LACPDU exchange.

use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::forward::{Guarded, Spread};
use crate::testbed::Bed;

/// Who answers LACP on the far side.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Partner {
    /// Another xlaggd.
    Xlagg,
    /// Open vSwitch (Debian's openvswitch-switch), userspace datapath, LACP bond.
    Ovs,
}

/// The report.
#[derive(Debug, Serialize)]
pub struct ConvergenceReport {
    /// Partner.
    pub partner: Partner,
    /// Seconds per run.
    pub seconds: Vec<f64>,
    /// min/median/max.
    pub spread: Spread,
}

const MEMBERS: usize = 4;

fn config(prefix: &str, address: &str) -> String {
    let ports: Vec<String> = (0..MEMBERS).map(|i| format!("\"{prefix}{i}\"")).collect();
    format!(
        "[daemon]\nstatus_interval_ms = 10\nlink_poll_ms = 10000\n\n[[lagg]]\nname = \"lagg0\"\nlaggproto = \"lacp\"\n\
         laggports = [{}]\naddresses = [\"{address}\"]\nlacp_fast_timeout = true\n",
        ports.join(", ")
    )
}

/// A daemon whose status lines arrive on a channel.
struct Daemon {
    _child: Guarded,
    _config: crate::testbed::TempFile,
    lines: Receiver<String>,
}

fn start_xlaggd(bed: &Bed, role: &str, xlaggd: &Path, config_text: &str) -> Result<Daemon> {
    let config = crate::testbed::TempFile::write(
        &format!("xlagg-bench-{}-{role}.toml", bed.id),
        config_text,
    )?;
    let path = config.0.clone();
    let mut cmd = bed.exec(role, xlaggd);
    cmd.arg("--config")
        .arg(&path)
        .arg("--socket")
        .arg(path.with_extension("sock"))
        .args(["--http", "off"])
        .stderr(Stdio::null());
    let mut child = cmd
        .stdout(Stdio::piped())
        .spawn()
        .context("starting xlaggd")?;
    let stdout = child.stdout.take().context("stdout")?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let guard = Guarded::adopt(child);
    match rx.recv_timeout(Duration::from_secs(20)) {
        Ok(line) if line.contains("ready") => Ok(Daemon {
            _child: guard,
            _config: config,
            lines: rx,
        }),
        other => bail!("xlaggd in {role} did not start: {other:?}"),
    }
}

/// Waits until the last status table shows `want` members distributing; returns when.
fn wait_distributing(d: &Daemon, want: usize, limit: Duration) -> Result<Instant> {
    let deadline = Instant::now() + limit;
    let mut count = 0;
    let mut seen = 0;
    while Instant::now() < deadline {
        let Ok(line) = d.lines.recv_timeout(Duration::from_millis(50)) else {
            continue;
        };
        if line.starts_with("lagg") {
            if seen == MEMBERS && count == want {
                return Ok(Instant::now());
            }
            count = 0;
            seen = 0;
        }
        let mut w = line.split_whitespace();
        if let (Some(port), Some(flags)) = (w.next(), w.next()) {
            if port.starts_with("xlm") && flags.starts_with('<') {
                seen += 1;
                if flags.contains("DISTRIBUTING") {
                    count += 1;
                }
            }
        }
    }
    bail!("the appliance never had {want} members distributing within {limit:?}")
}

fn start_ovs(bed: &Bed) -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("xlagg-bench-ovs-{}", bed.id));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let d = dir.display();
    let ns = bed.ns("ptr");
    let bond: Vec<String> = (0..MEMBERS).map(|i| format!("xlp{i}")).collect();
    let script = format!(
        "set -e; ovsdb-tool create {d}/conf.db /usr/share/openvswitch/vswitch.ovsschema; \
         ovsdb-server {d}/conf.db --remote=punix:{d}/db.sock --pidfile={d}/ovsdb.pid --unixctl={d}/ovsdb.ctl --log-file={d}/ovsdb.log --detach; \
         ovs-vsctl --db=unix:{d}/db.sock --no-wait init; \
         ovs-vswitchd unix:{d}/db.sock --pidfile={d}/vswitchd.pid --unixctl={d}/vswitchd.ctl --log-file={d}/vswitchd.log --detach; \
         ovs-vsctl --db=unix:{d}/db.sock add-br br0 -- set bridge br0 datapath_type=netdev; \
         ovs-vsctl --db=unix:{d}/db.sock add-bond br0 bond0 {} lacp=active bond_mode=balance-tcp other_config:lacp-time=fast",
        bond.join(" ")
    );
    let out = Command::new("ip")
        .args(["netns", "exec", &ns, "sh", "-c", &script])
        .output()?;
    if !out.status.success() {
        bail!(
            "starting Open vSwitch: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(dir)
}

fn stop_ovs(dir: &Path) {
    for ctl in ["vswitchd.ctl", "ovsdb.ctl"] {
        let _ = Command::new("ovs-appctl")
            .arg("-t")
            .arg(dir.join(ctl))
            .arg("exit")
            .output();
    }
    let _ = std::fs::remove_dir_all(dir);
}

fn set_partner_links(bed: &Bed, up: bool) -> Result<()> {
    let batch: String = (0..MEMBERS)
        .map(|i| format!("link set xlp{i} {}\n", if up { "up" } else { "down" }))
        .collect();
    let mut child = Command::new("ip")
        .args(["-n", &bed.ns("ptr"), "-batch", "-"])
        .stdin(Stdio::piped())
        .spawn()?;
    std::io::Write::write_all(child.stdin.as_mut().context("stdin")?, batch.as_bytes())?;
    drop(child.stdin.take());
    if !child.wait()?.success() {
        bail!("ip -batch failed");
    }
    Ok(())
}

/// Runs the measurement on its own test bed and prints the figures.
///
/// # Errors
/// Any failing step; the test bed is removed anyway.
pub fn run(partner: Partner, runs: usize, testbed: &Path) -> Result<ConvergenceReport> {
    let xlaggd = crate::testbed::sibling_binary("xlaggd")?;
    let bed = Bed::up(
        testbed,
        &format!("bc{}", std::process::id() % 100_000),
        MEMBERS,
        false,
    )?;
    let ovs = match partner {
        Partner::Ovs => Some(start_ovs(&bed)?),
        Partner::Xlagg => None,
    };
    let result = (|| -> Result<ConvergenceReport> {
        let _partner = match partner {
            Partner::Xlagg => Some(start_xlaggd(
                &bed,
                "ptr",
                &xlaggd,
                &config("xlp", "10.77.0.2/24"),
            )?),
            Partner::Ovs => None,
        };
        let app = start_xlaggd(&bed, "app", &xlaggd, &config("xlm", "10.77.0.1/24"))?;
        wait_distributing(&app, MEMBERS, Duration::from_secs(20))?;
        let mut seconds = Vec::new();
        println!(
            "lacp convergence against {partner:?}: {runs} runs, {MEMBERS} links, fast timeout"
        );
        for run in 1..=runs {
            set_partner_links(&bed, false)?;
            wait_distributing(&app, 0, Duration::from_secs(10))?;
            std::thread::sleep(Duration::from_millis(300));
            let t0 = Instant::now();
            set_partner_links(&bed, true)?;
            let t1 = wait_distributing(&app, MEMBERS, Duration::from_secs(20))?;
            let s = t1.duration_since(t0).as_secs_f64();
            println!("{run:>4} {s:>8.3} s");
            seconds.push(s);
        }
        let spread = Spread::of(&seconds);
        println!(
            "link up -> all distributing: min {:.3} s  median {:.3} s  max {:.3} s (aggregate_wait 2 s; status sampled every 10 ms)",
            spread.min, spread.median, spread.max
        );
        Ok(ConvergenceReport {
            partner,
            seconds,
            spread,
        })
    })();
    if let Some(dir) = ovs {
        stop_ovs(&dir);
    }
    result
}
