//! The flag cache's public API as a user writes it: builders, key pairs,
//! reads that lend the value, and the deprecated names.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use flagwire::cache::{CacheChain, FlagCache, FlagCacheKey, KeyPairs, LocalFlagCache, NoCache};

#[test]
fn builder_takes_its_value_type_from_either_side() {
    let annotated: LocalFlagCache<bool> = LocalFlagCache::builder().capacity(10).build();
    let turbofish = LocalFlagCache::<bool>::builder().capacity(10).build();
    // Both are the same type: they fit in one array.
    let caches: [LocalFlagCache<bool>; 2] = [annotated, turbofish];
    for cache in &caches {
        assert_eq!(cache.capacity(), 10);
        let key = FlagCacheKey::new("f", &(), &());
        cache.store(&key, true);
        assert_eq!(cache.lookup(&key), Some(true));
    }
}

#[test]
#[allow(deprecated)]
fn former_names_still_work() {
    use flagwire::cache::{LruFlagCache, LruFlagCacheBuilder};

    let annotated: LruFlagCache<bool> = LruFlagCache::builder().capacity(10).build();
    let turbofish = LruFlagCache::<bool>::builder().capacity(10).build();
    let builder: LruFlagCacheBuilder<bool> = LocalFlagCache::builder();
    let caches: [LocalFlagCache<bool>; 3] = [annotated, turbofish, builder.build()];
    let capacities: Vec<usize> = caches.iter().map(LocalFlagCache::capacity).collect();
    assert_eq!(capacities, [10, 10, flagwire::cache::DEFAULT_CAPACITY]);
}

#[test]
fn key_pairs_accept_arrays_of_borrowed_and_owned_strings() {
    let cache: LocalFlagCache<u8> = LocalFlagCache::new();
    let id = String::from("acme");
    let by_literal = FlagCacheKey::new("f", &[("id", "acme")], &());
    cache.store(&by_literal, 1);

    let owned = [("id", id.clone())];
    let borrowed = [("id", &id)];
    let cow = [(Cow::Borrowed("id"), Cow::<str>::Owned(id.clone()))];
    let slice: &[(&str, &str)] = &[("id", "acme")];
    let vec = vec![("id".to_owned(), "acme".to_owned())];
    let map: BTreeMap<&str, &str> = [("id", "acme")].into();
    let some = Some([("id", "acme")]);
    let sets: [&dyn KeyPairs; 7] = [&owned, &borrowed, &cow, &slice, &vec, &map, &some];
    for (i, set) in sets.into_iter().enumerate() {
        assert_eq!(
            cache.lookup(&FlagCacheKey::new("f", set, &())),
            Some(1),
            "set {i}"
        );
    }
    // `None` is no keys, like `()`.
    cache.store(&FlagCacheKey::new("g", &(), &()), 2);
    let none: Option<[(&str, &str); 1]> = None;
    assert_eq!(cache.lookup(&FlagCacheKey::new("g", &none, &none)), Some(2));
    // A repeated name keeps its last value, as a map insert would.
    let repeated = [("id", "other"), ("id", "acme")];
    assert_eq!(
        cache.lookup(&FlagCacheKey::new("f", &repeated, &())),
        Some(1)
    );
    let reversed = [("id", "acme"), ("id", "other")];
    assert_eq!(cache.lookup(&FlagCacheKey::new("f", &reversed, &())), None);
}

/// Counts its clones, so a test can tell whether a read copied it.
struct Counted {
    value: bool,
    clones: Arc<AtomicUsize>,
}

impl Clone for Counted {
    fn clone(&self) -> Self {
        self.clones.fetch_add(1, Ordering::Relaxed);
        Counted {
            value: self.value,
            clones: self.clones.clone(),
        }
    }
}

#[test]
fn peek_lends_the_value_and_get_copies_it() {
    let clones = Arc::new(AtomicUsize::new(0));
    let cache = Arc::new(LocalFlagCache::<Counted>::new());
    let chain = CacheChain::new(vec![
        Arc::new(NoCache) as Arc<dyn FlagCache<Counted>>,
        cache.clone(),
    ]);
    let key = FlagCacheKey::new("f", &[("id", "acme")], &());
    cache.store(
        &key,
        Counted {
            value: true,
            clones: clones.clone(),
        },
    );
    for _ in 0..10 {
        assert_eq!(chain.peek_with(&key, |c| c.value), Some(true));
        assert_eq!(cache.peek_with(&key, |c| c.value), Some(true));
        let mut seen = None;
        assert!(cache.peek(&key, &mut |c| seen = Some(c.value)).unwrap());
        assert_eq!(seen, Some(true));
    }
    assert_eq!(clones.load(Ordering::Relaxed), 0);
    assert!(chain.get(&key).is_some_and(|c| c.value));
    assert!(cache.lookup(&key).is_some_and(|c| c.value));
    assert_eq!(clones.load(Ordering::Relaxed), 2);
    assert_eq!(cache.stats().hits, 32);
}

#[test]
fn an_arc_value_read_through_peek_keeps_its_count() {
    let cache: LocalFlagCache<Arc<String>> = LocalFlagCache::new();
    let value = Arc::new("detailed result".to_owned());
    let key = FlagCacheKey::new("f", &(), &[("email", "ann@example.com")]);
    cache.store(&key, value.clone());
    assert_eq!(Arc::strong_count(&value), 2);
    let len = cache.peek_with(&key, |v| {
        // Inside the read, the count is the stored one: no clone was made.
        assert_eq!(Arc::strong_count(v), 2);
        v.len()
    });
    assert_eq!(len, Some(15));
}
