//! HTTP proxies: which requests go through one, and with which credentials.
//!
//! A [`Proxy`] is an HTTP proxy (`http://host:port`, optionally with
//! `user:password@` credentials) and the destinations it serves: all of
//! them, only `https://` (and `wss://`) ones, or only `http://` (and
//! `ws://`) ones, minus an exclusion list in the `NO_PROXY` syntax.
//!
//! [`HttpsClientBuilder`](crate::HttpsClientBuilder) reads the usual
//! environment variables once, when the client is built, unless it is given
//! proxies explicitly or told to use none; [`from_env_with`] is that
//! reading, over any source of variables:
//!
//! | variable | meaning |
//! |---|---|
//! | `HTTPS_PROXY` / `https_proxy` | proxy for `https://` and `wss://` destinations |
//! | `HTTP_PROXY` / `http_proxy` | proxy for `http://` and `ws://` destinations |
//! | `ALL_PROXY` / `all_proxy` | proxy for destinations the two above leave out |
//! | `NO_PROXY` / `no_proxy` | destinations reached directly (see below) |
//!
//! The upper-case name wins when both are set. A value without a scheme
//! means `http://`. In a CGI program (`REQUEST_METHOD` is set) the
//! upper-case `HTTP_PROXY` is ignored, since a client can set it through a
//! `Proxy:` request header ("httpoxy"). A value that is not a usable HTTP
//! proxy URL (a SOCKS proxy, say) is skipped with a warning in the log
//! instead of failing every client of the process.
//!
//! # The exclusion list
//!
//! `NO_PROXY` is a comma-separated list (blanks around entries ignored):
//!
//! * `*` alone excludes every destination;
//! * an IP address excludes that address, a CIDR block (`10.0.0.0/8`,
//!   `fd00::/8`) every address in it; IPv6 addresses may be bracketed;
//! * anything else is a domain name, with or without a leading dot, that
//!   excludes itself and all its subdomains (`example.com` excludes
//!   `example.com` and `api.example.com`, not `notexample.com`),
//!   compared without regard to case or a trailing dot;
//! * a `:port` after an entry is ignored: exclusions apply to every port.
//!
//! Nothing is excluded implicitly: to reach a local emulator directly while a
//! proxy is configured, list `localhost,127.0.0.1,::1`.
//!
//! # How requests go through the proxy
//!
//! * `https://` and `wss://` destinations: an HTTP `CONNECT` tunnel to the
//!   destination, then TLS with the destination itself, end to end; the
//!   proxy sees only the host name and port.
//! * `http://` destinations: the request is forwarded in absolute form
//!   (`GET http://host/path HTTP/1.1`), as curl and most clients do, with
//!   `Proxy-Authorization` on every request. This works with proxies that
//!   only allow `CONNECT` to port 443 (Squid's default). With
//!   [`http2_only`](crate::HttpsClientBuilder::http2_only), which a
//!   forwarding proxy cannot relay, a `CONNECT` tunnel is used instead.
//! * `ws://` destinations: a `CONNECT` tunnel (an upgrade cannot be
//!   forwarded reliably).
//!
//! Credentials never appear in `Debug` output, logs or errors: a proxy is
//! shown as `http://host:port`.

use std::fmt;
use std::net::IpAddr;

use http::HeaderValue;
use percent_encoding::percent_decode_str;

use crate::error::TransportError;

/// Which destinations a [`Proxy`] serves, by URL scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    All,
    Https,
    Http,
}

/// An HTTP proxy and the destinations it serves.
///
/// ```
/// use flagwire_transport::proxy::Proxy;
///
/// let proxy = Proxy::https("http://alice:s3cret@proxy.internal:3128")?
///     .no_proxy("localhost, .internal");
/// assert_eq!(proxy.url(), "http://proxy.internal:3128");
/// assert!(proxy.has_credentials());
/// // The credentials are never shown.
/// assert!(!format!("{proxy:?}").contains("s3cret"));
/// # Ok::<(), flagwire_transport::TransportError>(())
/// ```
#[derive(Clone)]
pub struct Proxy {
    scope: Scope,
    host: String,
    port: u16,
    /// `proxy.example:3128` as sent in `Host`, and used in messages as
    /// `http://{authority}`.
    authority: String,
    auth: Option<HeaderValue>,
    exclusions: NoProxy,
}

