//! An in-memory emulator of the Schematic APIs, served over real loopback
//! HTTP, for tests, examples and benchmarks.
//!
//! [`MockServer::start`] binds two listeners on `127.0.0.1` with ephemeral
//! ports: the REST API ([`MockServer::rest_url`]) and the event-capture host
//! ([`MockServer::capture_url`], `POST /batch`). Both share one in-memory
//! state that tests can seed and inspect, and both honour scripted faults.
//!
//! ```
//! use flagwire_mock::MockServer;
//! use serde_json::json;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), flagwire_mock::MockError> {
//! let server = MockServer::start().await?;
//! server.upsert_company(json!({"keys": {"id": "acme"}, "name": "Acme"}))?;
//! server.create_flag(json!({
//!     "key": "beta", "name": "Beta", "description": "", "flag_type": "boolean",
//!     "default_value": false,
//! }))?;
//!
//! // Point an SDK (or any HTTP client) at these, with this key:
//! let (rest, capture, key) = (server.rest_url(), server.capture_url(), server.api_key());
//! assert!(rest.starts_with("http://127.0.0.1:") && capture != rest);
//! assert_eq!(key, flagwire_mock::DEFAULT_API_KEY);
//!
//! assert_eq!(server.companies()[0]["name"], "Acme");
//! server.stop().await;
//! # Ok(())
//! # }
//! ```
//!
//! For synchronous code, [`MockServer::start_blocking`] runs the server on a
//! runtime of its own. The binary (`cargo run -p flagwire-mock -- --port
//! 8787`) serves the same emulator for manual use.
//!
//! [`esauti::EsautiServer`] emulates eSauti instead: its Event Injection
//! endpoint (signatures checked, idempotency keys deduplicated, events
//! validated against the registry) and the REST API's contacts.
//!
//! # Wire behaviour
//!
//! * Every REST request needs an accepted `X-Schematic-Api-Key` (401
//!   otherwise). Success bodies are `{"data": …, "params": {…}}`; errors are
//!   `{"error": "…"}`.
//! * Request bodies are checked against the platform's request schemas and
//!   documented limits (key counts, string lengths, enums, list sizes): 400
//!   with a message naming the problem.
//! * Any other operation of the platform API answers 501
//!   `{"error": "not emulated: <operationId>"}`; unknown paths answer 404.
//!
//! # Emulated operations
//!
//! * Companies and users: upsert (`POST /companies`, `/users`; key merge,
//!   key remapping or `prevent_key_remap`, `update_only`, `remove_keys`,
//!   traits, `last_seen_at`), create (`…/create`, 409 if the keys exist), get,
//!   lookup by keys (`…/lookup?keys[k]=v`), list (`limit`, `offset`, `q`,
//!   `ids`, users also `company_id`; newest first), count, delete by ID and by
//!   keys. User upserts manage memberships (`company`, `companies`,
//!   `company_id`, `company_ids`).
//! * Traits: `POST /company-traits` and `/user-traits` (`set`, `incr`,
//!   `update_only`); entity trait definitions (list, count, get,
//!   get-or-create), created automatically for new traits.
//! * Company memberships: list, get-or-create, delete.
//! * Features (create with an optional flag, list, count, get, update,
//!   delete) and flags (create, list, count, get, update, delete, `PUT
//!   /flags/{id}/rules`).
//! * Flag checks: `POST /flags/{key}/check`, `/flags/check`,
//!   `/flags/check-bulk`, evaluated over the stored flags, companies (traits
//!   and metrics) and users.
//! * Events: `POST /events`, `/event-batch` (≤ 1000), list, get; and the
//!   capture host's `POST /batch` (≤ 100 events, otherwise 400
//!   `{"error":"batch too large","max_size":100}`). Identify events upsert
//!   the user, the company and the membership; track events add their
//!   quantity (default 1) to the company's metrics for every period, so
//!   metric rules react. Idempotency keys drop duplicates.
//! * Webhooks: create, list, count, get, update, delete, test, and the
//!   webhook-events log (list, count, get). Registered
//!   endpoints receive signed deliveries (`X-Schematic-Webhook-Signature`,
//!   `X-Schematic-Webhook-Timestamp`) for company, user, feature, flag,
//!   flag-rules and rule changes they subscribe to; see
//!   [`MockServer::webhook_deliveries`].
//! * DataStream: `GET /datastream` on the REST port is the WebSocket the
//!   SDKs use for local evaluation ([`MockServer::datastream_url`]). It
//!   answers `rulesengine.Flags` with every flag, `rulesengine.Company` and
//!   `rulesengine.User` (by keys) with the entity or an `error`, and
//!   `rulesengine.Companies`/`rulesengine.Users` with a confirmation; it then
//!   pushes every change made through any route (`full`/`partial`/`delete`,
//!   with a strictly increasing `stream_id`), replays missed changes for
//!   `replay_from` (or answers `reload` past its replay log, see
//!   [`MockServerBuilder::replay_log_capacity`]) and closes with 4001 on a
//!   bad key. The models are the ones the REST checks evaluate. `GET
//!   /ready` serves the replicator's health document.
//!
//! # Faults
//!
//! [`MockServer::inject`] scripts per-route failures: a status (with
//! `Retry-After` and body), a delay, a dropped connection, a truncated body or
//! malformed JSON; each matching request consumes one, then the route behaves
//! normally again.
//!
//! ```
//! use flagwire_mock::{Fault, Host, MockServer};
//! use http::Method;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), flagwire_mock::MockError> {
//! let server = MockServer::start().await?;
//! server.inject(
//!     Host::Rest,
//!     Method::POST,
//!     "/flags/{key}/check",
//!     [Fault::status(503).with_retry_after("1"), Fault::DropConnection],
//! )?;
//! assert_eq!(server.pending_faults(), 2);
//! # Ok(())
//! # }
//! ```
//!
//! DataStream sockets have switches of their own:
//! [`datastream_drop_connections`](MockServer::datastream_drop_connections)
//! (no close frame), [`datastream_close_all`](MockServer::datastream_close_all)
//! (a close code of your choice), [`datastream_stall`](MockServer::datastream_stall)
//! (no reads, no pongs, no messages for a while),
//! [`datastream_send_raw`](MockServer::datastream_send_raw) (any text frame,
//! of any size), [`datastream_refuse_upgrades`](MockServer::datastream_refuse_upgrades)
//! (503), [`datastream_trim_replay_log`](MockServer::datastream_trim_replay_log)
//! (the next `replay_from` gets `reload`) and
//! [`set_replicator_ready`](MockServer::set_replicator_ready). What the
//! clients did is in [`datastream_handshakes`](MockServer::datastream_handshakes)
//! and [`datastream_requests`](MockServer::datastream_requests).
//!
//! ```
//! use flagwire_mock::MockServer;
//! use std::time::Duration;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), flagwire_mock::MockError> {
//! let server = MockServer::start().await?;
//! assert_eq!(server.datastream_url(), format!("ws://{}/datastream", server.rest_addr()));
//! server.datastream_refuse_upgrades(1);
//! assert_eq!(server.datastream_stall(Duration::from_millis(500)), 0, "no socket open yet");
//! assert!(server.datastream_close_all(1006, "").is_err(), "1006 is never sent");
//! # Ok(())
//! # }
//! ```

mod blocking;
mod body;
mod datastream;
mod error;
pub mod esauti;
mod eval;
mod faults;
#[cfg(test)]
mod fuzz_tests;
mod inspect;
mod metrics;
mod operations;
mod record;
mod render;
#[cfg(feature = "redis")]
mod replicator;
mod schematic;
mod seed;
mod server;
mod store;
mod util;
mod webhook;

pub use blocking::BlockingMockServer;
pub use datastream::{DATASTREAM_PATH, DataStreamHandshake, HandshakeOutcome};
pub use error::MockError;
pub use faults::{Fault, Host};
pub use inspect::ReceivedEvent;
pub use record::{REDACTED, RecordedRequest};
pub use seed::Seed;
pub use server::{DEFAULT_API_KEY, MockServer, MockServerBuilder};
/// The platform operation IDs this emulator implements (e.g. `checkFlag`,
/// `upsertCompany`); every other operation answers 501.
pub fn emulated_operations() -> &'static [&'static str] {
    schematic::EMULATED
}

pub use webhook::{SIGNATURE_HEADER, TIMESTAMP_HEADER, WebhookDelivery};
