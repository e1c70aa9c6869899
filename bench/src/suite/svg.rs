//! The suite's plots: throughput bars per size and latency percentiles, as SVG.

use super::*;

fn svg_escape(t: &str) -> String {
    t.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Grouped bars: median Mpps per forwarder, one group per size.
pub fn throughput_svg(r: &Results) -> String {
    let bars: Vec<Bar> = r
        .throughput
        .iter()
        .map(|t| Bar {
            size: &t.size,
            variant: t.variant.clone(),
            mpps: t.mpps,
        })
        .collect();
    bars_svg("Throughput, Mpps (median; whiskers min-max)", &bars)
}

/// Grouped bars of the RFC 2544 scenario: NDR and PDR per forwarder, one group per size.
pub fn rfc2544_svg(r: &Results) -> String {
    let bars: Vec<Bar> = r
        .rfc2544
        .iter()
        .flat_map(|row| {
            [
                Bar {
                    size: &row.size,
                    variant: format!("{} NDR", row.variant),
                    mpps: row.ndr_mpps,
                },
                Bar {
                    size: &row.size,
                    variant: format!("{} PDR", row.variant),
                    mpps: row.pdr_mpps,
                },
            ]
        })
        .collect();
    bars_svg(
        "RFC 2544: NDR (no loss) and PDR (at most 0.5 % loss), Mpps (median; whiskers min-max)",
        &bars,
    )
}

/// One bar: a forwarder's rate at a size.
struct Bar<'a> {
    size: &'a str,
    variant: String,
    mpps: Spread,
}

fn bars_svg(title: &str, bars: &[Bar]) -> String {
    use std::fmt::Write;
    let mut sizes: Vec<&str> = Vec::new();
    let mut variants: Vec<&str> = Vec::new();
    for b in bars {
        if !sizes.contains(&b.size) {
            sizes.push(b.size);
        }
        if !variants.contains(&b.variant.as_str()) {
            variants.push(&b.variant);
        }
    }
    let max = bars
        .iter()
        .map(|b| b.mpps.max)
        .fold(0.0, f64::max)
        .max(0.001);
    let colors = [
        "#68737f", "#adb5bd", "#0b63b6", "#d9480f", "#2b8a3e", "#862e9c", "#c2255c", "#e67700",
        "#1098ad", "#5c940d", "#364fc7", "#a61e4d",
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
        r#"<text x="{left}" y="14" font-size="13">{}</text>"#,
        svg_escape(title)
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
            if let Some(t) = bars
                .iter()
                .find(|b| b.size == *size && b.variant == *variant)
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
