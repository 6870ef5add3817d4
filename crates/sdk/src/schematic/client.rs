//! The async [`Client`]: typed operations, pagination, and the shared state
//! behind flag checks and events.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use flagwire_core::events::ApiKey;
use flagwire_core::{Operation, Paginated};
use flagwire_transport::{Attempt, BoxTransport};
use futures_util::stream::{self, Stream};
use tower::ServiceExt;

use super::breaker::{Breaker, BreakerState};
use super::builder::ClientBuilder;
use super::flags::CachedCheck;
use super::options::RequestOptions;
use crate::cache::CacheChain;
use crate::datastream::{DataStream, DataStreamStatus};
use crate::error::Error;
use crate::events::EventBuffer;

pub(crate) struct Inner {
    pub(crate) transport: BoxTransport,
    pub(crate) base_url: String,
    pub(crate) capture_url: http::Uri,
    /// `None` only offline without a key.
    pub(crate) api_key: Option<ApiKey>,
    pub(crate) defaults: HashMap<String, bool>,
    pub(crate) cache: CacheChain<CachedCheck>,
    pub(crate) offline: bool,
    pub(crate) events: Option<EventBuffer>,
    pub(crate) offline_discarded: AtomicU64,
    /// Local evaluation, when turned on.
    pub(crate) datastream: Option<DataStream>,
    /// Guards the API path of flag checks.
    pub(crate) breaker: Breaker,
    /// Deadline of a flag check's API request.
    pub(crate) check_timeout: Duration,
    /// Retries of a flag check's API request.
    pub(crate) check_retries: u32,
}

