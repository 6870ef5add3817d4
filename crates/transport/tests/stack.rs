//! The default stack against real hyper servers on 127.0.0.1.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, UNIX_EPOCH};

use bytes::Bytes;
use flagwire_transport::auth::{self, HmacSha256Signer, Secret};
use flagwire_transport::retry::RetryLayer;
use flagwire_transport::{
    BoxTransport, HttpsClient, RequestOptions, RetryBudget, RetryPolicy, TimeoutKind,
    TransportBuilder, TransportError,
};
use http::{Request, Response, StatusCode};
use support::{Reply, get, ok, post, serve, status};
use tower::ServiceExt;

/// Fast retries: 1 ms base delay, no budget, no jitter.
fn fast() -> TransportBuilder {
    TransportBuilder::new()
        .retry(
            RetryPolicy::default()
                .base_delay(Duration::from_millis(1))
                .jitter(false),
        )
        .retry_budget(None)
}

async fn send(t: &BoxTransport, req: Request<Bytes>) -> Result<Response<Bytes>, TransportError> {
    t.clone().oneshot(req).await
}

#[tokio::test]
async fn retries_503_503_then_succeeds() {
    let server = serve(|hit| match hit.index {
        0 | 1 => status(503),
        _ => ok("{\"data\":1}"),
    });
    let t = fast().build().unwrap();
    let resp = send(&t, get(&server.url("/flags"))).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.body().as_ref(), b"{\"data\":1}");
    assert_eq!(server.hit_count(), 3);
}

