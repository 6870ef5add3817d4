//! Where verifiers get the current time from.

use std::time::{SystemTime, UNIX_EPOCH};

/// A source of the current time in Unix seconds, used by the timestamp
/// tolerance check.
///
/// The default is [`SystemClock`]. Tests can inject a fixed time with
/// [`FixedClock`] or any `Fn() -> i64` closure:
///
/// ```
/// use flagwire_webhooks::{Clock, FixedClock};
///
/// assert_eq!(FixedClock(1_700_000_000).now_unix(), 1_700_000_000);
/// let clock = || 42_i64;
/// assert_eq!(clock.now_unix(), 42);
/// ```
pub trait Clock: Send + Sync + 'static {
    /// The current time in whole seconds since the Unix epoch.
    fn now_unix(&self) -> i64;
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_unix(&self) -> i64 {
        unix_now()
    }
}

/// A clock stuck at one instant, for tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixedClock(pub i64);

impl Clock for FixedClock {
    fn now_unix(&self) -> i64 {
        self.0
    }
}

impl<F: Fn() -> i64 + Send + Sync + 'static> Clock for F {
    fn now_unix(&self) -> i64 {
        self()
    }
}

/// The system time in whole Unix seconds (negative before 1970).
///
/// ```
/// assert!(flagwire_webhooks::unix_now() > 1_600_000_000);
/// ```
pub fn unix_now() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(since) => i64::try_from(since.as_secs()).unwrap_or(i64::MAX),
        Err(before) => i64::try_from(before.duration().as_secs()).map_or(i64::MIN, |s| -s),
    }
}
