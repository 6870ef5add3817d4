//! HTTPS against a local server whose certificate is issued by a private CA
//! made with rcgen and trusted explicitly.

mod support;

use std::time::Duration;

use flagwire_transport::{HttpsClient, RetryPolicy, Roots, TransportBuilder, TransportError};
use support::{get, ok, pki, serve_with};
use tower::ServiceExt;

#[tokio::test]
async fn https_with_an_explicitly_trusted_ca_negotiates_h2() {
    let pki = pki();
    let server = serve_with(|_| ok("{\"secure\":true}"), Some(pki.acceptor));
    let client = HttpsClient::builder()
        .roots(Roots::None)
        .add_root_certificate(pki.ca)
        .https_only(true);
    let t = TransportBuilder::new().client(client).build().unwrap();
    let url = format!("https://localhost:{}/flags", server.addr.port());
    let resp = t.clone().oneshot(get(&url)).await.unwrap();
    assert_eq!(resp.body().as_ref(), b"{\"secure\":true}");
    assert_eq!(server.hits()[0].version, http::Version::HTTP_2);

    // The pooled connection is reused.
    t.oneshot(get(&url)).await.unwrap();
    assert_eq!(server.hit_count(), 2);
}

#[tokio::test]
async fn https_with_a_pem_root_works() {
    let pki = pki();
    let server = serve_with(|_| ok("{}"), Some(pki.acceptor));
    let client = HttpsClient::builder()
        .roots(Roots::None)
        .add_root_certificates_pem(pki.ca_pem.as_bytes())
        .unwrap();
    let t = TransportBuilder::new().client(client).build().unwrap();
    let url = format!("https://localhost:{}/", server.addr.port());
    assert_eq!(t.oneshot(get(&url)).await.unwrap().status(), 200);
}

#[tokio::test]
async fn untrusted_certificate_is_a_tls_error_and_not_retried() {
    let pki = pki();
    let server = serve_with(|_| ok("{}"), Some(pki.acceptor));
    // Default roots (Mozilla's) do not include the private CA.
    let t = TransportBuilder::new()
        .retry(RetryPolicy::default().base_delay(Duration::from_millis(1)))
        .build()
        .unwrap();
    let url = format!("https://localhost:{}/", server.addr.port());
    let err = t.oneshot(get(&url)).await.unwrap_err();
    assert!(matches!(err, TransportError::Tls { .. }), "{err:?}");
    // The real cause, not hyper-util's "client error (Connect)".
    assert_eq!(
        err.to_string(),
        "TLS handshake failed: invalid peer certificate: UnknownIssuer"
    );
    assert!(err.never_sent());
    assert_eq!(err.attempts(), Some(1));
    assert_eq!(server.hit_count(), 0);
}

#[tokio::test]
async fn https_only_refuses_plain_http() {
    let t = TransportBuilder::new()
        .client(HttpsClient::builder().https_only(true))
        .build()
        .unwrap();
    let err = t.oneshot(get("http://127.0.0.1:9/")).await.unwrap_err();
    assert!(
        matches!(err, TransportError::InvalidRequest { .. }),
        "{err:?}"
    );
}
