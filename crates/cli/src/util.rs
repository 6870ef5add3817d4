//! Small parsers and the terminal style shared by the commands.

use std::io::{IsTerminal, Read};
use std::time::Duration;

use serde_json::Value;

use crate::error::CliError;

/// Parses `key=value` (the key must not be empty).
pub fn parse_pair(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_owned(), v.to_owned())),
        Some(_) => Err(format!("`{text}` has an empty key; expected key=value")),
        None => Err(format!("`{text}` is not key=value")),
    }
}

/// Parses a trait: `key=text` gives a string, `key:=json` any JSON value
/// (`seats:=5`, `beta:=true`, `tags:='["a"]'`).
pub fn parse_trait(text: &str) -> Result<(String, Value), String> {
    let eq = text
        .find('=')
        .ok_or_else(|| format!("`{text}` is not key=value or key:=json"))?;
    let (key, raw, is_json) = if eq > 0 && text.as_bytes()[eq - 1] == b':' {
        (&text[..eq - 1], &text[eq + 1..], true)
    } else {
        (&text[..eq], &text[eq + 1..], false)
    };
    if key.trim().is_empty() {
        return Err(format!("`{text}` has an empty key"));
    }
    let value = if is_json {
        serde_json::from_str(raw).map_err(|e| format!("`{key}`: not JSON after `:=`: {e}"))?
    } else {
        Value::String(raw.to_owned())
    };
    Ok((key.trim().to_owned(), value))
}

/// Parses a duration: `500ms`, `3s`, `2m`, `1h`, or a number of seconds
/// (fractions allowed).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (number, unit) = match t.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => (&t[..i], &t[i..]),
        None => (t, "s"),
    };
    let n: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a duration (e.g. 500ms, 3s, 2m)"))?;
    let factor = match unit {
        "ms" => 0.001,
        "s" | "sec" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        _ => return Err(format!("`{text}`: unknown unit `{unit}` (ms, s, m, h)")),
    };
    let secs = n * factor;
    if !secs.is_finite() || !(0.0..=1e9).contains(&secs) {
        return Err(format!("`{text}` is out of range"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Reads a body argument: `@file`, `-` (standard input) or the text itself.
pub fn read_body_arg(arg: &str) -> Result<Vec<u8>, CliError> {
    if arg == "-" {
        read_stdin()
    } else if let Some(path) = arg.strip_prefix('@') {
        std::fs::read(path).map_err(|e| CliError::io(path.to_owned(), e))
    } else {
        Ok(arg.as_bytes().to_vec())
    }
}

/// Reads standard input to the end.
pub fn read_stdin() -> Result<Vec<u8>, CliError> {
    let mut buf = Vec::new();
    std::io::stdin()
        .read_to_end(&mut buf)
        .map_err(|e| CliError::io("standard input", e))?;
    Ok(buf)
}

/// Parses a body as JSON, naming where it came from in the error.
pub fn parse_json_body(bytes: &[u8], origin: &str) -> Result<Value, CliError> {
    serde_json::from_slice(bytes)
        .map_err(|e| CliError::usage(format!("the body ({origin}) is not valid JSON: {e}")))
}

/// Colours for a stream: on only when it is a terminal and `NO_COLOR` is
/// unset.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    on: bool,
}

impl Style {
    /// The style of standard output.
    pub fn stdout() -> Self {
        Style {
            on: std::io::stdout().is_terminal() && no_color_unset(),
        }
    }

    /// The style of standard error.
    pub fn stderr() -> Self {
        Style {
            on: std::io::stderr().is_terminal() && no_color_unset(),
        }
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.on {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }

    /// Green.
    pub fn green(&self, text: &str) -> String {
        self.paint("32", text)
    }

    /// Red.
    pub fn red(&self, text: &str) -> String {
        self.paint("31", text)
    }

    /// Yellow.
    pub fn yellow(&self, text: &str) -> String {
        self.paint("33", text)
    }

    /// Bold.
    pub fn bold(&self, text: &str) -> String {
        self.paint("1", text)
    }

    /// Dim.
    pub fn dim(&self, text: &str) -> String {
        self.paint("2", text)
    }
}

fn no_color_unset() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Whether standard error is a terminal (for progress lines).
pub fn stderr_is_tty() -> bool {
    std::io::stderr().is_terminal()
}

/// Prints a JSON value on one line (for `--json` streams) or pretty.
pub fn print_json(value: &Value, pretty: bool) {
    let text = if pretty {
        serde_json::to_string_pretty(value)
    } else {
        serde_json::to_string(value)
    };
    // A `Value` always serialises.
    println!("{}", text.unwrap_or_default());
}

/// The Levenshtein distance between two strings, case-insensitive.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.to_lowercase().chars().collect();
    let b: Vec<char> = b.to_lowercase().chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// The current time, RFC 3339, for log lines.
pub fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs() {
        assert_eq!(parse_pair("id=acme").unwrap(), ("id".into(), "acme".into()));
        assert_eq!(parse_pair("q=a=b").unwrap(), ("q".into(), "a=b".into()));
        assert_eq!(parse_pair("k=").unwrap(), ("k".into(), String::new()));
        assert!(parse_pair("=x").is_err());
        assert!(parse_pair("nope").is_err());
    }

    #[test]
    fn traits() {
        assert_eq!(
            parse_trait("plan=pro").unwrap().1,
            Value::String("pro".into())
        );
        assert_eq!(parse_trait("seats:=5").unwrap(), ("seats".into(), 5.into()));
        assert_eq!(parse_trait("on:=true").unwrap().1, Value::Bool(true));
        assert_eq!(parse_trait("n=5").unwrap().1, Value::String("5".into()));
        assert!(parse_trait("x:={").is_err());
        assert!(parse_trait(":=1").is_err());
        assert!(parse_trait("plain").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("3s").unwrap(), Duration::from_secs(3));
        assert_eq!(parse_duration("2").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("1.5").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert!(parse_duration("3 parsecs").is_err());
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn distances() {
        assert_eq!(edit_distance("listCompanies", "listcompanies"), 0);
        assert_eq!(edit_distance("listCompanys", "listCompanies"), 2);
        assert_eq!(edit_distance("", "abc"), 3);
    }
}
