//! Events that could not be delivered: [`DeadLetter`], the [`DeadLetterSink`] seam, the JSON
//! Lines file [`JsonlDeadLetters`], and the file side of
//! [`Events::replay`](super::Events::replay).

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use flagwire_core::esauti::EventEnvelope;
use flagwire_core::events::IdempotencyKey;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::events::{InvalidLine, JsonlFile, ReplayFile};

/// How the delivery of an event failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FailureKind {
    /// The server answered with a status that is not worth retrying (`400`, `401`, `422`…).
    Rejected,
    /// Every attempt failed in a retryable way (`429`, `5xx`, broken connections).
    RetriesExhausted,
    /// No answer and no retry: TLS failure, overall deadline, a connection error with retries
    /// turned off, a signing failure.
    Transport,
    /// The caller gave up on the send (its future was dropped, e.g. by its own timeout)
    /// before an answer came. The server may or may not have received the event; a replay
    /// sends it with the same idempotency key, so it is recorded once either way.
    Cancelled,
}

impl FailureKind {
    /// The snake_case name written to files: `rejected`, `retries_exhausted`, `transport`.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Rejected => "rejected",
            FailureKind::RetriesExhausted => "retries_exhausted",
            FailureKind::Transport => "transport",
            FailureKind::Cancelled => "cancelled",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "rejected" => FailureKind::Rejected,
            "retries_exhausted" => FailureKind::RetriesExhausted,
            "transport" => FailureKind::Transport,
            "cancelled" => FailureKind::Cancelled,
            _ => return None,
        })
    }
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One event given up on, with what happened to it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct DeadLetter {
    /// The event, exactly as it was sent.
    pub envelope: EventEnvelope,
    /// The `Idempotency-Key` every attempt carried; a replay sends it again, so the server
    /// drops the event if one of the attempts did arrive.
    pub idempotency_key: IdempotencyKey,
    /// How delivery failed.
    pub kind: FailureKind,
    /// The error of the last attempt, as text.
    pub error: String,
    /// Attempts made, the first included (summed over replays).
    pub attempts: u32,
    /// The status of the last response, if there was one.
    pub last_status: Option<u16>,
    /// The `X-Request-Id` of the last send.
    pub request_id: Option<String>,
    /// When the event was given up on.
    pub dead_lettered_at: OffsetDateTime,
}

#[derive(Serialize)]
struct LineOut<'a> {
    envelope: &'a EventEnvelope,
    idempotency_key: &'a IdempotencyKey,
    error: ErrorOut<'a>,
    attempts: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<&'a str>,
    dead_lettered_at: String,
}

#[derive(Serialize)]
struct ErrorOut<'a> {
    kind: &'static str,
    message: &'a str,
}

#[derive(Deserialize)]
struct LineIn<'a> {
    /// Kept as text: [`EventEnvelope::from_json`] reads and validates it once.
    #[serde(borrow)]
    envelope: &'a serde_json::value::RawValue,
    idempotency_key: String,
    error: ErrorIn,
    #[serde(default)]
    attempts: u32,
    #[serde(default)]
    last_status: Option<u16>,
    #[serde(default)]
    request_id: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    dead_lettered_at: OffsetDateTime,
}

#[derive(Deserialize)]
struct ErrorIn {
    kind: String,
    #[serde(default)]
    message: String,
}

impl DeadLetter {
    /// The letter as one JSON line (without the trailing newline).
    pub fn to_json_line(&self) -> io::Result<String> {
        let at = self
            .dead_lettered_at
            .to_offset(time::UtcOffset::UTC)
            .format(&Rfc3339)
            .map_err(io::Error::other)?;
        let line = LineOut {
            envelope: &self.envelope,
            idempotency_key: &self.idempotency_key,
            error: ErrorOut {
                kind: self.kind.as_str(),
                message: &self.error,
            },
            attempts: self.attempts,
            last_status: self.last_status,
            request_id: self.request_id.as_deref(),
            dead_lettered_at: at,
        };
        serde_json::to_string(&line).map_err(io::Error::other)
    }

