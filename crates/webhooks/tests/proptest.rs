//! Property tests: what is signed verifies, and any single-byte change to
//! the body or the signature does not.

use flagwire_webhooks::{
    Error, Esauti, EsautiVerifier, FixedClock, Flagsmith, FlagsmithVerifier, GitHub,
    GitHubVerifier, Schematic, SchematicVerifier, Secret, Signer, StandardWebhooks,
    StandardWebhooksVerifier, Stripe, StripeVerifier, Verifier,
};
use proptest::prelude::*;

const NOW: i64 = 1_700_000_000;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 96,
        ..ProptestConfig::default()
    }
}

/// Headers with one byte of one value changed (keeping it printable).
fn tamper(
    headers: &flagwire_webhooks::SignedHeaders,
    which: usize,
    at: usize,
) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = headers
        .iter()
        .map(|(n, v)| (n.to_owned(), v.as_bytes().to_vec()))
        .collect();
    let len = out.len();
    let value = &mut out[which % len].1;
    let i = at % value.len();
    value[i] = if value[i] == b'0' { b'1' } else { b'0' };
    out
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn schematic(secret in proptest::collection::vec(any::<u8>(), 1..64),
                 body in proptest::collection::vec(any::<u8>(), 0..2048),
                 ts in (NOW - 300)..(NOW + 300),
                 flip in any::<(usize, u8)>(),
                 header_flip in any::<(usize, usize)>()) {
        let v: SchematicVerifier = Verifier::builder()
            .secret(Secret::from_bytes(secret.clone()))
            .clock(FixedClock(NOW))
            .build()
            .unwrap();
        let signed = Signer::<Schematic>::new(secret).unwrap().sign(ts, &body);
        let verified = v.verify(&signed, &body).unwrap();
        prop_assert_eq!(verified.timestamp(), Some(ts));
        if !body.is_empty() {
            let mut changed = body.clone();
            changed[flip.0 % body.len()] ^= flip.1.max(1);
            prop_assert_eq!(v.verify(&signed, &changed).map(|_| ()), Err(Error::SignatureMismatch));
        }
        let tampered = tamper(&signed, header_flip.0, header_flip.1);
        prop_assert!(v.verify(&tampered, &body).is_err());
    }

    #[test]
    fn flagsmith_and_github(secret in "[ -~]{1,40}",
                            body in proptest::collection::vec(any::<u8>(), 0..2048),
                            flip in any::<(usize, u8)>()) {
        let fs = FlagsmithVerifier::new(secret.as_str()).unwrap();
        let gh = GitHubVerifier::new(secret.as_str()).unwrap();
        let fs_headers = Signer::<Flagsmith>::new(secret.as_str()).unwrap().sign(&body);
        let gh_headers = Signer::<GitHub>::new(secret.as_str()).unwrap().sign(&body);
        prop_assert!(fs.verify(&fs_headers, &body).is_ok());
        prop_assert!(gh.verify(&gh_headers, &body).is_ok());
        if !body.is_empty() {
            let mut changed = body.clone();
            changed[flip.0 % body.len()] ^= flip.1.max(1);
            prop_assert!(fs.verify(&fs_headers, &changed).is_err());
            prop_assert!(gh.verify(&gh_headers, &changed).is_err());
        }
        prop_assert!(fs.verify(&tamper(&fs_headers, 0, flip.0), &body).is_err());
        prop_assert!(gh.verify(&tamper(&gh_headers, 0, flip.0 % 64 + 7), &body).is_err());
    }

    #[test]
    fn esauti(secret in "[a-zA-Z0-9]{1,32}",
              method in "(GET|POST|put|Delete)",
              path in "(/[a-z0-9]{0,8}){0,4}",
              body in proptest::collection::vec(any::<u8>(), 0..1024),
              flip in any::<(usize, u8)>()) {
        let v = EsautiVerifier::builder().secret(secret.as_str()).clock(FixedClock(NOW)).build().unwrap();
        let signed = Signer::<Esauti>::new(secret.as_str()).unwrap().sign(&method, &path, NOW, &body);
        prop_assert!(v.verify(&method, &path, &signed, &body).is_ok());
        if !body.is_empty() {
            let mut changed = body.clone();
            changed[flip.0 % body.len()] ^= flip.1.max(1);
            prop_assert!(v.verify(&method, &path, &signed, &changed).is_err());
        }
        let other_path = format!("{path}/x");
        prop_assert!(v.verify(&method, &other_path, &signed, &body).is_err());
    }

    #[test]
    fn standard_webhooks(key in proptest::collection::vec(any::<u8>(), 24..64),
                         id in "msg_[A-Za-z0-9]{1,27}",
                         body in proptest::collection::vec(any::<u8>(), 0..2048),
                         flip in any::<(usize, u8)>(),
                         header_flip in any::<(usize, usize)>()) {
        let v: StandardWebhooksVerifier = Verifier::builder()
            .secret(Secret::from_bytes(key.clone()))
            .clock(FixedClock(NOW))
            .build()
            .unwrap();
        let signed = Signer::<StandardWebhooks>::new(key).unwrap().sign(&id, NOW, &body);
        prop_assert_eq!(v.verify(&signed, &body).unwrap().id(), Some(id.as_str()));
        if !body.is_empty() {
            let mut changed = body.clone();
            changed[flip.0 % body.len()] ^= flip.1.max(1);
            prop_assert!(v.verify(&signed, &changed).is_err());
        }
        prop_assert!(v.verify(&tamper(&signed, header_flip.0, header_flip.1), &body).is_err());
    }

    #[test]
    fn stripe(secret in "whsec_[A-Za-z0-9]{8,32}",
              body in proptest::collection::vec(any::<u8>(), 0..2048),
              flip in any::<(usize, u8)>(),
              at in any::<usize>()) {
        let v = StripeVerifier::builder().secret(secret.as_str()).clock(FixedClock(NOW)).build().unwrap();
        let signed = Signer::<Stripe>::new(secret.as_str()).unwrap().sign(NOW, &body);
        prop_assert!(v.verify(&signed, &body).is_ok());
        if !body.is_empty() {
            let mut changed = body.clone();
            changed[flip.0 % body.len()] ^= flip.1.max(1);
            prop_assert!(v.verify(&signed, &changed).is_err());
        }
        prop_assert!(v.verify(&tamper(&signed, 0, at), &body).is_err());
    }
}
