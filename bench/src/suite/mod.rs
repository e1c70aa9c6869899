//! `suite`: every scenario in one command, with a results folder: `results.json` (all figures
//! with the machine, versions and options), `summary.md` and SVG plots; `compare` prints the
//! ratios between two results files.
//!
//! Scenarios, on the namespace test bed (four members, forward mode, generator in the source
//! namespace, the in-kernel sink on every partner port):
//! - **throughput** per protocol at 64 B, IMIX and 1500 B, next to two references measured in
//!   the same run: the bare AF_XDP forwarding ceiling (the same worker with a fixed member)
//!   and the kernel's own XDP redirect between the same veths (no AF_XDP at all);
//! - **balance**: max/mean frames per member over 1k and 10k flows;
//! - **latency** at 50 % of the lagg's maximum rate: the generator stamps every frame in the
//!   kernel, the sink bins receive minus send time; percentiles through an HDR histogram;
//! - **failover** loss window and **LACP convergence**, through the `switchover` and `lacp`
//!   scenarios.
//!
//! This module runs the scenarios; `report` holds the results model and the Markdown
//! summary, `svg` the plots, `compare` the ratios between two results files and
//! `kernel` the in-kernel sink and redirect reference the scenarios start as tools.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use xlagg_common::SinkCounter;
use xlagg_dataplane::xdp::{PortProgram, ProgramKind};

use crate::forward::{machine, Guarded, Spread};
use crate::testbed::Bed;
use crate::traffic::{self, Shape};
use crate::xdpgen::Engine;

mod compare;
mod kernel;
mod report;
mod rfc2544;
pub mod search;
mod svg;

pub use compare::compare;
pub use kernel::{kernel_sink, redirect, SinkPort};
use report::generator_words;
pub use report::{summary, write, BalanceRow, LatencyRow, Results, ThroughputRow};
pub use rfc2544::{Rfc2544Latency, Rfc2544Row, TrialRecord};
pub use svg::{latency_svg, rfc2544_svg, throughput_svg};

/// Frame sizes of the throughput scenario.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Size {
    /// One wire size (FCS included).
    Bytes(usize),
    /// Simple IMIX.
    Imix,
}

impl Size {
    /// As the results name it.
    pub fn name(self) -> String {
        match self {
            Size::Bytes(n) => format!("{n}B"),
            Size::Imix => "IMIX".into(),
        }
    }

    /// `64`..`9018` (bytes with FCS) or `imix`.
    ///
    /// # Errors
    /// Anything else, with the range.
    pub fn parse(text: &str) -> Result<Size, String> {
        if text.eq_ignore_ascii_case("imix") {
            return Ok(Size::Imix);
        }
        match text.trim_end_matches(['B', 'b']).parse::<usize>() {
            Ok(n) if (traffic::MIN_FRAME..=traffic::MAX_JUMBO_FRAME).contains(&n) => {
                Ok(Size::Bytes(n))
            }
            _ => Err(format!(
                "size '{text}': use a frame size of {} to {} bytes, or imix",
                traffic::MIN_FRAME,
                traffic::MAX_JUMBO_FRAME
            )),
        }
    }

    /// Frames above the standard Ethernet maximum: the bed runs at MTU 9000 for them, and
    /// the AF_XDP generator sends them (the kernel's live-frames mode refuses frames larger
    /// than a page).
    pub fn is_jumbo(self) -> bool {
        matches!(self, Size::Bytes(n) if n > traffic::MAX_FRAME)
    }

    fn average_bytes(self) -> f64 {
        match self {
            Size::Bytes(n) => n as f64,
            Size::Imix => traffic::imix_average(),
        }
    }
}

/// What forwards the frames in a measurement.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Variant {
    /// The lagg with this protocol.
    Lagg(String),
    /// The lagg with this protocol and preferred busy polling.
    BusyPoll(String),
    /// The lagg with this protocol on the XDP engine (`engine = "xdp"`).
    XdpEngine(String),
    /// The same worker with a fixed member: the bare AF_XDP forwarding path.
    Ceiling,
    /// The kernel's XDP redirect from the forward port to member 0.
    Kernel,
}

impl Variant {
    fn name(&self) -> String {
        match self {
            Variant::Lagg(p) => p.clone(),
            Variant::BusyPoll(p) => format!("{p} (busy poll)"),
            Variant::XdpEngine(p) => format!("{p} (XDP engine)"),
            Variant::Ceiling => "ceiling (AF_XDP, fixed member)".into(),
            Variant::Kernel => "kernel XDP redirect".into(),
        }
    }
}

