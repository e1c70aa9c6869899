//! Churn Detection machines, 802.1AX-2008 5.4.17 (Figures 5-17 and 5-18): a port whose actor
//! (or partner) has not reached synchronization within Churn_Detection_Time (60 s) is in churn,
//! a sign of a misconfigured or flapping link. Each entry into churn is counted.

use std::fmt;

use super::pdu::LacpState;
use super::port::{PortVars, Timer};
use super::{Time, CHURN_DETECTION};

/// Churn machine states (the same for actor and partner).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// ACTOR_CHURN_MONITOR / PARTNER_CHURN_MONITOR.
    Monitor,
    /// NO_ACTOR_CHURN / NO_PARTNER_CHURN.
    NoChurn,
    /// ACTOR_CHURN / PARTNER_CHURN.
    Churn,
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            State::Monitor => "CHURN_MONITOR",
            State::NoChurn => "NO_CHURN",
            State::Churn => "CHURN",
        })
    }
}

/// Runs both churn machines once; returns whether anything changed.
pub(crate) fn run(port: &mut PortVars, now: Time) -> bool {
    let actor_sync = port.actor_state().has(LacpState::SYNCHRONIZATION);
    let partner_sync = port.partner_has(LacpState::SYNCHRONIZATION);
    let enabled = port.enabled && !port.begin;
    let (state, changed, churned) = step(
        port.actor_churn,
        actor_sync,
        enabled,
        port,
        Timer::ActorChurn,
        now,
    );
    port.actor_churn = state;
    if churned {
        port.counters.actor_churn += 1;
        tracing::warn!(port = %port.name, "actor churn: not in sync within {} s", CHURN_DETECTION.as_secs());
    }
    let (state, changed2, churned) = step(
        port.partner_churn,
        partner_sync,
        enabled,
        port,
        Timer::PartnerChurn,
        now,
    );
    port.partner_churn = state;
    if churned {
        port.counters.partner_churn += 1;
        tracing::warn!(port = %port.name, "partner churn: partner not in sync within {} s", CHURN_DETECTION.as_secs());
    }
    changed || changed2
}

/// One machine: returns (new state, changed, entered churn).
fn step(
    state: State,
    sync: bool,
    enabled: bool,
    port: &mut PortVars,
    timer: Timer,
    now: Time,
) -> (State, bool, bool) {
    if !enabled {
        // BEGIN or port disabled: monitoring, with the timer held until the port is enabled
        // (the standard re-enters the monitor state, restarting the timer, while disabled).
        port.stop(timer);
        return (State::Monitor, state != State::Monitor, false);
    }
    if state == State::Monitor && port.timers[timer as usize].is_none() && !sync {
        port.start(timer, now, CHURN_DETECTION);
    }
    match state {
        State::Monitor if sync => {
            port.stop(timer);
            (State::NoChurn, true, false)
        }
        State::Monitor if port.expired(timer, now) => {
            port.stop(timer);
            (State::Churn, true, true)
        }
        State::NoChurn if !sync => {
            port.start(timer, now, CHURN_DETECTION);
            (State::Monitor, true, false)
        }
        State::Churn if sync => (State::NoChurn, true, false),
        other => (other, false, false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::lacp::port::test_port;
    use std::time::Duration;

    const T0: Time = Time(1_000_000_000);

    fn monitoring() -> PortVars {
        let mut p = test_port();
        p.begin = false;
        p.enabled = true;
        run(&mut p, T0);
        assert_eq!(p.actor_churn, State::Monitor);
        assert_eq!(
            p.timers[Timer::ActorChurn as usize],
            Some(T0 + CHURN_DETECTION)
        );
        p
    }

    mod monitor {
        use super::*;

        #[test]
        fn sync_in_time_means_no_churn() {
            let mut p = monitoring();
            p.set_actor(LacpState::SYNCHRONIZATION, true);
            run(&mut p, T0 + Duration::from_secs(3));
            assert_eq!(p.actor_churn, State::NoChurn);
            assert_eq!(p.counters.actor_churn, 0);
        }

        #[test]
        fn no_sync_within_60_s_is_churn_and_is_counted_once() {
            let mut p = monitoring();
            run(&mut p, T0 + CHURN_DETECTION);
            assert_eq!(
                (p.actor_churn, p.partner_churn),
                (State::Churn, State::Churn)
            );
            run(&mut p, T0 + CHURN_DETECTION * 2);
            assert_eq!((p.counters.actor_churn, p.counters.partner_churn), (1, 1));
        }

        #[test]
        fn a_disabled_port_does_not_churn() {
            let mut p = monitoring();
            p.enabled = false;
            run(&mut p, T0 + CHURN_DETECTION * 3);
            assert_eq!(p.actor_churn, State::Monitor);
            assert_eq!(p.counters.actor_churn, 0);
        }
    }

    mod churn {
        use super::*;

        #[test]
        fn sync_ends_churn_and_losing_it_monitors_again() {
            let mut p = monitoring();
            run(&mut p, T0 + CHURN_DETECTION);
            p.set_actor(LacpState::SYNCHRONIZATION, true);
            run(&mut p, T0 + CHURN_DETECTION);
            assert_eq!(p.actor_churn, State::NoChurn);
            p.set_actor(LacpState::SYNCHRONIZATION, false);
            run(&mut p, T0 + CHURN_DETECTION * 2);
            assert_eq!(p.actor_churn, State::Monitor);
        }
    }
}
