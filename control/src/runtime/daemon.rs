//! The daemon's state: the configuration document it was given or has since accepted, the file
//! it persists to, and the running laggs; and how a change is carried out.
//!
//! A change (from any front end) is one new document. It is validated whole, its new or changed
//! laggs are checked against the devices, the laggs it touches are restarted and only then is
//! the file replaced. Any failure undoes the runtime part and leaves the file untouched; laggs
//! the change does not touch are never stopped.

use std::path::PathBuf;

use crate::config::ifconfig;
use crate::config::store;
use crate::config::{Config, ConfigDoc, LaggConfig};
use crate::runtime::lagg::{Explanation, LaggSample};
use crate::runtime::lagg::{Lagg, LaggEvent, Reconciled, StartOptions};
use crate::runtime::status::{HttpState, LaggStatus};
use crate::sys::netdev::Netlink;
use xlagg_sys::linkevents::LinkEvent;

/// The daemon's laggs and their configuration.
#[derive(Debug)]
pub struct Daemon {
    path: PathBuf,
    doc: ConfigDoc,
    config: Config,
    laggs: Vec<Lagg>,
    http: HttpState,
    token_file: PathBuf,
    /// The event timeline: (sequence number, event), the newest last.
    events: std::collections::VecDeque<(u64, LaggEvent)>,
    next_event: u64,
    event_counts: std::collections::BTreeMap<&'static str, u64>,
    /// Laggs that should run but could not start (a missing NIC, a foreign program) or whose
    /// worker died and could not restart: retried while the others run.
    failed: std::collections::BTreeMap<String, Failure>,
    /// Fault-injection requests are honoured (tests only).
    #[cfg_attr(not(feature = "testing"), allow(dead_code))]
    fault_injection: bool,
}

/// A change's outcome: the laggs it changed (or, dry run, would change), or one message per
/// problem (nothing changed).
pub type Change = Result<Vec<String>, Vec<String>>;

/// A host interface a lagg could use, as the management front ends list it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Interface {
    /// Name.
    pub name: String,
    /// MAC address, `aa:bb:..`.
    pub mac: String,
    /// MTU.
    pub mtu: u32,
    /// Administratively up with carrier.
    pub up: bool,
    /// The link kind (`veth`, ...), if any.
    pub kind: Option<String>,
    /// The lagg that uses it (as a member or forward port), if any.
    pub lagg: Option<String>,
}

/// Why a lagg that should run does not, and when it is tried again.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The error, as the start reported it.
    pub reason: String,
    /// Tries so far.
    pub attempts: u32,
    /// Not before then.
    pub next_try: std::time::Instant,
}

/// The longest wait between two tries of a failed lagg (the wait doubles from 1 s). A link
/// notification (a member appearing) makes every failed lagg due at once.
const RETRY_MAX: std::time::Duration = std::time::Duration::from_secs(30);

/// Events kept for the timeline.
const EVENTS_KEPT: usize = 500;

/// Whether a lagg is to run: administratively up and with ports.
pub fn runnable(cfg: &LaggConfig) -> bool {
    cfg.up && !cfg.ports.is_empty()
}

impl Daemon {
    /// A daemon holding `doc` (already validated into `config`), persisting to `path`, with
    /// nothing running yet.
    pub fn new(path: PathBuf, doc: ConfigDoc, config: Config) -> Self {
        Self {
            path,
            doc,
            config,
            laggs: Vec::new(),
            http: HttpState::Off,
            token_file: PathBuf::new(),
            events: std::collections::VecDeque::new(),
            next_event: 1,
            event_counts: std::collections::BTreeMap::new(),
            failed: std::collections::BTreeMap::new(),
            fault_injection: false,
        }
    }

    /// Whether fault-injection requests are honoured (`xlaggd --fault-injection`, tests only).
    pub fn set_fault_injection(&mut self, on: bool) {
        self.fault_injection = on;
    }

    /// The laggs that should run but do not, and why.
    pub fn failed(&self) -> &std::collections::BTreeMap<String, Failure> {
        &self.failed
    }

