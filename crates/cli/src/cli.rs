//! The command-line grammar (clap derive).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::ops::Service;
use crate::util::{parse_duration, parse_pair, parse_trait};

const MAIN_AFTER: &str = "\
Examples:
  flagwire mock --port 0 --export > mock.env & sleep 1; . ./mock.env
  flagwire check new-editor --company id=acme --explain
  flagwire track api-call --company id=acme --quantity 3
  flagwire api listCompanies --param q=acme --all --json
  echo '{}' | flagwire webhook sign --scheme stripe --secret whsec_x
  flagwire webhook listen --port 3000 --scheme schematic --secret whsec_x
  flagwire events replay dead-letters.jsonl

Settings: flags, then environment (SCHEMATIC_API_KEY, SCHEMATIC_API_URL,
SCHEMATIC_CAPTURE_URL, SCHEMATIC_DATASTREAM_URL, SCHEMATIC_WEBHOOK_SECRET,
ESAUTI_API_URL, ESAUTI_EVENTS_URL, ESAUTI_API_KEY, ESAUTI_HMAC_SECRET), then
[profile.<name>] of ~/.config/flagwire/config.toml (--config, --profile,
FLAGWIRE_CONFIG, FLAGWIRE_PROFILE). Secrets are never printed.

Exit status:
  0  success (a flag that is off is a success too)
  1  failure: events not delivered, letters left after a replay, I/O error
  2  usage error: bad arguments, input or configuration; nothing was sent
  3  a webhook signature did not verify
  4  the API answered with an error or could not be reached
  5  `check --exit-status` and the flag is off";

/// The flagwire command line: poke Schematic and eSauti from a shell.
#[derive(Debug, Parser)]
#[command(
    name = "flagwire",
    version,
    about = "Check flags, send events, call any API operation, sign and receive webhooks, replay dead letters, serve the emulator.",
    after_help = MAIN_AFTER,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    /// Global options.
    #[command(flatten)]
    pub global: Global,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes. `Debug` redacts the secrets.
#[derive(Args)]
pub struct Global {
    /// Print machine-readable JSON on standard output.
    #[arg(long, global = true)]
    pub json: bool,
    /// The configuration file (default ~/.config/flagwire/config.toml).
    #[arg(long, global = true, value_name = "FILE", help_heading = "Settings")]
    pub config: Option<PathBuf>,
    /// The profile of the configuration file (default `default`).
    #[arg(long, global = true, value_name = "NAME", help_heading = "Settings")]
    pub profile: Option<String>,
    /// Schematic API key [env: SCHEMATIC_API_KEY].
    #[arg(long, global = true, value_name = "KEY", help_heading = "Settings")]
    pub api_key: Option<String>,
    /// Schematic REST base URL [env: SCHEMATIC_API_URL].
    #[arg(long, global = true, value_name = "URL", help_heading = "Settings")]
    pub api_url: Option<String>,
    /// Event-capture base URL [env: SCHEMATIC_CAPTURE_URL].
    #[arg(long, global = true, value_name = "URL", help_heading = "Settings")]
    pub capture_url: Option<String>,
    /// DataStream WebSocket URL [env: SCHEMATIC_DATASTREAM_URL].
    #[arg(long, global = true, value_name = "URL", help_heading = "Settings")]
    pub datastream_url: Option<String>,
    /// eSauti REST base URL [env: ESAUTI_API_URL].
    #[arg(long, global = true, value_name = "URL", help_heading = "Settings")]
    pub esauti_api_url: Option<String>,
    /// eSauti Event Injection URL [env: ESAUTI_EVENTS_URL].
    #[arg(long, global = true, value_name = "URL", help_heading = "Settings")]
    pub esauti_events_url: Option<String>,
    /// eSauti API key [env: ESAUTI_API_KEY].
    #[arg(long, global = true, value_name = "KEY", help_heading = "Settings")]
    pub esauti_api_key: Option<String>,
    /// eSauti event-signing secret [env: ESAUTI_HMAC_SECRET].
    #[arg(long, global = true, value_name = "SECRET", help_heading = "Settings")]
    pub esauti_hmac_secret: Option<String>,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the emulator and print the credentials a client needs.
    #[command(after_help = "\
Examples:
  flagwire mock                          # REST on 8787, capture on 8788, eSauti on a free port
  flagwire mock --port 0 --export > .env && set -a && . ./.env
  flagwire mock --json --for 10m --seed seed.json")]
    Mock(MockArgs),
    /// Evaluate a flag: value, reason, rule, source and entitlement.
    #[command(after_help = "\
Examples:
  flagwire check new-editor --company id=acme
  flagwire check ai-credits --company id=acme --preflight usage=3 --explain
  flagwire check new-editor --company id=acme --watch --for 5m
  flagwire check new-editor --company id=acme --exit-status && echo on

An answer that only a default could give (the API failed) exits 4 unless
--allow-default is given.")]
    Check(CheckArgs),
    /// Send an `identify` event and wait until it is delivered.
    #[command(after_help = "\
Examples:
  flagwire identify --user email=ada@example.com --company id=acme --trait plan=pro --trait seats:=5")]
    Identify(IdentifyArgs),
    /// Send a `track` event and wait until it is delivered.
    #[command(after_help = "\
Examples:
  flagwire track api-call --company id=acme --quantity 3
  flagwire track export --company id=acme --user email=ada@example.com --dead-letter dl.jsonl")]
    Track(TrackArgs),
    /// Call any API operation by its id.
    #[command(after_help = "\
Examples:
  flagwire api --list companies
  flagwire api getCompany --param company_id=comp_123
  flagwire api lookupCompany --param keys.id=acme
  flagwire api upsertCompany --body '{\"keys\":{\"id\":\"acme\"},\"name\":\"Acme\"}'
  flagwire api listCompanies --all --json > companies.json
  flagwire api --service esauti listContacts --param search=ada")]
    Api(ApiArgs),
    /// Sign, verify, send and receive webhooks.
    #[command(subcommand)]
    Webhook(WebhookCommand),
    /// Dead letters: replay them.
    #[command(subcommand)]
    Events(EventsCommand),
    /// Print a shell completion script.
    #[command(after_help = "\
Examples:
  flagwire completions bash > ~/.local/share/bash-completion/completions/flagwire
  flagwire completions zsh > \"${fpath[1]}/_flagwire\"
  flagwire completions fish > ~/.config/fish/completions/flagwire.fish")]
    Completions(CompletionsArgs),
    /// Show the settings in use (secrets redacted) and where they came from.
    #[command(subcommand)]
    Config(ConfigCommand),
}

