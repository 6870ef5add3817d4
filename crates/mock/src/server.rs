//! The server: listeners, connection handling, request pipeline and the
//! public handle.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::body::MockBody;
use crate::error::MockError;
use crate::faults::{Fault, Faults, Host};
use crate::record::{RecordedRequest, Recorder, redact_body, redact_headers};
use crate::seed::Seed;
use crate::store::{Kind, Store};
use crate::util::{ApiFailure, HandlerResult, Query, error_body};
use crate::webhook::{Deliveries, Outgoing, WebhookDelivery};

/// Largest request body accepted (larger bodies get 413).
const MAX_BODY: usize = 16 * 1024 * 1024;

/// The default API key accepted when none is configured.
pub const DEFAULT_API_KEY: &str = "sch_dev_mock";

/// Everything shared by the listeners and the handle.
pub(crate) struct Inner {
    store: RwLock<Store>,
    pub(crate) api_keys: Vec<String>,
    pub(crate) faults: Faults,
    pub(crate) recorder: Recorder,
    pub(crate) capture_batch_limit: usize,
    /// Added to every capture-host answer.
    pub(crate) capture_latency: Duration,
    webhook_tx: mpsc::UnboundedSender<Outgoing>,
    pub(crate) deliveries: Arc<Deliveries>,
    pub(crate) datastream: crate::datastream::DataStream,
    /// The replicator emulation writing to Redis, when started.
    #[cfg(feature = "redis")]
    pub(crate) replicator: crate::replicator::Slot,
}

