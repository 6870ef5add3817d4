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

/// The `Accept` value of operations that answer with JSON.
pub const JSON: &str = "application/json";

/// One API call: its request encoding and its response decoding, without any I/O.
///
/// The success payload ([`Output`](Operation::Output)) is the `data` member of the API's
/// `{data, params}` envelope: a model type, a `Vec` for list operations, `()` for operations
/// without a response body, or a [`RawBody`] for operations whose success response is not JSON
/// (file downloads). The echoed `params` member is not decoded: it repeats the request.
pub trait Operation {
    /// The decoded success payload.
    type Output;

    /// The `operationId` of the API description.
    const OPERATION_ID: &'static str;

    /// The media types of the success response, as sent in `Accept`: [`JSON`] unless the
    /// API description lists others (`application/octet-stream, text/csv` for a download).
    const ACCEPT: &'static str = JSON;

    /// The HTTP method.
    fn method(&self) -> Method;

    /// The path with parameters substituted and percent-encoded, starting with `/`.
    ///
    /// An empty or whitespace-only path parameter is an
    /// [`EncodeError::EmptyPathParameter`]: it would address another resource.
    fn path(&self) -> Result<String, EncodeError>;

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
    /// a trailing `/` is ignored). Sets `accept` (from [`ACCEPT`](Operation::ACCEPT)), and
    /// `content-type` when there is a body. Authentication headers are the transport's concern.
    ///
    /// Fails before any I/O when a path parameter is empty, the URI is invalid or the body
    /// cannot be encoded.
    fn to_request(&self, base_url: &str) -> Result<http::Request<Bytes>, EncodeError> {
        let base = base_url.trim_end_matches('/');
        let path = self.path()?;
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
        let accept = if Self::ACCEPT == JSON {
            HeaderValue::from_static(JSON)
        } else {
            HeaderValue::from_str(Self::ACCEPT).map_err(|e| EncodeError::Http(e.into()))?
        };
        let mut builder = http::Request::builder()
            .method(self.method())
            .uri(uri)
            .header(header::ACCEPT, accept);
        if body.is_some() {
            builder = builder.header(header::CONTENT_TYPE, HeaderValue::from_static(JSON));
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
    decode_document::<Envelope<T>>(status, headers, body).map(|envelope| envelope.data)
}

/// Checks for a 2xx status and decodes the whole body as `T`, naming the path of a decode
/// error.
pub(crate) fn decode_document<T: DeserializeOwned>(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<T, ApiError> {
    check_status(status, headers, body)?;
    let decode_error = |path: String, message: String| {
        ApiError::Decode(Box::new(DecodeError::new(
            status, headers, path, message, body,
        )))
    };
    let mut de = serde_json::Deserializer::from_slice(body);
    let value: T = serde_path_to_error::deserialize(&mut de)
        .map_err(|e| decode_error(e.path().to_string(), e.into_inner().to_string()))?;
    // Trailing data after the document is an error too.
    de.end()
        .map_err(|e| decode_error(".".to_owned(), e.to_string()))?;
    Ok(value)
}

/// Accepts any 2xx response and ignores its body.
pub fn decode_empty(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Result<(), ApiError> {
    check_status(status, headers, body)
}

/// The body of a success response that is not JSON (a file download), with its media type.
///
/// It dereferences to the bytes; [`content_type`](RawBody::content_type) tells what they are
/// (`text/csv`, `application/octet-stream`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawBody {
    content_type: Option<String>,
    bytes: Bytes,
}

impl RawBody {
    /// A body with its `Content-Type`, if the server sent one.
    pub fn new(content_type: Option<String>, bytes: Bytes) -> Self {
        RawBody {
            content_type,
            bytes,
        }
    }

    /// The `Content-Type` header of the response as sent (parameters included), if present
    /// and readable as text.
    pub fn content_type(&self) -> Option<&str> {
        self.content_type.as_deref()
    }

    /// The media type without parameters, lower case (`text/csv` for
    /// `Text/CSV; charset=utf-8`).
    pub fn media_type(&self) -> Option<String> {
        let ct = self.content_type.as_deref()?;
        let essence = ct.split(';').next().unwrap_or(ct).trim();
        (!essence.is_empty()).then(|| essence.to_ascii_lowercase())
    }

    /// The body.
    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// The body, by value.
    pub fn into_bytes(self) -> Bytes {
        self.bytes
    }
}

impl std::ops::Deref for RawBody {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.bytes
    }
}

impl AsRef<[u8]> for RawBody {
    fn as_ref(&self) -> &[u8] {
        &self.bytes
    }
}

impl From<RawBody> for Bytes {
    fn from(body: RawBody) -> Bytes {
        body.bytes
    }
}

/// Returns the body of a 2xx response that is not JSON (file downloads), with its content type.
pub fn decode_bytes(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<RawBody, ApiError> {
    check_status(status, headers, body)?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    Ok(RawBody::new(content_type, Bytes::copy_from_slice(body)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Serialize)]
    struct Thing {
        name: &'static str,
    }

    struct GetThing {
        id: &'static str,
        with_body: bool,
    }

    impl Operation for GetThing {
        type Output = Vec<String>;
        const OPERATION_ID: &'static str = "getThing";

        fn method(&self) -> Method {
            Method::POST
        }

        fn path(&self) -> Result<String, EncodeError> {
            let mut p = String::from("/things/");
            crate::query::push_path_param(&mut p, Self::OPERATION_ID, "id", self.id)?;
            Ok(p)
        }

        fn query(&self) -> Option<String> {
            None
        }

        fn body(&self) -> Result<Option<Bytes>, EncodeError> {
            if self.with_body {
                json_body(&Thing { name: "a" })
            } else {
                Ok(None)
            }
        }

        fn parse_response(
            status: StatusCode,
            headers: &HeaderMap,
            body: &[u8],
        ) -> Result<Vec<String>, ApiError> {
            decode_data(status, headers, body)
        }
    }

    #[test]
    fn requests_join_base_and_path_and_set_headers() {
        let op = GetThing {
            id: "a b",
            with_body: true,
        };
        let req = op.to_request("https://api.example.test/").unwrap();
        assert_eq!(req.method(), Method::POST);
        assert_eq!(req.uri(), "https://api.example.test/things/a%20b");
        assert_eq!(req.headers()[header::CONTENT_TYPE], "application/json");
        assert_eq!(req.headers()[header::ACCEPT], "application/json");
        assert_eq!(&req.body()[..], br#"{"name":"a"}"#);

        let op = GetThing {
            id: "x",
            with_body: false,
        };
        let req = op.to_request("http://127.0.0.1:8080").unwrap();
        assert!(req.headers().get(header::CONTENT_TYPE).is_none());
        assert!(req.body().is_empty());
    }

    #[test]
    fn a_bad_base_url_is_an_encode_error() {
        let op = GetThing {
            id: "x",
            with_body: false,
        };
        let err = op.to_request("not a url").unwrap_err();
        assert!(matches!(err, EncodeError::Uri { .. }), "{err:?}");
        assert!(err.to_string().contains("not a url"), "{err}");
    }

    #[test]
    fn an_empty_path_parameter_fails_before_anything_is_built() {
        for id in ["", "  "] {
            let op = GetThing {
                id,
                with_body: true,
            };
            let err = op.to_request("https://api.example.test").unwrap_err();
            assert!(
                matches!(
                    err,
                    EncodeError::EmptyPathParameter {
                        operation: "getThing",
                        parameter: "id"
                    }
                ),
                "{err:?}"
            );
        }
    }

    struct Download;

    impl Operation for Download {
        type Output = RawBody;
        const OPERATION_ID: &'static str = "download";
        const ACCEPT: &'static str = "application/octet-stream, text/csv";

        fn method(&self) -> Method {
            Method::GET
        }

        fn path(&self) -> Result<String, EncodeError> {
            Ok("/file".to_owned())
        }

        fn query(&self) -> Option<String> {
            None
        }

        fn body(&self) -> Result<Option<Bytes>, EncodeError> {
            Ok(None)
        }

        fn parse_response(
            status: StatusCode,
            headers: &HeaderMap,
            body: &[u8],
        ) -> Result<RawBody, ApiError> {
            decode_bytes(status, headers, body)
        }
    }

    #[test]
    fn downloads_accept_their_media_types_and_keep_the_content_type() {
        let req = Download.to_request("http://127.0.0.1:1").unwrap();
        assert_eq!(
            req.headers()[header::ACCEPT],
            "application/octet-stream, text/csv"
        );
        let mut h = HeaderMap::new();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("Text/CSV; charset=utf-8"),
        );
        let body = Download::parse_response(StatusCode::OK, &h, b"a,b\n").unwrap();
        assert_eq!(body.content_type(), Some("Text/CSV; charset=utf-8"));
        assert_eq!(body.media_type().as_deref(), Some("text/csv"));
        assert_eq!(&body[..], b"a,b\n");
        assert_eq!(body.as_ref(), b"a,b\n");
        assert_eq!(body.bytes().len(), 4);
        assert_eq!(Bytes::from(body.clone()), body.into_bytes());
        let bare = Download::parse_response(StatusCode::OK, &HeaderMap::new(), b"").unwrap();
        assert_eq!((bare.content_type(), bare.media_type()), (None, None));
    }

    #[test]
    fn decoding_checks_status_envelope_and_trailing_data() {
        let h = HeaderMap::new();
        let ok =
            GetThing::parse_response(StatusCode::CREATED, &h, br#"{"data":["a"],"params":{}}"#);
        assert_eq!(ok.unwrap(), ["a"]);

        let err =
            GetThing::parse_response(StatusCode::OK, &h, br#"{"data":[]} trailing"#).unwrap_err();
        assert!(matches!(err, ApiError::Decode(_)), "{err:?}");

        let err = GetThing::parse_response(StatusCode::OK, &h, br#"{"data":[1]}"#).unwrap_err();
        let ApiError::Decode(d) = &err else {
            panic!("{err:?}")
        };
        assert_eq!(d.path(), "data[0]");
        assert!(d.message().contains("invalid type: integer"), "{d}");
        assert_eq!(d.request_id(), None);

        // The server's request id is kept, and shown.
        let mut with_id = HeaderMap::new();
        with_id.insert("x-request-id", HeaderValue::from_static("req_42"));
        let err =
            GetThing::parse_response(StatusCode::OK, &with_id, br#"{"data":{}}"#).unwrap_err();
        assert_eq!(err.request_id(), Some("req_42"));
        assert!(err.to_string().ends_with("(request id req_42)"), "{err}");

        let err = GetThing::parse_response(StatusCode::TOO_MANY_REQUESTS, &h, b"").unwrap_err();
        assert_eq!(err.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(err.message(), None);
        let err =
            GetThing::parse_response(StatusCode::BAD_REQUEST, &h, br#"{"error":""}"#).unwrap_err();
        assert_eq!(err.message(), None, "an empty message is no message");
        assert_eq!(err.to_string(), "the API answered 400 Bad Request");
    }

    #[test]
    fn empty_and_raw_decoders_still_check_the_status() {
        let h = HeaderMap::new();
        assert!(decode_empty(StatusCode::NO_CONTENT, &h, b"").is_ok());
        assert!(decode_empty(StatusCode::CONFLICT, &h, br#"{"error":"x"}"#).is_err());
        assert_eq!(
            &decode_bytes(StatusCode::OK, &h, b"a,b").unwrap()[..],
            b"a,b"
        );
        assert!(decode_bytes(StatusCode::INTERNAL_SERVER_ERROR, &h, b"").is_err());
    }
}
