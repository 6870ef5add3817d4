//! Stream ids: the `<millis>-<seq>` cursors stamped on every pushed change.
//!
//! The platform numbers its change stream the way Redis streams do: the
//! wall-clock milliseconds of the change and a sequence number that
//! distinguishes changes within one millisecond. Clients compare them
//! numerically (never as strings) and send the last one they applied as
//! `replay_from` when they reconnect, so the emulator must issue them
//! strictly increasing even when the clock stands still or steps back.

use std::fmt;
use std::str::FromStr;

/// One position in the change stream; ordered as the platform orders them
/// (milliseconds first, then the sequence number).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct StreamId {
    millis: u64,
    seq: u64,
}

impl StreamId {
    /// The id from its two parts.
    #[cfg(test)]
    pub(crate) fn new(millis: u64, seq: u64) -> StreamId {
        StreamId { millis, seq }
    }

    /// The id that follows `last` at wall-clock time `now_millis`: the
    /// current millisecond with sequence 0 when the clock has moved past
    /// `last`, otherwise `last`'s millisecond with the next sequence number,
    /// so ids never go backwards.
    pub(crate) fn after(last: Option<StreamId>, now_millis: u64) -> StreamId {
        match last {
            Some(last) if now_millis <= last.millis => match last.seq.checked_add(1) {
                Some(seq) => StreamId {
                    millis: last.millis,
                    seq,
                },
                None => StreamId {
                    millis: last.millis.saturating_add(1),
                    seq: 0,
                },
            },
            _ => StreamId {
                millis: now_millis,
                seq: 0,
            },
        }
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.millis, self.seq)
    }
}

/// Why a string is not a stream id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct InvalidStreamId;

impl fmt::Display for InvalidStreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a stream id is <milliseconds>-<sequence>, two unsigned integers")
    }
}

impl FromStr for StreamId {
    type Err = InvalidStreamId;

    fn from_str(s: &str) -> Result<StreamId, InvalidStreamId> {
        fn number(part: &str) -> Result<u64, InvalidStreamId> {
            // `u64::from_str` accepts a leading `+`; ids never carry one.
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(InvalidStreamId);
            }
            part.parse().map_err(|_| InvalidStreamId)
        }
        let (millis, seq) = s.split_once('-').ok_or(InvalidStreamId)?;
        Ok(StreamId {
            millis: number(millis)?,
            seq: number(seq)?,
        })
    }
}

/// Milliseconds since the Unix epoch, 0 for a clock set before it.
pub(crate) fn unix_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_and_prints_the_redis_form() {
        let id: StreamId = "1760000000000-7".parse().unwrap();
        assert_eq!(id, StreamId::new(1_760_000_000_000, 7));
        assert_eq!(id.to_string(), "1760000000000-7");
        for bad in [
            "",
            "-",
            "1-",
            "-1",
            "1",
            "1-2-3",
            "a-1",
            "1-b",
            "+1-2",
            "1-+2",
            " 1-2",
            "18446744073709551616-0",
        ] {
            assert_eq!(bad.parse::<StreamId>(), Err(InvalidStreamId), "{bad:?}");
        }
    }

    #[test]
    fn orders_numerically_not_lexically() {
        let a: StreamId = "999-0".parse().unwrap();
        let b: StreamId = "1000-0".parse().unwrap();
        let c: StreamId = "1000-10".parse().unwrap();
        let d: StreamId = "1000-9".parse().unwrap();
        assert!(a < b && b < d && d < c);
    }

    #[test]
    fn the_sequence_carries_into_the_next_millisecond() {
        let last = StreamId::new(5, u64::MAX);
        assert_eq!(StreamId::after(Some(last), 5), StreamId::new(6, 0));
    }

    proptest! {
        #[test]
        fn display_round_trips(millis in any::<u64>(), seq in any::<u64>()) {
            let id = StreamId::new(millis, seq);
            prop_assert_eq!(id.to_string().parse::<StreamId>(), Ok(id));
        }

        /// Whatever the clock does, every id is greater than the one before.
        #[test]
        fn ids_strictly_increase(clock in proptest::collection::vec(0u64..50, 1..200)) {
            let mut last = None;
            for now in clock {
                let next = StreamId::after(last, now);
                if let Some(prev) = last {
                    prop_assert!(next > prev, "{} after {}", next, prev);
                }
                last = Some(next);
            }
        }

        #[test]
        fn parsing_arbitrary_text_never_panics(s in "\\PC*") {
            let _ = s.parse::<StreamId>();
        }
    }
}
