//! Retrying failed attempts, the way Schematic's official SDKs do, without
//! their defects.
//!
//! [`RetryLayer`] resends a request when an attempt
//!
//! * could not connect, broke mid-request ([`TransportError::Io`]) or ran out
//!   of its per-attempt deadline, or
//! * got `408`, `429` or any `5xx` (and `409` when enabled, as Schematic's
//!   Python SDK does).
//!
//! Before retry *n* (0-based) it waits, in order of preference:
//!
//! 1. `Retry-After` (delta seconds or an HTTP date), capped at
//!    [`RetryPolicy::max_delay`], no jitter;
//! 2. until `X-RateLimit-Reset` (Unix seconds) if that is in the future,
//!    capped, with jitter ×[1.0, 1.2);
//! 3. `base_delay × 2^n`, capped, with jitter ×[0.9, 1.1).
//!
//! Every attempt resends the request as it was handed over: the body is a
//! `Bytes` (or any `Clone` body), so a retry never goes out empty. Each copy
//! carries its [`Attempt`] number, which signers and tracing read.
//!
//! **Never nested.** The layer marks the requests it sends down; another
//! retry layer further down passes marked requests straight through, so
//! attempts add up instead of multiplying.
//!
//! **Retry storms.** A shared [`RetryBudget`] (tower's `TpsBudget`) caps the
//! retries to a share of the recent traffic; when it is empty, failures are
//! returned at once.
//!
//! **Non-idempotent requests.** Resending a `POST` or `PATCH` that the
//! server did perform before failing creates a duplicate. So by default such
//! a request is resent only when it provably never reached the server: the
//! connection (TCP, the proxy tunnel or the TLS handshake) could not be
//! established ([`TransportError::never_sent`]). It is retried like a `PUT`
//! (on the statuses above and on broken connections) when the caller says
//! repeating it is harmless: an `Idempotency-Key` header, or
//! [`RequestOptions::idempotent`]`(true)`. [`RetryPolicy::retry_non_idempotent`]`(true)`
//! retries every method alike, as Schematic's official SDKs do. `GET`,
//! `HEAD`, `PUT`, `DELETE`, `OPTIONS` and `TRACE` are idempotent by
//! definition and always retried.
//!
//! **Deadlines.** When an overall deadline is set (by
//! [`TimeoutLayer::overall`](crate::timeout::TimeoutLayer::overall) above),
//! a retry whose back-off would end past it is not started: the last outcome
//! is returned at once instead of sleeping into a timeout.
//!
//! **Outcome.** If no retry was made, the first outcome comes back unchanged
//! (an error status is an `Ok` response). If retries were made and the last
//! attempt still failed (whether retries ran out or its failure is one that
//! is not retried), the result is [`TransportError::RetriesExhausted`] with
//! the attempt count, the last status and the last response (or error); a
//! deadline that ran out stays a [`TransportError::Timeout`], which names
//! its attempt. A response that comes back after retries (a success, or an
//! error status that is not retried) carries the attempt count in its
//! extensions: [`Attempt::of_response`].

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use pin_project_lite::pin_project;
use tokio::time::Sleep;
use tower::retry::budget::{Budget, TpsBudget};
use tower_layer::Layer;
use tower_service::Service;

use crate::error::{LastResponse, TransportError};
use crate::options::{Attempt, AttemptCounter, Deadline, RequestOptions};

const IDEMPOTENCY_KEY: &str = "idempotency-key";
const RATE_LIMIT_RESET: &str = "x-ratelimit-reset";

/// When and how long to wait before trying again.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    max_retries: u32,
    base_delay: Duration,
    max_delay: Duration,
    retry_conflict: bool,
    retry_non_idempotent: bool,
    retry_io_errors: bool,
    jitter: bool,
}

