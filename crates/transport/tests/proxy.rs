//! Proxies and socket settings against a loopback proxy and servers:
//! `CONNECT` tunnels for HTTPS, forwarding for HTTP, credentials, the
//! exclusion list, a proxy that is down or refuses, the local address and a
//! shared connection pool.

mod support;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use bytes::Bytes;
use flagwire_transport::proxy::{Proxy, from_env_with};
use flagwire_transport::{
    BoxTransport, HttpsClient, HttpsClientBuilder, RetryPolicy, Roots, TransportBuilder,
    TransportError,
};
use http::{Request, Response, StatusCode};
use support::proxy::{ProxyConfig, start};
use support::{get, ok, pki, post, serve, serve_with};
use tower::ServiceExt;

/// `Basic base64("alice:s3cret")`.
const ALICE: &str = "Basic YWxpY2U6czNjcmV0";

fn transport(client: HttpsClientBuilder) -> BoxTransport {
    TransportBuilder::new()
        .client(client)
        .retry(RetryPolicy::none())
        .build()
        .unwrap()
}

async fn send(t: &BoxTransport, req: Request<Bytes>) -> Result<Response<Bytes>, TransportError> {
    t.clone().oneshot(req).await
}

#[tokio::test]
async fn https_goes_through_a_connect_tunnel_with_credentials() {
    let pki = pki();
    let server = serve_with(|_| ok("{\"secure\":true}"), Some(pki.acceptor));
    let proxy = start(ProxyConfig {
        require: Some(ALICE.to_owned()),
        ..ProxyConfig::default()
    });
    let client = HttpsClient::builder()
        .roots(Roots::None)
        .add_root_certificate(pki.ca)
        .proxy(
            Proxy::https(&proxy.url())
                .unwrap()
                .basic_auth("alice", "s3cret"),
        );
    let t = transport(client);
    let url = format!("https://localhost:{}/flags", server.addr.port());
    let resp = send(&t, get(&url)).await.unwrap();
    assert_eq!(resp.body().as_ref(), b"{\"secure\":true}");
    // TLS end to end through the tunnel: HTTP/2 negotiated with the server.
    assert_eq!(server.hits()[0].version, http::Version::HTTP_2);
    // The tunnel is pooled: a second request opens no second tunnel.
    send(&t, get(&url)).await.unwrap();
    assert_eq!(server.hit_count(), 2);
    let hits = proxy.hits();
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert_eq!(hits[0].method, "CONNECT");
    assert_eq!(hits[0].target, format!("localhost:{}", server.addr.port()));
    assert_eq!(hits[0].authorization.as_deref(), Some(ALICE));
    // The credentials are for the proxy only: the server never sees them.
    assert!(
        server.hits()[0]
            .headers
            .get("proxy-authorization")
            .is_none()
    );
}

#[tokio::test]
async fn http_is_forwarded_with_credentials_from_the_url() {
    let server = serve(|hit| ok(if hit.path == "/flags" { "{}" } else { "?" }));
    let proxy = start(ProxyConfig {
        require: Some(ALICE.to_owned()),
        ..ProxyConfig::default()
    });
    let with_credentials = proxy.url().replace("http://", "http://alice:s3cret@");
    let t = transport(HttpsClient::builder().proxy(Proxy::all(&with_credentials).unwrap()));
    let resp = send(&t, post(&server.url("/flags"), "{}")).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.body().as_ref(), b"{}");
    let hits = proxy.hits();
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert_eq!(hits[0].method, "POST");
    assert_eq!(hits[0].target, server.url("/flags"));
    assert_eq!(hits[0].authorization.as_deref(), Some(ALICE));
    assert_eq!(server.hits()[0].path, "/flags");
}

#[tokio::test]
async fn http2_only_tunnels_plain_http_too() {
    let server = serve(|_| ok("{}"));
    let proxy = start(ProxyConfig::default());
    let t = transport(
        HttpsClient::builder()
            .http2_only(true)
            .proxy(Proxy::all(&proxy.url()).unwrap()),
    );
    send(&t, get(&server.url("/"))).await.unwrap();
    assert_eq!(proxy.tunnels(), 1);
    assert_eq!(server.hits()[0].version, http::Version::HTTP_2);
}

fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    move |name| map.get(name).cloned()
}

/// A client configured as the environment `vars` would configure it.
fn from_vars(vars: &[(&str, &str)]) -> HttpsClientBuilder {
    from_env_with(env(vars))
        .into_iter()
        .fold(HttpsClient::builder().no_proxy(), HttpsClientBuilder::proxy)
}

#[tokio::test]
async fn environment_proxies_and_no_proxy() {
    let server = serve(|_| ok("{}"));
    let proxy = start(ProxyConfig::default());
    let port = server.addr.port();
    let t = transport(from_vars(&[
        ("HTTP_PROXY", &proxy.url()),
        ("NO_PROXY", "localhost, example.com"),
    ]));
    // `localhost` is excluded: straight to the server.
    send(&t, get(&format!("http://localhost:{port}/direct")))
        .await
        .unwrap();
    assert_eq!(proxy.hits().len(), 0);
    // 127.0.0.1 is not: through the proxy.
    send(&t, get(&format!("http://127.0.0.1:{port}/proxied")))
        .await
        .unwrap();
    assert_eq!(proxy.forwards(), 1);
    assert_eq!(server.hit_count(), 2);

    // HTTPS_PROXY alone leaves plain HTTP direct.
    let t = transport(from_vars(&[("HTTPS_PROXY", &proxy.url())]));
    send(&t, get(&server.url("/plain"))).await.unwrap();
    assert_eq!(proxy.hits().len(), 1);

    // `no_proxy()` ignores the environment: nothing here goes to the proxy.
    let t = transport(from_vars(&[("ALL_PROXY", &proxy.url())]).no_proxy());
    send(&t, get(&server.url("/none"))).await.unwrap();
    assert_eq!(proxy.hits().len(), 1);
    assert_eq!(server.hit_count(), 4);
}

#[tokio::test]
async fn a_proxy_that_is_down_is_a_clear_error_without_credentials() {
    let down = support::closed_port();
    let t = TransportBuilder::new()
        .client(
            HttpsClient::builder()
                .proxy(Proxy::all(&format!("http://alice:hunter2@{down}")).unwrap()),
        )
        .retry(RetryPolicy::default().base_delay(Duration::from_millis(1)))
        .retry_budget(None)
        .build()
        .unwrap();
    // Nothing reached the server, so even a POST is tried again.
    let err = send(&t, post("https://api.example.com/companies/create", "{}"))
        .await
        .unwrap_err();
    assert_eq!(err.attempts(), Some(3));
    assert!(err.is_connect(), "{err:?}");
    let TransportError::RetriesExhausted {
        source: Some(inner),
        ..
    } = &err
    else {
        panic!("{err:?}")
    };
    match &**inner {
        TransportError::Proxy { proxy, status, .. } => {
            assert_eq!(proxy, &format!("http://{down}"));
            assert_eq!(*status, None);
        }
        other => panic!("{other:?}"),
    }
    let text = err.to_string();
    assert!(
        text.contains(&format!("proxy http://{down}: could not connect: ")),
        "{text}"
    );
    assert!(text.contains("refused"), "{text}");
    for shown in [text, format!("{err:?}")] {
        assert!(
            !shown.contains("hunter2") && !shown.contains("alice"),
            "{shown}"
        );
    }
}

