//! The eSauti emulator over real loopback HTTP: credentials, signatures,
//! idempotency, validation, faults, outages and the contacts resource.

use std::time::Duration;

use bytes::Bytes;
use flagwire_core::esauti::EventEnvelope;
use flagwire_core::esauti::api::contacts::{
    CreateContact, DeleteContact, EditContact, GetContact, ListContacts, ReplaceContact,
};
use flagwire_core::esauti::api::models::OrderDirection;
use flagwire_core::operation::Operation;
use flagwire_mock::esauti::{
    DEFAULT_API_KEY, DEFAULT_BEARER_TOKEN, DEFAULT_HMAC_SECRET, EsautiServer,
};
use flagwire_mock::{Fault, Host, REDACTED};
use flagwire_webhooks::{Esauti, Signer};
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};

const EVENTS: &str = "/v1/inbound/event";

/// A response, body kept raw.
#[derive(Debug)]
struct Resp {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Resp {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }
}

fn client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

async fn try_send(req: Request<Bytes>) -> Result<Resp, String> {
    let (parts, body) = req.into_parts();
    let resp = client()
        .request(Request::from_parts(parts, Full::new(body)))
        .await
        .map_err(|e| format!("{e:?}"))?;
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("{e:?}"))?
        .to_bytes();
    Ok(Resp {
        status,
        headers,
        body,
    })
}

async fn send(req: Request<Bytes>) -> Resp {
    try_send(req).await.expect("transport error")
}

fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// How an event request authenticates.
#[derive(Clone, Copy)]
enum Auth<'a> {
    Key(&'a str),
    Bearer(&'a str),
    None,
}

/// An event request: credentials, `Idempotency-Key`, and a signature made
/// with `secret` at `ts` over `path` (unsigned when `secret` is `None`).
struct EventReq<'a> {
    base: String,
    path: &'a str,
    auth: Auth<'a>,
    key: Option<&'a str>,
    secret: Option<&'a str>,
    ts: i64,
    body: Bytes,
}

impl<'a> EventReq<'a> {
    fn new(server: &EsautiServer, key: &'a str, body: impl Into<Bytes>) -> Self {
        EventReq {
            base: server.events_url(),
            path: EVENTS,
            auth: Auth::Key(DEFAULT_API_KEY),
            key: Some(key),
            secret: Some(DEFAULT_HMAC_SECRET),
            ts: unix_now(),
            body: body.into(),
        }
    }

    fn build(&self) -> Request<Bytes> {
        let mut req = Request::builder()
            .method(Method::POST)
            .uri(format!("{}{}", self.base, self.path))
            .header("content-type", "application/json")
            .header("x-esauti-source", "tests")
            .header("x-request-id", "req-1");
        req = match self.auth {
            Auth::Key(k) => req.header("x-esauti-api-key", k),
            Auth::Bearer(t) => req.header("authorization", format!("Bearer {t}")),
            Auth::None => req,
        };
        if let Some(k) = self.key {
            req = req.header("idempotency-key", k);
        }
        if let Some(secret) = self.secret {
            let signed = Signer::<Esauti>::new(secret)
                .unwrap()
                .sign("POST", self.path, self.ts, &self.body);
            for (name, value) in signed.iter() {
                req = req.header(name, value);
            }
        }
        req.body(self.body.clone()).unwrap()
    }

    async fn send(&self) -> Resp {
        send(self.build()).await
    }
}

fn order(value: i64) -> Bytes {
    EventEnvelope::builder("order.created")
        .customer_id("cus_1")
        .entity("order", "ord_1")
        .property("currency", "USD")
        .property("value", value)
        .build()
        .unwrap()
        .to_bytes()
        .unwrap()
}

fn assert_event_error(resp: &Resp, status: u16) -> String {
    assert_eq!(resp.status, status, "{:?}", resp.body);
    let body = resp.json();
    assert_eq!(body["error"]["code"], status, "{body}");
    body["error"]["message"]
        .as_str()
        .expect("a message")
        .to_owned()
}

fn assert_rest_error(resp: &Resp, status: u16) -> String {
    assert_eq!(resp.status, status, "{:?}", resp.body);
    let body = resp.json();
    assert_eq!(body["errors"][0]["code"], status, "{body}");
    body["errors"][0]["message"]
        .as_str()
        .expect("a message")
        .to_owned()
}

