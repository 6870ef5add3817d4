//! Local flag-check cache: the [`FlagCache`] trait, the default in-memory
//! [`LocalFlagCache`], and [`CacheChain`], which makes any set of caches
//! infallible for the code doing flag checks.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use flagwire::cache::{CacheChain, FlagCacheKey, LocalFlagCache};
//!
//! let cache: LocalFlagCache<bool> = LocalFlagCache::builder()
//!     .capacity(1_000)
//!     .ttl(Duration::from_secs(5))
//!     .build();
//! let chain = CacheChain::single(cache);
//!
//! let key = FlagCacheKey::new("new-editor", &[("id", "acme")], &());
//! assert_eq!(chain.get(&key), None);
//! chain.insert(&key, false);
//! assert_eq!(chain.get(&key), Some(false)); // a cached `false` stays `false`
//! assert_eq!(chain.peek_with(&key, |on| !on), Some(true));
//! assert_eq!(key.canonical(), "f:new-editor;c:id:acme");
//! ```
//!
//! # Keys
//!
//! An entry is identified by the flag key plus the company keys and the user
//! keys of the check ([`FlagCacheKey`]). Keys come as maps, arrays, slices or
//! `Vec`s of pairs, `()` or `None` ([`KeyPairs`]); in a sequence a repeated
//! name keeps its last value. Key order never matters: `{a, b}` and `{b, a}`
//! are the same context.
//!
//! * [`LocalFlagCache`] never builds a string for a lookup. It hashes the
//!   parts into 64 bits (a seeded multiply-fold hash; the company and user
//!   pairs are each combined order-independently by wrapping addition) and
//!   finds the entry by that hash. The entry stores the flag key and the
//!   sorted key pairs it was inserted with, and a lookup compares them
//!   exactly, so a hash collision can only cost a miss (the two contexts
//!   share a slot and displace each other), never a wrong answer. That is why
//!   a fast 64-bit hash is enough here; the seed is random per cache, so
//!   colliding contexts cannot be chosen ahead of time.
//! * Caches shared between processes (Redis and the like) need a stable text
//!   key: [`FlagCacheKey::canonical`] gives
//!   `f:<flag>;c:<k>:<v>;…;u:<k>:<v>` with each key set sorted by name (the
//!   layout the Go SDK uses) and `\`, `:` and `;` inside names and values
//!   escaped with `\`, so distinct contexts always get distinct keys.
//!
//! # What a hit costs, and why it scales across threads
//!
//! Two threads answering checks from the same entry must not write to the
//! same memory: every such write moves the cache line to the writing core
//! and stalls the other one, so a hit that takes a lock, bumps a shared
//! counter or moves the entry in a recency list gets *slower* with a second
//! thread. A [`LocalFlagCache`] hit writes no memory another thread reads:
//!
//! * **No lock.** Entries live in a concurrent hash map (`papaya`) whose
//!   reads are plain atomic loads. Memory is reclaimed by an epoch-style
//!   scheme (`seize`): a reader marks only its own thread's slot, padded to
//!   its own cache lines, as active while it looks; a removed entry is freed
//!   once no reader that could see it is still active. (Even a `RwLock`
//!   read would write the lock word that all readers share.)
//! * **No reference count.** The value is lent in place:
//!   [`LocalFlagCache::peek_with`] and [`CacheChain::peek_with`] run a
//!   closure on `&V`, so a cache of `Arc<FlagCheck>` answers
//!   `check.value` without touching the `Arc`. `get`/`lookup` clone the
//!   value for callers who want to keep it.
//! * **No shared counter.** Hits and misses are counted in per-thread
//!   stripes on cache lines of their own; [`LocalFlagCache::stats`] sums
//!   them.
//! * **No recency list.** See eviction below: a hit at most sets the
//!   entry's reference bit, and only if it is clear, so in the steady state
//!   it writes nothing at all.
//!
//! What remains is the hash of the key, one probe of the map, an exact
//! comparison against the stored key, and one read of a coarse clock. A hit
//! performs no heap allocation.
//!
//! # Capacity and eviction
//!
//! A cache of capacity N holds N entries (no per-shard split). When it is
//! full, an insert of a new context first evicts one entry by CLOCK, also
//! called second chance, an approximation of least-recently-used: the
//! entries sit on a ring with a hand; the hand skips (and clears the bit of)
//! each entry read since it last passed, and evicts the first one that was
//! not, or that has expired. Inserts, replacements, removals and evictions
//! take one small mutex that readers never touch. Entries start unmarked:
//! a context inserted and never read again goes before one that is read.
//!
//! # TTL
//!
//! Each entry lives for the cache's TTL from its insertion. A lookup that
//! finds its entry expired is a miss (counted in
//! [`CacheStats::expired`]); readers never write, so the expired entry stays
//! until a writer replaces it, evicts it (expired entries go first when the
//! hand reaches them) or removes it. Time comes from a coarse monotonic clock
//! (one scheduler tick of resolution, a few nanoseconds to read), or from a
//! [`Clock`] set on the builder, such as [`ManualClock`] in tests.
//!
//! # Failures
//!
//! [`FlagCache`] methods return `Result`, so an implementation can report a
//! broken backend. Callers go through [`CacheChain`], which turns a failed
//! read into a miss and a failed write into a no-op (both logged at `debug`
//! and counted), so a cache can never make a flag check fail.

mod chain;
mod clock;
mod keys;
mod local;

pub use chain::{CacheChain, CacheError, FlagCache, NoCache};
pub(crate) use clock::coarse_utc_now;
pub use clock::{Clock, ManualClock, SystemClock};
pub use keys::{FlagCacheKey, KeyPairs};
pub use local::{CacheStats, DEFAULT_CAPACITY, DEFAULT_TTL, LocalFlagCache, LocalFlagCacheBuilder};
#[allow(deprecated)]
pub use local::{LruFlagCache, LruFlagCacheBuilder};
