//! Bringing a lagg up and taking it down: what can be checked before anything is created,
//! then laggN, the port programs, the workers and the monitors, each recorded in the
//! [`Lagg`] value the moment it exists, so a failure half-way and a normal stop run the same
//! teardown.

use std::sync::Arc;
use std::time::Instant;

use xlagg_sys::afpacket::PacketSocket;

use super::monitors::{BfdMonitor, LacpMonitor, ProbeMonitor};
use super::xdp_port::PortXdp;
use super::{host_peer_name, Autoconf, Created, Lagg, LaggError, Port};
use crate::config::{Engine, LaggConfig, LaggProto, Upper};
use crate::runtime::lost::LostWatch;
use crate::runtime::members::Verdict;
use crate::sys::netdev::{format_mac, LinkState, NetdevError, Netlink};
use crate::sys::restore::Undo;

impl Lagg {
    /// Checks what can be checked before anything is created: the protocol is available and
    /// every device exists, carries the lagg's MTU and has one receive channel per worker.
    ///
    /// # Errors
    /// The first problem, naming the field.
    pub fn preflight(nl: &Netlink, cfg: &LaggConfig) -> Result<(), LaggError> {
        Self::preflight_owned(nl, cfg, &[])
    }

    /// [`preflight`](Self::preflight) while this daemon already holds XDP programs on the
    /// devices `running` (by index): those are not foreign.
    ///
    /// # Errors
    /// The first problem, naming the field.
    pub fn preflight_owned(
        nl: &Netlink,
        cfg: &LaggConfig,
        running: &[u32],
    ) -> Result<(), LaggError> {
        let check = |name: &str, field: &'static str| check_port(nl, cfg, running, name, field);
        // A lagg runs degraded on the members present: a missing one is reported and taken in
        // when its device appears. With none present there is nothing to run on.
        let mut present = 0;
        let mut first_missing = None;
        for port in &cfg.ports {
            match check(port, "laggports") {
                Ok(()) => present += 1,
                Err(LaggError::Device {
                    source: NetdevError::NoSuchDevice(_),
                    ..
                }) if first_missing.is_none() => first_missing = Some(port.clone()),
                Err(LaggError::Device {
                    source: NetdevError::NoSuchDevice(_),
                    ..
                }) => {}
                Err(e) => return Err(e),
            }
        }
        if present == 0 {
            if let Some(port) = first_missing {
                return Err(LaggError::Device {
                    lagg: cfg.name.clone(),
                    field: "laggports",
                    source: NetdevError::NoSuchDevice(port),
                });
            }
        }
        if let Upper::Forward { port } = &cfg.upper {
            check(port, "forward_port")?;
        }
        if let Upper::Host { .. } = cfg.upper {
            if let Some(existing) = nl.link(&cfg.name)? {
                if !is_stale_host_interface(nl, &existing)? {
                    return Err(LaggError::Conflict(format!(
                        "{}: an interface named {} already exists and was not created by xlaggd; remove it or \
                         choose another lagg name",
                        cfg.name, cfg.name
                    )));
                }
            }
        }
        Ok(())
    }

