//! Approval: plans that wait for an operator. Owns the request (bound to the plan digest, with
//! the role the plan asks for and an expiry), its expiry, and [`decide`]: an operator's
//! approval or denial, checked against the digest, the role and the clock.

use meshos_store::{Store, StoredIncident};
use meshos_types::Role;
use serde_json::json;

use crate::lifecycle::{self, Move, Next, current_plan, with_data};
use crate::{
    ApprovalRequest, Healer, HealerError, HealerPorts, IncidentData, IncidentState, IncidentView,
    TickReport,
};

/// An operator's answer to an approval request.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub approve: bool,
    /// The plan digest the operator saw; must match the current plan.
    pub digest: String,
    pub actor: String,
    pub role: Role,
    pub note: Option<String>,
}

impl<P: HealerPorts> Healer<P> {
    /// Planned: ask for the approval the plan needs, or go straight to execution.
    pub(crate) async fn on_planned(
        &self,
        inc: StoredIncident,
        mut data: IncidentData,
        now_ms: i64,
        report: &mut TickReport,
    ) -> Result<Next, HealerError> {
        let plan = current_plan(&inc, &data, "planned")?;
        match plan.requires_approval() {
            Some((role, expires)) => {
                let req = ApprovalRequest {
                    digest: plan.digest.clone(),
                    role: role.clone(),
                    requested_at_ms: now_ms,
                    expires_at_ms: now_ms + (expires as i64) * 1000,
                    decided_by: None,
                    approved: None,
                    note: None,
                };
                let inputs = json!(req);
                data.approval = Some(req);
                let inc = with_data(inc, &data, now_ms);
                let reason = format!(
                    "plan {} needs {role} approval (expires in {expires} s)",
                    plan.digest
                );
                let mv = Move::healer(IncidentState::AwaitingApproval, reason, inputs);
                self.go(inc, mv, now_ms, report).await
            }
            None => {
                data.executing_since_ms = Some(now_ms);
                let inc = with_data(inc, &data, now_ms);
                let mv = Move::healer(
                    IncidentState::Executing,
                    "every step is automatic",
                    json!({"digest": plan.digest}),
                );
                self.go(inc, mv, now_ms, report).await
            }
        }
    }

    /// Awaiting approval: wait for the operator; an unanswered request escalates at expiry.
    pub(crate) async fn on_awaiting_approval(
        &self,
        inc: StoredIncident,
        data: IncidentData,
        now_ms: i64,
        report: &mut TickReport,
    ) -> Result<Next, HealerError> {
        let Some(req) = data.approval else {
            return Err(HealerError::Corrupt(format!(
                "incident {} awaits no approval",
                inc.id
            )));
        };
        if now_ms < req.expires_at_ms {
            return Ok(Next::Stop);
        }
        let reason = format!("approval for plan {} expired unanswered", req.digest);
        let mv = Move::healer(IncidentState::Escalated, reason, json!(req));
        self.end(inc, mv, now_ms, report).await
    }

    /// Records an operator's answer (see [`decide`]).
    pub async fn decide(
        &self,
        tenant: &str,
        incident_id: &str,
        decision: &Decision,
        now_ms: i64,
    ) -> Result<IncidentView, HealerError> {
        decide(&self.store, tenant, incident_id, decision, now_ms).await
    }
}

/// Records an operator's approval or denial of the plan awaiting one. The approval must name the
/// current plan's digest, come from the role the plan asks for (or admin), and arrive before
/// expiry. A denial escalates at once. Needs only the store: the next tick carries an approved
/// plan on.
pub async fn decide(
    store: &Store,
    tenant: &str,
    incident_id: &str,
    decision: &Decision,
    now_ms: i64,
) -> Result<IncidentView, HealerError> {
    let inc = store
        .incident(tenant, incident_id)
        .await?
        .ok_or_else(|| HealerError::NotFound(incident_id.to_string()))?;
    let state: IncidentState = inc.state.parse()?;
    if state != IncidentState::AwaitingApproval {
        return Err(HealerError::Refused(format!(
            "incident {incident_id} is {state}, not awaiting approval"
        )));
    }
    let mut data = IncidentData::from_json(&inc.data)?;
    let Some(mut req) = data.approval.clone() else {
        return Err(HealerError::Corrupt(format!(
            "incident {incident_id} awaits no approval"
        )));
    };
    if decision.digest != req.digest {
        return Err(HealerError::Refused(format!(
            "the approval names plan {} but the plan awaiting approval is {}; review the current plan",
            decision.digest, req.digest
        )));
    }
    let allowed = match req.role.as_str() {
        "admin" => decision.role == Role::Admin,
        _ => matches!(decision.role, Role::Operator | Role::Admin),
    };
    if !allowed {
        return Err(HealerError::Refused(format!(
            "this plan needs {} approval; {} cannot decide it",
            req.role,
            decision.role.as_str()
        )));
    }
    let mut report = TickReport::default();
    if now_ms >= req.expires_at_ms {
        let reason = format!("approval for plan {} expired unanswered", req.digest);
        let mv = Move::healer(IncidentState::Escalated, reason, json!(req));
        lifecycle::apply(store, inc, mv, now_ms, &mut report).await?;
        return Err(HealerError::Refused(format!(
            "the approval request expired at {} ms; the incident was escalated",
            req.expires_at_ms
        )));
    }
    req.decided_by = Some(decision.actor.clone());
    req.approved = Some(decision.approve);
    req.note = decision.note.clone();
    data.approval = Some(req.clone());
    if decision.approve {
        data.executing_since_ms = Some(now_ms);
    }
    let inc = with_data(inc, &data, now_ms);
    let (to, reason) = if decision.approve {
        (
            IncidentState::Executing,
            format!("plan {} approved", req.digest),
        )
    } else {
        (
            IncidentState::Escalated,
            format!(
                "plan {} denied{}",
                req.digest,
                decision
                    .note
                    .as_deref()
                    .map(|n| format!(": {n}"))
                    .unwrap_or_default()
            ),
        )
    };
    let mv = Move::by(&decision.actor, decision.role, to, reason, json!(req));
    let inc = lifecycle::apply(store, inc, mv, now_ms, &mut report).await?;
    crate::runtime::view(store, &inc.tenant, &inc.id).await
}
