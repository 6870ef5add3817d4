//! eSauti Event Injection envelopes: wire bytes, defaults and validation.

use std::collections::HashSet;

use flagwire_core::esauti::{
    EnvelopeBuilder, EnvelopeError, EventEnvelope, EventId, EventType, EventValidationError, Object,
};
use serde_json::{Value, json};
use time::macros::datetime;

fn wire(event: &EventEnvelope) -> String {
    String::from_utf8(event.to_bytes().unwrap().to_vec()).unwrap()
}

fn fixed(ty: impl Into<EventType>) -> EnvelopeBuilder {
    EventEnvelope::builder(ty)
        .id("evt_fixed")
        .unwrap()
        .occurred_at(datetime!(2026-03-09 17:00:00 UTC))
        .unwrap()
}

fn validation(err: EnvelopeError) -> EventValidationError {
    match err {
        EnvelopeError::Validation(e) => e,
        other => panic!("expected a validation error, got {other:?}"),
    }
}

/// A builder for `ty` that sets every required property except `skip`.
fn with_required(ty: &EventType, skip: Option<&str>) -> EnvelopeBuilder {
    let mut b = fixed(ty.clone());
    let mut entity = Object::new();
    let mut explicit_entity = false;
    for path in ty.required_properties() {
        if Some(*path) == skip {
            if path.starts_with("entity.") {
                explicit_entity = true;
            }
            continue;
        }
        match path.split_once('.') {
            None => {} // occurred_at and source always have values
            Some(("customer", key)) => b = b.customer_field(key, "cus_1"),
            Some(("entity", key)) => {
                explicit_entity = true;
                entity.insert(key.to_owned(), json!("ent_1"));
            }
            Some(("properties", key)) => b = b.property(key, "v"),
            Some((other, _)) => panic!("unexpected required path {other}"),
        }
    }
    if explicit_entity {
        if entity.is_empty() {
            // Keep the entity explicit so that no default fills the skipped key.
            entity.insert("note".to_owned(), json!("explicit"));
        }
        for (k, v) in entity {
            b = b.entity_field(k, v);
        }
    }
    b
}

#[test]
fn every_registered_type_builds_with_its_required_properties() {
    for ty in EventType::registered() {
        let event = with_required(ty, None)
            .build()
            .unwrap_or_else(|e| panic!("{ty}: {e}"));
        assert_eq!(event.event_type(), ty);
        assert!(event.validate().is_ok());
        let bytes = event.to_bytes().unwrap();
        let back = EventEnvelope::from_json(&bytes).unwrap();
        assert_eq!(back, event, "{ty}");
        assert_eq!(back.to_bytes().unwrap(), bytes);
    }
}

#[test]
fn each_missing_required_property_is_named() {
    let mut checked = 0;
    for ty in EventType::registered() {
        for path in ty.required_properties() {
            if !path.contains('.') {
                continue; // occurred_at and source: see top_level_properties_can_be_missing
            }
            let err = validation(with_required(ty, Some(path)).build().unwrap_err());
            assert_eq!(&err.event_type, ty);
            assert_eq!(err.missing, [*path], "{ty}");
            checked += 1;
        }
    }
    // 225 types: 150 + 24*0 + 21 + 14*3 + 8*2 + 4*2 + 3*2 + 1*3 two-segment paths.
    assert_eq!(checked, 150 + 21 + 42 + 16 + 8 + 6 + 3);
}

#[test]
fn top_level_properties_can_be_missing_in_a_read_envelope() {
    let json = br#"{"id":"evt_1","type":"customer.created","occurred_at":"2026-01-01T00:00:00Z","source":"","customer":{"id":null},"entity":{}}"#;
    let err = validation(EventEnvelope::from_json(json).unwrap_err());
    assert_eq!(err.event_type, EventType::CustomerCreated);
    assert_eq!(err.missing, ["source", "customer.id"]);
    assert_eq!(
        err.to_string(),
        "event `customer.created` is missing required properties: source, customer.id"
    );
}

