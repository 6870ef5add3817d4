//! Redis behind flag checks: a shared flag-check cache, shared DataStream
//! entity caches, and replicator mode (feature `redis`).
//!
//! A service with many replicas should not open a DataStream socket per
//! replica, nor ask the API once per replica for the same answer. With one
//! Redis shared by every replica:
//!
//! * [`RedisFlagCache`] is a [`FlagCache`](crate::cache::FlagCache) for API
//!   answers: a small in-process layer in front of Redis, so an answer one
//!   replica fetched serves them all.
//! * [`RedisEntityStore`] reads and writes flags, companies and users in the
//!   key layout of Schematic's `schematic-datastream-replicator` and the
//!   official SDKs (below), as snake_case JSON.
//! * **Direct mode over a shared Redis**
//!   ([`DataStreamOptions::redis`](crate::datastream::DataStreamOptions::redis)):
//!   each client keeps its socket, writes what it brings to Redis, and reads
//!   a company or user it lacks from Redis before asking the socket.
//! * **Replicator mode**
//!   ([`ClientBuilder::replicator`](crate::schematic::ClientBuilder::replicator)):
//!   one replicator keeps Redis current; each client opens no socket and
//!   evaluates from Redis, with a small, short-lived in-process layer in
//!   front so that a hot check costs no round trip. See [`ReplicatorOptions`].
//!
//! # Key layout
//!
//! ```text
//! schematic:flags:<ver>:<lower flag key>          flag JSON
//! schematic:company:<ver>:<id>                    company JSON
//! schematic:company:<ver>:<lower name>:<lower v>  company id
//! schematic:user:<ver>:<id>                       user JSON
//! schematic:user:<ver>:<lower name>:<lower v>     user id
//! schematic:flag_check:<canonical check key>      cached API answer
//! ```
//!
//! `schematic` is the prefix ([`RedisOptions::prefix`]); `<ver>` is the
//! cache version: the replicator's `cache_version` in replicator mode, or
//! [`RedisOptions::version`] otherwise.
//!
//! # Failures
//!
//! Nothing here makes a flag check fail. A Redis that cannot be reached is a
//! miss (the check goes on to the API and the defaults); a value that does
//! not parse is skipped and counted in [`RedisStats::corrupt`]. An
//! unreachable Redis at start-up is not an error (the first command
//! connects); a malformed URL is.
//!
//! ```no_run
//! use flagwire::redis::{Redis, RedisOptions};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let redis = Redis::open(RedisOptions::new("redis://127.0.0.1:6379"))?;
//! let entities = redis.entity_store();
//! if let Some(flag) = entities.flag("new-editor").await? {
//!     println!("default: {}", flag.default_value);
//! }
//! # Ok(()) }
//! ```

mod conn;
mod entities;
mod flag_cache;
mod health;
pub(crate) mod keys;
pub(crate) mod mirror;
pub(crate) mod replicator;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub use entities::{Found, RedisEntityStore};
pub use flag_cache::{DEFAULT_MISS_TTL, DEFAULT_REDIS_TTL, RedisFlagCache, RedisFlagCacheBuilder};
pub use replicator::{
    DEFAULT_HEALTH_TIMEOUT, DEFAULT_HEALTH_URL, DEFAULT_LOCAL_ENTITIES, DEFAULT_LOCAL_TTL,
    DEFAULT_POLL_INTERVAL, ReplicatorOptions, ReplicatorStatus,
};

/// Default key prefix, the one the official SDKs and the replicator use.
pub use flagwire_core::datastream::DEFAULT_PREFIX;
/// Default lifetime of entities and lookup keys written by this crate (the
/// official SDKs' 24 h). Flags live at least 30 days.
pub const DEFAULT_ENTITY_TTL: Duration = Duration::from_secs(24 * 60 * 60);
/// Shortest lifetime of a flag written by this crate.
pub const MIN_FLAG_TTL: Duration = Duration::from_secs(30 * 24 * 60 * 60);
/// Default deadline of one Redis command.
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_millis(250);

