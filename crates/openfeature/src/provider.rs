//! [`SchematicProvider`]: the OpenFeature provider.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use flagwire::datastream::ConnectionState;
use flagwire::schematic::{BreakerState, Client};
use open_feature::provider::{
    FeatureProvider, ProviderMetadata, ProviderStatus, ResolutionDetails,
};
use open_feature::{
    EvaluationContext, EvaluationError, EvaluationErrorCode, EvaluationResult, StructValue,
    async_trait,
};

use crate::context::{self, ContextError, TargetingKey};
use crate::resolve::{self, Readiness};

/// The provider name reported in OpenFeature metadata, unless set with
/// [`ProviderBuilder::name`].
pub const DEFAULT_NAME: &str = "flagwire-schematic";
/// How long [`initialize`](FeatureProvider::initialize) waits for
/// DataStream's flags, unless set with [`ProviderBuilder::init_timeout`].
pub const DEFAULT_INIT_TIMEOUT: Duration = Duration::from_secs(5);

const NOT_INITIALISED: u8 = 0;
const INITIALISED: u8 = 1;
const INIT_TIMED_OUT: u8 = 2;

struct Shared {
    metadata: ProviderMetadata,
    targeting_key: TargetingKey,
    require_targeting_key: bool,
    init_timeout: Duration,
    stale_after: Duration,
    init: AtomicU8,
}

/// An OpenFeature provider answering boolean flags with Schematic through a
/// [`flagwire::schematic::Client`].
///
/// Cheap to clone: clones share the client and the state, so a clone kept
/// after handing the provider to OpenFeature reports the same
/// [`status`](FeatureProvider::status) and can [`track`](Self::track).
/// See the [crate docs](crate) for the mapping of contexts, reasons and
/// errors.
#[derive(Clone)]
pub struct SchematicProvider {
    client: Client,
    shared: Arc<Shared>,
}

impl fmt::Debug for SchematicProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SchematicProvider")
            .field("name", &self.shared.metadata.name)
            .field("client", &self.client)
            .field("targeting_key", &self.shared.targeting_key)
            .field("status", &self.status())
            .finish_non_exhaustive()
    }
}

/// Settings of a [`SchematicProvider`]; from [`SchematicProvider::builder`].
#[derive(Debug, Clone)]
#[must_use]
pub struct ProviderBuilder {
    client: Client,
    name: String,
    targeting_key: TargetingKey,
    require_targeting_key: bool,
    init_timeout: Duration,
    stale_after: Duration,
}

impl ProviderBuilder {
    /// The name reported in the provider's metadata (default
    /// [`DEFAULT_NAME`]).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// What the targeting key becomes (default: the user key `id`).
    pub fn targeting_key(mut self, mapping: TargetingKey) -> Self {
        self.targeting_key = mapping;
        self
    }

    /// Refuse contexts without a targeting key (`TARGETING_KEY_MISSING`).
    /// Off by default: Schematic can evaluate a flag for a company alone, or
    /// for no one.
    pub fn require_targeting_key(mut self, required: bool) -> Self {
        self.require_targeting_key = required;
        self
    }

    /// How long `initialize` waits for DataStream's flags (default
    /// [`DEFAULT_INIT_TIMEOUT`]). Without DataStream it returns at once.
    pub fn init_timeout(mut self, timeout: Duration) -> Self {
        self.init_timeout = timeout;
        self
    }

    /// How old DataStream data may get while the connection is down before
    /// the status says `STALE` (default zero: stale as soon as the
    /// connection is down).
    pub fn stale_after(mut self, age: Duration) -> Self {
        self.stale_after = age;
        self
    }

    /// The provider.
    pub fn build(self) -> SchematicProvider {
        SchematicProvider {
            client: self.client,
            shared: Arc::new(Shared {
                metadata: ProviderMetadata::new(self.name),
                targeting_key: self.targeting_key,
                require_targeting_key: self.require_targeting_key,
                init_timeout: self.init_timeout,
                stale_after: self.stale_after,
                init: AtomicU8::new(NOT_INITIALISED),
            }),
        }
    }
}

impl SchematicProvider {
    /// A provider with the default settings.
    pub fn new(client: Client) -> Self {
        Self::builder(client).build()
    }

    /// Starts configuring a provider for `client`.
    pub fn builder(client: Client) -> ProviderBuilder {
        ProviderBuilder {
            client,
            name: DEFAULT_NAME.to_owned(),
            targeting_key: TargetingKey::default(),
            require_targeting_key: false,
            init_timeout: DEFAULT_INIT_TIMEOUT,
            stale_after: Duration::ZERO,
        }
    }

    /// The Schematic client behind the provider.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The targeting-key mapping in use.
    pub fn targeting_key_mapping(&self) -> &TargetingKey {
        &self.shared.targeting_key
    }

    /// Whether `initialize` has run (whatever its outcome).
    pub fn is_initialized(&self) -> bool {
        self.shared.init.load(Ordering::Acquire) != NOT_INITIALISED
    }

    /// Whether `initialize` gave up waiting for DataStream's flags.
    pub fn initialize_timed_out(&self) -> bool {
        self.shared.init.load(Ordering::Acquire) == INIT_TIMED_OUT
    }

