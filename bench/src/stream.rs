//! `stream`: one TCP stream out of a host-mode `laggN` while the link of its active member
//! goes down and comes back, again and again: the stream must survive every flap (no reset,
//! every byte delivered), and the longest stall the receiver saw is the figure.
//!
//! The receiver (`stream-sink`, in the partner namespace) reads with a 64 KiB buffer and
//! keeps the longest time between two reads that returned data; the sender (`stream-source`,
//! in the appliance namespace, where the partner's subnet is reached through laggN only)
//! writes for the whole run. The
//! partner takes the member's carrier away by setting its end of the veth down.
//! - `failover`: the master (xlm0) flaps; traffic moves to xlm1 and back to the master;
//! - `lacp`: against Open vSwitch's LACP bond (`balance-tcp`): the member the stream's hash
//!   picked flaps (found from the counters), and the bond and the lagg move it; the next flap
//!   waits until both members distribute again.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::forward::{Guarded, Spread};
use crate::testbed::{sibling_binary, Bed, TempFile};

/// What the receiver saw.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SinkReport {
    /// Bytes received.
    pub bytes: u64,
    /// The longest time between two reads that returned data, in milliseconds.
    pub longest_stall_ms: f64,
    /// Stalls longer than 100 ms.
    pub stalls_over_100ms: u64,
    /// The connection ended with an error (a reset), not an orderly close.
    pub error: Option<String>,
}

/// Accepts one connection on `listen` (prints `ready` first), reads it to its end and prints
/// a [`SinkReport`] as JSON.
///
/// # Errors
/// When the socket cannot be bound or nothing connects within a minute.
pub fn sink(listen: SocketAddr) -> Result<()> {
    let listener = TcpListener::bind(listen).with_context(|| format!("listening on {listen}"))?;
    println!("ready");
    listener.set_nonblocking(true)?;
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut conn = loop {
        match listener.accept() {
            Ok((conn, _)) => break conn,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => return Err(e).context("accepting the stream"),
        }
    };
    conn.set_nonblocking(false)?;
    let mut buf = vec![0u8; 64 * 1024];
    let mut report = SinkReport::default();
    let mut last = Instant::now();
    loop {
        match conn.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                let gap = last.elapsed().as_secs_f64() * 1000.0;
                if report.bytes > 0 {
                    report.longest_stall_ms = report.longest_stall_ms.max(gap);
                    if gap > 100.0 {
                        report.stalls_over_100ms += 1;
                    }
                }
                report.bytes += n as u64;
                last = Instant::now();
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                report.error = Some(e.to_string());
                break;
            }
        }
    }
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}

/// Connects to `to` and writes for `seconds`, then closes; prints the bytes written as JSON.
///
/// # Errors
/// When the connection cannot be made or a write fails (a reset).
pub fn source(to: SocketAddr, seconds: f64) -> Result<()> {
    let mut conn = TcpStream::connect_timeout(&to, Duration::from_secs(5))
        .with_context(|| format!("connecting to {to}"))?;
    let chunk = vec![0x5au8; 64 * 1024];
    let started = Instant::now();
    let mut written = 0u64;
    while started.elapsed().as_secs_f64() < seconds {
        conn.write_all(&chunk)
            .with_context(|| format!("writing after {written} bytes"))?;
        written += chunk.len() as u64;
    }
    conn.shutdown(std::net::Shutdown::Write)?;
    // Wait for the receiver's close, so every byte is acknowledged.
    let mut rest = [0u8; 16];
    let _ = conn.read(&mut rest);
    println!("{{\"written\":{written}}}");
    Ok(())
}

/// One protocol's run.
#[derive(Clone, Debug, Serialize)]
pub struct StreamRun {
    /// `failover` or `lacp`.
    pub proto: String,
    /// Flaps of the active member's link.
    pub flaps: usize,
    /// Bytes the sender wrote.
    pub written: u64,
    /// What the receiver saw.
    pub sink: SinkReport,
    /// Whether the stream survived: no error on either side, every byte delivered.
    pub survived: bool,
}

/// The report.
#[derive(Clone, Debug, Serialize)]
pub struct StreamReport {
    /// One run per protocol.
    pub runs: Vec<StreamRun>,
    /// The longest stall of each run, spread.
    pub longest_stall_ms: Spread,
}

const LAGG_ADDR: &str = "10.77.0.1";
const PARTNER_ADDR: &str = "10.77.0.2";

/// Runs one stream per protocol of `protos` with `flaps` flaps of its active member.
///
/// # Errors
/// A step that could not run; a stream that died is reported, not an error.
pub fn run(protos: &[String], flaps: usize, engine: &str, testbed: &Path) -> Result<StreamReport> {
    let mut runs = Vec::new();
    for proto in protos {
        runs.push(run_one(proto, flaps, engine, testbed)?);
    }
    let longest = Spread::of(
        &runs
            .iter()
            .map(|r| r.sink.longest_stall_ms)
            .collect::<Vec<_>>(),
    );
    println!("TCP stream out of lagg0 while its active member's link flaps ({flaps} flaps each)");
    println!(
        "{:>10} {:>12} {:>14} {:>12} {:>9}",
        "proto", "MB", "longest stall", ">100 ms", "survived"
    );
    for r in &runs {
        println!(
            "{:>10} {:>12.1} {:>11.1} ms {:>12} {:>9}",
            r.proto,
            r.sink.bytes as f64 / 1e6,
            r.sink.longest_stall_ms,
            r.sink.stalls_over_100ms,
            r.survived
        );
    }
    Ok(StreamReport {
        runs,
        longest_stall_ms: longest,
    })
}