    /// Reads a line written by [`to_json_line`](Self::to_json_line). The envelope is
    /// validated again; a line that does not hold a valid letter is an
    /// [`io::ErrorKind::InvalidData`] error naming what is wrong.
    pub fn from_json_line(line: &str) -> io::Result<Self> {
        let invalid = |m: String| io::Error::new(io::ErrorKind::InvalidData, m);
        let raw: LineIn<'_> = serde_json::from_str(line).map_err(|e| invalid(e.to_string()))?;
        let envelope = EventEnvelope::from_json(raw.envelope.get().as_bytes())
            .map_err(|e| invalid(e.to_string()))?;
        let idempotency_key = parse_key(&raw.idempotency_key)
            .map_err(|e| invalid(format!("idempotency_key: {e}")))?;
        let kind = FailureKind::parse(&raw.error.kind)
            .ok_or_else(|| invalid(format!("unknown error kind `{}`", raw.error.kind)))?;
        Ok(DeadLetter {
            envelope,
            idempotency_key,
            kind,
            error: raw.error.message,
            attempts: raw.attempts,
            last_status: raw.last_status,
            request_id: raw.request_id,
            dead_lettered_at: raw.dead_lettered_at,
        })
    }
}

/// A key as written: a UUID in its hyphenated lowercase form becomes a UUID key again (so it
/// compares equal to the key that was written), anything else a custom key.
fn parse_key(text: &str) -> Result<IdempotencyKey, flagwire_core::events::EventError> {
    if let Ok(uuid) = uuid::Uuid::try_parse(text)
        && uuid
            .hyphenated()
            .encode_lower(&mut uuid::Uuid::encode_buffer())
            == text
    {
        return Ok(IdempotencyKey::from_uuid(uuid));
    }
    IdempotencyKey::custom(text)
}

/// Receives events that could not be delivered. Called on the task that sent the event,
/// right before the error is returned (or, for a send the caller abandoned, where its future
/// is dropped); it may block briefly (file I/O) but should not take long. An error it returns
/// reaches the caller with the delivery error ([`Error::NotDeadLettered`]); for an abandoned
/// send, which has no caller left, it is logged.
///
/// [`Error::NotDeadLettered`]: crate::Error::NotDeadLettered
///
/// Closures are sinks:
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use flagwire::esauti::{DeadLetter, DeadLetterSink};
///
/// let seen = Arc::new(Mutex::new(Vec::new()));
/// let keep = seen.clone();
/// let sink = move |letter: &DeadLetter| -> std::io::Result<()> {
///     keep.lock().unwrap().push(letter.idempotency_key.to_string());
///     Ok(())
/// };
/// fn assert_sink(_: impl DeadLetterSink) {}
/// assert_sink(sink);
/// ```
pub trait DeadLetterSink: Send + Sync + 'static {
    /// Takes one undeliverable event.
    fn dead_letter(&self, letter: &DeadLetter) -> io::Result<()>;
}

impl<F> DeadLetterSink for F
where
    F: Fn(&DeadLetter) -> io::Result<()> + Send + Sync + 'static,
{
    fn dead_letter(&self, letter: &DeadLetter) -> io::Result<()> {
        self(letter)
    }
}

