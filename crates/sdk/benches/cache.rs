//! Flag-cache hit latency versus a plain `HashMap` lookup, plus a check that
//! a hit performs no heap allocation.
//!
//! `cargo bench -p flagwire --bench cache -- --warm-up-time 1 --measurement-time 3`

use std::collections::{BTreeMap, HashMap};
use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group};
use flagwire::cache::{CacheChain, FlagCache, FlagCacheKey, LruFlagCache};
use flagwire_alloc_counter::{CountingAllocator, count_allocations};

#[global_allocator]
static ALLOC: CountingAllocator = CountingAllocator::new();

fn keys(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// A default-configured cache (1,000 entries in 8 shards) holding 500
/// contexts, so that none is evicted by an unevenly filled shard.
fn filled() -> (LruFlagCache<bool>, Vec<BTreeMap<String, String>>) {
    let cache = LruFlagCache::<bool>::new();
    let mut companies: Vec<_> = (0..500)
        .map(|i| keys(&[("id", &format!("company-{i}"))]))
        .collect();
    let user = keys(&[("email", "ann@example.com")]);
    for (i, company) in companies.iter().enumerate() {
        cache.store(&FlagCacheKey::new("new-editor", company, &user), i % 2 == 0);
    }
    // Keep only contexts that are present, to probe hits only.
    companies.retain(|c| {
        cache
            .lookup(&FlagCacheKey::new("new-editor", c, &user))
            .is_some()
    });
    assert!(companies.len() > 400, "{} of 500 cached", companies.len());
    (cache, companies)
}

fn bench_cache(c: &mut Criterion) {
    let (cache, companies) = filled();
    let user = keys(&[("email", "ann@example.com")]);
    let company = &companies[250];

    let mut group = c.benchmark_group("flag_cache");
    group.bench_function("lru_hit", |b| {
        b.iter(|| {
            let key = FlagCacheKey::new(black_box("new-editor"), black_box(company), &user);
            black_box(cache.lookup(&key))
        });
    });

    let chain = CacheChain::new(vec![
        Arc::new(LruFlagCache::<bool>::new()) as Arc<dyn FlagCache<bool>>
    ]);
    chain.insert(&FlagCacheKey::new("new-editor", company, &user), true);
    group.bench_function("chain_hit", |b| {
        b.iter(|| {
            let key = FlagCacheKey::new(black_box("new-editor"), black_box(company), &user);
            black_box(chain.get(&key))
        });
    });

    group.bench_function("lru_miss", |b| {
        let other = keys(&[("id", "nobody")]);
        b.iter(|| {
            let key = FlagCacheKey::new(black_box("new-editor"), black_box(&other), &user);
            black_box(cache.lookup(&key))
        });
    });

    // Baseline: a std HashMap keyed by a prebuilt canonical string.
    let mut map: HashMap<String, bool> = HashMap::new();
    for (i, company) in companies.iter().enumerate() {
        map.insert(
            FlagCacheKey::new("new-editor", company, &user).canonical(),
            i % 2 == 0,
        );
    }
    let probe = FlagCacheKey::new("new-editor", company, &user).canonical();
    group.bench_function("hashmap_get", |b| {
        b.iter(|| black_box(map.get(black_box(probe.as_str())).copied()));
    });
    group.finish();
}

/// Counts allocations of 10,000 cache hits; the benchmark refuses to run if
/// there is any.
fn check_no_allocations() {
    let (cache, companies) = filled();
    let user = keys(&[("email", "ann@example.com")]);
    let ((), allocations) = count_allocations(|| {
        for i in 0..10_000 {
            let key = FlagCacheKey::new("new-editor", &companies[i % companies.len()], &user);
            assert!(cache.lookup(&key).is_some());
        }
    });
    println!("flag_cache/lru_hit allocations over 10000 hits: {allocations}");
    assert_eq!(allocations, 0, "a cache hit must not allocate");
}

criterion_group!(benches, bench_cache);

fn main() {
    check_no_allocations();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