#[tokio::test]
async fn a_proxy_that_refuses_is_a_typed_error_and_not_retried() {
    for (config, code) in [
        (
            ProxyConfig {
                require: Some(ALICE.to_owned()),
                ..ProxyConfig::default()
            },
            407,
        ),
        (
            ProxyConfig {
                refuse: Some(403),
                ..ProxyConfig::default()
            },
            403,
        ),
    ] {
        let proxy = start(config);
        let t = TransportBuilder::new()
            .client(
                HttpsClient::builder().proxy(
                    Proxy::https(&proxy.url())
                        .unwrap()
                        .basic_auth("alice", "wrong-password"),
                ),
            )
            .retry(RetryPolicy::default().base_delay(Duration::from_millis(1)))
            .build()
            .unwrap();
        let err = send(&t, get("https://api.example.com/flags"))
            .await
            .unwrap_err();
        match &err {
            TransportError::Proxy {
                proxy: shown,
                status,
                source,
            } => {
                assert_eq!(shown, &proxy.url());
                assert_eq!(status.map(|s| s.as_u16()), Some(code));
                assert!(source.is_none());
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(proxy.tunnels(), 1, "a refusal is final");
        let text = err.to_string();
        assert!(
            text.starts_with(&format!(
                "proxy {}: refused the tunnel: {code}",
                proxy.url()
            )),
            "{text}"
        );
        assert!(!text.contains("wrong-password"), "{text}");
        assert!(!err.is_retryable() && err.never_sent());
    }
}

#[tokio::test]
async fn a_proxy_that_never_answers_connect_times_out() {
    let proxy = start(ProxyConfig {
        silent: true,
        ..ProxyConfig::default()
    });
    let t = transport(
        HttpsClient::builder()
            .connect_timeout(Some(Duration::from_millis(200)))
            .proxy(Proxy::all(&proxy.url()).unwrap()),
    );
    let err = send(&t, get("https://api.example.com/flags"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, TransportError::Proxy { status: None, .. }),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .ends_with("no answer to CONNECT within 200ms"),
        "{err}"
    );
}

#[tokio::test]
async fn local_address_binds_outgoing_connections() {
    let server = serve(|_| ok("{}"));
    let t = transport(
        HttpsClient::builder()
            .no_proxy()
            .local_address(IpAddr::V4(Ipv4Addr::LOCALHOST)),
    );
    send(&t, get(&server.url("/"))).await.unwrap();
    assert_eq!(server.hits()[0].peer.ip(), Ipv4Addr::LOCALHOST);

    // Another loopback address (Linux routes all of 127/8 to the loopback
    // interface): the server sees the chosen source, not the default one.
    if cfg!(target_os = "linux") {
        let source = Ipv4Addr::new(127, 0, 0, 2);
        let t = transport(HttpsClient::builder().local_address(IpAddr::V4(source)));
        send(&t, get(&server.url("/"))).await.unwrap();
        assert_eq!(server.hits()[1].peer.ip(), source);

        // Also towards a proxy.
        let proxy = start(ProxyConfig::default());
        let t = transport(
            HttpsClient::builder()
                .local_address(IpAddr::V4(source))
                .proxy(Proxy::all(&proxy.url()).unwrap()),
        );
        send(&t, get(&server.url("/"))).await.unwrap();
        assert_eq!(proxy.hits()[0].peer.ip(), source);
    }

    // An address of the other family cannot reach an IPv4 server.
    let t = transport(HttpsClient::builder().local_address(IpAddr::V6(Ipv6Addr::LOCALHOST)));
    let err = send(&t, get(&server.url("/"))).await.unwrap_err();
    assert!(err.is_connect(), "{err:?}");
}

#[tokio::test]
async fn transports_built_on_one_client_share_its_pool() {
    let server = serve(|_| ok("{}"));
    let shared = HttpsClient::builder()
        .no_proxy()
        .pool_max_idle_per_host(4)
        .pool_idle_timeout(Some(Duration::from_secs(30)))
        .build()
        .unwrap();
    let api = TransportBuilder::new()
        .http_client(shared.clone())
        .build()
        .unwrap();
    let events = TransportBuilder::new().http_client(shared).build().unwrap();
    send(&api, get(&server.url("/a"))).await.unwrap();
    send(&events, get(&server.url("/b"))).await.unwrap();
    let hits = server.hits();
    // One pooled connection served both transports.
    assert_eq!(hits[0].peer, hits[1].peer);

    // Settings that the shared client would silently ignore are refused.
    let err = TransportBuilder::new()
        .http_client(HttpsClient::new().unwrap())
        .map_client(|c| c.no_proxy())
        .build()
        .unwrap_err();
    assert!(matches!(err, TransportError::Config { .. }), "{err:?}");
}

#[test]
fn builder_debug_hides_proxy_credentials() {
    let builder = HttpsClient::builder()
        .proxy(Proxy::all("http://alice:hunter2@proxy:3128").unwrap())
        .local_address(IpAddr::V4(Ipv4Addr::LOCALHOST));
    let shown = format!("{builder:?}");
    assert!(shown.contains("proxy:3128"), "{shown}");
    assert!(
        !shown.contains("hunter2") && !shown.contains("alice"),
        "{shown}"
    );
}
