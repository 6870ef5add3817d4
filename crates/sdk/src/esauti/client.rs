//! The async [`Client`] and its REST side.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use flagwire_core::Operation;
use flagwire_transport::auth::Clock;
use flagwire_transport::{Attempt, BoxTransport};
use serde_json::Value;
use tower::ServiceExt;

use super::builder::ClientBuilder;
use super::deadletter::DeadLetterSink;
use super::events::{Events, IntoEnvelope, REQUEST_ID, SendOptions};
use super::receipt::Receipt;
use super::redact::Redactor;
use crate::error::Error;
use crate::schematic::RequestOptions;
use flagwire_core::esauti::{EnvelopeBuilder, EventType};

pub(crate) struct RestTarget {
    pub(crate) transport: BoxTransport,
    pub(crate) base_url: String,
}

pub(crate) struct EventsTarget {
    pub(crate) transport: BoxTransport,
    pub(crate) endpoint: http::Uri,
}

pub(crate) struct Inner {
    pub(crate) rest: Option<RestTarget>,
    pub(crate) events: Option<EventsTarget>,
    pub(crate) source: String,
    pub(crate) signed: bool,
    pub(crate) dead_letter: Option<Arc<dyn DeadLetterSink>>,
    /// For log lines: secrets, and PII when configured.
    pub(crate) log_redactor: Redactor,
    /// For stored error text: secrets only.
    pub(crate) secret_redactor: Redactor,
    pub(crate) clock: Clock,
}

