//! End-to-end tests of the eSauti client against the emulator of `flagwire-mock`, over real
//! loopback HTTP: credentials, signatures the emulator verifies, one idempotency key across
//! retries, `Retry-After`, bounded attempts, dead letters and their replay, REST contacts,
//! and the blocking client.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use flagwire::Error;
use flagwire::esauti::{
    Body, Client, ClientBuilder, DeadLetter, FailureKind, ReplayReport, SendOptions, blocking,
};
use flagwire_core::esauti::EventType;
use flagwire_core::esauti::api::contacts::ListContacts;
use flagwire_core::esauti::api::forms::ListForms;
use flagwire_core::events::IdempotencyKey;
use flagwire_mock::Fault;
use flagwire_mock::esauti::{
    DEFAULT_API_KEY, DEFAULT_BEARER_TOKEN, DEFAULT_HMAC_SECRET, EsautiServer,
};
use flagwire_transport::RetryPolicy;
use http::StatusCode;
use serde_json::{Value, json};

/// Fast, deterministic back-off: the tests measure attempts, not waiting.
fn fast() -> RetryPolicy {
    RetryPolicy::new()
        .base_delay(Duration::from_millis(5))
        .jitter(false)
}

fn client_for(server: &EsautiServer) -> ClientBuilder {
    Client::builder()
        .api_key(DEFAULT_API_KEY)
        .hmac_secret(DEFAULT_HMAC_SECRET)
        .rest_url(server.rest_url())
        .events_url(server.events_url())
        .retry_policy(fast())
}

fn order(client: &Client, value: i64) -> flagwire_core::esauti::EnvelopeBuilder {
    client
        .events()
        .event(EventType::OrderCreated)
        .customer_id("cus_1")
        .customer_field("email", "ann@example.com")
        .entity("order", "ord_9")
        .property("currency", "KES")
        .property("value", value)
}

fn temp_file(name: &str) -> PathBuf {
    std::env::temp_dir()
        .join(format!(
            "flagwire-esauti-e2e-{name}-{}-{}",
            std::process::id(),
            fastrand::u64(..)
        ))
        .join("deadletter.jsonl")
}

fn letters(path: &PathBuf) -> Vec<DeadLetter> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| DeadLetter::from_json_line(l).unwrap())
        .collect()
}

fn event_requests(server: &EsautiServer) -> Vec<flagwire_mock::RecordedRequest> {
    server
        .requests()
        .into_iter()
        .filter(|r| r.path == "/v1/inbound/event")
        .collect()
}

#[tokio::test]
async fn signed_events_with_api_key_or_bearer_token_are_accepted() {
    let server = EsautiServer::start().await.unwrap();
    let client = client_for(&server).source("checkout").build().unwrap();
    let receipt = client.events().send(order(&client, 1250)).await.unwrap();
    assert!(receipt.received && !receipt.duplicate);
    assert_eq!(receipt.http_status, StatusCode::ACCEPTED);
    assert_eq!(receipt.status.as_deref(), Some("accepted"));
    assert_eq!(receipt.attempts, 1);

    let bearer = Client::builder()
        .bearer_token(DEFAULT_BEARER_TOKEN)
        .hmac_secret(DEFAULT_HMAC_SECRET)
        .events_url(server.events_url())
        .build()
        .unwrap();
    bearer.events().send(order(&bearer, 5)).await.unwrap();

    let events = server.events();
    assert_eq!(events.len(), 2);
    let first = &events[0];
    assert_eq!(Some(first.event_id.clone()), receipt.event_id);
    assert_eq!(
        Some(first.idempotency_key.clone()),
        receipt.idempotency_key.map(|k| k.to_string())
    );
    assert_eq!(first.source_header.as_deref(), Some("checkout"));
    assert_eq!(first.request_id, receipt.request_id);
    assert_eq!(first.deliveries, 1);
    assert_eq!(first.envelope["properties"]["value"], 1250);
    assert_eq!(first.envelope["source"], "checkout");
    assert_eq!(events[1].source_header.as_deref(), Some("sdk"));
}

#[tokio::test]
async fn zero_is_a_value() {
    let server = EsautiServer::start().await.unwrap();
    let client = client_for(&server).build().unwrap();
    client.events().send(order(&client, 0)).await.unwrap();
    let free = client
        .events()
        .event(EventType::FormSubmitted)
        .customer_id("cus_1")
        .property("form_id", 0)
        .property("form_name", "newsletter")
        .property("consent", false);
    client.events().send(free).await.unwrap();
    let events = server.events();
    assert_eq!(events[0].envelope["properties"]["value"], 0);
    assert_eq!(events[1].envelope["properties"]["form_id"], 0);
}

