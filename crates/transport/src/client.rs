//! The bottom of the stack: a pooled HTTPS client, and response buffering.
//!
//! [`HttpsClient`] is hyper-util's pooled client over hyper-rustls. rustls is
//! always given the *ring* provider explicitly, so the process-wide default
//! provider is never consulted and can never panic for being missing or
//! ambiguous. HTTP/2 is negotiated by ALPN, HTTP/1.1 otherwise; connections
//! are kept alive and pooled. Plain `http://` is allowed (for a local
//! emulator) unless [`HttpsClientBuilder::https_only`] is set.
//!
//! Connections go through the proxies of the environment (`HTTPS_PROXY`,
//! `HTTP_PROXY`, `ALL_PROXY`, `NO_PROXY`, read once when the client is
//! built), through explicit ones ([`HttpsClientBuilder::proxy`]), or
//! straight to the server ([`HttpsClientBuilder::no_proxy`]); see the
//! [`proxy`] module for the rules.
//!
//! [`CollectBodyLayer`] reads a streaming response body into `Bytes`, up to
//! a limit, for any service (e.g. an in-process router used as a test
//! double).

use std::fmt;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body::Body;
use http_body_util::combinators::Collect;
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use pin_project_lite::pin_project;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tower_layer::Layer;
use tower_service::Service;

use crate::connect::{Connector, Dialer, Route, Routes};
use crate::error::{BoxError, TransportError, from_body_error, from_client_error};
use crate::proxy::{self, Proxy};

/// The default limit on a response body: 16 MiB.
pub const DEFAULT_MAX_RESPONSE_BODY: usize = 16 * 1024 * 1024;

/// Which built-in set of root certificates to trust. The default is
/// `WebPki` when that feature is on, else `Native` when that one is, else
/// `None`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Roots {
    /// Mozilla's roots compiled into the binary (feature `webpki-roots`).
    #[cfg(feature = "webpki-roots")]
    #[default]
    WebPki,
    /// The operating system's store, read when the client is built
    /// (feature `native-roots`).
    #[cfg(feature = "native-roots")]
    #[cfg_attr(not(feature = "webpki-roots"), default)]
    Native,
    /// None: only the certificates added with
    /// [`HttpsClientBuilder::add_root_certificate`].
    #[cfg_attr(not(any(feature = "webpki-roots", feature = "native-roots")), default)]
    None,
}

/// Where the proxies of a client come from.
#[derive(Debug, Clone)]
enum Proxies {
    /// The environment, read when the client is built.
    Environment,
    /// These (possibly none), in order of preference.
    Explicit(Vec<Proxy>),
}

/// Configures an [`HttpsClient`].
///
/// ```
/// use std::net::{IpAddr, Ipv4Addr};
/// use std::time::Duration;
/// use flagwire_transport::HttpsClient;
/// use flagwire_transport::proxy::Proxy;
///
/// let client = HttpsClient::builder()
///     .proxy(Proxy::https("http://proxy.internal:3128")?.basic_auth("alice", "s3cret"))
///     .local_address(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
///     .connect_timeout(Some(Duration::from_secs(3)))
///     .pool_idle_timeout(Some(Duration::from_secs(30)))
///     .pool_max_idle_per_host(8)
///     .build()?;
/// // Clones share one connection pool.
/// let shared = client.clone();
/// # drop(shared);
/// # Ok::<(), flagwire_transport::TransportError>(())
/// ```
#[derive(Clone)]
pub struct HttpsClientBuilder {
    roots: Roots,
    extra_roots: Vec<CertificateDer<'static>>,
    tls_config: Option<rustls::ClientConfig>,
    proxies: Proxies,
    local_address: Option<IpAddr>,
    connect_timeout: Option<Duration>,
    tcp_keepalive: Option<Duration>,
    pool_idle_timeout: Option<Duration>,
    pool_max_idle_per_host: usize,
    https_only: bool,
    http2_only: bool,
    max_response_body: usize,
}

impl fmt::Debug for HttpsClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpsClientBuilder")
            .field("roots", &self.roots)
            .field("extra_roots", &self.extra_roots.len())
            .field("custom_tls_config", &self.tls_config.is_some())
            .field("proxies", &self.proxies)
            .field("local_address", &self.local_address)
            .field("connect_timeout", &self.connect_timeout)
            .field("pool_idle_timeout", &self.pool_idle_timeout)
            .field("https_only", &self.https_only)
            .field("max_response_body", &self.max_response_body)
            .finish_non_exhaustive()
    }
}

