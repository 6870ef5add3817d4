//! A flag-cache hit performs no heap allocation, through every read path.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use flagwire::cache::{CacheChain, FlagCache, FlagCacheKey, LocalFlagCache};
use flagwire_alloc_counter::{CountingAllocator, count_allocations};

#[global_allocator]
static ALLOC: CountingAllocator = CountingAllocator::new();

/// A detailed result, as the client caches it.
struct Check {
    value: bool,
    reason: String,
}

#[test]
fn cache_hits_do_not_allocate() {
    let cache = Arc::new(LocalFlagCache::<Arc<Check>>::new());
    let chain = CacheChain::new(vec![cache.clone() as Arc<dyn FlagCache<Arc<Check>>>]);
    let company: BTreeMap<String, String> = [
        ("id".to_owned(), "acme".to_owned()),
        ("slug".to_owned(), "acme-inc".to_owned()),
    ]
    .into();
    let user: HashMap<String, String> = [("email".to_owned(), "ann@example.com".to_owned())].into();
    let key = FlagCacheKey::new("new-editor", &company, &user);
    chain.insert(
        &key,
        Arc::new(Check {
            value: true,
            reason: "rule".to_owned(),
        }),
    );

    let (hits, allocations) = count_allocations(|| {
        (0..1_000)
            .filter(|_| {
                let key = FlagCacheKey::new("new-editor", &company, &user);
                chain.peek_with(&key, |check| check.value) == Some(true)
                    && cache.peek_with(&key, |check| check.reason.len()) == Some(4)
                    && chain.get(&key).is_some()
                    && cache.lookup(&key).is_some()
            })
            .count()
    });
    assert_eq!(hits, 1_000);
    assert_eq!(allocations, 0);

    // Keys given as arrays of pairs do not allocate either.
    let array_key = FlagCacheKey::new("f", &[("id", "acme")], &[("email", "ann@example.com")]);
    cache.store(
        &array_key,
        Arc::new(Check {
            value: false,
            reason: String::new(),
        }),
    );
    let (hit, allocations) = count_allocations(|| {
        let key = FlagCacheKey::new("f", &[("id", "acme")], &[("email", "ann@example.com")]);
        chain.peek_with(&key, |check| check.value)
    });
    assert_eq!(hit, Some(false));
    assert_eq!(allocations, 0);

    // Misses do not allocate.
    let other: BTreeMap<String, String> = [("id".to_owned(), "other".to_owned())].into();
    let (miss, allocations) = count_allocations(|| {
        cache.peek_with(&FlagCacheKey::new("new-editor", &other, &user), |c| c.value)
    });
    assert!(miss.is_none());
    assert_eq!(allocations, 0);
}

#[test]
fn first_read_on_a_new_thread() {
    let cache = LocalFlagCache::<bool>::new();
    cache.store(&FlagCacheKey::new("f", &[("id", "acme")], &()), true);
    let (first, later) = std::thread::scope(|s| {
        s.spawn(|| {
            let key = FlagCacheKey::new("f", &[("id", "acme")], &());
            let first = count_allocations(|| cache.peek_with(&key, |v| *v));
            let later = count_allocations(|| cache.peek_with(&key, |v| *v));
            (first, later)
        })
        .join()
        .unwrap()
    });
    println!("first read on a new thread: {first:?}, second: {later:?}");
    assert_eq!(later, (Some(true), 0));
}
