//! `flagwire webhook sign|verify|send|listen`.

use std::convert::Infallible;
use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use flagwire_webhooks::{
    Error as WebhookError, Esauti, Flagsmith, GitHub, Schematic, Scheme, SignedHeaders, Signer,
    StandardWebhooks, Stripe, Verifier,
};
use http_body_util::{BodyExt, Full, Limited};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{Map, Value, json};
use tokio::sync::mpsc;
use tower::ServiceExt;

use crate::cli::{
    ListenArgs, SchemeArg, SecretArg, SendArgs, SignArgs, VerifyArgs, WebhookCommand,
};
use crate::config::Settings;
use crate::error::CliError;
use crate::ops::json_or_text;
use crate::util::{Style, now_rfc3339, read_body_arg, read_stdin};
use flagwire_webhooks::unix_now;

/// Largest delivery `listen` accepts.
const MAX_BODY: usize = 10 * 1024 * 1024;

pub async fn run(cmd: WebhookCommand, settings: &Settings, json: bool) -> Result<(), CliError> {
    match cmd {
        WebhookCommand::Sign(args) => sign(args, settings, json).await,
        WebhookCommand::Verify(args) => verify(args, settings, json).await,
        WebhookCommand::Send(args) => send(args, settings, json).await,
        WebhookCommand::Listen(args) => listen(args, settings, json).await,
    }
}

fn scheme_name(scheme: SchemeArg) -> &'static str {
    match scheme {
        SchemeArg::Schematic => "schematic",
        SchemeArg::Standard => "standard",
        SchemeArg::Stripe => "stripe",
        SchemeArg::Github => "github",
        SchemeArg::Flagsmith => "flagsmith",
        SchemeArg::Esauti => "esauti",
    }
}

/// `--secret`, else the configured webhook secret (the eSauti HMAC secret
/// for the eSauti scheme).
fn secret(arg: &SecretArg, scheme: SchemeArg, settings: &Settings) -> Option<String> {
    if let Some(s) = &arg.secret {
        return Some(s.clone());
    }
    if scheme == SchemeArg::Esauti
        && let Some(s) = settings.get("esauti_hmac_secret")
    {
        return Some(s.to_owned());
    }
    settings.get("webhook_secret").map(str::to_owned)
}

fn require_secret(
    arg: &SecretArg,
    scheme: SchemeArg,
    settings: &Settings,
) -> Result<String, CliError> {
    let s = secret(arg, scheme, settings).ok_or_else(|| {
        CliError::usage("no secret: pass --secret, or set SCHEMATIC_WEBHOOK_SECRET")
    })?;
    if s.is_empty() {
        return Err(CliError::usage("the secret is empty"));
    }
    Ok(s)
}

/// A secret error (an empty or undecodable secret) as a usage error.
fn bad_secret(e: WebhookError) -> CliError {
    CliError::usage(format!("unusable secret: {e}"))
}

/// A random Standard Webhooks message id.
fn message_id() -> String {
    format!("msg_{:016x}{:08x}", fastrand::u64(..), fastrand::u32(..))
}

/// Signs `body` as a sender of `scheme` would.
fn sign_body(
    scheme: SchemeArg,
    secret: &str,
    timestamp: i64,
    id: &str,
    method: &str,
    path: &str,
    body: &[u8],
) -> Result<SignedHeaders, CliError> {
    Ok(match scheme {
        SchemeArg::Schematic => Signer::<Schematic>::new(secret)
            .map_err(bad_secret)?
            .sign(timestamp, body),
        SchemeArg::Standard => {
            if id.is_empty() || id.contains('.') {
                return Err(CliError::usage("--id must be non-empty and without `.`"));
            }
            Signer::<StandardWebhooks>::new(secret)
                .map_err(bad_secret)?
                .sign(id, timestamp, body)
        }
        SchemeArg::Stripe => Signer::<Stripe>::new(secret)
            .map_err(bad_secret)?
            .sign(timestamp, body),
        SchemeArg::Github => Signer::<GitHub>::new(secret)
            .map_err(bad_secret)?
            .sign(body),
        SchemeArg::Flagsmith => Signer::<Flagsmith>::new(secret)
            .map_err(bad_secret)?
            .sign(body),
        SchemeArg::Esauti => Signer::<Esauti>::new(secret)
            .map_err(bad_secret)?
            .sign(method, path, timestamp, body),
    })
}

