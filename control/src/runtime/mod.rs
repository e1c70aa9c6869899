//! What runs: the lagg's rules as a sans-IO member set, a running lagg (devices, programs,
//! workers, monitors around that set), its state as data, and the daemon's laggs with the
//! typed operations on them (a change carried out all or nothing). Nothing here knows the
//! management front ends: they map their requests to these operations (`mgmt::ops`).
//!
//! - [`members`]: the rules (usability, delays, failover, collecting and distributing,
//!   notifications), sans-IO;
//! - [`lagg`]: a running lagg, from start to a teardown that leaves nothing behind;
//! - [`load`]: each member's share of the traffic and the imbalance index, sans-IO;
//! - [`lost`]: members the data path left on its own, counted, told and retried, sans-IO;
//! - [`rebalance`]: moving buckets off a busy member at gaps in their traffic, sans-IO;
//! - [`status`]: a lagg's state as data and as FreeBSD's ifconfig prints it;
//! - [`daemon`]: the laggs, changes all-or-nothing, faults degrading per lagg.

pub mod daemon;
pub mod lagg;
pub mod load;
pub mod lost;
pub mod members;
pub mod rebalance;
pub mod status;
