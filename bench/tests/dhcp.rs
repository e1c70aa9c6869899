//! Addresses laggN obtains itself, against real servers on the partner side: Debian's dnsmasq
//! hands out DHCP leases and sends router advertisements on the partner bridge; xlaggd runs
//! dhcpcd on lagg0. SYNCDHCP holds readiness until the lease is bound; the lease is renewed
//! through the backup member after a failover and kept across a membership change; SLAAC
//! gives lagg0 an IPv6 address; a restart stops a client a killed daemon left behind. Needs root,
//! dhcpcd and dnsmasq (scripts/setup.sh installs them); fails otherwise.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{run, serial, wait_until, Bed, Daemon};

/// dnsmasq on the partner bridge: DHCP (2-minute leases, dnsmasq's shortest, so a renewal
/// comes after one minute) and router advertisements for 2001:db8:77::/64.
struct Dnsmasq {
    child: Child,
    log: std::path::PathBuf,
    leases: std::path::PathBuf,
}

impl Dnsmasq {
    fn start(bed: &Bed) -> Dnsmasq {
        let dir = std::env::temp_dir();
        let log = dir.join(format!("xlagg-{}-dnsmasq.log", bed.id));
        let leases = dir.join(format!("xlagg-{}-dnsmasq.leases", bed.id));
        let _ = std::fs::remove_file(&leases);
        let out = std::fs::File::create(&log).expect("dnsmasq log");
        let child = bed
            .exec(
                "ptr",
                &[
                    "dnsmasq",
                    "--keep-in-foreground",
                    "--conf-file=/dev/null",
                    "--port=0",
                    "--interface=xlbr0",
                    "--bind-interfaces",
                    "--dhcp-range=10.77.0.100,10.77.0.150,255.255.255.0,2m",
                    "--dhcp-range=2001:db8:77::,ra-only,64",
                    "--enable-ra",
                    "--ra-param=xlbr0,3",
                    "--log-dhcp",
                    "--log-facility=-",
                    "--pid-file=",
                    "--user=root",
                    &format!("--dhcp-leasefile={}", leases.display()),
                ],
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(out)
            .spawn()
            .expect("dnsmasq is not installed: run scripts/setup.sh (it installs dnsmasq-base)");
        let mut d = Dnsmasq { child, log, leases };
        std::thread::sleep(Duration::from_millis(300));
        if let Ok(Some(status)) = d.child.try_wait() {
            panic!("dnsmasq exited at once ({status}):\n{}", d.text());
        }
        d
    }

    fn text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// DHCPACKs sent so far (the first lease and every renewal).
    fn acks(&self) -> usize {
        self.text()
            .lines()
            .filter(|l| l.contains("DHCPACK("))
            .count()
    }

    fn discovers(&self) -> usize {
        self.text()
            .lines()
            .filter(|l| l.contains("DHCPDISCOVER("))
            .count()
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
        let _ = std::fs::remove_file(&self.leases);
        forget_leases();
    }
}

fn status(daemon: &Daemon) -> serde_json::Value {
    let out = common::xlaggctl(&daemon.socket, &["-j"]);
    assert!(out.status.success(), "xlaggctl -j failed");
    let all: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status is JSON");
    all[0].clone()
}

fn dynamic(daemon: &Daemon) -> Vec<String> {
    status(daemon)["dynamic_addresses"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

fn leased(daemon: &Daemon) -> Option<String> {
    dynamic(daemon)
        .into_iter()
        .find(|a| a.starts_with("10.77.0."))
}

fn ping(bed: &Bed, target: &str) -> bool {
    run(&mut bed.exec("app", &["ping", "-c", "2", "-W", "2", "-i", "0.2", target]))
        .status
        .success()
}

fn dhcpcd_running(bed: &Bed) -> bool {
    Command::new("ip")
        .args(["netns", "pids", &bed.ns("app")])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
        .split_whitespace()
        .any(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "dhcpcd")
        })
}

/// dhcpcd keeps each interface's last lease (`/var/lib/dhcpcd/IFACE.lease`) and starts by
/// asking for it again: a test starts from none, whatever an earlier run left.
fn forget_leases() {
    for f in [
        "/var/lib/dhcpcd/lagg0.lease",
        "/var/lib/dhcpcd/lagg0.lease6",
    ] {
        let _ = std::fs::remove_file(f);
    }
}

/// The partner's ports complete their checksums as a wire does (a veth leaves them to the
/// receiver, and dhcpcd checks the UDP checksum of every offer).
fn wire_partner(bed: &Bed) {
    for p in bed.partner_names() {
        common::run_ok(&mut bed.exec("ptr", &["ethtool", "-K", &p, "tx", "off"]));
    }
}

#[test]
fn syncdhcp_lease_survives_failover_and_membership_and_slaac_addresses_lagg0() {
    let _serial = serial();
    let bed = Bed::up(2, true);
    wire_partner(&bed);
    forget_leases();
    let dnsmasq = Dnsmasq::start(&bed);
    let config = bed.config(
        "failover",
        "dhcp = true\ndhcp_sync = true\ndhcp_timeout = 30\nipv6_auto = true\n",
        true,
    );
    let started = Instant::now();
    let daemon = Daemon::start(&bed, &config);
    let ready_after = started.elapsed();

    // SYNCDHCP: ready means addressed.
    let first = leased(&daemon).unwrap_or_else(|| {
        panic!(
            "ready without a lease: {}\ndnsmasq:\n{}",
            status(&daemon),
            dnsmasq.text()
        )
    });
    assert_eq!(status(&daemon)["dhcp"], "bound");
    assert!(first.ends_with("/24"), "{first}");
    println!(
        "lease {first} bound, xlaggd ready after {} ms",
        ready_after.as_millis()
    );
    assert!(ping(&bed, "10.77.0.2"), "ping from the leased address");
    let text = common::xlaggctl(&daemon.socket, &["lagg0"]);
    let text = String::from_utf8_lossy(&text.stdout).into_owned();
    assert!(
        text.contains("(dhcp)") && text.contains("dhcp: bound"),
        "ifconfig text shows the lease:\n{text}"
    );

    // SLAAC from dnsmasq's router advertisements.
    wait_until(20, "an autoconfigured IPv6 address on lagg0", || {
        dynamic(&daemon)
            .iter()
            .any(|a| a.starts_with("2001:db8:77:"))
    });
    let v6 = run(&mut bed.exec(
        "app",
        &[
            "ping",
            "-6",
            "-c",
            "2",
            "-W",
            "2",
            "-i",
            "0.2",
            "2001:db8:77::2",
        ],
    ));
    assert!(v6.status.success(), "ping6 from the autoconfigured address");

    // Failover: the master's partner port goes down; traffic and the lease move to xlm1.
    let bound_at = Instant::now();
    bed.ip("ptr", &["link", "set", "xlp0", "down"]);
    wait_until(10, "ping after the failover", || ping(&bed, "10.77.0.2"));
    // Membership: xlm1 leaves and comes back in place; the client is not restarted.
    let discovers = dnsmasq.discovers();
    bed.ip("ptr", &["link", "set", "xlp0", "up"]);
    wait_until(10, "xlm0 active again", || ping(&bed, "10.77.0.2"));
    for words in [
        ["lagg0", "-laggport", "xlm1"],
        ["lagg0", "laggport", "xlm1"],
    ] {
        let out = common::xlaggctl(&daemon.socket, &words);
        assert!(out.status.success(), "xlaggctl {words:?}");
    }
    bed.ip("ptr", &["link", "set", "xlp0", "down"]);
    wait_until(10, "ping on xlm1 after the second failover", || {
        ping(&bed, "10.77.0.2")
    });
    // The renewal (at half the 2-minute lease) goes out through xlm1.
    let acks = dnsmasq.acks();
    wait_until(90, "the lease renewed through the backup member", || {
        dnsmasq.acks() > acks
    });
    println!(
        "renewed {} s after the lease was bound",
        bound_at.elapsed().as_secs()
    );
    assert_eq!(
        leased(&daemon).as_deref(),
        Some(first.as_str()),
        "the same address after failover, membership changes and renewal"
    );
    assert_eq!(
        dnsmasq.discovers(),
        discovers,
        "no new DISCOVER: the client kept its lease throughout:\n{}",
        dnsmasq.text()
    );
    assert!(ping(&bed, "10.77.0.2"), "ping after the renewal");

    // A killed daemon's client outlives it (dhcpcd drops its privileges, which clears the
    // parent-death signal; under systemd the unit's cgroup is killed with it). The next start
    // (which removes the stale lagg0 and stops a leftover client still running) gets a lease
    // with its own client; a normal stop stops it.
    assert!(dhcpcd_running(&bed), "dhcpcd runs beside xlaggd");
    daemon.kill();
    let again = Daemon::start(&bed, &config);
    assert!(
        leased(&again).is_some(),
        "a lease again after a restart over a leftover client: {}",
        status(&again)
    );
    drop(again);
    wait_until(5, "dhcpcd stopped with the daemon", || {
        !dhcpcd_running(&bed)
    });
    drop(dnsmasq);
}

#[test]
fn without_a_server_syncdhcp_waits_its_timeout_then_reports_waiting() {
    let _serial = serial();
    let bed = Bed::up(1, true);
    wire_partner(&bed);
    forget_leases();
    let config = bed.config(
        "failover",
        "dhcp = true\ndhcp_sync = true\ndhcp_timeout = 3\n",
        true,
    );
    let started = Instant::now();
    let daemon = Daemon::start(&bed, &config);
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(3),
        "readiness waited dhcp_timeout for a lease: {waited:?}"
    );
    let st = status(&daemon);
    assert_eq!(
        st["state"], "running",
        "the lagg runs without a lease: {st}"
    );
    assert_eq!(st["dhcp"], "waiting for a lease", "{st}");
    // A server appearing later: the client that kept trying gets a lease.
    let _dnsmasq = Dnsmasq::start(&bed);
    wait_until(45, "a lease once a server answers", || {
        leased(&daemon).is_some()
    });
}
