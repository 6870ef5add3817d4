//! [`ClientBuilder`]: every setting of the Schematic client.

use std::collections::HashMap;
use std::fmt;
use std::marker::PhantomData;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use bytes::Bytes;
use flagwire_core::datastream::datastream_url;
use flagwire_core::events::{ApiKey, DEFAULT_CAPTURE_BASE_URL, capture_batch_url};
use flagwire_core::schematic::BASE_URL;
use flagwire_transport::auth::{SCHEMATIC_API_KEY, Secret};
use flagwire_transport::proxy::Proxy;
use flagwire_transport::{
    BoxError, BoxTransport, HttpsClient, HttpsClientBuilder, RetryPolicy, TransportBuilder,
};
use http::{Request, Response};
use tower::Service;

use super::breaker::{Breaker, BreakerPolicy};
use super::client::{Client, Inner};
use super::events::CaptureSender;
use super::flags::CachedCheck;
use super::flags::DEFAULT_CHECK_TIMEOUT;
use crate::base_url::checked_base_url;
use crate::cache::{CacheChain, FlagCache, LocalFlagCache};
use crate::datastream::{DataStream, DataStreamOptions};
use crate::error::Error;
use crate::events::{DeadLetterSink, EventBuffer, EventBufferBuilder};

/// Default overall deadline of a request (all attempts).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// Default number of retries after the first attempt.
pub const DEFAULT_MAX_RETRIES: u32 = 2;

type TransportHook = Arc<dyn Fn(TransportBuilder) -> TransportBuilder + Send + Sync>;

enum CacheSetting {
    Default,
    Disabled,
    Custom(CacheChain<CachedCheck>),
}

/// Configures a [`Client`].
///
/// ```
/// use std::time::Duration;
/// use flagwire::schematic::Client;
///
/// let client = Client::builder("sch_dev_example")
///     .base_url("http://127.0.0.1:8080")
///     .capture_url("http://127.0.0.1:8081")
///     .timeout(Duration::from_secs(10))
///     .max_retries(1)
///     .flag_default("new-editor", true)
///     .offline(true)
///     .build()?;
/// assert!(client.is_offline());
/// // The key never shows up in Debug output.
/// assert!(!format!("{client:?}").contains("sch_dev_example"));
/// # Ok::<(), flagwire::Error>(())
/// ```
pub struct ClientBuilder<M = Async> {
    api_key: Secret,
    base_url: String,
    capture_url: Option<String>,
    timeout: Duration,
    max_retries: u32,
    retry_policy: Option<RetryPolicy>,
    defaults: HashMap<String, bool>,
    cache: CacheSetting,
    offline: bool,
    events: EventBufferBuilder,
    hooks: Vec<TransportHook>,
    custom_transport: Option<BoxTransport>,
    datastream: Option<DataStreamOptions>,
    check_timeout: Duration,
    check_retries: u32,
    breaker: BreakerPolicy,
    mode: PhantomData<M>,
}

/// The mode of a [`ClientBuilder`] whose [`build`](ClientBuilder::build)
/// returns the async [`Client`] (what [`Client::builder`] starts).
#[derive(Debug, Clone, Copy, Default)]
pub struct Async;

/// The mode of a [`ClientBuilder`] whose [`build`](ClientBuilder::build)
/// returns a [`blocking::Client`](super::blocking::Client) (what
/// [`blocking::Client::builder`](super::blocking::Client::builder) starts).
#[derive(Debug, Clone, Copy, Default)]
pub struct Blocking;

impl<M> fmt::Debug for ClientBuilder<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("api_key", &self.api_key)
            .field("base_url", &self.base_url)
            .field("capture_url", &self.capture_url)
            .field("timeout", &self.timeout)
            .field("max_retries", &self.max_retries)
            .field("defaults", &self.defaults)
            .field("offline", &self.offline)
            .finish_non_exhaustive()
    }
}

impl ClientBuilder<Async> {
    pub(crate) fn new(api_key: impl Into<String>) -> Self {
        ClientBuilder {
            api_key: Secret::new(api_key.into()),
            base_url: BASE_URL.to_owned(),
            capture_url: None,
            timeout: DEFAULT_TIMEOUT,
            max_retries: DEFAULT_MAX_RETRIES,
            retry_policy: None,
            defaults: HashMap::new(),
            cache: CacheSetting::Default,
            offline: false,
            events: EventBuffer::builder().thread_name("flagwire-schematic-events"),
            hooks: Vec::new(),
            custom_transport: None,
            datastream: None,
            check_timeout: DEFAULT_CHECK_TIMEOUT,
            check_retries: 1,
            breaker: BreakerPolicy::new(),
            mode: PhantomData,
        }
    }

