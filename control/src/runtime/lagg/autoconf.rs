//! Addresses a host-mode laggN obtains itself: IPv4 from DHCP and IPv6 from router
//! advertisements (SLAAC).
//!
//! DHCP is dhcpcd's work, not ours: xlaggd runs it on laggN as a child (in the foreground,
//! stopped with the lagg, restarted with a back-off if it dies) and only watches the result,
//! the addresses on laggN that the kernel does not hold as permanent (a lease added with its
//! lifetime, SLAAC's) and that are not configured; an address added by hand is not taken for
//! a lease. dhcpcd runs with an empty
//! configuration and no hook script: it sets the address and routes (the default route
//! included) and leaves resolv.conf, the host name and NTP alone. Because laggN stays up while
//! members fail over, join or leave, the lease and its renewals carry on across them; a change
//! that restarts the lagg restarts the client.
//!
//! SLAAC is the kernel's: `accept_ra` on laggN is 2 (accepted even when the box forwards)
//! with `ipv6_auto`, 0 without, as FreeBSD accepts router advertisements only with
//! `accept_rtadv`.

use std::io::{BufRead, BufReader};
use std::net::IpAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::config::{DhcpOptions, LaggConfig, Upper};
use crate::sys::netdev::Netlink;

/// The DHCP client xlaggd runs (Debian: dhcpcd-base).
pub const DHCP_CLIENT: &str = "dhcpcd";
/// How often laggN's addresses are read for the lease.
const READ_EVERY: Duration = Duration::from_secs(1);
/// The longest wait before a client that died is started again (the wait doubles from 1 s).
const RESTART_MAX: Duration = Duration::from_secs(30);

/// What DHCP on laggN is doing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DhcpState {
    /// The client runs and laggN has no lease yet.
    Waiting,
    /// laggN holds a leased address.
    Bound,
    /// The client is not running (it could not start or died); it is started again.
    NoClient(String),
}

impl std::fmt::Display for DhcpState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Waiting => f.write_str("waiting for a lease"),
            Self::Bound => f.write_str("bound"),
            Self::NoClient(why) => write!(f, "no client: {why}; retried"),
        }
    }
}

/// The DHCP client and the addresses laggN obtained.
#[derive(Debug)]
pub(super) struct Autoconf {
    lagg: String,
    dhcp: Option<Client>,
    /// laggN's dynamic addresses that are not configured (the lease, SLAAC's), last read;
    /// link-local ones left out.
    dynamic: Vec<(IpAddr, u8)>,
    next_read: Instant,
    /// When the lagg started, for how long a lease took.
    started: Instant,
    bound_after: Option<Duration>,
}

#[derive(Debug)]
struct Client {
    options: DhcpOptions,
    child: Option<Child>,
    /// Why the client is not running, while it is not.
    down: Option<String>,
    restarts: u32,
    next_start: Instant,
    /// When the running client started.
    started_at: Instant,
}

impl Autoconf {
    /// Sets laggN's router-advertisement handling and starts the DHCP client; `None` in
    /// forward mode (no laggN).
    pub(super) fn start(cfg: &LaggConfig) -> Option<Autoconf> {
        let Upper::Host { .. } = cfg.upper else {
            return None;
        };
        let accept_ra = if cfg.ipv6_auto { "2" } else { "0" };
        for (key, value) in [("accept_ra", accept_ra), ("autoconf", "1")] {
            let path = format!("/proc/sys/net/ipv6/conf/{}/{key}", cfg.name);
            if let Err(e) = std::fs::write(&path, value) {
                if cfg.ipv6_auto {
                    tracing::warn!(lagg = %cfg.name, error = %e, "cannot set {path}: IPv6 autoconfiguration may not work (is IPv6 disabled?)");
                }
            }
        }
        let now = Instant::now();
        let mut a = Autoconf {
            lagg: cfg.name.clone(),
            dhcp: cfg.dhcp.map(|options| Client {
                options,
                child: None,
                down: None,
                restarts: 0,
                next_start: now,
                started_at: now,
            }),
            dynamic: Vec::new(),
            next_read: now,
            started: now,
            bound_after: None,
        };
        a.keep_client();
        Some(a)
    }

