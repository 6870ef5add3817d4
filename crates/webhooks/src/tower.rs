//! A tower layer that verifies webhook deliveries before the inner service
//! sees them (feature `tower`).
//!
//! A signature covers the exact bytes of the body, so nothing may act on a
//! delivery before all of it has been read and checked. [`VerifyWebhookLayer`]
//! does that in front of any service, so that neither the handlers nor the
//! routes behind it need to know about signatures. For each request,
//! [`VerifyWebhook`]:
//!
//! 1. refuses a body whose declared length (`Content-Length`, or the body's
//!    size hint) is over the limit, without reading it;
//! 2. reads the whole body, refusing it as soon as it grows over the limit
//!    (1 MiB by default, see [`VerifyWebhookLayer::max_body_size`]);
//! 3. verifies the request (headers, body, and for eSauti the method and
//!    path) with the layer's [`Verifier`];
//! 4. when it verifies, calls the inner service with the same request
//!    head, a [`VerifiedDelivery`](crate::VerifiedDelivery) added to its extensions and the body
//!    re-wrapped as a [`VerifiedBody`], which the inner service reads like
//!    any other body.
//!
//! Otherwise the inner service is not called and the response is an empty
//! `413 Payload Too Large` (over the limit) or `400 Bad Request`
//! (anything else: not verified, body unreadable). The reason is logged at
//! debug level through `tracing`, never sent to the client.
//!
//! ```
//! use std::convert::Infallible;
//!
//! use flagwire_webhooks::tower::{VerifiedBody, VerifyWebhookLayer};
//! use flagwire_webhooks::{SchematicVerifier, VerifiedDelivery};
//! use http::{Request, Response, StatusCode};
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//!
//! # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
//! let service = ServiceBuilder::new()
//!     .layer(VerifyWebhookLayer::new(SchematicVerifier::new("secret")?).max_body_size(64 * 1024))
//!     .service(service_fn(|request: Request<VerifiedBody>| async move {
//!         // Only verified deliveries get here.
//!         let delivery = request.extensions().get::<VerifiedDelivery>();
//!         println!("{delivery:?}: {} bytes", request.body().as_bytes().len());
//!         Ok::<_, Infallible>(Response::new(String::new()))
//!     }));
//!
//! let unsigned = Request::post("/webhooks/schematic").body(String::from("{}"))?;
//! assert_eq!(service.oneshot(unsigned).await?.status(), StatusCode::BAD_REQUEST);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! In an axum router, `Router::route_layer(VerifyWebhookLayer::new(..))`
//! protects the routes above it; a handler then takes the body as `Bytes`
//! (or any body extractor) and the facts as
//! `Extension<VerifiedDelivery>`. The inner service must accept a
//! `Request<VerifiedBody>`, and its response body must implement
//! `Default` (for the empty refusals).

use core::convert::Infallible;
use core::fmt;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll, ready};

use bytes::{Buf, Bytes, BytesMut};
use http::{Request, Response, StatusCode, header};
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use crate::scheme::Scheme;
use crate::verifier::Verifier;

/// The default body limit of [`VerifyWebhookLayer`]: 1 MiB.
pub const DEFAULT_MAX_BODY_SIZE: usize = 1024 * 1024;

/// Wraps services with [`VerifyWebhook`]; see the [module
/// documentation](self).
pub struct VerifyWebhookLayer<S: Scheme> {
    verifier: Verifier<S>,
    max_body: usize,
}

impl<S: Scheme> VerifyWebhookLayer<S> {
    /// A layer that verifies with `verifier` and accepts bodies of up to
    /// [`DEFAULT_MAX_BODY_SIZE`] bytes.
    pub fn new(verifier: Verifier<S>) -> Self {
        VerifyWebhookLayer {
            verifier,
            max_body: DEFAULT_MAX_BODY_SIZE,
        }
    }

    /// Accepts bodies of up to `bytes` bytes; longer ones get `413 Payload
    /// Too Large`. The whole body is held in memory while it is verified.
    #[must_use]
    pub fn max_body_size(mut self, bytes: usize) -> Self {
        self.max_body = bytes;
        self
    }
}

impl<S: Scheme> Clone for VerifyWebhookLayer<S> {
    fn clone(&self) -> Self {
        VerifyWebhookLayer {
            verifier: self.verifier.clone(),
            max_body: self.max_body,
        }
    }
}

impl<S: Scheme> fmt::Debug for VerifyWebhookLayer<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyWebhookLayer")
            .field("verifier", &self.verifier)
            .field("max_body", &self.max_body)
            .finish()
    }
}

