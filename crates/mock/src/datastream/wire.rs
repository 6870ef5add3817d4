//! The DataStream wire format: client requests in, server messages out.
//!
//! Every message in either direction is one JSON object in one text frame.
//! Clients send `{"data": {"action", "entity_type", "keys", "replay_from"}}`;
//! the server answers `{"entity_type", "entity_id"?, "message_type",
//! "stream_id"?, "data"?}` with the rules-engine models in their snake_case
//! wire form.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Map, Value};
use tokio_tungstenite::tungstenite::Utf8Bytes;

use super::stream_id::StreamId;

/// `entity_type` of a single-flag change.
pub(crate) const FLAG: &str = "rulesengine.Flag";
/// `entity_type` of the bulk flag snapshot and its requests.
pub(crate) const FLAGS: &str = "rulesengine.Flags";
/// `entity_type` of company messages and single-company requests.
pub(crate) const COMPANY: &str = "rulesengine.Company";
/// `entity_type` of user messages and single-user requests.
pub(crate) const USER: &str = "rulesengine.User";
/// `entity_type` of the all-companies subscription.
pub(crate) const COMPANIES: &str = "rulesengine.Companies";
/// `entity_type` of the all-users subscription.
pub(crate) const USERS: &str = "rulesengine.Users";

/// `start` subscribes, `stop` unsubscribes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    Start,
    Stop,
}

/// What a request is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RequestKind {
    Flags,
    Company,
    User,
    Companies,
    Users,
}

impl RequestKind {
    fn parse(s: &str) -> Option<RequestKind> {
        Some(match s {
            FLAGS => RequestKind::Flags,
            COMPANY => RequestKind::Company,
            USER => RequestKind::User,
            COMPANIES => RequestKind::Companies,
            USERS => RequestKind::Users,
            _ => return None,
        })
    }

    /// The request's `entity_type`.
    pub(crate) fn wire(self) -> &'static str {
        match self {
            RequestKind::Flags => FLAGS,
            RequestKind::Company => COMPANY,
            RequestKind::User => USER,
            RequestKind::Companies => COMPANIES,
            RequestKind::Users => USERS,
        }
    }
}

/// A well-formed client request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Request {
    pub(crate) action: Action,
    pub(crate) kind: RequestKind,
    /// The entity's keys (single-entity requests; empty otherwise).
    pub(crate) keys: BTreeMap<String, String>,
    /// The client's replay cursor, as sent.
    pub(crate) replay_from: Option<String>,
}

/// A request the server cannot act on, with what could be read of it, to be
/// echoed in the `error` message.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RequestError {
    pub(crate) message: String,
    pub(crate) entity_type: Option<String>,
    pub(crate) keys: Option<Map<String, Value>>,
}

impl RequestError {
    fn new(message: impl Into<String>, data: Option<&Map<String, Value>>) -> RequestError {
        RequestError {
            message: message.into(),
            entity_type: data
                .and_then(|d| d.get("entity_type"))
                .and_then(Value::as_str)
                .map(str::to_owned),
            keys: data
                .and_then(|d| d.get("keys"))
                .and_then(Value::as_object)
                .cloned(),
        }
    }

    /// The `error` message for the client.
    pub(crate) fn to_message(&self) -> Utf8Bytes {
        error(
            self.entity_type.as_deref(),
            &self.message,
            self.keys.as_ref(),
        )
    }
}

