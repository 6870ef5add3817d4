//! An emulator of eSauti: the Event Injection endpoint and the Mautic-style
//! REST API's contacts, on one loopback listener.
//!
//! [`EsautiServer::start`] binds `127.0.0.1` on an ephemeral port and serves
//!
//! * `POST {events_url}/v1/inbound/event`: authenticated by
//!   `X-eSauti-Api-Key` or `Authorization: Bearer …`; when an HMAC secret is
//!   configured (the default), signed with `X-eSauti-Timestamp` and
//!   `X-eSauti-Signature: sha256=<hex>` and checked by
//!   [`flagwire_webhooks::EsautiVerifier`] (401 on a bad, missing or stale
//!   signature). An `Idempotency-Key` header is required (400). The body
//!   must be a JSON object with a string `type` (400); registered types must
//!   carry their required properties (422, listing the missing paths, by the
//!   rule of [`flagwire_core::esauti::validate`]: absent, `null` and `""` are
//!   missing, `0` and `false` are not); then it must decode as an
//!   [`EventEnvelope`](flagwire_core::esauti::EventEnvelope) (400 naming the
//!   failing field). The first accepted request of a key answers `202
//!   {"received":true,"event_id":"…","status":"accepted","duplicate":false}`;
//!   later ones answer `200` with the same `event_id` and `"duplicate":true`
//!   and are only counted ([`ReceivedEvent::deliveries`]). Errors are
//!   `{"error":{"code":…,"message":…}}`.
//! * `{rest_url}/contacts…` (`rest_url` ends in `/api`), same credentials,
//!   never signed: list (`start`, `limit`, `search`, `orderBy`,
//!   `orderByDir`), get, `new`, `edit` (PATCH merges, 404 if absent; PUT
//!   replaces or creates), `delete`. Every other operation of the eSauti REST
//!   description answers 501; unknown paths 404. Errors are
//!   `{"errors":[{"code":…,"message":…}]}`.
//!
//! ```
//! use flagwire_mock::esauti::{EsautiServer, DEFAULT_API_KEY};
//! use flagwire_mock::Fault;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), flagwire_mock::MockError> {
//! let server = EsautiServer::builder().api_key("esk_test").start().await?;
//! assert!(server.rest_url().ends_with("/api"));
//! assert_eq!(server.api_key(), "esk_test");
//! assert_ne!(server.api_key(), DEFAULT_API_KEY);
//!
//! // The next event request gets a 503 with `Retry-After: 1`.
//! server.inject(Fault::status(503).with_retry_after("1"));
//! assert_eq!(server.pending_faults(), 1);
//!
//! server.add_contact(serde_json::json!({"email": "ann@example.com"}))?;
//! assert_eq!(server.contacts()[0]["fields"]["all"]["email"], "ann@example.com");
//! server.stop().await;
//! # Ok(())
//! # }
//! ```
//!
//! Requests to `/api/…` are recorded and matched by fault scripts as
//! [`Host::Rest`], every other path (the events route) as [`Host::Capture`].

mod blocking;
mod contacts;
mod events;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use flagwire_webhooks::EsautiVerifier;

use crate::body::MockBody;
use crate::error::MockError;
use crate::faults::{Fault, Faults, Host, lock};
use crate::record::{RecordedRequest, Recorder};
use crate::server::{DropConnection, constant_time_eq, finish, intake, record};
use crate::util::Query;

pub use blocking::BlockingEsautiServer;
pub use events::ReceivedEvent;

/// The `X-eSauti-Api-Key` accepted unless [`EsautiServerBuilder::api_key`]
/// replaces it.
pub const DEFAULT_API_KEY: &str = "esk_dev_mock";

/// The `Authorization: Bearer` token accepted unless
/// [`EsautiServerBuilder::bearer_token`] replaces it.
pub const DEFAULT_BEARER_TOKEN: &str = "est_dev_mock";

/// The HMAC secret event requests must be signed with unless
/// [`EsautiServerBuilder::hmac_secret`] changes it.
pub const DEFAULT_HMAC_SECRET: &str = "esauti-dev-secret";

/// The path of the Event Injection endpoint.
pub const EVENTS_PATH: &str = "/v1/inbound/event";

/// The path prefix of the REST API.
const REST_PREFIX: &str = "/api";