#[tokio::test]
async fn bad_credentials_and_bad_signatures_are_rejected_once_and_dead_lettered() {
    let server = EsautiServer::start().await.unwrap();
    let path = temp_file("rejected");
    for builder in [
        // Wrong signing secret.
        Client::builder()
            .api_key(DEFAULT_API_KEY)
            .hmac_secret("not-the-secret"),
        // No signature at all.
        Client::builder().api_key(DEFAULT_API_KEY),
        // Wrong key.
        Client::builder()
            .api_key("esk_wrong")
            .hmac_secret(DEFAULT_HMAC_SECRET),
    ] {
        let client = builder
            .events_url(server.events_url())
            .retry_policy(fast())
            .dead_letter_file(&path)
            .build()
            .unwrap();
        let err = client.events().send(order(&client, 1)).await.unwrap_err();
        assert_eq!(err.status(), Some(StatusCode::UNAUTHORIZED), "{err}");
    }
    assert_eq!(event_requests(&server).len(), 3, "a 401 is not retried");
    assert!(server.events().is_empty());
    let letters = letters(&path);
    assert_eq!(letters.len(), 3);
    assert!(
        letters.iter().all(|l| l.kind == FailureKind::Rejected
            && l.attempts == 1
            && l.last_status == Some(401))
    );
    std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
}

#[tokio::test]
async fn retries_resend_the_same_key_and_body_with_a_fresh_timestamp() {
    let server = EsautiServer::start().await.unwrap();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let tick = Arc::new(AtomicU64::new(now));
    let clock = tick.clone();
    let client = client_for(&server)
        .clock(move || UNIX_EPOCH + Duration::from_secs(clock.fetch_add(1, Ordering::Relaxed)))
        .build()
        .unwrap();
    server.inject_events([Fault::status(503), Fault::status(502)]);
    let receipt = client.events().send(order(&client, 3)).await.unwrap();
    assert_eq!(receipt.attempts, 3);

    let attempts = event_requests(&server);
    assert_eq!(attempts.len(), 3);
    let key = attempts[0].headers["idempotency-key"].clone();
    let timestamps: Vec<&str> = attempts
        .iter()
        .map(|r| r.headers["x-esauti-timestamp"].to_str().unwrap())
        .collect();
    for r in &attempts {
        assert_eq!(r.headers["idempotency-key"], key);
        assert_eq!(r.body, attempts[0].body);
    }
    assert!(
        timestamps.windows(2).all(|w| w[0] != w[1]),
        "{timestamps:?}"
    );
    // The last attempt's fresh signature verified: the event was accepted, once.
    let events = server.events();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].deliveries, 1);
    assert_eq!(events[0].idempotency_key, key.to_str().unwrap());
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let server = EsautiServer::start().await.unwrap();
    let client = client_for(&server).build().unwrap();
    server.inject(Fault::status(429).with_retry_after("1"));
    let start = Instant::now();
    client.events().send(order(&client, 3)).await.unwrap();
    let waited = start.elapsed();
    // One second as asked, where the back-off alone would wait 5 ms.
    assert!(waited >= Duration::from_millis(990), "{waited:?}");
    assert_eq!(event_requests(&server).len(), 2);
}

#[tokio::test]
async fn an_outage_costs_max_retries_plus_one_attempts_and_one_dead_letter() {
    let server = EsautiServer::start().await.unwrap();
    let path = temp_file("outage");
    let client = client_for(&server)
        .max_retries(2)
        .dead_letter_file(&path)
        .build()
        .unwrap();
    server.set_events_down(true);
    let err = client.events().send(order(&client, 7)).await.unwrap_err();
    assert_eq!(err.status(), Some(StatusCode::SERVICE_UNAVAILABLE));
    // 3 attempts, not 9.
    assert_eq!(event_requests(&server).len(), 3);
    let letters = letters(&path);
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].kind, FailureKind::RetriesExhausted);
    assert_eq!(letters[0].attempts, 3);
    assert_eq!(letters[0].last_status, Some(503));
    std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
}

#[tokio::test]
async fn a_400_is_not_retried_and_is_dead_lettered() {
    let server = EsautiServer::start().await.unwrap();
    let path = temp_file("400");
    let client = client_for(&server).dead_letter_file(&path).build().unwrap();
    server.inject(Fault::status(400));
    let err = client.events().send(order(&client, 7)).await.unwrap_err();
    assert!(matches!(err, Error::Api { status, .. } if status == StatusCode::BAD_REQUEST));
    assert_eq!(event_requests(&server).len(), 1);
    let letters = letters(&path);
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].kind, FailureKind::Rejected);
    assert_eq!(letters[0].last_status, Some(400));
    std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
}

