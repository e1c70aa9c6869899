//! `switchover`: what a member's carrier loss costs under traffic, for failover and
//! loadbalance: the frames lost and the time from the carrier loss to the first frame of the
//! affected traffic on another member, over repeated flaps.
//!
//! A paced sender (fixed rate, sequence-numbered frames) runs through a forward-mode xlaggd;
//! the partner's sink stamps every frame with CLOCK_MONOTONIC, the same clock this process
//! reads just after cutting the carrier (`ip link set ... down` on the partner side, whose
//! own duration is reported too). Lost frames are the sequence numbers, between the last one
//! received before the cut and the first one of the affected traffic received after it, that
//! never arrived anywhere.

use std::collections::HashSet;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde::Serialize;
use xlagg_sys::afpacket::monotonic_ns;

use crate::forward::{Guarded, Spread};
use crate::packet_tools::TimestampSink;
use crate::testbed::Bed;

/// One carrier loss.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Flap {
    /// Milliseconds from the `ip link set down` command's return (the carrier is down by
    /// then) to the first affected frame on another member; 0 if one arrived even earlier.
    pub switchover_ms: f64,
    /// The same from the command's start: an upper bound, since the carrier drops in between.
    pub upper_bound_ms: f64,
    /// Frames lost around it.
    pub lost: u64,
    /// Milliseconds the `ip link set down` command itself took.
    pub ip_ms: f64,
}

/// The report.
#[derive(Debug, Serialize)]
pub struct SwitchoverReport {
    /// Protocol.
    pub proto: String,
    /// Offered rate, frames per second.
    pub pps: u64,
    /// Every flap.
    pub flaps: Vec<Flap>,
    /// Switchover time spread, ms.
    pub switchover_ms: Spread,
    /// Lost frames spread.
    pub lost: Spread,
}

const MEMBERS: usize = 4;

/// Starts xlaggd in the bed's appliance namespace with lagg0 over its members, forward mode
/// through xld0, protocol `proto` and `extra` lines; stopped when the guard drops (keep the
/// configuration file with it).
///
/// # Errors
/// When xlaggd is missing or does not come up.
pub(crate) fn start_daemon(
    bed: &Bed,
    proto: &str,
    extra: &str,
) -> Result<(Guarded, crate::testbed::TempFile)> {
    let xlaggd = crate::testbed::sibling_binary("xlaggd")?;
    let ports: Vec<String> = (0..MEMBERS).map(|i| format!("\"xlm{i}\"")).collect();
    let config = format!(
        "[daemon]\nlink_poll_ms = 10000\n\n[[lagg]]\nname = \"lagg0\"\nlaggproto = \"{proto}\"\nlaggports = [{}]\n\
         upper = \"forward\"\nforward_port = \"xld0\"\n{extra}",
        ports.join(", ")
    );
    let config = crate::testbed::TempFile::write(&format!("xlagg-bench-{}.toml", bed.id), &config)?;
    let path = &config.0;
    let mut daemon = bed.exec("app", &xlaggd);
    daemon
        .arg("--config")
        .arg(path)
        .arg("--socket")
        .arg(path.with_extension("sock"))
        .args(["--http", "off"]);
    // The daemon's log goes to this process's standard error (`spawn_ready` keeps it): redirect
    // that to keep what the control thread did during a run.
    Ok((Guarded::spawn_ready(daemon, "xlaggd")?, config))
}

