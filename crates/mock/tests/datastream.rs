//! The DataStream WebSocket over real loopback: handshake and auth,
//! snapshots, pushed changes, stream ids, replay, fault switches and the
//! replicator health document. Every wait is bounded.

mod common;

use std::time::Duration;

use common::{Api, data};
use flagwire_core::rules::{PreparedCompany, RulesEngine};
use flagwire_mock::{Fault, HandshakeOutcome, Host, MockServer};
use futures_util::{SinkExt, StreamExt};
use http::Method;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::error::Error as WsError;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Bytes, Message};
use tokio_tungstenite::{WebSocketStream, client_async_with_config};

type Ws = WebSocketStream<TcpStream>;

/// Upper bound for anything that should happen promptly.
const WAIT: Duration = Duration::from_secs(10);

async fn connect_with(
    server: &MockServer,
    key: Option<&str>,
    config: Option<WebSocketConfig>,
) -> Result<Ws, WsError> {
    let mut req = server.datastream_url().into_client_request()?;
    let headers = req.headers_mut();
    if let Some(key) = key {
        headers.insert("x-schematic-api-key", key.parse().unwrap());
    }
    headers.insert("x-schematic-datastream-mode", "direct".parse().unwrap());
    headers.insert("x-schematic-client", "flagwire-tests".parse().unwrap());
    headers.insert("x-schematic-client-version", "0.1.0".parse().unwrap());
    let tcp = TcpStream::connect(server.rest_addr()).await?;
    let (ws, _) = timeout(WAIT, client_async_with_config(req, tcp, config))
        .await
        .expect("handshake timed out")?;
    Ok(ws)
}

async fn connect(server: &MockServer) -> Ws {
    connect_with(server, Some(server.api_key()), None)
        .await
        .unwrap()
}

fn start(entity_type: &str, keys: Option<Value>, replay_from: Option<&str>) -> Value {
    let mut data = json!({"action": "start", "entity_type": entity_type});
    if let Some(keys) = keys {
        data["keys"] = keys;
    }
    if let Some(cursor) = replay_from {
        data["replay_from"] = json!(cursor);
    }
    json!({ "data": data })
}

async fn send(ws: &mut Ws, request: Value) {
    ws.send(Message::text(request.to_string())).await.unwrap();
}

/// The next frame other than a ping or pong.
async fn next_frame(ws: &mut Ws) -> Message {
    loop {
        let frame = timeout(WAIT, ws.next())
            .await
            .expect("no message in time")
            .expect("the stream ended")
            .expect("read failed");
        if !matches!(frame, Message::Ping(_) | Message::Pong(_)) {
            return frame;
        }
    }
}

/// The next message, parsed.
async fn recv(ws: &mut Ws) -> Value {
    match next_frame(ws).await {
        Message::Text(text) => serde_json::from_str(&text).unwrap(),
        other => panic!("expected a text message, got {other:?}"),
    }
}

/// Asserts that no message arrives for `period`.
async fn quiet(ws: &mut Ws, period: Duration) {
    if let Ok(Some(frame)) = timeout(period, ws.next()).await {
        panic!("unexpected frame: {frame:?}");
    }
}

/// Reads until the connection ends; the close frame, if one came.
async fn close_frame(ws: &mut Ws) -> Option<CloseFrame> {
    loop {
        match timeout(WAIT, ws.next()).await.expect("not closed in time") {
            Some(Ok(Message::Close(frame))) => return frame,
            Some(Ok(_)) => {}
            Some(Err(_)) | None => return None,
        }
    }
}

fn stream_id(message: &Value) -> (u64, u64) {
    let id = message["stream_id"]
        .as_str()
        .unwrap_or_else(|| panic!("no stream_id: {message}"));
    let (ms, seq) = id.split_once('-').unwrap();
    (ms.parse().unwrap(), seq.parse().unwrap())
}

fn flag(key: &str) -> Value {
    json!({"key": key, "name": key, "description": "", "flag_type": "boolean", "default_value": false})
}

fn trait_rule(trait_id: &Value, value: &str) -> Value {
    json!({"rules": [{"name": "big", "priority": 1, "value": true, "rule_type": "standard",
        "conditions": [{"condition_type": "trait", "operator": "gte", "resource_ids": [],
                        "trait_id": trait_id, "trait_value": value}],
        "condition_groups": []}]})
}

/// The ID of the company trait definition named `name`.
async fn trait_id(api: &Api, name: &str) -> Value {
    let defs = data(api.get("/entity-trait-definitions").await, 200);
    defs.as_array()
        .unwrap()
        .iter()
        .find(|d| d["hierarchy"][0] == name && d["entity_type"] == "company")
        .unwrap_or_else(|| panic!("no trait definition {name}: {defs}"))["id"]
        .clone()
}

