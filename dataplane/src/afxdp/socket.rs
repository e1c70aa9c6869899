//! The AF_XDP socket: open and bind over a UMEM, map its rings, wake the kernel, read its
//! statistics.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use super::ring::{ConsumerRing, ProducerRing, RingMap};
use super::umem::{Frame, Umem};
use super::{last_error, BindMode, RingSizes, XskError, FRAME_SIZE};

/// What a tx wakeup achieved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kick {
    /// The kernel took everything on the ring.
    Done,
    /// The per-call budget ran out and frames remain: call again.
    Again,
    /// Transient: the device is busy or out of buffers; try later.
    Busy,
    /// The kernel dropped a frame (EBUSY in copy mode): the device has no carrier, or it
    /// took the frame and its receiver had no room (a veth whose peer's ring is full). Not a
    /// sign of a dead link by itself.
    Refused,
    /// The device is down: what the ring holds stays there until it is up.
    Down,
    /// An unexpected error.
    Failed,
}

/// A frame descriptor on the rx and tx rings.
pub type Desc = libc::xdp_desc;

/// Kernel statistics of one socket (`XDP_STATISTICS`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XskStats {
    /// Dropped for reasons other than the ones below.
    pub rx_dropped: u64,
    /// Invalid descriptors on the fill ring.
    pub rx_invalid_descs: u64,
    /// Invalid descriptors on the tx ring.
    pub tx_invalid_descs: u64,
    /// Dropped because the rx ring was full.
    pub rx_ring_full: u64,
    /// Times the kernel found the fill ring empty.
    pub rx_fill_ring_empty: u64,
    /// Times the kernel found the tx ring empty.
    pub tx_ring_empty: u64,
}

/// An AF_XDP socket bound to one queue of one device, with its four rings.
#[derive(Debug)]
pub struct XskSocket {
    /// Free frames for the kernel to receive into.
    fill: ProducerRing<u64>,
    /// Frames the kernel has transmitted.
    completion: ConsumerRing<u64>,
    /// Received frames.
    rx: ConsumerRing<Desc>,
    /// Frames to transmit.
    tx: ProducerRing<Desc>,
    fd: OwnedFd,
    ifindex: u32,
    queue: u32,
    mode: BindMode,
    multi_buffer: bool,
    /// The fake kernel behind heap rings (tests): wakeups go to it.
    #[cfg(any(test, feature = "testing"))]
    fake: Option<std::sync::Arc<super::fake::FakeKernel>>,
}

fn setsockopt<T>(
    fd: RawFd,
    name: libc::c_int,
    value: &T,
    what: &'static str,
) -> Result<(), XskError> {
    // SAFETY: `value` points to a live T of the size passed.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_XDP,
            name,
            (value as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(last_error(what));
    }
    Ok(())
}

fn getsockopt<T: Default>(fd: RawFd, name: libc::c_int, what: &'static str) -> Result<T, XskError> {
    let mut value = T::default();
    let mut len = std::mem::size_of::<T>() as libc::socklen_t;
    // SAFETY: the kernel writes at most `len` bytes into `value`.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_XDP,
            name,
            (&mut value as *mut T).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(last_error(what));
    }
    Ok(value)
}

