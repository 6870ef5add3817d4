//! Fault injection: per-route FIFO scripts of failures, consumed one per
//! matching request, after which the route behaves normally again.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method, StatusCode};

use crate::error::MockError;

/// The listener a fault script or recorded request belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Host {
    /// The REST API (`rest_url()`).
    Rest,
    /// The event-capture host (`capture_url()`).
    Capture,
}

/// One scripted action, applied to one matching request.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// Answer with this status (and optional `Retry-After`, other headers
    /// and body) instead of handling the request. Without a body,
    /// `{"error":"<reason>"}` is sent. Build it with [`Fault::status`].
    #[non_exhaustive]
    Respond {
        /// The status to answer with.
        status: StatusCode,
        /// Value of the `Retry-After` header, when set (ignored if it is not
        /// a valid header value).
        retry_after: Option<String>,
        /// Further response headers, e.g. `X-RateLimit-Reset`.
        headers: Vec<(HeaderName, HeaderValue)>,
        /// The exact body to send, when set.
        body: Option<Bytes>,
    },
    /// Wait this long, then handle the request normally.
    Delay(Duration),
    /// Close the connection without sending any response.
    DropConnection,
    /// Handle the request normally, but send only half of the response body
    /// (the `Content-Length` announces all of it) and close the connection.
    TruncatedBody,
    /// Handle the request normally, but replace the body with invalid JSON.
    MalformedJson,
}

impl Fault {
    /// A fault that answers with `status` (a code outside 100–999 becomes
    /// 500).
    pub fn status(status: u16) -> Self {
        Fault::Respond {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            retry_after: None,
            headers: Vec::new(),
            body: None,
        }
    }

    /// Adds a response header to a [`Fault::Respond`]; other faults are
    /// returned unchanged.
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        if let Fault::Respond { headers, .. } = &mut self {
            headers.push((name, value));
        }
        self
    }

    /// Adds a `Retry-After` header value (seconds or an HTTP date) to a
    /// [`Fault::Respond`]; other faults are returned unchanged.
    pub fn with_retry_after(mut self, value: impl Into<String>) -> Self {
        if let Fault::Respond { retry_after, .. } = &mut self {
            *retry_after = Some(value.into());
        }
        self
    }

    /// Sets the exact body of a [`Fault::Respond`]; other faults are returned
    /// unchanged.
    pub fn with_body(mut self, new_body: impl Into<Bytes>) -> Self {
        if let Fault::Respond { body, .. } = &mut self {
            *body = Some(new_body.into());
        }
        self
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Any,
}

#[derive(Debug)]
struct Script {
    host: Host,
    method: Method,
    pattern: Vec<Segment>,
    queue: VecDeque<Fault>,
}

impl Script {
    fn matches(&self, host: Host, method: &Method, path: &str) -> bool {
        if self.host != host || self.method != *method {
            return false;
        }
        let mut segs = path_segments(path);
        for want in &self.pattern {
            match (want, segs.next()) {
                (_, None) => return false,
                (Segment::Any, Some(_)) => {}
                (Segment::Literal(l), Some(got)) => {
                    if l != got {
                        return false;
                    }
                }
            }
        }
        segs.next().is_none()
    }
}

pub(crate) fn path_segments(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter(|s| !s.is_empty())
}

fn parse_pattern(pattern: &str) -> Result<Vec<Segment>, MockError> {
    if !pattern.starts_with('/') {
        return Err(MockError::InvalidPattern {
            pattern: pattern.to_owned(),
            reason: "must start with '/'",
        });
    }
    path_segments(pattern)
        .map(|s| {
            if s == "*" || (s.starts_with('{') && s.ends_with('}') && s.len() > 2) {
                Ok(Segment::Any)
            } else if s.contains(['{', '}', '*', '?']) {
                Err(MockError::InvalidPattern {
                    pattern: pattern.to_owned(),
                    reason: "a segment is either literal, `*` or `{name}`",
                })
            } else {
                Ok(Segment::Literal(s.to_owned()))
            }
        })
        .collect()
}

