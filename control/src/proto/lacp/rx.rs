//! Receive machine, 802.1AX-2008 5.4.12 (Figure 5-10).
//!
//! Records the partner's information from LACPDUs, times it out (current_while: 3 s with a
//! short timeout, 90 s with a long one), and falls back to administrative defaults.

use std::fmt;

use super::pdu::{LacpState, Lacpdu, PortInfo};
use super::port::{PortVars, Selected, Timer};
use super::{Time, LONG_TIMEOUT, SHORT_TIMEOUT};

/// Receive machine states.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// INITIALIZE.
    Initialize,
    /// PORT_DISABLED.
    PortDisabled,
    /// EXPIRED.
    Expired,
    /// LACP_DISABLED (not used: every xlagg port runs LACP).
    LacpDisabled,
    /// DEFAULTED.
    Defaulted,
    /// CURRENT.
    Current,
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            State::Initialize => "INITIALIZE",
            State::PortDisabled => "PORT_DISABLED",
            State::Expired => "EXPIRED",
            State::LacpDisabled => "LACP_DISABLED",
            State::Defaulted => "DEFAULTED",
            State::Current => "CURRENT",
        })
    }
}

fn set_state(port: &mut PortVars, to: State) {
    if port.rx != to {
        tracing::debug!(port = %port.name, "rx {} -> {}", port.rx, to);
    }
    port.rx = to;
}

/// recordDefault: partner operational values from the administrative ones.
fn record_default(port: &mut PortVars) {
    port.partner = port.partner_admin;
    port.set_actor(LacpState::DEFAULTED, true);
}

/// Whether the partner's view of us (`pdu.partner`) matches our operational values.
fn partner_view_matches(actor: &PortInfo, seen: &PortInfo) -> bool {
    actor.same_port(seen)
        && actor.state.has(LacpState::AGGREGATION) == seen.state.has(LacpState::AGGREGATION)
}

/// recordPDU: the partner's actor information becomes our partner information; the partner
/// is in sync when it has us right and says so (or is an individual link that says so).
fn record_pdu(port: &mut PortVars, pdu: &Lacpdu) {
    port.partner = pdu.actor;
    port.set_actor(LacpState::DEFAULTED, false);
    let synced = pdu.actor.state.has(LacpState::SYNCHRONIZATION);
    let active = pdu.actor.state.has(LacpState::ACTIVITY)
        || (port.actor.state.has(LacpState::ACTIVITY)
            && pdu.partner.state.has(LacpState::ACTIVITY));
    let sync = (partner_view_matches(&port.actor, &pdu.partner) && synced && active)
        || (!pdu.actor.state.has(LacpState::AGGREGATION) && synced);
    port.partner.state.set(LacpState::SYNCHRONIZATION, sync);
}

/// update_Selected: a different partner (or a change to individual) unselects the port.
fn update_selected(port: &mut PortVars, pdu: &Lacpdu) {
    let same = port.partner.same_port(&pdu.actor)
        && port.partner.state.has(LacpState::AGGREGATION)
            == pdu.actor.state.has(LacpState::AGGREGATION);
    if !same {
        port.selected = Selected::Unselected;
    }
}

/// update_Default_Selected: the same for the administrative defaults.
fn update_default_selected(port: &mut PortVars) {
    let same = port.partner.same_port(&port.partner_admin)
        && port.partner.state.has(LacpState::AGGREGATION)
            == port.partner_admin.state.has(LacpState::AGGREGATION);
    if !same {
        port.selected = Selected::Unselected;
    }
}

/// update_NTT: transmit soon when the partner's view of us is out of date.
fn update_ntt(port: &mut PortVars, pdu: &Lacpdu) {
    const BITS: u8 = LacpState::ACTIVITY
        | LacpState::TIMEOUT
        | LacpState::SYNCHRONIZATION
        | LacpState::AGGREGATION;
    if !port.actor.same_port(&pdu.partner)
        || (port.actor.state.0 & BITS) != (pdu.partner.state.0 & BITS)
    {
        port.ntt = true;
    }
}

