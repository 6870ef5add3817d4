//! The background event buffer.

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use flagwire_core::events::{BatchEncoder, EventEnvelope, MAX_BATCH_EVENTS};
use time::OffsetDateTime;
use tokio::sync::Notify;
use tokio::time::{Instant, MissedTickBehavior};

use super::{
    Batch, BatchSender, DeadLetter, DeadLetterReason, DeadLetterSink, LogDeadLetters, SendError,
};

/// Default bound of the queue, in events.
pub const DEFAULT_QUEUE_CAPACITY: usize = 10_000;
/// Default time between periodic flushes.
pub const DEFAULT_FLUSH_INTERVAL: Duration = Duration::from_secs(5);
/// Default number of retries after the first attempt of a batch.
pub const DEFAULT_MAX_RETRIES: u32 = 3;
/// Default delay before the first retry; it doubles for each further one.
pub const DEFAULT_RETRY_BASE_DELAY: Duration = Duration::from_secs(1);
/// Default cap on a retry delay.
pub const DEFAULT_RETRY_MAX_DELAY: Duration = Duration::from_secs(30);
/// Default limit on one send attempt.
pub const DEFAULT_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default time the last handle's `Drop` waits for the final flush.
pub const DEFAULT_DROP_TIMEOUT: Duration = Duration::from_secs(5);

/// Extra time a shutdown waits for the worker past its own deadline, for
/// the worker to write dead letters and stop its runtime.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

/// What [`EventBuffer::enqueue`] does when the queue is full. Either way the
/// caller never waits and every lost event is counted in
/// [`BufferStats::dropped`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum OverflowPolicy {
    /// Refuse the new event ([`BufferError::QueueFull`]); what is queued
    /// stays. The default.
    #[default]
    DropNewest,
    /// Accept the new event and discard the oldest queued one.
    DropOldest,
}

/// Errors of the event buffer.
#[derive(Debug)]
#[non_exhaustive]
pub enum BufferError {
    /// A setting is out of range.
    InvalidConfig(&'static str),
    /// The background thread could not be started.
    Spawn(std::io::Error),
    /// The queue was full and the event was refused (counted as dropped).
    QueueFull,
    /// The buffer is shut down (or shutting down) and takes no more events,
    /// or stopped before a flush could complete.
    Closed,
    /// A blocking wait ran out of time.
    Timeout,
}

impl fmt::Display for BufferError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidConfig(what) => write!(f, "invalid event buffer setting: {what}"),
            Self::Spawn(e) => write!(f, "could not start the event buffer thread: {e}"),
            Self::QueueFull => f.write_str("event queue is full; event dropped"),
            Self::Closed => f.write_str("event buffer is shut down"),
            Self::Timeout => f.write_str("timed out waiting for the event buffer"),
        }
    }
}

impl std::error::Error for BufferError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Spawn(e) => Some(e),
            _ => None,
        }
    }
}

/// A snapshot of the buffer's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BufferStats {
    /// Events accepted into the queue.
    pub enqueued: u64,
    /// Events delivered (their batch got a 2xx).
    pub sent: u64,
    /// Batches delivered.
    pub batches_sent: u64,
    /// Retry attempts made (per batch, not per event).
    pub retried: u64,
    /// Events lost to the overflow policy (refused or displaced).
    pub dropped: u64,
    /// Events refused because the buffer was shut down.
    pub rejected: u64,
    /// Events handed to the dead-letter sink.
    pub dead_lettered: u64,
    /// Dead-letter sink calls that returned an error.
    pub dead_letter_failures: u64,
    /// Events waiting in the queue right now.
    pub queued: u64,
}

// ---------------------------------------------------------------------------
// Shared state
// ---------------------------------------------------------------------------

/// A batch of queued events. Chunks are allocated with room for a full
/// batch and reused, so an enqueue only moves the event into memory that is
/// already there.
type Chunk = VecDeque<EventEnvelope>;

/// Most emptied chunks kept for reuse (about 30 KB each with 100 events of
/// ~300 bytes): enough for a backlog of a few thousand events without
/// allocating, and a bound on what an idle buffer keeps.
const MAX_SPARE_CHUNKS: usize = 32;

/// The queue is a list of batches rather than a list of events: the caller
/// appends to the `open` batch and seals it when it is full; the worker
/// takes a whole sealed batch (or the open one, on a flush) by swapping it
/// for an empty chunk. The lock is held for a pointer swap, never for moving
/// a batch's events, and a growing backlog never copies queued events.
struct Queue {
    /// Full batches, oldest first.
    sealed: VecDeque<Chunk>,
    /// The batch being filled: the newest events.
    open: Chunk,
    /// Emptied chunks, ready to become the open batch again.
    spare: Vec<Chunk>,
    /// Events queued in `sealed` and `open` together.
    len: usize,
    /// Sequence number of the newest accepted event (1-based). The queue
    /// always holds the contiguous range `last_seq - len + 1 ..= last_seq`.
    last_seq: u64,
    dropped: u64,
    rejected: u64,
    closed: bool,
    /// Set by shutdown: the worker must be done by then.
    deadline: Option<Instant>,
}