/// All fault scripts of one server.
#[derive(Debug, Default)]
pub(crate) struct Faults {
    armed: AtomicBool,
    scripts: Mutex<Vec<Script>>,
}

impl Faults {
    pub(crate) fn push(
        &self,
        host: Host,
        method: Method,
        pattern: &str,
        faults: impl IntoIterator<Item = Fault>,
    ) -> Result<(), MockError> {
        let pattern = parse_pattern(pattern)?;
        let mut scripts = lock(&self.scripts);
        let queue: VecDeque<Fault> = faults.into_iter().collect();
        if queue.is_empty() {
            return Ok(());
        }
        if let Some(existing) = scripts
            .iter_mut()
            .find(|s| s.host == host && s.method == method && s.pattern == pattern)
        {
            existing.queue.extend(queue);
        } else {
            scripts.push(Script {
                host,
                method,
                pattern,
                queue,
            });
        }
        self.armed.store(true, Ordering::Release);
        Ok(())
    }

    /// Pops the next fault for this request, if a script matches.
    pub(crate) fn next(&self, host: Host, method: &Method, path: &str) -> Option<Fault> {
        if !self.armed.load(Ordering::Acquire) {
            return None;
        }
        let mut scripts = lock(&self.scripts);
        let idx = scripts.iter().position(|s| s.matches(host, method, path))?;
        let fault = scripts[idx].queue.pop_front();
        if scripts[idx].queue.is_empty() {
            scripts.swap_remove(idx);
        }
        if scripts.is_empty() {
            self.armed.store(false, Ordering::Release);
        }
        fault
    }

    pub(crate) fn pending(&self) -> usize {
        lock(&self.scripts).iter().map(|s| s.queue.len()).sum()
    }

    pub(crate) fn clear(&self) {
        let mut scripts = lock(&self.scripts);
        scripts.clear();
        self.armed.store(false, Ordering::Release);
    }
}

/// Locks a mutex, recovering the data if another thread panicked while holding
/// it (the emulator's state stays usable for inspection).
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_are_fifo_and_then_exhausted() {
        let f = Faults::default();
        f.push(
            Host::Rest,
            Method::POST,
            "/flags/{key}/check",
            [Fault::status(503), Fault::DropConnection],
        )
        .unwrap();
        assert_eq!(f.pending(), 2);
        assert!(
            f.next(Host::Capture, &Method::POST, "/flags/a/check")
                .is_none()
        );
        assert!(f.next(Host::Rest, &Method::GET, "/flags/a/check").is_none());
        assert!(f.next(Host::Rest, &Method::POST, "/flags/a").is_none());
        assert_eq!(
            f.next(Host::Rest, &Method::POST, "/flags/a/check"),
            Some(Fault::status(503))
        );
        assert_eq!(
            f.next(Host::Rest, &Method::POST, "/flags/b/check/"),
            Some(Fault::DropConnection)
        );
        assert!(
            f.next(Host::Rest, &Method::POST, "/flags/a/check")
                .is_none()
        );
        assert_eq!(f.pending(), 0);
    }

    #[test]
    fn invalid_patterns_are_rejected() {
        let f = Faults::default();
        assert!(
            f.push(Host::Rest, Method::GET, "flags", [Fault::status(500)])
                .is_err()
        );
        assert!(
            f.push(Host::Rest, Method::GET, "/fl*gs", [Fault::status(500)])
                .is_err()
        );
    }

    #[test]
    fn builders_only_touch_respond() {
        let f = Fault::status(429).with_retry_after("2").with_body("x");
        assert_eq!(
            f,
            Fault::Respond {
                status: StatusCode::TOO_MANY_REQUESTS,
                retry_after: Some("2".into()),
                headers: Vec::new(),
                body: Some(Bytes::from_static(b"x")),
            }
        );
        assert_eq!(
            Fault::DropConnection.with_retry_after("1"),
            Fault::DropConnection
        );
    }
}
