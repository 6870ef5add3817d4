//! The capture envelope: one event as it travels to `POST {capture}/batch`.

use std::fmt;

use serde::ser::{Error as _, SerializeStruct};
use serde::{Serialize, Serializer};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::{ApiKey, EventBody, EventError, EventType, IdempotencyKey};

/// One capture event: `api_key`, `type`, `body`, `sent_at` and
/// `idempotency_key`.
///
/// [`EventEnvelope::new`] stamps `sent_at` with the current UTC time (at
/// millisecond precision) and generates a UUIDv7 idempotency key, so an event
/// is dated when it is enqueued rather than when a background flush finally
/// sends it, and every retry of it carries the same key. Both can be
/// overridden, e.g. for backfills or caller-managed deduplication.
///
/// `Debug` shows everything but the API key.
///
/// ```
/// use flagwire_core::events::{ApiKey, EventEnvelope, EventType, TrackBody};
///
/// let key = ApiKey::new("sch_dev_secret")?;
/// let event = EventEnvelope::new(key, TrackBody::builder("api-call").quantity(2).build()?);
/// assert_eq!(event.event_type(), EventType::Track);
/// assert!(!format!("{event:?}").contains("sch_dev_secret"));
///
/// let json = serde_json::to_value(&event)?;
/// assert_eq!(json["api_key"], "sch_dev_secret");
/// assert_eq!(json["type"], "track");
/// assert_eq!(json["body"]["quantity"], 2);
/// assert!(json["sent_at"].as_str().unwrap().ends_with('Z'));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, PartialEq)]
pub struct EventEnvelope {
    api_key: ApiKey,
    body: EventBody,
    sent_at: UnixTime,
    idempotency_key: IdempotencyKey,
}

/// `sent_at` as kept in an envelope: time since the Unix epoch, always
/// within the years 0–9999. Taking it from the clock is one read with no
/// calendar arithmetic; the date is only worked out when the event is
/// serialized, on the thread that sends it.
#[derive(Clone, Copy, PartialEq, Eq)]
struct UnixTime {
    secs: i64,
    nanos: u32,
}

impl UnixTime {
    /// `1970-01-01T00:00:00Z`.
    const EPOCH: Self = Self { secs: 0, nanos: 0 };
    /// The last second of the year 9999.
    const MAX_SECS: i64 = 253_402_300_799;

    /// Now, truncated to the millisecond; the epoch if the clock is set
    /// outside the years 1970–9999.
    fn now_millis() -> Self {
        let since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        match i64::try_from(since.as_secs()) {
            Ok(secs) if secs <= Self::MAX_SECS => Self {
                secs,
                nanos: since.subsec_millis() * 1_000_000,
            },
            _ => Self::EPOCH,
        }
    }

    fn unix_millis(self) -> u64 {
        u64::try_from(self.secs).map_or(0, |s| {
            s.saturating_mul(1_000) + u64::from(self.nanos / 1_000_000)
        })
    }

    fn from_datetime(t: OffsetDateTime) -> Option<Self> {
        let utc = rfc3339_utc(t)?;
        Some(Self {
            secs: utc.unix_timestamp(),
            nanos: utc.nanosecond(),
        })
    }

    fn to_datetime(self) -> OffsetDateTime {
        // Always in range: both constructors check it.
        OffsetDateTime::from_unix_timestamp(self.secs)
            .ok()
            .and_then(|t| t.replace_nanosecond(self.nanos).ok())
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }
}

impl fmt::Debug for EventEnvelope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventEnvelope")
            .field("api_key", &self.api_key)
            .field("body", &self.body)
            .field("sent_at", &self.sent_at())
            .field("idempotency_key", &self.idempotency_key)
            .finish()
    }
}

impl EventEnvelope {
    /// An event for `body`, dated now, with a fresh idempotency key.
    pub fn new(api_key: ApiKey, body: impl Into<EventBody>) -> Self {
        let sent_at = UnixTime::now_millis();
        Self {
            api_key,
            body: body.into(),
            sent_at,
            idempotency_key: IdempotencyKey::v7_at(sent_at.unix_millis()),
        }
    }

    /// Replaces `sent_at` (converted to UTC). Times outside the years
    /// 0–9999 cannot be written as RFC 3339 and are an
    /// [`EventError::Timestamp`] error.
    pub fn with_sent_at(mut self, sent_at: OffsetDateTime) -> Result<Self, EventError> {
        self.sent_at = UnixTime::from_datetime(sent_at).ok_or(EventError::Timestamp)?;
        Ok(self)
    }

    /// Replaces the idempotency key.
    pub fn with_idempotency_key(mut self, key: IdempotencyKey) -> Self {
        self.idempotency_key = key;
        self
    }

    /// The API key the event is sent with.
    pub fn api_key(&self) -> &ApiKey {
        &self.api_key
    }

    /// The kind of event (the wire `type`).
    pub fn event_type(&self) -> EventType {
        self.body.event_type()
    }

    /// The body.
    pub fn body(&self) -> &EventBody {
        &self.body
    }

    /// When the event was created (UTC).
    pub fn sent_at(&self) -> OffsetDateTime {
        self.sent_at.to_datetime()
    }

    /// The idempotency key.
    pub fn idempotency_key(&self) -> &IdempotencyKey {
        &self.idempotency_key
    }

