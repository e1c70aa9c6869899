//! Helper processes: children told when the thread that started them ends
//! (`PR_SET_PDEATHSIG`; a child that changes its user id, as dhcpcd's privilege separation
//! does, loses that setting, so a daemon also stops such leftovers itself), and signals.
#![allow(unsafe_code)]

use std::io;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};

/// Has the child receive SIGTERM when the thread that spawns it exits (for a daemon's
/// control thread, when the daemon does, however it ends).
pub fn end_with_parent(cmd: &mut Command) -> &mut Command {
    let parent = std::process::id();
    // SAFETY: the closure runs in the child between fork and exec; it calls only
    // async-signal-safe functions (signal, prctl, getppid, _exit) and allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            // The parent's SIGTERM handler (a flag in the parent's memory) is inherited until
            // exec: with it, the death signal would be swallowed before exec.
            libc::signal(libc::SIGTERM, libc::SIG_DFL);
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                return Err(io::Error::last_os_error());
            }
            // The parent may have died before the prctl: then nobody would send the signal.
            if libc::getppid() as u32 != parent {
                libc::_exit(1);
            }
            Ok(())
        })
    }
}

/// Sends SIGTERM to `child` (asks it to end; [`Child::kill`] sends SIGKILL).
///
/// # Errors
/// The child was already reaped, or the signal could not be sent.
pub fn terminate(child: &Child) -> io::Result<()> {
    let pid = i32::try_from(child.id()).map_err(|_| io::Error::other("pid out of range"))?;
    // SAFETY: kill(2) touches no memory of ours. The caller must not have reaped `child`
    // (a `try_wait` that returned its status): the number could then name another process.
    if unsafe { libc::kill(pid, libc::SIGTERM) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Sends SIGTERM (`kill = false`) or SIGKILL to process `pid`. The caller makes sure `pid` is
/// the process it means (a pid can be reused once its process was reaped).
///
/// # Errors
/// No such process, or not allowed.
pub fn signal(pid: u32, kill: bool) -> io::Result<()> {
    let pid = i32::try_from(pid).map_err(|_| io::Error::other("pid out of range"))?;
    if pid <= 0 {
        return Err(io::Error::other("not a single process"));
    }
    let sig = if kill { libc::SIGKILL } else { libc::SIGTERM };
    // SAFETY: kill(2) touches no memory of ours; a positive pid names one process only.
    if unsafe { libc::kill(pid, sig) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Stops `child`: SIGTERM, up to `grace` to exit, then SIGKILL; always reaped.
pub fn stop(child: &mut Child, grace: std::time::Duration) {
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    let _ = terminate(child);
    let deadline = std::time::Instant::now() + grace;
    while std::time::Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_child_runs_and_is_told_when_its_thread_ends() {
        // A child of a short-lived thread: it gets SIGTERM when that thread exits.
        let child = std::thread::spawn(|| {
            end_with_parent(Command::new("sleep").arg("30"))
                .spawn()
                .expect("spawn sleep")
        })
        .join()
        .expect("thread");
        let mut child = child;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                assert!(!status.success(), "ended by the signal: {status:?}");
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the child outlived its thread"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}
