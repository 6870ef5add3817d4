//! Rejections, per scheme, and the edge cases every scheme must survive.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use flagwire_webhooks::{
    Error, Esauti, EsautiVerifier, FixedClock, Flagsmith, FlagsmithVerifier, GitHub,
    GitHubVerifier, Malformed, Schematic, SchematicVerifier, Secret, SecretError, SignedHeaders,
    Signer, StandardWebhooks, StandardWebhooksVerifier, Stripe, StripeVerifier, Verifier,
};

const NOW: i64 = 1_700_000_000;
const BODY: &[u8] = br#"{"type":"company.updated","data":{"id":"comp_123"}}"#;

/// Headers as owned pairs, so tests can edit them.
fn pairs(signed: &SignedHeaders) -> Vec<(String, String)> {
    signed
        .iter()
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
        .collect()
}

fn set(headers: &mut [(String, String)], name: &str, value: &str) {
    let entry = headers
        .iter_mut()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .expect("header present");
    entry.1 = value.to_owned();
}

fn without(headers: &[(String, String)], name: &str) -> Vec<(String, String)> {
    headers
        .iter()
        .filter(|(n, _)| !n.eq_ignore_ascii_case(name))
        .cloned()
        .collect()
}

fn flipped(body: &[u8], index: usize) -> Vec<u8> {
    let mut body = body.to_vec();
    body[index] ^= 0x01;
    body
}

fn malformed(name: &'static str, reason: Malformed) -> Error {
    Error::MalformedHeader { name, reason }
}

fn at(now: i64) -> FixedClock {
    FixedClock(now)
}

mod schematic {
    use super::*;

    fn verifier() -> SchematicVerifier {
        Verifier::builder()
            .secret("s3cret")
            .clock(at(NOW))
            .build()
            .unwrap()
    }

    fn signed(ts: i64, body: &[u8]) -> Vec<(String, String)> {
        pairs(&Signer::<Schematic>::new("s3cret").unwrap().sign(ts, body))
    }

    #[test]
    fn accepts_and_rejects_tampering() {
        let v = verifier();
        let headers = signed(NOW, BODY);
        assert!(v.verify(&headers, BODY).is_ok());
        for i in [0, BODY.len() / 2, BODY.len() - 1] {
            assert_eq!(
                v.verify(&headers, &flipped(BODY, i)),
                Err(Error::SignatureMismatch)
            );
        }
        let wrong = SchematicVerifier::builder()
            .secret("other")
            .clock(at(NOW))
            .build()
            .unwrap();
        assert_eq!(wrong.verify(&headers, BODY), Err(Error::SignatureMismatch));
        // Another timestamp, still inside the tolerance.
        let mut other_ts = headers.clone();
        set(
            &mut other_ts,
            Schematic::TIMESTAMP_HEADER,
            &(NOW + 1).to_string(),
        );
        assert_eq!(v.verify(&other_ts, BODY), Err(Error::SignatureMismatch));
        // The same number spelled differently is a different message.
        let mut padded = headers.clone();
        set(&mut padded, Schematic::TIMESTAMP_HEADER, &format!("0{NOW}"));
        assert_eq!(v.verify(&padded, BODY), Err(Error::SignatureMismatch));
    }

