//! Flow hashing over the header layers chosen by `lagghash` (l2, l3, l4), as FreeBSD lagg does.
//!
//! One pass over the headers, bounds-checked reads only: a short or malformed frame hashes over
//! whatever part of it is well formed and never panics.
//!
//! - l2: destination and source MAC, and the VLAN id of the first 802.1Q/802.1ad tag;
//! - l3: IPv4 or IPv6 source and destination addresses;
//! - l4: TCP, UDP or SCTP source and destination ports, except for fragments (a non-first
//!   fragment has no ports; hashing the first fragment with ports and the rest without would split
//!   a datagram over two members).

use std::fmt;

/// Which header layers feed the flow hash (lagg's `lagghash`).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct HashLayers(u8);

impl HashLayers {
    /// MAC addresses and VLAN id.
    pub const L2: HashLayers = HashLayers(xlagg_common::hash::L2);
    /// IPv4/IPv6 addresses.
    pub const L3: HashLayers = HashLayers(xlagg_common::hash::L3);
    /// TCP/UDP/SCTP ports.
    pub const L4: HashLayers = HashLayers(xlagg_common::hash::L4);
    /// lagg's default: `l2,l3,l4`.
    pub const DEFAULT: HashLayers = HashLayers(7);

    /// The union of two sets of layers.
    pub const fn with(self, other: HashLayers) -> HashLayers {
        HashLayers(self.0 | other.0)
    }

    /// Whether every layer of `other` is in `self`.
    pub const fn contains(self, other: HashLayers) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether no layer is chosen.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Parses lagg's comma-separated form, e.g. `l2,l3,l4` or `l3,l4`.
    ///
    /// # Errors
    /// Names the first item that is not `l2`, `l3` or `l4`, or says the list is empty.
    pub fn parse(text: &str) -> Result<HashLayers, String> {
        let mut layers = HashLayers(0);
        for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            layers = layers.with(match item.to_ascii_lowercase().as_str() {
                "l2" => HashLayers::L2,
                "l3" => HashLayers::L3,
                "l4" => HashLayers::L4,
                other => {
                    return Err(format!(
                        "unknown hash layer '{other}': use any of l2, l3, l4 separated by commas"
                    ))
                }
            });
        }
        if layers.is_empty() {
            return Err("no hash layer given: use any of l2, l3, l4 separated by commas".into());
        }
        Ok(layers)
    }
}

impl Default for HashLayers {
    fn default() -> Self {
        HashLayers::DEFAULT
    }
}

impl fmt::Display for HashLayers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for (layer, name) in [(Self::L2, "l2"), (Self::L3, "l3"), (Self::L4, "l4")] {
            if self.contains(layer) {
                if !first {
                    f.write_str(",")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for HashLayers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HashLayers({self})")
    }
}

/// Hashes one frame over `layers`, keyed by `seed`: the one hash of both engines
/// ([`xlagg_common::hash`]), so a flow takes the same member in the workers and in the XDP
/// engine.
///
/// The same frame headers always give the same value for the same seed and layers. Never panics,
/// whatever the frame holds.
#[inline]
pub fn hash_frame(frame: &[u8], layers: HashLayers, seed: u64) -> u32 {
    xlagg_common::hash::hash_frame(frame, layers.0, seed)
}

/// The general path alone (tests check the fast path against it).
#[cfg(test)]
fn hash_frame_general(frame: &[u8], layers: HashLayers, seed: u64) -> u32 {
    xlagg_common::hash::hash_general(frame, layers.0, seed)
}

/// The set as the shared hash takes it (bits [`xlagg_common::hash::L2`], `L3`, `L4`).
impl HashLayers {
    /// The bit set.
    pub const fn bits(self) -> u8 {
        self.0
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// An Ethernet + IPv4 + UDP frame with the given addresses and ports.
    pub(crate) fn udp4(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16) -> Vec<u8> {
        let mut f = vec![0u8; 42];
        f[0..6].copy_from_slice(&[0x02, 0, 0, 0, 0, 2]);
        f[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 1]);
        f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
        f[14] = 0x45;
        f[16..18].copy_from_slice(&28u16.to_be_bytes());
        f[22] = 64;
        f[23] = 17;
        f[26..30].copy_from_slice(&src);
        f[30..34].copy_from_slice(&dst);
        f[34..36].copy_from_slice(&sport.to_be_bytes());
        f[36..38].copy_from_slice(&dport.to_be_bytes());
        f
    }

    #[test]
    fn layers_parse_and_display_round_trip() {
        for text in ["l2", "l3", "l4", "l2,l3", "l3,l4", "l2,l3,l4"] {
            let layers = HashLayers::parse(text).expect(text);
            assert_eq!(layers.to_string(), text);
        }
        assert_eq!(
            HashLayers::parse(" L4 , l3 ").map(|l| l.to_string()),
            Ok("l3,l4".into())
        );
        assert_eq!(
            HashLayers::parse("l2,l5"),
            Err("unknown hash layer 'l5': use any of l2, l3, l4 separated by commas".into())
        );
        assert!(HashLayers::parse("").is_err());
    }

    #[test]
    fn l4_distinguishes_ports_and_l3_does_not() {
        let a = udp4([10, 0, 0, 1], [10, 0, 0, 2], 1000, 53);
        let b = udp4([10, 0, 0, 1], [10, 0, 0, 2], 1001, 53);
        assert_ne!(
            hash_frame(&a, HashLayers::DEFAULT, 0),
            hash_frame(&b, HashLayers::DEFAULT, 0)
        );
        assert_eq!(
            hash_frame(&a, HashLayers::L3, 0),
            hash_frame(&b, HashLayers::L3, 0)
        );
        assert_eq!(
            hash_frame(&a, HashLayers::L2, 0),
            hash_frame(&b, HashLayers::L2, 0)
        );
    }

