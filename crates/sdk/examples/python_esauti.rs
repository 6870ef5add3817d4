//! Every example of the eSauti Python SDK's README, written with flagwire.
//!
//! ```text
//! cargo run -p flagwire --example python_esauti
//! ```
//!
//! Each `pub fn` below is the counterpart of one Python example, with the
//! line counts compared in a `// Python: N lines, here: M` comment
//! (non-blank, non-comment lines of the Python snippet, imports included,
//! against those of the function's body). The URLs and credentials the
//! Python writes inline are parameters; `main` passes those of the eSauti
//! emulator it starts in-process (`flagwire_mock::esauti`), so the file
//! runs with no network and no account. One difference shows in the
//! signatures: eSauti's REST API lives under `/api` and Event Injection at
//! the tenant's root, and flagwire names the two URLs apart (`rest_url`,
//! `events_url`) where the Python passes either as `base_url`.

use std::time::Duration;

use flagwire::Error;
use flagwire::esauti::api::contacts::{CreateContact, ListContacts};
use flagwire::esauti::{Client, EventEnvelope, EventType, Receipt};
use flagwire_mock::esauti::{DEFAULT_BEARER_TOKEN, DEFAULT_HMAC_SECRET, EsautiServer};
use serde_json::{Map, Value};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A contact list or a contact, as the REST API answers it.
pub type Document = Map<String, Value>;

/// Quick start, REST API: list contacts, create one.
// Python: 9 lines, here: 8
pub async fn rest_api(base_url: &str, token: &str) -> Result<(Document, Document), Error> {
    let client = Client::builder().rest_url(base_url).bearer_token(token);
    let client = client.build()?;
    let contacts = client.send(ListContacts::new().limit(10)).await?;
    println!("{contacts:?}");
    let fields = [("firstname", "Jane"), ("email", "jane@esauti.com")];
    let contact = client.send(CreateContact::new(fields)).await?;
    println!("{contact:?}");
    Ok((contacts, contact))
}

/// Quick start, Event Injection: a `customer.created` event.
// Python: 13 lines, here: 10
pub async fn event_injection(base_url: &str, token: &str) -> Result<Receipt, Error> {
    let client = Client::builder().events_url(base_url).bearer_token(token);
    let client = client.build()?;
    let event = EventEnvelope::builder(EventType::CustomerCreated)
        .customer_id("cus_123")
        .customer_field("email", "jane@esauti.com")
        .property("status", "active")
        .source("my-app");
    let receipt = client.events().send(event).await?;
    println!("{receipt:?}");
    Ok(receipt)
}

/// HMAC signing: with a secret, every attempt is signed afresh.
// Python: 12 lines, here: 11
pub async fn hmac_signing(base_url: &str, token: &str, secret: &str) -> Result<Receipt, Error> {
    let client = Client::builder()
        .events_url(base_url)
        .bearer_token(token)
        .hmac_secret(secret)
        .build()?;
    let event = EventEnvelope::builder("order.created")
        .customer_id("cus_456")
        .property("value", 99.99)
        .property("currency", "USD")
        .source("shopify");
    client.events().send(event).await
}

/// Configuration: every setting of the Python constructor. No HMAC secret
/// is the default; debug logging is whatever `tracing` subscriber the
/// application installs.
// Python: 11 lines, here: 9
pub fn configuration(base_url: &str, token: &str) -> Result<Client, Error> {
    Client::builder()
        .events_url(base_url)
        .bearer_token(token)
        .timeout(Duration::from_secs(30))
        .max_retries(3)
        .redact_pii(false)
        .events_path("/api/integrations/events")
        .source("sdk")
        .build()
}

#[allow(dead_code)]
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), BoxError> {
    // Unsigned events: an emulator without an HMAC secret.
    let server = EsautiServer::builder().hmac_secret(None).start().await?;
    let (contacts, contact) = rest_api(&server.rest_url(), DEFAULT_BEARER_TOKEN).await?;
    println!(
        "REST: {} contacts before, created contact {}",
        contacts["total"], contact["contact"]["id"]
    );
    let receipt = event_injection(&server.events_url(), DEFAULT_BEARER_TOKEN).await?;
    println!("customer.created: HTTP {}", receipt.http_status);

    // Signed events: an emulator that checks the signature.
    let signed = EsautiServer::start().await?;
    let url = signed.events_url();
    let receipt = hmac_signing(&url, DEFAULT_BEARER_TOKEN, DEFAULT_HMAC_SECRET).await?;
    println!("order.created, signed: {receipt:?}");

    let client = configuration(&url, DEFAULT_BEARER_TOKEN)?;
    println!(
        "configured: events go to {:?} with source {}",
        client.events_endpoint().map(ToString::to_string),
        client.source()
    );
    server.stop().await;
    signed.stop().await;
    Ok(())
}
