//! AF_XDP sockets: UMEM, the fill/completion/rx/tx rings, bind and wakeups.
//!
//! One file per concept: [`umem`] (the frame memory and the `Frame` token), [`ring`] (the four
//! rings' shared indices, kernel-mapped or heap-backed), [`socket`] (bind, wakeups, options),
//! and, for tests, `fake` (the kernel's side of the rings in userspace, with a fault
//! switch). These talk to the kernel with `unsafe`; everything above them is safe code.
//!
//! Design:
//! - one [`Umem`] per worker, shared by the sockets of every port the worker serves
//!   (`XDP_SHARED_UMEM`; each socket has its own fill and completion ring, which the kernel
//!   allows for different devices and queues since 5.10). Forwarding then hands a received
//!   descriptor to another port's TX ring: no frame data is copied in userspace;
//! - `XDP_USE_NEED_WAKEUP` always: the kernel says when it needs a `sendto` or `poll`;
//! - `XDP_USE_SG` when the caller asks for multi-buffer (the socket that registers the UMEM
//!   binds with it, and every socket sharing the UMEM inherits it): a packet larger than a
//!   frame is then a chain of descriptors, each but the last marked `XDP_PKT_CONTD`
//!   ([`Frame::continues`]), on rx and tx alike;
//! - zero-copy is asked for first; when the driver refuses (veth, for one) the caller rebuilds
//!   in copy mode and logs it (see [`BindMode`]).
//!
//! Ring indices are cached as in libxdp; the shared producer/consumer words are touched with
//! acquire/release only when the cache runs out.
#![allow(unsafe_code)]

use std::io;

/// Size of one UMEM frame (chunk). Frames up to `FRAME_SIZE - 256` bytes fit (the kernel keeps
/// `XDP_PACKET_HEADROOM` in front of received data in copy mode).
pub const FRAME_SIZE: u32 = 2048;

/// Room the kernel keeps in front of received data in copy mode (`XDP_PACKET_HEADROOM`).
pub(crate) const XDP_PACKET_HEADROOM: u32 = 256;

/// Errors of the AF_XDP layer.
#[derive(Debug, thiserror::Error)]
pub enum XskError {
    /// A system call failed.
    #[error("{call} failed: {source}")]
    Sys {
        /// The call and what it was for.
        call: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A ring size that is not a power of two.
    #[error("{ring} ring size {size} is not a power of two")]
    RingSize {
        /// Which ring.
        ring: &'static str,
        /// The size asked for.
        size: u32,
    },
}

pub(crate) fn last_error(call: &'static str) -> XskError {
    XskError::Sys {
        call,
        source: io::Error::last_os_error(),
    }
}

/// Ring sizes for one socket; each a power of two.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RingSizes {
    /// Fill ring: free frames handed to the kernel for receiving.
    pub fill: u32,
    /// Completion ring: frames the kernel has finished transmitting.
    pub completion: u32,
    /// Receive ring.
    pub rx: u32,
    /// Transmit ring.
    pub tx: u32,
}

impl Default for RingSizes {
    fn default() -> Self {
        // A generous fill ring: with 2048 entries a single receiver lost up to a third of the
        // frames on veth; 4096 and more keeps fill-ring-empty drops rare.
        Self {
            fill: 4096,
            completion: 4096,
            rx: 4096,
            tx: 4096,
        }
    }
}

/// How a socket is bound.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BindMode {
    /// The driver DMAs straight into the UMEM.
    ZeroCopy,
    /// The kernel copies between its buffers and the UMEM (veth, generic XDP).
    Copy,
}

impl std::fmt::Display for BindMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BindMode::ZeroCopy => "zero-copy",
            BindMode::Copy => "copy",
        })
    }
}

#[cfg(any(test, feature = "testing"))]
pub mod fake;
pub mod ring;
pub mod socket;
pub mod umem;

pub use ring::{ConsumerRing, ProducerRing};
pub use socket::{
    is_busy, is_invalid_argument, is_zero_copy_unsupported, wait_readable, Desc, Kick, XskSocket,
    XskStats,
};
pub use umem::{Frame, Umem};
