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

/// What one sink port counted.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SinkPort {
    /// Interface.
    pub name: String,
    /// Every frame.
    pub frames: u64,
    /// Test frames.
    pub test: u64,
    /// Test frames below their flow's highest sequence number.
    pub reordered: u64,
    /// Test frames with a latency sample.
    pub stamped: u64,
    /// Test frames per flow id (the first `flows`).
    pub flows: Vec<u64>,
    /// Frames per latency bucket (four per octave from 64 ns).
    pub latency: Vec<u64>,
}

/// Attaches the in-kernel sink to `ifaces`, prints `ready`, and on SIGTERM prints what it
/// counted as JSON (the first `flows` flows per port).
///
/// # Errors
/// When a program cannot be attached or read.
pub fn kernel_sink(ifaces: &[String], flows: u32) -> Result<()> {
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop))?;
    }
    let mut programs = Vec::new();
    for name in ifaces {
        let ifindex = crate::testbed::ifindex(name)?;
        programs.push((
            name.clone(),
            PortProgram::attach(name, ifindex, ProgramKind::Sink)?,
        ));
    }
    println!("ready");
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut ports = Vec::new();
    for (name, p) in &programs {
        let s = p.sink_stats()?;
        ports.push(SinkPort {
            name: name.clone(),
            frames: s[SinkCounter::Frames as usize],
            test: s[SinkCounter::Test as usize],
            reordered: s[SinkCounter::Reordered as usize],
            stamped: s[SinkCounter::Stamped as usize],
            flows: p.sink_flows(flows)?,
            latency: p.sink_latency()?,
        });
    }
    println!("{}", serde_json::to_string(&ports)?);
    Ok(())
}

/// Attaches the kernel's redirect reference on `from`, sending every frame to `to`, until
/// SIGTERM.
///
/// # Errors
/// When the program cannot be attached.
pub fn redirect(from: &str, to: &str) -> Result<()> {
    let stop = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGTERM, Arc::clone(&stop))?;
    let mut p = PortProgram::attach(from, crate::testbed::ifindex(from)?, ProgramKind::Redirect)?;
    p.set_redirect_target(crate::testbed::ifindex(to)?)?;
    // The target needs an XDP program of its own for redirected frames to be sent on veth.
    let _target = PortProgram::attach(to, crate::testbed::ifindex(to)?, ProgramKind::Drop)?;
    println!("ready");
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

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
    /// MTU 9000 on every link of the bed (the lagg takes the forward port's MTU).
    fn jumbo_links(&self) -> Result<()> {
        let mut links = vec![("src", "xls0".to_string()), ("app", "xld0".to_string())];
        links.extend(self.member_names("xlm").into_iter().map(|m| ("app", m)));
        links.extend(self.member_names("xlp").into_iter().map(|p| ("ptr", p)));
        for (role, link) in links {
            self.bed.ip(role, &["link", "set", &link, "mtu", "9000"])?;
        }
        Ok(())
    }

    fn member_names(&self, prefix: &str) -> Vec<String> {
        (0..self.members).map(|i| format!("{prefix}{i}")).collect()
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
        let forwarder = Guarded::spawn_ready(fwd, "the forwarder")?;
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
        ]);
        match size {
            Size::Bytes(n) => gen.args(["--size", &n.to_string()]),
            Size::Imix => gen.arg("--imix"),
        };
        // Flat out: the in-kernel generator where the kernel allows it (it outruns any
        // forwarder here). Paced, or jumbo frames: the AF_XDP generator, which stamps every
        // frame as it sends it and sends jumbo frames as multi-buffer chains.
        gen.args([
            "--engine",
            if pps == 0 && !size.is_jumbo() {
                self.generator.name()
            } else {
                "afxdp"
            },
        ]);
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