/// A verifier of any scheme.
enum AnyVerifier {
    Schematic(Verifier<Schematic>),
    Standard(Verifier<StandardWebhooks>),
    Stripe(Verifier<Stripe>),
    Github(Verifier<GitHub>),
    Flagsmith(Verifier<Flagsmith>),
    Esauti(Verifier<Esauti>),
}

fn build_one<S: Scheme>(
    secret: &str,
    tolerance: Option<Duration>,
) -> Result<Verifier<S>, CliError> {
    let mut b = Verifier::<S>::builder().secret(secret);
    b = match tolerance {
        Some(t) => b.tolerance(t),
        None => b.ignore_timestamp_age(),
    };
    b.build().map_err(bad_secret)
}

/// What a verification found.
struct Checked {
    timestamp: Option<i64>,
    id: Option<String>,
}

impl AnyVerifier {
    fn new(scheme: SchemeArg, secret: &str, tolerance: Option<Duration>) -> Result<Self, CliError> {
        Ok(match scheme {
            SchemeArg::Schematic => AnyVerifier::Schematic(build_one(secret, tolerance)?),
            SchemeArg::Standard => AnyVerifier::Standard(build_one(secret, tolerance)?),
            SchemeArg::Stripe => AnyVerifier::Stripe(build_one(secret, tolerance)?),
            SchemeArg::Github => AnyVerifier::Github(build_one(secret, tolerance)?),
            SchemeArg::Flagsmith => AnyVerifier::Flagsmith(build_one(secret, tolerance)?),
            SchemeArg::Esauti => AnyVerifier::Esauti(build_one(secret, tolerance)?),
        })
    }

    fn verify(&self, parts: &http::request::Parts, body: &[u8]) -> Result<Checked, WebhookError> {
        let v = match self {
            AnyVerifier::Schematic(v) => v.verify_parts(parts, body)?,
            AnyVerifier::Standard(v) => v.verify_parts(parts, body)?,
            AnyVerifier::Stripe(v) => v.verify_parts(parts, body)?,
            AnyVerifier::Github(v) => v.verify_parts(parts, body)?,
            AnyVerifier::Flagsmith(v) => v.verify_parts(parts, body)?,
            AnyVerifier::Esauti(v) => v.verify_parts(parts, body)?,
        };
        Ok(Checked {
            timestamp: v.timestamp(),
            id: v.id().map(str::to_owned),
        })
    }
}

/// The body of `--body`, or standard input.
fn body_of(arg: Option<&str>) -> Result<Vec<u8>, CliError> {
    match arg {
        Some(a) => read_body_arg(a),
        None => {
            if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
                eprintln!("reading the body from standard input (end it with Ctrl-D)…");
            }
            read_stdin()
        }
    }
}

async fn sign(args: SignArgs, settings: &Settings, json: bool) -> Result<(), CliError> {
    let secret = require_secret(&args.secret, args.scheme, settings)?;
    let body = body_of(args.body.as_deref())?;
    let timestamp = args.timestamp.unwrap_or_else(unix_now);
    let id = args.id.clone().unwrap_or_else(message_id);
    let signed = sign_body(
        args.scheme,
        &secret,
        timestamp,
        &id,
        &args.method,
        &args.path,
        &body,
    )?;
    let mut out = std::io::stdout().lock();
    if json {
        let map: Map<String, Value> = signed
            .iter()
            .map(|(k, v)| (k.to_owned(), Value::String(v.to_owned())))
            .collect();
        let _ = writeln!(out, "{}", Value::Object(map));
    } else {
        for (name, value) in signed.iter() {
            let _ = writeln!(out, "{name}: {value}");
        }
    }
    Ok(())
}

