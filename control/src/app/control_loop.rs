//! The control thread's loop: it waits on link notifications, every lagg's control sockets
//! (LACP, micro-BFD, probe replies), the management socket and the next deadline (LACP, link
//! delays, monitors, notifications, retries of failed laggs, the safety-net link re-read), and
//! never on worker activity. Each wake-up is one [`ControlLoop::step`]; `xlaggd` only parses
//! its arguments, builds this and runs it.

use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use xlagg_sys::linkevents::{self, LinkEvent, LinkEvents};

use crate::mgmt::api;
use crate::mgmt::http_listener::HttpListener;
use crate::runtime::daemon::Daemon;
use crate::runtime::lagg::{ControlSocket, Lagg};
use crate::sys::netdev::Netlink;

/// How often the HTTP listener's read view is renewed (besides after every change).
pub const VIEW_EVERY: Duration = Duration::from_millis(500);

/// Work between the wait and the timers that takes this long has the control sockets read
/// again before the timers run.
const LATE_READ: Duration = Duration::from_millis(5);
/// The longest the loop sleeps (so the stop flag is seen promptly).
pub const MAX_WAIT: Duration = Duration::from_millis(100);

/// The loop's periods.
#[derive(Clone, Copy, Debug)]
pub struct LoopTimes {
    /// The safety-net re-read of member link state.
    pub link_poll: Duration,
    /// The status table on standard output; zero: only at exit.
    pub status_every: Duration,
}

/// The control thread's state between wake-ups.
#[derive(Debug)]
pub struct ControlLoop {
    nl: Netlink,
    daemon: Daemon,
    server: api::Server,
    http: HttpListener,
    link_events: LinkEvents,
    times: LoopTimes,
    next_link_poll: Instant,
    next_view: Instant,
    last_status: Instant,
    events: Vec<LinkEvent>,
}

impl ControlLoop {
    /// A loop over `daemon` with its front ends; nothing runs yet.
    pub fn new(
        nl: Netlink,
        daemon: Daemon,
        server: api::Server,
        http: HttpListener,
        link_events: LinkEvents,
        times: LoopTimes,
    ) -> Self {
        let now = Instant::now();
        Self {
            nl,
            daemon,
            server,
            http,
            link_events,
            times,
            next_link_poll: now + times.link_poll,
            next_view: now,
            last_status: now,
            events: Vec::new(),
        }
    }

    /// Starts every lagg (those that cannot start are reported and retried) and publishes the
    /// first read view. Returns how many run.
    pub fn start(&mut self) -> usize {
        self.keep_http(Instant::now());
        let failed = self.daemon.start_all(&self.nl);
        if !failed.is_empty() {
            tracing::warn!(failed = ?failed, "running degraded: these laggs are retried when their devices change");
        }
        self.publish_view();
        self.daemon.laggs().len()
    }

    /// With `SYNCDHCP` laggs: steps until each has a lease or its `dhcp_timeout` passed (or
    /// `stop` is set), so readiness means addressed. Returns the laggs that got none.
    pub fn wait_for_leases(&mut self, stop: &AtomicBool) -> Vec<String> {
        loop {
            let now = Instant::now();
            let waiting: Vec<(String, Instant)> = self
                .daemon
                .laggs()
                .iter()
                .filter_map(|l| l.awaiting_lease().map(|t| (l.config().name.clone(), t)))
                .collect();
            let late: Vec<String> = waiting
                .iter()
                .filter(|(_, until)| *until <= now)
                .map(|(n, _)| n.clone())
                .collect();
            if waiting.len() == late.len() || stop.load(Ordering::Relaxed) {
                for name in &late {
                    tracing::warn!(lagg = %name, "no DHCP lease within dhcp_timeout; ready without one (the client keeps trying)");
                }
                return late;
            }
            self.step();
        }
    }

    /// The daemon (for tests and the final status).
    pub fn daemon(&self) -> &Daemon {
        &self.daemon
    }

    fn publish_view(&mut self) {
        if let Some(h) = self.http.server() {
            h.publish(crate::mgmt::ops::read_view(&mut self.daemon, &self.nl));
            self.next_view = Instant::now() + VIEW_EVERY;
        }
    }