impl Default for RetryPolicy {
    /// Two retries (three attempts), 1 s base delay, 60 s cap, jitter on,
    /// `409` not retried, `POST`/`PATCH` retried only when never sent (or
    /// marked idempotent), broken connections retried.
    fn default() -> Self {
        RetryPolicy {
            max_retries: 2,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(60),
            retry_conflict: false,
            retry_non_idempotent: false,
            retry_io_errors: true,
            jitter: true,
        }
    }
}

impl RetryPolicy {
    /// The default policy.
    pub fn new() -> Self {
        RetryPolicy::default()
    }

    /// A policy that never retries.
    pub fn none() -> Self {
        RetryPolicy::default().max_retries(0)
    }

    /// Retries allowed after the first attempt (default 2).
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.max_retries = retries;
        self
    }

    /// The first back-off delay, doubled on each retry (default 1 s).
    pub fn base_delay(mut self, delay: Duration) -> Self {
        self.base_delay = delay;
        self
    }

    /// The longest wait before a retry, whatever the server asks (default 60 s).
    pub fn max_delay(mut self, delay: Duration) -> Self {
        self.max_delay = delay;
        self
    }

    /// Also retry `409 Conflict` (default off).
    pub fn retry_conflict(mut self, on: bool) -> Self {
        self.retry_conflict = on;
        self
    }

    /// Retry `POST`/`PATCH` requests without an `Idempotency-Key` on error
    /// statuses and broken connections, as the official SDKs do (default
    /// off: such a request is resent only when it never reached the server,
    /// since the server may have performed it before failing).
    pub fn retry_non_idempotent(mut self, on: bool) -> Self {
        self.retry_non_idempotent = on;
        self
    }

    /// Retry connections that broke after the request may have been sent
    /// (default on).
    pub fn retry_io_errors(mut self, on: bool) -> Self {
        self.retry_io_errors = on;
        self
    }

    /// Randomise back-off delays (default on). Turn off for deterministic
    /// tests.
    pub fn jitter(mut self, on: bool) -> Self {
        self.jitter = on;
        self
    }

    /// The configured number of retries.
    pub fn retries(&self) -> u32 {
        self.max_retries
    }

    /// Whether a response status is worth another attempt.
    pub fn is_retryable_status(&self, status: StatusCode) -> bool {
        status == StatusCode::REQUEST_TIMEOUT
            || status == StatusCode::TOO_MANY_REQUESTS
            || status.is_server_error()
            || (self.retry_conflict && status == StatusCode::CONFLICT)
    }

    /// How long to wait before retry `retry` (0-based), given the headers of
    /// the failed response if there was one.
    pub fn delay(&self, retry: u32, headers: Option<&HeaderMap>) -> Duration {
        self.delay_at(retry, headers, SystemTime::now())
    }

    fn delay_at(&self, retry: u32, headers: Option<&HeaderMap>, now: SystemTime) -> Duration {
        self.delay_from(self.base_delay, retry, headers, now)
    }

    /// [`delay`](Self::delay) with another back-off base (a request's
    /// `RequestOptions::retry_delay`).
    fn delay_from(
        &self,
        base_delay: Duration,
        retry: u32,
        headers: Option<&HeaderMap>,
        now: SystemTime,
    ) -> Duration {
        if let Some(headers) = headers {
            if let Some(wait) = retry_after(headers, now) {
                return wait.min(self.max_delay);
            }
            if let Some(wait) = rate_limit_reset(headers, now) {
                let wait = wait.min(self.max_delay);
                return self.jittered(wait, 1.0, 1.2).min(self.max_delay);
            }
        }
        let factor = 2u32.checked_pow(retry).unwrap_or(u32::MAX);
        let backoff = base_delay
            .checked_mul(factor)
            .unwrap_or(self.max_delay)
            .min(self.max_delay);
        self.jittered(backoff, 0.9, 1.1).min(self.max_delay)
    }

    fn jittered(&self, d: Duration, lo: f64, hi: f64) -> Duration {
        if !self.jitter {
            return d;
        }
        // Saturates where `mul_f64` would panic (delays near `Duration::MAX`).
        Duration::try_from_secs_f64(d.as_secs_f64() * (lo + fastrand::f64() * (hi - lo)))
            .unwrap_or(Duration::MAX)
    }
}

