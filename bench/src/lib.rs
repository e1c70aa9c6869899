//! xlagg benchmark and traffic tooling, used by the `xlagg-bench` binary and the namespace
//! tests: test frame format, AF_PACKET sender and sink, the test-bed driver, and the
//! forward-mode throughput benchmark.
//!
//! Non-goals: nothing here is part of the appliance; the daemon never links it.
#![forbid(unsafe_code)]

pub mod convergence;
pub mod forward;
pub mod packet_tools;
pub mod switchover;
pub mod testbed;
pub mod traffic;
pub mod xdpgen;
