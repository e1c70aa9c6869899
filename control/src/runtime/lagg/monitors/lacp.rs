//! LACP of a lagg: the sans-IO core and one slow-protocol socket per member.

use std::sync::Arc;
use std::time::{Duration, Instant};

use xlagg_sys::afpacket::{PacketSocket, ETH_P_SLOW};

use super::keepalive::Keepalive;
use super::{put, read_frames};
use crate::config::LaggConfig;
use crate::proto::lacp::pdu::{self, LacpState, PortInfo, SlowPdu};
use crate::proto::lacp::{self, Lacp, LacpConfig, PortConfig};
use crate::proto::time::Time;
use crate::runtime::lagg::{LaggError, Port};
use crate::sys::netdev::format_mac;

/// What the mux decided for one member.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct MuxDecision {
    /// Member slot.
    pub(crate) port: usize,
    /// Frames received on it reach the lagg.
    pub(crate) collecting: bool,
    /// The distribution may send on it.
    pub(crate) distributing: bool,
}

/// The LACP side of a lagg.
#[derive(Debug)]
pub(crate) struct LacpMonitor {
    lagg: String,
    core: Lacp,
    sockets: Vec<Option<Arc<PacketSocket>>>,
    /// Sends each port's last LACPDU again while the control thread is busy elsewhere.
    keepalive: Keepalive,
    epoch: Instant,
}

/// The configured priority of member `name`.
fn priority_of(cfg: &LaggConfig, name: &str) -> u16 {
    let o = &cfg.lacp;
    o.port_priorities
        .iter()
        .find(|(n, _)| n == name)
        .map_or(o.port_priority, |(_, v)| *v)
}

/// Member `slot`'s LACP port: numbers start at 1 (some switches reject port 0).
fn port_config(cfg: &LaggConfig, slot: usize, port: &Port) -> PortConfig {
    PortConfig {
        number: slot as u16 + 1,
        priority: priority_of(cfg, &port.name),
        mac: port.mac,
    }
}

impl LacpMonitor {
    /// Opens a slow-protocol socket on every member and starts the core on the lagg's clock
    /// (`epoch`).
    ///
    /// # Errors
    /// A socket that cannot be opened.
    pub(crate) fn start(
        cfg: &LaggConfig,
        members: &[Port],
        epoch: Instant,
    ) -> Result<Self, LaggError> {
        let o = &cfg.lacp;
        let number: u16 = cfg.name.trim_start_matches("lagg").parse().unwrap_or(0);
        let lacp_cfg = LacpConfig {
            system_priority: o.system_priority,
            system: o.system_mac.unwrap_or(members[0].mac),
            key: o.key.unwrap_or(number.saturating_add(1)),
            active: o.active,
            fast_timeout: o.fast_timeout,
            strict: o.strict,
            fallback: o.fallback,
            min_links: o.min_links,
            mux: o.mux,
            selection: o.selection,
        };
        let mut sockets = Vec::new();
        let mut ports = Vec::new();
        for (i, p) in members.iter().enumerate() {
            let socket = super::control_socket(p.ifindex, ETH_P_SLOW).map_err(|source| {
                LaggError::PacketSocket {
                    lagg: cfg.name.clone(),
                    port: p.name.clone(),
                    what: "LACP",
                    source,
                }
            })?;
            sockets.push(Some(Arc::new(socket)));
            ports.push((p.name.clone(), port_config(cfg, i, p)));
        }
        let core = Lacp::new(lacp_cfg, &ports, Time::from_duration(epoch.elapsed()));
        tracing::info!(
            lagg = %cfg.name,
            system = %format_mac(lacp_cfg.system),
            key = lacp_cfg.key,
            active = lacp_cfg.active,
            fast_timeout = lacp_cfg.fast_timeout,
            strict = lacp_cfg.strict,
            "LACP started"
        );
        Ok(Self {
            lagg: cfg.name.clone(),
            core,
            sockets,
            keepalive: Keepalive::start(&format!("{}-lacp", cfg.name)),
            epoch,
        })
    }

    /// `now` on the lagg's clock.
    fn time(&self, now: Instant) -> Time {
        Time::at(self.epoch, now)
    }

