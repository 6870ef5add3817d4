//! The eSauti client: the REST API and Event Injection.
//!
//! * [`Client`]: async, cheap to clone, `Send + Sync`. REST resources through accessors
//!   (`client.contacts().list(...)`, `client.forms().get(7)`; every one of the 72 operations
//!   of [`flagwire_core::esauti::api`]) or [`Client::send`] with any request type.
//! * [`Events`] (`client.events()`): [`Events::send`] validates an event before any I/O,
//!   signs every attempt afresh (`X-eSauti-Timestamp`, `X-eSauti-Signature: sha256=<hex>`
//!   over the exact bytes sent), sends one `Idempotency-Key` with every attempt, retries in
//!   one loop (honouring `Retry-After`) and answers a typed [`Receipt`]. What cannot be
//!   delivered goes to a [`DeadLetterSink`], e.g. the JSON Lines file of
//!   [`ClientBuilder::dead_letter_file`], which [`Events::replay`] resends with the original
//!   idempotency keys.
//! * [`Redactor`]: secrets are never logged; e-mails and phone numbers are redacted from log
//!   lines on request ([`ClientBuilder::redact_pii`]).
//! * [`blocking::Client`]: the same for synchronous code.
//!
//! REST and events have separate base URLs: the REST one ends in `/api` (Mautic style), the
//! events one is the tenant's root (`/v1/inbound/event` is appended).
//!
//! Against the in-process emulator (`flagwire-mock`), which verifies the signature and
//! deduplicates by idempotency key:
//!
//! ```
//! use flagwire::esauti::Client;
//! use flagwire_core::esauti::EventType;
//! use flagwire_core::esauti::api::contacts::ListContacts;
//! use flagwire_mock::esauti::{DEFAULT_API_KEY, DEFAULT_HMAC_SECRET, EsautiServer};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let server = EsautiServer::start().await?;
//! let client = Client::builder()
//!     .api_key(DEFAULT_API_KEY)
//!     .hmac_secret(DEFAULT_HMAC_SECRET)
//!     .rest_url(server.rest_url())
//!     .events_url(server.events_url())
//!     .build()?;
//!
//! let event = client
//!     .events()
//!     .event(EventType::OrderCreated)
//!     .customer_id("cus_1")
//!     .entity("order", "ord_9")
//!     .property("currency", "KES")
//!     .property("value", 0); // zero is a value, not a missing property
//! let receipt = client.events().send(event).await?;
//! assert!(receipt.received && !receipt.duplicate);
//! assert_eq!(server.events()[0].event_id, receipt.event_id.unwrap());
//!
//! let page = client.contacts().list(ListContacts::new().limit(10)).await?;
//! assert_eq!(page["total"], 0);
//! # Ok(()) }
//! ```

pub mod blocking;
mod builder;
mod client;
mod deadletter;
mod events;
mod optional;
mod receipt;
mod redact;
mod resources;
#[cfg(test)]
mod tests;

pub use builder::{
    ClientBuilder, DEFAULT_ATTEMPT_TIMEOUT, DEFAULT_BASE_DELAY, DEFAULT_EVENTS_PATH,
    DEFAULT_MAX_DELAY, DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT,
};
pub use client::Client;
pub use deadletter::{DeadLetter, DeadLetterSink, FailureKind, JsonlDeadLetters};
pub use events::{
    Events, IDEMPOTENCY_KEY, IntoEnvelope, REQUEST_ID, ReplayReport, SOURCE, SendOptions,
};
pub use optional::IntoOptionalString;
pub use receipt::Receipt;
pub use redact::Redactor;
pub use resources::*;

/// eSauti's REST operations as typed requests and its Event Injection
/// envelope and event registry, from [`flagwire_core::esauti`].
pub use flagwire_core::esauti::{
    EntityType, EnvelopeBuilder, EventEnvelope, EventGroup, EventId, EventType, Object, Tracking,
    api,
};

/// Per-request options of [`Client::send_with`] and the accessors' `_with` methods (the
/// same type as the Schematic client's).
pub use crate::schematic::RequestOptions;
