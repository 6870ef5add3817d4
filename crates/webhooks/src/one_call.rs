//! One call per scheme for the manual case: verify a delivery from the raw
//! header values, without building a header container or keeping a
//! verifier.
//!
//! Each `verify_signature` builds a verifier for `secret` with the default
//! settings (a 300 s replay window against the system clock), verifies
//! once and drops it. That derives the HMAC key on every call (about a
//! tenth of a microsecond, and a few small allocations; the verification
//! itself allocates nothing): a server that receives
//! many deliveries should build a [`Verifier`](crate::Verifier) once and
//! share it, which also allows several secrets, another tolerance, a clock
//! and `verify_at`.
//!
//! The values are what the sender put in the headers, in any case, with
//! surrounding spaces allowed. An empty value is reported as the missing
//! header it came from ([`Error::MissingHeader`]), so the errors are the
//! same as those of the verifiers.

use crate::error::Error;
use crate::scheme::{Esauti, Flagsmith, GitHub, Schematic, StandardWebhooks, Stripe};
use crate::verifier::{Verified, Verifier};

pub mod schematic {
    //! Schematic webhooks in one call.
    //!
    //! The Schematic Python SDK's `verify_signature(body, signature,
    //! timestamp, secret)`, with the same arguments. Unlike the SDK, it also
    //! refuses a timestamp more than 300 s from the clock (see the
    //! [crate documentation](crate#timestamps)).
    //!
    //! ```
    //! use flagwire_webhooks::schematic::verify_signature;
    //!
    //! fn verify_webhook_manually(body: &str, signature: &str, timestamp: &str, secret: &str) -> bool {
    //!     verify_signature(body, signature, timestamp, secret)
    //!         .inspect_err(|e| eprintln!("Webhook verification failed: {e}"))
    //!         .is_ok()
    //! }
    //! # use flagwire_webhooks::{Schematic, Signer, unix_now};
    //! # let body = r#"{"action":"company.updated"}"#;
    //! # let sent = Signer::<Schematic>::new("whsec")?.sign(unix_now(), body.as_bytes());
    //! # let (signature, timestamp) = (sent.get(Schematic::SIGNATURE_HEADER).unwrap(), sent.get(Schematic::TIMESTAMP_HEADER).unwrap());
    //! # assert!(verify_webhook_manually(body, signature, timestamp, "whsec"));
    //! # assert!(!verify_webhook_manually("{}", signature, timestamp, "whsec"));
    //! # Ok::<(), flagwire_webhooks::Error>(())
    //! ```

    use super::*;

    /// Verifies a Schematic delivery: `signature` is the value of
    /// `X-Schematic-Webhook-Signature`, `timestamp` that of
    /// `X-Schematic-Webhook-Timestamp`, and `body` the raw body.
    ///
    /// ```
    /// use flagwire_webhooks::schematic;
    /// # use flagwire_webhooks::{Schematic, Signer, unix_now};
    /// # let body = br#"{"action":"company.updated"}"#;
    /// # let sent = Signer::<Schematic>::new("secret")?.sign(unix_now(), body);
    /// # let signature = sent.get(Schematic::SIGNATURE_HEADER).unwrap();
    /// # let timestamp = sent.get(Schematic::TIMESTAMP_HEADER).unwrap();
    ///
    /// let verified = schematic::verify_signature(body, signature, timestamp, "secret")?;
    /// assert!(verified.timestamp().is_some());
    /// # Ok::<(), flagwire_webhooks::Error>(())
    /// ```
    pub fn verify_signature(
        body: impl AsRef<[u8]>,
        signature: &str,
        timestamp: &str,
        secret: &str,
    ) -> Result<Verified<'static>, Error> {
        let headers = [
            (Schematic::SIGNATURE_HEADER, signature),
            (Schematic::TIMESTAMP_HEADER, timestamp),
        ];
        let verified = Verifier::<Schematic>::new(secret)?.verify(&headers, body.as_ref())?;
        Ok(verified.with_id(None))
    }
}

