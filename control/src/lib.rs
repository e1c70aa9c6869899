//! The xlagg control plane: configuration, the lifecycle of each lagg (interfaces, XDP
//! programs, AF_XDP workers), link state, and the `xlaggd` daemon built on them.
//!
//! Layers, one folder each:
//! - [`config`]: the one configuration model and its validator, FreeBSD ifconfig words
//!   ([`config::ifconfig`]), rc.conf import ([`config::rcconf`]), crash-safe writing
//!   ([`config::store`]);
//! - [`proto`]: LACP, micro-BFD, probes and peer notifications, sans-IO;
//! - [`runtime`]: the member set (the lagg's rules, sans-IO), a running lagg, its status, the
//!   daemon and the control loop;
//! - [`mgmt`]: the management socket, the HTTP listener, metrics, the CLI;
//! - [`sys`]: devices through rtnetlink, offloads through ethtool.
//!
//! The modules are also re-exported at the crate root under their own names
//! (`xlagg_control::proto::lacp`, `xlagg_control::runtime::lagg`, ...).
//!
#![forbid(unsafe_code)]

pub mod app;
pub mod config;
pub mod mgmt;
pub mod proto;
pub mod runtime;
pub mod sys;
