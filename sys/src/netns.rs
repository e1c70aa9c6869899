//! The calling thread's network namespace, as the kernel names it to BPF programs.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// `SO_NETNS_COOKIE` (Linux 5.14): the cookie of a socket's network namespace.
const SO_NETNS_COOKIE: libc::c_int = 71;

/// The cookie of this thread's network namespace: the same value the kernel keeps in
/// `struct net`'s `net_cookie`, so a program that reads a device's namespace can tell ours
/// from another with the same ifindexes.
///
/// # Errors
/// A kernel without `SO_NETNS_COOKIE` (before 5.14), or no socket could be made.
pub fn cookie() -> io::Result<u64> {
    // SAFETY: plain socket(2); the result is checked before it is wrapped.
    let raw = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `raw` is a fresh descriptor owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let mut value: u64 = 0;
    let mut len = std::mem::size_of::<u64>() as libc::socklen_t;
    // SAFETY: `value` is a live u64 and `len` its size, as the option writes.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            SO_NETNS_COOKIE,
            (&mut value as *mut u64).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_cookie_of_this_namespace_is_stable_and_nonzero() {
        let a = super::cookie().expect("SO_NETNS_COOKIE");
        assert_ne!(a, 0);
        assert_eq!(super::cookie().expect("again"), a);
    }
}
