//! The flagwire side of `cargo xtask bench --peers`, run as its own release
//! process (`xtask bench --flagwire-side ...`) against the flagwire-mock
//! binary, so that its timings and peak RSS are those of an application
//! using flagwire, not of the orchestrating task.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use flagwire::Error;
use flagwire::events::BufferError;
use flagwire::schematic::Client;
use flagwire_core::events::TrackBody;
use flagwire_core::schematic::models::CompanyDetailResponseData;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};

use super::machine::proc_kib;
use super::peers::SideArgs;

type Bare = HyperClient<HttpConnector, Empty<Bytes>>;

/// Runs the side's mode (`measure` or `count`) and prints one JSON object.
pub fn main(args: &[&str]) -> Result<(), String> {
    let (mode, rest) = args
        .split_first()
        .ok_or("--flagwire-side needs a mode: measure or count")?;
    let args = SideArgs::parse(rest)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let out = match *mode {
        "measure" => runtime.block_on(measure(&args))?,
        "count" => runtime.block_on(count(&args))?,
        other => return Err(format!("unknown --flagwire-side mode {other:?}")),
    };
    println!("{out}");
    Ok(())
}

fn client(args: &SideArgs) -> Result<Client, String> {
    Client::builder(args.api_key.as_str())
        .base_url(args.rest.as_str())
        .capture_url(args.capture.as_str())
        .build()
        .map_err(|e| format!("building the flagwire client: {e}"))
}

fn company_keys(args: &SideArgs) -> BTreeMap<String, String> {
    BTreeMap::from([("id".to_owned(), args.company_key.clone())])
}

/// The seeded company, found by its key.
async fn company(client: &Client, args: &SideArgs) -> Result<CompanyDetailResponseData, String> {
    client
        .companies()
        .lookup_company(company_keys(args))
        .await
        .map_err(|e| format!("looking up company {:?}: {e}", args.company_key))
}

/// Counts the delivered track events of `args.subtype`: the mock adds each
/// event's quantity (1) to the company's all-time metric for that subtype.
async fn count(args: &SideArgs) -> Result<Value, String> {
    let company = company(&client(args)?, args).await?;
    let counted = company
        .metrics
        .iter()
        .filter(|m| m.event_subtype == args.subtype)
        .filter(|m| serde_json::to_value(&m.period).ok() == Some(json!("all_time")))
        .map(|m| m.value)
        .max()
        .unwrap_or(0);
    Ok(json!({ "subtype": args.subtype, "count": counted }))
}

/// Median nanoseconds per call of `a` and of `b`, over batches of `batch`
/// sequential calls taken in turn (a batch of `a`, then one of `b`) for about
/// `seconds` (at least five batches each), so that both see the same
/// conditions on a busy machine. Each batch is timed as the Python side
/// times its own.
async fn interleaved_ns<A, FutA, B, FutB>(
    seconds: f64,
    batch: u32,
    mut a: A,
    mut b: B,
) -> Result<(f64, f64), String>
where
    A: FnMut() -> FutA,
    FutA: Future<Output = Result<(), String>>,
    B: FnMut() -> FutB,
    FutB: Future<Output = Result<(), String>>,
{
    let (mut sa, mut sb) = (Vec::new(), Vec::new());
    let deadline = Instant::now() + Duration::from_secs_f64(seconds * 2.0);
    while sa.len() < 5 || Instant::now() < deadline {
        let start = Instant::now();
        for _ in 0..batch {
            a().await?;
        }
        sa.push(start.elapsed().as_nanos() as f64 / f64::from(batch));
        let start = Instant::now();
        for _ in 0..batch {
            b().await?;
        }
        sb.push(start.elapsed().as_nanos() as f64 / f64::from(batch));
    }
    Ok((median(sa), median(sb)))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

async fn bare_get(client: &Bare, uri: &http::Uri, key: &str) -> Result<(), String> {
    let req = http::Request::get(uri.clone())
        .header("x-schematic-api-key", key)
        .body(Empty::new())
        .map_err(|e| e.to_string())?;
    let resp = client.request(req).await.map_err(|e| e.to_string())?;
    if !resp.status().is_success() {
        return Err(format!("bare GET answered {}", resp.status()));
    }
    resp.into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?;
    Ok(())
}

fn track_body(args: &SideArgs) -> Result<TrackBody, String> {
    TrackBody::builder(args.subtype.as_str())
        .company_key("id", args.company_key.as_str())
        .quantity(1)
        .build()
        .map_err(|e| format!("track body: {e}"))
}

async fn measure(args: &SideArgs) -> Result<Value, String> {
    let client = client(args)?;
    let id = company(&client, args).await?.id;

    // Sequential get_company round trips through the whole client, and the
    // same request from a bare hyper-util client reading the body.
    let mut http = HttpConnector::new();
    http.set_nodelay(true);
    let bare: Bare = HyperClient::builder(TokioExecutor::new()).build(http);
    let uri: http::Uri = format!("{}/companies/{id}", args.rest.trim_end_matches('/'))
        .parse()
        .map_err(|e| format!("company URL: {e}"))?;
    let get_company = || async {
        client
            .companies()
            .get_company(id.as_str())
            .await
            .map(drop)
            .map_err(|e| format!("get_company: {e}"))
    };
    for _ in 0..20 {
        get_company().await?;
        bare_get(&bare, &uri, &args.api_key).await?;
    }
    let (get_company_ns, bare_get_ns) = interleaved_ns(args.seconds, 20, get_company, || {
        bare_get(&bare, &uri, &args.api_key)
    })
    .await?;

    // Delivery: `events` track calls as fast as the queue accepts them, then
    // shutdown, which waits for the last batch.
    let sender = self::client(args)?;
    let body = track_body(args)?;
    let start = Instant::now();
    let mut waits = 0u64;
    for _ in 0..args.events {
        loop {
            match sender.track(body.clone()) {
                Ok(()) => break,
                Err(Error::Buffer(BufferError::QueueFull)) => {
                    waits += 1;
                    tokio::time::sleep(Duration::from_micros(500)).await;
                }
                Err(e) => return Err(format!("track: {e}")),
            }
        }
    }
    let stats = sender.shutdown(Duration::from_secs(60)).await;
    let elapsed = start.elapsed().as_secs_f64();
    client.shutdown(Duration::from_secs(5)).await;

    Ok(json!({
        "side": "flagwire",
        "version": flagwire_version(),
        "company_id": id,
        "get_company_ns": get_company_ns,
        "bare_get_ns": bare_get_ns,
        "delivery": {
            "events": args.events,
            "seconds": elapsed,
            "events_per_sec": args.events as f64 / elapsed,
            "sent": stats.buffer.sent,
            "dropped": stats.buffer.dropped,
            "queue_full_waits": waits,
        },
        "peak_rss_bytes": peak_rss_bytes(),
    }))
}

fn flagwire_version() -> &'static str {
    // xtask shares the workspace version with flagwire.
    env!("CARGO_PKG_VERSION")
}

/// `VmHWM` of this process (Linux), in bytes.
fn peak_rss_bytes() -> Option<u64> {
    Some(proc_kib("/proc/self/status", "VmHWM:")? * 1024)
}