impl XskSocket {
    /// Opens a socket on `ifindex`/`queue` over `umem`.
    ///
    /// With `share_with: None` this socket registers the UMEM and is bound in `mode`; with
    /// `Some(owner)` it shares the owner's UMEM (and so its bind mode) and gets fill and
    /// completion rings of its own. `multi_buffer` (owner only; sharers inherit it) binds with
    /// `XDP_USE_SG`: packets larger than a frame come and go as descriptor chains.
    ///
    /// # Errors
    /// Any failing socket call, named; a bind error for zero-copy on a driver without it
    /// (EOPNOTSUPP) is the caller's cue to retry in copy mode.
    pub fn open(
        umem: &Umem,
        share_with: Option<&XskSocket>,
        ifindex: u32,
        queue: u32,
        sizes: RingSizes,
        mode: BindMode,
        multi_buffer: bool,
    ) -> Result<Self, XskError> {
        for (ring, size) in [
            ("fill", sizes.fill),
            ("completion", sizes.completion),
            ("rx", sizes.rx),
            ("tx", sizes.tx),
        ] {
            if !size.is_power_of_two() {
                return Err(XskError::RingSize { ring, size });
            }
        }
        // SAFETY: plain socket(2); the result is checked before it is wrapped.
        let raw = unsafe { libc::socket(libc::AF_XDP, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if raw < 0 {
            return Err(last_error("socket(AF_XDP)"));
        }
        // SAFETY: `raw` is a fresh descriptor owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let raw = fd.as_raw_fd();
        if share_with.is_none() {
            let reg = libc::xdp_umem_reg {
                addr: umem.area.as_ptr() as u64,
                len: umem.len as u64,
                chunk_size: FRAME_SIZE,
                headroom: 0,
                flags: 0,
                tx_metadata_len: 0,
            };
            setsockopt(raw, libc::XDP_UMEM_REG, &reg, "setsockopt(XDP_UMEM_REG)")?;
        }
        let [fill, completion, rx, tx] = map_rings(raw, sizes)?;
        let (flags, shared_fd, mode, multi_buffer) = match share_with {
            // The kernel takes copy/zero-copy, need-wakeup and multi-buffer from the UMEM's
            // owner.
            Some(owner) => (
                libc::XDP_SHARED_UMEM,
                owner.fd.as_raw_fd() as u32,
                owner.mode,
                owner.multi_buffer,
            ),
            None => {
                let mode_flag = match mode {
                    BindMode::ZeroCopy => libc::XDP_ZEROCOPY,
                    BindMode::Copy => libc::XDP_COPY,
                };
                let sg = if multi_buffer { libc::XDP_USE_SG } else { 0 };
                (
                    mode_flag | libc::XDP_USE_NEED_WAKEUP | sg,
                    0,
                    mode,
                    multi_buffer,
                )
            }
        };
        bind(raw, flags, ifindex, queue, shared_fd)?;
        Ok(Self {
            fill: ProducerRing::new(fill, sizes.fill),
            completion: ConsumerRing::new(completion, sizes.completion),
            rx: ConsumerRing::new(rx, sizes.rx),
            tx: ProducerRing::new(tx, sizes.tx),
            fd,
            ifindex,
            queue,
            mode,
            multi_buffer,
            #[cfg(any(test, feature = "testing"))]
            fake: None,
        })
    }

    /// A socket over heap rings whose kernel side `fake` plays (tests): wakeups go to it, the
    /// descriptor `fd` (an eventfd) is only there to be polled.
    #[cfg(any(test, feature = "testing"))]
    pub(super) fn over_fake(
        fake: std::sync::Arc<super::fake::FakeKernel>,
        rings: [RingMap; 4],
        sizes: RingSizes,
        ifindex: u32,
        multi_buffer: bool,
    ) -> Result<Self, XskError> {
        // SAFETY: eventfd with constant flags; the result is checked.
        let raw = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if raw < 0 {
            return Err(last_error("eventfd (fake socket)"));
        }
        // SAFETY: `raw` is a new descriptor this socket now owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let [fill, completion, rx, tx] = rings;
        Ok(Self {
            fill: ProducerRing::new(fill, sizes.fill),
            completion: ConsumerRing::new(completion, sizes.completion),
            rx: ConsumerRing::new(rx, sizes.rx),
            tx: ProducerRing::new(tx, sizes.tx),
            fd,
            ifindex,
            queue: 0,
            mode: BindMode::Copy,
            multi_buffer,
            fake: Some(fake),
        })
    }

    /// Whether packets larger than a frame come and go as descriptor chains (`XDP_USE_SG`).
    pub fn multi_buffer(&self) -> bool {
        self.multi_buffer
    }

    /// Received frames ready to take, at most `want`.
    #[inline(always)]
    pub fn rx_available(&mut self, want: u32) -> u32 {
        self.rx.available(want)
    }

    /// Takes received entry `i` (below the last [`rx_available`](Self::rx_available)). A
    /// descriptor that does not lie inside one frame of `umem` (which the kernel never makes)
    /// comes back as `Err` with its frame, emptied, when the frame is `umem`'s.
    #[inline(always)]
    pub fn rx_take(&self, i: u32, umem: &Umem) -> Result<Frame, Option<Frame>> {
        let d = self.rx.read(i);
        if umem.contains(d.addr, d.len) {
            return Ok(Frame {
                addr: d.addr,
                len: d.len,
                options: d.options,
            });
        }
        let base = Umem::frame_base(d.addr);
        Err((base < umem.len as u64).then_some(Frame {
            addr: base,
            len: 0,
            options: 0,
        }))
    }

    /// Whether received entry `i` (below the last [`rx_available`](Self::rx_available)) is
    /// continued by the next one: read before taking, so that a packet is taken whole.
    #[inline(always)]
    pub fn rx_continues(&self, i: u32) -> bool {
        self.rx.read(i).options & libc::XDP_PKT_CONTD != 0
    }

    /// Hands `n` taken rx entries back to the kernel.
    #[inline(always)]
    pub fn rx_release(&mut self, n: u32) {
        self.rx.release(n);
    }

    /// Completed transmits ready to take, at most `want`.
    #[inline(always)]
    pub fn completion_available(&mut self, want: u32) -> u32 {
        self.completion.available(want)
    }

    /// Takes completion entry `i`: the frame, empty; `None` for an address outside `umem`.
    #[inline(always)]
    pub fn completion_take(&self, i: u32, umem: &Umem) -> Option<Frame> {
        let addr = Umem::frame_base(self.completion.read(i));
        (addr < umem.len as u64).then_some(Frame {
            addr,
            len: 0,
            options: 0,
        })
    }

    /// Hands `n` taken completion entries back to the kernel.
    #[inline(always)]
    pub fn completion_release(&mut self, n: u32) {
        self.completion.release(n);
    }

    /// Free fill ring slots, at most `want`.
    #[inline(always)]
    pub fn fill_free(&mut self, want: u32) -> u32 {
        self.fill.free(want)
    }

    /// Puts `frame` in fill slot `i` (below the last [`fill_free`](Self::fill_free)); the
    /// kernel owns it once submitted.
    #[inline(always)]
    pub fn fill_put(&mut self, i: u32, frame: Frame) {
        self.fill.write(i, Umem::frame_base(frame.addr));
    }

    /// Publishes `n` fill entries.
    #[inline(always)]
    pub fn fill_submit(&mut self, n: u32) {
        self.fill.submit(n);
    }

    /// Whether the kernel asks for a wakeup to take fill entries (zero-copy drivers).
    #[inline(always)]
    pub fn fill_needs_wakeup(&self) -> bool {
        self.fill.needs_wakeup()
    }

    /// Free tx ring slots, at most `want`.
    #[inline(always)]
    pub fn tx_free(&mut self, want: u32) -> u32 {
        self.tx.free(want)
    }

    /// Puts `frame` in tx slot `i` (below the last [`tx_free`](Self::tx_free)); the kernel
    /// owns it once submitted.
    #[inline(always)]
    pub fn tx_put(&mut self, i: u32, frame: Frame) {
        self.tx.write(
            i,
            Desc {
                addr: frame.addr,
                len: frame.len,
                options: frame.options,
            },
        );
    }

    /// Publishes `n` tx entries.
    #[inline(always)]
    pub fn tx_submit(&mut self, n: u32) {
        self.tx.submit(n);
    }

    /// Whether the kernel asks for a wakeup to transmit.
    #[inline(always)]
    pub fn tx_needs_wakeup(&self) -> bool {
        self.tx.needs_wakeup()
    }

    /// The device this socket is bound to.
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// The queue this socket is bound to.
    pub fn queue(&self) -> u32 {
        self.queue
    }

    /// Copy or zero-copy.
    pub fn mode(&self) -> BindMode {
        self.mode
    }

    /// Asks the kernel to transmit what the tx ring holds.
    ///
    /// In copy mode one call transmits at most the socket's budget (32 frames unless raised
    /// with [`set_tx_budget`](Self::set_tx_budget)) and answers EAGAIN when frames remain.
    #[inline]
    pub fn kick_tx(&self) -> Kick {
        #[cfg(any(test, feature = "testing"))]
        if let Some(fake) = &self.fake {
            return fake.kick_tx();
        }
        // SAFETY: sendto with no buffer and no address, as AF_XDP defines for a tx wakeup.
        let rc = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                std::ptr::null(),
                0,
                libc::MSG_DONTWAIT,
                std::ptr::null(),
                0,
            )
        };
        if rc >= 0 {
            return Kick::Done;
        }
        match io::Error::last_os_error().raw_os_error() {
            Some(libc::EAGAIN) => Kick::Again,
            Some(libc::EBUSY) => Kick::Refused,
            Some(libc::ENOBUFS) => Kick::Busy,
            Some(libc::ENETDOWN | libc::ENXIO) => Kick::Down,
            _ => Kick::Failed,
        }
    }

