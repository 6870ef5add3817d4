//! [`LocalFlagCache`]: the default in-memory cache. A lock-free hash map
//! answers reads; a CLOCK ring, behind a mutex only writers take, keeps the
//! entry count at the capacity. See the [module docs](super) for what a hit
//! costs and why.

use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::marker::PhantomData;
use std::num::NonZero;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use papaya::Guard as _;

use super::chain::{CacheError, FlagCache};
use super::clock::{Clock, TimeSource, nanos};
use super::keys::{FlagCacheKey, StoredKey, hash_key};

/// Default number of entries of a [`LocalFlagCache`].
pub const DEFAULT_CAPACITY: usize = 1_000;
/// Default time to live of a [`LocalFlagCache`] entry.
pub const DEFAULT_TTL: Duration = Duration::from_secs(5);

/// Caches up to this many entries size their hash table for the full
/// capacity when built; larger ones start there and grow with their
/// contents, so an unreachable capacity costs no memory.
const PRESIZED_ENTRIES: usize = 1 << 14;

/// One cached check.
struct Entry<V> {
    /// The context, compared on every hit.
    key: StoredKey,
    value: V,
    /// On the cache's time line ([`TimeSource::now_nanos`]).
    expires_at: u64,
    /// The CLOCK bit: set by a hit that finds it clear, cleared by the
    /// eviction hand when it passes. A hit on an entry already marked
    /// writes nothing.
    referenced: AtomicBool,
    /// Where the entry sits on the [`Ring`].
    position: usize,
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

type Map<V> = papaya::HashMap<u64, Entry<V>, BuildHasherDefault<PassThrough>>;

/// The writers' side: which hash sits at each position of the CLOCK ring,
/// where the hand is, and the write counters. Behind a mutex that readers
/// never take.
///
/// Invariant: `slots.len() - free.len()` entries are in the map, and each of
/// them sits at the position it records.
#[derive(Default)]
struct Ring {
    slots: Vec<Option<u64>>,
    /// Positions of `slots` that hold nothing.
    free: Vec<usize>,
    hand: usize,
    inserts: u64,
    evictions: u64,
}

impl Ring {
    fn len(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    /// A position for a new entry: a free one, or a new one at the end.
    fn take(&mut self, hash: u64) -> usize {
        match self.free.pop() {
            Some(position) => {
                self.slots[position] = Some(hash);
                position
            }
            None => {
                self.slots.push(Some(hash));
                self.slots.len() - 1
            }
        }
    }

    fn release(&mut self, position: usize) {
        if let Some(slot) = self.slots.get_mut(position)
            && slot.take().is_some()
        {
            self.free.push(position);
        }
    }

    fn clear(&mut self) {
        self.slots.clear();
        self.free.clear();
        self.hand = 0;
    }
}

/// Read counters of one group of threads, alone on its cache lines (128
/// bytes: two lines, because x86 fetches lines in adjacent pairs).
#[derive(Default)]
#[repr(align(128))]
struct Stripe {
    hits: AtomicU64,
    misses: AtomicU64,
    expired: AtomicU64,
}

impl Stripe {
    #[inline]
    fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// Hit and miss counters striped by thread, so that threads reading the
/// cache at the same time do not write the same cache line. A thread uses
/// the stripe of its reclamation-scheme thread id: ids are small and reused
/// (the lowest free one goes to a new thread), so live threads get stripes
/// of their own until there are more of them than stripes (four per CPU).
struct Counters {
    stripes: Box<[Stripe]>,
}

impl Counters {
    fn new() -> Self {
        let cpus = std::thread::available_parallelism().map_or(4, NonZero::get);
        let stripes = cpus.saturating_mul(4).next_power_of_two().clamp(4, 256);
        Counters {
            stripes: (0..stripes).map(|_| Stripe::default()).collect(),
        }
    }

    #[inline]
    fn for_thread(&self, thread_id: usize) -> &Stripe {
        &self.stripes[thread_id & (self.stripes.len() - 1)]
    }

