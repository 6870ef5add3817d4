//! The same-run comparisons two benches print before criterion's groups:
//! the webhook verifier against a raw HMAC in alternating batches
//! (`crates/webhooks/benches/verify.rs`) and the transport stack against a
//! bare client with the paths taking turns
//! (`crates/transport/benches/round_trip.rs`).
//!
//! Criterion measures its groups one after the other, so on a shared machine
//! a change of load between two groups shows up as a difference between
//! them. These reports measure both sides under the same conditions; they
//! are what issues #2 and #4 set their targets on. This module reads them
//! back from the benches' output and renders them for `docs/benchmarks.md`.
//! A line that does not parse is kept and reported, never a panic.

use std::fmt::Write as _;
use std::path::Path;

use super::criterion::Settings;
use super::report::{Figure, thousands};

/// The bench target that prints the webhook report.
pub const WEBHOOKS_BENCH: (&str, &str) = ("flagwire-webhooks", "verify");
/// The bench target that prints the transport report.
pub const TRANSPORT_BENCH: (&str, &str) = ("flagwire-transport", "round_trip");

/// Issue #2's limit on verify time over raw HMAC time, per body size.
fn webhook_target(size: &str) -> Option<f64> {
    match size {
        "1KiB" => Some(1.10),
        "64KiB" => Some(1.02),
        _ => None,
    }
}

/// Issue #4's limit on the full default stack's median over the bare client's.
const TRANSPORT_TARGET: f64 = 1.05;
/// The path issue #4's target applies to.
const FULL_STACK: &str = "full default stack";

/// One `paired …` line: best batch of each side, and their ratio.
#[derive(Debug, Clone, PartialEq)]
pub struct Paired {
    /// Body size label as the bench prints it (`1KiB`).
    pub size: String,
    /// Scheme name (`standard_webhooks`).
    pub scheme: String,
    /// Best raw HMAC verify, nanoseconds.
    pub raw_ns: f64,
    /// Best scheme verify, nanoseconds.
    pub verify_ns: f64,
    /// Verify over raw, as printed.
    pub ratio: f64,
}

/// One `allocations per verify: …` line.
#[derive(Debug, Clone, PartialEq)]
pub struct Allocations {
    /// Scheme name.
    pub scheme: String,
    /// Body size label.
    pub size: String,
    /// Heap allocations per verify.
    pub per_verify: f64,
}

/// What the webhook bench printed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WebhookReport {
    /// Paired ratios, in printed order.
    pub paired: Vec<Paired>,
    /// Allocation counts, in printed order.
    pub allocations: Vec<Allocations>,
    /// Lines that looked like part of the report but did not parse.
    pub unparsed: Vec<String>,
}

/// One path of an interleaved table.
#[derive(Debug, Clone, PartialEq)]
pub struct TransportRow {
    /// Path name (`full default stack`).
    pub path: String,
    /// Median latency, nanoseconds.
    pub median_ns: f64,
    /// Median over the bare client's.
    pub x_bare: f64,
    /// Median over the bare client's sending the same headers.
    pub x_same_headers: f64,
    /// Heap allocations per request on the client thread.
    pub allocs: f64,
    /// Bytes allocated per request (older outputs do not print it).
    pub bytes: Option<f64>,
}

/// One interleaved table (one way of taking turns).
#[derive(Debug, Clone, PartialEq)]
pub struct TransportTable {
    /// How the paths took turns (`interleaved request by request`).
    pub mode: String,
    /// Requests per path, when printed.
    pub samples: Option<u64>,
    /// Rows in printed order.
    pub rows: Vec<TransportRow>,
}

/// What the transport bench printed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TransportReport {
    /// The interleaved tables, in printed order.
    pub tables: Vec<TransportTable>,
    /// Cost of the layers alone per request, nanoseconds.
    pub layers_ns: Option<f64>,
    /// Lines that looked like part of the report but did not parse.
    pub unparsed: Vec<String>,
}

/// A report read from a bench's output, with a remark on where it comes
/// from (an earlier run's log, a failed run), or why there is none.
#[derive(Debug, Clone, PartialEq)]
pub struct Capture<T> {
    /// The parsed report, or why it could not be read.
    pub report: Result<T, String>,
    /// Shown above the report when set.
    pub note: Option<String>,
}

/// The same-run reports of one `cargo xtask bench` (`None`: the bench was
/// not run, so its part is left out).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SameRun {
    /// From the webhook bench.
    pub webhooks: Option<Capture<WebhookReport>>,
    /// From the transport bench.
    pub transport: Option<Capture<TransportReport>>,
}

