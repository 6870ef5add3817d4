//! The DataStream WebSocket: live rules-engine models pushed to clients that
//! evaluate flags locally.
//!
//! The emulator serves `GET /datastream` (a WebSocket upgrade) on its REST
//! listener, which is where the SDKs' URL rule leads a client configured
//! with the emulator's REST URL. Clients ask for the flags, for single
//! companies and users by keys (direct mode), or for every company and user
//! (replicator mode); the emulator answers with snapshots and then pushes
//! every change made through any route (REST, the capture host, the seeding
//! helpers) as it happens, stamped with a stream id. A bounded replay log
//! lets a reconnecting client catch up with `replay_from`, or tells it to
//! reload when it cannot.
//!
//! The models are the ones the REST flag checks evaluate
//! ([`crate::eval`]), so a client evaluating locally reaches the REST
//! verdict. Fault switches on [`MockServer`] drop, close, stall or flood
//! the sockets and refuse upgrades; `GET /ready` serves the replicator's
//! health document.
//!
//! Layout: [`wire`] parses requests and renders messages, [`changes`] turns
//! store changes into pushes, [`hub`] routes them to connections and keeps
//! the [`log`], [`socket`] runs the upgrade and each connection.

mod changes;
mod hub;
mod log;
mod socket;
mod stream_id;
mod subscriptions;
mod wire;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Utf8Bytes;

use crate::error::MockError;
use crate::server::{Inner, MockServer, MockServerBuilder};
use crate::store::{Refreshed, Store};

pub(crate) use socket::{is_datastream, upgrade};

/// The path of the DataStream WebSocket on the REST listener.
pub const DATASTREAM_PATH: &str = "/datastream";

/// How many handshakes and client messages are kept for inspection.
const MAX_RECORDED: usize = 10_000;

/// Settings chosen on the [`MockServerBuilder`].
#[derive(Debug, Clone)]
pub(crate) struct Config {
    replay_log_capacity: usize,
    cache_version: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            replay_log_capacity: 10_000,
            cache_version: String::from("1"),
        }
    }
}

/// How the emulator answered a DataStream upgrade request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum HandshakeOutcome {
    /// Upgraded and served.
    Accepted,
    /// Upgraded, then closed with code 4001: the `X-Schematic-Api-Key` was
    /// missing or not accepted.
    Unauthorized,
    /// Answered 503 by [`MockServer::datastream_refuse_upgrades`].
    Refused,
}

/// One WebSocket upgrade request to `/datastream`, as the emulator saw it.
/// The API key is never kept.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DataStreamHandshake {
    /// `X-Schematic-Datastream-Mode` (`direct`, `replicator`, …).
    pub mode: Option<String>,
    /// `X-Schematic-Client`, the SDK's name.
    pub client: Option<String>,
    /// `X-Schematic-Client-Version`.
    pub client_version: Option<String>,
    /// What the emulator did with it.
    pub outcome: HandshakeOutcome,
}

/// The DataStream state shared by the REST listener, the socket tasks and
/// the server handle.
#[derive(Debug)]
pub(crate) struct DataStream {
    /// Set by the first accepted connection: until then no client can hold
    /// a stream position, so changes need not be computed or logged.
    active: AtomicBool,
    hub: Mutex<hub::Hub>,
    connections: watch::Sender<usize>,
    refusals: AtomicUsize,
    handshakes: Mutex<VecDeque<DataStreamHandshake>>,
    requests: Mutex<VecDeque<Value>>,
    ready: AtomicBool,
    cache_version: String,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn push_bounded<T>(m: &Mutex<VecDeque<T>>, item: T) {
    let mut items = lock(m);
    if items.len() >= MAX_RECORDED {
        items.pop_front();
    }
    items.push_back(item);
}

impl DataStream {
    pub(crate) fn new(config: &Config) -> DataStream {
        DataStream {
            active: AtomicBool::new(false),
            hub: Mutex::new(hub::Hub::new(config.replay_log_capacity)),
            connections: watch::Sender::new(0),
            refusals: AtomicUsize::new(0),
            handshakes: Mutex::new(VecDeque::new()),
            requests: Mutex::new(VecDeque::new()),
            ready: AtomicBool::new(true),
            cache_version: config.cache_version.clone(),
        }
    }

    /// Pushes the changes a store refresh made. Called with the store's
    /// write lock held, so changes are stamped in the order they happened.
    pub(crate) fn publish(&self, store: &Store, replaced: &Refreshed) {
        if !self.active.load(Ordering::Acquire) {
            return;
        }
        let changes = changes::compute(store, replaced);
        if !changes.is_empty() {
            lock(&self.hub).publish(changes);
        }
    }

