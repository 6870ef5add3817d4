//! Cost of putting an event on the event buffer's queue (the part of
//! `track()` the caller waits for), and of building the envelope too.
//!
//! `cargo bench -p flagwire --bench enqueue -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use flagwire::events::{Batch, EventBuffer, OverflowPolicy, SendError};
use flagwire_core::events::{ApiKey, EventEnvelope, TrackBody};

fn body() -> TrackBody {
    TrackBody::builder("api-call")
        .company_key("id", "acme")
        .user_key("email", "ann@example.com")
        .quantity(1)
        .build()
        .expect("valid body")
}

fn bench_enqueue(c: &mut Criterion) {
    let key = ApiKey::new("sch_dev_bench").expect("valid key");
    let envelope = EventEnvelope::new(key.clone(), body());
    let mut group = c.benchmark_group("event_buffer");

    // The caller's cost alone: the worker holds its first batch at a closed
    // gate, so it does not compete for the lock or the CPU while the timed
    // loop pushes events that were built beforehand.
    group.bench_function("enqueue", |b| {
        b.iter_custom(|iters| {
            let (open, gate) = tokio::sync::watch::channel(false);
            let buffer = EventBuffer::builder()
                .capacity(usize::MAX / 2)
                .flush_interval(Duration::from_secs(3600))
                .spawn(move |_batch: Batch| {
                    let mut gate = gate.clone();
                    async move {
                        let _ = gate.wait_for(|open| *open).await;
                        Ok::<(), SendError>(())
                    }
                })
                .expect("buffer starts");
            let events: Vec<_> = (0..iters).map(|_| envelope.clone()).collect();
            let start = Instant::now();
            for event in events {
                let _ = black_box(buffer.enqueue(event));
            }
            let elapsed = start.elapsed();
            open.send(true).expect("worker alive");
            assert!(buffer.shutdown_blocking(Duration::from_secs(60)).drained);
            elapsed
        });
    });

    // With a worker draining at the same time (lock and CPU shared with it),
    // as in production under sustained load.
    let buffer = EventBuffer::builder()
        .overflow_policy(OverflowPolicy::DropOldest)
        .flush_interval(Duration::from_millis(50))
        .spawn(|_batch: Batch| async { Ok::<(), SendError>(()) })
        .expect("buffer starts");
    group.bench_function("enqueue_while_draining", |b| {
        b.iter_batched(
            || envelope.clone(),
            |event| black_box(buffer.enqueue(event)),
            BatchSize::SmallInput,
        );
    });
    group.bench_function("envelope_and_enqueue_while_draining", |b| {
        let body = body();
        b.iter_batched(
            || body.clone(),
            |body| black_box(buffer.enqueue(EventEnvelope::new(key.clone(), body))),
            BatchSize::SmallInput,
        );
    });
    group.finish();
    let report = buffer.shutdown_blocking(Duration::from_secs(10));
    assert!(report.drained, "{report:?}");
}

criterion_group!(benches, bench_enqueue);
criterion_main!(benches);
