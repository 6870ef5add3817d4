//! Reconnect delays: capped exponential back-off with jitter, no attempt
//! limit.
//!
//! After the `n`th consecutive failure the client waits
//! `min(2^(n-1) × base, cap) + u × jitter` with `u` uniform in `[0, 1)`
//! (the official SDKs' formula). The count of failures goes back to zero
//! only when a connection stayed up for `healthy_after`, so a server that
//! accepts connections and drops them at once still gets the growing delay.
//! There is no limit on attempts: the client keeps trying at the cap, and
//! only an authentication failure (close code 4001, see
//! [`Session::on_close_code`](super::Session::on_close_code)) stops it.
//!
//! Nothing here reads a clock or a random source: the caller passes how
//! long a connection lived and a random number.

use std::time::Duration;

/// The parameters of the reconnect back-off.
///
/// ```
/// use std::time::Duration;
/// use flagwire_core::datastream::ReconnectPolicy;
/// let policy = ReconnectPolicy::default().with_cap(Duration::from_secs(60));
/// assert_eq!(policy.base, Duration::from_secs(1));
/// assert_eq!(policy.cap, Duration::from_secs(60));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReconnectPolicy {
    /// The delay after the first failure (before jitter). Default 1 s.
    pub base: Duration,
    /// The largest delay before jitter. Default 30 s.
    pub cap: Duration,
    /// The most jitter added to every delay. Default 1 s.
    pub jitter: Duration,
    /// How long a connection must stay up for the failure count to start
    /// again from zero. Default 30 s.
    pub healthy_after: Duration,
}

impl Default for ReconnectPolicy {
    fn default() -> Self {
        Self {
            base: Duration::from_secs(1),
            cap: Duration::from_secs(30),
            jitter: Duration::from_secs(1),
            healthy_after: Duration::from_secs(30),
        }
    }
}

impl ReconnectPolicy {
    /// Sets the delay after the first failure.
    #[must_use]
    pub fn with_base(mut self, base: Duration) -> Self {
        self.base = base;
        self
    }

    /// Sets the largest delay before jitter.
    #[must_use]
    pub fn with_cap(mut self, cap: Duration) -> Self {
        self.cap = cap;
        self
    }

    /// Sets the most jitter added to a delay.
    #[must_use]
    pub fn with_jitter(mut self, jitter: Duration) -> Self {
        self.jitter = jitter;
        self
    }

    /// Sets how long a connection must live to reset the failure count.
    #[must_use]
    pub fn with_healthy_after(mut self, healthy_after: Duration) -> Self {
        self.healthy_after = healthy_after;
        self
    }
}

/// The reconnect state of one client: how many attempts failed in a row.
///
/// ```
/// use std::time::Duration;
/// use flagwire_core::datastream::{Backoff, ReconnectPolicy};
/// let mut backoff = Backoff::new(ReconnectPolicy::default());
/// assert_eq!(backoff.next_delay(0.0), Duration::from_secs(1));
/// assert_eq!(backoff.next_delay(0.0), Duration::from_secs(2));
/// assert_eq!(backoff.next_delay(0.5), Duration::from_millis(4500));
/// backoff.connected();
/// backoff.disconnected_after(Duration::from_secs(31));
/// assert_eq!(backoff.failures(), 0);
/// ```
#[derive(Debug, Clone)]
pub struct Backoff {
    policy: ReconnectPolicy,
    failures: u32,
    connected: bool,
}

impl Backoff {
    /// No failures yet.
    pub fn new(policy: ReconnectPolicy) -> Self {
        Self {
            policy,
            failures: 0,
            connected: false,
        }
    }

    /// The policy.
    pub fn policy(&self) -> &ReconnectPolicy {
        &self.policy
    }

