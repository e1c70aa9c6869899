//! `explain`: which member a flow leaves on now, and why, in the lagg's own terms (policy,
//! hash layers and bucket, the active set, lost marks, each idle member's reason and, on
//! lacp, its mux and partner). The placement itself is the data path's
//! ([`xlagg_dataplane::explain`]); this adds the names and the reasons.

use serde::Serialize;
use xlagg_dataplane::distribution::{MemberIndex, TxPolicy, BUCKETS, MAX_MEMBERS};
use xlagg_dataplane::explain::{place, proto_name, Flow, Leaves};

use super::monitors::LacpMonitor;
use super::Lagg;
use crate::config::{LaggProto, Upper};

/// One member as the explanation sees it.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct ExplainPort {
    /// Interface name.
    pub name: String,
    /// In the published table's active set.
    pub active: bool,
    /// Marked lost by the data path (its transmit failed); left until usable again.
    pub lost: bool,
    /// Why the distribution does not send on it, when it does not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idle: Option<String>,
    /// Buckets of the table it holds (hash policy).
    pub buckets: usize,
}

/// The answer to `explain`.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Explanation {
    /// The lagg.
    pub lagg: String,
    /// The flow's fields as understood (left-out fields absent).
    pub flow: serde_json::Map<String, serde_json::Value>,
    /// Its protocol.
    pub laggproto: String,
    /// Its engine.
    pub engine: String,
    /// Host (`laggN`) or forward mode.
    pub upper: String,
    /// The member the flow's frames leave on now; `None` when they leave on none, on every
    /// active member (broadcast) or on each in turn (roundrobin): see `members`.
    pub member: Option<String>,
    /// Every member the flow's frames leave on.
    pub members: Vec<String>,
    /// The flow hash (hash policy), as hex.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
    /// Its bucket, of `buckets`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bucket: Option<usize>,
    /// Buckets in the table.
    pub buckets: usize,
    /// The configured hash layers (`lagghash`).
    pub hash_layers: String,
    /// The configured layers this flow's fields feed.
    pub layers_used: Vec<&'static str>,
    /// The lagg's `hash_seed`.
    pub hash_seed: u32,
    /// The member the published table gives, before lost marks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub table_member: Option<String>,
    /// The active set, in configuration order.
    pub active: Vec<String>,
    /// Members marked lost by the data path.
    pub lost: Vec<String>,
    /// Every member.
    pub ports: Vec<ExplainPort>,
    /// The reasons, in words, one per line.
    pub why: Vec<String>,
}

impl Lagg {
    /// Members marked lost by the data path now (bit per slot).
    fn lost_mask(&self) -> u32 {
        self.lost
            .marked(self.members.len(), |i| self.set.member(i).retired)
    }