    /// Maps `context` to Schematic keys and checks `flag`, as
    /// [`resolve_bool_value`](FeatureProvider::resolve_bool_value) does.
    pub async fn resolve_bool(
        &self,
        flag: &str,
        context: &EvaluationContext,
    ) -> EvaluationResult<ResolutionDetails<bool>> {
        if !self.is_initialized() {
            return Err(resolve::error(
                EvaluationErrorCode::ProviderNotReady,
                "the provider has not been initialised (OpenFeature's set_provider does it)",
            ));
        }
        let shared = &*self.shared;
        let mapped = context::map(context, &shared.targeting_key, shared.require_targeting_key)
            .map_err(context_error)?;
        let check = self
            .client
            .check_flag_detailed(flag, mapped.as_context())
            .await;
        drop(mapped);
        let readiness = if check.source == flagwire::schematic::CheckSource::Default
            && self.datastream_not_ready()
        {
            Readiness::NotReady
        } else {
            Readiness::Ready
        };
        resolve::details(check, readiness)
    }

    /// Whether DataStream is on and its flags have not arrived.
    fn datastream_not_ready(&self) -> bool {
        self.client.datastream_status().is_some_and(|s| !s.ready)
    }

    fn compute_status(&self) -> ProviderStatus {
        if !self.is_initialized() {
            return ProviderStatus::NotReady;
        }
        if self.client.is_offline() {
            return ProviderStatus::Ready;
        }
        let Some(ds) = self.client.datastream_status() else {
            // API mode: unreliable while the breaker keeps checks from it.
            return match self.client.breaker_state() {
                BreakerState::Open => ProviderStatus::Error,
                _ => ProviderStatus::Ready,
            };
        };
        match ds.state {
            ConnectionState::Stopped => ProviderStatus::Error,
            ConnectionState::Connected if ds.ready => ProviderStatus::Ready,
            ConnectionState::Connected => ProviderStatus::NotReady,
            _ if !ds.ready => ProviderStatus::Error,
            _ => {
                let age = ds.since_last_message.unwrap_or(Duration::MAX);
                if age >= self.shared.stale_after {
                    ProviderStatus::STALE
                } else {
                    ProviderStatus::Ready
                }
            }
        }
    }
}

fn context_error(error: ContextError) -> EvaluationError {
    let code = if error.is_missing_targeting_key() {
        EvaluationErrorCode::TargetingKeyMissing
    } else {
        EvaluationErrorCode::InvalidContext
    };
    resolve::error(code, error.to_string())
}

fn type_mismatch(kind: &str) -> EvaluationError {
    resolve::error(
        EvaluationErrorCode::TypeMismatch,
        format!(
            "Schematic flags are boolean; resolve them as bool (asked for {kind}). \
             Entitlement figures come as flag metadata of the boolean details"
        ),
    )
}

#[async_trait]
impl FeatureProvider for SchematicProvider {
    /// Waits for DataStream's flags when DataStream is on, at most the
    /// configured bound; returns at once otherwise. The status says how it
    /// went.
    async fn initialize(&mut self, _context: &EvaluationContext) {
        let ready = self.client.wait_until_ready(self.shared.init_timeout).await;
        let outcome = if ready {
            INITIALISED
        } else {
            tracing::warn!(
                timeout = ?self.shared.init_timeout,
                "DataStream flags did not arrive in time; checks go to the API until they do"
            );
            INIT_TIMED_OUT
        };
        self.shared.init.store(outcome, Ordering::Release);
    }

    /// `NOT_READY` before `initialize` and while DataStream's first flags
    /// are loading; `READY` when checks can be answered (offline, API mode,
    /// DataStream connected with flags); `STALE` when the DataStream
    /// connection is down and its data older than the configured age;
    /// `ERROR` when DataStream stopped for good, lost its connection before
    /// any flags arrived, or (API mode) the circuit breaker is open.
    fn status(&self) -> ProviderStatus {
        self.compute_status()
    }

    fn metadata(&self) -> &ProviderMetadata {
        &self.shared.metadata
    }

    async fn resolve_bool_value(
        &self,
        flag_key: &str,
        evaluation_context: &EvaluationContext,
    ) -> EvaluationResult<ResolutionDetails<bool>> {
        self.resolve_bool(flag_key, evaluation_context).await
    }

    async fn resolve_int_value(
        &self,
        _flag_key: &str,
        _evaluation_context: &EvaluationContext,
    ) -> EvaluationResult<ResolutionDetails<i64>> {
        Err(type_mismatch("an integer"))
    }

    async fn resolve_float_value(
        &self,
        _flag_key: &str,
        _evaluation_context: &EvaluationContext,
    ) -> EvaluationResult<ResolutionDetails<f64>> {
        Err(type_mismatch("a float"))
    }

    async fn resolve_string_value(
        &self,
        _flag_key: &str,
        _evaluation_context: &EvaluationContext,
    ) -> EvaluationResult<ResolutionDetails<String>> {
        Err(type_mismatch("a string"))
    }

    async fn resolve_struct_value(
        &self,
        _flag_key: &str,
        _evaluation_context: &EvaluationContext,
    ) -> EvaluationResult<ResolutionDetails<StructValue>> {
        Err(type_mismatch("a struct"))
    }
}
