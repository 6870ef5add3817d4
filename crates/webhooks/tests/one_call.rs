//! The one-call helpers (`schematic::verify_signature` and friends) give
//! the verdicts and errors of a verifier built with the default settings.

use flagwire_webhooks::{
    Error, Esauti, EsautiVerifier, Flagsmith, GitHub, Malformed, Schematic, SchematicVerifier,
    SecretError, Signer, StandardWebhooks, StandardWebhooksVerifier, Stripe, esauti, flagsmith,
    github, schematic, standard_webhooks, stripe, unix_now,
};
use proptest::prelude::*;

const BODY: &[u8] = br#"{"action":"company.updated","body":{"id":"comp_1"}}"#;
const SW_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

#[test]
fn schematic_accepts_signed_and_refuses_the_rest() {
    let now = unix_now();
    let sent = Signer::<Schematic>::new("secret").unwrap().sign(now, BODY);
    let signature = sent.get(Schematic::SIGNATURE_HEADER).unwrap();
    let timestamp = sent.get(Schematic::TIMESTAMP_HEADER).unwrap();

    let verified = schematic::verify_signature(BODY, signature, timestamp, "secret").unwrap();
    assert_eq!(verified.timestamp(), Some(now));
    // Any `AsRef<[u8]>` body; surrounding spaces as in a header value.
    let text = std::str::from_utf8(BODY).unwrap();
    schematic::verify_signature(text, &format!(" {signature}\t"), timestamp, "secret").unwrap();
    let owned: Vec<u8> = BODY.into();
    schematic::verify_signature(owned, signature, timestamp, "secret").unwrap();

    assert_eq!(
        schematic::verify_signature(b"{}", signature, timestamp, "secret"),
        Err(Error::SignatureMismatch)
    );
    assert_eq!(
        schematic::verify_signature(BODY, signature, timestamp, "other"),
        Err(Error::SignatureMismatch)
    );
    assert_eq!(
        schematic::verify_signature(BODY, "", timestamp, "secret"),
        Err(Error::MissingHeader {
            name: Schematic::SIGNATURE_HEADER
        })
    );
    assert_eq!(
        schematic::verify_signature(BODY, signature, " ", "secret"),
        Err(Error::MissingHeader {
            name: Schematic::TIMESTAMP_HEADER
        })
    );
    assert_eq!(
        schematic::verify_signature(BODY, signature, "12.5", "secret"),
        Err(Error::MalformedHeader {
            name: Schematic::TIMESTAMP_HEADER,
            reason: Malformed::InvalidTimestamp
        })
    );
    assert_eq!(
        schematic::verify_signature(BODY, signature, timestamp, ""),
        Err(Error::InvalidSecret {
            reason: SecretError::Empty
        })
    );
}

#[test]
fn the_replay_window_applies() {
    let old = unix_now() - 3600;
    let sent = Signer::<Schematic>::new("secret").unwrap().sign(old, BODY);
    let result = schematic::verify_signature(
        BODY,
        sent.get(Schematic::SIGNATURE_HEADER).unwrap(),
        &old.to_string(),
        "secret",
    );
    assert!(
        matches!(result, Err(Error::TimestampOutOfTolerance { timestamp, tolerance: 300, .. }) if timestamp == old),
        "{result:?}"
    );
}

#[test]
fn flagsmith_and_github_with_their_published_vectors() {
    let body = br#"{"data": {"changed_by": "user@domain.com", "new_state": null, "timestamp": "2021-06-18T07:50:26.595298Z"}, "event_type": "FLAG_DELETED"}"#;
    let signature = "8746d151aa28e283bec7e11fbf79a1d7f4a596638df781e05b9f378a80467e99";
    let verified = flagsmith::verify_signature(body, signature, "my shared secret").unwrap();
    assert_eq!((verified.timestamp(), verified.id()), (None, None));
    assert_eq!(
        flagsmith::verify_signature(&body[1..], signature, "my shared secret"),
        Err(Error::SignatureMismatch)
    );
    assert_eq!(
        flagsmith::verify_signature(body, &signature[1..], "my shared secret"),
        Err(Error::MalformedHeader {
            name: Flagsmith::SIGNATURE_HEADER,
            reason: Malformed::InvalidLength
        })
    );

    let signature = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
    let secret = "It's a Secret to Everybody";
    github::verify_signature("Hello, World!", signature, secret).unwrap();
    assert_eq!(
        github::verify_signature("Hello, World!", &signature[7..], secret),
        Err(Error::MalformedHeader {
            name: GitHub::SIGNATURE_HEADER,
            reason: Malformed::MissingPrefix
        })
    );
}

#[test]
fn stripe_reads_the_whole_header() {
    let now = unix_now();
    let sent = Signer::<Stripe>::new("whsec_test_secret")
        .unwrap()
        .sign(now, BODY);
    let header = sent.get(Stripe::SIGNATURE_HEADER).unwrap();
    let verified = stripe::verify_signature(BODY, header, "whsec_test_secret").unwrap();
    assert_eq!(verified.timestamp(), Some(now));
    // A rotated endpoint: the sender lists two signatures.
    let listed = format!("{header},v1={}", "0".repeat(64));
    stripe::verify_signature(BODY, &listed, "whsec_test_secret").unwrap();
    assert_eq!(
        stripe::verify_signature(BODY, "v1=abc", "whsec_test_secret"),
        Err(Error::MalformedHeader {
            name: Stripe::SIGNATURE_HEADER,
            reason: Malformed::InvalidFormat
        })
    );
}

