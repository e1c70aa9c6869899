//! xlaggd as a process: host mode (lagg0 with addresses, ping through it), teardown that
//! leaves nothing behind, and refusals that touch nothing. Needs root; fails otherwise.

mod common;

use common::{run, serial, xlaggd_bin, Bed, Daemon};

/// Everything in the appliance namespace that shows an XDP program or xlagg's interfaces.
/// Promiscuity is held as a count (`ip -d`: `promiscuity N`), not the PROMISC flag.
fn leftovers(bed: &Bed) -> Vec<String> {
    bed.ip("app", &["-d", "-o", "link", "show"])
        .lines()
        .filter(|l| {
            l.contains("xdp")
                || l.contains("lagg0")
                || l.contains("xlh-")
                || l.contains("PROMISC")
                || !l.contains(" promiscuity 0 ")
        })
        .map(str::to_string)
        .collect()
}

#[test]
fn host_mode_lagg0_carries_addresses_and_ping_passes_then_nothing_is_left() {
    let _serial = serial();
    let bed = Bed::up(4, true);
    let extra = "addresses = [\"10.77.0.1/24\", \"2001:db8:77::1/64\"]\n";
    let daemon = Daemon::start(&bed, &bed.config("failover", extra, true));
    let addrs = bed.ip("app", &["-o", "addr", "show", "dev", "lagg0"]);
    assert!(
        addrs.contains("10.77.0.1/24"),
        "IPv4 address on lagg0: {addrs}"
    );
    assert!(
        addrs.contains("2001:db8:77::1/64"),
        "IPv6 address on lagg0: {addrs}"
    );
    let link = bed.ip("app", &["-o", "link", "show", "lagg0"]);
    assert!(
        link.contains("mtu 1500") && link.contains("UP"),
        "lagg0 up with MTU 1500: {link}"
    );
    // lagg0 behaves like any netdev: its MTU can be changed.
    bed.ip("app", &["link", "set", "lagg0", "mtu", "1400"]);
    assert!(bed
        .ip("app", &["-o", "link", "show", "lagg0"])
        .contains("mtu 1400"));
    let ping = run(&mut bed.exec(
        "app",
        &["ping", "-c", "3", "-W", "2", "-i", "0.2", "10.77.0.2"],
    ));
    assert!(
        ping.status.success(),
        "ping through lagg0 to the partner failed:\n{}",
        String::from_utf8_lossy(&ping.stdout)
    );
    assert!(
        !leftovers(&bed).is_empty(),
        "while running, XDP programs are attached"
    );
    daemon.stop();
    assert_eq!(
        leftovers(&bed),
        Vec::<String>::new(),
        "after SIGTERM nothing of xlagg remains"
    );
}

#[test]
fn forward_mode_teardown_detaches_every_program() {
    let _serial = serial();
    let bed = Bed::up(2, false);
    let daemon = Daemon::start(&bed, &bed.config("loadbalance", "", false));
    let attached = bed
        .ip("app", &["-o", "link", "show"])
        .lines()
        .filter(|l| l.contains("xdp"))
        .count();
    assert_eq!(
        attached, 3,
        "two members and the forward port have XDP programs"
    );
    daemon.stop();
    assert_eq!(leftovers(&bed), Vec::<String>::new());
}