/// Runs `flaps` carrier losses on its own test bed and prints the figures.
///
/// # Errors
/// Any failing step; the test bed is removed anyway.
pub fn run(proto: &str, flaps: usize, pps: u64, testbed: &Path) -> Result<SwitchoverReport> {
    let exe = std::env::current_exe()?;
    let bed = Bed::up(
        testbed,
        &format!("bs{}", std::process::id() % 100_000),
        MEMBERS,
        false,
    )?;
    let _daemon = start_daemon(&bed, proto, "")?;

    let partner: Vec<String> = (0..MEMBERS).map(|i| format!("xlp{i}")).collect();
    let sink = TimestampSink::start(&bed, &partner)?;

    // Failover: the master (xlp0) goes down. Loadbalance: xlp1 goes down, its flows move.
    let victim = if proto == "failover" { 0 } else { 1 };
    let flows = if proto == "failover" { 1 } else { 64 };
    let period = Duration::from_millis(1500);
    let seconds = 1.0 + flaps as f64 * period.as_secs_f64() + 1.0;
    let total = (seconds * pps as f64) as u32;
    let mut sender = bed.exec("src", &exe);
    sender
        .args([
            "send",
            "--iface",
            "xls0",
            "--flows",
            &flows.to_string(),
            "--per-flow",
            &(total / flows).to_string(),
            "--pps",
            &pps.to_string(),
        ])
        .stdout(Stdio::null());
    let mut sender = sender.spawn().context("starting the sender")?;
    std::thread::sleep(Duration::from_secs(1));
    let mut cuts = Vec::new();
    for _ in 0..flaps {
        let before = monotonic_ns();
        bed.set_link("ptr", &format!("xlp{victim}"), false)?;
        let after = monotonic_ns();
        cuts.push((before, after));
        std::thread::sleep(period / 2);
        bed.set_link("ptr", &format!("xlp{victim}"), true)?;
        std::thread::sleep(period / 2);
    }
    if !sender.wait()?.success() {
        bail!("the sender failed");
    }
    std::thread::sleep(Duration::from_millis(300));
    let report = sink.finish()?;

    // Flows carried by the victim port at some point: the traffic a carrier loss affects.
    let victim_flows: HashSet<u32> = report.ports[victim].arrivals.iter().map(|a| a.1).collect();
    let received: HashSet<u64> = report
        .ports
        .iter()
        .flat_map(|p| p.arrivals.iter().map(|a| a.0))
        .collect();
    let mut results = Vec::new();
    for &(before, after) in &cuts {
        let last_before = report
            .ports
            .iter()
            .flat_map(|p| p.arrivals.iter())
            .filter(|a| a.2 < before)
            .map(|a| a.0)
            .max()
            .unwrap_or(0);
        let first_moved = report
            .ports
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != victim)
            .flat_map(|(_, p)| p.arrivals.iter())
            .filter(|a| a.2 >= after && victim_flows.contains(&a.1))
            .min_by_key(|a| a.2)
            .copied();
        let Some((seq, _, at)) = first_moved else {
            bail!("no affected frame reached another member after a carrier loss");
        };
        let lost = (last_before + 1..seq)
            .filter(|s| !received.contains(s))
            .count() as u64;
        results.push(Flap {
            switchover_ms: (at.saturating_sub(after)) as f64 / 1e6,
            upper_bound_ms: (at.saturating_sub(before)) as f64 / 1e6,
            lost,
            ip_ms: (after - before) as f64 / 1e6,
        });
    }
    let switchover_ms = Spread::of(&results.iter().map(|f| f.switchover_ms).collect::<Vec<_>>());
    let lost = Spread::of(&results.iter().map(|f| f.lost as f64).collect::<Vec<_>>());
    println!("switchover, laggproto {proto}, {MEMBERS} members, {pps} frames/s offered, {flaps} carrier losses");
    println!(
        "{:>4} {:>14} {:>12} {:>8} {:>8}",
        "flap", "switchover ms", "upper bound", "lost", "ip ms"
    );
    for (i, f) in results.iter().enumerate() {
        println!(
            "{:>4} {:>14.3} {:>12.3} {:>8} {:>8.3}",
            i + 1,
            f.switchover_ms,
            f.upper_bound_ms,
            f.lost,
            f.ip_ms
        );
    }
    let upper = Spread::of(&results.iter().map(|f| f.upper_bound_ms).collect::<Vec<_>>());
    println!(
        "upper bound (from the start of the ip command) ms: min {:.3} median {:.3} max {:.3}",
        upper.min, upper.median, upper.max
    );
    println!(
        "switchover ms: min {:.3} median {:.3} max {:.3}; lost frames: min {} median {} max {}",
        switchover_ms.min, switchover_ms.median, switchover_ms.max, lost.min, lost.median, lost.max
    );
    let share = if proto == "failover" {
        1.0
    } else {
        1.0 / MEMBERS as f64
    };
    println!(
        "for comparison, link polling every 100 ms (bonding's usual miimon) detects a loss after 50 ms on average and \
         100 ms at worst: about {:.0} and {:.0} frames lost at this rate{}",
        pps as f64 * 0.05 * share,
        pps as f64 * 0.1 * share,
        if share < 1.0 { " (the failed member's share)" } else { "" }
    );
    Ok(SwitchoverReport {
        proto: proto.to_string(),
        pps,
        flaps: results,
        switchover_ms,
        lost,
    })
}
