//! Imports FreeBSD (and TrueNAS) rc.conf lines into the configuration document, so a lagg
//! moves over as it is written there:
//!
//! ```text
//! cloned_interfaces="lagg0"
//! ifconfig_lagg0="laggproto failover laggport em0 laggport em1 192.168.1.10 netmask 255.255.255.0 up"
//! ifconfig_lagg0_ipv6="inet6 2001:db8::10 prefixlen 64"
//! ifconfig_lagg0_alias0="inet 192.168.1.11/24"
//! ifconfig_lagg0_descr="uplink"
//! create_args_lagg0="laggproto lacp laggport em0"
//! ```
//!
//! The words go through the same parser as `xlaggctl` ([`crate::config::ifconfig`]) and the result
//! through the one validator. Variables that do not concern a lagg are skipped; words that have
//! no meaning here (`-ifdisabled`, offload flags) are dropped with a note. `DHCP`, `SYNCDHCP`
//! and `accept_rtadv` become `dhcp`, `dhcp_sync` and `ipv6_auto`. Shell expansions and unknown
//! lagg options are refused with the line number.

use std::collections::BTreeMap;

use crate::config::ifconfig;
use crate::config::{is_lagg_name, ConfigDoc, LaggSpec};

/// An imported configuration and what was left out on the way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Import {
    /// The laggs found (daemon settings at their defaults).
    pub doc: ConfigDoc,
    /// One line per variable or word that was skipped, with the reason.
    pub notes: Vec<String>,
}

/// Words of an interface line that mean nothing for a lagg here and are dropped with a note.
const DROPPED: &[&str] = &[
    "-ifdisabled",
    "ifdisabled",
    "auto_linklocal",
    "-auto_linklocal",
    "rxcsum",
    "-rxcsum",
    "txcsum",
    "-txcsum",
    "rxcsum6",
    "-rxcsum6",
    "txcsum6",
    "-txcsum6",
    "tso",
    "-tso",
    "tso4",
    "-tso4",
    "tso6",
    "-tso6",
    "lro",
    "-lro",
    "vlanhwtag",
    "-vlanhwtag",
    "vlanhwfilter",
    "-vlanhwfilter",
    "vlanhwtso",
    "-vlanhwtso",
    "use_flowid",
    "-use_flowid",
    "use_numa",
    "-use_numa",
];

/// Splits `NAME=VALUE` with sh quoting (no expansion). `None` for blank and comment lines.
fn assignment(line: &str) -> Result<Option<(String, String)>, String> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return Ok(None);
    }
    let line = line.strip_prefix("export ").unwrap_or(line);
    let (name, rest) = line
        .split_once('=')
        .ok_or_else(|| "not a NAME=\"VALUE\" assignment".to_string())?;
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(format!("'{name}' is not a variable name"));
    }
    let mut value = String::new();
    let mut chars = rest.chars();
    let mut quote: Option<char> = None;
    while let Some(c) = chars.next() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (Some('"') | None, '$' | '`') => {
                return Err(format!(
                    "{name}: shell expansion ('{c}') cannot be imported; write the value out"
                ))
            }
            (Some('"') | None, '\\') => value.extend(chars.next()),
            (None, '#') => break,
            (None, c) if c.is_whitespace() => break,
            (_, c) => value.push(c),
        }
    }
    if quote.is_some() {
        return Err(format!("{name}: unterminated quote"));
    }
    Ok(Some((name.to_string(), value)))
}

/// Which lagg variable `name` is: (lagg, what), `what` being `""` (`ifconfig_laggN`),
/// `ipv6`, `aliasK`, `descr` or `create_args`.
fn lagg_variable(name: &str) -> Option<(String, String)> {
    if let Some(lagg) = name.strip_prefix("create_args_") {
        return is_lagg_name(lagg).then(|| (lagg.to_string(), "create_args".to_string()));
    }
    let rest = name.strip_prefix("ifconfig_")?;
    let (lagg, what) = match rest.split_once('_') {
        Some((l, w)) => (l, w),
        None => (rest, ""),
    };
    is_lagg_name(lagg).then(|| (lagg.to_string(), what.to_string()))
}