impl Queue {
    fn new(max_batch: usize) -> Self {
        Queue {
            sealed: VecDeque::new(),
            open: Chunk::with_capacity(max_batch),
            spare: Vec::new(),
            len: 0,
            last_seq: 0,
            dropped: 0,
            rejected: 0,
            closed: false,
            deadline: None,
        }
    }

    /// Moves the full open batch to `sealed` and opens a reused (or, with
    /// no spare chunk left, a new) one.
    fn seal(&mut self, max_batch: usize) {
        let next = self
            .spare
            .pop()
            .unwrap_or_else(|| Chunk::with_capacity(max_batch));
        let full = std::mem::replace(&mut self.open, next);
        self.sealed.push_back(full);
    }

    /// Keeps an empty chunk for reuse, up to [`MAX_SPARE_CHUNKS`].
    fn recycle(&mut self, chunk: Chunk) -> Option<Chunk> {
        debug_assert!(chunk.is_empty());
        if self.spare.len() < MAX_SPARE_CHUNKS && chunk.capacity() > 0 {
            self.spare.push(chunk);
            None
        } else {
            Some(chunk)
        }
    }

    /// Removes the oldest queued event (overflow policy `DropOldest`).
    fn pop_oldest(&mut self) -> Option<EventEnvelope> {
        let event = match self.sealed.front_mut() {
            Some(front) => {
                let event = front.pop_front();
                if front.is_empty()
                    && let Some(empty) = self.sealed.pop_front()
                {
                    // An empty chunk holds no events; freeing one here is
                    // rare (only when the spare list is full).
                    drop(self.recycle(empty));
                }
                event
            }
            None => self.open.pop_front(),
        };
        if event.is_some() {
            self.len -= 1;
        }
        event
    }

    /// Swaps the oldest batch (sealed, or else the open one) into `out`,
    /// which must be empty; returns a chunk to free outside the lock.
    fn take_batch(&mut self, out: &mut Chunk) -> Option<Chunk> {
        debug_assert!(out.is_empty());
        if let Some(batch) = self.sealed.pop_front() {
            self.len -= batch.len();
            let empty = std::mem::replace(out, batch);
            self.recycle(empty)
        } else if !self.open.is_empty() {
            self.len -= self.open.len();
            // The caller continues in the worker's emptied chunk.
            std::mem::swap(out, &mut self.open);
            None
        } else {
            None
        }
    }
}

#[derive(Clone, Copy, Default)]
struct Progress {
    /// Every event with a sequence number up to this one is resolved:
    /// delivered, dead-lettered or dropped.
    resolved: u64,
    stopped: bool,
}

#[derive(Default)]
struct WorkerCounters {
    sent: AtomicU64,
    batches_sent: AtomicU64,
    retried: AtomicU64,
    dead_lettered: AtomicU64,
    dead_letter_failures: AtomicU64,
}

struct Shared {
    queue: Mutex<Queue>,
    /// Wakes the worker: batch full, flush or shutdown requested.
    wake: Notify,
    /// Wakes the worker out of a send or a backoff when shutdown sets a
    /// deadline.
    deadline_set: Notify,
    progress: Mutex<Progress>,
    progress_cv: Condvar,
    progress_notify: Notify,
    counters: WorkerCounters,
    config: Config,
}

