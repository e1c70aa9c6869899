//! The kernel-facing glue of the control plane that is not the dataplane's: network devices
//! through rtnetlink, and device features through ethtool.

pub mod netdev;
pub mod offload;
