//! Receiving Schematic webhooks in an axum app.
//!
//! The handler takes the raw body as `Bytes`, verifies it before parsing,
//! and answers every failure with the same generic `400`. To stay
//! self-contained, the example then sends itself one correctly signed
//! delivery and one tampered delivery over loopback, prints the answers and
//! exits.
//!
//! ```sh
//! cargo run -p flagwire-webhooks --example axum_verify
//! ```

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use flagwire_webhooks::payload::schematic::WebhookEvent;
use flagwire_webhooks::{Schematic, SchematicVerifier, SignedHeaders, Signer, unix_now};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The endpoint's signing secret, as shown in the Schematic dashboard.
const SECRET: &str = "example-endpoint-secret";

async fn schematic_webhook(
    State(verifier): State<Arc<SchematicVerifier>>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, &'static str) {
    if let Err(error) = verifier.verify(&headers, &body) {
        // The reason is for our logs only; the sender learns nothing.
        eprintln!("  server: rejected delivery: {error}");
        return (StatusCode::BAD_REQUEST, "invalid webhook");
    }
    match serde_json::from_slice::<WebhookEvent>(&body) {
        Ok(event) => {
            eprintln!(
                "  server: accepted `{}` for {}",
                event.action, event.object_type
            );
            (StatusCode::OK, "accepted")
        }
        Err(_) => (StatusCode::BAD_REQUEST, "invalid webhook"),
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let verifier = Arc::new(SchematicVerifier::new(SECRET)?);
    let app = Router::new()
        .route("/webhooks/schematic", post(schematic_webhook))
        .with_state(verifier);
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    println!("listening on http://{addr}/webhooks/schematic");

    // What Schematic would send.
    let body = br#"{"action":"company.updated","account_id":"acct_123","environment_id":"env_456","body":{"id":"comp_1"},"object_type":"company"}"#;
    let headers = Signer::<Schematic>::new(SECRET)?.sign(unix_now(), body);

    let signed = deliver(addr, &headers, body).await?;
    println!("signed delivery:   {signed}");

    let mut tampered = body.to_vec();
    let at = tampered.len() - 3;
    tampered[at] = b'2'; // "comp_1" becomes "comp_2"
    let rejected = deliver(addr, &headers, &tampered).await?;
    println!("tampered delivery: {rejected}");

    server.abort();
    if !signed.starts_with("200") || !rejected.starts_with("400") {
        return Err("unexpected responses".into());
    }
    Ok(())
}

/// POSTs `body` with `headers` over a plain HTTP/1.1 connection and returns
/// the status code, reason and response body on one line.
async fn deliver(
    addr: SocketAddr,
    headers: &SignedHeaders,
    body: &[u8],
) -> std::io::Result<String> {
    let mut request = format!(
        "POST /webhooks/schematic HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\n",
        body.len()
    );
    for (name, value) in headers.iter() {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");

    let mut stream = TcpStream::connect(addr).await?;
    stream.write_all(request.as_bytes()).await?;
    stream.write_all(body).await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;

    let (head, text) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head.lines().next().unwrap_or_default();
    let status = status.strip_prefix("HTTP/1.1 ").unwrap_or(status);
    Ok(format!("{status} ({text:?})"))
}
