//! Link monitoring and failover in the namespace test bed: peer notification captured on the
//! partner side, a flap storm, and updelay. Needs root and tcpdump; fails otherwise.

mod common;

use std::io::Read as _;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{serial, Bed, Daemon};

/// tcpdump on a partner port. Lines are read as tcpdump prints them (`--immediate-mode`, `-l`),
/// so a check waits for the frame it expects up to a deadline instead of sleeping a fixed time.
struct Capture {
    child: Option<Child>,
    /// What tcpdump wrote on standard error after "listening on" (drained by a thread, so the
    /// pipe stays open: tcpdump prints its "listening on" line in several writes, and a pipe
    /// closed after the first makes it exit on SIGPIPE before it captures anything).
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
    lines: std::sync::mpsc::Receiver<String>,
    seen: Vec<String>,
    ns: String,
    iface: String,
}

impl Capture {
    fn start(bed: &Bed, iface: &str, filter: &str) -> Capture {
        let mut child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &bed.ns("ptr"),
                "tcpdump",
                "-i",
                iface,
                "-e",
                "-nn",
                "-l",
                "--immediate-mode",
                "-Q",
                "in",
                filter,
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("tcpdump (scripts/setup.sh installs it)");
        // tcpdump says "listening on ..." once the capture is open.
        let mut err = child.stderr.take().expect("stderr");
        let mut said = Vec::new();
        let mut byte = [0u8; 1];
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline && !String::from_utf8_lossy(&said).contains("listening on")
        {
            if err.read(&mut byte).unwrap_or(0) == 0 {
                break;
            }
            said.push(byte[0]);
        }
        assert!(
            String::from_utf8_lossy(&said).contains("listening on"),
            "tcpdump did not start: {}",
            String::from_utf8_lossy(&said)
        );
        let (tx, lines) = std::sync::mpsc::channel();
        let out = child.stdout.take().expect("stdout");
        std::thread::spawn(move || {
            for line in std::io::BufRead::lines(std::io::BufReader::new(out)).map_while(Result::ok)
            {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let sink = std::sync::Arc::clone(&stderr);
        std::thread::spawn(move || {
            let mut rest = String::new();
            let _ = err.read_to_string(&mut rest);
            if let Ok(mut s) = sink.lock() {
                s.push_str(&rest);
            }
        });
        Capture {
            child: Some(child),
            stderr,
            lines,
            seen: Vec::new(),
            ns: bed.ns("ptr"),
            iface: iface.to_string(),
        }
    }

    /// Waits up to `secs` until every one of `wanted` has appeared in a captured line, then
    /// stops the capture. Panics with everything captured and the port's counters otherwise.
    fn expect(mut self, secs: u64, wanted: &[&str], what: &str) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        let all_seen = |seen: &[String]| wanted.iter().all(|w| seen.iter().any(|l| l.contains(w)));
        while !all_seen(&self.seen) && Instant::now() < deadline {
            match self.lines.recv_timeout(Duration::from_millis(50)) {
                Ok(line) => self.seen.push(line),
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        if all_seen(&self.seen) {
            return;
        }
        let counters = Command::new("ip")
            .args(["-n", &self.ns, "-s", "link", "show", &self.iface])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        // tcpdump's own account: what the kernel handed its socket and what it dropped.
        let mut stats = String::new();
        if let Some(child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-INT", &child.id().to_string()])
                .status();
            let _ = child.wait_with_output();
            std::thread::sleep(Duration::from_millis(100));
            if let Ok(s) = self.stderr.lock() {
                stats.push_str(&s);
            }
        }
        panic!(
            "{what}: not captured on {} within {secs} s: {wanted:?}\ncaptured:\n{}\nport counters:\n{counters}\ntcpdump:\n{stats}",
            self.iface,
            self.seen.join("\n")
        );
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

const ANNOUNCE: &str = "arp or (icmp6 and ip6[40] == 136)";

fn host_failover(bed: &Bed, extra: &str) -> Daemon {
    let config = bed.config(
        "failover",
        &format!("addresses = [\"10.77.0.1/24\", \"2001:db8:77::1/64\"]\n{extra}[daemon]\nstatus_interval_ms = 50\n"),
        true,
    );
    // The [daemon] table given twice would be refused: move ours to the top.
    let config = config
        .replacen("[daemon]\nlink_poll_ms = 10000\n", "", 1)
        .replace("[daemon]\nstatus_interval_ms = 50\n", "");
    Daemon::start(
        bed,
        &format!("[daemon]\nlink_poll_ms = 10000\nstatus_interval_ms = 50\n\n{config}"),
    )
}

#[test]
fn failover_announces_the_addresses_on_the_new_active_port_and_again_on_return() {
    let _serial = serial();
    let bed = Bed::up(2, false);
    // Three announcements 100 ms apart: one lost to the capture's start must not fail the test.
    let mut daemon = host_failover(&bed, "notify_count = 3\nnotify_interval = 100\n");
    daemon.wait_status(10, "xlm0 active", |f| {
        f.get("xlm0").is_some_and(|s| s.contains("ACTIVE"))
    });
    // Let IPv6 duplicate address detection on lagg0 finish.
    std::thread::sleep(Duration::from_millis(1500));
    let on_backup = Capture::start(&bed, "xlp1", ANNOUNCE);
    // The master goes down on the appliance side (administratively), so that xlp0 stays up
    // for the capture of its return.
    bed.ip("app", &["link", "set", "xlm0", "down"]);
    daemon.wait_status(5, "xlm1 active", |f| {
        f.get("xlm1").is_some_and(|s| s.contains("ACTIVE"))
    });
    on_backup.expect(
        5,
        &[
            "Request who-has 10.77.0.1 tell 10.77.0.1",
            "neighbor advertisement, tgt is 2001:db8:77::1",
        ],
        "gratuitous ARP and unsolicited NA on the new active port",
    );
    let on_master = Capture::start(&bed, "xlp0", ANNOUNCE);
    bed.ip("app", &["link", "set", "xlm0", "up"]);
    daemon.wait_status(5, "xlm0 active again", |f| {
        f.get("xlm0").is_some_and(|s| s.contains("ACTIVE"))
    });
    on_master.expect(
        5,
        &["Request who-has 10.77.0.1 tell 10.77.0.1"],
        "announced again when the master returns",
    );
}

#[test]
fn updelay_holds_a_returning_master_back() {
    let _serial = serial();
    let bed = Bed::up(2, false);
    let mut daemon = host_failover(&bed, "updelay = 1500\n");
    daemon.wait_status(10, "xlm0 active", |f| {
        f.get("xlm0").is_some_and(|s| s.contains("ACTIVE"))
    });
    bed.ip("ptr", &["link", "set", "xlp0", "down"]);
    daemon.wait_status(5, "xlm1 active", |f| {
        f.get("xlm1").is_some_and(|s| s.contains("ACTIVE"))
    });
    bed.ip("ptr", &["link", "set", "xlp0", "up"]);
    let back = Instant::now();
    daemon.wait_status(5, "xlm0 active after updelay", |f| {
        f.get("xlm0").is_some_and(|s| s.contains("ACTIVE"))
    });
    let took = back.elapsed();
    assert!(
        took >= Duration::from_millis(1400),
        "the master came back after {took:?}, before its 1500 ms updelay"
    );
}

#[test]
fn a_flap_storm_ends_in_the_right_state_without_leaks() {
    let _serial = serial();
    let bed = Bed::up(4, false);
    let config = bed.config("loadbalance", "", false).replace(
        "link_poll_ms = 10000",
        "link_poll_ms = 10000\nstatus_interval_ms = 50",
    );
    let mut daemon = Daemon::start(&bed, &config);
    let all = ["xlm0", "xlm1", "xlm2", "xlm3"];
    let distributing = |f: &std::collections::BTreeMap<String, String>, p: &str| {
        f.get(p).is_some_and(|s| s.contains("DISTRIBUTING"))
    };
    daemon.wait_status(10, "all distributing", |f| {
        all.iter().all(|p| distributing(f, p))
    });
    let fds = daemon.open_fds();
    // 400 carrier changes on xlp2 as fast as ip can make them, ending down.
    let mut batch = String::new();
    for _ in 0..200 {
        batch.push_str("link set xlp2 down\nlink set xlp2 up\n");
    }
    batch.push_str("link set xlp2 down\n");
    let mut ip = Command::new("ip")
        .args(["-n", &bed.ns("ptr"), "-batch", "-"])
        .stdin(Stdio::piped())
        .spawn()
        .expect("ip");
    std::io::Write::write_all(ip.stdin.as_mut().expect("stdin"), batch.as_bytes()).expect("write");
    drop(ip.stdin.take());
    assert!(ip.wait().expect("ip").success());
    daemon.wait_status(10, "xlm2 out, the others in", |f| {
        !distributing(f, "xlm2") && ["xlm0", "xlm1", "xlm3"].iter().all(|p| distributing(f, p))
    });
    bed.ip("ptr", &["link", "set", "xlp2", "up"]);
    daemon.wait_status(10, "all four back", |f| {
        all.iter().all(|p| distributing(f, p))
    });
    assert_eq!(
        daemon.open_fds(),
        fds,
        "no file descriptor leaked through the storm"
    );
    let alive = std::path::Path::new(&format!("/proc/{}", daemon.pid())).exists();
    assert!(alive, "xlaggd survived");
}

#[test]
fn forward_mode_failover_sends_learning_frames_for_the_downstream_hosts() {
    let _serial = serial();
    let bed = Bed::up(2, false);
    let config = bed.config("failover", "", false).replace(
        "link_poll_ms = 10000",
        "link_poll_ms = 10000\nstatus_interval_ms = 50",
    );
    let mut daemon = Daemon::start(&bed, &config);
    daemon.wait_status(10, "xlm0 active", |f| {
        f.get("xlm0").is_some_and(|s| s.contains("ACTIVE"))
    });
    // Traffic from the downstream host (source MAC 02:78:6c:00:00:01) teaches the worker its MAC.
    bed.send(1, 64, 0);
    let capture = Capture::start(&bed, "xlp1", "ether proto 0x9000");
    bed.ip("app", &["link", "set", "xlm0", "down"]);
    daemon.wait_status(5, "xlm1 active", |f| {
        f.get("xlm1").is_some_and(|s| s.contains("ACTIVE"))
    });
    capture.expect(
        5,
        &["02:78:6c:00:00:01 > 02:78:6c:00:00:01, ethertype Loopback (0x9000)"],
        "a learning frame for the downstream host on the new active port",
    );
}
