//! The socket task: connect, subscribe, apply messages in order, keep the
//! connection alive, reconnect.
//!
//! One task on the DataStream thread owns the socket. It reads and applies
//! every message itself, in arrival order (no queue that could overflow or
//! reorder), writes the checks' entity requests, pings, and watches for the
//! pong. The protocol bookkeeping (replay cursor, readiness, close codes) is
//! the sans-IO [`Session`] of `flagwire-core`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use flagwire_core::datastream::{
    self as wire, Backoff, CloseAction, Message, Mode, Request, Session,
};
use flagwire_transport::auth::Secret;
use flagwire_transport::websocket::{
    WebSocketConnector, WebSocketStream, WsStream,
    tungstenite::{
        self, ClientRequestBuilder, Message as Frame,
        client::IntoClientRequest,
        protocol::{CloseFrame, WebSocketConfig, frame::coding::CloseCode},
    },
};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::{mpsc, watch};

use super::lookup;
use super::store::Store;
use super::waiters::{EntityKind, Waiters};
use super::{Command, ConnectionState, DataStreamOptions, Keys, Shared};

/// How to open the socket: where, with which credentials and connector.
#[derive(Clone)]
pub(crate) struct Dial {
    pub(crate) connector: WebSocketConnector,
    pub(crate) url: http::Uri,
    pub(crate) api_key: Secret,
}

impl Dial {
    fn request(&self) -> Result<http::Request<()>, String> {
        ClientRequestBuilder::new(self.url.clone())
            .with_header(wire::HEADER_API_KEY, self.api_key.expose())
            .with_header(wire::HEADER_MODE, wire::MODE_DIRECT)
            .with_header(wire::HEADER_CLIENT, wire::CLIENT_NAME)
            .with_header(wire::HEADER_CLIENT_VERSION, env!("CARGO_PKG_VERSION"))
            .with_header(
                "User-Agent",
                concat!("flagwire/", env!("CARGO_PKG_VERSION")),
            )
            .into_client_request()
            .map_err(|e| format!("invalid DataStream request: {e}"))
    }
}

/// Why one connection ended.
enum End {
    /// The client is shutting down.
    Shutdown,
    /// Stop for good (authentication failure).
    Stop(String),
    /// Reconnect after a back-off.
    Dropped(String),
}

/// Everything the socket task needs.
pub(crate) struct Task {
    pub(crate) store: Arc<Store>,
    pub(crate) waiters: Arc<Waiters>,
    pub(crate) shared: Arc<Shared>,
    pub(crate) options: DataStreamOptions,
    pub(crate) dial: Dial,
    pub(crate) commands: mpsc::UnboundedReceiver<Command>,
    pub(crate) shutdown: watch::Receiver<bool>,
    /// Where applied messages are also written (direct mode over Redis).
    #[cfg(feature = "redis")]
    pub(crate) mirror: Option<Arc<crate::redis::mirror::Mirror>>,
}

