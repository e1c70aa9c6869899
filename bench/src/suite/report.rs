//! The suite's results: the report model (`results.json`) and its Markdown summary.

use super::*;

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
    /// RFC 2544 rows (NDR, PDR, latency at fractions of PDR).
    #[serde(default)]
    pub rfc2544: Vec<Rfc2544Row>,
}

/// Writes `results.json`, `summary.md`, `throughput.svg`, `latency.svg` and (where the
/// scenario ran) `rfc2544.svg` into `out`.
///
/// # Errors
/// I/O.
pub fn write(r: &Results, out: &Path) -> Result<()> {
    std::fs::create_dir_all(out)?;
    std::fs::write(out.join("results.json"), serde_json::to_string_pretty(r)?)?;
    std::fs::write(out.join("summary.md"), summary(r))?;
    std::fs::write(out.join("throughput.svg"), throughput_svg(r))?;
    std::fs::write(out.join("latency.svg"), latency_svg(r))?;
    if !r.rfc2544.is_empty() {
        std::fs::write(out.join("rfc2544.svg"), rfc2544_svg(r))?;
    }
    println!("results: {}", out.display());
    Ok(())
}

/// The generator, as the summary names it.
pub(super) fn generator_words(generator: Engine) -> &'static str {
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
    if !r.rfc2544.is_empty() {
        rfc2544_summary(&mut s, r);
    }
    s
}

/// The RFC 2544 tables: NDR and PDR per size and forwarder, then latency at fractions of PDR.
fn rfc2544_summary(s: &mut String, r: &Results) {
    use std::fmt::Write;
    let _ = writeln!(
        s,
        "\n## RFC 2544 throughput (NDR: no loss; PDR: at most 0.5 %; min/median/max over runs)\n"
    );
    let _ = writeln!(
        s,
        "Final trials of {} s, search width {} %; loss from the tester port's transmit counters \
         and the sink's counts.\n",
        r.options.trial_seconds,
        r.options.width * 100.0
    );
    let _ = writeln!(s, "| size | forwarder | NDR Mpps | PDR Mpps | NDR Gbit/s | NDR / ceiling | NDR / kernel | PDR / ceiling | tester max Mpps | trials |");
    let _ = writeln!(
        s,
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
    );
    let spread = |x: &Spread| format!("{:.3}/{:.3}/{:.3}", x.min, x.median, x.max);
    for row in &r.rfc2544 {
        let at_max = if row.pdr_at_tester_max > 0 {
            format!(" ({} at tester max)", row.pdr_at_tester_max)
        } else {
            String::new()
        };
        let _ = writeln!(
            s,
            "| {} | {} | {} | {}{} | {:.2} | {} | {} | {} | {} | {} |",
            row.size,
            row.variant,
            spread(&row.ndr_mpps),
            spread(&row.pdr_mpps),
            at_max,
            row.ndr_gbps_median,
            spread(&row.ndr_to_ceiling),
            spread(&row.ndr_to_kernel),
            spread(&row.pdr_to_ceiling),
            spread(&row.tester_max_mpps),
            row.trials.len()
        );
    }
    let _ = writeln!(
        s,
        "\n### Latency at 10, 50 and 90 % of PDR (median over runs)\n"
    );
    let _ = writeln!(
        s,
        "| size | forwarder | of PDR | Mpps | p50 µs | p99 µs | p99.9 µs | max µs | loss |"
    );
    let _ = writeln!(s, "| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for row in &r.rfc2544 {
        for of_pdr in rfc2544::LATENCY_AT {
            let at: Vec<&Rfc2544Latency> = row
                .latency
                .iter()
                .filter(|l| (l.of_pdr - of_pdr).abs() < 1e-9)
                .collect();
            if at.is_empty() {
                continue;
            }
            let median = |f: &dyn Fn(&Rfc2544Latency) -> f64| {
                Spread::of(&at.iter().map(|l| f(l)).collect::<Vec<_>>()).median
            };
            let _ = writeln!(
                s,
                "| {} | {} | {:.0} % | {:.3} | {:.1} | {:.1} | {:.1} | {:.1} | {:.4} % |",
                row.size,
                row.variant,
                of_pdr * 100.0,
                median(&|l| l.pps) / 1e6,
                median(&|l| l.percentiles_us[0]),
                median(&|l| l.percentiles_us[2]),
                median(&|l| l.percentiles_us[3]),
                median(&|l| l.percentiles_us[4]),
                median(&|l| l.loss) * 100.0
            );
        }
    }
}
