//! Building verifiers and checking deliveries.

use core::fmt;
use core::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use ring::hmac;

use crate::clock::{Clock, coarse_unix_now};
use crate::encoding::{
    Base64Tag, DecodeError, TAG_LEN, decode_hex_tag, find_byte, find_either, split_byte, tags_equal,
};
use crate::error::{Error, Malformed};
use crate::headers::{Found, Headers};
use crate::scheme::{Esauti, Flagsmith, GitHub, Schematic, Scheme, StandardWebhooks, Stripe};
use crate::secret::Secret;

/// The default timestamp tolerance: 300 seconds in either direction.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);

/// Checks deliveries signed with scheme `S` against one or more secrets.
///
/// Build it once (keys are derived and the HMAC state is precomputed here)
/// and share it: it is `Send + Sync`, and a clone shares the keys (two
/// reference counts, no copy). Verification never allocates, never copies
/// the body and accepts any bytes as body.
///
/// Every scheme has its own `verify` method, because the inputs differ:
/// eSauti also signs the request method and path. See
/// [`Verifier::<Schematic>::verify`](Verifier#method.verify) and the
/// aliases [`SchematicVerifier`](crate::SchematicVerifier) and friends.
///
/// Several secrets can be given for rotation; a delivery passes when any of
/// them matches, and [`Verified::secret_index`] tells which.
pub struct Verifier<S: Scheme> {
    keys: Arc<[hmac::Key]>,
    tolerance: Option<u64>,
    /// `None` for the system clock, called directly rather than through
    /// the trait object.
    clock: Option<Arc<dyn Clock>>,
    scheme: PhantomData<fn() -> S>,
}

impl<S: Scheme> Clone for Verifier<S> {
    fn clone(&self) -> Self {
        Verifier {
            keys: self.keys.clone(),
            tolerance: self.tolerance,
            clock: self.clock.clone(),
            scheme: PhantomData,
        }
    }
}

impl<S: Scheme> fmt::Debug for Verifier<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Verifier");
        d.field("scheme", &S::NAME)
            .field("secrets", &self.keys.len());
        if S::HAS_TIMESTAMP {
            d.field("tolerance_secs", &self.tolerance);
        }
        d.finish_non_exhaustive()
    }
}

/// Configures a [`Verifier`]; see [`Verifier::builder`].
#[must_use]
pub struct VerifierBuilder<S: Scheme> {
    secrets: Vec<Secret>,
    tolerance: Option<u64>,
    clock: Option<Arc<dyn Clock>>,
    scheme: PhantomData<fn() -> S>,
}

impl<S: Scheme> fmt::Debug for VerifierBuilder<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifierBuilder")
            .field("scheme", &S::NAME)
            .field("secrets", &self.secrets.len())
            .field("tolerance_secs", &self.tolerance)
            .finish_non_exhaustive()
    }
}

impl<S: Scheme> VerifierBuilder<S> {
    /// Adds a secret. Secrets are tried in the order they were added.
    pub fn secret(mut self, secret: impl Into<Secret>) -> Self {
        self.secrets.push(secret.into());
        self
    }

    /// Adds several secrets, for example the current and the previous one
    /// while a secret is being rotated.
    pub fn secrets<I>(mut self, secrets: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<Secret>,
    {
        self.secrets.extend(secrets.into_iter().map(Into::into));
        self
    }

    /// How far a signed timestamp may be from the clock, in either direction
    /// (whole seconds; fractions are dropped). Defaults to
    /// [`DEFAULT_TOLERANCE`]. Has no effect on schemes without a timestamp.
    pub fn tolerance(mut self, tolerance: Duration) -> Self {
        self.tolerance = Some(tolerance.as_secs());
        self
    }

    /// Accepts signed timestamps of any age.
    ///
    /// The timestamp is still parsed and is still part of the signed
    /// message, but a delivery captured once can then be replayed forever.
    /// Use it to reprocess old deliveries, or to match the official
    /// Schematic SDKs, which never check the age.
    pub fn ignore_timestamp_age(mut self) -> Self {
        self.tolerance = None;
        self
    }

    /// Uses `clock` instead of the system clock for the tolerance check.
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Some(Arc::new(clock));
        self
    }

    /// Derives the keys and builds the verifier.
    ///
    /// Fails with [`Error::NoSecrets`] without secrets, and with
    /// [`Error::InvalidSecret`] for an empty secret or a Standard Webhooks
    /// secret that is not base64.
    pub fn build(self) -> Result<Verifier<S>, Error> {
        if self.secrets.is_empty() {
            return Err(Error::NoSecrets);
        }
        let keys = self
            .secrets
            .iter()
            .map(|secret| S::key_bytes(secret).map(|key| hmac::Key::new(hmac::HMAC_SHA256, &key)))
            .collect::<Result<Arc<[_]>, _>>()?;
        Ok(Verifier {
            keys,
            tolerance: self.tolerance,
            clock: self.clock,
            scheme: PhantomData,
        })
    }
}

/// What a successful verification established.
///
/// The id borrows from the request headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified<'h> {
    timestamp: Option<i64>,
    id: Option<&'h str>,
    secret_index: usize,
}

impl<'h> Verified<'h> {
    /// The signed timestamp in Unix seconds, for schemes that have one.
    pub fn timestamp(&self) -> Option<i64> {
        self.timestamp
    }

    /// The delivery id, for schemes that send one (`webhook-id`,
    /// `X-GitHub-Delivery`). It stays the same across retries, so use it to
    /// drop duplicates: the tolerance window alone does not stop a replay
    /// inside the window.
    pub fn id(&self) -> Option<&'h str> {
        self.id
    }

    /// The position, in the order they were added, of the secret that
    /// matched.
    pub fn secret_index(&self) -> usize {
        self.secret_index
    }

    /// The same facts, owned, to keep once the request headers are gone.
    pub fn to_delivery(&self) -> VerifiedDelivery {
        VerifiedDelivery::from(*self)
    }

    /// The same facts with the id borrowed from elsewhere (the one-call
    /// helpers, whose headers are a local array, hand back the caller's).
    pub(crate) fn with_id<'a>(self, id: Option<&'a str>) -> Verified<'a> {
        Verified {
            timestamp: self.timestamp,
            id,
            secret_index: self.secret_index,
        }
    }
}

