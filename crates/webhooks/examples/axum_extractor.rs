//! Receiving Schematic webhooks in axum with the `VerifiedWebhook`
//! extractor (feature `axum`).
//!
//! The handler only runs for deliveries that verify: it gets the body
//! exactly as received and the signed timestamp. Everything else is
//! answered with an empty `400` (or `413` over the body limit) before it
//! runs. To stay self-contained, the example sends itself a signed
//! delivery, a tampered one, a stale one, one without signature and one
//! over the limit over loopback, checks the answers and exits.
//!
//! ```sh
//! cargo run -p flagwire-webhooks --example axum_extractor
//! ```
//!
//! In your own crate: `flagwire-webhooks = { version = "0.1", features = ["axum", "serde"] }`.

mod common;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::routing::post;
use flagwire_webhooks::axum::VerifiedWebhook;
use flagwire_webhooks::payload::schematic::WebhookEvent;
use flagwire_webhooks::{Schematic, SchematicVerifier, Signer, unix_now};
use tokio::net::TcpListener;

/// The endpoint's signing secret, as shown in the Schematic dashboard.
const SECRET: &str = "example-endpoint-secret";

async fn schematic_webhook(webhook: VerifiedWebhook<Schematic>) -> StatusCode {
    match serde_json::from_slice::<WebhookEvent>(webhook.body()) {
        Ok(event) => {
            println!(
                "  handler: `{}` for {} (signed at {:?})",
                event.action,
                event.object_type,
                webhook.timestamp()
            );
            StatusCode::OK
        }
        Err(_) => StatusCode::UNPROCESSABLE_ENTITY,
    }
}

/// Header name/value pairs to send.
type Headers<'a> = Vec<(&'a str, &'a str)>;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Rejection reasons are logged at debug level; show them.
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .init();

    let app = Router::new()
        .route("/webhooks/schematic", post(schematic_webhook))
        .layer(DefaultBodyLimit::max(64 * 1024))
        .with_state(SchematicVerifier::new(SECRET)?);
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    println!("listening on http://{addr}/webhooks/schematic");

    // What Schematic would send.
    let body = br#"{"action":"company.updated","account_id":"acct_123","environment_id":"env_456","body":{"id":"comp_1"},"object_type":"company"}"#;
    let signer = Signer::<Schematic>::new(SECRET)?;
    let signed = signer.sign(unix_now(), body);
    let mut tampered = body.to_vec();
    tampered[body.len() - 3] = b'2'; // "comp_1" becomes "comp_2"
    let stale = signer.sign(unix_now() - 3600, body);
    let huge = vec![b' '; 100 * 1024];
    let huge_signed = signer.sign(unix_now(), &huge);

    let path = "/webhooks/schematic";
    // What is sent (headers, body) and the status it must get.
    let cases: [(&str, Headers, &[u8], u16); 5] = [
        ("signed", signed.iter().collect(), body, 200),
        ("tampered", signed.iter().collect(), &tampered, 400),
        ("an hour old", stale.iter().collect(), body, 400),
        ("unsigned", Vec::new(), body, 400),
        ("over the limit", huge_signed.iter().collect(), &huge, 413),
    ];
    let mut unexpected = 0;
    for (what, headers, body, expected) in cases {
        let answer = common::post(addr, path, headers, body).await?;
        println!("{what:>15}: {} {:?}", answer.status, answer.body);
        if answer.status != expected {
            unexpected += 1;
        }
    }

    server.abort();
    if unexpected > 0 {
        return Err(format!("{unexpected} unexpected answers").into());
    }
    Ok(())
}
