//! Sockets inside a test bed's namespace, opened from the test process: a thread enters the
//! namespace, runs the closure and ends; what the closure opened stays in that namespace and
//! can be used from any thread.

/// Runs `f` in network namespace `ns` (a name under /run/netns) and returns its result.
pub fn in_ns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let path = format!("/run/netns/{ns}");
    std::thread::spawn(move || {
        let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let fd = std::os::fd::AsRawFd::as_raw_fd(&file);
        // SAFETY: setns with a descriptor of a namespace file that stays open during the call;
        // it changes only this thread's network namespace.
        let rc = unsafe { libc::setns(fd, libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
        f()
    })
    .join()
    .expect("the namespace thread panicked")
}