#[tokio::test]
async fn an_outage_dead_letters_then_replay_delivers_exactly_once() {
    let server = EsautiServer::start().await.unwrap();
    let path = temp_file("replay");
    let client = client_for(&server)
        .max_retries(1)
        .dead_letter_file(&path)
        .build()
        .unwrap();

    server.set_events_down(true);
    let mut keys = Vec::new();
    for value in [1, 2, 3] {
        let key = IdempotencyKey::new_v7();
        keys.push(key.to_string());
        let options = SendOptions::new().idempotency_key(key);
        client
            .events()
            .send_with(order(&client, value), options)
            .await
            .unwrap_err();
    }
    assert!(server.events().is_empty());
    assert_eq!(letters(&path).len(), 3);

    // Still down: the first replayed letter fails, the others are not even tried.
    let report = client.events().replay(&path).await.unwrap();
    assert_eq!((report.failed, report.skipped, report.remaining), (1, 2, 3));
    assert_eq!(letters(&path)[0].attempts, 4);

    server.set_events_down(false);
    let report = client.events().replay(&path).await.unwrap();
    assert_eq!(
        (
            report.read,
            report.delivered,
            report.duplicates,
            report.remaining
        ),
        (3, 3, 0, 0)
    );
    let events = server.events();
    let delivered: Vec<&str> = events.iter().map(|e| e.idempotency_key.as_str()).collect();
    assert_eq!(
        delivered,
        keys.iter().map(String::as_str).collect::<Vec<_>>()
    );
    assert!(events.iter().all(|e| e.deliveries == 1));
    assert_eq!(
        events
            .iter()
            .map(|e| e.envelope["properties"]["value"].clone())
            .collect::<Vec<_>>(),
        [json!(1), json!(2), json!(3)]
    );
    assert!(letters(&path).is_empty());
    // Replaying an empty file again sends nothing.
    let before = server.requests().len();
    assert_eq!(
        client.events().replay(&path).await.unwrap(),
        ReplayReport::default()
    );
    assert_eq!(server.requests().len(), before);
    std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
}

#[tokio::test]
async fn a_lost_answer_is_dead_lettered_and_the_replay_is_recognised_as_a_duplicate() {
    let server = EsautiServer::start().await.unwrap();
    let path = temp_file("lost");
    let client = client_for(&server)
        .max_retries(0)
        .dead_letter_file(&path)
        .build()
        .unwrap();
    // The server stores the event but the answer is cut short.
    server.inject(Fault::TruncatedBody);
    client.events().send(order(&client, 9)).await.unwrap_err();
    assert_eq!(server.events().len(), 1);
    assert_eq!(letters(&path).len(), 1);

    let report = client.events().replay(&path).await.unwrap();
    assert_eq!((report.delivered, report.duplicates), (1, 1));
    let events = server.events();
    assert_eq!(events.len(), 1, "the event is stored once");
    assert_eq!(events[0].deliveries, 2);
    std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
}

#[tokio::test]
async fn rest_contacts_round_trip() {
    let server = EsautiServer::start().await.unwrap();
    let client = client_for(&server).build().unwrap();
    let fields = |v: Value| -> Body { serde_json::from_value(v).unwrap() };

    let created = client
        .contacts()
        .create(fields(
            json!({"email": "ann@example.com", "firstname": "Ann"}),
        ))
        .await
        .unwrap();
    let id = created["contact"]["id"].as_i64().unwrap();
    client
        .contacts()
        .create(fields(
            json!({"email": "bob@example.com", "firstname": "Bob"}),
        ))
        .await
        .unwrap();

    let page = client
        .contacts()
        .list(ListContacts::new().search("ann").limit(10))
        .await
        .unwrap();
    assert_eq!(page["total"], 1);

    client
        .contacts()
        .edit(id, fields(json!({"lastname": "Lee"})))
        .await
        .unwrap();
    let got = client.contacts().get(id).await.unwrap();
    assert_eq!(got["contact"]["fields"]["all"]["lastname"], "Lee");
    // PUT creates when absent.
    client
        .contacts()
        .replace(999, fields(json!({"email": "cy@example.com"})))
        .await
        .unwrap();
    assert_eq!(server.contacts().len(), 3);
    client.contacts().delete(id).await.unwrap();

    let err = client.contacts().get(id).await.unwrap_err();
    assert_eq!(err.status(), Some(StatusCode::NOT_FOUND));
    assert!(
        matches!(
            &err,
            Error::Api {
                message: Some(_),
                ..
            }
        ),
        "{err:?}"
    );
    let err = client.forms().list(ListForms::new()).await.unwrap_err();
    assert_eq!(err.status(), Some(StatusCode::NOT_IMPLEMENTED));
    assert!(err.to_string().contains("not emulated"), "{err}");
    // REST requests are never signed.
    assert!(
        server
            .requests()
            .iter()
            .filter(|r| r.path.starts_with("/api/"))
            .all(|r| !r.headers.contains_key("x-esauti-signature"))
    );
}

