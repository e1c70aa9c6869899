//! The daemon's management protocol and its Unix socket.
//!
//! One request per connection: a JSON object on one line, answered by one JSON line. The
//! socket is created readable and writable by root only. A thread accepts and reads; the
//! control loop answers, woken through a socket pair it polls with its other descriptors, so
//! every change is applied by the one thread that owns the laggs.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A request.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum Request {
    /// State of one lagg or of all.
    Status {
        /// `None`: every lagg.
        #[serde(default)]
        name: Option<String>,
    },
    /// ifconfig words for one lagg (`create`, `laggport em0`, ...).
    Ifconfig {
        /// `laggN`.
        name: String,
        /// The words.
        args: Vec<String>,
        /// Validate only.
        #[serde(default)]
        dry_run: bool,
    },
    /// Replace the laggs with those of a whole document (TOML).
    Replace {
        /// The document.
        toml: String,
        /// Validate only.
        #[serde(default)]
        dry_run: bool,
    },
    /// Create (`create`) or replace one lagg's table, as the web form sends it.
    PutLagg {
        /// The whole `[[lagg]]` table.
        spec: Box<crate::config::LaggSpec>,
        /// The lagg must not exist yet.
        #[serde(default)]
        create: bool,
        /// ifconfig words applied on top (the form's Options field).
        #[serde(default)]
        options: Vec<String>,
        /// Validate only.
        #[serde(default)]
        dry_run: bool,
    },
    /// Remove a lagg.
    DeleteLagg {
        /// `laggN`.
        name: String,
        /// Check only: nothing is removed.
        #[serde(default)]
        dry_run: bool,
    },
    /// The machine's network interfaces, and which lagg uses each.
    Interfaces,
    /// The configuration as the daemon holds it (TOML).
    Config,
    /// Everything: configuration, state of every lagg, counters, events.
    Dump,
    /// Prometheus text exposition.
    Metrics,
    /// Fault injection for tests (refused unless xlaggd runs with `--fault-injection`): the
    /// worker of `queue` of lagg `name` panics.
    #[cfg(feature = "testing")]
    CrashWorker {
        /// `laggN`.
        name: String,
        /// The worker's queue.
        queue: usize,
    },
    /// Which member a flow leaves on now, and why.
    Explain {
        /// `laggN`.
        name: String,
        /// The flow's header fields by name (`src_ip`, `dst_port`, ...); any may be left out.
        #[serde(default)]
        flow: Vec<(String, String)>,
    },
    /// Counters, state and events after sequence number `since`, for the dashboard.
    Snapshot {
        /// Events with a sequence number above this one.
        #[serde(default)]
        since: u64,
    },
}

/// An answer.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct Response {
    /// Whether the request was carried out.
    pub ok: bool,
    /// One message per problem (refused requests).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
    /// The result.
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub data: serde_json::Value,
}

impl Response {
    /// Success with `data`.
    pub fn data(data: serde_json::Value) -> Self {
        Self {
            ok: true,
            errors: Vec::new(),
            data,
        }
    }

    /// Refusal.
    pub fn refused(errors: Vec<String>) -> Self {
        Self {
            ok: false,
            errors,
            data: serde_json::Value::Null,
        }
    }
}

/// What the HTTP listener answers reads from: published by the control loop (about once a
/// second and after every change), so that no number of readers ever waits on, or delays, the
/// thread that runs LACP and BFD.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReadView {
    /// When it was made (milliseconds since the Unix epoch).
    pub made_ms: u64,
    /// `Status { name: None }`'s data: every lagg, in configuration order.
    pub laggs: Vec<serde_json::Value>,
    /// `Config`'s data.
    pub config: serde_json::Value,
    /// `Interfaces`' data.
    pub interfaces: serde_json::Value,
    /// `Dump`'s data.
    pub dump: serde_json::Value,
    /// `Metrics`: the Prometheus text.
    pub metrics: String,
    /// `Snapshot`'s counters and state, without the events.
    pub counters: serde_json::Value,
    /// The event timeline: (sequence number, event with its `seq`).
    pub events: Vec<(u64, serde_json::Value)>,
}

impl ReadView {
    /// One lagg's status, by name.
    pub fn lagg(&self, name: &str) -> Option<&serde_json::Value> {
        self.laggs.iter().find(|l| l["name"] == name)
    }