/// Appends dead letters to a JSON Lines file, one event per line:
///
/// ```json
/// {"envelope":{"id":"evt_…","type":"order.created",…},"idempotency_key":"0193…",
///  "error":{"kind":"retries_exhausted","message":"the API answered 503 Service Unavailable"},
///  "attempts":3,"last_status":503,"request_id":"0193…","dead_lettered_at":"2026-01-02T03:04:05Z"}
/// ```
///
/// The envelope is kept whole (it is what gets replayed), so the file holds the events'
/// personal data; it never holds credentials or signatures. An event is dead-lettered once,
/// after the last attempt of [`Events::send`](super::Events::send) failed (or when the caller
/// abandoned the send); invalid events are refused before any I/O and never get here.
///
/// Each letter is one `write` of a whole line to a file opened in append mode, under a lock
/// shared with [`Events::replay`](super::Events::replay) of the same path in this process, so
/// a replay that rewrites the file never loses a letter written meanwhile. A line cut short
/// by a crash is ended before the next letter is appended, so it can never swallow it; a
/// replay reports it as an invalid line. Parent directories are created on the first write.
#[derive(Debug, Clone)]
pub struct JsonlDeadLetters {
    file: JsonlFile,
}

impl JsonlDeadLetters {
    /// A sink writing to `path` (opened on each write, so the file can be rotated or replayed
    /// while the client runs).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        JsonlDeadLetters {
            file: JsonlFile::new(path.into()),
        }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        self.file.path()
    }
}

impl DeadLetterSink for JsonlDeadLetters {
    fn dead_letter(&self, letter: &DeadLetter) -> io::Result<()> {
        let mut line = letter.to_json_line()?;
        line.push('\n');
        self.file.append(line.as_bytes())
    }
}

/// A line of a dead-letter file, as read for a replay.
pub(crate) enum Entry {
    /// A letter to resend, with its line as read (kept as it is when the letter is not
    /// tried).
    Letter(Box<DeadLetter>, String),
    /// A line that is not a valid letter; kept as it is.
    Invalid(InvalidLine, String),
}

