//! End to end: the built `flagwire` binary against the emulator over real
//! loopback, every command's happy path, its JSON output, bad input and
//! failing APIs.

mod common;

use std::time::Duration;

use common::{Background, against, flagwire, run, run_against, temp_dir};
use flagwire_mock::{Fault, Host, MockServer};
use http::Method;
use serde_json::{Value, json};

fn flag(key: &str, default: bool) -> Value {
    json!({"key": key, "name": key, "description": "", "flag_type": "boolean",
           "default_value": default})
}

fn company_rule(company_id: &str) -> Value {
    json!([{"name": "acme only", "priority": 1, "value": true, "conditions": [
        {"condition_type": "company", "operator": "eq", "resource_ids": [company_id]}
    ], "condition_groups": []}])
}

// ---------------------------------------------------------------- usage

#[test]
fn bad_arguments_are_one_line_and_exit_2() {
    let r = run(flagwire().args(["check"]), b"");
    r.assert_one_line_error(2);
    assert!(r.stderr.contains("<FLAG>"), "{r:?}");

    let r = run(flagwire().args(["check", "beta", "--bogus"]), b"");
    r.assert_one_line_error(2);
    assert!(r.stderr.contains("--bogus"), "{r:?}");

    let r = run(flagwire().args(["frobnicate"]), b"");
    r.assert_one_line_error(2);

    // Values are checked by their parsers.
    let r = run(flagwire().args(["check", "beta", "--company", "acme"]), b"");
    r.assert_one_line_error(2);
    assert!(r.stderr.contains("key=value"), "{r:?}");
    let r = run(
        flagwire().args(["webhook", "listen", "--for", "3 parsecs"]),
        b"",
    );
    r.assert_one_line_error(2);

    // No API key anywhere: says how to give one, sends nothing.
    let r = run(
        flagwire().args(["check", "beta", "--company", "id=acme"]),
        b"",
    );
    r.assert_one_line_error(2);
    assert!(r.stderr.contains("SCHEMATIC_API_KEY"), "{r:?}");

    // Help and version are not errors.
    let r = run(flagwire().args(["--help"]), b"");
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("Exit status:") && r.stdout.contains("Examples:"));
    let r = run(flagwire().args(["check", "--help"]), b"");
    assert_eq!(r.code, 0);
    assert!(r.stdout.contains("--preflight"), "{r:?}");
    let r = run(flagwire().args(["--version"]), b"");
    assert_eq!(r.code, 0);
    assert!(r.stdout.starts_with("flagwire "), "{r:?}");
}