    /// Raises how many frames one `sendto` may transmit in copy mode
    /// (`XDP_MAX_TX_SKB_BUDGET`, Linux 6.16 and later). Returns false where the kernel does not
    /// have the option or refuses the value; the default budget (32) stays then.
    pub fn set_tx_budget(&self, frames: u32) -> bool {
        #[cfg(any(test, feature = "testing"))]
        if let Some(fake) = &self.fake {
            return fake.set_tx_budget(frames);
        }
        /// `XDP_MAX_TX_SKB_BUDGET` from linux/if_xdp.h (not in the libc crate yet).
        const XDP_MAX_TX_SKB_BUDGET: libc::c_int = 9;
        setsockopt(
            self.fd.as_raw_fd(),
            XDP_MAX_TX_SKB_BUDGET,
            &frames,
            "setsockopt(XDP_MAX_TX_SKB_BUDGET)",
        )
        .is_ok()
    }

    /// Wakes the kernel to fill the rx ring from the fill ring (zero-copy drivers ask for it).
    #[inline]
    pub fn kick_rx(&self) {
        #[cfg(any(test, feature = "testing"))]
        if let Some(fake) = &self.fake {
            return fake.kick_rx();
        }
        // SAFETY: recvfrom with no buffer, as AF_XDP defines for an rx wakeup.
        unsafe {
            libc::recvfrom(
                self.fd.as_raw_fd(),
                std::ptr::null_mut(),
                0,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            )
        };
    }

