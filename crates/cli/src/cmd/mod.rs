//! The commands.

mod api;
mod check;
mod events;
mod misc;
mod mock;
mod webhook;

use std::collections::BTreeMap;

use crate::cli::{Cli, Command, EventsCommand, Global};
use crate::config::Settings;
use crate::error::CliError;

/// Runs the parsed command line.
pub async fn run(cli: Cli) -> Result<(), CliError> {
    let json = cli.global.json;
    match cli.command {
        // Neither needs settings: they work without a configuration.
        Command::Completions(args) => misc::completions(&args),
        Command::Mock(args) => mock::run(args, cli.global.api_key.as_deref(), json).await,
        command => {
            let settings = settings(&cli.global)?;
            match command {
                Command::Check(args) => check::run(args, &settings, json).await,
                Command::Identify(args) => events::identify(args, &settings, json).await,
                Command::Track(args) => events::track(args, &settings, json).await,
                Command::Api(args) => api::run(args, &settings, json).await,
                Command::Webhook(cmd) => webhook::run(cmd, &settings, json).await,
                Command::Events(EventsCommand::Replay(args)) => {
                    events::replay(args, &settings, json).await
                }
                Command::Config(cmd) => misc::config(&cmd, &settings, json),
                Command::Completions(_) | Command::Mock(_) => Ok(()),
            }
        }
    }
}

/// Resolves the settings from the global flags, the environment and the
/// configuration file.
fn settings(global: &Global) -> Result<Settings, CliError> {
    let mut flags = BTreeMap::new();
    let pairs = [
        ("api_key", &global.api_key),
        ("api_url", &global.api_url),
        ("capture_url", &global.capture_url),
        ("datastream_url", &global.datastream_url),
        ("esauti_api_url", &global.esauti_api_url),
        ("esauti_events_url", &global.esauti_events_url),
        ("esauti_api_key", &global.esauti_api_key),
        ("esauti_hmac_secret", &global.esauti_hmac_secret),
    ];
    for (name, value) in pairs {
        if let Some(v) = value {
            flags.insert(name, v.clone());
        }
    }
    let env = |name: &str| std::env::var(name).ok();
    Settings::resolve(
        &flags,
        &env,
        global.config.as_deref(),
        global.profile.as_deref(),
    )
}

/// A Schematic client builder from the settings: key, REST and capture URLs.
fn schematic_builder(settings: &Settings) -> Result<flagwire::schematic::ClientBuilder, CliError> {
    let key = settings.require("api_key")?;
    let mut builder = flagwire::schematic::Client::builder(key);
    if let Some(url) = settings.get("api_url") {
        check_url(url, "api_url")?;
        builder = builder.base_url(url);
    }
    if let Some(url) = settings.get("capture_url") {
        check_url(url, "capture_url")?;
        builder = builder.capture_url(url);
    }
    Ok(builder)
}

/// An `http(s)://` URL with a host, or a usage error naming the setting.
fn check_url(url: &str, name: &str) -> Result<(), CliError> {
    let ok = url
        .parse::<http::Uri>()
        .ok()
        .filter(|u| matches!(u.scheme_str(), Some("http" | "https")) && u.host().is_some());
    match ok {
        Some(_) => Ok(()),
        None => Err(CliError::usage(format!(
            "{name} `{url}` is not an http:// or https:// URL"
        ))),
    }
}

/// Waits for Ctrl-C, or forever when it cannot be listened for.
async fn ctrl_c() {
    if tokio::signal::ctrl_c().await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Waits for Ctrl-C or `limit`, whichever comes first.
async fn until_stopped(limit: Option<std::time::Duration>) {
    match limit {
        Some(d) => {
            tokio::select! {
                () = ctrl_c() => {}
                () = tokio::time::sleep(d) => {}
            }
        }
        None => ctrl_c().await,
    }
}
