//! flagwire: the Rust SDK for Schematic and eSauti.
//!
//! Most users start with [`schematic::Client`] (or its synchronous twin
//! [`schematic::blocking::Client`]):
//!
//! * every one of the 268 Schematic API operations, typed, through
//!   [`schematic::Client::send`], with retries, deadlines and tracing from
//!   [`flagwire_transport`];
//! * flag checks that never fail — local cache, then the API, then your
//!   defaults, then `false` — in [`schematic::Client::check_flag`];
//! * `identify` / `track` events that return at once and are delivered in
//!   batches of at most 100 from a background thread;
//! * an offline mode for tests and local development.
//!
//! The [`schematic`] module has a runnable example against the in-process
//! emulator (`flagwire-mock`); the repository's quickstart
//! (`cargo run --example quickstart`) shows the whole flow.
//!
//! The building blocks are public too:
//!
//! * [`cache`]: the local flag-check cache. [`cache::FlagCache`] is the
//!   plug-in trait; [`cache::LocalFlagCache`] is the default (1,000 entries,
//!   5 s TTL, CLOCK eviction, lock-free allocation-free hits that scale
//!   across threads); [`cache::CacheChain`] makes any set of caches
//!   infallible for the caller.
//! * [`events`]: background delivery of capture events.
//!   [`events::EventBuffer`] queues events without blocking, sends batches
//!   of at most 100 from its own thread, retries, dead-letters what cannot
//!   be delivered, and drains on `flush` / `shutdown` / drop. The event
//!   envelopes it carries are built with [`flagwire_core::events`].
//!
//! For eSauti, [`esauti::Client`] (and [`esauti::blocking::Client`]) covers
//! the Mautic-style REST API and Event Injection: events validated before
//! any I/O, HMAC-signed afresh on every attempt, one idempotency key per
//! event across retries, and a dead-letter file with replay.
//!
//! Webhook verification is [`flagwire_webhooks`], re-exported as
//! [`webhooks`].
//!
//! # One dependency
//!
//! `flagwire` is the only crate most users add: the layers below it are
//! re-exported ([`core`], [`transport`], [`webhooks`], and the emulator as
//! `mock` with the feature of that name), and the types a call needs are
//! re-exported next to the client that takes them: request types and models
//! in [`schematic::api`] and [`schematic::models`], event bodies such as
//! [`schematic::TrackBody`], eSauti's operations and event types in
//! [`esauti::api`] and [`esauti::EventType`].
//!
//! # Cargo features
//!
//! | feature | default | what it adds |
//! | --- | --- | --- |
//! | `webpki-roots` | yes | trust the Mozilla roots compiled into the binary |
//! | `native-roots` | no | trust the operating system's certificate store |
//! | `mock` | no | `flagwire::mock`, the emulator, for your own tests |
//! | `axum` | no | `webhooks::axum`: an extractor that verifies deliveries |
//! | `tower` | no | `webhooks::tower`: a layer that verifies deliveries |
//! | `redis` | no | `flagwire::redis`: Redis-backed caches and replicator mode |
//!
//! ```
//! use std::time::Duration;
//! use flagwire::cache::{FlagCacheKey, LocalFlagCache};
//! use flagwire::events::{Batch, EventBuffer, SendError};
//! use flagwire_core::events::{ApiKey, EventEnvelope, TrackBody};
//!
//! // Cache a flag-check result for a company.
//! let cache = LocalFlagCache::<bool>::new();
//! let key = FlagCacheKey::new("new-editor", &[("id", "acme")], &());
//! cache.store(&key, true);
//! assert_eq!(cache.peek_with(&key, |on| *on), Some(true));
//!
//! // Queue a track event and deliver it through a (here: no-op) sender.
//! let buffer = EventBuffer::builder().spawn(|_batch: Batch| async { Ok::<(), SendError>(()) })?;
//! let api_key = ApiKey::new("sch_dev_example")?;
//! let body = TrackBody::builder("api-call").company_key("id", "acme").quantity(1).build()?;
//! buffer.enqueue(EventEnvelope::new(api_key, body))?;
//! let report = buffer.shutdown_blocking(Duration::from_secs(5));
//! assert!(report.drained);
//! assert_eq!(report.stats.sent, 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod base_url;
pub mod cache;
pub mod context;
pub mod datastream;
pub mod error;
pub mod esauti;
pub mod events;
#[cfg(feature = "redis")]
pub mod redis;
mod runtime_thread;
pub mod schematic;

pub use context::Context;
pub use error::Error;

/// The sans-IO layer: generated API types, event envelopes, the rules engine
/// and the DataStream protocol ([`flagwire_core`]).
pub use flagwire_core as core;
/// The emulator of the platforms over loopback, for tests and examples
/// ([`flagwire_mock`], feature `mock`).
#[cfg(feature = "mock")]
#[cfg_attr(docsrs, doc(cfg(feature = "mock")))]
pub use flagwire_mock as mock;
/// The HTTP stack: the HTTPS client, retry policies, proxies and the tower
/// layers ([`flagwire_transport`]).
pub use flagwire_transport as transport;
/// Webhook verification and signing ([`flagwire_webhooks`]).
pub use flagwire_webhooks as webhooks;

// The package README's example compiles.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
