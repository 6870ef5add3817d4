//! The capture envelope: one event as it travels to `POST {capture}/batch`.

use std::fmt;

use serde::ser::{Error as _, SerializeStruct};
use serde::{Serialize, Serializer};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::{ApiKey, EventBody, EventError, EventType, IdempotencyKey};

/// One capture event: `api_key`, `type`, `body`, `sent_at` and
/// `idempotency_key`, plus `trusted_client_clock` and `backfill` when set.
///
/// [`EventEnvelope::new`] stamps `sent_at` with the current UTC time (at
/// millisecond precision) and generates a UUIDv7 idempotency key, so an event
/// is dated when it is enqueued rather than when a background flush finally
/// sends it, and every retry of it carries the same key. Both can be
/// overridden, e.g. for backfills or caller-managed deduplication: one by
/// one with the `with_*` methods or all at once with [`EventOptions`].
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
    trusted_client_clock: bool,
    backfill: bool,
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

    /// Writes `YYYY-MM-DDTHH:MM:SS[.fraction]Z` (the fraction without
    /// trailing zeros, none when zero), as `time`'s RFC 3339 format does,
    /// without its calendar machinery: one division into days and Howard
    /// Hinnant's days-to-civil arithmetic.
    fn write_rfc3339(self, buf: &mut [u8; 40]) -> &[u8] {
        let days = self.secs.div_euclid(86_400);
        let secs_of_day = self.secs.rem_euclid(86_400) as u32;
        let (year, month, day) = civil_from_days(days);
        // Both constructors keep the year within 0..=9999.
        write_digits(&mut buf[0..4], year.clamp(0, 9999) as u32);
        buf[4] = b'-';
        write_digits(&mut buf[5..7], month);
        buf[7] = b'-';
        write_digits(&mut buf[8..10], day);
        buf[10] = b'T';
        write_digits(&mut buf[11..13], secs_of_day / 3600);
        buf[13] = b':';
        write_digits(&mut buf[14..16], secs_of_day / 60 % 60);
        buf[16] = b':';
        write_digits(&mut buf[17..19], secs_of_day % 60);
        let mut end = 19;
        if self.nanos != 0 {
            buf[19] = b'.';
            write_digits(&mut buf[20..29], self.nanos);
            end = 29;
            while buf[end - 1] == b'0' {
                end -= 1;
            }
        }
        buf[end] = b'Z';
        &buf[..=end]
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
            .field("trusted_client_clock", &self.trusted_client_clock)
            .field("backfill", &self.backfill)
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
            trusted_client_clock: false,
            backfill: false,
        }
    }

    /// Applies per-event options (idempotency key, `sent_at`, trusted clock,
    /// backfill); see [`EventOptions`].
    pub fn with_options(self, options: &EventOptions) -> Result<Self, EventError> {
        options.apply(self)
    }

    /// Asks the platform to use `sent_at` as the time of the event
    /// (`trusted_client_clock`; needs a secret API key).
    pub fn with_trusted_client_clock(mut self, trusted: bool) -> Self {
        self.trusted_client_clock = trusted;
        if !trusted {
            self.backfill = false;
        }
        self
    }

    /// Marks the event as imported history that must not affect billing
    /// (`backfill`). The platform requires a trusted client clock for it, so
    /// this sets [`with_trusted_client_clock`](Self::with_trusted_client_clock)
    /// too.
    pub fn with_backfill(mut self, backfill: bool) -> Self {
        self.backfill = backfill;
        if backfill {
            self.trusted_client_clock = true;
        }
        self
    }

    /// Whether `sent_at` is the time of the event (`trusted_client_clock`).
    pub fn trusted_client_clock(&self) -> bool {
        self.trusted_client_clock
    }

    /// Whether the event is a backfill.
    pub fn backfill(&self) -> bool {
        self.backfill
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

    /// Appends the event as one JSON object **without** its `api_key`:
    /// `{"type":…,"body":…,"sent_at":…,"idempotency_key":…}` (plus
    /// `trusted_client_clock` and `backfill` when set), the bytes
    /// [`without_api_key`](Self::without_api_key) serializes to.
    ///
    /// This is how a queued event is kept: compact, free of the secret, and
    /// ready to be spliced into a batch by [`encode_keyless_batch`], which
    /// adds the key in front. On error nothing is appended.
    ///
    /// [`encode_keyless_batch`]: super::encode_keyless_batch
    ///
    /// ```
    /// use flagwire_core::events::{ApiKey, EventEnvelope, TrackBody};
    ///
    /// let event = EventEnvelope::new(ApiKey::new("sch_dev_k")?, TrackBody::builder("e").build()?);
    /// let mut out = Vec::new();
    /// event.write_keyless_json(&mut out)?;
    /// assert_eq!(out, serde_json::to_vec(&event.without_api_key())?);
    /// assert!(out.starts_with(br#"{"type":"track","body":{"event":"e"},"sent_at":""#));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn write_keyless_json(&self, out: &mut Vec<u8>) -> Result<(), EventError> {
        let start = out.len();
        let result = self.write_keyless_fields(out);
        if result.is_err() {
            out.truncate(start);
        }
        result
    }

    fn write_keyless_fields(&self, out: &mut Vec<u8>) -> Result<(), EventError> {
        out.extend_from_slice(b"{\"type\":");
        match &self.body {
            EventBody::Other { event_type, .. } => serde_json::to_writer(&mut *out, event_type)?,
            body => {
                out.push(b'"');
                out.extend_from_slice(body.type_str().as_bytes());
                out.push(b'"');
            }
        }
        out.extend_from_slice(b",\"body\":");
        serde_json::to_writer(&mut *out, &self.body)?;
        out.extend_from_slice(b",\"sent_at\":\"");
        let mut buf = [0u8; 40];
        out.extend_from_slice(self.sent_at.write_rfc3339(&mut buf));
        out.extend_from_slice(b"\",\"idempotency_key\":");
        match self.idempotency_key.as_uuid() {
            Some(uuid) => {
                let mut buf = uuid::Uuid::encode_buffer();
                out.push(b'"');
                out.extend_from_slice(uuid.hyphenated().encode_lower(&mut buf).as_bytes());
                out.push(b'"');
            }
            None => serde_json::to_writer(&mut *out, &self.idempotency_key)?,
        }
        if self.trusted_client_clock {
            out.extend_from_slice(b",\"trusted_client_clock\":true");
        }
        if self.backfill {
            out.extend_from_slice(b",\"backfill\":true");
        }
        out.push(b'}');
        Ok(())
    }

    fn serialize_fields<S: Serializer>(
        &self,
        serializer: S,
        with_key: bool,
    ) -> Result<S::Ok, S::Error> {
        let mut buf = [0u8; 40];
        let sent_at =
            std::str::from_utf8(self.sent_at.write_rfc3339(&mut buf)).map_err(S::Error::custom)?;
        let fields = 4
            + usize::from(with_key)
            + usize::from(self.trusted_client_clock)
            + usize::from(self.backfill);
        let mut s = serializer.serialize_struct("EventEnvelope", fields)?;
        if with_key {
            s.serialize_field("api_key", self.api_key.expose())?;
        }
        s.serialize_field("type", self.body.type_str())?;
        s.serialize_field("body", &self.body)?;
        s.serialize_field("sent_at", sent_at)?;
        s.serialize_field("idempotency_key", &self.idempotency_key)?;
        if self.trusted_client_clock {
            s.serialize_field("trusted_client_clock", &true)?;
        }
        if self.backfill {
            s.serialize_field("backfill", &true)?;
        }
        s.end()
    }
}

