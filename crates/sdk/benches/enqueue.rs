//! Cost of putting an event on the event buffer's queue (the part of
//! `track()` the caller waits for), alone and with the envelope.
//!
//! * `event_buffer/enqueue_worker_parked`: the caller's cost alone. The
//!   worker holds its first batch at a closed gate, so it competes neither
//!   for the queue nor for the CPU.
//! * `event_buffer/enqueue_while_draining`: the same call while the worker
//!   is busy taking batches off the queue, encoding them and handing them to
//!   a sender that accepts at once. Every sample starts with a backlog of
//!   events, so the worker is sending from the first timed call; after the
//!   timed loop a flush waits (untimed) until every event is delivered.
//!   After the group the bench checks that nothing was dropped, that every
//!   event was delivered exactly once and that the worker delivered events
//!   during the timed loops.
//! * `event_buffer/envelope_and_enqueue_while_draining`: as above, plus
//!   `EventEnvelope::new` (clock read and UUIDv7): what `Client::track`
//!   does with a body built beforehand.
//! * `event_buffer/enqueue_full_drop_oldest`: a full queue under
//!   `OverflowPolicy::DropOldest`; the cost includes destroying the
//!   displaced event.
//!
//! `cargo bench -p flagwire --bench enqueue -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use flagwire::events::{Batch, EventBuffer, OverflowPolicy, SendError};
use flagwire_core::events::{ApiKey, EventEnvelope, TrackBody};

/// Events queued before every timed loop of the draining cases, so the
/// worker is already sending when the first timed call runs.
const BACKLOG: usize = 2_000;

fn body() -> TrackBody {
    TrackBody::builder("api-call")
        .company_key("id", "acme")
        .user_key("email", "ann@example.com")
        .quantity(1)
        .build()
        .expect("valid body")
}

/// A buffer whose sender accepts every batch at once and counts events.
fn draining_buffer(received: Arc<AtomicU64>) -> EventBuffer {
    EventBuffer::builder()
        .capacity(1 << 26)
        .flush_interval(Duration::from_secs(3600))
        .spawn(move |batch: Batch| {
            received.fetch_add(batch.len as u64, Ordering::Relaxed);
            async { Ok::<(), SendError>(()) }
        })
        .expect("buffer starts")
}

/// Events the worker delivered while timed loops ran, and events timed.
#[derive(Default)]
struct Overlap {
    sent_while_timed: u64,
    timed: u64,
}

/// Runs one sample of a draining case: queues the backlog, then times
/// `enqueue(input)` for every input while the worker drains, then flushes.
fn draining_sample<T>(
    buffer: &EventBuffer,
    overlap: &mut Overlap,
    backlog: &EventEnvelope,
    inputs: Vec<T>,
    mut enqueue: impl FnMut(T),
) -> Duration {
    for _ in 0..BACKLOG {
        buffer.enqueue(backlog.clone()).expect("queue has room");
    }
    let n = inputs.len() as u64;
    let sent_before = buffer.stats().sent;
    let start = Instant::now();
    for input in inputs {
        enqueue(input);
    }
    let elapsed = start.elapsed();
    overlap.sent_while_timed += buffer.stats().sent - sent_before;
    overlap.timed += n;
    buffer
        .flush_blocking(Duration::from_secs(120))
        .expect("the worker delivers everything");
    elapsed
}

fn check_draining(name: &str, buffer: EventBuffer, received: &AtomicU64, overlap: &Overlap) {
    let report = buffer.shutdown_blocking(Duration::from_secs(60));
    let stats = report.stats;
    assert!(report.drained, "{stats:?}");
    assert_eq!(stats.dropped, 0, "{stats:?}");
    assert_eq!(stats.dead_lettered, 0, "{stats:?}");
    assert_eq!(stats.sent, stats.enqueued, "{stats:?}");
    assert_eq!(received.load(Ordering::Relaxed), stats.enqueued);
    if overlap.timed == 0 {
        return; // filtered out on the command line
    }
    assert!(
        overlap.sent_while_timed > 0,
        "{name}: the worker sent nothing while the timed loops ran"
    );
    println!(
        "{name}: {} events timed; the worker delivered {} events ({} batches in all) \
         while the timed loops ran; all {} enqueued events delivered once, none dropped",
        overlap.timed, overlap.sent_while_timed, stats.batches_sent, stats.enqueued
    );
}

fn bench_enqueue(c: &mut Criterion) {
    let key = ApiKey::new("sch_dev_bench").expect("valid key");
    let envelope = EventEnvelope::new(key.clone(), body());
    let mut group = c.benchmark_group("event_buffer");

    group.bench_function("enqueue_worker_parked", |b| {
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

    let received = Arc::new(AtomicU64::new(0));
    let buffer = draining_buffer(received.clone());
    let mut overlap = Overlap::default();
    group.bench_function("enqueue_while_draining", |b| {
        b.iter_custom(|iters| {
            let events: Vec<_> = (0..iters).map(|_| envelope.clone()).collect();
            draining_sample(&buffer, &mut overlap, &envelope, events, |event| {
                black_box(buffer.enqueue(event)).expect("queue has room");
            })
        });
    });
    check_draining("enqueue_while_draining", buffer, &received, &overlap);

    let received = Arc::new(AtomicU64::new(0));
    let buffer = draining_buffer(received.clone());
    let mut overlap = Overlap::default();
    let track = body();
    group.bench_function("envelope_and_enqueue_while_draining", |b| {
        b.iter_custom(|iters| {
            let bodies: Vec<_> = (0..iters).map(|_| track.clone()).collect();
            draining_sample(&buffer, &mut overlap, &envelope, bodies, |body| {
                let event = EventEnvelope::new(key.clone(), body);
                black_box(buffer.enqueue(event)).expect("queue has room");
            })
        });
    });
    check_draining(
        "envelope_and_enqueue_while_draining",
        buffer,
        &received,
        &overlap,
    );

    // A full queue under DropOldest: every call displaces the oldest event.
    let buffer = EventBuffer::builder()
        .overflow_policy(OverflowPolicy::DropOldest)
        .flush_interval(Duration::from_millis(50))
        .spawn(|_batch: Batch| async { Ok::<(), SendError>(()) })
        .expect("buffer starts");
    group.bench_function("enqueue_full_drop_oldest", |b| {
        b.iter_batched(
            || envelope.clone(),
            |event| black_box(buffer.enqueue(event)),
            BatchSize::SmallInput,
        );
    });
    group.finish();
    let report = buffer.shutdown_blocking(Duration::from_secs(10));
    assert!(report.drained, "{report:?}");
}

criterion_group!(benches, bench_enqueue);
criterion_main!(benches);
