//! Event delivery of the Schematic client through outages, full queues and
//! usage-based flags, against `flagwire-mock` over loopback.

use std::collections::BTreeSet;
use std::time::Duration;

use flagwire::Context;
use flagwire::Error;
use flagwire::events::{BufferError, JsonlDeadLetterFile, OverflowPolicy};
use flagwire::schematic::{CheckOptions, CheckSource, Client, ClientBuilder};
use flagwire_core::events::{Keys, TrackBody};
use flagwire_mock::{Fault, Host, MockServer};
use http::Method;
use serde_json::{Value, json};

fn client(server: &MockServer) -> ClientBuilder {
    Client::builder(server.api_key())
        .base_url(server.rest_url())
        .capture_url(server.capture_url())
        .max_retries(0)
}

fn track(quantity: i64) -> TrackBody {
    TrackBody::builder("api-call")
        .company_key("id", "acme")
        .quantity(quantity)
        .build()
        .unwrap()
}

fn temp_file(name: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!(
        "flagwire-e2e-{}-{name}-{}.jsonl",
        std::process::id(),
        unique_suffix()
    ));
    let _ = std::fs::remove_file(&path);
    path
}

fn unique_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capture_outage_dead_letters_exactly_the_undelivered_events() {
    let server = MockServer::start().await.unwrap();
    server
        .upsert_company(json!({"keys": {"id": "acme"}}))
        .unwrap();
    // The first batch fails on its first attempt and all three retries.
    server
        .inject(
            Host::Capture,
            Method::POST,
            "/batch",
            [
                Fault::status(503),
                Fault::status(503),
                Fault::DropConnection,
                Fault::status(500),
            ],
        )
        .unwrap();
    let path = temp_file("dead");
    let client = client(&server)
        .events(|e| {
            // One batch at a time, so the four faults all hit the first one.
            e.flush_interval(Duration::from_millis(20))
                .max_in_flight(1)
                .retry_backoff(Duration::from_millis(1), Duration::from_millis(5))
        })
        .dead_letter(JsonlDeadLetterFile::open(&path).unwrap())
        .build()
        .unwrap();
    for q in 1..=250 {
        client.track(track(q)).unwrap();
    }
    let stats = client.shutdown(Duration::from_secs(10)).await;
    assert_eq!(stats.buffer.enqueued, 250);
    assert_eq!(stats.buffer.retried, 3);
    assert!(stats.buffer.dead_lettered > 0);
    assert_eq!(stats.buffer.sent + stats.buffer.dead_lettered, 250);

    let delivered: BTreeSet<i64> = server
        .events()
        .iter()
        .map(|e| e.body["quantity"].as_i64().unwrap())
        .collect();
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let dead: BTreeSet<i64> = lines
        .iter()
        .map(|l| l["event"]["body"]["quantity"].as_i64().unwrap())
        .collect();
    assert_eq!(lines.len() as u64, stats.buffer.dead_lettered);
    assert_eq!(dead.len(), lines.len(), "each dead letter once");
    assert!(delivered.is_disjoint(&dead));
    assert_eq!(delivered.len() + dead.len(), 250);
    assert_eq!(delivered.union(&dead).count(), 250);
    // The file never holds the key.
    assert!(!text.contains(server.api_key()));
    assert!(lines.iter().all(|l| l["reason"] == "retries_exhausted"));
    let _ = std::fs::remove_file(&path);
}

#[tokio::test]
async fn a_full_queue_refuses_new_events_and_counts_them() {
    let server = MockServer::start().await.unwrap();
    server
        .upsert_company(json!({"keys": {"id": "acme"}}))
        .unwrap();
    let client = client(&server)
        .events(|e| {
            e.capacity(10)
                .flush_interval(Duration::from_secs(60))
                .overflow_policy(OverflowPolicy::DropNewest)
        })
        .build()
        .unwrap();
    let mut refused = 0;
    for q in 1..=15 {
        match client.track(track(q)) {
            Ok(()) => {}
            Err(Error::Buffer(BufferError::QueueFull)) => refused += 1,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(refused, 5);
    let stats = client.shutdown(Duration::from_secs(5)).await;
    assert_eq!(stats.buffer.dropped, 5);
    assert_eq!(stats.buffer.sent, 10);
    let got: BTreeSet<i64> = server
        .events()
        .iter()
        .map(|e| e.body["quantity"].as_i64().unwrap())
        .collect();
    assert_eq!(got, (1..=10).collect());
    // After shutdown events are refused, not silently lost.
    assert!(matches!(
        client.track(track(99)),
        Err(Error::Buffer(BufferError::Closed))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tracked_usage_flips_a_metric_flag() {
    let server = MockServer::start().await.unwrap();
    server
        .upsert_company(json!({"keys": {"id": "acme"}}))
        .unwrap();
    server
        .create_flag(
            json!({"key": "api-access", "name": "API access", "description": "",
                            "flag_type": "boolean", "default_value": false}),
        )
        .unwrap();
    server
        .set_flag_rules(
            "api-access",
            json!([{"name": "under quota", "priority": 1, "value": true, "rule_type": "standard",
                    "conditions": [{"condition_type": "metric", "operator": "lt", "resource_ids": [],
                                    "event_subtype": "api-call", "metric_value": 10,
                                    "metric_period": "all_time"}],
                    "condition_groups": []}]),
        )
        .unwrap();
    let client = client(&server)
        .disable_cache()
        .events(|e| e.flush_interval(Duration::from_millis(20)))
        .build()
        .unwrap();
    let acme = Keys::from([("id".to_owned(), "acme".to_owned())]);
    let before = client
        .check_flag_detailed("api-access", Context::company(&acme))
        .await;
    assert!(before.value);
    assert_eq!(before.source, CheckSource::Api);
    assert!(before.rule_id.is_some());

    client.track(track(4)).unwrap();
    client.track(track(6)).unwrap();
    client.flush().await.unwrap();
    let after = client
        .check_flag_with(
            "api-access",
            Context::company(&acme),
            CheckOptions::new().default(true),
        )
        .await;
    assert!(!after.value, "10 calls reach the quota: {after:?}");
    assert_eq!(after.source, CheckSource::Api);
    client.shutdown(Duration::from_secs(5)).await;
}
