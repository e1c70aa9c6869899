//! Kernel link notifications: a netlink socket subscribed to `RTMGRP_LINK`, so the control
//! thread learns of carrier and admin changes (and device removal) when they happen instead
//! of polling. Each notification's `ifinfomsg` header already carries the interface index and
//! flags, so no request to the kernel is needed to act on it.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// One link notification.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkEvent {
    /// Interface index.
    pub ifindex: u32,
    /// IFF_UP.
    pub admin_up: bool,
    /// IFF_LOWER_UP (carrier).
    pub carrier: bool,
    /// The device was removed (RTM_DELLINK).
    pub removed: bool,
    /// MTU, when the message carries it.
    pub mtu: Option<u32>,
    /// MAC address, when the message carries one.
    pub mac: Option<[u8; 6]>,
}

/// A subscription to link notifications.
#[derive(Debug)]
pub struct LinkEvents {
    fd: OwnedFd,
}

const NLMSG_HDRLEN: usize = 16;
const IFINFOMSG_LEN: usize = 16;
const IFF_UP: u32 = 0x1;
const IFF_LOWER_UP: u32 = 0x1_0000;

impl LinkEvents {
    /// Subscribes, in the calling thread's network namespace.
    ///
    /// # Errors
    /// When the netlink socket cannot be opened or bound.
    pub fn open() -> io::Result<Self> {
        // SAFETY: plain socket(2); the result is checked before it is wrapped.
        let raw = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
                libc::NETLINK_ROUTE,
            )
        };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a fresh descriptor owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // A large receive buffer, so that a storm of flaps does not overrun it quickly.
        let size: libc::c_int = 4 << 20;
        // SAFETY: `size` is a live c_int of the size passed.
        unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVBUF,
                (&size as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        // SAFETY: sockaddr_nl is plain data; all-zero is a valid starting value.
        let mut addr: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        addr.nl_family = libc::AF_NETLINK as u16;
        addr.nl_groups = libc::RTMGRP_LINK as u32;
        // SAFETY: `addr` is a valid sockaddr_nl of the size passed.
        let rc = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&addr as *const libc::sockaddr_nl).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Self { fd })
    }

    /// Reads every pending notification into `out`. Returns `true` when the kernel had to drop
    /// notifications (receive buffer overrun): the caller must then re-read link state.
    ///
    /// # Errors
    /// Unexpected receive errors.
    pub fn read(&self, out: &mut Vec<LinkEvent>) -> io::Result<bool> {
        let mut buf = vec![0u8; 64 * 1024];
        let mut overrun = false;
        loop {
            // SAFETY: `buf` is a live buffer of the length passed.
            let n = unsafe {
                libc::recv(
                    self.fd.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    libc::MSG_DONTWAIT,
                )
            };
            if n < 0 {
                match io::Error::last_os_error().raw_os_error() {
                    Some(libc::EAGAIN) => return Ok(overrun),
                    Some(libc::ENOBUFS) => {
                        overrun = true;
                        continue;
                    }
                    Some(libc::EINTR) => continue,
                    _ => return Err(io::Error::last_os_error()),
                }
            }
            parse(&buf[..n as usize], out);
        }
    }
}