    /// A serializable view of this event without the `api_key` field, for
    /// places that must not hold the secret (dead-letter files, logs).
    pub fn without_api_key(&self) -> WithoutApiKey<'_> {
        WithoutApiKey(self)
    }

    fn serialize_fields<S: Serializer>(
        &self,
        serializer: S,
        with_key: bool,
    ) -> Result<S::Ok, S::Error> {
        let mut buf = [0u8; 48];
        let sent_at = rfc3339(self.sent_at.to_datetime(), &mut buf).map_err(S::Error::custom)?;
        let mut s = serializer.serialize_struct("EventEnvelope", 4 + usize::from(with_key))?;
        if with_key {
            s.serialize_field("api_key", self.api_key.expose())?;
        }
        s.serialize_field("type", self.body.type_str())?;
        s.serialize_field("body", &self.body)?;
        s.serialize_field("sent_at", sent_at)?;
        s.serialize_field("idempotency_key", &self.idempotency_key)?;
        s.end()
    }
}

impl Serialize for EventEnvelope {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.serialize_fields(serializer, true)
    }
}

/// An [`EventEnvelope`] serialized without its `api_key`; see
/// [`EventEnvelope::without_api_key`].
#[derive(Debug, Clone, Copy)]
pub struct WithoutApiKey<'a>(&'a EventEnvelope);

impl Serialize for WithoutApiKey<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize_fields(serializer, false)
    }
}

/// `t` converted to UTC, if it falls in the years 0–9999 that RFC 3339 can write.
pub(crate) fn rfc3339_utc(t: OffsetDateTime) -> Option<OffsetDateTime> {
    let utc = t.checked_to_offset(time::UtcOffset::UTC)?;
    (0..=9999).contains(&utc.year()).then_some(utc)
}

/// Formats `t` as RFC 3339 into `buf` without allocating.
pub(crate) fn rfc3339(t: OffsetDateTime, buf: &mut [u8; 48]) -> Result<&str, EventError> {
    let capacity = buf.len();
    let mut out: &mut [u8] = &mut buf[..];
    t.format_into(&mut out, &Rfc3339)
        .map_err(|_| EventError::Timestamp)?;
    // Measure what was written from the unused rest of the buffer rather
    // than trusting the returned count.
    let written = capacity - out.len();
    std::str::from_utf8(&buf[..written]).map_err(|_| EventError::Timestamp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::TrackBody;
    use time::macros::datetime;

    fn key() -> ApiKey {
        ApiKey::new("sch_dev_k").unwrap()
    }

    #[test]
    fn new_stamps_utc_millis_and_v7_key() {
        let e = EventEnvelope::new(key(), TrackBody::builder("e").build().unwrap());
        assert_eq!(e.sent_at().offset(), time::UtcOffset::UTC);
        assert_eq!(e.sent_at().nanosecond() % 1_000_000, 0);
        let uuid = e.idempotency_key().as_uuid().unwrap();
        assert_eq!(uuid.get_version_num(), 7);
        // The key's timestamp is the event's.
        let (secs, nanos) = uuid.get_timestamp().unwrap().to_unix();
        assert_eq!(
            (secs as i64, nanos),
            (e.sent_at().unix_timestamp(), e.sent_at().nanosecond())
        );
        let since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap();
        assert!((since.as_secs() as i64 - e.sent_at().unix_timestamp()).abs() <= 1);
        assert!(format!("{e:?}").contains("sent_at"));
    }

    #[test]
    fn sent_at_keeps_sub_millisecond_precision_and_the_extremes() {
        let t = datetime!(2026-11-22 06:20:56.123456789 UTC);
        let e = EventEnvelope::new(key(), TrackBody::builder("e").build().unwrap())
            .with_sent_at(t)
            .unwrap();
        assert_eq!(e.sent_at(), t);
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(json["sent_at"], "2026-11-22T06:20:56.123456789Z");
        for t in [
            datetime!(0000-01-01 0:00 UTC),
            datetime!(9999-12-31 23:59:59.999 UTC),
        ] {
            let e = e.clone().with_sent_at(t).unwrap();
            assert_eq!(e.sent_at(), t);
        }
    }

    #[test]
    fn sent_at_is_converted_to_utc_and_range_checked() {
        let e = EventEnvelope::new(key(), TrackBody::builder("e").build().unwrap())
            .with_sent_at(datetime!(2026-01-02 05:04:05 +02:00))
            .unwrap();
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(json["sent_at"], "2026-01-02T03:04:05Z");
        let far = datetime!(9999-12-31 23:00 -02:00);
        let e = EventEnvelope::new(key(), TrackBody::builder("e").build().unwrap());
        assert!(matches!(e.with_sent_at(far), Err(EventError::Timestamp)));
    }

    #[test]
    fn fractional_seconds_are_written_in_full() {
        let t = datetime!(2026-11-22 06:20:56.7 UTC);
        let mut buf = [0u8; 48];
        assert_eq!(rfc3339(t, &mut buf).unwrap(), "2026-11-22T06:20:56.7Z");
        let t = datetime!(2026-11-22 06:20:56.123456789 UTC);
        assert_eq!(
            rfc3339(t, &mut buf).unwrap(),
            "2026-11-22T06:20:56.123456789Z"
        );
    }

    #[test]
    fn redacted_view_drops_only_the_key() {
        let e = EventEnvelope::new(key(), TrackBody::builder("e").build().unwrap());
        let full = serde_json::to_value(&e).unwrap();
        let mut redacted = serde_json::to_value(e.without_api_key()).unwrap();
        assert!(redacted.get("api_key").is_none());
        redacted["api_key"] = full["api_key"].clone();
        assert_eq!(redacted, full);
    }
}
