//! The HTTP listener: the versioned JSON API (`/api/v1/...`, described by `/openapi.json`), the
//! web UI (`/`, every asset served from the binary), Prometheus metrics (`/metrics`) and the
//! dashboard's event stream (`/api/v1/stream`).
//!
//! Reads are open to whoever reaches the listener (localhost by default); every change needs
//! `Authorization: Bearer TOKEN` with the token the daemon keeps in `daemon.token_file`. A
//! missing or wrong token is answered 401 and nothing is handed to the control loop.
//!
//! The listener runs hyper on a tokio runtime of its own thread, and is bounded everywhere a
//! client could hold it:
//! - request head: at most [`MAX_HEAD`] bytes and [`MAX_HEADERS`] fields (431 beyond), read
//!   within [`HEAD_TIMEOUT`] (the connection is closed otherwise, also between keep-alive
//!   requests: a slowloris client holds nothing for long);
//! - body: at most [`MAX_BODY`] bytes (413, nothing applied: a body is never cut and used),
//!   read within [`BODY_TIMEOUT`] (408);
//! - at most [`MAX_CONNECTIONS`] connections (more are closed at once), of which
//!   [`MAX_PER_SOURCE`](crate::mgmt::http_guard::MAX_PER_SOURCE) from one address,
//!   [`MAX_STREAMS`] event streams and [`MAX_CHANGES`] changes in flight (503), every
//!   connection at most [`CONNECTION_LIFETIME`], and an answer its client does not read is
//!   given up after [`WRITE_STALL`](crate::mgmt::http_guard::WRITE_STALL);
//! - `Host` must be an IP address, `localhost` or a name listed in `daemon.http_hosts`
//!   (a page from another site that resolves its name to this address — DNS rebinding — is
//!   refused);
//! - every answer says `nosniff`, no framing, no referrer, and the UI's pages carry a content
//!   security policy that allows only their own scripts.
//!
//! Reads are served from the [`ReadView`] the control loop publishes (about once a second and
//! after every change): a flood of GETs never reaches the thread that sends LACPDUs and BFD
//! packets. Changes go to the control loop through the [`Dispatcher`], the only thread that
//! changes anything. With `daemon.tls_cert`/`tls_key` the listener speaks HTTPS (rustls).

use std::convert::Infallible;
use std::io::{self, Read};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Full, Limited, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, HOST};
use hyper::{Method, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::json;
use tokio::sync::Semaphore;

use crate::config::LaggSpec;
use crate::mgmt::api::{Dispatcher, ReadView, Request, Response};

mod routes;

pub use routes::form;
use routes::handle;
#[cfg(test)]
use routes::percent_decode;

/// The web UI's files, compiled in (the appliance may have no internet).
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "/dashboard",
        "text/html; charset=utf-8",
        include_str!("../../../web/dashboard.html"),
    ),
    (
        "/dashboard.js",
        "text/javascript; charset=utf-8",
        include_str!("../../../web/dashboard.js"),
    ),
    (
        "/",
        "text/html; charset=utf-8",
        include_str!("../../../web/index.html"),
    ),
    (
        "/app.js",
        "text/javascript; charset=utf-8",
        include_str!("../../../web/app.js"),
    ),
    (
        "/style.css",
        "text/css; charset=utf-8",
        include_str!("../../../web/style.css"),
    ),
    (
        "/openapi.json",
        "application/json",
        include_str!("../../../web/openapi.json"),
    ),
];

/// Largest request body accepted (a whole configuration fits many times over).
pub const MAX_BODY: usize = 1 << 20;
/// Largest request head (request line and header fields).
pub const MAX_HEAD: usize = 16 << 10;
/// Header fields in one request at most.
pub const MAX_HEADERS: usize = 64;
/// Time to send a request head, and the longest a connection may sit idle between requests.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// Time to send a body.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections served at once; more are closed as they arrive.
pub const MAX_CONNECTIONS: usize = 64;
/// Dashboard event streams at once.
pub const MAX_STREAMS: usize = 8;
/// Changes waiting for the control loop at once.
pub const MAX_CHANGES: usize = 4;
/// The longest any connection lives (an event stream's client reconnects).
pub const CONNECTION_LIFETIME: Duration = Duration::from_secs(600);
/// Time for a TLS handshake.
const TLS_TIMEOUT: Duration = Duration::from_secs(10);

/// Reads the API token, creating it (32 random bytes, hex, root only) on first start.
///
/// # Errors
/// The file cannot be read or written, or is empty.
pub fn load_or_create_token(path: &Path) -> io::Result<String> {
    match std::fs::read_to_string(path) {
        Ok(t) if !t.trim().is_empty() => return Ok(t.trim().to_string()),
        Ok(_) => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{} is empty: remove it and a new token is made",
                    path.display()
                ),
            ))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    if let crate::config::store::Written::NotDurable(e) =
        crate::config::store::write_atomic(path, &format!("{token}\n"))?
    {
        tracing::warn!(error = %e, "API token saved but not yet safe from a power loss");
    }
    tracing::info!(file = %path.display(), "API token created");
    Ok(token)
}

