//! Local flag evaluation over Schematic's DataStream.
//!
//! With [`ClientBuilder::datastream`](crate::schematic::ClientBuilder::datastream)
//! the client keeps flags, companies and users in memory, fed by the
//! DataStream WebSocket, and answers flag checks there, on the caller's
//! thread, with the native rules engine ([`flagwire_core::rules`]): no
//! request, no lock, no allocation for a check whose company and user are
//! cached.
//!
//! # How it works
//!
//! * A thread of the client's own runs the socket (so it keeps working
//!   whatever runtime the caller uses, or none). On every connect it asks
//!   for all flags, and again for every company and user it holds, so
//!   nothing cached goes stale across a reconnect. Messages are applied in
//!   order by that one task; none is dropped.
//! * A check reads the flag and looks the company and user up by any of the
//!   caller's keys (case-insensitively, as the official SDKs do). When one is
//!   missing, the check asks the server for it and waits at most
//!   [`DataStreamOptions::resource_timeout`] (2 s by default); concurrent
//!   checks for the same keys share one request. A check that cannot be
//!   answered locally — no flags yet, flag unknown, entity not found or not
//!   arriving in time, socket down with nothing cached — goes the REST way
//!   (result cache, API, defaults) and reports where its answer came from.
//! * Each check answered locally queues one `flag_check` event (as the
//!   official SDKs do; [`DataStreamOptions::flag_check_events`] turns it
//!   off). Bulk checks send none.
//! * After `track` with company keys, the cached company's matching metrics
//!   are bumped at once, so usage limits react before the server's update
//!   arrives (which then replaces the metric: no double counting).
//! * The socket pings every 30 s and reconnects when a pong is 10 s late;
//!   reconnects back off exponentially (1 s doubling to 30 s, plus up to 1 s
//!   of jitter), without an attempt limit. Only an authentication failure
//!   (close code 4001, or 401/403 on the upgrade) stops it for good; checks
//!   then keep answering through the API and defaults, and
//!   [`DataStreamStatus::last_error`] says why.
//!
//! See `docs/datastream.md` for the protocol choices and figures.

mod connection;
#[doc(hidden)]
pub mod internals;
pub(crate) mod lookup;
pub(crate) mod store;
pub(crate) mod waiters;

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub use flagwire_core::datastream::ReconnectPolicy;
use flagwire_core::events::Keys;
use tokio::sync::{mpsc, watch};

use store::{Limits, Store};
use waiters::{EntityKind, Waiters};

/// Default wait for a company or user the store does not hold.
pub const DEFAULT_RESOURCE_TIMEOUT: Duration = Duration::from_secs(2);
/// Default number of companies (and, separately, users) kept in memory.
pub const DEFAULT_MAX_ENTITIES: usize = 10_000;
/// Default lifetime of a cached company or user without any update.
pub const DEFAULT_ENTITY_TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// Settings of local evaluation over DataStream. Start from
/// [`DataStreamOptions::new`] (the defaults of the official SDKs, except
/// where the docs say otherwise) and pass it to
/// [`ClientBuilder::datastream`](crate::schematic::ClientBuilder::datastream).
///
/// ```
/// use std::time::Duration;
/// use flagwire::datastream::DataStreamOptions;
///
/// let options = DataStreamOptions::new()
///     .resource_timeout(Duration::from_millis(500))
///     .max_companies(50_000)
///     .flag_check_events(false);
/// assert_eq!(options.get_resource_timeout(), Duration::from_millis(500));
/// ```
#[derive(Clone)]
pub struct DataStreamOptions {
    pub(crate) url: Option<String>,
    pub(crate) resource_timeout: Duration,
    pub(crate) max_companies: usize,
    pub(crate) max_users: usize,
    pub(crate) entity_ttl: Duration,
    pub(crate) flag_check_events: bool,
    pub(crate) reconnect: ReconnectPolicy,
    pub(crate) ping_interval: Duration,
    pub(crate) pong_timeout: Duration,
    pub(crate) handshake_timeout: Duration,
    pub(crate) max_message_size: usize,
    /// Set by [`ClientBuilder::replicator`](crate::schematic::ClientBuilder::replicator).
    #[cfg(feature = "redis")]
    pub(crate) replicator: Option<crate::redis::ReplicatorOptions>,
    /// A Redis shared by direct-mode clients as their entity cache.
    #[cfg(feature = "redis")]
    pub(crate) redis: Option<crate::redis::RedisOptions>,
}

