//! Where the DataStream socket lives, derived from the REST base URL.
//!
//! The rule the official SDKs share: `https` becomes `wss` and `http`
//! becomes `ws`; a host whose first label is `api` (and that has more than
//! one label) gets `datastream` instead, so `https://api.schematichq.com`
//! leads to `wss://datastream.schematichq.com/datastream`; the port is kept
//! and the path is always `/datastream`. A URL that is already `ws://` or
//! `wss://` is used unchanged, so a caller can name the socket exactly.

use std::fmt;

/// The path of the DataStream endpoint.
pub const DATASTREAM_PATH: &str = "/datastream";

/// Derives the DataStream WebSocket URL from the REST base URL.
///
/// * `https` → `wss`, `http` → `ws` (schemes compare case-insensitively);
///   `ws://` and `wss://` URLs are returned exactly as given; any other
///   scheme is an error.
/// * The host is lower-cased; when it has more than one dot-separated label
///   and the first is `api`, that label becomes `datastream`. IP literals
///   (`[::1]`, `127.0.0.1`) and single-label hosts (`localhost`) are kept.
/// * Userinfo and port are kept.
/// * The path becomes `/datastream`. The query and fragment are dropped:
///   they belong to the REST base, and the socket takes no parameters (the
///   Python SDK does the same; Go and Node keep the query).
///
/// ```
/// use flagwire_core::datastream::datastream_url;
/// assert_eq!(
///     datastream_url("https://api.schematichq.com")?,
///     "wss://datastream.schematichq.com/datastream"
/// );
/// assert_eq!(datastream_url("http://127.0.0.1:8080/v1")?, "ws://127.0.0.1:8080/datastream");
/// assert!(datastream_url("ftp://api.example.com").is_err());
/// # Ok::<(), flagwire_core::datastream::UrlError>(())
/// ```
pub fn datastream_url(rest_base: &str) -> Result<String, UrlError> {
    if let Some(bad) = rest_base
        .chars()
        .find(|c| c.is_whitespace() || c.is_control())
    {
        return Err(UrlError::InvalidCharacter(bad));
    }
    let (scheme, rest) = rest_base.split_once("://").ok_or(UrlError::MissingScheme)?;
    let ws_scheme = match scheme.to_ascii_lowercase().as_str() {
        "https" => "wss",
        "http" => "ws",
        "ws" | "wss" => {
            authority_parts(authority(rest))?;
            return Ok(rest_base.to_owned());
        }
        _ => return Err(UrlError::UnsupportedScheme(truncate(scheme))),
    };
    let (userinfo, host, port) = authority_parts(authority(rest))?;
    let host = host.to_ascii_lowercase();
    let host = match host.strip_prefix("api.") {
        Some(rest) if !host.starts_with('[') && !rest.is_empty() => {
            format!("datastream.{rest}")
        }
        _ => host,
    };
    let mut url = String::with_capacity(rest_base.len() + 24);
    url.push_str(ws_scheme);
    url.push_str("://");
    if let Some(userinfo) = userinfo {
        url.push_str(userinfo);
        url.push('@');
    }
    url.push_str(&host);
    if let Some(port) = port {
        url.push(':');
        url.push_str(port);
    }
    url.push_str(DATASTREAM_PATH);
    Ok(url)
}

/// The authority: everything up to the path, query or fragment.
fn authority(rest: &str) -> &str {
    rest.find(['/', '?', '#']).map_or(rest, |end| &rest[..end])
}

