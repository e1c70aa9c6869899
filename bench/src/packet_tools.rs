//! `send` and `sink`: a paced AF_PACKET sender of test frames and a sink that records, per
//! interface, which flows and sequence numbers arrived. Used by the namespace tests to check
//! which member carried what; one system call per frame, so for correctness, not speed.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use xlagg_sys::afpacket::{monotonic_ns, Direction, PacketSocket, ETH_P_ALL};

use crate::traffic::{self, Marker};

/// What one sink interface saw.
#[derive(Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct PortCapture {
    /// Interface name.
    pub name: String,
    /// Test frames received.
    pub frames: u64,
    /// Other frames received.
    pub other: u64,
    /// Test frames per flow id.
    pub flows: BTreeMap<u32, u64>,
    /// Test frames that did not arrive whole (cut, or bytes changed): see
    /// [`traffic::intact`].
    #[serde(default)]
    pub damaged: u64,
    /// Sequence numbers received, in arrival order.
    pub seqs: Vec<u64>,
    /// Frames the sink's own socket dropped (receive buffer full): a loss of the tool, not of
    /// the path under test.
    #[serde(default)]
    pub sink_dropped: u64,
    /// With `timestamps`: (sequence, flow, CLOCK_MONOTONIC ns at receive) of every test frame.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub arrivals: Vec<(u64, u32, u64)>,
}

/// The sink's report.
#[derive(Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct SinkReport {
    /// One entry per interface, in the order given.
    pub ports: Vec<PortCapture>,
}

pub(crate) fn ifindex(name: &str) -> Result<u32> {
    let path = format!("/sys/class/net/{name}/ifindex");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("no interface {name} here ({path})"))?;
    text.trim()
        .parse()
        .with_context(|| format!("bad ifindex in {path}"))
}

/// Sends `flows * per_flow` test frames on `iface`: round after round, each round one frame
/// per flow, sequence numbers in send order; paced to `pps` frames per second. Returns the
/// frames sent and, of those, the ones the device refused at once (ENOBUFS: its qdisc or a tc
/// program dropped it, as a lagg with no member to send on does).
///
/// # Errors
/// Other socket errors.
pub fn send(
    iface: &str,
    flows: std::ops::Range<u32>,
    per_flow: u32,
    size: usize,
    pps: u64,
    first_seq: u64,
) -> Result<(u64, u64)> {
    let socket = PacketSocket::bind(ifindex(iface)?, ETH_P_ALL)
        .with_context(|| format!("AF_PACKET on {iface}"))?;
    let mut buf = [0u8; traffic::MAX_JUMBO_FRAME];
    let started = Instant::now();
    let mut seq = first_seq;
    let mut sent = 0u64;
    let mut refused = 0u64;
    for _ in 0..per_flow {
        for flow in flows.clone() {
            let n = traffic::build(
                &mut buf,
                size,
                Marker {
                    flow,
                    seq,
                    stamp_ns: 0,
                },
            );
            match socket.send(&buf[..n]) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => refused += 1,
                Err(e) => return Err(e).with_context(|| format!("sending on {iface}")),
            }
            seq += 1;
            sent += 1;
            if let Some(ns) = sent.saturating_mul(1_000_000_000).checked_div(pps) {
                if let Some(wait) = Duration::from_nanos(ns).checked_sub(started.elapsed()) {
                    std::thread::sleep(wait);
                }
            }
        }
    }
    Ok((sent, refused))
}

/// Sends `frames` in turn on `iface` as fast as the socket takes them, for `duration`: a
/// flood of hostile frames. Returns the frames sent and their rate. A frame the device
/// refused (ENOBUFS) is not counted and the flood goes on.
///
/// # Errors
/// Other socket errors, or no frame to send.
pub fn flood(iface: &str, frames: &[Vec<u8>], duration: Duration) -> Result<(u64, f64)> {
    if frames.is_empty() {
        bail!("nothing to send: give --frame HEX at least once");
    }
    let socket = PacketSocket::bind(ifindex(iface)?, ETH_P_ALL)
        .with_context(|| format!("AF_PACKET on {iface}"))?;
    let started = Instant::now();
    let mut sent = 0u64;
    'run: while started.elapsed() < duration {
        for frame in frames {
            match socket.send(frame) {
                Ok(()) => sent += 1,
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {}
                Err(e) => return Err(e).with_context(|| format!("flooding {iface}")),
            }
            if sent.is_multiple_of(4096) && started.elapsed() >= duration {
                break 'run;
            }
        }
    }
    Ok((sent, sent as f64 / started.elapsed().as_secs_f64()))
}

