//! `cargo xtask bench [--peers]`: every criterion bench of the workspace and
//! the end-to-end scenarios, written to `docs/benchmarks.md` as one table of
//! figures next to their limits (and, with `--peers`, next to the official
//! Python SDK measured against the same emulator in the same run). The
//! comparisons the webhook and transport benches print themselves, both
//! sides taking turns, are read from their output into a section of their
//! own (see [`same_run`]).

mod criterion;
mod delivery;
#[cfg(feature = "peers")]
mod flagwire_side;
mod machine;
mod peers;
mod process;
mod report;
mod same_run;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde_json::Value;

use self::criterion::{Estimate, Settings};
use self::delivery::Delivery;
use self::machine::Machine;
use self::peers::{PeerResults, PeerSettings};
use self::report::{Cell, Figure, Limit, Row};
use self::same_run::SameRun;

/// The name `--only` knows the delivery example by.
const EXAMPLE: &str = "delivery-example";

const USAGE: &str = "\
usage: cargo xtask bench [options]

Runs every criterion bench with short settings and the end-to-end delivery
example, then writes docs/benchmarks.md.

options:
  --peers                 also measure the official Python SDK (schematichq, pinned in
                          bench/peers/schematic_py/requirements.txt) and flagwire against
                          the flagwire-mock binary (needs python3 with venv, and PyPI)
  --quick                 shorter settings: warm-up 0.5 s, measurement 1 s, 5,000 events
  --warm-up-time S        criterion warm-up time (default 1)
  --measurement-time S    criterion measurement time and seconds per peer scenario (default 3)
  --events N              events per side in the peers delivery scenario (default 20000)
  --only LIST             comma-separated names of what to run: bench targets (e.g. verify,
                          round_trip, cache, client, enqueue, rules, check, delivery) and
                          delivery-example; others are left out
  --skip-criterion        do not run the benches; use the latest results on disk (and the
                          same-run comparisons in the benches' latest logs)
  --out PATH              where to write the report (default docs/benchmarks.md)";

/// Parsed options.
#[derive(Debug, Clone, PartialEq)]
struct Options {
    peers: bool,
    settings: Settings,
    events: u64,
    only: Option<Vec<String>>,
    skip_criterion: bool,
    out: Option<PathBuf>,
}

fn seconds(name: &str, v: Option<&&str>) -> Result<f64, String> {
    v.and_then(|v| v.parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0 && *s <= 600.0)
        .ok_or_else(|| format!("{name} needs a number of seconds (0 < S <= 600)"))
}

impl Options {
    fn parse(args: &[&str]) -> Result<Options, String> {
        let mut o = Options {
            peers: false,
            settings: Settings {
                warm_up: 1.0,
                measurement: 3.0,
            },
            events: 20_000,
            only: None,
            skip_criterion: false,
            out: None,
        };
        let (mut warm, mut measure, mut events) = (None, None, None);
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            match *arg {
                "--peers" => o.peers = true,
                "--quick" => {
                    o.settings = Settings {
                        warm_up: 0.5,
                        measurement: 1.0,
                    };
                    o.events = 5_000;
                }
                "--warm-up-time" => warm = Some(seconds(arg, it.next())?),
                "--measurement-time" => {
                    measure = Some(seconds(arg, it.next())?);
                }
                "--events" => {
                    events = Some(
                        it.next()
                            .and_then(|v| v.parse::<u64>().ok())
                            .filter(|n| (100..=1_000_000).contains(n))
                            .ok_or("--events needs a count from 100 to 1000000")?,
                    );
                }
                "--only" => {
                    let list = it.next().ok_or("--only needs a list of bench names")?;
                    let names: Vec<String> = list
                        .split(',')
                        .map(|s| s.trim().to_owned())
                        .filter(|s| !s.is_empty())
                        .collect();
                    if names.is_empty() {
                        return Err("--only needs a list of bench names".to_owned());
                    }
                    o.only = Some(names);
                }
                "--skip-criterion" => o.skip_criterion = true,
                "--out" => o.out = Some(PathBuf::from(it.next().ok_or("--out needs a path")?)),
                other => return Err(format!("unknown option {other:?}\n\n{USAGE}")),
            }
        }
        if let Some(w) = warm {
            o.settings.warm_up = w;
        }
        if let Some(m) = measure {
            o.settings.measurement = m;
        }
        if let Some(n) = events {
            o.events = n;
        }
        Ok(o)
    }

    fn selected(&self, name: &str) -> bool {
        self.only
            .as_ref()
            .is_none_or(|only| only.iter().any(|n| n == name))
    }
}

