//! Event Injection: [`Events`] builds, sends and replays events.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use flagwire_core::esauti::{EnvelopeBuilder, EnvelopeError, EventEnvelope, EventType};
use flagwire_core::events::IdempotencyKey;
use flagwire_transport::{Attempt, TransportError};
use http::header::{ACCEPT, CONTENT_TYPE};
use http::{HeaderName, HeaderValue, Method, Request};
use time::OffsetDateTime;
use tower::{Layer, Service, ServiceExt};

use super::client::{Client, api_error};
use super::deadletter::{DeadLetter, Entry, FailureKind, open_replay};
use super::receipt::Receipt;
use crate::error::Error;
use crate::events::InvalidLine;

/// `Idempotency-Key`.
pub const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
/// `X-Request-Id`.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// `X-eSauti-Source`.
pub const SOURCE: HeaderName = HeaderName::from_static("x-esauti-source");

/// Anything [`Events::send`] accepts: a built [`EventEnvelope`] or an [`EnvelopeBuilder`]
/// (built, and so validated, inside `send` before any I/O).
pub trait IntoEnvelope {
    /// The envelope, validated.
    fn into_envelope(self) -> Result<EventEnvelope, EnvelopeError>;
}

impl IntoEnvelope for EventEnvelope {
    fn into_envelope(self) -> Result<EventEnvelope, EnvelopeError> {
        Ok(self)
    }
}

impl IntoEnvelope for EnvelopeBuilder {
    fn into_envelope(self) -> Result<EventEnvelope, EnvelopeError> {
        self.build()
    }
}

/// Per-event options of [`Events::send_with`].
///
/// ```
/// use std::time::Duration;
/// use flagwire::esauti::SendOptions;
/// use flagwire_core::events::IdempotencyKey;
///
/// let options = SendOptions::new()
///     .idempotency_key(IdempotencyKey::custom("order-42-created")?)
///     .request_id("req-7")
///     .max_retries(0)
///     .timeout(Duration::from_secs(5))
///     .dead_letter(false);
/// # Ok::<(), flagwire_core::events::EventError>(())
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SendOptions {
    /// The `Idempotency-Key`; `None` generates a UUIDv7.
    pub idempotency_key: Option<IdempotencyKey>,
    /// The `X-Request-Id`; `None` generates a UUIDv7.
    pub request_id: Option<String>,
    /// Retries after the first attempt; `None` keeps the client's.
    pub max_retries: Option<u32>,
    /// Overall deadline; `None` keeps the client's.
    pub timeout: Option<std::time::Duration>,
    /// Whether a failed event goes to the client's dead-letter sink (default `true`).
    pub dead_letter: bool,
}

impl Default for SendOptions {
    fn default() -> Self {
        SendOptions {
            idempotency_key: None,
            request_id: None,
            max_retries: None,
            timeout: None,
            dead_letter: true,
        }
    }
}

impl SendOptions {
    /// The defaults.
    pub fn new() -> Self {
        SendOptions::default()
    }

    /// Sends with this idempotency key (e.g. one derived from your own event id).
    pub fn idempotency_key(mut self, key: IdempotencyKey) -> Self {
        self.idempotency_key = Some(key);
        self
    }

    /// Sends with this request id.
    pub fn request_id(mut self, id: impl Into<String>) -> Self {
        self.request_id = Some(id.into());
        self
    }

    /// Overrides the number of retries (0: a single attempt).
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.max_retries = Some(retries);
        self
    }

    /// Overrides the overall deadline.
    pub fn timeout(mut self, timeout: std::time::Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Whether a failure is dead-lettered (default `true`).
    pub fn dead_letter(mut self, on: bool) -> Self {
        self.dead_letter = on;
        self
    }
}

