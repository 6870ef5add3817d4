//! Wire format of capture events and batch bodies, pinned with snapshots.

use flagwire_core::events::{
    ApiKey, BatchEncoder, CompanyIdentity, EventBody, EventEnvelope, EventError, EventOptions,
    FlagCheckBody, IdempotencyKey, IdentifyBody, InferenceBody, MAX_BATCH_EVENTS, TrackBody,
};
use serde_json::{Value, json};
use time::macros::datetime;

fn key() -> ApiKey {
    ApiKey::new("sch_dev_KEY").unwrap()
}

fn fixed(body: impl Into<EventBody>, idem: &str) -> EventEnvelope {
    EventEnvelope::new(key(), body)
        .with_sent_at(datetime!(2026-01-02 03:04:05 UTC))
        .unwrap()
        .with_idempotency_key(IdempotencyKey::custom(idem).unwrap())
}

fn track() -> EventEnvelope {
    let body = TrackBody::builder("api-call")
        .company_key("id", "acme")
        .user_key("email", "a@b.c")
        .trait_value("x", 1)
        .quantity(3)
        .build()
        .unwrap();
    fixed(body, "k1")
}

fn identify() -> EventEnvelope {
    let company = CompanyIdentity::builder()
        .key("id", "acme")
        .name("Acme")
        .trait_value("seats", 5)
        .build()
        .unwrap();
    let body = IdentifyBody::builder()
        .key("email", "a@b.c")
        .name("Ann")
        .trait_value("role", "admin")
        .company(company)
        .build()
        .unwrap();
    fixed(body, "k2")
}

fn flag_check() -> EventEnvelope {
    let body = FlagCheckBody::builder("new-editor", false, "No rule matched")
        .flag_id("flag_1")
        .company_id("comp_1")
        .req_company_key("id", "acme")
        .req_user_key("email", "a@b.c")
        .build()
        .unwrap();
    fixed(body, "k3")
}

#[test]
fn track_envelope() {
    insta::assert_json_snapshot!(track());
}

#[test]
fn identify_envelope() {
    insta::assert_json_snapshot!(identify());
}

#[test]
fn flag_check_envelope() {
    insta::assert_json_snapshot!(flag_check());
}

#[test]
fn minimal_bodies_omit_unset_fields() {
    let track = fixed(TrackBody::builder("login").build().unwrap(), "k4");
    let identify = fixed(
        IdentifyBody::builder().key("id", "u1").build().unwrap(),
        "k5",
    );
    let t = serde_json::to_value(&track).unwrap();
    let i = serde_json::to_value(&identify).unwrap();
    assert_eq!(t["body"], json!({"event": "login"}));
    assert_eq!(i["body"], json!({"keys": {"id": "u1"}}));
    // No field anywhere is `null`.
    for v in [t, i] {
        assert!(!v.to_string().contains("null"));
    }
}

#[test]
fn other_event_kinds_pass_through() {
    let body =
        EventBody::other("session", json!({"company": {"id": "acme"}, "seconds": 10})).unwrap();
    insta::assert_json_snapshot!(fixed(body, "k6"));
}

#[test]
fn inference_envelope() {
    let body = InferenceBody::builder("anthropic", "claude-sonnet-4")
        .company([("id", "acme")])
        .user([("email", "a@b.c")])
        .input_tokens(1200)
        .output_tokens(350)
        .cached_input_tokens(1000)
        .cost("0.0123")
        .currency("usd")
        .event("ai-tokens")
        .build()
        .unwrap();
    insta::assert_json_snapshot!(fixed(body, "k7"));
}

#[test]
fn track_with_options_envelope() {
    let body = TrackBody::builder("credits")
        .company([("id", "acme")])
        .quantity(5)
        .reservation_id("res_1")
        .build()
        .unwrap();
    let event = EventEnvelope::new(key(), body)
        .with_options(
            &EventOptions::new()
                .idempotency_key("lease-reservation:res_1")
                .backfill_at(datetime!(2025-12-31 23:00 UTC)),
        )
        .unwrap();
    insta::assert_json_snapshot!(event);
}

#[test]
fn batch_body_bytes() {
    let events = [track(), identify(), flag_check()];
    let body = BatchEncoder::new().encode(&events).unwrap();
    insta::assert_snapshot!(std::str::from_utf8(&body).unwrap());
    let parsed: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(parsed.as_object().unwrap().len(), 1);
    assert_eq!(parsed["events"].as_array().unwrap().len(), 3);
}

#[test]
fn batch_of_the_maximum_size_round_trips() {
    let events: Vec<_> = (0..MAX_BATCH_EVENTS)
        .map(|i| EventEnvelope::new(key(), TrackBody::builder(format!("e{i}")).build().unwrap()))
        .collect();
    let mut encoder = BatchEncoder::new();
    let body = encoder.encode(&events).unwrap();
    let parsed: Value = serde_json::from_slice(&body).unwrap();
    let wire = parsed["events"].as_array().unwrap();
    assert_eq!(wire.len(), MAX_BATCH_EVENTS);
    for (event, wire) in events.iter().zip(wire) {
        assert_eq!(wire["idempotency_key"], event.idempotency_key().to_string());
        assert_eq!(wire["api_key"], "sch_dev_KEY");
        let sent_at = wire["sent_at"].as_str().unwrap();
        let parsed =
            time::OffsetDateTime::parse(sent_at, &time::format_description::well_known::Rfc3339)
                .unwrap();
        assert_eq!(parsed, event.sent_at());
        assert!(sent_at.ends_with('Z'));
    }
    let mut too_many = events.clone();
    too_many.push(events[0].clone());
    assert!(matches!(
        encoder.encode(&too_many),
        Err(EventError::BatchTooLarge { len: 101, max: 100 })
    ));
}

#[test]
fn fresh_envelopes_get_distinct_v7_keys() {
    let body = TrackBody::builder("e").build().unwrap();
    let keys: std::collections::HashSet<_> = (0..10_000)
        .map(|_| {
            EventEnvelope::new(key(), body.clone())
                .idempotency_key()
                .clone()
        })
        .collect();
    assert_eq!(keys.len(), 10_000);
    assert!(
        keys.iter()
            .all(|k| k.as_uuid().is_some_and(|u| u.get_version_num() == 7))
    );
}

#[test]
fn debug_output_never_shows_the_api_key() {
    for e in [track(), identify(), flag_check()] {
        let debug = format!("{e:?}");
        assert!(!debug.contains("sch_dev_KEY"), "{debug}");
    }
    let redacted = serde_json::to_string(&track().without_api_key()).unwrap();
    assert!(!redacted.contains("sch_dev_KEY"));
}
