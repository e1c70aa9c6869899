//! How `xlaggd` starts, runs and stops, step by step: read and validate the configuration
//! (nothing is touched when it is invalid), wait for late member devices at boot, take the
//! management socket (the one-daemon lock), start the HTTP listener, subscribe to link
//! notifications, start every lagg that can start, tell systemd, run the control loop until
//! asked to stop, and stop every lagg leaving nothing behind. `--check` stops after checking
//! the devices.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use xlagg_sys::linkevents::LinkEvents;

use crate::app::control_loop::{ControlLoop, LoopTimes};
use crate::config::{Config, ConfigDoc};
use crate::mgmt::api;
use crate::mgmt::http_listener::{HttpListener, HttpPlan};
use crate::runtime::daemon::{runnable, Daemon};
use crate::runtime::lagg::Lagg;
use crate::runtime::status::HttpState;
use crate::sys::netdev::Netlink;

/// What the command line asks of a start.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// The configuration file (missing: an empty configuration).
    pub config: PathBuf,
    /// Validate the configuration and the devices it names, then exit.
    pub check: bool,
    /// At boot: how long to wait for every member device to appear.
    pub wait_for_members: Duration,
    /// The management socket instead of the configuration's.
    pub socket: Option<PathBuf>,
    /// The HTTP listener instead of the configuration's (`off`: none).
    pub http: Option<String>,
    /// The API token's file instead of the configuration's.
    pub token_file: Option<PathBuf>,
    /// Accept fault-injection requests (tests only).
    pub fault_injection: bool,
}

/// Why `xlaggd` ends without running: what to print and the exit status.
#[derive(Debug)]
pub struct Fatal {
    /// 2: the configuration (or an argument) is invalid and nothing was touched; 1: starting
    /// failed and whatever had been created was removed.
    pub status: u8,
    /// One line per problem.
    pub lines: Vec<String>,
}

impl Fatal {
    fn invalid(line: String) -> Self {
        Self {
            status: 2,
            lines: vec![line],
        }
    }

    fn failed(line: String) -> Self {
        Self {
            status: 1,
            lines: vec![line],
        }
    }
}

/// The configuration as read: the text (when the file exists), the document and its
/// validated form.
struct Loaded {
    exists: bool,
    doc: ConfigDoc,
    config: Config,
}

/// Reads and validates `path`; a missing file is an empty configuration.
fn load(path: &Path) -> Result<Loaded, Fatal> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => Some(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            return Err(Fatal::invalid(format!(
                "cannot read {}: {e}",
                path.display()
            )))
        }
    };
    let invalid = |problems: Vec<String>| Fatal {
        status: 2,
        lines: problems
            .iter()
            .map(|p| format!("{}: {p}", path.display()))
            .collect(),
    };
    let doc = match text.as_deref() {
        Some(t) => ConfigDoc::from_toml(t).map_err(|e| invalid(e.problems))?,
        None => ConfigDoc::default(),
    };
    let config = doc.validate().map_err(|e| invalid(e.problems))?;
    Ok(Loaded {
        exists: text.is_some(),
        doc,
        config,
    })
}

/// Logs to stderr at the configuration's level (`RUST_LOG` wins).
fn init_logging(config: &Config) {
    let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| config.daemon.log_level.clone());
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&filter).unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