#[test]
fn a_closed_output_pipe_ends_quietly() {
    let mut child = flagwire()
        .args(["api", "--list", "--json"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let code = common::wait(&mut child, common::DEADLINE);
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert_eq!(code, 141, "{err}");
    assert!(err.is_empty(), "{err}");
}

#[test]
fn completions_are_generated() {
    let r = run(flagwire().args(["completions", "bash"]), b"");
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout.contains("_flagwire()"),
        "{}",
        &r.stdout[..200.min(r.stdout.len())]
    );
    assert!(r.stdout.contains("complete -F _flagwire"));
    assert!(r.stdout.contains("--preflight"));
    for shell in ["zsh", "fish"] {
        let r = run(flagwire().args(["completions", shell]), b"");
        assert_eq!(r.code, 0, "{r:?}");
        assert!(r.stdout.contains("webhook"), "{shell}");
    }
    run(flagwire().args(["completions", "tcsh"]), b"").assert_one_line_error(2);
}

#[test]
fn config_profiles_env_and_flags_with_secrets_redacted() {
    let dir = temp_dir("config");
    let path = dir.join("config.toml");
    std::fs::write(
        &path,
        "[profile.default]\napi_key = \"sch_default_secret\"\n\n[profile.local]\napi_key = \"sch_local_secret\"\napi_url = \"http://127.0.0.1:9\"\n",
    )
    .unwrap();
    let path_s = path.to_str().unwrap();

    let r = run(
        flagwire().args([
            "--config",
            path_s,
            "--profile",
            "local",
            "config",
            "show",
            "--json",
        ]),
        b"",
    );
    assert_eq!(r.code, 0, "{r:?}");
    let v = r.json();
    assert_eq!(v["profile"], "local");
    assert_eq!(v["settings"]["api_url"]["value"], "http://127.0.0.1:9");
    assert_eq!(v["settings"]["api_url"]["source"], "profile local");
    assert!(
        v["settings"]["api_key"]["value"]
            .as_str()
            .unwrap()
            .starts_with("<redacted")
    );
    assert!(
        !r.stdout.contains("sch_local"),
        "a secret was printed: {r:?}"
    );

    // The environment beats the profile, a flag beats both.
    let r = run(
        flagwire()
            .env("FLAGWIRE_CONFIG", path_s)
            .env("FLAGWIRE_PROFILE", "local")
            .env("SCHEMATIC_API_URL", "http://127.0.0.1:10")
            .args(["config", "show"]),
        b"",
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout
            .contains("http://127.0.0.1:10  (env SCHEMATIC_API_URL)"),
        "{r:?}"
    );
    assert!(!r.stdout.contains("sch_local_secret"));
    let r = run(
        flagwire()
            .env("SCHEMATIC_API_URL", "http://127.0.0.1:10")
            .args([
                "--config",
                path_s,
                "--api-url",
                "http://127.0.0.1:11",
                "config",
                "show",
                "--json",
            ]),
        b"",
    );
    let v = r.json();
    assert_eq!(v["settings"]["api_url"]["value"], "http://127.0.0.1:11");
    assert_eq!(v["settings"]["api_url"]["source"], "flag");
    assert_eq!(v["profile"], "default");

    // The default file is found under XDG_CONFIG_HOME.
    let home = temp_dir("xdg");
    std::fs::create_dir_all(home.join("flagwire")).unwrap();
    std::fs::copy(&path, home.join("flagwire/config.toml")).unwrap();
    let r = run(
        flagwire()
            .env("XDG_CONFIG_HOME", &home)
            .args(["config", "path"]),
        b"",
    );
    assert_eq!(
        r.stdout.trim(),
        home.join("flagwire/config.toml").to_str().unwrap()
    );

    // A missing profile or a broken file: usage errors, no secret echoed.
    let r = run(
        flagwire().args(["--config", path_s, "--profile", "prod", "config", "show"]),
        b"",
    );
    r.assert_one_line_error(2);
    assert!(r.stderr.contains("default, local"), "{r:?}");
    std::fs::write(&path, "[profile.x]\napi_key = \"sch_leak_me\n").unwrap();
    let r = run(flagwire().args(["--config", path_s, "config", "show"]), b"");
    r.assert_one_line_error(2);
    assert!(!r.stderr.contains("sch_leak_me"), "{r:?}");
    let _ = std::fs::remove_dir_all(dir);
    let _ = std::fs::remove_dir_all(home);
}

// ---------------------------------------------------------------- mock

#[test]
fn mock_prints_credentials_that_work() {
    let mut cmd = flagwire();
    cmd.args([
        "mock",
        "--port",
        "0",
        "--json",
        "--for",
        "30s",
        "--webhook-secret",
        "whsec_test",
    ]);
    let mock = Background::start(&mut cmd);
    let creds: Value = serde_json::from_str(&mock.line(Duration::from_secs(20))).unwrap();
    for key in [
        "SCHEMATIC_API_KEY",
        "SCHEMATIC_API_URL",
        "SCHEMATIC_CAPTURE_URL",
        "SCHEMATIC_DATASTREAM_URL",
        "SCHEMATIC_WEBHOOK_SECRET",
        "ESAUTI_API_URL",
        "ESAUTI_EVENTS_URL",
        "ESAUTI_API_KEY",
        "ESAUTI_HMAC_SECRET",
    ] {
        assert!(
            creds[key].as_str().is_some_and(|v| !v.is_empty()),
            "{key}: {creds}"
        );
    }
    assert_eq!(creds["SCHEMATIC_WEBHOOK_SECRET"], "whsec_test");
    assert!(
        creds["SCHEMATIC_DATASTREAM_URL"]
            .as_str()
            .unwrap()
            .starts_with("ws://127.0.0.1:")
    );

    // Every printed credential is what a client needs.
    let mut cmd = flagwire();
    for (k, v) in creds.as_object().unwrap() {
        cmd.env(k, v.as_str().unwrap());
    }
    let r = run(
        cmd.args([
            "api",
            "upsertCompany",
            "--body",
            r#"{"keys":{"id":"acme"},"name":"Acme"}"#,
        ]),
        b"",
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.json()["data"]["name"], "Acme");
    let mut cmd = flagwire();
    for (k, v) in creds.as_object().unwrap() {
        cmd.env(k, v.as_str().unwrap());
    }
    let r = run(cmd.args(["track", "api-call", "--company", "id=acme"]), b"");
    assert_eq!(r.code, 0, "{r:?}");
    let mut cmd = flagwire();
    for (k, v) in creds.as_object().unwrap() {
        cmd.env(k, v.as_str().unwrap());
    }
    let r = run(
        cmd.args(["api", "--service", "esauti", "listContacts"]),
        b"",
    );
    assert_eq!(r.code, 0, "{r:?}");
    drop(mock);

    // The shell form: KEY=value lines, `export` on request.
    let mut cmd = flagwire();
    cmd.args([
        "mock",
        "--port",
        "0",
        "--no-esauti",
        "--export",
        "--for",
        "200ms",
        "--api-key",
        "sch_dev_mine",
    ]);
    let mock = Background::start(&mut cmd);
    let first = mock.line(Duration::from_secs(20));
    assert_eq!(first, "export SCHEMATIC_API_KEY=sch_dev_mine");
    let (code, rest, _) = mock.finish(Duration::from_secs(20));
    assert_eq!(code, 0);
    assert_eq!(rest.len(), 4, "{rest:?}");
    assert!(
        rest.iter().all(|l| l.starts_with("export SCHEMATIC_")),
        "{rest:?}"
    );

    // A port in use is a clear failure.
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port().to_string();
    let r = run(
        flagwire().args([
            "mock",
            "--port",
            &port,
            "--capture-port",
            "0",
            "--for",
            "1s",
        ]),
        b"",
    );
    r.assert_one_line_error(1);
}

// ---------------------------------------------------------------- check

#[test]
fn check_prints_value_reason_rule_and_source() {
    let server = MockServer::start_blocking().unwrap();
    let acme = server
        .upsert_company(json!({"keys": {"id": "acme"}}))
        .unwrap();
    server.create_flag(flag("beta", false)).unwrap();
    server
        .set_flag_rules("beta", company_rule(acme["id"].as_str().unwrap()))
        .unwrap();

    let r = run_against(
        &server,
        &["check", "beta", "--company", "id=acme", "--json"],
    );
    assert_eq!(r.code, 0, "{r:?}");
    let v = r.json();
    assert_eq!(v["value"], true);
    assert_eq!(v["source"], "api");
    assert_eq!(v["company_id"], acme["id"]);
    assert!(v["rule_id"].is_string(), "{v}");
    assert!(v["reason"].as_str().is_some_and(|r| !r.is_empty()));

    let r = run_against(
        &server,
        &["check", "beta", "--company", "id=acme", "--explain"],
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.starts_with("beta: true\n"), "{r:?}");
    for label in ["reason:", "rule:", "source:", "company keys:", "flag id:"] {
        assert!(r.stdout.contains(label), "{label} missing: {r:?}");
    }
    // The flag's rules, the matched one marked.
    assert!(r.stdout.contains("1. acme only → true  ← matched"), "{r:?}");
    assert!(r.stdout.contains("    default → false"), "{r:?}");
    let r = run_against(
        &server,
        &[
            "check",
            "beta",
            "--company",
            "id=acme",
            "--explain",
            "--json",
        ],
    );
    let v = r.json();
    assert_eq!(v["explain"]["default_value"], false, "{v}");
    assert_eq!(v["explain"]["rules"][0]["matched"], true, "{v}");
    assert_eq!(v["explain"]["rules"][0]["name"], "acme only", "{v}");

    // Off is an answer, not an error; --exit-status makes it 5.
    let r = run_against(&server, &["check", "beta", "--company", "id=other"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.starts_with("beta: false"), "{r:?}");
    let r = run_against(
        &server,
        &["check", "beta", "--company", "id=other", "--exit-status"],
    );
    assert_eq!(r.code, 5, "{r:?}");
    assert!(r.stderr.is_empty(), "{r:?}");

    // Preflight is sent (and validated before any request).
    let r = run_against(
        &server,
        &[
            "check",
            "beta",
            "--company",
            "id=acme",
            "--preflight",
            "usage=3",
            "--json",
        ],
    );
    assert_eq!(r.code, 0, "{r:?}");
    let checks = server
        .requests()
        .into_iter()
        .filter(|q| q.path == "/flags/beta/check")
        .count();
    let r = run_against(&server, &["check", "beta", "--preflight", "usage=lots"]);
    r.assert_one_line_error(2);
    let r = run_against(&server, &["check", "beta", "--preflight", "speed=3"]);
    r.assert_one_line_error(2);
    let after = server
        .requests()
        .into_iter()
        .filter(|q| q.path == "/flags/beta/check")
        .count();
    assert_eq!(checks, after, "a bad preflight reached the API");
    server.stop();
}

#[test]
fn check_against_a_failing_api_exits_4() {
    let server = MockServer::start_blocking().unwrap();
    server.create_flag(flag("beta", true)).unwrap();
    server
        .inject(
            Host::Rest,
            Method::POST,
            "/flags/{key}/check",
            std::iter::repeat_n(Fault::status(503), 10),
        )
        .unwrap();
    let r = run_against(
        &server,
        &["check", "beta", "--company", "id=acme", "--json"],
    );
    assert_eq!(r.code, 4, "{r:?}");
    assert_eq!(r.json()["source"], "default", "{r:?}");
    assert!(r.stderr.starts_with("error: no answer for `beta`"), "{r:?}");
    assert_eq!(r.stderr.lines().count(), 1, "{r:?}");
    // Explicitly accepting defaults.
    server.clear_faults();
    server
        .inject(
            Host::Rest,
            Method::POST,
            "/flags/{key}/check",
            std::iter::repeat_n(Fault::status(503), 10),
        )
        .unwrap();
    let r = run_against(
        &server,
        &[
            "check",
            "beta",
            "--allow-default",
            "--default",
            "true",
            "--json",
        ],
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.json()["value"], true);
    server.stop();
}

#[test]
fn check_watch_prints_each_change_over_datastream() {
    let server = MockServer::start_blocking().unwrap();
    let acme = server
        .upsert_company(json!({"keys": {"id": "acme"}}))
        .unwrap();
    server.create_flag(flag("beta", false)).unwrap();
    let mut cmd = against(&server);
    cmd.args([
        "check",
        "beta",
        "--company",
        "id=acme",
        "--watch",
        "--for",
        "20s",
        "--json",
    ]);
    let watch = Background::start(&mut cmd);
    let first: Value = serde_json::from_str(&watch.line(Duration::from_secs(20))).unwrap();
    assert_eq!(first["value"], false, "{first}");
    assert_eq!(first["source"], "local", "{first}");
    // The rules change on the server: the watcher sees it without polling the API.
    server
        .set_flag_rules("beta", company_rule(acme["id"].as_str().unwrap()))
        .unwrap();
    let second: Value = serde_json::from_str(&watch.line(Duration::from_secs(20))).unwrap();
    assert_eq!(second["value"], true, "{second}");
    assert!(second["rule_id"].is_string(), "{second}");
    assert!(second["at"].is_string());
    let api_checks = server
        .requests()
        .into_iter()
        .filter(|q| q.path.starts_with("/flags/") && q.path.ends_with("/check"))
        .count();
    assert_eq!(api_checks, 0, "the watcher asked the API");
    drop(watch);
    server.stop();
}

// ---------------------------------------------------------------- events

#[test]
fn identify_and_track_wait_for_delivery() {
    let server = MockServer::start_blocking().unwrap();
    let r = run_against(
        &server,
        &[
            "identify",
            "--user",
            "email=ada@example.com",
            "--company",
            "id=acme",
            "--name",
            "Ada",
            "--trait",
            "plan=pro",
            "--trait",
            "seats:=5",
            "--json",
        ],
    );
    assert_eq!(r.code, 0, "{r:?}");
    let v = r.json();
    assert_eq!(
        (v["delivered"].as_bool(), v["sent"].as_u64()),
        (Some(true), Some(1)),
        "{v}"
    );
    let r = run_against(
        &server,
        &[
            "track",
            "api-call",
            "--company",
            "id=acme",
            "--quantity",
            "3",
        ],
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout
            .starts_with("track api-call: delivered (enqueued 1, sent 1"),
        "{r:?}"
    );
    let events = server.events();
    assert_eq!(events.len(), 2, "{events:?}");
    let user = server
        .user_by_key("email", "ada@example.com")
        .expect("identified");
    assert_eq!(user["traits"]["seats"], 5, "{user}");
    assert_eq!(user["traits"]["plan"], "pro");

    // Bad events are refused before anything is sent.
    run_against(&server, &["identify", "--company", "id=acme"]).assert_one_line_error(2);
    run_against(&server, &["track", "x", "--trait", "n:={"]).assert_one_line_error(2);
    assert_eq!(server.events().len(), 2);
    server.stop();
}

#[test]
fn undelivered_events_are_dead_lettered_then_replayed() {
    let server = MockServer::start_blocking().unwrap();
    let dir = temp_dir("deadletters");
    let file = dir.join("dead.jsonl");
    let file_s = file.to_str().unwrap();
    server
        .inject(
            Host::Capture,
            Method::POST,
            "/batch",
            std::iter::repeat_n(Fault::status(503), 200),
        )
        .unwrap();
    let r = run_against(
        &server,
        &[
            "track",
            "export",
            "--company",
            "id=acme",
            "--timeout",
            "2s",
            "--dead-letter",
            file_s,
            "--json",
        ],
    );
    assert_eq!(r.code, 1, "{r:?}");
    let v: Value = serde_json::from_str(r.stdout.lines().next().unwrap()).unwrap();
    assert_eq!(v["delivered"], false, "{v}");
    assert_eq!(v["dead_lettered"], 1, "{v}");
    assert!(r.stderr.contains("dead-lettered"), "{r:?}");
    assert!(
        r.stderr.lines().last().unwrap().starts_with("error: "),
        "{r:?}"
    );
    let letters = std::fs::read_to_string(&file).unwrap();
    assert_eq!(letters.lines().count(), 1, "{letters}");
    assert!(!letters.contains(server.api_key()), "the key was written");

    // Still failing: the letter stays and the exit says so.
    let r = run_against(&server, &["events", "replay", file_s]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr
            .starts_with("replaying 1 line(s) of Schematic dead letters"),
        "{r:?}"
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap().lines().count(), 1);

    server.clear_faults();
    let r = run_against(&server, &["events", "replay", file_s, "--json"]);
    assert_eq!(r.code, 0, "{r:?}");
    let v = r.json();
    assert_eq!(
        (
            v["read"].as_u64(),
            v["delivered"].as_u64(),
            v["remaining"].as_u64()
        ),
        (Some(1), Some(1), Some(0)),
        "{v}"
    );
    assert_eq!(v["kind"], "schematic");
    assert_eq!(server.events().len(), 1);
    assert_eq!(std::fs::read_to_string(&file).unwrap().trim(), "");

    // Not a file, or not letters: usage errors.
    run_against(
        &server,
        &["events", "replay", dir.join("none.jsonl").to_str().unwrap()],
    )
    .assert_one_line_error(2);
    let junk = dir.join("junk.jsonl");
    std::fs::write(&junk, "hello\n").unwrap();
    run_against(&server, &["events", "replay", junk.to_str().unwrap()]).assert_one_line_error(2);
    server.stop();
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn esauti_dead_letters_are_replayed() {
    use flagwire_core::esauti::EventType;
    use flagwire_mock::esauti::{DEFAULT_API_KEY, DEFAULT_HMAC_SECRET, EsautiServer};

    let server = EsautiServer::start_blocking().unwrap();
    let dir = temp_dir("esauti");
    let file = dir.join("dead.jsonl");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    server.set_events_down(true);
    runtime.block_on(async {
        let client = flagwire::esauti::Client::builder()
            .api_key(DEFAULT_API_KEY)
            .hmac_secret(DEFAULT_HMAC_SECRET)
            .rest_url(server.rest_url())
            .events_url(server.events_url())
            .max_retries(0)
            .dead_letter_file(&file)
            .build()
            .unwrap();
        let event = client
            .events()
            .event(EventType::OrderCreated)
            .customer_id("cus_1")
            .customer_field("email", "ann@example.com")
            .entity("order", "ord_9")
            .property("currency", "KES")
            .property("value", 12);
        client.events().send(event).await.unwrap_err();
    });
    assert_eq!(std::fs::read_to_string(&file).unwrap().lines().count(), 1);
    server.set_events_down(false);
    let r = run(
        flagwire()
            .env("ESAUTI_API_KEY", DEFAULT_API_KEY)
            .env("ESAUTI_HMAC_SECRET", DEFAULT_HMAC_SECRET)
            .env("ESAUTI_EVENTS_URL", server.events_url())
            .args(["events", "replay", file.to_str().unwrap(), "--json"]),
        b"",
    );
    assert_eq!(r.code, 0, "{r:?}");
    let v = r.json();
    assert_eq!(v["kind"], "esauti");
    assert_eq!(
        (v["delivered"].as_u64(), v["remaining"].as_u64()),
        (Some(1), Some(0)),
        "{v}"
    );
    assert_eq!(server.events().len(), 1);
    server.stop();
    let _ = std::fs::remove_dir_all(dir);
}

// ---------------------------------------------------------------- api

#[test]
fn api_calls_any_operation_and_checks_input_first() {
    let server = MockServer::start_blocking().unwrap();
    let r = run_against(
        &server,
        &[
            "api",
            "upsertCompany",
            "--body",
            r#"{"keys":{"id":"acme"},"name":"Acme"}"#,
        ],
    );
    assert_eq!(r.code, 0, "{r:?}");
    let id = r.json()["data"]["id"].as_str().unwrap().to_owned();

    let r = run_against(
        &server,
        &["api", "getCompany", "--param", &format!("company_id={id}")],
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.json()["data"]["name"], "Acme");
    let r = run_against(&server, &["api", "lookupCompany", "-p", "keys.id=acme"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.json()["data"]["id"], id.as_str());

    // Bodies from a file and from standard input.
    let dir = temp_dir("api");
    let body = dir.join("body.json");
    std::fs::write(&body, r#"{"keys":{"id":"globex"},"name":"Globex"}"#).unwrap();
    let r = run_against(
        &server,
        &[
            "api",
            "upsertCompany",
            "--body",
            &format!("@{}", body.display()),
        ],
    );
    assert_eq!(r.code, 0, "{r:?}");
    let r = run(
        against(&server).args(["api", "upsertCompany", "--body", "-"]),
        br#"{"keys":{"id":"initech"}}"#,
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(server.companies().len(), 3);

    // Checked before any request: nothing reaches the server.
    let before = server.requests().len();
    let r = run_against(&server, &["api", "getCompny"]);
    r.assert_one_line_error(2);
    assert!(r.stderr.contains("did you mean getCompany"), "{r:?}");
    let r = run_against(&server, &["api", "getCompany"]);
    r.assert_one_line_error(2);
    assert!(r.stderr.contains("`company_id`"), "{r:?}");
    run_against(
        &server,
        &["api", "getCompany", "-p", "company_id=x", "-p", "bogus=1"],
    )
    .assert_one_line_error(2);
    run_against(&server, &["api", "upsertCompany", "--body", "{not json"]).assert_one_line_error(2);
    run_against(&server, &["api", "upsertCompany"]).assert_one_line_error(2);
    run_against(&server, &["api", "listCompanies", "--body", "{}"]).assert_one_line_error(2);
    run_against(
        &server,
        &["api", "getCompany", "-p", "company_id=x", "--all"],
    )
    .assert_one_line_error(2);
    assert_eq!(
        server.requests().len(),
        before,
        "a bad call reached the server"
    );

    // API errors exit 4 with the API's message.
    let r = run_against(
        &server,
        &["api", "getCompany", "-p", "company_id=comp_missing"],
    );
    r.assert_one_line_error(4);
    assert!(r.stderr.contains("404"), "{r:?}");
    server
        .inject(
            Host::Rest,
            Method::GET,
            "/companies",
            std::iter::repeat_n(Fault::status(500), 10),
        )
        .unwrap();
    let r = run_against(&server, &["api", "listCompanies"]);
    r.assert_one_line_error(4);
    server.clear_faults();

    // Unreachable: exit 4 too.
    let r = run(
        flagwire()
            .env("SCHEMATIC_API_KEY", "sch_dev_x")
            .env("SCHEMATIC_API_URL", "http://127.0.0.1:9")
            .args(["api", "listCompanies", "--timeout", "2s"]),
        b"",
    );
    r.assert_one_line_error(4);

    // The list, filtered.
    let r = run(flagwire().args(["api", "--list", "compan", "--json"]), b"");
    assert_eq!(r.code, 0, "{r:?}");
    let ops = r.json();
    assert!(
        ops.as_array()
            .unwrap()
            .iter()
            .any(|o| o["id"] == "listCompanies" && o["pages"] == true)
    );
    let _ = std::fs::remove_dir_all(dir);
    server.stop();
}

#[test]
fn api_all_pages_through_list_operations() {
    let server = MockServer::start_blocking().unwrap();
    for i in 0..7 {
        server
            .upsert_company(json!({"keys": {"id": format!("c{i}")}, "name": format!("C{i}")}))
            .unwrap();
    }
    let r = run_against(
        &server,
        &[
            "api",
            "listCompanies",
            "--all",
            "--page-size",
            "3",
            "--json",
        ],
    );
    assert_eq!(r.code, 0, "{r:?}");
    let items = r.json();
    assert_eq!(items.as_array().unwrap().len(), 7, "{items}");
    let pages = server
        .requests()
        .into_iter()
        .filter(|q| q.path == "/companies")
        .count();
    assert_eq!(pages, 3);
    server.stop();
}

// ---------------------------------------------------------------- webhooks

#[test]
fn webhook_sign_then_verify_for_every_scheme() {
    let body = br#"{"event":"test"}"#;
    // The published Schematic test vector.
    let r = run(
        flagwire().args([
            "webhook",
            "sign",
            "--scheme",
            "schematic",
            "--secret",
            "test-secret",
            "--timestamp",
            "1609459200",
        ]),
        body,
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        r.stdout,
        "x-schematic-webhook-signature: 698efb567d886c51002192c79ba46a8ec5735ab1f1976eedb041cf2375b4fb90\nx-schematic-webhook-timestamp: 1609459200\n"
    );

    for (scheme, secret) in [
        ("schematic", "s3cret"),
        ("standard", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
        ("stripe", "whsec_x"),
        ("github", "hush"),
        ("flagsmith", "fs"),
        ("esauti", "es"),
    ] {
        let r = run(
            flagwire().args([
                "webhook", "sign", "--scheme", scheme, "--secret", secret, "--json",
            ]),
            body,
        );
        assert_eq!(r.code, 0, "{scheme}: {r:?}");
        let headers = r.json();
        let mut args: Vec<String> = ["webhook", "verify", "--scheme", scheme, "--secret", secret]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        for (k, v) in headers.as_object().unwrap() {
            args.push("--header".into());
            args.push(format!("{k}: {}", v.as_str().unwrap()));
        }
        let r = run(flagwire().args(&args), body);
        assert_eq!(r.code, 0, "{scheme}: {r:?}");
        assert!(r.stdout.starts_with("verified"), "{r:?}");
        // A changed body does not verify: exit 3 with the reason.
        let r = run(flagwire().args(&args), br#"{"event":"tesT"}"#);
        r.assert_one_line_error(3);
        assert!(r.stderr.contains("verification failed"), "{r:?}");
    }

    // JSON out; an old timestamp is refused unless its age is ignored.
    let args = [
        "webhook",
        "verify",
        "--scheme",
        "schematic",
        "--secret",
        "test-secret",
        "--json",
        "-H",
        "X-Schematic-Webhook-Signature: 698efb567d886c51002192c79ba46a8ec5735ab1f1976eedb041cf2375b4fb90",
        "-H",
        "X-Schematic-Webhook-Timestamp: 1609459200",
    ];
    let r = run(flagwire().args(args), body);
    assert_eq!(r.code, 3, "{r:?}");
    assert_eq!(r.json()["verified"], false);
    let r = run(flagwire().args(args).arg("--ignore-age"), body);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.json()["timestamp"], 1_609_459_200);

    // No secret, a bad header, an unusable Standard Webhooks secret.
    run(
        flagwire().args(["webhook", "sign", "--scheme", "github"]),
        body,
    )
    .assert_one_line_error(2);
    run(
        flagwire().args([
            "webhook", "verify", "--scheme", "github", "--secret", "x", "-H", "nocolon",
        ]),
        body,
    )
    .assert_one_line_error(2);
    run(
        flagwire().args([
            "webhook", "sign", "--scheme", "standard", "--secret", "whsec_!!",
        ]),
        body,
    )
    .assert_one_line_error(2);
    // The secret from the environment.
    let r = run(
        flagwire()
            .env("SCHEMATIC_WEBHOOK_SECRET", "test-secret")
            .args([
                "webhook",
                "sign",
                "--scheme",
                "schematic",
                "--timestamp",
                "1609459200",
            ]),
        body,
    );
    assert!(r.stdout.contains("698efb567d886c51"), "{r:?}");
}

#[test]
fn webhook_send_to_listen_round_trip() {
    let mut cmd = flagwire();
    cmd.args([
        "webhook",
        "listen",
        "--port",
        "0",
        "--scheme",
        "schematic",
        "--secret",
        "whsec_rt",
        "--count",
        "2",
        "--for",
        "30s",
        "--json",
    ]);
    let listen = Background::start(&mut cmd);
    let hello: Value = serde_json::from_str(&listen.line(Duration::from_secs(20))).unwrap();
    let url = format!("{}hooks/schematic", hello["listening"].as_str().unwrap());
    assert_eq!(hello["verifying"], true);

    let r = run(
        flagwire().args([
            "webhook",
            "send",
            "--to",
            &url,
            "--scheme",
            "schematic",
            "--secret",
            "whsec_rt",
            "--event",
            "company.updated",
            "--json",
        ]),
        b"",
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.json()["status"], 200);
    let got: Value = serde_json::from_str(&listen.line(Duration::from_secs(20))).unwrap();
    assert_eq!(got["verified"], true, "{got}");
    assert_eq!(got["path"], "/hooks/schematic");
    assert_eq!(got["body"]["action"], "company.updated");

    // A wrong secret: the receiver answers 400 (send exits 4) and exits 3.
    let r = run(
        flagwire().args(["webhook", "send", "--to", &url, "--secret", "whsec_wrong"]),
        b"",
    );
    r.assert_one_line_error(4);
    assert!(r.stderr.contains("400"), "{r:?}");
    let (code, rest, err) = listen.finish(Duration::from_secs(20));
    assert_eq!(code, 3, "{rest:?} {err}");
    let got: Value = serde_json::from_str(&rest[0]).unwrap();
    assert_eq!(got["verified"], false);
    assert!(
        got["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{got}"
    );

    // Other schemes, with a body from a file.
    let dir = temp_dir("send");
    let body = dir.join("push.json");
    std::fs::write(&body, r#"{"ref":"refs/heads/main"}"#).unwrap();
    let mut cmd = flagwire();
    cmd.args([
        "webhook", "listen", "--port", "0", "--scheme", "github", "--secret", "gh", "--count", "1",
        "--for", "30s",
    ]);
    let listen = Background::start(&mut cmd);
    let hello = listen.line(Duration::from_secs(20));
    let url = hello
        .strip_prefix("listening on ")
        .and_then(|s| s.split(' ').next())
        .unwrap()
        .to_owned();
    let r = run(
        flagwire().args([
            "webhook",
            "send",
            "--to",
            &url,
            "--scheme",
            "github",
            "--secret",
            "gh",
            "--body",
            &format!("@{}", body.display()),
        ]),
        b"",
    );
    assert_eq!(r.code, 0, "{r:?}");
    let (code, rest, _) = listen.finish(Duration::from_secs(20));
    assert_eq!(code, 0);
    assert!(rest.iter().any(|l| l.contains("verified")), "{rest:?}");
    assert!(
        rest.iter().any(|l| l.contains("refs/heads/main")),
        "{rest:?}"
    );

    // Forwarding: send → listen (verify, pass on) → listen (verify again).
    let mut cmd = flagwire();
    cmd.args([
        "webhook", "listen", "--port", "0", "--secret", "whsec_fw", "--count", "1", "--for", "30s",
        "--json",
    ]);
    let target = Background::start(&mut cmd);
    let hello: Value = serde_json::from_str(&target.line(Duration::from_secs(20))).unwrap();
    let target_url = format!("{}app/hook", hello["listening"].as_str().unwrap());
    let mut cmd = flagwire();
    cmd.args([
        "webhook",
        "listen",
        "--port",
        "0",
        "--secret",
        "whsec_fw",
        "--count",
        "1",
        "--for",
        "30s",
        "--json",
        "--forward-to",
        &target_url,
    ]);
    let relay = Background::start(&mut cmd);
    let hello: Value = serde_json::from_str(&relay.line(Duration::from_secs(20))).unwrap();
    let relay_url = hello["listening"].as_str().unwrap().to_owned();
    let r = run(
        flagwire().args([
            "webhook", "send", "--to", &relay_url, "--secret", "whsec_fw", "--json",
        ]),
        b"",
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.json()["status"], 200);
    let (code, rest, err) = relay.finish(Duration::from_secs(20));
    assert_eq!(code, 0, "{err}");
    let got: Value = serde_json::from_str(&rest[0]).unwrap();
    assert_eq!(got["forwarded"]["status"], 200, "{got}");
    let (code, rest, err) = target.finish(Duration::from_secs(20));
    assert_eq!(code, 0, "{err}");
    let got: Value = serde_json::from_str(&rest[0]).unwrap();
    assert_eq!(
        (got["verified"].as_bool(), got["path"].as_str()),
        (Some(true), Some("/app/hook")),
        "{got}"
    );

    // Nobody listening: exit 4.
    let r = run(
        flagwire().args([
            "webhook",
            "send",
            "--to",
            "http://127.0.0.1:9/hook",
            "--secret",
            "x",
            "--timeout",
            "2s",
        ]),
        b"",
    );
    r.assert_one_line_error(4);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn the_emulator_delivers_signed_webhooks_to_listen() {
    let server = MockServer::builder()
        .webhook_secret("whsec_e2e")
        .start_blocking()
        .unwrap();
    let mut cmd = against(&server);
    cmd.env("SCHEMATIC_WEBHOOK_SECRET", "whsec_e2e").args([
        "webhook", "listen", "--port", "0", "--count", "1", "--for", "30s", "--json",
    ]);
    let listen = Background::start(&mut cmd);
    let hello: Value = serde_json::from_str(&listen.line(Duration::from_secs(20))).unwrap();
    let url = format!("{}hook", hello["listening"].as_str().unwrap());
    let body = json!({"name": "local", "url": url, "request_types": ["company.created"]});
    let r = run_against(
        &server,
        &["api", "createWebhook", "--body", &body.to_string()],
    );
    assert_eq!(r.code, 0, "{r:?}");
    let r = run_against(
        &server,
        &[
            "api",
            "upsertCompany",
            "--body",
            r#"{"keys":{"id":"acme"},"name":"Acme"}"#,
        ],
    );
    assert_eq!(r.code, 0, "{r:?}");
    let (code, rest, err) = listen.finish(Duration::from_secs(30));
    assert_eq!(code, 0, "{rest:?} {err}");
    let got: Value = serde_json::from_str(&rest[0]).unwrap();
    assert_eq!(got["verified"], true, "{got}");
    assert_eq!(got["body"]["action"], "company.created", "{got}");
    assert_eq!(got["body"]["body"]["name"], "Acme", "{got}");
    server.stop();
}

#[test]
fn api_all_pages_through_esauti_lists() {
    use flagwire_mock::esauti::{DEFAULT_API_KEY, EsautiServer};

    let server = EsautiServer::start_blocking().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client = flagwire::esauti::Client::builder()
            .api_key(DEFAULT_API_KEY)
            .rest_url(server.rest_url())
            .build()
            .unwrap();
        for i in 0..5 {
            let email = format!("c{i}@example.com");
            client
                .contacts()
                .create([("email", email.as_str())])
                .await
                .unwrap();
        }
    });
    let r = run(
        flagwire()
            .env("ESAUTI_API_KEY", DEFAULT_API_KEY)
            .env("ESAUTI_API_URL", server.rest_url())
            .args([
                "api",
                "--service",
                "esauti",
                "listContacts",
                "--all",
                "--page-size",
                "2",
                "--json",
            ]),
        b"",
    );
    assert_eq!(r.code, 0, "{r:?}");
    let v = r.json();
    let contacts = v["contacts"].as_object().expect("the merged contacts");
    assert_eq!(contacts.len(), 5, "{v}");
    assert_eq!(
        v["total"]
            .as_u64()
            .or_else(|| v["total"].as_str()?.parse().ok()),
        Some(5),
        "{v}"
    );
    // Three pages of at most two were asked for.
    let lists = server
        .requests()
        .iter()
        .filter(|r| r.method == "GET" && r.path == "/api/contacts")
        .count();
    assert_eq!(lists, 3);
}
