//! The flow hash of both engines: the AF_XDP workers call it on a byte slice, the XDP engine
//! on the packet between `data` and `data_end`. One source, so a flow lands on the same
//! member whichever engine carries it (checked on byte vectors by running the XDP side
//! under `BPF_PROG_TEST_RUN`).
//!
//! Layers as FreeBSD lagg's `lagghash`:
//! - l2: destination and source MAC, and the VLAN id of the first 802.1Q/802.1ad tag;
//! - l3: IPv4 or IPv6 source and destination addresses;
//! - l4: TCP, UDP or SCTP ports, except for IPv4 fragments and IPv6 fragment headers (the
//!   first fragment has ports and the rest not: hashing them would split a datagram).
//!
//! One pass over the headers with bounds-checked reads only, so a short or malformed frame
//! hashes over what is well formed. Only 64-bit arithmetic (BPF has no 128-bit product):
//! the fields go into four lanes, each lane is multiplied by its own odd constant, the four
//! are folded together and finished with murmur3's 64-bit finaliser. No loop the verifier
//! cannot unroll, no panic path.

/// MAC addresses and VLAN id.
pub const L2: u8 = 1;
/// IPv4/IPv6 addresses.
pub const L3: u8 = 2;
/// TCP/UDP/SCTP ports.
pub const L4: u8 = 4;

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86dd;
const ETHERTYPE_VLAN: u16 = 0x8100;
const ETHERTYPE_QINQ: u16 = 0x88a8;
const IPPROTO_TCP: u8 = 6;
const IPPROTO_UDP: u8 = 17;
const IPPROTO_SCTP: u8 = 132;

/// Bounds-checked big-endian reads from a frame; `None` past its end.
pub trait FrameBytes {
    /// The byte at `at`.
    fn byte(&self, at: usize) -> Option<u8>;
    /// Two bytes at `at`.
    fn be16(&self, at: usize) -> Option<u16>;
    /// Four bytes at `at`.
    fn be32(&self, at: usize) -> Option<u32>;
    /// Eight bytes at `at`.
    fn be64(&self, at: usize) -> Option<u64>;
    /// The first 38 bytes (Ethernet + IPv4 without options + ports), if the frame has them.
    fn head(&self) -> Option<[u8; 38]>;
}

impl FrameBytes for [u8] {
    #[inline(always)]
    fn byte(&self, at: usize) -> Option<u8> {
        self.get(at).copied()
    }

    #[inline(always)]
    fn be16(&self, at: usize) -> Option<u16> {
        let b = self.get(at..at.checked_add(2)?)?;
        Some(u16::from_be_bytes([b[0], b[1]]))
    }

    #[inline(always)]
    fn be32(&self, at: usize) -> Option<u32> {
        let b = self.get(at..at.checked_add(4)?)?;
        Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    #[inline(always)]
    fn be64(&self, at: usize) -> Option<u64> {
        let b = self.get(at..at.checked_add(8)?)?;
        Some(u64::from_be_bytes([
            b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7],
        ]))
    }

    #[inline(always)]
    fn head(&self) -> Option<[u8; 38]> {
        self.first_chunk::<38>().copied()
    }
}

/// murmur3's 64-bit finaliser: every input bit reaches every output bit.
#[inline(always)]
const fn fmix(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^ (k >> 33)
}

/// Odd multipliers of the lanes.
const M: [u64; 4] = [
    0x9e37_79b9_7f4a_7c15,
    0xc2b2_ae3d_27d4_eb4f,
    0x1656_67b1_9e37_79f9,
    0xd6e8_feb8_6659_fd93,
];

const K: [u64; 4] = [
    0x243f_6a88_85a3_08d3,
    0x1319_8a2e_0370_7344,
    0xa409_3822_299f_31d0,
    0x082e_fa98_ec4e_6c89,
];

/// The hashed fields as four lanes, one kind of field each.
#[derive(Clone, Copy)]
struct Mixer {
    lanes: [u64; 4],
    seed: u64,
}

impl Mixer {
    #[inline(always)]
    const fn new(seed: u64) -> Self {
        Self {
            lanes: [0; 4],
            seed: seed ^ 0x2545_f491_4f6c_dd1d,
        }
    }

    #[inline(always)]
    fn absorb(&mut self, lane: usize, word: u64) {
        if let Some(l) = self.lanes.get_mut(lane) {
            *l = l.rotate_left(29) ^ word;
        }
    }

    #[inline(always)]
    fn finish(self) -> u32 {
        // Each lane through its own odd multiplier (four independent products), folded
        // together, then one finaliser: six 64-bit multiplies, four of them in parallel.
        let [a, b, c, d] = self.lanes;
        let x = (a ^ K[0] ^ self.seed).wrapping_mul(M[0])
            ^ (b ^ K[1]).wrapping_mul(M[1]).rotate_left(31);
        let y = (c ^ K[2] ^ self.seed.rotate_left(32)).wrapping_mul(M[2])
            ^ (d ^ K[3]).wrapping_mul(M[3]).rotate_left(29);
        let h = fmix(x ^ y.rotate_left(17));
        (h ^ (h >> 32)) as u32
    }
}