impl Shared {
    fn queue(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn progress(&self) -> MutexGuard<'_, Progress> {
        self.progress.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn deadline(&self) -> Option<Instant> {
        self.queue().deadline
    }

    fn publish(&self, update: impl FnOnce(&mut Progress)) {
        update(&mut self.progress());
        self.progress_cv.notify_all();
        self.progress_notify.notify_waiters();
    }

    /// Waits (async) until `done(progress)` holds; returns the progress.
    async fn wait_progress(&self, done: impl Fn(&Progress) -> bool) -> Progress {
        loop {
            let notified = self.progress_notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let p = *self.progress();
            if done(&p) {
                return p;
            }
            notified.await;
        }
    }

    /// Waits (blocking) until `done(progress)` holds or `timeout` passes.
    fn wait_progress_blocking(
        &self,
        timeout: Duration,
        done: impl Fn(&Progress) -> bool,
    ) -> Option<Progress> {
        let guard = self.progress();
        let (guard, _) = self
            .progress_cv
            .wait_timeout_while(guard, timeout, |p| !done(p))
            .unwrap_or_else(PoisonError::into_inner);
        done(&guard).then_some(*guard)
    }

    /// Closes the queue and sets (or brings forward) the shutdown deadline.
    fn begin_shutdown(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        {
            let mut q = self.queue();
            q.closed = true;
            q.deadline = Some(q.deadline.map_or(deadline, |d| d.min(deadline)));
        }
        self.wake.notify_one();
        self.deadline_set.notify_one();
    }

    fn stats(&self) -> BufferStats {
        let (enqueued, dropped, rejected, queued) = {
            let q = self.queue();
            (q.last_seq, q.dropped, q.rejected, q.len as u64)
        };
        let c = &self.counters;
        BufferStats {
            enqueued,
            sent: c.sent.load(Ordering::Relaxed),
            batches_sent: c.batches_sent.load(Ordering::Relaxed),
            retried: c.retried.load(Ordering::Relaxed),
            dropped,
            rejected,
            dead_lettered: c.dead_lettered.load(Ordering::Relaxed),
            dead_letter_failures: c.dead_letter_failures.load(Ordering::Relaxed),
            queued,
        }
    }
}

// ---------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------

#[derive(Clone)]
struct Config {
    capacity: usize,
    max_batch: usize,
    flush_interval: Duration,
    max_retries: u32,
    retry_base: Duration,
    retry_max: Duration,
    attempt_timeout: Duration,
    overflow: OverflowPolicy,
    drop_timeout: Duration,
}

/// Configures and starts an [`EventBuffer`]. See the `DEFAULT_*` constants
/// for defaults.
pub struct EventBufferBuilder {
    config: Config,
    dead_letter: Arc<dyn DeadLetterSink>,
    thread_name: String,
}

impl fmt::Debug for EventBufferBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventBufferBuilder")
            .field("capacity", &self.config.capacity)
            .field("max_batch", &self.config.max_batch)
            .field("flush_interval", &self.config.flush_interval)
            .field("max_retries", &self.config.max_retries)
            .field("overflow", &self.config.overflow)
            .finish_non_exhaustive()
    }
}

impl Default for EventBufferBuilder {
    fn default() -> Self {
        Self {
            config: Config {
                capacity: DEFAULT_QUEUE_CAPACITY,
                max_batch: MAX_BATCH_EVENTS,
                flush_interval: DEFAULT_FLUSH_INTERVAL,
                max_retries: DEFAULT_MAX_RETRIES,
                retry_base: DEFAULT_RETRY_BASE_DELAY,
                retry_max: DEFAULT_RETRY_MAX_DELAY,
                attempt_timeout: DEFAULT_ATTEMPT_TIMEOUT,
                overflow: OverflowPolicy::DropNewest,
                drop_timeout: DEFAULT_DROP_TIMEOUT,
            },
            dead_letter: Arc::new(LogDeadLetters),
            thread_name: "flagwire-events".to_owned(),
        }
    }
}

impl EventBufferBuilder {
    /// Most events the queue holds (default [`DEFAULT_QUEUE_CAPACITY`]).
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.config.capacity = capacity;
        self
    }

    /// Events per request and the queue length that triggers a flush:
    /// 1 to 100 (default 100, the capture service's limit).
    pub fn max_batch_size(mut self, size: usize) -> Self {
        self.config.max_batch = size;
        self
    }

    /// Time between periodic flushes (default 5 s).
    pub fn flush_interval(mut self, interval: Duration) -> Self {
        self.config.flush_interval = interval;
        self
    }

    /// Retries after the first attempt of a batch (default 3).
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.config.max_retries = retries;
        self
    }

    /// Backoff: the first retry waits `base` (plus up to 10% jitter), each
    /// further one twice as long, never more than `max` (defaults 1 s and
    /// 30 s). A `Retry-After` from the server replaces the computed delay,
    /// still capped by `max`.
    pub fn retry_backoff(mut self, base: Duration, max: Duration) -> Self {
        self.config.retry_base = base;
        self.config.retry_max = max;
        self
    }

    /// Limit on one send attempt; a slower attempt is abandoned and counts
    /// as a retryable failure (default 30 s).
    pub fn attempt_timeout(mut self, timeout: Duration) -> Self {
        self.config.attempt_timeout = timeout;
        self
    }

    /// What to do when the queue is full (default
    /// [`OverflowPolicy::DropNewest`]).
    pub fn overflow_policy(mut self, policy: OverflowPolicy) -> Self {
        self.config.overflow = policy;
        self
    }

    /// How long dropping the last handle waits for the final flush
    /// (default 5 s; zero only signals the worker).
    pub fn drop_timeout(mut self, timeout: Duration) -> Self {
        self.config.drop_timeout = timeout;
        self
    }

    /// Where undeliverable events go (default [`LogDeadLetters`]).
    pub fn dead_letter(mut self, sink: impl DeadLetterSink) -> Self {
        self.dead_letter = Arc::new(sink);
        self
    }

    /// The name of the background thread (default `flagwire-events`).
    pub fn thread_name(mut self, name: impl Into<String>) -> Self {
        self.thread_name = name.into();
        self
    }

    /// Checks the settings and starts the background thread, which runs its
    /// own current-thread Tokio runtime and delivers through `sender`.
    pub fn spawn(self, sender: impl BatchSender) -> Result<EventBuffer, BufferError> {
        let c = &self.config;
        if c.capacity == 0 {
            return Err(BufferError::InvalidConfig("capacity must be at least 1"));
        }
        if c.max_batch == 0 || c.max_batch > MAX_BATCH_EVENTS {
            return Err(BufferError::InvalidConfig(
                "max_batch_size must be between 1 and 100",
            ));
        }
        if c.flush_interval.is_zero() {
            return Err(BufferError::InvalidConfig(
                "flush_interval must not be zero",
            ));
        }
        if c.attempt_timeout.is_zero() {
            return Err(BufferError::InvalidConfig(
                "attempt_timeout must not be zero",
            ));
        }
        if c.retry_base > c.retry_max {
            return Err(BufferError::InvalidConfig(
                "retry base delay exceeds the maximum",
            ));
        }
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::new(self.config.max_batch)),
            wake: Notify::new(),
            deadline_set: Notify::new(),
            progress: Mutex::new(Progress::default()),
            progress_cv: Condvar::new(),
            progress_notify: Notify::new(),
            counters: WorkerCounters::default(),
            config: self.config,
        });
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(BufferError::Spawn)?;
        let worker = Worker {
            shared: shared.clone(),
            sender: Box::new(sender),
            sink: self.dead_letter,
            encoder: BatchEncoder::with_capacity(32 * 1024),
            batch: Chunk::with_capacity(shared.config.max_batch),
        };
        let thread_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name(self.thread_name)
            .spawn(move || {
                runtime.block_on(worker.run());
                runtime.shutdown_timeout(Duration::from_millis(100));
                thread_shared.publish(|p| p.stopped = true);
            })
            .map_err(BufferError::Spawn)?;
        Ok(EventBuffer {
            shared: shared.clone(),
            handle: Arc::new(HandleGuard {
                shared,
                worker_id: thread.thread().id(),
                thread: Mutex::new(Some(thread)),
            }),
        })
    }
}

