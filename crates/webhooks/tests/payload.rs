//! Typed payloads (the `serde` feature).
#![cfg(feature = "serde")]

use flagwire_webhooks::payload::{flagsmith, schematic};
use flagwire_webhooks::{Flagsmith, FlagsmithVerifier, Signer};

const FLAG_UPDATED: &str = r#"{"data": {"changed_by": "user@domain.com", "new_state": {"enabled": true, "environment": {"id": 23, "name": "Development"}, "feature": {"created_date": "2021-02-10T20:03:43.348556Z", "default_enabled": false, "description": "Show html in a banner", "id": 7168, "initial_value": "<p>hi</p>", "name": "show_banner", "project": {"id": 3, "name": "Flagsmith"}, "type": "MULTIVARIATE"}, "feature_segment": {"priority": 1, "segment": {"description": null, "id": 4, "name": "beta"}}, "feature_state_value": "<p>hi</p>", "identity": null, "identity_identifier": null, "multivariate_feature_state_values": [{"id": 1, "multivariate_feature_option": {"id": 9, "value": "blue"}, "percentage_allocation": 50.0}]}, "previous_state": {"enabled": false, "environment": {"id": 23, "name": "Development"}, "feature": {"created_date": "2021-02-10T20:03:43.348556Z", "default_enabled": false, "description": "Show html in a banner", "id": 7168, "initial_value": "<p>hi</p>", "name": "show_banner", "project": {"id": 3, "name": "Flagsmith"}, "type": "STANDARD"}, "feature_segment": null, "feature_state_value": 3, "identity": 12, "identity_identifier": "user_1"}, "timestamp": "2021-06-18T07:50:26.595298Z"}, "event_type": "FLAG_UPDATED"}"#;

#[test]
fn flagsmith_flag_updated() {
    let body = FLAG_UPDATED.as_bytes();
    let headers = Signer::<Flagsmith>::new("s").unwrap().sign(body);
    FlagsmithVerifier::new("s")
        .unwrap()
        .verify(&headers, body)
        .unwrap();

    let event: flagsmith::WebhookEvent = serde_json::from_slice(body).unwrap();
    assert_eq!(event.event_type(), flagsmith::EventType::FlagUpdated);
    let flagsmith::Event::FlagUpdated(change) = &event.event else {
        panic!("wrong variant: {event:?}");
    };
    assert_eq!(change.changed_by, "user@domain.com");
    let new = change.new_state.as_ref().unwrap();
    assert!(new.enabled);
    assert_eq!(new.feature.name, "show_banner");
    assert_eq!(new.feature.kind.as_deref(), Some("MULTIVARIATE"));
    assert_eq!(new.feature_segment.as_ref().unwrap().segment.name, "beta");
    let mv = new.multivariate_feature_state_values.as_ref().unwrap();
    assert_eq!(mv[0].multivariate_feature_option.value, "blue");
    let previous = change.previous_state.as_ref().unwrap();
    assert_eq!(previous.identity_identifier.as_deref(), Some("user_1"));
    assert_eq!(previous.feature_state_value, 3);
    assert!(previous.multivariate_feature_state_values.is_none());

    // Serialising gives back the same document.
    let again: serde_json::Value = serde_json::to_value(&event).unwrap();
    let original: serde_json::Value = serde_json::from_slice(body).unwrap();
    assert_eq!(again["event_type"], original["event_type"]);
    assert_eq!(
        again["data"]["new_state"]["feature"],
        original["data"]["new_state"]["feature"]
    );
}

#[test]
fn flagsmith_flag_deleted_and_audit_log() {
    let deleted = r#"{"data": {"changed_by": "", "new_state": null, "previous_state": {"enabled": true, "feature": {"id": 1, "name": "f"}, "feature_state_value": null}, "timestamp": "2021-06-18T07:50:26.595298Z"}, "event_type": "FLAG_DELETED"}"#;
    let event: flagsmith::WebhookEvent = serde_json::from_str(deleted).unwrap();
    let flagsmith::Event::FlagDeleted(change) = event.event else {
        panic!("wrong variant");
    };
    assert!(change.new_state.is_none());
    assert_eq!(change.previous_state.unwrap().feature.id, 1);

    let audit = r#"{"data": {"author": {"email": "a@b.c", "first_name": "A", "id": 2, "last_name": "B"}, "created_date": "2020-02-23T17:30:57.006318Z", "environment": null, "id": 1, "is_system_event": false, "log": "New Flag / Remote Config created: my_feature", "project": {"id": 6, "name": "Project name", "organisation": 1}, "related_object_id": 6, "related_object_type": "FEATURE", "related_object_uuid": null}, "event_type": "AUDIT_LOG_CREATED"}"#;
    let event: flagsmith::WebhookEvent = serde_json::from_str(audit).unwrap();
    let flagsmith::Event::AuditLogCreated(log) = event.event else {
        panic!("wrong variant");
    };
    assert_eq!(log.related_object_type.as_deref(), Some("FEATURE"));
    assert_eq!(log.author.unwrap().email.as_deref(), Some("a@b.c"));
    assert_eq!(log.project["name"], "Project name");
}

