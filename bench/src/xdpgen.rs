//! `generate`: the packet generators. [`generate_xdp`] runs an XDP program in the kernel's
//! live-frames mode (flat out, faster than anything a forwarder on veth carries);
//! [`generate_afxdp`] is an AF_XDP transmit-only generator whose frames are written once into
//! the UMEM and recycled from the completion ring, paced per batch when asked, numbering and
//! stamping each frame as it goes; jumbo frames go out as multi-buffer chains (the kernel's
//! live-frames mode refuses frames larger than a page, so this is the generator for them).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde::Serialize;
use xlagg_dataplane::afxdp::{self, BindMode, RingSizes, Umem, XskSocket};

use crate::traffic::{self, Marker};

/// What the generator did.
#[derive(Debug, Serialize)]
pub struct GenReport {
    /// The generator that ran ([`Engine::Xdp`] or [`Engine::Afxdp`]; never `auto`).
    pub generator: Engine,
    /// Frames the kernel reported transmitted (completions).
    pub sent: u64,
    /// Seconds it ran.
    pub seconds: f64,
    /// Frames per second, from the two numbers above.
    pub pps: f64,
}

/// The AF_XDP generator with every option. Paced (`pps` > 0) it sends in batches as they fall
/// due and stamps every frame with its send time (`CLOCK_MONOTONIC`, as the kernel's
/// `bpf_ktime_get_ns`), so the in-kernel sink can measure latency at a chosen load.
///
/// # Errors
/// Socket errors.
pub fn generate_afxdp(
    ifindex: u32,
    spec: &GenSpec,
    duration: Duration,
    stop: Arc<AtomicBool>,
) -> Result<GenReport> {
    const BATCH: u32 = 64;
    let frame_size = afxdp::FRAME_SIZE as usize;
    // A frame larger than a UMEM frame goes out as a chain of `per_packet` descriptors
    // (multi-buffer, `XDP_USE_SG`), in consecutive UMEM frames.
    let largest = if spec.imix {
        traffic::MAX_FRAME
    } else {
        spec.size
            .clamp(traffic::MIN_FRAME, traffic::MAX_JUMBO_FRAME + 4)
    };
    let per_packet = (largest - traffic::FCS).div_ceil(frame_size).max(1) as u32;
    // One template per packet, a whole number of rounds over the flows, so that sending the
    // templates in order gives every flow the same share.
    let flows = spec.flows.clamp(1, 65_536);
    let packets = if flows >= 4096 {
        flows
    } else {
        (4096 / flows) * flows
    };
    let frames = packets * per_packet;
    let mut umem = Umem::new(frames).context("UMEM")?;
    let sizes = RingSizes {
        fill: 64,
        completion: 4096,
        rx: 64,
        tx: 2048,
    };
    let mut socket = XskSocket::open(
        &umem,
        None,
        ifindex,
        0,
        sizes,
        BindMode::Copy,
        per_packet > 1,
    )
    .context("AF_XDP socket")?;
    // Frames in send order: each packet's descriptors next to each other, and since the
    // kernel completes in order, they come back that way.
    let mut free: std::collections::VecDeque<xlagg_dataplane::afxdp::Frame> =
        std::collections::VecDeque::with_capacity(frames as usize);
    let mut buf = vec![0u8; traffic::MAX_JUMBO_FRAME + 4];
    // Frame i always holds its piece of its template, so a completed frame is ready to go
    // again as it is; templates go out in order (first in, first out).
    let mut lengths = Vec::with_capacity(frames as usize);
    let mut all = umem.take_frames().into_iter();
    for i in 0..packets {
        let size = if spec.imix {
            traffic::imix_size(u64::from(i))
        } else {
            spec.size
        };
        let len = traffic::build_shaped(
            &mut buf,
            size,
            Marker {
                flow: i % flows,
                seq: u64::from(i),
                stamp_ns: 0,
            },
            spec.shape,
        );
        let mut pieces = buf[..len].chunks(frame_size);
        for k in 0..per_packet {
            let Some(frame) = all.next() else {
                anyhow::bail!("the UMEM has fewer frames than its packets need");
            };
            let piece = pieces.next().unwrap_or(&[]);
            let frame = frame.with_len(piece.len() as u32);
            umem.bytes_mut(&frame).copy_from_slice(piece);
            let more = k + 1 < per_packet;
            lengths.push((piece.len() as u32, more));
            free.push_back(frame.continued(more));
        }
    }
    let stamp_at = spec.shape.payload() + 14;
    let seq_at = spec.shape.payload() + 6;
    let started = Instant::now();
    let mut completed = 0u64;
    let mut submitted = 0u64;
    while !stop.load(Ordering::Relaxed) && started.elapsed() < duration {
        let done = socket.completion_available(4096);
        for i in 0..done {
            if let Some(frame) = socket.completion_take(i, &umem) {
                let (len, more) = lengths
                    .get(frame.index() as usize)
                    .copied()
                    .unwrap_or((0, false));
                free.push_back(frame.with_len(len).continued(more));
            }
        }
        socket.completion_release(done);
        completed += u64::from(done);
        let mut want = BATCH.min(free.len() as u32 / per_packet);
        if spec.pps > 0 {
            let due = (started.elapsed().as_secs_f64() * spec.pps as f64) as u64;
            want = want.min(due.saturating_sub(submitted) as u32);
            if want == 0 {
                std::hint::spin_loop();
                continue;
            }
        }
        let n = socket.tx_free(want * per_packet) / per_packet;
        let now = xlagg_sys::afpacket::monotonic_ns() as u32;
        // `n * per_packet <= free.len()`: every pop yields. Each packet gets its send order as
        // sequence number (so the sink can tell reordering) and, paced, its send time, in its
        // first descriptor.
        let mut slot = 0;
        for p in 0..n {
            let seq = submitted + u64::from(p);
            for k in 0..per_packet {
                let Some(frame) = free.pop_front() else { break };
                if k == 0 {
                    let bytes = umem.bytes_mut(&frame);
                    if let Some(at) = bytes.get_mut(seq_at..seq_at + 8) {
                        at.copy_from_slice(&seq.to_be_bytes());
                    }
                    if spec.pps > 0 {
                        if let Some(at) = bytes.get_mut(stamp_at..stamp_at + 4) {
                            at.copy_from_slice(&now.to_be_bytes());
                        }
                    }
                }
                socket.tx_put(slot, frame);
                slot += 1;
            }
        }
        socket.tx_submit(slot);
        submitted += u64::from(n);
        let _ = socket.kick_tx();
    }
    let sent = completed / u64::from(per_packet);
    let seconds = started.elapsed().as_secs_f64();
    Ok(GenReport {
        generator: Engine::Afxdp,
        sent,
        seconds,
        pps: sent as f64 / seconds,
    })
}

