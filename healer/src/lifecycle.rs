//! The incident lifecycle: how an incident changes state. Owns [`Move`] (a state change with
//! its actor, reason and inputs), the one function that applies a move — checked against
//! `IncidentState::can_move_to`, stored with its ledger leaf in one transaction
//! (`Store::move_incident`) — and `advance`, which dispatches an open incident to the job that
//! owns its state (planning, approval, execution, verification) until it can go no further now.

use meshos_playbooks::Plan;
use meshos_store::{Store, StoredIncident};
use meshos_types::{IncidentTransitionRecord, Role, new_id};
use serde_json::Value;

use crate::{Healer, HealerError, HealerPorts, IncidentData, IncidentState, TickReport};

/// Who the healer is on the ledger.
pub(crate) const ACTOR: &str = "healer";

/// A state change of an incident: where to, who made it, why, and on what inputs (diagnosis,
/// plan, step results, verification) — everything its ledger record says.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Move {
    pub to: IncidentState,
    pub actor: String,
    pub role: Option<Role>,
    pub reason: String,
    pub inputs: Value,
}

impl Move {
    /// A move the healer makes on its own.
    pub fn healer(to: IncidentState, reason: impl Into<String>, inputs: Value) -> Move {
        Move {
            to,
            actor: ACTOR.to_string(),
            role: None,
            reason: reason.into(),
            inputs,
        }
    }

    /// A move a person makes (an approval, a denial, a release).
    pub fn by(
        actor: &str,
        role: Role,
        to: IncidentState,
        reason: impl Into<String>,
        inputs: Value,
    ) -> Move {
        Move {
            to,
            actor: actor.to_string(),
            role: Some(role),
            reason: reason.into(),
            inputs,
        }
    }

    /// The ledger record of this move of `inc` from `from` (`None` when it opens).
    pub fn record(
        self,
        inc: &StoredIncident,
        from: Option<IncidentState>,
        now_ms: i64,
    ) -> IncidentTransitionRecord {
        IncidentTransitionRecord {
            id: new_id("itr"),
            tenant: inc.tenant.clone(),
            incident_id: inc.id.clone(),
            from_state: from.map(|s| s.to_string()),
            to_state: self.to.to_string(),
            actor: self.actor,
            actor_role: self.role,
            reason: self.reason,
            inputs: self.inputs,
            created_at_ms: now_ms,
        }
    }
}

/// The ledger record of an incident opening in `mv.to` (`open` or `observed`).
pub(crate) fn opening(inc: &StoredIncident, mv: Move, now_ms: i64) -> IncidentTransitionRecord {
    mv.record(inc, None, now_ms)
}

/// The ledger record of something that happened to an incident without moving it (a release
/// of its controls): from its state to the same state.
pub(crate) fn in_place(
    inc: &StoredIncident,
    actor: &str,
    role: Option<Role>,
    reason: &str,
    inputs: Value,
    now_ms: i64,
) -> IncidentTransitionRecord {
    let state = inc.state.parse().unwrap_or(IncidentState::Resolved);
    Move {
        to: state,
        actor: actor.to_string(),
        role,
        reason: reason.to_string(),
        inputs,
    }
    .record(inc, Some(state), now_ms)
}

/// Moves an incident (checked against the lifecycle), stores it, and records the transition,
/// both in one transaction.
pub(crate) async fn apply(
    store: &Store,
    inc: StoredIncident,
    mv: Move,
    now_ms: i64,
    report: &mut TickReport,
) -> Result<StoredIncident, HealerError> {
    let from: IncidentState = inc.state.parse()?;
    let to = mv.to;
    if !from.can_move_to(to) {
        return Err(HealerError::Refused(format!(
            "incident {} cannot move from {from} to {to}",
            inc.id
        )));
    }
    let next = StoredIncident {
        state: to.to_string(),
        updated_at_ms: now_ms,
        resolved_at_ms: (to == IncidentState::Resolved).then_some(now_ms),
        ..inc.clone()
    };
    let record = mv.record(&inc, Some(from), now_ms);
    let (stored, _) = store.move_incident(&next, inc.version, &record).await?;
    report.transitions += 1;
    Ok(stored)
}

