//! `switchover --saturate`: the master's carrier loss while the generator runs flat out,
//! for either engine: the time from the carrier loss to the first test frame on the backup,
//! stamped by the sink's XDP program itself (no packet socket, no per-frame userspace work),
//! over repeated flaps, and the frames that went missing meanwhile (the delivered rate times
//! that gap: failover drops what it sends to a port whose carrier is gone until it switches).
//!
//! The partner's sink (`flapsink`, in the partner namespace) takes `arm` and `read` commands
//! on its standard input: `arm` resets every port's stamp and arms it at the current
//! CLOCK_MONOTONIC time, `read` prints every port's first test frame since (or null). This
//! process reads the same clock right after cutting the carrier (`ip link set xlp0 down` on
//! the partner side, whose own duration is reported too).

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{ChildStdin, ChildStdout, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::Serialize;
use xlagg_dataplane::xdp::{PortProgram, ProgramKind};
use xlagg_sys::afpacket::monotonic_ns;

use crate::forward::{Guarded, Spread};
use crate::testbed::Bed;
use crate::xdpgen::Engine;

/// One carrier loss at saturation.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct SaturatedFlap {
    /// Milliseconds from the master's last test frame to the backup's first, both stamped by
    /// the sink: the outage the receiver sees.
    pub gap_ms: f64,
    /// Milliseconds from the `ip link set down` command's return to the backup's first test
    /// frame (0 when it came even earlier).
    pub switchover_ms: f64,
    /// The same from the command's start (an upper bound).
    pub upper_bound_ms: f64,
    /// Frames lost: the generator's sequence numbers between the master's last frame and
    /// the backup's first.
    pub lost: u64,
    /// Those frames in milliseconds of the generator's rate (the outage as the traffic saw
    /// it, whatever the generator's own pauses).
    pub lost_ms: f64,
    /// Milliseconds the `ip link set down` command took.
    pub ip_ms: f64,
    /// Milliseconds from the carrier's return to the master's first test frame (failover
    /// returns to it).
    pub return_ms: f64,
    /// The longest run of frames lost on the master in the 100 ms before this flap, with no
    /// carrier change: what the engine loses at this load anyway (frames the generator
    /// numbered that never reached the partner because the lagg could not take them).
    pub steady_lost: u64,
}

/// The report.
#[derive(Debug, Serialize)]
pub struct SaturatedReport {
    /// `afxdp` or `xdp`.
    pub engine: String,
    /// The generator that ran: `xdp` (in-kernel live frames) or `afxdp`.
    pub generator: Engine,
    /// The generator's pace (frames per second), or none: flat out.
    pub offered_pps: Option<u64>,
    /// Frames per second delivered to the partner, over the whole run.
    pub delivered_pps: f64,
    /// Frames per second the generator numbered, over the whole run.
    pub generated_pps: f64,
    /// Frames lost per flap, spread.
    pub lost: Spread,
    /// Flaps that lost at most the generator's rate times 1 ms.
    pub lost_under_1ms: usize,
    /// Every flap.
    pub flaps: Vec<SaturatedFlap>,
    /// Gap spread, ms.
    pub gap_ms: Spread,
    /// Switchover spread, ms.
    pub switchover_ms: Spread,
    /// Upper-bound spread, ms.
    pub upper_bound_ms: Spread,
    /// Flaps whose gap stayed below 1 ms.
    pub under_1ms: usize,
    /// The longest run of frames lost in 100 ms without a flap, before each flap, spread: the
    /// floor under `lost` at this load.
    pub steady_lost: Spread,
    /// Flaps that lost at most the generator's rate times 1 ms more than the longest run lost
    /// in the 100 ms before them without a flap.
    pub excess_under_1ms: usize,
    /// Times the data path left a member whose carrier never went (the backups'
    /// `data_path_leaves`). Each moves the member's traffic for up to a second; it should
    /// be 0.
    pub healthy_marked: usize,
}

const MEMBERS: usize = 4;

