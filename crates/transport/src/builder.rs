//! Assembling the default stack.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderName, Request, Response};
use http_body::Body;
use tower::ServiceBuilder;
use tower::ServiceExt;
use tower::util::BoxCloneSyncService;
use tower_layer::Layer;
use tower_service::Service;

use crate::auth::{AuthLayer, RequestSigner, Secret, SignLayer};
use crate::client::{CollectBodyLayer, HttpsClient, HttpsClientBuilder};
use crate::error::{BoxError, TransportError};
use crate::headers::IdentificationLayer;
use crate::retry::{RetryBudget, RetryLayer, RetryPolicy};
use crate::timeout::TimeoutLayer;
use crate::trace::TraceLayer;

/// The transport as the SDK uses it: one cloneable, `Send + Sync` service
/// from a buffered request to a buffered response.
pub type BoxTransport = BoxCloneSyncService<Request<Bytes>, Response<Bytes>, TransportError>;

type Wrap = Box<dyn FnOnce(BoxTransport) -> BoxTransport + Send>;

/// The default overall deadline: 60 s, as Schematic's official SDKs.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// The default per-attempt deadline: 30 s.
pub const DEFAULT_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);

/// Builds a [`BoxTransport`]: the default stack, configured, optionally
/// with your own layers or your own bottom service.
///
/// From the outside in, a request passes through:
///
/// 1. [`TraceLayer::request`] — one span per logical request;
/// 2. your [`request_layer`](Self::request_layer)s, first added outermost;
/// 3. [`IdentificationLayer`] — `User-Agent` and SDK headers;
/// 4. the whole request's deadline — kept by the retry layer, which hands
///    it to the per-attempt layer (the same rules as
///    [`TimeoutLayer::overall`], without a timer of its own);
/// 5. [`RetryLayer`] — sends attempts;
/// 6. [`AuthLayer`] then [`SignLayer`] — credentials, a fresh signature per
///    attempt;
/// 7. [`TraceLayer::attempt`] — one span per attempt, headers as sent;
/// 8. [`TimeoutLayer::per_attempt`] — each attempt's deadline;
/// 9. your [`attempt_layer`](Self::attempt_layer)s, first added outermost;
/// 10. the bottom service: [`HttpsClient`](crate::HttpsClient), built from
///     the [`client`](Self::client) settings or shared
///     ([`http_client`](Self::http_client)), unless you give your own with
///     [`service`](Self::service) or [`body_service`](Self::body_service).
pub struct TransportBuilder {
    client: HttpsClientBuilder,
    /// The client settings were changed (so they must not be ignored).
    client_configured: bool,
    /// A client built elsewhere, shared with other transports.
    shared_client: Option<HttpsClient>,
    max_response_body: Option<usize>,
    inner: Option<BoxTransport>,
    auth: AuthLayer,
    signer: Option<Arc<dyn RequestSigner>>,
    retry: RetryPolicy,
    budget: Option<RetryBudget>,
    timeout: Option<Duration>,
    attempt_timeout: Option<Duration>,
    identification: IdentificationLayer,
    request_layers: Vec<Wrap>,
    attempt_layers: Vec<Wrap>,
    error: Option<TransportError>,
}

impl fmt::Debug for TransportBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TransportBuilder")
            .field("client", &self.client)
            .field("shared_client", &self.shared_client.is_some())
            .field("custom_service", &self.inner.is_some())
            .field("auth", &self.auth)
            .field("signer", &self.signer.is_some())
            .field("retry", &self.retry)
            .field("timeout", &self.timeout)
            .field("attempt_timeout", &self.attempt_timeout)
            .field("request_layers", &self.request_layers.len())
            .field("attempt_layers", &self.attempt_layers.len())
            .finish_non_exhaustive()
    }
}

impl Default for TransportBuilder {
    fn default() -> Self {
        TransportBuilder::new()
    }
}