// ---------------------------------------------------------------------------
// The handle
// ---------------------------------------------------------------------------

/// Lives as long as any [`EventBuffer`] clone; its `Drop` is the last-handle
/// flush.
struct HandleGuard {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
    worker_id: std::thread::ThreadId,
}

impl HandleGuard {
    /// Whether the caller is the worker itself (a sender or sink that held
    /// the last handle); it must never wait for itself.
    fn on_worker_thread(&self) -> bool {
        std::thread::current().id() == self.worker_id
    }

    /// Joins the worker thread once it has reported that it stopped (so the
    /// join cannot block for long).
    fn join_if_stopped(&self) {
        if !self.shared.progress().stopped || self.on_worker_thread() {
            return;
        }
        let thread = self
            .thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }
}

/// A bounded, batching, retrying queue of capture events, delivered by a
/// background thread.
///
/// * [`enqueue`](Self::enqueue) never blocks: it takes a short lock, pushes
///   the event and, when a batch is full, wakes the worker.
/// * The worker runs on its own thread with its own current-thread Tokio
///   runtime, so it needs nothing from the caller's runtime (or any
///   runtime) and keeps working when the caller's runtime shuts down.
/// * It flushes every `flush_interval` and whenever `max_batch_size` events
///   are waiting, sending requests of at most 100 events in enqueue order,
///   retrying retryable failures with exponential backoff and handing what
///   cannot be delivered to the dead-letter sink.
/// * [`flush`](Self::flush) waits until everything enqueued before the call
///   is delivered or dead-lettered; [`shutdown`](Self::shutdown) drains the
///   queue within a deadline and stops the thread. Dropping the last clone
///   shuts down with the configured `drop_timeout`.
///
/// Cloning is cheap; all clones share one queue and one worker.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use std::time::Duration;
/// use flagwire::events::{Batch, EventBuffer, SendError};
/// use flagwire_core::events::{ApiKey, EventEnvelope, TrackBody};
///
/// let received = Arc::new(Mutex::new(0usize));
/// let seen = received.clone();
/// let buffer = EventBuffer::builder()
///     .spawn(move |batch: Batch| {
///         *seen.lock().unwrap() += batch.len;
///         async { Ok::<(), SendError>(()) }
///     })?;
///
/// let key = ApiKey::new("sch_dev_example")?;
/// for _ in 0..250 {
///     let event = EventEnvelope::new(key.clone(), TrackBody::builder("api-call").build()?);
///     buffer.enqueue(event)?;
/// }
/// let report = buffer.shutdown_blocking(Duration::from_secs(5));
/// assert!(report.drained);
/// assert_eq!(*received.lock().unwrap(), 250);
/// assert_eq!(report.stats.sent, 250);
/// assert_eq!(report.stats.batches_sent, 3);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct EventBuffer {
    shared: Arc<Shared>,
    handle: Arc<HandleGuard>,
}

