//! Flag checks. They never fail: local evaluation (with DataStream), then
//! the result cache, then the API, then defaults.
//!
//! The order, for a check of `flag` for a [`Context`]:
//!
//! 1. **Offline**: the per-call default, the client's default for the flag,
//!    `false` ([`CheckSource::Offline`]).
//! 2. **Local** (DataStream on and flags loaded): the flag, company and user
//!    are read from memory and evaluated on the calling thread
//!    ([`CheckSource::Local`]). A company or user not in memory is asked
//!    for and waited for (2 s by default) while the socket is up.
//! 3. **Result cache**: a fresh answer of an earlier API check for the same
//!    flag and keys ([`CheckSource::Cache`]). Checks with preflight usage
//!    never read or fill it.
//! 4. **API**: one request with a deadline of its own (1.5 s, at most one
//!    retry), guarded by a circuit breaker ([`CheckSource::Api`]).
//! 5. **Defaults**: the per-call default, the client's default for the
//!    flag, `false` ([`CheckSource::Default`], with the reason in
//!    [`FlagCheck::error`]).
//!
//! Steps 1–3 run synchronously on the caller's thread, in the async and the
//! blocking client alike, and allocate nothing for a `bool` answer.

use std::sync::Arc;
use std::time::{Duration, Instant};

use flagwire_core::Nullable;
use flagwire_core::events::{EventBody, FlagCheckBody};
use flagwire_core::rules::{CheckOptions as EvalOptions, Evaluation};
use flagwire_core::schematic::features::{CheckFlag, CheckFlags};
use flagwire_core::schematic::models::{
    CheckFlagRequestBody, CheckFlagResponseData, FeatureEntitlement,
    PreflightEventUsageRequestBody, PreflightRequestBody,
};

use super::breaker::Permit;
use super::client::Client;
use super::options::RequestOptions;
use crate::cache::{FlagCacheKey, coarse_utc_now};
use crate::context::Context;
use crate::datastream::DataStream;
use crate::datastream::store::Local;
use crate::datastream::waiters::{EntityKind, Outcome};
use crate::error::Error;

/// What the result cache stores: the full answer of an API check, shared.
pub type CachedCheck = Arc<FlagCheck>;

/// Base of the back-off before a flag check's retry.
const CHECK_RETRY_DELAY: Duration = Duration::from_millis(50);

/// Default deadline of a flag check's API request (both attempts).
pub const DEFAULT_CHECK_TIMEOUT: Duration = Duration::from_millis(1_500);

/// Where the value of a flag check came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CheckSource {
    /// Evaluated in this process from DataStream data (in replicator mode,
    /// data read from Redis).
    Local,
    /// The result cache (an earlier API answer still fresh).
    Cache,
    /// The API, just now.
    Api,
    /// A default: neither local data nor the API could answer (error,
    /// timeout, circuit breaker open, invalid input). See
    /// [`FlagCheck::error`].
    Default,
    /// A default, because the client is offline.
    Offline,
}

/// Options of [`Client::check_flag_with`]: a per-call default, a deadline,
/// and preflight usage ("would this usage still be allowed?").
///
/// Preflight quantities may be fractional; they are rounded up, as the
/// official SDKs do. A negative or non-finite quantity makes the check
/// answer its default with an error, without asking anyone. Checks with
/// preflight are evaluated locally or by the API and are never cached.
///
/// ```
/// use std::time::Duration;
/// use flagwire::schematic::CheckOptions;
///
/// let costs = [("credit_ai", 2.5)];
/// let options = CheckOptions::new()
///     .default(true)
///     .timeout(Duration::from_millis(300))
///     .usage(3.0)
///     .event_usage("ai-call", 1.5)
///     .credit_cost(&costs);
/// assert!(options.has_preflight());
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq)]
#[non_exhaustive]
pub struct CheckOptions<'a> {
    /// Used before the client's defaults when no one can answer.
    pub default: Option<bool>,
    /// Deadline of the API request of this check.
    pub timeout: Option<Duration>,
    /// Generic usage about to be consumed.
    pub usage: Option<f64>,
    /// Usage of one event subtype about to be consumed.
    pub event_usage: Option<(&'a str, f64)>,
    /// Exact credit costs by credit id.
    pub credit_cost: &'a [(&'a str, f64)],
}

impl<'a> CheckOptions<'a> {
    /// No options.
    pub const fn new() -> Self {
        CheckOptions {
            default: None,
            timeout: None,
            usage: None,
            event_usage: None,
            credit_cost: &[],
        }
    }