    /// The open slow-protocol sockets with their member slot.
    pub(crate) fn sockets(&self) -> impl Iterator<Item = (usize, &PacketSocket)> {
        super::open(&self.sockets)
    }

    /// Reads the pending frames of member `port` into the core, each at the time it is read.
    pub(crate) fn handle_frames(&mut self, port: usize) {
        if let Some(socket) = self.sockets.get(port).and_then(Option::as_ref) {
            let (core, epoch) = (&mut self.core, self.epoch);
            read_frames(socket, &self.lagg, "slow-protocol", |f| {
                core.handle_frame(Time::from_duration(epoch.elapsed()), port, f);
            });
        }
    }

    /// Runs the timers due by `now`.
    pub(crate) fn tick(&mut self, now: Instant) {
        let time = self.time(now);
        self.core.handle_timeout(time);
    }

    /// When [`tick`](Self::tick) is due next.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        let t = self.core.poll_timeout()?;
        t.instant(self.epoch)
    }

    /// Member `port` became usable or unusable (`speed` in Mb/s, 0 when unknown).
    pub(crate) fn link(&mut self, port: usize, usable: bool, speed: u32, now: Instant) {
        let time = self.time(now);
        self.core.handle_link(time, port, usable, speed);
    }

    /// Sends what the core wants sent and returns its decisions since the last call.
    pub(crate) fn drain(&mut self) -> Vec<MuxDecision> {
        while let Some(t) = self.core.poll_transmit() {
            if let Some(socket) = self.sockets.get(t.port).and_then(Option::as_ref) {
                if let Err(e) = socket.send(&t.frame) {
                    tracing::debug!(lagg = %self.lagg, port = t.port, error = %e, "LACPDU not sent");
                }
                // An LACPDU is periodic: at the rate the partner asked for (802.1AX
                // 6.4.13), fast 1 s or slow 30 s. Marker PDUs are not.
                if let Ok(SlowPdu::Lacp(pdu)) = pdu::parse(&t.frame) {
                    let every = if pdu.partner.state.has(LacpState::TIMEOUT) {
                        Duration::from_secs(1)
                    } else {
                        Duration::from_secs(30)
                    };
                    self.keepalive.sent(t.port, socket, &t.frame, every);
                }
            }
        }
        let mut decisions = Vec::new();
        while let Some(event) = self.core.poll_event() {
            match event {
                lacp::LacpEvent::LacpState {
                    port,
                    collecting,
                    distributing,
                } => decisions.push(MuxDecision {
                    port,
                    collecting,
                    distributing,
                }),
            }
        }
        decisions
    }

    /// Member `slot` joined at run time as `port` (configuration `cfg`).
    pub(crate) fn join(&mut self, cfg: &LaggConfig, slot: usize, port: &Port, now: Instant) {
        let now = self.time(now);
        let socket = super::control_socket(port.ifindex, ETH_P_SLOW)
            .ok()
            .map(Arc::new);
        put(&mut self.sockets, slot, socket);
        self.core
            .add_port(now, slot, &port.name, port_config(cfg, slot, port));
    }

    /// Member `slot` left at `now`: its port goes down and its socket closes.
    pub(crate) fn leave(&mut self, slot: usize, now: Instant) {
        self.link(slot, false, 0, now);
        self.keepalive.clear(slot);
        if let Some(s) = self.sockets.get_mut(slot) {
            *s = None;
        }
    }

    /// Every port's state and counters, by slot.
    pub(crate) fn status(&self) -> Vec<lacp::LacpPortStatus> {
        self.core.status()
    }

    /// The port forwarding alone in LACP fallback, if the lagg is in it.
    pub(crate) fn fallback_port(&self) -> Option<usize> {
        self.core.fallback_port()
    }

    /// What is wrong with each port's aggregation at `now`.
    pub(crate) fn alarms(&self, now: Instant) -> Vec<lacp::Alarm> {
        self.core.alarms(self.time(now))
    }

    /// Ports that see another partner than the others.
    pub(crate) fn partner_mismatch(&self) -> Vec<(String, PortInfo)> {
        self.core.partner_mismatch()
    }
}
