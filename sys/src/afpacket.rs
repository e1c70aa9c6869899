//! AF_PACKET sockets bound to one interface: the control path's way to send and receive frames
//! that never reach the workers (slow protocols), and the test tools' plain sender and sink.
//!
//! One system call per frame: not for the data path.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

/// `ETH_P_ALL`: every protocol.
pub const ETH_P_ALL: u16 = 0x0003;
/// `ETH_P_SLOW`: IEEE 802.3 Slow Protocols (LACP, Marker).
pub const ETH_P_SLOW: u16 = 0x8809;

/// A raw packet socket bound to one interface and protocol.
#[derive(Debug)]
pub struct PacketSocket {
    fd: OwnedFd,
    ifindex: u32,
}

/// Which way a received frame went, from the socket's interface's point of view.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Received by the interface.
    Incoming,
    /// Sent by this host on the interface (packet sockets see those too).
    Outgoing,
}

impl PacketSocket {
    /// Opens a socket for `protocol` (host order, e.g. [`ETH_P_SLOW`]) bound to `ifindex`.
    ///
    /// # Errors
    /// When socket or bind fails (no CAP_NET_RAW, no such interface).
    pub fn bind(ifindex: u32, protocol: u16) -> io::Result<Self> {
        Self::open(ifindex, protocol, None)
    }

    /// Opens a socket bound to `ifindex` that reads only the frames the interface receives
    /// for `destination`: a classic BPF filter drops every other frame in the kernel before it
    /// is queued, and frames the host sends are not looped to it (`PACKET_IGNORE_OUTGOING`).
    /// For a monitor on a port that carries the data path's traffic in the skb path, where a
    /// plain `ETH_P_ALL` socket would be handed a copy of every frame both ways.
    ///
    /// # Errors
    /// As [`bind`](Self::bind), or the kernel refusing the filter.
    pub fn bind_to_destination(ifindex: u32, destination: [u8; 6]) -> io::Result<Self> {
        Self::open(ifindex, ETH_P_ALL, Some(destination))
    }

    fn open(ifindex: u32, protocol: u16, destination: Option<[u8; 6]>) -> io::Result<Self> {
        // Protocol 0 until bound: the socket receives nothing before its filter is in place
        // (a socket made for ETH_P_ALL would see every interface's frames until bind).
        // SAFETY: plain socket(2); the result is checked before it is wrapped.
        let raw = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a fresh descriptor owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        if let Some(mac) = destination {
            filter_destination(&fd, mac)?;
            let on: libc::c_int = 1;
            // SAFETY: `on` is a live c_int of the size passed.
            let rc = unsafe {
                libc::setsockopt(
                    fd.as_raw_fd(),
                    libc::SOL_PACKET,
                    libc::PACKET_IGNORE_OUTGOING,
                    (&on as *const libc::c_int).cast(),
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                )
            };
            if rc != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        // SAFETY: sockaddr_ll is plain data; all-zero is a valid starting value.
        let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        addr.sll_family = libc::AF_PACKET as u16;
        addr.sll_protocol = protocol.to_be();
        addr.sll_ifindex = ifindex as i32;
        // SAFETY: `addr` is a valid sockaddr_ll of the size passed.
        let rc = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&addr as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Self { fd, ifindex })
    }

