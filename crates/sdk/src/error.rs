//! The error type of the `flagwire` clients.

use std::fmt;

use bytes::Bytes;
use flagwire_core::error::{ApiError, EncodeError};
use flagwire_core::events::EventError;
use flagwire_transport::TransportError;
use http::StatusCode;

use crate::events::BufferError;

/// Everything a `flagwire` client call can fail with.
///
/// No variant ever holds the API key, and `Debug`/`Display` print neither
/// credentials nor request headers. Response bodies of API errors are kept
/// (they are the server's own words) but only the message is displayed.
///
/// The accessors ([`status`](Self::status), [`request_id`](Self::request_id),
/// [`body`](Self::body), [`api_message`](Self::api_message),
/// [`attempts`](Self::attempts), [`is_timeout`](Self::is_timeout),
/// [`is_connect`](Self::is_connect)) answer for every variant, so a caller
/// rarely needs to match.
///
/// ```
/// use flagwire::schematic::Client;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let server = flagwire_mock::MockServer::start().await?;
/// let client = Client::builder(server.api_key())
///     .base_url(server.rest_url())
///     .capture_url(server.capture_url())
///     .build()?;
/// match client.companies().get_company("comp_missing").await {
///     Ok(company) => println!("{}", company.name),
///     Err(e) if e.status() == Some(http::StatusCode::NOT_FOUND) => {
///         // e.api_message(): the server's words; e.request_id(): for support.
///         println!("no such company ({})", e.request_id().unwrap_or("no request id"));
///     }
///     Err(e) => return Err(e.into()),
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The API answered with a non-2xx status.
    Api {
        /// The HTTP status.
        status: StatusCode,
        /// The server's `error` message, if it sent one.
        message: Option<String>,
        /// The request id the server assigned, if it sent one.
        request_id: Option<String>,
        /// The raw response body.
        body: Bytes,
        /// How many attempts were made, the first one included.
        attempts: u32,
    },
    /// The API answered 2xx but the body did not decode as expected.
    Decode {
        /// The HTTP status.
        status: StatusCode,
        /// Where in the document decoding failed (e.g. `data[0].id`).
        path: String,
        /// What was wrong there.
        message: String,
        /// The request id the server assigned, if it sent one.
        request_id: Option<String>,
        /// The raw response body.
        body: Bytes,
        /// How many attempts were made, the first one included.
        attempts: u32,
    },
    /// The request could not be sent or no answer arrived (connection,
    /// TLS, deadline, retries exhausted without a response…).
    Transport(TransportError),
    /// The request could not be encoded (body serialization, bad URL).
    Encode(EncodeError),
    /// An event body or envelope was invalid.
    Event(EventError),
    /// The event buffer refused the event (queue full, shut down).
    Buffer(BufferError),
    /// A builder setting was invalid.
    Config(String),
    /// The client is in offline mode and makes no requests.
    Offline,
    /// A blocking client method was called from inside an async runtime,
    /// where blocking the thread could deadlock it. Use the async client
    /// there.
    BlockingInAsyncContext,
    /// The blocking client's runtime thread is gone.
    RuntimeStopped,
    /// An eSauti event envelope was invalid (required properties missing,
    /// empty type or id) or could not be encoded. Nothing was sent.
    Envelope(flagwire_core::esauti::EnvelopeError),
    /// Reading or rewriting a dead-letter file failed.
    DeadLetter(std::io::Error),
    /// An event was not delivered (`error`) and could not be dead-lettered
    /// either (`write_error`, e.g. the disk is full): it is lost unless the
    /// caller keeps it.
    NotDeadLettered {
        /// Why delivery failed.
        error: Box<Error>,
        /// Why the dead-letter sink failed.
        write_error: std::io::Error,
    },
}

