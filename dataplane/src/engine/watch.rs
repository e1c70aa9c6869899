//! How the engine's object learns that a member's device stopped taking frames: tracepoint
//! programs on the transmit path (the kernel's drop, redirect-error and queue paths) that mark
//! the member in the lost-member words the workers and the control thread read.

use super::*;

impl XdpEngine {
    /// Attaches the transmit watch (a raw tracepoint program on `xdp_devmap_xmit`) and the
    /// redirect watch (on `xdp_redirect_err`): from then on a member flushed to without
    /// carrier, whose flushes fail, or to which the kernel refuses redirects, is marked in the
    /// lost-member words.
    ///
    /// # Errors
    /// A kernel without BTF (the program needs the offsets of `ifindex` and `state` in
    /// `struct net_device`) or refusing the program: failover then waits for the control thread's
    /// link event.
    pub fn watch_transmit(&mut self) -> Result<(), String> {
        self.attach_watch(names::TX_WATCH_PROGRAM, names::TX_WATCH_TRACEPOINT)?;
        // And the redirects the kernel refuses before any flush (a member that cannot take
        // XDP frames at all), told apart by this object's devmap.
        let id = match self.ebpf.map(names::ENGINE_TX) {
            Some(aya::maps::Map::DevMapHash(data)) => data.info().map(|i| i.id()),
            _ => return Err(format!("no map {}", names::ENGINE_TX)),
        }
        .map_err(|e| format!("{}: {e}", names::ENGINE_TX))?;
        self.array_set(names::ENGINE_TX_ID, 0, id)
            .map_err(|e| e.to_string())?;
        self.attach_watch(
            names::REDIRECT_WATCH_PROGRAM,
            names::REDIRECT_WATCH_TRACEPOINT,
        )
    }

    /// The errno of the last redirect the kernel refused to member `slot` (the redirect
    /// watch), if any: why the XDP engine cannot send to it.
    pub fn refused(&self, slot: u32) -> Option<i32> {
        let map = self.ebpf.map(names::ENGINE_REFUSED)?;
        let array: Array<&MapData, u32> = Array::try_from(map).ok()?;
        array
            .get(&slot, 0)
            .ok()
            .filter(|&e| e != 0)
            .map(|e| e as i32)
    }

    /// Attaches the queue watch (a raw tracepoint program on `net_dev_queue`), for the tc host
    /// path: from then on a member an skb is queued to while it has no carrier is marked in
    /// the lost-member words (its driver would drop it, or its stopped queue hold it).
    ///
    /// # Errors
    /// As [`watch_transmit`](Self::watch_transmit).
    pub fn watch_queue(&mut self) -> Result<(), String> {
        self.attach_watch(names::QUEUE_WATCH_PROGRAM, names::QUEUE_WATCH_TRACEPOINT)
    }

    /// Attaches the drop watch (a raw tracepoint program on `kfree_skb`), for the AF_XDP
    /// engine: from then on a member a dropped buffer was for while the member has no carrier
    /// (a copy-mode AF_XDP transmit to it) is marked in the lost-member words. A drop on a
    /// member that keeps its carrier (its receiver's ring full) marks nothing.
    ///
    /// # Errors
    /// As [`watch_transmit`](Self::watch_transmit).
    pub fn watch_drops(&mut self) -> Result<(), String> {
        self.attach_watch(names::DROP_WATCH_PROGRAM, names::DROP_WATCH_TRACEPOINT)
    }

    /// Loads raw tracepoint program `name` and attaches it to `tracepoint`.
    pub(super) fn attach_watch(&mut self, name: &str, tracepoint: &str) -> Result<(), String> {
        kernel_offsets().clone()?;
        let program: &mut RawTracePoint = self
            .ebpf
            .program_mut(name)
            .ok_or_else(|| format!("no program {name}"))?
            .try_into()
            .map_err(|e: aya::programs::ProgramError| e.to_string())?;
        program
            .load()
            .map_err(|e| format!("loading {name}: {}", error_chain(&e)))?;
        program.attach(tracepoint).map_err(|e| {
            format!(
                "attaching {name} to the {tracepoint} tracepoint: {}",
                error_chain(&e)
            )
        })?;
        Ok(())
    }

    /// The lost-member words, mapped into this process (see
    /// [`xlagg_common::names::ENGINE_DOWN`]): what the AF_XDP workers mark and read, and the
    /// control thread clears.
    ///
    /// # Errors
    /// When the map cannot be mapped.
    pub fn lost_words(&self) -> Result<MappedWords, XdpError> {
        let map = self
            .ebpf
            .map(names::ENGINE_DOWN)
            .ok_or_else(|| self.map_err(names::ENGINE_DOWN, "missing"))?;
        let fd = match map {
            aya::maps::Map::Array(data) => data.fd(),
            _ => return Err(self.map_err(names::ENGINE_DOWN, "not an array")),
        };
        use std::os::fd::AsFd;
        MappedWords::map(fd.as_fd(), LOST_WORDS as usize)
            .map_err(|e| self.map_err(names::ENGINE_DOWN, e))
    }

    /// Gives member `ifindex` its word in `slot` without attaching the program (an AF_XDP
    /// lagg uses this object for the lost-member words alone).
    ///
    /// # Errors
    /// A map write.
    pub fn watch_port(&mut self, ifindex: u32, slot: u32) -> Result<(), XdpError> {
        if slot >= ENGINE_MEMBERS {
            return Err(self.map_err(names::ENGINE_PORTS, format!("slot {slot} out of range")));
        }
        self.clear_lost(slot);
        let value = EnginePort {
            slot,
            ..EnginePort::default()
        };
        self.write_port(ifindex, value)
    }

    /// Takes member `ifindex`'s word away (see [`XdpEngine::watch_port`]).
    pub fn unwatch_port(&mut self, ifindex: u32, slot: u32) {
        if let Err(e) = self.remove_state(ifindex) {
            tracing::warn!(lagg = %self.lagg, ifindex, error = %e, "lost-member words: port entry left in its map");
        }
        self.clear_lost(slot);
    }

    /// Clears member `slot`'s lost mark: frames may go to it again as the table says (and the
    /// workers, who follow the count of marks, see the change).
    pub(super) fn clear_lost(&self, slot: u32) {
        if let Some(words) = &self.words {
            words.clear(slot as usize, LOST_EPOCH as usize);
        }
    }
}
