//! The error type of the events module.

use std::fmt;

/// Why an event, an event part or a batch could not be built or encoded.
///
/// Every constructor and builder in [`crate::events`] reports bad input with
/// one of these variants instead of panicking. The API key is never part of
/// an error message.
#[derive(Debug)]
#[non_exhaustive]
pub enum EventError {
    /// A required text field was empty (for example a track event's name or
    /// an API key).
    Empty {
        /// The field that was empty, e.g. `"event"`.
        field: &'static str,
    },
    /// A text field was longer than the platform accepts.
    TooLong {
        /// The field, e.g. `"company.name"`.
        field: &'static str,
        /// Its length in characters.
        len: usize,
        /// The largest accepted length in characters.
        max: usize,
    },
    /// A required field was not set.
    Missing {
        /// The field, e.g. `"input_tokens"`.
        field: &'static str,
    },
    /// An entity (user or company) was given without any identifying key.
    MissingKeys {
        /// `"user"` or `"company"`.
        entity: &'static str,
    },
    /// An entity had more identifying keys than the platform accepts.
    TooManyKeys {
        /// `"user"` or `"company"`.
        entity: &'static str,
        /// How many keys were given.
        len: usize,
        /// The largest accepted number of keys.
        max: usize,
    },
    /// A key of an entity had an empty name.
    EmptyKeyName {
        /// `"user"` or `"company"`.
        entity: &'static str,
    },
    /// A body could not be used as given.
    InvalidBody {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A batch held more events than one capture request may carry.
    BatchTooLarge {
        /// Events in the batch.
        len: usize,
        /// The largest accepted batch.
        max: usize,
    },
    /// A batch held no events; the capture service has nothing to accept.
    EmptyBatch,
    /// A timestamp could not be written as RFC 3339 (years outside 0..=9999).
    Timestamp,
    /// The event-capture base URL is not an absolute `http`/`https` URL.
    InvalidCaptureUrl {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A JSON value could not be serialized.
    Json(serde_json::Error),
}

impl fmt::Display for EventError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty { field } => write!(f, "`{field}` must not be empty"),
            Self::TooLong { field, len, max } => {
                write!(
                    f,
                    "`{field}` is {len} characters long; at most {max} are accepted"
                )
            }
            Self::Missing { field } => write!(f, "`{field}` is required"),
            Self::MissingKeys { entity } => {
                write!(f, "the {entity} needs at least one identifying key")
            }
            Self::TooManyKeys { entity, len, max } => {
                write!(f, "the {entity} has {len} keys; at most {max} are accepted")
            }
            Self::EmptyKeyName { entity } => write!(f, "a key of the {entity} has an empty name"),
            Self::InvalidBody { reason } => write!(f, "invalid event body: {reason}"),
            Self::BatchTooLarge { len, max } => {
                write!(
                    f,
                    "a batch of {len} events exceeds the capture limit of {max}"
                )
            }
            Self::EmptyBatch => f.write_str("a batch must hold at least one event"),
            Self::Timestamp => f.write_str("timestamp cannot be formatted as RFC 3339"),
            Self::InvalidCaptureUrl { reason } => {
                write!(f, "invalid event-capture base URL: {reason}")
            }
            Self::Json(e) => write!(f, "JSON serialization failed: {e}"),
        }
    }
}

impl std::error::Error for EventError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Json(e) => Some(e),
            _ => None,
        }
    }
}

impl From<serde_json::Error> for EventError {
    fn from(e: serde_json::Error) -> Self {
        Self::Json(e)
    }
}
