//! What the figures were measured on.

use std::path::Path;
use std::process::Command;

/// A description of the machine and toolchain.
#[derive(Debug, Clone)]
pub struct Machine {
    /// Logical CPUs available to this process.
    pub cpus: usize,
    /// CPU model name from `/proc/cpuinfo`.
    pub cpu_model: String,
    /// Total memory from `/proc/meminfo`.
    pub memory: String,
    /// Operating system and kernel release.
    pub os: String,
    /// `rustc --version`.
    pub rustc: String,
    /// The 1/5/15-minute load averages when the run started.
    pub load_start: String,
}

impl Machine {
    /// Reads the description now (unknown parts say so).
    pub fn describe(root: &Path) -> Self {
        Machine {
            cpus: std::thread::available_parallelism().map_or(0, usize::from),
            cpu_model: cpu_model().unwrap_or_else(|| "unknown".to_owned()),
            memory: memory().unwrap_or_else(|| "unknown".to_owned()),
            os: os(),
            rustc: command_line(root, "rustc", &["--version"])
                .unwrap_or_else(|| "unknown".to_owned()),
            load_start: load_average(),
        }
    }
}

fn cpu_model() -> Option<String> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    info.lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_owned())
}

fn memory() -> Option<String> {
    let kib = proc_kib("/proc/meminfo", "MemTotal:")?;
    Some(format!("{:.1} GiB", kib as f64 / (1024.0 * 1024.0)))
}

/// The KiB figure of the `key` line (e.g. `VmHWM:`) of a `/proc` file.
pub fn proc_kib(path: &str, key: &str) -> Option<u64> {
    std::fs::read_to_string(path)
        .ok()?
        .lines()
        .find(|l| l.starts_with(key))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn os() -> String {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default();
    format!("{} {release}", std::env::consts::OS)
        .trim()
        .to_owned()
}

/// The load averages over 1, 5 and 15 minutes, or "unknown".
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}

/// The first line of a command's standard output, if it ran successfully.
pub fn command_line(dir: &Path, program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    String::from_utf8(out.stdout)
        .ok()?
        .lines()
        .next()
        .map(|l| l.trim().to_owned())
        .filter(|l| !l.is_empty())
}

/// Now, in UTC, to the minute (e.g. `2026-11-22 09:30 UTC`).
pub fn now_utc() -> String {
    let now = time::OffsetDateTime::now_utc();
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02} UTC",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute()
    )
}
