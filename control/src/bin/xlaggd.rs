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
use std::time::{Duration, Instant};

use clap::Parser;
use xlagg_control::api;
use xlagg_control::config::{Config, ConfigDoc};
use xlagg_control::control_loop::{ControlLoop, LoopTimes};
use xlagg_control::daemon::{runnable, Daemon};
use xlagg_control::http;
use xlagg_control::lagg::Lagg;
use xlagg_control::netdev::Netlink;
use xlagg_dataplane::linkevents::LinkEvents;

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
    /// Accept fault-injection requests on the management socket (tests only).
    #[arg(long, hide = true)]
    fault_injection: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.metrics_catalog {
        print!("{}", xlagg_control::metrics::catalog_text());
        return ExitCode::SUCCESS;
    }
    let text = match std::fs::read_to_string(&args.config) {
        Ok(t) => Some(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            eprintln!("xlaggd: cannot read {}: {e}", args.config.display());
            return ExitCode::from(2);
        }
    };
    let doc = match text
        .as_deref()
        .map(ConfigDoc::from_toml)
        .unwrap_or(Ok(ConfigDoc::default()))
    {
        Ok(d) => d,
        Err(e) => {
            for problem in &e.problems {
                eprintln!("xlaggd: {}: {problem}", args.config.display());
            }
            return ExitCode::from(2);
        }
    };
    let config: Config = match doc.validate() {
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
    if text.is_none() {
        tracing::info!(config = %args.config.display(), "no configuration file: starting with no laggs; the first change creates it");
    }
    let nl = match Netlink::new() {
        Ok(nl) => nl,
        Err(e) => {
            eprintln!("xlaggd: {e}");
            return ExitCode::from(1);
        }
    };
    if args.wait_for_members > 0 {
        wait_for_members(&nl, &config, Duration::from_secs(args.wait_for_members));
    }
    let socket = args
        .socket
        .clone()
        .unwrap_or_else(|| PathBuf::from(&config.daemon.socket));
    // A running daemon holds programs on its members; --check must not take them for foreign.
    let other_daemon = std::os::unix::net::UnixStream::connect(&socket).is_ok();
    let theirs: Vec<u32> = if args.check && other_daemon {
        config
            .laggs
            .iter()
            .flat_map(|l| l.ports.iter())
            .filter_map(|p| nl.link(p).ok().flatten().map(|l| l.index))
            .collect()
    } else {
        Vec::new()
    };
    // The socket doubles as the one-daemon lock: bound before anything is checked or touched,
    // so a second daemon is told that one runs.
    let server = if args.check {
        None
    } else {
        match api::Server::bind(&socket) {
            Ok(s) => Some(s),
            Err(e) => {
                eprintln!("xlaggd: {e}");
                return ExitCode::from(1);
            }
        }
    };
    let Some(server) = server else {
        // --check: every lagg against the devices, without touching anything.
        for lagg in config.laggs.iter().filter(|l| runnable(l)) {
            if let Err(e) = Lagg::preflight_owned(&nl, lagg, &theirs) {
                eprintln!("xlaggd: {}: {e}", args.config.display());
                return ExitCode::from(2);
            }
        }
        println!(
            "{}: configuration valid, {} lagg(s)",
            args.config.display(),
            config.laggs.len()
        );
        return ExitCode::SUCCESS;
    };
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        if let Err(e) = signal_hook::flag::register(signal, Arc::clone(&stop)) {
            eprintln!("xlaggd: cannot install signal handler: {e}");
            return ExitCode::from(1);
        }
    }
    let http_addr = match args.http.as_deref() {
        None => config.daemon.http,
        Some("off") => None,
        Some(a) => match a.parse() {
            Ok(a) => Some(a),
            Err(_) => {
                eprintln!("xlaggd: --http: '{a}' is not an address and port such as 127.0.0.1:8474, or off");
                return ExitCode::from(2);
            }
        },
    };
    let token_file = args
        .token_file
        .clone()
        .unwrap_or_else(|| PathBuf::from(&config.daemon.token_file));
    let http = match http_addr {
        None => None,
        Some(addr) => {
            let token = match http::load_or_create_token(&token_file) {
                Ok(t) => t,
                Err(e) => {
                    eprintln!("xlaggd: API token {}: {e}", token_file.display());
                    return ExitCode::from(1);
                }
            };
            let options = http::HttpOptions {
                addr,
                token,
                hosts: config.daemon.http_hosts.clone(),
                tls: config
                    .daemon
                    .tls
                    .as_ref()
                    .map(|(c, k)| (PathBuf::from(c), PathBuf::from(k))),
            };
            match http::HttpServer::start(options, server.dispatcher()) {
                Ok(h) => Some(h),
                Err(e) => {
                    eprintln!("xlaggd: {e}");
                    return ExitCode::from(1);
                }
            }
        }
    };
    // Subscribe to link notifications before any lagg reads its members' state, so that no
    // change falls between the first read and the subscription.
    let link_events = match LinkEvents::open() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("xlaggd: cannot subscribe to link notifications: {e}");
            return ExitCode::from(1);
        }
    };
    let poll = Duration::from_millis(config.daemon.link_poll_ms);
    let status_every = Duration::from_millis(config.daemon.status_interval_ms);
    let mut daemon = Daemon::new(args.config.clone(), doc, config);
    daemon.set_endpoints(http.as_ref().map(|h| h.addr), token_file);
    daemon.set_fault_injection(args.fault_injection);
    let mut control = ControlLoop::new(
        nl,
        daemon,
        server,
        http,
        link_events,
        LoopTimes {
            link_poll: poll,
            status_every,
        },
    );
    // A lagg that cannot start (a missing NIC, a foreign program) is reported and retried
    // while the others run.
    let running = control.start();
    println!("xlaggd: ready, {running} lagg(s) running");
    notify_ready();
    control.run(&stop);
    control.finish();
    ExitCode::SUCCESS
}

/// Waits until every member and forward port of the configuration exists, or `limit` passed
/// (then the preflight names what is missing).
fn wait_for_members(nl: &Netlink, config: &Config, limit: Duration) {
    let until = Instant::now() + limit;
    let mut told = false;
    loop {
        let missing: Vec<&str> = config
            .laggs
            .iter()
            .filter(|l| runnable(l))
            .flat_map(|l| l.ports.iter().map(String::as_str))
            .filter(|p| !matches!(nl.link(p), Ok(Some(_))))
            .collect();
        if missing.is_empty() || Instant::now() >= until {
            return;
        }
        if !told {
            tracing::info!(missing = ?missing, "waiting for member devices");
            told = true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Tells systemd (Type=notify) that the laggs are up, when started by it.
fn notify_ready() {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::net::{SocketAddr, UnixDatagram};
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let bytes = path.as_bytes();
    let addr = match bytes.strip_prefix(b"@") {
        Some(name) => SocketAddr::from_abstract_name(name),
        None => SocketAddr::from_pathname(&path),
    };
    let sent =
        UnixDatagram::unbound().and_then(|s| addr.and_then(|a| s.send_to_addr(b"READY=1", &a)));
    if let Err(e) = sent {
        tracing::warn!(error = %e, "could not notify systemd");
    }
}
