//! An [OpenFeature](https://openfeature.dev) provider for Schematic, on top
//! of the [`flagwire`] client.
//!
//! [`SchematicProvider`] implements [`open_feature::provider::FeatureProvider`]:
//! hand it to OpenFeature and evaluate flags through OpenFeature's client.
//! Boolean flags are answered by
//! [`Client::check_flag_detailed`](flagwire::schematic::Client::check_flag_detailed):
//! locally over DataStream when it is on, else from the result cache or the
//! API. Schematic flags are boolean; integer, float, string and struct
//! evaluations answer `TYPE_MISMATCH`, and a check's entitlement figures
//! (usage, allocation) come as flag metadata of the boolean details
//! ([`metadata`]).
//!
//! * **Context** ([`context`] module): the targeting key becomes the user key
//!   `id` ([`TargetingKey`] changes that); `company` / `user` structs and
//!   `company.<key>` / `user.<key>` string attributes become company and
//!   user keys; malformed contexts answer `INVALID_CONTEXT`.
//! * **Reasons** ([`resolve`] module):
//!   `TARGETING_MATCH` with the rule id as variant, `DEFAULT`, `CACHED`,
//!   `STATIC` / `DISABLED` offline; errors `FLAG_NOT_FOUND`,
//!   `PROVIDER_NOT_READY`, `INVALID_CONTEXT`, `GENERAL`.
//! * **Status**: `initialize` waits (bounded) for DataStream's flags;
//!   [`status`](open_feature::provider::FeatureProvider::status) reports
//!   `NOT_READY`, `READY`, `STALE` (DataStream connection down) or `ERROR`.
//! * **Tracking**: OpenFeature Rust has no tracking API;
//!   [`SchematicProvider::track`] maps the same context to a Schematic
//!   `track` event.
//!
//! ```
//! use flagwire::schematic::Client;
//! use flagwire_openfeature::SchematicProvider;
//! use open_feature::{EvaluationContext, EvaluationReason, OpenFeature};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let server = flagwire_mock::MockServer::start().await?;
//! server.upsert_company(serde_json::json!({"keys": {"id": "acme"}, "name": "Acme"}))?;
//! server.create_flag(serde_json::json!({
//!     "key": "new-editor", "name": "New editor", "description": "",
//!     "flag_type": "boolean", "default_value": true
//! }))?;
//!
//! let client = Client::builder(server.api_key())
//!     .base_url(server.rest_url())
//!     .capture_url(server.capture_url())
//!     .build()?;
//! let provider = SchematicProvider::new(client);
//!
//! // A non-global API instance; `OpenFeature::singleton_mut()` works the same.
//! let mut api = OpenFeature::default();
//! api.set_provider(provider.clone()).await;
//! let flags = api.create_client();
//!
//! let context = EvaluationContext::default()
//!     .with_targeting_key("ann")
//!     .with_custom_field("company.id", "acme");
//! let details = flags
//!     .get_bool_details("new-editor", Some(&context), None)
//!     .await
//!     .map_err(|e| e.code)?; // EvaluationErrorCode is an std::error::Error
//! assert!(details.value);
//! assert_eq!(details.reason, Some(EvaluationReason::Default));
//!
//! // Unknown flags are errors: the caller's default applies.
//! let on = flags.get_bool_value("no-such-flag", Some(&context), None).await.unwrap_or(false);
//! assert!(!on);
//!
//! provider.track("export", &context)?;
//! provider.client().shutdown(std::time::Duration::from_secs(5)).await;
//! # Ok(()) }
//! ```
//!
//! See `docs/openfeature.md` for the full guide and figures.

pub mod context;
mod provider;
pub mod resolve;
mod track;

pub use context::{ContextError, Entity, TargetingKey};
pub use provider::{DEFAULT_INIT_TIMEOUT, DEFAULT_NAME, ProviderBuilder, SchematicProvider};
pub use resolve::metadata;
pub use track::{TrackError, TrackOptions};

/// The OpenFeature crate this provider implements, for code that wants to be
/// sure both agree on its version.
pub use open_feature;

/// The README's example, compiled as a doc test.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

/// The guide's examples (`docs/openfeature.md`), compiled and run as doc
/// tests so that the guide cannot drift from the code.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/openfeature.md")]
struct GuideDoctests;
