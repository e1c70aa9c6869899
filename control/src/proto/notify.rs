//! Peer notification frames: after the active port changes, tell the network where the lagg's
//! addresses are now, so switches relearn the MAC on the new port at once instead of waiting for
//! their tables to age (FreeBSD lagg sends nothing, and its users see slow failovers).
//!
//! - IPv4: a gratuitous ARP request per address (sender and target address both the address,
//!   broadcast), as Linux bonding and `arping -U` send it;
//! - IPv6: an unsolicited neighbour advertisement per address (RFC 4861 7.2.6: to ff02::1,
//!   hop limit 255, Override set, Solicited clear, with the target link-layer address option);
//! - forward mode: a learning frame per MAC seen downstream (from and to the MAC, ethertype
//!   0x9000), as Linux bonding sends them; switches learn the source where it arrives.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::wire::{emit_ipv6, ethertype, protocol, ArpRepr, Ethernet, Ipv6, NdRepr};

/// Smallest Ethernet frame without FCS.
const MIN_FRAME: usize = 60;

/// A gratuitous ARP request for `ip` at `mac`: sender and target address both `ip`, target
/// hardware address zero.
pub fn gratuitous_arp(mac: [u8; 6], ip: Ipv4Addr) -> Vec<u8> {
    let mut f = vec![0u8; MIN_FRAME];
    if let Some(mut eth) = Ethernet::new_checked(&mut f[..]) {
        eth.emit([0xff; 6], mac, ethertype::ARP);
        ArpRepr {
            operation: ArpRepr::REQUEST,
            sha: mac,
            spa: ip,
            tha: [0; 6],
            tpa: ip,
        }
        .emit(eth.payload_mut());
    }
    f
}

/// A learning frame for `mac`: from and to the MAC itself, ethertype 0x9000 (loopback).
pub fn learning_frame(mac: [u8; 6]) -> Vec<u8> {
    let mut f = vec![0u8; MIN_FRAME];
    if let Some(mut eth) = Ethernet::new_checked(&mut f[..]) {
        eth.emit(mac, mac, ethertype::LOOPBACK);
    }
    f
}

/// An unsolicited neighbour advertisement for `ip` at `mac`.
pub fn unsolicited_na(mac: [u8; 6], ip: Ipv6Addr) -> Vec<u8> {
    let all_nodes: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
    let mut f = vec![0u8; Ethernet::LEN + Ipv6::LEN + NdRepr::LEN];
    if let Some(mut eth) = Ethernet::new_checked(&mut f[..]) {
        eth.emit([0x33, 0x33, 0, 0, 0, 1], mac, ethertype::IPV6);
        let ip6 = eth.payload_mut();
        // Hop limit 255, as neighbour discovery requires.
        emit_ipv6(ip6, ip, all_nodes, protocol::ICMPV6, 255, NdRepr::LEN);
        NdRepr {
            kind: NdRepr::ADVERTISEMENT,
            flags: NdRepr::OVERRIDE,
            target: ip,
            option: 2, // target link-layer address
            mac,
        }
        .emit(&mut ip6[Ipv6::LEN..], ip, all_nodes);
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_learning_frame_is_from_and_to_the_mac() {
        let mac = [2, 0, 0, 0, 0, 9];
        let f = learning_frame(mac);
        assert_eq!(f.len(), 60);
        let eth = Ethernet::new_checked(&f[..]).unwrap();
        assert_eq!((eth.dst(), eth.src()), (mac, mac));
        assert_eq!(&f[12..14], &[0x90, 0x00]);
        assert!(eth.payload().iter().all(|&b| b == 0));
    }
    use xlagg_common::checksum::checksum;

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
