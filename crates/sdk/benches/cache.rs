//! The flag cache: hit latency on one thread, throughput on one and two
//! threads, capacity, and allocations per hit.
//!
//! ```sh
//! cargo bench -p flagwire --bench cache -- --warm-up-time 1 --measurement-time 3
//! ```
//!
//! Before criterion runs, the binary prints (and checks) three summaries:
//!
//! * `allocations per hit: …` for each read path (must be 0);
//! * `capacity N: …`: N distinct contexts stored at capacity N and read
//!   twice in order; the second pass must miss nothing;
//! * `threads …`: checks per second of one thread and of two threads, on
//!   the same context and on contexts of their own, with the 2-thread /
//!   1-thread ratio (target ≥ 1.8). The two thread counts alternate in short
//!   batches and the best batch of each is kept, which is far steadier on a
//!   shared machine than two criterion runs taken seconds apart.
//!
//! The criterion groups: `flag_cache/*` (one thread: hits as the client
//! reads them, through `CacheChain::peek_with` for the `bool`, a hit that
//! clones the `Arc`, a miss, and a `HashMap<String, bool>` lookup by a
//! prebuilt string as the yardstick) and `flag_cache_threads/*` (checks per
//! second, one element per check).

use std::collections::{BTreeMap, HashMap};
use std::hint::black_box;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group};
use flagwire::cache::{CacheChain, FlagCacheKey, LocalFlagCache};
use flagwire_alloc_counter::{CountingAllocator, count_allocations};

#[global_allocator]
static ALLOC: CountingAllocator = CountingAllocator::new();

type Keys = BTreeMap<String, String>;

/// What the client caches: a detailed result behind an `Arc`, of which the
/// hot path reads only the `bool` (the other fields are there for a
/// realistic entry size).
#[allow(dead_code)]
struct Check {
    value: bool,
    reason: String,
    rule_id: Option<String>,
}

type Chain = CacheChain<Arc<Check>>;

const FLAG: &str = "new-editor";
/// Contexts each thread cycles through in the "own contexts" runs.
const CONTEXTS_PER_THREAD: usize = 100;