/// The eSauti client: the REST API (contacts, campaigns, forms… see the resource accessors
/// such as [`contacts`](Self::contacts)) and Event Injection ([`events`](Self::events)).
///
/// Cheap to clone (one `Arc`), `Send + Sync`. Requests need a Tokio runtime; building the
/// client does not. For synchronous code use [`blocking::Client`](super::blocking::Client).
///
/// ```no_run
/// use flagwire::esauti::Client;
/// use flagwire_core::esauti::EventType;
/// use flagwire_core::esauti::api::contacts::ListContacts;
///
/// # async fn run() -> Result<(), flagwire::Error> {
/// let client = Client::builder()
///     .api_key(std::env::var("ESAUTI_API_KEY").unwrap_or_default())
///     .hmac_secret(std::env::var("ESAUTI_HMAC_SECRET").unwrap_or_default())
///     .rest_url("https://tenant.example.com/api")
///     .events_url("https://tenant.example.com")
///     .build()?;
/// let page = client.contacts().list(ListContacts::new().search("ann").limit(10)).await?;
/// println!("{} contacts", page["total"]);
///
/// let receipt = client
///     .events()
///     .send(client.events().event(EventType::CustomerCreated).customer_id("cus_1"))
///     .await?;
/// println!("event {:?}", receipt.event_id);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    pub(crate) inner: Arc<Inner>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("esauti::Client")
            .field("rest_url", &self.rest_url())
            .field("events_endpoint", &self.events_endpoint())
            .field("source", &self.inner.source)
            .field("signed", &self.inner.signed)
            .field("dead_letter", &self.inner.dead_letter.is_some())
            .field("redactor", &self.inner.log_redactor)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Starts configuring a client.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::new()
    }

    pub(crate) fn from_inner(inner: Inner) -> Client {
        Client {
            inner: Arc::new(inner),
        }
    }

    /// The REST base URL, if configured.
    pub fn rest_url(&self) -> Option<&str> {
        self.inner.rest.as_ref().map(|r| r.base_url.as_str())
    }

    /// The full URL events are posted to, if an events URL is configured.
    pub fn events_endpoint(&self) -> Option<&http::Uri> {
        self.inner.events.as_ref().map(|e| &e.endpoint)
    }

    /// The default `source` of events built by [`Events::event`].
    pub fn source(&self) -> &str {
        &self.inner.source
    }

    /// The redactor the client applies to its log lines.
    pub fn redactor(&self) -> &Redactor {
        &self.inner.log_redactor
    }

    /// Event Injection: build, send and replay events.
    pub fn events(&self) -> Events<'_> {
        Events::new(self)
    }

    /// A builder for an event whose `source` is the client's; finish it with
    /// `build()` or pass it as it is to [`send_event`](Self::send_event). The
    /// same as [`Events::event`]; the blocking client has the same method.
    pub fn event(&self, event_type: impl Into<EventType>) -> EnvelopeBuilder {
        self.events().event(event_type)
    }

    /// Validates and sends one event; see [`Events::send`] for the errors.
    ///
    /// ```no_run
    /// # async fn run(client: flagwire::esauti::Client) -> Result<(), flagwire::Error> {
    /// use flagwire::esauti::EventType;
    ///
    /// let event = client
    ///     .event(EventType::CustomerLogin)
    ///     .customer_id("cus_42");
    /// let receipt = client.send_event(event).await?;
    /// # Ok(()) }
    /// ```
    pub async fn send_event(&self, event: impl IntoEnvelope) -> Result<Receipt, Error> {
        self.events().send(event).await
    }

    /// [`send_event`](Self::send_event) with per-event options.
    pub async fn send_event_with(
        &self,
        event: impl IntoEnvelope,
        options: SendOptions,
    ) -> Result<Receipt, Error> {
        self.events().send_with(event, options).await
    }

    /// Sends one REST operation (any request type of [`flagwire_core::esauti::api`]) and
    /// decodes its answer.
    ///
    /// A non-2xx answer is [`Error::Api`], with the message of a Mautic error body
    /// (`{"errors":[{"message"}]}` or `{"error":{"message"}}`), also when retries ran out; no
    /// answer at all is [`Error::Transport`].
    pub async fn send<O: Operation>(&self, op: O) -> Result<O::Output, Error> {
        let request = self.prepare(&op, None);
        drop(op);
        self.execute::<O>(request?).await
    }

    /// [`send`](Self::send) with per-request options (deadline, retries, extra headers and
    /// query parameters).
    pub async fn send_with<O: Operation>(
        &self,
        op: O,
        options: RequestOptions,
    ) -> Result<O::Output, Error> {
        let request = self.prepare(&op, Some(&options));
        drop(op);
        self.execute::<O>(request?).await
    }

    /// Sends any request to the REST API, for Mautic routes the typed operations do not cover
    /// (segments, companies, emails, batch endpoints…): `path` is relative to the REST base
    /// (a leading `/` is optional, and it is sent as given, so percent-encode it yourself),
    /// `query` is percent-encoded, `body` is sent as JSON. A `2xx` answer is returned as JSON
    /// (`Value::Null` when empty, a string when it is not JSON); anything else is
    /// [`Error::Api`].
    ///
    /// ```
    /// use flagwire::esauti::Client;
    /// use http::Method;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let server = tower::service_fn(|req: http::Request<bytes::Bytes>| async move {
    ///     assert_eq!(req.method(), Method::POST);
    ///     assert_eq!(req.uri(), "https://tenant.example.com/api/segments/3/contact/7/add?x=a%20b");
    ///     Ok::<_, std::convert::Infallible>(http::Response::new(bytes::Bytes::from_static(
    ///         br#"{"success":1}"#,
    ///     )))
    /// });
    /// let client = Client::builder()
    ///     .api_key("esk_example")
    ///     .rest_url("https://tenant.example.com/api")
    ///     .service(server)
    ///     .build()?;
    /// let answer = client
    ///     .call(Method::POST, "/segments/3/contact/7/add", &[("x", "a b")], None)
    ///     .await?;
    /// assert_eq!(answer["success"], 1);
    /// # Ok(()) }
    /// ```
    pub async fn call(
        &self,
        method: http::Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<Value, Error> {
        let request = self.raw_request(method, path, query, body)?;
        let transport = self.rest()?.transport.clone();
        let response = match transport.oneshot(request).await {
            Ok(r) => r,
            Err(e) => match e.last_response() {
                Some(r) => return Err(api_error(r, None)),
                None => return Err(Error::Transport(e)),
            },
        };
        if !response.status().is_success() {
            return Err(api_error(&response, None));
        }
        let body = response.body();
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Value::Null);
        }
        Ok(serde_json::from_slice(body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned())))
    }

    fn raw_request(
        &self,
        method: http::Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<http::Request<Bytes>, Error> {
        let rest = self.rest()?;
        let mut uri = format!("{}/{}", rest.base_url, path.trim_start_matches('/'));
        let mut q = flagwire_core::query::QueryBuilder::new();
        for (name, value) in query {
            q.push(name, *value);
        }
        if let Some(q) = q.finish() {
            uri.push('?');
            uri.push_str(&q);
        }
        let uri = http::Uri::try_from(uri.as_str())
            .map_err(|_| Error::config(format!("`{path}` does not make a valid URL")))?;
        let mut builder = http::Request::builder()
            .method(method)
            .uri(uri)
            .header(http::header::ACCEPT, "application/json");
        let body = match body {
            Some(v) => {
                builder = builder.header(http::header::CONTENT_TYPE, "application/json");
                Bytes::from(
                    serde_json::to_vec(v)
                        .map_err(|e| Error::Encode(flagwire_core::error::EncodeError::Body(e)))?,
                )
            }
            None => Bytes::new(),
        };
        builder
            .body(body)
            .map_err(|e| Error::config(format!("invalid request: {e}")))
    }

    fn rest(&self) -> Result<&RestTarget, Error> {
        self.inner
            .rest
            .as_ref()
            .ok_or_else(|| Error::config("no REST URL is configured"))
    }

    fn prepare<O: Operation>(
        &self,
        op: &O,
        options: Option<&RequestOptions>,
    ) -> Result<http::Request<Bytes>, Error> {
        let rest = self.rest()?;
        let mut req = op.to_request(&rest.base_url)?;
        if let Some(options) = options {
            options.apply(&mut req)?;
        }
        Ok(req)
    }

    async fn execute<O: Operation>(
        &self,
        request: http::Request<Bytes>,
    ) -> Result<O::Output, Error> {
        let transport = self.rest()?.transport.clone();
        let response = match transport.oneshot(request).await {
            Ok(r) => r,
            Err(e) => match e.last_response() {
                // Retries ran out on error statuses: report the API's words.
                Some(r) => {
                    let err = parse::<O>(r.status(), r.headers(), r.body());
                    return Err(err.with_attempts(Attempt::of_response(r)));
                }
                None => return Err(Error::Transport(e)),
            },
        };
        O::parse_response(response.status(), response.headers(), response.body()).map_err(|e| {
            with_mautic_message(Error::from(e)).with_attempts(Attempt::of_response(&response))
        })
    }
}

