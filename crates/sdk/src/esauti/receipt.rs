//! What the Event Injection API answered: [`Receipt`].

use flagwire_core::events::IdempotencyKey;
use http::StatusCode;
use serde_json::Value;

/// The answer to a delivered event.
///
/// eSauti answers `{"received": true, "event_id": "…", "status": "accepted", "duplicate":
/// false}` (`202` on the first delivery of an idempotency key, `200` with `"duplicate": true`
/// and the same `event_id` for a repeat). The typed fields are read from that document when
/// present; [`raw`](Self::raw) keeps the whole of it, so fields this crate does not know are
/// not lost. A `2xx` whose body is not a JSON object (empty, `204`, plain text) still counts
/// as received: its `raw` is `{"raw": "<body text>"}`.
///
/// ```
/// use flagwire::esauti::Receipt;
///
/// let r = Receipt::parse(
///     http::StatusCode::ACCEPTED,
///     br#"{"received":true,"event_id":"ev_1","status":"accepted","duplicate":false,"x":1}"#,
/// );
/// assert!(r.received && !r.duplicate);
/// assert_eq!(r.event_id.as_deref(), Some("ev_1"));
/// assert_eq!(r.raw["x"], 1);
///
/// let r = Receipt::parse(http::StatusCode::NO_CONTENT, b"");
/// assert!(r.received);
/// assert_eq!(r.raw, serde_json::json!({"raw": ""}));
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Receipt {
    /// Whether the server took the event (`received`; `true` when the body does not say).
    pub received: bool,
    /// The id the server gave the event (`event_id`).
    pub event_id: Option<String>,
    /// The server's word on the event (`status`, e.g. `accepted`).
    pub status: Option<String>,
    /// Whether the server had already received this idempotency key (`duplicate`).
    pub duplicate: bool,
    /// The HTTP status of the answer.
    pub http_status: StatusCode,
    /// The whole answer as JSON (or `{"raw": "<text>"}` when it was not a JSON object).
    pub raw: Value,
    /// The `Idempotency-Key` the event was sent with.
    pub idempotency_key: Option<IdempotencyKey>,
    /// The `X-Request-Id` the event was sent with.
    pub request_id: Option<String>,
    /// Attempts it took, the first included.
    pub attempts: u32,
}

impl Receipt {
    /// Reads a `2xx` answer; see the [type docs](Self). The request-side fields
    /// (`idempotency_key`, `request_id`) are empty and `attempts` is 1.
    pub fn parse(status: StatusCode, body: &[u8]) -> Receipt {
        let raw = match serde_json::from_slice::<Value>(body) {
            Ok(v @ Value::Object(_)) => v,
            _ => serde_json::json!({ "raw": String::from_utf8_lossy(body) }),
        };
        let text = |key: &str| raw.get(key).and_then(Value::as_str).map(str::to_owned);
        Receipt {
            received: raw.get("received").and_then(Value::as_bool).unwrap_or(true),
            event_id: text("event_id"),
            status: text("status"),
            duplicate: raw
                .get("duplicate")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            http_status: status,
            raw,
            idempotency_key: None,
            request_id: None,
            attempts: 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn duplicates_and_odd_bodies() {
        let r = Receipt::parse(
            StatusCode::OK,
            br#"{"received":true,"event_id":"ev_1","status":"accepted","duplicate":true}"#,
        );
        assert!(r.duplicate);
        assert_eq!(r.status.as_deref(), Some("accepted"));
        for body in [&b"[1,2]"[..], b"\"ok\"", b"ok", b"null"] {
            let r = Receipt::parse(StatusCode::OK, body);
            assert!(r.received);
            assert_eq!(r.event_id, None);
            assert_eq!(
                r.raw,
                json!({"raw": String::from_utf8_lossy(body)}),
                "{body:?}"
            );
        }
        let r = Receipt::parse(StatusCode::OK, br#"{"received":false}"#);
        assert!(!r.received);
    }
}
