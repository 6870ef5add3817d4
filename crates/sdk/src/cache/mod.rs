//! Local flag-check cache: the [`FlagCache`] trait, the default in-memory
//! [`LruFlagCache`], and [`CacheChain`], which makes any set of caches
//! infallible for the code doing flag checks.
//!
//! # Keys
//!
//! An entry is identified by the flag key plus the company keys and the user
//! keys of the check ([`FlagCacheKey`]). Key order never matters: `{a, b}`
//! and `{b, a}` are the same context.
//!
//! * [`LruFlagCache`] never builds a string for a lookup. It hashes the
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
//! # Failures
//!
//! [`FlagCache`] methods return `Result`, so an implementation can report a
//! broken backend. Callers go through [`CacheChain`], which turns a failed
//! read into a miss and a failed write into a no-op (both logged at `debug`
//! and counted), so a cache can never make a flag check fail.
//!
//! ```
//! use std::collections::BTreeMap;
//! use std::time::Duration;
//! use flagwire::cache::{CacheChain, FlagCacheKey, LruFlagCache};
//!
//! let cache = LruFlagCache::<bool>::builder().capacity(1_000).ttl(Duration::from_secs(5)).build();
//! let chain = CacheChain::single(cache);
//!
//! let company: BTreeMap<String, String> = [("id".into(), "acme".into())].into();
//! let user: BTreeMap<String, String> = BTreeMap::new();
//! let key = FlagCacheKey::new("new-editor", &company, &user);
//!
//! assert_eq!(chain.get(&key), None);
//! chain.insert(&key, false);
//! assert_eq!(chain.get(&key), Some(false)); // a cached `false` stays `false`
//! assert_eq!(key.canonical(), "f:new-editor;c:id:acme");
//! ```

use std::borrow::Borrow;
use std::collections::hash_map::RandomState;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Default number of entries of [`LruFlagCache`].
pub const DEFAULT_CAPACITY: usize = 1_000;
/// Default time to live of an [`LruFlagCache`] entry.
pub const DEFAULT_TTL: Duration = Duration::from_secs(5);

// ---------------------------------------------------------------------------
// Key pairs and keys
// ---------------------------------------------------------------------------

/// A set of `name → value` key pairs (company or user keys) as seen by the
/// cache. Implemented for `BTreeMap` and `HashMap` with string-like keys and
/// values; names are unique by construction.
pub trait KeyPairs {
    /// Number of pairs.
    fn pair_count(&self) -> usize;
    /// Calls `f` for each pair until it returns `false`; returns `false` if
    /// it was stopped early.
    fn try_for_each_pair(&self, f: &mut dyn FnMut(&str, &str) -> bool) -> bool;
}

impl<K: Borrow<str> + Ord, V: Borrow<str>> KeyPairs for BTreeMap<K, V> {
    fn pair_count(&self) -> usize {
        self.len()
    }
    fn try_for_each_pair(&self, f: &mut dyn FnMut(&str, &str) -> bool) -> bool {
        self.iter().all(|(k, v)| f(k.borrow(), v.borrow()))
    }
}

impl<K: Borrow<str>, V: Borrow<str>, S> KeyPairs for HashMap<K, V, S> {
    fn pair_count(&self) -> usize {
        self.len()
    }
    fn try_for_each_pair(&self, f: &mut dyn FnMut(&str, &str) -> bool) -> bool {
        self.iter().all(|(k, v)| f(k.borrow(), v.borrow()))
    }
}

/// No keys (a check without company or user).
impl KeyPairs for () {
    fn pair_count(&self) -> usize {
        0
    }
    fn try_for_each_pair(&self, _f: &mut dyn FnMut(&str, &str) -> bool) -> bool {
        true
    }
}

/// The identity of a cached flag check: flag key, company keys, user keys.
///
/// It only borrows its parts, so building one costs nothing; see the
/// [module docs](self) for how caches turn it into a key.
#[derive(Clone, Copy)]
pub struct FlagCacheKey<'a> {
    flag: &'a str,
    company: &'a dyn KeyPairs,
    user: &'a dyn KeyPairs,
}

impl<'a> FlagCacheKey<'a> {
    /// A key for `flag` checked for `company` and `user` (pass `&()` for
    /// none).
    pub fn new(flag: &'a str, company: &'a dyn KeyPairs, user: &'a dyn KeyPairs) -> Self {
        Self {
            flag,
            company,
            user,
        }
    }