impl Error {
    /// The HTTP status of the API's answer: of an API or decode error, or of
    /// the last response of a transport error that had one (e.g. a refused
    /// WebSocket upgrade).
    ///
    /// ```
    /// use flagwire::Error;
    /// use http::StatusCode;
    ///
    /// fn retry_later(err: &Error) -> bool {
    ///     err.status() == Some(StatusCode::TOO_MANY_REQUESTS) || err.is_timeout()
    /// }
    /// assert!(!retry_later(&Error::Offline));
    /// ```
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Error::Api { status, .. } | Error::Decode { status, .. } => Some(*status),
            Error::Transport(e) => e.status(),
            Error::NotDeadLettered { error, .. } => error.status(),
            _ => None,
        }
    }

    /// The request id the server assigned (`x-request-id`), to quote when
    /// reporting a problem; decode errors carry it too.
    ///
    /// ```
    /// use flagwire::Error;
    ///
    /// fn report(err: &Error) -> String {
    ///     match err.request_id() {
    ///         Some(id) => format!("{err} [quote {id} to support]"),
    ///         None => err.to_string(),
    ///     }
    /// }
    /// assert_eq!(report(&Error::Offline), Error::Offline.to_string());
    /// ```
    pub fn request_id(&self) -> Option<&str> {
        match self {
            Error::Api { request_id, .. } | Error::Decode { request_id, .. } => {
                request_id.as_deref()
            }
            Error::Transport(e) => e
                .last_response()
                .or_else(|| e.rejected_upgrade())?
                .headers()
                .get("x-request-id")?
                .to_str()
                .ok(),
            _ => None,
        }
    }

    /// The raw body of the API's answer, when there was one: the error
    /// document of a non-2xx answer, or the 2xx body that did not decode.
    ///
    /// ```
    /// use flagwire::Error;
    ///
    /// fn log_body(err: &Error) {
    ///     if let Some(body) = err.body() {
    ///         eprintln!("{}", String::from_utf8_lossy(body));
    ///     }
    /// }
    /// log_body(&Error::Offline);
    /// assert!(Error::Offline.body().is_none());
    /// ```
    pub fn body(&self) -> Option<&Bytes> {
        match self {
            Error::Api { body, .. } | Error::Decode { body, .. } => Some(body),
            Error::Transport(e) => e
                .last_response()
                .or_else(|| e.rejected_upgrade())
                .map(|r| r.body()),
            _ => None,
        }
    }

    /// The API's own message of a non-2xx answer (its `error` field, or a
    /// Mautic error message for eSauti), when it sent one.
    ///
    /// ```
    /// use flagwire::Error;
    ///
    /// fn explain(err: &Error) -> &str {
    ///     err.api_message().unwrap_or("no message from the API")
    /// }
    /// assert_eq!(explain(&Error::Offline), "no message from the API");
    /// ```
    pub fn api_message(&self) -> Option<&str> {
        match self {
            Error::Api { message, .. } => message.as_deref(),
            _ => None,
        }
    }

    /// How many attempts the request took (the first one included), for
    /// errors of requests that were sent; `None` for the others (offline,
    /// configuration, encoding…).
    ///
    /// ```
    /// use flagwire::Error;
    ///
    /// fn describe(err: &Error) -> String {
    ///     match err.attempts() {
    ///         Some(n) if n > 1 => format!("{err} (gave up after {n} attempts)"),
    ///         _ => err.to_string(),
    ///     }
    /// }
    /// assert_eq!(Error::Offline.attempts(), None);
    /// # let _ = describe(&Error::Offline);
    /// ```
    pub fn attempts(&self) -> Option<u32> {
        match self {
            Error::Api { attempts, .. } | Error::Decode { attempts, .. } => Some(*attempts),
            Error::Transport(e) => e.attempts(),
            _ => None,
        }
    }

    /// Whether the request ran out of time (its overall deadline, an
    /// attempt's, or a WebSocket handshake's).
    ///
    /// ```
    /// use flagwire::Error;
    ///
    /// assert!(!Error::Offline.is_timeout());
    /// ```
    pub fn is_timeout(&self) -> bool {
        match self {
            Error::Transport(e) => e.is_timeout(),
            Error::NotDeadLettered { error, .. } => error.is_timeout(),
            _ => false,
        }
    }

    /// Whether no connection could be made to the API (or to the proxy in
    /// front of it): the request never reached the server.
    ///
    /// ```
    /// use flagwire::Error;
    ///
    /// fn use_cached_value(err: &Error) -> bool {
    ///     err.is_connect() || err.is_timeout()
    /// }
    /// assert!(!use_cached_value(&Error::Offline));
    /// ```
    pub fn is_connect(&self) -> bool {
        matches!(self, Error::Transport(e) if e.is_connect())
    }

    /// Records how many attempts the request behind an API or decode error
    /// took (see `Attempt::of_response`).
    pub(crate) fn with_attempts(mut self, count: u32) -> Self {
        if let Error::Api { attempts, .. } | Error::Decode { attempts, .. } = &mut self {
            *attempts = count;
        }
        self
    }

    pub(crate) fn config(message: impl Into<String>) -> Self {
        Error::Config(message.into())
    }
}

