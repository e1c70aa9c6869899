//! `forward`: forward-mode throughput through an N-member lagg, measured against the same
//! path's ceiling in the same run.
//!
//! Each run measures two variants back to back (in alternating order, so drift over the run
//! does not favour either):
//! - **ceiling**: the same worker, sockets and ports with the distribution decision replaced by
//!   one fixed member ([`TxPolicy::Fixed`]), i.e. the bare AF_XDP forwarding path;
//! - **lagg**: the configured protocol (loadbalance by default) over every member.
//!
//! The generator (AF_XDP, copy mode on veth) runs in the source namespace pinned to one core,
//! the worker in the appliance namespace on the other; the partner ports drop everything in
//! XDP. The rate is the partner ports' kernel receive counters over a window inside the
//! generation period, after a warm-up.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::Serialize;
use xlagg_control::config::{Engine, LaggConfig, LaggProto, Upper};
use xlagg_control::runtime::lagg::{Lagg, StartOptions};
use xlagg_control::sys::netdev::Netlink;
use xlagg_dataplane::distribution::TxPolicy;
use xlagg_dataplane::flow::HashLayers;
use xlagg_dataplane::worker::ZeroCopy;

use crate::testbed::Bed;

/// Options of one `forward` benchmark.
#[derive(Clone, Debug, Serialize)]
pub struct ForwardOptions {
    /// Member ports.
    pub members: usize,
    /// Runs (each measures both variants).
    pub runs: usize,
    /// Generation time per measurement, seconds.
    pub seconds: f64,
    /// Frame size with FCS.
    pub size: usize,
    /// Flows.
    pub flows: u32,
    /// Protocol of the lagg variant.
    pub proto: String,
    /// Core of the generator.
    pub generator_core: usize,
    /// Core of the worker.
    pub worker_core: usize,
    /// Generator: `auto` until [`run`] resolves it, then the one that ran.
    pub engine: crate::xdpgen::Engine,
}

/// One measurement.
#[derive(Clone, Debug, Serialize)]
pub struct Sample {
    /// Frames per second delivered to the partner ports.
    pub delivered_pps: f64,
    /// Frames per second the generator put on the wire.
    pub offered_pps: f64,
    /// Frames per second delivered per member port.
    pub per_member_pps: Vec<f64>,
}

/// Both variants of one run.
#[derive(Clone, Debug, Serialize)]
pub struct RunResult {
    /// Ceiling measurement.
    pub ceiling: Sample,
    /// Lagg measurement.
    pub lagg: Sample,
    /// lagg / ceiling.
    pub ratio: f64,
}

/// min / median / max.
#[derive(Clone, Copy, Debug, Serialize, serde::Deserialize)]
pub struct Spread {
    /// Smallest.
    pub min: f64,
    /// Median.
    pub median: f64,
    /// Largest.
    pub max: f64,
}

impl Spread {
    /// Of a non-empty list (an empty one gives zeros).
    pub fn of(values: &[f64]) -> Spread {
        let mut v = values.to_vec();
        v.sort_by(f64::total_cmp);
        if v.is_empty() {
            return Spread {
                min: 0.0,
                median: 0.0,
                max: 0.0,
            };
        }
        let median = if v.len() % 2 == 1 {
            v[v.len() / 2]
        } else {
            (v[v.len() / 2 - 1] + v[v.len() / 2]) / 2.0
        };
        Spread {
            min: v[0],
            median,
            max: v[v.len() - 1],
        }
    }
}

/// The whole report.
#[derive(Clone, Debug, Serialize)]
pub struct ForwardReport {
    /// What ran.
    pub options: ForwardOptions,
    /// The machine.
    pub machine: String,
    /// Every run.
    pub runs: Vec<RunResult>,
    /// Ceiling, Mpps.
    pub ceiling_mpps: Spread,
    /// Lagg, Mpps.
    pub lagg_mpps: Spread,
    /// Per-run ratio lagg / ceiling.
    pub ratio: Spread,
}