impl Default for DataStreamOptions {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for DataStreamOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DataStreamOptions")
            .field("url", &self.url)
            .field("resource_timeout", &self.resource_timeout)
            .field("max_companies", &self.max_companies)
            .field("max_users", &self.max_users)
            .field("entity_ttl", &self.entity_ttl)
            .field("flag_check_events", &self.flag_check_events)
            .field("ping_interval", &self.ping_interval)
            .field("pong_timeout", &self.pong_timeout)
            .field("handshake_timeout", &self.handshake_timeout)
            .field("max_message_size", &self.max_message_size)
            .finish_non_exhaustive()
    }
}

impl DataStreamOptions {
    /// The defaults.
    pub fn new() -> Self {
        DataStreamOptions {
            url: None,
            resource_timeout: DEFAULT_RESOURCE_TIMEOUT,
            max_companies: DEFAULT_MAX_ENTITIES,
            max_users: DEFAULT_MAX_ENTITIES,
            entity_ttl: DEFAULT_ENTITY_TTL,
            flag_check_events: true,
            reconnect: ReconnectPolicy::default(),
            ping_interval: Duration::from_secs(30),
            pong_timeout: Duration::from_secs(10),
            handshake_timeout: Duration::from_secs(30),
            max_message_size: flagwire_core::datastream::MAX_MESSAGE_SIZE,
            #[cfg(feature = "redis")]
            replicator: None,
            #[cfg(feature = "redis")]
            redis: None,
        }
    }

    /// The WebSocket URL (`ws://` or `wss://`). By default it is derived
    /// from the REST base URL: `https://api.schematichq.com` becomes
    /// `wss://datastream.schematichq.com/datastream`.
    pub fn url(mut self, url: impl Into<String>) -> Self {
        self.url = Some(url.into());
        self
    }

    /// How long a check waits for a company or user the store does not hold
    /// before it asks the REST API instead (default 2 s).
    pub fn resource_timeout(mut self, timeout: Duration) -> Self {
        self.resource_timeout = timeout;
        self
    }

    /// The configured resource timeout.
    pub fn get_resource_timeout(&self) -> Duration {
        self.resource_timeout
    }

    /// How many companies to keep (default 10,000; the oldest written goes
    /// first).
    pub fn max_companies(mut self, max: usize) -> Self {
        self.max_companies = max;
        self
    }

    /// How many users to keep (default 10,000).
    pub fn max_users(mut self, max: usize) -> Self {
        self.max_users = max;
        self
    }

    /// How long a company or user stays without any update (default 24 h).
    pub fn entity_ttl(mut self, ttl: Duration) -> Self {
        self.entity_ttl = ttl;
        self
    }

    /// Whether each locally evaluated check queues a `flag_check` event
    /// (default true, as in the official SDKs).
    pub fn flag_check_events(mut self, on: bool) -> Self {
        self.flag_check_events = on;
        self
    }

    /// The reconnect back-off.
    pub fn reconnect(mut self, policy: ReconnectPolicy) -> Self {
        self.reconnect = policy;
        self
    }

    /// How often the client pings the server (default 30 s).
    pub fn ping_interval(mut self, interval: Duration) -> Self {
        self.ping_interval = interval;
        self
    }

    /// How late a pong may be before the connection counts as dead (default
    /// 10 s).
    pub fn pong_timeout(mut self, timeout: Duration) -> Self {
        self.pong_timeout = timeout;
        self
    }

