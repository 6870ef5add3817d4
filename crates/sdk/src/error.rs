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
    },
    /// The API answered 2xx but the body did not decode as expected.
    Decode {
        /// The HTTP status.
        status: StatusCode,
        /// Where in the document decoding failed (e.g. `data[0].id`).
        path: String,
        /// What was wrong there.
        message: String,
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
    /// The HTTP status of an API error (or of the last response of a
    /// transport error that had one).
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Error::Api { status, .. } | Error::Decode { status, .. } => Some(*status),
            Error::Transport(e) => e.status(),
            Error::NotDeadLettered { error, .. } => error.status(),
            _ => None,
        }
    }

    /// Whether the request ran out of time.
    pub fn is_timeout(&self) -> bool {
        match self {
            Error::Transport(e) => e.is_timeout(),
            Error::NotDeadLettered { error, .. } => error.is_timeout(),
            _ => false,
        }
    }

    pub(crate) fn config(message: impl Into<String>) -> Self {
        Error::Config(message.into())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Api {
                status,
                message,
                request_id,
                ..
            } => {
                write!(f, "the API answered {status}")?;
                if let Some(m) = message {
                    write!(f, ": {m}")?;
                }
                if let Some(id) = request_id {
                    write!(f, " (request id {id})")?;
                }
                Ok(())
            }
            Error::Decode {
                status,
                path,
                message,
            } => write!(
                f,
                "could not decode the {status} response at `{path}`: {message}"
            ),
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
            },
            ApiError::Decode(d) => Error::Decode {
                status: d.status(),
                path: d.path().to_owned(),
                message: d.message().to_owned(),
            },
            // `ApiError` is non-exhaustive: keep what is common to all.
            other => Error::Api {
                status: other.status(),
                message: other.message().map(str::to_owned),
                request_id: None,
                body: other.body().clone(),
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
