//! The offloads that decide whether a frame is valid on the wire, on laggN and on every port
//! an XDP program reads.
//!
//! laggN is one end of a veth pair. What its stack sends reaches the XDP program on the other
//! end as an skb, and the AF_XDP socket behind that program gets the skb's bytes and nothing of
//! its metadata. Two offloads leave part of a frame in metadata, to be finished by hardware
//! that does not exist on this path:
//! - transmit checksumming: a TCP/UDP segment is `CHECKSUM_PARTIAL`, its checksum field holds
//!   only the pseudo-header sum. Forwarded as is, every segment leaves the members with a bad
//!   checksum and a real receiver drops it (ping passes: ICMP is always checksummed in full);
//! - VLAN tag insertion: the tag of a VLAN subinterface rides beside the bytes; forwarded as
//!   is, the frame leaves untagged.
//!
//! So both are off on laggN always, whatever `hw_offload` says, and are put back off when
//! someone turns them on (a link notification follows every feature change). The kernel then
//! completes checksums and inserts tags in software before the frame reaches the veth: once
//! per frame, while the data is hot in cache from the copy into the skb. Segmentation offloads
//! depend on transmit checksumming and go with it; generic segmentation (GSO) stays, since it
//! cuts segments in software before the device, each with its full checksum. Completing
//! checksums in the worker instead would cost every frame a parse and a sum on the fast path
//! and still leave VLAN tags behind.
//!
//! On the ports an XDP program reads (members, forward port), receive VLAN stripping would hand
//! the program an untagged frame with the tag in the NIC's descriptor: hashing and forwarding
//! would lose it. It is turned off at attach and restored at teardown. Where a NIC cannot turn
//! it off, the lagg still starts and the log says that VLAN tags on that port are lost.
//!
//! Features are read and set with ethtool(8), which the appliance carries.

use std::process::Command;

/// One feature as `ethtool -k` prints it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Feature {
    /// Its name, e.g. `tx-checksum-ip-generic`.
    pub name: String,
    /// Whether it is on.
    pub on: bool,
    /// Whether the driver lets it change.
    pub fixed: bool,
}

/// An ethtool failure.
#[derive(Debug, thiserror::Error)]
pub enum OffloadError {
    /// ethtool could not run or failed.
    #[error("{iface}: ethtool {args}: {detail}")]
    Ethtool {
        /// The interface.
        iface: String,
        /// The arguments given.
        args: String,
        /// What went wrong.
        detail: String,
    },
    /// A feature that must be off cannot be turned off.
    #[error("{iface}: {feature} is on and the driver does not let it be turned off; frames would leave the lagg incomplete")]
    Fixed {
        /// The interface.
        iface: String,
        /// The feature.
        feature: String,
    },
}

/// Transmit offloads that leave a frame's checksum or VLAN tag in metadata, by the names
/// `ethtool -k` prints.
pub const METADATA_TX: &[&str] = &[
    "tx-checksum-ipv4",
    "tx-checksum-ip-generic",
    "tx-checksum-ipv6",
    "tx-checksum-fcoe-crc",
    "tx-checksum-sctp",
    "tx-vlan-offload",
    "tx-vlan-stag-hw-insert",
];

/// Receive offloads that take a VLAN tag out of the bytes an XDP program sees.
pub const VLAN_RX: &[&str] = &["rx-vlan-offload", "rx-vlan-stag-hw-parse"];

/// The further offloads TrueNAS's "Disable Hardware Offloading" (`hw_offload = false`) turns off
/// on laggN.
pub const HW_OFFLOAD: &[&str] = &[
    "generic-segmentation-offload",
    "generic-receive-offload",
    "rx-checksumming",
];

/// What `hw_offload = false` turns off on laggN and every member on the tc host path, where
/// the host's skbs reach the members' drivers whole: segmentation (TSO, GSO, LRO), GRO and
/// checksumming both ways, as TrueNAS means "Disable Hardware Offloading".
pub const ALL_OFFLOADS: &[&str] = &[
    "tcp-segmentation-offload",
    "generic-segmentation-offload",
    "generic-receive-offload",
    "large-receive-offload",
    "rx-checksumming",
    "tx-checksumming",
];

/// The name `ethtool -K` takes for a feature `ethtool -k` prints under another.
fn setting_name(printed: &str) -> &str {
    match printed {
        "tx-vlan-offload" => "txvlan",
        "rx-vlan-offload" => "rxvlan",
        "generic-segmentation-offload" => "gso",
        "generic-receive-offload" => "gro",
        "rx-checksumming" => "rx",
        "tx-checksumming" => "tx",
        "tcp-segmentation-offload" => "tso",
        "large-receive-offload" => "lro",
        other => other,
    }
}

