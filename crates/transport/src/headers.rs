//! SDK identification headers.
//!
//! [`IdentificationLayer`] adds `User-Agent: flagwire/<version>` and the
//! `X-Fern-*` headers that Schematic's own SDKs send (language, SDK name and
//! version, platform), so the platform can tell which client made a call.
//! Headers already present on a request are left alone: a caller that sets
//! its own `User-Agent` keeps it.

use std::sync::OnceLock;
use std::task::{Context, Poll};

use http::header::{HeaderName, USER_AGENT};
use http::{HeaderValue, Request};
use tower_layer::Layer;
use tower_service::Service;

use crate::error::TransportError;

/// The version of this crate, used in the default identification.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Up to this many distinct header names, presence is checked by scanning.
const SCAN_LIMIT: usize = 16;

const FERN_LANGUAGE: HeaderName = HeaderName::from_static("x-fern-language");
const FERN_SDK_NAME: HeaderName = HeaderName::from_static("x-fern-sdk-name");
const FERN_SDK_VERSION: HeaderName = HeaderName::from_static("x-fern-sdk-version");
const FERN_RUNTIME: HeaderName = HeaderName::from_static("x-fern-runtime");
const FERN_PLATFORM: HeaderName = HeaderName::from_static("x-fern-platform");

/// Adds identification headers to every request that lacks them.
///
/// The default identifies as `flagwire` at this crate's version:
///
/// | header | value |
/// |---|---|
/// | `User-Agent` | `flagwire/<version>` |
/// | `X-Fern-Language` | `Rust` |
/// | `X-Fern-SDK-Name` | `flagwire` |
/// | `X-Fern-SDK-Version` | `<version>` |
/// | `X-Fern-Runtime` | `rust` |
/// | `X-Fern-Platform` | `<os>/<arch>` |
#[derive(Debug, Clone)]
pub struct IdentificationLayer {
    headers: Vec<(HeaderName, HeaderValue)>,
}

impl Default for IdentificationLayer {
    fn default() -> Self {
        // Static values: putting them on a request copies no bytes and
        // touches no reference count.
        static PLATFORM: OnceLock<String> = OnceLock::new();
        let platform =
            PLATFORM.get_or_init(|| format!("{}/{}", std::env::consts::OS, std::env::consts::ARCH));
        IdentificationLayer {
            headers: vec![
                (
                    USER_AGENT,
                    HeaderValue::from_static(concat!("flagwire/", env!("CARGO_PKG_VERSION"))),
                ),
                (FERN_LANGUAGE, HeaderValue::from_static("Rust")),
                (FERN_SDK_NAME, HeaderValue::from_static("flagwire")),
                (FERN_SDK_VERSION, HeaderValue::from_static(VERSION)),
                (FERN_RUNTIME, HeaderValue::from_static("rust")),
                (FERN_PLATFORM, HeaderValue::from_static(platform)),
            ],
        }
    }
}

impl IdentificationLayer {
    /// Identifies as `sdk_name` at `version`. Fails with
    /// [`TransportError::Config`] if either cannot be sent in a header.
    pub fn new(sdk_name: &str, version: &str) -> Result<Self, TransportError> {
        let value = |s: String| {
            HeaderValue::try_from(s)
                .map_err(|_| TransportError::config("identification is not a valid header value"))
        };
        Ok(IdentificationLayer {
            headers: vec![
                (USER_AGENT, value(format!("{sdk_name}/{version}"))?),
                (FERN_LANGUAGE, HeaderValue::from_static("Rust")),
                (FERN_SDK_NAME, value(sdk_name.to_owned())?),
                (FERN_SDK_VERSION, value(version.to_owned())?),
                (FERN_RUNTIME, HeaderValue::from_static("rust")),
                (
                    FERN_PLATFORM,
                    value(format!(
                        "{}/{}",
                        std::env::consts::OS,
                        std::env::consts::ARCH
                    ))?,
                ),
            ],
        })
    }

    /// Adds (or replaces) one more header sent with every request, e.g.
    /// `X-Schematic-Environment-Id`.
    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.retain(|(n, _)| *n != name);
        self.headers.push((name, value));
        self
    }

    /// The headers this layer adds.
    pub fn headers(&self) -> impl Iterator<Item = (&HeaderName, &HeaderValue)> {
        self.headers.iter().map(|(n, v)| (n, v))
    }
}

impl<S> Layer<S> for IdentificationLayer {
    type Service = Identify<S>;

    fn layer(&self, inner: S) -> Identify<S> {
        Identify {
            inner,
            headers: self.headers.clone().into(),
        }
    }
}

/// The service made by [`IdentificationLayer`].
#[derive(Debug, Clone)]
pub struct Identify<S> {
    inner: S,
    headers: std::sync::Arc<[(HeaderName, HeaderValue)]>,
}

impl<S, B> Service<Request<B>> for Identify<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let map = req.headers_mut();
        if map.keys_len() > SCAN_LIMIT || self.headers.len() > 64 {
            for (name, value) in self.headers.iter() {
                if !map.contains_key(name) {
                    map.append(name.clone(), value.clone());
                }
            }
            return self.inner.call(req);
        }
        // Requests usually carry a handful of headers: one pass over them
        // marks which of ours are already there (names compared by length
        // first), which is cheaper than hashing each of our names for a
        // look-up before hashing it again to insert it.
        let mut present = 0u64;
        for key in map.keys() {
            let key = key.as_str();
            for (i, (name, _)) in self.headers.iter().enumerate() {
                let name = name.as_str();
                if key.len() == name.len() && key == name {
                    present |= 1 << i;
                }
            }
        }
        map.reserve(self.headers.len() - present.count_ones() as usize);
        for (i, (name, value)) in self.headers.iter().enumerate() {
            if present & (1 << i) == 0 {
                map.append(name.clone(), value.clone());
            }
        }
        self.inner.call(req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::convert::Infallible;
    use tower::ServiceExt;

    #[tokio::test]
    async fn adds_defaults_and_keeps_callers_headers() {
        let echo = tower::service_fn(|req: Request<()>| async move {
            Ok::<_, Infallible>(req.headers().clone())
        });
        let layer = IdentificationLayer::default().header(
            HeaderName::from_static("x-schematic-environment-id"),
            HeaderValue::from_static("env_1"),
        );
        let svc = layer.layer(echo);
        let mut req = Request::new(());
        req.headers_mut()
            .insert(USER_AGENT, HeaderValue::from_static("mine/1"));
        let h = svc.oneshot(req).await.unwrap();
        assert_eq!(h[USER_AGENT], "mine/1");
        assert_eq!(h["x-fern-sdk-name"], "flagwire");
        assert_eq!(h["x-fern-sdk-version"], VERSION);
        assert_eq!(h["x-fern-language"], "Rust");
        assert_eq!(h["x-schematic-environment-id"], "env_1");
    }

    #[test]
    fn default_matches_new() {
        let built = IdentificationLayer::new("flagwire", VERSION).unwrap();
        let default = IdentificationLayer::default();
        let a: Vec<_> = built.headers().collect();
        let b: Vec<_> = default.headers().collect();
        assert_eq!(a, b);
    }

    #[test]
    fn default_user_agent() {
        let layer = IdentificationLayer::default();
        let ua = layer.headers().find(|(n, _)| **n == USER_AGENT).unwrap().1;
        assert_eq!(ua, &format!("flagwire/{VERSION}"));
        assert!(IdentificationLayer::new("bad\nname", "1").is_err());
    }
}
