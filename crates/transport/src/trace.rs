//! `tracing` spans for requests and attempts, with secrets redacted.
//!
//! [`TraceLayer::request`] opens a `flagwire.request` span around the whole
//! logical request; [`TraceLayer::attempt`] opens a `flagwire.attempt` span
//! around each attempt. Both record `method`, `host`, `path` (never the
//! query, which may carry identifiers), `status` and `latency_ms`; attempt
//! spans also record `attempt`. Spans are at `DEBUG` level.
//!
//! At `TRACE` level the attempt layer logs the outgoing headers. A header's
//! value is printed as `[redacted]` when it is marked sensitive or its name
//! is one of `Authorization`, `Proxy-Authorization`, `Cookie`,
//! `Set-Cookie`, `X-Schematic-Api-Key`, `X-eSauti-Api-Key` or
//! `X-eSauti-Signature`, or contains `key`, `token`, `secret` or
//! `signature`. Bodies are never logged.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use http::{HeaderMap, HeaderName, Request, Response};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;
use tracing::Span;

use crate::options::Attempt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    Request,
    Attempt,
}

/// Opens a span per request or per attempt; see the [module docs](self).
#[derive(Debug, Clone, Copy)]
pub struct TraceLayer {
    level: Level,
}

impl TraceLayer {
    /// One `flagwire.request` span per logical request (place outermost).
    pub const fn request() -> Self {
        TraceLayer {
            level: Level::Request,
        }
    }

    /// One `flagwire.attempt` span per attempt (place below the retry and
    /// signing layers, so the logged headers are the ones sent).
    pub const fn attempt() -> Self {
        TraceLayer {
            level: Level::Attempt,
        }
    }
}

impl<S> Layer<S> for TraceLayer {
    type Service = Trace<S>;

    fn layer(&self, inner: S) -> Trace<S> {
        Trace {
            inner,
            level: self.level,
        }
    }
}

/// The service made by [`TraceLayer`].
#[derive(Debug, Clone)]
pub struct Trace<S> {
    inner: S,
    level: Level,
}

/// Whether a header's value must never be printed.
pub fn is_sensitive_header(name: &HeaderName, value: &http::HeaderValue) -> bool {
    if value.is_sensitive() {
        return true;
    }
    let n = name.as_str();
    matches!(
        n,
        "authorization"
            | "proxy-authorization"
            | "cookie"
            | "set-cookie"
            | "x-schematic-api-key"
            | "x-esauti-api-key"
            | "x-esauti-signature"
    ) || ["key", "token", "secret", "signature"]
        .iter()
        .any(|w| n.contains(w))
}

/// Displays a header map with sensitive values replaced by `[redacted]`.
pub struct RedactedHeaders<'a>(pub &'a HeaderMap);

impl fmt::Display for RedactedHeaders<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, (name, value)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            if is_sensitive_header(name, value) {
                write!(f, "{name}: [redacted]")?;
            } else {
                match value.to_str() {
                    Ok(v) => write!(f, "{name}: {v}")?,
                    Err(_) => write!(f, "{name}: [binary]")?,
                }
            }
        }
        f.write_str("}")
    }
}

impl fmt::Debug for RedactedHeaders<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl<S, B, RB> Service<Request<B>> for Trace<S>
where
    S: Service<Request<B>, Response = Response<RB>>,
    S::Error: fmt::Display,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let uri = req.uri();
        let span = match self.level {
            Level::Request => tracing::debug_span!(
                "flagwire.request",
                method = %req.method(),
                host = uri.host().unwrap_or(""),
                path = uri.path(),
                status = tracing::field::Empty,
                latency_ms = tracing::field::Empty,
            ),
            Level::Attempt => tracing::debug_span!(
                "flagwire.attempt",
                method = %req.method(),
                host = uri.host().unwrap_or(""),
                path = uri.path(),
                attempt = Attempt::of(&req),
                status = tracing::field::Empty,
                latency_ms = tracing::field::Empty,
            ),
        };
        // With no subscriber interested, the span is disabled: skip entering
        // it and reading the clock, so tracing costs next to nothing.
        if span.is_disabled() {
            if self.level == Level::Attempt {
                tracing::trace!(headers = %RedactedHeaders(req.headers()), "sending request");
            }
            return ResponseFuture {
                inner: self.inner.call(req),
                span,
                start: None,
            };
        }
        let fut = {
            let _enter = span.enter();
            if self.level == Level::Attempt {
                tracing::trace!(headers = %RedactedHeaders(req.headers()), "sending request");
            }
            self.inner.call(req)
        };
        ResponseFuture {
            inner: fut,
            span,
            start: Some(Instant::now()),
        }
    }
}

pin_project! {
    /// The response future of [`Trace`]: polls the inner future inside the
    /// span and records the outcome.
    #[derive(Debug)]
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        span: Span,
        start: Option<Instant>,
    }
}

impl<F, RB, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<RB>, E>>,
    E: fmt::Display,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let Some(start) = this.start else {
            return this.inner.poll(cx);
        };
        let _enter = this.span.enter();
        let out = ready!(this.inner.poll(cx));
        {
            let latency_ms = start.elapsed().as_secs_f64() * 1000.0;
            this.span.record("latency_ms", latency_ms);
            match &out {
                Ok(resp) => {
                    this.span.record("status", resp.status().as_u16());
                    tracing::debug!(status = resp.status().as_u16(), latency_ms, "response");
                }
                Err(err) => {
                    tracing::debug!(error = %err, latency_ms, "request failed");
                }
            }
        }
        Poll::Ready(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn redaction() {
        let mut h = HeaderMap::new();
        h.insert("x-schematic-api-key", HeaderValue::from_static("sch_dev_1"));
        h.insert("authorization", HeaderValue::from_static("Bearer t0k"));
        h.insert("x-custom-token", HeaderValue::from_static("abc"));
        let mut marked = HeaderValue::from_static("hidden");
        marked.set_sensitive(true);
        h.insert("x-other", marked);
        h.insert("content-type", HeaderValue::from_static("application/json"));
        let shown = RedactedHeaders(&h).to_string();
        for secret in ["sch_dev_1", "t0k", "abc", "hidden"] {
            assert!(!shown.contains(secret), "{shown}");
        }
        assert!(shown.contains("content-type: application/json"));
        assert!(shown.contains("x-schematic-api-key: [redacted]"));
    }
}