    /// Sets the per-call default.
    #[must_use]
    pub const fn default(mut self, value: bool) -> Self {
        self.default = Some(value);
        self
    }

    /// Sets the deadline of the API request.
    #[must_use]
    pub const fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Preflight: generic usage.
    #[must_use]
    pub const fn usage(mut self, quantity: f64) -> Self {
        self.usage = Some(quantity);
        self
    }

    /// Preflight: usage of one event subtype.
    #[must_use]
    pub const fn event_usage(mut self, event_subtype: &'a str, quantity: f64) -> Self {
        self.event_usage = Some((event_subtype, quantity));
        self
    }

    /// Preflight: exact credit costs by credit id.
    #[must_use]
    pub const fn credit_cost(mut self, costs: &'a [(&'a str, f64)]) -> Self {
        self.credit_cost = costs;
        self
    }

    /// Whether any preflight usage is set.
    pub fn has_preflight(&self) -> bool {
        self.usage.is_some() || self.event_usage.is_some() || !self.credit_cost.is_empty()
    }

    /// The rounded preflight quantities, or why they are invalid.
    fn preflight(&self) -> Result<Preflight<'a>, &'static str> {
        fn round_up(q: f64) -> Result<i64, &'static str> {
            if !q.is_finite() {
                return Err("preflight usage must be a finite number");
            }
            if q < 0.0 {
                return Err("preflight usage cannot be negative");
            }
            // Saturates for absurd quantities.
            Ok(q.ceil() as i64)
        }
        for (_, cost) in self.credit_cost {
            if !cost.is_finite() {
                return Err("preflight credit cost must be a finite number");
            }
            if *cost < 0.0 {
                return Err("preflight credit cost cannot be negative");
            }
        }
        Ok(Preflight {
            usage: self.usage.map(round_up).transpose()?,
            event_usage: match self.event_usage {
                Some((subtype, q)) => Some((subtype, round_up(q)?)),
                None => None,
            },
            credit_cost: self.credit_cost,
        })
    }
}

/// Validated, rounded preflight quantities.
#[derive(Debug, Clone, Copy)]
struct Preflight<'a> {
    usage: Option<i64>,
    event_usage: Option<(&'a str, i64)>,
    credit_cost: &'a [(&'a str, f64)],
}

impl<'a> Preflight<'a> {
    const NONE: Preflight<'static> = Preflight {
        usage: None,
        event_usage: None,
        credit_cost: &[],
    };

    fn is_empty(&self) -> bool {
        self.usage.is_none() && self.event_usage.is_none() && self.credit_cost.is_empty()
    }

    fn engine_options(&self) -> EvalOptions<'a> {
        let mut options = EvalOptions::new().credit_cost(self.credit_cost);
        if let Some(usage) = self.usage {
            options = options.usage(usage);
        }
        if let Some((subtype, quantity)) = self.event_usage {
            options = options.event_usage(subtype, quantity);
        }
        options
    }

    fn request_body(&self) -> Option<PreflightRequestBody> {
        if self.is_empty() {
            return None;
        }
        let mut body = PreflightRequestBody::default();
        if let Some(usage) = self.usage {
            body.usage = Nullable::Value(usage);
        }
        body.event_usage = self.event_usage.map(|(subtype, quantity)| {
            PreflightEventUsageRequestBody::new(subtype.to_owned(), quantity)
        });
        if !self.credit_cost.is_empty() {
            body.credit_cost = Some(
                self.credit_cost
                    .iter()
                    .map(|(id, cost)| ((*id).to_owned(), *cost))
                    .collect(),
            );
        }
        Some(body)
    }
}

/// The detailed outcome of a flag check.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct FlagCheck {
    /// The flag key.
    pub flag: String,
    /// The value: the evaluation's or the API's when there was one (a
    /// `false` stays `false`), otherwise the default.
    pub value: bool,
    /// Why: the rule that matched, the flag default, or which default was
    /// used.
    pub reason: String,
    /// The rule that matched, if any.
    pub rule_id: Option<String>,
    /// The type of the rule that matched, if known.
    pub rule_type: Option<String>,
    /// The flag's id, if known.
    pub flag_id: Option<String>,
    /// The company the check was resolved to, if any.
    pub company_id: Option<String>,
    /// The user the check was resolved to, if any.
    pub user_id: Option<String>,
    /// The company's entitlement to the flag's feature, if any.
    pub entitlement: Option<FeatureEntitlement>,
    /// Usage counted against a matched usage-based entitlement.
    pub feature_usage: Option<i64>,
    /// The allocation of a matched usage-based entitlement.
    pub feature_allocation: Option<i64>,
    /// An error: the engine's or the API's, or why no one could answer.
    pub error: Option<String>,
    /// Where the value came from.
    pub source: CheckSource,
}

