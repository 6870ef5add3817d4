//! HTTPS against a local server whose certificate is issued by a private CA
//! made with rcgen and trusted explicitly.

mod support;

use std::sync::Arc;
use std::time::Duration;

use flagwire_transport::{HttpsClient, RetryPolicy, Roots, TransportBuilder, TransportError};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use support::{get, ok, serve_with};
use tower::ServiceExt;

struct Pki {
    ca: CertificateDer<'static>,
    ca_pem: String,
    acceptor: tokio_rustls::TlsAcceptor,
}

fn pki() -> Pki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);

    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&leaf_key, &issuer)
        .unwrap();

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone(), ca_cert.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
        )
        .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Pki {
        ca: ca_cert.der().clone(),
        ca_pem: ca_cert.pem(),
        acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
    }
}

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