/// Which generator `generate` uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    /// The in-kernel generator where the kernel runs live-frames test runs, else the AF_XDP
    /// generator, with a one-line notice (see [`live_frames`]).
    Auto,
    /// An XDP program run in the kernel's live-frames test mode, transmitting with `XDP_TX`:
    /// no skb and no system call per frame, so it outruns any AF_XDP forwarder on veth.
    Xdp,
    /// An AF_XDP socket in copy mode: the path a userspace generator on veth has.
    Afxdp,
}

impl Engine {
    /// As the command line and the results name it.
    pub fn name(self) -> &'static str {
        match self {
            Engine::Auto => "auto",
            Engine::Xdp => "xdp",
            Engine::Afxdp => "afxdp",
        }
    }

    /// The generator that runs for this choice: `auto` becomes `xdp` where the kernel runs
    /// live-frames test runs (probed once per process) and `afxdp` elsewhere, saying so once
    /// on standard error.
    pub fn resolve(self) -> Engine {
        match self {
            Engine::Auto => match live_frames() {
                Ok(()) => Engine::Xdp,
                Err(why) => {
                    static SAID: std::sync::Once = std::sync::Once::new();
                    SAID.call_once(|| {
                        eprintln!("generator: {why}; using the AF_XDP generator instead");
                    });
                    Engine::Afxdp
                }
            },
            chosen => chosen,
        }
    }
}

