//! `xlaggctl laggN explain` against the frames themselves: iperf3 (not xlagg's) sends 8 TCP
//! streams through lagg0, tcpdump on the partner's end of every member records which member
//! each flow's segments arrived on, and `explain` with the fields tcpdump saw (MACs, addresses,
//! ports) must name that member for every flow: on the host path (the tc engine, host mode's
//! default) and in forward mode on both the AF_XDP and the XDP engine. Needs root, iperf3 and
//! tcpdump (scripts/setup.sh installs them); fails otherwise, never skips.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::time::Duration;

use common::{run_ok, serial, Bed, Daemon};
use xlagg_bench::iperf::IperfRun;

const MEMBERS: usize = 4;
const CLIENT: &str = "10.77.0.1";
const SERVER: &str = "10.77.0.2";

/// One TCP flow as tcpdump printed it: MACs, addresses, ports.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Seen {
    src_mac: String,
    dst_mac: String,
    src: String,
    sport: u16,
    dst: String,
    dport: u16,
}

/// `ADDR.PORT` (tcpdump's form) split.
fn addr_port(text: &str) -> Option<(String, u16)> {
    let text = text.trim_end_matches(':');
    let (addr, port) = text.rsplit_once('.')?;
    Some((addr.to_string(), port.parse().ok()?))
}

/// A line of `tcpdump -e -nn -q`: `TIME SRC > DST, IPv4, length N: A.P > B.Q: tcp LEN`.
fn parse(line: &str) -> Option<Seen> {
    let w: Vec<&str> = line.split_whitespace().collect();
    if w.len() < 11 || w[2] != ">" || w[4] != "IPv4," || w[8] != ">" || w[10] != "tcp" {
        return None;
    }
    let (src, sport) = addr_port(w[7])?;
    let (dst, dport) = addr_port(w[9])?;
    Some(Seen {
        src_mac: w[1].to_string(),
        dst_mac: w[3].trim_end_matches(',').to_string(),
        src,
        sport,
        dst,
        dport,
    })
}

/// tcpdump on the partner's end of one member: what lagg0 sent on it.
struct Capture {
    member: String,
    child: Child,
}

