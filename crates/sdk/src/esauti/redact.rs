//! Redaction of what the eSauti client writes to logs; see [`Redactor`].

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use flagwire_transport::auth::Secret;
use serde_json::Value;

const REDACTED: &str = "[redacted]";
const EMAIL: &str = "[email]";
const PHONE: &str = "[phone]";

/// Keys whose values are personal data whatever they look like.
const PII_KEYS: [&str; 6] = [
    "email",
    "phone",
    "mobile",
    "whatsapp",
    "phone_number",
    "mobile_number",
];

/// Redacts secrets (always) and personal data (when enabled) from log text.
///
/// Two tiers:
///
/// * **Secrets, always.** The client's own API key, bearer token and signing secret are
///   replaced wherever they appear, and so are `Bearer <token>`, `sha256=<hex>` and the value
///   after an `X-eSauti-Api-Key` / `X-eSauti-Signature` name. (Headers themselves are never
///   logged with their values: the transport prints them as `[redacted]`.)
/// * **PII, on request** ([`ClientBuilder::redact_pii`](super::ClientBuilder::redact_pii)):
///   e-mail addresses become `[email]` and phone numbers `[phone]`. In JSON, the values of
///   keys named `email`, `phone`, `mobile`, `whatsapp` (or ending in `_email` / `_phone`) are
///   replaced whatever they look like.
///
/// The phone rule is deliberately narrower than "any run of digits", so that Unix timestamps,
/// ids and dates stay readable: a number is a phone when it has 8 to 15 digits and either
/// starts with `+` (`+254712345678`) or is written in at least two groups whose last has three
/// or more digits (`0712 345 678`, `(555) 123-4567`). A bare `0712345678` inside free text is
/// therefore not caught by the text rule; it is caught under a phone key in JSON.
///
/// Dead-letter files are not redacted: they exist to be replayed and must keep the event as
/// it was.
///
/// ```
/// use flagwire::esauti::Redactor;
///
/// let r = Redactor::new(true);
/// assert_eq!(
///     r.redact("mail ann.lee+x@example.co.ke or call +254 712 345 678"),
///     "mail [email] or call [phone]"
/// );
/// // Timestamps, ids and dates are left alone.
/// assert_eq!(r.redact("ts 1700000000 id evt_1700000000_12345 on 2026-01-02"),
///     "ts 1700000000 id evt_1700000000_12345 on 2026-01-02");
/// // Secrets are redacted even without PII redaction.
/// assert_eq!(
///     Redactor::new(false).redact("Authorization: Bearer est_live_abc"),
///     "Authorization: Bearer [redacted]"
/// );
/// ```
#[derive(Clone, Default)]
pub struct Redactor {
    pii: bool,
    secrets: Arc<[Secret]>,
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Redactor")
            .field("pii", &self.pii)
            .field("secrets", &self.secrets.len())
            .finish()
    }
}

impl Redactor {
    /// A redactor; `pii` turns on e-mail and phone redaction.
    pub fn new(pii: bool) -> Self {
        Redactor {
            pii,
            secrets: Arc::from(Vec::new()),
        }
    }

    /// Also replaces these exact values (the client's credentials). Values shorter than four
    /// characters are ignored, so that a toy secret cannot blank out ordinary text.
    pub(crate) fn with_secrets(mut self, secrets: impl IntoIterator<Item = Secret>) -> Self {
        let secrets: Vec<Secret> = secrets
            .into_iter()
            .filter(|s| s.expose().len() >= 4)
            .collect();
        self.secrets = Arc::from(secrets);
        self
    }

    /// Whether personal data is redacted.
    pub fn redacts_pii(&self) -> bool {
        self.pii
    }

