//! The one error type of the transport.

use std::error::Error as StdError;
use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use http::{Response, StatusCode};

/// A boxed error that can cross threads, as tower uses.
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// Which deadline ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TimeoutKind {
    /// The deadline for the whole logical request, retries and back-off
    /// sleeps included.
    Overall,
    /// The deadline for one attempt: connecting, sending the request and
    /// reading the whole response body.
    Attempt,
    /// The deadline for opening a WebSocket: connecting, the proxy tunnel,
    /// TLS and the upgrade exchange.
    Handshake,
}

impl fmt::Display for TimeoutKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TimeoutKind::Overall => "overall",
            TimeoutKind::Attempt => "per-attempt",
            TimeoutKind::Handshake => "WebSocket handshake",
        })
    }
}

/// Everything that can go wrong between handing a request to the transport
/// and getting a fully buffered response back.
///
/// An HTTP error status is *not* an error at this level: a `404` comes back as
/// `Ok(response)`. The one exception is [`TransportError::RetriesExhausted`],
/// returned when the retry layer tried again and every attempt failed; it
/// still carries the last response so the caller can read the API's message.
///
/// Neither `Display` nor `Debug` ever prints header values or proxy
/// credentials, so secrets sent with a request cannot leak through an error.
/// `Display` shows the underlying causes (e.g. `TLS handshake failed:
/// invalid peer certificate: UnknownIssuer`).
#[derive(Debug)]
#[non_exhaustive]
pub enum TransportError {
    /// No connection could be made (DNS, refused, unreachable, connect
    /// timeout of the socket). The request was never sent.
    Connect {
        /// The underlying error.
        source: BoxError,
    },
    /// The proxy could not be reached, or it refused to open a tunnel to the
    /// server (e.g. `407 Proxy Authentication Required`, `403 Forbidden`).
    /// Nothing reached the server.
    Proxy {
        /// The proxy, as `scheme://host:port`: never its credentials.
        proxy: String,
        /// The status of the proxy's refusal, when it answered with one.
        status: Option<StatusCode>,
        /// What went wrong otherwise (no connection to the proxy, or a
        /// broken exchange with it).
        source: Option<BoxError>,
    },
    /// The TLS handshake failed, e.g. the server's certificate is not trusted.
    /// Never retried: trying again will not make a certificate valid.
    Tls {
        /// The underlying error.
        source: BoxError,
    },
    /// A deadline ran out. The transport never turns a timeout into a
    /// synthetic HTTP status.
    Timeout {
        /// Which deadline ran out.
        kind: TimeoutKind,
        /// The length of that deadline.
        after: Duration,
        /// The attempt (1-based) that was running when it ran out.
        attempt: u32,
    },
    /// The response body was longer than the configured limit; reading
    /// stopped there.
    BodyTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The connection failed after it was made: reset, closed in the middle
    /// of the response, or an HTTP protocol error.
    Io {
        /// The underlying error.
        source: BoxError,
    },
    /// The retry layer tried again and no attempt succeeded: retries or
    /// time ran out, or the last failure was one that is not retried (e.g.
    /// a `POST` whose connection broke after it was sent).
    RetriesExhausted {
        /// How many attempts were made, the first one included.
        attempts: u32,
        /// The status of the last response, if the last attempt got one.
        last_status: Option<StatusCode>,
        /// The last response itself, when the last attempt got one.
        last_response: Option<LastResponse>,
        /// The error of the last attempt, when it failed without a response.
        source: Option<Box<TransportError>>,
    },
    /// A WebSocket server answered the upgrade request with a status other
    /// than `101 Switching Protocols` (e.g. `401`, `403`, `503`).
    UpgradeRejected {
        /// The status of the answer.
        status: StatusCode,
        /// The answer, with its body if the server sent one.
        response: LastResponse,
    },
    /// The request cannot be sent as it is (e.g. a URI without scheme or
    /// host, or a scheme other than `http`/`https`).
    InvalidRequest {
        /// What is wrong with it.
        reason: String,
    },
    /// A [`RequestSigner`](crate::auth::RequestSigner) refused to sign.
    Signing {
        /// The signer's error.
        source: BoxError,
    },
    /// The transport could not be built from its configuration (e.g. an API
    /// key that is not a valid header value, or an unparsable certificate).
    Config {
        /// What is wrong with it.
        reason: String,
    },
    /// An error from a user-supplied service or layer.
    Other {
        /// The user's error.
        source: BoxError,
    },
}

