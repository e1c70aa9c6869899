//! FreeBSD ifconfig words for a lagg: what `xlaggctl lagg0 ...`, rc.conf's `ifconfig_lagg0`
//! lines and the web form's Options field say, turned into changes of the [`ConfigDoc`].
//!
//! The words only change the document; the one validator ([`ConfigDoc::validate`]) judges the
//! result, so `laggproto fast` is refused with the same message as in the TOML file.
//!
//! ```text
//! create | destroy | up | down
//! laggproto PROTO            laggport IF    -laggport IF
//! lagghash l2,l3,l4          rr_limit N     mtu N          description TEXT
//! lacp_fast_timeout | -lacp_fast_timeout    lacp_strict | -lacp_strict
//! lacp_fallback | -lacp_fallback
//! [inet] ADDR/LEN | [inet] ADDR netmask MASK      inet6 ADDR/LEN | inet6 ADDR prefixlen LEN
//!     followed by alias (add), -alias or delete (remove); without: replaces the first
//!     address of that family
//! KEY VALUE for every other [[lagg]] key (updelay 200, min_links 2, lacp_key 5, ...)
//! ```

use std::net::{IpAddr, Ipv4Addr};

use crate::config::{ConfigDoc, LaggSpec};

/// One change, in the order the words gave them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// `create`: the lagg must not exist yet.
    Create,
    /// `destroy`.
    Destroy,
    /// `up` / `down`.
    Up(bool),
    /// `laggport IF`.
    AddPort(String),
    /// `-laggport IF`.
    RemovePort(String),
    /// An address: replace the first of its family (`alias`: add).
    Address {
        /// `addr/len`.
        address: String,
        /// Added next to the others.
        alias: bool,
    },
    /// `-alias` / `delete`: remove an address.
    RemoveAddress(String),
    /// A key of the `[[lagg]]` table and its new value.
    Set(&'static str, Value),
}

/// A value for [`Op::Set`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// A string.
    Text(String),
    /// A number.
    Number(u64),
    /// A flag.
    Flag(bool),
    /// A list of numbers.
    Numbers(Vec<u64>),
    /// Back to the default (`-KEY` of a valued key).
    Default,
}

/// Keys that take a string.
const TEXT_KEYS: &[&str] = &[
    "laggproto",
    "lagghash",
    "description",
    "upper",
    "forward_port",
    "zero_copy",
    "engine",
    "lacp_system_mac",
    "lacp_mux",
    "lacp_select",
    "bfd_peer",
];
/// Keys that take a number.
const NUMBER_KEYS: &[&str] = &[
    "rr_limit",
    "hash_seed",
    "rebalance_threshold",
    "rebalance_hold_ms",
    "rebalance_idle_ms",
    "mtu",
    "ring_size",
    "lacp_system_priority",
    "lacp_key",
    "lacp_port_priority",
    "min_links",
    "updelay",
    "downdelay",
    "notify_count",
    "notify_interval",
    "bfd_interval",
    "bfd_multiplier",
    "arp_interval",
    "arp_missed_max",
    "dhcp_timeout",
];
/// Keys that are flags (`KEY` sets, `-KEY` clears).
const FLAG_KEYS: &[&str] = &[
    "lacp_fast_timeout",
    "lacp_strict",
    "lacp_fallback",
    "rebalance",
    "lacp_active",
    "rx_all",
    "forward_link_local",
    "busy_poll",
    "hw_offload",
    "bfd",
    "dhcp",
    "dhcp_sync",
    "ipv6_auto",
];

/// Every word that starts an option, for help texts and shell completion.
pub fn option_words() -> Vec<&'static str> {
    let mut words = vec![
        "create",
        "destroy",
        "up",
        "down",
        "laggport",
        "-laggport",
        "inet",
        "inet6",
        "alias",
        "-alias",
        "delete",
        "netmask",
        "prefixlen",
        "cores",
        "DHCP",
        "SYNCDHCP",
        "NOSYNCDHCP",
        "accept_rtadv",
        "-accept_rtadv",
    ];
    words.extend(TEXT_KEYS);
    words.extend(NUMBER_KEYS);
    for f in FLAG_KEYS {
        words.push(f);
    }
    words
}