// ----- events: credentials and signatures ----------------------------------

#[tokio::test]
async fn api_key_or_bearer_token_and_nothing_else() {
    let server = EsautiServer::start().await.unwrap();
    assert_eq!(server.api_key(), DEFAULT_API_KEY);
    assert_eq!(server.bearer_token(), DEFAULT_BEARER_TOKEN);
    assert_eq!(server.hmac_secret(), Some(DEFAULT_HMAC_SECRET));

    let mut req = EventReq::new(&server, "k-key", order(5));
    let resp = req.send().await;
    assert_eq!(resp.status, 202, "{:?}", resp.body);
    let receipt = resp.json();
    assert_eq!(receipt["received"], true);
    assert_eq!(receipt["status"], "accepted");
    assert_eq!(receipt["duplicate"], false);
    assert!(receipt["event_id"].as_str().unwrap().starts_with("evt_"));

    req.key = Some("k-bearer");
    req.auth = Auth::Bearer(DEFAULT_BEARER_TOKEN);
    assert_eq!(req.send().await.status, 202);

    req.key = Some("k-wrong");
    for auth in [
        Auth::Key("esk_wrong"),
        Auth::Key(DEFAULT_BEARER_TOKEN),
        Auth::Bearer("est_wrong"),
        Auth::Bearer(DEFAULT_API_KEY),
        Auth::None,
    ] {
        req.auth = auth;
        assert_event_error(&req.send().await, 401);
    }
    assert_eq!(server.events().len(), 2);

    // Every attempt is recorded, with credentials and signatures redacted.
    let requests = server.requests();
    assert_eq!(requests.len(), 7);
    assert!(requests.iter().all(|r| r.host == Host::Capture));
    assert_eq!(requests[0].operation, Some("injectEvent"));
    assert_eq!(requests[0].headers["x-esauti-api-key"], REDACTED);
    assert_eq!(requests[0].headers["x-esauti-signature"], REDACTED);
    assert_ne!(requests[0].headers["x-esauti-timestamp"], REDACTED);
    assert_eq!(requests[1].headers["authorization"], REDACTED);
    let statuses: Vec<u16> = requests.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [202, 202, 401, 401, 401, 401, 401]);
    server.stop().await;
}

#[tokio::test]
async fn configured_credentials_replace_the_defaults() {
    let server = EsautiServer::builder()
        .api_key("esk_live_1")
        .bearer_token("est_live_1")
        .start()
        .await
        .unwrap();
    let mut req = EventReq::new(&server, "k1", order(1));
    assert_event_error(&req.send().await, 401);
    req.auth = Auth::Key("esk_live_1");
    assert_eq!(req.send().await.status, 202);
    req.key = Some("k2");
    req.auth = Auth::Bearer("est_live_1");
    assert_eq!(req.send().await.status, 202);
    server.stop().await;

    for builder in [
        EsautiServer::builder().api_key(""),
        EsautiServer::builder().bearer_token(""),
        EsautiServer::builder().hmac_secret(Some(String::new())),
    ] {
        let err = builder.start().await.unwrap_err();
        assert!(
            matches!(err, flagwire_mock::MockError::InvalidConfig(_)),
            "{err}"
        );
    }
}

