//! Members the data path left on its own, as the control thread follows them (sans-IO).
//!
//! The data path cannot wait for a link event: a transmit that fails (the XDP engine's
//! redirect watch, the tc host path's queue watch, the AF_XDP engine's drop watch, a worker
//! that found the device down) marks the member's lost-member word, and every engine leaves
//! a marked member at its next frame. The words are shared memory (a BPF array, or heap memory
//! in tests); this module owns what the control thread does with them:
//! - each mark is counted once, in the member's `left` count, while the member set still uses
//!   the member (a mark on a member already left is no news);
//! - once a [`RETRY`], a member marked since the last look is told of, and one whose link the
//!   kernel still reports up is cleared, to be tried again (a transmit that failed without a
//!   link change);
//! - a link event that follows a mark says by how much the data path was ahead;
//! - a member made usable again is cleared at once.
//!
//! Time comes in as `now` ([`Time`]); the only clock read here is the age of a mark (the words hold
//! `CLOCK_MONOTONIC` stamps, written by the kernel).

use std::sync::Arc;
use std::time::Duration;

use xlagg_common::LOST_EPOCH;
use xlagg_dataplane::distribution::MAX_MEMBERS;
use xlagg_dataplane::mapped_words::MappedWords;

use crate::proto::time::Time;

/// How often a member marked lost while the control thread still sees it usable is tried
/// again.
pub const RETRY: Duration = Duration::from_secs(1);

/// What the member set says of one member at a look.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemberNow {
    /// The member set uses it (link, MTU, monitors' verdicts).
    pub usable: bool,
    /// It left the lagg; its slot waits for the next member.
    pub retired: bool,
    /// The kernel reports its link up.
    pub link: bool,
}

/// What a look found, for the operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LostNews {
    /// The data path left the member while the member set still used it.
    Left(usize),
    /// Still marked at the look after the one that saw the mark, with its link up: cleared,
    /// to be tried again.
    Retried(usize),
}

/// The control thread's view of the lost-member words.
#[derive(Debug)]
pub struct LostWatch {
    /// The words; `None` where the kernel refused the object holding them (a member whose
    /// link goes is then left when the link event comes).
    words: Option<Arc<MappedWords>>,
    /// Per slot: times the data path left the member, counted once per mark.
    left: [u64; MAX_MEMBERS],
    /// Per slot: the mark last counted (a mark is its time, so each is distinct).
    counted: [u64; MAX_MEMBERS],
    /// Members whose mark was seen at the last look (bit per slot).
    seen: u32,
    /// When to look next.
    next_look: Time,
}

impl LostWatch {
    /// Follows `words`; the first look is due at once.
    pub fn new(words: Option<Arc<MappedWords>>) -> Self {
        Self {
            words,
            left: [0; MAX_MEMBERS],
            counted: [0; MAX_MEMBERS],
            seen: 0,
            next_look: Time::ZERO,
        }
    }

    /// The words, for the workers that mark them.
    pub fn words(&self) -> Option<&Arc<MappedWords>> {
        self.words.as_ref()
    }

    /// When [`look`](Self::look) is due (`None` without words).
    pub fn deadline(&self) -> Option<Time> {
        self.words.as_ref().map(|_| self.next_look)
    }

    /// Times the data path left member `i`.
    pub fn left(&self, i: usize) -> u64 {
        self.left.get(i).copied().unwrap_or(0)
    }

    /// Members marked now, of those `retired` does not exclude (bit per slot).
    pub fn marked(&self, members: usize, retired: impl Fn(usize) -> bool) -> u32 {
        let Some(words) = &self.words else {
            return 0;
        };
        (0..members.min(MAX_MEMBERS))
            .filter(|&i| words.get(i) != 0 && !retired(i))
            .fold(0, |mask, i| mask | 1 << i)
    }

    /// A new member took slot `i`: its count starts again.
    pub fn join(&mut self, i: usize) {
        if i < MAX_MEMBERS {
            self.left[i] = 0;
            self.counted[i] = 0;
            self.seen &= !(1 << i);
        }
    }