/// Words in one change at most: far above any real command line, low enough that no request
/// makes the control thread work for long.
pub const MAX_WORDS: usize = 4096;

fn find(keys: &[&'static str], word: &str) -> Option<&'static str> {
    keys.iter().copied().find(|k| *k == word)
}

/// Parses ifconfig words into changes.
///
/// # Errors
/// The word that could not be understood and what was expected there.
pub fn parse(words: &[String]) -> Result<Vec<Op>, String> {
    if words.len() > MAX_WORDS {
        return Err(format!(
            "{} words given: at most {MAX_WORDS} in one change (split it, or edit the configuration file)",
            words.len()
        ));
    }
    let mut ops = Vec::new();
    let mut i = 0;
    // `alias` before an address: the next word must give one, which is then added.
    let mut alias_before = false;
    let value = |i: usize, what: &str| -> Result<&String, String> {
        words
            .get(i + 1)
            .ok_or_else(|| format!("{} needs {what}", words[i]))
    };
    while i < words.len() {
        let word = words[i].as_str();
        let before = ops.len();
        let alias_pending = std::mem::take(&mut alias_before);
        match word {
            "create" => ops.push(Op::Create),
            "destroy" => ops.push(Op::Destroy),
            "up" => ops.push(Op::Up(true)),
            "down" => ops.push(Op::Up(false)),
            // rc.conf's words: an address from DHCP, in the background or waited for; no
            // DHCP: no waiting for it either.
            "DHCP" | "NOSYNCDHCP" | "SYNCDHCP" | "-dhcp" => {
                let (dhcp, sync) = (word != "-dhcp", word == "SYNCDHCP");
                ops.push(Op::Set("dhcp", Value::Flag(dhcp)));
                ops.push(Op::Set("dhcp_sync", Value::Flag(sync)));
            }
            // FreeBSD's inet6 flag for router advertisements (SLAAC).
            "accept_rtadv" => ops.push(Op::Set("ipv6_auto", Value::Flag(true))),
            "-accept_rtadv" => ops.push(Op::Set("ipv6_auto", Value::Flag(false))),
            "laggport" | "-laggport" => {
                let port = value(i, "an interface name, e.g. laggport em0")?.clone();
                ops.push(if word == "laggport" {
                    Op::AddPort(port)
                } else {
                    Op::RemovePort(port)
                });
                i += 1;
            }
            // The family word before a flag rather than an address (`inet6 accept_rtadv`)
            // only names the family.
            "inet6"
                if words
                    .get(i + 1)
                    .is_none_or(|w| matches!(w.as_str(), "accept_rtadv" | "-accept_rtadv")) => {}
            "inet" | "inet6" => {
                let addr = value(i, "an address, e.g. inet 192.168.1.10/24")?;
                let (address, used) = address(word == "inet6", addr, &words[i + 2..])?;
                i += 1 + used;
                let next = words.get(i + 1).map(String::as_str);
                ops.push(address_op(address, next, &mut i));
            }
            "cores" => {
                let list = value(i, "a list of cores, e.g. cores 2,3")?;
                ops.push(Op::Set("cores", Value::Numbers(cores(list)?)));
                i += 1;
            }
            _ => alias_before = other_word(words, &mut i, &mut ops, alias_pending)?,
        }
        if alias_pending {
            match ops.get_mut(before) {
                Some(Op::Address { alias, .. }) => *alias = true,
                _ => return Err("alias must be followed or preceded by an address".into()),
            }
        }
        i += 1;
    }
    if alias_before {
        return Err("alias must be followed or preceded by an address".into());
    }
    Ok(ops)
}

/// `cores 2,3`'s list.
fn cores(list: &str) -> Result<Vec<u64>, String> {
    list.split(',')
        .filter(|c| !c.is_empty())
        .map(|c| {
            c.trim()
                .parse::<u64>()
                .map_err(|_| format!("cores: '{c}' is not a core number (write cores 2,3)"))
        })
        .collect()
}

/// Word `i` when it is none of the keywords: a `[[lagg]]` key with its value (`-key`: back
/// to its default), a flag (`-flag`: off), a bare address, or `alias` before an address.
/// Moves `i` past any value taken; returns whether the word was an `alias` waiting for its
/// address.
fn other_word(
    words: &[String],
    i: &mut usize,
    ops: &mut Vec<Op>,
    alias_pending: bool,
) -> Result<bool, String> {
    let word = words[*i].as_str();
    let value = |what: &str| -> Result<&String, String> {
        words
            .get(*i + 1)
            .ok_or_else(|| format!("{word} needs {what}"))
    };
    if let Some(key) = find(TEXT_KEYS, word) {
        ops.push(Op::Set(key, Value::Text(value("a value")?.clone())));
        *i += 1;
    } else if let Some(key) = find(NUMBER_KEYS, word) {
        let v = value("a number")?;
        let n = parse_number(v).ok_or_else(|| format!("{word}: '{v}' is not a number"))?;
        ops.push(Op::Set(key, Value::Number(n)));
        *i += 1;
    } else if let Some(key) = find(FLAG_KEYS, word) {
        ops.push(Op::Set(key, Value::Flag(true)));
    } else if let Some(key) = word.strip_prefix('-').and_then(|w| find(FLAG_KEYS, w)) {
        ops.push(Op::Set(key, Value::Flag(false)));
    } else if let Some(key) = word
        .strip_prefix('-')
        .and_then(|w| find(TEXT_KEYS, w).or_else(|| find(NUMBER_KEYS, w)))
    {
        ops.push(Op::Set(key, Value::Default));
    } else if word.parse::<IpAddr>().is_ok()
        || word
            .split_once('/')
            .is_some_and(|(a, _)| a.parse::<IpAddr>().is_ok())
    {
        let v6 = word.split('/').next().is_some_and(|a| a.contains(':'));
        let (address, used) = address(v6, &words[*i], &words[*i + 1..])?;
        *i += used;
        let next = words.get(*i + 1).map(String::as_str);
        ops.push(address_op(address, next, i));
    } else if word == "alias" && !alias_pending {
        return Ok(true);
    } else {
        return Err(format!(
            "'{word}' is not a lagg option: use laggproto, laggport, -laggport, lagghash, rr_limit, \
             mtu, lacp_fast_timeout, lacp_strict, up, down, an address, or KEY VALUE for a [[lagg]] key \
             (see xlaggctl --help)"
        ));
    }
    Ok(false)
}

fn parse_number(text: &str) -> Option<u64> {
    match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

/// Whether the word after an address makes it an alias, a removal or neither; consumes it.
fn address_op(address: String, next: Option<&str>, i: &mut usize) -> Op {
    match next {
        Some("alias" | "add") => {
            *i += 1;
            Op::Address {
                address,
                alias: true,
            }
        }
        Some("-alias" | "delete" | "remove") => {
            *i += 1;
            Op::RemoveAddress(address)
        }
        _ => Op::Address {
            address,
            alias: false,
        },
    }
}

/// Reads an address in any of ifconfig's forms: `A/LEN`, `A netmask MASK`, `A prefixlen LEN`,
/// or a bare address (/32 or /64 by family, as ifconfig does). Returns `addr/len` and how many
/// of `rest` it used.
fn address(v6: bool, addr: &str, rest: &[String]) -> Result<(String, usize), String> {
    let family = if v6 { "inet6" } else { "inet" };
    let bare = addr.split('/').next().unwrap_or(addr);
    match bare.parse::<IpAddr>() {
        Ok(IpAddr::V4(_)) if v6 => return Err(format!("inet6: {bare} is an IPv4 address")),
        Ok(IpAddr::V6(_)) if !v6 => {
            return Err(format!("{bare} is an IPv6 address: write inet6 {addr}"))
        }
        Ok(_) => {}
        Err(_) => return Err(format!("{family}: '{bare}' is not an address")),
    }
    if addr.contains('/') {
        return Ok((addr.to_string(), 0));
    }
    match (rest.first().map(String::as_str), rest.get(1)) {
        (Some("netmask"), Some(mask)) if !v6 => Ok((format!("{addr}/{}", netmask(mask)?), 2)),
        (Some("prefixlen"), Some(len)) => Ok((format!("{addr}/{len}"), 2)),
        (Some("netmask" | "prefixlen"), None) => {
            Err(format!("{} needs a value after {addr}", rest[0]))
        }
        _ => Ok((format!("{addr}/{}", if v6 { 64 } else { 32 }), 0)),
    }
}

/// A netmask (`255.255.255.0` or `0xffffff00`) as a prefix length.
///
/// # Errors
/// The mask is malformed or its ones are not contiguous.
pub fn netmask(mask: &str) -> Result<u8, String> {
    let bits = match mask.strip_prefix("0x") {
        Some(hex) => u32::from_str_radix(hex, 16).ok(),
        None => mask.parse::<Ipv4Addr>().ok().map(u32::from),
    }
    .ok_or_else(|| format!("netmask '{mask}' is not a mask: write 255.255.255.0 or 0xffffff00"))?;
    let len = bits.leading_ones();
    if bits.checked_shl(len).unwrap_or(0) != 0 {
        return Err(format!("netmask {mask} is not contiguous ones"));
    }
    Ok(len as u8)
}

fn family_of(address: &str) -> bool {
    address.split('/').next().is_some_and(|a| a.contains(':'))
}

/// Applies the changes to lagg `name` of the document. The result still has to pass
/// [`ConfigDoc::validate`]; this only refuses what makes no sense as an edit.
///
/// # Errors
/// The lagg does not exist (or exists for `create`), or a port or address to remove is not
/// there.
pub fn apply(doc: &mut ConfigDoc, name: &str, ops: &[Op]) -> Result<(), String> {
    if ops.first() == Some(&Op::Create) {
        if doc.lagg(name).is_some() {
            return Err(format!("{name} already exists"));
        }
        doc.laggs.push(LaggSpec::named(name));
    }
    if ops.contains(&Op::Destroy) {
        if ops.len() > 1 {
            return Err("destroy takes no other options".into());
        }
        let before = doc.laggs.len();
        doc.laggs.retain(|l| l.name != name);
        if doc.laggs.len() == before {
            return Err(format!("{name} does not exist"));
        }
        return Ok(());
    }
    let lagg = doc.lagg_mut(name).ok_or_else(|| {
        format!("{name} does not exist: create it first (xlaggctl {name} create)")
    })?;
    for op in ops {
        match op {
            Op::Create => {
                if !std::ptr::eq(op, &ops[0]) {
                    return Err("create must come first".into());
                }
            }
            Op::Destroy => {}
            Op::Up(up) => lagg.up = *up,
            Op::AddPort(p) => {
                if lagg.laggports.contains(p) {
                    return Err(format!("{p} is already a laggport of {name}"));
                }
                lagg.laggports.push(p.clone());
            }
            Op::RemovePort(p) => {
                let before = lagg.laggports.len();
                lagg.laggports.retain(|q| q != p);
                if lagg.laggports.len() == before {
                    return Err(format!("{p} is not a laggport of {name}"));
                }
                lagg.lacp_port_priorities.remove(p);
            }
            Op::Address { address, alias } => {
                let v6 = family_of(address);
                let same = |a: &String| a.split('/').next() == address.split('/').next();
                if let Some(existing) = lagg.addresses.iter_mut().find(|a| same(a)) {
                    *existing = address.clone();
                } else if *alias {
                    lagg.addresses.push(address.clone());
                } else if let Some(first) = lagg.addresses.iter_mut().find(|a| family_of(a) == v6) {
                    *first = address.clone();
                } else {
                    lagg.addresses.push(address.clone());
                }
            }
            Op::RemoveAddress(address) => {
                let bare = address.split('/').next();
                let before = lagg.addresses.len();
                lagg.addresses.retain(|a| a.split('/').next() != bare);
                if lagg.addresses.len() == before {
                    return Err(format!("{address} is not an address of {name}"));
                }
            }
            Op::Set(key, value) => set(lagg, key, value)?,
        }
    }
    Ok(())
}

/// Sets one key through the TOML table, so the same names and types as the file apply.
fn set(lagg: &mut LaggSpec, key: &str, value: &Value) -> Result<(), String> {
    let mut table = match toml::Value::try_from(&*lagg) {
        Ok(toml::Value::Table(t)) => t,
        _ => return Err("internal: the lagg cannot be represented as TOML".into()),
    };
    let default = match toml::Value::try_from(LaggSpec::default()) {
        Ok(toml::Value::Table(t)) => t,
        _ => toml::Table::new(),
    };
    let v = match value {
        Value::Text(t) => Some(toml::Value::String(t.clone())),
        Value::Number(n) => Some(toml::Value::Integer(i64::try_from(*n).unwrap_or(i64::MAX))),
        Value::Flag(f) => Some(toml::Value::Boolean(*f)),
        Value::Numbers(list) => Some(toml::Value::Array(
            list.iter()
                .map(|n| toml::Value::Integer(i64::try_from(*n).unwrap_or(i64::MAX)))
                .collect(),
        )),
        Value::Default => default.get(key).cloned(),
    };
    match v {
        Some(v) => table.insert(key.to_string(), v),
        None => table.remove(key),
    };
    *lagg = toml::Value::Table(table)
        .try_into()
        .map_err(|e: toml::de::Error| format!("{key}: {}", e.message()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    fn edit(doc: &mut ConfigDoc, name: &str, s: &str) -> Result<(), String> {
        apply(doc, name, &parse(&words(s))?)
    }

    #[test]
    fn the_freebsd_handbook_line_builds_a_lagg() {
        let mut doc = ConfigDoc::default();
        edit(&mut doc, "lagg0", "create").unwrap();
        edit(
            &mut doc,
            "lagg0",
            "up laggproto lacp laggport em0 laggport em1 192.168.1.10/24",
        )
        .unwrap();
        let l = doc.lagg("lagg0").unwrap();
        assert_eq!(l.laggproto, "lacp");
        assert_eq!(l.laggports, ["em0", "em1"]);
        assert_eq!(l.addresses, ["192.168.1.10/24"]);
        doc.validate().expect("valid");
    }

    #[test]
    fn address_forms() {
        for (s, want) in [
            ("192.168.1.10 netmask 255.255.255.0", "192.168.1.10/24"),
            ("inet 192.168.1.10 netmask 0xffff0000", "192.168.1.10/16"),
            ("inet 10.0.0.1/8", "10.0.0.1/8"),
            ("10.0.0.1", "10.0.0.1/32"),
            ("inet6 2001:db8::1 prefixlen 48", "2001:db8::1/48"),
            ("inet6 2001:db8::1/56", "2001:db8::1/56"),
            ("inet6 2001:db8::1", "2001:db8::1/64"),
        ] {
            let ops = parse(&words(s)).unwrap();
            assert_eq!(
                ops,
                [Op::Address {
                    address: want.into(),
                    alias: false
                }],
                "{s}"
            );
        }
        assert_eq!(
            parse(&words("inet 10.0.0.2/24 alias")).unwrap(),
            [Op::Address {
                address: "10.0.0.2/24".into(),
                alias: true
            }]
        );
        assert_eq!(
            parse(&words("alias inet 10.0.0.2/24")).unwrap(),
            [Op::Address {
                address: "10.0.0.2/24".into(),
                alias: true
            }]
        );
        assert_eq!(
            parse(&words("10.0.0.2 -alias")).unwrap(),
            [Op::RemoveAddress("10.0.0.2/32".into())]
        );
    }

    #[test]
    fn an_address_without_alias_replaces_the_first_of_its_family() {
        let mut doc = ConfigDoc::default();
        edit(
            &mut doc,
            "lagg0",
            "create laggport a 10.0.0.1/24 inet6 2001:db8::1/64",
        )
        .unwrap();
        edit(&mut doc, "lagg0", "10.0.0.9/24").unwrap();
        edit(&mut doc, "lagg0", "inet 10.0.1.1/24 alias").unwrap();
        assert_eq!(
            doc.lagg("lagg0").unwrap().addresses,
            ["10.0.0.9/24", "2001:db8::1/64", "10.0.1.1/24"]
        );
        edit(&mut doc, "lagg0", "inet 10.0.0.9 -alias").unwrap();
        assert_eq!(
            doc.lagg("lagg0").unwrap().addresses,
            ["2001:db8::1/64", "10.0.1.1/24"]
        );
    }

    #[test]
    fn ports_flags_and_keys() {
        let mut doc = ConfigDoc::default();
        edit(&mut doc, "lagg1", "create laggport a laggport b laggport c").unwrap();
        edit(
            &mut doc,
            "lagg1",
            "-laggport b lagghash l3,l4 rr_limit 4 mtu 1400 lacp_fast_timeout -lacp_strict updelay 200 cores 1,2",
        )
        .unwrap();
        let l = doc.lagg("lagg1").unwrap().clone();
        assert_eq!(l.laggports, ["a", "c"]);
        assert_eq!((l.lagghash.as_str(), l.rr_limit, l.mtu), ("l3,l4", 4, 1400));
        assert!(l.lacp_fast_timeout && !l.lacp_strict);
        assert_eq!((l.updelay, l.cores), (200, vec![1, 2]));
        edit(&mut doc, "lagg1", "-lacp_fast_timeout -rr_limit down").unwrap();
        let l = doc.lagg("lagg1").unwrap();
        assert!(!l.lacp_fast_timeout && !l.up);
        assert_eq!(l.rr_limit, 1);
        edit(&mut doc, "lagg1", "destroy").unwrap();
        assert!(doc.laggs.is_empty());
    }

    #[test]
    fn errors_name_the_word() {
        let mut doc = ConfigDoc::default();
        for (s, want) in [
            (
                "laggport",
                "laggport needs an interface name, e.g. laggport em0",
            ),
            ("mtu big", "mtu: 'big' is not a number"),
            ("frobnicate", "'frobnicate' is not a lagg option"),
            (
                "10.0.0.1 netmask 255.0.255.0",
                "netmask 255.0.255.0 is not contiguous ones",
            ),
            (
                "inet 2001:db8::1/64",
                "2001:db8::1 is an IPv6 address: write inet6 2001:db8::1/64",
            ),
            ("inet6 10.0.0.1/8", "inet6: 10.0.0.1 is an IPv4 address"),
            ("inet foo", "inet: 'foo' is not an address"),
            ("cores 1,x", "cores: 'x' is not a core number"),
        ] {
            let got = parse(&words(s)).expect_err(s);
            assert!(got.starts_with(want), "{s}: {got}");
        }
        assert_eq!(
            edit(&mut doc, "lagg0", "laggport a").unwrap_err(),
            "lagg0 does not exist: create it first (xlaggctl lagg0 create)"
        );
        edit(&mut doc, "lagg0", "create laggport a").unwrap();
        assert_eq!(
            edit(&mut doc, "lagg0", "create").unwrap_err(),
            "lagg0 already exists"
        );
        assert_eq!(
            edit(&mut doc, "lagg0", "laggport a").unwrap_err(),
            "a is already a laggport of lagg0"
        );
        assert_eq!(
            edit(&mut doc, "lagg0", "-laggport b").unwrap_err(),
            "b is not a laggport of lagg0"
        );
        // Values are judged by the one validator, with the file's message.
        edit(&mut doc, "lagg0", "laggproto fast").unwrap();
        let e = doc.validate().unwrap_err();
        assert!(
            e.problems[0].starts_with("lagg0.laggproto: unknown protocol 'fast'"),
            "{e}"
        );
    }
}

#[cfg(test)]
mod limits {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn alias_before_an_address_is_read_without_recursion() {
        let ops = parse(&words(
            "alias 10.0.0.1/24 mtu 1400 alias inet6 2001:db8::1/64",
        ))
        .unwrap();
        assert_eq!(
            [ops[0].clone(), ops[2].clone()],
            [
                Op::Address {
                    address: "10.0.0.1/24".into(),
                    alias: true
                },
                Op::Address {
                    address: "2001:db8::1/64".into(),
                    alias: true
                }
            ]
        );
        for bad in ["alias", "alias laggport em0", "mtu 1400 alias"] {
            assert_eq!(
                parse(&words(bad)).unwrap_err(),
                "alias must be followed or preceded by an address",
                "{bad}"
            );
        }
    }

    #[test]
    fn a_flood_of_words_is_refused_before_any_work() {
        // Tens of thousands of `alias` once overflowed the control thread's stack.
        let flood: Vec<String> = std::iter::repeat_n("alias".to_string(), 50_000).collect();
        let e = parse(&flood).unwrap_err();
        assert!(e.starts_with("50000 words given: at most 4096"), "{e}");
        let many: Vec<String> = (0..MAX_WORDS / 2)
            .flat_map(|i| {
                [
                    "alias".to_string(),
                    format!("10.{}.{}.1/32", i / 256, i % 256),
                ]
            })
            .collect();
        assert_eq!(parse(&many).unwrap().len(), MAX_WORDS / 2);
    }
}
