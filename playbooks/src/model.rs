//! The playbook file format (YAML, one playbook per file) and the vocabulary it shares with the
//! healer: incident kinds, severities, root-cause kinds, actions.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// What opened an incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentKind {
    /// A drift detector's alarm on an agent metric.
    Drift,
    /// An agent's trust score fell below its SLA threshold.
    SlaBreach,
    /// A burst of policy violations (e.g. PII leaks, injection attempts).
    ViolationBurst,
    /// An eval suite failed.
    EvalFailure,
}

/// How bad an incident is; ordered `low < medium < high < critical`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

/// The kind of entity a diagnosis blames (the causal graph's `kind:name` entities).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RootCauseKind {
    Agent,
    Tool,
    Model,
    Provider,
    Region,
}

macro_rules! snake_names {
    ($t:ty { $($v:ident => $s:literal),* $(,)? }) => {
        impl $t {
            pub const ALL: &'static [$t] = &[$(<$t>::$v),*];
            pub fn as_str(self) -> &'static str {
                match self { $(<$t>::$v => $s),* }
            }
        }
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl FromStr for $t {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                <$t>::ALL
                    .iter()
                    .copied()
                    .find(|v| v.as_str() == s)
                    .ok_or_else(|| format!(
                        "unknown value `{s}`; expected one of {}",
                        <$t>::ALL.iter().map(|v| v.as_str()).collect::<Vec<_>>().join(", ")
                    ))
            }
        }
    };
}

snake_names!(IncidentKind { Drift => "drift", SlaBreach => "sla_breach", ViolationBurst => "violation_burst", EvalFailure => "eval_failure" });
snake_names!(Severity { Low => "low", Medium => "medium", High => "high", Critical => "critical" });
snake_names!(RootCauseKind { Agent => "agent", Tool => "tool", Model => "model", Provider => "provider", Region => "region" });
snake_names!(ActionKind {
    QuarantineAgent => "quarantine_agent",
    RevokeTool => "revoke_tool",
    PolicyOverlay => "policy_overlay",
    PinModel => "pin_model",
    AvoidRegion => "avoid_region",
    CapBudget => "cap_budget",
    Webhook => "webhook",
    RunEval => "run_eval",
    Notify => "notify",
});

/// What a step does. Every action is idempotent; the ones that set a control are undone by
/// clearing it (see `docs/playbooks.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    /// Kill switch: every policy_check of the agent is denied.
    QuarantineAgent,
    /// Calls with the tool (by the agent, or by every agent with `agent: "*"`) are denied.
    RevokeTool,
    /// A deny or redact overlay on an action pattern.
    PolicyOverlay,
    /// A model version is treated as not approved; obligations name the replacement.
    PinModel,
    /// The carbon router excludes a region (optionally only for one provider).
    AvoidRegion,
    /// A lower budget or rate limit than budgets.toml for an agent, team or tenant.
    CapBudget,
    /// An HMAC-signed webhook (e.g. to rotate a credential).
    Webhook,
    /// Request an eval suite run for an agent.
    RunEval,
    /// Add a message to the incident timeline and the alert webhooks.
    Notify,
}

impl ActionKind {
    /// The control the action sets on the mesh; `None` for deliveries (webhook, eval, notify).
    pub fn control_kind(self) -> Option<meshos_types::ControlKind> {
        use meshos_types::ControlKind;
        Some(match self {
            ActionKind::QuarantineAgent => ControlKind::Quarantine,
            ActionKind::RevokeTool => ControlKind::ToolRevoked,
            ActionKind::PolicyOverlay => ControlKind::PolicyOverlay,
            ActionKind::PinModel => ControlKind::ModelPin,
            ActionKind::AvoidRegion => ControlKind::RegionAvoid,
            ActionKind::CapBudget => ControlKind::BudgetCap,
            ActionKind::Webhook | ActionKind::RunEval | ActionKind::Notify => return None,
        })
    }

    /// Actions that only tell someone (a notification): they change nothing on the mesh, so
    /// no guard needs to hold them for approval.
    pub fn is_delivery_only(self) -> bool {
        matches!(self, ActionKind::Notify)
    }
}

/// Parameters each action requires and allows (names only; values are checked in validation).
pub(crate) fn action_params(
    action: ActionKind,
) -> (&'static [&'static str], &'static [&'static str]) {
    match action {
        ActionKind::QuarantineAgent => (&["agent"], &[]),
        ActionKind::RevokeTool => (&["tool"], &["agent"]),
        ActionKind::PolicyOverlay => (&["effect", "action"], &["agent", "entities"]),
        ActionKind::PinModel => (&["model"], &["to"]),
        ActionKind::AvoidRegion => (&["region"], &["provider"]),
        ActionKind::CapBudget => (
            &["scope", "subject"],
            &[
                "max_cost_usd_per_day",
                "max_tokens_per_day",
                "max_requests_per_minute",
            ],
        ),
        ActionKind::Webhook => (
            &["event"],
            &["url", "url_env", "secret_env", "payload", "rollback_event"],
        ),
        ActionKind::RunEval => (&["suite"], &["agent"]),
        ActionKind::Notify => (&["message"], &[]),
    }
}

