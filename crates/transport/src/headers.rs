//! SDK identification headers.
//!
//! [`IdentificationLayer`] adds `User-Agent: flagwire/<version>` and the
//! `X-Fern-*` headers that Schematic's own SDKs send (language, SDK name and
//! version, platform), so the platform can tell which client made a call.
//! Headers already present on a request are left alone: a caller that sets
//! its own `User-Agent` keeps it.

use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use http::header::{HeaderName, USER_AGENT};
use http::{HeaderMap, HeaderValue, Request};
use tower_layer::Layer;
use tower_service::Service;

use crate::error::TransportError;

/// The version of this crate, used in the default identification.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Up to this many header values on a request, identification is merged
/// into a copy of a prepared map (see [`Identify`]).
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

    /// Only `User-Agent: flagwire/<version>`, without the `X-Fern-*` headers
    /// that identify a Schematic SDK: for APIs other than Schematic's.
    ///
    /// ```
    /// use flagwire_transport::headers::IdentificationLayer;
    ///
    /// let layer = IdentificationLayer::user_agent_only();
    /// let names: Vec<_> = layer.headers().map(|(name, _)| name.as_str()).collect();
    /// assert_eq!(names, ["user-agent"]);
    /// ```
    pub fn user_agent_only() -> Self {
        IdentificationLayer {
            headers: vec![(
                USER_AGENT,
                HeaderValue::from_static(concat!("flagwire/", env!("CARGO_PKG_VERSION"))),
            )],
        }
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
        // Room for the request's own headers and a few added further down
        // (credentials, signature), so that merging rarely rehashes.
        let mut prebuilt = HeaderMap::with_capacity(self.headers.len() + 8);
        for (name, value) in &self.headers {
            prebuilt.append(name.clone(), value.clone());
        }
        Identify {
            inner,
            headers: Arc::new(prebuilt),
        }
    }
}

/// The service made by [`IdentificationLayer`].
#[derive(Debug, Clone)]
pub struct Identify<S> {
    inner: S,
    /// The identification headers as a ready-made map: copying it copies
    /// its hash table as it is, with no name hashed again.
    headers: Arc<HeaderMap>,
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
        let own = req.headers_mut();
        if own.len() > SCAN_LIMIT {
            for (name, value) in self.headers.iter() {
                if !own.contains_key(name) {
                    own.append(name.clone(), value.clone());
                }
            }
            return self.inner.call(req);
        }
        // Requests carry a handful of headers: start from a copy of the
        // identification map and put the request's own headers into it,
        // replacing ours where the request has its own. That hashes the
        // request's few names once each instead of hashing all of ours
        // (twice when checking for presence first).
        let mut merged = HeaderMap::clone(&self.headers);
        let mut last: Option<HeaderName> = None;
        for (name, value) in std::mem::take(own) {
            match name {
                Some(name) => {
                    merged.insert(&name, value);
                    last = Some(name);
                }
                // Further values of the same name keep their order.
                None => {
                    if let Some(name) = &last {
                        merged.append(name, value);
                    }
                }
            }
        }
        *own = merged;
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

    #[tokio::test]
    async fn merging_keeps_every_value_of_the_request() {
        let echo = tower::service_fn(|req: Request<()>| async move {
            Ok::<_, Infallible>(req.headers().clone())
        });
        let svc = IdentificationLayer::default().layer(echo);
        let mut req = Request::new(());
        let h = req.headers_mut();
        h.append("accept", HeaderValue::from_static("a/1"));
        h.append(USER_AGENT, HeaderValue::from_static("mine/1"));
        h.append("accept", HeaderValue::from_static("a/2"));
        h.append(USER_AGENT, HeaderValue::from_static("mine/2"));
        let mut secret = HeaderValue::from_static("k");
        secret.set_sensitive(true);
        h.append("x-api-key", secret);
        let h = svc.oneshot(req).await.unwrap();
        let all = |name| h.get_all(name).iter().cloned().collect::<Vec<_>>();
        assert_eq!(all("accept"), ["a/1", "a/2"]);
        assert_eq!(all("user-agent"), ["mine/1", "mine/2"]);
        assert!(h["x-api-key"].is_sensitive());
        assert_eq!(h["x-fern-sdk-name"], "flagwire");
        assert_eq!(h.len(), 5 + 5);

        // Past the scan limit, presence is looked up instead; same result.
        let echo = tower::service_fn(|req: Request<()>| async move {
            Ok::<_, Infallible>(req.headers().clone())
        });
        let svc = IdentificationLayer::default().layer(echo);
        let mut req = Request::new(());
        for i in 0..SCAN_LIMIT {
            req.headers_mut().append(
                HeaderName::try_from(format!("x-h{i}")).unwrap(),
                HeaderValue::from_static("v"),
            );
        }
        req.headers_mut()
            .append(USER_AGENT, HeaderValue::from_static("mine/1"));
        let h = svc.oneshot(req).await.unwrap();
        assert_eq!(h.get_all(USER_AGENT).iter().count(), 1);
        assert_eq!(h[USER_AGENT], "mine/1");
        assert_eq!(h.len(), SCAN_LIMIT + 6);
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