fn header_str<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name)?.to_str().ok().map(str::trim)
}

/// The wait a response asks for in `Retry-After`, given as delta seconds or
/// as an HTTP date (a date in the past means no wait). `None` when the header
/// is absent or unreadable.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use http::HeaderMap;
/// use flagwire_transport::retry::retry_after;
///
/// let mut headers = HeaderMap::new();
/// headers.insert(http::header::RETRY_AFTER, "7".parse().unwrap());
/// assert_eq!(retry_after(&headers, SystemTime::now()), Some(Duration::from_secs(7)));
/// headers.insert(http::header::RETRY_AFTER, "Thu, 01 Jan 1970 00:00:00 GMT".parse().unwrap());
/// assert_eq!(retry_after(&headers, SystemTime::now()), Some(Duration::ZERO));
/// ```
pub fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = header_str(headers, http::header::RETRY_AFTER.as_str())?;
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Time left until `X-RateLimit-Reset` (Unix seconds), if in the future.
fn rate_limit_reset(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let reset = header_str(headers, RATE_LIMIT_RESET)?.parse::<u64>().ok()?;
    let at = UNIX_EPOCH.checked_add(Duration::from_secs(reset))?;
    at.duration_since(now).ok().filter(|d| !d.is_zero())
}

/// A shared limit on retries, so a failing upstream is not hit with a
/// multiple of the normal traffic. Cloning shares the budget.
#[derive(Clone)]
pub struct RetryBudget(Arc<dyn Budget + Send + Sync>);

impl fmt::Debug for RetryBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RetryBudget")
    }
}

impl Default for RetryBudget {
    /// Retries may add 20% to the requests of the last 10 s, plus 10 per
    /// second regardless.
    fn default() -> Self {
        RetryBudget(Arc::new(TpsBudget::default()))
    }
}

impl RetryBudget {
    /// A budget allowing `min_per_sec` retries a second plus `retry_ratio`
    /// (0.0–1000.0) retries per request, over a window of `ttl` (1–60 s).
    pub fn new(ttl: Duration, min_per_sec: u32, retry_ratio: f32) -> Result<Self, TransportError> {
        if !(Duration::from_secs(1)..=Duration::from_secs(60)).contains(&ttl) {
            return Err(TransportError::config(
                "retry budget window must be between 1 s and 60 s",
            ));
        }
        if !(0.0..=1000.0).contains(&retry_ratio) {
            return Err(TransportError::config(
                "retry budget ratio must be between 0 and 1000",
            ));
        }
        Ok(RetryBudget(Arc::new(TpsBudget::new(
            ttl,
            min_per_sec,
            retry_ratio,
        ))))
    }

    /// Any other implementation of tower's `Budget`.
    pub fn custom(budget: impl Budget + Send + Sync + 'static) -> Self {
        RetryBudget(Arc::new(budget))
    }

    fn deposit(&self) {
        self.0.deposit();
    }

    fn withdraw(&self) -> bool {
        self.0.withdraw()
    }
}

/// Retries failed attempts; see the [module docs](self).
#[derive(Debug, Clone, Default)]
pub struct RetryLayer {
    policy: Arc<RetryPolicy>,
    budget: Option<RetryBudget>,
    overall: Option<Duration>,
}

impl RetryLayer {
    /// A layer with `policy` and the default budget.
    pub fn new(policy: RetryPolicy) -> Self {
        RetryLayer {
            policy: Arc::new(policy),
            budget: Some(RetryBudget::default()),
            overall: None,
        }
    }

    /// Replaces the budget; `None` removes the limit.
    pub fn budget(mut self, budget: Option<RetryBudget>) -> Self {
        self.budget = budget;
        self
    }

