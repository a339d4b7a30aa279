//! The incident lifecycle as plain data: states, the legal moves between them, and what an
//! incident carries (stored as JSON in `incidents.data`).

use std::fmt;
use std::str::FromStr;

use meshos_playbooks::{IncidentKind, Plan, Severity};
use serde::{Deserialize, Serialize};

use crate::HealerError;

/// Where an incident is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentState {
    Open,
    Diagnosed,
    Planned,
    AwaitingApproval,
    Executing,
    Verifying,
    Resolved,
    RolledBack,
    Escalated,
    /// A confirmed symptom that no playbook applies to, or that our own controls explain: on the
    /// ledger and queryable with its agent, never acted on, never escalated.
    Observed,
}

impl IncidentState {
    pub const ALL: [IncidentState; 10] = [
        IncidentState::Open,
        IncidentState::Diagnosed,
        IncidentState::Planned,
        IncidentState::AwaitingApproval,
        IncidentState::Executing,
        IncidentState::Verifying,
        IncidentState::Resolved,
        IncidentState::RolledBack,
        IncidentState::Escalated,
        IncidentState::Observed,
    ];

    /// The names of every state an incident is still open in (not resolved or escalated).
    pub const OPEN_NAMES: [&'static str; 7] = [
        "open",
        "diagnosed",
        "planned",
        "awaiting_approval",
        "executing",
        "verifying",
        "rolled_back",
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            IncidentState::Open => "open",
            IncidentState::Diagnosed => "diagnosed",
            IncidentState::Planned => "planned",
            IncidentState::AwaitingApproval => "awaiting_approval",
            IncidentState::Executing => "executing",
            IncidentState::Verifying => "verifying",
            IncidentState::Resolved => "resolved",
            IncidentState::RolledBack => "rolled_back",
            IncidentState::Escalated => "escalated",
            IncidentState::Observed => "observed",
        }
    }

    /// Resolved, escalated and observed incidents are closed; nothing moves them again.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            IncidentState::Resolved | IncidentState::Escalated | IncidentState::Observed
        )
    }

    /// Whether `self → to` is a move the lifecycle allows. Any open state may escalate (a
    /// denial, an expiry, a failure with nothing left to try).
    pub fn can_move_to(self, to: IncidentState) -> bool {
        use IncidentState::*;
        if to == Escalated {
            return !self.is_terminal();
        }
        matches!(
            (self, to),
            (Open, Diagnosed)
                | (Diagnosed, Planned)
                | (Planned, AwaitingApproval)
                | (Planned, Executing)
                | (AwaitingApproval, Executing)
                | (Executing, Verifying)
                | (Executing, RolledBack)
                | (Verifying, Resolved)
                | (Verifying, RolledBack)
                | (RolledBack, Planned)
        )
    }
}

impl fmt::Display for IncidentState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for IncidentState {
    type Err = HealerError;
    fn from_str(s: &str) -> Result<Self, HealerError> {
        IncidentState::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| HealerError::Corrupt(format!("unknown incident state `{s}`")))
    }
}

/// One thing that looked wrong: a drift alarm, an SLA breach, a violation burst, a failed eval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Symptom {
    /// Where it came from (signal id, alert id, `burst:<agent>:<window>`, eval event id); the
    /// same source never opens or joins an incident twice.
    pub source_id: String,
    pub kind: IncidentKind,
    pub severity: Severity,
    pub agent_id: String,
    /// `latency`, `error_rate`, `violation_rate`, `cost`, `trust_score`, `eval`.
    pub metric: String,
    pub at_ms: i64,
    /// When the underlying change began, if the detector knows (else `at_ms`).
    pub started_at_ms: i64,
    pub detail: String,
}

/// The causal diagnosis of an incident.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Diagnosis {
    /// The blamed entity, `kind:name` (e.g. `tool:crm`).
    pub root_cause: String,
    /// The blamed metric (e.g. `latency`).
    pub metric: String,
    /// The ranking's top candidates: `(metric node, score)`.
    pub ranking: Vec<(String, f64)>,
    pub method: String,
    pub anomaly_start_ms: i64,
    /// Whether the ranking ran (false: too little telemetry; the first symptom's agent is
    /// blamed and the note says so).
    pub ranked: bool,
    pub note: String,
    /// Whether the root cause is clearly the best explanation (it dominates every other
    /// candidate the fleet's telemetry does not contradict). An unconfident diagnosis gets no
    /// automatic action.
    #[serde(default)]
    pub confident: bool,
    /// What moved and what did not, per candidate (see `strata.rs`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub evidence: Vec<crate::strata::CandidateEvidence>,
    /// Agents whose work on the root cause moved.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub explains_agents: Vec<String>,
}

/// An outstanding approval request, bound to one plan digest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApprovalRequest {
    pub digest: String,
    pub role: String,
    pub requested_at_ms: i64,
    pub expires_at_ms: i64,
    /// Filled in when answered.
    pub decided_by: Option<String>,
    pub approved: Option<bool>,
    pub note: Option<String>,
}

