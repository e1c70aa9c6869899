//! Observability while traffic flows: /metrics shows the catalog's metrics with the right
//! ports carrying the frames, the state dump holds counters and events, and the live
//! dashboard in headless Chromium shows non-zero rates on the ports that carry traffic and
//! none on those that do not (a screenshot is saved). Needs root and chromium; fails otherwise.

mod common;

use std::process::{Child, Stdio};

use common::browser::Browser;
use common::{bench_bin, run, serial, Bed, Daemon};

/// A paced sender in the source namespace: 20 000 frames/s over 64 flows for ~`secs`.
fn traffic(bed: &Bed, secs: u32) -> Child {
    let per_flow = (20_000 * secs / 64).to_string();
    bed.exec(
        "src",
        &[
            bench_bin().to_str().expect("utf-8 path"),
            "send",
            "--iface",
            "xls0",
            "--flows",
            "64",
            "--per-flow",
            &per_flow,
            "--pps",
            "20000",
        ],
    )
    .stdout(Stdio::null())
    .spawn()
    .expect("start the sender")
}

fn metrics(bed: &Bed) -> String {
    let out = run(&mut bed.exec("app", &["curl", "-s", "http://127.0.0.1:8474/metrics"]));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(series))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no series {series} in:\n{text}"))
}