impl FlagCheck {
    /// The reason of a check answered by the client's default for the flag
    /// ([`ClientBuilder::flag_default`](super::ClientBuilder::flag_default)).
    pub const REASON_CLIENT_DEFAULT: &'static str = "client default";
    /// The reason of a check whose keys named two different companies (or
    /// users); [`FlagCheck::error`] says which.
    pub const REASON_KEY_CONFLICT: &'static str = "key conflict";

    fn from_api(data: CheckFlagResponseData) -> Self {
        FlagCheck {
            flag: data.flag,
            value: data.value,
            reason: data.reason,
            rule_id: data.rule_id,
            rule_type: data.rule_type.map(|t| t.to_string()),
            flag_id: data.flag_id,
            company_id: data.company_id,
            user_id: data.user_id,
            entitlement: data.entitlement,
            feature_usage: data.feature_usage,
            feature_allocation: data.feature_allocation,
            error: data.error,
            source: CheckSource::Api,
        }
    }

    fn from_evaluation(evaluation: &Evaluation<'_>, default: bool) -> Self {
        let found = evaluation.flag_id.is_some();
        FlagCheck {
            flag: evaluation.flag_key.to_owned(),
            // An engine error (invalid preflight) leaves the flag default.
            value: if found { evaluation.value } else { default },
            reason: evaluation.reason.to_string(),
            rule_id: evaluation.rule_id.map(str::to_owned),
            rule_type: evaluation.rule_type.map(|t| t.as_str().to_owned()),
            flag_id: evaluation.flag_id.map(str::to_owned),
            company_id: evaluation.company_id.map(str::to_owned),
            user_id: evaluation.user_id.map(str::to_owned),
            // Same wire form: parsed straight into the API's model.
            entitlement: evaluation.entitlement.and_then(|e| e.parse_as().ok()),
            feature_usage: evaluation.feature_usage.map(|u| u.usage),
            feature_allocation: evaluation.feature_usage.map(|u| u.allocation),
            error: evaluation.err.map(str::to_owned),
            source: CheckSource::Local,
        }
    }
}

fn request_body(context: &Context<'_>, preflight: &Preflight<'_>) -> CheckFlagRequestBody {
    let mut body = CheckFlagRequestBody::default();
    if let Some(keys) = context.company_map() {
        body.company = Nullable::Value(keys);
    }
    if let Some(keys) = context.user_map() {
        body.user = Nullable::Value(keys);
    }
    if let Some(preflight) = preflight.request_body() {
        body.preflight = Some(preflight);
    }
    body
}

/// Whether a failed check request says the API is unavailable (what the
/// breaker counts) rather than answering about this check.
fn is_outage(error: &Error) -> bool {
    match error {
        Error::Transport(_) => true,
        Error::Api { status, .. } => status.as_u16() == 429 || status.is_server_error(),
        _ => false,
    }
}

impl Client {
    /// The value of `flag` for `context`. Never fails: the answer comes from
    /// local evaluation (DataStream on), the result cache, the API within
    /// the check deadline and behind the circuit breaker, or the defaults, in
    /// that order ([`CheckSource`]).
    ///
    /// ```
    /// use flagwire::Context;
    /// use flagwire::schematic::Client;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), flagwire::Error> {
    /// let client = Client::builder("sch_dev_example")
    ///     .offline(true)
    ///     .flag_default("new-editor", true)
    ///     .build()?;
    /// assert!(client.check_flag("new-editor", Context::company(&[("id", "acme")])).await);
    /// assert!(!client.check_flag("unknown-flag", ()).await);
    /// # Ok(()) }
    /// ```
    pub async fn check_flag(&self, flag: &str, context: impl Into<Context<'_>>) -> bool {
        let context = context.into();
        if let Some(value) = self.check_now(flag, &context) {
            return value;
        }
        Box::pin(self.check_flag_slow(flag, context, CheckOptions::new()))
            .await
            .value
    }

    /// The full outcome of a check: value, reason, rule, entitlement and
    /// [`CheckSource`]. Never fails.
    pub async fn check_flag_detailed(
        &self,
        flag: &str,
        context: impl Into<Context<'_>>,
    ) -> FlagCheck {
        self.check_flag_with(flag, context, CheckOptions::new())
            .await
    }

