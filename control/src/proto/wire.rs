//! The wire formats the control path builds and parses, one view per header: each wraps a
//! byte buffer, checks its length once ([`Ethernet::new_checked`] and its kin), and reads
//! or writes fields at named offsets; a `Repr` is the header as values, parsed from a view
//! or emitted into one. One internet checksum (`xlagg_common::checksum`) serves IPv4, UDP
//! and ICMPv6. micro-BFD, the probe monitor, peer notifications, learning frames and the
//! slow protocols' Ethernet header go through this module.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::ops::Range;

use xlagg_common::checksum::checksum;

/// EtherTypes.
pub mod ethertype {
    /// IPv4.
    pub const IPV4: u16 = 0x0800;
    /// ARP.
    pub const ARP: u16 = 0x0806;
    /// IPv6.
    pub const IPV6: u16 = 0x86dd;
    /// Slow protocols (LACP, Marker).
    pub const SLOW: u16 = xlagg_common::ETHERTYPE_SLOW;
    /// Ethernet configuration testing ("loopback"), the learning frames' type.
    pub const LOOPBACK: u16 = 0x9000;
}

/// IP protocol numbers.
pub mod protocol {
    /// UDP.
    pub const UDP: u8 = 17;
    /// ICMPv6.
    pub const ICMPV6: u8 = 58;
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn put16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

fn array<const N: usize>(b: &[u8], at: Range<usize>) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(&b[at]);
    out
}

/// An Ethernet II header and what follows it.
#[derive(Debug)]
pub struct Ethernet<T>(T);

impl Ethernet<()> {
    const DST: Range<usize> = 0..6;
    const SRC: Range<usize> = 6..12;
    const TYPE: usize = 12;
    /// Header length.
    pub const LEN: usize = 14;
}

impl<T: AsRef<[u8]>> Ethernet<T> {
    /// A view of `buf`, if it holds a whole header.
    pub fn new_checked(buf: T) -> Option<Self> {
        (buf.as_ref().len() >= Ethernet::LEN).then_some(Self(buf))
    }

    /// Destination MAC.
    pub fn dst(&self) -> [u8; 6] {
        array(self.0.as_ref(), Ethernet::DST)
    }

    /// Source MAC.
    pub fn src(&self) -> [u8; 6] {
        array(self.0.as_ref(), Ethernet::SRC)
    }

    /// EtherType.
    pub fn ethertype(&self) -> u16 {
        be16(self.0.as_ref(), Ethernet::TYPE)
    }

    /// What follows the header.
    pub fn payload(&self) -> &[u8] {
        &self.0.as_ref()[Ethernet::LEN..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ethernet<T> {
    /// Writes the header.
    pub fn emit(&mut self, dst: [u8; 6], src: [u8; 6], ethertype: u16) {
        let b = self.0.as_mut();
        b[Ethernet::DST].copy_from_slice(&dst);
        b[Ethernet::SRC].copy_from_slice(&src);
        put16(b, Ethernet::TYPE, ethertype);
    }

    /// What follows the header, to write.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.0.as_mut()[Ethernet::LEN..]
    }
}

/// An IPv4 header and its payload.
#[derive(Debug)]
pub struct Ipv4<T>(T);

impl Ipv4<()> {
    const TOS: usize = 1;
    const TOTAL_LEN: usize = 2;
    const FRAGMENT: usize = 6;
    const TTL: usize = 8;
    const PROTOCOL: usize = 9;
    const CHECKSUM: usize = 10;
    const SRC: Range<usize> = 12..16;
    const DST: Range<usize> = 16..20;
    /// Length of a header without options.
    pub const LEN: usize = 20;
}

/// Why an IPv4 header is not one to read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ipv4Error {
    /// Not version 4, a header length below 20, or shorter than its header.
    Malformed,
    /// The total length is below the header or past the buffer.
    Length,
}

impl<T: AsRef<[u8]>> Ipv4<T> {
    /// A view of `buf`, if it holds a whole version-4 header.
    ///
    /// # Errors
    /// [`Ipv4Error::Malformed`].
    pub fn new_checked(buf: T) -> Result<Self, Ipv4Error> {
        let b = buf.as_ref();
        if b.len() < Ipv4::LEN || b[0] >> 4 != 4 {
            return Err(Ipv4Error::Malformed);
        }
        let ihl = usize::from(b[0] & 0x0f) * 4;
        if ihl < Ipv4::LEN || b.len() < ihl {
            return Err(Ipv4Error::Malformed);
        }
        Ok(Self(buf))
    }

