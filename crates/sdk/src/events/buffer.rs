//! The event buffer: its settings, its handle and the state it shares with
//! the delivery worker and the spool's commit thread.

use std::cell::RefCell;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use flagwire_core::events::{ApiKey, EventEnvelope, EventError, MAX_BATCH_EVENTS};
use tokio::sync::Notify;
use tokio::time::Instant;

use super::BatchSender;
use super::deadletter::{DeadLetterSink, GuardedSink, StderrDeadLetters};
use super::queue::{Queue, same_key};
use super::spool::{RECORD_OVERHEAD, Recovery, Spool, SpoolConfig, SpoolError};
use super::worker::{Worker, commit_loop};

/// Default bound of the queue, in events.
pub const DEFAULT_QUEUE_CAPACITY: usize = 200_000;
/// Default bound of the queue, in bytes of queued events (their compact
/// JSON).
pub const DEFAULT_QUEUE_BYTES: usize = 64 * 1024 * 1024;
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
/// Default time the last handle's `Drop` waits for the final flush (outside
/// async code; see [`EventBuffer`]).
pub const DEFAULT_DROP_TIMEOUT: Duration = Duration::from_secs(5);
/// Default number of batches in flight at once.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 16;
/// The largest event accepted, in bytes of compact JSON.
pub const MAX_EVENT_BYTES: usize = 4 * 1024 * 1024;

/// What [`EventBuffer::enqueue`] does when the queue is full. Either way the
/// caller never waits, and the events that lose their place go to the
/// dead-letter sink and are counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum OverflowPolicy {
    /// Refuse the new event ([`BufferError::QueueFull`]; it goes to the
    /// dead-letter sink as [`DeadLetterReason::QueueFull`]); what is queued
    /// stays. The default.
    ///
    /// [`DeadLetterReason::QueueFull`]: super::DeadLetterReason::QueueFull
    #[default]
    DropNewest,
    /// Accept the new event and displace the oldest queued one (to the
    /// dead-letter sink as [`DeadLetterReason::Displaced`]). With a spool,
    /// the oldest events on disk are displaced; if events pile up in memory
    /// faster than the disk takes them, new events are refused instead.
    ///
    /// [`DeadLetterReason::Displaced`]: super::DeadLetterReason::Displaced
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
    /// The spool could not be opened.
    Spool(SpoolError),
    /// The queue was full and the event was refused (it went to the
    /// dead-letter sink and is counted in [`BufferStats::refused`]).
    QueueFull,
    /// The buffer is shut down (or shutting down) and takes no more events,
    /// or stopped before a flush could complete.
    Closed,
    /// A blocking wait ran out of time.
    Timeout,
    /// The event could not be encoded.
    Encode(EventError),
    /// The event is larger than [`MAX_EVENT_BYTES`].
    EventTooLarge {
        /// Its size in bytes.
        size: usize,
    },
    /// The buffer spools events and the event carries another API key than
    /// the spool's.
    ApiKeyMismatch,
}

impl fmt::Display for BufferError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidConfig(what) => write!(f, "invalid event buffer setting: {what}"),
            Self::Spawn(e) => write!(f, "could not start the event buffer thread: {e}"),
            Self::Spool(e) => write!(f, "could not open the event spool: {e}"),
            Self::QueueFull => f.write_str("event queue is full; event refused (dead-lettered)"),
            Self::Closed => f.write_str("event buffer is shut down"),
            Self::Timeout => f.write_str("timed out waiting for the event buffer"),
            Self::Encode(e) => write!(f, "could not encode the event: {e}"),
            Self::EventTooLarge { size } => write!(
                f,
                "the event is {size} bytes long; at most {MAX_EVENT_BYTES} are accepted"
            ),
            Self::ApiKeyMismatch => {
                f.write_str("the event's API key is not the key of the buffer's spool")
            }
        }
    }
}

impl std::error::Error for BufferError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Spawn(e) => Some(e),
            Self::Spool(e) => Some(e),
            Self::Encode(e) => Some(e),
            _ => None,
        }
    }
}

