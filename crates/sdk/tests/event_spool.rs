//! The event buffer's durable spool: restarts, acknowledgements, torn
//! tails, the size bound and its overflow policies, the directory lock.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use flagwire::events::{
    Batch, BatchSender, BufferError, BufferStats, DeadLetter, DeadLetterReason, EventBuffer,
    EventBufferBuilder, FsyncPolicy, OverflowPolicy, SendError, SpoolConfig, SpoolError,
};
use flagwire_core::events::{ApiKey, EventEnvelope, TrackBody};
use serde_json::Value;

const KEY: &str = "sch_dev_spool_tests";

fn key() -> ApiKey {
    ApiKey::new(KEY).unwrap()
}

fn event(key: &ApiKey, i: usize) -> EventEnvelope {
    let body = TrackBody::builder("api-call")
        .company_key("id", "acme")
        .quantity(i as i64)
        .build()
        .unwrap();
    EventEnvelope::new(key.clone(), body)
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "flagwire-spool-{name}-{}-{}",
        std::process::id(),
        fastrand::u64(..)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn spool(dir: &Path) -> SpoolConfig {
    SpoolConfig::new(dir)
        .commit_interval(Duration::from_millis(10))
        .fsync(FsyncPolicy::Never)
}

fn buffer(dir: &Path, key: &ApiKey) -> EventBufferBuilder {
    EventBuffer::builder()
        .flush_interval(Duration::from_millis(10))
        .retry_backoff(Duration::from_millis(1), Duration::from_millis(5))
        .api_key(key.clone())
        .spool(spool(dir))
}

/// Records delivered batches; fails them all while `down`.
#[derive(Clone, Default)]
struct Host {
    batches: Arc<Mutex<Vec<Bytes>>>,
    down: Arc<AtomicBool>,
    calls: Arc<AtomicU32>,
}

impl Host {
    fn down() -> Self {
        let host = Host::default();
        host.down.store(true, Ordering::SeqCst);
        host
    }

    fn sender(&self) -> impl BatchSender + use<> {
        let (batches, down, calls) = (self.batches.clone(), self.down.clone(), self.calls.clone());
        move |batch: Batch| {
            calls.fetch_add(1, Ordering::SeqCst);
            let result = if down.load(Ordering::SeqCst) {
                Err(SendError::from_status(503, "down"))
            } else {
                batches.lock().unwrap().push(batch.body);
                Ok(())
            };
            std::future::ready(result)
        }
    }

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

    fn keys(&self) -> Vec<String> {
        self.events()
            .iter()
            .map(|e| e["idempotency_key"].as_str().unwrap().to_owned())
            .collect()
    }
}

fn keys_of(events: &[EventEnvelope]) -> Vec<String> {
    events
        .iter()
        .map(|e| e.idempotency_key().to_string())
        .collect()
}

fn assert_accounted(s: &BufferStats) {
    assert_eq!(
        s.enqueued + s.refused,
        s.sent + s.dead_lettered + s.lost + s.queued,
        "{s:?}"
    );
}

/// The segment files of the one key directory under `dir`.
fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for sub in std::fs::read_dir(dir).unwrap() {
        let sub = sub.unwrap().path();
        if sub.is_dir() {
            for f in std::fs::read_dir(&sub).unwrap() {
                let f = f.unwrap().path();
                if f.extension().is_some_and(|e| e == "log") {
                    out.push(f);
                }
            }
        }
    }
    out.sort();
    out
}