/// Splits an authority into userinfo, host and port, checking each.
fn authority_parts(authority: &str) -> Result<(Option<&str>, &str, Option<&str>), UrlError> {
    let (userinfo, host_port) = match authority.rsplit_once('@') {
        Some((userinfo, host_port)) => (Some(userinfo), host_port),
        None => (None, authority),
    };
    let (host, port) = if host_port.starts_with('[') {
        let end = host_port.find(']').ok_or(UrlError::InvalidHost)?;
        let (host, after) = host_port.split_at(end + 1);
        match after {
            "" => (host, None),
            _ => match after.strip_prefix(':') {
                Some(port) => (host, Some(port)),
                None => return Err(UrlError::InvalidHost),
            },
        }
    } else {
        match host_port.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (host_port, None),
        }
    };
    if host.is_empty() {
        return Err(UrlError::MissingHost);
    }
    let label_ok = |label: &str| {
        !label.is_empty()
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    let valid_host = if let Some(inner) = host.strip_prefix('[') {
        inner.len() > 1
            && inner[..inner.len() - 1]
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
    } else {
        host.split('.').all(label_ok)
            || host
                .strip_suffix('.')
                .is_some_and(|h| h.split('.').all(label_ok))
    };
    if !valid_host {
        return Err(UrlError::InvalidHost);
    }
    if let Some(port) = port
        && (port.is_empty()
            || !port.bytes().all(|b| b.is_ascii_digit())
            || port.parse::<u16>().is_err())
    {
        return Err(UrlError::InvalidPort(truncate(port)));
    }
    Ok((userinfo, host, port))
}

/// At most 32 characters of untrusted text for an error message.
fn truncate(text: &str) -> String {
    match text.char_indices().nth(32) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

/// A REST base URL the DataStream URL cannot be derived from.
///
/// Messages never repeat the URL itself: it may carry credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum UrlError {
    /// No `scheme://` prefix.
    MissingScheme,
    /// A scheme other than `http`, `https`, `ws` or `wss` (first 32 characters).
    UnsupportedScheme(String),
    /// Nothing between `://` and the path.
    MissingHost,
    /// The host is not a DNS name or an IP literal.
    InvalidHost,
    /// The port is not a number from 0 to 65535 (first 32 characters).
    InvalidPort(String),
    /// Whitespace or a control character somewhere in the URL.
    InvalidCharacter(char),
}

impl fmt::Display for UrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("cannot derive the DataStream URL from the API base URL: ")?;
        match self {
            Self::MissingScheme => f.write_str("it has no scheme (expected https://...)"),
            Self::UnsupportedScheme(s) => {
                write!(
                    f,
                    "unsupported scheme {s:?} (expected http, https, ws or wss)"
                )
            }
            Self::MissingHost => f.write_str("it has no host"),
            Self::InvalidHost => f.write_str("its host is not a valid DNS name or IP literal"),
            Self::InvalidPort(p) => write!(f, "invalid port {p:?}"),
            Self::InvalidCharacter(c) => write!(f, "it contains the character {c:?}"),
        }
    }
}