    /// Where `flow` leaves now, and why.
    pub fn explain(&self, flow: &Flow) -> Result<Explanation, String> {
        let frame = flow.frame()?;
        let table = self.table();
        let lost = self.lost_mask();
        let placed = place(&table, lost, &frame);
        let mut held = [0usize; MAX_MEMBERS];
        for &m in table.buckets() {
            if let Some(c) = held.get_mut(usize::from(m)) {
                *c += 1;
            }
        }
        let at = Explaining {
            active: table.active().iter().map(|&m| self.slot_name(m)).collect(),
            table,
            lost,
            placed,
            held,
        };
        let mut why = self.policy_reasons(&at, flow);
        why.extend(self.lost_reasons(&at));
        let ports = self.port_rows(&at, &mut why);
        let name = |m: MemberIndex| self.slot_name(m);
        let members: Vec<String> = match at.placed.leaves {
            Leaves::Nowhere => Vec::new(),
            Leaves::On(m) => vec![name(m)],
            Leaves::Everywhere | Leaves::InTurn => at
                .table
                .active()
                .iter()
                .filter(|&&m| usize::from(m) >= MAX_MEMBERS || lost & (1 << m) == 0)
                .map(|&m| name(m))
                .collect(),
        };
        let on = |l: Leaves| match l {
            Leaves::On(m) => Some(name(m)),
            _ => None,
        };
        Ok(Explanation {
            lagg: self.cfg.name.clone(),
            flow: flow_fields(flow),
            laggproto: self.cfg.proto.to_string(),
            engine: self.cfg.engine.to_string(),
            upper: match &self.cfg.upper {
                Upper::Host { .. } => "host".into(),
                Upper::Forward { port } => format!("forward {port}"),
            },
            member: on(at.placed.leaves),
            members,
            hash: at.placed.hash.map(|(h, _)| format!("{h:#010x}")),
            bucket: at.placed.hash.map(|(_, b)| b),
            buckets: BUCKETS,
            hash_layers: self.cfg.hash.to_string(),
            layers_used: match at.table.policy() {
                TxPolicy::Hash { layers } => flow.layers_used(layers),
                _ => Vec::new(),
            },
            hash_seed: self.cfg.hash_seed,
            table_member: on(at.placed.by_table),
            active: at.active,
            lost: (0..self.members.len().min(MAX_MEMBERS))
                .filter(|&i| lost & (1 << i) != 0)
                .map(|i| self.members[i].name.clone())
                .collect(),
            ports,
            why,
        })
    }

    /// Member slot `m`'s port name.
    fn slot_name(&self, m: MemberIndex) -> String {
        self.members
            .get(usize::from(m))
            .map_or_else(|| format!("slot {m}"), |p| p.name.clone())
    }

    /// Why the policy puts the flow where it does.
    fn policy_reasons(&self, at: &Explaining, flow: &Flow) -> Vec<String> {
        let proto = self.cfg.proto;
        let mut why = Vec::new();
        match (at.table.policy(), at.placed.hash) {
            (TxPolicy::Hash { layers }, Some((hash, bucket))) => {
                let used = flow.layers_used(layers);
                why.push(format!(
                    "{proto} hashes {layers} with hash_seed {}: this flow feeds {} -> hash {hash:#010x}, bucket {bucket} of {BUCKETS}",
                    self.cfg.hash_seed,
                    if used.is_empty() { "none of them".to_string() } else { used.join(",") },
                ));
                if used.len() < layers.to_string().split(',').count() {
                    why.push(format!(
                        "lagghash {layers}: a layer this flow does not have adds nothing (give its fields to see them hashed: l3 needs an address, l4 needs proto tcp, udp or sctp with ports)"
                    ));
                }
                if let Leaves::On(m) = at.placed.by_table {
                    why.push(format!(
                        "bucket {bucket} belongs to {} ({} of {BUCKETS} buckets; {} active)",
                        self.slot_name(m),
                        at.held[usize::from(m)],
                        at.active.len()
                    ));
                }
            }
            (TxPolicy::Failover, _) => why.push(format!(
                "failover sends every flow on the first active member in configuration order{}",
                match at.placed.by_table {
                    Leaves::On(m) => format!(": {}", self.slot_name(m)),
                    _ => String::new(),
                }
            )),
            (TxPolicy::Broadcast, _) => {
                why.push("broadcast sends a copy of every frame on every active member".into())
            }
            (TxPolicy::RoundRobin { limit }, _) => why.push(format!(
                "roundrobin sends the frames of every flow on each active member in turn, rr_limit {limit} at a time{}",
                if self.cfg.engine == crate::config::Engine::AfXdp {
                    " (counted per worker): its frames may arrive out of order"
                } else {
                    " (counted per CPU): its frames may arrive out of order"
                }
            )),
            (TxPolicy::None, _) => why.push("laggproto none sends nothing".into()),
            #[cfg(feature = "testing")]
            (TxPolicy::Fixed(m), _) => why.push(format!(
                "fixed to {} (a benchmark's setting)",
                self.slot_name(m)
            )),
            (TxPolicy::Hash { .. }, None) => {}
        }
        if at.active.is_empty() {
            why.push("no member is active, so the flow's frames are dropped".into());
        }
        why
    }

