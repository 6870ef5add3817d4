//! Strict hex and base64 codecs that decode into fixed stack buffers.
//!
//! Verification only ever decodes 32-byte HMAC-SHA256 tags, so the decoders
//! write into `[u8; 32]` and refuse anything that is not exactly the right
//! length. Encoders are used by the signing helpers only.

/// Length in bytes of an HMAC-SHA256 tag.
pub(crate) const TAG_LEN: usize = 32;

const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);

/// The top bit of each zero byte of `word` (the classic "has a zero byte"
/// word trick). A borrow can also flag bytes above a zero byte, never
/// below the lowest one, so the lowest flag is always a true zero.
#[inline(always)]
fn zero_byte_flags(word: u64) -> u64 {
    word.wrapping_sub(ONES) & !word & HIGHS
}

/// Position of the first `needle` in `haystack`.
///
/// Looks at eight bytes per step with [`zero_byte_flags`] (on the word
/// XORed with the needle in every byte), instead of one byte per step;
/// header values are scanned with it. Only bytes above the first match can
/// be flagged spuriously, and the lowest flag is taken.
#[inline]
pub(crate) fn find_byte(haystack: &[u8], needle: u8) -> Option<usize> {
    let pattern = ONES * u64::from(needle);
    let mut chunks = haystack.chunks_exact(8);
    let mut offset = 0;
    for chunk in &mut chunks {
        let zeros =
            zero_byte_flags(u64::from_le_bytes(chunk.try_into().unwrap_or_default()) ^ pattern);
        if zeros != 0 {
            return Some(offset + (zeros.trailing_zeros() / 8) as usize);
        }
        offset += 8;
    }
    if chunks.remainder().is_empty() {
        return None;
    }
    // The last, partial word: read the last eight bytes instead, when there
    // are that many. Its lower bytes were checked already and hold no
    // match, so they cannot be flagged spuriously either.
    if let Some(last) = haystack.last_chunk::<8>() {
        let zeros = zero_byte_flags(u64::from_le_bytes(*last) ^ pattern);
        return (zeros != 0).then(|| haystack.len() - 8 + (zeros.trailing_zeros() / 8) as usize);
    }
    chunks
        .remainder()
        .iter()
        .position(|&b| b == needle)
        .map(|i| offset + i)
}

/// Position of the first byte equal to `a` or `b`, eight bytes per step
/// like [`find_byte`] (the lower of the two lowest flags is a true match).
#[inline]
pub(crate) fn find_either(haystack: &[u8], a: u8, b: u8) -> Option<usize> {
    let (pa, pb) = (ONES * u64::from(a), ONES * u64::from(b));
    let mut chunks = haystack.chunks_exact(8);
    let mut offset = 0;
    for chunk in &mut chunks {
        let word = u64::from_le_bytes(chunk.try_into().unwrap_or_default());
        let hits = zero_byte_flags(word ^ pa) | zero_byte_flags(word ^ pb);
        if hits != 0 {
            return Some(offset + (hits.trailing_zeros() / 8) as usize);
        }
        offset += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&c| c == a || c == b)
        .map(|i| offset + i)
}

/// Like `value.split(|&b| b == separator)`, found with [`find_byte`].
#[inline]
pub(crate) fn split_byte(value: &[u8], separator: u8) -> impl Iterator<Item = &[u8]> {
    let mut rest = Some(value);
    core::iter::from_fn(move || {
        let current = rest?;
        match find_byte(current, separator) {
            Some(at) => {
                rest = current.get(at + 1..);
                current.get(..at)
            }
            None => {
                rest = None;
                Some(current)
            }
        }
    })
}

/// `bytes` as a `&str` when every byte is ASCII, else `None`.
///
/// Real ids (`webhook-id`, `X-GitHub-Delivery`) are ASCII; checking that
/// eight bytes at a time and skipping the general UTF-8 validation saves
/// about 8 ns per Standard Webhooks verify (1 % at 1 KiB). Non-ASCII ids
/// take `str::from_utf8` as before.
#[inline]
pub(crate) fn ascii_str(bytes: &[u8]) -> Option<&str> {
    if !bytes.is_ascii() {
        return None;
    }
    #[allow(unsafe_code)]
    // SAFETY: every byte is below 0x80 (checked just above), and a string
    // of ASCII bytes is valid UTF-8. This is the check `http`'s
    // `HeaderValue::to_str` makes before the same conversion.
    Some(unsafe { core::str::from_utf8_unchecked(bytes) })
}