    fn register(&self) -> hub::Registration {
        self.active.store(true, Ordering::Release);
        let mut hub = lock(&self.hub);
        let registration = hub.register();
        self.connections.send_replace(hub.len());
        registration
    }

    fn unregister(&self, id: u64) {
        let mut hub = lock(&self.hub);
        hub.unregister(id);
        self.connections.send_replace(hub.len());
    }

    /// Keeps a client message for inspection: its JSON, or the text as a
    /// JSON string.
    fn record_request(&self, text: &str) {
        let parsed = serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()));
        push_bounded(&self.requests, parsed);
    }

    /// Records and answers one client message.
    fn receive(&self, inner: &Inner, conn: u64, text: &str) {
        self.record_request(text);
        match wire::parse_request(text) {
            Ok(request) => {
                let store = inner.read();
                lock(&self.hub).handle(&store, conn, request);
            }
            Err(e) => lock(&self.hub).send_to(conn, e.to_message()),
        }
    }

    /// Queues a message for one connection.
    fn reply(&self, conn: u64, text: Utf8Bytes) {
        lock(&self.hub).send_to(conn, text);
    }

    /// Consumes one scripted refusal, if any is left.
    fn take_refusal(&self) -> bool {
        self.refusals
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
            .is_ok()
    }

    fn record_handshake(&self, handshake: DataStreamHandshake) {
        push_bounded(&self.handshakes, handshake);
    }

    /// The `cache_version` `GET /ready` reports.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn cache_version(&self) -> &str {
        &self.cache_version
    }

    /// The replicator health document and its status.
    pub(crate) fn ready_document(&self) -> (StatusCode, Bytes) {
        let ready = self.ready.load(Ordering::Acquire);
        let body = json!({
            "status": if ready { "ok" } else { "not_ready" },
            "ready": ready,
            "connected": ready,
            "components": {"datastream": if ready { "ok" } else { "disconnected" }},
            "cache_version": self.cache_version,
            "timestamp": crate::util::ts(crate::util::now()),
        });
        let status = if ready {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        };
        (status, Bytes::from(body.to_string()))
    }

    /// Forgets recorded handshakes and requests and pending refusals.
    pub(crate) fn clear_records(&self) {
        lock(&self.handshakes).clear();
        lock(&self.requests).clear();
        self.refusals.store(0, Ordering::Release);
    }
}

/// Close codes a server may put in a close frame (RFC 6455 §7.4).
fn valid_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

impl MockServerBuilder {
    /// How many pushed DataStream changes to keep for `replay_from`
    /// (default 10,000). A client whose cursor is older than the log gets
    /// `reload`; 0 keeps none (only a client that missed nothing resumes).
    pub fn replay_log_capacity(mut self, capacity: usize) -> Self {
        self.datastream.replay_log_capacity = capacity;
        self
    }

    /// The `cache_version` reported by `GET /ready` (default `"1"`).
    pub fn cache_version(mut self, version: impl Into<String>) -> Self {
        self.datastream.cache_version = version.into();
        self
    }
}

impl MockServer {
    /// The DataStream WebSocket URL, `ws://127.0.0.1:<rest port>/datastream`
    /// (what the SDKs derive from [`rest_url`](Self::rest_url)).
    pub fn datastream_url(&self) -> String {
        format!("ws://{}{DATASTREAM_PATH}", self.rest_addr())
    }

    /// Every well-formed upgrade request that reached the handshake (at
    /// most the last 10,000), oldest first. Requests that are not WebSocket
    /// upgrades, or that a scripted fault answered, are only in
    /// [`requests`](Self::requests).
    pub fn datastream_handshakes(&self) -> Vec<DataStreamHandshake> {
        lock(&self.inner.datastream.handshakes)
            .iter()
            .cloned()
            .collect()
    }

    /// Every message received from DataStream clients (at most the last
    /// 10,000), oldest first: the parsed JSON, or a JSON string holding the
    /// text as received when it is not JSON.
    pub fn datastream_requests(&self) -> Vec<Value> {
        lock(&self.inner.datastream.requests)
            .iter()
            .cloned()
            .collect()
    }

    /// Open DataStream connections (authorized ones; a connection ended by
    /// a fault switch leaves the count at once).
    pub fn datastream_connections(&self) -> usize {
        *self.inner.datastream.connections.borrow()
    }

    /// Waits until exactly `count` DataStream connections are open, or
    /// `timeout` passes; returns the number open.
    pub async fn wait_for_datastream_connections(&self, count: usize, timeout: Duration) -> usize {
        let mut rx = self.inner.datastream.connections.subscribe();
        let _ = tokio::time::timeout(timeout, rx.wait_for(|n| *n == count)).await;
        *rx.borrow()
    }

