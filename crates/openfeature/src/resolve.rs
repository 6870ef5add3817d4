//! How a Schematic [`FlagCheck`] becomes OpenFeature resolution details or
//! an evaluation error.
//!
//! | check | OpenFeature |
//! | --- | --- |
//! | a rule matched (local or API) | value, reason `TARGETING_MATCH`, variant = the rule id |
//! | no rule matched: the flag's default (local or API) | value, reason `DEFAULT`, no variant |
//! | answered from the result cache | value, reason `CACHED`, variant = the rule id if one matched |
//! | offline, with a client default for the flag | value, reason `STATIC` |
//! | offline, without one | `false`, reason `DISABLED` |
//! | the flag does not exist | error `FLAG_NOT_FOUND` |
//! | the check's keys name two different entities | error `INVALID_CONTEXT` |
//! | no one could answer, DataStream not ready or provider not initialised | error `PROVIDER_NOT_READY` |
//! | no one could answer (API down, timeout, breaker open, ...) | error `GENERAL` with the reason |
//! | the engine or the API reported an error | error `GENERAL` with it |
//!
//! On an error OpenFeature hands the caller's default back (in Rust: the
//! `Err` the caller unwraps with its default).

use flagwire::schematic::{CheckSource, FlagCheck};
use flagwire_core::rules::Reason;
use open_feature::provider::ResolutionDetails;
use open_feature::{EvaluationError, EvaluationErrorCode, EvaluationReason, FlagMetadata};

/// The reason the SDK's fallback gives when the client has a default for the
/// flag.
const CLIENT_DEFAULT: &str = FlagCheck::REASON_CLIENT_DEFAULT;
/// The reason the SDK gives to a key conflict.
const KEY_CONFLICT: &str = FlagCheck::REASON_KEY_CONFLICT;

/// Flag metadata keys set on boolean details when the check carries
/// entitlement data.
pub mod metadata {
    /// Usage counted against the matched usage-based entitlement (`Int`).
    pub const FEATURE_USAGE: &str = "feature_usage";
    /// Allocation of the matched usage-based entitlement (`Int`).
    pub const FEATURE_ALLOCATION: &str = "feature_allocation";
    /// The entitled feature's key (`String`).
    pub const FEATURE_KEY: &str = "entitlement.feature_key";
    /// The entitlement's value type, e.g. `boolean`, `numeric`, `credit` (`String`).
    pub const VALUE_TYPE: &str = "entitlement.value_type";
    /// The entitlement's allocation (`Int`).
    pub const ALLOCATION: &str = "entitlement.allocation";
    /// The entitlement's usage (`Int`).
    pub const USAGE: &str = "entitlement.usage";
    /// The entitlement's soft limit (`Int`).
    pub const SOFT_LIMIT: &str = "entitlement.soft_limit";
    /// Credits remaining, for credit entitlements (`Float`).
    pub const CREDIT_REMAINING: &str = "entitlement.credit_remaining";
    /// The metric period, for usage entitlements (`String`).
    pub const METRIC_PERIOD: &str = "entitlement.metric_period";
}

/// Whether no one could answer because the provider is not ready yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Readiness {
    Ready,
    NotReady,
}

pub(crate) fn error(code: EvaluationErrorCode, message: impl Into<String>) -> EvaluationError {
    EvaluationError {
        code,
        message: Some(message.into()),
    }
}

/// Maps one check; see the [module docs](self).
pub(crate) fn details(
    check: FlagCheck,
    readiness: Readiness,
) -> Result<ResolutionDetails<bool>, EvaluationError> {
    match check.source {
        CheckSource::Offline => {
            let reason = if check.reason == CLIENT_DEFAULT {
                EvaluationReason::Static
            } else {
                EvaluationReason::Disabled
            };
            return Ok(ResolutionDetails {
                value: check.value,
                variant: None,
                reason: Some(reason),
                flag_metadata: None,
            });
        }
        CheckSource::Default => {
            let why = check.error.unwrap_or_else(|| check.reason.clone());
            let code = if check.flag.trim().is_empty() {
                EvaluationErrorCode::FlagNotFound
            } else if readiness == Readiness::NotReady {
                EvaluationErrorCode::ProviderNotReady
            } else {
                EvaluationErrorCode::General(why.clone())
            };
            return Err(error(
                code,
                format!("the flag check fell back to a default: {why}"),
            ));
        }
        CheckSource::Local | CheckSource::Cache | CheckSource::Api => {}
        // A source added later: report what is known.
        _ => {}
    }
    if check.flag_id.is_none() && check.reason == Reason::FLAG_NOT_FOUND {
        return Err(error(
            EvaluationErrorCode::FlagNotFound,
            format!("no flag `{}`", check.flag),
        ));
    }
    if let Some(why) = check.error {
        let code = if check.reason == KEY_CONFLICT {
            EvaluationErrorCode::InvalidContext
        } else {
            EvaluationErrorCode::General(why.clone())
        };
        return Err(error(code, why));
    }
    let reason = match (check.source, &check.rule_id) {
        (CheckSource::Cache, _) => EvaluationReason::Cached,
        (_, Some(_)) => EvaluationReason::TargetingMatch,
        (_, None) => EvaluationReason::Default,
    };
    let flag_metadata = entitlement_metadata(&check);
    Ok(ResolutionDetails {
        value: check.value,
        variant: check.rule_id,
        reason: Some(reason),
        flag_metadata,
    })
}

