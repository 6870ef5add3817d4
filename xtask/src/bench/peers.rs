//! `cargo xtask bench --peers`: the official Python SDK and flagwire, each in
//! its own process, against the same flagwire-mock binary on 127.0.0.1.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::criterion::cargo;
use super::process::{KillOnDrop, last_json_object, run_logged};

/// The API key the mock accepts for this run.
const API_KEY: &str = "sch_dev_bench_peers";
/// The seeded company's key (`id`) and flag.
const COMPANY_KEY: &str = "bench-co";
const FLAG: &str = "bench-flag";
/// The Python side's scripts and pinned requirements.
const PY_DIR: &str = "bench/peers/schematic_py";

/// Arguments shared by both sides (one process each).
#[derive(Debug, Clone, PartialEq)]
pub struct SideArgs {
    /// The mock's REST base URL.
    pub rest: String,
    /// The mock's capture base URL.
    pub capture: String,
    /// An API key the mock accepts.
    pub api_key: String,
    /// The seeded company's `id` key.
    pub company_key: String,
    /// The seeded company's ID (known once the flagwire side looked it up).
    pub company_id: Option<String>,
    /// A flag that checks `true`.
    pub flag: String,
    /// Events in the delivery scenario.
    pub events: u64,
    /// Seconds per timed scenario.
    pub seconds: f64,
    /// Event name of the delivery scenario (counted by the mock).
    pub subtype: String,
}

impl SideArgs {
    /// Parses `--name value` pairs.
    #[cfg_attr(not(feature = "peers"), allow(dead_code))]
    pub fn parse(args: &[&str]) -> Result<Self, String> {
        let mut out = SideArgs {
            rest: String::new(),
            capture: String::new(),
            api_key: String::new(),
            company_key: String::new(),
            company_id: None,
            flag: String::new(),
            events: 0,
            seconds: 0.0,
            subtype: String::new(),
        };
        let mut it = args.iter();
        while let Some(name) = it.next() {
            let value = it
                .next()
                .ok_or_else(|| format!("{name} needs a value"))?
                .to_string();
            match *name {
                "--rest" => out.rest = value,
                "--capture" => out.capture = value,
                "--api-key" => out.api_key = value,
                "--company-key" => out.company_key = value,
                "--company-id" => out.company_id = Some(value),
                "--flag" => out.flag = value,
                "--events" => {
                    out.events = value
                        .parse()
                        .map_err(|_| format!("--events: not a count: {value}"))?;
                }
                "--seconds" => {
                    out.seconds = value
                        .parse()
                        .ok()
                        .filter(|s: &f64| s.is_finite() && *s > 0.0)
                        .ok_or_else(|| format!("--seconds: not a duration: {value}"))?;
                }
                "--subtype" => out.subtype = value,
                other => return Err(format!("unknown argument {other:?}")),
            }
        }
        for (name, v) in [
            ("--rest", &out.rest),
            ("--capture", &out.capture),
            ("--api-key", &out.api_key),
            ("--company-key", &out.company_key),
        ] {
            if v.is_empty() {
                return Err(format!("{name} is required"));
            }
        }
        Ok(out)
    }

    /// The arguments as passed on a command line (both sides take the same).
    pub fn to_args(&self) -> Vec<String> {
        let mut v = vec![
            "--rest".to_owned(),
            self.rest.clone(),
            "--capture".to_owned(),
            self.capture.clone(),
            "--api-key".to_owned(),
            self.api_key.clone(),
            "--company-key".to_owned(),
            self.company_key.clone(),
            "--flag".to_owned(),
            self.flag.clone(),
            "--events".to_owned(),
            self.events.to_string(),
            "--seconds".to_owned(),
            self.seconds.to_string(),
            "--subtype".to_owned(),
            self.subtype.clone(),
        ];
        if let Some(id) = &self.company_id {
            v.extend(["--company-id".to_owned(), id.clone()]);
        }
        v
    }
}

/// What `--peers` measured.
#[derive(Debug, Clone)]
pub struct PeerResults {
    /// The flagwire side's JSON summary.
    pub flagwire: Value,
    /// Delivered events of the flagwire side, as counted by the mock.
    pub flagwire_counted: u64,
    /// The Python side's JSON summary, or why there is none.
    pub python: Result<Value, String>,
    /// Delivered events of the Python side, as counted by the mock.
    pub python_counted: Option<u64>,
    /// Events each side tracked in the delivery scenario.
    pub events: u64,
}