impl TransportBuilder {
    /// The defaults: [`HttpsClient`](crate::HttpsClient) with its defaults,
    /// no credentials, [`RetryPolicy::default`] with the default
    /// [`RetryBudget`], a 60 s overall and 30 s per-attempt deadline,
    /// `flagwire` identification.
    pub fn new() -> Self {
        TransportBuilder {
            client: HttpsClientBuilder::new(),
            client_configured: false,
            shared_client: None,
            max_response_body: None,
            inner: None,
            auth: AuthLayer::none(),
            signer: None,
            retry: RetryPolicy::default(),
            budget: Some(RetryBudget::default()),
            timeout: Some(DEFAULT_TIMEOUT),
            attempt_timeout: Some(DEFAULT_ATTEMPT_TIMEOUT),
            identification: IdentificationLayer::default(),
            request_layers: Vec::new(),
            attempt_layers: Vec::new(),
            error: None,
        }
    }

    fn fail(&mut self, err: TransportError) {
        self.error.get_or_insert(err);
    }

    /// Sends `key` in the header `name` (e.g.
    /// [`SCHEMATIC_API_KEY`](crate::auth::SCHEMATIC_API_KEY)). An invalid key
    /// makes [`build`](Self::build) fail.
    pub fn api_key(mut self, name: HeaderName, key: impl Into<Secret>) -> Self {
        match AuthLayer::api_key(name, &key.into()) {
            Ok(layer) => self.auth = layer,
            Err(e) => self.fail(e),
        }
        self
    }

    /// Sends `Authorization: Bearer <token>` instead of an API key.
    pub fn bearer_token(mut self, token: impl Into<Secret>) -> Self {
        match AuthLayer::bearer(&token.into()) {
            Ok(layer) => self.auth = layer,
            Err(e) => self.fail(e),
        }
        self
    }

    /// Signs every attempt with `signer`.
    pub fn signer(mut self, signer: impl RequestSigner) -> Self {
        self.signer = Some(Arc::new(signer));
        self
    }

    /// Replaces the retry policy.
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Replaces the retry budget; `None` removes it.
    pub fn retry_budget(mut self, budget: Option<RetryBudget>) -> Self {
        self.budget = budget;
        self
    }

    /// The overall deadline per request (`None`: none).
    pub fn timeout(mut self, timeout: Option<Duration>) -> Self {
        self.timeout = timeout;
        self
    }

