//! The Mesh OS service core: what each tool and REST endpoint does, as plain async functions
//! over a `Principal` and typed inputs. Transports (MCP, REST) are thin wrappers around these.

use std::collections::HashMap;

use meshos_carbon::{CarbonError, Dataset, RouteDecision, RouteRequest};
use meshos_evidence::{Checkpoint, Frontier, InclusionProof, NoteSigner, hash_to_hex, tree_root};
use meshos_policy::{
    BudgetState, Bundle, CheckRequest, Detectors, Evaluation, InjectionVerdict, Period,
    RedactionKeys, Scope, Usage, evaluate, is_pseudonym_id,
};
use meshos_store::{
    SealedPseudonym, Store, StoreError, StoredCheckpoint, UsageIncrement, UsageKey, usage_periods,
};
use meshos_types::{
    ApprovalRecord, DecisionRecord, EventRecord, Finding, LedgerRecord, Obligation, Principal,
    Reason, ReidentificationRecord, Role, Verdict, new_id, now_ms, rfc3339_ms, validate_id,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::bundle_source::PolicyBundle;
use crate::live_trust::LiveTrust;
use crate::metrics::Metrics;
use crate::rate_limit::RateLimiter;
use crate::vault::TenantKeys;

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
}

fn invalid(field: impl Into<String>, message: impl Into<String>) -> MeshError {
    MeshError::Invalid {
        field: field.into(),
        message: message.into(),
    }
}

/// An identifier check at a field path such as `events[3].agent_id`.
fn check_id_at(field: impl Into<String>, value: &str) -> Result<(), MeshError> {
    validate_id("id", value)
        .map_err(|e| invalid(field, format!("{}; expected {}", e.problem, e.expected)))
}

fn check_id(field: &'static str, value: &str) -> Result<(), MeshError> {
    check_id_at(field, value)
}

fn check_optional_id(field: &'static str, value: &Option<String>) -> Result<(), MeshError> {
    value.as_deref().map_or(Ok(()), |v| check_id(field, v))
}

/// Limits applied to caller input.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_content_bytes: usize,
    pub max_batch_events: usize,
}

/// Everything a request handler needs; shared by all transports.
pub struct Mesh {
    pub store: Store,
    pub bundle: PolicyBundle,
    pub detectors: Detectors,
    pub dataset: Dataset,
    pub signer: NoteSigner,
    pub ledger_origin: String,
    pub content_key: [u8; 32],
    pub limits: Limits,
    pub metrics: std::sync::Arc<Metrics>,
    /// Live trust scores, drift detectors and SLA state of every agent touched since start.
    pub live: std::sync::Arc<LiveTrust>,
    /// Per-tenant redaction and vault keys.
    pub tenant_keys: TenantKeys,
    pub rate_limiter: RateLimiter,
    /// Each tenant's tree frontier as of its last checkpoint, so the next one hashes only the
    /// leaves appended since (re-reading the whole log every second starved the checks).
    pub frontiers: std::sync::Mutex<HashMap<String, Frontier>>,
}

// ---- inputs and outputs ---------------------------------------------------------------

pub use meshos_trust::EventInput;

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct RecordedEvent {
    /// Identifier of the stored event.
    pub event_id: String,
    /// Position of the event in the tenant's evidence ledger.
    pub ledger_index: u64,
    /// When the event was stored (RFC 3339).
    pub recorded_at: String,
}

/// Where events came in; names fields in errors and labels the ingest metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IngestDoor {
    /// The MCP `record_event` tool: one event, fields named plainly.
    Mcp,
    /// `POST /v1/events`: a batch, fields named `events[i].field`.
    Rest,
    /// `POST /v1/traces`: spans mapped to events.
    Otlp,
}

impl IngestDoor {
    pub fn as_str(self) -> &'static str {
        match self {
            IngestDoor::Mcp => "mcp",
            IngestDoor::Rest => "rest",
            IngestDoor::Otlp => "otlp",
        }
    }

    fn is_batch(self) -> bool {
        self != IngestDoor::Mcp
    }
}

/// May this agent take this action?
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyCheckInput {
    /// The agent about to act.
    pub agent_id: String,
    /// The action it is about to take, e.g. `email.send`, `db.query`, `payments.transfer`.
    pub action: String,
    /// Text the action sends or processes (prompt, message body…); scanned for personal data,
    /// secrets and other sensitive content. Never stored: only a keyed hash is kept.
    #[serde(default)]
    pub content: Option<String>,
    /// Model the action will call, e.g. `gpt-4o-mini`.
    #[serde(default)]
    pub model: Option<String>,
    /// Tool the action will invoke.
    #[serde(default)]
    pub tool: Option<String>,
    /// Cloud region where the action runs or where data goes (an id from the region catalogue,
    /// e.g. `aws:eu-west-1`).
    #[serde(default)]
    pub region: Option<String>,
    /// Tokens the action expects to use; counted against token budgets before it runs.
    #[serde(default)]
    pub estimated_tokens: Option<i64>,
    /// What the action expects to cost in US dollars; counted against cost budgets.
    #[serde(default)]
    pub estimated_cost_usd: Option<f64>,
}

/// How the requested model resolved against the bundle's model registry.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ModelCheck {
    /// `approved`, `alias_not_allowed`, `unapproved_version`, `retired` or `unknown`.
    pub status: String,
    pub family: Option<String>,
    pub version: Option<String>,
}

/// The agent's rate limit as this check saw it.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct RateLimitState {
    pub limit_per_minute: u32,
    /// Checks in the last minute, this one included.
    pub checks_last_minute: u32,
    pub exceeded: bool,
}