    /// Creates laggN (host mode), attaches every port, starts the workers and monitors and
    /// publishes the first table; each step is recorded at once for [`teardown`](Self::teardown).
    pub(super) fn bring_up(&mut self, nl: &Netlink, present: &[String]) -> Result<(), LaggError> {
        let cfg = self.cfg.clone();
        let first_member = nl.require(present.first().map_or(&cfg.ports[0], |p| p))?;
        let words = self.path.lost_words(&cfg.name).map(Arc::new);
        self.lost = LostWatch::new(words);
        let upper_name = match &cfg.upper {
            Upper::Host { .. } => self.create_host(nl, first_member.mac)?,
            Upper::Forward { port } => port.clone(),
        };
        for (slot, name) in present.iter().enumerate() {
            let port = self.attach_port(nl, name, Some(slot))?;
            self.members.push(port);
        }
        for name in cfg.ports.iter().filter(|p| !present.contains(*p)) {
            let text = format!("member missing: no network interface named {name}; running on the others until it appears");
            tracing::warn!(lagg = %cfg.name, port = %name, "{text}");
            self.event("link", Some(name.clone()), text);
        }
        let upper = self.attach_port(nl, &upper_name, None)?;
        self.upper = Some(upper);
        let members = self.members.len();
        let ports: Vec<&mut Port> = self.members.iter_mut().chain(self.upper.as_mut()).collect();
        let lost = self.lost.words().cloned();
        self.path
            .start(&cfg, ports, members, self.announcer.learner(), lost)?;
        if let Upper::Host { addresses } = &cfg.upper {
            let host = nl.require(&cfg.name)?;
            nl.set_up(host.index, true)?;
            for (addr, prefix) in addresses {
                nl.add_address(host.index, *addr, *prefix)?;
            }
        }
        self.autoconf = Autoconf::start(&cfg);
        if let Some(upper) = self.upper.as_mut() {
            if let Some(program) = upper.program.as_mut() {
                program.set_collecting(true)?;
            }
            upper.collecting = true;
        }
        self.start_monitors()?;
        let now = Instant::now();
        self.refresh_links(nl, now)?;
        let all: Vec<usize> = (0..self.members.len()).collect();
        self.publish(&all, true, now)?;
        // The first read is the starting state, not a flap or a failover.
        self.set.started();
        let mode = self
            .upper
            .as_ref()
            .and_then(|u| u.program.as_ref())
            .and_then(PortXdp::mode);
        tracing::info!(
            lagg = %cfg.name,
            laggproto = %cfg.proto,
            ports = %present.join(","),
            upper = %upper_name,
            mac = %format_mac(first_member.mac),
            xdp_mode = %mode.map(|m| m.to_string()).unwrap_or_default(),
            engine = %cfg.engine,
            workers = self.path.workers(),
            "lagg up"
        );
        Ok(())
    }

    /// Creates laggN and its peer (host mode), removing any an earlier run left, with the
    /// first member's MAC address and the configured MTU. Returns the port the data path
    /// reads laggN's frames on: laggN itself for the tc host path, its peer otherwise.
    fn create_host(&mut self, nl: &Netlink, mac: [u8; 6]) -> Result<String, LaggError> {
        let cfg = self.cfg.clone();
        if let Some(stale) = nl.link(&cfg.name)? {
            tracing::warn!(lagg = %cfg.name, "removing {} left behind by an earlier run", cfg.name);
            nl.delete(stale.index, &stale.name)?;
        }
        let peer = host_peer_name(&cfg.name);
        if let Some(stale) = nl.link(&peer)? {
            nl.delete(stale.index, &stale.name)?;
        }
        // One queue per worker at both ends, so the stack's transmit queues map onto the
        // queues the workers serve.
        nl.create_veth(&cfg.name, &peer, cfg.cores.len().max(1) as u32)?;
        let host = nl.require(&cfg.name)?;
        self.created.push(Created {
            index: host.index,
            name: host.name.clone(),
        });
        // As lagg does: the lagg interface takes the first member's MAC address.
        nl.set_mac(host.index, mac)?;
        let peer_link = nl.require(&peer)?;
        nl.set_mtu(peer_link.index, cfg.mtu)?;
        nl.set_mtu(host.index, cfg.mtu)?;
        self.complete_frames_on_host()?;
        nl.set_up(peer_link.index, true)?;
        self.path.prepare_host(&cfg.name, host.index)?;
        // The tc host path hooks laggN itself (its egress); the others read what laggN
        // sends where it arrives, on its peer.
        Ok(if cfg.engine == Engine::Tc {
            cfg.name.clone()
        } else {
            peer
        })
    }

    /// Starts the monitors the configuration asks for (LACP, micro-BFD, ARP/NS probes); a
    /// member is not usable by BFD's or the probes' verdict until they say so.
    fn start_monitors(&mut self) -> Result<(), LaggError> {
        let cfg = self.cfg.clone();
        if cfg.proto == LaggProto::Lacp {
            self.monitors.lacp = Some(LacpMonitor::start(&cfg, &self.members, self.epoch)?);
        }
        if let Some(b) = cfg.bfd {
            self.monitors.bfd = Some(BfdMonitor::start(&cfg, b, &self.members, self.epoch)?);
            for i in 0..self.members.len() {
                self.set.set_verdict(i, Verdict::Bfd, false);
            }
        }
        if let Some(a) = &cfg.arp {
            self.monitors.probe = Some(ProbeMonitor::start(&cfg.name, a, &mut self.members)?);
            for i in 0..self.members.len() {
                self.set.set_verdict(i, Verdict::Probe, false);
            }
        }
        Ok(())
    }

