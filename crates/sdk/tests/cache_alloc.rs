//! A flag-cache hit performs no heap allocation.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use flagwire::cache::{CacheChain, FlagCache, FlagCacheKey, LruFlagCache};
use flagwire_alloc_counter::{CountingAllocator, count_allocations};

#[global_allocator]
static ALLOC: CountingAllocator = CountingAllocator::new();

#[test]
fn cache_hits_do_not_allocate() {
    let cache = Arc::new(LruFlagCache::<Arc<str>>::new());
    let chain = CacheChain::new(vec![cache.clone() as Arc<dyn FlagCache<Arc<str>>>]);
    let company: BTreeMap<String, String> = [
        ("id".to_owned(), "acme".to_owned()),
        ("slug".to_owned(), "acme-inc".to_owned()),
    ]
    .into();
    let user: HashMap<String, String> = [("email".to_owned(), "ann@example.com".to_owned())].into();
    let key = FlagCacheKey::new("new-editor", &company, &user);
    chain.insert(&key, Arc::from("detailed result"));

    let (hits, allocations) = count_allocations(|| {
        (0..1_000)
            .filter(|_| {
                let key = FlagCacheKey::new("new-editor", &company, &user);
                chain.get(&key).is_some() && cache.lookup(&key).is_some()
            })
            .count()
    });
    assert_eq!(hits, 1_000);
    assert_eq!(allocations, 0);

    // Misses do not allocate either.
    let other: BTreeMap<String, String> = [("id".to_owned(), "other".to_owned())].into();
    let (miss, allocations) =
        count_allocations(|| cache.lookup(&FlagCacheKey::new("new-editor", &other, &user)));
    assert!(miss.is_none());
    assert_eq!(allocations, 0);
}
