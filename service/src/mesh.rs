//! The Mesh OS service core: what each tool and REST endpoint does, as plain async functions
//! over a `Principal` and typed inputs. Transports (MCP, REST) are thin wrappers around these.

use std::collections::HashMap;

use meshos_carbon::Dataset;
use meshos_evidence::{Frontier, NoteSigner};
use meshos_policy::{Bundle, Detectors};
use meshos_store::{Store, StoreError};
use meshos_types::validate_id;

use crate::bundle_source::PolicyBundle;
use crate::keys::Keys;
use crate::live_trust::LiveTrust;
use crate::metrics::Metrics;
use crate::rate_limit::RateLimiter;
use crate::webhook::{DeliveryOptions, WebhookEndpoint, WebhookSender};
use crate::witnesses::{WitnessEndpoint, Witnesses};
use meshos_trust::TrustParams;
use meshos_trust::drift::DriftConfig;
use meshos_trust::sla::SlaPolicy;
use std::sync::Arc;

/// An error a caller should see, with what was wrong and what is expected.
#[derive(Debug, thiserror::Error)]
pub enum MeshError {
    #[error("invalid {field}: {message}")]
    Invalid { field: String, message: String },
    #[error("{0}")]
    NotFound(String),
    #[error("forbidden: {0}")]
    Forbidden(String),
    #[error("storage unavailable: {0}")]
    Store(#[from] StoreError),
    #[error("internal error: {0}")]
    Internal(String),
    /// Refused for now, not for good: retry later.
    #[error("busy: {0}")]
    Busy(String),
}

pub(crate) fn invalid(field: impl Into<String>, message: impl Into<String>) -> MeshError {
    MeshError::Invalid {
        field: field.into(),
        message: message.into(),
    }
}

/// An identifier check at a field path such as `events[3].agent_id`.
pub(crate) fn check_id_at(field: impl Into<String>, value: &str) -> Result<(), MeshError> {
    validate_id("id", value)
        .map_err(|e| invalid(field, format!("{}; expected {}", e.problem, e.expected)))
}

pub(crate) fn check_id(field: &'static str, value: &str) -> Result<(), MeshError> {
    check_id_at(field, value)
}

pub(crate) fn check_optional_id(
    field: &'static str,
    value: &Option<String>,
) -> Result<(), MeshError> {
    value.as_deref().map_or(Ok(()), |v| check_id(field, v))
}

/// Limits applied to caller input.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    pub max_content_bytes: usize,
    pub max_batch_events: usize,
    /// Largest cost one event or estimate may report, in US dollars. Without a ceiling one
    /// `cost_usd: 1e308` saturates the tenant's counters and every agent is over budget until
    /// the month ends.
    pub max_cost_usd: f64,
    /// Largest token count one event or estimate may report.
    pub max_tokens: i64,
    /// Longest latency one event may report, in milliseconds.
    pub max_latency_ms: f64,
    /// Largest `attributes` object of one event, as JSON bytes.
    pub max_attributes_bytes: usize,
    /// Agents whose live trust state is held in memory (the least recently active are evicted
    /// and rebuilt from the store on their next record).
    pub max_live_agents: usize,
}

