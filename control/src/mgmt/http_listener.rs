//! The HTTP listener as the control loop keeps it: the management plane never stops the
//! dataplane. A listener that cannot start (an address DHCP has not bound yet, a TLS file that
//! does not load, a token file that cannot be written) is reported in the log, the status and
//! the dump, and tried again with a growing pause (1 s, doubling, at most 30 s), while every
//! lagg runs. Nothing here blocks: a try is one bind.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::mgmt::api::Dispatcher;
use crate::mgmt::http::{load_or_create_token, HttpOptions, HttpServer};
use crate::runtime::status::HttpState;

/// The first pause after a failed start.
const FIRST_RETRY: Duration = Duration::from_secs(1);
/// The longest pause between tries.
const LAST_RETRY: Duration = Duration::from_secs(30);

/// What the listener is to be.
#[derive(Clone, Debug)]
pub struct HttpPlan {
    /// Where to listen.
    pub addr: SocketAddr,
    /// The API token's file (made on the first start).
    pub token_file: PathBuf,
    /// Host names accepted in `Host` besides IP addresses and `localhost`.
    pub hosts: Vec<String>,
    /// HTTPS: certificate chain and private key (PEM files).
    pub tls: Option<(PathBuf, PathBuf)>,
}

/// The listener and its retries.
#[derive(Debug)]
pub struct HttpListener {
    plan: Option<HttpPlan>,
    dispatcher: Dispatcher,
    running: Option<HttpServer>,
    failure: Option<Failure>,
}

#[derive(Debug)]
struct Failure {
    error: String,
    attempts: u32,
    next: Instant,
}

impl HttpListener {
    /// A listener for `plan` (none: off), started by the first [`tick`](Self::tick).
    pub fn new(plan: Option<HttpPlan>, dispatcher: Dispatcher) -> Self {
        Self {
            plan,
            dispatcher,
            running: None,
            failure: None,
        }
    }

    /// Starts the listener when it is wanted, not running and a try is due.
    pub fn tick(&mut self, now: Instant) {
        let Some(plan) = &self.plan else {
            return;
        };
        if self.running.is_some() || self.failure.as_ref().is_some_and(|f| now < f.next) {
            return;
        }
        let started = load_or_create_token(&plan.token_file)
            .map_err(|e| format!("API token {}: {e}", plan.token_file.display()))
            .and_then(|token| {
                let options = HttpOptions {
                    addr: plan.addr,
                    token,
                    hosts: plan.hosts.clone(),
                    tls: plan.tls.clone(),
                };
                HttpServer::start(options, self.dispatcher.clone()).map_err(|e| e.to_string())
            });
        match started {
            Ok(server) => {
                if let Some(f) = self.failure.take() {
                    tracing::info!(addr = %server.addr, attempts = f.attempts + 1, "HTTP listener up after failed starts");
                } else {
                    tracing::info!(addr = %server.addr, "HTTP listener up");
                }
                self.running = Some(server);
            }
            Err(error) => {
                let attempts = self.failure.as_ref().map_or(0, |f| f.attempts) + 1;
                let pause = backoff(attempts);
                tracing::warn!(addr = %plan.addr, %error, attempts, retry_in_s = pause.as_secs(), "HTTP listener not running; the laggs are unaffected, it is tried again");
                self.failure = Some(Failure {
                    error,
                    attempts,
                    next: now + pause,
                });
            }
        }
    }

    /// When the next try is due, if one is.
    pub fn deadline(&self) -> Option<Instant> {
        self.failure.as_ref().map(|f| f.next)
    }

    /// The running listener.
    pub fn server(&self) -> Option<&HttpServer> {
        self.running.as_ref()
    }

    /// Where it stands at `now`.
    pub fn state(&self, now: Instant) -> HttpState {
        match (&self.plan, &self.running, &self.failure) {
            (None, _, _) => HttpState::Off,
            (Some(_), Some(server), _) => HttpState::Listening {
                addr: server.addr.to_string(),
            },
            (Some(plan), None, Some(f)) => HttpState::Retrying {
                addr: plan.addr.to_string(),
                error: f.error.clone(),
                attempts: f.attempts,
                next_in_s: f.next.saturating_duration_since(now).as_secs(),
            },
            (Some(plan), None, None) => HttpState::Retrying {
                addr: plan.addr.to_string(),
                error: "not started yet".into(),
                attempts: 0,
                next_in_s: 0,
            },
        }
    }

    /// Stops the listener.
    pub fn stop(&mut self) {
        self.running = None;
    }
}

/// The pause after `attempts` failed tries: 1 s, doubling, at most 30 s.
fn backoff(attempts: u32) -> Duration {
    FIRST_RETRY
        .saturating_mul(1 << attempts.saturating_sub(1).min(5))
        .min(LAST_RETRY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pause_doubles_from_a_second_to_half_a_minute() {
        let pauses: Vec<u64> = (1..=8).map(|a| backoff(a).as_secs()).collect();
        assert_eq!(pauses, [1, 2, 4, 8, 16, 30, 30, 30]);
    }

    #[test]
    fn an_address_this_machine_does_not_have_is_retried_and_reported() {
        let dir = std::env::temp_dir().join(format!("xlagg-listener-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let server = crate::mgmt::api::Server::bind(&dir.join("s.sock")).expect("bind");
        // TEST-NET-1: never an address of this machine.
        let plan = HttpPlan {
            addr: "192.0.2.77:8474".parse().expect("address"),
            token_file: dir.join("token"),
            hosts: Vec::new(),
            tls: None,
        };
        let mut listener = HttpListener::new(Some(plan), server.dispatcher());
        let t0 = Instant::now();
        listener.tick(t0);
        assert!(listener.server().is_none());
        match listener.state(t0) {
            HttpState::Retrying {
                error, attempts, ..
            } => {
                assert_eq!(attempts, 1);
                assert!(error.contains("192.0.2.77:8474"), "{error}");
            }
            other => panic!("{other:?}"),
        }
        // Not again before its pause; again after.
        listener.tick(t0 + Duration::from_millis(500));
        assert_eq!(listener.deadline(), Some(t0 + Duration::from_secs(1)));
        listener.tick(t0 + Duration::from_secs(1));
        assert!(matches!(
            listener.state(t0 + Duration::from_secs(1)),
            HttpState::Retrying { attempts: 2, .. }
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
