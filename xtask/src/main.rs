//! `cargo xtask`: flagwire's development tasks.
//!
//! - `cargo xtask import-spec <openapi.yaml>` writes the facts-only API description
//!   (`crates/core/api/schematic.json`) from an OpenAPI 3.0 document.

mod import;
mod spec;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

const DESCRIPTION: &str = "crates/core/api/schematic.json";

fn workspace_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(Path::to_path_buf).unwrap_or(manifest)
}

fn usage() -> ExitCode {
    eprintln!("usage: cargo xtask import-spec <openapi.yaml>");
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