impl Task {
    /// Runs until shutdown or an authentication failure.
    pub(crate) async fn run(mut self) {
        let mut session = Session::new(Mode::Direct);
        let mut backoff = Backoff::new(self.options.reconnect);
        let mut connections = 0u64;
        loop {
            if *self.shutdown.borrow() {
                break;
            }
            self.shared.set_state(ConnectionState::Connecting);
            let end = match self.connect().await {
                Err(End::Shutdown) => break,
                Err(end) => end,
                Ok(socket) => {
                    connections += 1;
                    if connections > 1 {
                        self.shared
                            .reconnects
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    backoff.connected();
                    self.shared.set_state(ConnectionState::Connected);
                    let opened = Instant::now();
                    let end = self.serve(socket, &mut session).await;
                    session.on_disconnected();
                    self.waiters.fail_all("the DataStream connection closed");
                    backoff.disconnected_after(opened.elapsed());
                    end
                }
            };
            match end {
                End::Shutdown => break,
                End::Stop(reason) => {
                    tracing::warn!(reason, "DataStream stopped; flag checks use the API");
                    self.shared.set_error(reason);
                    self.shared.set_state(ConnectionState::Stopped);
                    self.waiters.fail_all("DataStream stopped");
                    return;
                }
                End::Dropped(reason) => {
                    tracing::debug!(reason, "DataStream connection lost; reconnecting");
                    self.shared.set_error(reason);
                }
            }
            self.shared.set_state(ConnectionState::Disconnected);
            let delay = backoff.next_delay(fastrand::f64());
            if self.pause(delay, &mut session).await {
                break;
            }
        }
        self.shared.set_state(ConnectionState::Stopped);
        self.waiters.fail_all("DataStream stopped");
    }

    /// Sleeps `delay`; entity requests arriving meanwhile are queued by the
    /// session for the next connect (their checks already fell back). True
    /// on shutdown.
    async fn pause(&mut self, delay: Duration, session: &mut Session) -> bool {
        let sleep = tokio::time::sleep(delay);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                _ = &mut sleep => return false,
                changed = self.shutdown.changed() => {
                    if changed.is_err() || *self.shutdown.borrow() {
                        return true;
                    }
                }
                command = self.commands.recv() => match command {
                    None => return true,
                    // Not connected: the session queues it for the next connect.
                    Some(command) => {
                        let _ = self.command(command, session);
                    }
                }
            }
        }
    }

    async fn connect(&mut self) -> Result<WebSocketStream<WsStream>, End> {
        let request = self.dial.request().map_err(End::Stop)?;
        let config = WebSocketConfig::default()
            .max_message_size(Some(self.options.max_message_size))
            .max_frame_size(Some(self.options.max_message_size));
        let connect = self.dial.connector.connect(request, config);
        let timeout = self.options.handshake_timeout;
        tokio::select! {
            result = tokio::time::timeout(timeout, connect) => match result {
                Err(_) => Err(End::Dropped(format!("DataStream handshake timed out after {timeout:?}"))),
                Ok(Ok((socket, _response))) => Ok(socket),
                Ok(Err(e)) => match e.status().map(|s| s.as_u16()) {
                    Some(401 | 403) => Err(End::Stop(format!(
                        "DataStream refused the API key: {e}"
                    ))),
                    _ => Err(End::Dropped(format!("DataStream connect failed: {e}"))),
                },
            },
            _ = self.shutdown.changed() => Err(End::Shutdown),
        }
    }

    /// Runs a check's command: subscribe (sending the request when the
    /// session says so) or forget.
    fn command(&self, command: Command, session: &mut Session) -> Option<Request> {
        match command {
            Command::Subscribe(EntityKind::Company, keys) => session.subscribe_company(&keys),
            Command::Subscribe(EntityKind::User, keys) => session.subscribe_user(&keys),
            Command::GaveUp(EntityKind::Company, keys) => {
                session.forget_company(&keys);
                None
            }
            Command::GaveUp(EntityKind::User, keys) => {
                session.forget_user(&keys);
                None
            }
        }
    }

    /// Forgets the subscriptions of entities the store dropped (evicted or
    /// expired), so reconnects do not ask for them again.
    fn forget_dropped(&self, dropped: Vec<(EntityKind, Keys)>, session: &mut Session) {
        for (kind, entity_keys) in dropped {
            let shares_a_pair = |keys: &Keys| {
                keys.iter().any(|(n, v)| {
                    entity_keys
                        .iter()
                        .any(|(en, ev)| lookup::PairKey::new(n, v) == lookup::PairKey::new(en, ev))
                })
            };
            let subscribed: Vec<Keys> = match kind {
                EntityKind::Company => session.company_subscriptions().cloned().collect(),
                EntityKind::User => session.user_subscriptions().cloned().collect(),
            };
            for keys in subscribed.iter().filter(|k| shares_a_pair(k)) {
                match kind {
                    EntityKind::Company => session.forget_company(keys),
                    EntityKind::User => session.forget_user(keys),
                }
            }
        }
    }

    async fn serve(&mut self, socket: WebSocketStream<WsStream>, session: &mut Session) -> End {
        let (mut sink, mut stream) = socket.split();
        for request in session.on_connected() {
            if let Err(e) = send(&mut sink, Frame::text(request.to_json())).await {
                return End::Dropped(e);
            }
        }
        let mut ping = tokio::time::interval(self.options.ping_interval);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ping.tick().await;
        let mut sweep = tokio::time::interval(Duration::from_secs(60));
        sweep.tick().await;
        let mut pong_due: Option<tokio::time::Instant> = None;
        loop {
            let pong_wait = async {
                match pong_due {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                frame = stream.next() => {
                    let frame = match frame {
                        None => return End::Dropped("the server closed the connection".into()),
                        Some(Err(tungstenite::Error::Capacity(e))) => {
                            self.shared.malformed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            return End::Dropped(format!("DataStream message too large: {e}"));
                        }
                        Some(Err(e)) => return End::Dropped(format!("DataStream read failed: {e}")),
                        Some(Ok(frame)) => frame,
                    };
                    match frame {
                        Frame::Text(text) => {
                            if let Some(requests) = self.on_text(text.as_str(), session) {
                                for request in requests {
                                    if let Err(e) = send(&mut sink, Frame::text(request.to_json())).await {
                                        return End::Dropped(e);
                                    }
                                }
                            }
                        }
                        Frame::Binary(bytes) => match std::str::from_utf8(&bytes) {
                            Ok(text) => {
                                if let Some(requests) = self.on_text(text, session) {
                                    for request in requests {
                                        if let Err(e) = send(&mut sink, Frame::text(request.to_json())).await {
                                            return End::Dropped(e);
                                        }
                                    }
                                }
                            }
                            Err(_) => {
                                self.shared.malformed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            }
                        },
                        Frame::Pong(_) => pong_due = None,
                        // tungstenite queued the pong; send it now.
                        Frame::Ping(_) => {
                            if let Err(e) = sink.flush().await {
                                return End::Dropped(format!("DataStream write failed: {e}"));
                            }
                        }
                        Frame::Close(frame) => return closed(frame),
                        Frame::Frame(_) => {}
                    }
                }
                command = self.commands.recv() => match command {
                    None => return End::Shutdown,
                    Some(command) => {
                        if let Some(request) = self.command(command, session)
                            && let Err(e) = send(&mut sink, Frame::text(request.to_json())).await
                        {
                            return End::Dropped(e);
                        }
                    }
                },
                _ = ping.tick() => {
                    if let Err(e) = send(&mut sink, Frame::Ping(Default::default())).await {
                        return End::Dropped(e);
                    }
                    if pong_due.is_none() {
                        pong_due = Some(tokio::time::Instant::now() + self.options.pong_timeout);
                    }
                }
                () = pong_wait => {
                    return End::Dropped(format!(
                        "no pong within {:?}", self.options.pong_timeout
                    ));
                }
                _ = sweep.tick() => {
                    let dropped = self.store.sweep_expired(Instant::now());
                    self.forget_dropped(dropped, session);
                }
                changed = self.shutdown.changed() => {
                    if changed.is_err() || *self.shutdown.borrow() {
                        let close = Frame::Close(Some(CloseFrame {
                            code: CloseCode::Normal,
                            reason: "client shutting down".into(),
                        }));
                        let _ = tokio::time::timeout(Duration::from_secs(1), sink.send(close)).await;
                        return End::Shutdown;
                    }
                }
            }
        }
    }

    /// Decodes and applies one message; returns requests to send after a
    /// `reload`.
    fn on_text(&self, text: &str, session: &mut Session) -> Option<Vec<Request>> {
        match session.on_text(text) {
            Err(e) => {
                self.shared
                    .malformed
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tracing::debug!(error = %e, "malformed DataStream message skipped");
                None
            }
            Ok(None) => None,
            Ok(Some(received)) => {
                self.shared.message_received();
                let reload = matches!(received.message, Message::Reload);
                let flags = matches!(received.message, Message::Flags { .. });
                #[cfg(feature = "redis")]
                let pending = match &self.mirror {
                    Some(_) => crate::redis::mirror::Mirror::before_apply(&received.message),
                    None => None,
                };
                let dropped = self.store.apply(received, &self.waiters);
                #[cfg(feature = "redis")]
                if let (Some(mirror), Some(pending)) = (&self.mirror, pending) {
                    mirror.after_apply(pending, &self.store);
                }
                self.forget_dropped(dropped, session);
                if flags {
                    self.shared.set_ready(true);
                }
                if reload {
                    return Some(session.after_reload());
                }
                None
            }
        }
    }
}

fn closed(frame: Option<CloseFrame>) -> End {
    let code = frame.as_ref().map(|f| u16::from(f.code));
    match code.map(Session::on_close_code) {
        Some(CloseAction::Stop(reason)) => End::Stop(format!(
            "DataStream closed the connection: {reason} (close code {})",
            code.unwrap_or_default()
        )),
        _ => End::Dropped(match frame {
            Some(f) => format!(
                "the server closed the connection ({}: {})",
                u16::from(f.code),
                f.reason
            ),
            None => "the server closed the connection".into(),
        }),
    }
}

async fn send<S>(sink: &mut S, frame: Frame) -> Result<(), String>
where
    S: futures_util::Sink<Frame, Error = tungstenite::Error> + Unpin,
{
    match tokio::time::timeout(Duration::from_secs(10), sink.send(frame)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(format!("DataStream write failed: {e}")),
        Err(_) => Err("DataStream write timed out".into()),
    }
}