impl Capture {
    fn start(bed: &Bed, partner: &str, member: &str) -> Capture {
        let mut child = bed
            .exec(
                "ptr",
                &[
                    "tcpdump", "-i", partner, "-Q", "in", "-e", "-nn", "-q", "-l", "-c", "200000",
                    "tcp", "and", "src", "host", CLIENT,
                ],
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("tcpdump (scripts/setup.sh installs it)");
        let err = child.stderr.take().expect("stderr");
        let mut lines = BufReader::new(err).lines();
        loop {
            match lines.next() {
                Some(Ok(l)) if l.contains("listening on") => break,
                Some(Ok(_)) => {}
                _ => panic!("tcpdump on {partner} did not start"),
            }
        }
        Capture {
            member: member.to_string(),
            child,
        }
    }

    /// Stops it; the flows it saw.
    fn finish(self) -> BTreeSet<Seen> {
        let pid = self.child.id().to_string();
        let _ = std::process::Command::new("kill")
            .args(["-INT", &pid])
            .status();
        let out = self.child.wait_with_output().expect("tcpdump output");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(parse)
            .collect()
    }
}

/// Sends 8 TCP streams from `client_ns` and returns, for every flow seen, the member its
/// segments arrived on; a flow seen on two members fails.
fn flows_by_member(bed: &Bed, client_ns: &str) -> BTreeMap<Seen, String> {
    let captures: Vec<Capture> = bed
        .partner_names()
        .iter()
        .zip(bed.member_names())
        .map(|(p, m)| Capture::start(bed, p, &m))
        .collect();
    let ptr = bed.ns("ptr");
    IperfRun {
        server_ns: &ptr,
        server_addr: SERVER,
        client_ns,
        client_addr: CLIENT,
        bytes: 0,
        seconds: Some(2),
        streams: 8,
        reverse: false,
        udp_rate: None,
        port: 5201,
    }
    .run(Duration::from_secs(30))
    .unwrap_or_else(|e| panic!("iperf3 through lagg0: {e:#}"));
    std::thread::sleep(Duration::from_millis(200));
    let mut placed = BTreeMap::new();
    for c in captures {
        let member = c.member.clone();
        for flow in c.finish() {
            if let Some(other) = placed.insert(flow.clone(), member.clone()) {
                panic!("{flow:?} left on {other} and on {member}");
            }
        }
    }
    placed
}

/// `explain` for each flow must name the member tcpdump saw it on.
fn explain_agrees(daemon: &Daemon, placed: &BTreeMap<Seen, String>, what: &str) {
    assert!(
        placed.len() >= 8,
        "{what}: at least 8 flows (8 streams and iperf3's control connection), saw {placed:?}"
    );
    let members: BTreeSet<&String> = placed.values().collect();
    assert!(
        members.len() >= 2,
        "{what}: the flows spread over more than one member: {placed:?}"
    );
    let mut buckets = Vec::new();
    for (flow, member) in placed {
        let args = [
            "-j".to_string(),
            "lagg0".into(),
            "explain".into(),
            format!("src_mac={}", flow.src_mac),
            format!("dst_mac={}", flow.dst_mac),
            format!("src_ip={}", flow.src),
            format!("dst_ip={}", flow.dst),
            "proto=tcp".into(),
            format!("src_port={}", flow.sport),
            format!("dst_port={}", flow.dport),
        ];
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = common::xlaggctl(&daemon.socket, &args);
        assert!(
            out.status.success(),
            "{what}: xlaggctl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
        assert_eq!(
            v["member"].as_str(),
            Some(member.as_str()),
            "{what}: explain names the member {flow:?} left on: {v:#}"
        );
        assert_eq!(v["layers_used"], serde_json::json!(["l2", "l3", "l4"]));
        buckets.push((v["bucket"].as_u64().expect("a bucket") as usize, member));
    }
    // The data path counted the flows' frames in the buckets explain named, and the bucket
    // map gives those buckets the same members.
    let dump = daemon.dump();
    let map = &dump["counters"]["laggs"][0]["buckets"];
    for (b, member) in &buckets {
        assert!(
            map["hits"][*b].as_u64().is_some_and(|n| n > 0),
            "{what}: bucket {b} counted its flow's frames: {map}"
        );
        assert_eq!(map["member"][*b], member.as_str(), "{what}: bucket {b}");
    }
    eprintln!(
        "{what}: explain named the member of all {} flows ({} members used)",
        placed.len(),
        members.len()
    );
}

/// A bed whose member links carry complete checksums both ways (as a wire does), and whose
/// far ends take the XDP engine's redirects (GRO on).
fn wired_bed() -> Bed {
    let bed = Bed::up(MEMBERS, true);
    for p in bed.partner_names() {
        run_ok(&mut bed.exec("ptr", &["ethtool", "-K", &p, "tx", "off", "gro", "on"]));
    }
    bed
}

#[test]
fn explain_names_the_member_iperf3_flows_leave_on_from_a_host_mode_lagg() {
    let _serial = serial();
    let bed = wired_bed();
    let config = bed.config(
        "loadbalance",
        &format!("addresses = [\"{CLIENT}/24\"]\n"),
        true,
    );
    let daemon = Daemon::start(&bed, &config);
    let status: serde_json::Value =
        serde_json::from_slice(&common::xlaggctl(&daemon.socket, &["-j", "lagg0"]).stdout)
            .expect("status");
    assert_eq!(status[0]["engine"], "tc", "host mode's default: {status}");
    let placed = flows_by_member(&bed, &bed.ns("app"));
    explain_agrees(&daemon, &placed, "host path (tc)");
    // The API gives the same answer as the CLI.
    let (flow, member) = placed.iter().next().expect("a flow");
    let out = common::xlaggctl(
        &daemon.socket,
        &[
            "lagg0",
            "explain",
            &format!("src_mac={}", flow.src_mac),
            &format!("dst_mac={}", flow.dst_mac),
            &format!("src_ip={}", flow.src),
            &format!("dst_ip={}", flow.dst),
            "proto=tcp",
            &format!("src_port={}", flow.sport),
            &format!("dst_port={}", flow.dport),
        ],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    eprintln!("{text}");
    assert!(
        text.contains(&format!("leaves on {member}")) && text.contains("bucket"),
        "the text form says where and why: {text}"
    );
    drop(daemon);
}

#[test]
fn explain_names_the_member_iperf3_flows_leave_on_in_forward_mode_on_both_engines() {
    let _serial = serial();
    let bed = wired_bed();
    run_ok(&mut bed.exec("src", &["ethtool", "-K", "xls0", "tx", "off", "gro", "on"]));
    bed.ip(
        "src",
        &["addr", "add", &format!("{CLIENT}/24"), "dev", "xls0"],
    );
    for engine in ["afxdp", "xdp"] {
        let config = bed.config("loadbalance", &format!("engine = \"{engine}\"\n"), false);
        let daemon = Daemon::start(&bed, &config);
        let placed = flows_by_member(&bed, &bed.ns("src"));
        explain_agrees(&daemon, &placed, &format!("forward mode ({engine})"));
        drop(daemon);
    }
}

/// Refusals name what to give; an idle member is named with its reason.
#[test]
fn a_flow_explain_cannot_build_is_refused_and_an_idle_member_says_why() {
    let _serial = serial();
    let bed = Bed::up(2, false);
    let daemon = Daemon::start(&bed, &bed.config("loadbalance", "", false));
    for (words, expect) in [
        (&["src_port=80"][..], "ports need proto=tcp"),
        (
            &["src_ip=10.0.0.1", "dst_ip=2001:db8::1"][..],
            "two families",
        ),
        (&["colour=blue"][..], "unknown flow field 'colour'"),
        (&["vlan=5000"][..], "not a VLAN id from 1 to 4094"),
    ] {
        let mut args = vec!["lagg0", "explain"];
        args.extend_from_slice(words);
        let out = common::xlaggctl(&daemon.socket, &args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{words:?}: {err}");
        assert!(err.contains(expect), "{words:?}: {err}");
    }
    let out = common::xlaggctl(&daemon.socket, &["lagg7", "explain", "src_ip=10.0.0.1"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no lagg named lagg7"),
        "{out:?}"
    );
    let out = common::xlaggctl(&daemon.socket, &["lagg0", "explain", "10.0.0.1"]);
    assert_eq!(out.status.code(), Some(2), "a word that is not FIELD=VALUE");
    // Every field left out: a frame of zeros, placed all the same.
    let out = common::xlaggctl(&daemon.socket, &["-j", "lagg0", "explain"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert!(v["member"].is_string(), "{v}");
    // A member whose partner end goes down is named with its reason.
    bed.ip("ptr", &["link", "set", "xlp1", "down"]);
    common::wait_until(10, "xlm1 left the active set", || {
        let out = common::xlaggctl(&daemon.socket, &["-j", "lagg0", "explain"]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
        v["active"] == serde_json::json!(["xlm0"])
            && v["member"] == "xlm0"
            && v["why"].as_array().is_some_and(|w| {
                w.iter().any(|l| {
                    l.as_str()
                        .is_some_and(|l| l.starts_with("xlm1 is not active: its link is down"))
                })
            })
    });
    drop(daemon);
}
