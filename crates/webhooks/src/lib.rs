//! Verify and sign webhooks from Schematic, Flagsmith, eSauti, Standard
//! Webhooks (and Svix), Stripe and GitHub.
//!
//! * **Raw bytes in, no copies, no allocations.** [`Verifier`] feeds the
//!   HMAC with the signed pieces (prefix, body, suffix) straight from your
//!   buffers; the body may be any bytes, UTF-8 or not, empty or large.
//! * **Built once.** Keys are derived and the HMAC state is precomputed when
//!   the verifier is built; give several secrets to rotate them.
//! * **Replay window by default.** Signed timestamps must be within 300 s of
//!   the clock in either direction ([`DEFAULT_TOLERANCE`]); configurable,
//!   with an injectable [`Clock`] for tests.
//! * **Any framework.** Headers are read through the small [`Headers`]
//!   trait, implemented for slices of pairs, `HashMap`, `BTreeMap` and
//!   (default `http` feature) [`http::HeaderMap`]. An axum extractor and a
//!   tower layer verify before your handler runs (features `axum`, `tower`).
//! * **One call for the manual case.** [`schematic::verify_signature`] and
//!   its siblings verify from the raw header values.
//! * **Typed, log-safe errors.** [`Error`] never contains a secret or a
//!   computed signature. Answer senders with one generic response whatever
//!   the variant.
//! * **Signing helpers.** [`Signer`] produces the headers a sender would
//!   send, so handlers can be tested end to end.
//!
//! # Verifying a delivery
//!
//! Verify over the body exactly as received, before parsing it: a body that
//! was parsed and serialised again will not match.
//!
//! ```
//! use flagwire_webhooks::{Error, FixedClock, SchematicVerifier};
//!
//! // Build once, at start-up, and share it.
//! let verifier = SchematicVerifier::builder()
//!     .secret("test-secret")
//!     .clock(FixedClock(1_609_459_260)) // a minute after the delivery
//!     .build()?;
//!
//! // Any header container works: here a slice of pairs.
//! let headers = [
//!     ("X-Schematic-Webhook-Timestamp", "1609459200"),
//!     (
//!         "X-Schematic-Webhook-Signature",
//!         "698efb567d886c51002192c79ba46a8ec5735ab1f1976eedb041cf2375b4fb90",
//!     ),
//! ];
//! let verified = verifier.verify(&headers, br#"{"event":"test"}"#)?;
//! assert_eq!(verified.timestamp(), Some(1_609_459_200));
//!
//! // A changed body is rejected.
//! assert_eq!(
//!     verifier.verify(&headers, br#"{"event":"tesT"}"#),
//!     Err(Error::SignatureMismatch)
//! );
//! # Ok::<(), Error>(())
//! ```
//!
//! Without a verifier to keep, one call does the same from the header
//! values (building a verifier for that call):
//!
//! ```
//! # use flagwire_webhooks::{Schematic, Signer, unix_now};
//! # let body = br#"{"event":"test"}"#;
//! # let sent = Signer::<Schematic>::new("test-secret")?.sign(unix_now(), body);
//! # let (signature, timestamp) = (sent.get(Schematic::SIGNATURE_HEADER).unwrap(), sent.get(Schematic::TIMESTAMP_HEADER).unwrap());
//! flagwire_webhooks::schematic::verify_signature(body, signature, timestamp, "test-secret")?;
//! # Ok::<(), flagwire_webhooks::Error>(())
//! ```
//!
//! # In a web framework
//!
//! * axum (feature `axum`): take an [`axum::VerifiedWebhook<S>`][extractor]
//!   as the handler's last argument, with the verifier in the router state.
//! * any tower stack (feature `tower`): wrap the service in a
//!   [`tower::VerifyWebhookLayer`][layer]; the inner service gets the verified
//!   request with a [`VerifiedDelivery`] in its extensions.
//! * anything else: buffer the body and call `verify` with the headers, or
//!   [`Verifier::verify_request`] / [`Verifier::verify_parts`] with `http`
//!   types.
//!
//! Both adapters answer a delivery that does not verify with an empty
//! `400 Bad Request` (`413` over the body limit) and log the reason at debug
//! level with `tracing`.
//!
//! # Schemes
//!
//! | scheme | verifier | signed message | headers |
//! |---|---|---|---|
//! | [`Schematic`] | [`SchematicVerifier`] | body `+` timestamp, hex | `X-Schematic-Webhook-Signature`, `-Timestamp` |
//! | [`Flagsmith`] | [`FlagsmithVerifier`] | body, hex | `X-Flagsmith-Signature` |
//! | [`Esauti`] | [`EsautiVerifier`] | method `\n` path `\n` timestamp `\n` body, `sha256=` hex | `X-eSauti-Signature`, `X-eSauti-Timestamp` |
//! | [`StandardWebhooks`] | [`StandardWebhooksVerifier`] | id `.` timestamp `.` body, `v1,` base64 | `webhook-id`, `-timestamp`, `-signature` (or `svix-*`) |
//! | [`Stripe`] | [`StripeVerifier`] | timestamp `.` body, hex | `Stripe-Signature: t=…,v1=…` |
//! | [`GitHub`] | [`GitHubVerifier`] | body, `sha256=` hex | `X-Hub-Signature-256` |
//!
//! All use HMAC-SHA256 (from `ring`). Decoding is strict: exactly 64 hex
//! digits (either case) or 44 characters of padded standard base64, and
//! prefixes must match exactly. Comparison is constant-time.
//!
//! # Timestamps
//!
//! Schemes with a timestamp reject deliveries more than the tolerance away
//! from the clock, in the past *or* the future, with
//! [`Error::TimestampOutOfTolerance`]. Change it with
//! [`VerifierBuilder::tolerance`], check against the time a queued delivery
//! arrived with `verify_at`, or opt out with
//! [`VerifierBuilder::ignore_timestamp_age`].
//!
//! The official Schematic SDKs never check the age of the timestamp, so they
//! accept a captured delivery forever. This crate checks it by default;
//! `ignore_timestamp_age()` restores the SDKs' behaviour.
//!
//! The window does not stop a replay *inside* it: deduplicate on
//! [`Verified::id`] where the scheme has one, and keep handlers idempotent
//! (Flagsmith sends neither a timestamp nor an id).
//!
//! # Features
//!
//! * `http` (default): [`Headers`] for `http::HeaderMap`, `http::Request`
//!   and `http::request::Parts`; [`SignedHeaders::to_header_map`].
//! * `serde`: typed payloads in the `payload` module, which exists only
//!   with this feature. Verification never needs it.
//! * `axum`: the [`axum`][axum-module] module (an extractor; adds `axum`,
//!   `bytes` and `tracing`).
//! * `tower`: the [`tower`][tower-module] module (a layer; adds
//!   `tower-layer`, `tower-service`, `http-body`, `bytes`,
//!   `pin-project-lite` and `tracing`).
//!
//! Without features it depends on `ring` alone, plus `libc` on Linux for the
//! clock (a crate `ring` already brings in there).
//!
// Where the adapters' links lead: their items, or docs.rs in a build
// without them.
#![cfg_attr(feature = "axum", doc = "[extractor]: axum::VerifiedWebhook")]
#![cfg_attr(feature = "axum", doc = "[axum-module]: mod@axum")]
#![cfg_attr(
    not(feature = "axum"),
    doc = "[extractor]: https://docs.rs/flagwire-webhooks/latest/flagwire_webhooks/axum/struct.VerifiedWebhook.html"
)]
#![cfg_attr(
    not(feature = "axum"),
    doc = "[axum-module]: https://docs.rs/flagwire-webhooks/latest/flagwire_webhooks/axum/index.html"
)]
#![cfg_attr(feature = "tower", doc = "[layer]: tower::VerifyWebhookLayer")]
#![cfg_attr(feature = "tower", doc = "[tower-module]: mod@tower")]
#![cfg_attr(
    not(feature = "tower"),
    doc = "[layer]: https://docs.rs/flagwire-webhooks/latest/flagwire_webhooks/tower/struct.VerifyWebhookLayer.html"
)]
#![cfg_attr(
    not(feature = "tower"),
    doc = "[tower-module]: https://docs.rs/flagwire-webhooks/latest/flagwire_webhooks/tower/index.html"
)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod clock;
mod encoding;
mod error;
mod headers;
mod one_call;
mod scheme;
mod secret;
mod sign;
mod verifier;

