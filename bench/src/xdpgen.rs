//! `generate`: an AF_XDP transmit-only packet generator. Frames of the chosen size and flows
//! are written once into the UMEM; the loop only recycles completed descriptors onto the tx
//! ring, one `sendto` per batch, so the generator costs little more than the kernel's copy.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde::Serialize;
use xlagg_dataplane::afxdp::{BindMode, Desc, RingSizes, Umem, XskSocket};

use crate::traffic::{self, Marker};

/// What the generator did.
#[derive(Debug, Serialize)]
pub struct GenReport {
    /// Frames the kernel reported transmitted (completions).
    pub sent: u64,
    /// Seconds it ran.
    pub seconds: f64,
    /// Frames per second, from the two numbers above.
    pub pps: f64,
}

/// Sends `size`-byte frames spread over `flows` flows on `ifindex` for `duration` (or until
/// `stop`), as fast as the kernel takes them.
///
/// # Errors
/// Socket errors.
pub fn generate(
    ifindex: u32,
    flows: u32,
    size: usize,
    duration: Duration,
    stop: Arc<AtomicBool>,
) -> Result<GenReport> {
    const FRAMES: u32 = 4096;
    const BATCH: u32 = 64;
    let mut umem = Umem::new(FRAMES).context("UMEM")?;
    let sizes = RingSizes {
        fill: 64,
        completion: 4096,
        rx: 64,
        tx: 2048,
    };
    let mut socket =
        XskSocket::open(&umem, None, ifindex, 0, sizes, BindMode::Copy).context("AF_XDP socket")?;
    let mut free: Vec<Desc> = Vec::with_capacity(FRAMES as usize);
    let mut buf = [0u8; 2048];
    for i in 0..FRAMES {
        let len = traffic::build(
            &mut buf,
            size,
            Marker {
                flow: i % flows.max(1),
                seq: u64::from(i),
                stamp_ns: 0,
            },
        );
        let addr = Umem::frame_addr(i);
        umem.data_mut(addr, len as u32).copy_from_slice(&buf[..len]);
        free.push(Desc {
            addr,
            len: len as u32,
            options: 0,
        });
    }
    // Frame i always holds the same template, so a completed address maps back to its desc.
    let templates = free.clone();
    let started = Instant::now();
    let mut sent = 0u64;
    while !stop.load(Ordering::Relaxed) && started.elapsed() < duration {
        let done = socket.completion.available(FRAMES);
        for i in 0..done {
            let addr = socket.completion.read(i);
            let index = (addr / u64::from(xlagg_dataplane::afxdp::FRAME_SIZE)) as usize;
            if let Some(desc) = templates.get(index) {
                free.push(*desc);
            }
        }
        socket.completion.release(done);
        sent += u64::from(done);
        let n = socket.tx.free(BATCH.min(free.len() as u32));
        // `n <= free.len()`: every pop yields.
        for (i, desc) in (0..n).zip(std::iter::from_fn(|| free.pop())) {
            socket.tx.write(i, desc);
        }
        socket.tx.submit(n);
        let _ = socket.kick_tx();
    }
    let seconds = started.elapsed().as_secs_f64();
    Ok(GenReport {
        sent,
        seconds,
        pps: sent as f64 / seconds,
    })
}

/// Which generator `generate` uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    /// An XDP program run in the kernel's live-frames test mode, transmitting with `XDP_TX`:
    /// no skb and no system call per frame, so it outruns any AF_XDP forwarder on veth.
    Xdp,
    /// An AF_XDP socket in copy mode: the path a userspace generator on veth has.
    Afxdp,
}

/// Generates with the in-kernel live-frames program: `size`-byte frames over `flows` flows,
/// out of `ifindex` (whose veth peer must have an XDP program), for `duration`.
///
/// # Errors
/// When the program cannot be loaded or the kernel refuses the live run.
pub fn generate_xdp(
    ifindex: u32,
    flows: u32,
    size: usize,
    duration: Duration,
    stop: Arc<AtomicBool>,
) -> Result<GenReport> {
    use xlagg_dataplane::xdp::{PortProgram, ProgramKind};
    let mut program = PortProgram::load("generator", ProgramKind::Generator)
        .context("loading the generator program")?;
    program.set_generator_flows(flows.max(1))?;
    let mut buf = [0u8; 2048];
    let len = traffic::build(
        &mut buf,
        size,
        Marker {
            flow: 0,
            seq: 0,
            stamp_ns: 0,
        },
    );
    let started = Instant::now();
    while !stop.load(Ordering::Relaxed) && started.elapsed() < duration {
        program.run_live(&buf[..len], ifindex, 50_000)?;
    }
    let seconds = started.elapsed().as_secs_f64();
    let sent = program.generated()?;
    Ok(GenReport {
        sent,
        seconds,
        pps: sent as f64 / seconds,
    })
}