    /// The deadline per attempt (`None`: none).
    pub fn attempt_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.attempt_timeout = timeout;
        self
    }

    /// Replaces the identification headers.
    pub fn identification(mut self, layer: IdentificationLayer) -> Self {
        self.identification = layer;
        self
    }

    /// Configures the default HTTPS client (roots, pool, TLS, proxies,
    /// sockets), replacing its settings.
    pub fn client(mut self, client: HttpsClientBuilder) -> Self {
        self.client = client;
        self.client_configured = true;
        self
    }

    /// Adjusts the settings of the default HTTPS client, keeping the others.
    ///
    /// ```
    /// use std::time::Duration;
    /// use flagwire_transport::TransportBuilder;
    ///
    /// let transport = TransportBuilder::new()
    ///     .map_client(|c| c.no_proxy().connect_timeout(Some(Duration::from_secs(2))))
    ///     .build()?;
    /// # drop(transport);
    /// # Ok::<(), flagwire_transport::TransportError>(())
    /// ```
    pub fn map_client(
        mut self,
        configure: impl FnOnce(HttpsClientBuilder) -> HttpsClientBuilder,
    ) -> Self {
        self.client = configure(self.client);
        self.client_configured = true;
        self
    }

    /// Uses `client`, built elsewhere, at the bottom of the stack: its
    /// connection pool is shared with every other transport that uses a
    /// clone of it. Its own settings (proxies, TLS, pool, body limit)
    /// apply; combining it with [`client`](Self::client),
    /// [`map_client`](Self::map_client) or
    /// [`max_response_body`](Self::max_response_body) makes
    /// [`build`](Self::build) fail, since those settings could not take
    /// effect.
    ///
    /// ```
    /// use flagwire_transport::{HttpsClient, TransportBuilder};
    ///
    /// let pool = HttpsClient::builder().pool_max_idle_per_host(64).build()?;
    /// let api = TransportBuilder::new().http_client(pool.clone()).build()?;
    /// let events = TransportBuilder::new().http_client(pool).build()?;
    /// # drop((api, events));
    /// # Ok::<(), flagwire_transport::TransportError>(())
    /// ```
    pub fn http_client(mut self, client: HttpsClient) -> Self {
        self.shared_client = Some(client);
        self
    }

    /// A WebSocket connector with the HTTPS client's settings (the shared
    /// client's, when one is set): the same TLS configuration, proxies,
    /// local address and connect timeout.
    #[cfg(feature = "websocket")]
    pub fn websocket_connector(
        &self,
    ) -> Result<crate::websocket::WebSocketConnector, TransportError> {
        match &self.shared_client {
            Some(client) => client.websocket_connector(),
            None => self.client.websocket_connector(),
        }
    }

    /// The most bytes a response body may have (default 16 MiB). Applies to
    /// the default client and to [`body_service`](Self::body_service).
    pub fn max_response_body(mut self, limit: usize) -> Self {
        self.max_response_body = Some(limit);
        self
    }

    /// Uses `service` instead of the HTTPS client at the bottom of the stack
    /// (a test double, a proxy client, a circuit breaker around your own
    /// client…). Its errors become [`TransportError::Other`] unless they are
    /// `TransportError`s already.
    pub fn service<S>(mut self, service: S) -> Self
    where
        S: Service<Request<Bytes>, Response = Response<Bytes>> + Clone + Send + Sync + 'static,
        S::Error: Into<BoxError>,
        S::Future: Send + 'static,
    {
        self.inner = Some(BoxCloneSyncService::new(
            service.map_err(TransportError::other),
        ));
        self
    }

    /// Like [`service`](Self::service), for a service with a streaming
    /// response body (e.g. an in-process router); bodies are read up to the
    /// [`max_response_body`](Self::max_response_body) limit.
    pub fn body_service<S, RB>(mut self, service: S) -> Self
    where
        S: Service<Request<Bytes>, Response = Response<RB>> + Clone + Send + Sync + 'static,
        S::Error: Into<BoxError>,
        S::Future: Send + 'static,
        RB: Body + Send + 'static,
        RB::Data: Send,
        RB::Error: Into<BoxError>,
    {
        let limit = self
            .max_response_body
            .unwrap_or(crate::client::DEFAULT_MAX_RESPONSE_BODY);
        self.inner = Some(BoxCloneSyncService::new(
            CollectBodyLayer::new(limit).layer(service),
        ));
        self
    }

    /// Adds a layer that sees each logical request once, outside the
    /// identification, deadline and retry layers. The first one added is
    /// the outermost.
    pub fn request_layer<L>(mut self, layer: L) -> Self
    where
        L: Layer<BoxTransport> + Send + 'static,
        L::Service:
            Service<Request<Bytes>, Response = Response<Bytes>> + Clone + Send + Sync + 'static,
        <L::Service as Service<Request<Bytes>>>::Error: Into<BoxError>,
        <L::Service as Service<Request<Bytes>>>::Future: Send + 'static,
    {
        self.request_layers.push(wrap(layer));
        self
    }

    /// Adds a layer that sees every attempt, just above the bottom service
    /// (inside the per-attempt deadline). The first one added is the
    /// outermost.
    pub fn attempt_layer<L>(mut self, layer: L) -> Self
    where
        L: Layer<BoxTransport> + Send + 'static,
        L::Service:
            Service<Request<Bytes>, Response = Response<Bytes>> + Clone + Send + Sync + 'static,
        <L::Service as Service<Request<Bytes>>>::Error: Into<BoxError>,
        <L::Service as Service<Request<Bytes>>>::Future: Send + 'static,
    {
        self.attempt_layers.push(wrap(layer));
        self
    }

    /// Assembles the stack. Fails with [`TransportError::Config`] if a
    /// setting was invalid (a credential that is not a header value, a
    /// certificate that does not parse).
    pub fn build(self) -> Result<BoxTransport, TransportError> {
        if let Some(err) = self.error {
            return Err(err);
        }
        if self.shared_client.is_some()
            && self.inner.is_none()
            && (self.client_configured || self.max_response_body.is_some())
        {
            return Err(TransportError::config(
                "a shared HTTP client was given together with client settings; \
                 configure the shared client instead",
            ));
        }
        // The retry layer owns the overall deadline and hands it to the
        // per-attempt layer below, which always enforces it too: no timer
        // and no extension entry of its own for the overall deadline.
        let retry = RetryLayer::new(self.retry)
            .budget(self.budget)
            .overall_deadline(self.timeout);
        let sign = self.signer.map_or(SignLayer::none(), SignLayer::from_arc);
        let parts = Parts {
            identification: self.identification,
            retry,
            auth: self.auth,
            sign,
            attempt: TimeoutLayer::per_attempt(self.attempt_timeout),
        };
        let mut client = self.client;
        if let Some(limit) = self.max_response_body {
            client = client.max_response_body(limit);
        }
        let plain = self.request_layers.is_empty() && self.attempt_layers.is_empty();
        let https = |shared: Option<HttpsClient>| match shared {
            Some(shared) => Ok(shared),
            None => client.build(),
        };
        match self.inner {
            None if plain => Ok(parts.assemble(https(self.shared_client)?, true)),
            inner => {
                let mut bottom = match inner {
                    Some(s) => s,
                    None => BoxCloneSyncService::new(https(self.shared_client)?),
                };
                for wrap in self.attempt_layers.into_iter().rev() {
                    bottom = wrap(bottom);
                }
                let outer = self.request_layers.is_empty();
                let mut svc = parts.assemble(bottom, outer);
                if !outer {
                    for wrap in self.request_layers.into_iter().rev() {
                        svc = wrap(svc);
                    }
                    svc = BoxCloneSyncService::new(TraceLayer::request().layer(svc));
                }
                Ok(svc)
            }
        }
    }
}

