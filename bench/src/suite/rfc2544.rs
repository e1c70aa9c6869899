//! The RFC 2544 scenario: for each frame size and forwarder, the highest rate with no loss
//! (NDR) and with at most 0.5 % loss (PDR), found by the search in `search`, then latency at
//! 10, 50 and 90 % of that PDR.
//!
//! A forwarder (a lagg per protocol and engine, or one of the two references) runs for a
//! whole search; each trial is one run of the paced AF_XDP generator at the rate asked. A
//! trial's loss comes from counters at both ends of the device under test, read before the
//! generator starts and after the last frame has drained:
//! - sent: the tester port's kernel counters, transmitted plus transmit drops (on veth a
//!   frame the receiving side's queue refused is a transmit drop of the sender, and it is a
//!   frame the device under test lost);
//! - received: the test frames the in-kernel sink counted on the partner ports.
//!
//! The generator's own count (its completions) is kept beside them for comparison, never
//! used. A trial in which the tester could not offer its rate (more than 1 % short, measured
//! by the same counter) does not meet a goal that the shortfall breaks: the rate was not
//! carried.

use std::io::{BufReader, Write};
use std::process::{ChildStdin, ChildStdout};

use super::search::{Answer, Outcome, Phase, Search};
use super::*;

/// Loss ratios of the two goals: NDR, PDR.
pub(super) const GOALS: [f64; 2] = [0.0, 0.005];

/// Latency runs, as fractions of the PDR found.
pub(super) const LATENCY_AT: [f64; 3] = [0.1, 0.5, 0.9];

/// The search's lowest rate, as a fraction of the tester's largest.
const MIN_FRACTION: f64 = 0.01;

/// A trial more than this short of its rate did not carry it.
const SHORT: f64 = 0.01;

/// Trials per search at most.
const MAX_TRIALS: usize = 60;

/// One trial as it ran.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TrialRecord {
    /// Run (from 0).
    pub run: usize,
    /// Frames per second asked (0: flat out, the first trial).
    pub target_pps: f64,
    /// Seconds the generator ran.
    pub seconds: f64,
    /// Frames the tester port sent (kernel counters: transmitted plus transmit drops).
    pub sent: u64,
    /// Test frames the sink counted on the partner ports.
    pub received: u64,
    /// Frames expected per frame sent (the members, for broadcast; else 1).
    pub copies: u64,
    /// What the generator reported sent (its completions), for comparison only.
    pub generator_sent: u64,
    /// `sent` per second.
    pub offered_pps: f64,
    /// Lost over expected, 0.0 to 1.0.
    pub loss: f64,
    /// The tester offered more than 1 % less than asked.
    pub short: bool,
}

/// Latency at a fraction of the PDR.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Rfc2544Latency {
    /// Run (from 0).
    pub run: usize,
    /// Fraction of this run's PDR.
    pub of_pdr: f64,
    /// Frames per second offered.
    pub pps: f64,
    /// Frames with a latency sample.
    pub samples: u64,
    /// p50, p90, p99, p99.9, max in microseconds.
    pub percentiles_us: [f64; 5],
    /// Loss in the run, 0.0 to 1.0.
    pub loss: f64,
}

/// NDR and PDR of one forwarder at one size.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Rfc2544Row {
    /// Size.
    pub size: String,
    /// What forwarded.
    pub variant: String,
    /// NDR, Mpps, over the runs.
    pub ndr_mpps: Spread,
    /// PDR, Mpps, over the runs.
    pub pdr_mpps: Spread,
    /// NDR in Gbit/s (median; frame bits with FCS).
    pub ndr_gbps_median: f64,
    /// PDR in Gbit/s (median).
    pub pdr_gbps_median: f64,
    /// Per run, NDR over the AF_XDP ceiling's NDR in the same run.
    pub ndr_to_ceiling: Spread,
    /// Per run, NDR over the kernel redirect's.
    pub ndr_to_kernel: Spread,
    /// Per run, PDR over the ceiling's PDR.
    pub pdr_to_ceiling: Spread,
    /// Per run, PDR over the kernel redirect's.
    pub pdr_to_kernel: Spread,
    /// The tester's largest rate (its flat-out trial), Mpps, over the runs.
    pub tester_max_mpps: Spread,
    /// Runs whose PDR held at the tester's largest rate (the device was not the limit).
    pub pdr_at_tester_max: usize,
    /// Runs whose search hit the trial cap before its final phase.
    pub cut_short: usize,
    /// Latency at 10, 50 and 90 % of each run's PDR.
    pub latency: Vec<Rfc2544Latency>,
    /// Every trial.
    pub trials: Vec<TrialRecord>,
}

/// One search's result.
struct Searched {
    ndr: Answer,
    pdr: Answer,
    tester_max: f64,
    cut_short: bool,
    latency: Vec<Rfc2544Latency>,
    trials: Vec<TrialRecord>,
}

/// The sink in `--commands` mode: counts read on request.
struct CountingSink {
    child: std::process::Child,
    stdin: Option<ChildStdin>,
    stdout: std::io::Lines<BufReader<ChildStdout>>,
}

