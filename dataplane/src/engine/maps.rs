//! The engine's maps: each port's state and transmit map, the published distribution table,
//! and the per-CPU counters read back.

use super::*;

impl XdpEngine {
    /// Removes port `ifindex`'s state entry and its slot's device.
    pub(super) fn remove_port(&mut self, ifindex: u32, slot: u32) -> Result<(), XdpError> {
        match self.hooks {
            Hooks::Xdp => self.tx_map(|m| match m.remove(slot) {
                Ok(()) | Err(aya::maps::MapError::KeyNotFound) => Ok(()),
                Err(e) => Err(e.to_string()),
            })?,
            Hooks::Tc => self.array_set(names::ENGINE_IFINDEX, slot, 0u32)?,
            Hooks::None => {}
        }
        self.remove_state(ifindex)
    }

    /// Removes port `ifindex`'s state entry.
    pub(super) fn remove_state(&mut self, ifindex: u32) -> Result<(), XdpError> {
        let map = self
            .ebpf
            .map_mut(names::ENGINE_PORTS)
            .ok_or_else(|| XdpError::Map {
                port: self.lagg.clone(),
                map: names::ENGINE_PORTS,
                detail: "missing".into(),
            })?;
        let mut ports: HashMap<&mut MapData, u32, EnginePort> =
            HashMap::try_from(map).map_err(|e| XdpError::Map {
                port: self.lagg.clone(),
                map: names::ENGINE_PORTS,
                detail: e.to_string(),
            })?;
        match ports.remove(&ifindex) {
            Ok(()) | Err(aya::maps::MapError::KeyNotFound) => Ok(()),
            Err(e) => Err(XdpError::Map {
                port: self.lagg.clone(),
                map: names::ENGINE_PORTS,
                detail: e.to_string(),
            }),
        }
    }

    pub(super) fn write_port(&mut self, ifindex: u32, value: EnginePort) -> Result<(), XdpError> {
        let err = |e: &dyn ToString| XdpError::Map {
            port: self.lagg.clone(),
            map: names::ENGINE_PORTS,
            detail: e.to_string(),
        };
        let map = self
            .ebpf
            .map_mut(names::ENGINE_PORTS)
            .ok_or_else(|| err(&"missing"))?;
        let mut ports: HashMap<&mut MapData, u32, EnginePort> =
            HashMap::try_from(map).map_err(|e| err(&e))?;
        ports.insert(ifindex, value, 0).map_err(|e| err(&e))
    }

    /// Runs `f` on the slot devmap.
    pub(super) fn tx_map(
        &mut self,
        f: impl FnOnce(&mut DevMapHash<&mut MapData>) -> Result<(), String>,
    ) -> Result<(), XdpError> {
        let lagg = self.lagg.clone();
        let err = |detail: String| XdpError::Map {
            port: lagg.clone(),
            map: names::ENGINE_TX,
            detail,
        };
        let map = self
            .ebpf
            .map_mut(names::ENGINE_TX)
            .ok_or_else(|| err("missing".into()))?;
        let mut devmap: DevMapHash<&mut MapData> =
            DevMapHash::try_from(map).map_err(|e| err(e.to_string()))?;
        f(&mut devmap).map_err(err)
    }

    /// Zeroes `slot`'s counters on every CPU.
    pub(super) fn reset_counters(&mut self, slot: u32) -> Result<(), XdpError> {
        let lagg = self.lagg.clone();
        let err = |detail: String| XdpError::Map {
            port: lagg.clone(),
            map: names::ENGINE_COUNTERS,
            detail,
        };
        let cpus = aya::util::nr_cpus().map_err(|(_, e)| err(e.to_string()))?;
        let map = self
            .ebpf
            .map_mut(names::ENGINE_COUNTERS)
            .ok_or_else(|| err("missing".into()))?;
        let mut array: PerCpuArray<&mut MapData, EngineCounters> =
            PerCpuArray::try_from(map).map_err(|e| err(e.to_string()))?;
        let zero = PerCpuValues::try_from(vec![EngineCounters::default(); cpus])
            .map_err(|e| err(e.to_string()))?;
        array.set(slot, zero, 0).map_err(|e| err(e.to_string()))
    }