    /// Records that `name` could not start (or stopped on a fault): reported and retried.
    fn fail(&mut self, name: &str, reason: String) {
        let attempts = self.failed.get(name).map_or(0, |f| f.attempts) + 1;
        let wait = std::time::Duration::from_secs(1 << attempts.min(5)).min(RETRY_MAX);
        if self.failed.get(name).is_none_or(|f| f.reason != reason) {
            tracing::error!(lagg = %name, error = %reason, attempts, retry_in_s = wait.as_secs(), "lagg not running; the others are unaffected");
            self.push_event(LaggEvent {
                time_ms: crate::runtime::lagg::unix_ms(),
                kind: "fault",
                lagg: name.to_string(),
                port: None,
                text: format!("not running: {reason}"),
            });
        }
        self.failed.insert(
            name.to_string(),
            Failure {
                reason,
                attempts,
                next_try: std::time::Instant::now() + wait,
            },
        );
    }

    /// Makes every failed lagg due soon (a device appeared or changed; a burst of
    /// notifications makes one try).
    pub fn retry_soon(&mut self) {
        let soon = std::time::Instant::now() + std::time::Duration::from_millis(250);
        for f in self.failed.values_mut() {
            f.next_try = f.next_try.min(soon);
        }
    }

    /// Tries the failed laggs that are due; returns the names of those that started.
    pub fn retry_failed(&mut self, nl: &Netlink) -> Vec<String> {
        let now = std::time::Instant::now();
        let due: Vec<String> = self
            .failed
            .iter()
            .filter(|(_, f)| f.next_try <= now)
            .map(|(n, _)| n.clone())
            .collect();
        let mut started = Vec::new();
        for name in due {
            let Some(cfg) = self.config.laggs.iter().find(|c| c.name == name).cloned() else {
                self.failed.remove(&name);
                continue;
            };
            let owned: Vec<u32> = self.laggs.iter().flat_map(Lagg::ifindexes).collect();
            let result = Lagg::preflight_owned(nl, &cfg, &owned)
                .and_then(|()| Lagg::start(nl, &cfg, StartOptions::default()));
            match result {
                Ok(lagg) => {
                    self.failed.remove(&name);
                    self.laggs.push(lagg);
                    self.sort();
                    tracing::info!(lagg = %name, "lagg started after an earlier failure");
                    self.push_event(LaggEvent {
                        time_ms: crate::runtime::lagg::unix_ms(),
                        kind: "fault",
                        lagg: name.clone(),
                        port: None,
                        text: "running again".into(),
                    });
                    started.push(name);
                }
                Err(e) => {
                    tracing::debug!(lagg = %name, error = %e, "still cannot start");
                    self.fail(&name, e.to_string());
                }
            }
        }
        started
    }

    /// When [`retry_failed`](Self::retry_failed) is next due.
    pub fn retry_deadline(&self) -> Option<std::time::Instant> {
        self.failed.values().map(|f| f.next_try).min()
    }

    /// Restarts every lagg with a worker that died (noticed within one control tick): its
    /// ports leave the aggregation with the old lagg and come back with the new one. A lagg
    /// that cannot restart is failed and retried. Returns the laggs restarted.
    pub fn restart_dead_workers(&mut self, nl: &Netlink) -> Vec<String> {
        let dead: Vec<(usize, Vec<usize>)> = self
            .laggs
            .iter()
            .enumerate()
            .map(|(i, l)| (i, l.dead_workers()))
            .filter(|(_, d)| !d.is_empty())
            .collect();
        let mut restarted = Vec::new();
        for (i, queues) in dead.into_iter().rev() {
            let lagg = self.laggs.remove(i);
            let cfg = lagg.config().clone();
            tracing::error!(lagg = %cfg.name, queues = ?queues, "a worker died; restarting the lagg");
            self.push_event(LaggEvent {
                time_ms: crate::runtime::lagg::unix_ms(),
                kind: "fault",
                lagg: cfg.name.clone(),
                port: None,
                text: format!("worker of queue(s) {queues:?} died: restarting"),
            });
            lagg.stop(nl);
            match Lagg::start(nl, &cfg, StartOptions::default()) {
                Ok(l) => {
                    self.laggs.push(l);
                    restarted.push(cfg.name.clone());
                }
                Err(e) => self.fail(&cfg.name, e.to_string()),
            }
        }
        self.sort();
        restarted
    }

