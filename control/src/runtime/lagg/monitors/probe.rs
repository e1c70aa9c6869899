//! The ARP/NS probe monitor of a lagg: probes sent from every member with a MAC of its own
//! (set in the member's XDP program, so replies reach the control path), a member valid while
//! a reply to its probes arrived within the window.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use xlagg_sys::afpacket::PacketSocket;

use super::{put, read_frames};
use crate::config::ArpOptions;
use crate::runtime::lagg::{LaggError, Port};

/// The probe monitor of a lagg.
#[derive(Debug)]
pub(crate) struct ProbeMonitor {
    lagg: String,
    targets: Vec<IpAddr>,
    interval: Duration,
    window: Duration,
    sockets: Vec<Option<Arc<PacketSocket>>>,
    probe_macs: Vec<[u8; 6]>,
    last_reply: Vec<Option<Instant>>,
    next_round: Instant,
}

/// Gives `port` its probe MAC and a socket that reads the frames the port receives for it
/// (filtered in the kernel: on the tc host path every data frame passes the port's taps).
fn open(lagg: &str, port: &mut Port) -> Result<([u8; 6], PacketSocket), LaggError> {
    let mac = crate::proto::probe::probe_mac(port.mac);
    let socket = PacketSocket::bind_to_destination(port.ifindex, mac)
        .map(super::with_room)
        .map_err(|source| LaggError::PacketSocket {
            lagg: lagg.to_string(),
            port: port.name.clone(),
            what: "ARP/NS probe monitor",
            source,
        })?;
    if let Some(program) = port.program.as_mut() {
        program.set_probe_mac(mac)?;
    }
    Ok((mac, socket))
}

impl ProbeMonitor {
    /// Starts probing from every member; none is valid until a reply comes.
    ///
    /// # Errors
    /// A socket or map failure.
    pub(crate) fn start(
        lagg: &str,
        o: &ArpOptions,
        members: &mut [Port],
    ) -> Result<Self, LaggError> {
        let mut sockets = Vec::new();
        let mut probe_macs = Vec::new();
        for p in members.iter_mut() {
            let (mac, socket) = open(lagg, p)?;
            sockets.push(Some(Arc::new(socket)));
            probe_macs.push(mac);
        }
        let interval = Duration::from_millis(o.interval_ms);
        tracing::info!(lagg, targets = ?o.targets, interval_ms = o.interval_ms, missed_max = o.missed_max, "ARP/NS probe monitor started; members wait for a reply");
        Ok(Self {
            lagg: lagg.to_string(),
            targets: o.targets.clone(),
            interval,
            window: interval * o.missed_max,
            last_reply: vec![None; sockets.len()],
            sockets,
            probe_macs,
            next_round: Instant::now(),
        })
    }

    /// The open sockets with their member slot.
    pub(crate) fn sockets(&self) -> impl Iterator<Item = (usize, &PacketSocket)> {
        super::open(&self.sockets)
    }

    /// Sends a round of probes from every member when one is due (`members` by slot, for the
    /// log).
    pub(crate) fn tick(&mut self, now: Instant, members: &[Port]) {
        if now < self.next_round {
            return;
        }
        self.next_round = now + self.interval;
        for (i, socket) in self.sockets.iter().enumerate() {
            let Some(socket) = socket else { continue };
            for frame in crate::proto::probe::probes(self.probe_macs[i], &self.targets) {
                if let Err(e) = socket.send(&frame) {
                    tracing::debug!(lagg = %self.lagg, port = %members[i].name, error = %e, "probe not sent");
                }
            }
        }
    }

    /// Reads the pending frames of member `port`'s socket: a reply to any member's probe
    /// validates that member (the probe MAC says where the probe left), as of when it is read.
    pub(crate) fn handle_frames(&mut self, port: usize) {
        if let Some(Some(socket)) = self.sockets.get(port) {
            let (macs, targets, last) = (&self.probe_macs, &self.targets, &mut self.last_reply);
            read_frames(socket, &self.lagg, "probe monitor", |f| {
                let now = Instant::now();
                for (m, mac) in macs.iter().enumerate() {
                    if crate::proto::probe::reply_from(f, *mac, targets).is_some() {
                        last[m] = Some(now);
                    }
                }
            });
        }
    }

    /// Whether member `i` got a reply within the window before `now`.
    pub(crate) fn valid(&self, i: usize, now: Instant) -> bool {
        self.last_reply
            .get(i)
            .copied()
            .flatten()
            .is_some_and(|t| now.saturating_duration_since(t) <= self.window)
    }

    /// Members the monitor judges (every slot it has had).
    pub(crate) fn slots(&self) -> usize {
        self.last_reply.len()
    }

    /// How long a member stays valid after a reply.
    pub(crate) fn window(&self) -> Duration {
        self.window
    }

    /// When [`tick`](Self::tick) is due: the next round, or the moment a member's last reply
    /// leaves the window.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        let expiries = self
            .last_reply
            .iter()
            .flatten()
            .map(|t| *t + self.window + Duration::from_millis(1));
        expiries.chain([self.next_round]).min()
    }

    /// Member `slot` joined at run time as `port`.
    ///
    /// # Errors
    /// Its socket cannot be opened, or the probe MAC cannot be set in its program.
    pub(crate) fn join(&mut self, slot: usize, port: &mut Port) -> Result<(), LaggError> {
        let (mac, socket) = open(&self.lagg, port)?;
        put(&mut self.sockets, slot, Some(Arc::new(socket)));
        put(&mut self.probe_macs, slot, mac);
        put(&mut self.last_reply, slot, None);
        Ok(())
    }

    /// Member `slot` left: its socket closes.
    pub(crate) fn leave(&mut self, slot: usize) {
        if let Some(s) = self.sockets.get_mut(slot) {
            *s = None;
        }
    }
}