    /// Starts the HTTP listener when a try is due; a listener that just came up gets its
    /// first view at once.
    fn keep_http(&mut self, now: Instant) {
        let was_up = self.http.server().is_some();
        self.http.tick(now);
        if !was_up && self.http.server().is_some() {
            self.next_view = now;
        }
        self.daemon.set_http_state(self.http.state(now));
    }

    /// Steps until `stop` is set.
    pub fn run(&mut self, stop: &AtomicBool) {
        while !stop.load(Ordering::Relaxed) {
            self.step();
        }
    }

    /// Waits for the next input or deadline (at most [`MAX_WAIT`]) and handles everything
    /// that is due.
    pub fn step(&mut self) {
        let now = Instant::now();
        let deadline = self
            .daemon
            .laggs()
            .iter()
            .filter_map(Lagg::deadline)
            .chain(self.daemon.retry_deadline())
            .chain(self.http.deadline())
            .chain([self.next_link_poll, now + MAX_WAIT])
            .min()
            .unwrap_or(self.next_link_poll);
        let control = self.control_sockets();
        let mut fds = vec![self.link_events.as_raw_fd(), self.server.wake_fd()];
        fds.extend(control.iter().map(|s| s.2));
        let ready = linkevents::wait_readable(&fds, deadline.saturating_duration_since(now));
        // The step's clock: the lagg rules below run at this `now`, read once when the step
        // wakes, and once more only if the work in between took LATE_READ or longer.
        let mut now = Instant::now();
        if ready.first() == Some(&true) {
            self.link_notifications(now);
        }
        self.control_frames(&control, ready.get(2..).unwrap_or_default(), now);
        // A worker that died is noticed here, within one control tick.
        self.daemon.restart_dead_workers(&self.nl);
        if self.daemon.retry_deadline().is_some_and(|t| t <= now) {
            self.daemon.retry_failed(&self.nl);
        }
        self.daemon.collect_events();
        // Management requests last: a change may replace laggs (and their sockets above).
        if ready.get(1) == Some(&true) {
            self.requests();
        }
        // Work above can take a while (a request restarted a lagg, a worker was replaced):
        // the rest of the step runs at a new reading, and what the partners sent meanwhile
        // is read before the timers below judge silence (frames keep the time they are read
        // at, which is never before this `now`).
        let later = Instant::now();
        if later.saturating_duration_since(now) >= LATE_READ {
            now = later;
            let control = self.control_sockets();
            let fds: Vec<RawFd> = control.iter().map(|s| s.2).collect();
            let ready = linkevents::wait_readable(&fds, Duration::ZERO);
            self.control_frames(&control, &ready, now);
        }
        self.keep_http(now);
        if self.http.server().is_some() && now >= self.next_view {
            self.publish_view();
        }
        if now >= self.next_link_poll {
            self.next_link_poll = now + self.times.link_poll;
            for lagg in self.daemon.laggs_mut() {
                if let Err(e) = lagg.refresh_links(&self.nl, now) {
                    tracing::error!(lagg = %lagg.config().name, error = %e, "link state refresh failed");
                }
            }
            self.daemon.reconcile_members(&self.nl, &[]);
        }
        for lagg in self.daemon.laggs_mut() {
            if let Err(e) = lagg
                .lacp_tick(now)
                .and_then(|()| lagg.link_tick(&self.nl, now))
            {
                tracing::error!(lagg = %lagg.config().name, error = %e, "timers failed");
            }
            lagg.autoconf_tick(&self.nl);
        }
        if !self.times.status_every.is_zero()
            && self.last_status.elapsed() >= self.times.status_every
        {
            self.last_status = Instant::now();
            self.print_status();
        }
    }

    /// Every lagg's control sockets: (lagg, which, descriptor).
    fn control_sockets(&self) -> Vec<(usize, ControlSocket, RawFd)> {
        self.daemon
            .laggs()
            .iter()
            .enumerate()
            .flat_map(|(l, lagg)| {
                lagg.control_sockets()
                    .into_iter()
                    .map(move |(c, s)| (l, c, s.as_raw_fd()))
            })
            .collect()
    }

