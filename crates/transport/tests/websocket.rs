//! The WebSocket connector against loopback tungstenite servers: plain and
//! TLS (private CA), through the test `CONNECT` proxy, a handshake that
//! never completes, and upgrades the server refuses.
#![cfg(feature = "websocket")]

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use flagwire_transport::proxy::Proxy;
use flagwire_transport::websocket::tungstenite::Message;
use flagwire_transport::websocket::tungstenite::handshake::server::{
    Request as UpgradeRequest, Response as UpgradeResponse,
};
use flagwire_transport::websocket::{WebSocketConfig, WebSocketConnector};
use flagwire_transport::{HttpsClient, Roots, TimeoutKind, TransportError};
use futures_util::{SinkExt, StreamExt};
use http::{HeaderMap, Request, StatusCode};
use support::proxy::{ProxyConfig, start};
use support::{Pki, pki_with_alpn, serve, status};
use tokio::net::TcpListener;

/// A WebSocket echo server; records the headers of each upgrade request.
struct EchoServer {
    port: u16,
    upgrades: Arc<Mutex<Vec<HeaderMap>>>,
}

// The upgrade callback's error type is tungstenite's, large as it is.
#[allow(clippy::result_large_err)]
async fn echo_server(tls: Option<tokio_rustls::TlsAcceptor>) -> EchoServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let upgrades = Arc::new(Mutex::new(Vec::new()));
    let log = upgrades.clone();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let log = log.clone();
            let tls = tls.clone();
            tokio::spawn(async move {
                let record = move |req: &UpgradeRequest, resp: UpgradeResponse| {
                    log.lock().unwrap().push(req.headers().clone());
                    Ok(resp)
                };
                match tls {
                    Some(acceptor) => {
                        let Ok(stream) = acceptor.accept(tcp).await else {
                            return;
                        };
                        if let Ok(ws) = tokio_tungstenite::accept_hdr_async(stream, record).await {
                            echo(ws).await;
                        }
                    }
                    None => {
                        if let Ok(ws) = tokio_tungstenite::accept_hdr_async(tcp, record).await {
                            echo(ws).await;
                        }
                    }
                }
            });
        }
    });
    EchoServer { port, upgrades }
}

async fn echo<S>(mut ws: tokio_tungstenite::WebSocketStream<S>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    while let Some(Ok(message)) = ws.next().await {
        if (message.is_text() || message.is_binary()) && ws.send(message).await.is_err() {
            return;
        }
    }
}

fn tls_pki() -> Pki {
    pki_with_alpn(vec![b"http/1.1".to_vec()])
}

fn trusting(pki: &Pki) -> flagwire_transport::HttpsClientBuilder {
    HttpsClient::builder()
        .no_proxy()
        .roots(Roots::None)
        .add_root_certificate(pki.ca.clone())
}

fn request(url: &str) -> Request<()> {
    Request::get(url)
        .header("x-schematic-api-key", "api_key_1")
        .body(())
        .unwrap()
}

/// Sends a text message and returns the echo.
async fn round_trip(
    connector: &WebSocketConnector,
    url: &str,
) -> (String, flagwire_transport::websocket::WsStream) {
    let (mut ws, response) = connector
        .connect(request(url), WebSocketConfig::default())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
    ws.send(Message::text("ping")).await.unwrap();
    let echoed = ws.next().await.unwrap().unwrap();
    let text = echoed.into_text().unwrap().to_string();
    (text, ws.into_inner())
}

#[tokio::test]
async fn plain_ws_sends_the_request_headers_and_exchanges_messages() {
    let server = echo_server(None).await;
    let connector = HttpsClient::builder()
        .no_proxy()
        .websocket_connector()
        .unwrap();
    let url = format!("ws://127.0.0.1:{}/datastream", server.port);
    let (text, stream) = round_trip(&connector, &url).await;
    assert_eq!(text, "ping");
    assert!(!stream.is_tls());
    let upgrades = server.upgrades.lock().unwrap();
    assert_eq!(upgrades[0]["x-schematic-api-key"], "api_key_1");
    assert_eq!(
        upgrades[0]["host"],
        format!("127.0.0.1:{}", server.port).as_str()
    );
}

#[tokio::test]
async fn wss_trusts_the_clients_roots() {
    let pki = tls_pki();
    let server = echo_server(Some(pki.acceptor.clone())).await;
    let url = format!("wss://localhost:{}/datastream", server.port);
    let connector = trusting(&pki).websocket_connector().unwrap();
    let (text, stream) = round_trip(&connector, &url).await;
    assert_eq!(text, "ping");
    assert!(stream.is_tls());

    // Without the private CA the certificate is refused, with its cause.
    let untrusting = HttpsClient::builder()
        .no_proxy()
        .websocket_connector()
        .unwrap();
    let err = untrusting
        .connect(request(&url), WebSocketConfig::default())
        .await
        .unwrap_err();
    assert!(matches!(err, TransportError::Tls { .. }), "{err:?}");
    assert!(err.to_string().contains("UnknownIssuer"), "{err}");
}

