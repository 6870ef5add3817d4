//! The two calls an application makes on its hot path, measured through the
//! whole `schematic::Client`:
//!
//! * `client/check_flag_cache_hit`: `Client::check_flag` answered from the
//!   client's default cache. The cache is warmed by one real check that goes
//!   through the client's transport stack to a test double of the API, so
//!   the entry is exactly what a production check stores. A plain `HashMap`
//!   lookup runs in the same group as a yardstick for the machine's speed.
//! * `client/track_while_draining`: `Client::track` with a body built
//!   beforehand (envelope with `sent_at` and an idempotency key, then the
//!   queue) while the buffer's worker is busy delivering: every sample first
//!   queues a backlog of events, so the worker is encoding and sending from
//!   the first timed call, and a flush after the timed loop (untimed) waits
//!   for all of them. The capture endpoint of the double answers 200 at once.
//!   The bench checks that no event was refused, that every one was sent and
//!   that the worker sent events while the timed loops ran.
//! * `client/track_with_body`: building the `TrackBody` too (the queue
//!   drains meanwhile; its capacity is large enough that no event is ever
//!   refused).
//! * `client/track_worker_parked`: `Client::track` while the buffer's worker
//!   is held at its first batch, so the timed loop pays only the caller's
//!   part (envelope and queue), not the competition with a draining worker
//!   on a small machine.
//!
//! Before measuring, allocations per call are counted with
//! `flagwire-alloc-counter` and printed; a cache hit must make none.
//!
//! `cargo bench -p flagwire --bench client -- --warm-up-time 1 --measurement-time 3`

use flagwire_alloc_counter::bench::ready;
use std::collections::HashMap;
use std::convert::Infallible;
use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, criterion_group};
use flagwire::Context;
use flagwire::schematic::Client;
use flagwire_alloc_counter::{CountingAllocator, count_allocations};
use flagwire_core::events::{Keys, TrackBody};

#[global_allocator]
static ALLOC: CountingAllocator = CountingAllocator::new();

const FLAG: &str = "new-editor";

/// Events queued before every timed loop of `client/track_while_draining`,
/// so the worker is already sending when the first timed call runs.
const BACKLOG: usize = 2_000;

/// A client whose transport answers flag checks with `true` and accepts
/// every capture batch, without a network.
fn client() -> Client {
    let (_open, gate) = tokio::sync::watch::channel(true);
    client_with_gate(gate)
}

/// As [`client`], but a capture batch is only accepted once `gate` is
/// `true`, which parks the buffer's worker until then.
fn client_with_gate(gate: tokio::sync::watch::Receiver<bool>) -> Client {
    let double = tower::service_fn(move |req: http::Request<Bytes>| {
        let mut gate = gate.clone();
        async move {
            let body = if req.uri().path().ends_with("/check") {
                Bytes::from_static(
                    br#"{"data":{"flag":"new-editor","reason":"rule","value":true},"params":{}}"#,
                )
            } else {
                // A closed gate counts as open.
                let _ = gate.wait_for(|open| *open).await;
                Bytes::new()
            };
            Ok::<_, Infallible>(http::Response::new(body))
        }
    });
    Client::builder("sch_dev_bench")
        .service(double)
        .events(|b| b.capacity(1 << 24).max_queue_bytes(1 << 30))
        .build()
        .expect("client builds")
}

fn keys(name: &str, value: &str) -> Keys {
    Keys::from([(name.to_owned(), value.to_owned())])
}

fn track_body() -> TrackBody {
    TrackBody::builder("api-call")
        .company_key("id", "acme")
        .user_key("email", "ann@example.com")
        .quantity(1)
        .build()
        .expect("valid body")
}

fn warm(client: &Client, company: &Keys, user: &Keys) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    assert!(runtime.block_on(client.check_flag(FLAG, Context::company(company).with_user(user))));
}

