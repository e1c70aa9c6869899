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

use super::wire::{
    emit_ipv6, ethertype, icmpv6_checksum, protocol, ArpRepr, Ethernet, Ipv6, NdRepr,
};

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
    if let Some(mut eth) = Ethernet::new_checked(&mut f[..]) {
        eth.emit([0xff; 6], mac, ethertype::ARP);
        ArpRepr {
            operation: ArpRepr::REQUEST,
            sha: mac,
            spa: Ipv4Addr::UNSPECIFIED,
            tha: [0; 6],
            tpa: target,
        }
        .emit(eth.payload_mut());
    }
    f
}

/// A neighbour solicitation for `target` from `mac` (source: its link-local address).
pub fn neighbour_solicitation(mac: [u8; 6], target: Ipv6Addr) -> Vec<u8> {
    let t = target.octets();
    let group = Ipv6Addr::from([
        0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, t[13], t[14], t[15],
    ]);
    let src = link_local(mac);
    let mut f = vec![0u8; Ethernet::LEN + Ipv6::LEN + NdRepr::LEN];
    if let Some(mut eth) = Ethernet::new_checked(&mut f[..]) {
        eth.emit(
            [0x33, 0x33, 0xff, t[13], t[14], t[15]],
            mac,
            ethertype::IPV6,
        );
        let ip6 = eth.payload_mut();
        emit_ipv6(ip6, src, group, protocol::ICMPV6, 255, NdRepr::LEN);
        NdRepr {
            kind: NdRepr::SOLICITATION,
            flags: 0,
            target,
            option: 1, // source link-layer address
            mac,
        }
        .emit(&mut ip6[Ipv6::LEN..], src, group);
    }
    f
}

/// The target a frame answers, if it is an ARP reply or a valid neighbour advertisement
/// addressed to `mac` that concerns one of `targets`. An advertisement is valid as RFC 4861
/// requires it: hop limit 255, nothing cut off, a valid checksum.
pub fn reply_from(frame: &[u8], mac: [u8; 6], targets: &[IpAddr]) -> Option<IpAddr> {
    let eth = Ethernet::new_checked(frame).filter(|e| frame.len() >= 42 && e.dst() == mac)?;
    let answered = match eth.ethertype() {
        ethertype::ARP => {
            let arp = ArpRepr::parse(eth.payload())?;
            (arp.operation == ArpRepr::REPLY && arp.tha == mac).then_some(IpAddr::V4(arp.spa))?
        }
        ethertype::IPV6 => {
            let ip6 = Ipv6::new_checked(eth.payload())?;
            let icmp = ip6.payload()?;
            let ok = ip6.next_header() == protocol::ICMPV6
                && ip6.hop_limit() == 255
                && icmpv6_checksum(ip6.src(), ip6.dst(), icmp) == 0;
            let nd = NdRepr::parse(icmp).filter(|nd| ok && nd.kind == NdRepr::ADVERTISEMENT)?;
            IpAddr::V6(nd.target)
        }
        _ => return None,
    };
    targets.contains(&answered).then_some(answered)
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
    use xlagg_common::checksum::checksum;

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