/// `--check`: every lagg against the devices, without touching anything. A running daemon
/// holds programs on its members (found through its socket): those are not foreign.
fn check(
    o: &Options,
    nl: &Netlink,
    config: &Config,
    socket: &Path,
    http: Option<&HttpPlan>,
) -> Result<String, Fatal> {
    let other_daemon = std::os::unix::net::UnixStream::connect(socket).is_ok();
    let theirs: Vec<u32> = if other_daemon {
        config
            .laggs
            .iter()
            .flat_map(|l| l.ports.iter())
            .filter_map(|p| nl.link(p).ok().flatten().map(|l| l.index))
            .collect()
    } else {
        Vec::new()
    };
    for lagg in config.laggs.iter().filter(|l| runnable(l)) {
        Lagg::preflight_owned(nl, lagg, &theirs)
            .map_err(|e| Fatal::invalid(format!("{}: {e}", o.config.display())))?;
        // A running lagg takes a missing member in when it appears; a check names it.
        if let Some(port) = lagg
            .ports
            .iter()
            .find(|p| !matches!(nl.link(p), Ok(Some(_))))
        {
            return Err(Fatal::invalid(format!(
                "{}: {}.laggports: no network interface named '{port}' on this machine \
                 (xlaggd runs {} on the others and takes it in when it appears)",
                o.config.display(),
                lagg.name,
                lagg.name
            )));
        }
    }
    let mut verdict = format!(
        "{}: configuration valid, {} lagg(s)",
        o.config.display(),
        config.laggs.len()
    );
    // The running daemon holds its own listener's address.
    if let Some(problem) = http.filter(|_| !other_daemon).and_then(http_problem) {
        verdict.push_str(&format!(
            "\nHTTP listener: {problem}; xlaggd runs the laggs without it and tries it again"
        ));
    }
    Ok(verdict)
}

/// The HTTP listener the options and the configuration ask for, if any.
fn http_plan(o: &Options, config: &Config, token_file: &Path) -> Result<Option<HttpPlan>, Fatal> {
    let addr = match o.http.as_deref() {
        None => config.daemon.http,
        Some("off") => None,
        Some(a) => Some(a.parse().map_err(|_| {
            Fatal::invalid(format!(
                "--http: '{a}' is not an address and port such as 127.0.0.1:8474, or off"
            ))
        })?),
    };
    Ok(addr.map(|addr| HttpPlan {
        addr,
        token_file: token_file.to_path_buf(),
        hosts: config.daemon.http_hosts.clone(),
        tls: config
            .daemon
            .tls
            .as_ref()
            .map(|(c, k)| (PathBuf::from(c), PathBuf::from(k))),
    }))
}

/// Whether the HTTP listener of `plan` can start now (`--check`, which touches nothing): its
/// token file can be read or made, its address bound, its TLS files loaded. `None`: it can.
fn http_problem(plan: &HttpPlan) -> Option<String> {
    if let Err(e) = token_file_usable(&plan.token_file) {
        return Some(format!("API token {}: {e}", plan.token_file.display()));
    }
    let dir = std::env::temp_dir().join(format!("xlagg-check-{}", std::process::id()));
    let server = match api::Server::bind(&dir.join("check.sock")) {
        Ok(s) => s,
        Err(e) => return Some(format!("cannot check it here: {e}")),
    };
    // A token of its own: the real one is only read.
    let trial = HttpPlan {
        token_file: dir.join("token"),
        ..plan.clone()
    };
    let mut listener = HttpListener::new(Some(trial), server.dispatcher());
    let now = Instant::now();
    listener.tick(now);
    let problem = match listener.state(now) {
        HttpState::Retrying { error, .. } => Some(error),
        _ => None,
    };
    listener.stop();
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
    problem
}

/// Whether the token file can be read, or made in its directory.
fn token_file_usable(path: &Path) -> std::io::Result<()> {
    if path.exists() {
        return std::fs::read_to_string(path).map(|_| ());
    }
    let Some(dir) = path.parent().filter(|d| d.exists()) else {
        // Made with the token on the first start.
        return Ok(());
    };
    let probe = dir.join(format!(".xlagg-check-{}", std::process::id()));
    std::fs::write(&probe, b"").and_then(|()| std::fs::remove_file(&probe))
}

