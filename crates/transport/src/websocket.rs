//! Opening WebSocket connections (`ws://`, `wss://`) the way the HTTPS
//! client opens HTTP ones (feature `websocket`).
//!
//! A [`WebSocketConnector`] is made from an
//! [`HttpsClientBuilder`](crate::HttpsClientBuilder)'s settings, so a
//! WebSocket trusts the same roots (the same rustls configuration, with the
//! *ring* provider: never a second crypto provider), goes through the same
//! proxies (always a `CONNECT` tunnel, for `ws://` too), binds the same
//! local address and obeys the same connect timeout. The whole opening
//! (connection, tunnel, TLS, upgrade) also has a deadline of its own, the
//! handshake timeout.
//!
//! The upgrade is done by tungstenite; the result is tokio-tungstenite's
//! [`WebSocketStream`] over a [`WsStream`]. A server that answers with
//! anything but `101 Switching Protocols` is
//! [`TransportError::UpgradeRejected`], with the status and the answer, so
//! that a caller can tell an expired credential (`401`) from a refusal
//! (`403`) or an outage (`503`).
//!
//! ```no_run
//! use flagwire_transport::HttpsClient;
//! use flagwire_transport::websocket::WebSocketConfig;
//!
//! # async fn run() -> Result<(), flagwire_transport::TransportError> {
//! let connector = HttpsClient::builder().websocket_connector()?;
//! let request = http::Request::get("wss://api.schematichq.com/datastream")
//!     .header("X-Schematic-Api-Key", "api_key_example")
//!     .body(())
//!     .expect("a valid request");
//! let (socket, response) = connector.connect(request, WebSocketConfig::default()).await?;
//! assert_eq!(response.status(), 101);
//! # drop(socket);
//! # Ok(()) }
//! ```

use std::fmt;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONNECTION, HOST, SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_VERSION, UPGRADE};
use http::{HeaderValue, Request, Response};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

pub use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
pub use tokio_tungstenite::{WebSocketStream, tungstenite};

use crate::connect::{Dialer, find_proxy_failure};
use crate::error::{BoxError, LastResponse, TimeoutKind, TransportError};

/// The default deadline for opening a WebSocket: 30 s.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

/// Opens WebSocket connections with an HTTPS client's settings; cheap to
/// clone. Made by
/// [`HttpsClientBuilder::websocket_connector`](crate::HttpsClientBuilder::websocket_connector).
#[derive(Clone)]
pub struct WebSocketConnector {
    dialer: Dialer,
    tls: TlsConnector,
    secure_only: bool,
    handshake_timeout: Duration,
}

impl fmt::Debug for WebSocketConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebSocketConnector")
            .field("dialer", &self.dialer)
            .field("secure_only", &self.secure_only)
            .field("handshake_timeout", &self.handshake_timeout)
            .finish_non_exhaustive()
    }
}

impl WebSocketConnector {
    pub(crate) fn new(dialer: Dialer, mut tls: rustls::ClientConfig, secure_only: bool) -> Self {
        // The upgrade is an HTTP/1.1 exchange.
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        WebSocketConnector {
            dialer,
            tls: TlsConnector::from(Arc::new(tls)),
            secure_only,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
        }
    }

    /// The deadline for opening a connection: connecting, the proxy
    /// tunnel, TLS and the upgrade exchange (default 30 s).
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// Opens a WebSocket to the `ws://` or `wss://` URI of `request` and
    /// performs the upgrade, sending the request's headers (credentials,
    /// subprotocols…). `Host`, `Connection`, `Upgrade`,
    /// `Sec-WebSocket-Version` and `Sec-WebSocket-Key` are added when the
    /// request lacks them.
    ///
    /// Errors: [`TransportError::InvalidRequest`] for a URI that is not
    /// `ws://`/`wss://` with a host (or `ws://` when the client is
    /// `https_only`); `Connect`, `Proxy` or `Tls` when the connection could
    /// not be made; [`TransportError::UpgradeRejected`] when the server
    /// answered with another status than `101`; `Timeout` (of kind
    /// [`TimeoutKind::Handshake`]) when the handshake timeout ran out; `Io`
    /// for a broken or invalid exchange.
    pub async fn connect(
        &self,
        request: Request<()>,
        config: WebSocketConfig,
    ) -> Result<(WebSocketStream<WsStream>, Response<Option<Vec<u8>>>), TransportError> {
        let (request, secure) = self.prepare(request)?;
        let limit = self.handshake_timeout;
        match tokio::time::timeout(limit, self.open(request, secure, config)).await {
            Ok(outcome) => outcome,
            Err(_) => Err(TransportError::Timeout {
                kind: TimeoutKind::Handshake,
                after: limit,
                attempt: 1,
            }),
        }
    }