    #[test]
    fn missing_and_malformed_headers() {
        let v = verifier();
        let headers = signed(NOW, BODY);
        for name in [Schematic::SIGNATURE_HEADER, Schematic::TIMESTAMP_HEADER] {
            assert_eq!(
                v.verify(&without(&headers, name), BODY),
                Err(Error::MissingHeader { name })
            );
            let mut empty = headers.clone();
            set(&mut empty, name, "");
            assert_eq!(v.verify(&empty, BODY), Err(Error::MissingHeader { name }));
        }
        let sig = headers[0].1.clone();
        let mut bad = headers.clone();
        set(&mut bad, Schematic::SIGNATURE_HEADER, &sig[..63]);
        assert_eq!(
            v.verify(&bad, BODY),
            Err(malformed(
                Schematic::SIGNATURE_HEADER,
                Malformed::InvalidLength
            ))
        );
        set(
            &mut bad,
            Schematic::SIGNATURE_HEADER,
            &format!("{}z", &sig[..63]),
        );
        assert_eq!(
            v.verify(&bad, BODY),
            Err(malformed(
                Schematic::SIGNATURE_HEADER,
                Malformed::InvalidEncoding
            ))
        );
        set(
            &mut bad,
            Schematic::SIGNATURE_HEADER,
            &format!("sha256={sig}"),
        );
        assert_eq!(
            v.verify(&bad, BODY),
            Err(malformed(
                Schematic::SIGNATURE_HEADER,
                Malformed::InvalidLength
            ))
        );
        let mut bad_ts = headers.clone();
        set(&mut bad_ts, Schematic::TIMESTAMP_HEADER, "1700000000000x");
        assert_eq!(
            v.verify(&bad_ts, BODY),
            Err(malformed(
                Schematic::TIMESTAMP_HEADER,
                Malformed::InvalidTimestamp
            ))
        );
        let mut repeated = headers.clone();
        repeated.push(headers[0].clone());
        assert_eq!(
            v.verify(&repeated, BODY),
            Err(malformed(Schematic::SIGNATURE_HEADER, Malformed::Repeated))
        );
    }

    #[test]
    fn timestamp_window() {
        let v = verifier();
        for (ts, ok) in [
            (NOW - 300, true),
            (NOW + 300, true),
            (NOW - 301, false),
            (NOW + 301, false),
            (0, false),
        ] {
            let headers = signed(ts, BODY);
            let result = v.verify(&headers, BODY).map(|_| ());
            assert_eq!(result.is_ok(), ok, "ts {ts}: {result:?}");
            if !ok {
                assert_eq!(
                    result,
                    Err(Error::TimestampOutOfTolerance {
                        timestamp: ts,
                        now: NOW,
                        skew: NOW - ts,
                        tolerance: 300
                    })
                );
            }
        }
        // Milliseconds are far in the future, not silently accepted.
        assert!(matches!(
            v.verify(&signed(NOW * 1000, BODY), BODY),
            Err(Error::TimestampOutOfTolerance { .. })
        ));
        // Opting out, as the official SDKs behave.
        let lax = SchematicVerifier::builder()
            .secret("s3cret")
            .ignore_timestamp_age()
            .clock(at(NOW))
            .build()
            .unwrap();
        assert_eq!(lax.tolerance_secs(), None);
        assert_eq!(
            lax.verify(&signed(0, BODY), BODY).unwrap().timestamp(),
            Some(0)
        );
        // A wider window, and checking against an explicit receive time.
        let wide = SchematicVerifier::builder()
            .secret("s3cret")
            .tolerance(Duration::from_secs(3600))
            .clock(at(NOW))
            .build()
            .unwrap();
        assert!(wide.verify(&signed(NOW - 3000, BODY), BODY).is_ok());
        assert!(
            v.verify_at(&signed(NOW - 3000, BODY), BODY, NOW - 3000)
                .is_ok()
        );
    }
}

mod flagsmith {
    use super::*;

    #[test]
    fn rejections() {
        let v = FlagsmithVerifier::new("secret").unwrap();
        let headers = pairs(&Signer::<Flagsmith>::new("secret").unwrap().sign(BODY));
        assert!(v.verify(&headers, BODY).is_ok());
        assert_eq!(
            v.verify(&headers, &flipped(BODY, 3)),
            Err(Error::SignatureMismatch)
        );
        assert_eq!(
            FlagsmithVerifier::new("secreT")
                .unwrap()
                .verify(&headers, BODY),
            Err(Error::SignatureMismatch)
        );
        let name = Flagsmith::SIGNATURE_HEADER;
        assert_eq!(
            v.verify(&without(&headers, name), BODY),
            Err(Error::MissingHeader { name })
        );
        let sig = headers[0].1.clone();
        for (value, reason) in [
            (&sig[..10], Malformed::InvalidLength),
            (&sig[1..], Malformed::InvalidLength),
            ("x".repeat(64).as_str(), Malformed::InvalidEncoding),
        ] {
            let mut bad = headers.clone();
            set(&mut bad, name, value);
            assert_eq!(v.verify(&bad, BODY), Err(malformed(name, reason)));
        }
        let mut empty = headers.clone();
        set(&mut empty, name, "");
        assert_eq!(v.verify(&empty, BODY), Err(Error::MissingHeader { name }));
    }
}

