//! The circuit breaker of flag checks' API path.
//!
//! A flag check sits on the caller's request path, so when the API is down a
//! check must not wait for it again and again. The breaker counts
//! consecutive failed check requests (no answer, timeouts, 429 and 5xx
//! answers; an ordinary 4xx is an answer, not a failure). After
//! [`BreakerPolicy::failures_to_open`] of them it **opens**: checks that
//! would ask the API answer from the cache or the defaults at once, without
//! a request, and report why in [`FlagCheck::error`](super::FlagCheck).
//! After [`BreakerPolicy::open_for`] it lets **one** check through as a
//! probe (half-open) while the others keep answering at once; the probe's
//! success closes the breaker, its failure opens it again for twice as long
//! (up to [`BreakerPolicy::max_open_for`]).
//!
//! Only flag checks go through the breaker: other API calls, events and the
//! DataStream connection keep their own retry policies.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// When the breaker opens and for how long. The defaults: open after 5
/// consecutive failures, probe after 5 s, at most 60 s between probes.
///
/// ```
/// use std::time::Duration;
/// use flagwire::schematic::BreakerPolicy;
///
/// let policy = BreakerPolicy::new().failures_to_open(3).open_for(Duration::from_secs(2));
/// assert_eq!(policy.get_failures_to_open(), 3);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerPolicy {
    failures_to_open: u32,
    open_for: Duration,
    max_open_for: Duration,
}

impl Default for BreakerPolicy {
    fn default() -> Self {
        Self::new()
    }
}

impl BreakerPolicy {
    /// The defaults.
    pub const fn new() -> Self {
        BreakerPolicy {
            failures_to_open: 5,
            open_for: Duration::from_secs(5),
            max_open_for: Duration::from_secs(60),
        }
    }

    /// A breaker that never opens.
    pub const fn disabled() -> Self {
        BreakerPolicy {
            failures_to_open: 0,
            open_for: Duration::ZERO,
            max_open_for: Duration::ZERO,
        }
    }

    /// Consecutive failures that open the breaker (0 disables it).
    #[must_use]
    pub const fn failures_to_open(mut self, failures: u32) -> Self {
        self.failures_to_open = failures;
        self
    }

    /// How long the breaker stays open before the first probe.
    #[must_use]
    pub const fn open_for(mut self, duration: Duration) -> Self {
        self.open_for = duration;
        self
    }

    /// The longest wait between probes (the wait doubles after each failed
    /// probe).
    #[must_use]
    pub const fn max_open_for(mut self, duration: Duration) -> Self {
        self.max_open_for = duration;
        self
    }

    /// The configured failure count.
    pub const fn get_failures_to_open(&self) -> u32 {
        self.failures_to_open
    }
}

/// The breaker's state, as reported by
/// [`Client::breaker_state`](super::Client::breaker_state).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BreakerState {
    /// Checks ask the API.
    Closed,
    /// Checks answer at once without asking.
    Open,
    /// One probe is asking; the others answer at once.
    HalfOpen,
}

#[derive(Debug)]
enum State {
    Closed { failures: u32 },
    Open { until: Instant, wait: Duration },
    Probing { wait: Duration },
}

/// What a check may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Permit {
    /// Ask the API; report the outcome.
    Ask,
    /// Ask the API as the probe; report the outcome.
    Probe,
    /// Do not ask.
    Refuse,
}

/// The breaker itself. See the [module docs](self).
#[derive(Debug)]
pub(crate) struct Breaker {
    policy: BreakerPolicy,
    state: Mutex<State>,
}

impl Breaker {
    pub(crate) fn new(policy: BreakerPolicy) -> Self {
        Breaker {
            policy,
            state: Mutex::new(State::Closed { failures: 0 }),
        }
    }

    pub(crate) fn permit(&self, now: Instant) -> Permit {
        if self.policy.failures_to_open == 0 {
            return Permit::Ask;
        }
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        match *state {
            State::Closed { .. } => Permit::Ask,
            State::Open { until, wait } if now >= until => {
                *state = State::Probing { wait };
                Permit::Probe
            }
            State::Open { .. } | State::Probing { .. } => Permit::Refuse,
        }
    }