#[tokio::test]
async fn signature_vectors_from_the_reference_sdk() {
    // The vector is from 2023, so widen the clock window to cover it.
    let server = EsautiServer::builder()
        .hmac_secret(Some("super-secret".into()))
        .max_clock_skew(Duration::from_secs(100 * 365 * 86_400))
        .start()
        .await
        .unwrap();
    let body = br#"{"type":"order.created"}"#;
    let good = "sha256=70069ac894eebe92d767d0add5927d08297ca5653e43c4458cbb40acd4930c62";
    let other_vector = "sha256=1e7fd5126f5167807f3231c6b87ba8388722d32ce9bb41cc1818c72c0c606d2d";
    let request = |path: &str, sig: Option<&str>, ts: &str, body: &'static [u8]| {
        let mut req = Request::builder()
            .method(Method::POST)
            .uri(format!("{}{path}", server.events_url()))
            .header("x-esauti-api-key", DEFAULT_API_KEY)
            .header("idempotency-key", "vec-1")
            .header("x-esauti-timestamp", ts);
        if let Some(sig) = sig {
            req = req.header("x-esauti-signature", sig);
        }
        req.body(Bytes::from_static(body)).unwrap()
    };

    // Accepted: the signature passes, so validation answers (the vector's
    // body lacks the properties order.created requires).
    let resp = send(request(EVENTS, Some(good), "1700000000", body)).await;
    assert_event_error(&resp, 422);
    // The query string is not signed.
    let resp = send(request(
        &format!("{EVENTS}?trace=1"),
        Some(good),
        "1700000000",
        body,
    ))
    .await;
    assert_event_error(&resp, 422);

    for (sig, ts, body) in [
        (Some("sha256=badhash"), "1700000000", &body[..]),
        (Some(other_vector), "1700000000", &body[..]),
        (
            Some(good.trim_start_matches("sha256=")),
            "1700000000",
            &body[..],
        ),
        (Some(good), "1700000001", &body[..]),
        (Some(good), "1700000000", br#"{"type":"order.created"} "#),
        (None, "1700000000", &body[..]),
    ] {
        let resp = send(request(EVENTS, sig, ts, body)).await;
        let message = assert_event_error(&resp, 401);
        assert!(message.contains("signature"), "{message}");
    }
    assert!(server.events().is_empty());
    server.stop().await;
}

#[tokio::test]
async fn timestamps_outside_the_window_are_rejected() {
    let server = EsautiServer::start().await.unwrap();
    let now = unix_now();
    let mut req = EventReq::new(&server, "ts", order(1));
    for ts in [now - 400, now + 400] {
        req.ts = ts;
        let message = assert_event_error(&req.send().await, 401);
        assert!(
            message.contains("tolerance") || message.contains("timestamp"),
            "{message}"
        );
    }
    req.ts = now - 60;
    assert_eq!(req.send().await.status, 202);
    server.stop().await;

    let server = EsautiServer::builder()
        .max_clock_skew(Duration::from_secs(5))
        .start()
        .await
        .unwrap();
    let mut req = EventReq::new(&server, "ts", order(1));
    req.ts = now - 60;
    assert_event_error(&req.send().await, 401);
    server.stop().await;
}

#[tokio::test]
async fn without_a_secret_events_need_no_signature() {
    let server = EsautiServer::builder()
        .hmac_secret(None)
        .start()
        .await
        .unwrap();
    assert_eq!(server.hmac_secret(), None);
    let mut req = EventReq::new(&server, "unsigned", order(1));
    req.secret = None;
    assert_eq!(req.send().await.status, 202);
    // Credentials are still required.
    req.auth = Auth::None;
    req.key = Some("unsigned-2");
    assert_event_error(&req.send().await, 401);
    server.stop().await;
}

// ----- events: idempotency and validation ----------------------------------

#[tokio::test]
async fn idempotency_keys_deduplicate() {
    let server = EsautiServer::start().await.unwrap();
    let first = EventReq::new(&server, "idem-1", order(7)).send().await;
    assert_eq!(first.status, 202);
    let again = EventReq::new(&server, "idem-1", order(7)).send().await;
    assert_eq!(again.status, 200);
    assert_eq!(again.json()["duplicate"], true);
    assert_eq!(again.json()["event_id"], first.json()["event_id"]);
    let other = EventReq::new(&server, "idem-2", order(7)).send().await;
    assert_eq!(other.status, 202);
    assert_ne!(other.json()["event_id"], first.json()["event_id"]);

    let events = server.events();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].event_id, first.json()["event_id"]);
    assert_eq!(events[0].idempotency_key, "idem-1");
    assert_eq!(events[0].deliveries, 2);
    assert_eq!(events[0].source_header.as_deref(), Some("tests"));
    assert_eq!(events[0].request_id.as_deref(), Some("req-1"));
    assert_eq!(events[0].envelope["properties"]["value"], 7);
    assert_eq!(events[1].deliveries, 1);

    // Rejected requests are not deliveries.
    let mut bad = EventReq::new(&server, "idem-1", order(7));
    bad.auth = Auth::None;
    assert_event_error(&bad.send().await, 401);
    assert_eq!(server.events()[0].deliveries, 2);

    // Concurrent repeats: exactly one is accepted as new.
    let sends = (0..8).map(|_| {
        let req = EventReq::new(&server, "idem-3", order(1)).build();
        tokio::spawn(send(req))
    });
    let mut statuses = Vec::new();
    for task in sends {
        statuses.push(task.await.unwrap().status.as_u16());
    }
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 200, 200, 200, 200, 200, 200, 202]);
    let events = server.events();
    assert_eq!(events.len(), 3);
    assert_eq!(events[2].deliveries, 8);

    // The key is required.
    let mut req = EventReq::new(&server, "", order(1));
    req.key = None;
    let message = assert_event_error(&req.send().await, 400);
    assert!(message.contains("Idempotency-Key"), "{message}");
    req.key = Some("  ");
    assert_event_error(&req.send().await, 400);
    server.stop().await;
}

