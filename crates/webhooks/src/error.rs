//! The crate's error type.

use core::fmt;

/// Why a delivery was rejected, or why a verifier or signer could not be
/// built.
///
/// No variant ever carries a secret, a computed signature or the body, so an
/// error is safe to log. It is still only meant for logs: answer the sender
/// with one generic response (for example `400 Bad Request`) whatever the
/// variant, so that a prober learns nothing from the difference.
///
/// Every variant is cheap to build: verification never allocates, not even
/// on failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// A header the scheme requires is absent or empty.
    MissingHeader {
        /// The header's name, in lowercase.
        name: &'static str,
    },
    /// A header is present but cannot be understood.
    MalformedHeader {
        /// The header's name, in lowercase.
        name: &'static str,
        /// What is wrong with it.
        reason: Malformed,
    },
    /// The signed timestamp is further from the verifier's clock than the
    /// configured tolerance allows, in either direction.
    TimestampOutOfTolerance {
        /// The timestamp the sender signed, in Unix seconds.
        timestamp: i64,
        /// The verifier's idea of the current time, in Unix seconds.
        now: i64,
        /// `now - timestamp` in seconds: positive when the delivery is too
        /// old, negative when it claims to come from the future.
        skew: i64,
        /// The tolerance that was exceeded, in seconds.
        tolerance: u64,
    },
    /// The signature header holds no entry of a version this crate checks,
    /// for example only `v2,…` entries in `webhook-signature` or only `v0=`
    /// in `Stripe-Signature`.
    NoSupportedSignature {
        /// The signature header's name, in lowercase.
        name: &'static str,
    },
    /// No signature in the request matches any configured secret. A
    /// tampered body, a wrong secret and a forged signature all end here.
    SignatureMismatch,
    /// A secret given to a verifier or signer cannot be used.
    InvalidSecret {
        /// What is wrong with it.
        reason: SecretError,
    },
    /// A verifier was built without any secret.
    NoSecrets,
}

/// What is wrong with a header value; see [`Error::MalformedHeader`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Malformed {
    /// The header appears more than once, which makes it ambiguous.
    Repeated,
    /// A timestamp is not a plain non-negative decimal number of seconds
    /// that fits in an `i64`.
    InvalidTimestamp,
    /// A signature does not have the exact length its encoding requires
    /// (64 hex digits or 44 base64 characters).
    InvalidLength,
    /// A signature contains characters outside its encoding's alphabet.
    InvalidEncoding,
    /// A required prefix such as `sha256=` is absent.
    MissingPrefix,
    /// A structured header (such as `Stripe-Signature`) does not follow its
    /// format, for example a missing or repeated `t=` element.
    InvalidFormat,
    /// The value must be text but is not valid UTF-8.
    NotUtf8,
}

/// What is wrong with a secret; see [`Error::InvalidSecret`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SecretError {
    /// The secret (or, for Standard Webhooks, its decoded key) is empty.
    Empty,
    /// A Standard Webhooks secret is not valid base64 after its optional
    /// `whsec_` prefix.
    InvalidBase64,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::MissingHeader { name } => write!(f, "missing or empty header `{name}`"),
            Error::MalformedHeader { name, reason } => {
                write!(f, "malformed header `{name}`: {reason}")
            }
            Error::TimestampOutOfTolerance {
                skew, tolerance, ..
            } => {
                if *skew >= 0 {
                    write!(
                        f,
                        "webhook timestamp is {skew} s old, more than the {tolerance} s tolerance"
                    )
                } else {
                    write!(
                        f,
                        "webhook timestamp is {} s in the future, more than the {tolerance} s tolerance",
                        skew.unsigned_abs()
                    )
                }
            }
            Error::NoSupportedSignature { name } => {
                write!(
                    f,
                    "header `{name}` holds no signature of a supported version"
                )
            }
            Error::SignatureMismatch => f.write_str("no signature matches the configured secrets"),
            Error::InvalidSecret { reason } => write!(f, "invalid secret: {reason}"),
            Error::NoSecrets => f.write_str("a verifier needs at least one secret"),
        }
    }
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Malformed::Repeated => "the header appears more than once",
            Malformed::InvalidTimestamp => "not a decimal Unix timestamp in seconds",
            Malformed::InvalidLength => "signature has the wrong length",
            Malformed::InvalidEncoding => "signature contains invalid characters",
            Malformed::MissingPrefix => "signature lacks its required prefix",
            Malformed::InvalidFormat => "value does not follow the scheme's format",
            Malformed::NotUtf8 => "value is not valid UTF-8",
        })
    }
}

impl fmt::Display for SecretError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SecretError::Empty => "the secret is empty",
            SecretError::InvalidBase64 => {
                "a Standard Webhooks secret must be base64, optionally after `whsec_`"
            }
        })
    }
}

impl std::error::Error for Error {}
impl std::error::Error for Malformed {}
impl std::error::Error for SecretError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_readable() {
        let e = Error::TimestampOutOfTolerance {
            timestamp: 100,
            now: 500,
            skew: 400,
            tolerance: 300,
        };
        assert_eq!(
            e.to_string(),
            "webhook timestamp is 400 s old, more than the 300 s tolerance"
        );
        let e = Error::TimestampOutOfTolerance {
            timestamp: 900,
            now: 500,
            skew: -400,
            tolerance: 300,
        };
        assert!(e.to_string().contains("400 s in the future"));
        let e = Error::MalformedHeader {
            name: "webhook-timestamp",
            reason: Malformed::InvalidTimestamp,
        };
        assert_eq!(
            e.to_string(),
            "malformed header `webhook-timestamp`: not a decimal Unix timestamp in seconds"
        );
        assert_eq!(
            Error::MissingHeader { name: "x" }.to_string(),
            "missing or empty header `x`"
        );
    }
}
