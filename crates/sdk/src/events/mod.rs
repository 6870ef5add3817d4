//! Background delivery of capture events: the [`EventBuffer`], the
//! [`BatchSender`] seam it delivers through, the optional durable spool
//! ([`SpoolConfig`]), [`DeadLetterSink`]s for what cannot be delivered, and
//! [`replay_dead_letters`] to send those again.
//!
//! Events themselves (bodies, envelopes, batch encoding) live in
//! [`flagwire_core::events`]. This module owns the moving parts:
//!
//! * [`EventBuffer`]: a bounded queue with an explicit [`OverflowPolicy`],
//!   drained by a worker on its own thread and its own current-thread Tokio
//!   runtime. Queued events are kept as compact JSON (about their size on
//!   the wire). Requests carry at most 100 events; several are in flight at
//!   once, and failures share one backoff.
//! * [`SpoolConfig`]: opt-in segment files that events are committed to
//!   and delivered from, so a crash or a restart loses at most one commit
//!   interval.
//! * [`BatchSender`]: how a batch reaches the network. The HTTP sender for
//!   `POST {capture}/batch` plugs in here; tests use closures.
//! * [`DeadLetterSink`]: receives undeliverable, refused and displaced
//!   events, e.g. [`JsonlDeadLetterFile`] or a closure. The default,
//!   [`StderrDeadLetters`], discards them but says so on standard error.
//!
//! [`BufferStats`] accounts for every event: `enqueued + refused = sent +
//! dead_lettered + lost + queued` once the buffer is idle.

mod buffer;
mod crc32c;
mod deadletter;
mod jsonl;
mod queue;
mod replay;
mod sender;
mod spool;
mod worker;

pub use buffer::{
    BufferError, BufferStats, DEFAULT_ATTEMPT_TIMEOUT, DEFAULT_DROP_TIMEOUT,
    DEFAULT_FLUSH_INTERVAL, DEFAULT_MAX_IN_FLIGHT, DEFAULT_MAX_RETRIES, DEFAULT_QUEUE_BYTES,
    DEFAULT_QUEUE_CAPACITY, DEFAULT_RETRY_BASE_DELAY, DEFAULT_RETRY_MAX_DELAY, EventBuffer,
    EventBufferBuilder, MAX_EVENT_BYTES, OverflowPolicy, ShutdownReport,
};
pub use deadletter::{
    DeadEvent, DeadEvents, DeadLetter, DeadLetterReason, DeadLetterSink, JsonlDeadLetterFile,
    LogDeadLetters, StderrDeadLetters,
};
pub use replay::{InvalidLine, ReplayReport, replay_dead_letters};
pub use sender::{Batch, BatchSender, SendError, SendErrorKind};
pub use spool::{
    DEFAULT_COMMIT_INTERVAL, DEFAULT_SEGMENT_BYTES, DEFAULT_SPOOL_MAX_BYTES, FsyncPolicy,
    SpoolConfig, SpoolError,
};

pub(crate) use jsonl::{JsonlFile, ReplayFile};
