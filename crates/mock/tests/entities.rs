//! Companies, users, traits, memberships and trait definitions over HTTP.

mod common;

use common::{Api, data, error};
use flagwire_mock::MockServer;
use serde_json::json;

#[tokio::test]
async fn company_upsert_get_lookup_list_count_delete() {
    let server = MockServer::start().await.unwrap();
    let api = Api::rest(&server);

    let c = data(
        api.post(
            "/companies",
            json!({"keys": {"id": "acme"}, "name": "Acme", "traits": {"seats": 5, "tier": "gold"}}),
        )
        .await,
        200,
    );
    let id = c["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("comp_"));
    assert_eq!(c["name"], "Acme");
    assert_eq!(c["traits"]["seats"], 5);
    assert_eq!(c["keys"][0]["key"], "id");
    assert_eq!(c["keys"][0]["value"], "acme");
    assert_eq!(c["entity_traits"].as_array().unwrap().len(), 2);
    assert_eq!(c["user_count"], 0);

    // Upserting by an existing key updates the same company and merges keys.
    let c2 = data(
        api.post(
            "/companies",
            json!({"keys": {"id": "acme", "domain": "acme.io"}, "traits": {"seats": 6}}),
        )
        .await,
        200,
    );
    assert_eq!(c2["id"], id.as_str());
    assert_eq!(c2["name"], "Acme");
    assert_eq!(c2["keys"].as_array().unwrap().len(), 2);
    assert_eq!(c2["traits"]["seats"], 6);
    assert_eq!(c2["traits"]["tier"], "gold");

    let got = data(api.get(&format!("/companies/{id}")).await, 200);
    assert_eq!(got["id"], id.as_str());
    let looked = api.get("/companies/lookup?keys%5Bdomain%5D=acme.io").await;
    assert_eq!(looked.body["params"]["keys"]["domain"], "acme.io");
    assert_eq!(data(looked, 200)["id"], id.as_str());
    error(api.get("/companies/lookup?keys[domain]=nope").await, 404);
    error(api.get("/companies/lookup").await, 400);
    error(api.get("/companies/comp_missing").await, 404);

    data(
        api.post(
            "/companies",
            json!({"keys": {"id": "globex"}, "name": "Globex"}),
        )
        .await,
        200,
    );
    data(
        api.post(
            "/companies",
            json!({"keys": {"id": "initech"}, "name": "Initech"}),
        )
        .await,
        200,
    );

    // Newest first, offset pagination, search, ids filter.
    let list = api.get("/companies?limit=2").await;
    assert_eq!(list.body["params"]["limit"], 2);
    assert_eq!(list.body["params"]["offset"], 0);
    let list = data(list, 200);
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Initech", "Globex"]);
    let page2 = data(api.get("/companies?limit=2&offset=2").await, 200);
    assert_eq!(page2[0]["name"], "Acme");
    let found = api.get("/companies?q=GLOB").await;
    assert_eq!(found.body["params"]["q"], "GLOB");
    let found = data(found, 200);
    assert_eq!(found.as_array().unwrap().len(), 1);
    let by_key = data(api.get("/companies?q=acme.io").await, 200);
    assert_eq!(by_key[0]["id"], id.as_str());
    let by_ids = data(
        api.get(&format!("/companies?ids={id}&ids=comp_x")).await,
        200,
    );
    assert_eq!(by_ids.as_array().unwrap().len(), 1);
    assert_eq!(data(api.get("/companies/count").await, 200)["count"], 3);
    assert_eq!(
        data(api.get("/companies/count?q=acme").await, 200)["count"],
        1
    );
    error(api.get("/companies?limit=251").await, 400);
    error(api.get("/companies?offset=x").await, 400);

    // Delete by keys returns the company; delete by id returns deleted.
    let deleted = data(
        api.post("/companies/delete", json!({"keys": {"id": "globex"}}))
            .await,
        200,
    );
    assert_eq!(deleted["name"], "Globex");
    error(
        api.post("/companies/delete", json!({"keys": {"id": "globex"}}))
            .await,
        404,
    );
    let del = api
        .delete(&format!("/companies/{id}?cancel_subscription=true"))
        .await;
    assert_eq!(del.body["params"]["cancel_subscription"], true);
    assert_eq!(data(del, 200)["deleted"], true);
    error(api.delete(&format!("/companies/{id}")).await, 404);
    assert_eq!(data(api.get("/companies/count").await, 200)["count"], 1);
    assert!(server.company_by_key("domain", "acme.io").is_none());
    server.stop().await;
}

#[tokio::test]
async fn company_key_rules() {
    let server = MockServer::start().await.unwrap();
    let api = Api::rest(&server);
    let a = data(
        api.post("/companies", json!({"keys": {"id": "a", "slug": "a-inc"}}))
            .await,
        200,
    );
    let b = data(
        api.post("/companies", json!({"keys": {"id": "b"}})).await,
        200,
    );

    // update_only never creates.
    error(
        api.post(
            "/companies",
            json!({"keys": {"id": "zzz"}, "update_only": true}),
        )
        .await,
        404,
    );
    assert_eq!(server.companies().len(), 2);

    // create refuses existing keys, and answers 201 for new ones.
    error(
        api.post("/companies/create", json!({"keys": {"id": "a"}}))
            .await,
        409,
    );
    data(
        api.post("/companies/create", json!({"keys": {"id": "c"}}))
            .await,
        201,
    );

    // remove_keys drops a key, but a company keeps at least one.
    let a2 = data(
        api.post(
            "/companies",
            json!({"keys": {"id": "a"}, "remove_keys": ["slug"]}),
        )
        .await,
        200,
    );
    assert_eq!(a2["keys"].as_array().unwrap().len(), 1);
    assert!(server.company_by_key("slug", "a-inc").is_none());
    let msg = error(
        api.post(
            "/companies",
            json!({"keys": {"id": "a"}, "remove_keys": ["id"]}),
        )
        .await,
        400,
    );
    assert!(msg.contains("at least one key"), "{msg}");

    // A key owned by another company moves, unless prevent_key_remap.
    let msg = error(
        api.post(
            "/companies",
            json!({"keys": {"id": "b", "slug": "x"}, "id": a["id"], "prevent_key_remap": true}),
        )
        .await,
        409,
    );
    assert!(msg.contains("another company"), "{msg}");
    let moved = data(
        api.post("/companies", json!({"id": a["id"], "keys": {"id": "b"}}))
            .await,
        200,
    );
    assert_eq!(moved["id"], a["id"]);
    assert_eq!(server.company_by_key("id", "b").unwrap()["id"], a["id"]);
    let b_now = data(
        api.get(&format!("/companies/{}", b["id"].as_str().unwrap()))
            .await,
        200,
    );
    assert_eq!(b_now["keys"].as_array().unwrap().len(), 0);

    // Validation.
    error(api.post("/companies", json!({"keys": {}})).await, 400);
    error(
        api.post("/companies", json!({"name": "no keys"})).await,
        400,
    );
    error(
        api.post(
            "/companies",
            json!({"keys": {"id": "x"}, "name": "n".repeat(257)}),
        )
        .await,
        400,
    );
    error(
        api.post(
            "/companies",
            json!({"keys": {"id": "x"}, "last_seen_at": "yesterday"}),
        )
        .await,
        400,
    );
    error(api.post("/companies", json!({"keys": "x"})).await, 400);
    let too_many: serde_json::Map<String, serde_json::Value> =
        (0..101).map(|i| (format!("k{i}"), json!("v"))).collect();
    error(api.post("/companies", json!({"keys": too_many})).await, 400);
    error(api.send(http::Method::POST, "/companies", None).await, 400);
    server.stop().await;
}

#[tokio::test]
async fn users_and_memberships() {
    let server = MockServer::start().await.unwrap();
    let api = Api::rest(&server);
    let u = data(
        api.post(
            "/users",
            json!({"keys": {"email": "ann@acme.io"}, "name": "Ann", "company": {"id": "acme"}, "traits": {"role": "admin"}}),
        )
        .await,
        200,
    );
    let uid = u["id"].as_str().unwrap().to_owned();
    assert!(uid.starts_with("user_"));
    assert_eq!(u["company_memberships"].as_array().unwrap().len(), 1);
    let acme = server
        .company_by_key("id", "acme")
        .expect("company created for the membership");
    assert_eq!(acme["user_count"], 1);
    assert_eq!(u["company_memberships"][0]["company_id"], acme["id"]);

    // `companies` is exhaustive.
    let u2 = data(
        api.post(
            "/users",
            json!({"keys": {"email": "ann@acme.io"}, "companies": [{"id": "globex"}]}),
        )
        .await,
        200,
    );
    assert_eq!(u2["id"], uid.as_str());
    assert_eq!(u2["company_memberships"].as_array().unwrap().len(), 1);
    assert_eq!(
        server.company_by_key("id", "acme").unwrap()["user_count"],
        0
    );

    // company_id must exist.
    error(
        api.post(
            "/users",
            json!({"keys": {"email": "ann@acme.io"}, "company_id": "comp_nope"}),
        )
        .await,
        404,
    );
    let u3 = data(
        api.post(
            "/users",
            json!({"keys": {"email": "ann@acme.io"}, "company_id": acme["id"]}),
        )
        .await,
        200,
    );
    assert_eq!(u3["company_memberships"].as_array().unwrap().len(), 2);

    let globex_id = server.company_by_key("id", "globex").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let by_company = data(
        api.get(&format!("/users?company_id={globex_id}")).await,
        200,
    );
    assert_eq!(by_company.as_array().unwrap().len(), 1);
    assert_eq!(
        data(
            api.get(&format!("/users/count?company_id={globex_id}"))
                .await,
            200
        )["count"],
        1
    );
    data(
        api.post(
            "/users/create",
            json!({"keys": {"email": "bob@x.io"}, "name": "Bob"}),
        )
        .await,
        201,
    );
    error(
        api.post("/users/create", json!({"keys": {"email": "bob@x.io"}}))
            .await,
        409,
    );
    assert_eq!(data(api.get("/users/count").await, 200)["count"], 2);
    assert_eq!(data(api.get("/users?q=bob").await, 200)[0]["name"], "Bob");
    assert_eq!(
        data(api.get("/users/lookup?keys[email]=ann@acme.io").await, 200)["id"],
        uid.as_str()
    );

    // Memberships API.
    let ms = data(
        api.get(&format!("/company-memberships?user_id={uid}"))
            .await,
        200,
    );
    assert_eq!(ms.as_array().unwrap().len(), 2);
    let bob = server.user_by_key("email", "bob@x.io").unwrap();
    let m = data(
        api.post(
            "/company-memberships",
            json!({"company_id": globex_id, "user_id": bob["id"]}),
        )
        .await,
        200,
    );
    let again = data(
        api.post(
            "/company-memberships",
            json!({"company_id": globex_id, "user_id": bob["id"]}),
        )
        .await,
        200,
    );
    assert_eq!(m["id"], again["id"]);
    error(
        api.post(
            "/company-memberships",
            json!({"company_id": "comp_x", "user_id": bob["id"]}),
        )
        .await,
        404,
    );
    assert_eq!(
        data(
            api.delete(&format!(
                "/company-memberships/{}",
                m["id"].as_str().unwrap()
            ))
            .await,
            200
        )["deleted"],
        true
    );
    error(
        api.delete(&format!(
            "/company-memberships/{}",
            m["id"].as_str().unwrap()
        ))
        .await,
        404,
    );

    assert_eq!(
        data(
            api.post("/users/delete", json!({"keys": {"email": "bob@x.io"}}))
                .await,
            200
        )["name"],
        "Bob"
    );
    assert_eq!(
        data(api.delete(&format!("/users/{uid}")).await, 200)["deleted"],
        true
    );
    error(api.get(&format!("/users/{uid}")).await, 404);
    assert_eq!(
        data(
            api.get(&format!("/company-memberships?user_id={uid}"))
                .await,
            200
        )
        .as_array()
        .unwrap()
        .len(),
        0
    );
    server.stop().await;
}

#[tokio::test]
async fn traits_set_incr_and_definitions() {
    let server = MockServer::start().await.unwrap();
    let api = Api::rest(&server);
    // Without update_only the company is created.
    let c = data(
        api.post(
            "/company-traits",
            json!({"keys": {"id": "acme"}, "trait": "seats", "incr": 3}),
        )
        .await,
        200,
    );
    assert_eq!(c["traits"]["seats"], 3);
    let c = data(
        api.post(
            "/company-traits",
            json!({"keys": {"id": "acme"}, "trait": "seats", "incr": -1}),
        )
        .await,
        200,
    );
    assert_eq!(c["traits"]["seats"], 2);
    let c = data(
        api.post(
            "/company-traits",
            json!({"keys": {"id": "acme"}, "trait": "plan", "set": "pro"}),
        )
        .await,
        200,
    );
    assert_eq!(c["traits"]["plan"], "pro");
    error(
        api.post(
            "/company-traits",
            json!({"keys": {"id": "nope"}, "trait": "x", "set": "y", "update_only": true}),
        )
        .await,
        404,
    );
    error(
        api.post(
            "/company-traits",
            json!({"keys": {"id": "acme"}, "trait": "x"}),
        )
        .await,
        400,
    );
    error(
        api.post(
            "/company-traits",
            json!({"keys": {"id": "acme"}, "trait": "x", "set": "a", "incr": 1}),
        )
        .await,
        400,
    );
    error(
        api.post(
            "/company-traits",
            json!({"keys": {"id": "acme"}, "trait": "x", "set": "a".repeat(1025)}),
        )
        .await,
        400,
    );

    let u = data(
        api.post(
            "/user-traits",
            json!({"keys": {"email": "a@b.c"}, "trait": "logins", "incr": 1}),
        )
        .await,
        200,
    );
    assert_eq!(u["traits"]["logins"], 1);
    assert!(u["company_memberships"].is_array());

    let defs = data(
        api.get("/entity-trait-definitions?entity_type=company")
            .await,
        200,
    );
    let names: Vec<&str> = defs
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["hierarchy"][0].as_str().unwrap())
        .collect();
    assert_eq!(names, ["seats", "plan"]);
    assert_eq!(defs[0]["trait_type"], "number");
    assert_eq!(
        data(api.get("/entity-trait-definitions/count").await, 200)["count"],
        3
    );
    let def = data(
        api.post(
            "/entity-trait-definitions",
            json!({"entity_type": "company", "hierarchy": ["renewal"], "trait_type": "date"}),
        )
        .await,
        200,
    );
    let same = data(
        api.post(
            "/entity-trait-definitions",
            json!({"entity_type": "company", "hierarchy": ["renewal"], "trait_type": "date"}),
        )
        .await,
        200,
    );
    assert_eq!(def["id"], same["id"]);
    assert_eq!(
        data(
            api.get(&format!(
                "/entity-trait-definitions/{}",
                def["id"].as_str().unwrap()
            ))
            .await,
            200
        )["trait_type"],
        "date"
    );
    error(
        api.post(
            "/entity-trait-definitions",
            json!({"entity_type": "team", "hierarchy": ["x"], "trait_type": "date"}),
        )
        .await,
        400,
    );
    error(
        api.get("/entity-trait-definitions?entity_type=team").await,
        400,
    );
    server.stop().await;
}

#[tokio::test]
async fn api_key_is_required() {
    let server = MockServer::builder()
        .api_key("sch_dev_one")
        .api_key("sch_dev_two")
        .start()
        .await
        .unwrap();
    let api = Api::rest(&server);
    assert_eq!(server.api_keys(), ["sch_dev_one", "sch_dev_two"]);
    let msg = error(api.without_key().get("/companies").await, 401);
    assert!(msg.contains("API key"));
    error(
        Api::new(server.rest_url(), Some("sch_dev_wrong"))
            .get("/companies")
            .await,
        401,
    );
    data(
        Api::new(server.rest_url(), Some("sch_dev_two"))
            .get("/companies")
            .await,
        200,
    );
    // Unknown routes also need the key.
    error(api.without_key().get("/nope").await, 401);
    server.stop().await;
}