#[tokio::test]
async fn envelopes_are_validated_against_the_registry() {
    let server = EsautiServer::start().await.unwrap();
    // Zero is a value.
    assert_eq!(
        EventReq::new(&server, "zero", order(0)).send().await.status,
        202
    );
    assert_eq!(server.events()[0].envelope["properties"]["value"], 0);

    let now = "2026-01-01T00:00:00Z";
    let missing = json!({
        "id": "evt_x", "type": "order.created", "occurred_at": now, "source": "sdk",
        "customer": {"id": "cus_1"}, "entity": {"type": "order", "id": "o1"},
        "properties": {"currency": "", "value": null},
    });
    let resp = EventReq::new(&server, "missing", missing.to_string())
        .send()
        .await;
    let message = assert_event_error(&resp, 422);
    assert!(message.contains("properties.currency"), "{message}");
    let body = resp.json();
    assert_eq!(body["error"]["event_type"], "order.created");
    assert_eq!(
        body["error"]["missing"],
        json!(["properties.currency", "properties.value"])
    );

    let no_customer_id = json!({
        "id": "evt_y", "type": "customer.created", "source": "sdk",
        "customer": {}, "entity": {"type": "customer"}, "properties": {},
    });
    let resp = EventReq::new(&server, "cust", no_customer_id.to_string())
        .send()
        .await;
    assert_event_error(&resp, 422);
    let missing = resp.json()["error"]["missing"].clone();
    assert!(
        missing.as_array().unwrap().contains(&json!("customer.id"))
            && missing.as_array().unwrap().contains(&json!("occurred_at")),
        "{missing}"
    );

    // Custom types have no required properties.
    let custom = EventEnvelope::builder("invoice.exported")
        .customer_id("cus_1")
        .build()
        .unwrap()
        .to_bytes()
        .unwrap();
    assert_eq!(
        EventReq::new(&server, "custom", custom).send().await.status,
        202
    );

    // Malformed bodies.
    for (key, body) in [
        ("b1", "not json".to_owned()),
        ("b2", "[1,2]".to_owned()),
        ("b3", json!({"type": 5}).to_string()),
        ("b4", json!({"type": ""}).to_string()),
        ("b5", json!({"source": "sdk"}).to_string()),
        ("b6", json!({"type": "invoice.exported"}).to_string()),
    ] {
        let resp = EventReq::new(&server, key, body).send().await;
        assert_event_error(&resp, 400);
    }
    let resp = EventReq::new(
        &server,
        "b7",
        json!({
            "id": "evt_z", "type": "invoice.exported", "occurred_at": "yesterday",
            "source": "sdk", "customer": {}, "entity": {}, "properties": {},
        })
        .to_string(),
    )
    .send()
    .await;
    assert!(assert_event_error(&resp, 400).contains("occurred_at"));
    assert_eq!(server.events().len(), 2);
    server.stop().await;
}

#[tokio::test]
async fn other_event_paths_and_methods() {
    let server = EsautiServer::start().await.unwrap();
    let req = Request::builder()
        .method(Method::GET)
        .uri(format!("{}{EVENTS}", server.events_url()))
        .body(Bytes::new())
        .unwrap();
    let resp = send(req).await;
    assert_event_error(&resp, 405);
    assert_eq!(resp.headers["allow"], "POST");
    let mut req = EventReq::new(&server, "p", order(1));
    req.path = "/v1/inbound/events";
    assert_event_error(&req.send().await, 404);
    server.stop().await;
}

// ----- faults and outages ---------------------------------------------------

