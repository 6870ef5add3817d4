//! Encoding of capture batches and resolution of the capture URL.

use bytes::{Bytes, BytesMut};

use super::{ApiKey, EventEnvelope, EventError};

/// The most events the capture service accepts in one `/batch` request;
/// larger requests are rejected with `400 batch too large`.
pub const MAX_BATCH_EVENTS: usize = 100;

/// The default event-capture base URL.
pub const DEFAULT_CAPTURE_BASE_URL: &str = "https://c.schematichq.com";

/// The path of the batch endpoint below the capture base URL.
pub const BATCH_PATH: &str = "/batch";

/// Serializes batches of events into the body of `POST {capture}/batch`:
/// `{"events":[<envelope>,…]}`.
///
/// The encoder owns one growable buffer. Each [`encode`](Self::encode)
/// writes straight into it and hands the bytes out as a [`Bytes`] without
/// copying; once the previous `Bytes` has been dropped (the request is done)
/// the next batch reuses the same allocation.
///
/// ```
/// use flagwire_core::events::{ApiKey, BatchEncoder, EventEnvelope, TrackBody};
///
/// let key = ApiKey::new("sch_dev_k")?;
/// let events: Vec<_> = (0..3)
///     .map(|i| EventEnvelope::new(key.clone(), TrackBody::builder(format!("e{i}")).build().unwrap()))
///     .collect();
/// let mut encoder = BatchEncoder::new();
/// let body = encoder.encode(&events)?;
/// let json: serde_json::Value = serde_json::from_slice(&body)?;
/// assert_eq!(json["events"].as_array().unwrap().len(), 3);
/// assert_eq!(json["events"][2]["body"]["event"], "e2");
///
/// // A batch may not exceed the capture limit.
/// let too_many = vec![events[0].clone(); 101];
/// assert!(encoder.encode(&too_many).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Default)]
pub struct BatchEncoder {
    buf: BytesMut,
}

impl BatchEncoder {
    /// An encoder with an empty buffer.
    pub fn new() -> Self {
        Self::default()
    }

    /// An encoder whose buffer starts with `capacity` bytes.
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            buf: BytesMut::with_capacity(capacity),
        }
    }

    /// Encodes 1 to [`MAX_BATCH_EVENTS`] events as one request body.
    pub fn encode<'a, I>(&mut self, events: I) -> Result<Bytes, EventError>
    where
        I: IntoIterator<Item = &'a EventEnvelope>,
        I::IntoIter: ExactSizeIterator,
    {
        let events = events.into_iter();
        check_batch_len(events.len())?;
        self.buf.clear();
        let result = write_batch(BytesWriter(&mut self.buf), events);
        match result {
            Ok(()) => Ok(self.buf.split().freeze()),
            Err(e) => {
                self.buf.clear();
                Err(e)
            }
        }
    }
}

impl BatchEncoder {
    /// Encodes 1 to [`MAX_BATCH_EVENTS`] events kept as keyless JSON (see
    /// [`encode_keyless_batch`]) as one request body for `api_key`.
    pub fn encode_keyless<'a, I>(
        &mut self,
        api_key: &ApiKey,
        events: I,
    ) -> Result<Bytes, EventError>
    where
        I: IntoIterator<Item = &'a [u8]>,
        I::IntoIter: ExactSizeIterator,
    {
        let events = events.into_iter();
        check_batch_len(events.len())?;
        self.buf.clear();
        match write_keyless_batch(BytesWriter(&mut self.buf), api_key, events) {
            Ok(()) => Ok(self.buf.split().freeze()),
            Err(e) => {
                self.buf.clear();
                Err(e)
            }
        }
    }
}

/// Appends the body of one batch request to `out` from events kept as
/// keyless JSON objects, as [`EventEnvelope::write_keyless_json`] writes
/// them: `"api_key"` is spliced in as the first field of each, so the bytes
/// equal those of [`BatchEncoder::encode`] for the same envelopes. Each
/// event is copied, never parsed.
///
/// Every event must be a non-empty JSON object (`{"…`), or this is an
/// [`EventError::InvalidBody`] error; 1 to [`MAX_BATCH_EVENTS`] events are
/// accepted. On error nothing is appended.
///
/// ```
/// use flagwire_core::events::{encode_keyless_batch, ApiKey, BatchEncoder, EventEnvelope, TrackBody};
///
/// let key = ApiKey::new("sch_dev_k")?;
/// let event = EventEnvelope::new(key.clone(), TrackBody::builder("e").build()?);
/// let mut keyless = Vec::new();
/// event.write_keyless_json(&mut keyless)?;
///
/// let mut body = Vec::new();
/// encode_keyless_batch(&mut body, &key, [keyless.as_slice()])?;
/// assert_eq!(body, BatchEncoder::new().encode([&event])?);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn encode_keyless_batch<'a, I>(
    out: &mut Vec<u8>,
    api_key: &ApiKey,
    events: I,
) -> Result<(), EventError>
where
    I: IntoIterator<Item = &'a [u8]>,
    I::IntoIter: ExactSizeIterator,
{
    let events = events.into_iter();
    check_batch_len(events.len())?;
    let start = out.len();
    let result = write_keyless_batch(&mut *out, api_key, events);
    if result.is_err() {
        out.truncate(start);
    }
    result
}

