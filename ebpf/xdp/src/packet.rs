//! The packet of an XDP context as [`FrameBytes`], so the shared flow hash reads it: the
//! fixed-offset head directly (one bounds check against `data_end`), every read at an offset
//! computed from the headers through `bpf_xdp_load_bytes`, which checks its bounds itself
//! (the verifier cannot follow a packet pointer whose offset went through the header walk).

use aya_ebpf::{bindings::xdp_md, helpers::bpf_xdp_load_bytes, programs::XdpContext};
use xlagg_common::hash::FrameBytes;

/// A packet being processed.
pub struct Packet {
    /// The program's context.
    pub ctx: *mut xdp_md,
    /// `data`.
    pub start: usize,
    /// `data_end`.
    pub end: usize,
}

impl Packet {
    /// The packet of `ctx`.
    #[inline(always)]
    pub fn of(ctx: &XdpContext) -> Self {
        Self {
            ctx: ctx.ctx,
            start: ctx.data(),
            end: ctx.data_end(),
        }
    }

    /// `N` bytes at `at`, if they lie inside the packet.
    #[inline(always)]
    fn read<const N: usize>(&self, at: usize) -> Option<[u8; N]> {
        let mut buf = [0u8; N];
        if at > 0xffff {
            return None;
        }
        // SAFETY: the helper writes at most N bytes into `buf`, which has N; it fails, and
        // writes nothing we use, when [at, at + N) is not inside the packet.
        let rc =
            unsafe { bpf_xdp_load_bytes(self.ctx, at as u32, buf.as_mut_ptr().cast(), N as u32) };
        (rc == 0).then_some(buf)
    }
}

impl FrameBytes for Packet {
    #[inline(always)]
    fn byte(&self, at: usize) -> Option<u8> {
        self.read::<1>(at).map(|b| b[0])
    }

    #[inline(always)]
    fn be16(&self, at: usize) -> Option<u16> {
        self.read::<2>(at).map(u16::from_be_bytes)
    }

    #[inline(always)]
    fn be32(&self, at: usize) -> Option<u32> {
        self.read::<4>(at).map(u32::from_be_bytes)
    }

    #[inline(always)]
    fn be64(&self, at: usize) -> Option<u64> {
        self.read::<8>(at).map(u64::from_be_bytes)
    }

    #[inline(always)]
    fn head(&self) -> Option<[u8; 38]> {
        if self.start + 38 > self.end {
            return None;
        }
        // SAFETY: [data, data + 38) lies inside [data, data_end), checked just above.
        Some(unsafe { *(self.start as *const [u8; 38]) })
    }
}