/// Settings of a peers run.
#[derive(Debug, Clone, Copy)]
pub struct PeerSettings {
    /// Events in the delivery scenario.
    pub events: u64,
    /// Seconds per timed scenario.
    pub seconds: f64,
}

/// Builds both release binaries, prepares the virtualenv, starts the mock
/// and runs both sides in turn.
pub fn run(root: &Path, target: &Path, settings: PeerSettings) -> Result<PeerResults, String> {
    let dir = target.join("bench-peers");
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs).map_err(|e| format!("creating {}: {e}", logs.display()))?;

    println!("==> building flagwire-mock and the flagwire side (release)");
    let mut build = Command::new(cargo());
    build.current_dir(root).args([
        "build",
        "--release",
        "-p",
        "flagwire-mock",
        "-p",
        "xtask",
        "--features",
        "xtask/peers",
    ]);
    run_logged(
        "cargo build --release -p flagwire-mock -p xtask --features xtask/peers",
        &mut build,
        &logs.join("build.log"),
        Duration::from_secs(45 * 60),
    )?;
    let exe = |name: &str| {
        target
            .join("release")
            .join(format!("{name}{}", std::env::consts::EXE_SUFFIX))
    };
    let python = prepare_venv(root, &dir, &logs)?;

    let seed = dir.join("seed.json");
    std::fs::write(&seed, seed_json().to_string())
        .map_err(|e| format!("writing {}: {e}", seed.display()))?;
    println!("==> starting flagwire-mock on 127.0.0.1");
    let (mock, rest, capture) = start_mock(&exe("flagwire-mock"), &seed, &logs)?;

    let mut args = SideArgs {
        rest,
        capture,
        api_key: API_KEY.to_owned(),
        company_key: COMPANY_KEY.to_owned(),
        company_id: None,
        flag: FLAG.to_owned(),
        events: settings.events,
        seconds: settings.seconds,
        subtype: "bench-flagwire-delivery".to_owned(),
    };
    let side = exe("xtask");
    let limit = Duration::from_secs(10 * 60);

    println!("==> flagwire side");
    let flagwire = run_json(
        "the flagwire side",
        Command::new(&side)
            .args(["bench", "--flagwire-side", "measure"])
            .args(args.to_args()),
        &logs.join("flagwire-side.log"),
        limit,
    )?;
    let flagwire_counted = count(&side, &args, &logs)?;
    let company_id = flagwire["company_id"]
        .as_str()
        .ok_or("the flagwire side reported no company_id")?
        .to_owned();

    println!("==> Python side (schematichq)");
    args.company_id = Some(company_id);
    args.subtype = "bench-python-delivery".to_owned();
    let script = root.join(PY_DIR).join("peer.py");
    let python_out = run_json(
        "the Python side",
        Command::new(&python).arg(&script).args(args.to_args()),
        &logs.join("python-side.log"),
        limit,
    );
    let python_counted = match &python_out {
        Ok(_) => Some(count(&side, &args, &logs)?),
        Err(_) => None,
    };
    drop(mock);
    Ok(PeerResults {
        flagwire,
        flagwire_counted,
        python: python_out,
        python_counted,
        events: settings.events,
    })
}

/// The mock's seed: one company and one flag that checks `true`.
fn seed_json() -> Value {
    json!({
        "companies": [{"keys": {"id": COMPANY_KEY}, "name": "Bench Co", "traits": {"seats": 25}}],
        "flags": [{"key": FLAG, "name": "Bench flag", "description": "", "flag_type": "boolean",
                   "default_value": true}],
    })
}

/// Creates the virtualenv if needed and installs the pinned requirements;
/// returns the venv's python.
fn prepare_venv(root: &Path, dir: &Path, logs: &Path) -> Result<PathBuf, String> {
    let venv = dir.join("venv");
    let python = if cfg!(windows) {
        venv.join("Scripts").join("python.exe")
    } else {
        venv.join("bin").join("python")
    };
    if !python.is_file() {
        println!("==> creating a virtualenv in {}", venv.display());
        let host = std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_owned());
        run_logged(
            &format!(
                "`{host} -m venv` (Python 3 with its venv module is needed for --peers; on Debian/Ubuntu: apt-get install python3-venv)"
            ),
            Command::new(&host).arg("-m").arg("venv").arg(&venv),
            &logs.join("venv.log"),
            Duration::from_secs(5 * 60),
        )?;
    }
    let requirements = root.join(PY_DIR).join("requirements.txt");
    println!("==> pip install -r {PY_DIR}/requirements.txt");
    run_logged(
        "pip install of the pinned Python SDK (is PyPI reachable? delete target/bench-peers/venv to start over)",
        Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--disable-pip-version-check",
                "--quiet",
                "-r",
            ])
            .arg(&requirements),
        &logs.join("pip.log"),
        Duration::from_secs(10 * 60),
    )?;
    Ok(python)
}

