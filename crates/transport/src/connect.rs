//! Opening TCP connections: straight to the server, to a proxy that forwards
//! plain-HTTP requests, or through a proxy's `CONNECT` tunnel.
//!
//! The [`Dialer`] holds what every connection shares (hyper-util's TCP
//! connector with the DNS resolver, connect timeout, local address and
//! socket options, and the proxies); the HTTPS client wraps it in
//! [`Connector`] under hyper-rustls, so TLS runs over whatever the dialer
//! returns, tunnel included. The WebSocket connector dials through the same
//! [`Dialer`].

use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::{StatusCode, Uri};
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tower::ServiceExt;
use tower_service::Service;

use crate::error::BoxError;
use crate::proxy::Proxy;

/// The longest answer header a proxy may send to `CONNECT`.
const MAX_TUNNEL_ANSWER: usize = 8 * 1024;

/// The proxies of a client, and how each destination is reached.
#[derive(Debug, Default)]
pub(crate) struct Routes {
    proxies: Vec<Proxy>,
    /// Plain-HTTP requests may be forwarded in absolute form (not with
    /// HTTP/2 prior knowledge, which a forwarding proxy cannot relay).
    forward_http: bool,
}

/// How one destination is reached.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Route<'a> {
    Direct,
    /// Connect to the proxy and send it the request in absolute form.
    Forward(&'a Proxy),
    /// Connect to the proxy and ask it for a `CONNECT` tunnel.
    Tunnel(&'a Proxy),
}

impl Routes {
    pub(crate) fn new(proxies: Vec<Proxy>, forward_http: bool) -> Self {
        Routes {
            proxies,
            forward_http,
        }
    }

    /// The route to `dst`: through the first proxy that serves it, if any.
    /// With `tunnel_only`, plain destinations are tunnelled too.
    pub(crate) fn route(&self, dst: &Uri, tunnel_only: bool) -> Route<'_> {
        match self.proxies.iter().find(|p| p.serves(dst)) {
            None => Route::Direct,
            Some(proxy)
                if !tunnel_only && self.forward_http && dst.scheme_str() == Some("http") =>
            {
                Route::Forward(proxy)
            }
            Some(proxy) => Route::Tunnel(proxy),
        }
    }

    /// Whether some request may be forwarded (and so need a
    /// `Proxy-Authorization` header of its own).
    pub(crate) fn may_forward(&self) -> bool {
        self.forward_http && !self.proxies.is_empty()
    }

    pub(crate) fn proxies(&self) -> &[Proxy] {
        &self.proxies
    }
}

/// A proxy that could not be reached or refused the tunnel; becomes
/// [`TransportError::Proxy`](crate::TransportError::Proxy).
#[derive(Debug)]
pub(crate) struct ProxyFailure {
    proxy: String,
    kind: FailureKind,
}

#[derive(Debug)]
enum FailureKind {
    /// No TCP connection to the proxy.
    Connect(BoxError),
    /// The proxy answered `CONNECT` with a non-2xx status.
    Refused(StatusCode),
    /// The exchange broke, timed out or made no sense.
    Exchange(io::Error),
}

impl fmt::Display for ProxyFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            // Shown after `proxy <url>: ` (see `TransportError::Proxy`).
            FailureKind::Connect(_) => f.write_str("could not connect"),
            FailureKind::Refused(status) => write!(f, "refused the tunnel: {status}"),
            FailureKind::Exchange(_) => f.write_str("the CONNECT exchange failed"),
        }
    }
}

impl StdError for ProxyFailure {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match &self.kind {
            FailureKind::Connect(e) => Some(&**e),
            FailureKind::Refused(_) => None,
            FailureKind::Exchange(e) => Some(e),
        }
    }
}

impl ProxyFailure {
    fn status(&self) -> Option<StatusCode> {
        match self.kind {
            FailureKind::Refused(status) => Some(status),
            _ => None,
        }
    }

    /// The proxy (without credentials) and the status of its refusal.
    pub(crate) fn parts(&self) -> (String, Option<StatusCode>) {
        (self.proxy.clone(), self.status())
    }
}

/// Finds a [`ProxyFailure`] in an error's chain.
pub(crate) fn find_proxy_failure<'a>(
    err: &'a (dyn StdError + 'static),
) -> Option<&'a ProxyFailure> {
    let mut cur = Some(err);
    while let Some(e) = cur {
        if let Some(failure) = e.downcast_ref::<ProxyFailure>() {
            return Some(failure);
        }
        cur = match e.downcast_ref::<io::Error>() {
            Some(io) => io.get_ref().map(|inner| inner as &(dyn StdError + 'static)),
            None => e.source(),
        };
    }
    None
}

/// What every connection of a client shares.
#[derive(Clone)]
pub(crate) struct Dialer {
    tcp: HttpConnector,
    routes: Arc<Routes>,
    /// The limit on the proxy's answer to `CONNECT` (the connect timeout).
    exchange_timeout: Option<Duration>,
}

impl fmt::Debug for Dialer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dialer")
            .field("proxies", &self.routes.proxies())
            .finish_non_exhaustive()
    }
}

