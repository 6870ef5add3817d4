//! Which check decides: the verifiers against a plain reading of the rules.
//!
//! The Standard Webhooks and eSauti verifiers take their headers from one
//! quick look and start the MAC before they parse the timestamp and the
//! signatures. Here random header sets (missing, repeated, empty, padded and
//! differently cased headers, the Svix names, bad ids, timestamps and
//! signatures) go through the verifier and through a straightforward
//! implementation of the documented order of checks, written with
//! iterators and `ring` directly, and the two must agree on every verdict
//! and every error.

use flagwire_webhooks::{
    Error, EsautiVerifier, FixedClock, Malformed, Secret, StandardWebhooksVerifier, Verifier,
};
use proptest::prelude::*;
use ring::hmac;

const NOW: i64 = 1_700_000_000;
const TOLERANCE: u64 = 300;

type Headers = Vec<(Vec<u8>, Vec<u8>)>;

/// `value` without the spaces and tabs around it.
fn trim(value: &[u8]) -> &[u8] {
    let kept = |b: &u8| *b != b' ' && *b != b'\t';
    match (value.iter().position(kept), value.iter().rposition(kept)) {
        (Some(start), Some(end)) => &value[start..=end],
        _ => &[],
    }
}

/// The value of `name` (ASCII case ignored, spaces and tabs trimmed):
/// `None` when absent or empty, an error when it appears more than once.
fn lookup<'h>(headers: &'h Headers, name: &'static str) -> Result<Option<&'h [u8]>, Error> {
    let mut values = headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
        .map(|(_, v)| trim(v));
    let first = values.next();
    if values.next().is_some() {
        return Err(Error::MalformedHeader {
            name,
            reason: Malformed::Repeated,
        });
    }
    Ok(first.filter(|v| !v.is_empty()))
}

fn require<'h>(headers: &'h Headers, name: &'static str) -> Result<&'h [u8], Error> {
    lookup(headers, name)?.ok_or(Error::MissingHeader { name })
}

fn timestamp(raw: &[u8], name: &'static str) -> Result<i64, Error> {
    std::str::from_utf8(raw)
        .ok()
        .filter(|text| text.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|text| text.parse().ok())
        .ok_or(Error::MalformedHeader {
            name,
            reason: Malformed::InvalidTimestamp,
        })
}

fn check_age(timestamp: i64) -> Result<(), Error> {
    let skew = NOW.saturating_sub(timestamp);
    if skew.unsigned_abs() > TOLERANCE {
        return Err(Error::TimestampOutOfTolerance {
            timestamp,
            now: NOW,
            skew,
            tolerance: TOLERANCE,
        });
    }
    Ok(())
}

