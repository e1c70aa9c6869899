//! The worker's frames and queues under membership and link changes: UMEM frames are never
//! lost (a down member hot-removed and re-added a hundred times under traffic), nothing queued
//! on a member whose device went down is sent after it returns, an idle worker with a down
//! member sleeps, and queues match the workers (a host-mode lagg on two workers; a port with
//! more active channels than workers is refused). Needs root and iperf3; fails otherwise.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{run, serial, xlaggd_bin, Bed, Daemon, Sink};

fn ctl(socket: &Path, args: &[&str]) {
    let out = common::xlaggctl(socket, args);
    assert!(
        out.status.success(),
        "xlaggctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn status(socket: &Path) -> serde_json::Value {
    let out = common::xlaggctl(socket, &["-j"]);
    assert!(out.status.success());
    serde_json::from_slice(&out.stdout).expect("JSON")
}

/// Waits for the workers' next copy of their frame counts, then checks that every frame is
/// somewhere and no audit failed.
fn frames_accounted(socket: &Path) -> serde_json::Value {
    std::thread::sleep(Duration::from_millis(1200));
    let s = status(socket);
    let umem = s[0]["umem"].clone();
    let workers = umem.as_array().expect("umem per worker");
    assert!(!workers.is_empty());
    for w in workers {
        let n = |k: &str| w[k].as_u64().expect("count");
        assert_eq!(
            n("free") + n("posted") + n("in_flight") + n("retiring"),
            n("total"),
            "frames lost or counted twice: {w}"
        );
        assert_eq!(n("audit_failures"), 0, "{w}");
    }
    umem
}

#[test]
fn a_down_member_removed_and_added_a_hundred_times_under_traffic_loses_no_frame() {
    let _serial = serial();
    let bed = Bed::up(3, false);
    let daemon = Daemon::start(&bed, &bed.config("loadbalance", "", false));
    bed.ip("ptr", &["link", "set", "xlp2", "down"]);
    let before = frames_accounted(&daemon.socket);
    // Traffic all along: 20 kpps over 64 flows for about 15 s.
    let mut sender = bed.start_sender(64, 4700, 0, 20_000);
    let started = Instant::now();
    for _ in 0..100 {
        ctl(&daemon.socket, &["lagg0", "-laggport", "xlm2"]);
        ctl(&daemon.socket, &["lagg0", "laggport", "xlm2"]);
    }
    eprintln!("100 removals and additions in {:?}", started.elapsed());
    let _ = sender.wait();
    let after = frames_accounted(&daemon.socket);
    assert_eq!(before[0]["total"], after[0]["total"]);
    let s = status(&daemon.socket);
    for port in s[0]["ports"].as_array().expect("ports") {
        let empty = port["drops"]["xsk_fill_ring_empty"].as_u64().unwrap_or(0);
        assert_eq!(
            empty, 0,
            "{} found its fill ring empty: {port}",
            port["name"]
        );
    }
}

/// User plus system CPU time of thread `name` of process `pid`, in clock ticks.
fn thread_cpu(pid: u32, name: &str) -> u64 {
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).expect("tasks") {
        let dir = task.expect("task").path();
        let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        if comm.trim() == name {
            let stat = std::fs::read_to_string(dir.join("stat")).expect("stat");
            let after = stat.rsplit_once(')').expect("comm").1;
            let f: Vec<&str> = after.split_whitespace().collect();
            return f[11].parse::<u64>().unwrap_or(0) + f[12].parse::<u64>().unwrap_or(0);
        }
    }
    panic!("no thread {name} in {pid}");
}