    /// Sets the overall deadline itself (overridable by
    /// [`RequestOptions::timeout`]) instead of reading one recorded by a
    /// [`TimeoutLayer::overall`](crate::timeout::TimeoutLayer::overall)
    /// above, and hands it to the per-attempt layer below, which must
    /// exist to enforce it (the builder guarantees both). This saves the
    /// overall layer's timer and its extension entry.
    pub(crate) fn overall_deadline(mut self, timeout: Option<Duration>) -> Self {
        self.overall = timeout;
        self
    }
}

impl<S> Layer<S> for RetryLayer {
    type Service = Retry<S>;

    fn layer(&self, inner: S) -> Retry<S> {
        Retry {
            inner,
            policy: self.policy.clone(),
            budget: self.budget.clone(),
            overall: self.overall,
            spare: None,
        }
    }
}

/// The service made by [`RetryLayer`].
#[derive(Debug, Clone)]
pub struct Retry<S> {
    inner: S,
    /// A clone of `inner`, made once and shared with every response future
    /// that may retry; a future clones it only when it does retry, so a
    /// request that succeeds first time copies no service.
    spare: Option<Arc<S>>,
    policy: Arc<RetryPolicy>,
    budget: Option<RetryBudget>,
    overall: Option<Duration>,
}

/// A copy of `req` to send again later. Built field by field so that an
/// empty extension map (the usual case once the layers' own bookkeeping is
/// taken out) is not copied: cloning even an empty map allocates.
fn replayable<B: Clone>(req: &Request<B>) -> Request<B> {
    let mut copy = Request::new(req.body().clone());
    *copy.method_mut() = req.method().clone();
    *copy.uri_mut() = req.uri().clone();
    *copy.version_mut() = req.version();
    *copy.headers_mut() = req.headers().clone();
    if !req.extensions().is_empty() {
        *copy.extensions_mut() = req.extensions().clone();
    }
    copy
}

fn is_idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::OPTIONS | Method::TRACE
    )
}