/// What a successful verification established, owned rather than borrowed
/// from the request headers.
///
/// This is what the framework adapters hand on: the `tower` layer puts it
/// in the request's extensions, and the `axum` extractor carries it. Build
/// one from a [`Verified`] with [`Verified::to_delivery`] (or `From`) to
/// keep the facts past the request, for example to queue the delivery.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct VerifiedDelivery {
    timestamp: Option<i64>,
    id: Option<String>,
    secret_index: usize,
}

impl VerifiedDelivery {
    /// The signed timestamp in Unix seconds, for schemes that have one.
    pub fn timestamp(&self) -> Option<i64> {
        self.timestamp
    }

    /// The delivery id, for schemes that send one; see [`Verified::id`].
    pub fn id(&self) -> Option<&str> {
        self.id.as_deref()
    }

    /// The position of the secret that matched; see
    /// [`Verified::secret_index`].
    pub fn secret_index(&self) -> usize {
        self.secret_index
    }
}

impl From<Verified<'_>> for VerifiedDelivery {
    fn from(verified: Verified<'_>) -> Self {
        VerifiedDelivery {
            timestamp: verified.timestamp,
            id: verified.id.map(str::to_owned),
            secret_index: verified.secret_index,
        }
    }
}

impl<S: Scheme> Verifier<S> {
    /// Starts configuring a verifier.
    ///
    /// ```
    /// use std::time::Duration;
    /// use flagwire_webhooks::{Schematic, Verifier};
    ///
    /// let verifier = Verifier::<Schematic>::builder()
    ///     .secret("new-secret")
    ///     .secret("old-secret")
    ///     .tolerance(Duration::from_secs(600))
    ///     .build()?;
    /// # Ok::<(), flagwire_webhooks::Error>(())
    /// ```
    pub fn builder() -> VerifierBuilder<S> {
        VerifierBuilder {
            secrets: Vec::new(),
            tolerance: Some(DEFAULT_TOLERANCE.as_secs()),
            clock: None,
            scheme: PhantomData,
        }
    }

    /// A verifier for one secret with the default settings.
    pub fn new(secret: impl Into<Secret>) -> Result<Self, Error> {
        Self::builder().secret(secret).build()
    }

    /// The configured tolerance in seconds, or `None` when the age of
    /// timestamps is ignored.
    pub fn tolerance_secs(&self) -> Option<u64> {
        self.tolerance
    }

    /// Verifies an [`http::Request`] whose body is the raw bytes, with the
    /// scheme's `verify`. The method and path, which only eSauti signs, are
    /// taken from the request.
    ///
    /// ```
    /// use flagwire_webhooks::{Esauti, EsautiVerifier, Signer, unix_now};
    ///
    /// let body = br#"{"type":"order.created"}"#;
    /// let signed = Signer::<Esauti>::new("secret")?.sign("POST", "/hooks", unix_now(), body);
    /// let mut request = http::Request::post("/hooks?attempt=2").body(&body[..])?;
    /// signed.apply_to(request.headers_mut())?;
    ///
    /// EsautiVerifier::new("secret")?.verify_request(&request)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[cfg(feature = "http")]
    pub fn verify_request<'h, B: AsRef<[u8]>>(
        &self,
        request: &'h http::Request<B>,
    ) -> Result<Verified<'h>, Error> {
        S::verify_request(
            self,
            request.method().as_str(),
            request.uri().path(),
            request.headers(),
            request.body().as_ref(),
        )
    }

    /// Verifies a request given as its head and its body, read in full: the
    /// shape frameworks hand over once the body is buffered. Otherwise like
    /// [`verify_request`](Self::verify_request).
    #[cfg(feature = "http")]
    pub fn verify_parts<'h>(
        &self,
        parts: &'h http::request::Parts,
        body: &[u8],
    ) -> Result<Verified<'h>, Error> {
        S::verify_request(
            self,
            parts.method.as_str(),
            parts.uri.path(),
            &parts.headers,
            body,
        )
    }

    #[inline]
    fn check_age(&self, timestamp: i64, now: Option<i64>) -> Result<(), Error> {
        let Some(tolerance) = self.tolerance else {
            return Ok(());
        };
        let now = now.unwrap_or_else(|| match &self.clock {
            Some(clock) => clock.now_unix(),
            None => coarse_unix_now(),
        });
        let skew = now.saturating_sub(timestamp);
        if skew.unsigned_abs() > tolerance {
            return Err(Error::TimestampOutOfTolerance {
                timestamp,
                now,
                skew,
                tolerance,
            });
        }
        Ok(())
    }

    /// Finds the first key whose MAC over the fed message equals `expected`.
    fn match_one(
        &self,
        expected: &[u8; TAG_LEN],
        feed: impl Fn(&mut hmac::Context),
    ) -> Result<usize, Error> {
        for (index, key) in self.keys.iter().enumerate() {
            if tags_equal(expected, mac(key, &feed).as_ref()) {
                return Ok(index);
            }
        }
        Err(Error::SignatureMismatch)
    }

    /// The first secret's key. (`build` refuses to make a verifier without
    /// secrets, so this never fails.)
    #[inline]
    fn first_key(&self) -> Result<&hmac::Key, Error> {
        self.keys.first().ok_or(Error::NoSecrets)
    }

    /// Finds the first key whose MAC is accepted by `matches`, which
    /// compares it with every candidate the sender gave (all of them, so
    /// timing does not reveal which one matched). `first` is the first
    /// key's MAC, already computed by the caller.
    ///
    /// The Standard Webhooks, eSauti and Stripe verifiers feed the first
    /// key's MAC before the checks that the signed message does not depend
    /// on (parsing the timestamp and the signatures, the age), and finish
    /// it after them: the processor runs those checks while it is still
    /// hashing the last blocks. Nothing is returned before the checks have
    /// passed, so the verdicts and errors are those of the plain order.
    /// (The context is built in place in the caller: returned from a
    /// helper, its 312 bytes were copied once more.)
    fn match_any(
        &self,
        first: hmac::Tag,
        feed: impl Fn(&mut hmac::Context),
        matches: impl Fn(&[u8; TAG_LEN]) -> bool,
    ) -> Result<usize, Error> {
        if accepts(first, &matches) {
            return Ok(0);
        }
        for (index, key) in self.keys.iter().enumerate().skip(1) {
            if accepts(mac(key, &feed), &matches) {
                return Ok(index);
            }
        }
        Err(Error::SignatureMismatch)
    }
}