/// Starts a replay of `path` and reads its entries; `Ok(None)` when the file does not exist.
pub(crate) fn open_replay(path: &Path) -> io::Result<Option<(ReplayFile, Vec<Entry>)>> {
    let Some((file, lines)) = ReplayFile::open(path)? else {
        return Ok(None);
    };
    let entries = lines
        .into_iter()
        .map(|line| {
            let parsed = line
                .check_complete()
                .and_then(|()| DeadLetter::from_json_line(&line.text).map_err(|e| e.to_string()));
            match parsed {
                Ok(letter) => Entry::Letter(Box::new(letter), line.text),
                Err(reason) => Entry::Invalid(
                    InvalidLine {
                        line: line.number,
                        reason,
                    },
                    line.text,
                ),
            }
        })
        .collect();
    Ok(Some((file, entries)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use flagwire_core::esauti::EventType;
    use std::fs;

    pub(crate) fn letter(value: i64) -> DeadLetter {
        let envelope = EventEnvelope::builder(EventType::OrderCreated)
            .customer_id("cus_1")
            .property("currency", "KES")
            .property("value", value)
            .build()
            .unwrap();
        DeadLetter {
            envelope,
            idempotency_key: IdempotencyKey::new_v7(),
            kind: FailureKind::RetriesExhausted,
            error: "the API answered 503 Service Unavailable".into(),
            attempts: 3,
            last_status: Some(503),
            request_id: Some("req-1".into()),
            dead_lettered_at: time::macros::datetime!(2026-01-02 03:04:05 UTC),
        }
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "flagwire-esauti-dl-{name}-{}-{}",
            std::process::id(),
            fastrand::u64(..)
        ));
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn line_format_round_trips() {
        let l = letter(0);
        let line = l.to_json_line().unwrap();
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["idempotency_key"], l.idempotency_key.to_string());
        assert_eq!(v["error"]["kind"], "retries_exhausted");
        assert_eq!(
            v["error"]["message"],
            "the API answered 503 Service Unavailable"
        );
        assert_eq!(v["attempts"], 3);
        assert_eq!(v["last_status"], 503);
        assert_eq!(v["request_id"], "req-1");
        assert_eq!(v["dead_lettered_at"], "2026-01-02T03:04:05Z");
        assert_eq!(v["envelope"]["type"], "order.created");
        assert_eq!(v["envelope"]["properties"]["value"], 0);
        assert!(!line.contains('\n'));
        assert_eq!(DeadLetter::from_json_line(&line).unwrap(), l);
    }

    #[test]
    fn bad_lines_are_invalid_data() {
        for bad in [
            "not json",
            r#"{"envelope":{},"idempotency_key":"k","error":{"kind":"rejected"},"dead_lettered_at":"2026-01-02T03:04:05Z"}"#,
        ] {
            let err = DeadLetter::from_json_line(bad).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{bad}");
        }
        let mut v: serde_json::Value =
            serde_json::from_str(&letter(1).to_json_line().unwrap()).unwrap();
        v["error"]["kind"] = "odd".into();
        assert!(DeadLetter::from_json_line(&v.to_string()).is_err());
    }

    #[test]
    fn file_sink_appends_and_replay_keeps_the_tail_and_reports_bad_lines() {
        let dir = temp_dir("sink");
        let path = dir.join("nested").join("events.jsonl");
        let sink = JsonlDeadLetters::new(&path);
        let (a, b) = (letter(1), letter(2));
        sink.dead_letter(&a).unwrap();
        sink.dead_letter(&b).unwrap();
        fs::write(
            &path,
            format!("{}garbage line\n", fs::read_to_string(&path).unwrap()),
        )
        .unwrap();

        let (replay, entries) = open_replay(&path).unwrap().unwrap();
        assert_eq!(entries.len(), 3);
        assert!(
            matches!(&entries[0], Entry::Letter(l, t) if **l == a && *t == a.to_json_line().unwrap())
        );
        assert!(
            matches!(&entries[2], Entry::Invalid(bad, t) if t == "garbage line" && bad.line == 3 && bad.reason.contains("expected"))
        );
        // A second replay of the same path is refused while this one runs.
        assert!(open_replay(&path).is_err());
        // Written during the replay: must survive the rewrite.
        let c = letter(3);
        sink.dead_letter(&c).unwrap();
        let keep = vec![b.to_json_line().unwrap(), "garbage line".to_owned()];
        assert_eq!(replay.finish(&keep).unwrap(), 1);

        let text = fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(DeadLetter::from_json_line(lines[0]).unwrap(), b);
        assert_eq!(lines[1], "garbage line");
        assert_eq!(DeadLetter::from_json_line(lines[2]).unwrap(), c);
        // No temporary file is left behind, and the path can be replayed again.
        assert_eq!(fs::read_dir(path.parent().unwrap()).unwrap().count(), 1);
        assert!(open_replay(&path).unwrap().is_some());
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_torn_last_line_never_swallows_the_next_letter() {
        let dir = temp_dir("torn");
        let path = dir.join("events.jsonl");
        let sink = JsonlDeadLetters::new(&path);
        let (a, b) = (letter(1), letter(2));
        sink.dead_letter(&a).unwrap();
        // A crash in the middle of writing the next line.
        let half = &b.to_json_line().unwrap()[..40];
        let mut f = fs::OpenOptions::new().append(true).open(&path).unwrap();
        std::io::Write::write_all(&mut f, half.as_bytes()).unwrap();
        drop(f);
        let c = letter(3);
        sink.dead_letter(&c).unwrap();
        let (_replay, entries) = open_replay(&path).unwrap().unwrap();
        assert_eq!(entries.len(), 3);
        assert!(matches!(&entries[0], Entry::Letter(l, _) if **l == a));
        assert!(matches!(&entries[1], Entry::Invalid(bad, t) if bad.line == 2 && t == half));
        assert!(matches!(&entries[2], Entry::Letter(l, _) if **l == c));
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn missing_file_is_nothing_to_replay() {
        let dir = temp_dir("missing");
        assert!(open_replay(&dir.join("none.jsonl")).unwrap().is_none());
        fs::remove_dir_all(dir).unwrap();
    }
}
