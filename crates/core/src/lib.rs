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
//! use std::collections::BTreeMap;
//!
//! use flagwire_core::operation::Operation;
//! use flagwire_core::schematic::companies::{ListCompanies, LookupCompany};
//!
//! // Required parameters go to `new`, optional ones through builder methods.
//! let list = ListCompanies::new().q("acme").limit(50);
//! let request = list.to_request("https://api.schematichq.com").unwrap();
//! assert_eq!(request.uri(), "https://api.schematichq.com/companies?q=acme&limit=50");
//!
//! // Object parameters use deepObject keys.
//! let keys = BTreeMap::from([("domain".to_owned(), "acme.test".to_owned())]);
//! let lookup = LookupCompany::new(keys);
//! assert_eq!(lookup.query().unwrap(), "keys%5Bdomain%5D=acme.test");
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
pub mod open_enum;
pub mod operation;
pub mod pagination;
pub mod query;
pub mod rules;

pub use error::{ApiError, DecodeError, EncodeError, StatusError};
pub use generated::schematic;
pub use operation::{Operation, OperationInfo};
pub use pagination::Paginated;
