//! Events that could not be delivered: [`DeadLetter`], the [`DeadLetterSink`] seam, the JSON
//! Lines file [`JsonlDeadLetters`], and the file side of
//! [`Events::replay`](super::Events::replay).

use std::collections::HashMap;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};

use flagwire_core::esauti::EventEnvelope;
use flagwire_core::events::IdempotencyKey;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

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
}

impl FailureKind {
    /// The snake_case name written to files: `rejected`, `retries_exhausted`, `transport`.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Rejected => "rejected",
            FailureKind::RetriesExhausted => "retries_exhausted",
            FailureKind::Transport => "transport",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "rejected" => FailureKind::Rejected,
            "retries_exhausted" => FailureKind::RetriesExhausted,
            "transport" => FailureKind::Transport,
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
/// right before the error is returned; it may block briefly (file I/O) but should not take
/// long. An error it returns is logged; the caller still gets the delivery error.
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
/// after the last attempt of [`Events::send`](super::Events::send) failed; invalid events are
/// refused before any I/O and never get here.
///
/// Each letter is one `write` of a whole line to a file opened in append mode, under a lock
/// shared with [`Events::replay`](super::Events::replay) of the same path in this process, so
/// a replay that rewrites the file never loses a letter written meanwhile. Parent directories
/// are created on the first write.
#[derive(Debug, Clone)]
pub struct JsonlDeadLetters {
    path: PathBuf,
}

impl JsonlDeadLetters {
    /// A sink writing to `path` (opened on each write, so the file can be rotated or replayed
    /// while the client runs).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        JsonlDeadLetters { path: path.into() }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl DeadLetterSink for JsonlDeadLetters {
    fn dead_letter(&self, letter: &DeadLetter) -> io::Result<()> {
        let mut line = letter.to_json_line()?;
        line.push('\n');
        // The directory first: the lock is keyed by the resolved directory.
        if let Some(dir) = self.path.parent()
            && !dir.as_os_str().is_empty()
        {
            fs::create_dir_all(dir)?;
        }
        let state = PathState::of(&self.path);
        let _guard = state.lock();
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        file.write_all(line.as_bytes())?;
        file.flush()
    }
}

/// Per-path coordination inside this process between sinks and replays.
#[derive(Default)]
struct PathState {
    write: Mutex<()>,
    replaying: AtomicBool,
}

impl PathState {
    fn of(path: &Path) -> Arc<PathState> {
        static STATES: OnceLock<Mutex<HashMap<PathBuf, Arc<PathState>>>> = OnceLock::new();
        // One spelling per file: the directory resolved when it exists.
        let resolved = match (path.parent(), path.file_name()) {
            (Some(dir), Some(name)) => {
                let dir = if dir.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    dir
                };
                dir.canonicalize().ok().map(|d| d.join(name))
            }
            _ => None,
        };
        let key = resolved
            .or_else(|| std::path::absolute(path).ok())
            .unwrap_or_else(|| path.to_path_buf());
        let mut states = STATES
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        states.entry(key).or_default().clone()
    }

    fn lock(&self) -> MutexGuard<'_, ()> {
        self.write.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A line of a dead-letter file, as read for a replay.
pub(crate) enum Entry {
    /// A letter to resend, with its line as read (kept as it is when the letter is not
    /// tried).
    Letter(Box<DeadLetter>, String),
    /// A line that is not a valid letter; kept as it is.
    Invalid(String),
}

/// A dead-letter file being replayed. Only one replay of a path runs at a time in a process;
/// dropping the value ends it.
pub(crate) struct ReplayFile {
    path: PathBuf,
    state: Arc<PathState>,
    /// Bytes read; letters appended after that are carried over by [`finish`](Self::finish).
    read_len: u64,
}

impl Drop for ReplayFile {
    fn drop(&mut self) {
        self.state.replaying.store(false, Ordering::Release);
    }
}

impl ReplayFile {
    /// Starts a replay of `path` and reads its lines; `Ok(None)` when the file does not
    /// exist.
    pub(crate) fn open(path: &Path) -> io::Result<Option<(ReplayFile, Vec<Entry>)>> {
        let state = PathState::of(path);
        if state.replaying.swap(true, Ordering::AcqRel) {
            return Err(io::Error::other(format!(
                "a replay of {} is already running",
                path.display()
            )));
        }
        let mut replay = ReplayFile {
            path: path.to_path_buf(),
            state,
            read_len: 0,
        };
        let file = {
            let _guard = replay.state.lock();
            match File::open(path) {
                Ok(f) => f,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(e),
            }
        };
        let mut reader = BufReader::new(file);
        let mut entries = Vec::new();
        let mut line = String::new();
        loop {
            line.clear();
            let n = reader.read_line(&mut line)?;
            if n == 0 {
                break;
            }
            if !line.ends_with('\n') {
                // A line still being written: leave it to the tail copied by `finish`.
                break;
            }
            replay.read_len += n as u64;
            let text = line.trim_end_matches(['\n', '\r']);
            if text.trim().is_empty() {
                continue;
            }
            entries.push(match DeadLetter::from_json_line(text) {
                Ok(letter) => Entry::Letter(Box::new(letter), text.to_owned()),
                Err(_) => Entry::Invalid(text.to_owned()),
            });
        }
        Ok(Some((replay, entries)))
    }

    /// Atomically replaces the file with `keep` (one line each) followed by whatever was
    /// appended since it was read. Returns the number of appended lines carried over.
    pub(crate) fn finish(self, keep: &[String]) -> io::Result<usize> {
        let _guard = self.state.lock();
        let mut tail = Vec::new();
        match File::open(&self.path) {
            Ok(mut f) => {
                f.seek(SeekFrom::Start(self.read_len))?;
                f.read_to_end(&mut tail)?;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let appended = tail.iter().filter(|b| **b == b'\n').count();
        let tmp = temp_path(&self.path);
        let written = (|| {
            let mut out = File::create(&tmp)?;
            for line in keep {
                out.write_all(line.as_bytes())?;
                out.write_all(b"\n")?;
            }
            out.write_all(&tail)?;
            out.sync_all()
        })();
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        fs::rename(&tmp, &self.path).inspect_err(|_| {
            let _ = fs::remove_file(&tmp);
        })?;
        // Make the rename itself durable (best effort: not every platform can open a
        // directory).
        if let Some(dir) = self.path.parent()
            && let Ok(dir) = File::open(if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            })
        {
            let _ = dir.sync_all();
        }
        Ok(appended)
    }
}

fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "deadletter".to_owned());
    path.with_file_name(format!(".{name}.replay-{}", std::process::id()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use flagwire_core::esauti::EventType;

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
    fn file_sink_appends_and_replay_file_rewrites_keeping_the_tail() {
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

        let (replay, entries) = ReplayFile::open(&path).unwrap().unwrap();
        assert_eq!(entries.len(), 3);
        assert!(
            matches!(&entries[0], Entry::Letter(l, t) if **l == a && *t == a.to_json_line().unwrap())
        );
        assert!(matches!(&entries[2], Entry::Invalid(t) if t == "garbage line"));
        // A second replay of the same path is refused while this one runs.
        assert!(ReplayFile::open(&path).is_err());
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
        assert!(ReplayFile::open(&path).unwrap().is_some());
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn missing_file_is_nothing_to_replay() {
        let dir = temp_dir("missing");
        assert!(ReplayFile::open(&dir.join("none.jsonl")).unwrap().is_none());
        fs::remove_dir_all(dir).unwrap();
    }
}