/// Hashes one frame over `layers` (a set of [`L2`], [`L3`], [`L4`]), keyed by `seed`.
///
/// The same headers give the same value for the same seed and layers, whatever follows them;
/// never panics.
#[inline(always)]
pub fn hash_frame<F: FrameBytes + ?Sized>(frame: &F, layers: u8, seed: u64) -> u32 {
    // Untagged IPv4 without options, nearly all traffic: every field at a fixed offset inside
    // the first 38 bytes, one length check. It feeds the mixer exactly what the general path
    // would, so a flow hashes the same whichever path its frames take.
    if let Some(h) = frame.head() {
        if h[12] == 0x08 && h[13] == 0x00 && h[14] == 0x45 {
            let mut m = Mixer::new(seed);
            if layers & L2 != 0 {
                m.absorb(
                    0,
                    u64::from_be_bytes([h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7]]),
                );
                m.absorb(
                    1,
                    (u32::from_be_bytes([h[8], h[9], h[10], h[11]]) as u64) << 16,
                );
            }
            if layers & L3 != 0 {
                m.absorb(
                    2,
                    u64::from_be_bytes([h[26], h[27], h[28], h[29], h[30], h[31], h[32], h[33]]),
                );
            }
            let fragment = u16::from_be_bytes([h[20], h[21]]) & 0x3fff != 0;
            let proto = h[23];
            if layers & L4 != 0
                && !fragment
                && matches!(proto, IPPROTO_TCP | IPPROTO_UDP | IPPROTO_SCTP)
            {
                let ports = u32::from_be_bytes([h[34], h[35], h[36], h[37]]);
                m.absorb(3, ports as u64 | (proto as u64) << 32);
            }
            return m.finish();
        }
    }
    hash_general(frame, layers, seed)
}

/// Any frame: VLAN tags, IPv4 options, IPv6 extension headers, truncation. Public so tests
/// can check that [`hash_frame`]'s fast path agrees with it.
#[inline(always)]
pub fn hash_general<F: FrameBytes + ?Sized>(frame: &F, layers: u8, seed: u64) -> u32 {
    let mut m = Mixer::new(seed);
    let Some(mut ethertype) = frame.be16(12) else {
        return m.finish();
    };
    let mut offset = 14;
    let mut vlan = 0u16;
    // The first tag gives the VLAN id; up to two tags are skipped (802.1ad outer, 802.1Q).
    if ethertype == ETHERTYPE_VLAN || ethertype == ETHERTYPE_QINQ {
        if let (Some(tci), Some(inner)) = (frame.be16(14), frame.be16(16)) {
            vlan = tci & 0x0fff;
            ethertype = inner;
            offset = 18;
            if ethertype == ETHERTYPE_VLAN || ethertype == ETHERTYPE_QINQ {
                if let Some(inner) = frame.be16(20) {
                    ethertype = inner;
                    offset = 22;
                }
            }
        }
    }
    if layers & L2 != 0 {
        // Destination and source MAC as one u64 and one u32, with the VLAN id.
        m.absorb(0, frame.be64(0).unwrap_or(0));
        m.absorb(1, (frame.be32(8).unwrap_or(0) as u64) << 16 | vlan as u64);
    }
    if layers & (L3 | L4) == 0 {
        return m.finish();
    }
    let (l4_proto, l4_offset) = if ethertype == ETHERTYPE_IPV4 {
        let Some(vihl) = frame.byte(offset) else {
            return m.finish();
        };
        if vihl >> 4 != 4 {
            return m.finish();
        }
        let ihl = (vihl & 0x0f) as usize * 4;
        if layers & L3 != 0 {
            if let Some(addrs) = frame.be64(offset + 12) {
                m.absorb(2, addrs);
            }
        }
        let fragment = match frame.be16(offset + 6) {
            Some(f) => f & 0x3fff != 0,
            None => true,
        };
        let proto = frame.byte(offset + 9).unwrap_or(0);
        if fragment || ihl < 20 {
            return m.finish();
        }
        (proto, offset + ihl)
    } else if ethertype == ETHERTYPE_IPV6 {
        if layers & L3 != 0 {
            // Source into one lane, destination into another.
            if let Some(w) = frame.be64(offset + 8) {
                m.absorb(2, w);
            }
            if let Some(w) = frame.be64(offset + 16) {
                m.absorb(2, w);
            }
            if let Some(w) = frame.be64(offset + 24) {
                m.absorb(1, w);
            }
            if let Some(w) = frame.be64(offset + 32) {
                m.absorb(1, w);
            }
        }
        let Some(mut next) = frame.byte(offset + 6) else {
            return m.finish();
        };
        let mut at = offset + 40;
        // A bounded number of extension headers to the transport header.
        let mut hops = 0;
        while hops < 4 {
            hops += 1;
            let step = match next {
                // Hop-by-hop, routing, destination options: (len + 1) * 8 bytes.
                0 | 43 | 60 => 8,
                // Authentication header: (len + 2) * 4 bytes.
                51 => 4,
                // Fragment header: no ports.
                44 => return m.finish(),
                _ => break,
            };
            let (Some(nh), Some(len)) = (frame.byte(at), frame.byte(at + 1)) else {
                return m.finish();
            };
            next = nh;
            at += if step == 8 {
                (len as usize + 1) * 8
            } else {
                (len as usize + 2) * 4
            };
        }
        (next, at)
    } else {
        return m.finish();
    };
    if layers & L4 != 0 && matches!(l4_proto, IPPROTO_TCP | IPPROTO_UDP | IPPROTO_SCTP) {
        if let Some(ports) = frame.be32(l4_offset) {
            m.absorb(3, ports as u64 | (l4_proto as u64) << 32);
        }
    }
    m.finish()
}
