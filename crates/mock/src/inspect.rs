//! Public views of received events.

use serde_json::Value;

use crate::faults::Host;
use crate::store::StoredEvent;
use crate::util::ts;

/// An event received by the emulator.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ReceivedEvent {
    /// The event's ID (`evt_…`).
    pub id: String,
    /// `identify`, `track`, `flag_check` or `inference`.
    pub event_type: String,
    /// The event body as received.
    pub body: Value,
    /// Where it arrived: [`Host::Rest`] (`/events`, `/event-batch`) or
    /// [`Host::Capture`] (`/batch`).
    pub source: Host,
    /// When it was received (RFC 3339).
    pub captured_at: String,
    /// The client's `sent_at`, if given.
    pub sent_at: Option<String>,
    /// The client's idempotency key, if given.
    pub idempotency_key: Option<String>,
    /// The company it was attributed to, if any.
    pub company_id: Option<String>,
    /// The user it was attributed to, if any.
    pub user_id: Option<String>,
    /// Track quantity (1 when omitted; 0 for other event types).
    pub quantity: i64,
}

impl ReceivedEvent {
    pub(crate) fn from_stored(e: &StoredEvent) -> Self {
        ReceivedEvent {
            id: e.id.clone(),
            event_type: e.event_type.clone(),
            body: e.body.clone(),
            source: e.source,
            captured_at: ts(e.captured_at),
            sent_at: e.sent_at.clone(),
            idempotency_key: e.idempotency_key.clone(),
            company_id: e.company_id.clone(),
            user_id: e.user_id.clone(),
            quantity: e.quantity,
        }
    }
}