    /// `text` with secrets (and, when enabled, e-mails and phones) replaced.
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut out = Cow::Borrowed(text);
        for secret in self.secrets.iter() {
            if out.contains(secret.expose()) {
                out = Cow::Owned(out.replace(secret.expose(), REDACTED));
            }
        }
        apply(&mut out, |s| after_prefix(s, "bearer ", is_token_byte));
        apply(&mut out, |s| {
            after_prefix(s, "sha256=", |b| b.is_ascii_hexdigit())
        });
        apply(&mut out, header_values);
        if self.pii {
            apply(&mut out, emails);
            apply(&mut out, phones);
        }
        out
    }

    /// A copy of `value` with every string redacted as [`redact`](Self::redact) does and, when
    /// PII redaction is on, the values of personal-data keys replaced.
    pub fn redact_json(&self, value: &Value) -> Value {
        match value {
            Value::String(s) => Value::String(self.redact(s).into_owned()),
            Value::Array(items) => {
                Value::Array(items.iter().map(|v| self.redact_json(v)).collect())
            }
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| {
                        let v = if self.pii && is_pii_key(k) && !v.is_null() {
                            Value::String(REDACTED.to_owned())
                        } else {
                            self.redact_json(v)
                        };
                        (k.clone(), v)
                    })
                    .collect(),
            ),
            other => other.clone(),
        }
    }

    /// JSON bytes (e.g. a request body) as redacted text for a log line; bytes that are not
    /// JSON are redacted as text.
    pub fn redact_body(&self, body: &[u8]) -> String {
        match serde_json::from_slice::<Value>(body) {
            Ok(v) => self.redact_json(&v).to_string(),
            Err(_) => self.redact(&String::from_utf8_lossy(body)).into_owned(),
        }
    }
}

fn is_pii_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    PII_KEYS.contains(&key.as_str()) || key.ends_with("_email") || key.ends_with("_phone")
}

/// Runs one redaction pass, replacing `out` only when something matched.
fn apply(out: &mut Cow<'_, str>, pass: impl Fn(&str) -> Option<String>) {
    if let Some(replaced) = pass(out) {
        *out = Cow::Owned(replaced);
    }
}

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/' | b'=')
}

/// Replaces the run of `keep` bytes after each case-insensitive `prefix`.
fn after_prefix(text: &str, prefix: &str, keep: impl Fn(u8) -> bool) -> Option<String> {
    let lower = text.to_ascii_lowercase();
    let bytes = text.as_bytes();
    let mut out = String::new();
    let mut copied = 0;
    let mut from = 0;
    while let Some(pos) = lower[from..].find(prefix) {
        let start = from + pos + prefix.len();
        let mut end = start;
        while end < bytes.len() && keep(bytes[end]) {
            end += 1;
        }
        if end > start {
            out.push_str(&text[copied..start]);
            out.push_str(REDACTED);
            copied = end;
        }
        from = end.max(start);
    }
    (copied > 0).then(|| {
        out.push_str(&text[copied..]);
        out
    })
}

/// The values after `x-esauti-api-key` and `x-esauti-signature` written as `name: value`,
/// `name=value` or `"name":"value"`.
fn header_values(text: &str) -> Option<String> {
    let mut current: Option<String> = None;
    for name in ["x-esauti-api-key", "x-esauti-signature"] {
        let src = current.as_deref().unwrap_or(text);
        let lower = src.to_ascii_lowercase();
        let bytes = src.as_bytes();
        let mut out = String::new();
        let mut copied = 0;
        let mut from = 0;
        while let Some(pos) = lower[from..].find(name) {
            let mut i = from + pos + name.len();
            // Skip the separator: quotes, spaces, `:` or `=`.
            while i < bytes.len() && matches!(bytes[i], b'"' | b'\'' | b' ' | b':' | b'=') {
                i += 1;
            }
            let start = i;
            while i < bytes.len() && !matches!(bytes[i], b'"' | b'\'' | b',' | b'}' | b' ' | b'\n')
            {
                i += 1;
            }
            if i > start && !src[start..i].contains(REDACTED) {
                out.push_str(&src[copied..start]);
                out.push_str(REDACTED);
                copied = i;
            }
            from = i.max(from + pos + name.len());
        }
        if copied > 0 {
            out.push_str(&src[copied..]);
            current = Some(out);
        }
    }
    current
}