    /// Takes in members whose device appeared and lets go of those whose device went or was
    /// made anew (see [`Lagg::reconcile_members`]), for every lagg that `events` may concern
    /// (all of them with `events` empty: the safety-net re-read). A failover lagg whose master
    /// came back is restarted to take its members in their configured order.
    pub fn reconcile_members(&mut self, nl: &Netlink, events: &[LinkEvent]) {
        let mut restart = Vec::new();
        for (i, lagg) in self.laggs.iter_mut().enumerate() {
            if !events.is_empty() && !lagg.membership_may_change(events) {
                continue;
            }
            match lagg.reconcile_members(nl) {
                Ok(Reconciled::Unchanged) => {}
                Ok(Reconciled::Changed(done)) => {
                    tracing::info!(lagg = %lagg.config().name, changes = %done.join(" "), "members follow their devices");
                }
                Ok(Reconciled::Restart) => restart.push(i),
                Err(e) => {
                    tracing::error!(lagg = %lagg.config().name, error = %e, "taking in members' devices failed");
                }
            }
        }
        for i in restart.into_iter().rev() {
            let lagg = self.laggs.remove(i);
            let cfg = lagg.config().clone();
            tracing::info!(lagg = %cfg.name, "a member's device came back ahead of others in failover order: restarting the lagg to take it in its place");
            lagg.stop(nl);
            match Lagg::start(nl, &cfg, StartOptions::default()) {
                Ok(l) => self.laggs.push(l),
                Err(e) => self.fail(&cfg.name, e.to_string()),
            }
        }
        self.sort();
    }

    /// Moves the laggs' new events into the timeline (called every loop iteration).
    pub fn collect_events(&mut self) {
        let mut new = Vec::new();
        for l in &mut self.laggs {
            new.extend(l.take_events());
        }
        for e in new {
            self.push_event(e);
        }
    }

    fn push_event(&mut self, e: LaggEvent) {
        *self.event_counts.entry(e.kind).or_default() += 1;
        self.events.push_back((self.next_event, e));
        self.next_event += 1;
        while self.events.len() > EVENTS_KEPT {
            self.events.pop_front();
        }
    }

    /// Where the API token is kept (for the dump).
    pub fn set_token_file(&mut self, token_file: PathBuf) {
        self.token_file = token_file;
    }

    /// Where the HTTP listener stands (for the dump).
    pub fn set_http_state(&mut self, state: HttpState) {
        self.http = state;
    }

    /// The validated configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The running laggs.
    pub fn laggs(&self) -> &[Lagg] {
        &self.laggs
    }

    /// The running laggs, to drive.
    pub fn laggs_mut(&mut self) -> &mut [Lagg] {
        &mut self.laggs
    }

    /// Starts every runnable lagg. One that cannot start (a missing NIC, a program someone
    /// else holds) is reported failed and retried; the others run. Returns the failed ones.
    pub fn start_all(&mut self, nl: &Netlink) -> Vec<String> {
        let configs: Vec<LaggConfig> = self
            .config
            .laggs
            .iter()
            .filter(|c| runnable(c))
            .cloned()
            .collect();
        for cfg in configs {
            let owned: Vec<u32> = self.laggs.iter().flat_map(Lagg::ifindexes).collect();
            let result = Lagg::preflight_owned(nl, &cfg, &owned)
                .and_then(|()| Lagg::start(nl, &cfg, StartOptions::default()));
            match result {
                Ok(l) => self.laggs.push(l),
                Err(e) => self.fail(&cfg.name, e.to_string()),
            }
        }
        self.failed.keys().cloned().collect()
    }

    /// Stops every lagg.
    pub fn stop_all(&mut self, nl: &Netlink) {
        for l in self.laggs.drain(..) {
            l.stop(nl);
        }
    }

