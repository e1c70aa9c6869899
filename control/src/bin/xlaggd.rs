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
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use std::os::fd::{AsRawFd, RawFd};

use clap::Parser;
use xlagg_control::api;
use xlagg_control::config::{Config, ConfigDoc};
use xlagg_control::daemon::{runnable, Daemon};
use xlagg_control::http;
use xlagg_control::lagg::{ControlSocket, Lagg};
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
    // A lagg that cannot start (a missing NIC, a foreign program) is reported and retried
    // while the others run.
    let failed = daemon.start_all(&nl);
    if !failed.is_empty() {
        tracing::warn!(failed = ?failed, "running degraded: these laggs are retried when their devices change");
    }
    let mut next_view = Instant::now();
    if let Some(h) = &http {
        h.publish(daemon.read_view(&nl));
        next_view = Instant::now() + VIEW_EVERY;
    }
    println!("xlaggd: ready, {} lagg(s) running", daemon.laggs().len());
    notify_ready();
    let mut last_status = Instant::now();
    let mut next_link_poll = Instant::now() + poll;
    // The control loop: wakes on a link notification, a slow-protocol frame, a management
    // request, an LACP or link-delay deadline, the safety-net link re-read or a signal (at
    // least every 100 ms); never on worker activity.
    let mut events = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        let deadline = daemon
            .laggs()
            .iter()
            .flat_map(|l| [l.lacp_deadline(), l.link_deadline()])
            .flatten()
            .chain(daemon.retry_deadline())
            .chain([next_link_poll, now + Duration::from_millis(100)])
            .min()
            .unwrap_or(next_link_poll);
        let slow: Vec<(usize, ControlSocket, RawFd)> = daemon
            .laggs()
            .iter()
            .enumerate()
            .flat_map(|(l, lagg)| {
                lagg.control_sockets()
                    .into_iter()
                    .map(move |(c, s)| (l, c, s.as_raw_fd()))
            })
            .collect();
        let mut fds = vec![link_events.as_raw_fd(), server.wake_fd()];
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
            // A device appeared or changed: a lagg that could not start may now.
            daemon.retry_soon();
            for lagg in daemon.laggs_mut() {
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
        for ((l, p, _), r) in slow.iter().zip(ready.iter().skip(2)) {
            if *r {
                let lagg = &mut daemon.laggs_mut()[*l];
                if let Err(e) = lagg.handle_control_frames(&nl, *p) {
                    tracing::error!(lagg = %lagg.config().name, socket = ?p, error = %e, "control input failed");
                }
            }
        }
        // A worker that died is noticed here, within one control tick.
        daemon.restart_dead_workers(&nl);
        if daemon.retry_deadline().is_some_and(|t| t <= Instant::now()) {
            daemon.retry_failed(&nl);
        }
        daemon.collect_events();
        // Management requests last: a change may replace laggs (and their sockets above).
        // Reads of the HTTP listener see a change's outcome as soon as its answer is sent.
        if ready.get(1) == Some(&true) {
            let answered: Vec<_> = server
                .take()
                .into_iter()
                .map(|pending| {
                    let request = pending.request.clone();
                    let response = daemon.handle(&nl, request);
                    (pending, response)
                })
                .collect();
            if let Some(h) = &http {
                h.publish(daemon.read_view(&nl));
                next_view = Instant::now() + VIEW_EVERY;
            }
            for (pending, response) in answered {
                pending.answer(response);
            }
        }
        if let Some(h) = http.as_ref().filter(|_| Instant::now() >= next_view) {
            h.publish(daemon.read_view(&nl));
            next_view = Instant::now() + VIEW_EVERY;
        }
        if Instant::now() >= next_link_poll {
            next_link_poll = Instant::now() + poll;
            for lagg in daemon.laggs_mut() {
                if let Err(e) = lagg.refresh_links(&nl) {
                    tracing::error!(lagg = %lagg.config().name, error = %e, "link state refresh failed");
                }
            }
        }
        for lagg in daemon.laggs_mut() {
            if let Err(e) = lagg.lacp_tick().and_then(|()| lagg.link_tick(&nl)) {
                tracing::error!(lagg = %lagg.config().name, error = %e, "timers failed");
            }
        }
        if !status_every.is_zero() && last_status.elapsed() >= status_every {
            last_status = Instant::now();
            for lagg in daemon.laggs() {
                print!("{}", lagg.status_table());
            }
            let _ = std::io::Write::flush(&mut std::io::stdout());
        }
    }
    tracing::info!("stopping");
    for lagg in daemon.laggs() {
        print!("{}", lagg.status_table());
    }
    daemon.stop_all(&nl);
    drop(http);
    drop(server);
    ExitCode::SUCCESS
}

/// How often the HTTP listener's read view is renewed (besides after every change).
const VIEW_EVERY: Duration = Duration::from_millis(500);

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
