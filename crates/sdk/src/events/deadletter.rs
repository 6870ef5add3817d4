//! Where events go when they will not be delivered: [`DeadLetterSink`], the
//! default [`StderrDeadLetters`], the [`JsonlDeadLetterFile`], and the guard
//! that keeps a failing or panicking sink from losing events silently.

use std::borrow::Cow;
use std::fmt;
use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::jsonl::JsonlFile;

/// Why events were dead-lettered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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
    /// Shutting down while the capture host was failing: a batch used up
    /// its attempts, so the rest was not tried (trying each batch in turn
    /// would only multiply the wait).
    HostUnavailable,
    /// The batch could not be encoded.
    Encoding,
    /// The queue was full under [`OverflowPolicy::DropNewest`]: the event
    /// was refused (`enqueue` returned `QueueFull`).
    ///
    /// [`OverflowPolicy::DropNewest`]: super::OverflowPolicy::DropNewest
    QueueFull,
    /// The queue was full under [`OverflowPolicy::DropOldest`]: a newer
    /// event displaced this one.
    ///
    /// [`OverflowPolicy::DropOldest`]: super::OverflowPolicy::DropOldest
    Displaced,
    /// The [`BatchSender`](super::BatchSender) panicked while sending the
    /// batch.
    SenderPanicked,
}

impl DeadLetterReason {
    /// Every reason, in declaration order.
    pub const ALL: [DeadLetterReason; 8] = [
        Self::RetriesExhausted,
        Self::Rejected,
        Self::ShutdownTimeout,
        Self::HostUnavailable,
        Self::Encoding,
        Self::QueueFull,
        Self::Displaced,
        Self::SenderPanicked,
    ];

    /// A short snake_case name, as written to JSONL files.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RetriesExhausted => "retries_exhausted",
            Self::Rejected => "rejected",
            Self::ShutdownTimeout => "shutdown_timeout",
            Self::HostUnavailable => "host_unavailable",
            Self::Encoding => "encoding",
            Self::QueueFull => "queue_full",
            Self::Displaced => "displaced",
            Self::SenderPanicked => "sender_panicked",
        }
    }

    /// Parses [`as_str`](Self::as_str)'s names.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == name)
    }

    fn index(self) -> usize {
        Self::ALL.iter().position(|r| *r == self).unwrap_or(0)
    }
}

impl fmt::Display for DeadLetterReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One event of a [`DeadLetter`]: the capture envelope **without** its
/// `api_key`, as compact JSON (`{"type":…,"body":…,"sent_at":…,
/// "idempotency_key":…}`), exactly as it was queued and would have been
/// sent.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct DeadEvent<'a>(&'a [u8]);

impl<'a> DeadEvent<'a> {
    /// Wraps keyless envelope JSON (mostly for tests of custom sinks).
    pub fn from_json(json: &'a [u8]) -> Self {
        DeadEvent(json)
    }

    /// The JSON bytes.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.0
    }

    /// The JSON text (always UTF-8: it was written by `serde_json`, and a
    /// spooled event is checked when it is read back).
    pub fn as_str(&self) -> &'a str {
        std::str::from_utf8(self.0).unwrap_or_default()
    }

    /// The event's idempotency key, read without parsing the whole event
    /// (it is the envelope's last string field, after the body).
    pub fn idempotency_key(&self) -> Option<Cow<'a, str>> {
        const FIELD: &[u8] = br#","idempotency_key":"#;
        let at = self.0.windows(FIELD.len()).rposition(|w| w == FIELD)? + FIELD.len();
        let rest = &self.0[at..];
        // The usual key (a UUID) has nothing to unescape: borrow it.
        if let [b'"', tail @ ..] = rest
            && let Some(end) = tail.iter().position(|&c| c == b'"' || c == b'\\')
            && tail[end] == b'"'
        {
            return std::str::from_utf8(&tail[..end]).ok().map(Cow::Borrowed);
        }
        serde_json::Deserializer::from_slice(rest)
            .into_iter::<String>()
            .next()?
            .ok()
            .map(Cow::Owned)
    }

    /// The event as a JSON value (parses it).
    pub fn to_value(&self) -> serde_json::Result<serde_json::Value> {
        serde_json::from_slice(self.0)
    }
}

impl fmt::Debug for DeadEvent<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("DeadEvent").field(&self.as_str()).finish()
    }
}