#[test]
fn metrics_dump_and_live_dashboard_under_traffic() {
    let _serial = serial();
    let bed = Bed::up(2, false);
    let mut config = bed.config("loadbalance", "", false);
    config.push_str("\n[[lagg]]\nname = \"lagg1\"\nup = false\n");
    let daemon = Daemon::start(&bed, &config);
    let mut sender = traffic(&bed, 8);

    let mut b = Browser::open(&bed, "app");
    b.goto("http://127.0.0.1:8474/dashboard");
    // Rates need two snapshots with traffic between them.
    b.wait_for(
        "[...document.querySelectorAll('td[data-port=xlm0][data-metric=tx_pps]')].some(td => Number(td.dataset.value) > 1000)",
        20,
        "a transmit rate on xlm0",
    );
    b.wait_for(
        "Number(document.querySelector('td[data-port=xlm1][data-metric=tx_pps]').dataset.value) > 1000",
        10,
        "a transmit rate on xlm1",
    );
    let rate = |b: &mut Browser, port: &str, metric: &str| -> f64 {
        b.eval(&format!(
            "Number(document.querySelector('td[data-port={port}][data-metric={metric}]').dataset.value)"
        ))
        .as_f64()
        .unwrap()
    };
    // Each member's share of the bytes sent, from the daemon's own window.
    b.wait_for(
        "['xlm0', 'xlm1'].every(p => { const v = Number(document.querySelector(`td[data-port=${p}][data-metric=tx_share]`).dataset.value); return v > 0 && v < 1; })",
        10,
        "a share of the traffic on both members",
    );
    let shares = rate(&mut b, "xlm0", "tx_share") + rate(&mut b, "xlm1", "tx_share");
    assert!(
        (shares - 1.0).abs() < 0.01,
        "the members' shares add up to the whole: {shares}"
    );
    let facts = b.eval("document.querySelector('.facts').textContent");
    assert!(
        facts.as_str().is_some_and(|f| f.contains("imbalance")),
        "the lagg's line shows the imbalance index: {facts}"
    );
    // The bucket map: the sender's 64 flows light at most 64 of the 256 buckets (about 57
    // expected), each in a member's colour, carrying what the members send.
    b.wait_for(
        "[...document.querySelectorAll('.heat div')].some(c => Number(c.dataset.pps) > 0)",
        10,
        "a bucket with traffic on the map",
    );
    let heat = b.eval(
        "(() => { const cells = [...document.querySelectorAll('.heat div')];
           const hot = cells.filter(c => Number(c.dataset.pps) > 0);
           return { cells: cells.length, hot: hot.length, members: [...new Set(hot.map(c => c.dataset.member))],
                    pps: hot.reduce((s, c) => s + Number(c.dataset.pps), 0) }; })()",
    );
    assert_eq!(heat["cells"], 256, "{heat}");
    let hot = heat["hot"].as_u64().expect("hot");
    assert!(
        (32..=64).contains(&hot),
        "64 flows light at most 64 buckets: {heat}"
    );
    assert!(
        heat["members"]
            .as_array()
            .expect("members")
            .iter()
            .all(|m| m == "xlm0" || m == "xlm1"),
        "{heat}"
    );
    let bucket_pps = heat["pps"].as_f64().expect("pps");
    let down_rx = rate(&mut b, "xld0", "rx_pps");
    assert!(
        (bucket_pps - down_rx).abs() < down_rx * 0.5,
        "the buckets place what the forward port receives: {bucket_pps} vs {down_rx}"
    );
    let members_tx = rate(&mut b, "xlm0", "tx_pps") + rate(&mut b, "xlm1", "tx_pps");
    assert!(
        down_rx > 5_000.0,
        "the forward port receives the offered 20 kpps: {down_rx}"
    );
    assert!(
        (members_tx - down_rx).abs() < down_rx * 0.5,
        "what comes in on xld0 leaves on the members: {members_tx} vs {down_rx}"
    );
    assert!(
        rate(&mut b, "xlm0", "rx_pps") < 100.0,
        "nothing comes back from the partner"
    );
    assert!(
        rate(&mut b, "xld0", "tx_pps") < 100.0,
        "nothing goes back to the source"
    );
    b.wait_for(
        "Number(document.querySelector('td[data-metric=busy]').dataset.value) > 0",
        5,
        "a worker busy ratio",
    );
    b.wait_for(
        "document.querySelectorAll('.hist div').length > 0 && document.querySelector('.pct').textContent.includes('p99')",
        5,
        "the latency histogram",
    );
    let events = b.eval("document.querySelector('#events tbody').innerText");
    assert!(
        events.as_str().unwrap().contains("link up"),
        "the timeline shows the start: {events}"
    );
    // A few more seconds of history for the charts in the screenshot.
    std::thread::sleep(std::time::Duration::from_secs(3));
    let artifacts = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("artifacts");
    b.screenshot(&artifacts.join("dashboard.png"));
    let problems = b.layout_problems();
    assert!(
        problems.is_empty(),
        "the dashboard is laid out wrong:\n{}",
        problems.join("\n")
    );
    // The widest rows a port table carries: every LACP state bit on both sides and the
    // partner's full identity, drawn by the page's own code from the last snapshot.
    b.eval(
        "const wide = structuredClone(previous);
         wide.time_ms += 1000;
         const all = ['ACTIVITY', 'TIMEOUT', 'AGGREGATION', 'SYNC', 'COLLECTING', 'DISTRIBUTING', 'DEFAULTED', 'EXPIRED'];
         for (const l of wide.laggs) for (const p of l.ports) {
           p.lacp = { actor_state: all, mux: 'COLLECTING_DISTRIBUTING', partner: '(FFFF,02-00-00-00-00-ff,FFFF,FFFF,FFFF)', partner_state: all };
         }
         render(wide);",
    );
    let problems = b.layout_problems();
    assert!(
        problems.is_empty(),
        "the dashboard with LACP rows is laid out wrong:\n{}",
        problems.join("\n")
    );
    // The rate axes: distinct labels and a top at or above the largest value, from no traffic
    // to 100 Gbit/s; what the charts on the page print now, too.
    let ticks = b.eval(
        "[0, 0.4, 1, 3, 999, 1000, 1234, 48000, 1.2e6, 7.5e7, 2.5e9, 9.99e9, 1e11].map(m => {
           const t = axisTicks(m, 'b');
           return { m, top: t.top, labels: t.labels };
         })",
    );
    for t in ticks.as_array().expect("ticks") {
        let labels: Vec<&str> = t["labels"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l.as_str().unwrap())
            .collect();
        let mut distinct = labels.clone();
        distinct.dedup();
        assert_eq!(distinct.len(), 5, "axis labels for {}: {labels:?}", t["m"]);
        assert!(
            t["top"].as_f64().unwrap() >= t["m"].as_f64().unwrap(),
            "the axis covers {}: {t}",
            t["m"]
        );
    }
    let drawn = b.eval("[...document.querySelectorAll('canvas')].map(c => c.dataset.ticks)");
    let drawn = drawn.as_array().expect("canvases");
    assert!(!drawn.is_empty(), "the dashboard draws its rate charts");
    for labels in drawn {
        let labels: Vec<&str> = labels.as_str().expect("ticks drawn").split('|').collect();
        let mut distinct = labels.clone();
        distinct.dedup();
        assert_eq!(distinct.len(), 5, "a chart's axis: {labels:?}");
    }

    // /metrics: the same story in Prometheus text.
    let text = metrics(&bed);
    let tx0 = value(
        &text,
        "xlagg_port_tx_packets_total{lagg=\"lagg0\",port=\"xlm0\",role=\"member\"}",
    );
    let tx1 = value(
        &text,
        "xlagg_port_tx_packets_total{lagg=\"lagg0\",port=\"xlm1\",role=\"member\"}",
    );
    let rx = value(
        &text,
        "xlagg_port_rx_packets_total{lagg=\"lagg0\",port=\"xld0\",role=\"upper\"}",
    );
    assert!(
        tx0 > 1000.0 && tx1 > 1000.0,
        "both members carry frames: {tx0} {tx1}"
    );
    assert!(
        tx0 + tx1 <= rx + 1.0,
        "members sent at most what the forward port received"
    );
    assert_eq!(value(&text, "xlagg_lagg_up{lagg=\"lagg1\"}"), 0.0);
    assert_eq!(value(&text, "xlagg_lagg_active_ports{lagg=\"lagg0\"}"), 2.0);
    let imbalance = value(&text, "xlagg_lagg_tx_imbalance{lagg=\"lagg0\"}");
    assert!(
        (1.0..=2.0).contains(&imbalance),
        "two active members: an imbalance from 1 (even) to 2 (all on one): {imbalance}"
    );
    let shares = value(&text, "xlagg_port_tx_share{lagg=\"lagg0\",port=\"xlm0\"}")
        + value(&text, "xlagg_port_tx_share{lagg=\"lagg0\",port=\"xlm1\"}");
    assert!((shares - 1.0).abs() < 0.01, "shares in /metrics: {shares}");
    assert!(
        value(
            &text,
            "xlagg_worker_busy_seconds_total{lagg=\"lagg0\",worker=\"0\"}"
        ) > 0.0
    );
    assert!(value(&text, "xlagg_worker_latency_seconds_count{lagg=\"lagg0\"}") > 1000.0);
    for m in xlagg_control::mgmt::metrics::CATALOG {
        assert!(
            text.contains(&format!("# TYPE {} {}", m.name, m.kind)),
            "{} exported",
            m.name
        );
    }

    // The state dump: configuration, state, counters, events in one document.
    let out = common::xlaggctl(&daemon.socket, &["dump"]);
    let dump: serde_json::Value = serde_json::from_slice(&out.stdout).expect("dump is JSON");
    assert_eq!(dump["config"]["lagg"][0]["name"], "lagg0");
    assert_eq!(dump["laggs"][1]["state"], "down");
    assert!(
        dump["counters"]["laggs"][0]["ports"][0]["tx_packets"]
            .as_u64()
            .unwrap()
            > 0
    );
    assert!(dump["events"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["kind"] == "link"));

    let _ = sender.kill();
    let _ = sender.wait();
}
