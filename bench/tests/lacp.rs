//! LACP in the namespace test bed: xlagg against xlagg over four links, and xlagg against an
//! implementation we did not write (Open vSwitch's LACP, Debian's openvswitch-switch, on its
//! userspace datapath), started by the test in the partner namespace. Needs root and
//! openvswitch-switch (scripts/setup.sh installs it); fails otherwise, never skips.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::ovs::Ovs;
use common::{run, serial, Bed, Daemon};

const DISTRIBUTING: &str = "<ACTIVE,COLLECTING,DISTRIBUTING>";

fn lacp_config(ports: &[&str], address: &str) -> String {
    let list: Vec<String> = ports.iter().map(|p| format!("\"{p}\"")).collect();
    format!(
        "[daemon]\nstatus_interval_ms = 100\nlink_poll_ms = 10000\n\n[[lagg]]\nname = \"lagg0\"\nlaggproto = \"lacp\"\n\
         laggports = [{}]\naddresses = [\"{address}\"]\nlacp_fast_timeout = true\n",
        list.join(", ")
    )
}

fn all(flags: &BTreeMap<String, String>, ports: &[&str], want: &str) -> bool {
    ports
        .iter()
        .all(|p| flags.get(*p).is_some_and(|f| f == want))
}

fn ping(bed: &Bed, count: &str) -> bool {
    run(&mut bed.exec(
        "app",
        &["ping", "-c", count, "-i", "0.2", "-W", "1", "10.77.0.2"],
    ))
    .status
    .success()
}

const APP: [&str; 4] = ["xlm0", "xlm1", "xlm2", "xlm3"];
const PTR: [&str; 4] = ["xlp0", "xlp1", "xlp2", "xlp3"];

#[test]
fn xlagg_against_xlagg_converges_then_survives_a_member_loss() {
    let _serial = serial();
    let bed = Bed::up(4, false);
    let mut partner = Daemon::start_in(&bed, "ptr", &lacp_config(&PTR, "10.77.0.2/24"));
    let started = Instant::now();
    let mut app = Daemon::start(&bed, &lacp_config(&APP, "10.77.0.1/24"));
    // Before convergence (aggregate_wait is 2 s) nothing is distributed.
    assert!(!ping(&bed, "1"), "traffic passed before LACP converged");
    app.wait_status(15, "all four ports distributing on the appliance", |f| {
        all(f, &APP, DISTRIBUTING)
    });
    partner.wait_status(15, "all four ports distributing on the partner", |f| {
        all(f, &PTR, DISTRIBUTING)
    });
    eprintln!("converged {:?} after start", started.elapsed());
    assert!(ping(&bed, "3"), "traffic passes once converged");
    // A member taken down on the partner side leaves distribution within 3 s; traffic goes on.
    bed.ip("ptr", &["link", "set", "xlp1", "down"]);
    let down = Instant::now();
    app.wait_status(3, "xlm1 to leave distribution", |f| {
        f.get("xlm1").is_some_and(|s| !s.contains("DISTRIBUTING"))
            && all(f, &["xlm0", "xlm2", "xlm3"], DISTRIBUTING)
    });
    eprintln!(
        "xlm1 left distribution {:?} after the partner took it down",
        down.elapsed()
    );
    assert!(ping(&bed, "5"), "traffic continues on the other members");
}

