//! Deadlines: one for the whole request, one for each attempt.
//!
//! The same [`TimeoutLayer`] serves both; its [`TimeoutKind`] decides which
//! [`RequestOptions`] field can override it and how the error reads. When a
//! deadline runs out the inner future is dropped (which cancels the attempt
//! and its connection) and the caller gets [`TransportError::Timeout`]: never
//! a made-up `408` response, which a retry layer would mistake for the
//! server's answer.
//!
//! # Keeping the runtime's timer armed
//!
//! Registering a timer that ends before every timer the runtime already has
//! makes tokio wake its driver (a write to the driver's event descriptor and
//! an extra return from `epoll_wait`), so that the driver can shorten its
//! sleep. A request whose deadline is the only timer in the runtime pays that
//! every time the runtime has been idle in between. While deadlines longer
//! than one second are in use, each [`Timeout`] service therefore keeps
//! a small task running (one for the service and its clones) that sleeps in
//! one-second steps: its timer always ends before any deadline more than a
//! second away, so registering such a deadline never has to wake the driver.
//! The deadline itself is untouched (the request's own timer, exact to
//! tokio's millisecond); the task only ever sleeps and stops after a period
//! in which no deadline was set.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use http::Request;
use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};
use tower_layer::Layer;
use tower_service::Service;

use crate::error::{TimeoutKind, TransportError};
use crate::options::{Attempt, AttemptCounter, Deadline, RequestOptions};

/// Puts a deadline on each request (overall) or each attempt (per-attempt).
///
/// Place the overall layer *above* the retry layer, so back-off sleeps count
/// against it, and the per-attempt layer *below* it, so a slow attempt is cut
/// short and retried.
///
/// The overall layer also records its deadline in the request, so that a
/// retry layer below does not start a back-off sleep that would end past it,
/// and a per-attempt layer below cuts an attempt at whichever deadline comes
/// first (reporting which one it was).
#[derive(Debug, Clone, Copy)]
pub struct TimeoutLayer {
    kind: TimeoutKind,
    default: Option<Duration>,
}

impl TimeoutLayer {
    /// A deadline for the whole request, retries included. `None` means no
    /// deadline unless a request sets [`RequestOptions::timeout`].
    pub const fn overall(timeout: Option<Duration>) -> Self {
        TimeoutLayer {
            kind: TimeoutKind::Overall,
            default: timeout,
        }
    }

    /// A deadline for each attempt. `None` means no deadline unless a request
    /// sets [`RequestOptions::attempt_timeout`]; an overall deadline recorded
    /// by an outer [`TimeoutLayer::overall`] is honoured either way.
    pub const fn per_attempt(timeout: Option<Duration>) -> Self {
        TimeoutLayer {
            kind: TimeoutKind::Attempt,
            default: timeout,
        }
    }
}

impl<S> Layer<S> for TimeoutLayer {
    type Service = Timeout<S>;

    fn layer(&self, inner: S) -> Timeout<S> {
        Timeout {
            inner,
            kind: self.kind,
            default: self.default,
            watchdog: Arc::default(),
        }
    }
}

/// The service made by [`TimeoutLayer`].
#[derive(Debug, Clone)]
pub struct Timeout<S> {
    inner: S,
    kind: TimeoutKind,
    default: Option<Duration>,
    watchdog: Arc<Watchdog>,
}

/// How long the watchdog task sleeps at a time, and the shortest deadline
/// that starts it: registering a shorter one wakes the driver anyway.
const WATCH_PERIOD: Duration = Duration::from_secs(1);

/// The state shared by a [`Timeout`] service, its clones and its watchdog
/// task (see the module documentation).
#[derive(Debug, Default)]
struct Watchdog {
    /// A watchdog task exists (spawned, and not yet finished or dropped).
    running: AtomicBool,
    /// A deadline was set since the task last looked.
    busy: AtomicBool,
}

