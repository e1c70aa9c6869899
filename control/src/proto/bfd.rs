//! Micro-BFD (RFC 7130): one asynchronous BFD session (RFC 5880) on every member link, so a
//! member that is up electrically but stops passing frames leaves the lagg within
//! `interval x multiplier`. Sans-IO like the LACP core: the caller feeds received frames and
//! the time, and sends what [`Session::poll_transmit`] returns.
//!
//! Frames: Ethernet to 01-00-5E-90-00-01 (RFC 7130's dedicated MAC, which the XDP program
//! hands to the control path), IPv4 with TTL 255 (GTSM, RFC 5881), UDP to port 6784, a
//! 24-byte control packet without authentication. Demand mode and echo are not used.

use std::time::Duration;

use super::time::Time;
use super::wire::{emit_udp, ethertype, protocol, Ethernet, Ipv4, Ipv4Repr, Udp};
/// RFC 7130's destination MAC and UDP port of micro-BFD (one definition, shared with the XDP
/// filter).
pub use xlagg_common::{MICRO_BFD_MAC, MICRO_BFD_PORT};

/// Length of a control packet without authentication.
pub const PACKET_LEN: usize = 24;
/// Ethernet + IPv4 + UDP + control packet.
pub const FRAME_LEN: usize = 14 + 20 + 8 + PACKET_LEN;
/// While a session is not Up its packets go at most once a second (RFC 5880 6.8.3).
const SLOW: Duration = Duration::from_secs(1);
/// The slowest interval a peer may ask for; slower requests are taken as this.
pub const MAX_REMOTE_INTERVAL: Duration = Duration::from_secs(2);

/// The largest detection multiplier taken from a peer: detection stays within
/// `MAX_REMOTE_MULTIPLIER x MAX_REMOTE_INTERVAL`.
pub const MAX_REMOTE_MULTIPLIER: u8 = 10;

/// Session state (RFC 5880 4.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Administratively down.
    AdminDown = 0,
    /// Down.
    Down = 1,
    /// Init: heard the peer, it has not heard us yet.
    Init = 2,
    /// Up.
    Up = 3,
}

impl State {
    fn from_bits(b: u8) -> State {
        match b & 3 {
            0 => State::AdminDown,
            1 => State::Down,
            2 => State::Init,
            _ => State::Up,
        }
    }

    /// The state's name.
    pub fn name(self) -> &'static str {
        match self {
            State::AdminDown => "admin-down",
            State::Down => "down",
            State::Init => "init",
            State::Up => "up",
        }
    }
}

/// Diagnostic codes we set (RFC 5880 4.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Diag {
    /// No diagnostic.
    None = 0,
    /// Control detection time expired.
    Expired = 1,
    /// The neighbour signalled session down.
    NeighborDown = 3,
}

/// A decoded control packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Packet {
    /// Diagnostic.
    pub diag: u8,
    /// Sender's state.
    pub state: State,
    /// Poll bit.
    pub poll: bool,
    /// Final bit.
    pub fin: bool,
    /// Detection multiplier.
    pub multiplier: u8,
    /// Sender's discriminator.
    pub my_discr: u32,
    /// The discriminator the sender holds for us.
    pub your_discr: u32,
    /// Sender's desired minimum transmit interval, µs.
    pub desired_min_tx_us: u32,
    /// Sender's required minimum receive interval, µs.
    pub required_min_rx_us: u32,
}

/// Why a packet was discarded (RFC 5880 6.8.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BfdError {
    /// Not a micro-BFD frame at all (other UDP port, not IPv4, ...): not counted as bad.
    #[error("not a micro-BFD frame")]
    NotBfd,
    /// A BFD packet that fails a check.
    #[error("invalid BFD packet: {0}")]
    Invalid(&'static str),
}

impl Packet {
    /// Encodes into 24 bytes.
    pub fn emit(&self) -> [u8; PACKET_LEN] {
        let mut b = [0u8; PACKET_LEN];
        b[0] = (1 << 5) | (self.diag & 0x1f);
        b[1] = ((self.state as u8) << 6) | (u8::from(self.poll) << 5) | (u8::from(self.fin) << 4);
        b[2] = self.multiplier;
        b[3] = PACKET_LEN as u8;
        b[4..8].copy_from_slice(&self.my_discr.to_be_bytes());
        b[8..12].copy_from_slice(&self.your_discr.to_be_bytes());
        b[12..16].copy_from_slice(&self.desired_min_tx_us.to_be_bytes());
        b[16..20].copy_from_slice(&self.required_min_rx_us.to_be_bytes());
        // Required min echo rx interval: 0 (no echo).
        b
    }