#[test]
fn blocking_client_from_a_plain_thread_and_refused_inside_a_runtime() {
    let server = EsautiServer::start_blocking().unwrap();
    let client = Client::builder()
        .api_key(DEFAULT_API_KEY)
        .hmac_secret(DEFAULT_HMAC_SECRET)
        .rest_url(server.rest_url())
        .events_url(server.events_url())
        .build_blocking()
        .unwrap();

    let worker = {
        let client = client.clone();
        std::thread::spawn(move || {
            let event = client
                .event(EventType::CustomerCreated)
                .customer_id("cus_7");
            let receipt = client.send_event(event).unwrap();
            let fields: Body = serde_json::from_value(json!({"email": "dee@example.com"})).unwrap();
            let created = client.contacts().create(fields).unwrap();
            let id = created["contact"]["id"].as_i64().unwrap();
            assert_eq!(
                client.contacts().get(id).unwrap()["contact"]["fields"]["all"]["email"],
                "dee@example.com"
            );
            let page = client.send(ListContacts::new().search("dee")).unwrap();
            (receipt, page)
        })
    };
    let (receipt, page) = worker.join().unwrap();
    assert!(receipt.received);
    assert_eq!(page["total"], 1);
    assert_eq!(server.events().len(), 1);

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let err = rt.block_on(async {
        client
            .send_event(client.event(EventType::CustomerCreated).customer_id("c"))
            .unwrap_err()
    });
    assert!(matches!(err, Error::BlockingInAsyncContext), "{err:?}");
    assert_eq!(server.events().len(), 1);
    drop(client);
    server.stop();
}

#[test]
fn blocking_replay() {
    let server = EsautiServer::start_blocking().unwrap();
    let path = temp_file("blocking");
    let client = Client::builder()
        .api_key(DEFAULT_API_KEY)
        .hmac_secret(DEFAULT_HMAC_SECRET)
        .events_url(server.events_url())
        .max_retries(0)
        .dead_letter_file(&path)
        .build_blocking()
        .unwrap();
    server.set_events_down(true);
    client
        .send_event(client.event(EventType::CustomerLogin).customer_id("cus_1"))
        .unwrap_err();
    server.set_events_down(false);
    let report = client.replay(&path).unwrap();
    assert_eq!((report.delivered, report.remaining), (1, 0));
    assert_eq!(server.events()[0].deliveries, 1);
    let _ = blocking::Client::from_async(client.as_async().clone()).unwrap();
    std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    server.stop();
}

#[tokio::test]
async fn a_send_the_caller_abandons_is_dead_lettered_and_replayed_once() {
    let server = EsautiServer::start().await.unwrap();
    let path = temp_file("cancelled");
    let client = client_for(&server)
        .max_retries(0)
        .dead_letter_file(&path)
        .build()
        .unwrap();
    // The server takes its time; the caller gives up first.
    server.inject(Fault::Delay(Duration::from_millis(600)));
    let key = IdempotencyKey::new_v7();
    let events = client.events();
    let send = events.send_with(
        order(&client, 5),
        SendOptions::new().idempotency_key(key.clone()),
    );
    assert!(
        tokio::time::timeout(Duration::from_millis(100), send)
            .await
            .is_err()
    );
    let dead = letters(&path);
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].kind, FailureKind::Cancelled);
    assert_eq!(dead[0].idempotency_key, key);
    assert_eq!(dead[0].attempts, 1);
    // Whether or not the abandoned request got through, the replay records
    // the event once.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let report = client.events().replay(&path).await.unwrap();
    assert_eq!((report.read, report.delivered, report.remaining), (1, 1, 0));
    let events = server.events();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].idempotency_key, key.to_string());
    std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
}