fn wrap<L>(layer: L) -> Wrap
where
    L: Layer<BoxTransport> + Send + 'static,
    L::Service: Service<Request<Bytes>, Response = Response<Bytes>> + Clone + Send + Sync + 'static,
    <L::Service as Service<Request<Bytes>>>::Error: Into<BoxError>,
    <L::Service as Service<Request<Bytes>>>::Future: Send + 'static,
{
    Box::new(move |inner: BoxTransport| {
        BoxCloneSyncService::new(layer.layer(inner).map_err(TransportError::other))
    })
}

struct Parts {
    identification: IdentificationLayer,
    retry: RetryLayer,
    auth: AuthLayer,
    sign: SignLayer,
    attempt: TimeoutLayer,
}

impl Parts {
    /// Layers 3–8 around `bottom`, with the request trace on top when
    /// `with_trace` (no user request layers in between).
    fn assemble<S>(self, bottom: S, with_trace: bool) -> BoxTransport
    where
        S: Service<Request<Bytes>, Response = Response<Bytes>, Error = TransportError>
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        let core = ServiceBuilder::new()
            .layer(self.identification)
            .layer(self.retry)
            .layer(self.auth)
            .layer(self.sign)
            .layer(TraceLayer::attempt())
            .layer(self.attempt)
            .service(bottom);
        if with_trace {
            BoxCloneSyncService::new(TraceLayer::request().layer(core))
        } else {
            BoxCloneSyncService::new(core)
        }
    }
}