/// Length of a hex-encoded tag.
pub(crate) const HEX_TAG_LEN: usize = TAG_LEN * 2;

/// Length of a padded, standard-alphabet base64 tag.
pub(crate) const BASE64_TAG_LEN: usize = 44;

/// Why a tag failed to decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DecodeError {
    /// The encoded text has the wrong number of characters.
    Length,
    /// A character outside the alphabet, or non-canonical padding bits.
    Character,
}

const INVALID: u8 = 0xff;

/// Decodes exactly 64 hex digits (either case) into a 32-byte tag.
///
/// Written as two fixed-length, branch-free loops so that the compiler can
/// vectorise them: first every character to its nibble (and a validity
/// flag), then pairs of nibbles to bytes.
pub(crate) fn decode_hex_tag(input: &[u8]) -> Result<[u8; TAG_LEN], DecodeError> {
    let Ok(input) = <&[u8; HEX_TAG_LEN]>::try_from(input) else {
        return Err(DecodeError::Length);
    };
    let mut nibbles = [0u8; HEX_TAG_LEN];
    let mut bad = 0u8;
    for (nibble, &c) in nibbles.iter_mut().zip(input) {
        let digit = c.wrapping_sub(b'0');
        let letter = (c | 0x20).wrapping_sub(b'a');
        let is_digit = digit < 10;
        let is_letter = letter < 6;
        *nibble = if is_digit {
            digit
        } else {
            letter.wrapping_add(10)
        };
        bad |= u8::from(!(is_digit | is_letter));
    }
    if bad != 0 {
        return Err(DecodeError::Character);
    }
    let mut out = [0u8; TAG_LEN];
    for (byte, pair) in out.iter_mut().zip(nibbles.chunks_exact(2)) {
        *byte = (pair[0] << 4) | pair[1];
    }
    Ok(out)
}

const B64_ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

const fn base64_table() -> [u8; 256] {
    let mut table = [INVALID; 256];
    let mut i = 0;
    while i < 64 {
        table[B64_ALPHABET[i] as usize] = i as u8;
        i += 1;
    }
    table
}

static BASE64: [u8; 256] = base64_table();

/// The base64 symbols of eight 6-bit values held one per byte of `x`,
/// computed eight at a time with byte-wise arithmetic on a `u64`.
///
/// The values are secret (they come from a computed MAC), so indexing a
/// table with them could leak them through the cache; instead each byte
/// gets `'A' + v`, corrected by a constant for each range boundary it lies
/// above (`v > 25`: lower case, `v > 51`: digits, `v > 61`: `+`, `v > 62`:
/// `/`). Every intermediate stays below 256 in each byte, so no carry or
/// borrow crosses into the next one.
#[inline(always)]
fn base64_symbols(x: u64) -> u64 {
    const fn splat(b: u8) -> u64 {
        u64::from_ne_bytes([b; 8])
    }
    const HIGH: u64 = splat(0x80);
    // 0xff in each byte whose value is above `n` (values are below 64):
    // the top bit of `v + 127 - n`, widened to the whole byte by taking
    // the byte's 0x01 from the next byte's 0x01 (shifts and subtractions
    // only, which the compiler can run on two groups at once in vector
    // registers; multiplications by the corrections could not).
    let above = |n: u8| {
        let top = (x + splat(127 - n)) & HIGH;
        (top << 1).wrapping_sub(top >> 7)
    };
    let up = x + splat(b'A') + (above(25) & splat(6)) + (above(62) & splat(3));
    up - (above(51) & splat(75)) - (above(61) & splat(15))
}