#[test]
fn flagsmith_unknown_event_type_still_parses() {
    let body = r#"{"data": {"anything": [1, 2]}, "event_type": "SOMETHING_NEW"}"#;
    let event: flagsmith::WebhookEvent = serde_json::from_str(body).unwrap();
    assert_eq!(
        event.event_type(),
        flagsmith::EventType::Unknown("SOMETHING_NEW".into())
    );
    let flagsmith::Event::Unknown { event_type, data } = &event.event else {
        panic!("wrong variant");
    };
    assert_eq!(event_type, "SOMETHING_NEW");
    assert_eq!(data["anything"][1], 2);
    let round: serde_json::Value = serde_json::to_value(&event).unwrap();
    assert_eq!(
        round,
        serde_json::from_str::<serde_json::Value>(body).unwrap()
    );

    // A known type with a broken body is an error, not a silent fallback.
    let broken = r#"{"data": {"new_state": 5}, "event_type": "FLAG_UPDATED"}"#;
    assert!(serde_json::from_str::<flagsmith::WebhookEvent>(broken).is_err());
}

#[test]
fn flagsmith_identity_flags() {
    let body = r#"{"flags": [{"enabled": true, "environment": 1, "feature": {"created_date": "2021-02-10T20:03:43.348556Z", "default_enabled": false, "description": null, "id": 51, "initial_value": null, "name": "beta", "type": "STANDARD"}, "feature_segment": null, "feature_state_value": "x", "id": 7, "identity": null}, {"enabled": false, "environment": 1, "feature": {"id": 52, "name": "mv", "type": "MULTIVARIATE"}, "feature_segment": null, "feature_state_value": "red", "id": 8, "identity": 4, "percentage_allocation": 30.0}], "identity": "user_123", "segments": [{"id": 3, "member": true, "name": "beta users"}], "traits": [{"id": 1, "trait_key": "plan", "trait_value": "pro", "transient": false}, {"trait_key": "age", "trait_value": 42}]}"#;
    let flags: flagsmith::IdentityFlags = serde_json::from_str(body).unwrap();
    assert_eq!(flags.identity, "user_123");
    assert_eq!(flags.flags.len(), 2);
    assert_eq!(flags.flags[1].percentage_allocation, Some(30.0));
    assert_eq!(flags.flags[0].percentage_allocation, None);
    assert!(flags.segments[0].member);
    assert_eq!(flags.traits[1].trait_value, 42);
}

#[test]
fn schematic_envelope() {
    let body = r#"{"action":"company.created","account_id":"acct_123","environment_id":"env_456","body":{"id":"comp_1"},"object_type":"company","company_id":"comp_1"}"#;
    let event: schematic::WebhookEvent = serde_json::from_str(body).unwrap();
    assert_eq!(event.action, schematic::Action::CompanyCreated);
    assert_eq!(event.company_id.as_deref(), Some("comp_1"));
    assert_eq!(event.body["id"], "comp_1");

    let future = r#"{"action":"widget.exploded","account_id":"a","environment_id":"e","body":{},"object_type":"widget"}"#;
    let event: schematic::WebhookEvent = serde_json::from_str(future).unwrap();
    assert_eq!(
        event.action,
        schematic::Action::Other("widget.exploded".into())
    );
    assert_eq!(event.action.to_string(), "widget.exploded");
    let round = serde_json::to_string(&event).unwrap();
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&round).unwrap(),
        serde_json::from_str::<serde_json::Value>(future).unwrap()
    );
    for action in [
        schematic::Action::CompanyOverrideExpired,
        schematic::Action::EntitlementLimitWarning,
        schematic::Action::AutoTopupHardFailure,
        schematic::Action::TestSend,
    ] {
        assert_eq!(schematic::Action::from_wire(action.as_str()), action);
    }
}
