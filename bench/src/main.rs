//! `xlagg-bench`: traffic tools and benchmarks for xlagg.
//!
//! - `send` / `sink`: paced AF_PACKET sender and per-port recording sink (namespace tests);
//! - `forward`: forward-mode throughput through a lagg against the same-run ceiling (the same
//!   AF_XDP path with the distribution decision replaced by one fixed port);
//! - `generate`, `serve`, `count`: the pieces `forward` runs inside the test-bed namespaces.

use xlagg_bench::packet_tools;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(version, about = "xlagg traffic tools and benchmarks")]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Send test frames (AF_PACKET, paced) on one interface.
    Send {
        /// Interface to send on.
        #[arg(long)]
        iface: String,
        /// Number of flows.
        #[arg(long, default_value_t = 1)]
        flows: u32,
        /// Frames per flow.
        #[arg(long, default_value_t = 1)]
        per_flow: u32,
        /// Frame size in bytes (60 or more).
        #[arg(long, default_value_t = 64)]
        size: usize,
        /// Frames per second; 0 sends as fast as the socket takes them.
        #[arg(long, default_value_t = 20000)]
        pps: u64,
        /// First sequence number.
        #[arg(long, default_value_t = 0)]
        first_seq: u64,
    },
    /// Record test frames per interface until SIGINT/SIGTERM or --max-ms; prints JSON.
    Sink {
        /// Interfaces, comma-separated.
        #[arg(long, value_delimiter = ',')]
        ifaces: Vec<String>,
        /// Stop after this many milliseconds at most.
        #[arg(long, default_value_t = 60_000)]
        max_ms: u64,
    },
}

fn main() -> Result<()> {
    let args = Args::parse();
    match args.command {
        Command::Send {
            iface,
            flows,
            per_flow,
            size,
            pps,
            first_seq,
        } => {
            let sent = packet_tools::send(&iface, flows, per_flow, size, pps, first_seq)?;
            println!("{{\"sent\":{sent}}}");
        }
        Command::Sink { ifaces, max_ms } => {
            let stop = Arc::new(AtomicBool::new(false));
            for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
                signal_hook::flag::register(signal, Arc::clone(&stop))?;
            }
            let report = packet_tools::sink(&ifaces, Duration::from_millis(max_ms), stop)?;
            println!("{}", serde_json::to_string(&report)?);
        }
    }
    Ok(())
}
