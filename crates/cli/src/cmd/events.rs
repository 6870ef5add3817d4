//! `flagwire identify`, `flagwire track` and `flagwire events replay`.

use std::io::BufRead as _;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use flagwire::events::{DeadLetter, DeadLetterSink, JsonlDeadLetterFile};
use flagwire::schematic::{Client, EventShutdown};
use flagwire_core::events::{CompanyIdentity, IdentifyBody, TrackBody};
use serde_json::{Value, json};

use crate::cli::{Delivery, IdentifyArgs, LetterKind, ReplayArgs, TrackArgs};
use crate::config::Settings;
use crate::error::CliError;
use crate::util::Style;

/// Records what was dead-lettered (for the summary) and, with
/// `--dead-letter`, appends it to a file.
struct Recorder {
    file: Option<JsonlDeadLetterFile>,
    seen: Arc<Mutex<Vec<String>>>,
}

impl DeadLetterSink for Recorder {
    fn dead_letter(&self, letter: &DeadLetter<'_>) -> std::io::Result<()> {
        let mut line = format!(
            "{} event(s) dead-lettered: {}",
            letter.events.len(),
            letter.reason.as_str()
        );
        if let Some(status) = letter.last_status {
            line.push_str(&format!(", last status {status}"));
        }
        if let Some(err) = letter.error {
            line.push_str(&format!(" ({})", crate::error::one_line(err)));
        }
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(line);
        match &self.file {
            Some(f) => f.dead_letter(letter),
            None => Ok(()),
        }
    }

    fn flush(&self) -> std::io::Result<()> {
        match &self.file {
            Some(f) => f.flush(),
            None => Ok(()),
        }
    }
}

/// The dead-letter lines a [`Recorder`] collected.
type Seen = Arc<Mutex<Vec<String>>>;

/// A client whose dead letters go to a [`Recorder`].
fn client(settings: &Settings, delivery: &Delivery) -> Result<(Client, Seen), CliError> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let file = match &delivery.dead_letter {
        Some(path) => Some(
            JsonlDeadLetterFile::open(path)
                .map_err(|e| CliError::io(format!("dead-letter file {}", path.display()), e))?,
        ),
        None => None,
    };
    let recorder = Recorder {
        file,
        seen: seen.clone(),
    };
    let client = super::schematic_builder(settings)?
        .dead_letter(recorder)
        .build()?;
    Ok((client, seen))
}

/// Waits for delivery and reports: the counts, the dead letters, and an
/// error unless every event was delivered.
async fn finish(
    client: Client,
    seen: &Mutex<Vec<String>>,
    delivery: &Delivery,
    what: &str,
    json: bool,
) -> Result<(), CliError> {
    let report: EventShutdown = client.shutdown(delivery.timeout).await;
    let stats = report.buffer;
    let dead: Vec<String> = seen.lock().unwrap_or_else(PoisonError::into_inner).clone();
    let delivered = stats.enqueued > 0 && stats.sent == stats.enqueued;
    if json {
        let v = json!({
            "event": what,
            "delivered": delivered,
            "enqueued": stats.enqueued,
            "sent": stats.sent,
            "batches": stats.batches_sent,
            "retried": stats.retried,
            "dead_lettered": stats.dead_lettered,
            "drained": report.drained,
            "dead_letters": dead,
            "dead_letter_file": delivery.dead_letter.as_ref().map(|p| p.display().to_string()),
        });
        println!("{v}");
    } else {
        let style = Style::stdout();
        let mark = if delivered {
            style.green("delivered")
        } else {
            style.red("NOT delivered")
        };
        println!(
            "{what}: {mark} (enqueued {}, sent {}, retried {}, dead-lettered {})",
            stats.enqueued, stats.sent, stats.retried, stats.dead_lettered
        );
    }
    for line in &dead {
        eprintln!("{line}");
    }
    if delivered {
        Ok(())
    } else {
        let mut msg = format!(
            "{what} was not delivered within {:?} ({} dead-lettered)",
            delivery.timeout, stats.dead_lettered
        );
        if let Some(path) = &delivery.dead_letter {
            msg.push_str(&format!(
                "; replay with `flagwire events replay {}`",
                path.display()
            ));
        }
        Err(CliError::Failed(msg))
    }
}

pub async fn identify(args: IdentifyArgs, settings: &Settings, json: bool) -> Result<(), CliError> {
    if args.who.user.is_empty() {
        return Err(CliError::usage(
            "identify needs at least one user key: --user email=ada@example.com",
        ));
    }
    let mut body = IdentifyBody::builder()
        .keys(args.who.user.iter().cloned())
        .traits(args.traits.iter().cloned());
    if let Some(name) = &args.name {
        body = body.name(name.clone());
    }
    if !args.who.company.is_empty() || args.company_name.is_some() {
        if args.who.company.is_empty() {
            return Err(CliError::usage("--company-name needs --company KEY=VALUE"));
        }
        let mut company = CompanyIdentity::builder().keys(args.who.company.iter().cloned());
        if let Some(name) = &args.company_name {
            company = company.name(name.clone());
        }
        body = body.company(
            company
                .build()
                .map_err(|e| CliError::usage(format!("company: {e}")))?,
        );
    }
    let body = body.build().map_err(|e| CliError::usage(e.to_string()))?;
    let (client, seen) = client(settings, &args.delivery)?;
    client.identify(body)?;
    finish(client, &seen, &args.delivery, "identify", json).await
}