    /// Decodes and checks a control packet (the reception checks of RFC 5880 6.8.6 that do not
    /// need session state).
    ///
    /// # Errors
    /// The first check that fails.
    pub fn parse(b: &[u8]) -> Result<Packet, BfdError> {
        if b.len() < PACKET_LEN {
            return Err(BfdError::Invalid("shorter than 24 bytes"));
        }
        if b[0] >> 5 != 1 {
            return Err(BfdError::Invalid("version is not 1"));
        }
        let len = usize::from(b[3]);
        if len < PACKET_LEN || len > b.len() {
            return Err(BfdError::Invalid("length field out of range"));
        }
        if b[1] & 0x04 != 0 {
            return Err(BfdError::Invalid("authentication is not supported"));
        }
        if b[1] & 0x01 != 0 {
            return Err(BfdError::Invalid("multipoint bit set"));
        }
        let u32_at = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let p = Packet {
            diag: b[0] & 0x1f,
            state: State::from_bits(b[1] >> 6),
            poll: b[1] & 0x20 != 0,
            fin: b[1] & 0x10 != 0,
            multiplier: b[2],
            my_discr: u32_at(4),
            your_discr: u32_at(8),
            desired_min_tx_us: u32_at(12),
            required_min_rx_us: u32_at(16),
        };
        if p.multiplier == 0 {
            return Err(BfdError::Invalid("detect multiplier 0"));
        }
        if p.my_discr == 0 {
            return Err(BfdError::Invalid("my discriminator 0"));
        }
        if p.your_discr == 0 && !matches!(p.state, State::Down | State::AdminDown) {
            return Err(BfdError::Invalid("your discriminator 0 outside Down"));
        }
        Ok(p)
    }
}

/// The addresses a session's packets must carry (RFC 7130 section 2.1, RFC 5881).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Addresses {
    /// The peer's address: packets must come from it. 255.255.255.255 (no `bfd_peer`
    /// configured): any sender, which the caller then holds the session to once it is up.
    pub peer: [u8; 4],
    /// Our address, where we have one: packets must be sent to it (or to 255.255.255.255, as a
    /// peer without a configured address sends). All zero: not checked.
    pub local: [u8; 4],
}

/// The address that means "not configured" in [`Addresses::peer`].
pub const ANY_PEER: [u8; 4] = [255; 4];

/// The BFD payload of a received frame, if it is a micro-BFD frame for this session: to the
/// micro-BFD MAC, IPv4 with a valid header checksum, not a fragment, TTL 255, from the peer's
/// address and to ours, UDP to 6784 with a consistent length and a valid checksum (or none).
///
/// # Errors
/// [`BfdError::NotBfd`] for other frames; [`BfdError::Invalid`] for a micro-BFD frame that
/// fails a check (counted by the caller).
pub fn payload<'a>(
    frame: &'a [u8],
    addresses: &Addresses,
) -> Result<([u8; 4], &'a [u8]), BfdError> {
    let eth = Ethernet::new_checked(frame)
        .filter(|e| e.ethertype() == ethertype::IPV4 && frame.len() >= 14 + 20 + 8)
        .ok_or(BfdError::NotBfd)?;
    let ip_bytes = &frame[Ethernet::LEN..];
    let ip = Ipv4::new_checked(ip_bytes)
        .ok()
        .filter(|ip| ip.protocol() == protocol::UDP)
        .ok_or(BfdError::NotBfd)?;
    let udp = Udp::new_checked(ip.rest()).ok_or(BfdError::NotBfd)?;
    if udp.dst_port() != MICRO_BFD_PORT {
        return Err(BfdError::NotBfd);
    }
    if eth.dst() != MICRO_BFD_MAC {
        return Err(BfdError::Invalid(
            "not to the micro-BFD MAC 01-00-5e-90-00-01",
        ));
    }
    if ip.ttl() != 255 {
        return Err(BfdError::Invalid("TTL is not 255 (RFC 5881)"));
    }
    if !ip.checksum_ok() {
        return Err(BfdError::Invalid("bad IPv4 header checksum"));
    }
    if ip.is_fragment() {
        return Err(BfdError::Invalid("an IPv4 fragment"));
    }
    let datagram = ip
        .payload_range()
        .ok()
        .filter(|r| r.len() >= Udp::LEN)
        .map(|r| &ip_bytes[r])
        .ok_or(BfdError::Invalid("IPv4 total length out of range"))?;
    let (src, dst) = (ip.src(), ip.dst());
    if addresses.peer != ANY_PEER && src != addresses.peer {
        return Err(BfdError::Invalid("not from the configured peer (bfd_peer)"));
    }
    if addresses.local != [0; 4] && dst != addresses.local && dst != ANY_PEER {
        return Err(BfdError::Invalid("not to our address"));
    }
    let udp = Udp::new_checked(datagram).ok_or(BfdError::Invalid("UDP length out of range"))?;
    let range = udp
        .payload_range()
        .ok_or(BfdError::Invalid("UDP length out of range"))?;
    if !udp.checksum_ok(src, dst) {
        return Err(BfdError::Invalid("bad UDP checksum"));
    }
    Ok((src, &datagram[range]))
}

