//! The DataStream protocol, sans-IO: how a client keeps flags, companies
//! and users in memory, fed by Schematic's WebSocket, for local flag
//! evaluation with [`rules`](crate::rules).
//!
//! # The protocol in brief
//!
//! 1. The client derives the socket URL from the REST base URL
//!    ([`datastream_url`]) and upgrades with the API key, its mode and its
//!    name and version in the handshake headers ([`HEADER_API_KEY`],
//!    [`HEADER_MODE`], [`HEADER_CLIENT`], [`HEADER_CLIENT_VERSION`]).
//! 2. Every message is one JSON object in a text frame. The client sends
//!    [`Request`]s: `Flags` right after connecting (the server answers with
//!    every flag, then sends each flag change), and one `Company` or `User`
//!    request with the caller's keys when a check needs an entity it does
//!    not have (the server answers with the entity, then its changes).
//!    Subscriptions last as long as the connection.
//! 3. The server's messages ([`parse_message`], [`Message`]) carry whole
//!    entities (`full`), only the changed fields of a company or user
//!    (`partial`, merged into the cached copy with [`CompanyPatch`] /
//!    [`UserPatch`]), deletions, errors for requests it cannot serve, and
//!    `reload` when it cannot resume a connection.
//! 4. Change messages carry a stream id ([`StreamId`]). A client that
//!    remembers the last one it applied ([`ReplayCursor`]) sends it as
//!    `replay_from` after a reconnect and skips what is delivered twice.
//! 5. Entities are cached under the key layout the official SDKs share
//!    ([`CacheKeys`]): by id, and by each `(key name, key value)` pair.
//!    Keys that lead to different entities are a [`KeyConflict`].
//! 6. A dropped connection is retried with capped exponential back-off and
//!    jitter, without limit ([`Backoff`]), except after close code 4001:
//!    the key was refused ([`Session::on_close_code`]).
//!
//! [`Session`] ties these together as a state machine the SDK's socket
//! task drives; it performs no I/O and reads no clock. Facts about the
//! protocol that the official SDKs disagree on, and which behaviour was
//! chosen, are noted where they apply.
//!
//! ```
//! use flagwire_core::datastream::{Message, Mode, Session, datastream_url};
//!
//! let url = datastream_url("https://api.schematichq.com")?;
//! assert_eq!(url, "wss://datastream.schematichq.com/datastream");
//!
//! let mut session = Session::new(Mode::Direct);
//! for request in session.on_connected() {
//!     let _frame: String = request.to_json(); // send it
//! }
//! let frame = r#"{"entity_type":"rulesengine.Flags","message_type":"full",
//!                 "data":[{"id":"flag_1","key":"beta","default_value":false,"rules":[]}]}"#;
//! match session.on_text(frame) {
//!     Ok(Some(received)) => match received.message {
//!         Message::Flags { flags, .. } => assert_eq!(flags[0].key, "beta"),
//!         _ => unreachable!(),
//!     },
//!     Ok(None) => {}          // a replayed duplicate or an ignored kind
//!     Err(_malformed) => {}   // counted; the connection goes on
//! }
//! assert!(session.is_ready());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod backoff;
pub mod keys;
pub mod merge;
pub mod replay;
pub mod session;
pub mod url;
pub mod wire;

pub use backoff::{Backoff, ReconnectPolicy};
pub use keys::{
    CacheKeys, DEFAULT_PREFIX, KeyConflict, resolve_lookups, same_lookup, stale_lookups,
};
pub use merge::{CompanyPatch, CreditLeaseBalance, MergeOutcome, UserPatch, bump_metrics};
pub use replay::{Observation, ReplayCursor, StreamId, StreamIdError};
pub use session::{CloseAction, Mode, Session, SessionStats, StopReason};
pub use url::{DATASTREAM_PATH, UrlError, datastream_url};
pub use wire::{
    AUTH_ERROR_CLOSE_CODE, Action, CLIENT_NAME, DecodeError, EntityType, ErrorMessage,
    HEADER_API_KEY, HEADER_CLIENT, HEADER_CLIENT_VERSION, HEADER_MODE, MAX_MESSAGE_SIZE,
    MODE_DIRECT, MODE_REPLICATOR, Message, MessageType, Received, Request, parse_message,
};