fn mac(key: &[u8], pieces: &[&[u8]]) -> Vec<u8> {
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    hmac::sign(&key, &pieces.concat()).as_ref().to_vec()
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Standard Webhooks, in the documented order: signature header (or the
/// Svix names without one), id, id encoding, timestamp header, timestamp,
/// a `v1` entry, age, MAC.
fn standard_webhooks_reference(
    key: &[u8],
    headers: &Headers,
    body: &[u8],
) -> Result<(i64, String), Error> {
    let (signature, [sig_name, id_name, ts_name]) = match lookup(headers, "webhook-signature")? {
        Some(sig) => (
            sig,
            ["webhook-signature", "webhook-id", "webhook-timestamp"],
        ),
        None => match lookup(headers, "svix-signature")? {
            Some(sig) => (sig, ["svix-signature", "svix-id", "svix-timestamp"]),
            None => {
                return Err(Error::MissingHeader {
                    name: "webhook-signature",
                });
            }
        },
    };
    let id_raw = require(headers, id_name)?;
    let id = std::str::from_utf8(id_raw).map_err(|_| Error::MalformedHeader {
        name: id_name,
        reason: Malformed::NotUtf8,
    })?;
    let ts_raw = require(headers, ts_name)?;
    let ts = timestamp(ts_raw, ts_name)?;
    let entries: Vec<&[u8]> = signature
        .split(|&b| b == b' ')
        .filter_map(|entry| entry.strip_prefix(b"v1,"))
        .collect();
    if entries.is_empty() {
        return Err(Error::NoSupportedSignature { name: sig_name });
    }
    check_age(ts)?;
    let expected = base64(&mac(key, &[id_raw, b".", ts_raw, b".", body]));
    if entries.contains(&expected.as_bytes()) {
        Ok((ts, id.to_owned()))
    } else {
        Err(Error::SignatureMismatch)
    }
}

const METHOD: &str = "POST";
const PATH: &str = "/v1/hook";

/// eSauti, in the documented order: signature header, timestamp header,
/// `sha256=` prefix, hex length and digits, timestamp, age, MAC.
fn esauti_reference(secret: &[u8], headers: &Headers, body: &[u8]) -> Result<i64, Error> {
    const SIG: &str = "x-esauti-signature";
    const TS: &str = "x-esauti-timestamp";
    let signature = require(headers, SIG)?;
    let ts_raw = require(headers, TS)?;
    let malformed = |reason| Error::MalformedHeader { name: SIG, reason };
    let digits = signature
        .strip_prefix(b"sha256=")
        .ok_or(malformed(Malformed::MissingPrefix))?;
    if digits.len() != 64 {
        return Err(malformed(Malformed::InvalidLength));
    }
    if !digits.iter().all(u8::is_ascii_hexdigit) {
        return Err(malformed(Malformed::InvalidEncoding));
    }
    let ts = timestamp(ts_raw, TS)?;
    check_age(ts)?;
    let tag = mac(
        secret,
        &[
            METHOD.as_bytes(),
            b"\n",
            PATH.as_bytes(),
            b"\n",
            ts_raw,
            b"\n",
            body,
        ],
    );
    if digits.eq_ignore_ascii_case(hex(&tag).as_bytes()) {
        Ok(ts)
    } else {
        Err(Error::SignatureMismatch)
    }
}

/// How one header is sent: its name's spelling and its value.
#[derive(Debug, Clone)]
enum Sent {
    /// The intended value, as it is.
    Plain,
    /// The intended value with spaces and tabs around it.
    Padded,
    /// Nothing but blanks.
    Blank,
    /// Another value.
    Other(Vec<u8>),
}

/// How many times a header is sent (mostly once) and how.
fn copies() -> impl Strategy<Value = (Vec<Sent>, bool)> {
    let sent = prop_oneof![
        6 => Just(Sent::Plain),
        1 => Just(Sent::Padded),
        1 => Just(Sent::Blank),
        1 => proptest::collection::vec(any::<u8>(), 0..12).prop_map(Sent::Other),
    ];
    (
        prop_oneof![
            1 => Just(0usize),
            8 => Just(1usize),
            1 => Just(2usize),
        ],
        proptest::collection::vec(sent, 2),
        any::<bool>(),
    )
        .prop_map(|(count, sent, upper)| (sent[..count].to_vec(), upper))
}

fn push(headers: &mut Headers, name: &str, intended: &[u8], (copies, upper): &(Vec<Sent>, bool)) {
    for sent in copies {
        let name = if *upper {
            name.to_ascii_uppercase()
        } else {
            name.to_owned()
        };
        let value = match sent {
            Sent::Plain => intended.to_vec(),
            Sent::Padded => [b" \t", intended, b"  "].concat(),
            Sent::Blank => b" \t ".to_vec(),
            Sent::Other(other) => other.clone(),
        };
        headers.push((name.into_bytes(), value));
    }
}

/// A timestamp as sent: mostly `NOW` or near it, sometimes out of the
/// window, malformed, zero-padded or too large for an `i64`.
fn timestamp_text() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => (-300i64..=300).prop_map(|d| (NOW + d).to_string().into_bytes()),
        1 => prop_oneof![Just(-1000i64), Just(1000i64)].prop_map(|d| (NOW + d).to_string().into_bytes()),
        1 => Just(format!("000{NOW}").into_bytes()),
        1 => Just(b"99999999999999999999".to_vec()),
        1 => "[0-9a-z +-]{0,12}".prop_map(String::into_bytes),
    ]
}

/// The order the headers arrive in, with an unrelated one or two mixed in.
fn shuffle(mut headers: Headers, order: &[usize], extra: bool) -> Headers {
    if extra {
        headers.push((b"User-Agent".to_vec(), b"sender/1.0".to_vec()));
        headers.push((b"webhook-idx".to_vec(), b"not the id".to_vec()));
    }
    for (i, &j) in order.iter().enumerate() {
        let len = headers.len();
        if len > 1 {
            headers.swap(i % len, j % len);
        }
    }
    headers
}

#[derive(Debug, Clone)]
enum SignatureList {
    Valid,
    ValidAfterOthers,
    Wrong,
    OtherVersionOnly,
    Text(String),
}

fn signature_list() -> impl Strategy<Value = SignatureList> {
    prop_oneof![
        5 => Just(SignatureList::Valid),
        1 => Just(SignatureList::ValidAfterOthers),
        1 => Just(SignatureList::Wrong),
        1 => Just(SignatureList::OtherVersionOnly),
        1 => "(v1,|v2,)?[A-Za-z0-9+/=, ]{0,50}".prop_map(SignatureList::Text),
    ]
}

