//! `xlaggd`: starts every lagg of a TOML configuration, follows member link state, and on
//! SIGINT or SIGTERM stops them, leaving no program or interface behind.
//!
//! Exit status: 0 after a clean stop, 2 for an invalid configuration (nothing was touched),
//! 1 when starting failed (whatever had been created was removed).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use std::os::fd::{AsRawFd, RawFd};

use clap::Parser;
use xlagg_control::config::Config;
use xlagg_control::lagg::{Lagg, StartOptions};
use xlagg_control::netdev::Netlink;
use xlagg_dataplane::linkevents::{self, LinkEvents};

/// xlagg link-aggregation daemon.
#[derive(Parser, Debug)]
#[command(version, about, long_about = None, after_help = "Example:\n  xlaggd --config /etc/xlagg/xlagg.toml\n  xlaggd --config xlagg.toml --check")]
struct Args {
    /// Configuration file (TOML); see xlagg.sample.toml.
    #[arg(short, long, default_value = "/etc/xlagg/xlagg.toml")]
    config: PathBuf,
    /// Validate the configuration and the devices it names, then exit.
    #[arg(long)]
    check: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let text = match std::fs::read_to_string(&args.config) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("xlaggd: cannot read {}: {e}", args.config.display());
            return ExitCode::from(2);
        }
    };
    let config = match Config::from_toml(&text) {
        Ok(c) => c,
        Err(e) => {
            for problem in &e.problems {
                eprintln!("xlaggd: {}: {problem}", args.config.display());
            }
            return ExitCode::from(2);
        }
    };
    let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| config.daemon.log_level.clone());
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&filter).unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let nl = match Netlink::new() {
        Ok(nl) => nl,
        Err(e) => {
            eprintln!("xlaggd: {e}");
            return ExitCode::from(1);
        }
    };
    // Check every lagg before creating anything for any of them.
    for lagg in &config.laggs {
        if let Err(e) = Lagg::preflight(&nl, lagg) {
            eprintln!("xlaggd: {}: {e}", args.config.display());
            return ExitCode::from(2);
        }
    }
    if args.check {
        println!(
            "{}: configuration valid, {} lagg(s)",
            args.config.display(),
            config.laggs.len()
        );
        return ExitCode::SUCCESS;
    }
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        if let Err(e) = signal_hook::flag::register(signal, Arc::clone(&stop)) {
            eprintln!("xlaggd: cannot install signal handler: {e}");
            return ExitCode::from(1);
        }
    }
    // Subscribe to link notifications before any lagg reads its members' state, so that no
    // change falls between the first read and the subscription.
    let link_events = match LinkEvents::open() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("xlaggd: cannot subscribe to link notifications: {e}");
            return ExitCode::from(1);
        }
    };
    let mut laggs: Vec<Lagg> = Vec::new();
    for cfg in &config.laggs {
        match Lagg::start(&nl, cfg, StartOptions::default()) {
            Ok(lagg) => laggs.push(lagg),
            Err(e) => {
                eprintln!("xlaggd: {e}");
                for lagg in laggs {
                    lagg.stop(&nl);
                }
                return ExitCode::from(1);
            }
        }
    }
    println!("xlaggd: ready, {} lagg(s) running", laggs.len());
    let poll = Duration::from_millis(config.daemon.link_poll_ms);
    let status_every = Duration::from_millis(config.daemon.status_interval_ms);
    let mut last_status = Instant::now();
    let mut next_link_poll = Instant::now() + poll;
    // The control loop: wakes on a link notification, a slow-protocol frame, an LACP or
    // link-delay deadline, the safety-net link re-read or a signal (at least every 100 ms);
    // never on worker activity.
    let mut events = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        let deadline = laggs
            .iter()
            .flat_map(|l| [l.lacp_deadline(), l.link_deadline()])
            .flatten()
            .chain([next_link_poll, now + Duration::from_millis(100)])
            .min()
            .unwrap_or(next_link_poll);
        let slow: Vec<(usize, usize, RawFd)> = laggs
            .iter()
            .enumerate()
            .flat_map(|(l, lagg)| {
                lagg.slow_sockets()
                    .into_iter()
                    .map(move |(p, s)| (l, p, s.as_raw_fd()))
            })
            .collect();
        let mut fds = vec![link_events.as_raw_fd()];
        fds.extend(slow.iter().map(|s| s.2));
        let ready = linkevents::wait_readable(&fds, deadline.saturating_duration_since(now));
        if ready.first() == Some(&true) {
            events.clear();
            let overrun = match link_events.read(&mut events) {
                Ok(o) => o,
                Err(e) => {
                    tracing::error!(error = %e, "reading link notifications failed");
                    true
                }
            };
            for lagg in &mut laggs {
                let result = if overrun {
                    tracing::warn!(lagg = %lagg.config().name, "link notifications were lost; re-reading link state");
                    lagg.refresh_links(&nl).map(|_| ())
                } else {
                    lagg.handle_link_events(&nl, &events)
                };
                if let Err(e) = result {
                    tracing::error!(lagg = %lagg.config().name, error = %e, "applying link changes failed");
                }
            }
        }
        for ((l, p, _), r) in slow.iter().zip(ready.iter().skip(1)) {
            if *r {
                if let Err(e) = laggs[*l].handle_slow_frames(*p) {
                    tracing::error!(lagg = %laggs[*l].config().name, error = %e, "LACP input failed");
                }
            }
        }
        if Instant::now() >= next_link_poll {
            next_link_poll = Instant::now() + poll;
            for lagg in &mut laggs {
                if let Err(e) = lagg.refresh_links(&nl) {
                    tracing::error!(lagg = %lagg.config().name, error = %e, "link state refresh failed");
                }
            }
        }
        for lagg in &mut laggs {
            if let Err(e) = lagg.lacp_tick().and_then(|()| lagg.link_tick(&nl)) {
                tracing::error!(lagg = %lagg.config().name, error = %e, "timers failed");
            }
        }
        if !status_every.is_zero() && last_status.elapsed() >= status_every {
            last_status = Instant::now();
            for lagg in &laggs {
                print!("{}", lagg.status_table());
            }
            let _ = std::io::Write::flush(&mut std::io::stdout());
        }
    }
    tracing::info!("stopping");
    for lagg in &laggs {
        print!("{}", lagg.status_table());
    }
    for lagg in laggs {
        lagg.stop(&nl);
    }
    ExitCode::SUCCESS
}