/// Whether `matches` accepts `tag` (always a SHA-256 MAC here).
#[inline(always)]
fn accepts(tag: hmac::Tag, matches: impl FnOnce(&[u8; TAG_LEN]) -> bool) -> bool {
    <&[u8; TAG_LEN]>::try_from(tag.as_ref()).is_ok_and(matches)
}

#[inline]
fn mac(key: &hmac::Key, feed: &impl Fn(&mut hmac::Context)) -> hmac::Tag {
    let mut context = hmac::Context::with_key(key);
    feed(&mut context);
    context.sign()
}

/// Parses a Unix timestamp: ASCII digits only, no sign, fits in `i64`.
#[inline]
fn parse_timestamp(raw: &[u8], name: &'static str) -> Result<i64, Error> {
    // Eighteen digits are at most 999_999_999_999_999_999 < i64::MAX, so
    // the common case needs no overflow checks: accumulate (eight digits at
    // a time, then one at a time), then reject the whole value if any byte
    // was not a digit.
    if !raw.is_empty() && raw.len() <= 18 {
        let mut value: i64 = 0;
        let mut bad = 0u8;
        let mut rest = raw;
        while let Some((chunk, tail)) = rest.split_first_chunk::<8>() {
            let (digits, ok) = eight_digits(u64::from_le_bytes(*chunk));
            bad |= u8::from(!ok);
            value = value.wrapping_mul(100_000_000).wrapping_add(digits);
            rest = tail;
        }
        for &c in rest {
            let digit = c.wrapping_sub(b'0');
            bad |= u8::from(digit > 9);
            value = value.wrapping_mul(10).wrapping_add(i64::from(digit));
        }
        if bad == 0 {
            return Ok(value);
        }
        return Err(Error::MalformedHeader {
            name,
            reason: Malformed::InvalidTimestamp,
        });
    }
    parse_timestamp_checked(raw, name)
}

/// The value of eight ASCII digits read as a little-endian word (the first
/// digit in the lowest byte), and whether all eight bytes were digits. The
/// value is meaningless, but never overflows, when they were not.
#[inline]
fn eight_digits(word: u64) -> (i64, bool) {
    const HIGH_NIBBLES: u64 = 0xf0f0_f0f0_f0f0_f0f0;
    const ZEROS: u64 = 0x3030_3030_3030_3030;
    // A byte is a digit when its high nibble is 3 and stays 3 after adding
    // 6 (which carries out of the low nibble from `:` up). No byte of a
    // word with every high nibble 3 carries into the next one.
    let ok = word & HIGH_NIBBLES == ZEROS
        && word.wrapping_add(0x0606_0606_0606_0606) & HIGH_NIBBLES == ZEROS;
    // Combine neighbouring lanes: pairs of digits, then of pairs, then of
    // quadruples; every lane stays below its mask whatever the input.
    let mut x = word & 0x0f0f_0f0f_0f0f_0f0f;
    x = (x.wrapping_mul(10) + (x >> 8)) & 0x00ff_00ff_00ff_00ff;
    x = (x.wrapping_mul(100) + (x >> 16)) & 0x0000_ffff_0000_ffff;
    x = (x.wrapping_mul(10_000) + (x >> 32)) & 0x0000_0000_ffff_ffff;
    (x as i64, ok)
}

/// [`parse_timestamp`] for any length, checking for overflow at each digit.
fn parse_timestamp_checked(raw: &[u8], name: &'static str) -> Result<i64, Error> {
    let malformed = Error::MalformedHeader {
        name,
        reason: Malformed::InvalidTimestamp,
    };
    if raw.is_empty() {
        return Err(malformed);
    }
    let mut value: i64 = 0;
    for &c in raw {
        if !c.is_ascii_digit() {
            return Err(malformed);
        }
        value = value
            .checked_mul(10)
            .and_then(|v| v.checked_add(i64::from(c - b'0')))
            .ok_or(malformed)?;
    }
    Ok(value)
}

fn decode_error(name: &'static str, error: DecodeError) -> Error {
    Error::MalformedHeader {
        name,
        reason: match error {
            DecodeError::Length => Malformed::InvalidLength,
            DecodeError::Character => Malformed::InvalidEncoding,
        },
    }
}

fn hex_signature(value: &[u8], name: &'static str) -> Result<[u8; TAG_LEN], Error> {
    decode_hex_tag(value).map_err(|e| decode_error(name, e))
}

fn prefixed_hex_signature(value: &[u8], name: &'static str) -> Result<[u8; TAG_LEN], Error> {
    let hex = value
        .strip_prefix(b"sha256=")
        .ok_or(Error::MalformedHeader {
            name,
            reason: Malformed::MissingPrefix,
        })?;
    hex_signature(hex, name)
}

/// `value` as text: ids are checked for UTF-8 when verifying, so that
/// [`Verified::id`] can hand out a `&str`.
#[inline]
fn utf8<'a>(value: &'a [u8], name: &'static str) -> Result<&'a str, Error> {
    if let Some(ascii) = crate::encoding::ascii_str(value) {
        return Ok(ascii);
    }
    core::str::from_utf8(value).map_err(|_| Error::MalformedHeader {
        name,
        reason: Malformed::NotUtf8,
    })
}

/// Signatures from a list header, kept on the stack: decoded tags (hex
/// schemes) or the sender's text itself (base64 schemes, compared in the
/// encoded domain).
///
/// Senders put one or two signatures in a list; up to four are kept here so
/// that checking several secrets does not parse the header again. With more
/// entries, `complete` is false and the caller re-reads the header instead.
struct Candidates<T> {
    items: [T; CANDIDATES_INLINE],
    len: usize,
    complete: bool,
    /// Whether any entry of the supported version was seen, decodable or
    /// not.
    any_supported: bool,
}

