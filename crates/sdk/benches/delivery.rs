//! End-to-end delivery of `track` events by the Schematic client to the
//! in-process emulator (`flagwire-mock`) over loopback, with the capture
//! host answering at once, after 1 ms, and after 50 ms (the emulator's
//! `capture_latency`), each with the default number of batches in flight
//! and with one (`_single_flight`, how the buffer delivered before it kept
//! several batches in flight).
//!
//! One iteration tracks a case's events with bodies built beforehand, then
//! shuts the client down, which returns once every queued event is
//! delivered; the time runs from the first `track` to the end of the
//! shutdown. Criterion reports events per second (`Throughput::Elements`).
//! The queue holds all of an iteration's events, so none is refused and the
//! figure is the delivery rate.
//!
//! After every iteration (untimed) the bench checks that nothing was lost:
//! the client counts every event as sent and none dropped or dead-lettered,
//! and the emulator holds exactly the case's events with distinct
//! idempotency keys and every quantity from 1 to the count.
//!
//! Targets: at least 20,000 events/s with 50 ms of latency and 150,000
//! events/s with 1 ms.
//!
//! `cargo bench -p flagwire --bench delivery -- --warm-up-time 1 --measurement-time 3`

use std::collections::HashSet;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use flagwire::schematic::Client;
use flagwire_core::events::TrackBody;
use flagwire_mock::MockServer;
use serde_json::json;

/// One delivery scenario.
struct Case {
    /// The benchmark's name in the `delivery` group.
    name: &'static str,
    /// Added by the emulator to every capture answer.
    latency: Duration,
    /// Batches in flight at once.
    in_flight: usize,
    /// Events per iteration: enough for a steady rate, few enough that a
    /// single-flight case with 50 ms per batch stays around a second.
    events: u64,
}

const CASES: &[Case] = &[
    Case {
        name: "track_to_emulator",
        latency: Duration::ZERO,
        in_flight: flagwire::events::DEFAULT_MAX_IN_FLIGHT,
        events: 20_000,
    },
    Case {
        name: "track_to_emulator_single_flight",
        latency: Duration::ZERO,
        in_flight: 1,
        events: 20_000,
    },
    Case {
        name: "latency_1ms",
        latency: Duration::from_millis(1),
        in_flight: flagwire::events::DEFAULT_MAX_IN_FLIGHT,
        events: 50_000,
    },
    Case {
        name: "latency_1ms_single_flight",
        latency: Duration::from_millis(1),
        in_flight: 1,
        events: 10_000,
    },
    Case {
        name: "latency_50ms",
        latency: Duration::from_millis(50),
        in_flight: flagwire::events::DEFAULT_MAX_IN_FLIGHT,
        events: 20_000,
    },
    Case {
        name: "latency_50ms_single_flight",
        latency: Duration::from_millis(50),
        in_flight: 1,
        events: 2_000,
    },
];

fn body(i: u64) -> TrackBody {
    TrackBody::builder("api-call")
        .company_key("id", "acme")
        .quantity(i as i64)
        .build()
        .expect("a valid body")
}

/// Checks that the emulator received every event of the iteration once.
fn check_received(server: &MockServer, events: u64) {
    let received = server.events();
    assert_eq!(received.len() as u64, events, "the emulator lost events");
    let keys: HashSet<_> = received.iter().map(|e| e.idempotency_key.clone()).collect();
    assert_eq!(keys.len() as u64, events, "duplicate idempotency keys");
    let quantities: HashSet<i64> = received
        .iter()
        .map(|e| e.body["quantity"].as_i64().expect("a quantity"))
        .collect();
    assert_eq!(quantities, (1..=events as i64).collect::<HashSet<_>>());
}

fn bench_delivery(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let mut group = c.benchmark_group("delivery");
    group.sample_size(10);
    for case in CASES {
        let server = runtime
            .block_on(
                MockServer::builder()
                    .record_requests(0)
                    .max_events(case.events as usize)
                    .capture_latency(case.latency)
                    .start(),
            )
            .expect("emulator starts");
        group.throughput(Throughput::Elements(case.events));
        let (mut iterations, mut delivered, mut batches) = (0u64, 0u64, 0u64);
        group.bench_function(case.name, |b| {
            b.iter_custom(|iters| {
                let mut elapsed = Duration::ZERO;
                for _ in 0..iters {
                    server.reset();
                    server
                        .upsert_company(json!({"keys": {"id": "acme"}}))
                        .expect("company");
                    let client = {
                        let _entered = runtime.enter();
                        Client::builder(server.api_key())
                            .base_url(server.rest_url())
                            .capture_url(server.capture_url())
                            .events(|b| {
                                b.capacity(case.events as usize)
                                    .max_in_flight(case.in_flight)
                            })
                            .build()
                            .expect("client builds")
                    };
                    let bodies: Vec<TrackBody> = (1..=case.events).map(body).collect();

                    let start = Instant::now();
                    for body in bodies {
                        client.track(body).expect("the queue has room");
                    }
                    let report = runtime.block_on(client.shutdown(Duration::from_secs(300)));
                    elapsed += start.elapsed();

                    let buffer = report.buffer;
                    assert!(report.drained, "{report:?}");
                    assert_eq!(
                        (buffer.sent, buffer.dropped, buffer.dead_lettered),
                        (case.events, 0, 0),
                        "{report:?}"
                    );
                    check_received(&server, case.events);
                    iterations += 1;
                    delivered += buffer.sent;
                    batches += buffer.batches_sent;
                }
                elapsed
            });
        });
        if iterations > 0 {
            println!(
                "delivery/{}: {iterations} iterations, {delivered} events delivered in {batches} \
                 batches ({} in flight, {:?} capture latency), none lost (client counters and \
                 emulator store checked)",
                case.name, case.in_flight, case.latency
            );
        }
        runtime.block_on(server.stop());
    }
    group.finish();
}

criterion_group!(benches, bench_delivery);
criterion_main!(benches);