/// Default tolerance for signed timestamps.
const DEFAULT_SKEW: Duration = Duration::from_secs(300);

/// The in-memory state: events and contacts.
#[derive(Debug, Default)]
struct State {
    events: events::EventLog,
    contacts: contacts::Contacts,
}

/// Everything the listener and the handle share.
struct Shared {
    api_key: String,
    bearer_token: String,
    hmac_secret: Option<String>,
    verifier: Option<EsautiVerifier>,
    faults: Faults,
    recorder: Recorder,
    events_down: AtomicBool,
    state: Mutex<State>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("signed", &self.verifier.is_some())
            .field("events_down", &self.events_down.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Shared {
    /// Whether the request carries the API key or the bearer token.
    fn authorized(&self, headers: &HeaderMap) -> bool {
        let key_ok = headers
            .get_all("x-esauti-api-key")
            .iter()
            .any(|v| constant_time_eq(v.as_bytes(), self.api_key.as_bytes()));
        let bearer_ok = headers
            .get_all(http::header::AUTHORIZATION)
            .iter()
            .any(|v| {
                let v = v.as_bytes();
                v.len() > 7
                    && v[..7].eq_ignore_ascii_case(b"bearer ")
                    && constant_time_eq(&v[7..], self.bearer_token.as_bytes())
            });
        key_ok || bearer_ok
    }
}

/// What a route produced.
#[derive(Debug)]
struct Answer {
    status: StatusCode,
    body: Bytes,
    operation: Option<&'static str>,
    allow: Option<String>,
}

impl Answer {
    fn json(status: StatusCode, body: &Value, operation: Option<&'static str>) -> Answer {
        Answer {
            status,
            body: Bytes::from(serde_json::to_vec(body).unwrap_or_default()),
            operation,
            allow: None,
        }
    }
}

/// `{"error":{"code":…,"message":…}}`, the events route's error shape.
fn event_error(status: StatusCode, message: &str) -> Value {
    json!({"error": {"code": status.as_u16(), "message": message}})
}

/// `{"errors":[{"code":…,"message":…}]}`, the REST API's error shape.
fn rest_error(status: StatusCode, message: &str) -> Value {
    json!({"errors": [{"code": status.as_u16(), "message": message}]})
}

/// Which listener role a path belongs to.
fn host_of(path: &str) -> Host {
    match path.strip_prefix(REST_PREFIX) {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => Host::Rest,
        _ => Host::Capture,
    }
}

/// The error body of `status` in the shape of `host`.
fn error_for(host: Host, status: StatusCode, message: &str) -> Bytes {
    let v = match host {
        Host::Rest => rest_error(status, message),
        _ => event_error(status, message),
    };
    Bytes::from(serde_json::to_vec(&v).unwrap_or_default())
}

async fn handle(
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<MockBody>, DropConnection> {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path();
    let host = host_of(path);
    let fault = shared.faults.next(host, &parts.method, path);
    let (body, post) = match intake(
        &shared.recorder,
        host,
        &parts,
        body,
        fault,
        |status, msg| error_for(host, status, msg),
    )
    .await?
    {
        Ok(proceed) => proceed,
        Err(resp) => return Ok(resp),
    };

    let answer = match host {
        Host::Rest => {
            let query = Query::parse(parts.uri.query());
            contacts::route(&shared, &parts, &query, &body)
        }
        _ => events::route(&shared, &parts, &body),
    };
    record(
        &shared.recorder,
        host,
        &parts,
        &body,
        answer.status.as_u16(),
        answer.operation,
    );
    let mut resp = finish(post, answer.status, answer.body);
    if let Some(allow) = answer.allow.and_then(|a| HeaderValue::from_str(&a).ok()) {
        resp.headers_mut().insert(http::header::ALLOW, allow);
    }
    Ok(resp)
}

/// Builder for an [`EsautiServer`].
#[derive(Clone)]
#[must_use]
pub struct EsautiServerBuilder {
    api_key: String,
    bearer_token: String,
    hmac_secret: Option<String>,
    max_clock_skew: Duration,
    record_capacity: usize,
    ip: IpAddr,
    port: u16,
}

impl std::fmt::Debug for EsautiServerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EsautiServerBuilder")
            .field("api_key", &crate::REDACTED)
            .field("bearer_token", &crate::REDACTED)
            .field(
                "hmac_secret",
                &self.hmac_secret.as_ref().map(|_| crate::REDACTED),
            )
            .field("max_clock_skew", &self.max_clock_skew)
            .field("record_capacity", &self.record_capacity)
            .field("ip", &self.ip)
            .field("port", &self.port)
            .finish()
    }
}

impl Default for EsautiServerBuilder {
    fn default() -> Self {
        EsautiServerBuilder {
            api_key: DEFAULT_API_KEY.to_owned(),
            bearer_token: DEFAULT_BEARER_TOKEN.to_owned(),
            hmac_secret: Some(DEFAULT_HMAC_SECRET.to_owned()),
            max_clock_skew: DEFAULT_SKEW,
            record_capacity: 10_000,
            ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
        }
    }
}

impl EsautiServerBuilder {
    /// The accepted `X-eSauti-Api-Key` (replaces [`DEFAULT_API_KEY`]).
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = key.into();
        self
    }

