//! [`ClientBuilder`]: every setting of the eSauti client.

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use flagwire_transport::auth::{Clock, ESAUTI_API_KEY, HmacSha256Signer, Secret};
use flagwire_transport::headers::IdentificationLayer;
use flagwire_transport::proxy::Proxy;
use flagwire_transport::{
    BoxError, HttpsClient, HttpsClientBuilder, RetryPolicy, TransportBuilder,
};
use http::{HeaderValue, Request, Response};
use tower::Service;

use super::client::{Client, EventsTarget, Inner, RestTarget};
use super::deadletter::{DeadLetterSink, JsonlDeadLetters};
use super::events::CountAttemptsLayer;
use super::optional::IntoOptionalString;
use super::redact::Redactor;
use crate::base_url::checked_base_url;
use crate::error::Error;

/// The Event Injection path appended to the events base URL.
pub const DEFAULT_EVENTS_PATH: &str = "/v1/inbound/event";
/// Default overall deadline of a request, all attempts and back-off included.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// Default deadline of one attempt.
pub const DEFAULT_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default retries after the first attempt: at most 3 attempts in all.
pub const DEFAULT_MAX_RETRIES: u32 = 2;
/// Default first back-off delay (doubled on each retry, jittered by ±10%).
pub const DEFAULT_BASE_DELAY: Duration = Duration::from_millis(500);
/// Default longest wait before a retry, `Retry-After` included.
pub const DEFAULT_MAX_DELAY: Duration = Duration::from_secs(30);

type TransportHook = Arc<dyn Fn(TransportBuilder) -> TransportBuilder + Send + Sync>;

#[derive(Clone, Default)]
enum Credential {
    #[default]
    None,
    ApiKey(Secret),
    Bearer(Secret),
}

/// Configures a [`Client`].
///
/// Credentials: either an API key (`X-eSauti-Api-Key`) or a bearer token (`Authorization:
/// Bearer`), not both. With an [`hmac_secret`](Self::hmac_secret), event requests are also
/// signed (`X-eSauti-Timestamp`, `X-eSauti-Signature`); REST requests never are.
///
/// URLs: the REST base is the tenant's API root, ending in `/api` (Mautic style); the events
/// base is the tenant's root, to which `/v1/inbound/event` is appended. They are separate
/// settings; a client needs at least one, and a call to the side without a URL is an
/// [`Error::Config`].
///
/// Retries: one loop, the transport's, for every request: at most
/// [`max_retries`](Self::max_retries)` + 1` attempts, on `408`, `429`, `5xx` and broken
/// connections, waiting what `Retry-After` asks (capped at 30 s) or an exponential back-off
/// from 500 ms. REST `POST`/`PATCH` requests, which carry no idempotency key, are retried only
/// when the connection could not be made; events always carry one and are retried on all of
/// the above. TLS certificates are always verified.
///
/// ```
/// use std::time::Duration;
/// use flagwire::esauti::Client;
///
/// let client = Client::builder()
///     .api_key("esk_live_example")
///     .hmac_secret("signing-secret")
///     .rest_url("https://tenant.example.com/api")
///     .events_url("https://tenant.example.com")
///     .source("checkout-service")
///     .max_retries(3)
///     .timeout(Duration::from_secs(20))
///     .redact_pii(true)
///     .build()?;
/// assert_eq!(
///     client.events_endpoint().unwrap().to_string(),
///     "https://tenant.example.com/v1/inbound/event"
/// );
/// // Credentials never show up in Debug output.
/// let shown = format!("{client:?}");
/// assert!(!shown.contains("esk_live_example") && !shown.contains("signing-secret"));
/// # Ok::<(), flagwire::Error>(())
/// ```
pub struct ClientBuilder {
    credential: Credential,
    both_credentials: bool,
    hmac_secret: Option<Secret>,
    rest_url: Option<String>,
    events_url: Option<String>,
    events_path: String,
    source: String,
    timeout: Option<Duration>,
    attempt_timeout: Option<Duration>,
    max_retries: u32,
    retry_policy: Option<RetryPolicy>,
    dead_letter: Option<Arc<dyn DeadLetterSink>>,
    redact_pii: bool,
    clock: Option<Clock>,
    hooks: Vec<TransportHook>,
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let credential = match &self.credential {
            Credential::None => "none",
            Credential::ApiKey(_) => "api key [redacted]",
            Credential::Bearer(_) => "bearer token [redacted]",
        };
        f.debug_struct("ClientBuilder")
            .field("credential", &credential)
            .field("signed", &self.hmac_secret.is_some())
            .field("rest_url", &self.rest_url)
            .field("events_url", &self.events_url)
            .field("events_path", &self.events_path)
            .field("source", &self.source)
            .field("timeout", &self.timeout)
            .field("max_retries", &self.max_retries)
            .field("dead_letter", &self.dead_letter.is_some())
            .field("redact_pii", &self.redact_pii)
            .finish_non_exhaustive()
    }
}