    /// The state of lagg `name`, or of every lagg, in configuration order.
    pub fn status(&self, name: Option<&str>) -> Result<Vec<LaggStatus>, String> {
        let mut out = Vec::new();
        for cfg in &self.config.laggs {
            if name.is_some_and(|n| n != cfg.name) {
                continue;
            }
            out.push(
                match self.laggs.iter().find(|l| l.config().name == cfg.name) {
                    Some(l) => l.status(),
                    None if !cfg.up => Lagg::configured_status(cfg, "down"),
                    None => match self.failed.get(&cfg.name) {
                        Some(f) => {
                            let mut st = Lagg::configured_status(cfg, "failed");
                            st.error = Some(f.reason.clone());
                            st
                        }
                        None => Lagg::configured_status(cfg, "no laggports"),
                    },
                },
            );
        }
        match name {
            Some(n) if out.is_empty() => Err(format!(
                "{n} does not exist: create it with xlaggctl {n} create"
            )),
            _ => Ok(out),
        }
    }

    /// Refreshes every lagg's load meter (each member's share and the imbalance index).
    pub fn measure_load(&mut self) {
        let now = std::time::Instant::now();
        for l in &mut self.laggs {
            l.measure_load(now);
        }
    }

    /// The configuration document as its file holds it.
    pub fn doc(&self) -> &ConfigDoc {
        &self.doc
    }

    /// The configuration file.
    pub fn config_path(&self) -> &std::path::Path {
        &self.path
    }

    /// Where the API token is kept.
    pub fn token_file(&self) -> &std::path::Path {
        &self.token_file
    }

    /// Where the HTTP listener stands.
    pub fn http_state(&self) -> &HttpState {
        &self.http
    }

    /// Every running lagg's counters and state.
    pub fn samples(&self) -> Vec<LaggSample> {
        self.laggs.iter().map(Lagg::sample).collect()
    }

    /// The event timeline after sequence number `since`, oldest first.
    pub fn events_since(&self, since: u64) -> impl Iterator<Item = (u64, &LaggEvent)> {
        self.events
            .iter()
            .filter(move |(seq, _)| *seq > since)
            .map(|(seq, e)| (*seq, e))
    }

    /// The newest event's sequence number (0: none yet).
    pub fn last_event(&self) -> u64 {
        self.next_event - 1
    }

