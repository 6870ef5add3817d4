//! Events: `identify` / `track` queue capture events; a [`BatchSender`] over
//! the transport delivers them to `{capture}/batch`.

use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use flagwire_core::StatusError;
use flagwire_core::events::{EventBody, EventEnvelope, IdentifyBody, TrackBody};
use flagwire_transport::retry::retry_after;
use flagwire_transport::{BoxTransport, RequestOptions};
use futures_util::future::BoxFuture;
use http::header::CONTENT_TYPE;
use http::{HeaderValue, Method};
use tower::ServiceExt;

use super::client::Client;
use crate::error::Error;
use crate::events::{Batch, BatchSender, BufferStats, SendError};

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

impl Client {
    /// Queues an `identify` event (user keys, optional company, name,
    /// traits) and returns at once; the event is delivered in the
    /// background.
    ///
    /// Fails only when the buffer refuses the event: queue full
    /// ([`Error::Buffer`], counted as dropped) or shut down. Offline, the
    /// event is counted and discarded.
    pub fn identify(&self, body: IdentifyBody) -> Result<(), Error> {
        self.enqueue(body.into())
    }

    /// Queues a `track` event (event name, company, user, traits, quantity)
    /// and returns at once. See [`identify`](Self::identify).
    pub fn track(&self, body: TrackBody) -> Result<(), Error> {
        let bump = self
            .inner
            .datastream
            .as_ref()
            .and_then(|ds| body.company().map(|keys| (ds, keys.clone())))
            .map(|(ds, keys)| (ds, keys, body.event().to_owned(), body.quantity()));
        self.enqueue(body.into())?;
        // Usage limits evaluated locally react at once; the server's next
        // update replaces the metric, so nothing is counted twice.
        if let Some((ds, keys, event, quantity)) = bump {
            ds.store
                .bump_company_metrics(&keys, &event, quantity.unwrap_or(1));
        }
        Ok(())
    }

    /// Queues any event body (e.g. a pass-through type).
    pub fn enqueue(&self, body: EventBody) -> Result<(), Error> {
        match (&self.inner.events, &self.inner.api_key) {
            (Some(buffer), Some(key)) => {
                let envelope = EventEnvelope::new(key.clone(), body);
                buffer.enqueue(envelope).map_err(Error::Buffer)
            }
            // Offline: no buffer exists.
            _ => {
                self.inner.offline_discarded.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
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

    /// Stops taking events and delivers everything queued within `timeout`;
    /// what is left then goes to the dead-letter sink. Returns the final
    /// counters. Idempotent.
    pub async fn shutdown(&self, timeout: Duration) -> EventStats {
        let started = std::time::Instant::now();
        if let Some(ds) = &self.inner.datastream {
            // Closing the socket takes at most a second; events get the rest.
            ds.stop(timeout.min(Duration::from_secs(1))).await;
        }
        if let Some(buffer) = &self.inner.events {
            buffer
                .shutdown(timeout.saturating_sub(started.elapsed()))
                .await;
        }
        self.event_stats()
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
