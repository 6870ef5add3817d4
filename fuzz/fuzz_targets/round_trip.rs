//! Whatever is signed verifies, and changing any one byte of the body makes
//! verification fail.
#![no_main]

use flagwire_webhooks::{
    FixedClock, Schematic, SchematicVerifier, Secret, Signer, StandardWebhooks,
    StandardWebhooksVerifier, Stripe, StripeVerifier, Verifier,
};
use libfuzzer_sys::fuzz_target;

const NOW: i64 = 1_700_000_000;

fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let split = usize::from(split).min(rest.len());
    let (key, body) = rest.split_at(split);
    if key.is_empty() {
        return;
    }
    let secret = || Secret::from_bytes(key);

    let schematic: SchematicVerifier = Verifier::builder()
        .secret(secret())
        .clock(FixedClock(NOW))
        .build()
        .unwrap();
    let signed = Signer::<Schematic>::new(secret()).unwrap().sign(NOW, body);
    assert!(schematic.verify(&signed, body).is_ok());

    let standard: StandardWebhooksVerifier = Verifier::builder()
        .secret(secret())
        .clock(FixedClock(NOW))
        .build()
        .unwrap();
    let signed_sw = Signer::<StandardWebhooks>::new(secret())
        .unwrap()
        .sign("msg_fuzz", NOW, body);
    assert!(standard.verify(&signed_sw, body).is_ok());

    let stripe: StripeVerifier = Verifier::builder()
        .secret(secret())
        .clock(FixedClock(NOW))
        .build()
        .unwrap();
    let signed_stripe = Signer::<Stripe>::new(secret()).unwrap().sign(NOW, body);
    assert!(stripe.verify(&signed_stripe, body).is_ok());

    if !body.is_empty() {
        let mut changed = body.to_vec();
        let at = usize::from(data[0]) % changed.len();
        changed[at] ^= 0x01;
        assert!(schematic.verify(&signed, &changed).is_err());
        assert!(standard.verify(&signed_sw, &changed).is_err());
        assert!(stripe.verify(&signed_stripe, &changed).is_err());
    }
});