impl SameRun {
    /// Reads the report of `package`/`bench` from its log, if that bench
    /// prints one. `failure` is the error of a run that failed (what it
    /// printed before failing is still read); `reused` marks a log left by
    /// an earlier run.
    pub fn read_log(
        &mut self,
        package: &str,
        bench: &str,
        log: &Path,
        failure: Option<&str>,
        reused: bool,
    ) {
        let key = (package, bench);
        if key != WEBHOOKS_BENCH && key != TRANSPORT_BENCH {
            return;
        }
        let text = std::fs::read(log)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .map_err(|e| format!("reading {}: {e}", log.display()));
        let mut notes = Vec::new();
        if reused {
            // The file name only: the section says where the logs are kept,
            // and the report should not carry this machine's paths.
            let name = log.file_name().map_or_else(
                || log.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            );
            notes.push(format!(
                "read from the log of an earlier run ({name}), not measured in this one"
            ));
        }
        if let Some(why) = failure {
            notes.push(format!(
                "the bench failed ({why}); shown is what it printed before that"
            ));
        }
        let note = (!notes.is_empty()).then(|| notes.join("; "));
        if key == WEBHOOKS_BENCH {
            self.webhooks = Some(Capture {
                report: text.map(|t| parse_webhooks(&t)),
                note,
            });
        } else {
            self.transport = Some(Capture {
                report: text.map(|t| parse_transport(&t)),
                note,
            });
        }
    }

    /// Short lines for the terminal summary (the figures the targets are
    /// set on).
    pub fn terminal_lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(Capture { report: Ok(w), .. }) = &self.webhooks {
            for size in sizes(w) {
                let worst = w
                    .paired
                    .iter()
                    .filter(|p| p.size == size)
                    .max_by(|a, b| a.ratio.total_cmp(&b.ratio));
                if let Some(p) = worst {
                    out.push(format!(
                        "webhooks {}: highest paired ratio {:.3} ({}){}",
                        spaced_size(&size),
                        p.ratio,
                        p.scheme,
                        target_remark(p.ratio, webhook_target(&size))
                    ));
                }
            }
        }
        if let Some(Capture { report: Ok(t), .. }) = &self.transport {
            for table in &t.tables {
                if let Some(r) = table.rows.iter().find(|r| r.path == FULL_STACK) {
                    out.push(format!(
                        "transport, {}: full default stack x{:.3} bare{}",
                        table.mode,
                        r.x_bare,
                        target_remark(r.x_bare, Some(TRANSPORT_TARGET))
                    ));
                }
            }
        }
        out
    }
}

fn target_remark(ratio: f64, target: Option<f64>) -> String {
    match target {
        Some(t) if ratio <= t => format!(" (target <= {t:.2}: met)"),
        Some(t) => format!(" (target <= {t:.2}: NOT met)"),
        None => String::new(),
    }
}

// ---------------------------------------------------------------- parsing

/// A finite number, zero or more.
fn number(s: &str) -> Option<f64> {
    s.parse::<f64>().ok().filter(|v| v.is_finite() && *v >= 0.0)
}

/// Nanoseconds per unit of a time unit as `Debug` for `Duration` or the
/// benches print it.
fn unit_ns(unit: &str) -> Option<f64> {
    match unit {
        "ns" => Some(1.0),
        // MICRO SIGN (what `Duration`'s `Debug` prints), GREEK SMALL LETTER
        // MU, and ASCII.
        "\u{b5}s" | "\u{3bc}s" | "us" => Some(1e3),
        "ms" => Some(1e6),
        "s" => Some(1e9),
        _ => None,
    }
}

/// A time written as one token (`47.17µs`) or as a number and a unit.
/// Returns nanoseconds and the number of tokens used.
fn duration_at(tokens: &[&str], i: usize) -> Option<(f64, usize)> {
    let first = tokens.get(i)?;
    let split = first
        .char_indices()
        .find(|(_, c)| !(c.is_ascii_digit() || *c == '.'))
        .map_or(first.len(), |(at, _)| at);
    let (digits, unit) = first.split_at(split);
    let value = number(digits)?;
    if unit.is_empty() {
        let scale = unit_ns(tokens.get(i + 1)?)?;
        Some((value * scale, 2))
    } else {
        Some((value * unit_ns(unit)?, 1))
    }
}

/// The time right after the token `key` (at or after `from`).
fn duration_after(tokens: &[&str], key: &str, from: usize) -> Option<f64> {
    let at = tokens[from.min(tokens.len())..]
        .iter()
        .position(|t| *t == key)?
        + from;
    duration_at(tokens, at + 1).map(|(ns, _)| ns)
}

/// The token just before `key` (searched from `from`).
fn before<'a>(tokens: &[&'a str], key: &str, from: usize) -> Option<&'a str> {
    let at = tokens[from.min(tokens.len())..]
        .iter()
        .position(|t| *t == key)?
        + from;
    (at > from).then(|| tokens[at - 1])
}

/// A ratio as the transport bench prints it: `x1.058` (or `×1.058`).
fn ratio(token: &str) -> Option<f64> {
    let digits = token
        .strip_prefix('x')
        .or_else(|| token.strip_prefix('\u{d7}'))
        .unwrap_or(token);
    number(digits).filter(|r| *r > 0.0)
}

/// Reads the webhook bench's `paired …` and `allocations per verify: …`
/// lines out of its whole output.
pub fn parse_webhooks(text: &str) -> WebhookReport {
    let mut out = WebhookReport::default();
    for line in text.lines() {
        let trimmed = line.trim();
        if let Some(rest) = trimmed.strip_prefix("allocations per verify:") {
            match parse_allocations(rest) {
                Some(a) => out.allocations.push(a),
                None => out.unparsed.push(trimmed.to_owned()),
            }
        } else if let Some(rest) = trimmed
            .strip_prefix("paired")
            .filter(|r| r.is_empty() || r.starts_with(char::is_whitespace))
        {
            match parse_paired(rest) {
                Some(p) => out.paired.push(p),
                None => out.unparsed.push(trimmed.to_owned()),
            }
        }
    }
    out
}