#[test]
fn frames_queued_on_a_member_that_went_down_never_leave_late_and_cost_no_cpu() {
    let _serial = serial();
    let bed = Bed::up(2, false);
    let config = bed.config("failover", "downdelay = 1500\n", false).replace(
        "link_poll_ms = 10000",
        "link_poll_ms = 10000\nstatus_interval_ms = 100",
    );
    let mut daemon = Daemon::start(&bed, &config);
    daemon.wait_status(10, "xlm0 active", |f| {
        f.get("xlm0").is_some_and(|s| s.contains("ACTIVE"))
    });
    let sink = Sink::start(&bed);
    // Before: delivered on the master.
    let _ = bed.start_sender(1, 50, 0, 10_000).wait();
    // The master's device goes down on the appliance; for its 1.5 s downdelay it stays the
    // active port, and what is sent now waits on its tx ring.
    bed.ip("app", &["link", "set", "xlm0", "down"]);
    let _ = bed.start_sender(1, 50, 1000, 10_000).wait();
    daemon.wait_status(5, "xlm1 active after the downdelay", |f| {
        f.get("xlm1").is_some_and(|s| s.contains("ACTIVE"))
    });
    // Nothing flows and the master is down with frames stuck: the worker sleeps.
    let pid = daemon.pid();
    let cpu = thread_cpu(pid, "xlagg-lagg0-w0");
    std::thread::sleep(Duration::from_secs(2));
    let used = thread_cpu(pid, "xlagg-lagg0-w0") - cpu;
    assert!(
        used <= 10,
        "the idle worker used {used} ticks of 200 in 2 s"
    );
    // The master returns: what was queued while it was down is discarded, new frames go.
    bed.ip("app", &["link", "set", "xlm0", "up"]);
    daemon.wait_status(5, "xlm0 active again", |f| {
        f.get("xlm0").is_some_and(|s| s.contains("ACTIVE"))
    });
    let _ = bed.start_sender(1, 50, 3000, 10_000).wait();
    let report = sink.finish();
    let seqs = |i: usize| -> Vec<u64> { report.ports[i].seqs.clone() };
    // Nothing queued on the master while it was down leaves when it returns.
    let stale: Vec<u64> = seqs(0)
        .into_iter()
        .filter(|s| (1000..1050).contains(s))
        .collect();
    assert!(stale.is_empty(), "sent after the link returned: {stale:?}");
    // The worker's transmit to the down master was refused at once, so the rest of what was
    // sent during the downdelay went to the backup then (the data path does not wait out
    // the control thread's delay).
    let rerouted = seqs(1)
        .into_iter()
        .filter(|s| (1000..1050).contains(s))
        .count();
    assert!(
        rerouted >= 40,
        "only {rerouted} of 50 frames sent while the master was down reached the backup"
    );
    let on_master = seqs(0);
    assert_eq!(
        on_master.iter().filter(|s| **s < 50).count(),
        50,
        "before the link went down"
    );
    assert_eq!(
        on_master
            .iter()
            .filter(|s| (3000..3050).contains(*s))
            .count(),
        50,
        "after it returned"
    );
    frames_accounted(&daemon.socket);
}

#[test]
fn a_host_mode_lagg_runs_two_workers_on_two_queues() {
    let _serial = serial();
    let bed = Bed::up_with_queues(2, true, 2);
    let config = bed.config(
        "loadbalance",
        "addresses = [\"10.77.0.1/24\"]\ncores = [0, 1]\n",
        true,
    );
    // The partner completes its checksums, as a wire does (its veths would otherwise hand
    // the members segments with only a partial one).
    for p in bed.partner_names() {
        common::run_ok(&mut bed.exec("ptr", &["ethtool", "-K", &p, "tx", "off"]));
    }
    let daemon = Daemon::start(&bed, &config);
    let ping = run(&mut bed.exec(
        "app",
        &["ping", "-c", "3", "-i", "0.2", "-W", "2", "10.77.0.2"],
    ));
    assert!(
        ping.status.success(),
        "{}",
        String::from_utf8_lossy(&ping.stdout)
    );
    for port in [5201u16, 5202, 5203, 5204] {
        xlagg_bench::iperf::IperfRun {
            server_ns: &bed.ns("ptr"),
            server_addr: "10.77.0.2",
            client_ns: &bed.ns("app"),
            client_addr: "10.77.0.1",
            bytes: 20 << 20,
            seconds: None,
            streams: 1,
            reverse: port % 2 == 0,
            udp_rate: None,
            port,
        }
        .run(Duration::from_secs(30))
        .expect("TCP through a two-worker lagg0");
    }
    let umem = frames_accounted(&daemon.socket);
    assert_eq!(
        umem.as_array().map(Vec::len),
        Some(2),
        "two workers: {umem}"
    );
    let queues = bed.ip("app", &["-d", "link", "show", "lagg0"]);
    assert!(
        queues.contains("numtxqueues 2") && queues.contains("numrxqueues 2"),
        "{queues}"
    );
}

#[test]
fn a_port_with_more_active_channels_than_workers_is_refused_with_the_fix() {
    let _serial = serial();
    let bed = Bed::up_with_queues(2, false, 4);
    let path = std::env::temp_dir().join(format!("xlagg-{}-ch.toml", bed.id));
    std::fs::write(&path, bed.config("loadbalance", "cores = [0, 1]\n", false)).expect("config");
    let start = || {
        run(bed
            .exec(
                "app",
                &[
                    xlaggd_bin().to_str().expect("utf-8"),
                    "--config",
                    path.to_str().expect("utf-8"),
                    "--check",
                ],
            )
            .stdin(Stdio::null()))
    };
    let out = start();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("2 worker(s), but xlm0 has 4 active receive channels")
            && err.contains("ethtool -L xlm0 combined 2"),
        "{err}"
    );
    // Channels lowered to the workers': accepted.
    for dev in ["xlm0", "xlm1", "xld0"] {
        common::run_ok(&mut bed.exec("app", &["ethtool", "-L", dev, "rx", "2", "tx", "2"]));
    }
    let out = start();
    let _ = std::fs::remove_file(&path);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
