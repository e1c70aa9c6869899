//! Changing a running lagg in place: members leaving and joining (each taking or giving up
//! only its share of the buckets, the other flows untouched), laggN's addresses, and the
//! settings the member set takes at run time. Anything else restarts the lagg (the daemon
//! decides with [`Lagg::can_change_ports_in_place`]).

use super::bringup::restore_port;
use super::monitors::put;
use super::{host_peer_name, rules_for, Lagg, LaggError};
use crate::config::{LaggConfig, LaggProto, Upper};
use crate::runtime::members::Verdict;
use crate::sys::netdev::Netlink;
use std::time::Instant;
use xlagg_dataplane::distribution::flow_seed;
use xlagg_dataplane::worker;

/// What [`Lagg::reconcile_members`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reconciled {
    /// Every configured member whose device exists is attached, to that device.
    Unchanged,
    /// Members joined or left, in words.
    Changed(Vec<String>),
    /// The lagg must restart to take its members in their configured order.
    Restart,
}

impl Lagg {
    /// Whether `new` differs from this lagg's configuration only in what
    /// [`set_ports`](Self::set_ports) applies in place: the member list (and per-port LACP
    /// priorities), the host interface's addresses, the MTU (unless it rises beyond one UMEM
    /// frame on sockets bound without multi-buffer), the description, updelay/downdelay, the
    /// peer-notification settings and the hash seed.
    pub fn can_change_ports_in_place(&self, new: &LaggConfig) -> bool {
        let neutral = |c: &LaggConfig| {
            let mut c = c.clone();
            c.ports.clear();
            c.lacp.port_priorities.clear();
            if let Upper::Host { addresses } = &mut c.upper {
                addresses.clear();
            }
            c.description.clear();
            c.updelay_ms = 0;
            c.downdelay_ms = 0;
            c.notify_count = 0;
            c.notify_interval_ms = 0;
            c.hash_seed = 0;
            // The sockets carry chains already, or the new MTU fits a frame.
            if self.path.multi_buffer() || new.mtu <= worker::single_frame_mtu() {
                c.mtu = 0;
            }
            c
        };
        let (a, b) = (neutral(&self.cfg), neutral(new));
        a == b
            && a.proto != LaggProto::None
            && self
                .members
                .iter()
                .enumerate()
                .any(|(i, p)| !self.set.member(i).retired && new.ports.contains(&p.name))
            // Failover's order is its priority: it must come out as configured. The other
            // protocols only show the order (a returning member may take a freed slot).
            && self
                .slots_after(new)
                .is_some_and(|order| a.proto != LaggProto::Failover || order == new.ports)
    }

    /// The member names in slot order after [`set_ports`](Self::set_ports) applied `new`
    /// (members that leave free their slots, joining ones take the first free slot, else the
    /// next); `None` when the slots would run out.
    fn slots_after(&self, new: &LaggConfig) -> Option<Vec<String>> {
        let mut slots: Vec<Option<String>> = self
            .members
            .iter()
            .enumerate()
            .map(|(i, p)| {
                (!self.set.member(i).retired && new.ports.contains(&p.name)).then(|| p.name.clone())
            })
            .collect();
        for name in &new.ports {
            if slots.iter().flatten().any(|n| n == name) {
                continue;
            }
            match slots.iter().position(Option::is_none) {
                Some(free) => slots[free] = Some(name.clone()),
                None => slots.push(Some(name.clone())),
            }
        }
        (slots.len() <= xlagg_dataplane::distribution::MAX_MEMBERS)
            .then(|| slots.into_iter().flatten().collect())
    }

    /// Applies a new member list in place (hot membership): members that left are taken out
    /// of the table, their programs detached and their sockets retired in every worker; new
    /// ones get a program, a socket per worker and join the table taking only their share.
    /// Flows on the other members are not touched. Returns what changed, in words.
    ///
    /// # Errors
    /// A device, socket or map failure; a member that failed to join is undone.
    pub fn set_ports(&mut self, nl: &Netlink, new: &LaggConfig) -> Result<Vec<String>, LaggError> {
        let now = Instant::now();
        let mut done = Vec::new();
        // Members are taken by name: one whose device is gone, or was made anew under its
        // name (a driver reload, a re-plugged NIC: another ifindex), leaves, and a configured
        // member whose device exists joins. The others are missing until their device appears.
        let mut devices = std::collections::BTreeMap::new();
        for name in &new.ports {
            if let Some(link) = nl.link(name)? {
                devices.insert(name.clone(), link.index);
            }
        }
        done.extend(self.leave_gone(new, &devices, now)?);
        done.extend(self.join_present(nl, new, &devices, now)?);
        done.extend(self.change_addresses(nl, new)?);
        if new.mtu != self.cfg.mtu {
            self.set_mtu(nl, new.mtu, now)?;
            done.push(format!("mtu {}", new.mtu));
        }
        let reseeded = new.hash_seed != self.cfg.hash_seed;
        self.cfg = new.clone();
        self.set.set_rules(rules_for(new));
        // New members' link state: joining the table takes only their share of buckets.
        self.refresh_links(nl, now)?;
        self.publish(&[], false, now)?;
        if reseeded {
            done.push(self.reseed()?);
        }
        Ok(done)
    }

