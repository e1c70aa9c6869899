//! `xlagg-bench`: traffic tools and benchmarks for xlagg.
//!
//! - `send` / `sink`: paced AF_PACKET sender and per-port recording sink (namespace tests);
//! - `forward`: forward-mode throughput through a lagg against the same-run ceiling (the same
//!   AF_XDP path with the distribution decision replaced by one fixed port);
//! - `generate`, `serve`, `count`: the pieces `forward` runs inside the test-bed namespaces.
#![forbid(unsafe_code)]

use std::path::PathBuf;

use xlagg_bench::{convergence, forward, packet_tools, suite, switchover, traffic, xdpgen};

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(version, about = "xlagg traffic tools and benchmarks")]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Send test frames (AF_PACKET, paced) on one interface.
    Send {
        /// Interface to send on.
        #[arg(long)]
        iface: String,
        /// Number of flows.
        #[arg(long, default_value_t = 1)]
        flows: u32,
        /// Frames per flow.
        #[arg(long, default_value_t = 1)]
        per_flow: u32,
        /// Frame size in bytes (60 or more).
        #[arg(long, default_value_t = 64)]
        size: usize,
        /// Frames per second; 0 sends as fast as the socket takes them.
        #[arg(long, default_value_t = 20000)]
        pps: u64,
        /// First sequence number.
        #[arg(long, default_value_t = 0)]
        first_seq: u64,
        /// Flow id of the first flow (the flows are this one and the next `flows - 1`).
        #[arg(long, default_value_t = 0)]
        first_flow: u32,
    },
    /// Send the given frames in turn on one interface as fast as it takes them (a flood of
    /// hostile frames for the tests); prints the frames sent and their rate as JSON.
    Flood {
        /// Interface to send on.
        #[arg(long)]
        iface: String,
        /// A frame in hex (repeat for several).
        #[arg(long, required = true)]
        frame: Vec<String>,
        /// Seconds.
        #[arg(long, default_value_t = 5.0)]
        seconds: f64,
    },
    /// Record test frames per interface until SIGINT/SIGTERM or --max-ms; prints JSON.
    Sink {
        /// Interfaces, comma-separated.
        #[arg(long, value_delimiter = ',')]
        ifaces: Vec<String>,
        /// Stop after this many milliseconds at most.
        #[arg(long, default_value_t = 60_000)]
        max_ms: u64,
        /// Record the arrival time (CLOCK_MONOTONIC) of every test frame.
        #[arg(long)]
        timestamps: bool,
    },
    /// Forward-mode throughput through a lagg against the same-run ceiling (builds and
    /// removes its own test bed; needs root).
    Forward {
        /// Member ports.
        #[arg(long, default_value_t = 4)]
        members: usize,
        /// Runs; each measures the ceiling and the lagg.
        #[arg(long, default_value_t = 5)]
        runs: usize,
        /// Seconds of traffic per measurement (at least 2).
        #[arg(long, default_value_t = 4.0)]
        seconds: f64,
        /// Frame size in bytes, FCS included (RFC 2544: 64 is the smallest).
        #[arg(long, default_value_t = 64)]
        size: usize,
        /// Flows.
        #[arg(long, default_value_t = 1024)]
        flows: u32,
        /// Protocol of the lagg variant.
        #[arg(long, default_value = "loadbalance")]
        proto: String,
        /// Core of the generator.
        #[arg(long, default_value_t = 0)]
        generator_core: usize,
        /// Core of the worker.
        #[arg(long, default_value_t = 1)]
        worker_core: usize,
        /// Generator: `auto` runs the in-kernel one where the kernel allows live-frames test
        /// runs and the AF_XDP one elsewhere (saying so); `afxdp` forces the fallback.
        #[arg(long, value_enum, default_value = "auto")]
        engine: xdpgen::Engine,
        /// The test-bed script.
        #[arg(long, default_value = "scripts/testbed.sh")]
        testbed: PathBuf,
        /// Write the JSON report here too.
        #[arg(long)]
        json: Option<PathBuf>,
    },
    /// LACP convergence time (link up to all members distributing) against an xlagg or an
    /// Open vSwitch partner (builds and removes its own test bed; needs root).
    Lacp {
        /// The partner.
        #[arg(long, value_enum, default_value = "xlagg")]
        partner: convergence::Partner,
        /// Runs.
        #[arg(long, default_value_t = 5)]
        runs: usize,
        /// The test-bed script.
        #[arg(long, default_value = "scripts/testbed.sh")]
        testbed: PathBuf,
        /// Write the results (with the machine and versions) as JSON here too.
        #[arg(long)]
        json: Option<PathBuf>,
    },
    /// Carrier loss under traffic: frames lost and time to the first frame on another member
    /// (builds and removes its own test bed; needs root).
    Switchover {
        /// failover or loadbalance.
        #[arg(long, default_value = "failover")]
        proto: String,
        /// Carrier losses.
        #[arg(long, default_value_t = 10)]
        flaps: usize,
        /// Offered frames per second (default 20000; with `--saturate` the generator runs flat
        /// out unless this is given, then it paces with an AF_XDP generator).
        #[arg(long)]
        pps: Option<u64>,
        /// The generator flat out instead (failover's master flaps); the first frame on the
        /// backup is stamped by the sink's XDP program.
        #[arg(long)]
        saturate: bool,
        /// With `--saturate`: the lagg's engine, afxdp or xdp.
        #[arg(long, default_value = "afxdp")]
        engine: String,
        /// With `--saturate`: more lines for the lagg's configuration (e.g.
        /// `ring_size = 16384`).
        #[arg(long, default_value = "")]
        lagg_extra: String,
        /// The test-bed script.
        #[arg(long, default_value = "scripts/testbed.sh")]
        testbed: PathBuf,
        /// Write the results (with the machine and versions) as JSON here too.
        #[arg(long)]
        json: Option<PathBuf>,
    },
    /// The saturated switchover's sink: sink programs on the interfaces, `arm` and `read`
    /// on standard input (used by `switchover --saturate`).
    Flapsink {
        /// Interfaces, comma-separated.
        #[arg(long, value_delimiter = ',')]
        ifaces: Vec<String>,
    },
    /// AF_XDP generator: frames flat out on one interface (used by `forward`).
    Generate {
        /// Interface.
        #[arg(long)]
        iface: String,
        /// Flows.
        #[arg(long, default_value_t = 1024)]
        flows: u32,
        /// Frame size with FCS.
        #[arg(long, default_value_t = 64)]
        size: usize,
        /// Seconds.
        #[arg(long, default_value_t = 4.0)]
        seconds: f64,
        /// Pin to this core.
        #[arg(long)]
        core: Option<usize>,
        /// Generator: `auto` runs the in-kernel one where the kernel allows live-frames test
        /// runs and the AF_XDP one elsewhere (saying so); `afxdp` forces the fallback.
        #[arg(long, value_enum, default_value = "auto")]
        engine: xdpgen::Engine,
        /// Simple IMIX (7:4:1 of 64, 594, 1518 bytes) instead of --size.
        #[arg(long)]
        imix: bool,
        /// Header layout: ipv4, ipv6, ipv4+vlan, ipv6+vlan.
        #[arg(long, default_value = "ipv4")]
        shape: String,
        /// Frames per second; 0 sends flat out. The xdp engine paces in bursts (each live run
        /// costs milliseconds to set up); the afxdp engine paces per batch and stamps each
        /// frame, which is what latency measurements use.
        #[arg(long, default_value_t = 0)]
        pps: u64,
    },
    /// Attach the in-kernel sink (per-flow counts, reorderings, latency) until SIGTERM, then
    /// print its counts as JSON (used by `suite`).
    Xdpsink {
        /// Interfaces, comma-separated.
        #[arg(long, value_delimiter = ',')]
        ifaces: Vec<String>,
        /// Flows to report one by one.
        #[arg(long, default_value_t = 1024)]
        flows: u32,
        /// Also answer `read` on standard input with the counts so far, and end when it
        /// closes.
        #[arg(long)]
        commands: bool,
    },
    /// Attach the kernel's XDP redirect reference from one interface to another until SIGTERM
    /// (used by `suite`).
    Redirect {
        /// Where frames arrive.
        #[arg(long)]
        from: String,
        /// Where they are sent.
        #[arg(long)]
        to: String,
    },
    /// Every scenario in one command (builds and removes its own test bed; needs root):
    /// throughput per protocol at 64 B, IMIX, 1500 B and 9000 B (MTU 9000) against the AF_XDP ceiling and the
    /// kernel's XDP redirect, balance over 1k and 10k flows, latency at 10 and 50 % of the
    /// maximum rate; writes results.json, summary.md and SVG plots.
    Suite {
        /// Results folder.
        #[arg(long, default_value = "results/latest")]
        out: PathBuf,
        /// Runs per throughput cell.
        #[arg(long, default_value_t = 3)]
        runs: usize,
        /// Seconds per measurement (at least 2).
        #[arg(long, default_value_t = 3.0)]
        seconds: f64,
        /// Protocols, comma-separated.
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "loadbalance,roundrobin,failover,broadcast"
        )]
        protocols: Vec<String>,
        /// Flows.
        #[arg(long, default_value_t = 1024)]
        flows: u32,
        /// Header layout: ipv4, ipv6, ipv4+vlan, ipv6+vlan.
        #[arg(long, default_value = "ipv4")]
        shape: String,
        /// Scenarios, comma-separated: throughput, balance, latency, rfc2544 (NDR and PDR
        /// per size by search, latency at 10, 50 and 90 % of PDR).
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "throughput,balance,latency"
        )]
        scenarios: Vec<String>,
        /// Measure every protocol a second time with preferred busy polling (`busy_poll`).
        #[arg(long)]
        busy_poll: bool,
        /// Engines whose lagg rows are measured, comma-separated: afxdp (workers), xdp
        /// (distribution in the XDP program).
        #[arg(long, value_delimiter = ',', default_value = "afxdp,xdp")]
        engines: Vec<String>,
        /// Frame sizes of the throughput scenario, comma-separated: bytes with FCS (64 to
        /// 9018; above 1518 the bed runs at MTU 9000) or imix.
        #[arg(long, value_delimiter = ',', default_value = "64,imix,1500,9000")]
        sizes: Vec<String>,
        /// Generator of the flat-out runs: `auto` (the in-kernel one where the kernel allows
        /// live-frames test runs, else AF_XDP) or `afxdp` (forces the fallback). Paced and
        /// jumbo runs always use the AF_XDP generator.
        #[arg(long, value_enum, default_value = "auto")]
        generator: xdpgen::Engine,
        /// Frame sizes of the rfc2544 scenario, comma-separated (as --sizes).
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "64,128,256,512,1024,1280,1518"
        )]
        rfc2544_sizes: Vec<String>,
        /// rfc2544: seconds per trial in the search's final phase (at least 1).
        #[arg(long, default_value_t = suite::default_trial_seconds())]
        trial_seconds: f64,
        /// rfc2544: the search ends when (upper - lower) / upper is at most this.
        #[arg(long, default_value_t = suite::default_width())]
        width: f64,
        /// rfc2544: search phases, each earlier one half as long and twice as wide.
        #[arg(long, default_value_t = suite::default_phases())]
        phases: usize,
        /// The test-bed script.
        #[arg(long, default_value = "scripts/testbed.sh")]
        testbed: PathBuf,
    },
    /// Ratios between two results.json files of `suite` (B / A).
    Compare {
        /// The reference.
        a: PathBuf,
        /// The one compared with it.
        b: PathBuf,
    },
    /// Run a forward-mode lagg in this process until SIGTERM (used by `forward`).
    Serve {
        /// Member ports, comma-separated.
        #[arg(long, value_delimiter = ',')]
        members: Vec<String>,
        /// Forward port.
        #[arg(long)]
        forward: String,
        /// Protocol.
        #[arg(long, default_value = "loadbalance")]
        proto: String,
        /// Replace distribution by "always member 0" (the ceiling).
        #[arg(long)]
        fixed: bool,
        /// Worker core.
        #[arg(long)]
        core: Option<usize>,
        /// Preferred busy polling for the worker's sockets.
        #[arg(long)]
        busy_poll: bool,
        /// Distribution engine: afxdp (workers) or xdp (in the XDP program).
        #[arg(long, default_value = "afxdp")]
        engine: String,
    },
    /// Attach the drop-everything XDP program to interfaces until SIGTERM (used by `forward`).
    Drop {
        /// Interfaces, comma-separated.
        #[arg(long, value_delimiter = ',')]
        ifaces: Vec<String>,
    },
    /// TCP through a host-mode laggN with iperf3 per engine and protocol, both directions,
    /// 1 and 8 streams, at each MTU, next to the same iperf3 over a reference link in the same
    /// rounds (builds and removes its own test bed; needs root).
    Tcp {
        /// Protocols, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "loadbalance")]
        protocols: Vec<String>,
        /// The laggs' engines, comma-separated: tc (the host path), xdp, afxdp.
        #[arg(long, value_delimiter = ',', default_value = "tc,xdp,afxdp")]
        engines: Vec<String>,
        /// Parallel streams, comma-separated: one measurement each.
        #[arg(long, value_delimiter = ',', default_value = "1,8")]
        streams: Vec<u32>,
        /// MTUs of every link and of the lagg, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "1500,9000")]
        mtu: Vec<u32>,
        /// Rounds (each measures the reference and every lagg).
        #[arg(long, default_value_t = 3)]
        runs: usize,
        /// Seconds per iperf3 run.
        #[arg(long, default_value_t = 4)]
        seconds: u32,
        /// Shape every link to this many Mbit/s each way (tbf): members become links of that
        /// speed, and the ratio is the aggregation.
        #[arg(long)]
        link_mbit: Option<u32>,
        /// The partner: bridge (Linux bridge) or ovs (Open vSwitch with an LACP bond).
        #[arg(long, value_enum, default_value = "bridge")]
        partner: xlagg_bench::tcp::Partner,
        /// The test-bed script.
        #[arg(long, default_value = "scripts/testbed.sh")]
        testbed: PathBuf,
        /// Write the results (with the machine and versions) as JSON here too.
        #[arg(long)]
        json: Option<PathBuf>,
    },
    /// One TCP stream out of a host-mode laggN while its active member's link flaps: whether
    /// it survives and its longest stall, per protocol (builds and removes its own test bed;
    /// needs root).
    Stream {
        /// Protocols, comma-separated: failover (against a bridge), lacp (against Open
        /// vSwitch).
        #[arg(long, value_delimiter = ',', default_value = "failover,lacp")]
        protocols: Vec<String>,
        /// Flaps of the active member's link per protocol.
        #[arg(long, default_value_t = 10)]
        flaps: usize,
        /// The lagg's engine.
        #[arg(long, default_value = "tc")]
        engine: String,
        /// The test-bed script.
        #[arg(long, default_value = "scripts/testbed.sh")]
        testbed: PathBuf,
        /// Write the results (with the machine and versions) as JSON here too.
        #[arg(long)]
        json: Option<PathBuf>,
    },
    /// The receiving end of `stream` (run in a namespace by it).
    StreamSink {
        /// Address and port to listen on.
        #[arg(long)]
        listen: std::net::SocketAddr,
    },
    /// The sending end of `stream` (run in a namespace by it).
    StreamSource {
        /// Address and port to connect to.
        #[arg(long)]
        connect: std::net::SocketAddr,
        /// Seconds to write for.
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
    },
    /// Soak: traffic through a lagg for a given time while members flap, join and leave,
    /// changes arrive through the API and the daemon restarts; fails when a frame is lost
    /// outside an event's window, a flow is reordered, or memory or descriptors grow.
    Soak {
        /// Total seconds.
        #[arg(long, default_value_t = 600)]
        seconds: u64,
        /// Offered frames per second.
        #[arg(long, default_value_t = 10000)]
        pps: u64,
        /// Flows.
        #[arg(long, default_value_t = 256)]
        flows: u32,
        /// Seconds per segment (one event each).
        #[arg(long, default_value_t = 6)]
        segment: u64,
        /// Restart the daemon every this many segments (0: never).
        #[arg(long, default_value_t = 5)]
        restart_every: usize,
        /// The test-bed script.
        #[arg(long, default_value = "scripts/testbed.sh")]
        testbed: PathBuf,
        /// Write the results (with the machine and versions) as JSON here too.
        #[arg(long)]
        json: Option<PathBuf>,
    },
    /// Holds a VLAN subinterface stand-in on an interface (tc programs; for kernels without
    /// 8021q) until SIGINT/SIGTERM: frames to PREFIX leave tagged VID, frames tagged VID
    /// arrive untagged.
    Vlan {
        /// The interface.
        #[arg(long)]
        iface: String,
        /// The VLAN id.
        #[arg(long)]
        vid: u16,
        /// The IPv4 prefix of the VLAN's addresses, e.g. 10.78.0.0/24.
        #[arg(long)]
        prefix: String,
    },
}

