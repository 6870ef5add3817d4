//! The axum extractor (the `axum` feature): verified deliveries reach the
//! handler with their body, everything else gets an empty 400 or 413 and
//! never reaches it.
#![cfg(feature = "axum")]

#[path = "../examples/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, FromRef, State};
use axum::http::{Request, StatusCode};
use axum::routing::post;
use flagwire_webhooks::axum::{VerifiedWebhook, WebhookRejection};
use flagwire_webhooks::{
    Error, Esauti, EsautiVerifier, FixedClock, Malformed, Schematic, SchematicVerifier,
    SignedHeaders, Signer, StandardWebhooks, StandardWebhooksVerifier, Verifier, unix_now,
};
use http_body_util::BodyExt;
use tower::ServiceExt;

const SECRET: &str = "test-endpoint-secret";
const BODY: &[u8] = br#"{"action":"company.updated","body":{"id":"comp_1"}}"#;

/// The router state: the verifier and a count of handler runs, so that a
/// test can tell the handler never ran.
#[derive(Clone)]
struct App {
    verifier: SchematicVerifier,
    handled: Arc<AtomicUsize>,
}

impl FromRef<App> for SchematicVerifier {
    fn from_ref(app: &App) -> Self {
        app.verifier.clone()
    }
}

/// Echoes the verified body and the signed timestamp.
async fn echo(State(app): State<App>, webhook: VerifiedWebhook<Schematic>) -> (StatusCode, String) {
    app.handled.fetch_add(1, Ordering::SeqCst);
    let text = String::from_utf8_lossy(webhook.body()).into_owned();
    (StatusCode::OK, format!("{:?} {text}", webhook.timestamp()))
}

fn app(verifier: SchematicVerifier) -> (Router, Arc<AtomicUsize>) {
    let handled = Arc::new(AtomicUsize::new(0));
    let router = Router::new().route("/hooks", post(echo)).with_state(App {
        verifier,
        handled: handled.clone(),
    });
    (router, handled)
}

fn request(path: &str, headers: &SignedHeaders, body: impl Into<Body>) -> Request<Body> {
    let mut request = Request::post(path).body(body.into()).unwrap();
    headers.apply_to(request.headers_mut()).unwrap();
    request
}

async fn call(router: Router, request: Request<Body>) -> (StatusCode, Bytes) {
    let response = router.oneshot(request).await.unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, body)
}

