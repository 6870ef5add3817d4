//! The one error type of the command line, and its exit codes.

use std::fmt;
use std::process::ExitCode;

/// Exit status: the command ran and failed (events not delivered, a replay
/// that left letters behind, a file that cannot be read...).
pub const EXIT_FAILURE: u8 = 1;
/// Exit status: bad arguments or configuration; nothing was sent.
pub const EXIT_USAGE: u8 = 2;
/// Exit status: a webhook signature did not verify.
pub const EXIT_VERIFICATION: u8 = 3;
/// Exit status: the API answered with an error, or could not be reached.
pub const EXIT_API: u8 = 4;
/// Exit status of `check --exit-status` when the flag is off.
pub const EXIT_FLAG_OFF: u8 = 5;
/// Exit status when standard output was closed by its reader (as a
/// `SIGPIPE` would end the process).
pub const EXIT_BROKEN_PIPE: u8 = 141;

/// Everything that can end a command early. Each variant maps to one exit
/// status ([`CliError::exit_code`]); the message is one line and never
/// holds a secret.
#[derive(Debug)]
#[non_exhaustive]
pub enum CliError {
    /// Bad arguments, input or configuration (exit 2).
    Usage(String),
    /// A file or stream could not be read or written (exit 1).
    Io {
        /// What was being read or written.
        what: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The API answered with an error status (exit 4).
    Api(String),
    /// No answer: connection refused, timeout, TLS... (exit 4).
    Network(String),
    /// A signature did not verify (exit 3).
    Verification(String),
    /// The command ran but did not achieve its goal (exit 1).
    Failed(String),
    /// `check --exit-status` on a flag that is off (exit 5); not an error
    /// message, the value was printed.
    FlagOff,
}

impl CliError {
    /// A usage error.
    pub fn usage(message: impl Into<String>) -> Self {
        CliError::Usage(message.into())
    }

    /// A failure of the command's goal.
    pub fn failed(message: impl Into<String>) -> Self {
        CliError::Failed(message.into())
    }

    /// An I/O error while handling `what`.
    pub fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        CliError::Io {
            what: what.into(),
            source,
        }
    }

    /// The process exit status for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) => EXIT_USAGE,
            CliError::Io { .. } | CliError::Failed(_) => EXIT_FAILURE,
            CliError::Api(_) | CliError::Network(_) => EXIT_API,
            CliError::Verification(_) => EXIT_VERIFICATION,
            CliError::FlagOff => EXIT_FLAG_OFF,
        }
    }

    /// Whether an `error: …` line should be printed for it.
    pub fn has_message(&self) -> bool {
        !matches!(self, CliError::FlagOff)
    }

    /// The exit status as an [`ExitCode`].
    pub fn to_exit(&self) -> ExitCode {
        ExitCode::from(self.exit_code())
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Usage(m) | CliError::Failed(m) | CliError::Network(m) | CliError::Api(m) => {
                f.write_str(&one_line(m))
            }
            CliError::Io { what, source } => write!(f, "{what}: {}", one_line(&source.to_string())),
            CliError::Verification(m) => write!(f, "verification failed: {}", one_line(m)),
            CliError::FlagOff => f.write_str("the flag is off"),
        }
    }
}

impl std::error::Error for CliError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CliError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Collapses whitespace runs (newlines included) into single spaces, so
/// every message stays on one line.
pub fn one_line(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for word in text.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

impl From<flagwire::Error> for CliError {
    fn from(e: flagwire::Error) -> Self {
        use flagwire::Error as E;
        match &e {
            E::Api { .. } => CliError::Api(e.to_string()),
            E::Transport(_) => CliError::Network(e.to_string()),
            E::Offline | E::Config(_) | E::Event(_) | E::Envelope(_) | E::Encode(_) => {
                CliError::usage(e.to_string())
            }
            _ => CliError::Failed(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_are_distinct_per_class() {
        assert_eq!(CliError::usage("x").exit_code(), 2);
        assert_eq!(CliError::failed("x").exit_code(), 1);
        assert_eq!(CliError::Verification("x".into()).exit_code(), 3);
        assert_eq!(CliError::Api("boom".into()).exit_code(), 4);
        assert_eq!(CliError::Network("x".into()).exit_code(), 4);
        assert_eq!(CliError::FlagOff.exit_code(), 5);
        assert!(!CliError::FlagOff.has_message());
    }

    #[test]
    fn messages_are_one_line() {
        let e = CliError::Api("the API answered 400: bad\n  request\tbody".into());
        assert_eq!(e.to_string(), "the API answered 400: bad request body");
        let e = CliError::io("a.json", std::io::Error::other("no\nway"));
        assert_eq!(e.to_string(), "a.json: no way");
    }
}
