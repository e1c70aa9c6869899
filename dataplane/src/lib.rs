//! The xlagg dataplane: XDP programs on every port, AF_XDP sockets, and the pinned workers that
//! apply a lagg's distribution policy to batches of frames.
//!
//! Layers, bottom up:
//! - [`afxdp`]: UMEM and rings (the only module with `unsafe`);
//! - [`xdp`]: loading and attaching the XDP program, its maps and counters (aya);
//! - [`engine`]: the XDP engine, a lagg's distribution inside the XDP program;
//!   [`btf`]: the kernel struct offsets its carrier watch needs;
//! - [`flow`] and [`distribution`]: pure functions deciding which member sends each frame;
//! - [`counters`]: per-worker, cache-line separated counters; [`learn`]: source MACs seen
//!   from the upper port, for forward mode's learning frames; [`ledger`]: where every UMEM
//!   frame is;
//! - [`worker`]: the batch loop tying them together.
//!
//! Non-goals: configuration, link monitoring, LACP and netdev management live in the control
//! crate; the control path's sockets (packet sockets, link notifications) in `xlagg-sys`. This
//! crate takes decisions as [`distribution::DistributionTable`] snapshots and per-port
//! collecting flags.
#![deny(unsafe_code)]

pub mod afxdp;
pub mod btf;
pub mod counters;
pub mod distribution;
pub mod engine;
pub mod explain;
pub mod flow;
pub mod learn;
pub mod ledger;
pub mod mapped_words;
pub mod worker;
pub mod xdp;