impl<S, B> Service<Request<B>> for Retry<S>
where
    S: Service<Request<B>, Response = Response<Bytes>> + Clone,
    S::Error: Into<TransportError>,
    B: Clone,
{
    type Response = Response<Bytes>;
    type Error = TransportError;
    type Future = ResponseFuture<S, B>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        // The service that was driven to readiness serves the first attempt;
        // later ones are served by clones of the spare.
        let options = req.extensions().get::<RequestOptions>().copied();
        let replay_safe = self.policy.retry_non_idempotent
            || options.and_then(|o| o.idempotent) == Some(true)
            || is_idempotent(req.method())
            || req.headers().contains_key(IDEMPOTENCY_KEY);
        let extensions = req.extensions_mut();
        let max_retries = options
            .and_then(|o| o.max_retries)
            .unwrap_or(self.policy.max_retries);
        let (counter, deadline) = if extensions.is_empty() {
            (None, None)
        } else if extensions.get::<Attempt>().is_some() {
            // Already an attempt of an outer retry layer: pass it through.
            let fut = self.inner.call(req);
            return ResponseFuture::passthrough(fut, self);
        } else {
            (
                extensions.get::<AttemptCounter>().cloned(),
                extensions.remove::<Deadline>(),
            )
        };
        // A deadline recorded by an overall layer above wins; otherwise this
        // layer's own (when the builder gave it one).
        let deadline = deadline.or_else(|| {
            let after = options.and_then(|o| o.timeout).or(self.overall)?;
            Some(Deadline {
                at: tokio::time::Instant::now() + after,
                after,
            })
        });

        let template = if max_retries == 0 {
            None
        } else {
            if let Some(budget) = &self.budget {
                budget.deposit();
            }
            Some(replayable(&req))
        };
        if template.is_some() || deadline.is_some() {
            req.extensions_mut()
                .insert(Attempt::with_deadline(1, deadline));
        }
        if let Some(c) = &counter {
            c.set(1);
        }
        let spare = template.as_ref().map(|_| {
            let inner = &self.inner;
            self.spare
                .get_or_insert_with(|| Arc::new(inner.clone()))
                .clone()
        });
        let fut = self.inner.call(req);
        ResponseFuture {
            state: State::Calling { fut },
            spare,
            service: None,
            template,
            attempt: 1,
            max_retries,
            replay_safe,
            policy: self.policy.clone(),
            base_delay: options
                .and_then(|o| o.retry_delay)
                .unwrap_or(self.policy.base_delay),
            budget: self.budget.clone(),
            counter,
            deadline,
            last_status: None,
        }
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F> {
        Calling { #[pin] fut: F },
        Sleeping { #[pin] sleep: Sleep },
        Waiting,
    }
}

pin_project! {
    /// The response future of [`Retry`]. It keeps a copy of the request and
    /// a shared handle to a spare inner service, to send further attempts.
    pub struct ResponseFuture<S, B>
    where
        S: Service<Request<B>>,
    {
        #[pin]
        state: State<S::Future>,
        spare: Option<Arc<S>>,
        service: Option<S>,
        template: Option<Request<B>>,
        attempt: u32,
        max_retries: u32,
        // Whether sending the request again is harmless even if an attempt
        // reached the server.
        replay_safe: bool,
        policy: Arc<RetryPolicy>,
        // The back-off base of this request (the policy's, or the request's
        // `retry_delay`).
        base_delay: Duration,
        budget: Option<RetryBudget>,
        counter: Option<AttemptCounter>,
        deadline: Option<Deadline>,
        last_status: Option<StatusCode>,
    }
}

impl<S, B> ResponseFuture<S, B>
where
    S: Service<Request<B>>,
{
    /// Sends `fut`'s request once, as it is, without retrying.
    fn passthrough(fut: S::Future, retry: &Retry<S>) -> Self {
        ResponseFuture {
            state: State::Calling { fut },
            spare: None,
            service: None,
            template: None,
            attempt: 1,
            max_retries: 0,
            replay_safe: false,
            policy: retry.policy.clone(),
            base_delay: retry.policy.base_delay,
            budget: None,
            counter: None,
            deadline: None,
            last_status: None,
        }
    }
}

impl<S, B> fmt::Debug for ResponseFuture<S, B>
where
    S: Service<Request<B>>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("retry::ResponseFuture")
            .field("attempt", &self.attempt)
            .field("max_retries", &self.max_retries)
            .finish_non_exhaustive()
    }
}

/// What to do with one attempt's outcome.
enum Verdict {
    /// Done; return the outcome as it is.
    Done,
    /// Worth another attempt, after this long, if retries remain.
    Again(Duration),
}