/// Writes ` after N attempts` when there were several.
fn write_attempts(f: &mut fmt::Formatter<'_>, attempts: u32) -> fmt::Result {
    if attempts > 1 {
        write!(f, " after {attempts} attempts")?;
    }
    Ok(())
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Api {
                status,
                message,
                request_id,
                attempts,
                ..
            } => {
                write!(f, "the API answered {status}")?;
                if let Some(m) = message {
                    write!(f, ": {m}")?;
                }
                if let Some(id) = request_id {
                    write!(f, " (request id {id})")?;
                }
                write_attempts(f, *attempts)
            }
            Error::Decode {
                status,
                path,
                message,
                request_id,
                attempts,
                ..
            } => {
                write!(
                    f,
                    "could not decode the {status} response at `{path}`: {message}"
                )?;
                if let Some(id) = request_id {
                    write!(f, " (request id {id})")?;
                }
                write_attempts(f, *attempts)
            }
            Error::Transport(e) => write!(f, "transport error: {e}"),
            Error::Encode(e) => write!(f, "could not encode the request: {e}"),
            Error::Event(e) => write!(f, "invalid event: {e}"),
            Error::Buffer(e) => write!(f, "event not queued: {e}"),
            Error::Config(m) => write!(f, "invalid client configuration: {m}"),
            Error::Offline => f.write_str("the client is offline and makes no requests"),
            Error::BlockingInAsyncContext => f.write_str(
                "the blocking client cannot be used from inside an async runtime; use the async client",
            ),
            Error::RuntimeStopped => f.write_str("the blocking client's runtime has stopped"),
            Error::Envelope(e) => write!(f, "invalid event: {e}"),
            Error::DeadLetter(e) => write!(f, "dead-letter file: {e}"),
            Error::NotDeadLettered { error, write_error } => write!(
                f,
                "{error}; the event could not be dead-lettered either: {write_error}"
            ),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Transport(e) => Some(e),
            Error::Encode(e) => Some(e),
            Error::Event(e) => Some(e),
            Error::Buffer(e) => Some(e),
            Error::Envelope(e) => Some(e),
            Error::DeadLetter(e) => Some(e),
            Error::NotDeadLettered { error, .. } => Some(error.as_ref()),
            _ => None,
        }
    }
}

impl From<ApiError> for Error {
    fn from(err: ApiError) -> Self {
        match err {
            ApiError::Status(s) => Error::Api {
                status: s.status(),
                message: s.message().map(str::to_owned),
                request_id: s.request_id().map(str::to_owned),
                body: s.body().clone(),
                attempts: 1,
            },
            ApiError::Decode(d) => Error::Decode {
                status: d.status(),
                path: d.path().to_owned(),
                message: d.message().to_owned(),
                request_id: d.request_id().map(str::to_owned),
                body: d.body().clone(),
                attempts: 1,
            },
            // `ApiError` is non-exhaustive: keep what is common to all.
            other => Error::Api {
                status: other.status(),
                message: other.message().map(str::to_owned),
                request_id: other.request_id().map(str::to_owned),
                body: other.body().clone(),
                attempts: 1,
            },
        }
    }
}

impl From<TransportError> for Error {
    fn from(err: TransportError) -> Self {
        Error::Transport(err)
    }
}

impl From<EncodeError> for Error {
    fn from(err: EncodeError) -> Self {
        Error::Encode(err)
    }
}

impl From<EventError> for Error {
    fn from(err: EventError) -> Self {
        Error::Event(err)
    }
}

impl From<flagwire_core::esauti::EnvelopeError> for Error {
    fn from(err: flagwire_core::esauti::EnvelopeError) -> Self {
        Error::Envelope(err)
    }
}

impl From<BufferError> for Error {
    fn from(err: BufferError) -> Self {
        Error::Buffer(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderMap;

    #[test]
    fn api_errors_keep_status_message_and_request_id() {
        let mut headers = HeaderMap::new();
        headers.insert("x-request-id", "req_1".parse().unwrap());
        let status = flagwire_core::StatusError::new(
            StatusCode::NOT_FOUND,
            &headers,
            br#"{"error":"not found"}"#,
        );
        let err = Error::from(ApiError::Status(Box::new(status)));
        assert_eq!(err.status(), Some(StatusCode::NOT_FOUND));
        let text = err.to_string();
        assert!(text.contains("404"), "{text}");
        assert!(text.contains("not found"), "{text}");
    }

    #[test]
    fn offline_and_config_errors_display() {
        assert!(Error::Offline.to_string().contains("offline"));
        assert!(Error::config("bad url").to_string().contains("bad url"));
        assert!(Error::BlockingInAsyncContext.status().is_none());
    }
}