impl fmt::Debug for EventBuffer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventBuffer")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

/// The outcome of a shutdown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShutdownReport {
    /// Whether every event enqueued before the shutdown was resolved
    /// (delivered or dead-lettered) and the worker has stopped.
    pub drained: bool,
    /// The counters at the end.
    pub stats: BufferStats,
}

impl EventBuffer {
    /// Starts configuring a buffer.
    pub fn builder() -> EventBufferBuilder {
        EventBufferBuilder::default()
    }

    /// Queues an event for delivery without waiting.
    ///
    /// Fails with [`BufferError::Closed`] after shutdown began (counted as
    /// rejected) and with [`BufferError::QueueFull`] when the queue is full
    /// under [`OverflowPolicy::DropNewest`] (counted as dropped). Under
    /// [`OverflowPolicy::DropOldest`] a full queue discards its oldest event
    /// instead and this succeeds.
    #[inline]
    pub fn enqueue(&self, event: EventEnvelope) -> Result<(), BufferError> {
        let config = &self.shared.config;
        let mut q = self.shared.queue();
        if q.closed {
            q.rejected += 1;
            return Err(BufferError::Closed);
        }
        let mut displaced = None;
        if q.len >= config.capacity {
            q.dropped += 1;
            match config.overflow {
                OverflowPolicy::DropNewest => return Err(BufferError::QueueFull),
                OverflowPolicy::DropOldest => displaced = q.pop_oldest(),
            }
        }
        q.open.push_back(event);
        q.len += 1;
        q.last_seq += 1;
        let full = q.open.len() >= config.max_batch;
        if full {
            q.seal(config.max_batch);
        }
        drop(q);
        // Destroy a displaced event outside the lock.
        drop(displaced);
        if full {
            self.shared.wake.notify_one();
        }
        Ok(())
    }

    /// The counters right now.
    pub fn stats(&self) -> BufferStats {
        self.shared.stats()
    }

    /// Whether shutdown has begun.
    pub fn is_closed(&self) -> bool {
        self.shared.queue().closed
    }

    fn flush_target(&self) -> u64 {
        let target = self.shared.queue().last_seq;
        self.shared.wake.notify_one();
        target
    }

    /// Sends everything queued now and waits until every event enqueued
    /// before this call is delivered or dead-lettered (events dropped by
    /// the overflow policy count as resolved).
    ///
    /// Works from any async runtime. Fails with [`BufferError::Closed`] if
    /// the worker stopped first (after a shutdown whose deadline passed).
    /// Wrap it in a timeout to bound the wait.
    pub async fn flush(&self) -> Result<(), BufferError> {
        let target = self.flush_target();
        let p = self
            .shared
            .wait_progress(|p| p.resolved >= target || p.stopped)
            .await;
        if p.resolved >= target {
            Ok(())
        } else {
            Err(BufferError::Closed)
        }
    }

    /// [`flush`](Self::flush) for synchronous code: blocks the calling
    /// thread for at most `timeout` ([`BufferError::Timeout`] after that).
    /// It needs no runtime, and since the worker has its own thread it
    /// cannot deadlock even when called from inside one.
    pub fn flush_blocking(&self, timeout: Duration) -> Result<(), BufferError> {
        let target = self.flush_target();
        match self
            .shared
            .wait_progress_blocking(timeout, |p| p.resolved >= target || p.stopped)
        {
            Some(p) if p.resolved >= target => Ok(()),
            Some(_) => Err(BufferError::Closed),
            None => Err(BufferError::Timeout),
        }
    }

    /// Stops accepting events, delivers everything queued, and stops the
    /// worker, all within `timeout`. What is still undelivered when the
    /// deadline passes (including a batch whose attempt is cut short) goes
    /// to the dead-letter sink with [`DeadLetterReason::ShutdownTimeout`].
    ///
    /// Idempotent: later calls wait for the same stop (a shorter timeout
    /// brings the deadline forward). Clones stay usable for
    /// [`stats`](Self::stats); their `enqueue` calls are rejected.
    ///
    /// Works from any async runtime (it uses no runtime timer).
    pub async fn shutdown(&self, timeout: Duration) -> ShutdownReport {
        self.shared.begin_shutdown(timeout);
        let expired = Arc::new(AtomicBool::new(false));
        let watchdog = Watchdog::start(
            self.shared.clone(),
            expired.clone(),
            timeout + SHUTDOWN_GRACE,
        );
        self.shared
            .wait_progress(|p| p.stopped || expired.load(Ordering::Acquire))
            .await;
        drop(watchdog);
        self.finish_shutdown()
    }

    /// [`shutdown`](Self::shutdown) for synchronous code: blocks the calling
    /// thread for at most `timeout` plus a short grace period.
    pub fn shutdown_blocking(&self, timeout: Duration) -> ShutdownReport {
        self.shared.begin_shutdown(timeout);
        self.shared
            .wait_progress_blocking(timeout + SHUTDOWN_GRACE, |p| p.stopped);
        self.finish_shutdown()
    }