/// Parses `ethtool -k` output.
pub fn parse_features(text: &str) -> Vec<Feature> {
    text.lines()
        .filter_map(|line| {
            let (name, rest) = line.trim().split_once(':')?;
            let mut words = rest.split_whitespace();
            let on = match words.next()? {
                "on" => true,
                "off" => false,
                _ => return None,
            };
            Some(Feature {
                name: name.to_string(),
                on,
                fixed: rest.contains("[fixed]"),
            })
        })
        .collect()
}

fn ethtool(iface: &str, args: &[&str]) -> Result<String, OffloadError> {
    let failed = |detail: String| OffloadError::Ethtool {
        iface: iface.to_string(),
        args: args.join(" "),
        detail,
    };
    let out = Command::new("ethtool")
        .args(args)
        .output()
        .map_err(|e| failed(format!("cannot run ethtool ({e}); install it")))?;
    if !out.status.success() {
        return Err(failed(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The features of `iface`.
///
/// # Errors
/// ethtool failed.
pub fn features(iface: &str) -> Result<Vec<Feature>, OffloadError> {
    Ok(parse_features(&ethtool(iface, &["-k", iface])?))
}

/// Sets `changes` (printed names) on `iface`.
///
/// # Errors
/// ethtool failed.
pub fn set(iface: &str, changes: &[(String, bool)]) -> Result<(), OffloadError> {
    if changes.is_empty() {
        return Ok(());
    }
    let mut args = vec!["-K".to_string(), iface.to_string()];
    for (name, on) in changes {
        args.push(setting_name(name).to_string());
        args.push(if *on { "on" } else { "off" }.to_string());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    ethtool(iface, &args).map(|_| ())
}

/// The changes that turn off every feature of `names` that `current` has on; a fixed one is
/// an error when `must` holds, skipped otherwise.
fn turn_off(
    iface: &str,
    current: &[Feature],
    names: &[&str],
    must: bool,
) -> Result<Vec<(String, bool)>, OffloadError> {
    let mut changes = Vec::new();
    for f in current
        .iter()
        .filter(|f| f.on && names.contains(&f.name.as_str()))
    {
        if f.fixed {
            if must {
                return Err(OffloadError::Fixed {
                    iface: iface.to_string(),
                    feature: f.name.clone(),
                });
            }
            continue;
        }
        changes.push((f.name.clone(), false));
    }
    Ok(changes)
}

/// Makes laggN's transmit path complete every frame in its bytes: turns off [`METADATA_TX`]
/// (and [`HW_OFFLOAD`] too when `hw_offload` is false). Returns the features it turned off
/// (empty when all were off already).
///
/// # Errors
/// ethtool failed, or a feature that must go off is fixed on.
pub fn complete_frames_on_host(iface: &str, hw_offload: bool) -> Result<Vec<String>, OffloadError> {
    let current = features(iface)?;
    let mut changes = turn_off(iface, &current, METADATA_TX, true)?;
    if !hw_offload {
        changes.extend(turn_off(iface, &current, HW_OFFLOAD, false)?);
    }
    set(iface, &changes)?;
    if !changes.is_empty() {
        let after = features(iface)?;
        if let Some(f) = after
            .iter()
            .find(|f| f.on && METADATA_TX.contains(&f.name.as_str()))
        {
            return Err(OffloadError::Fixed {
                iface: iface.to_string(),
                feature: f.name.clone(),
            });
        }
    }
    Ok(changes.into_iter().map(|c| c.0).collect())
}

/// Turns off [`ALL_OFFLOADS`] on `iface` (those the driver lets change; the others stay, as
/// ethtool would leave them). Returns the settings to put back at teardown.
///
/// # Errors
/// ethtool failed.
pub fn disable_offloads(iface: &str) -> Result<Vec<(String, bool)>, OffloadError> {
    let changes = offloads_off_changes(iface)?;
    set(iface, &changes)?;
    Ok(changes.into_iter().map(|(n, _)| (n, true)).collect())
}

/// The changes that turn off [`ALL_OFFLOADS`] on `iface` (not made).
///
/// # Errors
/// ethtool failed.
pub fn offloads_off_changes(iface: &str) -> Result<Vec<(String, bool)>, OffloadError> {
    turn_off(iface, &features(iface)?, ALL_OFFLOADS, false)
}

/// The change that turns on generic receive offload on `iface` where it is off and the driver
/// lets it change (a veth's is off by default; turning it on also gives the veth a NAPI of its
/// own); not made.
///
/// # Errors
/// ethtool failed.
pub fn gro_on_changes(iface: &str) -> Result<Vec<(String, bool)>, OffloadError> {
    Ok(features(iface)?
        .iter()
        .filter(|f| f.name == "generic-receive-offload" && !f.on && !f.fixed)
        .map(|f| (f.name.clone(), true))
        .collect())
}

/// Feature changes, by the names `ethtool -k` prints: (feature, on).
pub type Changes = Vec<(String, bool)>;

/// The changes that turn off receive VLAN stripping on a port an XDP program reads (not
/// made), and the stripping features that cannot change.
///
/// # Errors
/// ethtool failed.
pub fn vlan_tag_changes(iface: &str) -> Result<(Changes, Vec<String>), OffloadError> {
    let current = features(iface)?;
    let changes = turn_off(iface, &current, VLAN_RX, false)?;
    let stuck = current
        .iter()
        .filter(|f| f.on && f.fixed && VLAN_RX.contains(&f.name.as_str()))
        .map(|f| f.name.clone())
        .collect();
    Ok((changes, stuck))
}

/// Receive queues a device has active (`ethtool -l`: current RX plus combined channels), or
/// `None` where the driver does not say.
pub fn active_rx_channels(iface: &str) -> Option<u32> {
    parse_channels(&ethtool(iface, &["-l", iface]).ok()?)
}

/// Reads the "Current hardware settings" of `ethtool -l` output.
pub fn parse_channels(text: &str) -> Option<u32> {
    let current = text.split("Current hardware settings:").nth(1)?;
    let value = |key: &str| -> Option<u32> {
        current
            .lines()
            .find_map(|l| l.trim().strip_prefix(key))
            .and_then(|v| v.trim().parse().ok())
    };
    let total = value("RX:").unwrap_or(0) + value("Combined:").unwrap_or(0);
    (total > 0).then_some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn active_channels_are_rx_plus_combined() {
        let veth = "Channel parameters for xlq0:\nPre-set maximums:\nRX:\t\t4\nTX:\t\t4\nOther:\t\tn/a\n\
                    Combined:\tn/a\nCurrent hardware settings:\nRX:\t\t2\nTX:\t\t2\nOther:\t\tn/a\nCombined:\tn/a\n";
        assert_eq!(parse_channels(veth), Some(2));
        let nic = "Pre-set maximums:\nRX:\t\tn/a\nTX:\t\tn/a\nOther:\t\t1\nCombined:\t63\n\
                   Current hardware settings:\nRX:\t\tn/a\nTX:\t\tn/a\nOther:\t\t1\nCombined:\t8\n";
        assert_eq!(parse_channels(nic), Some(8));
        assert_eq!(parse_channels("no such output"), None);
    }

    const VETH: &str = "Features for xle0:\nrx-checksumming: on\ntx-checksumming: on\n\
        \ttx-checksum-ipv4: off [fixed]\n\ttx-checksum-ip-generic: on\n\ttx-checksum-sctp: on\n\
        tcp-segmentation-offload: on\ngeneric-receive-offload: off\nrx-vlan-offload: on\n\
        tx-vlan-offload: on\ntx-vlan-stag-hw-insert: on\nrx-vlan-stag-hw-parse: on\n\
        rx-vlan-filter: off [fixed]\n";

    #[test]
    fn ethtool_output_is_read_with_fixed_flags() {
        let f = parse_features(VETH);
        assert_eq!(
            f[0],
            Feature {
                name: "rx-checksumming".into(),
                on: true,
                fixed: false
            }
        );
        let ipv4 = f
            .iter()
            .find(|f| f.name == "tx-checksum-ipv4")
            .expect("listed");
        assert!(!ipv4.on && ipv4.fixed);
        assert!(f.iter().all(|f| f.name != "Features for xle0"));
    }

    #[test]
    fn the_host_side_turns_off_exactly_what_leaves_metadata() {
        let f = parse_features(VETH);
        let changes = turn_off("lagg0", &f, METADATA_TX, true).expect("changeable");
        let names: Vec<&str> = changes.iter().map(|c| c.0.as_str()).collect();
        assert_eq!(
            names,
            [
                "tx-checksum-ip-generic",
                "tx-checksum-sctp",
                "tx-vlan-offload",
                "tx-vlan-stag-hw-insert"
            ]
        );
        assert_eq!(setting_name("tx-vlan-offload"), "txvlan");
        let fixed_on = parse_features("tx-checksum-ip-generic: on [fixed]\n");
        assert!(matches!(
            turn_off("lagg0", &fixed_on, METADATA_TX, true),
            Err(OffloadError::Fixed { .. })
        ));
        assert!(turn_off("em0", &fixed_on, METADATA_TX, false)
            .expect("skipped")
            .is_empty());
    }
}