/// One measurement's result.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Measurement {
    /// Frames per second delivered to the partner ports.
    pub delivered_pps: f64,
    /// Frames per second offered to the forward port.
    pub offered_pps: f64,
    /// Frames the generator sent in all.
    pub generated: u64,
    /// Sink counts per member port.
    pub ports: Vec<SinkPort>,
}

struct Setup<'a> {
    bed: &'a Bed,
    exe: PathBuf,
    /// The generator of flat-out runs.
    generator: Engine,
    members: usize,
    stop: Arc<AtomicBool>,
}

impl Setup<'_> {
    /// `mtu` on every link of the bed (the lagg takes the forward port's MTU).
    fn links_mtu(&self, mtu: u32) -> Result<()> {
        let mut links = vec![("src", "xls0".to_string()), ("app", "xld0".to_string())];
        links.extend(self.member_names("xlm").into_iter().map(|m| ("app", m)));
        links.extend(self.member_names("xlp").into_iter().map(|p| ("ptr", p)));
        for (role, link) in links {
            self.bed
                .ip(role, &["link", "set", &link, "mtu", &mtu.to_string()])?;
        }
        Ok(())
    }

    fn member_names(&self, prefix: &str) -> Vec<String> {
        (0..self.members).map(|i| format!("{prefix}{i}")).collect()
    }

    /// Starts what forwards in `variant` and waits until it is ready.
    fn forwarder(&self, variant: &Variant) -> Result<Guarded> {
        let members = self.member_names("xlm");
        let mut fwd = self.bed.exec("app", &self.exe);
        match variant {
            Variant::Lagg(proto) | Variant::BusyPoll(proto) | Variant::XdpEngine(proto) => {
                fwd.args([
                    "serve",
                    "--members",
                    &members.join(","),
                    "--forward",
                    "xld0",
                    "--proto",
                    proto,
                    "--core",
                    "1",
                ]);
                if matches!(variant, Variant::BusyPoll(_)) {
                    fwd.arg("--busy-poll");
                }
                if matches!(variant, Variant::XdpEngine(_)) {
                    fwd.args(["--engine", "xdp"]);
                }
            }
            Variant::Ceiling => {
                fwd.args([
                    "serve",
                    "--members",
                    &members.join(","),
                    "--forward",
                    "xld0",
                    "--fixed",
                    "--core",
                    "1",
                ]);
            }
            Variant::Kernel => {
                fwd.args(["redirect", "--from", "xld0", "--to", "xlm0"]);
            }
        }
        Guarded::spawn_ready(fwd, "the forwarder")
    }

    /// The generator's command: `size` frames over `flows` flows for `seconds`, at `pps`
    /// (0: flat out), from the `engine` generator, pinned to core 0.
    fn generator(
        &self,
        size: Size,
        shape: Shape,
        flows: u32,
        pps: u64,
        seconds: f64,
        engine: &str,
    ) -> Command {
        let mut gen = self.bed.exec("src", &self.exe);
        gen.args([
            "generate",
            "--iface",
            "xls0",
            "--flows",
            &flows.to_string(),
            "--seconds",
            &seconds.to_string(),
            "--core",
            "0",
            "--pps",
            &pps.to_string(),
            "--shape",
            &shape.name(),
            "--engine",
            engine,
        ]);
        match size {
            Size::Bytes(n) => gen.args(["--size", &n.to_string()]),
            Size::Imix => gen.arg("--imix"),
        };
        gen
    }

    /// Runs one measurement: the forwarder, the sink, the generator for `seconds`.
    fn measure(
        &self,
        variant: &Variant,
        size: Size,
        shape: Shape,
        flows: u32,
        pps: u64,
        seconds: f64,
    ) -> Result<Measurement> {
        if self.stop.load(Ordering::Relaxed) {
            bail!("interrupted");
        }
        let forwarder = self.forwarder(variant)?;
        let mut sink = self.bed.exec("ptr", &self.exe);
        sink.args([
            "xdpsink",
            "--ifaces",
            &self.member_names("xlp").join(","),
            "--flows",
            &flows.to_string(),
        ]);
        let sink = sink
            .stdout(Stdio::piped())
            .spawn()
            .context("starting the sink")?;
        let mut sink = SinkChild::wait_ready(sink)?;
        // Flat out: the in-kernel generator where the kernel allows it (it outruns any
        // forwarder here). Paced, or jumbo frames: the AF_XDP generator, which stamps every
        // frame as it sends it and sends jumbo frames as multi-buffer chains.
        let engine = if pps == 0 && !size.is_jumbo() {
            self.generator.name()
        } else {
            "afxdp"
        };
        let mut gen = self.generator(size, shape, flows, pps, seconds, engine);
        let generator = gen
            .stdout(Stdio::piped())
            .spawn()
            .context("starting the generator")?;
        let warmup = (seconds * 0.25).max(0.5);
        std::thread::sleep(Duration::from_secs_f64(warmup));
        let t0 = Instant::now();
        let p0 = counters(self.bed, "ptr", "xlp")?;
        let s0 = counters(self.bed, "app", "xld")?;
        std::thread::sleep(Duration::from_secs_f64(seconds - 2.0 * warmup));
        let dt = t0.elapsed().as_secs_f64();
        let p1 = counters(self.bed, "ptr", "xlp")?;
        let s1 = counters(self.bed, "app", "xld")?;
        let out = generator.wait_with_output().context("generator")?;
        if !out.status.success() {
            bail!("the generator failed");
        }
        let generated = serde_json::from_slice::<serde_json::Value>(&out.stdout)
            .ok()
            .and_then(|v| v["sent"].as_u64())
            .unwrap_or(0);
        // Let the last frames drain through before the counts are read.
        std::thread::sleep(Duration::from_millis(200));
        drop(forwarder);
        let ports = sink.finish()?;
        Ok(Measurement {
            delivered_pps: (p1 - p0) as f64 / dt,
            offered_pps: (s1 - s0) as f64 / dt,
            generated,
            ports,
        })
    }
}

