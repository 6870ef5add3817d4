//! Cost of putting an event on the event buffer's queue (the part of
//! `track()` the caller waits for), and of building the envelope too.
//!
//! `cargo bench -p flagwire --bench enqueue -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use flagwire::events::{Batch, EventBuffer, OverflowPolicy, SendError};
use flagwire_core::events::{ApiKey, EventEnvelope, TrackBody};

fn bench_enqueue(c: &mut Criterion) {
    // A sender that accepts instantly: the worker keeps draining while the
    // benchmark enqueues, as it would in production.
    let buffer = EventBuffer::builder()
        .overflow_policy(OverflowPolicy::DropOldest)
        .flush_interval(Duration::from_millis(50))
        .spawn(|_batch: Batch| async { Ok::<(), SendError>(()) })
        .expect("buffer starts");
    let key = ApiKey::new("sch_dev_bench").expect("valid key");
    let body = TrackBody::builder("api-call")
        .company_key("id", "acme")
        .user_key("email", "ann@example.com")
        .quantity(1)
        .build()
        .expect("valid body");
    let envelope = EventEnvelope::new(key.clone(), body.clone());

    let mut group = c.benchmark_group("event_buffer");
    group.bench_function("enqueue", |b| {
        b.iter_batched(
            || envelope.clone(),
            |event| black_box(buffer.enqueue(event)),
            BatchSize::SmallInput,
        );
    });
    group.bench_function("envelope_and_enqueue", |b| {
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
