//! The provider through OpenFeature's own client API, against the emulator
//! over loopback: every reason and error code, context mapping, type
//! mismatches, status transitions, offline mode and `track`.
//!
//! Each test uses an OpenFeature API instance of its own
//! (`OpenFeature::default()`), except one that goes through the global
//! singleton and holds a lock while it does.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use flagwire::datastream::{DataStreamOptions, ReconnectPolicy};
use flagwire::schematic::Client;
use flagwire_mock::{Fault, Host, MockServer};
use flagwire_openfeature::{SchematicProvider, TargetingKey, metadata};
use open_feature::provider::{FeatureProvider, ProviderStatus};
use open_feature::{
    EvaluationContext, EvaluationContextFieldValue, EvaluationErrorCode, EvaluationReason,
    OpenFeature, StructValue,
};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(10);
const FLAG: &str = "new-editor";

fn flag(key: &str, default_value: bool) -> Value {
    json!({"key": key, "name": key, "description": "", "flag_type": "boolean",
           "default_value": default_value})
}

/// The emulator with companies acme and globex, user ann, and `FLAG` (off
/// by default) on for acme by a rule; returns the rule id.
async fn seeded() -> (MockServer, String) {
    let server = MockServer::start().await.unwrap();
    let acme = server
        .upsert_company(json!({"keys": {"id": "acme"}, "name": "Acme"}))
        .unwrap();
    server
        .upsert_company(json!({"keys": {"id": "globex"}, "name": "Globex"}))
        .unwrap();
    server
        .upsert_user(
            json!({"keys": {"id": "ann", "email": "ann@acme.test"}, "name": "Ann",
                            "company": {"id": "acme"}}),
        )
        .unwrap();
    server.create_flag(flag(FLAG, false)).unwrap();
    let rules = server
        .set_flag_rules(
            FLAG,
            json!([{"name": "acme", "priority": 0, "value": true, "conditions": [
                {"condition_type": "company", "operator": "eq", "resource_ids": [acme["id"]]}
            ], "condition_groups": []}]),
        )
        .unwrap();
    let rule_id = rules["rules"][0]["id"]
        .as_str()
        .or_else(|| rules[0]["id"].as_str())
        .expect("rule id")
        .to_owned();
    (server, rule_id)
}

fn builder(server: &MockServer) -> flagwire::schematic::ClientBuilder {
    Client::builder(server.api_key())
        .base_url(server.rest_url())
        .capture_url(server.capture_url())
        .check_retries(0)
}

fn fast_datastream() -> DataStreamOptions {
    DataStreamOptions::new().reconnect(
        ReconnectPolicy::default()
            .with_base(Duration::from_millis(20))
            .with_cap(Duration::from_millis(100))
            .with_jitter(Duration::from_millis(5)),
    )
}

/// A provider registered with an API instance of its own; returns the
/// OpenFeature client and a clone of the provider (for its status).
async fn open(
    provider: SchematicProvider,
) -> (OpenFeature, open_feature::Client, SchematicProvider) {
    let mut api = OpenFeature::default();
    api.set_provider(provider.clone()).await;
    let client = api.create_client();
    (api, client, provider)
}

fn company(id: &str) -> EvaluationContext {
    EvaluationContext::default().with_custom_field("company.id", id)
}

/// The details of `FLAG` for the company `id`, through OpenFeature's client.
async fn company_details(
    of: &open_feature::Client,
    id: &str,
) -> open_feature::EvaluationDetails<bool> {
    of.get_bool_details(FLAG, Some(&company(id)), None)
        .await
        .unwrap()
}

async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

// ---------------------------------------------------------------------------
// Reasons
// ---------------------------------------------------------------------------

