//! `cargo xtask`: flagwire's development tasks.

fn main() {
    eprintln!("usage: cargo xtask <import-spec|codegen>");
    std::process::exit(2);
}