    /// Preferred busy polling: the kernel stops running this socket's NAPI from its softirq
    /// while the socket's owner polls it (each `recvfrom`/`sendto` runs it for up to `usec`
    /// microseconds, `budget` frames at a time), as long as the device defers its interrupts
    /// (`napi_defer_hard_irqs`, `gro_flush_timeout`).
    ///
    /// # Errors
    /// A kernel without preferred busy polling (before 5.11) or without CAP_NET_ADMIN.
    pub fn set_busy_poll(&self, usec: u32, budget: u32) -> Result<(), XskError> {
        /// From asm-generic/socket.h (not in the libc crate for every target).
        const SO_BUSY_POLL: libc::c_int = 46;
        const SO_PREFER_BUSY_POLL: libc::c_int = 69;
        const SO_BUSY_POLL_BUDGET: libc::c_int = 70;
        for (name, value, what) in [
            (SO_PREFER_BUSY_POLL, 1, "setsockopt(SO_PREFER_BUSY_POLL)"),
            (SO_BUSY_POLL, usec, "setsockopt(SO_BUSY_POLL)"),
            (
                SO_BUSY_POLL_BUDGET,
                budget,
                "setsockopt(SO_BUSY_POLL_BUDGET)",
            ),
        ] {
            let value = value as libc::c_int;
            // SAFETY: an int option of the size passed, on a live socket.
            let rc = unsafe {
                libc::setsockopt(
                    self.fd.as_raw_fd(),
                    libc::SOL_SOCKET,
                    name,
                    (&value as *const libc::c_int).cast(),
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                )
            };
            if rc != 0 {
                return Err(last_error(what));
            }
        }
        Ok(())
    }

