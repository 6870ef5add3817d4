//! Credentials and request signing.
//!
//! * [`AuthLayer`] adds the API key (under a configurable header name such as
//!   `X-Schematic-Api-Key` or `X-eSauti-Api-Key`) or an `Authorization:
//!   Bearer` token. The header value is marked sensitive, so hyper's HTTP/2
//!   HPACK encoder never indexes it and the trace layer never prints it.
//! * [`SignLayer`] calls a [`RequestSigner`] on every attempt. It sits below
//!   the retry layer, so each retry is signed again with a fresh timestamp
//!   instead of replaying a stale signature.
//! * [`HmacSha256Signer`] is eSauti's HMAC scheme.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{SystemTime, UNIX_EPOCH};

use http::header::{AUTHORIZATION, HeaderName};
use http::{HeaderMap, HeaderValue, Method, Request, Uri};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use flagwire_webhooks::Esauti;

use crate::error::{BoxError, TransportError};
use crate::options::Attempt;

/// The header Schematic reads the API key from.
pub const SCHEMATIC_API_KEY: HeaderName = HeaderName::from_static("x-schematic-api-key");
/// The header eSauti reads the API key from.
pub const ESAUTI_API_KEY: HeaderName = HeaderName::from_static("x-esauti-api-key");
/// The header carrying the Unix time (seconds) an eSauti signature was made at.
pub const ESAUTI_TIMESTAMP: HeaderName = HeaderName::from_static("x-esauti-timestamp");
/// The header carrying an eSauti signature, `sha256=<hex>`.
pub const ESAUTI_SIGNATURE: HeaderName = HeaderName::from_static("x-esauti-signature");

/// A secret string (API key, token, signing key). Its `Debug` prints
/// `Secret([redacted])` and it has no `Display`, so it cannot end up in a log
/// line by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Arc<str>);

impl Secret {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(Arc::from(value.into()))
    }

    /// The secret itself. Call this only where the value must be used.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The secret as a header value marked sensitive.
    fn header_value(&self, prefix: &str) -> Result<HeaderValue, TransportError> {
        let mut value = HeaderValue::try_from(format!("{prefix}{}", self.expose()))
            .map_err(|_| TransportError::config("credential is not a valid header value"))?;
        value.set_sensitive(true);
        Ok(value)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret::new(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Secret::new(value)
    }
}

/// Adds a credential header to every request that does not carry that
/// header yet (so a per-request credential set by the caller wins).
#[derive(Clone)]
pub struct AuthLayer {
    credential: Option<(HeaderName, HeaderValue)>,
}

impl fmt::Debug for AuthLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthLayer")
            .field("header", &self.header_name())
            .field("value", &"[redacted]")
            .finish()
    }
}

impl AuthLayer {
    /// Sends `key` in the header `name` (e.g. [`SCHEMATIC_API_KEY`]).
    ///
    /// Fails with [`TransportError::Config`] when the key contains bytes a
    /// header value cannot hold.
    pub fn api_key(name: HeaderName, key: &Secret) -> Result<Self, TransportError> {
        Ok(AuthLayer {
            credential: Some((name, key.header_value("")?)),
        })
    }

    /// Sends `Authorization: Bearer <token>`.
    pub fn bearer(token: &Secret) -> Result<Self, TransportError> {
        Ok(AuthLayer {
            credential: Some((AUTHORIZATION, token.header_value("Bearer ")?)),
        })
    }

    /// A layer that adds nothing (for stacks without credentials).
    pub const fn none() -> Self {
        AuthLayer { credential: None }
    }

    /// The header this layer sets, if any.
    pub fn header_name(&self) -> Option<&HeaderName> {
        self.credential.as_ref().map(|(n, _)| n)
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = Auth<S>;

    fn layer(&self, inner: S) -> Auth<S> {
        Auth {
            inner,
            credential: self.credential.clone(),
        }
    }
}

/// The service made by [`AuthLayer`].
#[derive(Clone)]
pub struct Auth<S> {
    inner: S,
    credential: Option<(HeaderName, HeaderValue)>,
}

impl<S: fmt::Debug> fmt::Debug for Auth<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Auth")
            .field("inner", &self.inner)
            .field("header", &self.credential.as_ref().map(|(n, _)| n))
            .finish_non_exhaustive()
    }
}