impl fmt::Debug for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Proxy")
            .field("url", &self.url())
            .field("scope", &self.scope)
            .field(
                "credentials",
                &if self.auth.is_some() {
                    "[redacted]"
                } else {
                    "none"
                },
            )
            .field("no_proxy", &self.exclusions)
            .finish()
    }
}

impl Proxy {
    /// A proxy for every destination. `url` is `http://[user:password@]host[:port]`
    /// (port 80 when absent; `user` and `password` percent-decoded). Fails
    /// with [`TransportError::Config`] for anything else, e.g. a SOCKS or
    /// an `https://` proxy URL (TLS to the proxy itself is not supported).
    pub fn all(url: &str) -> Result<Proxy, TransportError> {
        Proxy::parse(url, Scope::All)
    }

    /// A proxy for `https://` and `wss://` destinations only.
    pub fn https(url: &str) -> Result<Proxy, TransportError> {
        Proxy::parse(url, Scope::Https)
    }

    /// A proxy for `http://` and `ws://` destinations only.
    pub fn http(url: &str) -> Result<Proxy, TransportError> {
        Proxy::parse(url, Scope::Http)
    }

    /// Authenticates to the proxy with HTTP Basic (`Proxy-Authorization`),
    /// replacing credentials given in the URL.
    pub fn basic_auth(mut self, user: &str, password: &str) -> Proxy {
        self.auth = Some(basic_auth(user, password));
        self
    }

    /// Destinations this proxy does not serve, in the `NO_PROXY` syntax (see
    /// the [module docs](self)); they are reached directly, or through a
    /// later proxy that serves them. Replaces an earlier list.
    pub fn no_proxy(mut self, list: &str) -> Proxy {
        self.exclusions = NoProxy::parse(list);
        self
    }

    /// The proxy's URL without credentials, e.g. `http://proxy.internal:3128`.
    pub fn url(&self) -> String {
        format!("http://{}", self.authority)
    }

    /// Whether credentials are sent to the proxy.
    pub fn has_credentials(&self) -> bool {
        self.auth.is_some()
    }

    /// Whether this proxy serves `uri`: its scheme is in the proxy's scope
    /// and its host is not excluded.
    ///
    /// ```
    /// use flagwire_transport::proxy::Proxy;
    ///
    /// let proxy = Proxy::https("proxy.internal:3128")?.no_proxy("example.org");
    /// assert!(proxy.serves(&"https://api.schematichq.com/flags".parse()?));
    /// assert!(!proxy.serves(&"http://api.schematichq.com/flags".parse()?));
    /// assert!(!proxy.serves(&"https://www.example.org/".parse()?));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn serves(&self, uri: &http::Uri) -> bool {
        let secure = match uri.scheme_str() {
            Some("https" | "wss") => true,
            Some("http" | "ws") => false,
            _ => return false,
        };
        let in_scope = match self.scope {
            Scope::All => true,
            Scope::Https => secure,
            Scope::Http => !secure,
        };
        in_scope
            && uri
                .host()
                .is_some_and(|host| !self.exclusions.contains(host))
    }

    pub(crate) fn host(&self) -> &str {
        &self.host
    }

    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    pub(crate) fn authorization(&self) -> Option<&HeaderValue> {
        self.auth.as_ref()
    }

    fn parse(url: &str, scope: Scope) -> Result<Proxy, TransportError> {
        let url = url.trim();
        let (scheme, rest) = match url.split_once("://") {
            Some((scheme, rest)) => (scheme, rest),
            None => ("http", url),
        };
        if !scheme.eq_ignore_ascii_case("http") {
            return Err(TransportError::config(format!(
                "unsupported proxy scheme `{scheme}` (only http:// proxies are supported)"
            )));
        }
        // Everything up to the first `/`, `?` or `#` is the authority.
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        if !tail.is_empty() && tail != "/" {
            return Err(TransportError::config(
                "a proxy URL has no path, query or fragment",
            ));
        }
        let (userinfo, host_port) = match authority.rsplit_once('@') {
            Some((userinfo, host_port)) => (Some(userinfo), host_port),
            None => (None, authority),
        };
        let parsed: http::uri::Authority = host_port
            .parse()
            .map_err(|_| TransportError::config("the proxy URL has an invalid host or port"))?;
        let host = parsed.host();
        if host.is_empty() {
            return Err(TransportError::config("the proxy URL has no host"));
        }
        let port = match parsed.port_u16() {
            Some(port) => port,
            // `http` accepts `host:junk`, ignoring the junk.
            None if host_port.len() > host.len() => {
                return Err(TransportError::config("the proxy URL has an invalid port"));
            }
            None => 80,
        };
        let auth = match userinfo {
            None => None,
            Some(userinfo) => {
                let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
                let user = percent_decode_str(user).decode_utf8().map_err(|_| {
                    TransportError::config("the proxy user name is not valid UTF-8")
                })?;
                let password = percent_decode_str(password)
                    .decode_utf8()
                    .map_err(|_| TransportError::config("the proxy password is not valid UTF-8"))?;
                Some(basic_auth(&user, &password))
            }
        };
        Ok(Proxy {
            scope,
            host: host.to_owned(),
            port,
            authority: format!("{host}:{port}"),
            auth,
            exclusions: NoProxy::default(),
        })
    }
}

