//! Typed webhook payloads from arbitrary bytes: parsing never panics, and
//! whatever parses serialises and parses back to the same value.
#![no_main]

use flagwire_webhooks::payload::{flagsmith, schematic};
use libfuzzer_sys::fuzz_target;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Parses `data` as `T`; when that works, `T`'s own JSON must parse back to
/// an equal value.
fn round_trip<T>(data: &[u8]) -> Option<T>
where
    T: DeserializeOwned + Serialize + PartialEq + std::fmt::Debug,
{
    let value: T = serde_json::from_slice(data).ok()?;
    let json = serde_json::to_vec(&value).expect("a parsed payload serialises");
    let again: T = serde_json::from_slice(&json).unwrap_or_else(|e| {
        panic!(
            "{} does not parse back: {e}\n{}",
            std::any::type_name::<T>(),
            String::from_utf8_lossy(&json)
        )
    });
    assert_eq!(again, value, "{}", String::from_utf8_lossy(&json));
    Some(value)
}

fuzz_target!(|data: &[u8]| {
    if let Some(event) = round_trip::<flagsmith::WebhookEvent>(data) {
        // The kind names itself with the same wire name it came with.
        let kind = event.event_type();
        assert_eq!(kind.to_string(), kind.as_str());
    }
    round_trip::<flagsmith::IdentityFlags>(data);
    if let Some(event) = round_trip::<schematic::WebhookEvent>(data) {
        assert_eq!(
            schematic::Action::from_wire(event.action.as_str()),
            event.action
        );
    }
});
