//! Schematic capture events, sans IO: typed bodies, the envelope, and the
//! batch request body.
//!
//! An event is built in three steps:
//!
//! 1. a typed body from its builder ([`IdentifyBody`], [`TrackBody`],
//!    [`FlagCheckBody`], [`InferenceBody`]), which validates the input and
//!    reports problems as an [`EventError`];
//! 2. an [`EventEnvelope`] around it, which adds the API key, the event
//!    `type`, `sent_at` (the time of creation) and an idempotency key that
//!    stays with the event through every retry; [`EventOptions`] override
//!    the key and the time, or mark a backfill;
//! 3. a [`BatchEncoder`] that writes up to [`MAX_BATCH_EVENTS`] envelopes
//!    as the body of `POST {capture}/batch` (see [`capture_batch_url`]).
//!    Queues keep events as compact keyless JSON
//!    ([`EventEnvelope::write_keyless_json`]) and splice the key back in
//!    when they send ([`encode_keyless_batch`]).
//!
//! ```
//! use flagwire_core::events::{
//!     capture_batch_url, ApiKey, BatchEncoder, CompanyIdentity, EventEnvelope, IdentifyBody,
//!     TrackBody,
//! };
//!
//! let key = ApiKey::new("sch_dev_example")?;
//! let identify = IdentifyBody::builder()
//!     .key("email", "ann@example.com")
//!     .name("Ann")
//!     .company(CompanyIdentity::builder().key("id", "acme").name("Acme").build()?)
//!     .build()?;
//! let track = TrackBody::builder("api-call").company_key("id", "acme").quantity(3).build()?;
//! let events = [EventEnvelope::new(key.clone(), identify), EventEnvelope::new(key, track)];
//!
//! let url = capture_batch_url(None)?;
//! let body = BatchEncoder::new().encode(&events)?;
//! assert_eq!(url, "https://c.schematichq.com/batch");
//! assert!(body.starts_with(br#"{"events":[{"api_key":"sch_dev_example","type":"identify""#));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod batch;
mod body;
mod envelope;
mod error;
mod key;

pub use batch::{
    BATCH_PATH, BatchEncoder, DEFAULT_CAPTURE_BASE_URL, MAX_BATCH_EVENTS, capture_batch_url,
    encode_batch_into, encode_keyless_batch,
};
pub use body::{
    CompanyIdentity, CompanyIdentityBuilder, EventBody, EventType, FlagCheckBody, FlagCheckBuilder,
    IdentifyBody, IdentifyBuilder, InferenceBody, InferenceBuilder, Keys, MAX_COMPANY_NAME_LEN,
    MAX_KEYS, MAX_NAME_LEN, MAX_USER_NAME_LEN, TrackBody, TrackBuilder, Traits,
};
pub use envelope::{EventEnvelope, EventOptions, WithoutApiKey};
pub(crate) use envelope::{rfc3339, rfc3339_utc};
pub use error::EventError;
pub use key::{ApiKey, IdempotencyKey, MAX_IDEMPOTENCY_KEY_LEN};
