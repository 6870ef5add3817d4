//! Response decoding for the eSauti REST API, whose success bodies are not wrapped in a `data`
//! member (Mautic style: `{"total": ..., "contacts": {...}}`, `{"contact": {...}}`).

use http::{HeaderMap, StatusCode};
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::operation::decode_document;

/// Checks for a 2xx status (else [`ApiError::Status`]) and decodes the whole body.
pub fn decode_json<T: DeserializeOwned>(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<T, ApiError> {
    decode_document(status, headers, body)
}
