//! Response decoding for the eSauti REST API, whose success bodies are not wrapped in a `data`
//! member (Mautic style: `{"total": ..., "contacts": {...}}`, `{"contact": {...}}`).

use http::{HeaderMap, StatusCode};
use serde::de::DeserializeOwned;

use crate::error::{ApiError, DecodeError};
use crate::operation::decode_empty;

/// Checks for a 2xx status (else [`ApiError::Status`]) and decodes the whole body.
pub fn decode_json<T: DeserializeOwned>(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<T, ApiError> {
    decode_empty(status, headers, body)?;
    let decode_error = |path: String, message: String| {
        ApiError::Decode(Box::new(DecodeError::new(status, path, message, body)))
    };
    let mut de = serde_json::Deserializer::from_slice(body);
    let value: T = serde_path_to_error::deserialize(&mut de)
        .map_err(|e| decode_error(e.path().to_string(), e.into_inner().to_string()))?;
    de.end()
        .map_err(|e| decode_error(".".to_owned(), e.to_string()))?;
    Ok(value)
}
