//! The event-capture host: `POST /batch` with `{"events": [...]}`.

use http::{Method, StatusCode};
use serde_json::json;

use super::events;
use super::requests::CaptureBatch;
use crate::faults::{Host, path_segments};
use crate::server::{Ctx, Dispatched};
use crate::util::{ApiFailure, HandlerResult, Reply, parse_body};

/// Routes a capture-host request.
pub(crate) fn dispatch(ctx: &Ctx<'_>) -> Dispatched {
    let mut segs = path_segments(ctx.path);
    let is_batch = segs.next() == Some("batch") && segs.next().is_none();
    if !is_batch {
        return Dispatched {
            result: Err(ApiFailure::new(StatusCode::NOT_FOUND, "not found")),
            operation: None,
        };
    }
    let result = if ctx.method == Method::POST {
        batch(ctx)
    } else {
        Err(ApiFailure::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method not allowed",
        ))
    };
    Dispatched {
        result,
        operation: Some("captureBatch"),
    }
}

fn batch(ctx: &Ctx<'_>) -> HandlerResult {
    // The header key authorizes the request; without it every event must
    // carry an accepted key (and a body that cannot be read carries none).
    let header_ok = ctx.inner.authorized(ctx.headers);
    let body: CaptureBatch = match parse_body(ctx.body) {
        Ok(body) => body,
        Err(_) if !header_ok => {
            return Err(ApiFailure::new(
                StatusCode::UNAUTHORIZED,
                super::UNAUTHORIZED,
            ));
        }
        Err(e) => return Err(e),
    };
    if !header_ok
        && (body.events.is_empty()
            || !body.events.iter().all(|e| {
                e.api_key
                    .as_deref()
                    .is_some_and(|k| ctx.inner.key_accepted(k))
            }))
    {
        return Err(ApiFailure::new(
            StatusCode::UNAUTHORIZED,
            super::UNAUTHORIZED,
        ));
    }
    let max = ctx.inner.capture_batch_limit;
    if body.events.len() > max {
        let body = serde_json::to_vec(&json!({ "error": "batch too large", "max_size": max }))
            .unwrap_or_default();
        return Ok(Reply {
            status: StatusCode::BAD_REQUEST,
            body: body.into(),
        });
    }
    let valid = body
        .events
        .iter()
        .enumerate()
        .map(|(i, e)| {
            if e.backfill == Some(true) && e.trusted_client_clock != Some(true) {
                return Err(ApiFailure::bad_request(format!(
                    "events[{i}]: backfill requires trusted_client_clock"
                )));
            }
            events::validate(
                &e.event_type,
                e.body.as_ref(),
                e.idempotency_key.as_deref(),
                e.sent_at.as_deref(),
            )
            .map_err(|f| ApiFailure::bad_request(format!("events[{i}]: {}", f.message)))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let n = valid.len();
    ctx.inner.mutate(|s| {
        valid
            .into_iter()
            .map(|ev| events::apply(s, ev, Host::Capture))
            .collect::<Result<Vec<_>, _>>()
    })?;
    let body = serde_json::to_vec(&json!({ "accepted": n })).unwrap_or_default();
    Ok(Reply {
        status: StatusCode::OK,
        body: body.into(),
    })
}
