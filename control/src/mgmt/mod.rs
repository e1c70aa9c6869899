//! The management front ends; they call the runtime, never the other way round.
//!
//! - [`api`]: the management protocol, its Unix socket and the read view;
//! - [`ops`]: each request as the daemon's typed operation, its result as JSON;
//! - [`http`]: the HTTP listener (JSON API, web UI, metrics, dashboard stream);
//! - [`metrics`]: the metric catalog and its Prometheus rendering;
//! - [`cli`]: `xlaggctl`'s command line.

pub mod api;
pub mod cli;
pub mod http;
pub mod http_guard;
pub mod http_listener;
pub mod metrics;
pub mod ops;
