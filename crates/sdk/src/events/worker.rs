//! The delivery worker (several batches in flight, one shared backoff, the
//! shutdown deadline) and the spool's commit thread.

use std::collections::{HashMap, VecDeque};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use flagwire_core::events::BatchEncoder;
use time::OffsetDateTime;
use tokio::task::{JoinError, JoinSet};
use tokio::time::{Instant, MissedTickBehavior};

use super::buffer::{OverflowPolicy, Shared};
use super::deadletter::{DeadEvents, DeadLetter, DeadLetterReason, GuardedSink};
use super::queue::Chunk;
use super::spool::RECORD_OVERHEAD;
use super::{Batch, BatchSender, SendError};

/// Time kept back before a shutdown deadline, on top of the time the
/// leftovers take to dead-letter.
const RESERVE_FLOOR: Duration = Duration::from_millis(20);
/// Assumed speed of the dead-letter sink until it has been measured.
const DEFAULT_SINK_RATE: f64 = 50.0 * 1024.0 * 1024.0;

/// A batch on its way: its events, its request body, its attempts.
struct Job {
    chunk: Chunk,
    body: Bytes,
    /// Attempts made.
    attempts: u32,
    /// Attempts counted against the retry budget.
    charged: u32,
    /// Where the events are in the spool.
    spool: Option<SpoolPos>,
    last: Option<SendError>,
}

#[derive(Clone, Copy)]
struct SpoolPos {
    segment: u64,
    index: u64,
    record_bytes: u64,
}

struct Flight {
    job: Job,
    /// Whether the host was considered up when the attempt started.
    host_up: bool,
}

pub(crate) struct Worker {
    shared: Arc<Shared>,
    sender: Arc<dyn BatchSender>,
    sink: GuardedSink,
    encoder: BatchEncoder,
    tasks: JoinSet<Result<(), SendError>>,
    flights: HashMap<tokio::task::Id, Flight>,
    /// Batches waiting for their next attempt, oldest first.
    retry: VecDeque<Job>,
    /// Consecutive failed attempts, across batches.
    host_failures: u32,
    /// Steps of the shared backoff: the first failure, then each failed
    /// probe. Failures of attempts started before the host was known to
    /// fail do not add steps, so a wave of batches failing together does
    /// not jump the backoff to its cap.
    backoff_step: u32,
    /// No attempt starts before this.
    resume_at: Option<Instant>,
    /// A partial batch may go out (the flush interval passed).
    timer_due: bool,
    /// Shutting down, a batch used up its retries: the next attempt goes
    /// at once, and if it fails too the host is taken for down.
    last_chance: bool,
    /// Shutting down while the host failed a whole batch and the attempt
    /// after it: stop trying.
    abandon: bool,
    /// Backlogged events handed to the sink.
    backlog_done: u64,
    /// Dead letters written since the sink was last flushed.
    sink_dirty: bool,
    sink_bytes: f64,
    sink_secs: f64,
}

impl Worker {
    pub(crate) fn new(
        shared: Arc<Shared>,
        sender: Arc<dyn BatchSender>,
        sink: GuardedSink,
    ) -> Self {
        Worker {
            shared,
            sender,
            sink,
            encoder: BatchEncoder::with_capacity(32 * 1024),
            tasks: JoinSet::new(),
            flights: HashMap::new(),
            retry: VecDeque::new(),
            host_failures: 0,
            backoff_step: 0,
            resume_at: None,
            timer_due: false,
            last_chance: false,
            abandon: false,
            backlog_done: 0,
            sink_dirty: false,
            sink_bytes: 0.0,
            sink_secs: 0.0,
        }
    }