pub mod flagsmith {
    //! Flagsmith webhooks in one call.
    //!
    //! Flagsmith documents the check as an HMAC-SHA256 of the raw body,
    //! keyed with the secret, compared with `X-Flagsmith-Signature`:
    //!
    //! ```
    //! use flagwire_webhooks::flagsmith;
    //! # let request_body = br#"{"data": {"changed_by": "user@domain.com", "new_state": null, "timestamp": "2021-06-18T07:50:26.595298Z"}, "event_type": "FLAG_DELETED"}"#;
    //! # let headers = std::collections::HashMap::from([("x-flagsmith-signature", "8746d151aa28e283bec7e11fbf79a1d7f4a596638df781e05b9f378a80467e99")]);
    //!
    //! let secret = "my shared secret";
    //! let received_signature = headers["x-flagsmith-signature"];
    //! assert!(flagsmith::verify_signature(request_body, received_signature, secret).is_ok());
    //! ```

    use super::*;

    /// Verifies a Flagsmith delivery: `signature` is the value of
    /// `X-Flagsmith-Signature` and `body` the raw body. Flagsmith signs no
    /// timestamp, so there is no replay window: keep handlers idempotent.
    pub fn verify_signature(
        body: impl AsRef<[u8]>,
        signature: &str,
        secret: &str,
    ) -> Result<Verified<'static>, Error> {
        let headers = [(Flagsmith::SIGNATURE_HEADER, signature)];
        let verified = Verifier::<Flagsmith>::new(secret)?.verify(&headers, body.as_ref())?;
        Ok(verified.with_id(None))
    }
}

pub mod github {
    //! GitHub webhooks in one call.

    use super::*;

    /// Verifies a GitHub delivery: `signature` is the value of
    /// `X-Hub-Signature-256` (`sha256=` and 64 hex digits) and `body` the
    /// raw body. GitHub signs no timestamp; deduplicate on
    /// `X-GitHub-Delivery`.
    ///
    /// ```
    /// use flagwire_webhooks::github;
    ///
    /// let signature = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
    /// github::verify_signature("Hello, World!", signature, "It's a Secret to Everybody")?;
    /// # Ok::<(), flagwire_webhooks::Error>(())
    /// ```
    pub fn verify_signature(
        body: impl AsRef<[u8]>,
        signature: &str,
        secret: &str,
    ) -> Result<Verified<'static>, Error> {
        let headers = [(GitHub::SIGNATURE_HEADER, signature)];
        let verified = Verifier::<GitHub>::new(secret)?.verify(&headers, body.as_ref())?;
        Ok(verified.with_id(None))
    }
}

pub mod stripe {
    //! Stripe webhooks in one call.

    use super::*;

    /// Verifies a Stripe delivery: `signature` is the whole value of
    /// `Stripe-Signature` (`t=…,v1=…`), `body` the raw body and `secret`
    /// the endpoint secret, `whsec_` included.
    ///
    /// ```
    /// use flagwire_webhooks::stripe;
    /// # use flagwire_webhooks::{Signer, Stripe, unix_now};
    /// # let payload = br#"{"id":"evt_test","object":"event"}"#;
    /// # let sent = Signer::<Stripe>::new("whsec_test_secret")?.sign(unix_now(), payload);
    /// # let sig_header = sent.get("stripe-signature").unwrap();
    ///
    /// let verified = stripe::verify_signature(payload, sig_header, "whsec_test_secret")?;
    /// assert!(verified.timestamp().is_some());
    /// # Ok::<(), flagwire_webhooks::Error>(())
    /// ```
    pub fn verify_signature(
        body: impl AsRef<[u8]>,
        signature: &str,
        secret: &str,
    ) -> Result<Verified<'static>, Error> {
        let headers = [(Stripe::SIGNATURE_HEADER, signature)];
        let verified = Verifier::<Stripe>::new(secret)?.verify(&headers, body.as_ref())?;
        Ok(verified.with_id(None))
    }
}

