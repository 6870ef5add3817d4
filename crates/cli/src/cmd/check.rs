//! `flagwire check`: one flag, for a company and/or user.

use std::time::Duration;

use flagwire::Context;
use flagwire::datastream::DataStreamOptions;
use flagwire::schematic::{CheckOptions, CheckSource, Client, FlagCheck};
use serde_json::{Value, json};

use crate::cli::{CheckArgs, Who};
use crate::config::Settings;
use crate::error::CliError;
use crate::util::{Style, now_rfc3339};

/// How often `--watch` re-evaluates (locally: no request is sent).
const WATCH_INTERVAL: Duration = Duration::from_millis(200);
/// How long `--watch` waits for DataStream's first flags.
const WATCH_READY: Duration = Duration::from_secs(10);

/// Preflight quantities parsed from `--preflight`.
#[derive(Debug, Default, PartialEq)]
struct Preflight {
    usage: Option<f64>,
    event: Option<(String, f64)>,
    credits: Vec<(String, f64)>,
}

fn parse_preflight(pairs: &[(String, String)]) -> Result<Preflight, CliError> {
    let mut out = Preflight::default();
    for (kind, value) in pairs {
        let n: f64 = value.trim().parse().map_err(|_| {
            CliError::usage(format!(
                "--preflight {kind}={value}: `{value}` is not a number"
            ))
        })?;
        if !n.is_finite() || n < 0.0 {
            return Err(CliError::usage(format!(
                "--preflight {kind}={value}: the quantity must be a finite number >= 0"
            )));
        }
        if kind == "usage" {
            if out.usage.replace(n).is_some() {
                return Err(CliError::usage("--preflight usage=N is given twice"));
            }
        } else if let Some(subtype) = kind.strip_prefix("event:").filter(|s| !s.is_empty()) {
            if out.event.replace((subtype.to_owned(), n)).is_some() {
                return Err(CliError::usage(
                    "--preflight event:SUBTYPE=N can be given once",
                ));
            }
        } else if let Some(credit) = kind.strip_prefix("credit:").filter(|s| !s.is_empty()) {
            out.credits.push((credit.to_owned(), n));
        } else {
            return Err(CliError::usage(format!(
                "--preflight `{kind}`: expected usage=N, event:SUBTYPE=N or credit:ID=N"
            )));
        }
    }
    Ok(out)
}

fn source_name(source: CheckSource) -> &'static str {
    match source {
        CheckSource::Local => "local",
        CheckSource::Cache => "cache",
        CheckSource::Api => "api",
        CheckSource::Default => "default",
        CheckSource::Offline => "offline",
        _ => "other",
    }
}

fn source_meaning(source: CheckSource) -> &'static str {
    match source {
        CheckSource::Local => "evaluated in this process from DataStream data",
        CheckSource::Cache => "an earlier API answer, still fresh",
        CheckSource::Api => "answered by the API just now",
        CheckSource::Default => "no one could answer: a default was used",
        CheckSource::Offline => "offline: a default was used",
        _ => "",
    }
}

/// The check as JSON.
fn to_json(check: &FlagCheck) -> Value {
    json!({
        "flag": check.flag,
        "value": check.value,
        "reason": check.reason,
        "rule_id": check.rule_id,
        "rule_type": check.rule_type,
        "flag_id": check.flag_id,
        "company_id": check.company_id,
        "user_id": check.user_id,
        "entitlement": check.entitlement.as_ref().and_then(|e| serde_json::to_value(e).ok()),
        "feature_usage": check.feature_usage,
        "feature_allocation": check.feature_allocation,
        "error": check.error,
        "source": source_name(check.source),
    })
}

/// The check for people.
fn print_human(check: &FlagCheck, explain: bool, who: &Who) {
    let style = Style::stdout();
    let value = if check.value {
        style.green("true")
    } else {
        style.red("false")
    };
    println!("{} {value}", style.bold(&format!("{}:", check.flag)));
    let row = |label: &str, text: &str| println!("  {:<14}{text}", format!("{label}:"));
    row("reason", &check.reason);
    if let Some(rule) = &check.rule_id {
        match &check.rule_type {
            Some(t) => row("rule", &format!("{rule} ({t})")),
            None => row("rule", rule),
        }
    }
    row("source", source_name(check.source));
    if let Some(e) = &check.entitlement
        && let Ok(v) = serde_json::to_value(e)
    {
        row("entitlement", &v.to_string());
    }
    if let Some(err) = &check.error {
        row("error", &style.yellow(err));
    }
    if explain {
        row("meaning", source_meaning(check.source));
        let keys = |pairs: &[(String, String)]| {
            pairs
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        if !who.company.is_empty() {
            row("company keys", &keys(&who.company));
        }
        if !who.user.is_empty() {
            row("user keys", &keys(&who.user));
        }
        let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| style.dim("-"));
        row("flag id", &opt(&check.flag_id));
        row("company id", &opt(&check.company_id));
        row("user id", &opt(&check.user_id));
        if check.feature_usage.is_some() || check.feature_allocation.is_some() {
            let n = |v: Option<i64>| v.map_or_else(|| "-".to_owned(), |n| n.to_string());
            row(
                "usage",
                &format!(
                    "{} of {}",
                    n(check.feature_usage),
                    n(check.feature_allocation)
                ),
            );
        }
    }
}

