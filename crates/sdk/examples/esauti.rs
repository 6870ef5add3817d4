//! The eSauti client end to end, against the in-process emulator.
//!
//! ```text
//! cargo run -p flagwire --example esauti
//! ```
//!
//! 1. REST: creates a contact and finds it again with a Mautic search.
//! 2. Events: sends a signed `order.created` worth `0` and prints the receipt.
//! 3. Outage: the events route goes down; the next event is tried `max_retries + 1` times,
//!    then written to a dead-letter file with its idempotency key.
//! 4. Replay: the route comes back; the dead letter is resent with its original key and the
//!    file is left empty. The emulator saw the event exactly once.

use std::time::Duration;

use flagwire::esauti::{Body, Client};
use flagwire_core::esauti::EventType;
use flagwire_core::esauti::api::contacts::ListContacts;
use flagwire_mock::esauti::{DEFAULT_API_KEY, DEFAULT_HMAC_SECRET, EsautiServer};
use flagwire_transport::RetryPolicy;
use serde_json::json;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), BoxError> {
    let server = EsautiServer::start().await?;
    let dead_letters = std::env::temp_dir().join(format!(
        "flagwire-esauti-example-{}.jsonl",
        std::process::id()
    ));
    let client = Client::builder()
        .api_key(DEFAULT_API_KEY)
        .hmac_secret(DEFAULT_HMAC_SECRET)
        .rest_url(server.rest_url())
        .events_url(server.events_url())
        .source("example-shop")
        .retry_policy(RetryPolicy::new().base_delay(Duration::from_millis(50)))
        .max_retries(2)
        .dead_letter_file(&dead_letters)
        .redact_pii(true)
        .build()?;
    println!("REST   {}", client.rest_url().unwrap_or("-"));
    println!(
        "events {}",
        client
            .events_endpoint()
            .map(|u| u.to_string())
            .unwrap_or_default()
    );

    // 1. REST.
    let fields: Body =
        serde_json::from_value(json!({"email": "ann@example.com", "firstname": "Ann"}))?;
    let created = client.contacts().create(fields).await?;
    let id = created["contact"]["id"].clone();
    let found = client
        .contacts()
        .list(ListContacts::new().search("ann").limit(10))
        .await?;
    println!(
        "contact {id} created; search \"ann\" finds {}",
        found["total"]
    );

    // 2. A signed event.
    let order = client
        .events()
        .event(EventType::OrderCreated)
        .customer_id("cus_1")
        .customer_field("email", "ann@example.com")
        .entity("order", "ord_9")
        .property("currency", "KES")
        .property("value", 0);
    let receipt = client.events().send(order).await?;
    println!(
        "order.created: HTTP {}, event_id {}, duplicate {}, {} attempt(s)",
        receipt.http_status,
        receipt.event_id.as_deref().unwrap_or("-"),
        receipt.duplicate,
        receipt.attempts
    );

    // 3. An outage.
    server.set_events_down(true);
    let login = client
        .events()
        .event(EventType::CustomerLogin)
        .customer_id("cus_1");
    let err = client
        .events()
        .send(login)
        .await
        .expect_err("the route is down");
    let attempts = server
        .requests()
        .iter()
        .filter(|r| r.path == "/v1/inbound/event" && r.status == 503)
        .count();
    println!("customer.login during the outage: {err} ({attempts} attempts)");
    println!(
        "dead letters: {}",
        std::fs::read_to_string(&dead_letters)?.lines().count()
    );

    // 4. Replay once the route is back.
    server.set_events_down(false);
    let report = client.events().replay(&dead_letters).await?;
    println!(
        "replay: read {}, delivered {}, duplicates {}, remaining {}",
        report.read, report.delivered, report.duplicates, report.remaining
    );
    for event in server.events() {
        println!(
            "emulator: {} {} delivered {} time(s)",
            event.envelope["type"].as_str().unwrap_or("?"),
            event.event_id,
            event.deliveries
        );
    }
    std::fs::remove_file(&dead_letters)?;
    server.stop().await;
    Ok(())
}
