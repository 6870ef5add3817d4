//! Quickstart: the Schematic client end to end.
//!
//! ```text
//! cargo run -p flagwire --example quickstart
//! ```
//!
//! Without `SCHEMATIC_API_KEY` it starts the `flagwire-mock` emulator in this
//! process and runs against it over loopback: seeds a flag with a targeting
//! rule, connects to DataStream so that checks are answered in-process,
//! upserts companies and a user, sends identify and track events, checks the
//! flag for two companies, changes the flag's rule and sees the change
//! arrive, lists companies page by page, receives a signed webhook and
//! verifies it, and shuts down with every event delivered. With `SCHEMATIC_API_KEY` set, the same client calls run
//! against the real API (`SCHEMATIC_FLAG` names the flag to check; default
//! `new-editor`), without the emulator-only steps.

use std::time::Duration;

use flagwire::Context;
use flagwire::datastream::DataStreamOptions;
use flagwire::schematic::api::companies::ListCompanies;
use flagwire::schematic::models::{UpsertCompanyRequestBody, UpsertUserRequestBody};
use flagwire::schematic::{CheckSource, Client, CompanyIdentity, IdentifyBody, Keys, TrackBody};
use flagwire::webhooks::SchematicVerifier;
use flagwire_mock::MockServer;
use futures_util::StreamExt;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const FLAG: &str = "new-editor";
const WEBHOOK_SECRET: &str = "whsec_quickstart";

/// What the run found, for the printed report (and for tests).
#[derive(Debug, Default)]
pub struct Report {
    /// Lines of the printed report.
    pub lines: Vec<String>,
    /// The flag's value for Acme and for Globex.
    pub flag_values: (bool, bool),
    /// Where those two answers came from.
    pub flag_sources: (Option<CheckSource>, Option<CheckSource>),
    /// Whether Globex saw the flag turn on after the rule changed, and how
    /// long the change took to reach the client.
    pub after_change: Option<(bool, Duration)>,
    /// Companies seen while paging.
    pub companies_listed: usize,
    /// Pages fetched.
    pub pages: usize,
    /// Whether a webhook arrived and its signature verified.
    pub webhook_verified: bool,
    /// Events queued and events delivered.
    pub events: (u64, u64),
}

impl Report {
    fn say(&mut self, line: impl Into<String>) {
        self.lines.push(line.into());
    }
}

fn keys(name: &str, value: &str) -> Keys {
    Keys::from([(name.to_owned(), value.to_owned())])
}