    /// Header length with options.
    pub fn header_len(&self) -> usize {
        usize::from(self.0.as_ref()[0] & 0x0f) * 4
    }

    /// Total length (header and payload).
    pub fn total_len(&self) -> usize {
        usize::from(be16(self.0.as_ref(), Ipv4::TOTAL_LEN))
    }

    /// Whether it is a fragment (more fragments, or an offset).
    pub fn is_fragment(&self) -> bool {
        be16(self.0.as_ref(), Ipv4::FRAGMENT) & 0x3fff != 0
    }

    /// Time to live.
    pub fn ttl(&self) -> u8 {
        self.0.as_ref()[Ipv4::TTL]
    }

    /// Protocol.
    pub fn protocol(&self) -> u8 {
        self.0.as_ref()[Ipv4::PROTOCOL]
    }

    /// Source address.
    pub fn src(&self) -> [u8; 4] {
        array(self.0.as_ref(), Ipv4::SRC)
    }

    /// Destination address.
    pub fn dst(&self) -> [u8; 4] {
        array(self.0.as_ref(), Ipv4::DST)
    }

    /// Whether the header checksum verifies.
    pub fn checksum_ok(&self) -> bool {
        checksum(&[&self.0.as_ref()[..self.header_len()]]) == 0
    }

    /// The payload as the total length bounds it.
    ///
    /// # Errors
    /// [`Ipv4Error::Length`].
    pub fn payload(&self) -> Result<&[u8], Ipv4Error> {
        Ok(&self.0.as_ref()[self.payload_range()?])
    }

    /// Where the payload lies in the buffer, as the total length bounds it.
    ///
    /// # Errors
    /// [`Ipv4Error::Length`].
    pub fn payload_range(&self) -> Result<Range<usize>, Ipv4Error> {
        let (ihl, total) = (self.header_len(), self.total_len());
        if total < ihl || total > self.0.as_ref().len() {
            return Err(Ipv4Error::Length);
        }
        Ok(ihl..total)
    }

    /// What follows the header, whatever the total length says (to peek at the next
    /// header before the length is checked).
    pub fn rest(&self) -> &[u8] {
        &self.0.as_ref()[self.header_len()..]
    }
}

/// An IPv4 header without options, as values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv4Repr {
    /// Source.
    pub src: [u8; 4],
    /// Destination.
    pub dst: [u8; 4],
    /// Protocol.
    pub protocol: u8,
    /// Type of service (DSCP and ECN).
    pub tos: u8,
    /// Time to live.
    pub ttl: u8,
    /// Payload length.
    pub payload_len: usize,
}

impl Ipv4Repr {
    /// Writes the header (no options, not a fragment) with its checksum into `buf`'s first
    /// [`Ipv4::LEN`] bytes.
    pub fn emit(&self, buf: &mut [u8]) {
        let h = &mut buf[..Ipv4::LEN];
        h.fill(0);
        h[0] = 0x45;
        h[Ipv4::TOS] = self.tos;
        put16(h, Ipv4::TOTAL_LEN, (Ipv4::LEN + self.payload_len) as u16);
        h[Ipv4::TTL] = self.ttl;
        h[Ipv4::PROTOCOL] = self.protocol;
        h[Ipv4::SRC].copy_from_slice(&self.src);
        h[Ipv4::DST].copy_from_slice(&self.dst);
        let sum = checksum(&[h]);
        put16(h, Ipv4::CHECKSUM, sum);
    }
}

/// A UDP header and its payload.
#[derive(Debug)]
pub struct Udp<T>(T);

impl Udp<()> {
    const SRC_PORT: usize = 0;
    const DST_PORT: usize = 2;
    const LENGTH: usize = 4;
    const CHECKSUM: usize = 6;
    /// Header length.
    pub const LEN: usize = 8;
}

impl<T: AsRef<[u8]>> Udp<T> {
    /// A view of `buf`, if it holds a whole header.
    pub fn new_checked(buf: T) -> Option<Self> {
        (buf.as_ref().len() >= Udp::LEN).then_some(Self(buf))
    }

    /// Source port.
    pub fn src_port(&self) -> u16 {
        be16(self.0.as_ref(), Udp::SRC_PORT)
    }

