//! The seam between the event buffer and the network: [`BatchSender`].

use std::fmt;
use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use flagwire_transport::retry::RetryPolicy;
use futures_util::future::BoxFuture;

/// One encoded capture request, ready to be sent as the body of
/// `POST {capture}/batch`.
///
/// The body is a reference-counted [`Bytes`]; a retry sends the very same
/// bytes, so every event keeps its idempotency key.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Batch {
    /// The JSON body, `{"events":[…]}`.
    pub body: Bytes,
    /// How many events it holds (at most 100).
    pub len: usize,
    /// 1 for the first attempt, 2 for the first retry, …
    pub attempt: u32,
}

impl Batch {
    /// A batch (mostly for tests of custom senders).
    pub fn new(body: Bytes, len: usize, attempt: u32) -> Self {
        Self { body, len, attempt }
    }
}

/// Delivers encoded batches. The event buffer calls it from its own
/// background thread, on a current-thread Tokio runtime with I/O and timers
/// enabled, one batch at a time.
///
/// Any `Fn(Batch) -> impl Future<Output = Result<(), SendError>>` closure is
/// a sender:
///
/// ```
/// use flagwire::events::{Batch, BatchSender, SendError};
///
/// fn assert_sender(_: impl BatchSender) {}
/// assert_sender(|batch: Batch| async move {
///     if batch.len > 0 { Ok(()) } else { Err(SendError::permanent("empty")) }
/// });
/// ```
pub trait BatchSender: Send + Sync + 'static {
    /// Sends one batch. `Ok` means the capture service accepted it (any
    /// 2xx); an error says whether trying again may help.
    fn send(&self, batch: Batch) -> BoxFuture<'static, Result<(), SendError>>;
}

impl<F, Fut> BatchSender for F
where
    F: Fn(Batch) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), SendError>> + Send + 'static,
{
    fn send(&self, batch: Batch) -> BoxFuture<'static, Result<(), SendError>> {
        Box::pin(self(batch))
    }
}

/// Whether a failed send is worth retrying.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendErrorKind {
    /// Transient: connection problems, timeouts, 408, 429, 5xx.
    Retryable,
    /// Final: the request itself is wrong or not allowed (other 4xx).
    Permanent,
}

/// Why a batch could not be delivered.
#[derive(Debug, Clone)]
pub struct SendError {
    kind: SendErrorKind,
    status: Option<u16>,
    retry_after: Option<Duration>,
    message: String,
}

impl SendError {
    /// A transient failure.
    pub fn retryable(message: impl Into<String>) -> Self {
        Self {
            kind: SendErrorKind::Retryable,
            status: None,
            retry_after: None,
            message: message.into(),
        }
    }

    /// A final failure.
    pub fn permanent(message: impl Into<String>) -> Self {
        Self {
            kind: SendErrorKind::Permanent,
            status: None,
            retry_after: None,
            message: message.into(),
        }
    }

    /// Classifies a non-2xx HTTP status by the transport's default retry
    /// rule ([`RetryPolicy::is_retryable_status`]): 408, 429 and 5xx are
    /// retryable, everything else (and a number that is no HTTP status) is
    /// permanent.
    ///
    /// [`RetryPolicy::is_retryable_status`]: flagwire_transport::retry::RetryPolicy::is_retryable_status
    ///
    /// ```
    /// use flagwire::events::SendError;
    ///
    /// assert!(SendError::from_status(503, "unavailable").is_retryable());
    /// assert!(SendError::from_status(429, "slow down").is_retryable());
    /// assert!(!SendError::from_status(400, "batch too large").is_retryable());
    /// assert!(SendError::from_status(408, "client took too long").is_retryable());
    /// assert!(!SendError::from_status(409, "conflict").is_retryable());
    /// assert!(!SendError::from_status(600, "not a status class").is_retryable());
    /// assert!(!SendError::from_status(42, "not a status").is_retryable());
    /// assert_eq!(SendError::from_status(401, "").status(), Some(401));
    /// ```
    pub fn from_status(status: u16, message: impl Into<String>) -> Self {
        let retryable = http::StatusCode::from_u16(status)
            .is_ok_and(|code| RetryPolicy::default().is_retryable_status(code));
        let kind = if retryable {
            SendErrorKind::Retryable
        } else {
            SendErrorKind::Permanent
        };
        Self {
            kind,
            status: Some(status),
            retry_after: None,
            message: message.into(),
        }
    }

    /// Records the HTTP status of the failure.
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }

    /// Asks for the next attempt to wait this long (from `Retry-After`);
    /// still capped by the buffer's maximum backoff.
    pub fn with_retry_after(mut self, delay: Duration) -> Self {
        self.retry_after = Some(delay);
        self
    }

    /// The kind.
    pub fn kind(&self) -> SendErrorKind {
        self.kind
    }

    /// Whether another attempt may succeed.
    pub fn is_retryable(&self) -> bool {
        self.kind == SendErrorKind::Retryable
    }

    /// The HTTP status, if there was a response.
    pub fn status(&self) -> Option<u16> {
        self.status
    }

    /// The requested delay before the next attempt, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.status {
            Some(status) => write!(
                f,
                "capture request failed with status {status}: {}",
                self.message
            ),
            None => write!(f, "capture request failed: {}", self.message),
        }
    }
}

impl std::error::Error for SendError {}