/// Frames the partner's ports received, summed (kernel counters).
///
/// # Errors
/// When the counters cannot be read.
pub(crate) fn partner_frames(bed: &Bed) -> Result<u64> {
    counters(bed, "ptr", "xlp")
}

/// Kernel receive counters summed over the interfaces of `role` starting with `prefix`.
fn counters(bed: &Bed, role: &str, prefix: &str) -> Result<u64> {
    Ok(bed
        .packet_counters(role)?
        .into_iter()
        .filter(|(n, _, _)| n.starts_with(prefix))
        .map(|(_, rx, _)| rx)
        .sum())
}

/// The sink child: started, ready, stopped with SIGTERM for its JSON.
struct SinkChild(
    Option<std::process::Child>,
    Option<std::io::Lines<std::io::BufReader<std::process::ChildStdout>>>,
);

/// The sink's output lines once it said it is ready (its stdout piped).
///
/// # Errors
/// It ended or printed something else first.
fn sink_ready(
    child: &mut std::process::Child,
) -> Result<std::io::Lines<std::io::BufReader<std::process::ChildStdout>>> {
    let stdout = child.stdout.take().context("sink stdout")?;
    let mut lines = std::io::BufReader::new(stdout).lines();
    match lines.next() {
        Some(Ok(l)) if l.contains("ready") => Ok(lines),
        other => bail!("the sink did not start: {other:?}"),
    }
}

impl SinkChild {
    fn wait_ready(mut child: std::process::Child) -> Result<SinkChild> {
        // Killed on drop if it never got ready.
        let lines = sink_ready(&mut child);
        let mut me = SinkChild(Some(child), None);
        me.1 = Some(lines?);
        Ok(me)
    }

    fn finish(&mut self) -> Result<Vec<SinkPort>> {
        let child = self.0.take().context("sink gone")?;
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let line = self
            .1
            .as_mut()
            .and_then(|l| l.next())
            .context("the sink printed nothing")??;
        let mut child = child;
        let _ = child.wait();
        Ok(serde_json::from_str(&line)?)
    }
}

