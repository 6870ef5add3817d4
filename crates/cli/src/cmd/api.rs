//! `flagwire api`: any operation by its id.

use std::io::Write as _;

use serde_json::{Value, json};

use crate::cli::ApiArgs;
use crate::config::Settings;
use crate::error::CliError;
use crate::ops::{self, Body, DynamicOperation, Kind, Location, Op, Prepared, Service};
use crate::util::{parse_json_body, print_json, read_body_arg, stderr_is_tty};

/// Pages `--all` walks at most (a guard against a server that never
/// returns a short page).
const MAX_PAGES: u64 = 100_000;

fn op_json(op: &Op) -> Value {
    let params: Vec<Value> = op
        .params
        .iter()
        .map(|p| {
            json!({
                "name": p.name,
                "in": match p.location { Location::Path => "path", Location::Query => "query" },
                "kind": match p.kind { Kind::Scalar => "scalar", Kind::Array => "array", Kind::Object => "map" },
                "required": p.required,
            })
        })
        .collect();
    json!({
        "id": op.id,
        "method": op.method,
        "path": op.path,
        "tag": op.tag,
        "params": params,
        "body": match op.body { Body::None => "none", Body::Optional => "optional", Body::Required => "required" },
        "pages": op.pages(),
    })
}

fn list(args: &ApiArgs, json: bool) {
    let filter = args.operation.as_deref().map(str::to_lowercase);
    let matches = |op: &&Op| match &filter {
        None => true,
        Some(f) => {
            op.id.to_lowercase().contains(f)
                || op.tag.to_lowercase().contains(f)
                || op.path.to_lowercase().contains(f)
        }
    };
    let ops: Vec<&Op> = args.service.table().iter().filter(matches).collect();
    if json {
        print_json(
            &Value::Array(ops.iter().map(|o| op_json(o)).collect()),
            true,
        );
        return;
    }
    let width = ops.iter().map(|o| o.id.len()).max().unwrap_or(0);
    let mut out = std::io::stdout().lock();
    for op in ops {
        let _ = writeln!(out, "{:<width$}  {}", op.id, op.synopsis());
    }
}

pub async fn run(args: ApiArgs, settings: &Settings, json: bool) -> Result<(), CliError> {
    if args.list {
        list(&args, json);
        return Ok(());
    }
    let Some(id) = args.operation.as_deref() else {
        return Err(CliError::usage("name an operation, or give --list"));
    };
    // Everything is checked before any I/O.
    let op = ops::find(args.service, id)?;
    let body = match &args.body {
        None => None,
        Some(arg) => {
            let origin = if arg == "-" {
                "standard input".to_owned()
            } else if let Some(p) = arg.strip_prefix('@') {
                p.to_owned()
            } else {
                "--body".to_owned()
            };
            Some(parse_json_body(&read_body_arg(arg)?, &origin)?)
        }
    };
    let prepared = ops::prepare(op, &args.params, body)?;
    if args.all && !op.pages() {
        return Err(CliError::usage(format!(
            "`{}` does not page with limit/offset; --all applies to list operations",
            op.id
        )));
    }
    let value = match args.service {
        Service::Schematic => {
            // `api` sends no events: the capture URL only has to be valid.
            let client = super::schematic_builder_without_events(settings)?
                .timeout(args.timeout)
                .build()?;
            let out = if args.all {
                all_pages(&client, &prepared, args.page_size).await
            } else {
                client
                    .send(DynamicOperation(prepared))
                    .await
                    .map_err(CliError::from)
            };
            client.shutdown(std::time::Duration::from_secs(1)).await;
            out?
        }
        Service::Esauti => esauti(settings, &prepared, &args).await?,
    };
    print_json(&value, true);
    Ok(())
}

/// The page size: `--param limit=` or `--page-size`.
fn page_limit(prepared: &Prepared, page_size: u64) -> Result<u64, CliError> {
    Ok(prepared
        .query
        .iter()
        .find(|(n, _)| n == "limit")
        .map(|(_, v)| {
            v.parse::<u64>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| CliError::usage(format!("limit `{v}` is not a positive number")))
        })
        .transpose()?
        .unwrap_or(page_size))
}

