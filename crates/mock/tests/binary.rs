//! The `flagwire-mock` binary serves seeded state and prints its URLs.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::{Api, data};

/// Kills the child when the test ends, even on failure.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn binary_prints_urls_and_serves_the_seed() {
    let seed = std::env::temp_dir().join(format!("flagwire-mock-seed-{}.json", std::process::id()));
    std::fs::write(
        &seed,
        r#"{"companies": [{"keys": {"id": "acme"}, "name": "Acme"}]}"#,
    )
    .unwrap();
    let mut child = Child(
        Command::new(env!("CARGO_BIN_EXE_flagwire-mock"))
            .args(["--port", "0", "--api-key", "sch_dev_bin", "--seed"])
            .arg(&seed)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let stdout = child.0.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let mut url = |prefix: &str| -> String {
        let line = lines.next().unwrap().unwrap();
        line.strip_prefix(prefix)
            .unwrap_or_else(|| panic!("unexpected line {line:?}"))
            .trim()
            .to_owned()
    };
    let rest = url("REST API:");
    let capture = url("Capture host:");
    assert!(rest.starts_with("http://127.0.0.1:") && capture.starts_with("http://127.0.0.1:"));
    assert_ne!(rest, capture);
    let datastream = url("DataStream:");
    assert_eq!(
        datastream,
        format!("{}/datastream", rest.replacen("http://", "ws://", 1))
    );

    let api = Api::new(rest, Some("sch_dev_bin"));
    let company = data(api.get("/companies/lookup?keys[id]=acme").await, 200);
    assert_eq!(company["name"], "Acme");
    let _ = std::fs::remove_file(&seed);

    let bad = Command::new(env!("CARGO_BIN_EXE_flagwire-mock"))
        .args(["--port", "nope"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert_eq!(bad.code(), Some(2));
}