pub mod standard_webhooks {
    //! Standard Webhooks (and Svix) deliveries in one call.

    use super::*;

    /// Verifies a Standard Webhooks delivery from the values of
    /// `webhook-id`, `webhook-timestamp` and `webhook-signature` (or their
    /// `svix-*` twins). `secret` is written `whsec_<base64>` (the prefix is
    /// optional). The returned [`Verified::id`] is `id`, for deduplication.
    ///
    /// ```
    /// use flagwire_webhooks::standard_webhooks;
    /// # use flagwire_webhooks::{Signer, StandardWebhooks, unix_now};
    /// # let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    /// # let body = br#"{"test": 2432232314}"#;
    /// # let sent = Signer::<StandardWebhooks>::new(secret)?.sign("msg_1", unix_now(), body);
    /// # let timestamp = sent.get("webhook-timestamp").unwrap();
    /// # let signature = sent.get("webhook-signature").unwrap();
    ///
    /// let verified = standard_webhooks::verify_signature(body, "msg_1", timestamp, signature, secret)?;
    /// assert_eq!(verified.id(), Some("msg_1"));
    /// # Ok::<(), flagwire_webhooks::Error>(())
    /// ```
    pub fn verify_signature<'a>(
        body: impl AsRef<[u8]>,
        id: &'a str,
        timestamp: &str,
        signature: &str,
        secret: &str,
    ) -> Result<Verified<'a>, Error> {
        let headers = [
            (StandardWebhooks::SIGNATURE_HEADER, signature),
            (StandardWebhooks::ID_HEADER, id),
            (StandardWebhooks::TIMESTAMP_HEADER, timestamp),
        ];
        let verified =
            Verifier::<StandardWebhooks>::new(secret)?.verify(&headers, body.as_ref())?;
        // The verifier hands back the id trimmed as a header value is.
        Ok(verified.with_id(Some(id.trim_matches([' ', '\t']))))
    }
}

pub mod esauti {
    //! eSauti signed requests in one call.
    //!
    //! The counterpart of the eSauti SDK's `HmacAuth.verify`; unlike it, the
    //! signature must carry its `sha256=` prefix and the timestamp must be
    //! within 300 s of the clock.

    use super::*;

    /// Verifies an eSauti signed request: `method` (any case) and `path`
    /// (a query string is ignored, as eSauti does not sign it) of the
    /// request, its raw body, and the values of `X-eSauti-Signature` and
    /// `X-eSauti-Timestamp`.
    ///
    /// ```
    /// use flagwire_webhooks::esauti;
    /// # use flagwire_webhooks::{Esauti, Signer, unix_now};
    /// # let body = br#"{"type":"order.created"}"#;
    /// # let sent = Signer::<Esauti>::new("super-secret")?.sign("POST", "/v1/inbound/event", unix_now(), body);
    /// # let signature = sent.get("x-esauti-signature").unwrap();
    /// # let timestamp = sent.get("x-esauti-timestamp").unwrap();
    ///
    /// esauti::verify_signature("POST", "/v1/inbound/event", body, signature, timestamp, "super-secret")?;
    /// # Ok::<(), flagwire_webhooks::Error>(())
    /// ```
    pub fn verify_signature(
        method: &str,
        path: &str,
        body: impl AsRef<[u8]>,
        signature: &str,
        timestamp: &str,
        secret: &str,
    ) -> Result<Verified<'static>, Error> {
        let headers = [
            (Esauti::SIGNATURE_HEADER, signature),
            (Esauti::TIMESTAMP_HEADER, timestamp),
        ];
        let verified =
            Verifier::<Esauti>::new(secret)?.verify(method, path, &headers, body.as_ref())?;
        Ok(verified.with_id(None))
    }
}
