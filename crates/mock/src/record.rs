//! Recorded requests, with secrets removed.

use std::collections::VecDeque;
use std::sync::Mutex;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method};
use serde_json::Value;

use crate::faults::{Host, lock};

/// Placeholder that replaces secret values in recorded requests.
pub const REDACTED: &str = "[redacted]";

const SECRET_HEADERS: &[&str] = &[
    "x-schematic-api-key",
    "x-esauti-api-key",
    "x-esauti-signature",
    "authorization",
    "cookie",
];

/// One request received by the emulator, as recorded for inspection.
///
/// The `X-Schematic-Api-Key`, `X-eSauti-Api-Key`, `X-eSauti-Signature`,
/// `Authorization` and `Cookie` headers and every `api_key` field of a JSON
/// body are replaced by [`REDACTED`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RecordedRequest {
    /// The listener that received it.
    pub host: Host,
    /// The HTTP method.
    pub method: Method,
    /// The path, without the query.
    pub path: String,
    /// The raw query string, if any.
    pub query: Option<String>,
    /// Request headers, secrets redacted.
    pub headers: HeaderMap,
    /// The request body, secrets redacted.
    pub body: Bytes,
    /// The status code that was sent (0 when the connection was dropped).
    pub status: u16,
    /// The operation the request was routed to (the platform's operation ID,
    /// e.g. `checkFlag`), if any.
    pub operation: Option<&'static str>,
}

impl RecordedRequest {
    /// The body parsed as JSON, if it is JSON.
    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

pub(crate) fn redact_headers(headers: &HeaderMap) -> HeaderMap {
    let mut out = headers.clone();
    for name in SECRET_HEADERS {
        if out.contains_key(*name) {
            out.insert(*name, HeaderValue::from_static(REDACTED));
        }
    }
    out
}

/// Replaces every `api_key` string in a JSON body; non-JSON bodies are kept.
pub(crate) fn redact_body(body: &Bytes) -> Bytes {
    if !memchr_api_key(body) {
        return body.clone();
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(mut v) => {
            redact_value(&mut v);
            serde_json::to_vec(&v).map(Bytes::from).unwrap_or_default()
        }
        Err(_) => Bytes::from_static(REDACTED.as_bytes()),
    }
}

fn memchr_api_key(body: &[u8]) -> bool {
    body.windows(7).any(|w| w == b"api_key")
}

fn redact_value(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for (k, val) in map.iter_mut() {
                if k == "api_key" && val.is_string() {
                    *val = Value::String(REDACTED.into());
                } else {
                    redact_value(val);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact_value),
        _ => {}
    }
}

/// A bounded log of recorded requests (oldest dropped first).
#[derive(Debug)]
pub(crate) struct Recorder {
    capacity: usize,
    log: Mutex<VecDeque<RecordedRequest>>,
}

impl Recorder {
    pub(crate) fn new(capacity: usize) -> Self {
        Recorder {
            capacity,
            log: Mutex::new(VecDeque::new()),
        }
    }

    pub(crate) fn enabled(&self) -> bool {
        self.capacity > 0
    }

    pub(crate) fn push(&self, r: RecordedRequest) {
        if self.capacity == 0 {
            return;
        }
        let mut log = lock(&self.log);
        if log.len() == self.capacity {
            log.pop_front();
        }
        log.push_back(r);
    }

    pub(crate) fn all(&self) -> Vec<RecordedRequest> {
        lock(&self.log).iter().cloned().collect()
    }

    pub(crate) fn clear(&self) {
        lock(&self.log).clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_removed() {
        let mut h = HeaderMap::new();
        h.insert(
            "x-schematic-api-key",
            HeaderValue::from_static("sch_dev_secret"),
        );
        h.insert("x-esauti-api-key", HeaderValue::from_static("esk_secret"));
        h.insert("x-esauti-signature", HeaderValue::from_static("sha256=00"));
        h.insert("x-esauti-timestamp", HeaderValue::from_static("1700000000"));
        h.insert("content-type", HeaderValue::from_static("application/json"));
        let r = redact_headers(&h);
        assert_eq!(r["x-schematic-api-key"], REDACTED);
        assert_eq!(r["x-esauti-api-key"], REDACTED);
        assert_eq!(r["x-esauti-signature"], REDACTED);
        assert_eq!(r["x-esauti-timestamp"], "1700000000");
        assert_eq!(r["content-type"], "application/json");

        let body =
            Bytes::from_static(br#"{"events":[{"api_key":"sch_dev_secret","type":"track"}]}"#);
        let red = redact_body(&body);
        assert!(!red.windows(6).any(|w| w == b"secret"));
        assert!(
            red.windows(REDACTED.len())
                .any(|w| w == REDACTED.as_bytes())
        );
        let plain = Bytes::from_static(b"{\"a\":1}");
        assert_eq!(redact_body(&plain), plain);
    }

    #[test]
    fn log_is_bounded() {
        let rec = Recorder::new(2);
        for i in 0..3 {
            rec.push(RecordedRequest {
                host: Host::Rest,
                method: Method::GET,
                path: format!("/{i}"),
                query: None,
                headers: HeaderMap::new(),
                body: Bytes::new(),
                status: 200,
                operation: None,
            });
        }
        let all = rec.all();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].path, "/1");
    }
}
