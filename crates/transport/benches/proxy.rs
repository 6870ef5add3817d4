//! What a proxy costs: sequential REST round trips through a loopback proxy
//! next to the same round trips made directly, in one run.
//!
//! ```sh
//! cargo bench -p flagwire-transport --bench proxy -- --warm-up-time 1 --measurement-time 3
//! ```
//!
//! * HTTPS: direct TLS to the server against TLS inside a `CONNECT` tunnel
//!   through the proxy (the tunnel is pooled like a direct connection, so
//!   the steady state pays one relay hop, not a tunnel per request);
//! * HTTP: direct against absolute-form forwarding by the proxy (a second
//!   HTTP exchange per request).
//!
//! The proxy and the servers are the test suite's own (`tests/support`),
//! each on a thread and runtime of its own; the client runs the default
//! transport stack without retries. Before criterion runs, the binary
//! prints interleaved medians and the ratio proxied / direct per scheme.

#[allow(unreachable_pub)]
#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, criterion_group};
use flagwire_transport::proxy::Proxy;
use flagwire_transport::{BoxTransport, HttpsClient, RetryPolicy, Roots, TransportBuilder};
use http::Request;
use support::proxy::{ProxyConfig, start};
use support::{ok, pki, serve, serve_with};
use tower::ServiceExt;

const BODY: &str = r#"{"data":{"flag":"new-checkout","value":true,"reason":"rule match"}}"#;

struct Paths {
    runtime: tokio::runtime::Runtime,
    _running: (support::Server, support::Server, support::proxy::TestProxy),
    https: (BoxTransport, BoxTransport, String),
    http: (BoxTransport, BoxTransport, String),
}

fn transport(client: flagwire_transport::HttpsClientBuilder) -> BoxTransport {
    TransportBuilder::new()
        .client(client)
        .retry(RetryPolicy::none())
        .build()
        .unwrap()
}

fn setup() -> Paths {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let pki = pki();
    let tls_server = serve_with(|_| ok(BODY), Some(pki.acceptor));
    let plain_server = serve(|_| ok(BODY));
    let proxy = start(ProxyConfig::default());
    let proxy_url = proxy.url();

    let ca = pki.ca;
    let https_direct = runtime.block_on(async {
        transport(
            HttpsClient::builder()
                .roots(Roots::None)
                .add_root_certificate(ca.clone())
                .no_proxy(),
        )
    });
    let https_proxied = runtime.block_on(async {
        transport(
            HttpsClient::builder()
                .roots(Roots::None)
                .add_root_certificate(ca.clone())
                .proxy(Proxy::https(&proxy_url).unwrap()),
        )
    });
    let http_direct = runtime.block_on(async { transport(HttpsClient::builder().no_proxy()) });
    let http_proxied = runtime.block_on(async {
        transport(HttpsClient::builder().proxy(Proxy::http(&proxy_url).unwrap()))
    });
    let (tls_port, plain_port) = (tls_server.addr.port(), plain_server.addr.port());
    Paths {
        runtime,
        _running: (tls_server, plain_server, proxy),
        https: (
            https_direct,
            https_proxied,
            format!("https://localhost:{tls_port}/flags/check"),
        ),
        http: (
            http_direct,
            http_proxied,
            format!("http://127.0.0.1:{plain_port}/flags/check"),
        ),
    }
}

async fn round_trip(t: &BoxTransport, url: &str) {
    let req = Request::get(url).body(Bytes::new()).unwrap();
    let resp = t.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.body().len(), BODY.len());
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Alternates the two paths, one request each per round, so both see the
/// same machine load.
fn interleaved(
    paths: &Paths,
    direct: &BoxTransport,
    proxied: &BoxTransport,
    url: &str,
) -> (Duration, Duration) {
    let (mut d, mut p) = (Vec::new(), Vec::new());
    paths.runtime.block_on(async {
        for _ in 0..100 {
            round_trip(direct, url).await;
            round_trip(proxied, url).await;
        }
        for _ in 0..2_000 {
            let t = Instant::now();
            round_trip(direct, url).await;
            d.push(t.elapsed());
            let t = Instant::now();
            round_trip(proxied, url).await;
            p.push(t.elapsed());
        }
    });
    (median(d), median(p))
}

fn bench(c: &mut Criterion) {
    let paths = setup();
    for (scheme, (direct, proxied, url)) in [("https", &paths.https), ("http", &paths.http)] {
        let (d, p) = interleaved(&paths, direct, proxied, url);
        println!(
            "proxy/{scheme}: direct {:.1} µs | through the proxy {:.1} µs | ratio {:.2} | extra {:.1} µs",
            d.as_secs_f64() * 1e6,
            p.as_secs_f64() * 1e6,
            p.as_secs_f64() / d.as_secs_f64(),
            (p.as_secs_f64() - d.as_secs_f64()) * 1e6,
        );
    }
    let mut group = c.benchmark_group("proxy");
    for (scheme, (direct, proxied, url)) in [("https", &paths.https), ("http", &paths.http)] {
        group.bench_function(format!("{scheme}_direct"), |b| {
            b.iter(|| paths.runtime.block_on(round_trip(direct, url)))
        });
        group.bench_function(format!("{scheme}_proxied"), |b| {
            b.iter(|| paths.runtime.block_on(round_trip(proxied, url)))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