    fn sum(&self, stats: &mut CacheStats) {
        for s in self.stripes.iter() {
            stats.hits += s.hits.load(Ordering::Relaxed);
            stats.misses += s.misses.load(Ordering::Relaxed);
            stats.expired += s.expired.load(Ordering::Relaxed);
        }
    }
}

/// The default flag cache: in memory, a fixed time to live per entry,
/// CLOCK eviction (approximately least recently used), hits that scale
/// across threads. Defaults: [`DEFAULT_CAPACITY`] entries, [`DEFAULT_TTL`].
///
/// * **Capacity is exact.** A cache of capacity N holds N entries; the
///   N+1st insert evicts one. A capacity of 0 disables the cache (every
///   lookup misses at once, `store` does nothing).
/// * **A hit writes no shared memory** in the steady state: no lock, no
///   reference count, no shared counter (see the [module docs](super)).
///   It performs no heap allocation.
/// * **Values are lent** by [`peek_with`](Self::peek_with), or cloned by
///   [`lookup`](Self::lookup). Store `bool`, small `Copy` types, or an
///   `Arc` of a detailed result and read it through `peek_with`.
///
/// ```
/// use std::time::Duration;
/// use flagwire::cache::{FlagCacheKey, LocalFlagCache};
///
/// let cache: LocalFlagCache<bool> = LocalFlagCache::builder()
///     .capacity(10_000)
///     .ttl(Duration::from_secs(30))
///     .build();
/// let key = FlagCacheKey::new("new-editor", &[("id", "acme")], &[("email", "ann@example.com")]);
/// cache.store(&key, true);
/// assert_eq!(cache.peek_with(&key, |on| *on), Some(true));
/// assert_eq!(cache.stats().hits, 1);
/// ```
pub struct LocalFlagCache<V> {
    map: Map<V>,
    ring: Mutex<Ring>,
    counters: Counters,
    capacity: usize,
    ttl: Duration,
    ttl_nanos: u64,
    seed: u64,
    time: TimeSource,
    /// Test hook: ANDed into every hash to force collisions.
    #[cfg(test)]
    hash_mask: u64,
}

/// The former name of [`LocalFlagCache`].
#[deprecated(
    note = "renamed to `LocalFlagCache`: the cache evicts by CLOCK (approximately least recently used), not from an LRU list"
)]
pub type LruFlagCache<V> = LocalFlagCache<V>;

/// The former name of [`LocalFlagCacheBuilder`].
#[deprecated(note = "renamed to `LocalFlagCacheBuilder`")]
pub type LruFlagCacheBuilder<V> = LocalFlagCacheBuilder<V>;

impl<V> LocalFlagCache<V> {
    /// A cache with the default capacity and TTL.
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// Starts configuring a cache. The value type comes from where the cache
    /// goes (`let cache: LocalFlagCache<bool> = LocalFlagCache::builder()…`)
    /// or from a turbofish (`LocalFlagCache::<bool>::builder()`); both name
    /// the same type.
    pub fn builder() -> LocalFlagCacheBuilder<V> {
        LocalFlagCacheBuilder::default()
    }

    /// A cache that holds nothing.
    pub fn disabled() -> Self {
        Self::builder().capacity(0).build()
    }

    /// The configured capacity.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The configured time to live.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    #[inline]
    fn hash(&self, key: &FlagCacheKey<'_>) -> u64 {
        #[cfg(not(test))]
        {
            hash_key(self.seed, key)
        }
        #[cfg(test)]
        {
            hash_key(self.seed, key) & self.hash_mask
        }
    }

    /// `f` applied to the fresh value stored for `key`, if any.
    ///
    /// The hot read: the value is lent in place, so an `Arc` value is not
    /// cloned. `f` runs while the entry is protected from reclamation; keep
    /// it short.
    #[inline]
    pub fn peek_with<R>(&self, key: &FlagCacheKey<'_>, f: impl FnOnce(&V) -> R) -> Option<R> {
        if self.capacity == 0 {
            return None;
        }
        let hash = self.hash(key);
        let guard = self.map.guard();
        let stripe = self.counters.for_thread(guard.thread_id());
        let entry = match self.map.get(&hash, &guard) {
            Some(entry) if entry.key.matches(key) => entry,
            // Absent, or a different context with the same hash.
            _ => {
                Stripe::bump(&stripe.misses);
                return None;
            }
        };
        if self.time.now_nanos() >= entry.expires_at {
            Stripe::bump(&stripe.expired);
            Stripe::bump(&stripe.misses);
            return None;
        }
        // Read first: in the steady state the bit is already set and the
        // entry's cache line stays shared between the cores reading it.
        if !entry.referenced.load(Ordering::Relaxed) {
            entry.referenced.store(true, Ordering::Relaxed);
        }
        Stripe::bump(&stripe.hits);
        Some(f(&entry.value))
    }