/// What [`Events::replay`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReplayReport {
    /// Letters read from the file.
    pub read: usize,
    /// Letters the server accepted now (duplicates included).
    pub delivered: usize,
    /// Of those, how many the server had already received (an earlier attempt did arrive).
    pub duplicates: usize,
    /// Letters that failed again; they stay in the file with updated details.
    pub failed: usize,
    /// Letters not tried because an earlier one met an outage (retries exhausted or no
    /// answer); they stay in the file as they were.
    pub skipped: usize,
    /// Lines that were not valid letters; they stay in the file untouched.
    pub invalid: usize,
    /// Why each of those lines is invalid (with its line number), including a last line cut
    /// short by a crash.
    pub invalid_lines: Vec<InvalidLine>,
    /// Lines the file holds after the replay (failed + skipped + invalid + letters written
    /// while the replay ran).
    pub remaining: usize,
}

/// A failed delivery, with what a dead letter records.
struct Failure {
    error: Error,
    kind: FailureKind,
    attempts: u32,
    last_status: Option<u16>,
}

/// Event Injection of a [`Client`]; get one with [`Client::events`].
///
/// One send is one logical request through the transport's single retry loop:
///
/// 1. the envelope is built and validated (an invalid event is refused here, before any I/O,
///    and is not dead-lettered), then encoded once: those bytes are what every attempt sends
///    and signs;
/// 2. an `Idempotency-Key` is chosen once (a fresh UUIDv7 unless given) and an `X-Request-Id`
///    once; `X-eSauti-Source` repeats the envelope's `source`;
/// 3. the transport sends up to `max_retries + 1` attempts; each attempt is signed afresh
///    (new `X-eSauti-Timestamp`, new signature) and carries the same key and body;
/// 4. a `2xx` becomes a [`Receipt`]; anything else is an error, after the event went to the
///    dead-letter sink with its key. If the sink cannot take it, the error is
///    [`Error::NotDeadLettered`], carrying both causes.
///
/// A send the caller abandons (its future dropped, e.g. by a `tokio::time::timeout`) before
/// an answer came is dead-lettered too, as [`FailureKind::Cancelled`], where the future is
/// dropped: the server may have received the event, and a replay with the same idempotency
/// key is recorded once either way. Only a sink failure then has no caller to reach; it is
/// logged at `error`.
#[derive(Debug, Clone, Copy)]
pub struct Events<'a> {
    client: &'a Client,
}

impl<'a> Events<'a> {
    pub(crate) fn new(client: &'a Client) -> Self {
        Events { client }
    }

    /// A builder for an event of `event_type` whose `source` is the client's. Finish it and
    /// pass it (or the built envelope) to [`send`](Self::send).
    pub fn event(&self, event_type: impl Into<EventType>) -> EnvelopeBuilder {
        EventEnvelope::builder(event_type).source(self.client.inner.source.clone())
    }

    /// Validates and sends one event; see the [type docs](Events).
    ///
    /// Errors: [`Error::Envelope`] for an invalid event (nothing sent, nothing
    /// dead-lettered); [`Error::Api`] when the server answered non-2xx (after retries, for
    /// retryable statuses); [`Error::Transport`] when no answer came; [`Error::Config`] when
    /// the client has no events URL; [`Error::NotDeadLettered`] when delivery failed and the
    /// dead-letter sink failed too.
    pub async fn send(&self, event: impl IntoEnvelope) -> Result<Receipt, Error> {
        self.send_with(event, SendOptions::default()).await
    }