/// `Basic base64(user:password)`, marked sensitive so that hyper and
/// `http`'s `Debug` never print it.
fn basic_auth(user: &str, password: &str) -> HeaderValue {
    let mut value = String::from("Basic ");
    base64_encode(format!("{user}:{password}").as_bytes(), &mut value);
    let mut header = HeaderValue::try_from(value).expect("base64 output is a valid header value");
    header.set_sensitive(true);
    header
}

/// Standard base64 with padding (RFC 4648 §4), appended to `out`.
fn base64_encode(input: &[u8], out: &mut String) {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18u32, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> shift) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
}

/// The proxies the environment asks for, reading variables through
/// `lookup` (e.g. `|name| std::env::var(name).ok()`); see the
/// [module docs](self) for the variables and rules. The result, in order
/// of preference: the `HTTPS_PROXY` proxy, the `HTTP_PROXY` proxy, the
/// `ALL_PROXY` proxy, each carrying the `NO_PROXY` exclusions.
///
/// ```
/// use std::collections::HashMap;
/// use flagwire_transport::proxy::from_env_with;
///
/// let env = HashMap::from([
///     ("HTTPS_PROXY", "http://proxy.internal:3128"),
///     ("NO_PROXY", "localhost,127.0.0.1"),
/// ]);
/// let proxies = from_env_with(|name| env.get(name).map(|v| v.to_string()));
/// assert_eq!(proxies.len(), 1);
/// assert!(proxies[0].serves(&"https://api.schematichq.com/".parse()?));
/// assert!(!proxies[0].serves(&"https://localhost:8080/".parse()?));
/// # Ok::<(), http::uri::InvalidUri>(())
/// ```
pub fn from_env_with(lookup: impl Fn(&str) -> Option<String>) -> Vec<Proxy> {
    let first = |names: &[&'static str]| -> Option<(&'static str, String)> {
        names.iter().find_map(|&name| {
            lookup(name)
                .filter(|v| !v.trim().is_empty())
                .map(|v| (name, v))
        })
    };
    let cgi = lookup("REQUEST_METHOD").is_some();
    let http_names: &[&'static str] = if cgi {
        &["http_proxy"]
    } else {
        &["HTTP_PROXY", "http_proxy"]
    };
    let exclusions = first(&["NO_PROXY", "no_proxy"])
        .map(|(_, list)| NoProxy::parse(&list))
        .unwrap_or_default();
    let wanted: [(&[&'static str], Scope); 3] = [
        (&["HTTPS_PROXY", "https_proxy"], Scope::Https),
        (http_names, Scope::Http),
        (&["ALL_PROXY", "all_proxy"], Scope::All),
    ];
    let mut proxies = Vec::new();
    for (names, scope) in wanted {
        let Some((name, value)) = first(names) else {
            continue;
        };
        match Proxy::parse(&value, scope) {
            Ok(mut proxy) => {
                proxy.exclusions = exclusions.clone();
                proxies.push(proxy);
            }
            // The error names neither the value nor its credentials.
            Err(e) => tracing::warn!(variable = name, error = %e, "ignoring proxy variable"),
        }
    }
    proxies
}

/// The proxies from the process environment, read now.
pub(crate) fn from_env() -> Vec<Proxy> {
    from_env_with(|name| std::env::var(name).ok())
}

/// A parsed `NO_PROXY` list.
#[derive(Clone, Default, PartialEq, Eq)]
struct NoProxy {
    everything: bool,
    ips: Vec<IpRule>,
    /// Lower case, without leading or trailing dots.
    domains: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IpRule {
    Exact(IpAddr),
    Block(IpAddr, u8),
}

impl fmt::Debug for NoProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.everything {
            return f.write_str("*");
        }
        f.debug_list()
            .entries(self.ips.iter().map(|ip| match ip {
                IpRule::Exact(ip) => ip.to_string(),
                IpRule::Block(ip, bits) => format!("{ip}/{bits}"),
            }))
            .entries(&self.domains)
            .finish()
    }
}

impl NoProxy {
    fn parse(list: &str) -> NoProxy {
        let mut rules = NoProxy::default();
        for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            if entry == "*" {
                rules.everything = true;
                continue;
            }
            if let Some(rule) = parse_ip_rule(entry) {
                rules.ips.push(rule);
                continue;
            }
            // A domain, possibly with a port, which is ignored.
            let name = match entry.rsplit_once(':') {
                Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
                _ => entry,
            };
            let name = name.trim_matches('.').to_ascii_lowercase();
            if !name.is_empty() {
                rules.domains.push(name);
            }
        }
        rules
    }

    /// Whether `host` (as in a URI: IPv6 in brackets) is excluded.
    fn contains(&self, host: &str) -> bool {
        if self.everything {
            return true;
        }
        let bare = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return self.ips.iter().any(|rule| rule.contains(ip));
        }
        let name = bare.trim_end_matches('.');
        self.domains.iter().any(|domain| {
            name.len() >= domain.len()
                && name[name.len() - domain.len()..].eq_ignore_ascii_case(domain)
                && (name.len() == domain.len()
                    || name.as_bytes()[name.len() - domain.len() - 1] == b'.')
        })
    }
}