mod github {
    use super::*;

    #[test]
    fn rejections() {
        let v = GitHubVerifier::new("gh").unwrap();
        let headers = pairs(&Signer::<GitHub>::new("gh").unwrap().sign(BODY));
        assert!(v.verify(&headers, BODY).is_ok());
        assert_eq!(
            v.verify(&headers, &flipped(BODY, 0)),
            Err(Error::SignatureMismatch)
        );
        let name = GitHub::SIGNATURE_HEADER;
        let hex = headers[0].1.strip_prefix("sha256=").unwrap().to_owned();
        let mut bare = headers.clone();
        set(&mut bare, name, &hex);
        assert_eq!(
            v.verify(&bare, BODY),
            Err(malformed(name, Malformed::MissingPrefix))
        );
        set(&mut bare, name, &format!("sha1={hex}"));
        assert_eq!(
            v.verify(&bare, BODY),
            Err(malformed(name, Malformed::MissingPrefix))
        );
        set(&mut bare, name, "sha256=");
        assert_eq!(
            v.verify(&bare, BODY),
            Err(malformed(name, Malformed::InvalidLength))
        );
        assert_eq!(
            v.verify(&without(&headers, name), BODY),
            Err(Error::MissingHeader { name })
        );
    }
}

mod esauti {
    use super::*;

    fn verifier() -> EsautiVerifier {
        Verifier::builder()
            .secret("k")
            .clock(at(NOW))
            .build()
            .unwrap()
    }

    fn signed(method: &str, path: &str, ts: i64, body: &[u8]) -> Vec<(String, String)> {
        pairs(
            &Signer::<Esauti>::new("k")
                .unwrap()
                .sign(method, path, ts, body),
        )
    }

    #[test]
    fn rejections() {
        let v = verifier();
        let headers = signed("POST", "/v1/inbound/event", NOW, BODY);
        assert!(
            v.verify("POST", "/v1/inbound/event", &headers, BODY)
                .is_ok()
        );
        assert_eq!(
            v.verify("POST", "/v1/inbound/event", &headers, &flipped(BODY, 7)),
            Err(Error::SignatureMismatch)
        );
        assert_eq!(
            v.verify("PUT", "/v1/inbound/event", &headers, BODY),
            Err(Error::SignatureMismatch)
        );
        assert_eq!(
            v.verify("POST", "/v1/inbound/events", &headers, BODY),
            Err(Error::SignatureMismatch)
        );
        let mut other_ts = headers.clone();
        set(
            &mut other_ts,
            Esauti::TIMESTAMP_HEADER,
            &(NOW - 1).to_string(),
        );
        assert_eq!(
            v.verify("POST", "/v1/inbound/event", &other_ts, BODY),
            Err(Error::SignatureMismatch)
        );
        for name in [Esauti::SIGNATURE_HEADER, Esauti::TIMESTAMP_HEADER] {
            assert_eq!(
                v.verify("POST", "/v1/inbound/event", &without(&headers, name), BODY),
                Err(Error::MissingHeader { name })
            );
        }
        let name = Esauti::SIGNATURE_HEADER;
        let hex = headers[1].1.strip_prefix("sha256=").unwrap().to_owned();
        let mut bad = headers.clone();
        set(&mut bad, name, &hex);
        assert_eq!(
            v.verify("POST", "/v1/inbound/event", &bad, BODY),
            Err(malformed(name, Malformed::MissingPrefix))
        );
        set(&mut bad, name, &format!("sha256={}", &hex[..60]));
        assert_eq!(
            v.verify("POST", "/v1/inbound/event", &bad, BODY),
            Err(malformed(name, Malformed::InvalidLength))
        );
        for ts in [NOW - 301, NOW + 301] {
            assert!(matches!(
                v.verify("POST", "/e", &signed("POST", "/e", ts, BODY), BODY),
                Err(Error::TimestampOutOfTolerance { .. })
            ));
        }
    }