impl CountingSink {
    fn start(setup: &Setup) -> Result<CountingSink> {
        let mut cmd = setup.bed.exec("ptr", &setup.exe);
        cmd.args([
            "xdpsink",
            "--ifaces",
            &setup.member_names("xlp").join(","),
            "--flows",
            "0",
            "--commands",
        ]);
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .context("starting the sink")?;
        let stdin = child.stdin.take();
        match super::sink_ready(&mut child) {
            Ok(stdout) => Ok(CountingSink {
                child,
                stdin,
                stdout,
            }),
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                Err(e)
            }
        }
    }

    fn read(&mut self) -> Result<Vec<SinkPort>> {
        let stdin = self.stdin.as_mut().context("sink closed")?;
        writeln!(stdin, "read")?;
        stdin.flush()?;
        let line = self.stdout.next().context("the sink ended")??;
        Ok(serde_json::from_str(&line)?)
    }
}

impl Drop for CountingSink {
    fn drop(&mut self) {
        // Closing its input ends it; a kill makes sure.
        self.stdin.take();
        std::thread::sleep(Duration::from_millis(50));
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a trial sends.
struct Load {
    size: Size,
    shape: Shape,
    flows: u32,
    /// Frames the partner gets per frame sent.
    copies: u64,
    run: usize,
}

/// A trial and the latency samples it brought.
struct Ran {
    record: TrialRecord,
    latency: Vec<u64>,
    stamped: u64,
}

impl Ran {
    /// The loss the search sees: a short trial misses any goal its shortfall breaks.
    fn search_loss(&self) -> f64 {
        let r = &self.record;
        if r.short {
            r.loss.max(1.0 - r.offered_pps / r.target_pps)
        } else {
            r.loss
        }
    }
}

impl Setup<'_> {
    /// One trial at `pps` (0: flat out) for `seconds`, counted at both ends.
    fn trial(&self, sink: &mut CountingSink, load: &Load, pps: f64, seconds: f64) -> Result<Ran> {
        if self.stop.load(Ordering::Relaxed) {
            bail!("interrupted");
        }
        let before = sink.read()?;
        let sent0 = self.bed.sent("src", "xls0")?;
        let out = self
            .generator(
                load.size,
                load.shape,
                load.flows,
                pps.round() as u64,
                seconds,
                "afxdp",
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .context("running the generator")?;
        if !out.status.success() {
            bail!(
                "the generator failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        let report: serde_json::Value =
            serde_json::from_slice(&out.stdout).context("the generator's report")?;
        let generator_sent = report["sent"].as_u64().unwrap_or(0);
        let ran_for = report["seconds"].as_f64().unwrap_or(seconds).max(1e-3);
        // Let the last frames drain through the forwarder before the counts are read.
        std::thread::sleep(Duration::from_millis(150));
        let after = sink.read()?;
        let sent = self.bed.sent("src", "xls0")?.saturating_sub(sent0);
        let received: u64 = after
            .iter()
            .zip(&before)
            .map(|(a, b)| a.test.saturating_sub(b.test))
            .sum();
        let mut latency = vec![0u64; xlagg_common::SINK_LATENCY_BUCKETS as usize];
        for (a, b) in after.iter().zip(&before) {
            for ((sum, x), y) in latency.iter_mut().zip(&a.latency).zip(&b.latency) {
                *sum += x.saturating_sub(*y);
            }
        }
        let stamped = after
            .iter()
            .zip(&before)
            .map(|(a, b)| a.stamped.saturating_sub(b.stamped))
            .sum();
        let expected = sent * load.copies;
        let loss = if expected == 0 {
            1.0
        } else {
            expected.saturating_sub(received) as f64 / expected as f64
        };
        let offered_pps = sent as f64 / ran_for;
        Ok(Ran {
            record: TrialRecord {
                run: load.run,
                target_pps: pps,
                seconds,
                sent,
                received,
                copies: load.copies,
                generator_sent,
                offered_pps,
                loss,
                short: pps > 0.0 && offered_pps < pps * (1.0 - SHORT),
            },
            latency,
            stamped,
        })
    }

    /// The search for one forwarder at one size, then its latency runs.
    fn search(&self, variant: &Variant, load: &Load, opts: &SuiteOptions) -> Result<Searched> {
        let _forwarder = self.forwarder(variant)?;
        let mut sink = CountingSink::start(self)?;
        let phases: Vec<Phase> = Search::phases(opts.trial_seconds, opts.width, opts.phases, 1.0);
        let first = phases[0].seconds;
        let last = phases[phases.len() - 1].seconds;
        let mut trials = Vec::new();
        // Flat out first: the tester's largest rate, and the device's rate at it.
        let ran = self.trial(&mut sink, load, 0.0, first)?;
        let tester_max = ran.record.offered_pps;
        let mut search = Search::new(
            tester_max * MIN_FRACTION,
            tester_max,
            &GOALS,
            phases,
            MAX_TRIALS,
        );
        search.record(Outcome {
            rate: tester_max,
            seconds: first,
            loss: ran.search_loss(),
        });
        trials.push(ran.record);
        while let Some((rate, seconds)) = search.next_trial() {
            let ran = self.trial(&mut sink, load, rate, seconds)?;
            search.record(Outcome {
                rate,
                seconds,
                loss: ran.search_loss(),
            });
            trials.push(ran.record);
        }
        let answers = search.answers();
        let (ndr, pdr) = (answers[0], answers[1]);
        println!(
            "  {:>6} {:<32} run {}: NDR {:.3} Mpps, PDR {:.3} Mpps (tester {:.3} Mpps, {} trials)",
            load.size.name(),
            variant.name(),
            load.run + 1,
            ndr.lower / 1e6,
            pdr.lower / 1e6,
            tester_max / 1e6,
            trials.len()
        );
        let mut latency = Vec::new();
        for of_pdr in LATENCY_AT {
            let pps = pdr.lower * of_pdr;
            if pps < 1000.0 {
                continue;
            }
            let ran = self.trial(&mut sink, load, pps, last)?;
            let ns =
                xlagg_control::mgmt::metrics::latency_percentiles(&ran.latency).unwrap_or_default();
            latency.push(Rfc2544Latency {
                run: load.run,
                of_pdr,
                pps,
                samples: ran.stamped,
                percentiles_us: ns.map(|v| v as f64 / 1000.0),
                loss: ran.record.loss,
            });
        }
        Ok(Searched {
            ndr,
            pdr,
            tester_max,
            cut_short: search.cut_short(),
            latency,
            trials,
        })
    }
}

/// The forwarders of one size: the two references first, then each protocol on each engine
/// (the throughput scenario's too).
pub(super) fn variants(opts: &SuiteOptions, size: Size) -> Vec<Variant> {
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
    variants
}

/// Runs the scenario: every size, forwarder and run.
///
/// # Errors
/// Any failing trial; the caller removes the bed.
pub(super) fn run(setup: &Setup, opts: &SuiteOptions) -> Result<Vec<Rfc2544Row>> {
    let mut sizes = opts.rfc2544_sizes.clone();
    sizes.sort_by_key(|s| s.is_jumbo());
    let mut rows = Vec::new();
    for size in sizes {
        setup.links_mtu(if size.is_jumbo() { 9000 } else { 1500 })?;
        let variants = variants(opts, size);
        // found[variant][run]
        let mut found: Vec<Vec<Searched>> = variants.iter().map(|_| Vec::new()).collect();
        for run in 0..opts.runs {
            // Rotate the order each run so drift favours no forwarder.
            for k in 0..variants.len() {
                let v = (k + run) % variants.len();
                let broadcast = matches!(&variants[v], Variant::Lagg(p) | Variant::XdpEngine(p) | Variant::BusyPoll(p) if p == "broadcast");
                let load = Load {
                    size,
                    shape: opts.shape,
                    flows: opts.flows,
                    copies: if broadcast { setup.members as u64 } else { 1 },
                    run,
                };
                found[v].push(setup.search(&variants[v], &load, opts)?);
            }
        }
        for (v, variant) in variants.iter().enumerate() {
            rows.push(row(size, variant, &found[v], &found[0], &found[1]));
        }
    }
    Ok(rows)
}

/// One row from a forwarder's runs and the references' runs.
fn row(
    size: Size,
    variant: &Variant,
    runs: &[Searched],
    ceiling: &[Searched],
    kernel: &[Searched],
) -> Rfc2544Row {
    let mpps = |f: &dyn Fn(&Searched) -> f64| {
        Spread::of(&runs.iter().map(|s| f(s) / 1e6).collect::<Vec<_>>())
    };
    let ratio = |f: &dyn Fn(&Searched) -> f64, reference: &[Searched]| {
        Spread::of(
            &runs
                .iter()
                .zip(reference)
                .map(|(a, b)| f(a) / f(b).max(1.0))
                .collect::<Vec<_>>(),
        )
    };
    let ndr = |s: &Searched| s.ndr.lower;
    let pdr = |s: &Searched| s.pdr.lower;
    let ndr_mpps = mpps(&ndr);
    let pdr_mpps = mpps(&pdr);
    let gbps = |mpps: f64| mpps * 1e6 * size.average_bytes() * 8.0 / 1e9;
    Rfc2544Row {
        size: size.name(),
        variant: variant.name(),
        ndr_gbps_median: gbps(ndr_mpps.median),
        pdr_gbps_median: gbps(pdr_mpps.median),
        ndr_mpps,
        pdr_mpps,
        ndr_to_ceiling: ratio(&ndr, ceiling),
        ndr_to_kernel: ratio(&ndr, kernel),
        pdr_to_ceiling: ratio(&pdr, ceiling),
        pdr_to_kernel: ratio(&pdr, kernel),
        tester_max_mpps: mpps(&|s| s.tester_max),
        pdr_at_tester_max: runs.iter().filter(|s| s.pdr.upper.is_none()).count(),
        cut_short: runs.iter().filter(|s| s.cut_short).count(),
        latency: runs.iter().flat_map(|s| s.latency.clone()).collect(),
        trials: runs.iter().flat_map(|s| s.trials.clone()).collect(),
    }
}