fn main() -> Result<()> {
    let args = Args::parse();
    match args.command {
        Command::Send {
            iface,
            flows,
            per_flow,
            size,
            pps,
            first_seq,
            first_flow,
        } => {
            let (sent, refused) = packet_tools::send(
                &iface,
                first_flow..first_flow.saturating_add(flows),
                per_flow,
                size,
                pps,
                first_seq,
            )?;
            println!("{{\"sent\":{sent},\"refused\":{refused}}}");
        }
        Command::Flood {
            iface,
            frame,
            seconds,
        } => {
            let frames = frame
                .iter()
                .map(|h| hex_bytes(h))
                .collect::<Result<Vec<_>>>()?;
            let (sent, pps) =
                packet_tools::flood(&iface, &frames, Duration::from_secs_f64(seconds))?;
            println!("{{\"sent\":{sent},\"pps\":{pps:.0}}}");
        }
        Command::Sink {
            ifaces,
            max_ms,
            timestamps,
        } => {
            let stop = Arc::new(AtomicBool::new(false));
            for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
                signal_hook::flag::register(signal, Arc::clone(&stop))?;
            }
            let report =
                packet_tools::sink(&ifaces, Duration::from_millis(max_ms), stop, timestamps)?;
            println!("{}", serde_json::to_string(&report)?);
        }
        Command::Forward {
            members,
            runs,
            seconds,
            size,
            flows,
            proto,
            generator_core,
            worker_core,
            testbed,
            json,
            engine,
        } => {
            let opts = forward::ForwardOptions {
                engine,
                members,
                runs,
                seconds,
                size,
                flows,
                proto,
                generator_core,
                worker_core,
            };
            let report = forward::run(&opts, &testbed)?;
            if let Some(path) = json {
                std::fs::write(&path, serde_json::to_string_pretty(&report)?)?;
                println!("report: {}", path.display());
            }
        }
        Command::Generate {
            iface,
            flows,
            size,
            seconds,
            core,
            engine,
            imix,
            shape,
            pps,
        } => {
            let shape = parse_shape(&shape)?;
            if let Some(id) = core {
                core_affinity::set_for_current(core_affinity::CoreId { id });
            }
            let ifindex: u32 = std::fs::read_to_string(format!("/sys/class/net/{iface}/ifindex"))
                .map_err(|e| anyhow::anyhow!("no interface {iface} here: {e}"))?
                .trim()
                .parse()?;
            let stop = Arc::new(AtomicBool::new(false));
            signal_hook::flag::register(signal_hook::consts::SIGTERM, Arc::clone(&stop))?;
            let duration = Duration::from_secs_f64(seconds);
            let spec = xdpgen::GenSpec {
                flows,
                size,
                imix,
                shape,
                pps,
            };
            let report = match engine.resolve() {
                xdpgen::Engine::Xdp => xdpgen::generate_xdp(ifindex, &spec, duration, stop)?,
                _ => xdpgen::generate_afxdp(ifindex, &spec, duration, stop)?,
            };
            println!("{}", serde_json::to_string(&report)?);
        }
        Command::Serve {
            members,
            forward: port,
            proto,
            fixed,
            core,
            busy_poll,
            engine,
        } => forward::serve(&members, &port, &proto, fixed, core, busy_poll, &engine)?,
        Command::Drop { ifaces } => forward::drop_sink(&ifaces)?,
        Command::Vlan { iface, vid, prefix } => xlagg_bench::vlan::hold(&iface, vid, &prefix)?,
        Command::Tcp {
            protocols,
            engines,
            streams,
            mtu,
            runs,
            seconds,
            link_mbit,
            partner,
            testbed,
            json,
        } => {
            if let Some(e) = engines
                .iter()
                .find(|e| !["tc", "xdp", "afxdp"].contains(&e.as_str()))
            {
                anyhow::bail!("--engines: '{e}' is not an engine: use tc, xdp or afxdp");
            }
            let options = xlagg_bench::tcp::TcpOptions {
                protocols,
                engines,
                streams,
                mtus: mtu,
                rounds: runs,
                seconds,
                link_mbit,
                partner,
            };
            let report = xlagg_bench::tcp::run(&options, &testbed)?;
            write_json(json.as_deref(), "tcp", serde_json::json!(options), &report)?;
        }
        Command::Stream {
            protocols,
            flaps,
            engine,
            testbed,
            json,
        } => {
            let report = xlagg_bench::stream::run(&protocols, flaps, &engine, &testbed)?;
            let options =
                serde_json::json!({"protocols": protocols, "flaps": flaps, "engine": engine});
            write_json(json.as_deref(), "stream", options, &report)?;
            if let Some(r) = report.runs.iter().find(|r| !r.survived) {
                anyhow::bail!(
                    "the {} stream did not survive its flaps: {:?}",
                    r.proto,
                    r.sink
                );
            }
        }
        Command::StreamSink { listen } => xlagg_bench::stream::sink(listen)?,
        Command::StreamSource { connect, seconds } => {
            xlagg_bench::stream::source(connect, seconds)?;
        }
        Command::Soak {
            seconds,
            pps,
            flows,
            segment,
            restart_every,
            testbed,
            json,
        } => {
            let options = xlagg_bench::soak::SoakOptions {
                seconds,
                pps,
                flows,
                segment_seconds: segment,
                restart_every,
            };
            let report = xlagg_bench::soak::run(options, &testbed)?;
            write_json(json.as_deref(), "soak", serde_json::json!(options), &report)?;
            if !report.failures.is_empty() {
                anyhow::bail!("the soak failed: {}", report.failures.join("; "));
            }
        }
        Command::Xdpsink {
            ifaces,
            flows,
            commands,
        } => suite::kernel_sink(&ifaces, flows, commands)?,
        Command::Redirect { from, to } => suite::redirect(&from, &to)?,
        Command::Suite {
            out,
            runs,
            seconds,
            protocols,
            flows,
            shape,
            scenarios,
            sizes,
            busy_poll,
            engines,
            generator,
            rfc2544_sizes,
            trial_seconds,
            width,
            phases,
            testbed,
        } => {
            if trial_seconds.is_nan() || trial_seconds < 1.0 {
                anyhow::bail!("--trial-seconds must be at least 1");
            }
            if !(0.0..0.5).contains(&width) || width == 0.0 {
                anyhow::bail!("--width must be above 0 and below 0.5 (0.02 is 2 %)");
            }
            if !(1..=6).contains(&phases) {
                anyhow::bail!("--phases must be 1 to 6");
            }
            if let Some(e) = engines
                .iter()
                .find(|e| !["afxdp", "xdp"].contains(&e.as_str()))
            {
                anyhow::bail!("--engines: '{e}' is not an engine: use afxdp, xdp or both");
            }
            let opts = suite::SuiteOptions {
                generator,
                scenarios,
                busy_poll,
                engines,
                sizes: sizes
                    .iter()
                    .map(|s| suite::Size::parse(s))
                    .collect::<Result<_, _>>()
                    .map_err(anyhow::Error::msg)?,
                rfc2544_sizes: rfc2544_sizes
                    .iter()
                    .map(|s| suite::Size::parse(s))
                    .collect::<Result<_, _>>()
                    .map_err(anyhow::Error::msg)?,
                trial_seconds,
                width,
                phases,
                members: 4,
                runs,
                seconds,
                protocols,
                flows,
                shape: parse_shape(&shape)?,
            };
            suite::run(&opts, &testbed, &out)?;
        }
        Command::Compare { a, b } => print!("{}", suite::compare(&a, &b)?),
        Command::Switchover {
            flaps,
            saturate: true,
            engine,
            lagg_extra,
            pps,
            testbed,
            json,
            ..
        } => {
            let report = xlagg_bench::saturate::run(&engine, &lagg_extra, flaps, pps, &testbed)?;
            let options = serde_json::json!({"saturate": true, "engine": engine, "lagg_extra": lagg_extra, "flaps": flaps, "pps": pps});
            write_json(json.as_deref(), "switchover", options, &report)?;
        }
        Command::Flapsink { ifaces } => xlagg_bench::saturate::flapsink(&ifaces)?,
        Command::Switchover {
            proto,
            flaps,
            pps,
            testbed,
            json,
            ..
        } => {
            let pps = pps.unwrap_or(20_000);
            let report = switchover::run(&proto, flaps, pps, &testbed)?;
            let options = serde_json::json!({"proto": proto, "flaps": flaps, "pps": pps});
            write_json(json.as_deref(), "switchover", options, &report)?;
        }
        Command::Lacp {
            partner,
            runs,
            testbed,
            json,
        } => {
            let report = convergence::run(partner, runs, &testbed)?;
            let options = serde_json::json!({"partner": format!("{partner:?}"), "runs": runs});
            write_json(json.as_deref(), "lacp", options, &report)?;
        }
    }
    Ok(())
}

