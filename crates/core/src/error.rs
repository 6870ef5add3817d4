//! Errors at the API boundary: encoding a request, and reading a response.

use std::fmt;

use bytes::Bytes;
use http::{HeaderMap, StatusCode};

/// A request could not be encoded.
#[derive(Debug)]
#[non_exhaustive]
pub enum EncodeError {
    /// The JSON body could not be serialized.
    Body(serde_json::Error),
    /// The base URL and the rendered path do not form a valid URI.
    Uri {
        /// The URI that was rejected.
        uri: String,
        /// Why it was rejected.
        source: http::uri::InvalidUri,
    },
    /// The HTTP request could not be assembled.
    Http(http::Error),
    /// A path parameter is empty or only whitespace, which would address another resource
    /// (`DELETE /companies/` instead of one company).
    EmptyPathParameter {
        /// The `operationId` of the request.
        operation: &'static str,
        /// The wire name of the parameter.
        parameter: &'static str,
    },
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeError::Body(e) => write!(f, "could not encode the request body: {e}"),
            EncodeError::Uri { uri, source } => write!(f, "invalid request URI {uri:?}: {source}"),
            EncodeError::Http(e) => write!(f, "could not build the HTTP request: {e}"),
            EncodeError::EmptyPathParameter {
                operation,
                parameter,
            } => write!(
                f,
                "path parameter `{parameter}` of `{operation}` is empty; it must name a resource"
            ),
        }
    }
}

impl std::error::Error for EncodeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            EncodeError::Body(e) => Some(e),
            EncodeError::Uri { source, .. } => Some(source),
            EncodeError::Http(e) => Some(e),
            EncodeError::EmptyPathParameter { .. } => None,
        }
    }
}

/// Headers that may carry a request identifier, checked in this order.
const REQUEST_ID_HEADERS: [&str; 3] = ["x-request-id", "x-amzn-requestid", "request-id"];

/// The request identifier a response carries, from the first of
/// [`REQUEST_ID_HEADERS`] that is present and readable.
fn request_id(headers: &HeaderMap) -> Option<String> {
    REQUEST_ID_HEADERS.iter().find_map(|name| {
        headers
            .get(*name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    })
}

/// The server answered with a status outside 2xx.
///
/// The message is taken from the API's `{"error": "..."}` body when there is one. The response
/// headers are kept (for rate-limit and retry decisions) but are not printed by `Debug`, and the
/// raw body is available for logging at the caller's discretion.
#[derive(Clone)]
pub struct StatusError {
    status: StatusCode,
    message: Option<String>,
    request_id: Option<String>,
    headers: HeaderMap,
    body: Bytes,
}

impl StatusError {
    /// Builds the error from a non-success response.
    pub fn new(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Self {
        #[derive(serde::Deserialize)]
        struct ErrorBody {
            error: Option<String>,
        }
        let message = serde_json::from_slice::<ErrorBody>(body)
            .ok()
            .and_then(|b| b.error)
            .filter(|m| !m.is_empty());
        let request_id = request_id(headers);
        StatusError {
            status,
            message,
            request_id,
            headers: headers.clone(),
            body: Bytes::copy_from_slice(body),
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The `error` field of the response body, when the body had one.
    pub fn message(&self) -> Option<&str> {
        self.message.as_deref()
    }

    /// The request identifier the server returned, if any.
    pub fn request_id(&self) -> Option<&str> {
        self.request_id.as_deref()
    }

    /// The response headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The raw response body.
    pub fn body(&self) -> &Bytes {
        &self.body
    }
}

impl fmt::Debug for StatusError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StatusError")
            .field("status", &self.status)
            .field("message", &self.message)
            .field("request_id", &self.request_id)
            .field("body_len", &self.body.len())
            .finish_non_exhaustive()
    }
}

impl fmt::Display for StatusError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the API answered {}", self.status)?;
        if let Some(m) = &self.message {
            write!(f, ": {m}")?;
        }
        if let Some(id) = &self.request_id {
            write!(f, " (request id {id})")?;
        }
        Ok(())
    }
}

/// A success response whose body did not match the expected shape.
#[derive(Clone)]
pub struct DecodeError {
    status: StatusCode,
    path: String,
    message: String,
    request_id: Option<String>,
    body: Bytes,
}

impl fmt::Debug for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DecodeError")
            .field("status", &self.status)
            .field("path", &self.path)
            .field("message", &self.message)
            .field("request_id", &self.request_id)
            .field("body_len", &self.body.len())
            .finish()
    }
}

impl DecodeError {
    pub(crate) fn new(
        status: StatusCode,
        headers: &HeaderMap,
        path: String,
        message: String,
        body: &[u8],
    ) -> Self {
        DecodeError {
            status,
            path,
            message,
            request_id: request_id(headers),
            body: Bytes::copy_from_slice(body),
        }
    }

    /// The request identifier the server returned (`x-request-id` and the
    /// like), if any: quote it when reporting the problem.
    pub fn request_id(&self) -> Option<&str> {
        self.request_id.as_deref()
    }

    /// The HTTP status of the response.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// Where in the document decoding failed, e.g. `data[3].created_at` (`.` for the root).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// What was wrong at [`path`](Self::path).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The raw response body.
    pub fn body(&self) -> &Bytes {
        &self.body
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "could not decode the {} response at `{}`: {}",
            self.status, self.path, self.message
        )?;
        if let Some(id) = &self.request_id {
            write!(f, " (request id {id})")?;
        }
        Ok(())
    }
}

/// Reading an API response failed: the server reported an error, or the body did not decode.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ApiError {
    /// The server answered with a status outside 2xx.
    Status(Box<StatusError>),
    /// A 2xx body did not match the operation's response schema.
    Decode(Box<DecodeError>),
}

impl ApiError {
    /// The HTTP status of the response.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Status(e) => e.status(),
            ApiError::Decode(e) => e.status(),
        }
    }

    /// The API's `error` message, for status errors that carried one.
    pub fn message(&self) -> Option<&str> {
        match self {
            ApiError::Status(e) => e.message(),
            ApiError::Decode(_) => None,
        }
    }

    /// The raw response body.
    pub fn body(&self) -> &Bytes {
        match self {
            ApiError::Status(e) => e.body(),
            ApiError::Decode(e) => e.body(),
        }
    }

    /// The request identifier the server returned, if any.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            ApiError::Status(e) => e.request_id(),
            ApiError::Decode(e) => e.request_id(),
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiError::Status(e) => e.fmt(f),
            ApiError::Decode(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for ApiError {}