    /// Members whose device is gone or was made anew, or that left the configuration: out
    /// of the monitors, the table and the workers. Returns what changed, in words.
    fn leave_gone(
        &mut self,
        new: &LaggConfig,
        devices: &std::collections::BTreeMap<String, u32>,
        now: Instant,
    ) -> Result<Vec<String>, LaggError> {
        let mut done = Vec::new();
        // Leaving.
        let leaving: Vec<usize> = self
            .members
            .iter()
            .enumerate()
            .filter(|(i, p)| {
                !self.set.member(*i).retired && devices.get(&p.name) != Some(&p.ifindex)
            })
            .map(|(i, _)| i)
            .collect();
        for &i in &leaving {
            self.set.leave(i);
            for monitor in self.monitors.all_mut() {
                monitor.leave_slot(i, now);
            }
        }
        if !leaving.is_empty() {
            self.drain_lacp(now)?;
            // Out of the table and not collecting, before the sockets go.
            self.publish(&leaving, false, now)?;
            for &i in &leaving {
                restore_port(&mut self.members[i]);
                self.path.remove_port(i, &self.members[i].name);
                let name = self.members[i].name.clone();
                let text = if !new.ports.contains(&name) {
                    "member left".to_string()
                } else if devices.contains_key(&name) {
                    format!("member's device {name} was made anew: taken again")
                } else {
                    format!("member missing: its device {name} is gone; the others carry its flows until it appears")
                };
                tracing::info!(lagg = %self.cfg.name, port = %name, "{text}");
                self.event("config", Some(name.clone()), text);
                done.push(format!("-laggport {name}"));
            }
        }
        Ok(done)
    }

    /// Configured members whose device exists and that are not members yet: each takes a
    /// free slot, its program, socket and monitors. Returns what changed, in words.
    fn join_present(
        &mut self,
        nl: &Netlink,
        new: &LaggConfig,
        devices: &std::collections::BTreeMap<String, u32>,
        now: Instant,
    ) -> Result<Vec<String>, LaggError> {
        let mut done = Vec::new();
        // Joining, at the end: the configured members whose device exists.
        for name in new.ports.iter().filter(|n| devices.contains_key(*n)) {
            if self
                .members
                .iter()
                .enumerate()
                .any(|(i, p)| &p.name == name && !self.set.member(i).retired)
            {
                continue;
            }
            // A departed member's slot is reused (the workers closed its socket); otherwise the
            // next one.
            let slot = (0..self.members.len())
                .find(|&i| self.set.member(i).retired)
                .unwrap_or(self.members.len());
            self.set.join(slot, name);
            let mut port = match self.attach_port(nl, name, Some(slot)) {
                Ok(p) => p,
                Err(e) => {
                    self.set.leave(slot);
                    return Err(e);
                }
            };
            if let Err(detail) = self.path.add_port(slot, &mut port) {
                restore_port(&mut port);
                self.set.leave(slot);
                return Err(LaggError::Socket {
                    lagg: self.cfg.name.clone(),
                    port: name.clone(),
                    queue: 0,
                    detail,
                });
            }
            if let Some(lacp) = self.monitors.lacp.as_mut() {
                lacp.join(new, slot, &port, now);
            }
            if let Some(bfd) = self.monitors.bfd.as_mut() {
                bfd.join(slot, &port, now);
                self.set.set_verdict(slot, Verdict::Bfd, false);
            }
            if let Some(probe) = self.monitors.probe.as_mut() {
                probe.join(slot, &mut port)?;
                self.set.set_verdict(slot, Verdict::Probe, false);
            }
            self.announcer.forget(slot);
            self.lost.join(slot);
            put(&mut self.members, slot, port);
            tracing::info!(lagg = %self.cfg.name, port = %name, slot, "member joined");
            self.event("config", Some(name.clone()), "member joined".into());
            done.push(format!("laggport {name}"));
        }
        Ok(done)
    }

    /// laggN's addresses as `new` has them. Returns what changed, in words.
    fn change_addresses(
        &mut self,
        nl: &Netlink,
        new: &LaggConfig,
    ) -> Result<Vec<String>, LaggError> {
        let mut done = Vec::new();
        // The host interface's addresses: remove what went, add what came.
        if let (Upper::Host { addresses: old }, Upper::Host { addresses: want }) =
            (&self.cfg.upper, &new.upper)
        {
            let host = nl.require(&self.cfg.name)?;
            for (addr, prefix) in old.iter().filter(|a| !want.contains(a)) {
                nl.delete_address(host.index, *addr)?;
                done.push(format!("-alias {addr}/{prefix}"));
            }
            for (addr, prefix) in want.iter().filter(|a| !old.contains(a)) {
                nl.add_address(host.index, *addr, *prefix)?;
                done.push(format!("alias {addr}/{prefix}"));
            }
        }
        Ok(done)
    }