    /// [`send`](Self::send) with per-event options.
    pub async fn send_with(
        &self,
        event: impl IntoEnvelope,
        mut options: SendOptions,
    ) -> Result<Receipt, Error> {
        let envelope = event.into_envelope()?;
        let key = options
            .idempotency_key
            .take()
            .unwrap_or_else(IdempotencyKey::new_v7);
        let request_id = options
            .request_id
            .take()
            .unwrap_or_else(|| IdempotencyKey::new_v7().to_string());
        let request = self.prepare(&envelope, &key, &request_id, &options)?;
        let attempts = AttemptCount::default();
        // Dead-letters the event if this future is dropped before the answer.
        let mut pending = PendingSend {
            events: *self,
            envelope: Some(envelope),
            key,
            request_id,
            attempts: attempts.clone(),
            armed: options.dead_letter,
        };
        let Some(envelope) = pending.envelope.as_ref() else {
            unreachable!("the envelope was stored just above");
        };
        let outcome = self
            .execute(
                request,
                envelope,
                &pending.key,
                &pending.request_id,
                attempts,
            )
            .await;
        pending.armed = false;
        match outcome {
            Ok(receipt) => Ok(receipt),
            Err(failure) => {
                let written = match (options.dead_letter, pending.envelope.take()) {
                    (true, Some(envelope)) => self.dead_letter(
                        envelope,
                        pending.key.clone(),
                        pending.request_id.clone(),
                        failure.kind,
                        &self.stored_error(&failure.error),
                        failure.attempts,
                        failure.last_status,
                    ),
                    _ => Ok(()),
                };
                match written {
                    Ok(()) => Err(failure.error),
                    Err(write_error) => Err(Error::NotDeadLettered {
                        error: Box::new(failure.error),
                        write_error,
                    }),
                }
            }
        }
    }