#[test]
fn standard_webhooks_hands_back_the_callers_id() {
    let now = unix_now();
    let sent = Signer::<StandardWebhooks>::new(SW_SECRET)
        .unwrap()
        .sign("msg_1", now, BODY);
    let timestamp = sent.get(StandardWebhooks::TIMESTAMP_HEADER).unwrap();
    let signature = sent.get(StandardWebhooks::SIGNATURE_HEADER).unwrap();
    let id = String::from(" msg_1 ");
    let verified =
        standard_webhooks::verify_signature(BODY, &id, timestamp, signature, SW_SECRET).unwrap();
    assert_eq!(verified.id(), Some("msg_1"));
    assert_eq!(verified.timestamp(), Some(now));
    // The id is signed.
    assert_eq!(
        standard_webhooks::verify_signature(BODY, "msg_2", timestamp, signature, SW_SECRET),
        Err(Error::SignatureMismatch)
    );
    assert_eq!(
        standard_webhooks::verify_signature(BODY, "msg_1", timestamp, signature, "whsec_!"),
        Err(Error::InvalidSecret {
            reason: SecretError::InvalidBase64
        })
    );
}

#[test]
fn esauti_signs_method_and_path() {
    let now = unix_now();
    let sent = Signer::<Esauti>::new("k")
        .unwrap()
        .sign("POST", "/v1/in", now, BODY);
    let signature = sent.get(Esauti::SIGNATURE_HEADER).unwrap();
    let timestamp = sent.get(Esauti::TIMESTAMP_HEADER).unwrap();
    esauti::verify_signature("post", "/v1/in?page=2", BODY, signature, timestamp, "k").unwrap();
    assert_eq!(
        esauti::verify_signature("PUT", "/v1/in", BODY, signature, timestamp, "k"),
        Err(Error::SignatureMismatch)
    );
    assert_eq!(
        esauti::verify_signature("POST", "/v1/out", BODY, signature, timestamp, "k"),
        Err(Error::SignatureMismatch)
    );
}

/// A header value: a valid one, an altered one or noise.
fn value(valid: String) -> impl Strategy<Value = String> {
    prop_oneof![
        3 => Just(valid.clone()),
        1 => (0..valid.len().max(1), any::<u8>()).prop_map(move |(at, byte)| {
            let mut bytes = valid.clone().into_bytes();
            if let Some(b) = bytes.get_mut(at) {
                *b = b'0' + byte % 10;
            }
            String::from_utf8_lossy(&bytes).into_owned()
        }),
        1 => "[ -~]{0,70}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Same verdict and error as a verifier built with the default
    /// settings, for valid, altered and random values.
    #[test]
    fn schematic_agrees_with_the_verifier(
        (signature, timestamp, secret) in {
            let now = unix_now();
            let sent = Signer::<Schematic>::new("secret").unwrap().sign(now, BODY);
            let signature = sent.get(Schematic::SIGNATURE_HEADER).unwrap().to_owned();
            (value(signature), value(now.to_string()), prop_oneof![Just("secret".to_owned()), "[a-z]{0,8}"])
        }
    ) {
        let headers = [
            (Schematic::SIGNATURE_HEADER, signature.as_str()),
            (Schematic::TIMESTAMP_HEADER, timestamp.as_str()),
        ];
        let expected = SchematicVerifier::new(secret.as_str()).and_then(|v| v.verify(&headers, BODY).map(|v| v.timestamp()));
        let got = schematic::verify_signature(BODY, &signature, &timestamp, &secret).map(|v| v.timestamp());
        prop_assert_eq!(got, expected);
    }

    #[test]
    fn standard_webhooks_agrees_with_the_verifier(
        (id, timestamp, signature) in {
            let now = unix_now();
            let sent = Signer::<StandardWebhooks>::new(SW_SECRET).unwrap().sign("msg_1", now, BODY);
            let signature = sent.get(StandardWebhooks::SIGNATURE_HEADER).unwrap().to_owned();
            (value("msg_1".to_owned()), value(now.to_string()), value(signature))
        }
    ) {
        let headers = [
            (StandardWebhooks::ID_HEADER, id.as_str()),
            (StandardWebhooks::TIMESTAMP_HEADER, timestamp.as_str()),
            (StandardWebhooks::SIGNATURE_HEADER, signature.as_str()),
        ];
        let verifier = StandardWebhooksVerifier::new(SW_SECRET).unwrap();
        let expected = verifier.verify(&headers, BODY).map(|v| (v.timestamp(), v.id().map(str::to_owned)));
        let got = standard_webhooks::verify_signature(BODY, &id, &timestamp, &signature, SW_SECRET)
            .map(|v| (v.timestamp(), v.id().map(str::to_owned)));
        prop_assert_eq!(got, expected);
    }

    #[test]
    fn esauti_agrees_with_the_verifier(
        (signature, timestamp) in {
            let now = unix_now();
            let sent = Signer::<Esauti>::new("k").unwrap().sign("POST", "/in", now, BODY);
            let signature = sent.get(Esauti::SIGNATURE_HEADER).unwrap().to_owned();
            (value(signature), value(now.to_string()))
        },
        method in prop_oneof![Just("POST"), Just("post"), Just("GET")],
    ) {
        let headers = [
            (Esauti::SIGNATURE_HEADER, signature.as_str()),
            (Esauti::TIMESTAMP_HEADER, timestamp.as_str()),
        ];
        let expected = EsautiVerifier::new("k").unwrap().verify(method, "/in", &headers, BODY).map(|v| v.timestamp());
        let got = esauti::verify_signature(method, "/in", BODY, &signature, &timestamp, "k").map(|v| v.timestamp());
        prop_assert_eq!(got, expected);
    }
}