/// Starts the mock binary on free ports and reads its base URLs from the
/// lines it prints.
fn start_mock(
    bin: &Path,
    seed: &Path,
    logs: &Path,
) -> Result<(KillOnDrop, String, String), String> {
    let stderr = std::fs::File::create(logs.join("mock.log"))
        .map_err(|e| format!("creating the mock's log: {e}"))?;
    let mut child = Command::new(bin)
        .args([
            "--port",
            "0",
            "--host",
            "127.0.0.1",
            "--api-key",
            API_KEY,
            "--seed",
        ])
        .arg(seed)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .map_err(|e| format!("starting {}: {e}", bin.display()))?;
    let stdout = child
        .stdout
        .take()
        .ok_or("the mock's stdout is not piped")?;
    let guard = KillOnDrop(Some(child));
    let (tx, rx) = mpsc::channel();
    // Keeps reading (and discarding) after the URLs so the mock never blocks
    // on a full pipe.
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let _ = tx.send(line);
        }
    });
    let (mut rest, mut capture) = (None, None);
    let deadline = Instant::now() + Duration::from_secs(30);
    while rest.is_none() || capture.is_none() {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx.recv_timeout(left).map_err(|_| {
            format!(
                "flagwire-mock did not print its URLs within 30 s (pid {:?}; see {})",
                guard.id(),
                logs.join("mock.log").display()
            )
        })?;
        if let Some(url) = line.strip_prefix("REST API:") {
            rest = Some(url.trim().to_owned());
        } else if let Some(url) = line.strip_prefix("Capture host:") {
            capture = Some(url.trim().to_owned());
        }
    }
    let (rest, capture) = (rest.unwrap_or_default(), capture.unwrap_or_default());
    for url in [&rest, &capture] {
        if !url.starts_with("http://127.0.0.1:") {
            return Err(format!("flagwire-mock is not on 127.0.0.1: {url}"));
        }
    }
    Ok((guard, rest, capture))
}

/// Runs a side and parses the JSON object on the last line of its output.
fn run_json(what: &str, cmd: &mut Command, log: &Path, limit: Duration) -> Result<Value, String> {
    run_logged(what, cmd, log, limit)?;
    let text =
        std::fs::read_to_string(log).map_err(|e| format!("reading {}: {e}", log.display()))?;
    last_json_object(&text).ok_or_else(|| {
        format!(
            "{what} printed no JSON summary (output in {})",
            log.display()
        )
    })
}

/// The delivered events of `args.subtype`, as the mock counted them.
fn count(side: &Path, args: &SideArgs, logs: &Path) -> Result<u64, String> {
    let out = run_json(
        "counting delivered events",
        Command::new(side)
            .args(["bench", "--flagwire-side", "count"])
            .args(args.to_args()),
        &logs.join(format!("count-{}.log", args.subtype)),
        Duration::from_secs(60),
    )?;
    out["count"]
        .as_u64()
        .ok_or_else(|| format!("the count of {} is not a number: {out}", args.subtype))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn side_args_round_trip() {
        let args = SideArgs {
            rest: "http://127.0.0.1:1".to_owned(),
            capture: "http://127.0.0.1:2".to_owned(),
            api_key: "k".to_owned(),
            company_key: "acme".to_owned(),
            company_id: Some("comp_1".to_owned()),
            flag: "f".to_owned(),
            events: 5,
            seconds: 1.5,
            subtype: "s".to_owned(),
        };
        let argv = args.to_args();
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        assert_eq!(SideArgs::parse(&argv).unwrap(), args);
    }

    #[test]
    fn side_args_errors_are_clear() {
        assert!(
            SideArgs::parse(&["--rest"])
                .unwrap_err()
                .contains("needs a value")
        );
        assert!(
            SideArgs::parse(&["--bogus", "1"])
                .unwrap_err()
                .contains("unknown")
        );
        assert!(
            SideArgs::parse(&["--rest", "x", "--seconds", "-1"])
                .unwrap_err()
                .contains("--seconds")
        );
        assert!(
            SideArgs::parse(&["--rest", "x"])
                .unwrap_err()
                .contains("required")
        );
    }
}