const CANDIDATES_INLINE: usize = 4;

impl<T: Copy + Default> Candidates<T> {
    fn new() -> Self {
        Candidates {
            items: [T::default(); CANDIDATES_INLINE],
            len: 0,
            complete: true,
            any_supported: false,
        }
    }

    /// Records an entry of the supported version; undecodable ones count as
    /// seen but can never match.
    fn push<E>(&mut self, decoded: Result<T, E>) {
        self.any_supported = true;
        let Ok(item) = decoded else { return };
        if self.len == CANDIDATES_INLINE {
            self.complete = false;
        } else {
            self.items[self.len] = item;
            self.len += 1;
        }
    }

    fn as_slice(&self) -> &[T] {
        &self.items[..self.len]
    }
}

impl Verifier<Schematic> {
    /// Verifies a Schematic webhook delivery against the system clock (or
    /// the configured one).
    ///
    /// ```
    /// use flagwire_webhooks::{Schematic, SchematicVerifier, Signer, unix_now};
    ///
    /// let body = br#"{"action":"company.updated"}"#;
    /// let sent = Signer::<Schematic>::new("secret")?.sign(unix_now(), body);
    ///
    /// let verifier = SchematicVerifier::new("secret")?;
    /// let verified = verifier.verify(&sent, body)?;
    /// assert!(verified.timestamp().is_some());
    /// assert!(verifier.verify(&sent, b"{}").is_err());
    /// # Ok::<(), flagwire_webhooks::Error>(())
    /// ```
    pub fn verify<'h, H: Headers + ?Sized>(
        &self,
        headers: &'h H,
        body: &[u8],
    ) -> Result<Verified<'h>, Error> {
        self.verify_inner(headers, body, None)
    }

    /// Like [`verify`](Self::verify), but checks the tolerance against
    /// `now` (Unix seconds), for example the time a queued delivery was
    /// received.
    pub fn verify_at<'h, H: Headers + ?Sized>(
        &self,
        headers: &'h H,
        body: &[u8],
        now: i64,
    ) -> Result<Verified<'h>, Error> {
        self.verify_inner(headers, body, Some(now))
    }

    fn verify_inner<'h, H: Headers + ?Sized>(
        &self,
        headers: &'h H,
        body: &[u8],
        now: Option<i64>,
    ) -> Result<Verified<'h>, Error> {
        const NAMES: &[&str; 2] = &[Schematic::SIGNATURE_HEADER, Schematic::TIMESTAMP_HEADER];
        let found = Found::collect(headers, NAMES);
        let signature = found.required(0)?;
        let ts_raw = found.required(1)?;
        let expected = hex_signature(signature, Schematic::SIGNATURE_HEADER)?;
        let timestamp = parse_timestamp(ts_raw, Schematic::TIMESTAMP_HEADER)?;
        self.check_age(timestamp, now)?;
        let secret_index = self.match_one(&expected, |cx| {
            cx.update(body);
            cx.update(b"+");
            cx.update(ts_raw);
        })?;
        Ok(Verified {
            timestamp: Some(timestamp),
            id: None,
            secret_index,
        })
    }
}

impl Verifier<Flagsmith> {
    /// Verifies a Flagsmith webhook delivery.
    ///
    /// ```
    /// use flagwire_webhooks::FlagsmithVerifier;
    ///
    /// let body = br#"{"event_type": "FLAG_UPDATED"}"#;
    /// let headers = [(
    ///     "X-Flagsmith-Signature",
    ///     "6a6eeaae2241fc0ae5cec51884ed64be87ab39bf472af4e1a80833ab8f75e18b",
    /// )];
    /// FlagsmithVerifier::new("secret")?.verify(&headers, body)?;
    /// # Ok::<(), flagwire_webhooks::Error>(())
    /// ```
    pub fn verify<'h, H: Headers + ?Sized>(
        &self,
        headers: &'h H,
        body: &[u8],
    ) -> Result<Verified<'h>, Error> {
        const NAMES: &[&str; 1] = &[Flagsmith::SIGNATURE_HEADER];
        let signature = Found::collect(headers, NAMES).required(0)?;
        let expected = hex_signature(signature, Flagsmith::SIGNATURE_HEADER)?;
        let secret_index = self.match_one(&expected, |cx| cx.update(body))?;
        Ok(Verified {
            timestamp: None,
            id: None,
            secret_index,
        })
    }
}

impl Verifier<GitHub> {
    /// Verifies a GitHub webhook delivery (`X-Hub-Signature-256`).
    ///
    /// ```
    /// use flagwire_webhooks::GitHubVerifier;
    ///
    /// let headers = [
    ///     ("X-Hub-Signature-256", "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"),
    ///     ("X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958"),
    /// ];
    /// let verified = GitHubVerifier::new("It's a Secret to Everybody")?
    ///     .verify(&headers, b"Hello, World!")?;
    /// assert_eq!(verified.id(), Some("72d3162e-cc78-11e3-81ab-4c9367dc0958"));
    /// # Ok::<(), flagwire_webhooks::Error>(())
    /// ```
    pub fn verify<'h, H: Headers + ?Sized>(
        &self,
        headers: &'h H,
        body: &[u8],
    ) -> Result<Verified<'h>, Error> {
        const NAMES: &[&str; 2] = &[GitHub::SIGNATURE_HEADER, GitHub::DELIVERY_HEADER];
        let found = Found::collect(headers, NAMES);
        let signature = found.required(0)?;
        let expected = prefixed_hex_signature(signature, GitHub::SIGNATURE_HEADER)?;
        let id = found
            .optional(1)?
            .map(|id| utf8(id, GitHub::DELIVERY_HEADER))
            .transpose()?;
        let secret_index = self.match_one(&expected, |cx| cx.update(body))?;
        Ok(Verified {
            timestamp: None,
            id,
            secret_index,
        })
    }
}

