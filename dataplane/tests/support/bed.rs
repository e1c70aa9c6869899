//! The namespace test bed for the dataplane's integration tests (included with `#[path]`):
//! `scripts/testbed.sh` brings it up and takes it down, threads enter its namespaces.

use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::Command;

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/testbed.sh")
}

/// A test bed with `members` member links, taken down when dropped (also on a panic).
pub(crate) struct Bed(pub(crate) String);

impl Bed {
    /// Brings up bed `id`; fails the test, saying why, when not root.
    pub(crate) fn up(id: &str, members: usize) -> Bed {
        let status = std::fs::read_to_string("/proc/self/status").expect("status");
        assert!(
            status
                .lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0")),
            "needs root (namespaces, XDP, AF_XDP); run the tests as root, as CI does"
        );
        let ok = Command::new(script())
            .args(["up", id, &members.to_string()])
            .status()
            .expect("testbed.sh");
        assert!(ok.success(), "test bed");
        Bed(id.to_string())
    }

    /// The name of the bed's namespace `role` (`src`, `app`, `ptr`).
    pub(crate) fn ns(&self, role: &str) -> String {
        format!("xl-{}-{role}", self.0)
    }
}

impl Drop for Bed {
    fn drop(&mut self) {
        let _ = Command::new(script()).args(["down", &self.0]).status();
    }
}

/// Moves the calling thread into network namespace `ns`.
pub(crate) fn enter(ns: &str) {
    let file = std::fs::File::open(format!("/var/run/netns/{ns}")).expect("namespace file");
    // SAFETY: setns on a valid namespace descriptor; it affects only this thread.
    let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(
        rc,
        0,
        "setns({ns}) failed: {}",
        std::io::Error::last_os_error()
    );
}

/// The index of interface `name` in this thread's namespace.
pub(crate) fn ifindex(name: &str) -> u32 {
    let c = std::ffi::CString::new(name).expect("name");
    // SAFETY: a valid NUL-terminated name; the lookup uses this thread's namespace.
    let index = unsafe { libc::if_nametoindex(c.as_ptr()) };
    assert_ne!(index, 0, "no interface {name}");
    index
}

/// The worker tests' starting point: a packet socket on xls0 (opened from a thread in the source
/// namespace), this thread moved into the appliance namespace, the port program attached to
/// xlm0, xlm1 and xld0, and those ports' names and indexes.
pub(crate) fn sender_and_ports(
    bed: &Bed,
) -> (
    xlagg_sys::afpacket::PacketSocket,
    Vec<xlagg_dataplane::xdp::PortProgram>,
    Vec<(String, u32)>,
) {
    use xlagg_dataplane::xdp::{PortProgram, ProgramKind};
    use xlagg_sys::afpacket::{PacketSocket, ETH_P_ALL};
    let src_ns = bed.ns("src");
    let sender = std::thread::spawn(move || {
        enter(&src_ns);
        PacketSocket::bind(ifindex("xls0"), ETH_P_ALL).expect("packet socket")
    })
    .join()
    .expect("sender thread");
    enter(&bed.ns("app"));
    let names = ["xlm0", "xlm1", "xld0"];
    let programs = names
        .iter()
        .map(|n| PortProgram::attach(n, ifindex(n), ProgramKind::Port).expect("attach"))
        .collect();
    let ports = names.iter().map(|n| (n.to_string(), ifindex(n))).collect();
    (sender, programs, ports)
}
