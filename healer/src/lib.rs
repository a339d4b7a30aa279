//! Mesh OS healing runtime.
//!
//! Owns the incident lifecycle: detect (drift signals, SLA breaches, violation bursts, failed
//! evals) → correlate (one incident per root cause) → diagnose (causal ranking over the fleet
//! topology seen in telemetry) → plan (a playbook from `meshos-playbooks`, rate limit and blast
//! radius checked) → approval when a step needs one (bound to the plan digest, with expiry) →
//! execute (idempotent: controls in the store, deliveries through [`HealerPorts`]) → verify (trust
//! score and the triggering metric over a window) → resolve, or roll back and try the next
//! playbook, or escalate. Every transition is a ledger leaf (`Store::append_incident_transition`).
//!
//! Time is always passed in (`now_ms`), so the whole loop runs under test with a chosen clock.
//! Transports (MCP tools, REST, CLI) and the real trust scores and webhooks are the server's: it
//! implements [`HealerPorts`].

mod actions;
mod alarm;
mod detect;
mod diagnose;
mod incident;
mod release;
mod runtime;
mod strata;

pub use alarm::{AlarmPolicy, EffectFloors};
pub use incident::{
    ApprovalRequest, Diagnosis, IncidentData, IncidentState, MetricRecovery, Symptom, Verification,
};
pub use release::ReleaseState;
pub use runtime::{
    Decision, Healer, HealerConfig, HealerPorts, IncidentView, ReleasePolicy, TickReport,
    view as incident_view,
};
pub use strata::{CandidateEvidence, Stratum};

/// Errors of the healer.
#[derive(Debug, thiserror::Error)]
pub enum HealerError {
    #[error(transparent)]
    Store(#[from] meshos_store::StoreError),
    #[error(transparent)]
    Playbook(#[from] meshos_playbooks::PlaybookError),
    /// A stored incident could not be read back.
    #[error("corrupt incident data: {0}")]
    Corrupt(String),
    #[error("incident {0} not found")]
    NotFound(String),
    /// An approval or denial that does not fit the incident's state.
    #[error("{0}")]
    Refused(String),
}
