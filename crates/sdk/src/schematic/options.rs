//! Per-request options of [`Client::send_with`](super::Client::send_with).

use std::time::Duration;

use bytes::Bytes;
use flagwire_core::query::QueryBuilder;
use http::{HeaderMap, HeaderName, HeaderValue};

use crate::error::Error;

/// Overrides for one request: deadline, retries, extra headers and extra
/// query parameters.
///
/// ```
/// use std::time::Duration;
/// use flagwire::schematic::RequestOptions;
///
/// let options = RequestOptions::new()
///     .timeout(Duration::from_secs(2))
///     .max_retries(0)
///     .header("x-trace-id", "abc")?
///     .query("debug", "1");
/// assert_eq!(options.max_retries, Some(0));
/// # Ok::<(), flagwire::Error>(())
/// ```
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct RequestOptions {
    /// Overall deadline (all attempts); `None` keeps the client's.
    pub timeout: Option<Duration>,
    /// Retries after the first attempt; `None` keeps the client's.
    pub max_retries: Option<u32>,
    /// Headers added to the request (they replace headers of the same name
    /// set by the operation).
    pub headers: HeaderMap,
    /// Query parameters appended after the operation's own.
    pub query: Vec<(String, String)>,
    /// `Some(true)`: the request is safe to send more than once, so a
    /// `POST`/`PATCH` is retried like a `PUT`; `None` keeps the default.
    pub idempotent: Option<bool>,
    /// Base of the back-off before a retry of this request; `None` keeps the
    /// client's retry policy's.
    pub retry_delay: Option<Duration>,
}

impl RequestOptions {
    /// No overrides.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the overall deadline of this request.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Sets the number of retries of this request (0: a single attempt).
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.max_retries = Some(retries);
        self
    }

    /// Sets the base of the back-off before a retry of this request (a
    /// server's `Retry-After` still wins).
    pub fn retry_delay(mut self, delay: Duration) -> Self {
        self.retry_delay = Some(delay);
        self
    }

    /// Adds a header; fails with [`Error::Config`] when the name or value is
    /// not valid in HTTP.
    pub fn header(mut self, name: &str, value: &str) -> Result<Self, Error> {
        let name = HeaderName::try_from(name)
            .map_err(|_| Error::config(format!("`{name}` is not a valid header name")))?;
        let value = HeaderValue::try_from(value)
            .map_err(|_| Error::config(format!("invalid value for header `{name}`")))?;
        self.headers.insert(name, value);
        Ok(self)
    }

    /// Declares that sending this request twice is harmless, so that a
    /// `POST` or `PATCH` is retried on error statuses and broken connections
    /// like a `PUT` (by default it is resent only when it never reached the
    /// server). An `Idempotency-Key` header has the same effect.
    pub fn idempotent(mut self, idempotent: bool) -> Self {
        self.idempotent = Some(idempotent);
        self
    }

    /// Appends a query parameter (percent-encoded when sent).
    pub fn query(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.query.push((name.into(), value.into()));
        self
    }

    /// Applies the options to a rendered request.
    pub(crate) fn apply(&self, req: &mut http::Request<Bytes>) -> Result<(), Error> {
        if !self.query.is_empty() {
            let mut q = QueryBuilder::new();
            for (name, value) in &self.query {
                q.push(name, value.as_str());
            }
            if let Some(extra) = q.finish() {
                let uri = req.uri().to_string();
                let joined = if req.uri().query().is_some() {
                    format!("{uri}&{extra}")
                } else {
                    format!("{uri}?{extra}")
                };
                *req.uri_mut() = http::Uri::try_from(joined)
                    .map_err(|e| Error::config(format!("invalid query parameter: {e}")))?;
            }
        }
        for (name, value) in &self.headers {
            req.headers_mut().insert(name.clone(), value.clone());
        }
        let mut transport = flagwire_transport::RequestOptions::new();
        if let Some(t) = self.timeout {
            transport = transport.timeout(t);
        }
        if let Some(r) = self.max_retries {
            transport = transport.max_retries(r);
        }
        if let Some(idempotent) = self.idempotent {
            transport = transport.idempotent(idempotent);
        }
        if let Some(delay) = self.retry_delay {
            transport = transport.retry_delay(delay);
        }
        if transport != flagwire_transport::RequestOptions::new() {
            req.extensions_mut().insert(transport);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_and_headers_are_added() {
        let mut req = http::Request::get("http://h/companies?limit=2")
            .body(Bytes::new())
            .unwrap();
        RequestOptions::new()
            .query("q", "a b")
            .header("x-extra", "1")
            .unwrap()
            .max_retries(0)
            .idempotent(true)
            .apply(&mut req)
            .unwrap();
        assert_eq!(req.uri(), "http://h/companies?limit=2&q=a%20b");
        assert_eq!(req.headers()["x-extra"], "1");
        let opts = req
            .extensions()
            .get::<flagwire_transport::RequestOptions>()
            .unwrap();
        assert_eq!(opts.max_retries, Some(0));
        assert_eq!(opts.idempotent, Some(true));
    }

    #[test]
    fn bad_headers_are_config_errors() {
        assert!(matches!(
            RequestOptions::new().header("bad name", "x"),
            Err(Error::Config(_))
        ));
        assert!(matches!(
            RequestOptions::new().header("x-ok", "line\nbreak"),
            Err(Error::Config(_))
        ));
    }
}
