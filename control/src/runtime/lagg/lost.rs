//! Members the data path left on its own (a failed transmit, the kernel's drop watch): what
//! the control thread reads from the lost-member words, counts, clears and retries.

use super::*;

impl Lagg {
    /// Counts member `i`'s lost mark in its `left` count, once per mark, while the control
    /// thread still uses the member (a mark on a member it has already left, e.g. a monitor's
    /// frame dropped on a member without carrier, is no news). Returns whether it counted.
    pub(super) fn count_left(&mut self, i: usize) -> bool {
        let Some(word) = self.lost.as_ref().map(|w| w.get(i)) else {
            return false;
        };
        if word == 0 || word == self.members[i].left_mark || !self.set.usable(i) {
            return false;
        }
        let port = &mut self.members[i];
        port.left_mark = word;
        port.left += 1;
        true
    }

    /// Clears member `i`'s lost mark (frames may go to it again as the table says).
    pub(super) fn clear_lost(&mut self, i: usize) {
        if let Some(words) = &self.lost {
            words.clear(i, LOST_EPOCH as usize);
        }
        self.lost_seen.0 &= !(1 << i);
    }

    /// Once a second: tells of members newly marked lost, and clears the mark of a member
    /// marked since the last look whose link the kernel still reports up and that is usable
    /// (a transmit that failed without a link change: it is tried again, and marked again at
    /// its next failure). A member in its downdelay is not retried while its link is down.
    pub(super) fn check_lost(&mut self, now: Instant) {
        let Some(words) = self.lost.clone() else {
            return;
        };
        if now < self.lost_seen.1 {
            return;
        }
        self.lost_seen.1 = now + LOST_RETRY;
        for i in 0..self.members.len().min(MAX_MEMBERS) {
            self.count_left(i);
            let marked = words.get(i) != 0;
            let seen = self.lost_seen.0 & (1 << i) != 0;
            if !marked || self.set.member(i).retired {
                self.lost_seen.0 &= !(1 << i);
                continue;
            }
            if !seen {
                self.lost_seen.0 |= 1 << i;
                if !self.set.usable(i) {
                    // Left by the control thread already (a monitor's frame dropped on it
                    // without carrier marks it too): no news.
                    continue;
                }
                let port = self.members[i].name.clone();
                let mut text =
                    "transmit refused: its frames go to the other members until it is usable again"
                        .to_string();
                if let Some(why) = self.refused_why(i) {
                    text = format!("{text}; {why}");
                }
                tracing::warn!(lagg = %self.cfg.name, port = %port, "{text}");
                self.event("link", Some(port), text);
            } else if self.set.usable(i) && self.set.member(i).link {
                tracing::info!(lagg = %self.cfg.name, port = %self.members[i].name, "link still up after a failed transmit: trying it again");
                self.clear_lost(i);
            }
        }
    }

    /// Why the XDP engine's redirects to member `i` are refused, with the fix, when the kernel
    /// refused them before any flush (the redirect watch kept its error).
    pub(super) fn refused_why(&self, i: usize) -> Option<String> {
        let engine = self.engine.as_ref()?;
        let errno = xdp_port::lock(engine).refused(i as u32)?;
        let error = std::io::Error::from_raw_os_error(errno);
        Some(format!(
            "the kernel refuses the XDP engine's redirects to it ({error}): a veth takes them only \
             while its far end runs an XDP program or has GRO on (ethtool -K PEER gro on); or run \
             engine = \"tc\" (host mode) or \"afxdp\""
        ))
    }
}
