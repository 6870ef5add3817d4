//! Child processes with a log file and a time limit, and the JSON summary
//! line they print last.

use std::fs::File;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Runs `cmd` to completion with stdout and stderr appended to `log`, killing
/// it once `limit` has passed. Fails with a message naming `what` and the log
/// on a spawn error, a non-zero exit or the time limit.
pub fn run_logged(
    what: &str,
    cmd: &mut Command,
    log: &Path,
    limit: Duration,
) -> Result<(), String> {
    if let Some(dir) = log.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    }
    let out = File::create(log).map_err(|e| format!("creating {}: {e}", log.display()))?;
    let err = out
        .try_clone()
        .map_err(|e| format!("opening {}: {e}", log.display()))?;
    let child = cmd
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(|e| format!("{what}: cannot start {:?}: {e}", cmd.get_program()))?;
    let mut guard = KillOnDrop(Some(child));
    let status = guard
        .wait_until(Instant::now() + limit)
        .map_err(|e| format!("{what}: {e} (output in {})", log.display()))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "{what} failed ({status}); its output is in {}",
            log.display()
        ))
    }
}

/// A child process that is killed (and reaped) when dropped, so that an
/// early return or a failed step never leaves a server running.
pub struct KillOnDrop(pub Option<Child>);

impl KillOnDrop {
    /// Waits for the child to exit until `deadline`; kills it after that.
    pub fn wait_until(&mut self, deadline: Instant) -> Result<std::process::ExitStatus, String> {
        let Some(child) = self.0.as_mut() else {
            return Err("the process was already reaped".to_owned());
        };
        loop {
            match child.try_wait() {
                Ok(Some(status)) => {
                    self.0 = None;
                    return Ok(status);
                }
                Ok(None) if Instant::now() >= deadline => {
                    let _ = child.kill();
                    let _ = child.wait();
                    self.0 = None;
                    return Err("time limit reached; the process was stopped".to_owned());
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(100)),
                Err(e) => return Err(format!("waiting for the process: {e}")),
            }
        }
    }

    /// The child's process id, while it runs.
    pub fn id(&self) -> Option<u32> {
        self.0.as_ref().map(Child::id)
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(child) = self.0.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The last line of `text` that parses as a JSON object: the summary a
/// measuring process prints after its log lines.
pub fn last_json_object(text: &str) -> Option<Value> {
    text.lines()
        .rev()
        .map(str::trim)
        .filter(|l| l.starts_with('{'))
        .find_map(|l| {
            serde_json::from_str::<Value>(l)
                .ok()
                .filter(Value::is_object)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_last_json_object() {
        let out = "log line\n{\"a\":1}\nmore\n{\"b\":2}\n[1,2]\n";
        assert_eq!(last_json_object(out), Some(serde_json::json!({"b": 2})));
        assert_eq!(last_json_object("no json here"), None);
    }
}
