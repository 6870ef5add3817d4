//! End-to-end delivery of `track` events by the Schematic client to the
//! in-process emulator (`flagwire-mock`) over loopback.
//!
//! `delivery/track_to_emulator`: one iteration tracks `EVENTS` events with
//! bodies built beforehand, then shuts the client down, which returns once
//! every queued event is delivered; the time runs from the first `track` to
//! the end of the shutdown. Criterion reports events per second
//! (`Throughput::Elements`). The queue holds all of an iteration's events,
//! so none is refused and the figure is the delivery rate: encoding, HTTP/1.1
//! requests of 100 events and the emulator's handling.
//!
//! After every iteration (untimed) the bench checks that nothing was lost:
//! the client counts every event as sent and none dropped or dead-lettered,
//! and the emulator holds exactly `EVENTS` events with distinct idempotency
//! keys and every quantity from 1 to `EVENTS`.
//!
//! `cargo bench -p flagwire --bench delivery -- --warm-up-time 1 --measurement-time 3`

use std::collections::HashSet;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use flagwire::schematic::Client;
use flagwire_core::events::TrackBody;
use flagwire_mock::MockServer;
use serde_json::json;

/// Events per iteration.
const EVENTS: u64 = 20_000;

fn body(i: u64) -> TrackBody {
    TrackBody::builder("api-call")
        .company_key("id", "acme")
        .quantity(i as i64)
        .build()
        .expect("a valid body")
}

/// Checks that the emulator received every event of the iteration once.
fn check_received(server: &MockServer) {
    let events = server.events();
    assert_eq!(events.len() as u64, EVENTS, "the emulator lost events");
    let keys: HashSet<_> = events.iter().map(|e| e.idempotency_key.clone()).collect();
    assert_eq!(keys.len() as u64, EVENTS, "duplicate idempotency keys");
    let quantities: HashSet<i64> = events
        .iter()
        .map(|e| e.body["quantity"].as_i64().expect("a quantity"))
        .collect();
    assert_eq!(quantities, (1..=EVENTS as i64).collect::<HashSet<_>>());
}

fn bench_delivery(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let server = runtime
        .block_on(
            MockServer::builder()
                .record_requests(0)
                .max_events(EVENTS as usize)
                .start(),
        )
        .expect("emulator starts");

    let mut group = c.benchmark_group("delivery");
    group.throughput(Throughput::Elements(EVENTS));
    group.sample_size(10);
    let (mut iterations, mut delivered, mut batches) = (0u64, 0u64, 0u64);
    group.bench_function("track_to_emulator", |b| {
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
                        .events(|b| b.capacity(EVENTS as usize))
                        .build()
                        .expect("client builds")
                };
                let bodies: Vec<TrackBody> = (1..=EVENTS).map(body).collect();

                let start = Instant::now();
                for body in bodies {
                    client.track(body).expect("the queue has room");
                }
                let stats = runtime.block_on(client.shutdown(Duration::from_secs(120)));
                elapsed += start.elapsed();

                let buffer = stats.buffer;
                assert_eq!(
                    (buffer.sent, buffer.dropped, buffer.dead_lettered),
                    (EVENTS, 0, 0),
                    "{stats:?}"
                );
                check_received(&server);
                iterations += 1;
                delivered += buffer.sent;
                batches += buffer.batches_sent;
            }
            elapsed
        });
    });
    group.finish();
    if iterations > 0 {
        println!(
            "delivery/track_to_emulator: {iterations} iterations, {delivered} events delivered \
             in {batches} batches, none lost (client counters and emulator store checked)"
        );
    }
    runtime.block_on(server.stop());
}

criterion_group!(benches, bench_delivery);
criterion_main!(benches);