/// A whole micro-BFD frame around `packet`.
pub fn frame(
    src_mac: [u8; 6],
    src_ip: [u8; 4],
    dst_ip: [u8; 4],
    sport: u16,
    packet: &[u8; PACKET_LEN],
) -> [u8; FRAME_LEN] {
    let mut f = [0u8; FRAME_LEN];
    let Some(mut eth) = Ethernet::new_checked(&mut f[..]) else {
        return f;
    };
    eth.emit(MICRO_BFD_MAC, src_mac, ethertype::IPV4);
    let ip = eth.payload_mut();
    Ipv4Repr {
        src: src_ip,
        dst: dst_ip,
        protocol: protocol::UDP,
        tos: 0xc0, // CS6, network control
        ttl: 255,
        payload_len: Udp::LEN + PACKET_LEN,
    }
    .emit(ip);
    let udp = &mut ip[Ipv4::LEN..];
    emit_udp(udp, sport, MICRO_BFD_PORT, PACKET_LEN);
    udp[Udp::LEN..].copy_from_slice(packet);
    f
}

/// Settings of the sessions of one lagg.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionConfig {
    /// Desired minimum transmit and required minimum receive interval.
    pub interval: Duration,
    /// Detection multiplier.
    pub multiplier: u8,
}

/// Counters of one session.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Counters {
    /// Packets received and accepted.
    pub rx: u64,
    /// Packets sent.
    pub tx: u64,
    /// Packets discarded.
    pub invalid: u64,
    /// Times the session went down.
    pub down: u64,
}

/// One session (one member link).
#[derive(Clone, Debug)]
pub struct Session {
    cfg: SessionConfig,
    state: State,
    remote_state: State,
    diag: Diag,
    local_discr: u32,
    remote_discr: u32,
    remote_min_rx: Duration,
    remote_desired_tx: Duration,
    remote_multiplier: u8,
    last_rx: Option<Time>,
    next_tx: Time,
    send_final: bool,
    rng: u64,
    /// Counters.
    pub counters: Counters,
}

impl Session {
    /// A session in Down with discriminator `discr` (non-zero, unique per session).
    pub fn new(cfg: SessionConfig, discr: u32, now: Time) -> Self {
        Self {
            cfg,
            state: State::Down,
            remote_state: State::Down,
            diag: Diag::None,
            local_discr: discr.max(1),
            remote_discr: 0,
            remote_min_rx: Duration::from_micros(1),
            remote_desired_tx: SLOW,
            remote_multiplier: 0,
            last_rx: None,
            next_tx: now,
            send_final: false,
            rng: u64::from(discr) | 1,
            counters: Counters::default(),
        }
    }

    /// The settings.
    pub fn config(&self) -> SessionConfig {
        self.cfg
    }

    /// The state.
    pub fn state(&self) -> State {
        self.state
    }

    /// Whether the member may carry traffic.
    pub fn is_up(&self) -> bool {
        self.state == State::Up
    }

    fn desired_tx(&self) -> Duration {
        if self.state == State::Up {
            self.cfg.interval
        } else {
            self.cfg.interval.max(SLOW)
        }
    }

