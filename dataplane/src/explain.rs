//! Where one flow leaves, and why: `xlaggctl laggN explain` and the API's `explain`.
//!
//! A flow given by its header fields (any of them may be left out) becomes the frame that
//! carries it, and that frame goes through the same code as the frames themselves: the shared
//! flow hash (`xlagg_common::hash`, which the XDP and tc programs run too), the published
//! [`DistributionTable`] and [`distribute`]. So the answer cannot drift from the data path: a
//! change to the hash or the table changes both.
//!
//! A member marked lost by the data path (its transmit failed; the control thread has not
//! republished yet) is left the way the workers leave it: the flow takes its place in the
//! table without the lost members, which is also the table the control thread publishes next.

use std::net::IpAddr;

use crate::distribution::{
    distribute, DistributionTable, Egress, MemberIndex, RoundRobinCursor, TxPolicy, BUCKETS,
    MAX_MEMBERS,
};
use crate::flow::{hash_frame, HashLayers};

const IPPROTO_TCP: u8 = 6;
const IPPROTO_UDP: u8 = 17;
const IPPROTO_SCTP: u8 = 132;
/// The ethertype of a frame with no IP header (IEEE 802 local experimental): hashed on l2.
const ETHERTYPE_LOCAL: u16 = 0x88b5;

/// The header fields of one flow, as an operator names them. `None`: left out (zero in the
/// frame, so it hashes as a frame whose field is zero).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Flow {
    /// Source MAC.
    pub src_mac: Option<[u8; 6]>,
    /// Destination MAC.
    pub dst_mac: Option<[u8; 6]>,
    /// 802.1Q VLAN id (1 to 4094).
    pub vlan: Option<u16>,
    /// Source IPv4 or IPv6 address.
    pub src_ip: Option<IpAddr>,
    /// Destination IPv4 or IPv6 address.
    pub dst_ip: Option<IpAddr>,
    /// IP protocol number.
    pub proto: Option<u8>,
    /// TCP, UDP or SCTP source port.
    pub src_port: Option<u16>,
    /// TCP, UDP or SCTP destination port.
    pub dst_port: Option<u16>,
}

/// The field names [`Flow::parse`] takes, in the order they are shown.
pub const FIELDS: [&str; 8] = [
    "src_mac", "dst_mac", "vlan", "src_ip", "dst_ip", "proto", "src_port", "dst_port",
];

fn mac(text: &str) -> Option<[u8; 6]> {
    let mut out = [0u8; 6];
    let mut parts = text.split([':', '-']);
    for byte in &mut out {
        let p = parts.next()?;
        if p.is_empty() || p.len() > 2 {
            return None;
        }
        *byte = u8::from_str_radix(p, 16).ok()?;
    }
    parts.next().is_none().then_some(out)
}

fn proto(text: &str) -> Option<u8> {
    match text.to_ascii_lowercase().as_str() {
        "tcp" => Some(IPPROTO_TCP),
        "udp" => Some(IPPROTO_UDP),
        "sctp" => Some(IPPROTO_SCTP),
        "icmp" => Some(1),
        "icmp6" | "ipv6-icmp" => Some(58),
        n => n.parse().ok(),
    }
}

/// The name of an IP protocol number, where it has one here.
pub fn proto_name(proto: u8) -> String {
    match proto {
        IPPROTO_TCP => "tcp".into(),
        IPPROTO_UDP => "udp".into(),
        IPPROTO_SCTP => "sctp".into(),
        1 => "icmp".into(),
        58 => "icmp6".into(),
        n => n.to_string(),
    }
}

