//! The sans-IO operation trait every generated request type implements.
//!
//! An [`Operation`] knows how to render itself as an HTTP request
//! ([`to_request`](Operation::to_request)) and how to read the matching response
//! ([`parse_response`](Operation::parse_response)). Sending the request is the transport's job.

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::error::{ApiError, DecodeError, EncodeError, StatusError};

/// Static facts about one API operation, as listed in the generated operation tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OperationInfo {
    /// The `operationId` of the API description, e.g. `listCompanies`.
    pub id: &'static str,
    /// The HTTP method, upper case.
    pub method: &'static str,
    /// The path template, e.g. `/companies/{company_id}`.
    pub path: &'static str,
    /// The tag (group) of the operation, e.g. `companies`.
    pub tag: &'static str,
}

/// One API call: its request encoding and its response decoding, without any I/O.
///
/// The success payload ([`Output`](Operation::Output)) is the `data` member of the API's
/// `{data, params}` envelope: a model type, a `Vec` for list operations, `()` for operations
/// without a response body, or [`Bytes`] for file downloads. The echoed `params` member is not
/// decoded: it repeats the request.
pub trait Operation {
    /// The decoded success payload.
    type Output;

    /// The `operationId` of the API description.
    const OPERATION_ID: &'static str;

    /// The HTTP method.
    fn method(&self) -> Method;

    /// The path with parameters substituted and percent-encoded, starting with `/`.
    fn path(&self) -> String;

    /// The percent-encoded query string without `?`, or `None` when there is none.
    fn query(&self) -> Option<String>;

    /// The JSON request body, or `None` for operations without one.
    fn body(&self) -> Result<Option<Bytes>, EncodeError>;

    /// Decodes a response: the payload for a 2xx status, otherwise an [`ApiError`].
    fn parse_response(
        status: StatusCode,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Self::Output, ApiError>;

    /// Renders the complete request against `base_url` (e.g. `https://api.schematichq.com`;
    /// a trailing `/` is ignored). Sets `accept`, and `content-type` when there is a body.
    /// Authentication headers are the transport's concern.
    fn to_request(&self, base_url: &str) -> Result<http::Request<Bytes>, EncodeError> {
        let base = base_url.trim_end_matches('/');
        let path = self.path();
        let query = self.query();
        let mut uri = String::with_capacity(
            base.len() + path.len() + query.as_ref().map_or(0, |q| q.len() + 1),
        );
        uri.push_str(base);
        uri.push_str(&path);
        if let Some(q) = &query {
            uri.push('?');
            uri.push_str(q);
        }
        let uri = match http::Uri::try_from(uri.as_str()) {
            Ok(u) => u,
            Err(source) => return Err(EncodeError::Uri { uri, source }),
        };
        let body = self.body()?;
        let mut builder = http::Request::builder()
            .method(self.method())
            .uri(uri)
            .header(header::ACCEPT, HeaderValue::from_static("application/json"));
        if body.is_some() {
            builder = builder.header(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
        }
        builder
            .body(body.unwrap_or_default())
            .map_err(EncodeError::Http)
    }
}

/// Serializes a request body as JSON.
pub fn json_body<T: serde::Serialize>(body: &T) -> Result<Option<Bytes>, EncodeError> {
    serde_json::to_vec(body)
        .map(|v| Some(Bytes::from(v)))
        .map_err(EncodeError::Body)
}

/// Turns a non-2xx response into an error.
fn check_status(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Result<(), ApiError> {
    if status.is_success() {
        Ok(())
    } else {
        Err(ApiError::Status(Box::new(StatusError::new(
            status, headers, body,
        ))))
    }
}

#[derive(Deserialize)]
struct Envelope<T> {
    data: T,
}

/// Decodes the `data` member of a `{data, params}` envelope from a 2xx response.
pub fn decode_data<T: DeserializeOwned>(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<T, ApiError> {
    check_status(status, headers, body)?;
    let decode_error = |path: String, message: String| {
        ApiError::Decode(Box::new(DecodeError::new(status, path, message, body)))
    };
    let mut de = serde_json::Deserializer::from_slice(body);
    let envelope: Envelope<T> = serde_path_to_error::deserialize(&mut de)
        .map_err(|e| decode_error(e.path().to_string(), e.into_inner().to_string()))?;
    // Trailing data after the document is an error too.
    de.end()
        .map_err(|e| decode_error(".".to_owned(), e.to_string()))?;
    Ok(envelope.data)
}

/// Accepts any 2xx response and ignores its body.
pub fn decode_empty(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Result<(), ApiError> {
    check_status(status, headers, body)
}

/// Returns the raw body of a 2xx response (file downloads).
pub fn decode_bytes(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Bytes, ApiError> {
    check_status(status, headers, body)?;
    Ok(Bytes::copy_from_slice(body))
}