/// Runs the lagg in this process (called inside the appliance namespace): prints `ready`,
/// waits for SIGINT/SIGTERM, prints the status table, stops.
///
/// # Errors
/// When the lagg cannot start.
pub fn serve(
    members: &[String],
    forward: &str,
    proto: &str,
    fixed: bool,
    core: Option<usize>,
    busy_poll: bool,
    engine: &str,
) -> Result<()> {
    let engine = Engine::parse(engine).map_err(anyhow::Error::msg)?;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, std::sync::Arc::clone(&stop))?;
    }
    let cfg = LaggConfig {
        name: "lagg0".into(),
        description: String::new(),
        up: true,
        hw_offload: true,
        bfd: None,
        arp: None,
        proto: LaggProto::parse(proto).map_err(anyhow::Error::msg)?,
        ports: members.to_vec(),
        hash: HashLayers::DEFAULT,
        rr_limit: 1,
        hash_seed: 0,
        rebalance: None,
        rx_all: false,
        busy_poll,
        engine,
        forward_link_local: false,
        upper: Upper::Forward {
            port: forward.into(),
        },
        dhcp: None,
        ipv6_auto: false,
        // The forward port's MTU (9000 on a jumbo bed).
        mtu: std::fs::read_to_string(format!("/sys/class/net/{forward}/mtu"))
            .ok()
            .and_then(|m| m.trim().parse().ok())
            .unwrap_or(1500),
        // The XDP engine has no worker to pin.
        cores: core
            .filter(|_| engine == Engine::AfXdp)
            .into_iter()
            .collect(),
        zero_copy: ZeroCopy::Auto,
        ring_size: 4096,
        lacp: Default::default(),
        updelay_ms: 0,
        downdelay_ms: 0,
        notify_count: 0,
        notify_interval_ms: 200,
    };
    let nl = Netlink::new()?;
    let options = StartOptions {
        policy_override: fixed.then_some(TxPolicy::Fixed(0)),
    };
    let lagg = Lagg::start(&nl, &cfg, options)?;
    println!("ready");
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(50));
    }
    print!("{}", lagg.status_table());
    lagg.stop(&nl);
    Ok(())
}

/// Attaches the drop-everything XDP program to `ifaces` (in this namespace) until
/// SIGINT/SIGTERM.
///
/// # Errors
/// When attaching fails.
pub fn drop_sink(ifaces: &[String]) -> Result<()> {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, std::sync::Arc::clone(&stop))?;
    }
    let nl = Netlink::new()?;
    let mut programs = Vec::new();
    for name in ifaces {
        let link = nl.require(name)?;
        programs.push(xlagg_dataplane::xdp::PortProgram::attach(
            name,
            link.index,
            xlagg_dataplane::xdp::ProgramKind::Drop,
        )?);
    }
    println!("ready");
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(programs);
    Ok(())
}

/// A child process stopped with SIGTERM on drop.
pub(crate) struct Guarded(Option<Child>);

impl Guarded {
    pub(crate) fn spawn_ready(mut cmd: Command, what: &str) -> Result<Guarded> {
        use std::io::BufRead as _;
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("starting {what}"))?;
        let stdout = child.stdout.take().context("stdout")?;
        let mut guard = Guarded(Some(child));
        let mut lines = std::io::BufReader::new(stdout).lines();
        match lines.next() {
            Some(Ok(line)) if line.contains("ready") => {
                // Keep draining so the child never blocks on a full pipe.
                std::thread::spawn(move || for _ in lines.by_ref() {});
                Ok(guard)
            }
            other => {
                guard.stop();
                bail!("{what} did not start (printed {other:?})")
            }
        }
    }

    /// Takes charge of a child that is already running.
    pub(crate) fn adopt(child: Child) -> Guarded {
        Guarded(Some(child))
    }

    /// The child's standard output, if it was piped and not taken yet.
    pub(crate) fn stdout(&mut self) -> Option<std::process::ChildStdout> {
        self.0.as_mut()?.stdout.take()
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let _ = child.wait();
        }
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        self.stop();
    }
}

fn sum_counters(bed: &Bed, role: &str, prefix: &str, rx: bool) -> Result<Vec<u64>> {
    let mut v: Vec<(String, u64)> = bed
        .packet_counters(role)?
        .into_iter()
        .filter(|(n, _, _)| n.starts_with(prefix))
        .map(|(n, r, t)| (n, if rx { r } else { t }))
        .collect();
    v.sort();
    Ok(v.into_iter().map(|(_, c)| c).collect())
}

fn measure(bed: &Bed, exe: &Path, opts: &ForwardOptions, fixed: bool) -> Result<Sample> {
    let members: Vec<String> = (0..opts.members).map(|i| format!("xlm{i}")).collect();
    let mut serve = bed.exec("app", exe);
    serve.args([
        "serve",
        "--members",
        &members.join(","),
        "--forward",
        "xld0",
        "--proto",
        &opts.proto,
        "--core",
        &opts.worker_core.to_string(),
    ]);
    if fixed {
        serve.arg("--fixed");
    }
    let _serve = Guarded::spawn_ready(serve, "xlagg-bench serve")?;
    let mut gen = bed.exec("src", exe);
    gen.args([
        "generate",
        "--iface",
        "xls0",
        "--flows",
        &opts.flows.to_string(),
        "--size",
        &opts.size.to_string(),
        "--seconds",
        &opts.seconds.to_string(),
        "--core",
        &opts.generator_core.to_string(),
        "--engine",
        opts.engine.name(),
    ]);
    let generator = gen
        .stdout(Stdio::piped())
        .spawn()
        .context("starting the generator")?;
    let warmup = (opts.seconds * 0.25).max(0.5);
    std::thread::sleep(Duration::from_secs_f64(warmup));
    let t0 = Instant::now();
    let p0 = sum_counters(bed, "ptr", "xlp", true)?;
    // Offered load: what reaches the forward port (veth counts frames its XDP program sees).
    let s0 = sum_counters(bed, "app", "xld", true)?;
    std::thread::sleep(Duration::from_secs_f64(opts.seconds - 2.0 * warmup));
    let dt = t0.elapsed().as_secs_f64();
    let p1 = sum_counters(bed, "ptr", "xlp", true)?;
    let s1 = sum_counters(bed, "app", "xld", true)?;
    let out = generator.wait_with_output().context("generator")?;
    if !out.status.success() {
        bail!("the generator failed");
    }
    let per_member: Vec<f64> = p0
        .iter()
        .zip(&p1)
        .map(|(a, b)| (b - a) as f64 / dt)
        .collect();
    Ok(Sample {
        delivered_pps: per_member.iter().sum(),
        offered_pps: s0.iter().zip(&s1).map(|(a, b)| (b - a) as f64 / dt).sum(),
        per_member_pps: per_member,
    })
}

