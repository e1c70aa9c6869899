//! The ARP/NS probe monitor (Linux bonding's `arp_interval`, per member): every interval each
//! member sends an ARP probe for every IPv4 target and a neighbour solicitation for every IPv6
//! target, from the member's own probe MAC. A member passes while a reply to its probes came
//! within `interval x missed_max`; one that is up but passes nothing is taken out.
//!
//! Probe MACs are derived from each member's MAC (locally administered, never the lagg's), so a
//! reply names the member its probe left on, and the XDP program hands frames to that MAC to
//! the control path without touching the lagg's own ARP traffic. ARP probes carry sender
//! address 0.0.0.0 (RFC 5227), so targets answer without caching the probe MAC; solicitations
//! come from the probe MAC's link-local address.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use xlagg_common::checksum::checksum;

/// The probe MAC of a member: its MAC with the locally-administered bit set and two bits
/// flipped, so it differs from the member's (and the lagg's) MAC.
pub fn probe_mac(mac: [u8; 6]) -> [u8; 6] {
    let mut p = mac;
    p[0] = ((mac[0] ^ 0x0c) | 0x02) & 0xfe;
    p
}

/// The link-local IPv6 address of `mac` (modified EUI-64).
pub fn link_local(mac: [u8; 6]) -> Ipv6Addr {
    Ipv6Addr::from([
        0xfe,
        0x80,
        0,
        0,
        0,
        0,
        0,
        0,
        mac[0] ^ 0x02,
        mac[1],
        mac[2],
        0xff,
        0xfe,
        mac[3],
        mac[4],
        mac[5],
    ])
}

