//! Deadlines: one for the whole request, one for each attempt.
//!
//! The same [`TimeoutLayer`] serves both; its [`TimeoutKind`] decides which
//! [`RequestOptions`] field can override it and how the error reads. When a
//! deadline runs out the inner future is dropped (which cancels the attempt
//! and its connection) and the caller gets [`TransportError::Timeout`]: never
//! a made-up `408` response, which a retry layer would mistake for the
//! server's answer.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use http::Request;
use pin_project_lite::pin_project;
use tokio::time::Sleep;
use tower_layer::Layer;
use tower_service::Service;

use crate::error::{TimeoutKind, TransportError};
use crate::options::{Attempt, AttemptCounter, RequestOptions};

/// Puts a deadline on each request (overall) or each attempt (per-attempt).
///
/// Place the overall layer *above* the retry layer, so back-off sleeps count
/// against it, and the per-attempt layer *below* it, so a slow attempt is cut
/// short and retried.
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
    /// sets [`RequestOptions::attempt_timeout`].
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
        }
    }
}

/// The service made by [`TimeoutLayer`].
#[derive(Debug, Clone)]
pub struct Timeout<S> {
    inner: S,
    kind: TimeoutKind,
    default: Option<Duration>,
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
        let (after, attempt) = match self.kind {
            TimeoutKind::Overall => {
                let after = options.and_then(|o| o.timeout).or(self.default);
                let counter = if after.is_some() {
                    let counter = AttemptCounter::default();
                    req.extensions_mut().insert(counter.clone());
                    Some(counter)
                } else {
                    None
                };
                (after, AttemptOf::Counter(counter))
            }
            TimeoutKind::Attempt => {
                let after = options.and_then(|o| o.attempt_timeout).or(self.default);
                (after, AttemptOf::Fixed(Attempt::of(&req)))
            }
        };
        ResponseFuture {
            inner: self.inner.call(req),
            sleep: after.map(tokio::time::sleep),
            after: after.unwrap_or_default(),
            kind: self.kind,
            attempt,
        }
    }
}

#[derive(Debug)]
enum AttemptOf {
    Fixed(u32),
    Counter(Option<AttemptCounter>),
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
                    AttemptOf::Counter(c) => c.as_ref().map_or(1, AttemptCounter::get),
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

    #[tokio::test(start_paused = true)]
    async fn no_deadline_means_wait() {
        let svc = TimeoutLayer::per_attempt(None).layer(slow(Duration::from_secs(500)));
        svc.oneshot(Request::new(())).await.unwrap();
    }
}