    /// A check with options: a per-call default, a deadline, preflight
    /// usage. Never fails.
    ///
    /// ```
    /// use std::time::Duration;
    /// use flagwire::Context;
    /// use flagwire::schematic::{CheckOptions, CheckSource, Client};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), flagwire::Error> {
    /// let client = Client::builder("sch_dev_example").offline(true).build()?;
    /// let options = CheckOptions::new().default(true).timeout(Duration::from_millis(300));
    /// let check = client
    ///     .check_flag_with("new-editor", Context::company(&[("id", "acme")]), options)
    ///     .await;
    /// assert!(check.value);
    /// assert_eq!(check.source, CheckSource::Offline);
    /// # Ok(()) }
    /// ```
    pub async fn check_flag_with(
        &self,
        flag: &str,
        context: impl Into<Context<'_>>,
        options: CheckOptions<'_>,
    ) -> FlagCheck {
        let context = context.into();
        if !options.has_preflight()
            && let Some(check) = self.check_now_detailed(flag, &context, options.default)
        {
            return check;
        }
        Box::pin(self.check_flag_slow(flag, context, options)).await
    }

    /// Checks several flags for one context. Never fails.
    ///
    /// With DataStream ready, every flag is evaluated locally (no
    /// `flag_check` events); if any cannot be, the whole set goes to the API
    /// in one request (flags it does not return get their defaults). Without
    /// it, cached answers are used when every flag is cached, otherwise one
    /// request refreshes them all.
    ///
    /// With no flag keys, returns every flag the API (or the local store)
    /// knows for the context, or, when no one can answer, one entry per
    /// client default.
    pub async fn check_flags(
        &self,
        flags: &[&str],
        context: impl Into<Context<'_>>,
    ) -> Vec<FlagCheck> {
        let context = context.into();
        if self.inner.offline {
            return self.all_defaults(flags, CheckSource::Offline, None);
        }
        if let Some(checks) = self.check_flags_locally(flags, &context).await {
            return checks;
        }
        if flags.is_empty() {
            return self.all_flags_via_api(&context).await;
        }
        let mut out: Vec<Option<FlagCheck>> = flags
            .iter()
            .map(|flag| self.cached_check(flag, &context))
            .collect();
        if out.iter().all(Option::is_some) {
            return out.into_iter().flatten().collect();
        }
        match self
            .send(CheckFlags::new(request_body(&context, &Preflight::NONE)))
            .await
        {
            Ok(data) => {
                let mut by_key: std::collections::HashMap<String, CheckFlagResponseData> = data
                    .flags
                    .into_iter()
                    .map(|f| (f.flag.clone(), f))
                    .collect();
                for (slot, flag) in out.iter_mut().zip(flags) {
                    if slot.is_some() {
                        continue;
                    }
                    *slot = Some(match by_key.remove(*flag) {
                        Some(data) => self.remember(flag, &context, data),
                        None => self.fallback(
                            flag,
                            None,
                            CheckSource::Default,
                            Some("flag not returned by the API".to_owned()),
                        ),
                    });
                }
            }
            Err(e) => {
                let error = Some(e.to_string());
                for (slot, flag) in out.iter_mut().zip(flags) {
                    if slot.is_none() {
                        *slot =
                            Some(self.fallback(flag, None, CheckSource::Default, error.clone()));
                    }
                }
            }
        }
        out.into_iter().flatten().collect()
    }

    // -----------------------------------------------------------------------
    // The synchronous part: offline, local, result cache
    // -----------------------------------------------------------------------

    /// The value of a check when it can be had without waiting: offline
    /// defaults, local evaluation, or the result cache. `None`: take the
    /// slow path. Allocation-free on a hit.
    #[inline]
    pub(crate) fn check_now(&self, flag: &str, context: &Context<'_>) -> Option<bool> {
        let inner = &*self.inner;
        if inner.offline {
            return Some(self.default_value(flag, None));
        }
        if let Some(ds) = &inner.datastream {
            let events = ds.options.flag_check_events && inner.events.is_some();
            let local =
                ds.store
                    .evaluate(flag, context, &EvalOptions::new(), coarse_utc_now(), |e| {
                        if events {
                            self.enqueue_flag_check(e, context);
                        }
                        e.value
                    });
            match local {
                Local::Done(value) => return Some(value),
                Local::Conflict { kind } => {
                    return Some(self.key_conflict(ds, flag, context, kind, None).value);
                }
                // Read what is missing from Redis on the slow path.
                Local::Need { .. } | Local::NoFlag | Local::NotReady if ds.is_replicator() => {
                    return None;
                }
                // Ask for the entity on the slow path.
                Local::Need { .. } if ds.is_connected() => return None,
                Local::Need { .. } | Local::NoFlag | Local::NotReady => {}
            }
        }
        if flag.is_empty() {
            return None;
        }
        inner.cache.peek_with(
            &FlagCacheKey::new(flag, context.company_pairs(), context.user_pairs()),
            |check| check.value,
        )
    }

