//! `flagwire`: the command line of the flagwire SDK.
//!
//! Check flags, send `identify`/`track` events, call any Schematic or eSauti
//! API operation, sign, verify, send and receive webhooks, replay dead
//! letters and serve the local emulator. See `docs/cli.md` for the guide,
//! or run `flagwire --help`.

mod cli;
mod cmd;
mod config;
mod error;
mod ops;
mod util;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::Cli;
use crate::error::{CliError, EXIT_BROKEN_PIPE, EXIT_FAILURE, EXIT_USAGE, one_line};

fn main() -> ExitCode {
    install_panic_hook();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return clap_error(&e),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!(
                "error: cannot start the async runtime: {}",
                one_line(&e.to_string())
            );
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        runtime.block_on(cmd::run(cli))
    }));
    // Blocking reads of standard input may still be parked: do not wait.
    runtime.shutdown_timeout(std::time::Duration::from_millis(500));
    match outcome {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(e)) => report(&e),
        // The hook already printed one line.
        Err(_) => ExitCode::from(EXIT_FAILURE),
    }
}

/// Prints `error: …` (one line) and returns the error's exit status.
fn report(e: &CliError) -> ExitCode {
    if e.has_message() {
        let style = util::Style::stderr();
        eprintln!("{} {e}", style.red("error:"));
    }
    e.to_exit()
}

/// Help and version go to standard output with status 0; any other parse
/// error is one line on standard error with status 2.
fn clap_error(e: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = e.print();
            ExitCode::SUCCESS
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            ExitCode::from(EXIT_USAGE)
        }
        _ => {
            let rendered = e.render().to_string();
            let mut lines = rendered.lines().filter(|l| !l.trim().is_empty());
            let mut first = lines
                .next()
                .unwrap_or("invalid arguments")
                .trim_start_matches("error:")
                .trim()
                .to_owned();
            // "the following required arguments were not provided:" lists
            // them on the next lines.
            if first.ends_with(':') {
                let listed: Vec<&str> = lines
                    .take_while(|l| l.starts_with("  "))
                    .map(str::trim)
                    .collect();
                first.push(' ');
                first.push_str(&listed.join(" "));
            }
            let style = util::Style::stderr();
            eprintln!("{} {first} (see --help)", style.red("error:"));
            ExitCode::from(EXIT_USAGE)
        }
    }
}

/// A panic is a bug: one line, no backtrace.
fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".to_owned());
        // `flagwire ... | head`: the reader went away. Not a bug; end
        // quietly with the status a SIGPIPE would give.
        if message.starts_with("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(EXIT_BROKEN_PIPE.into());
        }
        let place = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!(
            "error: internal error: {}{place} (please report it)",
            one_line(&message)
        );
    }));
}
