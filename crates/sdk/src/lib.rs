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
pub use flagwire_webhooks as webhooks;