impl<S, B> Service<Request<B>> for Auth<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        if let Some((name, value)) = &self.credential
            && let http::header::Entry::Vacant(slot) = req.headers_mut().entry(name)
        {
            slot.insert(value.clone());
        }
        self.inner.call(req)
    }
}

/// What a [`RequestSigner`] sees of one attempt: method, URI, headers (which
/// it may add to) and the exact body bytes that will be sent.
#[derive(Debug)]
pub struct SignableRequest<'a> {
    method: &'a Method,
    uri: &'a Uri,
    headers: &'a mut HeaderMap,
    body: &'a [u8],
    attempt: u32,
}

impl<'a> SignableRequest<'a> {
    /// Builds a view of a request for a signer (useful to test signers).
    pub fn new(
        method: &'a Method,
        uri: &'a Uri,
        headers: &'a mut HeaderMap,
        body: &'a [u8],
        attempt: u32,
    ) -> Self {
        SignableRequest {
            method,
            uri,
            headers,
            body,
            attempt,
        }
    }

    /// The request method.
    pub fn method(&self) -> &Method {
        self.method
    }

    /// The full request URI.
    pub fn uri(&self) -> &Uri {
        self.uri
    }

    /// The path alone, `/` when empty.
    pub fn path(&self) -> &str {
        match self.uri.path() {
            "" => "/",
            p => p,
        }
    }

    /// The path and query, `/` when empty.
    pub fn path_and_query(&self) -> &str {
        self.uri.path_and_query().map_or("/", |pq| pq.as_str())
    }

    /// The headers as they are at this point of the stack.
    pub fn headers(&self) -> &HeaderMap {
        self.headers
    }

    /// Mutable access to the headers, to add the signature.
    pub fn headers_mut(&mut self) -> &mut HeaderMap {
        self.headers
    }

    /// The body bytes that will be sent.
    pub fn body(&self) -> &[u8] {
        self.body
    }

    /// The 1-based attempt being signed.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }
}

/// Signs one attempt of a request, typically by adding headers.
///
/// Called by [`SignLayer`] once per attempt, so time-based signatures are
/// fresh on every retry. An error stops the attempt with
/// [`TransportError::Signing`].
pub trait RequestSigner: Send + Sync + 'static {
    /// Signs the request, adding whatever headers the scheme needs.
    fn sign(&self, request: &mut SignableRequest<'_>) -> Result<(), BoxError>;
}

impl<F> RequestSigner for F
where
    F: Fn(&mut SignableRequest<'_>) -> Result<(), BoxError> + Send + Sync + 'static,
{
    fn sign(&self, request: &mut SignableRequest<'_>) -> Result<(), BoxError> {
        self(request)
    }
}

/// Calls a [`RequestSigner`] on every request passing through.
#[derive(Clone)]
pub struct SignLayer {
    signer: Option<Arc<dyn RequestSigner>>,
}

impl fmt::Debug for SignLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignLayer").finish_non_exhaustive()
    }
}

impl SignLayer {
    /// A layer calling `signer`.
    pub fn new(signer: impl RequestSigner) -> Self {
        SignLayer {
            signer: Some(Arc::new(signer)),
        }
    }

    /// A layer calling a shared signer.
    pub fn from_arc(signer: Arc<dyn RequestSigner>) -> Self {
        SignLayer {
            signer: Some(signer),
        }
    }

    /// A layer that signs nothing (for stacks without a signer).
    pub const fn none() -> Self {
        SignLayer { signer: None }
    }
}

impl<S> Layer<S> for SignLayer {
    type Service = Sign<S>;

    fn layer(&self, inner: S) -> Sign<S> {
        Sign {
            inner,
            signer: self.signer.clone(),
        }
    }
}

/// The service made by [`SignLayer`].
#[derive(Clone)]
pub struct Sign<S> {
    inner: S,
    signer: Option<Arc<dyn RequestSigner>>,
}

impl<S: fmt::Debug> fmt::Debug for Sign<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sign")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<S, B> Service<Request<B>> for Sign<S>
where
    S: Service<Request<B>>,
    S::Error: Into<TransportError>,
    B: AsRef<[u8]>,
{
    type Response = S::Response;
    type Error = TransportError;
    type Future = SignFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let Some(signer) = &self.signer else {
            return SignFuture::inner(self.inner.call(req));
        };
        let attempt = Attempt::of(&req);
        let (mut parts, body) = req.into_parts();
        let mut view = SignableRequest::new(
            &parts.method,
            &parts.uri,
            &mut parts.headers,
            body.as_ref(),
            attempt,
        );
        match signer.sign(&mut view) {
            Ok(()) => SignFuture::inner(self.inner.call(Request::from_parts(parts, body))),
            Err(source) => SignFuture::failed(TransportError::Signing { source }),
        }
    }
}

