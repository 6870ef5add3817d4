//! Where events go when they cannot be delivered: [`DeadLetterSink`].

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use flagwire_core::events::EventEnvelope;
use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Why events were dead-lettered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeadLetterReason {
    /// Every attempt failed with a retryable error.
    RetriesExhausted,
    /// The capture service rejected the batch for good (e.g. 400, 401).
    Rejected,
    /// Shutdown's deadline passed before the events could be delivered. If
    /// an attempt was cut short, the server may have received it; the
    /// idempotency key makes replaying safe.
    ShutdownTimeout,
    /// The batch could not be encoded.
    Encoding,
}

impl DeadLetterReason {
    /// A short snake_case name, as written to JSONL files.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RetriesExhausted => "retries_exhausted",
            Self::Rejected => "rejected",
            Self::ShutdownTimeout => "shutdown_timeout",
            Self::Encoding => "encoding",
        }
    }
}

impl fmt::Display for DeadLetterReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A batch of events that will not be delivered, with what happened to it.
#[derive(Debug)]
#[non_exhaustive]
pub struct DeadLetter<'a> {
    /// The events, in the order they were enqueued.
    pub events: &'a [EventEnvelope],
    /// Why they were given up on.
    pub reason: DeadLetterReason,
    /// The last error message, if an attempt was made.
    pub error: Option<&'a str>,
    /// How many send attempts were made (0 if none).
    pub attempts: u32,
    /// The HTTP status of the last attempt, if it got a response.
    pub last_status: Option<u16>,
    /// When the events were given up on.
    pub at: OffsetDateTime,
}

/// Receives undeliverable events. Called on the event buffer's background
/// thread; it may block briefly (file I/O) but should not take long.
///
/// Closures are sinks:
///
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use std::sync::Arc;
/// use flagwire::events::{DeadLetter, DeadLetterSink};
///
/// let lost = Arc::new(AtomicUsize::new(0));
/// let counter = lost.clone();
/// let sink = move |letter: &DeadLetter<'_>| -> std::io::Result<()> {
///     counter.fetch_add(letter.events.len(), Ordering::Relaxed);
///     Ok(())
/// };
/// fn assert_sink(_: impl DeadLetterSink) {}
/// assert_sink(sink);
/// ```
pub trait DeadLetterSink: Send + Sync + 'static {
    /// Takes the events. An error is logged and counted by the buffer.
    fn dead_letter(&self, letter: &DeadLetter<'_>) -> io::Result<()>;
}

impl<F> DeadLetterSink for F
where
    F: Fn(&DeadLetter<'_>) -> io::Result<()> + Send + Sync + 'static,
{
    fn dead_letter(&self, letter: &DeadLetter<'_>) -> io::Result<()> {
        self(letter)
    }
}

/// The default sink: one `warn` log line per dead-lettered batch (counts
/// and reason only; no event contents), then the events are discarded.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogDeadLetters;

impl DeadLetterSink for LogDeadLetters {
    fn dead_letter(&self, letter: &DeadLetter<'_>) -> io::Result<()> {
        tracing::warn!(
            events = letter.events.len(),
            reason = letter.reason.as_str(),
            attempts = letter.attempts,
            last_status = letter.last_status,
            error = letter.error,
            "dropping undeliverable events (no dead-letter sink configured)"
        );
        Ok(())
    }
}

/// Appends dead-lettered events to a JSON Lines file, one event per line:
///
/// ```json
/// {"idempotency_key":"…","reason":"retries_exhausted","error":"…","attempts":4,
///  "last_status":503,"dead_lettered_at":"2026-01-02T03:04:05.123Z",
///  "event":{"type":"track","body":{…},"sent_at":"…","idempotency_key":"…"}}
/// ```
///
/// The `event` object is the capture envelope **without** `api_key`, so the
/// file holds no secret; add the key back when replaying. The file is opened
/// in append mode and flushed after each batch.
#[derive(Debug)]
pub struct JsonlDeadLetterFile {
    path: PathBuf,
    file: Mutex<BufWriter<File>>,
}

impl JsonlDeadLetterFile {
    /// Opens (creating if needed) `path` for appending.
    pub fn open(path: impl AsRef<Path>) -> io::Result<Self> {
        let path = path.as_ref().to_path_buf();
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        Ok(Self {
            path,
            file: Mutex::new(BufWriter::new(file)),
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[derive(Serialize)]
struct Line<'a> {
    idempotency_key: &'a flagwire_core::events::IdempotencyKey,
    reason: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
    attempts: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_status: Option<u16>,
    dead_lettered_at: &'a str,
    event: flagwire_core::events::WithoutApiKey<'a>,
}

impl DeadLetterSink for JsonlDeadLetterFile {
    fn dead_letter(&self, letter: &DeadLetter<'_>) -> io::Result<()> {
        let at = letter.at.format(&Rfc3339).map_err(io::Error::other)?;
        let mut file = self
            .file
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for event in letter.events {
            let line = Line {
                idempotency_key: event.idempotency_key(),
                reason: letter.reason.as_str(),
                error: letter.error,
                attempts: letter.attempts,
                last_status: letter.last_status,
                dead_lettered_at: &at,
                event: event.without_api_key(),
            };
            serde_json::to_writer(&mut *file, &line)?;
            file.write_all(b"\n")?;
        }
        file.flush()
    }
}
