//! Replay of a Schematic dead-letter file: [`replay_dead_letters`].

use std::io;
use std::path::Path;
use std::time::Duration;

use flagwire_core::events::{ApiKey, BatchEncoder, MAX_BATCH_EVENTS};
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::value::RawValue;
use time::OffsetDateTime;

use super::deadletter::{DeadEvents, DeadLetter, DeadLetterReason, JsonlDeadLetterFile};
use super::jsonl::{Line, ReplayFile};
use super::worker::exponential_backoff;
use super::{Batch, BatchSender, SendError};

/// Attempts per batch during a replay.
const REPLAY_ATTEMPTS: u32 = 3;

/// A line of a dead-letter file that is not a valid letter; it is kept as
/// it is.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct InvalidLine {
    /// 1-based line number in the file as it was read.
    pub line: usize,
    /// What is wrong with it.
    pub reason: String,
}

/// What a replay of a dead-letter file did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReplayReport {
    /// Letters read from the file.
    pub read: usize,
    /// Letters the capture service accepted now (and removed from the file).
    pub delivered: usize,
    /// Letters that failed again; they stay in the file with updated
    /// details.
    pub failed: usize,
    /// Letters not tried because an earlier batch met an outage (retryable
    /// failures on every attempt); they stay in the file as they were.
    pub skipped: usize,
    /// Lines that were not valid letters; they stay in the file untouched.
    pub invalid: usize,
    /// Why each of those lines is invalid.
    pub invalid_lines: Vec<InvalidLine>,
    /// Lines the file holds after the replay (failed + skipped + invalid +
    /// letters written while the replay ran).
    pub remaining: usize,
}

#[derive(Deserialize)]
struct LineIn<'a> {
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    attempts: u32,
    #[serde(borrow)]
    event: &'a RawValue,
}

/// The envelope fields a replay relies on.
#[derive(Deserialize)]
struct EventCheck<'a> {
    #[serde(rename = "type", borrow)]
    event_type: &'a str,
    #[serde(default)]
    body: Option<IgnoredAny>,
    #[serde(borrow)]
    idempotency_key: std::borrow::Cow<'a, str>,
    #[serde(default)]
    api_key: Option<IgnoredAny>,
}

/// A letter to resend.
#[derive(Debug)]
struct Letter {
    line: Line,
    event: Vec<u8>,
    attempts: u32,
}

/// Parses one line; `Err` says why it is not a letter.
fn parse(line: &Line) -> Result<Letter, String> {
    line.check_complete()?;
    let parsed: LineIn<'_> =
        serde_json::from_str(&line.text).map_err(|e| format!("not a dead letter: {e}"))?;
    if let Some(reason) = &parsed.reason
        && DeadLetterReason::parse(reason).is_none()
    {
        return Err(format!("unknown reason `{reason}`"));
    }
    let event = parsed.event.get();
    let check: EventCheck<'_> =
        serde_json::from_str(event).map_err(|e| format!("`event` is not an event: {e}"))?;
    if check.event_type.is_empty() {
        return Err("`event.type` is empty".to_owned());
    }
    if check.body.is_none() {
        return Err("`event.body` is missing".to_owned());
    }
    if check.idempotency_key.is_empty() {
        return Err("`event.idempotency_key` is empty".to_owned());
    }
    if check.api_key.is_some() {
        return Err("`event` holds an `api_key`; dead letters are stored without it".to_owned());
    }
    if !event.starts_with("{\"") {
        return Err("`event` is not written compactly".to_owned());
    }
    Ok(Letter {
        line: line.clone(),
        event: event.as_bytes().to_vec(),
        attempts: parsed.attempts,
    })
}

/// The letter's line with new failure details.
fn updated_line(
    letter: &Letter,
    reason: DeadLetterReason,
    error: &SendError,
    attempts: u32,
) -> io::Result<String> {
    let ends = [letter.event.len() as u32];
    let message = error.to_string();
    let dead = DeadLetter {
        events: DeadEvents::new(&letter.event, &ends, 0),
        reason,
        error: Some(&message),
        attempts: letter.attempts.saturating_add(attempts),
        last_status: error.status(),
        at: OffsetDateTime::now_utc(),
    };
    let mut out = Vec::new();
    JsonlDeadLetterFile::write_lines(&mut out, &dead)?;
    if out.last() == Some(&b'\n') {
        out.pop();
    }
    String::from_utf8(out).map_err(io::Error::other)
}

