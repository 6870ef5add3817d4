//! The end-to-end delivery example (`crates/sdk/examples/delivery.rs`): its
//! `--json` summary line.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde::Deserialize;

use super::criterion::cargo;
use super::process::{last_json_object, run_logged};

/// The example's summary: throughput to the in-process emulator, then a
/// capture outage.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Delivery {
    /// Events tracked in the throughput run.
    pub events: u64,
    /// Events the emulator received.
    pub delivered: u64,
    /// Events that never arrived.
    pub lost: u64,
    /// Delivered events per second, first `track` to the end of shutdown.
    pub events_per_sec: f64,
    /// Length of the outage phase.
    pub outage_seconds: f64,
    /// Events accepted by the queue during the outage.
    pub outage_accepted: u64,
    /// Events refused (queue full) during the outage.
    pub outage_dropped: u64,
    /// Peak resident set size of the example's process (absent or 0 where
    /// the OS does not report it).
    pub peak_rss_bytes: Option<u64>,
}

/// Runs the example in release and reads its summary from the last line of
/// its standard output.
pub fn run(root: &Path, logs: &Path) -> Result<Delivery, String> {
    let log = logs.join("flagwire-delivery-example.log");
    let mut cmd = Command::new(cargo());
    cmd.current_dir(root).args([
        "run",
        "--release",
        "-p",
        "flagwire",
        "--example",
        "delivery",
        "--",
        "--json",
    ]);
    let ran = run_logged(
        "cargo run --release -p flagwire --example delivery -- --json",
        &mut cmd,
        &log,
        Duration::from_secs(30 * 60),
    );
    let text =
        std::fs::read_to_string(&log).map_err(|e| format!("reading {}: {e}", log.display()))?;
    match (ran, parse_last_line(&text)) {
        // The example exits with an error when events were lost, after
        // printing its summary: the table shows the loss.
        (Err(_), Ok(d)) if d.lost > 0 => Ok(d),
        (Err(e), _) => Err(e),
        (Ok(()), parsed) => parsed.map_err(|e| format!("{e} (output in {})", log.display())),
    }
}

/// The summary from the last line that is a JSON object.
pub fn parse_last_line(output: &str) -> Result<Delivery, String> {
    let summary = last_json_object(output)
        .ok_or("the example printed no JSON summary (it may predate its --json flag)")?;
    serde_json::from_value(summary).map_err(|e| format!("the example's JSON summary: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_summary_line() {
        let out = "throughput: ...\noutage: ...\n{\"events\":200000,\"delivered\":200000,\"lost\":0,\
                   \"events_per_sec\":41234.5,\"outage_seconds\":2.0,\"outage_accepted\":10000,\
                   \"outage_dropped\":90000,\"peak_rss_bytes\":12582912}\n";
        let d = parse_last_line(out).unwrap();
        assert_eq!(d.events, 200_000);
        assert_eq!(d.lost, 0);
        assert_eq!(d.peak_rss_bytes, Some(12_582_912));
    }

    #[test]
    fn text_only_output_is_a_clear_error() {
        let err = parse_last_line("throughput: 1 events\noutage: ...\n").unwrap_err();
        assert!(err.contains("no JSON summary"), "{err}");
    }

    #[test]
    fn a_missing_key_is_an_error() {
        let err = parse_last_line("{\"events\": 1}").unwrap_err();
        assert!(err.contains("delivered"), "{err}");
    }
}
