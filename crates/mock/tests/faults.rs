//! Fault scripts behave as scripted, then the route recovers.

mod common;

use std::time::{Duration, Instant};

use common::{Api, data};
use flagwire_mock::{Fault, Host, MockServer};
use http::Method;
use serde_json::json;

#[tokio::test]
async fn scripted_faults_then_normal() {
    let server = MockServer::start().await.unwrap();
    let api = Api::rest(&server);
    server
        .inject(
            Host::Rest,
            Method::GET,
            "/companies/{company_id}",
            [
                Fault::status(429).with_retry_after("2").with_header(
                    http::HeaderName::from_static("x-ratelimit-reset"),
                    http::HeaderValue::from_static("1700000000"),
                ),
                Fault::status(503).with_body(r#"{"error":"custom"}"#),
                Fault::Delay(Duration::from_millis(150)),
                Fault::DropConnection,
                Fault::TruncatedBody,
                Fault::MalformedJson,
            ],
        )
        .unwrap();
    assert_eq!(server.pending_faults(), 6);

    let r = api.get("/companies/comp_x").await;
    assert_eq!(r.status, 429);
    assert_eq!(r.headers["retry-after"], "2");
    assert_eq!(r.headers["x-ratelimit-reset"], "1700000000");
    assert_eq!(r.body["error"], "Too Many Requests");

    let r = api.get("/companies/comp_x").await;
    assert_eq!(r.status, 503);
    assert_eq!(r.body, json!({"error": "custom"}));

    let start = Instant::now();
    let r = api.get("/companies/comp_x").await;
    assert!(start.elapsed() >= Duration::from_millis(150));
    assert_eq!(
        r.status, 404,
        "after the delay the request is handled normally"
    );

    let err = api
        .try_send(Method::GET, "/companies/comp_x", None)
        .await
        .unwrap_err();
    assert!(!err.is_empty());

    let err = api.try_send(Method::GET, "/companies/comp_x", None).await;
    assert!(err.is_err(), "truncated body must fail: {err:?}");

    let (status, _, body) = api
        .try_send(Method::GET, "/companies/comp_x", None)
        .await
        .unwrap();
    assert_eq!(status, 404);
    assert!(serde_json::from_slice::<serde_json::Value>(&body).is_err());

    assert_eq!(server.pending_faults(), 0);
    assert_eq!(api.get("/companies/comp_x").await.status, 404);
    // Other routes were never affected.
    data(api.get("/companies").await, 200);
    server.stop().await;
}

#[tokio::test]
async fn faults_match_host_method_and_pattern() {
    let server = MockServer::start().await.unwrap();
    let api = Api::rest(&server);
    let capture = Api::capture(&server);
    server
        .inject(Host::Capture, Method::POST, "/batch", [Fault::status(500)])
        .unwrap();
    server
        .inject(Host::Rest, Method::POST, "/companies", [Fault::status(502)])
        .unwrap();
    // Same route again appends to its script.
    server
        .inject(Host::Rest, Method::POST, "/companies", [Fault::status(504)])
        .unwrap();

    data(api.get("/companies").await, 200);
    assert_eq!(
        api.post("/companies", json!({"keys": {"id": "a"}}))
            .await
            .status,
        502
    );
    assert_eq!(
        api.post("/companies", json!({"keys": {"id": "a"}}))
            .await
            .status,
        504
    );
    data(
        api.post("/companies", json!({"keys": {"id": "a"}})).await,
        200,
    );
    assert_eq!(
        capture.post("/batch", json!({"events": []})).await.status,
        500
    );

    assert!(
        server
            .inject(Host::Rest, Method::GET, "companies", [Fault::status(500)])
            .is_err()
    );
    server
        .inject(Host::Rest, Method::GET, "/companies", [Fault::status(500)])
        .unwrap();
    server.clear_faults();
    assert_eq!(server.pending_faults(), 0);
    data(api.get("/companies").await, 200);

    let faulted: Vec<_> = server
        .requests()
        .into_iter()
        .filter(|r| r.status >= 500)
        .collect();
    assert_eq!(faulted.len(), 3);
    server.stop().await;
}
