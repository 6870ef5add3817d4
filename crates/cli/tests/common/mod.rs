//! Running the built `flagwire` binary with a clean environment and a
//! deadline.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use flagwire_mock::MockServer;

/// Every run ends within this, or the test fails.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// What a finished run left.
#[derive(Debug)]
pub struct Run {
    /// The exit status (-1 when killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Run {
    /// Standard output as one JSON document.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:?}"))
    }

    /// Asserts the status and that standard error is one `error:` line.
    pub fn assert_one_line_error(&self, code: i32) {
        assert_eq!(self.code, code, "{self:?}");
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "not one line: {self:?}");
        assert!(lines[0].starts_with("error: "), "{self:?}");
        assert!(!self.stderr.contains("panicked"), "{self:?}");
    }
}

/// A fresh empty directory.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "flagwire-cli-test-{name}-{}-{}",
        std::process::id(),
        fastrand::u64(..)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The binary, with no inherited settings: no SCHEMATIC_*/ESAUTI_*/
/// FLAGWIRE_* variables, an empty configuration home, no colours.
pub fn flagwire() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_flagwire"));
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy().into_owned();
        if key.starts_with("SCHEMATIC_")
            || key.starts_with("ESAUTI_")
            || key.starts_with("FLAGWIRE_")
        {
            cmd.env_remove(key);
        }
    }
    // A configuration home without a file in it (the default file is
    // optional): nothing of the machine's own configuration leaks in.
    cmd.env(
        "XDG_CONFIG_HOME",
        std::env::temp_dir().join("flagwire-cli-test-no-config-home"),
    );
    cmd.env("NO_COLOR", "1");
    cmd.env_remove("RUST_BACKTRACE");
    cmd
}

/// The binary pointed at `server` through the environment.
pub fn against(server: &MockServer) -> Command {
    let mut cmd = flagwire();
    cmd.env("SCHEMATIC_API_KEY", server.api_key())
        .env("SCHEMATIC_API_URL", server.rest_url())
        .env("SCHEMATIC_CAPTURE_URL", server.capture_url());
    cmd
}

/// Runs `cmd` to the end with `stdin`, within [`DEADLINE`].
pub fn run(cmd: &mut Command, stdin: &[u8]) -> Run {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let mut input = child.stdin.take().unwrap();
    let data = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&data);
    });
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let status = wait(&mut child, DEADLINE);
    let _ = writer.join();
    Run {
        code: status,
        stdout: out_reader.join().unwrap(),
        stderr: err_reader.join().unwrap(),
    }
}

/// Runs `args` against `server` with empty standard input.
pub fn run_against(server: &MockServer, args: &[&str]) -> Run {
    run(against(server).args(args), b"")
}

/// Waits for `child` at most `limit`; kills it and fails the test past it.
pub fn wait(child: &mut Child, limit: Duration) -> i32 {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code().unwrap_or(-1);
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the command did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A long-running child (`mock`, `listen`, `check --watch`) whose standard
/// output is read line by line.
pub struct Background {
    /// The process.
    pub child: Child,
    lines: std::sync::mpsc::Receiver<String>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Background {
    /// Starts `cmd` with its standard output piped.
    pub fn start(cmd: &mut Command) -> Background {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the binary starts");
        let stdout: ChildStdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Background {
            child,
            lines: rx,
            reader: Some(reader),
        }
    }

    /// The next line of standard output, within `limit`.
    pub fn line(&self, limit: Duration) -> String {
        self.lines
            .recv_timeout(limit)
            .unwrap_or_else(|e| panic!("no line of output within {limit:?}: {e}"))
    }

    /// Waits for the exit (within `limit`) and returns the status and the
    /// remaining lines of standard output and standard error.
    pub fn finish(mut self, limit: Duration) -> (i32, Vec<String>, String) {
        let code = wait(&mut self.child, limit);
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        let rest: Vec<String> = self.lines.try_iter().collect();
        let mut err = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        (code, rest, err)
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        // Only this test's own child.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
