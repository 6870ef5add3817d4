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

/// The system's wall clock, read cheaply.
///
/// On Linux this reads `time(2)`, which glibc answers from the vDSO with
/// the wall-clock seconds the kernel keeps as of its last timer tick (the
/// seconds of `CLOCK_REALTIME_COARSE`), without reading the hardware clock
/// source or taking the clock's sequence lock: a few nanoseconds, against
/// tens for [`SystemTime::now`]. It can lag the precise time by one tick
/// (1–10 ms depending on the kernel's `HZ`) and is never ahead of it. The
/// tolerance check works in whole seconds, so a lag of a few milliseconds
/// cannot change a verdict by more than the rounding of a second already
/// does. Elsewhere, and if the call fails, it reads [`SystemTime::now`].
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[inline]
    fn now_unix(&self) -> i64 {
        coarse_unix_now()
    }
}

/// Whole Unix seconds from the coarse system clock; see [`SystemClock`].
#[inline]
pub(crate) fn coarse_unix_now() -> i64 {
    #[cfg(target_os = "linux")]
    if let Some(secs) = coarse::realtime_secs() {
        return secs;
    }
    unix_now()
}

/// The one place in this crate that calls into the C library.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
mod coarse {
    /// Whole seconds of the wall clock from `time(2)`, or `None` if the
    /// call fails (it returns -1 then; no real clock reads one second
    /// before 1970).
    #[inline]
    pub(super) fn realtime_secs() -> Option<i64> {
        // SAFETY: `time` accepts a null pointer, in which case it writes
        // nothing and only returns the value; it has no other
        // preconditions.
        let secs = unsafe { libc::time(core::ptr::null_mut()) };
        // `time_t` is 32 bits on some 32-bit targets.
        #[allow(clippy::useless_conversion)]
        let secs = i64::from(secs);
        (secs != -1).then_some(secs)
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

/// The precise system time ([`SystemTime::now`]) in whole Unix seconds
/// (negative before 1970). Verifiers use the cheaper [`SystemClock`].
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coarse_clock_agrees_with_system_time() {
        for _ in 0..3 {
            let before = unix_now();
            let coarse = SystemClock.now_unix();
            let after = unix_now();
            // The coarse clock lags by at most a tick, so its second is the
            // precise second read just before or just after it, give or
            // take one for a second boundary inside a tick.
            assert!(
                coarse >= before - 1 && coarse <= after,
                "coarse {coarse} outside [{before} - 1, {after}]"
            );
        }
    }

    #[test]
    fn coarse_clock_moves_forward() {
        let first = coarse_unix_now();
        let second = coarse_unix_now();
        assert!(second >= first);
        assert!(first > 1_600_000_000);
    }
}
