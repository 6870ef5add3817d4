//! Parsing of `date` trait values, without allocation.
//!
//! Accepted layouts (the first that fits wins):
//!
//! | layout | example |
//! |---|---|
//! | ISO date | `2024-03-05` |
//! | date, time, zone abbreviation | `2024-03-05 14:30:00 PST` |
//! | RFC 3339, optional fraction | `2024-03-05T14:30:00.123-08:00` |
//! | JS date string | `Tue Mar 05 2024` |
//! | JS `Date.toString()` | `Tue Mar 05 2024 14:30:00 GMT-0800 (Pacific Standard Time)` |
//! | JS date, time, zone abbreviation | `Tue Mar 05 2024 14:30:00 PST` |
//! | JS date, time, GMT offset | `Tue Mar 05 2024 14:30:00 GMT-0800` |
//!
//! A zone *abbreviation* (three to five ASCII letters) carries no offset
//! and is read as UTC; a numeric offset is applied. The text in parentheses
//! after a `GMT±hhmm` offset is a display name and is ignored. Anything else
//! is not a date ("nil"), which sorts before every date.

use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn new(text: &'a str) -> Self {
        Self {
            bytes: text.as_bytes(),
            pos: 0,
        }
    }

    fn done(&self) -> bool {
        self.pos == self.bytes.len()
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn eat(&mut self, byte: u8) -> Option<()> {
        if self.peek() == Some(byte) {
            self.pos += 1;
            Some(())
        } else {
            None
        }
    }

    fn eat_str(&mut self, text: &str) -> Option<()> {
        let end = self.pos + text.len();
        if self.bytes.get(self.pos..end) == Some(text.as_bytes()) {
            self.pos = end;
            Some(())
        } else {
            None
        }
    }

    /// Exactly `n` ASCII digits.
    fn digits(&mut self, n: usize) -> Option<u32> {
        let slice = self.bytes.get(self.pos..self.pos + n)?;
        let mut value = 0u32;
        for &b in slice {
            if !b.is_ascii_digit() {
                return None;
            }
            value = value * 10 + u32::from(b - b'0');
        }
        self.pos += n;
        Some(value)
    }

    /// One or two ASCII digits.
    fn digits_1_2(&mut self) -> Option<u32> {
        let first = self.digits(1)?;
        match self.peek() {
            Some(b) if b.is_ascii_digit() => {
                self.pos += 1;
                Some(first * 10 + u32::from(b - b'0'))
            }
            _ => Some(first),
        }
    }

    /// Three ASCII letters, returned lower-cased.
    fn word3(&mut self) -> Option<[u8; 3]> {
        let slice = self.bytes.get(self.pos..self.pos + 3)?;
        let mut out = [0u8; 3];
        for (o, &b) in out.iter_mut().zip(slice) {
            if !b.is_ascii_alphabetic() {
                return None;
            }
            *o = b.to_ascii_lowercase();
        }
        self.pos += 3;
        Some(out)
    }

    /// A zone abbreviation: 3 to 5 ASCII uppercase letters.
    fn zone_abbreviation(&mut self) -> Option<()> {
        let start = self.pos;
        while matches!(self.peek(), Some(b'A'..=b'Z')) {
            self.pos += 1;
        }
        let len = self.pos - start;
        if (3..=5).contains(&len) {
            Some(())
        } else {
            self.pos = start;
            None
        }
    }
}

fn month_from_number(n: u32) -> Option<Month> {
    Month::try_from(u8::try_from(n).ok()?).ok()
}

fn month_from_name(name: [u8; 3]) -> Option<Month> {
    Some(match &name {
        b"jan" => Month::January,
        b"feb" => Month::February,
        b"mar" => Month::March,
        b"apr" => Month::April,
        b"may" => Month::May,
        b"jun" => Month::June,
        b"jul" => Month::July,
        b"aug" => Month::August,
        b"sep" => Month::September,
        b"oct" => Month::October,
        b"nov" => Month::November,
        b"dec" => Month::December,
        _ => return None,
    })
}

fn is_weekday(name: [u8; 3]) -> bool {
    matches!(
        &name,
        b"mon" | b"tue" | b"wed" | b"thu" | b"fri" | b"sat" | b"sun"
    )
}

fn date(year: u32, month: Month, day: u32) -> Option<Date> {
    Date::from_calendar_date(i32::try_from(year).ok()?, month, u8::try_from(day).ok()?).ok()
}

/// `HH:MM:SS` with a one- or two-digit hour.
fn clock(c: &mut Cursor<'_>) -> Option<Time> {
    let hour = c.digits_1_2()?;
    c.eat(b':')?;
    let minute = c.digits(2)?;
    c.eat(b':')?;
    let second = c.digits(2)?;
    Time::from_hms(
        u8::try_from(hour).ok()?,
        u8::try_from(minute).ok()?,
        u8::try_from(second).ok()?,
    )
    .ok()
}

fn offset(sign: u8, hours: u32, minutes: u32) -> Option<UtcOffset> {
    let (h, m) = (i8::try_from(hours).ok()?, i8::try_from(minutes).ok()?);
    let (h, m) = if sign == b'-' { (-h, -m) } else { (h, m) };
    UtcOffset::from_hms(h, m, 0).ok()
}

fn assemble(date: Date, time: Time, offset: UtcOffset) -> OffsetDateTime {
    PrimitiveDateTime::new(date, time).assume_offset(offset)
}

/// Parses `text` as a date in one of the accepted layouts.
pub(crate) fn parse_date(text: &str) -> Option<OffsetDateTime> {
    let first = *text.as_bytes().first()?;
    if first.is_ascii_digit() {
        parse_iso(text)
    } else if first.is_ascii_alphabetic() {
        parse_js(text)
    } else {
        None
    }
}