    /// The flag key.
    pub fn flag(&self) -> &'a str {
        self.flag
    }

    /// The company keys.
    pub fn company(&self) -> &'a dyn KeyPairs {
        self.company
    }

    /// The user keys.
    pub fn user(&self) -> &'a dyn KeyPairs {
        self.user
    }

    /// The stable text form `f:<flag>;c:<k>:<v>;…;u:<k>:<v>` (key sets sorted
    /// by name, empty sets left out, `\ : ;` escaped). Allocates; meant for
    /// shared caches that need a string key.
    pub fn canonical(&self) -> String {
        let mut out = String::with_capacity(64);
        out.push_str("f:");
        escape_into(&mut out, self.flag);
        for (tag, pairs) in [("c", self.company), ("u", self.user)] {
            for (k, v) in sorted_pairs(pairs).iter() {
                out.push(';');
                out.push_str(tag);
                out.push(':');
                escape_into(&mut out, k);
                out.push(':');
                escape_into(&mut out, v);
            }
        }
        out
    }
}

impl fmt::Debug for FlagCacheKey<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("FlagCacheKey")
            .field(&self.canonical())
            .finish()
    }
}

fn escape_into(out: &mut String, s: &str) {
    for ch in s.chars() {
        if matches!(ch, '\\' | ':' | ';') {
            out.push('\\');
        }
        out.push(ch);
    }
}

type Pairs = Box<[(Box<str>, Box<str>)]>;

fn sorted_pairs(pairs: &dyn KeyPairs) -> Pairs {
    let mut v = Vec::with_capacity(pairs.pair_count());
    pairs.try_for_each_pair(&mut |k, v2| {
        v.push((Box::<str>::from(k), Box::<str>::from(v2)));
        true
    });
    v.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    v.into_boxed_slice()
}

/// Whether the query pairs equal the stored (sorted) pairs, without
/// allocating.
fn pairs_match(stored: &[(Box<str>, Box<str>)], query: &dyn KeyPairs) -> bool {
    if stored.len() != query.pair_count() {
        return false;
    }
    // A sorted map (the usual `Keys`) yields its pairs in stored order, so
    // try the same position first and only search when that fails.
    let mut position = 0;
    query.try_for_each_pair(&mut |k, v| {
        let found = match stored.get(position) {
            Some((sk, _)) if &**sk == k => Some(position),
            _ => stored.binary_search_by(|(sk, _)| (**sk).cmp(k)).ok(),
        };
        position += 1;
        found.is_some_and(|i| &*stored[i].1 == v)
    })
}

// ---------------------------------------------------------------------------
// Hashing
// ---------------------------------------------------------------------------

const P0: u64 = 0xa076_1d64_78bd_642f;
const P1: u64 = 0xe703_7ed1_a0b4_28db;
const P2: u64 = 0x8ebc_6af0_9c88_c6e3;
const P3: u64 = 0x5899_65cc_7537_4cc3;

#[inline]
fn fold_mul(a: u64, b: u64) -> u64 {
    let r = u128::from(a) * u128::from(b);
    (r as u64) ^ ((r >> 64) as u64)
}

#[inline(always)]
fn read_u64(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(word)
}

#[inline(always)]
fn read_u32(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0u8; 4];
    word.copy_from_slice(&bytes[at..at + 4]);
    u64::from(u32::from_le_bytes(word))
}

/// Hashes a byte string. Short strings (most keys and values) take two
/// multiplications: their bytes are read as two possibly overlapping words,
/// with the length mixed in so that overlaps cannot make two strings equal.
/// Longer ones fold 16 bytes per step.
#[inline]
fn hash_bytes(seed: u64, bytes: &[u8]) -> u64 {
    let len = bytes.len();
    let mut h = seed ^ P0;
    let (a, b) = if len <= 16 {
        if len >= 8 {
            (read_u64(bytes, 0), read_u64(bytes, len - 8))
        } else if len >= 4 {
            (read_u32(bytes, 0), read_u32(bytes, len - 4))
        } else if len > 0 {
            let spread = (u64::from(bytes[0]) << 16)
                | (u64::from(bytes[len / 2]) << 8)
                | u64::from(bytes[len - 1]);
            (spread, 0)
        } else {
            (0, 0)
        }
    } else {
        let mut at = 0;
        while len - at > 16 {
            h = fold_mul(read_u64(bytes, at) ^ P1, read_u64(bytes, at + 8) ^ h);
            at += 16;
        }
        (read_u64(bytes, len - 16), read_u64(bytes, len - 8))
    };
    fold_mul(P1 ^ len as u64, fold_mul(a ^ P2, b ^ h))
}

fn hash_pairs(seed: u64, pairs: &dyn KeyPairs) -> u64 {
    let mut sum = 0u64;
    pairs.try_for_each_pair(&mut |k, v| {
        // Name and value are hashed independently (in parallel on the CPU)
        // and then bound together, so swapping values between two names
        // changes the hash.
        let hk = hash_bytes(seed, k.as_bytes());
        let hv = hash_bytes(seed ^ P1, v.as_bytes());
        sum = sum.wrapping_add(fold_mul(hk ^ P2, hv ^ P3));
        true
    });
    sum
}

