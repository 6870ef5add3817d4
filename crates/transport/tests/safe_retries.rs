//! Which requests the retry layer sends again, against real loopback servers:
//! a `POST` that reached the server is never repeated unless the caller says
//! repeating it is harmless; one that provably did not reach it is.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use flagwire_transport::{
    Attempt, BoxTransport, RequestOptions, RetryPolicy, TransportBuilder, TransportError,
};
use http::{Method, Request, Response, StatusCode};
use support::{Server, ok, post, serve_on, status};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
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

/// What the raw server does once it has read a whole request.
#[derive(Clone, Copy)]
enum Then {
    /// Resets the connection (RST) without answering.
    Reset,
    /// Answers `500` and closes.
    Fail,
}

/// A TCP server that reads each request completely (so the server did get
/// it) and then fails as told; counts the requests it read.
struct RawServer {
    addr: std::net::SocketAddr,
    requests: Arc<AtomicUsize>,
}

async fn raw_server(then: Then) -> RawServer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let requests = Arc::new(AtomicUsize::new(0));
    let counter = requests.clone();
    tokio::spawn(async move {
        loop {
            let (mut stream, _) = listener.accept().await.unwrap();
            let counter = counter.clone();
            tokio::spawn(async move {
                if read_request(&mut stream).await.is_none() {
                    return;
                }
                counter.fetch_add(1, Ordering::SeqCst);
                match then {
                    Then::Reset => {
                        stream.set_zero_linger().unwrap();
                        drop(stream);
                    }
                    Then::Fail => {
                        let _ = stream
                            .write_all(
                                b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                            )
                            .await;
                    }
                }
            });
        }
    });
    RawServer { addr, requests }
}

/// Reads one request with a `content-length` body; `None` if the client went away.
async fn read_request(stream: &mut tokio::net::TcpStream) -> Option<Vec<u8>> {
    let mut data = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&data[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse().unwrap());
            if data.len() >= end + 4 + length {
                return Some(data);
            }
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        data.extend_from_slice(&chunk[..n]);
    }
}