    /// Validates the settings and starts the client (and, unless offline,
    /// its event-buffer thread). Needs no async runtime.
    pub fn build(self) -> Result<Client, Error> {
        self.build_async()
    }
}

impl ClientBuilder<Blocking> {
    /// Validates the settings and starts the blocking client (its runtime
    /// thread, and unless offline its event-buffer thread).
    pub fn build(self) -> Result<super::blocking::Client, Error> {
        super::blocking::Client::from_async(self.build_async()?)
    }
}

impl<M> ClientBuilder<M> {
    /// The same settings for the other kind of client.
    pub(crate) fn into_mode<N>(self) -> ClientBuilder<N> {
        let ClientBuilder {
            api_key,
            base_url,
            capture_url,
            timeout,
            max_retries,
            retry_policy,
            defaults,
            cache,
            offline,
            events,
            hooks,
            custom_transport,
            datastream,
            check_timeout,
            check_retries,
            breaker,
            mode: _,
        } = self;
        ClientBuilder {
            api_key,
            base_url,
            capture_url,
            timeout,
            max_retries,
            retry_policy,
            defaults,
            cache,
            offline,
            events,
            hooks,
            custom_transport,
            datastream,
            check_timeout,
            check_retries,
            breaker,
            mode: PhantomData,
        }
    }

