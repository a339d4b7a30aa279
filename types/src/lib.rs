//! Shared vocabulary of Mesh OS: identifiers, principals, telemetry events, policy decisions,
//! trust signals (drift signals, SLA alerts) and the healer's controls.
//!
//! Owns the plain data types several crates exchange, the canonical byte encoding of every
//! ledger record (the bytes that become an evidence leaf), and [`Control`]: the one typed form
//! of a healer control, its stored form and which requests it holds. It must stay small and free of I/O:
//! no storage, no transports, no policy or trust logic.

use std::fmt;
use std::str::FromStr;

mod control;
mod eval_run;
mod signal;
mod tool_pin;

pub use control::{
    BudgetLimits, CANARY_SHARE_KEY, CapScope, Control, ControlError, ControlKind, ControlRequest,
    OverlayEffect, action_matches, heal_control_names,
};
pub use eval_run::EvalRunRecord;
pub use signal::{DriftSignal, SLA_BREACH, SLA_RECOVERY, SlaAlert};
pub use tool_pin::ToolPinRecord;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Why an identifier or enum value was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}; expected {expected}")]
pub struct InvalidValue {
    pub field: &'static str,
    pub problem: String,
    pub expected: &'static str,
}

const ID_EXPECTED: &str = "1-128 characters from A-Z a-z 0-9 . _ - : @ /";

/// Checks an identifier (tenant, agent, region, model…) used as a key and inside checkpoint
/// origins, where whitespace and control characters would break the line-based formats.
pub fn validate_id(field: &'static str, value: &str) -> Result<(), InvalidValue> {
    let ok_len = !value.is_empty() && value.len() <= 128;
    let bad_char = value
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':' | '@' | '/')));
    match (ok_len, bad_char) {
        (false, _) => Err(InvalidValue {
            field,
            problem: format!("length {} is out of range", value.len()),
            expected: ID_EXPECTED,
        }),
        (true, Some(c)) => Err(InvalidValue {
            field,
            problem: format!("character {c:?} is not allowed"),
            expected: ID_EXPECTED,
        }),
        (true, None) => Ok(()),
    }
}

/// What a bearer token is allowed to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// An agent acting for itself: checks policy, records events, reads its own trust.
    Agent,
    /// Runs the fleet: everything an agent may do, for any agent of the tenant.
    Operator,
    /// Reads decisions, trust and evidence; writes nothing.
    Auditor,
    /// Operator rights plus administration of the tenant.
    Admin,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Agent, Role::Operator, Role::Auditor, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Agent => "agent",
            Role::Operator => "operator",
            Role::Auditor => "auditor",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = InvalidValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| InvalidValue {
                field: "role",
                problem: format!("unknown role {s:?}"),
                expected: "one of agent, operator, auditor, admin",
            })
    }
}

/// The authenticated caller behind a bearer token. Every read and write is scoped to `tenant`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    pub token_id: String,
    pub tenant: String,
    pub role: Role,
    /// Set for agent tokens: the only agent id this caller may act as.
    pub agent_id: Option<String>,
}

/// Why a principal may not act on an agent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccessDenied {
    #[error("an agent token for {own:?} cannot act for agent {requested:?}")]
    OtherAgent { own: String, requested: String },
    #[error("role {role} is read-only and cannot {what}")]
    ReadOnly { role: Role, what: &'static str },
}

impl Principal {
    /// May this principal read data about `agent_id`? Agents see only themselves.
    pub fn may_read_agent(&self, agent_id: &str) -> Result<(), AccessDenied> {
        match (&self.role, &self.agent_id) {
            (Role::Agent, Some(own)) if own != agent_id => Err(AccessDenied::OtherAgent {
                own: own.clone(),
                requested: agent_id.to_string(),
            }),
            _ => Ok(()),
        }
    }

    /// May this principal write (events, policy checks) on behalf of `agent_id`?
    pub fn may_act_for(&self, agent_id: &str, what: &'static str) -> Result<(), AccessDenied> {
        if self.role == Role::Auditor {
            return Err(AccessDenied::ReadOnly {
                role: self.role,
                what,
            });
        }
        self.may_read_agent(agent_id)
    }
}

/// How an agent action turned out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Ok,
    Error,
    /// The action broke a rule (policy, output validation, guardrail).
    Violation,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Error => "error",
            Outcome::Violation => "violation",
        }
    }
}

impl FromStr for Outcome {
    type Err = InvalidValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "ok" => Ok(Outcome::Ok),
            "error" => Ok(Outcome::Error),
            "violation" => Ok(Outcome::Violation),
            _ => Err(InvalidValue {
                field: "outcome",
                problem: format!("unknown outcome {s:?}"),
                expected: "one of ok, error, violation",
            }),
        }
    }
}