    /// The accepted `Authorization: Bearer` token (replaces
    /// [`DEFAULT_BEARER_TOKEN`]).
    pub fn bearer_token(mut self, token: impl Into<String>) -> Self {
        self.bearer_token = token.into();
        self
    }

    /// The secret event requests must be signed with; `None` accepts
    /// unsigned events (and ignores signature headers). Default:
    /// [`DEFAULT_HMAC_SECRET`].
    pub fn hmac_secret(mut self, secret: Option<String>) -> Self {
        self.hmac_secret = secret;
        self
    }

    /// How far a signed `X-eSauti-Timestamp` may be from the server's clock,
    /// in either direction (whole seconds; default 300 s). Further away: 401.
    pub fn max_clock_skew(mut self, skew: Duration) -> Self {
        self.max_clock_skew = skew;
        self
    }

    /// How many requests to keep for [`EsautiServer::requests`] (default
    /// 10,000; 0 disables recording).
    pub fn record_requests(mut self, capacity: usize) -> Self {
        self.record_capacity = capacity;
        self
    }

    /// The address to bind (default `127.0.0.1`).
    pub fn ip(mut self, ip: IpAddr) -> Self {
        self.ip = ip;
        self
    }

    /// The port to bind (default 0: an ephemeral port).
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Binds the listener and starts serving on the current Tokio runtime.
    ///
    /// # Errors
    ///
    /// [`MockError::InvalidConfig`] for an empty API key, bearer token or
    /// HMAC secret; [`MockError::Io`] when the port cannot be bound.
    pub async fn start(self) -> Result<EsautiServer, MockError> {
        if self.api_key.is_empty() {
            return Err(MockError::InvalidConfig("the eSauti API key is empty"));
        }
        if self.bearer_token.is_empty() {
            return Err(MockError::InvalidConfig("the eSauti bearer token is empty"));
        }
        let verifier = match &self.hmac_secret {
            None => None,
            Some(secret) if secret.is_empty() => {
                return Err(MockError::InvalidConfig("the eSauti HMAC secret is empty"));
            }
            Some(secret) => Some(
                EsautiVerifier::builder()
                    .secret(secret.as_str())
                    .tolerance(self.max_clock_skew)
                    .build()
                    .map_err(|_| MockError::InvalidConfig("the eSauti HMAC secret is unusable"))?,
            ),
        };
        let shared = Arc::new(Shared {
            api_key: self.api_key,
            bearer_token: self.bearer_token,
            hmac_secret: self.hmac_secret,
            verifier,
            faults: Faults::default(),
            recorder: Recorder::new(self.record_capacity),
            events_down: AtomicBool::new(false),
            state: Mutex::new(State::default()),
        });
        let listener = TcpListener::bind(SocketAddr::new(self.ip, self.port)).await?;
        let addr = listener.local_addr()?;
        let (shutdown, shutdown_rx) = watch::channel(false);
        let task = tokio::spawn(crate::server::serve(listener, shutdown_rx, {
            let shared = shared.clone();
            move |_remote, req| handle(shared.clone(), req)
        }));
        tracing::debug!(%addr, "eSauti mock server started");
        Ok(EsautiServer {
            shared,
            addr,
            shutdown,
            task: Some(task),
        })
    }