#[tokio::test]
async fn faults_come_first_then_the_route_recovers() {
    let server = EsautiServer::start().await.unwrap();
    server.inject(Fault::status(503).with_retry_after("2"));
    server.inject_events([
        Fault::status(429)
            .with_retry_after("1")
            .with_body(r#"{"error":{"code":429,"message":"slow down"}}"#),
        Fault::DropConnection,
    ]);
    assert_eq!(server.pending_faults(), 3);

    // Faults apply before credentials are checked.
    let mut req = EventReq::new(&server, "f1", order(1));
    req.auth = Auth::None;
    let resp = req.send().await;
    assert_event_error(&resp, 503);
    assert_eq!(resp.headers["retry-after"], "2");

    req.auth = Auth::Key(DEFAULT_API_KEY);
    let resp = req.send().await;
    assert_eq!(assert_event_error(&resp, 429), "slow down");
    assert_eq!(resp.headers["retry-after"], "1");

    assert!(try_send(req.build()).await.is_err());
    assert_eq!(server.pending_faults(), 0);

    let resp = req.send().await;
    assert_eq!(resp.status, 202);
    let events = server.events();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].deliveries, 1);
    let statuses: Vec<u16> = server.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [503, 429, 0, 202]);

    // Body faults spoil an otherwise handled response.
    server.inject(Fault::MalformedJson);
    let resp = EventReq::new(&server, "f2", order(1)).send().await;
    assert_eq!(resp.status, 202);
    assert!(serde_json::from_slice::<Value>(&resp.body).is_err());
    assert_eq!(server.events().len(), 2);

    // A REST route has its own script.
    server
        .inject_route(
            Host::Rest,
            Method::GET,
            "/api/contacts/{id}",
            [Fault::status(500)],
        )
        .unwrap();
    assert!(
        server
            .inject_route(Host::Rest, Method::GET, "api", [Fault::status(500)])
            .is_err()
    );
    let resp = send(rest(&server, &GetContact::new(1))).await;
    assert_rest_error(&resp, 500);
    let resp = send(rest(&server, &GetContact::new(1))).await;
    assert_rest_error(&resp, 404);
    server.stop().await;
}

#[tokio::test]
async fn an_outage_answers_503_until_it_ends() {
    let server = EsautiServer::start().await.unwrap();
    server.set_events_down(true);
    assert!(server.events_down());
    for key in ["o1", "o1", "o2"] {
        let resp = EventReq::new(&server, key, order(1)).send().await;
        assert_event_error(&resp, 503);
        assert!(resp.headers.get("retry-after").is_none());
    }
    // The REST API stays up.
    assert_eq!(send(rest(&server, &ListContacts::new())).await.status, 200);

    server.set_events_down(false);
    assert_eq!(
        EventReq::new(&server, "o1", order(1)).send().await.status,
        202
    );
    assert_eq!(server.events().len(), 1);
    assert_eq!(server.events()[0].deliveries, 1);
    let statuses: Vec<u16> = server.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [503, 503, 503, 200, 202]);

    server.set_events_down(true);
    server.reset();
    assert!(!server.events_down());
    assert!(server.events().is_empty() && server.requests().is_empty());
    server.stop().await;
}

// ----- REST -------------------------------------------------------------------

/// A REST request for a generated operation, authenticated with the API key.
fn rest<O: Operation>(server: &EsautiServer, op: &O) -> Request<Bytes> {
    let mut req = op.to_request(&server.rest_url()).unwrap();
    req.headers_mut()
        .insert("x-esauti-api-key", DEFAULT_API_KEY.parse().unwrap());
    req
}

/// Sends `op` and decodes the answer with the operation's own decoder.
async fn call<O: Operation>(server: &EsautiServer, op: &O) -> (StatusCode, O::Output) {
    let resp = send(rest(server, op)).await;
    let out = O::parse_response(resp.status, &resp.headers, &resp.body)
        .unwrap_or_else(|e| panic!("{} failed: {e:?}", O::OPERATION_ID));
    (resp.status, out)
}

fn fields(pairs: Value) -> std::collections::BTreeMap<String, Value> {
    serde_json::from_value(pairs).unwrap()
}