/// A request carrying `headers` and `body`, for the verifiers.
fn request_of(
    method: &str,
    path: &str,
    headers: &[(String, String)],
    body: Vec<u8>,
) -> Result<http::Request<Bytes>, CliError> {
    let mut b = http::Request::builder()
        .method(
            http::Method::from_bytes(method.to_ascii_uppercase().as_bytes())
                .map_err(|_| CliError::usage(format!("`{method}` is not an HTTP method")))?,
        )
        .uri(path);
    for (name, value) in headers {
        let name = http::HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| CliError::usage(format!("`{name}` is not a header name")))?;
        let value = http::HeaderValue::from_str(value)
            .map_err(|_| CliError::usage(format!("the value of `{name}` is not a header value")))?;
        b = b.header(name, value);
    }
    b.body(Bytes::from(body))
        .map_err(|_| CliError::usage(format!("`{path}` is not a request path")))
}

async fn verify(args: VerifyArgs, settings: &Settings, json: bool) -> Result<(), CliError> {
    let secret = require_secret(&args.secret, args.scheme, settings)?;
    let tolerance = (!args.ignore_age).then_some(args.tolerance);
    let verifier = AnyVerifier::new(args.scheme, &secret, tolerance)?;
    let body = body_of(args.body.as_deref())?;
    let (parts, body) = request_of(&args.method, &args.path, &args.headers, body)?.into_parts();
    match verifier.verify(&parts, &body) {
        Ok(checked) => {
            if json {
                println!(
                    "{}",
                    json!({"verified": true, "scheme": scheme_name(args.scheme), "timestamp": checked.timestamp, "id": checked.id})
                );
            } else {
                let mut line = format!("verified ({})", scheme_name(args.scheme));
                if let Some(ts) = checked.timestamp {
                    line.push_str(&format!(", timestamp {ts}"));
                }
                if let Some(id) = &checked.id {
                    line.push_str(&format!(", id {id}"));
                }
                println!("{}", Style::stdout().green(&line));
            }
            Ok(())
        }
        Err(e) => {
            if json {
                println!(
                    "{}",
                    json!({"verified": false, "scheme": scheme_name(args.scheme), "error": e.to_string()})
                );
            }
            Err(CliError::Verification(e.to_string()))
        }
    }
}

/// A sample delivery body for `event` in the scheme's usual shape.
fn sample_body(scheme: SchemeArg, event: &str) -> Value {
    let object = event.split('.').next().unwrap_or(event);
    match scheme {
        SchemeArg::Schematic => json!({
            "action": event,
            "account_id": "acct_test",
            "environment_id": "env_test",
            "object_type": object,
            "body": {"id": format!("{object}_test"), "name": "Test"},
        }),
        SchemeArg::Flagsmith => json!({
            "event_type": event,
            "data": {"changed_by": "flagwire", "timestamp": now_rfc3339()},
        }),
        SchemeArg::Stripe => json!({
            "id": format!("evt_{:016x}", fastrand::u64(..)),
            "object": "event",
            "type": event,
            "created": unix_now(),
            "data": {"object": {}},
        }),
        _ => json!({
            "type": event,
            "timestamp": now_rfc3339(),
            "data": {},
        }),
    }
}