impl<S: Scheme, I> Layer<I> for VerifyWebhookLayer<S> {
    type Service = VerifyWebhook<S, I>;

    fn layer(&self, inner: I) -> Self::Service {
        VerifyWebhook {
            inner,
            verifier: self.verifier.clone(),
            max_body: self.max_body,
        }
    }
}

/// A service that verifies each request as a delivery of scheme `S`
/// before calling the inner service `I`; made by [`VerifyWebhookLayer`].
pub struct VerifyWebhook<S: Scheme, I> {
    inner: I,
    verifier: Verifier<S>,
    max_body: usize,
}

impl<S: Scheme, I> VerifyWebhook<S, I> {
    /// The inner service.
    pub fn get_ref(&self) -> &I {
        &self.inner
    }

    /// The inner service, taken out.
    pub fn into_inner(self) -> I {
        self.inner
    }
}

impl<S: Scheme, I: Clone> Clone for VerifyWebhook<S, I> {
    fn clone(&self) -> Self {
        VerifyWebhook {
            inner: self.inner.clone(),
            verifier: self.verifier.clone(),
            max_body: self.max_body,
        }
    }
}

impl<S: Scheme, I: fmt::Debug> fmt::Debug for VerifyWebhook<S, I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyWebhook")
            .field("inner", &self.inner)
            .field("verifier", &self.verifier)
            .field("max_body", &self.max_body)
            .finish()
    }
}

impl<S, I, B, ResBody> Service<Request<B>> for VerifyWebhook<S, I>
where
    S: Scheme,
    I: Service<Request<VerifiedBody>, Response = Response<ResBody>> + Clone,
    B: Body,
    B::Error: fmt::Display,
    ResBody: Default,
{
    type Response = Response<ResBody>;
    type Error = I::Error;
    type Future = ResponseFuture<S, I, B>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        // The service that was polled ready is the one to call; a clone
        // takes its place for the next request.
        let ready = self.inner.clone();
        let inner = core::mem::replace(&mut self.inner, ready);
        let (parts, body) = request.into_parts();
        let declared = declared_length(&parts.headers).max(body.size_hint().lower());
        let state = if declared > self.max_body as u64 {
            tracing::debug!(
                scheme = S::NAME,
                declared,
                limit = self.max_body,
                "webhook delivery rejected: body over the limit"
            );
            State::Refused {
                status: Some(StatusCode::PAYLOAD_TOO_LARGE),
            }
        } else {
            State::Reading {
                body,
                collected: Collected::default(),
                request: Some((parts, inner)),
            }
        };
        ResponseFuture {
            state,
            verifier: self.verifier.clone(),
            max_body: self.max_body,
        }
    }
}

/// The declared `Content-Length`, or 0 when absent or unreadable (the
/// limit is then enforced while reading).
fn declared_length(headers: &http::HeaderMap) -> u64 {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0)
}

pin_project! {
    /// The response future of [`VerifyWebhook`]: reads the body, verifies,
    /// then runs the inner service's future (or answers with the refusal).
    pub struct ResponseFuture<S, I, B>
    where
        S: Scheme,
        I: Service<Request<VerifiedBody>>,
    {
        #[pin]
        state: State<I, B, I::Future>,
        verifier: Verifier<S>,
        max_body: usize,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<I, B, F> {
        /// Reading the body; the request head and the inner service wait.
        Reading {
            #[pin]
            body: B,
            collected: Collected,
            request: Option<(http::request::Parts, I)>,
        },
        /// Verified: the inner service runs.
        Calling {
            #[pin]
            future: F,
        },
        /// Turned away; `None` once the response has been handed out.
        Refused {
            status: Option<StatusCode>,
        },
    }
}

/// What the state machine does next.
enum Step<F> {
    Call(F),
    Refuse(StatusCode),
}

const POLLED_AFTER_COMPLETION: &str = "ResponseFuture polled after completion";

impl<S, I, B, ResBody> Future for ResponseFuture<S, I, B>
where
    S: Scheme,
    I: Service<Request<VerifiedBody>, Response = Response<ResBody>>,
    B: Body,
    B::Error: fmt::Display,
    ResBody: Default,
{
    type Output = Result<Response<ResBody>, I::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            let step = match this.state.as_mut().project() {
                StateProj::Calling { future } => return future.poll(cx),
                StateProj::Refused { status } => {
                    let status = status.take().expect(POLLED_AFTER_COMPLETION);
                    let mut response = Response::new(ResBody::default());
                    *response.status_mut() = status;
                    return Poll::Ready(Ok(response));
                }
                StateProj::Reading {
                    body,
                    collected,
                    request,
                } => match ready!(read_body::<S, B>(body, cx, collected, *this.max_body)) {
                    Err(status) => Step::Refuse(status),
                    Ok(()) => {
                        let (parts, inner) = request.take().expect(POLLED_AFTER_COMPLETION);
                        let body = core::mem::take(collected).into_bytes();
                        verify_and_call(this.verifier, parts, body, inner)
                    }
                },
            };
            this.state.set(match step {
                Step::Call(future) => State::Calling { future },
                Step::Refuse(status) => State::Refused {
                    status: Some(status),
                },
            });
        }
    }
}