    /// Destination port.
    pub fn dst_port(&self) -> u16 {
        be16(self.0.as_ref(), Udp::DST_PORT)
    }

    /// The length field (header and payload).
    pub fn len(&self) -> usize {
        usize::from(be16(self.0.as_ref(), Udp::LENGTH))
    }

    /// Whether the length field is below the header's own.
    pub fn is_empty(&self) -> bool {
        self.len() < Udp::LEN
    }

    /// Whether the checksum verifies against the IPv4 pseudo header of `src` and `dst` (a
    /// zero checksum, "none", verifies). The datagram is the first `len()` bytes.
    pub fn checksum_ok(&self, src: [u8; 4], dst: [u8; 4]) -> bool {
        let b = self.0.as_ref();
        let len = self.len().min(b.len());
        if be16(b, Udp::CHECKSUM) == 0 {
            return true;
        }
        let mut pseudo = [0u8; 12];
        pseudo[..4].copy_from_slice(&src);
        pseudo[4..8].copy_from_slice(&dst);
        pseudo[9] = protocol::UDP;
        pseudo[10..12].copy_from_slice(&(len as u16).to_be_bytes());
        checksum(&[&pseudo, &b[..len]]) == 0
    }

    /// The payload as the length field bounds it (empty when it is out of range).
    pub fn payload(&self) -> &[u8] {
        let b = self.0.as_ref();
        b.get(Udp::LEN..self.len()).unwrap_or_default()
    }

    /// Where the payload lies in the buffer, if the length field is in range.
    pub fn payload_range(&self) -> Option<Range<usize>> {
        let len = self.len();
        (len >= Udp::LEN && len <= self.0.as_ref().len()).then_some(Udp::LEN..len)
    }
}

/// Writes a UDP header with no checksum (IPv4 allows it; micro-BFD sends it so) for a payload
/// of `payload_len` bytes into `buf`'s first [`Udp::LEN`] bytes.
pub fn emit_udp(buf: &mut [u8], src_port: u16, dst_port: u16, payload_len: usize) {
    put16(buf, Udp::SRC_PORT, src_port);
    put16(buf, Udp::DST_PORT, dst_port);
    put16(buf, Udp::LENGTH, (Udp::LEN + payload_len) as u16);
    put16(buf, Udp::CHECKSUM, 0);
}

/// An ARP packet for IPv4 over Ethernet, as values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArpRepr {
    /// 1: request, 2: reply.
    pub operation: u16,
    /// Sender hardware address.
    pub sha: [u8; 6],
    /// Sender protocol address.
    pub spa: Ipv4Addr,
    /// Target hardware address.
    pub tha: [u8; 6],
    /// Target protocol address.
    pub tpa: Ipv4Addr,
}

impl ArpRepr {
    /// Request.
    pub const REQUEST: u16 = 1;
    /// Reply.
    pub const REPLY: u16 = 2;
    /// Length on the wire.
    pub const LEN: usize = 28;

    /// Reads an Ethernet/IPv4 ARP packet.
    pub fn parse(b: &[u8]) -> Option<ArpRepr> {
        if b.len() < Self::LEN || be16(b, 0) != 1 || be16(b, 2) != ethertype::IPV4 {
            return None;
        }
        if b[4] != 6 || b[5] != 4 {
            return None;
        }
        Some(ArpRepr {
            operation: be16(b, 6),
            sha: array(b, 8..14),
            spa: Ipv4Addr::from(array::<4>(b, 14..18)),
            tha: array(b, 18..24),
            tpa: Ipv4Addr::from(array::<4>(b, 24..28)),
        })
    }

    /// Writes it into `b`'s first [`ArpRepr::LEN`] bytes.
    pub fn emit(&self, b: &mut [u8]) {
        put16(b, 0, 1);
        put16(b, 2, ethertype::IPV4);
        b[4] = 6;
        b[5] = 4;
        put16(b, 6, self.operation);
        b[8..14].copy_from_slice(&self.sha);
        b[14..18].copy_from_slice(&self.spa.octets());
        b[18..24].copy_from_slice(&self.tha);
        b[24..28].copy_from_slice(&self.tpa.octets());
    }
}

/// An IPv6 header (no extension headers) and its payload.
#[derive(Debug)]
pub struct Ipv6<T>(T);

impl Ipv6<()> {
    const PAYLOAD_LEN: usize = 4;
    const NEXT_HEADER: usize = 6;
    const HOP_LIMIT: usize = 7;
    const SRC: Range<usize> = 8..24;
    const DST: Range<usize> = 24..40;
    /// Header length.
    pub const LEN: usize = 40;
}

