//! The Python READMEs' examples, as written in `examples/python_schematic.rs`
//! and `examples/python_esauti.rs`, run against the emulators over loopback:
//! each port is called as it is and its effect is checked (what the API
//! stored, what events arrived, what a check answered, which deliveries were
//! accepted). The last tests hold the ports to their line counts.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use flagwire::schematic::CheckSource;
use flagwire::webhooks::{Schematic, SchematicVerifier, Signer, unix_now};
use flagwire::{Context, Error};
use flagwire_mock::esauti::{DEFAULT_BEARER_TOKEN, DEFAULT_HMAC_SECRET, EsautiServer};
use flagwire_mock::{Fault, Host, MockServer};
use http::{Method, Request, StatusCode};
use serde_json::{Value, json};

#[path = "../examples/python_schematic.rs"]
#[allow(dead_code)]
mod python_schematic;

#[path = "../examples/python_esauti.rs"]
#[allow(dead_code)]
mod python_esauti;

use python_schematic as sch;

const SHUTDOWN: Duration = Duration::from_secs(5);
const WEBHOOK_SECRET: &str = "your-webhook-secret";

async fn seeded() -> MockServer {
    let server = MockServer::builder()
        .webhook_secret(WEBHOOK_SECRET)
        .webhook_retries(0, Duration::ZERO)
        .start()
        .await
        .unwrap();
    sch::seed_flag(&server).unwrap();
    server
}

fn requests_to(
    server: &MockServer,
    method: &Method,
    path: &str,
) -> Vec<flagwire_mock::RecordedRequest> {
    server
        .requests()
        .into_iter()
        .filter(|r| r.method == method && r.path == path)
        .collect()
}

const CHECK_ROUTE: &str = "/flags/some-flag-key/check";

// ----- Usage ----------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn the_sync_client_checks_flags_from_plain_threads() {
    let server = seeded().await;
    let builder = sch::emulator_blocking_builder(&server);
    let (ours, theirs) = tokio::task::spawn_blocking(move || {
        let client = sch::sync_client(builder).unwrap();
        let ours = client.check_flag(
            "some-flag-key",
            Context::company(&[("id", "your-company-id")]),
        );
        let theirs =
            client.check_flag("some-flag-key", Context::company(&[("id", "someone-else")]));
        client.shutdown(SHUTDOWN).unwrap();
        (ours.unwrap(), theirs.unwrap())
    })
    .await
    .unwrap();
    assert!(ours);
    assert!(!theirs);
}

#[tokio::test]
async fn the_async_client_gets_a_company_by_its_schematic_id() {
    let server = seeded().await;
    let stored = server.company_by_key("id", "your-company-id").unwrap();
    let id = stored["id"].as_str().unwrap();
    let company = sch::async_client(sch::emulator_builder(&server), id)
        .await
        .unwrap();
    assert_eq!(company.id, id);

    let missing = sch::async_client(sch::emulator_builder(&server), "comp_missing").await;
    assert_eq!(missing.unwrap_err().status(), Some(StatusCode::NOT_FOUND));
}

#[tokio::test]
async fn exception_handling_reads_the_status_of_any_failure() {
    let server = seeded().await;
    let client = sch::emulator_builder(&server)
        .max_retries(0)
        .build()
        .unwrap();
    assert_eq!(
        sch::exception_handling(&client).await,
        Some(StatusCode::NOT_FOUND)
    );

    server
        .inject(
            Host::Rest,
            Method::GET,
            "/companies/{company_id}",
            [Fault::status(503)],
        )
        .unwrap();
    assert_eq!(
        sch::exception_handling(&client).await,
        Some(StatusCode::SERVICE_UNAVAILABLE)
    );
    client.shutdown(SHUTDOWN).await;
}

// ----- Events ---------------------------------------------------------------

