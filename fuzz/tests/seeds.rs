//! The checked-in seeds are what their names say: valid inputs reach past
//! the parsers, and the deliberately broken ones are refused. Run with
//! `cargo test` inside `fuzz/` (an ordinary build, no libFuzzer needed).

use std::path::PathBuf;

use flagwire::esauti::DeadLetter;
use flagwire_core::Operation;
use flagwire_core::esauti::EventEnvelope;
use flagwire_core::rules::{PreparedCompany, PreparedUser, RulesEngine, parse_date};
use flagwire_fuzz::{fields, take};
use flagwire_webhooks::payload::{flagsmith, schematic};

fn seed(target: &str, name: &str) -> Vec<u8> {
    let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "seeds", target, name]
        .iter()
        .collect();
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn webhook_payload_seeds_parse() {
    for name in [
        "flag_updated.json",
        "flag_deleted.json",
        "audit_log.json",
        "new_version.json",
    ] {
        let event: flagsmith::WebhookEvent =
            serde_json::from_slice(&seed("webhook_payloads", name)).expect(name);
        assert!(
            !matches!(event.event, flagsmith::Event::Unknown { .. }),
            "{name}"
        );
    }
    let _: flagsmith::IdentityFlags =
        serde_json::from_slice(&seed("webhook_payloads", "identity_flags.json")).unwrap();
    let event: schematic::WebhookEvent =
        serde_json::from_slice(&seed("webhook_payloads", "schematic.json")).unwrap();
    assert_eq!(event.action, schematic::Action::CompanyPlanChanged);
}

#[test]
fn envelope_seeds_parse_or_fail_as_named() {
    for name in ["order_created.json", "custom.json"] {
        EventEnvelope::from_json(&seed("esauti_envelope", name)).expect(name);
    }
    for name in ["missing_value.json", "empty_type.json"] {
        assert!(EventEnvelope::from_json(&seed("esauti_envelope", name)).is_err());
    }
}

#[test]
fn rules_seeds_load_flags_and_subjects() {
    for (name, subjects) in [
        ("plan_and_traits", true),
        ("metrics_credits", true),
        ("no_subjects", false),
    ] {
        let data = seed("rules_engine", name);
        let (_, rest) = take::<32>(&data);
        let [flags, company, user, _] = fields::<4>(rest);
        let engine = RulesEngine::from_json(std::str::from_utf8(flags).unwrap()).expect(name);
        assert!(!engine.is_empty(), "{name}");
        if subjects {
            PreparedCompany::from_json(std::str::from_utf8(company).unwrap()).expect(name);
            PreparedUser::from_json(std::str::from_utf8(user).unwrap()).expect(name);
        }
    }
}

#[test]
fn date_seeds_parse() {
    for name in [
        "plain",
        "zone",
        "rfc3339",
        "javascript",
        "javascript_day",
        "edge",
    ] {
        let text = String::from_utf8(seed("rule_dates", name)).unwrap();
        assert!(parse_date(&text).is_some(), "{name}: {text}");
    }
}

#[test]
fn dead_letter_seeds_read() {
    for name in ["status_failure", "custom_key"] {
        let line = String::from_utf8(seed("dead_letters", name)).unwrap();
        DeadLetter::from_json_line(&line).expect(name);
    }
    let line = String::from_utf8(seed("dead_letters", "invalid_envelope")).unwrap();
    assert!(DeadLetter::from_json_line(&line).is_err());
}

#[test]
fn response_seeds_decode() {
    use flagwire_core::schematic::{companies, events, features, webhooks};
    let ok = http::StatusCode::OK;
    let h = http::HeaderMap::new();
    let body = |name| {
        let data = seed("api_responses", name);
        data[3..].to_vec()
    };
    features::CheckFlag::parse_response(ok, &h, &body("check_flag")).unwrap();
    features::CheckFlags::parse_response(ok, &h, &body("check_flags")).unwrap();
    features::CountFeatures::parse_response(ok, &h, &body("count")).unwrap();
    companies::ListCompanies::parse_response(ok, &h, &body("list_empty")).unwrap();
    events::ListEvents::parse_response(ok, &h, &body("events")).unwrap();
    webhooks::GetWebhookEvent::parse_response(ok, &h, &body("webhook_event")).unwrap();
    flagwire_core::esauti::api::contacts::CreateContact::parse_response(
        ok,
        &h,
        &body("esauti_contact"),
    )
    .unwrap();
}