/// `xlaggd --check` on `config`: its exit status and what it printed on stderr.
fn xlaggd_with(bed: &Bed, config: &str) -> (i32, String) {
    let path = std::env::temp_dir().join(format!("xlagg-{}-bad.toml", bed.id));
    std::fs::write(&path, config).expect("write config");
    let out = run(bed
        .exec(
            "app",
            &[
                xlaggd_bin().to_str().expect("utf-8"),
                "--config",
                path.to_str().expect("utf-8"),
                "--socket",
                path.with_extension("sock").to_str().expect("utf-8"),
                "--check",
            ],
        )
        .stdin(std::process::Stdio::null()));
    let _ = std::fs::remove_file(&path);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn bad_config_exits_2_with_one_clear_message_and_attaches_nothing() {
    let _serial = serial();
    let bed = Bed::up(2, false);
    let (code, err) = xlaggd_with(
        &bed,
        "[[lagg]]\nname = \"lagg0\"\nlaggproto = \"fastest\"\nlaggports = [\"xlm0\", \"xlm1\"]\n",
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("lagg0.laggproto: unknown protocol 'fastest'"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "one message: {err}");
    assert_eq!(leftovers(&bed), Vec::<String>::new());
    let (code, err) = xlaggd_with(
        &bed,
        "[[lagg]]\nname = \"lagg0\"\nlaggports = [\"xlm0\", \"em9\"]\n",
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("lagg0.laggports: no network interface named 'em9'"),
        "{err}"
    );
    assert_eq!(
        leftovers(&bed),
        Vec::<String>::new(),
        "no member was touched before the error"
    );
}

#[test]
fn check_validates_devices_and_touches_nothing() {
    let _serial = serial();
    let bed = Bed::up(2, false);
    let path = std::env::temp_dir().join(format!("xlagg-{}-ok.toml", bed.id));
    std::fs::write(&path, bed.config("lacp", "", false)).expect("write");
    let out = run(bed
        .exec(
            "app",
            &[
                xlaggd_bin().to_str().expect("utf-8"),
                "--config",
                path.to_str().expect("utf-8"),
                "--check",
            ],
        )
        .stdin(std::process::Stdio::null()));
    let _ = std::fs::remove_file(&path);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("configuration valid"));
    assert_eq!(leftovers(&bed), Vec::<String>::new());
}

#[test]
fn a_killed_daemon_leaves_no_program_or_promiscuous_port_and_a_restart_cleans_the_rest() {
    let _serial = serial();
    let bed = Bed::up(2, false);
    let config = bed.config("loadbalance", "", true);
    // The promiscuity count (ip -d), which packet-socket memberships raise; the PROMISC flag
    // shows only what a user set.
    let promiscuity = |bed: &Bed| {
        let out = bed.ip("app", &["-d", "-o", "link", "show", "xlm0"]);
        let mut words = out.split_whitespace();
        words.by_ref().find(|w| *w == "promiscuity");
        words
            .next()
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(u32::MAX)
    };
    assert_eq!(promiscuity(&bed), 0);
    let daemon = Daemon::start(&bed, &config);
    assert_eq!(
        promiscuity(&bed),
        1,
        "members are promiscuous while it runs"
    );
    daemon.kill();
    // BPF links and the promiscuity holder die with the process; only the veth pair of lagg0
    // (an ordinary interface) stays.
    let left = leftovers(&bed);
    assert!(
        left.iter().all(|l| !l.contains("xdp")),
        "no XDP program after SIGKILL: {left:?}"
    );
    assert_eq!(promiscuity(&bed), 0, "no promiscuity after SIGKILL");
    assert!(
        left.iter().any(|l| l.contains("lagg0")),
        "lagg0 stays until the next start: {left:?}"
    );
    // The next start removes the stale lagg0 instead of failing, and a clean stop leaves nothing.
    let again = Daemon::start(&bed, &config);
    again.stop();
    assert_eq!(leftovers(&bed), Vec::<String>::new());
    assert_eq!(promiscuity(&bed), 0);
}

#[test]
fn a_member_with_someone_elses_xdp_program_is_refused_by_name() {
    let _serial = serial();
    let bed = Bed::up(2, false);
    // Another program holds xlm1 (the benchmark's drop program, attached in the appliance).
    let other = common::DropProgram::start(&bed, "app", "xlm1");
    let (code, err) = xlaggd_with(&bed, &bed.config("loadbalance", "", false));
    other.stop();
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("lagg0.laggports: xlm1 already has an XDP program (id "),
        "{err}"
    );
    assert!(err.contains("ip link set dev xlm1 xdp off"), "{err}");
}