fn run_one(proto: &str, flaps: usize, engine: &str, testbed: &Path) -> Result<StreamRun> {
    let lacp = proto == "lacp";
    let bed = Bed::up(
        testbed,
        &format!("st{}", std::process::id() % 100_000),
        2,
        !lacp,
    )?;
    let _ovs = if lacp {
        Some(crate::tcp::OvsPartner::start_bond(&bed)?)
    } else {
        None
    };
    let extra = if lacp {
        "lacp_fast_timeout = true\n"
    } else {
        ""
    };
    let config = format!(
        "[daemon]\nlink_poll_ms = 10000\n\n[[lagg]]\nname = \"lagg0\"\nlaggproto = \"{proto}\"\n\
         laggports = [\"xlm0\", \"xlm1\"]\naddresses = [\"{LAGG_ADDR}/24\"]\nengine = \"{engine}\"\n{extra}"
    );
    let config = TempFile::write(&format!("xlagg-stream-{}.toml", bed.id), &config)?;
    let socket = config.0.with_extension("sock");
    let mut cmd = bed.exec("app", &sibling_binary("xlaggd")?);
    cmd.arg("--config")
        .arg(&config.0)
        .arg("--socket")
        .arg(&socket)
        .args(["--http", "off"])
        .stderr(Stdio::null());
    let _daemon = Guarded::spawn_ready(cmd, "xlaggd")?;
    if lacp {
        crate::tcp::wait_distributing(&bed, &socket, 2)?;
    }
    let exe: PathBuf = std::env::current_exe()?;
    let mut sink = bed.exec("ptr", &exe);
    sink.args(["stream-sink", "--listen", &format!("{PARTNER_ADDR}:5301")])
        .stdout(Stdio::piped());
    let mut sink = Guarded::adopt(sink.spawn().context("starting the stream sink")?);
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(
        sink.stdout().context("sink stdout")?,
    ));
    match lines.next() {
        Some(Ok(l)) if l.contains("ready") => {}
        other => bail!("the stream sink did not start: {other:?}"),
    }
    let seconds = 3.0 + flaps as f64 * if lacp { 3.5 } else { 1.5 };
    let source = bed
        .exec("app", &exe)
        .args([
            "stream-source",
            "--connect",
            &format!("{PARTNER_ADDR}:5301"),
            "--seconds",
            &seconds.to_string(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting the stream source")?;
    std::thread::sleep(Duration::from_secs(1));
    for _ in 0..flaps {
        let port = if lacp {
            busiest_partner_port(&bed)?
        } else {
            "xlp0".to_string()
        };
        bed.set_link("ptr", &port, false)?;
        std::thread::sleep(Duration::from_millis(500));
        bed.set_link("ptr", &port, true)?;
        // The next flap once the lagg is whole again (LACP: 802.1AX waits 2 s before a port
        // that came back aggregates).
        if lacp {
            crate::tcp::wait_distributing(&bed, &socket, 2)?;
        }
        std::thread::sleep(Duration::from_millis(1000));
    }
    let out = source.wait_with_output().context("the stream source")?;
    if !out.status.success() {
        bail!(
            "{proto}: the stream source failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let written: u64 = serde_json::from_slice::<serde_json::Value>(&out.stdout)
        .ok()
        .and_then(|v| v["written"].as_u64())
        .unwrap_or(0);
    let report: SinkReport = match lines.next() {
        Some(Ok(l)) => serde_json::from_str(&l).context("the sink's report")?,
        other => bail!("the stream sink printed no report: {other:?}"),
    };
    drop(sink);
    let survived = report.error.is_none() && report.bytes == written;
    Ok(StreamRun {
        proto: proto.to_string(),
        flaps,
        written,
        sink: report,
        survived,
    })
}

/// The partner port that received the most frames in the last 200 ms: where the stream is.
fn busiest_partner_port(bed: &Bed) -> Result<String> {
    let count = || -> Result<Vec<(String, u64)>> {
        Ok(bed
            .packet_counters("ptr")?
            .into_iter()
            .filter(|(n, _, _)| n.starts_with("xlp"))
            .map(|(n, rx, _)| (n, rx))
            .collect())
    };
    let before = count()?;
    std::thread::sleep(Duration::from_millis(200));
    let after = count()?;
    after
        .iter()
        .map(|(n, a)| {
            let b = before.iter().find(|(m, _)| m == n).map_or(0, |x| x.1);
            (n.clone(), a - b)
        })
        .max_by_key(|(_, d)| *d)
        .map(|(n, _)| n)
        .context("no partner port")
}
