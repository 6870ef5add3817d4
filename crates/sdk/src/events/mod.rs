//! Background delivery of capture events: the [`EventBuffer`], the
//! [`BatchSender`] seam it delivers through, and [`DeadLetterSink`]s for what
//! cannot be delivered.
//!
//! Events themselves (bodies, envelopes, batch encoding) live in
//! [`flagwire_core::events`]. This module owns the moving parts:
//!
//! * [`EventBuffer`]: a bounded queue with an explicit
//!   [`OverflowPolicy`], drained by a worker on its own thread and its own
//!   current-thread Tokio runtime. Requests carry at most 100 events, are
//!   sent every 5 s or as soon as 100 events wait, and are retried three
//!   times with exponential backoff.
//! * [`BatchSender`]: how a batch reaches the network. The HTTP sender for
//!   `POST {capture}/batch` plugs in here; tests use closures.
//! * [`DeadLetterSink`]: receives undeliverable events, e.g.
//!   [`JsonlDeadLetterFile`] or a closure. The default logs and discards.

mod buffer;
mod deadletter;
mod sender;

pub use buffer::{
    BufferError, BufferStats, DEFAULT_ATTEMPT_TIMEOUT, DEFAULT_DROP_TIMEOUT,
    DEFAULT_FLUSH_INTERVAL, DEFAULT_MAX_RETRIES, DEFAULT_QUEUE_CAPACITY, DEFAULT_RETRY_BASE_DELAY,
    DEFAULT_RETRY_MAX_DELAY, EventBuffer, EventBufferBuilder, OverflowPolicy, ShutdownReport,
};
pub use deadletter::{
    DeadLetter, DeadLetterReason, DeadLetterSink, JsonlDeadLetterFile, LogDeadLetters,
};
pub use sender::{Batch, BatchSender, SendError, SendErrorKind};