/// `flagwire mock`. `Debug` redacts the webhook secret.
#[derive(Args)]
pub struct MockArgs {
    /// REST API port (0 picks a free port).
    #[arg(long, default_value_t = 8787)]
    pub port: u16,
    /// Event-capture port (default: the REST port + 1, or a free one with --port 0).
    #[arg(long)]
    pub capture_port: Option<u16>,
    /// Address to bind.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: std::net::IpAddr,
    /// Load seed data (JSON) before serving.
    #[arg(long, value_name = "FILE")]
    pub seed: Option<PathBuf>,
    /// Accept this API key (repeatable; default sch_dev_mock).
    #[arg(long = "accept-key", value_name = "KEY")]
    pub accept_keys: Vec<String>,
    /// Sign webhook deliveries with this secret (default: a random whsec_ secret).
    #[arg(long, value_name = "SECRET")]
    pub webhook_secret: Option<String>,
    /// eSauti emulator port (default: a free port).
    #[arg(long, default_value_t = 0)]
    pub esauti_port: u16,
    /// Do not serve the eSauti emulator.
    #[arg(long)]
    pub no_esauti: bool,
    /// Prefix each line with `export `.
    #[arg(long)]
    pub export: bool,
    /// Stop after this long (default: until Ctrl-C).
    #[arg(long = "for", value_name = "DURATION", value_parser = parse_duration)]
    pub duration: Option<Duration>,
}

/// Who a check or an event is for.
#[derive(Debug, Args, Clone, Default)]
pub struct Who {
    /// A company key (repeatable): --company id=acme.
    #[arg(long = "company", value_name = "KEY=VALUE", value_parser = parse_pair)]
    pub company: Vec<(String, String)>,
    /// A user key (repeatable): --user email=ada@example.com.
    #[arg(long = "user", value_name = "KEY=VALUE", value_parser = parse_pair)]
    pub user: Vec<(String, String)>,
}