/// Reads frames into `collected` until the body ends (`Ok`), grows over
/// `max_body` (413) or fails (400). Trailers are dropped: no scheme signs
/// them.
fn read_body<S: Scheme, B>(
    mut body: Pin<&mut B>,
    cx: &mut Context<'_>,
    collected: &mut Collected,
    max_body: usize,
) -> Poll<Result<(), StatusCode>>
where
    B: Body,
    B::Error: fmt::Display,
{
    loop {
        match ready!(body.as_mut().poll_frame(cx)) {
            None => return Poll::Ready(Ok(())),
            Some(Err(error)) => {
                tracing::debug!(scheme = S::NAME, %error, "webhook delivery rejected: body unreadable");
                return Poll::Ready(Err(StatusCode::BAD_REQUEST));
            }
            Some(Ok(frame)) => {
                let Ok(mut data) = frame.into_data() else {
                    continue;
                };
                let len = data.remaining();
                if len > max_body.saturating_sub(collected.len) {
                    tracing::debug!(
                        scheme = S::NAME,
                        limit = max_body,
                        "webhook delivery rejected: body over the limit"
                    );
                    return Poll::Ready(Err(StatusCode::PAYLOAD_TOO_LARGE));
                }
                collected.push(data.copy_to_bytes(len));
            }
        }
    }
}

/// Verifies the request and, when it passes, starts the inner service on
/// it.
fn verify_and_call<S, I>(
    verifier: &Verifier<S>,
    mut parts: http::request::Parts,
    body: Bytes,
    mut inner: I,
) -> Step<I::Future>
where
    S: Scheme,
    I: Service<Request<VerifiedBody>>,
{
    let delivery = match verifier.verify_parts(&parts, &body) {
        Ok(verified) => verified.to_delivery(),
        Err(error) => {
            tracing::debug!(scheme = S::NAME, %error, "webhook delivery rejected");
            return Step::Refuse(StatusCode::BAD_REQUEST);
        }
    };
    parts.extensions.insert(delivery);
    Step::Call(inner.call(Request::from_parts(parts, VerifiedBody { bytes: body })))
}

/// The body read so far. A body that arrives in one chunk (the usual case)
/// is kept as it came, without a copy; later chunks are appended to a
/// buffer.
#[derive(Default)]
struct Collected {
    len: usize,
    first: Bytes,
    rest: BytesMut,
}

impl Collected {
    fn push(&mut self, chunk: Bytes) {
        if chunk.is_empty() {
            return;
        }
        if self.len == 0 {
            self.len = chunk.len();
            self.first = chunk;
            return;
        }
        if !self.first.is_empty() {
            let first = core::mem::take(&mut self.first);
            self.rest.reserve(first.len() + chunk.len());
            self.rest.extend_from_slice(&first);
        }
        self.rest.extend_from_slice(&chunk);
        self.len += chunk.len();
    }

    fn into_bytes(self) -> Bytes {
        if self.rest.is_empty() {
            self.first
        } else {
            self.rest.freeze()
        }
    }
}

/// The body [`VerifyWebhook`] hands to the inner service: the bytes that
/// were verified, as one data frame.
///
/// Read it like any body, or take the bytes directly with
/// [`as_bytes`](Self::as_bytes) or [`into_bytes`](Self::into_bytes).
#[derive(Debug, Clone, Default)]
pub struct VerifiedBody {
    bytes: Bytes,
}

impl VerifiedBody {
    /// The bytes not read yet: the whole verified body until the body is
    /// polled as a stream, nothing after.
    pub fn as_bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// The bytes not read yet, taken out.
    pub fn into_bytes(self) -> Bytes {
        self.bytes
    }
}

impl From<VerifiedBody> for Bytes {
    fn from(body: VerifiedBody) -> Self {
        body.bytes
    }
}

impl Body for VerifiedBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let bytes = core::mem::take(&mut self.get_mut().bytes);
        Poll::Ready((!bytes.is_empty()).then(|| Ok(Frame::data(bytes))))
    }

    fn is_end_stream(&self) -> bool {
        self.bytes.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.bytes.len() as u64)
    }
}