impl Watchdog {
    /// Notes that a deadline at `at` is about to be registered, and starts
    /// the task if none is running.
    fn arm(self: &Arc<Self>, at: Instant) {
        if at <= Instant::now() + WATCH_PERIOD {
            return;
        }
        if !self.busy.load(Ordering::Relaxed) {
            self.busy.store(true, Ordering::Relaxed);
        }
        if self.running.load(Ordering::Relaxed) || self.running.swap(true, Ordering::AcqRel) {
            return;
        }
        // Cleared when the task ends, or when the runtime drops it (also
        // unpolled, should the runtime be shutting down).
        let stopped = Stopped(Arc::clone(self));
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    let stopped = stopped;
                    loop {
                        tokio::time::sleep(WATCH_PERIOD).await;
                        if !stopped.0.busy.swap(false, Ordering::AcqRel) {
                            break;
                        }
                    }
                });
            }
            Err(_) => drop(stopped),
        }
    }

    #[cfg(test)]
    fn running(&self) -> bool {
        self.running.load(Ordering::Acquire)
    }
}

/// Marks the watchdog task as gone when dropped.
struct Stopped(Arc<Watchdog>);

impl Drop for Stopped {
    fn drop(&mut self) {
        self.0.running.store(false, Ordering::Release);
    }
}

impl<S, B> Service<Request<B>> for Timeout<S>
where
    S: Service<Request<B>>,
    S::Error: Into<TransportError>,
{
    type Response = S::Response;
    type Error = TransportError;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let options = req.extensions().get::<RequestOptions>();
        match self.kind {
            TimeoutKind::Overall => {
                let Some(after) = options.and_then(|o| o.timeout).or(self.default) else {
                    return ResponseFuture::unbounded(self.inner.call(req));
                };
                let at = Instant::now() + after;
                self.watchdog.arm(at);
                req.extensions_mut().insert(Deadline { at, after });
                let counter = AttemptCounter::default();
                req.extensions_mut().insert(counter.clone());
                ResponseFuture {
                    inner: self.inner.call(req),
                    sleep: Some(tokio::time::sleep_until(at)),
                    after,
                    kind: TimeoutKind::Overall,
                    attempt: AttemptOf::Counter(counter),
                }
            }
            // No constructor makes a handshake layer; it would act per attempt.
            TimeoutKind::Attempt | TimeoutKind::Handshake => {
                let own = options
                    .and_then(|o| o.attempt_timeout)
                    .or(self.default)
                    .map(|after| (Instant::now() + after, after, TimeoutKind::Attempt));
                // The overall deadline comes with the attempt number from a
                // retry layer above, or on its own from an overall layer.
                let attempt = req.extensions().get::<Attempt>();
                let outer = attempt
                    .and_then(|a| a.deadline)
                    .or_else(|| req.extensions().get::<Deadline>().copied())
                    .map(|d| (d.at, d.after, TimeoutKind::Overall));
                // Whichever deadline comes first; the per-attempt one on a tie.
                let first = match (own, outer) {
                    (Some(a), Some(o)) => Some(if o.0 < a.0 { o } else { a }),
                    (a, o) => a.or(o),
                };
                let attempt = AttemptOf::Fixed(attempt.map_or(1, |a| a.number()));
                let inner = self.inner.call(req);
                match first {
                    None => ResponseFuture::unbounded(inner),
                    Some((at, after, kind)) => {
                        self.watchdog.arm(at);
                        ResponseFuture {
                            inner,
                            sleep: Some(tokio::time::sleep_until(at)),
                            after,
                            kind,
                            attempt,
                        }
                    }
                }
            }
        }
    }
}

impl<F> ResponseFuture<F> {
    fn unbounded(inner: F) -> Self {
        ResponseFuture {
            inner,
            sleep: None,
            after: Duration::ZERO,
            kind: TimeoutKind::Attempt,
            attempt: AttemptOf::Fixed(1),
        }
    }
}

#[derive(Debug)]
enum AttemptOf {
    Fixed(u32),
    Counter(AttemptCounter),
}

