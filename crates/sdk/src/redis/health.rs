//! A minimal HTTP/1.1 `GET` for the replicator's health document (a
//! sidecar on plain HTTP; no TLS, no redirects).

use std::time::Duration;

use tokio::net::TcpStream;

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

/// Fetches and parses the document (a 503 still carries one).
pub(crate) async fn fetch(url: &HealthUrl, timeout: Duration) -> Result<Health, String> {
    match tokio::time::timeout(timeout, fetch_body(url)).await {
        Ok(Ok(body)) => parse(&body),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(format!("no health document within {timeout:?}")),
    }
}

async fn fetch_body(url: &HealthUrl) -> Result<Vec<u8>, String> {
    let stream = TcpStream::connect((url.host.as_str(), url.port))
        .await
        .map_err(|e| format!("health check connect: {e}"))?;
    let host = if url.host.contains(':') {
        format!("[{}]:{}", url.host, url.port)
    } else {
        format!("{}:{}", url.host, url.port)
    };
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {host}\r\nAccept: application/json\r\nConnection: close\r\n\r\n",
        url.path
    );
    let mut written = 0;
    let bytes = request.as_bytes();
    while written < bytes.len() {
        stream
            .writable()
            .await
            .map_err(|e| format!("health check write: {e}"))?;
        match stream.try_write(&bytes[written..]) {
            Ok(n) => written += n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(format!("health check write: {e}")),
        }
    }
    let mut response = Vec::with_capacity(1024);
    let mut buf = [0u8; 4096];
    loop {
        stream
            .readable()
            .await
            .map_err(|e| format!("health check read: {e}"))?;
        match stream.try_read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                response.extend_from_slice(&buf[..n]);
                if response.len() > MAX_RESPONSE {
                    return Err("health document too large".to_owned());
                }
                if complete(&response) {
                    break;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(format!("health check read: {e}")),
        }
    }
    body_of(&response)
}

fn split_head(response: &[u8]) -> Option<(&str, &[u8])> {
    let end = response.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&response[..end]).ok()?;
    Some((head, &response[end + 4..]))
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().skip(1).find_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// Whether the whole body has arrived (by `Content-Length`).
fn complete(response: &[u8]) -> bool {
    let Some((head, body)) = split_head(response) else {
        return false;
    };
    match header(head, "content-length").and_then(|v| v.parse::<usize>().ok()) {
        Some(len) => body.len() >= len,
        None => false,
    }
}

fn body_of(response: &[u8]) -> Result<Vec<u8>, String> {
    let (head, body) = split_head(response).ok_or("health check: malformed response")?;
    let status = head.split(' ').nth(1).unwrap_or("");
    if !status.starts_with('2') && status != "503" {
        return Err(format!("health check: HTTP status {status}"));
    }
    let chunked = header(head, "transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    if !chunked {
        return Ok(
            match header(head, "content-length").and_then(|v| v.parse().ok()) {
                Some(len) => body[..body.len().min(len)].to_vec(),
                None => body.to_vec(),
            },
        );
    }
    let mut out = Vec::new();
    let mut rest = body;
    loop {
        let line_end = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("health check: malformed chunk")?;
        let size_text = std::str::from_utf8(&rest[..line_end]).map_err(|_| "bad chunk size")?;
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| "health check: malformed chunk size")?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        if rest.len() < size {
            return Err("health check: truncated chunk".to_owned());
        }
        out.extend_from_slice(&rest[..size]);
        rest = rest.get(size + 2..).unwrap_or(&[]);
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

    #[test]
    fn bodies_are_extracted() {
        let r = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}";
        assert!(complete(r));
        assert_eq!(body_of(r).unwrap(), b"{}");
        let r = b"HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n";
        assert_eq!(body_of(r).unwrap(), b"{}");
        assert!(body_of(b"HTTP/1.1 404 Not Found\r\n\r\n").is_err());
        assert!(body_of(b"garbage").is_err());
    }
}