    /// Paths on both sides of the length at which the signed fields stop
    /// fitting in the one block gathered on the stack (then they are fed
    /// piece by piece): the same bytes are signed either way.
    #[test]
    fn long_paths() {
        let v = verifier();
        for len in 1..=100 {
            let path = format!("/{}", "p".repeat(len - 1));
            let headers = signed("post", &path, NOW, BODY);
            assert!(v.verify("post", &path, &headers, BODY).is_ok(), "{len}");
            assert_eq!(
                v.verify("post", &path, &headers, &flipped(BODY, 3)),
                Err(Error::SignatureMismatch),
                "{len}"
            );
        }
    }
}

mod standard_webhooks {
    use super::*;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    fn verifier() -> StandardWebhooksVerifier {
        Verifier::builder()
            .secret(SECRET)
            .clock(at(NOW))
            .build()
            .unwrap()
    }

    fn signed(id: &str, ts: i64, body: &[u8]) -> Vec<(String, String)> {
        pairs(
            &Signer::<StandardWebhooks>::new(SECRET)
                .unwrap()
                .sign(id, ts, body),
        )
    }

    #[test]
    fn rejections() {
        let v = verifier();
        let headers = signed("msg_1", NOW, BODY);
        assert!(v.verify(&headers, BODY).is_ok());
        assert_eq!(
            v.verify(&headers, &flipped(BODY, 9)),
            Err(Error::SignatureMismatch)
        );
        let mut other_id = headers.clone();
        set(&mut other_id, "webhook-id", "msg_2");
        assert_eq!(v.verify(&other_id, BODY), Err(Error::SignatureMismatch));
        let mut other_ts = headers.clone();
        set(&mut other_ts, "webhook-timestamp", &(NOW + 5).to_string());
        assert_eq!(v.verify(&other_ts, BODY), Err(Error::SignatureMismatch));
        // A Stripe-style reading of the secret (the text as key) is wrong.
        let raw_text = StandardWebhooksVerifier::builder()
            .secret(Secret::from_bytes(SECRET.as_bytes()))
            .clock(at(NOW))
            .build()
            .unwrap();
        assert_eq!(
            raw_text.verify(&headers, BODY),
            Err(Error::SignatureMismatch)
        );
        for name in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
            assert_eq!(
                v.verify(&without(&headers, name), BODY),
                Err(Error::MissingHeader { name }),
            );
        }
    }

    /// Ids on both sides of the length at which the signed fields stop
    /// fitting in the one block gathered on the stack.
    #[test]
    fn long_ids() {
        let v = verifier();
        for len in 1..=100 {
            let id = "i".repeat(len);
            let headers = signed(&id, NOW, BODY);
            assert_eq!(v.verify(&headers, BODY).unwrap().id(), Some(&id[..]));
            assert_eq!(
                v.verify(&headers, &flipped(BODY, 3)),
                Err(Error::SignatureMismatch),
                "{len}"
            );
        }
    }

    #[test]
    fn signature_lists() {
        let v = verifier();
        let headers = signed("msg_1", NOW, BODY);
        let good = headers[2].1.clone();
        let b64 = good.strip_prefix("v1,").unwrap();
        let case = |sig: &str| {
            let mut h = headers.clone();
            set(&mut h, "webhook-signature", sig);
            v.verify(&h, BODY).map(|_| ())
        };
        let none = Err(Error::NoSupportedSignature {
            name: "webhook-signature",
        });
        assert_eq!(case(&format!("v2,{b64}")), none);
        assert_eq!(case(&format!("v1a,{b64} v2,{b64}")), none);
        assert_eq!(case("garbage"), none);
        assert_eq!(case("v1,"), Err(Error::SignatureMismatch));
        assert_eq!(
            case(&format!("v1,{}", &b64[..40])),
            Err(Error::SignatureMismatch)
        );
        assert_eq!(
            case(&format!("v1,{}", b64.trim_end_matches('='))),
            Err(Error::SignatureMismatch)
        );
        assert_eq!(case(&format!("V1,{b64}")), none);
        assert_eq!(case(&format!("v2,{b64} v1,{b64}")), Ok(()));
        assert!(case(&format!("v1,AAAA v1,{}  {good}", "A".repeat(43))).is_ok());
    }

    #[test]
    fn timestamp_window() {
        let v = verifier();
        assert!(v.verify(&signed("m", NOW - 300, BODY), BODY).is_ok());
        assert!(v.verify(&signed("m", NOW + 300, BODY), BODY).is_ok());
        for ts in [NOW - 301, NOW + 301] {
            let err = v.verify(&signed("m", ts, BODY), BODY).unwrap_err();
            assert_eq!(
                err,
                Error::TimestampOutOfTolerance {
                    timestamp: ts,
                    now: NOW,
                    skew: NOW - ts,
                    tolerance: 300
                }
            );
        }
    }

    #[test]
    fn bad_secrets() {
        let empty = Error::InvalidSecret {
            reason: SecretError::Empty,
        };
        assert_eq!(StandardWebhooksVerifier::new("").unwrap_err(), empty);
        assert_eq!(StandardWebhooksVerifier::new("whsec_").unwrap_err(), empty);
        assert_eq!(
            StandardWebhooksVerifier::new("whsec_%%%").unwrap_err(),
            Error::InvalidSecret {
                reason: SecretError::InvalidBase64
            }
        );
        assert_eq!(
            StandardWebhooksVerifier::builder().build().unwrap_err(),
            Error::NoSecrets
        );
        assert_eq!(Signer::<Schematic>::new("").unwrap_err(), empty);
    }
}

