//! Test frames: Ethernet + IPv4 + UDP carrying a marker, a flow id, a sequence number and a
//! send timestamp, so a sink can tell which flow and which frame arrived on which port.
//!
//! Flow `f` uses source address 10.78.(f >> 8 & 255).(f & 255) and UDP source port
//! 10000 + (f % 50000); destination 10.79.0.1 port 9. The payload is [`MAGIC`], the flow id,
//! the sequence number and the low 32 bits of the send time: 18 bytes, so the marker fits the
//! smallest Ethernet frame. The rest of the payload is a pattern of the sequence number, so a
//! sink can tell a frame that arrived whole ([`intact`]) from one cut or mixed on the way
//! (jumbo frames cross as chains of buffers).
//!
//! Sizes follow RFC 2544: a "64-byte frame" counts the 4-byte FCS the NIC appends, so the
//! buffer built here is `size - 4` bytes.

/// Payload marker of xlagg test frames ("XL").
pub const MAGIC: &[u8; 2] = b"XL";
/// Smallest frame size (with FCS).
pub const MIN_FRAME: usize = 64;
/// Largest frame size (with FCS) without jumbo frames.
pub const MAX_FRAME: usize = 1518;
/// Largest jumbo frame size (with FCS): MTU 9000.
pub const MAX_JUMBO_FRAME: usize = 9018;
/// Bytes of FCS counted in a frame size but not built.
pub const FCS: usize = 4;
/// Offset of the payload (after Ethernet 14 + IPv4 20 + UDP 8).
pub const PAYLOAD: usize = 42;
/// Size of marker + flow + sequence + timestamp.
pub const PAYLOAD_HEADER: usize = 2 + 4 + 8 + 4;

/// Destination MAC of test frames (locally administered).
pub const DST_MAC: [u8; 6] = [0x02, 0x78, 0x6c, 0x00, 0x00, 0x02];
/// Source MAC of test frames.
pub const SRC_MAC: [u8; 6] = [0x02, 0x78, 0x6c, 0x00, 0x00, 0x01];

/// What a test frame carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Marker {
    /// Flow id.
    pub flow: u32,
    /// Sequence number (global send order).
    pub seq: u64,
    /// Low 32 bits of the send time in nanoseconds (0 when not stamped); differences are
    /// taken with wrapping arithmetic.
    pub stamp_ns: u32,
}

fn checksum(bytes: &[u8]) -> u16 {
    xlagg_common::checksum::checksum(&[bytes])
}

/// Header layout of test frames.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Shape {
    /// IPv6 instead of IPv4.
    pub ipv6: bool,
    /// An 802.1Q tag with this VLAN id.
    pub vlan: Option<u16>,
}

impl Shape {
    /// Bytes the headers add over untagged IPv4 (where every generator offset moves).
    pub fn shift(self) -> usize {
        usize::from(self.vlan.is_some()) * 4 + if self.ipv6 { 20 } else { 0 }
    }

    /// Offset of the payload.
    pub fn payload(self) -> usize {
        PAYLOAD + self.shift()
    }

    /// The smallest wire size (with FCS) that holds the headers and the marker.
    pub fn min_frame(self) -> usize {
        (self.payload() + PAYLOAD_HEADER + FCS).max(MIN_FRAME)
    }

    /// A short name: `ipv4`, `ipv6`, with `+vlan`.
    pub fn name(self) -> String {
        format!(
            "{}{}",
            if self.ipv6 { "ipv6" } else { "ipv4" },
            if self.vlan.is_some() { "+vlan" } else { "" }
        )
    }
}

/// Simple IMIX (wire sizes with FCS and their weights): 7 x 64, 4 x 594, 1 x 1518 bytes.
pub const IMIX: [(usize, u32); 3] = [(64, 7), (594, 4), (1518, 1)];

/// The IMIX size of frame `i` of a repeating 12-frame pattern (small frames spread out).
pub fn imix_size(i: u64) -> usize {
    const PATTERN: [usize; 12] = [64, 594, 64, 64, 594, 64, 1518, 64, 594, 64, 64, 594];
    PATTERN[(i % 12) as usize]
}

/// Average wire size of IMIX.
pub fn imix_average() -> f64 {
    let total: u32 = IMIX.iter().map(|(_, w)| w).sum();
    IMIX.iter()
        .map(|(s, w)| (*s as f64) * f64::from(*w))
        .sum::<f64>()
        / f64::from(total)
}