    /// Checks the URI and completes the upgrade headers.
    fn prepare(&self, mut request: Request<()>) -> Result<(Request<()>, bool), TransportError> {
        let uri = request.uri();
        let secure = match uri.scheme_str() {
            Some("wss") => true,
            Some("ws") if !self.secure_only => false,
            Some("ws") => {
                return Err(TransportError::invalid_request(
                    "plain ws:// is disabled (https_only)",
                ));
            }
            _ => {
                return Err(TransportError::invalid_request(
                    "a WebSocket URI starts with ws:// or wss://",
                ));
            }
        };
        let authority = match uri.authority() {
            Some(a) if !a.host().is_empty() => a.clone(),
            _ => return Err(TransportError::invalid_request("the URI has no host")),
        };
        let host = match authority.port_u16() {
            // The default port is left out, as browsers do.
            Some(443) if secure => authority.host().to_owned(),
            Some(80) if !secure => authority.host().to_owned(),
            _ => authority
                .as_str()
                .rsplit('@')
                .next()
                .unwrap_or_default()
                .to_owned(),
        };
        let headers = request.headers_mut();
        let mut add = |name, value: HeaderValue| {
            headers.entry(name).or_insert(value);
        };
        add(
            HOST,
            HeaderValue::try_from(host)
                .map_err(|_| TransportError::invalid_request("the host is not a valid header"))?,
        );
        add(CONNECTION, HeaderValue::from_static("Upgrade"));
        add(UPGRADE, HeaderValue::from_static("websocket"));
        add(SEC_WEBSOCKET_VERSION, HeaderValue::from_static("13"));
        let key = tungstenite::handshake::client::generate_key();
        add(
            SEC_WEBSOCKET_KEY,
            HeaderValue::try_from(key).expect("a base64 key is a valid header value"),
        );
        Ok((request, secure))
    }

    async fn open(
        &self,
        request: Request<()>,
        secure: bool,
        config: WebSocketConfig,
    ) -> Result<(WebSocketStream<WsStream>, Response<Option<Vec<u8>>>), TransportError> {
        let dialed = self
            .dialer
            .dial(request.uri(), true)
            .await
            .map_err(dial_error)?;
        let stream = if secure {
            let host = request.uri().host().unwrap_or_default();
            let bare = host
                .strip_prefix('[')
                .and_then(|h| h.strip_suffix(']'))
                .unwrap_or(host);
            let name = ServerName::try_from(bare.to_owned())
                .map_err(|_| TransportError::invalid_request("the host is not a valid TLS name"))?;
            let tls =
                self.tls
                    .connect(name, dialed.stream)
                    .await
                    .map_err(|e| TransportError::Tls {
                        source: Box::new(e),
                    })?;
            WsStream {
                inner: Inner::Tls(Box::new(tls)),
            }
        } else {
            WsStream {
                inner: Inner::Plain(dialed.stream),
            }
        };
        tokio_tungstenite::client_async_with_config(request, stream, Some(config))
            .await
            .map_err(upgrade_error)
    }
}

/// The error of a failed dial: the proxy's, or a failed connection.
fn dial_error(err: BoxError) -> TransportError {
    if let Some((proxy, status)) = find_proxy_failure(&*err).map(|f| f.parts()) {
        return TransportError::Proxy {
            proxy,
            status,
            source: status.is_none().then_some(err),
        };
    }
    TransportError::Connect { source: err }
}

