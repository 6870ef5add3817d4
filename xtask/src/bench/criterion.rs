//! Running the criterion benches and reading their results from the files
//! criterion writes (`<target>/criterion/**/new/{benchmark,estimates}.json`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use serde::Deserialize;

use super::process::run_logged;

/// A bench target of the workspace.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Bench {
    /// Its package.
    pub package: String,
    /// The target's name.
    pub name: String,
    /// Its `required-features`, passed to `cargo bench`.
    pub features: Vec<String>,
}

/// What `cargo metadata` says of the workspace.
#[derive(Debug)]
pub struct Workspace {
    /// Every bench target of the workspace's packages, sorted.
    pub benches: Vec<Bench>,
    /// Where cargo builds (it honours `CARGO_TARGET_DIR` and a
    /// `build.target-dir` in any config file).
    pub target_directory: Option<PathBuf>,
}

/// The workspace's benches and target directory, from one `cargo metadata`.
pub fn discover(root: &Path) -> Result<Workspace, String> {
    let out = Command::new(cargo())
        .current_dir(root)
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .output()
        .map_err(|e| format!("cannot run cargo metadata: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let text = String::from_utf8(out.stdout).map_err(|e| format!("cargo metadata: {e}"))?;
    let target_directory = serde_json::from_str::<Metadata>(&text)
        .ok()
        .and_then(|m| m.target_directory);
    Ok(Workspace {
        benches: benches_in_metadata(&text)?,
        target_directory,
    })
}

#[derive(Deserialize)]
struct Metadata {
    packages: Vec<Package>,
    #[serde(default)]
    target_directory: Option<PathBuf>,
}

#[derive(Deserialize)]
struct Package {
    name: String,
    targets: Vec<Target>,
}

#[derive(Deserialize)]
struct Target {
    name: String,
    kind: Vec<String>,
    #[serde(default, rename = "required-features")]
    required_features: Vec<String>,
}

/// The bench targets listed in `cargo metadata` output, sorted.
fn benches_in_metadata(json: &str) -> Result<Vec<Bench>, String> {
    let meta: Metadata =
        serde_json::from_str(json).map_err(|e| format!("cargo metadata output: {e}"))?;
    let mut out: Vec<Bench> = meta
        .packages
        .into_iter()
        .flat_map(|p| {
            let name = p.name;
            p.targets
                .into_iter()
                .filter(|t| t.kind.iter().any(|k| k == "bench"))
                .map(move |t| Bench {
                    package: name.clone(),
                    name: t.name,
                    features: t.required_features,
                })
        })
        .collect();
    out.sort();
    Ok(out)
}

/// Warm-up and measurement time handed to every bench.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Settings {
    /// `--warm-up-time`, seconds.
    pub warm_up: f64,
    /// `--measurement-time`, seconds.
    pub measurement: f64,
}

/// Runs one bench with `settings`; its output goes to a log file under
/// `logs`. Returns the ids criterion analysed in this run, read from that
/// output, so that results another process wrote to the shared target
/// directory meanwhile are not taken for this run's.
pub fn run(
    root: &Path,
    logs: &Path,
    bench: &Bench,
    settings: Settings,
) -> Result<Vec<String>, String> {
    let Bench {
        package,
        name: bench,
        features,
    } = bench;
    let mut cmd = Command::new(cargo());
    cmd.current_dir(root)
        .args(["bench", "-p", package, "--bench", bench]);
    // A bench that needs a feature (the Redis one) gets it.
    if !features.is_empty() {
        cmd.arg("--features").arg(features.join(","));
    }
    cmd.args([
        "--",
        "--warm-up-time",
        &settings.warm_up.to_string(),
        "--measurement-time",
        &settings.measurement.to_string(),
    ]);
    // Building in release can take a while on a busy machine; the limit is
    // only there so that a hung bench cannot hold the command forever.
    let log = log_path(logs, package, bench);
    run_logged(
        &format!("cargo bench -p {package} --bench {bench}"),
        &mut cmd,
        &log,
        Duration::from_secs(45 * 60),
    )?;
    let text =
        std::fs::read_to_string(&log).map_err(|e| format!("reading {}: {e}", log.display()))?;
    Ok(analysed_ids(&text))
}

/// Where [`run`] writes the output of one bench.
pub fn log_path(logs: &Path, package: &str, bench: &str) -> PathBuf {
    logs.join(format!("{package}-{bench}.log"))
}

/// The ids of the `Benchmarking <id>: Analyzing` lines criterion prints.
fn analysed_ids(output: &str) -> Vec<String> {
    output
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Benchmarking "))
        .filter_map(|l| l.strip_suffix(": Analyzing"))
        .map(str::to_owned)
        .collect()
}

/// The `cargo` that runs this task (or the one on `PATH`).
pub fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned())
}

