//! Members the data path left on its own (a failed transmit, the kernel's drop watch): what
//! the lost-member watch ([`crate::runtime::lost`]) finds, told on the timeline and logged.

use std::time::Instant;

use super::*;
use crate::runtime::lost::{LostNews, MemberNow};

impl Lagg {
    /// What the member set says of each member, for the lost-member watch.
    fn lost_view(&self) -> Vec<MemberNow> {
        (0..self.members.len())
            .map(|i| {
                let m = self.set.member(i);
                MemberNow {
                    usable: self.set.usable(i),
                    retired: m.retired,
                    link: m.link,
                }
            })
            .collect()
    }

    /// A link notification of member `i` (`up`: as the kernel reports it now). A link that
    /// went after the data path had left the member says by how much the data path was ahead.
    pub(super) fn lost_link_event(&mut self, i: usize, up: bool) {
        let usable = self.set.usable(i);
        if up {
            self.lost.count(i, usable);
            return;
        }
        let Some((ago, news)) = self.lost.link_down(i, usable) else {
            return;
        };
        let ahead_us = ago.as_micros() as u64;
        tracing::info!(lagg = %self.cfg.name, port = %self.members[i].name, ahead_us, "link down, after the data path left it on a failed transmit");
        if news {
            let port = self.members[i].name.clone();
            let text = format!(
                "transmit refused: the data path left it {ahead_us} us before the link event"
            );
            self.event("link", Some(port), text);
        }
    }

    /// Once a second: tells of members newly marked lost, and retries a member marked since
    /// the last look whose link the kernel still reports up (see [`crate::runtime::lost`]).
    pub(super) fn check_lost(&mut self, now: Instant) {
        let now = self.time(now);
        // Called every control step: the members' view is built only when a look is due.
        if self.lost.deadline().is_none_or(|due| now < due) {
            return;
        }
        let view = self.lost_view();
        for news in self.lost.look(now, &view) {
            match news {
                LostNews::Left(i) => {
                    let port = self.members[i].name.clone();
                    let mut text = "transmit refused: its frames go to the other members until it is usable again"
                        .to_string();
                    if let Some(why) = self.refused_why(i) {
                        text = format!("{text}; {why}");
                    }
                    tracing::warn!(lagg = %self.cfg.name, port = %port, "{text}");
                    self.event("link", Some(port), text);
                }
                LostNews::Retried(i) => {
                    tracing::info!(lagg = %self.cfg.name, port = %self.members[i].name, "link still up after a failed transmit: trying it again");
                }
            }
        }
    }

    /// Why the XDP engine's redirects to member `i` are refused, with the fix, when the kernel
    /// refused them before any flush (the redirect watch kept its error).
    pub(super) fn refused_why(&self, i: usize) -> Option<String> {
        let errno = self.path.refused(i)?;
        let error = std::io::Error::from_raw_os_error(errno);
        Some(format!(
            "the kernel refuses the XDP engine's redirects to it ({error}): a veth takes them only \
             while its far end runs an XDP program or has GRO on (ethtool -K PEER gro on); or run \
             engine = \"tc\" (host mode) or \"afxdp\""
        ))
    }
}
