//! eSauti Event Injection, sans IO: the event registry, the envelope and its validation.
//!
//! - [`EventType`] is every type of the eSauti event registry (225, generated from
//!   `crates/core/data/esauti-events.tsv`) plus [`EventType::Custom`] for anything else. Each
//!   registered type knows its [`EventGroup`], its [`EntityType`] and the dot-paths it
//!   requires.
//! - [`EventEnvelope::builder`] fills the envelope (`id`, `type`, `occurred_at`, `source`,
//!   `customer`, `entity`, `properties`, and the optional `external_event_id`, `context`,
//!   `consent` and `esauti` tracking ids) and validates it before anything is sent;
//!   [`EventEnvelope::to_bytes`] gives the exact bytes to sign and send.
//! - [`validate`] documents the rule: a required property is missing when it is absent,
//!   `null` or `""`; `0` and `false` are values.
//!
//! ```
//! use flagwire_core::esauti::{EntityType, EventEnvelope, EventGroup, EventType};
//!
//! let ty: EventType = "order.created".parse().unwrap();
//! assert_eq!(ty, EventType::OrderCreated);
//! assert_eq!(ty.group(), Some(EventGroup::OrderAndFulfillment));
//! assert_eq!(ty.entity_type(), Some(EntityType::Order));
//! assert_eq!(
//!     ty.required_properties(),
//!     ["occurred_at", "source", "entity.id", "properties.currency", "properties.value"]
//! );
//! assert_eq!(EventType::parse("invoice.exported"), EventType::Custom("invoice.exported".into()));
//!
//! let event = EventEnvelope::builder(ty)
//!     .customer_id("cus_1")
//!     .entity("order", "ord_9")
//!     .property("currency", "USD")
//!     .property("value", 0) // zero is a value, not a missing property
//!     .build()?;
//! let body = event.to_bytes()?; // sign and send exactly these bytes
//! assert!(body.starts_with(br#"{"id":"evt_"#));
//! # Ok::<(), flagwire_core::esauti::EnvelopeError>(())
//! ```

mod envelope;
mod error;
mod event_type;
pub mod validate;
pub(crate) mod wire;

/// The eSauti REST API (Mautic style), generated from `crates/core/api/esauti.json`: one
/// request type per operation, grouped by resource, implementing
/// [`Operation`](crate::operation::Operation). Success bodies are decoded whole (there is no
/// `data` envelope) as JSON objects. The base URL is the tenant's, ending in `/api`; it is
/// separate from the Event Injection base URL.
pub use crate::generated::esauti::rest as api;

pub use crate::generated::esauti::events::{EntityType, EventGroup, EventType};
pub use envelope::{
    DEFAULT_SOURCE, EVENT_ID_PREFIX, EnvelopeBuilder, EventEnvelope, EventId, Object, Tracking,
};
pub use error::{EnvelopeError, EventValidationError};
pub use validate::is_present;
