//! DataStream wire format: the request frames, every dispatch row of the
//! server's messages, lenient parsing and the decode errors.

use flagwire_core::datastream::{
    Action, DecodeError, EntityType, ErrorMessage, Message, MessageType, Received, Request,
    StreamId, parse_message,
};
use flagwire_core::events::Keys;

fn keys(pairs: &[(&str, &str)]) -> Keys {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn parse(text: &str) -> Received {
    parse_message(text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

fn message(text: &str) -> Message {
    parse(text).message
}

fn envelope(entity_type: &str, message_type: &str, data: &str) -> String {
    format!(r#"{{"entity_type":"{entity_type}","message_type":"{message_type}","data":{data}}}"#)
}

fn with_id(entity_type: &str, message_type: &str, entity_id: &str, data: &str) -> String {
    format!(
        r#"{{"entity_type":"{entity_type}","entity_id":"{entity_id}","message_type":"{message_type}","stream_id":"1760000000000-3","data":{data}}}"#
    )
}

const FLAG: &str = r#"{"id":"flag_1","key":"beta","account_id":"acc","environment_id":"env","default_value":true,
    "rules":[{"id":"r1","name":"Pro","rule_type":"standard","priority":1,"value":true,
      "conditions":[{"condition_type":"plan","operator":"eq","resource_ids":["plan_pro"]}],"condition_groups":[]}]}"#;

const COMPANY: &str = r#"{"id":"co_1","account_id":"acc","environment_id":"env","keys":{"id":"acme"},
    "traits":[],"metrics":[],"plan_ids":["plan_pro"],"plan_version_ids":[],"billing_product_ids":[],
    "credit_balances":{"cr":2.5},"rules":[]}"#;

const USER: &str = r#"{"id":"u_1","account_id":"acc","environment_id":"env","keys":{"email":"ada@acme.test"},
    "traits":[],"rules":[]}"#;

// ---------------------------------------------------------------------------
// Requests

#[test]
fn request_frames() {
    let acme = keys(&[("id", "acme"), ("domain", "acme.test")]);
    let from = StreamId::new(1760000000000, 7);
    let rendered = [
        ("flags", Request::flags()),
        (
            "flags, resumed",
            Request::flags().with_replay_from(from.clone()),
        ),
        ("company", Request::company(acme.clone())),
        (
            "company, resumed",
            Request::company(acme.clone()).with_replay_from(from.clone()),
        ),
        ("user", Request::user(keys(&[("email", "ada@acme.test")]))),
        ("companies", Request::companies()),
        ("users, resumed", Request::users().with_replay_from(from)),
        ("stop", Request::company(acme).with_action(Action::Stop)),
    ]
    .iter()
    .map(|(name, request)| format!("{name}: {}", request.to_json()))
    .collect::<Vec<_>>()
    .join("\n");
    insta::assert_snapshot!("requests", rendered);
}

#[test]
fn request_keys_are_escaped() {
    let odd = Request::user(keys(&[("na\"me", "line\nbreak")]));
    let json: serde_json::Value = serde_json::from_str(&odd.to_json()).unwrap();
    assert_eq!(json["data"]["keys"]["na\"me"], "line\nbreak");
}

// ---------------------------------------------------------------------------
// Dispatch, row by row

#[test]
fn errors_are_checked_before_the_entity_type() {
    for entity_type in [
        "rulesengine.Flags",
        "rulesengine.Company",
        "rulesengine.Users",
        "x",
    ] {
        let m = message(&envelope(entity_type, "error", r#"{"error":"boom"}"#));
        let Message::Error(e) = m else {
            panic!("{entity_type}: {m:?}")
        };
        assert_eq!(e.error, "boom");
    }
    let m = message(&envelope(
        "rulesengine.Company",
        "error",
        r#"{"error":"company not found","keys":{"id":"ghost","n":5,"x":null},"entity_type":"rulesengine.Company"}"#,
    ));
    let Message::Error(ErrorMessage {
        error,
        entity_type,
        keys: error_keys,
        ..
    }) = m
    else {
        panic!()
    };
    assert_eq!(error, "company not found");
    assert_eq!(entity_type, Some(EntityType::Company));
    assert_eq!(error_keys, Some(keys(&[("id", "ghost"), ("n", "5")])));
}

#[test]
fn error_payloads_are_read_leniently() {
    // The envelope's entity type stands in when the data has none.
    let Message::Error(e) = message(&envelope(
        "rulesengine.User",
        "error",
        r#"{"keys":{"id":"u"}}"#,
    )) else {
        panic!()
    };
    assert_eq!(
        (e.error.as_str(), e.entity_type),
        ("", Some(EntityType::User))
    );
    let Message::Error(e) = message(r#"{"message_type":"error","data":"plain text"}"#) else {
        panic!()
    };
    assert_eq!(
        (e.error.as_str(), e.entity_type, e.keys),
        ("plain text", None, None)
    );
    for data in ["null", "42", "[1]", r#"{"error":{"code":7}}"#] {
        let Message::Error(e) = message(&envelope("rulesengine.Company", "error", data)) else {
            panic!("{data}")
        };
        assert_eq!(e.entity_type, Some(EntityType::Company), "{data}");
        if data.starts_with("{") {
            assert_eq!(e.error, r#"{"code":7}"#);
        }
    }
}

#[test]
fn reload_for_any_entity_type() {
    assert_eq!(message(r#"{"message_type":"reload"}"#), Message::Reload);
    assert_eq!(
        message(r#"{"entity_type":"rulesengine.Companies","message_type":"reload","data":null}"#),
        Message::Reload
    );
}

#[test]
fn bulk_flags() {
    let data = format!(
        r#"[{FLAG},{{"id":"f_nokey","key":""}},{{"id":"f_nullkey","key":null}},{{"id":"f2","key":"other","rules":null}}]"#
    );
    let received = parse(&envelope("rulesengine.Flags", "full", &data));
    assert_eq!(received.stream_id, None);
    let Message::Flags { flags, skipped } = received.message else {
        panic!()
    };
    assert_eq!(skipped, 2);
    let keys: Vec<&str> = flags.iter().map(|f| f.key.as_str()).collect();
    assert_eq!(keys, ["beta", "other"]);
    assert_eq!(flags[0].rules[0].conditions[0].resource_ids, ["plan_pro"]);
    // Go sends `null` for an environment without flags.
    for data in ["null", "[]"] {
        assert_eq!(
            message(&envelope("rulesengine.Flags", "full", data)),
            Message::Flags {
                flags: vec![],
                skipped: 0
            }
        );
    }
    assert_eq!(
        message(r#"{"entity_type":"rulesengine.Flags","message_type":"full"}"#),
        Message::Flags {
            flags: vec![],
            skipped: 0
        },
        "no data at all"
    );
    for message_type in ["partial", "delete", "unknown", "novel"] {
        let m = message(&envelope("rulesengine.Flags", message_type, "[]"));
        assert!(
            matches!(m, Message::Ignored { .. }),
            "{message_type}: {m:?}"
        );
    }
}

#[test]
fn single_flags() {
    let Message::Flag(flag) = message(&envelope("rulesengine.Flag", "full", FLAG)) else {
        panic!()
    };
    assert_eq!((flag.key.as_str(), flag.default_value), ("beta", true));
    // Deletes carry the flag (validated as one by some SDKs) or just its key.
    for data in [FLAG, r#"{"id":"flag_1","key":"beta"}"#] {
        assert_eq!(
            message(&envelope("rulesengine.Flag", "delete", data)),
            Message::FlagDeleted {
                key: "beta".into(),
                id: "flag_1".into()
            }
        );
    }
    for message_type in ["partial", "unknown"] {
        let Message::Ignored {
            entity_type,
            message_type: mt,
            why,
        } = message(&envelope("rulesengine.Flag", message_type, FLAG))
        else {
            panic!()
        };
        assert_eq!(
            (entity_type.as_str(), mt.as_str()),
            ("rulesengine.Flag", message_type)
        );
        assert!(!why.is_empty());
    }
}

#[test]
fn companies_full_partial_delete() {
    let received = parse(&with_id("rulesengine.Company", "full", "co_1", COMPANY));
    assert_eq!(received.entity_id.as_deref(), Some("co_1"));
    assert_eq!(received.stream_id, Some(StreamId::new(1760000000000, 3)));
    let Message::Company(company) = received.message else {
        panic!()
    };
    assert_eq!(company.keys, keys(&[("id", "acme")]));
    assert_eq!(company.credit_balances["cr"], 2.5);

    // Anything but partial or delete is a full company.
    for message_type in ["unknown", "snapshot", ""] {
        let m = message(&envelope("rulesengine.Company", message_type, COMPANY));
        assert!(matches!(m, Message::Company(_)), "{message_type}: {m:?}");
    }
    let m = message(&format!(
        r#"{{"entity_type":"rulesengine.Company","data":{COMPANY}}}"#
    ));
    assert!(matches!(m, Message::Company(_)), "no message type: {m:?}");

    let m = message(&with_id(
        "rulesengine.Company",
        "partial",
        "co_1",
        r#"{"plan_ids":["plan_free"]}"#,
    ));
    let Message::CompanyPatch { id, patch } = m else {
        panic!()
    };
    assert_eq!(id, "co_1");
    assert_eq!(patch.plan_ids, Some(vec!["plan_free".to_owned()]));
    assert_eq!(patch.keys, None);

    assert_eq!(
        message(&with_id(
            "rulesengine.Company",
            "delete",
            "co_1",
            r#"{"id":"co_1","keys":{"id":"acme"}}"#
        )),
        Message::CompanyDeleted {
            id: "co_1".into(),
            keys: keys(&[("id", "acme")])
        }
    );
    // A delete may carry the whole company, or nothing but the envelope's id.
    for data in [COMPANY, "null", "{}"] {
        let m = message(&with_id("rulesengine.Company", "delete", "co_1", data));
        assert!(
            matches!(&m, Message::CompanyDeleted { id, .. } if id == "co_1"),
            "{m:?}"
        );
    }
}

#[test]
fn users_full_partial_delete() {
    let Message::User(user) = message(&with_id("rulesengine.User", "full", "u_1", USER)) else {
        panic!()
    };
    assert_eq!(user.keys, keys(&[("email", "ada@acme.test")]));
    let m = message(&with_id(
        "rulesengine.User",
        "partial",
        "u_1",
        r#"{"traits":null,"keys":{"id":"ext-1"}}"#,
    ));
    let Message::UserPatch { id, patch } = m else {
        panic!()
    };
    assert_eq!(id, "u_1");
    assert_eq!(patch.traits, Some(vec![]));
    assert_eq!(patch.keys, Some(keys(&[("id", "ext-1")])));
    assert_eq!(
        message(&with_id("rulesengine.User", "delete", "u_1", USER)),
        Message::UserDeleted {
            id: "u_1".into(),
            keys: keys(&[("email", "ada@acme.test")])
        }
    );
    let m = message(&envelope("rulesengine.User", "unknown", USER));
    assert!(matches!(m, Message::User(_)), "{m:?}");
}

#[test]
fn change_messages_find_their_entity_id() {
    // The envelope's entity id, else the data's id.
    let m = message(&envelope(
        "rulesengine.Company",
        "partial",
        r#"{"id":"co_9","plan_ids":[]}"#,
    ));
    assert!(
        matches!(m, Message::CompanyPatch { ref id, .. } if id == "co_9"),
        "{m:?}"
    );
    let m = message(&with_id(
        "rulesengine.Company",
        "partial",
        "co_env",
        r#"{"id":"co_data"}"#,
    ));
    assert!(
        matches!(m, Message::CompanyPatch { ref id, .. } if id == "co_env"),
        "{m:?}"
    );
    let m = message(&envelope(
        "rulesengine.User",
        "delete",
        r#"{"id":"u_9","keys":null}"#,
    ));
    assert_eq!(
        m,
        Message::UserDeleted {
            id: "u_9".into(),
            keys: Keys::new()
        }
    );
    // A full entity without an id takes the envelope's.
    let m = message(&with_id(
        "rulesengine.Company",
        "full",
        "co_env",
        r#"{"keys":{"id":"acme"}}"#,
    ));
    assert!(
        matches!(m, Message::Company(ref c) if c.id == "co_env"),
        "{m:?}"
    );
}

#[test]
fn subscription_confirmations() {
    for (wire, entity_type) in [
        ("rulesengine.Companies", EntityType::Companies),
        ("rulesengine.Users", EntityType::Users),
    ] {
        for message_type in ["full", "unknown", "partial"] {
            assert_eq!(
                message(&envelope(wire, message_type, "null")),
                Message::Subscribed(entity_type.clone())
            );
        }
    }
}

#[test]
fn unknown_entity_types_are_ignored() {
    for text in [
        envelope("rulesengine.Plan", "full", "{}"),
        envelope("", "partial", "[]"),
        r#"{"data":{"id":"x"}}"#.to_owned(),
        "{}".to_owned(),
    ] {
        let m = message(&text);
        assert!(
            matches!(
                m,
                Message::Ignored {
                    why: "unknown entity type",
                    ..
                }
            ),
            "{text}: {m:?}"
        );
    }
}

#[test]
fn wire_enums_round_trip() {
    for et in [
        EntityType::Flag,
        EntityType::Flags,
        EntityType::Company,
        EntityType::Companies,
        EntityType::User,
        EntityType::Users,
        EntityType::Other("rulesengine.Plan".into()),
    ] {
        assert_eq!(EntityType::from_wire(et.as_str()), et);
    }
    for mt in [
        MessageType::Full,
        MessageType::Partial,
        MessageType::Delete,
        MessageType::Error,
        MessageType::Reload,
        MessageType::Unknown,
        MessageType::Other("snapshot".into()),
    ] {
        assert_eq!(MessageType::from_wire(mt.as_str()), mt);
    }
    assert_eq!(EntityType::Company.to_string(), "rulesengine.Company");
}

// ---------------------------------------------------------------------------
// Lenient parsing

#[test]
fn unknown_fields_camel_case_and_nulls() {
    let text = r#"{"entityType":"rulesengine.Company","entityId":"co_1","messageType":"full",
        "streamId":"9-9","sent_at":"2026-01-01T00:00:00Z","trace":{"x":[1,2]},
        "data":{"id":"co_1","keys":null,"traits":null,"metrics":null,"planIds":null,"rules":null,
                "entitlements":null,"credit_balances":null,"future":{"nested":true}}}"#;
    let received = parse(text);
    assert_eq!(received.stream_id, Some(StreamId::new(9, 9)));
    let Message::Company(company) = received.message else {
        panic!()
    };
    assert!(company.keys.is_empty() && company.plan_ids.is_empty());
}

#[test]
fn empty_or_null_ids_are_absent() {
    let received = parse(
        r#"{"entity_type":"rulesengine.Flag","message_type":"full","entity_id":null,"stream_id":"","data":{"key":"k"}}"#,
    );
    assert_eq!((received.entity_id, received.stream_id), (None, None));
    let received = parse(
        r#"{"entity_type":"rulesengine.Company","message_type":"full","entity_id":"","data":{"id":"c"}}"#,
    );
    assert_eq!(received.entity_id, None);
    // A stream id of another form is kept (and never treated as a duplicate of a numeric one).
    let received = parse(
        r#"{"entity_type":"rulesengine.Flag","message_type":"full","stream_id":"opaque-id","data":{"key":"k"}}"#,
    );
    assert_eq!(received.stream_id.unwrap().as_str(), "opaque-id");
}

// ---------------------------------------------------------------------------
// Decode errors

fn error(text: &str) -> DecodeError {
    match parse_message(text) {
        Ok(r) => panic!("decoded {r:?}"),
        Err(e) => e,
    }
}

#[test]
fn malformed_frames() {
    for text in ["", "{", "not json", "[]", "\"text\"", "null", "{} trailing"] {
        let e = error(text);
        assert!(matches!(e, DecodeError::Envelope { .. }), "{text}: {e:?}");
        assert!(
            e.to_string().starts_with("malformed DataStream frame: "),
            "{e}"
        );
        assert_eq!(e.entity_type(), None);
    }
    assert_eq!(
        error("[]").to_string(),
        "malformed DataStream frame: expected a JSON object"
    );
    // Entities are objects (serde alone would also read them from arrays).
    for (text, found) in [
        (
            envelope("rulesengine.Company", "full", r#"["co_1"]"#),
            "an array",
        ),
        (envelope("rulesengine.User", "full", "7"), "a number"),
        (
            envelope("rulesengine.Flag", "full", r#""beta""#),
            "a string",
        ),
        (
            envelope("rulesengine.Flag", "delete", r#"["f","k"]"#),
            "an array",
        ),
        (
            envelope("rulesengine.Company", "delete", "true"),
            "a boolean",
        ),
    ] {
        let e = error(&text);
        assert!(
            e.to_string()
                .ends_with(&format!("at data: expected an object, found {found}")),
            "{e}"
        );
    }
    let e = error(r#"{"entity_type":5,"data":{}}"#);
    assert!(e.to_string().contains("invalid type: integer `5`"), "{e}");
    let e = error(r#"{"data":1,"data":2}"#);
    assert!(e.to_string().contains("duplicate field `data`"), "{e}");
}

#[test]
fn payload_errors_name_the_types_and_the_path() {
    let data =
        format!(r#"[{FLAG},{{"id":"f2","key":"k2","rules":[{{"id":"r","priority":"high"}}]}}]"#);
    let e = error(&envelope("rulesengine.Flags", "full", &data));
    let DecodeError::Payload {
        entity_type,
        message_type,
        path,
        detail,
        ..
    } = &e
    else {
        panic!("{e:?}")
    };
    assert_eq!(
        (entity_type.as_str(), message_type.as_str()),
        ("rulesengine.Flags", "full")
    );
    assert_eq!(path, "data[1].rules[0].priority");
    assert!(detail.contains("invalid type: string \"high\""), "{detail}");
    assert_eq!(
        e.to_string(),
        format!(
            "malformed DataStream message (entity type rulesengine.Flags, message type full) at data[1].rules[0].priority: {detail}"
        )
    );

    let e = error(&envelope(
        "rulesengine.Company",
        "partial",
        r#"{"id":"c","metrics":[{"value":1.5}]}"#,
    ));
    assert!(e.to_string().contains("at data.metrics[0].value"), "{e}");
    assert_eq!(e.entity_type(), Some("rulesengine.Company"));
    assert_eq!(e.message_type(), Some("partial"));

    let e = error(&envelope(
        "rulesengine.Flags",
        "full",
        r#"[{"key":"a"},["flag_2","b"]]"#,
    ));
    assert!(
        e.to_string()
            .contains("at data[1]: invalid type: sequence, expected an object"),
        "{e}"
    );
    let e = error(&envelope("rulesengine.Flags", "full", r#"{"key":"k"}"#));
    assert!(e.to_string().contains("at data:"), "{e}");
    let e = error(&envelope("rulesengine.Company", "full", "null"));
    assert!(matches!(e, DecodeError::Payload { .. }), "{e:?}");
    let e = error(&envelope(
        "rulesengine.Company",
        "partial",
        r#"{"plan_ids":[],"planIds":[]}"#,
    ));
    assert!(e.to_string().contains("duplicate field `plan_ids`"), "{e}");
}

#[test]
fn missing_ids() {
    for (text, field) in [
        (
            envelope("rulesengine.Company", "partial", r#"{"plan_ids":[]}"#),
            "entity_id",
        ),
        (envelope("rulesengine.User", "delete", "null"), "entity_id"),
        (
            envelope("rulesengine.Company", "full", r#"{"keys":{"id":"a"}}"#),
            "id",
        ),
        (envelope("rulesengine.Flag", "full", r#"{"id":"f"}"#), "key"),
        (
            envelope("rulesengine.Flag", "delete", r#"{"key":""}"#),
            "key",
        ),
    ] {
        let e = error(&text);
        assert!(
            matches!(e, DecodeError::MissingId { field: f, .. } if f == field),
            "{text}: {e:?}"
        );
        assert!(e.to_string().ends_with(&format!("without {field}")), "{e}");
    }
}

#[test]
fn errors_never_quote_large_input() {
    let huge = "x".repeat(1_000_000);
    let texts = [
        // A huge string where a number belongs.
        envelope(
            "rulesengine.Flags",
            "full",
            &format!(r#"[{{"key":"k","default_value":"{huge}"}}]"#),
        ),
        // A huge map key on the failing path.
        envelope(
            "rulesengine.Company",
            "full",
            &format!(r#"{{"id":"c","credit_balances":{{"{huge}":"many"}}}}"#),
        ),
        // A huge message type.
        envelope("rulesengine.Company", &huge, "null"),
        format!(r#"{{"entity_type":"rulesengine.User","message_type":"{huge}","data":[]}}"#),
        // A huge number where a string belongs.
        format!(r#"{{"entity_type":1{}}}"#, "0".repeat(100_000)),
    ];
    for text in &texts {
        let e = error(text);
        let shown = e.to_string();
        assert!(
            shown.len() < 1_000,
            "{} bytes: {}",
            shown.len(),
            &shown[..200]
        );
    }
    let Message::Ignored {
        entity_type,
        message_type,
        ..
    } = message(&envelope(&huge, &huge, "null"))
    else {
        panic!()
    };
    assert!(entity_type.len() < 300 && message_type.len() < 300);
    assert!(entity_type.ends_with('…'));
}

#[test]
fn decode_errors_cut_at_character_boundaries() {
    let wide = "é".repeat(500);
    let e = error(&envelope("rulesengine.Company", &wide, "null"));
    let DecodeError::Payload { message_type, .. } = &e else {
        panic!("{e:?}")
    };
    assert!(message_type.len() < 300 && message_type.ends_with('…'));
    let e = error(&envelope(
        "rulesengine.Flags",
        "full",
        &format!(r#"[{{"key":"{wide}","priority":1,"rules":"{wide}"}}]"#),
    ));
    assert!(e.to_string().contains('…'), "{e}");
}
