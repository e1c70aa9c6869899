//! Probe monitors in the test bed: a member link that stays up but silently drops frames is
//! taken out of the lagg. Micro-BFD between two xlagg instances; the ARP probe monitor against
//! the partner bridge. Needs root; fails otherwise.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{run, run_ok, serial, Bed, Daemon};

fn status(socket: &Path) -> serde_json::Value {
    let out = common::xlaggctl(socket, &["-j"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON")
}

/// Flags of every port of lagg0, by name.
fn flags(socket: &Path) -> Vec<(String, Vec<String>, Option<String>)> {
    status(socket)[0]["ports"]
        .as_array()
        .expect("ports")
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap_or_default().to_string(),
                p["flags"]
                    .as_array()
                    .map(|f| {
                        f.iter()
                            .filter_map(|x| x.as_str().map(String::from))
                            .collect()
                    })
                    .unwrap_or_default(),
                p["bfd"].as_str().map(String::from),
            )
        })
        .collect()
}

fn wait(secs: u64, what: &str, mut cond: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(secs) {
        if cond() {
            return start.elapsed();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("timed out after {secs} s waiting for {what}");
}

/// Makes `iface` in namespace `role` drop every frame the kernel stack sends on it (a pfifo
/// queue of length 0): the link stays up, the control thread's frames vanish. (AF_XDP
/// transmits bypass the queue; the monitor is what is tested here.)
fn silently_drop(bed: &Bed, role: &str, iface: &str) {
    run_ok(&mut bed.exec(
        role,
        &[
            "tc", "qdisc", "replace", "dev", iface, "root", "pfifo", "limit", "0",
        ],
    ));
}

fn heal(bed: &Bed, role: &str, iface: &str) {
    run_ok(&mut bed.exec(role, &["tc", "qdisc", "del", "dev", iface, "root"]));
}

#[test]
fn micro_bfd_between_two_xlaggs_takes_out_a_link_that_passes_nothing() {
    let _serial = serial();
    let bed = Bed::up(3, false);
    let lagg = |prefix: &str| {
        format!(
            "[daemon]\nlink_poll_ms = 10000\n\n[[lagg]]\nname = \"lagg0\"\nlaggproto = \"loadbalance\"\n\
             laggports = [\"{prefix}0\", \"{prefix}1\", \"{prefix}2\"]\nbfd = true\nbfd_interval = 50\nbfd_multiplier = 3\n"
        )
    };
    let partner = Daemon::start_in(&bed, "ptr", &lagg("xlp"));
    let app = Daemon::start(&bed, &lagg("xlm"));
    // Sessions come up (at most one packet a second until up), then every member distributes.
    wait(15, "every session up and every member distributing", || {
        flags(&app.socket)
            .iter()
            .all(|(_, f, b)| f.contains(&"DISTRIBUTING".to_string()) && b.as_deref() == Some("up"))
    });
    let all_up = flags(&partner.socket);
    assert!(
        all_up.iter().all(|(_, _, b)| b.as_deref() == Some("up")),
        "{all_up:?}"
    );

    // xlm1 stops passing frames out; its link stays up at both ends.
    silently_drop(&bed, "app", "xlm1");
    let took = wait(5, "xlm1 taken out on the xlagg side", || {
        let f = flags(&app.socket);
        let m1 = &f[1];
        !m1.1.contains(&"DISTRIBUTING".to_string()) && m1.2.as_deref() == Some("down")
    });
    assert!(
        took < Duration::from_secs(2),
        "detected in {took:?} (3 x 50 ms plus the exchange)"
    );
    let f = flags(&app.socket);
    assert!(
        f[0].1.contains(&"DISTRIBUTING".to_string())
            && f[2].1.contains(&"DISTRIBUTING".to_string()),
        "{f:?}"
    );
    let s = status(&app.socket);
    assert_eq!(
        s[0]["ports"][1]["link"], true,
        "the kernel still sees the link up"
    );
    assert_eq!(s[0]["active_ports"], 2);
    let p = flags(&partner.socket);
    assert_eq!(
        p[1].2.as_deref(),
        Some("down"),
        "the partner took it out too: {p:?}"
    );

    // Healed: the session comes back and so does the member.
    heal(&bed, "app", "xlm1");
    wait(10, "xlm1 back", || {
        flags(&app.socket)[1]
            .1
            .contains(&"DISTRIBUTING".to_string())
    });
    drop(app);
    drop(partner);
}

#[test]
fn the_arp_probe_monitor_fails_over_from_a_port_whose_partner_drops_everything() {
    let _serial = serial();
    let bed = Bed::up(2, true);
    let extra = "addresses = [\"10.77.0.1/24\"]\narp_targets = [\"10.77.0.2\"]\narp_interval = 100\narp_missed_max = 2\n";
    let daemon = Daemon::start(&bed, &bed.config("failover", extra, true));
    let probe = |i: usize| {
        status(&daemon.socket)[0]["ports"][i]["probe"]
            .as_str()
            .map(String::from)
    };
    wait(10, "both members validated by replies", || {
        probe(0).as_deref() == Some("ok") && probe(1).as_deref() == Some("ok")
    });
    assert!(
        flags(&daemon.socket)[0].1.contains(&"ACTIVE".to_string()),
        "the master is active"
    );

    // The partner end of the master drops everything (an XDP drop program); the link stays up.
    let dropper = common::DropProgram::start(&bed, "ptr", "xlp0");
    let took = wait(5, "the backup to take over", || {
        let f = flags(&daemon.socket);
        f[1].1.contains(&"ACTIVE".to_string()) && !f[0].1.contains(&"ACTIVE".to_string())
    });
    assert!(
        took < Duration::from_millis(1500),
        "failed over in {took:?} (2 x 100 ms window)"
    );
    assert_eq!(probe(0).as_deref(), Some("failing"));
    assert_eq!(
        status(&daemon.socket)[0]["ports"][0]["link"],
        true,
        "the kernel still sees it up"
    );
    let ping = run(&mut bed.exec(
        "app",
        &["ping", "-c", "2", "-W", "2", "-i", "0.2", "10.77.0.2"],
    ));
    assert!(ping.status.success(), "traffic continues on the backup");

    // The partner heals: the master is validated again and takes back.
    dropper.stop();
    wait(5, "the master back", || {
        flags(&daemon.socket)[0].1.contains(&"ACTIVE".to_string())
    });
}

#[test]
fn a_member_whose_mtu_drops_below_the_laggs_is_taken_out_until_raised() {
    let _serial = serial();
    let bed = Bed::up(2, false);
    let daemon = Daemon::start(&bed, &bed.config("loadbalance", "", false));
    let distributing = |i: usize| {
        flags(&daemon.socket)[i]
            .1
            .contains(&"DISTRIBUTING".to_string())
    };
    wait(5, "both members distributing", || {
        distributing(0) && distributing(1)
    });
    bed.ip("app", &["link", "set", "xlm1", "mtu", "1400"]);
    wait(5, "xlm1 taken out", || !distributing(1));
    assert!(distributing(0));
    bed.ip("app", &["link", "set", "xlm1", "mtu", "1500"]);
    wait(5, "xlm1 back", || distributing(1));
    drop(daemon);
}

#[test]
fn neighbour_solicitation_probes_validate_members_through_an_ipv6_target() {
    let _serial = serial();
    let bed = Bed::up(2, true);
    let extra = "arp_targets = [\"2001:db8:77::2\"]\narp_interval = 100\n";
    let daemon = Daemon::start(&bed, &bed.config("loadbalance", extra, true));
    let probe = |i: usize| {
        status(&daemon.socket)[0]["ports"][i]["probe"]
            .as_str()
            .map(String::from)
    };
    wait(
        10,
        "both members validated by neighbour advertisements",
        || probe(0).as_deref() == Some("ok") && probe(1).as_deref() == Some("ok"),
    );
    drop(daemon);
}

/// Slow work on the control thread (a lagg restarted again and again: programs loaded,
/// ethtool run, sockets opened) flaps no other lagg: its periodic packets go on from the
/// keepalive thread, and what its partners sent meanwhile is read before the timers judge
/// their silence. lagg1's micro-BFD at 20 ms x 3 holds on both ends while lagg0 restarts 20
/// times (without either half, both ends count downs).
#[test]
fn restarting_one_lagg_does_not_flap_another_laggs_micro_bfd() {
    let _serial = serial();
    let bed = Bed::up(4, false);
    let laggs = |p: &str, bfd_addr: &str| {
        format!(
            "[daemon]\nlink_poll_ms = 10000\n\n[[lagg]]\nname = \"lagg0\"\nlaggproto = \"loadbalance\"\n\
             laggports = [\"{p}0\", \"{p}1\"]\n\n[[lagg]]\nname = \"lagg1\"\nlaggproto = \"loadbalance\"\n\
             laggports = [\"{p}2\", \"{p}3\"]\naddresses = [\"{bfd_addr}\"]\nbfd = true\nbfd_interval = 20\nbfd_multiplier = 3\n"
        )
    };
    let partner = Daemon::start_in(&bed, "ptr", &laggs("xlp", "10.77.1.2/24"));
    let app = Daemon::start(&bed, &laggs("xlm", "10.77.1.1/24"));
    let lagg1 = |socket: &Path| status(socket)[1].clone();
    let bfd_up = |socket: &Path| {
        lagg1(socket)["ports"]
            .as_array()
            .is_some_and(|p| p.len() == 2 && p.iter().all(|p| p["bfd"] == "up"))
    };
    wait(15, "lagg1's sessions up on both ends", || {
        bfd_up(&app.socket) && bfd_up(&partner.socket)
    });
    let downs = |socket: &Path| -> u64 {
        lagg1(socket)["ports"]
            .as_array()
            .map(|p| {
                p.iter()
                    .map(|p| p["bfd_counters"]["down"].as_u64().unwrap_or(0))
                    .sum()
            })
            .unwrap_or(0)
    };
    let before = (downs(&app.socket), downs(&partner.socket));
    let started = Instant::now();
    for i in 0..20 {
        let proto = if i % 2 == 0 {
            "roundrobin"
        } else {
            "loadbalance"
        };
        let out = common::xlaggctl(&app.socket, &["lagg0", "laggproto", proto]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    eprintln!("20 restarts of lagg0 took {:?}", started.elapsed());
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        (downs(&app.socket), downs(&partner.socket)),
        before,
        "lagg1's micro-BFD went down while lagg0 restarted"
    );
    assert!(bfd_up(&app.socket) && bfd_up(&partner.socket));
}