impl SinkChild {
    fn wait_ready(mut child: std::process::Child) -> Result<SinkChild> {
        let stdout = child.stdout.take().context("stdout")?;
        let mut lines = std::io::BufReader::new(stdout).lines();
        let mut me = SinkChild(Some(child), None);
        match lines.next() {
            Some(Ok(l)) if l.contains("ready") => {
                me.1 = Some(lines);
                Ok(me)
            }
            other => bail!("the sink did not start: {other:?}"),
        }
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

/// Throughput of one protocol (or reference) at one size.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ThroughputRow {
    /// Size.
    pub size: String,
    /// What forwarded.
    pub variant: String,
    /// Mpps over the runs.
    pub mpps: Spread,
    /// Gbit/s (median, from the average frame size with FCS).
    pub gbps_median: f64,
    /// Per run, this variant's rate over the AF_XDP ceiling's in the same run.
    pub ratio_to_ceiling: Spread,
    /// Per run, over the kernel redirect's.
    pub ratio_to_kernel: Spread,
    /// Reordered frames seen by the sink, summed over runs.
    pub reordered: u64,
}

/// Balance of one flow count.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BalanceRow {
    /// Flows.
    pub flows: u32,
    /// Test frames per member.
    pub per_member: Vec<u64>,
    /// Largest member's share over the mean (1.0: perfect).
    pub max_over_mean: f64,
    /// Flows seen on more than one member (should be 0).
    pub split_flows: u64,
}

/// Latency at a fraction of the maximum rate.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LatencyRow {
    /// Offered frames per second.
    pub pps: u64,
    /// Fraction of the maximum lagg rate measured in this run.
    pub of_max: f64,
    /// Frames with a latency sample.
    pub samples: u64,
    /// p50, p90, p99, p99.9, max in microseconds (generator stamp to sink, in the kernel).
    pub percentiles_us: [f64; 5],
    /// Frames per latency bucket (upper bound ns, count), for the plot.
    pub histogram: Vec<(u64, u64)>,
    /// Frames lost (offered by the generator, not counted by the sink).
    pub lost: i64,
    /// Reordered frames.
    pub reordered: u64,
}

/// Everything `suite` measured.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Results {
    /// When (Unix seconds).
    pub time: u64,
    /// The machine (CPU, cores, kernel).
    pub machine: String,
    /// xlagg's version and the compiler it was built with.
    pub versions: String,
    /// The options.
    pub options: SuiteOptions,
    /// The generator of the flat-out runs: `xdp` (the kernel's live frames) or `afxdp` (a
    /// kernel that refuses live frames, or forced); paced and jumbo runs use `afxdp`.
    #[serde(default = "default_generator")]
    pub generator: Engine,
    /// Throughput rows.
    pub throughput: Vec<ThroughputRow>,
    /// Balance rows.
    pub balance: Vec<BalanceRow>,
    /// Latency rows.
    pub latency: Vec<LatencyRow>,
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
            setup.jumbo_links()?;
        }
        let mut variants = vec![Variant::Ceiling, Variant::Kernel];
        let engine = |e: &str| opts.engines.iter().any(|x| x == e);
        if engine("afxdp") {
            variants.extend(opts.protocols.iter().cloned().map(Variant::Lagg));
        }
        if engine("xdp") {
            variants.extend(opts.protocols.iter().cloned().map(Variant::XdpEngine));
        }
        if opts.busy_poll {
            variants.extend(opts.protocols.iter().cloned().map(Variant::BusyPoll));
        }
        // The kernel cannot broadcast a multi-buffer frame (the configuration refuses it).
        variants.retain(|v| !(size.is_jumbo() && *v == Variant::XdpEngine("broadcast".into())));
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
        let p = xlagg_control::metrics::latency_percentiles(&buckets).unwrap_or_default();
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
    };
    write(&results, out)?;
    Ok(results)
}

