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
//!   `OverflowPolicy::DropOldest`; the cost includes copying the displaced
//!   event to the dead-letter backlog.
//! * `event_buffer/track_path_spool_off` and `track_path_spool_on`: what
//!   `Client::track` does with a body built beforehand (envelope, then
//!   enqueue) while the worker drains, without and with the durable spool
//!   (commit every 100 ms, fsync every commit: the defaults).
//!
//! Before the criterion groups, three figures criterion cannot give:
//!
//! * `track()` latency percentiles (p50, p99, p99.9) with the spool off and
//!   on: every call of a long run timed on its own while the worker drains
//!   (targets: p50 with the spool at most 2× without; p99.9 at most 50 µs);
//! * memory per queued event next to the event's size on the wire (target:
//!   at most 2×; the bench fails above it), from the buffer's own count of
//!   the heap it holds and from the process's resident set;
//! * spool bytes per event: the segment files' size over the events
//!   committed to them.
//!
//! `cargo bench -p flagwire --bench enqueue -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, criterion_group};
use flagwire::events::{
    Batch, EventBuffer, EventBufferBuilder, OverflowPolicy, SendError, SpoolConfig,
};
use flagwire_core::events::{ApiKey, BatchEncoder, EventEnvelope, TrackBody};

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

/// A builder without practical bounds, so that no timed call is refused.
fn unbounded() -> EventBufferBuilder {
    EventBuffer::builder()
        .capacity(1 << 26)
        .max_queue_bytes(usize::MAX / 2)
        .flush_interval(Duration::from_secs(3600))
}

/// A buffer whose sender accepts every batch at once and counts events.
fn draining_buffer(received: Arc<AtomicU64>) -> EventBuffer {
    draining(unbounded(), received)
}

fn draining(builder: EventBufferBuilder, received: Arc<AtomicU64>) -> EventBuffer {
    builder
        .spawn(move |batch: Batch| {
            received.fetch_add(batch.len as u64, Ordering::Relaxed);
            async { Ok::<(), SendError>(()) }
        })
        .expect("buffer starts")
}

/// A fresh spool directory, removed by the caller.
fn spool_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "flagwire-bench-{name}-{}-{}",
        std::process::id(),
        fastrand::u64(..)
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn with_spool(dir: &Path, key: &ApiKey) -> EventBufferBuilder {
    unbounded()
        .api_key(key.clone())
        .spool(SpoolConfig::new(dir).max_bytes(1 << 34))
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
    if overlap.timed == 0 || test_mode() {
        return; // filtered out on the command line, or a single test call
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
            let buffer = unbounded()
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

    // What `track` does, spool off and on.
    for spool in [false, true] {
        let name = if spool {
            "track_path_spool_on"
        } else {
            "track_path_spool_off"
        };
        let dir = spool_dir(name);
        let received = Arc::new(AtomicU64::new(0));
        let builder = if spool {
            with_spool(&dir, &key)
        } else {
            unbounded()
        };
        let buffer = draining(builder, received.clone());
        let mut overlap = Overlap::default();
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let bodies: Vec<_> = (0..iters).map(|_| track.clone()).collect();
                draining_sample(&buffer, &mut overlap, &envelope, bodies, |body| {
                    let event = EventEnvelope::new(key.clone(), body);
                    black_box(buffer.enqueue(event)).expect("queue has room");
                })
            });
        });
        check_draining(name, buffer, &received, &overlap);
        let _ = std::fs::remove_dir_all(dir);
    }

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

/// Whether criterion runs in test mode (`-- --test`): each figure is then
/// taken on a small run, to check that the bench works.
fn test_mode() -> bool {
    std::env::args().any(|a| a == "--test")
}

/// p50, p99 and p99.9 of `track` (envelope and enqueue, body built
/// beforehand), each call timed on its own while the worker drains.
fn track_percentiles(spool: bool) -> [Duration; 3] {
    let calls = if test_mode() { 2_000 } else { 500_000 };
    let key = ApiKey::new("sch_dev_bench").expect("valid key");
    let dir = spool_dir("percentiles");
    let received = Arc::new(AtomicU64::new(0));
    let builder = if spool {
        with_spool(&dir, &key)
    } else {
        unbounded()
    };
    let buffer = draining(builder, received.clone());
    let bodies: Vec<_> = (0..calls).map(|_| body()).collect();
    let mut nanos = Vec::with_capacity(calls);
    for body in bodies {
        let start = Instant::now();
        let event = EventEnvelope::new(key.clone(), body);
        black_box(buffer.enqueue(event)).expect("queue has room");
        nanos.push(start.elapsed());
    }
    let report = buffer.shutdown_blocking(Duration::from_secs(60));
    assert!(report.drained, "{report:?}");
    assert_eq!(received.load(Ordering::Relaxed), calls as u64);
    let _ = std::fs::remove_dir_all(dir);
    nanos.sort_unstable();
    let at = |q: f64| nanos[((nanos.len() as f64 * q) as usize).min(nanos.len() - 1)];
    [at(0.50), at(0.99), at(0.999)]
}

fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib: u64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// Bytes one of the bench's events takes in a batch request.
fn wire_bytes_per_event(key: &ApiKey) -> f64 {
    let events: Vec<_> = (0..100)
        .map(|_| EventEnvelope::new(key.clone(), body()))
        .collect();
    let body = BatchEncoder::new().encode(&events).expect("encodes");
    body.len() as f64 / 100.0
}

/// Memory per queued event (the buffer's count of its heap and the
/// resident set's growth) against the wire size; fails above 2×.
fn memory_per_event() {
    let events = if test_mode() { 10_000 } else { 100_000 };
    let key = ApiKey::new("sch_dev_bench").expect("valid key");
    let wire = wire_bytes_per_event(&key);
    let (open, gate) = tokio::sync::watch::channel(false);
    let buffer = unbounded()
        .spawn(move |_batch: Batch| {
            let mut gate = gate.clone();
            async move {
                let _ = gate.wait_for(|open| *open).await;
                Ok::<(), SendError>(())
            }
        })
        .expect("buffer starts");
    let envelopes: Vec<_> = (0..events)
        .map(|_| EventEnvelope::new(key.clone(), body()))
        .collect();
    let rss_before = rss_bytes();
    for e in envelopes {
        buffer.enqueue(e).expect("queue has room");
    }
    let rss_after = rss_bytes();
    let stats = buffer.stats();
    // The worker holds its first batch at the gate; the rest is queued.
    let queued = events as f64 - 100.0;
    let per_event = stats.memory_bytes as f64 / queued;
    let rss_per_event = match (rss_before, rss_after) {
        (Some(a), Some(b)) if b > a => format!("{:.0}", (b - a) as f64 / events as f64),
        _ => "n/a".to_owned(),
    };
    println!(
        "event_buffer/memory: {per_event:.0} bytes per queued event held by the buffer \
         ({:.2}x the {wire:.0} bytes it takes on the wire; resident set growth {rss_per_event} \
         bytes per event, envelopes freed meanwhile included) over {events} events",
        per_event / wire
    );
    assert!(
        per_event <= 2.0 * wire,
        "a queued event costs {per_event:.0} bytes, more than twice its {wire:.0} wire bytes"
    );
    open.send(true).expect("worker alive");
    assert!(buffer.shutdown_blocking(Duration::from_secs(60)).drained);
}

/// Spool bytes per event: the segment files over the events committed.
fn spool_bytes_per_event() {
    let events = if test_mode() { 5_000 } else { 100_000 };
    let key = ApiKey::new("sch_dev_bench").expect("valid key");
    let wire = wire_bytes_per_event(&key);
    let dir = spool_dir("spool-size");
    let never = |_: Batch| std::future::pending::<Result<(), SendError>>();
    let buffer = with_spool(&dir, &key).spawn(never).expect("buffer starts");
    for _ in 0..events {
        buffer
            .enqueue(EventEnvelope::new(key.clone(), body()))
            .expect("queue has room");
    }
    let until = Instant::now() + Duration::from_secs(60);
    while buffer.stats().committed < events && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(10));
    }
    let committed = buffer.stats().committed;
    assert_eq!(committed, events, "the spool committed every event");
    let mut bytes = 0;
    for sub in std::fs::read_dir(&dir).expect("spool dir") {
        let sub = sub.expect("entry").path();
        for f in std::fs::read_dir(&sub).into_iter().flatten().flatten() {
            if f.path().extension().is_some_and(|e| e == "log") {
                bytes += f.metadata().map(|m| m.len()).unwrap_or(0);
            }
        }
    }
    let per_event = bytes as f64 / committed as f64;
    println!(
        "event_buffer/spool: {per_event:.0} spool bytes per event ({:.2}x the {wire:.0} wire \
         bytes; records carry no API key) over {committed} events",
        per_event / wire
    );
    let _ = buffer.shutdown_blocking(Duration::from_millis(200));
    let _ = std::fs::remove_dir_all(dir);
}

fn figures() {
    let off = track_percentiles(false);
    let on = track_percentiles(true);
    let show = |d: [Duration; 3]| format!("p50 {:?}, p99 {:?}, p99.9 {:?}", d[0], d[1], d[2]);
    println!("event_buffer/track_latency spool off: {}", show(off));
    println!("event_buffer/track_latency spool on:  {}", show(on));
    println!(
        "event_buffer/track_latency: p50 spool on / off = {:.2} (target <= 2); p99.9 spool on {:?} (target <= 50 µs)",
        on[0].as_secs_f64() / off[0].as_secs_f64(),
        on[2]
    );
    memory_per_event();
    spool_bytes_per_event();
}

criterion_group!(benches, bench_enqueue);

fn main() {
    figures();
    benches();
    criterion::Criterion::default()
        .configure_from_args()
        .final_summary();
}