impl Inner {
    pub(crate) fn read(&self) -> RwLockReadGuard<'_, Store> {
        self.store.read().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn write(&self) -> RwLockWriteGuard<'_, Store> {
        self.store.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` under the write lock, pushes the changes it made to
    /// DataStream subscribers, then queues webhook deliveries for them.
    pub(crate) fn mutate<T>(&self, f: impl FnOnce(&mut Store) -> T) -> T {
        let mut store = self.write();
        let out = f(&mut store);
        let replaced = store.refresh();
        self.datastream.publish(&store, &replaced);
        #[cfg(feature = "redis")]
        self.replicator.publish(&store, &replaced);
        let notices = store.take_notices();
        let mut outgoing = Vec::new();
        for n in &notices {
            let envelope = store.envelope(n);
            let body = Bytes::from(serde_json::to_vec(&envelope).unwrap_or_default());
            for (webhook_id, url, secret) in store.subscribers(n.action) {
                outgoing.push(Outgoing {
                    event_id: store.next_id("whe"),
                    webhook_id,
                    url,
                    secret,
                    action: n.action,
                    body: body.clone(),
                });
            }
        }
        drop(store);
        for o in outgoing {
            self.deliveries.queued(&o);
            // The delivery task only stops with the server.
            let _ = self.webhook_tx.send(o);
        }
        out
    }

    /// Queues one delivery of `notice` to the webhook `id` only (regardless
    /// of its subscriptions); false if there is no such webhook.
    pub(crate) fn send_to(&self, id: &str, notice: crate::store::Notice) -> bool {
        let mut store = self.write();
        if !store.webhooks.contains_key(id) {
            return false;
        }
        let event_id = store.next_id("whe");
        let Some(w) = store.webhooks.get(id) else {
            return false;
        };
        let envelope = store.envelope(&notice);
        let outgoing = Outgoing {
            event_id,
            webhook_id: w.id.clone(),
            url: w.url.clone(),
            secret: w.secret.clone(),
            action: notice.action,
            body: Bytes::from(serde_json::to_vec(&envelope).unwrap_or_default()),
        };
        drop(store);
        self.deliveries.queued(&outgoing);
        let _ = self.webhook_tx.send(outgoing);
        true
    }

    pub(crate) fn key_accepted(&self, key: &str) -> bool {
        self.api_keys
            .iter()
            .any(|k| constant_time_eq(k.as_bytes(), key.as_bytes()))
    }

    pub(crate) fn authorized(&self, headers: &HeaderMap) -> bool {
        headers
            .get("x-schematic-api-key")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|k| self.key_accepted(k))
    }
}

impl Inner {
    /// State without listeners, for in-process handler tests.
    #[cfg(test)]
    pub(crate) fn for_tests() -> Arc<Inner> {
        let (webhook_tx, _rx) = mpsc::unbounded_channel();
        Arc::new(Inner {
            store: RwLock::new(Store::new(None)),
            api_keys: vec![DEFAULT_API_KEY.to_owned()],
            faults: Faults::default(),
            recorder: Recorder::new(0),
            capture_batch_limit: 100,
            capture_latency: Duration::ZERO,
            webhook_tx,
            deliveries: Arc::new(Deliveries::default()),
            datastream: crate::datastream::DataStream::new(&Default::default()),
            #[cfg(feature = "redis")]
            replicator: Default::default(),
        })
    }
}

// Debug output never shows API keys or webhook secrets.

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inner")
            .field("api_keys", &self.api_keys.len())
            .field("capture_batch_limit", &self.capture_batch_limit)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for MockServerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockServerBuilder")
            .field("api_keys", &self.api_keys.len())
            .field("seeds", &self.seeds.len())
            .field("capture_batch_limit", &self.capture_batch_limit)
            .field("capture_latency", &self.capture_latency)
            .field(
                "webhook_secret",
                &self.webhook_secret.as_ref().map(|_| crate::REDACTED),
            )
            .field("ip", &self.ip)
            .field("rest_port", &self.rest_port)
            .field("capture_port", &self.capture_port)
            .field("record_capacity", &self.record_capacity)
            .field("max_events", &self.max_events)
            .field("webhook_retries", &self.webhook_retries)
            .field("webhook_backoff", &self.webhook_backoff)
            .field("datastream", &self.datastream)
            .finish()
    }
}

impl std::fmt::Debug for MockServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockServer")
            .field("rest_addr", &self.rest_addr)
            .field("capture_addr", &self.capture_addr)
            .finish_non_exhaustive()
    }
}

/// Compares two secrets in time that depends only on their lengths.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A request as seen by handlers.
#[derive(Debug)]
pub(crate) struct Ctx<'a> {
    pub(crate) inner: &'a Inner,
    pub(crate) method: &'a Method,
    pub(crate) path: &'a str,
    pub(crate) query: Query,
    pub(crate) headers: &'a HeaderMap,
    pub(crate) body: &'a Bytes,
    pub(crate) remote: SocketAddr,
}

/// What a dispatcher produced: the handler result and the operation name.
pub(crate) struct Dispatched {
    pub(crate) result: HandlerResult,
    pub(crate) operation: Option<&'static str>,
}

/// Builder for a [`MockServer`].
#[derive(Clone)]
#[must_use]
pub struct MockServerBuilder {
    api_keys: Vec<String>,
    seeds: Vec<Seed>,
    capture_batch_limit: usize,
    capture_latency: Duration,
    webhook_secret: Option<String>,
    ip: IpAddr,
    rest_port: u16,
    capture_port: u16,
    record_capacity: usize,
    max_events: usize,
    webhook_retries: u32,
    webhook_backoff: Duration,
    pub(crate) datastream: crate::datastream::Config,
}

impl Default for MockServerBuilder {
    fn default() -> Self {
        MockServerBuilder {
            api_keys: Vec::new(),
            seeds: Vec::new(),
            capture_batch_limit: 100,
            capture_latency: Duration::ZERO,
            webhook_secret: None,
            ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            rest_port: 0,
            capture_port: 0,
            record_capacity: 10_000,
            max_events: 100_000,
            webhook_retries: 2,
            webhook_backoff: Duration::from_millis(50),
            datastream: crate::datastream::Config::default(),
        }
    }
}

impl MockServerBuilder {
    /// Accepts this API key (may be called several times). Without any,
    /// [`DEFAULT_API_KEY`] is accepted.
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.api_keys.push(key.into());
        self
    }

    /// Loads seed data before the server starts answering.
    pub fn seed(mut self, seed: Seed) -> Self {
        self.seeds.push(seed);
        self
    }

    /// Maximum events per capture `/batch` request (default 100, as the
    /// platform enforces).
    pub fn capture_batch_limit(mut self, max: usize) -> Self {
        self.capture_batch_limit = max;
        self
    }

    /// Delays every answer of the capture host by `latency` (default none),
    /// as a distant capture service would; requests are still handled
    /// concurrently. For delivery benchmarks.
    pub fn capture_latency(mut self, latency: Duration) -> Self {
        self.capture_latency = latency;
        self
    }

    /// The signing secret given to every webhook endpoint created (default: a
    /// random `whsec_…` string per endpoint).
    pub fn webhook_secret(mut self, secret: impl Into<String>) -> Self {
        self.webhook_secret = Some(secret.into());
        self
    }

    /// The address to bind (default `127.0.0.1`).
    pub fn ip(mut self, ip: IpAddr) -> Self {
        self.ip = ip;
        self
    }

    /// The REST API port (default 0: an ephemeral port).
    pub fn rest_port(mut self, port: u16) -> Self {
        self.rest_port = port;
        self
    }

    /// The capture host port (default 0: an ephemeral port).
    pub fn capture_port(mut self, port: u16) -> Self {
        self.capture_port = port;
        self
    }

    /// How many requests to keep for [`MockServer::requests`] (default
    /// 10,000; 0 disables recording).
    pub fn record_requests(mut self, capacity: usize) -> Self {
        self.record_capacity = capacity;
        self
    }

    /// How many received events to keep for [`MockServer::events`] and
    /// `GET /events` (default 100,000; the oldest are dropped first). Their
    /// effects on companies, users and metrics are kept regardless.
    pub fn max_events(mut self, max: usize) -> Self {
        self.max_events = max;
        self
    }

    /// Webhook delivery retries after a failed attempt (default 2) and the
    /// first backoff, doubled after each retry (default 50 ms).
    pub fn webhook_retries(mut self, retries: u32, backoff: Duration) -> Self {
        self.webhook_retries = retries;
        self.webhook_backoff = backoff;
        self
    }

    /// Binds both listeners and starts serving on the current Tokio runtime.
    ///
    /// # Errors
    ///
    /// [`MockError::Io`] when a port cannot be bound, [`MockError::Seed`] when
    /// seed data is invalid.
    pub async fn start(self) -> Result<MockServer, MockError> {
        let api_keys = if self.api_keys.is_empty() {
            vec![DEFAULT_API_KEY.to_owned()]
        } else {
            self.api_keys
        };
        let (webhook_tx, webhook_rx) = mpsc::unbounded_channel();
        let deliveries = Arc::new(Deliveries::default());
        let inner = Arc::new(Inner {
            store: RwLock::new({
                let mut store = Store::new(self.webhook_secret);
                store.max_events = self.max_events;
                store
            }),
            api_keys,
            faults: Faults::default(),
            recorder: Recorder::new(self.record_capacity),
            capture_batch_limit: self.capture_batch_limit,
            capture_latency: self.capture_latency,
            webhook_tx,
            deliveries: deliveries.clone(),
            datastream: crate::datastream::DataStream::new(&self.datastream),
            #[cfg(feature = "redis")]
            replicator: Default::default(),
        });
        for seed in &self.seeds {
            seed.apply(&inner)?;
        }
        let rest = TcpListener::bind(SocketAddr::new(self.ip, self.rest_port)).await?;
        let capture = TcpListener::bind(SocketAddr::new(self.ip, self.capture_port)).await?;
        let rest_addr = rest.local_addr()?;
        let capture_addr = capture.local_addr()?;
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let tasks = vec![
            tokio::spawn(serve(rest, shutdown_rx.clone(), {
                let inner = inner.clone();
                let shutdown = shutdown_rx.clone();
                move |remote, req| serve_rest(inner.clone(), shutdown.clone(), remote, req)
            })),
            tokio::spawn(serve(capture, shutdown_rx.clone(), {
                let inner = inner.clone();
                move |remote, req| handle(inner.clone(), Host::Capture, remote, req)
            })),
            tokio::spawn(crate::webhook::deliver(
                webhook_rx,
                deliveries,
                self.webhook_retries,
                self.webhook_backoff,
                shutdown_rx,
            )),
        ];
        tracing::debug!(%rest_addr, %capture_addr, "mock server started");
        Ok(MockServer {
            inner,
            rest_addr,
            capture_addr,
            shutdown: shutdown_tx,
            tasks,
        })
    }

    /// Starts the server on a runtime of its own, for synchronous code.
    ///
    /// # Errors
    ///
    /// As [`start`](Self::start), plus [`MockError::Io`] if the runtime cannot
    /// be created.
    pub fn start_blocking(self) -> Result<crate::BlockingMockServer, MockError> {
        crate::blocking::BlockingMockServer::start(self)
    }
}

/// A running emulator: a REST listener and an event-capture listener on
/// loopback, sharing one in-memory state.
///
/// Dropping the handle stops accepting connections without waiting; call
/// [`stop`](Self::stop) to wait for in-flight requests.
pub struct MockServer {
    pub(crate) inner: Arc<Inner>,
    rest_addr: SocketAddr,
    capture_addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl MockServer {
    /// A builder with the defaults.
    pub fn builder() -> MockServerBuilder {
        MockServerBuilder::default()
    }

    /// Starts a server with the defaults on the current Tokio runtime.
    ///
    /// # Errors
    ///
    /// [`MockError::Io`] when a port cannot be bound.
    pub async fn start() -> Result<MockServer, MockError> {
        Self::builder().start().await
    }

    /// Starts a server with the defaults on a runtime of its own.
    ///
    /// # Errors
    ///
    /// As [`MockServerBuilder::start_blocking`].
    pub fn start_blocking() -> Result<crate::BlockingMockServer, MockError> {
        Self::builder().start_blocking()
    }

    /// Base URL of the REST API, e.g. `http://127.0.0.1:41234` (no trailing
    /// slash).
    pub fn rest_url(&self) -> String {
        format!("http://{}", self.rest_addr)
    }

