//! Verifying Standard Webhooks deliveries with the tower layer (feature
//! `tower`), here in front of an axum route.
//!
//! `VerifyWebhookLayer` reads the body, verifies the request and only then
//! calls the inner service, with the verified facts in the request's
//! extensions and the body still readable. Anything else is answered with
//! an empty `400` (or `413` over the body limit) before the route runs. The
//! example sends itself a signed delivery, a replay of it with another
//! body, one with a forged signature and one over the limit over loopback,
//! checks the answers and exits.
//!
//! ```sh
//! cargo run -p flagwire-webhooks --example tower_layer
//! ```
//!
//! In your own crate: `flagwire-webhooks = { version = "0.1", features = ["tower"] }`.

mod common;

use axum::body::Bytes;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Extension, Router};
use flagwire_webhooks::tower::VerifyWebhookLayer;
use flagwire_webhooks::{
    Signer, StandardWebhooks, StandardWebhooksVerifier, VerifiedDelivery, unix_now,
};
use tokio::net::TcpListener;

/// The endpoint's secret, in the Standard Webhooks spelling.
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// Runs only for verified deliveries.
async fn receive(Extension(delivery): Extension<VerifiedDelivery>, body: Bytes) -> StatusCode {
    println!(
        "  handler: delivery {:?}, {} bytes, signed at {:?}",
        delivery.id(),
        body.len(),
        delivery.timestamp()
    );
    StatusCode::NO_CONTENT
}

/// Header name/value pairs to send.
type Headers<'a> = Vec<(&'a str, &'a str)>;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Rejection reasons are logged at debug level; show them.
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .init();

    let verifier = StandardWebhooksVerifier::new(SECRET)?;
    let app = Router::new()
        .route("/webhooks", post(receive))
        .route_layer(VerifyWebhookLayer::new(verifier).max_body_size(16 * 1024));
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    println!("listening on http://{addr}/webhooks");

    let body = br#"{"type":"invoice.paid","data":{"id":"inv_1"}}"#;
    let signer = Signer::<StandardWebhooks>::new(SECRET)?;
    let signed = signer.sign("msg_2tG6bXZ", unix_now(), body);
    let forged: Vec<(&str, &str)> = signed
        .iter()
        .map(|(name, value)| match name {
            "webhook-signature" => (name, "v1,Zm9yZ2VkIHNpZ25hdHVyZSBvZiAzMiBieXRlcyEhISE="),
            _ => (name, value),
        })
        .collect();
    let huge = vec![b' '; 20 * 1024];
    let huge_signed = signer.sign("msg_huge", unix_now(), &huge);

    // What is sent (headers, body) and the status it must get.
    let cases: [(&str, Headers, &[u8], u16); 4] = [
        ("signed", signed.iter().collect(), body, 204),
        ("other body", signed.iter().collect(), b"{}", 400),
        ("forged", forged, body, 400),
        ("over the limit", huge_signed.iter().collect(), &huge, 413),
    ];
    let mut unexpected = 0;
    for (what, headers, body, expected) in cases {
        let answer = common::post(addr, "/webhooks", headers, body).await?;
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