/// The last response of a request whose retries ran out (or the refusal of
/// a WebSocket upgrade). Its `Debug` prints only the status and body length,
/// never headers or the body.
pub struct LastResponse(pub Box<Response<Bytes>>);

impl fmt::Debug for LastResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LastResponse")
            .field("status", &self.0.status())
            .field("body_len", &self.0.body().len())
            .finish()
    }
}

impl TransportError {
    /// Wraps any error from a user-supplied service or layer. A
    /// `TransportError` passed in boxed is unwrapped rather than nested.
    pub fn other(err: impl Into<BoxError>) -> Self {
        let err = err.into();
        match err.downcast::<TransportError>() {
            Ok(own) => *own,
            Err(source) => TransportError::Other { source },
        }
    }

    pub(crate) fn invalid_request(reason: impl Into<String>) -> Self {
        TransportError::InvalidRequest {
            reason: reason.into(),
        }
    }

    pub(crate) fn config(reason: impl Into<String>) -> Self {
        TransportError::Config {
            reason: reason.into(),
        }
    }

    /// Whether this failure is of a kind the retry layer retries: a failed
    /// connection (to the server or to the proxy), a proxy that answered
    /// the tunnel request with a `5xx`, a connection that broke
    /// mid-request, or an attempt that timed out. An overall timeout, TLS
    /// failures, a proxy's `4xx` refusal, oversized bodies and
    /// configuration errors are final.
    pub fn is_retryable(&self) -> bool {
        match self {
            TransportError::Connect { .. }
            | TransportError::Io { .. }
            | TransportError::Timeout {
                kind: TimeoutKind::Attempt,
                ..
            } => true,
            TransportError::Proxy { status, .. } => status.is_none_or(|s| s.is_server_error()),
            _ => false,
        }
    }

    /// Whether the request provably never reached the server: no
    /// connection to it was established (TCP, the proxy tunnel or the TLS
    /// handshake failed), or it was refused before any I/O. Such a request
    /// is safe to send again whatever its method.
    ///
    /// ```
    /// use flagwire_transport::TransportError;
    ///
    /// let refused = TransportError::Connect { source: "connection refused".into() };
    /// assert!(refused.never_sent());
    /// let reset = TransportError::Io { source: "connection reset".into() };
    /// assert!(!reset.never_sent());
    /// ```
    pub fn never_sent(&self) -> bool {
        matches!(
            self,
            TransportError::Connect { .. }
                | TransportError::Proxy { .. }
                | TransportError::Tls { .. }
                | TransportError::InvalidRequest { .. }
                | TransportError::Signing { .. }
                | TransportError::Config { .. }
        )
    }

    /// Whether a deadline ran out, directly or on the last attempt.
    pub fn is_timeout(&self) -> bool {
        match self {
            TransportError::Timeout { .. } => true,
            TransportError::RetriesExhausted {
                source: Some(inner),
                ..
            } => inner.is_timeout(),
            _ => false,
        }
    }

    /// Whether no connection could be made (to the server or to a proxy,
    /// TLS failures aside), directly or on the last attempt.
    ///
    /// ```
    /// use flagwire_transport::TransportError;
    ///
    /// let err = TransportError::RetriesExhausted {
    ///     attempts: 3,
    ///     last_status: None,
    ///     last_response: None,
    ///     source: Some(Box::new(TransportError::Connect { source: "refused".into() })),
    /// };
    /// assert!(err.is_connect());
    /// assert_eq!(err.attempts(), Some(3));
    /// ```
    pub fn is_connect(&self) -> bool {
        match self {
            TransportError::Connect { .. } => true,
            TransportError::Proxy { status, .. } => status.is_none(),
            TransportError::RetriesExhausted {
                source: Some(inner),
                ..
            } => inner.is_connect(),
            _ => false,
        }
    }