/// An IP address or CIDR block entry (`10.0.0.0/8`, `[::1]`, `::1`,
/// `127.0.0.1:8080`), or `None` for a domain.
fn parse_ip_rule(entry: &str) -> Option<IpRule> {
    let (addr, bits) = match entry.split_once('/') {
        Some((addr, bits)) => (addr, Some(bits.parse::<u8>().ok()?)),
        None => (entry, None),
    };
    let ip = if let Some(inner) = addr.strip_prefix('[') {
        // `[v6]` or `[v6]:port`.
        let (inner, _port) = inner.split_once(']')?;
        inner.parse::<IpAddr>().ok()?
    } else if let Ok(ip) = addr.parse::<IpAddr>() {
        ip
    } else {
        // `v4:port`.
        let (v4, port) = addr.rsplit_once(':')?;
        port.parse::<u16>().ok()?;
        v4.parse::<std::net::Ipv4Addr>().ok()?.into()
    };
    match bits {
        None => Some(IpRule::Exact(ip)),
        Some(bits) => {
            let max = if ip.is_ipv4() { 32 } else { 128 };
            (bits <= max).then_some(IpRule::Block(ip, bits))
        }
    }
}

impl IpRule {
    fn contains(self, ip: IpAddr) -> bool {
        match self {
            IpRule::Exact(rule) => same_ip(rule, ip),
            IpRule::Block(IpAddr::V4(net), bits) => match to_v4(ip) {
                Some(ip) => prefix_eq(&net.octets(), &ip.octets(), bits),
                None => false,
            },
            IpRule::Block(IpAddr::V6(net), bits) => match ip {
                IpAddr::V6(ip) => prefix_eq(&net.octets(), &ip.octets(), bits),
                IpAddr::V4(_) => false,
            },
        }
    }
}

/// An IPv4 address, also when written as an IPv4-mapped IPv6 address.
fn to_v4(ip: IpAddr) -> Option<std::net::Ipv4Addr> {
    match ip {
        IpAddr::V4(v4) => Some(v4),
        IpAddr::V6(v6) => v6.to_ipv4_mapped(),
    }
}

fn same_ip(a: IpAddr, b: IpAddr) -> bool {
    a == b || matches!((to_v4(a), to_v4(b)), (Some(x), Some(y)) if x == y)
}