/// A lagg's rc.conf lines: (line number, variable, what it sets, value).
type Lines = Vec<(usize, String, String, String)>;

/// The file read once: its laggs' lines in file order, the cloned laggs, and what was noted
/// or wrong on the way.
#[derive(Default)]
struct Scanned {
    errors: Vec<String>,
    notes: Vec<String>,
    cloned: Vec<String>,
    lines: BTreeMap<String, Lines>,
    order: Vec<String>,
}

/// Imports rc.conf text.
///
/// # Errors
/// One message per problem, each with its line number and variable.
pub fn import(text: &str) -> Result<Import, Vec<String>> {
    let Scanned {
        mut errors,
        mut notes,
        cloned,
        mut lines,
        order,
    } = scan(text);
    let mut doc = ConfigDoc::default();
    for lagg in &cloned {
        if doc.lagg(lagg).is_none() {
            doc.laggs.push(LaggSpec::named(lagg));
        }
    }
    for lagg in &order {
        if doc.lagg(lagg).is_none() {
            notes.push(format!(
                "{lagg} is configured but not listed in cloned_interfaces; imported anyway"
            ));
            doc.laggs.push(LaggSpec::named(lagg));
        }
        let entries = lines.remove(lagg).unwrap_or_default();
        apply_lines(&mut doc, lagg, entries, &mut notes, &mut errors);
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    if let Err(e) = doc.validate() {
        return Err(e.problems);
    }
    Ok(Import { doc, notes })
}

/// Reads every assignment of `text` and sorts out the laggs' lines.
fn scan(text: &str) -> Scanned {
    let mut s = Scanned::default();
    for (n, line) in text.lines().enumerate() {
        let n = n + 1;
        let (name, value) = match assignment(line) {
            Ok(Some(a)) => a,
            Ok(None) => continue,
            Err(e) => {
                s.errors.push(format!("line {n}: {e}"));
                continue;
            }
        };
        if name == "cloned_interfaces" {
            for iface in value.split_whitespace() {
                if is_lagg_name(iface) {
                    s.cloned.push(iface.to_string());
                } else {
                    s.notes.push(format!(
                        "line {n}: cloned_interfaces: {iface} is not a lagg; skipped"
                    ));
                }
            }
        } else if let Some((lagg, what)) = lagg_variable(&name) {
            if !s.order.contains(&lagg) {
                s.order.push(lagg.clone());
            }
            s.lines
                .entry(lagg)
                .or_default()
                .push((n, name, what, value));
        } else if name.starts_with("ifconfig_") {
            s.notes.push(format!(
                "line {n}: {name} does not configure a lagg; skipped (member ports need no settings)"
            ));
        }
    }
    s
}

/// Applies one lagg's lines to `doc` as ifconfig words: `create_args` first, then the main
/// line, then IPv6 and aliases in file order.
fn apply_lines(
    doc: &mut ConfigDoc,
    lagg: &str,
    mut entries: Lines,
    notes: &mut Vec<String>,
    errors: &mut Vec<String>,
) {
    entries.sort_by_key(|(n, _, what, _)| {
        let rank = match what.as_str() {
            "create_args" => 0,
            "" => 1,
            _ => 2,
        };
        (rank, *n)
    });
    for (n, name, what, value) in entries {
        if what == "descr" {
            if let Some(spec) = doc.lagg_mut(lagg) {
                spec.description = value;
            }
            continue;
        }
        if !matches!(what.as_str(), "" | "create_args" | "ipv6") && !what.starts_with("alias") {
            notes.push(format!("line {n}: {name} is not understood; skipped"));
            continue;
        }
        let mut words = Vec::new();
        for w in value.split_whitespace() {
            match w {
                w if DROPPED.contains(&w) => notes.push(format!(
                    "line {n}: {name}: '{w}' has no meaning here; dropped"
                )),
                w => words.push(w.to_string()),
            }
        }
        if what.starts_with("alias") && !words.iter().any(|w| w == "alias") {
            words.push("alias".into());
        }
        let result = ifconfig::parse(&words).and_then(|ops| ifconfig::apply(doc, lagg, &ops));
        if let Err(e) = result {
            errors.push(format!("line {n}: {name}: {e}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn handbook_failover_example() {
        let text = r#"
# FreeBSD handbook, failover
ifconfig_em0="up"
ifconfig_em1="up"
cloned_interfaces="lagg0"
ifconfig_lagg0="laggproto failover laggport em0 laggport em1 192.168.1.10 netmask 255.255.255.0 up"
ifconfig_lagg0_ipv6="inet6 2001:db8::10 prefixlen 64 -ifdisabled"
ifconfig_lagg0_alias0="inet 192.168.1.11/24"
ifconfig_lagg0_descr="uplink to core"
"#;
        let got = import(text).expect("imports");
        let l = got.doc.lagg("lagg0").unwrap();
        assert_eq!(l.laggproto, "failover");
        assert_eq!(l.laggports, ["em0", "em1"]);
        assert_eq!(
            l.addresses,
            ["192.168.1.10/24", "2001:db8::10/64", "192.168.1.11/24"]
        );
        assert_eq!(l.description, "uplink to core");
        assert!(got.notes.iter().any(|n| n.contains("'-ifdisabled'")));
        assert!(got.notes.iter().any(|n| n.contains("ifconfig_em0")));
    }

    #[test]
    fn rc_conf_and_toml_give_the_same_model() {
        let rc = r#"cloned_interfaces="lagg0 lagg1"
create_args_lagg1="laggproto lacp laggport igb2 laggport igb3 lacp_fast_timeout"
ifconfig_lagg0="laggproto loadbalance lagghash l3,l4 laggport igb0 laggport igb1 10.0.0.1/24 up"
ifconfig_lagg1="inet 10.1.0.1 netmask 0xffffff00 up"
"#;
        let toml = r#"
[[lagg]]
name = "lagg0"
laggproto = "loadbalance"
lagghash = "l3,l4"
laggports = ["igb0", "igb1"]
addresses = ["10.0.0.1/24"]

[[lagg]]
name = "lagg1"
laggproto = "lacp"
laggports = ["igb2", "igb3"]
lacp_fast_timeout = true
addresses = ["10.1.0.1/24"]
"#;
        let from_rc = import(rc).expect("imports").doc;
        let from_toml = ConfigDoc::from_toml(toml).unwrap();
        assert_eq!(from_rc, from_toml);
        // And the document survives being written and read back.
        let again = ConfigDoc::from_toml(&from_rc.to_toml()).unwrap();
        assert_eq!(again, from_rc);
        let a: Config = again.validate().unwrap();
        assert_eq!(a, from_toml.validate().unwrap());
    }

    #[test]
    fn dhcp_and_router_advertisements_import() {
        let rc = r#"
cloned_interfaces="lagg0 lagg1"
ifconfig_lagg0="laggproto lacp laggport em0 laggport em1 DHCP"
ifconfig_lagg0_ipv6="inet6 accept_rtadv"
ifconfig_lagg1="laggproto failover laggport em2 laggport em3 SYNCDHCP"
"#;
        let imported = import(rc).expect("imports");
        let toml = r#"
[[lagg]]
name = "lagg0"
laggproto = "lacp"
laggports = ["em0", "em1"]
dhcp = true
ipv6_auto = true

[[lagg]]
name = "lagg1"
laggports = ["em2", "em3"]
dhcp = true
dhcp_sync = true
"#;
        assert_eq!(imported.doc, ConfigDoc::from_toml(toml).unwrap());
        let config = imported.doc.validate().expect("valid");
        assert_eq!(
            config.laggs[1].dhcp,
            Some(crate::config::DhcpOptions {
                sync: true,
                timeout_s: 30
            })
        );
        assert!(config.laggs[0].ipv6_auto);
        // A lone family word left after a dropped flag imports.
        let rc = "ifconfig_lagg0=\"laggport em0\"\nifconfig_lagg0_ipv6=\"inet6 -ifdisabled\"";
        assert!(import(rc).is_ok(), "{:?}", import(rc));
        // -dhcp turns waiting off too, so the result is valid.
        let rc = "ifconfig_lagg0=\"laggport em0 SYNCDHCP -dhcp\"";
        let l = import(rc).expect("imports").doc.laggs[0].clone();
        assert!(!l.dhcp && !l.dhcp_sync);
        // NOSYNCDHCP after SYNCDHCP: background again.
        let rc = "ifconfig_lagg0=\"laggport em0 SYNCDHCP NOSYNCDHCP\"";
        let l = import(rc).expect("imports").doc.laggs[0].clone();
        assert!(l.dhcp && !l.dhcp_sync);
    }

    #[test]
    fn the_xdp_engine_imports_and_its_refusals_name_the_key() {
        let rc = r#"
cloned_interfaces="lagg0"
ifconfig_lagg0="laggproto loadbalance laggport vtnet0 laggport vtnet1 engine xdp 10.0.0.5/24 up"
"#;
        let imported = import(rc).expect("imports");
        let config = imported.doc.validate().expect("valid");
        assert_eq!(config.laggs[0].engine, crate::config::Engine::Xdp);
        let rc = "ifconfig_lagg0=\"laggproto broadcast laggport vtnet0 engine xdp mtu 9000\"";
        let err = import(rc).unwrap_err();
        assert!(
            err.iter()
                .any(|p| p.contains("lagg0.mtu: 9000 is above 3000")),
            "{err:?}"
        );
        let err = import("ifconfig_lagg0=\"laggport vtnet0 engine dpdk\"").unwrap_err();
        assert!(
            err.iter()
                .any(|p| p.contains("lagg0.engine: 'dpdk' is not an engine")),
            "{err:?}"
        );
    }

    #[test]
    fn jumbo_mtu_imports() {
        // A storage network's lagg, as FreeBSD writes it: the MTU on the lagg line or in its
        // create_args, and on the members (whose lines are noted, not imported).
        let rc = r#"
ifconfig_ix0="up mtu 9000"
ifconfig_ix1="up mtu 9000"
cloned_interfaces="lagg0 lagg1"
ifconfig_lagg0="laggproto lacp laggport ix0 laggport ix1 10.10.0.5/24 mtu 9000 up"
create_args_lagg1="laggproto failover laggport ix2 laggport ix3 mtu 9000"
ifconfig_lagg1="10.11.0.5/24 up"
"#;
        let imported = import(rc).expect("imports");
        let config = imported.doc.validate().expect("valid");
        assert_eq!(config.laggs[0].mtu, 9000);
        assert_eq!(config.laggs[1].mtu, 9000);
        assert!(imported.notes.iter().any(|n| n.contains("ifconfig_ix0")));
        // Beyond what any lagg carries: refused with the range.
        let rc = "ifconfig_lagg0=\"laggport em0 mtu 9216\"";
        let err = import(rc).unwrap_err();
        assert!(
            err.iter()
                .any(|p| p.contains("lagg0.mtu: 9216 is out of range: use 68 to 9000")),
            "{err:?}"
        );
    }

    #[test]
    fn problems_name_the_line() {
        for (text, want) in [
            (
                "ifconfig_lagg0=\"laggproto failover laggport em0 upper forward forward_port em9 DHCP\"",
                "lagg0.dhcp: DHCP needs upper = \"host\"",
            ),
            (
                "cloned_interfaces=\"lagg0\"\nifconfig_lagg0=\"laggport em0 frob\"",
                "line 2: ifconfig_lagg0: 'frob' is not a lagg option",
            ),
            (
                "ifconfig_lagg0=\"laggport $IF\"",
                "line 1: ifconfig_lagg0: shell expansion ('$') cannot be imported",
            ),
            (
                "ifconfig_lagg0=\"laggport em0",
                "line 1: ifconfig_lagg0: unterminated quote",
            ),
            (
                "ifconfig_lagg0=\"laggproto fast laggport em0\"",
                "lagg0.laggproto: unknown protocol 'fast'",
            ),
            (
                "this is not rc.conf",
                "line 1: not a NAME=\"VALUE\" assignment",
            ),
        ] {
            let errors = import(text).expect_err(text);
            assert!(
                errors.iter().any(|e| e.starts_with(want)),
                "{text}: {errors:?}"
            );
        }
    }
}
