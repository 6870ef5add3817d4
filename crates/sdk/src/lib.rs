//! flagwire: the Rust SDK for Schematic and eSauti.
//!
//! The full Schematic client (async and blocking, typed API operations,
//! flag checks with defaults) is assembled on top of the building blocks in
//! this crate:
//!
//! * [`cache`]: the local flag-check cache. [`cache::FlagCache`] is the
//!   plug-in trait; [`cache::LruFlagCache`] is the default (1,000 entries,
//!   5 s TTL, sharded, allocation-free hits); [`cache::CacheChain`] makes
//!   any set of caches infallible for the caller.
//! * [`events`]: background delivery of capture events.
//!   [`events::EventBuffer`] queues events without blocking, sends batches
//!   of at most 100 from its own thread, retries, dead-letters what cannot
//!   be delivered, and drains on `flush` / `shutdown` / drop. The event
//!   envelopes it carries are built with [`flagwire_core::events`].
//!
//! ```
//! use std::time::Duration;
//! use flagwire::cache::{FlagCacheKey, LruFlagCache};
//! use flagwire::events::{Batch, EventBuffer, SendError};
//! use flagwire_core::events::{ApiKey, EventEnvelope, TrackBody};
//!
//! // Cache a flag-check result for a company.
//! let cache = LruFlagCache::<bool>::new();
//! let company = std::collections::BTreeMap::from([("id".to_owned(), "acme".to_owned())]);
//! let key = FlagCacheKey::new("new-editor", &company, &());
//! cache.store(&key, true);
//! assert_eq!(cache.lookup(&key), Some(true));
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

pub mod cache;
pub mod error;
pub mod events;
pub mod schematic;

pub use error::Error;