/// Writes `results.json`, `summary.md`, `throughput.svg` and `latency.svg` into `out`.
///
/// # Errors
/// I/O.
pub fn write(r: &Results, out: &Path) -> Result<()> {
    std::fs::create_dir_all(out)?;
    std::fs::write(out.join("results.json"), serde_json::to_string_pretty(r)?)?;
    std::fs::write(out.join("summary.md"), summary(r))?;
    std::fs::write(out.join("throughput.svg"), throughput_svg(r))?;
    std::fs::write(out.join("latency.svg"), latency_svg(r))?;
    println!("results: {}", out.display());
    Ok(())
}

/// The generator, as the summary names it.
fn generator_words(generator: Engine) -> &'static str {
    match generator {
        Engine::Xdp => "in-kernel (XDP live frames)",
        Engine::Afxdp => "AF_XDP (copy mode)",
        Engine::Auto => "auto",
    }
}

/// The Markdown summary.
pub fn summary(r: &Results) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(s, "# xlagg benchmark results\n");
    let _ = writeln!(
        s,
        "- machine: {}\n- versions: {}\n- members: {}, {} flows, {} runs of {} s, frames {}\n",
        r.machine,
        r.versions,
        r.options.members,
        r.options.flows,
        r.options.runs,
        r.options.seconds,
        r.options.shape.name()
    );
    let _ = writeln!(
        s,
        "Generator of the flat-out runs: {} (paced and jumbo runs: the AF_XDP generator).\n",
        generator_words(r.generator)
    );
    let _ = writeln!(
        s,
        "## Throughput (forward mode, min/median/max over runs)\n"
    );
    let _ = writeln!(s, "| size | forwarder | Mpps | Gbit/s (median) | / AF_XDP ceiling | / kernel redirect | reordered |");
    let _ = writeln!(s, "| --- | --- | --- | --- | --- | --- | --- |");
    for t in &r.throughput {
        let _ =
            writeln!(
            s,
            "| {} | {} | {:.3}/{:.3}/{:.3} | {:.2} | {:.3}/{:.3}/{:.3} | {:.3}/{:.3}/{:.3} | {} |",
            t.size, t.variant, t.mpps.min, t.mpps.median, t.mpps.max, t.gbps_median,
            t.ratio_to_ceiling.min, t.ratio_to_ceiling.median, t.ratio_to_ceiling.max,
            t.ratio_to_kernel.min, t.ratio_to_kernel.median, t.ratio_to_kernel.max, t.reordered
        );
    }
    let _ = writeln!(s, "\n## Distribution balance (loadbalance)\n");
    let _ = writeln!(
        s,
        "| flows | frames per member | max / mean | flows split over members |"
    );
    let _ = writeln!(s, "| --- | --- | --- | --- |");
    for b in &r.balance {
        let _ = writeln!(
            s,
            "| {} | {:?} | {:.3} | {} |",
            b.flows, b.per_member, b.max_over_mean, b.split_flows
        );
    }
    let _ = writeln!(
        s,
        "\n## Latency (generator stamp to sink, both in the kernel)\n"
    );
    let _ = writeln!(s, "| offered | of max | samples | p50 µs | p90 µs | p99 µs | p99.9 µs | max µs | lost | reordered |");
    let _ = writeln!(
        s,
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
    );
    for l in &r.latency {
        let p = l.percentiles_us;
        let _ = writeln!(
            s,
            "| {} pps | {:.0} % | {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {} | {} |",
            l.pps,
            l.of_max * 100.0,
            l.samples,
            p[0],
            p[1],
            p[2],
            p[3],
            p[4],
            l.lost,
            l.reordered
        );
    }
    s
}