/// Settings of a Redis connection. Start from [`RedisOptions::new`] with a
/// `redis://` URL (`redis://:password@host:port/db`).
///
/// ```
/// use std::time::Duration;
/// use flagwire::redis::RedisOptions;
///
/// let options = RedisOptions::new("redis://127.0.0.1:6379/0")
///     .prefix("schematic")
///     .version("14269364")
///     .entity_ttl(Some(Duration::from_secs(3600)))
///     .command_timeout(Duration::from_millis(100));
/// assert_eq!(options.get_prefix(), "schematic");
/// // The URL (it may hold a password) is not shown.
/// assert!(!format!("{options:?}").contains("127.0.0.1"));
/// ```
#[derive(Clone)]
pub struct RedisOptions {
    url: String,
    prefix: String,
    version: String,
    entity_ttl: Option<Duration>,
    command_timeout: Duration,
}

impl fmt::Debug for RedisOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisOptions")
            .field("url", &"<redacted>")
            .field("prefix", &self.prefix)
            .field("version", &self.version)
            .field("entity_ttl", &self.entity_ttl)
            .field("command_timeout", &self.command_timeout)
            .finish()
    }
}

impl RedisOptions {
    /// Options for the Redis at `url`, with the defaults: prefix
    /// `schematic`, version `"1"`, 24 h entity TTL, 250 ms per command.
    pub fn new(url: impl Into<String>) -> Self {
        RedisOptions {
            url: url.into(),
            prefix: DEFAULT_PREFIX.to_owned(),
            version: "1".to_owned(),
            entity_ttl: Some(DEFAULT_ENTITY_TTL),
            command_timeout: DEFAULT_COMMAND_TIMEOUT,
        }
    }

    /// The key prefix (default `schematic`).
    #[must_use]
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The configured key prefix.
    pub fn get_prefix(&self) -> &str {
        &self.prefix
    }

    /// The cache version segment of entity and flag keys outside replicator
    /// mode (default `"1"`). Clients that share entities through Redis must
    /// use the same version; in replicator mode the replicator's
    /// `cache_version` is used instead.
    #[must_use]
    pub fn version(mut self, version: impl Into<String>) -> Self {
        self.version = version.into();
        self
    }

    /// How long written entities and lookup keys live (default 24 h; `None`:
    /// no expiry, as the replicator writes them). Flags written live at
    /// least 30 days.
    #[must_use]
    pub fn entity_ttl(mut self, ttl: Option<Duration>) -> Self {
        self.entity_ttl = ttl;
        self
    }

    /// Deadline of one command, round trip included (default 250 ms).
    #[must_use]
    pub fn command_timeout(mut self, timeout: Duration) -> Self {
        self.command_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    fn flag_ttl(&self) -> Option<Duration> {
        self.entity_ttl.map(|ttl| ttl.max(MIN_FLAG_TTL))
    }
}

/// What went wrong talking to Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RedisErrorKind {
    /// The URL could not be parsed.
    InvalidUrl,
    /// The server could not be reached or the connection broke.
    Connection,
    /// No answer within the command timeout.
    Timeout,
    /// Redis answered with an error.
    Command,
    /// Skipped: Redis failed moments ago.
    Unavailable,
    /// The connection's thread is gone (the handle was shut down).
    Closed,
    /// A value could not be encoded.
    Encode,
    /// A local resource (thread, runtime) could not be set up.
    Io,
}

/// An error of a Redis operation. Its text never holds the URL or a
/// password.
#[derive(Debug, Clone)]
pub struct RedisError {
    kind: RedisErrorKind,
    message: String,
}

impl RedisError {
    pub(crate) fn new(kind: RedisErrorKind, message: impl Into<String>) -> Self {
        RedisError {
            kind,
            message: message.into(),
        }
    }

    pub(crate) fn closed() -> Self {
        RedisError::new(RedisErrorKind::Closed, "the Redis connection is shut down")
    }

    /// What kind of failure it is.
    pub fn kind(&self) -> RedisErrorKind {
        self.kind
    }