    /// Time without packets after which the session goes down.
    pub fn detection_time(&self) -> Duration {
        self.cfg.interval.max(self.remote_desired_tx) * u32::from(self.remote_multiplier.max(1))
    }

    fn set_state(&mut self, state: State, diag: Diag) -> Option<State> {
        if state == self.state {
            return None;
        }
        self.state = state;
        self.diag = diag;
        if state == State::Down {
            self.counters.down += 1;
            self.remote_discr = 0;
        }
        // A state change is announced at once.
        self.next_tx = Time::ZERO;
        Some(state)
    }

    /// Processes a received control packet; returns the new state if it changed.
    ///
    /// # Errors
    /// The packet was discarded (also counted).
    pub fn handle(&mut self, now: Time, bytes: &[u8]) -> Result<Option<State>, BfdError> {
        let p = match Packet::parse(bytes) {
            Ok(p) => p,
            Err(e) => {
                self.counters.invalid += 1;
                return Err(e);
            }
        };
        if let Err(e) = self.check_discriminators(&p) {
            self.counters.invalid += 1;
            return Err(e);
        }
        self.counters.rx += 1;
        self.remote_discr = p.my_discr;
        self.remote_state = p.state;
        // The peer's timers within bounds of our own: never faster than our interval (a
        // stranger's 1 µs would make us flood), never slower than MAX_REMOTE_INTERVAL (a huge
        // one would stretch the detection time until a dead link is never noticed).
        let bound = |us: u32| {
            Duration::from_micros(u64::from(us)).clamp(
                self.cfg.interval,
                MAX_REMOTE_INTERVAL.max(self.cfg.interval),
            )
        };
        self.remote_desired_tx = bound(p.desired_min_tx_us);
        self.remote_min_rx = bound(p.required_min_rx_us);
        // And its multiplier to MAX_REMOTE_MULTIPLIER: 255 times the longest interval would
        // keep a dead (or a hijacked) session up for minutes on one packet.
        self.remote_multiplier = p.multiplier.min(MAX_REMOTE_MULTIPLIER);
        self.last_rx = Some(now);
        if p.poll {
            self.send_final = true;
            self.next_tx = Time::ZERO;
        }
        let changed = match (self.state, p.state) {
            (_, State::AdminDown) if self.state != State::Down => {
                self.set_state(State::Down, Diag::NeighborDown)
            }
            (State::Down, State::Down) => self.set_state(State::Init, Diag::None),
            (State::Down, State::Init) | (State::Init, State::Init | State::Up) => {
                self.set_state(State::Up, Diag::None)
            }
            (State::Up, State::Down) => self.set_state(State::Down, Diag::NeighborDown),
            _ => None,
        };
        Ok(changed)
    }

    /// RFC 5880 6.8.6's discriminator rules, strict once the session has a peer: your_discr
    /// must be ours (0 only while we are Down: a Down or AdminDown with 0 from anyone would
    /// otherwise take an Up member out), and my_discr must be the one we learnt.
    fn check_discriminators(&self, p: &Packet) -> Result<(), BfdError> {
        if p.your_discr != 0 && p.your_discr != self.local_discr {
            return Err(BfdError::Invalid("your discriminator is not ours"));
        }
        if matches!(self.state, State::Init | State::Up) {
            if p.your_discr == 0 {
                return Err(BfdError::Invalid(
                    "your discriminator 0 while the session is up",
                ));
            }
            if self.remote_discr != 0 && p.my_discr != self.remote_discr {
                return Err(BfdError::Invalid("my discriminator is not the peer's"));
            }
        }
        Ok(())
    }

    /// Applies the detection timeout; returns the new state if it went down.
    pub fn tick(&mut self, now: Time) -> Option<State> {
        match (self.state, self.last_rx) {
            (State::Init | State::Up, Some(t)) if now.since(t) >= self.detection_time() => {
                self.set_state(State::Down, Diag::Expired)
            }
            _ => None,
        }
    }

    /// The period of the periodic packets now (the longer of ours and what the peer asks).
    pub fn tx_interval(&self) -> Duration {
        self.desired_tx().max(self.remote_min_rx)
    }