/// One benchmark's result.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    /// Median time per iteration, nanoseconds.
    pub median_ns: f64,
    /// Elements per iteration, when the bench declares an element
    /// throughput (`Throughput::Elements`).
    pub elements: Option<u64>,
}

impl Estimate {
    /// Elements per second, for a bench with an element throughput.
    pub fn elements_per_sec(&self) -> Option<f64> {
        let n = self.elements?;
        (self.median_ns > 0.0).then(|| n as f64 * 1e9 / self.median_ns)
    }
}

#[derive(Deserialize)]
struct BenchmarkId {
    full_id: String,
    #[serde(default)]
    throughput: Option<Throughput>,
}

#[derive(Deserialize)]
struct Throughput {
    #[serde(rename = "Elements")]
    elements: Option<u64>,
}

#[derive(Deserialize)]
struct PointEstimate {
    point_estimate: f64,
}

#[derive(Deserialize)]
struct Estimates {
    median: PointEstimate,
}

/// Reads every result under `<target>/criterion`, keyed by criterion's full
/// benchmark id (`group/function`). With `since`, results whose estimates
/// file is older are left out (they come from an earlier run).
pub fn collect(
    target: &Path,
    since: Option<SystemTime>,
) -> Result<BTreeMap<String, Estimate>, String> {
    let mut dirs = Vec::new();
    find_new_dirs(&target.join("criterion"), &mut dirs)?;
    let mut out = BTreeMap::new();
    for dir in dirs {
        let estimates_path = dir.join("estimates.json");
        let Ok(meta) = std::fs::metadata(&estimates_path) else {
            continue;
        };
        if let (Some(since), Ok(modified)) = (since, meta.modified())
            && modified < since
        {
            continue;
        }
        let id: BenchmarkId = read_json(&dir.join("benchmark.json"))?;
        let estimates: Estimates = read_json(&estimates_path)?;
        out.insert(
            id.full_id,
            Estimate {
                median_ns: estimates.median.point_estimate,
                elements: id.throughput.and_then(|t| t.elements),
            },
        );
    }
    Ok(out)
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Every `new` directory holding a `benchmark.json` below `dir`.
fn find_new_dirs(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for entry in entries {
        let path = entry
            .map_err(|e| format!("listing {}: {e}", dir.display()))?
            .path();
        if !path.is_dir() {
            continue;
        }
        if path.file_name().is_some_and(|n| n == "new") {
            if path.join("benchmark.json").is_file() {
                out.push(path);
            }
        } else {
            find_new_dirs(&path, out)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, full_id: &str, median: f64) {
        std::fs::create_dir_all(dir).unwrap();
        let throughput = if full_id.starts_with("mock/") {
            r#"{"Elements":20}"#
        } else {
            "null"
        };
        std::fs::write(
            dir.join("benchmark.json"),
            format!(r#"{{"group_id":"g","function_id":"f","value_str":null,"throughput":{throughput},"full_id":"{full_id}","directory_name":"x","title":"t"}}"#),
        )
        .unwrap();
        std::fs::write(
            dir.join("estimates.json"),
            format!(r#"{{"mean":{{"point_estimate":1.0}},"median":{{"point_estimate":{median},"standard_error":0.1}}}}"#),
        )
        .unwrap();
    }

    #[test]
    fn reads_medians_by_full_id() {
        let target = std::env::temp_dir().join(format!("xtask-bench-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&target);
        write(
            &target.join("criterion/verify_1KiB/schematic/new"),
            "verify/1KiB/schematic",
            812.5,
        );
        write(
            &target.join("criterion/client/track/new"),
            "client/track",
            95.0,
        );
        // A `base` directory (the previous run) is not read.
        write(
            &target.join("criterion/client/track/base"),
            "client/track",
            1e9,
        );
        write(
            &target.join("criterion/mock/check/new"),
            "mock/check",
            1_000.0,
        );
        let all = collect(&target, None).unwrap();
        assert_eq!(all.len(), 3);
        assert_eq!(all["verify/1KiB/schematic"].median_ns, 812.5);
        assert_eq!(all["client/track"].median_ns, 95.0);
        assert_eq!(all["client/track"].elements_per_sec(), None);
        // 20 elements per microsecond.
        assert_eq!(all["mock/check"].elements_per_sec(), Some(20_000_000.0));

        // Results older than the run are left out.
        let later = SystemTime::now() + Duration::from_secs(3600);
        assert!(collect(&target, Some(later)).unwrap().is_empty());
        let _ = std::fs::remove_dir_all(&target);
    }

    #[test]
    fn reads_analysed_ids_from_the_output() {
        let out = "Benchmarking client/track\nBenchmarking client/track: Warming up for 1.0000 s\n\
                   Benchmarking client/track: Analyzing\nclient/track  time: [1 ns 2 ns 3 ns]\n\
                   Benchmarking verify/1KiB/raw_ring_hmac: Analyzing\n";
        assert_eq!(
            analysed_ids(out),
            vec![
                "client/track".to_owned(),
                "verify/1KiB/raw_ring_hmac".to_owned()
            ]
        );
    }

    #[test]
    fn finds_bench_targets_in_metadata() {
        let json = r#"{"packages":[
            {"name":"flagwire","targets":[{"name":"flagwire","kind":["lib"]},
                {"name":"enqueue","kind":["bench"],"required-features":["redis"]},
                {"name":"cache","kind":["bench"]}]},
            {"name":"xtask","targets":[{"name":"xtask","kind":["bin"]}]}]}"#;
        let found: Vec<(String, String, Vec<String>)> = benches_in_metadata(json)
            .unwrap()
            .into_iter()
            .map(|b| (b.package, b.name, b.features))
            .collect();
        assert_eq!(
            found,
            vec![
                ("flagwire".to_owned(), "cache".to_owned(), vec![]),
                (
                    "flagwire".to_owned(),
                    "enqueue".to_owned(),
                    vec!["redis".to_owned()]
                )
            ]
        );
        assert!(benches_in_metadata("[]").is_err());
    }

    #[test]
    fn a_missing_directory_is_empty() {
        let missing =
            std::env::temp_dir().join(format!("xtask-bench-missing-{}", std::process::id()));
        let all = collect(&missing, None).unwrap();
        assert!(all.is_empty());
    }

    #[test]
    fn a_malformed_file_is_an_error() {
        let target = std::env::temp_dir().join(format!("xtask-bench-bad-{}", std::process::id()));
        let dir = target.join("criterion/a/new");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("benchmark.json"), "{").unwrap();
        std::fs::write(dir.join("estimates.json"), "{}").unwrap();
        let err = collect(&target, None).unwrap_err();
        assert!(err.contains("benchmark.json"), "{err}");
        let _ = std::fs::remove_dir_all(&target);
    }
}
