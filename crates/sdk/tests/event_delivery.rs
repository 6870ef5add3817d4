//! Events through the Schematic client against the emulator over loopback:
//! per-event options on the wire, typed inference events, dropping the
//! client inside a single-threaded runtime, dead-letter replay, and the
//! spool across a restart of the client.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use flagwire::events::{JsonlDeadLetterFile, SpoolConfig};
use flagwire::schematic::{Client, ClientBuilder};
use flagwire_core::events::{EventOptions, IdentifyBody, InferenceBody, TrackBody};
use flagwire_mock::{Host, MockServer};
use serde_json::{Value, json};
use time::macros::datetime;

fn client(server: &MockServer) -> ClientBuilder {
    Client::builder(server.api_key())
        .base_url(server.rest_url())
        .capture_url(server.capture_url())
        .events(|e| {
            e.flush_interval(Duration::from_millis(20))
                .retry_backoff(Duration::from_millis(1), Duration::from_millis(5))
        })
}

fn track(quantity: i64) -> TrackBody {
    TrackBody::builder("api-call")
        .company([("id", "acme")])
        .quantity(quantity)
        .build()
        .unwrap()
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "flagwire-delivery-{name}-{}-{}",
        std::process::id(),
        fastrand::u64(..)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Every event the capture host was sent, in order, as JSON (duplicates
/// included; the API key redacted).
fn wire_events(server: &MockServer) -> Vec<Value> {
    server
        .requests()
        .iter()
        .filter(|r| r.host == Host::Capture && r.path == "/batch")
        .flat_map(|r| r.json().unwrap()["events"].as_array().unwrap().clone())
        .collect()
}

#[tokio::test]
async fn per_event_options_and_typed_bodies_reach_the_capture_host() {
    let server = MockServer::start().await.unwrap();
    server
        .upsert_company(json!({"keys": {"id": "acme"}}))
        .unwrap();
    let client = client(&server).build().unwrap();
    client
        .track_with(
            TrackBody::builder("credits")
                .company([("id", "acme")])
                .quantity(5)
                .reservation_id("res_1")
                .build()
                .unwrap(),
            EventOptions::new().idempotency_key("lease-reservation:res_1"),
        )
        .unwrap();
    client
        .identify_with(
            IdentifyBody::builder()
                .keys([("email", "ann@acme.test")])
                .traits([("role", "admin")])
                .build()
                .unwrap(),
            EventOptions::new()
                .sent_at(datetime!(2025-06-01 12:00 UTC))
                .trusted_client_clock(true),
        )
        .unwrap();
    client
        .track_with(
            track(7),
            EventOptions::new().backfill_at(datetime!(2024-01-02 03:04:05 UTC)),
        )
        .unwrap();
    client
        .inference(
            InferenceBody::builder("anthropic", "claude-sonnet-4")
                .company([("id", "acme")])
                .input_tokens(1_200)
                .output_tokens(350)
                .build()
                .unwrap(),
        )
        .unwrap();
    // A bad option is a typed error, and nothing is queued.
    let err = client
        .track_with(track(1), EventOptions::new().idempotency_key(""))
        .unwrap_err();
    assert!(matches!(err, flagwire::Error::Event(_)), "{err}");

    let report = client.shutdown(Duration::from_secs(5)).await;
    assert!(report.drained && report.stopped, "{report:?}");
    assert_eq!(report.buffer.sent, 4);
    let wire = wire_events(&server);
    assert_eq!(wire.len(), 4);
    assert_eq!(wire[0]["idempotency_key"], "lease-reservation:res_1");
    assert_eq!(wire[0]["body"]["reservation_id"], "res_1");
    assert_eq!(wire[1]["sent_at"], "2025-06-01T12:00:00Z");
    assert_eq!(wire[1]["trusted_client_clock"], true);
    assert!(wire[1].get("backfill").is_none());
    assert_eq!(wire[2]["sent_at"], "2024-01-02T03:04:05Z");
    assert_eq!(
        (&wire[2]["trusted_client_clock"], &wire[2]["backfill"]),
        (&json!(true), &json!(true))
    );
    assert_eq!(wire[3]["type"], "inference");
    assert_eq!(wire[3]["body"]["output_tokens"], 350);
    // The emulator accepted all four (it checks backfill needs a trusted clock).
    assert_eq!(server.events().len(), 4);
}

#[test]
fn dropping_the_client_inside_a_current_thread_runtime_never_blocks_it() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        // The emulator runs on this very runtime: a drop that blocked the
        // thread would keep it from answering.
        let server = MockServer::start().await.unwrap();
        server
            .upsert_company(json!({"keys": {"id": "acme"}}))
            .unwrap();
        let client = client(&server).build().unwrap();
        for q in 1..=1_050 {
            client.track(track(q)).unwrap();
        }
        let start = Instant::now();
        drop(client);
        let took = start.elapsed();
        assert!(
            took < Duration::from_millis(50),
            "drop blocked for {took:?}"
        );
        // The delivery thread finishes on its own while the runtime runs.
        let until = Instant::now() + Duration::from_secs(10);
        while server.events().len() < 1_050 && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let got: BTreeSet<i64> = server.events().iter().map(|e| e.quantity).collect();
        assert_eq!(got, (1..=1_050).collect());
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_are_replayed_through_the_client_exactly_once() {
    let server = MockServer::start().await.unwrap();
    server
        .upsert_company(json!({"keys": {"id": "acme"}}))
        .unwrap();
    let dir = temp_dir("replay");
    let path = dir.join("dead.jsonl");
    let client = client(&server)
        .events(|e| {
            e.flush_interval(Duration::from_millis(20))
                .max_retries(1)
                .retry_backoff(Duration::from_millis(1), Duration::from_millis(2))
        })
        .dead_letter(JsonlDeadLetterFile::open(&path).unwrap())
        .build()
        .unwrap();
    // Every capture request fails while the host is "down".
    server
        .inject(
            Host::Capture,
            http::Method::POST,
            "/batch",
            std::iter::repeat_n(flagwire_mock::Fault::status(503), 4),
        )
        .unwrap();
    for q in 1..=150 {
        client.track(track(q)).unwrap();
    }
    client.flush().await.unwrap();
    let stats = client.event_stats().buffer;
    assert_eq!((stats.sent, stats.dead_lettered), (0, 150), "{stats:?}");
    assert!(server.events().is_empty());
    assert!(
        !std::fs::read_to_string(&path)
            .unwrap()
            .contains(server.api_key())
    );

    let report = client.replay_dead_letters(&path).await.unwrap();
    assert_eq!(
        (report.read, report.delivered, report.remaining),
        (150, 150, 0)
    );
    // In the order of the file (batches fail in parallel), each once.
    let mut got: Vec<i64> = server.events().iter().map(|e| e.quantity).collect();
    got.sort_unstable();
    assert_eq!(got, (1..=150).collect::<Vec<_>>());
    // The replay sent the keys the events were queued with.
    let wire = wire_events(&server);
    let keys: BTreeSet<&str> = wire
        .iter()
        .map(|e| e["idempotency_key"].as_str().unwrap())
        .collect();
    assert_eq!(keys.len(), 150);
    let again = client.replay_dead_letters(&path).await.unwrap();
    assert_eq!((again.read, again.delivered), (0, 0));
    assert_eq!(server.events().len(), 150);
    client.shutdown(Duration::from_secs(5)).await;
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_spool_keeps_events_across_a_restart() {
    let server = MockServer::start().await.unwrap();
    server
        .upsert_company(json!({"keys": {"id": "acme"}}))
        .unwrap();
    let dir = temp_dir("spool");
    // A capture host that is not there.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let down = Client::builder(server.api_key())
        .base_url(server.rest_url())
        .capture_url(&closed_url)
        .events(|e| {
            e.spool(SpoolConfig::new(&dir).commit_interval(Duration::from_millis(10)))
                .retry_backoff(Duration::from_millis(1), Duration::from_millis(5))
        })
        .build()
        .unwrap();
    for q in 1..=120 {
        down.track(track(q)).unwrap();
    }
    let report = down.shutdown(Duration::from_millis(300)).await;
    assert!(report.stopped && !report.drained, "{report:?}");
    assert_eq!(report.left_in_spool, 120);
    drop(down);

    let up = client(&server)
        .events(|e| e.spool(SpoolConfig::new(&dir).commit_interval(Duration::from_millis(10))))
        .build()
        .unwrap();
    assert_eq!(up.event_stats().buffer.recovered, 120);
    let report = up.shutdown(Duration::from_secs(5)).await;
    assert!(report.drained, "{report:?}");
    // Batches travel in parallel: each in order, all of them once.
    let mut got: Vec<i64> = server.events().iter().map(|e| e.quantity).collect();
    got.sort_unstable();
    assert_eq!(got, (1..=120).collect::<Vec<_>>());
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn offline_per_event_calls_are_counted_and_discarded() {
    let client = Client::builder("sch_dev_offline")
        .offline(true)
        .build()
        .unwrap();
    client
        .track_with(track(1), EventOptions::new().idempotency_key("k"))
        .unwrap();
    client
        .inference(
            InferenceBody::builder("p", "m")
                .company([("id", "acme")])
                .input_tokens(1)
                .output_tokens(1)
                .build()
                .unwrap(),
        )
        .unwrap();
    assert_eq!(client.event_stats().discarded_offline, 2);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let report = rt.block_on(client.shutdown(Duration::from_secs(1)));
    assert!(report.drained && report.stopped);
    assert_eq!(report.discarded_offline, 2);
    assert!(matches!(
        rt.block_on(client.replay_dead_letters("/nonexistent")),
        Err(flagwire::Error::Offline)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capture_latency_delays_answers_but_not_parallel_batches() {
    let server = MockServer::builder()
        .capture_latency(Duration::from_millis(200))
        .start()
        .await
        .unwrap();
    server
        .upsert_company(json!({"keys": {"id": "acme"}}))
        .unwrap();
    let client = client(&server).build().unwrap();
    let start = Instant::now();
    for q in 1..=800 {
        client.track(track(q)).unwrap();
    }
    client.flush().await.unwrap();
    let took = start.elapsed();
    // Eight batches at 200 ms each, in flight together: one round trip,
    // not eight.
    assert!(
        took >= Duration::from_millis(200) && took < Duration::from_millis(1_000),
        "{took:?}"
    );
    assert_eq!(server.events().len(), 800);
    client.shutdown(Duration::from_secs(5)).await;
}

#[test]
fn the_default_queue_absorbs_a_tight_loop_of_100_000_tracks_compactly() {
    // A capture host that never answers: nothing leaves the queue.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let client = Client::builder("sch_dev_burst")
        .capture_url(&url)
        .build()
        .unwrap();
    let body = track(1);
    for _ in 0..100_000 {
        client
            .track(body.clone())
            .expect("the default queue has room");
    }
    let stats = client.event_stats().buffer;
    assert_eq!((stats.enqueued, stats.refused), (100_000, 0), "{stats:?}");
    // About the wire size per event (~200 bytes for this one), far from
    // the ~1.45 KB a queued event used to cost.
    let per_event = stats.memory_bytes as f64 / stats.queued as f64;
    assert!(per_event < 400.0, "{per_event} bytes per queued event");
    drop(listener);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let report = rt.block_on(client.shutdown(Duration::from_secs(3)));
    assert!(report.stopped, "{report:?}");
    assert_eq!(
        report.buffer.enqueued,
        report.buffer.sent + report.buffer.dead_lettered
    );
}