    /// Resends the dead letters of a JSON Lines file (as written by
    /// [`JsonlDeadLetters`](super::JsonlDeadLetters)) with their original idempotency keys,
    /// so an event the server did receive before is not recorded twice, then atomically
    /// rewrites the file with only what still failed.
    ///
    /// Letters are sent in file order, without going to the dead-letter sink again. After a
    /// failure that looks like an outage (retries exhausted, no answer) the rest are kept
    /// without being tried. Lines that are not valid letters (including a last line cut short
    /// by a crash) are kept as they are and listed with the reason in
    /// [`ReplayReport::invalid_lines`]. A missing file is nothing to replay. Letters written
    /// to the file while the replay runs (by this process) are kept. Only one replay of a file
    /// runs at a time in a process.
    pub async fn replay(&self, path: impl AsRef<Path>) -> Result<ReplayReport, Error> {
        let Some((file, entries)) = open_replay(path.as_ref()).map_err(Error::DeadLetter)? else {
            return Ok(ReplayReport::default());
        };
        let mut report = ReplayReport::default();
        let mut keep = Vec::new();
        let mut outage = false;
        for entry in entries {
            let mut letter = match entry {
                Entry::Invalid(bad, line) => {
                    report.invalid += 1;
                    report.invalid_lines.push(bad);
                    keep.push(line);
                    continue;
                }
                Entry::Letter(letter, line) => {
                    report.read += 1;
                    if outage {
                        report.skipped += 1;
                        keep.push(line);
                        continue;
                    }
                    *letter
                }
            };
            let request_id = IdempotencyKey::new_v7().to_string();
            let options = SendOptions::default();
            let request = self.prepare(
                &letter.envelope,
                &letter.idempotency_key,
                &request_id,
                &options,
            )?;
            match self
                .execute(
                    request,
                    &letter.envelope,
                    &letter.idempotency_key,
                    &request_id,
                    AttemptCount::default(),
                )
                .await
            {
                Ok(receipt) => {
                    report.delivered += 1;
                    report.duplicates += usize::from(receipt.duplicate);
                }
                Err(failure) => {
                    report.failed += 1;
                    outage = failure.kind != FailureKind::Rejected;
                    letter.kind = failure.kind;
                    letter.error = self.stored_error(&failure.error);
                    letter.attempts = letter.attempts.saturating_add(failure.attempts);
                    letter.last_status = failure.last_status;
                    letter.request_id = Some(request_id);
                    letter.dead_lettered_at = self.now();
                    keep.push(letter.to_json_line().map_err(Error::DeadLetter)?);
                }
            }
        }
        let appended = file.finish(&keep).map_err(Error::DeadLetter)?;
        report.remaining = keep.len() + appended;
        tracing::info!(
            read = report.read,
            delivered = report.delivered,
            duplicates = report.duplicates,
            failed = report.failed,
            skipped = report.skipped,
            invalid = report.invalid,
            remaining = report.remaining,
            "replayed eSauti dead letters"
        );
        Ok(report)
    }

    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::from((self.client.inner.clock)())
    }

    fn stored_error(&self, error: &Error) -> String {
        self.client
            .inner
            .secret_redactor
            .redact(&error.to_string())
            .into_owned()
    }

    /// The request for one event; every check that needs no I/O happens here.
    fn prepare(
        &self,
        envelope: &EventEnvelope,
        key: &IdempotencyKey,
        request_id: &str,
        options: &SendOptions,
    ) -> Result<Request<Bytes>, Error> {
        let target = self
            .client
            .inner
            .events
            .as_ref()
            .ok_or_else(|| Error::config("no events URL is configured"))?;
        let source = HeaderValue::try_from(envelope.source())
            .map_err(|_| Error::config("the event's source cannot be sent in a header"))?;
        let key_value = key
            .with_str(|s| HeaderValue::try_from(s))
            .map_err(|_| Error::config("the idempotency key cannot be sent in a header"))?;
        let request_id_value = HeaderValue::try_from(request_id)
            .map_err(|_| Error::config("the request id cannot be sent in a header"))?;
        let body = envelope.to_bytes()?;
        let mut request = Request::builder()
            .method(Method::POST)
            .uri(target.endpoint.clone())
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .header(ACCEPT, HeaderValue::from_static("application/json"))
            .header(IDEMPOTENCY_KEY, key_value)
            .header(REQUEST_ID, request_id_value)
            .header(SOURCE, source)
            .body(body)
            .map_err(|e| Error::config(format!("could not build the event request: {e}")))?;
        let mut transport = flagwire_transport::RequestOptions::new();
        if let Some(t) = options.timeout {
            transport = transport.timeout(t);
        }
        if let Some(r) = options.max_retries {
            transport = transport.max_retries(r);
        }
        request.extensions_mut().insert(transport);
        Ok(request)
    }

    async fn execute(
        &self,
        mut request: Request<Bytes>,
        envelope: &EventEnvelope,
        key: &IdempotencyKey,
        request_id: &str,
        attempts: AttemptCount,
    ) -> Result<Receipt, Failure> {
        let inner = &self.client.inner;
        let Some(target) = inner.events.as_ref() else {
            // `prepare` already checked; kept total rather than panicking.
            return Err(Failure {
                error: Error::config("no events URL is configured"),
                kind: FailureKind::Transport,
                attempts: 0,
                last_status: None,
            });
        };
        request.extensions_mut().insert(attempts.clone());
        tracing::debug!(
            event_type = %envelope.event_type(),
            event_id = %envelope.id(),
            idempotency_key = %key,
            request_id,
            "sending eSauti event"
        );
        if tracing::enabled!(tracing::Level::TRACE) {
            tracing::trace!(
                body = %inner.log_redactor.redact_body(request.body()),
                "eSauti event body"
            );
        }
        let outcome = target.transport.clone().oneshot(request).await;
        let (response, kind) = match outcome {
            Ok(response) if response.status().is_success() => {
                let mut receipt = Receipt::parse(response.status(), response.body());
                receipt.idempotency_key = Some(key.clone());
                receipt.request_id = Some(request_id.to_owned());
                receipt.attempts = attempts.get().max(1);
                tracing::debug!(
                    status = response.status().as_u16(),
                    event_id = receipt.event_id.as_deref(),
                    duplicate = receipt.duplicate,
                    attempts = receipt.attempts,
                    "eSauti event delivered"
                );
                return Ok(receipt);
            }
            Ok(response) => (response, FailureKind::Rejected),
            Err(TransportError::RetriesExhausted {
                last_response: Some(last),
                ..
            }) => (*last.0, FailureKind::RetriesExhausted),
            // No answer to report: the error itself is the failure.
            Err(err) => {
                let (kind, tried) = match &err {
                    TransportError::RetriesExhausted { attempts: n, .. } => {
                        (FailureKind::RetriesExhausted, *n)
                    }
                    _ => (FailureKind::Transport, 1),
                };
                let tried = tried.max(attempts.get());
                let last_status = err.status().map(|s| s.as_u16());
                return Err(self.failed(Error::Transport(err), kind, tried, last_status));
            }
        };
        let attempts = attempts.get().max(1);
        let error = api_error(&response, Some(request_id));
        let status = response.status().as_u16();
        Err(self.failed(error, kind, attempts, Some(status)))
    }

    fn failed(
        &self,
        error: Error,
        kind: FailureKind,
        attempts: u32,
        last_status: Option<u16>,
    ) -> Failure {
        tracing::warn!(
            kind = kind.as_str(),
            attempts,
            last_status,
            error = %self.client.inner.log_redactor.redact(&error.to_string()),
            "eSauti event not delivered"
        );
        Failure {
            error,
            kind,
            attempts,
            last_status,
        }
    }

    /// Hands one letter to the client's sink (none configured: nothing to do).
    #[allow(clippy::too_many_arguments)]
    fn dead_letter(
        &self,
        envelope: EventEnvelope,
        key: IdempotencyKey,
        request_id: String,
        kind: FailureKind,
        error: &str,
        attempts: u32,
        last_status: Option<u16>,
    ) -> std::io::Result<()> {
        let Some(sink) = &self.client.inner.dead_letter else {
            return Ok(());
        };
        let letter = DeadLetter {
            envelope,
            idempotency_key: key,
            kind,
            error: error.to_owned(),
            attempts,
            last_status,
            request_id: Some(request_id),
            dead_lettered_at: self.now(),
        };
        sink.dead_letter(&letter).inspect_err(|e| {
            tracing::error!(
                error = %e,
                idempotency_key = %letter.idempotency_key,
                "could not dead-letter an undeliverable eSauti event"
            );
        })
    }
}

