//! Errors of eSauti event envelopes.

use std::fmt;

use super::EventType;

/// An event lacks properties its registered type requires.
///
/// `missing` lists the failing dot-paths (`properties.value`, `entity.id`) in the order the
/// registry declares them. See [`is_present`](super::is_present) for what counts as missing.
///
/// ```
/// use flagwire_core::esauti::{EnvelopeError, EventEnvelope, EventType};
///
/// let err = EventEnvelope::builder(EventType::OrderCreated)
///     .customer_id("cus_1")
///     .property("currency", "USD")
///     .build()
///     .unwrap_err();
/// let EnvelopeError::Validation(err) = err else { panic!("not a validation error") };
/// assert_eq!(err.event_type, EventType::OrderCreated);
/// assert_eq!(err.missing, ["properties.value"]);
/// assert_eq!(
///     err.to_string(),
///     "event `order.created` is missing required properties: properties.value"
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct EventValidationError {
    /// The event type that was validated.
    pub event_type: EventType,
    /// The missing dot-paths, in registry order. Never empty.
    pub missing: Vec<String>,
}

impl fmt::Display for EventValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "event `{}` is missing required properties: {}",
            self.event_type,
            self.missing.join(", ")
        )
    }
}

impl std::error::Error for EventValidationError {}

/// Why an eSauti event envelope could not be built, read or encoded.
#[derive(Debug)]
#[non_exhaustive]
pub enum EnvelopeError {
    /// Required properties of the event type are missing.
    Validation(EventValidationError),
    /// The event type is the empty string.
    EmptyEventType,
    /// A caller-supplied event id is empty.
    EmptyEventId,
    /// `occurred_at` is outside the years 0–9999 and cannot be written as RFC 3339.
    Timestamp,
    /// A serialized envelope could not be read: `path` is where decoding failed (`occurred_at`,
    /// `customer`), `message` says why.
    Decode {
        /// JSON path of the failure (`.` for the whole document).
        path: String,
        /// The decoder's message.
        message: String,
    },
    /// The envelope could not be encoded as JSON.
    Encode(serde_json::Error),
}

impl fmt::Display for EnvelopeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EnvelopeError::Validation(e) => e.fmt(f),
            EnvelopeError::EmptyEventType => f.write_str("the event type is empty"),
            EnvelopeError::EmptyEventId => f.write_str("the event id is empty"),
            EnvelopeError::Timestamp => {
                f.write_str("occurred_at is outside the years 0-9999 and cannot be RFC 3339")
            }
            EnvelopeError::Decode { path, message } => {
                write!(f, "invalid event envelope at `{path}`: {message}")
            }
            EnvelopeError::Encode(e) => write!(f, "could not encode the event envelope: {e}"),
        }
    }
}

impl std::error::Error for EnvelopeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            EnvelopeError::Validation(e) => Some(e),
            EnvelopeError::Encode(e) => Some(e),
            _ => None,
        }
    }
}

impl From<EventValidationError> for EnvelopeError {
    fn from(e: EventValidationError) -> Self {
        EnvelopeError::Validation(e)
    }
}