    /// The next packet, if one is due now.
    pub fn poll_transmit(&mut self, now: Time) -> Option<[u8; PACKET_LEN]> {
        if now < self.next_tx {
            return None;
        }
        // Jitter: 75 to 100 % of the interval (90 % at most with multiplier 1).
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let interval = self.tx_interval();
        let top = if self.cfg.multiplier == 1 { 90 } else { 100 };
        let pct = 75 + (self.rng % (top - 75 + 1));
        self.next_tx = now + interval * pct as u32 / 100;
        self.counters.tx += 1;
        let fin = std::mem::take(&mut self.send_final);
        Some(
            Packet {
                diag: self.diag as u8,
                state: self.state,
                poll: false,
                fin,
                multiplier: self.cfg.multiplier,
                my_discr: self.local_discr,
                your_discr: self.remote_discr,
                desired_min_tx_us: self.desired_tx().as_micros() as u32,
                required_min_rx_us: self.cfg.interval.as_micros() as u32,
            }
            .emit(),
        )
    }

    /// Takes the session administratively down and returns the packet that tells the peer
    /// (sent when the lagg stops, so the peer takes the link out at once, RFC 5880 6.8.16).
    pub fn admin_down(&mut self) -> [u8; PACKET_LEN] {
        self.state = State::AdminDown;
        self.diag = Diag::None;
        self.next_tx = Time::NEVER;
        Packet {
            diag: 7, // administratively down
            state: State::AdminDown,
            poll: false,
            fin: false,
            multiplier: self.cfg.multiplier,
            my_discr: self.local_discr,
            your_discr: self.remote_discr,
            desired_min_tx_us: SLOW.as_micros() as u32,
            required_min_rx_us: 0,
        }
        .emit()
    }

