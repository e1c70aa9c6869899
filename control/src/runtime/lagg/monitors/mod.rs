//! The monitors of a lagg, each over its own packet sockets: LACP (the slow-protocol
//! socket and the sans-IO core of [`crate::proto::lacp`]), micro-BFD (a session per member) and the
//! ARP/NS probe monitor. Each reads its frames, runs its timers and says which members it
//! changed its mind about; the lagg turns that into verdicts of its member set.

mod bfd;
mod keepalive;
mod lacp;
mod probe;

use std::time::{Duration, Instant};

use xlagg_sys::afpacket::{self, PacketSocket};

pub(super) use bfd::BfdMonitor;
pub(super) use lacp::LacpMonitor;
pub(super) use probe::ProbeMonitor;

use super::ControlSocket;
use crate::proto::lacp::AlarmKind;

/// The monitors a lagg runs (those its configuration asks for), and what LACP's alarms said
/// at the last look.
#[derive(Debug, Default)]
pub(super) struct Monitors {
    /// LACP (`laggproto lacp`).
    pub(super) lacp: Option<LacpMonitor>,
    /// micro-BFD (`bfd`).
    pub(super) bfd: Option<BfdMonitor>,
    /// ARP/NS probes (`arp`).
    pub(super) probe: Option<ProbeMonitor>,
    /// LACP alarms raised at the last look (port slot, kind).
    pub(super) lacp_alarms: Vec<(usize, AlarmKind)>,
    /// The port forwarding alone in LACP fallback at the last look.
    pub(super) lacp_fallback: Option<usize>,
}

impl Monitors {
    /// The monitors that run, as one kind.
    pub(super) fn all(&self) -> impl Iterator<Item = &dyn Monitor> {
        let lacp = self.lacp.as_ref().map(|m| m as &dyn Monitor);
        let bfd = self.bfd.as_ref().map(|m| m as &dyn Monitor);
        let probe = self.probe.as_ref().map(|m| m as &dyn Monitor);
        [lacp, bfd, probe].into_iter().flatten()
    }

    /// The monitors that run, to change.
    pub(super) fn all_mut(&mut self) -> impl Iterator<Item = &mut dyn Monitor> {
        let lacp = self.lacp.as_mut().map(|m| m as &mut dyn Monitor);
        let bfd = self.bfd.as_mut().map(|m| m as &mut dyn Monitor);
        let probe = self.probe.as_mut().map(|m| m as &mut dyn Monitor);
        [lacp, bfd, probe].into_iter().flatten()
    }
}

/// What every monitor of a lagg offers the lagg, whatever it watches: its sockets, when its
/// timers are due, and letting a member go. What each decides (LACP's mux states, BFD's
/// sessions, the probes' windows) stays each one's own.
pub(super) trait Monitor {
    /// Its open sockets, each named by the kind of frames it carries and its member slot.
    fn control_sockets(&self) -> Vec<(ControlSocket, &PacketSocket)>;
    /// Forgets member `slot` (it left the lagg at `now`): its socket closes, its state goes.
    fn leave_slot(&mut self, slot: usize, now: Instant);
    /// When its timers are next due.
    fn deadline(&self) -> Option<Instant>;
}

impl Monitor for LacpMonitor {
    fn control_sockets(&self) -> Vec<(ControlSocket, &PacketSocket)> {
        self.sockets()
            .map(|(i, s)| (ControlSocket::Lacp(i), s))
            .collect()
    }

    fn leave_slot(&mut self, slot: usize, now: Instant) {
        self.leave(slot, now);
    }

    fn deadline(&self) -> Option<Instant> {
        LacpMonitor::deadline(self)
    }
}

impl Monitor for BfdMonitor {
    fn control_sockets(&self) -> Vec<(ControlSocket, &PacketSocket)> {
        self.sockets()
            .map(|(i, s)| (ControlSocket::Bfd(i), s))
            .collect()
    }

    fn leave_slot(&mut self, slot: usize, _now: Instant) {
        self.leave(slot);
    }

    fn deadline(&self) -> Option<Instant> {
        BfdMonitor::deadline(self)
    }
}

impl Monitor for ProbeMonitor {
    fn control_sockets(&self) -> Vec<(ControlSocket, &PacketSocket)> {
        self.sockets()
            .map(|(i, s)| (ControlSocket::Probe(i), s))
            .collect()
    }

    fn leave_slot(&mut self, slot: usize, _now: Instant) {
        self.leave(slot);
    }

    fn deadline(&self) -> Option<Instant> {
        ProbeMonitor::deadline(self)
    }
}

/// The receive buffer of the control path's sockets: room for bursts between the control
/// thread's reads (the XDP and tc programs cap what passes per port and kind; see
/// `xlagg_common::limit`).
const RECEIVE_BUFFER: usize = 1 << 20;

/// Gives a control socket its receive buffer; a kernel that refuses keeps the default (logged).
fn with_room(socket: PacketSocket) -> PacketSocket {
    if let Err(e) = socket.set_receive_buffer(RECEIVE_BUFFER) {
        tracing::warn!(ifindex = socket.ifindex(), error = %e, "control socket keeps the default receive buffer");
    }
    socket
}

/// A control socket for `protocol` on `ifindex`, with room (see [`with_room`]).
fn control_socket(ifindex: u32, protocol: u16) -> std::io::Result<PacketSocket> {
    PacketSocket::bind(ifindex, protocol).map(with_room)
}

/// Reads up to 64 frames received on `socket` (frames it sent are skipped) and hands each to
/// `frame`; a receive error is logged and ends the read.
fn read_frames(socket: &PacketSocket, lagg: &str, what: &str, mut frame: impl FnMut(&[u8])) {
    let mut buf = [0u8; 1518];
    for _ in 0..64 {
        match socket.recv(&mut buf, Duration::ZERO) {
            Ok(Some((n, afpacket::Direction::Incoming))) => frame(&buf[..n]),
            Ok(Some((_, afpacket::Direction::Outgoing))) => {}
            Ok(None) => break,
            Err(e) => {
                tracing::warn!(lagg, error = %e, "{what} receive failed");
                break;
            }
        }
    }
}

/// Puts `value` at `slot` of a per-member vector: replacing a departed member's entry, or
/// appending the next one.
pub(super) fn put<T>(v: &mut Vec<T>, slot: usize, value: T) {
    if slot < v.len() {
        v[slot] = value;
    } else {
        v.push(value);
    }
}

/// The open sockets of `sockets` with their member slot.
fn open<S: std::ops::Deref<Target = PacketSocket>>(
    sockets: &[Option<S>],
) -> impl Iterator<Item = (usize, &PacketSocket)> {
    sockets
        .iter()
        .enumerate()
        .filter_map(|(i, s)| s.as_ref().map(|s| (i, &**s)))
}