fn parse_shape(text: &str) -> Result<traffic::Shape> {
    Ok(match text {
        "ipv4" => traffic::Shape::default(),
        "ipv6" => traffic::Shape {
            ipv6: true,
            vlan: None,
        },
        "ipv4+vlan" => traffic::Shape {
            ipv6: false,
            vlan: Some(100),
        },
        "ipv6+vlan" => traffic::Shape {
            ipv6: true,
            vlan: Some(100),
        },
        other => anyhow::bail!("--shape: '{other}' is not one of ipv4, ipv6, ipv4+vlan, ipv6+vlan"),
    })
}

/// Writes a scenario's report with the machine, versions and options, as `suite` does.
/// Bytes of a hex string (`0a1b...`).
fn hex_bytes(text: &str) -> Result<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        anyhow::bail!("--frame: '{text}' has an odd number of hex digits");
    }
    (0..text.len())
        .step_by(2)
        .map(|i| {
            u8::from_str_radix(&text[i..i + 2], 16)
                .map_err(|_| anyhow::anyhow!("--frame: '{}' is not hex", &text[i..i + 2]))
        })
        .collect()
}

fn write_json(
    path: Option<&std::path::Path>,
    scenario: &str,
    options: serde_json::Value,
    report: &impl serde::Serialize,
) -> Result<()> {
    let Some(path) = path else {
        return Ok(());
    };
    let doc = serde_json::json!({
        "scenario": scenario,
        "machine": forward::machine(),
        "versions": format!("xlagg {}", env!("CARGO_PKG_VERSION")),
        "options": options,
        "report": report,
    });
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, serde_json::to_string_pretty(&doc)?)?;
    println!("report: {}", path.display());
    Ok(())
}
