//! The kernel-facing glue of the control plane that is not the dataplane's: network devices
//! through rtnetlink, device features through ethtool, and what xlaggd changed on them,
//! written down to be set back after a crash.

pub mod netdev;
pub mod offload;
pub mod restore;