/// The short signed fields in front of the body, gathered on the stack
/// together with the head of the body, so that the HMAC is handed whole
/// SHA-256 blocks: one update for the gathered bytes, one for the rest of
/// the body, each hashed by ring straight from its input. Feeding the short
/// fields one by one instead costs a call per field, and leaves ring to
/// buffer them and then to copy the head of the body after them before it
/// can hash anything (measured: about 10 ns per 1 KiB verify).
///
/// Built once per verify, whatever the number of secrets. When the fields
/// do not fit, the caller feeds them one by one instead; the signed bytes
/// are the same either way. (Keeping a list of the fields here, so that
/// `feed` could do that itself, cost 4–6 ns per verify: the list has to be
/// written out to memory on every call, for a case that almost never
/// happens.)
struct Gathered<'b> {
    buf: [u8; Gathered::CAP],
    len: usize,
    fits: bool,
    /// The part of the body not copied into `buf`.
    rest: &'b [u8],
}

impl Gathered<'_> {
    /// One SHA-256 block: fields of up to that many bytes, topped up with
    /// the head of the body to the end of the block.
    const CAP: usize = 64;
    const BLOCK: usize = 64;
}

impl<'b> Gathered<'b> {
    #[inline(always)]
    fn new() -> Self {
        Gathered {
            buf: [0; Gathered::CAP],
            len: 0,
            fits: true,
            rest: &[],
        }
    }

    /// Appends `piece`, upper-casing ASCII letters when `upper` is set.
    ///
    /// (In place: building the struct by value made the compiler copy the
    /// half-written buffer between calls, which stalled on store
    /// forwarding.)
    #[inline(always)]
    fn push(&mut self, piece: &[u8], upper: bool) {
        let end = self.len + piece.len();
        match self.buf.get_mut(self.len..end) {
            Some(out) if self.fits => {
                out.copy_from_slice(piece);
                if upper {
                    out.make_ascii_uppercase();
                }
                self.len = end;
            }
            _ => self.fits = false,
        }
    }

    /// Appends the head of `body` up to the next block boundary (when the
    /// body is long enough) and keeps the rest for [`feed`](Self::feed).
    #[inline(always)]
    fn body(&mut self, body: &'b [u8]) {
        self.rest = body;
        let want = self.len.next_multiple_of(Gathered::BLOCK) - self.len;
        if let (true, Some((head, rest))) = (self.fits, body.split_at_checked(want))
            && let Some(out) = self.buf.get_mut(self.len..self.len + want)
        {
            out.copy_from_slice(head);
            self.len += want;
            self.rest = rest;
        }
    }

    /// Feeds the gathered bytes and the rest of the body, or returns
    /// `false` without touching `cx` when the fields did not fit.
    #[inline(always)]
    fn feed(&self, cx: &mut hmac::Context) -> bool {
        if !self.fits {
            return false;
        }
        cx.update(&self.buf[..self.len]);
        cx.update(self.rest);
        true
    }
}

/// Feeds `method` upper-cased without allocating.
fn feed_upper(cx: &mut hmac::Context, method: &str) {
    let bytes = method.as_bytes();
    if !bytes.iter().any(u8::is_ascii_lowercase) {
        cx.update(bytes);
        return;
    }
    let mut buf = [0u8; 16];
    for chunk in bytes.chunks(buf.len()) {
        let out = &mut buf[..chunk.len()];
        out.copy_from_slice(chunk);
        out.make_ascii_uppercase();
        cx.update(out);
    }
}

/// The part of a request target that eSauti signs: the path alone, `/` if
/// empty.
pub(crate) fn signed_path(target: &str) -> &str {
    // Both delimiters are ASCII, so a byte search finds char boundaries.
    let end = find_either(target.as_bytes(), b'?', b'#').unwrap_or(target.len());
    match target.get(..end) {
        Some("") | None => "/",
        Some(path) => path,
    }
}

impl Verifier<Esauti> {
    /// Verifies an eSauti signed request. `method` is the HTTP method (any
    /// case) and `path` the request path; a query string or fragment in
    /// `path` is ignored, since eSauti does not sign it.
    ///
    /// The signature header must carry its `sha256=` prefix.
    ///
    /// ```
    /// use flagwire_webhooks::{EsautiVerifier, FixedClock};
    ///
    /// let headers = [
    ///     ("X-eSauti-Timestamp", "1700000000"),
    ///     ("X-eSauti-Signature", "sha256=70069ac894eebe92d767d0add5927d08297ca5653e43c4458cbb40acd4930c62"),
    /// ];
    /// let verifier = EsautiVerifier::builder()
    ///     .secret("super-secret")
    ///     .clock(FixedClock(1_700_000_010))
    ///     .build()?;
    /// let body = br#"{"type":"order.created"}"#;
    /// verifier.verify("POST", "/v1/inbound/event", &headers, body)?;
    /// # Ok::<(), flagwire_webhooks::Error>(())
    /// ```
    pub fn verify<'h, H: Headers + ?Sized>(
        &self,
        method: &str,
        path: &str,
        headers: &'h H,
        body: &[u8],
    ) -> Result<Verified<'h>, Error> {
        self.verify_inner(method, path, headers, body, None)
    }

    /// Like [`verify`](Self::verify), but checks the tolerance against `now`
    /// (Unix seconds).
    pub fn verify_at<'h, H: Headers + ?Sized>(
        &self,
        method: &str,
        path: &str,
        headers: &'h H,
        body: &[u8],
        now: i64,
    ) -> Result<Verified<'h>, Error> {
        self.verify_inner(method, path, headers, body, Some(now))
    }

    fn verify_inner<'h, H: Headers + ?Sized>(
        &self,
        method: &str,
        path: &str,
        headers: &'h H,
        body: &[u8],
        now: Option<i64>,
    ) -> Result<Verified<'h>, Error> {
        const NAMES: &[&str; 2] = &[Esauti::SIGNATURE_HEADER, Esauti::TIMESTAMP_HEADER];
        let [signature, ts_raw] = Found::collect(headers, NAMES).all_required()?;
        let path = signed_path(path);
        let mut prefix = Gathered::new();
        prefix.push(method.as_bytes(), true);
        prefix.push(b"\n", false);
        prefix.push(path.as_bytes(), false);
        prefix.push(b"\n", false);
        prefix.push(ts_raw, false);
        prefix.push(b"\n", false);
        prefix.body(body);
        let feed = |cx: &mut hmac::Context| {
            if !prefix.feed(cx) {
                feed_upper(cx, method);
                cx.update(b"\n");
                cx.update(path.as_bytes());
                cx.update(b"\n");
                cx.update(ts_raw);
                cx.update(b"\n");
                cx.update(body);
            }
        };
        // Started here, finished after the checks: see `match_any`.
        let mut first = hmac::Context::with_key(self.first_key()?);
        feed(&mut first);
        let expected = prefixed_hex_signature(signature, Esauti::SIGNATURE_HEADER)?;
        let timestamp = parse_timestamp(ts_raw, Esauti::TIMESTAMP_HEADER)?;
        self.check_age(timestamp, now)?;
        let secret_index = self.match_any(first.sign(), feed, |tag| tags_equal(&expected, tag))?;
        Ok(Verified {
            timestamp: Some(timestamp),
            id: None,
            secret_index,
        })
    }
}

