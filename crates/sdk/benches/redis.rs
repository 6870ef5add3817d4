//! Replicator mode and the Redis backend, measured against direct-mode
//! local checks and bare Redis round trips, in one run.
//!
//! ```sh
//! cargo bench -p flagwire --features redis --bench redis -- --warm-up-time 1 --measurement-time 2
//! ```
//!
//! Needs `redis-server` on the PATH (a child process on a free loopback
//! port, killed at the end). The emulator seeds a flag with a company rule
//! and 100 companies, plays the replicator (writes them into Redis), and
//! serves the DataStream socket for the direct-mode client.
//!
//! Before criterion runs, the binary prints (`redis/...` lines):
//!
//! * warm: a replicator-mode check answered by the in-process layer next to
//!   a direct-mode local check (target ≤ 1.5 ×), medians of alternating
//!   batches;
//! * cold: a replicator-mode check whose company is not in the in-process
//!   layer (one Redis round trip on loopback) next to a bare `GET` through
//!   the same connection, and through a `redis` connection manager on the
//!   caller's runtime, p50/p99 (target ≤ 1.2 × the bare `GET`);
//! * scale: 8 replicator-mode clients in one process, one thread each,
//!   1,000,000 checks in all over 100 companies: checks/s, and Redis
//!   commands/s from `INFO stats`; then 100,000 checks with an in-process
//!   layer of half the companies, so that every check reads Redis.

#[path = "../tests/redis_support/mod.rs"]
mod redis_support;

use flagwire_alloc_counter::bench::{paired_medians, percentile, ready};
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group};
use flagwire::Context;
use flagwire::datastream::DataStreamOptions;
use flagwire::redis::{Redis, RedisOptions, ReplicatorOptions};
use flagwire::schematic::{CheckSource, Client};
use flagwire_mock::MockServer;
use redis_support::RedisServer;
use serde_json::json;

const FLAG: &str = "beta";
const COMPANIES: usize = 100;
const WAIT: Duration = Duration::from_secs(20);