/// The service: everything a request handler needs, shared by all transports. Built with
/// [`Mesh::builder`]; its state is private and reached through the use-case modules
/// (`events`, `policy_check`, `trust`, `evidence`, `checkpoints`, `approvals`, `pseudonyms`,
/// `routing`, `incidents`) and a few accessors for the server's own tasks.
pub struct Mesh {
    pub(crate) store: Store,
    pub(crate) bundle: PolicyBundle,
    pub(crate) detectors: Detectors,
    pub(crate) dataset: Dataset,
    pub(crate) signer: NoteSigner,
    pub(crate) ledger_origin: String,
    pub(crate) keys: Keys,
    pub(crate) limits: Limits,
    pub(crate) metrics: Arc<Metrics>,
    /// Live trust scores, drift detectors and SLA state of every agent touched since start.
    pub(crate) live: Arc<LiveTrust>,
    pub(crate) rate_limiter: RateLimiter,
    /// Each tenant's tree frontier as of its last checkpoint, so the next one hashes only the
    /// leaves appended since (re-reading the whole log every second starved the checks).
    pub(crate) frontiers: std::sync::Mutex<HashMap<String, Frontier>>,
    /// The newest tenant log list this process has seen, so that one deleted from under a
    /// running server is noticed instead of continued from an older one.
    pub(crate) log_list_seq: std::sync::Mutex<Option<u64>>,
    /// Where eval suites are read from (`<dir>/<id>.yaml`).
    pub(crate) evals_dir: Option<std::path::PathBuf>,
    /// The witnesses checkpoints are submitted to, and what each holds (`witnesses.rs`).
    pub(crate) witnesses: Witnesses,
    /// Eval runs asked for over MCP or REST that may go at once (each holds a target's
    /// connections and the run's scoring for minutes); more are refused as busy.
    pub(crate) requested_eval_runs: Arc<tokio::sync::Semaphore>,
}

/// How the live trust runtime of a [`Mesh`] is tuned and where its alerts go.
pub struct TrustSetup {
    pub params: TrustParams,
    pub drift: DriftConfig,
    pub sla: SlaPolicy,
    pub webhooks: Vec<WebhookEndpoint>,
    pub sender: WebhookSender,
}

/// Builds a [`Mesh`]: a store and the ledger signer are required; everything else has the
/// defaults of `meshos serve` (the embedded bundle and region dataset, no webhooks).
pub struct MeshBuilder {
    store: Store,
    signer: NoteSigner,
    bundle: Option<PolicyBundle>,
    dataset: Option<Dataset>,
    ledger_origin: String,
    limits: Limits,
    trust: Option<TrustSetup>,
    witnesses: Vec<WitnessEndpoint>,
    agent_metrics: bool,
    evals_dir: Option<std::path::PathBuf>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_content_bytes: 1 << 20,
            max_batch_events: 10_000,
            max_cost_usd: 10_000.0,
            max_tokens: 1_000_000_000,
            max_latency_ms: 86_400_000.0,
            max_attributes_bytes: 64 * 1024,
            max_live_agents: crate::live_trust::DEFAULT_MAX_LIVE_AGENTS,
        }
    }
}

impl MeshBuilder {
    /// The bundle in force (default: the embedded one, never reloaded).
    pub fn bundle(mut self, bundle: PolicyBundle) -> Self {
        self.bundle = Some(bundle);
        self
    }

    /// The region, model and price dataset for routing (default: the embedded one).
    pub fn dataset(mut self, dataset: Dataset) -> Self {
        self.dataset = Some(dataset);
        self
    }

    /// The origin line of every tenant's checkpoints (`<origin>/<tenant>`).
    pub fn ledger_origin(mut self, origin: impl Into<String>) -> Self {
        self.ledger_origin = origin.into();
        self
    }

    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Witnesses to submit every new checkpoint to (default: none); see
    /// [`Mesh::spawn_witness_submissions`].
    pub fn witnesses(mut self, witnesses: Vec<WitnessEndpoint>) -> Self {
        self.witnesses = witnesses;
        self
    }

    /// Export each live agent's trust score as its own metrics series, labelled with tenant
    /// and agent (default: off — clients choose agent ids, so the series are theirs to grow).
    pub fn agent_metrics(mut self, on: bool) -> Self {
        self.agent_metrics = on;
        self
    }

    /// The directory eval suites are read from (default: none; evals refuse to run).
    pub fn evals_dir(mut self, dir: impl Into<std::path::PathBuf>) -> Self {
        self.evals_dir = Some(dir.into());
        self
    }

    /// Trust tuning, SLA rules and alert webhooks (default: defaults, no webhooks).
    pub fn trust(mut self, trust: TrustSetup) -> Self {
        self.trust = Some(trust);
        self
    }