    /// Base URL of the event-capture host (POST `{capture_url}/batch`).
    pub fn capture_url(&self) -> String {
        format!("http://{}", self.capture_addr)
    }

    /// The REST listener's address.
    pub fn rest_addr(&self) -> SocketAddr {
        self.rest_addr
    }

    /// The capture listener's address.
    pub fn capture_addr(&self) -> SocketAddr {
        self.capture_addr
    }

    /// The first accepted API key.
    pub fn api_key(&self) -> &str {
        &self.inner.api_keys[0]
    }

    /// Every accepted API key.
    pub fn api_keys(&self) -> &[String] {
        &self.inner.api_keys
    }

    /// Stops accepting connections, lets in-flight requests finish (up to
    /// 5 s) and waits for the server tasks.
    pub async fn stop(mut self) {
        let _ = self.shutdown.send(true);
        for task in self.tasks.drain(..) {
            let _ = tokio::time::timeout(Duration::from_secs(6), task).await;
        }
    }

    // ----- fault injection --------------------------------------------------

    /// Appends `faults` to the script of one route. Each matching request
    /// consumes one fault; once the script is empty the route behaves
    /// normally. `pattern` is a path such as `/flags/{key}/check`, where
    /// `{name}` or `*` match any one segment.
    ///
    /// # Errors
    ///
    /// [`MockError::InvalidPattern`] for a malformed pattern.
    pub fn inject(
        &self,
        host: Host,
        method: Method,
        pattern: &str,
        faults: impl IntoIterator<Item = Fault>,
    ) -> Result<(), MockError> {
        self.inner.faults.push(host, method, pattern, faults)
    }