struct Setup {
    redis: RedisServer,
    server: MockServer,
    keys: Vec<[(&'static str, String); 1]>,
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime")
}

fn setup(runtime: &tokio::runtime::Runtime) -> Option<Setup> {
    let redis = RedisServer::start()?;
    let server = runtime.block_on(async {
        let server = MockServer::builder()
            .cache_version("bench")
            .start()
            .await
            .unwrap();
        let mut first = None;
        for i in 0..COMPANIES {
            let c = server
                .upsert_company(json!({"keys": {"domain": format!("acme-{i}.example")},
                    "traits": {"tier": "pro", "seats": i}}))
                .unwrap();
            first.get_or_insert_with(|| c["id"].as_str().unwrap().to_owned());
        }
        server
            .create_flag(json!({"key": FLAG, "name": FLAG, "description": "",
                "flag_type": "boolean", "default_value": false}))
            .unwrap();
        server
            .set_flag_rules(
                FLAG,
                json!([{"name": "first", "priority": 1, "value": true,
                "conditions": [{"condition_type": "company", "operator": "eq",
                    "resource_ids": [first.unwrap()]}], "condition_groups": []}]),
            )
            .unwrap();
        server
            .start_redis_replicator(&redis.url(), "schematic")
            .await
            .unwrap();
        assert!(server.redis_replicator_synced(WAIT).await);
        server
    });
    let keys = (0..COMPANIES)
        .map(|i| [("domain", format!("acme-{i}.example"))])
        .collect();
    Some(Setup {
        redis,
        server,
        keys,
    })
}

fn replicator_client(setup: &Setup, local_entities: usize) -> Client {
    Client::builder(setup.server.api_key())
        .base_url(setup.server.rest_url())
        .capture_url(setup.server.capture_url())
        .replicator(
            ReplicatorOptions::new(RedisOptions::new(setup.redis.url()))
                .health_url(format!("{}/ready", setup.server.rest_url()))
                .local_ttl(Duration::from_secs(30))
                .max_local_entities(local_entities)
                .flag_check_events(false),
        )
        .disable_cache()
        .build()
        .expect("replicator client")
}

fn direct_client(setup: &Setup, runtime: &tokio::runtime::Runtime) -> Client {
    let client = Client::builder(setup.server.api_key())
        .base_url(setup.server.rest_url())
        .capture_url(setup.server.capture_url())
        .datastream(DataStreamOptions::new().flag_check_events(false))
        .disable_cache()
        .build()
        .expect("direct client");
    assert!(runtime.block_on(client.wait_until_ready(WAIT)));
    client
}

fn report_warm(setup: &Setup, runtime: &tokio::runtime::Runtime, rounds: usize) {
    let replicated = replicator_client(setup, 1_000);
    let direct = direct_client(setup, runtime);
    assert!(runtime.block_on(replicated.wait_until_ready(WAIT)));
    let ctx = Context::company(&setup.keys[0]);
    // Fill the in-process layer, then check it answers locally.
    let first = runtime.block_on(replicated.check_flag_detailed(FLAG, ctx));
    assert_eq!((first.value, first.source), (true, CheckSource::Local));
    let d = runtime.block_on(direct.check_flag_detailed(FLAG, ctx));
    assert_eq!((d.value, d.source), (true, CheckSource::Local));
    let r = || ready(replicated.check_flag(black_box(FLAG), ctx));
    let l = || ready(direct.check_flag(black_box(FLAG), ctx));
    let m = paired_medians(rounds, 2_000, &[&r, &l]);
    println!(
        "redis/warm: replicator-mode check (in-process layer) {:.1} ns, direct-mode local check {:.1} ns, ratio {:.2} (target <= 1.5)",
        m[0],
        m[1],
        m[0] / m[1]
    );
    runtime.block_on(async {
        replicated.shutdown(Duration::from_secs(1)).await;
        direct.shutdown(Duration::from_secs(1)).await;
    });
}

fn report_cold(setup: &Setup, runtime: &tokio::runtime::Runtime, samples: usize) {
    // An in-process layer of one company: alternating between two
    // companies, every check misses it and reads Redis once.
    let client = replicator_client(setup, 1);
    assert!(runtime.block_on(client.wait_until_ready(WAIT)));
    let handle = Redis::open(RedisOptions::new(setup.redis.url())).unwrap();
    let key = "schematic:company:bench:domain:acme-1.example";
    let manager = runtime.block_on(async {
        redis::aio::ConnectionManager::new(redis::Client::open(setup.redis.url()).unwrap())
            .await
            .unwrap()
    });
    let store = handle.entity_store().with_version("bench");
    let (mut cold, mut get, mut bare, mut find, mut two) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    runtime.block_on(async {
        let before = client.replicator_status().unwrap().redis_reads;
        let mut manager = manager.clone();
        for i in 0..samples {
            let ctx = Context::company(&setup.keys[i % 2]);
            let t = Instant::now();
            black_box(client.check_flag(FLAG, ctx).await);
            cold.push(t.elapsed().as_nanos() as f64);
            let t = Instant::now();
            black_box(handle.get_raw(key).await.unwrap());
            get.push(t.elapsed().as_nanos() as f64);
            let t = Instant::now();
            let v: Option<String> = redis::cmd("GET")
                .arg(key)
                .query_async(&mut manager)
                .await
                .unwrap();
            black_box(v);
            bare.push(t.elapsed().as_nanos() as f64);
            let t = Instant::now();
            black_box(store.find_company(&setup.keys[i % 2]).await.unwrap());
            find.push(t.elapsed().as_nanos() as f64);
            // The same read without a script: the lookup, then the company.
            let t = Instant::now();
            let id = handle.get_raw(key).await.unwrap().unwrap();
            black_box(
                handle
                    .get_raw(&format!("schematic:company:bench:{id}"))
                    .await
                    .unwrap(),
            );
            two.push(t.elapsed().as_nanos() as f64);
        }
        let reads = client.replicator_status().unwrap().redis_reads - before;
        assert!(
            reads as usize >= samples * 9 / 10,
            "checks were not cold: {reads}"
        );
    });
    for s in [&mut cold, &mut get, &mut bare, &mut find, &mut two] {
        s.sort_by(f64::total_cmp);
    }
    let us = |s: &[f64], p: f64| percentile(s, p) / 1_000.0;
    println!(
        "redis/cold: replicator-mode check, company read from Redis: p50 {:.1} µs, p99 {:.1} µs",
        us(&cold, 0.5),
        us(&cold, 0.99)
    );
    println!(
        "redis/cold: bare GET through the same connection: p50 {:.1} µs, p99 {:.1} µs; ratio p50 {:.2}, p99 {:.2} (target <= 1.2)",
        us(&get, 0.5),
        us(&get, 0.99),
        percentile(&cold, 0.5) / percentile(&get, 0.5),
        percentile(&cold, 0.99) / percentile(&get, 0.99)
    );
    println!(
        "redis/cold: bare GET, redis ConnectionManager on the caller's runtime: p50 {:.1} µs, p99 {:.1} µs",
        us(&bare, 0.5),
        us(&bare, 0.99)
    );
    println!(
        "redis/cold: its Redis read alone (lookup + company in one script, parsed): p50 {:.1} µs, p99 {:.1} µs",
        us(&find, 0.5),
        us(&find, 0.99)
    );
    println!(
        "redis/cold: the same read as two plain GETs (lookup, then company): p50 {:.1} µs, p99 {:.1} µs",
        us(&two, 0.5),
        us(&two, 0.99)
    );
    runtime.block_on(client.shutdown(Duration::from_secs(1)));
}

/// 8 clients, `total` checks over the 100 companies; with an in-process
/// layer of `layer` companies (100: all warm; 50: every check misses it,
/// as the companies are visited in a cycle).
fn report_scale(setup: &Setup, total: usize, layer: usize) {
    const CLIENTS: usize = 8;
    let clients: Vec<Client> = (0..CLIENTS)
        .map(|_| replicator_client(setup, layer))
        .collect();
    let rt = runtime();
    for c in &clients {
        assert!(rt.block_on(c.wait_until_ready(WAIT)));
    }
    let commands_before = setup.redis.info_stat("total_commands_processed");
    let started = Instant::now();
    let per_client = total / CLIENTS;
    let trues: usize = std::thread::scope(|s| {
        let handles: Vec<_> = clients
            .iter()
            .map(|client| {
                s.spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .unwrap();
                    rt.block_on(async {
                        let mut trues = 0;
                        for i in 0..per_client {
                            let ctx = Context::company(&setup.keys[i % COMPANIES]);
                            trues += usize::from(client.check_flag(FLAG, ctx).await);
                        }
                        trues
                    })
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    let elapsed = started.elapsed();
    let commands_after = setup.redis.info_stat("total_commands_processed");
    let commands = commands_after - commands_before;
    let checks = per_client * CLIENTS;
    assert_eq!(trues, checks / COMPANIES, "one company in 100 matches");
    let reads: u64 = clients
        .iter()
        .map(|c| c.replicator_status().unwrap().redis_reads)
        .sum();
    println!(
        "redis/scale: {CLIENTS} clients, in-process layer of {layer} companies, {checks} checks over {COMPANIES} companies in {:.2} s: {:.0} checks/s, {reads} Redis round trips by checks; Redis {commands} commands (the 2 GETs inside each read script count), {:.0} commands/s",
        elapsed.as_secs_f64(),
        checks as f64 / elapsed.as_secs_f64(),
        commands as f64 / elapsed.as_secs_f64()
    );
    rt.block_on(async {
        for c in &clients {
            c.shutdown(Duration::from_secs(1)).await;
        }
    });
}

fn bench_redis(c: &mut Criterion) {
    let runtime = runtime();
    let Some(setup) = setup(&runtime) else { return };
    let replicated = replicator_client(&setup, 1_000);
    let direct = direct_client(&setup, &runtime);
    assert!(runtime.block_on(replicated.wait_until_ready(WAIT)));
    let ctx = Context::company(&setup.keys[0]);
    // Both warm: the company in memory.
    runtime.block_on(replicated.check_flag(FLAG, ctx));
    runtime.block_on(direct.check_flag(FLAG, ctx));
    let mut group = c.benchmark_group("redis");
    group.bench_function("replicator_check_warm", |b| {
        b.iter(|| ready(replicated.check_flag(black_box(FLAG), ctx)))
    });
    group.bench_function("direct_local_check", |b| {
        b.iter(|| ready(direct.check_flag(black_box(FLAG), ctx)))
    });
    let cold = replicator_client(&setup, 1);
    assert!(runtime.block_on(cold.wait_until_ready(WAIT)));
    let mut i = 0usize;
    group.bench_function("replicator_check_cold", |b| {
        b.iter(|| {
            i += 1;
            runtime.block_on(cold.check_flag(FLAG, Context::company(&setup.keys[i % 2])))
        })
    });
    let handle = Redis::open(RedisOptions::new(setup.redis.url())).unwrap();
    group.bench_function("bare_get", |b| {
        b.iter(|| runtime.block_on(handle.get_raw("schematic:company:bench:domain:acme-1.example")))
    });
    group.finish();
    runtime.block_on(async {
        replicated.shutdown(Duration::from_secs(1)).await;
        direct.shutdown(Duration::from_secs(1)).await;
        cold.shutdown(Duration::from_secs(1)).await;
    });
}

criterion_group!(benches, bench_redis);

fn main() {
    let test_mode = std::env::args().any(|a| a == "--test");
    if std::env::args().any(|a| a == "--profile-time") {
        benches();
        return;
    }
    let runtime = runtime();
    let Some(setup) = setup(&runtime) else { return };
    let (rounds, samples, total, cold_total) = if test_mode {
        (4, 200, 80_000, 800)
    } else {
        (200, 20_000, 1_000_000, 100_000)
    };
    report_warm(&setup, &runtime, rounds);
    report_cold(&setup, &runtime, samples);
    report_scale(&setup, total, COMPANIES);
    report_scale(&setup, cold_total, COMPANIES / 2);
    runtime.block_on(async {
        setup.server.stop_redis_replicator();
    });
    drop(setup);
    drop(runtime);
    benches();
    Criterion::default().configure_from_args().final_summary();
}