impl<T: AsRef<[u8]>> Ipv6<T> {
    /// A view of `buf`, if it holds a whole version-6 header.
    pub fn new_checked(buf: T) -> Option<Self> {
        let b = buf.as_ref();
        (b.len() >= Ipv6::LEN && b[0] >> 4 == 6).then_some(Self(buf))
    }

    /// Next header.
    pub fn next_header(&self) -> u8 {
        self.0.as_ref()[Ipv6::NEXT_HEADER]
    }

    /// Hop limit.
    pub fn hop_limit(&self) -> u8 {
        self.0.as_ref()[Ipv6::HOP_LIMIT]
    }

    /// Source address.
    pub fn src(&self) -> Ipv6Addr {
        Ipv6Addr::from(array::<16>(self.0.as_ref(), Ipv6::SRC))
    }

    /// Destination address.
    pub fn dst(&self) -> Ipv6Addr {
        Ipv6Addr::from(array::<16>(self.0.as_ref(), Ipv6::DST))
    }

    /// The payload as the payload length bounds it, if the buffer holds all of it.
    pub fn payload(&self) -> Option<&[u8]> {
        let b = self.0.as_ref();
        let len = usize::from(be16(b, Ipv6::PAYLOAD_LEN));
        b.get(Ipv6::LEN..Ipv6::LEN + len)
    }
}

/// Writes an IPv6 header into `buf`'s first [`Ipv6::LEN`] bytes.
pub fn emit_ipv6(
    buf: &mut [u8],
    src: Ipv6Addr,
    dst: Ipv6Addr,
    next_header: u8,
    hop_limit: u8,
    payload_len: usize,
) {
    let h = &mut buf[..Ipv6::LEN];
    h.fill(0);
    h[0] = 0x60;
    put16(h, Ipv6::PAYLOAD_LEN, payload_len as u16);
    h[Ipv6::NEXT_HEADER] = next_header;
    h[Ipv6::HOP_LIMIT] = hop_limit;
    h[Ipv6::SRC].copy_from_slice(&src.octets());
    h[Ipv6::DST].copy_from_slice(&dst.octets());
}

/// The ICMPv6 checksum of `message` (its checksum field zero, or as received to verify)
/// between `src` and `dst`: 0 when a received message verifies.
pub fn icmpv6_checksum(src: Ipv6Addr, dst: Ipv6Addr, message: &[u8]) -> u16 {
    let len = (message.len() as u32).to_be_bytes();
    checksum(&[
        &src.octets(),
        &dst.octets(),
        &len,
        &[0, 0, 0, protocol::ICMPV6],
        message,
    ])
}

/// A neighbour solicitation or advertisement (RFC 4861) with one link-layer address option,
/// as values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NdRepr {
    /// 135: solicitation, 136: advertisement.
    pub kind: u8,
    /// The flags word's top byte (advertisements: Router, Solicited, Override).
    pub flags: u8,
    /// Target address.
    pub target: Ipv6Addr,
    /// The option: 1 source, 2 target link-layer address.
    pub option: u8,
    /// The option's address.
    pub mac: [u8; 6],
}

impl NdRepr {
    /// Neighbour solicitation.
    pub const SOLICITATION: u8 = 135;
    /// Neighbour advertisement.
    pub const ADVERTISEMENT: u8 = 136;
    /// Advertisement flag: Override.
    pub const OVERRIDE: u8 = 0x20;
    /// Length with the option.
    pub const LEN: usize = 32;
    /// Length without options.
    const BARE: usize = 24;

    /// Reads a solicitation or advertisement (the option, if any, from the first one).
    pub fn parse(m: &[u8]) -> Option<NdRepr> {
        if m.len() < Self::BARE || !matches!(m[0], Self::SOLICITATION | Self::ADVERTISEMENT) {
            return None;
        }
        let (option, mac) = match m.get(24..32) {
            Some(o) if o[1] == 1 => (o[0], array(o, 2..8)),
            _ => (0, [0; 6]),
        };
        Some(NdRepr {
            kind: m[0],
            flags: m[4],
            target: Ipv6Addr::from(array::<16>(m, 8..24)),
            option,
            mac,
        })
    }