pin_project! {
    #[project = SignProj]
    #[derive(Debug)]
    enum SignState<F> {
        Inner { #[pin] fut: F },
        Failed { err: Option<TransportError> },
    }
}

pin_project! {
    /// The response future of [`Sign`].
    #[derive(Debug)]
    pub struct SignFuture<F> {
        #[pin]
        state: SignState<F>,
    }
}

impl<F> SignFuture<F> {
    fn inner(fut: F) -> Self {
        SignFuture {
            state: SignState::Inner { fut },
        }
    }

    fn failed(err: TransportError) -> Self {
        SignFuture {
            state: SignState::Failed { err: Some(err) },
        }
    }
}

impl<F, T, E> Future for SignFuture<F>
where
    F: Future<Output = Result<T, E>>,
    E: Into<TransportError>,
{
    type Output = Result<T, TransportError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            SignProj::Inner { fut } => fut.poll(cx).map_err(Into::into),
            SignProj::Failed { err } => {
                Poll::Ready(Err(err.take().expect("SignFuture polled after completion")))
            }
        }
    }
}

/// A source of the current time, replaceable in tests.
pub type Clock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

/// eSauti's request signature: HMAC-SHA256, keyed by the secret's bytes, over
/// `METHOD "\n" PATH "\n" TIMESTAMP "\n" BODY`, where PATH is the URI path
/// without query (`/` if empty) and TIMESTAMP the Unix time in whole seconds.
/// Adds `X-eSauti-Timestamp: <ts>` and `X-eSauti-Signature: sha256=<hex>`
/// (the latter marked sensitive).
///
/// The scheme itself is computed by [`flagwire_webhooks::Signer`], the same
/// code the receiving side's verifier is tested against, so what this layer
/// signs is exactly what an eSauti verifier accepts.
///
/// ```
/// use flagwire_transport::auth::{HmacSha256Signer, Secret};
///
/// let signer = HmacSha256Signer::new(Secret::new("super-secret"))?;
/// assert_eq!(
///     signer.signature("POST", "/v1/inbound/event", 1_700_000_000, br#"{"type":"order.created"}"#),
///     "sha256=70069ac894eebe92d767d0add5927d08297ca5653e43c4458cbb40acd4930c62",
/// );
///
/// // An empty secret would sign every request with an empty key: refused.
/// assert!(HmacSha256Signer::new(Secret::new("")).is_err());
/// # Ok::<(), flagwire_transport::TransportError>(())
/// ```
#[derive(Clone)]
pub struct HmacSha256Signer {
    signer: flagwire_webhooks::Signer<Esauti>,
    clock: Clock,
}

impl fmt::Debug for HmacSha256Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HmacSha256Signer")
            .field("key", &"[redacted]")
            .finish_non_exhaustive()
    }
}

impl HmacSha256Signer {
    /// A signer keyed by `secret`, reading the system clock. An unusable
    /// secret (an empty one) is a [`TransportError::Config`].
    pub fn new(secret: Secret) -> Result<Self, TransportError> {
        let signer = flagwire_webhooks::Signer::<Esauti>::new(secret.expose())
            .map_err(|err| TransportError::config(format!("eSauti signing secret: {err}")))?;
        Ok(HmacSha256Signer {
            signer,
            clock: Arc::new(SystemTime::now),
        })
    }

    /// Replaces the clock (for tests).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The `sha256=<hex>` signature of one request. A query string or
    /// fragment in `path` is not signed, as eSauti specifies.
    pub fn signature(&self, method: &str, path: &str, timestamp: u64, body: &[u8]) -> String {
        let timestamp = i64::try_from(timestamp).unwrap_or(i64::MAX);
        let headers = self.signer.sign(method, path, timestamp, body);
        headers
            .get(Esauti::SIGNATURE_HEADER)
            .expect("the eSauti signer always produces a signature header")
            .to_owned()
    }
}

