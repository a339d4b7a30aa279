//! Matching playbooks to incidents and turning one into a concrete plan.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::PlaybookError;
use crate::model::{
    ActionKind, Approval, Condition, IncidentKind, Playbook, RequiredApproval, RootCauseKind,
    Severity, Step, Verify,
};

/// The template variables a step parameter may use.
pub const TEMPLATE_VARIABLES: &[&str] = &[
    "subject",
    "subject.kind",
    "subject.name",
    "incident.id",
    "incident.tenant",
    "incident.kind",
    "metric",
    "affected_agents",
    "spend_cap_usd_per_day",
];

/// What the healer knows about an incident when it picks playbooks.
#[derive(Debug, Clone, PartialEq)]
pub struct IncidentFacts {
    pub kind: IncidentKind,
    pub severity: Severity,
    pub root_cause_kind: Option<RootCauseKind>,
    /// The diagnosed metric, e.g. `latency`.
    pub metric: Option<String>,
    /// The lowest trust score among the affected agents.
    pub trust_score: Option<f64>,
    pub affected_agents: u32,
}

impl IncidentFacts {
    pub(crate) fn matches(&self, p: &Playbook) -> bool {
        let t = &p.triggers;
        let any = |empty: bool, hit: bool| empty || hit;
        any(
            t.incident_kinds.is_empty(),
            t.incident_kinds.contains(&self.kind),
        ) && any(
            t.root_cause_kinds.is_empty(),
            self.root_cause_kind
                .is_some_and(|k| t.root_cause_kinds.contains(&k)),
        ) && any(
            t.metrics.is_empty(),
            self.metric.as_ref().is_some_and(|m| t.metrics.contains(m)),
        ) && self.severity >= t.min_severity
            && p.conditions.iter().all(|c: &Condition| {
                c.trust_score_below
                    .is_none_or(|x| self.trust_score.is_some_and(|s| s < x))
                    && c.affected_agents_at_least
                        .is_none_or(|n| self.affected_agents >= n)
            })
    }
}

/// The entity a plan acts on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subject {
    pub kind: RootCauseKind,
    pub name: String,
}

impl std::fmt::Display for Subject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.kind, self.name)
    }
}

/// The values templates resolve to.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanContext {
    pub incident_id: String,
    pub tenant: String,
    pub incident_kind: IncidentKind,
    pub subject: Subject,
    pub metric: Option<String>,
    pub affected_agents: Vec<String>,
    /// The policy bundle version in force; part of the digest, so an approval given under one
    /// bundle does not carry over to another.
    pub policy_version: String,
    /// A daily spend cap for the subject that bites at once: what it spent today plus an hour
    /// of its pre-fault spend (`{{spend_cap_usd_per_day}}`).
    pub spend_cap_usd_per_day: Option<f64>,
    /// When set, every automatic step needs this approval instead: the healer's guards (an
    /// ambiguous diagnosis, healthy agents in the blast radius, an agent's last working tool)
    /// turn a plan over to a human. Part of the digest like any approval.
    pub require_approval: Option<RequiredApproval>,
}

/// One step with its parameters resolved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedStep {
    pub id: String,
    pub action: ActionKind,
    pub params: serde_json::Map<String, Value>,
    pub approval: Approval,
    pub timeout_seconds: u64,
}

/// A playbook made concrete for one incident. Approvals are bound to `digest`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub playbook_id: String,
    pub playbook_version: u32,
    pub steps: Vec<PlannedStep>,
    pub rollback: Vec<PlannedStep>,
    pub verify: Verify,
    pub dry_run: bool,
    pub timeout_seconds: u64,
    pub policy_version: String,
    /// Hex SHA-256 over the canonical JSON of (playbook id, version, steps and rollback steps
    /// with their parameters, approvals and timeouts, verify, dry run, timeout, policy version).
    pub digest: String,
}

impl Plan {
    /// The strictest approval any step needs: `(role, expires_after_seconds)` with `admin`
    /// stricter than `operator` and the shortest expiry.
    pub fn requires_approval(&self) -> Option<(String, u64)> {
        self.steps
            .iter()
            .filter_map(|s| match &s.approval {
                Approval::Required(r) => Some((r.role.clone(), r.expires_after_seconds)),
                Approval::Auto => None,
            })
            .reduce(|a, b| {
                let role = if a.0 == "admin" || b.0 == "admin" {
                    "admin".to_string()
                } else {
                    a.0
                };
                (role, a.1.min(b.1))
            })
    }
}