/// The flag's default and rules (by priority), for `--explain`: fetched
/// with `getFlag`; `None` with a note when that fails.
async fn flag_rules(client: &Client, check: &FlagCheck) -> Result<Value, String> {
    let Some(flag_id) = &check.flag_id else {
        return Err("the flag id is unknown".to_owned());
    };
    let op =
        crate::ops::find(crate::ops::Service::Schematic, "getFlag").map_err(|e| e.to_string())?;
    let prepared = crate::ops::prepare(op, &[("flag_id".to_owned(), flag_id.clone())], None)
        .map_err(|e| e.to_string())?;
    let doc = client
        .send(crate::ops::DynamicOperation(prepared))
        .await
        .map_err(|e| e.to_string())?;
    let data = &doc["data"];
    let mut rules: Vec<Value> = data["rules"]
        .as_array()
        .map(|rules| {
            rules
                .iter()
                .map(|r| {
                    let conditions: Vec<String> = r["conditions"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(condition_text)
                        .collect();
                    json!({
                        "id": r["id"],
                        "name": r["name"],
                        "priority": r["priority"],
                        "rule_type": r["rule_type"],
                        "value": r["value"],
                        "matched": r["id"].as_str().is_some() && r["id"].as_str() == check.rule_id.as_deref(),
                        "conditions": conditions,
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    rules.sort_by_key(|r| r["priority"].as_i64().unwrap_or(i64::MAX));
    Ok(json!({"default_value": data["default_value"], "rules": rules}))
}

/// One condition in a few words: `company eq comp_1`, `trait plan eq pro`.
fn condition_text(c: &Value) -> String {
    let s = |k: &str| c[k].as_str().unwrap_or_default().to_owned();
    let mut out = format!("{} {}", s("condition_type"), s("operator"));
    let ids: Vec<&str> = c["resource_ids"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if !ids.is_empty() {
        out.push(' ');
        out.push_str(&ids.join(","));
    }
    for key in ["trait_value", "event_subtype"] {
        if !s(key).is_empty() {
            out.push(' ');
            out.push_str(&s(key));
        }
    }
    if let Some(v) = c["metric_value"].as_i64() {
        out.push_str(&format!(" {v}"));
    }
    out
}

/// Prints the rules fetched by [`flag_rules`].
fn print_rules(rules: &Result<Value, String>) {
    let style = Style::stdout();
    match rules {
        Err(e) => println!(
            "  {:<14}{}",
            "rules:",
            style.dim(&format!("unavailable ({e})"))
        ),
        Ok(v) => {
            let list = v["rules"].as_array().cloned().unwrap_or_default();
            if list.is_empty() {
                println!("  {:<14}none", "rules:");
            } else {
                println!("  rules (by priority):");
            }
            for r in &list {
                let mark = if r["matched"] == true {
                    style.green("  ← matched")
                } else {
                    String::new()
                };
                let conditions = r["conditions"]
                    .as_array()
                    .map(|c| {
                        c.iter()
                            .filter_map(Value::as_str)
                            .collect::<Vec<_>>()
                            .join(" and ")
                    })
                    .unwrap_or_default();
                println!(
                    "    {}. {} → {}{mark}{}",
                    r["priority"],
                    r["name"].as_str().unwrap_or("(unnamed)"),
                    r["value"],
                    if conditions.is_empty() {
                        String::new()
                    } else {
                        style.dim(&format!("  [{conditions}]"))
                    }
                );
            }
            println!("    default → {}", v["default_value"]);
        }
    }
}

fn context(who: &Who) -> Context<'_> {
    let mut ctx = Context::none();
    if !who.company.is_empty() {
        ctx = ctx.with_company(&who.company);
    }
    if !who.user.is_empty() {
        ctx = ctx.with_user(&who.user);
    }
    ctx
}

pub async fn run(args: CheckArgs, settings: &Settings, json: bool) -> Result<(), CliError> {
    if args.flag.trim().is_empty() {
        return Err(CliError::usage("the flag key is empty"));
    }
    let preflight = parse_preflight(&args.preflight)?;
    let mut builder = super::schematic_builder(settings)?;
    if let Some(t) = args.timeout {
        builder = builder.check_timeout(t);
    }
    if args.watch {
        // A company or user not yet in memory is fetched over the socket;
        // give it time before a check falls back to the API.
        let mut ds = DataStreamOptions::new()
            .flag_check_events(false)
            .resource_timeout(Duration::from_secs(5));
        if let Some(url) = settings.get("datastream_url") {
            ds = ds.url(url);
        }
        builder = builder.datastream(ds);
    }
    let client = builder.build()?;
    let credits: Vec<(&str, f64)> = preflight
        .credits
        .iter()
        .map(|(k, v)| (k.as_str(), *v))
        .collect();
    let mut options = CheckOptions::new().credit_cost(&credits);
    if let Some(d) = args.default {
        options = options.default(d);
    }
    if let Some(u) = preflight.usage {
        options = options.usage(u);
    }
    if let Some((subtype, n)) = &preflight.event {
        options = options.event_usage(subtype, *n);
    }
    let result = if args.watch {
        watch(&client, &args, options, json).await
    } else {
        let check = client
            .check_flag_with(&args.flag, context(&args.who), options)
            .await;
        let rules = if args.explain {
            Some(flag_rules(&client, &check).await)
        } else {
            None
        };
        if json {
            let mut v = to_json(&check);
            match &rules {
                Some(Ok(r)) => v["explain"] = r.clone(),
                Some(Err(e)) => v["explain"] = json!({"error": e}),
                None => {}
            }
            println!("{v}");
        } else {
            print_human(&check, args.explain, &args.who);
            if let Some(r) = &rules {
                print_rules(r);
            }
        }
        verdict(&check, &args)
    };
    client.shutdown(Duration::from_secs(2)).await;
    result
}

/// The exit status of one answer.
fn verdict(check: &FlagCheck, args: &CheckArgs) -> Result<(), CliError> {
    if check.source == CheckSource::Default && !args.allow_default {
        return Err(CliError::Network(format!(
            "no answer for `{}`, the default was used: {}",
            check.flag,
            check.error.as_deref().unwrap_or("unknown error")
        )));
    }
    if args.exit_status && !check.value {
        return Err(CliError::FlagOff);
    }
    Ok(())
}

async fn watch(
    client: &Client,
    args: &CheckArgs,
    options: CheckOptions<'_>,
    json: bool,
) -> Result<(), CliError> {
    let ready = client.wait_until_ready(WATCH_READY).await;
    if !ready {
        let why = client
            .datastream_status()
            .and_then(|s| s.last_error)
            .unwrap_or_else(|| "no flags received".to_owned());
        eprintln!("warning: DataStream is not ready ({why}); checks go to the API meanwhile");
    }
    let deadline = args.duration.map(|d| tokio::time::Instant::now() + d);
    let stop = super::until_stopped(args.duration);
    tokio::pin!(stop);
    let mut last: Option<(bool, String, Option<String>)> = None;
    let mut changes = 0u64;
    loop {
        let check = client
            .check_flag_with(&args.flag, context(&args.who), options)
            .await;
        let now = (check.value, check.reason.clone(), check.rule_id.clone());
        if last.as_ref() != Some(&now) {
            changes += 1;
            if json {
                let mut v = to_json(&check);
                v["at"] = Value::String(now_rfc3339());
                println!("{v}");
            } else {
                println!("{}", Style::stdout().dim(&now_rfc3339()));
                print_human(&check, args.explain, &args.who);
            }
            last = Some(now);
        }
        if deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
            break;
        }
        tokio::select! {
            () = &mut stop => break,
            () = tokio::time::sleep(WATCH_INTERVAL) => {}
        }
    }
    if !json {
        eprintln!("{changes} distinct answer(s)");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn preflight_kinds() {
        let p = parse_preflight(&pairs(&[
            ("usage", "3"),
            ("event:ai-call", "1.5"),
            ("credit:c1", "2"),
        ]))
        .unwrap();
        assert_eq!(p.usage, Some(3.0));
        assert_eq!(p.event, Some(("ai-call".to_owned(), 1.5)));
        assert_eq!(p.credits, vec![("c1".to_owned(), 2.0)]);
        for bad in [
            ("usage", "x"),
            ("usage", "-1"),
            ("usage", "inf"),
            ("bogus", "1"),
            ("event:", "1"),
        ] {
            let e = parse_preflight(&pairs(&[bad])).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{bad:?}");
        }
        assert!(parse_preflight(&pairs(&[("usage", "1"), ("usage", "2")])).is_err());
    }
}