impl Default for ClientBuilder {
    fn default() -> Self {
        ClientBuilder::new()
    }
}

impl ClientBuilder {
    /// The defaults: no credentials or URLs yet, source `sdk`, 60 s overall and 30 s
    /// per-attempt deadlines, 2 retries, no dead-letter sink, no PII redaction.
    pub fn new() -> Self {
        ClientBuilder {
            credential: Credential::None,
            both_credentials: false,
            hmac_secret: None,
            rest_url: None,
            events_url: None,
            events_path: DEFAULT_EVENTS_PATH.to_owned(),
            source: flagwire_core::esauti::DEFAULT_SOURCE.to_owned(),
            timeout: Some(DEFAULT_TIMEOUT),
            attempt_timeout: Some(DEFAULT_ATTEMPT_TIMEOUT),
            max_retries: DEFAULT_MAX_RETRIES,
            retry_policy: None,
            dead_letter: None,
            redact_pii: false,
            clock: None,
            hooks: Vec::new(),
        }
    }

    fn set_credential(&mut self, credential: Credential) {
        if !matches!(self.credential, Credential::None) {
            self.both_credentials = true;
        }
        self.credential = credential;
    }

    /// Authenticates with `X-eSauti-Api-Key: <key>`.
    /// `None` (e.g. from `std::env::var(..).ok()`) leaves the credential unset.
    pub fn api_key(mut self, key: impl IntoOptionalString) -> Self {
        if let Some(key) = key.into_optional_string() {
            self.set_credential(Credential::ApiKey(Secret::new(key)));
        }
        self
    }

    /// Authenticates with `Authorization: Bearer <token>`.
    /// `None` leaves the credential unset.
    pub fn bearer_token(mut self, token: impl IntoOptionalString) -> Self {
        if let Some(token) = token.into_optional_string() {
            self.set_credential(Credential::Bearer(Secret::new(token)));
        }
        self
    }

    /// Signs every event request (each attempt afresh) with HMAC-SHA256 keyed by `secret`.
    /// `None` turns signing off.
    pub fn hmac_secret(mut self, secret: impl IntoOptionalString) -> Self {
        self.hmac_secret = secret.into_optional_string().map(Secret::new);
        self
    }

    /// The REST base URL, e.g. `https://tenant.example.com/api`.
    /// `None` leaves the REST API unconfigured.
    pub fn rest_url(mut self, url: impl IntoOptionalString) -> Self {
        self.rest_url = url.into_optional_string();
        self
    }

    /// The Event Injection base URL, e.g. `https://tenant.example.com`.
    /// `None` leaves Event Injection unconfigured.
    pub fn events_url(mut self, url: impl IntoOptionalString) -> Self {
        self.events_url = url.into_optional_string();
        self
    }

    /// The path appended to the events base URL (default [`DEFAULT_EVENTS_PATH`]); it must
    /// start with `/`.
    pub fn events_path(mut self, path: impl Into<String>) -> Self {
        self.events_path = path.into();
        self
    }

    /// The `source` of events built with [`Events::event`](super::Events::event) (default
    /// `sdk`). The `X-eSauti-Source` header always repeats the envelope's own `source`.
    pub fn source(mut self, source: impl Into<String>) -> Self {
        self.source = source.into();
        self
    }

    /// Overall deadline of each request, retries and back-off included (default 60 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Deadline of each attempt, reading the body included (default 30 s).
    pub fn attempt_timeout(mut self, timeout: Duration) -> Self {
        self.attempt_timeout = Some(timeout);
        self
    }