/// `schematic           1KiB: 0`
fn parse_allocations(rest: &str) -> Option<Allocations> {
    let (what, count) = rest.rsplit_once(':')?;
    let words: Vec<&str> = what.split_whitespace().collect();
    let [scheme, size] = words.as_slice() else {
        return None;
    };
    Some(Allocations {
        scheme: (*scheme).to_owned(),
        size: (*size).to_owned(),
        per_verify: number(count.trim())?,
    })
}

/// ` 1KiB standard_webhooks  raw       846 ns  verify       947 ns  ratio 1.119`
fn parse_paired(rest: &str) -> Option<Paired> {
    let tokens: Vec<&str> = rest.split_whitespace().collect();
    let (size, scheme) = (*tokens.first()?, *tokens.get(1)?);
    let keywords = ["raw", "verify", "ratio"];
    if size.contains(':') || keywords.contains(&size) || keywords.contains(&scheme) {
        return None;
    }
    let raw_ns = duration_after(&tokens, "raw", 2).filter(|v| *v > 0.0)?;
    let verify_ns = duration_after(&tokens, "verify", 2).filter(|v| *v > 0.0)?;
    let at = tokens.iter().position(|t| *t == "ratio")?;
    let ratio = number(tokens.get(at + 1)?).filter(|r| *r > 0.0)?;
    Some(Paired {
        size: size.to_owned(),
        scheme: scheme.to_owned(),
        raw_ns,
        verify_ns,
        ratio,
    })
}

/// Reads the transport bench's interleaved tables and its `layers alone`
/// line out of its whole output.
pub fn parse_transport(text: &str) -> TransportReport {
    let mut out = TransportReport::default();
    // Rows are the indented lines right after a table's title.
    let mut in_table = false;
    for line in text.lines() {
        let indented = line.starts_with([' ', '\t']);
        let trimmed = line.trim();
        if in_table && indented && !trimmed.is_empty() {
            match parse_transport_row(trimmed) {
                Some(row) => {
                    if let Some(table) = out.tables.last_mut() {
                        table.rows.push(row);
                    }
                }
                None => out.unparsed.push(trimmed.to_owned()),
            }
            continue;
        }
        in_table = false;
        if indented {
            continue;
        }
        if trimmed.starts_with("interleaved") {
            match parse_title(trimmed) {
                Some(table) => {
                    out.tables.push(table);
                    in_table = true;
                }
                None => out.unparsed.push(trimmed.to_owned()),
            }
        } else if trimmed.starts_with("layers alone") {
            let time = trimmed.rsplit_once(':').and_then(|(_, t)| {
                let tokens: Vec<&str> = t.split_whitespace().collect();
                duration_at(&tokens, 0).map(|(ns, _)| ns)
            });
            match time {
                Some(ns) => out.layers_ns = Some(ns),
                None => out.unparsed.push(trimmed.to_owned()),
            }
        }
    }
    out
}

/// `interleaved request by request, 2000 requests each (median …):`
fn parse_title(line: &str) -> Option<TransportTable> {
    let head = line.split_once(" (").map_or(line, |(h, _)| h);
    let head = head.trim_end_matches(':').trim();
    let tokens: Vec<&str> = head.split_whitespace().collect();
    let samples = tokens
        .windows(3)
        .find(|w| w[1] == "requests" && w[2] == "each")
        .and_then(|w| w[0].replace(',', "").parse::<u64>().ok());
    let mode = match head.rsplit_once(", ") {
        Some((mode, tail)) if tail.ends_with("requests each") => mode,
        _ => head,
    };
    if mode.is_empty() || !line.ends_with(':') {
        return None;
    }
    Some(TransportTable {
        mode: mode.to_owned(),
        samples,
        rows: Vec::new(),
    })
}

/// `full default stack          47.17µs  x1.058 bare  x1.070 same headers   30.0 allocs  18097 bytes`
fn parse_transport_row(line: &str) -> Option<TransportRow> {
    let tokens: Vec<&str> = line.split_whitespace().collect();
    let (at, (median_ns, used)) =
        (1..tokens.len()).find_map(|i| duration_at(&tokens, i).map(|d| (i, d)))?;
    let rest = at + used;
    let same_headers = (rest..tokens.len().saturating_sub(1))
        .find(|&i| tokens[i] == "same" && tokens[i + 1] == "headers")
        .filter(|&i| i > rest)?;
    let bytes = match tokens[rest..].iter().position(|t| *t == "bytes") {
        Some(_) => Some(number(before(&tokens, "bytes", rest)?)?),
        None => None,
    };
    Some(TransportRow {
        path: tokens[..at].join(" "),
        median_ns: Some(median_ns).filter(|v| *v > 0.0)?,
        x_bare: ratio(before(&tokens, "bare", rest)?)?,
        x_same_headers: ratio(tokens[same_headers - 1])?,
        allocs: number(before(&tokens, "allocs", rest)?)?,
        bytes,
    })
}