    pub fn build(self) -> Result<Mesh, MeshError> {
        let bundle = match self.bundle {
            Some(b) => b,
            None => PolicyBundle::fixed(
                Bundle::embedded_default().map_err(|e| MeshError::Internal(e.to_string()))?,
            ),
        };
        let dataset = match self.dataset {
            Some(d) => d,
            None => Dataset::embedded().map_err(|e| MeshError::Internal(e.to_string()))?,
        };
        let trust = match self.trust {
            Some(t) => t,
            None => TrustSetup {
                params: TrustParams::default(),
                drift: DriftConfig::default(),
                sla: SlaPolicy::new(TrustParams::default().sla_threshold, Vec::new())
                    .map_err(|e| MeshError::Internal(e.to_string()))?,
                webhooks: Vec::new(),
                sender: WebhookSender::new(DeliveryOptions::default())
                    .map_err(|e| MeshError::Internal(e.to_string()))?,
            },
        };
        let metrics = Arc::new(Metrics::with_agent_series(self.agent_metrics));
        let live = Arc::new(
            LiveTrust::new(
                self.store.clone(),
                metrics.clone(),
                trust.params,
                trust.drift,
                trust.sla,
                trust.webhooks,
                trust.sender,
            )
            .with_max_agents(self.limits.max_live_agents),
        );
        Ok(Mesh {
            keys: Keys::from_seed(&self.signer.seed()),
            store: self.store,
            bundle,
            detectors: Detectors::new(),
            dataset,
            signer: self.signer,
            ledger_origin: self.ledger_origin,
            limits: self.limits,
            metrics,
            live,
            rate_limiter: RateLimiter::new(),
            frontiers: Default::default(),
            log_list_seq: Default::default(),
            evals_dir: self.evals_dir,
            witnesses: Witnesses::new(self.witnesses)?,
            requested_eval_runs: Arc::new(tokio::sync::Semaphore::new(
                crate::eval_api::REQUESTED_EVAL_RUNS_AT_ONCE,
            )),
        })
    }
}

impl Mesh {
    /// A builder over the deployment's store and ledger signer (every key is derived from the
    /// signer's seed, see [`Keys`]).
    pub fn builder(store: Store, signer: NoteSigner) -> MeshBuilder {
        MeshBuilder {
            store,
            signer,
            bundle: None,
            dataset: None,
            ledger_origin: "meshos/ledger".into(),
            limits: Limits::default(),
            trust: None,
            witnesses: Vec::new(),
            agent_metrics: false,
            evals_dir: None,
        }
    }

    /// The store, for the server's own tasks (authentication, health, the healer host).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The policy bundle in force and its reload.
    pub fn bundle(&self) -> &PolicyBundle {
        &self.bundle
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// The Prometheus registry every request and background task reports to.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The live trust runtime (scores, subscriptions, the flusher task).
    pub fn live(&self) -> &Arc<LiveTrust> {
        &self.live
    }

    /// The server's once-a-second upkeep: signs new checkpoints and releases budget
    /// reservations no event settled in time.
    pub async fn housekeeping(&self) {
        if let Err(e) = self.refresh_checkpoints().await {
            tracing::warn!(error = %e, "checkpoint refresh failed");
        }
        match self.store.expire_reservations(meshos_types::now_ms()).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(released = n, "expired budget reservations released"),
            Err(e) => tracing::warn!(error = %e, "releasing expired budget reservations failed"),
        }
    }

    /// Writes what is still queued (trust history, signals, alerts; a last checkpoint and, for
    /// up to 5 s, its witnesses' cosignatures) and closes the store. Webhooks still in flight
    /// are abandoned; their alerts are stored.
    pub async fn shut_down(&self) {
        if let Err(e) = self.live.flush_once(true).await {
            tracing::warn!(error = %e, "final trust flush failed");
        }
        if let Err(e) = self.refresh_checkpoints().await {
            tracing::warn!(error = %e, "final checkpoint failed");
        }
        self.last_witness_round().await;
        self.store.close().await;
    }
}

