//! Time for TTLs: the injectable [`Clock`], and the coarse monotonic clock
//! the in-memory cache reads by default because a hit must read the time.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A source of monotonic time for TTLs, injectable for tests.
///
/// Without one, [`LocalFlagCache`](super::LocalFlagCache) reads a coarse
/// monotonic clock (see
/// [`LocalFlagCacheBuilder::clock`](super::LocalFlagCacheBuilder::clock));
/// setting any `Clock` replaces it. A hit calls [`now`](Self::now) once, so
/// an implementation shared by many threads should only read shared state
/// (as [`ManualClock`] does), never write it.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current instant.
    fn now(&self) -> Instant;
}

/// The precise monotonic clock ([`Instant::now`]).
///
/// Pass it to
/// [`LocalFlagCacheBuilder::clock`](super::LocalFlagCacheBuilder::clock)
/// for TTLs exact to the nanosecond; each lookup then pays for a full clock
/// read.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[inline]
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// A clock that only moves when told to, for deterministic TTL tests.
///
/// ```
/// use std::time::Duration;
/// use flagwire::cache::{Clock, ManualClock};
///
/// let clock = ManualClock::new();
/// let t0 = clock.now();
/// clock.advance(Duration::from_secs(5));
/// assert_eq!(clock.now() - t0, Duration::from_secs(5));
/// ```
#[derive(Debug)]
pub struct ManualClock {
    origin: Instant,
    offset_nanos: AtomicU64,
}

impl ManualClock {
    /// A clock frozen at the current instant.
    pub fn new() -> Self {
        Self {
            origin: Instant::now(),
            offset_nanos: AtomicU64::new(0),
        }
    }

    /// Moves the clock forward (it stops at about 584 years from its
    /// start instead of wrapping around).
    pub fn advance(&self, by: Duration) {
        let by = nanos(by);
        // `fetch_update` only fails when the closure returns `None`.
        let _ = self
            .offset_nanos
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |offset| {
                Some(offset.saturating_add(by))
            });
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        self.origin + Duration::from_nanos(self.offset_nanos.load(Ordering::Relaxed))
    }
}

impl<C: Clock + ?Sized> Clock for Arc<C> {
    fn now(&self) -> Instant {
        (**self).now()
    }
}

/// Where a [`LocalFlagCache`](super::LocalFlagCache) reads time:
/// nanoseconds since the cache was built, from the coarse clock or from a
/// [`Clock`] set by the user.
pub(super) struct TimeSource(Source);

enum Source {
    Coarse(coarse::CoarseClock),
    Custom {
        clock: Arc<dyn Clock>,
        origin: Instant,
    },
}

impl TimeSource {
    pub(super) fn new(clock: Option<Arc<dyn Clock>>) -> Self {
        TimeSource(match clock {
            None => Source::Coarse(coarse::CoarseClock::new()),
            Some(clock) => Source::Custom {
                origin: clock.now(),
                clock,
            },
        })
    }

    #[inline]
    pub(super) fn now_nanos(&self) -> u64 {
        match &self.0 {
            Source::Coarse(clock) => clock.elapsed_nanos(),
            Source::Custom { clock, origin } => {
                nanos(clock.now().saturating_duration_since(*origin))
            }
        }
    }
}

#[inline]
pub(super) fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// The default time source of [`LocalFlagCache`](super::LocalFlagCache).
///
/// A hit must check the entry's TTL, so it reads the time on every lookup.
/// `Instant::now()` (`CLOCK_MONOTONIC`) costs 20–60 ns on virtual machines,
/// more than the rest of a hit. On Linux the cache reads
/// `CLOCK_MONOTONIC_COARSE` instead: the same clock, served from the vDSO
/// page without touching the hardware counter, for a few nanoseconds. It
/// advances once per scheduler tick (1–4 ms, `clock_getres` tells), so an
/// entry lives its TTL plus or minus one tick. For TTLs of seconds (5 s by
/// default) that difference does not matter. Other systems use [`Instant`].
mod coarse {
    use std::time::Instant;

    #[derive(Debug)]
    pub(super) struct CoarseClock {
        /// Used on systems without a coarse clock, and if reading it ever
        /// fails.
        origin: Instant,
        /// The coarse reading taken with `origin`, when there is one.
        #[cfg(target_os = "linux")]
        coarse_origin: Option<u64>,
    }

    impl CoarseClock {
        pub(super) fn new() -> Self {
            CoarseClock {
                origin: Instant::now(),
                #[cfg(target_os = "linux")]
                coarse_origin: linux::monotonic_coarse_nanos(),
            }
        }

        /// Nanoseconds since [`new`](Self::new).
        #[inline]
        pub(super) fn elapsed_nanos(&self) -> u64 {
            #[cfg(target_os = "linux")]
            if let Some(origin) = self.coarse_origin
                && let Some(now) = linux::monotonic_coarse_nanos()
            {
                return now.saturating_sub(origin);
            }
            super::nanos(self.origin.elapsed())
        }
    }