    /// Makes the interface promiscuous for as long as this socket is open: a packet-socket
    /// membership (`PACKET_MR_PROMISC`) raises the device's promiscuity count, and the kernel
    /// drops it when the socket closes, also when the process is killed. Nothing to restore,
    /// and the interface's own setting is left alone.
    ///
    /// # Errors
    /// When the kernel refuses the membership.
    pub fn hold_promiscuous(&self) -> io::Result<()> {
        /// `struct packet_mreq` from linux/if_packet.h.
        #[repr(C)]
        struct PacketMreq {
            ifindex: libc::c_int,
            kind: libc::c_ushort,
            alen: libc::c_ushort,
            address: [u8; 8],
        }
        const PACKET_ADD_MEMBERSHIP: libc::c_int = 1;
        const PACKET_MR_PROMISC: libc::c_ushort = 1;
        let mreq = PacketMreq {
            ifindex: self.ifindex as libc::c_int,
            kind: PACKET_MR_PROMISC,
            alen: 0,
            address: [0; 8],
        };
        // SAFETY: `mreq` is a live packet_mreq of the size passed.
        let rc = unsafe {
            libc::setsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_PACKET,
                PACKET_ADD_MEMBERSHIP,
                (&mreq as *const PacketMreq).cast(),
                std::mem::size_of::<PacketMreq>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Sets the receive buffer to `bytes` (SO_RCVBUFFORCE: beyond the system limit, as root),
    /// for a capture that must not overflow while its reader is scheduled away.
    ///
    /// # Errors
    /// When the kernel refuses.
    pub fn set_receive_buffer(&self, bytes: usize) -> io::Result<()> {
        let size = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
        // SAFETY: `size` is a live c_int of the size passed.
        let rc = unsafe {
            libc::setsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVBUFFORCE,
                (&size as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Frames the kernel dropped because this socket's receive buffer was full, since the last
    /// call (`PACKET_STATISTICS` resets on read).
    ///
    /// # Errors
    /// When the kernel refuses.
    pub fn take_drops(&self) -> io::Result<u64> {
        let mut stats = libc::tpacket_stats {
            tp_packets: 0,
            tp_drops: 0,
        };
        let mut len = std::mem::size_of::<libc::tpacket_stats>() as libc::socklen_t;
        // SAFETY: the kernel writes at most `len` bytes into `stats`.
        let rc = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_STATISTICS,
                (&mut stats as *mut libc::tpacket_stats).cast(),
                &mut len,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(u64::from(stats.tp_drops))
    }

    /// The interface this socket is bound to.
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// Sends one complete Ethernet frame.
    ///
    /// # Errors
    /// When the kernel refuses the frame.
    pub fn send(&self, frame: &[u8]) -> io::Result<()> {
        // SAFETY: `frame` is a live buffer of the length passed.
        let rc = unsafe { libc::send(self.fd.as_raw_fd(), frame.as_ptr().cast(), frame.len(), 0) };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Receives one frame into `buf`, waiting at most `timeout`. Returns `None` on timeout.
    /// A transient `ENETDOWN` (the interface went down) is reported as a timeout.
    ///
    /// # Errors
    /// Other receive errors.
    pub fn recv(
        &self,
        buf: &mut [u8],
        timeout: Duration,
    ) -> io::Result<Option<(usize, Direction)>> {
        let mut pfd = libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: one initialised pollfd.
        let n = unsafe { libc::poll(&mut pfd, 1, ms) };
        if n <= 0 {
            return Ok(None);
        }
        // SAFETY: sockaddr_ll is plain data; all-zero is valid.
        let mut from: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
        // SAFETY: `buf` and `from` are live buffers of the sizes passed.
        let rc = unsafe {
            libc::recvfrom(
                self.fd.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                libc::MSG_DONTWAIT,
                (&mut from as *mut libc::sockaddr_ll).cast(),
                &mut len,
            )
        };
        if rc < 0 {
            let e = io::Error::last_os_error();
            return match e.raw_os_error() {
                Some(libc::EAGAIN | libc::ENETDOWN | libc::EINTR) => Ok(None),
                _ => Err(e),
            };
        }
        let dir = if from.sll_pkttype == libc::PACKET_OUTGOING {
            Direction::Outgoing
        } else {
            Direction::Incoming
        };
        Ok(Some((rc as usize, dir)))
    }
}

impl AsRawFd for PacketSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// The classic BPF program that accepts a frame whose destination MAC is `mac`.
fn destination_filter(mac: [u8; 6]) -> [libc::sock_filter; 6] {
    const LD_W_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
    const LD_H_ABS: u16 = (libc::BPF_LD | libc::BPF_H | libc::BPF_ABS) as u16;
    const JEQ_K: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
    const RET_K: u16 = (libc::BPF_RET | libc::BPF_K) as u16;
    let op = |code, jt, jf, k| libc::sock_filter { code, jt, jf, k };
    let head = u32::from_be_bytes([mac[0], mac[1], mac[2], mac[3]]);
    let tail = u32::from(u16::from_be_bytes([mac[4], mac[5]]));
    [
        op(LD_W_ABS, 0, 0, 0),
        op(JEQ_K, 0, 3, head),
        op(LD_H_ABS, 0, 0, 4),
        op(JEQ_K, 0, 1, tail),
        op(RET_K, 0, 0, 0x0004_0000),
        op(RET_K, 0, 0, 0),
    ]
}

/// Attaches [`destination_filter`] to `fd`.
fn filter_destination(fd: &OwnedFd, mac: [u8; 6]) -> io::Result<()> {
    let program = destination_filter(mac);
    let fprog = libc::sock_fprog {
        len: program.len() as u16,
        filter: program.as_ptr().cast_mut(),
    };
    // SAFETY: `fprog` points at `program`, alive for the call; the kernel copies it.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_ATTACH_FILTER,
            (&fprog as *const libc::sock_fprog).cast(),
            std::mem::size_of::<libc::sock_fprog>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// CLOCK_MONOTONIC in nanoseconds: one clock for every process on the machine, whatever its
/// network namespace (unlike `std::time::Instant`, whose value is opaque).
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a live timespec; CLOCK_MONOTONIC always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}