/// The sink of `flapsink`: sink programs on `ifaces` serving `arm`/`read` on stdin/stdout
/// until it closes; then prints the frames each port received.
///
/// # Errors
/// When a program cannot be attached or a map read fails.
pub fn flapsink(ifaces: &[String]) -> Result<()> {
    let mut programs = Vec::new();
    for name in ifaces {
        let ifindex = crate::testbed::ifindex(name)?;
        programs.push(PortProgram::attach(name, ifindex, ProgramKind::Sink)?);
    }
    println!("ready");
    let stdin = std::io::stdin();
    let mut out = std::io::stdout().lock();
    for line in stdin.lock().lines() {
        match line?.trim() {
            "arm" => {
                // Any frame the sink sees after this write counts (no clock compared).
                for p in &mut programs {
                    p.arm_first_seen()?;
                }
                writeln!(out, "armed")?;
            }
            "read" => {
                let firsts = programs
                    .iter()
                    .map(PortProgram::first_seen)
                    .collect::<Result<Vec<_>, _>>()?;
                writeln!(out, "{}", serde_json::to_string(&firsts)?)?;
            }
            other => bail!("flapsink: unknown command '{other}' (arm, read)"),
        }
        out.flush()?;
    }
    let frames = programs
        .iter()
        .map(|p| {
            p.sink_stats()
                .map(|s| s[xlagg_common::SinkCounter::Test as usize])
        })
        .collect::<Result<Vec<_>, _>>()?;
    writeln!(out, "{}", serde_json::to_string(&frames)?)?;
    Ok(())
}

