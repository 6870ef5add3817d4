//! eSauti event envelopes from arbitrary JSON, validated against the event
//! registry: reading never panics (bad input is a typed error), whatever
//! reads is valid and encodes to bytes that read back to the same envelope,
//! and the builder agrees with the reader.
#![no_main]

use flagwire_core::esauti::{EnvelopeError, EventEnvelope, EventType, Object};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fn object(value: Option<&Value>) -> Object {
    match value {
        Some(Value::Object(map)) => map.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        _ => Object::new(),
    }
}

fn check_round_trip(envelope: &EventEnvelope) {
    envelope
        .validate()
        .expect("an envelope that was accepted is valid");
    let bytes = envelope.to_bytes().expect("a valid envelope encodes");
    let again = EventEnvelope::from_json(&bytes).unwrap_or_else(|e| {
        panic!(
            "encoded envelope does not read back: {e}\n{}",
            String::from_utf8_lossy(&bytes)
        )
    });
    assert_eq!(&again, envelope);
}

fuzz_target!(|data: &[u8]| {
    match EventEnvelope::from_json(data) {
        Ok(envelope) => {
            let ty = envelope.event_type();
            assert!(!ty.as_str().is_empty());
            assert_eq!(&EventType::parse(ty.as_str()), ty);
            check_round_trip(&envelope);
        }
        Err(e) => {
            // Typed, and it formats.
            let _ = e.to_string();
            if let EnvelopeError::Validation(v) = &e {
                let _ = v.to_string();
            }
        }
    }

    // The same fields through the builder.
    let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let Some(Value::String(name)) = map.get("type") else {
        return;
    };
    let ty = EventType::parse(name);
    assert_eq!(ty.as_str(), name);
    assert_eq!(ty.is_registered(), EventType::lookup(name).is_some());
    let mut builder = EventEnvelope::builder(ty)
        .customer(object(map.get("customer")))
        .properties(object(map.get("properties")))
        .context(object(map.get("context")));
    if let Some(Value::Object(entity)) = map.get("entity") {
        for (k, v) in entity {
            builder = builder.entity_field(k.clone(), v.clone());
        }
    }
    if let Some(Value::String(source)) = map.get("source") {
        builder = builder.source(source.clone());
    }
    if let Some(Value::String(id)) = map.get("id") {
        match builder.id(id.clone()) {
            Ok(b) => builder = b,
            Err(_) => return,
        }
    }
    if let Ok(envelope) = builder.build() {
        check_round_trip(&envelope);
    }
});
