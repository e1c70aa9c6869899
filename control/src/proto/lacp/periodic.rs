//! Periodic Transmission machine, 802.1AX-2008 5.4.13 (Figure 5-11).
//!
//! The rate follows the *partner's* Timeout bit: every second when it asks for a short
//! timeout, every 30 s otherwise. Nothing is sent periodically when both ends are passive.

use std::fmt;

use super::pdu::LacpState;
use super::port::{PortVars, Timer};
use super::{Time, FAST_PERIODIC, SLOW_PERIODIC};

/// Periodic machine states.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// NO_PERIODIC.
    NoPeriodic,
    /// FAST_PERIODIC.
    Fast,
    /// SLOW_PERIODIC.
    Slow,
    /// PERIODIC_TX (transient).
    PeriodicTx,
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            State::NoPeriodic => "NO_PERIODIC",
            State::Fast => "FAST_PERIODIC",
            State::Slow => "SLOW_PERIODIC",
            State::PeriodicTx => "PERIODIC_TX",
        })
    }
}

fn set_state(port: &mut PortVars, to: State) {
    if port.periodic != to && to != State::PeriodicTx && port.periodic != State::PeriodicTx {
        tracing::trace!(port = %port.name, "periodic {} -> {}", port.periodic, to);
    }
    port.periodic = to;
}

fn partner_short(port: &PortVars) -> bool {
    port.partner_has(LacpState::TIMEOUT)
}

/// Runs the machine once; returns whether anything changed.
pub(crate) fn run(port: &mut PortVars, now: Time) -> bool {
    let before = port.periodic;
    let both_passive =
        !port.actor_state().has(LacpState::ACTIVITY) && !port.partner_has(LacpState::ACTIVITY);
    if port.begin || !port.enabled || both_passive {
        if port.periodic != State::NoPeriodic {
            set_state(port, State::NoPeriodic);
            port.stop(Timer::Periodic);
        }
        return before != port.periodic;
    }
    match port.periodic {
        State::NoPeriodic => enter_fast(port, now),
        State::Fast => {
            if port.expired(Timer::Periodic, now) {
                periodic_tx(port, now);
            } else if !partner_short(port) {
                enter_slow(port, now);
            }
        }
        State::Slow => {
            if port.expired(Timer::Periodic, now) || partner_short(port) {
                periodic_tx(port, now);
            }
        }
        State::PeriodicTx => periodic_tx(port, now),
    }
    before != port.periodic
}

fn enter_fast(port: &mut PortVars, now: Time) {
    set_state(port, State::Fast);
    port.start(Timer::Periodic, now, FAST_PERIODIC);
}

fn enter_slow(port: &mut PortVars, now: Time) {
    set_state(port, State::Slow);
    port.start(Timer::Periodic, now, SLOW_PERIODIC);
}

fn periodic_tx(port: &mut PortVars, now: Time) {
    set_state(port, State::PeriodicTx);
    port.ntt = true;
    if partner_short(port) {
        enter_fast(port, now);
    } else {
        enter_slow(port, now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::lacp::port::test_port;
    use std::time::Duration;

    const T0: Time = Time(1_000_000_000);

    fn running(partner_short: bool) -> PortVars {
        let mut p = test_port();
        p.begin = false;
        p.enabled = true;
        p.partner.state.set(LacpState::TIMEOUT, partner_short);
        p.partner.state.set(LacpState::ACTIVITY, true);
        run(&mut p, T0);
        p
    }

    mod no_periodic {
        use super::*;

        #[test]
        fn both_passive_or_link_down_send_nothing() {
            let mut p = running(true);
            p.actor.state.set(LacpState::ACTIVITY, false);
            p.partner.state.set(LacpState::ACTIVITY, false);
            run(&mut p, T0);
            assert_eq!(p.periodic, State::NoPeriodic);
            assert_eq!(p.timers[Timer::Periodic as usize], None);
            let mut p = running(true);
            p.enabled = false;
            run(&mut p, T0);
            assert_eq!(p.periodic, State::NoPeriodic);
        }
    }

    mod fast_periodic {
        use super::*;

        #[test]
        fn a_short_timeout_partner_gets_an_lacpdu_every_second() {
            let mut p = running(true);
            assert_eq!(p.periodic, State::Fast);
            assert_eq!(p.timers[Timer::Periodic as usize], Some(T0 + FAST_PERIODIC));
            run(&mut p, T0 + FAST_PERIODIC);
            assert!(p.ntt);
            assert_eq!(p.periodic, State::Fast);
            assert_eq!(
                p.timers[Timer::Periodic as usize],
                Some(T0 + FAST_PERIODIC + FAST_PERIODIC)
            );
        }

        #[test]
        fn a_partner_switching_to_long_slows_down() {
            let mut p = running(true);
            p.partner.state.set(LacpState::TIMEOUT, false);
            run(&mut p, T0 + Duration::from_millis(100));
            assert_eq!(p.periodic, State::Slow);
        }
    }

    mod slow_periodic {
        use super::*;

        #[test]
        fn a_long_timeout_partner_gets_one_every_30_s_and_a_switch_to_short_is_answered_at_once() {
            let mut p = running(false);
            run(&mut p, T0 + Duration::from_millis(1));
            assert_eq!(p.periodic, State::Slow);
            p.ntt = false;
            p.partner.state.set(LacpState::TIMEOUT, true);
            run(&mut p, T0 + Duration::from_secs(2));
            assert!(p.ntt, "PERIODIC_TX on the switch");
            assert_eq!(p.periodic, State::Fast);
        }
    }
}