    /// [`check_now`](Self::check_now) with the full outcome.
    pub(crate) fn check_now_detailed(
        &self,
        flag: &str,
        context: &Context<'_>,
        default: Option<bool>,
    ) -> Option<FlagCheck> {
        let inner = &*self.inner;
        if inner.offline {
            return Some(self.fallback(flag, default, CheckSource::Offline, None));
        }
        if let Some(ds) = &inner.datastream {
            match self.evaluate_locally(ds, flag, context, &Preflight::NONE, default) {
                Local::Done(check) => return Some(check),
                Local::Conflict { kind } => {
                    return Some(self.key_conflict(ds, flag, context, kind, default));
                }
                Local::Need { .. } | Local::NoFlag | Local::NotReady if ds.is_replicator() => {
                    return None;
                }
                Local::Need { .. } if ds.is_connected() => return None,
                Local::Need { .. } | Local::NoFlag | Local::NotReady => {}
            }
        }
        self.cached_check(flag, context)
    }

    /// A local evaluation with the full outcome, queueing the `flag_check`
    /// event.
    fn evaluate_locally(
        &self,
        ds: &DataStream,
        flag: &str,
        context: &Context<'_>,
        preflight: &Preflight<'_>,
        default: Option<bool>,
    ) -> Local<FlagCheck> {
        self.evaluate_locally_with::<false>(ds, flag, context, preflight, default)
    }

    /// [`evaluate_locally`](Self::evaluate_locally); with `MISSING_OK` an
    /// entity the store lacks is evaluated as absent (replicator mode).
    fn evaluate_locally_with<const MISSING_OK: bool>(
        &self,
        ds: &DataStream,
        flag: &str,
        context: &Context<'_>,
        preflight: &Preflight<'_>,
        default: Option<bool>,
    ) -> Local<FlagCheck> {
        let events = ds.options.flag_check_events && self.inner.events.is_some();
        let options = preflight.engine_options();
        ds.store
            .evaluate_with::<MISSING_OK, _>(flag, context, &options, coarse_utc_now(), |e| {
                if events {
                    self.enqueue_flag_check(e, context);
                }
                let mut check = FlagCheck::from_evaluation(e, false);
                if e.err.is_some() {
                    // Invalid input: the per-call default wins over the flag's.
                    if let Some(d) = default {
                        check.value = d;
                    }
                }
                check
            })
    }

    /// The answer to a key conflict (two of the caller's keys name different
    /// entities): the flag's default, an error, no API request (as the
    /// official SDKs do), and a `flag_check` event.
    fn key_conflict(
        &self,
        ds: &DataStream,
        flag: &str,
        context: &Context<'_>,
        kind: EntityKind,
        default: Option<bool>,
    ) -> FlagCheck {
        let value = default
            .or_else(|| ds.store.flag_default(flag))
            .unwrap_or_else(|| self.default_value(flag, None));
        let check = FlagCheck {
            flag: flag.to_owned(),
            value,
            reason: FlagCheck::REASON_KEY_CONFLICT.to_owned(),
            rule_id: None,
            rule_type: None,
            flag_id: None,
            company_id: None,
            user_id: None,
            entitlement: None,
            feature_usage: None,
            feature_allocation: None,
            error: Some(
                match kind {
                    EntityKind::Company => "the company keys of the check name different companies",
                    EntityKind::User => "the user keys of the check name different users",
                }
                .to_owned(),
            ),
            source: CheckSource::Local,
        };
        if ds.options.flag_check_events && self.inner.events.is_some() {
            let mut body = FlagCheckBody::builder(flag, value, FlagCheck::REASON_KEY_CONFLICT)
                .error(FlagCheck::REASON_KEY_CONFLICT);
            if let Some(keys) = context.company_map() {
                body = body.req_company(keys);
            }
            if let Some(keys) = context.user_map() {
                body = body.req_user(keys);
            }
            if let Ok(body) = body.build() {
                let _ = self.enqueue(EventBody::FlagCheck(Box::new(body)));
            }
        }
        check
    }

