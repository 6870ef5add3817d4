//! `POST /v1/inbound/event`: authentication, signature, idempotency,
//! validation and storage of injected events.

use std::collections::HashMap;

use bytes::Bytes;
use flagwire_core::esauti::{EnvelopeError, EventEnvelope, EventType, is_present};
use http::request::Parts;
use http::{Method, StatusCode};
use serde_json::{Value, json};

use super::{Answer, EVENTS_PATH, Shared, event_error};
use crate::faults::lock;
use crate::util::make_id;

/// The operation name recorded for the events route.
const OPERATION: &str = "injectEvent";

/// Longest `Idempotency-Key` accepted.
const MAX_IDEMPOTENCY_KEY: usize = 255;

/// An event accepted by the emulator's events route.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ReceivedEvent {
    /// The ID the server assigned (`evt_…`), also sent in every receipt for
    /// this idempotency key.
    pub event_id: String,
    /// The `Idempotency-Key` header of the requests.
    pub idempotency_key: String,
    /// The body of the first accepted request, parsed.
    pub envelope: Value,
    /// How many accepted requests carried this key: 1 means it arrived
    /// exactly once; duplicates add to it.
    pub deliveries: u32,
    /// `X-eSauti-Source` of the first accepted request.
    pub source_header: Option<String>,
    /// `X-Request-Id` of the first accepted request.
    pub request_id: Option<String>,
}

/// Accepted events, deduplicated by idempotency key.
#[derive(Debug, Default)]
pub(super) struct EventLog {
    events: Vec<ReceivedEvent>,
    by_key: HashMap<String, usize>,
    seq: u64,
}

impl EventLog {
    pub(super) fn all(&self) -> Vec<ReceivedEvent> {
        self.events.clone()
    }

    /// Stores a new event, or counts a repeat of a known key. Returns the
    /// event ID and whether it was a duplicate.
    fn accept(
        &mut self,
        key: &str,
        envelope: Value,
        source_header: Option<String>,
        request_id: Option<String>,
    ) -> (String, bool) {
        if let Some(&i) = self.by_key.get(key) {
            let event = &mut self.events[i];
            event.deliveries = event.deliveries.saturating_add(1);
            return (event.event_id.clone(), true);
        }
        self.seq += 1;
        let event_id = make_id("evt", self.seq);
        self.by_key.insert(key.to_owned(), self.events.len());
        self.events.push(ReceivedEvent {
            event_id: event_id.clone(),
            idempotency_key: key.to_owned(),
            envelope,
            deliveries: 1,
            source_header,
            request_id,
        });
        (event_id, false)
    }
}

fn error(status: StatusCode, message: &str) -> Answer {
    Answer::json(status, &event_error(status, message), Some(OPERATION))
}

