//! Event delivery in the report: the criterion delivery benches with an
//! injected capture latency (`crates/sdk/benches/delivery.rs`) and the
//! end-to-end delivery example (`crates/sdk/examples/delivery.rs`) with its
//! `--json` summary line.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde::Deserialize;

use super::criterion::{Estimate, cargo};
use super::process::{last_json_object, run_logged};
use super::report::{Cell, Figure, Row};
use super::{crit_rate, target};

/// The latency cases of the delivery bench: (criterion id of the default
/// number of batches in flight, id with one batch in flight, latency,
/// target in events/s).
const LATENCY_CASES: [(&str, &str, &str, f64); 2] = [
    (
        "delivery/latency_1ms",
        "delivery/latency_1ms_single_flight",
        "1 ms",
        150_000.0,
    ),
    (
        "delivery/latency_50ms",
        "delivery/latency_50ms_single_flight",
        "50 ms",
        20_000.0,
    ),
];

/// Rows for the delivery bench's latency cases: the default number of
/// batches in flight against its target, then one batch in flight (how the
/// buffer delivered before) for comparison.
pub fn latency_rows(est: &BTreeMap<String, Estimate>) -> Vec<Row> {
    let mut rows = Vec::new();
    for (multi, single, latency, goal) in LATENCY_CASES {
        rows.push(Row {
            scenario: format!(
                "Event delivery, capture host answering after {latency}, 16 batches in flight (criterion; none lost)"
            ),
            source: multi.to_owned(),
            flagwire: crit_rate(est, &[multi], "events/s"),
            limit: target("target", Figure::Rate(goal, "events/s")),
            python: Cell::NotApplicable("not measured with an injected latency".to_owned()),
        });
        rows.push(Row {
            scenario: format!(
                "Event delivery, capture host answering after {latency}, one batch in flight as before (criterion)"
            ),
            source: single.to_owned(),
            flagwire: crit_rate(est, &[single], "events/s"),
            limit: None,
            python: Cell::NotApplicable("not measured with an injected latency".to_owned()),
        });
    }
    rows
}

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
    /// Heap bytes per event queued during the outage, as the buffer counts
    /// them (absent from older examples).
    #[serde(default)]
    pub queued_bytes_per_event: Option<f64>,
    /// Bytes per event of the same events in a batch request (absent from
    /// older examples).
    #[serde(default)]
    pub wire_bytes_per_event: Option<f64>,
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
    fn reads_the_memory_figures_when_present() {
        let out = "{\"events\":1,\"delivered\":1,\"lost\":0,\"events_per_sec\":1.0,\
                   \"outage_seconds\":2.0,\"outage_accepted\":1,\"outage_dropped\":0,\
                   \"peak_rss_bytes\":0,\"queued_bytes_per_event\":201.5,\"wire_bytes_per_event\":236.0}";
        let d = parse_last_line(out).unwrap();
        assert_eq!(d.queued_bytes_per_event, Some(201.5));
        assert_eq!(d.wire_bytes_per_event, Some(236.0));
    }

    #[test]
    fn latency_rows_name_their_benches_and_targets() {
        let rows = latency_rows(&BTreeMap::new());
        let sources: Vec<_> = rows.iter().map(|r| r.source.as_str()).collect();
        assert_eq!(
            sources,
            [
                "delivery/latency_1ms",
                "delivery/latency_1ms_single_flight",
                "delivery/latency_50ms",
                "delivery/latency_50ms_single_flight"
            ]
        );
        assert!(rows.iter().all(|r| matches!(r.flagwire, Cell::Missing(_))));
        assert!(rows[0].limit.is_some() && rows[1].limit.is_none());
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
