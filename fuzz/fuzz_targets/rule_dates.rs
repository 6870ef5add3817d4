//! Trait date parsing over arbitrary text: never panics (no offset or
//! calendar overflow), and a date it reads is in `time`'s range and written
//! back as RFC 3339 reads as the same instant.
#![no_main]

use flagwire_core::rules::parse_date;
use libfuzzer_sys::fuzz_target;
use time::format_description::well_known::Rfc3339;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Some(at) = parse_date(text) else { return };
    // RFC 3339 covers years 0..=9999 only.
    if let Ok(rfc) = at.format(&Rfc3339) {
        let back =
            parse_date(&rfc).unwrap_or_else(|| panic!("{rfc} (from {text:?}) does not read back"));
        assert_eq!(back, at, "{rfc} from {text:?}");
    }
});
