//! eSauti dead-letter lines (the JSONL file `replay` reads) and Event
//! Injection answers from arbitrary bytes: reading never panics, a line that
//! reads writes back to a line that reads as the same letter, and any
//! answer body gives a receipt.
#![no_main]

use flagwire::esauti::{DeadLetter, Receipt};
use flagwire_fuzz::take;
use http::StatusCode;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(line) = std::str::from_utf8(data) {
        match DeadLetter::from_json_line(line) {
            Ok(letter) => {
                let written = letter
                    .to_json_line()
                    .expect("a letter that was read writes");
                assert!(!written.contains('\n'), "a JSONL line holds no newline");
                let again = DeadLetter::from_json_line(&written).unwrap_or_else(|e| {
                    panic!("written letter does not read back: {e}\n{written}")
                });
                assert_eq!(again, letter, "{written}");
            }
            Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::InvalidData),
        }
    }

    let ([status], body) = take::<1>(data);
    let status = StatusCode::from_u16(200 + u16::from(status) % 100).expect("2xx is a status");
    let receipt = Receipt::parse(status, body);
    assert_eq!(receipt.http_status, status);
    assert!(receipt.raw.is_object());
    assert_eq!(receipt.attempts, 1);
});
