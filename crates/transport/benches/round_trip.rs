//! Sequential round trips to a local hyper server: the full default stack
//! against a bare hyper-util client, in the same run.
//!
//! Run: `cargo bench -p flagwire-transport --bench round_trip -- --warm-up-time 1 --measurement-time 3`
//!
//! Besides criterion's figures it prints, per path, the heap allocations one
//! request makes on the client thread (the server runs on its own thread, so
//! its allocations are not counted) and an interleaved median comparison
//! (the paths take turns, each round starting with the next path).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, criterion_group};
use flagwire_alloc_counter::CountingAllocator;
use flagwire_transport::headers::IdentificationLayer;
use flagwire_transport::retry::RetryPolicy;
use flagwire_transport::{BoxTransport, HttpsClient, TransportBuilder, auth};
use http::header::HeaderName;
use http::{HeaderValue, Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tower::{Service, ServiceExt};

#[global_allocator]
static ALLOC: CountingAllocator = CountingAllocator::new();

const BODY: &[u8] =
    br#"{"data":{"flag":"new-checkout","value":true,"reason":"rule match"},"params":{}}"#;

fn start_server() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                stream.set_nodelay(true).unwrap();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(|req: Request<Incoming>| async move {
                        let _ = req.into_body().collect().await;
                        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(BODY))))
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
    });
    addr
}

type Bare = Client<HttpConnector, Full<Bytes>>;

fn bare_client() -> Bare {
    let mut http = HttpConnector::new();
    http.set_nodelay(true);
    Client::builder(TokioExecutor::new()).build(http)
}

/// The API key every path that sends one sends.
const API_KEY: &str = "sch_dev_benchmark";

/// The default stack's builder with the benchmark's API key.
fn builder() -> TransportBuilder {
    TransportBuilder::new().api_key(auth::SCHEMATIC_API_KEY, API_KEY)
}

fn stack() -> BoxTransport {
    builder().build().unwrap()
}

/// The default stack with both deadlines off.
fn without_deadlines() -> TransportBuilder {
    builder().timeout(None).attempt_timeout(None)
}

/// The layers every request needs (tracing, identification, credentials):
/// no retries, no deadlines.
fn without_retries() -> BoxTransport {
    without_deadlines()
        .retry(RetryPolicy::new().max_retries(0))
        .build()
        .unwrap()
}

fn request(url: &str) -> Request<Bytes> {
    Request::post(url)
        .header("content-type", "application/json")
        .body(Bytes::from_static(
            br#"{"company":{"id":"c1"},"user":{"id":"u1"}}"#,
        ))
        .unwrap()
}

async fn bare_round_trip(client: &Bare, url: &str) -> Bytes {
    let resp = client.request(request(url).map(Full::new)).await.unwrap();
    resp.into_body().collect().await.unwrap().to_bytes()
}

/// The headers the stack adds to every request (API key, identification),
/// prepared once so that the bare client pays only for putting them on its
/// request.
type SameHeaders = Vec<(HeaderName, HeaderValue)>;

fn same_headers() -> SameHeaders {
    let mut headers = vec![(auth::SCHEMATIC_API_KEY, HeaderValue::from_static(API_KEY))];
    headers.extend(
        IdentificationLayer::default()
            .headers()
            .map(|(n, v)| (n.clone(), v.clone())),
    );
    headers
}

/// The bare client sending the same headers the stack sends (API key and
/// identification), so both put the same bytes on the wire.
async fn bare_same_headers_round_trip(client: &Bare, extra: &SameHeaders, url: &str) -> Bytes {
    let mut req = request(url);
    let headers = req.headers_mut();
    for (name, value) in extra {
        headers.insert(name.clone(), value.clone());
    }
    let resp = client.request(req.map(Full::new)).await.unwrap();
    resp.into_body().collect().await.unwrap().to_bytes()
}