#[test]
fn a_lagg_whose_nic_is_missing_fails_alone_and_starts_when_the_nic_appears() {
    let _serial = serial();
    let bed = Bed::up(3, false);
    // Not one of lagg0's members exists: nothing to run on.
    let config = "[daemon]\nlink_poll_ms = 10000\n\n[[lagg]]\nname = \"lagg0\"\nlaggports = [\"xlm8\", \"xlm9\"]\n\n\
                  [[lagg]]\nname = \"lagg1\"\nlaggports = [\"xlm1\"]\naddresses = [\"10.77.1.1/24\"]\n";
    let daemon = Daemon::start(&bed, config);
    let s = status(&daemon);
    assert_eq!(s[0]["state"], "failed", "{s}");
    assert!(
        s[0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("no network interface named 'xlm8'")),
        "{s}"
    );
    assert_eq!(s[1]["state"], "running", "the other lagg runs: {s}");
    let text =
        String::from_utf8_lossy(&common::xlaggctl(&daemon.socket, &["lagg0"]).stdout).into_owned();
    assert!(text.contains("status: failed"), "{text}");
    // One NIC appears (a late driver, a hot-plugged card): lagg0 starts on its own, on it.
    bed.ip(
        "app",
        &[
            "link", "add", "xlm9", "type", "veth", "peer", "name", "xlq9",
        ],
    );
    bed.ip("app", &["link", "set", "xlq9", "up"]);
    common::wait_until(10, "lagg0 running after xlm9 appeared", || {
        status(&daemon)[0]["state"] == "running"
    });
    let s = status(&daemon);
    let missing: Vec<&str> = s[0]["ports"]
        .as_array()
        .expect("ports")
        .iter()
        .filter(|p| p["missing"] == true)
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert_eq!(missing, ["xlm8"], "{s}");
    let faults: Vec<String> = daemon
        .events(Some("fault"))
        .into_iter()
        .map(|(_, text)| text)
        .collect();
    assert!(
        faults.iter().any(|t| t.starts_with("not running"))
            && faults.iter().any(|t| t == "running again"),
        "{faults:?}"
    );
}

fn status(d: &Daemon) -> serde_json::Value {
    let out = common::xlaggctl(&d.socket, &["-j"]);
    serde_json::from_slice(&out.stdout).expect("JSON")
}