    /// What `Snapshot { since }` answers: counters and state, and the events after `since`.
    pub fn snapshot(&self, since: u64) -> serde_json::Value {
        let mut v = self.counters.clone();
        let events: Vec<&serde_json::Value> = self
            .events
            .iter()
            .filter(|(seq, _)| *seq > since)
            .map(|(_, e)| e)
            .collect();
        v["events"] = serde_json::json!(events);
        v["next"] = serde_json::json!(self.events.last().map_or(since, |(seq, _)| *seq));
        v
    }
}

/// Largest request accepted.
const MAX_REQUEST: u64 = 1 << 20;

/// Sends one request and reads the answer.
///
/// # Errors
/// The socket cannot be reached or the answer is not a response.
pub fn call(socket: &Path, request: &Request) -> io::Result<Response> {
    let mut stream = UnixStream::connect(socket)?;
    stream.set_read_timeout(Some(Duration::from_secs(120)))?;
    let mut line = serde_json::to_vec(request)?;
    line.push(b'\n');
    stream.write_all(&line)?;
    let mut answer = String::new();
    BufReader::new(stream.take(64 << 20)).read_line(&mut answer)?;
    serde_json::from_str(&answer).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("the daemon's answer is not understood: {e}"),
        )
    })
}

/// A request waiting for the control loop.
#[derive(Debug)]
pub struct Pending {
    /// What was asked.
    pub request: Request,
    reply: SyncSender<Response>,
}

impl Pending {
    /// Sends the answer back to the connection.
    pub fn answer(self, response: Response) {
        let _ = self.reply.send(response);
    }
}

/// Hands requests to the control loop from any thread (the Unix socket's, HTTP's).
#[derive(Debug, Clone)]
pub struct Dispatcher {
    tx: SyncSender<Pending>,
    waker: std::sync::Arc<UnixStream>,
}

impl Dispatcher {
    /// Hands a request to the control loop and waits for its answer.
    pub fn dispatch(&self, request: Request) -> Response {
        let (reply, answer) = mpsc::sync_channel(1);
        if self.tx.send(Pending { request, reply }).is_err() {
            return Response::refused(vec!["the daemon is stopping".into()]);
        }
        let _ = (&*self.waker).write(&[1]);
        answer
            .recv_timeout(Duration::from_secs(110))
            .unwrap_or_else(|_| Response::refused(vec!["the daemon did not answer in time".into()]))
    }
}

/// The listening socket and the thread that serves it.
#[derive(Debug)]
pub struct Server {
    path: PathBuf,
    requests: Receiver<Pending>,
    wake: UnixStream,
    dispatcher: Dispatcher,
}

/// Why the socket could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// Another daemon answers on the socket.
    #[error("another xlaggd is running (it answers on {0}); stop it first")]
    Running(PathBuf),
    /// Something that is not a socket is at the socket's path.
    #[error("management socket {0}: something that is not a socket is there; xlaggd never removes it: give another --socket or move it away")]
    NotSocket(PathBuf),
    /// I/O.
    #[error("management socket {0}: {1}")]
    Io(PathBuf, io::Error),
}