/// The Schematic client: every API operation, cached flag checks with
/// defaults, and background event delivery.
///
/// Cheap to clone (one `Arc`), `Send + Sync`. Requests need a Tokio runtime;
/// building the client and queueing events do not. Events are delivered by
/// a thread of the client's own, so they keep flowing whatever runtime the
/// caller uses; call [`shutdown`](Self::shutdown) before exiting to deliver
/// the last ones.
///
/// ```no_run
/// use flagwire::schematic::Client;
/// use flagwire_core::schematic::companies::ListCompanies;
///
/// # async fn run() -> Result<(), flagwire::Error> {
/// let client = Client::new(std::env::var("SCHEMATIC_API_KEY").unwrap_or_default())?;
/// let page = client.send(ListCompanies::new().limit(10)).await?;
/// println!("{} companies", page.len());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    pub(crate) inner: Arc<Inner>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base_url", &self.inner.base_url)
            .field("capture_url", &self.inner.capture_url)
            .field("api_key", &self.inner.api_key)
            .field("offline", &self.inner.offline)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client with the default settings for `api_key`.
    pub fn new(api_key: impl Into<String>) -> Result<Client, Error> {
        ClientBuilder::new(api_key).build()
    }

    /// Starts configuring a client.
    pub fn builder(api_key: impl Into<String>) -> ClientBuilder {
        ClientBuilder::new(api_key)
    }

    pub(crate) fn from_inner(inner: Inner) -> Client {
        Client {
            inner: Arc::new(inner),
        }
    }

    /// The DataStream connection and local store, when local evaluation is
    /// on ([`ClientBuilder::datastream`]).
    pub fn datastream_status(&self) -> Option<DataStreamStatus> {
        self.inner.datastream.as_ref().map(DataStream::status)
    }

    /// Replicator mode's state (cache version, replicator readiness, Redis
    /// counters), when it is on
    /// ([`ClientBuilder::replicator`](super::ClientBuilder::replicator)).
    #[cfg(feature = "redis")]
    pub fn replicator_status(&self) -> Option<crate::redis::ReplicatorStatus> {
        let ds = self.inner.datastream.as_ref()?;
        ds.replicator.as_ref().map(|link| link.status())
    }

    /// Waits until checks can be answered locally (DataStream's flags have
    /// arrived), at most `timeout`. True when ready; also true at once when
    /// local evaluation is off or the client is offline (there is nothing to
    /// wait for).
    pub async fn wait_until_ready(&self, timeout: Duration) -> bool {
        match &self.inner.datastream {
            None => true,
            Some(ds) => ds.wait_ready(timeout).await,
        }
    }

    /// The state of the flag-check circuit breaker.
    pub fn breaker_state(&self) -> BreakerState {
        self.inner.breaker.state(Instant::now())
    }

    /// Whether the client is in offline mode.
    pub fn is_offline(&self) -> bool {
        self.inner.offline
    }

    /// The REST base URL in use.
    pub fn base_url(&self) -> &str {
        &self.inner.base_url
    }

    /// The capture batch URL events are posted to.
    pub fn capture_batch_url(&self) -> &http::Uri {
        &self.inner.capture_url
    }

    /// Sends one API operation (any request type of
    /// [`flagwire_core::schematic`]) and decodes its answer.
    ///
    /// A non-2xx answer is [`Error::Api`] with the server's message, also
    /// when retries ran out; no answer at all is [`Error::Transport`].
    pub async fn send<O: Operation>(&self, op: O) -> Result<O::Output, Error> {
        let request = self.prepare(&op, None);
        drop(op);
        self.execute::<O>(request?).await
    }

    /// [`send`](Self::send) with per-request options.
    pub async fn send_with<O: Operation>(
        &self,
        op: O,
        options: RequestOptions,
    ) -> Result<O::Output, Error> {
        let request = self.prepare(&op, Some(&options));
        drop(op);
        self.execute::<O>(request?).await
    }

    fn prepare<O: Operation>(
        &self,
        op: &O,
        options: Option<&RequestOptions>,
    ) -> Result<http::Request<bytes::Bytes>, Error> {
        if self.inner.offline {
            return Err(Error::Offline);
        }
        let mut req = op.to_request(&self.inner.base_url)?;
        if let Some(options) = options {
            options.apply(&mut req)?;
        }
        Ok(req)
    }

    async fn execute<O: Operation>(
        &self,
        request: http::Request<bytes::Bytes>,
    ) -> Result<O::Output, Error> {
        let response = match self.inner.transport.clone().oneshot(request).await {
            Ok(r) => r,
            Err(e) => {
                // Retries ran out on error statuses: report the API's words.
                if let Some(r) = e.last_response() {
                    return O::parse_response(r.status(), r.headers(), r.body())
                        .map_err(|err| Error::from(err).with_attempts(Attempt::of_response(r)));
                }
                return Err(Error::Transport(e));
            }
        };
        O::parse_response(response.status(), response.headers(), response.body())
            .map_err(|err| Error::from(err).with_attempts(Attempt::of_response(&response)))
    }

    /// Walks a `limit`/`offset` list operation page by page, yielding its
    /// items. Pages are fetched lazily, one request per page; the stream ends
    /// after a short page, and after the first error.
    ///
    /// ```no_run
    /// use futures_util::TryStreamExt;
    /// use flagwire::schematic::Client;
    /// use flagwire_core::schematic::companies::ListCompanies;
    ///
    /// # async fn run(client: Client) -> Result<(), flagwire::Error> {
    /// let all: Vec<_> = client.paginate(ListCompanies::new().limit(50)).try_collect().await?;
    /// # Ok(()) }
    /// ```
    pub fn paginate<P>(
        &self,
        first: P,
    ) -> impl Stream<Item = Result<P::Item, Error>> + Send + use<P>
    where
        P: Paginated + Send + Sync + 'static,
        P::Item: Send + 'static,
        P::Output: Send,
    {
        enum State<P: Paginated> {
            Next(Client, P),
            Items(Client, Option<P>, std::vec::IntoIter<P::Item>),
            Done,
        }
        let start = State::Next(self.clone(), first);
        stream::unfold(start, |mut state| async move {
            loop {
                match state {
                    State::Done => return None,
                    State::Items(client, next, mut items) => match items.next() {
                        Some(item) => return Some((Ok(item), State::Items(client, next, items))),
                        None => {
                            state = match next {
                                Some(op) => State::Next(client, op),
                                None => State::Done,
                            }
                        }
                    },
                    State::Next(client, op) => match client.send(op.clone()).await {
                        Ok(page) => {
                            let next = op.next_page(page.len());
                            state = State::Items(client, next, page.into_iter());
                        }
                        Err(e) => return Some((Err(e), State::Done)),
                    },
                }
            }
        })
    }
}