fn upgrade_error(err: tungstenite::Error) -> TransportError {
    match err {
        tungstenite::Error::Http(response) => {
            let (parts, body) = response.into_parts();
            let status = parts.status;
            let body = body.map(Bytes::from).unwrap_or_default();
            TransportError::UpgradeRejected {
                status,
                response: LastResponse(Box::new(Response::from_parts(parts, body))),
            }
        }
        tungstenite::Error::Io(e) => TransportError::Io {
            source: Box::new(e),
        },
        other => TransportError::Io {
            source: Box::new(other),
        },
    }
}

/// The connection under a WebSocket: TCP, or TLS over TCP, either possibly
/// through a proxy's tunnel.
pub struct WsStream {
    inner: Inner,
}

enum Inner {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl WsStream {
    /// Whether the connection is encrypted (`wss://`).
    pub fn is_tls(&self) -> bool {
        matches!(self.inner, Inner::Tls(_))
    }

    /// The TCP connection: to the server, or to the proxy whose tunnel
    /// leads to it.
    pub fn tcp(&self) -> &TcpStream {
        match &self.inner {
            Inner::Plain(tcp) => tcp,
            Inner::Tls(tls) => tls.get_ref().0,
        }
    }
}

impl fmt::Debug for WsStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WsStream")
            .field("tls", &self.is_tls())
            .field("peer", &self.tcp().peer_addr().ok())
            .finish()
    }
}

impl AsyncRead for WsStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match &mut self.inner {
            Inner::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Inner::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for WsStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match &mut self.inner {
            Inner::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Inner::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.inner {
            Inner::Plain(s) => Pin::new(s).poll_flush(cx),
            Inner::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.inner {
            Inner::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Inner::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match &mut self.inner {
            Inner::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Inner::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match &self.inner {
            Inner::Plain(s) => s.is_write_vectored(),
            Inner::Tls(s) => s.is_write_vectored(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::HttpsClient;

    fn connector() -> WebSocketConnector {
        HttpsClient::builder()
            .no_proxy()
            .websocket_connector()
            .unwrap()
    }

    #[test]
    fn upgrade_headers_are_completed_and_the_callers_kept() {
        let request = Request::get("wss://stream.example.com:443/ds")
            .header("x-schematic-api-key", "k")
            .header(SEC_WEBSOCKET_VERSION, "13")
            .body(())
            .unwrap();
        let (request, secure) = connector().prepare(request).unwrap();
        assert!(secure);
        let h = request.headers();
        assert_eq!(h[HOST], "stream.example.com");
        assert_eq!(h[CONNECTION], "Upgrade");
        assert_eq!(h[UPGRADE], "websocket");
        assert_eq!(h[SEC_WEBSOCKET_VERSION], "13");
        assert_eq!(h.get_all(SEC_WEBSOCKET_VERSION).iter().count(), 1);
        assert_eq!(h[SEC_WEBSOCKET_KEY].len(), 24);
        assert_eq!(h["x-schematic-api-key"], "k");

        let plain = Request::get("ws://127.0.0.1:8080/ds").body(()).unwrap();
        let (plain, secure) = connector().prepare(plain).unwrap();
        assert!(!secure);
        assert_eq!(plain.headers()[HOST], "127.0.0.1:8080");
    }

    #[test]
    fn only_ws_uris_with_a_host_are_accepted() {
        for bad in ["https://h/ds", "/ds", "ftp://h/"] {
            let request = Request::get(bad).body(()).unwrap();
            assert!(
                matches!(
                    connector().prepare(request),
                    Err(TransportError::InvalidRequest { .. })
                ),
                "{bad}"
            );
        }
        let secure_only = HttpsClient::builder()
            .https_only(true)
            .websocket_connector()
            .unwrap();
        let request = Request::get("ws://h/ds").body(()).unwrap();
        assert!(secure_only.prepare(request).is_err());
    }
}