/// Writes a test frame of wire size `size` (clamped to [`MIN_FRAME`]..=[`MAX_JUMBO_FRAME`],
/// FCS included) into `buf` and returns the number of bytes written (`size - 4`).
///
/// # Panics
/// If `buf` is shorter than the frame.
pub fn build(buf: &mut [u8], size: usize, marker: Marker) -> usize {
    build_shaped(buf, size, marker, Shape::default())
}

/// [`build`] with a header layout: IPv4 or IPv6, with or without a VLAN tag (sizes below the
/// shape's [`Shape::min_frame`] are raised to it).
///
/// # Panics
/// If `buf` is shorter than the frame.
pub fn build_shaped(buf: &mut [u8], size: usize, marker: Marker, shape: Shape) -> usize {
    let size = size.clamp(
        shape.min_frame(),
        MAX_JUMBO_FRAME + if shape.vlan.is_some() { 4 } else { 0 },
    ) - FCS;
    let f = &mut buf[..size];
    f.fill(0);
    f[0..6].copy_from_slice(&DST_MAC);
    f[6..12].copy_from_slice(&SRC_MAC);
    let mut l3 = 12;
    if let Some(vid) = shape.vlan {
        f[12..14].copy_from_slice(&0x8100u16.to_be_bytes());
        f[14..16].copy_from_slice(&(vid & 0x0fff).to_be_bytes());
        l3 = 16;
    }
    let sport = 10000 + (marker.flow % 50000) as u16;
    let udp_at;
    if shape.ipv6 {
        f[l3..l3 + 2].copy_from_slice(&0x86ddu16.to_be_bytes());
        let ip = l3 + 2;
        let payload_len = (size - ip - 40) as u16;
        f[ip] = 0x60;
        f[ip + 4..ip + 6].copy_from_slice(&payload_len.to_be_bytes());
        f[ip + 6] = 17;
        f[ip + 7] = 64;
        // 2001:db8:78::(flow) -> 2001:db8:79::1
        f[ip + 8..ip + 12].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
        f[ip + 12..ip + 14].copy_from_slice(&[0, 0x78]);
        f[ip + 20..ip + 24].copy_from_slice(&marker.flow.to_be_bytes());
        f[ip + 24..ip + 28].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
        f[ip + 28..ip + 30].copy_from_slice(&[0, 0x79]);
        f[ip + 39] = 1;
        udp_at = ip + 40;
        f[udp_at + 4..udp_at + 6].copy_from_slice(&payload_len.to_be_bytes());
    } else {
        f[l3..l3 + 2].copy_from_slice(&0x0800u16.to_be_bytes());
        let ip = l3 + 2;
        let ip_len = (size - ip) as u16;
        f[ip] = 0x45;
        f[ip + 2..ip + 4].copy_from_slice(&ip_len.to_be_bytes());
        f[ip + 8] = 64;
        f[ip + 9] = 17;
        f[ip + 12..ip + 16].copy_from_slice(&[10, 78, (marker.flow >> 8) as u8, marker.flow as u8]);
        f[ip + 16..ip + 20].copy_from_slice(&[10, 79, 0, 1]);
        let csum = checksum(&f[ip..ip + 20]);
        f[ip + 10..ip + 12].copy_from_slice(&csum.to_be_bytes());
        udp_at = ip + 20;
        f[udp_at + 4..udp_at + 6].copy_from_slice(&(ip_len - 20).to_be_bytes());
    }
    f[udp_at..udp_at + 2].copy_from_slice(&sport.to_be_bytes());
    f[udp_at + 2..udp_at + 4].copy_from_slice(&9u16.to_be_bytes());
    let p = &mut f[udp_at + 8..];
    p[0..2].copy_from_slice(MAGIC);
    p[2..6].copy_from_slice(&marker.flow.to_be_bytes());
    p[6..14].copy_from_slice(&marker.seq.to_be_bytes());
    p[14..18].copy_from_slice(&marker.stamp_ns.to_be_bytes());
    for (i, b) in p[PAYLOAD_HEADER..].iter_mut().enumerate() {
        *b = pattern(marker.seq, i);
    }
    size
}

/// Byte `i` of the payload after the marker header of frame `seq`.
#[inline]
fn pattern(seq: u64, i: usize) -> u8 {
    (seq as u8).wrapping_add((i as u8).wrapping_mul(7)) ^ (i >> 8) as u8
}