// -------------------------------------------------------------- rendering

/// `1KiB` as `1 KiB`.
pub fn spaced_size(size: &str) -> String {
    let split = size
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(size.len());
    if split == 0 || split == size.len() {
        size.to_owned()
    } else {
        format!("{} {}", &size[..split], &size[split..])
    }
}

/// Body sizes in printed order, without repeats.
fn sizes(w: &WebhookReport) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let all = w
        .paired
        .iter()
        .map(|p| &p.size)
        .chain(w.allocations.iter().map(|a| &a.size));
    for size in all {
        if !out.contains(size) {
            out.push(size.clone());
        }
    }
    out
}

fn count(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

fn unparsed_list(out: &mut String, lines: &[String]) {
    if lines.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "\nLines of the report that did not parse (their figures are missing above):\n"
    );
    for line in lines {
        let _ = writeln!(out, "- `{}`", line.replace('`', "'"));
    }
}

/// The `## Same-run comparisons` section, or nothing when neither bench ran.
pub fn section(same: &SameRun, settings: Settings) -> String {
    if same.webhooks.is_none() && same.transport.is_none() {
        return String::new();
    }
    let mut out = String::from("\n## Same-run comparisons\n\n");
    out.push_str(
        "Criterion runs its groups one after the other, so on a shared machine a change of\n\
         load between the flagwire group and its baseline shows up in the ratio of the table\n\
         above. The two benches below also measure both sides under the same conditions,\n\
         taking turns, before criterion starts; issues #2 and #4 set their targets on these\n\
         figures. They are read from the benches' output (kept in `target/xtask-bench/logs/`).\n",
    );
    let args = format!(
        "-- --warm-up-time {} --measurement-time {}",
        settings.warm_up, settings.measurement
    );
    if let Some(w) = &same.webhooks {
        webhooks_part(&mut out, w, &args);
    }
    if let Some(t) = &same.transport {
        transport_part(&mut out, t, &args);
    }
    out
}

fn note_line(out: &mut String, note: &Option<String>) {
    if let Some(note) = note {
        let _ = writeln!(out, "Note: {note}.\n");
    }
}

fn webhooks_part(out: &mut String, capture: &Capture<WebhookReport>, args: &str) {
    out.push_str("\n### Webhook verification against a raw HMAC, paired\n\n");
    out.push_str(
        "For each body size, the bare `ring` HMAC-SHA256 verify over the body and each\n\
         scheme's `verify` (headers read, signature decoded, HMAC over the signed content)\n\
         run in short alternating batches, many rounds of them; each side keeps its fastest\n\
         batch, the one least disturbed by other work on the machine. The ratio is the\n\
         scheme's time over the raw HMAC's. Allocations are counted with\n\
         `flagwire-alloc-counter` over 100 verifies; the bench fails if any verify allocates.\n\
         Targets (issue #2): at most 1.10 at 1 KiB and 1.02 at 64 KiB, no allocation.\n\n",
    );
    note_line(out, &capture.note);
    let report = match &capture.report {
        Ok(r) => r,
        Err(why) => {
            let _ = writeln!(out, "Not available: {why}.");
            return reproduce(out, WEBHOOKS_BENCH, args);
        }
    };
    if report.paired.is_empty() {
        out.push_str("Missing: the bench printed no paired line this run.\n\n");
    } else {
        out.push_str(
            "| scheme | body | raw HMAC (best batch) | verify (best batch) | ratio | target | \
             allocations per verify | met |\n\
             |---|---|---:|---:|---:|---:|---:|---|\n",
        );
        for p in &report.paired {
            let allocations = report
                .allocations
                .iter()
                .find(|a| a.scheme == p.scheme && a.size == p.size)
                .map(|a| a.per_verify);
            let target = webhook_target(&p.size);
            let mut misses = Vec::new();
            if target.is_some_and(|t| p.ratio > t) {
                misses.push("ratio");
            }
            if allocations.is_some_and(|a| a > 0.0) {
                misses.push("allocations");
            }
            let met = if !misses.is_empty() {
                format!("**no** ({})", misses.join(", "))
            } else if target.is_none() || allocations.is_none() {
                "—".to_owned()
            } else {
                "yes".to_owned()
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {:.3} | {} | {} | {met} |",
                p.scheme,
                spaced_size(&p.size),
                Figure::Time(p.raw_ns),
                Figure::Time(p.verify_ns),
                p.ratio,
                target.map_or("—".to_owned(), |t| format!("≤ {t:.2}")),
                allocations.map_or("missing".to_owned(), count),
            );
        }
        for size in sizes(report) {
            if let Some(target) = webhook_target(&size)
                && !report.paired.iter().any(|p| p.size == size)
            {
                let _ = writeln!(
                    out,
                    "| — | {} | missing | missing | — | ≤ {target:.2} | — | — |",
                    spaced_size(&size),
                );
            }
        }
    }
    // Allocation lines without a paired line (the raw baseline itself).
    let alone: Vec<String> = report
        .allocations
        .iter()
        .filter(|a| {
            !report
                .paired
                .iter()
                .any(|p| p.scheme == a.scheme && p.size == a.size)
        })
        .map(|a| {
            format!(
                "{} at {}: {}",
                a.scheme,
                spaced_size(&a.size),
                count(a.per_verify)
            )
        })
        .collect();
    if !alone.is_empty() {
        let _ = writeln!(
            out,
            "\nAllocations per verify of the cases that have no paired ratio (the raw HMAC \
             baseline is one): {}.",
            alone.join(", ")
        );
    }
    unparsed_list(out, &report.unparsed);
    reproduce(out, WEBHOOKS_BENCH, args);
}