impl Drop for SinkChild {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Options of `suite`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SuiteOptions {
    /// Member ports.
    pub members: usize,
    /// Runs per throughput cell.
    pub runs: usize,
    /// Seconds per measurement.
    pub seconds: f64,
    /// Protocols measured.
    pub protocols: Vec<String>,
    /// Flows of the throughput scenario.
    pub flows: u32,
    /// Header layout.
    pub shape: Shape,
    /// Scenarios to run: throughput, balance, latency.
    pub scenarios: Vec<String>,
    /// Frame sizes of the throughput scenario, in order (jumbo ones last: once the bed is at
    /// MTU 9000 it stays there).
    #[serde(default = "default_sizes")]
    pub sizes: Vec<Size>,
    /// Every protocol measured a second time with preferred busy polling.
    #[serde(default)]
    pub busy_poll: bool,
    /// Engines whose lagg rows are measured: `afxdp`, `xdp`.
    #[serde(default = "default_engines")]
    pub engines: Vec<String>,
    /// The generator asked for the flat-out runs (`auto` or a forced one); what ran is
    /// [`Results::generator`].
    #[serde(default = "default_generator")]
    pub generator: Engine,
    /// Frame sizes of the RFC 2544 scenario.
    #[serde(default = "default_rfc2544_sizes")]
    pub rfc2544_sizes: Vec<Size>,
    /// Seconds per trial in the RFC 2544 search's final phase.
    #[serde(default = "default_trial_seconds")]
    pub trial_seconds: f64,
    /// The RFC 2544 search's final relative width (upper bound minus lower over upper).
    #[serde(default = "default_width")]
    pub width: f64,
    /// Phases of the RFC 2544 search (each earlier one half as long and twice as wide).
    #[serde(default = "default_phases")]
    pub phases: usize,
}

/// The RFC 2544 scenario's sizes unless told otherwise: the standard's, for Ethernet.
pub fn default_rfc2544_sizes() -> Vec<Size> {
    [64, 128, 256, 512, 1024, 1280, 1518]
        .into_iter()
        .map(Size::Bytes)
        .collect()
}

/// Seconds per final trial unless told otherwise.
pub fn default_trial_seconds() -> f64 {
    4.0
}

/// The search's final width unless told otherwise.
pub fn default_width() -> f64 {
    0.02
}

/// The search's phases unless told otherwise.
pub fn default_phases() -> usize {
    2
}

fn default_generator() -> Engine {
    Engine::Auto
}

/// Both engines.
pub fn default_engines() -> Vec<String> {
    vec!["afxdp".into(), "xdp".into()]
}

/// The throughput scenario's sizes unless told otherwise.
pub fn default_sizes() -> Vec<Size> {
    vec![
        Size::Bytes(64),
        Size::Imix,
        Size::Bytes(1500),
        Size::Bytes(9000),
    ]
}

/// Runs the suite and writes the results folder.
///
/// # Errors
/// Any failing step; the test bed is removed anyway.
pub fn run(opts: &SuiteOptions, testbed: &Path, out: &Path) -> Result<Results> {
    if opts.seconds < 2.0 {
        bail!("--seconds must be at least 2");
    }
    let exe = std::env::current_exe().context("own path")?;
    // SIGINT/SIGTERM end the suite between measurements, so the test bed is still removed.
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop))?;
    }
    let bed = Bed::up(
        testbed,
        &format!("bq{}", std::process::id() % 100_000),
        opts.members,
        false,
    )?;
    let generator = opts.generator.resolve();
    println!(
        "generator of the flat-out runs: {}",
        generator_words(generator)
    );
    let setup = Setup {
        bed: &bed,
        exe,
        generator,
        members: opts.members,
        stop,
    };
    let mut throughput = Vec::new();
    let mut max_lagg_pps: f64 = 0.0;
    let wants = |s: &str| opts.scenarios.iter().any(|x| x == s);
    let sizes = if wants("throughput") {
        let mut sizes = opts.sizes.clone();
        sizes.sort_by_key(|s| s.is_jumbo());
        sizes
    } else {
        Vec::new()
    };
    for size in sizes {
        if size.is_jumbo() {
            setup.links_mtu(9000)?;
        }
        let variants = rfc2544::variants(opts, size);
        // rates[variant][run]
        let mut rates: Vec<Vec<f64>> = vec![Vec::new(); variants.len()];
        let mut reordered = vec![0u64; variants.len()];
        for run in 0..opts.runs {
            // Rotate the order each run so drift favours no variant.
            for k in 0..variants.len() {
                let v = (k + run) % variants.len();
                let m =
                    setup.measure(&variants[v], size, opts.shape, opts.flows, 0, opts.seconds)?;
                println!(
                    "  {:>6} {:<32} run {}: {:.3} Mpps (offered {:.3})",
                    size.name(),
                    variants[v].name(),
                    run + 1,
                    m.delivered_pps / 1e6,
                    m.offered_pps / 1e6
                );
                reordered[v] += m.ports.iter().map(|p| p.reordered).sum::<u64>();
                rates[v].push(m.delivered_pps);
            }
        }
        for (v, variant) in variants.iter().enumerate() {
            let mpps = Spread::of(&rates[v].iter().map(|r| r / 1e6).collect::<Vec<_>>());
            let ratio = |reference: usize| {
                Spread::of(
                    &rates[v]
                        .iter()
                        .zip(&rates[reference])
                        .map(|(a, b)| a / b.max(1.0))
                        .collect::<Vec<_>>(),
                )
            };
            if matches!(variant, Variant::Lagg(_)) && size == Size::Bytes(64) {
                max_lagg_pps = max_lagg_pps.max(mpps.median * 1e6);
            }
            throughput.push(ThroughputRow {
                size: size.name(),
                variant: variant.name(),
                gbps_median: mpps.median * 1e6 * size.average_bytes() * 8.0 / 1e9,
                mpps,
                ratio_to_ceiling: ratio(0),
                ratio_to_kernel: ratio(1),
                reordered: reordered[v],
            });
        }
    }
    // Balance: loadbalance at a moderate rate, every frame counted per member and flow.
    let mut balance = Vec::new();
    let balance_flows: &[u32] = if wants("balance") {
        &[1000, 10_000]
    } else {
        &[]
    };
    for &flows in balance_flows {
        let m = setup.measure(
            &Variant::Lagg("loadbalance".into()),
            Size::Bytes(64),
            opts.shape,
            flows,
            100_000,
            opts.seconds,
        )?;
        let per_member: Vec<u64> = m.ports.iter().map(|p| p.test).collect();
        let mean = per_member.iter().sum::<u64>() as f64 / per_member.len().max(1) as f64;
        let max = per_member.iter().copied().max().unwrap_or(0) as f64;
        let split_flows = (0..flows as usize)
            .filter(|f| {
                m.ports
                    .iter()
                    .filter(|p| p.flows.get(*f).copied().unwrap_or(0) > 0)
                    .count()
                    > 1
            })
            .count() as u64;
        println!(
            "  balance {flows} flows: per member {per_member:?}, max/mean {:.3}",
            max / mean.max(1.0)
        );
        balance.push(BalanceRow {
            flows,
            per_member,
            max_over_mean: max / mean.max(1.0),
            split_flows,
        });
    }
    // Latency at 50 % (and 10 %) of the lagg's maximum 64-byte rate.
    let mut latency = Vec::new();
    if wants("latency") && max_lagg_pps == 0.0 {
        // No throughput scenario ran: measure the maximum first.
        let proto = opts
            .protocols
            .first()
            .cloned()
            .unwrap_or_else(|| "loadbalance".into());
        let m = setup.measure(
            &Variant::Lagg(proto),
            Size::Bytes(64),
            opts.shape,
            opts.flows,
            0,
            opts.seconds,
        )?;
        max_lagg_pps = m.delivered_pps;
        println!(
            "  maximum rate for the latency scenario: {:.3} Mpps",
            max_lagg_pps / 1e6
        );
    }
    let fractions: &[f64] = if wants("latency") { &[0.1, 0.5] } else { &[] };
    for &of_max in fractions {
        let pps = ((max_lagg_pps * of_max) as u64).max(1000);
        let proto = opts
            .protocols
            .first()
            .cloned()
            .unwrap_or_else(|| "loadbalance".into());
        let m = setup.measure(
            &Variant::Lagg(proto),
            Size::Bytes(64),
            opts.shape,
            opts.flows,
            pps,
            opts.seconds,
        )?;
        let mut buckets = vec![0u64; xlagg_common::SINK_LATENCY_BUCKETS as usize];
        for p in &m.ports {
            for (b, n) in buckets.iter_mut().zip(&p.latency) {
                *b += n;
            }
        }
        let p = xlagg_control::mgmt::metrics::latency_percentiles(&buckets).unwrap_or_default();
        let received: u64 = m.ports.iter().map(|p| p.test).sum();
        let offered = m.generated as i64;
        let row = LatencyRow {
            pps,
            of_max,
            samples: m.ports.iter().map(|p| p.stamped).sum(),
            percentiles_us: p.map(|v| v as f64 / 1000.0),
            histogram: buckets
                .iter()
                .enumerate()
                .filter(|(_, n)| **n > 0)
                .map(|(i, n)| (xlagg_dataplane::counters::latency_bucket_upper(i), *n))
                .collect(),
            lost: (offered - received as i64).max(0),
            reordered: m.ports.iter().map(|p| p.reordered).sum(),
        };
        println!(
            "  latency at {:.0} % ({} pps): p50 {:.1} us, p99 {:.1} us, p99.9 {:.1} us, max {:.1} us",
            of_max * 100.0,
            pps,
            row.percentiles_us[0],
            row.percentiles_us[2],
            row.percentiles_us[3],
            row.percentiles_us[4]
        );
        latency.push(row);
    }
    let rfc2544 = if wants("rfc2544") {
        rfc2544::run(&setup, opts)?
    } else {
        Vec::new()
    };
    let results = Results {
        time: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        machine: machine(),
        versions: format!("xlagg {}", env!("CARGO_PKG_VERSION")),
        options: opts.clone(),
        generator,
        throughput,
        balance,
        latency,
        rfc2544,
    };
    write(&results, out)?;
    Ok(results)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_their_range() {
        assert_eq!(Size::parse("64"), Ok(Size::Bytes(64)));
        assert_eq!(Size::parse("9000B"), Ok(Size::Bytes(9000)));
        assert_eq!(Size::parse("IMIX"), Ok(Size::Imix));
        assert!(Size::Bytes(9000).is_jumbo() && !Size::Bytes(1518).is_jumbo());
        for bad in ["63", "9019", "big", ""] {
            assert!(
                Size::parse(bad).unwrap_err().contains("64 to 9018"),
                "{bad}"
            );
        }
    }

    fn sample() -> Results {
        let spread = |m: f64| Spread {
            min: m * 0.9,
            median: m,
            max: m * 1.1,
        };
        Results {
            time: 0,
            machine: "test".into(),
            versions: "xlagg 0".into(),
            options: SuiteOptions {
                members: 4,
                runs: 3,
                seconds: 3.0,
                protocols: vec!["loadbalance".into()],
                flows: 1024,
                shape: Shape::default(),
                scenarios: vec!["throughput".into()],
                sizes: default_sizes(),
                busy_poll: false,
                engines: default_engines(),
                generator: Engine::Auto,
                rfc2544_sizes: default_rfc2544_sizes(),
                trial_seconds: 1.0,
                width: 0.02,
                phases: 2,
            },
            generator: Engine::Xdp,
            throughput: vec![
                ThroughputRow {
                    size: "64B".into(),
                    variant: "ceiling".into(),
                    mpps: spread(0.4),
                    gbps_median: 0.2,
                    ratio_to_ceiling: spread(1.0),
                    ratio_to_kernel: spread(0.3),
                    reordered: 0,
                },
                ThroughputRow {
                    size: "64B".into(),
                    variant: "loadbalance".into(),
                    mpps: spread(0.38),
                    gbps_median: 0.19,
                    ratio_to_ceiling: spread(0.95),
                    ratio_to_kernel: spread(0.28),
                    reordered: 0,
                },
            ],
            balance: vec![BalanceRow {
                flows: 1000,
                per_member: vec![10, 11, 9, 10],
                max_over_mean: 1.1,
                split_flows: 0,
            }],
            latency: vec![LatencyRow {
                pps: 1000,
                of_max: 0.5,
                samples: 10,
                percentiles_us: [1.0, 2.0, 3.0, 4.0, 5.0],
                histogram: vec![(1024, 5), (2048, 5)],
                lost: 0,
                reordered: 0,
            }],
            rfc2544: vec![],
        }
    }

    #[test]
    fn reports_render_and_compare_reads_them_back() {
        let r = sample();
        let md = summary(&r);
        assert!(
            md.contains("| 64B | loadbalance | 0.342/0.380/0.418 |"),
            "{md}"
        );
        let svg = throughput_svg(&r);
        assert!(
            svg.starts_with("<svg") && svg.contains("<rect") && svg.trim_end().ends_with("</svg>")
        );
        assert!(latency_svg(&r).contains("<path"));
        let dir = std::env::temp_dir().join(format!("xlagg-suite-{}", std::process::id()));
        write(&r, &dir.join("a")).unwrap();
        let mut b = r.clone();
        b.throughput[1].mpps.median = 0.76;
        write(&b, &dir.join("b")).unwrap();
        let text = compare(&dir.join("a/results.json"), &dir.join("b/results.json")).unwrap();
        assert!(text.contains("2.000"), "{text}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
