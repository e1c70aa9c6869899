//! The rate search of the RFC 2544 scenario, without I/O: which rate to try next, given the
//! trials so far, for several loss goals at once (NDR: no loss; PDR: at most 0.5 %).
//!
//! The shape follows MLRsearch (as FD.io CSIT runs it): the trials are shared by every goal
//! (a trial at rate r with loss ℓ is a lower bound of each goal that allows ℓ, an upper bound
//! of the others), the search runs in phases whose trials grow longer and whose target width
//! grows finer, and each phase starts again from the previous phase's bounds, so the final
//! answer rests only on full-length trials. A lossy trial below a lower bound (the machine
//! is noisy) drops that bound, and the search widens from there: the answer is the highest
//! rate that passed with nothing lower failing in the final phase.
//!
//! The first trial runs flat out and sets the largest rate the tester offers; where it
//! fails, the rate the device forwarded in it is the next guess, as MLRsearch does with
//! the maximum receive rate.

/// A trial's outcome, as [`Search::record`] takes it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Outcome {
    /// Frames per second offered.
    pub rate: f64,
    /// Seconds it ran.
    pub seconds: f64,
    /// Frames lost over frames sent (0.0 to 1.0).
    pub loss: f64,
}

/// One goal's bounds in a phase.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Bounds {
    /// The highest rate that met the goal below every rate that missed it.
    lower: Option<f64>,
    /// The lowest rate that missed it, and its loss.
    upper: Option<(f64, f64)>,
}

impl Bounds {
    /// From a phase's trials: the lowest miss, and the highest pass below it. Passes of a
    /// stricter goal are passes of a looser one and its misses are a superset, so a looser
    /// goal's bounds are never below a stricter one's.
    fn of(outcomes: &[Outcome], goal: f64) -> Bounds {
        let upper = outcomes
            .iter()
            .filter(|o| o.loss > goal + EPS)
            .map(|o| (o.rate, o.loss))
            .min_by(|a, b| a.0.total_cmp(&b.0));
        let lower = outcomes
            .iter()
            .filter(|o| o.loss <= goal + EPS && upper.is_none_or(|(u, _)| o.rate < u - EPS))
            .map(|o| o.rate)
            .max_by(f64::total_cmp);
        Bounds { lower, upper }
    }
}

/// One phase: its trial length and the relative width at which a goal is done.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Phase {
    /// Seconds per trial.
    pub seconds: f64,
    /// Done when `(upper - lower) / upper` is at most this.
    pub width: f64,
}

/// The search's answer for one goal.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Answer {
    /// The highest rate that met the goal in the final phase (0 when even the lowest
    /// rate missed it).
    pub lower: f64,
    /// The lowest rate that missed it, if any did (none: the goal held at the tester's
    /// largest rate).
    pub upper: Option<f64>,
}

/// The search over rates between `min` and `max` frames per second.
#[derive(Clone, Debug)]
pub struct Search {
    min: f64,
    max: f64,
    goals: Vec<f64>,
    phases: Vec<Phase>,
    phase: usize,
    /// This phase's trials (of its length).
    outcomes: Vec<Outcome>,
    hints: Vec<Bounds>,
    /// The relative step of the next widening per goal; it doubles at each one.
    step: Vec<f64>,
    trials: usize,
    max_trials: usize,
}

/// Floating-point slack when rates are compared.
const EPS: f64 = 1e-9;

impl Search {
    /// A search for `goals` (loss ratios) between `min` and `max`, in `phases` (shortest
    /// first), giving up after `max_trials` trials.
    pub fn new(min: f64, max: f64, goals: &[f64], phases: Vec<Phase>, max_trials: usize) -> Self {
        let max = max.max(1.0);
        Search {
            min: min.clamp(1.0, max),
            max,
            goals: goals.to_vec(),
            phases,
            phase: 0,
            outcomes: Vec::new(),
            hints: vec![Bounds::default(); goals.len()],
            step: vec![0.0; goals.len()],
            trials: 0,
            max_trials,
        }
    }

    /// Phases from `final_seconds` and `width`: each earlier one half as long (not below
    /// `shortest`) and twice as wide; `count` of them, fewer where lengths would repeat.
    pub fn phases(final_seconds: f64, width: f64, count: usize, shortest: f64) -> Vec<Phase> {
        let mut out: Vec<Phase> = Vec::new();
        for k in (0..count.max(1)).rev() {
            let scale = f64::from(1u32 << k.min(16));
            let seconds = (final_seconds / scale).max(shortest.min(final_seconds));
            let phase = Phase {
                seconds,
                width: width * scale,
            };
            match out.last_mut() {
                Some(last) if (last.seconds - seconds).abs() < EPS => *last = phase,
                _ => out.push(phase),
            }
        }
        out
    }