fn write_keyless_batch<'a, W: std::io::Write>(
    mut out: W,
    api_key: &ApiKey,
    events: impl Iterator<Item = &'a [u8]>,
) -> Result<(), EventError> {
    // `{"api_key":"<key>",` once, then copied in front of every event.
    let mut prefix = Vec::with_capacity(api_key.expose().len() + 16);
    prefix.extend_from_slice(br#"{"api_key":"#);
    serde_json::to_writer(&mut prefix, api_key.expose())?;
    prefix.push(b',');
    let io = serde_json::Error::io;
    out.write_all(br#"{"events":["#).map_err(io)?;
    for (i, event) in events.enumerate() {
        let rest = match event {
            [b'{', rest @ ..] if rest.first().is_some_and(|&c| c == b'"') => rest,
            _ => {
                return Err(EventError::InvalidBody {
                    reason: "a queued event is not a non-empty JSON object",
                });
            }
        };
        if i > 0 {
            out.write_all(b",").map_err(io)?;
        }
        out.write_all(&prefix).map_err(io)?;
        out.write_all(rest).map_err(io)?;
    }
    out.write_all(b"]}").map_err(io)?;
    Ok(())
}

/// Appends the body of one batch request for 1 to [`MAX_BATCH_EVENTS`]
/// events to `out`, for callers that manage their own buffer.
pub fn encode_batch_into<'a, I>(out: &mut Vec<u8>, events: I) -> Result<(), EventError>
where
    I: IntoIterator<Item = &'a EventEnvelope>,
    I::IntoIter: ExactSizeIterator,
{
    let events = events.into_iter();
    check_batch_len(events.len())?;
    let start = out.len();
    let result = write_batch(&mut *out, events);
    if result.is_err() {
        out.truncate(start);
    }
    result
}

/// Appends to a `BytesMut` with one `extend_from_slice` per write. The
/// serializer writes many short pieces (quotes, separators), which this keeps
/// cheaper than the general `BufMut` writer.
struct BytesWriter<'a>(&'a mut BytesMut);

impl std::io::Write for BytesWriter<'_> {
    #[inline]
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    #[inline]
    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.0.extend_from_slice(buf);
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn check_batch_len(len: usize) -> Result<(), EventError> {
    match len {
        0 => Err(EventError::EmptyBatch),
        n if n > MAX_BATCH_EVENTS => Err(EventError::BatchTooLarge {
            len: n,
            max: MAX_BATCH_EVENTS,
        }),
        _ => Ok(()),
    }
}

fn write_batch<'a, W: std::io::Write>(
    mut out: W,
    events: impl Iterator<Item = &'a EventEnvelope>,
) -> Result<(), EventError> {
    out.write_all(br#"{"events":["#)
        .map_err(serde_json::Error::io)?;
    for (i, event) in events.enumerate() {
        if i > 0 {
            out.write_all(b",").map_err(serde_json::Error::io)?;
        }
        serde_json::to_writer(&mut out, event)?;
    }
    out.write_all(b"]}").map_err(serde_json::Error::io)?;
    Ok(())
}

/// Resolves the URL of the batch endpoint from a configured capture base.
///
/// A missing or blank base means [`DEFAULT_CAPTURE_BASE_URL`], so an unset
/// environment variable can never turn into the relative URL `/batch`. Any
/// other value must be an absolute `http` or `https` URL without query; a
/// trailing slash is ignored and a path prefix is kept.
///
/// ```
/// use flagwire_core::events::capture_batch_url;
///
/// assert_eq!(capture_batch_url(None)?, "https://c.schematichq.com/batch");
/// assert_eq!(capture_batch_url(Some("  "))?, "https://c.schematichq.com/batch");
/// assert_eq!(capture_batch_url(Some("http://127.0.0.1:8080/"))?, "http://127.0.0.1:8080/batch");
/// assert_eq!(capture_batch_url(Some("https://proxy.example/capture"))?, "https://proxy.example/capture/batch");
/// assert!(capture_batch_url(Some("/batch")).is_err());
/// assert!(capture_batch_url(Some("ftp://host")).is_err());
/// # Ok::<(), flagwire_core::events::EventError>(())
/// ```
pub fn capture_batch_url(base: Option<&str>) -> Result<http::Uri, EventError> {
    let base = base
        .map(str::trim)
        .filter(|b| !b.is_empty())
        .unwrap_or(DEFAULT_CAPTURE_BASE_URL);
    let invalid = |reason| EventError::InvalidCaptureUrl { reason };
    let uri: http::Uri = base.parse().map_err(|_| invalid("not a valid URL"))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        Some(_) => return Err(invalid("the scheme must be http or https")),
        None => return Err(invalid("the URL must be absolute (scheme and host)")),
    }
    let Some(authority) = uri.authority() else {
        return Err(invalid("the URL must name a host"));
    };
    if authority.host().is_empty() {
        return Err(invalid("the URL must name a host"));
    }
    if uri.query().is_some() {
        return Err(invalid("the URL must not have a query"));
    }
    let prefix = uri.path().trim_end_matches('/');
    let path = format!("{prefix}{BATCH_PATH}");
    http::Uri::builder()
        .scheme(uri.scheme_str().unwrap_or("https"))
        .authority(authority.as_str())
        .path_and_query(path)
        .build()
        .map_err(|_| invalid("not a valid URL"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{ApiKey, TrackBody};

    fn event() -> EventEnvelope {
        EventEnvelope::new(
            ApiKey::new("k").unwrap(),
            TrackBody::builder("e").build().unwrap(),
        )
    }

    #[test]
    fn empty_and_oversized_batches_are_rejected() {
        let mut enc = BatchEncoder::new();
        assert!(matches!(enc.encode(&[]), Err(EventError::EmptyBatch)));
        let batch = vec![event(); MAX_BATCH_EVENTS];
        assert!(enc.encode(&batch).is_ok());
        let batch = vec![event(); MAX_BATCH_EVENTS + 1];
        assert!(matches!(
            enc.encode(&batch),
            Err(EventError::BatchTooLarge { len: 101, .. })
        ));
    }

    #[test]
    fn encoder_reuses_its_allocation() {
        let mut enc = BatchEncoder::new();
        let batch = vec![event(); 10];
        let first = enc.encode(&batch).unwrap();
        let ptr = first.as_ptr();
        drop(first);
        let second = enc.encode(&batch).unwrap();
        assert_eq!(second.as_ptr(), ptr);
    }

    #[test]
    fn keyless_batches_equal_serialized_batches() {
        let key = ApiKey::new("sch_dev_\"quoted\"").unwrap();
        let events: Vec<_> = (0..5)
            .map(|i| {
                EventEnvelope::new(
                    key.clone(),
                    TrackBody::builder(format!("e{i}"))
                        .quantity(i)
                        .build()
                        .unwrap(),
                )
                .with_backfill(i % 2 == 0)
            })
            .collect();
        let keyless: Vec<Vec<u8>> = events
            .iter()
            .map(|e| {
                let mut v = Vec::new();
                e.write_keyless_json(&mut v).unwrap();
                v
            })
            .collect();
        let expected = BatchEncoder::new().encode(&events).unwrap();
        let mut out = Vec::new();
        encode_keyless_batch(&mut out, &key, keyless.iter().map(Vec::as_slice)).unwrap();
        assert_eq!(out, expected);
        let mut enc = BatchEncoder::new();
        let bytes = enc
            .encode_keyless(&key, keyless.iter().map(Vec::as_slice))
            .unwrap();
        assert_eq!(bytes, expected);

        for bad in [&b""[..], b"{}", b"[1]", b"{ \"a\":1}"] {
            let mut out = b"keep".to_vec();
            assert!(matches!(
                encode_keyless_batch(&mut out, &key, [bad]),
                Err(EventError::InvalidBody { .. })
            ));
            assert_eq!(out, b"keep");
        }
        assert!(matches!(
            enc.encode_keyless(&key, std::iter::empty::<&[u8]>()),
            Err(EventError::EmptyBatch)
        ));
    }

    #[test]
    fn encode_into_appends_and_matches_encoder() {
        let batch = vec![event(); 3];
        let mut out = b"prefix".to_vec();
        encode_batch_into(&mut out, &batch).unwrap();
        let bytes = BatchEncoder::new().encode(&batch).unwrap();
        assert_eq!(&out[6..], &bytes[..]);
        let mut out = b"keep".to_vec();
        assert!(encode_batch_into(&mut out, &[]).is_err());
        assert_eq!(out, b"keep");
    }
}