fn is_local_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'%' | b'+' | b'-')
}

fn is_domain_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-')
}

/// `local@domain.tld` with a TLD of two or more letters.
fn emails(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = String::new();
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'@' {
            i += 1;
            continue;
        }
        let mut start = i;
        while start > copied && is_local_byte(bytes[start - 1]) {
            start -= 1;
        }
        let mut end = i + 1;
        while end < bytes.len() && is_domain_byte(bytes[end]) {
            end += 1;
        }
        while end > i + 1 && matches!(bytes[end - 1], b'.' | b'-') {
            end -= 1;
        }
        let domain = &text[i + 1..end];
        let tld_ok = domain.rsplit_once('.').is_some_and(|(host, tld)| {
            !host.is_empty() && tld.len() >= 2 && tld.bytes().all(|b| b.is_ascii_alphabetic())
        });
        if start < i && tld_ok {
            out.push_str(&text[copied..start]);
            out.push_str(EMAIL);
            copied = end;
            i = end;
        } else {
            i += 1;
        }
    }
    (copied > 0).then(|| {
        out.push_str(&text[copied..]);
        out
    })
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Phone numbers by the rule in the module docs.
fn phones(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = String::new();
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        // Right after a redacted number counts as a boundary, so that two numbers written
        // back to back are both caught in one pass.
        let boundary = i == 0
            || (copied > 0 && i == copied)
            || !(is_word_byte(bytes[i - 1]) || matches!(bytes[i - 1], b'.' | b'-'));
        let starts = (b == b'+' || b == b'(' || b.is_ascii_digit()) && boundary;
        if !starts {
            i += 1;
            continue;
        }
        match phone_at(bytes, i) {
            Some(end) => {
                out.push_str(&text[copied..i]);
                out.push_str(PHONE);
                copied = end;
                i = end;
            }
            None => {
                // Skip the whole run of digits so a number is judged once, from its start.
                i += 1;
                while i < bytes.len() && bytes[i].is_ascii_digit() {
                    i += 1;
                }
            }
        }
    }
    (copied > 0).then(|| {
        out.push_str(&text[copied..]);
        out
    })
}