pin_project! {
    /// The response future of [`Timeout`].
    #[derive(Debug)]
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        #[pin]
        sleep: Option<Sleep>,
        after: Duration,
        kind: TimeoutKind,
        attempt: AttemptOf,
    }
}

impl<F, T, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<T, E>>,
    E: Into<TransportError>,
{
    type Output = Result<T, TransportError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(out) = this.inner.poll(cx) {
            return Poll::Ready(out.map_err(Into::into));
        }
        match this.sleep.as_pin_mut().map(|sleep| sleep.poll(cx)) {
            Some(Poll::Ready(())) => {
                let attempt = match this.attempt {
                    AttemptOf::Fixed(n) => *n,
                    AttemptOf::Counter(c) => c.get(),
                };
                Poll::Ready(Err(TransportError::Timeout {
                    kind: *this.kind,
                    after: *this.after,
                    attempt,
                }))
            }
            _ => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::convert::Infallible;
    use tower::ServiceExt;

    fn slow(
        delay: Duration,
    ) -> impl Service<Request<()>, Response = (), Error = Infallible, Future: Send> + Clone {
        tower::service_fn(move |_req: Request<()>| async move {
            tokio::time::sleep(delay).await;
            Ok::<_, Infallible>(())
        })
    }

    #[tokio::test(start_paused = true)]
    async fn overall_deadline_fires_with_its_kind() {
        let svc =
            TimeoutLayer::overall(Some(Duration::from_secs(1))).layer(slow(Duration::from_secs(5)));
        let err = svc.oneshot(Request::new(())).await.unwrap_err();
        assert!(matches!(
            err,
            TransportError::Timeout {
                kind: TimeoutKind::Overall,
                attempt: 1,
                ..
            }
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn request_option_overrides_and_attempt_is_reported() {
        let svc = TimeoutLayer::per_attempt(None).layer(slow(Duration::from_secs(5)));
        let mut req = Request::new(());
        req.extensions_mut()
            .insert(RequestOptions::new().attempt_timeout(Duration::from_millis(10)));
        req.extensions_mut().insert(Attempt::new(3));
        let err = svc.oneshot(req).await.unwrap_err();
        match err {
            TransportError::Timeout {
                kind,
                after,
                attempt,
            } => {
                assert_eq!(kind, TimeoutKind::Attempt);
                assert_eq!(after, Duration::from_millis(10));
                assert_eq!(attempt, 3);
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    fn slow_http(
        delay: Duration,
    ) -> impl Service<
        Request<bytes::Bytes>,
        Response = http::Response<bytes::Bytes>,
        Error = Infallible,
        Future: Send,
    > + Clone {
        tower::service_fn(move |_req: Request<bytes::Bytes>| async move {
            tokio::time::sleep(delay).await;
            Ok::<_, Infallible>(http::Response::new(bytes::Bytes::new()))
        })
    }

    /// The retry layer as the builder sets it up: it owns the overall
    /// deadline and hands it down to the per-attempt layer.
    fn delegating(overall: Duration) -> crate::retry::RetryLayer {
        crate::retry::RetryLayer::new(crate::retry::RetryPolicy::none())
            .overall_deadline(Some(overall))
    }

    #[tokio::test(start_paused = true)]
    async fn attempt_layer_enforces_an_earlier_overall_deadline() {
        let stack = delegating(Duration::from_secs(2)).layer(
            TimeoutLayer::per_attempt(Some(Duration::from_secs(3)))
                .layer(slow_http(Duration::from_secs(10))),
        );
        let err = stack
            .oneshot(Request::new(bytes::Bytes::new()))
            .await
            .unwrap_err();
        assert!(matches!(
            err,
            TransportError::Timeout {
                kind: TimeoutKind::Overall,
                after,
                ..
            } if after == Duration::from_secs(2)
        ));

        let stack = delegating(Duration::from_secs(5)).layer(
            TimeoutLayer::per_attempt(Some(Duration::from_secs(1)))
                .layer(slow_http(Duration::from_secs(10))),
        );
        let err = stack
            .oneshot(Request::new(bytes::Bytes::new()))
            .await
            .unwrap_err();
        assert!(matches!(
            err,
            TransportError::Timeout {
                kind: TimeoutKind::Attempt,
                ..
            }
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn long_deadline_fires_on_time_with_the_watchdog() {
        let svc = TimeoutLayer::per_attempt(Some(Duration::from_secs(30)))
            .layer(slow(Duration::from_secs(600)));
        let watchdog = Arc::clone(&svc.watchdog);
        let start = Instant::now();
        let err = svc.oneshot(Request::new(())).await.unwrap_err();
        let elapsed = start.elapsed();
        assert!(matches!(
            err,
            TransportError::Timeout {
                kind: TimeoutKind::Attempt,
                ..
            }
        ));
        assert!(
            elapsed >= Duration::from_secs(30) && elapsed < Duration::from_millis(30_002),
            "fired after {elapsed:?}"
        );
        // No other deadline was set meanwhile, so the task has long stopped.
        assert!(!watchdog.running());
    }

    #[tokio::test(start_paused = true)]
    async fn watchdog_runs_while_deadlines_are_set_and_stops_when_idle() {
        let mut svc = TimeoutLayer::overall(Some(Duration::from_secs(60)))
            .layer(slow(Duration::from_millis(300)));
        let watchdog = Arc::clone(&svc.watchdog);
        assert!(!watchdog.running());
        // Back-to-back requests for three periods.
        for _ in 0..10 {
            svc.ready()
                .await
                .unwrap()
                .call(Request::new(()))
                .await
                .unwrap();
            assert!(watchdog.running());
        }
        tokio::time::sleep(3 * WATCH_PERIOD).await;
        assert!(!watchdog.running());
        svc.ready()
            .await
            .unwrap()
            .call(Request::new(()))
            .await
            .unwrap();
        assert!(watchdog.running());
    }

    #[tokio::test(start_paused = true)]
    async fn short_deadlines_do_not_start_the_watchdog() {
        let svc = TimeoutLayer::per_attempt(Some(Duration::from_millis(500)))
            .layer(slow(Duration::from_secs(5)));
        let watchdog = Arc::clone(&svc.watchdog);
        svc.oneshot(Request::new(())).await.unwrap_err();
        assert!(!watchdog.running());
    }

    /// The task lives in the runtime that started it; when that runtime
    /// goes away the next one starts its own.
    #[test]
    fn watchdog_follows_the_runtime() {
        let svc = TimeoutLayer::per_attempt(Some(Duration::from_secs(30)))
            .layer(slow(Duration::from_millis(1)));
        let watchdog = Arc::clone(&svc.watchdog);
        for _ in 0..2 {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .unwrap();
            rt.block_on(svc.clone().oneshot(Request::new(()))).unwrap();
            assert!(watchdog.running());
            drop(rt);
            assert!(!watchdog.running());
        }
    }

    /// A real clock and a multi-threaded runtime: a deadline just past the
    /// watchdog's period fires on time.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn long_deadline_fires_in_real_time() {
        let after = WATCH_PERIOD + Duration::from_millis(50);
        let svc = TimeoutLayer::overall(Some(after)).layer(slow(Duration::from_secs(30)));
        let start = std::time::Instant::now();
        let err = svc.oneshot(Request::new(())).await.unwrap_err();
        let elapsed = start.elapsed();
        assert!(matches!(err, TransportError::Timeout { .. }));
        // The deadline, not the 30 s service, ended the call. The upper bound
        // is loose on purpose: a loaded machine may be late, never early.
        assert!(
            elapsed >= after && elapsed < Duration::from_secs(15),
            "fired after {elapsed:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn no_deadline_means_wait() {
        let svc = TimeoutLayer::per_attempt(None).layer(slow(Duration::from_secs(500)));
        svc.oneshot(Request::new(())).await.unwrap();
    }
}
