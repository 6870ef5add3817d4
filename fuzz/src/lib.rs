//! Helpers shared by the fuzz targets: cutting one input into several fields.

/// Splits `data` into `N` fields at `0xff` bytes (a byte that never occurs in
/// UTF-8 text, so JSON and header fields stay intact). The last field takes
/// the rest, separators included; missing fields are empty.
pub fn fields<const N: usize>(data: &[u8]) -> [&[u8]; N] {
    let mut out: [&[u8]; N] = [&[]; N];
    let mut parts = data.splitn(N, |&b| b == 0xff);
    for slot in &mut out {
        *slot = parts.next().unwrap_or_default();
    }
    out
}

/// Takes `N` bytes from the front of `data` (zero-padded when short) and
/// returns them with the rest.
pub fn take<const N: usize>(data: &[u8]) -> ([u8; N], &[u8]) {
    let mut head = [0u8; N];
    let n = N.min(data.len());
    head[..n].copy_from_slice(&data[..n]);
    (head, &data[n..])
}

/// An HTTP status from two input bytes: a 2xx (200..=207) when the top bit
/// of `hi` is clear, so half of the inputs reach the success decoders, and
/// otherwise any status 100..=999.
pub fn status(hi: u8, lo: u8) -> http::StatusCode {
    let code = if hi & 0x80 == 0 {
        200 + u16::from(lo) % 8
    } else {
        100 + u16::from_be_bytes([hi & 0x7f, lo]) % 900
    };
    http::StatusCode::from_u16(code).expect("100..=999 is a status")
}

/// The text of `bytes` if it is UTF-8.
pub fn text(bytes: &[u8]) -> Option<&str> {
    std::str::from_utf8(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_split_at_ff_and_pad() {
        let [a, b, c] = fields::<3>(b"x\xffy\xffz\xffw");
        assert_eq!((a, b, c), (&b"x"[..], &b"y"[..], &b"z\xffw"[..]));
        let [a, b] = fields::<2>(b"only");
        assert_eq!((a, b), (&b"only"[..], &b""[..]));
    }

    #[test]
    fn status_covers_2xx_and_the_whole_range() {
        assert_eq!(status(0x00, 0x04), http::StatusCode::NO_CONTENT);
        assert_eq!(status(0x81, 0x30), http::StatusCode::NOT_FOUND);
        assert_eq!(status(0x80, 0x00).as_u16(), 100);
        assert_eq!(status(0xff, 0xff).as_u16(), 100 + 0x7fff % 900);
    }

    #[test]
    fn take_pads_short_input() {
        assert_eq!(take::<3>(b"ab"), ([b'a', b'b', 0], &b""[..]));
        assert_eq!(take::<1>(b"ab"), ([b'a'], &b"b"[..]));
    }
}
