//! `soak`: a lagg's ordinary life, compressed. Traffic runs through a forward-mode loadbalance
//! lagg in segments of a few seconds; in each, one thing happens that happens to an appliance:
//! - `change`: a change through the HTTP API that applies in place (a description);
//! - `flap`: a member's carrier drops on the partner side and returns;
//! - `membership`: a member leaves through the API and joins again;
//! - `restart`: the daemon is stopped (SIGTERM) and started again.
//!
//! At the sink (an AF_PACKET socket per partner port, timestamps on CLOCK_MONOTONIC) every
//! sequence number is accounted for: a frame that never arrived is lost inside the event's
//! window (from its start to its end plus [`WINDOW_TAIL`]) or outside it, where nothing may be
//! lost; per flow, arrival order must follow sequence order everywhere. The daemon's resident
//! memory and open descriptors are read after every segment and must stay flat within each
//! daemon's life. It fails (non-zero exit) when any of that does not hold.

use std::collections::BTreeMap;
use std::io::BufRead as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::Serialize;
use xlagg_sys::afpacket::monotonic_ns;

use crate::packet_tools::{SinkReport, TimestampSink};
use crate::testbed::{sibling_binary, Bed, TempFile};

/// How long after an event's end frames may still be lost to it (the sender's frames in flight
/// to a member that left, the daemon's first table after a start).
pub const WINDOW_TAIL: Duration = Duration::from_millis(300);
/// Resident memory a daemon may gain over its life in the soak, kB.
pub const RSS_SLACK_KB: u64 = 8 << 10;

const MEMBERS: usize = 3;
const HTTP: &str = "127.0.0.1:8474";

/// What a soak runs.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct SoakOptions {
    /// Total time, seconds.
    pub seconds: u64,
    /// Offered rate, frames per second.
    pub pps: u64,
    /// Flows.
    pub flows: u32,
    /// Segment length, seconds.
    pub segment_seconds: u64,
    /// The daemon restarts every this many segments (0: never).
    pub restart_every: usize,
}

/// One segment's outcome.
#[derive(Clone, Debug, Serialize)]
pub struct Segment {
    /// Which event.
    pub event: &'static str,
    /// Frames sent.
    pub sent: u64,
    /// Frames received.
    pub received: u64,
    /// Lost inside the event's window.
    pub lost_in_window: u64,
    /// Lost outside it.
    pub lost_outside: u64,
    /// Frames that arrived after a later frame of their flow.
    pub reordered: u64,
    /// Frames the sink's own sockets dropped (a loss of the tool, not the lagg).
    pub sink_dropped: u64,
    /// The event's window, ms.
    pub window_ms: f64,
    /// The daemon's resident memory after the segment, kB.
    pub rss_kb: u64,
    /// Its open descriptors after the segment.
    pub fds: u64,
    /// Which daemon (counts restarts).
    pub daemon: usize,
}

/// The whole soak.
#[derive(Debug, Serialize)]
pub struct SoakReport {
    /// What ran.
    pub options: SoakOptions,
    /// Every segment.
    pub segments: Vec<Segment>,
    /// What failed, one line each (empty: passed).
    pub failures: Vec<String>,
}

/// xlaggd in the appliance namespace.
struct Xlaggd {
    child: Child,
    token: String,
}

impl Xlaggd {
    fn start(bed: &Bed, config: &Path, token_file: &Path) -> Result<Xlaggd> {
        let xlaggd = sibling_binary("xlaggd")?;
        let mut cmd = bed.exec("app", &xlaggd);
        cmd.arg("--config")
            .arg(config)
            .arg("--socket")
            .arg(config.with_extension("sock"))
            .args(["--http", HTTP, "--token-file"])
            .arg(token_file)
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut child = cmd.spawn().context("starting xlaggd")?;
        let out = child.stdout.take().context("stdout")?;
        let mut lines = std::io::BufReader::new(out).lines();
        match lines.next() {
            Some(Ok(l)) if l.contains("ready") => {
                std::thread::spawn(move || for _ in lines.by_ref() {});
            }
            other => {
                let _ = child.kill();
                bail!("xlaggd did not start: {other:?}");
            }
        }
        let token = std::fs::read_to_string(token_file)
            .context("the token file")?
            .trim()
            .to_string();
        Ok(Xlaggd { child, token })
    }

    fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident kB and open descriptors.
    fn usage(&self) -> (u64, u64) {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        let rss = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let fds = std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .map(|d| d.count() as u64)
            .unwrap_or(0);
        (rss, fds)
    }

    /// ifconfig words through the HTTP API (curl in the appliance namespace).
    fn ifconfig(&self, bed: &Bed, words: &[&str]) -> Result<()> {
        let body = serde_json::json!({ "args": words }).to_string();
        let out = bed
            .exec("app", Path::new("curl"))
            .args([
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "-X",
                "POST",
                "-H",
                &format!("Authorization: Bearer {}", self.token),
                "-d",
                &body,
                &format!("http://{HTTP}/api/v1/laggs/lagg0/ifconfig"),
            ])
            .output()
            .context("curl")?;
        let code = String::from_utf8_lossy(&out.stdout);
        if code != "200" {
            bail!("the API answered {code} to {words:?}");
        }
        Ok(())
    }
}

/// Which events the segments cycle through.
fn event_of(i: usize, restart_every: usize) -> &'static str {
    if restart_every > 0 && (i + 1).is_multiple_of(restart_every) {
        return "restart";
    }
    ["change", "flap", "membership"][i % 3]
}

/// Runs the soak on its own test bed, printing a line per segment.
///
/// # Errors
/// A step that could not run (the verdict is in the report's `failures`).
pub fn run(options: SoakOptions, testbed: &Path) -> Result<SoakReport> {
    let exe = std::env::current_exe()?;
    let bed = Bed::up(
        testbed,
        &format!("sk{}", std::process::id() % 100_000),
        MEMBERS,
        false,
    )?;
    let ports: Vec<String> = (0..MEMBERS).map(|i| format!("\"xlm{i}\"")).collect();
    let config = format!(
        "[daemon]\nlink_poll_ms = 10000\n\n[[lagg]]\nname = \"lagg0\"\nlaggproto = \"loadbalance\"\nlaggports = [{}]\n\
         upper = \"forward\"\nforward_port = \"xld0\"\n",
        ports.join(", ")
    );
    let config = TempFile::write(&format!("xlagg-soak-{}.toml", bed.id), &config)?;
    let token = TempFile(config.0.with_extension("token"));
    let _backup = TempFile({
        let mut name = config.0.as_os_str().to_owned();
        name.push(".bak");
        name.into()
    });
    let mut daemon = Some(Xlaggd::start(&bed, &config.0, &token.0)?);
    let mut daemons = 0usize;
    let partner: Vec<String> = (0..MEMBERS).map(|i| format!("xlp{i}")).collect();
    let segments = (options.seconds / options.segment_seconds.max(1)).max(1) as usize;
    let per_flow = (options.pps * options.segment_seconds / u64::from(options.flows.max(1))) as u32;
    let mut report = SoakReport {
        options,
        segments: Vec::new(),
        failures: Vec::new(),
    };
    println!(
        "soak: {segments} segments of {} s at {} frames/s over {} flows, loadbalance over {MEMBERS} members",
        options.segment_seconds, options.pps, options.flows
    );
    println!(
        "{:>3} {:>10} {:>8} {:>8} {:>7} {:>8} {:>9} {:>9} {:>8} {:>4}",
        "seg",
        "event",
        "sent",
        "received",
        "lost in",
        "lost out",
        "reordered",
        "window ms",
        "rss kB",
        "fds"
    );
    for i in 0..segments {
        let event = event_of(i, options.restart_every);
        let sink = TimestampSink::start(&bed, &partner)?;
        let mut sender = bed.exec("src", &exe);
        sender
            .args([
                "send",
                "--iface",
                "xls0",
                "--flows",
                &options.flows.to_string(),
                "--per-flow",
                &per_flow.to_string(),
                "--pps",
                &options.pps.to_string(),
            ])
            .stdout(Stdio::null());
        let mut sender = sender.spawn().context("starting the sender")?;
        let third = Duration::from_millis(options.segment_seconds * 1000 / 3);
        std::thread::sleep(third);
        let start = monotonic_ns();
        match event {
            "change" => {
                let d = daemon.as_ref().context("daemon")?;
                d.ifconfig(&bed, &["description", &format!("soak-{i}")])?;
            }
            "flap" => {
                bed.set_link("ptr", "xlp1", false)?;
                std::thread::sleep(Duration::from_secs(1));
                bed.set_link("ptr", "xlp1", true)?;
            }
            "membership" => {
                let d = daemon.as_ref().context("daemon")?;
                d.ifconfig(&bed, &["-laggport", "xlm2"])?;
                std::thread::sleep(Duration::from_secs(1));
                d.ifconfig(&bed, &["laggport", "xlm2"])?;
            }
            _ => {
                if let Some(d) = daemon.take() {
                    d.stop();
                }
                daemon = Some(Xlaggd::start(&bed, &config.0, &token.0)?);
                daemons += 1;
            }
        }
        let end = monotonic_ns() + WINDOW_TAIL.as_nanos() as u64;
        if !sender.wait()?.success() {
            bail!("the sender failed");
        }
        std::thread::sleep(Duration::from_millis(300));
        let capture = sink.finish()?;
        let sent = u64::from(per_flow) * u64::from(options.flows);
        let mut seg = judge(&capture, sent, options.flows, (start, end), event);
        let d = daemon.as_ref().context("daemon")?;
        (seg.rss_kb, seg.fds) = d.usage();
        seg.daemon = daemons;
        println!(
            "{:>3} {:>10} {:>8} {:>8} {:>7} {:>8} {:>9} {:>9.0} {:>8} {:>4}",
            i + 1,
            event,
            seg.sent,
            seg.received,
            seg.lost_in_window,
            seg.lost_outside,
            seg.reordered,
            seg.window_ms,
            seg.rss_kb,
            seg.fds
        );
        if seg.lost_outside > 0 && seg.sink_dropped == 0 {
            report.failures.push(format!(
                "segment {} ({event}): {} frames lost outside the event's window",
                i + 1,
                seg.lost_outside
            ));
        }
        if seg.reordered > 0 {
            report.failures.push(format!(
                "segment {} ({event}): {} frames reordered",
                i + 1,
                seg.reordered
            ));
        }
        report.segments.push(seg);
    }
    if let Some(d) = daemon.take() {
        d.stop();
    }
    // Memory and descriptors flat within each daemon's life (its first segment is warm-up).
    let mut by_daemon: BTreeMap<usize, Vec<&Segment>> = BTreeMap::new();
    for s in &report.segments {
        by_daemon.entry(s.daemon).or_default().push(s);
    }
    for (d, segs) in by_daemon {
        let (Some(first), Some(last)) = (segs.get(1).or(segs.first()), segs.last()) else {
            continue;
        };
        if last.rss_kb > first.rss_kb + RSS_SLACK_KB {
            report.failures.push(format!(
                "daemon {d}: resident memory grew from {} kB to {} kB",
                first.rss_kb, last.rss_kb
            ));
        }
        if last.fds > first.fds {
            report.failures.push(format!(
                "daemon {d}: open descriptors grew from {} to {}",
                first.fds, last.fds
            ));
        }
    }
    let lost_in: u64 = report.segments.iter().map(|s| s.lost_in_window).sum();
    let sent: u64 = report.segments.iter().map(|s| s.sent).sum();
    println!(
        "{} frames sent; {lost_in} lost inside event windows, {} outside; {} reordered",
        sent,
        report.segments.iter().map(|s| s.lost_outside).sum::<u64>(),
        report.segments.iter().map(|s| s.reordered).sum::<u64>()
    );
    if report.failures.is_empty() {
        println!("soak passed");
    } else {
        for f in &report.failures {
            println!("FAILED: {f}");
        }
    }
    Ok(report)
}