#[cfg(feature = "axum")]
pub mod axum;
#[cfg(feature = "serde")]
pub mod payload;

/// The README's example, compiled and run as a doc test.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
#[cfg(feature = "tower")]
pub mod tower;

pub use one_call::{esauti, flagsmith, github, schematic, standard_webhooks, stripe};

pub use clock::{Clock, FixedClock, SystemClock, unix_now};
pub use error::{Error, Malformed, SecretError};
pub use headers::Headers;
pub use scheme::{Esauti, Flagsmith, GitHub, Schematic, Scheme, StandardWebhooks, Stripe};
pub use secret::Secret;
pub use sign::{SignedHeaders, Signer};
pub use verifier::{DEFAULT_TOLERANCE, Verified, VerifiedDelivery, Verifier, VerifierBuilder};

/// Verifies Schematic webhooks.
pub type SchematicVerifier = Verifier<Schematic>;
/// Verifies Flagsmith webhooks.
pub type FlagsmithVerifier = Verifier<Flagsmith>;
/// Verifies eSauti signed requests.
pub type EsautiVerifier = Verifier<Esauti>;
/// Verifies Standard Webhooks and Svix deliveries.
pub type StandardWebhooksVerifier = Verifier<StandardWebhooks>;
/// Verifies Stripe webhooks.
pub type StripeVerifier = Verifier<Stripe>;
/// Verifies GitHub webhooks.
pub type GitHubVerifier = Verifier<GitHub>;
