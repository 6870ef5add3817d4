//! Typed webhook payloads (the `serde` feature).
//!
//! Parse only *after* verification succeeded, from the same raw bytes:
//!
//! ```
//! use flagwire_webhooks::{FlagsmithVerifier, Signer, Flagsmith};
//! use flagwire_webhooks::payload::flagsmith::{Event, WebhookEvent};
//!
//! let body = br#"{"data": {"changed_by": "", "new_state": null, "timestamp": "2021-06-18T07:50:26.595298Z"}, "event_type": "FLAG_DELETED"}"#;
//! let headers = Signer::<Flagsmith>::new("secret")?.sign(body);
//!
//! FlagsmithVerifier::new("secret")?.verify(&headers, body)?;
//! let event: WebhookEvent = serde_json::from_slice(body).expect("valid JSON");
//! assert!(matches!(event.event, Event::FlagDeleted(_)));
//! # Ok::<(), flagwire_webhooks::Error>(())
//! ```
//!
//! Every enum of event kinds is open: a kind this crate does not know
//! deserialises into an `Unknown`/`Other` variant that keeps the original
//! string, so a sender adding events never breaks a receiver.

pub mod flagsmith;
pub mod schematic;