    /// Faults scripted but not consumed yet.
    pub fn pending_faults(&self) -> usize {
        self.inner.faults.pending()
    }

    /// Removes every fault script.
    pub fn clear_faults(&self) {
        self.inner.faults.clear();
    }

    // ----- inspection -------------------------------------------------------

    /// Requests received so far (bounded, oldest first), secrets removed.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.inner.recorder.all()
    }

    /// Forgets recorded requests.
    pub fn clear_requests(&self) {
        self.inner.recorder.clear();
    }

    /// Empties the state (companies, users, flags, features, webhooks,
    /// events and the webhook log), the request log and the fault scripts,
    /// keeping the configuration. Deliveries already queued still go out.
    /// Open DataStream connections stay open and are sent a `delete` for
    /// every company, user and flag they follow; the recorded DataStream
    /// handshakes and requests and pending upgrade refusals are cleared.
    pub fn reset(&self) {
        {
            let mut store = self.inner.write();
            let mut fresh = Store::new(store.webhook_secret.clone());
            fresh.max_events = store.max_events;
            let old = std::mem::replace(&mut *store, fresh);
            // DataStream subscribers see everything deleted.
            let replaced = old.into_replaced();
            self.inner.datastream.publish(&store, &replaced);
            #[cfg(feature = "redis")]
            self.inner.replicator.publish(&store, &replaced);
        }
        self.inner.datastream.clear_records();
        self.inner.recorder.clear();
        self.inner.faults.clear();
        self.inner.deliveries.clear();
    }

    /// Stored companies, newest first, as `CompanyDetailResponseData` JSON.
    pub fn companies(&self) -> Vec<Value> {
        self.entities(Kind::Company)
    }

    /// Stored users, newest first, as `UserDetailResponseData` JSON.
    pub fn users(&self) -> Vec<Value> {
        self.entities(Kind::User)
    }

    fn entities(&self, kind: Kind) -> Vec<Value> {
        let store = self.inner.read();
        store
            .entities(kind)
            .values()
            .rev()
            .map(|e| crate::render::entity_detail(&store, e))
            .collect()
    }

    /// The company owning key `key` = `value`.
    pub fn company_by_key(&self, key: &str, value: &str) -> Option<Value> {
        self.entity_by_key(Kind::Company, key, value)
    }

    /// The user owning key `key` = `value`.
    pub fn user_by_key(&self, key: &str, value: &str) -> Option<Value> {
        self.entity_by_key(Kind::User, key, value)
    }

    fn entity_by_key(&self, kind: Kind, key: &str, value: &str) -> Option<Value> {
        let store = self.inner.read();
        let id = store.find_by_key_pairs(kind, std::iter::once((key, value)))?;
        store
            .entity(kind, id)
            .map(|e| crate::render::entity_detail(&store, e))
    }

    /// Stored flags, oldest first, as `FlagDetailResponseData` JSON.
    pub fn flags(&self) -> Vec<Value> {
        let store = self.inner.read();
        store
            .flags
            .values()
            .map(|f| crate::render::flag_detail(&store, f))
            .collect()
    }

    /// The flag with this key, as `FlagDetailResponseData` JSON.
    pub fn flag_by_key(&self, key: &str) -> Option<Value> {
        let store = self.inner.read();
        store
            .flag_by_key(key)
            .map(|f| crate::render::flag_detail(&store, f))
    }

    /// Stored features, oldest first, as `FeatureDetailResponseData` JSON.
    pub fn features(&self) -> Vec<Value> {
        let store = self.inner.read();
        store
            .features
            .values()
            .map(|f| crate::render::feature_detail(&store, f))
            .collect()
    }

    /// Registered webhook endpoints, as `WebhookResponseData` JSON.
    pub fn webhooks(&self) -> Vec<Value> {
        let store = self.inner.read();
        store
            .webhooks
            .values()
            .map(crate::render::webhook)
            .collect()
    }

    /// Events received through `/events`, `/event-batch` and the capture
    /// host, oldest first (duplicates by idempotency key are not stored).
    pub fn events(&self) -> Vec<crate::ReceivedEvent> {
        let store = self.inner.read();
        store
            .events
            .iter()
            .map(crate::ReceivedEvent::from_stored)
            .collect()
    }

    /// Webhook delivery attempts made so far, oldest first.
    pub fn webhook_deliveries(&self) -> Vec<WebhookDelivery> {
        self.inner.deliveries.all()
    }

    /// Waits until at least `count` webhook deliveries have finished (all
    /// attempts), or `timeout` passes; returns the deliveries.
    pub async fn wait_for_deliveries(
        &self,
        count: usize,
        timeout: Duration,
    ) -> Vec<WebhookDelivery> {
        self.inner.deliveries.wait_for(count, timeout).await
    }

    // ----- seeding ----------------------------------------------------------

    /// Applies seed data (see [`Seed`] for the format).
    ///
    /// # Errors
    ///
    /// [`MockError::Seed`] naming the first invalid item.
    pub fn apply_seed(&self, seed: &Seed) -> Result<(), MockError> {
        seed.apply(&self.inner)
    }

    /// Upserts a company from an `UpsertCompanyRequestBody` JSON value and
    /// returns the stored company.
    ///
    /// # Errors
    ///
    /// [`MockError::Seed`] if the body is invalid.
    pub fn upsert_company(&self, body: Value) -> Result<Value, MockError> {
        crate::seed::upsert_company(&self.inner, body)
    }

    /// Upserts a user from an `UpsertUserRequestBody` JSON value and returns
    /// the stored user.
    ///
    /// # Errors
    ///
    /// [`MockError::Seed`] if the body is invalid.
    pub fn upsert_user(&self, body: Value) -> Result<Value, MockError> {
        crate::seed::upsert_user(&self.inner, body)
    }

    /// Creates a flag from a `CreateFlagRequestBody` JSON value (which may
    /// also carry `rules`, as in `UpdateFlagRulesRequestBody`) and returns it.
    ///
    /// # Errors
    ///
    /// [`MockError::Seed`] if the body is invalid.
    pub fn create_flag(&self, body: Value) -> Result<Value, MockError> {
        crate::seed::create_flag(&self.inner, body)
    }

    /// Replaces the rules of the flag with key `flag_key` (a JSON array of
    /// `CreateOrUpdateRuleRequestBody`) and returns the flag.
    ///
    /// # Errors
    ///
    /// [`MockError::Seed`] if the flag is missing or the rules are invalid.
    pub fn set_flag_rules(&self, flag_key: &str, rules: Value) -> Result<Value, MockError> {
        crate::seed::set_flag_rules(&self.inner, flag_key, rules)
    }

    /// Creates a feature from a `CreateFeatureRequestBody` JSON value and
    /// returns it.
    ///
    /// # Errors
    ///
    /// [`MockError::Seed`] if the body is invalid.
    pub fn create_feature(&self, body: Value) -> Result<Value, MockError> {
        crate::seed::create_feature(&self.inner, body)
    }

    /// Registers a webhook endpoint from a `CreateWebhookRequestBody` JSON
    /// value and returns it (including its `secret`).
    ///
    /// # Errors
    ///
    /// [`MockError::Seed`] if the body is invalid.
    pub fn create_webhook(&self, body: Value) -> Result<Value, MockError> {
        crate::seed::create_webhook(&self.inner, body)
    }

    /// Records tracked usage for the company owning `company_keys`, exactly
    /// as a track event would.
    ///
    /// # Errors
    ///
    /// [`MockError::Seed`] if no company owns the keys.
    pub fn track(
        &self,
        company_keys: &[(&str, &str)],
        event: &str,
        quantity: i64,
    ) -> Result<(), MockError> {
        crate::seed::track(&self.inner, company_keys, event, quantity)
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}

