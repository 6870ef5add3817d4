//! The WebSocket upgrade on the REST listener and the task serving each
//! connection.
//!
//! The upgrade is done the hyper way: the request is validated, answered
//! `101 Switching Protocols` with the `Sec-WebSocket-Accept` digest, and
//! once hyper hands the connection over it becomes a tungstenite stream.
//! Each connection then has one task that is its only writer: it writes
//! what the hub queues for it, reads and answers client requests (pings
//! are answered by tungstenite while reading), and obeys the fault
//! switches.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http::header::{
    CONNECTION, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_VERSION, UPGRADE,
};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, Version};
use hyper::body::Incoming;
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::error::Error as WsError;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

use super::hub::{Control, Registration, Stop};
use super::{DATASTREAM_PATH, DataStreamHandshake, HandshakeOutcome, wire};
use crate::body::MockBody;
use crate::faults::Host;
use crate::server::{DropConnection, Inner, finish, intake, record};
use crate::util::error_body;

/// Largest client message the server accepts (larger ones close the
/// connection with 1009). The server's own messages are not limited.
const MAX_CLIENT_MESSAGE: usize = 1 << 20;

/// How long a closing connection waits for the client's close frame.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// Messages written to the socket before one flush.
const WRITE_BATCH: usize = 64;

type Socket = WebSocketStream<TokioIo<Upgraded>>;

