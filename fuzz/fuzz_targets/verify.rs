//! Arbitrary header values and bodies through every verifier: nothing may
//! panic, and random input must never verify.
#![no_main]

use std::sync::LazyLock;

use flagwire_fuzz::fields;
use flagwire_webhooks::{
    EsautiVerifier, FixedClock, FlagsmithVerifier, GitHubVerifier, SchematicVerifier,
    StandardWebhooksVerifier, StripeVerifier, Verifier,
};
use libfuzzer_sys::fuzz_target;

const NOW: i64 = 1_700_000_000;

/// The verifiers, built once rather than for every input.
struct Verifiers {
    schematic: SchematicVerifier,
    flagsmith: FlagsmithVerifier,
    github: GitHubVerifier,
    esauti: EsautiVerifier,
    standard: StandardWebhooksVerifier,
    stripe: StripeVerifier,
}

static VERIFIERS: LazyLock<Verifiers> = LazyLock::new(|| Verifiers {
    schematic: Verifier::builder()
        .secret("fuzz")
        .clock(FixedClock(NOW))
        .build()
        .unwrap(),
    flagsmith: FlagsmithVerifier::new("fuzz").unwrap(),
    github: GitHubVerifier::new("fuzz").unwrap(),
    esauti: Verifier::builder()
        .secret("fuzz")
        .clock(FixedClock(NOW))
        .build()
        .unwrap(),
    standard: Verifier::builder()
        .secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
        .ignore_timestamp_age()
        .build()
        .unwrap(),
    stripe: Verifier::builder()
        .secret("whsec_fuzz")
        .ignore_timestamp_age()
        .build()
        .unwrap(),
});

fuzz_target!(|data: &[u8]| {
    let [signature, timestamp, id, method, path, body] = fields::<6>(data);
    let method = String::from_utf8_lossy(method);
    let path = String::from_utf8_lossy(path);

    let Verifiers {
        schematic,
        flagsmith,
        github,
        esauti,
        standard,
        stripe,
    } = &*VERIFIERS;

    let headers: [(&str, &[u8]); 2] = [
        ("X-Schematic-Webhook-Signature", signature),
        ("X-Schematic-Webhook-Timestamp", timestamp),
    ];
    assert!(schematic.verify(&headers, body).is_err());

    assert!(
        flagsmith
            .verify(&[("X-Flagsmith-Signature", signature)], body)
            .is_err()
    );

    let headers: [(&str, &[u8]); 2] = [
        ("X-Hub-Signature-256", signature),
        ("X-GitHub-Delivery", id),
    ];
    assert!(github.verify(&headers, body).is_err());

    let headers: [(&str, &[u8]); 2] = [
        ("X-eSauti-Signature", signature),
        ("X-eSauti-Timestamp", timestamp),
    ];
    assert!(esauti.verify(&method, &path, &headers, body).is_err());

    let headers: [(&str, &[u8]); 3] = [
        ("webhook-id", id),
        ("webhook-timestamp", timestamp),
        ("webhook-signature", signature),
    ];
    assert!(standard.verify(&headers, body).is_err());

    assert!(
        stripe
            .verify(&[("Stripe-Signature", signature)], body)
            .is_err()
    );

    // Through http::HeaderMap too, when the bytes form valid header values.
    if let Ok(value) = http::HeaderValue::from_bytes(signature) {
        let mut map = http::HeaderMap::new();
        map.insert("stripe-signature", value);
        assert!(stripe.verify(&map, body).is_err());
    }
});
