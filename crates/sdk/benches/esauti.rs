//! One eSauti event send through the whole `esauti::Client`:
//!
//! * `esauti/send_stub`: build and validate an `order.created`, encode it, add the idempotency
//!   key, request id and source, sign it (HMAC-SHA256), pass the transport stack (retry,
//!   deadlines, tracing) and read the receipt, with a bottom service that answers `202` at
//!   once: the client's own cost per event.
//! * `esauti/send_emulator`: the same against the `flagwire-mock` emulator over loopback
//!   HTTP/1.1, which verifies the signature, validates and deduplicates: a round trip.
//! * `esauti/build_envelope`: only building and validating the envelope, as a yardstick.
//!
//! Allocations per stub send are counted with `flagwire-alloc-counter` and printed first.
//!
//! `cargo bench -p flagwire --bench esauti -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;

use bytes::Bytes;
use criterion::{Criterion, criterion_group};
use flagwire::esauti::Client;
use flagwire_alloc_counter::{CountingAllocator, count_allocations};
use flagwire_core::esauti::{EnvelopeBuilder, EventEnvelope, EventType};
use flagwire_mock::esauti::{DEFAULT_API_KEY, DEFAULT_HMAC_SECRET, EsautiServer};

#[global_allocator]
static ALLOC: CountingAllocator = CountingAllocator::new();

const RECEIPT: &[u8] =
    br#"{"received":true,"event_id":"ev_1","status":"accepted","duplicate":false}"#;

fn order(builder: EnvelopeBuilder) -> EnvelopeBuilder {
    builder
        .customer_id("cus_1")
        .customer_field("email", "ann@example.com")
        .entity("order", "ord_9")
        .property("currency", "KES")
        .property("value", 1250)
}

fn stub_client() -> Client {
    let stub = tower::service_fn(|_req: http::Request<Bytes>| async {
        Ok::<_, std::convert::Infallible>(
            http::Response::builder()
                .status(202)
                .body(Bytes::from_static(RECEIPT))
                .expect("a static response"),
        )
    });
    Client::builder()
        .api_key(DEFAULT_API_KEY)
        .hmac_secret(DEFAULT_HMAC_SECRET)
        .events_url("https://tenant.example.com")
        .service(stub)
        .build()
        .expect("valid settings")
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let stub = stub_client();

    // Warm up once, then count one send.
    rt.block_on(
        stub.events()
            .send(order(stub.events().event(EventType::OrderCreated))),
    )
    .expect("the stub accepts");
    let (result, allocs) = count_allocations(|| {
        rt.block_on(
            stub.events()
                .send(order(stub.events().event(EventType::OrderCreated))),
        )
    });
    result.expect("the stub accepts");
    println!("esauti/send_stub: {allocs} allocations per event");

    let mut group = c.benchmark_group("esauti");
    group.bench_function("build_envelope", |b| {
        b.iter(|| black_box(order(EventEnvelope::builder(EventType::OrderCreated)).build()))
    });
    group.bench_function("send_stub", |b| {
        b.iter(|| {
            rt.block_on(
                stub.events()
                    .send(order(stub.events().event(EventType::OrderCreated))),
            )
            .expect("the stub accepts")
        })
    });

    let server = rt
        .block_on(EsautiServer::start())
        .expect("the emulator starts");
    let client = Client::builder()
        .api_key(DEFAULT_API_KEY)
        .hmac_secret(DEFAULT_HMAC_SECRET)
        .events_url(server.events_url())
        .build()
        .expect("valid settings");
    group.bench_function("send_emulator", |b| {
        b.iter(|| {
            rt.block_on(
                client
                    .events()
                    .send(order(client.events().event(EventType::OrderCreated))),
            )
            .expect("the emulator accepts")
        })
    });
    group.finish();
    rt.block_on(server.stop());
}

criterion_group!(esauti, benches);

fn main() {
    esauti();
    Criterion::default().configure_from_args().final_summary();
}