/// Inputs to a policy evaluation that come from state rather than the request: spend,
/// rate and the tenant's redaction keys. Offline tools pass the default (no budgets spent,
/// no rate, no keys — keyed redaction then masks).
#[derive(Debug, Clone, Default)]
pub struct CheckControls {
    pub budgets: Vec<BudgetState>,
    pub rate: Option<RateLimitState>,
    /// Healer controls that apply to the request (see `heal_controls_for`).
    pub heal_controls: Vec<String>,
    pub redaction_keys: Option<RedactionKeys>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct PolicyCheckOutput {
    /// Identifier of the stored decision; pass it to `evidence_fetch` for proof.
    pub decision_id: String,
    /// `allow`, `deny`, `redact` (proceed with `redacted_content`) or `require_approval`.
    pub decision: Verdict,
    /// The policies that decided, and why.
    pub reasons: Vec<Reason>,
    /// Sensitive content found, with UTF-8 byte offsets into `content`.
    pub findings: Vec<Finding>,
    /// What the caller must do (e.g. redact, obtain approval).
    pub obligations: Vec<Obligation>,
    /// The content with every finding masked, when the decision is `redact`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redacted_content: Option<String>,
    /// Prompt-injection screen of the content (absent without content).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub injection: Option<InjectionVerdict>,
    /// How `model` resolved against the model registry (absent without a model).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<ModelCheck>,
    /// Every token or cost budget that applies to the agent, with spend so far.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub budgets: Vec<BudgetState>,
    /// The agent's rate limit, if it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimitState>,
    /// Digest of the policy bundle that decided.
    pub bundle_version: String,
    /// Position of the decision in the tenant's evidence ledger.
    pub ledger_index: u64,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TrustScoreInput {
    /// The agent whose trust score to compute.
    pub agent_id: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct TrustScoreOutput {
    pub agent_id: String,
    /// TS = 100 × (PA × AR × RI) / RE, clamped to 0–100.
    pub score: f64,
    pub components: meshos_trust::Components,
    pub sla: meshos_trust::Sla,
    /// The observations the score rests on.
    pub basis: meshos_trust::Basis,
    /// Why each component has its value.
    pub explanation: Vec<String>,
    /// How the score moved: stored points of the last 24 h and the change over 1 h and 24 h.
    pub trend: TrustTrend,
    /// The agent's most recent drift signals, newest first.
    pub drift_signals: Vec<DriftSignalOutput>,
    /// Time of the newest observation behind the score (RFC 3339).
    pub updated_at: String,
}

/// An SLA breach or recovery.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct AlertOutput {
    pub alert_id: String,
    /// `sla.breach` or `sla.recovery`.
    pub kind: String,
    pub agent_id: String,
    pub score: f64,
    pub threshold: f64,
    /// Which SLA rule set the threshold.
    pub scope: String,
    /// RFC 3339.
    pub at: String,
    /// Webhook delivery outcomes.
    pub deliveries: serde_json::Value,
}

/// One stored score.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct TrendPoint {
    /// RFC 3339.
    pub at: String,
    pub score: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct TrustTrend {
    /// `rising`, `falling` or `steady` (within one point) over the last hour.
    pub direction: String,
    /// Score now minus the score an hour ago (absent without history that old).
    pub change_1h: Option<f64>,
    /// Score now minus the score 24 hours ago (absent without history that old).
    pub change_24h: Option<f64>,
    /// Up to 48 stored points of the last 24 h, oldest first, evenly thinned.
    pub points: Vec<TrendPoint>,
}

/// A metric of the agent that drifted from its baseline.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct DriftSignalOutput {
    pub signal_id: String,
    /// `latency`, `error_rate`, `cost_per_1k_tokens`, `violation_rate` or `token_use`.
    pub metric: String,
    pub detector: String,
    /// `up` or `down`.
    pub direction: String,
    pub baseline_mean: f64,
    pub baseline_sd: f64,
    pub observed_mean: f64,
    /// Shift in baseline standard deviations.
    pub shift_sigmas: f64,
    pub explanation: String,
    /// RFC 3339.
    pub at: String,
    /// Whether the healer has taken it up.
    pub consumed: bool,
}

impl From<meshos_store::StoredSignal> for DriftSignalOutput {
    fn from(s: meshos_store::StoredSignal) -> Self {
        DriftSignalOutput {
            signal_id: s.id,
            metric: s.metric,
            detector: s.detector,
            direction: s.direction,
            baseline_mean: s.baseline_mean,
            baseline_sd: s.baseline_sd,
            observed_mean: s.observed_mean,
            shift_sigmas: s.shift_sigmas,
            explanation: s.explanation,
            at: rfc3339_ms(s.at_ms),
            consumed: s.consumed_at_ms.is_some(),
        }
    }
}

const TREND_WINDOW_MS: i64 = 24 * 3_600_000;
const RECENT_SIGNALS: u32 = 5;
const TREND_POINTS: usize = 48;

/// The trend of a score from its stored history (oldest first) and its value now.
pub fn trust_trend(
    history: &[meshos_store::TrustPoint],
    now_score: f64,
    now_ms: i64,
) -> TrustTrend {
    let round = |x: f64| (x * 100.0).round() / 100.0;
    // The newest stored point at or before `ago`: the score as it stood then.
    let change_since = |ago_ms: i64| {
        let cutoff = now_ms - ago_ms;
        history
            .iter()
            .rev()
            .find(|p| p.at_ms <= cutoff)
            .map(|p| round(now_score - p.score))
    };
    let change_1h = change_since(3_600_000);
    let change_24h = change_since(TREND_WINDOW_MS);
    // Without a point an hour old, compare with the oldest point there is.
    let hour_delta = change_1h.or_else(|| history.first().map(|p| round(now_score - p.score)));
    let direction = match hour_delta {
        Some(d) if d > 1.0 => "rising",
        Some(d) if d < -1.0 => "falling",
        _ => "steady",
    };
    let step = history.len().div_ceil(TREND_POINTS).max(1);
    let mut points: Vec<TrendPoint> = history
        .iter()
        .rev()
        .step_by(step)
        .map(|p| TrendPoint {
            at: rfc3339_ms(p.at_ms),
            score: p.score,
        })
        .collect();
    points.reverse();
    TrustTrend {
        direction: direction.to_string(),
        change_1h,
        change_24h,
        points,
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EvidenceFetchInput {
    /// Fetch the evidence of one policy decision.
    #[serde(default)]
    pub decision_id: Option<String>,
    /// Fetch the evidence of one recorded event.
    #[serde(default)]
    pub event_id: Option<String>,
    /// Fetch the most recent decisions and events of an agent.
    #[serde(default)]
    pub agent_id: Option<String>,
    /// With `agent_id`: how many records (1-200, default 20).
    #[serde(default)]
    pub limit: Option<u32>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct EvidenceRecord {
    /// Position in the tenant's ledger.
    pub ledger_index: u64,
    /// `decision` or `event`.
    pub record_type: String,
    pub record_id: String,
    /// RFC 6962 leaf hash (hex) of the record's canonical bytes.
    pub leaf_hash: String,
    /// The record as stored.
    pub record: serde_json::Value,
    /// Audit path from the leaf to the checkpoint's root.
    pub inclusion_proof: InclusionProof,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct CheckpointOutput {
    /// C2SP tlog-checkpoint signed with Ed25519 in the signed-note format.
    pub text: String,
    /// Log origin (first line of the checkpoint).
    pub origin: String,
    /// Number of leaves the checkpoint commits to.
    pub size: u64,
    /// Merkle root (hex).
    pub root_hash: String,
    /// Verifier key of the signer (Go `sumdb/note` format).
    pub verifier_key: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct EvidenceFetchOutput {
    pub records: Vec<EvidenceRecord>,
    pub checkpoint: CheckpointOutput,
}

/// An operator's answer to a `require_approval` decision.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApprovalDecideInput {
    /// The `decision_id` of a `require_approval` decision.
    pub decision_id: String,
    /// true to approve the action, false to refuse it.
    pub approve: bool,
    /// Why (kept in the evidence ledger).
    #[serde(default)]
    pub note: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ApprovalOutput {
    pub approval_id: String,
    pub decision_id: String,
    pub approved: bool,
    /// Token id of the operator who decided.
    pub decided_by: String,
    /// Position of the approval in the tenant's evidence ledger.
    pub ledger_index: u64,
    pub decided_at: String,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApprovalsPendingInput {
    /// Only this agent's requests.
    #[serde(default)]
    pub agent_id: Option<String>,
    /// At most this many (1-200, default 50), oldest first.
    #[serde(default)]
    pub limit: Option<u32>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct PendingApproval {
    pub decision_id: String,
    pub agent_id: String,
    pub action: String,
    pub model: Option<String>,
    pub tool: Option<String>,
    pub region: Option<String>,
    pub reasons: Vec<Reason>,
    pub obligations: Vec<Obligation>,
    pub requested_at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ApprovalsPendingOutput {
    pub pending: Vec<PendingApproval>,
}

/// An operator's request to see the value behind a pseudonym.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PseudonymRevealInput {
    /// The pseudonym, e.g. `psn_3f9a0c4d2b1e8f7a6c5d` (redacted content shows it as
    /// `[EMAIL:psn_…]`).
    pub pseudonym: String,
    /// Why the original value is needed (10-1000 characters); kept in the evidence ledger.
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct PseudonymRevealOutput {
    pub pseudonym: String,
    /// Entity kind, e.g. `EMAIL`.
    pub entity: String,
    /// The original value.
    pub value: String,
    /// The ledger record of this re-identification.
    pub reidentification_id: String,
    pub ledger_index: u64,
    pub revealed_at: String,
}

// ---- operations ------------------------------------------------------------------------

/// Re-identifies a pseudonym for an operator or admin. The re-identification is written to
/// the evidence ledger before the value is opened, so no value is ever revealed unaudited.
/// Shared by the `pseudonym_reveal` tool and `meshos pseudonym reveal`.
pub async fn reveal_pseudonym(
    store: &Store,
    keys: &TenantKeys,
    principal: &Principal,
    input: PseudonymRevealInput,
) -> Result<PseudonymRevealOutput, MeshError> {
    if !matches!(principal.role, Role::Operator | Role::Admin) {
        return Err(MeshError::Forbidden(format!(
            "role {} cannot re-identify pseudonyms; expected an operator or admin token",
            principal.role
        )));
    }
    if !is_pseudonym_id(&input.pseudonym) {
        return Err(invalid(
            "pseudonym",
            format!(
                "{:?} is not a pseudonym; expected `psn_` followed by 20 lowercase hex digits",
                input.pseudonym
            ),
        ));
    }
    let reason = input.reason.trim();
    if !(10..=1000).contains(&reason.chars().count()) {
        return Err(invalid(
            "reason",
            "expected 10-1000 characters saying why the value is needed (it is audited)",
        ));
    }
    let sealed = store
        .pseudonym(&principal.tenant, &input.pseudonym)
        .await?
        .ok_or_else(|| {
            MeshError::NotFound(format!(
                "no pseudonym {:?} in this tenant; expected one issued by a redaction here",
                input.pseudonym
            ))
        })?;
    let record = ReidentificationRecord {
        id: new_id("rid"),
        tenant: principal.tenant.clone(),
        pseudonym: sealed.pseudonym.clone(),
        entity: sealed.entity.clone(),
        requested_by: principal.token_id.clone(),
        requested_by_role: principal.role,
        reason: reason.to_string(),
        created_at_ms: now_ms(),
    };
    let ledger_index = store.append_reidentification(&record).await?;
    let value = keys
        .open(&principal.tenant, &sealed.pseudonym, &sealed.sealed)
        .map_err(|e| MeshError::Internal(format!("pseudonym {}: {e}", sealed.pseudonym)))?;
    Ok(PseudonymRevealOutput {
        pseudonym: sealed.pseudonym,
        entity: sealed.entity,
        value,
        reidentification_id: record.id,
        ledger_index,
        revealed_at: rfc3339_ms(record.created_at_ms),
    })
}

fn ensure_object(
    attributes: Option<serde_json::Map<String, serde_json::Value>>,
) -> serde_json::Value {
    serde_json::Value::Object(attributes.unwrap_or_default())
}

fn check_non_negative(field: String, value: Option<f64>) -> Result<(), MeshError> {
    match value {
        Some(v) if !v.is_finite() || v < 0.0 => Err(invalid(
            field,
            format!("{v} is not allowed; expected a finite number ≥ 0"),
        )),
        _ => Ok(()),
    }
}

/// What evaluating a policy request needs, without storage: the MCP tool and the offline
/// `meshos policy` commands share it.
pub struct PolicyContext<'a> {
    pub bundle: &'a Bundle,
    pub detectors: &'a Detectors,
    pub dataset: &'a Dataset,
    pub max_content_bytes: usize,
}

/// Validates a policy request (ids, content size, region in the catalogue) and evaluates it.
pub fn evaluate_check(
    ctx: &PolicyContext<'_>,
    tenant: &str,
    input: &PolicyCheckInput,
    controls: &CheckControls,
) -> Result<Evaluation, MeshError> {
    check_id("agent_id", &input.agent_id)?;
    check_id("action", &input.action)?;
    check_optional_id("model", &input.model)?;
    check_optional_id("tool", &input.tool)?;
    check_estimates(input)?;
    if let Some(content) = &input.content
        && content.len() > ctx.max_content_bytes
    {
        return Err(invalid(
            "content",
            format!(
                "{} bytes is over the limit; expected at most {} bytes",
                content.len(),
                ctx.max_content_bytes
            ),
        ));
    }
    let region_jurisdictions = match &input.region {
        None => Vec::new(),
        Some(region) => match ctx.dataset.region(region) {
            Some(r) => r.jurisdiction.clone(),
            None => {
                return Err(invalid(
                    "region",
                    format!(
                        "unknown region {region:?}; expected one of: {}",
                        ctx.dataset.region_ids().join(", ")
                    ),
                ));
            }
        },
    };
    Ok(evaluate(
        ctx.bundle,
        ctx.detectors,
        &CheckRequest {
            tenant,
            agent_id: &input.agent_id,
            action: &input.action,
            content: input.content.as_deref(),
            model: input.model.as_deref(),
            tool: input.tool.as_deref(),
            region: input.region.as_deref(),
            region_jurisdictions,
            budget_exceeded: controls
                .budgets
                .iter()
                .filter(|b| b.exceeded)
                .map(BudgetState::key)
                .collect(),
            checks_last_minute: controls
                .rate
                .as_ref()
                .map_or(0, |r| i64::from(r.checks_last_minute)),
            rate_limit_exceeded: controls.rate.as_ref().is_some_and(|r| r.exceeded),
            heal_controls: controls.heal_controls.clone(),
            redaction_keys: controls.redaction_keys.as_ref(),
        },
    ))
}

fn check_estimates(input: &PolicyCheckInput) -> Result<(), MeshError> {
    if input.estimated_tokens.is_some_and(|n| n < 0) {
        return Err(invalid("estimated_tokens", "expected a whole number ≥ 0"));
    }
    check_non_negative("estimated_cost_usd".into(), input.estimated_cost_usd)
}

/// The controls that hold one request: all active ones but those on canary (the healer lets a
/// share of their traffic through, `spec.canary_share`, to verify before releasing them) when
/// the request's uniform `draw` in [0, 1) falls within that share.
pub fn controls_in_force(
    controls: Vec<meshos_store::StoredControl>,
    draw: f64,
) -> Vec<meshos_store::StoredControl> {
    controls
        .into_iter()
        .filter(|c| {
            !c.spec
                .get("canary_share")
                .and_then(|v| v.as_f64())
                .is_some_and(|share| draw < share)
        })
        .collect()
}

/// The names (as Cedar sees them in `context.heal_controls`) of the healer controls that apply to
/// a request (see `meshos_types::Control::applies_to`).
pub fn heal_controls_for(
    controls: &[meshos_store::StoredControl],
    input: &PolicyCheckInput,
) -> Vec<String> {
    let request = meshos_types::ControlRequest {
        agent: &input.agent_id,
        action: &input.action,
        tool: input.tool.as_deref(),
        model: input.model.as_deref(),
    };
    let controls: Vec<_> = meshos_store::readable_controls(controls)
        .map(|(_, c)| c)
        .collect();
    meshos_types::heal_control_names(&controls, &request)
        .into_iter()
        .map(str::to_string)
        .collect()
}

/// What open incidents' `budget_cap` controls add for one agent: daily budget lines (assessed
/// next to the bundle's, so a cap only ever narrows) and a check rate.
#[derive(Debug, Default, PartialEq)]
pub struct HealBudgetCaps {
    pub lines: Vec<meshos_policy::BudgetLine>,
    pub checks_per_minute: Option<u32>,
}

/// The caps that apply to `agent_id`: those on the agent, on its team, or on the whole tenant.
pub fn heal_budget_caps(
    controls: &[meshos_store::StoredControl],
    tenant: &str,
    agent_id: &str,
    team: Option<&str>,
) -> HealBudgetCaps {
    let mut caps = HealBudgetCaps::default();
    for c in controls.iter().filter(|c| c.kind == "budget_cap") {
        let subject = c.spec.get("subject").and_then(|v| v.as_str());
        let scope = match c.spec.get("scope").and_then(|v| v.as_str()) {
            Some("agent") if subject == Some(agent_id) => Scope::Agent,
            Some("team") if subject.is_some() && subject == team => Scope::Team,
            Some("tenant") if subject.is_none_or(|s| s == tenant || s == "*") => Scope::Tenant,
            _ => continue,
        };
        let scope_id = match scope {
            Scope::Tenant => tenant.to_string(),
            _ => subject.unwrap_or_default().to_string(),
        };
        let number = |k: &str| c.spec.get(k).and_then(|v| v.as_f64()).filter(|v| *v >= 0.0);
        for (metric, key) in [
            (meshos_policy::Metric::CostUsd, "max_cost_usd_per_day"),
            (meshos_policy::Metric::Tokens, "max_tokens_per_day"),
        ] {
            if let Some(limit) = number(key) {
                caps.lines.push(meshos_policy::BudgetLine {
                    scope,
                    scope_id: scope_id.clone(),
                    period: Period::Day,
                    metric,
                    limit,
                });
            }
        }
        if scope == Scope::Agent
            && let Some(rpm) = number("max_requests_per_minute")
        {
            let rpm = rpm.min(f64::from(u32::MAX)) as u32;
            caps.checks_per_minute = Some(caps.checks_per_minute.map_or(rpm, |r| r.min(rpm)));
        }
    }
    caps
}

/// Whole micro-dollars, so counters add up exactly.
fn micro_usd(usd: f64) -> i64 {
    (usd * 1_000_000.0).round() as i64
}

/// The policy_check output's view of the model resolution (absent without a model).
fn model_check(evaluation: &Evaluation) -> Option<ModelCheck> {
    (evaluation.model.status != meshos_policy::ModelStatus::None).then(|| ModelCheck {
        status: evaluation.model.status.as_str().to_string(),
        family: evaluation.model.family.clone(),
        version: evaluation.model.version.clone(),
    })
}

impl Mesh {
    fn validate_event(&self, i: usize, ev: &EventInput, batch: bool) -> Result<(), MeshError> {
        let at = |f: &str| {
            if batch {
                format!("events[{i}].{f}")
            } else {
                f.to_string()
            }
        };
        check_id_at(at("agent_id"), &ev.agent_id)?;
        if ev.kind.trim().is_empty() || ev.kind.len() > 128 {
            return Err(invalid(
                at("kind"),
                "expected 1-128 characters, e.g. `tool_call`",
            ));
        }
        check_non_negative(at("latency_ms"), ev.latency_ms)?;
        check_non_negative(at("cost_usd"), ev.cost_usd)?;
        for (name, v) in [
            ("input_tokens", ev.input_tokens),
            ("output_tokens", ev.output_tokens),
        ] {
            if v.is_some_and(|n| n < 0) {
                return Err(invalid(at(name), "expected a whole number ≥ 0"));
            }
        }
        for (name, v) in [
            ("model", &ev.model),
            ("tool", &ev.tool),
            ("region", &ev.region),
        ] {
            if let Some(v) = v {
                check_id_at(at(name), v)?;
            }
        }
        Ok(())
    }

    /// Validates and durably stores a batch of events: all or none.
    pub async fn record_events(
        &self,
        principal: &Principal,
        inputs: Vec<EventInput>,
        door: IngestDoor,
    ) -> Result<Vec<RecordedEvent>, MeshError> {
        let received = std::time::Instant::now();
        let batch = door.is_batch();
        if inputs.is_empty() {
            return Err(invalid("events", "expected at least one event"));
        }
        if inputs.len() > self.limits.max_batch_events {
            return Err(invalid(
                "events",
                format!(
                    "{} events in one batch; expected at most {}",
                    inputs.len(),
                    self.limits.max_batch_events
                ),
            ));
        }
        for (i, ev) in inputs.iter().enumerate() {
            self.validate_event(i, ev, batch)?;
            principal
                .may_act_for(&ev.agent_id, "record events")
                .map_err(|e| MeshError::Forbidden(e.to_string()))?;
        }
        let at = now_ms();
        let records: Vec<EventRecord> = inputs
            .into_iter()
            .map(|ev| EventRecord {
                id: new_id("evt"),
                tenant: principal.tenant.clone(),
                agent_id: ev.agent_id,
                kind: ev.kind,
                outcome: ev.outcome,
                latency_ms: ev.latency_ms,
                input_tokens: ev.input_tokens,
                output_tokens: ev.output_tokens,
                cost_usd: ev.cost_usd,
                model: ev.model,
                tool: ev.tool,
                region: ev.region,
                attributes: ensure_object(ev.attributes),
                created_at_ms: at,
            })
            .collect();
        let indexes = self.store.append_events(&records).await?;
        self.metrics.record_ingest(
            door.as_str(),
            records.len() as u64,
            received.elapsed().as_secs_f64(),
        );
        let bundle = self.bundle.current();
        let team_of = |agent: &str| bundle.placement(agent).team.map(str::to_string);
        self.live
            .observe_events(&principal.tenant, &records, &indexes, &team_of, received)
            .await;
        self.count_usage(&principal.tenant, &records).await?;
        Ok(records
            .iter()
            .zip(indexes)
            .map(|(r, ledger_index)| RecordedEvent {
                event_id: r.id.clone(),
                ledger_index,
                recorded_at: rfc3339_ms(r.created_at_ms),
            })
            .collect())
    }

    pub async fn policy_check(
        &self,
        principal: &Principal,
        input: PolicyCheckInput,
    ) -> Result<PolicyCheckOutput, MeshError> {
        principal
            .may_act_for(&input.agent_id, "request policy decisions")
            .map_err(|e| MeshError::Forbidden(e.to_string()))?;
        check_id("agent_id", &input.agent_id)?;
        check_estimates(&input)?;
        let bundle = self.bundle.current();
        let controls = self
            .check_controls(&bundle, &principal.tenant, &input)
            .await?;
        let evaluation = evaluate_check(
            &PolicyContext {
                bundle: &bundle,
                detectors: &self.detectors,
                dataset: &self.dataset,
                max_content_bytes: self.limits.max_content_bytes,
            },
            &principal.tenant,
            &input,
            &controls,
        )?;
        // Sealed before the answer goes out: every pseudonym a caller ever sees can be
        // re-identified by an operator.
        let sealed = evaluation
            .pseudonyms
            .iter()
            .map(|p| {
                self.tenant_keys
                    .seal(&principal.tenant, &p.pseudonym, &p.value)
                    .map(|sealed| SealedPseudonym {
                        pseudonym: p.pseudonym.clone(),
                        entity: p.entity.clone(),
                        sealed,
                    })
                    .map_err(|e| MeshError::Internal(e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.store
            .put_pseudonyms(&principal.tenant, &sealed, now_ms())
            .await?;
        let model = model_check(&evaluation);
        let record = DecisionRecord {
            id: new_id("dec"),
            tenant: principal.tenant.clone(),
            agent_id: input.agent_id,
            action: input.action,
            model: input.model,
            tool: input.tool,
            region: input.region,
            content_hmac: input.content.as_deref().map(|c| self.content_hmac(c)),
            decision: evaluation.decision,
            reasons: evaluation.reasons,
            findings: evaluation.findings,
            obligations: evaluation.obligations,
            bundle_version: evaluation.bundle_version,
            created_at_ms: now_ms(),
        };
        let ledger_index = self.store.append_decision(&record).await?;
        self.metrics.record_decision(record.decision);
        let team = self
            .bundle
            .current()
            .placement(&record.agent_id)
            .team
            .map(str::to_string);
        self.live
            .observe_decision(&record, ledger_index, team.as_deref())
            .await;
        Ok(PolicyCheckOutput {
            decision_id: record.id,
            decision: record.decision,
            reasons: record.reasons,
            findings: record.findings,
            obligations: record.obligations,
            redacted_content: evaluation.redacted_content,
            injection: evaluation.injection,
            model,
            budgets: controls.budgets,
            rate_limit: controls.rate,
            bundle_version: record.bundle_version,
            ledger_index,
        })
    }

    /// Rate, spend and keys for one check. The rate limiter counts the check here, before
    /// evaluation, so a burst cannot slip through while its checks are being evaluated.
    async fn check_controls(
        &self,
        bundle: &Bundle,
        tenant: &str,
        input: &PolicyCheckInput,
    ) -> Result<CheckControls, MeshError> {
        let budgets = bundle.budgets();
        let heal = controls_in_force(
            self.store.active_controls(Some(tenant)).await?,
            rand::random::<f64>(),
        );
        let placement = bundle.placement(&input.agent_id);
        let caps = heal_budget_caps(&heal, tenant, &input.agent_id, placement.team);
        let checks_per_minute = match (
            budgets.checks_per_minute(&input.agent_id),
            caps.checks_per_minute,
        ) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let rate = checks_per_minute.map(|limit| {
            let r = self
                .rate_limiter
                .admit(tenant, &input.agent_id, limit, now_ms());
            RateLimitState {
                limit_per_minute: limit,
                checks_last_minute: r.checks_last_minute,
                exceeded: r.exceeded,
            }
        });
        let mut lines = budgets.lines_for(tenant, &input.agent_id, &placement);
        lines.extend(caps.lines);
        let budget_states = if lines.is_empty() {
            Vec::new()
        } else {
            let [day, month] = usage_periods(now_ms());
            let keys: Vec<UsageKey> = lines
                .iter()
                .map(|l| UsageKey {
                    scope: l.scope.as_str().to_string(),
                    scope_id: l.scope_id.clone(),
                    period: match l.period {
                        Period::Day => day.clone(),
                        Period::Month => month.clone(),
                    },
                })
                .collect();
            let spent = self.store.usage(tenant, &keys).await?;
            let lookup = |scope: Scope, scope_id: &str, period: Period| {
                let period = match period {
                    Period::Day => &day,
                    Period::Month => &month,
                };
                spent
                    .iter()
                    .find(|(k, _, _)| {
                        k.scope == scope.as_str() && k.scope_id == scope_id && &k.period == period
                    })
                    .map_or(Usage::default(), |(_, tokens, micro)| Usage {
                        tokens: u64::try_from(*tokens).unwrap_or(0),
                        cost_usd: *micro as f64 / 1_000_000.0,
                    })
            };
            let estimate = Usage {
                tokens: input
                    .estimated_tokens
                    .and_then(|n| u64::try_from(n).ok())
                    .unwrap_or(0),
                cost_usd: input.estimated_cost_usd.unwrap_or(0.0),
            };
            meshos_policy::assess(&lines, lookup, estimate)
        };
        Ok(CheckControls {
            budgets: budget_states,
            rate,
            heal_controls: heal_controls_for(&heal, input),
            redaction_keys: Some(self.tenant_keys.redaction(tenant)),
        })
    }

    /// Adds reported spend to the agent's, its team's and the tenant's counters.
    async fn count_usage(&self, tenant: &str, records: &[EventRecord]) -> Result<(), MeshError> {
        let bundle = self.bundle.current();
        let increments: Vec<UsageIncrement> = records
            .iter()
            .filter(|r| {
                r.input_tokens.is_some() || r.output_tokens.is_some() || r.cost_usd.is_some()
            })
            .map(|r| {
                let mut scopes = vec![
                    (Scope::Agent.as_str().to_string(), r.agent_id.clone()),
                    (Scope::Tenant.as_str().to_string(), tenant.to_string()),
                ];
                if let Some(team) = bundle.placement(&r.agent_id).team {
                    scopes.push((Scope::Team.as_str().to_string(), team.to_string()));
                }
                UsageIncrement {
                    scopes,
                    at_ms: r.created_at_ms,
                    tokens: r
                        .input_tokens
                        .unwrap_or(0)
                        .saturating_add(r.output_tokens.unwrap_or(0)),
                    cost_micro_usd: r.cost_usd.map_or(0, micro_usd),
                }
            })
            .collect();
        if increments.is_empty() {
            return Ok(());
        }
        self.store.add_usage(tenant, &increments).await?;
        Ok(())
    }

    /// Keyed hash of submitted content: lets an auditor confirm what was checked without the
    /// ledger ever holding the text itself.
    fn content_hmac(&self, content: &str) -> String {
        use hmac::{Hmac, Mac};
        let mut mac = match Hmac::<sha2::Sha256>::new_from_slice(&self.content_key) {
            Ok(m) => m,
            // HMAC accepts keys of any length; this arm cannot be reached with a 32-byte key.
            Err(_) => return String::new(),
        };
        mac.update(content.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    pub async fn trust_score(
        &self,
        principal: &Principal,
        agent_id: &str,
    ) -> Result<TrustScoreOutput, MeshError> {
        check_id("agent_id", agent_id)?;
        principal
            .may_read_agent(agent_id)
            .map_err(|e| MeshError::Forbidden(e.to_string()))?;
        let unknown = || {
            MeshError::NotFound(format!(
                "unknown agent_id {agent_id:?}: this tenant has no events or decisions for it; \
                 expected an agent that has called record_event or policy_check"
            ))
        };
        if !self.store.agent_known(&principal.tenant, agent_id).await? {
            return Err(unknown());
        }
        let team = self
            .bundle
            .current()
            .placement(agent_id)
            .team
            .map(str::to_string);
        let (t, newest) = self
            .live
            .score_now(&principal.tenant, agent_id, team.as_deref())
            .await?
            .ok_or_else(unknown)?;
        let now = now_ms();
        let history = self
            .store
            .trust_history(&principal.tenant, agent_id, now - TREND_WINDOW_MS, 5_000)
            .await?;
        let signals = self
            .store
            .drift_signals(&principal.tenant, Some(agent_id), RECENT_SIGNALS)
            .await?;
        Ok(TrustScoreOutput {
            agent_id: agent_id.to_string(),
            score: t.score,
            trend: trust_trend(&history, t.score, now),
            components: t.components,
            sla: t.sla,
            basis: t.basis,
            explanation: t.explanation,
            drift_signals: signals.into_iter().map(DriftSignalOutput::from).collect(),
            updated_at: rfc3339_ms(if newest > 0 { newest } else { now }),
        })
    }

    /// The tenant's most recent SLA alerts with their webhook outcomes (not for agent tokens).
    pub async fn alerts(&self, principal: &Principal) -> Result<Vec<AlertOutput>, MeshError> {
        if principal.role == Role::Agent {
            return Err(MeshError::Forbidden(
                "agent tokens cannot list the tenant's alerts; expected an operator, auditor or admin token"
                    .into(),
            ));
        }
        Ok(self
            .store
            .alerts(&principal.tenant, None, 100)
            .await?
            .into_iter()
            .map(|a| AlertOutput {
                alert_id: a.id,
                kind: a.kind,
                agent_id: a.agent_id,
                score: a.score,
                threshold: a.threshold,
                scope: a.scope,
                at: rfc3339_ms(a.at_ms),
                deliveries: a.deliveries,
            })
            .collect())
    }

    pub async fn evidence_fetch(
        &self,
        principal: &Principal,
        input: EvidenceFetchInput,
    ) -> Result<EvidenceFetchOutput, MeshError> {
        let tenant = &principal.tenant;
        let selectors = [&input.decision_id, &input.event_id, &input.agent_id]
            .iter()
            .filter(|s| s.is_some())
            .count();
        if selectors != 1 {
            return Err(invalid(
                "decision_id|event_id|agent_id",
                "expected exactly one of decision_id, event_id or agent_id",
            ));
        }
        let mut records: Vec<(LedgerRecord, u64)> = Vec::new();
        if let Some(id) = &input.decision_id {
            check_id("decision_id", id)?;
            let (d, idx) = self.store.decision(tenant, id).await?.ok_or_else(|| {
                MeshError::NotFound(format!(
                    "no decision with decision_id {id:?} in this tenant"
                ))
            })?;
            principal
                .may_read_agent(&d.agent_id)
                .map_err(|e| MeshError::Forbidden(e.to_string()))?;
            let approval = self.store.approval_for_decision(tenant, &d.id).await?;
            records.push((LedgerRecord::Decision(d), idx));
            if let Some((a, i)) = approval {
                records.push((LedgerRecord::Approval(a), i));
            }
        } else if let Some(id) = &input.event_id {
            check_id("event_id", id)?;
            let (e, idx) = self.store.event(tenant, id).await?.ok_or_else(|| {
                MeshError::NotFound(format!("no event with event_id {id:?} in this tenant"))
            })?;
            principal
                .may_read_agent(&e.agent_id)
                .map_err(|e| MeshError::Forbidden(e.to_string()))?;
            records.push((LedgerRecord::Event(e), idx));
        } else if let Some(agent) = &input.agent_id {
            check_id("agent_id", agent)?;
            principal
                .may_read_agent(agent)
                .map_err(|e| MeshError::Forbidden(e.to_string()))?;
            let limit = input.limit.unwrap_or(20);
            if !(1..=200).contains(&limit) {
                return Err(invalid("limit", format!("{limit}; expected 1-200")));
            }
            if !self.store.agent_known(tenant, agent).await? {
                return Err(MeshError::NotFound(format!(
                    "unknown agent_id {agent:?}: no events or decisions in this tenant"
                )));
            }
            for (d, i) in self.store.recent_decisions(tenant, agent, limit).await? {
                records.push((LedgerRecord::Decision(d), i));
            }
            for (e, i) in self.store.recent_events(tenant, agent, limit).await? {
                records.push((LedgerRecord::Event(e), i));
            }
            records.sort_by_key(|r| std::cmp::Reverse(r.1));
            records.truncate(limit as usize);
        }

        // The records were committed before we read the size, so the checkpoint covers them.
        let size = self.store.ledger_size(tenant).await?;
        let leaves = self.store.ledger_leaf_hashes(tenant, size).await?;
        let checkpoint = self.checkpoint_for(tenant, &leaves).await?;
        let mut out = Vec::with_capacity(records.len());
        for (record, index) in records {
            let proof = InclusionProof::build(&leaves, index).map_err(|e| {
                MeshError::Internal(format!("inclusion proof for index {index}: {e}"))
            })?;
            out.push(EvidenceRecord {
                ledger_index: index,
                record_type: record.kind().to_string(),
                record_id: record.id().to_string(),
                leaf_hash: proof.leaf_hash.clone(),
                record: record_json(&record),
                inclusion_proof: proof,
            });
        }
        Ok(EvidenceFetchOutput {
            records: out,
            checkpoint: self.checkpoint_output(&checkpoint),
        })
    }

    /// Records an operator's approve/refuse of a `require_approval` decision, once.
    pub async fn pseudonym_reveal(
        &self,
        principal: &Principal,
        input: PseudonymRevealInput,
    ) -> Result<PseudonymRevealOutput, MeshError> {
        let out = reveal_pseudonym(&self.store, &self.tenant_keys, principal, input).await?;
        self.metrics.reidentifications.inc();
        Ok(out)
    }

    pub async fn approval_decide(
        &self,
        principal: &Principal,
        input: ApprovalDecideInput,
    ) -> Result<ApprovalOutput, MeshError> {
        if !matches!(principal.role, Role::Operator | Role::Admin) {
            return Err(MeshError::Forbidden(format!(
                "role {} cannot decide approvals; expected an operator or admin token",
                principal.role
            )));
        }
        check_id("decision_id", &input.decision_id)?;
        if input.note.as_ref().is_some_and(|n| n.len() > 4096) {
            return Err(invalid("note", "expected at most 4096 bytes"));
        }
        let (decision, _) = self
            .store
            .decision(&principal.tenant, &input.decision_id)
            .await?
            .ok_or_else(|| {
                MeshError::NotFound(format!(
                    "no decision with decision_id {:?} in this tenant",
                    input.decision_id
                ))
            })?;
        if decision.decision != Verdict::RequireApproval {
            return Err(invalid(
                "decision_id",
                format!(
                    "decision {} is {}, not require_approval; only require_approval decisions can be approved",
                    decision.id,
                    decision.decision.as_str()
                ),
            ));
        }
        let record = ApprovalRecord {
            id: new_id("apr"),
            tenant: principal.tenant.clone(),
            decision_id: decision.id.clone(),
            approved: input.approve,
            decided_by: principal.token_id.clone(),
            decided_by_role: principal.role,
            note: input.note,
            created_at_ms: now_ms(),
        };
        let ledger_index = match self.store.append_approval(&record).await {
            Ok(i) => i,
            Err(StoreError::Duplicate { .. }) => {
                let earlier = self
                    .store
                    .approval_for_decision(&principal.tenant, &decision.id)
                    .await?;
                let what = match earlier {
                    Some((a, _)) if a.approved => "approved",
                    Some(_) => "refused",
                    None => "answered",
                };
                return Err(invalid(
                    "decision_id",
                    format!(
                        "decision {} was already {what}; a decision is answered once",
                        decision.id
                    ),
                ));
            }
            Err(e) => return Err(e.into()),
        };
        Ok(ApprovalOutput {
            approval_id: record.id,
            decision_id: record.decision_id,
            approved: record.approved,
            decided_by: record.decided_by,
            ledger_index,
            decided_at: rfc3339_ms(record.created_at_ms),
        })
    }

    pub async fn approvals_pending(
        &self,
        principal: &Principal,
        input: ApprovalsPendingInput,
    ) -> Result<ApprovalsPendingOutput, MeshError> {
        if principal.role == Role::Agent {
            return Err(MeshError::Forbidden(
                "agent tokens cannot list approvals; expected an operator, admin or auditor token"
                    .into(),
            ));
        }
        check_optional_id("agent_id", &input.agent_id)?;
        let limit = input.limit.unwrap_or(50);
        if !(1..=200).contains(&limit) {
            return Err(invalid("limit", format!("{limit}; expected 1-200")));
        }
        // Filtering by agent after the query keeps one SQL shape; the page is small.
        let pending = self
            .store
            .pending_approvals(&principal.tenant, 200)
            .await?
            .into_iter()
            .map(|(d, _)| d)
            .filter(|d| input.agent_id.as_ref().is_none_or(|a| a == &d.agent_id))
            .take(limit as usize)
            .map(|d| PendingApproval {
                decision_id: d.id,
                agent_id: d.agent_id,
                action: d.action,
                model: d.model,
                tool: d.tool,
                region: d.region,
                reasons: d.reasons,
                obligations: d.obligations,
                requested_at: rfc3339_ms(d.created_at_ms),
            })
            .collect();
        Ok(ApprovalsPendingOutput { pending })
    }

    pub fn origin_for(&self, tenant: &str) -> String {
        format!("{}/{}", self.ledger_origin, tenant)
    }

    /// The signed checkpoint for exactly these leaves, signing and storing it if it is new.
    pub async fn checkpoint_for(
        &self,
        tenant: &str,
        leaves: &[meshos_evidence::Hash],
    ) -> Result<StoredCheckpoint, MeshError> {
        self.checkpoint_at(tenant, leaves.len() as u64, || tree_root(leaves))
            .await
    }

    /// The signed checkpoint for the tenant's log at `size` (the stored one if it exists);
    /// `root` is only computed when a new one must be signed.
    async fn checkpoint_at(
        &self,
        tenant: &str,
        size: u64,
        root: impl FnOnce() -> meshos_evidence::Hash,
    ) -> Result<StoredCheckpoint, MeshError> {
        if let Some(latest) = self.store.latest_checkpoint(tenant).await?
            && latest.size == size
        {
            return Ok(latest);
        }
        let cp = Checkpoint {
            origin: self.origin_for(tenant),
            size,
            root: root(),
        };
        let note = self
            .signer
            .sign_checkpoint(&cp)
            .map_err(|e| MeshError::Internal(format!("signing checkpoint: {e}")))?;
        let stored = StoredCheckpoint {
            tenant: tenant.to_string(),
            size,
            root: cp.root,
            note,
            created_at_ms: now_ms(),
        };
        self.store.save_checkpoint(&stored).await?;
        Ok(stored)
    }

    /// Signs a checkpoint for every tenant whose log grew since its last one.
    pub async fn refresh_checkpoints(&self) -> Result<usize, MeshError> {
        let mut signed = 0;
        for tenant in self.store.ledger_tenants().await? {
            let size = self.store.ledger_size(&tenant).await?;
            let latest = self.store.latest_checkpoint(&tenant).await?.map(|c| c.size);
            if latest == Some(size) {
                continue;
            }
            let mut frontier = self
                .frontiers
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&tenant)
                .cloned()
                .unwrap_or_default();
            if frontier.size() > size {
                // The log cannot shrink; a frontier ahead of it means it was replaced
                // (restored database): start over from its leaves.
                frontier = Frontier::new();
            }
            let new_leaves = self
                .store
                .ledger_leaf_hashes_between(&tenant, frontier.size(), size)
                .await?;
            for leaf in new_leaves {
                frontier.push(leaf);
            }
            if frontier.size() != size {
                return Err(MeshError::Internal(format!(
                    "tenant {tenant}: the ledger has {size} leaves but {} could be read",
                    frontier.size()
                )));
            }
            let root = frontier.root();
            self.checkpoint_at(&tenant, size, || root).await?;
            self.frontiers
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(tenant, frontier);
            signed += 1;
        }
        Ok(signed)
    }

    pub fn checkpoint_output(&self, cp: &StoredCheckpoint) -> CheckpointOutput {
        CheckpointOutput {
            text: cp.note.clone(),
            origin: self.origin_for(&cp.tenant),
            size: cp.size,
            root_hash: hash_to_hex(&cp.root),
            verifier_key: self.signer.verifier_key(),
        }
    }

    /// Routes a model call, leaving out the regions and providers the tenant's open incidents
    /// avoid (`region_avoid` controls set by the healer).
    pub async fn carbon_route(
        &self,
        principal: &Principal,
        req: RouteRequest,
    ) -> Result<RouteDecision, MeshError> {
        let avoid: Vec<String> = controls_in_force(
            self.store.active_controls(Some(&principal.tenant)).await?,
            rand::random::<f64>(),
        )
        .into_iter()
        .filter(|c| c.kind == "region_avoid")
        .map(|c| c.subject)
        .collect();
        meshos_carbon::route_avoiding(&self.dataset, &req, &avoid).map_err(|e| match e {
            CarbonError::UnknownModel { .. } => invalid("model", e.to_string()),
            CarbonError::UnknownResidency { .. } => invalid("residency", e.to_string()),
            CarbonError::InvalidRequest { ref field, .. } => invalid(field.clone(), e.to_string()),
            CarbonError::NoFeasibleOption { .. } => MeshError::NotFound(e.to_string()),
            CarbonError::InvalidDataset(_) => MeshError::Internal(e.to_string()),
        })
    }

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

fn record_json(record: &LedgerRecord) -> serde_json::Value {
    serde_json::to_value(record).unwrap_or(serde_json::Value::Null)
}