/// A TCP connection opened by the [`Dialer`].
pub(crate) struct Dialed {
    pub(crate) stream: TcpStream,
    /// Connected to a proxy that forwards the requests (absolute form).
    pub(crate) forwarded: bool,
}

impl Dialer {
    pub(crate) fn new(
        tcp: HttpConnector,
        routes: Arc<Routes>,
        exchange_timeout: Option<Duration>,
    ) -> Self {
        Dialer {
            tcp,
            routes,
            exchange_timeout,
        }
    }

    pub(crate) fn routes(&self) -> &Arc<Routes> {
        &self.routes
    }

    /// Opens a connection for `dst` (`http`, `https`, `ws` or `wss`): to
    /// the server itself, or to the proxy that serves it, through a tunnel
    /// unless the request is to be forwarded. With `tunnel_only`, plain
    /// destinations are tunnelled too.
    pub(crate) async fn dial(&self, dst: &Uri, tunnel_only: bool) -> Result<Dialed, BoxError> {
        let host = dst
            .host()
            .filter(|h| !h.is_empty())
            .ok_or("the URI has no host")?;
        let port = dst.port_u16().unwrap_or(match dst.scheme_str() {
            Some("https" | "wss") => 443,
            _ => 80,
        });
        match self.routes.route(dst, tunnel_only) {
            Route::Direct => {
                let addr: Uri = format!("http://{host}:{port}").parse()?;
                let io = self.tcp.clone().oneshot(addr).await?;
                Ok(Dialed {
                    stream: io.into_inner(),
                    forwarded: false,
                })
            }
            Route::Forward(proxy) => Ok(Dialed {
                stream: self.connect_to(proxy).await?,
                forwarded: true,
            }),
            Route::Tunnel(proxy) => {
                let mut stream = self.connect_to(proxy).await?;
                let target = format!("{host}:{port}");
                let exchange = tunnel(&mut stream, &target, proxy);
                let outcome = match self.exchange_timeout {
                    Some(limit) => match tokio::time::timeout(limit, exchange).await {
                        Ok(outcome) => outcome,
                        Err(_) => Err(FailureKind::Exchange(io::Error::new(
                            io::ErrorKind::TimedOut,
                            format!("no answer to CONNECT within {limit:?}"),
                        ))),
                    },
                    None => exchange.await,
                };
                outcome.map_err(|kind| ProxyFailure {
                    proxy: proxy.url(),
                    kind,
                })?;
                Ok(Dialed {
                    stream,
                    forwarded: false,
                })
            }
        }
    }

    async fn connect_to(&self, proxy: &Proxy) -> Result<TcpStream, ProxyFailure> {
        let failure = |e: BoxError| ProxyFailure {
            proxy: proxy.url(),
            kind: FailureKind::Connect(e),
        };
        let addr: Uri = format!("http://{}:{}", proxy.host(), proxy.port())
            .parse()
            .map_err(|e: http::uri::InvalidUri| failure(e.into()))?;
        let io = self
            .tcp
            .clone()
            .oneshot(addr)
            .await
            .map_err(|e| failure(e.into()))?;
        Ok(io.into_inner())
    }
}

/// Asks the proxy at the other end of `stream` for a tunnel to `target`
/// (`host:port`) and reads its answer, up to the end of the header and not
/// a byte further.
async fn tunnel(stream: &mut TcpStream, target: &str, proxy: &Proxy) -> Result<(), FailureKind> {
    let mut request = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n").into_bytes();
    if let Some(auth) = proxy.authorization() {
        request.extend_from_slice(b"Proxy-Authorization: ");
        request.extend_from_slice(auth.as_bytes());
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"\r\n");
    stream
        .write_all(&request)
        .await
        .map_err(FailureKind::Exchange)?;

    let mut answer = Vec::with_capacity(256);
    let mut chunk = [0u8; 1024];
    loop {
        let n = stream
            .read(&mut chunk)
            .await
            .map_err(FailureKind::Exchange)?;
        if n == 0 {
            return Err(exchange(
                "the proxy closed the connection before answering CONNECT",
            ));
        }
        answer.extend_from_slice(&chunk[..n]);
        match parse_tunnel_answer(&answer)? {
            None if answer.len() >= MAX_TUNNEL_ANSWER => {
                return Err(exchange("the proxy's answer to CONNECT is too long"));
            }
            None => continue,
            Some((status, end)) if status.is_success() => {
                // The tunnel carries our bytes first (a TLS ClientHello or an
                // HTTP request): anything already sent did not come from the
                // server, and dropping it would corrupt the stream.
                return if end == answer.len() {
                    Ok(())
                } else {
                    Err(exchange("the proxy sent data before the tunnel was used"))
                };
            }
            Some((status, _)) => return Err(FailureKind::Refused(status)),
        }
    }
}

