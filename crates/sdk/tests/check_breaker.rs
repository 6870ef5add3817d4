//! Flag checks against an API that is down: the check deadline bounds the
//! first checks, the circuit breaker answers the following ones without a
//! request, and a successful probe closes it again. Real loopback sockets:
//! a port nobody listens on, a server that accepts and never answers, and
//! the emulator answering 500.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use flagwire::schematic::{BreakerPolicy, BreakerState, CheckOptions, CheckSource, Client};
use flagwire_mock::{Fault, Host, MockServer};
use http::Method;
use serde_json::json;

const BREAKER_OPEN: &str = "circuit breaker open";

fn client_for(base_url: &str) -> flagwire::schematic::ClientBuilder {
    Client::builder("sch_dev_breaker")
        .base_url(base_url)
        .capture_url(base_url)
        .disable_cache()
}

/// A port that refuses connections: bound, then closed.
fn refused_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

/// A server that accepts connections and never answers. Counts accepts.
async fn stalled_server() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            held.push(stream);
        }
    });
    (addr, accepted)
}

/// Runs `n` checks that the breaker must answer at once; returns how long
/// they took in all.
async fn open_checks(client: &Client, n: usize) -> Duration {
    let started = Instant::now();
    for i in 0..n {
        let check = client
            .check_flag_with("f", (), CheckOptions::new().default(true))
            .await;
        assert!(check.value, "check {i}: the per-call default");
        assert_eq!(check.source, CheckSource::Default, "check {i}");
        let error = check.error.as_deref().unwrap_or_default();
        assert!(error.contains(BREAKER_OPEN), "check {i}: {error}");
    }
    started.elapsed()
}

#[tokio::test]
async fn refused_connections_open_the_breaker_after_a_bounded_first_check() {
    let addr = refused_port();
    let client = client_for(&format!("http://{addr}"))
        .check_timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    assert_eq!(client.breaker_state(), BreakerState::Closed);

    let started = Instant::now();
    let first = client
        .check_flag_with("f", (), CheckOptions::new().default(true))
        .await;
    let first_took = started.elapsed();
    assert!(first.value);
    assert_eq!(first.source, CheckSource::Default);
    assert!(
        !first.error.as_deref().unwrap().contains(BREAKER_OPEN),
        "the first check asked: {first:?}"
    );
    // The deadline covers both attempts; the slack is for a loaded machine.
    assert!(
        first_took < Duration::from_millis(500 + 1_500),
        "{first_took:?}"
    );

    for _ in 1..5 {
        client.check_flag("f", ()).await;
    }
    assert_eq!(client.breaker_state(), BreakerState::Open);
    // 1,000 checks that each waited for the network would take seconds each
    // time the deadline ran; answered from the breaker they take microseconds.
    let took = open_checks(&client, 1_000).await;
    assert!(
        took < Duration::from_secs(2),
        "1,000 open checks took {took:?}"
    );
    client.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn a_stalled_api_costs_one_deadline_per_check_until_the_breaker_opens() {
    let (addr, accepted) = stalled_server().await;
    let deadline = Duration::from_millis(300);
    let client = client_for(&format!("http://{addr}"))
        .check_timeout(deadline)
        .breaker(
            BreakerPolicy::new()
                .failures_to_open(3)
                .open_for(Duration::from_secs(60)),
        )
        .build()
        .unwrap();

    for i in 0..3 {
        let started = Instant::now();
        let check = client
            .check_flag_with("f", (), CheckOptions::new().default(true))
            .await;
        let took = started.elapsed();
        assert!(
            check.value && check.source == CheckSource::Default,
            "{check:?}"
        );
        assert!(
            took >= deadline - Duration::from_millis(50),
            "check {i}: {took:?}"
        );
        assert!(
            took < deadline + Duration::from_millis(1_500),
            "check {i}: {took:?}"
        );
    }
    assert_eq!(client.breaker_state(), BreakerState::Open);
    let connections = accepted.load(Ordering::SeqCst);
    assert!(
        connections >= 3,
        "each check reached the server: {connections}"
    );

    let took = open_checks(&client, 1_000).await;
    assert!(
        took < Duration::from_secs(2),
        "1,000 open checks took {took:?}"
    );
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        connections,
        "no check reached the server while the breaker was open"
    );
    client.shutdown(Duration::from_secs(1)).await;
}

fn check_requests(server: &MockServer) -> usize {
    server
        .requests()
        .iter()
        .filter(|r| r.method == Method::POST && r.path == "/flags/f/check")
        .count()
}

#[tokio::test]
async fn server_errors_open_the_breaker_and_a_successful_probe_closes_it() {
    let server = MockServer::builder()
        .record_requests(10_000)
        .start()
        .await
        .unwrap();
    server
        .create_flag(json!({"key": "f", "name": "f", "description": "", "flag_type": "boolean", "default_value": false}))
        .unwrap();
    let open_for = Duration::from_millis(500);
    let client = Client::builder(server.api_key())
        .base_url(server.rest_url())
        .capture_url(server.capture_url())
        .disable_cache()
        .breaker(BreakerPolicy::new().failures_to_open(3).open_for(open_for))
        .build()
        .unwrap();

    // Every attempt answers 500: three checks of two attempts each.
    server
        .inject(
            Host::Rest,
            Method::POST,
            "/flags/{key}/check",
            std::iter::repeat_with(|| Fault::status(500)).take(8),
        )
        .unwrap();
    for _ in 0..3 {
        let check = client
            .check_flag_with("f", (), CheckOptions::new().default(true))
            .await;
        assert_eq!(check.source, CheckSource::Default);
        assert!(check.error.as_deref().unwrap().contains("500"), "{check:?}");
    }
    assert_eq!(client.breaker_state(), BreakerState::Open);
    let asked = check_requests(&server);
    assert_eq!(asked, 6, "three checks, each retried once");

    open_checks(&client, 100).await;
    assert_eq!(check_requests(&server), asked, "open: nothing sent");

    // The probe meets the last two 500s: open again, for twice as long.
    tokio::time::sleep(open_for + Duration::from_millis(50)).await;
    let probe = client
        .check_flag_with("f", (), CheckOptions::new().default(true))
        .await;
    assert!(probe.error.as_deref().unwrap().contains("500"), "{probe:?}");
    assert_eq!(
        check_requests(&server),
        asked + 2,
        "one probe, retried once"
    );
    assert_eq!(client.breaker_state(), BreakerState::Open);
    tokio::time::sleep(open_for + Duration::from_millis(50)).await;
    open_checks(&client, 10).await; // still inside the doubled period
    assert_eq!(server.pending_faults(), 0);

    // The API answers again: the next probe closes the breaker.
    tokio::time::sleep(open_for + Duration::from_millis(50)).await;
    let probe = client.check_flag_detailed("f", ()).await;
    assert_eq!(probe.source, CheckSource::Api, "{probe:?}");
    assert!(!probe.value, "the flag's own answer");
    assert_eq!(client.breaker_state(), BreakerState::Closed);
    for _ in 0..5 {
        let check = client.check_flag_detailed("f", ()).await;
        assert_eq!(check.source, CheckSource::Api, "{check:?}");
    }
    client.shutdown(Duration::from_secs(1)).await;
    server.stop().await;
}