impl Verifier<StandardWebhooks> {
    /// Verifies a Standard Webhooks (or Svix) delivery. Passes when any `v1`
    /// entry of the signature header matches any secret; entries of other
    /// versions are ignored.
    ///
    /// ```
    /// use flagwire_webhooks::StandardWebhooksVerifier;
    ///
    /// let headers = [
    ///     ("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek"),
    ///     ("webhook-timestamp", "1614265330"),
    ///     ("webhook-signature", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="),
    /// ];
    /// let verifier = StandardWebhooksVerifier::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")?;
    /// let verified = verifier.verify_at(&headers, br#"{"test": 2432232314}"#, 1614265330)?;
    /// assert_eq!(verified.id(), Some("msg_p5jXN8AQM9LWM0D4loKWxJek"));
    /// # Ok::<(), flagwire_webhooks::Error>(())
    /// ```
    pub fn verify<'h, H: Headers + ?Sized>(
        &self,
        headers: &'h H,
        body: &[u8],
    ) -> Result<Verified<'h>, Error> {
        self.verify_inner(headers, body, None)
    }

    /// Like [`verify`](Self::verify), but checks the tolerance against `now`
    /// (Unix seconds).
    pub fn verify_at<'h, H: Headers + ?Sized>(
        &self,
        headers: &'h H,
        body: &[u8],
        now: i64,
    ) -> Result<Verified<'h>, Error> {
        self.verify_inner(headers, body, Some(now))
    }

    fn verify_inner<'h, H: Headers + ?Sized>(
        &self,
        headers: &'h H,
        body: &[u8],
        now: Option<i64>,
    ) -> Result<Verified<'h>, Error> {
        // The usual delivery (the three `webhook-*` headers, each once and
        // non-empty) takes one scan and no error bookkeeping; anything else
        // is sorted out by `standard_webhooks_headers`.
        let found = Found::collect(headers, STANDARD_WEBHOOKS_NAMES);
        let ([signature, id_raw, ts_raw], names) = match found.values() {
            Some(values) => (values, STANDARD_WEBHOOKS_NAMES),
            None => standard_webhooks_headers(headers)?,
        };
        let [sig_name, id_name, ts_name] = *names;
        let mut signed = Gathered::new();
        signed.push(id_raw, false);
        signed.push(b".", false);
        signed.push(ts_raw, false);
        signed.push(b".", false);
        signed.body(body);
        let feed = |cx: &mut hmac::Context| {
            if !signed.feed(cx) {
                cx.update(id_raw);
                cx.update(b".");
                cx.update(ts_raw);
                cx.update(b".");
                cx.update(body);
            }
        };
        // Started here, finished after the checks: see `match_any`.
        let mut first = hmac::Context::with_key(self.first_key()?);
        feed(&mut first);
        let id = utf8(id_raw, id_name)?;
        let timestamp = parse_timestamp(ts_raw, ts_name)?;
        let v1_entries =
            || split_byte(signature, b' ').filter_map(|entry| entry.strip_prefix(b"v1,"));
        // The sender's base64 text is kept as it is: each computed tag is
        // encoded once and compared with it (see `Base64Tag`).
        let mut candidates = Candidates::<&[u8]>::new();
        for b64 in v1_entries() {
            candidates.push(Ok::<_, DecodeError>(b64));
        }
        if !candidates.any_supported {
            return Err(Error::NoSupportedSignature { name: sig_name });
        }
        self.check_age(timestamp, now)?;
        let secret_index = self.match_any(first.sign(), feed, |tag| {
            let expected = Base64Tag::encode(tag);
            let mut found = false;
            if candidates.complete {
                for text in candidates.as_slice() {
                    found |= expected.matches(text);
                }
            } else {
                for text in v1_entries() {
                    found |= expected.matches(text);
                }
            }
            found
        })?;
        Ok(Verified {
            timestamp: Some(timestamp),
            id: Some(id),
            secret_index,
        })
    }
}

/// Signature, id and timestamp header names of Standard Webhooks.
const STANDARD_WEBHOOKS_NAMES: &[&str; 3] = &[
    StandardWebhooks::SIGNATURE_HEADER,
    StandardWebhooks::ID_HEADER,
    StandardWebhooks::TIMESTAMP_HEADER,
];

/// The same for the Svix spelling, used when there is no
/// `webhook-signature` header.
const SVIX_NAMES: &[&str; 3] = &[
    StandardWebhooks::SVIX_SIGNATURE_HEADER,
    StandardWebhooks::SVIX_ID_HEADER,
    StandardWebhooks::SVIX_TIMESTAMP_HEADER,
];

