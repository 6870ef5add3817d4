//! Flag checks: cache, then API, then defaults. They never fail.

use std::sync::Arc;

use flagwire_core::Nullable;
use flagwire_core::events::Keys;
use flagwire_core::schematic::features::{CheckFlag, CheckFlags};
use flagwire_core::schematic::models::{
    CheckFlagRequestBody, CheckFlagResponseData, FeatureEntitlement,
};

use std::time::Duration;

use super::client::Client;
use super::options::RequestOptions;
use crate::cache::FlagCacheKey;

/// What the flag cache stores: the full answer of a check, shared.
pub type CachedCheck = Arc<FlagCheck>;

/// Where the value of a flag check came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CheckSource {
    /// The local flag cache (an earlier API answer still fresh).
    Cache,
    /// The API, just now.
    Api,
    /// A default: the API could not answer (error, timeout).
    Default,
    /// A default, because the client is offline.
    Offline,
}

/// Options of [`Client::check_flag_with`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CheckOptions {
    /// Used before the client's defaults when the API cannot answer.
    pub default: Option<bool>,
    /// Deadline of the API request for this check.
    pub timeout: Option<Duration>,
}

impl CheckOptions {
    /// No options.
    pub const fn new() -> Self {
        CheckOptions {
            default: None,
            timeout: None,
        }
    }

    /// Sets the per-call default.
    pub const fn default(mut self, value: bool) -> Self {
        self.default = Some(value);
        self
    }

    /// Sets the deadline of the API request.
    pub const fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }
}

/// The detailed outcome of a flag check.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct FlagCheck {
    /// The flag key.
    pub flag: String,
    /// The value: the API's when it answered (a `false` stays `false`),
    /// otherwise the default.
    pub value: bool,
    /// Why: the API's reason, or which default was used.
    pub reason: String,
    /// The rule that matched, if any.
    pub rule_id: Option<String>,
    /// The flag's ID, if the API knows the flag.
    pub flag_id: Option<String>,
    /// The company the check was resolved to, if any.
    pub company_id: Option<String>,
    /// The user the check was resolved to, if any.
    pub user_id: Option<String>,
    /// The entitlement behind the value, if the API sent one.
    pub entitlement: Option<FeatureEntitlement>,
    /// The API's error message, or why the API could not be asked.
    pub error: Option<String>,
    /// Where the value came from.
    pub source: CheckSource,
}

impl FlagCheck {
    fn from_api(data: CheckFlagResponseData) -> Self {
        FlagCheck {
            flag: data.flag,
            value: data.value,
            reason: data.reason,
            rule_id: data.rule_id,
            flag_id: data.flag_id,
            company_id: data.company_id,
            user_id: data.user_id,
            entitlement: data.entitlement,
            error: data.error,
            source: CheckSource::Api,
        }
    }
}

fn body(company: &Keys, user: &Keys) -> CheckFlagRequestBody {
    let mut body = CheckFlagRequestBody::default();
    if !company.is_empty() {
        body.company = Nullable::Value(company.clone());
    }
    if !user.is_empty() {
        body.user = Nullable::Value(user.clone());
    }
    body
}

impl Client {
    /// The value of `flag` for a company and/or user (pass an empty map for
    /// either). Never fails: the local cache, then the API, then the
    /// client's default for the flag, then `false`.
    ///
    /// A `false` from the API is returned as `false`, never replaced by a
    /// default.
    pub async fn check_flag(&self, flag: &str, company: &Keys, user: &Keys) -> bool {
        if let Some(hit) = self.cached(flag, company, user) {
            return hit.value;
        }
        Box::pin(self.check_flag_slow(flag, company, user, None, None))
            .await
            .value
    }

    /// [`check_flag`](Self::check_flag) with a default for this call, used
    /// before the client's defaults when the API cannot answer.
    pub async fn check_flag_or(
        &self,
        flag: &str,
        company: &Keys,
        user: &Keys,
        default: bool,
    ) -> bool {
        if let Some(hit) = self.cached(flag, company, user) {
            return hit.value;
        }
        Box::pin(self.check_flag_slow(flag, company, user, Some(default), None))
            .await
            .value
    }

    /// The full outcome of a check: value, reason, rule, entitlement and
    /// [`CheckSource`]. Never fails, like [`check_flag`](Self::check_flag).
    pub async fn check_flag_detailed(
        &self,
        flag: &str,
        company: &Keys,
        user: &Keys,
        default: Option<bool>,
    ) -> FlagCheck {
        if let Some(check) = self.cached_check(flag, company, user) {
            return check;
        }
        Box::pin(self.check_flag_slow(flag, company, user, default, None)).await
    }

    /// A check with options: a per-call default and a deadline shorter (or
    /// longer) than the client's timeout. Never fails.
    ///
    /// ```
    /// use std::time::Duration;
    /// use flagwire::schematic::{CheckOptions, Client};
    /// use flagwire_core::events::Keys;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), flagwire::Error> {
    /// let client = Client::builder("sch_dev_example").offline(true).build()?;
    /// let options = CheckOptions::new().default(true).timeout(Duration::from_millis(300));
    /// let check = client.check_flag_with("new-editor", &Keys::new(), &Keys::new(), options).await;
    /// assert!(check.value);
    /// # Ok(()) }
    /// ```
    pub async fn check_flag_with(
        &self,
        flag: &str,
        company: &Keys,
        user: &Keys,
        options: CheckOptions,
    ) -> FlagCheck {
        if let Some(check) = self.cached_check(flag, company, user) {
            return check;
        }
        Box::pin(self.check_flag_slow(flag, company, user, options.default, options.timeout)).await
    }

