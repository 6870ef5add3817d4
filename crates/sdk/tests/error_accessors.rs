//! What the SDK's error says about a failed call: status, request id, body,
//! the API's message, the attempts made, timeouts and refused connections.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use flagwire::Error;
use flagwire::schematic::Client;
use flagwire_core::schematic::companies::{ListCompanies, UpsertCompany};
use flagwire_core::schematic::models::UpsertCompanyRequestBody;
use flagwire_transport::RetryPolicy;
use http::{Method, Request, Response, StatusCode};

/// A client over a double that answers every request with `answer` and
/// counts the requests.
fn client_answering(answer: fn(&Request<Bytes>) -> Response<Bytes>) -> (Client, Arc<AtomicUsize>) {
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    let double = tower::service_fn(move |req: Request<Bytes>| {
        seen.fetch_add(1, Ordering::SeqCst);
        let resp = answer(&req);
        async move { Ok::<_, std::convert::Infallible>(resp) }
    });
    let client = Client::builder("sch_dev_test")
        .base_url("http://api.test")
        .retry_policy(
            RetryPolicy::default()
                .base_delay(Duration::from_millis(1))
                .jitter(false),
        )
        .service(double)
        .build()
        .unwrap();
    (client, count)
}

fn answer(status: u16, request_id: &str, body: &'static str) -> Response<Bytes> {
    Response::builder()
        .status(status)
        .header("x-request-id", request_id)
        .body(Bytes::from_static(body.as_bytes()))
        .unwrap()
}

fn upsert() -> UpsertCompany {
    UpsertCompany::new(UpsertCompanyRequestBody::new([("id", "acme")]))
}

#[tokio::test]
async fn a_body_that_does_not_decode_keeps_the_request_id_and_body() {
    let (client, _) = client_answering(|_| answer(200, "req_decode", r#"{"data":[{"id":1}]}"#));
    let err = client.send(ListCompanies::new()).await.unwrap_err();
    assert!(matches!(err, Error::Decode { .. }), "{err:?}");
    assert_eq!(err.status(), Some(StatusCode::OK));
    assert_eq!(err.request_id(), Some("req_decode"));
    assert_eq!(err.body().unwrap().as_ref(), br#"{"data":[{"id":1}]}"#);
    assert_eq!(err.api_message(), None);
    assert_eq!(err.attempts(), Some(1));
    assert!(err.to_string().contains("(request id req_decode)"), "{err}");
}

#[tokio::test]
async fn retried_error_statuses_report_the_attempts() {
    let (client, count) =
        client_answering(|_| answer(503, "req_busy", r#"{"error":"try again later"}"#));
    // GET: retried, then the last answer is reported.
    let err = client.send(ListCompanies::new()).await.unwrap_err();
    assert_eq!(count.load(Ordering::SeqCst), 3);
    assert_eq!(err.status(), Some(StatusCode::SERVICE_UNAVAILABLE));
    assert_eq!(err.api_message(), Some("try again later"));
    assert_eq!(err.request_id(), Some("req_busy"));
    assert_eq!(err.attempts(), Some(3));
    assert_eq!(
        err.to_string(),
        "the API answered 503 Service Unavailable: try again later (request id req_busy) after 3 attempts"
    );

    // POST: the server may have acted on it; sent once.
    let err = client.send(upsert()).await.unwrap_err();
    assert_eq!(count.load(Ordering::SeqCst), 4);
    assert_eq!(err.attempts(), Some(1));
    assert!(!err.to_string().contains("attempts"), "{err}");
}

#[tokio::test]
async fn a_post_with_an_idempotency_key_is_retried() {
    let (client, count) = client_answering(|req| {
        assert_eq!(req.method(), Method::POST);
        answer(502, "req_gw", "")
    });
    let options = flagwire::schematic::RequestOptions::new()
        .header("Idempotency-Key", "upsert-acme-1")
        .unwrap();
    let err = client.send_with(upsert(), options).await.unwrap_err();
    assert_eq!(count.load(Ordering::SeqCst), 3);
    assert_eq!(err.attempts(), Some(3));
    assert_eq!(err.body().map(|b| b.len()), Some(0));

    // The same with the option instead of the header.
    let options = flagwire::schematic::RequestOptions::new().idempotent(true);
    let err = client.send_with(upsert(), options).await.unwrap_err();
    assert_eq!(count.load(Ordering::SeqCst), 6);
    assert_eq!(err.attempts(), Some(3));
}

#[tokio::test]
async fn refused_connections_and_timeouts_are_told_apart() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let client = Client::builder("sch_dev_test")
        .base_url(format!("http://{closed}"))
        .capture_url(format!("http://{closed}"))
        .retry_policy(RetryPolicy::default().base_delay(Duration::from_millis(1)))
        .transport(|t| t.map_client(|c| c.no_proxy()))
        .build()
        .unwrap();
    let err = client.send(upsert()).await.unwrap_err();
    assert!(err.is_connect(), "{err:?}");
    assert!(!err.is_timeout());
    // Never sent, so even the POST was tried again.
    assert_eq!(err.attempts(), Some(3));
    assert_eq!(err.status(), None);
    assert!(err.to_string().contains("could not connect"), "{err}");

    // A server that accepts and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let _held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((tcp, _)) = listener.accept().await {
            open.push(tcp);
        }
    });
    let client = Client::builder("sch_dev_test")
        .base_url(format!("http://{addr}"))
        .capture_url(format!("http://{addr}"))
        .timeout(Duration::from_millis(200))
        .transport(|t| t.map_client(|c| c.no_proxy()))
        .build()
        .unwrap();
    let err = client.send(ListCompanies::new()).await.unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    assert!(!err.is_connect());
    assert_eq!(err.attempts(), Some(1));
}