#[test]
fn zero_and_false_are_values_null_and_empty_string_are_missing() {
    let order = |value: Value| {
        fixed(EventType::OrderCreated)
            .customer_id("cus_1")
            .property("currency", "USD")
            .property("value", value)
            .build()
    };
    for present in [
        json!(0),
        json!(0.0),
        json!(false),
        json!([]),
        json!({}),
        json!(" "),
    ] {
        assert!(order(present.clone()).is_ok(), "{present}");
    }
    for missing in [json!(null), json!("")] {
        let err = validation(order(missing.clone()).unwrap_err());
        assert_eq!(err.missing, ["properties.value"], "{missing}");
    }
    let err = validation(
        fixed(EventType::OrderCreated)
            .customer_id("cus_1")
            .build()
            .unwrap_err(),
    );
    assert_eq!(err.missing, ["properties.currency", "properties.value"]);
}

#[test]
fn default_entity_uses_the_registry_entity_type_and_customer_id() {
    let email = fixed(EventType::EmailSent)
        .customer_id("cus_1")
        .build()
        .unwrap();
    assert_eq!(
        email.entity(),
        &object(json!({"type": "message", "id": "cus_1"}))
    );
    let case = fixed("case.opened").customer_id("cus_1").build().unwrap();
    assert_eq!(case.entity()["type"], "ticket");
    // A numeric customer id is written as text.
    let numeric = fixed(EventType::CustomerCreated)
        .customer_field("id", 42)
        .build()
        .unwrap();
    assert_eq!(
        numeric.entity(),
        &object(json!({"type": "customer", "id": "42"}))
    );
    // No customer id: no entity id, and types that need one fail.
    let err = validation(fixed(EventType::EmailSent).build().unwrap_err());
    assert_eq!(err.missing, ["entity.id"]);
    // An explicit entity is kept as given.
    let explicit = fixed(EventType::CustomerCreated)
        .customer_id("cus_1")
        .entity("account", "acc_7")
        .build()
        .unwrap();
    assert_eq!(
        explicit.entity(),
        &object(json!({"type": "account", "id": "acc_7"}))
    );
}

fn object(v: Value) -> Object {
    serde_json::from_value(v).unwrap()
}

#[test]
fn custom_types() {
    let event = fixed("invoice.exported")
        .customer_id("cus_1")
        .build()
        .unwrap();
    assert_eq!(
        event.event_type(),
        &EventType::Custom("invoice.exported".into())
    );
    assert_eq!(event.entity()["type"], "invoice");
    // No required properties: an empty customer passes.
    let bare = fixed("Purchase").build().unwrap();
    assert_eq!(bare.entity(), &object(json!({"type": "Purchase"})));
    insta::assert_snapshot!("custom_type", wire(&bare));

    // A Custom value holding a registered name is the registered type, and validated as such.
    let err = validation(
        fixed(EventType::Custom("order.created".into()))
            .customer_id("c")
            .build()
            .unwrap_err(),
    );
    assert_eq!(err.event_type, EventType::OrderCreated);

    assert!(matches!(
        fixed("").build().unwrap_err(),
        EnvelopeError::EmptyEventType
    ));
}

#[test]
fn ids_are_unique_and_ordered() {
    let mut seen = HashSet::with_capacity(100_000);
    let mut last = EventId::generate();
    for _ in 0..100_000 {
        let id = EventId::generate();
        assert!(id > last, "{id} after {last}");
        assert!(seen.insert(id.clone()));
        last = id;
    }
    let s = last.as_str();
    assert_eq!(s.len(), 40);
    let uuid = uuid::Uuid::parse_str(&s[4..]).unwrap();
    assert_eq!(uuid.get_version_num(), 7);
    // Built envelopes get distinct ids too.
    let a = EventEnvelope::builder("x.y").build().unwrap();
    let b = EventEnvelope::builder("x.y").build().unwrap();
    assert_ne!(a.id(), b.id());
}

#[test]
fn default_occurred_at_is_utc_now_in_milliseconds() {
    let before = time::OffsetDateTime::now_utc();
    let event = EventEnvelope::builder("x.y").build().unwrap();
    let at = event.occurred_at();
    assert!(at.offset().is_utc());
    assert_eq!(at.nanosecond() % 1_000_000, 0);
    assert!(at >= before.replace_millisecond(before.millisecond()).unwrap());
    assert_eq!(event.source(), "sdk");
    let json: Value = serde_json::from_slice(&event.to_bytes().unwrap()).unwrap();
    assert!(json["occurred_at"].as_str().unwrap().ends_with('Z'));
}

