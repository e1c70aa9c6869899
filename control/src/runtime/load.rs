//! How the transmit load is spread over a lagg's members, over the last window: each member's
//! share of the bytes sent and the imbalance index (the busiest active member's rate over the
//! mean of the active members': 1.0 is even, N is everything on one of N). Sans-IO: the caller
//! passes the time and the members' transmit byte counters, about once a second.

use std::time::Duration;

use crate::proto::time::Time;

/// The shortest window a measurement covers: a shorter one (a view published right after a
/// change) keeps the previous figures.
pub const MIN_WINDOW: Duration = Duration::from_millis(900);

/// One window's figures.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Load {
    /// The window's length.
    pub window: Duration,
    /// Bytes per second each member sent (by member slot).
    pub rate: Vec<f64>,
    /// Each member's share of the bytes the members sent, 0 to 1 (`None`: nothing was sent).
    pub share: Vec<Option<f64>>,
    /// Busiest active member's rate over the active members' mean; `None` with no active
    /// member or nothing sent.
    pub imbalance: Option<f64>,
}

/// Turns counter samples into [`Load`]s.
#[derive(Clone, Debug, Default)]
pub struct LoadMeter {
    last: Option<(Time, Vec<u64>)>,
    load: Option<Load>,
}

impl LoadMeter {
    /// Takes the counters at `now` (`tx_bytes` and `active` by member slot). Returns whether
    /// a new window was measured. A counter that went back (a member re-made) counts as
    /// nothing sent; a change in the number of slots starts over.
    pub fn update(&mut self, now: Time, tx_bytes: &[u64], active: &[bool]) -> bool {
        let Some((then, before)) = &self.last else {
            self.last = Some((now, tx_bytes.to_vec()));
            return false;
        };
        if before.len() != tx_bytes.len() {
            self.last = Some((now, tx_bytes.to_vec()));
            self.load = None;
            return false;
        }
        let window = now.since(*then);
        if window < MIN_WINDOW {
            return false;
        }
        let seconds = window.as_secs_f64();
        let rate: Vec<f64> = tx_bytes
            .iter()
            .zip(before)
            .map(|(now, then)| now.saturating_sub(*then) as f64 / seconds)
            .collect();
        let total: f64 = rate.iter().sum();
        let share = rate
            .iter()
            .map(|r| (total > 0.0).then(|| r / total))
            .collect();
        let active_rates: Vec<f64> = rate
            .iter()
            .zip(active.iter().chain(std::iter::repeat(&false)))
            .filter(|(_, a)| **a)
            .map(|(r, _)| *r)
            .collect();
        let active_total: f64 = active_rates.iter().sum();
        let imbalance = (!active_rates.is_empty() && active_total > 0.0).then(|| {
            let mean = active_total / active_rates.len() as f64;
            active_rates.iter().copied().fold(0.0, f64::max) / mean
        });
        self.load = Some(Load {
            window,
            rate,
            share,
            imbalance,
        });
        self.last = Some((now, tx_bytes.to_vec()));
        true
    }

    /// The last window's figures, once one was measured.
    pub fn load(&self) -> Option<&Load> {
        self.load.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn shares_and_imbalance_follow_the_bytes_sent() {
        let t0 = Time::from_millis(1000);
        let mut m = LoadMeter::default();
        assert!(!m.update(t0, &[0, 0, 0], &[true, true, false]));
        assert!(m.load().is_none(), "one sample is no window");
        assert!(
            !m.update(t0 + S / 2, &[10, 10, 0], &[true, true, false]),
            "too short"
        );
        assert!(m.update(t0 + S, &[300, 100, 0], &[true, true, false]));
        let l = m.load().expect("a window");
        assert_eq!(l.window, S);
        assert_eq!(l.rate, [300.0, 100.0, 0.0]);
        assert_eq!(l.share, [Some(0.75), Some(0.25), Some(0.0)]);
        assert_eq!(l.imbalance, Some(1.5), "300 over a mean of 200");
        // Even: 1.0. An inactive member that sends nothing does not count.
        assert!(m.update(t0 + 2 * S, &[400, 200, 0], &[true, true, false]));
        assert_eq!(m.load().expect("window").imbalance, Some(1.0));
        // Everything on one of two active members: 2.0.
        assert!(m.update(t0 + 3 * S, &[400, 400, 0], &[true, true, false]));
        assert_eq!(m.load().expect("window").imbalance, Some(2.0));
    }

    #[test]
    fn nothing_sent_counters_gone_back_and_new_slots_say_so() {
        let t0 = Time::from_millis(1000);
        let mut m = LoadMeter::default();
        m.update(t0, &[100, 100], &[true, true]);
        assert!(m.update(t0 + S, &[100, 100], &[true, true]));
        let l = m.load().expect("window");
        assert_eq!((l.share.clone(), l.imbalance), (vec![None, None], None));
        assert!(
            m.update(t0 + 2 * S, &[50, 150], &[true, true]),
            "a re-made member"
        );
        assert_eq!(m.load().expect("window").share, [Some(0.0), Some(1.0)]);
        assert!(!m.update(t0 + 3 * S, &[50, 150, 0], &[true, true, true]));
        assert!(
            m.load().is_none(),
            "a new member starts the measurement over"
        );
        assert!(m.update(t0 + 4 * S, &[60, 160, 10], &[true, true, false]));
        assert_eq!(m.load().expect("window").share.len(), 3);
        let none_active = {
            let mut m = LoadMeter::default();
            m.update(t0, &[0], &[false]);
            m.update(t0 + S, &[10], &[false]);
            m.load().expect("window").imbalance
        };
        assert_eq!(none_active, None);
    }
}
