//! Telling the peers of a member that the lagg's addresses now live behind it: gratuitous
//! ARP and unsolicited NA for laggN's addresses (host mode), learning frames for the
//! downstream hosts' MACs seen by the workers (forward mode). When, and on which members, is
//! the member set's decision ([`MemberSet::due_notifications`](crate::runtime::members::MemberSet));
//! this part builds the frames and sends them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use xlagg_dataplane::learn::RecentMacs;
use xlagg_sys::afpacket::PacketSocket;

use super::Port;
use crate::config::{LaggConfig, Upper};
use crate::sys::netdev::Netlink;

/// How long a source MAC counts as recently seen (at least; at most twice that).
const MAC_AGING: Duration = Duration::from_secs(60);

/// The frames and sockets of a lagg's peer notifications.
#[derive(Debug)]
pub(super) struct Announcer {
    /// Send-only packet sockets per member, opened when first needed.
    sockets: Vec<Option<PacketSocket>>,
    /// Forward mode: source MACs the workers saw from the downstream port.
    recent: Option<Arc<RecentMacs>>,
    /// The MACs of the previous aging period, and when the current one ends.
    previous: (Vec<[u8; 6]>, Instant),
}

impl Announcer {
    /// For a lagg with configuration `cfg` (forward mode learns the downstream MACs).
    pub(super) fn new(cfg: &LaggConfig) -> Self {
        Self {
            sockets: Vec::new(),
            recent: matches!(cfg.upper, Upper::Forward { .. })
                .then(|| Arc::new(RecentMacs::default())),
            previous: (Vec::new(), Instant::now() + MAC_AGING),
        }
    }

    /// Where the workers record the downstream MACs (forward mode).
    pub(super) fn learner(&self) -> Option<Arc<RecentMacs>> {
        self.recent.clone()
    }

    /// Ages the downstream MACs: one period's worth is kept as "previous".
    pub(super) fn age(&mut self, now: Instant) {
        if now >= self.previous.1 {
            if let Some(r) = &self.recent {
                self.previous = (r.sweep(), now + MAC_AGING);
            }
        }
    }

    /// The frames that tell a peer where the lagg is: one per laggN address (host mode,
    /// sent from `mac`, laggN's), one per downstream MAC (forward mode).
    fn frames(&self, cfg: &LaggConfig, nl: &Netlink, mac: [u8; 6]) -> Vec<Vec<u8>> {
        match &cfg.upper {
            Upper::Host { .. } => {
                let addresses = match nl.require(&cfg.name).and_then(|l| nl.addresses(l.index)) {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!(lagg = %cfg.name, error = %e, "peer notification: cannot read the lagg's addresses");
                        Vec::new()
                    }
                };
                addresses
                    .iter()
                    .map(|ip| match ip {
                        std::net::IpAddr::V4(v4) => crate::proto::notify::gratuitous_arp(mac, *v4),
                        std::net::IpAddr::V6(v6) => crate::proto::notify::unsolicited_na(mac, *v6),
                    })
                    .collect()
            }
            Upper::Forward { .. } => {
                let mut macs = self.recent.as_ref().map(|r| r.macs()).unwrap_or_default();
                for m in &self.previous.0 {
                    if !macs.contains(m) {
                        macs.push(*m);
                    }
                }
                macs.into_iter()
                    .map(crate::proto::notify::learning_frame)
                    .collect()
            }
        }
    }

    /// Sends the notification frames on the members `due` (`members` by slot; laggN carries
    /// the first member's MAC).
    pub(super) fn send(&mut self, cfg: &LaggConfig, nl: &Netlink, members: &[Port], due: &[usize]) {
        if due.is_empty() || members.is_empty() {
            return;
        }
        let frames = self.frames(cfg, nl, members[0].mac);
        if self.sockets.len() < members.len() {
            self.sockets.resize_with(members.len(), || None);
        }
        for &port in due {
            let member = &members[port];
            if self.sockets[port].is_none() {
                // Protocol 0: a send-only socket, nothing is queued for reading.
                match PacketSocket::bind(member.ifindex, 0) {
                    Ok(s) => self.sockets[port] = Some(s),
                    Err(e) => {
                        tracing::warn!(lagg = %cfg.name, port = %member.name, error = %e, "peer notification socket")
                    }
                }
            }
            if let Some(socket) = &self.sockets[port] {
                let sent = frames.iter().filter(|f| socket.send(f).is_ok()).count();
                tracing::info!(lagg = %cfg.name, port = %member.name, frames = sent, "peer notification sent");
            }
        }
    }

    /// Member `slot` is another device now: its socket is opened again when needed.
    pub(super) fn forget(&mut self, slot: usize) {
        if let Some(s) = self.sockets.get_mut(slot) {
            *s = None;
        }
    }
}