#[tokio::test]
async fn handshake_is_recorded_and_a_bad_key_is_closed_with_4001() {
    let server = MockServer::start().await.unwrap();
    for key in [Some("sch_wrong"), None] {
        let mut ws = connect_with(&server, key, None).await.unwrap();
        let frame = close_frame(&mut ws).await.expect("a close frame");
        assert_eq!(u16::from(frame.code), 4001);
    }
    let _ws = connect(&server).await;
    assert_eq!(server.wait_for_datastream_connections(1, WAIT).await, 1);

    let handshakes = server.datastream_handshakes();
    let outcomes: Vec<_> = handshakes.iter().map(|h| h.outcome).collect();
    assert_eq!(
        outcomes,
        [
            HandshakeOutcome::Unauthorized,
            HandshakeOutcome::Unauthorized,
            HandshakeOutcome::Accepted
        ]
    );
    let h = &handshakes[2];
    assert_eq!(h.mode.as_deref(), Some("direct"));
    assert_eq!(h.client.as_deref(), Some("flagwire-tests"));
    assert_eq!(h.client_version.as_deref(), Some("0.1.0"));
    assert!(!format!("{handshakes:?}").contains(server.api_key()));
    let recorded = server.requests();
    let upgrade = recorded.iter().find(|r| r.path == "/datastream").unwrap();
    assert_eq!(upgrade.status, 101);
    assert_eq!(
        upgrade.headers["x-schematic-api-key"],
        flagwire_mock::REDACTED
    );
}

#[tokio::test]
async fn flags_snapshot_evaluates_like_rest() {
    let server = MockServer::start().await.unwrap();
    let api = Api::rest(&server);
    data(
        api.post(
            "/companies",
            json!({"keys": {"id": "acme"}, "traits": {"seats": 12}}),
        )
        .await,
        200,
    );
    let seats = trait_id(&api, "seats").await;
    let big = data(api.post("/flags", flag("big")).await, 201);
    data(api.post("/flags", flag("plain")).await, 201);
    data(
        api.put(
            &format!("/flags/{}/rules", big["id"].as_str().unwrap()),
            trait_rule(&seats, "10"),
        )
        .await,
        200,
    );

    let mut ws = connect(&server).await;
    // Every spelling of "start" works: "start", missing and "" (Go).
    for request in [
        start("rulesengine.Flags", None, None),
        json!({"data": {"entity_type": "rulesengine.Flags"}}),
        json!({"data": {"action": "", "entity_type": "rulesengine.Flags"}}),
    ] {
        send(&mut ws, request).await;
        let msg = recv(&mut ws).await;
        assert_eq!(msg["entity_type"], "rulesengine.Flags");
        assert_eq!(msg["message_type"], "full");
        assert!(
            msg.get("stream_id").is_none(),
            "snapshots carry no stream id"
        );
        let flags = msg["data"].as_array().unwrap();
        assert_eq!(flags.len(), 2);
        assert_eq!(flags[0]["key"], "big");
        assert_eq!(flags[0]["default_value"], false);
        assert_eq!(flags[0]["rules"][0]["rule_type"], "standard");
        assert_eq!(
            flags[0]["rules"][0]["conditions"][0]["condition_type"],
            "trait"
        );
    }

    send(
        &mut ws,
        start("rulesengine.Company", Some(json!({"id": "acme"})), None),
    )
    .await;
    let company = recv(&mut ws).await;
    assert_eq!(company["entity_type"], "rulesengine.Company");
    assert_eq!(company["message_type"], "full");
    assert!(company.get("stream_id").is_none());
    assert_eq!(company["entity_id"], company["data"]["id"]);
    assert_eq!(company["data"]["keys"], json!({"id": "acme"}));

    // A client evaluating these models locally gets the REST verdict.
    send(&mut ws, start("rulesengine.Flags", None, None)).await;
    let flags = recv(&mut ws).await["data"].to_string();
    let engine = RulesEngine::from_json(&flags).unwrap();
    let acme = PreparedCompany::from_json(&company["data"].to_string()).unwrap();
    let now = time::OffsetDateTime::now_utc();
    for key in ["big", "plain"] {
        let local = engine.check(key, Some(&acme), None, now);
        let remote = data(
            api.post(
                &format!("/flags/{key}/check"),
                json!({"company": {"id": "acme"}}),
            )
            .await,
            200,
        );
        assert_eq!(remote["value"], local.value, "{key}");
        assert_eq!(remote["reason"], local.reason.to_string(), "{key}");
    }
    server.stop().await;
}