mod stripe {
    use super::*;

    fn verifier() -> StripeVerifier {
        Verifier::builder()
            .secret("whsec_test_secret")
            .clock(at(NOW))
            .build()
            .unwrap()
    }

    fn header(ts: i64, body: &[u8]) -> String {
        Signer::<Stripe>::new("whsec_test_secret")
            .unwrap()
            .sign(ts, body)
            .get("stripe-signature")
            .unwrap()
            .to_owned()
    }

    fn check(v: &StripeVerifier, value: &str, body: &[u8]) -> Result<(), Error> {
        v.verify(&[("Stripe-Signature", value)], body).map(|_| ())
    }

    #[test]
    fn rejections() {
        let v = verifier();
        let good = header(NOW, BODY);
        let sig = good.split_once(",v1=").unwrap().1.to_owned();
        assert_eq!(check(&v, &good, BODY), Ok(()));
        assert_eq!(
            check(&v, &good, &flipped(BODY, 1)),
            Err(Error::SignatureMismatch)
        );
        assert_eq!(
            check(&v, &format!("t={},v1={sig}", NOW + 1), BODY),
            Err(Error::SignatureMismatch)
        );
        let format = Err(malformed(
            Stripe::SIGNATURE_HEADER,
            Malformed::InvalidFormat,
        ));
        assert_eq!(check(&v, &format!("v1={sig}"), BODY), format);
        assert_eq!(
            check(&v, &format!("t={NOW},t={NOW},v1={sig}"), BODY),
            format
        );
        assert_eq!(check(&v, &format!("t={NOW},v1{sig}"), BODY), format);
        assert_eq!(
            check(&v, &format!("t=soon,v1={sig}"), BODY),
            Err(malformed(
                Stripe::SIGNATURE_HEADER,
                Malformed::InvalidTimestamp
            ))
        );
        let none = Err(Error::NoSupportedSignature {
            name: Stripe::SIGNATURE_HEADER,
        });
        assert_eq!(check(&v, &format!("t={NOW},v0={sig}"), BODY), none);
        assert_eq!(check(&v, &format!("t={NOW}"), BODY), none);
        assert_eq!(
            check(&v, &format!("t={NOW},v1="), BODY),
            Err(Error::SignatureMismatch)
        );
        assert_eq!(
            check(&v, &format!("t={NOW},v1={}", &sig[..63]), BODY),
            Err(Error::SignatureMismatch)
        );
        assert_eq!(
            check(&v, &format!("t={NOW},v1={},v1={sig}", "f".repeat(64)), BODY),
            Ok(())
        );
        // Many entries: the valid one comes after more wrong ones than are
        // kept inline, and a wrong-only list of that size still fails.
        let wrong: Vec<String> = (0..6)
            .map(|i| format!("v1={}", format!("{i:x}").repeat(64)))
            .collect();
        let many = format!("t={NOW},{},v1={sig}", wrong.join(","));
        assert_eq!(check(&v, &many, BODY), Ok(()));
        let many_wrong = format!("t={NOW},{}", wrong.join(","));
        assert_eq!(check(&v, &many_wrong, BODY), Err(Error::SignatureMismatch));
        assert_eq!(
            v.verify(&[("other", "x")], BODY).unwrap_err(),
            Error::MissingHeader {
                name: Stripe::SIGNATURE_HEADER
            }
        );
        // Both directions of the window.
        for ts in [NOW - 301, NOW + 301] {
            assert!(matches!(
                check(&v, &header(ts, BODY), BODY),
                Err(Error::TimestampOutOfTolerance { .. })
            ));
        }
    }