/// The end of a phone number starting at `start`, if one does.
fn phone_at(bytes: &[u8], start: usize) -> Option<usize> {
    let mut i = start;
    let plus = bytes[i] == b'+';
    if plus {
        i += 1;
    }
    let (mut digits, mut groups, mut group_len, mut last_group) = (0usize, 0usize, 0usize, 0usize);
    let mut end = i;
    while i < bytes.len() {
        let b = bytes[i];
        if b.is_ascii_digit() {
            digits += 1;
            group_len += 1;
            i += 1;
            end = i;
        } else if matches!(b, b' ' | b'-' | b'(' | b')') {
            if group_len > 0 {
                groups += 1;
                last_group = group_len;
                group_len = 0;
            }
            // A separator only continues the number if a digit or `(` follows soon.
            let next = bytes.get(i + 1).copied();
            if b == b' ' && next == Some(b' ') {
                break;
            }
            i += 1;
        } else {
            break;
        }
    }
    if group_len > 0 {
        groups += 1;
        last_group = group_len;
    }
    if end < bytes.len() && is_word_byte(bytes[end]) {
        return None;
    }
    let plausible = (8..=15).contains(&digits) && (plus || (groups >= 2 && last_group >= 3));
    plausible.then_some(end)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secrets_are_always_redacted() {
        let r = Redactor::new(false).with_secrets([Secret::new("esk_live_123456")]);
        assert_eq!(r.redact("key esk_live_123456 used"), "key [redacted] used");
        assert_eq!(
            r.redact("X-eSauti-Signature: sha256=abcdef0123"),
            "X-eSauti-Signature: sha256=[redacted]"
        );
        assert_eq!(
            r.redact(r#"{"x-esauti-api-key":"whatever","a":1}"#),
            r#"{"x-esauti-api-key":"[redacted]","a":1}"#
        );
        assert_eq!(
            r.redact("x-esauti-api-key=k1 rest"),
            "x-esauti-api-key=[redacted] rest"
        );
        assert_eq!(
            r.redact("authorization: bearer t.o-k_en"),
            "authorization: bearer [redacted]"
        );
        // Without PII redaction, personal data passes.
        assert_eq!(r.redact("ann@example.com"), "ann@example.com");
        assert!(!format!("{r:?}").contains("esk_live"));
    }

    #[test]
    fn emails() {
        let r = Redactor::new(true);
        for (input, want) in [
            ("a@b.co", "[email]"),
            ("<ann.lee+tag@mail.example.org>.", "<[email]>."),
            ("x a@b.c y", "x a@b.c y"),
            ("@handle and me@", "@handle and me@"),
            ("two: a@x.io,b@y.io", "two: [email],[email]"),
        ] {
            assert_eq!(r.redact(input), want, "{input}");
        }
    }

    #[test]
    fn phones_but_not_timestamps_ids_or_dates() {
        let r = Redactor::new(true);
        for (input, want) in [
            ("+254712345678", "[phone]"),
            ("call +1 (555) 123-4567 now", "call [phone] now"),
            ("0712 345 678", "[phone]"),
            ("0712-345-678", "[phone]"),
            ("tel:+442079460958", "tel:[phone]"),
            ("+254700000000+254700000001", "[phone][phone]"),
            ("1700000000", "1700000000"),
            ("evt_1700000000_12345", "evt_1700000000_12345"),
            ("2026-01-02T03:04:05Z", "2026-01-02T03:04:05Z"),
            ("on 2026-01-02 at", "on 2026-01-02 at"),
            (
                "019aa8f2-7c41-7d3e-9a0b-3f6c2d1e4b5a",
                "019aa8f2-7c41-7d3e-9a0b-3f6c2d1e4b5a",
            ),
            ("ip 203.0.113.9", "ip 203.0.113.9"),
            ("value 42", "value 42"),
        ] {
            assert_eq!(r.redact(input), want, "{input}");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        /// Any text: no panic (multi-byte characters next to matches included), and redacting
        /// twice changes nothing more.
        #[test]
        fn any_text_is_redacted_without_panicking(
            text in "(\\PC|[0-9+@. ()-]| a@b\\.io |\\+2547[0-9]{8}|Bearer x){0,40}"
        ) {
            let r = Redactor::new(true).with_secrets([Secret::new("s3cr3t")]);
            let once = r.redact(&text).into_owned();
            proptest::prop_assert_eq!(r.redact(&once).into_owned(), once.clone());
            proptest::prop_assert!(!once.contains("a@b.io"));
        }
    }

    #[test]
    fn json_keys_and_strings() {
        let r = Redactor::new(true);
        let v = json!({
            "customer": {"id": "cus_1", "email": "ann@example.com", "phone": "0712345678",
                         "work_email": 7, "note": "reach me at bob@example.net"},
            "properties": {"value": 0, "items": ["+254712345678"]}
        });
        assert_eq!(
            r.redact_json(&v),
            json!({
                "customer": {"id": "cus_1", "email": "[redacted]", "phone": "[redacted]",
                             "work_email": "[redacted]", "note": "reach me at [email]"},
                "properties": {"value": 0, "items": ["[phone]"]}
            })
        );
        // Off: the document is unchanged.
        assert_eq!(Redactor::new(false).redact_json(&v), v);
        assert_eq!(r.redact_body(b"not json a@b.io"), "not json [email]");
    }
}