    /// Changes port `ifindex`'s state flags with `f` and writes it.
    pub(super) fn update(
        &mut self,
        ifindex: u32,
        f: impl FnOnce(&mut EnginePort),
    ) -> Result<(), XdpError> {
        let Some(port) = self.ports.get_mut(&ifindex) else {
            return Err(self.map_err(names::ENGINE_PORTS, format!("no port {ifindex}")));
        };
        f(&mut port.value);
        let value = port.value;
        self.write_port(ifindex, value)
    }

    /// Sets whether frames received on port `ifindex` are carried (see
    /// [`crate::xdp::PortProgram::set_collecting`]).
    ///
    /// # Errors
    /// When the map update fails or the port is not attached.
    pub fn set_collecting(&mut self, ifindex: u32, on: bool) -> Result<(), XdpError> {
        self.update(ifindex, |p| {
            if on {
                p.flags |= PortState::COLLECTING;
            } else {
                p.flags &= !PortState::COLLECTING;
            }
        })
    }

    /// Sets which control protocols run on port `ifindex` (their frames go to the control
    /// path; the rest addressed to it is dropped and counted).
    ///
    /// # Errors
    /// When the map update fails or the port is not attached.
    pub fn set_control(&mut self, ifindex: u32, lacp: bool, bfd: bool) -> Result<(), XdpError> {
        self.update(ifindex, |p| {
            p.flags &= !(PortState::LACP | PortState::BFD);
            if lacp {
                p.flags |= PortState::LACP;
            }
            if bfd {
                p.flags |= PortState::BFD;
            }
        })
    }

    /// Sets whether IEEE 802.1 link-local frames arriving on port `ifindex` are dropped (the
    /// forward port).
    ///
    /// # Errors
    /// When the map update fails or the port is not attached.
    pub fn set_drop_link_local(&mut self, ifindex: u32, on: bool) -> Result<(), XdpError> {
        self.update(ifindex, |p| {
            if on {
                p.flags |= PortState::DROP_LINK_LOCAL;
            } else {
                p.flags &= !PortState::DROP_LINK_LOCAL;
            }
        })
    }

    /// Sets the MAC whose replies go to the probe monitor on port `ifindex`.
    ///
    /// # Errors
    /// When the map update fails or the port is not attached.
    pub fn set_probe_mac(&mut self, ifindex: u32, mac: [u8; 6]) -> Result<(), XdpError> {
        self.update(ifindex, |p| p.probe_mac = mac)
    }