    /// Counts one more failure (a failed dial, or a connection that ended)
    /// and returns how long to wait before the next attempt.
    ///
    /// `unit_random` is a uniform random number in `[0, 1)` that scales the
    /// jitter; values outside `[0, 1]` are clamped and NaN counts as 0. The
    /// result is always within `[0, cap + jitter]`, saturating instead of
    /// overflowing for any policy.
    pub fn next_delay(&mut self, unit_random: f64) -> Duration {
        self.failures = self.failures.saturating_add(1);
        let exponential = 1u32
            .checked_shl(self.failures - 1)
            .and_then(|factor| self.policy.base.checked_mul(factor))
            .map_or(self.policy.cap, |d| d.min(self.policy.cap));
        let unit = if unit_random.is_nan() {
            0.0
        } else {
            unit_random.clamp(0.0, 1.0)
        };
        // `Duration::mul_f64` panics when rounding lifts a huge jitter past
        // `Duration::MAX`; this never exceeds the configured jitter.
        let jitter = self.policy.jitter;
        let jitter = Duration::try_from_secs_f64(jitter.as_secs_f64() * unit)
            .map_or(jitter, |scaled| scaled.min(jitter));
        exponential.saturating_add(jitter)
    }

    /// Records that a connection is up. The failure count stays until the
    /// connection proves healthy ([`disconnected_after`](Self::disconnected_after)).
    pub fn connected(&mut self) {
        self.connected = true;
    }

    /// Records that the connection ended after living `lived`; a connection
    /// that lived at least `healthy_after` resets the failure count.
    pub fn disconnected_after(&mut self, lived: Duration) {
        self.connected = false;
        if lived >= self.policy.healthy_after {
            self.failures = 0;
        }
    }

    /// Whether [`connected`](Self::connected) was the last event.
    pub fn is_connected(&self) -> bool {
        self.connected
    }

    /// Consecutive failures so far.
    pub fn failures(&self) -> u32 {
        self.failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap() {
        let mut b = Backoff::new(ReconnectPolicy::default());
        let delays: Vec<u64> = (0..8).map(|_| b.next_delay(0.0).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 30, 30, 30]);
        assert_eq!(b.failures(), 8);
        assert_eq!(b.next_delay(1.0), Duration::from_secs(31));
    }

    #[test]
    fn no_attempt_limit_and_no_overflow() {
        let policy = ReconnectPolicy::default()
            .with_base(Duration::MAX)
            .with_cap(Duration::MAX)
            .with_jitter(Duration::MAX);
        let mut b = Backoff::new(policy);
        for unit in [0.0, 0.5, 0.99, 1.0] {
            assert_eq!(b.next_delay(unit), Duration::MAX);
        }
        let mut b = Backoff::new(ReconnectPolicy::default().with_jitter(Duration::MAX));
        assert_eq!(b.next_delay(1.0), Duration::MAX);
        assert!(b.next_delay(0.5) >= Duration::from_secs(2));
        let mut b = Backoff::new(ReconnectPolicy::default());
        b.failures = u32::MAX - 1;
        assert_eq!(b.next_delay(0.0), Duration::from_secs(30));
        assert_eq!(b.next_delay(0.0), Duration::from_secs(30));
        assert_eq!(b.failures(), u32::MAX);
    }

    #[test]
    fn random_input_is_clamped() {
        let mut b = Backoff::new(ReconnectPolicy::default());
        assert_eq!(b.next_delay(f64::NAN), Duration::from_secs(1));
        assert_eq!(b.next_delay(-3.0), Duration::from_secs(2));
        assert_eq!(b.next_delay(7.0), Duration::from_secs(5));
        assert_eq!(b.next_delay(f64::INFINITY), Duration::from_secs(9));
    }

    #[test]
    fn only_a_healthy_connection_resets() {
        let mut b = Backoff::new(ReconnectPolicy::default());
        b.next_delay(0.0);
        b.next_delay(0.0);
        b.connected();
        assert!(b.is_connected());
        b.disconnected_after(Duration::from_secs(29));
        assert!(!b.is_connected());
        assert_eq!(b.failures(), 2);
        assert_eq!(b.next_delay(0.0), Duration::from_secs(4));
        b.connected();
        b.disconnected_after(Duration::from_secs(30));
        assert_eq!(b.failures(), 0);
        assert_eq!(b.next_delay(0.0), Duration::from_secs(1));
    }

    #[test]
    fn base_above_cap_gives_the_cap() {
        let policy = ReconnectPolicy::default()
            .with_base(Duration::from_secs(100))
            .with_jitter(Duration::ZERO);
        let mut b = Backoff::new(policy);
        assert_eq!(b.next_delay(0.5), Duration::from_secs(30));
    }
}