/// Whether this kernel runs XDP programs in live-frames mode (`BPF_F_TEST_XDP_LIVE_FRAMES`),
/// which the in-kernel generator needs; some kernel builds refuse it (EPERM) while plain
/// test runs work. Probed once per process by one live run of the generator program on the
/// loopback device (whose frames go nowhere); `Err` says why not.
pub fn live_frames() -> Result<(), String> {
    static PROBED: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    PROBED
        .get_or_init(|| {
            use xlagg_dataplane::xdp::{PortProgram, ProgramKind};
            let program = PortProgram::load("generator probe", ProgramKind::Generator)
                .map_err(|e| format!("the in-kernel generator does not load: {e}"))?;
            let mut buf = vec![0u8; 2048];
            let marker = Marker {
                flow: 0,
                seq: 0,
                stamp_ns: 0,
            };
            let n = traffic::build_shaped(
                &mut buf,
                traffic::MIN_FRAME,
                marker,
                traffic::Shape::default(),
            );
            // The loopback device is ifindex 1 in every network namespace.
            program.run_live(&buf[..n], 1, 1).map_err(|e| e.to_string())
        })
        .clone()
}

/// What the in-kernel generator sends.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct GenSpec {
    /// Flows.
    pub flows: u32,
    /// Wire size with FCS; ignored with `imix`.
    pub size: usize,
    /// Simple IMIX (7:4:1 of 64, 594, 1518 bytes) instead of one size.
    pub imix: bool,
    /// Header layout.
    pub shape: traffic::Shape,
    /// Frames per second; 0: as fast as the kernel takes them.
    pub pps: u64,
}

/// Generates with the in-kernel live-frames program out of `ifindex` (whose veth peer must
/// have an XDP program), for `duration`: one size or IMIX, IPv4/IPv6 with an optional VLAN
/// tag, flat out or paced in bursts. Every frame carries a flow, a sequence number and its
/// send time (stamped in the kernel).
///
/// # Errors
/// When the program cannot be loaded or the kernel refuses the live run.
pub fn generate_xdp(
    ifindex: u32,
    spec: &GenSpec,
    duration: Duration,
    stop: Arc<AtomicBool>,
) -> Result<GenReport> {
    use xlagg_dataplane::xdp::{PortProgram, ProgramKind};
    let mut program = PortProgram::load("generator", ProgramKind::Generator)
        .context("loading the generator program")?;
    program.set_generator(spec.flows.max(1), spec.shape.shift() as u32)?;
    let marker = Marker {
        flow: 0,
        seq: 0,
        stamp_ns: 0,
    };
    // One template per size; IMIX runs each size in proportion to its weight (each live run
    // sets up its own page pool, so runs must stay long for the generator to keep its rate).
    let sizes: Vec<(usize, u32)> = if spec.imix {
        traffic::IMIX.to_vec()
    } else {
        vec![(spec.size, 1)]
    };
    let templates: Vec<(Vec<u8>, u32)> = sizes
        .iter()
        .map(|(s, weight)| {
            let mut buf = vec![0u8; 2048];
            let n = traffic::build_shaped(&mut buf, *s, marker, spec.shape);
            buf.truncate(n);
            (buf, *weight)
        })
        .collect();
    // Frames per live run and weight unit: large when flat out; when paced, about a
    // millisecond's worth.
    let unit: u32 = if spec.pps == 0 {
        if spec.imix {
            8192
        } else {
            50_000
        }
    } else {
        (spec.pps / 1000).clamp(16, 4096) as u32
    };
    let started = Instant::now();
    let mut sent_so_far = 0u64;
    let mut i = 0usize;
    while !stop.load(Ordering::Relaxed) && started.elapsed() < duration {
        let (frame, weight) = &templates[i % templates.len()];
        let chunk = unit * weight;
        if let Err(e) = program.run_live(frame, ifindex, chunk) {
            // The stop signal interrupts the run in the kernel (EINTR): that is the end.
            if stop.load(Ordering::Relaxed) {
                break;
            }
            return Err(e.into());
        }
        i += 1;
        sent_so_far += u64::from(chunk);
        if spec.pps > 0 {
            let due = Duration::from_secs_f64(sent_so_far as f64 / spec.pps as f64);
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                std::thread::sleep(wait);
            }
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let sent = program.generated()?;
    Ok(GenReport {
        generator: Engine::Xdp,
        sent,
        seconds,
        pps: sent as f64 / seconds,
    })
}
