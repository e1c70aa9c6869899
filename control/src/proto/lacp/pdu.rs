//! Slow-protocol wire formats: LACPDU (subtype 1) and Marker PDU (subtype 2), IEEE 802.1AX-2008
//! clauses 5.4.2 and 5.5.3 (802.3ad clause 43).
//!
//! Each format is a value ([`Lacpdu`], [`Marker`]) with `parse` and `emit`; the Ethernet
//! header goes through [`crate::proto::wire`], the TLVs through one reader and one writer,
//! with every type, length and field offset named. Parsing walks the TLVs, so a version-2
//! LACPDU (802.1AX-2014) with extra TLVs is accepted: the three version-1 TLVs are required,
//! anything else is skipped. Every read is bounds-checked; a malformed frame gives an error,
//! never a panic.

use std::fmt;
use std::ops::Range;

use crate::proto::wire::{ethertype, Ethernet};

/// The Slow Protocols multicast address (one definition, shared with the XDP filter; the
/// ethertype is [`ethertype::SLOW`]).
pub use xlagg_common::filter::SLOW_PROTOCOLS_MAC;
/// Length of an LACPDU or Marker PDU frame without FCS.
pub const FRAME_LEN: usize = 124;
/// The PDU's own header after the Ethernet header: subtype, version.
const HEADER: usize = 2;
/// The version xlagg sends.
const VERSION: u8 = 1;

/// Slow-protocol subtypes (IEEE 802.3 Annex 57A).
mod subtype {
    /// LACP.
    pub(super) const LACP: u8 = 1;
    /// Marker.
    pub(super) const MARKER: u8 = 2;
}

/// TLV types and lengths (the length counts the type and length bytes).
mod tlv {
    /// The end of the TLVs.
    pub(super) const TERMINATOR: u8 = 0;
    /// LACP: the actor's information.
    pub(super) const ACTOR: u8 = 1;
    /// LACP: the partner's information.
    pub(super) const PARTNER: u8 = 2;
    /// LACP: collector information.
    pub(super) const COLLECTOR: u8 = 3;
    /// Marker: a request.
    pub(super) const MARKER_INFORMATION: u8 = 1;
    /// Marker: the answer to one.
    pub(super) const MARKER_RESPONSE: u8 = 2;
    /// Actor and partner TLVs.
    pub(super) const PORT_INFO_LEN: u8 = 20;
    /// The collector TLV.
    pub(super) const COLLECTOR_LEN: u8 = 16;
    /// Marker TLVs.
    pub(super) const MARKER_LEN: u8 = 16;
}

/// Why a slow-protocol frame was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PduError {
    /// Too short for what it claims to be.
    #[error("frame truncated")]
    Truncated,
    /// Not ethertype 0x8809.
    #[error("not a slow-protocol frame")]
    NotSlowProtocol,
    /// A subtype other than LACP (1) or Marker (2); e.g. OAM (3).
    #[error("unknown slow-protocol subtype {0}")]
    UnknownSubtype(u8),
    /// A required TLV is missing or has the wrong length.
    #[error("malformed TLV {tlv} (length {len})")]
    BadTlv {
        /// TLV type.
        tlv: u8,
        /// Its length field.
        len: u8,
    },
    /// Version 0 is not a valid LACP/Marker version.
    #[error("invalid version 0")]
    BadVersion,
}

/// The eight LACP state bits (802.1AX 5.4.2.2, Actor_State / Partner_State).
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct LacpState(pub u8);

impl LacpState {
    /// Active LACP (otherwise passive).
    pub const ACTIVITY: u8 = 1 << 0;
    /// Short timeout (otherwise long).
    pub const TIMEOUT: u8 = 1 << 1;
    /// Aggregatable (otherwise individual).
    pub const AGGREGATION: u8 = 1 << 2;
    /// In sync: attached to the right aggregator.
    pub const SYNCHRONIZATION: u8 = 1 << 3;
    /// Collecting enabled.
    pub const COLLECTING: u8 = 1 << 4;
    /// Distributing enabled.
    pub const DISTRIBUTING: u8 = 1 << 5;
    /// Partner information is administrative defaults.
    pub const DEFAULTED: u8 = 1 << 6;
    /// Receive machine in EXPIRED.
    pub const EXPIRED: u8 = 1 << 7;