/// The 44 characters of padded standard base64 for a tag, spelled out
/// from [`Base64Tag::encode`]; the tests hold it to the general encoder.
#[cfg(test)]
pub(crate) fn encode_base64_tag(tag: &[u8; TAG_LEN]) -> [u8; BASE64_TAG_LEN] {
    let words = Base64Tag::encode(tag).0;
    let mut text = [0u8; 48];
    for (out, word) in text.chunks_exact_mut(8).zip(words) {
        out.copy_from_slice(&word.to_le_bytes());
    }
    let mut out = [0u8; BASE64_TAG_LEN];
    out.copy_from_slice(&text[..BASE64_TAG_LEN]);
    out
}

/// The padded base64 text of a tag as six little-endian words of eight
/// symbols (the last holds the final three symbols, `=`, and four zero
/// bytes), for [`Base64Tag::matches`].
///
/// Kept as words from the encoder to the comparison: spelling the text out
/// as bytes and reading it back as words made the processor wait on its
/// store buffer (loads that span several smaller stores cannot be
/// forwarded).
#[derive(Clone, Copy)]
pub(crate) struct Base64Tag([u64; 6]);

impl Base64Tag {
    /// Encodes `tag` in constant time (no branch or memory access depends
    /// on it). Only the canonical spelling of a tag (trailing `=`, zero
    /// unused bits) can match the result, which is exactly the set of
    /// inputs the strict decoder accepts.
    #[inline]
    pub(crate) fn encode(tag: &[u8; TAG_LEN]) -> Self {
        // Six bytes (48 bits) make eight symbols: five groups cover 30
        // bytes, and the last two bytes, zero-extended, make the last group
        // (whose fourth symbol is replaced by padding).
        //
        // The tag is read as two 16-byte halves and the groups are cut out
        // of them in registers: 8-byte reads at 6-byte steps would straddle
        // the stores that just wrote the tag, and such loads have to wait
        // for those stores to complete. (`black_box` keeps the compiler
        // from turning the shifts back into those reads.)
        let mut half = [0u8; 16];
        half.copy_from_slice(&tag[..16]);
        let low = core::hint::black_box(u128::from_le_bytes(half));
        half.copy_from_slice(&tag[16..]);
        let high = core::hint::black_box(u128::from_le_bytes(half));
        let mut words = [0u64; 6];
        for (g, word) in words.iter_mut().enumerate() {
            // Bytes 6g.. (first byte lowest), then as a 48-bit big-endian
            // number: the group's 48 bits, first byte most significant.
            let at = 6 * g;
            let bytes = if at < 16 {
                (low >> (8 * at)) | high.checked_shl(8 * (16 - at) as u32).unwrap_or(0)
            } else {
                high >> (8 * (at - 16))
            };
            let n = ((bytes as u64) << 16).swap_bytes();
            // Spread them into one 6-bit value per byte, first symbol in
            // the lowest byte: 24 bits per 32-bit half, then 12 bits per
            // 16-bit quarter, then 6 bits per byte.
            let x = ((n >> 24) & 0xff_ffff) | ((n & 0xff_ffff) << 32);
            let x = ((x >> 12) & 0x0000_0fff_0000_0fff) | ((x & 0x0000_0fff_0000_0fff) << 16);
            let x = ((x >> 6) & 0x003f_003f_003f_003f) | ((x & 0x003f_003f_003f_003f) << 8);
            *word = base64_symbols(x);
        }
        words[5] = (words[5] & 0x00ff_ffff) | (u64::from(b'=') << 24);
        Base64Tag(words)
    }

    /// Whether `sent` is exactly this text, compared without branching on
    /// the contents (only on the length, which is public).
    #[inline]
    pub(crate) fn matches(&self, sent: &[u8]) -> bool {
        let Ok(sent) = <&[u8; BASE64_TAG_LEN]>::try_from(sent) else {
            return false;
        };
        let mut diff = 0u64;
        for (expected, chunk) in self.0.iter().zip(sent.chunks_exact(8)) {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            diff |= expected ^ u64::from_le_bytes(word);
        }
        let tail = u32::from_le_bytes([sent[40], sent[41], sent[42], sent[43]]);
        diff |= self.0[5] ^ u64::from(tail);
        core::hint::black_box(diff) == 0
    }
}