#[tokio::test]
async fn gives_up_with_the_last_response() {
    let server = serve(|_| status(502));
    let t = fast().build().unwrap();
    let err = send(&t, get(&server.url("/"))).await.unwrap_err();
    match &err {
        TransportError::RetriesExhausted {
            attempts,
            last_status,
            ..
        } => {
            assert_eq!(*attempts, 3);
            assert_eq!(*last_status, Some(StatusCode::BAD_GATEWAY));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(
        err.last_response().unwrap().body().as_ref(),
        b"{\"error\":\"status 502\"}"
    );
    assert_eq!(server.hit_count(), 3);
}

#[tokio::test(start_paused = true)]
async fn retry_after_is_honoured_in_virtual_time() {
    let server = serve(|hit| match hit.index {
        0 => Reply::Respond(
            Response::builder()
                .status(429)
                .header("retry-after", "7")
                .body(Bytes::new())
                .unwrap(),
        ),
        _ => ok("{}"),
    });
    // No timer may be pending while real I/O is awaited, or the paused
    // clock would jump to it: no deadlines, no pool or connect timers.
    let client = HttpsClient::builder()
        .connect_timeout(None)
        .pool_idle_timeout(None);
    let t = TransportBuilder::new()
        .client(client)
        .timeout(None)
        .attempt_timeout(None)
        .retry_budget(None)
        .build()
        .unwrap();
    let start = tokio::time::Instant::now();
    let resp = send(&t, get(&server.url("/"))).await.unwrap();
    let waited = start.elapsed();
    assert_eq!(resp.status(), 200);
    assert_eq!(server.hit_count(), 2);
    // Exactly the server's delay: Retry-After gets no jitter, and the
    // default back-off (about 1 s) was not used.
    assert!(
        waited >= Duration::from_secs(7) && waited < Duration::from_millis(7050),
        "{waited:?}"
    );
}

#[tokio::test]
async fn broken_connections_are_retried() {
    let server = serve(|hit| match hit.index {
        0 => Reply::BreakMidBody {
            declared: 100,
            sent: Bytes::from_static(b"{\"data\""),
        },
        1 => Reply::Hangup,
        _ => ok("{\"data\":true}"),
    });
    let t = fast().build().unwrap();
    // A POST is resent after a broken connection when it is marked safe to repeat.
    let mut req = post(&server.url("/batch"), "[]");
    req.extensions_mut()
        .insert(RequestOptions::new().idempotent(true));
    let resp = send(&t, req).await.unwrap();
    assert_eq!(resp.body().as_ref(), b"{\"data\":true}");
    assert_eq!(server.hit_count(), 3);
}

#[tokio::test]
async fn broken_connection_on_every_attempt_reports_the_io_error() {
    let server = serve(|_| Reply::Hangup);
    let t = fast().build().unwrap();
    let err = send(&t, get(&server.url("/"))).await.unwrap_err();
    match err {
        TransportError::RetriesExhausted {
            attempts: 3,
            source: Some(inner),
            ..
        } => assert!(matches!(*inner, TransportError::Io { .. }), "{inner:?}"),
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn refused_connections_are_retried_then_reported() {
    let addr = support::closed_port();
    let t = fast().build().unwrap();
    let err = send(&t, get(&format!("http://{addr}/"))).await.unwrap_err();
    match &err {
        TransportError::RetriesExhausted {
            attempts: 3,
            last_status: None,
            source: Some(inner),
            ..
        } => assert!(matches!(**inner, TransportError::Connect { .. })),
        other => panic!("unexpected {other:?}"),
    }
    assert!(err.to_string().contains("could not connect"), "{err}");
}

#[tokio::test]
async fn slow_attempt_times_out_with_a_typed_error() {
    let server = serve(|_| Reply::After(Duration::from_secs(5), support::response_status(200)));
    let t = fast()
        .retry(RetryPolicy::none())
        .attempt_timeout(Some(Duration::from_millis(100)))
        .build()
        .unwrap();
    let err = send(&t, get(&server.url("/"))).await.unwrap_err();
    match err {
        TransportError::Timeout {
            kind,
            after,
            attempt,
        } => {
            assert_eq!(kind, TimeoutKind::Attempt);
            assert_eq!(after, Duration::from_millis(100));
            assert_eq!(attempt, 1);
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn overall_deadline_stops_retries_and_names_the_attempt() {
    let server = serve(|_| Reply::After(Duration::from_secs(5), support::response_status(200)));
    let t = fast()
        .retry(
            RetryPolicy::default()
                .max_retries(10)
                .base_delay(Duration::from_millis(1)),
        )
        .timeout(Some(Duration::from_millis(350)))
        .attempt_timeout(Some(Duration::from_millis(100)))
        .build()
        .unwrap();
    let err = send(&t, get(&server.url("/"))).await.unwrap_err();
    match err {
        TransportError::Timeout {
            kind: TimeoutKind::Overall,
            after,
            attempt,
        } => {
            assert_eq!(after, Duration::from_millis(350));
            assert!(attempt >= 3, "attempt {attempt}");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(server.hit_count() >= 3);
}

#[tokio::test]
async fn client_errors_are_not_retried() {
    let server = serve(|hit| {
        let code = hit.path.trim_start_matches('/').parse().unwrap();
        status(code)
    });
    let t = fast().build().unwrap();
    for (i, code) in [400u16, 401, 403, 404, 409, 422].into_iter().enumerate() {
        let resp = send(&t, get(&server.url(&format!("/{code}"))))
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), code);
        assert_eq!(server.hit_count(), i + 1, "status {code} was retried");
    }
}

#[tokio::test]
async fn conflict_is_retried_when_enabled() {
    let server = serve(|hit| {
        if hit.index == 0 {
            status(409)
        } else {
            ok("{}")
        }
    });
    let t = fast()
        .retry(
            RetryPolicy::default()
                .base_delay(Duration::from_millis(1))
                .retry_conflict(true),
        )
        .build()
        .unwrap();
    assert_eq!(send(&t, get(&server.url("/"))).await.unwrap().status(), 200);
    assert_eq!(server.hit_count(), 2);
}

#[tokio::test]
async fn every_attempt_sends_the_same_body() {
    let server = serve(|hit| if hit.index < 2 { status(503) } else { ok("{}") });
    let t = fast().build().unwrap();
    let body: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let expected = ring::digest::digest(&ring::digest::SHA256, &body);
    let mut req = post(&server.url("/batch"), body.clone());
    req.headers_mut()
        .insert("idempotency-key", "batch-1".parse().unwrap());
    send(&t, req).await.unwrap();
    let hits = server.hits();
    assert_eq!(hits.len(), 3);
    for hit in hits {
        assert_eq!(hit.method, http::Method::POST);
        assert_eq!(hit.body_sha256, expected.as_ref());
        assert_eq!(hit.headers["content-length"], "100000");
    }
}

#[tokio::test]
async fn per_request_options_override_retries_and_timeout() {
    let server = serve(|hit| {
        if hit.path == "/slow" {
            Reply::After(Duration::from_secs(5), support::response_status(200))
        } else {
            status(503)
        }
    });
    let t = fast()
        .attempt_timeout(Some(Duration::from_secs(10)))
        .build()
        .unwrap();

    // No retries: the 503 comes back as a response.
    let mut req = get(&server.url("/"));
    req.extensions_mut()
        .insert(RequestOptions::new().max_retries(0));
    assert_eq!(send(&t, req).await.unwrap().status(), 503);
    assert_eq!(server.hit_count(), 1);

    // More retries than the default.
    let mut req = get(&server.url("/"));
    req.extensions_mut()
        .insert(RequestOptions::new().max_retries(4));
    let err = send(&t, req).await.unwrap_err();
    assert!(matches!(
        err,
        TransportError::RetriesExhausted { attempts: 5, .. }
    ));
    assert_eq!(server.hit_count(), 6);

    // A tighter deadline for one request.
    let mut req = get(&server.url("/slow"));
    req.extensions_mut().insert(
        RequestOptions::new()
            .max_retries(0)
            .attempt_timeout(Duration::from_millis(50)),
    );
    let started = std::time::Instant::now();
    let err = send(&t, req).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(4));
    assert!(matches!(
        err,
        TransportError::Timeout {
            kind: TimeoutKind::Attempt,
            ..
        }
    ));

    let mut req = get(&server.url("/slow"));
    req.extensions_mut()
        .insert(RequestOptions::new().timeout(Duration::from_millis(50)));
    let err = send(&t, req).await.unwrap_err();
    assert!(matches!(
        err,
        TransportError::Timeout {
            kind: TimeoutKind::Overall,
            ..
        }
    ));
}

#[tokio::test]
async fn non_idempotent_retries_can_be_disabled() {
    let server = serve(|_| status(503));
    let t = fast()
        .retry(
            RetryPolicy::default()
                .base_delay(Duration::from_millis(1))
                .retry_non_idempotent(false),
        )
        .build()
        .unwrap();
    let resp = send(&t, post(&server.url("/"), "{}")).await.unwrap();
    assert_eq!(resp.status(), 503);
    assert_eq!(server.hit_count(), 1);

    // An Idempotency-Key makes the POST safe to repeat.
    let mut req = post(&server.url("/"), "{}");
    req.headers_mut()
        .insert("idempotency-key", "k-1".parse().unwrap());
    assert!(send(&t, req).await.is_err());
    assert_eq!(server.hit_count(), 4);

    // GET is still retried.
    assert!(send(&t, get(&server.url("/"))).await.is_err());
    assert_eq!(server.hit_count(), 7);
}

#[tokio::test]
async fn an_empty_budget_stops_retries() {
    let server = serve(|_| status(503));
    let t = fast()
        .retry_budget(Some(
            RetryBudget::new(Duration::from_secs(1), 0, 0.0).unwrap(),
        ))
        .build()
        .unwrap();
    let resp = send(&t, get(&server.url("/"))).await.unwrap();
    assert_eq!(resp.status(), 503);
    assert_eq!(server.hit_count(), 1);
}

#[tokio::test]
async fn nested_retry_layers_do_not_multiply_attempts() {
    let server = serve(|_| status(500));
    let inner_retry = RetryLayer::new(
        RetryPolicy::default()
            .base_delay(Duration::from_millis(1))
            .max_retries(3),
    )
    .budget(None);
    let t = fast().attempt_layer(inner_retry).build().unwrap();
    let err = send(&t, get(&server.url("/"))).await.unwrap_err();
    assert!(matches!(
        err,
        TransportError::RetriesExhausted { attempts: 3, .. }
    ));
    assert_eq!(server.hit_count(), 3);
}

#[tokio::test]
async fn signer_runs_on_every_attempt_with_a_fresh_timestamp() {
    let server = serve(|hit| if hit.index < 2 { status(503) } else { ok("{}") });
    let tick = Arc::new(AtomicU64::new(1_700_000_000));
    let clock_tick = tick.clone();
    let signer = HmacSha256Signer::new(Secret::new("whsec"))
        .unwrap()
        .with_clock(Arc::new(move || {
            UNIX_EPOCH + Duration::from_secs(clock_tick.fetch_add(1, Ordering::SeqCst))
        }));
    let check = signer.clone();
    let t = fast()
        .api_key(auth::ESAUTI_API_KEY, "esk_live_1")
        .signer(signer)
        .build()
        .unwrap();
    let body = r#"{"type":"order.created"}"#;
    let mut req = post(&server.url("/v1/inbound/event?x=1"), body);
    req.headers_mut()
        .insert("idempotency-key", "evt-1".parse().unwrap());
    send(&t, req).await.unwrap();
    let hits = server.hits();
    assert_eq!(hits.len(), 3);
    let mut stamps = Vec::new();
    for hit in &hits {
        let ts: u64 = hit.headers["x-esauti-timestamp"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        let sig = hit.headers["x-esauti-signature"].to_str().unwrap();
        assert_eq!(
            sig,
            check.signature("POST", "/v1/inbound/event", ts, body.as_bytes())
        );
        assert_eq!(hit.headers["x-esauti-api-key"], "esk_live_1");
        stamps.push(ts);
    }
    assert_eq!(stamps, [1_700_000_000, 1_700_000_001, 1_700_000_002]);
}

#[tokio::test]
async fn identification_and_auth_headers_reach_the_server() {
    let server = serve(|_| ok("{}"));
    let t = fast()
        .api_key(auth::SCHEMATIC_API_KEY, "sch_dev_abc")
        .build()
        .unwrap();
    send(&t, get(&server.url("/"))).await.unwrap();
    let h = &server.hits()[0].headers;
    assert_eq!(h["x-schematic-api-key"], "sch_dev_abc");
    assert_eq!(
        h["user-agent"],
        format!("flagwire/{}", flagwire_transport::headers::VERSION)
    );
    assert_eq!(h["x-fern-sdk-name"], "flagwire");

    let t = fast().bearer_token("tok_1").build().unwrap();
    send(&t, get(&server.url("/"))).await.unwrap();
    assert_eq!(server.hits()[1].headers["authorization"], "Bearer tok_1");
}

#[tokio::test]
async fn custom_service_and_layers_take_effect() {
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = calls.clone();
    let double = tower::service_fn(move |req: Request<Bytes>| {
        let n = seen.fetch_add(1, Ordering::SeqCst);
        async move {
            assert_eq!(req.headers()["x-per-attempt"], "1");
            assert_eq!(req.headers()["x-per-request"], "1");
            let code = if n == 0 { 503 } else { 200 };
            Ok::<_, std::io::Error>(support::response_status(code))
        }
    });
    let request_layer_calls = Arc::new(AtomicUsize::new(0));
    let attempt_layer_calls = Arc::new(AtomicUsize::new(0));
    let (rc, ac) = (request_layer_calls.clone(), attempt_layer_calls.clone());
    let t = fast()
        .service(double)
        .request_layer(tower::util::MapRequestLayer::new(
            move |mut req: Request<Bytes>| {
                rc.fetch_add(1, Ordering::SeqCst);
                req.headers_mut()
                    .insert("x-per-request", "1".parse().unwrap());
                req
            },
        ))
        .attempt_layer(tower::util::MapRequestLayer::new(
            move |mut req: Request<Bytes>| {
                ac.fetch_add(1, Ordering::SeqCst);
                req.headers_mut()
                    .insert("x-per-attempt", "1".parse().unwrap());
                req
            },
        ))
        .build()
        .unwrap();
    let resp = send(&t, get("https://api.example.test/")).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_eq!(request_layer_calls.load(Ordering::SeqCst), 1);
    assert_eq!(attempt_layer_calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn custom_service_errors_are_wrapped() {
    let failing = tower::service_fn(|_req: Request<Bytes>| async {
        Err::<Response<Bytes>, _>(std::io::Error::other("circuit open"))
    });
    let t = fast().service(failing).build().unwrap();
    let err = send(&t, get("https://api.example.test/"))
        .await
        .unwrap_err();
    assert!(matches!(err, TransportError::Other { .. }));
    assert_eq!(err.to_string(), "circuit open");
}

#[tokio::test]
async fn response_body_limit_is_enforced() {
    let server = serve(|hit| match hit.path.as_str() {
        "/declared" => Reply::Respond(Response::new(Bytes::from(vec![b'x'; 4096]))),
        _ => Reply::Chunked(vec![Bytes::from(vec![b'y'; 600]); 4]),
    });
    let t = fast().max_response_body(1024).build().unwrap();
    for path in ["/declared", "/chunked"] {
        let err = send(&t, get(&server.url(path))).await.unwrap_err();
        assert!(
            matches!(err, TransportError::BodyTooLarge { limit: 1024 }),
            "{path}: {err:?}"
        );
    }
    // Not retried: a larger body will not get smaller.
    assert_eq!(server.hit_count(), 2);
    // Within the limit is fine.
    let t = fast().max_response_body(4096).build().unwrap();
    let resp = send(&t, get(&server.url("/declared"))).await.unwrap();
    assert_eq!(resp.body().len(), 4096);
}

#[tokio::test]
async fn invalid_requests_and_config_are_typed_errors() {
    let t = fast().build().unwrap();
    let err = send(&t, get("/relative")).await.unwrap_err();
    assert!(
        matches!(err, TransportError::InvalidRequest { .. }),
        "{err:?}"
    );

    let err = fast()
        .api_key(auth::SCHEMATIC_API_KEY, "line\nbreak")
        .build()
        .unwrap_err();
    assert!(matches!(err, TransportError::Config { .. }));
}

#[tokio::test]
async fn no_back_off_is_started_past_the_overall_deadline() {
    let server = serve(|_| {
        Reply::Respond(
            Response::builder()
                .status(503)
                .header("retry-after", "30")
                .body(Bytes::from_static(b"busy"))
                .unwrap(),
        )
    });
    let t = fast()
        .timeout(Some(Duration::from_secs(2)))
        .build()
        .unwrap();
    let started = std::time::Instant::now();
    let resp = send(&t, get(&server.url("/"))).await.unwrap();
    // The server's 503 comes back at once instead of a timeout 2 s later.
    assert_eq!(resp.status(), 503);
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(server.hit_count(), 1);
}