/// Whether a REST request is for the DataStream endpoint.
pub(crate) fn is_datastream(req: &Request<Incoming>) -> bool {
    req.uri().path() == DATASTREAM_PATH
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Whether a comma-separated header lists `token` (case-insensitively).
fn lists_token(headers: &HeaderMap, name: http::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// Why an upgrade request cannot be served: the status, the message and an
/// extra header for the answer.
type Rejection = (
    StatusCode,
    &'static str,
    Option<(http::HeaderName, &'static str)>,
);

/// Checks a request against RFC 6455 §4.2.1; returns the client's key.
fn validate(parts: &http::request::Parts) -> Result<&HeaderValue, Rejection> {
    if parts.method != Method::GET {
        return Err((
            StatusCode::METHOD_NOT_ALLOWED,
            "the DataStream endpoint only accepts GET with a WebSocket upgrade",
            None,
        ));
    }
    if parts.version != Version::HTTP_11 {
        return Err((
            StatusCode::BAD_REQUEST,
            "the DataStream upgrade needs HTTP/1.1",
            None,
        ));
    }
    let headers = &parts.headers;
    if !lists_token(headers, UPGRADE, "websocket") || !lists_token(headers, CONNECTION, "upgrade") {
        return Err((
            StatusCode::UPGRADE_REQUIRED,
            "the DataStream endpoint needs Connection: Upgrade and Upgrade: websocket",
            Some((UPGRADE, "websocket")),
        ));
    }
    if header(headers, SEC_WEBSOCKET_VERSION.as_str()).map(str::trim) != Some("13") {
        return Err((
            StatusCode::UPGRADE_REQUIRED,
            "unsupported WebSocket version (Sec-WebSocket-Version must be 13)",
            Some((SEC_WEBSOCKET_VERSION, "13")),
        ));
    }
    match headers.get(SEC_WEBSOCKET_KEY) {
        Some(key) if !key.is_empty() => Ok(key),
        _ => Err((
            StatusCode::BAD_REQUEST,
            "Sec-WebSocket-Key is missing",
            None,
        )),
    }
}

fn json_answer(
    status: StatusCode,
    message: &str,
    post: Option<crate::Fault>,
) -> Response<MockBody> {
    finish(post, status, error_body(message))
}

/// Serves `GET /datastream`: scripted faults first (as on every route),
/// then the upgrade checks, the refusal switch and the API key. A request
/// with a bad key is still upgraded and then closed with 4001, which is
/// how the SDKs learn that their key was refused.
pub(crate) async fn upgrade(
    inner: Arc<Inner>,
    shutdown: watch::Receiver<bool>,
    mut req: Request<Incoming>,
) -> Result<Response<MockBody>, DropConnection> {
    let on_upgrade = hyper::upgrade::on(&mut req);
    let (parts, body) = req.into_parts();
    let fault = inner
        .faults
        .next(Host::Rest, &parts.method, parts.uri.path());
    let (body, post) = match intake(
        &inner.recorder,
        Host::Rest,
        &parts,
        body,
        fault,
        |_, msg| error_body(msg),
    )
    .await?
    {
        Ok(proceed) => proceed,
        Err(resp) => return Ok(resp),
    };
    let answer = |status: StatusCode, resp: Response<MockBody>| {
        record(
            &inner.recorder,
            Host::Rest,
            &parts,
            &body,
            status.as_u16(),
            None,
        );
        Ok(resp)
    };

    let key = match validate(&parts) {
        Ok(key) => key,
        Err((status, message, extra)) => {
            let mut resp = json_answer(status, message, post);
            if let Some((name, value)) = extra {
                resp.headers_mut()
                    .insert(name, HeaderValue::from_static(value));
            }
            return answer(status, resp);
        }
    };
    let ds = &inner.datastream;
    let handshake = |outcome| DataStreamHandshake {
        mode: header(&parts.headers, "x-schematic-datastream-mode").map(str::to_owned),
        client: header(&parts.headers, "x-schematic-client").map(str::to_owned),
        client_version: header(&parts.headers, "x-schematic-client-version").map(str::to_owned),
        outcome,
    };
    if ds.take_refusal() {
        ds.record_handshake(handshake(HandshakeOutcome::Refused));
        let status = StatusCode::SERVICE_UNAVAILABLE;
        let resp = json_answer(status, "DataStream upgrades are refused for now", post);
        return answer(status, resp);
    }
    let authorized = inner.authorized(&parts.headers);
    ds.record_handshake(handshake(if authorized {
        HandshakeOutcome::Accepted
    } else {
        HandshakeOutcome::Unauthorized
    }));

    let accept = derive_accept_key(key.as_bytes());
    let mut resp = Response::new(MockBody::full(Bytes::new()));
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = resp.headers_mut();
    headers.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
    if let Ok(accept) = HeaderValue::from_str(&accept) {
        headers.insert(SEC_WEBSOCKET_ACCEPT, accept);
    }
    let task_inner = inner.clone();
    tokio::spawn(async move {
        let upgraded = match on_upgrade.await {
            Ok(upgraded) => upgraded,
            Err(e) => {
                tracing::debug!(error = %e, "DataStream upgrade did not complete");
                return;
            }
        };
        let config = WebSocketConfig::default()
            .max_message_size(Some(MAX_CLIENT_MESSAGE))
            .max_frame_size(Some(MAX_CLIENT_MESSAGE));
        let ws =
            WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(config))
                .await;
        if authorized {
            serve(task_inner, ws, shutdown).await;
        } else {
            close(ws, 4001, "missing or invalid X-Schematic-Api-Key").await;
        }
    });
    answer(StatusCode::SWITCHING_PROTOCOLS, resp)
}

/// How a connection's task ends.
#[derive(Debug)]
enum Exit {
    /// The transport failed: nothing more can be sent.
    Closed,
    /// The client sent a close frame: send tungstenite's queued answer.
    ClosedByClient,
    /// Drop the socket without a close frame.
    Drop,
    /// Send a close frame, then wait briefly for the client's.
    Close(u16, String),
}

impl From<Stop> for Exit {
    fn from(stop: Stop) -> Exit {
        match stop {
            Stop::Drop => Exit::Drop,
            Stop::Close { code, reason } => Exit::Close(code, reason),
        }
    }
}

fn shutting_down() -> Exit {
    Exit::Close(1001, "server shutting down".into())
}

/// The exit for a failed read.
fn failed(e: &WsError) -> Exit {
    match e {
        WsError::Capacity(_) => Exit::Close(1009, "message too big".into()),
        WsError::Utf8(_) => Exit::Close(1007, "invalid UTF-8".into()),
        WsError::Protocol(_) => Exit::Close(1002, "protocol error".into()),
        _ => Exit::Closed,
    }
}

/// Serves one authorized connection until it ends.
async fn serve(inner: Arc<Inner>, mut ws: Socket, mut shutdown: watch::Receiver<bool>) {
    let ds = &inner.datastream;
    let Registration {
        id,
        mut queue,
        mut control,
    } = ds.register();
    let exit = pump(&inner, id, &mut ws, &mut queue, &mut control, &mut shutdown).await;
    ds.unregister(id);
    match exit {
        Exit::Closed => {}
        Exit::ClosedByClient => {
            // Reading flushes the queued close answer, then ends.
            let _ = tokio::time::timeout(CLOSE_WAIT, async {
                while let Some(Ok(_)) = ws.next().await {}
            })
            .await;
        }
        Exit::Drop => drop(ws),
        Exit::Close(code, reason) => close(ws, code, &reason).await,
    }
}

/// What woke a connection's task.
enum Event {
    Shutdown,
    /// A fault switch changed (false: the hub is gone).
    Switch(bool),
    Queued(Option<Utf8Bytes>),
    Incoming(Option<Result<Message, WsError>>),
}

/// The connection's loop: fault switches first, then whichever comes
/// first of shutdown, a switch, a queued message and a client message.
async fn pump(
    inner: &Inner,
    id: u64,
    ws: &mut Socket,
    queue: &mut mpsc::UnboundedReceiver<Utf8Bytes>,
    control: &mut watch::Receiver<Control>,
    shutdown: &mut watch::Receiver<bool>,
) -> Exit {
    let ds = &inner.datastream;
    loop {
        let Control { stall_until, stop } = control.borrow_and_update().clone();
        if let Some(stop) = stop {
            return stop.into();
        }
        if let Some(until) = stall_until.filter(|u| *u > tokio::time::Instant::now()) {
            let event = tokio::select! {
                biased;
                _ = shutdown.wait_for(|stop| *stop) => Event::Shutdown,
                changed = control.changed() => Event::Switch(changed.is_ok()),
                () = tokio::time::sleep_until(until) => Event::Switch(true),
            };
            match event {
                Event::Shutdown => return shutting_down(),
                Event::Switch(false) => return Exit::Drop,
                _ => continue,
            }
        }
        let event = tokio::select! {
            biased;
            _ = shutdown.wait_for(|stop| *stop) => Event::Shutdown,
            changed = control.changed() => Event::Switch(changed.is_ok()),
            next = queue.recv() => Event::Queued(next),
            incoming = ws.next() => Event::Incoming(incoming),
        };
        match event {
            Event::Shutdown => return shutting_down(),
            Event::Switch(true) => {}
            Event::Switch(false) => return Exit::Drop,
            Event::Queued(Some(text)) => {
                if let Err(exit) = write(ws, text, queue, control, shutdown).await {
                    return exit;
                }
            }
            // The hub let go of this connection: a switch says how.
            Event::Queued(None) => {
                return control.borrow().stop.clone().map_or(Exit::Drop, Exit::from);
            }
            Event::Incoming(None) => return Exit::Closed,
            Event::Incoming(Some(Ok(Message::Text(text)))) => ds.receive(inner, id, text.as_str()),
            Event::Incoming(Some(Ok(Message::Binary(bytes)))) => {
                match std::str::from_utf8(&bytes) {
                    Ok(text) => ds.receive(inner, id, text),
                    Err(_) => {
                        ds.record_request(&String::from_utf8_lossy(&bytes));
                        ds.reply(
                            id,
                            wire::error(None, "binary frames must hold UTF-8 JSON", None),
                        );
                    }
                }
            }
            Event::Incoming(Some(Ok(Message::Close(_)))) => return Exit::ClosedByClient,
            // Pings are answered by tungstenite itself.
            Event::Incoming(Some(Ok(_))) => {}
            Event::Incoming(Some(Err(e))) => return failed(&e),
        }
    }
}

/// Writes `first` and whatever else is queued (up to a batch), then
/// flushes. A drop, a close or shutdown interrupts it; a stall waits for
/// it to finish, so no message is lost or cut.
async fn write(
    ws: &mut Socket,
    first: Utf8Bytes,
    queue: &mut mpsc::UnboundedReceiver<Utf8Bytes>,
    control: &mut watch::Receiver<Control>,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<(), Exit> {
    let send = async {
        ws.feed(Message::Text(first)).await?;
        for _ in 1..WRITE_BATCH {
            match queue.try_recv() {
                Ok(text) => ws.feed(Message::Text(text)).await?,
                Err(_) => break,
            }
        }
        ws.flush().await
    };
    tokio::pin!(send);
    loop {
        let event = tokio::select! {
            biased;
            _ = shutdown.wait_for(|stop| *stop) => Event::Shutdown,
            changed = control.changed() => Event::Switch(changed.is_ok()),
            // Writes only fail once the transport or the session is over.
            sent = &mut send => return sent.map_err(|_| Exit::Closed),
        };
        match event {
            Event::Shutdown => return Err(shutting_down()),
            Event::Switch(false) => return Err(Exit::Drop),
            _ => {
                if let Some(stop) = control.borrow_and_update().stop.clone() {
                    return Err(stop.into());
                }
            }
        }
    }
}

/// Sends a close frame and waits (briefly) for the client's answer.
async fn close(mut ws: Socket, code: u16, reason: &str) {
    let frame = CloseFrame {
        code: CloseCode::from(code),
        reason: reason.into(),
    };
    let _ = tokio::time::timeout(CLOSE_WAIT, async {
        if ws.close(Some(frame)).await.is_err() {
            return;
        }
        while let Some(Ok(_)) = ws.next().await {}
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(build: http::request::Builder) -> http::request::Parts {
        build.body(()).unwrap().into_parts().0
    }

    fn upgrade_request_version(version: &str) -> http::request::Builder {
        Request::get("/datastream")
            .header("connection", "keep-alive, Upgrade")
            .header("upgrade", "WebSocket")
            .header("sec-websocket-version", version)
            .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
    }

    fn upgrade_request() -> http::request::Builder {
        upgrade_request_version("13")
    }

    #[test]
    fn accepts_a_well_formed_upgrade() {
        let p = parts(upgrade_request());
        let key = validate(&p).unwrap();
        assert_eq!(
            derive_accept_key(key.as_bytes()),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=",
            "the RFC 6455 example"
        );
    }

    #[test]
    fn rejects_what_is_not_a_websocket_upgrade() {
        let status = |b| validate(&parts(b)).unwrap_err().0;
        assert_eq!(
            status(Request::get("/datastream")),
            StatusCode::UPGRADE_REQUIRED
        );
        assert_eq!(
            status(upgrade_request().method(Method::POST)),
            StatusCode::METHOD_NOT_ALLOWED
        );
        assert_eq!(
            status(upgrade_request().version(Version::HTTP_2)),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            status(upgrade_request_version("8")),
            StatusCode::UPGRADE_REQUIRED
        );
        let no_key = Request::get("/datastream")
            .header("connection", "upgrade")
            .header("upgrade", "websocket")
            .header("sec-websocket-version", "13");
        assert_eq!(status(no_key), StatusCode::BAD_REQUEST);
    }
}