/// A snapshot of the buffer's counters: where every event went.
///
/// When the buffer is idle (after [`flush`](EventBuffer::flush) or
/// [`shutdown`](EventBuffer::shutdown)) they satisfy
///
/// ```text
/// enqueued + refused = sent + dead_lettered + lost + queued
/// ```
///
/// every accepted or refused event is delivered, handed to the dead-letter
/// sink, counted as lost (only when the sink fell too far behind), or still
/// queued (in memory, in flight or in the spool). While the buffer works,
/// the counters are read one after the other and may be a few events apart.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BufferStats {
    /// Events accepted (`enqueue` returned `Ok`), including those recovered
    /// from the spool at start-up.
    pub enqueued: u64,
    /// Of `enqueued`: events a previous run left in the spool.
    pub recovered: u64,
    /// Events delivered (their batch got a 2xx).
    pub sent: u64,
    /// Batches delivered.
    pub batches_sent: u64,
    /// Retry attempts made (per batch, not per event).
    pub retried: u64,
    /// Events handed to the dead-letter sink: undeliverable, refused,
    /// displaced, or left at a shutdown deadline without a spool.
    pub dead_lettered: u64,
    /// Events refused because the queue was full (`QueueFull`); each was
    /// handed to the sink too.
    pub refused: u64,
    /// Accepted events displaced by a newer one under
    /// [`OverflowPolicy::DropOldest`]; each was handed to the sink too.
    pub displaced: u64,
    /// `refused + displaced`.
    pub dropped: u64,
    /// Events refused because the buffer was shut down (`Closed`); the
    /// caller got them back as an error, they are in no other counter.
    pub rejected: u64,
    /// Events the dead-letter sink failed to take (error or panic); they
    /// went to the fallback (standard error) and are in `dead_lettered`.
    pub dead_letter_failures: u64,
    /// Refused or displaced events that could not be recorded because the
    /// dead-letter backlog was full (the sink was too slow), or that were
    /// still waiting for the sink when a shutdown's deadline passed.
    /// Reported once on standard error.
    pub lost: u64,
    /// Events accepted and not yet resolved: in memory, in flight, waiting
    /// for the sink, or in the spool.
    pub queued: u64,
    /// Of `queued`: events written to the spool and not yet resolved.
    pub spooled: u64,
    /// Events written to the spool since start.
    pub committed: u64,
    /// Spool commits that failed (the events stayed in memory and were
    /// written again).
    pub spool_errors: u64,
    /// Spool segments whose end was torn or damaged at start-up (a crash
    /// in the middle of a write); what they held there was skipped.
    pub torn_tails: u64,
    /// Heap bytes the in-memory queue holds: the chunks of queued and
    /// backlogged events (their compact JSON and 4-byte offsets) and the
    /// spare chunks kept for reuse. Batches in flight are not included.
    pub memory_bytes: u64,
}

// ---------------------------------------------------------------------------
// Shared state
// ---------------------------------------------------------------------------

/// Everything under the buffer's lock.
pub(crate) struct State {
    pub(crate) queue: Queue,
    pub(crate) closed: bool,
    /// Set by shutdown: everything must be done by then.
    pub(crate) deadline: Option<Instant>,
    /// The largest sequence number a pending flush waits for: partial
    /// batches go out (and the spool commits) until it is resolved.
    pub(crate) flush_upto: u64,
    pub(crate) enqueued: u64,
    pub(crate) refused: u64,
    pub(crate) displaced: u64,
    pub(crate) rejected: u64,
    pub(crate) lost: u64,
    /// The spool's commit thread was asked to commit at once.
    pub(crate) commit_now: bool,
    /// The worker has stopped (the commit thread finishes after it).
    pub(crate) worker_done: bool,
}

#[derive(Clone, Copy, Default)]
pub(crate) struct Progress {
    /// Every accepted event with a sequence number up to this one is
    /// resolved: delivered or dead-lettered.
    pub(crate) resolved: u64,
    /// Backlogged events handed to the sink so far.
    pub(crate) backlog_done: u64,
    pub(crate) stopped: bool,
}

#[derive(Default)]
pub(crate) struct WorkerCounters {
    pub(crate) sent: AtomicU64,
    pub(crate) batches_sent: AtomicU64,
    pub(crate) retried: AtomicU64,
    pub(crate) dead_lettered: AtomicU64,
    pub(crate) dead_letter_failures: AtomicU64,
    /// Lost by the worker (backlog left at the deadline).
    pub(crate) lost: AtomicU64,
    /// Events the worker holds outside the queue and the spool's books:
    /// batches in flight or waiting to be retried (memory mode), runs being
    /// handed to the sink.
    pub(crate) held: AtomicU64,
}

