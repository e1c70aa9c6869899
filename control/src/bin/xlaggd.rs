//! `xlaggd`: starts every lagg of a TOML configuration, follows member link state, serves
//! `xlaggctl` on a root-only Unix socket (changes apply at once and are written back to the
//! file), and on SIGINT or SIGTERM stops every lagg, leaving no program or interface behind.
//!
//! A missing configuration file is an empty configuration: the first accepted change creates
//! it. A second xlaggd is refused while the first answers on the socket.
//!
//! Exit status: 0 after a clean stop, 2 for an invalid configuration (nothing was touched),
//! 1 when starting failed (whatever had been created was removed).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use xlagg_control::app::startup::{self, Options};

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
    /// At boot: wait up to this many seconds for every member device to appear before
    /// starting (0: do not wait).
    #[arg(long, value_name = "SECONDS", default_value_t = 0)]
    wait_for_members: u64,
    /// The management socket, instead of the configuration's daemon.socket (to run several
    /// daemons on one machine, e.g. in test namespaces).
    #[arg(long, value_name = "PATH")]
    socket: Option<PathBuf>,
    /// The HTTP listener instead of the configuration's daemon.http (`off`: none).
    #[arg(long, value_name = "ADDR:PORT")]
    http: Option<String>,
    /// The API token's file instead of the configuration's daemon.token_file.
    #[arg(long, value_name = "PATH")]
    token_file: Option<PathBuf>,
    /// Print the metric catalog (name, type, labels, help) and exit.
    #[arg(long)]
    metrics_catalog: bool,
    /// Accept fault-injection requests on the management socket (tests only; builds with the
    /// `testing` feature, as the test suite's, have them).
    #[arg(long, hide = true)]
    fault_injection: bool,
}

fn main() -> ExitCode {
    if cfg!(not(feature = "testing")) && std::env::args().any(|a| a == "--fault-injection") {
        eprintln!("xlaggd: --fault-injection needs a build with the testing feature (the test suite's); this one has no test hooks");
        return ExitCode::from(2);
    }
    let args = Args::parse();
    if args.metrics_catalog {
        print!("{}", xlagg_control::mgmt::metrics::catalog_text());
        return ExitCode::SUCCESS;
    }
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        if let Err(e) = signal_hook::flag::register(signal, Arc::clone(&stop)) {
            eprintln!("xlaggd: cannot install signal handler: {e}");
            return ExitCode::from(1);
        }
    }
    let options = Options {
        config: args.config,
        check: args.check,
        wait_for_members: Duration::from_secs(args.wait_for_members),
        socket: args.socket,
        http: args.http,
        token_file: args.token_file,
        fault_injection: args.fault_injection,
    };
    match startup::run(&options, &stop) {
        Ok(said) => {
            if let Some(said) = said {
                println!("{said}");
            }
            ExitCode::SUCCESS
        }
        Err(fatal) => {
            for line in &fatal.lines {
                eprintln!("xlaggd: {line}");
            }
            ExitCode::from(fatal.status)
        }
    }
}
