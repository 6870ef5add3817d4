//! Builds the operation table of `flagwire api` from the API descriptions the
//! code generator reads (crates/core/api/*.json): for every operation its id,
//! method, path template, parameters and whether it takes a body. Nothing is
//! written by hand, so the table follows the descriptions.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_json::Value;

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let api = manifest.join("../core/api");
    let mut out = String::from("// Built by build.rs from crates/core/api/*.json.\n\n");
    for (name, file) in [("SCHEMATIC", "schematic.json"), ("ESAUTI", "esauti.json")] {
        let path = api.join(file);
        println!("cargo:rerun-if-changed={}", path.display());
        table(&mut out, name, &path);
    }
    let dest = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets it")).join("ops.rs");
    std::fs::write(&dest, out).expect("OUT_DIR is writable");
}

fn table(out: &mut String, name: &str, path: &Path) {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let doc: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
    let ops = doc["operations"]
        .as_array()
        .unwrap_or_else(|| panic!("{} has no `operations` list", path.display()));
    writeln!(out, "/// Every operation of {file}.", file = path.display()).unwrap();
    writeln!(out, "pub static {name}: &[Op] = &[").unwrap();
    for op in ops {
        let s = |key: &str| op[key].as_str().unwrap_or_default().to_owned();
        let tag = op["tags"][0].as_str().unwrap_or_default();
        write!(
            out,
            "    Op {{ id: {:?}, method: {:?}, path: {:?}, tag: {:?}, params: &[",
            s("id"),
            s("method"),
            s("path"),
            tag
        )
        .unwrap();
        for p in op["parameters"].as_array().into_iter().flatten() {
            let location = match p["in"].as_str() {
                Some("path") => "Path",
                Some("query") => "Query",
                other => panic!("unexpected parameter location {other:?} in {}", s("id")),
            };
            let schema = &p["schema"];
            let kind = match schema["type"].as_str() {
                Some("array") => "Array",
                Some("object") => "Object",
                _ => "Scalar",
            };
            let required = p["required"].as_bool().unwrap_or(location == "Path");
            write!(
                out,
                "Param {{ name: {:?}, location: Location::{location}, kind: Kind::{kind}, required: {required} }}, ",
                p["name"].as_str().unwrap_or_default()
            )
            .unwrap();
        }
        let body = match op.get("request_body") {
            None | Some(Value::Null) => "None",
            Some(b) if b["required"].as_bool() == Some(true) => "Required",
            Some(_) => "Optional",
        };
        writeln!(out, "], body: Body::{body} }},").unwrap();
    }
    writeln!(out, "];\n").unwrap();
}