/// What the verification has seen so far.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Verification {
    pub started_at_ms: i64,
    pub deadline_ms: i64,
    pub consecutive_passes: u32,
    pub failures: u32,
    pub observations: Vec<serde_json::Value>,
    pub passed: Option<bool>,
    /// For a playbook verified by trust alone: the metric that triggered the incident must also
    /// be back near where it was before the fault.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery: Option<MetricRecovery>,
    /// Whether the controls were put on canary to get telemetry to judge by (they stopped the
    /// work entirely: a paused agent is no evidence).
    #[serde(default)]
    pub canary: bool,
    /// Canaries that showed the fault still there; after each the controls hold in full until
    /// `next_canary_ms`.
    #[serde(default)]
    pub canary_failures: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_canary_ms: Option<i64>,
    /// When the current round of evaluations began (the last canary), if not at the start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub round_since_ms: Option<i64>,
}

/// The level the triggering metric must be back under for a trust-only verification to pass.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricRecovery {
    pub metric: String,
    /// The metric over the affected telemetry in the two minutes before the fault.
    pub baseline: f64,
    pub limit: f64,
}

impl MetricRecovery {
    /// The level a metric must return under, given its pre-fault value: rates get a little
    /// absolute slack (a 0 % baseline would otherwise fail on one error), means a relative one.
    pub fn from_baseline(metric: &str, baseline: f64) -> Option<MetricRecovery> {
        let limit = match metric {
            "error_rate" | "violation_rate" => baseline * 1.5 + 0.02,
            "latency" => baseline * 1.25,
            "cost" => baseline * 1.5,
            _ => return None,
        };
        Some(MetricRecovery {
            metric: metric.to_string(),
            baseline,
            limit,
        })
    }
}

/// Everything an incident carries besides its columns.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct IncidentData {
    pub symptoms: Vec<Symptom>,
    /// Agents the symptoms came from.
    pub affected_agents: Vec<String>,
    pub diagnosis: Option<Diagnosis>,
    pub plan: Option<Plan>,
    /// Playbooks already run (or refused) for this incident, in order.
    pub tried_playbooks: Vec<String>,
    pub approval: Option<ApprovalRequest>,
    pub verification: Option<Verification>,
    /// Results of the current plan's steps.
    pub step_results: Vec<serde_json::Value>,
    pub executing_since_ms: Option<i64>,
    /// Why the current plan was handed to a human instead of running on its own (an ambiguous
    /// diagnosis, healthy agents in its blast radius, an agent's last working option).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub guards: Vec<String>,
    /// Where the release of this (resolved) incident's controls stands.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release: Option<crate::release::ReleaseState>,
    /// Releases of this incident's controls: probation, canary, outcome.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub releases: Vec<serde_json::Value>,
}

impl IncidentData {
    pub fn from_json(v: &serde_json::Value) -> Result<IncidentData, HealerError> {
        serde_json::from_value(v.clone())
            .map_err(|e| HealerError::Corrupt(format!("incidents.data: {e}")))
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }

    /// Adds a symptom unless its source is already here; returns whether it was new.
    pub fn add_symptom(&mut self, s: Symptom) -> bool {
        if self.symptoms.iter().any(|x| x.source_id == s.source_id) {
            return false;
        }
        if !self.affected_agents.contains(&s.agent_id) {
            self.affected_agents.push(s.agent_id.clone());
            self.affected_agents.sort();
        }
        self.symptoms.push(s);
        true
    }

    /// The worst severity among the symptoms.
    pub fn severity(&self) -> Severity {
        self.symptoms
            .iter()
            .map(|s| s.severity)
            .max()
            .unwrap_or(Severity::Low)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lifecycle_allows_only_its_moves() {
        use IncidentState::*;
        let happy = [Open, Diagnosed, Planned, Executing, Verifying, Resolved];
        for w in happy.windows(2) {
            assert!(w[0].can_move_to(w[1]), "{} → {}", w[0], w[1]);
        }
        assert!(Planned.can_move_to(AwaitingApproval));
        assert!(AwaitingApproval.can_move_to(Executing));
        assert!(Verifying.can_move_to(RolledBack));
        assert!(RolledBack.can_move_to(Planned));
        assert!(AwaitingApproval.can_move_to(Escalated));
        // No skipping verification, no reopening, no approval bypass backwards.
        assert!(!Executing.can_move_to(Resolved));
        assert!(!Resolved.can_move_to(Open));
        assert!(!Resolved.can_move_to(Escalated));
        assert!(!Escalated.can_move_to(Planned));
        assert!(!Open.can_move_to(Executing));
        for s in IncidentState::ALL {
            assert_eq!(s.as_str().parse::<IncidentState>().ok(), Some(s));
            assert_eq!(
                IncidentState::OPEN_NAMES.contains(&s.as_str()),
                !s.is_terminal(),
                "{s}"
            );
        }
    }
}
