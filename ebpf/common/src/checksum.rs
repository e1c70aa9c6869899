//! The Internet checksum (RFC 1071), the one every frame xlagg builds or checks uses: IPv4
//! headers, UDP over IPv4 (micro-BFD), ICMPv6 with its pseudo-header (probes, unsolicited
//! neighbour advertisements) and the benchmark's test frames.

/// The 16-bit one's complement sum of `chunks` taken as one byte string (an odd byte at the
/// end of a chunk pairs with the first byte of the next, as if they were contiguous), added
/// to `sum` (another such sum, or 0), folded, without the final complement.
pub fn ones_complement_sum(chunks: &[&[u8]], sum: u16) -> u16 {
    let mut total = u64::from(sum);
    let mut odd: Option<u8> = None;
    for chunk in chunks {
        let mut bytes = *chunk;
        if let (Some(high), Some((&low, rest))) = (odd, bytes.split_first()) {
            total += u64::from(u16::from_be_bytes([high, low]));
            odd = None;
            bytes = rest;
        }
        let mut pairs = bytes.chunks_exact(2);
        for pair in &mut pairs {
            total += u64::from(u16::from_be_bytes([pair[0], pair[1]]));
        }
        if let [last] = pairs.remainder() {
            odd = Some(*last);
        }
    }
    if let Some(high) = odd {
        total += u64::from(high) << 8;
    }
    while total > 0xffff {
        total = (total & 0xffff) + (total >> 16);
    }
    total as u16
}

/// The checksum to write into a header whose checksum field is zero in `chunks`: the
/// complement of their one's complement sum.
pub fn checksum(chunks: &[&[u8]]) -> u16 {
    !ones_complement_sum(chunks, 0)
}

/// Whether `chunks`, checksum field included, verify (their sum is all ones).
pub fn verifies(chunks: &[&[u8]]) -> bool {
    ones_complement_sum(chunks, 0) == 0xffff
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ipv4_header_from_rfc_1071s_example_sums_as_published() {
        // The header of RFC 1071's and many texts' worked example: checksum 0xb861.
        let mut h = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(checksum(&[&h]), 0xb861);
        h[10..12].copy_from_slice(&0xb861u16.to_be_bytes());
        assert!(verifies(&[&h]));
        h[0] ^= 1;
        assert!(!verifies(&[&h]));
    }

    #[test]
    fn chunks_sum_as_the_bytes_they_make_together() {
        let bytes: [u8; 11] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 0xfe, 0xff];
        let whole = checksum(&[&bytes]);
        for cut in 0..=bytes.len() {
            for cut2 in cut..=bytes.len() {
                let parts = [&bytes[..cut], &bytes[cut..cut2], &bytes[cut2..]];
                assert_eq!(checksum(&parts), whole, "{cut} {cut2}");
            }
        }
        assert_eq!(checksum(&[]), 0xffff);
    }
}