/// Accounts for every sequence number of a segment: received, lost in `window` (CLOCK_MONOTONIC
/// ns; a missing frame's time is interpolated from its received neighbours) or lost outside
/// it; and counts, per flow, frames that arrived after a later one.
pub fn judge(
    capture: &SinkReport,
    sent: u64,
    flows: u32,
    window: (u64, u64),
    event: &'static str,
) -> Segment {
    let mut arrivals: Vec<(u64, u32, u64)> = capture
        .ports
        .iter()
        .flat_map(|p| p.arrivals.iter().copied())
        .collect();
    arrivals.sort_by_key(|a| a.2);
    let mut reordered = 0u64;
    let mut last = vec![None::<u64>; flows.max(1) as usize];
    for &(seq, flow, _) in &arrivals {
        let slot = &mut last[(flow % flows.max(1)) as usize];
        match *slot {
            Some(prev) if seq < prev => reordered += 1,
            _ => *slot = Some(seq),
        }
    }
    let mut at: Vec<Option<u64>> = vec![None; sent as usize];
    for &(seq, _, t) in &arrivals {
        if let Some(slot) = at.get_mut(seq as usize) {
            slot.get_or_insert(t);
        }
    }
    let received = at.iter().filter(|t| t.is_some()).count() as u64;
    let (mut lost_in, mut lost_out) = (0u64, 0u64);
    let mut before: Option<u64> = None;
    for (i, t) in at.iter().enumerate() {
        match t {
            Some(t) => before = Some(*t),
            None => {
                let after = at[i..].iter().flatten().next().copied();
                let guess = match (before, after) {
                    (Some(b), Some(a)) => b / 2 + a / 2,
                    (Some(b), None) => b,
                    (None, Some(a)) => a,
                    (None, None) => window.0,
                };
                if guess >= window.0 && guess <= window.1 {
                    lost_in += 1;
                } else {
                    lost_out += 1;
                }
            }
        }
    }
    Segment {
        event,
        sent,
        received,
        lost_in_window: lost_in,
        lost_outside: lost_out,
        reordered,
        sink_dropped: capture.ports.iter().map(|p| p.sink_dropped).sum(),
        window_ms: window.1.saturating_sub(window.0) as f64 / 1e6,
        rss_kb: 0,
        fds: 0,
        daemon: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet_tools::PortCapture;

    fn capture(arrivals: Vec<(u64, u32, u64)>) -> SinkReport {
        SinkReport {
            ports: vec![PortCapture {
                arrivals,
                ..PortCapture::default()
            }],
        }
    }

    #[test]
    fn losses_are_placed_by_time_and_reorderings_counted_per_flow() {
        // Ten frames of two flows, one every 10 ns from 100; 3 is lost at ~130 (inside the
        // window 125..135), 8 at ~180 (outside); 5 arrives after 6 (same flow 1).
        let arrivals = vec![
            (0, 0, 100),
            (1, 1, 110),
            (2, 0, 120),
            (4, 0, 140),
            (6, 0, 160),
            (5, 1, 161),
            (7, 1, 170),
            (9, 1, 190),
        ];
        let s = judge(&capture(arrivals), 10, 2, (125, 135), "flap");
        assert_eq!((s.received, s.lost_in_window, s.lost_outside), (8, 1, 1));
        assert_eq!(s.reordered, 0, "5 and 6 are different flows");
        let arrivals = vec![
            (0, 0, 100),
            (2, 0, 110),
            (1, 1, 120),
            (4, 0, 130),
            (3, 1, 125),
        ];
        let s = judge(&capture(arrivals), 5, 2, (0, 0), "change");
        assert_eq!(s.reordered, 0);
        let arrivals = vec![
            (0, 0, 100),
            (2, 0, 110),
            (4, 0, 120),
            (3, 1, 125),
            (1, 1, 130),
        ];
        assert_eq!(
            judge(&capture(arrivals), 5, 2, (0, 0), "change").reordered,
            1
        );
    }
}