/// Compares without an early exit, so timing says nothing about the token.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// What the listener needs besides the control loop.
#[derive(Clone, Debug)]
pub struct HttpOptions {
    /// Where to listen.
    pub addr: SocketAddr,
    /// The API token.
    pub token: String,
    /// Host names accepted in `Host` besides IP addresses and `localhost`.
    pub hosts: Vec<String>,
    /// HTTPS: certificate chain and private key (PEM files).
    pub tls: Option<(PathBuf, PathBuf)>,
}

/// The HTTP listener; stopped on drop.
pub struct HttpServer {
    /// The address it listens on.
    pub addr: SocketAddr,
    view: Arc<ArcSwap<ReadView>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for HttpServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpServer")
            .field("addr", &self.addr)
            .finish()
    }
}

/// What every connection shares.
struct Shared {
    token: String,
    hosts: Vec<String>,
    dispatcher: Dispatcher,
    view: Arc<ArcSwap<ReadView>>,
    streams: Arc<Semaphore>,
    changes: Arc<Semaphore>,
}

type Body = BoxBody<Bytes, Infallible>;

fn tls_acceptor(cert: &Path, key: &Path) -> io::Result<tokio_rustls::TlsAcceptor> {
    use tokio_rustls::rustls;
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let bad = |what: &Path, e: &dyn std::fmt::Display| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("TLS: {}: {e}", what.display()),
        )
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| bad(cert, &e))?
        .collect::<Result<_, _>>()
        .map_err(|e| bad(cert, &e))?;
    if certs.is_empty() {
        return Err(bad(cert, &"no certificate in the file"));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| bad(key, &e))?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| bad(cert, &e))?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .map_err(|e| bad(cert, &e))?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

impl HttpServer {
    /// Binds and starts serving on a thread of its own.
    ///
    /// # Errors
    /// The address cannot be bound, or the TLS files cannot be used.
    pub fn start(options: HttpOptions, dispatcher: Dispatcher) -> io::Result<HttpServer> {
        let tls = match &options.tls {
            Some((cert, key)) => Some(tls_acceptor(cert, key)?),
            None => None,
        };
        let listener = std::net::TcpListener::bind(options.addr)
            .map_err(|e| io::Error::new(e.kind(), format!("HTTP on {}: {e}", options.addr)))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        if !addr.ip().is_loopback() && tls.is_none() {
            tracing::warn!(%addr, "the HTTP API listens beyond this machine without TLS: the token and the configuration cross the network in clear; set daemon.tls_cert and daemon.tls_key, or listen on 127.0.0.1");
        }
        let view = Arc::new(ArcSwap::from_pointee(ReadView::default()));
        let shared = Arc::new(Shared {
            token: options.token,
            hosts: options.hosts,
            dispatcher,
            view: Arc::clone(&view),
            streams: Arc::new(Semaphore::new(MAX_STREAMS)),
            changes: Arc::new(Semaphore::new(MAX_CHANGES)),
        });
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let thread = std::thread::Builder::new()
            .name("xlagg-http".into())
            .spawn(move || runtime.block_on(accept_loop(listener, tls, shared, stopped)))?;
        Ok(HttpServer {
            addr,
            view,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Replaces what reads are answered from.
    pub fn publish(&self, view: ReadView) {
        self.view.store(Arc::new(view));
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn accept_loop(
    listener: std::net::TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shared: Arc<Shared>,
    mut stopped: tokio::sync::oneshot::Receiver<()>,
) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(error = %e, "HTTP listener");
            return;
        }
    };
    let connections = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let sources = crate::mgmt::http_guard::PerSource::default();
    let mut refused = 0u64;
    loop {
        let (tcp, peer) = tokio::select! {
            _ = &mut stopped => return,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "accepting an HTTP connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = Arc::clone(&connections).try_acquire_owned() else {
            refused += 1;
            if refused.is_power_of_two() {
                tracing::warn!(%peer, refused, limit = MAX_CONNECTIONS, "HTTP connection limit reached: closing new connections");
            }
            drop(tcp);
            continue;
        };
        let Some(source) = sources.take(peer.ip()) else {
            refused += 1;
            if refused.is_power_of_two() {
                tracing::warn!(%peer, refused, limit = crate::mgmt::http_guard::MAX_PER_SOURCE, "HTTP connections from one address at their limit: closing its new ones");
            }
            drop(tcp);
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let tcp = crate::mgmt::http_guard::WriteDeadline::new(tcp);
        let shared = Arc::clone(&shared);
        let tls = tls.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let _source = source;
            let served = async {
                match tls {
                    Some(acceptor) => {
                        match tokio::time::timeout(TLS_TIMEOUT, acceptor.accept(tcp)).await {
                            Ok(Ok(stream)) => serve_connection(TokioIo::new(stream), shared).await,
                            Ok(Err(e)) => {
                                tracing::debug!(%peer, error = %e, "TLS handshake failed")
                            }
                            Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                        }
                    }
                    None => serve_connection(TokioIo::new(tcp), shared).await,
                }
            };
            let _ = tokio::time::timeout(CONNECTION_LIFETIME, served).await;
        });
    }
}

async fn serve_connection<I>(io: I, shared: Arc<Shared>)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req| {
        let shared = Arc::clone(&shared);
        async move { Ok::<_, Infallible>(handle(req, &shared).await) }
    });
    let result = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEAD_TIMEOUT)
        .max_buf_size(MAX_HEAD)
        .max_headers(MAX_HEADERS)
        .keep_alive(true)
        .serve_connection(io, service)
        .await;
    if let Err(e) = result {
        tracing::debug!(error = %e, "HTTP connection ended");
    }
}