    /// Keeps laggN's offloads what the engine needs (see [`crate::sys::offload`]); called at
    /// bring-up and on every link notification of laggN, since a feature change sends one.
    /// The workers and the XDP engine read laggN's frames as bytes: every frame must be
    /// complete in them. The tc host path hands laggN's skbs to the members whole, so laggN
    /// keeps every offload, unless `hw_offload = false` turns them off.
    pub(super) fn complete_frames_on_host(&mut self) -> Result<(), LaggError> {
        let name = &self.cfg.name;
        let changed = if self.cfg.engine == Engine::Tc {
            if self.cfg.hw_offload {
                return Ok(());
            }
            crate::sys::offload::disable_offloads(name)
                .map(|r| r.into_iter().map(|c| c.0).collect())
        } else {
            crate::sys::offload::complete_frames_on_host(name, self.cfg.hw_offload)
        }
        .map_err(|e| LaggError::Conflict(e.to_string()))?;
        if !changed.is_empty() {
            tracing::info!(lagg = %name, features = %changed.join(","), "offloads turned off on laggN");
        }
        Ok(())
    }

    /// Attaches the port program to `name` (the member in slot `member` of the member set, or
    /// the upper port) and holds the port promiscuous.
    pub(super) fn attach_port(
        &mut self,
        nl: &Netlink,
        name: &str,
        member: Option<usize>,
    ) -> Result<Port, LaggError> {
        let link = nl.require(name)?;
        let mut port = Port {
            name: name.to_string(),
            ifindex: link.index,
            program: None,
            promiscuous: None,
            collecting: false,
            mac: link.mac,
            restore_features: Vec::new(),
            restore_sysfs: Vec::new(),
            watched: None,
        };
        if let Some(slot) = member {
            self.judge_mtu(slot, link.mtu);
            if !self.set.member(slot).mtu_ok {
                tracing::warn!(lagg = %self.cfg.name, port = name, mtu = link.mtu, lagg_mtu = self.cfg.mtu, "member MTU below the lagg's: it carries nothing until raised");
            }
        }
        let slot = member;
        let member = member.is_some();
        let tc = self.cfg.engine == Engine::Tc;
        if !link.admin_up {
            nl.set_up(link.index, true)?;
        }
        // laggN itself (the tc host path's upper port) needs none of what a port on the wire
        // does.
        if member || !tc {
            self.prepare_wire_port(&mut port)?;
        }
        // The host path takes a member's skbs after its GRO: one program run and one hand-over
        // to laggN per coalesced skb, not per frame.
        if member && tc {
            let changes = if self.cfg.hw_offload {
                crate::sys::offload::gro_on_changes(name)
            } else {
                crate::sys::offload::offloads_off_changes(name)
            };
            if let Err(e) = changes.and_then(|c| change_features(&mut port, &c)) {
                restore_port(&mut port);
                return Err(LaggError::Conflict(e.to_string()));
            }
        }
        if self.cfg.busy_poll {
            port.restore_sysfs = defer_interrupts(name);
        }
        if let Err(e) = self.path.attach(&self.cfg.name, &mut port, slot) {
            restore_port(&mut port);
            return Err(e);
        }
        // Only members speak LACP and micro-BFD; the upper port passes neither.
        let lacp = member && self.cfg.proto == LaggProto::Lacp;
        let bfd = member && self.cfg.bfd.is_some();
        // The forward port stops IEEE 802.1 link-local frames from downstream.
        let forward = !member && matches!(self.cfg.upper, Upper::Forward { .. });
        let drop_link_local = forward && !self.cfg.forward_link_local;
        if let Some(program) = port.program.as_mut() {
            let set = program
                .set_control(lacp, bfd)
                .and_then(|()| program.set_drop_link_local(drop_link_local));
            if let Err(e) = set {
                restore_port(&mut port);
                return Err(e.into());
            }
        }
        Ok(port)
    }