    /// Starts the server on a runtime of its own, for synchronous code.
    ///
    /// # Errors
    ///
    /// As [`start`](Self::start), plus [`MockError::Io`] if the runtime
    /// cannot be created.
    pub fn start_blocking(self) -> Result<BlockingEsautiServer, MockError> {
        BlockingEsautiServer::start(self)
    }
}

/// A running eSauti emulator: the events endpoint and the REST API on one
/// loopback listener.
///
/// Dropping the handle stops accepting connections without waiting; call
/// [`stop`](Self::stop) to wait for in-flight requests.
pub struct EsautiServer {
    shared: Arc<Shared>,
    addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for EsautiServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EsautiServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl EsautiServer {
    /// A builder with the defaults.
    pub fn builder() -> EsautiServerBuilder {
        EsautiServerBuilder::default()
    }

    /// Starts a server with the defaults on the current Tokio runtime.
    ///
    /// # Errors
    ///
    /// [`MockError::Io`] when the port cannot be bound.
    pub async fn start() -> Result<EsautiServer, MockError> {
        Self::builder().start().await
    }

    /// Starts a server with the defaults on a runtime of its own.
    ///
    /// # Errors
    ///
    /// As [`EsautiServerBuilder::start_blocking`].
    pub fn start_blocking() -> Result<BlockingEsautiServer, MockError> {
        Self::builder().start_blocking()
    }

    /// The REST API's base URL, `http://127.0.0.1:PORT/api` (no trailing
    /// slash).
    pub fn rest_url(&self) -> String {
        format!("http://{}{REST_PREFIX}", self.addr)
    }

    /// The Event Injection base URL, `http://127.0.0.1:PORT`; events go to
    /// `POST {events_url}/v1/inbound/event`.
    pub fn events_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The listener's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The accepted `X-eSauti-Api-Key`.
    pub fn api_key(&self) -> &str {
        &self.shared.api_key
    }

    /// The accepted bearer token.
    pub fn bearer_token(&self) -> &str {
        &self.shared.bearer_token
    }

    /// The HMAC secret events must be signed with, if any.
    pub fn hmac_secret(&self) -> Option<&str> {
        self.shared.hmac_secret.as_deref()
    }

    /// Stops accepting connections, lets in-flight requests finish (up to
    /// 5 s) and waits for the server task.
    pub async fn stop(mut self) {
        let _ = self.shutdown.send(true);
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(6), task).await;
        }
    }

    // ----- faults and outages -----------------------------------------------

    /// Appends `fault` to the script of the events route (`POST
    /// /v1/inbound/event`): each event request consumes one scripted fault,
    /// oldest first, before any other check; then the route behaves
    /// normally again.
    pub fn inject(&self, fault: Fault) {
        self.inject_events([fault]);
    }

    /// Appends several faults to the script of the events route.
    pub fn inject_events(&self, faults: impl IntoIterator<Item = Fault>) {
        // The pattern is a constant and valid, so this cannot fail.
        let _ = self
            .shared
            .faults
            .push(Host::Capture, Method::POST, EVENTS_PATH, faults);
    }

    /// Appends `faults` to the script of any route, as
    /// [`MockServer::inject`](crate::MockServer::inject) does: `host` is
    /// [`Host::Rest`] for paths under `/api` and [`Host::Capture`] for the
    /// events route; `pattern` is the full path as received (e.g.
    /// `/api/contacts/{id}`), where `{name}` or `*` match one segment.
    ///
    /// # Errors
    ///
    /// [`MockError::InvalidPattern`] for a malformed pattern.
    pub fn inject_route(
        &self,
        host: Host,
        method: Method,
        pattern: &str,
        faults: impl IntoIterator<Item = Fault>,
    ) -> Result<(), MockError> {
        self.shared.faults.push(host, method, pattern, faults)
    }

    /// Faults scripted but not consumed yet.
    pub fn pending_faults(&self) -> usize {
        self.shared.faults.pending()
    }

    /// Removes every fault script.
    pub fn clear_faults(&self) {
        self.shared.faults.clear();
    }

    /// Starts (`true`) or ends (`false`) an outage of the events route:
    /// meanwhile every event request not consumed by a fault script gets
    /// `503`, without `Retry-After`. The REST API is not affected.
    pub fn set_events_down(&self, down: bool) {
        self.shared.events_down.store(down, Ordering::SeqCst);
    }

    /// Whether an outage of the events route is in progress.
    pub fn events_down(&self) -> bool {
        self.shared.events_down.load(Ordering::SeqCst)
    }

    // ----- inspection -------------------------------------------------------

    /// Accepted events, oldest first: one per distinct `Idempotency-Key`.
    pub fn events(&self) -> Vec<ReceivedEvent> {
        lock(&self.shared.state).events.all()
    }

    /// Every request received (all attempts, faults and rejections
    /// included), oldest first, secrets redacted.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.recorder.all()
    }

    /// Forgets recorded requests.
    pub fn clear_requests(&self) {
        self.shared.recorder.clear();
    }

    /// Stored contacts in ID order, as the REST API renders them.
    pub fn contacts(&self) -> Vec<Value> {
        lock(&self.shared.state).contacts.all()
    }

    /// Creates a contact from its fields (a JSON object such as
    /// `{"email": "ann@example.com", "firstname": "Ann"}`), as `POST
    /// /api/contacts/new` does, and returns it.
    ///
    /// # Errors
    ///
    /// [`MockError::Seed`] if the fields are invalid.
    pub fn add_contact(&self, fields: Value) -> Result<Value, MockError> {
        lock(&self.shared.state)
            .contacts
            .create_from(fields)
            .map_err(MockError::Seed)
    }

    /// Empties the events, contacts, request log and fault scripts and ends
    /// an outage, keeping the configuration.
    pub fn reset(&self) {
        *lock(&self.shared.state) = State::default();
        self.shared.recorder.clear();
        self.shared.faults.clear();
        self.set_events_down(false);
    }
}