#[tokio::test]
async fn api_answers_targeting_match_default_then_cached() {
    let (server, rule_id) = seeded().await;
    let (_api, of, _p) = open(SchematicProvider::new(builder(&server).build().unwrap())).await;

    let acme = company_details(&of, "acme").await;
    assert!(acme.value);
    assert_eq!(acme.reason, Some(EvaluationReason::TargetingMatch));
    assert_eq!(acme.variant.as_deref(), Some(rule_id.as_str()));

    let globex = company_details(&of, "globex").await;
    assert!(!globex.value);
    assert_eq!(globex.reason, Some(EvaluationReason::Default));
    assert_eq!(globex.variant, None);

    // The same checks again come from the result cache.
    let again = company_details(&of, "acme").await;
    assert!(again.value);
    assert_eq!(again.reason, Some(EvaluationReason::Cached));
    assert_eq!(again.variant.as_deref(), Some(rule_id.as_str()));
    let again = company_details(&of, "globex").await;
    assert_eq!(
        (again.value, again.reason),
        (false, Some(EvaluationReason::Cached))
    );
    assert_eq!(
        of.get_bool_value(FLAG, Some(&company("acme")), None).await,
        Ok(true)
    );
}

#[tokio::test]
async fn local_evaluation_answers_targeting_match_and_default() {
    let (server, rule_id) = seeded().await;
    let client = builder(&server)
        .datastream(fast_datastream())
        .build()
        .unwrap();
    let provider = SchematicProvider::builder(client)
        .init_timeout(WAIT)
        .build();
    assert_eq!(provider.status(), ProviderStatus::NotReady);
    let (_api, of, provider) = open(provider).await;
    assert_eq!(provider.status(), ProviderStatus::Ready);
    assert!(!provider.initialize_timed_out());

    for _ in 0..3 {
        let acme = company_details(&of, "acme").await;
        assert!(acme.value);
        // Local answers are never `CACHED`, however often they repeat.
        assert_eq!(acme.reason, Some(EvaluationReason::TargetingMatch));
        assert_eq!(acme.variant.as_deref(), Some(rule_id.as_str()));
    }
    let globex = company_details(&of, "globex").await;
    assert_eq!(
        (globex.value, globex.reason),
        (false, Some(EvaluationReason::Default))
    );
    let source = provider
        .client()
        .check_flag_detailed(FLAG, flagwire::Context::company(&[("id", "acme")]))
        .await
        .source;
    assert_eq!(source, flagwire::schematic::CheckSource::Local);
}

#[tokio::test]
async fn offline_answers_static_with_a_client_default_and_disabled_without() {
    let client = Client::builder("sch_dev_offline")
        .offline(true)
        .flag_default("configured", true)
        .build()
        .unwrap();
    let (_api, of, provider) = open(SchematicProvider::new(client)).await;
    assert_eq!(provider.status(), ProviderStatus::Ready);

    let configured = of
        .get_bool_details("configured", Some(&company("acme")), None)
        .await
        .unwrap();
    assert_eq!(
        (configured.value, configured.reason),
        (true, Some(EvaluationReason::Static))
    );
    let other = of.get_bool_details("other", None, None).await.unwrap();
    assert_eq!(
        (other.value, other.reason),
        (false, Some(EvaluationReason::Disabled))
    );
}

