//! Flag checks evaluated by the core rules engine over stored state.

mod common;

use common::{Api, data, error};
use flagwire_mock::MockServer;
use serde_json::{Value, json};

fn flag(key: &str, default_value: bool) -> Value {
    json!({"key": key, "name": key, "description": "", "flag_type": "boolean", "default_value": default_value})
}

#[tokio::test]
async fn metric_rule_flips_after_enough_tracked_usage() {
    let server = MockServer::start().await.unwrap();
    let api = Api::rest(&server);
    let capture = Api::capture(&server);
    let key = server.api_key().to_owned();
    data(
        api.post("/companies", json!({"keys": {"id": "acme"}}))
            .await,
        200,
    );
    let f = data(api.post("/flags", flag("api-access", false)).await, 201);
    // Allowed while fewer than 10 calls this month.
    let rules = data(
        api.put(
            &format!("/flags/{}/rules", f["id"].as_str().unwrap()),
            json!({"rules": [{
                "name": "under quota", "priority": 1, "value": true, "rule_type": "standard",
                "conditions": [{"condition_type": "metric", "operator": "lt", "resource_ids": [],
                                "event_subtype": "api-call", "metric_value": 10,
                                "metric_period": "current_month", "metric_period_month_reset": "first_of_month"}],
                "condition_groups": []
            }]}),
        )
        .await,
        200,
    );
    let rule_id = rules["rules"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(rules["flag"]["key"], "api-access");

    let check = |body: Value| {
        let api = api.clone();
        async move { data(api.post("/flags/api-access/check", body).await, 200) }
    };
    let acme = json!({"company": {"id": "acme"}});

    let r = check(acme.clone()).await;
    assert_eq!(r["value"], true);
    assert_eq!(r["flag"], "api-access");
    assert_eq!(r["flag_id"], f["id"]);
    assert_eq!(r["rule_id"], rule_id.as_str());
    assert_eq!(r["rule_type"], "standard");
    assert_eq!(
        r["reason"],
        format!("Matched standard rule \"under quota\" ({rule_id})")
    );
    assert!(r["company_id"].as_str().unwrap().starts_with("comp_"));

    // Preflight: 10 more would exceed the quota.
    let r = check(json!({"company": {"id": "acme"}, "preflight": {"usage": 10}})).await;
    assert_eq!(r["value"], false);
    let r = check(json!({"company": {"id": "acme"}, "preflight": {"event_usage": {"event_subtype": "api-call", "quantity": 10}}})).await;
    assert_eq!(r["value"], false);

    // 9 tracked calls: still allowed; the 10th flips it.
    let events: Vec<Value> = (0..3)
        .map(|_| json!({"api_key": key, "type": "track", "body": {"event": "api-call", "company": {"id": "acme"}, "quantity": 3}}))
        .collect();
    assert_eq!(
        capture
            .post("/batch", json!({ "events": events }))
            .await
            .status,
        200
    );
    assert_eq!(check(acme.clone()).await["value"], true);
    data(
        api.post("/events", json!({"event_type": "track", "body": {"event": "api-call", "company": {"id": "acme"}}})).await,
        201,
    );
    let r = check(acme.clone()).await;
    assert_eq!(r["value"], false);
    assert_eq!(r["reason"], "No rules matched; default value for flag");
    assert!(r.get("rule_id").is_none());

    // Unknown flag keys and unknown companies.
    let r = data(api.post("/flags/nope/check", acme.clone()).await, 200);
    assert_eq!(r["value"], false);
    assert_eq!(r["reason"], "Flag not found");
    let r = check(json!({"company": {"id": "nobody"}})).await;
    assert_eq!(r["value"], false);
    assert!(r.get("company_id").is_none());
    server.stop().await;
}

#[tokio::test]
async fn trait_company_and_user_rules() {
    let server = MockServer::start().await.unwrap();
    let api = Api::rest(&server);
    let acme = data(
        api.post(
            "/companies",
            json!({"keys": {"id": "acme"}, "traits": {"seats": 5, "tier": "gold"}}),
        )
        .await,
        200,
    );
    data(
        api.post(
            "/companies",
            json!({"keys": {"id": "globex"}, "traits": {"seats": 50, "tier": "silver"}}),
        )
        .await,
        200,
    );
    let ann = data(
        api.post(
            "/users",
            json!({"keys": {"email": "ann@acme.io"}, "company": {"id": "acme"}}),
        )
        .await,
        200,
    );
    let defs = data(
        api.get("/entity-trait-definitions?entity_type=company")
            .await,
        200,
    );
    let seats = defs
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["hierarchy"][0] == "seats")
        .unwrap()["id"]
        .clone();
    let tier = defs
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["hierarchy"][0] == "tier")
        .unwrap()["id"]
        .clone();

    for (key, dv) in [
        ("big", false),
        ("gold", false),
        ("ann-only", false),
        ("everyone", true),
    ] {
        data(api.post("/flags", flag(key, dv)).await, 201);
    }
    let set = |key: &str, rules: Value| {
        let server = &server;
        let key = key.to_owned();
        move || server.set_flag_rules(&key, rules).unwrap()
    };
    set(
        "big",
        json!([{"name": "many seats", "priority": 1, "value": true, "conditions": [
            {"condition_type": "trait", "operator": "gte", "resource_ids": [], "trait_id": seats, "trait_value": "10"}
        ], "condition_groups": []}]),
    )();
    set(
        "gold",
        json!([{"name": "gold or silver", "priority": 1, "value": true, "conditions": [], "condition_groups": [
            {"conditions": [
                {"condition_type": "trait", "operator": "eq", "resource_ids": [], "trait_id": tier, "trait_value": "gold"},
                {"condition_type": "trait", "operator": "eq", "resource_ids": [], "trait_id": tier, "trait_value": "platinum"}
            ]}
        ]}]),
    )();
    set(
        "ann-only",
        json!([{"name": "ann", "priority": 1, "value": true, "rule_type": "global_override", "conditions": [], "condition_groups": []},
               {"name": "ann", "priority": 0, "value": true, "conditions": [
                   {"condition_type": "user", "operator": "eq", "resource_ids": [ann["id"]]}
               ], "condition_groups": []}]),
    )();
    // Replace: only the user rule remains.
    set(
        "ann-only",
        json!([{"name": "ann", "priority": 0, "value": true, "conditions": [
                   {"condition_type": "user", "operator": "eq", "resource_ids": [ann["id"]]},
                   {"condition_type": "company", "operator": "eq", "resource_ids": [acme["id"]]}
               ], "condition_groups": []}]),
    )();

    let values = |resp: Value| -> Vec<(String, bool)> {
        resp["flags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                (
                    f["flag"].as_str().unwrap().to_owned(),
                    f["value"].as_bool().unwrap(),
                )
            })
            .collect()
    };
    let acme_ann = data(
        api.post(
            "/flags/check",
            json!({"company": {"id": "acme"}, "user": {"email": "ann@acme.io"}}),
        )
        .await,
        201,
    );
    assert_eq!(acme_ann["credit_spend_policies"], json!([]));
    assert_eq!(
        values(acme_ann),
        [
            ("big".into(), false),
            ("gold".into(), true),
            ("ann-only".into(), true),
            ("everyone".into(), true)
        ]
    );
    let bulk = data(
        api.post(
            "/flags/check-bulk",
            json!({"contexts": [{"company": {"id": "globex"}}, {"company": {"id": "acme"}}, {}]}),
        )
        .await,
        201,
    );
    let contexts = bulk["data"].as_array().unwrap();
    assert_eq!(contexts.len(), 3);
    assert_eq!(
        values(contexts[0].clone()),
        [
            ("big".into(), true),
            ("gold".into(), false),
            ("ann-only".into(), false),
            ("everyone".into(), true)
        ]
    );
    assert_eq!(
        values(contexts[1].clone())[2],
        ("ann-only".into(), false),
        "needs the user too"
    );

    // Trait changes through the API are seen by the next check.
    data(
        api.post(
            "/company-traits",
            json!({"keys": {"id": "acme"}, "trait": "seats", "incr": 20}),
        )
        .await,
        200,
    );
    let r = data(
        api.post("/flags/big/check", json!({"company": {"id": "acme"}}))
            .await,
        200,
    );
    assert_eq!(r["value"], true);

    // Flag updates and deletes are seen too.
    let big = server.flag_by_key("big").unwrap();
    let id = big["id"].as_str().unwrap();
    let mut body = flag("big", true);
    body["key"] = json!("huge");
    data(api.put(&format!("/flags/{id}"), body).await, 200);
    assert_eq!(
        data(api.post("/flags/big/check", json!({})).await, 200)["reason"],
        "Flag not found"
    );
    assert_eq!(
        data(api.post("/flags/huge/check", json!({})).await, 200)["value"],
        true
    );
    data(api.delete(&format!("/flags/{id}")).await, 200);
    assert_eq!(
        data(api.post("/flags/huge/check", json!({})).await, 200)["reason"],
        "Flag not found"
    );

    // Validation.
    error(
        api.post("/flags/check-bulk", json!({"contexts": []})).await,
        400,
    );
    let many: Vec<Value> = (0..101).map(|_| json!({})).collect();
    error(
        api.post("/flags/check-bulk", json!({"contexts": many}))
            .await,
        400,
    );
    error(
        api.post(
            "/flags/gold/check",
            json!({"company": {"id": "x".repeat(256)}}),
        )
        .await,
        400,
    );
    error(
        api.post("/flags/gold/check", json!({"company": "acme"}))
            .await,
        400,
    );
    error(
        api.post(
            "/flags/gold/check",
            json!({"preflight": {"credit_cost": {"c": -1.0}}}),
        )
        .await,
        400,
    );
    // An empty body is a check without context.
    let (status, _, _) = api
        .try_send(http::Method::POST, "/flags/everyone/check", None)
        .await
        .unwrap();
    assert_eq!(status, 200);
    server.stop().await;
}