async fn send(args: SendArgs, settings: &Settings, json: bool) -> Result<(), CliError> {
    let secret = require_secret(&args.secret, args.scheme, settings)?;
    super::check_url(&args.to, "--to")?;
    let uri: http::Uri = args
        .to
        .parse()
        .map_err(|_| CliError::usage(format!("`{}` is not a URL", args.to)))?;
    let body = match &args.body {
        Some(arg) => read_body_arg(arg)?,
        None => serde_json::to_vec(&sample_body(args.scheme, &args.event)).unwrap_or_default(),
    };
    let id = message_id();
    let signed = sign_body(
        args.scheme,
        &secret,
        unix_now(),
        &id,
        "POST",
        uri.path(),
        &body,
    )?;
    let mut request = http::Request::post(uri)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Bytes::from(body))
        .map_err(|e| CliError::usage(e.to_string()))?;
    signed
        .apply_to(request.headers_mut())
        .map_err(|_| CliError::failed("a signed header is not a valid header value"))?;
    if args.scheme == SchemeArg::Github {
        request.headers_mut().insert(
            "x-github-event",
            http::HeaderValue::from_str(&args.event)
                .map_err(|_| CliError::usage("--event is not a header value"))?,
        );
    }
    let transport = flagwire_transport::TransportBuilder::new()
        .timeout(Some(args.timeout))
        .build()
        .map_err(|e| CliError::failed(format!("cannot build the HTTP client: {e}")))?;
    let response = match transport.oneshot(request).await {
        Ok(r) => r,
        Err(e) => match e.last_response() {
            Some(r) => r.clone(),
            None => {
                return Err(CliError::Network(format!(
                    "no answer from {}: {e}",
                    args.to
                )));
            }
        },
    };
    let status = response.status().as_u16();
    let answer = json_or_text(response.body());
    if json {
        println!(
            "{}",
            json!({"to": args.to, "scheme": scheme_name(args.scheme), "status": status, "response": answer})
        );
    } else {
        let style = Style::stdout();
        let s = status.to_string();
        let s = if response.status().is_success() {
            style.green(&s)
        } else {
            style.red(&s)
        };
        println!("{} {} → {s}", scheme_name(args.scheme), args.to);
        match &answer {
            Value::Null => {}
            Value::String(text) => println!("{text}"),
            v => println!("{}", serde_json::to_string_pretty(v).unwrap_or_default()),
        }
    }
    if response.status().is_success() {
        Ok(())
    } else {
        Err(CliError::Api(format!(
            "{} answered {status}: {}",
            args.to,
            crate::error::one_line(&String::from_utf8_lossy(response.body()))
        )))
    }
}

/// A delivery as `listen` saw it.
struct Received {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Bytes,
    outcome: Option<Result<Checked, String>>,
    /// With `--forward-to`: the target's status, or why it gave none.
    forwarded: Option<Result<u16, String>>,
}

/// Where `listen` passes verified deliveries on.
struct Forward {
    url: http::Uri,
    transport: flagwire_transport::BoxTransport,
}

impl Forward {
    /// Sends the delivery on as it came (minus hop-by-hop headers); the
    /// target's answer, or why there was none.
    async fn send(
        &self,
        parts: &http::request::Parts,
        body: Bytes,
    ) -> Result<http::Response<Bytes>, String> {
        let mut request = http::Request::new(body);
        *request.method_mut() = parts.method.clone();
        *request.uri_mut() = self.url.clone();
        for (name, value) in &parts.headers {
            if !matches!(
                name.as_str(),
                "host" | "connection" | "content-length" | "transfer-encoding" | "keep-alive"
            ) {
                request.headers_mut().append(name.clone(), value.clone());
            }
        }
        match self.transport.clone().oneshot(request).await {
            Ok(r) => Ok(r),
            Err(e) => match e.last_response() {
                Some(r) => Ok(r.clone()),
                None => Err(e.to_string()),
            },
        }
    }
}

async fn handle(
    req: hyper::Request<hyper::body::Incoming>,
    verifier: Arc<Option<AnyVerifier>>,
    forward: Arc<Option<Forward>>,
    tx: mpsc::Sender<Received>,
) -> Result<hyper::Response<Full<Bytes>>, Infallible> {
    let (parts, body) = req.into_parts();
    let body = match Limited::new(body, MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            return Ok(respond(413, &b"body too large or unreadable"[..]));
        }
    };
    let outcome = verifier
        .as_ref()
        .as_ref()
        .map(|v| v.verify(&parts, &body).map_err(|e| e.to_string()));
    let mut status = match &outcome {
        Some(Err(_)) => 400,
        _ => 200,
    };
    let mut answer = Bytes::from_static(if status == 200 {
        b"ok"
    } else {
        b"invalid signature"
    });
    let mut forwarded = None;
    if status == 200
        && let Some(forward) = forward.as_ref()
    {
        match forward.send(&parts, body.clone()).await {
            Ok(r) => {
                status = r.status().as_u16();
                answer = r.body().clone();
                forwarded = Some(Ok(status));
            }
            Err(e) => {
                status = 502;
                answer = Bytes::from_static(b"forward target unreachable");
                forwarded = Some(Err(e));
            }
        }
    }
    let headers = parts
        .headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let _ = tx
        .send(Received {
            method: parts.method.to_string(),
            path: parts.uri.path().to_owned(),
            headers,
            body,
            outcome,
            forwarded,
        })
        .await;
    Ok(respond(status, answer))
}

