//! Flagsmith's identity-flags webhook, received and verified (features
//! `axum` and `serde`).
//!
//! Flagsmith can post the evaluated flags, traits and segments of an
//! identity to an endpoint of yours, signed with the integration's secret in
//! `X-Flagsmith-Signature` (hex HMAC-SHA256 of the raw body). This example
//! has both halves of Flagsmith's integration page:
//!
//! * [`validate_signature`]: the page's manual check, in one call;
//! * [`app`]: an endpoint that accepts the payload, verifies it before the
//!   handler runs, and reads it as typed [`IdentityFlags`].
//!
//! To stay self-contained, `main` serves the endpoint on loopback, sends it
//! a signed payload, a tampered one and an unsigned one, checks the answers
//! and exits.
//!
//! ```sh
//! cargo run -p flagwire-webhooks --example flagsmith
//! ```
//!
//! In your own crate: `flagwire-webhooks = { version = "0.1", features = ["axum", "serde"] }`.

mod common;

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use flagwire_webhooks::axum::VerifiedWebhook;
use flagwire_webhooks::payload::flagsmith::IdentityFlags;
use flagwire_webhooks::{Flagsmith, FlagsmithVerifier, Signer};
use tokio::net::TcpListener;

/// The secret given to Flagsmith when adding the integration.
pub const SECRET: &str = "my shared secret";

/// The page's "Validating Signature" snippet: is `request_body` what
/// Flagsmith signed?
// Python: 8 lines, here: 2
pub fn validate_signature(request_body: &[u8], headers: &HeaderMap) -> bool {
    let secret = "my shared secret";
    FlagsmithVerifier::new(secret).is_ok_and(|v| v.verify(headers, request_body).is_ok())
}

/// The endpoint: runs only for verified deliveries (anything else gets an
/// empty `400` first) and answers `422` to a body that is not the
/// identity-flags payload.
pub async fn identity_flags(webhook: VerifiedWebhook<Flagsmith>) -> StatusCode {
    let Ok(payload) = serde_json::from_slice::<IdentityFlags>(webhook.body()) else {
        return StatusCode::UNPROCESSABLE_ENTITY;
    };
    for flag in &payload.flags {
        println!(
            "  {}: `{}` is {}",
            payload.identity,
            flag.feature.name,
            if flag.enabled { "on" } else { "off" }
        );
    }
    let segments = payload.segments.iter().filter(|s| s.member).count();
    println!("  {} in {segments} segment(s)", payload.identity);
    StatusCode::OK
}

/// The router: `POST /webhooks/flagsmith`, verified with `secret`.
pub fn app(secret: &str) -> Result<Router, flagwire_webhooks::Error> {
    Ok(Router::new()
        .route("/webhooks/flagsmith", post(identity_flags))
        .with_state(FlagsmithVerifier::new(secret)?))
}

/// Header name/value pairs to send.
type Headers<'a> = Vec<(&'a str, &'a str)>;

/// A payload of the shape the page documents (values of our own).
pub const PAYLOAD: &[u8] = br#"{"flags": [{"enabled": true, "environment": 7, "feature": {"created_date": "2026-03-02T10:15:00.000000Z", "default_enabled": false, "description": "The new checkout", "id": 31, "initial_value": null, "name": "new_checkout", "type": "STANDARD"}, "feature_segment": null, "feature_state_value": null, "id": 90, "identity": null}, {"enabled": false, "environment": 7, "feature": {"created_date": "2026-03-05T08:00:00.000000Z", "default_enabled": false, "description": null, "id": 32, "initial_value": "blue", "name": "theme", "type": "STANDARD"}, "feature_segment": null, "feature_state_value": "blue", "id": 91, "identity": null}], "identity": "ann@example.com", "segments": [{"id": 3, "member": true, "name": "beta_testers"}], "traits": [{"id": 12, "trait_key": "plan", "trait_value": "pro"}, {"id": 13, "trait_key": "seats", "trait_value": 12}]}"#;

/// Serves [`app`] on loopback and posts it a signed, a tampered and an
/// unsigned delivery; answers the three statuses.
pub async fn run() -> Result<[u16; 3], Box<dyn std::error::Error>> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let app = app(SECRET)?;
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    println!("listening on http://{addr}/webhooks/flagsmith");

    let signed = Signer::<Flagsmith>::new(SECRET)?.sign(PAYLOAD);
    let headers = signed.to_header_map()?;
    println!(
        "validate_signature: {}",
        validate_signature(PAYLOAD, &headers)
    );
    let mut tampered = PAYLOAD.to_vec();
    let at = tampered.len() - 3;
    tampered[at] = b'3'; // "seats": 12 becomes 13

    let path = "/webhooks/flagsmith";
    let mut statuses = [0; 3];
    let cases: [(&str, Headers, &[u8]); 3] = [
        ("signed", signed.iter().collect(), PAYLOAD),
        ("tampered", signed.iter().collect(), &tampered),
        ("unsigned", Vec::new(), PAYLOAD),
    ];
    for (i, (what, headers, body)) in cases.into_iter().enumerate() {
        let answer = common::post(addr, path, headers, body).await?;
        println!("{what:>9}: {} {:?}", answer.status, answer.body);
        statuses[i] = answer.status;
    }
    server.abort();
    Ok(statuses)
}

#[allow(dead_code)]
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let statuses = run().await?;
    if statuses != [200, 400, 400] {
        return Err(format!("unexpected answers: {statuses:?}").into());
    }
    Ok(())
}
