//! Flag checks with the API down, with the circuit breaker on (the default
//! policy) and with it kept closed, in one run:
//!
//! ```sh
//! cargo bench -p flagwire --bench breaker
//! ```
//!
//! Two outages over real loopback sockets: a port that refuses connections,
//! and a server that accepts and never answers. For each, the first check
//! and the following ones (10,000 when they are fast, a few when each waits
//! for the network): p50, p99 and max. The client's defaults are used
//! (check deadline 1.5 s, one retry, breaker open after 5 failures); "kept
//! closed" is a breaker that needs `u32::MAX` failures to open.

use flagwire_alloc_counter::bench::percentile;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use flagwire::schematic::{BreakerPolicy, BreakerState, CheckOptions, Client};

const FOLLOWING: usize = 10_000;

fn refused_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

async fn stalled_server() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    addr
}

fn client(addr: SocketAddr, breaker: bool) -> Client {
    let url = format!("http://{addr}");
    let mut builder = Client::builder("sch_dev_bench")
        .base_url(&url)
        .capture_url(&url)
        .disable_cache();
    if !breaker {
        builder = builder.breaker(BreakerPolicy::new().failures_to_open(u32::MAX));
    }
    builder.build().unwrap()
}

async fn timed_check(client: &Client) -> Duration {
    let started = Instant::now();
    let on = client
        .check_flag_with("f", (), CheckOptions::new().default(true))
        .await;
    let took = started.elapsed();
    assert!(on.value, "the default");
    took
}

fn show(d: Duration) -> String {
    if d >= Duration::from_millis(1) {
        format!("{:.1} ms", d.as_secs_f64() * 1e3)
    } else {
        format!("{:.2} µs", d.as_secs_f64() * 1e6)
    }
}

async fn scenario(outage: &str, addr: SocketAddr, breaker: bool, following: usize) {
    let client = client(addr, breaker);
    let first = timed_check(&client).await;
    let mut times = Vec::with_capacity(following);
    let started = Instant::now();
    for _ in 0..following {
        times.push(timed_check(&client).await);
    }
    let total = started.elapsed();
    times.sort();
    let state = client.breaker_state();
    println!(
        "breaker/{outage}/{}: first {} | following {following}: p50 {} p99 {} max {} (total {:.2} s) | state {state:?}",
        if breaker { "on" } else { "kept_closed" },
        show(first),
        show(percentile(&times, 0.5)),
        show(percentile(&times, 0.99)),
        show(*times.last().unwrap()),
        total.as_secs_f64(),
    );
    if breaker {
        assert_eq!(state, BreakerState::Open);
    }
    client.shutdown(Duration::from_secs(1)).await;
}

fn main() {
    // `cargo test` runs bench targets with `--bench` absent; keep that quick.
    let quick = !std::env::args().any(|a| a == "--bench");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let refused = refused_port();
        let stalled = stalled_server().await;
        // Kept closed, every check waits for its own failed attempts (a
        // retry back-off included), so a few of them tell the story.
        let (many, few) = if quick { (50, 1) } else { (FOLLOWING, 20) };
        scenario("refused", refused, true, many).await;
        scenario("refused", refused, false, few).await;
        scenario("stalled", stalled, true, many).await;
        scenario("stalled", stalled, false, few.min(3)).await;
    });
}
