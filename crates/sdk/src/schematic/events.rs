//! Events: `identify` / `track` queue capture events; a [`BatchSender`] over
//! the transport delivers them to `{capture}/batch`.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use flagwire_core::StatusError;
use flagwire_core::events::{
    EventBody, EventEnvelope, EventOptions, IdentifyBody, InferenceBody, TrackBody,
};
use flagwire_transport::retry::retry_after;
use flagwire_transport::{BoxTransport, RequestOptions};
use futures_util::future::BoxFuture;
use http::header::CONTENT_TYPE;
use http::{HeaderValue, Method};
use tower::ServiceExt;

use super::client::Client;
use crate::error::Error;
use crate::events::{Batch, BatchSender, BufferStats, ReplayReport, SendError, ShutdownReport};

/// Posts encoded batches to `{capture}/batch` through a transport whose own
/// retries are off (the event buffer retries and dead-letters).
pub(crate) struct CaptureSender {
    transport: BoxTransport,
    url: http::Uri,
}

impl CaptureSender {
    pub(crate) fn new(transport: BoxTransport, url: http::Uri) -> Self {
        CaptureSender { transport, url }
    }
}

impl BatchSender for CaptureSender {
    fn send(&self, batch: Batch) -> BoxFuture<'static, Result<(), SendError>> {
        let transport = self.transport.clone();
        let request = http::Request::builder()
            .method(Method::POST)
            .uri(self.url.clone())
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .extension(RequestOptions::new().max_retries(0))
            .body(batch.body);
        Box::pin(async move {
            let request = request.map_err(|e| SendError::permanent(e.to_string()))?;
            let response = match transport.oneshot(request).await {
                Ok(r) => r,
                Err(e) if e.is_retryable() || e.is_timeout() => {
                    return Err(SendError::retryable(e.to_string()));
                }
                Err(e) => return Err(SendError::permanent(e.to_string())),
            };
            let status = response.status();
            if status.is_success() {
                return Ok(());
            }
            // The API's `{"error": "..."}` message, read as for any other answer.
            let message = StatusError::new(status, response.headers(), response.body())
                .message()
                .unwrap_or_default()
                .to_owned();
            let mut err = SendError::from_status(status.as_u16(), message);
            if let Some(delay) = retry_after(response.headers(), SystemTime::now()) {
                err = err.with_retry_after(delay);
            }
            Err(err)
        })
    }
}

/// Counters of the client's events.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct EventStats {
    /// The event buffer's counters (all zero when offline).
    pub buffer: BufferStats,
    /// Events discarded because the client is offline.
    pub discarded_offline: u64,
}

/// What [`Client::shutdown`] did: whether the drain completed, what is
/// left, and the final counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct EventShutdown {
    /// Every accepted event was delivered or handed to the dead-letter sink
    /// and the delivery thread stopped (always `true` offline).
    pub drained: bool,
    /// The delivery thread stopped within the timeout: nothing is sent or
    /// written after `shutdown` returned.
    pub stopped: bool,
    /// Events left in the spool for the next start (0 without a spool).
    pub left_in_spool: u64,
    /// The event buffer's counters at the end.
    pub buffer: BufferStats,
    /// Events discarded because the client is offline.
    pub discarded_offline: u64,
}

impl Client {
    /// Queues an `identify` event (user keys, optional company, name,
    /// traits) and returns at once; the event is delivered in the
    /// background.
    ///
    /// Fails only when the buffer refuses the event: queue full
    /// ([`Error::Buffer`]; the event goes to the dead-letter sink) or shut
    /// down. Offline, the event is counted and discarded.
    ///
    /// ```
    /// use flagwire::schematic::Client;
    /// use flagwire::schematic::IdentifyBody;
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let client = Client::builder("sch_dev_example").offline(true).build()?;
    /// client.identify(
    ///     IdentifyBody::builder()
    ///         .keys([("email", "ann@example.com")])
    ///         .traits([("role", "admin")]),
    /// )?;
    /// # Ok(()) }
    /// ```
    pub fn identify(&self, body: impl IntoEventBody<IdentifyBody>) -> Result<(), Error> {
        self.enqueue(body.into_event_body()?.into())
    }

    /// [`identify`](Self::identify) with per-event options (idempotency
    /// key, `sent_at`, trusted clock, backfill).
    pub fn identify_with(
        &self,
        body: impl IntoEventBody<IdentifyBody>,
        options: EventOptions,
    ) -> Result<(), Error> {
        self.enqueue_with(body.into_event_body()?.into(), &options)
    }