/// The events of a [`DeadLetter`], oldest first.
#[derive(Clone, Copy)]
pub struct DeadEvents<'a> {
    bytes: &'a [u8],
    ends: &'a [u32],
    start: usize,
}

impl<'a> DeadEvents<'a> {
    pub(crate) fn new(bytes: &'a [u8], ends: &'a [u32], start: usize) -> Self {
        DeadEvents { bytes, ends, start }
    }

    /// How many events.
    pub fn len(&self) -> usize {
        self.ends.len() - self.start
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The event at `index`.
    pub fn get(&self, index: usize) -> Option<DeadEvent<'a>> {
        let i = self.start.checked_add(index)?;
        let end = *self.ends.get(i)? as usize;
        let begin = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        self.bytes.get(begin..end).map(DeadEvent)
    }

    /// The events, oldest first.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = DeadEvent<'a>> + 'a {
        let this = *self;
        (this.start..this.ends.len()).map(move |i| {
            let begin = if i == 0 { 0 } else { this.ends[i - 1] as usize };
            DeadEvent(&this.bytes[begin..this.ends[i] as usize])
        })
    }
}

impl fmt::Debug for DeadEvents<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// Events that will not be delivered, with what happened to them.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct DeadLetter<'a> {
    /// The events, in the order they were enqueued.
    pub events: DeadEvents<'a>,
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
/// A sink that returns an error or panics loses nothing silently: the
/// events go to the fallback ([`StderrDeadLetters`]) and are counted in
/// `BufferStats::dead_letter_failures`; a panic is reported once.
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
    /// Takes the events.
    fn dead_letter(&self, letter: &DeadLetter<'_>) -> io::Result<()>;

    /// Makes what was taken durable (e.g. flushes a file). Called when the
    /// buffer's worker has nothing else to do and when it stops. The
    /// default does nothing.
    fn flush(&self) -> io::Result<()> {
        Ok(())
    }
}