    /// The only call into the C library in this crate.
    #[cfg(target_os = "linux")]
    #[allow(unsafe_code)]
    pub(super) mod linux {
        /// `CLOCK_MONOTONIC_COARSE` in nanoseconds, or `None` if the kernel
        /// refuses it (before 2.6.32, some sandboxes).
        #[inline]
        pub(super) fn monotonic_coarse_nanos() -> Option<u64> {
            let mut now = libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            // SAFETY: `clock_gettime` writes one `timespec` through the
            // pointer, which points to a live, aligned local of that exact
            // type, and does nothing else with it. An unknown clock id is
            // reported through the return code, and then `now` is ignored.
            let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &raw mut now) };
            if rc != 0 {
                return None;
            }
            // `time_t` and `c_long` are 32 bits on some targets.
            #[allow(clippy::useless_conversion)]
            let (secs, subsec) = (i64::from(now.tv_sec), i64::from(now.tv_nsec));
            let secs = u64::try_from(secs).ok()?;
            let subsec = u64::try_from(subsec).ok()?;
            Some(secs.saturating_mul(1_000_000_000).saturating_add(subsec))
        }

        /// `CLOCK_REALTIME_COARSE` in nanoseconds since the Unix epoch, or
        /// `None` if the kernel refuses it.
        #[inline]
        pub(in super::super) fn realtime_coarse_nanos() -> Option<i128> {
            let mut now = libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            // SAFETY: as in `monotonic_coarse_nanos`: one `timespec` written
            // through a pointer to a live, aligned local of that type.
            let rc = unsafe { libc::clock_gettime(libc::CLOCK_REALTIME_COARSE, &raw mut now) };
            if rc != 0 {
                return None;
            }
            #[allow(clippy::useless_conversion)]
            let (secs, subsec) = (i128::from(now.tv_sec), i128::from(now.tv_nsec));
            Some(secs * 1_000_000_000 + subsec)
        }
    }
}

/// The current UTC time for rule evaluation, to within a scheduler tick
/// (1–4 ms).
///
/// Rules compare usage periods and dates, where a few milliseconds never
/// matter, while a check answered from memory takes a few hundred
/// nanoseconds: a precise wall-clock read and its conversion would be a
/// sizeable part of it. On Linux this reads `CLOCK_REALTIME_COARSE` from the
/// vDSO and converts a reading once per tick per thread; elsewhere it is
/// [`OffsetDateTime::now_utc`](time::OffsetDateTime::now_utc).
#[inline]
pub(crate) fn coarse_utc_now() -> time::OffsetDateTime {
    #[cfg(target_os = "linux")]
    {
        use std::cell::Cell;
        thread_local! {
            static LAST: Cell<Option<(i128, time::OffsetDateTime)>> = const { Cell::new(None) };
        }
        if let Some(nanos) = coarse::linux::realtime_coarse_nanos() {
            let cached = LAST.try_with(|last| match last.get() {
                Some((at, time)) if at == nanos => Some(time),
                _ => {
                    let time = time::OffsetDateTime::from_unix_timestamp_nanos(nanos).ok()?;
                    last.set(Some((nanos, time)));
                    Some(time)
                }
            });
            if let Ok(Some(time)) = cached {
                return time;
            }
        }
    }
    time::OffsetDateTime::now_utc()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coarse_utc_time_is_within_a_few_ticks_of_the_precise_one() {
        for _ in 0..100 {
            let coarse = coarse_utc_now();
            let precise = time::OffsetDateTime::now_utc();
            let off = (precise - coarse).abs();
            assert!(off < time::Duration::milliseconds(50), "{off}");
        }
    }

    #[test]
    fn coarse_clock_is_monotonic_and_advances() {
        let clock = coarse::CoarseClock::new();
        let t0 = clock.elapsed_nanos();
        let mut last = t0;
        for _ in 0..1_000 {
            let t = clock.elapsed_nanos();
            assert!(t >= last);
            last = t;
        }
        std::thread::sleep(Duration::from_millis(20));
        let waited = clock.elapsed_nanos() - t0;
        // At most one tick (a few ms) is lost to the coarse resolution.
        assert!(waited >= 10_000_000, "{waited} ns");
    }

    #[test]
    fn time_source_counts_from_its_creation() {
        let clock = Arc::new(ManualClock::new());
        clock.advance(Duration::from_secs(7));
        let time = TimeSource::new(Some(clock.clone()));
        assert_eq!(time.now_nanos(), 0);
        clock.advance(Duration::from_millis(1_500));
        assert_eq!(time.now_nanos(), 1_500_000_000);
        clock.advance(Duration::MAX);
        assert!(time.now_nanos() >= 1_500_000_000);
        assert_eq!(nanos(Duration::MAX), u64::MAX);
    }
}