#[tokio::test]
async fn identify_creates_the_user_and_the_company_in_the_background() {
    let server = seeded().await;
    let client = sch::identify(sch::emulator_builder(&server)).await.unwrap();
    let stats = client.shutdown(SHUTDOWN).await;
    assert_eq!((stats.buffer.enqueued, stats.buffer.sent), (1, 1));

    let events = server.events();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event_type, "identify");
    let user = server.user_by_key("user_id", "your-user-id").unwrap();
    assert_eq!(user["name"], "Wile E. Coyote");
    assert_eq!(user["traits"]["login_count"], 24);
    assert_eq!(user["traits"]["is_staff"], false);
    assert!(server.user_by_key("email", "wcoyote@acme.net").is_some());
    let company = server.company_by_key("id", "your-company-id").unwrap();
    assert_eq!(company["name"], "Acme Widgets, Inc.");
    assert_eq!(company["traits"]["city"], "Atlanta");
    assert_eq!(company["user_count"], 1);
}

#[tokio::test]
async fn track_delivers_events_with_and_without_a_quantity() {
    let server = seeded().await;
    let client = sch::track(sch::emulator_builder(&server)).await.unwrap();
    sch::track_quantity(&client).await.unwrap();
    let stats = client.shutdown(SHUTDOWN).await;
    assert_eq!((stats.buffer.enqueued, stats.buffer.sent), (2, 2));

    let company = server.company_by_key("id", "your-company-id").unwrap();
    let events = server.events();
    let quantities: Vec<i64> = events.iter().map(|e| e.quantity).collect();
    assert_eq!(quantities, [1, 10]);
    for event in &events {
        assert_eq!(event.event_type, "track");
        assert_eq!(event.body["event"], "some-action");
        assert_eq!(event.body["company"], json!({"id": "your-company-id"}));
        assert_eq!(event.body["user"], json!({"user_id": "your-user-id"}));
        assert_eq!(event.company_id.as_deref(), company["id"].as_str());
    }
}

// ----- Companies and users --------------------------------------------------

#[tokio::test]
async fn upsert_company_stores_its_name_and_traits() {
    let server = seeded().await;
    let company = sch::upsert_company(sch::emulator_builder(&server))
        .await
        .unwrap();
    assert_eq!(company.name, "Acme Widgets, Inc.");
    let stored = server.company_by_key("id", "your-company-id").unwrap();
    assert_eq!(stored["id"], company.id.as_str());
    assert_eq!(
        stored["traits"],
        json!({"city": "Atlanta", "high_score": 25, "is_active": true})
    );
    // An upsert of the same keys updates the same company.
    sch::upsert_company(sch::emulator_builder(&server))
        .await
        .unwrap();
    assert_eq!(server.companies().len(), 1);
}

#[tokio::test]
async fn upsert_user_stores_both_keys_and_the_membership() {
    let server = seeded().await;
    let user = sch::upsert_user(sch::emulator_builder(&server))
        .await
        .unwrap();
    assert_eq!(user.name, "Wile E. Coyote");
    let by_email = server.user_by_key("email", "wcoyote@acme.net").unwrap();
    let by_id = server.user_by_key("user_id", "your-user-id").unwrap();
    assert_eq!(by_email["id"], user.id.as_str());
    assert_eq!(by_id["id"], user.id.as_str());
    assert_eq!(by_id["traits"]["high_score"], 25);
    let company = server.company_by_key("id", "your-company-id").unwrap();
    assert_eq!(company["user_count"], 1);
}

// ----- Flag checks ----------------------------------------------------------

#[tokio::test]
async fn check_flag_sends_the_company_and_the_user() {
    let server = seeded().await;
    assert!(
        sch::check_flag(sch::emulator_builder(&server))
            .await
            .unwrap()
    );
    let checks = requests_to(&server, &Method::POST, CHECK_ROUTE);
    assert_eq!(checks.len(), 1);
    let body = checks[0].json().unwrap();
    assert_eq!(body["company"], json!({"id": "your-company-id"}));
    assert_eq!(body["user"], json!({"user_id": "your-user-id"}));
}

