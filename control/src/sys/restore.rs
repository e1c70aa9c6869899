//! What xlaggd changed on devices it does not own (offloads and sysfs settings of the members),
//! written down before each change in a file under the runtime directory, so that a daemon
//! that did not stop cleanly (SIGKILL, an OOM kill, a panic) does not leave them changed for
//! good: the next start sets them back from the file before it takes anything, and so records
//! the real originals, not its predecessor's changes. A clean stop sets them back itself and
//! the file ends empty. Kept in the runtime directory (`/run`): a reboot resets the devices
//! and the file with them.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use serde::{Deserialize, Serialize};

/// One change and how to undo it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Undo {
    /// An offload feature (as `ethtool -k` names it) of `iface`, to be set back to `on`.
    Feature {
        /// The device.
        iface: String,
        /// The feature.
        name: String,
        /// Its original value.
        on: bool,
    },
    /// A sysfs file, to be written back with `value`.
    Sysfs {
        /// The file.
        path: PathBuf,
        /// Its original content.
        value: String,
    },
}

struct Ledger {
    path: PathBuf,
    entries: Vec<Undo>,
}

static LEDGER: OnceLock<Mutex<Ledger>> = OnceLock::new();

fn ledger() -> Option<std::sync::MutexGuard<'static, Ledger>> {
    LEDGER
        .get()
        .map(|m| m.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
}

/// Sets back what a previous run left in `path`, then keeps the ledger there for this run.
/// Returns what was set back, in words. Called once, at start, before any lagg.
pub fn init(path: &Path) -> Vec<String> {
    let left: Vec<Undo> = std::fs::read_to_string(path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    let mut done = Vec::new();
    for undo in &left {
        match apply(undo) {
            Ok(()) => done.push(describe(undo)),
            Err(e) => {
                tracing::warn!(undo = %describe(undo), error = %e, "could not set back what an earlier run changed")
            }
        }
    }
    let _ = LEDGER.set(Mutex::new(Ledger {
        path: path.to_path_buf(),
        entries: Vec::new(),
    }));
    if let Some(l) = ledger() {
        save(&l);
    }
    done
}

/// Writes `undo` down before its change is made (the first record of a setting wins: it is
/// the original).
pub fn record(undo: Undo) {
    let Some(mut l) = ledger() else {
        return;
    };
    if l.entries.iter().any(|e| same_setting(e, &undo)) {
        return;
    }
    l.entries.push(undo);
    save(&l);
}

/// Crosses out what was set back (a clean teardown).
pub fn forget(done: &[Undo]) {
    let Some(mut l) = ledger() else {
        return;
    };
    let before = l.entries.len();
    l.entries
        .retain(|e| !done.iter().any(|d| same_setting(e, d)));
    if l.entries.len() != before {
        save(&l);
    }
}

fn same_setting(a: &Undo, b: &Undo) -> bool {
    match (a, b) {
        (
            Undo::Feature { iface, name, .. },
            Undo::Feature {
                iface: i2,
                name: n2,
                ..
            },
        ) => iface == i2 && name == n2,
        (Undo::Sysfs { path, .. }, Undo::Sysfs { path: p2, .. }) => path == p2,
        _ => false,
    }
}

fn save(l: &Ledger) {
    let text = serde_json::to_string_pretty(&l.entries).unwrap_or_else(|_| "[]".into());
    if let Err(e) = crate::config::store::write_atomic(&l.path, &text) {
        tracing::warn!(file = %l.path.display(), error = %e, "could not write down the device settings to set back after a crash");
    }
}

fn apply(undo: &Undo) -> Result<(), String> {
    match undo {
        Undo::Feature { iface, name, on } => {
            if !Path::new("/sys/class/net").join(iface).exists() {
                return Ok(());
            }
            crate::sys::offload::set(iface, &[(name.clone(), *on)]).map_err(|e| e.to_string())
        }
        Undo::Sysfs { path, value } => {
            if !path.exists() {
                return Ok(());
            }
            std::fs::write(path, value).map_err(|e| e.to_string())
        }
    }
}

fn describe(undo: &Undo) -> String {
    match undo {
        Undo::Feature { iface, name, on } => {
            format!("{iface} {name} {}", if *on { "on" } else { "off" })
        }
        Undo::Sysfs { path, value } => format!("{} = {value}", path.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_record_of_a_setting_is_its_original() {
        let a = Undo::Feature {
            iface: "em0".into(),
            name: "rx-vlan-offload".into(),
            on: true,
        };
        let b = Undo::Feature {
            iface: "em0".into(),
            name: "rx-vlan-offload".into(),
            on: false,
        };
        assert!(same_setting(&a, &b));
        let c = Undo::Sysfs {
            path: "/sys/class/net/em0/gro_flush_timeout".into(),
            value: "0".into(),
        };
        assert!(!same_setting(&a, &c));
        let text = serde_json::to_string(&vec![a.clone(), c.clone()]).expect("json");
        let back: Vec<Undo> = serde_json::from_str(&text).expect("parses");
        assert_eq!(back, vec![a, c]);
    }
}