pub async fn track(args: TrackArgs, settings: &Settings, json: bool) -> Result<(), CliError> {
    let mut body = TrackBody::builder(args.event.clone()).traits(args.traits.iter().cloned());
    if !args.who.company.is_empty() {
        body = body.company(args.who.company.iter().cloned());
    }
    if !args.who.user.is_empty() {
        body = body.user(args.who.user.iter().cloned());
    }
    if let Some(q) = args.quantity {
        body = body.quantity(q);
    }
    let body = body.build().map_err(|e| CliError::usage(e.to_string()))?;
    let (client, seen) = client(settings, &args.delivery)?;
    client.track(body)?;
    let what = format!("track {}", args.event);
    finish(client, &seen, &args.delivery, &what, json).await
}

/// Which kind of dead-letter file `path` is, from its first letter.
fn detect(path: &Path) -> Result<LetterKind, CliError> {
    let file =
        std::fs::File::open(path).map_err(|e| CliError::io(path.display().to_string(), e))?;
    for line in std::io::BufReader::new(file).lines() {
        let line = line.map_err(|e| CliError::io(path.display().to_string(), e))?;
        if line.trim().is_empty() {
            continue;
        }
        let Ok(Value::Object(map)) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        if map.contains_key("envelope") {
            return Ok(LetterKind::Esauti);
        }
        if map.contains_key("event") {
            return Ok(LetterKind::Schematic);
        }
    }
    Err(CliError::usage(format!(
        "{}: no dead letter found to tell its kind; give --kind schematic or --kind esauti",
        path.display()
    )))
}

/// Counts the non-empty lines (for the progress line).
fn count_lines(path: &Path) -> usize {
    std::fs::read(path)
        .map(|b| b.split(|c| *c == b'\n').filter(|l| !l.is_empty()).count())
        .unwrap_or(0)
}

/// What a replay did, whichever kind.
struct Summary {
    read: usize,
    delivered: usize,
    duplicates: Option<usize>,
    failed: usize,
    skipped: usize,
    invalid: Vec<(usize, String)>,
    remaining: usize,
}

pub async fn replay(args: ReplayArgs, settings: &Settings, json: bool) -> Result<(), CliError> {
    let path = args.file.as_path();
    if !path.is_file() {
        return Err(CliError::usage(format!(
            "{}: no such dead-letter file",
            path.display()
        )));
    }
    let kind = match args.kind {
        LetterKind::Auto => detect(path)?,
        k => k,
    };
    let lines = count_lines(path);
    let kind_name = if kind == LetterKind::Esauti {
        "eSauti"
    } else {
        "Schematic"
    };
    eprintln!(
        "replaying {lines} line(s) of {kind_name} dead letters from {}…",
        path.display()
    );
    // On a terminal, a running clock while the replay (retries and
    // back-off included) is under way.
    let ticker = crate::util::stderr_is_tty().then(|| {
        tokio::spawn(async {
            let started = std::time::Instant::now();
            loop {
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                eprint!("\r… {} s", started.elapsed().as_secs());
            }
        })
    });
    let summary = replay_kind(kind, path, settings).await;
    if let Some(t) = ticker {
        t.abort();
        eprint!("\r");
    }
    let summary = summary?;
    for (line, reason) in &summary.invalid {
        eprintln!(
            "{}:{line}: kept, not a valid letter: {reason}",
            path.display()
        );
    }
    if json {
        let v = json!({
            "file": path.display().to_string(),
            "kind": kind_name.to_lowercase(),
            "read": summary.read,
            "delivered": summary.delivered,
            "duplicates": summary.duplicates,
            "failed": summary.failed,
            "skipped": summary.skipped,
            "invalid": summary.invalid.len(),
            "remaining": summary.remaining,
        });
        println!("{v}");
    } else {
        let dup = summary
            .duplicates
            .map(|d| format!(" ({d} already received)"))
            .unwrap_or_default();
        println!(
            "read {}, delivered {}{dup}, failed {}, skipped {}, invalid {}; {} line(s) remain in {}",
            summary.read,
            summary.delivered,
            summary.failed,
            summary.skipped,
            summary.invalid.len(),
            summary.remaining,
            path.display()
        );
    }
    if summary.remaining > 0 {
        return Err(CliError::Failed(format!(
            "{} line(s) remain in {}",
            summary.remaining,
            path.display()
        )));
    }
    Ok(())
}

/// Runs the replay of `path` as `kind`.
async fn replay_kind(
    kind: LetterKind,
    path: &Path,
    settings: &Settings,
) -> Result<Summary, CliError> {
    Ok(match kind {
        LetterKind::Esauti => {
            let mut b = flagwire::esauti::Client::builder()
                .api_key(settings.require("esauti_api_key")?)
                .events_url(settings.require("esauti_events_url")?);
            if let Some(secret) = settings.get("esauti_hmac_secret") {
                b = b.hmac_secret(secret);
            }
            if let Some(url) = settings.get("esauti_api_url") {
                b = b.rest_url(url);
            }
            let client = b.build()?;
            let r = client.events().replay(path).await?;
            Summary {
                read: r.read,
                delivered: r.delivered,
                duplicates: Some(r.duplicates),
                failed: r.failed,
                skipped: r.skipped,
                invalid: r
                    .invalid_lines
                    .iter()
                    .map(|l| (l.line, l.reason.clone()))
                    .collect(),
                remaining: r.remaining,
            }
        }
        _ => {
            let client = super::schematic_builder(settings)?.build()?;
            let r = client.replay_dead_letters(path).await;
            client.shutdown(std::time::Duration::from_secs(2)).await;
            let r = r?;
            Summary {
                read: r.read,
                delivered: r.delivered,
                duplicates: None,
                failed: r.failed,
                skipped: r.skipped,
                invalid: r
                    .invalid_lines
                    .iter()
                    .map(|l| (l.line, l.reason.clone()))
                    .collect(),
                remaining: r.remaining,
            }
        }
    })
}
