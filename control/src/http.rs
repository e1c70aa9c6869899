//! The HTTP listener: the versioned JSON API (`/api/v1/...`, described by `/openapi.json`), the
//! web UI (`/`, every asset served from the binary) and, later, metrics.
//!
//! Reads are open to whoever reaches the listener (localhost by default); every change needs
//! `Authorization: Bearer TOKEN` with the token the daemon keeps in `daemon.token_file`. A
//! missing or wrong token is answered 401 and nothing is handed to the control loop. Requests
//! are served on their own threads and reach the laggs only through the [`Dispatcher`], so the
//! control loop stays the only thread that changes anything.

use std::io::{self, Read};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use serde_json::json;
use tiny_http::{Header, Method, Request as HttpRequest, Response as HttpResponse};

use crate::api::{Dispatcher, Request, Response};
use crate::config::LaggSpec;

/// The web UI's files, compiled in (the appliance may have no internet).
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "/dashboard",
        "text/html; charset=utf-8",
        include_str!("../web/dashboard.html"),
    ),
    (
        "/dashboard.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/dashboard.js"),
    ),
    (
        "/",
        "text/html; charset=utf-8",
        include_str!("../web/index.html"),
    ),
    (
        "/app.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/app.js"),
    ),
    (
        "/style.css",
        "text/css; charset=utf-8",
        include_str!("../web/style.css"),
    ),
    (
        "/openapi.json",
        "application/json",
        include_str!("../web/openapi.json"),
    ),
];

/// Largest request body accepted.
const MAX_BODY: u64 = 1 << 20;

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
    crate::store::write_atomic(path, &format!("{token}\n"))?;
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

/// The HTTP listener.
pub struct HttpServer {
    server: Arc<tiny_http::Server>,
    /// The address it listens on.
    pub addr: SocketAddr,
}

impl HttpServer {
    /// Binds and starts serving.
    ///
    /// # Errors
    /// The address cannot be bound.
    pub fn start(
        addr: SocketAddr,
        token: String,
        dispatcher: Dispatcher,
    ) -> io::Result<HttpServer> {
        let server = tiny_http::Server::http(addr).map_err(|e| {
            io::Error::new(io::ErrorKind::AddrInUse, format!("HTTP on {addr}: {e}"))
        })?;
        let server = Arc::new(server);
        let addr = server.server_addr().to_ip().unwrap_or(addr);
        let accept = Arc::clone(&server);
        let token = Arc::new(token);
        std::thread::Builder::new()
            .name("xlagg-http".into())
            .spawn(move || {
                for request in accept.incoming_requests() {
                    let dispatcher = dispatcher.clone();
                    let token = Arc::clone(&token);
                    let spawned = std::thread::Builder::new()
                        .name("xlagg-http-req".into())
                        .spawn(move || handle(request, &dispatcher, &token));
                    if let Err(e) = spawned {
                        tracing::warn!(error = %e, "no thread for an HTTP request");
                    }
                }
            })?;
        Ok(HttpServer { server, addr })
    }
}

impl std::fmt::Debug for HttpServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpServer")
            .field("addr", &self.addr)
            .finish()
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.server.unblock();
    }
}

fn header(name: &str, value: &str) -> Header {
    // Names and values here are ASCII constants or generated ASCII: always a valid header.
    Header::from_bytes(name.as_bytes(), value.as_bytes()).expect("ASCII header")
}

fn json_reply(status: u16, body: &Response) -> HttpResponse<io::Cursor<Vec<u8>>> {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    HttpResponse::from_data(bytes)
        .with_status_code(status)
        .with_header(header("Content-Type", "application/json"))
        .with_header(header("Cache-Control", "no-store"))
}

/// The HTTP status for a refusal: 404 when the lagg does not exist, 422 otherwise.
fn refusal_status(r: &Response) -> u16 {
    if r.errors.iter().any(|e| e.contains("does not exist")) {
        404
    } else {
        422
    }
}