    /// Reads the control sockets that `ready` marks readable; what they decide applies at
    /// `now`.
    fn control_frames(
        &mut self,
        control: &[(usize, ControlSocket, RawFd)],
        ready: &[bool],
        now: Instant,
    ) {
        for ((l, socket, _), r) in control.iter().zip(ready) {
            if *r {
                let lagg = &mut self.daemon.laggs_mut()[*l];
                if let Err(e) = lagg.handle_control_frames(&self.nl, *socket, now) {
                    tracing::error!(lagg = %lagg.config().name, socket = ?socket, error = %e, "control input failed");
                }
            }
        }
    }

    fn link_notifications(&mut self, now: Instant) {
        self.events.clear();
        let overrun = match self.link_events.read(&mut self.events) {
            Ok(o) => o,
            Err(e) => {
                tracing::error!(error = %e, "reading link notifications failed");
                true
            }
        };
        // A device appeared or changed: a lagg that could not start may now.
        self.daemon.retry_soon();
        let events = std::mem::take(&mut self.events);
        for lagg in self.daemon.laggs_mut() {
            let result = if overrun {
                tracing::warn!(lagg = %lagg.config().name, "link notifications were lost; re-reading link state");
                lagg.refresh_links(&self.nl, now).map(|_| ())
            } else {
                lagg.handle_link_events(&self.nl, &events, now)
            };
            if let Err(e) = result {
                tracing::error!(lagg = %lagg.config().name, error = %e, "applying link changes failed");
            }
        }
        // Members follow their devices by name (all laggs look after an overrun).
        let concerned: &[LinkEvent] = if overrun { &[] } else { &events };
        self.daemon.reconcile_members(&self.nl, concerned);
        self.events = events;
    }

    /// Answers the management requests waiting. Reads of the HTTP listener see a change's
    /// outcome as soon as its answer is sent.
    fn requests(&mut self) {
        let answered: Vec<_> = self
            .server
            .take()
            .into_iter()
            .map(|pending| {
                let request = pending.request.clone();
                let response = crate::mgmt::ops::handle(&mut self.daemon, &self.nl, request);
                (pending, response)
            })
            .collect();
        self.publish_view();
        for (pending, response) in answered {
            pending.answer(response);
        }
    }

    fn print_status(&self) {
        for lagg in self.daemon.laggs() {
            print!("{}", lagg.status_table());
        }
        let _ = std::io::Write::flush(&mut std::io::stdout());
    }

    /// Prints the final status, stops every lagg (nothing is left behind) and closes the
    /// front ends.
    pub fn finish(mut self) {
        tracing::info!("stopping");
        self.print_status();
        self.daemon.stop_all(&self.nl);
        self.http.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ConfigDoc;

    /// The loop with no lagg, driven step by step by the test: a management request is
    /// answered within a step, and a change made through it shows in the daemon (no root:
    /// nothing is attached).
    #[test]
    fn a_request_is_answered_within_a_step() {
        let dir = std::env::temp_dir().join(format!("xlagg-loop-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let socket = dir.join("xlaggd.sock");
        let server = api::Server::bind(&socket).expect("bind");
        let doc = ConfigDoc::default();
        let config = doc.validate().expect("valid");
        let daemon = Daemon::new(dir.join("xlagg.toml"), doc, config);
        let nl = Netlink::new().expect("netlink");
        let events = LinkEvents::open().expect("link notifications");
        let http = HttpListener::new(None, server.dispatcher());
        let mut control = ControlLoop::new(
            nl,
            daemon,
            server,
            http,
            events,
            LoopTimes {
                link_poll: Duration::from_secs(10),
                status_every: Duration::ZERO,
            },
        );
        assert_eq!(control.start(), 0);
        let path = socket.clone();
        let client = std::thread::spawn(move || {
            api::call(
                &path,
                &api::Request::Ifconfig {
                    name: "lagg3".into(),
                    args: vec!["create".into(), "down".into()],
                    dry_run: false,
                },
            )
        });
        let deadline = Instant::now() + Duration::from_secs(5);
        while !client.is_finished() && Instant::now() < deadline {
            control.step();
        }
        let answer = client.join().expect("client").expect("answer");
        assert!(answer.ok, "{answer:?}");
        assert_eq!(control.daemon().config().laggs[0].name, "lagg3");
        assert!(std::fs::read_to_string(dir.join("xlagg.toml"))
            .expect("saved")
            .contains("lagg3"));
        control.finish();
        let _ = std::fs::remove_dir_all(&dir);
    }
}