fn hash_key(seed: u64, key: &FlagCacheKey<'_>) -> u64 {
    let f = hash_bytes(seed, key.flag.as_bytes());
    let c = hash_pairs(seed ^ P2, key.company);
    let u = hash_pairs(seed ^ P3, key.user);
    fold_mul(fold_mul(f ^ c, P0) ^ u, P1 ^ seed)
}

/// The map key is already a hash: pass it through.
#[derive(Default)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

// ---------------------------------------------------------------------------
// Clock
// ---------------------------------------------------------------------------

/// A source of monotonic time for TTLs, injectable for tests.
///
/// Without one, [`LruFlagCache`] reads a coarse monotonic clock (see
/// [`LruFlagCacheBuilder::clock`]); setting any `Clock` replaces it.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current instant.
    fn now(&self) -> Instant;
}

/// The precise monotonic clock ([`Instant::now`]).
///
/// Pass it to [`LruFlagCacheBuilder::clock`] for TTLs exact to the
/// nanosecond; each lookup then pays for a full clock read.
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

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        let nanos = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        self.offset_nanos.fetch_add(nanos, Ordering::Relaxed);
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

/// Where an [`LruFlagCache`] reads time: nanoseconds since the cache was
/// built, from the coarse clock or from a [`Clock`] set by the user.
enum TimeSource {
    Coarse(coarse::CoarseClock),
    Custom {
        clock: Arc<dyn Clock>,
        origin: Instant,
    },
}

impl TimeSource {
    fn new(clock: Option<Arc<dyn Clock>>) -> Self {
        match clock {
            None => TimeSource::Coarse(coarse::CoarseClock::new()),
            Some(clock) => TimeSource::Custom {
                origin: clock.now(),
                clock,
            },
        }
    }

    #[inline]
    fn now_nanos(&self) -> u64 {
        match self {
            TimeSource::Coarse(clock) => clock.elapsed_nanos(),
            TimeSource::Custom { clock, origin } => {
                nanos(clock.now().saturating_duration_since(*origin))
            }
        }
    }
}

#[inline]
fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// The default time source of [`LruFlagCache`].
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
    mod linux {
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
    }
}

// ---------------------------------------------------------------------------
// The trait, errors and the chain
// ---------------------------------------------------------------------------

/// Why a cache backend could not serve a read or a write. Only ever seen by
/// [`CacheChain`], which logs and counts it; it never reaches a flag check.
#[derive(Debug)]
pub struct CacheError {
    message: String,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl CacheError {
    /// An error with a message.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            source: None,
        }
    }

    /// An error caused by `source`.
    pub fn with_source(
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self {
            message: message.into(),
            source: Some(Box::new(source)),
        }
    }
}

impl fmt::Display for CacheError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CacheError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// A store of flag-check results, consulted before the API and filled after
/// a successful API answer.
///
/// Methods are synchronous and must be quick; a backend that does I/O should
/// keep its own local layer or time out fast. Errors are reported, not
/// raised: [`CacheChain`] treats a failed `get` as a miss and ignores a
/// failed `insert`. Implementations must not panic.
pub trait FlagCache<V>: Send + Sync {
    /// The cached value for `key`, if present and fresh.
    fn get(&self, key: &FlagCacheKey<'_>) -> Result<Option<V>, CacheError>;
    /// Stores `value` for `key`.
    fn insert(&self, key: &FlagCacheKey<'_>, value: V) -> Result<(), CacheError>;
}

impl<V, C: FlagCache<V> + ?Sized> FlagCache<V> for Arc<C> {
    fn get(&self, key: &FlagCacheKey<'_>) -> Result<Option<V>, CacheError> {
        (**self).get(key)
    }
    fn insert(&self, key: &FlagCacheKey<'_>, value: V) -> Result<(), CacheError> {
        (**self).insert(key, value)
    }
}

/// Caches tried in order on read and all written on insert, with failures
/// absorbed: a read error is a miss, a write error is skipped. Both are
/// logged at `debug` level and counted in [`errors`](Self::errors).
///
/// An empty chain caches nothing.
pub struct CacheChain<V> {
    caches: Vec<Arc<dyn FlagCache<V>>>,
    errors: AtomicU64,
}

impl<V: Clone> CacheChain<V> {
    /// A chain of the given caches, consulted in order.
    pub fn new(caches: Vec<Arc<dyn FlagCache<V>>>) -> Self {
        Self {
            caches,
            errors: AtomicU64::new(0),
        }
    }

    /// A chain of one cache.
    pub fn single(cache: impl FlagCache<V> + 'static) -> Self {
        Self::new(vec![Arc::new(cache)])
    }

    /// A chain that caches nothing.
    pub fn disabled() -> Self {
        Self::new(Vec::new())
    }

    /// Whether the chain has no caches.
    pub fn is_disabled(&self) -> bool {
        self.caches.is_empty()
    }

    /// The first hit among the caches, or `None`.
    #[inline]
    pub fn get(&self, key: &FlagCacheKey<'_>) -> Option<V> {
        for cache in &self.caches {
            match cache.get(key) {
                Ok(Some(v)) => return Some(v),
                Ok(None) => {}
                Err(e) => self.record_error("read", &e),
            }
        }
        None
    }

    /// Writes `value` to every cache.
    pub fn insert(&self, key: &FlagCacheKey<'_>, value: V) {
        if let Some((last, rest)) = self.caches.split_last() {
            for cache in rest {
                if let Err(e) = cache.insert(key, value.clone()) {
                    self.record_error("write", &e);
                }
            }
            if let Err(e) = last.insert(key, value) {
                self.record_error("write", &e);
            }
        }
    }

    /// How many cache reads and writes have failed.
    pub fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }

    fn record_error(&self, op: &str, e: &CacheError) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(error = %e, op, "flag cache {op} failed; continuing without it");
    }
}