/// Entry point of `cargo xtask bench ...`.
pub fn run(root: &Path, args: &[&str]) -> Result<(), String> {
    if let Some(("--flagwire-side", rest)) = args.split_first().map(|(a, r)| (*a, r)) {
        return flagwire_side(rest);
    }
    if args.iter().any(|a| *a == "-h" || *a == "--help") {
        println!("{USAGE}");
        return Ok(());
    }
    let options = Options::parse(args)?;
    let workspace = criterion::discover(root)?;
    let target = workspace
        .target_directory
        .unwrap_or_else(|| target_dir_from_env(root));
    let logs = target.join("xtask-bench").join("logs");
    let machine = Machine::describe(root);
    let started = SystemTime::now();
    let mut failures = Vec::new();
    let mut analysed = std::collections::BTreeSet::new();

    let benches = workspace.benches;
    if let Some(only) = &options.only {
        for n in only {
            if n != EXAMPLE && !benches.iter().any(|b| &b.name == n) {
                let known: Vec<&str> = benches.iter().map(|b| b.name.as_str()).collect();
                return Err(format!(
                    "--only: no bench named {n:?} (benches: {}; and {EXAMPLE})",
                    known.join(", ")
                ));
            }
        }
    }
    // The same-run comparisons two benches print go to their logs with the
    // rest of their output and are read back from there.
    let mut same_run = SameRun::default();
    for target in &benches {
        let (package, bench) = (&target.package, &target.name);
        if !options.selected(bench) {
            continue;
        }
        let log = criterion::log_path(&logs, package, bench);
        if options.skip_criterion {
            if log.is_file() {
                same_run.read_log(package, bench, &log, None, true);
            }
            continue;
        }
        println!("==> cargo bench -p {package} --bench {bench}");
        match criterion::run(root, &logs, target, options.settings) {
            Ok(ids) => {
                analysed.extend(ids);
                same_run.read_log(package, bench, &log, None, false);
            }
            Err(e) => {
                eprintln!("error: {e}");
                same_run.read_log(package, bench, &log, Some(&e), false);
                failures.push(e);
            }
        }
    }
    let since = (!options.skip_criterion).then_some(started);
    let mut estimates = criterion::collect(&target, since)?;
    if !options.skip_criterion {
        estimates.retain(|id, _| analysed.contains(id));
    }

    let delivery = if options.selected(EXAMPLE) {
        println!("==> cargo run --release -p flagwire --example delivery -- --json");
        let d = delivery::run(root, &logs);
        if let Err(e) = &d {
            eprintln!("note: delivery example: {e}");
        }
        d
    } else {
        Err("left out by --only".to_owned())
    };

    let peers = options.peers.then(|| {
        let r = peers::run(
            root,
            &target,
            PeerSettings {
                events: options.events,
                seconds: options.settings.measurement,
            },
        );
        if let Err(e) = &r {
            eprintln!("error: --peers: {e}");
            failures.push(format!("--peers: {e}"));
        }
        if let Ok(Err(e)) = r.as_ref().map(|p| &p.python) {
            eprintln!("error: --peers: {e}");
            failures.push(format!("--peers: {e}"));
        }
        r
    });

    let rows = rows(&estimates, &delivery, peers.as_ref(), &options);
    let doc = document(
        root,
        &machine,
        &options,
        &rows,
        &estimates,
        peers.as_ref(),
        &same_run,
    );
    let out = options
        .out
        .clone()
        .unwrap_or_else(|| root.join("docs").join("benchmarks.md"));
    std::fs::write(&out, doc).map_err(|e| format!("writing {}: {e}", out.display()))?;
    println!("\n{}", report::terminal_summary(&rows));
    for line in same_run.terminal_lines() {
        println!("same run: {line}");
    }
    println!("wrote {}", out.display());
    if failures.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} step(s) failed (their figures are marked n/a):\n  {}",
            failures.len(),
            failures.join("\n  ")
        ))
    }
}

#[cfg(feature = "peers")]
fn flagwire_side(args: &[&str]) -> Result<(), String> {
    flagwire_side::main(args)
}

#[cfg(not(feature = "peers"))]
fn flagwire_side(_args: &[&str]) -> Result<(), String> {
    Err(
        "this xtask was built without the `peers` feature; run `cargo xtask bench --peers`"
            .to_owned(),
    )
}

/// Cargo's target directory when `cargo metadata` did not say: from
/// `CARGO_TARGET_DIR`, else `target` in the workspace.
fn target_dir_from_env(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|p| if p.is_absolute() { p } else { root.join(p) })
        .unwrap_or_else(|| root.join("target"))
}