    /// Checks several flags for one context with at most one request (for
    /// the flags not in the cache). Never fails; flags the API did not
    /// return get their defaults.
    ///
    /// With no flag keys, returns every flag the API knows for the context
    /// (or, when it cannot answer, one entry per client default).
    pub async fn check_flags(&self, flags: &[&str], company: &Keys, user: &Keys) -> Vec<FlagCheck> {
        if flags.is_empty() {
            return self.all_flags(company, user).await;
        }
        let mut out: Vec<Option<FlagCheck>> = flags
            .iter()
            .map(|flag| self.cached_check(flag, company, user))
            .collect();
        if out.iter().all(Option::is_some) {
            return out.into_iter().flatten().collect();
        }
        let answer = if self.inner.offline {
            Err(None)
        } else {
            self.send(CheckFlags::new(body(company, user)))
                .await
                .map_err(Some)
        };
        match answer {
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
                        Some(data) => self.remember(flag, company, user, data),
                        None => self.fallback(
                            flag,
                            None,
                            CheckSource::Default,
                            Some("flag not returned by the API".to_owned()),
                        ),
                    });
                }
            }
            Err(err) => {
                let (source, error) = match err {
                    None => (CheckSource::Offline, None),
                    Some(e) => (CheckSource::Default, Some(e.to_string())),
                };
                for (slot, flag) in out.iter_mut().zip(flags) {
                    if slot.is_none() {
                        *slot = Some(self.fallback(flag, None, source, error.clone()));
                    }
                }
            }
        }
        out.into_iter().flatten().collect()
    }

    async fn all_flags(&self, company: &Keys, user: &Keys) -> Vec<FlagCheck> {
        let (source, error) = if self.inner.offline {
            (CheckSource::Offline, None)
        } else {
            match self.send(CheckFlags::new(body(company, user))).await {
                Ok(data) => {
                    return data
                        .flags
                        .into_iter()
                        .map(|f| {
                            let flag = f.flag.clone();
                            self.remember(&flag, company, user, f)
                        })
                        .collect();
                }
                Err(e) => (CheckSource::Default, Some(e.to_string())),
            }
        };
        let mut names: Vec<&String> = self.inner.defaults.keys().collect();
        names.sort();
        names
            .into_iter()
            .map(|flag| self.fallback(flag, None, source, error.clone()))
            .collect()
    }

    /// The API and default part of a check. Callers box its future, so that
    /// the future of a check answered from the cache stays a few bytes
    /// instead of carrying (and moving) the whole request state; the
    /// allocation only happens on a miss, which sends a request anyway.
    async fn check_flag_slow(
        &self,
        flag: &str,
        company: &Keys,
        user: &Keys,
        default: Option<bool>,
        timeout: Option<Duration>,
    ) -> FlagCheck {
        if self.inner.offline {
            return self.fallback(flag, default, CheckSource::Offline, None);
        }
        let op = CheckFlag::new(flag, body(company, user));
        let answer = match timeout {
            Some(t) => self.send_with(op, RequestOptions::new().timeout(t)).await,
            None => self.send(op).await,
        };
        match answer {
            Ok(data) => self.remember(flag, company, user, data),
            Err(e) => {
                tracing::debug!(flag, error = %e, "flag check failed; using the default");
                self.fallback(flag, default, CheckSource::Default, Some(e.to_string()))
            }
        }
    }

    #[inline]
    fn cached(&self, flag: &str, company: &Keys, user: &Keys) -> Option<CachedCheck> {
        self.inner
            .cache
            .get(&FlagCacheKey::new(flag, company, user))
    }

    /// A cached check as a [`FlagCheck`] marked [`CheckSource::Cache`].
    fn cached_check(&self, flag: &str, company: &Keys, user: &Keys) -> Option<FlagCheck> {
        self.cached(flag, company, user).map(|hit| {
            let mut check = Arc::unwrap_or_clone(hit);
            check.source = CheckSource::Cache;
            check
        })
    }

    /// Caches an API answer and returns it as a check. A failing cache
    /// never fails or changes the check.
    fn remember(
        &self,
        flag: &str,
        company: &Keys,
        user: &Keys,
        data: CheckFlagResponseData,
    ) -> FlagCheck {
        let check = Arc::new(FlagCheck::from_api(data));
        self.inner
            .cache
            .insert(&FlagCacheKey::new(flag, company, user), check.clone());
        Arc::unwrap_or_clone(check)
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
            (None, Some(v)) => (*v, "client default"),
            (None, None) => (false, "no default configured"),
        };
        FlagCheck {
            flag: flag.to_owned(),
            value,
            reason: reason.to_owned(),
            rule_id: None,
            flag_id: None,
            company_id: None,
            user_id: None,
            entitlement: None,
            error,
            source,
        }
    }
}