/// `flagwire check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The flag key.
    pub flag: String,
    /// Company and user.
    #[command(flatten)]
    pub who: Who,
    /// Preflight usage (repeatable): usage=N, event:SUBTYPE=N or credit:ID=N.
    #[arg(long, value_name = "KIND=N", value_parser = parse_pair)]
    pub preflight: Vec<(String, String)>,
    /// Print every detail of the answer.
    #[arg(long)]
    pub explain: bool,
    /// Evaluate locally over DataStream and print every change.
    #[arg(long)]
    pub watch: bool,
    /// With --watch: stop after this long (default: until Ctrl-C).
    #[arg(long = "for", value_name = "DURATION", value_parser = parse_duration, requires = "watch")]
    pub duration: Option<Duration>,
    /// The value when no one can answer.
    #[arg(long, value_name = "BOOL")]
    pub default: Option<bool>,
    /// Deadline of the API request.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub timeout: Option<Duration>,
    /// Exit 5 when the flag is off.
    #[arg(long)]
    pub exit_status: bool,
    /// Exit 0 even when only a default could answer.
    #[arg(long)]
    pub allow_default: bool,
}

/// Delivery options of `identify` and `track`.
#[derive(Debug, Args)]
pub struct Delivery {
    /// How long to wait for delivery.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Append undelivered events to this JSON Lines file (replay it with `events replay`).
    #[arg(long, value_name = "FILE")]
    pub dead_letter: Option<PathBuf>,
}

/// `flagwire identify`.
#[derive(Debug, Args)]
pub struct IdentifyArgs {
    /// Company and user.
    #[command(flatten)]
    pub who: Who,
    /// The user's name.
    #[arg(long)]
    pub name: Option<String>,
    /// The company's name.
    #[arg(long)]
    pub company_name: Option<String>,
    /// A user trait (repeatable): key=text or key:=json.
    #[arg(long = "trait", value_name = "KEY=VALUE", value_parser = parse_trait)]
    pub traits: Vec<(String, serde_json::Value)>,
    /// Delivery.
    #[command(flatten)]
    pub delivery: Delivery,
}

/// `flagwire track`.
#[derive(Debug, Args)]
pub struct TrackArgs {
    /// The event name.
    pub event: String,
    /// Company and user.
    #[command(flatten)]
    pub who: Who,
    /// The quantity (default 1).
    #[arg(long)]
    pub quantity: Option<i64>,
    /// A trait (repeatable): key=text or key:=json.
    #[arg(long = "trait", value_name = "KEY=VALUE", value_parser = parse_trait)]
    pub traits: Vec<(String, serde_json::Value)>,
    /// Delivery.
    #[command(flatten)]
    pub delivery: Delivery,
}

/// `flagwire api`.
#[derive(Debug, Args)]
pub struct ApiArgs {
    /// The operation id, e.g. listCompanies.
    #[arg(required_unless_present = "list")]
    pub operation: Option<String>,
    /// A path or query parameter (repeatable): name=value; maps as name.key=value.
    #[arg(short, long = "param", value_name = "NAME=VALUE", value_parser = parse_pair)]
    pub params: Vec<(String, String)>,
    /// The JSON body: '{...}', @file.json or - (standard input).
    #[arg(long, value_name = "JSON|@FILE|-")]
    pub body: Option<String>,
    /// Page through a list operation (limit/offset) and print every item.
    #[arg(long)]
    pub all: bool,
    /// Page size with --all.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub page_size: u64,
    /// Which API.
    #[arg(long, value_enum, default_value_t = Service::Schematic)]
    pub service: Service,
    /// List the operations (those containing FILTER, if given as the operation).
    #[arg(long)]
    pub list: bool,
    /// Deadline of each request.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub timeout: Duration,
}

/// Webhook signature schemes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SchemeArg {
    /// Schematic: X-Schematic-Webhook-Signature and -Timestamp.
    Schematic,
    /// Standard Webhooks: webhook-id, webhook-timestamp, webhook-signature.
    #[value(alias = "svix", alias = "standard-webhooks")]
    Standard,
    /// Stripe: Stripe-Signature.
    Stripe,
    /// GitHub: X-Hub-Signature-256.
    Github,
    /// Flagsmith: X-Flagsmith-Signature.
    Flagsmith,
    /// eSauti: X-eSauti-Signature and -Timestamp (method and path signed).
    Esauti,
}

/// The secret of a webhook command. `Debug` redacts it.
#[derive(Args)]
pub struct SecretArg {
    /// The signing secret [env: SCHEMATIC_WEBHOOK_SECRET].
    #[arg(long, value_name = "SECRET")]
    pub secret: Option<String>,
}