impl RequestSigner for HmacSha256Signer {
    fn sign(&self, request: &mut SignableRequest<'_>) -> Result<(), BoxError> {
        let now = (self.clock)()
            .duration_since(UNIX_EPOCH)
            .map_err(|_| "system clock is before 1970")?
            .as_secs();
        let signature = self.signature(
            request.method().as_str(),
            request.path(),
            now,
            request.body(),
        );
        let mut sig = HeaderValue::try_from(signature)?;
        sig.set_sensitive(true);
        let headers = request.headers_mut();
        headers.insert(ESAUTI_TIMESTAMP, HeaderValue::from(now));
        headers.insert(ESAUTI_SIGNATURE, sig);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::convert::Infallible;
    use std::time::Duration;
    use tower::ServiceExt;

    #[test]
    fn esauti_vectors() {
        let s = HmacSha256Signer::new(Secret::new("super-secret")).unwrap();
        assert_eq!(
            s.signature(
                "post",
                "/v1/inbound/event",
                1_700_000_000,
                br#"{"type":"order.created"}"#
            ),
            "sha256=70069ac894eebe92d767d0add5927d08297ca5653e43c4458cbb40acd4930c62"
        );
        let k = HmacSha256Signer::new(Secret::new("k")).unwrap();
        assert_eq!(
            k.signature("GET", "/", 1_700_000_000, b""),
            "sha256=1e7fd5126f5167807f3231c6b87ba8388722d32ce9bb41cc1818c72c0c606d2d"
        );
    }

    #[test]
    fn signer_adds_headers_from_the_clock_and_ignores_the_query() {
        let signer = HmacSha256Signer::new(Secret::new("k"))
            .unwrap()
            .with_clock(Arc::new(|| UNIX_EPOCH + Duration::from_secs(1_700_000_000)));
        let method = Method::GET;
        let uri: Uri = "https://h.example?x=1".parse().unwrap();
        let mut headers = HeaderMap::new();
        let mut view = SignableRequest::new(&method, &uri, &mut headers, b"", 1);
        assert_eq!(view.path(), "/");
        signer.sign(&mut view).unwrap();
        assert_eq!(headers[&ESAUTI_TIMESTAMP], "1700000000");
        assert_eq!(
            headers[&ESAUTI_SIGNATURE],
            "sha256=1e7fd5126f5167807f3231c6b87ba8388722d32ce9bb41cc1818c72c0c606d2d"
        );
        assert!(headers[&ESAUTI_SIGNATURE].is_sensitive());
    }

    #[test]
    fn secrets_are_redacted_in_debug() {
        let secret = Secret::new("sch_prod_abc");
        assert!(!format!("{secret:?}").contains("abc"));
        let layer = AuthLayer::api_key(SCHEMATIC_API_KEY, &secret).unwrap();
        assert!(!format!("{layer:?}").contains("abc"));
        let signer = HmacSha256Signer::new(secret).unwrap();
        assert!(!format!("{signer:?}").contains("abc"));
    }

    #[test]
    fn invalid_key_is_a_config_error() {
        let err = AuthLayer::api_key(SCHEMATIC_API_KEY, &Secret::new("bad\nkey")).unwrap_err();
        assert!(matches!(err, TransportError::Config { .. }));
        assert!(!err.to_string().contains("bad"));
    }

    #[tokio::test]
    async fn auth_sets_sensitive_header_unless_present() {
        let echo = tower::service_fn(|req: Request<Vec<u8>>| async move {
            Ok::<_, Infallible>(req.headers().clone())
        });
        let svc = AuthLayer::bearer(&Secret::new("tok")).unwrap().layer(echo);
        let headers = svc.clone().oneshot(Request::new(Vec::new())).await.unwrap();
        assert_eq!(headers[AUTHORIZATION], "Bearer tok");
        assert!(headers[AUTHORIZATION].is_sensitive());

        let mut req = Request::new(Vec::new());
        req.headers_mut()
            .insert(AUTHORIZATION, HeaderValue::from_static("Bearer mine"));
        let headers = svc.oneshot(req).await.unwrap();
        assert_eq!(headers[AUTHORIZATION], "Bearer mine");
    }

    #[tokio::test]
    async fn signer_errors_are_typed() {
        let echo = tower::service_fn(|_req: Request<Vec<u8>>| async { Ok::<_, Infallible>(()) });
        let svc = SignLayer::new(|_r: &mut SignableRequest<'_>| -> Result<(), BoxError> {
            Err("no key".into())
        })
        .layer(echo);
        let err = svc.oneshot(Request::new(Vec::new())).await.unwrap_err();
        assert!(matches!(err, TransportError::Signing { .. }));
        assert_eq!(err.to_string(), "could not sign the request: no key");
    }
}
