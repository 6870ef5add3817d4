//! flagwire: the Rust SDK for Schematic and eSauti.