// ----- Webhooks -------------------------------------------------------------

fn with_body(request: &Request<Bytes>, body: &'static [u8]) -> Request<Bytes> {
    let mut copy = Request::post("/webhooks/schematic")
        .body(Bytes::from_static(body))
        .unwrap();
    *copy.headers_mut() = request.headers().clone();
    copy
}

#[tokio::test]
async fn the_framework_handlers_accept_only_signed_deliveries() {
    let server = seeded().await;
    let verifier = SchematicVerifier::new(WEBHOOK_SECRET).unwrap();
    let delivery = sch::emulator_delivery(&server).await.unwrap();
    let tampered = with_body(&delivery, br#"{"action":"company.deleted"}"#);
    let unsigned = Request::post("/").body(delivery.body().clone()).unwrap();
    // Signed with the right secret, but not a Schematic webhook body.
    let signed = Signer::<Schematic>::new(WEBHOOK_SECRET)
        .unwrap()
        .sign(unix_now(), b"[1, 2]");
    let mut not_an_event = Request::post("/")
        .body(Bytes::from_static(b"[1, 2]"))
        .unwrap();
    signed.apply_to(not_an_event.headers_mut()).unwrap();

    for handler in [
        sch::flask_webhook,
        sch::django_webhook,
        sch::fastapi_webhook,
    ] {
        assert_eq!(handler(&verifier, &delivery), Ok(StatusCode::OK));
        for bad in [&tampered, &unsigned] {
            let (status, body) = handler(&verifier, bad).unwrap_err();
            assert_eq!(status, StatusCode::BAD_REQUEST);
            assert!(!body.is_empty());
        }
    }
    // Flask and Django answer the reason as JSON, and 500 to an unexpected body.
    for handler in [sch::flask_webhook, sch::django_webhook] {
        let (_, body) = handler(&verifier, &tampered).unwrap_err();
        let error: Value = serde_json::from_str(&body).unwrap();
        assert!(
            error["error"].as_str().unwrap().contains("signature"),
            "{error}"
        );
        let (status, body) = handler(&verifier, &not_an_event).unwrap_err();
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(body, r#"{"error":"Internal server error"}"#);
    }
    // Django refuses other methods before looking at the signature.
    let mut get = with_body(&delivery, b"");
    *get.method_mut() = Method::GET;
    assert_eq!(
        sch::django_webhook(&verifier, &get),
        Ok(StatusCode::METHOD_NOT_ALLOWED)
    );
    // FastAPI's dependency alone.
    assert_eq!(
        sch::verify_dependency(&verifier, &delivery),
        Ok(StatusCode::OK)
    );
    assert_eq!(
        sch::verify_dependency(&verifier, &tampered).unwrap_err().0,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn manual_verification_checks_body_signature_timestamp_and_secret() {
    let server = seeded().await;
    let delivery = sch::emulator_delivery(&server).await.unwrap();
    let body = std::str::from_utf8(delivery.body()).unwrap();
    let header = |name: &str| delivery.headers()[name].to_str().unwrap().to_owned();
    let signature = header("x-schematic-webhook-signature");
    let timestamp = header("x-schematic-webhook-timestamp");

    assert!(sch::verify_webhook_manually(
        body,
        &signature,
        &timestamp,
        WEBHOOK_SECRET
    ));
    assert!(!sch::verify_webhook_manually(
        "{}",
        &signature,
        &timestamp,
        WEBHOOK_SECRET
    ));
    assert!(!sch::verify_webhook_manually(
        body,
        &signature,
        &timestamp,
        "another-secret"
    ));
    let later = (timestamp.parse::<i64>().unwrap() + 1).to_string();
    assert!(!sch::verify_webhook_manually(
        body,
        &signature,
        &later,
        WEBHOOK_SECRET
    ));
    assert!(!sch::verify_webhook_manually(
        body,
        "",
        &timestamp,
        WEBHOOK_SECRET
    ));
}

// ----- Configuration --------------------------------------------------------

#[tokio::test]
async fn the_configured_cache_keeps_answers_for_its_ttl() {
    let server = seeded().await;
    let client = sch::cache_config(sch::emulator_builder(&server)).unwrap();
    let acme = Context::company(&[("id", "your-company-id")]);
    let first = client.check_flag_detailed("some-flag-key", acme).await;
    let second = client.check_flag_detailed("some-flag-key", acme).await;
    assert_eq!((first.value, first.source), (true, CheckSource::Api));
    assert_eq!((second.value, second.source), (true, CheckSource::Cache));
    assert_eq!(requests_to(&server, &Method::POST, CHECK_ROUTE).len(), 1);

    tokio::time::sleep(Duration::from_millis(1_300)).await;
    let third = client.check_flag_detailed("some-flag-key", acme).await;
    assert_eq!(
        third.source,
        CheckSource::Api,
        "the 1,000 ms TTL has passed"
    );
    assert_eq!(requests_to(&server, &Method::POST, CHECK_ROUTE).len(), 2);
    client.shutdown(SHUTDOWN).await;
}

#[tokio::test]
async fn without_a_cache_every_check_asks_the_api() {
    let server = seeded().await;
    let client = sch::disable_cache(sch::emulator_builder(&server)).unwrap();
    let acme = Context::company(&[("id", "your-company-id")]);
    for _ in 0..3 {
        let check = client.check_flag_detailed("some-flag-key", acme).await;
        assert_eq!((check.value, check.source), (true, CheckSource::Api));
    }
    assert_eq!(requests_to(&server, &Method::POST, CHECK_ROUTE).len(), 3);
    client.shutdown(SHUTDOWN).await;
}

#[tokio::test]
async fn flag_defaults_answer_when_the_api_cannot() {
    let server = seeded().await;
    let outage = || [Fault::status(503), Fault::status(503), Fault::status(503)];
    let other = Context::company(&[("id", "someone-else")]);

    let with_default = sch::flag_defaults(sch::emulator_builder(&server)).unwrap();
    // The API's answer wins over the default.
    assert!(!with_default.check_flag("some-flag-key", other).await);
    server
        .inject(Host::Rest, Method::POST, "/flags/{key}/check", outage())
        .unwrap();
    let check = with_default
        .check_flag_detailed("some-flag-key", Context::company(&[("id", "third")]))
        .await;
    assert_eq!((check.value, check.source), (true, CheckSource::Default));
    server.clear_faults();

    let without = sch::emulator_builder(&server).build().unwrap();
    server
        .inject(Host::Rest, Method::POST, "/flags/{key}/check", outage())
        .unwrap();
    let check = without
        .check_flag_detailed("some-flag-key", Context::company(&[("id", "fourth")]))
        .await;
    assert_eq!((check.value, check.source), (false, CheckSource::Default));
    with_default.shutdown(SHUTDOWN).await;
    without.shutdown(SHUTDOWN).await;
}

#[tokio::test]
async fn offline_clients_make_no_requests() {
    let client = sch::offline_mode().unwrap();
    assert!(client.is_offline());
    let check = client.check_flag_detailed("some-flag-key", ()).await;
    assert_eq!((check.value, check.source), (false, CheckSource::Offline));
    let err = client.companies().get_company("comp_1").await.unwrap_err();
    assert!(matches!(err, Error::Offline), "{err:?}");

    assert!(sch::offline_with_defaults().await.unwrap());
}

#[tokio::test]
async fn timeouts_apply_to_the_client_and_to_one_request() {
    let server = seeded().await;
    let id = server.company_by_key("id", "your-company-id").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // A slow answer, well within 20 s.
    server
        .inject(
            Host::Rest,
            Method::GET,
            "/companies/{company_id}",
            [Fault::Delay(Duration::from_millis(200))],
        )
        .unwrap();
    let company = sch::timeouts(sch::emulator_builder(&server), &id)
        .await
        .unwrap();
    assert_eq!(company.id, id);
}

#[tokio::test]
async fn one_retry_means_two_attempts() {
    let server = seeded().await;
    let id = server.company_by_key("id", "your-company-id").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let client = sch::emulator_builder(&server).build().unwrap();
    let route = "/companies/{company_id}";

    server
        .inject(Host::Rest, Method::GET, route, [Fault::status(503)])
        .unwrap();
    assert_eq!(sch::retries(&client, &id).await.unwrap().id, id);

    server
        .inject(
            Host::Rest,
            Method::GET,
            route,
            [Fault::status(503), Fault::status(503), Fault::status(503)],
        )
        .unwrap();
    let err = sch::retries(&client, &id).await.unwrap_err();
    assert_eq!(err.status(), Some(StatusCode::SERVICE_UNAVAILABLE));
    assert_eq!(err.attempts(), Some(2));
    assert_eq!(
        server.pending_faults(),
        1,
        "the third fault was never reached"
    );
    client.shutdown(SHUTDOWN).await;
}

#[tokio::test]
async fn the_http_client_settings_send_requests_through_the_proxy() {
    let server = seeded().await;
    let id = server.company_by_key("id", "your-company-id").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // A host that does not resolve: only the proxy (the emulator) can answer.
    let builder = sch::emulator_builder(&server).base_url("http://api.schematic.invalid");
    let client = sch::custom_http_client(builder, &server.rest_url()).unwrap();
    assert_eq!(client.companies().get_company(&id).await.unwrap().id, id);
    client.shutdown(SHUTDOWN).await;

    // A proxy that is not there fails the request.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let builder = sch::emulator_builder(&server).max_retries(0);
    let client = sch::custom_http_client(builder, &url).unwrap();
    let err = client.companies().get_company(&id).await.unwrap_err();
    assert!(
        err.is_connect() || matches!(err, Error::Transport(_)),
        "{err:?}"
    );
    client.shutdown(SHUTDOWN).await;
}

// ----- eSauti ---------------------------------------------------------------

#[tokio::test]
async fn esauti_rest_lists_then_creates_a_contact() {
    let server = EsautiServer::start().await.unwrap();
    let (before, created) = python_esauti::rest_api(&server.rest_url(), DEFAULT_BEARER_TOKEN)
        .await
        .unwrap();
    assert_eq!(before["total"], 0);
    assert_eq!(created["contact"]["fields"]["all"]["firstname"], "Jane");
    let stored = server.contacts();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0]["fields"]["all"]["email"], "jane@esauti.com");

    let wrong = python_esauti::rest_api(&server.rest_url(), "not-the-token").await;
    assert_eq!(wrong.unwrap_err().status(), Some(StatusCode::UNAUTHORIZED));
    server.stop().await;
}

#[tokio::test]
async fn esauti_event_injection_delivers_the_customer_event() {
    let server = EsautiServer::builder()
        .hmac_secret(None)
        .start()
        .await
        .unwrap();
    let receipt = python_esauti::event_injection(&server.events_url(), DEFAULT_BEARER_TOKEN)
        .await
        .unwrap();
    assert!(receipt.received && !receipt.duplicate);
    let events = server.events();
    assert_eq!(events.len(), 1);
    assert_eq!(
        Some(events[0].event_id.as_str()),
        receipt.event_id.as_deref()
    );
    let envelope = &events[0].envelope;
    assert_eq!(envelope["type"], "customer.created");
    assert_eq!(envelope["source"], "my-app");
    assert_eq!(envelope["customer"]["id"], "cus_123");
    assert_eq!(envelope["customer"]["email"], "jane@esauti.com");
    assert_eq!(envelope["properties"]["status"], "active");
    server.stop().await;
}

#[tokio::test]
async fn esauti_signed_events_pass_only_with_the_right_secret() {
    let server = EsautiServer::start().await.unwrap();
    let url = server.events_url();
    let receipt = python_esauti::hmac_signing(&url, DEFAULT_BEARER_TOKEN, DEFAULT_HMAC_SECRET)
        .await
        .unwrap();
    assert!(receipt.received);
    let envelope = &server.events()[0].envelope;
    assert_eq!(envelope["type"], "order.created");
    assert_eq!(envelope["properties"]["value"], 99.99);
    assert_eq!(envelope["properties"]["currency"], "USD");
    assert_eq!(envelope["source"], "shopify");

    let err = python_esauti::hmac_signing(&url, DEFAULT_BEARER_TOKEN, "wrong-secret")
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(StatusCode::UNAUTHORIZED));
    assert_eq!(server.events().len(), 1);
    server.stop().await;
}

#[tokio::test]
async fn esauti_configuration_overrides_the_events_path_and_source() {
    let server = EsautiServer::builder()
        .hmac_secret(None)
        .start()
        .await
        .unwrap();
    let client = python_esauti::configuration(&server.events_url(), DEFAULT_BEARER_TOKEN).unwrap();
    assert_eq!(client.source(), "sdk");
    let endpoint = client.events_endpoint().unwrap().to_string();
    assert_eq!(
        endpoint,
        format!("{}/api/integrations/events", server.events_url())
    );

    // The emulator serves events at the standard path only: the override is
    // where the request went.
    let event = client
        .events()
        .event("customer.created")
        .customer_id("cus_1");
    let err = client.events().send(event).await.unwrap_err();
    assert_eq!(err.status(), Some(StatusCode::NOT_FOUND));
    let sent: Vec<_> = server
        .requests()
        .into_iter()
        .filter(|r| r.path == "/api/integrations/events")
        .collect();
    assert_eq!(sent.len(), 1, "404 is not retried");
    assert_eq!(sent[0].headers["x-esauti-source"], "sdk");
    server.stop().await;
}

// ----- Line counts ----------------------------------------------------------

/// The Python examples' lengths: non-blank lines that are not only a
/// comment, imports included, as published in the two READMEs (FastAPI's
/// example is split between its dependency and its route).
const SCHEMATIC_PYTHON_LINES: &[(&str, usize)] = &[
    ("sync_client", 2),
    ("async_client", 7),
    ("exception_handling", 7),
    ("identify", 21),
    ("track", 7),
    ("track_quantity", 6),
    ("upsert_company", 11),
    ("upsert_user", 15),
    ("check_flag", 7),
    ("flask_webhook", 19),
    ("django_webhook", 19),
    ("verify_dependency", 10),
    ("fastapi_webhook", 5),
    ("verify_webhook_manually", 8),
    ("cache_config", 7),
    ("disable_cache", 3),
    ("flag_defaults", 3),
    ("offline_mode", 3),
    ("offline_with_defaults", 7),
    ("timeouts", 7),
    ("retries", 3),
    ("custom_http_client", 8),
];

const ESAUTI_PYTHON_LINES: &[(&str, usize)] = &[
    ("rest_api", 9),
    ("event_injection", 13),
    ("hmac_signing", 12),
    ("configuration", 11),
];

/// One port as the example file presents it.
#[derive(Debug)]
struct Port {
    name: String,
    /// The `N` of `// Python: N lines, here: M`.
    python: usize,
    /// The `M`.
    claimed: usize,
    /// The body's non-blank, non-comment lines, counted here.
    counted: usize,
}

/// Finds every `// Python: N lines, here: M` comment and the function after
/// it, and counts the lines of that function's body (from the line after
/// the signature's `{` to the closing `}` in column 0).
fn ports(source: &str) -> Vec<Port> {
    let lines: Vec<&str> = source.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let Some(rest) = lines[i].strip_prefix("// Python: ") else {
            i += 1;
            continue;
        };
        let (python, claimed) = rest
            .split_once(" lines, here: ")
            .expect("the comment's form");
        let mut j = i + 1;
        while !(lines[j].starts_with("pub fn ") || lines[j].starts_with("pub async fn ")) {
            j += 1;
        }
        let name = lines[j]
            .trim_start_matches("pub ")
            .trim_start_matches("async ")
            .trim_start_matches("fn ")
            .split('(')
            .next()
            .unwrap()
            .to_owned();
        while !lines[j].ends_with('{') {
            j += 1;
        }
        j += 1;
        let mut counted = 0;
        while lines[j] != "}" {
            let line = lines[j].trim();
            if !line.is_empty() && !line.starts_with("//") {
                counted += 1;
            }
            j += 1;
        }
        out.push(Port {
            name,
            python: python.parse().unwrap(),
            claimed: claimed.parse().unwrap(),
            counted,
        });
        i = j;
    }
    out
}