    /// Makes `port` (a member or the forward port) take the lagg's frames: promiscuous, since
    /// frames for the lagg's MAC arrive on every member and NICs filter them otherwise (held
    /// through a packet socket, so that even a crash leaves the port as it was); and, for the
    /// engines that read frames as bytes, with its VLAN tags left in them.
    fn prepare_wire_port(&mut self, port: &mut Port) -> Result<(), LaggError> {
        let name = port.name.clone();
        let holder = PacketSocket::bind(port.ifindex, 0)
            .and_then(|s| s.hold_promiscuous().map(|()| s))
            .map_err(|source| LaggError::PacketSocket {
                lagg: self.cfg.name.clone(),
                port: name.clone(),
                what: "promiscuous-mode",
                source,
            })?;
        port.promiscuous = Some(holder);
        // The tc host path keeps a stripped tag in the skb's metadata, where laggN's VLAN
        // devices read it.
        if self.cfg.engine == Engine::Tc {
            return Ok(());
        }
        // A NIC that strips VLAN tags on receive would hand the program untagged frames.
        let changed = crate::sys::offload::vlan_tag_changes(&name)
            .and_then(|(changes, stuck)| change_features(port, &changes).map(|()| stuck));
        match changed {
            Ok(stuck) => {
                if !stuck.is_empty() {
                    tracing::warn!(lagg = %self.cfg.name, port = %name, features = %stuck.join(","), "the driver strips VLAN tags on receive and cannot stop: tagged frames on this port lose their tag");
                }
            }
            Err(e) => {
                tracing::warn!(lagg = %self.cfg.name, port = %name, error = %e, "cannot read the port's VLAN offloads")
            }
        }
        Ok(())
    }

    /// Undoes whatever [`bring_up`](Self::bring_up) got to, in reverse: monitors, workers,
    /// programs, offloads and promiscuity, created interfaces.
    pub(super) fn teardown(&mut self, nl: &Netlink) {
        // The DHCP client first: it removes its address and routes while laggN exists.
        self.autoconf = None;
        self.monitors.lacp = None;
        if let Some(bfd) = self.monitors.bfd.take() {
            bfd.shutdown(&self.members);
        }
        self.monitors.probe = None;
        // The workers stop; the engine's objects close with the last port that holds them
        // (below), and laggN's last links with them.
        self.path.shutdown();
        for port in self.members.iter_mut().chain(self.upper.as_mut()) {
            restore_port(port);
        }
        self.lost = LostWatch::new(None);
        for Created { index, name } in self.created.drain(..).rev() {
            if let Err(e) = nl.delete(index, &name) {
                tracing::error!(lagg = %self.cfg.name, error = %e, "could not delete {name}");
            }
        }
        tracing::info!(lagg = %self.cfg.name, "lagg stopped; programs detached, interfaces removed");
    }
}

/// Makes offload `changes` on `port`, written down first (see [`crate::sys::restore`]) and
/// kept for teardown.
fn change_features(
    port: &mut Port,
    changes: &[(String, bool)],
) -> Result<(), crate::sys::offload::OffloadError> {
    for (name, on) in changes {
        crate::sys::restore::record(Undo::Feature {
            iface: port.name.clone(),
            name: name.clone(),
            on: !on,
        });
    }
    crate::sys::offload::set(&port.name, changes)?;
    port.restore_features
        .extend(changes.iter().map(|(n, on)| (n.clone(), !on)));
    Ok(())
}

/// Detaches the port's program, sets its offloads back and lets go of its promiscuity.
pub(super) fn restore_port(port: &mut Port) {
    port.watched = None;
    if let Some(program) = port.program.take() {
        program.detach();
    }
    let mut done = Vec::new();
    for (path, old) in std::mem::take(&mut port.restore_sysfs) {
        if let Err(e) = std::fs::write(&path, &old) {
            tracing::warn!(port = %port.name, file = %path.display(), error = %e, "could not set the device back");
        }
        done.push(Undo::Sysfs { path, value: old });
    }
    let restore = std::mem::take(&mut port.restore_features);
    if let Err(e) = crate::sys::offload::set(&port.name, &restore) {
        tracing::warn!(port = %port.name, error = %e, "could not set the port's offloads back");
    }
    done.extend(restore.into_iter().map(|(name, on)| Undo::Feature {
        iface: port.name.clone(),
        name,
        on,
    }));
    crate::sys::restore::forget(&done);
    // Closing the holder drops the promiscuity it added.
    port.promiscuous = None;
}

