//! A global allocator that counts allocations, for benchmarks and tests that
//! must prove a hot path performs no heap allocation.
//!
//! Install it in a benchmark or test binary, then measure a closure:
//!
//! ```
//! use flagwire_alloc_counter::{CountingAllocator, count_allocations};
//!
//! #[global_allocator]
//! static ALLOC: CountingAllocator = CountingAllocator::new();
//!
//! let (sum, allocations) = count_allocations(|| (1..=10u32).sum::<u32>());
//! assert_eq!(sum, 55);
//! assert_eq!(allocations, 0);
//!
//! let (_v, allocations) = count_allocations(|| vec![1u8; 64]);
//! assert_eq!(allocations, 1);
//! ```
//!
//! Counts are per thread, so work on other threads (a benchmark harness, a
//! runtime's workers) does not disturb a measurement taken on this one.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
    static BYTES: Cell<u64> = const { Cell::new(0) };
}

/// Wraps the system allocator and counts, per thread, every allocation and
/// reallocation together with the bytes requested.
#[derive(Debug, Default)]
pub struct CountingAllocator {
    _private: (),
}

impl CountingAllocator {
    /// A new counting allocator; use it as a `#[global_allocator]` static.
    pub const fn new() -> Self {
        Self { _private: () }
    }
}

fn record(size: usize) {
    // `try_with` because the allocator can be called while thread-locals are
    // being torn down at thread exit.
    let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
    let _ = BYTES.try_with(|c| c.set(c.get() + size as u64));
}

// SAFETY: every method forwards to `System` with the caller's arguments
// unchanged; counting touches only thread-local cells and never allocates.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        record(layout.size());
        // SAFETY: forwarded unchanged; the caller upholds `alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        record(layout.size());
        // SAFETY: forwarded unchanged; the caller upholds the contract.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged; `ptr` came from `System` via this type.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        record(new_size);
        // SAFETY: forwarded unchanged; the caller upholds `realloc`'s contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// A snapshot of this thread's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AllocationStats {
    /// Allocations and reallocations made by this thread.
    pub allocations: u64,
    /// Bytes requested by those allocations.
    pub bytes: u64,
}

/// This thread's counters so far. They only move when a
/// [`CountingAllocator`] is the global allocator.
pub fn stats() -> AllocationStats {
    AllocationStats {
        allocations: ALLOCATIONS.with(Cell::get),
        bytes: BYTES.with(Cell::get),
    }
}

/// Runs `f` and returns its result with the number of allocations it made on
/// this thread.
pub fn count_allocations<T>(f: impl FnOnce() -> T) -> (T, u64) {
    let before = stats().allocations;
    let out = f();
    (out, stats().allocations - before)
}

/// Process-wide bytes currently allocated through a [`LiveBytesAllocator`]:
/// what memory a data structure holds, as opposed to the per-thread counts
/// of [`CountingAllocator`] (which never subtract).
static LIVE_BYTES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Wraps the system allocator, counts allocations per thread like
/// [`CountingAllocator`], and also keeps a process-wide count of the bytes
/// currently allocated ([`live_bytes`]). The extra counter is one atomic
/// addition per allocation and free: use it in benchmarks that measure
/// memory held, not in ones that time allocation-heavy code on several
/// threads.
///
/// ```
/// use flagwire_alloc_counter::{LiveBytesAllocator, live_bytes};
///
/// #[global_allocator]
/// static ALLOC: LiveBytesAllocator = LiveBytesAllocator::new();
///
/// let before = live_bytes();
/// let held = vec![0u8; 4096];
/// assert!(live_bytes() - before >= 4096);
/// drop(held);
/// assert!(live_bytes() < before + 4096);
/// ```
#[derive(Debug, Default)]
pub struct LiveBytesAllocator {
    _private: (),
}

impl LiveBytesAllocator {
    /// A new allocator; use it as a `#[global_allocator]` static.
    pub const fn new() -> Self {
        Self { _private: () }
    }
}

/// Bytes currently allocated through a [`LiveBytesAllocator`] (0 when it is
/// not the global allocator).
pub fn live_bytes() -> u64 {
    LIVE_BYTES.load(std::sync::atomic::Ordering::Relaxed)
}

fn live_add(size: usize) {
    LIVE_BYTES.fetch_add(size as u64, std::sync::atomic::Ordering::Relaxed);
}

fn live_sub(size: usize) {
    LIVE_BYTES.fetch_sub(size as u64, std::sync::atomic::Ordering::Relaxed);
}

// SAFETY: every method forwards to `System` with the caller's arguments
// unchanged; counting touches thread-local cells and one atomic and never
// allocates. Sizes come from the layouts the caller passes, which are the
// ones the blocks were allocated with.
unsafe impl GlobalAlloc for LiveBytesAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged; the caller upholds `alloc`'s contract.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            record(layout.size());
            live_add(layout.size());
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged; the caller upholds the contract.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            record(layout.size());
            live_add(layout.size());
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        live_sub(layout.size());
        // SAFETY: forwarded unchanged; `ptr` came from `System` via this type.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded unchanged; the caller upholds `realloc`'s contract.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            record(new_size);
            live_sub(layout.size());
            live_add(new_size);
        }
        new
    }
}

/// Measurement helpers shared by the workspace's benchmarks.
pub mod bench {
    use std::hint::black_box;
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};
    use std::time::Instant;

    /// Polls a future once and returns its output; panics if it is not
    /// ready at once. For checks that must complete on the caller's thread
    /// (a cache hit, a local evaluation).
    ///
    /// ```
    /// assert_eq!(flagwire_alloc_counter::bench::ready(async { 7 }), 7);
    /// ```
    pub fn ready<F: Future>(fut: F) -> F::Output {
        let mut fut = pin!(fut);
        match fut.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(out) => out,
            Poll::Pending => panic!("the future was expected to complete without waiting"),
        }
    }

    /// The `p` quantile (0.0–1.0, nearest rank) of sorted samples.
    ///
    /// ```
    /// assert_eq!(flagwire_alloc_counter::bench::percentile(&[1, 2, 3, 4, 5], 0.5), 3);
    /// ```
    pub fn percentile<T: Copy>(sorted: &[T], p: f64) -> T {
        let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
        sorted[i.min(sorted.len() - 1)]
    }

    /// Times each of `fs` in `rounds` alternating batches of `batch` calls
    /// and returns the median nanoseconds per call of each, in order. The
    /// alternation gives every closure the same machine load, which is
    /// steadier on a shared machine than runs taken seconds apart.
    ///
    /// ```
    /// let medians = flagwire_alloc_counter::bench::paired_medians(5, 10, &[&|| true, &|| false]);
    /// assert_eq!(medians.len(), 2);
    /// ```
    pub fn paired_medians(rounds: usize, batch: u32, fs: &[&dyn Fn() -> bool]) -> Vec<f64> {
        let mut samples: Vec<Vec<f64>> = vec![Vec::with_capacity(rounds); fs.len()];
        for _ in 0..rounds {
            for (f, out) in fs.iter().zip(samples.iter_mut()) {
                let start = Instant::now();
                for _ in 0..batch {
                    black_box(f());
                }
                out.push(start.elapsed().as_nanos() as f64 / f64::from(batch));
            }
        }
        samples
            .into_iter()
            .map(|mut s| {
                s.sort_by(f64::total_cmp);
                s[s.len() / 2]
            })
            .collect()
    }
}