    /// Ends every open DataStream connection abruptly: the socket is closed
    /// without a close frame and queued messages are discarded. Returns how
    /// many were dropped.
    pub fn datastream_drop_connections(&self) -> usize {
        let ds = &self.inner.datastream;
        let mut hub = lock(&ds.hub);
        let n = hub.stop_all(&hub::Stop::Drop);
        ds.connections.send_replace(hub.len());
        n
    }

    /// Closes every open DataStream connection with a close frame carrying
    /// `code` and `reason` (queued messages are discarded); returns how many.
    ///
    /// # Errors
    ///
    /// [`MockError::InvalidConfig`] if `code` may not be sent in a close
    /// frame (only 1000–1003, 1007–1014 and 3000–4999 may) or `reason` is
    /// longer than 123 bytes.
    pub fn datastream_close_all(&self, code: u16, reason: &str) -> Result<usize, MockError> {
        if !valid_close_code(code) {
            return Err(MockError::InvalidConfig(
                "a DataStream close code must be 1000-1003, 1007-1014 or 3000-4999",
            ));
        }
        if reason.len() > 123 {
            return Err(MockError::InvalidConfig(
                "a DataStream close reason must fit in 123 bytes",
            ));
        }
        let ds = &self.inner.datastream;
        let mut hub = lock(&ds.hub);
        let n = hub.stop_all(&hub::Stop::Close {
            code,
            reason: reason.to_owned(),
        });
        ds.connections.send_replace(hub.len());
        Ok(n)
    }

    /// Makes every open DataStream connection unresponsive for `duration`:
    /// the server neither reads (so answers no pings) nor writes; messages
    /// produced meanwhile are delivered afterwards. Returns how many
    /// connections were stalled.
    pub fn datastream_stall(&self, duration: Duration) -> usize {
        let now = tokio::time::Instant::now();
        // Durations past what the clock can represent stall for a century.
        let until = now
            .checked_add(duration)
            .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 24 * 3600));
        lock(&self.inner.datastream.hub).stall_all(until)
    }

    /// Queues one text frame with exactly `text` (malformed JSON, an
    /// unknown message, a frame of any size) for every open DataStream
    /// connection, in order with the other messages; returns how many.
    pub fn datastream_send_raw(&self, text: impl Into<String>) -> usize {
        let text = Utf8Bytes::from(text.into());
        lock(&self.inner.datastream.hub).broadcast(&text)
    }

    /// Answers the next `count` upgrade requests with 503 (added to any
    /// refusals still pending).
    pub fn datastream_refuse_upgrades(&self, count: usize) {
        let _ =
            self.inner
                .datastream
                .refusals
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                    Some(n.saturating_add(count))
                });
    }

    /// Forgets the replay log, so that the next `replay_from` of any client
    /// gets `reload`.
    pub fn datastream_trim_replay_log(&self) {
        lock(&self.inner.datastream.hub).trim_log();
    }

    /// Makes `GET /ready` report ready (the default) or not ready (503,
    /// `"ready": false`, `"connected": false`).
    pub fn set_replicator_ready(&self, ready: bool) {
        self.inner.datastream.ready.store(ready, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_codes_a_server_may_send() {
        for code in [1000, 1001, 1003, 1007, 1011, 1014, 3000, 4001, 4999] {
            assert!(valid_close_code(code), "{code}");
        }
        for code in [0, 999, 1004, 1005, 1006, 1015, 2000, 2999, 5000] {
            assert!(!valid_close_code(code), "{code}");
        }
    }

    #[test]
    fn refusals_are_counted_down() {
        let ds = DataStream::new(&Config::default());
        assert!(!ds.take_refusal());
        ds.refusals.store(2, Ordering::Release);
        assert!(ds.take_refusal());
        assert!(ds.take_refusal());
        assert!(!ds.take_refusal());
    }

    #[test]
    fn the_ready_document_follows_the_switch() {
        let ds = DataStream::new(&Config {
            replay_log_capacity: 1,
            cache_version: "v42".into(),
        });
        let (status, body) = ds.ready_document();
        let doc: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(status, StatusCode::OK);
        assert_eq!(doc["cache_version"], "v42");
        assert_eq!(doc["components"]["datastream"], "ok");
        assert!(crate::util::parse_ts(doc["timestamp"].as_str().unwrap()).is_some());
        ds.ready.store(false, Ordering::Release);
        let (status, body) = ds.ready_document();
        let doc: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            (doc["ready"].clone(), doc["connected"].clone()),
            (json!(false), json!(false))
        );
    }
}
