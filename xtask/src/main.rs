//! `cargo xtask`: flagwire's development tasks.
//!
//! - `cargo xtask import-spec <openapi.yaml>` writes the facts-only API description
//!   (`crates/core/api/schematic.json`) from an OpenAPI 3.0 document.
//! - `cargo xtask codegen [--check]` generates `crates/core/src/generated/schematic/` from that
//!   description, and `crates/core/src/generated/esauti/` from the eSauti event registry data
//!   file and the eSauti REST description (`crates/core/api/esauti.json`); `--check` fails when
//!   the committed code differs from what would be generated.
//! - `cargo xtask import-esauti-registry <registry.tsv>` writes the eSauti event registry data
//!   file (`crates/core/data/esauti-events.tsv`) from a registry table.
//! - `cargo xtask bench [--peers] [--quick]` runs the benchmarks and writes `docs/benchmarks.md`.
//! - `cargo xtask fuzz [--seconds N] [--target NAME] [--asan] [--list]` runs the cargo-fuzz
//!   targets of `fuzz/` for a bounded time each (`docs/fuzzing.md`).

mod bench;
mod codegen;
mod esauti_registry;
mod fuzz;
mod import;
mod spec;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

const DESCRIPTION: &str = "crates/core/api/schematic.json";
const ESAUTI_DESCRIPTION: &str = "crates/core/api/esauti.json";
const ESAUTI_REST_DIR: &str = "crates/core/src/generated/esauti/rest";

fn workspace_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(Path::to_path_buf).unwrap_or(manifest)
}

fn usage() -> ExitCode {
    eprintln!(
        "usage: cargo xtask import-spec <openapi.yaml> | cargo xtask import-esauti-registry <registry.tsv> | cargo xtask codegen [--check] | cargo xtask bench [--peers] [--quick] [--help] | cargo xtask fuzz [--seconds N] [--target NAME] [--asan] [--list] [--help]"
    );
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["import-spec", path] => import_spec(Path::new(path)),
        ["import-esauti-registry", path] => import_esauti_registry(Path::new(path)),
        ["codegen"] => run_codegen(false),
        ["codegen", "--check"] => run_codegen(true),
        ["bench", rest @ ..] => bench::run(&workspace_root(), rest),
        ["fuzz", rest @ ..] => fuzz::run(&workspace_root(), rest),
        _ => return usage(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn import_spec(path: &Path) -> Result<(), String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    let api = import::import(&text)?;
    let out = workspace_root().join(DESCRIPTION);
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    }
    std::fs::write(&out, api.to_json()).map_err(|e| format!("writing {}: {e}", out.display()))?;
    println!(
        "wrote {DESCRIPTION}: {} operations, {} schemas, {} tags",
        api.operations.len(),
        api.schemas.len(),
        api.tags.len()
    );
    Ok(())
}

fn import_esauti_registry(path: &Path) -> Result<(), String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    let registry = esauti_registry::Registry::parse_tsv(&text)?;
    let out = workspace_root().join(esauti_registry::DATA_FILE);
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    }
    std::fs::write(&out, registry.to_tsv())
        .map_err(|e| format!("writing {}: {e}", out.display()))?;
    println!(
        "wrote {}: {} event types",
        esauti_registry::DATA_FILE,
        registry.events.len()
    );
    Ok(())
}

/// Every `.rs` file under `dir`, as workspace-relative paths.
fn existing_files(root: &Path, dir: &Path, out: &mut Vec<String>) -> Result<(), String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for entry in entries {
        let path = entry
            .map_err(|e| format!("listing {}: {e}", dir.display()))?
            .path();
        if path.is_dir() {
            existing_files(root, &path, out)?;
        } else if path.extension().is_some_and(|e| e == "rs") {
            let rel = path.strip_prefix(root).map_err(|e| e.to_string())?;
            out.push(rel.to_string_lossy().replace('\\', "/"));
        }
    }
    Ok(())
}

fn run_codegen(check: bool) -> Result<(), String> {
    let root = workspace_root();
    let description = root.join(DESCRIPTION);
    let text = std::fs::read_to_string(&description)
        .map_err(|e| format!("reading {}: {e}", description.display()))?;
    let api = spec::Api::from_json(&text)?;
    let mut out = codegen::generate_formatted(&api)?;

    let data = root.join(esauti_registry::DATA_FILE);
    let text =
        std::fs::read_to_string(&data).map_err(|e| format!("reading {}: {e}", data.display()))?;
    let registry = esauti_registry::Registry::parse_tsv(&text)
        .map_err(|e| format!("{}: {e}", esauti_registry::DATA_FILE))?;
    for (path, src) in esauti_registry::generate(&registry, true)? {
        let formatted = codegen::rustfmt(&src).map_err(|e| format!("{path}: {e}"))?;
        out.files.insert(path, formatted);
    }
    let esauti_path = root.join(ESAUTI_DESCRIPTION);
    let text = std::fs::read_to_string(&esauti_path)
        .map_err(|e| format!("reading {}: {e}", esauti_path.display()))?;
    let esauti_api =
        spec::Api::from_json(&text).map_err(|e| format!("{ESAUTI_DESCRIPTION}: {e}"))?;
    let rest = codegen::generate_formatted_for(
        &esauti_api,
        &codegen::Target::other(ESAUTI_DESCRIPTION, ESAUTI_REST_DIR),
    )?;
    out.files.extend(rest.files);

    let mut on_disk = Vec::new();
    existing_files(&root, &root.join(codegen::OUT_DIR), &mut on_disk)?;
    existing_files(&root, &root.join(esauti_registry::OUT_DIR), &mut on_disk)?;
    existing_files(&root, &root.join(codegen::SDK_GENERATED_DIR), &mut on_disk)?;
    let stale: Vec<&String> = on_disk
        .iter()
        .filter(|p| !out.files.contains_key(*p))
        .collect();
    let changed: Vec<&String> = out
        .files
        .iter()
        .filter(|(path, text)| {
            std::fs::read_to_string(root.join(path)).ok().as_deref() != Some(text.as_str())
        })
        .map(|(path, _)| path)
        .collect();

    let summary = format!(
        "{} operations, {} schemas ({} Rust types, {} nullable request fields in {} operations), {} eSauti event types, {} eSauti REST operations, {} files",
        out.operations,
        out.schemas,
        out.types,
        out.tri_state_fields,
        out.tri_state_operations,
        registry.events.len(),
        rest.operations,
        out.files.len()
    );
    if check {
        if changed.is_empty() && stale.is_empty() {
            println!("codegen check: up to date; {summary}");
            return Ok(());
        }
        for p in &changed {
            eprintln!("  differs: {p}");
        }
        for p in &stale {
            eprintln!("  not generated (stale): {p}");
        }
        return Err(format!(
            "generated code is out of date ({} files); run `cargo xtask codegen`",
            changed.len() + stale.len()
        ));
    }
    for p in &stale {
        std::fs::remove_file(root.join(p)).map_err(|e| format!("removing {p}: {e}"))?;
    }
    for path in &changed {
        let full = root.join(path);
        if let Some(dir) = full.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        }
        std::fs::write(&full, &out.files[*path]).map_err(|e| format!("writing {path}: {e}"))?;
    }
    println!(
        "codegen: {summary}; {} written, {} removed",
        changed.len(),
        stale.len()
    );
    Ok(())
}
