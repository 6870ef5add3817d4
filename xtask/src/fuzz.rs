//! `cargo xtask fuzz`: runs the cargo-fuzz targets of `fuzz/` for a bounded time each, at the
//! lowest CPU priority, one libFuzzer process at a time, and prints one line of figures per
//! target. Never part of CI: fuzzing is a manual, time-boxed task (`docs/fuzzing.md`).

use std::path::{Path, PathBuf};
use std::process::Command;

const USAGE: &str = "\
usage: cargo xtask fuzz [options]

Builds the fuzz targets of fuzz/ with cargo-fuzz and runs each for a bounded time
under `nice -n 19`, one libFuzzer process at a time (-jobs=1 -workers=1). New corpus
entries go to fuzz/corpus/<target>/ (not tracked), the checked-in seeds are read from
fuzz/seeds/<target>/, crashes land in fuzz/artifacts/<target>/ and libFuzzer's log in
fuzz/logs/<target>/fuzz-0.log.

options:
  --seconds N      fuzzing time per target, 1..=86400 (default 60)
  --target NAME    run only this target (repeatable; default: every target)
  --asan           build with AddressSanitizer through RUSTC_BOOTSTRAP=1 (needs the ASan
                   runtime of the toolchain); the default uses no sanitizer (-s none),
                   which works on a stable toolchain
  --list           print the targets and exit

cargo-fuzz must be installed, for example outside the repository:
  cargo install cargo-fuzz --locked --root /tmp/cargo-fuzz
  export PATH=/tmp/cargo-fuzz/bin:$PATH";

/// Parsed options.
#[derive(Debug, Clone, PartialEq)]
struct Options {
    seconds: u32,
    targets: Vec<String>,
    asan: bool,
    list: bool,
}

impl Options {
    fn parse(args: &[&str]) -> Result<Options, String> {
        let mut o = Options {
            seconds: 60,
            targets: Vec::new(),
            asan: false,
            list: false,
        };
        let mut it = args.iter();
        while let Some(&arg) = it.next() {
            match arg {
                "--seconds" => {
                    o.seconds = it
                        .next()
                        .and_then(|v| v.parse::<u32>().ok())
                        .filter(|s| (1..=86_400).contains(s))
                        .ok_or("--seconds needs a whole number of seconds (1..=86400)")?;
                }
                "--target" => {
                    let name = it.next().ok_or("--target needs a target name")?;
                    o.targets.push((*name).to_owned());
                }
                "--asan" => o.asan = true,
                "--list" => o.list = true,
                other => return Err(format!("unknown option `{other}`\n\n{USAGE}")),
            }
        }
        Ok(o)
    }

    /// The cargo-fuzz sanitizer argument.
    fn sanitizer(&self) -> &'static str {
        if self.asan { "address" } else { "none" }
    }

    /// A `cargo fuzz <subcommand>` for the fuzz project at `fuzz_dir`, niced.
    fn cargo_fuzz(&self, fuzz_dir: &Path, subcommand: &str) -> Command {
        let mut cmd = Command::new("nice");
        cmd.args(["-n", "19", "cargo", "fuzz", subcommand])
            .arg("--fuzz-dir")
            .arg(fuzz_dir);
        // `cargo run` describes the xtask package in the environment; build scripts that
        // watch such variables would otherwise rebuild (ring, for one) on every switch
        // between `cargo xtask fuzz` and a plain `cargo fuzz`.
        for (name, _) in std::env::vars_os() {
            let Some(name) = name.to_str() else { continue };
            if name.starts_with("CARGO_PKG_")
                || name.starts_with("CARGO_MANIFEST_")
                || matches!(
                    name,
                    "CARGO_PRIMARY_PACKAGE" | "CARGO_CRATE_NAME" | "CARGO_BIN_NAME"
                )
            {
                cmd.env_remove(name);
            }
        }
        if self.asan {
            // `-s address` passes `-Zsanitizer`, which a stable compiler accepts only so.
            // A target directory of its own keeps both builds: switching would otherwise
            // rebuild everything each time.
            cmd.env("RUSTC_BOOTSTRAP", "1");
            if subcommand != "list" {
                cmd.arg("--target-dir")
                    .arg(fuzz_dir.join("target").join("asan"));
            }
        }
        cmd
    }
}