/// The first of `ids` with a result (benches get renamed; a row lists the
/// names it accepts, newest first).
fn find<'a>(
    estimates: &'a BTreeMap<String, Estimate>,
    ids: &[&str],
) -> Result<&'a Estimate, String> {
    ids.iter().find_map(|id| estimates.get(*id)).ok_or_else(|| {
        format!(
            "no criterion result for `{}` from this run",
            ids.join("` or `")
        )
    })
}

fn crit(estimates: &BTreeMap<String, Estimate>, ids: &[&str]) -> Cell {
    match find(estimates, ids) {
        Ok(e) => Cell::Value(Figure::Time(e.median_ns), None),
        Err(why) => Cell::Missing(why),
    }
}

/// Elements per second of a bench with an element throughput (one element
/// per iteration if it declares none).
fn crit_rate(estimates: &BTreeMap<String, Estimate>, ids: &[&str], unit: &'static str) -> Cell {
    match find(estimates, ids) {
        Ok(e) if e.median_ns > 0.0 => {
            let rate = e.elements_per_sec().unwrap_or(1e9 / e.median_ns);
            Cell::Value(Figure::Rate(rate, unit), None)
        }
        Ok(_) => Cell::Missing(format!("a zero median for `{}`", ids[0])),
        Err(why) => Cell::Missing(why),
    }
}

fn limit(label: &str, value: Cell) -> Option<Limit> {
    Some(Limit {
        label: label.to_owned(),
        source: None,
        value,
    })
}

/// A limit measured by a criterion bench (the first of `ids` with a result).
fn crit_limit(est: &BTreeMap<String, Estimate>, label: &str, ids: &[&str]) -> Option<Limit> {
    let source = ids
        .iter()
        .find(|id| est.contains_key(**id))
        .unwrap_or(&ids[0]);
    Some(Limit {
        label: label.to_owned(),
        source: Some((*source).to_owned()),
        value: crit(est, ids),
    })
}

fn target(label: &str, figure: Figure) -> Option<Limit> {
    limit(label, Cell::Value(figure, None))
}

/// A number from a side's JSON summary.
fn side_time(side: &Value, key: &str) -> Cell {
    match side[key].as_f64() {
        Some(ns) if ns > 0.0 => Cell::Value(Figure::Time(ns), None),
        _ => Cell::Missing(format!("the side's summary has no `{key}`")),
    }
}

fn side_bytes(side: &Value, key: &str) -> Cell {
    match side[key].as_f64() {
        Some(b) if b > 0.0 => Cell::Value(Figure::Bytes(b), None),
        _ => Cell::Missing(format!("the side's summary has no `{key}`")),
    }
}

fn side_delivery(side: &Value, counted: Option<u64>, events: u64) -> Cell {
    let Some(rate) = side["delivery"]["events_per_sec"].as_f64() else {
        return Cell::Missing("the side's summary has no delivery figure".to_owned());
    };
    let detail = match counted {
        Some(n) if n == events => "none lost".to_owned(),
        Some(n) => format!("{} LOST", events.saturating_sub(n)),
        None => "not counted".to_owned(),
    };
    Cell::Value(Figure::Rate(rate, "events/s"), Some(detail))
}