impl Default for HttpsClientBuilder {
    fn default() -> Self {
        HttpsClientBuilder {
            roots: Roots::default(),
            extra_roots: Vec::new(),
            tls_config: None,
            proxies: Proxies::Environment,
            local_address: None,
            connect_timeout: Some(Duration::from_secs(10)),
            tcp_keepalive: Some(Duration::from_secs(60)),
            pool_idle_timeout: Some(Duration::from_secs(90)),
            pool_max_idle_per_host: 32,
            https_only: false,
            http2_only: false,
            max_response_body: DEFAULT_MAX_RESPONSE_BODY,
        }
    }
}

impl HttpsClientBuilder {
    /// The defaults: built-in roots per the crate features, the proxies of
    /// the environment, 10 s connect timeout, 60 s TCP keep-alive, 90 s
    /// pool idle timeout, 32 idle connections per host, `http://` allowed,
    /// 16 MiB body limit.
    pub fn new() -> Self {
        HttpsClientBuilder::default()
    }

    /// Chooses the built-in roots.
    pub fn roots(mut self, roots: Roots) -> Self {
        self.roots = roots;
        self
    }

    /// Also trusts this (DER-encoded) root certificate, e.g. a private CA.
    pub fn add_root_certificate(mut self, der: impl Into<CertificateDer<'static>>) -> Self {
        self.extra_roots.push(der.into());
        self
    }

    /// Also trusts every certificate in a PEM file's contents.
    pub fn add_root_certificates_pem(mut self, pem: &[u8]) -> Result<Self, TransportError> {
        let mut found = false;
        for cert in CertificateDer::pem_slice_iter(pem) {
            let cert = cert.map_err(|e| TransportError::config(format!("invalid PEM: {e}")))?;
            self.extra_roots.push(cert);
            found = true;
        }
        if !found {
            return Err(TransportError::config("no certificate in PEM input"));
        }
        Ok(self)
    }

    /// Uses this rustls configuration as it is (client certificates, custom
    /// verifiers…), ignoring the root settings. Its ALPN list is replaced to
    /// match the enabled HTTP versions. Build it with an explicit provider,
    /// e.g. `ClientConfig::builder_with_provider`.
    pub fn tls_config(mut self, config: rustls::ClientConfig) -> Self {
        self.tls_config = Some(config);
        self
    }

    /// Sends requests through `proxy` when it serves their destination.
    /// Explicit proxies replace the environment's; several are tried in the
    /// order they were added, and a destination none of them serves is
    /// reached directly. See the [`proxy`] module.
    pub fn proxy(mut self, proxy: Proxy) -> Self {
        match &mut self.proxies {
            Proxies::Explicit(list) => list.push(proxy),
            Proxies::Environment => self.proxies = Proxies::Explicit(vec![proxy]),
        }
        self
    }

    /// Connects straight to every server: ignores the proxy environment
    /// variables and the proxies added so far.
    pub fn no_proxy(mut self) -> Self {
        self.proxies = Proxies::Explicit(Vec::new());
        self
    }

    /// Binds outgoing connections (to servers and proxies) to this local
    /// address; destinations of the other address family are then
    /// unreachable. `None` (the default) lets the system choose.
    pub fn local_address(mut self, address: impl Into<Option<IpAddr>>) -> Self {
        self.local_address = address.into();
        self
    }

    /// Limit on establishing a TCP connection, and on a proxy's answer to a
    /// `CONNECT` request (default 10 s; `None` for none).
    pub fn connect_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// TCP keep-alive interval (default 60 s; `None` to disable).
    pub fn tcp_keepalive(mut self, interval: Option<Duration>) -> Self {
        self.tcp_keepalive = interval;
        self
    }