    /// Starts the client again if it died and is due; reads laggN's addresses once a second.
    /// Returns what changed, in words, for the event timeline.
    pub(super) fn tick(&mut self, nl: &Netlink, configured: &[(IpAddr, u8)]) -> Vec<String> {
        self.keep_client();
        let now = Instant::now();
        if now < self.next_read {
            return Vec::new();
        }
        self.next_read = now + READ_EVERY;
        let read = nl
            .require(&self.lagg)
            .and_then(|l| nl.dynamic_addresses(l.index));
        let found: Vec<(IpAddr, u8)> = match read {
            Ok(all) => all
                .into_iter()
                .filter(|(a, _)| !configured.iter().any(|(c, _)| c == a))
                .filter(|(a, _)| !is_link_local(a))
                .collect(),
            Err(e) => {
                tracing::warn!(lagg = %self.lagg, error = %e, "cannot read laggN's addresses");
                return Vec::new();
            }
        };
        let mut changes = Vec::new();
        for (a, p) in &found {
            if !self.dynamic.contains(&(*a, *p)) {
                let how = if a.is_ipv4() {
                    "DHCP"
                } else {
                    "autoconfigured"
                };
                changes.push(format!("{how} address {a}/{p}"));
            }
        }
        for (a, p) in &self.dynamic {
            if !found.contains(&(*a, *p)) {
                changes.push(format!("address {a}/{p} gone"));
            }
        }
        self.dynamic = found;
        if self.bound_after.is_none() && self.bound() {
            let took = self.started.elapsed();
            self.bound_after = Some(took);
            tracing::info!(lagg = %self.lagg, after_ms = took.as_millis() as u64, "DHCP lease bound");
        }
        for c in &changes {
            tracing::info!(lagg = %self.lagg, "{c}");
        }
        changes
    }

    /// Whether laggN holds a leased IPv4 address.
    pub(super) fn bound(&self) -> bool {
        self.dhcp.is_some() && self.dynamic.iter().any(|(a, _)| a.is_ipv4())
    }

    /// DHCP's state; `None` without DHCP.
    pub(super) fn dhcp_state(&self) -> Option<DhcpState> {
        let client = self.dhcp.as_ref()?;
        Some(match &client.down {
            Some(why) => DhcpState::NoClient(why.clone()),
            None if self.bound() => DhcpState::Bound,
            None => DhcpState::Waiting,
        })
    }

    /// With `SYNCDHCP`: until when readiness waits for the lease (`None`: it does not).
    pub(super) fn sync_until(&self) -> Option<Instant> {
        let client = self.dhcp.as_ref()?;
        client
            .options
            .sync
            .then(|| self.started + Duration::from_secs(client.options.timeout_s))
    }

    /// laggN's addresses that are not configured, with prefix length.
    pub(super) fn dynamic(&self) -> &[(IpAddr, u8)] {
        &self.dynamic
    }

    /// Starts the client when it is not running and due; notices one that exited.
    fn keep_client(&mut self) {
        let Some(client) = self.dhcp.as_mut() else {
            return;
        };
        if let Some(child) = client.child.as_mut() {
            match child.try_wait() {
                Ok(None) => {
                    client.running_for(client.started_at.elapsed());
                    return;
                }
                Ok(Some(status)) => {
                    let why = format!("{DHCP_CLIENT} exited ({status})");
                    tracing::warn!(lagg = %self.lagg, "{why}; starting it again");
                    client.child = None;
                    client.fail(why);
                }
                Err(e) => {
                    tracing::warn!(lagg = %self.lagg, error = %e, "cannot wait for {DHCP_CLIENT}");
                    return;
                }
            }
        }
        if Instant::now() < client.next_start {
            return;
        }
        match spawn_client(&self.lagg) {
            Ok(child) => {
                tracing::info!(lagg = %self.lagg, pid = child.id(), "DHCP client started");
                client.child = Some(child);
                client.down = None;
                client.started_at = Instant::now();
            }
            Err(why) => {
                tracing::error!(lagg = %self.lagg, "{why}");
                client.fail(why);
            }
        }
    }

    /// Stops the client (it removes the leased address and its routes).
    pub(super) fn stop(&mut self) {
        let Some(client) = self.dhcp.as_mut() else {
            return;
        };
        if let Some(mut child) = client.child.take() {
            xlagg_sys::process::stop(&mut child, Duration::from_secs(3));
        }
    }
}

impl Drop for Autoconf {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A client that ran this long counts as healthy again: its next failure waits 1 s.
const HEALTHY_AFTER: Duration = Duration::from_secs(60);

impl Client {
    /// The running client has been up for `up`.
    fn running_for(&mut self, up: Duration) {
        if up >= HEALTHY_AFTER {
            self.restarts = 0;
        }
    }

