//! The examples are programs that check their own answers; these tests run
//! them, so that an example that no longer works fails the test suite.
//!
//! * The Flagsmith example is compiled in here and its parts are called
//!   directly: the manual signature check against signed, tampered,
//!   unsigned and wrongly keyed deliveries, and the endpoint over loopback.
//! * Every example under `examples/` (the Flagsmith one included) is run as
//!   its own program with `cargo run --example`, which exits non-zero when an
//!   answer is not the expected one. Each runs in a process of its own
//!   because the examples install a global `tracing` subscriber.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use flagwire_webhooks::{Flagsmith, Signer};

#[path = "../examples/flagsmith.rs"]
mod flagsmith;

#[test]
fn the_flagsmith_manual_check_accepts_only_what_the_secret_signed() {
    let body = flagsmith::PAYLOAD;
    let signed = Signer::<Flagsmith>::new(flagsmith::SECRET)
        .unwrap()
        .sign(body)
        .to_header_map()
        .unwrap();
    assert!(flagsmith::validate_signature(body, &signed));

    let mut tampered = body.to_vec();
    tampered[0] = b' ';
    assert!(!flagsmith::validate_signature(&tampered, &signed));
    assert!(!flagsmith::validate_signature(
        body,
        &http::HeaderMap::new()
    ));

    let other = Signer::<Flagsmith>::new("another secret")
        .unwrap()
        .sign(body)
        .to_header_map()
        .unwrap();
    assert!(!flagsmith::validate_signature(body, &other));
}

#[tokio::test]
async fn the_flagsmith_endpoint_answers_only_verified_payloads() {
    let statuses = flagsmith::run().await.unwrap();
    assert_eq!(statuses, [200, 400, 400]);
}

#[test]
fn the_flagsmith_payload_is_the_documented_shape() {
    let payload: flagwire_webhooks::payload::flagsmith::IdentityFlags =
        serde_json::from_slice(flagsmith::PAYLOAD).unwrap();
    assert_eq!(payload.identity, "ann@example.com");
    assert_eq!(payload.flags.len(), 2);
    assert!(payload.flags[0].enabled && !payload.flags[1].enabled);
    assert_eq!(payload.segments.len(), 1);
    assert_eq!(payload.traits[1].trait_value, 12);
}

/// The Python snippet on Flagsmith's page is 8 lines (non-blank,
/// non-comment); the counterpart must not be longer, and its comment must
/// say how long it is.
#[test]
fn the_flagsmith_port_is_no_longer_than_the_python() {
    let source = include_str!("../examples/flagsmith.rs");
    let lines: Vec<&str> = source.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.starts_with("pub fn validate_signature("))
        .expect("validate_signature is in the example");
    assert_eq!(lines[at - 1], "// Python: 8 lines, here: 2");
    let body = lines[at + 1..]
        .iter()
        .take_while(|l| **l != "}")
        .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with("//"))
        .count();
    assert_eq!(body, 2);
    assert!(body <= 8);

    // The guide shows it as written.
    let end = at + lines[at..].iter().position(|l| *l == "}").unwrap();
    let function = lines[at - 1..=end].join("\n");
    assert!(include_str!("../../../docs/python.md").contains(&function));
}

/// Runs `cargo run --example <name>` for this crate, with a deadline.
fn run_example(name: &str) -> Result<(), String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut child = Command::new(cargo)
        .args(["run", "--quiet", "--offline", "-p", "flagwire-webhooks"])
        .args(["--example", name])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start cargo: {e}"))?;
    // Building the example may take a while on a busy machine.
    let deadline = Instant::now() + Duration::from_secs(900);
    loop {
        match child.try_wait().map_err(|e| e.to_string())? {
            Some(_) => break,
            None if Instant::now() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("example `{name}` did not finish in time"));
            }
            None => std::thread::sleep(Duration::from_millis(100)),
        }
    }
    let output = child.wait_with_output().map_err(|e| e.to_string())?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "example `{name}` failed ({}):\n{}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

#[test]
fn every_example_runs_and_gets_the_answers_it_expects() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|entry| {
            let path = entry.ok()?.path();
            (path.extension()? == "rs").then(|| path.file_stem()?.to_str().map(str::to_owned))?
        })
        .collect();
    names.sort();
    for expected in ["axum_extractor", "axum_verify", "flagsmith", "tower_layer"] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} in {names:?}"
        );
    }
    let failures: Vec<String> = names.iter().filter_map(|n| run_example(n).err()).collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
