//! Verification cost per scheme next to a bare `ring` HMAC over the same
//! body, at 1 KiB and 64 KiB, plus an allocation count per verify.
//!
//! ```sh
//! cargo bench -p flagwire-webhooks --bench verify -- --warm-up-time 1 --measurement-time 3
//! ```
//!
//! The `raw_ring_hmac` line is the floor: a pre-built `ring::hmac::Key`
//! verifying a tag over the body alone, with no headers to read or decode.
//!
//! The `one_call/1KiB` group times the one-call helpers
//! (`schematic::verify_signature` and friends), which build a verifier
//! for each call: key derivation included, so it shows what building the
//! verifier once saves. They allocate, so they are kept out of the
//! allocation and paired reports.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use flagwire_alloc_counter::{CountingAllocator, count_allocations};
use flagwire_webhooks::{
    Esauti, EsautiVerifier, Flagsmith, FlagsmithVerifier, GitHub, GitHubVerifier, Schematic,
    SchematicVerifier, SignedHeaders, Signer, StandardWebhooks, StandardWebhooksVerifier, Stripe,
    StripeVerifier, Verifier, esauti, flagsmith, github, schematic, standard_webhooks, stripe,
    unix_now,
};
use ring::hmac;

#[global_allocator]
static ALLOC: CountingAllocator = CountingAllocator::new();

const SIZES: [(usize, &str); 2] = [(1024, "1KiB"), (64 * 1024, "64KiB")];

/// Headers as a framework would hand them over: owned name/value pairs in
/// the sender's spelling, with a few unrelated headers in front.
fn request_headers(signed: &SignedHeaders) -> Vec<(String, String)> {
    let mut headers = vec![
        ("Host".to_owned(), "hooks.example.com".to_owned()),
        ("User-Agent".to_owned(), "sender/1.0".to_owned()),
        ("Content-Type".to_owned(), "application/json".to_owned()),
    ];
    headers.extend(signed.iter().map(|(n, v)| (n.to_owned(), v.to_owned())));
    headers
}

fn body(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 131 % 251) as u8).collect()
}