#[tokio::test]
async fn features_and_flags_crud() {
    let server = MockServer::start().await.unwrap();
    let api = Api::rest(&server);
    let feat = data(
        api.post(
            "/features",
            json!({"name": "Reports", "description": "d", "feature_type": "event", "event_subtype": "report",
                   "flag": flag("reports", false)}),
        )
        .await,
        201,
    );
    let fid = feat["id"].as_str().unwrap().to_owned();
    assert!(fid.starts_with("feat_"));
    assert_eq!(feat["flags"][0]["key"], "reports");
    assert_eq!(feat["flags"][0]["feature_id"], fid.as_str());
    assert_eq!(
        data(api.get(&format!("/features/{fid}")).await, 200)["event_subtype"],
        "report"
    );
    let upd = data(
        api.put(&format!("/features/{fid}"), json!({"name": "Reporting"}))
            .await,
        200,
    );
    assert_eq!(upd["name"], "Reporting");
    assert_eq!(upd["description"], "d");
    assert_eq!(
        data(api.get("/features?q=report").await, 200)
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        data(api.get("/features?feature_type=boolean").await, 200)
            .as_array()
            .unwrap()
            .len(),
        0
    );
    assert_eq!(data(api.get("/features/count").await, 200)["count"], 1);
    error(
        api.post(
            "/features",
            json!({"name": "x", "description": "", "feature_type": "nope"}),
        )
        .await,
        400,
    );
    error(
        api.post(
            "/features",
            json!({"description": "", "feature_type": "boolean"}),
        )
        .await,
        400,
    );

    let f2 = data(api.post("/flags", flag("solo", true)).await, 201);
    error(api.post("/flags", flag("solo", true)).await, 409);
    let mut bad = flag("x", true);
    bad["flag_type"] = json!("multivariate");
    error(api.post("/flags", bad).await, 400);
    let mut bad = flag("x", true);
    bad["feature_id"] = json!("feat_missing");
    error(api.post("/flags", bad).await, 404);
    let flags = data(api.get("/flags?limit=1").await, 200);
    assert_eq!(flags[0]["key"], "solo", "newest first");
    assert_eq!(
        data(api.get(&format!("/flags?feature_id={fid}")).await, 200)[0]["key"],
        "reports"
    );
    assert_eq!(data(api.get("/flags/count?q=sol").await, 200)["count"], 1);
    assert_eq!(
        data(
            api.get(&format!("/flags/{}", f2["id"].as_str().unwrap()))
                .await,
            200
        )["default_value"],
        true
    );
    error(api.get("/flags/flag_missing").await, 404);
    error(
        api.put("/flags/flag_missing/rules", json!({"rules": []}))
            .await,
        404,
    );
    error(
        api.put(
            &format!("/flags/{}/rules", f2["id"].as_str().unwrap()),
            json!({"rules": [{"name": "r", "priority": 1, "value": true, "conditions": [
                {"condition_type": "metric", "operator": "lt", "resource_ids": []}
            ], "condition_groups": []}]}),
        )
        .await,
        400,
    );
    error(
        api.put(
            &format!("/flags/{}/rules", f2["id"].as_str().unwrap()),
            json!({"rules": [{"name": "r", "priority": 1, "value": true, "rule_type": "sometimes", "conditions": [], "condition_groups": []}]}),
        )
        .await,
        400,
    );

    // Deleting the feature deletes its flags.
    assert_eq!(
        data(api.delete(&format!("/features/{fid}")).await, 200)["deleted"],
        true
    );
    error(api.get(&format!("/features/{fid}")).await, 404);
    assert!(server.flag_by_key("reports").is_none());
    assert_eq!(data(api.get("/flags/count").await, 200)["count"], 1);
    server.stop().await;
}

#[tokio::test]
async fn escaped_path_segments_are_decoded() {
    use flagwire_core::Operation;
    use flagwire_core::schematic::features::CheckFlag;
    use flagwire_core::schematic::models::CheckFlagRequestBody;

    let server = MockServer::start().await.unwrap();
    server.create_flag(flag("beta users/v2", true)).unwrap();
    let api = Api::rest(&server);
    let r = data(
        api.post("/flags/beta%20users%2Fv2/check", json!({})).await,
        200,
    );
    assert_eq!(r["flag"], "beta users/v2");
    assert_eq!(r["value"], true);
    // The generated operation escapes the key the same way.
    let path = CheckFlag::new("beta users/v2", CheckFlagRequestBody::new())
        .path()
        .unwrap();
    assert_eq!(data(api.post(&path, json!({})).await, 200)["value"], true);
    server.stop().await;
}
