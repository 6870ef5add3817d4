//! The native flag rules engine: local flag evaluation without network calls.