#[tokio::test]
async fn a_post_the_server_read_is_not_resent_after_a_reset() {
    let server = raw_server(Then::Reset).await;
    let t = fast().build().unwrap();
    let url = format!("http://{}/companies/create", server.addr);
    let err = send(&t, post(&url, r#"{"name":"Acme"}"#))
        .await
        .unwrap_err();
    assert!(matches!(err, TransportError::Io { .. }), "{err:?}");
    assert_eq!(err.attempts(), Some(1));
    assert!(!err.never_sent());
    assert_eq!(server.requests.load(Ordering::SeqCst), 1);

    // PATCH likewise; GET is idempotent and retried.
    let mut patch = post(&url, "{}");
    *patch.method_mut() = Method::PATCH;
    assert!(send(&t, patch).await.is_err());
    assert_eq!(server.requests.load(Ordering::SeqCst), 2);
    let get = Request::get(&url).body(Bytes::new()).unwrap();
    let err = send(&t, get).await.unwrap_err();
    assert_eq!(err.attempts(), Some(3), "{err}");
    assert!(err.to_string().contains("after 3 attempts"), "{err}");
    assert_eq!(server.requests.load(Ordering::SeqCst), 5);
}

#[tokio::test]
async fn a_post_answered_500_is_not_resent() {
    let server = raw_server(Then::Fail).await;
    let t = fast().build().unwrap();
    let url = format!("http://{}/companies/create", server.addr);
    let resp = send(&t, post(&url, "{}")).await.unwrap();
    assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(Attempt::of_response(&resp), 1);
    assert_eq!(server.requests.load(Ordering::SeqCst), 1);
}

/// An attempt layer that starts `handler` on `addr` when attempt `at`
/// begins, so that every earlier attempt finds the port closed.
#[derive(Clone)]
struct StartAt {
    at: u32,
    addr: std::net::SocketAddr,
    handler: fn(&support::Hit) -> support::Reply,
    started: Arc<Mutex<Option<Server>>>,
}

impl tower::Layer<BoxTransport> for StartAt {
    type Service = StartAtService;

    fn layer(&self, inner: BoxTransport) -> StartAtService {
        StartAtService {
            layer: self.clone(),
            inner,
        }
    }
}

#[derive(Clone)]
struct StartAtService {
    layer: StartAt,
    inner: BoxTransport,
}

impl tower::Service<Request<Bytes>> for StartAtService {
    type Response = Response<Bytes>;
    type Error = TransportError;
    type Future = futures_util::future::BoxFuture<'static, Result<Response<Bytes>, TransportError>>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), TransportError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<Bytes>) -> Self::Future {
        if Attempt::of(&req) == self.layer.at {
            let listener = std::net::TcpListener::bind(self.layer.addr).unwrap();
            *self.layer.started.lock().unwrap() =
                Some(serve_on(listener, self.layer.handler, None));
        }
        Box::pin(self.inner.call(req))
    }
}

fn start_server_at_attempt(
    at: u32,
    addr: std::net::SocketAddr,
    handler: fn(&support::Hit) -> support::Reply,
) -> (StartAt, Arc<Mutex<Option<Server>>>) {
    let started: Arc<Mutex<Option<Server>>> = Arc::default();
    let layer = StartAt {
        at,
        addr,
        handler,
        started: started.clone(),
    };
    (layer, started)
}

/// A loopback address on which nothing listens (yet).
fn free_addr() -> std::net::SocketAddr {
    support::closed_port()
}

#[tokio::test]
async fn a_post_is_resent_after_the_connection_was_refused() {
    let addr = free_addr();
    let (layer, started) = start_server_at_attempt(2, addr, |_| ok("{\"data\":{}}"));
    let t = fast().attempt_layer(layer).build().unwrap();
    let resp = send(&t, post(&format!("http://{addr}/companies/create"), "{}"))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(Attempt::of_response(&resp), 2);
    let server = started.lock().unwrap().take().unwrap();
    assert_eq!(server.hit_count(), 1, "the POST reached the server once");
}

#[tokio::test]
async fn a_post_resent_after_a_refusal_reports_how_many_attempts_ran() {
    // Refused first, then the server answers 500, which is not retried for
    // a POST: the response says it took two attempts.
    let addr = free_addr();
    let (layer, started) = start_server_at_attempt(2, addr, |_| status(500));
    let t = fast().attempt_layer(layer).build().unwrap();
    let resp = send(&t, post(&format!("http://{addr}/companies/create"), "{}"))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(Attempt::of_response(&resp), 2);
    assert_eq!(started.lock().unwrap().as_ref().unwrap().hit_count(), 1);

    // Refused first, then the connection breaks after the request was sent:
    // not retried again, and the error counts both attempts.
    let addr = free_addr();
    let (layer, started) = start_server_at_attempt(2, addr, |_| support::Reply::Hangup);
    let t = fast().attempt_layer(layer).build().unwrap();
    let err = send(&t, post(&format!("http://{addr}/companies/create"), "{}"))
        .await
        .unwrap_err();
    match &err {
        TransportError::RetriesExhausted {
            attempts: 2,
            source: Some(inner),
            ..
        } => assert!(matches!(**inner, TransportError::Io { .. }), "{inner:?}"),
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(err.attempts(), Some(2));
    assert!(
        err.to_string()
            .starts_with("request failed after 2 attempts"),
        "{err}"
    );
    assert_eq!(started.lock().unwrap().as_ref().unwrap().hit_count(), 1);
}

#[tokio::test]
async fn refused_on_every_attempt_counts_them_all() {
    let addr = free_addr();
    let t = fast().build().unwrap();
    let err = send(&t, post(&format!("http://{addr}/companies/create"), "{}"))
        .await
        .unwrap_err();
    assert!(err.is_connect(), "{err:?}");
    assert_eq!(err.attempts(), Some(3));
    assert!(
        err.to_string()
            .starts_with("request failed after 3 attempts; last error: could not connect: "),
        "{err}"
    );
}

#[tokio::test]
async fn a_post_with_an_idempotency_key_or_marked_idempotent_is_resent() {
    let server = support::serve(|hit| {
        if hit.index % 2 == 0 {
            status(500)
        } else {
            ok("{}")
        }
    });
    let t = fast().build().unwrap();

    let mut keyed = post(&server.url("/companies/create"), "{}");
    keyed
        .headers_mut()
        .insert("idempotency-key", "create-acme-1".parse().unwrap());
    let resp = send(&t, keyed).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(Attempt::of_response(&resp), 2);
    assert_eq!(server.hit_count(), 2);

    let mut marked = post(&server.url("/companies/create"), "{}");
    marked
        .extensions_mut()
        .insert(RequestOptions::new().idempotent(true));
    assert_eq!(send(&t, marked).await.unwrap().status(), StatusCode::OK);
    assert_eq!(server.hit_count(), 4);

    // `idempotent(false)` is the default: one attempt.
    let mut unmarked = post(&server.url("/companies/create"), "{}");
    unmarked
        .extensions_mut()
        .insert(RequestOptions::new().idempotent(false));
    assert_eq!(send(&t, unmarked).await.unwrap().status(), 500);
    assert_eq!(server.hit_count(), 5);
}

#[tokio::test]
async fn put_and_delete_are_resent_as_before() {
    let server = support::serve(|hit| {
        if hit.index % 2 == 0 {
            status(503)
        } else {
            ok("{}")
        }
    });
    let t = fast().build().unwrap();
    for method in [Method::PUT, Method::DELETE] {
        let mut req = post(&server.url("/companies/c1"), "{}");
        *req.method_mut() = method;
        assert_eq!(send(&t, req).await.unwrap().status(), StatusCode::OK);
    }
    assert_eq!(server.hit_count(), 4);
}

#[tokio::test]
async fn the_old_behaviour_is_one_switch_away() {
    let server = support::serve(|hit| {
        if hit.index == 0 {
            status(500)
        } else {
            ok("{}")
        }
    });
    let t = fast()
        .retry(
            RetryPolicy::default()
                .base_delay(Duration::from_millis(1))
                .retry_non_idempotent(true),
        )
        .build()
        .unwrap();
    let resp = send(&t, post(&server.url("/companies/create"), "{}"))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(server.hit_count(), 2);
}

#[tokio::test]
async fn the_event_capture_style_post_without_retries_is_sent_once() {
    // The SDK's event sender turns the transport's retries off and retries
    // on its own: one attempt, the failure handed back as it is.
    let server = raw_server(Then::Fail).await;
    let t = fast()
        .retry(RetryPolicy::default().retry_non_idempotent(true))
        .build()
        .unwrap();
    let mut req = post(&format!("http://{}/batch", server.addr), "{\"events\":[]}");
    req.extensions_mut()
        .insert(RequestOptions::new().max_retries(0));
    let resp = send(&t, req).await.unwrap();
    assert_eq!(resp.status(), 500);
    assert_eq!(server.requests.load(Ordering::SeqCst), 1);
}
