//! Hostile and careless input to a running xlaggd, one test per way it once broke: the
//! answer is a clear refusal, nothing is applied, the laggs and the file are as they were, and
//! the daemon stays alive with bounded memory and threads. Needs root; fails otherwise.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::netns::in_ns;
use common::{run, serial, xlaggd_bin, Bed, Daemon};

const HTTP: &str = "127.0.0.1:8474";

fn token(daemon: &Daemon) -> String {
    std::fs::read_to_string(daemon.config.with_extension("token"))
        .expect("the daemon created its token file")
        .trim()
        .to_string()
}

/// A TCP connection to the daemon's HTTP listener in the appliance namespace.
fn connect(bed: &Bed) -> TcpStream {
    let s = in_ns(&bed.ns("app"), || {
        TcpStream::connect(HTTP).expect("connect")
    });
    s.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    s
}

/// One raw request; the whole answer (the server closes or the read times out).
fn raw(bed: &Bed, request: &[u8]) -> String {
    let mut s = connect(bed);
    s.write_all(request).expect("send");
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

fn status_of(answer: &str) -> u16 {
    answer
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

/// A request with the token, `Connection: close`.
fn request(daemon: &Daemon, method: &str, path: &str, body: &str) -> Vec<u8> {
    format!(
        "{method} {path} HTTP/1.1\r\nHost: {HTTP}\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        token(daemon),
        body.len()
    )
    .into_bytes()
}

/// (resident kB, threads) of a process.
fn rss_and_threads(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("Threads:"))
}

fn two_laggs(bed: &Bed) -> Daemon {
    Daemon::start(
        bed,
        "[daemon]\nlink_poll_ms = 10000\n\n[[lagg]]\nname = \"lagg0\"\nlaggports = [\"xlm0\"]\n\n\
         [[lagg]]\nname = \"lagg1\"\nlaggports = [\"xlm1\"]\n",
    )
}

fn lagg_names(daemon: &Daemon) -> Vec<String> {
    let out = common::xlaggctl(&daemon.socket, &["-j"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    v.as_array()
        .expect("list")
        .iter()
        .map(|l| l["name"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn an_endless_header_line_is_cut_off_with_431_and_memory_stays_flat() {
    let _serial = serial();
    let bed = Bed::up(2, false);
    let daemon = two_laggs(&bed);
    let (rss_before, _) = rss_and_threads(daemon.pid());
    let mut s = connect(&bed);
    s.write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Long: ")
        .expect("send");
    let chunk = vec![b'a'; 64 << 10];
    let mut sent = 0usize;
    // Up to 64 MB of one header line; the server must answer and close long before.
    while sent < 64 << 20 {
        if s.write_all(&chunk).is_err() {
            break;
        }
        sent += chunk.len();
    }
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert_eq!(status_of(&answer), 431, "answer: {answer:.200}");
    assert!(
        sent < 64 << 20,
        "the server kept reading a 64 MB header line"
    );
    let (rss_after, _) = rss_and_threads(daemon.pid());
    assert!(
        rss_after < rss_before + (16 << 10),
        "resident memory grew from {rss_before} kB to {rss_after} kB"
    );
    // A request line that never ends is cut the same way.
    let long_uri = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(100_000));
    let status = status_of(&raw(&bed, long_uri.as_bytes()));
    assert!(matches!(status, 414 | 431), "long request line: {status}");
}

#[test]
fn idle_half_requests_hold_neither_threads_nor_the_listener_for_long() {
    let _serial = serial();
    let bed = Bed::up(2, false);
    let daemon = two_laggs(&bed);
    let (_, threads_before) = rss_and_threads(daemon.pid());
    let ns = bed.ns("app");
    let idle: Vec<TcpStream> = in_ns(&ns, || {
        (0..300)
            .filter_map(|_| TcpStream::connect(HTTP).ok())
            .inspect(|s| {
                let _ = (&*s).write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n");
            })
            .collect()
    });
    std::thread::sleep(Duration::from_millis(500));
    let (rss, threads) = rss_and_threads(daemon.pid());
    assert!(
        threads <= threads_before + 4,
        "{} half-requests: threads went from {threads_before} to {threads} (RSS {rss} kB)",
        idle.len()
    );
    // Every one of them is closed within the head timeout (10 s) and a little more.
    let started = Instant::now();
    for mut s in idle {
        s.set_read_timeout(Some(Duration::from_secs(15)))
            .expect("timeout");
        let mut buf = [0u8; 512];
        loop {
            match s.read(&mut buf) {
                Ok(0) => break,
                Ok(_) => continue,
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
                Err(e) => panic!(
                    "a half-request was still open after {:?}: {e}",
                    started.elapsed()
                ),
            }
        }
    }
    assert!(started.elapsed() < Duration::from_secs(13));
    // The listener serves again.
    let answer = raw(
        &bed,
        b"GET /api/v1/laggs HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status_of(&answer), 200, "{answer}");
}

#[test]
fn a_configuration_over_the_body_limit_is_refused_whole_and_nothing_changes() {
    let _serial = serial();
    let bed = Bed::up(2, false);
    let daemon = two_laggs(&bed);
    let file_before = std::fs::read_to_string(&daemon.config).expect("file");
    // A valid document that names only lagg0 first, padded past 1 MiB with a comment, then
    // lagg1: cut anywhere, it would delete lagg1.
    let padding = format!("# {}\n", "x".repeat(1 << 20));
    let doc = format!(
        "[daemon]\nlink_poll_ms = 10000\n\n[[lagg]]\nname = \"lagg0\"\nlaggports = [\"xlm0\"]\n{padding}\
         [[lagg]]\nname = \"lagg1\"\nlaggports = [\"xlm1\"]\n"
    );
    let answer = raw(&bed, &request(&daemon, "PUT", "/api/v1/config", &doc));
    assert_eq!(status_of(&answer), 413, "{answer:.300}");
    assert!(
        answer.contains("nothing was read or changed"),
        "{answer:.300}"
    );
    // Chunked, without a length: refused the same way once the limit is passed.
    let mut chunked = format!(
        "PUT /api/v1/config HTTP/1.1\r\nHost: {HTTP}\r\nAuthorization: Bearer {}\r\nTransfer-Encoding: chunked\r\n\
         Connection: close\r\n\r\n",
        token(&daemon)
    )
    .into_bytes();
    for piece in doc.as_bytes().chunks(60_000) {
        chunked.extend(format!("{:x}\r\n", piece.len()).as_bytes());
        chunked.extend(piece);
        chunked.extend(b"\r\n");
    }
    chunked.extend(b"0\r\n\r\n");
    let answer = raw(&bed, &chunked);
    assert_eq!(status_of(&answer), 413, "chunked: {answer:.300}");
    assert_eq!(lagg_names(&daemon), ["lagg0", "lagg1"]);
    assert_eq!(
        std::fs::read_to_string(&daemon.config).expect("file"),
        file_before,
        "the file is untouched"
    );
}

#[test]
fn dry_run_deletes_nothing_and_an_unclear_query_changes_nothing() {
    let _serial = serial();
    let bed = Bed::up(2, false);
    let daemon = two_laggs(&bed);
    let answer = raw(
        &bed,
        &request(&daemon, "DELETE", "/api/v1/laggs/lagg0?dry_run=1", ""),
    );
    assert_eq!(status_of(&answer), 200, "{answer}");
    assert!(answer.contains("\"dry_run\":true"), "{answer}");
    for query in ["dry_run=yes", "dryrun=1", "force=1"] {
        let answer = raw(
            &bed,
            &request(
                &daemon,
                "DELETE",
                &format!("/api/v1/laggs/lagg0?{query}"),
                "",
            ),
        );
        assert_eq!(status_of(&answer), 400, "{query}: {answer}");
    }
    assert_eq!(lagg_names(&daemon), ["lagg0", "lagg1"]);
    // Without dry_run it goes.
    let answer = raw(&bed, &request(&daemon, "DELETE", "/api/v1/laggs/lagg0", ""));
    assert_eq!(status_of(&answer), 200, "{answer}");
    assert_eq!(lagg_names(&daemon), ["lagg1"]);
}

#[test]
fn fifty_thousand_alias_words_get_an_answer_and_the_daemon_lives() {
    let _serial = serial();
    let bed = Bed::up(2, false);
    let daemon = two_laggs(&bed);
    let words: Vec<&str> = std::iter::repeat_n("alias", 50_000).collect();
    let body = serde_json::json!({ "args": words }).to_string();
    let answer = raw(
        &bed,
        &request(&daemon, "POST", "/api/v1/laggs/lagg0/ifconfig", &body),
    );
    assert_eq!(status_of(&answer), 422, "{answer:.300}");
    assert!(answer.contains("at most 4096"), "{answer:.300}");
    assert!(std::path::Path::new(&format!("/proc/{}", daemon.pid())).exists());
    assert_eq!(lagg_names(&daemon), ["lagg0", "lagg1"]);
}

#[test]
fn a_foreign_host_name_is_refused_and_answers_carry_security_headers() {
    let _serial = serial();
    let bed = Bed::up(2, false);
    let _daemon = two_laggs(&bed);
    let answer = raw(
        &bed,
        b"GET /api/v1/dump HTTP/1.1\r\nHost: rebind.example.com:8474\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status_of(&answer), 421, "{answer}");
    let answer = raw(
        &bed,
        b"GET / HTTP/1.1\r\nHost: localhost:8474\r\nConnection: close\r\n\r\n",
    )
    .to_ascii_lowercase();
    assert_eq!(status_of(&answer), 200);
    for header in [
        "x-content-type-options: nosniff",
        "content-security-policy: default-src 'self'",
        "frame-ancestors 'none'",
        "x-frame-options: deny",
    ] {
        assert!(answer.contains(header), "missing {header}");
    }
}

#[test]
fn event_streams_are_capped() {
    let _serial = serial();
    let bed = Bed::up(2, false);
    let _daemon = two_laggs(&bed);
    let open = |bed: &Bed| {
        let mut s = connect(bed);
        s.write_all(b"GET /api/v1/stream HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            .expect("send");
        let mut buf = [0u8; 64];
        let n = s.read(&mut buf).expect("answer");
        (s, status_of(&String::from_utf8_lossy(&buf[..n])))
    };
    let streams: Vec<(TcpStream, u16)> = (0..8).map(|_| open(&bed)).collect();
    assert!(streams.iter().all(|(_, code)| *code == 200));
    let (_, ninth) = open(&bed);
    assert_eq!(ninth, 503, "a ninth stream");
    drop(streams);
}

#[test]
fn a_regular_file_at_the_socket_path_is_left_alone() {
    let _serial = serial();
    let bed = Bed::up(1, false);
    let dir = std::env::temp_dir().join(format!("xlagg-{}-sock", bed.id));
    std::fs::create_dir_all(&dir).expect("dir");
    let precious = dir.join("precious.txt");
    std::fs::write(&precious, "keep me").expect("write");
    let config = dir.join("x.toml");
    std::fs::write(&config, "").expect("write");
    let out = run(bed
        .exec(
            "app",
            &[
                xlaggd_bin().to_str().expect("utf-8"),
                "--config",
                config.to_str().expect("utf-8"),
                "--socket",
                precious.to_str().expect("utf-8"),
                "--http",
                "off",
            ],
        )
        .stdin(std::process::Stdio::null()));
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    let kept = std::fs::read_to_string(&precious);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("is not a socket"), "{err}");
    assert_eq!(kept.expect("the file is still there"), "keep me");
}

#[test]
fn only_root_may_use_the_management_socket() {
    let _serial = serial();
    let bed = Bed::up(1, false);
    let daemon = Daemon::start(&bed, "[daemon]\nlink_poll_ms = 10000\n");
    // Even with the file modes opened up, another user is refused by its credentials.
    let dir = daemon.socket.parent().expect("dir").to_path_buf();
    let _ = run(std::process::Command::new("chmod").args(["a+rwx", dir.to_str().expect("utf-8")]));
    run(std::process::Command::new("chmod").args(["a+rw", daemon.socket.to_str().expect("utf-8")]));
    let script = format!(
        "import os,socket\nos.setgid(65534)\nos.setuid(65534)\ns=socket.socket(socket.AF_UNIX)\n\
         s.connect('{}')\n\
         # The daemon may refuse and close before the request is written: its answer is still there to read.\n\
         try: s.sendall(b'{{\"cmd\":\"ifconfig\",\"name\":\"lagg0\",\"args\":[\"create\"]}}\\n')\n\
         except (BrokenPipeError, ConnectionResetError): pass\n\
         print(s.makefile().readline())",
        daemon.socket.display()
    );
    let out = run(std::process::Command::new("python3").args(["-c", &script]));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("may not use the management socket"),
        "{said} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(lagg_names(&daemon).is_empty(), "nothing was created");
}

#[test]
fn with_a_certificate_the_listener_speaks_https_only() {
    let _serial = serial();
    let bed = Bed::up(1, false);
    let dir = std::env::temp_dir().join(format!("xlagg-{}-tls", bed.id));
    std::fs::create_dir_all(&dir).expect("dir");
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let made = run(std::process::Command::new("openssl").args([
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=localhost",
        "-addext",
        "subjectAltName=IP:127.0.0.1,DNS:localhost",
        "-keyout",
        key.to_str().expect("utf-8"),
        "-out",
        cert.to_str().expect("utf-8"),
    ]));
    assert!(
        made.status.success(),
        "openssl: {}",
        String::from_utf8_lossy(&made.stderr)
    );
    let daemon = Daemon::start(
        &bed,
        &format!(
            "[daemon]\nlink_poll_ms = 10000\ntls_cert = \"{}\"\ntls_key = \"{}\"\n",
            cert.display(),
            key.display()
        ),
    );
    let curl = |url: &str| {
        let out = run(&mut bed.exec(
            "app",
            &[
                "curl",
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "--max-time",
                "5",
                "--cacert",
                cert.to_str().expect("utf-8"),
                url,
            ],
        ));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(curl("https://127.0.0.1:8474/api/v1/laggs"), "200");
    assert_eq!(curl("https://localhost:8474/"), "200");
    assert_ne!(
        curl("http://127.0.0.1:8474/api/v1/laggs"),
        "200",
        "no plain HTTP"
    );
    drop(daemon);
    let _ = std::fs::remove_dir_all(&dir);
}

/// LACP events (selection, mux changes) in a daemon's timeline.
fn lacp_events(daemon: &Daemon) -> usize {
    let out = common::xlaggctl(&daemon.socket, &["dump"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("dump is JSON");
    v["events"].as_array().map_or(0, |e| {
        e.iter()
            .filter(|e| e["kind"] == "lacp" || e["kind"] == "link")
            .count()
    })
}

#[test]
fn a_flood_of_reads_never_delays_lacp() {
    let _serial = serial();
    let bed = Bed::up(2, false);
    let lacp = |ports: &str, addr: &str| {
        format!(
            "[daemon]\nstatus_interval_ms = 100\nlink_poll_ms = 10000\n\n[[lagg]]\nname = \"lagg0\"\n\
             laggproto = \"lacp\"\nlaggports = [{ports}]\naddresses = [\"{addr}\"]\nlacp_fast_timeout = true\n"
        )
    };
    let mut partner = Daemon::start_in(
        &bed,
        "ptr",
        &lacp("\"xlp0\", \"xlp1\"", "10.77.0.2/24")
            .replace("[daemon]\n", "[daemon]\nhttp = \"\"\n"),
    );
    let mut app = Daemon::start(&bed, &lacp("\"xlm0\", \"xlm1\"", "10.77.0.1/24"));
    let all = |f: &std::collections::BTreeMap<String, String>, ports: [&str; 2]| {
        ports
            .iter()
            .all(|p| f.get(*p).is_some_and(|s| s.contains("DISTRIBUTING")))
    };
    app.wait_status(15, "appliance distributing", |f| all(f, ["xlm0", "xlm1"]));
    partner.wait_status(15, "partner distributing", |f| all(f, ["xlp0", "xlp1"]));
    let before = (lacp_events(&app), lacp_events(&partner));
    assert!(
        before.0 > 0 && before.1 > 0,
        "convergence shows in the timelines: {before:?}"
    );
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let ns = bed.ns("app");
    let readers: Vec<_> = (0..8)
        .map(|i| {
            let stop = std::sync::Arc::clone(&stop);
            let ns = ns.clone();
            std::thread::spawn(move || {
                let path = if i % 2 == 0 {
                    "/api/v1/dump"
                } else {
                    "/metrics"
                };
                let mut served = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let Some(mut s) = in_ns(&ns, || TcpStream::connect(HTTP).ok()) else {
                        continue;
                    };
                    let req = format!(
                        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
                    );
                    if s.write_all(req.as_bytes()).is_ok() {
                        let mut sink = Vec::new();
                        let _ = s.read_to_end(&mut sink);
                        served += u64::from(sink.starts_with(b"HTTP/1.1 200"));
                    }
                }
                served
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(8));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let served: u64 = readers.into_iter().map(|r| r.join().expect("reader")).sum();
    assert!(served > 100, "the flood got {served} answers");
    assert_eq!(
        (lacp_events(&app), lacp_events(&partner)),
        before,
        "LACP or link state changed during {served} reads (a 3 s fast timeout ran out)"
    );
    app.wait_status(2, "still distributing", |f| all(f, ["xlm0", "xlm1"]));
    eprintln!("{served} reads in 8 s; LACP undisturbed");
}

/// The management plane never stops the dataplane: an HTTP address the box does not have yet
/// (DHCP has not bound it), a TLS file that does not load or a token file that cannot be
/// written leaves the laggs running; the dump says why and `--check` reports it; the listener
/// comes up once its address does.
#[test]
fn a_management_failure_stops_no_lagg_and_the_listener_comes_up_later() {
    let _serial = serial();
    let bed = Bed::up(1, false);
    let lagg =
        "\n[[lagg]]\nname = \"lagg0\"\nlaggports = [\"xlm0\"]\naddresses = [\"10.77.0.1/24\"]\n";
    for (daemon_keys, why) in [
        (
            "http = \"10.77.9.9:8474\"\n",
            "Cannot assign requested address",
        ),
        (
            "tls_cert = \"/nonexistent/cert.pem\"\ntls_key = \"/nonexistent/key.pem\"\n",
            "TLS",
        ),
        ("", "API token"),
    ] {
        // A token file that cannot be read or made: a directory in its place.
        let token = std::env::temp_dir().join(format!("xlagg-{}-app.token", bed.id));
        if why == "API token" {
            std::fs::create_dir_all(&token).expect("a directory at the token's path");
        }
        let config = format!("[daemon]\nlink_poll_ms = 10000\n{daemon_keys}{lagg}");
        let daemon = Daemon::start(&bed, &config);
        let names = lagg_names(&daemon);
        assert_eq!(names, ["lagg0"], "{why}: the lagg runs");
        let out = common::xlaggctl(&daemon.socket, &["-j", "lagg0"]);
        let s: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
        assert_eq!(s[0]["state"], "running", "{why}: {s}");
        let out = common::xlaggctl(&daemon.socket, &["dump"]);
        let dump: serde_json::Value = serde_json::from_slice(&out.stdout).expect("dump");
        assert_eq!(dump["http"]["state"], "retrying", "{why}: {}", dump["http"]);
        assert!(
            dump["http"]["error"]
                .as_str()
                .is_some_and(|e| e.contains(why)),
            "{why}: {}",
            dump["http"]
        );
        if daemon_keys.starts_with("http") {
            // --check says so, and fails nothing.
            let check = run(&mut bed.exec(
                "app",
                &[
                    xlaggd_bin().to_str().expect("utf-8"),
                    "--config",
                    daemon.config.to_str().expect("utf-8"),
                    "--check",
                ],
            ));
            let text = String::from_utf8_lossy(&check.stdout);
            assert!(check.status.success(), "--check: {text}");
            // Another daemon runs: its own listener is not checked. The address is.
            assert!(text.contains("configuration valid"), "{text}");
            // The address arrives: the listener comes up within its retry pause.
            bed.ip("app", &["addr", "add", "10.77.9.9/32", "dev", "lo"]);
            common::wait_until(40, "the listener on 10.77.9.9:8474", || {
                let out = common::xlaggctl(&daemon.socket, &["dump"]);
                serde_json::from_slice::<serde_json::Value>(&out.stdout)
                    .is_ok_and(|d| d["http"]["state"] == "listening")
            });
            let answer = in_ns(&bed.ns("app"), || {
                let mut s = TcpStream::connect("10.77.9.9:8474").expect("connect");
                s.write_all(b"GET /api/v1/laggs HTTP/1.1\r\nHost: 10.77.9.9:8474\r\nConnection: close\r\n\r\n")
                    .expect("send");
                let mut out = String::new();
                let _ = s.read_to_string(&mut out);
                out
            });
            assert_eq!(status_of(&answer), 200, "{answer}");
            bed.ip("app", &["addr", "del", "10.77.9.9/32", "dev", "lo"]);
        }
        drop(daemon);
        if why == "API token" {
            let _ = std::fs::remove_dir(&token);
        }
    }
}

/// `--check` with no daemon running reports an HTTP listener that cannot start, and passes.
#[test]
fn check_reports_an_http_listener_that_cannot_start() {
    let _serial = serial();
    let bed = Bed::up(1, false);
    let dir = std::env::temp_dir().join(format!("xlagg-{}-check", bed.id));
    std::fs::create_dir_all(&dir).expect("dir");
    let config = dir.join("x.toml");
    std::fs::write(
        &config,
        "[daemon]\nhttp = \"10.77.9.9:8474\"\n\n[[lagg]]\nname = \"lagg0\"\nlaggports = [\"xlm0\"]\n",
    )
    .expect("write");
    let out = run(&mut bed.exec(
        "app",
        &[
            xlaggd_bin().to_str().expect("utf-8"),
            "--config",
            config.to_str().expect("utf-8"),
            "--socket",
            dir.join("s.sock").to_str().expect("utf-8"),
            "--check",
        ],
    ));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("HTTP listener") && text.contains("Cannot assign requested address"),
        "{text}"
    );
}

/// A client that pipelines requests and never reads the answers (a tiny receive window)
/// holds at most 16 connections of the listener's 64, so another address still gets in, and
/// it loses them once its answers have waited 20 s for it.
#[test]
fn a_client_that_never_reads_cannot_lock_the_administrators_out() {
    let _serial = serial();
    let bed = Bed::up(1, false);
    let _daemon = Daemon::start(&bed, "[daemon]\nlink_poll_ms = 10000\n");
    // 40 connections from 127.0.0.1: the first 16 are served (and stall), the rest closed.
    let script = r#"
import socket, time
ss = []
for i in range(40):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
    s.connect(("127.0.0.1", 8474))
    try:
        s.sendall(b"GET /openapi.json HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" * 30)
    except OSError:
        pass
    ss.append(s)
print("held", flush=True)
time.sleep(60)
"#;
    let mut hog = bed
        .exec("app", &["python3", "-c", script])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(hog.stdout.take().expect("stdout")),
        &mut line,
    )
    .expect("read");
    assert_eq!(line.trim(), "held");
    // A plain request from 127.0.0.1, the hog's address.
    let get = || {
        in_ns(&bed.ns("app"), move || {
            let socket = std::net::TcpStream::connect_timeout(
                &HTTP.parse().expect("address"),
                Duration::from_secs(2),
            );
            socket.ok().map(|mut s| {
                let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                let _ = s.write_all(
                    b"GET /api/v1/laggs HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
                );
                let mut out = String::new();
                let _ = s.read_to_string(&mut out);
                out
            })
        })
    };
    // Another source address on the same machine gets in at once.
    bed.ip("app", &["addr", "add", "127.0.0.2/8", "dev", "lo"]);
    let other = run(&mut bed.exec(
        "app",
        &[
            "curl",
            "-s",
            "-m",
            "5",
            "--interface",
            "127.0.0.2",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "http://127.0.0.1:8474/api/v1/laggs",
        ],
    ));
    assert_eq!(
        String::from_utf8_lossy(&other.stdout),
        "200",
        "another address is served while one hogs its share: {}",
        String::from_utf8_lossy(&other.stderr)
    );
    // The hog's own address is at its cap...
    let refused = get();
    assert!(
        refused.as_deref().is_none_or(|a| !a.contains("200 OK")),
        "a 17th connection from the hog's address: {refused:?}"
    );
    // ...until its stalled answers are given up.
    common::wait_until(40, "the hog's stalled connections closed", || {
        get().is_some_and(|a| a.starts_with("HTTP/1.1 200"))
    });
    let _ = hog.kill();
    let _ = hog.wait();
}

/// `GET .../explain` over HTTP: %-escaped IPv6 addresses decode, a bad field is 422 with what
/// to give, a lagg that does not exist 404, a malformed escape 400; no token is needed (a
/// read).
#[test]
fn explain_over_http_answers_and_refuses_with_the_right_status() {
    let _serial = serial();
    let bed = Bed::up(2, false);
    let daemon = two_laggs(&bed);
    let get = |path: &str| {
        raw(
            &bed,
            format!("GET {path} HTTP/1.1\r\nHost: {HTTP}\r\nConnection: close\r\n\r\n").as_bytes(),
        )
    };
    let ok = get("/api/v1/laggs/lagg0/explain?src_ip=2001%3Adb8%3A%3A1&dst_ip=2001%3adb8%3a%3a2&proto=udp&src_port=1&dst_port=2");
    assert_eq!(status_of(&ok), 200, "{ok}");
    let body = ok.split("\r\n\r\n").nth(1).unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(body.trim()).expect("JSON");
    assert_eq!(v["data"]["member"], "xlm0", "{v}");
    assert_eq!(v["data"]["flow"]["src_ip"], "2001:db8::1", "{v}");
    let bad = get("/api/v1/laggs/lagg0/explain?src_port=80");
    assert_eq!(status_of(&bad), 422, "{bad}");
    assert!(bad.contains("ports need proto=tcp"), "{bad}");
    let none = get("/api/v1/laggs/lagg9/explain");
    assert_eq!(status_of(&none), 404, "{none}");
    let escape = get("/api/v1/laggs/lagg0/explain?src_ip=%zz");
    assert_eq!(status_of(&escape), 400, "{escape}");
    drop(daemon);
}