/// Resends the dead letters of a JSON Lines file written by
/// [`JsonlDeadLetterFile`], with their original idempotency keys (so an
/// event the capture service already has is dropped, not counted twice),
/// through `sender` with `api_key`, then atomically rewrites the file with
/// only what is still undelivered.
///
/// * Letters go in file order, in batches of up to 100, each batch tried up
///   to three times (1 s and 2 s apart, or as `Retry-After` says, at most
///   5 s). A letter leaves the file only after its batch got a 2xx, so a
///   letter is delivered once per successful replay, never lost.
/// * A batch rejected for good is resent one letter at a time, so one bad
///   event does not keep the others back; the letters rejected again stay
///   with the new reason, error and attempt count.
/// * After a batch fails on every attempt (an outage), the rest is kept
///   without being tried.
/// * Lines that are not valid letters (including a last line cut short by
///   a crash) are kept as they are and listed in
///   [`ReplayReport::invalid_lines`] with the reason.
/// * Letters appended while the replay runs (by a sink of this process)
///   are kept. Only one replay of a file runs at a time in a process. A
///   missing file is nothing to replay.
pub async fn replay_dead_letters(
    path: impl AsRef<Path>,
    api_key: &ApiKey,
    sender: &dyn BatchSender,
) -> io::Result<ReplayReport> {
    let Some((file, lines)) = ReplayFile::open(path.as_ref())? else {
        return Ok(ReplayReport::default());
    };
    let mut report = ReplayReport::default();
    // (line number, text) of every line to keep, in file order.
    let mut keep: Vec<(usize, String)> = Vec::new();
    let mut letters = Vec::new();
    for line in lines {
        match parse(&line) {
            Ok(letter) => letters.push(letter),
            Err(reason) => {
                report.invalid += 1;
                report.invalid_lines.push(InvalidLine {
                    line: line.number,
                    reason,
                });
                keep.push((line.number, line.text));
            }
        }
    }
    report.read = letters.len();
    let mut encoder = BatchEncoder::new();
    let mut outage = false;
    for batch in letters.chunks(MAX_BATCH_EVENTS) {
        if outage {
            report.skipped += batch.len();
            keep.extend(batch.iter().map(|l| (l.line.number, l.line.text.clone())));
            continue;
        }
        match send(&mut encoder, api_key, sender, batch).await {
            (Ok(()), _) => report.delivered += batch.len(),
            (Err(e), attempts) if e.is_retryable() => {
                outage = true;
                report.failed += batch.len();
                for letter in batch {
                    let line =
                        updated_line(letter, DeadLetterReason::RetriesExhausted, &e, attempts)?;
                    keep.push((letter.line.number, line));
                }
            }
            (Err(_), _) => {
                // Find the letters the service refuses, one at a time.
                for (i, letter) in batch.iter().enumerate() {
                    if outage {
                        report.skipped += batch.len() - i;
                        keep.extend(
                            batch[i..]
                                .iter()
                                .map(|l| (l.line.number, l.line.text.clone())),
                        );
                        break;
                    }
                    match send(&mut encoder, api_key, sender, std::slice::from_ref(letter)).await {
                        (Ok(()), _) => report.delivered += 1,
                        (Err(e), attempts) => {
                            outage = e.is_retryable();
                            report.failed += 1;
                            let reason = if outage {
                                DeadLetterReason::RetriesExhausted
                            } else {
                                DeadLetterReason::Rejected
                            };
                            keep.push((
                                letter.line.number,
                                updated_line(letter, reason, &e, attempts)?,
                            ));
                        }
                    }
                }
            }
        }
    }
    keep.sort_by_key(|(number, _)| *number);
    let keep: Vec<String> = keep.into_iter().map(|(_, text)| text).collect();
    let appended = file.finish(&keep)?;
    report.remaining = keep.len() + appended;
    tracing::info!(
        read = report.read,
        delivered = report.delivered,
        failed = report.failed,
        skipped = report.skipped,
        invalid = report.invalid,
        remaining = report.remaining,
        "replayed Schematic dead letters"
    );
    Ok(report)
}

/// Sends one batch of letters with up to [`REPLAY_ATTEMPTS`] attempts;
/// returns the outcome and the attempts made.
async fn send(
    encoder: &mut BatchEncoder,
    api_key: &ApiKey,
    sender: &dyn BatchSender,
    letters: &[Letter],
) -> (Result<(), SendError>, u32) {
    let body = match encoder.encode_keyless(api_key, letters.iter().map(|l| l.event.as_slice())) {
        Ok(body) => body,
        Err(e) => return (Err(SendError::permanent(e.to_string())), 0),
    };
    let mut attempt = 0;
    loop {
        attempt += 1;
        let outcome = sender
            .send(Batch::new(body.clone(), letters.len(), attempt))
            .await;
        match outcome {
            Err(e) if e.is_retryable() && attempt < REPLAY_ATTEMPTS => {
                let cap = Duration::from_secs(5);
                let delay = e.retry_after().map_or_else(
                    || exponential_backoff(Duration::from_secs(1), cap, attempt, 0.0),
                    |wait| wait.min(cap),
                );
                tokio::time::sleep(delay).await;
            }
            other => return (other, attempt),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(text: &str) -> Line {
        Line {
            number: 1,
            text: text.to_owned(),
            complete: true,
        }
    }

    #[test]
    fn lines_are_checked_with_a_reason() {
        let ok = r#"{"idempotency_key":"k","reason":"rejected","attempts":1,"dead_lettered_at":"2026-01-01T00:00:00Z","event":{"type":"track","body":{"event":"e"},"sent_at":"2026-01-01T00:00:00Z","idempotency_key":"k"}}"#;
        assert!(parse(&line(ok)).is_ok());
        let cases = [
            ("garbage", "not a dead letter"),
            (r#"{"reason":"odd","event":{}}"#, "unknown reason"),
            (
                r#"{"event":{"type":"track","idempotency_key":"k"}}"#,
                "`event.body` is missing",
            ),
            (
                r#"{"event":{"type":"track","body":{},"idempotency_key":""}}"#,
                "is empty",
            ),
            (
                r#"{"event":{"api_key":"x","type":"track","body":{},"idempotency_key":"k"}}"#,
                "api_key",
            ),
            (r#"{"event":[1]}"#, "is not an event"),
        ];
        for (text, reason) in cases {
            let err = parse(&line(text)).err().unwrap_or_default();
            assert!(err.contains(reason), "{text}: {err}");
        }
        let torn = Line {
            complete: false,
            ..line(ok)
        };
        assert!(parse(&torn).unwrap_err().contains("cut short"));
    }
}
