//! Events over REST and the capture host, and their effects.

mod common;

use common::{Api, data, error};
use flagwire_mock::{Host, MockServer, REDACTED};
use serde_json::json;

#[tokio::test]
async fn rest_events_and_batches() {
    let server = MockServer::start().await.unwrap();
    let api = Api::rest(&server);
    data(
        api.post("/companies", json!({"keys": {"id": "acme"}}))
            .await,
        200,
    );

    let raw = data(
        api.post(
            "/events",
            json!({"event_type": "track", "body": {"event": "api-call", "company": {"id": "acme"}, "quantity": 3}}),
        )
        .await,
        201,
    );
    assert!(raw["event_id"].as_str().unwrap().starts_with("evt_"));
    assert_eq!(raw["remote_ip"], "127.0.0.1");
    assert_eq!(raw["user_agent"], "flagwire-mock-tests");
    assert!(raw["captured_at"].is_string());

    let batch = data(
        api.post(
            "/event-batch",
            json!({"events": [
                {"event_type": "track", "body": {"event": "api-call", "company": {"id": "acme"}}, "idempotency_key": "k1"},
                {"event_type": "track", "body": {"event": "api-call", "company": {"id": "acme"}}, "idempotency_key": "k1"},
                {"event_type": "identify", "body": {"keys": {"email": "ann@acme.io"}, "name": "Ann", "company": {"keys": {"id": "acme"}}}},
            ]}),
        )
        .await,
        201,
    );
    assert_eq!(batch["events"].as_array().unwrap().len(), 3);
    assert!(
        batch["events"][1]["event_id"].is_null(),
        "duplicate idempotency key is dropped"
    );

    // 3 + 1 (the duplicate does not count).
    let acme = server.company_by_key("id", "acme").unwrap();
    let all_time = acme["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["period"] == "all_time" && m["event_subtype"] == "api-call")
        .unwrap();
    assert_eq!(all_time["value"], 4);
    assert_eq!(acme["user_count"], 1);
    let events = server.events();
    assert_eq!(events.len(), 3);
    assert_eq!(events[0].quantity, 3);
    assert_eq!(events[0].source, Host::Rest);
    assert_eq!(events[0].company_id.as_deref(), acme["id"].as_str());

    let listed = data(api.get("/events?event_types=identify").await, 200);
    assert_eq!(listed.as_array().unwrap().len(), 1);
    let id = listed[0]["id"].as_str().unwrap();
    assert_eq!(
        data(api.get(&format!("/events/{id}")).await, 200)["type"],
        "identify"
    );
    error(api.get("/events/evt_nope").await, 404);

    // Validation.
    error(
        api.post("/events", json!({"event_type": "bogus"})).await,
        400,
    );
    error(
        api.post(
            "/events",
            json!({"event_type": "track", "body": {"company": {"id": "acme"}}}),
        )
        .await,
        400,
    );
    error(
        api.post(
            "/events",
            json!({"event_type": "identify", "body": {"keys": {}}}),
        )
        .await,
        400,
    );
    error(
        api.post(
            "/events",
            json!({"event_type": "track", "body": {"event": "x"}, "backfill": true}),
        )
        .await,
        400,
    );
    error(
        api.post(
            "/events",
            json!({"event_type": "track", "body": {"event": "x"}, "trusted_client_clock": true}),
        )
        .await,
        400,
    );
    error(
        api.post(
            "/events",
            json!({"event_type": "track", "body": {"event": "x"}, "sent_at": "now"}),
        )
        .await,
        400,
    );
    let msg = error(
        api.post("/event-batch", json!({"events": [{"event_type": "track", "body": {"event": "ok"}}, {"event_type": "nope"}]}))
            .await,
        400,
    );
    assert!(msg.starts_with("events[1]"), "{msg}");
    assert_eq!(server.events().len(), 3, "an invalid batch stores nothing");
    server.stop().await;
}

fn track(key: &str, event: &str, quantity: i64) -> serde_json::Value {
    json!({"api_key": key, "type": "track", "body": {"event": event, "company": {"id": "acme"}, "quantity": quantity},
           "sent_at": "2026-01-02T03:04:05Z"})
}

#[tokio::test]
async fn capture_batch_identify_and_track_are_visible_through_rest() {
    let server = MockServer::start().await.unwrap();
    let capture = Api::capture(&server);
    let rest = Api::rest(&server);
    let key = server.api_key().to_owned();

    let resp = capture
        .post(
            "/batch",
            json!({"events": [
                {"api_key": key, "type": "identify", "body": {
                    "keys": {"email": "ann@acme.io"}, "name": "Ann", "traits": {"role": "admin"},
                    "company": {"keys": {"id": "acme"}, "name": "Acme", "traits": {"seats": 5}}}},
                track(&key, "api-call", 2),
                track(&key, "api-call", 5),
            ]}),
        )
        .await;
    assert_eq!(resp.status, 200, "{}", resp.body);

    let company = data(rest.get("/companies/lookup?keys[id]=acme").await, 200);
    assert_eq!(company["name"], "Acme");
    assert_eq!(company["traits"]["seats"], 5);
    assert_eq!(company["user_count"], 1);
    let metric = company["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["period"] == "current_month" && m["month_reset"] == "first_of_month")
        .unwrap();
    assert_eq!(metric["value"], 7);
    assert!(metric["valid_until"].is_string());
    let user = data(rest.get("/users/lookup?keys[email]=ann@acme.io").await, 200);
    assert_eq!(user["name"], "Ann");
    assert_eq!(user["traits"]["role"], "admin");
    assert_eq!(user["company_memberships"][0]["company_id"], company["id"]);
    assert!(server.events().iter().all(|e| e.source == Host::Capture));

    // Recorded requests never show the key.
    let recorded = server.requests();
    let batch = recorded.iter().find(|r| r.host == Host::Capture).unwrap();
    assert_eq!(batch.operation, Some("captureBatch"));
    assert_eq!(batch.headers["x-schematic-api-key"], REDACTED);
    let body = batch.json().unwrap();
    assert_eq!(body["events"][0]["api_key"], REDACTED);
    assert!(!String::from_utf8_lossy(&batch.body).contains(&key));
    server.stop().await;
}

#[tokio::test]
async fn capture_limits_and_auth() {
    let server = MockServer::start().await.unwrap();
    let capture = Api::capture(&server);
    let key = server.api_key().to_owned();

    let events: Vec<_> = (0..101).map(|_| track(&key, "e", 1)).collect();
    let resp = capture.post("/batch", json!({ "events": events })).await;
    assert_eq!(resp.status, 400);
    assert_eq!(
        resp.body,
        json!({"error": "batch too large", "max_size": 100})
    );
    let events: Vec<_> = (0..100).map(|_| track(&key, "e", 1)).collect();
    assert_eq!(
        capture
            .post("/batch", json!({ "events": events }))
            .await
            .status,
        200
    );

    // Without the header, every event must carry an accepted key.
    let no_header = capture.without_key();
    assert_eq!(
        no_header
            .post("/batch", json!({"events": [track(&key, "e", 1)]}))
            .await
            .status,
        200
    );
    error(
        no_header
            .post("/batch", json!({"events": [track("sch_dev_bad", "e", 1)]}))
            .await,
        401,
    );
    error(no_header.post("/batch", json!({"events": []})).await, 401);
    error(no_header.post("/batch", json!({"nope": 1})).await, 401);

    error(
        capture
            .post("/batch", json!({"events": [{"type": "track", "body": {}}]}))
            .await,
        400,
    );
    error(capture.post("/batch", json!({"nope": 1})).await, 400);
    error(capture.get("/batch").await, 405);
    error(capture.post("/e", json!({})).await, 404);

    let small = MockServer::builder()
        .capture_batch_limit(2)
        .start()
        .await
        .unwrap();
    let resp = Api::capture(&small)
        .post(
            "/batch",
            json!({"events": [track(&key, "e", 1), track(&key, "e", 1), track(&key, "e", 1)]}),
        )
        .await;
    assert_eq!(resp.body["max_size"], 2);
    small.stop().await;
    server.stop().await;
}

#[tokio::test]
async fn stored_events_are_bounded_but_effects_are_kept() {
    let server = MockServer::builder().max_events(2).start().await.unwrap();
    server
        .upsert_company(json!({"keys": {"id": "acme"}}))
        .unwrap();
    for _ in 0..5 {
        server.track(&[("id", "acme")], "login", 1).unwrap();
    }
    assert_eq!(server.events().len(), 2);
    let acme = server.company_by_key("id", "acme").unwrap();
    let all_time = acme["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["period"] == "all_time")
        .unwrap()
        .clone();
    assert_eq!(all_time["value"], 5);
    server.stop().await;
}