    const NAMES: [(u8, &'static str); 8] = [
        (Self::ACTIVITY, "ACTIVITY"),
        (Self::TIMEOUT, "TIMEOUT"),
        (Self::AGGREGATION, "AGGREGATION"),
        (Self::SYNCHRONIZATION, "SYNC"),
        (Self::COLLECTING, "COLLECTING"),
        (Self::DISTRIBUTING, "DISTRIBUTING"),
        (Self::DEFAULTED, "DEFAULTED"),
        (Self::EXPIRED, "EXPIRED"),
    ];

    /// Whether `bit` is set.
    pub const fn has(self, bit: u8) -> bool {
        self.0 & bit != 0
    }

    /// Sets or clears `bit`.
    pub fn set(&mut self, bit: u8, on: bool) {
        if on {
            self.0 |= bit;
        } else {
            self.0 &= !bit;
        }
    }
}

impl fmt::Display for LacpState {
    /// lagg style: `<ACTIVITY,AGGREGATION,SYNC,COLLECTING,DISTRIBUTING>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<")?;
        let mut first = true;
        for (bit, name) in Self::NAMES {
            if self.has(bit) {
                if !first {
                    f.write_str(",")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        f.write_str(">")
    }
}

impl fmt::Debug for LacpState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#04x}{self}", self.0)
    }
}

/// One side's information in an LACPDU (Actor or Partner TLV).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct PortInfo {
    /// System priority.
    pub system_priority: u16,
    /// System MAC address.
    pub system: [u8; 6],
    /// Operational key.
    pub key: u16,
    /// Port priority.
    pub port_priority: u16,
    /// Port number.
    pub port: u16,
    /// State bits.
    pub state: LacpState,
}

impl PortInfo {
    // Field offsets in the TLV's value.
    const SYSTEM_PRIORITY: usize = 0;
    const SYSTEM: Range<usize> = 2..8;
    const KEY: usize = 8;
    const PORT_PRIORITY: usize = 10;
    const PORT: usize = 12;
    const STATE: usize = 14;
    const RESERVED: Range<usize> = 15..18;

    /// From a TLV value of the right length.
    fn parse(b: &[u8]) -> PortInfo {
        PortInfo {
            system_priority: be16(b, Self::SYSTEM_PRIORITY),
            system: mac(&b[Self::SYSTEM]),
            key: be16(b, Self::KEY),
            port_priority: be16(b, Self::PORT_PRIORITY),
            port: be16(b, Self::PORT),
            state: LacpState(b[Self::STATE]),
        }
    }

    fn emit(&self, b: &mut [u8]) {
        put16(b, Self::SYSTEM_PRIORITY, self.system_priority);
        b[Self::SYSTEM].copy_from_slice(&self.system);
        put16(b, Self::KEY, self.key);
        put16(b, Self::PORT_PRIORITY, self.port_priority);
        put16(b, Self::PORT, self.port);
        b[Self::STATE] = self.state.0;
        b[Self::RESERVED].fill(0);
    }

    /// Whether the identifying fields (all but the state) are equal.
    pub fn same_port(&self, other: &PortInfo) -> bool {
        self.system_priority == other.system_priority
            && self.system == other.system
            && self.key == other.key
            && self.port_priority == other.port_priority
            && self.port == other.port
    }
}

/// A parsed LACPDU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lacpdu {
    /// Version number (1 for 802.1AX-2008; 2 and later add TLVs, tolerated).
    pub version: u8,
    /// The sender's own information.
    pub actor: PortInfo,
    /// What the sender knows of us.
    pub partner: PortInfo,
    /// Collector max delay, tens of microseconds.
    pub collector_max_delay: u16,
}

/// A parsed Marker PDU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Marker {
    /// Information (request, TLV 1) or Response (TLV 2).
    pub response: bool,
    /// Requester's port.
    pub port: u16,
    /// Requester's system.
    pub system: [u8; 6],
    /// Requester's transaction id.
    pub transaction: u32,
}

/// Any slow-protocol PDU xlagg understands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlowPdu {
    /// LACP.
    Lacp(Lacpdu),
    /// Marker protocol.
    Marker(Marker),
}

/// The collector TLV's one field, in its value.
const COLLECTOR_MAX_DELAY: usize = 0;

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn put16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

fn mac(b: &[u8]) -> [u8; 6] {
    let mut out = [0u8; 6];
    out.copy_from_slice(b);
    out
}

fn get(b: &[u8], at: usize, len: usize) -> Result<&[u8], PduError> {
    b.get(at..at + len).ok_or(PduError::Truncated)
}