impl AsRawFd for LinkEvents {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// IFLA_MTU and IFLA_ADDRESS (6 bytes) from a link message's attributes.
fn attributes(mut attrs: &[u8]) -> (Option<u32>, Option<[u8; 6]>) {
    const IFLA_ADDRESS: u16 = 1;
    const IFLA_MTU: u16 = 4;
    let (mut mtu, mut mac) = (None, None);
    while attrs.len() >= 4 {
        let len = usize::from(u16::from_ne_bytes([attrs[0], attrs[1]]));
        let kind = u16::from_ne_bytes([attrs[2], attrs[3]]) & 0x3fff;
        if len < 4 || len > attrs.len() {
            break;
        }
        let data = &attrs[4..len];
        match (kind, data.len()) {
            (IFLA_MTU, 4) => mtu = Some(u32::from_ne_bytes([data[0], data[1], data[2], data[3]])),
            (IFLA_ADDRESS, 6) => {
                let mut m = [0u8; 6];
                m.copy_from_slice(data);
                mac = Some(m);
            }
            _ => {}
        }
        let step = (len + 3) & !3;
        if step >= attrs.len() {
            break;
        }
        attrs = &attrs[step..];
    }
    (mtu, mac)
}

/// Parses the link messages of one netlink datagram; anything else is skipped.
pub fn parse(mut buf: &[u8], out: &mut Vec<LinkEvent>) {
    while buf.len() >= NLMSG_HDRLEN {
        let len = u32::from_ne_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
        let kind = u16::from_ne_bytes([buf[4], buf[5]]);
        if len < NLMSG_HDRLEN || len > buf.len() {
            return;
        }
        if (kind == libc::RTM_NEWLINK || kind == libc::RTM_DELLINK)
            && len >= NLMSG_HDRLEN + IFINFOMSG_LEN
        {
            let m = &buf[NLMSG_HDRLEN..NLMSG_HDRLEN + IFINFOMSG_LEN];
            let ifindex = i32::from_ne_bytes([m[4], m[5], m[6], m[7]]);
            let flags = u32::from_ne_bytes([m[8], m[9], m[10], m[11]]);
            if ifindex > 0 {
                let (mtu, mac) = attributes(&buf[NLMSG_HDRLEN + IFINFOMSG_LEN..len]);
                out.push(LinkEvent {
                    ifindex: ifindex as u32,
                    admin_up: flags & IFF_UP != 0,
                    carrier: flags & IFF_LOWER_UP != 0,
                    removed: kind == libc::RTM_DELLINK,
                    mtu,
                    mac,
                });
            }
        }
        let step = (len + 3) & !3;
        if step >= buf.len() {
            return;
        }
        buf = &buf[step..];
    }
}

/// Waits until any of `fds` is readable or `timeout` passes; returns which are readable.
pub fn wait_readable(fds: &[RawFd], timeout: std::time::Duration) -> Vec<bool> {
    let mut pfds: Vec<libc::pollfd> = fds
        .iter()
        .map(|&fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    // Nanosecond resolution (ppoll): a deadline under a millisecond away must sleep until it,
    // not return at once and spin (which, on a real-time control thread, starves the core).
    let timeout = timeout.min(std::time::Duration::from_secs(3600));
    let ts = libc::timespec {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_nsec: libc::c_long::from(timeout.subsec_nanos() as i32),
    };
    // SAFETY: `pfds` holds `pfds.len()` initialised pollfd entries; `ts` is a valid timespec;
    // no signal mask is passed.
    let n = unsafe {
        libc::ppoll(
            pfds.as_mut_ptr(),
            pfds.len() as libc::nfds_t,
            &ts,
            std::ptr::null(),
        )
    };
    if n <= 0 {
        return vec![false; pfds.len()];
    }
    pfds.iter().map(|p| p.revents & libc::POLLIN != 0).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(kind: u16, ifindex: i32, flags: u32, extra: usize) -> Vec<u8> {
        let len = NLMSG_HDRLEN + IFINFOMSG_LEN + extra;
        let mut m = vec![0u8; len];
        m[0..4].copy_from_slice(&(len as u32).to_ne_bytes());
        m[4..6].copy_from_slice(&kind.to_ne_bytes());
        m[20..24].copy_from_slice(&ifindex.to_ne_bytes());
        m[24..28].copy_from_slice(&flags.to_ne_bytes());
        m
    }

    #[test]
    fn parses_new_and_del_link_and_skips_the_rest() {
        let mut buf = message(libc::RTM_NEWLINK, 7, IFF_UP | IFF_LOWER_UP, 6);
        buf.resize(buf.len().next_multiple_of(4), 0);
        buf.extend(message(20, 3, 0, 0)); // RTM_NEWADDR: ignored
        buf.extend(message(libc::RTM_DELLINK, 9, IFF_UP, 0));
        let mut out = Vec::new();
        parse(&buf, &mut out);
        assert_eq!(
            out,
            [
                LinkEvent {
                    ifindex: 7,
                    admin_up: true,
                    carrier: true,
                    removed: false,
                    mtu: None,
                    mac: None,
                },
                LinkEvent {
                    ifindex: 9,
                    admin_up: true,
                    carrier: false,
                    removed: true,
                    mtu: None,
                    mac: None,
                },
            ]
        );
    }

    #[test]
    fn mtu_and_address_attributes_are_read() {
        let mut m = message(libc::RTM_NEWLINK, 4, IFF_UP, 0);
        let mut attr = |kind: u16, data: &[u8]| {
            let len = 4 + data.len();
            m.extend_from_slice(&(len as u16).to_ne_bytes());
            m.extend_from_slice(&kind.to_ne_bytes());
            m.extend_from_slice(data);
            m.resize(m.len().next_multiple_of(4), 0);
        };
        attr(3, b"xlm0\0"); // IFLA_IFNAME, skipped
        attr(4, &9000u32.to_ne_bytes());
        attr(1, &[2, 0, 0, 0, 0, 7]);
        let len = m.len() as u32;
        m[0..4].copy_from_slice(&len.to_ne_bytes());
        let mut out = Vec::new();
        parse(&m, &mut out);
        assert_eq!(out[0].mtu, Some(9000));
        assert_eq!(out[0].mac, Some([2, 0, 0, 0, 0, 7]));
    }

    #[test]
    fn truncated_or_lying_lengths_stop_parsing_without_panic() {
        let mut out = Vec::new();
        let mut m = message(libc::RTM_NEWLINK, 7, 0, 0);
        m[0..4].copy_from_slice(&1000u32.to_ne_bytes());
        parse(&m, &mut out);
        parse(&m[..10], &mut out);
        m[0..4].copy_from_slice(&3u32.to_ne_bytes());
        parse(&m, &mut out);
        assert!(out.is_empty());
    }
}