#[tokio::test]
async fn entitlement_figures_come_as_flag_metadata() {
    let server = MockServer::start().await.unwrap();
    server
        .upsert_company(json!({"keys": {"id": "acme"}, "name": "Acme"}))
        .unwrap();
    server.create_flag(flag("exports", false)).unwrap();
    server
        .set_flag_rules(
            "exports",
            json!([{"name": "under 5 exports", "priority": 1, "value": true,
                    "rule_type": "plan_entitlement", "conditions": [
                {"condition_type": "metric", "operator": "lt", "resource_ids": [],
                 "event_subtype": "export", "metric_value": 5, "metric_period": "all_time"}
            ], "condition_groups": []}]),
        )
        .unwrap();
    server.track(&[("id", "acme")], "export", 2).unwrap();
    let (_api, of, _p) = open(SchematicProvider::new(builder(&server).build().unwrap())).await;
    let details = of
        .get_bool_details("exports", Some(&company("acme")), None)
        .await
        .unwrap();
    assert!(details.value);
    assert_eq!(details.reason, Some(EvaluationReason::TargetingMatch));
    let values = &details.flag_metadata.values;
    assert_eq!(
        values.get(metadata::FEATURE_USAGE),
        Some(&open_feature::FlagMetadataValue::Int(2)),
        "{values:?}"
    );
    assert_eq!(
        values.get(metadata::FEATURE_ALLOCATION),
        Some(&open_feature::FlagMetadataValue::Int(5)),
        "{values:?}"
    );
    // A check without entitlement data carries no metadata.
    server.create_flag(flag("plain", true)).unwrap();
    let plain = of
        .get_bool_details("plain", Some(&company("acme")), None)
        .await
        .unwrap();
    assert!(plain.flag_metadata.values.is_empty());
}

// ---------------------------------------------------------------------------
// Error codes
// ---------------------------------------------------------------------------

#[tokio::test]
async fn unknown_flags_are_flag_not_found_locally_and_over_the_api() {
    let (server, _) = seeded().await;
    for datastream in [false, true] {
        let mut b = builder(&server);
        if datastream {
            b = b.datastream(fast_datastream());
        }
        let provider = SchematicProvider::builder(b.build().unwrap())
            .init_timeout(WAIT)
            .build();
        let (_api, of, _p) = open(provider).await;
        let error = of
            .get_bool_details("no-such-flag", Some(&company("acme")), None)
            .await
            .unwrap_err();
        assert_eq!(error.code, EvaluationErrorCode::FlagNotFound, "{error:?}");
        assert!(error.message.unwrap().contains("no-such-flag"));
        let error = of
            .get_bool_value("", Some(&company("acme")), None)
            .await
            .unwrap_err();
        assert_eq!(error.code, EvaluationErrorCode::FlagNotFound, "{error:?}");
        // The caller's default is what the application uses.
        assert!(
            of.get_bool_value("no-such-flag", None, None)
                .await
                .unwrap_or(true)
        );
    }
}

#[tokio::test]
async fn an_unreachable_api_is_a_general_error() {
    let (server, _) = seeded().await;
    let (_api, of, provider) =
        open(SchematicProvider::new(builder(&server).build().unwrap())).await;
    server
        .inject(
            Host::Rest,
            http::Method::POST,
            "/flags/{key}/check",
            [Fault::status(503)],
        )
        .unwrap();
    let error = of
        .get_bool_details(FLAG, Some(&company("acme")), None)
        .await
        .unwrap_err();
    assert!(
        matches!(error.code, EvaluationErrorCode::General(_)),
        "{error:?}"
    );
    assert!(
        error.message.as_deref().unwrap().contains("default"),
        "{error:?}"
    );
    // The API is back: the next check answers.
    assert_eq!(
        of.get_bool_value(FLAG, Some(&company("acme")), None).await,
        Ok(true)
    );
    assert_eq!(provider.status(), ProviderStatus::Ready);
}

#[tokio::test]
async fn provider_not_ready_before_initialize_and_while_datastream_loads() {
    let (server, _) = seeded().await;
    // Never initialised: OpenFeature would not do that, a direct caller may.
    let direct = SchematicProvider::new(builder(&server).build().unwrap());
    let error = direct
        .resolve_bool_value(FLAG, &company("acme"))
        .await
        .unwrap_err();
    assert_eq!(error.code, EvaluationErrorCode::ProviderNotReady);

    // DataStream refused and the API failing: not ready, not a general error.
    server.datastream_refuse_upgrades(1_000_000);
    let client = builder(&server)
        .datastream(fast_datastream())
        .build()
        .unwrap();
    let provider = SchematicProvider::builder(client)
        .init_timeout(Duration::from_millis(200))
        .build();
    let (_api, of, provider) = open(provider).await;
    assert!(provider.initialize_timed_out());
    assert_ne!(provider.status(), ProviderStatus::Ready);
    server
        .inject(
            Host::Rest,
            http::Method::POST,
            "/flags/{key}/check",
            [Fault::status(500)],
        )
        .unwrap();
    let error = of
        .get_bool_details(FLAG, Some(&company("acme")), None)
        .await
        .unwrap_err();
    assert_eq!(
        error.code,
        EvaluationErrorCode::ProviderNotReady,
        "{error:?}"
    );
    // Meanwhile the API answers when it can.
    assert_eq!(
        of.get_bool_value(FLAG, Some(&company("acme")), None).await,
        Ok(true)
    );
}

