//! Code generated from the committed API descriptions (see `docs/codegen.md`).
//!
//! The files below this module are written by `cargo xtask codegen`; CI fails when they drift
//! from what the generator produces.

#[allow(
    clippy::large_enum_variant,
    clippy::too_many_arguments,
    clippy::wrong_self_convention,
    clippy::enum_variant_names,
    clippy::should_implement_trait
)]
pub mod schematic;

pub mod esauti;
