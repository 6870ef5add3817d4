//! End-to-end tests of flagwire live in `tests/tests/`.
//!
//! This library also runs the repository README's examples as doc tests, so
//! the README cannot drift from the code.

#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