/// A Standard Webhooks delivery's headers: under the `webhook-*` names, or
/// the Svix ones, each header sent as `sent` says, the signature list built
/// from the MAC of `id`, `ts` and `body` as `list` says.
fn standard_webhooks_headers(
    key: &[u8],
    svix: bool,
    (id, ts, body): (&[u8], &[u8], &[u8]),
    list: SignatureList,
    sent: &[(Vec<Sent>, bool)],
) -> Headers {
    let names = if svix {
        ["svix-signature", "svix-id", "svix-timestamp"]
    } else {
        ["webhook-signature", "webhook-id", "webhook-timestamp"]
    };
    let valid = format!("v1,{}", base64(&mac(key, &[id, b".", ts, b".", body])));
    let signature = match list {
        SignatureList::Valid => valid,
        SignatureList::ValidAfterOthers => format!("v2,abc v1,{} {valid}", base64(&[7; 32])),
        SignatureList::Wrong => format!("v1,{}", base64(&[7; 32])),
        SignatureList::OtherVersionOnly => valid.replacen("v1,", "v2,", 1),
        SignatureList::Text(text) => text,
    };
    let mut headers = Headers::new();
    push(&mut headers, names[0], signature.as_bytes(), &sent[0]);
    push(&mut headers, names[1], id, &sent[1]);
    push(&mut headers, names[2], ts, &sent[2]);
    headers
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn standard_webhooks_checks_in_the_documented_order(
        key in proptest::collection::vec(any::<u8>(), 24..40),
        svix in any::<bool>(),
        id in prop_oneof![
            6 => "msg_[A-Za-z0-9]{1,27}".prop_map(String::into_bytes),
            1 => Just("msg_é".as_bytes().to_vec()),
            1 => Just(b"msg_\xff\xfe".to_vec()),
        ],
        ts in timestamp_text(),
        list in signature_list(),
        sent in proptest::collection::vec(copies(), 3),
        order in proptest::collection::vec(any::<usize>(), 0..6),
        extra in any::<bool>(),
        body in proptest::collection::vec(any::<u8>(), 0..200),
    ) {
        let headers = standard_webhooks_headers(&key, svix, (&id, &ts, &body), list, &sent);
        let headers = shuffle(headers, &order, extra);

        let verifier: StandardWebhooksVerifier = Verifier::builder()
            .secret(Secret::from_bytes(key.clone()))
            .clock(FixedClock(NOW))
            .build()
            .unwrap();
        let got = verifier
            .verify(&headers, &body)
            .map(|v| (v.timestamp().unwrap(), v.id().unwrap().to_owned()));
        prop_assert_eq!(got, standard_webhooks_reference(&key, &headers, &body));
    }

    #[test]
    fn esauti_checks_in_the_documented_order(
        secret in "[A-Za-z0-9]{1,24}",
        ts in timestamp_text(),
        signature in prop_oneof![
            5 => Just(None),
            1 => "(sha256=)?[0-9a-fA-Fx]{0,66}".prop_map(Some),
        ],
        upper_hex in any::<bool>(),
        sent in proptest::collection::vec(copies(), 2),
        order in proptest::collection::vec(any::<usize>(), 0..4),
        extra in any::<bool>(),
        body in proptest::collection::vec(any::<u8>(), 0..200),
    ) {
        let tag = mac(
            secret.as_bytes(),
            &[METHOD.as_bytes(), b"\n", PATH.as_bytes(), b"\n", &ts, b"\n", &body],
        );
        let valid = if upper_hex { hex(&tag).to_ascii_uppercase() } else { hex(&tag) };
        let signature = signature.unwrap_or(format!("sha256={valid}"));
        let mut headers = Headers::new();
        push(&mut headers, "X-eSauti-Signature", signature.as_bytes(), &sent[0]);
        push(&mut headers, "X-eSauti-Timestamp", &ts, &sent[1]);
        let headers = shuffle(headers, &order, extra);

        let verifier: EsautiVerifier = Verifier::builder()
            .secret(secret.as_str())
            .clock(FixedClock(NOW))
            .build()
            .unwrap();
        let got = verifier
            .verify(METHOD, PATH, &headers, &body)
            .map(|v| v.timestamp().unwrap());
        prop_assert_eq!(got, esauti_reference(secret.as_bytes(), &headers, &body));
    }
}

/// The generators reach every kind of outcome (so the agreement above is
/// not just agreement on one common error).
#[test]
fn the_cases_cover_every_outcome() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    let mut runner = TestRunner::deterministic();
    let mut seen = std::collections::BTreeSet::new();
    let strategy = (
        proptest::collection::vec(copies(), 3),
        timestamp_text(),
        signature_list(),
        any::<bool>(),
    );
    let key = [1u8; 32];
    for _ in 0..2000 {
        let (sent, ts, list, svix) = strategy.new_tree(&mut runner).unwrap().current();
        let headers = standard_webhooks_headers(&key, svix, (b"msg_1", &ts, b""), list, &sent);
        let outcome = match standard_webhooks_reference(&key, &headers, b"") {
            Ok(_) => "verified".to_owned(),
            Err(Error::MalformedHeader { reason, .. }) => format!("{reason:?}"),
            Err(error) => format!("{error:?}")
                .split([' ', '{'])
                .next()
                .unwrap()
                .to_owned(),
        };
        seen.insert(outcome);
    }
    for outcome in [
        "verified",
        "MissingHeader",
        "Repeated",
        "InvalidTimestamp",
        "NoSupportedSignature",
        "TimestampOutOfTolerance",
        "SignatureMismatch",
    ] {
        assert!(seen.contains(outcome), "{outcome} never happens: {seen:?}");
    }
}