impl Playbook {
    /// Resolves every template for `ctx` and computes the digest.
    pub fn plan(&self, ctx: &PlanContext) -> Result<Plan, PlaybookError> {
        let resolve_all = |steps: &[Step]| -> Result<Vec<PlannedStep>, PlaybookError> {
            steps
                .iter()
                .map(|s| {
                    let params = s
                        .params
                        .iter()
                        .map(|(k, v)| {
                            Ok((
                                k.clone(),
                                resolve(v, ctx).map_err(|m| self.plan_error(s, m))?,
                            ))
                        })
                        .collect::<Result<_, PlaybookError>>()?;
                    let approval = match (&s.approval, &ctx.require_approval) {
                        (Approval::Auto, Some(r)) if !s.action.is_delivery_only() => {
                            Approval::Required(r.clone())
                        }
                        (a, _) => a.clone(),
                    };
                    Ok(PlannedStep {
                        id: s.id.clone(),
                        action: s.action,
                        params,
                        approval,
                        timeout_seconds: s.timeout_seconds.unwrap_or(self.timeout_seconds),
                    })
                })
                .collect()
        };
        let steps = resolve_all(&self.steps)?;
        let rollback = resolve_all(&self.rollback)?;
        // Everything an approver agrees to: what runs, under which approvals and time limits,
        // how success is judged, and whether it runs for real.
        let step_terms = |steps: &[PlannedStep]| {
            steps
                .iter()
                .map(|s| {
                    serde_json::json!([s.id, s.action, s.params, s.approval, s.timeout_seconds])
                })
                .collect::<Vec<_>>()
        };
        let canonical = serde_json::json!({
            "playbook_id": self.id,
            "playbook_version": self.version,
            "steps": step_terms(&steps),
            "rollback": step_terms(&rollback),
            "verify": self.verify,
            "dry_run": self.dry_run,
            "timeout_seconds": self.timeout_seconds,
            "policy_version": ctx.policy_version,
        });
        // serde_json's map is ordered by key, so this encoding is canonical.
        let digest = hex::encode(Sha256::digest(canonical.to_string().as_bytes()));
        Ok(Plan {
            playbook_id: self.id.clone(),
            playbook_version: self.version,
            steps,
            rollback,
            verify: self.verify.clone(),
            dry_run: self.dry_run,
            timeout_seconds: self.timeout_seconds,
            policy_version: ctx.policy_version.clone(),
            digest,
        })
    }

    fn plan_error(&self, step: &Step, message: String) -> PlaybookError {
        PlaybookError::Plan {
            playbook: self.id.clone(),
            step: step.id.clone(),
            message,
        }
    }
}

fn variable(name: &str, ctx: &PlanContext) -> Result<Value, String> {
    Ok(match name {
        "subject" => Value::String(ctx.subject.to_string()),
        "subject.kind" => Value::String(ctx.subject.kind.to_string()),
        "subject.name" => Value::String(ctx.subject.name.clone()),
        "incident.id" => Value::String(ctx.incident_id.clone()),
        "incident.tenant" => Value::String(ctx.tenant.clone()),
        "incident.kind" => Value::String(ctx.incident_kind.to_string()),
        "metric" => Value::String(
            ctx.metric
                .clone()
                .ok_or("`{{metric}}` is used but the incident has no diagnosed metric")?,
        ),
        "spend_cap_usd_per_day" => ctx
            .spend_cap_usd_per_day
            .and_then(|v| serde_json::Number::from_f64((v * 100.0).ceil() / 100.0))
            .map(Value::Number)
            .ok_or("`{{spend_cap_usd_per_day}}` is used but the subject's spend is unknown")?,
        "affected_agents" => Value::Array(
            ctx.affected_agents
                .iter()
                .cloned()
                .map(Value::String)
                .collect(),
        ),
        other => return Err(format!("unknown template variable `{other}`")),
    })
}

/// A string that is exactly one template takes the variable's value (a list stays a list);
/// otherwise templates are interpolated as text.
fn resolve(value: &Value, ctx: &PlanContext) -> Result<Value, String> {
    match value {
        Value::String(s) => {
            let trimmed = s.trim();
            if let Some(inner) = trimmed
                .strip_prefix("{{")
                .and_then(|r| r.strip_suffix("}}"))
                .filter(|inner| !inner.contains("{{"))
            {
                return variable(inner.trim(), ctx);
            }
            let mut out = String::new();
            let mut rest = s.as_str();
            while let Some(start) = rest.find("{{") {
                out.push_str(&rest[..start]);
                let after = &rest[start + 2..];
                let end = after.find("}}").ok_or("unclosed `{{`")?;
                match variable(after[..end].trim(), ctx)? {
                    Value::String(v) => out.push_str(&v),
                    Value::Array(items) => out.push_str(
                        &items
                            .iter()
                            .filter_map(Value::as_str)
                            .collect::<Vec<_>>()
                            .join(","),
                    ),
                    other => out.push_str(&other.to_string()),
                }
                rest = &after[end + 2..];
            }
            out.push_str(rest);
            Ok(Value::String(out))
        }
        Value::Array(items) => items
            .iter()
            .map(|v| resolve(v, ctx))
            .collect::<Result<_, _>>()
            .map(Value::Array),
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| Ok((k.clone(), resolve(v, ctx)?)))
            .collect::<Result<_, String>>()
            .map(Value::Object),
        other => Ok(other.clone()),
    }
}