fn respond(status: u16, body: impl Into<Bytes>) -> hyper::Response<Full<Bytes>> {
    let mut r = hyper::Response::new(Full::new(body.into()));
    *r.status_mut() = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::OK);
    r
}

fn print_received(r: &Received, json: bool) {
    let body = json_or_text(&r.body);
    if json {
        let headers: Map<String, Value> = r
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        let (verified, error, ts, id) = match &r.outcome {
            None => (Value::Null, None, None, None),
            Some(Ok(c)) => (Value::Bool(true), None, c.timestamp, c.id.clone()),
            Some(Err(e)) => (Value::Bool(false), Some(e.clone()), None, None),
        };
        let forwarded = match &r.forwarded {
            None => Value::Null,
            Some(Ok(status)) => json!({"status": status}),
            Some(Err(e)) => json!({"error": e}),
        };
        println!(
            "{}",
            json!({"at": now_rfc3339(), "method": r.method, "path": r.path, "verified": verified,
                   "error": error, "timestamp": ts, "id": id, "headers": headers, "body": body,
                   "forwarded": forwarded})
        );
    } else {
        let style = Style::stdout();
        let status = match &r.outcome {
            None => style.yellow("unverified"),
            Some(Ok(c)) => {
                let mut s = "verified".to_owned();
                if let Some(ts) = c.timestamp {
                    s.push_str(&format!(" (timestamp {ts})"));
                }
                style.green(&s)
            }
            Some(Err(e)) => style.red(&format!("NOT verified: {e}")),
        };
        let forwarded = match &r.forwarded {
            None => String::new(),
            Some(Ok(code)) => format!("  → forwarded: {code}"),
            Some(Err(e)) => style.red(&format!("  → forward failed: {e}")),
        };
        println!(
            "{} {} {}  {status}{forwarded}",
            style.dim(&now_rfc3339()),
            style.bold(&r.method),
            r.path
        );
        let pretty = match &body {
            Value::String(s) => s.clone(),
            v => serde_json::to_string_pretty(v).unwrap_or_default(),
        };
        for line in pretty.lines() {
            println!("  {line}");
        }
    }
    let _ = std::io::stdout().flush();
}