fn enter_current(port: &mut PortVars, pdu: &Lacpdu, now: Time) {
    // First contact after EXPIRED or DEFAULTED: answer at once. update_NTT alone misses the
    // case where the partner's stale view of us matches on the four bits it compares, which
    // left a partner that had dropped our first LACPDU (its link came up a moment later)
    // waiting for our next periodic one, a second later.
    if matches!(port.rx, State::Expired | State::Defaulted) {
        port.ntt = true;
    }
    set_state(port, State::Current);
    update_selected(port, pdu);
    update_ntt(port, pdu);
    record_pdu(port, pdu);
    let timeout = if port.actor_state().has(LacpState::TIMEOUT) {
        SHORT_TIMEOUT
    } else {
        LONG_TIMEOUT
    };
    port.start(Timer::CurrentWhile, now, timeout);
    port.set_actor(LacpState::EXPIRED, false);
}

/// Runs the machine once; returns whether anything changed.
pub(crate) fn run(port: &mut PortVars, now: Time) -> bool {
    let before = (port.rx, port.selected, port.partner, port.actor.state);
    // Global transitions.
    if port.begin {
        set_state(port, State::Initialize);
    } else if !port.enabled && port.rx != State::PortDisabled && port.rx != State::Initialize {
        set_state(port, State::PortDisabled);
        port.partner.state.set(LacpState::SYNCHRONIZATION, false);
        port.stop(Timer::CurrentWhile);
    }
    let pdu = port.pdu.take();
    match port.rx {
        State::Initialize => {
            port.selected = Selected::Unselected;
            record_default(port);
            port.set_actor(LacpState::EXPIRED, false);
            set_state(port, State::PortDisabled);
            port.partner.state.set(LacpState::SYNCHRONIZATION, false);
            if port.enabled {
                enter_expired(port, now);
            }
        }
        State::PortDisabled | State::LacpDisabled => {
            if port.enabled {
                enter_expired(port, now);
            }
        }
        State::Expired => {
            if let Some(pdu) = pdu {
                enter_current(port, &pdu, now);
            } else if port.expired(Timer::CurrentWhile, now) {
                port.stop(Timer::CurrentWhile);
                set_state(port, State::Defaulted);
                update_default_selected(port);
                record_default(port);
                port.set_actor(LacpState::EXPIRED, false);
            }
        }
        State::Defaulted => {
            if let Some(pdu) = pdu {
                enter_current(port, &pdu, now);
            }
        }
        State::Current => {
            if let Some(pdu) = pdu {
                enter_current(port, &pdu, now);
            } else if port.expired(Timer::CurrentWhile, now) {
                enter_expired(port, now);
            }
        }
    }
    before != (port.rx, port.selected, port.partner, port.actor.state)
}

