//! The connection settings of both client builders reach the transport:
//! proxies, the local address, timeouts and a shared connection pool.

use std::net::{IpAddr, Ipv6Addr};
use std::time::Duration;

use flagwire::Error;
use flagwire::schematic::Client;
use flagwire_core::schematic::companies::ListCompanies;
use flagwire_transport::proxy::Proxy;
use flagwire_transport::{HttpsClient, RetryPolicy, TransportError};

/// A proxy address nothing listens on.
fn dead_proxy() -> String {
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    format!("http://user:hunter2@{addr}")
}

fn proxy_error(err: &Error) -> &TransportError {
    match err {
        Error::Transport(e @ TransportError::Proxy { .. }) => e,
        other => panic!("expected a proxy error, got {other:?}"),
    }
}

#[tokio::test]
async fn schematic_requests_go_through_the_configured_proxy() {
    let server = flagwire_mock::MockServer::start().await.unwrap();
    let proxy = dead_proxy();
    let client = Client::builder(server.api_key())
        .base_url(server.rest_url())
        .capture_url(server.capture_url())
        .retry_policy(RetryPolicy::none())
        .proxy(Proxy::all(&proxy).unwrap())
        .connect_timeout(Some(Duration::from_secs(2)))
        .build()
        .unwrap();
    let err = client.send(ListCompanies::new()).await.unwrap_err();
    let TransportError::Proxy {
        proxy: shown,
        status,
        ..
    } = proxy_error(&err)
    else {
        unreachable!()
    };
    assert_eq!(shown, &proxy.replace("user:hunter2@", ""));
    assert_eq!(*status, None);
    assert!(err.is_connect());
    assert!(!err.to_string().contains("hunter2"), "{err}");

    // `no_proxy()` after it: straight to the emulator.
    let client = Client::builder(server.api_key())
        .base_url(server.rest_url())
        .capture_url(server.capture_url())
        .proxy(Proxy::all(&proxy).unwrap())
        .no_proxy()
        .pool_idle_timeout(Some(Duration::from_secs(5)))
        .pool_max_idle_per_host(2)
        .build()
        .unwrap();
    client.send(ListCompanies::new()).await.unwrap();
}

#[tokio::test]
async fn the_local_address_is_used() {
    let server = flagwire_mock::MockServer::start().await.unwrap();
    // An IPv6 source cannot reach the emulator on 127.0.0.1.
    let client = Client::builder(server.api_key())
        .base_url(server.rest_url())
        .capture_url(server.capture_url())
        .retry_policy(RetryPolicy::none())
        .no_proxy()
        .local_address(IpAddr::V6(Ipv6Addr::LOCALHOST))
        .build()
        .unwrap();
    let err = client.send(ListCompanies::new()).await.unwrap_err();
    assert!(err.is_connect(), "{err:?}");

    let client = Client::builder(server.api_key())
        .base_url(server.rest_url())
        .capture_url(server.capture_url())
        .no_proxy()
        .local_address(IpAddr::from([127, 0, 0, 1]))
        .build()
        .unwrap();
    client.send(ListCompanies::new()).await.unwrap();
}

#[tokio::test]
async fn clients_share_one_pool() {
    let server = flagwire_mock::MockServer::start().await.unwrap();
    let pool = HttpsClient::builder().no_proxy().build().unwrap();
    let first = Client::builder(server.api_key())
        .base_url(server.rest_url())
        .capture_url(server.capture_url())
        .http_client(pool.clone())
        .build()
        .unwrap();
    let second = Client::builder(server.api_key())
        .base_url(server.rest_url())
        .capture_url(server.capture_url())
        .http_client(pool.clone())
        .build()
        .unwrap();
    first.send(ListCompanies::new()).await.unwrap();
    second.send(ListCompanies::new()).await.unwrap();

    // Settings the shared client would ignore are refused.
    let err = Client::builder(server.api_key())
        .base_url(server.rest_url())
        .capture_url(server.capture_url())
        .http_client(pool)
        .connect_timeout(Some(Duration::from_secs(1)))
        .build()
        .unwrap_err();
    assert!(
        matches!(err, Error::Transport(TransportError::Config { .. })),
        "{err:?}"
    );
}

#[tokio::test]
async fn esauti_requests_go_through_the_configured_proxy() {
    let proxy = dead_proxy();
    let client = flagwire::esauti::Client::builder()
        .api_key("esk_test")
        .rest_url("http://tenant.example.test/api")
        .retry_policy(RetryPolicy::none())
        .proxy(Proxy::http(&proxy).unwrap())
        .build()
        .unwrap();
    let err = client
        .call(http::Method::GET, "/contacts", &[], None)
        .await
        .unwrap_err();
    proxy_error(&err);
    assert!(!format!("{err:?}").contains("hunter2"));
}
