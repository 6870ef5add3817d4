//! The replicator's health document, read over plain HTTP (a sidecar; no
//! TLS, no proxy) with the SDK's HTTP client.

use std::time::Duration;

use bytes::Bytes;
use flagwire_transport::{HttpsClient, Roots};
use http::StatusCode;
use http::header::ACCEPT;
use tower::ServiceExt;

/// Largest health document accepted.
const MAX_RESPONSE: usize = 64 * 1024;

/// A parsed `http://host[:port]/path` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HealthUrl {
    host: String,
    port: u16,
    path: String,
}

impl HealthUrl {
    pub(crate) fn parse(url: &str) -> Result<HealthUrl, String> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| format!("the health URL `{url}` must start with http://"))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/ready"),
        };
        if authority.is_empty() || authority.contains('@') {
            return Err(format!("the health URL `{url}` has no usable host"));
        }
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) if !host.ends_with(']') || authority.starts_with('[') => {
                let port: u16 = port
                    .parse()
                    .map_err(|_| format!("the health URL `{url}` has an invalid port"))?;
                (host, port)
            }
            _ => (authority, 80),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() || path.contains(['\r', '\n', ' ']) {
            return Err(format!("the health URL `{url}` is not valid"));
        }
        Ok(HealthUrl {
            host: host.to_owned(),
            port,
            path: path.to_owned(),
        })
    }
}

/// The health document's fields a client needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Health {
    pub(crate) ready: bool,
    pub(crate) cache_version: Option<String>,
}

impl HealthUrl {
    /// The URL as a request target.
    fn uri(&self) -> String {
        if self.host.contains(':') {
            format!("http://[{}]:{}{}", self.host, self.port, self.path)
        } else {
            format!("http://{}:{}{}", self.host, self.port, self.path)
        }
    }
}

/// Reads the health document at one URL, with one client for every read.
#[derive(Debug, Clone)]
pub(crate) struct HealthCheck {
    uri: String,
    client: HttpsClient,
}

impl HealthCheck {
    pub(crate) fn new(url: &HealthUrl) -> Result<HealthCheck, String> {
        let client = HttpsClient::builder()
            .roots(Roots::None)
            .no_proxy()
            .max_response_body(MAX_RESPONSE)
            .build()
            .map_err(|e| format!("health check client: {e}"))?;
        Ok(HealthCheck {
            uri: url.uri(),
            client,
        })
    }

    /// Fetches and parses the document (a 503 still carries one).
    pub(crate) async fn fetch(&self, timeout: Duration) -> Result<Health, String> {
        let request = http::Request::get(self.uri.as_str())
            .header(ACCEPT, "application/json")
            .body(Bytes::new())
            .map_err(|e| format!("health check request: {e}"))?;
        match tokio::time::timeout(timeout, self.client.clone().oneshot(request)).await {
            Ok(Ok(response)) => {
                let status = response.status();
                if !status.is_success() && status != StatusCode::SERVICE_UNAVAILABLE {
                    return Err(format!("health check: HTTP status {}", status.as_str()));
                }
                parse(response.body())
            }
            Ok(Err(e)) => Err(format!("health check: {e}")),
            Err(_) => Err(format!("no health document within {timeout:?}")),
        }
    }
}

/// Reads `ready` and `cache_version` (or `cacheVersion`; a number is taken
/// as its text).
pub(crate) fn parse(body: &[u8]) -> Result<Health, String> {
    let doc: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("health document: {e}"))?;
    let version = doc.get("cache_version").or_else(|| doc.get("cacheVersion"));
    let cache_version = match version {
        Some(serde_json::Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(serde_json::Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    Ok(Health {
        ready: doc
            .get("ready")
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false),
        cache_version,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse() {
        let u = HealthUrl::parse("http://localhost:8090/ready").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("localhost", 8090, "/ready")
        );
        let u = HealthUrl::parse("http://10.0.0.1").unwrap();
        assert_eq!((u.port, u.path.as_str()), (80, "/ready"));
        let u = HealthUrl::parse("http://[::1]:9/x").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("::1", 9));
        assert!(HealthUrl::parse("https://x/ready").is_err());
        assert!(HealthUrl::parse("http://:80/").is_err());
        assert!(HealthUrl::parse("http://h:99999/").is_err());
        assert!(HealthUrl::parse("http://u:p@h/").is_err());
    }

    #[test]
    fn documents_parse() {
        let h = parse(br#"{"ready":true,"cache_version":"v7"}"#).unwrap();
        assert_eq!(
            h,
            Health {
                ready: true,
                cache_version: Some("v7".into())
            }
        );
        let h = parse(br#"{"ready":false,"cacheVersion":14269364}"#).unwrap();
        assert_eq!(h.cache_version.as_deref(), Some("14269364"));
        assert!(!h.ready);
        assert_eq!(parse(b"{}").unwrap().cache_version, None);
        assert!(parse(b"not json").is_err());
    }
}