/// Decodes exactly 44 characters of padded standard base64 into a 32-byte
/// tag. The single trailing `=` is required and the unused low bits of the
/// last symbol must be zero, so every tag has exactly one accepted spelling.
///
/// Verification no longer decodes (see [`Base64Tag`]); this is kept
/// as the reference the encoded comparison is tested against.
#[cfg(test)]
pub(crate) fn decode_base64_tag(input: &[u8]) -> Result<[u8; TAG_LEN], DecodeError> {
    if input.len() != BASE64_TAG_LEN {
        return Err(DecodeError::Length);
    }
    if input[43] != b'=' {
        return Err(DecodeError::Character);
    }
    let mut out = [0u8; TAG_LEN];
    let mut bad = 0u8;
    // Ten full groups of four symbols give 30 bytes.
    for (chunk, quad) in out.chunks_exact_mut(3).zip(input[..40].chunks_exact(4)) {
        let a = BASE64[usize::from(quad[0])];
        let b = BASE64[usize::from(quad[1])];
        let c = BASE64[usize::from(quad[2])];
        let d = BASE64[usize::from(quad[3])];
        bad |= (a | b | c | d) & 0xc0;
        let n = (u32::from(a) << 18) | (u32::from(b) << 12) | (u32::from(c) << 6) | u32::from(d);
        chunk[0] = (n >> 16) as u8;
        chunk[1] = (n >> 8) as u8;
        chunk[2] = n as u8;
    }
    // The last group carries two bytes in three symbols plus padding.
    let a = BASE64[usize::from(input[40])];
    let b = BASE64[usize::from(input[41])];
    let c = BASE64[usize::from(input[42])];
    bad |= (a | b | c) & 0xc0;
    bad |= c & 0x03; // non-canonical trailing bits
    let n = (u32::from(a) << 18) | (u32::from(b) << 12) | (u32::from(c) << 6);
    out[30] = (n >> 16) as u8;
    out[31] = (n >> 8) as u8;
    if bad != 0 {
        return Err(DecodeError::Character);
    }
    Ok(out)
}

