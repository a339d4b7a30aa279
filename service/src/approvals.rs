//! `require_approval` decisions: the pending list and an approver's answer, each answer a ledger record.

use meshos_store::StoreError;
use meshos_types::{
    ApprovalRecord, Obligation, Principal, Reason, Role, Verdict, new_id, now_ms, rfc3339_ms,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::mesh::{Mesh, MeshError, check_id, check_optional_id, invalid};

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

impl Mesh {
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
}