#[test]
fn spooled_events_survive_a_restart_with_their_keys_and_order() {
    let dir = temp_dir("restart");
    let key = key();
    let down = Host::down();
    let first = buffer(&dir, &key).spawn(down.sender()).unwrap();
    let events: Vec<_> = (0..250).map(|i| event(&key, i)).collect();
    let keys = keys_of(&events);
    for e in events {
        first.enqueue(e).unwrap();
    }
    let report = first.shutdown_blocking(Duration::from_millis(300));
    // Retryable failures never dead-letter spooled events: they wait.
    assert!(report.stopped && !report.drained, "{report:?}");
    assert_eq!(report.left_in_spool, 250);
    assert_eq!(report.stats.dead_lettered, 0);
    assert_accounted(&report.stats);
    drop(first);

    let up = Host::default();
    let second = buffer(&dir, &key).spawn(up.sender()).unwrap();
    assert_eq!(second.stats().recovered, 250);
    second.flush_blocking(Duration::from_secs(5)).unwrap();
    assert!(up.keys() == keys, "same keys, same order");
    let report = second.shutdown_blocking(Duration::from_secs(5));
    assert!(report.drained, "{report:?}");
    assert_eq!((report.stats.sent, report.left_in_spool), (250, 0));
    assert_accounted(&report.stats);
    drop(second);
    // Everything acknowledged: nothing left, the segments are gone.
    assert!(segments(&dir).is_empty(), "{:?}", segments(&dir));
    let third = buffer(&dir, &key).spawn(up.sender()).unwrap();
    assert_eq!(third.stats().recovered, 0);
    drop(third);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn acknowledged_events_are_not_sent_again_after_a_restart() {
    let dir = temp_dir("acks");
    let key = key();
    let host = Host::default();
    let first = buffer(&dir, &key).spawn(host.sender()).unwrap();
    let events: Vec<_> = (0..200).map(|i| event(&key, i)).collect();
    let keys = keys_of(&events);
    for e in events {
        first.enqueue(e).unwrap();
    }
    first.flush_blocking(Duration::from_secs(5)).unwrap();
    // The host goes down; the rest stays in the spool.
    host.down.store(true, Ordering::SeqCst);
    let rest: Vec<_> = (200..300).map(|i| event(&key, i)).collect();
    let rest_keys = keys_of(&rest);
    for e in rest {
        first.enqueue(e).unwrap();
    }
    let report = first.shutdown_blocking(Duration::from_millis(300));
    assert_eq!((report.stats.sent, report.left_in_spool), (200, 100));
    drop(first);

    host.down.store(false, Ordering::SeqCst);
    let second = buffer(&dir, &key).spawn(host.sender()).unwrap();
    assert_eq!(second.stats().recovered, 100);
    let report = second.shutdown_blocking(Duration::from_secs(5));
    assert!(report.drained);
    let sent = host.keys();
    assert_eq!(sent.len(), 300, "nothing was sent twice");
    assert!(sent[..200] == keys[..200]);
    assert!(sent[200..] == rest_keys[..]);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_torn_tail_is_skipped_counted_and_never_merged_with_new_events() {
    let dir = temp_dir("torn");
    let key = key();
    let down = Host::down();
    let first = buffer(&dir, &key).spawn(down.sender()).unwrap();
    let events: Vec<_> = (0..10).map(|i| event(&key, i)).collect();
    let keys = keys_of(&events);
    for e in events {
        first.enqueue(e).unwrap();
    }
    assert_eq!(
        first
            .shutdown_blocking(Duration::from_millis(200))
            .left_in_spool,
        10
    );
    drop(first);
    // A crash in the middle of writing a record: a length, a CRC and half a
    // payload.
    let segs = segments(&dir);
    assert_eq!(segs.len(), 1);
    {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&segs[0])
            .unwrap();
        f.write_all(&200u32.to_le_bytes()).unwrap();
        f.write_all(&[1, 2, 3, 4]).unwrap();
        f.write_all(br#"{"type":"track","bo"#).unwrap();
    }
    let second = buffer(&dir, &key).spawn(down.sender()).unwrap();
    let stats = second.stats();
    assert_eq!((stats.recovered, stats.torn_tails), (10, 1));
    let more: Vec<_> = (10..15).map(|i| event(&key, i)).collect();
    let more_keys = keys_of(&more);
    for e in more {
        second.enqueue(e).unwrap();
    }
    assert_eq!(
        second
            .shutdown_blocking(Duration::from_millis(200))
            .left_in_spool,
        15
    );
    drop(second);
    // New events went to a new segment.
    assert_eq!(segments(&dir).len(), 2);

    let up = Host::default();
    let third = buffer(&dir, &key).spawn(up.sender()).unwrap();
    assert_eq!(third.stats().recovered, 15);
    assert!(third.shutdown_blocking(Duration::from_secs(5)).drained);
    let expected: Vec<_> = keys.into_iter().chain(more_keys).collect();
    assert!(up.keys() == expected, "every event once, in order");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_damaged_record_ends_its_segment_but_the_records_before_it_are_delivered() {
    let dir = temp_dir("damaged");
    let key = key();
    let down = Host::down();
    let first = buffer(&dir, &key).spawn(down.sender()).unwrap();
    for i in 0..20 {
        first.enqueue(event(&key, i)).unwrap();
    }
    first.shutdown_blocking(Duration::from_millis(200));
    drop(first);
    let segs = segments(&dir);
    let mut bytes = std::fs::read(&segs[0]).unwrap();
    // Flip a byte in the middle of the file: the record holding it fails
    // its CRC.
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x55;
    std::fs::write(&segs[0], &bytes).unwrap();
    let up = Host::default();
    let second = buffer(&dir, &key).spawn(up.sender()).unwrap();
    let stats = second.stats();
    assert_eq!(stats.torn_tails, 1);
    assert!(stats.recovered > 0 && stats.recovered < 20, "{stats:?}");
    assert!(second.shutdown_blocking(Duration::from_secs(5)).drained);
    let delivered: Vec<i64> = up
        .events()
        .iter()
        .map(|e| e["body"]["quantity"].as_i64().unwrap())
        .collect();
    assert_eq!(delivered, (0..stats.recovered as i64).collect::<Vec<_>>());
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_spool_is_used_by_one_buffer_at_a_time_per_key() {
    let dir = temp_dir("lock");
    let key = key();
    let host = Host::default();
    let first = buffer(&dir, &key).spawn(host.sender()).unwrap();
    match buffer(&dir, &key).spawn(host.sender()) {
        Err(BufferError::Spool(SpoolError::Locked(_))) => {}
        other => panic!("{other:?}"),
    }
    // Another key has a directory of its own.
    let other = ApiKey::new("sch_dev_other").unwrap();
    let second = buffer(&dir, &other).spawn(host.sender()).unwrap();
    // Events of another key are refused by a spooling buffer.
    assert!(matches!(
        first.enqueue(event(&other, 1)),
        Err(BufferError::ApiKeyMismatch)
    ));
    drop((first, second));
    // Released with the buffer.
    let again = buffer(&dir, &key).spawn(host.sender()).unwrap();
    drop(again);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_spool_needs_its_key_and_sane_settings() {
    let dir = temp_dir("config");
    let ok = |_: Batch| std::future::ready(Ok::<(), SendError>(()));
    for builder in [
        EventBuffer::builder().spool(SpoolConfig::new(&dir)),
        buffer(&dir, &key()).spool(SpoolConfig::new(&dir).commit_interval(Duration::ZERO)),
        buffer(&dir, &key()).spool(SpoolConfig::new(&dir).segment_bytes(100)),
        buffer(&dir, &key()).spool(SpoolConfig::new(&dir).max_bytes(4096).segment_bytes(8192)),
    ] {
        assert!(matches!(
            builder.spawn(ok),
            Err(BufferError::InvalidConfig(_))
        ));
    }
    std::fs::remove_dir_all(dir).unwrap();
}

/// Every dead-lettered event's reason and quantity.
type Seen = Arc<Mutex<Vec<(DeadLetterReason, i64)>>>;

fn collecting_sink() -> (Seen, impl flagwire::events::DeadLetterSink) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    let sink = move |letter: &DeadLetter<'_>| -> std::io::Result<()> {
        let mut seen = seen2.lock().unwrap();
        for e in letter.events.iter() {
            let v = e.to_value().unwrap();
            seen.push((letter.reason, v["body"]["quantity"].as_i64().unwrap()));
        }
        Ok(())
    };
    (seen, sink)
}

#[test]
fn a_full_spool_refuses_new_events_into_the_sink() {
    let dir = temp_dir("full-newest");
    let key = key();
    let (seen, sink) = collecting_sink();
    let down = Host::down();
    let buffer = buffer(&dir, &key)
        .spool(spool(&dir).max_bytes(16 * 1024).segment_bytes(4096))
        .dead_letter(sink)
        .spawn(down.sender())
        .unwrap();
    let mut refused = Vec::new();
    for i in 0..1_000 {
        if let Err(e) = buffer.enqueue(event(&key, i)) {
            assert!(matches!(e, BufferError::QueueFull), "{e}");
            refused.push(i as i64);
        }
        if i % 50 == 0 {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    let report = buffer.shutdown_blocking(Duration::from_millis(500));
    let s = report.stats;
    assert!(s.refused > 500, "{s:?}");
    assert_eq!(s.refused as usize, refused.len());
    assert_accounted(&s);
    let seen = seen.lock().unwrap();
    assert!(seen.iter().all(|(r, _)| *r == DeadLetterReason::QueueFull));
    assert_eq!(seen.iter().map(|(_, q)| *q).collect::<Vec<_>>(), refused);
    // What was accepted is in the spool, within its bound.
    assert_eq!(report.left_in_spool, s.enqueued);
    let on_disk: u64 = segments(&dir)
        .iter()
        .map(|p| p.metadata().unwrap().len())
        .sum();
    assert!(on_disk <= 16 * 1024 + 4096, "{on_disk}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_full_spool_displaces_its_oldest_events_into_the_sink_under_drop_oldest() {
    let dir = temp_dir("full-oldest");
    let key = key();
    let (seen, sink) = collecting_sink();
    let host = Host::down();
    let buffer = buffer(&dir, &key)
        .spool(spool(&dir).max_bytes(16 * 1024).segment_bytes(4096))
        .overflow_policy(OverflowPolicy::DropOldest)
        .dead_letter(sink)
        .spawn(host.sender())
        .unwrap();
    for i in 0..1_000 {
        buffer.enqueue(event(&key, i)).unwrap();
        if i % 50 == 0 {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    std::thread::sleep(Duration::from_millis(50));
    host.down.store(false, Ordering::SeqCst);
    let report = buffer.shutdown_blocking(Duration::from_secs(5));
    assert!(report.drained, "{report:?}");
    let s = report.stats;
    assert_accounted(&s);
    assert_eq!((s.enqueued, s.refused), (1_000, 0));
    assert!(s.displaced > 500, "{s:?}");
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len() as u64, s.displaced);
    assert!(seen.iter().all(|(r, _)| *r == DeadLetterReason::Displaced));
    // The oldest went to the sink, the newest were delivered: each once.
    let mut all: Vec<i64> = seen.iter().map(|(_, q)| *q).collect();
    let delivered: Vec<i64> = host
        .events()
        .iter()
        .map(|e| e["body"]["quantity"].as_i64().unwrap())
        .collect();
    assert!(delivered.iter().max() == Some(&999));
    all.extend(&delivered);
    all.sort_unstable();
    assert_eq!(all, (0..1_000).collect::<Vec<_>>());
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn flush_commits_and_delivers_at_once() {
    let dir = temp_dir("flush");
    let key = key();
    let host = Host::default();
    let buffer = EventBuffer::builder()
        .flush_interval(Duration::from_secs(3600))
        .api_key(key.clone())
        .spool(SpoolConfig::new(&dir).commit_interval(Duration::from_secs(3600)))
        .spawn(host.sender())
        .unwrap();
    for i in 0..5 {
        buffer.enqueue(event(&key, i)).unwrap();
    }
    buffer.flush_blocking(Duration::from_secs(5)).unwrap();
    assert_eq!(host.keys().len(), 5);
    assert_eq!(buffer.stats().committed, 5);
    assert!(buffer.shutdown_blocking(Duration::from_secs(5)).drained);
    std::fs::remove_dir_all(dir).unwrap();
}
