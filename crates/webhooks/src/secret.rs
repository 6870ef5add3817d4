//! Webhook secrets.

use core::fmt;

/// A webhook signing secret, as configured with the sender.
///
/// A secret remembers whether it was given as text or as raw bytes, because
/// Standard Webhooks secrets are written as text (`whsec_` followed by
/// base64) but keyed with the *decoded* bytes:
///
/// * text (`&str`, `String`): used as its UTF-8 bytes by every scheme except
///   [`StandardWebhooks`](crate::StandardWebhooks), which strips an optional
///   `whsec_` prefix and base64-decodes the rest;
/// * bytes (`Vec<u8>`, `&[u8]`, [`Secret::from_bytes`]): the HMAC key itself,
///   used unchanged by every scheme.
///
/// Stripe secrets also start with `whsec_`, yet Stripe keys the HMAC with the
/// whole string; the [`Stripe`](crate::Stripe) scheme does exactly that.
///
/// `Debug` never shows the value, and the buffer is overwritten with zeros
/// when the secret is dropped (on a best-effort basis: copies made by the
/// caller or by the crypto library are out of reach).
///
/// ```
/// use flagwire_webhooks::Secret;
///
/// let secret = Secret::from("my shared secret");
/// assert_eq!(format!("{secret:?}"), "Secret(<redacted>)");
/// ```
#[derive(Clone)]
pub struct Secret {
    bytes: Vec<u8>,
    text: bool,
}

impl Secret {
    /// A secret given as raw key bytes, used unchanged by every scheme.
    pub fn from_bytes(bytes: impl Into<Vec<u8>>) -> Self {
        Secret {
            bytes: bytes.into(),
            text: false,
        }
    }

    /// A secret given as text, as shown in a sender's dashboard.
    pub fn from_text(text: impl Into<String>) -> Self {
        Secret {
            bytes: text.into().into_bytes(),
            text: true,
        }
    }

    /// Whether the secret was given as text.
    pub fn is_text(&self) -> bool {
        self.text
    }

    /// The secret's bytes as given (for text, its UTF-8 encoding).
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        self.bytes.fill(0);
        core::hint::black_box(&mut self.bytes);
    }
}

impl From<&str> for Secret {
    fn from(text: &str) -> Self {
        Secret::from_text(text)
    }
}

impl From<String> for Secret {
    fn from(text: String) -> Self {
        Secret::from_text(text)
    }
}

impl From<&String> for Secret {
    fn from(text: &String) -> Self {
        Secret::from_text(text.as_str())
    }
}

impl From<Vec<u8>> for Secret {
    fn from(bytes: Vec<u8>) -> Self {
        Secret::from_bytes(bytes)
    }
}

impl From<&[u8]> for Secret {
    fn from(bytes: &[u8]) -> Self {
        Secret::from_bytes(bytes)
    }
}

impl<const N: usize> From<&[u8; N]> for Secret {
    fn from(bytes: &[u8; N]) -> Self {
        Secret::from_bytes(&bytes[..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let s = Secret::from("hunter2-very-secret");
        let shown = format!("{s:?} {:#?}", s.clone());
        assert!(!shown.contains("hunter2"));
        assert!(s.is_text());
        assert!(!Secret::from(&b"raw"[..]).is_text());
        assert_eq!(Secret::from(b"raw").as_bytes(), b"raw");
    }
}