    /// Events so far per kind, since start (the timeline keeps only the newest).
    pub fn event_counts(&self) -> &std::collections::BTreeMap<&'static str, u64> {
        &self.event_counts
    }

    /// Configured laggs that do not run (down, failed or without members).
    pub fn stopped(&self) -> Vec<String> {
        self.config
            .laggs
            .iter()
            .filter(|c| self.laggs.iter().all(|l| l.config().name != c.name))
            .map(|c| c.name.clone())
            .collect()
    }

    /// `ifconfig NAME WORDS...` as one change.
    pub fn ifconfig(&mut self, nl: &Netlink, name: &str, args: &[String], dry_run: bool) -> Change {
        let mut doc = self.doc.clone();
        let edit = ifconfig::parse(args).and_then(|ops| {
            if ops.is_empty() {
                return Err(format!("no options given for {name}: see xlaggctl --help"));
            }
            ifconfig::apply(&mut doc, name, &ops)
        });
        match edit {
            Err(e) => Err(vec![format!("{name}: {e}")]),
            Ok(()) => self.change(nl, doc, dry_run, Some(name)),
        }
    }

    /// The web form's lagg (`create`: it must be new; otherwise it must exist), with its
    /// free-text options as ifconfig words.
    pub fn put_lagg(
        &mut self,
        nl: &Netlink,
        spec: crate::config::LaggSpec,
        create: bool,
        options: &[String],
        dry_run: bool,
    ) -> Change {
        let mut doc = self.doc.clone();
        let name = spec.name.clone();
        match doc.laggs.iter_mut().find(|l| l.name == name) {
            Some(_) if create => return Err(vec![format!("{name}.name: {name} already exists")]),
            Some(existing) => *existing = spec,
            None if !create => return Err(vec![format!("{name}.name: {name} does not exist")]),
            None => doc.laggs.push(spec),
        }
        if let Err(e) =
            ifconfig::parse(options).and_then(|ops| ifconfig::apply(&mut doc, &name, &ops))
        {
            return Err(vec![format!("{name}.options: {e}")]);
        }
        self.change(nl, doc, dry_run, Some(&name))
    }

    /// Removes lagg `name`.
    pub fn delete_lagg(&mut self, nl: &Netlink, name: &str, dry_run: bool) -> Change {
        let mut doc = self.doc.clone();
        ifconfig::apply(&mut doc, name, &[ifconfig::Op::Destroy]).map_err(|e| vec![e])?;
        self.change(nl, doc, dry_run, None)
    }

    /// Replaces the whole configuration with `toml`.
    pub fn replace(&mut self, nl: &Netlink, toml: &str, dry_run: bool) -> Change {
        let doc = ConfigDoc::from_toml(toml).map_err(|e| e.problems)?;
        self.change(nl, doc, dry_run, None)
    }

    /// The host's interfaces a lagg could use (not loopback, not a lagg, not a host-mode
    /// peer), each with the lagg that uses it, if any.
    pub fn interfaces(&self, links: &[crate::sys::netdev::LinkState]) -> Vec<Interface> {
        let used_by = |name: &str| {
            self.config.laggs.iter().find_map(|l| {
                let forward =
                    matches!(&l.upper, crate::config::Upper::Forward { port } if port == name);
                (l.ports.iter().any(|p| p == name) || forward).then(|| l.name.clone())
            })
        };
        links
            .iter()
            .filter(|l| {
                l.name != "lo" && !l.name.starts_with(crate::runtime::lagg::HOST_PEER_PREFIX)
            })
            .filter(|l| self.config.laggs.iter().all(|c| c.name != l.name))
            .map(|l| Interface {
                name: l.name.clone(),
                mac: crate::sys::netdev::format_mac(l.mac),
                mtu: l.mtu,
                up: l.admin_up && l.carrier,
                kind: l.kind.clone(),
                lagg: used_by(&l.name),
            })
            .collect()
    }

    /// `explain`: where a flow (given as `field=value` pairs) of a running lagg leaves, and
    /// why.
    pub fn explain(&self, name: &str, flow: &[(String, String)]) -> Result<Explanation, String> {
        let flow = xlagg_dataplane::explain::Flow::parse(
            flow.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        )
        .map_err(|e| format!("{name} explain: {e}"))?;
        match self.laggs.iter().find(|l| l.config().name == name) {
            Some(l) => l.explain(&flow).map_err(|e| format!("{name} explain: {e}")),
            None if self.config.laggs.iter().any(|c| c.name == name) => Err(format!(
                "{name} is not running, so no flow leaves on it: see its state with xlaggctl {name}"
            )),
            None => Err(format!(
                "no lagg named {name}: create it first (xlaggctl {name} create)"
            )),
        }
    }

    /// Fault injection (tests only): panics one worker of a running lagg.
    ///
    /// # Errors
    /// Fault injection off, no such lagg running, no such queue.
    #[cfg(feature = "testing")]
    pub fn crash_worker(&self, name: &str, queue: usize) -> Result<(), String> {
        if !self.fault_injection {
            return Err("fault injection is off (xlaggd --fault-injection, for tests)".into());
        }
        match self.laggs.iter().find(|l| l.config().name == name) {
            None => Err(format!("{name} is not running")),
            Some(l) => l.crash_worker(queue),
        }
    }

    /// Carries out a change to `doc` (see the module documentation).
    ///
    /// `focus`: the lagg the change was made to; a conflict with another lagg (a port in
    /// both) is then reported as a problem of this one.
    fn change(
        &mut self,
        nl: &Netlink,
        doc: ConfigDoc,
        dry_run: bool,
        focus: Option<&str>,
    ) -> Change {
        if let (Err(_), Some(name)) = (doc.validate(), focus) {
            // The validator reports a conflict at the later lagg in file order: put the
            // edited one last to word the messages for whoever edited it.
            let mut reordered = doc.clone();
            reordered.laggs.sort_by_key(|l| l.name == name);
            reordered.validate().map_err(|e| e.problems)?;
        }
        self.try_change(nl, doc, dry_run)
    }

    /// Validates, checks against the devices, applies and saves `doc`, or undoes what it did:
    /// the steps in order, each its own function.
    fn try_change(
        &mut self,
        nl: &Netlink,
        doc: ConfigDoc,
        dry_run: bool,
    ) -> Result<Vec<String>, Vec<String>> {
        if doc.daemon != self.doc.daemon {
            return Err(vec![
                "daemon: [daemon] settings are read at start only; change them in the file and restart xlaggd"
                    .into(),
            ]);
        }
        let config = doc.validate().map_err(|e| e.problems)?;
        let changed = changed_laggs(&self.config, &config);
        let to_start: Vec<LaggConfig> = config
            .laggs
            .iter()
            .filter(|l| changed.contains(&l.name) && runnable(l))
            .cloned()
            .collect();
        let owned: Vec<u32> = self.laggs.iter().flat_map(Lagg::ifindexes).collect();
        for cfg in &to_start {
            Lagg::preflight_owned(nl, cfg, &owned).map_err(|e| vec![e.to_string()])?;
        }
        if dry_run {
            return Ok(changed);
        }
        self.collect_events();
        let mut applied = Applied::default();
        let to_start = self.change_in_place(nl, to_start, &mut applied);
        self.stop_changed(nl, &changed, &mut applied);
        let mut failure = None;
        for cfg in &to_start {
            match Lagg::start(nl, cfg, StartOptions::default()) {
                Ok(l) => applied.started.push(l),
                Err(e) => {
                    failure = Some(e.to_string());
                    break;
                }
            }
        }
        if failure.is_none() {
            failure = save(&self.path, &doc).err();
        }
        if let Some(e) = failure {
            self.undo(nl, applied);
            return Err(vec![e]);
        }
        self.laggs.extend(applied.started);
        self.commit(doc, config, &changed);
        Ok(changed)
    }

    /// Member-list, address, description, delay and notification changes of running laggs
    /// apply in place (hot membership: flows on the other members are not touched); returns
    /// the laggs still to start (anything else, or a failure, restarts the lagg).
    fn change_in_place(
        &mut self,
        nl: &Netlink,
        to_start: Vec<LaggConfig>,
        applied: &mut Applied,
    ) -> Vec<LaggConfig> {
        for lagg in &mut self.laggs {
            let Some(new) = to_start.iter().find(|c| c.name == lagg.config().name) else {
                continue;
            };
            if !lagg.can_change_ports_in_place(new) {
                continue;
            }
            let old = lagg.config().clone();
            match lagg.set_ports(nl, new) {
                Ok(what) => {
                    tracing::info!(lagg = %new.name, changes = %what.join(" "), "changed in place");
                    applied.in_place.push(old);
                }
                Err(e) => {
                    tracing::warn!(lagg = %new.name, error = %e, "members could not change in place; restarting the lagg");
                }
            }
        }
        to_start
            .into_iter()
            .filter(|c| applied.in_place.iter().all(|o| o.name != c.name))
            .collect()
    }

    /// Stops the running laggs the change touches and could not change in place.
    fn stop_changed(&mut self, nl: &Netlink, changed: &[String], applied: &mut Applied) {
        let mut keep = Vec::new();
        for lagg in self.laggs.drain(..) {
            let name = &lagg.config().name;
            if changed.contains(name) && applied.in_place.iter().all(|o| &o.name != name) {
                applied.stopped.push(lagg.config().clone());
                lagg.stop(nl);
            } else {
                keep.push(lagg);
            }
        }
        self.laggs = keep;
    }

    /// Puts the runtime back as it was before a change that failed part way.
    fn undo(&mut self, nl: &Netlink, applied: Applied) {
        for l in applied.started {
            l.stop(nl);
        }
        for old in &applied.in_place {
            if let Some(lagg) = self.laggs.iter_mut().find(|l| l.config().name == old.name) {
                if let Err(e) = lagg.set_ports(nl, old) {
                    tracing::error!(lagg = %old.name, error = %e, "could not restore the members after a refused change");
                }
            }
        }
        for cfg in &applied.stopped {
            match Lagg::start(nl, cfg, StartOptions::default()) {
                Ok(l) => self.laggs.push(l),
                Err(e) => {
                    // Not left silently down: reported as failed and retried like a lagg
                    // that could not start.
                    tracing::error!(lagg = %cfg.name, error = %e, "could not restart after a refused change; retried");
                    self.fail(&cfg.name, format!("restart after a refused change: {e}"));
                }
            }
        }
        self.sort();
    }

    /// Makes an applied and saved change the daemon's configuration.
    fn commit(&mut self, doc: ConfigDoc, config: Config, changed: &[String]) {
        for name in changed {
            self.failed.remove(name);
        }
        self.doc = doc;
        self.config = config;
        self.sort();
        for name in changed {
            tracing::info!(lagg = %name, "configuration changed and applied");
            self.push_event(LaggEvent {
                time_ms: crate::runtime::lagg::unix_ms(),
                kind: "config",
                lagg: name.clone(),
                port: None,
                text: "configuration changed and applied".into(),
            });
        }
    }

    /// Keeps the running laggs in configuration order.
    fn sort(&mut self) {
        let order: Vec<String> = self.config.laggs.iter().map(|l| l.name.clone()).collect();
        self.laggs
            .sort_by_key(|l| order.iter().position(|n| *n == l.config().name));
    }
}

