//! Child processes with a log file and a time limit.

use std::fs::File;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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