fn svg_escape(t: &str) -> String {
    t.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Grouped bars: median Mpps per forwarder, one group per size.
pub fn throughput_svg(r: &Results) -> String {
    use std::fmt::Write;
    let sizes: Vec<&str> = {
        let mut v: Vec<&str> = Vec::new();
        for t in &r.throughput {
            if !v.contains(&t.size.as_str()) {
                v.push(&t.size);
            }
        }
        v
    };
    let variants: Vec<&str> = {
        let mut v: Vec<&str> = Vec::new();
        for t in &r.throughput {
            if !v.contains(&t.variant.as_str()) {
                v.push(&t.variant);
            }
        }
        v
    };
    let max = r
        .throughput
        .iter()
        .map(|t| t.mpps.max)
        .fold(0.0, f64::max)
        .max(0.001);
    let colors = [
        "#68737f", "#adb5bd", "#0b63b6", "#d9480f", "#2b8a3e", "#862e9c", "#c2255c",
    ];
    let (w, h, left, bottom) = (860.0, 360.0, 60.0, 60.0);
    let group = (w - left - 20.0) / sizes.len().max(1) as f64;
    let bar = group * 0.8 / variants.len().max(1) as f64;
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{}" font-family="sans-serif" font-size="11">"#,
        h + 20.0 * variants.len() as f64
    );
    let _ = write!(
        s,
        r#"<text x="{left}" y="14" font-size="13">Throughput, Mpps (median; whiskers min-max)</text>"#
    );
    for i in 0..=4 {
        let v = max * f64::from(i) / 4.0;
        let y = h - bottom - (h - bottom - 30.0) * f64::from(i) / 4.0;
        let _ = write!(
            s,
            r##"<line x1="{left}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#e3e8ee"/><text x="4" y="{:.1}">{v:.2}</text>"##,
            w - 20.0,
            y + 4.0
        );
    }
    for (g, size) in sizes.iter().enumerate() {
        let x0 = left + group * g as f64 + group * 0.1;
        let _ = write!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            x0 + group * 0.4,
            h - bottom + 16.0,
            svg_escape(size)
        );
        for (k, variant) in variants.iter().enumerate() {
            if let Some(t) = r
                .throughput
                .iter()
                .find(|t| t.size == *size && t.variant == *variant)
            {
                let scale = |v: f64| (h - bottom - 30.0) * v / max;
                let x = x0 + bar * k as f64;
                let y = h - bottom - scale(t.mpps.median);
                let _ = write!(
                    s,
                    r#"<rect x="{x:.1}" y="{y:.1}" width="{:.1}" height="{:.1}" fill="{}"/>"#,
                    bar * 0.9,
                    scale(t.mpps.median),
                    colors[k % colors.len()]
                );
                let cx = x + bar * 0.45;
                let _ = write!(
                    s,
                    r##"<line x1="{cx:.1}" x2="{cx:.1}" y1="{:.1}" y2="{:.1}" stroke="#1d2630"/>"##,
                    h - bottom - scale(t.mpps.min),
                    h - bottom - scale(t.mpps.max)
                );
            }
        }
    }
    for (k, variant) in variants.iter().enumerate() {
        let y = h + 20.0 * k as f64 - 20.0;
        let _ = write!(
            s,
            r#"<rect x="{left}" y="{:.1}" width="10" height="10" fill="{}"/><text x="{}" y="{:.1}">{}</text>"#,
            y,
            colors[k % colors.len()],
            left + 16.0,
            y + 9.0,
            svg_escape(variant)
        );
    }
    s.push_str("</svg>\n");
    s
}