/// `flagwire webhook …`.
#[derive(Debug, Subcommand)]
pub enum WebhookCommand {
    /// Print the headers a sender would send for the body on standard input.
    #[command(after_help = "\
Examples:
  echo -n '{\"event\":\"test\"}' | flagwire webhook sign --scheme schematic --secret whsec_x
  flagwire webhook sign --scheme standard --secret whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw --id msg_1 < body.json")]
    Sign(SignArgs),
    /// Verify a delivery: headers as flags, body on standard input.
    #[command(after_help = "\
Examples:
  flagwire webhook verify --scheme schematic --secret whsec_x \\
      --header 'X-Schematic-Webhook-Signature: 9f…' --header 'X-Schematic-Webhook-Timestamp: 1700000000' < body.json

Exits 0 when the signature verifies, 3 with the reason when it does not.")]
    Verify(VerifyArgs),
    /// Send a signed test delivery to a local handler.
    #[command(after_help = "\
Examples:
  flagwire webhook send --to http://127.0.0.1:3000/hook --scheme schematic --secret whsec_x --event company.updated
  flagwire webhook send --to http://127.0.0.1:3000/hook --scheme github --secret s --body @push.json")]
    Send(SendArgs),
    /// Receive deliveries on a local port, verify and print each one.
    #[command(after_help = "\
Examples:
  flagwire webhook listen --port 3000 --scheme schematic --secret whsec_x
  flagwire webhook listen --port 0 --scheme stripe --secret whsec_x --count 1 --json
  flagwire webhook listen --port 4000 --secret whsec_x --forward-to http://127.0.0.1:3000/hook

Answers 200 to deliveries that verify (or, with --forward-to, what the
forward target answered) and 400 to the others. Exits 3 if any delivery did
not verify.")]
    Listen(ListenArgs),
}

/// `flagwire webhook sign`.
#[derive(Debug, Args)]
pub struct SignArgs {
    /// The scheme.
    #[arg(long, value_enum)]
    pub scheme: SchemeArg,
    /// The secret.
    #[command(flatten)]
    pub secret: SecretArg,
    /// The timestamp to sign (Unix seconds; default now).
    #[arg(long)]
    pub timestamp: Option<i64>,
    /// The message id (Standard Webhooks; default a random msg_ id).
    #[arg(long)]
    pub id: Option<String>,
    /// The request method (eSauti).
    #[arg(long, default_value = "POST")]
    pub method: String,
    /// The request path (eSauti).
    #[arg(long, default_value = "/")]
    pub path: String,
    /// The body: '{...}', @file or - (default: standard input).
    #[arg(long, value_name = "TEXT|@FILE|-")]
    pub body: Option<String>,
}

/// `flagwire webhook verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The scheme.
    #[arg(long, value_enum)]
    pub scheme: SchemeArg,
    /// The secret (repeatable for rotation is not needed here: one secret).
    #[command(flatten)]
    pub secret: SecretArg,
    /// A received header (repeatable): 'Name: value'.
    #[arg(long = "header", short = 'H', value_name = "NAME: VALUE", value_parser = parse_header)]
    pub headers: Vec<(String, String)>,
    /// How far the signed timestamp may be from now.
    #[arg(long, value_name = "DURATION", default_value = "300s", value_parser = parse_duration)]
    pub tolerance: Duration,
    /// Accept a signed timestamp of any age.
    #[arg(long)]
    pub ignore_age: bool,
    /// The request method (eSauti).
    #[arg(long, default_value = "POST")]
    pub method: String,
    /// The request path (eSauti).
    #[arg(long, default_value = "/")]
    pub path: String,
    /// The body: '{...}', @file or - (default: standard input).
    #[arg(long, value_name = "TEXT|@FILE|-")]
    pub body: Option<String>,
}

/// `flagwire webhook send`.
#[derive(Debug, Args)]
pub struct SendArgs {
    /// Where to send it.
    #[arg(long, value_name = "URL")]
    pub to: String,
    /// The scheme.
    #[arg(long, value_enum, default_value_t = SchemeArg::Schematic)]
    pub scheme: SchemeArg,
    /// The secret.
    #[command(flatten)]
    pub secret: SecretArg,
    /// The event name of the sample body (ignored with --body).
    #[arg(long, default_value = "company.updated")]
    pub event: String,
    /// The body instead of a sample: '{...}', @file or -.
    #[arg(long, value_name = "JSON|@FILE|-")]
    pub body: Option<String>,
    /// Deadline of the request.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub timeout: Duration,
}

