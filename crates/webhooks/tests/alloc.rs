//! Verification performs no heap allocation, on success or failure.

use flagwire_alloc_counter::{CountingAllocator, count_allocations};
use flagwire_webhooks::{
    Error, Esauti, EsautiVerifier, Flagsmith, FlagsmithVerifier, GitHub, GitHubVerifier, Schematic,
    SchematicVerifier, Signer, StandardWebhooks, StandardWebhooksVerifier, Stripe, StripeVerifier,
    unix_now,
};

#[global_allocator]
static ALLOC: CountingAllocator = CountingAllocator::new();

/// Runs `verify` a few times (the first call may touch lazily initialised
/// state such as CPU feature detection) and asserts the later calls made no
/// allocation.
fn assert_no_alloc<T: std::fmt::Debug>(what: &str, verify: impl Fn() -> T) -> T {
    let _warm_up = verify();
    let (out, allocations) = count_allocations(|| {
        let mut last = None;
        for _ in 0..10 {
            last = Some(verify());
        }
        last.expect("ran")
    });
    assert_eq!(
        allocations, 0,
        "{what} allocated {allocations} times: {out:?}"
    );
    out
}

fn body() -> Vec<u8> {
    (0..4096u32).map(|i| (i * 31 % 251) as u8).collect()
}

fn owned(signed: &flagwire_webhooks::SignedHeaders) -> Vec<(String, String)> {
    signed
        .iter()
        .map(|(n, v)| (n.to_ascii_uppercase(), v.to_owned()))
        .collect()
}

#[test]
fn schematic_and_flagsmith() {
    let body = body();
    let now = unix_now();
    let v = SchematicVerifier::builder()
        .secrets(["old", "new"])
        .build()
        .unwrap();
    let headers = owned(&Signer::<Schematic>::new("new").unwrap().sign(now, &body));
    assert!(assert_no_alloc("schematic ok", || v
        .verify(&headers, &body)
        .is_ok()));
    assert_eq!(
        assert_no_alloc("schematic mismatch", || v
            .verify(&headers, &body[1..])
            .err()),
        Some(Error::SignatureMismatch)
    );
    let stale = owned(
        &Signer::<Schematic>::new("new")
            .unwrap()
            .sign(now - 1000, &body),
    );
    assert!(assert_no_alloc("schematic stale", || v
        .verify(&stale, &body)
        .is_err()));
    let missing: [(&str, &str); 0] = [];
    assert!(assert_no_alloc("schematic missing", || v
        .verify(&missing, &body)
        .is_err()));

    let v = FlagsmithVerifier::new("secret").unwrap();
    let headers = owned(&Signer::<Flagsmith>::new("secret").unwrap().sign(&body));
    assert!(assert_no_alloc("flagsmith ok", || v
        .verify(&headers, &body)
        .is_ok()));
    assert!(assert_no_alloc("flagsmith bad", || v
        .verify(&headers, b"x")
        .is_err()));
}

#[test]
fn standard_webhooks_stripe_github_esauti() {
    let body = body();
    let now = unix_now();

    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let v = StandardWebhooksVerifier::new(secret).unwrap();
    let mut headers = owned(
        &Signer::<StandardWebhooks>::new(secret)
            .unwrap()
            .sign("msg_1", now, &body),
    );
    // Put decoys around the valid entry.
    let sig = headers[2].1.clone();
    headers[2].1 = format!("v2,abc v1,{} {sig} v1a,xyz", "A".repeat(43) + "=");
    let verified = assert_no_alloc("standard webhooks ok", || {
        v.verify(&headers, &body).map(|v| v.id().map(str::len))
    });
    assert_eq!(verified, Ok(Some(5)));
    assert!(assert_no_alloc("standard webhooks bad", || v
        .verify(&headers, b"")
        .is_err()));

    let v = StripeVerifier::new("whsec_x").unwrap();
    let headers = owned(&Signer::<Stripe>::new("whsec_x").unwrap().sign(now, &body));
    assert!(assert_no_alloc("stripe ok", || v
        .verify(&headers, &body)
        .is_ok()));
    assert!(assert_no_alloc("stripe bad", || v
        .verify(&headers, b"")
        .is_err()));

    let v = GitHubVerifier::new("gh").unwrap();
    let headers = owned(&Signer::<GitHub>::new("gh").unwrap().sign(&body));
    assert!(assert_no_alloc("github ok", || v
        .verify(&headers, &body)
        .is_ok()));

    let v = EsautiVerifier::new("k").unwrap();
    let headers = owned(
        &Signer::<Esauti>::new("k")
            .unwrap()
            .sign("POST", "/in", now, &body),
    );
    assert!(assert_no_alloc("esauti ok", || v
        .verify("post", "/in?x=1", &headers, &body)
        .is_ok()));
    assert!(assert_no_alloc("esauti bad", || v
        .verify("GET", "/in", &headers, &body)
        .is_err()));
}

#[cfg(feature = "http")]
#[test]
fn header_map_lookups() {
    let body = body();
    let now = unix_now();
    let v = SchematicVerifier::new("s").unwrap();
    let map = Signer::<Schematic>::new("s")
        .unwrap()
        .sign(now, &body)
        .to_header_map()
        .unwrap();
    assert!(assert_no_alloc("header map ok", || v
        .verify(&map, &body)
        .is_ok()));
    let empty = http::HeaderMap::new();
    assert!(assert_no_alloc("header map missing", || v
        .verify(&empty, &body)
        .is_err()));
}

#[test]
fn counter_is_live() {
    // Guards against a test that cannot fail: the allocator must count.
    let (_v, allocations) = count_allocations(|| vec![0u8; 100]);
    assert_eq!(allocations, 1);
}
