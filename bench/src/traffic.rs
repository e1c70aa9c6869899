//! Test frames: Ethernet + IPv4 + UDP carrying a marker, a flow id, a sequence number and a
//! send timestamp, so a sink can tell which flow and which frame arrived on which port.
//!
//! Flow `f` uses source address 10.78.(f >> 8 & 255).(f & 255) and UDP source port
//! 10000 + (f % 50000); destination 10.79.0.1 port 9. The payload is [`MAGIC`], the flow id,
//! the sequence number and the low 32 bits of the send time: 18 bytes, so the marker fits the
//! smallest Ethernet frame.
//!
//! Sizes follow RFC 2544: a "64-byte frame" counts the 4-byte FCS the NIC appends, so the
//! buffer built here is `size - 4` bytes.

/// Payload marker of xlagg test frames ("XL").
pub const MAGIC: &[u8; 2] = b"XL";
/// Smallest frame size (with FCS).
pub const MIN_FRAME: usize = 64;
/// Largest frame size (with FCS) without jumbo frames.
pub const MAX_FRAME: usize = 1518;
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
    let mut sum = 0u32;
    for pair in bytes.chunks(2) {
        let word = u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]);
        sum += u32::from(word);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Writes a test frame of wire size `size` (clamped to [`MIN_FRAME`]..=[`MAX_FRAME`], FCS
/// included) into `buf` and returns the number of bytes written (`size - 4`).
///
/// # Panics
/// If `buf` is shorter than the frame.
pub fn build(buf: &mut [u8], size: usize, marker: Marker) -> usize {
    let size = size.clamp(MIN_FRAME, MAX_FRAME) - FCS;
    let f = &mut buf[..size];
    f.fill(0);
    f[0..6].copy_from_slice(&DST_MAC);
    f[6..12].copy_from_slice(&SRC_MAC);
    f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    let ip_len = (size - 14) as u16;
    f[14] = 0x45;
    f[16..18].copy_from_slice(&ip_len.to_be_bytes());
    f[22] = 64;
    f[23] = 17;
    f[26..30].copy_from_slice(&[10, 78, (marker.flow >> 8) as u8, marker.flow as u8]);
    f[30..34].copy_from_slice(&[10, 79, 0, 1]);
    let csum = checksum(&f[14..34]);
    f[24..26].copy_from_slice(&csum.to_be_bytes());
    let sport = 10000 + (marker.flow % 50000) as u16;
    f[34..36].copy_from_slice(&sport.to_be_bytes());
    f[36..38].copy_from_slice(&9u16.to_be_bytes());
    f[38..40].copy_from_slice(&(ip_len - 20).to_be_bytes());
    let p = &mut f[PAYLOAD..];
    p[0..2].copy_from_slice(MAGIC);
    p[2..6].copy_from_slice(&marker.flow.to_be_bytes());
    p[6..14].copy_from_slice(&marker.seq.to_be_bytes());
    p[14..18].copy_from_slice(&marker.stamp_ns.to_be_bytes());
    size
}

/// The marker of a test frame; `None` for any other frame.
pub fn parse(frame: &[u8]) -> Option<Marker> {
    let p = frame.get(PAYLOAD..PAYLOAD + PAYLOAD_HEADER)?;
    if frame.get(6..12)? != SRC_MAC
        || frame.get(12..14)? != [0x08, 0x00]
        || frame.get(23)? != &17
        || frame.get(36..38)? != [0, 9]
        || &p[0..2] != MAGIC
    {
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
        assert_eq!(
            build(&mut [0u8; 2048], 9000, m),
            1514,
            "clamped to 1518 with FCS"
        );
        buf[PAYLOAD] = b'x';
        assert_eq!(parse(&buf[..n]), None);
    }
}