#[tokio::test]
async fn entities_by_keys_and_errors_for_unknown_keys() {
    let server = MockServer::start().await.unwrap();
    server
        .upsert_user(json!({"keys": {"email": "ann@acme.io"}, "traits": {"tier": "gold"}}))
        .unwrap();
    let mut ws = connect(&server).await;

    for (entity_type, keys) in [
        ("rulesengine.Company", json!({"id": "ghost"})),
        ("rulesengine.User", json!({"email": "nobody@acme.io"})),
    ] {
        send(&mut ws, start(entity_type, Some(keys.clone()), None)).await;
        let msg = recv(&mut ws).await;
        assert_eq!(msg["message_type"], "error", "{msg}");
        assert_eq!(msg["entity_type"], entity_type);
        assert_eq!(msg["data"]["keys"], keys);
        assert_eq!(msg["data"]["entity_type"], entity_type);
        assert!(msg["data"]["error"].as_str().unwrap().contains("no "));
    }

    send(
        &mut ws,
        start(
            "rulesengine.User",
            Some(json!({"email": "ann@acme.io"})),
            None,
        ),
    )
    .await;
    let user = recv(&mut ws).await;
    assert_eq!(user["message_type"], "full");
    assert_eq!(user["entity_type"], "rulesengine.User");
    assert_eq!(user["data"]["keys"], json!({"email": "ann@acme.io"}));
    assert_eq!(user["data"]["traits"][0]["value"], "gold");

    // A user change through the REST traits route arrives as a partial.
    let api = Api::rest(&server);
    let r = api
        .post(
            "/user-traits",
            json!({"keys": {"email": "ann@acme.io"}, "trait": "tier", "set": "platinum"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let partial = recv(&mut ws).await;
    assert_eq!(partial["entity_type"], "rulesengine.User");
    assert_eq!(partial["message_type"], "partial");
    assert_eq!(partial["entity_id"], user["entity_id"]);
    assert_eq!(partial["data"].as_object().unwrap().len(), 1, "{partial}");
    assert_eq!(partial["data"]["traits"][0]["value"], "platinum");
    server.stop().await;
}

#[tokio::test]
async fn rest_changes_push_partials_with_only_the_changed_fields() {
    let server = MockServer::start().await.unwrap();
    let api = Api::rest(&server);
    data(
        api.post(
            "/companies",
            json!({"keys": {"id": "acme"}, "traits": {"seats": 3}}),
        )
        .await,
        200,
    );
    let mut ws = connect(&server).await;
    send(
        &mut ws,
        start("rulesengine.Company", Some(json!({"id": "acme"})), None),
    )
    .await;
    let full = recv(&mut ws).await;
    let entity_id = full["entity_id"].as_str().unwrap().to_owned();

    data(
        api.post(
            "/companies",
            json!({"keys": {"id": "acme"}, "traits": {"seats": 4}}),
        )
        .await,
        200,
    );
    let partial = recv(&mut ws).await;
    assert_eq!(partial["entity_type"], "rulesengine.Company");
    assert_eq!(partial["message_type"], "partial");
    assert_eq!(partial["entity_id"], entity_id.as_str());
    stream_id(&partial);
    let fields: Vec<&String> = partial["data"].as_object().unwrap().keys().collect();
    assert_eq!(fields, ["traits"]);
    assert_eq!(partial["data"]["traits"][0]["value"], "4");

    // A new key is merged by clients: a partial with the whole key map.
    data(
        api.post(
            "/companies",
            json!({"keys": {"id": "acme", "slug": "acme-inc"}}),
        )
        .await,
        200,
    );
    let partial = recv(&mut ws).await;
    assert_eq!(partial["message_type"], "partial");
    assert_eq!(
        partial["data"],
        json!({"keys": {"id": "acme", "slug": "acme-inc"}})
    );

    // Removing a key cannot be expressed as a merge: the whole company.
    data(
        api.post(
            "/companies",
            json!({"keys": {"id": "acme"}, "remove_keys": ["slug"]}),
        )
        .await,
        200,
    );
    let full = recv(&mut ws).await;
    assert_eq!(full["message_type"], "full");
    assert_eq!(full["data"]["keys"], json!({"id": "acme"}));
    stream_id(&full);

    // Changes outside the rules model (the name) push nothing.
    data(
        api.post(
            "/companies",
            json!({"keys": {"id": "acme"}, "name": "Acme Inc"}),
        )
        .await,
        200,
    );
    quiet(&mut ws, Duration::from_millis(300)).await;

    // Delete: the id and keys.
    let r = api.delete(&format!("/companies/{entity_id}")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let deleted = recv(&mut ws).await;
    assert_eq!(deleted["message_type"], "delete");
    assert_eq!(deleted["entity_id"], entity_id.as_str());
    assert_eq!(
        deleted["data"],
        json!({"id": entity_id, "keys": {"id": "acme"}})
    );
    server.stop().await;
}

#[tokio::test]
async fn captured_track_events_push_metric_partials() {
    let server = MockServer::start().await.unwrap();
    server
        .upsert_company(json!({"keys": {"id": "acme"}}))
        .unwrap();
    let mut ws = connect(&server).await;
    send(
        &mut ws,
        start("rulesengine.Company", Some(json!({"id": "acme"})), None),
    )
    .await;
    assert_eq!(recv(&mut ws).await["message_type"], "full");

    let key = server.api_key().to_owned();
    let r = Api::capture(&server)
        .post(
            "/batch",
            json!({"events": [{"api_key": key, "type": "track", "body": {
                "event": "api-call", "company": {"id": "acme"}, "quantity": 3}}]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let partial = recv(&mut ws).await;
    assert_eq!(partial["message_type"], "partial");
    let fields: Vec<&String> = partial["data"].as_object().unwrap().keys().collect();
    assert_eq!(fields, ["metrics"]);
    let metrics = partial["data"]["metrics"].as_array().unwrap();
    let month = metrics
        .iter()
        .find(|m| m["period"] == "current_month" && m["month_reset"] == "first_of_month")
        .unwrap();
    assert_eq!(month["event_subtype"], "api-call");
    assert_eq!(month["value"], 3);

    // The same through POST /events and the seeding helper.
    let r = Api::rest(&server)
        .post(
            "/events",
            json!({"event_type": "track", "body": {"event": "api-call", "company": {"id": "acme"}}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let partial = recv(&mut ws).await;
    assert_eq!(partial["data"]["metrics"][0]["value"], 4);
    server.track(&[("id", "acme")], "api-call", 6).unwrap();
    let partial = recv(&mut ws).await;
    assert_eq!(partial["data"]["metrics"][0]["value"], 10);
    server.stop().await;
}

#[tokio::test]
async fn flag_changes_push_flag_messages_and_stop_unsubscribes() {
    let server = MockServer::start().await.unwrap();
    let api = Api::rest(&server);
    let mut ws = connect(&server).await;
    send(&mut ws, start("rulesengine.Flags", None, None)).await;
    assert_eq!(recv(&mut ws).await["data"], json!([]));

    let f = data(api.post("/flags", flag("beta")).await, 201);
    let id = f["id"].as_str().unwrap();
    let created = recv(&mut ws).await;
    assert_eq!(created["entity_type"], "rulesengine.Flag");
    assert_eq!(created["message_type"], "full");
    assert!(created.get("entity_id").is_none());
    assert_eq!(created["data"]["key"], "beta");
    assert_eq!(created["data"]["rules"], json!([]));

    data(
        api.put(
            &format!("/flags/{id}/rules"),
            json!({"rules": [{"name": "all", "priority": 1, "value": true, "rule_type": "global_override",
                              "conditions": [], "condition_groups": []}]}),
        )
        .await,
        200,
    );
    let changed = recv(&mut ws).await;
    assert_eq!(changed["message_type"], "full");
    assert_eq!(changed["data"]["rules"][0]["rule_type"], "global_override");
    assert!(stream_id(&changed) > stream_id(&created));

    // Renaming the key deletes the old key before sending the new one.
    let mut renamed = flag("beta-2");
    renamed["id"] = json!(id);
    let r = api.put(&format!("/flags/{id}"), renamed).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let old = recv(&mut ws).await;
    assert_eq!(
        (old["message_type"].as_str(), old["data"]["key"].as_str()),
        (Some("delete"), Some("beta"))
    );
    let new = recv(&mut ws).await;
    assert_eq!(
        (new["message_type"].as_str(), new["data"]["key"].as_str()),
        (Some("full"), Some("beta-2"))
    );

    assert_eq!(api.delete(&format!("/flags/{id}")).await.status, 200);
    let deleted = recv(&mut ws).await;
    assert_eq!(deleted["entity_type"], "rulesengine.Flag");
    assert_eq!(deleted["message_type"], "delete");
    assert_eq!(deleted["data"]["id"], id);
    assert_eq!(deleted["data"]["key"], "beta-2");

    send(
        &mut ws,
        json!({"data": {"action": "stop", "entity_type": "rulesengine.Flags"}}),
    )
    .await;
    // The stop is handled before the next request on this connection.
    send(
        &mut ws,
        start("rulesengine.Company", Some(json!({"id": "x"})), None),
    )
    .await;
    assert_eq!(recv(&mut ws).await["message_type"], "error");
    data(api.post("/flags", flag("gamma")).await, 201);
    quiet(&mut ws, Duration::from_millis(300)).await;
    server.stop().await;
}

#[tokio::test]
async fn stream_ids_strictly_increase_across_entities() {
    let server = MockServer::start().await.unwrap();
    let mut ws = connect(&server).await;
    for t in [
        "rulesengine.Companies",
        "rulesengine.Users",
        "rulesengine.Flags",
    ] {
        send(&mut ws, start(t, None, None)).await;
        let msg = recv(&mut ws).await;
        assert_eq!(msg["entity_type"], t);
        assert_eq!(msg["message_type"], "full");
        assert!(msg.get("stream_id").is_none());
    }
    for i in 0..40 {
        match i % 3 {
            0 => {
                server
                    .upsert_company(json!({"keys": {"id": format!("c{i}")}}))
                    .unwrap();
            }
            1 => {
                server
                    .upsert_user(json!({"keys": {"id": format!("u{i}")}, "traits": {"n": i}}))
                    .unwrap();
            }
            _ => {
                server.create_flag(flag(&format!("f{i}"))).unwrap();
            }
        }
    }
    let mut last = (0, 0);
    let mut kinds = std::collections::BTreeSet::new();
    for _ in 0..40 {
        let msg = recv(&mut ws).await;
        assert_eq!(
            msg["message_type"], "full",
            "new entities arrive whole: {msg}"
        );
        kinds.insert(msg["entity_type"].as_str().unwrap().to_owned());
        let id = stream_id(&msg);
        assert!(id > last, "{id:?} after {last:?}");
        last = id;
    }
    assert_eq!(kinds.len(), 3);
    server.stop().await;
}

/// Makes one change of each kind; returns how many messages a replicator
/// subscribed to everything gets for them.
async fn churn(server: &MockServer, api: &Api, round: usize) -> usize {
    server
        .upsert_company(json!({"keys": {"id": "acme"}, "traits": {"round": round}}))
        .unwrap();
    server
        .upsert_user(json!({"keys": {"id": format!("user-{round}")}}))
        .unwrap();
    server.track(&[("id", "acme")], "api-call", 1).unwrap();
    data(
        api.post("/flags", flag(&format!("flag-{round}"))).await,
        201,
    );
    4
}

#[tokio::test]
async fn replay_from_within_the_log_replays_exactly_what_was_missed() {
    let server = MockServer::start().await.unwrap();
    let api = Api::rest(&server);
    let everything = [
        "rulesengine.Companies",
        "rulesengine.Users",
        "rulesengine.Flags",
    ];
    // A witness stays connected throughout and sees every change.
    let mut witness = connect(&server).await;
    let mut client = connect(&server).await;
    for ws in [&mut witness, &mut client] {
        for t in everything {
            send(ws, start(t, None, None)).await;
            recv(ws).await;
        }
    }
    let n = churn(&server, &api, 0).await;
    let mut cursor = String::new();
    for _ in 0..n {
        recv(&mut witness).await;
        cursor = recv(&mut client).await["stream_id"]
            .as_str()
            .unwrap()
            .to_owned();
    }
    drop(client);

    // Missed while disconnected, ending with a marker flag.
    let mut missed = Vec::new();
    let mut expected = 0;
    for round in 1..4 {
        expected += churn(&server, &api, round).await;
    }
    let marker = data(api.post("/flags", flag("marker")).await, 201);
    expected += 1;
    for _ in 0..expected {
        missed.push(recv(&mut witness).await);
    }
    assert_eq!(missed.last().unwrap()["data"]["id"], marker["id"]);

    let mut client = connect(&server).await;
    let mut replayed = Vec::new();
    let count = |t: &str| missed.iter().filter(|m| m["entity_type"] == t).count();
    for (request, item) in [
        ("rulesengine.Companies", "rulesengine.Company"),
        ("rulesengine.Users", "rulesengine.User"),
        ("rulesengine.Flags", "rulesengine.Flag"),
    ] {
        send(&mut client, start(request, None, Some(&cursor))).await;
        if request != "rulesengine.Flags" {
            let confirmation = recv(&mut client).await;
            assert_eq!(confirmation["entity_type"], request);
            assert!(confirmation.get("stream_id").is_none());
        }
        let mut last = (0, 0);
        for _ in 0..count(item) {
            let msg = recv(&mut client).await;
            assert_eq!(msg["entity_type"], item, "{msg}");
            assert!(stream_id(&msg) > last, "each replay is in stream order");
            last = stream_id(&msg);
            replayed.push(msg);
        }
        if request == "rulesengine.Flags" {
            let snapshot = recv(&mut client).await;
            assert_eq!(
                snapshot["entity_type"], request,
                "the snapshot ends the answer"
            );
            assert!(snapshot.get("stream_id").is_none());
        }
    }
    assert_eq!(count("rulesengine.Company"), 6);
    assert_eq!(count("rulesengine.User"), 3);
    assert_eq!(count("rulesengine.Flag"), 4);
    // Exactly the missed messages: no gaps, no duplicates.
    replayed.sort_by_key(stream_id);
    assert_eq!(replayed, missed);
    quiet(&mut client, Duration::from_millis(200)).await;

    // Then live, once.
    churn(&server, &api, 9).await;
    for _ in 0..4 {
        assert_eq!(recv(&mut witness).await, recv(&mut client).await);
    }
    quiet(&mut client, Duration::from_millis(200)).await;
    server.stop().await;
}

#[tokio::test]
async fn cursors_outside_the_log_get_reload() {
    let server = MockServer::builder()
        .replay_log_capacity(3)
        .start()
        .await
        .unwrap();
    let mut ws = connect(&server).await;
    send(&mut ws, start("rulesengine.Flags", None, None)).await;
    recv(&mut ws).await;
    let mut ids = Vec::new();
    for i in 0..6 {
        server.create_flag(flag(&format!("f{i}"))).unwrap();
        ids.push(
            recv(&mut ws).await["stream_id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }

    // Within the log (3 kept: the cursor may be the newest one dropped).
    let mut resumed = connect(&server).await;
    send(
        &mut resumed,
        start("rulesengine.Flags", None, Some(&ids[2])),
    )
    .await;
    for id in &ids[3..] {
        let msg = recv(&mut resumed).await;
        assert_eq!(msg["stream_id"], id.as_str());
    }
    assert_eq!(recv(&mut resumed).await["entity_type"], "rulesengine.Flags");
    // The same connection asking again has nothing left to replay.
    send(
        &mut resumed,
        start("rulesengine.Flags", None, Some(&ids[2])),
    )
    .await;
    assert_eq!(recv(&mut resumed).await["entity_type"], "rulesengine.Flags");

    // Older than the log, unknown, malformed: reload, then the snapshot.
    for cursor in [ids[1].as_str(), "1-0", "not-an-id"] {
        let mut other = connect(&server).await;
        send(&mut other, start("rulesengine.Flags", None, Some(cursor))).await;
        assert_eq!(
            recv(&mut other).await,
            json!({"entity_type": "rulesengine.Flags", "message_type": "reload"})
        );
        let snapshot = recv(&mut other).await;
        assert_eq!(snapshot["data"].as_array().unwrap().len(), 6);
    }

    // Trimming forgets everything, even the newest cursor.
    server.datastream_trim_replay_log();
    send(&mut ws, start("rulesengine.Companies", None, Some(&ids[5]))).await;
    assert_eq!(recv(&mut ws).await["entity_type"], "rulesengine.Companies");
    assert_eq!(
        recv(&mut ws).await,
        json!({"entity_type": "rulesengine.Companies", "message_type": "reload"})
    );
    server.stop().await;
}

#[tokio::test]
async fn direct_entity_requests_with_replay_from_replay_then_send_the_entity() {
    let server = MockServer::start().await.unwrap();
    server
        .upsert_company(json!({"keys": {"id": "acme"}, "traits": {"n": 0}}))
        .unwrap();
    let mut ws = connect(&server).await;
    send(
        &mut ws,
        start("rulesengine.Company", Some(json!({"id": "acme"})), None),
    )
    .await;
    recv(&mut ws).await;
    server
        .upsert_company(json!({"keys": {"id": "acme"}, "traits": {"n": 1}}))
        .unwrap();
    let cursor = recv(&mut ws).await["stream_id"]
        .as_str()
        .unwrap()
        .to_owned();
    drop(ws);
    server
        .upsert_company(json!({"keys": {"id": "acme"}, "traits": {"n": 2}}))
        .unwrap();
    server
        .upsert_company(json!({"keys": {"id": "other"}, "traits": {"n": 2}}))
        .unwrap();

    let mut ws = connect(&server).await;
    send(
        &mut ws,
        start(
            "rulesengine.Company",
            Some(json!({"id": "acme"})),
            Some(&cursor),
        ),
    )
    .await;
    let replayed = recv(&mut ws).await;
    assert_eq!(replayed["message_type"], "partial");
    assert_eq!(replayed["data"]["traits"][0]["value"], "2");
    let full = recv(&mut ws).await;
    assert_eq!(full["message_type"], "full");
    assert!(full.get("stream_id").is_none());
    quiet(&mut ws, Duration::from_millis(200)).await;
    server.stop().await;
}

#[tokio::test]
async fn malformed_and_oversized_client_messages() {
    let server = MockServer::start().await.unwrap();
    let mut ws = connect(&server).await;
    ws.send(Message::text("{oops")).await.unwrap();
    let err = recv(&mut ws).await;
    assert_eq!(err["message_type"], "error");
    assert!(
        err["data"]["error"]
            .as_str()
            .unwrap()
            .starts_with("invalid JSON")
    );
    send(
        &mut ws,
        json!({"data": {"entity_type": "rulesengine.Plans"}}),
    )
    .await;
    let err = recv(&mut ws).await;
    assert_eq!(err["entity_type"], "rulesengine.Plans");
    assert!(
        err["data"]["error"]
            .as_str()
            .unwrap()
            .contains("unknown entity_type")
    );

    // The connection is still usable, binary frames included.
    let request = start("rulesengine.Flags", None, None).to_string();
    ws.send(Message::binary(Bytes::from(request)))
        .await
        .unwrap();
    assert_eq!(recv(&mut ws).await["entity_type"], "rulesengine.Flags");
    ws.send(Message::Ping(Bytes::from_static(b"hi")))
        .await
        .unwrap();
    let pong = timeout(WAIT, async {
        loop {
            if let Some(Ok(Message::Pong(payload))) = ws.next().await {
                return payload;
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(&pong[..], b"hi");

    ws.send(Message::binary(Bytes::from_static(&[0xff, 0xfe])))
        .await
        .unwrap();
    let err = recv(&mut ws).await;
    assert_eq!(err["data"]["error"], "binary frames must hold UTF-8 JSON");

    let requests = server.datastream_requests();
    assert_eq!(requests.len(), 4);
    assert_eq!(requests[0], json!("{oops"));
    assert_eq!(requests[1]["data"]["entity_type"], "rulesengine.Plans");
    assert_eq!(requests[2]["data"]["entity_type"], "rulesengine.Flags");

    // Client messages are limited to 1 MiB: larger ones close with 1009.
    let big = format!("{{\"pad\":\"{}\"}}", "x".repeat(1 << 20));
    ws.send(Message::text(big)).await.unwrap();
    let frame = close_frame(&mut ws).await.expect("a close frame");
    assert_eq!(u16::from(frame.code), 1009);
    assert_eq!(server.wait_for_datastream_connections(0, WAIT).await, 0);
    server.stop().await;
}

#[tokio::test]
async fn drop_and_close_switches() {
    let server = MockServer::start().await.unwrap();
    let mut a = connect(&server).await;
    let mut b = connect(&server).await;
    assert_eq!(server.wait_for_datastream_connections(2, WAIT).await, 2);
    // A stall of any length ends when the socket is dropped.
    assert_eq!(server.datastream_stall(Duration::MAX), 2);
    assert_eq!(server.datastream_drop_connections(), 2);
    assert_eq!(server.datastream_connections(), 0);
    for ws in [&mut a, &mut b] {
        assert!(
            close_frame(ws).await.is_none(),
            "dropped without a close frame"
        );
    }

    let mut c = connect(&server).await;
    assert_eq!(server.wait_for_datastream_connections(1, WAIT).await, 1);
    assert!(server.datastream_close_all(1005, "").is_err());
    assert!(server.datastream_close_all(4000, &"r".repeat(124)).is_err());
    assert_eq!(server.datastream_close_all(4000, "maintenance").unwrap(), 1);
    let frame = close_frame(&mut c).await.expect("a close frame");
    assert_eq!(u16::from(frame.code), 4000);
    assert_eq!(frame.reason.as_str(), "maintenance");

    // A close from the client is answered and ends the connection.
    let mut e = connect(&server).await;
    assert_eq!(server.wait_for_datastream_connections(1, WAIT).await, 1);
    e.close(Some(CloseFrame {
        code: 1000.into(),
        reason: "bye".into(),
    }))
    .await
    .unwrap();
    let answer = close_frame(&mut e).await.expect("the close is answered");
    assert_eq!(u16::from(answer.code), 1000);
    assert_eq!(server.wait_for_datastream_connections(0, WAIT).await, 0);

    // Stopping the server closes sockets with 1001.
    let mut d = connect(&server).await;
    assert_eq!(server.wait_for_datastream_connections(1, WAIT).await, 1);
    server.stop().await;
    let frame = close_frame(&mut d).await.expect("a close frame");
    assert_eq!(u16::from(frame.code), 1001);
}

#[tokio::test]
async fn stall_holds_pongs_and_messages_without_blocking_rest() {
    let server = MockServer::start().await.unwrap();
    let api = Api::rest(&server);
    let mut ws = connect(&server).await;
    send(&mut ws, start("rulesengine.Flags", None, None)).await;
    recv(&mut ws).await;

    let stall = Duration::from_millis(1000);
    let t0 = Instant::now();
    assert_eq!(server.datastream_stall(stall), 1);
    ws.send(Message::Ping(Bytes::from_static(b"p")))
        .await
        .unwrap();
    data(api.post("/flags", flag("during-stall")).await, 201);
    let rest_done = t0.elapsed();

    let (mut pong, mut flag_full) = (false, false);
    let mut first = None;
    while !(pong && flag_full) {
        let frame = timeout(WAIT, ws.next()).await.unwrap().unwrap().unwrap();
        first.get_or_insert(t0.elapsed());
        match frame {
            Message::Pong(_) => pong = true,
            Message::Text(text) => {
                let msg: Value = serde_json::from_str(&text).unwrap();
                assert_eq!(msg["data"]["key"], "during-stall");
                flag_full = true;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    let first = first.unwrap();
    assert!(
        first >= stall - Duration::from_millis(50),
        "first frame after {first:?}"
    );
    assert!(
        rest_done < first,
        "REST answered during the stall ({rest_done:?})"
    );
    server.stop().await;
}

#[tokio::test]
async fn raw_frames_of_any_size_reach_every_socket() {
    let server = MockServer::start().await.unwrap();
    let unlimited = WebSocketConfig::default()
        .max_message_size(None)
        .max_frame_size(None);
    let mut ws = connect_with(&server, Some(server.api_key()), Some(unlimited))
        .await
        .unwrap();
    let mut other = connect(&server).await;
    assert_eq!(server.wait_for_datastream_connections(2, WAIT).await, 2);

    assert_eq!(server.datastream_send_raw("{not json"), 2);
    for ws in [&mut ws, &mut other] {
        assert_eq!(next_frame(ws).await, Message::text("{not json"));
    }

    // 100 MiB in one frame: the server's own frames are not limited.
    let size = 100 << 20;
    assert_eq!(server.datastream_send_raw("a".repeat(size)), 2);
    match next_frame(&mut ws).await {
        Message::Text(text) => assert_eq!(text.len(), size),
        other => panic!("unexpected {other:?}"),
    }
    server.stop().await;
}

#[tokio::test]
async fn refused_upgrades_answer_503_then_recover() {
    let server = MockServer::start().await.unwrap();
    server.datastream_refuse_upgrades(2);
    for _ in 0..2 {
        match connect_with(&server, Some(server.api_key()), None).await {
            Err(WsError::Http(resp)) => assert_eq!(resp.status(), 503),
            other => panic!("expected a 503, got {other:?}"),
        }
    }
    let _ws = connect(&server).await;
    let outcomes: Vec<_> = server
        .datastream_handshakes()
        .iter()
        .map(|h| h.outcome)
        .collect();
    assert_eq!(
        outcomes,
        [
            HandshakeOutcome::Refused,
            HandshakeOutcome::Refused,
            HandshakeOutcome::Accepted
        ]
    );

    // Scripted faults apply to the upgrade route as to any other.
    server
        .inject(Host::Rest, Method::GET, "/datastream", [Fault::status(429)])
        .unwrap();
    match connect_with(&server, Some(server.api_key()), None).await {
        Err(WsError::Http(resp)) => assert_eq!(resp.status(), 429),
        other => panic!("expected a 429, got {other:?}"),
    }

    // A plain GET is told to upgrade.
    let r = Api::rest(&server).get("/datastream").await;
    assert_eq!(r.status, 426);
    assert_eq!(r.headers["upgrade"], "websocket");
    server.stop().await;
}

#[tokio::test]
async fn a_client_that_stops_reading_does_not_block_rest() {
    let server = MockServer::start().await.unwrap();
    let api = Api::rest(&server);
    server
        .upsert_company(json!({"keys": {"id": "acme"}}))
        .unwrap();
    let mut ws = connect(&server).await;
    send(&mut ws, start("rulesengine.Flags", None, None)).await;
    send(
        &mut ws,
        start("rulesengine.Company", Some(json!({"id": "acme"})), None),
    )
    .await;
    recv(&mut ws).await;
    recv(&mut ws).await;

    // 64 MiB queued for a client that reads nothing fills every buffer on
    // the way and blocks the socket's writer.
    let chunk = "z".repeat(1 << 20);
    for _ in 0..64 {
        server.datastream_send_raw(chunk.clone());
    }
    let started = Instant::now();
    for i in 0..20 {
        let t = timeout(WAIT, async {
            data(
                api.post(
                    "/companies",
                    json!({"keys": {"id": "acme"}, "traits": {"i": i}}),
                )
                .await,
                200,
            );
            data(api.post("/flags", flag(&format!("slow-{i}"))).await, 201);
            data(api.post("/flags/slow-0/check", json!({})).await, 200);
        })
        .await;
        assert!(t.is_ok(), "REST blocked behind a slow socket");
    }
    let rest_time = started.elapsed();

    // Everything still arrives, in order, once the client reads.
    for _ in 0..64 {
        assert!(matches!(next_frame(&mut ws).await, Message::Text(t) if t.len() == 1 << 20));
    }
    let mut flags = 0;
    let mut partials = 0;
    while flags < 20 || partials < 20 {
        let msg = recv(&mut ws).await;
        match msg["entity_type"].as_str() {
            Some("rulesengine.Flag") => flags += 1,
            Some("rulesengine.Company") => partials += 1,
            _ => panic!("unexpected {msg}"),
        }
    }
    assert!(rest_time < WAIT, "{rest_time:?}");
    server.stop().await;
}

#[tokio::test]
async fn reset_sends_deletes_to_subscribers() {
    let server = MockServer::start().await.unwrap();
    server
        .upsert_company(json!({"keys": {"id": "acme"}}))
        .unwrap();
    server.create_flag(flag("beta")).unwrap();
    let mut ws = connect(&server).await;
    send(&mut ws, start("rulesengine.Flags", None, None)).await;
    send(
        &mut ws,
        start("rulesengine.Company", Some(json!({"id": "acme"})), None),
    )
    .await;
    recv(&mut ws).await;
    recv(&mut ws).await;
    server.reset();
    let first = recv(&mut ws).await;
    let second = recv(&mut ws).await;
    assert_eq!(
        (
            first["entity_type"].as_str(),
            first["message_type"].as_str()
        ),
        (Some("rulesengine.Flag"), Some("delete"))
    );
    assert_eq!(
        (
            second["entity_type"].as_str(),
            second["message_type"].as_str()
        ),
        (Some("rulesengine.Company"), Some("delete"))
    );
    assert!(server.datastream_requests().is_empty());
    server.stop().await;
}

#[tokio::test]
async fn ready_document_for_replicator_mode() {
    let server = MockServer::builder()
        .cache_version("14269364")
        .start()
        .await
        .unwrap();
    let api = Api::rest(&server).without_key();
    let r = api.get("/ready").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["status"], "ok");
    assert_eq!(r.body["ready"], true);
    assert_eq!(r.body["connected"], true);
    assert_eq!(r.body["components"], json!({"datastream": "ok"}));
    assert_eq!(r.body["cache_version"], "14269364");
    assert!(r.body["timestamp"].as_str().unwrap().ends_with('Z'));

    server.set_replicator_ready(false);
    let r = api.get("/ready").await;
    assert_eq!(r.status, 503);
    assert_eq!(
        (r.body["ready"].clone(), r.body["connected"].clone()),
        (json!(false), json!(false))
    );
    server.set_replicator_ready(true);
    assert_eq!(api.get("/ready").await.status, 200);
    server.stop().await;
}

#[test]
fn the_blocking_server_mirrors_the_switches() {
    let server = MockServer::start_blocking().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _ws = runtime.block_on(async { connect(&server).await });
    assert_eq!(server.wait_for_datastream_connections(1, WAIT), 1);
    assert_eq!(server.datastream_drop_connections(), 1);
    assert_eq!(server.wait_for_datastream_connections(0, WAIT), 0);
    server.stop();
}