/// One playbook file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Playbook {
    /// `[a-z0-9-]+`, unique in a library.
    pub id: String,
    /// Bumped on every change; part of the plan digest an approval is bound to.
    pub version: u32,
    pub description: String,
    pub triggers: Triggers,
    /// Extra guards; all must hold.
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// How many times one incident may run this playbook.
    #[serde(default = "one")]
    pub max_attempts: u32,
    #[serde(default)]
    pub rate_limit: Option<RateLimit>,
    #[serde(default)]
    pub blast_radius: Option<BlastRadius>,
    /// The whole execution's time limit.
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u64,
    /// Plan and record, never apply.
    #[serde(default)]
    pub dry_run: bool,
    pub steps: Vec<Step>,
    /// Run in reverse order when verification fails (after every control the steps set is
    /// cleared).
    #[serde(default)]
    pub rollback: Vec<Step>,
    pub verify: Verify,
}

fn one() -> u32 {
    1
}

fn default_timeout() -> u64 {
    120
}

/// When a playbook applies. Every list given must contain the incident's value; an empty or
/// absent list matches anything.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Triggers {
    #[serde(default)]
    pub incident_kinds: Vec<IncidentKind>,
    #[serde(default)]
    pub root_cause_kinds: Vec<RootCauseKind>,
    /// The diagnosed metric (the node name's suffix after the last `.`), e.g. `latency`.
    #[serde(default)]
    pub metrics: Vec<String>,
    #[serde(default = "lowest")]
    pub min_severity: Severity,
}

fn lowest() -> Severity {
    Severity::Low
}

/// One extra guard; give exactly one field per list entry.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    /// The lowest trust score among the affected agents is below this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trust_score_below: Option<f64>,
    /// At least this many agents are affected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affected_agents_at_least: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Executions of this playbook per tenant within the window.
    pub max: u32,
    pub per_seconds: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlastRadius {
    /// Largest share of the tenant's known agents the playbook may affect at once, in (0, 1].
    pub max_fleet_share: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    pub id: String,
    pub action: ActionKind,
    /// Action parameters; string values may hold `{{variable}}` templates.
    #[serde(default)]
    pub params: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    pub approval: Approval,
    #[serde(default)]
    pub timeout_seconds: Option<u64>,
}

/// Whether a step waits for an operator. YAML: `approval: auto`, or
/// `approval: { required: { role: operator, expires_after_seconds: 900 } }`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(try_from = "ApprovalRepr", into = "ApprovalRepr")]
pub enum Approval {
    #[default]
    Auto,
    Required(RequiredApproval),
}

/// The YAML shapes of [`Approval`] (serde_yaml spells externally tagged enums as `!tags`, which
/// nobody writes by hand).
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum ApprovalRepr {
    Word(String),
    Map(RequiredMap),
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RequiredMap {
    required: RequiredApproval,
}

impl TryFrom<ApprovalRepr> for Approval {
    type Error = String;
    fn try_from(r: ApprovalRepr) -> Result<Approval, String> {
        match r {
            ApprovalRepr::Word(w) if w == "auto" => Ok(Approval::Auto),
            ApprovalRepr::Word(w) => Err(format!(
                "`{w}` is not an approval; expected `auto` or `{{ required: {{ role, expires_after_seconds }} }}`"
            )),
            ApprovalRepr::Map(m) => Ok(Approval::Required(m.required)),
        }
    }
}

impl From<Approval> for ApprovalRepr {
    fn from(a: Approval) -> ApprovalRepr {
        match a {
            Approval::Auto => ApprovalRepr::Word("auto".into()),
            Approval::Required(required) => ApprovalRepr::Map(RequiredMap { required }),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequiredApproval {
    /// `operator` or `admin` (an admin may approve what an operator may).
    pub role: String,
    /// Unanswered after this long, the approval expires and the incident escalates.
    pub expires_after_seconds: u64,
}

/// What must hold before an incident is resolved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Verify {
    /// How long to observe after the last step.
    pub window_seconds: u64,
    /// The lowest score among the affected agents must reach this.
    #[serde(default)]
    pub trust_score_at_least: Option<f64>,
    #[serde(default)]
    pub metric: Option<MetricCheck>,
}

/// The metric that opened the incident back at its pre-fault baseline (the healer measures the
/// baseline on the faulty entity's own telemetry) for `samples` consecutive evaluations;
/// `below` / `above` add an absolute bound on top, for custom playbooks that need one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricCheck {
    /// `latency`, `error_rate`, `violation_rate` or `cost`.
    pub name: String,
    #[serde(default)]
    pub below: Option<f64>,
    #[serde(default)]
    pub above: Option<f64>,
    #[serde(default = "three")]
    pub samples: u32,
    /// Failing evaluations that end verification early (as failed).
    #[serde(default = "two")]
    pub failure_limit: u32,
}

fn three() -> u32 {
    3
}

fn two() -> u32 {
    2
}

impl Playbook {
    /// Steps that wait for an operator.
    pub fn approvals(&self) -> impl Iterator<Item = &RequiredApproval> + '_ {
        self.steps.iter().filter_map(|s| match &s.approval {
            Approval::Required(r) => Some(r),
            Approval::Auto => None,
        })
    }

    /// Whether another execution fits the rate limit, given how many ran in its window.
    pub fn rate_limit_allows(&self, executions_in_window: u32) -> bool {
        self.rate_limit.is_none_or(|r| executions_in_window < r.max)
    }

    /// Whether affecting `affected_agents` of `fleet_agents` stays within the blast radius.
    /// An unknown fleet size (0) allows one agent at most.
    pub fn blast_radius_allows(&self, affected_agents: usize, fleet_agents: usize) -> bool {
        match self.blast_radius {
            None => true,
            Some(b) if fleet_agents == 0 => affected_agents <= 1 && b.max_fleet_share > 0.0,
            Some(b) => affected_agents as f64 <= b.max_fleet_share * fleet_agents as f64 + 1e-9,
        }
    }
}
