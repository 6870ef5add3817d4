//! [`ClientBuilder`]: every setting of the Schematic client.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use flagwire_core::events::{ApiKey, capture_batch_url};
use flagwire_core::schematic::BASE_URL;
use flagwire_transport::auth::{SCHEMATIC_API_KEY, Secret};
use flagwire_transport::{BoxError, BoxTransport, RetryPolicy, TransportBuilder};
use http::{Request, Response};
use tower::Service;

use super::client::{Client, Inner};
use super::events::CaptureSender;
use super::flags::CachedCheck;
use crate::base_url::checked_base_url;
use crate::cache::{CacheChain, FlagCache, LruFlagCache};
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
pub struct ClientBuilder {
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
}

impl fmt::Debug for ClientBuilder {
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

impl ClientBuilder {
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

    /// Uses `cache` instead of the default LRU cache (1,000 entries, 5 s).
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

    /// Validates the settings and starts the client (and, unless offline,
    /// its event-buffer thread). Needs no async runtime.
    pub fn build(self) -> Result<Client, Error> {
        let key = self.api_key.expose();
        if key.trim().is_empty() && !self.offline {
            return Err(Error::config(
                "the API key is empty (set one, or use offline mode)",
            ));
        }
        let base = checked_base_url(&self.base_url, "base")?;
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

        let cache = match self.cache {
            CacheSetting::Default => CacheChain::single(LruFlagCache::<CachedCheck>::new()),
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

        Ok(Client::from_inner(Inner::new(
            api,
            base,
            capture,
            event_key,
            self.defaults,
            cache,
            self.offline,
            events,
        )))
    }
}
