//! Who is on the other end of a Unix socket (`SO_PEERCRED`), for the management socket's
//! check that only root (or the daemon's own user) changes anything.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::AsRawFd;

/// The user id of the process that connected `socket`.
///
/// # Errors
/// `getsockopt(SO_PEERCRED)` failed (not a Unix socket).
pub fn peer_uid(socket: &impl AsRawFd) -> io::Result<u32> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: u32::MAX,
        gid: u32::MAX,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: the kernel writes at most `len` bytes into `cred`, a live ucred.
    let rc = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(cred.uid)
}

/// This process's effective user id.
pub fn effective_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_socket_pair_reports_our_own_user() {
        let (a, _b) = std::os::unix::net::UnixStream::pair().expect("pair");
        assert_eq!(peer_uid(&a).expect("peer"), effective_uid());
        let file = std::fs::File::open("/proc/self/stat").expect("file");
        assert!(peer_uid(&file).is_err(), "not a socket");
    }
}