#[tokio::test]
async fn a_verified_delivery_reaches_the_handler_with_its_body() {
    let (router, handled) = app(SchematicVerifier::new(SECRET).unwrap());
    let now = unix_now();
    let signed = Signer::<Schematic>::new(SECRET).unwrap().sign(now, BODY);
    let (status, body) = call(router, request("/hooks", &signed, BODY)).await;
    assert_eq!(status, StatusCode::OK);
    let expected = format!("Some({now}) {}", std::str::from_utf8(BODY).unwrap());
    assert_eq!(body, expected.as_bytes());
    assert_eq!(handled.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn refusals_are_empty_400s_and_skip_the_handler() {
    let verifier = SchematicVerifier::new(SECRET).unwrap();
    let signer = Signer::<Schematic>::new(SECRET).unwrap();
    let now = unix_now();
    let signed = signer.sign(now, BODY);
    let mut tampered = BODY.to_vec();
    tampered[10] ^= 1;
    let stale = signer.sign(now - 301, BODY);
    let future = signer.sign(now + 3600, BODY);
    let other_secret = Signer::<Schematic>::new("another").unwrap().sign(now, BODY);
    let no_timestamp: Vec<_> = signed
        .iter()
        .filter(|(name, _)| *name != Schematic::TIMESTAMP_HEADER)
        .collect();

    let cases: Vec<(&str, Request<Body>)> = vec![
        ("tampered body", request("/hooks", &signed, tampered)),
        ("stale", request("/hooks", &stale, BODY)),
        ("from the future", request("/hooks", &future, BODY)),
        ("other secret", request("/hooks", &other_secret, BODY)),
        (
            "no headers",
            Request::post("/hooks").body(Body::from(BODY)).unwrap(),
        ),
        ("no timestamp", {
            let mut request = Request::post("/hooks").body(Body::from(BODY)).unwrap();
            for (name, value) in &no_timestamp {
                request.headers_mut().insert(*name, value.parse().unwrap());
            }
            request
        }),
    ];
    for (what, request) in cases {
        let (router, handled) = app(verifier.clone());
        let (status, body) = call(router, request).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{what}");
        assert!(body.is_empty(), "{what}: the body says {body:?}");
        assert_eq!(handled.load(Ordering::SeqCst), 0, "{what}: handler ran");
    }
}

#[tokio::test]
async fn a_body_over_the_route_limit_is_413() {
    let signer = Signer::<Schematic>::new(SECRET).unwrap();
    let big = vec![b'x'; 4097];
    let signed = signer.sign(unix_now(), &big);
    let (router, handled) = app(SchematicVerifier::new(SECRET).unwrap());
    let router = router.layer(DefaultBodyLimit::max(4096));
    let (status, body) = call(router.clone(), request("/hooks", &signed, big)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(body.is_empty());
    assert_eq!(handled.load(Ordering::SeqCst), 0);

    // Exactly at the limit is fine.
    let fits = vec![b'x'; 4096];
    let signed = signer.sign(unix_now(), &fits);
    let (status, _) = call(router, request("/hooks", &signed, fits)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(handled.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_handler_can_take_the_rejection_to_see_why() {
    async fn why(
        webhook: Result<VerifiedWebhook<Schematic>, WebhookRejection>,
    ) -> (StatusCode, String) {
        match webhook {
            Ok(_) => (StatusCode::OK, String::new()),
            Err(rejection) => (rejection.status(), format!("{:?}", rejection.error())),
        }
    }
    let verifier = Verifier::<Schematic>::builder()
        .secret(SECRET)
        .clock(FixedClock(1_700_000_000))
        .build()
        .unwrap();
    let router = Router::new()
        .route("/hooks", post(why))
        .with_state(verifier);
    let mut bad = Request::post("/hooks").body(Body::from(BODY)).unwrap();
    bad.headers_mut()
        .insert(Schematic::SIGNATURE_HEADER, "not hex".parse().unwrap());
    bad.headers_mut()
        .insert(Schematic::TIMESTAMP_HEADER, "1700000000".parse().unwrap());
    let (status, body) = call(router, bad).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let expected = Some(Error::MalformedHeader {
        name: Schematic::SIGNATURE_HEADER,
        reason: Malformed::InvalidLength,
    });
    assert_eq!(body, format!("{expected:?}").as_bytes());
}

#[test]
fn rejections_map_to_statuses_and_keep_the_cause() {
    let invalid = WebhookRejection::Invalid(Error::SignatureMismatch);
    assert_eq!(invalid.status(), StatusCode::BAD_REQUEST);
    assert_eq!(invalid.error(), Some(Error::SignatureMismatch));
    assert!(std::error::Error::source(&invalid).is_some());
    assert!(invalid.to_string().contains("no signature matches"));
    assert_eq!(
        WebhookRejection::BodyTooLarge.status(),
        StatusCode::PAYLOAD_TOO_LARGE
    );
    assert_eq!(
        WebhookRejection::BodyUnreadable.status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(WebhookRejection::BodyTooLarge.error(), None);
}

/// The handler of the two tests below: answers with the delivery id.
async fn id_of<S: flagwire_webhooks::Scheme>(webhook: VerifiedWebhook<S>) -> String {
    format!("{:?}", webhook.id())
}

#[tokio::test]
async fn standard_webhooks_hands_over_the_delivery_id() {
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let router = Router::new()
        .route("/in", post(id_of::<StandardWebhooks>))
        .with_state(StandardWebhooksVerifier::new(secret).unwrap());
    let signed = Signer::<StandardWebhooks>::new(secret)
        .unwrap()
        .sign("msg_42", unix_now(), BODY);
    let (status, body) = call(router, request("/in", &signed, BODY)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, "Some(\"msg_42\")");
}

#[tokio::test]
async fn esauti_verifies_the_path_the_request_arrived_with() {
    let signer = Signer::<Esauti>::new(SECRET).unwrap();
    // Nested under /api: the nested router sees `/events`, the sender
    // signed `/api/events`.
    let inner = Router::new().route("/events", post(id_of::<Esauti>));
    let router = Router::new()
        .nest("/api", inner)
        .with_state(EsautiVerifier::new(SECRET).unwrap());

    let signed = signer.sign("POST", "/api/events", unix_now(), BODY);
    let (status, _) = call(
        router.clone(),
        request("/api/events?retry=1", &signed, BODY),
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    // The method and path are signed: another path does not verify.
    let elsewhere = signer.sign("POST", "/api/other", unix_now(), BODY);
    let (status, _) = call(router, request("/api/events", &elsewhere, BODY)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn over_real_loopback() {
    let (router, handled) = app(SchematicVerifier::new(SECRET).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, router).await });

    let signed = Signer::<Schematic>::new(SECRET)
        .unwrap()
        .sign(unix_now(), BODY);
    let answer = common::post(addr, "/hooks", signed.iter(), BODY)
        .await
        .unwrap();
    assert_eq!(answer.status, 200, "{answer:?}");
    assert!(answer.body.ends_with(std::str::from_utf8(BODY).unwrap()));
    let answer = common::post(addr, "/hooks", signed.iter(), b"{}")
        .await
        .unwrap();
    assert_eq!(answer.status, 400, "{answer:?}");
    assert_eq!(answer.body, "");
    assert_eq!(handled.load(Ordering::SeqCst), 1);
    server.abort();
}