    /// Retries after the first attempt (default 2): a request makes at most `retries + 1`
    /// attempts.
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.max_retries = retries;
        self
    }

    /// Replaces the retry policy (back-off, jitter, statuses) for events and REST alike; its
    /// retry count becomes the client's, until [`max_retries`](Self::max_retries) is called
    /// again.
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.max_retries = policy.retries();
        self.retry_policy = Some(policy);
        self
    }

    /// Where events go that could not be delivered (default: nowhere; the error is returned
    /// either way).
    pub fn dead_letter(mut self, sink: impl DeadLetterSink) -> Self {
        self.dead_letter = Some(Arc::new(sink));
        self
    }

    /// Dead-letters to a JSON Lines file ([`JsonlDeadLetters`]); replay it with
    /// [`Events::replay`](super::Events::replay).
    pub fn dead_letter_file(self, path: impl Into<PathBuf>) -> Self {
        self.dead_letter(JsonlDeadLetters::new(path))
    }

    /// Redacts e-mail addresses and phone numbers from the client's log lines (default off).
    /// Secrets are redacted regardless.
    pub fn redact_pii(mut self, on: bool) -> Self {
        self.redact_pii = on;
        self
    }

    /// The clock of signature timestamps and dead-letter times (default the system clock),
    /// for tests.
    pub fn clock(mut self, clock: impl Fn() -> SystemTime + Send + Sync + 'static) -> Self {
        self.clock = Some(Arc::new(clock));
        self
    }

    /// Adjusts both transport stacks (extra layers, TLS roots, pool settings). Runs after the
    /// client's own settings.
    pub fn transport(
        mut self,
        configure: impl Fn(TransportBuilder) -> TransportBuilder + Send + Sync + 'static,
    ) -> Self {
        self.hooks.push(Arc::new(configure));
        self
    }

    /// Replaces the bottom of both stacks (the HTTPS client) with `service`; the client's
    /// layers (credentials, signing, retries, deadlines, tracing) still wrap it.
    pub fn service<S>(mut self, service: S) -> Self
    where
        S: Service<Request<Bytes>, Response = Response<Bytes>> + Clone + Send + Sync + 'static,
        S::Error: Into<BoxError>,
        S::Future: Send + 'static,
    {
        self.hooks.push(Arc::new(move |b: TransportBuilder| {
            b.service(service.clone())
        }));
        self
    }

    fn transport_builder(&self, policy: RetryPolicy) -> Result<TransportBuilder, Error> {
        // eSauti is not Schematic: no `X-Fern-*` SDK headers, only a User-Agent.
        let builder = TransportBuilder::new()
            .identification(IdentificationLayer::user_agent_only())
            .timeout(self.timeout)
            .attempt_timeout(self.attempt_timeout)
            .retry(policy);
        Ok(match &self.credential {
            Credential::ApiKey(key) if !key.expose().trim().is_empty() => {
                builder.api_key(ESAUTI_API_KEY, key.clone())
            }
            Credential::Bearer(token) if !token.expose().trim().is_empty() => {
                builder.bearer_token(token.clone())
            }
            Credential::None => {
                return Err(Error::config(
                    "no credentials: set an API key or a bearer token",
                ));
            }
            _ => return Err(Error::config("the API key or bearer token is empty")),
        })
    }

    /// Validates the settings and builds the client. Needs no async runtime; nothing is
    /// sent.
    pub fn build(self) -> Result<Client, Error> {
        if self.both_credentials {
            return Err(Error::config(
                "set either an API key or a bearer token, not both",
            ));
        }
        if self.rest_url.is_none() && self.events_url.is_none() {
            return Err(Error::config(
                "no URL: set the REST URL, the events URL, or both",
            ));
        }
        if self.source.is_empty() || HeaderValue::try_from(self.source.as_str()).is_err() {
            return Err(Error::config(
                "the source must be non-empty text that fits in a header",
            ));
        }
        let base_policy = self
            .retry_policy
            .clone()
            .unwrap_or_else(default_retry_policy);
        let base_policy = base_policy.max_retries(self.max_retries);

        let rest = match &self.rest_url {
            None => None,
            Some(url) => {
                let base = checked_base_url(url, "REST")?;
                // No idempotency key on REST writes: retry them only when nothing was sent.
                let mut builder =
                    self.transport_builder(base_policy.clone().retry_non_idempotent(false))?;
                for hook in &self.hooks {
                    builder = hook(builder);
                }
                Some(RestTarget {
                    transport: builder.build().map_err(Error::Transport)?,
                    base_url: base,
                })
            }
        };

        let clock: Clock = self
            .clock
            .clone()
            .unwrap_or_else(|| Arc::new(SystemTime::now));
        let events = match &self.events_url {
            None => None,
            Some(url) => {
                let base = checked_base_url(url, "events")?;
                if !self.events_path.starts_with('/') {
                    return Err(Error::config("the events path must start with `/`"));
                }
                let endpoint = http::Uri::try_from(format!("{base}{}", self.events_path))
                    .map_err(|_| Error::config("the events path is not a valid URL path"))?;
                let mut builder = self
                    .transport_builder(base_policy.clone())?
                    .attempt_layer(CountAttemptsLayer);
                if let Some(secret) = &self.hmac_secret {
                    let signer = HmacSha256Signer::new(secret.clone())
                        .map_err(Error::Transport)?
                        .with_clock(clock.clone());
                    builder = builder.signer(signer);
                }
                for hook in &self.hooks {
                    builder = hook(builder);
                }
                Some(EventsTarget {
                    transport: builder.build().map_err(Error::Transport)?,
                    endpoint,
                })
            }
        };

        let secrets: Vec<Secret> = match &self.credential {
            Credential::ApiKey(s) | Credential::Bearer(s) => vec![s.clone()],
            Credential::None => Vec::new(),
        }
        .into_iter()
        .chain(self.hmac_secret.clone())
        .collect();
        let log_redactor = Redactor::new(self.redact_pii).with_secrets(secrets.clone());
        let secret_redactor = Redactor::new(false).with_secrets(secrets);

        Ok(Client::from_inner(Inner {
            rest,
            events,
            source: self.source,
            signed: self.hmac_secret.is_some(),
            dead_letter: self.dead_letter,
            log_redactor,
            secret_redactor,
            clock,
        }))
    }
}