    /// Deadline of the WebSocket handshake (default 30 s).
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// Shares flags, companies and users with other clients through Redis
    /// (feature `redis`): everything the socket brings is also written to
    /// Redis (in the replicator's key layout, at
    /// [`RedisOptions::version`](crate::redis::RedisOptions::version)), and a
    /// company or user this client lacks is read from Redis before the
    /// socket is asked (and then subscribed to, so it stays current). A
    /// malformed URL makes `build` fail; an unreachable Redis only costs
    /// the reads. For one socket for all clients, see
    /// [`ClientBuilder::replicator`](crate::schematic::ClientBuilder::replicator).
    #[cfg(feature = "redis")]
    pub fn redis(mut self, options: crate::redis::RedisOptions) -> Self {
        self.redis = Some(options);
        self
    }

    /// Largest message (and frame) accepted (default 100 MiB). A bigger one
    /// closes the connection, which then reconnects.
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = bytes;
        self
    }
}

/// The state of the DataStream connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectionState {
    /// Dialling (first connect or a reconnect).
    Connecting,
    /// Connected; checks are answered locally once flags have arrived.
    Connected,
    /// Waiting before the next reconnect. Cached data keeps answering.
    Disconnected,
    /// Stopped for good (authentication failure or client shut down). See
    /// [`DataStreamStatus::last_error`].
    Stopped,
}

impl ConnectionState {
    fn from_u8(v: u8) -> Self {
        match v {
            0 => ConnectionState::Connecting,
            1 => ConnectionState::Connected,
            2 => ConnectionState::Disconnected,
            _ => ConnectionState::Stopped,
        }
    }

    fn as_u8(self) -> u8 {
        match self {
            ConnectionState::Connecting => 0,
            ConnectionState::Connected => 1,
            ConnectionState::Disconnected => 2,
            ConnectionState::Stopped => 3,
        }
    }
}

/// A snapshot of the DataStream connection and store, from
/// [`Client::datastream_status`](crate::schematic::Client::datastream_status).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct DataStreamStatus {
    /// The connection state.
    pub state: ConnectionState,
    /// Whether the flags have arrived (checks can be answered locally).
    pub ready: bool,
    /// Flags held.
    pub flags: usize,
    /// Companies held.
    pub companies: usize,
    /// Users held.
    pub users: usize,
    /// Messages applied since the client started.
    pub messages: u64,
    /// Malformed messages counted and skipped.
    pub malformed: u64,
    /// Connections made after the first one.
    pub reconnects: u64,
    /// Time since the last message, if any arrived.
    pub since_last_message: Option<Duration>,
    /// Why the last connection ended or failed, if it did.
    pub last_error: Option<String>,
}

/// A request from a check to the socket task.
#[derive(Debug)]
pub(crate) enum Command {
    /// Subscribe to the entity with these keys (a check missed it).
    Subscribe(EntityKind, Keys),
    /// A check stopped waiting for it: ask again on the next miss.
    GaveUp(EntityKind, Keys),
}

/// State shared by the client and its socket task.
pub(crate) struct Shared {
    state: AtomicU8,
    started: Instant,
    last_message_ms: AtomicU64,
    pub(crate) messages: AtomicU64,
    pub(crate) malformed: AtomicU64,
    pub(crate) reconnects: AtomicU64,
    last_error: Mutex<Option<String>>,
    ready: watch::Sender<bool>,
    stopping: AtomicBool,
}

impl Shared {
    fn new() -> Self {
        Shared {
            state: AtomicU8::new(ConnectionState::Connecting.as_u8()),
            started: Instant::now(),
            last_message_ms: AtomicU64::new(0),
            messages: AtomicU64::new(0),
            malformed: AtomicU64::new(0),
            reconnects: AtomicU64::new(0),
            last_error: Mutex::new(None),
            ready: watch::channel(false).0,
            stopping: AtomicBool::new(false),
        }
    }