impl Flow {
    /// A flow from `name=value` pairs (the query string's, or the CLI's words). Empty values
    /// count as left out.
    ///
    /// # Errors
    /// Names the field that is unknown, repeated or malformed, or the combination that
    /// cannot be one frame (ports without a protocol that has them, addresses of two
    /// families), with what to give instead.
    pub fn parse<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Flow, String> {
        let mut flow = Flow::default();
        let mut seen = Vec::new();
        for (name, value) in pairs {
            let value = value.trim();
            if value.is_empty() {
                continue;
            }
            if seen.contains(&name) {
                return Err(format!("{name} is given twice: give each field once"));
            }
            seen.push(name);
            let bad = |what: &str| format!("{name}={value}: not {what}");
            match name {
                "src_mac" => {
                    flow.src_mac = Some(
                        mac(value).ok_or_else(|| bad("a MAC address such as 02:00:00:00:00:01"))?,
                    )
                }
                "dst_mac" => {
                    flow.dst_mac = Some(
                        mac(value).ok_or_else(|| bad("a MAC address such as 02:00:00:00:00:01"))?,
                    )
                }
                "vlan" => {
                    flow.vlan = Some(
                        value
                            .parse()
                            .ok()
                            .filter(|v| (1..=4094).contains(v))
                            .ok_or_else(|| bad("a VLAN id from 1 to 4094"))?,
                    )
                }
                "src_ip" => {
                    flow.src_ip = Some(value.parse().map_err(|_| bad("an IPv4 or IPv6 address"))?)
                }
                "dst_ip" => {
                    flow.dst_ip = Some(value.parse().map_err(|_| bad("an IPv4 or IPv6 address"))?)
                }
                "proto" => {
                    flow.proto = Some(proto(value).ok_or_else(|| {
                        bad("tcp, udp, sctp, icmp, icmp6 or a protocol number from 0 to 255")
                    })?)
                }
                "src_port" => {
                    flow.src_port = Some(value.parse().map_err(|_| bad("a port from 0 to 65535"))?)
                }
                "dst_port" => {
                    flow.dst_port = Some(value.parse().map_err(|_| bad("a port from 0 to 65535"))?)
                }
                other => {
                    return Err(format!(
                        "unknown flow field '{other}': use any of {}",
                        FIELDS.join(", ")
                    ))
                }
            }
        }
        flow.frame().map(|_| flow)
    }

    /// Whether the flow has an IP header.
    fn ip(&self) -> Option<(IpAddr, IpAddr)> {
        match (self.src_ip, self.dst_ip) {
            (None, None) => None,
            (Some(IpAddr::V4(s)), None) => Some((s.into(), std::net::Ipv4Addr::UNSPECIFIED.into())),
            (None, Some(IpAddr::V4(d))) => Some((std::net::Ipv4Addr::UNSPECIFIED.into(), d.into())),
            (Some(IpAddr::V6(s)), None) => Some((s.into(), std::net::Ipv6Addr::UNSPECIFIED.into())),
            (None, Some(IpAddr::V6(d))) => Some((std::net::Ipv6Addr::UNSPECIFIED.into(), d.into())),
            (Some(s), Some(d)) => Some((s, d)),
        }
    }

    /// Whether the flow's frames carry ports the hash reads.
    fn has_ports(&self) -> bool {
        matches!(self.proto, Some(IPPROTO_TCP | IPPROTO_UDP | IPPROTO_SCTP))
    }

