//! Every published (or independently computed) test vector from the
//! schemes' documentation and reference libraries.

use flagwire_webhooks::{
    Esauti, EsautiVerifier, Flagsmith, FlagsmithVerifier, GitHub, GitHubVerifier, Schematic,
    SchematicVerifier, Signer, StandardWebhooks, StandardWebhooksVerifier, Stripe, StripeVerifier,
};

#[test]
fn schematic_vectors() {
    let vectors: [(&str, &str, &[u8], &str); 5] = [
        (
            "test-secret",
            "1609459200",
            br#"{"event":"test"}"#,
            "698efb567d886c51002192c79ba46a8ec5735ab1f1976eedb041cf2375b4fb90",
        ),
        (
            "test_secret",
            "1234567890",
            br#"{"event":"test_event"}"#,
            "b5e7cfc4122bcb15a0a2f7dbce642ffa0196603aef8b2c7fcb6b1f63a1fe99d9",
        ),
        (
            "test-webhook-secret",
            "1711900800",
            br#"{"action":"company.created","account_id":"acct_123","environment_id":"env_456","body":{},"object_type":"company"}"#,
            "c58ffe74810a212d1d04a730c26e9b95c69d4745d2a078f54e0ee1ca043c5113",
        ),
        (
            "secret",
            "123",
            b"hello",
            "353a9545ba737423eb4c798ca24307793b526219872575c24d667a2fc9a74974",
        ),
        (
            "whsec_test_secret",
            "1700000000",
            br#"{"type":"company.updated","data":{"id":"comp_123"}}"#,
            "ddb339820ddf6d7d682ed7bbd51c7738342cbbd568fa1f8916adbadbd736deb1",
        ),
    ];
    for (secret, ts, body, signature) in vectors {
        let verifier = SchematicVerifier::new(secret).unwrap();
        let headers = [
            ("X-Schematic-Webhook-Signature", signature),
            ("X-Schematic-Webhook-Timestamp", ts),
        ];
        let now: i64 = ts.parse().unwrap();
        let verified = verifier.verify_at(&headers, body, now).unwrap();
        assert_eq!(verified.timestamp(), Some(now));
        assert_eq!(verified.id(), None);
        // Upper-case hex is the same signature.
        let upper = signature.to_ascii_uppercase();
        let headers = [
            ("x-schematic-webhook-signature", upper.as_str()),
            ("x-schematic-webhook-timestamp", ts),
        ];
        verifier.verify_at(&headers, body, now).unwrap();
        // The signer reproduces the vector.
        let signed = Signer::<Schematic>::new(secret).unwrap().sign(now, body);
        assert_eq!(signed.get(Schematic::SIGNATURE_HEADER), Some(signature));
    }
}

#[test]
fn flagsmith_vectors() {
    let vectors: [(&str, &[u8], &str); 2] = [
        (
            "my shared secret",
            br#"{"data": {"changed_by": "user@domain.com", "new_state": null, "timestamp": "2021-06-18T07:50:26.595298Z"}, "event_type": "FLAG_DELETED"}"#,
            "8746d151aa28e283bec7e11fbf79a1d7f4a596638df781e05b9f378a80467e99",
        ),
        (
            "secret",
            br#"{"event_type": "FLAG_UPDATED"}"#,
            "6a6eeaae2241fc0ae5cec51884ed64be87ab39bf472af4e1a80833ab8f75e18b",
        ),
    ];
    for (secret, body, signature) in vectors {
        let headers = [("X-Flagsmith-Signature", signature)];
        let verified = FlagsmithVerifier::new(secret)
            .unwrap()
            .verify(&headers, body)
            .unwrap();
        assert_eq!(verified.timestamp(), None);
        let signed = Signer::<Flagsmith>::new(secret).unwrap().sign(body);
        assert_eq!(signed.get("x-flagsmith-signature"), Some(signature));
    }
}