/// The [`Error::Api`] of a non-2xx answer: the Mautic message of its body, and the server's
/// `X-Request-Id`, else `sent_request_id` (the one the request carried, if any).
pub(crate) fn api_error(response: &http::Response<Bytes>, sent_request_id: Option<&str>) -> Error {
    let request_id = response
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .or(sent_request_id)
        .map(str::to_owned);
    Error::Api {
        status: response.status(),
        message: mautic_message(response.body()),
        request_id,
        body: response.body().clone(),
        attempts: Attempt::of_response(response),
    }
}

fn parse<O: Operation>(status: http::StatusCode, headers: &http::HeaderMap, body: &[u8]) -> Error {
    match O::parse_response(status, headers, body) {
        Ok(_) => Error::Api {
            status,
            message: None,
            request_id: None,
            body: Bytes::copy_from_slice(body),
            attempts: 1,
        },
        Err(e) => with_mautic_message(Error::from(e)),
    }
}

/// Fills the message of an API error from a Mautic-style error body.
pub(crate) fn with_mautic_message(err: Error) -> Error {
    match err {
        Error::Api {
            status,
            message: None,
            request_id,
            body,
            attempts,
        } => Error::Api {
            status,
            message: mautic_message(&body),
            request_id,
            body,
            attempts,
        },
        other => other,
    }
}

/// The message of `{"errors":[{"message": …}]}`, `{"error":{"message": …}}` or
/// `{"error": "…"}`.
fn mautic_message(body: &[u8]) -> Option<String> {
    let doc: Value = serde_json::from_slice(body).ok()?;
    let text = |v: &Value| v.as_str().filter(|s| !s.is_empty()).map(str::to_owned);
    if let Some(errors) = doc.get("errors").and_then(Value::as_array) {
        let messages: Vec<String> = errors
            .iter()
            .filter_map(|e| e.get("message").and_then(text))
            .collect();
        if !messages.is_empty() {
            return Some(messages.join("; "));
        }
    }
    match doc.get("error")? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        obj @ Value::Object(_) => obj.get("message").and_then(text),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mautic_error_messages() {
        assert_eq!(
            mautic_message(br#"{"errors":[{"code":404,"message":"Item was not found."}]}"#)
                .as_deref(),
            Some("Item was not found.")
        );
        assert_eq!(
            mautic_message(br#"{"errors":[{"message":"a"},{"message":"b"}]}"#).as_deref(),
            Some("a; b")
        );
        assert_eq!(
            mautic_message(br#"{"error":{"code":401,"message":"bad key"}}"#).as_deref(),
            Some("bad key")
        );
        assert_eq!(
            mautic_message(br#"{"error":"nope"}"#).as_deref(),
            Some("nope")
        );
        assert_eq!(mautic_message(b"<html>"), None);
        assert_eq!(mautic_message(br#"{"errors":[]}"#), None);
    }
}