/// One thing an agent did, as stored. Timestamps are unix milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct EventRecord {
    pub id: String,
    pub tenant: String,
    pub agent_id: String,
    pub kind: String,
    pub outcome: Outcome,
    pub latency_ms: Option<f64>,
    pub input_tokens: Option<i64>,
    pub output_tokens: Option<i64>,
    pub cost_usd: Option<f64>,
    pub model: Option<String>,
    pub tool: Option<String>,
    pub region: Option<String>,
    /// Free-form attributes, kept as given (a JSON object).
    pub attributes: serde_json::Value,
    pub created_at_ms: i64,
}

/// The answer to "may I do this?".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Allow,
    Deny,
    Redact,
    RequireApproval,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Allow => "allow",
            Verdict::Deny => "deny",
            Verdict::Redact => "redact",
            Verdict::RequireApproval => "require_approval",
        }
    }

    /// A decision that let the action proceed (possibly with obligations).
    pub fn is_compliant(self) -> bool {
        !matches!(self, Verdict::Deny)
    }
}

impl FromStr for Verdict {
    type Err = InvalidValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [
            Verdict::Allow,
            Verdict::Deny,
            Verdict::Redact,
            Verdict::RequireApproval,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
        .ok_or_else(|| InvalidValue {
            field: "decision",
            problem: format!("unknown decision {s:?}"),
            expected: "one of allow, deny, redact, require_approval",
        })
    }
}

/// A policy that contributed to a decision, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Reason {
    /// The `@id` of the Cedar policy (or `engine` for evaluation errors).
    pub policy_id: String,
    /// The policy's `@reason` annotation, or the evaluation error.
    pub message: String,
}

/// Sensitive content found in the submitted text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Finding {
    /// Entity kind, e.g. `EMAIL`, `CREDIT_CARD`, `AWS_ACCESS_KEY`.
    pub entity: String,
    /// UTF-8 byte offset of the first byte of the match in the submitted content.
    pub start: usize,
    /// UTF-8 byte offset one past the last byte of the match.
    pub end: usize,
    /// Which detector found it.
    pub detector: String,
}

/// Entity kinds that are credentials (the `secret` class of the detector rules). Trust scoring
/// weighs them above personal data; a policy unit test keeps this list equal to the rule file.
pub const CREDENTIAL_ENTITIES: &[&str] = &[
    "ANTHROPIC_KEY",
    "AWS_ACCESS_KEY",
    "AWS_SECRET_KEY",
    "GITHUB_TOKEN",
    "GITLAB_TOKEN",
    "GOOGLE_API_KEY",
    "JWT",
    "NPM_TOKEN",
    "OPENAI_KEY",
    "PASSWORD",
    "PRIVATE_KEY",
    "SENDGRID_KEY",
    "SLACK_TOKEN",
    "STRIPE_KEY",
];

/// Something the caller must do when acting on the decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Obligation {
    /// `redact`, `require_approval`, `log`…
    pub kind: String,
    /// The policy that imposed it.
    pub policy_id: String,
    /// Extra detail from the policy annotation (e.g. the approver role).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// A stored policy decision. The submitted content itself is never stored: only its keyed hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct DecisionRecord {
    pub id: String,
    pub tenant: String,
    pub agent_id: String,
    pub action: String,
    pub model: Option<String>,
    pub tool: Option<String>,
    pub region: Option<String>,
    /// HMAC-SHA256 of the content under the deployment's ledger key (hex), if content was sent.
    pub content_hmac: Option<String>,
    pub decision: Verdict,
    pub reasons: Vec<Reason>,
    pub findings: Vec<Finding>,
    pub obligations: Vec<Obligation>,
    pub bundle_version: String,
    pub created_at_ms: i64,
}

/// An operator's answer to a `require_approval` decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ApprovalRecord {
    pub id: String,
    pub tenant: String,
    /// The `require_approval` decision this answers.
    pub decision_id: String,
    pub approved: bool,
    /// Token id of the operator or admin who decided.
    pub decided_by: String,
    pub decided_by_role: Role,
    pub note: Option<String>,
    pub created_at_ms: i64,
}

/// An operator revealing the value behind a pseudonym. The ledger keeps who asked, why and
/// which pseudonym — never the revealed value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ReidentificationRecord {
    pub id: String,
    pub tenant: String,
    /// The pseudonym revealed, e.g. `psn_3f9a…`.
    pub pseudonym: String,
    /// Its entity kind, e.g. `EMAIL`.
    pub entity: String,
    /// Token id of the operator or admin (or `cli:<user>` for the command line).
    pub requested_by: String,
    pub requested_by_role: Role,
    /// The justification the operator gave.
    pub reason: String,
    pub created_at_ms: i64,
}