/// Runs `xlaggd` until `stop` is set (SIGINT, SIGTERM), then stops every lagg. Returns what
/// to print on success (`--check`'s verdict), or why it could not run.
///
/// # Errors
/// An invalid configuration or argument (status 2), or a start that failed (status 1).
pub fn run(o: &Options, stop: &AtomicBool) -> Result<Option<String>, Fatal> {
    let Loaded {
        exists,
        doc,
        config,
    } = load(&o.config)?;
    init_logging(&config);
    if !exists {
        tracing::info!(config = %o.config.display(), "no configuration file: starting with no laggs; the first change creates it");
    }
    let nl = Netlink::new().map_err(|e| Fatal::failed(e.to_string()))?;
    if !o.wait_for_members.is_zero() {
        wait_for_members(&nl, &config, o.wait_for_members, stop);
    }
    let socket = o
        .socket
        .clone()
        .unwrap_or_else(|| PathBuf::from(&config.daemon.socket));
    let token_file = o
        .token_file
        .clone()
        .unwrap_or_else(|| PathBuf::from(&config.daemon.token_file));
    let plan = http_plan(o, &config, &token_file)?;
    if o.check {
        return check(o, &nl, &config, &socket, plan.as_ref()).map(Some);
    }
    // The socket doubles as the one-daemon lock: bound before anything is checked or touched,
    // so a second daemon is told that one runs.
    let server = api::Server::bind(&socket).map_err(|e| Fatal::failed(e.to_string()))?;
    // What a daemon that did not stop cleanly left changed on the members is set back before
    // anything is taken, so the originals recorded now are the real ones.
    let restored = crate::sys::restore::init(&socket.with_extension("restore.json"));
    if !restored.is_empty() {
        tracing::warn!(settings = %restored.join("; "), "set back what an earlier run left changed (it did not stop cleanly)");
    }
    // The management plane never stops the dataplane: a listener that cannot start is
    // reported and retried by the control loop while the laggs run.
    let http = HttpListener::new(plan, server.dispatcher());
    // Subscribe to link notifications before any lagg reads its members' state, so that no
    // change falls between the first read and the subscription.
    let link_events = LinkEvents::open()
        .map_err(|e| Fatal::failed(format!("cannot subscribe to link notifications: {e}")))?;
    let times = LoopTimes {
        link_poll: Duration::from_millis(config.daemon.link_poll_ms),
        status_every: Duration::from_millis(config.daemon.status_interval_ms),
    };
    let mut daemon = Daemon::new(o.config.clone(), doc, config);
    daemon.set_token_file(token_file);
    daemon.set_fault_injection(o.fault_injection);
    let mut control = ControlLoop::new(nl, daemon, server, http, link_events, times);
    // A lagg that cannot start (a missing NIC, a foreign program) is reported and retried
    // while the others run.
    let running = control.start();
    // SYNCDHCP: ready once addressed (or the wait is over).
    control.wait_for_leases(stop);
    println!("xlaggd: ready, {running} lagg(s) running");
    notify_ready();
    control.run(stop);
    control.finish();
    Ok(None)
}

/// Waits until every member and forward port of the configuration exists, `limit` passed
/// (then the preflight names what is missing) or `stop` is set.
fn wait_for_members(nl: &Netlink, config: &Config, limit: Duration, stop: &AtomicBool) {
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
        if missing.is_empty() || Instant::now() >= until || stop.load(Ordering::Relaxed) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_invalid_file_is_refused_with_every_problem_and_status_2() {
        let dir = std::env::temp_dir().join(format!("xlagg-startup-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("bad.toml");
        std::fs::write(
            &path,
            "[[lagg]]\nname = \"lagg0\"\nlaggproto = \"fast\"\nmtu = 10\n",
        )
        .expect("write");
        let err = load(&path).err().expect("refused");
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(err.status, 2);
        assert!(
            err.lines.iter().any(|l| l.contains("lagg0.laggproto")),
            "{:?}",
            err.lines
        );
        assert!(
            err.lines.iter().any(|l| l.contains("lagg0.mtu")),
            "{:?}",
            err.lines
        );
    }

    #[test]
    fn a_missing_file_is_an_empty_configuration() {
        let loaded = load(Path::new("/nonexistent/xlagg-startup/xlagg.toml")).expect("loads");
        assert!(!loaded.exists);
        assert!(loaded.config.laggs.is_empty());
    }
}
