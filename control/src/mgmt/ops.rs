//! Management requests as the daemon's operations: each [`Request`] maps to one typed
//! operation on [`Daemon`], and its result to JSON. The read view the HTTP listener serves
//! between control steps is made from the same operations, not by calling this router on
//! itself.

use serde_json::{json, Value};

use crate::mgmt::api::{ReadView, Request, Response};
use crate::mgmt::metrics;
use crate::runtime::daemon::{Change, Daemon};
use crate::sys::netdev::Netlink;

/// Answers one request.
pub fn handle(daemon: &mut Daemon, nl: &Netlink, request: Request) -> Response {
    match request {
        Request::Status { name } => match daemon.status(name.as_deref()) {
            Ok(s) => Response::data(json!(s)),
            Err(e) => Response::refused(vec![e]),
        },
        Request::Config => Response::data(config(daemon)),
        Request::Metrics => Response::data(json!({ "text": metrics_text(daemon) })),
        Request::Snapshot { since } => Response::data(snapshot(daemon, since)),
        Request::Dump => match dump(daemon) {
            Ok(v) => Response::data(v),
            Err(e) => Response::refused(vec![e]),
        },
        Request::Ifconfig {
            name,
            args,
            dry_run,
        } => changed(daemon.ifconfig(nl, &name, &args, dry_run), dry_run),
        Request::PutLagg {
            spec,
            create,
            options,
            dry_run,
        } => changed(
            daemon.put_lagg(nl, *spec, create, &options, dry_run),
            dry_run,
        ),
        Request::DeleteLagg { name, dry_run } => {
            changed(daemon.delete_lagg(nl, &name, dry_run), dry_run)
        }
        Request::Replace { toml, dry_run } => changed(daemon.replace(nl, &toml, dry_run), dry_run),
        Request::Interfaces => match interfaces(daemon, nl) {
            Ok(v) => Response::data(v),
            Err(e) => Response::refused(vec![e]),
        },
        #[cfg(feature = "testing")]
        Request::CrashWorker { name, queue } => match daemon.crash_worker(&name, queue) {
            Ok(()) => Response::data(json!({ "crashed": queue })),
            Err(e) => Response::refused(vec![e]),
        },
        Request::Explain { name, flow } => match daemon.explain(&name, &flow) {
            Ok(x) => Response::data(json!(x)),
            Err(e) => Response::refused(vec![e]),
        },
    }
}

/// What the HTTP listener serves reads from until the next one (see [`ReadView`]); the load
/// meters are read first.
pub fn read_view(daemon: &mut Daemon, nl: &Netlink) -> ReadView {
    daemon.measure_load();
    let laggs = daemon
        .status(None)
        .map(|s| s.iter().map(|l| json!(l)).collect())
        .unwrap_or_default();
    ReadView {
        made_ms: crate::runtime::lagg::unix_ms(),
        laggs,
        config: config(daemon),
        interfaces: interfaces(daemon, nl).unwrap_or(Value::Null),
        dump: dump(daemon).unwrap_or(Value::Null),
        metrics: metrics_text(daemon),
        counters: metrics::snapshot(&daemon.samples()),
        events: daemon
            .events_since(0)
            .map(|(seq, e)| (seq, event(seq, e)))
            .collect(),
    }
}

/// A change's answer: the laggs changed, or the problems.
fn changed(change: Change, dry_run: bool) -> Response {
    match change {
        Ok(changed) => Response::data(json!({ "changed": changed, "dry_run": dry_run })),
        Err(problems) => Response::refused(problems),
    }
}

fn config(daemon: &Daemon) -> Value {
    json!({ "toml": daemon.doc().to_toml() })
}

fn interfaces(daemon: &Daemon, nl: &Netlink) -> Result<Value, String> {
    let links = nl.links().map_err(|e| e.to_string())?;
    Ok(json!(daemon.interfaces(&links)))
}

/// One event as the timeline shows it: the event with its sequence number.
fn event(seq: u64, e: &crate::runtime::lagg::LaggEvent) -> Value {
    let mut v = json!(e);
    v["seq"] = json!(seq);
    v
}

fn events_since(daemon: &Daemon, since: u64) -> Vec<Value> {
    daemon
        .events_since(since)
        .map(|(seq, e)| event(seq, e))
        .collect()
}

/// The dashboard's poll: counters and state, and the events after `since`.
fn snapshot(daemon: &Daemon, since: u64) -> Value {
    let mut v = metrics::snapshot(&daemon.samples());
    v["events"] = json!(events_since(daemon, since));
    v["next"] = json!(daemon.last_event());
    v
}

/// `/metrics`: every running lagg's counters and what the daemon knows besides.
fn metrics_text(daemon: &Daemon) -> String {
    let facts = metrics::DaemonFacts {
        stopped: daemon.stopped(),
        failed: daemon.failed().keys().cloned().collect(),
        events: daemon
            .event_counts()
            .iter()
            .map(|(k, v)| (*k, *v))
            .collect(),
    };
    metrics::render(&daemon.samples(), &facts)
}

/// Everything a bug report needs, in one document.
fn dump(daemon: &Daemon) -> Result<Value, String> {
    let laggs = daemon.status(None)?;
    Ok(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "counters": metrics::snapshot(&daemon.samples()),
        "events": events_since(daemon, 0),
        "config_file": daemon.config_path().display().to_string(),
        "http": daemon.http_state(),
        "token_file": daemon.token_file().display().to_string(),
        "config": daemon.doc(),
        "laggs": laggs,
    }))
}