fn check_counts(source: &str, expected: &[(&str, usize)]) {
    let ports = ports(source);
    let names: Vec<&str> = ports.iter().map(|p| p.name.as_str()).collect();
    let wanted: Vec<&str> = expected.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        names, wanted,
        "every Python example has exactly one port, in order"
    );
    let table: BTreeMap<&str, usize> = expected.iter().copied().collect();
    for port in &ports {
        assert_eq!(
            port.python,
            table[port.name.as_str()],
            "{port:?}: the Python count"
        );
        assert_eq!(
            port.claimed, port.counted,
            "{port:?}: the comment is out of date"
        );
        assert!(
            port.counted <= port.python,
            "{port:?} is longer than the Python"
        );
        assert!(port.counted > 0, "{port:?} is empty");
    }
}

#[test]
fn every_schematic_port_is_no_longer_than_its_python() {
    check_counts(
        include_str!("../examples/python_schematic.rs"),
        SCHEMATIC_PYTHON_LINES,
    );
}

#[test]
fn every_esauti_port_is_no_longer_than_its_python() {
    check_counts(
        include_str!("../examples/python_esauti.rs"),
        ESAUTI_PYTHON_LINES,
    );
}

#[test]
fn the_counter_counts_only_body_code() {
    let source = "// Python: 3 lines, here: 2\npub async fn f(\n    a: u8,\n) -> u8 {\n    // a comment\n\n    let b = a;\n    b\n}\n";
    let ports = ports(source);
    assert_eq!(ports.len(), 1);
    assert_eq!(
        (
            ports[0].name.as_str(),
            ports[0].python,
            ports[0].claimed,
            ports[0].counted
        ),
        ("f", 3, 2, 2)
    );
}

/// `docs/python.md` shows every port; it must show them as they are here.
#[test]
fn the_guide_shows_each_port_as_written() {
    let guide = include_str!("../../../docs/python.md");
    let mut checked = 0;
    for source in [
        include_str!("../examples/python_schematic.rs"),
        include_str!("../examples/python_esauti.rs"),
    ] {
        let lines: Vec<&str> = source.lines().collect();
        for (at, line) in lines.iter().enumerate() {
            if !(line.starts_with("pub fn ") || line.starts_with("pub async fn ")) {
                continue;
            }
            if !lines[at - 1].starts_with("// Python: ") {
                continue;
            }
            let end = at + lines[at..].iter().position(|l| *l == "}").unwrap();
            let function = lines[at - 1..=end].join("\n");
            assert!(
                guide.contains(&function),
                "docs/python.md does not show this as written:\n{function}"
            );
            checked += 1;
        }
    }
    assert_eq!(
        checked,
        SCHEMATIC_PYTHON_LINES.len() + ESAUTI_PYTHON_LINES.len()
    );
}