    /// Counts member `i`'s mark, once per mark, while it is `usable`. Returns whether it
    /// counted.
    pub fn count(&mut self, i: usize, usable: bool) -> bool {
        let Some(word) = self.words.as_ref().map(|w| w.get(i)) else {
            return false;
        };
        if i >= MAX_MEMBERS || word == 0 || word == self.counted[i] || !usable {
            return false;
        }
        self.counted[i] = word;
        self.left[i] += 1;
        true
    }

    /// Clears member `i`'s mark: frames may go to it again as the table says.
    pub fn clear(&mut self, i: usize) {
        if let Some(words) = &self.words {
            words.clear(i, LOST_EPOCH as usize);
        }
        if i < MAX_MEMBERS {
            self.seen &= !(1 << i);
        }
    }

    /// Member `i`'s link went down (`usable`: before the member set heard of it). Returns
    /// how long ago the data path left it, if it did, and whether that is news (counted now
    /// and not told of at a look).
    pub fn link_down(&mut self, i: usize, usable: bool) -> Option<(Duration, bool)> {
        let counted = self.count(i, usable);
        let ago = self.words.as_ref()?.marked_for(i)?;
        let news = counted && self.seen & (1 << i) == 0;
        self.seen |= 1 << i;
        Some((ago, news))
    }