impl<V> fmt::Debug for CacheChain<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheChain")
            .field("caches", &self.caches.len())
            .field("errors", &self.errors.load(Ordering::Relaxed))
            .finish()
    }
}

// ---------------------------------------------------------------------------
// The LRU cache
// ---------------------------------------------------------------------------

const NIL: u32 = u32::MAX;

struct Entry<V> {
    hash: u64,
    flag: Box<str>,
    company: Pairs,
    user: Pairs,
    value: V,
    /// On the cache's time line ([`TimeSource::now_nanos`]).
    expires_at: u64,
}

#[derive(Clone, Copy)]
struct Link {
    prev: u32,
    next: u32,
}

/// One shard: a hash index over a slab of entries threaded on an intrusive
/// doubly linked recency list (head = most recent). Every operation is O(1).
struct Shard<V> {
    index: HashMap<u64, u32, BuildHasherDefault<PassThrough>>,
    entries: Vec<Option<Entry<V>>>,
    links: Vec<Link>,
    free: Vec<u32>,
    head: u32,
    tail: u32,
    capacity: usize,
    stats: CacheStats,
}

impl<V> Shard<V> {
    fn new(capacity: usize) -> Self {
        Self {
            index: HashMap::with_capacity_and_hasher(capacity, BuildHasherDefault::default()),
            entries: Vec::new(),
            links: Vec::new(),
            free: Vec::new(),
            head: NIL,
            tail: NIL,
            capacity,
            stats: CacheStats::default(),
        }
    }

    fn unlink(&mut self, i: u32) {
        let Link { prev, next } = self.links[i as usize];
        if prev == NIL {
            self.head = next;
        } else {
            self.links[prev as usize].next = next;
        }
        if next == NIL {
            self.tail = prev;
        } else {
            self.links[next as usize].prev = prev;
        }
    }

    fn push_front(&mut self, i: u32) {
        self.links[i as usize] = Link {
            prev: NIL,
            next: self.head,
        };
        if self.head != NIL {
            self.links[self.head as usize].prev = i;
        }
        self.head = i;
        if self.tail == NIL {
            self.tail = i;
        }
    }

    fn remove_slot(&mut self, i: u32) {
        self.unlink(i);
        if let Some(entry) = self.entries[i as usize].take() {
            self.index.remove(&entry.hash);
        }
        self.free.push(i);
    }

    fn len(&self) -> usize {
        self.index.len()
    }
}

/// The default flag cache: in memory, least-recently-used eviction, a fixed
/// time to live per entry. Defaults: [`DEFAULT_CAPACITY`] entries,
/// [`DEFAULT_TTL`]. A capacity of 0 disables it (every `get` misses
/// without locking, `insert` does nothing).
///
/// The cache is split into shards, each behind its own `Mutex` and holding
/// an equal part of the capacity, so concurrent checks rarely contend.
/// Eviction is least-recently-used within a shard; with
/// [`shards(1)`](LruFlagCacheBuilder::shards) it is exact over the whole
/// cache. By default a cache of fewer than 512 entries has one shard and a
/// larger one 8.
///
/// A cache hit takes the shard lock, performs no heap allocation and
/// returns a clone of the value, so store cheap-to-clone values (`bool`,
/// small `Copy` types, or an `Arc` of a detailed result).
pub struct LruFlagCache<V> {
    shards: Box<[Mutex<Shard<V>>]>,
    shard_mask: u64,
    ttl: Duration,
    ttl_nanos: u64,
    seed: u64,
    time: TimeSource,
    capacity: usize,
}

