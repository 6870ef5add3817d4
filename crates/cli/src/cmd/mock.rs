//! `flagwire mock`: the emulator, with the credentials a client needs.

use std::io::Write as _;

use flagwire_mock::esauti::EsautiServer;
use flagwire_mock::{MockServer, Seed};
use serde_json::{Map, Value};

use crate::cli::MockArgs;
use crate::error::CliError;

/// A random `whsec_` secret: 24 bytes of base64-free alphanumerics.
fn random_secret() -> String {
    let mut s = String::from("whsec_");
    s.extend(std::iter::repeat_with(fastrand::alphanumeric).take(32));
    s
}

/// Quotes a value for a POSIX shell when it needs it.
fn shell_quote(value: &str) -> String {
    let plain = !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:@%+=,".contains(c));
    if plain {
        value.to_owned()
    } else {
        format!("'{}'", value.replace('\'', "'\\''"))
    }
}

/// `api_key` is the global `--api-key`: the emulator accepts it (first, so
/// it is the key printed), as `flagwire-mock --api-key` does.
pub async fn run(args: MockArgs, api_key: Option<&str>, json: bool) -> Result<(), CliError> {
    let mut builder = MockServer::builder().ip(args.host).rest_port(args.port);
    let capture_port = match args.capture_port {
        Some(p) => p,
        None if args.port == 0 => 0,
        None => args.port.checked_add(1).ok_or_else(|| {
            CliError::usage("--port 65535 leaves no port for the capture host; give --capture-port")
        })?,
    };
    builder = builder.capture_port(capture_port);
    for key in api_key
        .into_iter()
        .chain(args.accept_keys.iter().map(String::as_str))
    {
        if key.is_empty() {
            return Err(CliError::usage("an accepted API key is empty"));
        }
        builder = builder.api_key(key);
    }
    let webhook_secret = args.webhook_secret.clone().unwrap_or_else(random_secret);
    builder = builder.webhook_secret(webhook_secret.clone());
    if let Some(path) = &args.seed {
        let seed = Seed::from_file(path)
            .map_err(|e| CliError::usage(format!("{}: {e}", path.display())))?;
        builder = builder.seed(seed);
    }
    let server = builder
        .start()
        .await
        .map_err(|e| CliError::failed(format!("cannot start the emulator: {e}")))?;
    let esauti = if args.no_esauti {
        None
    } else {
        match EsautiServer::builder()
            .ip(args.host)
            .port(args.esauti_port)
            .start()
            .await
        {
            Ok(s) => Some(s),
            Err(e) => {
                server.stop().await;
                return Err(CliError::failed(format!(
                    "cannot start the eSauti emulator: {e}"
                )));
            }
        }
    };

    let mut lines: Vec<(&str, String)> = vec![
        ("SCHEMATIC_API_KEY", server.api_key().to_owned()),
        ("SCHEMATIC_API_URL", server.rest_url()),
        ("SCHEMATIC_CAPTURE_URL", server.capture_url()),
        ("SCHEMATIC_DATASTREAM_URL", server.datastream_url()),
        ("SCHEMATIC_WEBHOOK_SECRET", webhook_secret),
    ];
    if let Some(e) = &esauti {
        lines.push(("ESAUTI_API_URL", e.rest_url()));
        lines.push(("ESAUTI_EVENTS_URL", e.events_url()));
        lines.push(("ESAUTI_API_KEY", e.api_key().to_owned()));
        if let Some(secret) = e.hmac_secret() {
            lines.push(("ESAUTI_HMAC_SECRET", secret.to_owned()));
        }
    }
    {
        let mut out = std::io::stdout().lock();
        if json {
            let map: Map<String, Value> = lines
                .iter()
                .map(|(k, v)| ((*k).to_owned(), Value::String(v.clone())))
                .collect();
            let _ = writeln!(out, "{}", Value::Object(map));
        } else {
            let prefix = if args.export { "export " } else { "" };
            for (k, v) in &lines {
                let _ = writeln!(out, "{prefix}{k}={}", shell_quote(v));
            }
        }
        let _ = out.flush();
    }
    match args.duration {
        Some(d) => eprintln!("flagwire mock: serving for {d:?} (Ctrl-C stops it)"),
        None => eprintln!("flagwire mock: serving until Ctrl-C"),
    }
    super::until_stopped(args.duration).await;
    if let Some(e) = esauti {
        e.stop().await;
    }
    server.stop().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(
            shell_quote("http://127.0.0.1:8787"),
            "http://127.0.0.1:8787"
        );
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        assert_eq!(shell_quote(""), "''");
        assert!(random_secret().starts_with("whsec_"));
        assert_eq!(random_secret().len(), 38);
    }
}
