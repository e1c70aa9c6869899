//! The control path's system calls that the standard library does not wrap: the sockets the
//! control thread and the test tools use beside the dataplane, never in it.
//!
//! - [`afpacket`]: raw packet sockets bound to one interface (slow protocols, micro-BFD,
//!   probes, announcements; the test tools' plain sender and sink);
//! - [`linkevents`]: kernel link notifications (carrier, admin state, removal);
//! - [`credentials`]: who is on the other end of a Unix socket;
//! - [`process`]: helper processes that end with the daemon;
//! - [`netns`]: the cookie of the calling thread's network namespace;
//! - [`kernel`]: the running kernel's release, for features that came with a version.
//!
//! Each module is a thin, safe wrapper over `libc`; `unsafe` is allowed module by module and
//! every block says why it holds. The AF_XDP rings are the dataplane's (`xlagg-dataplane`).
#![deny(unsafe_code)]

pub mod afpacket;
pub mod credentials;
pub mod kernel;
pub mod linkevents;
pub mod netns;
pub mod process;