    #[test]
    fn fragments_hash_without_ports() {
        let mut a = udp4([10, 0, 0, 1], [10, 0, 0, 2], 1000, 53);
        let mut b = udp4([10, 0, 0, 1], [10, 0, 0, 2], 2000, 53);
        // More-fragments bit set on both: ports must not matter.
        a[20] = 0x20;
        b[20] = 0x20;
        assert_eq!(
            hash_frame(&a, HashLayers::DEFAULT, 0),
            hash_frame(&b, HashLayers::DEFAULT, 0)
        );
    }

    #[test]
    fn vlan_id_feeds_l2_and_tag_is_skipped_for_l3() {
        let plain = udp4([10, 0, 0, 1], [10, 0, 0, 2], 1000, 53);
        let tagged = |vid: u16| {
            let mut f = plain[..12].to_vec();
            f.extend_from_slice(&0x8100u16.to_be_bytes());
            f.extend_from_slice(&vid.to_be_bytes());
            f.extend_from_slice(&plain[12..]);
            f
        };
        assert_ne!(
            hash_frame(&tagged(10), HashLayers::L2, 0),
            hash_frame(&tagged(20), HashLayers::L2, 0)
        );
        assert_eq!(
            hash_frame(&tagged(10), HashLayers::L3.with(HashLayers::L4), 0),
            hash_frame(&plain, HashLayers::L3.with(HashLayers::L4), 0)
        );
    }

    #[test]
    fn ipv6_addresses_and_ports_count() {
        let mk = |last: u8, sport: u16| {
            let mut f = vec![0u8; 14 + 40 + 8];
            f[12..14].copy_from_slice(&0x86ddu16.to_be_bytes());
            f[14] = 0x60;
            f[20] = 17;
            f[21] = 64;
            f[22..38].copy_from_slice(&[
                0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, last,
            ]);
            f[38..54]
                .copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9]);
            f[54..56].copy_from_slice(&sport.to_be_bytes());
            f[56..58].copy_from_slice(&53u16.to_be_bytes());
            f
        };
        assert_ne!(
            hash_frame(&mk(1, 7), HashLayers::L3, 0),
            hash_frame(&mk(2, 7), HashLayers::L3, 0)
        );
        assert_ne!(
            hash_frame(&mk(1, 7), HashLayers::L4, 0),
            hash_frame(&mk(1, 8), HashLayers::L4, 0)
        );
    }

    #[test]
    fn the_fast_path_agrees_with_the_general_one() {
        for layers in ["l2", "l3", "l4", "l2,l3", "l3,l4", "l2,l3,l4"] {
            let layers = HashLayers::parse(layers).expect("layers");
            for (sport, frag) in [(1000u16, 0u8), (2000, 0x20), (3000, 0)] {
                let mut f = udp4([10, 0, 0, 1], [10, 0, 0, 2], sport, 53);
                f[20] = frag;
                assert_eq!(
                    hash_frame(&f, layers, 9),
                    hash_frame_general(&f, layers, 9),
                    "{layers} {sport}"
                );
                f[23] = 1; // ICMP: no ports
                assert_eq!(hash_frame(&f, layers, 9), hash_frame_general(&f, layers, 9));
            }
        }
    }

    #[test]
    fn every_truncation_of_a_frame_hashes_without_panic() {
        let f = udp4([10, 0, 0, 1], [10, 0, 0, 2], 1000, 53);
        for len in 0..=f.len() {
            let _ = hash_frame(&f[..len], HashLayers::DEFAULT, 1);
        }
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            let _ = hash_frame(&bytes, HashLayers::DEFAULT, 7);
        }

        #[test]
        fn both_paths_agree_on_any_ipv4_header(mut bytes in proptest::collection::vec(proptest::num::u8::ANY, 38..120), bits in 1u8..8) {
            bytes[12] = 0x08;
            bytes[13] = 0x00;
            bytes[14] = 0x45;
            // Every non-empty set: l2, l3, l4 alone and each combination.
            let layers = HashLayers(bits);
            proptest::prop_assert_eq!(hash_frame(&bytes, layers, 3), hash_frame_general(&bytes, layers, 3));
        }

        #[test]
        fn a_layer_left_out_never_changes_the_hash(mut bytes in proptest::collection::vec(proptest::num::u8::ANY, 60..120), bits in 1u8..8, noise in proptest::num::u8::ANY) {
            // An untagged IPv4/UDP frame; a byte of a layer the set leaves out is changed.
            bytes[12] = 0x08;
            bytes[13] = 0x00;
            bytes[14] = 0x45;
            bytes[20] = 0;
            bytes[21] = 0;
            bytes[23] = 17;
            let layers = HashLayers(bits);
            let before = hash_frame(&bytes, layers, 3);
            let mut changed = bytes.clone();
            if !layers.contains(HashLayers::L2) {
                changed[0] ^= noise | 1;
            }
            if !layers.contains(HashLayers::L3) {
                changed[26] ^= noise | 1;
            }
            if !layers.contains(HashLayers::L4) {
                changed[34] ^= noise | 1;
            }
            proptest::prop_assert_eq!(before, hash_frame(&changed, layers, 3));
        }
    }
}
