//! Benchmark placeholder, filled by its issue.
fn main() {}
