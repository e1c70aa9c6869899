//! The web UI in a real browser (Debian's Chromium, headless): the daemon serves every asset;
//! a lagg is created through the TrueNAS-style form, shows in the list and in xlaggctl -j, a
//! bad name gets the validator's message next to the field, delete asks first. Also the HTTP
//! API's token rule. Needs root and chromium; fails otherwise.

mod common;

use common::browser::Browser;
use common::{run, serial, Bed, Daemon};

/// The page as a person sees it at 1400x1000: nothing drawn over anything, nothing past the
/// right edge.
fn assert_layout(b: &mut Browser, page: &str) {
    let problems = b.layout_problems();
    assert!(
        problems.is_empty(),
        "{page} is laid out wrong:\n{}",
        problems.join("\n")
    );
}

fn token(daemon: &Daemon) -> String {
    std::fs::read_to_string(daemon.config.with_extension("token"))
        .expect("the daemon created its token file")
        .trim()
        .to_string()
}

fn ctl_json(daemon: &Daemon) -> serde_json::Value {
    let out = common::xlaggctl(&daemon.socket, &["-j"]);
    assert!(out.status.success());
    serde_json::from_slice(&out.stdout).expect("JSON")
}

/// curl in the appliance namespace: (HTTP status, body).
fn curl(bed: &Bed, args: &[&str]) -> (u16, String) {
    let mut all = vec!["curl", "-s", "-o", "/dev/stdout", "-w", "\n%{http_code}"];
    all.extend_from_slice(args);
    let out = run(&mut bed.exec("app", &all));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

#[test]
fn changes_need_the_token_and_a_wrong_one_changes_nothing() {
    let _serial = serial();
    let bed = Bed::up(2, false);
    let daemon = Daemon::start(&bed, "[daemon]\nlink_poll_ms = 10000\n");
    let url = "http://127.0.0.1:8474/api/v1/laggs";
    let body = r#"{"name":"lagg0","laggports":["xlm0"]}"#;
    let (code, text) = curl(&bed, &["-X", "POST", "-d", body, url]);
    assert_eq!(code, 401, "{text}");
    assert!(text.contains("missing token"), "{text}");
    let (code, text) = curl(
        &bed,
        &[
            "-X",
            "POST",
            "-H",
            "Authorization: Bearer 00",
            "-d",
            body,
            url,
        ],
    );
    assert_eq!(code, 401, "{text}");
    assert!(text.contains("wrong token"), "{text}");
    assert_eq!(
        ctl_json(&daemon),
        serde_json::json!([]),
        "nothing was created"
    );
    assert!(!std::fs::read_to_string(&daemon.config)
        .unwrap()
        .contains("lagg0"));
    let auth = format!("Authorization: Bearer {}", token(&daemon));
    let (code, text) = curl(&bed, &["-X", "POST", "-H", &auth, "-d", body, url]);
    assert_eq!(code, 200, "{text}");
    let (code, text) = curl(
        &bed,
        &[
            "-X",
            "DELETE",
            "-H",
            "Authorization: Bearer 00",
            &format!("{url}/lagg0"),
        ],
    );
    assert_eq!(code, 401, "{text}");
    assert_eq!(ctl_json(&daemon)[0]["name"], "lagg0", "still there");
    // Reads need no token; unknown laggs are 404; the API is described.
    let (code, _) = curl(&bed, &[&format!("{url}/lagg7")]);
    assert_eq!(code, 404);
    let (code, text) = curl(&bed, &["http://127.0.0.1:8474/openapi.json"]);
    assert_eq!(code, 200);
    let spec: serde_json::Value = serde_json::from_str(&text).expect("OpenAPI is JSON");
    assert!(spec["paths"]["/api/v1/laggs/{name}"]["put"]["security"].is_array());
    let mode = std::fs::metadata(daemon.config.with_extension("token")).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777,
        0o600,
        "the token is readable by root only"
    );
}