impl<S, B> Future for ResponseFuture<S, B>
where
    S: Service<Request<B>, Response = Response<Bytes>> + Clone,
    S::Error: Into<TransportError>,
    B: Clone,
{
    type Output = Result<Response<Bytes>, TransportError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            let mut this = self.as_mut().project();
            match this.state.as_mut().project() {
                StateProj::Calling { fut } => {
                    let outcome = ready!(fut.poll(cx)).map_err(Into::into);
                    let retry_index = *this.attempt - 1;
                    let verdict = match &outcome {
                        Ok(resp) if this.policy.is_retryable_status(resp.status()) => {
                            if *this.replay_safe {
                                Verdict::Again(this.policy.delay_from(
                                    *this.base_delay,
                                    retry_index,
                                    Some(resp.headers()),
                                    SystemTime::now(),
                                ))
                            } else {
                                Verdict::Done
                            }
                        }
                        Ok(_) => Verdict::Done,
                        Err(TransportError::Io { .. }) if !this.policy.retry_io_errors => {
                            Verdict::Done
                        }
                        // Nothing reached the server: safe for any method.
                        Err(e) if e.is_retryable() && (*this.replay_safe || e.never_sent()) => {
                            Verdict::Again(this.policy.delay_from(
                                *this.base_delay,
                                retry_index,
                                None,
                                SystemTime::now(),
                            ))
                        }
                        Err(_) => Verdict::Done,
                    };
                    let delay = match verdict {
                        Verdict::Done => {
                            return Poll::Ready(finished(
                                *this.attempt,
                                *this.last_status,
                                outcome,
                            ));
                        }
                        Verdict::Again(delay) => delay,
                    };
                    // No back-off that would end past the overall deadline.
                    let in_time = this
                        .deadline
                        .is_none_or(|d| tokio::time::Instant::now() + delay < d.at);
                    let retries_left = in_time
                        && this.template.is_some()
                        && this.spare.is_some()
                        && *this.attempt <= *this.max_retries;
                    let allowed =
                        retries_left && this.budget.as_ref().is_none_or(RetryBudget::withdraw);
                    if !allowed {
                        return Poll::Ready(exhausted(*this.attempt, *this.last_status, outcome));
                    }
                    if let Ok(resp) = &outcome {
                        *this.last_status = Some(resp.status());
                    }
                    tracing::debug!(
                        attempt = *this.attempt,
                        delay_ms = delay.as_millis() as u64,
                        status = outcome.as_ref().ok().map(|r| r.status().as_u16()),
                        error = outcome.as_ref().err().map(tracing::field::display),
                        "retrying request"
                    );
                    *this.attempt += 1;
                    this.state.set(State::Sleeping {
                        sleep: tokio::time::sleep(delay),
                    });
                }
                StateProj::Sleeping { sleep } => {
                    ready!(sleep.poll(cx));
                    this.state.set(State::Waiting);
                }
                StateProj::Waiting => {
                    let service = match this.service {
                        Some(service) => service,
                        None => this.service.insert(S::clone(
                            this.spare
                                .as_ref()
                                .expect("a retry is only scheduled with a spare service"),
                        )),
                    };
                    if let Err(e) = ready!(service.poll_ready(cx)) {
                        return Poll::Ready(Err(e.into()));
                    }
                    let attempt = *this.attempt;
                    let mut req = if attempt > *this.max_retries {
                        // The last attempt: hand over the template itself.
                        this.template.take()
                    } else {
                        this.template.clone()
                    }
                    .expect("a retry is only scheduled with a template");
                    req.extensions_mut()
                        .insert(Attempt::with_deadline(attempt, *this.deadline));
                    if let Some(c) = this.counter.as_ref() {
                        c.set(attempt);
                    }
                    let fut = service.call(req);
                    this.state.set(State::Calling { fut });
                }
            }
        }
    }
}

/// The outcome of a request whose last attempt is not retried: returned as
/// it is after one attempt; after several, a response records the count in
/// its extensions and an error becomes [`TransportError::RetriesExhausted`]
/// (except a deadline, which names its attempt itself).
fn finished(
    attempts: u32,
    previous_status: Option<StatusCode>,
    outcome: Result<Response<Bytes>, TransportError>,
) -> Result<Response<Bytes>, TransportError> {
    match outcome {
        _ if attempts == 1 => outcome,
        Ok(mut resp) => {
            resp.extensions_mut()
                .insert(Attempt::with_deadline(attempts, None));
            Ok(resp)
        }
        Err(err @ TransportError::Timeout { .. }) => Err(err),
        Err(err) => exhausted(attempts, previous_status, Err(err)),
    }
}

