//! The tower layer (the `tower` feature), in front of a plain
//! `service_fn`: verified deliveries reach the inner service with their
//! body and a `VerifiedDelivery` extension; everything else gets an empty
//! 400 or 413 and never reaches it.
#![cfg(feature = "tower")]

#[path = "../examples/common/mod.rs"]
mod common;

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use flagwire_webhooks::tower::{DEFAULT_MAX_BODY_SIZE, VerifiedBody, VerifyWebhookLayer};
use flagwire_webhooks::{
    Esauti, EsautiVerifier, Flagsmith, FlagsmithVerifier, Schematic, SchematicVerifier,
    SignedHeaders, Signer, VerifiedDelivery, Verifier, unix_now,
};
use http::{HeaderMap, Request, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use tower::{Layer, Service, ServiceExt, service_fn};

const SECRET: &str = "test-endpoint-secret";
const BODY: &[u8] = br#"{"action":"company.updated","body":{"id":"comp_1"}}"#;

/// What the inner service saw: the body it read through the `Body` trait
/// and the extension.
type Seen = Arc<std::sync::Mutex<Vec<(Bytes, Option<VerifiedDelivery>)>>>;

/// A layered `service_fn` that records what it receives and answers 200.
fn service<S: flagwire_webhooks::Scheme>(
    layer: VerifyWebhookLayer<S>,
) -> (
    impl Service<Request<TestBody>, Response = Response<String>, Error = Infallible, Future = impl Send>
    + Clone,
    Seen,
) {
    let seen = Seen::default();
    let record = seen.clone();
    let inner = service_fn(move |request: Request<VerifiedBody>| {
        let record = record.clone();
        async move {
            let delivery = request.extensions().get::<VerifiedDelivery>().cloned();
            let body = request.into_body().collect().await?.to_bytes();
            record.lock().unwrap().push((body, delivery));
            Ok::<_, Infallible>(Response::new("handled".to_owned()))
        }
    });
    (layer.layer(inner), seen)
}

/// A request body delivered in the given chunks, then optionally an error
/// or trailers; with or without an exact size hint.
#[derive(Default)]
struct TestBody {
    frames: VecDeque<Result<Frame<Bytes>, &'static str>>,
    exact: Option<u64>,
}

impl TestBody {
    fn chunks<'a>(chunks: impl IntoIterator<Item = &'a [u8]>) -> Self {
        let frames = chunks
            .into_iter()
            .map(|chunk| Ok(Frame::data(Bytes::copy_from_slice(chunk))))
            .collect::<VecDeque<_>>();
        let exact = frames
            .iter()
            .map(|frame| {
                frame
                    .as_ref()
                    .map_or(0, |f| f.data_ref().map_or(0, Bytes::len))
            })
            .sum::<usize>() as u64;
        TestBody {
            frames,
            exact: Some(exact),
        }
    }

    fn whole(body: &[u8]) -> Self {
        TestBody::chunks([body])
    }

    /// The same frames with no size known in advance (chunked encoding).
    fn without_size(mut self) -> Self {
        self.exact = None;
        self
    }

    fn then(mut self, frame: Result<Frame<Bytes>, &'static str>) -> Self {
        self.frames.push_back(frame);
        self.exact = None;
        self
    }
}

impl Body for TestBody {
    type Data = Bytes;
    type Error = &'static str;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, &'static str>>> {
        Poll::Ready(self.get_mut().frames.pop_front())
    }

    fn size_hint(&self) -> SizeHint {
        self.exact.map(SizeHint::with_exact).unwrap_or_default()
    }
}

fn request(path: &str, headers: &SignedHeaders, body: TestBody) -> Request<TestBody> {
    let mut request = Request::post(path).body(body).unwrap();
    headers.apply_to(request.headers_mut()).unwrap();
    request
}

async fn call<Svc>(service: Svc, request: Request<TestBody>) -> (StatusCode, Bytes)
where
    Svc: Service<Request<TestBody>, Response = Response<String>, Error = Infallible>,
{
    let response = service.oneshot(request).await.unwrap();
    (response.status(), Bytes::from(response.into_body()))
}

fn schematic_layer() -> VerifyWebhookLayer<Schematic> {
    VerifyWebhookLayer::new(SchematicVerifier::new(SECRET).unwrap())
}