    /// The next trial (rate, seconds), or none: the search is done.
    pub fn next_trial(&mut self) -> Option<(f64, f64)> {
        while self.phase < self.phases.len() && self.trials < self.max_trials {
            let phase = self.phases[self.phase];
            for g in 0..self.goals.len() {
                if let Some(rate) = self.next_for(g, phase.width) {
                    return Some((rate.clamp(self.min, self.max), phase.seconds));
                }
            }
            // Every goal is narrow enough: the next phase starts from these bounds.
            self.hints = self.bounds();
            self.outcomes.clear();
            self.step = vec![0.0; self.goals.len()];
            self.phase += 1;
        }
        None
    }

    /// Whether the search ended before its final phase was done (the trial cap).
    pub fn cut_short(&self) -> bool {
        self.phase < self.phases.len()
    }

    fn bounds(&self) -> Vec<Bounds> {
        self.goals
            .iter()
            .map(|&goal| Bounds::of(&self.outcomes, goal))
            .collect()
    }

    fn next_for(&mut self, g: usize, width: f64) -> Option<f64> {
        let b = Bounds::of(&self.outcomes, self.goals[g]);
        let h = self.hints[g];
        match (b.lower, b.upper) {
            (Some(l), Some((u, _))) => ((u - l) > width * u + EPS).then(|| (l + u) / 2.0),
            (Some(l), None) => {
                if l >= self.max - EPS {
                    return None;
                }
                Some(match h.upper {
                    Some((hu, _)) if hu > l + EPS => hu,
                    _ => l * (1.0 + self.widen(g, width)),
                })
            }
            (None, Some((u, loss))) => {
                if u <= self.min + EPS {
                    return None;
                }
                let forwarded = u * (1.0 - loss);
                Some(match h.lower {
                    Some(hl) if hl < u - EPS => hl,
                    // The rate the device forwarded at the failing one: a good first guess.
                    _ if self.step[g] == 0.0 && forwarded < u * (1.0 - width) => {
                        self.step[g] = width;
                        forwarded
                    }
                    _ => u * (1.0 - self.widen(g, width)),
                })
            }
            (None, None) => Some(h.lower.or(h.upper.map(|(u, _)| u)).unwrap_or(self.max)),
        }
    }

    /// The next widening step for goal `g`: twice the last, starting at twice the width.
    fn widen(&mut self, g: usize, width: f64) -> f64 {
        self.step[g] = (self.step[g] * 2.0).max(width * 2.0).min(0.9);
        self.step[g]
    }

    /// Takes a trial's outcome. Trials of another length than the phase's (latency runs,
    /// say) are not bounds.
    pub fn record(&mut self, outcome: Outcome) {
        self.trials += 1;
        let Some(phase) = self.phases.get(self.phase) else {
            return;
        };
        if (outcome.seconds - phase.seconds).abs() > EPS {
            return;
        }
        self.outcomes.push(outcome);
    }

