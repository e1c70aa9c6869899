//! Management end to end: xlaggctl against a running xlaggd in the test bed. Laggs are created,
//! changed and destroyed at runtime, every accepted change is in the file and survives a
//! restart, refused changes touch neither the file nor the running laggs, and a change to one
//! lagg leaves the others' programs in place. Needs root; fails otherwise.

mod common;

use std::path::Path;
use std::process::Command;

use common::{run, serial, xlaggd_bin, Bed, Daemon};

/// Runs xlaggctl against the daemon's socket: (exit status, stdout, stderr).
fn ctl(socket: &Path, args: &[&str]) -> (i32, String, String) {
    let out = common::xlaggctl(socket, args);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ctl_ok(socket: &Path, args: &[&str]) -> String {
    let (code, out, err) = ctl(socket, args);
    assert_eq!(code, 0, "xlaggctl {args:?} failed: {err}");
    out
}

/// The id of the XDP program on `iface` in the appliance namespace.
fn xdp_id(bed: &Bed, iface: &str) -> Option<u32> {
    let line = bed.ip("app", &["-o", "link", "show", iface]);
    let at = line.find("prog/xdp id ")?;
    line[at + 12..].split_whitespace().next()?.parse().ok()
}

/// The interface index of `iface` in the appliance namespace: laggN gets a new one whenever
/// its lagg restarts.
fn ifindex(bed: &Bed, iface: &str) -> Option<u32> {
    let line = bed.ip("app", &["-o", "link", "show", iface]);
    line.split(':').next()?.trim().parse().ok()
}

fn json(socket: &Path, lagg: &str) -> serde_json::Value {
    serde_json::from_str(&ctl_ok(socket, &["-j", lagg])).expect("xlaggctl -j prints JSON")
}

#[test]
fn the_ifconfig_way_end_to_end() {
    let _serial = serial();
    let bed = Bed::up(4, true);
    let daemon = Daemon::start(&bed, "[daemon]\nlink_poll_ms = 10000\n");
    let sock = daemon.socket.clone();
    assert_eq!(ctl_ok(&sock, &[]), "", "no laggs yet");

    // FreeBSD's two lines.
    ctl_ok(&sock, &["lagg0", "create"]);
    ctl_ok(
        &sock,
        &[
            "lagg0",
            "laggproto",
            "failover",
            "laggport",
            "xlm0",
            "laggport",
            "xlm1",
            "10.77.0.1",
            "netmask",
            "255.255.255.0",
            "up",
        ],
    );
    let text = ctl_ok(&sock, &["lagg0"]);
    assert!(
        text.contains("\tlaggproto failover lagghash l2,l3,l4\n")
            && text.contains("\tinet 10.77.0.1 netmask 0xffffff00\n")
            && text.contains("\tlaggport: xlm0 flags=1d<MASTER,ACTIVE,COLLECTING,DISTRIBUTING>\n")
            && text.contains("\tlaggport: xlm1 flags=0<>\n"),
        "ifconfig-style status:\n{text}"
    );
    let ping = run(&mut bed.exec(
        "app",
        &["ping", "-c", "2", "-W", "2", "-i", "0.2", "10.77.0.2"],
    ));
    assert!(
        ping.status.success(),
        "ping through the lagg made by xlaggctl"
    );

    // Accepted changes are in the file.
    let file = std::fs::read_to_string(&daemon.config).unwrap();
    assert!(
        file.contains("name = \"lagg0\"")
            && file.contains("laggports = [\"xlm0\", \"xlm1\"]")
            && file.contains("addresses = [\"10.77.0.1/24\"]"),
        "{file}"
    );

    // A second lagg in forward mode, then changes to it leave lagg0 alone (host mode: the tc
    // host path; a restart would make lagg0 anew).
    ctl_ok(
        &sock,
        &[
            "lagg1",
            "create",
            "laggproto",
            "loadbalance",
            "laggport",
            "xlm2",
            "laggport",
            "xlm3",
            "upper",
            "forward",
            "forward_port",
            "xld0",
        ],
    );
    let lagg0_before = ifindex(&bed, "lagg0");
    let lagg1_before = xdp_id(&bed, "xlm2");
    assert!(lagg0_before.is_some() && lagg1_before.is_some());
    ctl_ok(&sock, &["lagg1", "lagghash", "l3,l4", "-laggport", "xlm3"]);
    assert_eq!(
        ifindex(&bed, "lagg0"),
        lagg0_before,
        "lagg0 untouched by a change to lagg1"
    );
    assert_ne!(xdp_id(&bed, "xlm2"), lagg1_before, "lagg1 was re-created");
    assert_eq!(xdp_id(&bed, "xlm3"), None, "the removed member is released");
    let l1 = json(&sock, "lagg1");
    assert_eq!(l1[0]["lagghash"], "l3,l4");
    assert_eq!(l1[0]["ports"].as_array().map(Vec::len), Some(1));

    // Refused changes: exit 1, the validator's message, nothing changes.
    let before = std::fs::read(&daemon.config).unwrap();
    for (args, want) in [
        (
            vec!["lagg0", "laggproto", "fastest"],
            "xlaggctl: lagg0.laggproto: unknown protocol 'fastest'",
        ),
        (
            vec!["lagg0", "laggport", "xlm2"],
            "xlaggctl: lagg0.laggports: xlm2 is already a member of lagg1",
        ),
        (
            vec!["lagg0", "mtu", "9001"],
            "xlaggctl: lagg0.mtu: 9001 is out of range: use 68 to 9000",
        ),
        (
            vec!["lagg0", "mtu", "9000"],
            "xlaggctl: lagg0.laggports: xlm0 has MTU 1500, below lagg0's mtu 9000: raise it (ip link set dev xlm0 mtu 9000)",
        ),
        (
            vec!["lagg0", "10.77.0.1/33"],
            "xlaggctl: lagg0.addresses: prefix length '33' of 10.77.0.1 must be a number from 0 to 32",
        ),
        (
            vec!["lagg0", "frobnicate"],
            "xlaggctl: lagg0: 'frobnicate' is not a lagg option",
        ),
        (
            vec!["lagg9", "laggport", "xlm3"],
            "xlaggctl: lagg9: lagg9 does not exist: create it first",
        ),
    ] {
        let (code, _, err) = ctl(&sock, &args);
        assert_eq!(code, 1, "{args:?} must be refused: {err}");
        assert!(err.starts_with(want), "{args:?}: wanted {want:?}, got {err:?}");
    }
    let (code, _, err) = ctl(&sock, &["bond0", "create"]);
    assert_eq!(code, 2, "a name that is not laggN is a usage error: {err}");
    assert_eq!(
        std::fs::read(&daemon.config).unwrap(),
        before,
        "the file is untouched"
    );
    assert_eq!(ifindex(&bed, "lagg0"), lagg0_before);

    // Addresses and the description change in place: lagg0 is not made anew.
    ctl_ok(
        &sock,
        &[
            "lagg0",
            "inet",
            "10.77.0.11/24",
            "alias",
            "description",
            "uplink",
        ],
    );
    assert_eq!(ifindex(&bed, "lagg0"), lagg0_before);
    let addrs = bed.ip("app", &["-o", "addr", "show", "dev", "lagg0"]);
    assert!(
        addrs.contains("10.77.0.11/24") && addrs.contains("10.77.0.1/24"),
        "{addrs}"
    );
    ctl_ok(&sock, &["lagg0", "inet", "10.77.0.11", "-alias"]);
    assert!(!bed
        .ip("app", &["-o", "addr", "show", "dev", "lagg0"])
        .contains("10.77.0.11/"));
    assert_eq!(json(&sock, "lagg0")[0]["description"], "uplink");
    assert_eq!(ifindex(&bed, "lagg0"), lagg0_before);

    // A member whose device does not exist (yet) is taken: lagg0 runs on the others and
    // shows it missing, in place.
    ctl_ok(&sock, &["lagg0", "laggport", "em7"]);
    let ports = json(&sock, "lagg0")[0]["ports"].clone();
    assert!(
        ports
            .as_array()
            .is_some_and(|p| p.iter().any(|p| p["name"] == "em7" && p["missing"] == true)),
        "{ports}"
    );
    assert_eq!(ifindex(&bed, "lagg0"), lagg0_before);
    ctl_ok(&sock, &["lagg0", "-laggport", "em7"]);

    // A dry run checks without applying.
    let out = ctl_ok(&sock, &["-n", "lagg0", "laggproto", "roundrobin"]);
    assert!(out.contains("would change: lagg0"), "{out}");
    assert_eq!(json(&sock, "lagg0")[0]["laggproto"], "failover");

    // A second daemon on the same socket is refused and touches nothing.
    let second = run(&mut bed.exec(
        "app",
        &[
            xlaggd_bin().to_str().unwrap(),
            "--config",
            daemon.config.to_str().unwrap(),
            "--socket",
            sock.to_str().unwrap(),
        ],
    ));
    assert_eq!(second.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&second.stderr).contains("another xlaggd is running"));
    assert_eq!(ifindex(&bed, "lagg0"), lagg0_before);

    // down keeps the lagg configured but stops it; up brings it back.
    ctl_ok(&sock, &["lagg1", "down"]);
    assert_eq!(xdp_id(&bed, "xlm2"), None);
    assert_eq!(json(&sock, "lagg1")[0]["state"], "down");

    // Restart: the file brings both laggs back as they were.
    let config = daemon.config.clone();
    let text = std::fs::read_to_string(&config).unwrap();
    daemon.stop();
    let daemon = Daemon::start(&bed, &text);
    let sock = daemon.socket.clone();
    let all: serde_json::Value = serde_json::from_str(&ctl_ok(&sock, &["-j"])).unwrap();
    assert_eq!(all[0]["name"], "lagg0");
    assert_eq!(all[0]["state"], "running");
    assert_eq!(all[0]["addresses"][0], "10.77.0.1/24");
    assert_eq!(all[1]["name"], "lagg1");
    assert_eq!(all[1]["state"], "down");
    ctl_ok(&sock, &["lagg1", "destroy"]);
    ctl_ok(&sock, &["lagg0", "destroy"]);
    assert_eq!(ctl_ok(&sock, &[]), "");
    let xlm0 = bed.ip("app", &["-d", "-o", "link", "show", "xlm0"]);
    assert!(xlm0.contains("promiscuity 0"), "xlm0 is let go: {xlm0}");
    assert!(!bed.ip("app", &["-o", "link", "show"]).contains("lagg0"));
    drop(daemon);

    // No daemon: exit 69 with a hint.
    let (code, _, err) = ctl(&sock, &[]);
    assert_eq!(code, 69, "{err}");
    assert!(err.contains("cannot reach xlaggd"), "{err}");
}

