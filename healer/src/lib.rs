//! Mesh OS healing runtime.
//!
//! Owns the incident lifecycle: detect (drift signals, SLA breaches, violation bursts, failed
//! evals), with fleet-level alarm control (`alarm`: a shift must be upward, material and
//! significant on fresh telemetry at a level scaled to the fleet) → correlate (one incident per
//! root cause) → diagnose (`strata`: every entity the agent depends on judged on all its users'
//! telemetry; contradicted candidates ruled out; an ambiguous diagnosis never acts alone) → plan
//! (a playbook from `meshos-playbooks`; rate limit, blast radius and harm guards) → approval
//! when a step or a guard needs one (bound to the plan digest, with expiry) → execute
//! (idempotent: controls in the store, deliveries through [`HealerPorts`]) → verify (the metric
//! that opened the incident back at its pre-fault baseline, on fresh data only) → resolve, or roll
//! back and try the next playbook, or escalate; then release the controls on evidence
//! (`release`). Symptoms that call for no action are recorded as `observed`. Every transition
//! and release is a ledger leaf (`Store::move_incident`).
//!
//! Time is always passed in (`now_ms`), so the whole loop runs under test with a chosen clock.
//! Transports (MCP tools, REST, CLI) and the real trust scores and webhooks are the server's: it
//! implements [`HealerPorts`].

mod actions;
mod alarm;
mod approval;
mod detect;
mod diagnose;
mod execute;
mod incident;
mod intake;
mod lifecycle;
mod plan;
mod release;
mod runtime;
mod strata;
mod verify;

pub use alarm::{AlarmPolicy, EffectFloors};
pub use approval::{Decision, decide};
pub use incident::{
    ApprovalRequest, Diagnosis, IncidentData, IncidentState, MetricRecovery, Symptom, Verification,
};
pub use release::ReleaseState;
pub use runtime::{
    Healer, HealerConfig, HealerPorts, IncidentView, ReleasePolicy, TickReport,
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