#[tokio::test]
async fn ws_and_wss_go_through_the_proxy_tunnel() {
    let pki = tls_pki();
    let secure = echo_server(Some(pki.acceptor.clone())).await;
    let plain = echo_server(None).await;
    let proxy = start(ProxyConfig {
        require: Some("Basic YWxpY2U6czNjcmV0".to_owned()),
        ..ProxyConfig::default()
    });
    let connector = trusting(&pki)
        .proxy(
            Proxy::all(&proxy.url())
                .unwrap()
                .basic_auth("alice", "s3cret"),
        )
        .websocket_connector()
        .unwrap();
    let (text, _) = round_trip(&connector, &format!("wss://localhost:{}/ds", secure.port)).await;
    assert_eq!(text, "ping");
    let (text, _) = round_trip(&connector, &format!("ws://127.0.0.1:{}/ds", plain.port)).await;
    assert_eq!(text, "ping");
    let hits = proxy.hits();
    assert_eq!(proxy.tunnels(), 2, "{hits:?}");
    assert_eq!(hits[0].target, format!("localhost:{}", secure.port));
    assert_eq!(hits[1].target, format!("127.0.0.1:{}", plain.port));
    assert!(hits.iter().all(|h| h.authorization.is_some()));
    // The server never sees the proxy's credentials.
    assert!(
        plain.upgrades.lock().unwrap()[0]
            .get("proxy-authorization")
            .is_none()
    );

    // Wrong credentials: the proxy's refusal, typed.
    let refused = trusting(&pki)
        .proxy(Proxy::all(&proxy.url()).unwrap())
        .websocket_connector()
        .unwrap();
    let err = refused
        .connect(
            request(&format!("ws://127.0.0.1:{}/ds", plain.port)),
            WebSocketConfig::default(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, TransportError::Proxy { status: Some(s), .. } if s == 407),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_server_that_never_answers_runs_into_the_handshake_timeout() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let held = Arc::new(Mutex::new(Vec::new()));
    let keep = held.clone();
    tokio::spawn(async move {
        // Accept and hold each connection without a word.
        while let Ok((tcp, _)) = listener.accept().await {
            keep.lock().unwrap().push(tcp);
        }
    });
    let connector = HttpsClient::builder()
        .no_proxy()
        .websocket_connector()
        .unwrap()
        .handshake_timeout(Duration::from_millis(200));
    let started = std::time::Instant::now();
    let err = connector
        .connect(
            request(&format!("ws://127.0.0.1:{port}/ds")),
            WebSocketConfig::default(),
        )
        .await
        .unwrap_err();
    match err {
        TransportError::Timeout { kind, after, .. } => {
            assert_eq!(kind, TimeoutKind::Handshake);
            assert_eq!(after, Duration::from_millis(200));
        }
        other => panic!("{other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(held.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_refused_upgrade_carries_the_status() {
    for code in [401u16, 403, 503] {
        let server = serve(move |_| status(code));
        let connector = HttpsClient::builder()
            .no_proxy()
            .websocket_connector()
            .unwrap();
        let err = connector
            .connect(
                request(&format!("ws://127.0.0.1:{}/ds", server.addr.port())),
                WebSocketConfig::default(),
            )
            .await
            .unwrap_err();
        assert_eq!(err.status().map(|s| s.as_u16()), Some(code), "{err:?}");
        match &err {
            TransportError::UpgradeRejected { status, .. } => assert_eq!(status.as_u16(), code),
            other => panic!("{other:?}"),
        }
        let body = err.rejected_upgrade().unwrap().body();
        assert_eq!(
            body.as_ref(),
            format!("{{\"error\":\"status {code}\"}}").as_bytes()
        );
        assert!(err.to_string().contains(&code.to_string()), "{err}");
        // The upgrade request reached the server with its headers.
        assert_eq!(server.hits()[0].headers["x-schematic-api-key"], "api_key_1");
    }
}

#[tokio::test]
async fn connection_failures_are_typed() {
    let connector = HttpsClient::builder()
        .no_proxy()
        .connect_timeout(Some(Duration::from_secs(2)))
        .websocket_connector()
        .unwrap();
    let closed = support::closed_port();
    let err = connector
        .connect(
            request(&format!("ws://{closed}/ds")),
            WebSocketConfig::default(),
        )
        .await
        .unwrap_err();
    assert!(err.is_connect(), "{err:?}");
    let err = connector
        .connect(request("https://127.0.0.1/ds"), WebSocketConfig::default())
        .await
        .unwrap_err();
    assert!(
        matches!(err, TransportError::InvalidRequest { .. }),
        "{err:?}"
    );
}
