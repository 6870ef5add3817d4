//! Spans are emitted per request and per attempt, and no secret reaches the
//! log output even at TRACE level.

mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use flagwire_transport::auth::{self, HmacSha256Signer, Secret};
use flagwire_transport::proxy::Proxy;
use flagwire_transport::{HttpsClient, RetryPolicy, TransportBuilder};
use support::{ok, post, serve, status};
use tower::ServiceExt;
use tracing_subscriber::fmt::MakeWriter;

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Capture {
    type Writer = Capture;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test]
async fn secrets_never_reach_the_logs() {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(capture.clone())
        .with_ansi(false)
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let server = serve(|hit| {
        if hit.index == 0 {
            status(503)
        } else {
            ok("{}")
        }
    });
    let api_key = "sch_prod_TOPSECRETKEY";
    let hmac_secret = "hmac-TOPSECRET";
    // Through a proxy with credentials, which must not leak either.
    let proxy = support::proxy::start(support::proxy::ProxyConfig::default());
    let proxy_url = proxy
        .url()
        .replace("http://", "http://proxyuser:PROXYSECRET@");
    let t = TransportBuilder::new()
        .client(HttpsClient::builder().proxy(Proxy::all(&proxy_url).unwrap()))
        .api_key(auth::SCHEMATIC_API_KEY, api_key)
        .signer(HmacSha256Signer::new(Secret::new(hmac_secret)).unwrap())
        .retry(RetryPolicy::default().base_delay(Duration::from_millis(1)))
        .build()
        .unwrap();
    let mut req = post(&server.url("/events?user=alice@example.com"), "{}");
    req.headers_mut()
        .insert("authorization", "Bearer TOPSECRETTOKEN".parse().unwrap());
    // Safe to resend: the 503 is retried.
    req.headers_mut()
        .insert("idempotency-key", "evt-1".parse().unwrap());
    t.oneshot(req).await.unwrap();
    assert!(proxy.forwards() >= 1, "{:?}", proxy.hits());

    let hits = server.hits();
    assert_eq!(hits.len(), 2);
    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();

    // What must be there.
    assert!(logs.contains("flagwire.request"), "{logs}");
    assert!(logs.contains("flagwire.attempt"), "{logs}");
    assert!(logs.contains("attempt=2"), "{logs}");
    assert!(logs.contains("status=503"), "{logs}");
    assert!(
        logs.contains("path=\"/events\"") || logs.contains("path=/events"),
        "{logs}"
    );
    assert!(logs.contains("x-schematic-api-key: [redacted]"), "{logs}");
    assert!(logs.contains("x-esauti-signature: [redacted]"), "{logs}");
    assert!(logs.contains("authorization: [redacted]"), "{logs}");
    assert!(logs.contains("retrying request"), "{logs}");

    // What must not.
    let mut secrets = vec![
        api_key.to_owned(),
        hmac_secret.to_owned(),
        "TOPSECRETTOKEN".to_owned(),
        "alice@example.com".to_owned(),
        "PROXYSECRET".to_owned(),
        "proxyuser".to_owned(),
        // base64("proxyuser:PROXYSECRET"), the Proxy-Authorization value.
        "cHJveHl1c2VyOlBST1hZU0VDUkVU".to_owned(),
    ];
    for hit in &hits {
        let sig = hit.headers["x-esauti-signature"].to_str().unwrap();
        secrets.push(sig.trim_start_matches("sha256=").to_owned());
    }
    for secret in secrets {
        assert!(!logs.contains(&secret), "`{secret}` leaked into:\n{logs}");
    }
}