/// Whether the first `bits` bits of `a` and `b` are equal.
fn prefix_eq(a: &[u8], b: &[u8], bits: u8) -> bool {
    let full = usize::from(bits / 8);
    let rest = bits % 8;
    if a[..full] != b[..full] {
        return false;
    }
    rest == 0 || {
        let mask = 0xffu8 << (8 - rest);
        a[full] & mask == b[full] & mask
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;

    fn uri(s: &str) -> http::Uri {
        s.parse().unwrap()
    }

    #[test]
    fn proxy_urls_parse_with_and_without_scheme_port_and_credentials() {
        let p = Proxy::all("proxy.internal").unwrap();
        assert_eq!(p.url(), "http://proxy.internal:80");
        assert!(!p.has_credentials());
        let p = Proxy::all("HTTP://proxy.internal:3128/").unwrap();
        assert_eq!((p.host(), p.port()), ("proxy.internal", 3128));
        let p = Proxy::all("http://al%40ice:p%3Ass@[::1]:8080").unwrap();
        assert_eq!(p.url(), "http://[::1]:8080");
        assert_eq!(
            p.authorization().unwrap(),
            &format!("Basic {}", b64("al@ice:p:ss"))
        );
        assert!(p.authorization().unwrap().is_sensitive());
        let p = Proxy::all("http://user@proxy:1")
            .unwrap()
            .basic_auth("u", "p");
        assert_eq!(p.authorization().unwrap(), "Basic dTpw");
    }

    #[test]
    fn unusable_proxy_urls_are_config_errors_without_credentials() {
        for bad in [
            "socks5://proxy:1080",
            "https://proxy:443",
            "http://",
            "http://proxy:notaport",
            "http://proxy:3128/path",
            "http://us%ffer:pw@proxy",
        ] {
            let err = Proxy::all(bad).unwrap_err();
            assert!(
                matches!(err, TransportError::Config { .. }),
                "{bad}: {err:?}"
            );
        }
        let err = Proxy::all("http://user:hunter2@proxy:3128/x").unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }

    #[test]
    fn debug_never_shows_credentials() {
        let p = Proxy::https("http://alice:hunter2@proxy:3128").unwrap();
        let shown = format!("{p:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("alice"),
            "{shown}"
        );
        assert!(shown.contains("[redacted]"), "{shown}");
        assert!(!shown.contains(&b64("alice:hunter2")), "{shown}");
    }

    #[test]
    fn scopes_select_by_scheme() {
        let all = Proxy::all("p:1").unwrap();
        let https = Proxy::https("p:1").unwrap();
        let http = Proxy::http("p:1").unwrap();
        for (url, a, s, h) in [
            ("https://x/", true, true, false),
            ("wss://x/", true, true, false),
            ("http://x/", true, false, true),
            ("ws://x/", true, false, true),
            ("ftp://x/", false, false, false),
        ] {
            let u = uri(url);
            assert_eq!(
                (all.serves(&u), https.serves(&u), http.serves(&u)),
                (a, s, h),
                "{url}"
            );
        }
    }

    #[test]
    fn no_proxy_rules() {
        let rules = NoProxy::parse(
            " example.com, .internal ,10.0.0.0/8, 192.168.1.7, [::1], fd00::/8, host.test:8080, 127.0.0.1:9,,",
        );
        for excluded in [
            "example.com",
            "EXAMPLE.com",
            "api.example.com",
            "example.com.",
            "svc.internal",
            "internal",
            "10.1.2.3",
            "192.168.1.7",
            "[::1]",
            "[fd00::5]",
            "[::ffff:10.0.0.1]",
            "host.test",
            "127.0.0.1",
        ] {
            assert!(rules.contains(excluded), "{excluded}");
        }
        for kept in [
            "notexample.com",
            "example.org",
            "com",
            "11.0.0.1",
            "192.168.1.8",
            "[::2]",
            "internal.example",
        ] {
            assert!(!rules.contains(kept), "{kept}");
        }
        assert!(NoProxy::parse("*").contains("anything.at.all"));
        assert!(!NoProxy::parse("").contains("localhost"));
        // A malformed block is a domain that matches nothing real.
        assert!(!NoProxy::parse("10.0.0.0/99").contains("10.0.0.1"));
    }

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn environment_variables_in_order_of_preference() {
        let proxies = from_env_with(env(&[
            ("HTTPS_PROXY", "http://secure:1"),
            ("https_proxy", "http://ignored:1"),
            ("http_proxy", "plain:2"),
            ("ALL_PROXY", "http://every:3"),
            ("no_proxy", "localhost"),
        ]));
        let urls: Vec<String> = proxies.iter().map(Proxy::url).collect();
        assert_eq!(
            urls,
            ["http://secure:1", "http://plain:2", "http://every:3"]
        );
        let pick = |u: &str| proxies.iter().find(|p| p.serves(&uri(u))).map(Proxy::url);
        assert_eq!(pick("https://api/").as_deref(), Some("http://secure:1"));
        assert_eq!(pick("http://api/").as_deref(), Some("http://plain:2"));
        assert_eq!(pick("https://localhost:8/"), None);
        assert!(from_env_with(env(&[])).is_empty());
        // Blank values count as unset; lower case is read when upper is blank.
        let proxies = from_env_with(env(&[("HTTPS_PROXY", " "), ("https_proxy", "p:9")]));
        assert_eq!(proxies[0].url(), "http://p:9");
    }

    #[test]
    fn unusable_environment_values_are_skipped_and_cgi_ignores_http_proxy() {
        let proxies = from_env_with(env(&[
            ("ALL_PROXY", "socks5://user:pw@socks:1080"),
            ("HTTPS_PROXY", "http://ok:1"),
        ]));
        assert_eq!(proxies.len(), 1);
        let cgi = from_env_with(env(&[
            ("REQUEST_METHOD", "GET"),
            ("HTTP_PROXY", "http://attacker:1"),
        ]));
        assert!(cgi.is_empty());
        let cgi = from_env_with(env(&[
            ("REQUEST_METHOD", "GET"),
            ("http_proxy", "http://admin:1"),
        ]));
        assert_eq!(cgi[0].url(), "http://admin:1");
    }

    fn b64(s: &str) -> String {
        let mut out = String::new();
        base64_encode(s.as_bytes(), &mut out);
        out
    }

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(b64(plain), encoded);
        }
    }

    proptest! {
        #[test]
        fn parsing_never_panics(list in "[ -~]{0,64}", host in "[ -~]{0,32}") {
            let rules = NoProxy::parse(&list);
            let _ = rules.contains(&host);
            let _ = Proxy::all(&list);
        }

        #[test]
        fn a_listed_domain_excludes_itself_and_subdomains_only(
            domain in "[a-z][a-z0-9-]{0,10}(\\.[a-z][a-z0-9-]{0,10}){0,3}",
            sub in "[a-z0-9]{1,8}",
            glued in "[a-z0-9]{1,8}",
            dot in proptest::bool::ANY,
        ) {
            let entry = if dot { format!(".{domain}") } else { domain.clone() };
            let rules = NoProxy::parse(&entry);
            prop_assert!(rules.contains(&domain));
            prop_assert!(rules.contains(&domain.to_ascii_uppercase()));
            let subdomain = format!("{sub}.{domain}");
            prop_assert!(rules.contains(&subdomain));
            let glued_host = format!("{glued}{domain}");
            prop_assert!(!rules.contains(&glued_host));
        }

        #[test]
        fn a_v4_block_contains_exactly_the_addresses_with_its_prefix(
            net in proptest::num::u32::ANY,
            ip in proptest::num::u32::ANY,
            bits in 0u8..=32,
        ) {
            let mask = if bits == 0 { 0 } else { u32::MAX << (32 - bits) };
            let rules = NoProxy::parse(&format!("{}/{bits}", std::net::Ipv4Addr::from(net)));
            let inside = (net & mask) == (ip & mask);
            prop_assert_eq!(rules.contains(&std::net::Ipv4Addr::from(ip).to_string()), inside);
        }

        #[test]
        fn base64_round_trips(data in proptest::collection::vec(proptest::num::u8::ANY, 0..64)) {
            let mut out = String::new();
            base64_encode(&data, &mut out);
            prop_assert_eq!(out.len(), data.len().div_ceil(3) * 4);
            prop_assert_eq!(decode(&out), data);
        }
    }

    /// A plain base64 decoder, as an oracle for the encoder.
    fn decode(s: &str) -> Vec<u8> {
        let value = |c: u8| match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            _ => 63,
        };
        let mut out = Vec::new();
        for quad in s.as_bytes().chunks(4) {
            let pad = quad.iter().filter(|&&c| c == b'=').count();
            let n = quad
                .iter()
                .map(|&c| if c == b'=' { 0 } else { u32::from(value(c)) })
                .fold(0u32, |acc, v| (acc << 6) | v);
            let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
            out.extend_from_slice(&bytes[..3 - pad]);
        }
        out
    }
}
