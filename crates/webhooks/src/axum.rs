//! An axum extractor that verifies a webhook delivery before the handler
//! runs (feature `axum`).
//!
//! Take a [`VerifiedWebhook<S>`] as the handler's last argument (it reads
//! the body). It finds a [`Verifier<S>`] in the router state through
//! [`FromRef`], reads the body, verifies the request and hands the handler
//! the verified bytes with what verification established. A handler that
//! runs has an authentic delivery; everything else is answered before it:
//!
//! * `400 Bad Request`, with an empty body, when the delivery does not
//!   verify or the body cannot be read. The reason is logged at debug
//!   level through `tracing` (target `flagwire_webhooks::axum`), never sent
//!   to the client.
//! * `413 Payload Too Large` when the body is over the route's limit,
//!   which is axum's [`DefaultBodyLimit`](::axum::extract::DefaultBodyLimit)
//!   (2 MB unless the router sets another).
//!
//! To see the reason in the handler, take
//! `Result<VerifiedWebhook<S>, WebhookRejection>` instead.
//!
//! ```no_run
//! use axum::{Router, http::StatusCode, routing::post};
//! use flagwire_webhooks::{Schematic, SchematicVerifier, axum::VerifiedWebhook};
//!
//! async fn schematic_webhook(webhook: VerifiedWebhook<Schematic>) -> StatusCode {
//!     println!("verified: {}", String::from_utf8_lossy(webhook.body()));
//!     StatusCode::OK
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let verifier = SchematicVerifier::new(std::env::var("SCHEMATIC_WEBHOOK_SECRET")?)?;
//! let app = Router::new()
//!     .route("/webhooks/schematic", post(schematic_webhook))
//!     .with_state(verifier);
//! # let _: Router = app;
//! # Ok(())
//! # }
//! ```
//!
//! With a state of your own, implement (or derive, with axum's `macros`
//! feature) `FromRef<YourState>` for each verifier it holds. A verifier
//! clone shares its keys, so taking it from the state costs two reference
//! counts.
//!
//! eSauti signs the request path: inside a nested router the extractor
//! uses the path the request arrived with
//! ([`OriginalUri`]), not the one axum
//! stripped for the nested router.

use core::fmt;
use core::marker::PhantomData;

use ::axum::extract::{FromRef, FromRequest, OriginalUri, Request};
use ::axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::StatusCode;

use crate::error::Error;
use crate::scheme::Scheme;
use crate::verifier::{VerifiedDelivery, Verifier};

/// A webhook delivery that passed verification with scheme `S`: the body
/// exactly as received, and what verification established.
///
/// An axum extractor; see the [module documentation](self).
pub struct VerifiedWebhook<S: Scheme> {
    body: Bytes,
    delivery: VerifiedDelivery,
    scheme: PhantomData<fn() -> S>,
}

impl<S: Scheme> VerifiedWebhook<S> {
    /// The verified body, byte for byte as received. Parse it now, not
    /// before.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// The verified body, taken out.
    pub fn into_body(self) -> Bytes {
        self.body
    }

    /// The signed timestamp in Unix seconds, for schemes that have one.
    pub fn timestamp(&self) -> Option<i64> {
        self.delivery.timestamp()
    }

    /// The delivery id, for schemes that send one (to drop duplicates).
    pub fn id(&self) -> Option<&str> {
        self.delivery.id()
    }

    /// Everything verification established.
    pub fn delivery(&self) -> &VerifiedDelivery {
        &self.delivery
    }

    /// The body and the verification facts, taken apart.
    pub fn into_parts(self) -> (Bytes, VerifiedDelivery) {
        (self.body, self.delivery)
    }
}

impl<S: Scheme> Clone for VerifiedWebhook<S> {
    fn clone(&self) -> Self {
        VerifiedWebhook {
            body: self.body.clone(),
            delivery: self.delivery.clone(),
            scheme: PhantomData,
        }
    }
}

impl<S: Scheme> fmt::Debug for VerifiedWebhook<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The body may be large and is the sender's data: its length only.
        f.debug_struct("VerifiedWebhook")
            .field("scheme", &S::NAME)
            .field("body_len", &self.body.len())
            .field("delivery", &self.delivery)
            .finish()
    }
}

impl<S, St> FromRequest<St> for VerifiedWebhook<S>
where
    S: Scheme,
    Verifier<S>: FromRef<St>,
    St: Send + Sync,
{
    type Rejection = WebhookRejection;

    async fn from_request(request: Request, state: &St) -> Result<Self, Self::Rejection> {
        let verifier = Verifier::<S>::from_ref(state);
        let (mut parts, body) = request.into_parts();
        if let Some(OriginalUri(uri)) = parts.extensions.remove::<OriginalUri>() {
            parts.uri = uri;
        }
        // The body is read by axum's own extractor, with the extensions
        // where the router keeps its body limit.
        let mut body_request = Request::new(body);
        *body_request.extensions_mut() = core::mem::take(&mut parts.extensions);
        let body = Bytes::from_request(body_request, state)
            .await
            .map_err(|rejection| {
                let refused = if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    WebhookRejection::BodyTooLarge
                } else {
                    WebhookRejection::BodyUnreadable
                };
                tracing::debug!(
                    scheme = S::NAME,
                    reason = %rejection.body_text(),
                    "webhook delivery rejected: {refused}"
                );
                refused
            })?;
        match verifier.verify_parts(&parts, &body) {
            Ok(verified) => Ok(VerifiedWebhook {
                delivery: verified.to_delivery(),
                body,
                scheme: PhantomData,
            }),
            Err(error) => {
                tracing::debug!(scheme = S::NAME, %error, "webhook delivery rejected");
                Err(WebhookRejection::Invalid(error))
            }
        }
    }
}

/// Why [`VerifiedWebhook`] turned a request away.
///
/// As a response it is only a status code with an empty body, whatever the
/// reason: the reason is for the server's logs (it is logged at debug
/// level), not for whoever sent the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum WebhookRejection {
    /// The delivery did not verify (`400 Bad Request`).
    Invalid(Error),
    /// The body is over the route's body limit (`413 Payload Too Large`).
    BodyTooLarge,
    /// The body could not be read, for example because the connection
    /// broke (`400 Bad Request`).
    BodyUnreadable,
}

impl WebhookRejection {
    /// The status code of the response.
    pub fn status(&self) -> StatusCode {
        match self {
            WebhookRejection::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            WebhookRejection::Invalid(_) | WebhookRejection::BodyUnreadable => {
                StatusCode::BAD_REQUEST
            }
        }
    }

    /// The verification error, when the body was read but did not verify.
    pub fn error(&self) -> Option<Error> {
        match self {
            WebhookRejection::Invalid(error) => Some(*error),
            _ => None,
        }
    }
}

impl fmt::Display for WebhookRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WebhookRejection::Invalid(error) => write!(f, "webhook did not verify: {error}"),
            WebhookRejection::BodyTooLarge => f.write_str("webhook body is over the body limit"),
            WebhookRejection::BodyUnreadable => f.write_str("webhook body could not be read"),
        }
    }
}

impl std::error::Error for WebhookRejection {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            WebhookRejection::Invalid(error) => Some(error),
            _ => None,
        }
    }
}

impl IntoResponse for WebhookRejection {
    fn into_response(self) -> Response {
        self.status().into_response()
    }
}