#[tokio::test]
async fn non_boolean_types_are_type_mismatch() {
    let (server, _) = seeded().await;
    let (_api, of, _p) = open(SchematicProvider::new(builder(&server).build().unwrap())).await;
    let ctx = company("acme");
    let codes = [
        of.get_int_value(FLAG, Some(&ctx), None)
            .await
            .unwrap_err()
            .code,
        of.get_float_value(FLAG, Some(&ctx), None)
            .await
            .unwrap_err()
            .code,
        of.get_string_value(FLAG, Some(&ctx), None)
            .await
            .unwrap_err()
            .code,
        of.get_struct_value::<StructValue>(FLAG, Some(&ctx), None)
            .await
            .unwrap_err()
            .code,
    ];
    for code in codes {
        assert_eq!(code, EvaluationErrorCode::TypeMismatch);
    }
    // Callers fall back to their defaults.
    assert_eq!(
        of.get_int_value(FLAG, Some(&ctx), None).await.unwrap_or(7),
        7
    );
    assert!(server.requests().iter().all(|r| !r.path.contains("/check")));
}

// ---------------------------------------------------------------------------
// Context mapping
// ---------------------------------------------------------------------------

/// The company and user keys the emulator received with the last check.
fn last_check_body(server: &MockServer) -> Value {
    server
        .requests()
        .iter()
        .rev()
        .find(|r| r.path.ends_with("/check"))
        .and_then(|r| r.json())
        .expect("a check request")
}

#[tokio::test]
async fn contexts_map_to_company_and_user_keys() {
    let (server, rule_id) = seeded().await;
    let client = builder(&server).disable_cache().build().unwrap();
    let (_api, of, _p) = open(SchematicProvider::new(client)).await;

    // Targeting key only: the user `id`.
    let tk = EvaluationContext::default().with_targeting_key("ann");
    let d = of.get_bool_details(FLAG, Some(&tk), None).await.unwrap();
    assert_eq!(
        (d.value, d.reason),
        (false, Some(EvaluationReason::Default))
    );
    let body = last_check_body(&server);
    assert_eq!(body["user"], json!({"id": "ann"}));
    assert!(body["company"].is_null(), "{body}");

    // Company only.
    let d = company_details(&of, "acme").await;
    assert_eq!(d.variant.as_deref(), Some(rule_id.as_str()));
    let body = last_check_body(&server);
    assert_eq!(body["company"], json!({"id": "acme"}));
    assert!(body["user"].is_null(), "{body}");

    // Both, and other attributes ignored.
    let both = company("acme")
        .with_targeting_key("ann")
        .with_custom_field("user.email", "ann@acme.test")
        .with_custom_field("plan", "pro");
    assert_eq!(of.get_bool_value(FLAG, Some(&both), None).await, Ok(true));
    let body = last_check_body(&server);
    assert_eq!(body["company"], json!({"id": "acme"}));
    assert_eq!(body["user"], json!({"id": "ann", "email": "ann@acme.test"}));

    // Nested structs: a key map and an OpenFeature struct.
    let keys: BTreeMap<String, String> = [("id".to_owned(), "acme".to_owned())].into();
    let user = StructValue::default().with_field("email", "ann@acme.test");
    let nested = EvaluationContext::default()
        .with_custom_field("company", EvaluationContextFieldValue::new_struct(keys))
        .with_custom_field("user", EvaluationContextFieldValue::new_struct(user));
    let d = of
        .get_bool_details(FLAG, Some(&nested), None)
        .await
        .unwrap();
    assert_eq!(
        (d.value, d.reason),
        (true, Some(EvaluationReason::TargetingMatch))
    );
    let body = last_check_body(&server);
    assert_eq!(body["company"], json!({"id": "acme"}));
    assert_eq!(body["user"], json!({"email": "ann@acme.test"}));
}