    pub(crate) fn set_state(&self, state: ConnectionState) {
        self.state.store(state.as_u8(), Ordering::Release);
    }

    pub(crate) fn state(&self) -> ConnectionState {
        ConnectionState::from_u8(self.state.load(Ordering::Acquire))
    }

    pub(crate) fn set_error(&self, error: impl Into<String>) {
        *self
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(error.into());
    }

    pub(crate) fn message_received(&self) {
        self.messages.fetch_add(1, Ordering::Relaxed);
        let ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_message_ms.store(ms.max(1), Ordering::Relaxed);
    }

    pub(crate) fn set_ready(&self, ready: bool) {
        self.ready.send_if_modified(|r| {
            let changed = *r != ready;
            *r = ready;
            changed
        });
    }
}

/// The client's DataStream: store, waiters, and the socket thread.
pub(crate) struct DataStream {
    pub(crate) store: Arc<Store>,
    pub(crate) waiters: Arc<Waiters>,
    pub(crate) shared: Arc<Shared>,
    pub(crate) options: DataStreamOptions,
    commands: mpsc::UnboundedSender<Command>,
    shutdown: watch::Sender<bool>,
    thread: Mutex<Option<JoinHandle<()>>>,
    /// Replicator mode: no socket; misses are read from Redis.
    #[cfg(feature = "redis")]
    pub(crate) replicator: Option<Arc<crate::redis::replicator::Link>>,
    /// Direct mode sharing entities through Redis.
    #[cfg(feature = "redis")]
    pub(crate) mirror: Option<Arc<crate::redis::mirror::Mirror>>,
}

impl fmt::Debug for DataStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DataStream")
            .field("state", &self.shared.state())
            .finish_non_exhaustive()
    }
}