    /// The REST API base URL (default `https://api.schematichq.com`).
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = url.into();
        self
    }

    /// The event-capture base URL (default `https://c.schematichq.com`).
    /// A blank value means the default; anything else must be an absolute
    /// `http`/`https` URL, or [`build`](Self::build) fails.
    ///
    /// Set it whenever [`base_url`](Self::base_url) is not the real API:
    /// with a base URL on this machine (an emulator, a test server) and no
    /// capture URL, `build` fails rather than send the events to the
    /// production capture host; with another base URL it logs a warning.
    pub fn capture_url(mut self, url: impl Into<String>) -> Self {
        self.capture_url = Some(url.into());
        self
    }

    /// Overall deadline of each API request, retries included (default 60 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Retries after a failed attempt (default 2).
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.max_retries = retries;
        self
    }

    /// Turns on local evaluation over DataStream: flags, companies and users
    /// are kept in memory, fed by a WebSocket, and checks are answered
    /// in-process (see [`crate::datastream`]). Off by default, as in the
    /// official SDKs.
    ///
    /// ```
    /// use flagwire::datastream::DataStreamOptions;
    /// use flagwire::schematic::Client;
    ///
    /// let builder = Client::builder("sch_dev_example").datastream(DataStreamOptions::new());
    /// # drop(builder);
    /// ```
    pub fn datastream(mut self, options: DataStreamOptions) -> Self {
        self.datastream = Some(options);
        self
    }

    /// Turns on replicator mode (feature `redis`): no DataStream socket;
    /// flags, companies and users are read from the Redis a
    /// `schematic-datastream-replicator` keeps current, through a small
    /// short-lived in-process layer, and evaluated here. A company or user
    /// not in Redis is evaluated as absent (never fetched); a flag not in
    /// Redis, or Redis unreachable, sends the check on to the result cache,
    /// the API and the defaults. Replaces a [`datastream`](Self::datastream)
    /// setting. See [`crate::redis`].
    ///
    /// A malformed Redis or health URL makes [`build`](Self::build) fail;
    /// an unreachable Redis or replicator does not.
    ///
    /// ```
    /// use flagwire::redis::{RedisOptions, ReplicatorOptions};
    /// use flagwire::schematic::Client;
    ///
    /// let options = ReplicatorOptions::new(RedisOptions::new("redis://127.0.0.1:6379"));
    /// let builder = Client::builder("sch_dev_example").replicator(options);
    /// # drop(builder);
    /// ```
    #[cfg(feature = "redis")]
    pub fn replicator(mut self, options: crate::redis::ReplicatorOptions) -> Self {
        let mut datastream = DataStreamOptions::new();
        datastream.replicator = Some(options);
        self.datastream = Some(datastream);
        self
    }

    /// Deadline of a flag check's API request, both attempts included
    /// (default 1.5 s). A check never waits longer for the API; per call,
    /// [`CheckOptions::timeout`](super::CheckOptions::timeout) overrides it.
    pub fn check_timeout(mut self, timeout: Duration) -> Self {
        self.check_timeout = timeout;
        self
    }

    /// Retries of a flag check's API request within its deadline (default
    /// 1).
    pub fn check_retries(mut self, retries: u32) -> Self {
        self.check_retries = retries;
        self
    }

    /// The circuit breaker of flag checks' API path (see
    /// [`BreakerPolicy`]); [`BreakerPolicy::disabled`] turns it off.
    pub fn breaker(mut self, policy: BreakerPolicy) -> Self {
        self.breaker = policy;
        self
    }

    /// Replaces the whole retry policy (back-off, statuses…); its
    /// `max_retries` is then overridden by [`max_retries`](Self::max_retries)
    /// only if that was called after this.
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.max_retries = policy.retries();
        self.retry_policy = Some(policy);
        self
    }

    /// The value a flag check answers when neither the cache nor the API can
    /// (and no per-call default is given).
    pub fn flag_default(mut self, flag: impl Into<String>, value: bool) -> Self {
        self.defaults.insert(flag.into(), value);
        self
    }

    /// Adds several flag defaults.
    pub fn flag_defaults<I, K>(mut self, defaults: I) -> Self
    where
        I: IntoIterator<Item = (K, bool)>,
        K: Into<String>,
    {
        self.defaults
            .extend(defaults.into_iter().map(|(k, v)| (k.into(), v)));
        self
    }

    /// Uses `cache` instead of the default in-memory cache (1,000 entries,
    /// 5 s).
    pub fn cache(mut self, cache: impl FlagCache<CachedCheck> + 'static) -> Self {
        self.cache = CacheSetting::Custom(CacheChain::single(cache));
        self
    }

    /// Uses a chain of caches, consulted in order.
    pub fn cache_chain(mut self, chain: CacheChain<CachedCheck>) -> Self {
        self.cache = CacheSetting::Custom(chain);
        self
    }

    /// Turns the local flag cache off: every check asks the API.
    pub fn disable_cache(mut self) -> Self {
        self.cache = CacheSetting::Disabled;
        self
    }

    /// Offline mode: no network at all. Checks answer from defaults, events
    /// are counted and discarded, [`Client::send`] fails with
    /// [`Error::Offline`]. Offline, the API key may be empty.
    pub fn offline(mut self, offline: bool) -> Self {
        self.offline = offline;
        self
    }

    /// Configures the event buffer (flush interval, batch size, queue
    /// capacity, overflow policy, retries, dead-letter sink…).
    pub fn events(
        mut self,
        configure: impl FnOnce(EventBufferBuilder) -> EventBufferBuilder,
    ) -> Self {
        self.events = configure(self.events);
        self
    }

    /// Where undeliverable events go (default: a log line per batch).
    pub fn dead_letter(mut self, sink: impl DeadLetterSink) -> Self {
        self.events = self.events.dead_letter(sink);
        self
    }

    /// Adjusts the transport stack (e.g. adds a
    /// [`request_layer`](TransportBuilder::request_layer) or an
    /// [`attempt_layer`](TransportBuilder::attempt_layer), TLS roots).
    /// Runs after the client's own settings, for both the API and the
    /// capture transport.
    pub fn transport(
        mut self,
        configure: impl Fn(TransportBuilder) -> TransportBuilder + Send + Sync + 'static,
    ) -> Self {
        self.hooks.push(Arc::new(configure));
        self
    }

    /// Replaces the bottom of the stack (the HTTPS client) with `service`;
    /// the client's layers (API key, retries, deadlines, tracing) still wrap
    /// it.
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

    /// Uses `transport` as it is, for every request: no layers are added
    /// (not even the API key header; the capture envelope still carries the
    /// key).
    pub fn custom_transport(mut self, transport: BoxTransport) -> Self {
        self.custom_transport = Some(transport);
        self
    }

    fn transport_builder(&self, retries: u32) -> TransportBuilder {
        let policy = self
            .retry_policy
            .clone()
            .unwrap_or_default()
            .max_retries(retries);
        let builder = TransportBuilder::new()
            .timeout(Some(self.timeout))
            .retry(policy);
        if self.api_key.expose().trim().is_empty() {
            // Only possible offline, where nothing is sent.
            builder
        } else {
            builder.api_key(SCHEMATIC_API_KEY, self.api_key.clone())
        }
    }

    /// The WebSocket connector of the DataStream: the API transport's HTTPS
    /// settings (TLS roots, proxies, local address, connect timeout).
    fn websocket_connector(
        &self,
    ) -> Result<flagwire_transport::websocket::WebSocketConnector, Error> {
        let mut transport = self.transport_builder(0);
        if self.custom_transport.is_none() {
            for hook in &self.hooks {
                transport = hook(transport);
            }
        }
        transport.websocket_connector().map_err(Error::Transport)
    }

    /// A base URL other than the real API's with no capture URL would send
    /// events to the production capture host: refused for a base URL on
    /// this machine (surely a test server), warned about otherwise.
    fn check_capture_url_is_set(&self, base: &str) -> Result<(), Error> {
        let capture_set = self
            .capture_url
            .as_deref()
            .is_some_and(|url| !url.trim().is_empty());
        if capture_set || self.offline || base == BASE_URL {
            return Ok(());
        }
        if is_local(base) {
            return Err(Error::config(format!(
                "base_url `{base}` is on this machine but capture_url is not set: events would go \
                 to the production capture host ({DEFAULT_CAPTURE_BASE_URL}). Set capture_url \
                 (the emulator's is `MockServer::capture_url()`), or set it to \
                 {DEFAULT_CAPTURE_BASE_URL} to send them there on purpose"
            )));
        }
        tracing::warn!(
            base_url = base,
            capture_url = DEFAULT_CAPTURE_BASE_URL,
            "base_url is not the Schematic API but capture_url is not set: events go to the \
             production capture host"
        );
        Ok(())
    }

    /// Validates the settings and starts an async client.
    fn build_async(self) -> Result<Client, Error> {
        let key = self.api_key.expose();
        if key.trim().is_empty() && !self.offline {
            return Err(Error::config(
                "the API key is empty (set one, or use offline mode)",
            ));
        }
        let base = checked_base_url(&self.base_url, "base")?;
        self.check_capture_url_is_set(&base)?;
        let capture = capture_batch_url(self.capture_url.as_deref())
            .map_err(|e| Error::config(format!("capture URL: {e}")))?;
        let event_key = if key.trim().is_empty() {
            None
        } else {
            Some(ApiKey::new(key).map_err(|e| Error::config(format!("API key: {e}")))?)
        };

        let (api, capture_transport) = match &self.custom_transport {
            Some(t) => (t.clone(), t.clone()),
            None => {
                let mut api = self.transport_builder(self.max_retries);
                // The event buffer retries and dead-letters on its own.
                let mut cap = self.transport_builder(0);
                for hook in &self.hooks {
                    api = hook(api);
                    cap = hook(cap);
                }
                (
                    api.build().map_err(Error::Transport)?,
                    cap.build().map_err(Error::Transport)?,
                )
            }
        };

        // Everything the DataStream needs is read before the settings are
        // moved out below; its thread starts last.
        #[cfg(feature = "redis")]
        let replicator = match (&self.datastream, self.offline) {
            (Some(options), false) => options.replicator.clone(),
            _ => None,
        };
        #[cfg(not(feature = "redis"))]
        let replicator: Option<std::convert::Infallible> = None;
        let dial = match (&self.datastream, self.offline) {
            _ if replicator.is_some() => None,
            (Some(options), false) => {
                let url = match &options.url {
                    Some(url) => url.clone(),
                    None => datastream_url(&base)
                        .map_err(|e| Error::config(format!("DataStream URL: {e}")))?,
                };
                let url: http::Uri = url
                    .parse()
                    .map_err(|_| Error::config(format!("DataStream URL `{url}` is not a URL")))?;
                let dial = crate::datastream::Dial {
                    connector: self.websocket_connector()?,
                    url,
                    api_key: self.api_key.clone(),
                };
                Some((options.clone(), dial))
            }
            _ => None,
        };

        let cache = match self.cache {
            CacheSetting::Default => CacheChain::single(LocalFlagCache::<CachedCheck>::new()),
            CacheSetting::Disabled => CacheChain::disabled(),
            CacheSetting::Custom(chain) => chain,
        };

        let events = if self.offline {
            None
        } else {
            let sender = CaptureSender::new(capture_transport, capture.clone());
            let mut events = self.events;
            // The key spooled events are sent with after a restart.
            if let Some(key) = &event_key {
                events = events.api_key(key.clone());
            }
            Some(events.spawn(sender)?)
        };

        let datastream = match (dial, replicator) {
            (Some((options, dial)), _) => Some(DataStream::start(options, dial)?),
            #[cfg(feature = "redis")]
            (None, Some(replicator)) => Some(DataStream::start_replicator(replicator)?),
            _ => None,
        };

        Ok(Client::from_inner(Inner {
            transport: api,
            base_url: base,
            capture_url: capture,
            api_key: event_key,
            defaults: self.defaults,
            cache,
            offline: self.offline,
            events,
            offline_discarded: AtomicU64::new(0),
            datastream,
            breaker: Breaker::new(self.breaker),
            check_timeout: self.check_timeout,
            check_retries: self.check_retries,
        }))
    }
}