pub(crate) struct Shared {
    state: Mutex<State>,
    /// Wakes the commit thread.
    pub(crate) commit_cv: Condvar,
    /// Wakes the worker: batch full, flush, shutdown, spool commit.
    pub(crate) wake: Notify,
    /// Wakes the worker out of a send or a backoff when shutdown sets a
    /// deadline.
    pub(crate) deadline_set: Notify,
    progress: Mutex<Progress>,
    progress_cv: Condvar,
    progress_notify: Notify,
    pub(crate) counters: WorkerCounters,
    pub(crate) config: Config,
    pub(crate) spool: Option<Spool>,
    pub(crate) recovery: Recovery,
    lost_warned: AtomicBool,
    /// The sender, also used by replays.
    sender: Arc<dyn BatchSender>,
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn progress(&self) -> MutexGuard<'_, Progress> {
        self.progress.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn publish(&self, update: impl FnOnce(&mut Progress)) {
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
    fn begin_shutdown(&self, timeout: Duration) -> Instant {
        let deadline = Instant::now() + timeout;
        let deadline = {
            let mut st = self.lock();
            st.closed = true;
            st.commit_now = true;
            let d = st.deadline.map_or(deadline, |d| d.min(deadline));
            st.deadline = Some(d);
            d
        };
        self.commit_cv.notify_all();
        self.wake.notify_one();
        self.deadline_set.notify_one();
        deadline
    }

    pub(crate) fn note_lost(&self, n: u64) {
        if n > 0 && !self.lost_warned.swap(true, Ordering::AcqRel) {
            tracing::error!(
                events = n,
                "events lost: the dead-letter sink fell too far behind"
            );
            eprintln!(
                "flagwire: {n} capture event(s) were refused or displaced while the dead-letter \
                 sink was too far behind to take them; they are lost (BufferStats::lost counts \
                 every one). Reported once."
            );
        }
    }

    pub(crate) fn stats(&self) -> BufferStats {
        let c = &self.counters;
        let st = self.lock();
        let (enqueued, refused, displaced, rejected, lost_q) =
            (st.enqueued, st.refused, st.displaced, st.rejected, st.lost);
        let in_memory = (st.queue.len + st.queue.backlog_len) as u64;
        let memory_bytes = st.queue.heap_bytes() as u64;
        drop(st);
        let spooled = self.spool.as_ref().map_or(0, Spool::unresolved);
        BufferStats {
            enqueued,
            recovered: self.recovery.events,
            sent: c.sent.load(Ordering::Relaxed),
            batches_sent: c.batches_sent.load(Ordering::Relaxed),
            retried: c.retried.load(Ordering::Relaxed),
            dead_lettered: c.dead_lettered.load(Ordering::Relaxed),
            refused,
            displaced,
            dropped: refused + displaced,
            rejected,
            dead_letter_failures: c.dead_letter_failures.load(Ordering::Relaxed),
            lost: lost_q + c.lost.load(Ordering::Relaxed),
            queued: in_memory + c.held.load(Ordering::Relaxed) + spooled,
            spooled,
            committed: self
                .spool
                .as_ref()
                .map_or(0, |s| s.committed.load(Ordering::Relaxed)),
            spool_errors: self
                .spool
                .as_ref()
                .map_or(0, |s| s.errors.load(Ordering::Relaxed)),
            torn_tails: self.recovery.torn_tails,
            memory_bytes,
        }
    }
}

// ---------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------

#[derive(Clone)]
pub(crate) struct Config {
    pub(crate) capacity: usize,
    pub(crate) max_bytes: usize,
    pub(crate) max_batch: usize,
    pub(crate) max_in_flight: usize,
    pub(crate) flush_interval: Duration,
    pub(crate) max_retries: u32,
    pub(crate) retry_base: Duration,
    pub(crate) retry_max: Duration,
    pub(crate) attempt_timeout: Duration,
    pub(crate) overflow: OverflowPolicy,
    pub(crate) drop_timeout: Duration,
}

/// Configures and starts an [`EventBuffer`]. See the `DEFAULT_*` constants
/// for defaults.
pub struct EventBufferBuilder {
    config: Config,
    dead_letter: Box<dyn DeadLetterSink>,
    thread_name: String,
    spool: Option<SpoolConfig>,
    api_key: Option<ApiKey>,
}

impl fmt::Debug for EventBufferBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventBufferBuilder")
            .field("capacity", &self.config.capacity)
            .field("max_bytes", &self.config.max_bytes)
            .field("max_batch", &self.config.max_batch)
            .field("max_in_flight", &self.config.max_in_flight)
            .field("flush_interval", &self.config.flush_interval)
            .field("max_retries", &self.config.max_retries)
            .field("overflow", &self.config.overflow)
            .field("spool", &self.spool)
            .finish_non_exhaustive()
    }
}