    /// Queues a `track` event (event name, company, user, traits, quantity,
    /// lease or reservation) and returns at once. See
    /// [`identify`](Self::identify).
    ///
    /// ```
    /// use flagwire::schematic::Client;
    /// use flagwire::schematic::TrackBody;
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let client = Client::builder("sch_dev_example").offline(true).build()?;
    /// client.track(TrackBody::builder("export").company([("id", "acme")]).quantity(3))?;
    /// # Ok(()) }
    /// ```
    pub fn track(&self, body: impl IntoEventBody<TrackBody>) -> Result<(), Error> {
        self.track_with(body, EventOptions::new())
    }

    /// [`track`](Self::track) with per-event options: your own idempotency
    /// key (so an event resent by your code counts once), `sent_at`, a
    /// trusted client clock, or a backfill of history.
    ///
    /// ```
    /// use flagwire::schematic::Client;
    /// use flagwire::schematic::{EventOptions, TrackBody};
    /// use time::macros::datetime;
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let client = Client::builder("sch_prod_example").offline(true).build()?;
    /// let body = TrackBody::builder("export").company([("id", "acme")]).build()?;
    /// client.track_with(
    ///     body,
    ///     EventOptions::new()
    ///         .idempotency_key("export-7f3a")
    ///         .backfill_at(datetime!(2025-12-31 23:00 UTC)),
    /// )?;
    /// # Ok(()) }
    /// ```
    pub fn track_with(
        &self,
        body: impl IntoEventBody<TrackBody>,
        options: EventOptions,
    ) -> Result<(), Error> {
        let body = body.into_event_body()?;
        let Some(event) = self.envelope(body, &options)? else {
            return Ok(());
        };
        self.queue(&event)?;
        if let EventBody::Track(body) = event.body() {
            self.after_track(body);
        }
        Ok(())
    }

    /// Queues an `inference` event (model usage: tokens, cost).
    ///
    /// ```
    /// use flagwire::schematic::Client;
    /// use flagwire_core::events::InferenceBody;
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let client = Client::builder("sch_dev_example").offline(true).build()?;
    /// client.inference(
    ///     InferenceBody::builder("anthropic", "claude-sonnet-4")
    ///         .company([("id", "acme")])
    ///         .input_tokens(1_200)
    ///         .output_tokens(350)
    ///         .build()?,
    /// )?;
    /// # Ok(()) }
    /// ```
    pub fn inference(&self, body: InferenceBody) -> Result<(), Error> {
        self.enqueue(body.into())
    }

    /// [`inference`](Self::inference) with per-event options.
    pub fn inference_with(&self, body: InferenceBody, options: EventOptions) -> Result<(), Error> {
        self.enqueue_with(body.into(), &options)
    }

    /// Queues any event body (e.g. a `flag_check`). As cheap as `track`:
    /// the event is serialized to compact JSON and appended to the queue
    /// under a short lock; nothing waits for I/O.
    pub fn enqueue(&self, body: EventBody) -> Result<(), Error> {
        match (&self.inner.events, &self.inner.api_key) {
            (Some(buffer), Some(key)) => buffer
                .enqueue(EventEnvelope::new(key.clone(), body))
                .map_err(Error::Buffer),
            _ => {
                self.discard_offline();
                Ok(())
            }
        }
    }

    /// [`enqueue`](Self::enqueue) with per-event options.
    pub fn enqueue_with(&self, body: EventBody, options: &EventOptions) -> Result<(), Error> {
        match self.envelope(body, options)? {
            Some(event) => self.queue(&event),
            None => Ok(()),
        }
    }

    /// Builds the envelope (options applied); `None` offline, where the
    /// event is counted and discarded.
    fn envelope(
        &self,
        body: impl Into<EventBody>,
        options: &EventOptions,
    ) -> Result<Option<EventEnvelope>, Error> {
        let (Some(key), Some(_)) = (&self.inner.api_key, &self.inner.events) else {
            self.discard_offline();
            return Ok(None);
        };
        EventEnvelope::new(key.clone(), body)
            .with_options(options)
            .map(Some)
            .map_err(Error::Event)
    }

    fn queue(&self, event: &EventEnvelope) -> Result<(), Error> {
        match &self.inner.events {
            Some(buffer) => buffer.enqueue_ref(event).map_err(Error::Buffer),
            None => {
                self.discard_offline();
                Ok(())
            }
        }
    }

