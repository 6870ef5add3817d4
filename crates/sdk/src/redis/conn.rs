//! The connection: a thread of its own running a small Tokio runtime that
//! owns a `redis` connection manager. Every command runs there, so the
//! caller may be in any runtime, or in none (the blocking client, the
//! synchronous [`FlagCache`](crate::cache::FlagCache) methods).

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::watch;

use super::{RedisError, RedisErrorKind};

/// One Redis connection (multiplexed: concurrent commands share it) and the
/// thread that drives it.
pub(crate) struct Conn {
    manager: ConnectionManager,
    handle: tokio::runtime::Handle,
    timeout: Duration,
    shutdown: watch::Sender<bool>,
    thread: Mutex<Option<JoinHandle<()>>>,
    /// Until when (ms since `started`) the blocking path skips Redis after a
    /// failure.
    down_until_ms: AtomicU64,
    started: Instant,
    pub(crate) errors: AtomicU64,
}

impl Conn {
    /// Opens nothing yet: the first command connects. A malformed URL is an
    /// error; an unreachable server is not.
    pub(crate) fn start(url: &str, timeout: Duration) -> Result<Conn, RedisError> {
        let client = redis::Client::open(url).map_err(|e| {
            // The URL may carry a password: never show it.
            RedisError::new(
                RedisErrorKind::InvalidUrl,
                format!("the Redis URL is not valid ({:?})", e.kind()),
            )
        })?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| {
                RedisError::new(
                    RedisErrorKind::Io,
                    format!("could not start a runtime: {e}"),
                )
            })?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout.max(Duration::from_millis(100))))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(10))
            .set_max_delay(Duration::from_millis(200));
        let manager = {
            let _enter = runtime.enter();
            ConnectionManager::new_lazy_with_config(client, config)
        };
        let manager = match manager {
            Ok(manager) => manager,
            Err(e) => {
                // Dropping a runtime may block, which an async caller forbids.
                runtime.shutdown_background();
                return Err(RedisError::new(
                    RedisErrorKind::Connection,
                    format!("Redis client: {:?}", e.kind()),
                ));
            }
        };
        let handle = runtime.handle().clone();
        let (shutdown, mut stop) = watch::channel(false);
        let thread = std::thread::Builder::new()
            .name("flagwire-redis".to_owned())
            .spawn(move || {
                runtime.block_on(async move {
                    let _ = stop.wait_for(|s| *s).await;
                });
                // Pending commands are dropped with the runtime; their
                // callers see `Closed`.
                runtime.shutdown_timeout(Duration::from_millis(100));
            })
            .map_err(|e| {
                RedisError::new(
                    RedisErrorKind::Io,
                    format!("could not start the Redis thread: {e}"),
                )
            })?;
        Ok(Conn {
            manager,
            handle,
            timeout,
            shutdown,
            thread: Mutex::new(Some(thread)),
            down_until_ms: AtomicU64::new(0),
            started: Instant::now(),
            errors: AtomicU64::new(0),
        })
    }

    /// The runtime commands run on (for background tasks).
    pub(crate) fn handle(&self) -> &tokio::runtime::Handle {
        &self.handle
    }

    fn task<T, F, Fut>(&self, f: F) -> impl Future<Output = Result<T, RedisError>> + Send + 'static
    where
        F: FnOnce(ConnectionManager) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, RedisError>> + Send + 'static,
        T: Send + 'static,
    {
        let manager = self.manager.clone();
        let timeout = self.timeout;
        async move {
            match tokio::time::timeout(timeout, f(manager)).await {
                Ok(result) => result,
                Err(_) => Err(RedisError::new(
                    RedisErrorKind::Timeout,
                    format!("no answer from Redis within {timeout:?}"),
                )),
            }
        }
    }

    /// Runs `f` on the connection's runtime and waits for it (at most the
    /// command timeout). Callable from any runtime.
    pub(crate) async fn run<T, F, Fut>(&self, f: F) -> Result<T, RedisError>
    where
        F: FnOnce(ConnectionManager) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, RedisError>> + Send + 'static,
        T: Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let task = self.task(f);
        self.handle.spawn(async move {
            let _ = tx.send(task.await);
        });
        let result = rx.await.unwrap_or_else(|_| Err(RedisError::closed()));
        self.note(&result);
        result
    }

    /// Runs `f` and blocks this thread until it ends (at most the command
    /// timeout). Skips Redis (an error at once) for a short while after a
    /// failure, so an outage does not cost every caller a timeout.
    pub(crate) fn run_blocking<T, F, Fut>(&self, f: F) -> Result<T, RedisError>
    where
        F: FnOnce(ConnectionManager) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, RedisError>> + Send + 'static,
        T: Send + 'static,
    {
        let now = self.now_ms();
        if now < self.down_until_ms.load(Ordering::Relaxed) {
            return Err(RedisError::new(
                RedisErrorKind::Unavailable,
                "Redis failed moments ago; not trying again yet",
            ));
        }
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let task = self.task(f);
        self.handle.spawn(async move {
            let _ = tx.send(task.await);
        });
        let result = match rx.recv_timeout(self.timeout + Duration::from_millis(50)) {
            Ok(result) => result,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => Err(RedisError::new(
                RedisErrorKind::Timeout,
                "no answer from Redis in time",
            )),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => Err(RedisError::closed()),
        };
        self.note(&result);
        if result.is_err() {
            self.down_until_ms.store(now + 1_000, Ordering::Relaxed);
        }
        result
    }

    /// Queues `f` on the connection's runtime without waiting.
    pub(crate) fn spawn<F, Fut>(self: &Arc<Self>, f: F)
    where
        F: FnOnce(ConnectionManager) -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), RedisError>> + Send + 'static,
    {
        let task = self.task(f);
        let conn = Arc::downgrade(self);
        self.handle.spawn(async move {
            let result = task.await;
            if let Some(conn) = conn.upgrade() {
                conn.note(&result);
            }
        });
    }

    fn note<T>(&self, result: &Result<T, RedisError>) {
        if let Err(e) = result {
            self.errors.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(error = %e, "Redis command failed");
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        // Never join here: this may run inside an async task.
        drop(
            self.thread
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take(),
        );
    }
}

/// Maps a `redis` error to ours.
pub(crate) fn from_redis(context: &str, e: &redis::RedisError) -> RedisError {
    let kind = if e.is_timeout() {
        RedisErrorKind::Timeout
    } else if e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal() {
        RedisErrorKind::Connection
    } else {
        RedisErrorKind::Command
    };
    RedisError::new(kind, format!("{context}: {e}"))
}
