//! A VLAN subinterface for the tests where the kernel has none (no 8021q): two tc programs on
//! one interface. On egress, IPv4 frames to a prefix (and ARP for addresses in it) get a VLAN
//! tag in skb metadata, where a VLAN device with transmit tag offload puts it; on ingress,
//! frames with that VLAN id lose the tag. Addresses of the prefix on the interface then behave
//! like addresses of `IF.VID`. Where the kernel has 8021q the tests use a real VLAN device.

use std::net::Ipv4Addr;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use aya::maps::Array;
use aya::programs::tc::TcAttachOptions;
use aya::programs::{LinkOrder, SchedClassifier, TcAttachType};
use aya::Ebpf;
use xlagg_common::{names, VlanConfig};

/// Whether `ip link add ... type vlan` works here.
pub fn kernel_has_vlan() -> bool {
    std::path::Path::new("/proc/net/vlan").exists()
}

/// Parses `A.B.C.D/N`.
///
/// # Errors
/// Not an IPv4 prefix.
pub fn parse_prefix(text: &str) -> Result<(u32, u32)> {
    let (addr, len) = text
        .split_once('/')
        .with_context(|| format!("{text}: expected A.B.C.D/N"))?;
    let addr: Ipv4Addr = addr.parse().with_context(|| format!("{text}: address"))?;
    let len: u32 = len
        .parse()
        .with_context(|| format!("{text}: prefix length"))?;
    if len > 32 {
        bail!("{text}: prefix length above 32");
    }
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    Ok((u32::from(addr) & mask, mask))
}

/// Attaches the stand-in to `iface` and holds it until SIGINT/SIGTERM (the programs go with
/// the process).
///
/// # Errors
/// Loading or attaching failed.
pub fn hold(iface: &str, vid: u16, prefix: &str) -> Result<()> {
    if vid == 0 || vid > 4094 {
        bail!("VLAN id {vid}: 1..4094");
    }
    let (prefix, mask) = parse_prefix(prefix)?;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, std::sync::Arc::clone(&stop))?;
    }
    xlagg_dataplane::xdp::ensure_built(xlagg_dataplane::xdp::BENCH_OBJECT, iface)?;
    let mut ebpf =
        Ebpf::load(xlagg_dataplane::xdp::BENCH_OBJECT).context("loading the bench object")?;
    let mut config: Array<_, VlanConfig> = Array::try_from(
        ebpf.map_mut(names::VLAN_CONFIG)
            .context("no VLAN config map")?,
    )?;
    config.set(
        0,
        VlanConfig {
            prefix,
            mask,
            vid,
            pad: [0; 2],
        },
        0,
    )?;
    for (program, direction) in [
        (names::VLAN_PUSH_PROGRAM, TcAttachType::Egress),
        (names::VLAN_POP_PROGRAM, TcAttachType::Ingress),
    ] {
        let p: &mut SchedClassifier = ebpf
            .program_mut(program)
            .with_context(|| format!("no program {program}"))?
            .try_into()?;
        p.load().with_context(|| format!("loading {program}"))?;
        // First on the hook: the tag is there before anything else on the device (the tc
        // host path on laggN's egress) reads the frame.
        p.attach_with_options(
            iface,
            direction,
            TcAttachOptions::TcxOrder(LinkOrder::first()),
        )
        .with_context(|| format!("attaching {program} to {iface} (tcx, Linux 6.6)"))?;
    }
    println!("ready");
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(ebpf);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_masked() {
        assert_eq!(
            parse_prefix("10.78.0.9/24").expect("valid"),
            (0x0a4e_0000, 0xffff_ff00)
        );
        assert_eq!(parse_prefix("0.0.0.0/0").expect("valid"), (0, 0));
        assert!(parse_prefix("10.78.0.0/33").is_err());
        assert!(parse_prefix("10.78.0.0").is_err());
    }
}