#[tokio::test]
async fn contacts_crud() {
    let server = EsautiServer::start().await.unwrap();
    let (status, created) = call(
        &server,
        &CreateContact::new(fields(
            json!({"email": "ann@example.com", "firstname": "Ann", "points": 3}),
        )),
    )
    .await;
    assert_eq!(status, 201);
    let contact = &created["contact"];
    assert_eq!(contact["id"], 1);
    assert!(contact["id"].is_i64());
    assert_eq!(contact["fields"]["all"]["email"], "ann@example.com");
    assert_eq!(contact["fields"]["all"]["id"], 1);
    assert!(contact["dateModified"].is_null());

    let (status, got) = call(&server, &GetContact::new(1)).await;
    assert_eq!(status, 200);
    assert_eq!(got["contact"], *contact);

    let (status, edited) = call(
        &server,
        &EditContact::new(1, fields(json!({"lastname": "Lee", "points": null}))),
    )
    .await;
    assert_eq!(status, 200);
    let all = &edited["contact"]["fields"]["all"];
    assert_eq!(all["lastname"], "Lee");
    assert_eq!(all["firstname"], "Ann");
    assert!(all.get("points").is_none());
    assert!(edited["contact"]["dateModified"].is_string());

    // PATCH needs the contact; PUT creates it, with that ID.
    let resp = send(rest(
        &server,
        &EditContact::new(9, fields(json!({"firstname": "X"}))),
    ))
    .await;
    assert_rest_error(&resp, 404);
    let (status, put) = call(
        &server,
        &ReplaceContact::new(9, fields(json!({"email": "bo@example.com"}))),
    )
    .await;
    assert_eq!(status, 201);
    assert_eq!(put["contact"]["id"], 9);
    let (status, put) = call(
        &server,
        &ReplaceContact::new(1, fields(json!({"firstname": "Annie"}))),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        put["contact"]["fields"]["all"],
        json!({"id": 1, "firstname": "Annie"})
    );
    // New IDs continue after the highest one.
    let (_, next) = call(&server, &CreateContact::new(fields(json!({})))).await;
    assert_eq!(next["contact"]["id"], 10);

    let (status, deleted) = call(&server, &DeleteContact::new(9)).await;
    assert_eq!(status, 200);
    assert_eq!(deleted["contact"]["id"], 9);
    assert_rest_error(&send(rest(&server, &GetContact::new(9))).await, 404);
    assert_rest_error(&send(rest(&server, &DeleteContact::new(9))).await, 404);
    assert_eq!(server.contacts().len(), 2);

    // Bad bodies and IDs.
    for body in [&b"[]"[..], b"not json", b"", br#"{"email": "nope"}"#] {
        let req = Request::builder()
            .method(Method::POST)
            .uri(format!("{}/contacts/new", server.rest_url()))
            .header("x-esauti-api-key", DEFAULT_API_KEY)
            .body(Bytes::copy_from_slice(body))
            .unwrap();
        assert_rest_error(&send(req).await, 400);
    }
    for path in ["/contacts/abc", "/contacts/0", "/contacts/-1"] {
        let req = Request::builder()
            .uri(format!("{}{path}", server.rest_url()))
            .header("x-esauti-api-key", DEFAULT_API_KEY)
            .body(Bytes::new())
            .unwrap();
        assert_rest_error(&send(req).await, 404);
    }
    assert!(server.add_contact(json!("x")).is_err());
    server.stop().await;
}