impl<V: Clone + Send> LruFlagCache<V> {
    /// A cache with the default capacity and TTL.
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// Starts configuring a cache.
    pub fn builder() -> LruFlagCacheBuilder {
        LruFlagCacheBuilder::default()
    }

    /// A cache that holds nothing.
    pub fn disabled() -> Self {
        Self::builder().capacity(0).build()
    }

    /// The configured capacity (all shards together).
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The configured time to live.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    #[inline]
    fn shard(&self, hash: u64) -> &Mutex<Shard<V>> {
        // Middle bits choose the shard; the index uses the low bits for
        // buckets and the top bits for tags, so they stay independent.
        &self.shards[((hash >> 32) & self.shard_mask) as usize]
    }

    /// The fresh value stored for `key`, if any.
    #[inline]
    pub fn lookup(&self, key: &FlagCacheKey<'_>) -> Option<V> {
        if self.capacity == 0 {
            return None;
        }
        let hash = hash_key(self.seed, key);
        let now = self.time.now_nanos();
        let mut shard = self
            .shard(hash)
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let Some(&i) = shard.index.get(&hash) else {
            shard.stats.misses += 1;
            return None;
        };
        let Some(entry) = shard.entries[i as usize].as_ref() else {
            shard.stats.misses += 1;
            return None;
        };
        if &*entry.flag != key.flag
            || !pairs_match(&entry.company, key.company)
            || !pairs_match(&entry.user, key.user)
        {
            shard.stats.misses += 1;
            return None;
        }
        if now >= entry.expires_at {
            shard.remove_slot(i);
            shard.stats.expired += 1;
            shard.stats.misses += 1;
            return None;
        }
        let value = entry.value.clone();
        if shard.head != i {
            shard.unlink(i);
            shard.push_front(i);
        }
        shard.stats.hits += 1;
        Some(value)
    }

    /// Stores `value` for `key`, evicting the least recently used entry of
    /// the shard when it is full.
    pub fn store(&self, key: &FlagCacheKey<'_>, value: V) {
        if self.capacity == 0 {
            return;
        }
        let hash = hash_key(self.seed, key);
        // Build the owned copy of the key before taking the lock.
        let entry = Entry {
            hash,
            flag: Box::from(key.flag),
            company: sorted_pairs(key.company),
            user: sorted_pairs(key.user),
            value,
            expires_at: self.time.now_nanos().saturating_add(self.ttl_nanos),
        };
        let mut guard = self
            .shard(hash)
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let shard = &mut *guard;
        shard.stats.inserts += 1;
        if let Some(&i) = shard.index.get(&hash) {
            // Same context (or a colliding one): replace in place.
            shard.entries[i as usize] = Some(entry);
            shard.unlink(i);
            shard.push_front(i);
            return;
        }
        if shard.len() >= shard.capacity && shard.tail != NIL {
            let tail = shard.tail;
            shard.remove_slot(tail);
            shard.stats.evictions += 1;
        }
        let i = match shard.free.pop() {
            Some(i) => {
                shard.entries[i as usize] = Some(entry);
                i
            }
            None => {
                let i = u32::try_from(shard.entries.len()).unwrap_or(NIL);
                shard.entries.push(Some(entry));
                shard.links.push(Link {
                    prev: NIL,
                    next: NIL,
                });
                i
            }
        };
        shard.index.insert(hash, i);
        shard.push_front(i);
    }

    /// Removes the entry for `key`; returns whether there was one.
    pub fn remove(&self, key: &FlagCacheKey<'_>) -> bool {
        if self.capacity == 0 {
            return false;
        }
        let hash = hash_key(self.seed, key);
        let mut shard = self
            .shard(hash)
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let Some(&i) = shard.index.get(&hash) else {
            return false;
        };
        let matches = shard.entries[i as usize].as_ref().is_some_and(|e| {
            &*e.flag == key.flag
                && pairs_match(&e.company, key.company)
                && pairs_match(&e.user, key.user)
        });
        if matches {
            shard.remove_slot(i);
        }
        matches
    }

    /// Removes every entry.
    pub fn clear(&self) {
        for shard in self.shards.iter() {
            let mut shard = shard.lock().unwrap_or_else(PoisonError::into_inner);
            let capacity = shard.capacity;
            let stats = shard.stats;
            *shard = Shard::new(capacity);
            shard.stats = stats;
        }
    }