fn handle(mut req: HttpRequest, dispatcher: &Dispatcher, token: &str) {
    let url = req.url().to_string();
    let (path, query) = url.split_once('?').unwrap_or((&url, ""));
    let dry_run = query
        .split('&')
        .any(|kv| kv == "dry_run=1" || kv == "dry_run=true");
    let method = req.method().clone();
    if method == Method::Get {
        if let Some((_, kind, body)) = ASSETS.iter().find(|(p, _, _)| *p == path) {
            let reply = HttpResponse::from_string(*body)
                .with_header(header("Content-Type", kind))
                .with_header(header("Cache-Control", "no-cache"));
            let _ = req.respond(reply);
            return;
        }
    }
    if method == Method::Get && path == "/metrics" {
        let r = dispatcher.dispatch(Request::Metrics);
        let text = r.data["text"].as_str().unwrap_or_default().to_string();
        let reply = HttpResponse::from_string(text).with_header(header(
            "Content-Type",
            "text/plain; version=0.0.4; charset=utf-8",
        ));
        let _ = req.respond(reply);
        return;
    }
    if method == Method::Get && path == "/api/v1/stream" {
        stream(req, dispatcher);
        return;
    }
    let changes = !matches!(method, Method::Get | Method::Head);
    if changes {
        let given = req
            .headers()
            .iter()
            .find(|h| h.field.equiv("Authorization"))
            .map(|h| h.value.as_str().trim().to_string())
            .unwrap_or_default();
        let ok = given
            .strip_prefix("Bearer ")
            .is_some_and(|t| same(t.trim(), token));
        if !ok {
            let why = if given.is_empty() {
                "missing token: changes need Authorization: Bearer TOKEN (the token is in the daemon's token_file, root only)"
            } else {
                "wrong token: nothing was changed"
            };
            let _ = req.respond(json_reply(401, &Response::refused(vec![why.into()])));
            return;
        }
    }
    let mut body = String::new();
    if changes {
        if let Err(e) = req.as_reader().take(MAX_BODY).read_to_string(&mut body) {
            let _ = req.respond(json_reply(
                400,
                &Response::refused(vec![format!("reading the body failed: {e}")]),
            ));
            return;
        }
    }
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
    let request = match (&method, segments.as_slice()) {
        (Method::Get, ["api", "v1", "laggs"]) => Ok(Request::Status { name: None }),
        (Method::Get, ["api", "v1", "laggs", name]) => Ok(Request::Status {
            name: Some((*name).to_string()),
        }),
        (Method::Get, ["api", "v1", "interfaces"]) => Ok(Request::Interfaces),
        (Method::Get, ["api", "v1", "config"]) => Ok(Request::Config),
        (Method::Get, ["api", "v1", "dump"]) => Ok(Request::Dump),
        (Method::Post, ["api", "v1", "auth"]) => {
            let _ = req.respond(json_reply(200, &Response::data(json!({"token": "valid"}))));
            return;
        }
        (Method::Post, ["api", "v1", "laggs"]) => form(&body).map(|(spec, options)| Request::PutLagg {
            spec: Box::new(spec),
            create: true,
            options,
            dry_run,
        }),
        (Method::Put, ["api", "v1", "laggs", name]) => form(&body).and_then(|(spec, options)| {
            if spec.name == *name {
                Ok(Request::PutLagg {
                    spec: Box::new(spec),
                    create: false,
                    options,
                    dry_run,
                })
            } else {
                Err(format!(
                    "{name}.name: renaming is not supported: the body names {} (delete and create instead)",
                    spec.name
                ))
            }
        }),
        (Method::Delete, ["api", "v1", "laggs", name]) => Ok(Request::DeleteLagg {
            name: (*name).to_string(),
        }),
        (Method::Post, ["api", "v1", "laggs", name, "ifconfig"]) => {
            #[derive(serde::Deserialize)]
            struct Words {
                args: Vec<String>,
            }
            serde_json::from_str::<Words>(&body)
                .map(|w| Request::Ifconfig {
                    name: (*name).to_string(),
                    args: w.args,
                    dry_run,
                })
                .map_err(|e| format!("the body must be {{\"args\": [\"laggport\", \"em0\"]}}: {e}"))
        }
        (Method::Put, ["api", "v1", "config"]) => Ok(Request::Replace {
            toml: body,
            dry_run,
        }),
        (_, ["api", ..]) => {
            let _ = req.respond(json_reply(
                404,
                &Response::refused(vec![format!(
                    "no {method} {path}: see /openapi.json for the API"
                )]),
            ));
            return;
        }
        _ => {
            let _ = req.respond(
                HttpResponse::from_string(format!("no {path} here; the web UI is at /\n"))
                    .with_status_code(404),
            );
            return;
        }
    };
    let response = match request {
        Err(e) => Response::refused(vec![e]),
        Ok(r) => dispatcher.dispatch(r),
    };
    let status = if response.ok {
        200
    } else {
        refusal_status(&response)
    };
    let _ = req.respond(json_reply(status, &response));
}

/// Server-sent events for the dashboard: a snapshot of every lagg each second, with the
/// events since the previous one, until the client goes away.
fn stream(req: HttpRequest, dispatcher: &Dispatcher) {
    use std::io::Write;
    let mut out = req.into_writer();
    let head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-store\r\n\
                Connection: close\r\n\r\n";
    if out
        .write_all(head.as_bytes())
        .and_then(|()| out.flush())
        .is_err()
    {
        return;
    }
    let mut since = 0;
    loop {
        let r = dispatcher.dispatch(Request::Snapshot { since });
        if !r.ok {
            return;
        }
        since = r.data["next"].as_u64().unwrap_or(since);
        let line = format!("data: {}\n\n", r.data);
        if out
            .write_all(line.as_bytes())
            .and_then(|()| out.flush())
            .is_err()
        {
            return;
        }
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
}

/// The web form's body: the `[[lagg]]` table as JSON, plus `options` (ifconfig words).
fn form(body: &str) -> Result<(LaggSpec, Vec<String>), String> {
    let mut value: serde_json::Value =
        serde_json::from_str(body).map_err(|e| format!("the body is not JSON: {e}"))?;
    let options = match value.as_object_mut().and_then(|o| o.remove("options")) {
        Some(serde_json::Value::String(s)) => s.split_whitespace().map(String::from).collect(),
        Some(serde_json::Value::Array(a)) => a
            .into_iter()
            .filter_map(|v| v.as_str().map(String::from))
            .collect(),
        _ => Vec::new(),
    };
    let spec: LaggSpec =
        serde_json::from_value(value).map_err(|e| format!("the lagg is not understood: {e}"))?;
    Ok((spec, options))
}