    /// The kernel's counters for this socket.
    ///
    /// # Errors
    /// When `getsockopt(XDP_STATISTICS)` fails.
    pub fn stats(&self) -> Result<XskStats, XskError> {
        let s: XdpStatistics = getsockopt(
            self.fd.as_raw_fd(),
            libc::XDP_STATISTICS,
            "getsockopt(XDP_STATISTICS)",
        )?;
        Ok(XskStats {
            rx_dropped: s.0.rx_dropped,
            rx_invalid_descs: s.0.rx_invalid_descs,
            tx_invalid_descs: s.0.tx_invalid_descs,
            rx_ring_full: s.0.rx_ring_full,
            rx_fill_ring_empty: s.0.rx_fill_ring_empty_descs,
            tx_ring_empty: s.0.tx_ring_empty_descs,
        })
    }
}

impl AsRawFd for XskSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// Sizes the socket's four rings and maps them: fill, completion, rx, tx.
fn map_rings(raw: RawFd, sizes: RingSizes) -> Result<[RingMap; 4], XskError> {
    setsockopt(
        raw,
        libc::XDP_UMEM_FILL_RING,
        &sizes.fill,
        "setsockopt(XDP_UMEM_FILL_RING)",
    )?;
    setsockopt(
        raw,
        libc::XDP_UMEM_COMPLETION_RING,
        &sizes.completion,
        "setsockopt(XDP_UMEM_COMPLETION_RING)",
    )?;
    setsockopt(raw, libc::XDP_RX_RING, &sizes.rx, "setsockopt(XDP_RX_RING)")?;
    setsockopt(raw, libc::XDP_TX_RING, &sizes.tx, "setsockopt(XDP_TX_RING)")?;
    let off: libc::xdp_mmap_offsets = getsockopt_offsets(raw)?;
    let desc = std::mem::size_of::<Desc>();
    Ok([
        RingMap::map(
            raw,
            &off.fr,
            sizes.fill,
            8,
            libc::XDP_UMEM_PGOFF_FILL_RING as libc::off_t,
            "mmap (fill ring)",
        )?,
        RingMap::map(
            raw,
            &off.cr,
            sizes.completion,
            8,
            libc::XDP_UMEM_PGOFF_COMPLETION_RING as libc::off_t,
            "mmap (completion ring)",
        )?,
        RingMap::map(
            raw,
            &off.rx,
            sizes.rx,
            desc,
            libc::XDP_PGOFF_RX_RING,
            "mmap (rx ring)",
        )?,
        RingMap::map(
            raw,
            &off.tx,
            sizes.tx,
            desc,
            libc::XDP_PGOFF_TX_RING,
            "mmap (tx ring)",
        )?,
    ])
}

