//! The sans-IO core of flagwire: typed API operations, event envelopes and the
//! flag rules engine. Nothing in this crate opens a socket.
//!
//! # Typed Schematic API
//!
//! [`schematic`] has one request type per operation of the Schematic API, grouped by tag
//! (`schematic::companies`, `schematic::features`, ...), and every data type of the API in
//! [`schematic::models`]. Request types implement [`Operation`]: they render themselves as an
//! [`http::Request`] and decode the matching response, so any HTTP client can carry them.
//!
//! ```
//! use flagwire_core::operation::Operation;
//! use flagwire_core::schematic::companies::{ListCompanies, LookupCompany, UpsertCompany};
//! use flagwire_core::schematic::models::UpsertCompanyRequestBody;
//! use serde_json::json;
//!
//! // Required parameters go to `new`, optional ones through builder methods.
//! let list = ListCompanies::new().q("acme").limit(50);
//! let request = list.to_request("https://api.schematichq.com").unwrap();
//! assert_eq!(request.uri(), "https://api.schematichq.com/companies?q=acme&limit=50");
//!
//! // Maps are given as pairs; object parameters use deepObject keys.
//! let lookup = LookupCompany::new([("domain", "acme.test")]);
//! assert_eq!(lookup.query().unwrap(), "keys%5Bdomain%5D=acme.test");
//!
//! // Request bodies: required fields in `new`, the others by name, free-form traits from
//! // `json!` (anything but an object is an error).
//! let body = UpsertCompanyRequestBody::new([("id", "acme")])
//!     .name("Acme Widgets, Inc.")
//!     .try_traits(json!({"city": "Atlanta", "high_score": 25}))?;
//! let request = UpsertCompany::new(body).to_request("https://api.schematichq.com")?;
//! assert_eq!(request.headers()["content-type"], "application/json");
//!
//! // Responses: the `data` member of the `{data, params}` envelope, typed.
//! let body = br#"{"data": [], "params": {"limit": 50}}"#;
//! let companies = ListCompanies::parse_response(http::StatusCode::OK, &http::HeaderMap::new(), body).unwrap();
//! assert!(companies.is_empty());
//!
//! // Errors carry the status and the API's `error` message.
//! let err = ListCompanies::parse_response(
//!     http::StatusCode::NOT_FOUND,
//!     &http::HeaderMap::new(),
//!     br#"{"error": "not found"}"#,
//! )
//! .unwrap_err();
//! assert_eq!(err.status(), 404);
//! assert_eq!(err.message(), Some("not found"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Generated structs and enums are `#[non_exhaustive]`, so that fields and values the API
//! adds later are not breaking changes: build them with `new` and setters, and give `match`es
//! a wildcard arm. Optional request fields that may be sent as `null` are [`Nullable`]; maps
//! of free-form JSON are [`Traits`], the same type the event builders use.
//!
//! ```
//! use flagwire_core::schematic::models::{AccountMemberRole, CountResponse};
//!
//! let count = CountResponse::new().count(3);
//! let label = match AccountMemberRole::from("admin") {
//!     AccountMemberRole::Admin => "admin",
//!     AccountMemberRole::Member => "member",
//!     AccountMemberRole::Unknown(_) => "unknown",
//!     _ => "added in a later release",
//! };
//! assert_eq!((count.count, label), (Some(3), "admin"));
//! ```
//!
//! A struct literal does not compile outside this crate:
//!
//! ```compile_fail,E0639
//! let count = flagwire_core::schematic::models::CountResponse { count: Some(3) };
//! ```
//!
//! Nor does a `match` without a wildcard arm:
//!
//! ```compile_fail,E0004
//! use flagwire_core::schematic::models::AccountMemberRole;
//! let label = match AccountMemberRole::from("admin") {
//!     AccountMemberRole::Admin => "admin",
//!     AccountMemberRole::Member => "member",
//!     AccountMemberRole::Unknown(_) => "unknown",
//! };
//! ```
//!
//! eSauti Event Injection envelopes and the eSauti event registry are in [`esauti`]
//! (`docs/esauti.md`).
//!
//! The DataStream protocol that feeds local evaluation (requests, message decoding, partial
//! merges, cache keys, replay and reconnect state) is in [`datastream`], sans-IO like the rest.
//!
//! Design notes (open enums, unions, pagination): `docs/codegen.md`.

pub mod datastream;
mod de;
pub mod error;
pub mod esauti;
pub mod events;
mod generated;
pub mod json;
pub mod nullable;
pub mod open_enum;
pub mod operation;
pub mod pagination;
pub mod query;
pub mod rules;

pub use error::{ApiError, DecodeError, EncodeError, StatusError};
pub use generated::schematic;
pub use json::Traits;
pub use nullable::Nullable;
pub use operation::{Operation, OperationInfo, RawBody};
pub use pagination::Paginated;