fn bench_client(c: &mut Criterion) {
    let client = client();
    let company = keys("id", "acme");
    let user = keys("email", "ann@example.com");
    warm(&client, &company, &user);

    let mut group = c.benchmark_group("client");
    group.bench_function("check_flag_cache_hit", |b| {
        b.iter(|| {
            let context = Context::company(black_box(&company)).with_user(black_box(&user));
            ready(client.check_flag(black_box(FLAG), context))
        });
    });

    // Yardstick: a std HashMap<String, bool> lookup by a prebuilt string.
    let map: HashMap<String, bool> = (0..500)
        .map(|i| {
            (
                format!("f:{FLAG};c:id:company-{i};u:email:ann@example.com"),
                i % 2 == 0,
            )
        })
        .collect();
    let probe = format!("f:{FLAG};c:id:company-250;u:email:ann@example.com");
    group.bench_function("hashmap_get", |b| {
        b.iter(|| black_box(map.get(black_box(probe.as_str())).copied()));
    });

    let body = track_body();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (mut timed, mut sent_while_timed) = (0u64, 0u64);
    group.bench_function("track_while_draining", |b| {
        b.iter_custom(|iters| {
            let bodies: Vec<TrackBody> = (0..iters).map(|_| body.clone()).collect();
            for _ in 0..BACKLOG {
                client.track(body.clone()).expect("queue has room");
            }
            let sent_before = client.event_stats().buffer.sent;
            let start = Instant::now();
            for body in bodies {
                black_box(client.track(body)).expect("queue has room");
            }
            let elapsed = start.elapsed();
            sent_while_timed += client.event_stats().buffer.sent - sent_before;
            timed += iters;
            runtime
                .block_on(client.flush())
                .expect("the worker delivers everything");
            elapsed
        });
    });
    // In test mode (`-- --test`) one call is timed: too short to see a batch go.
    if timed >= 100_000 {
        assert!(sent_while_timed > 0, "the worker sent nothing while timed");
        println!(
            "client/track_while_draining: {timed} calls timed; the worker delivered \
             {sent_while_timed} events while the timed loops ran"
        );
    }
    group.bench_function("track_with_body", |b| {
        b.iter(|| client.track(track_body()));
    });

    // The caller's cost alone, as in `event_buffer/enqueue_worker_parked`:
    // the worker of a fresh client waits at a closed gate with its first
    // batch, so it does not compete for the queue or the CPU during the
    // timed loop.
    group.bench_function("track_worker_parked", |b| {
        b.iter_custom(|iters| {
            let (open, gate) = tokio::sync::watch::channel(false);
            let parked = client_with_gate(gate);
            let bodies: Vec<TrackBody> = (0..iters).map(|_| body.clone()).collect();
            let start = Instant::now();
            for body in bodies {
                let _ = black_box(parked.track(body));
            }
            let elapsed = start.elapsed();
            open.send(true).expect("the client holds the gate");
            let stats = runtime.block_on(parked.shutdown(Duration::from_secs(60)));
            assert_eq!(stats.buffer.sent, iters, "{stats:?}");
            elapsed
        });
    });
    group.finish();

    let stats = client.event_stats();
    assert_eq!(stats.buffer.dropped, 0, "no event was refused: {stats:?}");
    let stats = runtime.block_on(client.shutdown(Duration::from_secs(60)));
    assert_eq!(stats.buffer.enqueued, stats.buffer.sent, "{stats:?}");
}

/// Counts allocations per call and refuses to benchmark an allocating
/// cache hit.
fn count_per_call() {
    let client = client();
    let company = keys("id", "acme");
    let user = keys("email", "ann@example.com");
    warm(&client, &company, &user);
    const N: usize = 10_000;

    // The future is moved when polled or awaited; its size is part of the
    // cost of a hit.
    println!(
        "client/check_flag future: {} bytes",
        std::mem::size_of_val(
            &client.check_flag(FLAG, Context::company(&company).with_user(&user))
        )
    );
    let (hits, allocations) = count_allocations(|| {
        (0..N)
            .filter(|_| ready(client.check_flag(FLAG, Context::company(&company).with_user(&user))))
            .count()
    });
    assert_eq!(hits, N);
    println!("client/check_flag_cache_hit: {allocations} allocations over {N} calls");
    assert_eq!(allocations, 0, "a cache hit must not allocate");

    println!(
        "client/track: a queued event is {} bytes before its heap parts",
        std::mem::size_of::<flagwire_core::events::EventEnvelope>()
    );
    let bodies: Vec<TrackBody> = (0..N).map(|_| track_body()).collect();
    let (refused, allocations) = count_allocations(|| {
        let mut refused = 0;
        for body in bodies {
            refused += usize::from(client.track(body).is_err());
        }
        refused
    });
    assert_eq!(refused, 0);
    println!(
        "client/track: {:.2} allocations per call on the calling thread (body built beforehand)",
        allocations as f64 / N as f64
    );
    let (refused, allocations) = count_allocations(|| {
        (0..N)
            .filter(|_| client.track(track_body()).is_err())
            .count()
    });
    assert_eq!(refused, 0);
    println!(
        "client/track_with_body: {:.2} allocations per call on the calling thread",
        allocations as f64 / N as f64
    );
}

criterion_group!(benches, bench_client);

fn main() {
    count_per_call();
    benches();
    criterion::Criterion::default()
        .configure_from_args()
        .final_summary();
}
