//! Per-request options and the bookkeeping extensions the layers share.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// Per-request overrides of the transport's defaults, carried in the
/// request's extensions.
///
/// ```
/// use std::time::Duration;
/// use bytes::Bytes;
/// use flagwire_transport::RequestOptions;
///
/// let mut req = http::Request::new(Bytes::new());
/// req.extensions_mut().insert(
///     RequestOptions::new()
///         .max_retries(0)
///         .timeout(Duration::from_secs(5)),
/// );
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RequestOptions {
    /// Retries allowed after the first attempt; `None` keeps the layer's.
    pub max_retries: Option<u32>,
    /// Overall deadline for this request; `None` keeps the layer's.
    pub timeout: Option<Duration>,
    /// Deadline for each attempt of this request; `None` keeps the layer's.
    pub attempt_timeout: Option<Duration>,
    /// `Some(true)` marks the request as safe to send more than once even
    /// though its method is not idempotent (`POST`, `PATCH`): the retry
    /// layer then retries it like a `PUT`. `None` or `Some(false)`: decided
    /// by the method and the `Idempotency-Key` header.
    pub idempotent: Option<bool>,
    /// Base of the exponential back-off before a retry of this request (the
    /// policy's `base_delay`); `None` keeps the layer's. A `Retry-After` the
    /// server sends still wins.
    pub retry_delay: Option<Duration>,
}

impl RequestOptions {
    /// No overrides.
    pub const fn new() -> Self {
        RequestOptions {
            max_retries: None,
            timeout: None,
            attempt_timeout: None,
            idempotent: None,
            retry_delay: None,
        }
    }

    /// Overrides the base of the back-off before a retry: a request with a
    /// short deadline of its own (a flag check) retries after milliseconds,
    /// not after the policy's second.
    pub const fn retry_delay(mut self, delay: Duration) -> Self {
        self.retry_delay = Some(delay);
        self
    }

    /// Overrides the number of retries (0 disables retrying).
    pub const fn max_retries(mut self, retries: u32) -> Self {
        self.max_retries = Some(retries);
        self
    }

    /// Overrides the overall deadline.
    pub const fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Overrides the per-attempt deadline.
    pub const fn attempt_timeout(mut self, timeout: Duration) -> Self {
        self.attempt_timeout = Some(timeout);
        self
    }

    /// Declares whether sending this request twice is harmless. A `POST` or
    /// `PATCH` marked `true` is retried on error statuses and broken
    /// connections like a `PUT`; the server must deduplicate it (e.g. by a
    /// key in the body). Without it, such a request is resent only when it
    /// provably never reached the server.
    ///
    /// ```
    /// use bytes::Bytes;
    /// use flagwire_transport::RequestOptions;
    ///
    /// let mut req = http::Request::post("https://api.example.com/batch").body(Bytes::new())?;
    /// req.extensions_mut().insert(RequestOptions::new().idempotent(true));
    /// # Ok::<(), http::Error>(())
    /// ```
    pub const fn idempotent(mut self, idempotent: bool) -> Self {
        self.idempotent = Some(idempotent);
        self
    }
}

/// The 1-based number of the attempt a request belongs to. The retry layer
/// stamps it on every copy it sends; layers below it (signers, tracing,
/// per-attempt timeouts) read it. A request without it is attempt 1.
///
/// Its presence also tells a second retry layer further down that the
/// request is already being retried, so it passes it through.
///
/// It also carries, privately, the request's overall deadline from the
/// retry layer to the per-attempt timeout below it, so that one extension
/// entry does all the bookkeeping. Comparisons and hashing look at the
/// number only.
#[derive(Clone, Copy)]
pub struct Attempt {
    number: u32,
    pub(crate) deadline: Option<Deadline>,
}

impl Attempt {
    #[cfg(test)]
    pub(crate) const fn new(number: u32) -> Self {
        Attempt {
            number,
            deadline: None,
        }
    }

    pub(crate) const fn with_deadline(number: u32, deadline: Option<Deadline>) -> Self {
        Attempt { number, deadline }
    }

    /// The attempt number, from 1.
    pub const fn number(self) -> u32 {
        self.number
    }

    /// Reads the attempt number of a request (1 when absent).
    pub fn of<B>(req: &http::Request<B>) -> u32 {
        req.extensions().get::<Attempt>().map_or(1, |a| a.number)
    }

    /// How many attempts a response took: the retry layer records the
    /// count on a response that came back after retries (1 when absent).
    ///
    /// ```
    /// use flagwire_transport::Attempt;
    ///
    /// let response = http::Response::new(());
    /// assert_eq!(Attempt::of_response(&response), 1);
    /// ```
    pub fn of_response<B>(resp: &http::Response<B>) -> u32 {
        resp.extensions().get::<Attempt>().map_or(1, |a| a.number)
    }
}

impl fmt::Debug for Attempt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Attempt").field(&self.number).finish()
    }
}

impl PartialEq for Attempt {
    fn eq(&self, other: &Self) -> bool {
        self.number == other.number
    }
}

impl Eq for Attempt {}

impl PartialOrd for Attempt {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Attempt {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.number.cmp(&other.number)
    }
}

impl Hash for Attempt {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.number.hash(state);
    }
}

/// The overall deadline of a request, recorded by the overall-timeout layer
/// for the layers below it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Deadline {
    pub(crate) at: tokio::time::Instant,
    pub(crate) after: Duration,
}

/// Shared between the overall-timeout layer and the retry layer, so an
/// overall timeout can say which attempt was running.
#[derive(Debug, Clone, Default)]
pub(crate) struct AttemptCounter(Arc<AtomicU32>);

impl AttemptCounter {
    pub(crate) fn set(&self, attempt: u32) {
        self.0.store(attempt, Ordering::Relaxed);
    }

    pub(crate) fn get(&self) -> u32 {
        self.0.load(Ordering::Relaxed).max(1)
    }
}