fn enter_expired(port: &mut PortVars, now: Time) {
    set_state(port, State::Expired);
    port.partner.state.set(LacpState::SYNCHRONIZATION, false);
    port.partner.state.set(LacpState::TIMEOUT, true);
    port.start(Timer::CurrentWhile, now, SHORT_TIMEOUT);
    port.set_actor(LacpState::EXPIRED, true);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::lacp::port::{partner_pdu, test_port};
    use std::time::Duration;

    const T0: Time = Time(1_000_000_000);
    const SYNCED: u8 = LacpState::ACTIVITY
        | LacpState::TIMEOUT
        | LacpState::AGGREGATION
        | LacpState::SYNCHRONIZATION;

    fn enabled_in_expired() -> PortVars {
        let mut p = test_port();
        p.enabled = true;
        run(&mut p, T0);
        p.begin = false;
        assert_eq!(p.rx, State::Expired);
        p
    }

    mod initialize {
        use super::*;

        #[test]
        fn records_defaults_and_waits_disabled_while_the_link_is_down() {
            let mut p = test_port();
            run(&mut p, T0);
            assert_eq!(p.rx, State::PortDisabled);
            assert_eq!(p.selected, Selected::Unselected);
            assert_eq!(p.partner, p.partner_admin);
            assert!(p.actor.state.has(LacpState::DEFAULTED));
            assert!(!p.actor.state.has(LacpState::EXPIRED));
        }
    }

    mod port_disabled {
        use super::*;

        #[test]
        fn link_up_enters_expired_with_a_short_timer_and_the_expired_bit() {
            let p = enabled_in_expired();
            assert!(p.actor.state.has(LacpState::EXPIRED));
            assert!(
                p.partner.state.has(LacpState::TIMEOUT),
                "partner assumed short timeout"
            );
            assert_eq!(
                p.timers[Timer::CurrentWhile as usize],
                Some(T0 + SHORT_TIMEOUT)
            );
        }
    }

    mod expired {
        use super::*;

        #[test]
        fn a_pdu_makes_it_current_and_records_the_partner() {
            let mut p = enabled_in_expired();
            p.ntt = false;
            p.pdu = Some(partner_pdu(&p.actor, SYNCED));
            run(&mut p, T0);
            assert!(p.ntt, "first contact is answered at once");
            assert_eq!(p.rx, State::Current);
            assert_eq!(p.partner.system, [2, 0, 0, 0, 0, 2]);
            assert!(!p.actor.state.has(LacpState::DEFAULTED));
            assert!(!p.actor.state.has(LacpState::EXPIRED));
            assert!(
                p.partner.state.has(LacpState::SYNCHRONIZATION),
                "partner has us right and says sync"
            );
        }

        #[test]
        fn silence_until_current_while_expires_defaults() {
            let mut p = enabled_in_expired();
            run(&mut p, T0 + SHORT_TIMEOUT);
            assert_eq!(p.rx, State::Defaulted);
            assert!(p.actor.state.has(LacpState::DEFAULTED));
            assert_eq!(p.timers[Timer::CurrentWhile as usize], None);
        }
    }

    mod current {
        use super::*;

        fn current() -> PortVars {
            let mut p = enabled_in_expired();
            p.pdu = Some(partner_pdu(&p.actor, SYNCED));
            run(&mut p, T0);
            p.selected = Selected::Selected;
            p
        }

        #[test]
        fn current_while_follows_our_own_timeout_bit() {
            let p = current();
            assert_eq!(
                p.timers[Timer::CurrentWhile as usize],
                Some(T0 + SHORT_TIMEOUT)
            );
            let mut p = enabled_in_expired();
            p.actor.state.set(LacpState::TIMEOUT, false);
            p.pdu = Some(partner_pdu(&p.actor, SYNCED));
            run(&mut p, T0);
            assert_eq!(
                p.timers[Timer::CurrentWhile as usize],
                Some(T0 + LONG_TIMEOUT)
            );
        }

        #[test]
        fn a_partner_with_a_wrong_view_of_us_is_not_in_sync_and_we_must_transmit() {
            let mut p = current();
            p.ntt = false;
            let mut wrong = p.actor;
            wrong.key = 99;
            p.pdu = Some(partner_pdu(&wrong, SYNCED));
            run(&mut p, T0 + Duration::from_millis(10));
            assert!(!p.partner.state.has(LacpState::SYNCHRONIZATION));
            assert!(p.ntt, "update_NTT: the partner must learn our real values");
        }

        #[test]
        fn a_different_partner_unselects_the_port() {
            let mut p = current();
            let mut pdu = partner_pdu(&p.actor, SYNCED);
            pdu.actor.system = [2, 0, 0, 0, 0, 3];
            p.pdu = Some(pdu);
            run(&mut p, T0 + Duration::from_millis(10));
            assert_eq!(p.selected, Selected::Unselected);
        }

        #[test]
        fn an_individual_partner_in_sync_counts_as_sync() {
            let mut p = enabled_in_expired();
            let mut wrong = p.actor;
            wrong.port = 42;
            p.pdu = Some(partner_pdu(
                &wrong,
                LacpState::ACTIVITY | LacpState::SYNCHRONIZATION,
            ));
            run(&mut p, T0);
            assert!(p.partner.state.has(LacpState::SYNCHRONIZATION));
        }

        #[test]
        fn expiry_goes_back_to_expired() {
            let mut p = current();
            run(&mut p, T0 + SHORT_TIMEOUT);
            assert_eq!(p.rx, State::Expired);
            assert!(!p.partner.state.has(LacpState::SYNCHRONIZATION));
        }

        #[test]
        fn link_down_disables_and_drops_partner_sync() {
            let mut p = current();
            p.enabled = false;
            run(&mut p, T0 + Duration::from_millis(1));
            assert_eq!(p.rx, State::PortDisabled);
            assert!(!p.partner.state.has(LacpState::SYNCHRONIZATION));
            assert_eq!(p.timers[Timer::CurrentWhile as usize], None);
        }
    }

    mod defaulted {
        use super::*;

        #[test]
        fn a_pdu_leaves_defaults_for_current() {
            let mut p = enabled_in_expired();
            run(&mut p, T0 + SHORT_TIMEOUT);
            assert_eq!(p.rx, State::Defaulted);
            p.pdu = Some(partner_pdu(&p.actor, SYNCED));
            run(&mut p, T0 + SHORT_TIMEOUT + Duration::from_secs(1));
            assert_eq!(p.rx, State::Current);
        }
    }
}
