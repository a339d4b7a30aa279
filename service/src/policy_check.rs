//! `policy_check`: gathers the facts a decision needs (rate, spend, healer controls, keys), evaluates the bundle in force, seals pseudonyms and appends the decision.

use meshos_carbon::Dataset;
use meshos_policy::{BudgetLine, Facts, Metric, RequestIdentity, UsageCounter};
use meshos_policy::{
    BudgetState, Bundle, CheckRequest, ContentSource, Detectors, Evaluation, InjectionVerdict,
    Period, RedactionKeys, Scope, Usage, evaluate,
};
use meshos_store::{
    Reservation, ReservationOutcome, SealedPseudonym, Settle, SpendChange, StoredControl, UsageKey,
    UsageLimit, usage_periods,
};
use meshos_types::{CapScope, Control, ControlRequest, heal_control_names};

use crate::events::micro_usd;
use meshos_types::{
    DecisionRecord, Finding, Obligation, Principal, Reason, Verdict, new_id, now_ms,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::mesh::{
    Limits, Mesh, MeshError, check_amount, check_count, check_id, check_optional_id, invalid,
};

/// May this agent take this action?
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
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
    /// Where `content` came from: `user` (the default: typed or sent by the user, or the
    /// agent's own prompt), `tool_result` (returned by a tool call) or `retrieved_document`
    /// (RAG, web page, e-mail, file), or `tool_definition` (an MCP tool's description and
    /// schema). Instructions aimed at the model inside data from tools and documents are
    /// screened more strictly; a tool definition, written to instruct a model, by the rules
    /// alone.
    #[serde(default)]
    pub content_source: Option<ContentSource>,
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
    /// The arguments of the tool call the action is (a JSON object). Policies read those the
    /// bundle's `ToolArguments` type declares, typed, as `context.arguments`; an argument of
    /// another type is refused. Not scanned for content: send what must be scanned as `content`.
    #[serde(default)]
    pub arguments: Option<serde_json::Value>,
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
    /// The agent's trust score (0-100, rounded), when a policy reads `trust_score`.
    pub trust_score: Option<i64>,
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

/// What evaluating a policy request needs, without storage: the MCP tool and the offline
/// `meshos policy` commands share it.
pub struct PolicyContext<'a> {
    pub bundle: &'a Bundle,
    pub detectors: &'a Detectors,
    pub dataset: &'a Dataset,
    pub limits: Limits,
}

/// Validates a policy request (ids, estimates, content size, region in the catalogue) and
/// evaluates it: what the offline `meshos policy` commands run.
pub fn evaluate_check(
    ctx: &PolicyContext<'_>,
    tenant: &str,
    input: &PolicyCheckInput,
    controls: &CheckControls,
) -> Result<Evaluation, MeshError> {
    let checked = validate_check(ctx, input)?;
    Ok(decide_check(ctx, tenant, input, &checked, controls))
}

/// What validating a request found out that deciding it needs.
pub struct CheckedRequest {
    /// The jurisdictions of the request's region (empty without one).
    pub region_jurisdictions: Vec<String>,
}