fn keys(pairs: &[(&str, &str)]) -> Keys {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn company(i: usize) -> Keys {
    keys(&[("id", &format!("company-{i}"))])
}

fn user() -> Keys {
    keys(&[("email", "ann@example.com")])
}

/// The client's setup: a default cache (1,000 entries) in a chain, holding
/// 500 company-only and 500 company+user contexts, all of which fit.
fn filled() -> (Chain, Vec<Keys>) {
    let chain = Chain::single(LocalFlagCache::new());
    let companies: Vec<Keys> = (0..500).map(company).collect();
    let user = user();
    for (i, c) in companies.iter().enumerate() {
        let check = |value| {
            Arc::new(Check {
                value,
                reason: "rule matched".to_owned(),
                rule_id: Some(format!("rule-{i}")),
            })
        };
        chain.insert(&FlagCacheKey::new(FLAG, c, &()), check(true));
        chain.insert(&FlagCacheKey::new(FLAG, c, &user), check(i % 2 == 0));
    }
    (chain, companies)
}

/// How a check reads the cache: the value's `bool` in place, or a clone of
/// the `Arc`.
type Read = fn(&Chain, &FlagCacheKey<'_>) -> bool;

fn peek_value(chain: &Chain, key: &FlagCacheKey<'_>) -> bool {
    chain.peek_with(key, |c| c.value).unwrap_or(false)
}

fn clone_value(chain: &Chain, key: &FlagCacheKey<'_>) -> bool {
    chain.get(key).is_some_and(|c| c.value)
}

/// `checks` hits on each of `threads` threads, each cycling through its own
/// entry of `contexts`, started together; the time of the slowest.
fn run_threads(
    chain: &Chain,
    read: Read,
    contexts: &[Vec<Keys>],
    threads: usize,
    checks: u64,
) -> Duration {
    let user = user();
    let barrier = Barrier::new(threads);
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let (barrier, user, mine) = (&barrier, &user, &contexts[t]);
                s.spawn(move || {
                    barrier.wait();
                    let start = Instant::now();
                    let (mut at, mut on) = (0, 0u64);
                    for _ in 0..checks {
                        let key = FlagCacheKey::new(black_box(FLAG), &mine[at], user);
                        on += u64::from(read(chain, &key));
                        at += 1;
                        if at == mine.len() {
                            at = 0;
                        }
                    }
                    let elapsed = start.elapsed();
                    black_box(on);
                    elapsed
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("bench thread"))
            .max()
            .unwrap_or_default()
    })
}

/// Per thread: the one shared context ("same") or contexts of its own.
fn thread_contexts(companies: &[Keys], same: bool) -> Vec<Vec<Keys>> {
    (0..2)
        .map(|t| {
            if same {
                vec![companies[0].clone()]
            } else {
                companies[t * CONTEXTS_PER_THREAD..(t + 1) * CONTEXTS_PER_THREAD].to_vec()
            }
        })
        .collect()
}

/// Alternates short batches on one thread and on two and keeps the best
/// rate of each.
///
/// The last line reads through `get`, which clones the `Arc`: both threads
/// then write its reference count, which shows what `peek_with` avoids.
fn report_thread_scaling(chain: &Chain, companies: &[Keys], rounds: u32, checks: u64) {
    let target = " (target >= 1.80)";
    let cases: [(&str, bool, Read, &str); 3] = [
        ("same_context", true, peek_value, target),
        ("own_contexts", false, peek_value, target),
        ("same_context_arc_clone", true, clone_value, ""),
    ];
    for (label, same, read, target) in cases {
        let contexts = thread_contexts(companies, same);
        let (mut one, mut two) = (0f64, 0f64);
        for _ in 0..rounds {
            let t1 = run_threads(chain, read, &contexts, 1, checks).as_secs_f64();
            one = one.max(checks as f64 / t1);
            let t2 = run_threads(chain, read, &contexts, 2, checks).as_secs_f64();
            two = two.max(2.0 * checks as f64 / t2);
        }
        println!(
            "threads {label:<22} 1 thread {:>7.2} M checks/s  2 threads {:>7.2} M checks/s  ratio {:.2}{target}",
            one / 1e6,
            two / 1e6,
            two / one
        );
    }
}

/// N distinct contexts stored at capacity N, read twice in order: the
/// misses of each pass. The second must be 0.
fn report_capacity() {
    for n in [1_000, 10_000] {
        let cache: LocalFlagCache<bool> = LocalFlagCache::builder().capacity(n).build();
        let companies: Vec<Keys> = (0..n).map(company).collect();
        let user = user();
        for c in &companies {
            cache.store(&FlagCacheKey::new(FLAG, c, &user), true);
        }
        let pass = || {
            let before = cache.stats().misses;
            for c in &companies {
                black_box(cache.peek_with(&FlagCacheKey::new(FLAG, c, &user), |v| *v));
            }
            cache.stats().misses - before
        };
        let (first, second) = (pass(), pass());
        println!(
            "capacity {n}: {n} contexts stored, read twice in order: {first} then {second} misses, {} held",
            cache.len()
        );
        assert_eq!(second, 0, "a cache of capacity {n} must hold {n} contexts");
    }
}

/// Allocations per hit on each read path, over 10,000 hits; the bench
/// refuses to run if there is any.
fn report_allocations(chain: &Chain, companies: &[Keys]) {
    let user = user();
    type Hit<'a> = &'a dyn Fn(&Keys) -> bool;
    let paths: [(&str, Hit<'_>); 4] = [
        ("peek_with company", &|c| {
            chain.peek_with(&FlagCacheKey::new(FLAG, c, &()), |v| v.value) == Some(true)
        }),
        ("peek_with company+user", &|c| {
            chain
                .peek_with(&FlagCacheKey::new(FLAG, c, &user), |v| v.value)
                .is_some()
        }),
        ("get (Arc clone) company+user", &|c| {
            chain.get(&FlagCacheKey::new(FLAG, c, &user)).is_some()
        }),
        ("peek_with array keys", &|_| {
            chain
                .peek_with(&FlagCacheKey::new(FLAG, &[("id", "company-7")], &()), |v| {
                    v.value
                })
                .is_some()
        }),
    ];
    for (name, hit) in paths {
        let (hits, allocations) = count_allocations(|| {
            (0..10_000)
                .filter(|i| hit(&companies[i % companies.len()]))
                .count()
        });
        assert_eq!(hits, 10_000, "{name}: every read must hit");
        println!(
            "allocations per hit: {name:<30} {}",
            allocations as f64 / 10_000.0
        );
        assert_eq!(allocations, 0, "{name}: a cache hit must not allocate");
    }
}

fn bench_cache(c: &mut Criterion) {
    let (chain, companies) = filled();
    let user = user();
    let company = &companies[250];

    let mut group = c.benchmark_group("flag_cache");
    group.bench_function("hit_company", |b| {
        b.iter(|| {
            let key = FlagCacheKey::new(black_box(FLAG), black_box(company), &());
            black_box(chain.peek_with(&key, |c| c.value))
        });
    });
    group.bench_function("hit_company_user", |b| {
        b.iter(|| {
            let key = FlagCacheKey::new(black_box(FLAG), black_box(company), &user);
            black_box(chain.peek_with(&key, |c| c.value))
        });
    });
    group.bench_function("hit_company_user_arc_clone", |b| {
        b.iter(|| {
            let key = FlagCacheKey::new(black_box(FLAG), black_box(company), &user);
            black_box(chain.get(&key))
        });
    });
    let other = keys(&[("id", "nobody")]);
    group.bench_function("miss", |b| {
        b.iter(|| {
            let key = FlagCacheKey::new(black_box(FLAG), black_box(&other), &user);
            black_box(chain.peek_with(&key, |c| c.value))
        });
    });

    // Yardstick: a std HashMap keyed by a prebuilt canonical string.
    let mut map: HashMap<String, bool> = HashMap::new();
    for (i, company) in companies.iter().enumerate() {
        map.insert(
            FlagCacheKey::new(FLAG, company, &user).canonical(),
            i % 2 == 0,
        );
    }
    let probe = FlagCacheKey::new(FLAG, company, &user).canonical();
    group.bench_function("hashmap_get", |b| {
        b.iter(|| black_box(map.get(black_box(probe.as_str())).copied()));
    });
    group.finish();

    let mut group = c.benchmark_group("flag_cache_threads");
    for (label, same) in [("same_context", true), ("own_contexts", false)] {
        let contexts = thread_contexts(&companies, same);
        for (threads, name) in [(1, "1_thread"), (2, "2_threads")] {
            group.throughput(Throughput::Elements(threads as u64));
            group.bench_function(format!("{label}/{name}"), |b| {
                b.iter_custom(|iters| run_threads(&chain, peek_value, &contexts, threads, iters));
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench_cache);

fn main() {
    // `--test` (what `cargo test --benches` and CI pass) runs everything
    // once, quickly.
    let test_mode = std::env::args().any(|a| a == "--test");
    let (chain, companies) = filled();
    report_allocations(&chain, &companies);
    report_capacity();
    let (rounds, checks) = if test_mode {
        (2, 10_000)
    } else {
        (30, 200_000)
    };
    report_thread_scaling(&chain, &companies, rounds, checks);
    drop(chain);
    benches();
    Criterion::default().configure_from_args().final_summary();
}