    /// How long an idle pooled connection is kept (default 90 s; `None`
    /// keeps it until the server closes it).
    pub fn pool_idle_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.pool_idle_timeout = timeout;
        self
    }

    /// Most idle connections kept per host (default 32).
    pub fn pool_max_idle_per_host(mut self, max: usize) -> Self {
        self.pool_max_idle_per_host = max;
        self
    }

    /// Refuse `http://` URIs (default off, so a local emulator works).
    pub fn https_only(mut self, on: bool) -> Self {
        self.https_only = on;
        self
    }

    /// Speak only HTTP/2, also over plain `http://` (prior knowledge).
    pub fn http2_only(mut self, on: bool) -> Self {
        self.http2_only = on;
        self
    }

    /// The most bytes a response body may have (default 16 MiB).
    pub fn max_response_body(mut self, limit: usize) -> Self {
        self.max_response_body = limit;
        self
    }

    fn client_config(&self) -> Result<rustls::ClientConfig, TransportError> {
        if let Some(config) = &self.tls_config {
            let mut config = config.clone();
            config.alpn_protocols.clear();
            return Ok(config);
        }
        let mut store = rustls::RootCertStore::empty();
        match self.roots {
            #[cfg(feature = "webpki-roots")]
            Roots::WebPki => store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
            #[cfg(feature = "native-roots")]
            Roots::Native => {
                let found = rustls_native_certs::load_native_certs();
                let (added, _ignored) = store.add_parsable_certificates(found.certs);
                if added == 0 && self.extra_roots.is_empty() {
                    return Err(TransportError::config(
                        "no usable root certificate found in the system store",
                    ));
                }
            }
            Roots::None => {}
        }
        for cert in &self.extra_roots {
            store
                .add(cert.clone())
                .map_err(|e| TransportError::config(format!("invalid root certificate: {e}")))?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TransportError::config(format!("TLS setup failed: {e}")))?
            .with_root_certificates(store)
            .with_no_client_auth();
        Ok(config)
    }

    /// The dialer shared by the HTTPS client and the WebSocket connector:
    /// TCP settings and the proxies (the environment's are read now).
    pub(crate) fn dialer(&self) -> Dialer {
        let mut tcp = HttpConnector::new();
        tcp.enforce_http(false);
        tcp.set_nodelay(true);
        tcp.set_connect_timeout(self.connect_timeout);
        tcp.set_keepalive(self.tcp_keepalive);
        tcp.set_local_address(self.local_address);
        let proxies = match &self.proxies {
            Proxies::Environment => proxy::from_env(),
            Proxies::Explicit(list) => list.clone(),
        };
        let routes = Routes::new(proxies, !self.http2_only);
        Dialer::new(tcp, Arc::new(routes), self.connect_timeout)
    }

    /// A connector for WebSockets with these settings: the same TLS roots
    /// and configuration, proxies, local address and connect timeout (the
    /// proxy environment variables are read now). Pool and HTTP version
    /// settings do not apply. See the [`websocket`](crate::websocket)
    /// module.
    #[cfg(feature = "websocket")]
    pub fn websocket_connector(
        &self,
    ) -> Result<crate::websocket::WebSocketConnector, TransportError> {
        Ok(crate::websocket::WebSocketConnector::new(
            self.dialer(),
            self.client_config()?,
            self.https_only,
        ))
    }

    /// Builds the client. Needs no runtime; requests must be made on a tokio
    /// runtime. The proxy environment variables are read here, once.
    pub fn build(&self) -> Result<HttpsClient, TransportError> {
        let tls = self.client_config()?;
        let dialer = self.dialer();
        let routes = dialer.routes().clone();

        let schemes = hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(tls);
        let schemes = if self.https_only {
            schemes.https_only()
        } else {
            schemes.https_or_http()
        };
        let connector = Connector::new(dialer);
        let connector = if self.http2_only {
            schemes.enable_http2().wrap_connector(connector)
        } else {
            schemes
                .enable_http1()
                .enable_http2()
                .wrap_connector(connector)
        };

        let mut builder = Client::builder(TokioExecutor::new());
        builder
            .timer(TokioTimer::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(self.pool_idle_timeout)
            .pool_max_idle_per_host(self.pool_max_idle_per_host)
            .http2_only(self.http2_only);
        Ok(HttpsClient {
            settings: Arc::new(self.clone()),
            inner: CollectBody {
                inner: HyperService {
                    client: builder.build(connector),
                    https_only: self.https_only,
                    forwarding: routes.may_forward().then_some(routes),
                },
                limit: self.max_response_body,
            },
        })
    }
}

/// A pooled HTTP/1.1 + HTTP/2 client over rustls (ring) that takes
/// `Request<Bytes>` and returns the response with its body read into
/// `Bytes`. Cloning is cheap and shares the connection pool (and the
/// settings), so one client can serve several transports.
#[derive(Clone, Debug)]
pub struct HttpsClient {
    /// The settings it was built with, for connectors that share them.
    settings: Arc<HttpsClientBuilder>,
    inner: CollectBody<HyperService>,
}