impl Default for EventBufferBuilder {
    fn default() -> Self {
        Self {
            config: Config {
                capacity: DEFAULT_QUEUE_CAPACITY,
                max_bytes: DEFAULT_QUEUE_BYTES,
                max_batch: MAX_BATCH_EVENTS,
                max_in_flight: DEFAULT_MAX_IN_FLIGHT,
                flush_interval: DEFAULT_FLUSH_INTERVAL,
                max_retries: DEFAULT_MAX_RETRIES,
                retry_base: DEFAULT_RETRY_BASE_DELAY,
                retry_max: DEFAULT_RETRY_MAX_DELAY,
                attempt_timeout: DEFAULT_ATTEMPT_TIMEOUT,
                overflow: OverflowPolicy::DropNewest,
                drop_timeout: DEFAULT_DROP_TIMEOUT,
            },
            dead_letter: Box::new(StderrDeadLetters::new()),
            thread_name: "flagwire-events".to_owned(),
            spool: None,
            api_key: None,
        }
    }
}

impl EventBufferBuilder {
    /// Most events the queue holds in memory (default
    /// [`DEFAULT_QUEUE_CAPACITY`]).
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.config.capacity = capacity;
        self
    }

    /// Most bytes of queued events held in memory (default
    /// [`DEFAULT_QUEUE_BYTES`]); a queued event costs its compact JSON plus
    /// 4 bytes.
    pub fn max_queue_bytes(mut self, bytes: usize) -> Self {
        self.config.max_bytes = bytes;
        self
    }

    /// Events per request and the number of waiting events that triggers a
    /// send: 1 to 100 (default 100, the capture service's limit).
    pub fn max_batch_size(mut self, size: usize) -> Self {
        self.config.max_batch = size;
        self
    }

    /// Most batches in flight at once (default
    /// [`DEFAULT_MAX_IN_FLIGHT`]). While the capture host fails, a single
    /// batch probes it at a time.
    pub fn max_in_flight(mut self, batches: usize) -> Self {
        self.config.max_in_flight = batches;
        self
    }

    /// Time between periodic flushes of a partial batch (default 5 s).
    pub fn flush_interval(mut self, interval: Duration) -> Self {
        self.config.flush_interval = interval;
        self
    }

    /// Retries after the first attempt of a batch (default 3). With a
    /// spool, attempts made while the host is failing do not count: spooled
    /// events wait for the host.
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.config.max_retries = retries;
        self
    }

    /// Backoff after a failed attempt, shared by all batches: the first
    /// retry waits `base` (plus up to 10% jitter), each further consecutive
    /// failure twice as long, never more than `max` (defaults 1 s and
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

    /// How long dropping the last handle waits for the final flush outside
    /// async code (default 5 s; zero only signals the worker). Inside an
    /// async runtime the drop never waits.
    pub fn drop_timeout(mut self, timeout: Duration) -> Self {
        self.config.drop_timeout = timeout;
        self
    }

    /// Where undeliverable events go (default [`StderrDeadLetters`]).
    pub fn dead_letter(mut self, sink: impl DeadLetterSink) -> Self {
        self.dead_letter = Box::new(sink);
        self
    }

    /// Keeps accepted events in a durable spool on disk until the capture
    /// host acknowledges them; see [`SpoolConfig`]. Needs the
    /// [`api_key`](Self::api_key) the spooled events are sent with.
    pub fn spool(mut self, spool: SpoolConfig) -> Self {
        self.spool = Some(spool);
        self
    }

    /// The API key of the events (required with a spool: events recovered
    /// after a restart are sent with it, and only events with this key are
    /// accepted).
    pub fn api_key(mut self, key: ApiKey) -> Self {
        self.api_key = Some(key);
        self
    }

    /// The name of the background thread (default `flagwire-events`).
    pub fn thread_name(mut self, name: impl Into<String>) -> Self {
        self.thread_name = name.into();
        self
    }

    fn validate(&self) -> Result<(), BufferError> {
        let c = &self.config;
        let invalid = |what| Err(BufferError::InvalidConfig(what));
        if c.capacity == 0 {
            return invalid("capacity must be at least 1");
        }
        if c.max_bytes == 0 {
            return invalid("max_queue_bytes must be at least 1");
        }
        if c.max_batch == 0 || c.max_batch > MAX_BATCH_EVENTS {
            return invalid("max_batch_size must be between 1 and 100");
        }
        if c.max_in_flight == 0 {
            return invalid("max_in_flight must be at least 1");
        }
        if c.flush_interval.is_zero() {
            return invalid("flush_interval must not be zero");
        }
        if c.attempt_timeout.is_zero() {
            return invalid("attempt_timeout must not be zero");
        }
        if c.retry_base > c.retry_max {
            return invalid("retry base delay exceeds the maximum");
        }
        if let Some(spool) = &self.spool {
            spool.validate().map_err(BufferError::InvalidConfig)?;
            if self.api_key.is_none() {
                return invalid("a spool needs the API key its events are sent with");
            }
        }
        Ok(())
    }

    /// Checks the settings, opens the spool (recovering what a previous run
    /// left) and starts the background thread, which runs its own
    /// current-thread Tokio runtime and delivers through `sender`.
    pub fn spawn(self, sender: impl BatchSender) -> Result<EventBuffer, BufferError> {
        self.validate()?;
        let (spool, recovery) = match (self.spool, self.api_key) {
            (Some(config), Some(key)) => {
                let (spool, recovery) = Spool::open(config, key).map_err(BufferError::Spool)?;
                (Some(spool), recovery)
            }
            _ => (None, Recovery::default()),
        };
        if recovery.events > 0 {
            tracing::info!(
                events = recovery.events,
                torn_tails = recovery.torn_tails,
                "resuming delivery of spooled events"
            );
        }
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                queue: Queue::new(recovery.events + 1),
                closed: false,
                deadline: None,
                flush_upto: 0,
                enqueued: recovery.events,
                refused: 0,
                displaced: 0,
                rejected: 0,
                lost: 0,
                commit_now: false,
                worker_done: false,
            }),
            commit_cv: Condvar::new(),
            wake: Notify::new(),
            deadline_set: Notify::new(),
            progress: Mutex::new(Progress::default()),
            progress_cv: Condvar::new(),
            progress_notify: Notify::new(),
            counters: WorkerCounters::default(),
            config: self.config,
            spool,
            recovery,
            lost_warned: AtomicBool::new(false),
            sender: Arc::new(sender),
        });
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(BufferError::Spawn)?;
        let committer = match &shared.spool {
            Some(_) => {
                let shared = shared.clone();
                Some(
                    std::thread::Builder::new()
                        .name(format!("{}-spool", self.thread_name))
                        .spawn(move || commit_loop(&shared))
                        .map_err(BufferError::Spawn)?,
                )
            }
            None => None,
        };
        let worker = Worker::new(
            shared.clone(),
            shared.sender.clone(),
            GuardedSink::new(self.dead_letter),
        );
        let thread_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name(self.thread_name)
            .spawn(move || {
                runtime.block_on(worker.run());
                runtime.shutdown_timeout(Duration::from_millis(100));
                let spooling = thread_shared.spool.is_some();
                thread_shared.lock().worker_done = true;
                thread_shared.commit_cv.notify_all();
                if !spooling {
                    thread_shared.publish(|p| p.stopped = true);
                }
            });
        let thread = match thread {
            Ok(t) => t,
            Err(e) => {
                // Stop the commit thread again.
                {
                    let mut st = shared.lock();
                    st.closed = true;
                    st.worker_done = true;
                }
                shared.commit_cv.notify_all();
                if let Some(c) = committer {
                    let _ = c.join();
                }
                return Err(BufferError::Spawn(e));
            }
        };
        Ok(EventBuffer {
            shared: shared.clone(),
            handle: Arc::new(HandleGuard {
                shared,
                worker_id: thread.thread().id(),
                threads: Mutex::new(vec![Some(thread), committer]),
            }),
        })
    }
}

