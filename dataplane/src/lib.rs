//! The xlagg dataplane: XDP programs on every port, AF_XDP sockets, and the pinned workers that
//! apply a lagg's distribution policy to batches of frames.
//!
//! Layers, bottom up:
//! - [`afxdp`]: UMEM and rings, [`afpacket`]: raw packet sockets, [`linkevents`]: kernel link
//!   notifications, [`credentials`]: a Unix socket's peer (the only modules with `unsafe`);
//! - [`xdp`]: loading and attaching the XDP program, its maps and counters (aya);
//! - [`flow`] and [`distribution`]: pure functions deciding which member sends each frame;
//! - [`counters`]: per-worker, cache-line separated counters; [`learn`]: source MACs seen
//!   from the upper port, for forward mode's learning frames; [`ledger`]: where every UMEM
//!   frame is;
//! - [`worker`]: the batch loop tying them together.
//!
//! Non-goals: configuration, link monitoring, LACP and netdev management live in the control
//! crate; this crate takes decisions as [`distribution::DistributionTable`] snapshots and
//! per-port collecting flags.
#![deny(unsafe_code)]

pub mod afpacket;
pub mod afxdp;
pub mod counters;
pub mod credentials;
pub mod distribution;
pub mod flow;
pub mod learn;
pub mod ledger;
pub mod linkevents;
pub mod worker;
pub mod xdp;