/// Preferred busy polling needs the device to defer its interrupts, so that the kernel leaves
/// its NAPI to the polling worker: `napi_defer_hard_irqs` 2 and a `gro_flush_timeout` of
/// 200 µs (the timer that runs NAPI when nobody polls). Returns the old values to set back;
/// a device without the files (or a read-only sysfs) keeps its settings, with a warning.
fn defer_interrupts(name: &str) -> Vec<(std::path::PathBuf, String)> {
    let mut old = Vec::new();
    for (file, value) in [
        ("napi_defer_hard_irqs", "2"),
        ("gro_flush_timeout", "200000"),
    ] {
        let path = std::path::Path::new("/sys/class/net").join(name).join(file);
        let result = std::fs::read_to_string(&path).and_then(|before| {
            crate::sys::restore::record(Undo::Sysfs {
                path: path.clone(),
                value: before.trim().to_string(),
            });
            std::fs::write(&path, value).map(|()| before)
        });
        match result {
            Ok(before) => old.push((path, before.trim().to_string())),
            Err(e) => {
                tracing::warn!(port = name, file, error = %e, "cannot defer the device's interrupts: busy polling competes with the softirq");
            }
        }
    }
    old
}

/// The names of `ports` whose device exists, in order.
pub(super) fn present_ports(nl: &Netlink, ports: &[String]) -> Result<Vec<String>, NetdevError> {
    let mut present = Vec::new();
    for name in ports {
        if nl.link(name)?.is_some() {
            present.push(name.clone());
        }
    }
    Ok(present)
}

/// Whether `link` is a lagg interface left by an earlier xlaggd (a veth whose peer carries
/// our prefix).
fn is_stale_host_interface(nl: &Netlink, link: &LinkState) -> Result<bool, NetdevError> {
    Ok(link.kind.as_deref() == Some("veth") && nl.link(&host_peer_name(&link.name))?.is_some())
}

/// One port of `cfg` (a member or the forward port, `field` names which) as a lagg needs it:
/// present, without an XDP program this daemon did not attach (`running`: devices it holds
/// programs on), an MTU at least the lagg's, and, for the AF_XDP engine, as many active
/// receive channels as workers.
fn check_port(
    nl: &Netlink,
    cfg: &LaggConfig,
    running: &[u32],
    name: &str,
    field: &'static str,
) -> Result<(), LaggError> {
    let queues = cfg.cores.len().max(1) as u32;
    let link = nl.require(name).map_err(|source| LaggError::Device {
        lagg: cfg.name.clone(),
        field,
        source,
    })?;
    // xlaggd's own programs are held by BPF links and go with the process that holds them,
    // so a program found here belongs to something else (or another xlaggd).
    if let Some(id) = link.xdp_prog.filter(|_| !running.contains(&link.index)) {
        return Err(LaggError::Conflict(format!(
            "{}.{field}: {name} already has an XDP program (id {id}) that this xlaggd did not attach; \
             detach it (ip link set dev {name} xdp off) or choose another port",
            cfg.name
        )));
    }
    // Every member and the forward port carry the lagg's frames whole (laggN is made with
    // the lagg's MTU).
    if link.mtu < cfg.mtu {
        return Err(LaggError::Conflict(format!(
            "{}.{field}: {name} has MTU {}, below {}'s mtu {}: raise it (ip link set dev {name} mtu {}) \
             or lower {}'s mtu",
            cfg.name, link.mtu, cfg.name, cfg.mtu, cfg.mtu, cfg.name
        )));
    }
    // RSS spreads flows over the active channels: each needs a worker, or the flows hashed
    // to it are dropped (no socket). The kernel's engines run on every channel.
    if cfg.engine.in_kernel() {
        return Ok(());
    }
    let active = crate::sys::offload::active_rx_channels(name).unwrap_or(link.rx_queues);
    if active != queues {
        let fix = if active < queues {
            format!(
                "list {active} cores, or raise the channels (ethtool -L {name} combined {queues})"
            )
        } else {
            format!(
                "list {active} cores (one worker per channel), or lower the channels \
                 (ethtool -L {name} combined {queues}); otherwise RSS sends about {}% of the flows to \
                 queues no worker serves",
                (active - queues) * 100 / active
            )
        };
        return Err(LaggError::Conflict(format!(
            "{}.cores: {queues} worker(s), but {name} has {active} active receive channels: {fix}",
            cfg.name
        )));
    }
    Ok(())
}