// ---------------------------------------------------------------------------
// The handle
// ---------------------------------------------------------------------------

/// Lives as long as any [`EventBuffer`] clone; its `Drop` is the last-handle
/// shutdown.
struct HandleGuard {
    shared: Arc<Shared>,
    threads: Mutex<Vec<Option<JoinHandle<()>>>>,
    worker_id: std::thread::ThreadId,
}

impl HandleGuard {
    /// Whether the caller is the worker itself (a sender or sink that held
    /// the last handle); it must never wait for itself.
    fn on_worker_thread(&self) -> bool {
        std::thread::current().id() == self.worker_id
    }

    /// Joins the threads once they have reported that they stopped (so the
    /// join cannot block for long).
    fn join_if_stopped(&self) {
        if !self.shared.progress().stopped || self.on_worker_thread() {
            return;
        }
        let threads: Vec<_> = self
            .threads
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter_mut()
            .filter_map(Option::take)
            .collect();
        for thread in threads {
            let _ = thread.join();
        }
    }
}

impl Drop for HandleGuard {
    /// The last clone is gone: shut down. Outside async code this waits at
    /// most `drop_timeout`; inside an async runtime it never waits (the
    /// delivery thread drains on its own), so an executor thread is never
    /// blocked.
    fn drop(&mut self) {
        if self.shared.progress().stopped {
            self.join_if_stopped();
            return;
        }
        let timeout = self.shared.config.drop_timeout;
        self.shared.begin_shutdown(timeout);
        let in_async = tokio::runtime::Handle::try_current().is_ok();
        if timeout.is_zero() || in_async || self.on_worker_thread() {
            return;
        }
        if self
            .shared
            .wait_progress_blocking(timeout, |p| p.stopped)
            .is_some()
        {
            self.join_if_stopped();
        } else {
            tracing::warn!("event buffer did not finish its final flush before the drop timeout");
        }
    }
}

