//! Micro-BFD of a lagg (RFC 7130): a session and an IPv4 packet socket per member.

use std::sync::Arc;
use std::time::{Duration, Instant};

use xlagg_sys::afpacket::PacketSocket;

use super::keepalive::Keepalive;
use super::{put, read_frames};
use crate::config::{BfdOptions, LaggConfig, Upper};
use crate::proto::bfd;
use crate::proto::time::Time;
use crate::runtime::lagg::{unix_ms, LaggError, Port};

/// EtherType of the packet sockets.
const ETH_P_IP: u16 = 0x0800;

/// A session's own discriminator: random (RFC 5880 6.8.1 asks for one that is hard to
/// guess: it is what keeps a blind stranger from taking an Up session down). Nonzero.
fn random_discriminator() -> u32 {
    use std::io::Read;
    let mut b = [0u8; 4];
    let random = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut b));
    if random.is_err() {
        // No /dev/urandom: the time and the process, as good as it gets here.
        b = ((unix_ms() as u32) ^ (std::process::id() << 16))
            .wrapping_mul(2_654_435_761)
            .to_ne_bytes();
    }
    u32::from_ne_bytes(b) | 1
}

/// The micro-BFD sessions of a lagg.
#[derive(Debug)]
pub(crate) struct BfdMonitor {
    lagg: String,
    sessions: Vec<bfd::Session>,
    /// Without a configured peer: the address each session took its peer from (the first
    /// sender) and when it last heard from it. Packets from anyone else are discarded until
    /// that peer has been silent for a detection time (a peer that went away is forgotten);
    /// so a stranger cannot take a session over in its handshake unless it spoke first.
    peers: Vec<Option<([u8; 4], Time)>>,
    sockets: Vec<Option<Arc<PacketSocket>>>,
    /// Sends the sessions' last packets again while the control thread is busy elsewhere.
    keepalive: Keepalive,
    epoch: Instant,
    src_ip: [u8; 4],
    dst_ip: [u8; 4],
}

impl BfdMonitor {
    /// Opens a session on every member, on the lagg's clock (`epoch`).
    ///
    /// # Errors
    /// A socket that cannot be opened.
    pub(crate) fn start(
        cfg: &LaggConfig,
        o: BfdOptions,
        members: &[Port],
        epoch: Instant,
    ) -> Result<Self, LaggError> {
        let session_cfg = bfd::SessionConfig {
            interval: Duration::from_millis(o.interval_ms),
            multiplier: o.multiplier,
        };
        let mut sessions = Vec::new();
        let mut sockets = Vec::new();
        for p in members {
            let socket = super::control_socket(p.ifindex, ETH_P_IP).map_err(|source| {
                LaggError::PacketSocket {
                    lagg: cfg.name.clone(),
                    port: p.name.clone(),
                    what: "micro-BFD",
                    source,
                }
            })?;
            sockets.push(Some(Arc::new(socket)));
            sessions.push(bfd::Session::new(
                session_cfg,
                random_discriminator(),
                Time::ZERO,
            ));
        }
        let src_ip = match &cfg.upper {
            Upper::Host { addresses } => addresses.iter().find_map(|(a, _)| match a {
                std::net::IpAddr::V4(v4) => Some(v4.octets()),
                std::net::IpAddr::V6(_) => None,
            }),
            Upper::Forward { .. } => None,
        }
        .unwrap_or([0; 4]);
        tracing::info!(lagg = %cfg.name, interval_ms = o.interval_ms, multiplier = o.multiplier, "micro-BFD started; members wait for their sessions");
        if o.peer.octets() == bfd::ANY_PEER {
            tracing::warn!(lagg = %cfg.name, "micro-BFD without bfd_peer takes each session's peer from the first sender: set bfd_peer where the member segments are not trusted");
        }
        Ok(Self {
            lagg: cfg.name.clone(),
            peers: vec![None; sessions.len()],
            sessions,
            sockets,
            keepalive: Keepalive::start(&format!("{}-bfd", cfg.name)),
            epoch,
            src_ip,
            dst_ip: o.peer.octets(),
        })
    }

    /// The open sockets with their member slot.
    pub(crate) fn sockets(&self) -> impl Iterator<Item = (usize, &PacketSocket)> {
        super::open(&self.sockets)
    }

    /// Sends control packet `packet` of member `i` (MAC `mac`) on its link, and leaves it with
    /// the keepalive as the session's periodic packet.
    fn send(&self, i: usize, mac: [u8; 6], packet: &[u8; bfd::PACKET_LEN]) -> std::io::Result<()> {
        let frame = bfd::frame(mac, self.src_ip, self.dst_ip, 49152 + i as u16, packet);
        let Some(socket) = self.sockets.get(i).and_then(Option::as_ref) else {
            return Ok(());
        };
        if let Some(session) = self.sessions.get(i) {
            self.keepalive
                .sent(i, socket, &frame, session.tx_interval());
        }
        socket.send(&frame)
    }