impl std::error::Error for UrlError {}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(base: &str) -> String {
        datastream_url(base).unwrap_or_else(|e| panic!("{base}: {e}"))
    }

    #[test]
    fn scheme_mapping() {
        assert_eq!(
            url("https://api.schematichq.com"),
            "wss://datastream.schematichq.com/datastream"
        );
        assert_eq!(
            url("http://api.schematichq.com"),
            "ws://datastream.schematichq.com/datastream"
        );
        assert_eq!(
            url("HTTPS://api.example.com"),
            "wss://datastream.example.com/datastream"
        );
    }

    #[test]
    fn websocket_urls_are_used_as_given() {
        for given in [
            "wss://datastream.example.com/custom?x=1",
            "ws://127.0.0.1:9000/datastream",
            "WSS://API.example.com",
        ] {
            assert_eq!(url(given), given);
        }
        assert_eq!(datastream_url("ws:///path"), Err(UrlError::MissingHost));
    }

    #[test]
    fn first_label_api_becomes_datastream() {
        assert_eq!(
            url("https://api.staging.x.com"),
            "wss://datastream.staging.x.com/datastream"
        );
        assert_eq!(
            url("https://API.Example.COM"),
            "wss://datastream.example.com/datastream"
        );
        // Only an exact first label, and only with more than one label.
        assert_eq!(
            url("https://custom.example.com"),
            "wss://custom.example.com/datastream"
        );
        assert_eq!(
            url("https://apis.example.com"),
            "wss://apis.example.com/datastream"
        );
        assert_eq!(
            url("https://my.api.example.com"),
            "wss://my.api.example.com/datastream"
        );
        assert_eq!(url("http://api:8080"), "ws://api:8080/datastream");
        assert_eq!(url("http://api"), "ws://api/datastream");
        assert_eq!(
            url("http://localhost:8080"),
            "ws://localhost:8080/datastream"
        );
    }

    #[test]
    fn port_kept_path_replaced_query_dropped() {
        assert_eq!(
            url("https://api.example.com:8443"),
            "wss://datastream.example.com:8443/datastream"
        );
        assert_eq!(
            url("https://api.example.com/v1/"),
            "wss://datastream.example.com/datastream"
        );
        assert_eq!(
            url("https://api.example.com/v1?debug=1#top"),
            "wss://datastream.example.com/datastream"
        );
        assert_eq!(
            url("https://api.example.com?x"),
            "wss://datastream.example.com/datastream"
        );
        assert_eq!(
            url("http://127.0.0.1:41234"),
            "ws://127.0.0.1:41234/datastream"
        );
        assert_eq!(url("http://[::1]:8080/"), "ws://[::1]:8080/datastream");
        assert_eq!(url("http://[::1]"), "ws://[::1]/datastream");
        assert_eq!(
            url("https://user:pw@api.example.com"),
            "wss://user:pw@datastream.example.com/datastream"
        );
        assert_eq!(
            url("https://api.example.com."),
            "wss://datastream.example.com./datastream"
        );
    }

    #[test]
    fn errors() {
        assert_eq!(
            datastream_url("api.example.com"),
            Err(UrlError::MissingScheme)
        );
        assert_eq!(datastream_url(""), Err(UrlError::MissingScheme));
        assert_eq!(
            datastream_url("ftp://api.example.com"),
            Err(UrlError::UnsupportedScheme("ftp".into()))
        );
        assert_eq!(datastream_url("https://"), Err(UrlError::MissingHost));
        assert_eq!(datastream_url("https:///v1"), Err(UrlError::MissingHost));
        assert_eq!(datastream_url("https://:443"), Err(UrlError::MissingHost));
        assert_eq!(datastream_url("https://a..b"), Err(UrlError::InvalidHost));
        assert_eq!(datastream_url("https://[::1"), Err(UrlError::InvalidHost));
        assert_eq!(datastream_url("https://[::1]x"), Err(UrlError::InvalidHost));
        assert_eq!(
            datastream_url("https://ex%41mple.com"),
            Err(UrlError::InvalidHost)
        );
        assert_eq!(
            datastream_url("https://api.example.com:99999"),
            Err(UrlError::InvalidPort("99999".into()))
        );
        assert_eq!(
            datastream_url("https://api.example.com:"),
            Err(UrlError::InvalidPort(String::new()))
        );
        assert_eq!(
            datastream_url("https://api.example.com:8a"),
            Err(UrlError::InvalidPort("8a".into()))
        );
        assert_eq!(
            datastream_url(" https://api.example.com"),
            Err(UrlError::InvalidCharacter(' '))
        );
        assert_eq!(
            datastream_url("https://api.example.com\n"),
            Err(UrlError::InvalidCharacter('\n'))
        );
    }

    #[test]
    fn errors_do_not_echo_credentials() {
        let e = datastream_url("https://user:secret@api.example.com:x").unwrap_err();
        assert!(!e.to_string().contains("secret"), "{e}");
        let long = format!("{}://host", "s".repeat(1000));
        let e = datastream_url(&long).unwrap_err().to_string();
        assert!(e.len() < 200, "{e}");
        assert!(e.contains("unsupported scheme"), "{e}");
    }
}