impl HttpsClient {
    /// A client with the default settings.
    pub fn new() -> Result<Self, TransportError> {
        HttpsClientBuilder::new().build()
    }

    /// Starts configuring a client.
    pub fn builder() -> HttpsClientBuilder {
        HttpsClientBuilder::new()
    }

    /// A WebSocket connector with this client's settings (TLS, proxies,
    /// local address, connect timeout); see
    /// [`HttpsClientBuilder::websocket_connector`].
    #[cfg(feature = "websocket")]
    pub fn websocket_connector(
        &self,
    ) -> Result<crate::websocket::WebSocketConnector, TransportError> {
        self.settings.websocket_connector()
    }
}

impl Service<Request<Bytes>> for HttpsClient {
    type Response = Response<Bytes>;
    type Error = TransportError;
    type Future = CollectFuture<HyperFuture, hyper::body::Incoming>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<Bytes>) -> Self::Future {
        self.inner.call(req)
    }
}

#[derive(Clone)]
struct HyperService {
    client: Client<HttpsConnector<Connector>, Full<Bytes>>,
    https_only: bool,
    /// The routes, when some plain-HTTP request may be forwarded to a proxy
    /// (and so needs its `Proxy-Authorization`).
    forwarding: Option<Arc<Routes>>,
}

impl fmt::Debug for HyperService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HyperService").finish_non_exhaustive()
    }
}

fn check_uri(uri: &http::Uri, https_only: bool) -> Result<(), TransportError> {
    match uri.scheme_str() {
        Some("https") => {}
        Some("http") if !https_only => {}
        Some("http") => {
            return Err(TransportError::invalid_request(
                "plain http is disabled (https_only)",
            ));
        }
        Some(other) => {
            return Err(TransportError::invalid_request(format!(
                "unsupported URI scheme `{other}`"
            )));
        }
        None => {
            return Err(TransportError::invalid_request(
                "the URI must be absolute (scheme and host)",
            ));
        }
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(TransportError::invalid_request("the URI has no host"));
    }
    Ok(())
}

impl Service<Request<Bytes>> for HyperService {
    type Response = Response<hyper::body::Incoming>;
    type Error = TransportError;
    type Future = HyperFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // The legacy client is always ready; the pool waits inside `call`.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut req: Request<Bytes>) -> Self::Future {
        if let Err(e) = check_uri(req.uri(), self.https_only) {
            return HyperFuture {
                state: HyperState::Failed { err: Some(e) },
            };
        }
        // Added below the tracing layers, so the credentials are never logged.
        if let Some(routes) = &self.forwarding
            && let Route::Forward(proxy) = routes.route(req.uri(), false)
            && let Some(auth) = proxy.authorization()
        {
            req.headers_mut()
                .insert(http::header::PROXY_AUTHORIZATION, auth.clone());
        }
        HyperFuture {
            state: HyperState::Sending {
                fut: self.client.request(req.map(Full::new)),
            },
        }
    }
}

pin_project! {
    #[project = HyperProj]
    #[derive(Debug)]
    enum HyperState {
        Sending { #[pin] fut: hyper_util::client::legacy::ResponseFuture },
        Failed { err: Option<TransportError> },
    }
}

pin_project! {
    /// The future of the hyper client: resolves to the response head, with
    /// the body still streaming.
    #[derive(Debug)]
    pub struct HyperFuture {
        #[pin]
        state: HyperState,
    }
}

impl Future for HyperFuture {
    type Output = Result<Response<hyper::body::Incoming>, TransportError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            HyperProj::Sending { fut } => fut.poll(cx).map_err(from_client_error),
            HyperProj::Failed { err } => Poll::Ready(Err(err
                .take()
                .expect("HyperFuture polled after completion"))),
        }
    }
}

/// Reads response bodies into `Bytes`, failing with
/// [`TransportError::BodyTooLarge`] past `limit` bytes (checked against
/// `Content-Length` up front, and while reading).
#[derive(Debug, Clone, Copy)]
pub struct CollectBodyLayer {
    limit: usize,
}

impl CollectBodyLayer {
    /// Buffers bodies of at most `limit` bytes.
    pub const fn new(limit: usize) -> Self {
        CollectBodyLayer { limit }
    }
}

impl Default for CollectBodyLayer {
    fn default() -> Self {
        CollectBodyLayer::new(DEFAULT_MAX_RESPONSE_BODY)
    }
}

