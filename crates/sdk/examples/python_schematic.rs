//! Every example of the Schematic Python SDK's README, written with flagwire.
//!
//! ```text
//! cargo run -p flagwire --example python_schematic
//! ```
//!
//! Each `pub fn` below is the counterpart of one Python example, under the
//! name of the README section it comes from, with the line counts compared
//! in a `// Python: N lines, here: M` comment (non-blank, non-comment lines
//! of the Python snippet, imports included, against those of the function's
//! body). Where the Python builds a client from `"YOUR_API_KEY"`, the port
//! takes a `ClientBuilder`: in an application that is
//! `Client::builder(api_key)`; here `main` points it at the `flagwire-mock`
//! emulator it starts in-process, so the whole file runs with no network and
//! no account. `docs/python.md` walks through the same examples.

use std::net::IpAddr;
use std::time::Duration;

use bytes::Bytes;
use flagwire::Context;
use flagwire::Error;
use flagwire::cache::LocalFlagCache;
use flagwire::schematic::models::{
    CompanyDetailResponseData, UpsertCompanyRequestBody, UpsertUserRequestBody,
    UserDetailResponseData,
};
use flagwire::schematic::{
    Blocking, Client, ClientBuilder, CompanyIdentity, IdentifyBody, RequestOptions, TrackBody,
    blocking,
};
use flagwire::transport::proxy::Proxy;
use flagwire::webhooks::SchematicVerifier;
use flagwire::webhooks::payload::schematic::WebhookEvent;
use flagwire::webhooks::schematic::verify_signature;
use flagwire_mock::{Fault, Host, MockServer};
use http::{Method, Request, StatusCode};
use serde_json::json;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

// ----- Usage ----------------------------------------------------------------

/// `Schematic("YOUR_API_KEY")`: the synchronous client.
// Python: 2 lines, here: 1
pub fn sync_client(builder: ClientBuilder<Blocking>) -> Result<blocking::Client, Error> {
    builder.build()
}

/// `AsyncSchematic`: flagwire's main client is the async one; any Tokio
/// runtime drives it (`#[tokio::main]` plays `asyncio.run`).
// Python: 7 lines, here: 2
pub async fn async_client(
    builder: ClientBuilder,
    company_id: &str,
) -> Result<CompanyDetailResponseData, Error> {
    let client = builder.build()?;
    client.companies().get_company(company_id).await
}

/// `except ApiError as e`: every failure is a `flagwire::Error`, whose
/// accessors answer for any variant.
// Python: 7 lines, here: 4
pub async fn exception_handling(client: &Client) -> Option<StatusCode> {
    let e = client.companies().get_company("company_id").await.err()?;
    println!("{:?}", e.status());
    println!("{:?}", e.body());
    e.status()
}

// ----- Events ---------------------------------------------------------------

/// `client.identify(...)`: returns at once; the event is sent in the
/// background (`client.shutdown` waits for it).
// Python: 21 lines, here: 16
pub async fn identify(builder: ClientBuilder) -> Result<Client, Error> {
    let client = builder.build()?;
    let company = CompanyIdentity::builder()
        .key("id", "your-company-id")
        .name("Acme Widgets, Inc.")
        .trait_value("city", "Atlanta")
        .build()?;
    let user = IdentifyBody::builder()
        .key("email", "wcoyote@acme.net")
        .key("user_id", "your-user-id")
        .company(company)
        .name("Wile E. Coyote")
        .trait_value("login_count", 24)
        .trait_value("is_staff", false)
        .build()?;
    client.identify(user)?;
    Ok(client)
}

/// `client.track(...)`: returns at once, like `identify`.
// Python: 7 lines, here: 7
pub async fn track(builder: ClientBuilder) -> Result<Client, Error> {
    let client = builder.build()?;
    let event = TrackBody::builder("some-action")
        .user_key("user_id", "your-user-id")
        .company_key("id", "your-company-id")
        .build()?;
    client.track(event)?;
    Ok(client)
}

/// `client.track(..., quantity=10)`.
// Python: 6 lines, here: 6
pub async fn track_quantity(client: &Client) -> Result<(), Error> {
    let event = TrackBody::builder("some-action")
        .user_key("user_id", "your-user-id")
        .company_key("id", "your-company-id")
        .quantity(10)
        .build()?;
    client.track(event)
}

// ----- Creating and updating companies and users ----------------------------