    /// How many attempts were made (the first one included); `None` for a
    /// configuration error, which no request caused. An error that does not
    /// say otherwise came from the first and only attempt.
    pub fn attempts(&self) -> Option<u32> {
        match self {
            TransportError::RetriesExhausted { attempts, .. } => Some(*attempts),
            TransportError::Timeout { attempt, .. } => Some(*attempt),
            TransportError::Config { .. } => None,
            _ => Some(1),
        }
    }

    /// The status of the response behind this error, if there is one: the
    /// last response of a request whose retries ran out, or the answer to a
    /// refused WebSocket upgrade. (A proxy's refusal is not a response of
    /// the server; see [`TransportError::Proxy`].)
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            TransportError::RetriesExhausted { last_status, .. } => *last_status,
            TransportError::UpgradeRejected { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The last response of a request whose retries ran out.
    pub fn last_response(&self) -> Option<&Response<Bytes>> {
        match self {
            TransportError::RetriesExhausted {
                last_response: Some(r),
                ..
            } => Some(&r.0),
            _ => None,
        }
    }

    /// Takes the last response of a request whose retries ran out.
    pub fn into_last_response(self) -> Option<Response<Bytes>> {
        match self {
            TransportError::RetriesExhausted {
                last_response: Some(r),
                ..
            } => Some(*r.0),
            _ => None,
        }
    }

    /// The answer of a WebSocket server that refused the upgrade.
    pub fn rejected_upgrade(&self) -> Option<&Response<Bytes>> {
        match self {
            TransportError::UpgradeRejected { response, .. } => Some(&response.0),
            _ => None,
        }
    }
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransportError::Connect { source } => {
                f.write_str("could not connect: ")?;
                write_causes(f, &**source)
            }
            TransportError::Proxy {
                proxy,
                status,
                source,
            } => {
                write!(f, "proxy {proxy}: ")?;
                match (status, source) {
                    (Some(s), _) if *s == StatusCode::PROXY_AUTHENTICATION_REQUIRED => write!(
                        f,
                        "refused the tunnel: {s} (missing or wrong proxy credentials)"
                    ),
                    (Some(s), _) => write!(f, "refused the tunnel: {s}"),
                    (None, Some(source)) => write_causes(f, &**source),
                    (None, None) => f.write_str("the tunnel failed"),
                }
            }
            TransportError::Tls { source } => {
                f.write_str("TLS handshake failed: ")?;
                write_causes(f, &**source)
            }
            TransportError::Timeout {
                kind,
                after,
                attempt,
            } => write!(
                f,
                "{kind} timeout of {after:?} elapsed during attempt {attempt}"
            ),
            TransportError::BodyTooLarge { limit } => {
                write!(f, "response body exceeds the limit of {limit} bytes")
            }
            TransportError::Io { source } => {
                f.write_str("connection failed: ")?;
                write_causes(f, &**source)
            }
            TransportError::RetriesExhausted {
                attempts,
                last_status,
                source,
                ..
            } => {
                write!(f, "request failed after {attempts} attempts")?;
                if let Some(status) = last_status {
                    write!(f, "; last status {status}")?;
                }
                if let Some(err) = source {
                    write!(f, "; last error: {err}")?;
                }
                Ok(())
            }
            TransportError::UpgradeRejected { status, .. } => {
                write!(f, "the server refused the WebSocket upgrade: {status}")
            }
            TransportError::InvalidRequest { reason } => write!(f, "invalid request: {reason}"),
            TransportError::Signing { source } => {
                write!(f, "could not sign the request: {source}")
            }
            TransportError::Config { reason } => {
                write!(f, "invalid transport configuration: {reason}")
            }
            TransportError::Other { source } => write!(f, "{source}"),
        }
    }
}

impl StdError for TransportError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            TransportError::Connect { source }
            | TransportError::Tls { source }
            | TransportError::Io { source }
            | TransportError::Signing { source }
            | TransportError::Other { source } => Some(&**source),
            TransportError::Proxy {
                source: Some(source),
                ..
            } => Some(&**source),
            TransportError::RetriesExhausted {
                source: Some(inner),
                ..
            } => Some(&**inner),
            _ => None,
        }
    }
}