    /// Looks at the marks if a look is due: counts them, tells of members newly left, and
    /// clears a member marked since the last look that is usable with its link up.
    pub fn look(&mut self, now: Time, members: &[MemberNow]) -> Vec<LostNews> {
        let mut news = Vec::new();
        let Some(words) = self.words.clone() else {
            return news;
        };
        if now < self.next_look {
            return news;
        }
        self.next_look = now + RETRY;
        for (i, m) in members.iter().enumerate().take(MAX_MEMBERS) {
            self.count(i, m.usable);
            let bit = 1 << i;
            if words.get(i) == 0 || m.retired {
                self.seen &= !bit;
            } else if self.seen & bit == 0 {
                self.seen |= bit;
                // Left by the control thread already (a monitor's frame dropped on a member
                // without carrier marks it too): no news.
                if m.usable {
                    news.push(LostNews::Left(i));
                }
            } else if m.usable && m.link {
                news.push(LostNews::Retried(i));
                self.clear(i);
            }
        }
        news
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UP: MemberNow = MemberNow {
        usable: true,
        retired: false,
        link: true,
    };

    fn watch() -> (LostWatch, Arc<MappedWords>) {
        let words = Arc::new(MappedWords::heap(LOST_EPOCH as usize + 1));
        (LostWatch::new(Some(Arc::clone(&words))), words)
    }

    #[test]
    fn a_mark_is_told_once_then_retried_at_the_next_look() {
        let t0 = Time::from_millis(10);
        let (mut w, words) = watch();
        assert_eq!(w.look(t0, &[UP, UP]), vec![]);
        assert_eq!(w.deadline(), Some(t0 + RETRY));
        assert!(words.mark(1, LOST_EPOCH as usize));
        // Not due yet: nothing happens before the deadline.
        assert_eq!(w.look(t0 + Duration::from_millis(500), &[UP, UP]), vec![]);
        assert_eq!(w.look(t0 + RETRY, &[UP, UP]), vec![LostNews::Left(1)]);
        assert_eq!(w.left(1), 1);
        assert_ne!(words.get(1), 0, "told, not cleared yet");
        assert_eq!(
            w.look(t0 + 2 * RETRY, &[UP, UP]),
            vec![LostNews::Retried(1)]
        );
        assert_eq!(words.get(1), 0, "its link is up: tried again");
        assert_eq!(w.left(1), 1, "one mark, one count");
        assert_eq!(w.look(t0 + 3 * RETRY, &[UP, UP]), vec![]);
    }

    #[test]
    fn a_member_the_control_thread_left_is_no_news_and_keeps_its_mark() {
        let t0 = Time::from_millis(10);
        let (mut w, words) = watch();
        words.mark(0, LOST_EPOCH as usize);
        let down = MemberNow {
            usable: false,
            retired: false,
            link: false,
        };
        assert_eq!(w.look(t0, &[down]), vec![]);
        assert_eq!(w.left(0), 0);
        assert_eq!(w.look(t0 + RETRY, &[down]), vec![]);
        assert_ne!(words.get(0), 0, "not retried while unusable");
        // Usable in its downdelay with the link down: counted, but not retried (it was
        // seen already, so no news either).
        let waiting = MemberNow {
            usable: true,
            retired: false,
            link: false,
        };
        assert_eq!(w.look(t0 + 2 * RETRY, &[waiting]), vec![]);
        assert_ne!(words.get(0), 0);
        assert_eq!(w.left(0), 1);
    }

    #[test]
    fn a_link_event_on_a_member_already_left_counts_nothing() {
        let t0 = Time::from_millis(10);
        let (mut w, words) = watch();
        words.mark(0, LOST_EPOCH as usize);
        let (_, news) = w.link_down(0, false).expect("marked");
        assert!(!news, "the control thread had left it: no news");
        assert_eq!(w.left(0), 0);
        // Nor at the next look: the mark was seen with the link event.
        let down = MemberNow::default();
        assert_eq!(w.look(t0, &[down]), vec![]);
    }

    #[test]
    fn a_retired_slot_forgets_its_mark_and_a_new_member_counts_from_zero() {
        let t0 = Time::from_millis(10);
        let (mut w, words) = watch();
        words.mark(0, LOST_EPOCH as usize);
        assert_eq!(w.look(t0, &[UP]), vec![LostNews::Left(0)]);
        let retired = MemberNow {
            retired: true,
            ..UP
        };
        assert_eq!(w.look(t0 + RETRY, &[retired]), vec![]);
        // Still marked in the words; a retired slot is left out of the mask.
        assert_eq!(w.marked(1, |_| false), 0b1);
        assert_eq!(w.marked(1, |_| true), 0);
        w.join(0);
        assert_eq!(w.left(0), 0);
        words.clear(0, LOST_EPOCH as usize);
        words.mark(0, LOST_EPOCH as usize);
        assert_eq!(w.look(t0 + 2 * RETRY, &[UP]), vec![LostNews::Left(0)]);
        assert_eq!(w.left(0), 1);
    }

    #[test]
    fn a_link_event_after_a_mark_says_how_far_ahead_and_is_news_once() {
        let t0 = Time::from_millis(10);
        let (mut w, words) = watch();
        assert_eq!(
            w.link_down(0, true),
            None,
            "no mark: the link event came first"
        );
        words.mark(0, LOST_EPOCH as usize);
        let (ago, news) = w.link_down(0, true).expect("marked");
        assert!(news);
        assert!(ago < Duration::from_secs(5));
        assert_eq!(w.left(0), 1);
        // The same mark again (another notification): counted once, no news.
        assert_eq!(w.link_down(0, true).map(|x| x.1), Some(false));
        // The look that follows knows it already.
        assert_eq!(w.look(t0, &[UP]), vec![LostNews::Retried(0)]);
    }

    #[test]
    fn clearing_makes_the_next_mark_news_again() {
        let t0 = Time::from_millis(10);
        let (mut w, words) = watch();
        words.mark(2, LOST_EPOCH as usize);
        assert_eq!(w.look(t0, &[UP, UP, UP]), vec![LostNews::Left(2)]);
        assert_eq!(w.marked(3, |_| false), 0b100);
        w.clear(2);
        assert_eq!(words.get(2), 0);
        assert_eq!(w.marked(3, |_| false), 0);
        words.mark(2, LOST_EPOCH as usize);
        assert_eq!(w.look(t0 + RETRY, &[UP, UP, UP]), vec![LostNews::Left(2)]);
        assert_eq!(w.left(2), 2);
    }

    #[test]
    fn without_words_nothing_is_due_or_marked() {
        let t0 = Time::from_millis(10);
        let mut w = LostWatch::new(None);
        assert_eq!(w.deadline(), None);
        assert_eq!(w.look(t0, &[UP]), vec![]);
        assert_eq!(w.link_down(0, true), None);
        assert!(!w.count(0, true));
        assert_eq!(w.marked(1, |_| false), 0);
        w.clear(0);
    }
}