fn transport_part(out: &mut String, capture: &Capture<TransportReport>, args: &str) {
    out.push_str("\n### Transport stack against a bare hyper-util client, interleaved\n\n");
    out.push_str(
        "Every path sends the same small JSON POST to one hyper server on 127.0.0.1. The paths\n\
         take turns, first one request at a time, then in blocks of back-to-back requests,\n\
         and each round starts with a different path, so that no path always pays for the\n\
         switch. Each figure is the median latency of a path. *× bare* divides it by the\n\
         bare hyper-util client's median; *× same headers* by the median of the bare client\n\
         sending the headers every API request carries (API key, identification headers), so\n\
         that both sides put the same bytes on the wire. Allocations and bytes allocated per\n\
         request are counted on the client thread with `flagwire-alloc-counter` (the server\n\
         runs on its own thread). Target (issue #4): the full default stack at most 1.05 × the\n\
         bare client.\n\n",
    );
    note_line(out, &capture.note);
    let report = match &capture.report {
        Ok(r) => r,
        Err(why) => {
            let _ = writeln!(out, "Not available: {why}.");
            return reproduce(out, TRANSPORT_BENCH, args);
        }
    };
    if report.tables.is_empty() {
        out.push_str("Missing: the bench printed no interleaved table this run.\n");
    }
    for table in &report.tables {
        let mut title = table.mode.clone();
        if let Some(first) = title.get(..1) {
            title.replace_range(..1, &first.to_uppercase());
        }
        match table.samples {
            Some(n) => {
                let _ = writeln!(
                    out,
                    "**{title}**, {} requests per path:\n",
                    thousands(n as f64)
                );
            }
            None => {
                let _ = writeln!(out, "**{title}**:\n");
            }
        }
        out.push_str(
            "| path | median | × bare | × same headers | allocations per request | \
             bytes allocated per request | target |\n\
             |---|---:|---:|---:|---:|---:|---|\n",
        );
        for r in &table.rows {
            let target = if r.path == FULL_STACK {
                let met = if r.x_bare <= TRANSPORT_TARGET {
                    "met"
                } else {
                    "**not met**"
                };
                format!("≤ {TRANSPORT_TARGET:.2} × bare: {met}")
            } else {
                "—".to_owned()
            };
            let _ = writeln!(
                out,
                "| {} | {} | {:.3} | {:.3} | {:.1} | {} | {target} |",
                r.path,
                Figure::Time(r.median_ns),
                r.x_bare,
                r.x_same_headers,
                r.allocs,
                r.bytes.map_or("—".to_owned(), thousands),
            );
        }
        if !table.rows.iter().any(|r| r.path == FULL_STACK) {
            let _ = writeln!(
                out,
                "| {FULL_STACK} | missing | — | — | — | — | ≤ {TRANSPORT_TARGET:.2} × bare: missing |"
            );
        }
        out.push('\n');
    }
    match report.layers_ns {
        Some(ns) => {
            let _ = writeln!(
                out,
                "The layers alone, over an in-process service that answers at once, cost {} per \
                 request.",
                Figure::Time(ns)
            );
        }
        None => out.push_str(
            "Missing: the cost of the layers alone (the bench printed no such line this run).\n",
        ),
    }
    unparsed_list(out, &report.unparsed);
    reproduce(out, TRANSPORT_BENCH, args);
}