/// Runs against the emulator started here.
pub async fn run_with_mock() -> Result<Report, BoxError> {
    let server = MockServer::builder()
        .webhook_secret(WEBHOOK_SECRET)
        .start()
        .await?;
    let mut report = Report::default();
    report.say(format!(
        "emulator: REST {} | capture {}",
        server.rest_url(),
        server.capture_url()
    ));

    // A webhook endpoint of our own, registered with the emulator.
    let (hook_url, hook_rx) = webhook_receiver().await?;
    server.create_webhook(json!({
        "name": "quickstart", "url": hook_url, "request_types": ["company.updated"]
    }))?;

    // Seed: a flag that is on for Acme only.
    let acme = server.upsert_company(json!({"keys": {"id": "acme"}, "name": "Acme"}))?;
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
    report.say(format!("seeded flag `{FLAG}`: on for company acme"));

    // DataStream keeps the flags (and the companies and users checked) in
    // memory, so that checks are evaluated here, without a request each.
    let client = Client::builder(server.api_key())
        .base_url(server.rest_url())
        .capture_url(server.capture_url())
        .datastream(DataStreamOptions::new())
        .events(|e| e.flush_interval(Duration::from_millis(50)))
        .build()?;
    let ready = client.wait_until_ready(Duration::from_secs(5)).await;
    report.say(format!(
        "DataStream {}",
        if ready {
            "ready: flags in memory"
        } else {
            "not ready; checks use the API"
        }
    ));
    run_client(&client, &mut report, true).await?;

    // Turn the flag on for Globex too: the emulator pushes the new rule over
    // the socket and the next local check sees it.
    let globex = server
        .company_by_key("id", "globex")
        .ok_or("globex was upserted")?;
    let changed = std::time::Instant::now();
    server.set_flag_rules(
        FLAG,
        json!([{"name": "acme and globex", "priority": 0, "value": true, "conditions": [
            {"condition_type": "company", "operator": "eq",
             "resource_ids": [acme["id"], globex["id"]]}
        ], "condition_groups": []}]),
    )?;
    let globex_keys = keys("id", "globex");
    let mut seen = false;
    while changed.elapsed() < Duration::from_secs(5) {
        if client
            .check_flag(FLAG, Context::company(&globex_keys))
            .await
        {
            seen = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let took = changed.elapsed();
    report.after_change = Some((seen, took));
    report.say(format!(
        "rule changed to include globex: {} after {:.1} ms",
        if seen {
            "seen by the client"
        } else {
            "NOT seen"
        },
        took.as_secs_f64() * 1e3
    ));

    // The company update above triggered a signed delivery.
    let verifier = SchematicVerifier::new(WEBHOOK_SECRET)?;
    let (headers, body) = tokio::time::timeout(Duration::from_secs(5), hook_rx).await??;
    let verified = verifier.verify(&headers, &body).is_ok();
    let action = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["action"].as_str().map(str::to_owned))
        .unwrap_or_default();
    report.webhook_verified = verified;
    report.say(format!(
        "webhook `{action}` received, signature {}",
        if verified { "verified" } else { "INVALID" }
    ));

    let stats = client.shutdown(Duration::from_secs(5)).await;
    report.events = (stats.buffer.enqueued, stats.buffer.sent);
    report.say(format!(
        "shutdown: {} events queued, {} delivered in {} batch{}, {} retried, {} dead-lettered; the emulator received {}",
        stats.buffer.enqueued,
        stats.buffer.sent,
        stats.buffer.batches_sent,
        if stats.buffer.batches_sent == 1 { "" } else { "es" },
        stats.buffer.retried,
        stats.buffer.dead_lettered,
        server.events().len()
    ));
    server.stop().await;
    Ok(report)
}

/// The client calls shared by both modes.
async fn run_client(client: &Client, report: &mut Report, mock: bool) -> Result<(), BoxError> {
    let acme = UpsertCompanyRequestBody::new([("id", "acme")])
        .name("Acme Corp")
        .trait_value("seats", 12);
    client.companies().upsert_company(acme).await?;
    let globex = UpsertCompanyRequestBody::new([("id", "globex")]).name("Globex");
    client.companies().upsert_company(globex).await?;
    let ann = UpsertUserRequestBody::new([("email", "ann@acme.test")])
        .name("Ann")
        .company([("id", "acme")]);
    client.companies().upsert_user(ann).await?;
    report.say("upserted companies acme, globex and user ann@acme.test");

    client.identify(
        IdentifyBody::builder()
            .key("email", "ann@acme.test")
            .name("Ann")
            .company(CompanyIdentity::builder().key("id", "acme").build()?),
    )?;
    client.track(
        TrackBody::builder("api-call")
            .company_key("id", "acme")
            .user_key("email", "ann@acme.test")
            .quantity(3),
    )?;
    client.flush().await?;
    report.say("identify + track(api-call, quantity 3) delivered");

    let flag = std::env::var("SCHEMATIC_FLAG").unwrap_or_else(|_| FLAG.to_owned());
    let flag = if mock { FLAG.to_owned() } else { flag };
    let a = client
        .check_flag_detailed(&flag, Context::company(&keys("id", "acme")))
        .await;
    let g = client
        .check_flag_detailed(&flag, Context::company(&keys("id", "globex")))
        .await;
    report.flag_values = (a.value, g.value);
    report.flag_sources = (Some(a.source), Some(g.source));
    report.say(format!(
        "check `{flag}`: acme={} ({}, {:?}), globex={} ({}, {:?})",
        a.value, a.reason, a.source, g.value, g.reason, g.source
    ));

    let pages = client.paginate(ListCompanies::new().limit(1)).enumerate();
    let mut pages = std::pin::pin!(pages);
    while let Some((i, company)) = pages.next().await {
        let company = company?;
        report.companies_listed += 1;
        report.pages = i + 1;
        report.say(format!(
            "  page {}: {} ({})",
            i + 1,
            company.name,
            company.id
        ));
        if i >= 9 {
            break;
        }
    }
    report.say(format!(
        "listed {} companies, one per page",
        report.companies_listed
    ));
    Ok(())
}

/// Runs against the real API with the given key.
pub async fn run_live(api_key: String) -> Result<Report, BoxError> {
    let mut report = Report::default();
    let client = Client::builder(api_key)
        .timeout(Duration::from_secs(15))
        .build()?;
    report.say(format!("live API: {}", client.base_url()));
    run_client(&client, &mut report, false).await?;
    let stats = client.shutdown(Duration::from_secs(10)).await;
    report.events = (stats.buffer.enqueued, stats.buffer.sent);
    report.say(format!(
        "shutdown: {} events queued, {} delivered",
        stats.buffer.enqueued, stats.buffer.sent
    ));
    Ok(report)
}

/// A one-shot HTTP endpoint: accepts one POST, answers 200, hands over the
/// headers and the exact body.
async fn webhook_receiver() -> Result<
    (
        String,
        tokio::sync::oneshot::Receiver<(Vec<(String, String)>, Vec<u8>)>,
    ),
    BoxError,
> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hooks/schematic", listener.local_addr()?);
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let Ok((mut stream, _)) = listener.accept().await else {
            return;
        };
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        let (head_end, length) = loop {
            let Ok(n) = stream.read(&mut chunk).await else {
                return;
            };
            if n == 0 {
                return;
            }
            buf.extend_from_slice(&chunk[..n]);
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).to_string();
                let length = head
                    .lines()
                    .filter_map(|l| l.split_once(':'))
                    .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
                    .and_then(|(_, v)| v.trim().parse::<usize>().ok())
                    .unwrap_or(0);
                break (end + 4, length);
            }
        };
        while buf.len() < head_end + length {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
        let headers = head
            .lines()
            .skip(1)
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
            .collect();
        let body = buf[head_end..head_end + length].to_vec();
        let _ = stream
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            .await;
        let _ = tx.send((headers, body));
    });
    Ok((url, rx))
}

#[allow(dead_code)]
#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let report = match std::env::var("SCHEMATIC_API_KEY") {
        Ok(key) if !key.trim().is_empty() => run_live(key).await?,
        _ => run_with_mock().await?,
    };
    println!("flagwire quickstart");
    for line in &report.lines {
        println!("  {line}");
    }
    Ok(())
}