/// Parses one client message. Unknown fields are ignored; a missing, `null`
/// or empty `action` means `start`, as the official SDKs rely on.
pub(crate) fn parse_request(text: &str) -> Result<Request, RequestError> {
    let value: Value = serde_json::from_str(text)
        .map_err(|e| RequestError::new(format!("invalid JSON: {e}"), None))?;
    let Some(data) = value.get("data").and_then(Value::as_object) else {
        return Err(RequestError::new(
            "a request is a JSON object {\"data\": {\"action\", \"entity_type\", \"keys\"?, \"replay_from\"?}}",
            None,
        ));
    };
    let fail = |message: String| Err(RequestError::new(message, Some(data)));
    let action = match data.get("action") {
        None | Some(Value::Null) => Action::Start,
        Some(Value::String(s)) if s.is_empty() || s == "start" => Action::Start,
        Some(Value::String(s)) if s == "stop" => Action::Stop,
        Some(other) => {
            return fail(format!(
                "unknown action {other}: expected \"start\" or \"stop\""
            ));
        }
    };
    let kind = match data.get("entity_type") {
        Some(Value::String(s)) => match RequestKind::parse(s) {
            Some(kind) => kind,
            None => {
                return fail(format!(
                    "unknown entity_type {s:?}: expected one of {FLAGS}, {COMPANY}, {USER}, {COMPANIES}, {USERS}"
                ));
            }
        },
        None | Some(Value::Null) => return fail("entity_type is required".into()),
        Some(other) => return fail(format!("entity_type must be a string, not {other}")),
    };
    let keys = match data.get("keys") {
        None | Some(Value::Null) => BTreeMap::new(),
        Some(Value::Object(map)) => {
            let mut keys = BTreeMap::new();
            for (k, v) in map {
                let Some(v) = v.as_str() else {
                    return fail(format!("keys.{k} must be a string, not {v}"));
                };
                keys.insert(k.clone(), v.to_owned());
            }
            keys
        }
        Some(other) => return fail(format!("keys must be an object, not {other}")),
    };
    if matches!(kind, RequestKind::Company | RequestKind::User) && keys.is_empty() {
        return fail(format!("{} requests need at least one key", kind.wire()));
    }
    let replay_from = match data.get("replay_from") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => return fail(format!("replay_from must be a string, not {other}")),
    };
    Ok(Request {
        action,
        kind,
        keys,
        replay_from,
    })
}

/// A server message.
#[derive(Serialize)]
struct Envelope<'a, T: Serialize> {
    entity_type: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    entity_id: Option<&'a str>,
    message_type: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<T>,
}

/// Renders a server message. `stream_id` is set on pushed changes only
/// (never on snapshots, confirmations, errors or reloads).
pub(crate) fn message<T: Serialize>(
    entity_type: &str,
    entity_id: Option<&str>,
    message_type: &str,
    stream_id: Option<StreamId>,
    data: Option<T>,
) -> Utf8Bytes {
    let envelope = Envelope {
        entity_type,
        entity_id,
        message_type,
        stream_id: stream_id.map(|id| id.to_string()),
        data,
    };
    match serde_json::to_string(&envelope) {
        Ok(text) => Utf8Bytes::from(text),
        // The models serialize infallibly (string map keys, finite or
        // null floats); should that ever change, the client still gets a
        // well-formed message saying so.
        Err(e) => error(
            Some(entity_type),
            &format!("the emulator could not render this message: {e}"),
            None,
        ),
    }
}