/// The running `flapsink` child's pipes.
struct SinkControl {
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl SinkControl {
    fn ask(&mut self, command: &str) -> Result<String> {
        writeln!(self.stdin, "{command}")?;
        self.stdin.flush()?;
        let mut line = String::new();
        if self.stdout.read_line(&mut line)? == 0 {
            bail!("the sink ended");
        }
        Ok(line)
    }

    fn arm(&mut self) -> Result<()> {
        self.ask("arm").map(|_| ())
    }

    /// `port`'s `[first, last, first's sequence number, last's, largest jump]` (first 0: none
    /// since armed).
    fn seen(&mut self, port: usize) -> Result<[u64; 5]> {
        let seen: Vec<[u64; 5]> = serde_json::from_str(&self.ask("read")?)?;
        seen.get(port).copied().context("the sink has no such port")
    }

    /// Polls until `port` has a first test frame (at most 2 s); its time and sequence number.
    fn wait_first(&mut self, port: usize) -> Result<(u64, u64)> {
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            let [first, _, first_seq, _, _] = self.seen(port)?;
            if first != 0 {
                return Ok((first, first_seq));
            }
            if Instant::now() > deadline {
                bail!("no test frame reached xlp{port} within 2 s");
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

/// Sets the master's partner end down or up with an ordinary `ip` (SCHED_OTHER, as `chrt -o`
/// makes sure): frames lost are counted by sequence numbers, so the command's own wait for a
/// core is not counted, and a real-time `ip` would take the core from the lagg instead.
fn flap(bed: &Bed, up: bool) -> Result<()> {
    let ns = bed.ns("ptr");
    let state = if up { "up" } else { "down" };
    let out = std::process::Command::new("chrt")
        .args(["-o", "0", "ip", "-n", &ns, "link", "set", "xlp0", state])
        .output()
        .context("running chrt ip")?;
    if !out.status.success() {
        bail!(
            "ip link set xlp0 {state}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// Runs `flaps` carrier losses of failover's master with the generator flat out (or paced at
/// `pps` by an AF_XDP generator, which paces per batch), on its own test bed, with the lagg on
/// `engine` and `extra` lines in its configuration.
///
/// # Errors
/// Any failing step; the test bed is removed anyway.
pub fn run(
    engine: &str,
    extra: &str,
    flaps: usize,
    pps: Option<u64>,
    testbed: &Path,
) -> Result<SaturatedReport> {
    if !["afxdp", "xdp"].contains(&engine) {
        bail!("--engine: '{engine}' is not an engine: use afxdp or xdp");
    }
    let exe = std::env::current_exe()?;
    let bed = Bed::up(
        testbed,
        &format!("bf{}", std::process::id() % 100_000),
        MEMBERS,
        false,
    )?;
    let (_daemon, config) = crate::switchover::start_daemon(
        &bed,
        "failover",
        &format!("engine = \"{engine}\"\n{extra}\n"),
    )?;

    let partner: Vec<String> = (0..MEMBERS).map(|i| format!("xlp{i}")).collect();
    let mut sink = bed.exec("ptr", &exe);
    sink.args(["flapsink", "--ifaces", &partner.join(",")])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped());
    let mut child = sink.spawn().context("starting the sink")?;
    let mut control = SinkControl {
        stdin: child.stdin.take().context("sink stdin")?,
        stdout: BufReader::new(child.stdout.take().context("sink stdout")?),
    };
    let mut ready = String::new();
    control.stdout.read_line(&mut ready)?;
    if ready.trim() != "ready" {
        bail!("the sink did not start: {ready}");
    }
    // The generator runs until the last flap is done (then it is stopped).
    let seconds = 10.0 + flaps as f64 * 3.0;
    let (rate, generator) = match pps {
        Some(pps) => (pps.to_string(), Engine::Afxdp),
        None => ("0".to_string(), Engine::Auto.resolve()),
    };
    let mut gen = bed.exec("src", &exe);
    gen.args([
        "generate",
        "--iface",
        "xls0",
        "--flows",
        "64",
        "--seconds",
        &seconds.to_string(),
        "--core",
        "0",
        "--pps",
        &rate,
        "--size",
        "64",
        "--engine",
        generator.name(),
    ])
    .stdout(Stdio::null());
    let generator_kind = generator;
    let generator = Guarded::adopt(gen.spawn().context("starting the generator")?);
    std::thread::sleep(Duration::from_secs(1));
    let (p0, t0) = (crate::suite::partner_frames(&bed)?, Instant::now());
    // The generator's rate, from the sequence numbers the master sees over the run.
    control.arm()?;
    std::thread::sleep(Duration::from_millis(50));
    let [_, start_ns, _, start_seq, _] = control.seen(0)?;
    let mut results = Vec::new();
    for _ in 0..flaps {
        // What the master loses with nothing changing, just before the flap.
        control.arm()?;
        std::thread::sleep(Duration::from_millis(100));
        let [.., steady] = control.seen(0)?;
        control.arm()?;
        let before = monotonic_ns();
        flap(&bed, false)?;
        let after = monotonic_ns();
        let (at, at_seq) = control.wait_first(1)?;
        // The master's last frame (none since armed: the cut came first, count from the arm)
        // and its sequence number: the generator numbers every frame, so the frames lost are
        // the numbers between, whatever the generator's own pace.
        let [first0, last0, _, last_seq, _] = control.seen(0)?;
        let last = if first0 == 0 { before } else { last0 };
        let lost = at_seq.saturating_sub(last_seq + 1);
        std::thread::sleep(Duration::from_millis(200));
        control.arm()?;
        flap(&bed, true)?;
        let up = monotonic_ns();
        let (back, _) = control.wait_first(0)?;
        std::thread::sleep(Duration::from_millis(200));
        eprintln!(
            "flap {}: backup's first frame {:.3} ms after the cut began, master's last {:.3} ms after it began, {lost} frames lost ({steady} at most in 100 ms before it), master's first {:.3} ms after it returned",
            results.len() + 1,
            at.saturating_sub(before) as f64 / 1e6,
            (last as f64 - before as f64) / 1e6,
            back.saturating_sub(up) as f64 / 1e6
        );
        results.push((before, after, at, up, back, last, lost, steady));
    }
    let delivered_pps =
        (crate::suite::partner_frames(&bed)? - p0) as f64 / t0.elapsed().as_secs_f64();
    let [_, end_ns, _, end_seq, _] = control.seen(0)?;
    let generated_pps = end_seq.saturating_sub(start_seq) as f64
        / (end_ns.saturating_sub(start_ns).max(1) as f64 / 1e9);
    drop(generator);
    // Closing its input ends the sink; it prints its frame counts last, so read them before
    // it exits (closing the pipe first made it fail writing them).
    let SinkControl { stdin, mut stdout } = control;
    drop(stdin);
    let mut rest = String::new();
    let _ = std::io::Read::read_to_string(&mut stdout, &mut rest);
    let _ = child.wait();
    let healthy_marked = healthy_marked(&config.0.with_extension("sock"))?;
    let flaps: Vec<SaturatedFlap> = results
        .iter()
        .map(|&(before, after, at, up, back, last, lost, steady)| {
            let upper = at.saturating_sub(before) as f64 / 1e6;
            let gap = at.saturating_sub(last) as f64 / 1e6;
            SaturatedFlap {
                gap_ms: gap,
                switchover_ms: at.saturating_sub(after) as f64 / 1e6,
                upper_bound_ms: upper,
                lost,
                lost_ms: lost as f64 / generated_pps * 1e3,
                ip_ms: (after - before) as f64 / 1e6,
                return_ms: back.saturating_sub(up) as f64 / 1e6,
                steady_lost: steady,
            }
        })
        .collect();
    let switchover_ms = Spread::of(&flaps.iter().map(|f| f.switchover_ms).collect::<Vec<_>>());
    let upper_bound_ms = Spread::of(&flaps.iter().map(|f| f.upper_bound_ms).collect::<Vec<_>>());
    let gap_ms = Spread::of(&flaps.iter().map(|f| f.gap_ms).collect::<Vec<_>>());
    let under_1ms = flaps.iter().filter(|f| f.gap_ms < 1.0).count();
    let lost = Spread::of(&flaps.iter().map(|f| f.lost as f64).collect::<Vec<_>>());
    let lost_under_1ms = flaps.iter().filter(|f| f.lost_ms <= 1.0).count();
    let steady_lost = Spread::of(
        &flaps
            .iter()
            .map(|f| f.steady_lost as f64)
            .collect::<Vec<_>>(),
    );
    let per_ms = generated_pps / 1e3;
    let excess_under_1ms = flaps
        .iter()
        .filter(|f| f.lost.saturating_sub(f.steady_lost) as f64 <= per_ms)
        .count();
    let offered = match pps {
        Some(pps) => format!("generator paced at {pps} fps"),
        None => "generator flat out".to_string(),
    };
    println!(
        "switchover at saturation, engine {engine}, failover over {MEMBERS} members, {offered}: {:.3} Mpps generated, {:.3} Mpps delivered, {} carrier losses",
        generated_pps / 1e6,
        delivered_pps / 1e6,
        flaps.len()
    );
    println!(
        "{:>4} {:>8} {:>9} {:>8} {:>8} {:>12} {:>12} {:>8} {:>10}",
        "flap",
        "lost",
        "lost ms",
        "steady",
        "gap ms",
        "after ip ms",
        "upper bound",
        "ip ms",
        "return ms"
    );
    for (i, f) in flaps.iter().enumerate() {
        println!(
            "{:>4} {:>8} {:>9.3} {:>8} {:>8.3} {:>12.3} {:>12.3} {:>8.3} {:>10.3}",
            i + 1,
            f.lost,
            f.lost_ms,
            f.steady_lost,
            f.gap_ms,
            f.switchover_ms,
            f.upper_bound_ms,
            f.ip_ms,
            f.return_ms
        );
    }
    println!(
        "frames lost per flap: min {:.0} median {:.0} max {:.0}; {} of {} at most 1 ms of the generator's rate ({:.0} frames)",
        lost.min,
        lost.median,
        lost.max,
        lost_under_1ms,
        flaps.len(),
        per_ms
    );
    println!(
        "without a flap (the 100 ms before each): longest run of frames lost min {:.0} median {:.0} max {:.0}; \
         {} of {} flaps lost at most 1 ms of the generator's rate more than that",
        steady_lost.min,
        steady_lost.median,
        steady_lost.max,
        excess_under_1ms,
        flaps.len()
    );
    println!(
        "members left by the data path though their carrier never went: {healthy_marked} (should be 0)"
    );
    println!(
        "gap ms (master's last frame to backup's first, at the sink; includes the generator's own pauses): \
         min {:.3} median {:.3} max {:.3}; {} of {} under 1 ms; from the ip command's return: median {:.3} max {:.3}; \
         from its start: median {:.3} max {:.3}",
        gap_ms.min,
        gap_ms.median,
        gap_ms.max,
        under_1ms,
        flaps.len(),
        switchover_ms.median,
        switchover_ms.max,
        upper_bound_ms.median,
        upper_bound_ms.max,
    );
    Ok(SaturatedReport {
        engine: engine.to_string(),
        generator: generator_kind,
        offered_pps: pps,
        delivered_pps,
        generated_pps,
        lost,
        lost_under_1ms,
        flaps,
        gap_ms,
        switchover_ms,
        upper_bound_ms,
        under_1ms,
        steady_lost,
        excess_under_1ms,
        healthy_marked,
    })
}

/// How often the data path left a member other than the master (`data_path_leaves` of the
/// backups in the status), from `xlaggctl -j` on the daemon's `socket`.
fn healthy_marked(socket: &Path) -> Result<usize> {
    let xlaggctl = crate::testbed::sibling_binary("xlaggctl")?;
    let out = std::process::Command::new(&xlaggctl)
        .arg("--socket")
        .arg(socket)
        .arg("-j")
        .output()
        .context("running xlaggctl -j")?;
    if !out.status.success() {
        bail!("xlaggctl -j: {}", String::from_utf8_lossy(&out.stderr));
    }
    let status: serde_json::Value =
        serde_json::from_slice(&out.stdout).context("xlaggctl -j is not JSON")?;
    let ports = status[0]["ports"]
        .as_array()
        .context("no ports in the status")?;
    Ok(ports
        .iter()
        .filter(|p| p["name"] != "xlm0")
        .map(|p| p["data_path_leaves"].as_u64().unwrap_or(0) as usize)
        .sum())
}
