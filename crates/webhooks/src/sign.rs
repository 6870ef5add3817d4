//! Producing the headers a sender would send, to test webhook handlers.

use core::fmt;
use core::marker::PhantomData;

use ring::hmac;

use crate::encoding::{encode_base64, encode_hex};
use crate::error::Error;
use crate::headers::Headers;
use crate::scheme::{Esauti, Flagsmith, GitHub, Schematic, Scheme, StandardWebhooks, Stripe};
use crate::secret::Secret;

/// Signs deliveries the way a sender using scheme `S` does.
///
/// Meant for tests of webhook handlers (and for services that send
/// webhooks). The secret is interpreted as by [`Verifier`](crate::Verifier),
/// so the same value works for both.
///
/// ```
/// use flagwire_webhooks::{Flagsmith, Signer};
///
/// let headers = Signer::<Flagsmith>::new("secret")?.sign(br#"{"event_type": "FLAG_UPDATED"}"#);
/// assert_eq!(
///     headers.get("X-Flagsmith-Signature"),
///     Some("6a6eeaae2241fc0ae5cec51884ed64be87ab39bf472af4e1a80833ab8f75e18b"),
/// );
/// # Ok::<(), flagwire_webhooks::Error>(())
/// ```
pub struct Signer<S: Scheme> {
    key: hmac::Key,
    scheme: PhantomData<fn() -> S>,
}

impl<S: Scheme> Clone for Signer<S> {
    fn clone(&self) -> Self {
        Signer {
            key: self.key.clone(),
            scheme: PhantomData,
        }
    }
}

impl<S: Scheme> fmt::Debug for Signer<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signer")
            .field("scheme", &S::NAME)
            .finish_non_exhaustive()
    }
}

impl<S: Scheme> Signer<S> {
    /// A signer for `secret`. Fails like
    /// [`VerifierBuilder::build`](crate::VerifierBuilder::build) on an
    /// unusable secret.
    pub fn new(secret: impl Into<Secret>) -> Result<Self, Error> {
        let secret = secret.into();
        let key = S::key_bytes(&secret)?;
        Ok(Signer {
            key: hmac::Key::new(hmac::HMAC_SHA256, &key),
            scheme: PhantomData,
        })
    }

    fn mac(&self, pieces: &[&[u8]]) -> hmac::Tag {
        let mut cx = hmac::Context::with_key(&self.key);
        for piece in pieces {
            cx.update(piece);
        }
        cx.sign()
    }
}

impl Signer<Schematic> {
    /// `X-Schematic-Webhook-Signature` and `X-Schematic-Webhook-Timestamp`
    /// for `body` sent at `timestamp` (Unix seconds).
    pub fn sign(&self, timestamp: i64, body: &[u8]) -> SignedHeaders {
        let ts = timestamp.to_string();
        let tag = self.mac(&[body, b"+", ts.as_bytes()]);
        SignedHeaders::new(vec![
            (Schematic::SIGNATURE_HEADER, encode_hex(tag.as_ref())),
            (Schematic::TIMESTAMP_HEADER, ts),
        ])
    }
}

impl Signer<Flagsmith> {
    /// `X-Flagsmith-Signature` for `body`.
    pub fn sign(&self, body: &[u8]) -> SignedHeaders {
        let tag = self.mac(&[body]);
        SignedHeaders::new(vec![(
            Flagsmith::SIGNATURE_HEADER,
            encode_hex(tag.as_ref()),
        )])
    }
}

impl Signer<GitHub> {
    /// `X-Hub-Signature-256` for `body`.
    pub fn sign(&self, body: &[u8]) -> SignedHeaders {
        let tag = self.mac(&[body]);
        SignedHeaders::new(vec![(
            GitHub::SIGNATURE_HEADER,
            format!("sha256={}", encode_hex(tag.as_ref())),
        )])
    }
}

impl Signer<Esauti> {
    /// `X-eSauti-Timestamp` and `X-eSauti-Signature` for a request. The
    /// method is upper-cased and only the path of `path` is signed, as the
    /// verifier expects.
    pub fn sign(&self, method: &str, path: &str, timestamp: i64, body: &[u8]) -> SignedHeaders {
        let ts = timestamp.to_string();
        let method = method.to_ascii_uppercase();
        let path = crate::verifier::signed_path(path);
        let tag = self.mac(&[
            method.as_bytes(),
            b"\n",
            path.as_bytes(),
            b"\n",
            ts.as_bytes(),
            b"\n",
            body,
        ]);
        SignedHeaders::new(vec![
            (Esauti::TIMESTAMP_HEADER, ts),
            (
                Esauti::SIGNATURE_HEADER,
                format!("sha256={}", encode_hex(tag.as_ref())),
            ),
        ])
    }
}

impl Signer<StandardWebhooks> {
    /// `webhook-id`, `webhook-timestamp` and `webhook-signature` for a
    /// message. `id` should be unique per message and stable across
    /// retries, and must not contain `.`.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> SignedHeaders {
        let ts = timestamp.to_string();
        let tag = self.mac(&[id.as_bytes(), b".", ts.as_bytes(), b".", body]);
        SignedHeaders::new(vec![
            (StandardWebhooks::ID_HEADER, id.to_owned()),
            (StandardWebhooks::TIMESTAMP_HEADER, ts),
            (
                StandardWebhooks::SIGNATURE_HEADER,
                format!("v1,{}", encode_base64(tag.as_ref())),
            ),
        ])
    }
}

