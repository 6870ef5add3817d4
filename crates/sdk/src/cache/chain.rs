//! The [`FlagCache`] trait, its [`CacheError`], and [`CacheChain`], which
//! makes any set of caches infallible for the code doing flag checks.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::keys::FlagCacheKey;

/// Why a cache backend could not serve a read or a write. Only ever seen by
/// [`CacheChain`], which logs and counts it; it never reaches a flag check.
///
/// `Display` shows the message followed by the cause, when there is one
/// (`redis read: connection reset`), so the one log line says what failed.
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
        f.write_str(&self.message)?;
        if let Some(source) = &self.source {
            write!(f, ": {source}")?;
        }
        Ok(())
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
/// raised: [`CacheChain`] treats a failed read as a miss and ignores a
/// failed `insert`. Implementations must not panic.
///
/// The trait is object safe: a [`CacheChain`] holds `Arc<dyn FlagCache<V>>`.
pub trait FlagCache<V>: Send + Sync {
    /// The cached value for `key`, if present and fresh (an owned copy).
    fn get(&self, key: &FlagCacheKey<'_>) -> Result<Option<V>, CacheError>;

    /// Stores `value` for `key`.
    fn insert(&self, key: &FlagCacheKey<'_>, value: V) -> Result<(), CacheError>;

    /// Calls `f` once with the cached value for `key`, if present and fresh,
    /// and returns whether it did.
    ///
    /// The value is lent, not copied: a cache that keeps values in memory
    /// can hand out a reference to its own, so a reader of an
    /// `Arc<Result>` value never touches the `Arc`'s reference count (a
    /// write to memory that every thread reading the entry shares). The
    /// default implementation calls [`get`](Self::get) and lends the copy;
    /// [`LocalFlagCache`](super::LocalFlagCache) overrides it.
    fn peek(&self, key: &FlagCacheKey<'_>, f: &mut dyn FnMut(&V)) -> Result<bool, CacheError> {
        Ok(match self.get(key)? {
            Some(value) => {
                f(&value);
                true
            }
            None => false,
        })
    }
}

impl<V, C: FlagCache<V> + ?Sized> FlagCache<V> for Arc<C> {
    fn get(&self, key: &FlagCacheKey<'_>) -> Result<Option<V>, CacheError> {
        (**self).get(key)
    }
    fn insert(&self, key: &FlagCacheKey<'_>, value: V) -> Result<(), CacheError> {
        (**self).insert(key, value)
    }
    fn peek(&self, key: &FlagCacheKey<'_>, f: &mut dyn FnMut(&V)) -> Result<bool, CacheError> {
        (**self).peek(key, f)
    }
}

/// Caches tried in order on read and all written on insert, with failures
/// absorbed: a read error is a miss, a write error is skipped. Both are
/// logged at `debug` level and counted in [`errors`](Self::errors).
///
/// An empty chain caches nothing.
///
/// ```
/// use std::sync::Arc;
/// use flagwire::cache::{CacheChain, FlagCacheKey, LocalFlagCache};
///
/// struct Check {
///     value: bool,
///     reason: String,
/// }
///
/// let chain = CacheChain::single(LocalFlagCache::<Arc<Check>>::new());
/// let key = FlagCacheKey::new("new-editor", &[("id", "acme")], &());
/// chain.insert(&key, Arc::new(Check { value: true, reason: "rule 3".into() }));
///
/// // Read one field in place: the `Arc` is not cloned.
/// assert_eq!(chain.peek_with(&key, |check| check.value), Some(true));
/// // Or take a copy of the value.
/// assert_eq!(chain.get(&key).map(|check| check.reason.clone()).as_deref(), Some("rule 3"));
/// ```
pub struct CacheChain<V> {
    caches: Vec<Arc<dyn FlagCache<V>>>,
    errors: AtomicU64,
}

impl<V> CacheChain<V> {
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

    /// `f` applied to the first hit among the caches, or `None`.
    ///
    /// The value is lent by the cache that holds it (see
    /// [`FlagCache::peek`]), so reading a field of an `Arc` value this way
    /// never clones the `Arc`. This is the read for hot paths.
    #[inline]
    pub fn peek_with<R>(&self, key: &FlagCacheKey<'_>, f: impl FnOnce(&V) -> R) -> Option<R> {
        let mut f = Some(f);
        let mut out = None;
        for cache in &self.caches {
            let result = cache.peek(key, &mut |value| {
                if let Some(f) = f.take() {
                    out = Some(f(value));
                }
            });
            if let Err(e) = &result {
                self.record_error("read", e);
            }
            // A cache that reports a hit without lending the value is
            // treated as a miss.
            if out.is_some() {
                return out;
            }
        }
        None
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

impl<V: Clone> CacheChain<V> {
    /// A copy of the first hit among the caches, or `None`.
    ///
    /// Clones the value; for an `Arc` shared by threads that means a write
    /// to its reference count on every call. Prefer
    /// [`peek_with`](Self::peek_with) to read a part of it.
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
}

impl<V> fmt::Debug for CacheChain<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheChain")
            .field("caches", &self.caches.len())
            .field("errors", &self.errors.load(Ordering::Relaxed))
            .finish()
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
    fn peek(&self, _key: &FlagCacheKey<'_>, _f: &mut dyn FnMut(&V)) -> Result<bool, CacheError> {
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

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

    /// A cache with only `get` and `insert`, so `peek` is the default one.
    #[derive(Default)]
    struct Plain(Mutex<Option<u32>>);
    impl FlagCache<u32> for Plain {
        fn get(&self, _: &FlagCacheKey<'_>) -> Result<Option<u32>, CacheError> {
            Ok(*self.0.lock().unwrap())
        }
        fn insert(&self, _: &FlagCacheKey<'_>, value: u32) -> Result<(), CacheError> {
            *self.0.lock().unwrap() = Some(value);
            Ok(())
        }
    }

    /// Claims hits without lending a value, and fails after lending one.
    struct Liar {
        lend: Option<u32>,
    }
    impl FlagCache<u32> for Liar {
        fn get(&self, _: &FlagCacheKey<'_>) -> Result<Option<u32>, CacheError> {
            Ok(None)
        }
        fn insert(&self, _: &FlagCacheKey<'_>, _: u32) -> Result<(), CacheError> {
            Ok(())
        }
        fn peek(&self, _: &FlagCacheKey<'_>, f: &mut dyn FnMut(&u32)) -> Result<bool, CacheError> {
            match self.lend {
                None => Ok(true),
                Some(v) => {
                    f(&v);
                    Err(CacheError::new("lent, then failed"))
                }
            }
        }
    }

    #[test]
    fn chain_absorbs_failures_and_falls_through() {
        let plain = Arc::new(Plain::default());
        let chain = CacheChain::new(vec![Arc::new(Broken), plain.clone()]);
        let k = FlagCacheKey::new("f", &(), &());
        assert_eq!(chain.get(&k), None);
        assert_eq!(chain.peek_with(&k, |v| *v), None);
        chain.insert(&k, 9);
        assert_eq!(chain.get(&k), Some(9));
        assert_eq!(chain.peek_with(&k, |v| v + 1), Some(10));
        assert_eq!(plain.get(&k).unwrap(), Some(9));
        assert_eq!(chain.errors(), 5);
        assert_eq!(CacheChain::<u32>::disabled().get(&k), None);
        assert_eq!(CacheChain::<u32>::disabled().peek_with(&k, |v| *v), None);
        assert!(CacheChain::<u32>::disabled().is_disabled());
    }

    #[test]
    fn default_peek_lends_the_copy_from_get() {
        let plain = Plain::default();
        let k = FlagCacheKey::new("f", &(), &());
        let mut seen = Vec::new();
        assert!(!plain.peek(&k, &mut |v| seen.push(*v)).unwrap());
        plain.insert(&k, 4).unwrap();
        assert!(plain.peek(&k, &mut |v| seen.push(*v)).unwrap());
        assert_eq!(seen, [4]);
        let mut seen = Vec::new();
        assert!(!NoCache.peek(&k, &mut |v: &u32| seen.push(*v)).unwrap());
        assert!(seen.is_empty());
    }

    #[test]
    fn peek_with_tolerates_caches_that_break_the_contract() {
        let plain = Arc::new(Plain::default());
        let k = FlagCacheKey::new("f", &(), &());
        plain.insert(&k, 2).unwrap();
        // A claimed hit without a value falls through to the next cache.
        let chain = CacheChain::new(vec![Arc::new(Liar { lend: None }), plain.clone()]);
        assert_eq!(chain.peek_with(&k, |v| *v), Some(2));
        // A value lent before a failure is used, and the failure counted.
        let chain = CacheChain::new(vec![Arc::new(Liar { lend: Some(5) }), plain]);
        assert_eq!(chain.peek_with(&k, |v| *v), Some(5));
        assert_eq!(chain.errors(), 1);
    }

    #[test]
    fn cache_error_shows_its_message_and_source() {
        let io = std::io::Error::other("connection reset");
        let e = CacheError::with_source("redis read", io);
        assert_eq!(e.to_string(), "redis read: connection reset");
        let source = std::error::Error::source(&e).unwrap();
        assert_eq!(source.to_string(), "connection reset");
        assert!(std::error::Error::source(&CacheError::new("x")).is_none());
    }
}