    /// Queues the `flag_check` event of a local evaluation.
    fn enqueue_flag_check(&self, e: &Evaluation<'_>, context: &Context<'_>) {
        let mut body = FlagCheckBody::builder(e.flag_key, e.value, e.reason.to_string());
        if let Some(id) = e.flag_id {
            body = body.flag_id(id);
        }
        if let Some(id) = e.rule_id {
            body = body.rule_id(id);
        }
        if let Some(id) = e.company_id {
            body = body.company_id(id);
        }
        if let Some(id) = e.user_id {
            body = body.user_id(id);
        }
        if let Some(keys) = context.company_map() {
            body = body.req_company(keys);
        }
        if let Some(keys) = context.user_map() {
            body = body.req_user(keys);
        }
        match body.build() {
            // A full queue is counted by the buffer; the check goes on.
            Ok(body) => {
                let _ = self.enqueue(EventBody::FlagCheck(Box::new(body)));
            }
            Err(error) => tracing::debug!(%error, "flag_check event not queued"),
        }
    }

    // -----------------------------------------------------------------------
    // The slow path: waiting for entities, the API, defaults
    // -----------------------------------------------------------------------

    /// The part of a check that may wait. Callers box its future, so that
    /// the future of a check answered synchronously stays small.
    pub(crate) async fn check_flag_slow(
        &self,
        flag: &str,
        context: Context<'_>,
        options: CheckOptions<'_>,
    ) -> FlagCheck {
        if self.inner.offline {
            return self.fallback(flag, options.default, CheckSource::Offline, None);
        }
        if flag.trim().is_empty() {
            return self.fallback(
                flag,
                options.default,
                CheckSource::Default,
                Some("the flag key is empty".to_owned()),
            );
        }
        let preflight = match options.preflight() {
            Ok(p) => p,
            Err(reason) => {
                return self.fallback(
                    flag,
                    options.default,
                    CheckSource::Default,
                    Some(reason.to_owned()),
                );
            }
        };
        #[cfg(feature = "redis")]
        if let Some(ds) = &self.inner.datastream
            && let Some(link) = &ds.replicator
        {
            match link.fill(&ds.store, flag, &context).await {
                Ok(None) => match self.evaluate_locally_with::<true>(
                    ds,
                    flag,
                    &context,
                    &preflight,
                    options.default,
                ) {
                    Local::Done(check) => return check,
                    Local::Conflict { kind } => {
                        return self.key_conflict(ds, flag, &context, kind, options.default);
                    }
                    _ => {}
                },
                Ok(Some(kind)) => {
                    return self.key_conflict(ds, flag, &context, kind, options.default);
                }
                Err(reason) => {
                    tracing::debug!(flag, reason, "not answerable from Redis; asking the API");
                }
            }
            link.fallbacks
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        if let Some(ds) = &self.inner.datastream
            && !ds.is_replicator()
        {
            #[cfg(feature = "redis")]
            if let Some(check) = self
                .entities_from_redis(ds, flag, &context, &preflight, options.default)
                .await
            {
                return check;
            }
            match self.evaluate_locally(ds, flag, &context, &preflight, options.default) {
                Local::Done(check) => return check,
                Local::Conflict { kind } => {
                    return self.key_conflict(ds, flag, &context, kind, options.default);
                }
                Local::Need { company, user } if ds.is_connected() => {
                    match self.fetch_entities(ds, &context, company, user).await {
                        Ok(()) => match self.evaluate_locally(
                            ds,
                            flag,
                            &context,
                            &preflight,
                            options.default,
                        ) {
                            Local::Done(check) => return check,
                            Local::Conflict { kind } => {
                                return self.key_conflict(
                                    ds,
                                    flag,
                                    &context,
                                    kind,
                                    options.default,
                                );
                            }
                            _ => {}
                        },
                        Err(reason) => {
                            tracing::debug!(
                                flag,
                                reason,
                                "entity not available locally; asking the API"
                            );
                        }
                    }
                }
                _ => {}
            }
        }
        if preflight.is_empty()
            && let Some(check) = self.cached_check(flag, &context)
        {
            return check;
        }
        self.check_via_api(flag, &context, &preflight, options)
            .await
    }

    /// Direct mode sharing entities through Redis: the company or user the
    /// store lacks, read from Redis (and subscribed to, so it stays
    /// current), then the check evaluated. `None`: not answerable this way.
    #[cfg(feature = "redis")]
    async fn entities_from_redis(
        &self,
        ds: &DataStream,
        flag: &str,
        context: &Context<'_>,
        preflight: &Preflight<'_>,
        default: Option<bool>,
    ) -> Option<FlagCheck> {
        let mirror = ds.mirror.as_ref()?;
        let probe = ds
            .store
            .evaluate(flag, context, &EvalOptions::new(), coarse_utc_now(), |_| ());
        if !matches!(probe, Local::Need { .. }) {
            return None;
        }
        let filled = match mirror.fill(&ds.store, context).await {
            Ok(filled) => filled,
            Err(reason) => {
                tracing::debug!(flag, reason, "Redis could not answer; asking DataStream");
                return None;
            }
        };
        if let Some(kind) = filled.conflict {
            return Some(self.key_conflict(ds, flag, context, kind, default));
        }
        if filled.company
            && let Some(keys) = context.company_map()
        {
            ds.subscribe(EntityKind::Company, keys);
        }
        if filled.user
            && let Some(keys) = context.user_map()
        {
            ds.subscribe(EntityKind::User, keys);
        }
        match self.evaluate_locally(ds, flag, context, preflight, default) {
            Local::Done(check) => Some(check),
            Local::Conflict { kind } => Some(self.key_conflict(ds, flag, context, kind, default)),
            _ => None,
        }
    }

    /// Asks the DataStream server for the missing company and/or user and
    /// waits for them, at most the resource timeout.
    async fn fetch_entities(
        &self,
        ds: &DataStream,
        context: &Context<'_>,
        company: bool,
        user: bool,
    ) -> Result<(), String> {
        let mut pending = Vec::with_capacity(2);
        let wanted = [
            (company, EntityKind::Company, context.company_map()),
            (user, EntityKind::User, context.user_map()),
        ];
        for (needed, kind, keys) in wanted {
            let (true, Some(keys)) = (needed, keys) else {
                continue;
            };
            let registration = ds.waiters.register(kind, &keys);
            if registration.send && !ds.subscribe(kind, keys.clone()) {
                return Err("the DataStream task is gone".to_owned());
            }
            pending.push((kind, keys, registration.pending));
        }
        let deadline = Instant::now() + ds.options.resource_timeout;
        for (kind, keys, p) in pending {
            let left = deadline.saturating_duration_since(Instant::now());
            match p.wait(left).await {
                Some(Outcome::Arrived) => {}
                Some(Outcome::Failed(reason)) => return Err(reason),
                None => {
                    ds.gave_up(kind, keys);
                    return Err(format!(
                        "no answer within {:?}",
                        ds.options.resource_timeout
                    ));
                }
            }
        }
        Ok(())
    }

    /// One API request for the check, through the circuit breaker.
    async fn check_via_api(
        &self,
        flag: &str,
        context: &Context<'_>,
        preflight: &Preflight<'_>,
        options: CheckOptions<'_>,
    ) -> FlagCheck {
        let permit = self.inner.breaker.permit(Instant::now());
        if permit == Permit::Refuse {
            return self.fallback(
                flag,
                options.default,
                CheckSource::Default,
                Some("flag checks are paused: the API kept failing (circuit breaker open)".into()),
            );
        }
        // A check changes nothing on the server: it may be resent.
        // The retry comes after 50 ms, not the REST policy's second: it has
        // to fit in the check's own short deadline.
        let request = RequestOptions::new()
            .timeout(options.timeout.unwrap_or(self.inner.check_timeout))
            .max_retries(self.inner.check_retries)
            .retry_delay(CHECK_RETRY_DELAY)
            .idempotent(true);
        let op = CheckFlag::new(flag, request_body(context, preflight));
        let answer = self.send_with(op, request).await;
        let success = match &answer {
            Ok(_) => true,
            Err(e) => !is_outage(e),
        };
        self.inner.breaker.record(permit, success, Instant::now());
        match answer {
            Ok(data) if preflight.is_empty() => self.remember(flag, context, data),
            Ok(data) => FlagCheck::from_api(data),
            Err(e) => {
                tracing::debug!(flag, error = %e, "flag check failed; using the default");
                self.fallback(
                    flag,
                    options.default,
                    CheckSource::Default,
                    Some(e.to_string()),
                )
            }
        }
    }

    /// Every flag of `flags` evaluated locally, or `None` when any of them
    /// cannot be (the caller then asks the API for all of them).
    async fn check_flags_locally(
        &self,
        flags: &[&str],
        context: &Context<'_>,
    ) -> Option<Vec<FlagCheck>> {
        let ds = self.inner.datastream.as_ref()?;
        #[cfg(feature = "redis")]
        if let Some(link) = &ds.replicator {
            // Each flag read through the in-process layer; any miss in
            // Redis sends the whole set to the API.
            if flags.is_empty() {
                return None;
            }
            let mut out = Vec::with_capacity(flags.len());
            for flag in flags {
                if link.fill(&ds.store, flag, context).await.ok()?.is_some() {
                    return None;
                }
                match ds.store.evaluate_with::<true, _>(
                    flag,
                    context,
                    &EvalOptions::new(),
                    coarse_utc_now(),
                    |e| FlagCheck::from_evaluation(e, false),
                ) {
                    Local::Done(check) => out.push(check),
                    _ => return None,
                }
            }
            return Some(out);
        }
        if !ds.store.is_ready() {
            return None;
        }
        let evaluate = |flag: &str| {
            ds.store
                .evaluate(flag, context, &EvalOptions::new(), coarse_utc_now(), |e| {
                    FlagCheck::from_evaluation(e, false)
                })
        };
        let keys: Vec<String> = if flags.is_empty() {
            ds.store.flag_keys()
        } else {
            flags.iter().map(|f| (*f).to_owned()).collect()
        };
        // Entities missing for one flag are missing for all of them.
        if let Some(first) = keys.first()
            && let Local::Need { company, user } = evaluate(first)
        {
            if !ds.is_connected() {
                return None;
            }
            self.fetch_entities(ds, context, company, user).await.ok()?;
        }
        let mut out = Vec::with_capacity(keys.len());
        for flag in &keys {
            match evaluate(flag) {
                Local::Done(check) => out.push(check),
                _ => return None,
            }
        }
        Some(out)
    }

    async fn all_flags_via_api(&self, context: &Context<'_>) -> Vec<FlagCheck> {
        match self
            .send(CheckFlags::new(request_body(context, &Preflight::NONE)))
            .await
        {
            Ok(data) => data
                .flags
                .into_iter()
                .map(|f| {
                    let flag = f.flag.clone();
                    self.remember(&flag, context, f)
                })
                .collect(),
            Err(e) => self.all_defaults(&[], CheckSource::Default, Some(e.to_string())),
        }
    }

    /// Defaults for `flags`, or for every flag with a client default.
    fn all_defaults(
        &self,
        flags: &[&str],
        source: CheckSource,
        error: Option<String>,
    ) -> Vec<FlagCheck> {
        if !flags.is_empty() {
            return flags
                .iter()
                .map(|flag| self.fallback(flag, None, source, error.clone()))
                .collect();
        }
        let mut names: Vec<&String> = self.inner.defaults.keys().collect();
        names.sort();
        names
            .into_iter()
            .map(|flag| self.fallback(flag, None, source, error.clone()))
            .collect()
    }

    /// A cached API answer as a [`FlagCheck`] marked [`CheckSource::Cache`].
    fn cached_check(&self, flag: &str, context: &Context<'_>) -> Option<FlagCheck> {
        self.inner.cache.peek_with(
            &FlagCacheKey::new(flag, context.company_pairs(), context.user_pairs()),
            |hit| {
                let mut check = FlagCheck::clone(hit);
                check.source = CheckSource::Cache;
                check
            },
        )
    }

    /// Caches an API answer and returns it as a check. A failing cache never
    /// fails or changes the check.
    fn remember(
        &self,
        flag: &str,
        context: &Context<'_>,
        data: CheckFlagResponseData,
    ) -> FlagCheck {
        let check = Arc::new(FlagCheck::from_api(data));
        self.inner.cache.insert(
            &FlagCacheKey::new(flag, context.company_pairs(), context.user_pairs()),
            check.clone(),
        );
        Arc::unwrap_or_clone(check)
    }

    /// The default chain's value: per-call default, client default, `false`.
    fn default_value(&self, flag: &str, default: Option<bool>) -> bool {
        default
            .or_else(|| self.inner.defaults.get(flag).copied())
            .unwrap_or(false)
    }

    /// The default chain: per-call default, the client's defaults, `false`.
    fn fallback(
        &self,
        flag: &str,
        default: Option<bool>,
        source: CheckSource,
        error: Option<String>,
    ) -> FlagCheck {
        let (value, reason) = match (default, self.inner.defaults.get(flag)) {
            (Some(v), _) => (v, "per-call default"),
            (None, Some(v)) => (*v, FlagCheck::REASON_CLIENT_DEFAULT),
            (None, None) => (false, "no default configured"),
        };
        FlagCheck {
            flag: flag.to_owned(),
            value,
            reason: reason.to_owned(),
            rule_id: None,
            rule_type: None,
            flag_id: None,
            company_id: None,
            user_id: None,
            entitlement: None,
            feature_usage: None,
            feature_allocation: None,
            error,
            source,
        }
    }
}