/// One closure per scheme that verifies once and reports success.
type Case = (&'static str, Box<dyn Fn() -> bool>);

fn cases(body: &'static [u8]) -> Vec<Case> {
    let now = unix_now();
    let tolerance = Duration::from_secs(3600);
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    let mut cases: Vec<Case> = Vec::new();

    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    let tag = hmac::sign(&key, body);
    cases.push((
        "raw_ring_hmac",
        Box::new(move || hmac::verify(&key, black_box(body), tag.as_ref()).is_ok()),
    ));

    let v: SchematicVerifier = Verifier::builder()
        .secret(secret)
        .tolerance(tolerance)
        .build()
        .unwrap();
    let h = request_headers(&Signer::<Schematic>::new(secret).unwrap().sign(now, body));
    cases.push((
        "schematic",
        Box::new(move || v.verify(black_box(&h), black_box(body)).is_ok()),
    ));

    let v = FlagsmithVerifier::new(secret).unwrap();
    let h = request_headers(&Signer::<Flagsmith>::new(secret).unwrap().sign(body));
    cases.push((
        "flagsmith",
        Box::new(move || v.verify(black_box(&h), black_box(body)).is_ok()),
    ));

    let v: EsautiVerifier = Verifier::builder()
        .secret(secret)
        .tolerance(tolerance)
        .build()
        .unwrap();
    let path = "/v1/inbound/event";
    let h = request_headers(
        &Signer::<Esauti>::new(secret)
            .unwrap()
            .sign("POST", path, now, body),
    );
    cases.push((
        "esauti",
        Box::new(move || {
            v.verify("POST", path, black_box(&h), black_box(body))
                .is_ok()
        }),
    ));

    let v: StandardWebhooksVerifier = Verifier::builder()
        .secret(secret)
        .tolerance(tolerance)
        .build()
        .unwrap();
    let h = request_headers(&Signer::<StandardWebhooks>::new(secret).unwrap().sign(
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        now,
        body,
    ));
    cases.push((
        "standard_webhooks",
        Box::new(move || v.verify(black_box(&h), black_box(body)).is_ok()),
    ));

    let v: StripeVerifier = Verifier::builder()
        .secret(secret)
        .tolerance(tolerance)
        .build()
        .unwrap();
    let h = request_headers(&Signer::<Stripe>::new(secret).unwrap().sign(now, body));
    cases.push((
        "stripe",
        Box::new(move || v.verify(black_box(&h), black_box(body)).is_ok()),
    ));

    let v = GitHubVerifier::new(secret).unwrap();
    let h = request_headers(&Signer::<GitHub>::new(secret).unwrap().sign(body));
    cases.push((
        "github",
        Box::new(move || v.verify(black_box(&h), black_box(body)).is_ok()),
    ));

    cases
}

/// One closure per one-call helper, over the same deliveries as [`cases`]
/// (signed now: the helpers use the default 300 s window).
fn one_call_cases(body: &'static [u8]) -> Vec<Case> {
    let now = unix_now();
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let header = |signed: &SignedHeaders, name: &str| -> &'static str {
        Box::leak(
            signed
                .get(name)
                .expect("signed header")
                .to_owned()
                .into_boxed_str(),
        )
    };

    let signed = Signer::<Schematic>::new(secret).unwrap().sign(now, body);
    let (sig, ts) = (
        header(&signed, Schematic::SIGNATURE_HEADER),
        header(&signed, Schematic::TIMESTAMP_HEADER),
    );
    let mut cases: Vec<Case> = vec![(
        "schematic",
        Box::new(move || schematic::verify_signature(black_box(body), sig, ts, secret).is_ok()),
    )];

    let signed = Signer::<Flagsmith>::new(secret).unwrap().sign(body);
    let sig = header(&signed, Flagsmith::SIGNATURE_HEADER);
    cases.push((
        "flagsmith",
        Box::new(move || flagsmith::verify_signature(black_box(body), sig, secret).is_ok()),
    ));

    let path = "/v1/inbound/event";
    let signed = Signer::<Esauti>::new(secret)
        .unwrap()
        .sign("POST", path, now, body);
    let (sig, ts) = (
        header(&signed, Esauti::SIGNATURE_HEADER),
        header(&signed, Esauti::TIMESTAMP_HEADER),
    );
    cases.push((
        "esauti",
        Box::new(move || {
            esauti::verify_signature("POST", path, black_box(body), sig, ts, secret).is_ok()
        }),
    ));

    let id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    let signed = Signer::<StandardWebhooks>::new(secret)
        .unwrap()
        .sign(id, now, body);
    let (sig, ts) = (
        header(&signed, StandardWebhooks::SIGNATURE_HEADER),
        header(&signed, StandardWebhooks::TIMESTAMP_HEADER),
    );
    cases.push((
        "standard_webhooks",
        Box::new(move || {
            standard_webhooks::verify_signature(black_box(body), id, ts, sig, secret).is_ok()
        }),
    ));

    let signed = Signer::<Stripe>::new(secret).unwrap().sign(now, body);
    let sig = header(&signed, Stripe::SIGNATURE_HEADER);
    cases.push((
        "stripe",
        Box::new(move || stripe::verify_signature(black_box(body), sig, secret).is_ok()),
    ));

    let signed = Signer::<GitHub>::new(secret).unwrap().sign(body);
    let sig = header(&signed, GitHub::SIGNATURE_HEADER);
    cases.push((
        "github",
        Box::new(move || github::verify_signature(black_box(body), sig, secret).is_ok()),
    ));

    cases
}