/// A send in progress. Dropped while armed (the caller abandoned the send), it dead-letters
/// the event as [`FailureKind::Cancelled`].
struct PendingSend<'a> {
    events: Events<'a>,
    envelope: Option<EventEnvelope>,
    key: IdempotencyKey,
    request_id: String,
    attempts: AttemptCount,
    armed: bool,
}

impl Drop for PendingSend<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let Some(envelope) = self.envelope.take() else {
            return;
        };
        tracing::warn!(
            idempotency_key = %self.key,
            "an eSauti send was abandoned by its caller before an answer came; dead-lettering it"
        );
        let _ = self.events.dead_letter(
            envelope,
            self.key.clone(),
            std::mem::take(&mut self.request_id),
            FailureKind::Cancelled,
            "the caller abandoned the send before an answer came; the server may have received it",
            self.attempts.get(),
            None,
        );
    }
}

/// The highest attempt number that reached the bottom of the stack, shared through the
/// request's extensions (the retry layer clones them into every attempt).
#[derive(Clone, Default)]
pub(crate) struct AttemptCount(Arc<AtomicU32>);

impl AttemptCount {
    fn get(&self) -> u32 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Records each attempt's number into the request's [`AttemptCount`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct CountAttemptsLayer;

impl<S> Layer<S> for CountAttemptsLayer {
    type Service = CountAttempts<S>;

    fn layer(&self, inner: S) -> CountAttempts<S> {
        CountAttempts { inner }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct CountAttempts<S> {
    inner: S,
}

impl<S> Service<Request<Bytes>> for CountAttempts<S>
where
    S: Service<Request<Bytes>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<Bytes>) -> Self::Future {
        if let Some(count) = req.extensions().get::<AttemptCount>() {
            count.0.fetch_max(Attempt::of(&req), Ordering::Relaxed);
        }
        self.inner.call(req)
    }
}