    /// Entries currently held, expired ones included until they are looked
    /// up or evicted.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(PoisonError::into_inner).len())
            .sum()
    }

    /// Whether the cache holds no entries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Counters summed over all shards.
    pub fn stats(&self) -> CacheStats {
        let mut total = CacheStats::default();
        for shard in self.shards.iter() {
            let s = shard.lock().unwrap_or_else(PoisonError::into_inner).stats;
            total.hits += s.hits;
            total.misses += s.misses;
            total.expired += s.expired;
            total.inserts += s.inserts;
            total.evictions += s.evictions;
        }
        total
    }
}

impl<V: Clone + Send> Default for LruFlagCache<V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<V> fmt::Debug for LruFlagCache<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LruFlagCache")
            .field("capacity", &self.capacity)
            .field("ttl", &self.ttl)
            .field("shards", &self.shards.len())
            .finish_non_exhaustive()
    }
}

impl<V: Clone + Send> FlagCache<V> for LruFlagCache<V> {
    #[inline]
    fn get(&self, key: &FlagCacheKey<'_>) -> Result<Option<V>, CacheError> {
        Ok(self.lookup(key))
    }
    fn insert(&self, key: &FlagCacheKey<'_>, value: V) -> Result<(), CacheError> {
        self.store(key, value);
        Ok(())
    }
}

/// Counters of an [`LruFlagCache`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheStats {
    /// Lookups answered from the cache.
    pub hits: u64,
    /// Lookups not answered (absent, expired or a different context).
    pub misses: u64,
    /// Entries found expired on lookup (also counted as misses).
    pub expired: u64,
    /// Values stored.
    pub inserts: u64,
    /// Entries evicted to make room.
    pub evictions: u64,
}

/// Configures an [`LruFlagCache`].
#[derive(Debug, Clone)]
pub struct LruFlagCacheBuilder {
    capacity: usize,
    ttl: Duration,
    shards: Option<usize>,
    clock: Option<Arc<dyn Clock>>,
}

impl Default for LruFlagCacheBuilder {
    fn default() -> Self {
        Self {
            capacity: DEFAULT_CAPACITY,
            ttl: DEFAULT_TTL,
            shards: None,
            clock: None,
        }
    }
}

impl LruFlagCacheBuilder {
    /// Maximum number of entries; 0 disables the cache.
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity;
        self
    }

    /// Time to live of each entry, counted from its insertion. A zero TTL
    /// makes every entry stale at once.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// Number of shards, rounded up to a power of two and limited so each
    /// shard holds at least one entry. 1 gives exact LRU order.
    pub fn shards(mut self, shards: usize) -> Self {
        self.shards = Some(shards.max(1));
        self
    }

    /// The clock used for TTLs.
    ///
    /// By default the cache reads a coarse monotonic clock, which is much
    /// cheaper than [`Instant::now`] and advances in steps of one scheduler
    /// tick (1–4 ms on Linux), so an entry may live up to a tick more or less
    /// than its TTL. Pass [`SystemClock`] for exact TTLs, or a
    /// [`ManualClock`] to control time in tests.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Builds the cache.
    pub fn build<V: Clone + Send>(self) -> LruFlagCache<V> {
        let capacity = self.capacity.min(u32::MAX as usize - 1);
        let wanted = self.shards.unwrap_or(if capacity < 512 { 1 } else { 8 });
        let mut shards = wanted.next_power_of_two().min(1 << 16);
        while shards > 1 && shards > capacity {
            shards /= 2;
        }
        let per_shard = capacity.div_ceil(shards);
        let shard_vec: Vec<_> = (0..shards)
            .map(|_| Mutex::new(Shard::new(per_shard)))
            .collect();
        LruFlagCache {
            shards: shard_vec.into_boxed_slice(),
            shard_mask: shards as u64 - 1,
            ttl: self.ttl,
            ttl_nanos: nanos(self.ttl),
            seed: RandomState::new().hash_one(0x5eed_u64),
            time: TimeSource::new(self.clock),
            capacity,
        }
    }
}

/// A cache that never holds anything (for turning caching off explicitly).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoCache;

impl<V> FlagCache<V> for NoCache {
    fn get(&self, _key: &FlagCacheKey<'_>) -> Result<Option<V>, CacheError> {
        Ok(None)
    }
    fn insert(&self, _key: &FlagCacheKey<'_>, _value: V) -> Result<(), CacheError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn cache(capacity: usize, clock: &Arc<ManualClock>) -> LruFlagCache<u32> {
        LruFlagCache::<u32>::builder()
            .capacity(capacity)
            .ttl(Duration::from_secs(5))
            .shards(1)
            .clock(clock.clone())
            .build()
    }