/// Serves one listener until shutdown, answering every request with
/// `handler(remote address, request)`.
pub(crate) async fn serve<H, F>(
    listener: TcpListener,
    mut shutdown: watch::Receiver<bool>,
    handler: H,
) where
    H: Fn(SocketAddr, Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Result<Response<MockBody>, DropConnection>> + Send + 'static,
{
    let graceful = GracefulShutdown::new();
    let builder = auto::Builder::new(TokioExecutor::new());
    loop {
        let accepted = tokio::select! {
            biased;
            _ = shutdown.wait_for(|stop| *stop) => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, remote) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                // Usually EMFILE or a reset during accept: back off briefly.
                tracing::warn!(error = %e, "mock server accept failed");
                tokio::time::sleep(Duration::from_millis(5)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let handler = handler.clone();
        let service = service_fn(move |req| handler(remote, req));
        // Upgrades are served so that `/datastream` can become a WebSocket.
        let conn = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), service)
            .into_owned();
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::trace!(error = %e, "mock connection ended with an error");
            }
        });
    }
    drop(listener);
    let _ = tokio::time::timeout(Duration::from_secs(5), graceful.shutdown()).await;
}

/// Returned by the service to make hyper drop the connection unanswered.
#[derive(Debug)]
pub(crate) struct DropConnection;