    /// Hashes with the configured `hash_seed` from now on: flows move once, each to the member
    /// its new bucket has. Says how many, in words (also on the timeline).
    ///
    /// # Errors
    /// The XDP engine's maps refused the table (the old seed stays in force there).
    fn reseed(&mut self) -> Result<String, LaggError> {
        let current = self.path.table();
        let share = current.moved_share();
        let text = format!(
            "hash_seed {}: flows rehashed, about {:.0}% of them to another member ({} active)",
            self.cfg.hash_seed,
            share * 100.0,
            current.active().len()
        );
        self.path
            .publish(current.with_seed(flow_seed(self.cfg.hash_seed)))?;
        tracing::info!(lagg = %self.cfg.name, "{text}");
        self.event("config", None, text.clone());
        Ok(text)
    }

    /// The configured members that are not attached: their device does not exist (yet).
    pub fn missing(&self) -> Vec<String> {
        self.cfg
            .ports
            .iter()
            .filter(|n| {
                !self
                    .members
                    .iter()
                    .enumerate()
                    .any(|(i, p)| &p.name == *n && !self.set.member(i).retired)
            })
            .cloned()
            .collect()
    }

    /// Takes in the configured members whose device appeared and lets go of those whose device
    /// went or was made anew, in place (see [`set_ports`](Self::set_ports)). A failover lagg
    /// whose members would come out of their configured order (its master came back) asks to
    /// be restarted instead: its order is its priority.
    ///
    /// # Errors
    /// A device, socket or map failure.
    pub fn reconcile_members(&mut self, nl: &Netlink) -> Result<Reconciled, LaggError> {
        let cfg = self.cfg.clone();
        let present = super::bringup::present_ports(nl, &cfg.ports)?;
        let attached: Vec<(String, u32)> = self
            .members
            .iter()
            .enumerate()
            .filter(|(i, _)| !self.set.member(*i).retired)
            .map(|(_, p)| (p.name.clone(), p.ifindex))
            .collect();
        let mut names: Vec<&String> = attached.iter().map(|(n, _)| n).collect();
        names.sort();
        let mut wanted: Vec<&String> = present.iter().collect();
        wanted.sort();
        let mut unchanged = names == wanted;
        for (name, index) in &attached {
            unchanged &= nl.link(name)?.is_some_and(|l| l.index == *index);
        }
        if unchanged {
            return Ok(Reconciled::Unchanged);
        }
        if present.is_empty() {
            // Nothing to run on: the members' links are down already; keep what is attached
            // until a device comes back.
            return Ok(Reconciled::Unchanged);
        }
        if cfg.proto == LaggProto::Failover {
            let mut probe = cfg.clone();
            probe.ports = present.clone();
            if self
                .slots_after(&probe)
                .is_none_or(|order| order != present)
            {
                return Ok(Reconciled::Restart);
            }
        }
        let done = self.set_ports(nl, &cfg)?;
        Ok(if done.is_empty() {
            Reconciled::Unchanged
        } else {
            Reconciled::Changed(done)
        })
    }

    /// Changes the MTU of a running lagg: laggN and its peer in host mode (the larger side
    /// first, so neither end ever takes frames the other cannot), then each member's verdict
    /// against the new MTU (the preflight refused members below it; one lowered since is
    /// taken out).
    fn set_mtu(&mut self, nl: &Netlink, mtu: u32, now: Instant) -> Result<(), LaggError> {
        if let Upper::Host { .. } = self.cfg.upper {
            let host = nl.require(&self.cfg.name)?;
            let peer = nl.require(&host_peer_name(&self.cfg.name))?;
            let order = if mtu > self.cfg.mtu {
                [peer.index, host.index]
            } else {
                [host.index, peer.index]
            };
            nl.set_mtu(order[0], mtu)?;
            if let Err(e) = nl.set_mtu(order[1], mtu) {
                // Both ends as they were, or the pair would drop what one end sends.
                if let Err(undo) = nl.set_mtu(order[0], self.cfg.mtu) {
                    tracing::error!(lagg = %self.cfg.name, error = %undo, "could not put laggN's MTU back");
                }
                return Err(e.into());
            }
        }
        let old = std::mem::replace(&mut self.cfg.mtu, mtu);
        let mut changed = Vec::new();
        for i in 0..self.members.len() {
            if self.set.member(i).retired {
                continue;
            }
            let link_mtu = nl.link(&self.members[i].name)?.map_or(0, |l| l.mtu);
            if self.judge_mtu(i, link_mtu) {
                changed.push(i);
            }
        }
        tracing::info!(lagg = %self.cfg.name, old, mtu, "MTU changed");
        self.event("config", None, format!("MTU {old} -> {mtu}"));
        if !changed.is_empty() {
            self.after_usability_change(nl, &changed, now)?;
        }
        Ok(())
    }
}