    #[test]
    fn hit_and_miss() {
        let clock = Arc::new(ManualClock::new());
        let c = cache(10, &clock);
        let company = keys(&[("id", "acme")]);
        let k = FlagCacheKey::new("f", &company, &());
        assert_eq!(c.lookup(&k), None);
        c.store(&k, 7);
        assert_eq!(c.lookup(&k), Some(7));
        let other = keys(&[("id", "other")]);
        assert_eq!(c.lookup(&FlagCacheKey::new("f", &other, &())), None);
        assert_eq!(c.lookup(&FlagCacheKey::new("g", &company, &())), None);
        // Same pairs as user keys instead of company keys: a different context.
        assert_eq!(c.lookup(&FlagCacheKey::new("f", &(), &company)), None);
        let s = c.stats();
        assert_eq!((s.hits, s.misses, s.inserts), (1, 4, 1));
    }

    #[test]
    fn key_order_and_map_type_do_not_matter() {
        let clock = Arc::new(ManualClock::new());
        let c = cache(10, &clock);
        let a = keys(&[("id", "1"), ("slug", "x")]);
        let mut b: HashMap<&str, &str> = HashMap::new();
        b.insert("slug", "x");
        b.insert("id", "1");
        c.store(&FlagCacheKey::new("f", &a, &()), 1);
        assert_eq!(c.lookup(&FlagCacheKey::new("f", &b, &())), Some(1));
        b.insert("extra", "y");
        assert_eq!(c.lookup(&FlagCacheKey::new("f", &b, &())), None);
        // The same names and values, paired differently.
        let swapped = keys(&[("id", "x"), ("slug", "1")]);
        assert_eq!(c.lookup(&FlagCacheKey::new("f", &swapped, &())), None);
        assert_ne!(
            hash_key(c.seed, &FlagCacheKey::new("f", &a, &())),
            hash_key(c.seed, &FlagCacheKey::new("f", &swapped, &()))
        );
    }