    fn finish_shutdown(&self) -> ShutdownReport {
        self.handle.join_if_stopped();
        let progress = *self.shared.progress();
        let stats = self.stats();
        let drained = progress.stopped && progress.resolved >= stats.enqueued;
        ShutdownReport { drained, stats }
    }
}

impl Drop for HandleGuard {
    /// The last clone is gone: shut down, waiting at most `drop_timeout`.
    fn drop(&mut self) {
        if self.shared.progress().stopped {
            self.join_if_stopped();
            return;
        }
        let timeout = self.shared.config.drop_timeout;
        self.shared.begin_shutdown(timeout);
        if timeout.is_zero() || self.on_worker_thread() {
            return;
        }
        if self
            .shared
            .wait_progress_blocking(timeout + SHUTDOWN_GRACE, |p| p.stopped)
            .is_some()
        {
            self.join_if_stopped();
        } else {
            tracing::warn!("event buffer did not finish its final flush before the drop timeout");
        }
    }
}

// ---------------------------------------------------------------------------
// The worker
// ---------------------------------------------------------------------------

struct Worker {
    shared: Arc<Shared>,
    sender: Box<dyn BatchSender>,
    sink: Arc<dyn DeadLetterSink>,
    encoder: BatchEncoder,
    /// The batch being delivered; its chunk goes back to the queue.
    batch: Chunk,
}

enum Attempt {
    Done(Result<(), SendError>),
    TimedOut,
    Deadline,
}

