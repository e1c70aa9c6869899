//! The xlagg control plane: configuration, the lifecycle of each lagg (interfaces, XDP
//! programs, AF_XDP workers), link state, and the `xlaggd` daemon built on them.
//!
//! Layers:
//! - [`config`]: the one configuration model and its validator;
//! - [`ifconfig`]: FreeBSD ifconfig words as edits of that model (the CLI's language);
//! - [`rcconf`]: FreeBSD/TrueNAS rc.conf import;
//! - [`store`]: crash-safe writing of the configuration file;
//! - [`netdev`]: kernel devices through rtnetlink;
//! - [`offload`]: the offloads that decide whether a frame is complete on the wire;
//! - [`notify`]: peer notification frames (gratuitous ARP, unsolicited NA);
//! - [`probe`]: the ARP/NS probe monitor's frames;
//! - [`lacp`]: IEEE 802.1AX LACP as a sans-IO core (no sockets, threads or clock);
//! - [`bfd`]: micro-BFD (RFC 7130) sessions per member, sans-IO;
//! - [`members`]: the lagg's rules (usability, delays, failover, collecting and
//!   distributing, notifications) as a sans-IO state machine;
//! - [`lagg`]: a running lagg, from start to a teardown that leaves nothing behind;
//! - [`status`]: a lagg's state as data and as FreeBSD ifconfig prints it;
//! - [`daemon`]: the daemon's laggs and how a change is carried out;
//! - [`control_loop`]: the control thread's loop over every input and deadline;
//! - [`api`]: the management protocol and its Unix socket;
//! - [`http`]: the HTTP listener: JSON API, web UI, metrics, dashboard;
//! - [`metrics`]: the metric catalog and its Prometheus rendering.
//!
#![forbid(unsafe_code)]

pub mod api;
pub mod bfd;
pub mod cli;
pub mod config;
pub mod control_loop;
pub mod daemon;
pub mod http;
pub mod ifconfig;
pub mod lacp;
pub mod lagg;
pub mod members;
pub mod metrics;
pub mod netdev;
pub mod notify;
pub mod offload;
pub mod probe;
pub mod rcconf;
pub mod status;
pub mod store;
