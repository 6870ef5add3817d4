//! The error type of the emulator's own API (starting, seeding, scripting).

use std::fmt;

/// Errors returned by [`MockServer`](crate::MockServer) setup and helpers.
///
/// Errors of emulated API calls are not represented here: they are HTTP
/// responses with the platform's `{"error": "..."}` shape.
#[derive(Debug)]
#[non_exhaustive]
pub enum MockError {
    /// Binding a listener or creating the runtime failed.
    Io(std::io::Error),
    /// A fault-script route pattern is malformed.
    InvalidPattern {
        /// The pattern as given.
        pattern: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Seed data could not be read or applied.
    Seed(String),
    /// A builder setting cannot be used (for example an empty API key).
    InvalidConfig(&'static str),
    /// The server is stopped.
    Stopped,
    /// The replicator emulation could not reach or use Redis (feature
    /// `redis`).
    #[cfg(feature = "redis")]
    Redis(String),
}

impl fmt::Display for MockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MockError::Io(e) => write!(f, "mock server I/O error: {e}"),
            MockError::InvalidPattern { pattern, reason } => {
                write!(f, "invalid route pattern {pattern:?}: {reason}")
            }
            MockError::Seed(msg) => write!(f, "invalid seed data: {msg}"),
            MockError::InvalidConfig(what) => write!(f, "invalid mock server setting: {what}"),
            MockError::Stopped => f.write_str("the mock server is stopped"),
            #[cfg(feature = "redis")]
            MockError::Redis(msg) => write!(f, "Redis: {msg}"),
        }
    }
}

impl std::error::Error for MockError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            MockError::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<std::io::Error> for MockError {
    fn from(e: std::io::Error) -> Self {
        MockError::Io(e)
    }
}