#[tokio::test]
async fn malformed_contexts_are_invalid_context_and_ask_no_one() {
    let (server, _) = seeded().await;
    let (_api, of, _p) = open(SchematicProvider::new(builder(&server).build().unwrap())).await;
    server.clear_requests();
    let bad = [
        EvaluationContext::default().with_custom_field("company.id", 42),
        EvaluationContext::default().with_custom_field("company.id", ""),
        EvaluationContext::default().with_custom_field("user.", "ann"),
        EvaluationContext::default().with_custom_field("company", "acme"),
        EvaluationContext::default()
            .with_custom_field("user", EvaluationContextFieldValue::new_struct(42u32)),
        EvaluationContext::default().with_custom_field(
            "company",
            EvaluationContextFieldValue::new_struct(StructValue::default().with_field("id", true)),
        ),
        EvaluationContext::default().with_targeting_key(""),
        company("acme").with_custom_field(
            "company",
            EvaluationContextFieldValue::new_struct(vec![("id".to_owned(), "globex".to_owned())]),
        ),
    ];
    for context in &bad {
        let error = of
            .get_bool_details(FLAG, Some(context), None)
            .await
            .unwrap_err();
        assert_eq!(
            error.code,
            EvaluationErrorCode::InvalidContext,
            "{context:?}"
        );
        assert!(error.message.is_some());
    }
    assert!(server.requests().is_empty(), "no request for a bad context");
}

#[tokio::test]
async fn keys_naming_two_companies_are_invalid_context_locally() {
    let (server, _) = seeded().await;
    server
        .upsert_company(
            json!({"keys": {"id": "initech", "domain": "initech.test"}, "name": "Initech"}),
        )
        .unwrap();
    let client = builder(&server)
        .datastream(fast_datastream())
        .build()
        .unwrap();
    let provider = SchematicProvider::builder(client)
        .init_timeout(WAIT)
        .build();
    let (_api, of, _provider) = open(provider).await;
    // Both companies in memory first.
    for ctx in [company("acme"), company("initech")] {
        assert!(of.get_bool_details(FLAG, Some(&ctx), None).await.is_ok());
    }
    let both = company("acme").with_custom_field("company.domain", "initech.test");
    let error = of
        .get_bool_details(FLAG, Some(&both), None)
        .await
        .unwrap_err();
    assert_eq!(error.code, EvaluationErrorCode::InvalidContext, "{error:?}");
    assert!(
        error
            .message
            .as_deref()
            .unwrap()
            .contains("different companies"),
        "{error:?}"
    );
}

#[tokio::test]
async fn targeting_key_mapping_is_configurable_and_can_be_required() {
    let (server, rule_id) = seeded().await;
    let client = builder(&server).build().unwrap();
    let provider = SchematicProvider::builder(client)
        .targeting_key(TargetingKey::company("id"))
        .require_targeting_key(true)
        .build();
    let (_api, of, _p) = open(provider).await;
    let acme = EvaluationContext::default().with_targeting_key("acme");
    let d = of.get_bool_details(FLAG, Some(&acme), None).await.unwrap();
    assert_eq!(d.variant.as_deref(), Some(rule_id.as_str()));
    let error = of
        .get_bool_details(FLAG, Some(&company("acme")), None)
        .await
        .unwrap_err();
    assert_eq!(error.code, EvaluationErrorCode::TargetingKeyMissing);
}

