//! Behaviour of the background event buffer against in-memory senders.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use flagwire::events::{
    Batch, BufferError, DeadLetter, DeadLetterReason, EventBuffer, EventBufferBuilder,
    JsonlDeadLetterFile, OverflowPolicy, SendError,
};
use flagwire_core::events::{ApiKey, EventEnvelope, TrackBody};
use serde_json::Value;

const KEY: &str = "sch_dev_buffer_tests";

fn event(i: usize) -> EventEnvelope {
    let body = TrackBody::builder("api-call")
        .company_key("id", format!("company-{}", i % 7))
        .trait_value("i", i)
        .quantity(i as i64)
        .build()
        .unwrap();
    EventEnvelope::new(ApiKey::new(KEY).unwrap(), body)
}

/// Fast settings so that tests finish in milliseconds.
fn fast() -> EventBufferBuilder {
    EventBuffer::builder()
        .flush_interval(Duration::from_millis(10))
        .retry_backoff(Duration::from_millis(1), Duration::from_millis(4))
        .drop_timeout(Duration::from_secs(5))
}

/// Records every batch body it is given.
#[derive(Clone, Default)]
struct Recorder {
    batches: Arc<Mutex<Vec<Bytes>>>,
}

impl Recorder {
    fn sender(&self) -> impl Fn(Batch) -> std::future::Ready<Result<(), SendError>> + use<> {
        let batches = self.batches.clone();
        move |batch: Batch| {
            batches.lock().unwrap().push(batch.body);
            std::future::ready(Ok(()))
        }
    }

    /// Every delivered event as JSON, in delivery order.
    fn events(&self) -> Vec<Value> {
        let batches = self.batches.lock().unwrap();
        batches
            .iter()
            .flat_map(|b| {
                let v: Value = serde_json::from_slice(b).unwrap();
                v["events"].as_array().unwrap().clone()
            })
            .collect()
    }

    fn batch_sizes(&self) -> Vec<usize> {
        let batches = self.batches.lock().unwrap();
        batches
            .iter()
            .map(|b| {
                let v: Value = serde_json::from_slice(b).unwrap();
                v["events"].as_array().unwrap().len()
            })
            .collect()
    }
}

fn keys_of(events: &[EventEnvelope]) -> Vec<String> {
    events
        .iter()
        .map(|e| e.idempotency_key().to_string())
        .collect()
}

/// Every dead-lettered event: its reason and idempotency key.
#[derive(Clone, Default)]
struct Letters {
    seen: Arc<Mutex<Vec<(DeadLetterReason, String)>>>,
}

impl Letters {
    fn sink(&self) -> impl flagwire::events::DeadLetterSink + use<> {
        let seen = self.seen.clone();
        move |letter: &DeadLetter<'_>| -> std::io::Result<()> {
            let mut seen = seen.lock().unwrap();
            for e in letter.events.iter() {
                seen.push((letter.reason, e.idempotency_key().unwrap().into_owned()));
            }
            Ok(())
        }
    }

    fn keys(&self, reason: DeadLetterReason) -> Vec<String> {
        let seen = self.seen.lock().unwrap();
        seen.iter()
            .filter(|(r, _)| *r == reason)
            .map(|(_, k)| k.clone())
            .collect()
    }

    fn all(&self) -> Vec<String> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .map(|(_, k)| k.clone())
            .collect()
    }
}

/// The counters' identity, checked on an idle buffer.
fn assert_accounted(s: &flagwire::events::BufferStats) {
    assert_eq!(
        s.enqueued + s.refused,
        s.sent + s.dead_lettered + s.lost + s.queued,
        "{s:?}"
    );
    assert_eq!(s.dropped, s.refused + s.displaced, "{s:?}");
}

#[test]
fn ten_thousand_events_are_delivered_exactly_once() {
    let recorder = Recorder::default();
    let buffer = fast().spawn(recorder.sender()).unwrap();

    // Four producer threads, a flush in the middle, then shutdown.
    let mut expected = HashSet::new();
    let producers: Vec<_> = (0..4)
        .map(|t| {
            let buffer = buffer.clone();
            std::thread::spawn(move || {
                let mut keys = Vec::new();
                for i in 0..2_500 {
                    let e = event(t * 2_500 + i);
                    keys.push(e.idempotency_key().to_string());
                    buffer.enqueue(e).unwrap();
                    if i == 1_250 && t == 0 {
                        buffer.flush_blocking(Duration::from_secs(10)).unwrap();
                    }
                }
                keys
            })
        })
        .collect();
    for p in producers {
        expected.extend(p.join().unwrap());
    }
    let report = buffer.shutdown_blocking(Duration::from_secs(10));
    assert!(report.drained, "{report:?}");
    assert_eq!(report.stats.enqueued, 10_000);
    assert_eq!(report.stats.sent, 10_000);
    assert_eq!(
        report.stats.dropped + report.stats.dead_lettered + report.stats.retried,
        0
    );

    let delivered = recorder.events();
    assert_eq!(delivered.len(), 10_000);
    let mut seen = HashMap::new();
    for e in &delivered {
        let key = e["idempotency_key"].as_str().unwrap().to_owned();
        *seen.entry(key).or_insert(0) += 1;
        assert_eq!(e["api_key"], KEY);
        assert_eq!(e["type"], "track");
        assert_eq!(e["body"]["event"], "api-call");
        assert!(
            e["body"]["company"]["id"]
                .as_str()
                .unwrap()
                .starts_with("company-")
        );
        assert!(e["sent_at"].as_str().unwrap().ends_with('Z'));
    }
    assert!(
        seen.values().all(|&n| n == 1),
        "an event was delivered twice"
    );
    assert_eq!(seen.keys().cloned().collect::<HashSet<_>>(), expected);
    assert!(
        recorder
            .batch_sizes()
            .iter()
            .all(|&n| (1..=100).contains(&n))
    );
}