async fn stack_round_trip(svc: &mut BoxTransport, url: &str) -> Bytes {
    let svc = svc.ready().await.unwrap();
    svc.call(request(url)).await.unwrap().into_body()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// One way of sending a request, for the side-by-side report.
enum Path {
    Bare(Bare),
    BareSameHeaders(Bare, SameHeaders),
    Service(BoxTransport),
}

impl Path {
    async fn round_trip(&mut self, url: &str) -> Bytes {
        match self {
            Path::Bare(client) => bare_round_trip(client, url).await,
            Path::BareSameHeaders(client, extra) => {
                bare_same_headers_round_trip(client, extra, url).await
            }
            Path::Service(svc) => stack_round_trip(svc, url).await,
        }
    }
}

/// Allocations per request and interleaved medians, measured outside
/// criterion so all paths share the same conditions. Besides the bare
/// client and the full stack, it shows the HTTPS client alone (rustls-capable
/// connector, body collection), the stack without deadlines, and the stack
/// without retries or deadlines (tracing, identification and credentials
/// only), to tell where any overhead comes from.
fn report(addr: SocketAddr, samples: usize) {
    let url = format!("http://{addr}/flags/check");
    let rt = runtime();
    let mut paths = [
        ("bare hyper-util", Path::Bare(bare_client())),
        (
            "bare, same headers",
            Path::BareSameHeaders(bare_client(), same_headers()),
        ),
        (
            "HttpsClient alone",
            Path::Service(BoxTransport::new(HttpsClient::new().unwrap())),
        ),
        (
            "stack without deadlines",
            Path::Service(without_deadlines().build().unwrap()),
        ),
        ("full default stack", Path::Service(stack())),
        ("no retries, no deadlines", Path::Service(without_retries())),
    ];
    // Warm up: open the pooled connections, fill caches.
    rt.block_on(async {
        for _ in 0..50 {
            for (_, path) in paths.iter_mut() {
                path.round_trip(&url).await;
            }
        }
    });
    let mut allocations = Vec::new();
    for (_, path) in paths.iter_mut() {
        let before = flagwire_alloc_counter::stats();
        rt.block_on(async {
            for _ in 0..samples {
                path.round_trip(&url).await;
            }
        });
        let after = flagwire_alloc_counter::stats();
        allocations.push((
            (after.allocations - before.allocations) as f64 / samples as f64,
            (after.bytes - before.bytes) as f64 / samples as f64,
        ));
    }
    // Request by request, then back to back in blocks: the first shows each
    // path under the same conditions at every instant; the second is closer
    // to a program sending requests one after the other, where a path's own
    // previous request has just warmed the caches and the server thread.
    let one_by_one = interleaved_medians(&rt, &mut paths, &url, samples, 1);
    let in_blocks = interleaved_medians(&rt, &mut paths, &url, samples, BLOCK);
    let layers = layer_cost(&rt, samples * 10);
    // Two baselines: the bare client as it is (the issue's limit), and the
    // bare client sending the headers every API request carries anyway (the
    // API key and the identification headers), so that the bytes on the wire
    // and the server's parsing are the same as the stack's.
    for (title, medians) in [
        ("interleaved request by request".to_owned(), one_by_one),
        (
            format!("interleaved in blocks of {BLOCK} back-to-back requests"),
            in_blocks,
        ),
    ] {
        println!(
            "{title}, {samples} requests each (median latency; ratio to the bare client; \
             ratio to the bare client sending the same headers; allocations per request):"
        );
        let (bare, same_headers) = (medians[0].as_secs_f64(), medians[1].as_secs_f64());
        for (i, (name, _)) in paths.iter().enumerate() {
            let m = medians[i].as_secs_f64();
            println!(
                "  {name:<24} {:>10.2?}  x{:.3} bare  x{:.3} same headers  {:>5.1} allocs {:>6.0} bytes",
                medians[i],
                m / bare,
                m / same_headers,
                allocations[i].0,
                allocations[i].1
            );
        }
    }
    println!(
        "layers alone, over an in-process service answering at once: {:.2?} per request",
        layers
    );
}

/// Requests in each block of a report's back-to-back pass.
const BLOCK: usize = 50;

/// Median latency per path, the paths taking turns `block` requests at a
/// time. Each round starts with the next path, so that every path takes
/// every position about equally often (exactly when the number of rounds is
/// a multiple of the number of paths): the request that follows a switch
/// between paths is slower, and with a fixed order the first path of each
/// round would always pay for it.
fn interleaved_medians(
    rt: &tokio::runtime::Runtime,
    paths: &mut [(&str, Path)],
    url: &str,
    samples: usize,
    block: usize,
) -> Vec<Duration> {
    let mut times = vec![Vec::with_capacity(samples); paths.len()];
    let n = paths.len();
    rt.block_on(async {
        for round in 0..samples.div_ceil(block) {
            for k in 0..n {
                let i = (round + k) % n;
                for _ in 0..block {
                    let t = Instant::now();
                    paths[i].1.round_trip(url).await;
                    times[i].push(t.elapsed());
                }
            }
        }
    });
    times.into_iter().map(median).collect()
}

/// CPU cost of the default layers with no network: the full default stack
/// over an in-process service, minus that service called directly.
fn layer_cost(rt: &tokio::runtime::Runtime, n: usize) -> Duration {
    let instant = tower::service_fn(|_req: Request<Bytes>| async {
        Ok::<_, Infallible>(Response::new(Bytes::from_static(BODY)))
    });
    let mut direct = BoxTransport::new(instant.map_err(|e| match e {}));
    let mut layered = builder().service(instant).build().unwrap();
    let url = "http://127.0.0.1/flags/check";
    rt.block_on(async {
        let run = async |svc: &mut BoxTransport| {
            let t = Instant::now();
            for _ in 0..n {
                stack_round_trip(svc, url).await;
            }
            t.elapsed()
        };
        run(&mut direct).await;
        run(&mut layered).await;
        let base = run(&mut direct).await;
        let full = run(&mut layered).await;
        full.saturating_sub(base) / n as u32
    })
}

/// Instruction counting: with `FLAGWIRE_BENCH_PATH=<path>:<n>` the binary
/// sends `n` requests through one path after a short warm-up and exits, so
/// that a profiler (e.g. `valgrind --tool=callgrind`) can count them; two
/// runs with different `n` give the cost of one request. Paths: `bare`,
/// `bare-headers` (the bare client sending the stack's headers), `client`
/// (`HttpsClient` alone), `stack`, `stack-no-deadlines`, `no-retries`
/// (retries and deadlines off), and
/// `layers` / `direct` (the default layers over an in-process service, and
/// that service alone). Prefixed with `after-bare-`, each request of the
/// path follows a request of the bare client (`after-bare-bare` is the
/// baseline for that).
fn run_single_path() -> bool {
    let Ok(spec) = std::env::var("FLAGWIRE_BENCH_PATH") else {
        return false;
    };
    let (name, n) = spec
        .split_once(':')
        .expect("FLAGWIRE_BENCH_PATH must be <path>:<n>");
    let n: usize = n.parse().expect("a count");
    // `after-bare-<path>`: each request of the path follows one bare request,
    // so the runtime parks with none of the path's timers registered, as it
    // does between requests that are not back to back.
    let (name, after_bare) = match name.strip_prefix("after-bare-") {
        Some(name) => (name, true),
        None => (name, false),
    };
    let rt = runtime();
    let instant = tower::service_fn(|_req: Request<Bytes>| async {
        Ok::<_, Infallible>(Response::new(Bytes::from_static(BODY)))
    });
    let (url, mut path) = match name {
        "direct" | "layers" => {
            let url = "http://127.0.0.1/flags/check".to_owned();
            let svc = if name == "direct" {
                BoxTransport::new(instant.map_err(|e| match e {}))
            } else {
                builder().service(instant).build().unwrap()
            };
            (url, Path::Service(svc))
        }
        _ => {
            let url = format!("http://{}/flags/check", start_server());
            let path = match name {
                "bare" => Path::Bare(bare_client()),
                "bare-headers" => Path::BareSameHeaders(bare_client(), same_headers()),
                "client" => Path::Service(BoxTransport::new(HttpsClient::new().unwrap())),
                "stack" => Path::Service(stack()),
                "stack-no-deadlines" => Path::Service(without_deadlines().build().unwrap()),
                "no-retries" => Path::Service(without_retries()),
                other => panic!("unknown path {other}"),
            };
            (url, path)
        }
    };
    let mut bare = after_bare.then(|| Path::Bare(bare_client()));
    rt.block_on(async {
        for _ in 0..50 + n {
            if let Some(bare) = bare.as_mut() {
                bare.round_trip(&url).await;
            }
            path.round_trip(&url).await;
        }
    });
    true
}

fn round_trip(c: &mut Criterion) {
    if run_single_path() {
        std::process::exit(0);
    }
    let addr = start_server();
    let quick = !std::env::args().any(|a| a == "--bench");
    report(addr, if quick { 50 } else { 2000 });

    let url = format!("http://{addr}/flags/check");
    let rt = runtime();
    let bare = bare_client();
    let svc = stack();
    let mut group = c.benchmark_group("round_trip");
    group.bench_function("bare_hyper_util", |b| {
        b.to_async(&rt).iter(|| bare_round_trip(&bare, &url));
    });
    group.bench_function("flagwire_stack", |b| {
        b.to_async(&rt).iter(|| {
            let mut svc = svc.clone();
            let url = url.as_str();
            async move { stack_round_trip(&mut svc, url).await }
        });
    });
    group.finish();
}

criterion_group!(benches, round_trip);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
