//! The Schematic client.
//!
//! * [`Client`]: async, cheap to clone, `Send + Sync`. [`Client::send`]
//!   sends any of the 268 typed operations of [`flagwire_core::schematic`];
//!   [`Client::paginate`] walks list operations; resource accessors, one
//!   per API group ([`Client::companies`], [`Client::features`],
//!   [`Client::events`], [`Client::plans`], ...), reach every operation by
//!   name: `client.companies().list_companies(...)`, each with a `_with`
//!   twin taking [`RequestOptions`].
//! * Flag checks that never fail: [`Client::check_flag`] asks the local
//!   cache, then the API, then the per-call default, the client's defaults,
//!   and finally answers `false`; [`Client::check_flag_detailed`] says why.
//! * Events: [`Client::identify`] and [`Client::track`] return at once; a
//!   background [`EventBuffer`](crate::events::EventBuffer) posts batches of
//!   at most 100 to `{capture}/batch`. [`Client::flush`] and
//!   [`Client::shutdown`] wait for delivery.
//! * [`blocking::Client`]: the same for synchronous code.
//!
//! Against the in-process emulator (`flagwire-mock`):
//!
//! ```
//! use std::time::Duration;
//! use flagwire::Context;
//! use flagwire::schematic::{CheckSource, Client};
//! use flagwire_core::events::{Keys, TrackBody};
//! use flagwire_core::schematic::models::UpsertCompanyRequestBody;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let server = flagwire_mock::MockServer::start().await?;
//! server.create_flag(serde_json::json!({"key": "new-editor", "name": "New editor",
//!     "description": "", "flag_type": "boolean", "default_value": false}))?;
//!
//! let client = Client::builder(server.api_key())
//!     .base_url(server.rest_url())
//!     .capture_url(server.capture_url())
//!     .flag_default("new-editor", true)
//!     .build()?;
//!
//! let acme = Keys::from([("id".to_owned(), "acme".to_owned())]);
//! let company = client
//!     .companies()
//!     .upsert_company(UpsertCompanyRequestBody::new(acme.clone()))
//!     .await?;
//! assert!(company.id.starts_with("comp_"));
//!
//! // The server's `false` wins over the `true` default; the second check is cached.
//! let check = client.check_flag_detailed("new-editor", Context::company(&acme)).await;
//! assert!(!check.value);
//! assert_eq!(check.source, CheckSource::Api);
//! assert!(!client.check_flag("new-editor", Context::company(&acme)).await);
//!
//! client.track(TrackBody::builder("api-call").company_key("id", "acme").quantity(3).build()?)?;
//! let stats = client.shutdown(Duration::from_secs(5)).await;
//! assert_eq!(stats.buffer.sent, 1);
//! assert_eq!(server.events().len(), 1);
//! # Ok(()) }
//! ```
//!
//! Offline, with no network at all, answers come from the defaults:
//!
//! ```
//! use flagwire::Context;
//! use flagwire::schematic::{CheckOptions, CheckSource, Client};
//! use flagwire_core::events::Keys;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), flagwire::Error> {
//! let client = Client::builder("sch_dev_example")
//!     .offline(true)
//!     .flag_default("new-editor", true)
//!     .build()?;
//! let acme = Keys::from([("id".to_owned(), "acme".to_owned())]);
//! assert!(client.check_flag("new-editor", Context::company(&acme)).await);
//! assert!(!client.check_flag("unknown-flag", Context::company(&acme)).await);
//! let check = client.check_flag_with("unknown-flag", Context::company(&acme), CheckOptions::new().default(true)).await;
//! assert!(check.value);
//! assert_eq!(check.source, CheckSource::Offline);
//! # Ok(()) }
//! ```

pub mod blocking;
mod breaker;
mod builder;
mod client;
mod events;
mod flags;
mod options;
mod resources;

pub use breaker::{BreakerPolicy, BreakerState};
pub use builder::{Async, Blocking, ClientBuilder, DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT};
pub use client::Client;
pub use events::{EventShutdown, EventStats};
pub use flags::{CachedCheck, CheckOptions, CheckSource, DEFAULT_CHECK_TIMEOUT, FlagCheck};
pub use options::RequestOptions;
pub use resources::*;

/// The capture events [`Client::identify`] and [`Client::track`] take, from
/// [`flagwire_core::events`].
pub use flagwire_core::events::{
    CompanyIdentity, EventOptions, IdempotencyKey, IdentifyBody, InferenceBody, Keys, TrackBody,
    Traits,
};
/// Every Schematic API operation as a typed request, one module per API tag
/// (`api::companies::ListCompanies`, ...), from [`flagwire_core::schematic`].
pub use flagwire_core::schematic as api;
/// The API's models (request and response bodies), from
/// [`flagwire_core::schematic::models`].
pub use flagwire_core::schematic::models;