/// Binds socket `raw` to `ifindex`/`queue` with `flags` (and the UMEM owner's descriptor
/// when it shares one).
fn bind(raw: RawFd, flags: u16, ifindex: u32, queue: u32, shared_fd: u32) -> Result<(), XskError> {
    let addr = libc::sockaddr_xdp {
        sxdp_family: libc::AF_XDP as u16,
        sxdp_flags: flags,
        sxdp_ifindex: ifindex,
        sxdp_queue_id: queue,
        sxdp_shared_umem_fd: shared_fd,
    };
    // SAFETY: `addr` is a valid sockaddr_xdp of the size passed.
    let rc = unsafe {
        libc::bind(
            raw,
            (&addr as *const libc::sockaddr_xdp).cast(),
            std::mem::size_of::<libc::sockaddr_xdp>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(last_error("bind(AF_XDP)"));
    }
    Ok(())
}

struct XdpStatistics(libc::xdp_statistics);

impl Default for XdpStatistics {
    fn default() -> Self {
        Self(libc::xdp_statistics {
            rx_dropped: 0,
            rx_invalid_descs: 0,
            tx_invalid_descs: 0,
            rx_ring_full: 0,
            rx_fill_ring_empty_descs: 0,
            tx_ring_empty_descs: 0,
        })
    }
}

fn getsockopt_offsets(fd: RawFd) -> Result<libc::xdp_mmap_offsets, XskError> {
    let zero = libc::xdp_ring_offset {
        producer: 0,
        consumer: 0,
        desc: 0,
        flags: 0,
    };
    let mut off = libc::xdp_mmap_offsets {
        rx: zero,
        tx: zero,
        fr: zero,
        cr: zero,
    };
    let mut len = std::mem::size_of::<libc::xdp_mmap_offsets>() as libc::socklen_t;
    // SAFETY: the kernel writes at most `len` bytes into `off`.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_XDP,
            libc::XDP_MMAP_OFFSETS,
            (&mut off as *mut libc::xdp_mmap_offsets).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(last_error("getsockopt(XDP_MMAP_OFFSETS)"));
    }
    if (len as usize) < std::mem::size_of::<libc::xdp_mmap_offsets>() {
        return Err(XskError::Sys {
            call: "getsockopt(XDP_MMAP_OFFSETS)",
            source: io::Error::other(
                "kernel too old: no flags word in the ring offsets (need 5.4+)",
            ),
        });
    }
    Ok(off)
}

/// Waits until any of `sockets` (or `other`, e.g. a wakeup socket) has something to receive,
/// or `timeout_ms` passes.
pub fn wait_readable<'a>(
    sockets: impl Iterator<Item = &'a XskSocket>,
    other: Option<RawFd>,
    fds: &mut Vec<libc::pollfd>,
    timeout_ms: i32,
) {
    fds.clear();
    fds.extend(
        sockets
            .map(|s| s.fd.as_raw_fd())
            .chain(other)
            .map(|fd| libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            }),
    );
    // SAFETY: `fds` holds `fds.len()` initialised pollfd entries.
    unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
}

/// The OS error of a failed `bind`, if that is what `err` is.
fn bind_errno(err: &XskError) -> Option<i32> {
    match err {
        XskError::Sys {
            call: "bind(AF_XDP)",
            source,
        } => source.raw_os_error(),
        _ => None,
    }
}

/// Whether a bind error means the queue is still taken (a socket just closed there is
/// released by the kernel in the background): worth trying again shortly.
pub fn is_busy(err: &XskError) -> bool {
    bind_errno(err) == Some(libc::EBUSY)
}

/// Whether a bind error is EINVAL: a flag this kernel does not know (`XDP_USE_SG` before 6.6).
pub fn is_invalid_argument(err: &XskError) -> bool {
    bind_errno(err) == Some(libc::EINVAL)
}

/// Whether a bind error means "this driver cannot do zero-copy" (so copy mode may work).
pub fn is_zero_copy_unsupported(err: &XskError) -> bool {
    matches!(
        bind_errno(err),
        Some(libc::EOPNOTSUPP | libc::EINVAL | libc::EPROTONOSUPPORT)
    )
}