/// Checks a request once, before any fact is fetched: ids, estimates, content size and the
/// region against the catalogue. Errors name the field and what is expected.
pub fn validate_check(
    ctx: &PolicyContext<'_>,
    input: &PolicyCheckInput,
) -> Result<CheckedRequest, MeshError> {
    check_id("agent_id", &input.agent_id)?;
    check_id("action", &input.action)?;
    check_optional_id("model", &input.model)?;
    check_optional_id("tool", &input.tool)?;
    check_estimates(input, &ctx.limits)?;
    if let Some(arguments) = &input.arguments
        && !arguments.is_object()
    {
        return Err(invalid(
            "arguments",
            "expected a JSON object of the tool call's arguments",
        ));
    }
    if let Some(content) = &input.content
        && content.len() > ctx.limits.max_content_bytes
    {
        return Err(invalid(
            "content",
            format!(
                "{} bytes is over the limit; expected at most {} bytes",
                content.len(),
                ctx.limits.max_content_bytes
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
    Ok(CheckedRequest {
        region_jurisdictions,
    })
}

/// Decides a validated request on its facts: pure, no I/O.
pub fn decide_check(
    ctx: &PolicyContext<'_>,
    tenant: &str,
    input: &PolicyCheckInput,
    checked: &CheckedRequest,
    controls: &CheckControls,
) -> Evaluation {
    let facts = Facts {
        heal_controls: controls.heal_controls.clone(),
        budgets: controls.budgets.clone(),
        checks_last_minute: controls
            .rate
            .as_ref()
            .map_or(0, |r| i64::from(r.checks_last_minute)),
        rate_limit_exceeded: controls.rate.as_ref().is_some_and(|r| r.exceeded),
        trust_score: controls.trust_score,
    };
    let request = CheckRequest {
        tenant,
        agent_id: &input.agent_id,
        action: &input.action,
        content: input.content.as_deref(),
        model: input.model.as_deref(),
        tool: input.tool.as_deref(),
        region: input.region.as_deref(),
        region_jurisdictions: checked.region_jurisdictions.clone(),
        budget_exceeded: Vec::new(),
        checks_last_minute: 0,
        rate_limit_exceeded: false,
        heal_controls: Vec::new(),
        redaction_keys: controls.redaction_keys.as_ref(),
        arguments: input.arguments.as_ref(),
        trust_score: None,
        content_source: input.content_source.unwrap_or_default(),
    }
    .with_facts(&facts);
    evaluate(ctx.bundle, ctx.detectors, &request)
}

pub(crate) fn check_estimates(input: &PolicyCheckInput, limits: &Limits) -> Result<(), MeshError> {
    check_count(
        "estimated_tokens".into(),
        input.estimated_tokens,
        limits.max_tokens,
    )?;
    check_amount(
        "estimated_cost_usd".into(),
        input.estimated_cost_usd,
        limits.max_cost_usd,
    )
}

/// The controls that hold one request, read back into their typed form: all active ones but
/// those on canary (the healer lets a share of their traffic through, `canary_share`, to
/// verify before releasing them) when the request's uniform `draw` in [0, 1) falls within
/// that share.
pub fn controls_in_force(controls: &[StoredControl], draw: f64) -> Vec<Control> {
    meshos_store::readable_controls(controls)
        .filter(|(row, _)| !row.canary_share().is_some_and(|share| draw < share))
        .map(|(_, c)| c)
        .collect()
}

/// The names (as Cedar sees them in `context.heal_controls`) of the healer controls that apply to
/// a request (see `meshos_types::Control::applies_to`).
pub fn heal_controls_for(controls: &[Control], input: &PolicyCheckInput) -> Vec<String> {
    let request = ControlRequest {
        agent: &input.agent_id,
        action: &input.action,
        tool: input.tool.as_deref(),
        model: input.model.as_deref(),
    };
    heal_control_names(controls, &request)
        .into_iter()
        .map(str::to_string)
        .collect()
}

/// What open incidents' `budget_cap` controls add for one agent: daily budget lines (assessed
/// next to the bundle's, so a cap only ever narrows) and a check rate.
#[derive(Debug, Default, PartialEq)]
pub struct HealBudgetCaps {
    pub lines: Vec<BudgetLine>,
    pub checks_per_minute: Option<u32>,
}

/// The caps that apply to `agent_id`: those on the agent, on its team, or on the whole tenant.
pub fn heal_budget_caps(
    controls: &[Control],
    tenant: &str,
    agent_id: &str,
    team: Option<&str>,
) -> HealBudgetCaps {
    let mut caps = HealBudgetCaps::default();
    for (scope, scope_id, limits) in controls
        .iter()
        .filter_map(|c| c.cap_for(tenant, agent_id, team))
    {
        let scope = match scope {
            CapScope::Agent => Scope::Agent,
            CapScope::Team => Scope::Team,
            CapScope::Tenant => Scope::Tenant,
        };
        for (metric, limit) in [
            (Metric::CostUsd, limits.max_cost_usd_per_day),
            (Metric::Tokens, limits.max_tokens_per_day),
        ] {
            if let Some(limit) = limit {
                caps.lines.push(BudgetLine {
                    scope,
                    scope_id: scope_id.clone(),
                    period: Period::Day,
                    metric,
                    limit,
                });
            }
        }
        if scope == Scope::Agent
            && let Some(rpm) = limits.max_requests_per_minute
        {
            let rpm = rpm.min(f64::from(u32::MAX)) as u32;
            caps.checks_per_minute = Some(caps.checks_per_minute.map_or(rpm, |r| r.min(rpm)));
        }
    }
    caps
}

/// The policy_check output's view of the model resolution (absent without a model).
pub(crate) fn model_check(evaluation: &Evaluation) -> Option<ModelCheck> {
    (evaluation.model.status != meshos_policy::ModelStatus::None).then(|| ModelCheck {
        status: evaluation.model.status.as_str().to_string(),
        family: evaluation.model.family.clone(),
        version: evaluation.model.version.clone(),
    })
}

/// How long an estimate stays reserved when no event settles it.
pub const RESERVATION_TTL_MS: i64 = 10 * 60 * 1000;

/// Whether a decision lets the action go ahead (so its reservation must stay until the
/// agent reports what it spent).
fn lets_it_happen(decision: Verdict) -> bool {
    matches!(decision, Verdict::Allow | Verdict::Redact)
}

impl Mesh {
    /// Decides one request with one bundle snapshot: validate once, fetch the facts it needs
    /// (healer controls and spend counters in one store round trip; the rate in memory),
    /// reserve its estimate against every budget line, evaluate, then write the decision, its
    /// sealed pseudonyms and — when the action will not happen — the release of its
    /// reservation in one transaction.
    pub async fn policy_check(
        &self,
        principal: &Principal,
        input: PolicyCheckInput,
    ) -> Result<PolicyCheckOutput, MeshError> {
        principal
            .may_act_for(&input.agent_id, "request policy decisions")
            .map_err(|e| MeshError::Forbidden(e.to_string()))?;
        let bundle = self.bundle.current();
        let ctx = PolicyContext {
            bundle: &bundle,
            detectors: &self.detectors,
            dataset: &self.dataset,
            limits: self.limits,
        };
        let checked = validate_check(&ctx, &input)?;
        let tenant = principal.tenant.as_str();
        let decision_id = new_id("dec");
        let (controls, reserved) = self
            .check_controls(&bundle, tenant, &input, &decision_id)
            .await?;
        let evaluation = decide_check(&ctx, tenant, &input, &checked, &controls);
        // Sealed before the answer goes out: every pseudonym a caller ever sees can be
        // re-identified by an operator.
        let sealed = evaluation
            .pseudonyms
            .iter()
            .map(|p| {
                self.keys
                    .tenants()
                    .seal(tenant, &p.pseudonym, &p.value)
                    .map(|sealed| SealedPseudonym {
                        pseudonym: p.pseudonym.clone(),
                        entity: p.entity.clone(),
                        sealed,
                    })
                    .map_err(|e| MeshError::Internal(e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let model = model_check(&evaluation);
        let release = (reserved && !lets_it_happen(evaluation.decision)).then(|| SpendChange {
            tenant: tenant.to_string(),
            increments: Vec::new(),
            settle: vec![Settle::Decision(decision_id.clone())],
        });
        let team = bundle.placement(&input.agent_id).team.map(str::to_string);
        let record = DecisionRecord {
            id: decision_id,
            tenant: tenant.to_string(),
            agent_id: input.agent_id,
            action: input.action,
            model: input.model,
            tool: input.tool,
            region: input.region,
            content_hmac: input.content.as_deref().map(|c| self.keys.content_hmac(c)),
            decision: evaluation.decision,
            reasons: evaluation.reasons,
            findings: evaluation.findings,
            obligations: evaluation.obligations,
            bundle_version: evaluation.bundle_version,
            created_at_ms: now_ms(),
        };
        let ledger_index = self
            .store
            .append_decision_with(&record, &sealed, release)
            .await?;
        self.metrics.record_decision(record.decision);
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

    /// Rate, spend, healer controls and keys for one check, and whether its estimate was
    /// reserved. The rate limiter counts the check here, before evaluation, so a burst cannot
    /// slip through while its checks are being evaluated.
    pub(crate) async fn check_controls(
        &self,
        bundle: &Bundle,
        tenant: &str,
        input: &PolicyCheckInput,
        decision_id: &str,
    ) -> Result<(CheckControls, bool), MeshError> {
        let now = now_ms();
        let needs = bundle.facts_needed(&RequestIdentity {
            tenant,
            agent_id: &input.agent_id,
            action: &input.action,
        });
        let [day, month] = usage_periods(now);
        let counter_key = |scope: Scope, scope_id: &str, period: Period| UsageKey {
            scope: scope.as_str().to_string(),
            scope_id: scope_id.to_string(),
            period: match period {
                Period::Day => day.clone(),
                Period::Month => month.clone(),
            },
        };
        let keys: Vec<UsageKey> = needs
            .usage_counters
            .iter()
            .map(|c| counter_key(c.scope, &c.scope_id, c.period))
            .collect();
        // Everything stored the decision reads, in one round trip.
        let (controls, counters) = self
            .store
            .check_facts(tenant, needs.controls, &keys)
            .await?;
        let heal = controls_in_force(&controls, rand::random::<f64>());
        let caps = heal_budget_caps(&heal, tenant, &input.agent_id, needs.placement.team);
        let checks_per_minute = if needs.rate_limit {
            match (needs.rate_limit_per_minute, caps.checks_per_minute) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            }
        } else {
            None
        };
        let rate = checks_per_minute.map(|limit| {
            let r = self.rate_limiter.admit(tenant, &input.agent_id, limit, now);
            RateLimitState {
                limit_per_minute: limit,
                checks_last_minute: r.checks_last_minute,
                exceeded: r.exceeded,
            }
        });
        let estimate = Usage {
            tokens: input
                .estimated_tokens
                .and_then(|n| u64::try_from(n).ok())
                .unwrap_or(0),
            cost_usd: input.estimated_cost_usd.unwrap_or(0.0),
        };
        // Spent plus reserved: an estimate must fit next to what other checks already hold.
        let held: Vec<(UsageCounter, Usage)> = needs
            .usage_counters
            .iter()
            .zip(&counters)
            .map(|(counter, (_, c))| {
                let usage = Usage {
                    tokens: u64::try_from(c.held_tokens()).unwrap_or(0),
                    cost_usd: c.held_micro_usd() as f64 / 1_000_000.0,
                };
                (counter.clone(), usage)
            })
            .collect();
        let mut budget_states = needs.assess(&caps.lines, &held, estimate);
        let lines: Vec<BudgetLine> = needs
            .usage_lines
            .iter()
            .chain(&caps.lines)
            .cloned()
            .collect();
        // Reserve only what could be allowed: an estimate already over a line is refused by
        // policy without holding anything.
        let wants_reservation = (estimate.tokens > 0 || estimate.cost_usd > 0.0)
            && !lines.is_empty()
            && !needs.usage_counters.is_empty()
            && budget_states.iter().all(|b| !b.exceeded);
        let mut reserved = false;
        if wants_reservation {
            let limits = reservation_limits(&lines, &counter_key);
            let outcome = self
                .store
                .reserve_usage(
                    tenant,
                    Reservation {
                        id: decision_id.to_string(),
                        agent_id: input.agent_id.clone(),
                        tokens: i64::try_from(estimate.tokens).unwrap_or(i64::MAX),
                        cost_micro_usd: micro_usd(estimate.cost_usd),
                        limits,
                        at_ms: now,
                        expires_at_ms: now.saturating_add(RESERVATION_TTL_MS),
                    },
                )
                .await?;
            match outcome {
                ReservationOutcome::Reserved => reserved = true,
                // Another check reserved first: what it holds now counts against this one.
                ReservationOutcome::Refused { over } => {
                    for (line, state) in lines.iter().zip(budget_states.iter_mut()) {
                        if over.contains(&counter_key(line.scope, &line.scope_id, line.period)) {
                            state.exceeded = true;
                        }
                    }
                }
            }
        }
        let trust_score = if needs.trust_score {
            self.trust_score_for_policy(bundle, tenant, &input.agent_id)
                .await?
        } else {
            None
        };
        Ok((
            CheckControls {
                budgets: budget_states,
                rate,
                heal_controls: heal_controls_for(&heal, input),
                redaction_keys: Some(self.keys.tenants().redaction(tenant)),
                trust_score,
            },
            reserved,
        ))
    }
}

impl Mesh {
    /// Decides `input` with the bundle in force, recording nothing and reading no stored fact
    /// (no healer controls, spend or rate): for content that is not an agent's request — an
    /// eval's answer, a tool's result — whose decision is recorded only when it matters.
    /// Redaction masks (no pseudonyms are issued).
    pub fn evaluate_unrecorded(
        &self,
        tenant: &str,
        input: &PolicyCheckInput,
    ) -> Result<Evaluation, MeshError> {
        let bundle = self.bundle.current();
        let ctx = PolicyContext {
            bundle: &bundle,
            detectors: &self.detectors,
            dataset: &self.dataset,
            limits: self.limits,
        };
        evaluate_check(&ctx, tenant, input, &CheckControls::default())
    }

    /// The agent's live score, rounded, for `context.trust_score`; `None` for an agent with no
    /// record yet (a policy tests `context has trust_score`).
    async fn trust_score_for_policy(
        &self,
        bundle: &Bundle,
        tenant: &str,
        agent_id: &str,
    ) -> Result<Option<i64>, MeshError> {
        let team = bundle.placement(agent_id).team.map(str::to_string);
        let score = self
            .live
            .score_now(tenant, agent_id, team.as_deref())
            .await?;
        Ok(score.map(|(s, _)| s.score.round() as i64))
    }
}

/// The limits a reservation must fit under, per counter, in the store's units.
fn reservation_limits(
    lines: &[BudgetLine],
    counter_key: &dyn Fn(Scope, &str, Period) -> UsageKey,
) -> Vec<UsageLimit> {
    let mut limits: Vec<UsageLimit> = Vec::new();
    for line in lines {
        let key = counter_key(line.scope, &line.scope_id, line.period);
        let i = match limits.iter().position(|l| l.key == key) {
            Some(i) => i,
            None => {
                limits.push(UsageLimit {
                    key,
                    max_tokens: None,
                    max_micro_usd: None,
                });
                limits.len() - 1
            }
        };
        let l = &mut limits[i];
        match line.metric {
            Metric::Tokens => {
                let max = line.limit.min(i64::MAX as f64) as i64;
                l.max_tokens = Some(l.max_tokens.map_or(max, |m| m.min(max)));
            }
            Metric::CostUsd => {
                let max = micro_usd(line.limit);
                l.max_micro_usd = Some(l.max_micro_usd.map_or(max, |m| m.min(max)));
            }
        }
    }
    limits
}

#[cfg(test)]
#[path = "policy_check_tests.rs"]
mod tests;