    /// Timestamps spelled with leading zeros, on both sides of the length
    /// at which the signed fields stop fitting in the one block gathered on
    /// the stack: the digits as sent are what is signed.
    #[test]
    fn long_timestamps() {
        let v = verifier();
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"whsec_test_secret");
        for zeros in 0..=80 {
            let t = format!("{}{NOW}", "0".repeat(zeros));
            let tag = ring::hmac::sign(&key, &[t.as_bytes(), b".", BODY].concat());
            let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
            let value = format!("t={t},v1={hex}");
            assert_eq!(check(&v, &value, BODY), Ok(()), "{zeros}");
            assert_eq!(
                check(&v, &value, &flipped(BODY, 3)),
                Err(Error::SignatureMismatch),
                "{zeros}"
            );
        }
    }
}

/// Sign and verify one body under every scheme.
fn round_trip_all(body: &[u8]) {
    let ts = NOW;
    let sch = SchematicVerifier::builder()
        .secret("a")
        .clock(at(ts))
        .build()
        .unwrap();
    let signed = Signer::<Schematic>::new("a").unwrap().sign(ts, body);
    sch.verify(&signed, body).unwrap();
    if !body.is_empty() {
        assert_eq!(
            sch.verify(&signed, &body[1..]),
            Err(Error::SignatureMismatch)
        );
    }

    let fs = FlagsmithVerifier::new("a").unwrap();
    fs.verify(&Signer::<Flagsmith>::new("a").unwrap().sign(body), body)
        .unwrap();

    let gh = GitHubVerifier::new("a").unwrap();
    gh.verify(&Signer::<GitHub>::new("a").unwrap().sign(body), body)
        .unwrap();

    let es = EsautiVerifier::builder()
        .secret("a")
        .clock(at(ts))
        .build()
        .unwrap();
    let signed = Signer::<Esauti>::new("a")
        .unwrap()
        .sign("POST", "/in", ts, body);
    es.verify("POST", "/in", &signed, body).unwrap();

    let sw = StandardWebhooksVerifier::builder()
        .secret(Secret::from_bytes(vec![7u8; 32]))
        .clock(at(ts))
        .build()
        .unwrap();
    let signed = Signer::<StandardWebhooks>::new(vec![7u8; 32])
        .unwrap()
        .sign("id", ts, body);
    sw.verify(&signed, body).unwrap();

    let st = StripeVerifier::builder()
        .secret("a")
        .clock(at(ts))
        .build()
        .unwrap();
    st.verify(&Signer::<Stripe>::new("a").unwrap().sign(ts, body), body)
        .unwrap();
}