    fn fail(&mut self, why: String) {
        self.down = Some(why);
        self.restarts += 1;
        let wait = Duration::from_secs(1 << (self.restarts - 1).min(5)).min(RESTART_MAX);
        self.next_start = Instant::now() + wait;
    }
}

/// The pid file of dhcpcd on `iface` in IPv4-only mode.
fn pid_file(iface: &str) -> String {
    format!("/run/dhcpcd/{iface}-4.pid")
}

/// Stops a dhcpcd left on `iface` by an xlaggd that was killed (a DHCP client that drops its
/// privileges loses the parent-death signal): laggN is ours by name, as at bring-up, and a
/// running client would keep ours from starting. Only one in this network namespace.
fn stop_leftover(iface: &str) {
    let Some(pid) = std::fs::read_to_string(pid_file(iface))
        .ok()
        .and_then(|t| t.trim().parse::<u32>().ok())
    else {
        return;
    };
    // The pid file may be stale and its pid reused: the process must be dhcpcd, in this
    // network namespace, and serving this interface (dhcpcd titles itself "dhcpcd: IFACE ...").
    let ours = |pid: u32| {
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        let netns = |p: &str| std::fs::read_link(format!("/proc/{p}/ns/net")).ok();
        comm.trim() == DHCP_CLIENT
            && cmdline.split_whitespace().any(|w| w == iface)
            && netns(&pid.to_string()).is_some()
            && netns(&pid.to_string()) == netns("self")
    };
    if !ours(pid) {
        return;
    }
    tracing::warn!(lagg = %iface, pid, "stopping a DHCP client left by an earlier run");
    let _ = xlagg_sys::process::signal(pid, false);
    let deadline = Instant::now() + Duration::from_secs(3);
    while ours(pid) {
        if Instant::now() > deadline {
            let _ = xlagg_sys::process::signal(pid, true);
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// dhcpcd on `iface`, in the foreground, IPv4 only, no link-local fallback, no time limit,
/// no configuration file and no hooks; its messages go to xlaggd's log.
fn spawn_client(iface: &str) -> Result<Child, String> {
    stop_leftover(iface);
    let mut cmd = Command::new(DHCP_CLIENT);
    cmd.args([
        "--nobackground",
        "--config",
        "/dev/null",
        "--ipv4only",
        "--noipv4ll",
        "--timeout",
        "0",
        "--script",
        "/bin/true",
        iface,
    ])
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::piped());
    xlagg_sys::process::end_with_parent(&mut cmd);
    let mut child = cmd.spawn().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            format!("DHCP on {iface} needs {DHCP_CLIENT}, which is not installed (Debian: apt install dhcpcd-base)")
        } else {
            format!("cannot start {DHCP_CLIENT} on {iface}: {e}")
        }
    })?;
    if let Some(stderr) = child.stderr.take() {
        let lagg = iface.to_string();
        let _ = std::thread::Builder::new()
            .name(format!("{DHCP_CLIENT}-{iface}"))
            .spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    tracing::info!(lagg = %lagg, "{DHCP_CLIENT}: {line}");
                }
            });
    }
    Ok(child)
}

fn is_link_local(a: &IpAddr) -> bool {
    match a {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_local_addresses_are_not_a_lease() {
        assert!(is_link_local(&"fe80::1".parse().unwrap()));
        assert!(is_link_local(&"169.254.3.4".parse().unwrap()));
        assert!(!is_link_local(&"10.99.0.59".parse().unwrap()));
        assert!(!is_link_local(&"fd00:99::1".parse().unwrap()));
    }

    #[test]
    fn a_client_that_dies_waits_longer_each_time_up_to_30_s_until_it_ran_a_minute() {
        let mut c = Client {
            options: DhcpOptions {
                sync: false,
                timeout_s: 30,
            },
            child: None,
            down: None,
            restarts: 0,
            next_start: Instant::now(),
            started_at: Instant::now(),
        };
        let mut waits = Vec::new();
        for _ in 0..8 {
            let before = Instant::now();
            c.fail("test".into());
            waits.push((c.next_start - before).as_secs());
        }
        assert_eq!(waits, [1, 2, 4, 8, 16, 30, 30, 30]);
        // A client that then ran a minute starts from 1 s again; a shorter run does not.
        c.running_for(Duration::from_secs(59));
        c.fail("test".into());
        assert!(c.next_start - Instant::now() > Duration::from_secs(20));
        c.running_for(HEALTHY_AFTER);
        let before = Instant::now();
        c.fail("test".into());
        assert_eq!((c.next_start - before).as_secs(), 1);
        assert_eq!(
            DhcpState::NoClient("dhcpcd exited".into()).to_string(),
            "no client: dhcpcd exited; retried"
        );
    }
}
