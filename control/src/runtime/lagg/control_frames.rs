//! The lagg's control frames: the sockets LACPDUs, micro-BFD and probe replies arrive on,
//! the monitors' verdicts they lead to, and LACP's periodic step and alarms.

use super::*;

impl Lagg {
    /// The control-path sockets to wait on (LACP, micro-BFD, probe replies); hand a readable
    /// one to [`handle_control_frames`](Self::handle_control_frames).
    pub fn control_sockets(&self) -> Vec<(ControlSocket, &PacketSocket)> {
        self.monitors
            .all()
            .flat_map(|m| m.control_sockets())
            .collect()
    }

    /// Reads every pending frame of a control socket: LACP into the LACP core, micro-BFD
    /// into its session, probe replies into the probe monitor; applies what they decide at
    /// `now` (each frame carries the time it was read).
    ///
    /// # Errors
    /// A map failure while applying the result.
    pub fn handle_control_frames(
        &mut self,
        nl: &Netlink,
        socket: ControlSocket,
        now: Instant,
    ) -> Result<(), LaggError> {
        match socket {
            ControlSocket::Lacp(port) => {
                if let Some(lacp) = self.monitors.lacp.as_mut() {
                    lacp.handle_frames(port);
                }
                self.drain_lacp(now)
            }
            ControlSocket::Bfd(port) => {
                let changed = self
                    .monitors
                    .bfd
                    .as_mut()
                    .map(|b| b.handle_frames(port))
                    .unwrap_or_default();
                self.apply_bfd(nl, &changed, now)
            }
            ControlSocket::Probe(port) => {
                if let Some(probe) = self.monitors.probe.as_mut() {
                    probe.handle_frames(port);
                }
                self.judge_probes(nl, now)
            }
        }
    }

    /// Turns the state of the micro-BFD sessions that changed into their members' verdicts.
    pub(super) fn apply_bfd(
        &mut self,
        nl: &Netlink,
        changed: &[usize],
        now: Instant,
    ) -> Result<(), LaggError> {
        let Some(bfd) = self.monitors.bfd.as_ref() else {
            return Ok(());
        };
        let mut flipped = Vec::new();
        let mut notes = Vec::new();
        for &i in changed {
            let Some((state, _)) = bfd.status(i) else {
                continue;
            };
            if self.set.set_verdict(i, Verdict::Bfd, bfd.is_up(i)) {
                flipped.push(i);
            }
            notes.push((
                self.members[i].name.clone(),
                format!("micro-BFD {}", state.name()),
            ));
        }
        for (port, text) in notes {
            tracing::info!(lagg = %self.cfg.name, port = %port, "{text}");
            self.event("bfd", Some(port), text);
        }
        self.after_usability_change(nl, &flipped, now)
    }

    /// Turns the probe monitor's judgement at `now` into the members' verdicts.
    pub(super) fn judge_probes(&mut self, nl: &Netlink, now: Instant) -> Result<(), LaggError> {
        let Some(probe) = self.monitors.probe.as_ref() else {
            return Ok(());
        };
        let mut flipped = Vec::new();
        let mut notes = Vec::new();
        for i in 0..probe.slots() {
            if self.set.member(i).retired {
                continue;
            }
            let ok = probe.valid(i, now);
            if self.set.set_verdict(i, Verdict::Probe, ok) {
                flipped.push(i);
                let text = if ok {
                    "probe monitor: replies arrive".to_string()
                } else {
                    format!(
                        "probe monitor: no reply for {} ms",
                        probe.window().as_millis()
                    )
                };
                notes.push((self.members[i].name.clone(), text));
            }
        }
        for (port, text) in notes {
            tracing::info!(lagg = %self.cfg.name, port = %port, "{text}");
            self.event("probe", Some(port), text);
        }
        self.after_usability_change(nl, &flipped, now)
    }

    /// Runs LACP timers due by `now`.
    ///
    /// # Errors
    /// A map failure while applying the result.
    pub fn lacp_tick(&mut self, now: Instant) -> Result<(), LaggError> {
        if let Some(lacp) = self.monitors.lacp.as_mut() {
            lacp.tick(now);
        }
        self.drain_lacp(now)
    }

    /// Sends what LACP wants sent and applies its mux decisions to the member set.
    pub(super) fn drain_lacp(&mut self, now: Instant) -> Result<(), LaggError> {
        let Some(lacp) = self.monitors.lacp.as_mut() else {
            return Ok(());
        };
        let decisions = lacp.drain();
        for d in &decisions {
            let Some(name) = self.members.get(d.port).map(|p| p.name.clone()) else {
                continue;
            };
            self.set.set_lacp(d.port, d.collecting, d.distributing);
            let text = format!(
                "lacp {}{}",
                if d.collecting {
                    "collecting"
                } else {
                    "not collecting"
                },
                if d.distributing { ", distributing" } else { "" }
            );
            self.event("lacp", Some(name), text);
        }
        if !decisions.is_empty() {
            self.publish(&[], false, now)?;
        }
        self.note_lacp_alarms(now);
        Ok(())
    }

    /// Tells of LACP alarms raised and cleared since the last look (log and timeline).
    pub(super) fn note_lacp_alarms(&mut self, now: Instant) {
        let Some((alarms, fallback)) = self
            .monitors
            .lacp
            .as_ref()
            .map(|l| (l.alarms(now), l.fallback_port()))
        else {
            return;
        };
        let raised: Vec<(usize, lacp::AlarmKind)> =
            alarms.iter().map(|a| (a.port, a.kind)).collect();
        for a in &alarms {
            if !self.monitors.lacp_alarms.contains(&(a.port, a.kind)) {
                let port = self.members.get(a.port).map(|p| p.name.clone());
                tracing::warn!(lagg = %self.cfg.name, port = ?port, alarm = a.kind.name(), "{}", a.text);
                self.event("lacp", port, format!("ALARM {}: {}", a.kind.name(), a.text));
            }
        }
        let cleared: Vec<(usize, lacp::AlarmKind)> = self
            .monitors
            .lacp_alarms
            .iter()
            .filter(|k| !raised.contains(k))
            .copied()
            .collect();
        for (port, kind) in cleared {
            let name = self.members.get(port).map(|p| p.name.clone());
            tracing::info!(lagg = %self.cfg.name, port = ?name, alarm = kind.name(), "LACP alarm cleared");
            self.event("lacp", name, format!("alarm cleared: {}", kind.name()));
        }
        self.monitors.lacp_alarms = raised;
        if fallback != self.monitors.lacp_fallback {
            let name = |i: usize| self.members.get(i).map(|p| p.name.clone());
            let (port, text) = match (self.monitors.lacp_fallback, fallback) {
                (None, Some(f)) => (
                    name(f),
                    "lacp fallback: no LACPDU from the partner on any port; this port forwards alone until LACP comes up".to_string(),
                ),
                (Some(_), Some(f)) => (name(f), "lacp fallback moves to this port".to_string()),
                (Some(was), None) => (
                    name(was),
                    "lacp fallback ended: the partner speaks LACP, or no port is up".to_string(),
                ),
                (None, None) => (None, String::new()),
            };
            tracing::warn!(lagg = %self.cfg.name, port = ?port, "{text}");
            self.event("lacp", port, text);
            self.monitors.lacp_fallback = fallback;
        }
    }
}