impl std::fmt::Display for DropConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by a fault script")
    }
}

impl std::error::Error for DropConnection {}

fn json_response(status: StatusCode, body: MockBody) -> Response<MockBody> {
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

/// The REST listener's service: the DataStream upgrade, or the API.
async fn serve_rest(
    inner: Arc<Inner>,
    shutdown: watch::Receiver<bool>,
    remote: SocketAddr,
    req: Request<Incoming>,
) -> Result<Response<MockBody>, DropConnection> {
    if crate::datastream::is_datastream(&req) {
        crate::datastream::upgrade(inner, shutdown, req).await
    } else {
        handle(inner, Host::Rest, remote, req).await
    }
}

async fn handle(
    inner: Arc<Inner>,
    host: Host,
    remote: SocketAddr,
    req: Request<Incoming>,
) -> Result<Response<MockBody>, DropConnection> {
    let (parts, body) = req.into_parts();
    if host == Host::Capture && !inner.capture_latency.is_zero() {
        tokio::time::sleep(inner.capture_latency).await;
    }
    let fault = inner.faults.next(host, &parts.method, parts.uri.path());
    let (body, post) = match intake(&inner.recorder, host, &parts, body, fault, |_, msg| {
        error_body(msg)
    })
    .await?
    {
        Ok(proceed) => proceed,
        Err(resp) => return Ok(resp),
    };

    let ctx = Ctx {
        inner: &inner,
        method: &parts.method,
        path: parts.uri.path(),
        query: Query::parse(parts.uri.query()),
        headers: &parts.headers,
        body: &body,
        remote,
    };
    let dispatched = match host {
        Host::Rest => crate::schematic::dispatch(&ctx),
        Host::Capture => crate::schematic::capture::dispatch(&ctx),
    };
    let (status, payload) = match dispatched.result {
        Ok(reply) => (reply.status, reply.body),
        Err(ApiFailure { status, message }) => (status, error_body(&message)),
    };
    record(
        &inner.recorder,
        host,
        &parts,
        &body,
        status.as_u16(),
        dispatched.operation,
    );

    Ok(finish(post, status, payload))
}

/// Reads a request's body (at most [`MAX_BODY`]) and applies the fault
/// scripted for it.
///
/// `Ok(Ok((body, post)))`: handle the request, then spoil the answer with
/// `post` (see [`finish`]). `Ok(Err(response))`: the fault or an unreadable
/// body settled the answer. `Err(DropConnection)`: drop the connection.
/// `error_body(status, message)` renders the error payloads.
pub(crate) async fn intake(
    recorder: &Recorder,
    host: Host,
    parts: &http::request::Parts,
    body: Incoming,
    fault: Option<Fault>,
    error_body: impl Fn(StatusCode, &str) -> Bytes,
) -> Result<Result<(Bytes, Option<Fault>), Response<MockBody>>, DropConnection> {
    let body = match Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => {
            if matches!(fault, Some(Fault::DropConnection)) {
                return Err(DropConnection);
            }
            let too_large = e
                .downcast_ref::<http_body_util::LengthLimitError>()
                .is_some();
            let (status, msg) = if too_large {
                (StatusCode::PAYLOAD_TOO_LARGE, "request body too large")
            } else {
                (StatusCode::BAD_REQUEST, "could not read request body")
            };
            let payload = error_body(status, msg);
            return Ok(Err(json_response(status, MockBody::full(payload))));
        }
    };
    match fault {
        None => Ok(Ok((body, None))),
        Some(Fault::DropConnection) => {
            record(recorder, host, parts, &body, 0, None);
            Err(DropConnection)
        }
        Some(Fault::Delay(d)) => {
            tokio::time::sleep(d).await;
            Ok(Ok((body, None)))
        }
        Some(Fault::Respond {
            status,
            retry_after,
            headers,
            body: fault_body,
        }) => {
            record(recorder, host, parts, &body, status.as_u16(), None);
            let payload = fault_body.unwrap_or_else(|| {
                error_body(
                    status,
                    status.canonical_reason().unwrap_or("injected fault"),
                )
            });
            let mut resp = json_response(status, MockBody::full(payload));
            if let Some(ra) = retry_after.and_then(|v| HeaderValue::from_str(&v).ok()) {
                resp.headers_mut().insert(RETRY_AFTER, ra);
            }
            for (name, value) in headers {
                resp.headers_mut().append(name, value);
            }
            Ok(Err(resp))
        }
        Some(other) => Ok(Ok((body, Some(other)))),
    }
}

