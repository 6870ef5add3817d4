//! Local evaluation over DataStream, measured against its parts and against
//! the other ways a check can be answered, in one run.
//!
//! ```sh
//! cargo bench -p flagwire --bench datastream -- --warm-up-time 1 --measurement-time 3
//! ```
//!
//! The flag is the rules engine's own benchmark fixture: 10 rules × 3
//! conditions, every condition evaluated, against a company with 20 traits
//! and 5 metrics and a user (`crates/core/tests/rules_common`). The client
//! is connected to the emulator over a real loopback WebSocket; the fixture
//! frames are pushed to it through the emulator's socket.
//!
//! Before criterion runs, the binary prints one summary block
//! (`datastream/...` lines):
//!
//! * the median time of a local check through the async client, through the
//!   blocking client, of its parts alone (the engine's evaluation of the same
//!   flag plus the three hash-map lookups), and the ratios (targets: local ≤
//!   1.2 × parts, blocking ≤ 1.5 × async), with the allocations per check
//!   (target 0); the same check with its `flag_check` event queued;
//! * checks per second on one and two threads, on one shared context and on
//!   contexts of their own (target ≥ 1.8 ×);
//! * the same local check next to a result-cache hit and an API check (cache
//!   miss) against the emulator;
//! * propagation: a flag change made through the emulator's REST API until a
//!   check sees it (p50, p99; target p99 ≤ 10 ms);
//! * cold start: client built until ready with 1,000 flags (target ≤ 100 ms);
//! * memory: bytes held per cached company (10 traits, 3 metrics, 5
//!   entitlements) and their ratio to the company's JSON (target ≤ 2 ×).
//!
//! Medians come from alternating batches (each side keeps its best half of
//! the batches), which is steadier on a shared 2-core machine than two
//! criterion runs taken seconds apart.

#[path = "../../core/tests/rules_common/mod.rs"]
mod rules_common;

use flagwire_alloc_counter::bench::{paired_medians, ready};
use std::collections::{BTreeMap, HashMap};
use std::hint::black_box;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group};
use flagwire::Context;
use flagwire::datastream::DataStreamOptions;
use flagwire::datastream::internals::StoreForBenchmarks;
use flagwire::schematic::{Client, blocking};
use flagwire_alloc_counter::{LiveBytesAllocator, count_allocations, live_bytes};
use flagwire_core::rules::{
    CheckOptions, Company, CompiledFlag, Flag, PreparedCompany, PreparedUser, User,
};
use flagwire_mock::MockServer;
use serde_json::{Value, json};
use time::OffsetDateTime;

#[global_allocator]
static ALLOC: LiveBytesAllocator = LiveBytesAllocator::new();

const FLAG: &str = "advanced-reports";
const WAIT: Duration = Duration::from_secs(20);
/// Companies each thread cycles through in the "own contexts" runs.
const OWN_CONTEXTS: usize = 50;

type Keys = BTreeMap<String, String>;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime")
}

fn company(i: usize) -> Company {
    let mut company = rules_common::large_company();
    company.id = format!("company_{i:05}");
    company.keys = Keys::from([("domain".to_owned(), format!("acme-{i}.example"))]);
    company
}

fn user() -> User {
    let mut user = rules_common::large_user();
    user.keys = Keys::from([("email".to_owned(), "ann@acme.example".to_owned())]);
    user
}

fn frame(entity_type: &str, entity_id: Option<&str>, data: Value) -> String {
    let mut frame = json!({"entity_type": entity_type, "message_type": "full", "data": data});
    if let Some(id) = entity_id {
        frame["entity_id"] = json!(id);
    }
    frame.to_string()
}

fn flags_frame(flags: &[Flag]) -> String {
    frame("rulesengine.Flags", None, json!(flags))
}

fn company_frame(company: &Company) -> String {
    frame("rulesengine.Company", Some(&company.id), json!(company))
}

fn user_frame(user: &User) -> String {
    frame("rulesengine.User", Some(&user.id), json!(user))
}

struct Setup {
    server: MockServer,
    client: Client,
    with_events: Client,
    companies: Vec<Keys>,
    user: Keys,
}