#[test]
fn batches_respect_a_smaller_configured_size_and_enqueue_order() {
    let recorder = Recorder::default();
    let buffer = fast().max_batch_size(7).spawn(recorder.sender()).unwrap();
    let events: Vec<_> = (0..100).map(event).collect();
    let keys = keys_of(&events);
    for e in events {
        buffer.enqueue(e).unwrap();
    }
    assert!(buffer.shutdown_blocking(Duration::from_secs(5)).drained);
    let sizes = recorder.batch_sizes();
    assert!(sizes.iter().all(|&n| n <= 7), "{sizes:?}");
    let delivered: Vec<_> = recorder
        .events()
        .iter()
        .map(|e| e["idempotency_key"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(delivered, keys);
}

#[test]
fn a_full_batch_is_sent_without_waiting_for_the_timer() {
    let recorder = Recorder::default();
    let buffer = fast()
        .flush_interval(Duration::from_secs(3600))
        .spawn(recorder.sender())
        .unwrap();
    for i in 0..100 {
        buffer.enqueue(event(i)).unwrap();
    }
    let start = Instant::now();
    while recorder.batch_sizes().is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "batch of 100 was not sent"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(recorder.batch_sizes(), vec![100]);
    // Fewer than a batch waits for the timer (here: for shutdown).
    buffer.enqueue(event(100)).unwrap();
    std::thread::sleep(Duration::from_millis(30));
    assert_eq!(recorder.batch_sizes(), vec![100]);
    assert!(buffer.shutdown_blocking(Duration::from_secs(5)).drained);
    assert_eq!(recorder.batch_sizes(), vec![100, 1]);
}

#[test]
fn outage_retries_then_dead_letters_exactly_the_undelivered_events() {
    let dir = std::env::temp_dir().join(format!("flagwire-dl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("outage.jsonl");
    let _ = std::fs::remove_file(&path);

    let down = Arc::new(AtomicBool::new(true));
    let attempts = Arc::new(AtomicU32::new(0));
    let recorder = Recorder::default();
    let record = recorder.sender();
    let (down2, attempts2) = (down.clone(), attempts.clone());
    let sender = move |batch: Batch| {
        attempts2.fetch_add(1, Ordering::Relaxed);
        let result = if down2.load(Ordering::Relaxed) {
            Err(SendError::from_status(503, "capture unavailable"))
        } else {
            futures_util::FutureExt::now_or_never(record(batch)).unwrap()
        };
        std::future::ready(result)
    };
    let buffer = fast()
        .dead_letter(JsonlDeadLetterFile::open(&path).unwrap())
        .spawn(sender)
        .unwrap();

    let lost: Vec<_> = (0..150).map(event).collect();
    let lost_keys = keys_of(&lost);
    for e in lost {
        buffer.enqueue(e).unwrap();
    }
    buffer.flush_blocking(Duration::from_secs(5)).unwrap();
    // Two batches (100 + 50), each tried 1 + 3 times.
    assert_eq!(attempts.load(Ordering::Relaxed), 8);
    let stats = buffer.stats();
    assert_eq!(
        (stats.retried, stats.dead_lettered, stats.sent),
        (6, 150, 0)
    );

    down.store(false, Ordering::Relaxed);
    let delivered: Vec<_> = (150..200).map(event).collect();
    let delivered_keys = keys_of(&delivered);
    for e in delivered {
        buffer.enqueue(e).unwrap();
    }
    let report = buffer.shutdown_blocking(Duration::from_secs(5));
    assert!(report.drained);
    assert_eq!(report.stats.sent, 50);

    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let dead_keys: Vec<_> = lines
        .iter()
        .map(|l| l["idempotency_key"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(dead_keys, lost_keys);
    for line in &lines {
        assert_eq!(line["reason"], "retries_exhausted");
        assert_eq!(line["attempts"], 4);
        assert_eq!(line["last_status"], 503);
        assert!(
            line["error"]
                .as_str()
                .unwrap()
                .contains("capture unavailable")
        );
        assert!(line["dead_lettered_at"].as_str().unwrap().ends_with('Z'));
        assert_eq!(line["event"]["idempotency_key"], line["idempotency_key"]);
        assert_eq!(line["event"]["type"], "track");
        assert!(line["event"].get("api_key").is_none());
    }
    assert!(
        !text.contains(KEY),
        "the API key must not reach the dead-letter file"
    );
    let sent: Vec<_> = recorder
        .events()
        .iter()
        .map(|e| e["idempotency_key"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(sent, delivered_keys);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn retries_resend_identical_bytes_until_success() {
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let bodies2 = bodies.clone();
    let sender = move |batch: Batch| {
        let mut b = bodies2.lock().unwrap();
        b.push((batch.attempt, batch.body));
        let result = if b.len() < 3 {
            Err(SendError::retryable("connection reset"))
        } else {
            Ok(())
        };
        std::future::ready(result)
    };
    let buffer = fast().spawn(sender).unwrap();
    for i in 0..10 {
        buffer.enqueue(event(i)).unwrap();
    }
    let report = buffer.shutdown_blocking(Duration::from_secs(5));
    assert_eq!(
        (
            report.stats.sent,
            report.stats.retried,
            report.stats.dead_lettered
        ),
        (10, 2, 0)
    );
    let bodies = bodies.lock().unwrap();
    assert_eq!(
        bodies.iter().map(|(a, _)| *a).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    assert!(bodies.iter().all(|(_, b)| b == &bodies[0].1));
}

#[test]
fn permanent_rejections_are_dead_lettered_without_retry() {
    let letters = Arc::new(Mutex::new(Vec::new()));
    let letters2 = letters.clone();
    let sink = move |l: &DeadLetter<'_>| -> std::io::Result<()> {
        letters2
            .lock()
            .unwrap()
            .push((l.reason, l.attempts, l.last_status, l.events.len()));
        Ok(())
    };
    let sender = |_: Batch| std::future::ready(Err(SendError::from_status(400, "batch too large")));
    let buffer = fast().dead_letter(sink).spawn(sender).unwrap();
    for i in 0..3 {
        buffer.enqueue(event(i)).unwrap();
    }
    let report = buffer.shutdown_blocking(Duration::from_secs(5));
    assert!(report.drained);
    assert_eq!(report.stats.retried, 0);
    assert_eq!(
        *letters.lock().unwrap(),
        vec![(DeadLetterReason::Rejected, 1, Some(400), 3)]
    );
}

#[test]
fn slow_attempts_time_out_and_are_retried() {
    let calls = Arc::new(AtomicU32::new(0));
    let calls2 = calls.clone();
    let sender = move |_: Batch| {
        let n = calls2.fetch_add(1, Ordering::Relaxed);
        async move {
            if n == 0 {
                tokio::time::sleep(Duration::from_secs(60)).await;
            }
            Ok(())
        }
    };
    let buffer = fast()
        .attempt_timeout(Duration::from_millis(20))
        .spawn(sender)
        .unwrap();
    buffer.enqueue(event(0)).unwrap();
    let report = buffer.shutdown_blocking(Duration::from_secs(5));
    assert_eq!((report.stats.sent, report.stats.retried), (1, 1));
}

/// A sender that holds every batch until the gate opens.
fn gated(
    recorder: &Recorder,
) -> (
    tokio::sync::watch::Sender<bool>,
    impl flagwire::events::BatchSender,
) {
    let (open, gate) = tokio::sync::watch::channel(false);
    let batches = recorder.batches.clone();
    let sender = move |batch: Batch| {
        let mut gate = gate.clone();
        let batches = batches.clone();
        async move {
            let _ = gate.wait_for(|open| *open).await;
            batches.lock().unwrap().push(batch.body);
            Ok(())
        }
    };
    (open, sender)
}

#[test]
fn full_queue_drop_newest_refuses_counts_and_dead_letters() {
    let recorder = Recorder::default();
    let sink = Letters::default();
    let buffer = fast()
        .capacity(10)
        .flush_interval(Duration::from_secs(3600))
        .dead_letter(sink.sink())
        .spawn(recorder.sender())
        .unwrap();
    let events: Vec<_> = (0..15).map(event).collect();
    let keys = keys_of(&events);
    let results: Vec<_> = events.into_iter().map(|e| buffer.enqueue(e)).collect();
    assert!(results[..10].iter().all(Result::is_ok));
    assert!(
        results[10..]
            .iter()
            .all(|r| matches!(r, Err(BufferError::QueueFull)))
    );
    let stats = buffer.stats();
    assert_eq!((stats.enqueued, stats.refused, stats.dropped), (10, 5, 5));
    let report = buffer.shutdown_blocking(Duration::from_secs(5));
    assert!(report.drained);
    assert_accounted(&report.stats);
    let sent: Vec<_> = recorder
        .events()
        .iter()
        .map(|e| e["idempotency_key"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(sent, keys[..10]);
    // The refused events are in the sink, with their reason.
    assert_eq!(sink.keys(DeadLetterReason::QueueFull), keys[10..]);
    assert_eq!(report.stats.dead_lettered, 5);
}

#[test]
fn full_queue_drop_oldest_keeps_the_newest_and_dead_letters_the_displaced() {
    let recorder = Recorder::default();
    let sink = Letters::default();
    let buffer = fast()
        .capacity(10)
        .overflow_policy(OverflowPolicy::DropOldest)
        .flush_interval(Duration::from_secs(3600))
        .dead_letter(sink.sink())
        .spawn(recorder.sender())
        .unwrap();
    let events: Vec<_> = (0..15).map(event).collect();
    let keys = keys_of(&events);
    for e in events {
        buffer.enqueue(e).unwrap();
    }
    let stats = buffer.stats();
    assert_eq!((stats.enqueued, stats.displaced, stats.refused), (15, 5, 0));
    // Flush returns once the rest is sent and the displaced are in the sink.
    buffer.flush_blocking(Duration::from_secs(5)).unwrap();
    let sent: Vec<_> = recorder
        .events()
        .iter()
        .map(|e| e["idempotency_key"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(sent, keys[5..]);
    assert_eq!(sink.keys(DeadLetterReason::Displaced), keys[..5]);
    assert_accounted(&buffer.stats());
}

#[test]
fn enqueue_never_waits_for_a_stuck_sender() {
    let recorder = Recorder::default();
    let (open, sender) = gated(&recorder);
    let buffer = fast().capacity(500).max_in_flight(2).spawn(sender).unwrap();
    let start = Instant::now();
    let mut refused = 0;
    for i in 0..1_000 {
        if buffer.enqueue(event(i)).is_err() {
            refused += 1;
        }
    }
    assert!(start.elapsed() < Duration::from_secs(2));
    // Up to two batches of 100 are held by the sender, 500 wait in the queue.
    assert!(refused >= 300, "{refused}");
    assert_eq!(buffer.stats().refused, refused);
    open.send(true).unwrap();
    let report = buffer.shutdown_blocking(Duration::from_secs(5));
    assert!(report.drained);
    assert_eq!(report.stats.sent + report.stats.refused, 1_000);
    assert_accounted(&report.stats);
}

#[tokio::test(flavor = "current_thread")]
async fn flush_waits_for_everything_enqueued_before_it() {
    let recorder = Recorder::default();
    let slow = {
        let batches = recorder.batches.clone();
        move |batch: Batch| {
            let batches = batches.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(5)).await;
                batches.lock().unwrap().push(batch.body);
                Ok(())
            }
        }
    };
    let buffer = fast()
        .flush_interval(Duration::from_secs(3600))
        .max_batch_size(10)
        .spawn(slow)
        .unwrap();
    // Nothing enqueued: returns at once.
    buffer.flush().await.unwrap();
    for i in 0..35 {
        buffer.enqueue(event(i)).unwrap();
    }
    buffer.flush().await.unwrap();
    assert_eq!(recorder.events().len(), 35);
    assert_eq!(buffer.stats().sent, 35);
    let report = buffer.shutdown(Duration::from_secs(5)).await;
    assert!(report.drained);
    // After shutdown a flush reports the buffer closed only if work was left.
    assert!(buffer.flush().await.is_ok());
}

#[test]
fn the_buffer_outlives_the_callers_runtime() {
    let recorder = Recorder::default();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let buffer = runtime.block_on(async {
        let buffer = fast().spawn(recorder.sender()).unwrap();
        for i in 0..50 {
            buffer.enqueue(event(i)).unwrap();
        }
        buffer
    });
    drop(runtime);
    for i in 50..60 {
        buffer.enqueue(event(i)).unwrap();
    }
    let report = buffer.shutdown_blocking(Duration::from_secs(5));
    assert!(report.drained);
    assert_eq!(recorder.events().len(), 60);
}

#[test]
fn shutdown_meets_its_deadline_and_dead_letters_the_rest() {
    let letters = Arc::new(Mutex::new(Vec::new()));
    let letters2 = letters.clone();
    let sink = move |l: &DeadLetter<'_>| -> std::io::Result<()> {
        letters2.lock().unwrap().push((l.reason, l.events.len()));
        Ok(())
    };
    let never = |_: Batch| std::future::pending::<Result<(), SendError>>();
    let buffer = fast()
        .max_batch_size(3)
        .dead_letter(sink)
        .spawn(never)
        .unwrap();
    for i in 0..7 {
        buffer.enqueue(event(i)).unwrap();
    }
    let start = Instant::now();
    let report = buffer.shutdown_blocking(Duration::from_millis(100));
    let took = start.elapsed();
    // The worker stops sending early enough to dead-letter the rest in time.
    assert!(
        took >= Duration::from_millis(50) && took <= Duration::from_millis(150),
        "{took:?}"
    );
    assert!(
        report.drained && report.stopped,
        "every event is resolved: {report:?}"
    );
    assert_eq!(report.stats.sent, 0);
    assert_eq!(report.stats.dead_lettered, 7);
    let letters = letters.lock().unwrap();
    assert!(
        letters
            .iter()
            .all(|(r, _)| *r == DeadLetterReason::ShutdownTimeout)
    );
    assert_eq!(letters.iter().map(|(_, n)| n).sum::<usize>(), 7);

    // Closed: later events are refused and counted; shutdown is idempotent.
    assert!(matches!(buffer.enqueue(event(8)), Err(BufferError::Closed)));
    assert_eq!(buffer.stats().rejected, 1);
    let again = buffer.shutdown_blocking(Duration::from_secs(1));
    assert_eq!(again.stats.dead_lettered, 7);
}

#[tokio::test(flavor = "current_thread")]
async fn async_shutdown_is_bounded_on_a_single_threaded_runtime() {
    let never = |_: Batch| std::future::pending::<Result<(), SendError>>();
    let buffer = fast().spawn(never).unwrap();
    buffer.enqueue(event(0)).unwrap();
    let start = Instant::now();
    let report = buffer.shutdown(Duration::from_millis(50)).await;
    assert!(start.elapsed() < Duration::from_millis(900));
    assert_eq!(report.stats.dead_lettered, 1);
}

#[test]
fn dropping_the_last_handle_flushes() {
    let recorder = Recorder::default();
    let buffer = fast()
        .flush_interval(Duration::from_secs(3600))
        .spawn(recorder.sender())
        .unwrap();
    let clone = buffer.clone();
    for i in 0..42 {
        buffer.enqueue(event(i)).unwrap();
    }
    drop(buffer);
    // A clone is still alive: nothing is forced out, the clone still works.
    clone.enqueue(event(42)).unwrap();
    assert!(recorder.events().is_empty());
    drop(clone);
    assert_eq!(recorder.events().len(), 43);
}

#[test]
fn drop_wait_is_bounded() {
    let never = |_: Batch| std::future::pending::<Result<(), SendError>>();
    let buffer = fast()
        .drop_timeout(Duration::from_millis(50))
        .spawn(never)
        .unwrap();
    buffer.enqueue(event(0)).unwrap();
    let start = Instant::now();
    drop(buffer);
    assert!(start.elapsed() < Duration::from_millis(900));
}

#[test]
fn invalid_settings_are_typed_errors() {
    let ok = |_: Batch| std::future::ready(Ok::<(), SendError>(()));
    for builder in [
        EventBuffer::builder().capacity(0),
        EventBuffer::builder().max_batch_size(0),
        EventBuffer::builder().max_batch_size(101),
        EventBuffer::builder().flush_interval(Duration::ZERO),
        EventBuffer::builder().attempt_timeout(Duration::ZERO),
        EventBuffer::builder().retry_backoff(Duration::from_secs(2), Duration::from_secs(1)),
    ] {
        assert!(matches!(
            builder.spawn(ok),
            Err(BufferError::InvalidConfig(_))
        ));
    }
}

#[test]
fn several_batches_are_in_flight_at_once_and_never_more_than_configured() {
    let active = Arc::new(AtomicU32::new(0));
    let peak = Arc::new(AtomicU32::new(0));
    let delivered = Arc::new(AtomicU32::new(0));
    let (a, p, d) = (active.clone(), peak.clone(), delivered.clone());
    let sender = move |batch: Batch| {
        let (a, p, d) = (a.clone(), p.clone(), d.clone());
        async move {
            let now = a.fetch_add(1, Ordering::SeqCst) + 1;
            p.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(30)).await;
            a.fetch_sub(1, Ordering::SeqCst);
            d.fetch_add(batch.len as u32, Ordering::SeqCst);
            Ok(())
        }
    };
    let buffer = fast().max_in_flight(8).spawn(sender).unwrap();
    for i in 0..3_000 {
        buffer.enqueue(event(i)).unwrap();
    }
    let report = buffer.shutdown_blocking(Duration::from_secs(10));
    assert!(report.drained, "{report:?}");
    assert_eq!(delivered.load(Ordering::SeqCst), 3_000);
    // 30 batches of 30 ms each: they overlapped, up to the limit.
    assert_eq!(peak.load(Ordering::SeqCst), 8);
}

#[test]
fn an_outage_is_probed_by_one_batch_at_a_time_then_everything_is_delivered() {
    let down = Arc::new(AtomicBool::new(true));
    let calls = Arc::new(AtomicU32::new(0));
    let recorder = Recorder::default();
    let record = recorder.sender();
    let (down2, calls2) = (down.clone(), calls.clone());
    let sender = move |batch: Batch| {
        calls2.fetch_add(1, Ordering::SeqCst);
        let result = if down2.load(Ordering::SeqCst) {
            Err(SendError::from_status(503, "capture unavailable"))
        } else {
            futures_util::FutureExt::now_or_never(record(batch)).unwrap()
        };
        std::future::ready(result)
    };
    let buffer = fast()
        .max_in_flight(16)
        .max_retries(1_000)
        .retry_backoff(Duration::from_millis(20), Duration::from_millis(20))
        .spawn(sender)
        .unwrap();
    let events: Vec<_> = (0..2_000).map(event).collect();
    let keys = keys_of(&events);
    for e in events {
        buffer.enqueue(e).unwrap();
    }
    std::thread::sleep(Duration::from_millis(400));
    let during = calls.load(Ordering::SeqCst);
    // At most one wave before the first failure came back (16 batches),
    // then one probe per 20 ms backoff step: about 20 in 400 ms. Without
    // the shared backoff, 16 batches would each retry every step (~320).
    assert!(during <= 16 + 30, "{during} calls during the outage");
    down.store(false, Ordering::SeqCst);
    buffer.flush_blocking(Duration::from_secs(10)).unwrap();
    let report = buffer.shutdown_blocking(Duration::from_secs(5));
    assert!(report.drained);
    assert_eq!(report.stats.dead_lettered, 0);
    let mut sent: Vec<_> = recorder
        .events()
        .iter()
        .map(|e| e["idempotency_key"].as_str().unwrap().to_owned())
        .collect();
    sent.sort();
    let mut expected = keys.clone();
    expected.sort();
    assert_eq!(sent, expected, "every event delivered exactly once");
}

#[test]
fn an_outage_longer_than_the_queue_accounts_for_every_event_in_the_sink() {
    let sink = Letters::default();
    let calls = Arc::new(AtomicU32::new(0));
    let calls2 = calls.clone();
    let sender = move |_: Batch| {
        calls2.fetch_add(1, Ordering::SeqCst);
        std::future::ready(Err(SendError::from_status(503, "capture unavailable")))
    };
    let buffer = fast()
        .capacity(1_000)
        .max_retries(2)
        .retry_backoff(Duration::from_millis(1), Duration::from_millis(2))
        .dead_letter(sink.sink())
        .spawn(sender)
        .unwrap();
    let events: Vec<_> = (0..5_000).map(event).collect();
    let keys = keys_of(&events);
    let mut refused = 0;
    for e in events {
        match buffer.enqueue(e) {
            Ok(()) => {}
            Err(BufferError::QueueFull) => refused += 1,
            Err(e) => panic!("{e}"),
        }
    }
    assert!(refused >= 3_000, "{refused}");
    let report = buffer.shutdown_blocking(Duration::from_secs(10));
    assert!(report.drained && report.stopped, "{report:?}");
    let s = report.stats;
    assert_accounted(&s);
    assert_eq!((s.sent, s.queued, s.lost), (0, 0, 0));
    assert_eq!(s.refused, refused);
    assert_eq!(s.enqueued + s.refused, 5_000);
    assert_eq!(s.dead_lettered, 5_000);
    // Every event is in the sink exactly once.
    let mut dead = sink.all();
    dead.sort();
    let mut expected = keys;
    expected.sort();
    assert_eq!(dead, expected);
    assert_eq!(sink.keys(DeadLetterReason::QueueFull).len() as u64, refused);
}

#[test]
fn drop_oldest_under_a_slow_host_accounts_for_every_event() {
    let recorder = Recorder::default();
    let sink = Letters::default();
    let batches = recorder.batches.clone();
    let slow = move |batch: Batch| {
        let batches = batches.clone();
        async move {
            tokio::time::sleep(Duration::from_millis(5)).await;
            batches.lock().unwrap().push(batch.body);
            Ok(())
        }
    };
    let buffer = fast()
        .capacity(2_000)
        .max_in_flight(2)
        .overflow_policy(OverflowPolicy::DropOldest)
        .dead_letter(sink.sink())
        .spawn(slow)
        .unwrap();
    let events: Vec<_> = (0..30_000).map(event).collect();
    let keys = keys_of(&events);
    for e in events {
        buffer.enqueue(e).unwrap();
    }
    let report = buffer.shutdown_blocking(Duration::from_secs(30));
    assert!(report.drained, "{report:?}");
    let s = report.stats;
    assert_accounted(&s);
    assert_eq!((s.enqueued, s.refused, s.lost, s.queued), (30_000, 0, 0, 0));
    assert!(s.displaced > 20_000, "{s:?}");
    assert_eq!(
        sink.keys(DeadLetterReason::Displaced).len() as u64,
        s.displaced
    );
    let sent: Vec<String> = recorder
        .events()
        .iter()
        .map(|e| e["idempotency_key"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(sent.len() as u64, s.sent);
    let mut all: Vec<String> = sent.into_iter().chain(sink.all()).collect();
    all.sort();
    let mut expected = keys;
    expected.sort();
    assert_eq!(
        all, expected,
        "delivered and dead-lettered: each event once"
    );
}

#[test]
fn shutdown_with_a_million_queued_meets_its_deadline_and_dead_letters_all() {
    // A bitset of the events the sink saw, by their (numeric) idempotency
    // key: 1M events in 125 KB.
    const N: usize = 1_000_000;
    let seen = Arc::new(Mutex::new(vec![0u64; N.div_ceil(64)]));
    let seen2 = seen.clone();
    let sink = move |letter: &DeadLetter<'_>| -> std::io::Result<()> {
        let mut seen = seen2.lock().unwrap();
        for e in letter.events.iter() {
            let i: usize = e.idempotency_key().unwrap().parse().unwrap();
            seen[i / 64] |= 1 << (i % 64);
        }
        Ok(())
    };
    let never = |_: Batch| std::future::pending::<Result<(), SendError>>();
    let buffer = EventBuffer::builder()
        .capacity(N)
        .max_queue_bytes(1 << 30)
        .dead_letter(sink)
        .spawn(never)
        .unwrap();
    let key = ApiKey::new(KEY).unwrap();
    let body = TrackBody::builder("e").build().unwrap();
    let started = Instant::now();
    for i in 0..N {
        let event = EventEnvelope::new(key.clone(), body.clone()).with_idempotency_key(
            flagwire_core::events::IdempotencyKey::custom(i.to_string()).unwrap(),
        );
        buffer.enqueue(event).unwrap();
    }
    let queued_in = started.elapsed();
    // Enough for the sink to take them all (the worker keeps back twice
    // its estimate), not enough to wait for the attempts that never end.
    let timeout = Duration::from_secs(5);
    let start = Instant::now();
    let report = buffer.shutdown_blocking(timeout);
    let took = start.elapsed();
    assert!(took <= timeout + Duration::from_millis(100), "{took:?}");
    assert!(report.stopped && report.drained, "{report:?}");
    let s = report.stats;
    assert_accounted(&s);
    assert_eq!(
        (s.enqueued, s.dead_lettered, s.lost, s.queued),
        (N as u64, N as u64, 0, 0)
    );
    let seen = seen.lock().unwrap();
    let count: u32 = seen.iter().map(|w| w.count_ones()).sum();
    assert_eq!(count as usize, N, "every event is in the sink");
    println!("1M events queued in {queued_in:?}; shutdown dead-lettered them in {took:?}");
}

#[test]
fn a_panicking_dead_letter_sink_does_not_stop_the_buffer() {
    let reject = Arc::new(AtomicBool::new(true));
    let reject2 = reject.clone();
    let recorder = Recorder::default();
    let record = recorder.sender();
    let sender = move |batch: Batch| {
        let result = if reject2.load(Ordering::SeqCst) {
            Err(SendError::from_status(400, "bad batch"))
        } else {
            futures_util::FutureExt::now_or_never(record(batch)).unwrap()
        };
        std::future::ready(result)
    };
    let panicking = |_: &DeadLetter<'_>| -> std::io::Result<()> { panic!("sink bug") };
    let buffer = fast().dead_letter(panicking).spawn(sender).unwrap();
    for i in 0..30 {
        buffer.enqueue(event(i)).unwrap();
    }
    // The worker survives the panics: flush returns.
    buffer.flush_blocking(Duration::from_secs(5)).unwrap();
    let stats = buffer.stats();
    assert_eq!((stats.dead_lettered, stats.dead_letter_failures), (30, 30));
    reject.store(false, Ordering::SeqCst);
    for i in 30..40 {
        buffer.enqueue(event(i)).unwrap();
    }
    let report = buffer.shutdown_blocking(Duration::from_secs(5));
    assert!(report.drained && report.stopped);
    assert_eq!(report.stats.sent, 10);
    assert_accounted(&report.stats);
}

#[test]
fn a_panicking_sender_dead_letters_its_batch_and_delivery_goes_on() {
    let calls = Arc::new(AtomicU32::new(0));
    let calls2 = calls.clone();
    let recorder = Recorder::default();
    let record = recorder.sender();
    let sender = move |batch: Batch| {
        let n = calls2.fetch_add(1, Ordering::SeqCst);
        if n == 0 {
            panic!("sender bug before the future");
        }
        let ready = futures_util::FutureExt::now_or_never(record(batch)).unwrap();
        async move {
            if n == 1 {
                panic!("sender bug inside the future");
            }
            ready
        }
    };
    let sink = Letters::default();
    let buffer = fast()
        .max_batch_size(10)
        .max_in_flight(1)
        .dead_letter(sink.sink())
        .spawn(sender)
        .unwrap();
    for i in 0..40 {
        buffer.enqueue(event(i)).unwrap();
    }
    let report = buffer.shutdown_blocking(Duration::from_secs(5));
    assert!(report.drained, "{report:?}");
    assert_eq!(sink.keys(DeadLetterReason::SenderPanicked).len(), 20);
    assert_eq!(report.stats.sent, 20);
    assert_accounted(&report.stats);
}

#[test]
fn a_torn_jsonl_tail_is_terminated_and_replayed_with_reasons() {
    let dir = std::env::temp_dir().join(format!(
        "flagwire-torn-{}-{}",
        std::process::id(),
        fastrand::u64(..)
    ));
    let path = dir.join("dead.jsonl");
    let reject = |_: Batch| std::future::ready(Err(SendError::from_status(400, "no")));
    let buffer = fast()
        .dead_letter(JsonlDeadLetterFile::open(&path).unwrap())
        .spawn(reject)
        .unwrap();
    let first: Vec<_> = (0..3).map(event).collect();
    let first_keys = keys_of(&first);
    for e in first {
        buffer.enqueue(e).unwrap();
    }
    buffer.flush_blocking(Duration::from_secs(5)).unwrap();
    // A crash in the middle of a line.
    {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(br#"{"idempotency_key":"torn","reason":"rej"#)
            .unwrap();
    }
    let second: Vec<_> = (3..5).map(event).collect();
    let second_keys = keys_of(&second);
    for e in second {
        buffer.enqueue(e).unwrap();
    }
    assert!(buffer.shutdown_blocking(Duration::from_secs(5)).drained);
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(
        text.lines().count(),
        6,
        "the torn line stays on its own line"
    );

    let recorder = Recorder::default();
    let sender = recorder.sender();
    let key = ApiKey::new(KEY).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let report = rt
        .block_on(flagwire::events::replay_dead_letters(&path, &key, &sender))
        .unwrap();
    assert_eq!((report.read, report.delivered, report.invalid), (5, 5, 1));
    assert_eq!(report.invalid_lines[0].line, 4);
    assert!(report.invalid_lines[0].reason.contains("not a dead letter"));
    let sent: Vec<_> = recorder
        .events()
        .iter()
        .map(|e| e["idempotency_key"].as_str().unwrap().to_owned())
        .collect();
    let expected: Vec<_> = first_keys.into_iter().chain(second_keys).collect();
    assert_eq!(sent, expected);
    assert!(recorder.events().iter().all(|e| e["api_key"] == KEY));
    // Only the torn line is left; a second replay sends nothing.
    assert_eq!(report.remaining, 1);
    let again = rt
        .block_on(flagwire::events::replay_dead_letters(&path, &key, &sender))
        .unwrap();
    assert_eq!((again.read, again.delivered), (0, 0));
    assert_eq!(recorder.events().len(), 5);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn shutdown_with_the_host_down_waits_one_backoff_sequence_not_one_per_batch() {
    let sink = Letters::default();
    let calls = Arc::new(AtomicU32::new(0));
    let calls2 = calls.clone();
    let sender = move |_: Batch| {
        calls2.fetch_add(1, Ordering::SeqCst);
        std::future::ready(Err(SendError::from_status(503, "down")))
    };
    let buffer = fast()
        .flush_interval(Duration::from_secs(3600))
        .retry_backoff(Duration::from_millis(100), Duration::from_secs(5))
        .dead_letter(sink.sink())
        .spawn(sender)
        .unwrap();
    for i in 0..2_000 {
        buffer.enqueue(event(i)).unwrap();
    }
    let start = Instant::now();
    let report = buffer.shutdown_blocking(Duration::from_secs(30));
    let took = start.elapsed();
    // A first wave of 16 batches fails together: one backoff step (100 ms),
    // then the head batch probes after 200 and 400 ms more and is out of
    // retries: 700 ms, where backing off per failure would reach the 5 s cap.
    assert!(
        took >= Duration::from_millis(600) && took < Duration::from_secs(3),
        "{took:?}"
    );
    assert!(report.drained && report.stopped, "{report:?}");
    assert_eq!(report.stats.dead_lettered, 2_000);
    assert_eq!(sink.keys(DeadLetterReason::RetriesExhausted).len(), 100);
    assert_eq!(sink.keys(DeadLetterReason::HostUnavailable).len(), 1_900);
    assert!(calls.load(Ordering::SeqCst) <= 16 + 3, "{calls:?}");
}