/// One state change of a healing incident: who moved it, why, and on what inputs (diagnosis,
/// plan digest, action results, verification). Every transition is a ledger leaf, so an incident's
/// whole timeline is provable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct IncidentTransitionRecord {
    pub id: String,
    pub tenant: String,
    pub incident_id: String,
    /// `None` when the incident opens.
    pub from_state: Option<String>,
    pub to_state: String,
    /// `healer`, a token id, or `cli:<user>`.
    pub actor: String,
    pub actor_role: Option<Role>,
    pub reason: String,
    pub inputs: serde_json::Value,
    pub created_at_ms: i64,
}

/// A record appended to the evidence ledger.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum LedgerRecord {
    Decision(DecisionRecord),
    Event(EventRecord),
    Approval(ApprovalRecord),
    Reidentification(ReidentificationRecord),
    IncidentTransition(IncidentTransitionRecord),
    EvalRun(EvalRunRecord),
    ToolPin(ToolPinRecord),
}

impl LedgerRecord {
    pub fn id(&self) -> &str {
        match self {
            LedgerRecord::Decision(d) => &d.id,
            LedgerRecord::Event(e) => &e.id,
            LedgerRecord::Approval(a) => &a.id,
            LedgerRecord::Reidentification(r) => &r.id,
            LedgerRecord::IncidentTransition(t) => &t.id,
            LedgerRecord::EvalRun(r) => &r.id,
            LedgerRecord::ToolPin(p) => &p.id,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            LedgerRecord::Decision(_) => "decision",
            LedgerRecord::Event(_) => "event",
            LedgerRecord::Approval(_) => "approval",
            LedgerRecord::Reidentification(_) => "reidentification",
            LedgerRecord::IncidentTransition(_) => "incident_transition",
            LedgerRecord::EvalRun(_) => "eval_run",
            LedgerRecord::ToolPin(_) => "tool_pin",
        }
    }

    /// The bytes hashed into the ledger leaf. Struct field order is fixed by the type, so the
    /// encoding is stable as long as the stored values are; a versioned prefix lets a later
    /// format coexist with leaves already written.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let mut out = b"meshos.ledger.v1\n".to_vec();
        // Serialising plain structs of strings, numbers and JSON values cannot fail.
        if let Ok(json) = serde_json::to_vec(self) {
            out.extend_from_slice(&json);
        }
        out
    }
}

/// Milliseconds since the unix epoch, now.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// RFC 3339 rendering of a unix-millisecond timestamp.
pub fn rfc3339_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_else(|| ms.to_string())
}

/// A new time-ordered identifier with a readable prefix (`dec_…`, `evt_…`).
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::now_v7().simple())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_reject_whitespace_and_empty() {
        assert!(validate_id("agent_id", "agent-7").is_ok());
        let err = validate_id("agent_id", "bad agent").unwrap_err();
        assert!(err.to_string().contains("agent_id"), "{err}");
        assert!(validate_id("tenant", "").is_err());
        assert!(validate_id("tenant", &"x".repeat(129)).is_err());
    }

    #[test]
    fn agent_tokens_only_act_for_themselves() {
        let p = Principal {
            token_id: "t".into(),
            tenant: "acme".into(),
            role: Role::Agent,
            agent_id: Some("a1".into()),
        };
        assert!(p.may_act_for("a1", "record events").is_ok());
        assert!(p.may_act_for("a2", "record events").is_err());
        let auditor = Principal {
            role: Role::Auditor,
            agent_id: None,
            ..p
        };
        assert!(auditor.may_read_agent("a2").is_ok());
        assert!(auditor.may_act_for("a2", "record events").is_err());
    }

    #[test]
    fn canonical_bytes_change_with_any_field() {
        let e = EventRecord {
            id: "evt_1".into(),
            tenant: "acme".into(),
            agent_id: "a".into(),
            kind: "tool_call".into(),
            outcome: Outcome::Ok,
            latency_ms: Some(12.5),
            input_tokens: None,
            output_tokens: None,
            cost_usd: None,
            model: None,
            tool: None,
            region: None,
            attributes: serde_json::json!({}),
            created_at_ms: 1,
        };
        let a = LedgerRecord::Event(e.clone()).canonical_bytes();
        let mut e2 = e;
        e2.latency_ms = Some(12.6);
        assert_ne!(a, LedgerRecord::Event(e2).canonical_bytes());
    }
}
