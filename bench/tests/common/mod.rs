//! Helpers for the namespace tests: the test bed, a running xlaggd, a sink, a sender.
//! Every helper cleans up on drop, so a failing assertion leaves nothing behind.
#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use xlagg_bench::packet_tools::SinkReport;

pub mod browser;
pub mod netns;
pub mod ovs;

/// Tests in a file run one at a time: they share two cores, and a loaded machine would make
/// frame-exact checks flaky.
static SERIAL: Mutex<()> = Mutex::new(());

pub fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Fails (never skips) when the tests cannot run here.
pub fn require_root() {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or("?");
    assert_eq!(
        uid, "0",
        "namespace tests need root (network namespaces, veth, XDP, AF_XDP); run them as root, as CI does"
    );
}

pub fn bench_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_xlagg-bench"))
}

pub fn xlaggd_bin() -> PathBuf {
    let p = bench_bin().with_file_name("xlaggd");
    assert!(
        p.exists(),
        "{} is missing: build the whole workspace first (cargo build --workspace)",
        p.display()
    );
    p
}

pub fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    out
}

pub fn run_ok(cmd: &mut Command) -> String {
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A test bed (removed on drop) with the helpers the tests need.
pub struct Bed {
    inner: xlagg_bench::testbed::Bed,
    pub id: String,
    pub members: usize,
}

static NEXT: AtomicU32 = AtomicU32::new(0);

impl Bed {
    pub fn up(members: usize, bridge: bool) -> Bed {
        Self::up_with_queues(members, bridge, 1)
    }

    pub fn up_with_queues(members: usize, bridge: bool, queues: usize) -> Bed {
        require_root();
        let id = format!(
            "t{}x{}",
            std::process::id() % 100_000,
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let inner = xlagg_bench::testbed::Bed::up_with_queues(
            &repo().join("scripts/testbed.sh"),
            &id,
            members,
            bridge,
            queues,
        )
        .unwrap_or_else(|e| panic!("{e:#}"));
        Bed { inner, id, members }
    }

    pub fn exec(&self, role: &str, args: &[&str]) -> Command {
        let (program, rest) = args.split_first().expect("a program to run");
        let mut cmd = self.inner.exec(role, std::path::Path::new(program));
        cmd.args(rest);
        cmd
    }

    pub fn ip(&self, role: &str, args: &[&str]) -> String {
        self.inner
            .ip(role, args)
            .unwrap_or_else(|e| panic!("{e:#}"))
    }

    pub fn ns(&self, role: &str) -> String {
        self.inner.ns(role)
    }

    pub fn member_names(&self) -> Vec<String> {
        (0..self.members).map(|i| format!("xlm{i}")).collect()
    }

    pub fn partner_names(&self) -> Vec<String> {
        (0..self.members).map(|i| format!("xlp{i}")).collect()
    }

    /// A config for lagg0 over every member, in forward mode through xld0 unless `host`.
    pub fn config(&self, proto: &str, extra: &str, host: bool) -> String {
        let ports: Vec<String> = self
            .member_names()
            .iter()
            .map(|m| format!("\"{m}\""))
            .collect();
        let upper = if host {
            String::new()
        } else {
            "upper = \"forward\"\nforward_port = \"xld0\"\n".to_string()
        };
        format!(
            "[daemon]\nlink_poll_ms = 10000\n\n[[lagg]]\nname = \"lagg0\"\nlaggproto = \"{proto}\"\nlaggports = [{}]\n{upper}{extra}\n",
            ports.join(", ")
        )
    }

    /// Sends test frames from the source namespace into the forward port.
    pub fn send(&self, flows: u32, per_flow: u32, first_seq: u64) {
        self.send_on("src", "xls0", flows, per_flow, first_seq);
    }

    /// `xlagg-bench send` from the source namespace into the forward port: `flows * per_flow`
    /// frames of wire size `size`, paced to `pps` frames per second.
    pub fn sender(
        &self,
        flows: u32,
        per_flow: u32,
        first_seq: u64,
        size: u32,
        pps: u32,
    ) -> Command {
        let bench = bench_bin();
        self.exec(
            "src",
            &[
                bench.to_str().expect("utf-8 path"),
                "send",
                "--iface",
                "xls0",
                "--flows",
                &flows.to_string(),
                "--per-flow",
                &per_flow.to_string(),
                "--first-seq",
                &first_seq.to_string(),
                "--size",
                &size.to_string(),
                "--pps",
                &pps.to_string(),
            ],
        )
    }

    /// Starts sending test frames from the source namespace into the forward port, paced to
    /// `pps` frames per second, in the background.
    pub fn start_sender(&self, flows: u32, per_flow: u32, first_seq: u64, pps: u32) -> Child {
        self.sender(flows, per_flow, first_seq, 64, pps)
            .stdout(Stdio::null())
            .spawn()
            .expect("start the sender")
    }

    /// Sends test frames on `iface` of namespace `role`.
    pub fn send_on(&self, role: &str, iface: &str, flows: u32, per_flow: u32, first_seq: u64) {
        let bench = bench_bin();
        run_ok(&mut self.exec(
            role,
            &[
                bench.to_str().expect("utf-8 path"),
                "send",
                "--iface",
                iface,
                "--flows",
                &flows.to_string(),
                "--per-flow",
                &per_flow.to_string(),
                "--first-seq",
                &first_seq.to_string(),
            ],
        ));
    }
}

fn terminate(child: &mut Child) {
    xlagg_sys::process::stop(child, Duration::from_secs(10));
}

/// Waits for a line containing `word` on a child's pipe; panics with what was read otherwise.
fn wait_for_line(
    pipe: impl std::io::Read + Send + 'static,
    word: &'static str,
    what: &str,
) -> std::sync::mpsc::Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(line) if line.contains(word) => return rx,
            Ok(line) => seen.push(line),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    panic!(
        "{what} never printed '{word}'; it printed:\n{}",
        seen.join("\n")
    );
}

/// xlaggd running in the appliance namespace; stopped with SIGTERM on drop.
pub struct Daemon {
    child: Option<Child>,
    pub config: PathBuf,
    /// Its management socket (for xlaggctl --socket).
    pub socket: PathBuf,
    stdout: Option<std::sync::mpsc::Receiver<String>>,
}

impl Daemon {
    /// `xlaggctl dump`: configuration, state, counters and the event timeline.
    pub fn dump(&self) -> serde_json::Value {
        serde_json::from_slice(&xlaggctl(&self.socket, &["dump"]).stdout).expect("dump is JSON")
    }

    /// The timeline's events of `kind` (every kind with `None`), as (port, text).
    pub fn events(&self, kind: Option<&str>) -> Vec<(String, String)> {
        self.dump()["events"]
            .as_array()
            .expect("events")
            .iter()
            .filter(|e| kind.is_none_or(|k| e["kind"] == k))
            .map(|e| {
                let text = |k: &str| e[k].as_str().unwrap_or_default().to_string();
                (text("port"), text("text"))
            })
            .collect()
    }

    /// Whether the timeline has an event whose text starts with `prefix`.
    pub fn told(&self, prefix: &str) -> bool {
        self.events(None).iter().any(|(_, t)| t.starts_with(prefix))
    }

    pub fn start(bed: &Bed, config: &str) -> Daemon {
        Self::start_in(bed, "app", config)
    }

    /// xlaggd with extra command-line arguments.
    pub fn start_with_args(bed: &Bed, config: &str, args: &[&str]) -> Daemon {
        Self::start_full(bed, "app", config, args)
    }

    /// xlaggd in namespace `role` (`app`, or `ptr` for an xlagg partner).
    pub fn start_in(bed: &Bed, role: &str, config: &str) -> Daemon {
        Self::start_full(bed, role, config, &[])
    }

    fn start_full(bed: &Bed, role: &str, config: &str, extra: &[&str]) -> Daemon {
        let path = std::env::temp_dir().join(format!("xlagg-{}-{role}.toml", bed.id));
        std::fs::write(&path, config).expect("write config");
        let socket = path.with_extension("sock");
        let xlaggd = xlaggd_bin();
        let token = path.with_extension("token");
        let mut args = vec![
            xlaggd.to_str().expect("utf-8"),
            "--config",
            path.to_str().expect("utf-8"),
            "--socket",
            socket.to_str().expect("utf-8"),
            "--token-file",
            token.to_str().expect("utf-8"),
        ];
        args.extend(extra);
        let mut child = bed
            .exec(role, &args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn xlaggd");
        let stdout = child.stdout.take().expect("stdout");
        let mut daemon = Daemon {
            child: Some(child),
            config: path,
            socket,
            stdout: None,
        };
        daemon.stdout = Some(wait_for_line(stdout, "ready", "xlaggd"));
        daemon
    }

    /// Reads status tables (printed every `status_interval_ms`) until `done` holds for the
    /// latest flags of every port, e.g. `{"xlm0": "<ACTIVE,COLLECTING,DISTRIBUTING>"}`.
    /// Panics with the last table after `secs`.
    pub fn wait_status(
        &mut self,
        secs: u64,
        what: &str,
        done: impl Fn(&std::collections::BTreeMap<String, String>) -> bool,
    ) {
        let rx = self.stdout.as_ref().expect("stdout");
        let deadline = Instant::now() + Duration::from_secs(secs);
        let mut flags = std::collections::BTreeMap::new();
        let mut last = Vec::new();
        while Instant::now() < deadline {
            let Ok(line) = rx.recv_timeout(Duration::from_millis(100)) else {
                continue;
            };
            if line.starts_with("lagg") {
                last.clear();
            }
            last.push(line.clone());
            let mut words = line.split_whitespace();
            if let (Some(port), Some(f)) = (words.next(), words.next()) {
                if f.starts_with('<') && port.starts_with("xl") {
                    flags.insert(port.to_string(), f.to_string());
                    if done(&flags) {
                        return;
                    }
                }
            }
        }
        panic!(
            "timed out after {secs} s waiting for {what}; last status:\n{}",
            last.join("\n")
        );
    }

    /// SIGKILL: no chance to clean up.
    pub fn kill(mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The daemon's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).expect("running")
    }

    /// Open file descriptors of the daemon.
    pub fn open_fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    /// SIGTERM, wait, and return what it printed after `ready` (the final status table).
    pub fn stop(mut self) -> String {
        if let Some(mut child) = self.child.take() {
            terminate(&mut child);
        }
        let mut out = String::new();
        if let Some(rx) = self.stdout.take() {
            while let Ok(line) = rx.recv_timeout(Duration::from_secs(2)) {
                out.push_str(&line);
                out.push('\n');
            }
        }
        out
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            terminate(&mut child);
        }
        let _ = std::fs::remove_file(&self.config);
        let _ = std::fs::remove_file(store_backup(&self.config));
        let _ = std::fs::remove_file(self.config.with_extension("token"));
    }
}

/// The recording sink on every partner port.
pub struct Sink {
    child: Option<Child>,
}

impl Sink {
    pub fn start(bed: &Bed) -> Sink {
        let ifaces = bed.partner_names().join(",");
        let mut child = bed
            .exec(
                "ptr",
                &[
                    bench_bin().to_str().expect("utf-8"),
                    "sink",
                    "--ifaces",
                    &ifaces,
                    "--max-ms",
                    "60000",
                ],
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn sink");
        let stderr = child.stderr.take().expect("stderr");
        let _lines = wait_for_line(stderr, "ready", "xlagg-bench sink");
        Sink { child: Some(child) }
    }

    /// Lets frames in flight land, stops the sink, returns its report.
    pub fn finish(mut self) -> SinkReport {
        std::thread::sleep(Duration::from_millis(300));
        let child = self.child.take().expect("running");
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let out = child.wait_with_output().expect("sink output");
        assert!(
            out.status.success(),
            "sink failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "sink printed no report ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            terminate(&mut child);
        }
    }
}

/// Waits until `cond` holds, polling; panics with `what` after `secs`.
pub fn wait_until(secs: u64, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if cond() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("timed out after {secs} s waiting for {what}");
}

/// Which partner port index carried sequence number `seq`, for every received frame.
pub fn carriers(report: &SinkReport) -> std::collections::BTreeMap<u64, Vec<usize>> {
    let mut map: std::collections::BTreeMap<u64, Vec<usize>> = Default::default();
    for (i, port) in report.ports.iter().enumerate() {
        for &seq in &port.seqs {
            map.entry(seq).or_default().push(i);
        }
    }
    map
}

/// The backup the daemon keeps when it rewrites its configuration file.
fn store_backup(config: &std::path::Path) -> PathBuf {
    let mut name = config.as_os_str().to_owned();
    name.push(".bak");
    PathBuf::from(name)
}

/// Runs xlaggctl against a daemon's management socket.
pub fn xlaggctl(socket: &std::path::Path, args: &[&str]) -> Output {
    let bin = xlaggd_bin().with_file_name("xlaggctl");
    assert!(
        bin.exists(),
        "{} is missing: build the whole workspace first (cargo build --workspace)",
        bin.display()
    );
    run(Command::new(bin).arg("--socket").arg(socket).args(args))
}

/// The benchmark's drop-everything XDP program on an interface of namespace `role` (a link
/// that stays up but passes nothing, or someone else's program); removed on drop.
pub struct DropProgram(Option<Child>);

impl DropProgram {
    pub fn start(bed: &Bed, role: &str, iface: &str) -> DropProgram {
        let mut child = bed
            .exec(
                role,
                &[
                    bench_bin().to_str().expect("utf-8"),
                    "drop",
                    "--ifaces",
                    iface,
                ],
            )
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the drop program");
        let stdout = child.stdout.take().expect("stdout");
        let me = DropProgram(Some(child));
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).expect("read");
        assert!(
            line.contains("ready"),
            "the drop program did not start: {line:?}"
        );
        me
    }

    /// Detaches it now.
    pub fn stop(mut self) {
        if let Some(mut c) = self.0.take() {
            terminate(&mut c);
        }
    }
}

impl Drop for DropProgram {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            terminate(&mut c);
        }
    }
}