/// Connection settings: proxies, the local address, timeouts and the
/// connection pool. Each applies to every transport the client builds; see
/// [`HttpsClientBuilder`] for the details and defaults.
impl ClientBuilder {
    /// Sends requests through `proxy` when it serves their destination,
    /// instead of the proxies of the environment (`HTTPS_PROXY`,
    /// `HTTP_PROXY`, `ALL_PROXY`, `NO_PROXY`, read when the client is
    /// built). Several calls add several proxies, tried in order.
    ///
    /// ```
    /// use std::net::{IpAddr, Ipv4Addr};
    /// use flagwire::esauti::Client;
    /// use flagwire_transport::proxy::Proxy;
    ///
    /// let client = Client::builder()
    ///     .api_key("esk_live_example")
    ///     .rest_url("https://tenant.example.com/api")
    ///     .proxy(Proxy::all("http://proxy.internal:3128")?.no_proxy("localhost"))
    ///     .local_address(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
    ///     .build()?;
    /// # drop(client);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn proxy(self, proxy: Proxy) -> Self {
        self.transport(move |t| t.map_client(|c| c.proxy(proxy.clone())))
    }

    /// Connects straight to the servers: ignores the proxy environment
    /// variables and the proxies added so far.
    pub fn no_proxy(self) -> Self {
        self.transport(|t| t.map_client(HttpsClientBuilder::no_proxy))
    }

    /// Binds outgoing connections to this local address (`None`, the
    /// default, lets the system choose).
    pub fn local_address(self, address: impl Into<Option<IpAddr>>) -> Self {
        let address = address.into();
        self.transport(move |t| t.map_client(|c| c.local_address(address)))
    }

    /// Limit on establishing a TCP connection and on a proxy's answer to
    /// `CONNECT` (default 10 s; `None` for none).
    pub fn connect_timeout(self, timeout: Option<Duration>) -> Self {
        self.transport(move |t| t.map_client(|c| c.connect_timeout(timeout)))
    }

    /// How long an idle pooled connection is kept (default 90 s; `None`
    /// keeps it until the server closes it).
    pub fn pool_idle_timeout(self, timeout: Option<Duration>) -> Self {
        self.transport(move |t| t.map_client(|c| c.pool_idle_timeout(timeout)))
    }

    /// Most idle connections kept per host (default 32).
    pub fn pool_max_idle_per_host(self, max: usize) -> Self {
        self.transport(move |t| t.map_client(|c| c.pool_max_idle_per_host(max)))
    }

    /// Sends every request through `client`, whose connection pool (and
    /// settings: proxies, TLS, timeouts) is shared with every other client
    /// given a clone of it. Together with the connection settings above,
    /// [`build`](Self::build) fails: configure the shared client instead.
    pub fn http_client(self, client: HttpsClient) -> Self {
        self.transport(move |t| t.http_client(client.clone()))
    }
}