/// An ARP probe (request, sender address 0.0.0.0) for `target` from `mac`.
pub fn arp_probe(mac: [u8; 6], target: Ipv4Addr) -> Vec<u8> {
    let mut f = vec![0u8; 60];
    f[0..6].copy_from_slice(&[0xff; 6]);
    f[6..12].copy_from_slice(&mac);
    f[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
    f[14..16].copy_from_slice(&1u16.to_be_bytes());
    f[16..18].copy_from_slice(&0x0800u16.to_be_bytes());
    f[18] = 6;
    f[19] = 4;
    f[20..22].copy_from_slice(&1u16.to_be_bytes());
    f[22..28].copy_from_slice(&mac);
    // Sender protocol address 0.0.0.0; target hardware address zero.
    f[38..42].copy_from_slice(&target.octets());
    f
}

/// A neighbour solicitation for `target` from `mac` (source: its link-local address).
pub fn neighbour_solicitation(mac: [u8; 6], target: Ipv6Addr) -> Vec<u8> {
    const ICMP_LEN: usize = 32; // 24 bytes of NS + 8 of the source link-layer option
    let t = target.octets();
    let group = Ipv6Addr::from([
        0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, t[13], t[14], t[15],
    ]);
    let src = link_local(mac);
    let mut f = vec![0u8; 14 + 40 + ICMP_LEN];
    f[0..6].copy_from_slice(&[0x33, 0x33, 0xff, t[13], t[14], t[15]]);
    f[6..12].copy_from_slice(&mac);
    f[12..14].copy_from_slice(&0x86ddu16.to_be_bytes());
    let ip6 = &mut f[14..54];
    ip6[0] = 0x60;
    ip6[4..6].copy_from_slice(&(ICMP_LEN as u16).to_be_bytes());
    ip6[6] = 58;
    ip6[7] = 255;
    ip6[8..24].copy_from_slice(&src.octets());
    ip6[24..40].copy_from_slice(&group.octets());
    let icmp = &mut f[54..];
    icmp[0] = 135;
    icmp[8..24].copy_from_slice(&t);
    icmp[24] = 1; // source link-layer address option
    icmp[25] = 1;
    icmp[26..32].copy_from_slice(&mac);
    let len = (ICMP_LEN as u32).to_be_bytes();
    let sum = checksum(&[
        &src.octets(),
        &group.octets(),
        &len,
        &[0, 0, 0, 58],
        &f[54..],
    ]);
    f[56..58].copy_from_slice(&sum.to_be_bytes());
    f
}

/// Whether an IPv6 frame is a whole ICMPv6 neighbour advertisement as RFC 4861 requires it
/// (hop limit 255, nothing cut off, a valid checksum).
fn valid_na(frame: &[u8]) -> bool {
    let plen = usize::from(u16::from_be_bytes([frame[18], frame[19]]));
    if frame[21] != 255 || plen < 24 || frame.len() < 54 + plen {
        return false;
    }
    let icmp = &frame[54..54 + plen];
    let len = (plen as u32).to_be_bytes();
    checksum(&[&frame[22..38], &frame[38..54], &len, &[0, 0, 0, 58], icmp]) == 0
}

/// The target a frame answers, if it is an ARP reply or a valid neighbour advertisement
/// addressed to `mac` that concerns one of `targets`.
pub fn reply_from(frame: &[u8], mac: [u8; 6], targets: &[IpAddr]) -> Option<IpAddr> {
    if frame.len() < 42 || frame[0..6] != mac {
        return None;
    }
    match u16::from_be_bytes([frame[12], frame[13]]) {
        0x0806 if frame[20..22] == [0, 2] && frame[32..38] == mac => {
            let sender = IpAddr::V4(Ipv4Addr::new(frame[28], frame[29], frame[30], frame[31]));
            targets.contains(&sender).then_some(sender)
        }
        0x86dd
            if frame.len() >= 14 + 40 + 24
                && frame[20] == 58
                && frame[54] == 136
                && valid_na(frame) =>
        {
            let mut t = [0u8; 16];
            t.copy_from_slice(&frame[62..78]);
            let target = IpAddr::V6(Ipv6Addr::from(t));
            targets.contains(&target).then_some(target)
        }
        _ => None,
    }
}

/// The probe frames of one member for one round.
pub fn probes(mac: [u8; 6], targets: &[IpAddr]) -> Vec<Vec<u8>> {
    targets
        .iter()
        .map(|t| match t {
            IpAddr::V4(v4) => arp_probe(mac, *v4),
            IpAddr::V6(v6) => neighbour_solicitation(mac, *v6),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: [u8; 6] = [0x8a, 0x11, 0x22, 0x33, 0x44, 0x55];

    #[test]
    fn probe_macs_are_local_unicast_and_differ_from_the_member() {
        for m in [MAC, [0, 1, 2, 3, 4, 5], [0x0e, 0, 0, 0, 0, 1], [0xff; 6]] {
            let p = probe_mac(m);
            assert_ne!(p, m);
            assert_eq!(p[0] & 0x03, 0x02, "{p:02x?}");
            assert_eq!(p[1..], m[1..]);
        }
    }

    #[test]
    fn arp_replies_and_advertisements_are_recognised_for_their_mac_only() {
        let pm = probe_mac(MAC);
        let target: IpAddr = "10.77.0.2".parse().unwrap();
        let mut reply = arp_probe(pm, Ipv4Addr::new(10, 77, 0, 2));
        // Turn it into the target's reply: to pm, op 2, sender 10.77.0.2, target hw pm.
        reply[0..6].copy_from_slice(&pm);
        reply[20..22].copy_from_slice(&[0, 2]);
        reply[22..28].copy_from_slice(&[2, 0, 0, 0, 0, 9]);
        reply[28..32].copy_from_slice(&[10, 77, 0, 2]);
        reply[32..38].copy_from_slice(&pm);
        assert_eq!(reply_from(&reply, pm, &[target]), Some(target));
        assert_eq!(reply_from(&reply, MAC, &[target]), None, "another MAC");
        assert_eq!(reply_from(&reply, pm, &[]), None, "not a target");
        let v6: IpAddr = "2001:db8:77::2".parse().unwrap();
        let IpAddr::V6(t6) = v6 else { unreachable!() };
        // The target's advertisement (built independently, by the peer-notification code).
        let mut na = crate::proto::notify::unsolicited_na([2, 0, 0, 0, 0, 9], t6);
        na[0..6].copy_from_slice(&pm);
        assert_eq!(reply_from(&na, pm, &[v6]), Some(v6));
        let mut bad_sum = na.clone();
        bad_sum[56] ^= 1;
        let mut hop = na.clone();
        hop[21] = 64;
        let mut cut = na.clone();
        cut[18..20].copy_from_slice(&200u16.to_be_bytes());
        for (f, what) in [(bad_sum, "checksum"), (hop, "hop limit"), (cut, "length")] {
            assert_eq!(reply_from(&f, pm, &[v6]), None, "{what}");
        }
    }

    #[test]
    fn solicitation_goes_to_the_solicited_node_group_with_a_valid_checksum() {
        let t: Ipv6Addr = "2001:db8:77::2".parse().unwrap();
        let f = neighbour_solicitation(MAC, t);
        assert_eq!(f[0..6], [0x33, 0x33, 0xff, 0, 0, 2]);
        let len = 32u32.to_be_bytes();
        assert_eq!(
            checksum(&[&f[22..38], &f[38..54], &len, &[0, 0, 0, 58], &f[54..]]),
            0
        );
    }
}