#[tokio::test]
async fn a_failed_dead_letter_write_reaches_the_caller_with_both_causes() {
    let server = EsautiServer::start().await.unwrap();
    let client = client_for(&server)
        .dead_letter(|_: &DeadLetter| -> std::io::Result<()> {
            Err(std::io::Error::other("disk full"))
        })
        .build()
        .unwrap();
    server.inject(Fault::status(400));
    let err = client.events().send(order(&client, 1)).await.unwrap_err();
    match &err {
        Error::NotDeadLettered { error, write_error } => {
            assert!(
                matches!(**error, Error::Api { status, .. } if status == StatusCode::BAD_REQUEST)
            );
            assert_eq!(write_error.to_string(), "disk full");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(err.status(), Some(StatusCode::BAD_REQUEST));
    let text = err.to_string();
    assert!(text.contains("400") && text.contains("disk full"), "{text}");
}

#[tokio::test]
async fn a_torn_dead_letter_line_is_reported_kept_and_never_merged() {
    let server = EsautiServer::start().await.unwrap();
    let path = temp_file("torn");
    let client = client_for(&server)
        .max_retries(0)
        .dead_letter_file(&path)
        .build()
        .unwrap();
    server.set_events_down(true);
    client.events().send(order(&client, 1)).await.unwrap_err();
    // A crash while the second letter was being written.
    let torn = r#"{"envelope":{"id":"evt_x","type":"order.cre"#;
    {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(torn.as_bytes()).unwrap();
    }
    client.events().send(order(&client, 3)).await.unwrap_err();
    assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 3);

    server.set_events_down(false);
    let report = client.events().replay(&path).await.unwrap();
    assert_eq!((report.read, report.delivered, report.invalid), (2, 2, 1));
    assert_eq!(report.invalid_lines.len(), 1);
    assert_eq!(report.invalid_lines[0].line, 2);
    assert!(!report.invalid_lines[0].reason.is_empty());
    // Both whole letters were delivered; the torn line stays for inspection.
    let values: Vec<_> = server
        .events()
        .iter()
        .map(|e| e.envelope["properties"]["value"].clone())
        .collect();
    assert_eq!(values, [json!(1), json!(3)]);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), format!("{torn}\n"));
    std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
}

#[tokio::test]
async fn the_short_forms_pairs_optional_settings_send_event_and_no_schematic_headers() {
    let server = EsautiServer::start().await.unwrap();
    // Settings read from the environment pass as they are: `None` leaves
    // them unset (here: no bearer token on top of the API key).
    let client = Client::builder()
        .api_key(Some(DEFAULT_API_KEY))
        .bearer_token(std::env::var("FLAGWIRE_TEST_UNSET_TOKEN").ok())
        .hmac_secret(Some(DEFAULT_HMAC_SECRET.to_owned()))
        .rest_url(server.rest_url())
        .events_url(Some(server.events_url()))
        .retry_policy(fast())
        .build()
        .unwrap();

    // A body as key/value pairs, no map to build.
    let created = client
        .contacts()
        .create([("email", "dee@example.com"), ("firstname", "Dee")])
        .await
        .unwrap();
    let id = created["contact"]["id"].as_i64().unwrap();
    client
        .contacts()
        .edit(id, [("points", json!(3))])
        .await
        .unwrap();
    let got = client.contacts().get(id).await.unwrap();
    assert_eq!(got["contact"]["fields"]["all"]["firstname"], "Dee");

    // The event builder and the send on the client, as on the blocking one.
    let event = client
        .event(EventType::OrderCreated)
        .customer_id("cus_2")
        .customer_field("email", "dee@example.com")
        .entity("order", "ord_10")
        .property("currency", "KES")
        .property("value", 10);
    let receipt = client.send_event(event).await.unwrap();
    assert!(receipt.received && !receipt.duplicate, "{receipt:?}");
    assert_eq!(event_requests(&server).len(), 1);

    // eSauti is not Schematic: a User-Agent, none of Schematic's SDK headers.
    let requests = server.requests();
    assert!(requests.len() >= 4, "{requests:?}");
    for r in &requests {
        assert!(
            r.headers["user-agent"]
                .to_str()
                .unwrap()
                .starts_with("flagwire/"),
            "{:?}",
            r.headers
        );
        assert!(
            r.headers.keys().all(|n| !n.as_str().starts_with("x-fern-")),
            "{} {}: {:?}",
            r.method,
            r.path,
            r.headers
        );
    }
}

#[tokio::test]
async fn two_credentials_from_the_environment_are_still_refused() {
    let server = EsautiServer::start().await.unwrap();
    let err = Client::builder()
        .api_key(Some("key"))
        .bearer_token(Some("token"))
        .rest_url(server.rest_url())
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("not both"), "{err}");
    // Nothing set at all: a clear error, not a client without credentials.
    let err = Client::builder()
        .api_key(None::<String>)
        .rest_url(server.rest_url())
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("no credentials"), "{err}");
}