/// The back-off of a client without [`ClientBuilder::retry_policy`]: 500 ms doubling, capped
/// at 30 s (`Retry-After` included), jitter ±10% within the cap.
pub(crate) fn default_retry_policy() -> RetryPolicy {
    RetryPolicy::new()
        .base_delay(DEFAULT_BASE_DELAY)
        .max_delay(DEFAULT_MAX_DELAY)
        .max_retries(DEFAULT_MAX_RETRIES)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(b: ClientBuilder) -> String {
        match b.build() {
            Err(Error::Config(m)) => m,
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn settings_are_checked() {
        let ok = || {
            ClientBuilder::new()
                .api_key("k")
                .events_url("http://127.0.0.1:1")
        };
        assert!(ok().build().is_ok());
        assert!(err(ClientBuilder::new().events_url("http://h")).contains("no credentials"));
        assert!(err(ok().bearer_token("t")).contains("not both"));
        assert!(err(ClientBuilder::new().api_key(" ").rest_url("http://h/api")).contains("empty"));
        assert!(err(ClientBuilder::new().api_key("k")).contains("no URL"));
        assert!(err(ok().rest_url("ftp://h/api")).contains("REST URL"));
        assert!(err(ok().events_url("http://h?x=1")).contains("events URL"));
        assert!(err(ok().events_path("v1/inbound")).contains("start with"));
        assert!(err(ok().source("")).contains("source"));
        assert!(err(ok().source("bad\nsource")).contains("source"));
        assert!(matches!(
            ok().hmac_secret("").build(),
            Err(Error::Transport(_))
        ));
    }

    #[test]
    fn default_backoff_doubles_and_stays_within_the_cap() {
        use http::HeaderMap;
        let exact = default_retry_policy().jitter(false);
        let delays: Vec<Duration> = (0..4).map(|n| exact.delay(n, None)).collect();
        assert_eq!(
            delays,
            [500, 1000, 2000, 4000].map(Duration::from_millis).to_vec()
        );
        assert_eq!(exact.delay(20, None), DEFAULT_MAX_DELAY);
        let jittered = default_retry_policy();
        for n in 0..12 {
            assert!(jittered.delay(n, None) <= DEFAULT_MAX_DELAY);
        }
        // `Retry-After` wins over the back-off, within the cap.
        let mut headers = HeaderMap::new();
        headers.insert("retry-after", "7".parse().unwrap());
        assert_eq!(jittered.delay(0, Some(&headers)), Duration::from_secs(7));
        headers.insert("retry-after", "3600".parse().unwrap());
        assert_eq!(jittered.delay(0, Some(&headers)), DEFAULT_MAX_DELAY);
        // The statuses retried: 408, 429 and 5xx; not 4xx otherwise, nor 2xx.
        for (status, retried) in [
            (408, true),
            (429, true),
            (500, true),
            (503, true),
            (200, false),
            (400, false),
            (404, false),
            (409, false),
        ] {
            assert_eq!(
                jittered.is_retryable_status(http::StatusCode::from_u16(status).unwrap()),
                retried,
                "{status}"
            );
        }
    }

    #[test]
    fn urls_are_separate_and_normalised() {
        let client = ClientBuilder::new()
            .bearer_token("t")
            .rest_url("https://tenant.example.com/api/")
            .events_url("https://events.example.com/")
            .events_path("/api/integrations/events")
            .build()
            .unwrap();
        assert_eq!(client.rest_url(), Some("https://tenant.example.com/api"));
        assert_eq!(
            client.events_endpoint().unwrap().to_string(),
            "https://events.example.com/api/integrations/events"
        );
        let debug = format!("{:?}", ClientBuilder::new().bearer_token("tok_secret_1"));
        assert!(!debug.contains("tok_secret_1"), "{debug}");
    }
}