#[test]
fn rc_conf_import_applies_through_the_daemon() {
    let _serial = serial();
    let bed = Bed::up(2, true);
    let daemon = Daemon::start(&bed, "[daemon]\nlink_poll_ms = 10000\n");
    let rc = std::env::temp_dir().join(format!("xlagg-{}-rc.conf", bed.id));
    std::fs::write(
        &rc,
        "ifconfig_xlm0=\"up\"\ncloned_interfaces=\"lagg0\"\n\
         ifconfig_lagg0=\"laggproto failover laggport xlm0 laggport xlm1 10.77.0.1 netmask 255.255.255.0 up\"\n\
         ifconfig_lagg0_ipv6=\"inet6 2001:db8:77::1 prefixlen 64 -ifdisabled\"\n",
    )
    .unwrap();
    let rc_path = rc.to_str().unwrap();
    let (code, toml, notes) = ctl(&daemon.socket, &["import", rc_path]);
    let applied = ctl(&daemon.socket, &["import", rc_path, "--apply"]);
    let _ = std::fs::remove_file(&rc);
    assert_eq!(applied.0, 0, "{}", applied.2);
    assert_eq!(code, 0, "{notes}");
    assert!(
        toml.contains("addresses = [\"10.77.0.1/24\", \"2001:db8:77::1/64\"]"),
        "{toml}"
    );
    assert!(
        notes.contains("'-ifdisabled' has no meaning here"),
        "{notes}"
    );
    let ping = run(&mut bed.exec(
        "app",
        &["ping", "-c", "2", "-W", "2", "-i", "0.2", "10.77.0.2"],
    ));
    assert!(ping.status.success(), "ping through the imported lagg0");
    assert!(std::fs::read_to_string(&daemon.config)
        .unwrap()
        .contains("name = \"lagg0\""));
}