/// What a state's handler leaves for `advance`.
pub(crate) enum Next {
    /// The incident moved; its new state may have more to do now.
    Again(Box<StoredIncident>),
    /// Nothing more to do this tick.
    Stop,
}

impl<P: HealerPorts> Healer<P> {
    /// Applies a move; the incident goes on to its next state.
    pub(crate) async fn go(
        &self,
        inc: StoredIncident,
        mv: Move,
        now_ms: i64,
        report: &mut TickReport,
    ) -> Result<Next, HealerError> {
        apply(&self.store, inc, mv, now_ms, report)
            .await
            .map(|inc| Next::Again(Box::new(inc)))
    }

    /// Applies the last move of a pass.
    pub(crate) async fn end(
        &self,
        inc: StoredIncident,
        mv: Move,
        now_ms: i64,
        report: &mut TickReport,
    ) -> Result<Next, HealerError> {
        apply(&self.store, inc, mv, now_ms, report).await?;
        Ok(Next::Stop)
    }

    /// Stores new incident data without moving the incident.
    pub(crate) async fn save_data(
        &self,
        inc: StoredIncident,
        data: &IncidentData,
        now_ms: i64,
    ) -> Result<StoredIncident, HealerError> {
        let version = inc.version;
        Ok(self
            .store
            .update_incident(&with_data(inc, data, now_ms), version)
            .await?)
    }

    /// Moves one incident as far as it can go now: each state's handler either moves it on or
    /// stops.
    pub(crate) async fn advance(
        &self,
        mut inc: StoredIncident,
        now_ms: i64,
        report: &mut TickReport,
    ) -> Result<(), HealerError> {
        // Bounded: a plan, its approval, execution and verification are at most a few moves.
        for _ in 0..8 {
            let state: IncidentState = inc.state.parse()?;
            let data = IncidentData::from_json(&inc.data)?;
            let next = match state {
                IncidentState::Open => self.on_open(inc, now_ms, report).await?,
                IncidentState::Diagnosed | IncidentState::RolledBack => {
                    self.on_diagnosed(inc, state, data, now_ms, report).await?
                }
                IncidentState::Planned => self.on_planned(inc, data, now_ms, report).await?,
                IncidentState::AwaitingApproval => {
                    self.on_awaiting_approval(inc, data, now_ms, report).await?
                }
                IncidentState::Executing => self.on_executing(inc, data, now_ms, report).await?,
                IncidentState::Verifying => self.on_verifying(inc, data, now_ms, report).await?,
                IncidentState::Resolved | IncidentState::Escalated | IncidentState::Observed => {
                    Next::Stop
                }
            };
            match next {
                Next::Again(moved) => inc = *moved,
                Next::Stop => return Ok(()),
            }
        }
        Ok(())
    }

    /// Opened without a diagnosis (should not happen): escalate rather than guess.
    async fn on_open(
        &self,
        inc: StoredIncident,
        now_ms: i64,
        report: &mut TickReport,
    ) -> Result<Next, HealerError> {
        let mv = Move::healer(IncidentState::Escalated, "no diagnosis", Value::Null);
        self.end(inc, mv, now_ms, report).await
    }
}

/// The plan an incident in a planning-or-later state must carry.
pub(crate) fn current_plan(
    inc: &StoredIncident,
    data: &IncidentData,
    state: &str,
) -> Result<Plan, HealerError> {
    data.plan
        .clone()
        .ok_or_else(|| HealerError::Corrupt(format!("incident {} {state} without a plan", inc.id)))
}

/// The incident with new data, not yet written: the move that follows writes both together.
pub(crate) fn with_data(inc: StoredIncident, data: &IncidentData, now_ms: i64) -> StoredIncident {
    StoredIncident {
        data: data.to_json(),
        updated_at_ms: now_ms,
        ..inc
    }
}