#[test]
fn esauti_vectors() {
    /// Secret, method, path, timestamp, body, signature header.
    type Vector = (
        &'static str,
        &'static str,
        &'static str,
        &'static str,
        &'static [u8],
        &'static str,
    );
    let vectors: [Vector; 2] = [
        (
            "super-secret",
            "POST",
            "/v1/inbound/event",
            "1700000000",
            br#"{"type":"order.created"}"#,
            "sha256=70069ac894eebe92d767d0add5927d08297ca5653e43c4458cbb40acd4930c62",
        ),
        (
            "k",
            "GET",
            "/",
            "1700000000",
            b"",
            "sha256=1e7fd5126f5167807f3231c6b87ba8388722d32ce9bb41cc1818c72c0c606d2d",
        ),
    ];
    for (secret, method, path, ts, body, signature) in vectors {
        let verifier = EsautiVerifier::new(secret).unwrap();
        let headers = [
            ("X-eSauti-Timestamp", ts),
            ("X-eSauti-Signature", signature),
        ];
        let now = 1_700_000_000;
        let verified = verifier
            .verify_at(method, path, &headers, body, now)
            .unwrap();
        assert_eq!(verified.timestamp(), Some(now));
        // Lower-case method, query strings and an empty path sign the same.
        verifier
            .verify_at(&method.to_ascii_lowercase(), path, &headers, body, now)
            .unwrap();
        verifier
            .verify_at(method, &format!("{path}?page=2"), &headers, body, now)
            .unwrap();
        let signed = Signer::<Esauti>::new(secret)
            .unwrap()
            .sign(method, path, now, body);
        assert_eq!(signed.get(Esauti::SIGNATURE_HEADER), Some(signature));
    }
    // The root path may be given as empty.
    let headers = [
        ("X-eSauti-Timestamp", "1700000000"),
        (
            "X-eSauti-Signature",
            "sha256=1e7fd5126f5167807f3231c6b87ba8388722d32ce9bb41cc1818c72c0c606d2d",
        ),
    ];
    EsautiVerifier::new("k")
        .unwrap()
        .verify_at("GET", "", &headers, b"", 1_700_000_000)
        .unwrap();
}