    fn discard_offline(&self) {
        self.inner.offline_discarded.fetch_add(1, Ordering::Relaxed);
    }

    /// Runs after a track event was queued: bumps the cached company's
    /// matching metrics when local evaluation is on.
    fn after_track(&self, body: &TrackBody) {
        // Usage limits evaluated locally react at once; the server's next
        // update replaces the metric, so nothing is counted twice.
        if let (Some(ds), Some(company)) = (&self.inner.datastream, body.company()) {
            ds.store
                .bump_company_metrics(company, body.event(), body.quantity().unwrap_or(1));
        }
    }

    /// Waits until every event queued before this call is delivered or
    /// dead-lettered.
    pub async fn flush(&self) -> Result<(), Error> {
        match &self.inner.events {
            None => Ok(()),
            Some(buffer) => buffer.flush().await.map_err(Error::Buffer),
        }
    }

    /// Stops taking events and delivers what it can, returning within
    /// `timeout`. What is left goes to the dead-letter sink, or with a
    /// spool stays there for the next start; the report says which, and
    /// whether the drain completed. Idempotent.
    pub async fn shutdown(&self, timeout: Duration) -> EventShutdown {
        let started = std::time::Instant::now();
        if let Some(ds) = &self.inner.datastream {
            // Closing the socket takes at most a second; events get the rest.
            ds.stop(timeout.min(Duration::from_secs(1))).await;
        }
        let left = timeout.saturating_sub(started.elapsed());
        let report = match &self.inner.events {
            Some(buffer) => Some(buffer.shutdown(left).await),
            None => None,
        };
        self.shutdown_report(report)
    }

    pub(crate) fn shutdown_report(&self, report: Option<ShutdownReport>) -> EventShutdown {
        let discarded_offline = self.inner.offline_discarded.load(Ordering::Relaxed);
        match report {
            Some(r) => EventShutdown {
                drained: r.drained,
                stopped: r.stopped,
                left_in_spool: r.left_in_spool,
                buffer: r.stats,
                discarded_offline,
            },
            None => EventShutdown {
                drained: true,
                stopped: true,
                discarded_offline,
                ..EventShutdown::default()
            },
        }
    }

    /// Resends the dead letters of a JSON Lines file written by
    /// [`JsonlDeadLetterFile`](crate::events::JsonlDeadLetterFile) to the
    /// client's capture URL with their original idempotency keys, and
    /// rewrites the file with what is still undelivered; see
    /// [`replay_dead_letters`](crate::events::replay_dead_letters).
    ///
    /// Fails with [`Error::Offline`] offline and [`Error::DeadLetter`] when
    /// the file cannot be read or rewritten.
    pub async fn replay_dead_letters(&self, path: impl AsRef<Path>) -> Result<ReplayReport, Error> {
        let (Some(buffer), Some(key)) = (&self.inner.events, &self.inner.api_key) else {
            return Err(Error::Offline);
        };
        buffer
            .replay_dead_letters(path, key)
            .await
            .map_err(Error::DeadLetter)
    }

    /// The event counters right now.
    pub fn event_stats(&self) -> EventStats {
        EventStats {
            buffer: self
                .inner
                .events
                .as_ref()
                .map(|b| b.stats())
                .unwrap_or_default(),
            discarded_offline: self.inner.offline_discarded.load(Ordering::Relaxed),
        }
    }
}

/// An event body, or its builder: [`Client::track`] and
/// [`Client::identify`] take either, so a builder needs no `.build()?` of
/// its own (its validation error comes back as [`Error::Event`]).
pub trait IntoEventBody<B> {
    /// The body, validated.
    fn into_event_body(self) -> Result<B, Error>;
}

impl IntoEventBody<TrackBody> for TrackBody {
    fn into_event_body(self) -> Result<TrackBody, Error> {
        Ok(self)
    }
}

impl IntoEventBody<TrackBody> for flagwire_core::events::TrackBuilder {
    fn into_event_body(self) -> Result<TrackBody, Error> {
        Ok(self.build()?)
    }
}

impl IntoEventBody<IdentifyBody> for IdentifyBody {
    fn into_event_body(self) -> Result<IdentifyBody, Error> {
        Ok(self)
    }
}

impl IntoEventBody<IdentifyBody> for flagwire_core::events::IdentifyBuilder {
    fn into_event_body(self) -> Result<IdentifyBody, Error> {
        Ok(self.build()?)
    }
}