/// Whether a test frame (one [`parse`] accepts, with `marker`) arrived whole: exactly as long
/// as its IP header says and with its payload pattern unchanged.
pub fn intact(frame: &[u8], marker: Marker) -> bool {
    let mut l3 = 12;
    if frame.get(12..14) == Some(&[0x81, 0x00]) {
        l3 = 16;
    }
    let ip = l3 + 2;
    let (len, payload) = match frame.get(l3..l3 + 2) {
        Some([0x08, 0x00]) => match frame.get(ip + 2..ip + 4) {
            Some(b) => (ip + usize::from(u16::from_be_bytes([b[0], b[1]])), ip + 28),
            None => return false,
        },
        Some([0x86, 0xdd]) => match frame.get(ip + 4..ip + 6) {
            Some(b) => (
                ip + 40 + usize::from(u16::from_be_bytes([b[0], b[1]])),
                ip + 48,
            ),
            None => return false,
        },
        _ => return false,
    };
    len == frame.len()
        && frame.get(payload + PAYLOAD_HEADER..).is_some_and(|rest| {
            rest.iter()
                .enumerate()
                .all(|(i, &b)| b == pattern(marker.seq, i))
        })
}

/// The marker of a test frame (any [`Shape`]); `None` for any other frame.
pub fn parse(frame: &[u8]) -> Option<Marker> {
    if frame.get(6..12)? != SRC_MAC {
        return None;
    }
    let mut l3 = 12;
    if frame.get(12..14)? == [0x81, 0x00] {
        l3 = 16;
    }
    let payload = match frame.get(l3..l3 + 2)? {
        [0x08, 0x00] if frame.get(l3 + 2 + 9)? == &17 => l3 + 2 + 20 + 8,
        [0x86, 0xdd] if frame.get(l3 + 2 + 6)? == &17 => l3 + 2 + 40 + 8,
        _ => return None,
    };
    if frame.get(payload - 6..payload - 4)? != [0, 9] {
        return None;
    }
    let p = frame.get(payload..payload + PAYLOAD_HEADER)?;
    if &p[0..2] != MAGIC {
        return None;
    }
    Some(Marker {
        flow: u32::from_be_bytes(p[2..6].try_into().ok()?),
        seq: u64::from_be_bytes(p[6..14].try_into().ok()?),
        stamp_ns: u32::from_be_bytes(p[14..18].try_into().ok()?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_then_parse_round_trips_and_checksum_verifies() {
        let mut buf = [0xa5u8; 128];
        let m = Marker {
            flow: 513,
            seq: 77,
            stamp_ns: 123_456,
        };
        let n = build(&mut buf, 64, m);
        assert_eq!(n, 60);
        assert_eq!(parse(&buf[..n]), Some(m));
        assert_eq!(
            checksum(&buf[14..34]),
            0,
            "IPv4 header checksum must verify"
        );
        assert_eq!(&buf[26..30], &[10, 78, 2, 1]);
        assert_eq!(parse(&buf[..40]), None);
        assert!(intact(&buf[..n], m));
        let mut jumbo = [0u8; MAX_JUMBO_FRAME];
        assert_eq!(
            build(&mut jumbo, 20_000, m),
            9014,
            "clamped to 9018 with FCS"
        );
        assert!(intact(&jumbo[..9014], m));
        assert!(!intact(&jumbo[..9013], m), "a cut frame is not whole");
        jumbo[5000] ^= 1;
        assert!(!intact(&jumbo[..9014], m), "a changed byte is found");
        buf[PAYLOAD] = b'x';
        assert_eq!(parse(&buf[..n]), None);
    }

    #[test]
    fn every_shape_round_trips_with_its_marker_where_the_generator_writes() {
        let m = Marker {
            flow: 70_000,
            seq: 1 << 40,
            stamp_ns: 9,
        };
        for shape in [
            Shape::default(),
            Shape {
                ipv6: true,
                vlan: None,
            },
            Shape {
                ipv6: false,
                vlan: Some(77),
            },
            Shape {
                ipv6: true,
                vlan: Some(4094),
            },
        ] {
            let mut buf = [0u8; 2048];
            let n = build_shaped(&mut buf, 64, m, shape);
            assert_eq!(n + FCS, shape.min_frame(), "{}", shape.name());
            assert_eq!(parse(&buf[..n]), Some(m), "{}", shape.name());
            // The generator's offsets, moved by the shape's shift, land on the marker.
            let seq_at = xlagg_common::gen_offsets::SEQ + shape.shift();
            assert_eq!(
                buf[seq_at..seq_at + 8],
                m.seq.to_be_bytes(),
                "{}",
                shape.name()
            );
            let n = build_shaped(&mut buf, 1518, m, shape);
            assert_eq!(parse(&buf[..n]), Some(m));
        }
        assert!((imix_average() - 361.83).abs() < 0.01);
        let small = (0..12).filter(|i| imix_size(*i) == 64).count();
        assert_eq!(small, 7);
    }
}