#[test]
fn occurred_at_is_converted_to_utc_and_range_checked() {
    let event = fixed(EventType::PageViewed)
        .occurred_at(datetime!(2026-01-01 02:30:00.250 +02:00))
        .unwrap()
        .build()
        .unwrap();
    assert!(wire(&event).contains(r#""occurred_at":"2026-01-01T00:30:00.25Z""#));
    assert!(matches!(
        EventEnvelope::builder("x.y")
            .occurred_at(datetime!(9999-12-31 23:00:00 -05:00))
            .unwrap_err(),
        EnvelopeError::Timestamp
    ));
    assert!(matches!(
        EventEnvelope::builder("x.y").id("").unwrap_err(),
        EnvelopeError::EmptyEventId
    ));
}

#[test]
fn minimal_wire_bytes() {
    let event = fixed(EventType::CustomerCreated)
        .customer_id("cus_1")
        .build()
        .unwrap();
    insta::assert_snapshot!("minimal", wire(&event));
}

#[test]
fn full_wire_bytes_in_key_order() {
    let event = fixed(EventType::OrderCreated)
        .source("shopify")
        .customer_id("cus_1")
        .customer_field("email", "ann@example.com")
        .customer_field("phone", "+15550100")
        .entity("order", "ord_9")
        .property("value", 0)
        .property("currency", "USD")
        .property("items", json!([{"sku": "a", "qty": 2}]))
        .property("note", "café ✓")
        .external_event_id("shopify_123")
        .context_field("ip", "203.0.113.9")
        .context_field("locale", "fr-SN")
        .consent_field("marketing", false)
        .tracking_id("99")
        .device_id("dev_1")
        .build()
        .unwrap();
    insta::assert_snapshot!("full", wire(&event));
    let back = EventEnvelope::from_json(&event.to_bytes().unwrap()).unwrap();
    assert_eq!(back, event);
}

#[test]
fn optional_blocks_are_left_out_when_empty() {
    let event = fixed(EventType::PageViewed)
        .external_event_id("")
        .context(Object::new())
        .consent(Object::new())
        .tracking_id("99")
        .device_id("")
        .build()
        .unwrap();
    let text = wire(&event);
    assert!(!text.contains("external_event_id"));
    assert!(!text.contains("context"));
    assert!(!text.contains("consent"));
    assert!(text.ends_with(r#""esauti":{"id":"99"}}"#), "{text}");
    let none = fixed(EventType::PageViewed).build().unwrap();
    assert!(!wire(&none).contains("esauti"));
}

#[test]
fn reading_envelopes() {
    // Offsets are normalized to UTC, unknown keys dropped, properties may be absent.
    let json = br#"{"id":"evt_1","type":"page.viewed","occurred_at":"2026-01-01T01:00:00+01:00","source":"web","customer":{},"entity":{"type":"web"},"extra":1}"#;
    let event = EventEnvelope::from_json(json).unwrap();
    insta::assert_snapshot!("read_normalized", wire(&event));

    let err = EventEnvelope::from_json(
        br#"{"id":"evt_1","type":"page.viewed","occurred_at":"yesterday","source":"web","customer":{},"entity":{}}"#,
    )
    .unwrap_err();
    let EnvelopeError::Decode { path, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(path, "occurred_at");
    assert!(
        err.to_string()
            .starts_with("invalid event envelope at `occurred_at`")
    );

    let err = EventEnvelope::from_json(br#"{"id":"evt_1"}"#).unwrap_err();
    assert!(matches!(err, EnvelopeError::Decode { .. }), "{err:?}");
    let err = EventEnvelope::from_json(
        br#"{"id":"","type":"x.y","occurred_at":"2026-01-01T00:00:00Z","source":"web","customer":{},"entity":{}}"#,
    )
    .unwrap_err();
    assert!(matches!(err, EnvelopeError::EmptyEventId));
    assert!(EventEnvelope::from_json(b"not json").is_err());
}