    /// The frame that carries this flow, as it leaves: Ethernet, the 802.1Q tag, then IPv4
    /// or IPv6 and the ports where the flow has them.
    ///
    /// # Errors
    /// The fields do not make one frame (see [`Flow::parse`]).
    pub fn frame(&self) -> Result<Vec<u8>, String> {
        let mut f = Vec::with_capacity(80);
        f.extend_from_slice(&self.dst_mac.unwrap_or_default());
        f.extend_from_slice(&self.src_mac.unwrap_or_default());
        if let Some(vlan) = self.vlan {
            f.extend_from_slice(&0x8100u16.to_be_bytes());
            f.extend_from_slice(&vlan.to_be_bytes());
        }
        if (self.src_port.is_some() || self.dst_port.is_some()) && !self.has_ports() {
            return Err(
                "ports need proto=tcp, proto=udp or proto=sctp (only those carry ports the hash reads)"
                    .into(),
            );
        }
        let Some((src, dst)) = self.ip() else {
            if self.proto.is_some() || self.src_port.is_some() || self.dst_port.is_some() {
                return Err("proto and ports need an address: give src_ip or dst_ip".into());
            }
            f.extend_from_slice(&ETHERTYPE_LOCAL.to_be_bytes());
            f.resize(60, 0);
            return Ok(f);
        };
        let proto = self.proto.unwrap_or(0);
        let l4 = [
            self.src_port.unwrap_or(0).to_be_bytes(),
            self.dst_port.unwrap_or(0).to_be_bytes(),
        ]
        .concat();
        match (src, dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                f.extend_from_slice(&0x0800u16.to_be_bytes());
                let total = 20u16 + 8;
                f.extend_from_slice(&[0x45, 0]);
                f.extend_from_slice(&total.to_be_bytes());
                // Identification, flags and fragment offset 0 (not a fragment), TTL 64.
                f.extend_from_slice(&[0, 0, 0, 0, 64, proto, 0, 0]);
                f.extend_from_slice(&s.octets());
                f.extend_from_slice(&d.octets());
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                f.extend_from_slice(&0x86ddu16.to_be_bytes());
                f.extend_from_slice(&[0x60, 0, 0, 0]);
                f.extend_from_slice(&8u16.to_be_bytes());
                f.extend_from_slice(&[proto, 64]);
                f.extend_from_slice(&s.octets());
                f.extend_from_slice(&d.octets());
            }
            _ => {
                return Err(
                    "src_ip and dst_ip are of two families: give two IPv4 or two IPv6 addresses"
                        .into(),
                )
            }
        }
        f.extend_from_slice(&l4);
        f.extend_from_slice(&[0; 4]);
        f.resize(f.len().max(60), 0);
        Ok(f)
    }

    /// The configured layers that this flow's fields feed (`l2`, `l3`, `l4`): l2 always
    /// (MACs, VLAN id), l3 with an address, l4 with ports of TCP, UDP or SCTP.
    pub fn layers_used(&self, layers: HashLayers) -> Vec<&'static str> {
        let has = [
            true,
            self.ip().is_some(),
            self.ip().is_some() && self.has_ports(),
        ];
        [
            (HashLayers::L2, "l2"),
            (HashLayers::L3, "l3"),
            (HashLayers::L4, "l4"),
        ]
        .into_iter()
        .zip(has)
        .filter(|((layer, _), has)| *has && layers.contains(*layer))
        .map(|((_, name), _)| name)
        .collect()
    }
}

/// Where a flow leaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Leaves {
    /// Nowhere: no active member, or protocol `none`.
    Nowhere,
    /// On one member.
    On(MemberIndex),
    /// A copy on every active member (broadcast).
    Everywhere,
    /// On each active member in turn (round-robin), whatever the flow.
    InTurn,
}

/// The answer for one flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Placement {
    /// The flow hash and its bucket, for the hash policy.
    pub hash: Option<(u32, usize)>,
    /// Where the published table sends it.
    pub by_table: Leaves,
    /// Where it leaves now: `by_table`, unless that member is marked lost.
    pub leaves: Leaves,
}

fn leaves(table: &DistributionTable, frame: &[u8]) -> Leaves {
    if matches!(table.policy(), TxPolicy::RoundRobin { .. }) && !table.active().is_empty() {
        return Leaves::InTurn;
    }
    let mut out = [Egress::Drop];
    distribute(table, &mut RoundRobinCursor::default(), &[frame], &mut out);
    match out[0] {
        Egress::Drop => Leaves::Nowhere,
        Egress::Port(m) => Leaves::On(m),
        Egress::AllActive => Leaves::Everywhere,
    }
}