/// The Standard Webhooks headers when the quick look found them lacking:
/// the Svix spelling, or the first error, in the order the checks are
/// documented (signature header, id, id encoding, timestamp).
#[cold]
#[inline(never)]
fn standard_webhooks_headers<H: Headers + ?Sized>(
    headers: &H,
) -> Result<([&[u8]; 3], &'static [&'static str; 3]), Error> {
    let mut names = STANDARD_WEBHOOKS_NAMES;
    let mut found = Found::collect(headers, names);
    let signature = match found.optional(0)? {
        Some(sig) => sig,
        None => {
            names = SVIX_NAMES;
            found = Found::collect(headers, names);
            found.optional(0)?.ok_or(Error::MissingHeader {
                name: StandardWebhooks::SIGNATURE_HEADER,
            })?
        }
    };
    let id = found.required(1)?;
    utf8(id, names[1])?;
    let timestamp = found.required(2)?;
    Ok(([signature, id, timestamp], names))
}

/// The parts of a `Stripe-Signature` header that matter.
struct StripeHeader<'a> {
    t_raw: &'a [u8],
    timestamp: i64,
    candidates: Candidates<[u8; TAG_LEN]>,
    value: &'a [u8],
}

impl<'a> StripeHeader<'a> {
    #[inline(always)]
    fn parse(value: &'a [u8]) -> Result<Self, Error> {
        let name = Stripe::SIGNATURE_HEADER;
        let malformed = Error::MalformedHeader {
            name,
            reason: Malformed::InvalidFormat,
        };
        let mut t_raw = None;
        let mut candidates = Candidates::new();
        for element in Self::elements(value) {
            let (key, val) = element?;
            match key {
                b"t" if t_raw.is_some() => return Err(malformed),
                b"t" => t_raw = Some(val),
                b"v1" => candidates.push(decode_hex_tag(val)),
                _ => {}
            }
        }
        let t_raw = t_raw.ok_or(malformed)?;
        let timestamp = parse_timestamp(t_raw, name)?;
        if !candidates.any_supported {
            return Err(Error::NoSupportedSignature { name });
        }
        Ok(StripeHeader {
            t_raw,
            timestamp,
            candidates,
            value,
        })
    }

    /// `key=value` elements separated by commas, whitespace-trimmed.
    fn elements(value: &'a [u8]) -> impl Iterator<Item = Result<(&'a [u8], &'a [u8]), Error>> {
        split_byte(value, b',').map(|element| {
            let element = element.trim_ascii();
            let eq = find_byte(element, b'=').ok_or(Error::MalformedHeader {
                name: Stripe::SIGNATURE_HEADER,
                reason: Malformed::InvalidFormat,
            })?;
            Ok((&element[..eq], &element[eq + 1..]))
        })
    }

    /// Every decodable `v1` signature, read again from the header.
    fn all_v1_tags(&self) -> impl Iterator<Item = [u8; TAG_LEN]> + 'a {
        Self::elements(self.value).filter_map(|element| match element {
            Ok((b"v1", hex)) => decode_hex_tag(hex).ok(),
            _ => None,
        })
    }
}

