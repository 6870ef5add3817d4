//! Property test: for random flags, companies and users held by the
//! emulator, a check evaluated locally from DataStream data gives the same
//! verdict (value, rule, reason, resolved ids) as the emulator's REST check.

mod verdict_scenarios;

use std::time::Duration;

use flagwire::Context;
use flagwire::datastream::DataStreamOptions;
use flagwire::schematic::{CheckSource, Client};
use flagwire_mock::MockServer;
use proptest::prelude::*;
use serde_json::{Value, json};

use verdict_scenarios::*;

async fn run(companies: Vec<CompanySpec>, flags: Vec<FlagSpec>) -> Result<(), TestCaseError> {
    let server = MockServer::start().await.unwrap();
    let mut company_ids = Vec::new();
    for (i, c) in companies.iter().enumerate() {
        let company = server
            .upsert_company(json!({"keys": {"id": format!("co{i}")},
                "traits": {"tier": TIERS[c.tier], "seats": c.seats}}))
            .unwrap();
        company_ids.push(company["id"].as_str().unwrap().to_owned());
        if c.calls > 0 {
            server
                .track(&[("id", &format!("co{i}"))], "api-call", c.calls)
                .unwrap();
        }
        server
            .upsert_user(json!({"keys": {"email": format!("u{i}@example.com")},
                "traits": {"plan": TIERS[(c.tier + i) % TIERS.len()]}, "company": {"id": format!("co{i}")}}))
            .unwrap();
    }
    let rest = Client::builder(server.api_key())
        .base_url(server.rest_url())
        .capture_url(server.capture_url())
        .disable_cache()
        .build()
        .unwrap();
    let defs = Defs {
        tier: trait_definition(&rest, "tier").await,
        seats: trait_definition(&rest, "seats").await,
        user_plan: trait_definition(&rest, "plan").await,
    };
    for (f, spec) in flags.iter().enumerate() {
        let key = format!("flag-{f}");
        server
            .create_flag(
                json!({"key": key, "name": key, "description": "", "flag_type": "boolean",
                "default_value": spec.default_value}),
            )
            .unwrap();
        let rules: Vec<Value> = spec
            .rules
            .iter()
            .enumerate()
            .map(|(r, rule)| {
                let group: Vec<Value> = rule
                    .group
                    .iter()
                    .map(|c| condition_json(c, &defs, &company_ids))
                    .collect();
                json!({"name": format!("rule {r}"), "priority": rule.priority, "value": rule.value,
                    "conditions": rule.conditions.iter().map(|c| condition_json(c, &defs, &company_ids)).collect::<Vec<_>>(),
                    "condition_groups": if group.is_empty() { json!([]) } else { json!([{"conditions": group}]) }})
            })
            .collect();
        server.set_flag_rules(&key, json!(rules)).unwrap();
    }
    let local = Client::builder(server.api_key())
        .base_url(server.rest_url())
        .capture_url(server.capture_url())
        .datastream(DataStreamOptions::new().flag_check_events(false))
        .disable_cache()
        .build()
        .unwrap();
    prop_assert!(local.wait_until_ready(Duration::from_secs(10)).await);

    for i in 0..companies.len() {
        let company = [("id", format!("co{i}"))];
        let user = [("email", format!("u{i}@example.com"))];
        let contexts = [
            Context::company(&company),
            Context::user(&user),
            Context::company(&company).with_user(&user),
            Context::none(),
        ];
        for context in contexts {
            for f in 0..flags.len() {
                let key = format!("flag-{f}");
                let expected = rest.check_flag_detailed(&key, context).await;
                let got = local.check_flag_detailed(&key, context).await;
                prop_assert_eq!(expected.source, CheckSource::Api);
                prop_assert_eq!(got.source, CheckSource::Local, "{:?}", got);
                prop_assert_eq!(got.value, expected.value, "{} {:?}", key, context);
                prop_assert_eq!(&got.rule_id, &expected.rule_id);
                prop_assert_eq!(&got.reason, &expected.reason);
                prop_assert_eq!(&got.company_id, &expected.company_id);
                prop_assert_eq!(&got.user_id, &expected.user_id);
            }
        }
    }
    local.shutdown(Duration::from_secs(2)).await;
    rest.shutdown(Duration::from_secs(2)).await;
    server.stop().await;
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn local_verdicts_equal_the_emulators_rest_verdicts((companies, flags) in scenario()) {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(run(companies, flags))?;
    }
}