fn exhausted(
    attempts: u32,
    previous_status: Option<StatusCode>,
    outcome: Result<Response<Bytes>, TransportError>,
) -> Result<Response<Bytes>, TransportError> {
    if attempts == 1 {
        return outcome;
    }
    Err(match outcome {
        Ok(mut resp) => {
            // Read by `Attempt::of_response`, like any response after retries.
            resp.extensions_mut()
                .insert(Attempt::with_deadline(attempts, None));
            TransportError::RetriesExhausted {
                attempts,
                last_status: Some(resp.status()),
                last_response: Some(LastResponse(Box::new(resp))),
                source: None,
            }
        }
        Err(err) => TransportError::RetriesExhausted {
            attempts,
            last_status: previous_status,
            last_response: None,
            source: Some(Box::new(err)),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(name: &'static str, value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(name, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn retry_after_seconds_and_date_are_capped() {
        let p = RetryPolicy::new();
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(
            p.delay_at(0, Some(&headers("retry-after", "7")), now),
            Duration::from_secs(7)
        );
        assert_eq!(
            p.delay_at(0, Some(&headers("retry-after", "3600")), now),
            Duration::from_secs(60)
        );
        let date = httpdate::fmt_http_date(now + Duration::from_secs(12));
        assert_eq!(
            p.delay_at(0, Some(&headers("retry-after", &date)), now),
            Duration::from_secs(12)
        );
        let past = httpdate::fmt_http_date(now - Duration::from_secs(12));
        assert_eq!(
            p.delay_at(0, Some(&headers("retry-after", &past)), now),
            Duration::ZERO
        );
    }

    #[test]
    fn jitter_near_the_largest_delay_saturates_instead_of_panicking() {
        // Found by the `retry_headers` fuzz target: a jitter factor above 1
        // pushed a back-off of `Duration::MAX` out of range.
        let p = RetryPolicy::new()
            .base_delay(Duration::MAX)
            .max_delay(Duration::MAX);
        let delays: Vec<Duration> = (0..64).map(|retry| p.delay(retry, None)).collect();
        // A factor below 1 lowers the delay by at most 10 %; above 1 it saturates.
        let floor = Duration::MAX.mul_f64(0.9);
        assert!(delays.iter().all(|&d| d >= floor), "{delays:?}");
        assert!(delays.contains(&Duration::MAX), "{delays:?}");
    }

    #[test]
    fn rate_limit_reset_has_positive_jitter() {
        let p = RetryPolicy::new();
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let h = headers("x-ratelimit-reset", "1700000010");
        for _ in 0..100 {
            let d = p.delay_at(0, Some(&h), now);
            assert!(
                d >= Duration::from_secs(10) && d <= Duration::from_secs(12),
                "{d:?}"
            );
        }
        // A reset in the past falls back to back-off.
        let h = headers("x-ratelimit-reset", "1600000000");
        let d = p.jitter(false).delay_at(1, Some(&h), now);
        assert_eq!(d, Duration::from_secs(2));
    }

    #[test]
    fn backoff_doubles_with_jitter_and_cap() {
        let p = RetryPolicy::new();
        for n in 0..4u32 {
            let d = p.delay_at(n, None, SystemTime::now());
            let nominal = Duration::from_secs(1 << n);
            assert!(
                d >= nominal.mul_f64(0.9) && d <= nominal.mul_f64(1.1),
                "{n}: {d:?}"
            );
        }
        let capped = p.delay_at(40, None, SystemTime::now());
        assert!(capped >= Duration::from_secs(54) && capped <= Duration::from_secs(60));
        let fixed = RetryPolicy::new()
            .jitter(false)
            .base_delay(Duration::from_millis(3));
        assert_eq!(
            fixed.delay_at(2, None, SystemTime::now()),
            Duration::from_millis(12)
        );
    }

    #[test]
    fn statuses() {
        let p = RetryPolicy::new();
        for s in [408, 429, 500, 502, 503, 504, 599] {
            assert!(
                p.is_retryable_status(StatusCode::from_u16(s).unwrap()),
                "{s}"
            );
        }
        for s in [200, 400, 401, 403, 404, 409, 422] {
            assert!(
                !p.is_retryable_status(StatusCode::from_u16(s).unwrap()),
                "{s}"
            );
        }
        assert!(
            p.retry_conflict(true)
                .is_retryable_status(StatusCode::CONFLICT)
        );
    }

    #[test]
    fn budget_validation() {
        assert!(RetryBudget::new(Duration::from_millis(10), 1, 0.1).is_err());
        assert!(RetryBudget::new(Duration::from_secs(1), 1, -1.0).is_err());
        assert!(RetryBudget::new(Duration::from_secs(1), 1, 0.1).is_ok());
    }
}