/// The machine, for reports: CPU model, cores, kernel.
pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!("{cpu}, {cores} cores, Linux {}", kernel.trim())
}

/// Runs the benchmark on a fresh test bed (removed at the end) and prints the table.
///
/// # Errors
/// Any failing step; the test bed is removed anyway.
pub fn run(opts: &ForwardOptions, testbed: &Path) -> Result<ForwardReport> {
    if opts.seconds < 2.0 {
        bail!("--seconds must be at least 2 (warm-up and a measurement window)");
    }
    let exe: PathBuf = std::env::current_exe().context("own path")?;
    // Every run uses the same generator, and the report names it.
    let opts = &ForwardOptions {
        engine: opts.engine.resolve(),
        ..opts.clone()
    };
    let id = format!("bf{}", std::process::id() % 100_000);
    let bed = Bed::up(testbed, &id, opts.members, false)?;
    let partner: Vec<String> = (0..opts.members).map(|i| format!("xlp{i}")).collect();
    let mut sink = bed.exec("ptr", &exe);
    sink.args(["drop", "--ifaces", &partner.join(",")]);
    let _sink = Guarded::spawn_ready(sink, "xlagg-bench drop")?;
    let mut runs = Vec::new();
    println!(
        "forward: {} members, {} B frames, {} flows, laggproto {}, {} runs of {} s per variant, {:?} generator",
        opts.members, opts.size, opts.flows, opts.proto, opts.runs, opts.seconds, opts.engine
    );
    println!(
        "{:>4} {:>14} {:>14} {:>8} {:>14}   per-member Mpps (lagg)",
        "run", "ceiling Mpps", "lagg Mpps", "ratio", "offered Mpps"
    );
    for i in 0..opts.runs {
        let (ceiling, lagg) = if i % 2 == 0 {
            let c = measure(&bed, &exe, opts, true)?;
            (c, measure(&bed, &exe, opts, false)?)
        } else {
            let l = measure(&bed, &exe, opts, false)?;
            (measure(&bed, &exe, opts, true)?, l)
        };
        let ratio = lagg.delivered_pps / ceiling.delivered_pps.max(1.0);
        println!(
            "{:>4} {:>14.3} {:>14.3} {:>8.3} {:>14.3}   {}",
            i + 1,
            ceiling.delivered_pps / 1e6,
            lagg.delivered_pps / 1e6,
            ratio,
            lagg.offered_pps / 1e6,
            lagg.per_member_pps
                .iter()
                .map(|p| format!("{:.3}", p / 1e6))
                .collect::<Vec<_>>()
                .join(" ")
        );
        runs.push(RunResult {
            ceiling,
            lagg,
            ratio,
        });
    }
    let mpps = |f: &dyn Fn(&RunResult) -> f64| {
        Spread::of(&runs.iter().map(|r| f(r) / 1e6).collect::<Vec<_>>())
    };
    let report = ForwardReport {
        options: opts.clone(),
        machine: machine(),
        ceiling_mpps: mpps(&|r| r.ceiling.delivered_pps),
        lagg_mpps: mpps(&|r| r.lagg.delivered_pps),
        ratio: Spread::of(&runs.iter().map(|r| r.ratio).collect::<Vec<_>>()),
        runs,
    };
    println!("machine: {}", report.machine);
    for (name, s) in [
        ("ceiling Mpps", report.ceiling_mpps),
        ("lagg Mpps", report.lagg_mpps),
        ("ratio", report.ratio),
    ] {
        println!(
            "{name:>14}: min {:.3}  median {:.3}  max {:.3}",
            s.min, s.median, s.max
        );
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::Spread;

    #[test]
    fn spread_of_odd_and_even_lists() {
        let s = Spread::of(&[3.0, 1.0, 2.0]);
        assert_eq!((s.min, s.median, s.max), (1.0, 2.0, 3.0));
        let s = Spread::of(&[4.0, 1.0, 2.0, 3.0]);
        assert_eq!((s.min, s.median, s.max), (1.0, 2.5, 4.0));
    }
}