pub(crate) fn ensure_object(
    attributes: Option<serde_json::Map<String, serde_json::Value>>,
) -> serde_json::Value {
    serde_json::Value::Object(attributes.unwrap_or_default())
}

/// A reported number: finite, ≥ 0 and at most `max`.
pub(crate) fn check_amount(field: String, value: Option<f64>, max: f64) -> Result<(), MeshError> {
    match value {
        Some(v) if !v.is_finite() || !(0.0..=max).contains(&v) => Err(invalid(
            field,
            format!("{v} is not allowed; expected a finite number from 0 to {max}"),
        )),
        _ => Ok(()),
    }
}

/// A reported count: 0 to `max`.
pub(crate) fn check_count(field: String, value: Option<i64>, max: i64) -> Result<(), MeshError> {
    match value {
        Some(n) if !(0..=max).contains(&n) => Err(invalid(
            field,
            format!("{n} is not allowed; expected a whole number from 0 to {max}"),
        )),
        _ => Ok(()),
    }
}

/// Text the database must be able to store: PostgreSQL refuses NUL in `text` columns, so a
/// NUL would fail a whole batch after it was accepted.
pub(crate) fn check_no_nul(field: impl Into<String>, value: &str) -> Result<(), MeshError> {
    if value.contains('\0') {
        return Err(invalid(
            field,
            "contains a NUL character (U+0000); expected text without it",
        ));
    }
    Ok(())
}

/// serde_json's marker for a raw value: with its `raw_value` feature (on in this build, through
/// sqlx) an object whose first key is this token is read back as the JSON text its value holds,
/// or refused, never as the object that was written.
const SERDE_JSON_RAW_VALUE_TOKEN: &str = "$serde_json::private::RawValue";

/// A key of a JSON object the store keeps as text: no NUL (PostgreSQL), and not serde_json's
/// raw-value marker, or the object would not read back as written and its ledger leaf, re-derived
/// by `audit verify`, would not match the one appended (found by fuzzing `/v1/events`).
pub(crate) fn check_json_key(field: impl Into<String>, key: &str) -> Result<(), MeshError> {
    let field = field.into();
    if key == SERDE_JSON_RAW_VALUE_TOKEN {
        return Err(invalid(
            field,
            "is reserved by the JSON library; expected another key",
        ));
    }
    check_no_nul(field, key)
}

/// Every key and string inside a JSON value the store keeps as text: strings checked with
/// [`check_no_nul`], keys with [`check_json_key`].
pub(crate) fn check_json_storable(field: &str, value: &serde_json::Value) -> Result<(), MeshError> {
    match value {
        serde_json::Value::String(s) => check_no_nul(field, s),
        serde_json::Value::Array(items) => items
            .iter()
            .enumerate()
            .try_for_each(|(i, v)| check_json_storable(&format!("{field}[{i}]"), v)),
        serde_json::Value::Object(map) => map.iter().try_for_each(|(k, v)| {
            check_json_key(format!("{field} key {k:?}"), k)?;
            check_json_storable(&format!("{field}.{k}"), v)
        }),
        _ => Ok(()),
    }
}

impl Mesh {
    /// A summary of the loaded policy bundle, for the `policy://bundle` resource.
    pub fn bundle_summary(&self) -> serde_json::Value {
        let bundle = self.bundle.current();
        let files: HashMap<&str, &str> = bundle
            .files()
            .iter()
            .map(|f| (f.name.as_str(), f.text.as_str()))
            .collect();
        serde_json::json!({
            "version": bundle.version(),
            "policies": bundle.policy_ids(),
            "files": files,
        })
    }
}

#[cfg(test)]
#[path = "mesh_tests.rs"]
pub(crate) mod tests;
