//! The checked-in seeds are what their names say: valid inputs reach past
//! the parsers, and the deliberately broken ones are refused. Run with
//! `cargo test` inside `fuzz/` (an ordinary build, no libFuzzer needed).

use std::path::PathBuf;

use flagwire::esauti::DeadLetter;
use flagwire_core::datastream::{Message, parse_message};
use flagwire_core::esauti::EventEnvelope;
use flagwire_core::rules::{PreparedCompany, PreparedUser, RulesEngine, parse_date};
use flagwire_core::{ApiError, Operation};
use flagwire_fuzz::{fields, status, take};
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
        ("year_9999", true),
        ("quantities_and_policies", true),
        ("negative_preflight", true),
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

/// Decodes an `api_responses` seed as `O`'s response, with the status its
/// second and third bytes give the target.
fn response<O: Operation>(name: &str) -> Result<O::Output, ApiError> {
    let data = seed("api_responses", name);
    O::parse_response(
        status(data[1], data[2]),
        &http::HeaderMap::new(),
        &data[3..],
    )
}

#[test]
fn response_seeds_decode_or_fail_as_named() {
    use flagwire_core::esauti::api::contacts;
    use flagwire_core::schematic::{catalogs, companies, dataexports, events, features, webhooks};
    response::<features::CheckFlag>("check_flag").unwrap();
    response::<features::CheckFlags>("check_flags").unwrap();
    response::<features::CountFeatures>("count").unwrap();
    response::<companies::ListCompanies>("list_empty").unwrap();
    response::<events::ListEvents>("events").unwrap();
    response::<webhooks::GetWebhookEvent>("webhook_event").unwrap();
    response::<contacts::CreateContact>("esauti_contact").unwrap();
    response::<catalogs::AddCreditBundle>("no_content").unwrap();
    assert_eq!(
        &response::<dataexports::GetDataExportArtifact>("bytes").unwrap()[..],
        b"\x89PNG"
    );
    let e = response::<companies::GetCompany>("not_found").unwrap_err();
    assert_eq!(e.status(), http::StatusCode::NOT_FOUND);
}

#[test]
fn datastream_seeds_decode_or_fail_as_named() {
    let decode = |name: &str| {
        let text = String::from_utf8(seed("datastream_messages", name)).unwrap();
        parse_message(&text)
    };
    let kind = |name: &str| match decode(name)
        .unwrap_or_else(|e| panic!("{name}: {e}"))
        .message
    {
        Message::Flags { flags, skipped } => format!("flags {} {skipped}", flags.len()),
        Message::Company(_) => "company".to_owned(),
        Message::CompanyPatch { .. } => "company patch".to_owned(),
        Message::UserPatch { .. } => "user patch".to_owned(),
        Message::CompanyDeleted { .. } => "company deleted".to_owned(),
        Message::Error(_) => "error".to_owned(),
        Message::Reload => "reload".to_owned(),
        other => format!("{other:?}"),
    };
    assert_eq!(kind("flags_full.json"), "flags 1 1");
    assert_eq!(kind("company_full.json"), "company");
    assert_eq!(kind("company_partial.json"), "company patch");
    assert_eq!(kind("user_partial.json"), "user patch");
    assert_eq!(kind("company_delete.json"), "company deleted");
    assert_eq!(kind("error.json"), "error");
    assert_eq!(kind("reload.json"), "reload");
    assert!(decode("malformed_partial.json").is_err());
}