impl Worker {
    async fn run(mut self) {
        let interval = self.shared.config.flush_interval;
        let mut ticker = tokio::time::interval_at(Instant::now() + interval, interval);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            let closing = self.shared.queue().closed;
            if !closing {
                tokio::select! {
                    _ = ticker.tick() => {}
                    () = self.shared.wake.notified() => {}
                }
            }
            self.drain().await;
            let q = self.shared.queue();
            if q.closed && q.len == 0 {
                break;
            }
        }
    }

    /// Swaps the next batch off the queue into `out` (empty). The lock is
    /// held for the swap only; a chunk the queue does not keep is freed
    /// after it is released.
    fn take_batch(&self, out: &mut Chunk) {
        let unused = self.shared.queue().take_batch(out);
        drop(unused);
    }

    /// Publishes the watermark; only called when nothing is in flight.
    fn publish_resolved(&self) {
        let resolved = {
            let q = self.shared.queue();
            q.last_seq - q.len as u64
        };
        self.shared
            .publish(|p| p.resolved = p.resolved.max(resolved));
    }

    async fn drain(&mut self) {
        loop {
            let past_deadline = self.shared.deadline().is_some_and(|d| Instant::now() >= d);
            let mut batch = std::mem::take(&mut self.batch);
            self.take_batch(&mut batch);
            if batch.is_empty() {
                self.batch = batch;
                break;
            }
            let events: &[EventEnvelope] = batch.make_contiguous();
            if past_deadline {
                self.dead_letter(events, DeadLetterReason::ShutdownTimeout, None, 0);
            } else {
                self.deliver(events).await;
            }
            // Drop the events outside the queue lock; the chunk goes back to
            // the queue with the next swap.
            batch.clear();
            self.batch = batch;
            self.publish_resolved();
        }
        self.publish_resolved();
    }

    async fn deliver(&mut self, batch: &[EventEnvelope]) {
        let body = match self.encoder.encode(batch) {
            Ok(body) => body,
            Err(e) => {
                let msg = e.to_string();
                self.dead_letter(batch, DeadLetterReason::Encoding, Some((&msg, None)), 0);
                return;
            }
        };
        let config = &self.shared.config;
        let max_attempts = config.max_retries.saturating_add(1);
        let mut last: Option<SendError> = None;
        for attempt in 1..=max_attempts {
            if attempt > 1 {
                self.shared.counters.retried.fetch_add(1, Ordering::Relaxed);
            }
            let fut = self
                .sender
                .send(Batch::new(body.clone(), batch.len(), attempt));
            match self.attempt(fut).await {
                Attempt::Done(Ok(())) => {
                    let c = &self.shared.counters;
                    c.sent.fetch_add(batch.len() as u64, Ordering::Relaxed);
                    c.batches_sent.fetch_add(1, Ordering::Relaxed);
                    tracing::trace!(events = batch.len(), attempt, "event batch delivered");
                    return;
                }
                Attempt::Done(Err(e)) if !e.is_retryable() => {
                    let msg = e.to_string();
                    let detail = Some((msg.as_str(), e.status()));
                    self.dead_letter(batch, DeadLetterReason::Rejected, detail, attempt);
                    return;
                }
                Attempt::Done(Err(e)) => {
                    tracing::debug!(error = %e, attempt, "event batch attempt failed");
                    last = Some(e);
                }
                Attempt::TimedOut => {
                    last = Some(SendError::retryable("send attempt timed out"));
                }
                Attempt::Deadline => {
                    let msg = "shutdown deadline passed during a send attempt";
                    let status = last.as_ref().and_then(SendError::status);
                    let detail = Some((msg, status));
                    self.dead_letter(batch, DeadLetterReason::ShutdownTimeout, detail, attempt);
                    return;
                }
            }
            if attempt < max_attempts {
                let delay = self.backoff(attempt, last.as_ref());
                if !self.sleep(delay).await {
                    let (msg, status) = last_detail(last.as_ref());
                    let detail = Some((msg.as_str(), status));
                    self.dead_letter(batch, DeadLetterReason::ShutdownTimeout, detail, attempt);
                    return;
                }
            }
        }
        let (msg, status) = last_detail(last.as_ref());
        let detail = Some((msg.as_str(), status));
        self.dead_letter(
            batch,
            DeadLetterReason::RetriesExhausted,
            detail,
            max_attempts,
        );
    }

    fn backoff(&self, attempt: u32, last: Option<&SendError>) -> Duration {
        let c = &self.shared.config;
        if let Some(after) = last.and_then(SendError::retry_after) {
            return after.min(c.retry_max);
        }
        exponential_backoff(c.retry_base, c.retry_max, attempt, fastrand::f64() * 0.1)
    }

    /// Runs one attempt, bounded by the attempt timeout and the shutdown
    /// deadline (which may be set while the attempt is running).
    async fn attempt(
        &self,
        fut: futures_util::future::BoxFuture<'static, Result<(), SendError>>,
    ) -> Attempt {
        let attempt_deadline = Instant::now() + self.shared.config.attempt_timeout;
        let mut fut = fut;
        loop {
            let deadline = self.shared.deadline();
            let until = deadline.map_or(attempt_deadline, |d| d.min(attempt_deadline));
            tokio::select! {
                out = &mut fut => return Attempt::Done(out),
                () = tokio::time::sleep_until(until) => {
                    return if deadline.is_some_and(|d| d <= until) {
                        Attempt::Deadline
                    } else {
                        Attempt::TimedOut
                    };
                }
                () = self.shared.deadline_set.notified() => {}
            }
        }
    }

    /// Sleeps for `delay` unless the shutdown deadline comes first; returns
    /// whether the full delay elapsed before the deadline.
    async fn sleep(&self, delay: Duration) -> bool {
        let wake_at = Instant::now() + delay;
        loop {
            let deadline = self.shared.deadline();
            if deadline.is_some_and(|d| d < wake_at) {
                return false;
            }
            tokio::select! {
                () = tokio::time::sleep_until(wake_at) => return true,
                () = self.shared.deadline_set.notified() => {}
            }
        }
    }

    fn dead_letter(
        &self,
        events: &[EventEnvelope],
        reason: DeadLetterReason,
        detail: Option<(&str, Option<u16>)>,
        attempts: u32,
    ) {
        let letter = DeadLetter {
            events,
            reason,
            error: detail.map(|(m, _)| m),
            attempts,
            last_status: detail.and_then(|(_, s)| s),
            at: OffsetDateTime::now_utc(),
        };
        let c = &self.shared.counters;
        c.dead_lettered
            .fetch_add(events.len() as u64, Ordering::Relaxed);
        if let Err(e) = self.sink.dead_letter(&letter) {
            c.dead_letter_failures.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(error = %e, events = events.len(), "dead-letter sink failed");
        }
    }
}

/// Bounds an async wait without a runtime timer: a helper thread sets
/// `expired` and wakes the progress waiters after `limit`, unless dropped
/// first.
struct Watchdog {
    done: Arc<AtomicBool>,
    thread: Option<std::thread::Thread>,
}

impl Watchdog {
    fn start(shared: Arc<Shared>, expired: Arc<AtomicBool>, limit: Duration) -> Self {
        let done = Arc::new(AtomicBool::new(false));
        let done2 = done.clone();
        let spawned = std::thread::Builder::new()
            .name("flagwire-events-watchdog".into())
            .spawn(move || {
                let start = std::time::Instant::now();
                while !done2.load(Ordering::Acquire) {
                    let elapsed = start.elapsed();
                    if elapsed >= limit {
                        expired.store(true, Ordering::Release);
                        shared.publish(|_| {});
                        return;
                    }
                    std::thread::park_timeout(limit - elapsed);
                }
            });
        match spawned {
            Ok(handle) => Self {
                done,
                thread: Some(handle.thread().clone()),
            },
            // Without a watchdog the wait relies on the worker's own
            // deadline, which it enforces unless its thread is blocked.
            Err(_) => Self { done, thread: None },
        }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.done.store(true, Ordering::Release);
        if let Some(thread) = &self.thread {
            thread.unpark();
        }
    }
}