async fn listen(args: ListenArgs, settings: &Settings, json: bool) -> Result<(), CliError> {
    let verifier = match secret(&args.secret, args.scheme, settings) {
        Some(s) if !s.is_empty() => Some(AnyVerifier::new(args.scheme, &s, Some(args.tolerance))?),
        Some(_) => return Err(CliError::usage("the secret is empty")),
        None => None,
    };
    let verifying = verifier.is_some();
    let verifier = Arc::new(verifier);
    let forward = match &args.forward_to {
        None => None,
        Some(url) => {
            super::check_url(url, "--forward-to")?;
            let transport = flagwire_transport::TransportBuilder::new()
                .timeout(Some(Duration::from_secs(30)))
                .build()
                .map_err(|e| CliError::failed(format!("cannot build the HTTP client: {e}")))?;
            Some(Forward {
                url: url
                    .parse()
                    .map_err(|_| CliError::usage(format!("`{url}` is not a URL")))?,
                transport,
            })
        }
    };
    let forward = Arc::new(forward);
    let listener = tokio::net::TcpListener::bind(SocketAddr::new(args.host, args.port))
        .await
        .map_err(|e| CliError::io(format!("cannot listen on {}:{}", args.host, args.port), e))?;
    let addr = listener
        .local_addr()
        .map_err(|e| CliError::io("listener address", e))?;
    if json {
        println!(
            "{}",
            json!({"listening": format!("http://{addr}/"), "scheme": scheme_name(args.scheme), "verifying": verifying})
        );
    } else {
        println!(
            "listening on http://{addr}/ ({}, {})",
            scheme_name(args.scheme),
            if verifying {
                "verifying"
            } else {
                "not verifying: no secret"
            }
        );
    }
    let _ = std::io::stdout().flush();

    let (tx, mut rx) = mpsc::channel::<Received>(64);
    let connections = Arc::new(tokio::sync::Mutex::new(tokio::task::JoinSet::new()));
    let accept_connections = connections.clone();
    let acceptor = tokio::spawn(async move {
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(_) => {
                    // Out of descriptors, or a connection reset before it
                    // was accepted: try again shortly rather than spin.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let (verifier, forward, tx) = (verifier.clone(), forward.clone(), tx.clone());
            let service =
                service_fn(move |req| handle(req, verifier.clone(), forward.clone(), tx.clone()));
            let mut set = accept_connections.lock().await;
            // Forget the connections that are done.
            while set.try_join_next().is_some() {}
            set.spawn(async move {
                let _ = http1::Builder::new()
                    .keep_alive(false)
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });

    let stop = super::until_stopped(args.duration);
    tokio::pin!(stop);
    let (mut total, mut failed) = (0u64, 0u64);
    loop {
        if args.count.is_some_and(|c| total >= c) {
            break;
        }
        tokio::select! {
            () = &mut stop => break,
            got = rx.recv() => match got {
                Some(r) => {
                    total += 1;
                    if matches!(r.outcome, Some(Err(_))) {
                        failed += 1;
                    }
                    print_received(&r, json);
                }
                None => break,
            }
        }
    }
    acceptor.abort();
    // Let the last answers reach their senders (connections close after
    // one exchange), at most a second.
    let mut set = std::mem::take(&mut *connections.lock().await);
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        while set.join_next().await.is_some() {}
    })
    .await;
    if !json {
        eprintln!("{total} delivery(ies), {failed} not verified");
    }
    if failed > 0 {
        return Err(CliError::Verification(format!(
            "{failed} of {total} delivery(ies) did not verify"
        )));
    }
    if let Some(c) = args.count
        && total < c
    {
        return Err(CliError::failed(format!(
            "received {total} of the {c} expected delivery(ies)"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scheme_round_trips() {
        for scheme in [
            SchemeArg::Schematic,
            SchemeArg::Standard,
            SchemeArg::Stripe,
            SchemeArg::Github,
            SchemeArg::Flagsmith,
            SchemeArg::Esauti,
        ] {
            let secret = if scheme == SchemeArg::Standard {
                "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
            } else {
                "s3cret"
            };
            let body = br#"{"a":1}"#.to_vec();
            let signed =
                sign_body(scheme, secret, unix_now(), "msg_1", "POST", "/hook", &body).unwrap();
            let headers: Vec<(String, String)> = signed
                .iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
            let v = AnyVerifier::new(scheme, secret, Some(Duration::from_secs(300))).unwrap();
            let (parts, body) = request_of("POST", "/hook", &headers, body.clone())
                .unwrap()
                .into_parts();
            assert!(v.verify(&parts, &body).is_ok(), "{scheme:?}");
            let (parts, body) = request_of("POST", "/hook", &headers, b"{\"a\":2}".to_vec())
                .unwrap()
                .into_parts();
            assert!(
                v.verify(&parts, &body).is_err(),
                "{scheme:?} accepted a changed body"
            );
        }
    }

    #[test]
    fn standard_ids_are_checked() {
        let e = sign_body(
            SchemeArg::Standard,
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            1,
            "a.b",
            "POST",
            "/",
            b"",
        )
        .unwrap_err();
        assert_eq!(e.exit_code(), 2);
    }
}