thread_local! {
    /// Where `enqueue` serializes an event before taking the lock.
    static SCRATCH: RefCell<Vec<u8>> = RefCell::new(Vec::with_capacity(1024));
}

/// A bounded, batching, retrying queue of capture events, delivered by a
/// background thread.
///
/// * [`enqueue`](Self::enqueue) never blocks: it serializes the event to
///   compact JSON, takes a short lock and appends it; when a batch is full,
///   it wakes the worker.
/// * The worker runs on its own thread with its own current-thread Tokio
///   runtime, so it needs nothing from the caller's runtime (or any
///   runtime) and keeps working when the caller's runtime shuts down.
/// * It sends every full batch at once (up to
///   [`max_in_flight`](EventBufferBuilder::max_in_flight) in flight) and a
///   partial one every `flush_interval`. Batches hold at most 100 events in
///   enqueue order. Retryable failures share one backoff, so an outage
///   costs one probe per backoff step, not one per batch.
/// * What cannot be delivered goes to the dead-letter sink, and so do
///   events refused or displaced by the overflow policy; [`BufferStats`]
///   says where every event went.
/// * With a [spool](EventBufferBuilder::spool), events are written to disk
///   and delivered from there, and survive a crash or a restart.
/// * [`flush`](Self::flush) waits until everything enqueued before the call
///   is delivered or dead-lettered; [`shutdown`](Self::shutdown) drains
///   within a deadline it never overruns, dead-letters (or leaves in the
///   spool) what is left, and reports it. Dropping the last clone shuts
///   down too; it waits at most `drop_timeout` in synchronous code and not
///   at all inside an async runtime.
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
/// assert!(report.drained && report.stopped);
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
    /// Whether the drain completed: the buffer stopped and no accepted
    /// event is left (each was delivered or handed to the dead-letter sink).
    pub drained: bool,
    /// Whether the worker (and the spool's commit thread) stopped within
    /// the deadline. When `true`, nothing sends or writes any more; `false`
    /// only when a sender or sink blocked past the deadline.
    pub stopped: bool,
    /// Events left in the spool, delivered by the next buffer on the same
    /// spool directory.
    pub left_in_spool: u64,
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
    /// Errors:
    /// * [`BufferError::QueueFull`] when the queue is full under
    ///   [`OverflowPolicy::DropNewest`] (the event goes to the dead-letter
    ///   sink, counted as refused); under [`OverflowPolicy::DropOldest`] the
    ///   oldest event is displaced instead and this succeeds;
    /// * [`BufferError::Closed`] after shutdown began (counted as rejected);
    /// * [`BufferError::EventTooLarge`], [`BufferError::Encode`],
    ///   [`BufferError::ApiKeyMismatch`] for an event that cannot be queued.
    #[inline]
    pub fn enqueue(&self, event: EventEnvelope) -> Result<(), BufferError> {
        self.enqueue_ref(&event)
    }

    /// [`enqueue`](Self::enqueue) from a borrowed envelope: the event is
    /// copied into the queue as compact JSON, so the caller keeps (and
    /// frees) the envelope.
    #[inline]
    pub(crate) fn enqueue_ref(&self, event: &EventEnvelope) -> Result<(), BufferError> {
        if let Some(spool) = &self.shared.spool
            && !same_key(spool.key(), event.api_key())
        {
            return Err(BufferError::ApiKeyMismatch);
        }
        SCRATCH.with(|scratch| {
            let mut buf = scratch.borrow_mut();
            buf.clear();
            event
                .write_keyless_json(&mut buf)
                .map_err(BufferError::Encode)?;
            let result = self.enqueue_encoded(event.api_key(), &buf);
            if buf.capacity() > 64 * 1024 {
                buf.shrink_to(1024);
            }
            result
        })
    }

    fn enqueue_encoded(&self, key: &ApiKey, event: &[u8]) -> Result<(), BufferError> {
        let size = event.len();
        if size > MAX_EVENT_BYTES {
            return Err(BufferError::EventTooLarge { size });
        }
        let shared = &*self.shared;
        let config = &shared.config;
        let mut lost = 0;
        let mut displaced = false;
        let mut st = shared.lock();
        if st.closed {
            st.rejected += 1;
            return Err(BufferError::Closed);
        }
        let backlog_room = |len: usize, bytes: usize, size: usize| {
            len < config.capacity && bytes + size <= config.max_bytes
        };
        let memory_fits = |q: &Queue| backlog_room(q.len, q.bytes, size);
        let mut spool_over = false;
        if let Some(spool) = &shared.spool {
            let live = spool.live_bytes.load(Ordering::Relaxed);
            let pending = (st.queue.bytes + st.queue.len * RECORD_OVERHEAD) as u64;
            spool_over =
                live + pending + (size + RECORD_OVERHEAD) as u64 > spool.config().max_bytes;
        }
        let result = if memory_fits(&st.queue) && !spool_over {
            Ok(())
        } else if config.overflow == OverflowPolicy::DropOldest && shared.spool.is_none() {
            // Displace the oldest events until the new one fits.
            let mut outcome = Ok(());
            while !memory_fits(&st.queue) {
                match st.queue.displace_oldest(config.max_batch, backlog_room) {
                    Some((_, recorded)) => {
                        st.displaced += 1;
                        displaced = true;
                        if !recorded {
                            st.lost += 1;
                            lost += 1;
                        }
                    }
                    None => {
                        outcome = Err(BufferError::QueueFull);
                        break;
                    }
                }
            }
            outcome
        } else if config.overflow == OverflowPolicy::DropOldest && memory_fits(&st.queue) {
            // The spool is over its bound: the worker displaces the oldest
            // spooled events; the new one is taken.
            Ok(())
        } else {
            Err(BufferError::QueueFull)
        };
        if let Err(e) = result {
            st.refused += 1;
            let q = &mut st.queue;
            if backlog_room(q.backlog_len, q.backlog_bytes, size) {
                q.backlog_refused(key, event, config.max_batch);
            } else {
                st.lost += 1;
                lost += 1;
            }
            drop(st);
            shared.note_lost(lost);
            shared.wake.notify_one();
            return Err(e);
        }
        let sealed = st.queue.push(key, event, config.max_batch);
        st.enqueued += 1;
        let commit = shared.spool.is_some()
            && (spool_over
                || st.queue.bytes >= commit_threshold(config.max_bytes)
                    && !std::mem::replace(&mut st.commit_now, true));
        drop(st);
        shared.note_lost(lost);
        if shared.spool.is_some() {
            if commit {
                shared.commit_cv.notify_all();
            }
            if spool_over {
                shared.wake.notify_one();
            }
        } else if sealed || displaced || lost > 0 {
            shared.wake.notify_one();
        }
        Ok(())
    }

    /// The counters right now.
    pub fn stats(&self) -> BufferStats {
        self.shared.stats()
    }

    /// Whether shutdown has begun.
    pub fn is_closed(&self) -> bool {
        self.shared.lock().closed
    }

    /// Asks for everything queued now to be sent; returns what to wait for.
    fn flush_target(&self) -> (u64, u64) {
        let target = {
            let mut st = self.shared.lock();
            let seq = st.queue.last_seq;
            st.flush_upto = st.flush_upto.max(seq);
            st.commit_now = true;
            (seq, st.queue.backlog_pushed)
        };
        self.shared.commit_cv.notify_all();
        self.shared.wake.notify_one();
        target
    }

    /// Sends everything queued now and waits until every event enqueued
    /// before this call is delivered or dead-lettered (and every event
    /// refused or displaced before it is in the sink).
    ///
    /// Works from any async runtime. Fails with [`BufferError::Closed`] if
    /// the buffer stopped first (after a shutdown whose deadline passed).
    /// Wrap it in a timeout to bound the wait.
    pub async fn flush(&self) -> Result<(), BufferError> {
        let (seq, backlog) = self.flush_target();
        let done = move |p: &Progress| p.resolved >= seq && p.backlog_done >= backlog;
        let p = self.shared.wait_progress(|p| done(p) || p.stopped).await;
        if done(&p) {
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
        let (seq, backlog) = self.flush_target();
        let done = move |p: &Progress| p.resolved >= seq && p.backlog_done >= backlog;
        match self
            .shared
            .wait_progress_blocking(timeout, |p| done(p) || p.stopped)
        {
            Some(p) if done(&p) => Ok(()),
            Some(_) => Err(BufferError::Closed),
            None => Err(BufferError::Timeout),
        }
    }

    /// Stops accepting events, delivers what it can, and stops the worker,
    /// returning within `timeout`.
    ///
    /// The worker keeps back the time it needs to account for the rest:
    /// before the deadline it stops sending and hands everything still
    /// queued (including batches whose attempt it cuts short) to the
    /// dead-letter sink with [`DeadLetterReason::ShutdownTimeout`], or with
    /// a spool, writes it to the spool for the next start. If the capture
    /// host is failing and no attempt could succeed in time, it does so at
    /// once rather than waiting for the deadline.
    ///
    /// Idempotent: later calls wait for the same stop (a shorter timeout
    /// brings the deadline forward). Clones stay usable for
    /// [`stats`](Self::stats); their `enqueue` calls are rejected.
    ///
    /// Works from any async runtime (it uses no runtime timer).
    ///
    /// [`DeadLetterReason::ShutdownTimeout`]: super::DeadLetterReason::ShutdownTimeout
    pub async fn shutdown(&self, timeout: Duration) -> ShutdownReport {
        let deadline = self.shared.begin_shutdown(timeout);
        let expired = Arc::new(AtomicBool::new(false));
        let watchdog = Watchdog::start(
            self.shared.clone(),
            expired.clone(),
            deadline.saturating_duration_since(Instant::now()),
        );
        self.shared
            .wait_progress(|p| p.stopped || expired.load(Ordering::Acquire))
            .await;
        drop(watchdog);
        self.finish_shutdown()
    }

    /// [`shutdown`](Self::shutdown) for synchronous code: blocks the calling
    /// thread for at most `timeout`.
    pub fn shutdown_blocking(&self, timeout: Duration) -> ShutdownReport {
        let deadline = self.shared.begin_shutdown(timeout);
        self.shared
            .wait_progress_blocking(deadline.saturating_duration_since(Instant::now()), |p| {
                p.stopped
            });
        self.finish_shutdown()
    }

    /// Resends the dead letters of a JSON Lines file through this buffer's
    /// sender with `api_key`; see [`replay_dead_letters`]. Works before,
    /// during and after a shutdown.
    ///
    /// [`replay_dead_letters`]: super::replay_dead_letters
    pub async fn replay_dead_letters(
        &self,
        path: impl AsRef<std::path::Path>,
        api_key: &ApiKey,
    ) -> std::io::Result<super::ReplayReport> {
        super::replay_dead_letters(path, api_key, &*self.shared.sender).await
    }

    fn finish_shutdown(&self) -> ShutdownReport {
        self.handle.join_if_stopped();
        let stopped = self.shared.progress().stopped;
        let stats = self.stats();
        ShutdownReport {
            drained: stopped && stats.queued == 0,
            stopped,
            left_in_spool: stats.spooled,
            stats,
        }
    }
}

/// Pending bytes at which the spool commits before its interval is over.
fn commit_threshold(max_bytes: usize) -> usize {
    (max_bytes / 8).clamp(64 * 1024, 4 * 1024 * 1024)
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