/// `flagwire webhook listen`.
#[derive(Debug, Args)]
pub struct ListenArgs {
    /// The port (0 picks a free one; the address is printed first).
    #[arg(long, default_value_t = 3000)]
    pub port: u16,
    /// Address to bind.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: std::net::IpAddr,
    /// The scheme.
    #[arg(long, value_enum, default_value_t = SchemeArg::Schematic)]
    pub scheme: SchemeArg,
    /// The secret (without one, deliveries are printed unverified).
    #[command(flatten)]
    pub secret: SecretArg,
    /// How far the signed timestamp may be from now.
    #[arg(long, value_name = "DURATION", default_value = "300s", value_parser = parse_duration)]
    pub tolerance: Duration,
    /// Pass each verified delivery on (same method, headers and body) to this URL and
    /// answer with its status.
    #[arg(long, value_name = "URL")]
    pub forward_to: Option<String>,
    /// Stop after this many deliveries.
    #[arg(long)]
    pub count: Option<u64>,
    /// Stop after this long.
    #[arg(long = "for", value_name = "DURATION", value_parser = parse_duration)]
    pub duration: Option<Duration>,
}

/// `flagwire events …`.
#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// Resend the letters of a dead-letter file (Schematic or eSauti).
    #[command(after_help = "\
Examples:
  flagwire events replay dead-letters.jsonl
  flagwire events replay esauti-dead.jsonl --kind esauti

Delivered letters leave the file; the rest stay. Exits 1 when any stay.")]
    Replay(ReplayArgs),
}

/// Dead-letter file formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LetterKind {
    /// Detect from the first letter.
    Auto,
    /// Schematic capture events.
    Schematic,
    /// eSauti Event Injection.
    Esauti,
}

/// `flagwire events replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The dead-letter file (JSON Lines).
    pub file: PathBuf,
    /// The file's format.
    #[arg(long, value_enum, default_value_t = LetterKind::Auto)]
    pub kind: LetterKind,
}

/// `flagwire completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// `flagwire config …`.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print every setting, its source, secrets redacted.
    Show,
    /// Print the path of the configuration file in use.
    Path,
}

/// `Some("<redacted>")` for a set secret.
fn redacted(secret: &Option<String>) -> Option<&'static str> {
    secret.as_ref().map(|_| "<redacted>")
}

impl std::fmt::Debug for Global {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Global")
            .field("json", &self.json)
            .field("config", &self.config)
            .field("profile", &self.profile)
            .field("api_key", &redacted(&self.api_key))
            .field("api_url", &self.api_url)
            .field("capture_url", &self.capture_url)
            .field("datastream_url", &self.datastream_url)
            .field("esauti_api_url", &self.esauti_api_url)
            .field("esauti_events_url", &self.esauti_events_url)
            .field("esauti_api_key", &redacted(&self.esauti_api_key))
            .field("esauti_hmac_secret", &redacted(&self.esauti_hmac_secret))
            .finish()
    }
}

impl std::fmt::Debug for SecretArg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretArg")
            .field("secret", &redacted(&self.secret))
            .finish()
    }
}

impl std::fmt::Debug for MockArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockArgs")
            .field("port", &self.port)
            .field("capture_port", &self.capture_port)
            .field("host", &self.host)
            .field("seed", &self.seed)
            .field("accept_keys", &self.accept_keys.len())
            .field("webhook_secret", &redacted(&self.webhook_secret))
            .field("esauti_port", &self.esauti_port)
            .field("no_esauti", &self.no_esauti)
            .field("export", &self.export)
            .field("duration", &self.duration)
            .finish()
    }
}

/// Parses `Name: value`.
fn parse_header(text: &str) -> Result<(String, String), String> {
    match text.split_once(':') {
        Some((name, value)) if !name.trim().is_empty() => {
            Ok((name.trim().to_owned(), value.trim().to_owned()))
        }
        _ => Err(format!("`{text}` is not `Name: value`")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_grammar_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn debug_output_redacts_secrets() {
        let cli = Cli::try_parse_from([
            "flagwire",
            "--api-key",
            "sch_hidden_1",
            "--esauti-hmac-secret",
            "hidden_2",
            "webhook",
            "sign",
            "--scheme",
            "github",
            "--secret",
            "hidden_3",
        ])
        .unwrap();
        let text = format!("{cli:?}");
        assert!(!text.contains("hidden"), "{text}");
        assert!(text.contains("<redacted>"), "{text}");
        let cli =
            Cli::try_parse_from(["flagwire", "mock", "--webhook-secret", "hidden_4"]).unwrap();
        assert!(!format!("{cli:?}").contains("hidden"));
    }

    #[test]
    fn headers() {
        assert_eq!(
            parse_header("X-A: b: c").unwrap(),
            ("X-A".to_owned(), "b: c".to_owned())
        );
        assert!(parse_header("nothing").is_err());
        assert!(parse_header(": x").is_err());
    }
}