/// Options of one event that live in its envelope rather than its body:
/// a caller-chosen idempotency key, `sent_at`, `trusted_client_clock` and
/// `backfill`. Values are checked when they are applied
/// ([`EventEnvelope::with_options`]), so building options never fails.
///
/// ```
/// use flagwire_core::events::{ApiKey, EventEnvelope, EventOptions, TrackBody};
/// use time::macros::datetime;
///
/// let options = EventOptions::new()
///     .idempotency_key("import-2025-12-31-acme")
///     .backfill_at(datetime!(2025-12-31 23:00 UTC));
/// let event = EventEnvelope::new(ApiKey::new("sch_prod_k")?, TrackBody::builder("export").build()?)
///     .with_options(&options)?;
/// let json = serde_json::to_value(&event)?;
/// assert_eq!(json["idempotency_key"], "import-2025-12-31-acme");
/// assert_eq!(json["sent_at"], "2025-12-31T23:00:00Z");
/// assert_eq!(json["trusted_client_clock"], true);
/// assert_eq!(json["backfill"], true);
///
/// // An empty key is refused when applied.
/// let bad = EventOptions::new().idempotency_key("");
/// assert!(EventEnvelope::new(ApiKey::new("k")?, TrackBody::builder("e").build()?).with_options(&bad).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventOptions {
    idempotency_key: Option<String>,
    sent_at: Option<OffsetDateTime>,
    trusted_client_clock: bool,
    backfill: bool,
}