fn reproduce(out: &mut String, (package, bench): (&str, &str), args: &str) {
    let _ = writeln!(
        out,
        "\nReproduce: `cargo bench -p {package} --bench {bench} {args}` (the comparison is \
         printed before criterion's groups), or `cargo xtask bench --only {bench}`."
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    const VERIFY_OUTPUT: &str = "\
     Running benches/verify.rs (target/release/deps/verify-0123)
allocations per verify: raw_ring_hmac       1KiB: 0
allocations per verify: schematic           1KiB: 0
allocations per verify: standard_webhooks   1KiB: 0
allocations per verify: stripe              1KiB: 2
paired  1KiB schematic          raw       862 ns  verify       913 ns  ratio 1.059
paired  1KiB standard_webhooks  raw       846 ns  verify       947 ns  ratio 1.119
paired  1KiB stripe             raw 0.863µs  verify 0.932 µs  ratio 1.080
paired  1KiB github             raw       863 ns  verify        ns  ratio 1.026
allocations per verify: schematic          64KiB: 0
allocations per verify: schematic          64KiB zero
paired 64KiB schematic          raw     40992 ns  verify     41090 ns  ratio 1.001
paired 64KiB stripe             raw     40992 ns  verify     41960 ns  ratio 1.023
Benchmarking verify/1KiB/raw_ring_hmac: Analyzing
verify/1KiB/schematic   time:   [901.1 ns 905.5 ns 910.2 ns]
";

    const ROUND_TRIP_OUTPUT: &str = "\
   Compiling flagwire-transport v0.1.0
     Running benches/round_trip.rs (target/release/deps/round_trip-dd9e)
interleaved request by request, 2000 requests each (median latency; ratio to the bare client; ratio to the bare client sending the same headers; allocations per request):
  bare hyper-util             45.88µs  x1.000 bare  x1.015 same headers   20.0 allocs   9120 bytes
  bare, same headers          45.18µs  x0.985 bare  x1.000 same headers   24.0 allocs  10240 bytes
  HttpsClient alone           45.71 µs x0.996 bare  x1.012 same headers   21.0 allocs  11000 bytes
  stack without deadlines     garbled  x1.061 bare
  full default stack          47.17µs  x1.058 bare  x1.070 same headers   30.0 allocs  18097 bytes
interleaved in blocks of 50 back-to-back requests, 2000 requests each (median latency; …):
  bare hyper-util             1.02ms  x1.000 bare  x1.000 same headers   20.0 allocs   9120 bytes
  full default stack          1.09ms  x1.069 bare  x1.050 same headers   30.0 allocs  18097 bytes
layers alone, over an in-process service answering at once: 1.02µs per request
Benchmarking round_trip/bare_hyper_util: Analyzing
Found 3 outliers among 100 measurements (3.00%)
  3 (3.00%) high mild
";

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * b.abs().max(1.0)
    }

    #[test]
    fn reads_times_in_every_unit() {
        let t = |s: &str| {
            let tokens: Vec<&str> = s.split_whitespace().collect();
            duration_at(&tokens, 0)
        };
        assert_eq!(t("846 ns"), Some((846.0, 2)));
        assert_eq!(t("47.5µs"), Some((47_500.0, 1)));
        assert_eq!(t("47.5\u{3bc}s"), Some((47_500.0, 1)));
        assert_eq!(t("47.5 \u{b5}s"), Some((47_500.0, 2)));
        assert_eq!(t("2us"), Some((2_000.0, 1)));
        assert_eq!(t("1.5 ms"), Some((1_500_000.0, 2)));
        assert_eq!(t("2.00s"), Some((2e9, 1)));
        assert_eq!(t("850.00ns"), Some((850.0, 1)));
        assert_eq!(t("12 parsecs"), None);
        assert_eq!(t("ns"), None);
        assert_eq!(t("12"), None);
        assert_eq!(t("-3ns"), None);
        assert_eq!(t("1.2.3ns"), None);
        assert_eq!(t(""), None);
    }

    #[test]
    fn parses_the_webhook_report() {
        let r = parse_webhooks(VERIFY_OUTPUT);
        assert_eq!(r.paired.len(), 5, "{r:#?}");
        assert_eq!(
            r.paired[1],
            Paired {
                size: "1KiB".to_owned(),
                scheme: "standard_webhooks".to_owned(),
                raw_ns: 846.0,
                verify_ns: 947.0,
                ratio: 1.119,
            }
        );
        assert!(close(r.paired[2].raw_ns, 863.0), "{r:?}");
        assert!(close(r.paired[2].verify_ns, 932.0), "{r:?}");
        assert_eq!(r.paired[3].size, "64KiB");
        assert_eq!(r.allocations.len(), 5);
        assert_eq!(r.allocations[3].per_verify, 2.0);
        assert_eq!(r.allocations[4].size, "64KiB");
        // The github line has no verify figure; one allocation line no count.
        assert_eq!(r.unparsed.len(), 2, "{:?}", r.unparsed);
        assert!(r.unparsed[0].contains("github"));
        assert!(r.unparsed[1].ends_with("64KiB zero"));
    }

    #[test]
    fn malformed_webhook_lines_are_unparsed_not_panics() {
        for line in [
            "paired",
            "paired ",
            "paired 1KiB",
            "paired 1KiB schematic raw",
            "paired 1KiB schematic raw 1 ns verify 2 ns ratio",
            "paired 1KiB schematic raw 1 ns verify 2 ns ratio NaN",
            "paired 1KiB schematic raw 0 ns verify 2 ns ratio 2",
            "paired raw 1 ns verify 2 ns ratio 2",
            "allocations per verify:",
            "allocations per verify: schematic: 0",
            "allocations per verify: a b c: 0",
            "allocations per verify: schematic 1KiB: -1",
        ] {
            let r = parse_webhooks(line);
            assert!(r.paired.is_empty() && r.allocations.is_empty(), "{line}");
            assert_eq!(r.unparsed, vec![line.trim().to_owned()], "{line}");
        }
        assert_eq!(parse_webhooks(""), WebhookReport::default());
        assert_eq!(
            parse_webhooks("unrelated\nverify/1KiB/x time: [1 ns 2 ns 3 ns]"),
            WebhookReport::default()
        );
    }

    #[test]
    fn parses_the_transport_report() {
        let r = parse_transport(ROUND_TRIP_OUTPUT);
        assert_eq!(r.tables.len(), 2, "{r:#?}");
        let one = &r.tables[0];
        assert_eq!(one.mode, "interleaved request by request");
        assert_eq!(one.samples, Some(2000));
        assert_eq!(one.rows.len(), 4);
        assert_eq!(one.rows[1].path, "bare, same headers");
        assert!(close(one.rows[2].median_ns, 45_710.0));
        let full = &one.rows[3];
        assert_eq!(full.path, "full default stack");
        assert!(close(full.median_ns, 47_170.0), "{full:?}");
        assert_eq!(
            (full.x_bare, full.x_same_headers, full.allocs, full.bytes),
            (1.058, 1.070, 30.0, Some(18_097.0))
        );
        let blocks = &r.tables[1];
        assert_eq!(
            blocks.mode,
            "interleaved in blocks of 50 back-to-back requests"
        );
        assert!(close(blocks.rows[1].median_ns, 1_090_000.0));
        assert!(close(r.layers_ns.unwrap(), 1_020.0));
        assert_eq!(
            r.unparsed,
            vec!["stack without deadlines     garbled  x1.061 bare"]
        );
    }

    #[test]
    fn reads_the_older_transport_format() {
        let text = "\
interleaved over 2000 requests each (median latency; ratio to the bare client; allocations per request):
  bare hyper-util             45.88µs  x1.000 bare  x1.015 same headers   20.0 allocs
  full default stack          47.67µs  x1.039 bare  x1.055 same headers   30.0 allocs
layers alone, over an in-process service answering at once: 1.12µs per request
";
        let r = parse_transport(text);
        assert_eq!(r.tables.len(), 1);
        assert_eq!(r.tables[0].mode, "interleaved over 2000 requests each");
        assert_eq!(r.tables[0].samples, Some(2000));
        assert_eq!(r.tables[0].rows[1].bytes, None);
        assert_eq!(r.tables[0].rows[1].x_bare, 1.039);
        assert!(r.unparsed.is_empty());
    }

    #[test]
    fn malformed_transport_lines_are_unparsed_not_panics() {
        for row in [
            "x",
            "full default stack",
            "full default stack 47µs",
            "full default stack 47µs x1.0 bare",
            "full default stack 47µs x1.0 bare x1.0 same headers",
            "full default stack 47µs bare x1.0 same headers 30 allocs",
            "full default stack 47µs xx bare x1.0 same headers 30 allocs",
            "full default stack 47µs x1 bare same headers 30 allocs",
            "full default stack 47µs x1 bare x1 same headers 30 allocs bytes",
            "47µs x1 bare x1 same headers 30 allocs",
        ] {
            let r = parse_transport(&format!("interleaved x, 5 requests each (y):\n  {row}\n"));
            assert_eq!(r.tables.len(), 1, "{row}");
            assert!(r.tables[0].rows.is_empty(), "{row}: {r:#?}");
            assert_eq!(r.unparsed, vec![row.to_owned()], "{row}");
        }
        let r =
            parse_transport("interleaved but no colon\n  a 1ns x1 bare x1 same headers 1 allocs\n");
        assert!(r.tables.is_empty());
        assert_eq!(r.unparsed, vec!["interleaved but no colon"]);
        let r = parse_transport("layers alone, over a service: soon per request\n");
        assert_eq!(r.layers_ns, None);
        assert_eq!(r.unparsed.len(), 1);
        // Indented lines outside a table (cargo, criterion) are not rows.
        let r = parse_transport("   Compiling x\n  3 (3.00%) high mild\n");
        assert_eq!(r, TransportReport::default());
    }

    fn settings() -> Settings {
        Settings {
            warm_up: 1.0,
            measurement: 3.0,
        }
    }

    fn capture<T>(report: T) -> Option<Capture<T>> {
        Some(Capture {
            report: Ok(report),
            note: None,
        })
    }

    #[test]
    fn renders_nothing_when_neither_bench_ran() {
        assert_eq!(section(&SameRun::default(), settings()), "");
    }

    #[test]
    fn renders_the_webhook_table() {
        let same = SameRun {
            webhooks: capture(parse_webhooks(VERIFY_OUTPUT)),
            transport: None,
        };
        let md = section(&same, settings());
        assert!(md.starts_with("\n## Same-run comparisons\n"), "{md}");
        assert!(!md.contains("### Transport"), "{md}");
        assert!(
            md.contains("| schematic | 1 KiB | 862 ns | 913 ns | 1.059 | ≤ 1.10 | 0 | yes |"),
            "{md}"
        );
        assert!(
            md.contains(
                "| standard_webhooks | 1 KiB | 846 ns | 947 ns | 1.119 | ≤ 1.10 | 0 | **no** (ratio) |"
            ),
            "{md}"
        );
        assert!(
            md.contains(
                "| stripe | 1 KiB | 863 ns | 932 ns | 1.080 | ≤ 1.10 | 2 | **no** (allocations) |"
            ),
            "{md}"
        );
        assert!(
            md.contains("| schematic | 64 KiB | 41.0 µs | 41.1 µs | 1.001 | ≤ 1.02 | 0 | yes |"),
            "{md}"
        );
        assert!(
            md.contains("| stripe | 64 KiB | 41.0 µs | 42.0 µs | 1.023 | ≤ 1.02 | missing | **no** (ratio) |"),
            "{md}"
        );
        assert!(md.contains("raw_ring_hmac at 1 KiB: 0."), "{md}");
        assert!(md.contains("- `paired  1KiB github"), "{md}");
        assert!(
            md.contains(
                "`cargo bench -p flagwire-webhooks --bench verify -- --warm-up-time 1 --measurement-time 3`"
            ),
            "{md}"
        );
        let lines = same.terminal_lines();
        assert_eq!(
            lines,
            vec![
                "webhooks 1 KiB: highest paired ratio 1.119 (standard_webhooks) (target <= 1.10: NOT met)",
                "webhooks 64 KiB: highest paired ratio 1.023 (stripe) (target <= 1.02: NOT met)",
            ]
        );
    }

    #[test]
    fn renders_the_transport_tables() {
        let same = SameRun {
            webhooks: None,
            transport: capture(parse_transport(ROUND_TRIP_OUTPUT)),
        };
        let md = section(&same, settings());
        assert!(!md.contains("### Webhook"), "{md}");
        assert!(
            md.contains("**Interleaved request by request**, 2,000 requests per path:"),
            "{md}"
        );
        assert!(
            md.contains(
                "| full default stack | 47.2 µs | 1.058 | 1.070 | 30.0 | 18,097 | ≤ 1.05 × bare: **not met** |"
            ),
            "{md}"
        );
        assert!(
            md.contains("| bare, same headers | 45.2 µs | 0.985 | 1.000 | 24.0 | 10,240 | — |"),
            "{md}"
        );
        assert!(
            md.contains("| full default stack | 1.09 ms | 1.069 | 1.050 |"),
            "{md}"
        );
        assert!(md.contains("cost 1.02 µs per"), "{md}");
        assert!(
            md.contains("- `stack without deadlines     garbled  x1.061 bare`"),
            "{md}"
        );
        assert_eq!(same.terminal_lines().len(), 2);
    }

    #[test]
    fn renders_what_is_missing() {
        let same = SameRun {
            webhooks: Some(Capture {
                report: Err("reading x.log: not found".to_owned()),
                note: None,
            }),
            transport: Some(Capture {
                report: Ok(parse_transport(
                    "interleaved a, 10 requests each (b):\n  bare hyper-util 1µs x1 bare x1 same headers 1 allocs 2 bytes\n",
                )),
                note: Some("the bench failed (exit 101)".to_owned()),
            }),
        };
        let md = section(&same, settings());
        assert!(
            md.contains("Not available: reading x.log: not found."),
            "{md}"
        );
        assert!(md.contains("Note: the bench failed (exit 101)."), "{md}");
        assert!(
            md.contains(
                "| full default stack | missing | — | — | — | — | ≤ 1.05 × bare: missing |"
            ),
            "{md}"
        );
        assert!(md.contains("Missing: the cost of the layers alone"), "{md}");
        let empty = SameRun {
            webhooks: capture(WebhookReport::default()),
            transport: capture(TransportReport::default()),
        };
        let md = section(&empty, settings());
        assert!(md.contains("the bench printed no paired line"), "{md}");
        assert!(
            md.contains("the bench printed no interleaved table"),
            "{md}"
        );
    }

    #[test]
    fn a_size_with_a_target_but_no_paired_line_is_a_missing_row() {
        let same = SameRun {
            webhooks: capture(parse_webhooks(
                "allocations per verify: schematic 64KiB: 0\n\
                 paired 1KiB schematic raw 1 ns verify 1 ns ratio 1.000\n",
            )),
            transport: None,
        };
        let md = section(&same, settings());
        assert!(
            md.contains("| — | 64 KiB | missing | missing | — | ≤ 1.02 | — | — |"),
            "{md}"
        );
        assert!(!md.contains("| — | 1 KiB |"), "{md}");
    }

    #[test]
    fn reads_logs_of_the_two_benches_only() {
        let dir = std::env::temp_dir().join(format!("xtask-same-run-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("verify.log");
        std::fs::write(&log, VERIFY_OUTPUT).unwrap();
        let mut same = SameRun::default();
        same.read_log("flagwire", "cache", &log, None, false);
        assert_eq!(same, SameRun::default());
        same.read_log("flagwire-webhooks", "verify", &log, Some("exit 101"), true);
        let w = same.webhooks.as_ref().unwrap();
        assert_eq!(w.report.as_ref().unwrap().paired.len(), 5);
        let note = w.note.as_deref().unwrap();
        assert!(
            note.contains("earlier run (verify.log)") && note.contains("exit 101"),
            "{note}"
        );
        assert!(!note.contains(&*dir.to_string_lossy()), "{note}");
        same.read_log(
            "flagwire-transport",
            "round_trip",
            &dir.join("missing.log"),
            None,
            false,
        );
        assert!(same.transport.as_ref().unwrap().report.is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