    /// Why the data path sends the flow elsewhere than the table says (a lost member).
    fn lost_reasons(&self, at: &Explaining) -> Option<String> {
        match (at.placed.by_table, at.placed.leaves) {
            (Leaves::On(from), Leaves::On(to)) if from != to => Some(format!(
                "{} is marked lost by the data path (a transmit failed on it): the flow leaves on {} until it is usable again",
                self.slot_name(from),
                self.slot_name(to)
            )),
            (Leaves::On(from), Leaves::Nowhere) => Some(format!(
                "{} is marked lost by the data path and no other active member is left: dropped",
                self.slot_name(from)
            )),
            _ => None,
        }
    }

    /// Every member's row, adding to `why` each one that is not active and why not.
    fn port_rows(&self, at: &Explaining, why: &mut Vec<String>) -> Vec<ExplainPort> {
        let proto = self.cfg.proto;
        let hashing = matches!(at.table.policy(), TxPolicy::Hash { .. });
        let lacp = self.monitors.lacp.as_ref().map(LacpMonitor::status);
        let mut ports = Vec::new();
        for (i, port) in self.members.iter().enumerate() {
            let member = self.set.member(i);
            if member.retired {
                continue;
            }
            let is_active = at.table.active().contains(&(i as MemberIndex));
            let mut idle = if is_active {
                None
            } else {
                member.why_idle(proto).or_else(|| match proto {
                    LaggProto::Failover => Some(format!(
                        "a backup: failover sends on {} first",
                        at.active.first().map_or("none", String::as_str)
                    )),
                    _ => None,
                })
            };
            if let (Some(text), Some(st)) = (idle.as_mut(), lacp.as_ref().and_then(|v| v.get(i))) {
                text.push_str(&format!(
                    " (mux {}, selected {}, partner {} {})",
                    st.mux, st.selected, st.partner, st.partner.state
                ));
            }
            if let Some(text) = &idle {
                why.push(format!("{} is not active: {text}", port.name));
            }
            ports.push(ExplainPort {
                name: port.name.clone(),
                active: is_active,
                lost: i < MAX_MEMBERS && at.lost & (1 << i) != 0,
                idle,
                buckets: if hashing && is_active { at.held[i] } else { 0 },
            });
        }
        for name in self.missing() {
            why.push(format!(
                "{name} is not active: no network interface of that name yet"
            ));
            ports.push(ExplainPort {
                name,
                active: false,
                lost: false,
                idle: Some("no network interface of that name yet".into()),
                buckets: 0,
            });
        }
        ports
    }
}

/// What `explain` works from: the table, the lost marks, where the flow goes, and each
/// member's share of the buckets.
struct Explaining {
    table: std::sync::Arc<xlagg_dataplane::distribution::DistributionTable>,
    lost: u32,
    placed: xlagg_dataplane::explain::Placement,
    held: [usize; MAX_MEMBERS],
    /// The active members' names, in table order.
    active: Vec<String>,
}

/// The flow's fields as given, in their canonical form.
fn flow_fields(flow: &Flow) -> serde_json::Map<String, serde_json::Value> {
    let mac = |m: [u8; 6]| {
        m.iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(":")
    };
    let mut out = serde_json::Map::new();
    let mut put = |k: &str, v: Option<serde_json::Value>| {
        if let Some(v) = v {
            out.insert(k.into(), v);
        }
    };
    put("src_mac", flow.src_mac.map(|m| mac(m).into()));
    put("dst_mac", flow.dst_mac.map(|m| mac(m).into()));
    put("vlan", flow.vlan.map(Into::into));
    put("src_ip", flow.src_ip.map(|a| a.to_string().into()));
    put("dst_ip", flow.dst_ip.map(|a| a.to_string().into()));
    put("proto", flow.proto.map(|p| proto_name(p).into()));
    put("src_port", flow.src_port.map(Into::into));
    put("dst_port", flow.dst_port.map(Into::into));
    out
}