#[cfg(feature = "http")]
#[test]
fn esauti_http_request() {
    let request = http::Request::post("http://example.test/v1/inbound/event?debug=1")
        .header("X-eSauti-Timestamp", "1700000000")
        .header(
            "X-eSauti-Signature",
            "sha256=70069ac894eebe92d767d0add5927d08297ca5653e43c4458cbb40acd4930c62",
        )
        .body(br#"{"type":"order.created"}"#.to_vec())
        .unwrap();
    let verifier = EsautiVerifier::builder()
        .secret("super-secret")
        .clock(|| 1_700_000_100_i64)
        .build()
        .unwrap();
    verifier.verify_request(&request).unwrap();
}

const SW_GO_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const SW_GO_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
const SW_GO_BODY: &[u8] = br#"{"test": 2432232314}"#;
const SW_GO_SIG: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

const SW_RUST_SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
const SW_RUST_ID: &str = "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk";
const SW_RUST_BODY: &[u8] = br#"{"email":"test@example.com","username":"test_user"}"#;
const SW_RUST_SIG: &str = "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=";

const SW_DECOYS: [&str; 4] = [
    "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=",
    "v1,tFtCZ5RDCPxzWQRWXWPgrCgE2frDBe9gjpbWQxnVfsQ=",
    "v1,Mm7xgUVICxZfQ3bgf0h0Dof65L/IFx+PnZvnDWPCX6Q=",
    "v1,9DfC1c3eeOrXB6w/5dIDydLNQaEyww5KalE5jLBZucE=",
];

#[test]
fn standard_webhooks_vectors() {
    for (secret, id, ts, body, sig) in [
        (SW_GO_SECRET, SW_GO_ID, 1_614_265_330, SW_GO_BODY, SW_GO_SIG),
        (
            SW_RUST_SECRET,
            SW_RUST_ID,
            1_649_367_553,
            SW_RUST_BODY,
            SW_RUST_SIG,
        ),
    ] {
        let verifier = StandardWebhooksVerifier::new(secret).unwrap();
        let ts_text = ts.to_string();
        let headers = [
            ("webhook-id", id),
            ("webhook-timestamp", ts_text.as_str()),
            ("webhook-signature", sig),
        ];
        let verified = verifier.verify_at(&headers, body, ts).unwrap();
        assert_eq!(verified.id(), Some(id));
        assert_eq!(verified.timestamp(), Some(ts));

        // The valid signature among decoys, first, last or in the middle.
        for position in 0..=SW_DECOYS.len() {
            let mut entries: Vec<&str> = SW_DECOYS.to_vec();
            entries.insert(position, sig);
            let joined = entries.join(" ");
            let headers = [
                ("webhook-id", id),
                ("webhook-timestamp", ts_text.as_str()),
                ("webhook-signature", joined.as_str()),
            ];
            verifier.verify_at(&headers, body, ts).unwrap();
        }

        // Svix header names are accepted too.
        let svix = [
            ("svix-id", id),
            ("svix-timestamp", ts_text.as_str()),
            ("svix-signature", sig),
        ];
        verifier.verify_at(&svix, body, ts).unwrap();

        let signed = Signer::<StandardWebhooks>::new(secret)
            .unwrap()
            .sign(id, ts, body);
        assert_eq!(signed.get(StandardWebhooks::SIGNATURE_HEADER), Some(sig));
    }
}

#[test]
fn standard_webhooks_raw_key_bytes() {
    // The Go vector's secret decodes to these 24 bytes.
    let key: Vec<u8> = (0..24)
        .map(|i| {
            u8::from_str_radix(
                &"31f290f6bf06298aab4f08d43c3f082cf648a362da2da4b0"[2 * i..2 * i + 2],
                16,
            )
            .unwrap()
        })
        .collect();
    let headers = [
        ("webhook-id", SW_GO_ID),
        ("webhook-timestamp", "1614265330"),
        ("webhook-signature", SW_GO_SIG),
    ];
    StandardWebhooksVerifier::new(key)
        .unwrap()
        .verify_at(&headers, SW_GO_BODY, 1_614_265_330)
        .unwrap();
}

#[test]
fn stripe_vector() {
    let body = br#"{"id":"evt_test","object":"event"}"#;
    let sig = "8042376f6ca064adbe037642a718227dfd59047137eb49497a54c49eb0cfb724";
    let verifier = StripeVerifier::new("whsec_test_secret").unwrap();
    let header = format!("t=1700000000,v1={sig}");
    let headers = [("Stripe-Signature", header.as_str())];
    let verified = verifier.verify_at(&headers, body, 1_700_000_000).unwrap();
    assert_eq!(verified.timestamp(), Some(1_700_000_000));
    // With a v0 entry, spaces, and the valid v1 after a wrong one.
    let header = format!(
        "t=1700000000, v0=6ffbb59b2300aae63f272406069a9788598b792a944a07aba816edb039989a39, v1={}, v1={sig}",
        "0".repeat(64)
    );
    verifier
        .verify_at(
            &[("stripe-signature", header.as_str())],
            body,
            1_700_000_000,
        )
        .unwrap();
    let signed = Signer::<Stripe>::new("whsec_test_secret")
        .unwrap()
        .sign(1_700_000_000, body);
    assert_eq!(
        signed.get(Stripe::SIGNATURE_HEADER),
        Some(format!("t=1700000000,v1={sig}").as_str())
    );
}

#[test]
fn github_vector() {
    let headers = [(
        "X-Hub-Signature-256",
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
    )];
    let verifier = GitHubVerifier::new("It's a Secret to Everybody").unwrap();
    let verified = verifier.verify(&headers, b"Hello, World!").unwrap();
    assert_eq!(verified.id(), None);
    let signed = Signer::<GitHub>::new("It's a Secret to Everybody")
        .unwrap()
        .sign(b"Hello, World!");
    assert_eq!(signed.get(GitHub::SIGNATURE_HEADER), Some(headers[0].1));
}