/// The response of a handled request, spoilt by a body fault
/// ([`Fault::TruncatedBody`], [`Fault::MalformedJson`]) if one is pending.
pub(crate) fn finish(
    post: Option<Fault>,
    status: StatusCode,
    payload: Bytes,
) -> Response<MockBody> {
    match post {
        Some(Fault::TruncatedBody) => {
            let len = payload.len();
            let mut resp = json_response(status, MockBody::truncated(payload));
            resp.headers_mut()
                .insert(CONTENT_LENGTH, HeaderValue::from(len));
            resp
        }
        Some(Fault::MalformedJson) => json_response(
            status,
            MockBody::full(Bytes::from_static(b"{\"data\": {\"unterminated")),
        ),
        _ => json_response(status, MockBody::full(payload)),
    }
}

/// Records one request (secrets redacted) if recording is enabled.
pub(crate) fn record(
    recorder: &Recorder,
    host: Host,
    parts: &http::request::Parts,
    body: &Bytes,
    status: u16,
    operation: Option<&'static str>,
) {
    if !recorder.enabled() {
        return;
    }
    recorder.push(RecordedRequest {
        host,
        method: parts.method.clone(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().map(str::to_owned),
        headers: redact_headers(&parts.headers),
        body: redact_body(body),
        status,
        operation,
    });
}