/// Captures test frames on every interface of `ifaces` until `stop` is set or `max` passes,
/// then returns what each saw. Prints `ready` on stderr once every socket is bound.
///
/// # Errors
/// Socket errors.
pub fn sink(
    ifaces: &[String],
    max: Duration,
    stop: Arc<AtomicBool>,
    timestamps: bool,
) -> Result<SinkReport> {
    if ifaces.is_empty() {
        bail!("sink: no interface given");
    }
    let mut sockets = Vec::new();
    for name in ifaces {
        let socket = PacketSocket::bind(ifindex(name)?, ETH_P_ALL)
            .with_context(|| format!("AF_PACKET on {name}"))?;
        // Room for a second of test traffic, so a reader scheduled away loses nothing.
        socket
            .set_receive_buffer(32 << 20)
            .with_context(|| format!("receive buffer on {name}"))?;
        let _ = socket.take_drops();
        sockets.push((name.clone(), socket));
    }
    eprintln!("ready");
    let _ = std::io::stderr().flush();
    let deadline = Instant::now() + max;
    let handles: Vec<_> = sockets
        .into_iter()
        .map(|(name, socket)| {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || -> Result<PortCapture> {
                let mut cap = PortCapture {
                    name,
                    ..Default::default()
                };
                let mut buf = [0u8; 16384];
                while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                    let Some((n, dir)) = socket.recv(&mut buf, Duration::from_millis(50))? else {
                        continue;
                    };
                    if dir == Direction::Outgoing {
                        continue;
                    }
                    match traffic::parse(&buf[..n]) {
                        Some(m) => {
                            if timestamps {
                                cap.arrivals.push((m.seq, m.flow, monotonic_ns()));
                            }
                            cap.frames += 1;
                            cap.damaged += u64::from(!traffic::intact(&buf[..n], m));
                            *cap.flows.entry(m.flow).or_default() += 1;
                            cap.seqs.push(m.seq);
                        }
                        None => cap.other += 1,
                    }
                }
                cap.sink_dropped = socket.take_drops()?;
                Ok(cap)
            })
        })
        .collect();
    let mut report = SinkReport::default();
    for h in handles {
        report.ports.push(
            h.join()
                .map_err(|_| anyhow::anyhow!("sink thread panicked"))??,
        );
    }
    Ok(report)
}

/// `xlagg-bench sink --timestamps` on `ifaces` of a test bed's partner namespace, as a child
/// that reports when stopped ([`TimestampSink::finish`]); killed if dropped unfinished.
#[derive(Debug)]
pub struct TimestampSink(Option<std::process::Child>);

impl TimestampSink {
    /// Starts it and waits until it listens.
    ///
    /// # Errors
    /// It could not start.
    pub fn start(bed: &crate::testbed::Bed, ifaces: &[String]) -> Result<TimestampSink> {
        use std::io::BufRead as _;
        let exe = std::env::current_exe()?;
        let mut cmd = bed.exec("ptr", &exe);
        cmd.args(["sink", "--timestamps", "--ifaces", &ifaces.join(",")])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().context("starting the sink")?;
        let err = child.stderr.take().context("stderr")?;
        // Read on after "ready": a pipe closed under a child that writes again kills it
        // (SIGPIPE).
        let mut lines = std::io::BufReader::new(err).lines();
        let ready = lines.next();
        std::thread::spawn(move || for _ in lines.by_ref() {});
        if !matches!(ready, Some(Ok(ref l)) if l.contains("ready")) {
            let _ = child.kill();
            let _ = child.wait();
            bail!("the sink did not start: {ready:?}");
        }
        Ok(TimestampSink(Some(child)))
    }

    /// Stops it (SIGTERM) and returns what it recorded.
    ///
    /// # Errors
    /// It printed no report.
    pub fn finish(mut self) -> Result<SinkReport> {
        let child = self.0.take().context("the sink is gone")?;
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let out = child.wait_with_output()?;
        serde_json::from_slice(&out.stdout).context("sink report")
    }
}

impl Drop for TimestampSink {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