fn last_detail(last: Option<&SendError>) -> (String, Option<u16>) {
    match last {
        Some(e) => (e.to_string(), e.status()),
        None => ("no attempt completed".to_owned(), None),
    }
}

/// `base × 2^(attempt − 1)`, plus `jitter` (a fraction of it), capped at
/// `max`; saturating, so no configuration can make it overflow.
fn exponential_backoff(base: Duration, max: Duration, attempt: u32, jitter: f64) -> Duration {
    let factor = 1u32
        .checked_shl(attempt.saturating_sub(1))
        .unwrap_or(u32::MAX);
    let delay = base.saturating_mul(factor);
    delay.saturating_add(delay.mul_f64(jitter)).min(max)
}

#[cfg(test)]
mod tests {
    use super::*;
    use flagwire_core::events::{ApiKey, TrackBody};

    fn event(i: i64) -> EventEnvelope {
        let body = TrackBody::builder("e").quantity(i).build().unwrap();
        EventEnvelope::new(ApiKey::new("sch_dev_k").unwrap(), body)
    }

    fn quantities(chunk: &Chunk) -> Vec<i64> {
        chunk
            .iter()
            .map(|e| match e.body() {
                flagwire_core::events::EventBody::Track(t) => t.quantity().unwrap(),
                _ => unreachable!(),
            })
            .collect()
    }

    fn push(q: &mut Queue, i: i64, max_batch: usize) {
        q.open.push_back(event(i));
        q.len += 1;
        if q.open.len() >= max_batch {
            q.seal(max_batch);
        }
    }

    #[test]
    fn batches_come_out_whole_and_in_order_and_chunks_are_reused() {
        let mut q = Queue::new(3);
        for i in 0..8 {
            push(&mut q, i, 3);
        }
        assert_eq!((q.sealed.len(), q.open.len(), q.len), (2, 2, 8));
        let mut out = Chunk::with_capacity(3);
        let mut taken = Vec::new();
        loop {
            assert!(q.take_batch(&mut out).is_none());
            if out.is_empty() {
                break;
            }
            taken.push(quantities(&out));
            out.clear();
        }
        assert_eq!(taken, [vec![0, 1, 2], vec![3, 4, 5], vec![6, 7]]);
        assert_eq!(q.len, 0);
        // The emptied chunks wait for reuse; sealing the next batch takes one.
        let spare = q.spare.len();
        assert!(spare >= 1);
        for i in 8..11 {
            push(&mut q, i, 3);
        }
        assert_eq!(q.spare.len(), spare - 1);
        assert!(q.open.capacity() >= 3);
    }

    #[test]
    fn drop_oldest_takes_from_the_oldest_sealed_batch_first() {
        let mut q = Queue::new(2);
        for i in 0..5 {
            push(&mut q, i, 2);
        }
        let dropped: Vec<i64> = (0..3)
            .map(|_| match q.pop_oldest().unwrap().body() {
                flagwire_core::events::EventBody::Track(t) => t.quantity().unwrap(),
                _ => unreachable!(),
            })
            .collect();
        assert_eq!(dropped, [0, 1, 2]);
        assert_eq!(q.len, 2);
        let mut out = Chunk::with_capacity(2);
        q.take_batch(&mut out);
        assert_eq!(quantities(&out), [3]);
        out.clear();
        q.take_batch(&mut out);
        assert_eq!(quantities(&out), [4]);
        out.clear();
        assert!(q.pop_oldest().is_none());
        assert_eq!(q.len, 0);
    }

    #[test]
    fn the_spare_list_is_bounded() {
        let mut q = Queue::new(1);
        for i in 0..(MAX_SPARE_CHUNKS as i64 + 10) {
            push(&mut q, i, 1);
        }
        let mut out = Chunk::with_capacity(1);
        let mut freed = 0;
        while q.len > 0 {
            freed += usize::from(q.take_batch(&mut out).is_some());
            out.clear();
        }
        assert_eq!(q.spare.len(), MAX_SPARE_CHUNKS);
        assert!(freed >= 9);
    }

    #[test]
    fn backoff_doubles_caps_and_saturates() {
        let ms = Duration::from_millis;
        assert_eq!(exponential_backoff(ms(100), ms(10_000), 1, 0.0), ms(100));
        assert_eq!(exponential_backoff(ms(100), ms(10_000), 3, 0.0), ms(400));
        assert_eq!(exponential_backoff(ms(100), ms(10_000), 3, 0.05), ms(420));
        assert_eq!(
            exponential_backoff(ms(100), ms(10_000), 40, 0.0),
            ms(10_000)
        );
        // Absurd settings reach the cap instead of overflowing.
        let huge = Duration::from_secs(1 << 40);
        assert_eq!(
            exponential_backoff(huge, Duration::MAX, 64, 0.099),
            Duration::MAX
        );
        assert_eq!(
            exponential_backoff(Duration::MAX, Duration::MAX, 1, 0.099),
            Duration::MAX
        );
    }
}