/// Decodes standard-alphabet base64 of any length, padded or not. Used for
/// secrets at construction time, where allocation is fine.
pub(crate) fn decode_base64(input: &[u8]) -> Option<Vec<u8>> {
    let unpadded = match input {
        [rest @ .., b'=', b'='] => rest,
        [rest @ .., b'='] => rest,
        all => all,
    };
    let padded_len = input.len() != unpadded.len();
    if unpadded.len() % 4 == 1 || (padded_len && !input.len().is_multiple_of(4)) {
        return None;
    }
    let mut out = Vec::with_capacity(unpadded.len() / 4 * 3 + 2);
    let mut acc = 0u32;
    let mut bits = 0u32;
    for &symbol in unpadded {
        let value = BASE64[usize::from(symbol)];
        if value == INVALID {
            return None;
        }
        acc = (acc << 6) | u32::from(value);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    // Leftover bits must be zero for a canonical encoding.
    if acc != 0 {
        return None;
    }
    Some(out)
}

/// Lowercase hex of `bytes`.
pub(crate) fn encode_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

/// Padded standard-alphabet base64 of `bytes`.
pub(crate) fn encode_base64(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        let symbols = [(n >> 18) & 63, (n >> 12) & 63, (n >> 6) & 63, n & 63];
        for (i, s) in symbols.iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(B64_ALPHABET[*s as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Compares two tags without branching on their contents.
///
/// The bytes are folded into one accumulated difference (four 64-bit words
/// OR-ed together) that is only inspected at the end; `black_box` keeps the
/// optimiser from turning the fold into an early exit.
pub(crate) fn tags_equal(a: &[u8; TAG_LEN], b: &[u8]) -> bool {
    let Ok(b) = <&[u8; TAG_LEN]>::try_from(b) else {
        return false;
    };
    let mut diff = 0u64;
    for (x, y) in a.chunks_exact(8).zip(b.chunks_exact(8)) {
        let x = u64::from_ne_bytes(x.try_into().unwrap_or_default());
        let y = u64::from_ne_bytes(y.try_into().unwrap_or_default());
        diff |= x ^ y;
    }
    core::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    #[test]
    fn find_and_split_match_std() {
        let samples: [&[u8]; 9] = [
            b"",
            b",",
            b",,",
            b"a",
            b"t=1,v1=ab",
            b"0123456789abcdef,",
            b"0123456789abcdef0123456789abcdef,x,",
            b"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            b"v1,abc v1,def  v2,x ",
        ];
        for sample in samples {
            for separator in [b',', b' ', b'x'] {
                let ours: Vec<&[u8]> = split_byte(sample, separator).collect();
                let std: Vec<&[u8]> = sample.split(|&b| b == separator).collect();
                assert_eq!(ours, std, "{sample:?} on {separator}");
                assert_eq!(
                    find_byte(sample, separator),
                    sample.iter().position(|&b| b == separator)
                );
                assert_eq!(
                    find_either(sample, separator, b'9'),
                    sample.iter().position(|&b| b == separator || b == b'9')
                );
            }
        }
        // Every position of a single hit, across the 16-byte steps.
        for len in 0..50 {
            for at in 0..len {
                let mut hay = vec![b'a'; len];
                hay[at] = b',';
                assert_eq!(find_byte(&hay, b','), Some(at));
            }
            assert_eq!(find_byte(&vec![b'a'; len], b','), None);
        }
    }

    use super::*;

    #[test]
    fn hex_round_trip_and_case() {
        let tag: [u8; 32] = core::array::from_fn(|i| (i * 7 + 3) as u8);
        let hex = encode_hex(&tag);
        assert_eq!(decode_hex_tag(hex.as_bytes()), Ok(tag));
        assert_eq!(decode_hex_tag(hex.to_uppercase().as_bytes()), Ok(tag));
    }

    #[test]
    fn hex_accepts_exactly_the_hex_alphabet() {
        for c in 0..=255u8 {
            let mut input = [b'0'; HEX_TAG_LEN];
            input[17] = c;
            let decoded = decode_hex_tag(&input);
            if c.is_ascii_hexdigit() {
                let value = char::from(c).to_digit(16).unwrap() as u8;
                assert_eq!(decoded.unwrap()[8], value, "{c:#x}");
            } else {
                assert_eq!(decoded, Err(DecodeError::Character), "{c:#x}");
            }
        }
    }

    #[test]
    fn hex_rejects_bad_input() {
        let hex = "ab".repeat(32);
        assert_eq!(
            decode_hex_tag(&hex.as_bytes()[..62]),
            Err(DecodeError::Length)
        );
        assert_eq!(decode_hex_tag(b""), Err(DecodeError::Length));
        let mut bad = hex.clone().into_bytes();
        bad[10] = b'g';
        assert_eq!(decode_hex_tag(&bad), Err(DecodeError::Character));
        bad[10] = b' ';
        assert_eq!(decode_hex_tag(&bad), Err(DecodeError::Character));
        bad[10] = 0xc3;
        assert_eq!(decode_hex_tag(&bad), Err(DecodeError::Character));
    }

    #[test]
    fn base64_round_trip() {
        for seed in 0..8u8 {
            let tag: [u8; 32] = core::array::from_fn(|i| (i as u8).wrapping_mul(31) ^ seed);
            let b64 = encode_base64(&tag);
            assert_eq!(b64.len(), BASE64_TAG_LEN);
            assert_eq!(decode_base64_tag(b64.as_bytes()), Ok(tag));
            assert_eq!(decode_base64(b64.as_bytes()).as_deref(), Some(&tag[..]));
        }
    }

    #[test]
    fn base64_tag_is_strict() {
        let b64 = encode_base64(&[0xa5; 32]);
        let bytes = b64.as_bytes();
        assert_eq!(decode_base64_tag(&bytes[..43]), Err(DecodeError::Length));
        let mut url_safe = bytes.to_vec();
        url_safe[0] = b'-';
        assert_eq!(decode_base64_tag(&url_safe), Err(DecodeError::Character));
        let mut no_pad = bytes.to_vec();
        no_pad[43] = b'A';
        assert_eq!(decode_base64_tag(&no_pad), Err(DecodeError::Character));
        // Flip a trailing bit that carries no data: a second spelling of the
        // same tag must not be accepted.
        let mut sloppy = bytes.to_vec();
        let last = BASE64[usize::from(sloppy[42])] | 1;
        sloppy[42] = B64_ALPHABET[usize::from(last)];
        assert_eq!(decode_base64_tag(&sloppy), Err(DecodeError::Character));
    }

    #[test]
    fn base64_symbols_match_the_alphabet() {
        // Every value in every lane, next to every other value: a lane's
        // flag is widened with a borrow from the lane above it, and the top
        // lane's is shifted out of the word.
        for a in 0..64u8 {
            for b in 0..64u8 {
                let values = [a, b, a, b, a, b, a, b];
                let symbols = base64_symbols(u64::from_le_bytes(values)).to_le_bytes();
                for (lane, (&symbol, &v)) in symbols.iter().zip(&values).enumerate() {
                    assert_eq!(symbol, B64_ALPHABET[usize::from(v)], "lane {lane}: {v}");
                }
            }
        }
    }

    #[test]
    fn encoded_comparison_refuses_other_spellings() {
        let tag = [0xa5; 32];
        let text = encode_base64_tag(&tag);
        let encoded = Base64Tag::encode(&tag);
        assert!(encoded.matches(&text));
        assert!(!encoded.matches(&text[..43]));
        let mut longer = text.to_vec();
        longer.push(b'=');
        assert!(!encoded.matches(&longer));
        // The same bits with a non-zero unused bit in the last symbol decode
        // to the same tag in lenient decoders; both paths refuse it.
        let mut sloppy = text;
        sloppy[42] = B64_ALPHABET[usize::from(BASE64[usize::from(sloppy[42])] | 1)];
        assert!(!encoded.matches(&sloppy));
        assert_eq!(decode_base64_tag(&sloppy), Err(DecodeError::Character));
        for i in 0..BASE64_TAG_LEN {
            let mut flipped = text;
            flipped[i] ^= 0x01;
            assert!(!encoded.matches(&flipped), "byte {i}");
        }
    }

    /// A tag's text, possibly altered: a byte replaced, cut short or
    /// lengthened, so the strategies reach every branch of the decoder.
    fn altered_text() -> impl proptest::strategy::Strategy<Value = ([u8; 32], Vec<u8>)> {
        use proptest::prelude::*;
        (
            any::<[u8; 32]>(),
            any::<[u8; 32]>(),
            any::<bool>(),
            0..4u8,
            0..BASE64_TAG_LEN,
            any::<u8>(),
        )
            .prop_map(|(tag, other, same, how, at, byte)| {
                let source = if same { tag } else { other };
                let mut text = encode_base64(&source).into_bytes();
                match how {
                    0 => {}
                    1 => text[at] = byte,
                    2 => text.truncate(at),
                    _ => text.insert(at, byte),
                }
                (tag, text)
            })
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        #[test]
        fn encoder_matches_the_general_one(tag in proptest::prelude::any::<[u8; 32]>()) {
            let general = encode_base64(&tag);
            proptest::prop_assert_eq!(&encode_base64_tag(&tag)[..], general.as_bytes());
        }

        /// Comparing in the encoded domain accepts exactly what decoding and
        /// comparing bytes accepted.
        #[test]
        fn encoded_comparison_agrees_with_decoding((tag, text) in altered_text()) {
            let encoded = Base64Tag::encode(&tag).matches(&text);
            let decoded = decode_base64_tag(&text).is_ok_and(|t| tags_equal(&t, &tag));
            proptest::prop_assert_eq!(encoded, decoded);
        }

        #[test]
        fn arbitrary_text_agrees_with_decoding(
            tag in proptest::prelude::any::<[u8; 32]>(),
            text in proptest::collection::vec(proptest::prelude::any::<u8>(), 40..48),
        ) {
            let encoded = Base64Tag::encode(&tag).matches(&text);
            let decoded = decode_base64_tag(&text).is_ok_and(|t| tags_equal(&t, &tag));
            proptest::prop_assert_eq!(encoded, decoded);
        }
    }

    #[test]
    fn base64_any_length() {
        assert_eq!(decode_base64(b"").as_deref(), Some(&b""[..]));
        assert_eq!(decode_base64(b"Zg==").as_deref(), Some(&b"f"[..]));
        assert_eq!(decode_base64(b"Zg").as_deref(), Some(&b"f"[..]));
        assert_eq!(decode_base64(b"Zm8=").as_deref(), Some(&b"fo"[..]));
        assert_eq!(decode_base64(b"Zm9v").as_deref(), Some(&b"foo"[..]));
        assert_eq!(decode_base64(b"Z"), None);
        assert_eq!(decode_base64(b"Zh=="), None);
        assert_eq!(decode_base64(b"Zm9v!"), None);
        assert_eq!(encode_base64(b"f"), "Zg==");
        assert_eq!(encode_base64(b"fo"), "Zm8=");
        assert_eq!(encode_base64(b"foo"), "Zm9v");
    }

    #[test]
    fn ascii_fast_path_agrees_with_from_utf8() {
        let samples: [&[u8]; 7] = [
            b"",
            b"msg_p5jXN8AQM9LWM0D4loKWxJek",
            b"72d3162e-cc78-11e3-81ab-4c9367dc0958",
            b"\x7f\x00 ~",
            "caf\u{e9}-id".as_bytes(),
            b"abcdefgh\x80",
            b"\xff\xfe",
        ];
        for sample in samples {
            let std = core::str::from_utf8(sample).ok();
            match ascii_str(sample) {
                Some(text) => assert_eq!(Some(text), std),
                None => assert!(!sample.is_ascii(), "{sample:?}"),
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        /// Whenever the fast path answers, its text is what
        /// `str::from_utf8` makes of the bytes; it declines exactly the
        /// inputs with a byte above 0x7f. The inputs are ASCII with at most
        /// one byte replaced by a high one (a stray byte or the start of a
        /// character), so both answers are common at every length.
        #[test]
        fn ascii_str_is_the_text_or_nothing(
            ascii in proptest::collection::vec(0u8..0x80, 0..40),
            high in proptest::option::of((proptest::prelude::any::<usize>(), 0x80u8..=0xff)),
        ) {
            let mut bytes = ascii;
            if let Some((at, byte)) = high
                && !bytes.is_empty()
            {
                let at = at % bytes.len();
                bytes[at] = byte;
            }
            let fast = ascii_str(&bytes);
            proptest::prop_assert_eq!(fast.is_some(), bytes.iter().all(|&b| b < 0x80));
            if let Some(text) = fast {
                proptest::prop_assert_eq!(Some(text), core::str::from_utf8(&bytes).ok());
                proptest::prop_assert_eq!(text.as_bytes(), &bytes[..]);
            }
        }

        /// The word-wise searches agree with plain ones, on short values
        /// (whole words, partial last words, overlapping tails) drawn from
        /// a small alphabet: many hits in any lane, and the bytes one away
        /// from a needle, whose borrows could flag a lane that holds none.
        #[test]
        fn searches_agree_with_plain_ones(
            hay in proptest::collection::vec(
                proptest::sample::select(vec![b',', b'-', b'+', b' ', b'!', b'a', 0x00, 0x01, 0x80, 0xff]),
                0..40,
            ),
        ) {
            for (a, b) in [(b',', b' '), (0x00, 0x01), (0xff, b'a')] {
                proptest::prop_assert_eq!(find_byte(&hay, a), hay.iter().position(|&c| c == a));
                proptest::prop_assert_eq!(
                    find_either(&hay, a, b),
                    hay.iter().position(|&c| c == a || c == b)
                );
                let ours: Vec<&[u8]> = split_byte(&hay, a).collect();
                let plain: Vec<&[u8]> = hay.split(|&c| c == a).collect();
                proptest::prop_assert_eq!(ours, plain);
            }
        }
    }

    #[test]
    fn tag_comparison() {
        let a = [7u8; 32];
        let mut b = a;
        assert!(tags_equal(&a, &b));
        for i in 0..32 {
            let mut c = a;
            c[i] ^= 0x80;
            assert!(!tags_equal(&a, &c), "byte {i}");
        }
        b[31] ^= 1;
        assert!(!tags_equal(&a, &b));
        assert!(!tags_equal(&a, &b[..31]));
    }
}