impl Drop for EsautiServer {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_by_path() {
        assert_eq!(host_of("/api"), Host::Rest);
        assert_eq!(host_of("/api/contacts"), Host::Rest);
        assert_eq!(host_of("/apix"), Host::Capture);
        assert_eq!(host_of(EVENTS_PATH), Host::Capture);
        assert_eq!(host_of("/"), Host::Capture);
    }

    #[test]
    fn credentials() {
        let shared = Shared {
            api_key: "k1".into(),
            bearer_token: "t1".into(),
            hmac_secret: None,
            verifier: None,
            faults: Faults::default(),
            recorder: Recorder::new(0),
            events_down: AtomicBool::new(false),
            state: Mutex::new(State::default()),
        };
        let with = |name: &'static str, value: &'static str| {
            let mut h = HeaderMap::new();
            h.insert(name, HeaderValue::from_static(value));
            shared.authorized(&h)
        };
        assert!(with("x-esauti-api-key", "k1"));
        assert!(!with("x-esauti-api-key", "k2"));
        assert!(!with("x-esauti-api-key", "t1"));
        assert!(with("authorization", "Bearer t1"));
        assert!(with("authorization", "bearer t1"));
        assert!(!with("authorization", "Bearer k1"));
        assert!(!with("authorization", "Bearer "));
        assert!(!with("authorization", "Basic t1"));
        assert!(!shared.authorized(&HeaderMap::new()));
        assert!(format!("{shared:?}").contains("signed: false"));
    }
}

/// Property tests: arbitrary requests never panic, and every answer has the
/// route's error shape or a documented success.
#[cfg(test)]
mod prop_tests {
    use proptest::prelude::*;
    use serde_json::Map;

    use super::*;

    fn shared(secret: Option<&str>) -> Shared {
        Shared {
            api_key: DEFAULT_API_KEY.into(),
            bearer_token: DEFAULT_BEARER_TOKEN.into(),
            hmac_secret: secret.map(str::to_owned),
            verifier: secret.map(|s| EsautiVerifier::new(s).unwrap()),
            faults: Faults::default(),
            recorder: Recorder::new(0),
            events_down: AtomicBool::new(false),
            state: Mutex::new(State::default()),
        }
    }

