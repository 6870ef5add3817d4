//! The supported signature schemes.
//!
//! Each scheme is a zero-sized marker type used as the parameter of
//! [`Verifier`](crate::Verifier) and [`Signer`](crate::Signer). The header
//! names are exposed as associated constants, in lowercase.

use std::borrow::Cow;

use crate::encoding::decode_base64;
use crate::error::{Error, SecretError};
use crate::headers::Headers;
use crate::secret::Secret;
use crate::verifier::{Verified, Verifier};

mod sealed {
    pub trait Sealed {}
}

/// A webhook signature scheme. Sealed: the implementations are the marker
/// types of this module.
pub trait Scheme: sealed::Sealed + Send + Sync + 'static {
    /// The scheme's name, for diagnostics.
    const NAME: &'static str;
    /// Whether the scheme signs a timestamp that the tolerance applies to.
    const HAS_TIMESTAMP: bool;

    /// The HMAC key for `secret`.
    #[doc(hidden)]
    fn key_bytes(secret: &Secret) -> Result<Cow<'_, [u8]>, Error> {
        non_empty(Cow::Borrowed(secret.as_bytes()))
    }

    /// Verifies a request with the scheme's own `verify`, handing it the
    /// method and path when the scheme signs them. This is what lets
    /// `Verifier::verify_request` and the framework adapters work for every
    /// scheme.
    #[doc(hidden)]
    fn verify_request<'h, H: Headers + ?Sized>(
        verifier: &Verifier<Self>,
        method: &str,
        path: &str,
        headers: &'h H,
        body: &[u8],
    ) -> Result<Verified<'h>, Error>
    where
        Self: Sized;
}

/// The `verify_request` of a scheme whose `verify` signs neither the method
/// nor the path.
macro_rules! verify_headers_and_body {
    () => {
        fn verify_request<'h, H: Headers + ?Sized>(
            verifier: &Verifier<Self>,
            _method: &str,
            _path: &str,
            headers: &'h H,
            body: &[u8],
        ) -> Result<Verified<'h>, Error> {
            verifier.verify(headers, body)
        }
    };
}

fn non_empty(key: Cow<'_, [u8]>) -> Result<Cow<'_, [u8]>, Error> {
    if key.is_empty() {
        Err(Error::InvalidSecret {
            reason: SecretError::Empty,
        })
    } else {
        Ok(key)
    }
}

/// Schematic webhooks.
///
/// `X-Schematic-Webhook-Signature` carries the hex HMAC-SHA256, keyed with
/// the secret's UTF-8 bytes, of the raw body, a `+` and the
/// `X-Schematic-Webhook-Timestamp` value exactly as sent.
///
/// The official Schematic SDKs never check how old the timestamp is, so a
/// captured delivery can be replayed to them forever. This crate checks it
/// against a tolerance (300 s by default, in both directions); call
/// [`ignore_timestamp_age`](crate::VerifierBuilder::ignore_timestamp_age) to
/// behave like the official SDKs.
#[derive(Debug, Clone, Copy, Default)]
pub struct Schematic;

impl Schematic {
    /// `x-schematic-webhook-signature`
    pub const SIGNATURE_HEADER: &'static str = "x-schematic-webhook-signature";
    /// `x-schematic-webhook-timestamp`
    pub const TIMESTAMP_HEADER: &'static str = "x-schematic-webhook-timestamp";
}

impl sealed::Sealed for Schematic {}
impl Scheme for Schematic {
    const NAME: &'static str = "Schematic";
    const HAS_TIMESTAMP: bool = true;

    verify_headers_and_body!();
}

/// Flagsmith webhooks (environment, organisation and identity-flags
/// integration webhooks).
///
/// `X-Flagsmith-Signature` carries the hex HMAC-SHA256 of the raw body,
/// keyed with the secret's UTF-8 bytes. Flagsmith signs no timestamp and
/// sends no delivery id, so there is no replay protection: make handlers
/// idempotent.
#[derive(Debug, Clone, Copy, Default)]
pub struct Flagsmith;

impl Flagsmith {
    /// `x-flagsmith-signature`
    pub const SIGNATURE_HEADER: &'static str = "x-flagsmith-signature";
}

impl sealed::Sealed for Flagsmith {}
impl Scheme for Flagsmith {
    const NAME: &'static str = "Flagsmith";
    const HAS_TIMESTAMP: bool = false;

    verify_headers_and_body!();
}

/// eSauti signed requests.
///
/// `X-eSauti-Signature: sha256=<hex>` carries the HMAC-SHA256, keyed with
/// the secret's UTF-8 bytes, of the upper-case method, the URL path, the
/// `X-eSauti-Timestamp` value and the raw body, joined by `\n`. The query
/// string is not signed.
#[derive(Debug, Clone, Copy, Default)]
pub struct Esauti;

impl Esauti {
    /// `x-esauti-signature`
    pub const SIGNATURE_HEADER: &'static str = "x-esauti-signature";
    /// `x-esauti-timestamp`
    pub const TIMESTAMP_HEADER: &'static str = "x-esauti-timestamp";
}

impl sealed::Sealed for Esauti {}
impl Scheme for Esauti {
    const NAME: &'static str = "eSauti";
    const HAS_TIMESTAMP: bool = true;

    fn verify_request<'h, H: Headers + ?Sized>(
        verifier: &Verifier<Self>,
        method: &str,
        path: &str,
        headers: &'h H,
        body: &[u8],
    ) -> Result<Verified<'h>, Error> {
        verifier.verify(method, path, headers, body)
    }
}