// ---------------------------------------------------------------------------
// Status
// ---------------------------------------------------------------------------

#[tokio::test]
async fn status_goes_stale_when_the_stream_drops_and_ready_again_on_reconnect() {
    let (server, _) = seeded().await;
    let client = builder(&server)
        .datastream(fast_datastream())
        .build()
        .unwrap();
    let provider = SchematicProvider::builder(client)
        .init_timeout(WAIT)
        .build();
    let (_api, of, provider) = open(provider).await;
    assert_eq!(provider.status(), ProviderStatus::Ready);
    assert_eq!(
        of.get_bool_value(FLAG, Some(&company("acme")), None).await,
        Ok(true)
    );

    server.datastream_refuse_upgrades(20);
    assert_eq!(server.datastream_drop_connections(), 1);
    eventually("STALE", || provider.status() == ProviderStatus::STALE).await;
    // Data still answers while stale.
    let d = company_details(&of, "acme").await;
    assert!(d.value);
    eventually("READY after reconnecting", || {
        provider.status() == ProviderStatus::Ready
    })
    .await;
}

#[tokio::test]
async fn stale_after_gives_a_disconnected_stream_some_grace() {
    let (server, _) = seeded().await;
    let client = builder(&server)
        .datastream(fast_datastream())
        .build()
        .unwrap();
    let provider = SchematicProvider::builder(client)
        .init_timeout(WAIT)
        .stale_after(Duration::from_secs(3600))
        .build();
    let (_api, _of, provider) = open(provider).await;
    server.datastream_refuse_upgrades(1_000_000);
    server.datastream_drop_connections();
    eventually("the client to notice", || {
        provider
            .client()
            .datastream_status()
            .is_some_and(|s| s.state != flagwire::datastream::ConnectionState::Connected)
    })
    .await;
    assert_eq!(provider.status(), ProviderStatus::Ready);
}

#[tokio::test]
async fn status_is_error_when_the_stream_stops_for_good() {
    let (server, _) = seeded().await;
    let client = builder(&server)
        .datastream(fast_datastream())
        .build()
        .unwrap();
    let provider = SchematicProvider::builder(client)
        .init_timeout(WAIT)
        .build();
    let (_api, of, provider) = open(provider).await;
    assert_eq!(provider.status(), ProviderStatus::Ready);
    server.datastream_close_all(4001, "unauthorized").unwrap();
    eventually("ERROR", || provider.status() == ProviderStatus::Error).await;
    // Checks go on through the API.
    assert_eq!(
        of.get_bool_value(FLAG, Some(&company("acme")), None).await,
        Ok(true)
    );
}

#[tokio::test]
async fn status_error_after_a_timed_out_initialize_then_ready_when_flags_arrive() {
    let (server, _) = seeded().await;
    // Refused for a while (20 attempts, 20-100 ms apart), then let through.
    server.datastream_refuse_upgrades(20);
    let client = builder(&server)
        .datastream(fast_datastream())
        .build()
        .unwrap();
    let provider = SchematicProvider::builder(client)
        .init_timeout(Duration::from_millis(50))
        .build();
    assert_eq!(provider.status(), ProviderStatus::NotReady);
    let (_api, of, provider) = open(provider).await;
    assert!(provider.initialize_timed_out());
    assert!(provider.is_initialized());
    let status = provider.status();
    assert!(
        matches!(status, ProviderStatus::Error | ProviderStatus::NotReady),
        "{status:?}"
    );
    // Meanwhile checks are answered by the API.
    assert_eq!(
        of.get_bool_value(FLAG, Some(&company("acme")), None).await,
        Ok(true)
    );
    eventually("READY once the flags arrive", || {
        provider.status() == ProviderStatus::Ready
    })
    .await;
}

