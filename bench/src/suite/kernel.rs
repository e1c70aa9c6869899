//! The in-kernel sink and the kernel's own XDP redirect, as the suite runs them in the
//! partner and appliance namespaces (`xlagg-bench xdpsink`, `xlagg-bench redirect`).

use super::*;

/// What one sink port counted.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SinkPort {
    /// Interface.
    pub name: String,
    /// Every frame.
    pub frames: u64,
    /// Test frames.
    pub test: u64,
    /// Test frames below their flow's highest sequence number.
    pub reordered: u64,
    /// Test frames with a latency sample.
    pub stamped: u64,
    /// Test frames per flow id (the first `flows`).
    pub flows: Vec<u64>,
    /// Frames per latency bucket (four per octave from 64 ns).
    pub latency: Vec<u64>,
}

/// Attaches the in-kernel sink to `ifaces`, prints `ready`, and on SIGTERM prints what it
/// counted as JSON (the first `flows` flows per port). With `commands`, it also answers
/// `read` on its standard input with the counts so far (one JSON line) and ends when the
/// input closes: the RFC 2544 scenario reads it before and after each trial.
///
/// # Errors
/// When a program cannot be attached or read.
pub fn kernel_sink(ifaces: &[String], flows: u32, commands: bool) -> Result<()> {
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop))?;
    }
    let mut programs = Vec::new();
    for name in ifaces {
        let ifindex = crate::testbed::ifindex(name)?;
        programs.push((
            name.clone(),
            PortProgram::attach(name, ifindex, ProgramKind::Sink)?,
        ));
    }
    println!("ready");
    if commands {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        for line in std::io::stdin().lock().lines() {
            match line?.trim() {
                "read" => writeln!(
                    out,
                    "{}",
                    serde_json::to_string(&sink_ports(&programs, flows)?)?
                )?,
                other => bail!("xdpsink: unknown command '{other}' (read)"),
            }
            out.flush()?;
        }
    } else {
        while !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    println!("{}", serde_json::to_string(&sink_ports(&programs, flows)?)?);
    Ok(())
}

fn sink_ports(programs: &[(String, PortProgram)], flows: u32) -> Result<Vec<SinkPort>> {
    let mut ports = Vec::new();
    for (name, p) in programs {
        let s = p.sink_stats()?;
        ports.push(SinkPort {
            name: name.clone(),
            frames: s[SinkCounter::Frames as usize],
            test: s[SinkCounter::Test as usize],
            reordered: s[SinkCounter::Reordered as usize],
            stamped: s[SinkCounter::Stamped as usize],
            flows: p.sink_flows(flows)?,
            latency: p.sink_latency()?,
        });
    }
    Ok(ports)
}

/// Attaches the kernel's redirect reference on `from`, sending every frame to `to`, until
/// SIGTERM.
///
/// # Errors
/// When the program cannot be attached.
pub fn redirect(from: &str, to: &str) -> Result<()> {
    let stop = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGTERM, Arc::clone(&stop))?;
    let mut p = PortProgram::attach(from, crate::testbed::ifindex(from)?, ProgramKind::Redirect)?;
    p.set_redirect_target(crate::testbed::ifindex(to)?)?;
    // The target needs an XDP program of its own for redirected frames to be sent on veth.
    let _target = PortProgram::attach(to, crate::testbed::ifindex(to)?, ProgramKind::Drop)?;
    println!("ready");
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}
