//! Table-driven validation of eSauti event envelopes.
//!
//! # The rule
//!
//! A registered event type lists required dot-paths (see
//! [`EventType::required_properties`]). A path of one segment names a top-level field of the
//! envelope (`occurred_at`, `source`); a path of two names a key inside one of the objects
//! (`customer.id`, `entity.type`, `properties.value`). A required path is **missing** when
//!
//! - the field or key is absent,
//! - its value is JSON `null`, or
//! - its value is the empty string `""`.
//!
//! Every other value is **present**: `0`, `0.0`, `false`, `" "`, `[]` and `{}` included. (The
//! Python SDK treats every falsy value as missing, so an order worth `0` could not be sent;
//! this crate does not copy that.) Custom types are not in the registry and have no required
//! paths; only their name must be non-empty.

use serde_json::Value;

use super::{EventType, EventValidationError};
use crate::esauti::envelope::EventEnvelope;

/// Whether a JSON value counts as present for a required property: anything but `null` and
/// the empty string.
///
/// ```
/// use flagwire_core::esauti::is_present;
/// use serde_json::json;
///
/// assert!(is_present(&json!(0)));
/// assert!(is_present(&json!(false)));
/// assert!(is_present(&json!([])));
/// assert!(!is_present(&json!(null)));
/// assert!(!is_present(&json!("")));
/// ```
pub fn is_present(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        _ => true,
    }
}

fn text_present(s: &str) -> bool {
    !s.is_empty()
}

/// Whether `path` (one or two segments) is present in `envelope`.
pub(crate) fn path_present(envelope: &EventEnvelope, path: &str) -> bool {
    let (head, tail) = match path.split_once('.') {
        Some((head, tail)) => (head, Some(tail)),
        None => (path, None),
    };
    match (head, tail) {
        ("id", None) => text_present(envelope.id().as_str()),
        ("type", None) => text_present(envelope.event_type().as_str()),
        // Always set, always within RFC 3339's range.
        ("occurred_at", None) => true,
        ("source", None) => text_present(envelope.source()),
        ("external_event_id", None) => envelope.external_event_id().is_some_and(text_present),
        ("customer", None) | ("entity", None) | ("properties", None) => true,
        ("context", None) => !envelope.context().is_empty(),
        ("consent", None) => !envelope.consent().is_empty(),
        ("esauti", None) => !envelope.tracking().is_empty(),
        ("esauti", Some("id")) => envelope.tracking().id().is_some_and(text_present),
        ("esauti", Some("device_id")) => envelope.tracking().device_id().is_some_and(text_present),
        (object, Some(key)) => {
            let map = match object {
                "customer" => envelope.customer(),
                "entity" => envelope.entity(),
                "properties" => envelope.properties(),
                "context" => envelope.context(),
                "consent" => envelope.consent(),
                _ => return false,
            };
            map.get(key).is_some_and(is_present)
        }
        _ => false,
    }
}

/// Checks `envelope` against the registry entry of its type; see the [module docs](self).
pub(crate) fn validate(envelope: &EventEnvelope) -> Result<(), EventValidationError> {
    let ty = envelope.event_type();
    // A `Custom` value that happens to hold a registered name is checked like that name.
    let registered = match ty {
        EventType::Custom(name) => EventType::lookup(name),
        known => Some(known),
    };
    let Some(registered) = registered else {
        return Ok(());
    };
    let missing: Vec<String> = registered
        .required_properties()
        .iter()
        .filter(|path| !path_present(envelope, path))
        .map(|path| (*path).to_owned())
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(EventValidationError {
            event_type: registered.clone(),
            missing,
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn envelope() -> EventEnvelope {
        EventEnvelope::builder("x.y")
            .customer_field("id", 0)
            .customer_field("email", "")
            .property("flag", false)
            .property("gone", Value::Null)
            .context_field("ip", "203.0.113.9")
            .tracking_id("7")
            .external_event_id("ext")
            .build()
            .unwrap()
    }

    #[test]
    fn paths() {
        let e = envelope();
        for present in [
            "id",
            "type",
            "occurred_at",
            "source",
            "external_event_id",
            "customer",
            "entity",
            "properties",
            "context",
            "esauti",
            "customer.id",
            "entity.type",
            "entity.id",
            "properties.flag",
            "context.ip",
            "esauti.id",
        ] {
            assert!(path_present(&e, present), "{present}");
        }
        for missing in [
            "consent",
            "customer.email",
            "properties.gone",
            "properties.absent",
            "consent.marketing",
            "esauti.device_id",
            "esauti.other",
            "unknown",
            "unknown.key",
            "customer.id.deeper",
        ] {
            assert!(!path_present(&e, missing), "{missing}");
        }
        // `0` as a customer id also becomes the default entity id.
        assert_eq!(e.entity()["id"], json!("0"));
    }

    #[test]
    fn custom_types_have_no_requirements() {
        assert!(validate(&envelope()).is_ok());
    }
}
