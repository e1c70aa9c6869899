//! xlagg benchmark and traffic tooling, used by the `xlagg-bench` binary and the namespace
//! tests: the test frame format ([`traffic`]), an AF_PACKET sender and recording sink
//! ([`packet_tools`]), the test-bed driver ([`testbed`]), TCP/UDP through a lagg with iperf3
//! ([`iperf`]), the AF_XDP and in-kernel XDP
//! generators ([`xdpgen`]), a VLAN subinterface stand-in for kernels without 8021q ([`vlan`]), and the scenarios: forward-mode throughput against a same-run
//! ceiling ([`forward`]), LACP convergence ([`convergence`]), switchover on carrier loss
//! ([`switchover`]), TCP through laggN against a reference link ([`tcp`]), one TCP stream
//! through member flaps ([`stream`]), the soak of events under traffic ([`soak`]), and the whole suite with
//! reports and comparison ([`suite`]).
//!
//! Non-goals: nothing here is part of the appliance; the daemon never links it.
#![forbid(unsafe_code)]

pub mod convergence;
pub mod forward;
pub mod iperf;
pub mod packet_tools;
pub mod saturate;
pub mod soak;
pub mod stream;
pub mod suite;
pub mod switchover;
pub mod tcp;
pub mod testbed;
pub mod traffic;
pub mod vlan;
pub mod xdpgen;