#[test]
fn at_boot_waits_for_late_members_and_tells_systemd_when_ready() {
    let _serial = serial();
    let bed = Bed::up(1, false);
    let dir = std::env::temp_dir().join(format!("xlagg-{}-boot", bed.id));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("xlagg.toml");
    std::fs::write(
        &config,
        "[[lagg]]\nname = \"lagg0\"\nlaggproto = \"failover\"\nlaggports = [\"xlm0\", \"xlm9\"]\n",
    )
    .unwrap();
    let notify = std::os::unix::net::UnixDatagram::bind(dir.join("notify")).unwrap();
    notify
        .set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    let mut child = bed
        .exec(
            "app",
            &[
                xlaggd_bin().to_str().unwrap(),
                "--config",
                config.to_str().unwrap(),
                "--socket",
                dir.join("s.sock").to_str().unwrap(),
                "--wait-for-members",
                "20",
                "--http",
                "off",
            ],
        )
        .env("NOTIFY_SOCKET", dir.join("notify"))
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // The second member appears a second later, as a slow driver's would.
    std::thread::sleep(std::time::Duration::from_secs(1));
    bed.ip(
        "app",
        &[
            "link", "add", "xlm9", "type", "veth", "peer", "name", "xlq9",
        ],
    );
    bed.ip("app", &["link", "set", "xlm9", "up"]);
    bed.ip("app", &["link", "set", "xlq9", "up"]);
    let mut buf = [0u8; 64];
    let got = notify.recv(&mut buf);
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let n = got.expect("xlaggd sent READY=1 once the late member existed");
    assert_eq!(&buf[..n], b"READY=1");
    assert!(status.success(), "clean stop: {status:?}");
    assert_eq!(xdp_id(&bed, "xlm9"), None, "programs detached at stop");
}