#[test]
fn xlagg_against_open_vswitch_lacp_all_links_collect_and_distribute_and_traffic_passes() {
    let _serial = serial();
    let bed = Bed::up(4, false);
    let ovs = Ovs::start(&bed);
    let mut app = Daemon::start(&bed, &lacp_config(&APP, "10.77.0.1/24"));
    app.wait_status(
        20,
        "all four ports distributing against Open vSwitch",
        |f| all(f, &APP, DISTRIBUTING),
    );
    // Open vSwitch's own view: every member current, attached, and both actor and partner
    // collecting and distributing.
    let deadline = Instant::now() + Duration::from_secs(10);
    let (ok, show) = loop {
        let show = ovs.appctl(&["lacp/show", "bond0"]);
        let members = show.matches("member: ").count();
        let states = show.matches("collecting distributing").count();
        if members == 4 && states == 8 && show.matches("current attached").count() == 4 {
            break (true, show);
        }
        if Instant::now() > deadline {
            break (false, show);
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        ok,
        "Open vSwitch does not see all links collecting and distributing:\n{show}"
    );
    assert!(
        ping(&bed, "5"),
        "traffic passes between xlagg and Open vSwitch"
    );
}

/// A partner that runs no LACP (a plain bridge: a switch whose ports are not in an LACP
/// LAG) raises the `defaulted` alarm on every port: in status, in the text, in /metrics and
/// in the timeline, with what to do (with `lacp_strict`, the default, the ports carry
/// nothing meanwhile).
#[test]
fn a_partner_without_lacp_raises_the_defaulted_alarm_everywhere() {
    let _serial = serial();
    let bed = Bed::up(2, true);
    let daemon = Daemon::start(&bed, &lacp_config(&["xlm0", "xlm1"], "10.77.0.1/24"));
    let status = || -> serde_json::Value {
        serde_json::from_slice(&common::xlaggctl(&daemon.socket, &["-j", "lagg0"]).stdout)
            .expect("status")
    };
    common::wait_until(15, "both ports defaulted", || {
        let s = status();
        let kinds: Vec<&str> = s[0]["lacp"]["alarms"]
            .as_array()
            .map(|a| a.iter().filter_map(|a| a["kind"].as_str()).collect())
            .unwrap_or_default();
        kinds == ["defaulted", "defaulted"]
    });
    let s = status();
    let text = s[0]["lacp"]["alarms"][0]["text"]
        .as_str()
        .unwrap_or_default();
    assert!(text.contains("enable LACP"), "says what to do: {text}");
    let shown =
        String::from_utf8_lossy(&common::xlaggctl(&daemon.socket, &["lagg0"]).stdout).into_owned();
    assert!(shown.contains("ALARM xlm0 defaulted"), "{shown}");
    let metrics = String::from_utf8_lossy(
        &run(&mut bed.exec("app", &["curl", "-s", "http://127.0.0.1:8474/metrics"])).stdout,
    )
    .into_owned();
    for (alarm, want) in [("defaulted", " 1"), ("slow_partner", " 0")] {
        let series = format!(
            "xlagg_port_lacp_alarm{{lagg=\"lagg0\",port=\"xlm1\",alarm=\"{alarm}\"}}{want}"
        );
        assert!(
            metrics.lines().any(|l| l == series),
            "{series} in:\n{metrics}"
        );
    }
    let raised = daemon
        .events(Some("lacp"))
        .iter()
        .any(|(port, text)| port == "xlm0" && text.starts_with("ALARM defaulted"));
    assert!(raised, "the timeline tells of the alarm");
    drop(daemon);
}

/// `lacp_fallback`: against a partner that runs no LACP yet (a switch not configured, a PXE
/// boot), the port of best priority forwards alone after the partner's timeout, and status,
/// /metrics and the timeline say so; the partner's first LACPDUs end it and LACP aggregates
/// both ports.
#[test]
fn lacp_fallback_forwards_on_one_port_until_the_partner_speaks_lacp() {
    let _serial = serial();
    let bed = Bed::up(2, false);
    bed.ip("ptr", &["addr", "add", "10.77.0.2/24", "dev", "xlp0"]);
    let config = lacp_config(&["xlm0", "xlm1"], "10.77.0.1/24").replace(
        "lacp_fast_timeout = true\n",
        "lacp_fast_timeout = true\nlacp_fallback = true\n",
    );
    let app = Daemon::start(&bed, &config);
    let status = || -> serde_json::Value {
        serde_json::from_slice(&common::xlaggctl(&app.socket, &["-j", "lagg0"]).stdout)
            .expect("status")
    };
    let started = Instant::now();
    common::wait_until(15, "lacp fallback on xlm0", || {
        status()[0]["lacp"]["fallback"] == "xlm0"
    });
    eprintln!("in fallback {:?} after start", started.elapsed());
    let flags = |s: &serde_json::Value, port: &str| -> Vec<String> {
        s[0]["ports"]
            .as_array()
            .and_then(|p| p.iter().find(|p| p["name"] == port))
            .map(|p| serde_json::from_value(p["flags"].clone()).unwrap_or_default())
            .unwrap_or_default()
    };
    let s = status();
    assert!(
        flags(&s, "xlm0").contains(&"DISTRIBUTING".to_string()),
        "{s}"
    );
    assert!(
        !flags(&s, "xlm1").contains(&"DISTRIBUTING".to_string()),
        "{s}"
    );
    assert!(ping(&bed, "3"), "the fallback port carries traffic");
    let metrics = String::from_utf8_lossy(
        &run(&mut bed.exec("app", &["curl", "-s", "http://127.0.0.1:8474/metrics"])).stdout,
    )
    .into_owned();
    assert!(
        metrics
            .lines()
            .any(|l| l == "xlagg_lagg_lacp_fallback{lagg=\"lagg0\"} 1"),
        "{metrics}"
    );
    let shown =
        String::from_utf8_lossy(&common::xlaggctl(&app.socket, &["lagg0"]).stdout).into_owned();
    assert!(
        shown.contains("lacp fallback: xlm0 forwards alone"),
        "{shown}"
    );
    // The partner starts LACP: the fallback ends and both ports aggregate.
    bed.ip("ptr", &["addr", "del", "10.77.0.2/24", "dev", "xlp0"]);
    let _partner = Daemon::start_in(&bed, "ptr", &lacp_config(&["xlp0", "xlp1"], "10.77.0.2/24"));
    let partner_started = Instant::now();
    common::wait_until(
        15,
        "the fallback to end and both ports to distribute",
        || {
            let s = status();
            s[0]["lacp"]["fallback"].is_null()
                && ["xlm0", "xlm1"]
                    .iter()
                    .all(|p| flags(&s, p).contains(&"DISTRIBUTING".to_string()))
        },
    );
    eprintln!(
        "fallback ended and both ports distribute {:?} after the partner's LACP started",
        partner_started.elapsed()
    );
    assert!(
        app.told("lacp fallback: no LACPDU") && app.told("lacp fallback ended"),
        "{:?}",
        app.events(Some("lacp"))
    );
    assert!(ping(&bed, "3"), "the aggregate carries traffic");
}