    /// When the session next needs [`tick`](Self::tick) or [`poll_transmit`](Self::poll_transmit).
    pub fn deadline(&self) -> Time {
        let detect = match (self.state, self.last_rx) {
            (State::Init | State::Up, Some(t)) => t + self.detection_time(),
            _ => Time::NEVER,
        };
        self.next_tx.min(detect)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use xlagg_common::checksum::checksum;

    const CFG: SessionConfig = SessionConfig {
        interval: Duration::from_millis(50),
        multiplier: 3,
    };

    /// Two sessions joined by a lossless (or broken) wire, on a virtual clock in 1 ms steps.
    fn run(a: &mut Session, b: &mut Session, from: u64, to: u64, wire_ok: impl Fn(u64) -> bool) {
        for ms in from..to {
            let now = Time::from_millis(ms);
            if let Some(p) = a.poll_transmit(now) {
                if wire_ok(ms) {
                    let _ = b.handle(now, &p);
                }
            }
            if let Some(p) = b.poll_transmit(now) {
                if wire_ok(ms) {
                    let _ = a.handle(now, &p);
                }
            }
            a.tick(now);
            b.tick(now);
        }
    }

    #[test]
    fn three_way_handshake_brings_both_up() {
        let (mut a, mut b) = (
            Session::new(CFG, 11, Time::ZERO),
            Session::new(CFG, 22, Time::ZERO),
        );
        run(&mut a, &mut b, 0, 3000, |_| true);
        assert!(a.is_up() && b.is_up(), "{:?} {:?}", a.state(), b.state());
        // Up: packets every 37.5..50 ms, not once a second.
        let before = a.counters.tx;
        run(&mut a, &mut b, 3000, 4000, |_| true);
        assert!(
            (20..=27).contains(&(a.counters.tx - before)),
            "{}",
            a.counters.tx - before
        );
    }

    #[test]
    fn a_silent_wire_takes_both_down_within_the_detection_time() {
        let (mut a, mut b) = (
            Session::new(CFG, 11, Time::ZERO),
            Session::new(CFG, 22, Time::ZERO),
        );
        run(&mut a, &mut b, 0, 3000, |_| true);
        assert!(a.is_up());
        let mut down_at = None;
        for ms in 3000..4000u64 {
            run(&mut a, &mut b, ms, ms + 1, |_| false);
            if down_at.is_none() && !a.is_up() {
                down_at = Some(ms);
            }
        }
        let t = down_at.expect("went down") - 3000;
        assert!(t <= 150 + 1, "detected after {t} ms (3 x 50 ms)");
        assert_eq!(a.diag, Diag::Expired);
        // And back up when the wire heals.
        run(&mut a, &mut b, 4000, 8000, |_| true);
        assert!(a.is_up() && b.is_up());
    }

    #[test]
    fn one_way_loss_is_caught_at_both_ends() {
        let (mut a, mut b) = (
            Session::new(CFG, 11, Time::ZERO),
            Session::new(CFG, 22, Time::ZERO),
        );
        run(&mut a, &mut b, 0, 3000, |_| true);
        // Only a -> b is lost: b times out, then tells a it is down.
        for ms in 3000..5000u64 {
            let now = Time::from_millis(ms);
            let _ = a.poll_transmit(now);
            if let Some(p) = b.poll_transmit(now) {
                let _ = a.handle(now, &p);
            }
            a.tick(now);
            b.tick(now);
        }
        assert!(!b.is_up() && !a.is_up(), "{:?} {:?}", a.state(), b.state());
    }

    #[test]
    fn packets_round_trip_and_bad_ones_are_refused() {
        let p = Packet {
            diag: 3,
            state: State::Up,
            poll: true,
            fin: false,
            multiplier: 3,
            my_discr: 7,
            your_discr: 9,
            desired_min_tx_us: 50_000,
            required_min_rx_us: 50_000,
        };
        assert_eq!(Packet::parse(&p.emit()), Ok(p));
        let good = p.emit();
        for (i, v, why) in [
            (0usize, 0x40u8, "version is not 1"),
            (2, 0, "detect multiplier 0"),
            (3, 10, "length field out of range"),
            (1, 0xc4, "authentication is not supported"),
        ] {
            let mut b = good;
            b[i] = v;
            assert_eq!(Packet::parse(&b), Err(BfdError::Invalid(why)));
        }
        let f = frame(
            [2, 0, 0, 0, 0, 1],
            [10, 0, 0, 1],
            [10, 0, 0, 2],
            49152,
            &good,
        );
        let at = Addresses {
            peer: [10, 0, 0, 1],
            local: [10, 0, 0, 2],
        };
        assert_eq!(payload(&f, &at), Ok(([10, 0, 0, 1], &good[..])));
        let mut ttl = f;
        ttl[14 + 8] = 64;
        assert_eq!(
            payload(&ttl, &at),
            Err(BfdError::Invalid("TTL is not 255 (RFC 5881)"))
        );
        assert_eq!(payload(&f[..30], &at), Err(BfdError::NotBfd));
    }

    /// `f` with bytes changed and the IPv4 header checksum made right again.
    fn edited(f: &[u8; FRAME_LEN], edits: &[(usize, u8)]) -> [u8; FRAME_LEN] {
        let mut g = *f;
        for (i, v) in edits {
            g[*i] = *v;
        }
        g[24..26].fill(0);
        let sum = checksum(&[&g[14..34]]);
        g[24..26].copy_from_slice(&sum.to_be_bytes());
        g
    }

    #[test]
    fn frames_not_from_the_peer_or_not_whole_are_refused() {
        let packet = Session::new(CFG, 11, Time::ZERO)
            .poll_transmit(Time::ZERO)
            .expect("a packet");
        let f = frame(
            [2, 0, 0, 0, 0, 1],
            [10, 0, 0, 1],
            [10, 0, 0, 2],
            49152,
            &packet,
        );
        let at = Addresses {
            peer: [10, 0, 0, 1],
            local: [10, 0, 0, 2],
        };
        assert!(payload(&f, &at).is_ok());
        let any_local = Addresses {
            local: [0; 4],
            ..at
        };
        assert!(payload(&edited(&f, &[(33, 9)]), &any_local).is_ok());
        let mut broadcast = f;
        broadcast[..6].fill(0xff);
        let mut bad_sum = f;
        bad_sum[25] ^= 1;
        let mut udp_sum = f;
        udp_sum[40] = 0x12;
        for (frame, why) in [
            (broadcast, "not to the micro-BFD MAC 01-00-5e-90-00-01"),
            (
                edited(&f, &[(29, 7)]),
                "not from the configured peer (bfd_peer)",
            ),
            (edited(&f, &[(33, 9)]), "not to our address"),
            (bad_sum, "bad IPv4 header checksum"),
            (edited(&f, &[(20, 0x20)]), "an IPv4 fragment"),
            (
                edited(&f, &[(16, 0), (17, 20)]),
                "IPv4 total length out of range",
            ),
            (udp_sum, "bad UDP checksum"),
        ] {
            assert_eq!(payload(&frame, &at), Err(BfdError::Invalid(why)), "{why}");
        }
    }

    fn from_peer(state: State, my: u32, your: u32, tx_us: u32, rx_us: u32) -> [u8; PACKET_LEN] {
        Packet {
            diag: 0,
            state,
            poll: false,
            fin: false,
            multiplier: 3,
            my_discr: my,
            your_discr: your,
            desired_min_tx_us: tx_us,
            required_min_rx_us: rx_us,
        }
        .emit()
    }

    #[test]
    fn a_strangers_down_or_admin_down_without_our_discriminator_takes_nothing_down() {
        let (mut a, mut b) = (
            Session::new(CFG, 11, Time::ZERO),
            Session::new(CFG, 22, Time::ZERO),
        );
        run(&mut a, &mut b, 0, 3000, |_| true);
        assert!(a.is_up());
        let now = Time::from_millis(3000);
        for p in [
            from_peer(State::Down, 77, 0, 50_000, 50_000),
            from_peer(State::AdminDown, 77, 0, 50_000, 50_000),
            from_peer(State::Down, 22, 0, 50_000, 50_000),
            // Our discriminator but another sender's.
            from_peer(State::Down, 77, 11, 50_000, 50_000),
        ] {
            assert!(a.handle(now, &p).is_err());
            assert!(a.is_up(), "{:?}", Packet::parse(&p));
        }
        assert_eq!(a.counters.invalid, 4);
        // The real peer's Down still takes it down.
        assert_eq!(
            a.handle(now, &from_peer(State::Down, 22, 11, 50_000, 50_000)),
            Ok(Some(State::Down))
        );
    }

    #[test]
    fn the_peers_timers_are_held_within_bounds() {
        let (mut a, mut b) = (
            Session::new(CFG, 11, Time::ZERO),
            Session::new(CFG, 22, Time::ZERO),
        );
        run(&mut a, &mut b, 0, 3000, |_| true);
        let now = Time::from_millis(3000);
        // Asks us to send every microsecond: we keep our own 50 ms.
        a.handle(now, &from_peer(State::Up, 22, 11, 1, 1))
            .expect("accepted");
        let first = a.poll_transmit(now + Duration::from_secs(1)).is_some();
        let again = a.poll_transmit(now + Duration::from_secs(1) + Duration::from_micros(10));
        assert!(first && again.is_none(), "no flood");
        // Claims an interval of an hour: the detection time stays bounded.
        a.handle(now, &from_peer(State::Up, 22, 11, u32::MAX, u32::MAX))
            .expect("accepted");
        assert_eq!(a.detection_time(), MAX_REMOTE_INTERVAL * 3);
        // And a multiplier of 255 with it: at most ten intervals, not 510 s.
        let mut greedy =
            Packet::parse(&from_peer(State::Up, 22, 11, u32::MAX, u32::MAX)).expect("parses");
        greedy.multiplier = 255;
        a.handle(now, &greedy.emit()).expect("accepted");
        assert_eq!(
            a.detection_time(),
            MAX_REMOTE_INTERVAL * u32::from(MAX_REMOTE_MULTIPLIER)
        );
    }

    #[test]
    fn admin_down_takes_the_peer_down_at_once() {
        let (mut a, mut b) = (
            Session::new(CFG, 11, Time::ZERO),
            Session::new(CFG, 22, Time::ZERO),
        );
        run(&mut a, &mut b, 0, 3000, |_| true);
        let p = a.admin_down();
        assert_eq!(b.handle(Time::from_millis(3000), &p), Ok(Some(State::Down)));
        assert_eq!(b.diag, Diag::NeighborDown);
        assert_eq!(a.poll_transmit(Time::from_millis(3001)), None);
    }

    #[test]
    fn foreign_discriminators_are_discarded() {
        let mut a = Session::new(CFG, 11, Time::ZERO);
        let p = Packet {
            diag: 0,
            state: State::Up,
            poll: false,
            fin: false,
            multiplier: 3,
            my_discr: 5,
            your_discr: 99,
            desired_min_tx_us: 50_000,
            required_min_rx_us: 50_000,
        };
        assert!(a.handle(Time::ZERO, &p.emit()).is_err());
        assert_eq!(a.counters.invalid, 1);
        assert_eq!(a.state(), State::Down);
    }
}