/// What one target's run produced, read from libFuzzer's log.
#[derive(Debug, Default, Clone, PartialEq)]
struct Figures {
    runs: Option<u64>,
    seconds: Option<u64>,
    cov: Option<u64>,
    ft: Option<u64>,
    corpus: Option<String>,
    crashed: bool,
}

/// The number right after `key` in `line` (`cov: 123` → 123).
fn number_after(line: &str, key: &str) -> Option<u64> {
    let rest = &line[line.find(key)? + key.len()..];
    let digits: String = rest
        .trim_start()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

impl Figures {
    /// Reads the last status line and the final `Done N runs in S second(s)` of a log.
    fn from_log(log: &str) -> Figures {
        let mut f = Figures::default();
        for line in log.lines() {
            if line.starts_with('#') && line.contains("cov: ") {
                f.cov = number_after(line, "cov:").or(f.cov);
                f.ft = number_after(line, "ft:").or(f.ft);
                if let Some(at) = line.find("corp: ") {
                    f.corpus = line[at + 6..].split_whitespace().next().map(str::to_owned);
                }
            }
            if let Some(rest) = line.strip_prefix("Done ") {
                f.runs = number_after(rest, "");
                f.seconds = number_after(rest, "runs in");
            }
            if line.contains("ERROR: libFuzzer")
                || line.contains("ERROR: AddressSanitizer")
                || line.contains("panicked at")
                || line.starts_with("SUMMARY: libFuzzer")
            {
                f.crashed = true;
            }
        }
        f
    }

    fn summary(&self, target: &str) -> String {
        let show = |v: Option<u64>| v.map_or_else(|| "?".to_owned(), |v| v.to_string());
        format!(
            "{target:<20} runs {:>10}  in {:>5} s  cov {:>6}  ft {:>7}  corpus {:>12}  {}",
            show(self.runs),
            show(self.seconds),
            show(self.cov),
            show(self.ft),
            self.corpus.as_deref().unwrap_or("?"),
            if self.crashed { "CRASH" } else { "ok" }
        )
    }
}

fn cargo_fuzz_installed() -> bool {
    Command::new("cargo")
        .args(["fuzz", "--version"])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn targets(options: &Options, fuzz_dir: &Path) -> Result<Vec<String>, String> {
    let out = options
        .cargo_fuzz(fuzz_dir, "list")
        .output()
        .map_err(|e| format!("running cargo fuzz list: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "cargo fuzz list failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let all: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    if options.targets.is_empty() {
        return Ok(all);
    }
    for t in &options.targets {
        if !all.contains(t) {
            return Err(format!(
                "no fuzz target `{t}`; the targets are: {}",
                all.join(", ")
            ));
        }
    }
    Ok(options.targets.clone())
}

fn run_target(
    options: &Options,
    fuzz_dir: &Path,
    target: &str,
) -> Result<(Figures, PathBuf), String> {
    let corpus = fuzz_dir.join("corpus").join(target);
    let seeds = fuzz_dir.join("seeds").join(target);
    let logs = fuzz_dir.join("logs").join(target);
    for dir in [&corpus, &logs] {
        std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    }
    let log = logs.join("fuzz-0.log");
    // libFuzzer appends to its job log; start each run afresh.
    let _ = std::fs::remove_file(&log);

    let mut cmd = options.cargo_fuzz(fuzz_dir, "run");
    cmd.args(["-s", options.sanitizer(), target]).arg(&corpus);
    if seeds.is_dir() {
        // Read, never written: new inputs go to the first corpus directory.
        cmd.arg(&seeds);
    }
    cmd.arg("--")
        .arg(format!("-max_total_time={}", options.seconds))
        .args([
            "-jobs=1",
            "-workers=1",
            "-timeout=10",
            "-rss_limit_mb=2048",
            "-print_final_stats=1",
        ])
        // With -jobs, libFuzzer writes the job's output to fuzz-<job>.log in the working
        // directory.
        .current_dir(&logs);
    println!(
        "fuzz: {target} for {} s (log: {})",
        options.seconds,
        log.display()
    );
    let status = cmd
        .status()
        .map_err(|e| format!("running cargo fuzz run {target}: {e}"))?;
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let mut figures = Figures::from_log(&text);
    figures.crashed |= !status.success();
    Ok((figures, log))
}

/// Runs `cargo xtask fuzz` with the arguments after `fuzz`.
pub fn run(root: &Path, args: &[&str]) -> Result<(), String> {
    if args.iter().any(|a| *a == "-h" || *a == "--help") {
        println!("{USAGE}");
        return Ok(());
    }
    let options = Options::parse(args)?;
    if !cargo_fuzz_installed() {
        return Err(format!("cargo-fuzz is not installed\n\n{USAGE}"));
    }
    let fuzz_dir = root.join("fuzz");
    let targets = targets(&options, &fuzz_dir)?;
    if options.list {
        for t in &targets {
            println!("{t}");
        }
        return Ok(());
    }

    // Build every target once, so that the timed runs do not include compiling.
    let status = options
        .cargo_fuzz(&fuzz_dir, "build")
        .args(["-s", options.sanitizer()])
        .status()
        .map_err(|e| format!("running cargo fuzz build: {e}"))?;
    if !status.success() {
        return Err("cargo fuzz build failed".to_owned());
    }

    let mut lines = Vec::new();
    let mut crashed = Vec::new();
    for target in &targets {
        let (figures, log) = run_target(&options, &fuzz_dir, target)?;
        if figures.crashed {
            crashed.push(format!("{target} (see {})", log.display()));
        }
        lines.push(figures.summary(target));
    }
    println!();
    for line in &lines {
        println!("{line}");
    }
    if crashed.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "crashes or failures in: {}; reproducers are in fuzz/artifacts/",
            crashed.join(", ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_parse_and_reject() {
        let o = Options::parse(&[
            "--seconds",
            "300",
            "--target",
            "verify",
            "--target",
            "rules_engine",
        ])
        .unwrap();
        assert_eq!(o.seconds, 300);
        assert_eq!(o.targets, ["verify", "rules_engine"]);
        assert!(!o.asan);
        assert_eq!(o.sanitizer(), "none");
        assert!(Options::parse(&["--asan"]).unwrap().asan);
        assert!(Options::parse(&["--seconds", "0"]).is_err());
        assert!(Options::parse(&["--seconds"]).is_err());
        assert!(Options::parse(&["--target"]).is_err());
        assert!(Options::parse(&["--bogus"]).is_err());
    }

    #[test]
    fn figures_from_a_libfuzzer_log() {
        let log = "\
INFO: Seed: 1
#2\tINITED cov: 120 ft: 130 corp: 5/300b exec/s: 0 rss: 40Mb
#1024\tpulse  cov: 150 ft: 190 corp: 9/1Kb lim: 20 exec/s: 512 rss: 41Mb
#40000\tREDUCE cov: 161 ft: 240 corp: 14/2Kb lim: 400 exec/s: 4000 rss: 45Mb L: 3/90 MS: 1 EraseBytes-
Done 41230 runs in 11 second(s)
stat::number_of_executed_units: 41230
";
        let f = Figures::from_log(log);
        assert_eq!(f.runs, Some(41_230));
        assert_eq!(f.seconds, Some(11));
        assert_eq!(f.cov, Some(161));
        assert_eq!(f.ft, Some(240));
        assert_eq!(f.corpus.as_deref(), Some("14/2Kb"));
        assert!(!f.crashed);
        assert!(f.summary("verify").ends_with("ok"));

        let crash = "thread '<unnamed>' panicked at src/lib.rs:1:1:\n==1== ERROR: libFuzzer: deadly signal\n";
        assert!(Figures::from_log(crash).crashed);
    }
}