/// Where the first page starts: `--param offset=` (or `start=`), else 0.
fn first_offset(prepared: &Prepared) -> u64 {
    let name = prepared.op.page_start_param();
    prepared
        .query
        .iter()
        .find(|(n, _)| n == name)
        .and_then(|(_, v)| v.parse::<u64>().ok())
        .unwrap_or(0)
}

/// Walks every page: `limit` from `--param limit=` or `--page-size`.
async fn all_pages(
    client: &flagwire::schematic::Client,
    prepared: &Prepared,
    page_size: u64,
) -> Result<Value, CliError> {
    let limit = page_limit(prepared, page_size)?;
    let mut offset = first_offset(prepared);
    let progress = stderr_is_tty();
    let mut items = Vec::new();
    for _ in 0..MAX_PAGES {
        let page = client
            .send(DynamicOperation(prepared.with_page(limit, offset)))
            .await?;
        let data = match page {
            Value::Object(mut doc) => doc.remove("data").unwrap_or(Value::Null),
            other => other,
        };
        let Value::Array(batch) = data else {
            return Err(CliError::failed(
                "a page's `data` is not a list; cannot page through it",
            ));
        };
        let n = batch.len() as u64;
        items.extend(batch);
        if progress {
            eprint!("\rfetched {} item(s)", items.len());
        }
        if n < limit {
            break;
        }
        offset += n;
    }
    if progress {
        eprintln!();
    }
    Ok(Value::Array(items))
}

async fn esauti(
    settings: &Settings,
    prepared: &Prepared,
    args: &ApiArgs,
) -> Result<Value, CliError> {
    let url = settings.require("esauti_api_url")?;
    super::check_url(url, "esauti_api_url")?;
    let client = flagwire::esauti::Client::builder()
        .api_key(settings.require("esauti_api_key")?)
        .rest_url(url)
        .timeout(args.timeout)
        .build()?;
    let method = http::Method::from_bytes(prepared.op.method.as_bytes())
        .map_err(|_| CliError::failed("the operation table has an invalid method"))?;
    if !args.all {
        return esauti_call(&client, &method, prepared).await;
    }
    // eSauti lists answer `{"total": N, "<items>": {"<id>": {...}, ...}}` and
    // page with `start`/`limit`: the pages' items are merged into one object.
    let limit = page_limit(prepared, args.page_size)?;
    let mut start = first_offset(prepared);
    let progress = stderr_is_tty();
    let mut merged: Option<(String, serde_json::Map<String, Value>)> = None;
    let mut total = Value::Null;
    for _ in 0..MAX_PAGES {
        let page = esauti_call(&client, &method, &prepared.with_page(limit, start)).await?;
        let Value::Object(mut doc) = page else {
            return Err(CliError::failed("an eSauti page is not a JSON object"));
        };
        total = doc.remove("total").unwrap_or(Value::Null);
        let Some((name, Value::Object(items))) =
            doc.into_iter().find(|(_, v)| v.is_object() || v.is_array())
        else {
            break;
        };
        let n = items.len() as u64;
        match &mut merged {
            Some((_, all)) => all.extend(items),
            None => merged = Some((name, items)),
        }
        let fetched = merged.as_ref().map_or(0, |(_, all)| all.len());
        if progress {
            eprint!("\rfetched {fetched} item(s)");
        }
        let reached_total = total
            .as_u64()
            .or_else(|| total.as_str().and_then(|t| t.parse().ok()))
            .is_some_and(|t| fetched as u64 >= t);
        if n < limit || reached_total {
            break;
        }
        start += n;
    }
    if progress {
        eprintln!();
    }
    let mut out = serde_json::Map::new();
    out.insert("total".to_owned(), total);
    if let Some((name, items)) = merged {
        out.insert(name, Value::Object(items));
    }
    Ok(Value::Object(out))
}

/// One eSauti REST call of a prepared request.
async fn esauti_call(
    client: &flagwire::esauti::Client,
    method: &http::Method,
    prepared: &Prepared,
) -> Result<Value, CliError> {
    let query: Vec<(&str, &str)> = prepared
        .query
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    Ok(client
        .call(
            method.clone(),
            &prepared.path,
            &query,
            prepared.body.as_ref(),
        )
        .await?)
}