/// Standard Webhooks (and Svix, whose `svix-*` headers are accepted too).
///
/// `webhook-signature` holds space-separated `v1,<base64>` entries, each an
/// HMAC-SHA256 of `webhook-id`, `.`, `webhook-timestamp`, `.` and the raw
/// body. A text secret is written `whsec_<base64>` and keys the HMAC with
/// the decoded bytes; the `whsec_` prefix is optional.
#[derive(Debug, Clone, Copy, Default)]
pub struct StandardWebhooks;

impl StandardWebhooks {
    /// `webhook-id`
    pub const ID_HEADER: &'static str = "webhook-id";
    /// `webhook-timestamp`
    pub const TIMESTAMP_HEADER: &'static str = "webhook-timestamp";
    /// `webhook-signature`
    pub const SIGNATURE_HEADER: &'static str = "webhook-signature";
    /// `svix-id`, accepted when `webhook-signature` is absent.
    pub const SVIX_ID_HEADER: &'static str = "svix-id";
    /// `svix-timestamp`
    pub const SVIX_TIMESTAMP_HEADER: &'static str = "svix-timestamp";
    /// `svix-signature`
    pub const SVIX_SIGNATURE_HEADER: &'static str = "svix-signature";
}

impl sealed::Sealed for StandardWebhooks {}
impl Scheme for StandardWebhooks {
    const NAME: &'static str = "Standard Webhooks";
    const HAS_TIMESTAMP: bool = true;

    verify_headers_and_body!();

    fn key_bytes(secret: &Secret) -> Result<Cow<'_, [u8]>, Error> {
        if !secret.is_text() {
            return non_empty(Cow::Borrowed(secret.as_bytes()));
        }
        let text = secret.as_bytes();
        let encoded = text.strip_prefix(b"whsec_").unwrap_or(text);
        if encoded.is_empty() {
            return Err(Error::InvalidSecret {
                reason: SecretError::Empty,
            });
        }
        let key = decode_base64(encoded).ok_or(Error::InvalidSecret {
            reason: SecretError::InvalidBase64,
        })?;
        non_empty(Cow::Owned(key))
    }
}

/// Stripe webhooks.
///
/// `Stripe-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>…]` where each `v1`
/// is the HMAC-SHA256 of `t`, `.` and the raw body. The key is the whole
/// endpoint secret, `whsec_` included, as UTF-8 (it is *not* base64-decoded,
/// unlike Standard Webhooks). `v0` entries are ignored.
#[derive(Debug, Clone, Copy, Default)]
pub struct Stripe;

impl Stripe {
    /// `stripe-signature`
    pub const SIGNATURE_HEADER: &'static str = "stripe-signature";
}

impl sealed::Sealed for Stripe {}
impl Scheme for Stripe {
    const NAME: &'static str = "Stripe";
    const HAS_TIMESTAMP: bool = true;

    verify_headers_and_body!();
}

/// GitHub webhooks: `X-Hub-Signature-256: sha256=<hex>` over the raw body.
///
/// GitHub signs no timestamp; deduplicate on `X-GitHub-Delivery`, which
/// [`Verified::id`](crate::Verified::id) returns when present. The legacy
/// SHA-1 header is not supported.
#[derive(Debug, Clone, Copy, Default)]
pub struct GitHub;

impl GitHub {
    /// `x-hub-signature-256`
    pub const SIGNATURE_HEADER: &'static str = "x-hub-signature-256";
    /// `x-github-delivery`
    pub const DELIVERY_HEADER: &'static str = "x-github-delivery";
}

impl sealed::Sealed for GitHub {}
impl Scheme for GitHub {
    const NAME: &'static str = "GitHub";
    const HAS_TIMESTAMP: bool = false;

    verify_headers_and_body!();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_webhooks_secret_decoding() {
        let prefixed = Secret::from("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
        let key = StandardWebhooks::key_bytes(&prefixed).unwrap();
        assert_eq!(key.len(), 24);
        assert_eq!(&key[..4], &[0x31, 0xf2, 0x90, 0xf6]);
        // The prefix is optional.
        let bare = Secret::from("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
        let bare = StandardWebhooks::key_bytes(&bare).unwrap();
        assert_eq!(key, bare);
        let invalid = Error::InvalidSecret {
            reason: SecretError::InvalidBase64,
        };
        let empty = Error::InvalidSecret {
            reason: SecretError::Empty,
        };
        assert_eq!(
            StandardWebhooks::key_bytes(&Secret::from("whsec_")),
            Err(empty)
        );
        assert_eq!(StandardWebhooks::key_bytes(&Secret::from("")), Err(empty));
        assert_eq!(
            StandardWebhooks::key_bytes(&Secret::from("whsec_not base64!")),
            Err(invalid)
        );
        // Raw bytes are used as they are.
        let raw = Secret::from(b"raw key");
        let raw = StandardWebhooks::key_bytes(&raw).unwrap();
        assert_eq!(&*raw, b"raw key");
    }

    #[test]
    fn other_schemes_use_text_verbatim() {
        let secret = Secret::from("whsec_test_secret");
        let key = Stripe::key_bytes(&secret).unwrap();
        assert_eq!(&*key, b"whsec_test_secret");
        assert!(Schematic::key_bytes(&Secret::from("")).is_err());
    }
}
