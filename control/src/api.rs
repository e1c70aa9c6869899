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
    },
    /// The machine's network interfaces, and which lagg uses each.
    Interfaces,
    /// The configuration as the daemon holds it (TOML).
    Config,
    /// Everything: configuration, state of every lagg, counters, events.
    Dump,
    /// Prometheus text exposition.
    Metrics,
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
        let io = |e| ServerError::Io(path.to_path_buf(), e);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        if path.exists() {
            if UnixStream::connect(path).is_ok() {
                return Err(ServerError::Running(path.to_path_buf()));
            }
            tracing::info!(socket = %path.display(), "removing a stale management socket");
            std::fs::remove_file(path).map_err(io)?;
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

/// Reads one request, hands it to the control loop, writes the answer.
fn serve(stream: UnixStream, dispatcher: &Dispatcher) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(5)));
    let mut line = String::new();
    let response = match BufReader::new((&stream).take(MAX_REQUEST)).read_line(&mut line) {
        Err(e) => Response::refused(vec![format!("reading the request failed: {e}")]),
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
