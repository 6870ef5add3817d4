//! `Retry-After` and `X-RateLimit-Reset` values from a server: reading them
//! never panics, delta seconds read exactly, and no delay the retry policy
//! computes exceeds its configured maximum, whatever the headers and the
//! configuration.
#![no_main]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use flagwire_fuzz::{fields, take};
use flagwire_transport::RetryPolicy;
use flagwire_transport::retry::retry_after;
use http::{HeaderMap, HeaderValue, header::RETRY_AFTER};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Configuration: 8 bytes of "now", 8 of maximum delay, 8 of base delay,
    // 1 of retry number, 1 of switches; then the two header values. Switch
    // 0x02 (0x10) scales the maximum (base) delay up to the whole range of
    // `Duration`.
    let (now, rest) = take::<8>(data);
    let (max, rest) = take::<8>(rest);
    let (base, rest) = take::<8>(rest);
    let ([retry, switches], rest) = take::<2>(rest);
    let [retry_after_value, reset_value] = fields::<2>(rest);

    let now = UNIX_EPOCH
        .checked_add(Duration::from_secs(u64::from_le_bytes(now) >> 24))
        .unwrap_or(UNIX_EPOCH);
    let max_delay = Duration::from_nanos(u64::from_le_bytes(max))
        .saturating_mul(if switches & 0x02 != 0 { u32::MAX } else { 1 });
    let base_delay = Duration::from_nanos(u64::from_le_bytes(base))
        .saturating_mul(if switches & 0x10 != 0 { u32::MAX } else { 1 });
    let policy = RetryPolicy::new()
        .max_delay(max_delay)
        .base_delay(base_delay)
        .jitter(switches & 0x01 != 0);

    let mut headers = HeaderMap::new();
    if switches & 0x04 == 0
        && let Ok(value) = HeaderValue::from_bytes(retry_after_value)
    {
        headers.insert(RETRY_AFTER, value);
    }
    if switches & 0x08 == 0
        && let Ok(value) = HeaderValue::from_bytes(reset_value)
    {
        headers.insert("x-ratelimit-reset", value);
    }

    let wait = retry_after(&headers, now);
    if let Some(secs) = headers
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
    {
        assert_eq!(wait, Some(Duration::from_secs(secs)));
    }
    if headers.get(RETRY_AFTER).is_none() {
        assert_eq!(wait, None);
    }
    let _ = retry_after(&headers, SystemTime::now());

    let retry = u32::from(retry);
    let delay = policy.delay(retry, Some(&headers));
    assert!(delay <= max_delay, "{delay:?} > {max_delay:?}");
    let delay = policy.delay(retry, None);
    assert!(delay <= max_delay, "{delay:?} > {max_delay:?}");
});