impl Server {
    /// Binds the socket (root only), replacing a stale one left by a daemon that died, and
    /// starts the accepting thread.
    ///
    /// # Errors
    /// Another daemon is running, or the socket cannot be created.
    pub fn bind(path: &Path) -> Result<Server, ServerError> {
        use std::os::unix::fs::{DirBuilderExt, FileTypeExt};
        let io = |e| ServerError::Io(path.to_path_buf(), e);
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            if !dir.exists() {
                // Root's alone: nobody else can reach the socket between bind and chmod.
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(dir)
                    .map_err(io)?;
            }
        }
        match std::fs::symlink_metadata(path) {
            Ok(m) if m.file_type().is_socket() => {
                if UnixStream::connect(path).is_ok() {
                    return Err(ServerError::Running(path.to_path_buf()));
                }
                tracing::info!(socket = %path.display(), "removing a stale management socket");
                std::fs::remove_file(path).map_err(io)?;
            }
            Ok(_) => return Err(ServerError::NotSocket(path.to_path_buf())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(e)),
        }
        let listener = UnixListener::bind(path).map_err(io)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
        let (tx, requests) = mpsc::sync_channel::<Pending>(16);
        let (wake, waker) = UnixStream::pair().map_err(io)?;
        wake.set_nonblocking(true).map_err(io)?;
        waker.set_nonblocking(true).map_err(io)?;
        let dispatcher = Dispatcher {
            tx,
            waker: std::sync::Arc::new(waker),
        };
        let for_thread = dispatcher.clone();
        std::thread::Builder::new()
            .name("xlagg-api".into())
            .spawn(move || {
                for stream in listener.incoming() {
                    match stream {
                        Ok(s) => serve(s, &for_thread),
                        Err(e) => {
                            tracing::warn!(error = %e, "accepting a management connection failed")
                        }
                    }
                }
            })
            .map_err(io)?;
        Ok(Server {
            path: path.to_path_buf(),
            requests,
            wake,
            dispatcher,
        })
    }

    /// A handle for other front ends (HTTP) to reach the control loop.
    pub fn dispatcher(&self) -> Dispatcher {
        self.dispatcher.clone()
    }

    /// The descriptor the control loop polls: readable when requests wait.
    pub fn wake_fd(&self) -> RawFd {
        self.wake.as_raw_fd()
    }

    /// The requests waiting now.
    pub fn take(&self) -> Vec<Pending> {
        let mut sink = [0u8; 64];
        while matches!((&self.wake).read(&mut sink), Ok(n) if n > 0) {}
        self.requests.try_iter().collect()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Whether the peer may use the socket: root, or the user the daemon runs as.
fn peer_allowed(stream: &UnixStream) -> Result<(), String> {
    let me = xlagg_sys::credentials::effective_uid();
    match xlagg_sys::credentials::peer_uid(stream) {
        Ok(uid) if uid == 0 || uid == me => Ok(()),
        Ok(uid) => Err(format!(
            "user {uid} may not use the management socket: only root (or user {me}, the daemon's) may"
        )),
        Err(e) => Err(format!("the peer's credentials cannot be read: {e}")),
    }
}

/// Reads one request, hands it to the control loop, writes the answer.
fn serve(stream: UnixStream, dispatcher: &Dispatcher) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(5)));
    let mut line = String::new();
    if let Err(e) = peer_allowed(&stream) {
        tracing::warn!(error = %e, "management connection refused");
        let mut out = serde_json::to_vec(&Response::refused(vec![e])).unwrap_or_default();
        out.push(b'\n');
        let _ = (&stream).write_all(&out);
        return;
    }
    let response = match BufReader::new((&stream).take(MAX_REQUEST)).read_line(&mut line) {
        Err(e) => Response::refused(vec![format!("reading the request failed: {e}")]),
        Ok(n) if n as u64 >= MAX_REQUEST && !line.ends_with('\n') => {
            Response::refused(vec![format!(
                "the request is larger than {MAX_REQUEST} bytes: nothing was read or changed"
            )])
        }
        Ok(_) => match serde_json::from_str::<Request>(&line) {
            Err(e) => Response::refused(vec![format!(
                "not a request: {e}; send one JSON object such as {{\"cmd\":\"status\"}}"
            )]),
            Ok(request) => dispatcher.dispatch(request),
        },
    };
    let mut out = serde_json::to_vec(&response).unwrap_or_default();
    out.push(b'\n');
    let _ = (&stream).write_all(&out);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("xlagg-api-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn a_file_at_the_socket_path_is_never_removed() {
        let dir = scratch("file");
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("xlaggd.sock");
        std::fs::write(&path, "precious").expect("write");
        let e = Server::bind(&path).expect_err("refused");
        assert!(matches!(e, ServerError::NotSocket(_)), "{e}");
        assert_eq!(
            std::fs::read_to_string(&path).expect("still there"),
            "precious"
        );
        let link = dir.join("link.sock");
        std::os::unix::fs::symlink(&path, &link).expect("symlink");
        assert!(matches!(
            Server::bind(&link),
            Err(ServerError::NotSocket(_))
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_directory_is_made_private_and_a_stale_socket_replaced() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = scratch("dir");
        let path = dir.join("run/xlaggd.sock");
        let server = Server::bind(&path).expect("bind");
        let mode = std::fs::metadata(path.parent().expect("parent"))
            .expect("dir")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
        assert_eq!(
            std::fs::metadata(&path)
                .expect("socket")
                .permissions()
                .mode()
                & 0o777,
            0o600
        );
        assert!(matches!(Server::bind(&path), Err(ServerError::Running(_))));
        // A socket nobody answers on (a daemon that died): replaced.
        std::mem::forget(server);
        let stale = dir.join("run/stale.sock");
        drop(UnixListener::bind(&stale).expect("bind"));
        let again = Server::bind(&stale).expect("stale socket replaced");
        drop(again);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