fn header_text(parts: &Parts, name: &str) -> Option<String> {
    parts
        .headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// The required paths of `type_name`'s registry entry that `body` lacks, in
/// registry order (empty for custom types).
pub(super) fn missing_paths(type_name: &str, body: &serde_json::Map<String, Value>) -> Vec<String> {
    let Some(ty) = EventType::lookup(type_name) else {
        return Vec::new();
    };
    ty.required_properties()
        .iter()
        .filter(|path| !path_present(body, path))
        .map(|path| (*path).to_owned())
        .collect()
}

/// One segment names a top-level member, two a key inside a top-level
/// object; see `flagwire_core::esauti::validate` for the rule.
fn path_present(body: &serde_json::Map<String, Value>, path: &str) -> bool {
    match path.split_once('.') {
        None => body.get(path).is_some_and(is_present),
        Some((parent, key)) => body
            .get(parent)
            .and_then(Value::as_object)
            .and_then(|o| o.get(key))
            .is_some_and(is_present),
    }
}

/// Handles a request to any path outside `/api`.
pub(super) fn route(shared: &Shared, parts: &Parts, body: &Bytes) -> Answer {
    let path = parts.uri.path();
    if path != EVENTS_PATH {
        return Answer::json(
            StatusCode::NOT_FOUND,
            &event_error(StatusCode::NOT_FOUND, "no such route"),
            None,
        );
    }
    if parts.method != Method::POST {
        let mut answer = error(StatusCode::METHOD_NOT_ALLOWED, "use POST");
        answer.allow = Some("POST".into());
        return answer;
    }
    if shared.events_down.load(std::sync::atomic::Ordering::SeqCst) {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "event ingestion is unavailable",
        );
    }
    if !shared.authorized(&parts.headers) {
        return error(
            StatusCode::UNAUTHORIZED,
            "missing or invalid credentials: send X-eSauti-Api-Key or Authorization: Bearer",
        );
    }
    if let Some(verifier) = &shared.verifier
        && let Err(e) = verifier.verify(parts.method.as_str(), path, &parts.headers, body)
    {
        return error(
            StatusCode::UNAUTHORIZED,
            &format!("request signature rejected: {e}"),
        );
    }
    let key = match parts
        .headers
        .get("idempotency-key")
        .map(|v| v.to_str().map(str::trim))
    {
        Some(Ok(k)) if !k.is_empty() && k.len() <= MAX_IDEMPOTENCY_KEY => k.to_owned(),
        Some(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                "the Idempotency-Key header must be 1 to 255 visible ASCII characters",
            );
        }
        None => {
            return error(
                StatusCode::BAD_REQUEST,
                "the Idempotency-Key header is required",
            );
        }
    };
    let parsed: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                &format!("the body is not valid JSON: {e}"),
            );
        }
    };
    let Some(object) = parsed.as_object() else {
        return error(StatusCode::BAD_REQUEST, "the body must be a JSON object");
    };
    let type_name = match object.get("type") {
        Some(Value::String(t)) if !t.is_empty() => t.as_str(),
        _ => {
            return error(StatusCode::BAD_REQUEST, "`type` must be a non-empty string");
        }
    };
    let missing = missing_paths(type_name, object);
    if !missing.is_empty() {
        let status = StatusCode::UNPROCESSABLE_ENTITY;
        let body = json!({"error": {
            "code": status.as_u16(),
            "message": format!(
                "event `{type_name}` is missing required properties: {}",
                missing.join(", ")
            ),
            "event_type": type_name,
            "missing": missing,
        }});
        return Answer::json(status, &body, Some(OPERATION));
    }
    match EventEnvelope::from_json(body) {
        Ok(_) => {}
        Err(EnvelopeError::Validation(e)) => {
            // `missing_paths` applies the same rule; kept for safety.
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            let body = json!({"error": {
                "code": status.as_u16(),
                "message": e.to_string(),
                "event_type": type_name,
                "missing": e.missing,
            }});
            return Answer::json(status, &body, Some(OPERATION));
        }
        Err(e) => return error(StatusCode::BAD_REQUEST, &e.to_string()),
    }

    let source_header = header_text(parts, "x-esauti-source");
    let request_id = header_text(parts, "x-request-id");
    let (event_id, duplicate) =
        lock(&shared.state)
            .events
            .accept(&key, parsed, source_header, request_id);
    let status = if duplicate {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    Answer::json(
        status,
        &json!({
            "received": true,
            "event_id": event_id,
            "status": "accepted",
            "duplicate": duplicate,
        }),
        Some(OPERATION),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(v: Value) -> serde_json::Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    #[test]
    fn required_paths_follow_the_core_rule() {
        let body = object(json!({
            "type": "order.created",
            "occurred_at": "2026-01-01T00:00:00Z",
            "source": "",
            "entity": {"id": "o1"},
            "properties": {"currency": null, "value": 0},
        }));
        assert_eq!(
            missing_paths("order.created", &body),
            ["source", "properties.currency"]
        );
        let body = object(json!({"type": "order.created", "properties": "x"}));
        assert_eq!(
            missing_paths("order.created", &body),
            [
                "occurred_at",
                "source",
                "entity.id",
                "properties.currency",
                "properties.value"
            ]
        );
        assert!(missing_paths("invoice.exported", &object(json!({}))).is_empty());
    }

    #[test]
    fn log_dedupes_by_key() {
        let mut log = EventLog::default();
        let (a, dup_a) = log.accept("k1", json!({"n": 1}), Some("sdk".into()), None);
        let (b, dup_b) = log.accept("k1", json!({"n": 2}), None, Some("r".into()));
        let (c, dup_c) = log.accept("k2", json!({"n": 3}), None, None);
        assert_eq!(
            (a.as_str(), dup_a, dup_b, dup_c),
            (b.as_str(), false, true, false)
        );
        assert_ne!(a, c);
        let all = log.all();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].deliveries, 2);
        assert_eq!(all[0].envelope, json!({"n": 1}));
        assert_eq!(all[0].source_header.as_deref(), Some("sdk"));
        assert_eq!(all[0].request_id, None);
        assert_eq!(all[1].deliveries, 1);
    }
}