/// Connection settings: proxies, the local address, timeouts and the
/// connection pool. Each applies to every transport the client builds; see
/// [`HttpsClientBuilder`] for the details and defaults.
impl<M> ClientBuilder<M> {
    /// Sends requests through `proxy` when it serves their destination,
    /// instead of the proxies of the environment (`HTTPS_PROXY`,
    /// `HTTP_PROXY`, `ALL_PROXY`, `NO_PROXY`, read when the client is
    /// built). Several calls add several proxies, tried in order.
    ///
    /// ```
    /// use std::time::Duration;
    /// use flagwire::schematic::Client;
    /// use flagwire_transport::HttpsClient;
    /// use flagwire_transport::proxy::Proxy;
    ///
    /// let client = Client::builder("sch_dev_example")
    ///     .proxy(Proxy::https("http://proxy.internal:3128")?.basic_auth("alice", "s3cret"))
    ///     .connect_timeout(Some(Duration::from_secs(3)))
    ///     .pool_max_idle_per_host(8)
    ///     .build()?;
    /// # drop(client);
    ///
    /// // Two clients on one connection pool.
    /// let pool = HttpsClient::builder().no_proxy().build()?;
    /// let first = Client::builder("sch_dev_example").http_client(pool.clone()).build()?;
    /// let second = Client::builder("sch_dev_other").http_client(pool).build()?;
    /// # drop((first, second));
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

/// Whether the URL's host is this machine: `localhost`, a loopback address
/// or the unspecified address.
fn is_local(url: &str) -> bool {
    let Ok(uri) = http::Uri::try_from(url) else {
        return false;
    };
    let Some(host) = uri.host() else {
        return false;
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.eq_ignore_ascii_case("localhost") || host.to_ascii_lowercase().ends_with(".localhost") {
        return true;
    }
    host.parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_loopback() || ip.is_unspecified())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schematic::Client;

    #[test]
    fn local_hosts() {
        for url in [
            "http://127.0.0.1:8080",
            "http://localhost:1",
            "https://api.localhost",
            "http://[::1]:9",
            "http://0.0.0.0:80",
            "http://127.8.9.10",
        ] {
            assert!(is_local(url), "{url}");
        }
        for url in [
            "https://api.schematichq.com",
            "http://10.0.0.1",
            "http://example.com",
        ] {
            assert!(!is_local(url), "{url}");
        }
    }

    #[test]
    fn a_local_base_url_without_a_capture_url_is_refused() {
        let err = Client::builder("sch_dev_x")
            .base_url("http://127.0.0.1:9")
            .build()
            .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("capture_url is not set"), "{text}");
        assert!(text.contains("c.schematichq.com"), "{text}");
        // A blank capture URL is the default, so it is refused the same way.
        assert!(
            Client::builder("sch_dev_x")
                .base_url("http://localhost:9")
                .capture_url(" ")
                .build()
                .is_err()
        );
        // Explicitly the production host, offline, or the real API: fine.
        for builder in [
            Client::builder("sch_dev_x")
                .base_url("http://127.0.0.1:9")
                .capture_url(DEFAULT_CAPTURE_BASE_URL),
            Client::builder("sch_dev_x")
                .base_url("http://127.0.0.1:9")
                .offline(true),
            Client::builder("sch_dev_x").base_url("http://10.0.0.1:9"),
            Client::builder("sch_dev_x"),
        ] {
            let client = builder.build().unwrap();
            drop(client);
        }
    }
}