fn exchange(message: &'static str) -> FailureKind {
    FailureKind::Exchange(io::Error::new(io::ErrorKind::InvalidData, message))
}

/// The status of a complete answer header and the length of that header,
/// `None` while it is incomplete.
fn parse_tunnel_answer(bytes: &[u8]) -> Result<Option<(StatusCode, usize)>, FailureKind> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut response = httparse::Response::new(&mut headers);
    match response.parse(bytes) {
        Ok(httparse::Status::Partial) => Ok(None),
        Ok(httparse::Status::Complete(end)) => {
            let status = response
                .code
                .and_then(|c| StatusCode::from_u16(c).ok())
                .ok_or_else(|| exchange("the proxy's answer to CONNECT has no valid status"))?;
            Ok(Some((status, end)))
        }
        Err(_) => Err(exchange("the proxy's answer to CONNECT is not HTTP")),
    }
}

/// The connection type of the HTTPS client: a TCP stream that says whether
/// it leads to a forwarding proxy, so that hyper sends absolute-form
/// request targets over it.
#[derive(Debug)]
pub(crate) struct Conn {
    io: TokioIo<TcpStream>,
    forwarded: bool,
}

impl Connection for Conn {
    fn connected(&self) -> Connected {
        self.io.connected().proxy(self.forwarded)
    }
}

impl hyper::rt::Read for Conn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl hyper::rt::Write for Conn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }
}

/// The HTTPS client's connector (under hyper-rustls): dials through the
/// [`Dialer`].
#[derive(Clone, Debug)]
pub(crate) struct Connector {
    dialer: Dialer,
}

impl Connector {
    pub(crate) fn new(dialer: Dialer) -> Self {
        Connector { dialer }
    }
}

impl Service<Uri> for Connector {
    type Response = Conn;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Conn, BoxError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        let dialer = self.dialer.clone();
        Box::pin(async move {
            let dialed = dialer.dial(&dst, false).await?;
            Ok(Conn {
                io: TokioIo::new(dialed.stream),
                forwarded: dialed.forwarded,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn tunnel_answers_are_parsed_up_to_the_header_end() {
        let ok = b"HTTP/1.1 200 Connection established\r\n\r\n";
        assert_eq!(
            parse_tunnel_answer(ok).unwrap(),
            Some((StatusCode::OK, ok.len()))
        );
        assert_eq!(parse_tunnel_answer(&ok[..10]).unwrap(), None);
        let refused = b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(
            parse_tunnel_answer(refused).unwrap().unwrap().0,
            StatusCode::PROXY_AUTHENTICATION_REQUIRED
        );
        assert!(parse_tunnel_answer(b"SSH-2.0-OpenSSH\r\n\r\n").is_err());
        assert!(parse_tunnel_answer(b"HTTP/1.1 999x\r\n\r\n").is_err());
    }

    #[test]
    fn routes_pick_the_first_proxy_that_serves_the_destination() {
        let secure = Proxy::https("secure:1").unwrap();
        let plain = Proxy::http("plain:2").unwrap().no_proxy("direct.test");
        let routes = Routes::new(vec![secure, plain], true);
        let uri = |s: &str| s.parse::<Uri>().unwrap();
        assert!(
            matches!(routes.route(&uri("https://a/"), false), Route::Tunnel(p) if p.port() == 1)
        );
        assert!(
            matches!(routes.route(&uri("http://a/"), false), Route::Forward(p) if p.port() == 2)
        );
        assert!(matches!(routes.route(&uri("http://a/"), true), Route::Tunnel(p) if p.port() == 2));
        assert!(matches!(routes.route(&uri("ws://a/"), false), Route::Tunnel(p) if p.port() == 2));
        assert!(matches!(
            routes.route(&uri("http://direct.test/"), false),
            Route::Direct
        ));
        assert!(routes.may_forward());
        let h2 = Routes::new(vec![Proxy::all("p:3").unwrap()], false);
        assert!(matches!(
            h2.route(&uri("http://a/"), false),
            Route::Tunnel(_)
        ));
        assert!(!h2.may_forward());
    }

    proptest! {
        #[test]
        fn any_answer_bytes_give_a_verdict_without_panicking(
            bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..256),
        ) {
            if let Ok(Some((_, end))) = parse_tunnel_answer(&bytes) {
                prop_assert!(end <= bytes.len());
            }
        }

        #[test]
        fn a_complete_answer_reports_its_status_and_length(
            code in 100u16..=599,
            reason in "[A-Za-z ]{0,20}",
            extra in "[a-z]{0,8}",
        ) {
            let head = format!("HTTP/1.1 {code} {reason}\r\nX-A: b\r\n\r\n");
            let bytes = format!("{head}{extra}");
            let (status, end) = parse_tunnel_answer(bytes.as_bytes()).unwrap().unwrap();
            prop_assert_eq!(status.as_u16(), code);
            prop_assert_eq!(end, head.len());
        }
    }
}