    pub(crate) fn record(&self, permit: Permit, success: bool, now: Instant) {
        if self.policy.failures_to_open == 0 || permit == Permit::Refuse {
            return;
        }
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let next = match (&*state, permit, success) {
            (_, Permit::Probe, true) | (State::Closed { .. }, Permit::Ask, true) => {
                State::Closed { failures: 0 }
            }
            (State::Probing { wait }, Permit::Probe, false) => {
                let wait = (*wait * 2).min(self.policy.max_open_for.max(self.policy.open_for));
                tracing::debug!(?wait, "flag-check probe failed; breaker open again");
                State::Open {
                    until: now + wait,
                    wait,
                }
            }
            (State::Closed { failures }, Permit::Ask, false) => {
                let failures = failures + 1;
                if failures >= self.policy.failures_to_open {
                    tracing::warn!(
                        failures,
                        "flag checks keep failing; answering from cache and defaults for {:?}",
                        self.policy.open_for
                    );
                    State::Open {
                        until: now + self.policy.open_for,
                        wait: self.policy.open_for,
                    }
                } else {
                    State::Closed { failures }
                }
            }
            // A late answer of a request let through before the breaker
            // opened: it says nothing about now.
            _ => return,
        };
        *state = next;
    }

    pub(crate) fn state(&self, now: Instant) -> BreakerState {
        match *self.state.lock().unwrap_or_else(PoisonError::into_inner) {
            State::Closed { .. } => BreakerState::Closed,
            State::Open { until, .. } if now >= until => BreakerState::HalfOpen,
            State::Open { .. } => BreakerState::Open,
            State::Probing { .. } => BreakerState::HalfOpen,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_consecutive_failures_and_probes_once() {
        let breaker = Breaker::new(
            BreakerPolicy::new()
                .failures_to_open(2)
                .open_for(Duration::from_secs(1)),
        );
        let t0 = Instant::now();
        assert_eq!(breaker.permit(t0), Permit::Ask);
        breaker.record(Permit::Ask, false, t0);
        // A success in between resets the count.
        breaker.record(Permit::Ask, true, t0);
        breaker.record(Permit::Ask, false, t0);
        assert_eq!(breaker.state(t0), BreakerState::Closed);
        breaker.record(Permit::Ask, false, t0);
        assert_eq!(breaker.state(t0), BreakerState::Open);
        assert_eq!(breaker.permit(t0), Permit::Refuse);

        let later = t0 + Duration::from_secs(1);
        assert_eq!(breaker.permit(later), Permit::Probe);
        // Only one probe at a time.
        assert_eq!(breaker.permit(later), Permit::Refuse);
        breaker.record(Permit::Probe, false, later);
        // Failed probe: open twice as long.
        assert_eq!(
            breaker.permit(later + Duration::from_millis(1_500)),
            Permit::Refuse
        );
        let probe_at = later + Duration::from_secs(2);
        assert_eq!(breaker.permit(probe_at), Permit::Probe);
        breaker.record(Permit::Probe, true, probe_at);
        assert_eq!(breaker.state(probe_at), BreakerState::Closed);
        assert_eq!(breaker.permit(probe_at), Permit::Ask);
    }

    #[test]
    fn the_wait_between_probes_is_capped() {
        let policy = BreakerPolicy::new()
            .failures_to_open(1)
            .open_for(Duration::from_secs(4))
            .max_open_for(Duration::from_secs(5));
        let breaker = Breaker::new(policy);
        let mut now = Instant::now();
        breaker.record(Permit::Ask, false, now);
        for _ in 0..3 {
            now += Duration::from_secs(5);
            assert_eq!(breaker.permit(now), Permit::Probe);
            breaker.record(Permit::Probe, false, now);
        }
        assert_eq!(
            breaker.permit(now + Duration::from_millis(4_999)),
            Permit::Refuse
        );
        assert_eq!(breaker.permit(now + Duration::from_secs(5)), Permit::Probe);
    }

    #[test]
    fn a_disabled_breaker_always_asks() {
        let breaker = Breaker::new(BreakerPolicy::disabled());
        let now = Instant::now();
        for _ in 0..10 {
            breaker.record(Permit::Ask, false, now);
        }
        assert_eq!(breaker.permit(now), Permit::Ask);
    }
}