    /// A clone of the fresh value stored for `key`, if any.
    #[inline]
    pub fn lookup(&self, key: &FlagCacheKey<'_>) -> Option<V>
    where
        V: Clone,
    {
        self.peek_with(key, V::clone)
    }

    fn lock_ring(&self) -> MutexGuard<'_, Ring> {
        // The ring is consistent between statements that can panic, so a
        // panic elsewhere while it was held does not make it unusable.
        self.ring.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Stores `value` for `key`, replacing the value of the same context,
    /// or evicting one entry first when the cache is full.
    ///
    /// Allocates the entry (the context's keys are copied) before taking the
    /// writers' lock.
    pub fn store(&self, key: &FlagCacheKey<'_>, value: V) {
        if self.capacity == 0 {
            return;
        }
        let hash = self.hash(key);
        let mut entry = Entry {
            key: StoredKey::new(key),
            value,
            expires_at: self.time.now_nanos().saturating_add(self.ttl_nanos),
            referenced: AtomicBool::new(false),
            position: 0,
        };
        let mut ring = self.lock_ring();
        let guard = self.map.guard();
        ring.inserts += 1;
        if let Some(current) = self.map.get(&hash, &guard) {
            // The same context, or one with the same hash: replace in place.
            entry.position = current.position;
            self.map.insert(hash, entry, &guard);
            return;
        }
        if ring.len() >= self.capacity {
            self.evict_one(&mut ring, &guard);
        }
        entry.position = ring.take(hash);
        self.map.insert(hash, entry, &guard);
    }

    /// Removes one entry: the first one the hand reaches that is expired or
    /// not referenced since the hand last passed it, clearing the bits of
    /// the referenced ones it passes on the way (second chance). Within two
    /// turns every bit has been cleared once, so if readers keep setting
    /// them again, the entry under the hand goes after that.
    fn evict_one(&self, ring: &mut Ring, guard: &impl papaya::Guard) {
        let now = self.time.now_nanos();
        let turns = ring.slots.len().saturating_mul(2);
        for step in 0..=turns {
            let position = ring.hand;
            ring.hand = if position + 1 >= ring.slots.len() {
                0
            } else {
                position + 1
            };
            let Some(hash) = ring.slots.get(position).copied().flatten() else {
                continue;
            };
            let victim = match self.map.get(&hash, guard) {
                Some(entry) => {
                    let referenced = entry.referenced.load(Ordering::Relaxed);
                    if referenced && now < entry.expires_at && step < turns {
                        entry.referenced.store(false, Ordering::Relaxed);
                        false
                    } else {
                        true
                    }
                }
                // Not in the map (cannot happen: the ring and the map change
                // together under the lock); reuse the position.
                None => true,
            };
            if victim {
                self.map.remove(&hash, guard);
                ring.release(position);
                ring.evictions += 1;
                return;
            }
        }
    }

    /// Removes the entry for `key` (fresh or expired); returns whether there
    /// was one.
    pub fn remove(&self, key: &FlagCacheKey<'_>) -> bool {
        if self.capacity == 0 {
            return false;
        }
        let hash = self.hash(key);
        let mut ring = self.lock_ring();
        let guard = self.map.guard();
        let position = match self.map.get(&hash, &guard) {
            Some(entry) if entry.key.matches(key) => entry.position,
            _ => return false,
        };
        self.map.remove(&hash, &guard);
        ring.release(position);
        true
    }

    /// Removes every entry. The counters keep counting.
    pub fn clear(&self) {
        let mut ring = self.lock_ring();
        let guard = self.map.guard();
        self.map.clear(&guard);
        ring.clear();
    }

    /// Entries currently held, expired ones included until they are evicted
    /// or replaced.
    pub fn len(&self) -> usize {
        self.lock_ring().len()
    }

    /// Whether the cache holds no entries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The counters so far. Reads on other threads that are under way may
    /// or may not be counted yet.
    pub fn stats(&self) -> CacheStats {
        let mut stats = CacheStats::default();
        {
            let ring = self.lock_ring();
            stats.inserts = ring.inserts;
            stats.evictions = ring.evictions;
        }
        self.counters.sum(&mut stats);
        stats
    }
}

impl<V> Default for LocalFlagCache<V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<V> fmt::Debug for LocalFlagCache<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalFlagCache")
            .field("capacity", &self.capacity)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl<V: Clone + Send + Sync> FlagCache<V> for LocalFlagCache<V> {
    #[inline]
    fn get(&self, key: &FlagCacheKey<'_>) -> Result<Option<V>, CacheError> {
        Ok(self.lookup(key))
    }
    fn insert(&self, key: &FlagCacheKey<'_>, value: V) -> Result<(), CacheError> {
        self.store(key, value);
        Ok(())
    }
    #[inline]
    fn peek(&self, key: &FlagCacheKey<'_>, f: &mut dyn FnMut(&V)) -> Result<bool, CacheError> {
        Ok(self.peek_with(key, f).is_some())
    }
}

/// Counters of a [`LocalFlagCache`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheStats {
    /// Lookups answered from the cache.
    pub hits: u64,
    /// Lookups not answered (absent, expired or a different context).
    pub misses: u64,
    /// Lookups that found their entry expired (also counted as misses).
    pub expired: u64,
    /// Values stored.
    pub inserts: u64,
    /// Entries removed to make room (expired or not recently used).
    pub evictions: u64,
}

/// Configures a [`LocalFlagCache`] of values `V`.
pub struct LocalFlagCacheBuilder<V> {
    capacity: usize,
    ttl: Duration,
    clock: Option<Arc<dyn Clock>>,
    #[cfg(test)]
    hash_mask: u64,
    value: PhantomData<fn() -> V>,
}

impl<V> Default for LocalFlagCacheBuilder<V> {
    fn default() -> Self {
        Self {
            capacity: DEFAULT_CAPACITY,
            ttl: DEFAULT_TTL,
            clock: None,
            #[cfg(test)]
            hash_mask: u64::MAX,
            value: PhantomData,
        }
    }
}

impl<V> Clone for LocalFlagCacheBuilder<V> {
    fn clone(&self) -> Self {
        Self {
            capacity: self.capacity,
            ttl: self.ttl,
            clock: self.clock.clone(),
            #[cfg(test)]
            hash_mask: self.hash_mask,
            value: PhantomData,
        }
    }
}

impl<V> fmt::Debug for LocalFlagCacheBuilder<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalFlagCacheBuilder")
            .field("capacity", &self.capacity)
            .field("ttl", &self.ttl)
            .field("clock", &self.clock)
            .finish()
    }
}