fn parse_iso(text: &str) -> Option<OffsetDateTime> {
    let mut c = Cursor::new(text);
    let year = c.digits(4)?;
    c.eat(b'-')?;
    let month = month_from_number(c.digits(2)?)?;
    c.eat(b'-')?;
    let day = c.digits(2)?;
    let date = date(year, month, day)?;
    if c.done() {
        return Some(assemble(date, Time::MIDNIGHT, UtcOffset::UTC));
    }
    match c.peek()? {
        b' ' => {
            c.pos += 1;
            let time = clock(&mut c)?;
            c.eat(b' ')?;
            c.zone_abbreviation()?;
            c.done().then(|| assemble(date, time, UtcOffset::UTC))
        }
        b'T' => {
            c.pos += 1;
            let time = clock(&mut c)?;
            let mut nanos = 0u32;
            if c.eat(b'.').is_some() {
                let mut digits = 0u32;
                while let Some(b) = c.peek().filter(u8::is_ascii_digit) {
                    c.pos += 1;
                    if digits < 9 {
                        nanos = nanos * 10 + u32::from(b - b'0');
                    }
                    digits += 1;
                }
                if digits == 0 {
                    return None;
                }
                for _ in digits.min(9)..9 {
                    nanos *= 10;
                }
            }
            let time = time.replace_nanosecond(nanos).ok()?;
            let off = match c.peek()? {
                b'Z' => {
                    c.pos += 1;
                    UtcOffset::UTC
                }
                sign @ (b'+' | b'-') => {
                    c.pos += 1;
                    let h = c.digits(2)?;
                    c.eat(b':')?;
                    let m = c.digits(2)?;
                    offset(sign, h, m)?
                }
                _ => return None,
            };
            c.done().then(|| assemble(date, time, off))
        }
        _ => None,
    }
}

fn parse_js(text: &str) -> Option<OffsetDateTime> {
    let mut c = Cursor::new(text);
    if !is_weekday(c.word3()?) {
        return None;
    }
    c.eat(b' ')?;
    let month = month_from_name(c.word3()?)?;
    c.eat(b' ')?;
    let day = c.digits(2)?;
    c.eat(b' ')?;
    let year = c.digits(4)?;
    let date = date(year, month, day)?;
    if c.done() {
        return Some(assemble(date, Time::MIDNIGHT, UtcOffset::UTC));
    }
    c.eat(b' ')?;
    let time = clock(&mut c)?;
    c.eat(b' ')?;
    if c.eat_str("GMT").is_some() {
        if let Some(sign @ (b'+' | b'-')) = c.peek() {
            c.pos += 1;
            let h = c.digits(2)?;
            let m = c.digits(2)?;
            let off = offset(sign, h, m)?;
            if c.done() {
                return Some(assemble(date, time, off));
            }
            c.eat_str(" (")?;
            let rest = &c.bytes[c.pos..];
            let ok = rest.len() >= 2
                && rest.last() == Some(&b')')
                && !rest[..rest.len() - 1].contains(&b')');
            return ok.then(|| assemble(date, time, off));
        }
        // A bare `GMT` is an abbreviation.
        return c.done().then(|| assemble(date, time, UtcOffset::UTC));
    }
    c.zone_abbreviation()?;
    c.done().then(|| assemble(date, time, UtcOffset::UTC))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn accepted_layouts() {
        let cases = [
            ("2024-03-05", datetime!(2024-03-05 0:00 UTC)),
            ("2024-03-05 14:30:00 PST", datetime!(2024-03-05 14:30 UTC)),
            ("2024-03-05 14:30:00 UTC", datetime!(2024-03-05 14:30 UTC)),
            ("2024-03-05T14:30:00Z", datetime!(2024-03-05 14:30 UTC)),
            (
                "2024-03-05T14:30:00.5Z",
                datetime!(2024-03-05 14:30:00.5 UTC),
            ),
            (
                "2024-03-05T14:30:00.123456789123+00:00",
                datetime!(2024-03-05 14:30:00.123456789 UTC),
            ),
            ("2024-03-05T14:30:00-08:00", datetime!(2024-03-05 22:30 UTC)),
            ("Tue Mar 05 2024", datetime!(2024-03-05 0:00 UTC)),
            (
                "Tue Mar 05 2024 14:30:00 GMT-0800 (Pacific Standard Time)",
                datetime!(2024-03-05 22:30 UTC),
            ),
            (
                "Tue Mar 05 2024 14:30:00 GMT+0100 (CET)",
                datetime!(2024-03-05 13:30 UTC),
            ),
            (
                "Tue Mar 05 2024 14:30:00 PST",
                datetime!(2024-03-05 14:30 UTC),
            ),
            (
                "Tue Mar 05 2024 14:30:00 GMT-0800",
                datetime!(2024-03-05 22:30 UTC),
            ),
            (
                "Tue Mar 05 2024 4:30:00 GMT",
                datetime!(2024-03-05 4:30 UTC),
            ),
        ];
        for (text, want) in cases {
            assert_eq!(parse_date(text), Some(want), "{text}");
        }
    }

    #[test]
    fn rejected_values() {
        for text in [
            "",
            "yesterday",
            "2024-3-05",
            "2024-02-30",
            "2024-03-05T14:30:00",
            "2024-03-05T14:30:00.Z",
            "2024-03-05T25:30:00Z",
            "2024-03-05 14:30:00",
            "2024-03-05 14:30:00 pst",
            "Xyz Mar 05 2024",
            "Tue Foo 05 2024",
            "Tue Mar 5 2024",
            "Tue Mar 05 2024 14:30:00 GMT-0800 (PST",
            "2024-03-05Z",
            "12345",
        ] {
            assert_eq!(parse_date(text), None, "{text}");
        }
    }
}