    pub(crate) async fn run(mut self) {
        let interval = self.shared.config.flush_interval;
        let mut ticker = tokio::time::interval_at(Instant::now() + interval, interval);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            let (closing, deadline, flush_upto) = {
                let st = self.shared.lock();
                (st.closed, st.deadline, st.flush_upto)
            };
            self.sink_backlog(deadline);
            self.displace_spool_overflow();
            let cutoff = deadline.map(|d| self.cutoff(d));
            if closing {
                let past = cutoff.is_some_and(|c| Instant::now() >= c);
                // Nothing in flight and no attempt may start before the
                // cutoff: waiting cannot deliver anything more.
                let hopeless = self.flights.is_empty()
                    && self
                        .resume_at
                        .is_some_and(|r| cutoff.is_some_and(|c| r >= c));
                if past || hopeless {
                    self.give_up(DeadLetterReason::ShutdownTimeout, deadline);
                    break;
                }
                if self.abandon {
                    self.give_up(DeadLetterReason::HostUnavailable, deadline);
                    break;
                }
            }
            let resolved = self.publish_progress();
            let partial = self.timer_due || closing || flush_upto > resolved;
            self.dispatch(partial);
            self.timer_due = false;
            self.publish_progress();
            if closing && self.idle() {
                break;
            }
            if self.flights.is_empty() && self.sink_dirty {
                self.sink_dirty = false;
                self.sink.flush();
            }
            let resume = self.resume_at;
            tokio::select! {
                Some(done) = self.tasks.join_next_with_id(), if !self.tasks.is_empty() => {
                    self.on_done(done);
                }
                _ = ticker.tick() => self.timer_due = true,
                () = self.shared.wake.notified() => {}
                () = self.shared.deadline_set.notified() => {}
                () = sleep_until(resume), if resume.is_some() => {}
                () = sleep_until(cutoff), if closing && cutoff.is_some() => {}
            }
            // Collect whatever else finished meanwhile without waiting.
            while let Some(done) = self.tasks.try_join_next_with_id() {
                self.on_done(done);
            }
        }
        self.tasks.abort_all();
        let deadline = self.shared.lock().deadline;
        self.sink_backlog(deadline);
        self.sink.flush();
        self.publish_progress();
    }

    /// Whether nothing is left to do.
    fn idle(&self) -> bool {
        if !self.flights.is_empty() || !self.retry.is_empty() {
            return false;
        }
        let st = self.shared.lock();
        if st.queue.len > 0 || st.queue.backlog_len > 0 {
            return false;
        }
        drop(st);
        self.shared.spool.as_ref().is_none_or(|s| s.readable() == 0)
    }

    /// When sending must stop so that the leftovers can be accounted for
    /// by `deadline`: the deadline minus the time the sink needs for them
    /// (measured as it works, twice over for safety) and a floor.
    fn cutoff(&self, deadline: Instant) -> Instant {
        let mut bytes = {
            let st = self.shared.lock();
            st.queue.backlog_bytes
                + if self.shared.spool.is_some() {
                    0
                } else {
                    st.queue.bytes
                }
        } as f64;
        if self.shared.spool.is_none() {
            let held: usize = self
                .flights
                .values()
                .map(|f| &f.job)
                .chain(self.retry.iter())
                .map(|j| j.chunk.live_bytes())
                .sum();
            bytes += held as f64;
        }
        let rate = if self.sink_secs > 0.001 {
            (self.sink_bytes / self.sink_secs).max(1024.0 * 1024.0)
        } else {
            DEFAULT_SINK_RATE
        };
        let reserve = RESERVE_FLOOR + Duration::from_secs_f64((2.0 * bytes / rate).min(3600.0));
        deadline.checked_sub(reserve).unwrap_or(deadline)
    }

    // -----------------------------------------------------------------
    // Dispatching
    // -----------------------------------------------------------------

    fn dispatch(&mut self, partial: bool) {
        loop {
            if self.resume_at.is_some_and(|t| Instant::now() < t) {
                return;
            }
            let limit = if self.host_failures > 0 {
                1
            } else {
                self.shared.config.max_in_flight
            };
            if self.flights.len() >= limit {
                return;
            }
            let Some(job) = self.next_job(partial) else {
                return;
            };
            self.launch(job);
        }
    }

    fn next_job(&mut self, partial: bool) -> Option<Job> {
        // With a spool, a failing host is probed with a batch that has not
        // failed yet, so one bad batch cannot hold the whole spool back.
        if self.shared.spool.is_some()
            && self.host_failures > 0
            && let Some(job) = self.fresh(partial)
        {
            return Some(job);
        }
        if let Some(job) = self.retry.pop_front() {
            return Some(job);
        }
        self.fresh(partial)
    }

    /// The next batch from the queue or the spool, encoded.
    fn fresh(&mut self, partial: bool) -> Option<Job> {
        let max_batch = self.shared.config.max_batch;
        loop {
            let (chunk, spool) = match &self.shared.spool {
                Some(spool) => {
                    if !partial && spool.readable() < max_batch as u64 {
                        return None;
                    }
                    match spool.read_batch(max_batch) {
                        Ok(Some(b)) => {
                            let pos = SpoolPos {
                                segment: b.segment,
                                index: b.index,
                                record_bytes: b.record_bytes,
                            };
                            (b.chunk, Some(pos))
                        }
                        Ok(None) => return None,
                        Err(e) => {
                            let skipped = spool.skip_damaged();
                            tracing::error!(error = %e, skipped, "could not read the event spool; skipping the damaged segment");
                            self.shared
                                .counters
                                .lost
                                .fetch_add(skipped, Ordering::Relaxed);
                            continue;
                        }
                    }
                }
                None => {
                    let chunk = self.shared.lock().queue.take_batch(partial, max_batch)?;
                    self.shared
                        .counters
                        .held
                        .fetch_add(chunk.len() as u64, Ordering::Relaxed);
                    (chunk, None)
                }
            };
            let Some(key) = chunk.key.clone() else {
                continue;
            };
            match self.encoder.encode_keyless(&key, chunk.events()) {
                Ok(body) => {
                    return Some(Job {
                        chunk,
                        body,
                        attempts: 0,
                        charged: 0,
                        spool,
                        last: None,
                    });
                }
                Err(e) => {
                    let job = Job {
                        chunk,
                        body: Bytes::new(),
                        attempts: 0,
                        charged: 0,
                        spool,
                        last: None,
                    };
                    let message = e.to_string();
                    self.dead_letter_job(job, DeadLetterReason::Encoding, Some(&message), None);
                }
            }
        }
    }

    fn launch(&mut self, mut job: Job) {
        let attempt = job.attempts + 1;
        let batch = Batch::new(job.body.clone(), job.chunk.len(), attempt);
        let sender = self.sender.clone();
        let send = match catch_unwind(AssertUnwindSafe(|| sender.send(batch))) {
            Ok(send) => send,
            Err(panic) => {
                self.sink.report_panic("batch sender", panic.as_ref());
                let message = format!(
                    "the batch sender panicked: {}",
                    super::deadletter::panic_message(panic.as_ref())
                );
                job.attempts = attempt;
                self.dead_letter_job(job, DeadLetterReason::SenderPanicked, Some(&message), None);
                return;
            }
        };
        if job.attempts > 0 {
            self.shared.counters.retried.fetch_add(1, Ordering::Relaxed);
        }
        job.attempts = attempt;
        let limit = self.shared.config.attempt_timeout;
        let handle = self.tasks.spawn(async move {
            match tokio::time::timeout(limit, send).await {
                Ok(outcome) => outcome,
                Err(_) => Err(SendError::retryable(format!(
                    "send attempt timed out after {limit:?}"
                ))),
            }
        });
        let host_up = self.host_failures == 0;
        self.flights.insert(handle.id(), Flight { job, host_up });
    }

    fn on_done(&mut self, done: Result<(tokio::task::Id, Result<(), SendError>), JoinError>) {
        match done {
            Ok((id, outcome)) => {
                if let Some(flight) = self.flights.remove(&id) {
                    self.settle(flight, outcome);
                }
            }
            Err(e) => {
                let Some(flight) = self.flights.remove(&e.id()) else {
                    return;
                };
                if e.is_panic() {
                    let panic = e.into_panic();
                    self.sink.report_panic("batch sender", panic.as_ref());
                    let message = format!(
                        "the batch sender panicked: {}",
                        super::deadletter::panic_message(panic.as_ref())
                    );
                    self.dead_letter_job(
                        flight.job,
                        DeadLetterReason::SenderPanicked,
                        Some(&message),
                        None,
                    );
                } else {
                    // Cancelled: only `give_up` aborts, after taking the
                    // flights; keep the books straight anyway.
                    self.requeue(flight.job);
                }
            }
        }
    }

    fn settle(&mut self, flight: Flight, outcome: Result<(), SendError>) {
        let mut job = flight.job;
        match outcome {
            Ok(()) => {
                let c = &self.shared.counters;
                c.sent.fetch_add(job.chunk.len() as u64, Ordering::Relaxed);
                c.batches_sent.fetch_add(1, Ordering::Relaxed);
                tracing::trace!(
                    events = job.chunk.len(),
                    attempts = job.attempts,
                    "event batch delivered"
                );
                self.host_failures = 0;
                self.backoff_step = 0;
                self.resume_at = None;
                self.last_chance = false;
                self.resolve(job);
            }
            Err(e) if !e.is_retryable() => {
                let message = e.to_string();
                let status = e.status();
                self.dead_letter_job(job, DeadLetterReason::Rejected, Some(&message), status);
            }
            Err(e) => {
                tracing::debug!(error = %e, attempts = job.attempts, "event batch attempt failed");
                if !flight.host_up || self.backoff_step == 0 {
                    self.backoff_step = self.backoff_step.saturating_add(1);
                }
                self.host_failures = self.host_failures.saturating_add(1);
                let delay = self.backoff(&e);
                let until = Instant::now() + delay;
                self.resume_at = Some(self.resume_at.map_or(until, |r| r.max(until)));
                let spooling = self.shared.spool.is_some();
                if !spooling || flight.host_up {
                    job.charged += 1;
                }
                job.last = Some(e);
                if self.last_chance {
                    // The attempt after a batch ran out of retries failed
                    // too: the host is down; shutdown gives up on the rest.
                    self.abandon = true;
                    self.requeue(job);
                } else if job.charged > self.shared.config.max_retries {
                    let last = job.last.take();
                    let message = last.as_ref().map(ToString::to_string);
                    let status = last.as_ref().and_then(SendError::status);
                    self.dead_letter_job(
                        job,
                        DeadLetterReason::RetriesExhausted,
                        message.as_deref(),
                        status,
                    );
                    if !spooling && self.shared.lock().closed {
                        // One more attempt, at once, with the next batch:
                        // a batch the server refuses must not condemn the
                        // rest, a host that is down must not hold the
                        // shutdown for a backoff per batch.
                        self.last_chance = true;
                        self.resume_at = None;
                    }
                } else {
                    self.requeue(job);
                }
            }
        }
    }

    /// Puts a batch back among those waiting for their next attempt, in
    /// enqueue order: the oldest batch is retried first (until it succeeds
    /// or runs out of attempts), as a single batch in flight would be.
    fn requeue(&mut self, job: Job) {
        let seq = job.chunk.front_seq();
        let at = self
            .retry
            .iter()
            .position(|j| j.chunk.front_seq() > seq)
            .unwrap_or(self.retry.len());
        self.retry.insert(at, job);
    }

    fn backoff(&self, error: &SendError) -> Duration {
        let c = &self.shared.config;
        if let Some(after) = error.retry_after() {
            return after.min(c.retry_max);
        }
        exponential_backoff(
            c.retry_base,
            c.retry_max,
            self.backoff_step,
            fastrand::f64() * 0.1,
        )
    }

    // -----------------------------------------------------------------
    // Resolution, dead letters, progress
    // -----------------------------------------------------------------

    /// The job's events are delivered or dead-lettered: free them.
    fn resolve(&mut self, job: Job) {
        let n = job.chunk.len() as u64;
        match (&self.shared.spool, job.spool) {
            (Some(spool), Some(pos)) => spool.resolve(pos.segment, pos.index, n, pos.record_bytes),
            _ => {
                self.shared.counters.held.fetch_sub(n, Ordering::Relaxed);
                let unused = self.shared.lock().queue.recycle(job.chunk);
                drop(unused);
            }
        }
    }

    fn dead_letter_job(
        &mut self,
        job: Job,
        reason: DeadLetterReason,
        error: Option<&str>,
        status: Option<u16>,
    ) {
        self.dead_letter(job.chunk.dead_events(), reason, error, job.attempts, status);
        self.resolve(job);
    }

    fn dead_letter(
        &mut self,
        events: DeadEvents<'_>,
        reason: DeadLetterReason,
        error: Option<&str>,
        attempts: u32,
        last_status: Option<u16>,
    ) {
        if events.is_empty() {
            return;
        }
        let letter = DeadLetter {
            events,
            reason,
            error,
            attempts,
            last_status,
            at: OffsetDateTime::now_utc(),
        };
        let n = events.len() as u64;
        let started = std::time::Instant::now();
        let taken = self.sink.deliver(&letter);
        self.sink_secs += started.elapsed().as_secs_f64();
        self.sink_bytes += events.iter().map(|e| e.as_bytes().len()).sum::<usize>() as f64;
        self.sink_dirty = true;
        let c = &self.shared.counters;
        c.dead_lettered.fetch_add(n, Ordering::Relaxed);
        if !taken {
            c.dead_letter_failures.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Hands refused and displaced events to the sink. Past `deadline`
    /// they are counted as lost instead: nothing is written after it.
    fn sink_backlog(&mut self, deadline: Option<Instant>) {
        loop {
            let Some(run) = self.shared.lock().queue.take_backlog() else {
                return;
            };
            let n = run.chunk.len() as u64;
            if deadline.is_some_and(|d| Instant::now() >= d) {
                self.shared.counters.lost.fetch_add(n, Ordering::Relaxed);
                self.shared.note_lost(n);
            } else {
                self.shared.counters.held.fetch_add(n, Ordering::Relaxed);
                self.dead_letter(run.chunk.dead_events(), run.reason, None, 0, None);
                self.shared.counters.held.fetch_sub(n, Ordering::Relaxed);
            }
            self.backlog_done += n;
            let unused = self.shared.lock().queue.recycle(run.chunk);
            drop(unused);
        }
    }

    /// With a spool over its bound under `DropOldest`: dead-letters the
    /// oldest spooled events not yet sent until it fits.
    fn displace_spool_overflow(&mut self) {
        let shared = self.shared.clone();
        let Some(spool) = &shared.spool else {
            return;
        };
        if self.shared.config.overflow != OverflowPolicy::DropOldest {
            return;
        }
        let max = spool.config().max_bytes;
        loop {
            let pending = {
                let st = self.shared.lock();
                (st.queue.bytes + st.queue.len * RECORD_OVERHEAD) as u64
            };
            if spool.live_bytes.load(Ordering::Relaxed) + pending <= max {
                return;
            }
            // The oldest first: batches waiting for a retry, then the spool
            // from its read position. Batches in flight stay.
            if let Some(job) = self.retry.pop_front() {
                let n = job.chunk.len() as u64;
                self.dead_letter_job(job, DeadLetterReason::Displaced, None, None);
                self.shared.lock().displaced += n;
                continue;
            }
            let batch = match spool.read_batch(self.shared.config.max_batch) {
                Ok(Some(b)) => b,
                _ => return,
            };
            let n = batch.chunk.len() as u64;
            self.dead_letter(
                batch.chunk.dead_events(),
                DeadLetterReason::Displaced,
                None,
                0,
                None,
            );
            spool.resolve(batch.segment, batch.index, n, batch.record_bytes);
            self.shared.lock().displaced += n;
        }
    }

    /// Stops at the deadline: cuts short what is in flight; without a spool
    /// hands every event left to the sink with `reason`, with one leaves
    /// them in the spool.
    fn give_up(&mut self, reason: DeadLetterReason, deadline: Option<Instant>) {
        self.tasks.abort_all();
        let spooling = self.shared.spool.is_some();
        let flights: Vec<Flight> = self.flights.drain().map(|(_, f)| f).collect();
        let retries: Vec<Job> = self.retry.drain(..).collect();
        if spooling {
            // The records stay unresolved in the spool.
            return;
        }
        for flight in flights {
            let message = "the attempt was cut short by the shutdown deadline; the server may have \
                           received it (the idempotency key makes a replay safe)";
            let job = flight.job;
            self.dead_letter_job(job, reason, Some(message), None);
        }
        for mut job in retries {
            let last = job.last.take();
            let message = last.as_ref().map(ToString::to_string);
            let status = last.as_ref().and_then(SendError::status);
            self.dead_letter_job(job, reason, message.as_deref(), status);
        }
        let max_batch = self.shared.config.max_batch;
        loop {
            let Some(chunk) = self.shared.lock().queue.take_batch(true, max_batch) else {
                break;
            };
            let n = chunk.len() as u64;
            if deadline.is_some_and(|d| Instant::now() >= d) {
                self.shared.counters.lost.fetch_add(n, Ordering::Relaxed);
                self.shared.note_lost(n);
            } else {
                self.dead_letter(chunk.dead_events(), reason, None, 0, None);
            }
            let unused = self.shared.lock().queue.recycle(chunk);
            drop(unused);
        }
        self.sink_backlog(deadline);
    }

    /// The oldest unresolved sequence number minus one, published with the
    /// backlog count for `flush` and `shutdown`.
    fn publish_progress(&self) -> u64 {
        let front = match &self.shared.spool {
            Some(spool) => spool.cursor_seq(),
            None => self.shared.lock().queue.front_seq(),
        };
        let oldest = self
            .flights
            .values()
            .map(|f| &f.job)
            .chain(self.retry.iter())
            .map(|j| j.chunk.front_seq())
            .fold(front, u64::min);
        let resolved = oldest.saturating_sub(1);
        let backlog_done = self.backlog_done;
        self.shared.publish(|p| {
            p.resolved = p.resolved.max(resolved);
            p.backlog_done = backlog_done;
        });
        resolved
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// `base × 2^(attempt − 1)`, plus `jitter` (a fraction of it), capped at
/// `max`; saturating, so no configuration can make it overflow.
pub(crate) fn exponential_backoff(
    base: Duration,
    max: Duration,
    attempt: u32,
    jitter: f64,
) -> Duration {
    let factor = 1u32
        .checked_shl(attempt.saturating_sub(1))
        .unwrap_or(u32::MAX);
    let delay = base.saturating_mul(factor);
    delay.saturating_add(delay.mul_f64(jitter)).min(max)
}

// ---------------------------------------------------------------------------
// The spool's commit thread
// ---------------------------------------------------------------------------

/// Commits pending events to the spool every commit interval (or at once
/// when asked: a flush, a shutdown, a large backlog), writes ack counts,
/// and closes the spool after the worker stopped.
pub(crate) fn commit_loop(shared: &Shared) {
    let Some(spool) = &shared.spool else {
        shared.publish(|p| p.stopped = true);
        return;
    };
    let interval = spool.config().commit_interval;
    let max_batch = shared.config.max_batch;
    let mut buf = Vec::new();
    let mut chunks: Vec<Chunk> = Vec::new();
    let mut next = std::time::Instant::now() + interval;
    let mut failures = 0u32;
    let mut st = shared.lock();
    loop {
        while !st.commit_now && !st.worker_done {
            let now = std::time::Instant::now();
            if now >= next {
                break;
            }
            st = shared
                .commit_cv
                .wait_timeout(st, next - now)
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .0;
        }
        let finishing = st.worker_done;
        st.commit_now = false;
        st.queue.take_all(max_batch, &mut chunks);
        drop(st);
        // Commits start every interval however long the last one took (a
        // slow fsync must not stretch what a crash can lose).
        next = std::time::Instant::now() + interval;
        let mut failed = false;
        if !chunks.is_empty() {
            let (committed, error) = spool.commit(&chunks, &mut buf);
            if let Some(e) = error {
                failed = true;
                failures += 1;
                spool.errors.fetch_add(1, Ordering::Relaxed);
                tracing::error!(error = %e, committed, "could not write the event spool; the events stay in memory and are written again");
                skip_events(&mut chunks, committed);
            } else {
                failures = 0;
            }
            shared.wake.notify_one();
        }
        if let Err(e) = spool.write_acks() {
            tracing::warn!(error = %e, "could not record delivered events in the spool");
        }
        st = shared.lock();
        if failed {
            st.queue.requeue_front(&mut chunks);
        }
        for chunk in chunks.drain(..) {
            drop(st.queue.recycle(chunk));
        }
        // After the worker stopped: one last commit of what is pending,
        // then stop (also when the disk keeps failing: those events are
        // lost and counted).
        if finishing && (st.queue.len == 0 || failures >= 3) {
            let left = st.queue.len as u64;
            if left > 0 {
                let mut drained = Vec::new();
                st.queue.take_all(max_batch, &mut drained);
                st.lost += left;
            }
            break;
        }
    }
    drop(st);
    if let Err(e) = spool.close() {
        tracing::warn!(error = %e, "could not close the event spool cleanly");
    }
    shared.publish(|p| p.stopped = true);
}

/// Drops the first `n` events of `chunks` (committed ones), leaving the
/// rest to be queued again.
fn skip_events(chunks: &mut [Chunk], mut n: u64) {
    for chunk in chunks.iter_mut() {
        let skip = (chunk.len() as u64).min(n) as usize;
        chunk.start += skip;
        n -= skip as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