impl<V> LocalFlagCacheBuilder<V> {
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

    /// The clock used for TTLs.
    ///
    /// By default the cache reads a coarse monotonic clock, which is much
    /// cheaper than [`Instant::now`](std::time::Instant::now) and advances
    /// in steps of one scheduler tick (1–4 ms on Linux), so an entry may
    /// live up to a tick more or less than its TTL. Pass
    /// [`SystemClock`](super::SystemClock) for exact TTLs, or a
    /// [`ManualClock`](super::ManualClock) to control time in tests.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Test hook: every hash is ANDed with `mask`, so that contexts collide.
    #[cfg(test)]
    pub(super) fn hash_mask(mut self, mask: u64) -> Self {
        self.hash_mask = mask;
        self
    }

    /// Builds the cache.
    pub fn build(self) -> LocalFlagCache<V> {
        let map = papaya::HashMap::builder()
            .hasher(BuildHasherDefault::default())
            .capacity(self.capacity.min(PRESIZED_ENTRIES))
            .build();
        LocalFlagCache {
            map,
            ring: Mutex::new(Ring::default()),
            counters: Counters::new(),
            capacity: self.capacity,
            ttl: self.ttl,
            ttl_nanos: nanos(self.ttl),
            seed: RandomState::new().hash_one(0x5eed_u64),
            time: TimeSource::new(self.clock),
            #[cfg(test)]
            hash_mask: self.hash_mask,
        }
    }
}