impl DataStream {
    /// Starts the socket thread.
    pub(crate) fn start(
        options: DataStreamOptions,
        dial: connection::Dial,
    ) -> Result<DataStream, crate::Error> {
        // Before the runtime: a failure here must not drop it (this may run
        // inside an async task).
        #[cfg(feature = "redis")]
        let mirror = match &options.redis {
            Some(redis) => Some(crate::redis::mirror::Mirror::start(redis.clone())?),
            None => None,
        };
        let store = Arc::new(Store::new(Limits {
            companies: options.max_companies.max(1),
            users: options.max_users.max(1),
            ttl: options.entity_ttl,
        }));
        let waiters = Arc::new(Waiters::default());
        let shared = Arc::new(Shared::new());
        let (commands, receiver) = mpsc::unbounded_channel();
        let (shutdown, shutdown_rx) = watch::channel(false);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| crate::Error::config(format!("could not start a runtime: {e}")))?;
        let task = connection::Task {
            #[cfg(feature = "redis")]
            mirror: mirror.clone(),
            store: store.clone(),
            waiters: waiters.clone(),
            shared: shared.clone(),
            options: options.clone(),
            dial,
            commands: receiver,
            shutdown: shutdown_rx,
        };
        let thread = std::thread::Builder::new()
            .name("flagwire-datastream".to_owned())
            .spawn(move || runtime.block_on(task.run()))
            .map_err(|e| {
                crate::Error::config(format!("could not start the DataStream thread: {e}"))
            })?;
        Ok(DataStream {
            store,
            waiters,
            shared,
            options,
            commands,
            shutdown,
            thread: Mutex::new(Some(thread)),
            #[cfg(feature = "redis")]
            replicator: None,
            #[cfg(feature = "redis")]
            mirror,
        })
    }

    /// Replicator mode: the same store, as a short-lived layer over Redis,
    /// and no socket. The background work runs on the Redis connection's
    /// thread.
    #[cfg(feature = "redis")]
    pub(crate) fn start_replicator(
        replicator: crate::redis::ReplicatorOptions,
    ) -> Result<DataStream, crate::Error> {
        let options = DataStreamOptions::new().flag_check_events(replicator.flag_check_events);
        let store = Arc::new(Store::new(Limits {
            companies: replicator.max_local_entities,
            users: replicator.max_local_entities,
            ttl: replicator.local_ttl,
        }));
        let shared = Arc::new(Shared::new());
        let (shutdown, shutdown_rx) = watch::channel(false);
        // No socket task: entity requests are never sent.
        let (commands, _) = mpsc::unbounded_channel();
        let link = crate::redis::replicator::Link::start(
            replicator,
            store.clone(),
            shared.clone(),
            shutdown_rx,
        )?;
        Ok(DataStream {
            store,
            waiters: Arc::new(Waiters::default()),
            shared,
            options,
            commands,
            shutdown,
            thread: Mutex::new(None),
            replicator: Some(link),
            mirror: None,
        })
    }

    /// Whether this is replicator mode (evaluation from Redis, no socket).
    #[inline]
    pub(crate) fn is_replicator(&self) -> bool {
        #[cfg(feature = "redis")]
        {
            self.replicator.is_some()
        }
        #[cfg(not(feature = "redis"))]
        {
            false
        }
    }

    /// Whether the socket is connected (entity requests can be sent).
    pub(crate) fn is_connected(&self) -> bool {
        self.shared.state() == ConnectionState::Connected && !self.is_replicator()
    }

    /// Asks the socket task to subscribe to an entity; false when the task
    /// is gone.
    pub(crate) fn subscribe(&self, kind: EntityKind, keys: Keys) -> bool {
        self.commands.send(Command::Subscribe(kind, keys)).is_ok()
    }

    /// Tells the socket task a check stopped waiting for an entity.
    pub(crate) fn gave_up(&self, kind: EntityKind, keys: Keys) {
        let _ = self.commands.send(Command::GaveUp(kind, keys));
    }

    /// Waits until the flags have arrived, at most `timeout`.
    pub(crate) async fn wait_ready(&self, timeout: Duration) -> bool {
        let mut ready = self.shared.ready.subscribe();
        let wait = ready.wait_for(|r| *r);
        matches!(tokio::time::timeout(timeout, wait).await, Ok(Ok(_)))
    }

    /// The status snapshot.
    pub(crate) fn status(&self) -> DataStreamStatus {
        let (flags, companies, users) = self.store.sizes();
        let last = self.shared.last_message_ms.load(Ordering::Relaxed);
        DataStreamStatus {
            state: self.shared.state(),
            ready: self.store.is_ready(),
            flags,
            companies,
            users,
            messages: self.shared.messages.load(Ordering::Relaxed),
            malformed: self.shared.malformed.load(Ordering::Relaxed),
            reconnects: self.shared.reconnects.load(Ordering::Relaxed),
            since_last_message: (last > 0).then(|| {
                self.shared
                    .started
                    .elapsed()
                    .saturating_sub(Duration::from_millis(last))
            }),
            last_error: self
                .shared
                .last_error
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
        }
    }

    /// Stops the socket (closing it politely) and waits at most `timeout`
    /// for the thread to end.
    pub(crate) async fn stop(&self, timeout: Duration) {
        self.signal_stop();
        let thread = self
            .thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(thread) = thread {
            let (done, finished) = tokio::sync::oneshot::channel();
            // Joining blocks: do it on a thread of its own.
            let joiner = std::thread::Builder::new()
                .name("flagwire-datastream-join".to_owned())
                .spawn(move || {
                    let _ = thread.join();
                    let _ = done.send(());
                });
            if joiner.is_ok() {
                let _ = tokio::time::timeout(timeout, finished).await;
            }
        }
    }

    fn signal_stop(&self) {
        self.shared.stopping.store(true, Ordering::Release);
        let _ = self.shutdown.send(true);
    }
}

impl Drop for DataStream {
    fn drop(&mut self) {
        // Never join here: the last client may be dropped inside an async
        // task. The thread sees the signal and ends on its own.
        self.signal_stop();
    }
}

pub(crate) use connection::Dial;