impl<S> Layer<S> for CollectBodyLayer {
    type Service = CollectBody<S>;

    fn layer(&self, inner: S) -> CollectBody<S> {
        CollectBody {
            inner,
            limit: self.limit,
        }
    }
}

/// The service made by [`CollectBodyLayer`].
#[derive(Debug, Clone)]
pub struct CollectBody<S> {
    inner: S,
    limit: usize,
}

impl<S, B, RB> Service<Request<B>> for CollectBody<S>
where
    S: Service<Request<B>, Response = Response<RB>>,
    S::Error: Into<BoxError>,
    RB: Body,
    RB::Error: Into<BoxError>,
{
    type Response = Response<Bytes>;
    type Error = TransportError;
    type Future = CollectFuture<S::Future, RB>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(TransportError::other)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        CollectFuture {
            state: CollectState::Head {
                fut: self.inner.call(req),
            },
            limit: self.limit,
            parts: None,
        }
    }
}

pin_project! {
    #[project = CollectProj]
    enum CollectState<F, RB>
    where
        RB: Body,
        RB::Error: Into<BoxError>,
    {
        Head { #[pin] fut: F },
        Body { #[pin] collect: Collect<Limited<RB>> },
    }
}

pin_project! {
    /// The response future of [`CollectBody`].
    pub struct CollectFuture<F, RB>
    where
        RB: Body,
        RB::Error: Into<BoxError>,
    {
        #[pin]
        state: CollectState<F, RB>,
        limit: usize,
        parts: Option<http::response::Parts>,
    }
}

impl<F, RB> fmt::Debug for CollectFuture<F, RB>
where
    RB: Body,
    RB::Error: Into<BoxError>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CollectFuture")
            .field("limit", &self.limit)
            .finish_non_exhaustive()
    }
}

impl<F, E, RB> Future for CollectFuture<F, RB>
where
    F: Future<Output = Result<Response<RB>, E>>,
    E: Into<BoxError>,
    RB: Body,
    RB::Error: Into<BoxError>,
{
    type Output = Result<Response<Bytes>, TransportError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            let mut this = self.as_mut().project();
            match this.state.as_mut().project() {
                CollectProj::Head { fut } => {
                    let resp = ready!(fut.poll(cx)).map_err(TransportError::other)?;
                    let (parts, body) = resp.into_parts();
                    let limit = *this.limit;
                    let declared = parts
                        .headers
                        .get(http::header::CONTENT_LENGTH)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.parse::<u64>().ok());
                    if declared.is_some_and(|len| len > limit as u64)
                        || body.size_hint().lower() > limit as u64
                    {
                        return Poll::Ready(Err(TransportError::BodyTooLarge { limit }));
                    }
                    *this.parts = Some(parts);
                    this.state.set(CollectState::Body {
                        collect: Limited::new(body, limit).collect(),
                    });
                }
                CollectProj::Body { collect } => {
                    let collected =
                        ready!(collect.poll(cx)).map_err(|e| from_body_error(e, *this.limit))?;
                    let parts = this
                        .parts
                        .take()
                        .expect("CollectFuture polled after completion");
                    return Poll::Ready(Ok(Response::from_parts(parts, collected.to_bytes())));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_checks() {
        let ok: http::Uri = "https://api.example.com/x".parse().unwrap();
        assert!(check_uri(&ok, true).is_ok());
        let plain: http::Uri = "http://127.0.0.1:1/x".parse().unwrap();
        assert!(check_uri(&plain, false).is_ok());
        assert!(matches!(
            check_uri(&plain, true),
            Err(TransportError::InvalidRequest { .. })
        ));
        let rel: http::Uri = "/x".parse().unwrap();
        assert!(check_uri(&rel, false).is_err());
        let ftp: http::Uri = "ftp://h/x".parse().unwrap();
        assert!(
            check_uri(&ftp, false)
                .unwrap_err()
                .to_string()
                .contains("ftp")
        );
    }

    #[test]
    fn builds_without_a_runtime_or_global_provider() {
        // No `CryptoProvider::install_default` anywhere: the provider is
        // passed explicitly.
        let client = HttpsClient::builder().build();
        assert!(client.is_ok());
    }

    #[test]
    fn bad_pem_is_a_config_error() {
        let err = HttpsClient::builder()
            .add_root_certificates_pem(b"not pem")
            .unwrap_err();
        assert!(matches!(err, TransportError::Config { .. }));
    }
}