impl Verifier<Stripe> {
    /// Verifies a Stripe webhook delivery. Passes when any `v1` entry
    /// matches any secret; `v0` and unknown entries are ignored.
    ///
    /// ```
    /// use flagwire_webhooks::StripeVerifier;
    ///
    /// let headers = [(
    ///     "Stripe-Signature",
    ///     "t=1700000000,v1=8042376f6ca064adbe037642a718227dfd59047137eb49497a54c49eb0cfb724",
    /// )];
    /// let verifier = StripeVerifier::new("whsec_test_secret")?;
    /// let body = br#"{"id":"evt_test","object":"event"}"#;
    /// assert_eq!(verifier.verify_at(&headers, body, 1_700_000_100)?.timestamp(), Some(1_700_000_000));
    /// # Ok::<(), flagwire_webhooks::Error>(())
    /// ```
    pub fn verify<'h, H: Headers + ?Sized>(
        &self,
        headers: &'h H,
        body: &[u8],
    ) -> Result<Verified<'h>, Error> {
        self.verify_inner(headers, body, None)
    }

    /// Like [`verify`](Self::verify), but checks the tolerance against `now`
    /// (Unix seconds), for example the time a queued delivery was received.
    pub fn verify_at<'h, H: Headers + ?Sized>(
        &self,
        headers: &'h H,
        body: &[u8],
        now: i64,
    ) -> Result<Verified<'h>, Error> {
        self.verify_inner(headers, body, Some(now))
    }

    fn verify_inner<'h, H: Headers + ?Sized>(
        &self,
        headers: &'h H,
        body: &[u8],
        now: Option<i64>,
    ) -> Result<Verified<'h>, Error> {
        const NAMES: &[&str; 1] = &[Stripe::SIGNATURE_HEADER];
        let header = StripeHeader::parse(Found::collect(headers, NAMES).required(0)?)?;
        let mut signed = Gathered::new();
        signed.push(header.t_raw, false);
        signed.push(b".", false);
        signed.body(body);
        let feed = |cx: &mut hmac::Context| {
            if !signed.feed(cx) {
                cx.update(header.t_raw);
                cx.update(b".");
                cx.update(body);
            }
        };
        // Started here, finished after the checks: see `match_any`.
        let mut first = hmac::Context::with_key(self.first_key()?);
        feed(&mut first);
        self.check_age(header.timestamp, now)?;
        let secret_index = self.match_any(first.sign(), feed, |tag| {
            let mut found = false;
            if header.candidates.complete {
                for candidate in header.candidates.as_slice() {
                    found |= tags_equal(candidate, tag);
                }
            } else {
                for candidate in header.all_v1_tags() {
                    found |= tags_equal(&candidate, tag);
                }
            }
            found
        })?;
        Ok(Verified {
            timestamp: Some(header.timestamp),
            id: None,
            secret_index,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_strict() {
        assert_eq!(parse_timestamp(b"1700000000", "t"), Ok(1_700_000_000));
        assert_eq!(parse_timestamp(b"0", "t"), Ok(0));
        assert_eq!(parse_timestamp(b"9223372036854775807", "t"), Ok(i64::MAX));
        assert_eq!(
            parse_timestamp(b"999999999999999999", "t"),
            Ok(999_999_999_999_999_999)
        );
        assert_eq!(parse_timestamp(b"0000000000000000001", "t"), Ok(1));
        for bad in [
            &b""[..],
            b"-1",
            b"+1",
            b"1.5",
            b"1e9",
            b"12 3",
            b"9223372036854775808",
            b"10000000000000000000",
            b"99999999999999999999999",
            b"\xff",
        ] {
            assert_eq!(
                parse_timestamp(bad, "t"),
                Err(Error::MalformedHeader {
                    name: "t",
                    reason: Malformed::InvalidTimestamp
                }),
                "{bad:?}"
            );
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        /// The unchecked fast path agrees with the checked parser.
        #[test]
        fn timestamp_fast_path_agrees(
            raw in "[0-9]{0,20}|[0-9 +x-]{0,20}|[\\x00-\\xff]{0,4}|[0-9]{0,12}[\\x00-\\xff][0-9]{0,8}"
        ) {
            proptest::prop_assert_eq!(
                parse_timestamp(raw.as_bytes(), "t"),
                parse_timestamp_checked(raw.as_bytes(), "t")
            );
        }

        /// Gathering the fields and the head of the body hashes exactly
        /// the concatenation, on both sides of every length at which the
        /// fields stop fitting, the head of the body reaches the next block
        /// boundary or the body runs out before it; when the fields do not
        /// fit, nothing is fed and the caller feeds the pieces.
        #[test]
        fn gathered_feed_hashes_the_concatenation(
            id in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..140),
            ts in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..24),
            body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200),
            upper in proptest::prelude::any::<bool>(),
        ) {
            let key = hmac::Key::new(hmac::HMAC_SHA256, b"key");
            let mut gathered = Gathered::new();
            gathered.push(&id, upper);
            gathered.push(b".", false);
            gathered.push(&ts, false);
            gathered.body(&body);
            let mut cx = hmac::Context::with_key(&key);
            let fed = gathered.feed(&mut cx);
            proptest::prop_assert_eq!(fed, id.len() + 1 + ts.len() <= Gathered::CAP);
            if fed {
                let id = if upper { id.to_ascii_uppercase() } else { id.clone() };
                let whole = [&id[..], b".", &ts[..], &body[..]].concat();
                let expected = hmac::sign(&key, &whole);
                let tag = cx.sign();
                proptest::prop_assert_eq!(tag.as_ref(), expected.as_ref());
                // Whole blocks, unless the body is too short to reach the
                // boundary (then none of it is copied).
                let head = body.len() - gathered.rest.len();
                let gap = Gathered::BLOCK - gathered.len % Gathered::BLOCK;
                proptest::prop_assert!(
                    gathered.len.is_multiple_of(Gathered::BLOCK) || (head == 0 && body.len() < gap)
                );
            } else {
                // Nothing fed: the MAC of the empty message.
                let (tag, empty) = (cx.sign(), hmac::sign(&key, b""));
                proptest::prop_assert_eq!(tag.as_ref(), empty.as_ref());
            }
        }

        #[test]
        fn signed_path_agrees_with_a_plain_search(target in "[/a-z?#%.]{0,40}") {
            let end = target.find(['?', '#']).unwrap_or(target.len());
            let expected = if end == 0 { "/" } else { &target[..end] };
            proptest::prop_assert_eq!(signed_path(&target), expected);
        }
    }

    #[test]
    fn eight_digits_checks_every_byte_in_every_lane() {
        for lane in 0..8 {
            for b in 0..=255u8 {
                let mut bytes = *b"12345678";
                bytes[lane] = b;
                let (value, ok) = eight_digits(u64::from_le_bytes(bytes));
                assert_eq!(ok, b.is_ascii_digit(), "{bytes:?}");
                if ok {
                    let text = core::str::from_utf8(&bytes).unwrap();
                    assert_eq!(value, text.parse::<i64>().unwrap());
                }
            }
        }
    }

    #[test]
    fn esauti_signed_path() {
        assert_eq!(signed_path(""), "/");
        assert_eq!(signed_path("/a/b?x=1"), "/a/b");
        assert_eq!(signed_path("?x=1"), "/");
        assert_eq!(signed_path("/a#frag"), "/a");
    }

    #[test]
    fn method_is_upper_cased_in_chunks() {
        let key = hmac::Key::new(hmac::HMAC_SHA256, b"k");
        let long = "abcdefghijklmnopqrstuvwxyz";
        let ours = mac(&key, &|cx: &mut hmac::Context| feed_upper(cx, long));
        let plain = hmac::sign(&key, long.to_ascii_uppercase().as_bytes());
        assert_eq!(ours.as_ref(), plain.as_ref());
    }

    #[test]
    fn skew_saturates() {
        let v = Verifier::<Schematic>::new("s").unwrap();
        let err = v.check_age(i64::MAX, Some(i64::MIN)).unwrap_err();
        assert!(matches!(
            err,
            Error::TimestampOutOfTolerance { skew: i64::MIN, .. }
        ));
        assert!(v.check_age(1000, Some(1300)).is_ok());
        assert!(v.check_age(1300, Some(1000)).is_ok());
        assert!(v.check_age(1000, Some(1301)).is_err());
        assert!(v.check_age(1301, Some(1000)).is_err());
    }

    #[test]
    fn verifiers_are_shareable() {
        fn assert_send_sync_clone<T: Send + Sync + Clone + 'static>() {}
        assert_send_sync_clone::<Verifier<Schematic>>();
        assert_send_sync_clone::<Verifier<Flagsmith>>();
        assert_send_sync_clone::<Verifier<Esauti>>();
        assert_send_sync_clone::<Verifier<StandardWebhooks>>();
        assert_send_sync_clone::<Verifier<Stripe>>();
        assert_send_sync_clone::<Verifier<GitHub>>();
        assert_send_sync_clone::<crate::Signer<Schematic>>();
    }

    #[test]
    fn debug_hides_keys() {
        let v = Verifier::<Stripe>::new("whsec_top_secret_value").unwrap();
        let shown = format!("{v:?}");
        assert!(!shown.contains("top_secret"), "{shown}");
        assert!(shown.contains("Stripe"));
    }
}