#[tokio::test]
async fn api_mode_status_is_error_while_the_breaker_is_open() {
    let (server, _) = seeded().await;
    let client = builder(&server)
        .breaker(
            flagwire::schematic::BreakerPolicy::new()
                .failures_to_open(2)
                .open_for(Duration::from_millis(300)),
        )
        .build()
        .unwrap();
    let (_api, of, provider) = open(SchematicProvider::new(client)).await;
    assert_eq!(provider.status(), ProviderStatus::Ready);
    server
        .inject(
            Host::Rest,
            http::Method::POST,
            "/flags/{key}/check",
            [Fault::status(503), Fault::status(503)],
        )
        .unwrap();
    for _ in 0..2 {
        let error = of
            .get_bool_details(FLAG, Some(&company("globex")), None)
            .await
            .unwrap_err();
        assert!(matches!(error.code, EvaluationErrorCode::General(_)));
    }
    assert_eq!(provider.status(), ProviderStatus::Error);
    // Open: answered at once, with the reason, without a request.
    let error = of
        .get_bool_details(FLAG, Some(&company("globex")), None)
        .await
        .unwrap_err();
    assert!(
        error
            .message
            .as_deref()
            .unwrap()
            .contains("circuit breaker"),
        "{error:?}"
    );
    // After the pause a probe succeeds and the status follows.
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(
        of.get_bool_value(FLAG, Some(&company("globex")), None)
            .await,
        Ok(false)
    );
    assert_eq!(provider.status(), ProviderStatus::Ready);
}

// ---------------------------------------------------------------------------
// Global singleton, metadata, track
// ---------------------------------------------------------------------------

#[tokio::test]
async fn works_through_the_global_singleton() {
    let (server, _) = seeded().await;
    let provider = SchematicProvider::new(builder(&server).build().unwrap());
    // The only test touching the singleton; the write lock is held while it
    // is set, so other processes' tests could not race it either.
    OpenFeature::singleton_mut()
        .await
        .set_provider(provider.clone())
        .await;
    let api = OpenFeature::singleton().await;
    assert_eq!(api.provider_metadata().await.name, "flagwire-schematic");
    let of = api.create_client();
    assert_eq!(
        of.get_bool_value(FLAG, Some(&company("acme")), None).await,
        Ok(true)
    );
    drop(api);
    OpenFeature::singleton_mut().await.shutdown().await;
}

#[tokio::test]
async fn provider_name_is_configurable() {
    let client = Client::builder("sch_dev_x").offline(true).build().unwrap();
    let (api, _of, provider) =
        open(SchematicProvider::builder(client).name("schematic").build()).await;
    assert_eq!(api.provider_metadata().await.name, "schematic");
    assert_eq!(provider.metadata().name, "schematic");
}

#[tokio::test]
async fn track_sends_a_schematic_event_for_the_context() {
    let (server, _) = seeded().await;
    let client = builder(&server)
        .events(|e| e.flush_interval(Duration::from_millis(20)))
        .build()
        .unwrap();
    let (_api, _of, provider) = open(SchematicProvider::new(client)).await;
    let context = company("acme")
        .with_targeting_key("ann")
        .with_custom_field("plan", "pro");
    provider
        .track_with(
            "export",
            &context,
            flagwire_openfeature::TrackOptions::new().quantity(3),
        )
        .unwrap();
    provider.client().flush().await.unwrap();
    let events = server.events();
    let track = events
        .iter()
        .find(|e| e.event_type == "track")
        .expect("a track event");
    assert_eq!(track.body["event"], "export");
    assert_eq!(track.body["company"], json!({"id": "acme"}));
    assert_eq!(track.body["user"], json!({"id": "ann"}));
    assert_eq!(track.body["traits"]["plan"], "pro");
    assert_eq!(track.body["quantity"], 3);
    provider.client().shutdown(Duration::from_secs(5)).await;
}