    /// Whether retrying later may help (connection, timeout, skipped).
    pub fn is_transient(&self) -> bool {
        matches!(
            self.kind,
            RedisErrorKind::Connection | RedisErrorKind::Timeout | RedisErrorKind::Unavailable
        )
    }
}

impl fmt::Display for RedisError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for RedisError {}

impl From<RedisError> for crate::Error {
    fn from(e: RedisError) -> Self {
        crate::Error::config(format!("Redis: {e}"))
    }
}

/// Counters of one [`Redis`] handle.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RedisStats {
    /// Values read from Redis that did not parse; each was skipped (treated
    /// as absent).
    pub corrupt: u64,
    /// Commands that failed (connection, timeout, error reply).
    pub errors: u64,
}

pub(crate) struct Shared {
    pub(crate) conn: Arc<conn::Conn>,
    pub(crate) layout: keys::Layout,
    pub(crate) options: RedisOptions,
    pub(crate) corrupt: AtomicU64,
}

impl Shared {
    pub(crate) fn count_corrupt(&self, key: &str, error: &dyn fmt::Display) {
        self.corrupt.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(key, %error, "a value in Redis does not parse; skipped");
    }
}

/// A connection to one Redis, shared by clones. Cheap to clone; the
/// connection (and its thread) closes when the last clone is dropped.
///
/// Opening connects lazily: an unreachable server is not an error here
/// (commands fail, and checks fall back, until it is reachable).
#[derive(Clone)]
pub struct Redis {
    pub(crate) shared: Arc<Shared>,
}

impl fmt::Debug for Redis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Redis")
            .field("options", &self.shared.options)
            .field("stats", &self.stats())
            .finish()
    }
}

impl Redis {
    /// A handle on the Redis at `options`' URL. Fails only when the URL is
    /// malformed or no thread could be started.
    pub fn open(options: RedisOptions) -> Result<Redis, RedisError> {
        let conn = conn::Conn::start(&options.url, options.command_timeout)?;
        Ok(Redis {
            shared: Arc::new(Shared {
                conn: Arc::new(conn),
                layout: keys::Layout::new(&options.prefix),
                options,
                corrupt: AtomicU64::new(0),
            }),
        })
    }

    /// The entity caches (flags, companies, users) at the configured
    /// version.
    pub fn entity_store(&self) -> RedisEntityStore {
        RedisEntityStore::new(self.clone(), self.shared.options.version.clone())
    }

    /// A flag-check cache with the default in-process layer (1,000 entries,
    /// 5 s) and a 5 s lifetime in Redis. See [`RedisFlagCache::builder`].
    pub fn flag_cache(&self) -> RedisFlagCache {
        RedisFlagCache::builder(self.clone()).build()
    }

    /// The options this handle was opened with.
    pub fn options(&self) -> &RedisOptions {
        &self.shared.options
    }

    /// Counters: corrupt values skipped, failed commands.
    pub fn stats(&self) -> RedisStats {
        RedisStats {
            corrupt: self.shared.corrupt.load(Ordering::Relaxed),
            errors: self.shared.conn.errors.load(Ordering::Relaxed),
        }
    }

    /// Sends `PING` and waits for `PONG` (at most the command timeout).
    pub async fn ping(&self) -> Result<(), RedisError> {
        self.shared
            .conn
            .run(|mut c| async move {
                redis::cmd("PING")
                    .query_async::<String>(&mut c)
                    .await
                    .map(drop)
                    .map_err(|e| conn::from_redis("PING", &e))
            })
            .await
    }

    /// `GET key` through this handle's connection, as raw text: the bare
    /// round trip every read here builds on (used by the benchmarks).
    pub async fn get_raw(&self, key: &str) -> Result<Option<String>, RedisError> {
        let key = key.to_owned();
        self.shared
            .conn
            .run(move |mut c| async move {
                redis::cmd("GET")
                    .arg(&key)
                    .query_async::<Option<String>>(&mut c)
                    .await
                    .map_err(|e| conn::from_redis("GET", &e))
            })
            .await
    }
}