#[cfg(test)]
impl<V: Clone> LocalFlagCache<V> {
    /// The entry for `key` as the writers see it, without setting its bit or
    /// counting: (value, referenced, expired).
    fn inspect(&self, key: &FlagCacheKey<'_>) -> Option<(V, bool, bool)> {
        let hash = self.hash(key);
        let guard = self.map.guard();
        let entry = self.map.get(&hash, &guard)?;
        entry.key.matches(key).then(|| {
            (
                entry.value.clone(),
                entry.referenced.load(Ordering::Relaxed),
                self.time.now_nanos() >= entry.expires_at,
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashMap};

    use proptest::prelude::*;

    use super::*;
    use crate::cache::ManualClock;

    fn keys(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn cache(capacity: usize, clock: &Arc<ManualClock>) -> LocalFlagCache<u32> {
        LocalFlagCache::builder()
            .capacity(capacity)
            .ttl(Duration::from_secs(5))
            .clock(clock.clone())
            .build()
    }

    fn flag(name: &str) -> FlagCacheKey<'_> {
        FlagCacheKey::new(name, &(), &())
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
        assert_eq!(c.peek_with(&k, |v| v * 2), Some(14));
        let other = keys(&[("id", "other")]);
        assert_eq!(c.lookup(&FlagCacheKey::new("f", &other, &())), None);
        assert_eq!(c.lookup(&FlagCacheKey::new("g", &company, &())), None);
        // Same pairs as user keys instead of company keys: a different context.
        assert_eq!(c.lookup(&FlagCacheKey::new("f", &(), &company)), None);
        let s = c.stats();
        assert_eq!((s.hits, s.misses, s.inserts, s.evictions), (2, 4, 1, 0));
    }

    #[test]
    fn key_order_and_container_do_not_matter() {
        let clock = Arc::new(ManualClock::new());
        let c = cache(10, &clock);
        let a = keys(&[("id", "1"), ("slug", "x")]);
        let mut b: HashMap<&str, &str> = HashMap::new();
        b.insert("slug", "x");
        b.insert("id", "1");
        c.store(&FlagCacheKey::new("f", &a, &()), 1);
        assert_eq!(c.lookup(&FlagCacheKey::new("f", &b, &())), Some(1));
        let array = [("slug", "x"), ("id", "1")];
        assert_eq!(
            c.lookup(&FlagCacheKey::new("f", &array, &None::<()>)),
            Some(1)
        );
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
    fn expired_entries_miss_and_are_reclaimed_by_writers() {
        let clock = Arc::new(ManualClock::new());
        let c = cache(2, &clock);
        c.store(&flag("old"), 1);
        clock.advance(Duration::from_millis(4_999));
        assert_eq!(c.lookup(&flag("old")), Some(1));
        clock.advance(Duration::from_millis(1));
        assert_eq!(c.lookup(&flag("old")), None);
        let s = c.stats();
        assert_eq!((s.hits, s.misses, s.expired), (1, 1, 1));
        // Readers do not remove it; it still takes a place.
        assert_eq!(c.len(), 1);
        // A re-insert replaces it and starts a fresh TTL.
        c.store(&flag("old"), 2);
        assert_eq!(c.len(), 1);
        clock.advance(Duration::from_secs(4));
        assert_eq!(c.lookup(&flag("old")), Some(2));
        // Full: "old" (read, so referenced, but expired by then) goes before
        // "new" (fresh, never read).
        c.store(&flag("new"), 3);
        clock.advance(Duration::from_secs(2));
        assert_eq!(c.inspect(&flag("old")), Some((2, true, true)));
        c.store(&flag("third"), 4);
        assert_eq!(c.inspect(&flag("old")), None);
        assert_eq!(c.lookup(&flag("new")), Some(3));
        assert_eq!(c.lookup(&flag("third")), Some(4));
        assert_eq!(c.stats().evictions, 1);
    }

    #[test]
    fn default_clock_expires_entries() {
        let c: LocalFlagCache<u32> = LocalFlagCache::builder()
            .ttl(Duration::from_millis(30))
            .build();
        c.store(&flag("f"), 1);
        assert_eq!(c.lookup(&flag("f")), Some(1));
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(c.lookup(&flag("f")), None);
        assert_eq!(c.stats().expired, 1);
    }

    #[test]
    fn zero_and_unbounded_ttls() {
        let zero = LocalFlagCache::<u32>::builder().ttl(Duration::ZERO).build();
        zero.store(&flag("f"), 1);
        assert_eq!(zero.lookup(&flag("f")), None);
        let forever = LocalFlagCache::<u32>::builder().ttl(Duration::MAX).build();
        forever.store(&flag("f"), 2);
        assert_eq!(forever.lookup(&flag("f")), Some(2));
        let clock = Arc::new(ManualClock::new());
        let manual = LocalFlagCache::<u32>::builder()
            .ttl(Duration::MAX)
            .clock(clock.clone())
            .build();
        manual.store(&flag("f"), 3);
        clock.advance(Duration::from_secs(100 * 365 * 86_400));
        assert_eq!(manual.lookup(&flag("f")), Some(3));
    }

    #[test]
    fn clock_gives_read_entries_a_second_chance() {
        let clock = Arc::new(ManualClock::new());
        let c = cache(3, &clock);
        for (i, f) in ["a", "b", "c"].into_iter().enumerate() {
            c.store(&flag(f), i as u32);
        }
        // Ring: a b c, hand at a. Read "a": the hand clears its bit, passes
        // it and evicts "b".
        assert_eq!(c.lookup(&flag("a")), Some(0));
        c.store(&flag("d"), 3);
        assert_eq!(c.inspect(&flag("b")), None);
        assert_eq!(c.inspect(&flag("a")), Some((0, false, false)));
        assert_eq!(c.inspect(&flag("c")), Some((2, false, false)));
        assert_eq!(c.inspect(&flag("d")), Some((3, false, false)));
        // Ring: a d c, hand at c. Read "c" and "d": "a" goes next.
        assert_eq!(c.lookup(&flag("c")), Some(2));
        assert_eq!(c.lookup(&flag("d")), Some(3));
        c.store(&flag("e"), 4);
        assert_eq!(c.inspect(&flag("a")), None);
        assert_eq!(c.len(), 3);
        // Every entry read: one full turn clears all bits and the entry
        // under the hand goes; the count stays at the capacity.
        for f in ["c", "d", "e"] {
            assert!(c.lookup(&flag(f)).is_some());
        }
        c.store(&flag("f"), 5);
        assert_eq!(c.len(), 3);
        let present = ["c", "d", "e"]
            .into_iter()
            .filter(|f| c.inspect(&flag(f)).is_some())
            .count();
        assert_eq!(present, 2);
        assert_eq!(c.stats().evictions, 3);
    }

    #[test]
    fn replacing_and_removing() {
        let clock = Arc::new(ManualClock::new());
        let c = cache(2, &clock);
        c.store(&flag("f"), 1);
        c.store(&flag("f"), 2);
        assert_eq!(c.len(), 1);
        assert_eq!(c.lookup(&flag("f")), Some(2));
        assert!(c.remove(&flag("f")));
        assert!(!c.remove(&flag("f")));
        assert!(c.is_empty());
        // A removed entry's place is free again: no eviction needed.
        c.store(&flag("a"), 1);
        c.store(&flag("b"), 2);
        assert!(c.remove(&flag("a")));
        c.store(&flag("c"), 3);
        assert_eq!(c.stats().evictions, 0);
        assert_eq!(
            (c.lookup(&flag("b")), c.lookup(&flag("c"))),
            (Some(2), Some(3))
        );
    }

    #[test]
    fn clear_empties_and_keeps_counting() {
        let clock = Arc::new(ManualClock::new());
        let c = cache(4, &clock);
        for (i, f) in ["a", "b", "c", "d", "e"].into_iter().enumerate() {
            c.store(&flag(f), i as u32);
        }
        assert_eq!(c.lookup(&flag("e")), Some(4));
        c.clear();
        assert!(c.is_empty());
        assert_eq!(c.lookup(&flag("e")), None);
        let s = c.stats();
        assert_eq!((s.inserts, s.evictions, s.hits, s.misses), (5, 1, 1, 1));
        for (i, f) in ["v", "w", "x", "y"].into_iter().enumerate() {
            c.store(&flag(f), i as u32);
        }
        assert_eq!(c.len(), 4);
        assert_eq!(c.stats().evictions, 1);
    }

    #[test]
    fn capacity_zero_disables() {
        let c: LocalFlagCache<u32> = LocalFlagCache::disabled();
        c.store(&flag("f"), 1);
        assert_eq!(c.lookup(&flag("f")), None);
        assert!(!c.remove(&flag("f")));
        assert_eq!(c.len(), 0);
        assert_eq!(c.stats(), CacheStats::default());
    }

    #[test]
    fn a_cache_of_capacity_n_holds_n() {
        for n in [1, 2, 7, 1_000] {
            let c: LocalFlagCache<usize> = LocalFlagCache::builder().capacity(n).build();
            let companies: Vec<_> = (0..n).map(|i| [("id", format!("company-{i}"))]).collect();
            let key = |i: usize| FlagCacheKey::new("new-editor", &companies[i], &());
            for i in 0..n {
                c.store(&key(i), i);
            }
            for pass in 0..2 {
                let misses = (0..n).filter(|&i| c.lookup(&key(i)) != Some(i)).count();
                assert_eq!(misses, 0, "capacity {n}, pass {pass}");
            }
            assert_eq!(c.len(), n);
        }
        // Five times the capacity inserted: exactly the capacity held, the
        // latest entry among them.
        let c: LocalFlagCache<usize> = LocalFlagCache::builder().capacity(1_000).build();
        let names: Vec<String> = (0..5_000).map(|i| format!("flag-{i}")).collect();
        for (i, n) in names.iter().enumerate() {
            c.store(&flag(n), i);
        }
        assert_eq!(c.len(), 1_000);
        assert_eq!(c.stats().evictions, 4_000);
        assert_eq!(c.lookup(&flag(&names[4_999])), Some(4_999));
        let held = names
            .iter()
            .filter(|n| c.inspect(&flag(n)).is_some())
            .count();
        assert_eq!(held, 1_000);
    }

    #[test]
    fn colliding_contexts_never_answer_for_each_other() {
        let c: LocalFlagCache<u32> = LocalFlagCache::builder().hash_mask(0).build();
        let (a, b) = (keys(&[("id", "a")]), keys(&[("id", "b")]));
        let ka = FlagCacheKey::new("f", &a, &());
        let kb = FlagCacheKey::new("f", &b, &());
        assert_eq!(c.hash(&ka), c.hash(&kb));
        c.store(&ka, 1);
        assert_eq!(c.lookup(&kb), None);
        assert!(!c.remove(&kb));
        assert_eq!(c.lookup(&ka), Some(1));
        // The second context displaces the first: one entry, its value.
        c.store(&kb, 2);
        assert_eq!(c.len(), 1);
        assert_eq!(c.lookup(&ka), None);
        assert_eq!(c.lookup(&kb), Some(2));
        assert_eq!(c.stats().evictions, 0);
    }

    #[test]
    fn counters_add_up_across_threads() {
        let c: LocalFlagCache<u32> = LocalFlagCache::new();
        c.store(&flag("hit"), 1);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..1_000 {
                        assert_eq!(c.peek_with(&flag("hit"), |v| *v), Some(1));
                        assert_eq!(c.lookup(&flag("miss")), None);
                    }
                });
            }
        });
        let s = c.stats();
        assert_eq!((s.hits, s.misses), (4_000, 4_000));
    }

    /// A value whose parts all derive from the context and a generation, so
    /// a value for another context, or a mix of two writes, shows.
    fn value(context: u64, generation: u64) -> [u64; 4] {
        [context, generation, context ^ generation, !context]
    }

    fn readers_and_writers(hash_mask: u64) {
        const CONTEXTS: u64 = 200;
        let c: LocalFlagCache<[u64; 4]> = LocalFlagCache::builder()
            .capacity(64)
            .hash_mask(hash_mask)
            .build();
        let ids: Vec<[(&str, String); 1]> =
            (0..CONTEXTS).map(|i| [("id", i.to_string())]).collect();
        let key = |i: u64| FlagCacheKey::new("f", &ids[i as usize], &());
        std::thread::scope(|s| {
            for writer in 0..2u64 {
                let key = &key;
                let c = &c;
                s.spawn(move || {
                    let mut rng = fastrand::Rng::with_seed(writer);
                    for generation in 0..5_000 {
                        let i = rng.u64(..CONTEXTS);
                        c.store(&key(i), value(i, generation));
                        if generation % 97 == 0 {
                            c.remove(&key(rng.u64(..CONTEXTS)));
                        }
                    }
                });
            }
            for reader in 0..2u64 {
                let key = &key;
                let c = &c;
                s.spawn(move || {
                    let mut rng = fastrand::Rng::with_seed(100 + reader);
                    let mut hits = 0;
                    for step in 0..20_000 {
                        let i = rng.u64(..CONTEXTS);
                        if let Some(v) = c.peek_with(&key(i), |v| *v) {
                            assert_eq!(v, value(i, v[1]), "context {i}");
                            hits += 1;
                        }
                        if step % 1_000 == 0 {
                            assert!(c.len() <= 64);
                        }
                    }
                    hits
                });
            }
        });
        assert!(c.len() <= 64);
        for i in 0..CONTEXTS {
            if let Some(v) = c.lookup(&key(i)) {
                assert_eq!(v, value(i, v[1]));
            }
        }
    }

    #[test]
    fn concurrent_readers_and_writers_see_whole_right_values() {
        readers_and_writers(u64::MAX);
    }

    #[test]
    fn concurrent_readers_and_writers_with_colliding_hashes() {
        // 8 hashes for 200 contexts.
        readers_and_writers(0b111);
    }

    // -----------------------------------------------------------------------
    // Model test
    // -----------------------------------------------------------------------

    /// The contexts the model test draws from: 3 flags × 2 companies ×
    /// (no user, one user).
    const CONTEXTS: usize = 12;
    const TTL_MS: u64 = 2_000;

    struct Contexts {
        companies: [[(&'static str, &'static str); 1]; 2],
        user: [(&'static str, &'static str); 1],
    }

    const CTX: Contexts = Contexts {
        companies: [[("id", "1")], [("id", "2")]],
        user: [("email", "ann@example.com")],
    };

    fn context(i: usize) -> FlagCacheKey<'static> {
        let flag = ["a", "b", "c"][i % 3];
        let company = &CTX.companies[(i / 3) % 2];
        if i / 6 == 0 {
            FlagCacheKey::new(flag, company, &())
        } else {
            FlagCacheKey::new(flag, company, &CTX.user)
        }
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert(usize, u32),
        Get(usize),
        Remove(usize),
        Clear,
        Advance(u64),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => (0..CONTEXTS, any::<u32>()).prop_map(|(c, v)| Op::Insert(c, v)),
            6 => (0..CONTEXTS).prop_map(Op::Get),
            1 => (0..CONTEXTS).prop_map(Op::Remove),
            1 => Just(Op::Clear),
            1 => (0..3_000u64).prop_map(Op::Advance),
        ]
    }

    type Snapshot = Vec<Option<(u32, bool, bool)>>;

    fn snapshot(c: &LocalFlagCache<u32>) -> Snapshot {
        (0..CONTEXTS).map(|i| c.inspect(&context(i))).collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

        /// Against a map of what was last stored per context: never a wrong
        /// or stale value, never more than the capacity, a value just stored
        /// is found, a hit marks its entry, and an eviction takes an entry
        /// that is expired or unmarked whenever there is one.
        #[test]
        fn behaves_like_a_bounded_map(
            capacity in 1usize..6,
            collide in any::<bool>(),
            ops in proptest::collection::vec(op(), 1..120),
        ) {
            let clock = Arc::new(ManualClock::new());
            let c: LocalFlagCache<u32> = LocalFlagCache::builder()
                .capacity(capacity)
                .ttl(Duration::from_millis(TTL_MS))
                .clock(clock.clone())
                .hash_mask(if collide { 0b11 } else { u64::MAX })
                .build();
            let hashes: Vec<u64> = (0..CONTEXTS).map(|i| c.hash(&context(i))).collect();
            // Context -> (value, stored at ms).
            let mut model: HashMap<usize, (u32, u64)> = HashMap::new();
            let mut now = 0u64;
            for op in ops {
                let before = snapshot(&c);
                let stats = c.stats();
                match op {
                    Op::Insert(i, v) => {
                        c.store(&context(i), v);
                        let after = snapshot(&c);
                        prop_assert_eq!(after[i], Some((v, false, false)));
                        let replaced = (0..CONTEXTS)
                            .any(|j| hashes[j] == hashes[i] && before[j].is_some());
                        let lost: Vec<usize> = (0..CONTEXTS)
                            .filter(|&j| hashes[j] != hashes[i])
                            .filter(|&j| before[j].is_some() && after[j].is_none())
                            .collect();
                        let held = before.iter().flatten().count();
                        if replaced || held < capacity {
                            prop_assert!(lost.is_empty(), "{:?}", lost);
                            prop_assert_eq!(c.stats().evictions, stats.evictions);
                        } else {
                            prop_assert_eq!(lost.len(), 1);
                            prop_assert_eq!(c.stats().evictions, stats.evictions + 1);
                            let evictable = |s: &Option<(u32, bool, bool)>| {
                                s.is_some_and(|(_, referenced, expired)| !referenced || expired)
                            };
                            if before.iter().any(evictable) {
                                prop_assert!(evictable(&before[lost[0]]), "{:?}", before);
                            }
                        }
                        model.retain(|&j, _| hashes[j] != hashes[i]);
                        model.insert(i, (v, now));
                    }
                    Op::Get(i) => {
                        let got = c.lookup(&context(i));
                        match before[i] {
                            Some((v, _, false)) => {
                                prop_assert_eq!(got, Some(v));
                                prop_assert_eq!(c.inspect(&context(i)), Some((v, true, false)));
                                prop_assert_eq!(c.stats().hits, stats.hits + 1);
                            }
                            Some((_, _, true)) | None => {
                                prop_assert_eq!(got, None);
                                prop_assert_eq!(c.stats().misses, stats.misses + 1);
                                prop_assert_eq!(
                                    c.stats().expired,
                                    stats.expired + u64::from(before[i].is_some())
                                );
                            }
                        }
                    }
                    Op::Remove(i) => {
                        prop_assert_eq!(c.remove(&context(i)), before[i].is_some());
                        prop_assert_eq!(c.inspect(&context(i)), None);
                        model.remove(&i);
                    }
                    Op::Clear => {
                        c.clear();
                        prop_assert!(snapshot(&c).iter().all(Option::is_none));
                        model.clear();
                    }
                    Op::Advance(ms) => {
                        clock.advance(Duration::from_millis(ms));
                        now += ms;
                    }
                }
                let after = snapshot(&c);
                let held = after.iter().flatten().count();
                prop_assert!(held <= capacity);
                prop_assert_eq!(held, c.len());
                for (i, entry) in after.iter().enumerate() {
                    if let Some((v, _, expired)) = entry {
                        let (stored, at) = model.get(&i).copied().expect("held but never stored");
                        prop_assert_eq!(*v, stored, "context {}", i);
                        prop_assert_eq!(*expired, now - at >= TTL_MS, "context {}", i);
                    }
                }
            }
        }
    }
}