/// The emulator, a client fed the fixture over its socket, and a second
/// one that also queues `flag_check` events.
fn setup(runtime: &tokio::runtime::Runtime) -> Setup {
    let server = runtime.block_on(async {
        MockServer::builder()
            .max_events(10_000)
            .start()
            .await
            .expect("emulator")
    });
    let build = |events: bool| {
        Client::builder(server.api_key())
            .base_url(server.rest_url())
            .capture_url(server.capture_url())
            .datastream(DataStreamOptions::new().flag_check_events(events))
            .events(|b| b.capacity(1 << 20))
            .build()
            .expect("client")
    };
    let (client, with_events) = (build(false), build(true));
    runtime.block_on(async {
        assert!(client.wait_until_ready(WAIT).await);
        assert!(with_events.wait_until_ready(WAIT).await);
    });
    let companies: Vec<Company> = (0..2 * OWN_CONTEXTS).map(company).collect();
    server.datastream_send_raw(flags_frame(&[
        rules_common::large_flag(),
        rules_common::small_flag(),
    ]));
    for c in &companies {
        server.datastream_send_raw(company_frame(c));
    }
    server.datastream_send_raw(user_frame(&user()));
    let deadline = Instant::now() + WAIT;
    for c in [&client, &with_events] {
        while Instant::now() < deadline {
            let s = c.datastream_status().expect("datastream on");
            if (s.flags, s.companies, s.users) == (2, companies.len(), 1) {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    Setup {
        server,
        client,
        with_events,
        companies: companies.into_iter().map(|c| c.keys).collect(),
        user: user().keys,
    }
}

/// The parts of a local check alone: three hash-map lookups by prebuilt
/// keys and the engine's evaluation of the same flag at the current time.
struct Parts {
    flags: HashMap<String, CompiledFlag>,
    companies: HashMap<String, PreparedCompany>,
    users: HashMap<String, PreparedUser>,
}

impl Parts {
    fn new() -> Self {
        let flag = CompiledFlag::new(rules_common::large_flag());
        Parts {
            flags: HashMap::from([(FLAG.to_owned(), flag)]),
            companies: (0..2 * OWN_CONTEXTS)
                .map(|i| {
                    (
                        format!("domain\u{0}acme-{i}.example"),
                        PreparedCompany::new(company(i)),
                    )
                })
                .collect(),
            users: HashMap::from([(
                "email\u{0}ann@acme.example".to_owned(),
                PreparedUser::new(user()),
            )]),
        }
    }

    #[inline]
    fn check(&self, flag: &str, company: &str, user: &str) -> bool {
        let flag = self.flags.get(flag).expect("flag");
        let company = self.companies.get(company);
        let user = self.users.get(user);
        flag.evaluate(
            company,
            user,
            OffsetDateTime::now_utc(),
            &CheckOptions::new(),
        )
        .value
    }
}

fn report_latency(setup: &Setup, rounds: usize) {
    let parts = Parts::new();
    let blocking = blocking::Client::from_async(setup.client.clone()).expect("blocking client");
    let company = &setup.companies[0];
    let user = &setup.user;
    let ctx = Context::company(company).with_user(user);
    let company_key = format!("domain\u{0}{}", company["domain"]);
    let user_key = format!("email\u{0}{}", user["email"]);

    let local = || ready(setup.client.check_flag(black_box(FLAG), ctx));
    let local_blocking = || blocking.check_flag(black_box(FLAG), ctx).expect("check");
    let alone = || parts.check(black_box(FLAG), &company_key, &user_key);
    let with_event = || ready(setup.with_events.check_flag(black_box(FLAG), ctx));
    assert!(local() && local_blocking() && alone() && with_event());

    let (_, allocs_async) = count_allocations(|| (0..1000).all(|_| local()));
    let (_, allocs_blocking) = count_allocations(|| (0..1000).all(|_| local_blocking()));
    let (_, allocs_event) = count_allocations(|| (0..1000).all(|_| with_event()));

    let m = paired_medians(rounds, 2_000, &[&local, &local_blocking, &alone]);
    let (async_ns, blocking_ns, parts_ns) = (m[0], m[1], m[2]);
    let event_ns = paired_medians(rounds / 4 + 1, 2_000, &[&with_event])[0];
    println!(
        "datastream/local_check (10 rules x 3 conditions, company + user in memory): async {async_ns:.1} ns, \
         blocking {blocking_ns:.1} ns, parts alone {parts_ns:.1} ns"
    );
    println!(
        "datastream/local_check ratios: async / parts {:.2} (target <= 1.20), blocking / async {:.2} (target <= 1.50)",
        async_ns / parts_ns,
        blocking_ns / async_ns
    );
    println!(
        "datastream/local_check allocations per check: async {:.3}, blocking {:.3} (target 0); \
         with the flag_check event queued: {event_ns:.1} ns, {:.2} allocations",
        allocs_async as f64 / 1000.0,
        allocs_blocking as f64 / 1000.0,
        allocs_event as f64 / 1000.0,
    );
}

/// `checks` local checks on each of `threads` threads, started together;
/// the time of the slowest.
fn run_threads(
    client: &Client,
    contexts: &[Vec<Keys>],
    user: &Keys,
    threads: usize,
    checks: u64,
) -> Duration {
    let barrier = Barrier::new(threads);
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let (barrier, mine) = (&barrier, &contexts[t]);
                s.spawn(move || {
                    barrier.wait();
                    let start = Instant::now();
                    let (mut at, mut on) = (0, 0u64);
                    for _ in 0..checks {
                        let ctx = Context::company(&mine[at]).with_user(user);
                        on += u64::from(ready(client.check_flag(black_box(FLAG), ctx)));
                        at = (at + 1) % mine.len();
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

fn report_threads(setup: &Setup, rounds: u32, checks: u64) {
    for (label, same) in [("same_context", true), ("own_contexts", false)] {
        let contexts: Vec<Vec<Keys>> = (0..2)
            .map(|t| {
                if same {
                    vec![setup.companies[0].clone()]
                } else {
                    setup.companies[t * OWN_CONTEXTS..(t + 1) * OWN_CONTEXTS].to_vec()
                }
            })
            .collect();
        let (mut one, mut two) = (0f64, 0f64);
        for _ in 0..rounds {
            let t1 = run_threads(&setup.client, &contexts, &setup.user, 1, checks);
            one = one.max(checks as f64 / t1.as_secs_f64());
            let t2 = run_threads(&setup.client, &contexts, &setup.user, 2, checks);
            two = two.max(2.0 * checks as f64 / t2.as_secs_f64());
        }
        println!(
            "datastream/threads {label:<13} 1 thread {:>6.2} M checks/s  2 threads {:>6.2} M checks/s  ratio {:.2} (target >= 1.80)",
            one / 1e6,
            two / 1e6,
            two / one
        );
    }
}

/// The local check next to a result-cache hit and an API check against the
/// emulator (no cache, no DataStream), same flag shape.
fn report_side_by_side(setup: &Setup, runtime: &tokio::runtime::Runtime, rounds: usize) {
    let server = &setup.server;
    server
        .create_flag(
            json!({"key": "api-flag", "name": "api-flag", "description": "",
            "flag_type": "boolean", "default_value": true}),
        )
        .expect("flag");
    server
        .upsert_company(json!({"keys": {"id": "acme"}}))
        .expect("company");
    let base = || {
        Client::builder(server.api_key())
            .base_url(server.rest_url())
            .capture_url(server.capture_url())
    };
    let cached = base().build().expect("client");
    let uncached = base().disable_cache().build().expect("client");
    let acme = Keys::from([("id".to_owned(), "acme".to_owned())]);
    let ctx = Context::company(&setup.companies[0]).with_user(&setup.user);
    let api_ctx = Context::company(&acme);
    assert!(runtime.block_on(cached.check_flag("api-flag", api_ctx)));

    let local = || ready(setup.client.check_flag(black_box(FLAG), ctx));
    let hit = || ready(cached.check_flag(black_box("api-flag"), api_ctx));
    let m = paired_medians(rounds, 2_000, &[&local, &hit]);
    let api = || runtime.block_on(uncached.check_flag(black_box("api-flag"), api_ctx));
    let api_ns = paired_medians(rounds / 4 + 1, 50, &[&api])[0];
    println!(
        "datastream/side_by_side: local check {:.1} ns, result-cache hit {:.1} ns, API check (cache miss, loopback) {:.1} us",
        m[0],
        m[1],
        api_ns / 1000.0
    );
}

/// A rule change made through the emulator's REST API, until the next
/// check sees it.
fn report_propagation(setup: &Setup, changes: usize) {
    let server = &setup.server;
    server
        .create_flag(json!({"key": "toggle", "name": "toggle", "description": "",
            "flag_type": "boolean", "default_value": false}))
        .expect("flag");
    let on = json!([{"name": "on", "priority": 0, "value": true, "rule_type": "global_override",
        "conditions": [], "condition_groups": []}]);
    let client = &setup.client;
    let deadline = Instant::now() + WAIT;
    while client.datastream_status().unwrap().flags < 4 || ready(client.check_flag("toggle", ())) {
        assert!(Instant::now() < deadline, "the toggle flag never arrived");
        std::thread::sleep(Duration::from_millis(1));
    }
    let mut latencies = Vec::with_capacity(changes);
    for i in 0..changes {
        let want = i % 2 == 0;
        let rules = if want { on.clone() } else { json!([]) };
        let start = Instant::now();
        server.set_flag_rules("toggle", rules).expect("rules");
        while ready(client.check_flag("toggle", ())) != want {
            assert!(start.elapsed() < WAIT, "a change never arrived");
            std::hint::spin_loop();
        }
        latencies.push(start.elapsed());
    }
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize];
    println!(
        "datastream/propagation ({changes} flag changes through the emulator's REST API): p50 {:?}, p99 {:?}, max {:?} (target p99 <= 10 ms)",
        at(0.5),
        at(0.99),
        latencies[latencies.len() - 1]
    );
}

/// Client built until ready, with 1,000 flags in the emulator.
fn report_cold_start(runtime: &tokio::runtime::Runtime, runs: usize) {
    let server = runtime.block_on(async { MockServer::start().await.expect("emulator") });
    for i in 0..1_000 {
        let key = format!("flag-{i:04}");
        server
            .create_flag(json!({"key": key, "name": key, "description": "",
                "flag_type": "boolean", "default_value": i % 2 == 0}))
            .expect("flag");
    }
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let start = Instant::now();
        let client = Client::builder(server.api_key())
            .base_url(server.rest_url())
            .capture_url(server.capture_url())
            .datastream(DataStreamOptions::new())
            .build()
            .expect("client");
        assert!(runtime.block_on(client.wait_until_ready(WAIT)));
        times.push(start.elapsed());
        assert_eq!(client.datastream_status().unwrap().flags, 1_000);
        runtime.block_on(client.shutdown(Duration::from_secs(1)));
    }
    times.sort();
    println!(
        "datastream/cold_start (client built -> ready, 1,000 flags, {runs} runs): median {:?}, max {:?} (target <= 100 ms)",
        times[times.len() / 2],
        times[times.len() - 1]
    );
}

/// A typical company: 10 traits, 3 metrics, 5 entitlements.
fn typical_company(i: usize) -> Value {
    let traits: Vec<Value> = (0..10)
        .map(|t| {
            let comparable = ["string", "int", "bool", "date"][t % 4];
            let value = match t % 4 {
                0 => format!("value-{i}-{t}"),
                1 => (i * t).to_string(),
                2 => "true".to_owned(),
                _ => "2024-03-05".to_owned(),
            };
            json!({"trait_definition": {"id": format!("trait_def_{t:02}"), "comparable_type": comparable,
                "entity_type": "company"}, "value": value})
        })
        .collect();
    let metrics: Vec<Value> = ["all_time", "current_month", "current_day"]
        .iter()
        .map(|p| {
            json!({"account_id": "acct_1", "environment_id": "env_1", "company_id": format!("comp_{i:06}"),
                "event_subtype": "api-call", "period": p, "month_reset": "first_of_month", "value": i % 1000,
                "created_at": "2024-03-01T00:00:00Z"})
        })
        .collect();
    let entitlements: Vec<Value> = (0..5)
        .map(|e| {
            json!({"feature_id": format!("feat_{e}"), "feature_key": format!("feature-{e}"),
                "value_type": "numeric", "allocation": 1000, "usage": i % 1000,
                "event_name": "api-call", "metric_period": "current_month", "month_reset": "first_of_month"})
        })
        .collect();
    json!({"id": format!("comp_{i:06}"), "account_id": "acct_1", "environment_id": "env_1",
        "keys": {"id": format!("company-{i}"), "domain": format!("company-{i}.example")},
        "traits": traits, "metrics": metrics, "plan_ids": ["plan_pro"], "plan_version_ids": ["plan_pro_v2"],
        "base_plan_id": "plan_pro", "billing_product_ids": ["prod_seats"], "credit_balances": {"credit_ai": 120.5},
        "entitlements": entitlements, "rules": []})
}

/// Bytes held per cached company, against its JSON.
fn report_memory(companies: usize) {
    let store = StoreForBenchmarks::new(companies);
    let frames: Vec<(String, usize)> = (0..companies)
        .map(|i| {
            let data = typical_company(i);
            let json_len = data.to_string().len();
            let id = data["id"].as_str().unwrap_or_default().to_owned();
            (frame("rulesengine.Company", Some(&id), data), json_len)
        })
        .collect();
    let json_bytes: usize = frames.iter().map(|(_, n)| n).sum();
    if std::env::var_os("FLAGWIRE_MEMORY_BREAKDOWN").is_some() {
        let n = 1000;
        let texts: Vec<String> = (0..n).map(|i| typical_company(i).to_string()).collect();
        let b0 = live_bytes();
        let parsed: Vec<Company> = texts
            .iter()
            .map(|t| serde_json::from_str(t).unwrap())
            .collect();
        let b1 = live_bytes();
        let prepared: Vec<PreparedCompany> = parsed.into_iter().map(PreparedCompany::new).collect();
        let b2 = live_bytes();
        println!(
            "breakdown per company: Company {} bytes, PreparedCompany {} bytes (JSON {})",
            (b1 - b0) / n as u64,
            (b2 - b0) / n as u64,
            texts.iter().map(String::len).sum::<usize>() / n
        );
        let one: Company = serde_json::from_str(&texts[0]).unwrap();
        println!(
            "sizes: Company {} Trait {} Metric {} Entitlement {}",
            std::mem::size_of::<Company>(),
            std::mem::size_of_val(&one.traits[0]),
            std::mem::size_of_val(&one.metrics[0]),
            std::mem::size_of_val(&one.entitlements[0])
        );
        drop(prepared);
    }
    let before = live_bytes();
    for (frame, _) in &frames {
        store.apply(frame).expect("company frame");
    }
    let held = live_bytes().saturating_sub(before);
    assert_eq!(store.sizes().1, companies);
    let per_company = held as f64 / companies as f64;
    let json_per_company = json_bytes as f64 / companies as f64;
    println!(
        "datastream/memory ({companies} companies, 10 traits, 3 metrics, 5 entitlements each): {:.0} bytes per company, \
         JSON {:.0} bytes, ratio {:.2} (target <= 2.00)",
        per_company,
        json_per_company,
        per_company / json_per_company
    );
    let ctx = Context::company(&[("domain", "company-7.example")]);
    black_box(store.check("feature-1", &ctx));
}

fn bench_datastream(c: &mut Criterion) {
    let runtime = runtime();
    let setup = setup(&runtime);
    let parts = Parts::new();
    let blocking = blocking::Client::from_async(setup.client.clone()).expect("blocking client");
    let company = &setup.companies[0];
    let ctx = Context::company(company).with_user(&setup.user);
    let company_key = format!("domain\u{0}{}", company["domain"]);
    let user_key = format!("email\u{0}{}", setup.user["email"]);

    let mut group = c.benchmark_group("datastream");
    group.bench_function("local_check", |b| {
        b.iter(|| ready(setup.client.check_flag(black_box(FLAG), ctx)));
    });
    group.bench_function("local_check_blocking", |b| {
        b.iter(|| blocking.check_flag(black_box(FLAG), ctx));
    });
    group.bench_function("parts_alone", |b| {
        b.iter(|| parts.check(black_box(FLAG), &company_key, &user_key));
    });
    group.bench_function("local_check_with_event", |b| {
        b.iter(|| ready(setup.with_events.check_flag(black_box(FLAG), ctx)));
    });
    group.finish();
}

criterion_group!(benches, bench_datastream);

fn main() {
    // `--test` (what `cargo test --benches` and CI pass) runs everything
    // once, quickly.
    let test_mode = std::env::args().any(|a| a == "--test");
    // `--profile-time` (a profiler attached): criterion only.
    if std::env::args().any(|a| a == "--profile-time") {
        benches();
        return;
    }
    let runtime = runtime();
    let setup = setup(&runtime);
    let (rounds, thread_rounds, checks, changes, cold_runs, companies) = if test_mode {
        (4, 1, 2_000, 4, 2, 1_000)
    } else {
        (400, 20, 200_000, 400, 20, 100_000)
    };
    report_latency(&setup, rounds);
    report_threads(&setup, thread_rounds, checks);
    report_side_by_side(&setup, &runtime, rounds);
    report_propagation(&setup, changes);
    report_cold_start(&runtime, cold_runs);
    report_memory(companies);
    runtime.block_on(async {
        setup.client.shutdown(Duration::from_secs(2)).await;
        setup.with_events.shutdown(Duration::from_secs(2)).await;
    });
    drop(setup);
    drop(runtime);
    benches();
    Criterion::default().configure_from_args().final_summary();
}