/// `client.companies.upsert_company(...)`: answers the stored company.
// Python: 11 lines, here: 7
pub async fn upsert_company(builder: ClientBuilder) -> Result<CompanyDetailResponseData, Error> {
    let client = builder.build()?;
    let body = UpsertCompanyRequestBody::new([("id", "your-company-id")])
        .name("Acme Widgets, Inc.")
        .trait_value("city", "Atlanta")
        .trait_value("high_score", 25)
        .trait_value("is_active", true);
    client.companies().upsert_company(body).await
}

/// `client.companies.upsert_user(...)`.
// Python: 15 lines, here: 9
pub async fn upsert_user(builder: ClientBuilder) -> Result<UserDetailResponseData, Error> {
    let client = builder.build()?;
    let keys = [("email", "wcoyote@acme.net"), ("user_id", "your-user-id")];
    let body = UpsertUserRequestBody::new(keys)
        .name("Wile E. Coyote")
        .trait_value("city", "Atlanta")
        .trait_value("high_score", 25)
        .trait_value("is_active", true)
        .company([("id", "your-company-id")]);
    client.companies().upsert_user(body).await
}

// ----- Flag checks ----------------------------------------------------------

/// `client.check_flag(...)`: a `bool`, never an error (cache, API, your
/// defaults, then `false`).
// Python: 7 lines, here: 4
pub async fn check_flag(builder: ClientBuilder) -> Result<bool, Error> {
    let client = builder.build()?;
    let (company, user) = ([("id", "your-company-id")], [("user_id", "your-user-id")]);
    let context = Context::company(&company).with_user(&user);
    Ok(client.check_flag("some-flag-key", context).await)
}

// ----- Webhook verification -------------------------------------------------
//
// The framework examples take the request as any Rust web framework hands it
// over once the body is read (`http::Request<Bytes>`) and answer a status and
// a body. The verifier is built once, at start-up, from the endpoint's
// secret (shown in the Schematic app). For axum, the `axum` feature's
// `VerifiedWebhook` extractor does the check before the handler runs (see
// `crates/webhooks/examples/axum_extractor.rs`).

/// What the handlers answer: a status, or a status and a JSON error body
/// (axum, for one, takes this as a response as it is).
pub type Reply = Result<StatusCode, (StatusCode, String)>;

/// A status with a JSON `{"error": ...}` body (what `jsonify` does in
/// Flask; axum has `Json` for it).
pub fn json_error(status: StatusCode, error: impl std::fmt::Display) -> (StatusCode, String) {
    (status, json!({"error": error.to_string()}).to_string())
}