impl EventOptions {
    /// No options: a fresh UUIDv7 key, `sent_at` = now.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sends the event with this idempotency key (1 to 255 characters)
    /// instead of a fresh UUIDv7: the platform drops later events with the
    /// same key for 24 hours, so deriving it from your own ids makes a
    /// resent event count once.
    pub fn idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }

    /// Sets `sent_at` (converted to UTC; years 0 to 9999) instead of the
    /// time the event is queued. The platform only uses it as the event's
    /// time with a [trusted client clock](Self::trusted_client_clock).
    pub fn sent_at(mut self, sent_at: OffsetDateTime) -> Self {
        self.sent_at = Some(sent_at);
        self
    }

    /// Asks the platform to use `sent_at` as the time of the event (needs a
    /// secret API key).
    pub fn trusted_client_clock(mut self, trusted: bool) -> Self {
        self.trusted_client_clock = trusted;
        if !trusted {
            self.backfill = false;
        }
        self
    }

    /// Marks the event as imported history that must not affect billing;
    /// implies a trusted client clock (the platform requires it).
    pub fn backfill(mut self, backfill: bool) -> Self {
        self.backfill = backfill;
        if backfill {
            self.trusted_client_clock = true;
        }
        self
    }

    /// A backfilled event that happened at `at`: [`sent_at`](Self::sent_at)
    /// and [`backfill`](Self::backfill) in one call.
    pub fn backfill_at(self, at: OffsetDateTime) -> Self {
        self.sent_at(at).backfill(true)
    }

    /// Applies the options to `envelope`; a key that is empty or longer
    /// than 255 characters, or a time outside the years 0 to 9999, is an
    /// error.
    pub fn apply(&self, mut envelope: EventEnvelope) -> Result<EventEnvelope, EventError> {
        if let Some(key) = &self.idempotency_key {
            envelope.idempotency_key = IdempotencyKey::custom(key)?;
        }
        if let Some(at) = self.sent_at {
            envelope = envelope.with_sent_at(at)?;
        }
        Ok(envelope
            .with_trusted_client_clock(self.trusted_client_clock)
            .with_backfill(self.backfill))
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

/// Writes `value` as decimal digits filling `out`, zero-padded on the left.
fn write_digits(out: &mut [u8], mut value: u32) {
    for d in out.iter_mut().rev() {
        *d = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard
/// Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
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
    use proptest::prelude::*;
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

    proptest! {
        #[test]
        fn the_fast_rfc3339_writer_matches_time(
            secs in -62_167_219_200i64..=UnixTime::MAX_SECS,
            nanos in prop_oneof![0u32..1_000_000_000, (0u32..1_000).prop_map(|ms| ms * 1_000_000)],
        ) {
            let t = UnixTime { secs, nanos };
            let mut fast = [0u8; 40];
            let mut slow = [0u8; 48];
            let expected = rfc3339(t.to_datetime(), &mut slow).unwrap();
            prop_assert_eq!(std::str::from_utf8(t.write_rfc3339(&mut fast)).unwrap(), expected);
        }
    }

    #[test]
    fn keyless_json_is_the_redacted_serialization() {
        let t = datetime!(2026-11-22 06:20:56.5 UTC);
        let bodies: Vec<EventBody> = vec![
            TrackBody::builder("e")
                .trait_value("q\"uote", "line\nbreak")
                .build()
                .unwrap()
                .into(),
            EventBody::other("custom\"kind", serde_json::json!({"a": [1, null]})).unwrap(),
        ];
        for body in bodies {
            for (clock, backfill) in [(false, false), (true, false), (true, true)] {
                let e = EventEnvelope::new(key(), body.clone())
                    .with_sent_at(t)
                    .unwrap()
                    .with_trusted_client_clock(clock)
                    .with_backfill(backfill);
                for e in [
                    e.clone(),
                    e.with_idempotency_key(IdempotencyKey::custom("k\\1").unwrap()),
                ] {
                    let mut out = b"prefix".to_vec();
                    e.write_keyless_json(&mut out).unwrap();
                    assert_eq!(&out[6..], serde_json::to_vec(&e.without_api_key()).unwrap());
                }
            }
        }
    }

    #[test]
    fn options_apply_and_validate() {
        let e = || EventEnvelope::new(key(), TrackBody::builder("e").build().unwrap());
        let plain = e().with_options(&EventOptions::new()).unwrap();
        assert!(!plain.trusted_client_clock() && !plain.backfill());
        let json = serde_json::to_value(&plain).unwrap();
        assert!(json.get("trusted_client_clock").is_none() && json.get("backfill").is_none());

        let o = EventOptions::new().backfill(true);
        let b = e().with_options(&o).unwrap();
        assert!(b.trusted_client_clock() && b.backfill());
        // Turning the trusted clock off turns backfill off too.
        let o = o.trusted_client_clock(false);
        let b = e().with_options(&o).unwrap();
        assert!(!b.trusted_client_clock() && !b.backfill());

        assert!(matches!(
            e().with_options(&EventOptions::new().idempotency_key("x".repeat(256))),
            Err(EventError::TooLong { .. })
        ));
        assert!(matches!(
            e().with_options(&EventOptions::new().sent_at(datetime!(-0001-01-01 0:00 UTC))),
            Err(EventError::Timestamp)
        ));
        let custom = e()
            .with_options(&EventOptions::new().idempotency_key("lease-reservation:res_1"))
            .unwrap();
        assert_eq!(
            custom.idempotency_key().to_string(),
            "lease-reservation:res_1"
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