    /// Publishes `table`: the copy frames do not read is written (table and broadcast
    /// devmap), then the selector flips to it.
    ///
    /// # Errors
    /// A map write; the live copy is then unchanged.
    pub fn publish(&mut self, table: &DistributionTable) -> Result<(), XdpError> {
        // The copy about to be written was live until the last flip: wait out the frames that
        // may still read it (only when publishes come back to back).
        if let Some(left) = self.flipped.and_then(|t| GRACE.checked_sub(t.elapsed())) {
            std::thread::sleep(left);
        }
        let next = self.live ^ 1;
        let value: EngineTable = table.to_engine();
        let slots: BTreeMap<u32, u32> = self
            .ports
            .iter()
            .filter(|(_, p)| p.value.slot != ENGINE_UPPER_SLOT)
            .map(|(&ifindex, p)| (p.value.slot, ifindex))
            .collect();
        let bcast = if next == 0 {
            names::ENGINE_BCAST0
        } else {
            names::ENGINE_BCAST1
        };
        // The tc host path broadcasts by clones to the active members of the table.
        if self.hooks == Hooks::Xdp {
            let lagg = self.lagg.clone();
            let err = |detail: String| XdpError::Map {
                port: lagg.clone(),
                map: bcast,
                detail,
            };
            let map = self
                .ebpf
                .map_mut(bcast)
                .ok_or_else(|| err("missing".into()))?;
            let mut devmap: DevMapHash<&mut MapData> =
                DevMapHash::try_from(map).map_err(|e| err(e.to_string()))?;
            let active: Vec<u32> = table.active().iter().map(|&m| u32::from(m)).collect();
            let stale: Vec<u32> = devmap
                .keys()
                .filter_map(Result::ok)
                .filter(|k| !active.contains(k))
                .collect();
            for key in stale {
                devmap.remove(key).map_err(|e| err(e.to_string()))?;
            }
            for m in active {
                if let Some(&ifindex) = slots.get(&m) {
                    devmap
                        .insert(m, ifindex, None, 0)
                        .map_err(|e| err(error_chain(&e)))?;
                }
            }
        }
        // For each active member, the table without it: where its frames go from the moment
        // the carrier watch marks it until the control thread publishes that same table.
        if matches!(
            value.policy,
            engine_policy::FAILOVER | engine_policy::HASH | engine_policy::ROUND_ROBIN
        ) {
            for &m in table.active() {
                let rest: Vec<u8> = table.active().iter().copied().filter(|&a| a != m).collect();
                let without = table.with_active(&rest).to_engine();
                let at = next * ENGINE_MEMBERS + u32::from(m);
                self.array_set(names::ENGINE_FALLBACK, at, without)?;
            }
        }
        self.array_set(names::ENGINE_TABLES, next, value)?;
        self.array_set(names::ENGINE_SELECT, 0, next)?;
        self.live = next;
        self.flipped = Some(std::time::Instant::now());
        Ok(())
    }

    pub(super) fn array_set<T: aya::Pod>(
        &mut self,
        name: &'static str,
        index: u32,
        value: T,
    ) -> Result<(), XdpError> {
        let lagg = self.lagg.clone();
        let err = |detail: String| XdpError::Map {
            port: lagg.clone(),
            map: name,
            detail,
        };
        let map = self
            .ebpf
            .map_mut(name)
            .ok_or_else(|| err("missing".into()))?;
        let mut array: Array<&mut MapData, T> =
            Array::try_from(map).map_err(|e| err(e.to_string()))?;
        array.set(index, value, 0).map_err(|e| err(e.to_string()))
    }

    /// Entry `index` of the per-CPU array `name`, its `N` words (`words`) summed over CPUs.
    pub(super) fn sum_per_cpu<T: aya::Pod, const N: usize>(
        &self,
        name: &'static str,
        index: u32,
        words: impl Fn(&T) -> [u64; N],
    ) -> Result<[u64; N], XdpError> {
        let map = self
            .ebpf
            .map(name)
            .ok_or_else(|| self.map_err(name, "missing"))?;
        let array: PerCpuArray<&MapData, T> =
            PerCpuArray::try_from(map).map_err(|e| self.map_err(name, e))?;
        let values = array.get(&index, 0).map_err(|e| self.map_err(name, e))?;
        let mut out = [0u64; N];
        for cpu in values.iter() {
            for (sum, v) in out.iter_mut().zip(words(cpu)) {
                *sum += v;
            }
        }
        Ok(out)
    }

    /// The counters of `slot` (a member slot or [`ENGINE_UPPER_SLOT`]), summed over CPUs and
    /// indexed by [`EngineCounter`].
    ///
    /// # Errors
    /// When the map cannot be read.
    pub fn counters(&self, slot: u32) -> Result<[u64; EngineCounter::COUNT as usize], XdpError> {
        self.sum_per_cpu(names::ENGINE_COUNTERS, slot, |c: &EngineCounters| c.n)
    }

    /// What each bucket of the table placed so far (hash policy), summed over CPUs: frames
    /// on the XDP engine, packets (GSO super-packets whole) on the tc host path.
    ///
    /// # Errors
    /// When the map cannot be read.
    pub fn bucket_hits(&self) -> Result<[u64; ENGINE_BUCKETS], XdpError> {
        self.sum_per_cpu(names::ENGINE_BUCKETS, 0, |b: &BucketHits| b.n)
    }
}