    /// The answer per goal: the final phase's bounds (or, cut short, the current ones).
    pub fn answers(&self) -> Vec<Answer> {
        let bounds = if self.phase >= self.phases.len() {
            self.hints.clone()
        } else {
            self.bounds()
        };
        bounds
            .iter()
            .map(|b| Answer {
                lower: b.lower.unwrap_or(0.0),
                upper: b.upper.map(|(u, _)| u),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NDR: f64 = 0.0;
    const PDR: f64 = 0.005;

    /// Runs a search against `loss(rate, trial number)`; the answers and the trials.
    fn run(
        max: f64,
        phases: Vec<Phase>,
        mut loss: impl FnMut(f64, usize) -> f64,
    ) -> (Vec<Answer>, Vec<(f64, f64)>, bool) {
        let mut s = Search::new(max / 100.0, max, &[NDR, PDR], phases, 80);
        let mut trials = Vec::new();
        while let Some((rate, seconds)) = s.next_trial() {
            let l = loss(rate, trials.len());
            trials.push((rate, seconds));
            s.record(Outcome {
                rate,
                seconds,
                loss: l,
            });
        }
        (s.answers(), trials, s.cut_short())
    }

    /// A device that forwards `cap` frames per second and drops the rest.
    fn capped(cap: f64) -> impl FnMut(f64, usize) -> f64 {
        move |rate, _| ((rate - cap) / rate).max(0.0)
    }

    #[test]
    fn phases_halve_in_length_and_double_in_width() {
        let p = Search::phases(8.0, 0.01, 3, 0.5);
        assert_eq!(
            p,
            vec![
                Phase {
                    seconds: 2.0,
                    width: 0.04
                },
                Phase {
                    seconds: 4.0,
                    width: 0.02
                },
                Phase {
                    seconds: 8.0,
                    width: 0.01
                },
            ]
        );
        // Lengths that would repeat collapse into the finer phase.
        let p = Search::phases(1.0, 0.01, 3, 0.5);
        assert_eq!(p.len(), 2, "{p:?}");
        assert_eq!(p[1].width, 0.01);
    }

    #[test]
    fn finds_ndr_and_pdr_of_a_capped_device_within_the_width() {
        let phases = Search::phases(4.0, 0.01, 3, 1.0);
        let (a, trials, short) = run(2e6, phases, capped(1.2e6));
        assert!(!short);
        let (ndr, pdr) = (a[0], a[1]);
        let ndr_upper = ndr.upper.unwrap();
        assert!(ndr.lower <= 1.2e6 && ndr_upper > 1.2e6, "{ndr:?}");
        assert!(
            (ndr_upper - ndr.lower) / ndr_upper <= 0.01 + 1e-9,
            "{ndr:?}"
        );
        // PDR: the rate at which 0.5 % is lost, cap / 0.995.
        let pdr_true = 1.2e6 / (1.0 - PDR);
        assert!(
            pdr.lower <= pdr_true && pdr.upper.unwrap() > pdr_true,
            "{pdr:?}"
        );
        assert!(pdr.lower >= ndr.lower);
        assert!(trials.len() < 40, "{} trials: {trials:?}", trials.len());
        // The first trial runs at the largest rate, the answer rests on full-length ones.
        assert_eq!(trials[0].0, 2e6);
        assert_eq!(trials.last().unwrap().1, 4.0);
    }

    #[test]
    fn the_first_guess_after_a_lossy_maximum_is_the_rate_forwarded() {
        let phases = Search::phases(1.0, 0.01, 1, 1.0);
        let (_, trials, _) = run(2e6, phases, capped(0.5e6));
        assert_eq!(trials[1].0, 0.5e6, "{trials:?}");
    }

    #[test]
    fn a_device_that_never_loses_is_reported_at_the_tester_maximum() {
        let (a, trials, short) = run(1e6, Search::phases(2.0, 0.01, 2, 1.0), |_, _| 0.0);
        assert!(!short);
        for answer in a {
            assert_eq!(answer.lower, 1e6);
            assert_eq!(answer.upper, None);
        }
        assert_eq!(trials.len(), 2, "one trial per phase: {trials:?}");
    }

    #[test]
    fn a_device_that_always_loses_ends_at_the_lowest_rate_with_zero() {
        let (a, trials, short) = run(1e6, Search::phases(1.0, 0.01, 1, 1.0), |_, _| 0.5);
        assert!(!short, "{trials:?}");
        assert_eq!(a[0].lower, 0.0);
        assert_eq!(a[0].upper, Some(1e4));
        assert!(trials.len() < 20, "{trials:?}");
    }

    #[test]
    fn a_lossy_trial_below_a_lower_bound_drops_it_and_the_search_goes_lower() {
        // Trial 3 is unlucky: loss at a rate that otherwise passes.
        let (a, trials, _) = run(2e6, Search::phases(1.0, 0.01, 1, 1.0), |rate, i| {
            if i == 3 {
                0.001
            } else {
                ((rate - 1.2e6) / rate).max(0.0)
            }
        });
        let unlucky = trials[3].0;
        assert!(
            a[0].lower < unlucky,
            "NDR {a:?} above the unlucky rate {unlucky}: {trials:?}"
        );
        // PDR allows 0.1 %, so the same trial is a lower bound for it.
        assert!(a[1].lower >= 1.2e6 * 0.99, "{a:?}");
    }

    #[test]
    fn pdr_is_never_below_ndr_under_noise() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..50 {
            let (a, _, _) = run(2e6, Search::phases(2.0, 0.02, 2, 1.0), |rate, _| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let noise = (seed % 1000) as f64 / 1000.0 * 0.004;
                ((rate - 1.0e6) / rate).max(0.0) + if seed.is_multiple_of(7) { noise } else { 0.0 }
            });
            assert!(a[1].lower >= a[0].lower, "{a:?}");
        }
    }

    #[test]
    fn the_trial_cap_ends_a_search_that_cannot_settle() {
        let mut s = Search::new(1.0, 1e6, &[NDR], Search::phases(1.0, 1e-9, 1, 1.0), 10);
        let mut n = 0;
        // Miss, meet, miss, ...: the bounds close in but never within a width of 1e-9.
        let mut flip = true;
        while let Some((rate, seconds)) = s.next_trial() {
            flip = !flip;
            n += 1;
            s.record(Outcome {
                rate,
                seconds,
                loss: if flip { 0.0 } else { 1.0 },
            });
        }
        assert_eq!(n, 10);
        assert!(s.cut_short());
    }

    #[test]
    fn trials_of_another_length_are_not_bounds() {
        let mut s = Search::new(1.0, 1e6, &[NDR], Search::phases(1.0, 0.01, 1, 1.0), 10);
        s.record(Outcome {
            rate: 5e5,
            seconds: 0.3,
            loss: 0.0,
        });
        assert_eq!(s.next_trial(), Some((1e6, 1.0)));
    }
}