#[test]
fn create_a_lagg_through_the_form_and_delete_it() {
    let _serial = serial();
    let bed = Bed::up(2, true);
    let daemon = Daemon::start(&bed, "[daemon]\nlink_poll_ms = 10000\n");
    let mut b = Browser::open(&bed, "app");
    b.goto(&format!("http://127.0.0.1:8474/#token={}", token(&daemon)));
    b.wait_for(
        "document.querySelector('#auth-state').textContent === 'token accepted'",
        10,
        "the token to be accepted",
    );
    b.wait_for(
        "document.querySelector('#empty').hidden === false",
        10,
        "the empty list",
    );
    assert_layout(&mut b, "the empty list");

    // A bad name: the validator's message appears next to the Name field.
    b.eval("document.querySelector('#add').click()");
    b.wait_for(
        "document.querySelectorAll('#f-ports input[type=checkbox]').length >= 2",
        10,
        "the member choices from the machine's interfaces",
    );
    let names =
        b.eval("[...document.querySelectorAll('#f-ports input')].map(i => i.value).join(',')");
    assert!(
        names.as_str().unwrap().contains("xlm0"),
        "real interfaces offered: {names}"
    );
    b.eval(
        "document.querySelector('#f-name').value = 'bond0';
         document.querySelector('#f-ports input[value=xlm0]').checked = true;
         document.querySelector('#save').click()",
    );
    b.wait_for(
        "document.querySelector('.field-error[data-field=name]').textContent !== ''",
        10,
        "an inline error for the name",
    );
    let msg = b.eval("document.querySelector('.field-error[data-field=name]').textContent");
    assert_eq!(
        msg.as_str().unwrap(),
        "'bond0' is not a lagg name: use lagg followed by a number, e.g. lagg0"
    );
    assert_eq!(ctl_json(&daemon), serde_json::json!([]), "nothing created");

    // Fixed: lagg0, failover over xlm0 and xlm1, an address, a description.
    b.eval(
        "document.querySelector('#f-name').value = 'lagg0';
         document.querySelector('#f-description').value = 'uplink';
         document.querySelector('#f-laggproto').value = 'failover';
         document.querySelector('#f-ports input[value=xlm1]').checked = true;
         document.querySelector('#f-addresses input').value = '10.77.0.1/24';
         document.querySelector('#f-options').value = 'updelay 100';
         document.querySelector('#save').click()",
    );
    b.wait_for(
        "!document.querySelector('#editor').open && document.querySelector('tr[data-name=lagg0] .state.running')",
        20,
        "lagg0 running in the list",
    );
    let row = b.eval("document.querySelector('tr[data-name=lagg0]').innerText");
    let row = row.as_str().unwrap();
    assert!(
        row.contains("uplink") && row.contains("FAILOVER") && row.contains("10.77.0.1/24"),
        "{row}"
    );
    b.wait_for(
        "document.querySelector('tr[data-name=lagg0]').innerText.includes('MASTER,ACTIVE')",
        10,
        "live port flags",
    );
    let artifacts = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("artifacts");
    b.screenshot(&artifacts.join("webui-list.png"));
    assert_layout(&mut b, "the list with lagg0");
    let j = ctl_json(&daemon);
    assert_eq!(j[0]["name"], "lagg0");
    assert_eq!(j[0]["description"], "uplink");
    assert_eq!(j[0]["addresses"][0], "10.77.0.1/24");
    assert_eq!(j[0]["state"], "running");
    let file = std::fs::read_to_string(&daemon.config).unwrap();
    assert!(
        file.contains("updelay = 100"),
        "the Options words were applied: {file}"
    );
    let ping = run(&mut bed.exec(
        "app",
        &["ping", "-c", "2", "-W", "2", "-i", "0.2", "10.77.0.2"],
    ));
    assert!(
        ping.status.success(),
        "ping through the lagg made in the browser"
    );

    // Edit: the form comes back filled in; a change shows in the list and the file.
    b.eval("document.querySelector('tr[data-name=lagg0] .edit').click()");
    b.wait_for(
        "document.querySelector('#editor').open && document.querySelector('#f-description').value === 'uplink'",
        10,
        "the edit form filled from the configuration",
    );
    assert_layout(&mut b, "the edit form");
    let checked = b.eval(
        "[...document.querySelectorAll('#f-ports input:checked')].map(i => i.value).join(',')",
    );
    assert_eq!(checked, "xlm0,xlm1");
    b.eval(
        "document.querySelector('#f-description').value = 'uplink to core';
         document.querySelector('#save').click()",
    );
    b.wait_for(
        "!document.querySelector('#editor').open && document.querySelector('tr[data-name=lagg0]').innerText.includes('uplink to core')",
        20,
        "the edited description in the list",
    );
    assert_eq!(ctl_json(&daemon)[0]["description"], "uplink to core");
    assert!(
        std::fs::read_to_string(&daemon.config)
            .unwrap()
            .contains("updelay = 100"),
        "keys the form does not show are kept"
    );

    // Delete asks first; Cancel keeps it, Delete removes it.
    b.eval("document.querySelector('tr[data-name=lagg0] .delete').click()");
    b.wait_for(
        "document.querySelector('#confirm').open",
        5,
        "the confirmation",
    );
    b.eval("document.querySelector('#confirm-no').click()");
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert_eq!(ctl_json(&daemon)[0]["name"], "lagg0", "cancel keeps it");
    b.eval("document.querySelector('tr[data-name=lagg0] .delete').click()");
    b.wait_for(
        "document.querySelector('#confirm').open",
        5,
        "the confirmation",
    );
    b.eval("document.querySelector('#confirm-yes').click()");
    b.wait_for(
        "!document.querySelector('tr[data-name=lagg0]')",
        10,
        "lagg0 gone from the list",
    );
    assert_eq!(ctl_json(&daemon), serde_json::json!([]));
}