    /// Sends the packets that are due by `now` and applies detection timeouts; `members` by
    /// slot, `retired` says which slots are empty. Returns the sessions that changed state.
    pub(crate) fn tick(
        &mut self,
        now: Instant,
        members: &[Port],
        retired: impl Fn(usize) -> bool,
    ) -> Vec<usize> {
        let now = Time::at(self.epoch, now);
        let mut changed = Vec::new();
        let mut packets = Vec::new();
        for (i, s) in self.sessions.iter_mut().enumerate() {
            if retired(i) {
                continue;
            }
            if s.tick(now).is_some() {
                changed.push(i);
            }
            if let Some(p) = s.poll_transmit(now) {
                packets.push((i, p));
            }
        }
        for (i, p) in packets {
            if let Err(e) = self.send(i, members[i].mac, &p) {
                tracing::debug!(lagg = %self.lagg, port = %members[i].name, error = %e, "micro-BFD packet not sent");
            }
        }
        changed
    }

    /// Reads the pending packets of member `port` into its session, each at the time it is
    /// read; returns the sessions that changed state.
    pub(crate) fn handle_frames(&mut self, port: usize) -> Vec<usize> {
        let mut changed = Vec::new();
        if let (Some(Some(socket)), Some(session), Some(learnt)) = (
            self.sockets.get(port),
            self.sessions.get_mut(port),
            self.peers.get_mut(port),
        ) {
            let epoch = self.epoch;
            let lagg = &self.lagg;
            let addresses = bfd::Addresses {
                peer: self.dst_ip,
                local: self.src_ip,
            };
            read_frames(socket, lagg, "micro-BFD", |f| {
                match bfd::payload(f, &addresses) {
                    Ok((src, p)) => {
                        let now = Time::at(epoch, Instant::now());
                        // A peer silent for a detection time (3 s before the session is up)
                        // is forgotten.
                        let forget = session.detection_time().max(Duration::from_secs(3));
                        if let Some((peer, heard)) = *learnt {
                            if peer != src && now.since(heard) < forget {
                                session.counters.invalid += 1;
                                tracing::debug!(lagg = %lagg, port, "micro-BFD packet from another address than the session's peer discarded");
                                return;
                            }
                        }
                        match session.handle(now, p) {
                            Ok(Some(_)) => changed.push(port),
                            Ok(None) => {}
                            Err(e) => {
                                tracing::debug!(lagg = %lagg, port, error = %e, "micro-BFD packet discarded");
                                return;
                            }
                        }
                        if addresses.peer == bfd::ANY_PEER {
                            *learnt = Some((src, now));
                        }
                    }
                    Err(bfd::BfdError::NotBfd) => {}
                    Err(e) => {
                        session.counters.invalid += 1;
                        tracing::debug!(lagg = %lagg, port, error = %e, "micro-BFD frame discarded");
                    }
                }
            });
        }
        changed.dedup();
        changed
    }

    /// When [`tick`](Self::tick) is due next.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        let next = self.sessions.iter().map(bfd::Session::deadline).min()?;
        next.instant(self.epoch)
            .or(Some(self.epoch + Duration::from_secs(3600)))
    }

    /// Whether member `i`'s session is up.
    pub(crate) fn is_up(&self, i: usize) -> bool {
        self.sessions.get(i).is_some_and(bfd::Session::is_up)
    }

    /// Member `i`'s session state and counters.
    pub(crate) fn status(&self, i: usize) -> Option<(bfd::State, bfd::Counters)> {
        let s = self.sessions.get(i)?;
        Some((s.state(), s.counters))
    }

    /// Member `slot` joined at run time: a new session, down until the peer answers.
    pub(crate) fn join(&mut self, slot: usize, port: &Port, now: Instant) {
        let Some(cfg) = self.sessions.first().map(bfd::Session::config) else {
            return;
        };
        let session = bfd::Session::new(cfg, random_discriminator(), Time::at(self.epoch, now));
        put(&mut self.sessions, slot, session);
        put(&mut self.peers, slot, None);
        put(
            &mut self.sockets,
            slot,
            super::control_socket(port.ifindex, ETH_P_IP)
                .ok()
                .map(Arc::new),
        );
    }

    /// Member `slot` left: its socket closes.
    pub(crate) fn leave(&mut self, slot: usize) {
        self.keepalive.clear(slot);
        if let Some(s) = self.sockets.get_mut(slot) {
            *s = None;
        }
    }

    /// Tells every peer the sessions go administratively down (at stop).
    pub(crate) fn shutdown(mut self, members: &[Port]) {
        // The AdminDown packets are the last: nothing periodic after them.
        for i in 0..self.sessions.len() {
            self.keepalive.clear(i);
        }
        let packets: Vec<_> = self
            .sessions
            .iter_mut()
            .map(bfd::Session::admin_down)
            .collect();
        for (i, p) in packets.iter().enumerate() {
            if let Some(port) = members.get(i) {
                let _ = self.send(i, port.mac, p);
            }
        }
    }
}