/// The latency histograms: frames per bucket (log-scaled time axis).
pub fn latency_svg(r: &Results) -> String {
    use std::fmt::Write;
    let (w, h, left, bottom) = (860.0, 300.0, 60.0, 40.0);
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="11">"#
    );
    let _ = write!(
        s,
        r#"<text x="{left}" y="14" font-size="13">Latency histogram (frames per bucket, log time axis)</text>"#
    );
    let colors = ["#0b63b6", "#d9480f", "#2b8a3e"];
    let lo = 64f64.ln();
    let hi = 1e8f64.ln();
    let x = |ns: f64| left + (w - left - 20.0) * ((ns.max(64.0).ln() - lo) / (hi - lo));
    for ns in [1e2, 1e3, 1e4, 1e5, 1e6, 1e7] {
        let label = if ns >= 1e6 {
            format!("{} ms", ns / 1e6)
        } else if ns >= 1e3 {
            format!("{} µs", ns / 1e3)
        } else {
            format!("{ns} ns")
        };
        let _ = write!(
            s,
            r##"<line x1="{0:.1}" x2="{0:.1}" y1="30" y2="{1}" stroke="#e3e8ee"/><text x="{0:.1}" y="{2}" text-anchor="middle">{3}</text>"##,
            x(ns),
            h - bottom,
            h - bottom + 14.0,
            label
        );
    }
    for (k, l) in r.latency.iter().enumerate() {
        let peak = l
            .histogram
            .iter()
            .map(|(_, n)| *n)
            .max()
            .unwrap_or(1)
            .max(1) as f64;
        let mut path = String::new();
        for (i, (upper, n)) in l.histogram.iter().enumerate() {
            let y = h - bottom - (h - bottom - 40.0) * (*n as f64 / peak);
            let _ = write!(
                path,
                "{}{:.1},{:.1} ",
                if i == 0 { "M" } else { "L" },
                x(*upper as f64),
                y
            );
        }
        let _ = write!(
            s,
            r#"<path d="{path}" fill="none" stroke="{}" stroke-width="1.6"/>"#,
            colors[k % colors.len()]
        );
        let _ = write!(
            s,
            r#"<text x="{}" y="{}" fill="{}">{:.0} % of max ({} pps): p50 {:.1} µs, p99 {:.1} µs</text>"#,
            w - 330.0,
            30.0 + 14.0 * k as f64,
            colors[k % colors.len()],
            l.of_max * 100.0,
            l.pps,
            l.percentiles_us[0],
            l.percentiles_us[2]
        );
    }
    s.push_str("</svg>\n");
    s
}

/// Prints the ratios B / A of every figure two results files share.
///
/// # Errors
/// A file cannot be read or is not a results file.
pub fn compare(a: &Path, b: &Path) -> Result<String> {
    use std::fmt::Write;
    let read = |p: &Path| -> Result<Results> {
        serde_json::from_str(
            &std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?,
        )
        .with_context(|| format!("{} is not a results.json of xlagg-bench suite", p.display()))
    };
    let (ra, rb) = (read(a)?, read(b)?);
    let mut s = String::new();
    let _ = writeln!(
        s,
        "A: {} ({})\nB: {} ({})\n",
        a.display(),
        ra.machine,
        b.display(),
        rb.machine
    );
    let _ = writeln!(
        s,
        "{:<8} {:<34} {:>10} {:>10} {:>8}",
        "size", "forwarder", "A Mpps", "B Mpps", "B/A"
    );
    for t in &rb.throughput {
        if let Some(o) = ra
            .throughput
            .iter()
            .find(|o| o.size == t.size && o.variant == t.variant)
        {
            let _ = writeln!(
                s,
                "{:<8} {:<34} {:>10.3} {:>10.3} {:>8.3}",
                t.size,
                t.variant,
                o.mpps.median,
                t.mpps.median,
                t.mpps.median / o.mpps.median.max(1e-9)
            );
        }
    }
    for l in &rb.latency {
        if let Some(o) = ra
            .latency
            .iter()
            .find(|o| (o.of_max - l.of_max).abs() < 1e-9)
        {
            let _ = writeln!(
                s,
                "latency p99 at {:.0} %: A {:.1} us, B {:.1} us, B/A {:.3}",
                l.of_max * 100.0,
                o.percentiles_us[2],
                l.percentiles_us[2],
                l.percentiles_us[2] / o.percentiles_us[2].max(1e-9)
            );
        }
    }
    for bl in &rb.balance {
        if let Some(o) = ra.balance.iter().find(|o| o.flows == bl.flows) {
            let _ = writeln!(
                s,
                "balance max/mean at {} flows: A {:.3}, B {:.3}",
                bl.flows, o.max_over_mean, bl.max_over_mean
            );
        }
    }
    Ok(s)
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
