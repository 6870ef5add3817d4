//! `flagwire-mock`: serve the emulator on fixed ports.
//!
//! ```text
//! flagwire-mock [--port N] [--capture-port N] [--host IP] [--seed FILE] [--api-key KEY]...
//!               [--esauti-port N]
//! ```

use std::net::IpAddr;
use std::process::ExitCode;

use flagwire_mock::esauti::EsautiServer;
use flagwire_mock::{MockServer, Seed};

const USAGE: &str = "\
usage: flagwire-mock [options]

options:
  --port N           REST API port (default 8787; 0 picks a free port)
  --capture-port N   event-capture port (default: the REST port + 1; 0 picks a free port)
  --host IP          address to bind (default 127.0.0.1)
  --seed FILE        load seed data (JSON) before serving
  --api-key KEY      accept this API key (repeatable; default sch_dev_mock)
  --webhook-secret S sign webhook deliveries with this secret
  --esauti-port N    also serve the eSauti emulator (REST under /api and event
                     injection, default credentials) on this port (0 picks one)
  -h, --help         show this help";

#[derive(Debug)]
struct Args {
    port: u16,
    capture_port: Option<u16>,
    host: IpAddr,
    seed: Option<String>,
    api_keys: Vec<String>,
    webhook_secret: Option<String>,
    esauti_port: Option<u16>,
}

fn parse_args(mut it: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
    let mut args = Args {
        port: 8787,
        capture_port: None,
        host: IpAddr::from([127, 0, 0, 1]),
        seed: None,
        api_keys: Vec::new(),
        webhook_secret: None,
        esauti_port: None,
    };
    while let Some(arg) = it.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n.to_owned(), Some(v.to_owned())),
            _ => (arg.clone(), None),
        };
        let mut value = |what: &str| -> Result<String, String> {
            inline
                .clone()
                .or_else(|| it.next())
                .ok_or_else(|| format!("{what} needs a value"))
        };
        match name.as_str() {
            "-h" | "--help" => return Ok(None),
            "--port" => {
                args.port = value("--port")?
                    .parse()
                    .map_err(|_| "--port must be a port number".to_owned())?;
            }
            "--capture-port" => {
                args.capture_port = Some(
                    value("--capture-port")?
                        .parse()
                        .map_err(|_| "--capture-port must be a port number".to_owned())?,
                );
            }
            "--host" => {
                args.host = value("--host")?
                    .parse()
                    .map_err(|_| "--host must be an IP address".to_owned())?;
            }
            "--seed" => args.seed = Some(value("--seed")?),
            "--api-key" => args.api_keys.push(value("--api-key")?),
            "--webhook-secret" => args.webhook_secret = Some(value("--webhook-secret")?),
            "--esauti-port" => {
                args.esauti_port = Some(
                    value("--esauti-port")?
                        .parse()
                        .map_err(|_| "--esauti-port must be a port number".to_owned())?,
                );
            }
            other => return Err(format!("unknown argument: {other}")),
        }
    }
    Ok(Some(args))
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(Some(args)) => args,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(msg) => {
            eprintln!("error: {msg}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let mut builder = MockServer::builder().ip(args.host).rest_port(args.port);
        let capture_port = match args.capture_port {
            Some(p) => p,
            None if args.port == 0 => 0,
            None => args.port.saturating_add(1),
        };
        builder = builder.capture_port(capture_port);
        for key in &args.api_keys {
            builder = builder.api_key(key.clone());
        }
        if let Some(secret) = &args.webhook_secret {
            builder = builder.webhook_secret(secret.clone());
        }
        if let Some(path) = &args.seed {
            match Seed::from_file(path) {
                Ok(seed) => builder = builder.seed(seed),
                Err(e) => {
                    eprintln!("error: {path}: {e}");
                    return ExitCode::FAILURE;
                }
            }
        }
        let server = match builder.start().await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        };
        println!("REST API:     {}", server.rest_url());
        println!("Capture host: {}", server.capture_url());
        println!("DataStream:   {}", server.datastream_url());
        println!("API keys:     {}", server.api_keys().join(", "));
        let esauti = match args.esauti_port {
            None => None,
            Some(port) => match EsautiServer::builder()
                .ip(args.host)
                .port(port)
                .start()
                .await
            {
                Ok(s) => {
                    println!("eSauti REST:   {}", s.rest_url());
                    println!("eSauti events: {}", s.events_url());
                    println!("eSauti key:    {}", s.api_key());
                    Some(s)
                }
                Err(e) => {
                    eprintln!("error: eSauti emulator: {e}");
                    server.stop().await;
                    return ExitCode::FAILURE;
                }
            },
        };
        println!("Press Ctrl-C to stop.");
        let _ = tokio::signal::ctrl_c().await;
        if let Some(esauti) = esauti {
            esauti.stop().await;
        }
        server.stop().await;
        ExitCode::SUCCESS
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Option<Args>, String> {
        parse_args(args.iter().map(|s| (*s).to_owned()))
    }

    #[test]
    fn parses_options() {
        let a = parse(&[
            "--port",
            "9000",
            "--capture-port=9005",
            "--api-key",
            "k1",
            "--api-key",
            "k2",
            "--esauti-port",
            "0",
        ])
        .unwrap()
        .unwrap();
        assert_eq!(a.port, 9000);
        assert_eq!(a.capture_port, Some(9005));
        assert_eq!(a.api_keys, vec!["k1", "k2"]);
        assert_eq!(a.esauti_port, Some(0));
        assert!(parse(&["--esauti-port", "x"]).is_err());
        assert!(parse(&["--help"]).unwrap().is_none());
        assert!(parse(&["--port"]).is_err());
        assert!(parse(&["--port", "x"]).is_err());
        assert!(parse(&["--bogus"]).is_err());
    }
}