    #[test]
    fn entries_expire_after_ttl() {
        let clock = Arc::new(ManualClock::new());
        let c = cache(10, &clock);
        let k = FlagCacheKey::new("f", &(), &());
        c.store(&k, 1);
        clock.advance(Duration::from_millis(4_999));
        assert_eq!(c.lookup(&k), Some(1));
        clock.advance(Duration::from_millis(1));
        assert_eq!(c.lookup(&k), None);
        assert_eq!(c.stats().expired, 1);
        assert_eq!(c.len(), 0);
        // A re-insert starts a fresh TTL.
        c.store(&k, 2);
        clock.advance(Duration::from_secs(4));
        assert_eq!(c.lookup(&k), Some(2));
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
    fn default_clock_expires_entries() {
        let c = LruFlagCache::<u32>::builder()
            .ttl(Duration::from_millis(30))
            .build::<u32>();
        let k = FlagCacheKey::new("f", &(), &());
        c.store(&k, 1);
        assert_eq!(c.lookup(&k), Some(1));
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(c.lookup(&k), None);
        assert_eq!(c.stats().expired, 1);
    }

    #[test]
    fn zero_and_unbounded_ttls() {
        let zero = LruFlagCache::<u32>::builder()
            .ttl(Duration::ZERO)
            .build::<u32>();
        let k = FlagCacheKey::new("f", &(), &());
        zero.store(&k, 1);
        assert_eq!(zero.lookup(&k), None);
        let forever = LruFlagCache::<u32>::builder()
            .ttl(Duration::MAX)
            .build::<u32>();
        forever.store(&k, 2);
        assert_eq!(forever.lookup(&k), Some(2));
        let clock = Arc::new(ManualClock::new());
        let manual = LruFlagCache::<u32>::builder()
            .ttl(Duration::MAX)
            .clock(clock.clone())
            .build::<u32>();
        manual.store(&k, 3);
        clock.advance(Duration::from_secs(100 * 365 * 86_400));
        assert_eq!(manual.lookup(&k), Some(3));
    }

    #[test]
    fn least_recently_used_is_evicted_first() {
        let clock = Arc::new(ManualClock::new());
        let c = cache(3, &clock);
        let flags = ["a", "b", "c", "d", "e"];
        let k = |f: &'static str| FlagCacheKey::new(f, &(), &());
        for (i, f) in flags[..3].iter().enumerate() {
            c.store(&k(f), i as u32);
        }
        // Touch "a": now "b" is the oldest.
        assert_eq!(c.lookup(&k("a")), Some(0));
        c.store(&k("d"), 3);
        assert_eq!(c.lookup(&k("b")), None);
        assert_eq!(c.lookup(&k("a")), Some(0));
        assert_eq!(c.lookup(&k("c")), Some(2));
        assert_eq!(c.lookup(&k("d")), Some(3));
        // Order now (newest first): d, c, a. Inserting evicts "a".
        c.store(&k("e"), 4);
        assert_eq!(c.lookup(&k("a")), None);
        assert_eq!(c.len(), 3);
        assert_eq!(c.stats().evictions, 2);
    }

    #[test]
    fn replacing_a_value_keeps_one_entry() {
        let clock = Arc::new(ManualClock::new());
        let c = cache(2, &clock);
        let k = FlagCacheKey::new("f", &(), &());
        c.store(&k, 1);
        c.store(&k, 2);
        assert_eq!(c.len(), 1);
        assert_eq!(c.lookup(&k), Some(2));
        assert!(c.remove(&k));
        assert!(!c.remove(&k));
        assert!(c.is_empty());
    }

    #[test]
    fn capacity_zero_disables() {
        let c: LruFlagCache<u32> = LruFlagCache::disabled();
        let k = FlagCacheKey::new("f", &(), &());
        c.store(&k, 1);
        assert_eq!(c.lookup(&k), None);
        assert_eq!(c.len(), 0);
        assert_eq!(c.stats(), CacheStats::default());
    }

    #[test]
    fn sharded_cache_holds_its_capacity() {
        let c = LruFlagCache::<usize>::builder()
            .capacity(1_000)
            .build::<usize>();
        assert_eq!(c.shards.len(), 8);
        let names: Vec<String> = (0..5_000).map(|i| format!("flag-{i}")).collect();
        for (i, n) in names.iter().enumerate() {
            c.store(&FlagCacheKey::new(n, &(), &()), i);
        }
        assert!(c.len() <= 1_000);
        assert!(c.len() > 900, "{}", c.len());
        // The most recent entries are present.
        let last = &names[4_999];
        assert_eq!(c.lookup(&FlagCacheKey::new(last, &(), &())), Some(4_999));
    }

    #[test]
    fn byte_hash_separates_lengths_and_every_byte() {
        let text: Vec<u8> = (0..64u8).map(|i| b'a' + i % 26).collect();
        let mut seen = std::collections::HashSet::new();
        for len in 0..=text.len() {
            let base = &text[..len];
            assert!(seen.insert(hash_bytes(7, base)), "length {len}");
            for at in 0..len {
                let mut changed = base.to_vec();
                changed[at] ^= 1;
                assert_ne!(hash_bytes(7, base), hash_bytes(7, &changed), "{len}/{at}");
            }
        }
        // Zero bytes are not confused with shorter strings.
        assert_ne!(hash_bytes(7, b"\0"), hash_bytes(7, b""));
        assert_ne!(hash_bytes(7, b"ab\0"), hash_bytes(7, b"ab"));
        assert_ne!(hash_bytes(7, b"abc"), hash_bytes(8, b"abc"));
    }

    #[test]
    fn canonical_key_is_sorted_and_escaped() {
        let company = keys(&[("slug", "a;b"), ("id", "1")]);
        let user = keys(&[("email", "x:y")]);
        let k = FlagCacheKey::new("flag", &company, &user);
        assert_eq!(k.canonical(), r"f:flag;c:id:1;c:slug:a\;b;u:email:x\:y");
        assert_eq!(FlagCacheKey::new("f", &(), &()).canonical(), "f:f");
    }

    #[derive(Debug)]
    struct Broken;
    impl FlagCache<u32> for Broken {
        fn get(&self, _: &FlagCacheKey<'_>) -> Result<Option<u32>, CacheError> {
            Err(CacheError::new("backend down"))
        }
        fn insert(&self, _: &FlagCacheKey<'_>, _: u32) -> Result<(), CacheError> {
            Err(CacheError::new("backend down"))
        }
    }

    #[test]
    fn chain_absorbs_failures_and_falls_through() {
        let lru = Arc::new(LruFlagCache::<u32>::new());
        let chain = CacheChain::new(vec![Arc::new(Broken), lru.clone()]);
        let k = FlagCacheKey::new("f", &(), &());
        assert_eq!(chain.get(&k), None);
        chain.insert(&k, 9);
        assert_eq!(chain.get(&k), Some(9));
        assert_eq!(lru.lookup(&k), Some(9));
        assert_eq!(chain.errors(), 3);
        assert_eq!(CacheChain::<u32>::disabled().get(&k), None);
    }

    #[test]
    fn concurrent_use_is_consistent() {
        let c = Arc::new(LruFlagCache::<u64>::builder().capacity(16_384).build());
        let threads: Vec<_> = (0..4u64)
            .map(|t| {
                let c = c.clone();
                std::thread::spawn(move || {
                    for i in 0..2_000u64 {
                        let name = format!("f{t}-{i}");
                        let k = FlagCacheKey::new(&name, &(), &());
                        c.store(&k, t * 10_000 + i);
                        assert_eq!(c.lookup(&k), Some(t * 10_000 + i));
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(c.len(), 8_000);
    }
}