/// Headers every answer carries.
fn secured(mut response: hyper::Response<Body>) -> hyper::Response<Body> {
    let h = response.headers_mut();
    for (name, value) in [
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
        (
            "content-security-policy",
            "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
        ),
    ] {
        h.insert(name, HeaderValue::from_static(value));
    }
    response
}

fn reply(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> hyper::Response<Body> {
    let mut r = hyper::Response::new(Full::new(body.into()).boxed());
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r.headers_mut()
        .insert("cache-control", HeaderValue::from_static("no-store"));
    r
}

fn json_reply(status: u16, body: &Response) -> hyper::Response<Body> {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    reply(
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        "application/json",
        bytes,
    )
}

fn refused(status: u16, message: String) -> hyper::Response<Body> {
    json_reply(status, &Response::refused(vec![message]))
}

/// Whether `Host` names this listener in a way no other site can: an IP address, `localhost`,
/// or a configured name.
pub fn host_allowed(host: &str, names: &[String]) -> bool {
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(h, port)| {
            if port.chars().all(|c| c.is_ascii_digit()) {
                h
            } else {
                host
            }
        }),
    };
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name.parse::<IpAddr>().is_ok()
        || name == "localhost"
        || names.iter().any(|n| n.eq_ignore_ascii_case(&name))
}

/// The query of an API request: only `dry_run` is known, as 1/true or 0/false.
///
/// # Errors
/// Any other parameter or value, with what to write instead.
pub fn parse_query(query: &str) -> Result<bool, String> {
    let mut dry_run = false;
    for kv in query.split('&').filter(|kv| !kv.is_empty()) {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        match (k, v) {
            ("dry_run", "1" | "true") => dry_run = true,
            ("dry_run", "0" | "false") => dry_run = false,
            ("dry_run", other) => {
                return Err(format!(
                    "dry_run={other}: write dry_run=1 (check only) or dry_run=0; nothing was changed"
                ))
            }
            (other, _) => {
                return Err(format!(
                    "unknown query parameter '{other}': the API takes only dry_run=1; nothing was changed"
                ))
            }
        }
    }
    Ok(dry_run)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_percent_decoded_or_refused() {
        assert_eq!(
            percent_decode("2001%3Adb8%3A%3A1").as_deref(),
            Some("2001:db8::1")
        );
        assert_eq!(percent_decode("a+b%20c").as_deref(), Some("a b c"));
        assert_eq!(percent_decode("10.0.0.1").as_deref(), Some("10.0.0.1"));
        assert_eq!(percent_decode("%zz"), None);
        assert_eq!(percent_decode("%4"), None);
        assert_eq!(percent_decode("%ff"), None, "not UTF-8");
    }

    #[test]
    fn host_names_that_another_site_could_own_are_refused() {
        let listed = vec!["xlagg.example.net".to_string()];
        for ok in [
            "127.0.0.1:8474",
            "127.0.0.1",
            "[::1]:8474",
            "localhost:8474",
            "LOCALHOST",
            "192.0.2.7:8474",
            "xlagg.example.net:8474",
            "xlagg.example.net.",
        ] {
            assert!(host_allowed(ok, &listed), "{ok}");
        }
        for bad in [
            "evil.example.com:8474",
            "localhost.evil.com",
            "127.0.0.1.nip.io",
            "",
        ] {
            assert!(!host_allowed(bad, &listed), "{bad}");
        }
    }

    #[test]
    fn only_dry_run_is_a_query_and_only_with_a_clear_value() {
        assert_eq!(parse_query(""), Ok(false));
        assert_eq!(parse_query("dry_run=1"), Ok(true));
        assert_eq!(parse_query("dry_run=true"), Ok(true));
        assert_eq!(parse_query("dry_run=0"), Ok(false));
        assert!(parse_query("dry_run=yes")
            .unwrap_err()
            .contains("write dry_run=1"));
        assert!(parse_query("dryrun=1")
            .unwrap_err()
            .starts_with("unknown query parameter 'dryrun'"));
    }
}