/// Renders an `error` message: `data` carries `error` and, when known, the
/// request's `keys` and `entity_type` (so SDKs can fail the matching
/// waiters).
pub(crate) fn error(
    entity_type: Option<&str>,
    message: &str,
    keys: Option<&Map<String, Value>>,
) -> Utf8Bytes {
    let mut data = Map::new();
    data.insert("error".into(), Value::String(message.to_owned()));
    if let Some(keys) = keys {
        data.insert("keys".into(), Value::Object(keys.clone()));
    }
    if let Some(t) = entity_type {
        data.insert("entity_type".into(), Value::String(t.to_owned()));
    }
    let mut out = Map::new();
    if let Some(t) = entity_type {
        out.insert("entity_type".into(), Value::String(t.to_owned()));
    }
    out.insert("message_type".into(), Value::String("error".into()));
    out.insert("data".into(), Value::Object(data));
    Utf8Bytes::from(Value::Object(out).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<Request, RequestError> {
        parse_request(&v.to_string())
    }

    #[test]
    fn start_is_the_default_action() {
        for action in [json!(null), json!(""), json!("start")] {
            let r = parse(json!({"data": {"action": action, "entity_type": FLAGS}})).unwrap();
            assert_eq!(r.action, Action::Start);
            assert_eq!(r.kind, RequestKind::Flags);
        }
        let r = parse(json!({"data": {"entity_type": FLAGS}})).unwrap();
        assert_eq!(r.action, Action::Start);
        let r = parse(json!({"data": {"action": "stop", "entity_type": FLAGS}})).unwrap();
        assert_eq!(r.action, Action::Stop);
    }

    #[test]
    fn reads_keys_and_the_replay_cursor() {
        let r = parse(json!({"data": {
            "action": "start", "entity_type": COMPANY, "keys": {"id": "acme"},
            "replay_from": "1-0", "extra": true,
        }}))
        .unwrap();
        assert_eq!(r.kind, RequestKind::Company);
        assert_eq!(r.keys.get("id").map(String::as_str), Some("acme"));
        assert_eq!(r.replay_from.as_deref(), Some("1-0"));
    }

    #[test]
    fn rejects_malformed_requests_with_what_was_readable() {
        let e = parse_request("{not json").unwrap_err();
        assert!(e.message.starts_with("invalid JSON"), "{}", e.message);
        assert_eq!(e.entity_type, None);

        let e = parse(json!({"entity_type": FLAGS})).unwrap_err();
        assert!(e.message.contains("{\"data\""), "{}", e.message);

        let e = parse(json!({"data": {"action": "pause", "entity_type": FLAGS}})).unwrap_err();
        assert!(e.message.contains("unknown action"), "{}", e.message);
        assert_eq!(e.entity_type.as_deref(), Some(FLAGS));

        let e = parse(json!({"data": {"entity_type": "rulesengine.Plans"}})).unwrap_err();
        assert!(e.message.contains("unknown entity_type"), "{}", e.message);
        assert_eq!(e.entity_type.as_deref(), Some("rulesengine.Plans"));

        let e = parse(json!({"data": {}})).unwrap_err();
        assert_eq!(e.message, "entity_type is required");

        let e = parse(json!({"data": {"entity_type": COMPANY}})).unwrap_err();
        assert!(e.message.contains("need at least one key"), "{}", e.message);

        let e = parse(json!({"data": {"entity_type": USER, "keys": {"id": 7}}})).unwrap_err();
        assert_eq!(e.message, "keys.id must be a string, not 7");
        assert_eq!(e.keys, Some(json!({"id": 7}).as_object().unwrap().clone()));

        let e = parse(json!({"data": {"entity_type": FLAGS, "replay_from": 5}})).unwrap_err();
        assert!(e.message.starts_with("replay_from must be a string"));
    }

    #[test]
    fn errors_echo_keys_and_entity_type() {
        let keys = json!({"id": "ghost"});
        let text = error(Some(COMPANY), "company not found", keys.as_object());
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            v,
            json!({
                "entity_type": COMPANY,
                "message_type": "error",
                "data": {"error": "company not found", "keys": {"id": "ghost"}, "entity_type": COMPANY},
            })
        );
    }

    #[test]
    fn messages_omit_what_they_do_not_carry() {
        let text = message::<Value>(FLAGS, None, "reload", None, None);
        assert_eq!(
            text.as_str(),
            r#"{"entity_type":"rulesengine.Flags","message_type":"reload"}"#
        );
        let text = message(
            COMPANY,
            Some("comp_1"),
            "partial",
            Some(StreamId::new(7, 1)),
            Some(json!({"traits": []})),
        );
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            v,
            json!({"entity_type": COMPANY, "entity_id": "comp_1", "message_type": "partial",
                   "stream_id": "7-1", "data": {"traits": []}})
        );
    }

    proptest! {
        #[test]
        fn arbitrary_text_is_rejected_or_accepted_without_panicking(s in "\\PC{0,200}") {
            if let Err(e) = parse_request(&s) {
                let rendered: Value = serde_json::from_str(&e.to_message()).unwrap();
                prop_assert_eq!(&rendered["message_type"], "error");
            }
        }

        #[test]
        fn well_formed_requests_parse_back(
            kind in prop::sample::select(vec![FLAGS, COMPANY, USER, COMPANIES, USERS]),
            keys in prop::collection::btree_map("[a-z_]{1,8}", "\\PC{0,12}", 1..4),
            stop in any::<bool>(),
            cursor in prop::option::of("[0-9]{1,13}-[0-9]{1,3}"),
        ) {
            let body = json!({"data": {
                "action": if stop { "stop" } else { "start" },
                "entity_type": kind, "keys": keys, "replay_from": cursor,
            }});
            let r = parse(body).unwrap();
            prop_assert_eq!(r.kind.wire(), kind);
            prop_assert_eq!(r.action, if stop { Action::Stop } else { Action::Start });
            prop_assert_eq!(r.keys, keys);
            prop_assert_eq!(r.replay_from, cursor);
        }
    }
}