impl Signer<Stripe> {
    /// `Stripe-Signature` for `body` sent at `timestamp` (Unix seconds).
    pub fn sign(&self, timestamp: i64, body: &[u8]) -> SignedHeaders {
        let ts = timestamp.to_string();
        let tag = self.mac(&[ts.as_bytes(), b".", body]);
        SignedHeaders::new(vec![(
            Stripe::SIGNATURE_HEADER,
            format!("t={ts},v1={}", encode_hex(tag.as_ref())),
        )])
    }
}

/// Headers produced by a [`Signer`], with lowercase names.
///
/// Implements [`Headers`], so it can be handed straight to a verifier, and
/// converts to an [`http::HeaderMap`] with the `http` feature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedHeaders {
    entries: Vec<(&'static str, String)>,
}

impl SignedHeaders {
    fn new(entries: Vec<(&'static str, String)>) -> Self {
        SignedHeaders { entries }
    }

    /// The value of the header `name`, matched case-insensitively.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The `(name, value)` pairs, in the order a sender would write them.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &str)> {
        self.entries.iter().map(|(n, v)| (*n, v.as_str()))
    }

    /// Adds the headers to `map`, replacing any of the same name.
    ///
    /// Fails only if a value is not a valid header value, which can happen
    /// with a Standard Webhooks id containing control characters.
    #[cfg(feature = "http")]
    pub fn apply_to(
        &self,
        map: &mut http::HeaderMap,
    ) -> Result<(), http::header::InvalidHeaderValue> {
        for (name, value) in &self.entries {
            let value = http::HeaderValue::from_str(value)?;
            map.insert(http::HeaderName::from_static(name), value);
        }
        Ok(())
    }

    /// The headers as a new [`http::HeaderMap`]; see
    /// [`apply_to`](Self::apply_to).
    #[cfg(feature = "http")]
    pub fn to_header_map(&self) -> Result<http::HeaderMap, http::header::InvalidHeaderValue> {
        let mut map = http::HeaderMap::with_capacity(self.entries.len());
        self.apply_to(&mut map)?;
        Ok(map)
    }
}

impl Headers for SignedHeaders {
    fn header_values(&self, name: &'static str) -> impl Iterator<Item = &[u8]> {
        self.entries
            .iter()
            .filter(move |(n, _)| crate::headers::name_matches(n.as_bytes(), name))
            .map(|(_, v)| v.as_bytes())
    }
}

impl IntoIterator for SignedHeaders {
    type Item = (&'static str, String);
    type IntoIter = std::vec::IntoIter<(&'static str, String)>;

    fn into_iter(self) -> Self::IntoIter {
        self.entries.into_iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stripe_vector() {
        let headers = Signer::<Stripe>::new("whsec_test_secret")
            .unwrap()
            .sign(1_700_000_000, br#"{"id":"evt_test","object":"event"}"#);
        assert_eq!(
            headers.get("stripe-signature"),
            Some(
                "t=1700000000,v1=8042376f6ca064adbe037642a718227dfd59047137eb49497a54c49eb0cfb724"
            )
        );
    }

    #[test]
    fn standard_webhooks_vector() {
        let headers = Signer::<StandardWebhooks>::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
            .unwrap()
            .sign(
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1_614_265_330,
                br#"{"test": 2432232314}"#,
            );
        assert_eq!(
            headers.get("Webhook-Signature"),
            Some("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
        );
        assert_eq!(
            headers.get("webhook-id"),
            Some("msg_p5jXN8AQM9LWM0D4loKWxJek")
        );
        assert_eq!(headers.get("webhook-timestamp"), Some("1614265330"));
    }

    #[test]
    fn esauti_vectors() {
        let signer = Signer::<Esauti>::new("super-secret").unwrap();
        let headers = signer.sign(
            "post",
            "/v1/inbound/event?x=1",
            1_700_000_000,
            br#"{"type":"order.created"}"#,
        );
        assert_eq!(
            headers.get("x-esauti-signature"),
            Some("sha256=70069ac894eebe92d767d0add5927d08297ca5653e43c4458cbb40acd4930c62")
        );
        let headers = Signer::<Esauti>::new("k")
            .unwrap()
            .sign("GET", "", 1_700_000_000, b"");
        assert_eq!(
            headers.get("X-eSauti-Signature"),
            Some("sha256=1e7fd5126f5167807f3231c6b87ba8388722d32ce9bb41cc1818c72c0c606d2d")
        );
        assert_eq!(headers.get("X-eSauti-Timestamp"), Some("1700000000"));
    }

    #[cfg(feature = "http")]
    #[test]
    fn header_map_conversion() {
        let headers = Signer::<Schematic>::new("s").unwrap().sign(5, b"x");
        let map = headers.to_header_map().unwrap();
        assert_eq!(map.len(), 2);
        assert_eq!(map["x-schematic-webhook-timestamp"], "5");
        let bad = Signer::<StandardWebhooks>::new(b"key")
            .unwrap()
            .sign("a\nb", 1, b"");
        assert!(bad.to_header_map().is_err());
    }
}