impl Marker {
    // Field offsets in the TLV's value.
    const PORT: usize = 0;
    const SYSTEM: Range<usize> = 2..8;
    const TRANSACTION: Range<usize> = 8..12;

    /// From a TLV value of the right length.
    fn parse(kind: u8, b: &[u8]) -> Marker {
        let mut transaction = [0u8; 4];
        transaction.copy_from_slice(&b[Self::TRANSACTION]);
        Marker {
            response: kind == tlv::MARKER_RESPONSE,
            port: be16(b, Self::PORT),
            system: mac(&b[Self::SYSTEM]),
            transaction: u32::from_be_bytes(transaction),
        }
    }

    /// The 124-byte frame, sent from `src`.
    pub fn emit(&self, src: [u8; 6]) -> [u8; FRAME_LEN] {
        let kind = if self.response {
            tlv::MARKER_RESPONSE
        } else {
            tlv::MARKER_INFORMATION
        };
        frame(src, subtype::MARKER, |t| {
            let b = t.put(kind, tlv::MARKER_LEN);
            put16(b, Self::PORT, self.port);
            b[Self::SYSTEM].copy_from_slice(&self.system);
            b[Self::TRANSACTION].copy_from_slice(&self.transaction.to_be_bytes());
        })
    }
}

/// The TLVs of a PDU, parsed: what was found of each type xlagg reads.
#[derive(Default)]
struct Found {
    actor: Option<PortInfo>,
    partner: Option<PortInfo>,
    collector: Option<u16>,
    marker: Option<Marker>,
}

/// The length a known TLV must have (`None`: not one xlagg reads).
fn known_len(kind: u8, t: u8) -> Option<u8> {
    match (kind, t) {
        (subtype::LACP, tlv::ACTOR | tlv::PARTNER) => Some(tlv::PORT_INFO_LEN),
        (subtype::LACP, tlv::COLLECTOR) => Some(tlv::COLLECTOR_LEN),
        (subtype::MARKER, tlv::MARKER_INFORMATION | tlv::MARKER_RESPONSE) => Some(tlv::MARKER_LEN),
        _ => None,
    }
}

/// Walks the TLVs of `body` (the PDU after its header) up to the terminator, checking each
/// one's length; types xlagg does not read (version 2 and later) are skipped.
fn walk(kind: u8, body: &[u8]) -> Result<Found, PduError> {
    let mut found = Found::default();
    let mut at = 0;
    loop {
        let tl = get(body, at, 2)?;
        let (t, len) = (tl[0], tl[1]);
        if t == tlv::TERMINATOR {
            return Ok(found);
        }
        if len < 2 {
            return Err(PduError::BadTlv { tlv: t, len });
        }
        let value = get(body, at + 2, usize::from(len) - 2)?;
        if known_len(kind, t).is_some_and(|want| want != len) {
            return Err(PduError::BadTlv { tlv: t, len });
        }
        match (kind, t) {
            (subtype::LACP, tlv::ACTOR) => found.actor = Some(PortInfo::parse(value)),
            (subtype::LACP, tlv::PARTNER) => found.partner = Some(PortInfo::parse(value)),
            (subtype::LACP, tlv::COLLECTOR) => {
                found.collector = Some(be16(value, COLLECTOR_MAX_DELAY));
            }
            (subtype::MARKER, tlv::MARKER_INFORMATION | tlv::MARKER_RESPONSE) => {
                found.marker = Some(Marker::parse(t, value));
            }
            _ => {}
        }
        at += usize::from(len);
    }
}

/// Parses a whole Ethernet frame carrying a slow-protocol PDU (any destination address).
///
/// # Errors
/// What is wrong with it.
pub fn parse(frame: &[u8]) -> Result<SlowPdu, PduError> {
    let eth = Ethernet::new_checked(frame).ok_or(PduError::Truncated)?;
    if eth.ethertype() != ethertype::SLOW {
        return Err(PduError::NotSlowProtocol);
    }
    let pdu = eth.payload();
    let head = get(pdu, 0, HEADER)?;
    let (kind, version) = (head[0], head[1]);
    if kind != subtype::LACP && kind != subtype::MARKER {
        return Err(PduError::UnknownSubtype(kind));
    }
    if version == 0 {
        return Err(PduError::BadVersion);
    }
    let found = walk(kind, &pdu[HEADER..])?;
    let missing = |t| PduError::BadTlv { tlv: t, len: 0 };
    if kind == subtype::MARKER {
        return found
            .marker
            .map(SlowPdu::Marker)
            .ok_or(missing(tlv::MARKER_INFORMATION));
    }
    Ok(SlowPdu::Lacp(Lacpdu {
        version,
        actor: found.actor.ok_or(missing(tlv::ACTOR))?,
        partner: found.partner.ok_or(missing(tlv::PARTNER))?,
        collector_max_delay: found.collector.ok_or(missing(tlv::COLLECTOR))?,
    }))
}