/// Prints (and enforces) the allocation count of one verify per scheme.
fn report_allocations(label: &str, cases: &[Case]) {
    for (name, verify) in cases {
        assert!(verify(), "{name} must verify");
        let (ok, allocations) = count_allocations(|| (0..100).all(|_| verify()));
        assert!(ok);
        let per_verify = allocations as f64 / 100.0;
        println!("allocations per verify: {name:<18} {label:>5}: {per_verify}");
        assert_eq!(allocations, 0, "{name} allocated during verification");
    }
}

/// Alternates short batches of the raw HMAC and of each scheme and keeps the
/// fastest batch of each. On a shared, noisy machine this ratio is far more
/// stable than comparing two criterion runs taken seconds apart.
fn report_paired_ratios(label: &str, cases: &[Case], iters: u32) {
    const ROUNDS: u32 = 200;
    let batch = |f: &dyn Fn() -> bool| {
        let start = Instant::now();
        for _ in 0..iters {
            black_box(f());
        }
        start.elapsed().as_secs_f64() * 1e9 / f64::from(iters)
    };
    let (_, raw) = &cases[0];
    for (name, verify) in &cases[1..] {
        let (mut best_raw, mut best_case) = (f64::MAX, f64::MAX);
        for _ in 0..ROUNDS {
            best_raw = best_raw.min(batch(raw.as_ref()));
            best_case = best_case.min(batch(verify.as_ref()));
        }
        println!(
            "paired {label:>5} {name:<18} raw {best_raw:>9.0} ns  verify {best_case:>9.0} ns  ratio {:.3}",
            best_case / best_raw
        );
    }
}

/// Instruction counting: with `FLAGWIRE_BENCH_CASE=<case>:<size>:<n>` (e.g.
/// `stripe:1KiB:20000`) the binary verifies that one case `n` times and
/// exits, so a profiler such as callgrind can count the instructions of
/// `n` verifies; two runs with different `n` give the cost of one.
fn run_single_case() -> bool {
    let Ok(spec) = std::env::var("FLAGWIRE_BENCH_CASE") else {
        return false;
    };
    let mut parts = spec.split(':');
    let (Some(case), Some(size), Some(n)) = (parts.next(), parts.next(), parts.next()) else {
        panic!("FLAGWIRE_BENCH_CASE must be <case>:<size>:<n>");
    };
    let n: u32 = n.parse().expect("a count");
    let (len, _) = SIZES
        .into_iter()
        .find(|(_, label)| *label == size)
        .expect("a size: 1KiB or 64KiB");
    let body: &'static [u8] = Box::leak(body(len).into_boxed_slice());
    let cases = cases(body);
    let (_, verify) = cases
        .iter()
        .find(|(name, _)| *name == case)
        .expect("a case name");
    for _ in 0..n {
        assert!(verify());
    }
    true
}

fn verify(c: &mut Criterion) {
    if run_single_case() {
        std::process::exit(0);
    }
    for (len, label) in SIZES {
        let body: &'static [u8] = Box::leak(body(len).into_boxed_slice());
        let cases = cases(body);
        report_allocations(label, &cases);
        report_paired_ratios(label, &cases, if len <= 4096 { 64 } else { 4 });

        let mut group = c.benchmark_group(format!("verify/{label}"));
        group.throughput(Throughput::Bytes(len as u64));
        for (name, verify) in &cases {
            group.bench_function(*name, |b| b.iter(verify));
        }
        group.finish();
    }

    let (len, label) = SIZES[0];
    let body: &'static [u8] = Box::leak(body(len).into_boxed_slice());
    let mut group = c.benchmark_group(format!("one_call/{label}"));
    group.throughput(Throughput::Bytes(len as u64));
    for (name, verify) in one_call_cases(body) {
        assert!(verify(), "the one-call {name} must verify");
        group.bench_function(name, |b| b.iter(&verify));
    }
    group.finish();
}

criterion_group!(benches, verify);
criterion_main!(benches);
