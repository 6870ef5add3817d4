//! An in-memory emulator of the Schematic and eSauti APIs.