/// Entitlement figures of a check as flag metadata; `None` (no allocation)
/// when the check has none.
fn entitlement_metadata(check: &FlagCheck) -> Option<FlagMetadata> {
    if check.feature_usage.is_none()
        && check.feature_allocation.is_none()
        && check.entitlement.is_none()
    {
        return None;
    }
    let mut meta = FlagMetadata::default();
    if let Some(usage) = check.feature_usage {
        meta.add_value(metadata::FEATURE_USAGE, usage);
    }
    if let Some(allocation) = check.feature_allocation {
        meta.add_value(metadata::FEATURE_ALLOCATION, allocation);
    }
    if let Some(e) = &check.entitlement {
        meta.add_value(metadata::FEATURE_KEY, e.feature_key.as_str());
        meta.add_value(metadata::VALUE_TYPE, e.value_type.to_string());
        if let Some(v) = e.allocation {
            meta.add_value(metadata::ALLOCATION, v);
        }
        if let Some(v) = e.usage {
            meta.add_value(metadata::USAGE, v);
        }
        if let Some(v) = e.soft_limit {
            meta.add_value(metadata::SOFT_LIMIT, v);
        }
        if let Some(v) = e.credit_remaining {
            meta.add_value(metadata::CREDIT_REMAINING, v);
        }
        if let Some(p) = &e.metric_period {
            meta.add_value(metadata::METRIC_PERIOD, p.to_string());
        }
    }
    Some(meta)
}

#[cfg(test)]
mod tests {
    use flagwire::schematic::Client;

    use super::*;

    /// A check to edit: the SDK's own type, taken from an offline client.
    fn base(flag: &str) -> FlagCheck {
        let client = Client::builder("sch_dev_test")
            .offline(true)
            .build()
            .unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(client.check_flag_detailed(flag, ()))
    }

    fn answered(source: CheckSource) -> FlagCheck {
        let mut check = base("f");
        check.source = source;
        check.value = true;
        check.flag_id = Some("flag_1".into());
        check.reason = Reason::NO_RULES_MATCHED.into();
        check
    }

    fn code(result: Result<ResolutionDetails<bool>, EvaluationError>) -> EvaluationErrorCode {
        result.unwrap_err().code
    }

    #[test]
    fn reasons_follow_source_and_rule() {
        for (source, rule, reason) in [
            (CheckSource::Local, None, EvaluationReason::Default),
            (CheckSource::Api, None, EvaluationReason::Default),
            (
                CheckSource::Local,
                Some("rule_1"),
                EvaluationReason::TargetingMatch,
            ),
            (
                CheckSource::Api,
                Some("rule_1"),
                EvaluationReason::TargetingMatch,
            ),
            (CheckSource::Cache, None, EvaluationReason::Cached),
            (CheckSource::Cache, Some("rule_1"), EvaluationReason::Cached),
        ] {
            let mut check = answered(source);
            check.rule_id = rule.map(str::to_owned);
            let d = details(check, Readiness::Ready).unwrap();
            assert!(d.value);
            assert_eq!(d.reason, Some(reason), "{source:?} {rule:?}");
            assert_eq!(d.variant.as_deref(), rule);
            assert!(d.flag_metadata.is_none());
        }
    }

    #[test]
    fn offline_is_static_with_a_client_default_else_disabled() {
        let mut check = base("f");
        assert_eq!(check.source, CheckSource::Offline);
        let d = details(check.clone(), Readiness::Ready).unwrap();
        assert_eq!(
            (d.value, d.reason),
            (false, Some(EvaluationReason::Disabled))
        );
        check.reason = CLIENT_DEFAULT.into();
        check.value = true;
        let d = details(check, Readiness::Ready).unwrap();
        assert_eq!((d.value, d.reason), (true, Some(EvaluationReason::Static)));
    }

    #[test]
    fn fallbacks_are_errors_with_the_right_code() {
        let mut check = base("f");
        check.source = CheckSource::Default;
        check.error = Some("HTTP 503".into());
        let general = details(check.clone(), Readiness::Ready).unwrap_err();
        assert_eq!(
            general.code,
            EvaluationErrorCode::General("HTTP 503".into())
        );
        assert!(general.message.unwrap().contains("HTTP 503"));
        assert_eq!(
            code(details(check.clone(), Readiness::NotReady)),
            EvaluationErrorCode::ProviderNotReady
        );
        check.flag = " ".into();
        assert_eq!(
            code(details(check, Readiness::Ready)),
            EvaluationErrorCode::FlagNotFound
        );
    }

    #[test]
    fn answers_with_errors_are_errors() {
        let mut missing = answered(CheckSource::Api);
        missing.flag_id = None;
        missing.value = false;
        missing.reason = Reason::FLAG_NOT_FOUND.into();
        assert_eq!(
            code(details(missing, Readiness::Ready)),
            EvaluationErrorCode::FlagNotFound
        );
        let mut conflict = answered(CheckSource::Local);
        conflict.reason = KEY_CONFLICT.into();
        conflict.error = Some("two companies".into());
        assert_eq!(
            code(details(conflict, Readiness::Ready)),
            EvaluationErrorCode::InvalidContext
        );
        let mut engine = answered(CheckSource::Local);
        engine.error = Some("preflight usage cannot be negative".into());
        assert!(matches!(
            code(details(engine, Readiness::Ready)),
            EvaluationErrorCode::General(_)
        ));
    }

    #[test]
    fn entitlement_figures_become_metadata() {
        let mut check = answered(CheckSource::Local);
        check.rule_id = Some("rule_1".into());
        check.feature_usage = Some(3);
        check.feature_allocation = Some(10);
        let d = details(check, Readiness::Ready).unwrap();
        let values = d.flag_metadata.unwrap().values;
        assert_eq!(values[metadata::FEATURE_USAGE], 3i64.into());
        assert_eq!(values[metadata::FEATURE_ALLOCATION], 10i64.into());
    }
}
