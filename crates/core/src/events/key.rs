//! The two identifiers carried by every event: the API key and the
//! idempotency key.

use std::fmt;
use std::sync::Arc;

use serde::{Serialize, Serializer};
use uuid::Uuid;

use super::EventError;
use super::body::check_len;

/// The longest idempotency key the platform accepts, in characters.
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;

/// A Schematic API key, embedded in every captured event.
///
/// Cloning is a reference-count bump, so every envelope of a client can carry
/// the key without copying it. `Debug` never shows the key; use
/// [`ApiKey::expose`] where the raw value is really needed (serialization
/// does so internally).
///
/// ```
/// use flagwire_core::events::ApiKey;
///
/// let key = ApiKey::new("sch_dev_secret")?;
/// assert_eq!(format!("{key:?}"), "ApiKey(<redacted>)");
/// assert_eq!(key.expose(), "sch_dev_secret");
/// assert!(ApiKey::new("  ").is_err());
/// # Ok::<(), flagwire_core::events::EventError>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(Arc<str>);

impl ApiKey {
    /// Wraps a key. Surrounding whitespace is removed; a blank key is an
    /// [`EventError::Empty`] error.
    pub fn new(key: impl AsRef<str>) -> Result<Self, EventError> {
        let key = key.as_ref().trim();
        if key.is_empty() {
            return Err(EventError::Empty { field: "api_key" });
        }
        Ok(Self(Arc::from(key)))
    }

    /// The raw key. Keep it out of logs.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

/// The key the capture service uses to drop duplicate events (24 hour window,
/// scoped to the environment).
///
/// A fresh key is a UUIDv7 (time-ordered, 74 random bits); it is generated
/// once when an envelope is built and then travels with the event through
/// every retry, so a batch that is re-sent after an ambiguous failure is
/// deduplicated by the server. Callers with their own scheme can supply a
/// custom key of at most [`MAX_IDEMPOTENCY_KEY_LEN`] characters.
///
/// ```
/// use flagwire_core::events::IdempotencyKey;
///
/// let a = IdempotencyKey::new_v7();
/// let b = IdempotencyKey::new_v7();
/// assert_ne!(a, b);
/// assert_eq!(a.to_string().len(), 36);
///
/// let custom = IdempotencyKey::custom("lease-reservation:res_123")?;
/// assert_eq!(custom.to_string(), "lease-reservation:res_123");
/// assert!(IdempotencyKey::custom("").is_err());
/// # Ok::<(), flagwire_core::events::EventError>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(Repr);

#[derive(Clone, PartialEq, Eq, Hash)]
enum Repr {
    Uuid(Uuid),
    Custom(Arc<str>),
}

impl IdempotencyKey {
    /// A new UUIDv7 key for the current time.
    ///
    /// The random part comes from a fast thread-local generator rather than
    /// the operating system, so building a key costs no system call; the
    /// keys only need to be unique, not secret.
    pub fn new_v7() -> Self {
        let millis = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        Self::v7_at(millis)
    }

    /// A UUIDv7 key for the given Unix time in milliseconds.
    pub fn v7_at(unix_millis: u64) -> Self {
        let mut random = [0u8; 10];
        random[..8].copy_from_slice(&fastrand::u64(..).to_le_bytes());
        random[8..].copy_from_slice(&fastrand::u16(..).to_le_bytes());
        let uuid = uuid::Builder::from_unix_timestamp_millis(unix_millis, &random).into_uuid();
        Self(Repr::Uuid(uuid))
    }

    /// Wraps an existing UUID (any version).
    pub fn from_uuid(uuid: Uuid) -> Self {
        Self(Repr::Uuid(uuid))
    }

    /// A caller-chosen key: non-empty and at most
    /// [`MAX_IDEMPOTENCY_KEY_LEN`] characters.
    pub fn custom(key: impl AsRef<str>) -> Result<Self, EventError> {
        let key = key.as_ref();
        check_len("idempotency_key", key, MAX_IDEMPOTENCY_KEY_LEN)?;
        Ok(Self(Repr::Custom(Arc::from(key))))
    }

    /// The UUID, when the key is one.
    pub fn as_uuid(&self) -> Option<Uuid> {
        match &self.0 {
            Repr::Uuid(u) => Some(*u),
            Repr::Custom(_) => None,
        }
    }

    /// Calls `f` with the key's text without allocating.
    pub fn with_str<R>(&self, f: impl FnOnce(&str) -> R) -> R {
        match &self.0 {
            Repr::Uuid(u) => {
                let mut buf = Uuid::encode_buffer();
                f(u.hyphenated().encode_lower(&mut buf))
            }
            Repr::Custom(s) => f(s),
        }
    }
}

impl fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.with_str(|s| f.write_str(s))
    }
}

impl fmt::Debug for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.with_str(|s| f.debug_tuple("IdempotencyKey").field(&s).finish())
    }
}

impl Serialize for IdempotencyKey {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.with_str(|s| serializer.serialize_str(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v7_keys_are_version_7_and_time_ordered() {
        let a = IdempotencyKey::v7_at(1_000);
        let b = IdempotencyKey::v7_at(2_000);
        let (ua, ub) = (a.as_uuid().unwrap(), b.as_uuid().unwrap());
        assert_eq!(ua.get_version_num(), 7);
        assert!(ua < ub);
    }

    #[test]
    fn custom_key_length_is_checked_in_characters() {
        assert!(IdempotencyKey::custom("é".repeat(255)).is_ok());
        let err = IdempotencyKey::custom("é".repeat(256)).unwrap_err();
        assert!(matches!(
            err,
            EventError::TooLong {
                len: 256,
                max: 255,
                ..
            }
        ));
    }

    #[test]
    fn api_key_is_trimmed_and_redacted() {
        let key = ApiKey::new(" sch_dev_x \n").unwrap();
        assert_eq!(key.expose(), "sch_dev_x");
        assert!(!format!("{key:?}").contains("sch_dev_x"));
    }
}