/// Writes an error and its causes, `: `-separated, so that `Display` shows
/// the real reason (e.g. `invalid peer certificate: UnknownIssuer`) rather
/// than a wrapper's summary. hyper-util's client error only says which step
/// failed (`client error (Connect)`), which the variant already says, so it
/// is skipped when it has a cause; a message that the previous one already
/// ends with (an error repeating its cause) is written once.
fn write_causes(f: &mut fmt::Formatter<'_>, err: &(dyn StdError + 'static)) -> fmt::Result {
    let mut cur = Some(err);
    if err.is::<hyper_util::client::legacy::Error>() && err.source().is_some() {
        cur = err.source();
    }
    let mut previous = String::new();
    let mut first = true;
    while let Some(e) = cur {
        let text = e.to_string();
        if !text.is_empty() && !previous.ends_with(&text) {
            if !first {
                f.write_str(": ")?;
            }
            f.write_str(&text)?;
            first = false;
            previous = text;
        }
        cur = next_cause(e);
    }
    Ok(())
}

/// The cause of `e`. `io::Error` hides its inner error from `source()` (it
/// skips to the inner error's own source), so the walk steps into
/// `get_ref()` instead.
fn next_cause<'a>(e: &'a (dyn StdError + 'static)) -> Option<&'a (dyn StdError + 'static)> {
    match e.downcast_ref::<std::io::Error>() {
        Some(io) => io.get_ref().map(|inner| inner as &(dyn StdError + 'static)),
        None => e.source(),
    }
}

impl From<std::convert::Infallible> for TransportError {
    fn from(never: std::convert::Infallible) -> Self {
        match never {}
    }
}

/// Maps an error from hyper-util's client to the transport's error kinds.
pub(crate) fn from_client_error(err: hyper_util::client::legacy::Error) -> TransportError {
    if let Some((proxy, status)) = crate::connect::find_proxy_failure(&err).map(|f| f.parts()) {
        // A refusal's status says it all; otherwise the chain says why.
        return TransportError::Proxy {
            proxy,
            status,
            source: status.is_none().then(|| Box::new(err) as BoxError),
        };
    }
    if is_tls(&err) {
        return TransportError::Tls {
            source: Box::new(err),
        };
    }
    if err.is_connect() {
        TransportError::Connect {
            source: Box::new(err),
        }
    } else {
        TransportError::Io {
            source: Box::new(err),
        }
    }
}

/// Maps an error met while reading a response body.
pub(crate) fn from_body_error(err: BoxError, limit: usize) -> TransportError {
    if err.is::<http_body_util::LengthLimitError>() {
        TransportError::BodyTooLarge { limit }
    } else {
        match err.downcast::<TransportError>() {
            Ok(own) => *own,
            Err(source) => TransportError::Io { source },
        }
    }
}

/// Walks an error's chain looking for a rustls error. `io::Error` hides its
/// inner error from `source()` (it skips to the inner error's source), so
/// the walk steps into `get_ref()` instead.
fn is_tls(err: &(dyn StdError + 'static)) -> bool {
    let mut cur: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = cur {
        if e.is::<rustls::Error>() {
            return true;
        }
        cur = next_cause(e);
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_the_deadline_and_attempt() {
        let err = TransportError::Timeout {
            kind: TimeoutKind::Attempt,
            after: Duration::from_millis(250),
            attempt: 2,
        };
        assert_eq!(
            err.to_string(),
            "per-attempt timeout of 250ms elapsed during attempt 2"
        );
        assert!(err.is_retryable());
        let overall = TransportError::Timeout {
            kind: TimeoutKind::Overall,
            after: Duration::from_secs(1),
            attempt: 3,
        };
        assert!(!overall.is_retryable());
        assert!(overall.to_string().starts_with("overall timeout of 1s"));
    }

    #[test]
    fn retries_exhausted_reports_status_and_source() {
        let err = TransportError::RetriesExhausted {
            attempts: 3,
            last_status: None,
            last_response: None,
            source: Some(Box::new(TransportError::BodyTooLarge { limit: 10 })),
        };
        assert_eq!(
            err.to_string(),
            "request failed after 3 attempts; last error: response body exceeds the limit of 10 bytes"
        );
        assert!(err.source().is_some());

        let resp = Response::builder()
            .status(503)
            .header("x-secret", "hunter2")
            .body(Bytes::from_static(b"busy"))
            .unwrap();
        let err = TransportError::RetriesExhausted {
            attempts: 3,
            last_status: Some(StatusCode::SERVICE_UNAVAILABLE),
            last_response: Some(LastResponse(Box::new(resp))),
            source: None,
        };
        assert_eq!(
            err.to_string(),
            "request failed after 3 attempts; last status 503 Service Unavailable"
        );
        assert!(!format!("{err:?}").contains("hunter2"));
        assert_eq!(err.status(), Some(StatusCode::SERVICE_UNAVAILABLE));
        assert_eq!(err.into_last_response().unwrap().body().as_ref(), b"busy");
    }

    #[test]
    fn tls_errors_are_found_through_nested_io_errors() {
        let rustls_err = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        let inner = std::io::Error::new(std::io::ErrorKind::InvalidData, rustls_err);
        let outer = std::io::Error::other(inner);
        assert!(is_tls(&outer));
        assert!(!is_tls(&std::io::Error::other("refused")));
    }

    #[derive(Debug)]
    struct Step(&'static str, Option<std::io::Error>);

    impl fmt::Display for Step {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.0)
        }
    }

    impl StdError for Step {
        fn source(&self) -> Option<&(dyn StdError + 'static)> {
            self.1.as_ref().map(|e| e as &(dyn StdError + 'static))
        }
    }

    #[test]
    fn display_shows_each_cause_once() {
        // io::Error repeats its inner error's text: written once.
        let rustls_err = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        let tls = TransportError::Tls {
            source: Box::new(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                rustls_err,
            )),
        };
        assert_eq!(
            tls.to_string(),
            "TLS handshake failed: invalid peer certificate: UnknownIssuer"
        );
        let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let connect = TransportError::Connect {
            source: Box::new(Step("tcp connect error", Some(refused))),
        };
        assert_eq!(
            connect.to_string(),
            "could not connect: tcp connect error: refused"
        );
        assert!(connect.is_connect() && connect.never_sent() && connect.is_retryable());
    }

    #[test]
    fn proxy_errors_name_the_proxy_and_say_what_happened() {
        let refused = |code: u16| TransportError::Proxy {
            proxy: "http://proxy.internal:3128".to_owned(),
            status: Some(StatusCode::from_u16(code).unwrap()),
            source: None,
        };
        assert_eq!(
            refused(407).to_string(),
            "proxy http://proxy.internal:3128: refused the tunnel: 407 Proxy Authentication Required (missing or wrong proxy credentials)"
        );
        assert_eq!(
            refused(403).to_string(),
            "proxy http://proxy.internal:3128: refused the tunnel: 403 Forbidden"
        );
        assert!(!refused(403).is_retryable() && refused(403).never_sent());
        assert!(refused(502).is_retryable() && !refused(502).is_connect());
        let down = TransportError::Proxy {
            proxy: "http://proxy.internal:3128".to_owned(),
            status: None,
            source: Some(Box::new(Step("could not connect", None))),
        };
        assert_eq!(
            down.to_string(),
            "proxy http://proxy.internal:3128: could not connect"
        );
        assert!(down.is_retryable() && down.is_connect() && down.source().is_some());
        assert_eq!(down.attempts(), Some(1));
        assert_eq!(
            TransportError::config("bad").attempts(),
            None,
            "no request caused it"
        );
    }

    #[test]
    fn other_unwraps_own_errors() {
        let boxed: BoxError = Box::new(TransportError::BodyTooLarge { limit: 1 });
        assert!(matches!(
            TransportError::other(boxed),
            TransportError::BodyTooLarge { limit: 1 }
        ));
        let foreign = TransportError::other("boom");
        assert!(matches!(foreign, TransportError::Other { .. }));
        assert_eq!(foreign.to_string(), "boom");
    }
}
