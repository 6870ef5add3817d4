//! Measures event delivery of the Schematic client against the in-process
//! emulator, and memory while the capture host is down.
//!
//! ```text
//! cargo run --release -p flagwire --example delivery [-- --json]
//! ```
//!
//! 1. Throughput: tracks `EVENTS` events as fast as the queue accepts them
//!    (sleeping 0.5 ms whenever it is full) and shuts down; reports delivered events
//!    per second from the first `track` to the end of the shutdown.
//! 2. Outage: points the capture URL at a closed port and tracks for two
//!    seconds without pause; reports accepted, refused (they go to the
//!    default dead-letter sink, which says so once on standard error), peak
//!    RSS (`VmHWM`, Linux only), which stays bounded by the queue capacity,
//!    and the heap the buffer holds per queued event next to the event's
//!    size on the wire.
//!
//! With `--json` the last line of standard output is one JSON object with
//! the figures, for scripts:
//!
//! ```text
//! {"events":N,"delivered":N,"lost":0,"events_per_sec":F,"outage_seconds":F,
//!  "outage_accepted":N,"outage_dropped":N,"peak_rss_bytes":N,
//!  "queued_bytes_per_event":F,"wire_bytes_per_event":F}
//! ```
//!
//! (on one line). `lost` is `events - delivered`; `peak_rss_bytes` is 0
//! where the peak is unknown (not Linux). The example fails when an event
//! was lost.

use std::time::{Duration, Instant};

use flagwire::Error;
use flagwire::events::BufferError;
use flagwire::schematic::Client;
use flagwire_core::events::{ApiKey, BatchEncoder, EventEnvelope, TrackBody};
use flagwire_mock::MockServer;
use serde_json::json;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const EVENTS: i64 = 200_000;
/// How long the outage phase tracks without pause.
const OUTAGE: Duration = Duration::from_secs(2);

fn body(i: i64) -> TrackBody {
    TrackBody::builder("api-call")
        .company_key("id", "acme")
        .quantity(i)
        .build()
        .expect("a valid body")
}

fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let json = match std::env::args().nth(1).as_deref() {
        None => false,
        Some("--json") => true,
        Some(other) => {
            return Err(format!("unknown argument {other:?}; usage: delivery [--json]").into());
        }
    };
    let server = MockServer::builder()
        .record_requests(0)
        .max_events(1_000)
        .start()
        .await?;
    server.upsert_company(json!({"keys": {"id": "acme"}}))?;
    let client = Client::builder(server.api_key())
        .base_url(server.rest_url())
        .capture_url(server.capture_url())
        .build()?;

    let start = Instant::now();
    let mut waits = 0u64;
    for i in 1..=EVENTS {
        loop {
            match client.track(body(i)) {
                Ok(()) => break,
                Err(Error::Buffer(BufferError::QueueFull)) => {
                    waits += 1;
                    // Give the delivery thread the CPU instead of spinning.
                    tokio::time::sleep(Duration::from_micros(500)).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
    let stats = client.shutdown(Duration::from_secs(60)).await;
    let elapsed = start.elapsed();
    let dropped_while_waiting = stats.buffer.dropped;
    let delivered = stats.buffer.sent;
    let events_per_sec = delivered as f64 / elapsed.as_secs_f64();
    println!(
        "throughput: {} events delivered in {} batches in {:.3} s = {:.0} events/s \
         (queue-full retries {waits}, refused {dropped_while_waiting}, dead-lettered {})",
        stats.buffer.sent,
        stats.buffer.batches_sent,
        elapsed.as_secs_f64(),
        events_per_sec,
        stats.buffer.dead_lettered,
    );
    let rss_before = peak_rss_kib();
    server.stop().await;

    // Outage: nothing listens on the capture port.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let down = Client::builder("sch_dev_mock")
        .offline(false)
        .capture_url(format!("http://{closed}"))
        .build()?;
    let outage_start = Instant::now();
    let until = outage_start + OUTAGE;
    let mut i = 0i64;
    while Instant::now() < until {
        for _ in 0..1_000 {
            i += 1;
            let _ = down.track(body(i));
        }
    }
    let outage_seconds = outage_start.elapsed().as_secs_f64();
    let outage = down.event_stats();
    let peak = peak_rss_kib();
    // Batches in flight are counted as queued but not in the buffer's
    // memory: at most 16 of 100 events, a rounding error here.
    let queued_bytes_per_event =
        outage.buffer.memory_bytes as f64 / outage.buffer.queued.max(1) as f64;
    let wire_bytes_per_event = {
        let key = ApiKey::new("sch_dev_mock")?;
        let batch: Vec<_> = (0..100)
            .map(|i| EventEnvelope::new(key.clone(), body(i)))
            .collect();
        BatchEncoder::new().encode(&batch)?.len() as f64 / 100.0
    };
    println!(
        "outage: {i} tracked in {outage_seconds:.1} s, {} accepted, {} refused (queue full), {} queued; \
         peak RSS {} KiB after the throughput run, {} KiB after the outage; \
         {queued_bytes_per_event:.0} bytes per queued event ({wire_bytes_per_event:.0} on the wire)",
        outage.buffer.enqueued,
        outage.buffer.refused,
        outage.buffer.queued,
        rss_before.map_or("n/a".to_owned(), |v| v.to_string()),
        peak.map_or("n/a".to_owned(), |v| v.to_string()),
    );
    down.shutdown(Duration::from_millis(200)).await;

    let events = EVENTS as u64;
    let lost = events.saturating_sub(delivered);
    if json {
        // Written by hand to keep the keys in this order.
        let figures = format!(
            "{{\"events\":{events},\"delivered\":{delivered},\"lost\":{lost},\
             \"events_per_sec\":{events_per_sec:.1},\"outage_seconds\":{outage_seconds:.3},\
             \"outage_accepted\":{},\"outage_dropped\":{},\"peak_rss_bytes\":{},\
             \"queued_bytes_per_event\":{queued_bytes_per_event:.1},\
             \"wire_bytes_per_event\":{wire_bytes_per_event:.1}}}",
            outage.buffer.enqueued,
            outage.buffer.dropped,
            peak.map_or(0, |kib| kib * 1024),
        );
        println!("{figures}");
    }
    if lost > 0 {
        return Err(format!("{lost} of {events} events were not delivered").into());
    }
    Ok(())
}