/// The flags of `port` of the first lagg, and whether it is missing.
fn port_of(d: &Daemon, port: &str) -> (Vec<String>, bool) {
    let s = status(d);
    s[0]["ports"]
        .as_array()
        .expect("ports")
        .iter()
        .find(|p| p["name"] == port)
        .map(|p| {
            let flags = p["flags"]
                .as_array()
                .map(|f| {
                    f.iter()
                        .filter_map(|x| x.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default();
            (flags, p["missing"] == true)
        })
        .unwrap_or_default()
}

/// A veth `member` in the appliance with `peer` in the partner namespace, both up.
fn add_member_link(bed: &Bed, member: &str, peer: &str) {
    bed.ip(
        "app",
        &[
            "link",
            "add",
            member,
            "type",
            "veth",
            "peer",
            "name",
            peer,
            "netns",
            &bed.ns("ptr"),
        ],
    );
    bed.ip("app", &["link", "set", member, "up"]);
    bed.ip("ptr", &["link", "set", peer, "up"]);
}

/// Members are taken by name: a lagg runs on the members present, takes a missing one in
/// when its device appears, and one whose device is deleted and made again under its name
/// (a driver reload, a re-plugged NIC) comes back.
#[test]
fn members_follow_their_devices_by_name() {
    let _serial = serial();
    let bed = Bed::up(3, false);
    let daemon = Daemon::start(
        &bed,
        "[daemon]\nlink_poll_ms = 10000\n\n[[lagg]]\nname = \"lagg0\"\nlaggproto = \"loadbalance\"\n\
         laggports = [\"xlm0\", \"xlm1\", \"xlm7\"]\n",
    );
    assert_eq!(status(&daemon)[0]["state"], "running");
    assert!(port_of(&daemon, "xlm7").1, "xlm7 missing");
    let text =
        String::from_utf8_lossy(&common::xlaggctl(&daemon.socket, &["lagg0"]).stdout).into_owned();
    assert!(
        text.contains("laggport: xlm7 flags=0<> (missing: no such device)"),
        "{text}"
    );
    add_member_link(&bed, "xlm7", "xlp7");
    common::wait_until(10, "xlm7 taken in once its device appeared", || {
        let (flags, missing) = port_of(&daemon, "xlm7");
        !missing && flags.iter().any(|f| f == "DISTRIBUTING")
    });
    // xlm1's device goes (its flows move to the others), then comes back under its name.
    bed.ip("app", &["link", "del", "xlm1"]);
    common::wait_until(10, "xlm1 missing once its device went", || {
        port_of(&daemon, "xlm1").1
    });
    add_member_link(&bed, "xlm1", "xlp1");
    common::wait_until(10, "xlm1 back once its device was made again", || {
        let (flags, missing) = port_of(&daemon, "xlm1");
        !missing && flags.iter().any(|f| f == "DISTRIBUTING")
    });
    // And it carries its share again.
    let sink = common::Sink::start(&bed);
    bed.send_on("app", "lagg0", 64, 2, 0);
    let report = sink.finish();
    let xlp1 = report
        .ports
        .iter()
        .find(|p| p.name == "xlp1")
        .map_or(0, |p| p.frames);
    assert!(xlp1 > 0, "xlm1 carries frames again: {:?}", report.ports);
    assert!(daemon.told("member missing"), "{:?}", daemon.events(None));
}

/// Failover's order is its priority: a master whose device appears late takes over as master.
#[test]
fn a_failover_master_that_appears_late_becomes_master() {
    let _serial = serial();
    let bed = Bed::up(1, false);
    let daemon = Daemon::start(
        &bed,
        "[daemon]\nlink_poll_ms = 10000\n\n[[lagg]]\nname = \"lagg0\"\nlaggproto = \"failover\"\n\
         laggports = [\"xlm9\", \"xlm0\"]\n",
    );
    common::wait_until(10, "xlm0 active while the master is missing", || {
        port_of(&daemon, "xlm0").0.iter().any(|f| f == "ACTIVE")
    });
    add_member_link(&bed, "xlm9", "xlp9");
    common::wait_until(10, "xlm9 master and active", || {
        let (flags, _) = port_of(&daemon, "xlm9");
        flags.iter().any(|f| f == "MASTER") && flags.iter().any(|f| f == "ACTIVE")
    });
}

#[test]
fn a_worker_that_panics_is_noticed_and_its_lagg_restarts() {
    let _serial = serial();
    let bed = Bed::up(2, true);
    let daemon = Daemon::start_with_args(
        &bed,
        &bed.config(
            "loadbalance",
            "addresses = [\"10.77.0.1/24\"]\nengine = \"afxdp\"\n",
            true,
        ),
        &["--fault-injection"],
    );
    let ping = |bed: &Bed| {
        run(&mut bed.exec(
            "app",
            &["ping", "-c", "2", "-i", "0.2", "-W", "1", "10.77.0.2"],
        ))
        .status
        .success()
    };
    assert!(ping(&bed));
    let pid = daemon.pid();
    let crashed = xlagg_control::mgmt::api::call(
        &daemon.socket,
        &xlagg_control::mgmt::api::Request::CrashWorker {
            name: "lagg0".into(),
            queue: 0,
        },
    )
    .expect("the daemon answers");
    assert!(crashed.ok, "{crashed:?}");
    common::wait_until(
        5,
        "the fault in the timeline and lagg0 running again",
        || {
            let out = common::xlaggctl(&daemon.socket, &["dump"]);
            let dump: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
            let restarted = dump["events"].as_array().is_some_and(|e| {
                e.iter().any(|e| {
                    e["kind"] == "fault"
                        && e["text"]
                            .as_str()
                            .is_some_and(|t| t.contains("died: restarting"))
                })
            });
            restarted && dump["laggs"][0]["state"] == "running"
        },
    );
    assert!(
        std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "the daemon lives"
    );
    common::wait_until(10, "traffic through lagg0 again", || ping(&bed));
    // Without the flag the request is refused.
    drop(daemon);
    let plain = Daemon::start(&bed, "[daemon]\nlink_poll_ms = 10000\n");
    let refused = xlagg_control::mgmt::api::call(
        &plain.socket,
        &xlagg_control::mgmt::api::Request::CrashWorker {
            name: "lagg0".into(),
            queue: 0,
        },
    )
    .expect("answer");
    assert!(!refused.ok && refused.errors[0].contains("fault injection is off"));
}