/// Where `frame` leaves by `table` while the members in `lost` (bit per member slot) are
/// marked lost by the data path.
pub fn place(table: &DistributionTable, lost: u32, frame: &[u8]) -> Placement {
    let hash = match table.policy() {
        TxPolicy::Hash { layers } => {
            let h = hash_frame(frame, layers, table.seed());
            Some((h, h as usize & (BUCKETS - 1)))
        }
        _ => None,
    };
    let by_table = leaves(table, frame);
    let is_lost = |m: MemberIndex| usize::from(m) < MAX_MEMBERS && lost & (1 << m) != 0;
    let leaves = match by_table {
        Leaves::On(m) if is_lost(m) => {
            let rest: Vec<MemberIndex> = table
                .active()
                .iter()
                .copied()
                .filter(|&a| !is_lost(a))
                .collect();
            self::leaves(&table.with_active(&rest), frame)
        }
        other => other,
    };
    Placement {
        hash,
        by_table,
        leaves,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::tests::udp4;

    fn pairs(text: &str) -> Vec<(&str, &str)> {
        text.split_whitespace()
            .map(|w| w.split_once('=').unwrap_or((w, "")))
            .collect()
    }

    fn table(members: &[MemberIndex]) -> DistributionTable {
        DistributionTable::new(
            TxPolicy::Hash {
                layers: HashLayers::DEFAULT,
            },
            crate::distribution::flow_seed(0),
        )
        .with_active(members)
    }

    #[test]
    fn a_flow_builds_the_frame_another_builder_makes() {
        let flow = Flow::parse(pairs(
            "src_mac=02:00:00:00:00:01 dst_mac=02-00-00-00-00-02 src_ip=10.0.0.1 \
             dst_ip=10.0.1.1 proto=UDP src_port=4000 dst_port=9",
        ))
        .expect("flow");
        let mine = flow.frame().expect("frame");
        let theirs = udp4([10, 0, 0, 1], [10, 0, 1, 1], 4000, 9);
        for layers in ["l2", "l3", "l4", "l2,l3,l4"] {
            let layers = HashLayers::parse(layers).expect("layers");
            for seed in [0, 1, 0xdead_beef] {
                assert_eq!(
                    hash_frame(&mine, layers, seed),
                    hash_frame(&theirs, layers, seed),
                    "{layers} {seed}"
                );
            }
        }
    }

    #[test]
    fn placement_agrees_with_the_distribution_of_the_frame() {
        let t = table(&[0, 1, 2, 3]);
        for port in 0..200u16 {
            let frame = udp4([10, 0, 0, 1], [10, 0, 1, 1], port, 9);
            let flow = Flow {
                src_mac: Some([2, 0, 0, 0, 0, 1]),
                dst_mac: Some([2, 0, 0, 0, 0, 2]),
                src_ip: Some([10, 0, 0, 1].into()),
                dst_ip: Some([10, 0, 1, 1].into()),
                proto: Some(17),
                src_port: Some(port),
                dst_port: Some(9),
                vlan: None,
            };
            let mut out = [Egress::Drop];
            distribute(&t, &mut RoundRobinCursor::default(), &[&frame], &mut out);
            let p = place(&t, 0, &flow.frame().expect("frame"));
            let Egress::Port(m) = out[0] else {
                panic!("a port")
            };
            assert_eq!(p.leaves, Leaves::On(m));
            assert_eq!(p.by_table, Leaves::On(m));
            let (_, bucket) = p.hash.expect("hashed");
            assert_eq!(t.buckets()[bucket], m);
        }
    }

    #[test]
    fn a_lost_member_is_left_for_the_table_without_it() {
        let t = table(&[0, 1, 2, 3]);
        let flows: Vec<Flow> = (0..100u16)
            .map(|p| Flow {
                src_ip: Some([10, 0, 0, 1].into()),
                dst_ip: Some([10, 0, 1, 1].into()),
                proto: Some(6),
                src_port: Some(p),
                dst_port: Some(80),
                ..Flow::default()
            })
            .collect();
        let without = t.with_active(&[0, 1, 3]);
        let mut moved = 0;
        for flow in &flows {
            let frame = flow.frame().expect("frame");
            let p = place(&t, 1 << 2, &frame);
            assert_eq!(p.leaves, place(&without, 0, &frame).leaves);
            if p.by_table == Leaves::On(2) {
                moved += 1;
                assert_ne!(p.leaves, Leaves::On(2));
            } else {
                assert_eq!(p.leaves, p.by_table, "only the lost member's flows move");
            }
        }
        assert!(moved > 0);
    }

    #[test]
    fn other_policies_say_where_every_flow_goes() {
        let frame = Flow::default().frame().expect("frame");
        let with = |policy| DistributionTable::new(policy, 0).with_active(&[1, 2]);
        assert_eq!(
            place(&with(TxPolicy::Failover), 0, &frame).leaves,
            Leaves::On(1)
        );
        assert_eq!(
            place(&with(TxPolicy::Failover), 1 << 1, &frame).leaves,
            Leaves::On(2)
        );
        assert_eq!(
            place(&with(TxPolicy::Broadcast), 0, &frame).leaves,
            Leaves::Everywhere
        );
        assert_eq!(
            place(&with(TxPolicy::RoundRobin { limit: 2 }), 0, &frame).leaves,
            Leaves::InTurn
        );
        assert_eq!(
            place(&with(TxPolicy::None), 0, &frame).leaves,
            Leaves::Nowhere
        );
        let empty = DistributionTable::new(TxPolicy::Failover, 0);
        assert_eq!(place(&empty, 0, &frame).leaves, Leaves::Nowhere);
        assert_eq!(
            place(&with(TxPolicy::Failover), 0b110, &frame).leaves,
            Leaves::Nowhere
        );
    }

    #[test]
    fn vlan_and_ipv6_flows_hash_as_their_frames() {
        let flow = Flow::parse(pairs(
            "vlan=100 src_ip=2001:db8::1 dst_ip=2001:db8::2 proto=tcp src_port=1 dst_port=2",
        ))
        .expect("flow");
        let f = flow.frame().expect("frame");
        assert_eq!(&f[12..16], &[0x81, 0x00, 0, 100]);
        assert_eq!(&f[16..18], &[0x86, 0xdd]);
        assert_eq!(f[18 + 6], 6, "next header");
        assert_eq!(
            &f[18 + 40..18 + 44],
            &[0, 1, 0, 2],
            "ports after the fixed header"
        );
        let other = Flow {
            src_port: Some(3),
            ..flow.clone()
        };
        let l4 = HashLayers::L4;
        assert_ne!(
            hash_frame(&f, l4, 0),
            hash_frame(&other.frame().expect("frame"), l4, 0),
            "the ports are read behind the tag and the IPv6 header"
        );
        assert_eq!(flow.layers_used(HashLayers::DEFAULT), ["l2", "l3", "l4"]);
        let no_ports = Flow::parse(pairs("src_ip=10.0.0.1 proto=icmp")).expect("flow");
        assert_eq!(no_ports.layers_used(HashLayers::DEFAULT), ["l2", "l3"]);
        let l3l4 = HashLayers::L3.with(HashLayers::L4);
        assert!(Flow::default().layers_used(l3l4).is_empty());
    }

    #[test]
    fn bad_fields_are_named_with_what_to_give() {
        for (text, expect) in [
            ("src_mac=02:00", "src_mac=02:00: not a MAC address"),
            ("vlan=4095", "vlan=4095: not a VLAN id from 1 to 4094"),
            (
                "src_ip=10.0.0.300",
                "src_ip=10.0.0.300: not an IPv4 or IPv6 address",
            ),
            ("proto=quic", "proto=quic: not tcp, udp"),
            ("src_port=65536", "src_port=65536: not a port"),
            (
                "colour=blue",
                "unknown flow field 'colour': use any of src_mac",
            ),
            ("vlan=1 vlan=2", "vlan is given twice"),
            (
                "src_ip=10.0.0.1 proto=icmp dst_port=80",
                "ports need proto=tcp",
            ),
            ("proto=tcp src_port=1", "proto and ports need an address"),
            ("src_ip=10.0.0.1 dst_ip=::1", "two families"),
        ] {
            let e = Flow::parse(pairs(text)).expect_err(text);
            assert!(e.starts_with(expect) || e.contains(expect), "{text}: {e}");
        }
        assert_eq!(Flow::parse(pairs("vlan= src_ip=")), Ok(Flow::default()));
    }
}
