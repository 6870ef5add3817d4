//! OpenFeature with the Schematic provider, end to end against the
//! emulator embedded in this process (no network, no account).
//!
//! ```text
//! cargo run -p flagwire-openfeature --example openfeature
//! ```
//!
//! It seeds a flag that is on for one company, starts a client with
//! DataStream (flags evaluated in this process), registers the provider
//! with OpenFeature, evaluates the flag for several contexts (a rule match,
//! the flag default, an unknown flag, a malformed context, a non-boolean
//! request), shows the provider's status when the DataStream connection
//! drops, tracks an event and shuts down with it delivered.

use std::time::{Duration, Instant};

use flagwire::datastream::{DataStreamOptions, ReconnectPolicy};
use flagwire::schematic::Client;
use flagwire_mock::MockServer;
use flagwire_openfeature::{SchematicProvider, TrackOptions};
use open_feature::provider::{FeatureProvider, ProviderStatus};
use open_feature::{EvaluationContext, EvaluationContextFieldValue, OpenFeature};
use serde_json::json;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const FLAG: &str = "new-editor";

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let server = MockServer::start().await?;
    let acme = server.upsert_company(json!({"keys": {"id": "acme"}, "name": "Acme"}))?;
    server.upsert_company(json!({"keys": {"id": "globex"}, "name": "Globex"}))?;
    server.create_flag(json!({
        "key": FLAG, "name": "New editor", "description": "", "flag_type": "boolean",
        "default_value": false
    }))?;
    server.set_flag_rules(
        FLAG,
        json!([{"name": "acme", "priority": 0, "value": true, "conditions": [
            {"condition_type": "company", "operator": "eq", "resource_ids": [acme["id"]]}
        ], "condition_groups": []}]),
    )?;
    println!(
        "emulator at {}; flag `{FLAG}` on for company acme",
        server.rest_url()
    );

    let client = Client::builder(server.api_key())
        .base_url(server.rest_url())
        .capture_url(server.capture_url())
        .datastream(
            DataStreamOptions::new().reconnect(
                ReconnectPolicy::default()
                    .with_base(Duration::from_millis(50))
                    .with_cap(Duration::from_millis(200)),
            ),
        )
        .build()?;
    let provider = SchematicProvider::builder(client)
        .init_timeout(Duration::from_secs(5))
        .build();
    println!("status before set_provider: {:?}", provider.status());

    // set_provider runs `initialize`, which waits for DataStream's flags.
    OpenFeature::singleton_mut()
        .await
        .set_provider(provider.clone())
        .await;
    println!("status after set_provider:  {:?}", provider.status());
    let flags = OpenFeature::singleton().await.create_client();

    let contexts = [
        (
            "ann at acme",
            EvaluationContext::default()
                .with_targeting_key("ann")
                .with_custom_field("company.id", "acme"),
        ),
        (
            "globex (nested struct)",
            EvaluationContext::default().with_custom_field(
                "company",
                EvaluationContextFieldValue::new_struct(vec![(
                    "id".to_owned(),
                    "globex".to_owned(),
                )]),
            ),
        ),
    ];
    for (who, context) in &contexts {
        let d = flags
            .get_bool_details(FLAG, Some(context), None)
            .await
            .map_err(|e| e.code)?;
        println!(
            "  {FLAG} for {who}: {} (reason {}, variant {})",
            d.value,
            d.reason.map(|r| r.to_string()).unwrap_or_default(),
            d.variant.as_deref().unwrap_or("-")
        );
    }

    let acme_ctx = &contexts[0].1;
    let unknown = flags
        .get_bool_details("no-such-flag", Some(acme_ctx), None)
        .await;
    println!("  unknown flag: {}", describe(unknown.map(|d| d.value)));
    let malformed = EvaluationContext::default().with_custom_field("company.id", 42);
    let bad = flags.get_bool_details(FLAG, Some(&malformed), None).await;
    println!("  company.id = 42: {}", describe(bad.map(|d| d.value)));
    let number = flags.get_int_value(FLAG, Some(acme_ctx), None).await;
    println!("  as an integer: {}", describe(number));

    // The connection drops: cached data keeps answering, the status says so.
    server.datastream_refuse_upgrades(3);
    server.datastream_drop_connections();
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let status = provider.status();
        if seen.last() != Some(&status) {
            seen.push(status);
        }
        if seen.len() > 1 && seen.last() == Some(&ProviderStatus::Ready) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    println!("status while the stream reconnects: {seen:?}");

    provider.track_with("export", acme_ctx, TrackOptions::new().quantity(3))?;
    let stats = provider.client().shutdown(Duration::from_secs(5)).await;
    println!(
        "shutdown: {} of {} events delivered (the track and the flag_check events of local checks); the emulator holds {} track event(s)",
        stats.buffer.sent,
        stats.buffer.enqueued,
        server
            .events()
            .iter()
            .filter(|e| e.event_type == "track")
            .count()
    );
    OpenFeature::singleton_mut().await.shutdown().await;
    server.stop().await;
    Ok(())
}

fn describe<T: std::fmt::Debug>(result: Result<T, open_feature::EvaluationError>) -> String {
    match result {
        Ok(value) => format!("{value:?}"),
        Err(e) => format!(
            "error {} ({}); the caller's default applies",
            e.code,
            e.message.unwrap_or_default()
        ),
    }
}