    /// Writes it, with its checksum between `src` and `dst`, into `m`'s first
    /// [`NdRepr::LEN`] bytes.
    pub fn emit(&self, m: &mut [u8], src: Ipv6Addr, dst: Ipv6Addr) {
        let m = &mut m[..Self::LEN];
        m.fill(0);
        m[0] = self.kind;
        m[4] = self.flags;
        m[8..24].copy_from_slice(&self.target.octets());
        m[24] = self.option;
        m[25] = 1;
        m[26..32].copy_from_slice(&self.mac);
        let sum = icmpv6_checksum(src, dst, m);
        put16(m, 2, sum);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn views_refuse_short_or_wrong_buffers() {
        assert!(Ethernet::new_checked(&[0u8; 13][..]).is_none());
        assert_eq!(
            Ipv4::new_checked(&[0x45u8; 19][..]).unwrap_err(),
            Ipv4Error::Malformed
        );
        let mut v6 = [0u8; 20];
        v6[0] = 0x60;
        assert_eq!(
            Ipv4::new_checked(&v6[..]).unwrap_err(),
            Ipv4Error::Malformed
        );
        let mut ihl = [0u8; 24];
        ihl[0] = 0x46; // 24-byte header: fits
        assert!(Ipv4::new_checked(&ihl[..]).is_ok());
        ihl[0] = 0x47; // 28: does not
        assert!(Ipv4::new_checked(&ihl[..]).is_err());
        assert!(Udp::new_checked(&[0u8; 7][..]).is_none());
        assert!(Ipv6::new_checked(&[0x60u8; 39][..]).is_none());
        assert!(ArpRepr::parse(&[0u8; 27]).is_none());
        assert!(NdRepr::parse(&[135u8; 23]).is_none());
    }

    #[test]
    fn an_ipv4_udp_datagram_round_trips_with_checksums() {
        let mut f = [0u8; 14 + 20 + 8 + 4];
        let mut eth = Ethernet::new_checked(&mut f[..]).unwrap();
        eth.emit([1; 6], [2; 6], ethertype::IPV4);
        let ip = eth.payload_mut();
        let repr = Ipv4Repr {
            src: [10, 0, 0, 1],
            dst: [10, 0, 0, 2],
            protocol: protocol::UDP,
            tos: 0xc0,
            ttl: 255,
            payload_len: 12,
        };
        repr.emit(ip);
        emit_udp(&mut ip[20..], 49152, 6784, 4);
        ip[28..].copy_from_slice(b"bfd!");
        let eth = Ethernet::new_checked(&f[..]).unwrap();
        assert_eq!(eth.ethertype(), ethertype::IPV4);
        let ip = Ipv4::new_checked(eth.payload()).unwrap();
        assert!(ip.checksum_ok() && !ip.is_fragment());
        assert_eq!(
            (ip.src(), ip.dst(), ip.ttl()),
            ([10, 0, 0, 1], [10, 0, 0, 2], 255)
        );
        let udp = Udp::new_checked(ip.payload().unwrap()).unwrap();
        assert_eq!((udp.dst_port(), udp.payload()), (6784, &b"bfd!"[..]));
        assert!(udp.checksum_ok(ip.src(), ip.dst()), "no checksum verifies");
    }

    #[test]
    fn arp_and_nd_round_trip() {
        let arp = ArpRepr {
            operation: ArpRepr::REPLY,
            sha: [2, 0, 0, 0, 0, 9],
            spa: Ipv4Addr::new(10, 77, 0, 2),
            tha: [2, 0, 0, 0, 0, 1],
            tpa: Ipv4Addr::new(10, 77, 0, 1),
        };
        let mut b = [0u8; 28];
        arp.emit(&mut b);
        assert_eq!(ArpRepr::parse(&b), Some(arp));
        let nd = NdRepr {
            kind: NdRepr::ADVERTISEMENT,
            flags: NdRepr::OVERRIDE,
            target: "2001:db8::1".parse().unwrap(),
            option: 2,
            mac: [2, 0, 0, 0, 0, 1],
        };
        let (src, dst) = (nd.target, "ff02::1".parse().unwrap());
        let mut m = [0u8; 32];
        nd.emit(&mut m, src, dst);
        assert_eq!(NdRepr::parse(&m), Some(nd));
        assert_eq!(icmpv6_checksum(src, dst, &m), 0, "verifies");
        m[10] ^= 1;
        assert_ne!(icmpv6_checksum(src, dst, &m), 0);
    }
}