#[tokio::test]
async fn a_verified_delivery_reaches_the_inner_service_with_body_and_extension() {
    let (service, seen) = service(schematic_layer());
    let now = unix_now();
    let signed = Signer::<Schematic>::new(SECRET).unwrap().sign(now, BODY);
    let (status, body) = call(service, request("/hooks", &signed, TestBody::whole(BODY))).await;
    assert_eq!((status, &body[..]), (StatusCode::OK, &b"handled"[..]));
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].0, BODY);
    let delivery = seen[0].1.as_ref().expect("the extension is set");
    assert_eq!(delivery.timestamp(), Some(now));
    assert_eq!(delivery.id(), None);
    assert_eq!(delivery.secret_index(), 0);
}

#[tokio::test]
async fn a_body_in_many_chunks_is_put_back_together() {
    let (service, seen) = service(schematic_layer());
    let signed = Signer::<Schematic>::new(SECRET)
        .unwrap()
        .sign(unix_now(), BODY);
    let chunks = BODY.chunks(7).chain([&b""[..]]);
    let trailers = Frame::trailers(HeaderMap::new());
    let body = TestBody::chunks(chunks).without_size().then(Ok(trailers));
    let (status, _) = call(service, request("/hooks", &signed, body)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(seen.lock().unwrap()[0].0, BODY);
}

#[tokio::test]
async fn refusals_are_empty_400s_and_skip_the_inner_service() {
    let signer = Signer::<Schematic>::new(SECRET).unwrap();
    let now = unix_now();
    let signed = signer.sign(now, BODY);
    let mut tampered = BODY.to_vec();
    tampered[10] ^= 1;
    let stale = signer.sign(now - 301, BODY);
    let other_secret = Signer::<Schematic>::new("another").unwrap().sign(now, BODY);
    let nothing = Signer::<Flagsmith>::new(SECRET).unwrap().sign(BODY);

    let cases = [
        (
            "tampered",
            request("/hooks", &signed, TestBody::whole(&tampered)),
        ),
        ("stale", request("/hooks", &stale, TestBody::whole(BODY))),
        (
            "other secret",
            request("/hooks", &other_secret, TestBody::whole(BODY)),
        ),
        (
            "other scheme's headers",
            request("/hooks", &nothing, TestBody::whole(BODY)),
        ),
        (
            "body fails midway",
            request(
                "/hooks",
                &signed,
                TestBody::chunks([&BODY[..5]]).then(Err("connection reset")),
            ),
        ),
    ];
    for (what, request) in cases {
        let (service, seen) = service(schematic_layer());
        let (status, body) = call(service, request).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{what}");
        assert!(body.is_empty(), "{what}: {body:?}");
        assert!(seen.lock().unwrap().is_empty(), "{what}: inner service ran");
    }
}

#[tokio::test]
async fn bodies_over_the_limit_are_413_whether_declared_or_not() {
    let limit = 1000;
    let signer = Signer::<Schematic>::new(SECRET).unwrap();
    let big = vec![b'x'; limit + 1];
    let signed = signer.sign(unix_now(), &big);
    let layer = schematic_layer().max_body_size(limit);

    // Declared by the body's size hint, by Content-Length, or only found
    // while reading (chunks, no size known).
    let by_hint = request("/hooks", &signed, TestBody::whole(&big));
    let mut by_header = request("/hooks", &signed, TestBody::whole(b"{}").without_size());
    by_header
        .headers_mut()
        .insert(http::header::CONTENT_LENGTH, "1001".parse().unwrap());
    let streamed = request(
        "/hooks",
        &signed,
        TestBody::chunks(big.chunks(100)).without_size(),
    );
    for (what, request) in [
        ("size hint", by_hint),
        ("content-length", by_header),
        ("streamed", streamed),
    ] {
        let (service, seen) = service(layer.clone());
        let (status, body) = call(service, request).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{what}");
        assert!(body.is_empty(), "{what}");
        assert!(seen.lock().unwrap().is_empty(), "{what}");
    }

    // Exactly at the limit is accepted, in chunks too.
    let fits = &big[..limit];
    let signed = signer.sign(unix_now(), fits);
    let (service, seen) = service(layer);
    let body = TestBody::chunks(fits.chunks(300)).without_size();
    let (status, _) = call(service, request("/hooks", &signed, body)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(seen.lock().unwrap()[0].0, fits);
}

#[test]
fn the_default_limit_is_one_mebibyte() {
    assert_eq!(DEFAULT_MAX_BODY_SIZE, 1 << 20);
    let shown = format!("{:?}", schematic_layer());
    assert!(shown.contains("max_body: 1048576"), "{shown}");
    assert!(!shown.contains(SECRET), "{shown}");
}

#[tokio::test]
async fn rotation_and_method_and_path_for_esauti() {
    let verifier = EsautiVerifier::builder()
        .secrets(["new", "old"])
        .build()
        .unwrap();
    let (service, seen) = service(VerifyWebhookLayer::new(verifier));
    let signed =
        Signer::<Esauti>::new("old")
            .unwrap()
            .sign("POST", "/v1/inbound", unix_now(), BODY);
    let ok = request("/v1/inbound?x=1", &signed, TestBody::whole(BODY));
    let (status, _) = call(service.clone(), ok).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        seen.lock().unwrap()[0].1.as_ref().unwrap().secret_index(),
        1
    );

    let wrong_path = request("/v1/elsewhere", &signed, TestBody::whole(BODY));
    let (status, _) = call(service.clone(), wrong_path).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let mut wrong_method = request("/v1/inbound", &signed, TestBody::whole(BODY));
    *wrong_method.method_mut() = http::Method::PUT;
    let (status, _) = call(service, wrong_method).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(seen.lock().unwrap().len(), 1);
}

/// An inner service that is ready only every other time it is polled, and
/// counts its calls: the layer must wait for it and call the instance that
/// was polled ready.
#[derive(Clone)]
struct Reluctant {
    polls: usize,
    ready: bool,
    calls: Arc<AtomicUsize>,
}

impl Service<Request<VerifiedBody>> for Reluctant {
    type Response = Response<String>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Response<String>, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.polls += 1;
        if self.polls % 2 == 1 {
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        self.ready = true;
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _request: Request<VerifiedBody>) -> Self::Future {
        assert!(self.ready, "called without poll_ready");
        self.ready = false;
        self.calls.fetch_add(1, Ordering::SeqCst);
        std::future::ready(Ok(Response::new(String::new())))
    }
}

#[tokio::test]
async fn the_inner_service_is_called_only_once_ready() {
    let calls = Arc::new(AtomicUsize::new(0));
    let mut service = schematic_layer().layer(Reluctant {
        polls: 0,
        ready: false,
        calls: calls.clone(),
    });
    let signer = Signer::<Schematic>::new(SECRET).unwrap();
    for _ in 0..3 {
        let signed = signer.sign(unix_now(), BODY);
        let ready = ServiceExt::<Request<TestBody>>::ready(&mut service)
            .await
            .unwrap();
        let response = ready
            .call(request("/hooks", &signed, TestBody::whole(BODY)))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn the_verified_body_reads_like_any_body() {
    let body = VerifiedBody::default();
    assert!(body.is_end_stream());
    assert_eq!(body.size_hint().exact(), Some(0));

    let (service, seen) = service(VerifyWebhookLayer::new(
        FlagsmithVerifier::new(SECRET).unwrap(),
    ));
    let signed = Signer::<Flagsmith>::new(SECRET).unwrap().sign(b"");
    // An empty body is a body like any other.
    let (status, _) = call(service, request("/", &signed, TestBody::default())).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(seen.lock().unwrap()[0].0, "");
}

#[tokio::test]
async fn over_real_loopback_in_front_of_hyper() {
    use hyper::server::conn::http1;
    use hyper_util::rt::TokioIo;
    use hyper_util::service::TowerToHyperService;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let handled = Arc::new(AtomicUsize::new(0));
    let count = handled.clone();
    let inner = service_fn(move |request: Request<VerifiedBody>| {
        count.fetch_add(1, Ordering::SeqCst);
        let body = request.into_body().into_bytes();
        async move { Ok::<_, Infallible>(Response::new(http_body_util::Full::new(body))) }
    });
    let service = VerifyWebhookLayer::new(Verifier::<Schematic>::new(SECRET).unwrap()).layer(inner);
    let server = tokio::spawn(async move {
        for _ in 0..2 {
            let (stream, _) = listener.accept().await.unwrap();
            let service = TowerToHyperService::new(service.clone());
            http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
                .unwrap();
        }
    });

    let signed = Signer::<Schematic>::new(SECRET)
        .unwrap()
        .sign(unix_now(), BODY);
    let answer = common::post(addr, "/hooks", signed.iter(), BODY)
        .await
        .unwrap();
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.body.as_bytes(), BODY);
    let answer = common::post(addr, "/hooks", signed.iter(), b"{}")
        .await
        .unwrap();
    assert_eq!(answer.status, 400, "{answer:?}");
    assert_eq!(answer.body, "");
    assert_eq!(handled.load(Ordering::SeqCst), 1);
    server.await.unwrap();
}