    fn parts(method: &str, uri: &str, idempotency_key: Option<&str>) -> http::request::Parts {
        let mut req = Request::builder()
            .method(method)
            .uri(uri)
            .header("x-esauti-api-key", DEFAULT_API_KEY);
        if let Some(k) = idempotency_key {
            req = req.header("idempotency-key", k);
        }
        req.body(()).unwrap().into_parts().0
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            "[a-z@. ]{0,8}".prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map(
                    prop_oneof![
                        Just("type".to_owned()),
                        Just("occurred_at".to_owned()),
                        Just("source".to_owned()),
                        Just("customer".to_owned()),
                        Just("entity".to_owned()),
                        Just("properties".to_owned()),
                        Just("id".to_owned()),
                        Just("email".to_owned()),
                        "[a-z]{1,6}",
                    ],
                    inner,
                    0..6
                )
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
            ]
        })
    }

    fn event_type() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("order.created".to_owned()),
            Just("customer.created".to_owned()),
            Just("form.submitted".to_owned()),
            "[a-z]{1,5}\\.[a-z]{1,5}",
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn event_route_never_panics(
            mut body in json_value(),
            ty in prop::option::of(event_type()),
            raw in prop::option::of(prop::collection::vec(any::<u8>(), 0..64)),
            key in prop::option::of("[ -~]{0,300}"),
        ) {
            if let (Some(ty), Value::Object(map)) = (ty, &mut body) {
                map.insert("type".into(), Value::String(ty));
            }
            let bytes = match raw {
                Some(raw) => Bytes::from(raw),
                None => Bytes::from(serde_json::to_vec(&body).unwrap()),
            };
            let shared = shared(None);
            let a = events::route(&shared, &parts("POST", EVENTS_PATH, key.as_deref()), &bytes);
            let v: Value = serde_json::from_slice(&a.body).unwrap();
            match a.status.as_u16() {
                202 | 200 => prop_assert_eq!(&v["received"], &Value::Bool(true)),
                400 | 422 => prop_assert_eq!(&v["error"]["code"], &Value::from(a.status.as_u16())),
                other => prop_assert!(false, "unexpected status {}", other),
            }
            if a.status == StatusCode::UNPROCESSABLE_ENTITY {
                prop_assert!(!v["error"]["missing"].as_array().unwrap().is_empty());
            }
        }

        #[test]
        fn signed_bodies_verify_and_tampered_ones_do_not(
            body in prop::collection::vec(any::<u8>(), 0..128),
            flip in any::<prop::sample::Index>(),
        ) {
            let shared = shared(Some("s3cret"));
            let ts = time::OffsetDateTime::now_utc().unix_timestamp();
            let signed = flagwire_webhooks::Signer::<flagwire_webhooks::Esauti>::new("s3cret")
                .unwrap()
                .sign("POST", EVENTS_PATH, ts, &body);
            let mut p = parts("POST", EVENTS_PATH, Some("k"));
            for (name, value) in signed.iter() {
                p.headers.insert(name, HeaderValue::from_str(value).unwrap());
            }
            let a = events::route(&shared, &p, &Bytes::from(body.clone()));
            prop_assert_ne!(a.status, StatusCode::UNAUTHORIZED);
            if !body.is_empty() {
                let mut tampered = body.clone();
                let i = flip.index(tampered.len());
                tampered[i] ^= 0x01;
                let a = events::route(&shared, &p, &Bytes::from(tampered));
                prop_assert_eq!(a.status, StatusCode::UNAUTHORIZED);
            }
        }

        #[test]
        fn rest_routes_never_panic(
            method in prop_oneof![Just("GET"), Just("POST"), Just("PATCH"), Just("PUT"), Just("DELETE")],
            path in prop_oneof![
                Just("/api/contacts".to_owned()),
                Just("/api/contacts/new".to_owned()),
                "/api/contacts/-?[0-9]{1,20}(/edit|/delete)?",
                "/api/[a-z]{1,8}(/[a-z0-9]{1,4}){0,3}",
            ],
            query in "(start|limit|search|orderBy|orderByDir)=[A-Za-z0-9%:-]{0,6}(&(start|limit|search|orderBy|orderByDir)=[A-Za-z0-9%:-]{0,6}){0,3}",
            body in json_value(),
        ) {
            let shared = shared(None);
            let uri = format!("{path}?{query}");
            let p = parts(method, &uri, None);
            let q = Query::parse(p.uri.query());
            let bytes = Bytes::from(serde_json::to_vec(&body).unwrap());
            let a = contacts::route(&shared, &p, &q, &bytes);
            let v: Value = serde_json::from_slice(&a.body).unwrap();
            if a.status.is_success() {
                prop_assert!(v.get("contact").is_some() || v.get("total").is_some(), "{}", v);
            } else {
                prop_assert_eq!(&v["errors"][0]["code"], &Value::from(a.status.as_u16()));
            }
        }
    }
}