#[test]
fn empty_body() {
    round_trip_all(b"");
}

#[test]
fn non_utf8_body() {
    let body = [0xff, 0xfe, 0x00, 0xc3, 0x28, 0x80, b'{', 0xf0, 0x9f];
    assert!(std::str::from_utf8(std::hint::black_box(&body)).is_err());
    round_trip_all(&body);
}

#[test]
fn one_mebibyte_body() {
    let body: Vec<u8> = (0..1 << 20)
        .map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    round_trip_all(&body);
    let v = FlagsmithVerifier::new("a").unwrap();
    let headers = Signer::<Flagsmith>::new("a").unwrap().sign(&body);
    assert_eq!(
        v.verify(&headers, &flipped(&body, body.len() - 1)),
        Err(Error::SignatureMismatch)
    );
}

#[test]
fn rotation_reports_the_matching_secret() {
    let v = SchematicVerifier::builder()
        .secrets(["new", "old"])
        .clock(at(NOW))
        .build()
        .unwrap();
    let by_old = Signer::<Schematic>::new("old").unwrap().sign(NOW, BODY);
    let by_new = Signer::<Schematic>::new("new").unwrap().sign(NOW, BODY);
    assert_eq!(v.verify(&by_new, BODY).unwrap().secret_index(), 0);
    assert_eq!(v.verify(&by_old, BODY).unwrap().secret_index(), 1);
    let by_other = Signer::<Schematic>::new("other").unwrap().sign(NOW, BODY);
    assert_eq!(v.verify(&by_other, BODY), Err(Error::SignatureMismatch));

    let sw = StandardWebhooksVerifier::builder()
        .secret("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD")
        .secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
        .clock(at(NOW))
        .build()
        .unwrap();
    let signed = Signer::<StandardWebhooks>::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
        .unwrap()
        .sign("m", NOW, BODY);
    assert_eq!(sw.verify(&signed, BODY).unwrap().secret_index(), 1);
}

#[test]
fn header_containers() {
    let signed = Signer::<Schematic>::new("a").unwrap().sign(NOW, BODY);
    let v = SchematicVerifier::builder()
        .secret("a")
        .clock(at(NOW))
        .build()
        .unwrap();
    let upper: HashMap<String, String> = signed
        .iter()
        .map(|(n, v)| (n.to_ascii_uppercase(), v.to_owned()))
        .collect();
    v.verify(&upper, BODY).unwrap();
    let btree: BTreeMap<&str, &str> = signed.iter().collect();
    v.verify(&btree, BODY).unwrap();
    let bytes: Vec<(&[u8], &[u8])> = signed
        .iter()
        .map(|(n, v)| (n.as_bytes(), v.as_bytes()))
        .collect();
    v.verify(bytes.as_slice(), BODY).unwrap();
    #[cfg(feature = "http")]
    {
        let map = signed.to_header_map().unwrap();
        v.verify(&map, BODY).unwrap();
    }
}

#[test]
fn errors_never_show_secrets_or_signatures() {
    let secret = "very-private-secret";
    let v = SchematicVerifier::builder()
        .secret(secret)
        .clock(at(NOW))
        .build()
        .unwrap();
    let signed = Signer::<Schematic>::new(secret).unwrap().sign(NOW, BODY);
    let expected = signed.get(Schematic::SIGNATURE_HEADER).unwrap().to_owned();
    let err = v.verify(&signed, b"tampered").unwrap_err();
    for shown in [err.to_string(), format!("{err:?}"), format!("{v:?}")] {
        assert!(!shown.contains(secret), "{shown}");
        assert!(!shown.contains(&expected), "{shown}");
        assert!(!shown.contains(&expected[..16]), "{shown}");
    }
    let error: Box<dyn std::error::Error + Send + Sync> = Box::new(err);
    assert_eq!(
        error.to_string(),
        "no signature matches the configured secrets"
    );
}
