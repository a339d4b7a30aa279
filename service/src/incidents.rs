//! Incidents for operators over MCP: list, show, approve, deny, release. Plain functions over the
//! store; approvals go through `meshos_healer::Healer::decide` (digest, role and expiry checked
//! there), releases through `meshos_healer::Healer::release` (on the ledger with who and why).

use meshos_healer::{Decision, Healer, HealerConfig, HealerError, IncidentState};
use meshos_playbooks::Library;
use meshos_types::{Principal, Role, now_ms};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::healer_host::OfflinePorts;
use crate::{Mesh, MeshError};

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IncidentListInput {
    /// Only incidents in these states, e.g. `["awaiting_approval"]` (default: every state but
    /// `observed`: observations are not incidents; ask for them with `["observed"]`).
    #[serde(default)]
    pub states: Vec<String>,
    /// At most this many, newest first (1-500, default 50).
    #[serde(default)]
    pub limit: Option<u32>,
    /// Only incidents and observations that affect this agent.
    #[serde(default)]
    pub agent: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct IncidentListOutput {
    pub incidents: Vec<Value>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IncidentShowInput {
    pub incident_id: String,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IncidentDecideInput {
    pub incident_id: String,
    /// The plan digest `incident_show` reported under `data.approval.digest`: the approval is
    /// bound to exactly that plan.
    pub digest: String,
    /// Why (kept in the evidence ledger).
    #[serde(default)]
    pub note: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IncidentReleaseInput {
    pub incident_id: String,
    /// Why the controls can go (kept in the evidence ledger).
    #[serde(default)]
    pub note: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct IncidentOutput {
    /// The incident with its data (symptoms, diagnosis, plan, approval, verification) and its
    /// timeline (every transition with actor, reason, inputs and ledger index).
    pub incident: Value,
}

pub(crate) fn may_read(p: &Principal) -> Result<(), MeshError> {
    if p.role == Role::Agent {
        return Err(MeshError::Forbidden(
            "agents cannot read incidents; use an operator, admin or auditor token".into(),
        ));
    }
    Ok(())
}

/// Only operators and admins change what the healer does.
pub(crate) fn may_act(p: &Principal, what: &str) -> Result<(), MeshError> {
    if matches!(p.role, Role::Operator | Role::Admin) {
        return Ok(());
    }
    Err(MeshError::Forbidden(format!(
        "role {} cannot {what}; expected an operator or admin token",
        p.role
    )))
}

/// A note goes into the ledger: bounded.
fn check_note(note: Option<&str>) -> Result<(), MeshError> {
    if note.is_some_and(|n| n.len() > 4096) {
        return Err(MeshError::Invalid {
            field: "note".into(),
            message: "expected at most 4096 bytes".into(),
        });
    }
    Ok(())
}

/// A healer over the store alone, for decisions made outside the running loop.
fn offline_healer(
    store: meshos_store::Store,
    policy_version: String,
) -> Result<Healer<OfflinePorts>, HealerError> {
    Ok(Healer::new(
        store,
        Library::builtin()?,
        OfflinePorts { policy_version },
        HealerConfig::default(),
    ))
}

fn healer_error(e: HealerError) -> MeshError {
    match e {
        HealerError::NotFound(id) => MeshError::NotFound(format!("incident {id} not found")),
        HealerError::Refused(m) => MeshError::Invalid {
            field: "incident".into(),
            message: m,
        },
        HealerError::Store(e) => MeshError::Store(e),
        other => MeshError::Internal(other.to_string()),
    }
}

pub async fn list(
    mesh: &Mesh,
    p: &Principal,
    input: IncidentListInput,
) -> Result<IncidentListOutput, MeshError> {
    may_read(p)?;
    for (i, s) in input.states.iter().enumerate() {
        if s.parse::<IncidentState>().is_err() {
            let names: Vec<&str> = IncidentState::ALL.iter().map(|v| v.as_str()).collect();
            return Err(MeshError::Invalid {
                field: format!("states[{i}]"),
                message: format!("`{s}`; expected one of {}", names.join(", ")),
            });
        }
    }
    let limit = input.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(MeshError::Invalid {
            field: "limit".into(),
            message: format!("{limit}; expected 1-500"),
        });
    }
    let states = listed_states(&input.states);
    // An agent filter reads further back: the newest rows may all be other agents'.
    let fetch = if input.agent.is_some() { 5_000 } else { limit };
    let rows = mesh
        .store
        .incidents(Some(&p.tenant), &states, fetch)
        .await?;
    Ok(IncidentListOutput {
        incidents: rows
            .iter()
            .filter(|i| input.agent.as_deref().is_none_or(|a| affects(i, a)))
            .take(limit as usize)
            .map(summary)
            .collect(),
    })
}

pub async fn show(
    mesh: &Mesh,
    p: &Principal,
    input: IncidentShowInput,
) -> Result<IncidentOutput, MeshError> {
    may_read(p)?;
    let view = meshos_healer::incident_view(&mesh.store, &p.tenant, &input.incident_id)
        .await
        .map_err(healer_error)?;
    Ok(IncidentOutput {
        incident: serde_json::to_value(view).map_err(|e| MeshError::Internal(e.to_string()))?,
    })
}

pub async fn decide(
    mesh: &Mesh,
    p: &Principal,
    input: IncidentDecideInput,
    approve: bool,
) -> Result<IncidentOutput, MeshError> {
    may_act(p, "decide heal plans")?;
    check_note(input.note.as_deref())?;
    let decision = Decision {
        approve,
        digest: input.digest,
        actor: p.token_id.clone(),
        role: p.role,
        note: input.note,
    };
    // Any replica records it: the healer's `decide` checks digest, role and expiry, and the
    // leader's next tick executes.
    let view = meshos_healer::decide(
        &mesh.store,
        &p.tenant,
        &input.incident_id,
        &decision,
        now_ms(),
    )
    .await
    .map_err(healer_error)?;
    Ok(IncidentOutput {
        incident: serde_json::to_value(view).map_err(|e| MeshError::Internal(e.to_string()))?,
    })
}

/// Clears every control an incident set (quarantine, cap, revocation, pin, avoided region),
/// as an operator's decision on the ledger.
pub async fn release(
    mesh: &Mesh,
    p: &Principal,
    input: IncidentReleaseInput,
) -> Result<IncidentOutput, MeshError> {
    may_act(p, "release heal controls")?;
    check_note(input.note.as_deref())?;
    let view = release_on_store(
        mesh.store.clone(),
        mesh.bundle.current().version().to_string(),
        &p.tenant,
        &input.incident_id,
        &p.token_id,
        p.role,
        input.note.as_deref(),
    )
    .await
    .map_err(healer_error)?;
    Ok(IncidentOutput {
        incident: serde_json::to_value(view).map_err(|e| MeshError::Internal(e.to_string()))?,
    })
}

/// [`release`] without a running healer (the CLI, any replica).
pub async fn release_on_store(
    store: meshos_store::Store,
    policy_version: String,
    tenant: &str,
    incident_id: &str,
    actor: &str,
    role: Role,
    note: Option<&str>,
) -> Result<meshos_healer::IncidentView, HealerError> {
    offline_healer(store, policy_version)?
        .release(tenant, incident_id, actor, role, note, now_ms())
        .await
}

/// The states a list asks for: the given ones, or every state but `observed`.
pub fn listed_states(given: &[String]) -> Vec<&str> {
    if given.is_empty() {
        IncidentState::ALL
            .iter()
            .filter(|s| **s != IncidentState::Observed)
            .map(|s| s.as_str())
            .collect()
    } else {
        given.iter().map(String::as_str).collect()
    }
}

/// Whether an incident (or observation) affects `agent`.
pub fn affects(i: &meshos_store::StoredIncident, agent: &str) -> bool {
    i.data
        .get("affected_agents")
        .and_then(Value::as_array)
        .is_some_and(|a| a.iter().any(|x| x.as_str() == Some(agent)))
}

/// One line of an incident list: what an operator scans before opening one. Observations
/// (state `observed`) carry why they called for no action.
pub fn summary(i: &meshos_store::StoredIncident) -> Value {
    serde_json::json!({
        "id": i.id, "kind": i.kind, "severity": i.severity, "state": i.state,
        "subject": i.subject, "opened_at_ms": i.opened_at_ms,
        "resolved_at_ms": i.resolved_at_ms,
        "affected_agents": i.data.get("affected_agents"),
    })
}

#[cfg(test)]
mod tests {
    use super::listed_states;

    /// Observations are not incidents: a plain list leaves them out; asking for them lists them.
    #[test]
    fn a_plain_list_leaves_observations_out() {
        let all = listed_states(&[]);
        assert!(!all.contains(&"observed"), "{all:?}");
        assert!(all.contains(&"resolved") && all.contains(&"awaiting_approval"));
        assert_eq!(listed_states(&["observed".to_string()]), ["observed"]);
    }
}