/// What a change did so far, to undo it if a later step fails.
#[derive(Debug, Default)]
struct Applied {
    /// Running laggs changed in place: their configuration before.
    in_place: Vec<LaggConfig>,
    /// Laggs stopped to restart with their new configuration: the old one.
    stopped: Vec<LaggConfig>,
    /// Laggs started with their new configuration.
    started: Vec<Lagg>,
}

/// The laggs whose configuration differs between `old` and `new` (added, removed or
/// changed), in `old`'s order then `new`'s.
fn changed_laggs(old: &Config, new: &Config) -> Vec<String> {
    fn find<'a>(laggs: &'a [LaggConfig], name: &str) -> Option<&'a LaggConfig> {
        laggs.iter().find(|l| l.name == name)
    }
    let mut changed: Vec<String> = Vec::new();
    for l in old.laggs.iter().chain(&new.laggs) {
        if find(&old.laggs, &l.name) != find(&new.laggs, &l.name) && !changed.contains(&l.name) {
            changed.push(l.name.clone());
        }
    }
    changed
}

/// Replaces the configuration file; a change that cannot be saved is undone.
fn save(path: &std::path::Path, doc: &ConfigDoc) -> Result<(), String> {
    match store::write_atomic(path, &doc.to_toml()) {
        Ok(store::Written::Durable) => Ok(()),
        Ok(store::Written::NotDurable(e)) => {
            tracing::warn!(error = %e, "the change is saved and applied, but not yet safe from a power loss");
            Ok(())
        }
        Err(e) => Err(format!("the change was not saved ({e}); it was undone")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Config {
        match ConfigDoc::from_toml(text).map(|d| d.validate()) {
            Ok(Ok(c)) => c,
            other => panic!("test configuration refused: {other:?}"),
        }
    }

    #[test]
    fn only_the_laggs_that_differ_are_changed() {
        let old = config(
            "[[lagg]]\nname = \"lagg0\"\nlaggports = [\"em0\"]\n\n[[lagg]]\nname = \"lagg1\"\nlaggports = [\"em1\"]\n",
        );
        let new = config(
            "[[lagg]]\nname = \"lagg0\"\nlaggports = [\"em0\"]\n\n[[lagg]]\nname = \"lagg1\"\nlaggports = [\"em1\", \"em2\"]\n\n[[lagg]]\nname = \"lagg2\"\nlaggports = [\"em3\"]\n",
        );
        assert_eq!(changed_laggs(&old, &new), ["lagg1", "lagg2"]);
        assert_eq!(changed_laggs(&new, &old), ["lagg1", "lagg2"]);
        assert!(changed_laggs(&old, &old).is_empty());
        let removed = config("[[lagg]]\nname = \"lagg1\"\nlaggports = [\"em1\"]\n");
        assert_eq!(changed_laggs(&old, &removed), ["lagg0"]);
    }
}