#[tokio::test]
async fn contact_lists_page_search_and_sort() {
    let server = EsautiServer::start().await.unwrap();
    for (email, first, last) in [
        ("carl@example.com", "Carl", "Zed"),
        ("ann@example.org", "Ann", "Young"),
        ("bob@example.com", "Bob", "Xu"),
        ("dee@other.net", "Dee", "Ann"),
    ] {
        server
            .add_contact(json!({"email": email, "firstname": first, "lastname": last}))
            .unwrap();
    }
    let ids = |out: &flagwire_core::Traits| -> Vec<i64> {
        let mut ids: Vec<i64> = out["contacts"]
            .as_object()
            .unwrap()
            .values()
            .map(|c| c["id"].as_i64().unwrap())
            .collect();
        ids.sort_unstable();
        ids
    };

    let (_, all) = call(&server, &ListContacts::new()).await;
    assert_eq!(all["total"], 4);
    assert_eq!(ids(&all), [1, 2, 3, 4]);

    let (_, page) = call(&server, &ListContacts::new().start(1).limit(2)).await;
    assert_eq!(page["total"], 4);
    assert_eq!(ids(&page), [2, 3]);
    let (_, past) = call(&server, &ListContacts::new().start(10)).await;
    assert_eq!(past["total"], 4);
    assert_eq!(ids(&past), Vec::<i64>::new());

    let (_, found) = call(&server, &ListContacts::new().search("EXAMPLE.COM")).await;
    assert_eq!(found["total"], 2);
    assert_eq!(ids(&found), [1, 3]);
    let (_, found) = call(&server, &ListContacts::new().search("ann")).await;
    assert_eq!(ids(&found), [2, 4]);
    let (_, found) = call(&server, &ListContacts::new().search("email:ann")).await;
    assert_eq!(ids(&found), [2]);
    let (_, found) = call(&server, &ListContacts::new().search("name:bob xu")).await;
    assert_eq!(ids(&found), [3]);

    // Order is kept on the wire: check the raw body.
    let resp = send(rest(
        &server,
        &ListContacts::new()
            .order_by("email")
            .order_by_dir(OrderDirection::Desc)
            .limit(3),
    ))
    .await;
    assert_eq!(resp.status, 200);
    let text = std::str::from_utf8(&resp.body).unwrap();
    let positions: Vec<usize> = ["\"4\":", "\"1\":", "\"3\":"]
        .iter()
        .map(|k| text.find(k).unwrap_or_else(|| panic!("{k} in {text}")))
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{text}");
    assert!(!text.contains("\"2\":{"), "{text}");

    for query in ["limit=-1", "start=x", "orderByDir=UP"] {
        let req = Request::builder()
            .uri(format!("{}/contacts?{query}", server.rest_url()))
            .header("x-esauti-api-key", DEFAULT_API_KEY)
            .body(Bytes::new())
            .unwrap();
        assert_rest_error(&send(req).await, 400);
    }
    server.stop().await;
}

#[tokio::test]
async fn rest_credentials_and_unemulated_routes() {
    let server = EsautiServer::start().await.unwrap();
    let get = |path: &str, auth: Option<(&str, String)>| {
        let mut req = Request::builder().uri(format!("{}{path}", server.rest_url()));
        if let Some((name, value)) = auth {
            req = req.header(name, value);
        }
        req.body(Bytes::new()).unwrap()
    };
    let key = || Some(("x-esauti-api-key", DEFAULT_API_KEY.to_owned()));

    assert_eq!(send(get("/contacts", key())).await.status, 200);
    let bearer = Some(("authorization", format!("Bearer {DEFAULT_BEARER_TOKEN}")));
    assert_eq!(send(get("/contacts", bearer)).await.status, 200);
    let wrong = Some(("x-esauti-api-key", "esk_wrong".to_owned()));
    assert_rest_error(&send(get("/contacts", wrong)).await, 401);
    assert_rest_error(&send(get("/contacts", None)).await, 401);
    // REST requests are never signed, even with a secret configured.
    assert!(server.hmac_secret().is_some());

    for path in [
        "/campaigns",
        "/campaigns/3",
        "/fields/contact",
        "/contacts/1/segments",
    ] {
        let resp = send(get(path, key())).await;
        assert_eq!(assert_rest_error(&resp, 501), "not emulated", "{path}");
    }
    assert_rest_error(&send(get("/nothing", key())).await, 404);
    assert_rest_error(&send(get("/contacts/1/nothing", key())).await, 404);

    let req = Request::builder()
        .method(Method::DELETE)
        .uri(format!("{}/contacts", server.rest_url()))
        .header("x-esauti-api-key", DEFAULT_API_KEY)
        .body(Bytes::new())
        .unwrap();
    let resp = send(req).await;
    assert_rest_error(&resp, 405);
    assert_eq!(resp.headers["allow"], "GET");

    let ops: Vec<Option<&str>> = server.requests().iter().map(|r| r.operation).collect();
    assert_eq!(ops[0], Some("listContacts"));
    assert_eq!(ops[4], Some("listCampaigns"));
    assert!(server.requests().iter().all(|r| r.host == Host::Rest));
    server.stop().await;
}

#[test]
fn blocking_server_serves_synchronous_callers() {
    let server = EsautiServer::start_blocking().unwrap();
    server
        .add_contact(json!({"email": "z@example.com"}))
        .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let resp = rt.block_on(EventReq::new(&server, "blk", order(2)).send());
    assert_eq!(resp.status, 202);
    assert_eq!(server.events().len(), 1);
    assert_eq!(server.contacts().len(), 1);
    server.stop();
}
