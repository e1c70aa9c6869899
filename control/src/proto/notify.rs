//! Peer notification frames: after the active port changes, tell the network where the lagg's
//! addresses are now, so switches relearn the MAC on the new port at once instead of waiting for
//! their tables to age (FreeBSD lagg sends nothing, and its users see slow failovers).
//!
//! - IPv4: a gratuitous ARP request per address (sender and target address both the address,
//!   broadcast), as Linux bonding and `arping -U` send it;
//! - IPv6: an unsolicited neighbour advertisement per address (RFC 4861 7.2.6: to ff02::1,
//!   hop limit 255, Override set, Solicited clear, with the target link-layer address option).

use std::net::{Ipv4Addr, Ipv6Addr};

use xlagg_common::checksum::checksum;

/// Smallest Ethernet frame without FCS.
const MIN_FRAME: usize = 60;

/// A gratuitous ARP request for `ip` at `mac`.
pub fn gratuitous_arp(mac: [u8; 6], ip: Ipv4Addr) -> Vec<u8> {
    let mut f = vec![0u8; MIN_FRAME];
    f[0..6].copy_from_slice(&[0xff; 6]);
    f[6..12].copy_from_slice(&mac);
    f[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
    f[14..16].copy_from_slice(&1u16.to_be_bytes()); // Ethernet
    f[16..18].copy_from_slice(&0x0800u16.to_be_bytes()); // IPv4
    f[18] = 6;
    f[19] = 4;
    f[20..22].copy_from_slice(&1u16.to_be_bytes()); // request
    f[22..28].copy_from_slice(&mac);
    f[28..32].copy_from_slice(&ip.octets());
    // Target hardware address stays zero; target protocol address is the address itself.
    f[38..42].copy_from_slice(&ip.octets());
    f
}

/// An unsolicited neighbour advertisement for `ip` at `mac`.
pub fn unsolicited_na(mac: [u8; 6], ip: Ipv6Addr) -> Vec<u8> {
    const ICMP_LEN: usize = 32; // 24 bytes of NA + 8 of the target link-layer option
    let all_nodes: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
    let mut f = vec![0u8; 14 + 40 + ICMP_LEN];
    f[0..6].copy_from_slice(&[0x33, 0x33, 0, 0, 0, 1]);
    f[6..12].copy_from_slice(&mac);
    f[12..14].copy_from_slice(&0x86ddu16.to_be_bytes());
    let ip6 = &mut f[14..54];
    ip6[0] = 0x60;
    ip6[4..6].copy_from_slice(&(ICMP_LEN as u16).to_be_bytes());
    ip6[6] = 58; // ICMPv6
    ip6[7] = 255; // hop limit, as ND requires
    ip6[8..24].copy_from_slice(&ip.octets());
    ip6[24..40].copy_from_slice(&all_nodes.octets());
    let icmp = &mut f[54..];
    icmp[0] = 136; // neighbour advertisement
    icmp[4] = 0x20; // Override
    icmp[8..24].copy_from_slice(&ip.octets());
    icmp[24] = 2; // target link-layer address option
    icmp[25] = 1; // length in units of 8 bytes
    icmp[26..32].copy_from_slice(&mac);
    let len = (ICMP_LEN as u32).to_be_bytes();
    let sum = checksum(&[
        &ip.octets(),
        &all_nodes.octets(),
        &len,
        &[0, 0, 0, 58],
        &f[54..],
    ]);
    f[56..58].copy_from_slice(&sum.to_be_bytes());
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: [u8; 6] = [0x02, 0x78, 0x6c, 0, 0, 1];

    #[test]
    fn gratuitous_arp_announces_the_address_from_the_lagg_mac() {
        let f = gratuitous_arp(MAC, Ipv4Addr::new(10, 77, 0, 1));
        assert_eq!(f.len(), 60);
        assert_eq!(&f[0..6], &[0xff; 6]);
        assert_eq!(&f[12..14], &[0x08, 0x06]);
        assert_eq!(&f[20..22], &[0, 1], "request");
        assert_eq!(&f[22..28], &MAC);
        assert_eq!(&f[28..32], &[10, 77, 0, 1]);
        assert_eq!(&f[38..42], &[10, 77, 0, 1]);
    }

    #[test]
    fn unsolicited_na_has_override_option_and_a_valid_checksum() {
        let ip: Ipv6Addr = "2001:db8:77::1".parse().expect("v6");
        let f = unsolicited_na(MAC, ip);
        assert_eq!(&f[0..6], &[0x33, 0x33, 0, 0, 0, 1]);
        assert_eq!(f[14 + 7], 255, "hop limit");
        assert_eq!(f[54], 136);
        assert_eq!(f[58] & 0xe0, 0x20, "Override only");
        assert_eq!(&f[62..78], &ip.octets());
        assert_eq!(&f[80..86], &MAC);
        // The checksum over pseudo-header and message verifies to zero.
        let dst: Ipv6Addr = "ff02::1".parse().expect("v6");
        let len = 32u32.to_be_bytes();
        assert_eq!(
            checksum(&[&ip.octets(), &dst.octets(), &len, &[0, 0, 0, 58], &f[54..]]),
            0
        );
    }
}
