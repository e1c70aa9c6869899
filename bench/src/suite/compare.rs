//! `compare`: the ratios between two results files.

use super::*;

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