impl<F> DeadLetterSink for F
where
    F: Fn(&DeadLetter<'_>) -> io::Result<()> + Send + Sync + 'static,
{
    fn dead_letter(&self, letter: &DeadLetter<'_>) -> io::Result<()> {
        self(letter)
    }
}

/// A sink that only logs: one `warn` line per dead-lettered batch (counts
/// and reason; no event contents), then the events are discarded. Quiet
/// without a `tracing` subscriber; [`StderrDeadLetters`] is the default.
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

/// The default sink: the events are discarded, but never without a trace
/// that needs no logging set up.
///
/// * The first loss prints one line to standard error, with the count and
///   reason, and how to keep such events (a [`JsonlDeadLetterFile`] or the
///   spool).
/// * Every batch is also logged at `warn` through `tracing`, as
///   [`LogDeadLetters`] does.
/// * When the buffer stops (shutdown or drop), one more line sums up every
///   loss by reason, if more events were lost after the first line.
///
/// Standard error rather than a file in some default place: a library must
/// not create files where the application did not ask for them (read-only
/// containers, disk quotas, personal data in event traits), while standard
/// error is always there and is what operators read first. The counts are
/// exact and also in `BufferStats`.
#[derive(Debug, Default)]
pub struct StderrDeadLetters {
    counts: [AtomicU64; DeadLetterReason::ALL.len()],
    warned: AtomicBool,
    /// Events counted when the first line was printed.
    first: AtomicU64,
}

impl StderrDeadLetters {
    /// A sink with nothing counted yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Events discarded so far, in all.
    pub fn discarded(&self) -> u64 {
        self.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    fn summary(&self) -> String {
        let mut parts = Vec::new();
        for reason in DeadLetterReason::ALL {
            let n = self.counts[reason.index()].load(Ordering::Relaxed);
            if n > 0 {
                parts.push(format!("{n} {reason}"));
            }
        }
        parts.join(", ")
    }
}

impl DeadLetterSink for StderrDeadLetters {
    fn dead_letter(&self, letter: &DeadLetter<'_>) -> io::Result<()> {
        let n = letter.events.len() as u64;
        self.counts[letter.reason.index()].fetch_add(n, Ordering::Relaxed);
        LogDeadLetters.dead_letter(letter)?;
        if !self.warned.swap(true, Ordering::AcqRel) {
            self.first.store(self.discarded(), Ordering::Relaxed);
            let error = letter.error.map(|e| format!(": {e}")).unwrap_or_default();
            eprintln!(
                "flagwire: {n} capture event(s) could not be delivered ({}{error}) and were \
                 discarded. Set a dead-letter sink (flagwire::events::JsonlDeadLetterFile) or an \
                 event spool to keep such events; this is printed once, BufferStats counts every one.",
                letter.reason
            );
        }
        Ok(())
    }
}

impl Drop for StderrDeadLetters {
    fn drop(&mut self) {
        let total = self.discarded();
        if total > self.first.load(Ordering::Relaxed) {
            eprintln!(
                "flagwire: {total} capture event(s) were discarded undelivered in all ({}).",
                self.summary()
            );
        }
    }
}

/// The buffer's view of the configured sink: catches its errors and
/// panics, sends those events to the fallback, counts them and reports a
/// panic once.
pub(crate) struct GuardedSink {
    sink: Box<dyn DeadLetterSink>,
    fallback: StderrDeadLetters,
    panicked: AtomicBool,
}

impl GuardedSink {
    pub(crate) fn new(sink: Box<dyn DeadLetterSink>) -> Self {
        GuardedSink {
            sink,
            fallback: StderrDeadLetters::new(),
            panicked: AtomicBool::new(false),
        }
    }

    /// Hands the letter to the sink; returns whether it took it (`false`:
    /// the fallback did).
    pub(crate) fn deliver(&self, letter: &DeadLetter<'_>) -> bool {
        match catch_unwind(AssertUnwindSafe(|| self.sink.dead_letter(letter))) {
            Ok(Ok(())) => true,
            Ok(Err(e)) => {
                tracing::warn!(
                    error = %e,
                    events = letter.events.len(),
                    "dead-letter sink failed; the events go to the fallback (standard error)"
                );
                let _ = self.fallback.dead_letter(letter);
                false
            }
            Err(panic) => {
                self.report_panic("dead-letter sink", panic.as_ref());
                let _ = self.fallback.dead_letter(letter);
                false
            }
        }
    }

    pub(crate) fn flush(&self) {
        match catch_unwind(AssertUnwindSafe(|| self.sink.flush())) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "dead-letter sink could not flush"),
            Err(panic) => self.report_panic("dead-letter sink", panic.as_ref()),
        }
    }

    /// Reports a panic of a user callback the first time only.
    pub(crate) fn report_panic(&self, what: &str, panic: &(dyn std::any::Any + Send)) {
        if !self.panicked.swap(true, Ordering::AcqRel) {
            let message = panic_message(panic);
            tracing::error!(callback = what, panic = %message, "a flagwire callback panicked");
            eprintln!(
                "flagwire: the {what} panicked ({message}); the event buffer keeps running and \
                 sends the events involved to standard error. Reported once."
            );
        }
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
/// file holds no secret; [`replay_dead_letters`](super::replay_dead_letters)
/// (or `schematic::Client::replay_dead_letters`) resends it with the
/// original idempotency key.
///
/// Crash-safe: letters are buffered and written whole at each batch; a line
/// cut short by a crash (or a failed write) is terminated before the next
/// letter is appended, so it can never swallow a later letter; a replay
/// reports it as an invalid line and keeps it. A replay of the same path in
/// this process takes the same lock, so letters written while it runs are
/// kept.
#[derive(Debug)]
pub struct JsonlDeadLetterFile {
    file: JsonlFile,
    /// Lines of the letter being written, reused.
    out: Mutex<Vec<u8>>,
}

impl JsonlDeadLetterFile {
    /// Opens (creating it and its directory if needed) `path` for
    /// appending; fails when it cannot be created or written.
    pub fn open(path: impl AsRef<Path>) -> io::Result<Self> {
        let file = JsonlFile::new(path.as_ref().to_path_buf());
        file.check_writable()?;
        Ok(Self {
            file,
            out: Mutex::new(Vec::new()),
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        self.file.path()
    }

    /// Writes one letter as lines into `out`.
    pub(crate) fn write_lines(out: &mut Vec<u8>, letter: &DeadLetter<'_>) -> io::Result<()> {
        let at = letter
            .at
            .to_offset(time::UtcOffset::UTC)
            .format(&Rfc3339)
            .map_err(io::Error::other)?;
        for event in letter.events.iter() {
            let key = event.idempotency_key().unwrap_or_default();
            let head = LineHead {
                idempotency_key: &key,
                reason: letter.reason.as_str(),
                error: letter.error,
                attempts: letter.attempts,
                last_status: letter.last_status,
                dead_lettered_at: &at,
            };
            serde_json::to_writer(&mut *out, &head)?;
            // Replace the closing brace with the raw event.
            out.pop();
            out.extend_from_slice(b",\"event\":");
            out.extend_from_slice(event.as_bytes());
            out.extend_from_slice(b"}\n");
        }
        Ok(())
    }
}

/// The fields of a line before `event`.
#[derive(Serialize)]
struct LineHead<'a> {
    idempotency_key: &'a str,
    reason: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
    attempts: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_status: Option<u16>,
    dead_lettered_at: &'a str,
}

impl DeadLetterSink for JsonlDeadLetterFile {
    fn dead_letter(&self, letter: &DeadLetter<'_>) -> io::Result<()> {
        let mut lines = self
            .out
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        lines.clear();
        Self::write_lines(&mut lines, letter)?;
        let result = self.file.append(&lines);
        lines.clear();
        if lines.capacity() > 1 << 20 {
            lines.shrink_to(64 * 1024);
        }
        result
    }

    fn flush(&self) -> io::Result<()> {
        self.file.sync()
    }
}

/// The text of a panic payload (`&str` or `String`), or a placeholder.
pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "a non-text panic payload".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(jsons: &[&str]) -> (Vec<u8>, Vec<u32>) {
        let mut bytes = Vec::new();
        let mut ends = Vec::new();
        for j in jsons {
            bytes.extend_from_slice(j.as_bytes());
            ends.push(bytes.len() as u32);
        }
        (bytes, ends)
    }

    #[test]
    fn idempotency_keys_are_read_from_the_end() {
        for (json, key) in [
            (
                r#"{"type":"track","body":{},"sent_at":"x","idempotency_key":"k1"}"#,
                Some("k1"),
            ),
            (
                r#"{"type":"track","body":{"traits":{"a":1,"idempotency_key":"no"}},"sent_at":"x","idempotency_key":"k\"2","backfill":true}"#,
                Some("k\"2"),
            ),
            (r#"{"type":"track"}"#, None),
            (r#"{"idempotency_key":"x"}"#, None),
        ] {
            let got = DeadEvent::from_json(json.as_bytes()).idempotency_key();
            assert_eq!(got.as_deref(), key, "{json}");
        }
    }

    #[test]
    fn dead_events_slice_and_skip_displaced() {
        let (bytes, ends) = events(&["{\"a\":1}", "{\"b\":2}", "{\"c\":3}"]);
        let all = DeadEvents::new(&bytes, &ends, 0);
        assert_eq!(all.len(), 3);
        let tail = DeadEvents::new(&bytes, &ends, 1);
        let texts: Vec<_> = tail.iter().map(|e| e.as_str()).collect();
        assert_eq!(texts, ["{\"b\":2}", "{\"c\":3}"]);
        assert!(tail.get(2).is_none());
    }

    #[test]
    fn reasons_round_trip_their_names() {
        for r in DeadLetterReason::ALL {
            assert_eq!(DeadLetterReason::parse(r.as_str()), Some(r));
        }
        assert_eq!(DeadLetterReason::parse("nope"), None);
    }

    #[test]
    fn a_panicking_or_failing_sink_falls_back_and_is_counted() {
        let (bytes, ends) = events(&["{\"a\":1}"]);
        let letter = DeadLetter {
            events: DeadEvents::new(&bytes, &ends, 0),
            reason: DeadLetterReason::Rejected,
            error: None,
            attempts: 1,
            last_status: Some(400),
            at: OffsetDateTime::UNIX_EPOCH,
        };
        let panicking = GuardedSink::new(Box::new(|_: &DeadLetter<'_>| -> io::Result<()> {
            panic!("sink bug")
        }));
        assert!(!panicking.deliver(&letter));
        assert!(!panicking.deliver(&letter));
        assert_eq!(panicking.fallback.discarded(), 2);
        assert!(panicking.panicked.load(Ordering::Relaxed));
        let failing = GuardedSink::new(Box::new(|_: &DeadLetter<'_>| -> io::Result<()> {
            Err(io::Error::other("disk full"))
        }));
        assert!(!failing.deliver(&letter));
        let ok = GuardedSink::new(Box::new(LogDeadLetters));
        assert!(ok.deliver(&letter));
    }
}