/// Writes TLVs one after another into a PDU's body.
struct Tlvs<'a> {
    body: &'a mut [u8],
    at: usize,
}

impl Tlvs<'_> {
    /// Appends a TLV of type `t` and length `len`; returns its value to fill.
    fn put(&mut self, t: u8, len: u8) -> &mut [u8] {
        let tlv = &mut self.body[self.at..self.at + usize::from(len)];
        self.at += usize::from(len);
        tlv[0] = t;
        tlv[1] = len;
        &mut tlv[2..]
    }
}

/// A 124-byte slow-protocol frame from `src` of subtype `kind`, its TLVs written by `tlvs`;
/// the terminator and the reserved bytes after it stay zero.
fn frame(src: [u8; 6], kind: u8, tlvs: impl FnOnce(&mut Tlvs<'_>)) -> [u8; FRAME_LEN] {
    let mut buf = [0u8; FRAME_LEN];
    if let Some(mut eth) = Ethernet::new_checked(&mut buf[..]) {
        eth.emit(SLOW_PROTOCOLS_MAC, src, ethertype::SLOW);
        let pdu = eth.payload_mut();
        pdu[0] = kind;
        pdu[1] = VERSION;
        tlvs(&mut Tlvs {
            body: &mut pdu[HEADER..],
            at: 0,
        });
    }
    buf
}

impl Lacpdu {
    /// The 124-byte frame, sent from `src` (the member port's MAC), always as version 1.
    pub fn emit(&self, src: [u8; 6]) -> [u8; FRAME_LEN] {
        frame(src, subtype::LACP, |t| {
            self.actor.emit(t.put(tlv::ACTOR, tlv::PORT_INFO_LEN));
            self.partner.emit(t.put(tlv::PARTNER, tlv::PORT_INFO_LEN));
            let collector = t.put(tlv::COLLECTOR, tlv::COLLECTOR_LEN);
            put16(collector, COLLECTOR_MAX_DELAY, self.collector_max_delay);
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
            .collect()
    }

    /// An LACPDU in the layout Linux bonding (802.3ad mode) uses, written out by hand from the
    /// standard (not recorded): actor system 00:1b:21:3c:9d:f8 priority 65535 key 9 port priority 255 port 1,
    /// state ACTIVITY|AGGREGATION|SYNC|COLLECTING|DISTRIBUTING (0x3d); partner
    /// 00:0e:83:16:f5:00 priority 32768 key 14 port priority 32768 port 25 state 0x3f;
    /// collector max delay 0.
    const BONDING_LACPDU: &str = "0180c2000002 001b213c9df8 8809 0101
        0114 ffff 001b213c9df8 0009 00ff 0001 3d 000000
        0214 8000 000e8316f500 000e 8000 0019 3f 000000
        0310 0000 000000000000000000000000
        0000
        00000000000000000000000000000000000000000000000000
        00000000000000000000000000000000000000000000000000";

    fn bonding() -> Lacpdu {
        Lacpdu {
            version: 1,
            actor: PortInfo {
                system_priority: 0xffff,
                system: [0x00, 0x1b, 0x21, 0x3c, 0x9d, 0xf8],
                key: 9,
                port_priority: 255,
                port: 1,
                state: LacpState(0x3d),
            },
            partner: PortInfo {
                system_priority: 0x8000,
                system: [0x00, 0x0e, 0x83, 0x16, 0xf5, 0x00],
                key: 14,
                port_priority: 0x8000,
                port: 25,
                state: LacpState(0x3f),
            },
            collector_max_delay: 0,
        }
    }

    #[test]
    fn lacpdu_parses_and_emits_byte_for_byte() {
        let bytes = hex(BONDING_LACPDU);
        assert_eq!(bytes.len(), FRAME_LEN);
        assert_eq!(parse(&bytes), Ok(SlowPdu::Lacp(bonding())));
        let out = bonding().emit([0x00, 0x1b, 0x21, 0x3c, 0x9d, 0xf8]);
        assert_eq!(out.to_vec(), bytes);
    }

    /// Recorded from Open vSwitch 3.1 (Debian's openvswitch-switch, userspace datapath) on a
    /// bond negotiated with xlagg: OVS's actor (priority 0xfffe, key 1, port 2, fully in
    /// sync) and xlagg as its partner (02:78:6c:00:00:0a, key 1, port 1).
    const OVS_NEGOTIATED: &str = "0180c2000002 f6356fe96380 8809 0101
        0114 fffe b6bce7b72b4e 0001 ffff 0002 3f 000000
        0214 8000 02786c00000a 0001 8000 0001 3f 000000
        0310 0000 000000000000000000000000
        0000
        00000000000000000000000000000000000000000000000000
        00000000000000000000000000000000000000000000000000";

    /// Recorded from Open vSwitch 3.1 on a lone LACP port before any partner was heard:
    /// the actor is individual and EXPIRED, the partner TLV all zero but for TIMEOUT.
    const OVS_DEFAULTED: &str = "0180c2000002 3295f24df100 8809 0101
        0114 ffff 9abbdd810c43 0001 ffff 0001 bb 000000
        0214 0000 000000000000 0000 0000 0000 02 000000
        0310 0000 000000000000000000000000
        0000
        00000000000000000000000000000000000000000000000000
        00000000000000000000000000000000000000000000000000";

    #[test]
    fn recorded_open_vswitch_lacpdus_parse_and_reemit_byte_for_byte() {
        for (text, src) in [
            (OVS_NEGOTIATED, [0xf6, 0x35, 0x6f, 0xe9, 0x63, 0x80]),
            (OVS_DEFAULTED, [0x32, 0x95, 0xf2, 0x4d, 0xf1, 0x00]),
        ] {
            let bytes = hex(text);
            assert_eq!(bytes.len(), FRAME_LEN);
            let Ok(SlowPdu::Lacp(pdu)) = parse(&bytes) else {
                panic!("{text}")
            };
            assert_eq!(pdu.emit(src).to_vec(), bytes, "re-emitted frame differs");
        }
        let Ok(SlowPdu::Lacp(pdu)) = parse(&hex(OVS_NEGOTIATED)) else {
            panic!()
        };
        assert_eq!(pdu.actor.system_priority, 0xfffe);
        assert_eq!(
            (pdu.actor.key, pdu.actor.port_priority, pdu.actor.port),
            (1, 0xffff, 2)
        );
        assert_eq!(
            pdu.actor.state.to_string(),
            "<ACTIVITY,TIMEOUT,AGGREGATION,SYNC,COLLECTING,DISTRIBUTING>"
        );
        assert_eq!(pdu.partner.system, [0x02, 0x78, 0x6c, 0x00, 0x00, 0x0a]);
        let Ok(SlowPdu::Lacp(pdu)) = parse(&hex(OVS_DEFAULTED)) else {
            panic!()
        };
        assert_eq!(
            pdu.actor.state.to_string(),
            "<ACTIVITY,TIMEOUT,SYNC,COLLECTING,DISTRIBUTING,EXPIRED>"
        );
        assert!(
            !pdu.actor.state.has(LacpState::AGGREGATION),
            "an individual port"
        );
        assert_eq!(
            pdu.partner,
            PortInfo {
                state: LacpState(LacpState::TIMEOUT),
                ..PortInfo::default()
            }
        );
    }

    #[test]
    fn state_bits_print_as_lagg_flags() {
        assert_eq!(
            LacpState(0x3d).to_string(),
            "<ACTIVITY,AGGREGATION,SYNC,COLLECTING,DISTRIBUTING>"
        );
        assert_eq!(
            LacpState(0x47).to_string(),
            "<ACTIVITY,TIMEOUT,AGGREGATION,DEFAULTED>"
        );
        assert_eq!(LacpState(0).to_string(), "<>");
    }

    #[test]
    fn marker_information_and_response_round_trip() {
        let m = Marker {
            response: false,
            port: 3,
            system: [2, 0, 0, 0, 0, 9],
            transaction: 0xdead_beef,
        };
        let frame = m.emit([2, 0, 0, 0, 0, 9]);
        assert_eq!(&frame[14..20], &[2, 1, 1, 16, 0, 3]);
        assert_eq!(parse(&frame), Ok(SlowPdu::Marker(m)));
        let r = Marker {
            response: true,
            ..m
        };
        assert_eq!(parse(&r.emit([2, 0, 0, 0, 0, 1])), Ok(SlowPdu::Marker(r)));
    }

    /// A Marker Information PDU laid out byte by byte from IEEE 802.3 43.5.3.2: requester
    /// port 3, system 02:00:00:00:00:09, transaction 0xdeadbeef, 2 pad bytes, the terminator,
    /// then 90 reserved bytes (zero).
    const MARKER_INFORMATION: &str = "0180c2000002 020000000009 8809 0201
        0110 0003 020000000009 deadbeef 0000
        0000";

    fn marker_frame() -> Vec<u8> {
        let mut f = hex(MARKER_INFORMATION);
        f.resize(FRAME_LEN, 0);
        f
    }

    #[test]
    fn a_marker_pdu_from_the_standard_layout_parses_and_emits_byte_for_byte() {
        let m = Marker {
            response: false,
            port: 3,
            system: [2, 0, 0, 0, 0, 9],
            transaction: 0xdead_beef,
        };
        assert_eq!(parse(&marker_frame()), Ok(SlowPdu::Marker(m)));
        assert_eq!(m.emit([2, 0, 0, 0, 0, 9]).to_vec(), marker_frame());
        let mut response = marker_frame();
        response[16] = 2;
        let r = Marker {
            response: true,
            ..m
        };
        assert_eq!(parse(&response), Ok(SlowPdu::Marker(r)));
        assert_eq!(r.emit([2, 0, 0, 0, 0, 9]).to_vec(), response);
    }

    #[test]
    fn malformed_marker_pdus_are_errors() {
        let mut bad_len = marker_frame();
        bad_len[17] = 18;
        assert_eq!(parse(&bad_len), Err(PduError::BadTlv { tlv: 1, len: 18 }));
        // The Marker TLV turned into an unknown type: skipped, so none is found.
        let mut missing = marker_frame();
        missing[16] = 9;
        assert_eq!(parse(&missing), Err(PduError::BadTlv { tlv: 1, len: 0 }));
        assert_eq!(parse(&marker_frame()[..30]), Err(PduError::Truncated));
    }

    #[test]
    fn version_2_with_extra_tlvs_is_tolerated() {
        let mut bytes = hex(BONDING_LACPDU);
        bytes[15] = 2;
        // Replace the terminator by a 6-byte unknown TLV (type 4), then terminate.
        bytes[72..80].copy_from_slice(&[4, 6, 1, 2, 3, 4, 0, 0]);
        let SlowPdu::Lacp(pdu) = parse(&bytes).expect("v2 parses") else {
            panic!()
        };
        assert_eq!(pdu.version, 2);
        assert_eq!(pdu.actor, bonding().actor);
    }

    #[test]
    fn malformed_frames_are_errors() {
        let good = hex(BONDING_LACPDU);
        let mut bad_len = good.clone();
        bad_len[17] = 19;
        assert_eq!(parse(&bad_len), Err(PduError::BadTlv { tlv: 1, len: 19 }));
        let mut oam = good.clone();
        oam[14] = 3;
        assert_eq!(parse(&oam), Err(PduError::UnknownSubtype(3)));
        let mut v0 = good.clone();
        v0[15] = 0;
        assert_eq!(parse(&v0), Err(PduError::BadVersion));
        let mut no_partner = good.clone();
        no_partner[36] = 9; // partner TLV becomes an unknown TLV
        assert_eq!(parse(&no_partner), Err(PduError::BadTlv { tlv: 2, len: 0 }));
        let mut zero_len = good.clone();
        zero_len[57] = 0;
        assert_eq!(parse(&zero_len), Err(PduError::BadTlv { tlv: 3, len: 0 }));
        assert_eq!(parse(&good[..60]), Err(PduError::Truncated));
        let mut ip = good.clone();
        ip[12..14].copy_from_slice(&[8, 0]);
        assert_eq!(parse(&ip), Err(PduError::NotSlowProtocol));
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            let _ = parse(&bytes);
        }

        #[test]
        fn mutated_lacpdus_never_panic(at in 12usize..124, value in proptest::num::u8::ANY) {
            let mut bytes = hex(BONDING_LACPDU);
            bytes[at] = value;
            let _ = parse(&bytes);
        }
    }
}