/// Where the Python figure of a scenario comes from.
enum Py<'a> {
    Time(&'a str),
    Bytes(&'a str),
    Delivery,
    None(&'a str),
}

fn rows(
    est: &BTreeMap<String, Estimate>,
    delivery: &Result<Delivery, String>,
    peers: Option<&Result<PeerResults, String>>,
    options: &Options,
) -> Vec<Row> {
    let py_cell = |what: Py<'_>| -> Cell {
        let results = match peers {
            None => return Cell::NotApplicable("not run (add --peers)".to_owned()),
            Some(Err(e)) => return Cell::Missing(e.clone()),
            Some(Ok(p)) => p,
        };
        if let Py::None(why) = what {
            return Cell::NotApplicable(why.to_owned());
        }
        let side = match &results.python {
            Ok(side) => side,
            Err(e) => return Cell::Missing(e.clone()),
        };
        match what {
            Py::Time(key) => side_time(side, key),
            Py::Bytes(key) => side_bytes(side, key),
            Py::Delivery => side_delivery(side, results.python_counted, results.events),
            Py::None(_) => unreachable!("handled above"),
        }
    };
    let fw_peer = |f: &dyn Fn(&PeerResults) -> Cell| -> Cell {
        match peers {
            None => Cell::Missing("measured with --peers only".to_owned()),
            Some(Err(e)) => Cell::Missing(e.clone()),
            Some(Ok(p)) => f(p),
        }
    };
    let no_rules = "the sync Python client has no local rules engine (its async client \
                    evaluates through a WASM module, with DataStream only)";
    // One row per webhook case: the scheme's verify against the raw HMAC
    // over the same body size.
    let verify_row = |scheme: &str, size: &str, case: &str, python: Cell| {
        let source = format!("verify/{size}/{case}");
        Row {
            scenario: format!(
                "Webhook verification, {scheme}, {} body",
                same_run::spaced_size(size)
            ),
            flagwire: crit(est, &[source.as_str()]),
            limit: crit_limit(
                est,
                "raw ring HMAC-SHA256 verify",
                &[format!("verify/{size}/raw_ring_hmac").as_str()],
            ),
            source,
            python,
        }
    };
    let schematic_only = || {
        py_cell(Py::None(
            "the Python SDK verifies only the Schematic scheme",
        ))
    };
    let mut rows = vec![
        verify_row(
            "Schematic scheme",
            "1KiB",
            "schematic",
            py_cell(Py::Time("verify_1k_ns")),
        ),
        verify_row(
            "Schematic scheme",
            "64KiB",
            "schematic",
            py_cell(Py::Time("verify_64k_ns")),
        ),
        verify_row("Standard Webhooks", "1KiB", "standard_webhooks", schematic_only()),
        verify_row("Stripe scheme", "1KiB", "stripe", schematic_only()),
        verify_row("eSauti scheme", "1KiB", "esauti", schematic_only()),
        Row {
            scenario: "REST round trip to a local hyper server, full transport stack".to_owned(),
            source: "round_trip/flagwire_stack".to_owned(),
            flagwire: crit(est, &["round_trip/flagwire_stack"]),
            limit: crit_limit(est, "bare hyper-util client", &["round_trip/bare_hyper_util"]),
            python: py_cell(Py::None(
                "the bench's server is in-process Rust; see the get_company row",
            )),
        },
        Row {
            scenario: "get_company, sequential round trips to flagwire-mock".to_owned(),
            source: "xtask bench --flagwire-side".to_owned(),
            flagwire: fw_peer(&|p| side_time(&p.flagwire, "get_company_ns")),
            limit: limit(
                "bare hyper-util GET, same URL",
                fw_peer(&|p| side_time(&p.flagwire, "bare_get_ns")),
            ),
            python: py_cell(Py::Time("get_company_ns")),
        },
        Row {
            scenario: "check_flag answered from the client's cache".to_owned(),
            source: "client/check_flag_cache_hit".to_owned(),
            flagwire: crit(est, &["client/check_flag_cache_hit"]),
            limit: crit_limit(est, "`HashMap<String, bool>` lookup", &["client/hashmap_get"]),
            python: py_cell(Py::Time("check_flag_cached_ns")),
        },
        Row {
            scenario: "Flag cache hit alone (LocalFlagCache, bool read in place)".to_owned(),
            source: "flag_cache/hit_company_user".to_owned(),
            flagwire: crit(est, &["flag_cache/hit_company_user", "flag_cache/lru_hit"]),
            limit: crit_limit(est, "`HashMap<String, bool>` lookup", &["flag_cache/hashmap_get"]),
            python: py_cell(Py::None("included in the check_flag row")),
        },
        Row {
            scenario: "track(), while the worker drains to a capture host".to_owned(),
            source: "client/track_while_draining".to_owned(),
            flagwire: crit(est, &["client/track_while_draining", "client/track"]),
            limit: crit_limit(
                est,
                "event buffer queue push alone, worker draining",
                &["event_buffer/enqueue_while_draining"],
            ),
            python: py_cell(Py::Time("track_ns")),
        },
        Row {
            scenario: "track(), delivery worker parked (caller's share only)".to_owned(),
            source: "client/track_worker_parked".to_owned(),
            flagwire: crit(est, &["client/track_worker_parked"]),
            limit: crit_limit(est, "event buffer queue push alone", &["event_buffer/enqueue_worker_parked", "event_buffer/enqueue"]),
            python: py_cell(Py::None("its buffer has no such mode; see the row above")),
        },
        Row {
            scenario: "Rules engine, flag of 10 rules x 3 conditions".to_owned(),
            source: "rules/check_10_rules_x_3_conditions".to_owned(),
            flagwire: crit(est, &["rules/check_10_rules_x_3_conditions"]),
            limit: target("target", Figure::Time(200.0)),
            python: py_cell(Py::None(no_rules)),
        },
        Row {
            scenario: "Rules engine, flag of 1 rule, 1 condition".to_owned(),
            source: "rules/check_1_rule_1_condition".to_owned(),
            flagwire: crit(est, &["rules/check_1_rule_1_condition"]),
            limit: target("target", Figure::Time(50.0)),
            python: py_cell(Py::None(no_rules)),
        },
        Row {
            scenario: "Local flag check over DataStream, 10 rules x 3 conditions, company and user in memory"
                .to_owned(),
            source: "datastream/local_check".to_owned(),
            flagwire: crit(est, &["datastream/local_check"]),
            limit: crit_limit(
                est,
                "the same evaluation and lookups alone",
                &["datastream/parts_alone"],
            ),
            python: py_cell(Py::None(no_rules)),
        },
        Row {
            scenario: "Flag check in Redis replicator mode, in-process layer warm".to_owned(),
            source: "redis/replicator_check_warm".to_owned(),
            flagwire: crit(est, &["redis/replicator_check_warm"]),
            limit: crit_limit(est, "direct-mode local check", &["redis/direct_local_check"]),
            python: py_cell(Py::None("not measured: needs the Python SDK's Redis provider")),
        },
        Row {
            scenario: "Flag check in Redis replicator mode, company read from Redis".to_owned(),
            source: "redis/replicator_check_cold".to_owned(),
            flagwire: crit(est, &["redis/replicator_check_cold"]),
            limit: crit_limit(est, "bare Redis GET, same connection", &["redis/bare_get"]),
            python: py_cell(Py::None("not measured: needs the Python SDK's Redis provider")),
        },
        Row {
            scenario: "OpenFeature boolean evaluation, flagwire-openfeature provider alone (local check)"
                .to_owned(),
            source: "openfeature/local/provider".to_owned(),
            flagwire: crit(est, &["openfeature/local/provider"]),
            limit: crit_limit(est, "check_flag_detailed called directly", &["openfeature/local/direct"]),
            python: py_cell(Py::None("no Python OpenFeature provider for Schematic")),
        },
        Row {
            scenario: "OpenFeature boolean evaluation through open-feature's client (local check)"
                .to_owned(),
            source: "openfeature/local/openfeature".to_owned(),
            flagwire: crit(est, &["openfeature/local/openfeature"]),
            limit: crit_limit(est, "check_flag_detailed called directly", &["openfeature/local/direct"]),
            python: py_cell(Py::None("no Python OpenFeature provider for Schematic")),
        },
        Row {
            scenario: "HTTPS round trip through a loopback CONNECT proxy".to_owned(),
            source: "proxy/https_proxied".to_owned(),
            flagwire: crit(est, &["proxy/https_proxied"]),
            limit: crit_limit(est, "the same round trip direct", &["proxy/https_direct"]),
            python: py_cell(Py::None("not measured")),
        },
        Row {
            scenario: "Emulator flag checks, 32 concurrent keep-alive clients".to_owned(),
            source: "mock/check".to_owned(),
            flagwire: crit_rate(est, &["mock/check"], "requests/s"),
            limit: target("target", Figure::Rate(10_000.0, "requests/s")),
            python: py_cell(Py::None("the emulator is part of flagwire")),
        },
        Row {
            scenario: "Emulator flag checks, request recording off".to_owned(),
            source: "mock/check_unrecorded".to_owned(),
            flagwire: crit_rate(est, &["mock/check_unrecorded"], "requests/s"),
            limit: target("target", Figure::Rate(10_000.0, "requests/s")),
            python: py_cell(Py::None("the emulator is part of flagwire")),
        },
        Row {
            scenario: "Event delivery to the in-process emulator, criterion (none lost, checked by the bench)"
                .to_owned(),
            source: "delivery/track_to_emulator".to_owned(),
            flagwire: crit_rate(est, &["delivery/track_to_emulator"], "events/s"),
            limit: None,
            python: py_cell(Py::None("see the flagwire-mock delivery row")),
        },
        Row {
            scenario: format!(
                "Event delivery to flagwire-mock, {} events, counted by the mock",
                report::thousands(options.events as f64)
            ),
            source: "xtask bench --flagwire-side".to_owned(),
            flagwire: fw_peer(&|p| side_delivery(&p.flagwire, Some(p.flagwire_counted), p.events)),
            limit: None,
            python: py_cell(Py::Delivery),
        },
    ];
    rows.extend(delivery::latency_rows(est));
    let (d_rate, d_rss, d_scenario, d_rss_scenario) = match delivery {
        Ok(d) => {
            let lost = if d.lost == 0 {
                "none lost".to_owned()
            } else {
                format!("{} LOST", d.lost)
            };
            (
                Cell::Value(Figure::Rate(d.events_per_sec, "events/s"), Some(lost)),
                match d.peak_rss_bytes {
                    Some(b) if b > 0 => Cell::Value(Figure::Bytes(b as f64), None),
                    _ => Cell::Missing("the OS reports no peak RSS".to_owned()),
                },
                format!(
                    "Event delivery to the in-process emulator, {} events (delivery example)",
                    report::thousands(d.events as f64)
                ),
                format!(
                    "Peak RSS with the capture host down for {:.1} s: {} accepted, {} refused (delivery example)",
                    d.outage_seconds,
                    report::thousands(d.outage_accepted as f64),
                    report::thousands(d.outage_dropped as f64)
                ),
            )
        }
        Err(e) => (
            Cell::Missing(e.clone()),
            Cell::Missing(e.clone()),
            "Event delivery to the in-process emulator (delivery example)".to_owned(),
            "Peak RSS with the capture host down (delivery example)".to_owned(),
        ),
    };
    rows.push(Row {
        scenario: d_scenario,
        source: "cargo run --release -p flagwire --example delivery -- --json".to_owned(),
        flagwire: d_rate,
        limit: None,
        python: py_cell(Py::None("see the flagwire-mock delivery row")),
    });
    rows.push(Row {
        scenario: d_rss_scenario,
        source: "cargo run --release -p flagwire --example delivery -- --json".to_owned(),
        flagwire: d_rss,
        limit: None,
        python: py_cell(Py::None(
            "not measured: its buffer retries a failed batch on the calling thread with sleeps of 1, 2 and 4 s",
        )),
    });
    rows.push(Row {
        scenario: "Peak RSS of the process that ran the peer scenarios".to_owned(),
        source: "xtask bench --flagwire-side".to_owned(),
        flagwire: fw_peer(&|p| side_bytes(&p.flagwire, "peak_rss_bytes")),
        limit: None,
        python: py_cell(Py::Bytes("peak_rss_bytes")),
    });
    rows
}

fn document(
    root: &Path,
    machine: &Machine,
    options: &Options,
    rows: &[Row],
    estimates: &BTreeMap<String, Estimate>,
    peers: Option<&Result<PeerResults, String>>,
    same_run: &SameRun,
) -> String {
    let commit = machine::command_line(root, "git", &["rev-parse", "--short", "HEAD"])
        .unwrap_or_else(|| "unknown".to_owned());
    let python = match peers {
        Some(Ok(PeerResults {
            python: Ok(side), ..
        })) => format!(
            "`{}` {} on {}",
            side["package"].as_str().unwrap_or("schematichq"),
            side["version"].as_str().unwrap_or("unknown"),
            side["runtime"].as_str().unwrap_or("Python")
        ),
        Some(_) => "not available (see the notes)".to_owned(),
        None => "not measured (run with `--peers`)".to_owned(),
    };
    let mut command = "cargo xtask bench".to_owned();
    if options.peers {
        command.push_str(" --peers");
    }
    let mut out = String::new();
    let _ = write!(
        out,
        "# Benchmarks\n\n\
         This file is generated by `{command}`; do not edit it by hand. Each flagwire figure\n\
         stands next to its limit (the same work done by the bare building block, measured in\n\
         the same run) or target, and next to the official Python SDK doing the same work\n\
         against the same `flagwire-mock` server on 127.0.0.1. Absolute times drift on a\n\
         shared machine; ratios taken in one run hold much better.\n\n\
         | | |\n|---|---|\n\
         | date | {date} |\n\
         | machine | {cpus} CPUs, {cpu}, {mem}, {os} |\n\
         | load average (1/5/15 min) | {load_start} at the start, {load_end} at the end |\n\
         | toolchain | {rustc} |\n\
         | flagwire | {version} (commit {commit}) |\n\
         | Python SDK | {python} |\n\
         | criterion | median of each bench, `--warm-up-time {warm} --measurement-time {measure}`{reuse} |\n\n",
        date = machine::now_utc(),
        cpus = machine.cpus,
        cpu = machine.cpu_model,
        mem = machine.memory,
        os = machine.os,
        load_start = machine.load_start,
        load_end = machine::load_average(),
        rustc = machine.rustc,
        version = env!("CARGO_PKG_VERSION"),
        warm = options.settings.warm_up,
        measure = options.settings.measurement,
        reuse = if options.skip_criterion {
            " (results reused from an earlier run)"
        } else {
            ""
        },
    );
    out.push_str("## Results\n\n");
    out.push_str(
        "*Ratio to limit* is flagwire's cost per operation divided by the limit's (1.00 = at the\n\
         limit; for a target, below 1.00 is better than the target). *Python/flagwire* is the\n\
         Python SDK's cost divided by flagwire's (above 1.00 = flagwire is cheaper). For rates,\n\
         the cost is the time per event or request.\n\n",
    );
    out.push_str(&report::markdown_table(rows));
    out.push_str("\n## Where each figure comes from\n\n");
    for row in rows {
        let _ = write!(out, "- {}: `{}`", row.scenario, row.source);
        match row.limit.as_ref().and_then(|l| l.source.as_ref()) {
            Some(limit) => {
                let _ = writeln!(out, "; limit `{limit}`");
            }
            None => out.push('\n'),
        }
    }
    out.push_str(
        "\nThe criterion ids are `group/function` of the benches in `crates/*/benches/`; their\n\
         sources say what each iteration does. The peer scenarios are in\n\
         `xtask/src/bench/flagwire_side.rs` (flagwire, a release build) and\n\
         `bench/peers/schematic_py/peer.py` (the official Python SDK, nothing else):\n\n\
         - webhook verification: `verify_webhook_signature(headers, secret, body)` over a\n  \
           header mapping, against flagwire-webhooks' `SchematicVerifier::verify` (criterion).\n\
         - cached check: `Schematic.check_flag(flag, company, user)` answered by the SDK's\n  \
           `LocalCache` (default size, TTL raised above the measurement time) after one real\n  \
           check, against `Client::check_flag` on a cache hit.\n\
         - track: `Schematic.track(event=..., company=..., user=..., quantity=1)` with the\n  \
           capture host up. The Python buffer sends every 100th event's batch on the calling\n  \
           thread, so its figure includes that share of a POST; flagwire sends from its own\n  \
           thread.\n\
         - get_company: `companies.get_company(id)` against `client.companies().get_company(id)`,\n  \
           one request after the other on a kept-alive connection, body decoded.\n\
         - delivery: N `track` calls as fast as they return, then `shutdown()`; events/s from\n  \
           the first call to the end of shutdown. The mock adds each event to the company's\n  \
           metric for the event name, which is read back to check that none was lost.\n\
         - peak RSS: `ru_maxrss` of the Python process; `VmHWM` of the flagwire process, each\n  \
           after all its scenarios.\n",
    );
    out.push_str(&same_run::section(same_run, options.settings));
    out.push_str(&other_results(rows, estimates, options.skip_criterion));
    out.push_str(
        "\n## Reproduce\n\n\
         ```text\n\
         cargo xtask bench            # criterion benches and the delivery example\n\
         cargo xtask bench --peers    # also the official Python SDK against flagwire-mock\n\
         cargo xtask bench --quick    # shorter settings\n\
         ```\n\n\
         Logs of every step are under `target/xtask-bench/logs/` and\n\
         `target/bench-peers/logs/`; the virtualenv is `target/bench-peers/venv/`.\n",
    );
    // Messages name files by absolute path; the report names them from the
    // workspace root.
    out.replace(&format!("{}/", root.display()), "")
}

/// Every criterion result of the run that no row shows, so that no bench is
/// left out of the report.
fn other_results(rows: &[Row], estimates: &BTreeMap<String, Estimate>, reused: bool) -> String {
    let used: Vec<&str> = rows
        .iter()
        .flat_map(|r| {
            [
                Some(r.source.as_str()),
                r.limit.as_ref().and_then(|l| l.source.as_deref()),
            ]
        })
        .flatten()
        .collect();
    let mut out = String::new();
    for (id, e) in estimates {
        if used.contains(&id.as_str()) {
            continue;
        }
        if out.is_empty() {
            out.push_str(if reused {
                "\n## Other criterion results on disk (latest of each, not all from one run)\n\n"
            } else {
                "\n## Other criterion results of this run\n\n"
            });
            out.push_str("| bench | median per iteration | throughput |\n|---|---:|---:|\n");
        }
        let rate = e.elements_per_sec().map_or("—".to_owned(), |r| {
            format!("{} elements/s", report::thousands(r))
        });
        let _ = writeln!(out, "| `{id}` | {} | {rate} |", Figure::Time(e.median_ns));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_results_no_row_shows() {
        let est = BTreeMap::from([
            (
                "client/track_while_draining".to_owned(),
                Estimate {
                    median_ns: 300.0,
                    elements: None,
                },
            ),
            (
                "esauti/build_envelope".to_owned(),
                Estimate {
                    median_ns: 1_500.0,
                    elements: None,
                },
            ),
            (
                "delivery/x".to_owned(),
                Estimate {
                    median_ns: 1e9,
                    elements: Some(20_000),
                },
            ),
        ]);
        let rows = rows(
            &est,
            &Err("x".to_owned()),
            None,
            &Options::parse(&[]).unwrap(),
        );
        let md = other_results(&rows, &est, false);
        assert!(
            md.contains("| `esauti/build_envelope` | 1.50 µs | — |"),
            "{md}"
        );
        assert!(
            md.contains("| `delivery/x` | 1000 ms | 20,000 elements/s |"),
            "{md}"
        );
        assert!(!md.contains("client/track_while_draining"), "{md}");
    }

    #[test]
    fn parses_options() {
        let o = Options::parse(&[]).unwrap();
        assert!(!o.peers && !o.skip_criterion);
        assert_eq!(o.settings.warm_up, 1.0);
        assert_eq!(o.settings.measurement, 3.0);
        assert_eq!(o.events, 20_000);

        let o = Options::parse(&["--quick", "--peers", "--measurement-time", "2"]).unwrap();
        assert!(o.peers);
        assert_eq!(o.settings.warm_up, 0.5);
        assert_eq!(o.settings.measurement, 2.0);
        assert_eq!(o.events, 5_000);

        let o = Options::parse(&["--only", "verify,delivery-example"]).unwrap();
        assert!(o.selected("verify") && o.selected(EXAMPLE) && !o.selected("rules"));

        assert!(Options::parse(&["--only", ","]).is_err());
        assert!(Options::parse(&["--warm-up-time", "0"]).is_err());
        assert!(Options::parse(&["--warm-up-time"]).is_err());
        assert!(Options::parse(&["--events", "5"]).is_err());
        assert!(Options::parse(&["--bogus"]).unwrap_err().contains("usage"));
    }

    #[test]
    fn rows_without_results_say_why() {
        let options = Options::parse(&[]).unwrap();
        let rows = rows(
            &BTreeMap::new(),
            &Err("the example printed no JSON summary".to_owned()),
            None,
            &options,
        );
        assert!(rows.len() >= 15);
        let md = report::markdown_table(&rows);
        assert!(
            md.contains("no criterion result for `verify/1KiB/schematic`"),
            "{md}"
        );
        assert!(md.contains("no JSON summary"), "{md}");
        assert!(md.contains("not run (add --peers)"), "{md}");
    }

    #[test]
    fn rows_use_medians_and_peer_counts() {
        let options = Options::parse(&["--events", "1000"]).unwrap();
        let est = BTreeMap::from([
            (
                "verify/1KiB/schematic".to_owned(),
                Estimate {
                    median_ns: 900.0,
                    elements: None,
                },
            ),
            (
                "verify/1KiB/raw_ring_hmac".to_owned(),
                Estimate {
                    median_ns: 850.0,
                    elements: None,
                },
            ),
            (
                "mock/check".to_owned(),
                Estimate {
                    median_ns: 50_000.0,
                    elements: Some(1),
                },
            ),
        ]);
        let peers = Ok(PeerResults {
            flagwire: serde_json::json!({"get_company_ns": 50_000.0, "bare_get_ns": 40_000.0,
                "delivery": {"events_per_sec": 100_000.0}, "peak_rss_bytes": 10_485_760}),
            flagwire_counted: 1000,
            python: Ok(
                serde_json::json!({"verify_1k_ns": 4_500.0, "get_company_ns": 500_000.0,
                "delivery": {"events_per_sec": 10_000.0}, "peak_rss_bytes": 52_428_800}),
            ),
            python_counted: Some(990),
            events: 1000,
        });
        let rows = rows(&est, &Err("x".to_owned()), Some(&peers), &options);
        let md = report::markdown_table(&rows);
        assert!(
            md.contains(
                "| 900 ns | 850 ns (raw ring HMAC-SHA256 verify) | 1.06 | 4.50 µs | 5.00 |"
            ),
            "{md}"
        );
        // 50 µs per request is 20,000 requests/s: half the cost of the target.
        assert!(
            md.contains("| 20,000 requests/s | 10,000 requests/s (target) | 0.50 |"),
            "{md}"
        );
        assert!(
            md.contains(
                "| 50.0 µs | 40.0 µs (bare hyper-util GET, same URL) | 1.25 | 500 µs | 10.00 |"
            ),
            "{md}"
        );
        assert!(md.contains("100,000 events/s (none lost)"), "{md}");
        assert!(md.contains("10,000 events/s (10 LOST)"), "{md}");
        assert!(
            md.contains("| 10.0 MiB | — | — | 50.0 MiB | 5.00 |"),
            "{md}"
        );
    }
}