/// Flask's `schematic_webhook` view.
// Python: 19 lines, here: 10
pub fn flask_webhook(verifier: &SchematicVerifier, request: &Request<Bytes>) -> Reply {
    verifier.verify_request(request).map_err(|e| {
        println!("Webhook verification failed: {e}");
        json_error(StatusCode::BAD_REQUEST, e)
    })?;
    let data: WebhookEvent = serde_json::from_slice(request.body()).map_err(|e| {
        println!("Error processing webhook: {e}");
        json_error(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error")
    })?;
    println!("Webhook verified: {data:?}");
    Ok(StatusCode::OK)
}

/// Django's `schematic_webhook` view, which also refuses other methods.
// Python: 19 lines, here: 13
pub fn django_webhook(verifier: &SchematicVerifier, request: &Request<Bytes>) -> Reply {
    if request.method() != Method::POST {
        return Ok(StatusCode::METHOD_NOT_ALLOWED);
    }
    verifier.verify_request(request).map_err(|e| {
        println!("Webhook verification failed: {e}");
        json_error(StatusCode::BAD_REQUEST, e)
    })?;
    let data: WebhookEvent = serde_json::from_slice(request.body()).map_err(|e| {
        println!("Error processing webhook: {e}");
        json_error(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error")
    })?;
    println!("Webhook verified: {data:?}");
    Ok(StatusCode::OK)
}

/// FastAPI's `verify_signature` dependency: the check, apart from the
/// handler, turning a failure into a 400 with the reason.
// Python: 10 lines, here: 4
pub fn verify_dependency(verifier: &SchematicVerifier, request: &Request<Bytes>) -> Reply {
    match verifier.verify_request(request) {
        Ok(_) => Ok(StatusCode::OK),
        Err(e) => Err((StatusCode::BAD_REQUEST, e.to_string())),
    }
}

/// FastAPI's `schematic_webhook` route, run once the dependency passed.
// Python: 5 lines, here: 4
pub fn fastapi_webhook(verifier: &SchematicVerifier, request: &Request<Bytes>) -> Reply {
    verify_dependency(verifier, request)?;
    let data = String::from_utf8_lossy(request.body());
    println!("Webhook verified: {data}");
    Ok(StatusCode::OK)
}

/// `verify_signature(body, signature, timestamp, secret)` outside a request.
// Python: 8 lines, here: 3
pub fn verify_webhook_manually(body: &str, signature: &str, timestamp: &str, secret: &str) -> bool {
    verify_signature(body, signature, timestamp, secret)
        .inspect_err(|e| println!("Webhook verification failed: {e}"))
        .is_ok()
}

// ----- Configuration --------------------------------------------------------

/// A local cache of 100 entries kept for 1,000 ms.
// Python: 7 lines, here: 3
pub fn cache_config(builder: ClientBuilder) -> Result<Client, Error> {
    let ttl = Duration::from_millis(1000);
    let cache = LocalFlagCache::builder().capacity(100).ttl(ttl).build();
    builder.cache(cache).build()
}

/// No local cache: every check asks the API.
// Python: 3 lines, here: 1
pub fn disable_cache(builder: ClientBuilder) -> Result<Client, Error> {
    builder.disable_cache().build()
}

/// A default for a flag, used when no one can answer and offline.
// Python: 3 lines, here: 1
pub fn flag_defaults(builder: ClientBuilder) -> Result<Client, Error> {
    builder.flag_default("some-flag-key", true).build()
}

/// Offline mode: no network at all; the key may be empty.
// Python: 3 lines, here: 1
pub fn offline_mode() -> Result<Client, Error> {
    Client::builder("").offline(true).build()
}

/// Offline mode with a flag default.
// Python: 7 lines, here: 3
pub async fn offline_with_defaults() -> Result<bool, Error> {
    let builder = Client::builder("").flag_default("some-flag-key", true);
    let client = builder.offline(true).build()?;
    Ok(client.check_flag("some-flag-key", ()).await) // true
}

/// Timeouts for every request of the client, and for one request.
// Python: 7 lines, here: 3
pub async fn timeouts(
    builder: ClientBuilder,
    id: &str,
) -> Result<CompanyDetailResponseData, Error> {
    let client = builder.timeout(Duration::from_secs(20)).build()?;
    let options = RequestOptions::new().timeout(Duration::from_secs(20));
    client.companies().get_company_with(id, options).await
}

/// At most one retry for this request.
// Python: 3 lines, here: 2
pub async fn retries(client: &Client, id: &str) -> Result<CompanyDetailResponseData, Error> {
    let options = RequestOptions::new().max_retries(1); // only retry once on failure
    client.companies().get_company_with(id, options).await
}

/// A proxy and a local address for every connection (the httpx client
/// override).
// Python: 8 lines, here: 4
pub fn custom_http_client(builder: ClientBuilder, proxy: &str) -> Result<Client, Error> {
    builder
        .proxy(Proxy::all(proxy)?)
        .local_address(IpAddr::from([0, 0, 0, 0]))
        .build()
}

// ----- Running them all against the emulator --------------------------------

/// A client builder pointed at the emulator (in an application:
/// `Client::builder(api_key)`).
pub fn emulator_builder(server: &MockServer) -> ClientBuilder {
    Client::builder(server.api_key())
        .base_url(server.rest_url())
        .capture_url(server.capture_url())
        .events(|e| e.flush_interval(Duration::from_millis(20)))
}

/// The blocking twin of [`emulator_builder`].
pub fn emulator_blocking_builder(server: &MockServer) -> ClientBuilder<Blocking> {
    blocking::Client::builder(server.api_key())
        .base_url(server.rest_url())
        .capture_url(server.capture_url())
}

/// Seeds `some-flag-key`, off by default and on for `your-company-id`.
pub fn seed_flag(server: &MockServer) -> Result<(), BoxError> {
    let company = server.upsert_company(json!({"keys": {"id": "your-company-id"}}))?;
    server.create_flag(json!({
        "key": "some-flag-key", "name": "Some flag", "description": "",
        "flag_type": "boolean", "default_value": false
    }))?;
    server.set_flag_rules(
        "some-flag-key",
        json!([{"name": "ours", "priority": 0, "value": true, "conditions": [
            {"condition_type": "company", "operator": "eq", "resource_ids": [company["id"]]}
        ], "condition_groups": []}]),
    )?;
    Ok(())
}

/// A webhook delivery as the emulator signed it, as an `http::Request`.
pub async fn emulator_delivery(server: &MockServer) -> Result<Request<Bytes>, BoxError> {
    // Deliveries to a closed port fail at once; the emulator records them,
    // signature and body included.
    server.create_webhook(json!({
        "name": "examples", "url": "http://127.0.0.1:9/hooks", "request_types": ["company.updated"]
    }))?;
    server.upsert_company(json!({"keys": {"id": "your-company-id"}, "name": "Acme"}))?;
    let deliveries = server.wait_for_deliveries(1, Duration::from_secs(10)).await;
    let sent = deliveries.first().ok_or("no webhook delivery")?;
    Ok(Request::post("/webhooks/schematic")
        .header("x-schematic-webhook-signature", &sent.signature)
        .header("x-schematic-webhook-timestamp", &sent.timestamp)
        .body(sent.body.clone())?)
}

#[allow(dead_code)]
#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let server = MockServer::builder()
        .webhook_secret("your-webhook-secret")
        .webhook_retries(0, Duration::ZERO)
        .start()
        .await?;
    seed_flag(&server)?;
    let stop = Duration::from_secs(5);

    let b = emulator_blocking_builder(&server);
    let sync = tokio::task::spawn_blocking(move || {
        let client = sync_client(b)?;
        client.check_flag("some-flag-key", Context::company(&[("id", "x")]))
    });
    println!("sync client: check for another company = {}", sync.await??);

    let acme = upsert_company(emulator_builder(&server)).await?;
    println!("upsert_company: {} ({:?})", acme.id, acme.name);
    let got = async_client(emulator_builder(&server), &acme.id).await?;
    println!("async client: get_company = {}", got.id);
    let client = emulator_builder(&server).max_retries(0).build()?;
    println!(
        "exception handling: status {:?}",
        exception_handling(&client).await
    );
    let user = upsert_user(emulator_builder(&server)).await?;
    println!("upsert_user: {} ({:?})", user.id, user.name);

    let identified = identify(emulator_builder(&server)).await?;
    identified.shutdown(stop).await;
    let tracked = track(emulator_builder(&server)).await?;
    track_quantity(&tracked).await?;
    tracked.shutdown(stop).await;
    for event in server.events() {
        println!(
            "event delivered: {} (quantity {})",
            event.event_type, event.quantity
        );
    }
    println!(
        "check_flag: {}",
        check_flag(emulator_builder(&server)).await?
    );

    let verifier = SchematicVerifier::new("your-webhook-secret")?;
    let delivery = emulator_delivery(&server).await?;
    println!("flask: {:?}", flask_webhook(&verifier, &delivery));
    println!("django: {:?}", django_webhook(&verifier, &delivery));
    println!("fastapi: {:?}", fastapi_webhook(&verifier, &delivery));
    let body = std::str::from_utf8(delivery.body())?;
    let header = |name: &str| {
        delivery.headers()[name]
            .to_str()
            .unwrap_or_default()
            .to_owned()
    };
    let (signature, timestamp) = (
        header("x-schematic-webhook-signature"),
        header("x-schematic-webhook-timestamp"),
    );
    let ok = verify_webhook_manually(body, &signature, &timestamp, "your-webhook-secret");
    println!("verified manually: {ok}");

    let cached = cache_config(emulator_builder(&server))?;
    let company = Context::company(&[("id", "your-company-id")]);
    for _ in 0..2 {
        let check = cached.check_flag_detailed("some-flag-key", company).await;
        println!("cached client: {} from {:?}", check.value, check.source);
    }
    let uncached = disable_cache(emulator_builder(&server))?;
    let check = uncached.check_flag_detailed("some-flag-key", company).await;
    println!("uncached client: {} from {:?}", check.value, check.source);
    // The API fails every check for a moment: the default answers.
    let defaults = flag_defaults(emulator_builder(&server))?;
    let outage = [Fault::status(503), Fault::status(503)];
    server.inject(Host::Rest, Method::POST, "/flags/{key}/check", outage)?;
    let check = defaults.check_flag_detailed("some-flag-key", ()).await;
    server.clear_faults();
    println!(
        "with a default, during an outage: {} from {:?}",
        check.value, check.source
    );
    println!("offline: {}", offline_mode()?.is_offline());
    println!("offline with defaults: {}", offline_with_defaults().await?);
    println!(
        "timeouts: {}",
        timeouts(emulator_builder(&server), &acme.id).await?.id
    );
    println!("retries: {}", retries(&client, &acme.id).await?.id);
    let proxied = custom_http_client(
        emulator_builder(&server).base_url("http://api.schematic.invalid"),
        &server.rest_url(),
    )?;
    let through = proxied.companies().get_company(&acme.id).await?;
    println!("through the proxy: {}", through.id);

    for client in [client, cached, uncached, defaults, proxied] {
        client.shutdown(stop).await;
    }
    server.stop().await;
    Ok(())
}
