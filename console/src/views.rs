//! What each page shows, gathered from the service for one principal: plain async functions
//! that take the `Mesh` and return serialisable views, so they are tested without a server.
//! Every read goes through the principal's tenant.

use std::collections::HashMap;

use meshos_service::approvals::ApprovalsPendingInput;
use meshos_service::incidents::{self, IncidentListInput, IncidentShowInput};
use meshos_service::{Mesh, MeshError};
use meshos_types::{LedgerRecord, Principal, Role, now_ms};
use serde::Serialize;
use serde_json::Value;

use crate::svg::{self, ChartPoint};

/// Agents on one fleet page.
pub const FLEET_PAGE: u32 = 1_000;
const DAY_MS: i64 = 24 * 3_600_000;
/// Ledger entries on one evidence page.
pub const EVIDENCE_PAGE: u64 = 50;

/// `2026-12-06 16:20:01 UTC`.
pub fn when(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| ms.to_string())
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

fn store_error(e: meshos_store::StoreError) -> MeshError {
    MeshError::Store(e)
}

/// Operators, admins and auditors; agent tokens never sign in.
pub fn may_sign_in(p: &Principal) -> Result<(), String> {
    if p.role == Role::Agent {
        return Err(
            "an agent token cannot sign in to the console; use an operator, admin or auditor token"
                .into(),
        );
    }
    Ok(())
}

#[derive(Debug, Serialize)]
pub struct FleetRow {
    pub agent_id: String,
    pub score: f64,
    pub policy_adherence: f64,
    pub agent_reputation: f64,
    pub response_integrity: f64,
    pub risk_exposure: f64,
    /// `ok` or `breached`.
    pub sla: &'static str,
    pub threshold: f64,
    /// The score is the live one (held in memory) rather than the newest stored one.
    pub live: bool,
    pub last_seen: String,
    /// Inline SVG (server-made, no user text in it).
    pub sparkline: String,
}

#[derive(Debug, Serialize)]
pub struct FleetView {
    pub agents: Vec<FleetRow>,
    pub total: u64,
    pub breached: usize,
    /// The id to continue after, when there are more agents than one page.
    pub next_after: Option<String>,
    pub open_incidents: usize,
    pub awaiting_approval: usize,
    pub pending_approvals: usize,
}

/// The fleet: every agent's score (live where held, stored otherwise), components, SLA state
/// and a 24-hour sparkline, a page of [`FLEET_PAGE`] agents in id order.
pub async fn fleet(
    mesh: &Mesh,
    p: &Principal,
    after: Option<&str>,
) -> Result<FleetView, MeshError> {
    let tenant = &p.tenant;
    let store = mesh.store();
    let stored = store
        .fleet_agents(tenant, after, FLEET_PAGE)
        .await
        .map_err(store_error)?;
    let total = store.fleet_size(tenant).await.map_err(store_error)?;
    let mut hourly: HashMap<String, Vec<f64>> = HashMap::new();
    if let (Some(first), Some(last)) = (stored.first(), stored.last()) {
        for h in store
            .hourly_scores(tenant, &first.agent_id, &last.agent_id, now_ms() - DAY_MS)
            .await
            .map_err(store_error)?
        {
            hourly.entry(h.agent_id).or_default().push(h.score);
        }
    }
    let bundle = mesh.bundle().current();
    let live = mesh.live();
    let mut agents = Vec::with_capacity(stored.len());
    for a in &stored {
        let team = bundle.placement(&a.agent_id).team;
        let threshold = live.sla_threshold(tenant, &a.agent_id, team);
        let row = match live.peek_score(tenant, &a.agent_id, team) {
            Some((t, newest)) => FleetRow {
                agent_id: a.agent_id.clone(),
                score: round1(t.score),
                policy_adherence: t.components.policy_adherence,
                agent_reputation: t.components.agent_reputation,
                response_integrity: t.components.response_integrity,
                risk_exposure: t.components.risk_exposure,
                sla: if t.sla.breached { "breached" } else { "ok" },
                threshold,
                live: true,
                last_seen: when(newest.max(a.last_seen_ms)),
                sparkline: String::new(),
            },
            None => FleetRow {
                agent_id: a.agent_id.clone(),
                score: round1(a.score),
                policy_adherence: a.policy_adherence,
                agent_reputation: a.agent_reputation,
                response_integrity: a.response_integrity,
                risk_exposure: a.risk_exposure,
                sla: if a.score < threshold {
                    "breached"
                } else {
                    "ok"
                },
                threshold,
                live: false,
                last_seen: when(a.last_seen_ms),
                sparkline: String::new(),
            },
        };
        let mut points = hourly.remove(&a.agent_id).unwrap_or_default();
        points.push(row.score);
        agents.push(FleetRow {
            sparkline: svg::sparkline(&points, 96, 22),
            ..row
        });
    }
    let breached = agents.iter().filter(|a| a.sla == "breached").count();
    let next_after = (stored.len() == FLEET_PAGE as usize)
        .then(|| stored.last().map(|a| a.agent_id.clone()))
        .flatten();
    let open = incidents::list(
        mesh,
        p,
        IncidentListInput {
            states: open_states(),
            limit: Some(500),
            agent: None,
        },
    )
    .await?;
    let awaiting_approval = open
        .incidents
        .iter()
        .filter(|i| i.get("state").and_then(Value::as_str) == Some("awaiting_approval"))
        .count();
    let pending = approvals(mesh, p).await?;
    Ok(FleetView {
        agents,
        total,
        breached,
        next_after,
        open_incidents: open.incidents.len(),
        awaiting_approval,
        pending_approvals: pending.pending.len(),
    })
}

/// Every state an incident is still being worked in.
pub fn open_states() -> Vec<String> {
    meshos_healer::IncidentState::ALL
        .iter()
        .filter(|s| !s.is_terminal() && **s != meshos_healer::IncidentState::Observed)
        .map(|s| s.as_str().to_string())
        .collect()
}

#[derive(Debug, Serialize)]
pub struct AgentView {
    pub agent_id: String,
    pub trust: Value,
    pub chart: String,
    pub controls: Vec<Value>,
    pub decisions: Vec<Value>,
    pub events: Vec<Value>,
    pub incidents: Vec<Value>,
}

/// One agent: its score with components and explanations, trust over the last 24 hours,
/// drift signals, the controls that hold it, its recent decisions, events and incidents.
pub async fn agent(mesh: &Mesh, p: &Principal, agent_id: &str) -> Result<AgentView, MeshError> {
    let trust = mesh.trust_score(p, agent_id).await?;
    let tenant = &p.tenant;
    let store = mesh.store();
    let history = store
        .trust_history(tenant, agent_id, now_ms() - DAY_MS, 5_000)
        .await
        .map_err(store_error)?;
    let step = history.len().div_ceil(240).max(1);
    let mut points: Vec<ChartPoint> = history
        .iter()
        .rev()
        .step_by(step)
        .map(|h| ChartPoint {
            at_ms: h.at_ms,
            score: h.score,
        })
        .collect();
    points.reverse();
    let chart = svg::trust_chart(&points, Some(trust.sla.threshold));
    let controls = store
        .active_controls(Some(tenant))
        .await
        .map_err(store_error)?
        .into_iter()
        .filter(|c| control_concerns(c, agent_id))
        .map(|c| {
            serde_json::json!({
                "kind": c.kind, "subject": c.subject, "spec": c.spec,
                "incident_id": c.incident_id, "since": when(c.created_at_ms),
            })
        })
        .collect();
    let decisions = store
        .recent_decisions(tenant, agent_id, 20)
        .await
        .map_err(store_error)?
        .into_iter()
        .map(|(d, index)| {
            serde_json::json!({
                "id": d.id, "ledger_index": index, "action": d.action,
                "decision": d.decision.as_str(), "at": when(d.created_at_ms),
                "reasons": d.reasons.iter().map(|r| serde_json::json!({
                    "policy_id": r.policy_id, "message": r.message,
                })).collect::<Vec<_>>(),
                "findings": d.findings.iter().map(|f| f.entity.clone()).collect::<Vec<_>>(),
            })
        })
        .collect();
    let events = store
        .recent_events(tenant, agent_id, 20)
        .await
        .map_err(store_error)?
        .into_iter()
        .map(|(e, index)| {
            serde_json::json!({
                "id": e.id, "ledger_index": index, "kind": e.kind,
                "outcome": e.outcome, "latency_ms": e.latency_ms, "cost_usd": e.cost_usd,
                "model": e.model, "tool": e.tool, "at": when(e.created_at_ms),
            })
        })
        .collect();
    let incidents = incidents::list(
        mesh,
        p,
        IncidentListInput {
            states: Vec::new(),
            limit: Some(20),
            agent: Some(agent_id.to_string()),
        },
    )
    .await?
    .incidents
    .into_iter()
    .map(with_times)
    .collect();
    Ok(AgentView {
        agent_id: agent_id.to_string(),
        trust: serde_json::to_value(&trust).map_err(|e| MeshError::Internal(e.to_string()))?,
        chart,
        controls,
        decisions,
        events,
        incidents,
    })
}

/// Whether a healer control holds this agent: it names the agent, or names no agent (a
/// fleet-wide overlay, pin, route or cap).
fn control_concerns(c: &meshos_store::StoredControl, agent: &str) -> bool {
    match c.spec.get("agent").and_then(Value::as_str) {
        Some(a) => a == agent || a == "*",
        None => c.subject == agent || !c.subject.starts_with("agent"),
    }
}

/// Adds readable times next to an incident's or a transition's `at_ms` and `*_at_ms` fields
/// (`at`, `opened_at`, …).
fn with_times(mut v: Value) -> Value {
    if let Some(obj) = v.as_object_mut() {
        let times: Vec<(String, String)> = obj
            .iter()
            .filter_map(|(k, val)| {
                let name = if k == "at_ms" {
                    "at".to_string()
                } else {
                    format!("{}_at", k.strip_suffix("_at_ms")?)
                };
                Some((name, when(val.as_i64()?)))
            })
            .collect();
        for (k, t) in times {
            obj.insert(k, Value::String(t));
        }
    }
    v
}

#[derive(Debug, Serialize)]
pub struct IncidentsView {
    pub incidents: Vec<Value>,
    pub states: Vec<String>,
    pub selected: Vec<String>,
    pub agent: Option<String>,
}

/// Incidents in the given states (all but observations when none is given), newest first.
pub async fn incident_list(
    mesh: &Mesh,
    p: &Principal,
    states: Vec<String>,
    agent: Option<String>,
) -> Result<IncidentsView, MeshError> {
    let listed = incidents::list(
        mesh,
        p,
        IncidentListInput {
            states: states.clone(),
            limit: Some(200),
            agent: agent.clone(),
        },
    )
    .await?;
    Ok(IncidentsView {
        incidents: listed.incidents.into_iter().map(with_times).collect(),
        states: meshos_healer::IncidentState::ALL
            .iter()
            .map(|s| s.as_str().to_string())
            .collect(),
        selected: states,
        agent,
    })
}

#[derive(Debug, Serialize)]
pub struct IncidentView {
    pub incident: Value,
    /// The plan digest an approval from this page is bound to, when one is awaited.
    pub digest: Option<String>,
    /// The incident's version (its `updated_at_ms`): the live stream says when it moves.
    pub version: i64,
}

/// One incident: state, timeline (each transition with its ledger index), diagnosis, plan and
/// the digest an approval binds to.
pub async fn incident(
    mesh: &Mesh,
    p: &Principal,
    incident_id: &str,
) -> Result<IncidentView, MeshError> {
    let shown = incidents::show(
        mesh,
        p,
        IncidentShowInput {
            incident_id: incident_id.to_string(),
        },
    )
    .await?;
    let mut incident = with_times(shown.incident);
    if let Some(timeline) = incident.get_mut("timeline").and_then(Value::as_array_mut) {
        for t in timeline.iter_mut() {
            *t = with_times(std::mem::take(t));
        }
    }
    let digest = (incident.get("state").and_then(Value::as_str) == Some("awaiting_approval"))
        .then(|| {
            incident
                .pointer("/data/approval/digest")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .flatten();
    let version = incident
        .get("updated_at_ms")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    Ok(IncidentView {
        incident,
        digest,
        version,
    })
}

/// The incident's version and state, read cheaply for the live stream.
pub async fn incident_version(
    mesh: &Mesh,
    p: &Principal,
    incident_id: &str,
) -> Result<Option<(i64, String)>, MeshError> {
    if p.role == Role::Agent {
        return Err(MeshError::Forbidden("agents cannot read incidents".into()));
    }
    Ok(mesh
        .store()
        .incident(&p.tenant, incident_id)
        .await
        .map_err(store_error)?
        .map(|i| (i.updated_at_ms, i.state)))
}

#[derive(Debug, Serialize)]
pub struct ApprovalsView {
    pub pending: Vec<Value>,
}

pub async fn approvals(mesh: &Mesh, p: &Principal) -> Result<ApprovalsView, MeshError> {
    let pending = mesh
        .approvals_pending(
            p,
            ApprovalsPendingInput {
                agent_id: None,
                limit: Some(200),
            },
        )
        .await?;
    Ok(ApprovalsView {
        pending: pending
            .pending
            .into_iter()
            .filter_map(|a| serde_json::to_value(a).ok())
            .collect(),
    })
}

#[derive(Debug, Serialize)]
pub struct LedgerRow {
    pub ledger_index: u64,
    pub record_type: String,
    pub record_id: String,
    pub agent_id: Option<String>,
    pub summary: String,
    pub at: String,
}

#[derive(Debug, Serialize)]
pub struct EvidenceView {
    pub rows: Vec<LedgerRow>,
    pub size: u64,
    pub agent: Option<String>,
    /// Only records of this type (one of [`RECORD_TYPES`]).
    pub record_type: Option<String>,
    pub record_types: &'static [&'static str],
    /// The index to continue below, when there are older entries.
    pub before: Option<u64>,
}

/// The record types of the ledger (`LedgerRecord::kind`).
pub const RECORD_TYPES: &[&str] = &[
    "decision",
    "event",
    "approval",
    "incident_transition",
    "eval_run",
    "tool_pin",
    "reidentification",
];

/// What a ledger row says at a glance.
fn summarise(record: &LedgerRecord) -> (Option<String>, String) {
    match record {
        LedgerRecord::Decision(d) => (
            Some(d.agent_id.clone()),
            format!("{} → {}", d.action, d.decision.as_str()),
        ),
        LedgerRecord::Event(e) => (
            Some(e.agent_id.clone()),
            format!(
                "{} {}",
                e.kind,
                serde_json::to_value(e.outcome)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default()
            ),
        ),
        LedgerRecord::Approval(a) => (
            None,
            format!(
                "{} decision {}",
                if a.approved { "approved" } else { "refused" },
                a.decision_id
            ),
        ),
        other => (None, other.kind().replace('_', " ")),
    }
}

/// The ledger, newest first: the whole tenant's (or only one record type's), a page of
/// [`EVIDENCE_PAGE`] entries below `before`; or one agent's recent decisions and events.
pub async fn evidence(
    mesh: &Mesh,
    p: &Principal,
    agent: Option<&str>,
    record_type: Option<&str>,
    before: Option<u64>,
) -> Result<EvidenceView, MeshError> {
    if let Some(t) = record_type
        && !RECORD_TYPES.contains(&t)
    {
        return Err(MeshError::Invalid {
            field: "type".into(),
            message: format!("{t:?}; expected one of {}", RECORD_TYPES.join(", ")),
        });
    }
    if p.role == Role::Agent {
        return Err(MeshError::Forbidden(
            "an agent token cannot browse the ledger".into(),
        ));
    }
    let tenant = &p.tenant;
    let store = mesh.store();
    let size = store.ledger_size(tenant).await.map_err(store_error)?;
    if let Some(agent) = agent {
        // A listing needs no proofs: read the agent's records and summarise them like the
        // tenant's ledger below (a proof is built when one record is opened).
        meshos_types::validate_id("agent", agent).map_err(|e| MeshError::Invalid {
            field: "agent".into(),
            message: e.to_string(),
        })?;
        if !store
            .agent_known(tenant, agent)
            .await
            .map_err(store_error)?
        {
            return Err(MeshError::NotFound(format!(
                "unknown agent_id {agent:?}: no events or decisions in this tenant"
            )));
        }
        let limit = EVIDENCE_PAGE as u32;
        let mut records: Vec<(LedgerRecord, u64, i64)> = Vec::new();
        for (d, i) in store
            .recent_decisions(tenant, agent, limit)
            .await
            .map_err(store_error)?
        {
            let at = d.created_at_ms;
            records.push((LedgerRecord::Decision(d), i, at));
        }
        for (e, i) in store
            .recent_events(tenant, agent, limit)
            .await
            .map_err(store_error)?
        {
            let at = e.created_at_ms;
            records.push((LedgerRecord::Event(e), i, at));
        }
        records.sort_by_key(|r| std::cmp::Reverse(r.1));
        records.truncate(EVIDENCE_PAGE as usize);
        let rows = records
            .into_iter()
            .map(|(record, index, at)| {
                let (agent_id, summary) = summarise(&record);
                LedgerRow {
                    ledger_index: index,
                    record_type: record.kind().to_string(),
                    record_id: record.id().to_string(),
                    agent_id,
                    summary,
                    at: when(at),
                }
            })
            .collect();
        return Ok(EvidenceView {
            rows,
            size,
            agent: Some(agent.to_string()),
            record_type: None,
            record_types: RECORD_TYPES,
            before: None,
        });
    }
    let end = before.unwrap_or(size).min(size);
    // Newest first either way.
    let entries = match record_type {
        Some(t) => store
            .ledger_entries_of_type(tenant, t, end, EVIDENCE_PAGE as u32)
            .await
            .map_err(store_error)?,
        None => {
            let mut e = store
                .ledger_entries(tenant, end.saturating_sub(EVIDENCE_PAGE), end)
                .await
                .map_err(store_error)?;
            e.reverse();
            e
        }
    };
    let oldest = entries.last().map(|e| e.index).unwrap_or(0);
    let full = entries.len() as u64 == EVIDENCE_PAGE;
    let mut rows = Vec::with_capacity(entries.len());
    for entry in &entries {
        let record = store
            .ledger_record(tenant, entry)
            .await
            .map_err(store_error)?;
        let (agent_id, summary) = record
            .as_ref()
            .map(summarise)
            .unwrap_or((None, "(record missing)".into()));
        rows.push(LedgerRow {
            ledger_index: entry.index,
            record_type: entry.record_type.clone(),
            record_id: entry.record_id.clone(),
            agent_id,
            summary,
            at: when(entry.created_at_ms),
        });
    }
    Ok(EvidenceView {
        rows,
        size,
        agent: None,
        record_type: record_type.map(str::to_string),
        record_types: RECORD_TYPES,
        before: (full && oldest > 0).then_some(oldest),
    })
}

/// The ledger index of a decision or event id, for a search by id.
pub async fn find_record(mesh: &Mesh, p: &Principal, id: &str) -> Result<u64, MeshError> {
    meshos_types::validate_id("id", id).map_err(|e| MeshError::Invalid {
        field: "id".into(),
        message: e.to_string(),
    })?;
    let store = mesh.store();
    if let Some((_, index)) = store.decision(&p.tenant, id).await.map_err(store_error)? {
        return Ok(index);
    }
    if let Some((_, index)) = store.event(&p.tenant, id).await.map_err(store_error)? {
        return Ok(index);
    }
    Err(MeshError::NotFound(format!(
        "no decision or event with id {id:?} in this tenant"
    )))
}

/// What the browser needs to check a record on its own: the exact bytes its leaf hashes, the
/// audit path and the signed checkpoint with the key to check it with.
#[derive(Debug, Serialize)]
pub struct ProofBundle {
    pub ledger_index: u64,
    pub record_type: String,
    pub record_id: String,
    /// `LedgerRecord::canonical_bytes` (UTF-8: a version line and JSON).
    pub canonical: String,
    pub leaf_hash: String,
    pub tree_size: u64,
    pub audit_path: Vec<String>,
    pub checkpoint: String,
    pub verifier_key: String,
    pub cosignatures: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct RecordView {
    pub proof: ProofBundle,
    /// The record as JSON, pretty-printed from the canonical bytes.
    pub record: Value,
}

/// One ledger record with its inclusion proof against the newest signed checkpoint.
pub async fn record(mesh: &Mesh, p: &Principal, index: u64) -> Result<RecordView, MeshError> {
    let out = mesh.evidence_at(p, index).await?;
    let r = out
        .records
        .into_iter()
        .next()
        .ok_or_else(|| MeshError::NotFound(format!("no ledger record at index {index}")))?;
    let canonical = String::from_utf8(r.canonical_bytes)
        .map_err(|e| MeshError::Internal(format!("canonical bytes are not UTF-8: {e}")))?;
    Ok(RecordView {
        record: r.record,
        proof: ProofBundle {
            ledger_index: r.ledger_index,
            record_type: r.record_type,
            record_id: r.record_id,
            canonical,
            leaf_hash: r.leaf_hash,
            tree_size: r.inclusion_proof.tree_size,
            audit_path: r.inclusion_proof.audit_path,
            checkpoint: out.checkpoint.text,
            verifier_key: out.checkpoint.verifier_key,
            cosignatures: out.checkpoint.cosignatures,
        },
    })
}

#[derive(Debug, Serialize)]
pub struct DecisionRow {
    pub id: String,
    pub ledger_index: u64,
    pub agent_id: String,
    pub action: String,
    pub decision: String,
    pub reasons: Vec<Value>,
    pub at: String,
}

#[derive(Debug, Serialize)]
pub struct PolicyView {
    pub version: String,
    pub policies: Value,
    pub files: Vec<(String, String)>,
    pub decisions: Vec<DecisionRow>,
    pub verdict: Option<String>,
}

/// Decisions in the feed.
const FEED_SIZE: u32 = 100;

/// The bundle in force (version, policies, files) and the newest decisions with their
/// reasons, optionally only one verdict.
pub async fn policy(
    mesh: &Mesh,
    p: &Principal,
    verdict: Option<&str>,
) -> Result<PolicyView, MeshError> {
    if p.role == Role::Agent {
        return Err(MeshError::Forbidden(
            "an agent token cannot read the decision feed".into(),
        ));
    }
    let summary = mesh.bundle_summary();
    let mut files: Vec<(String, String)> = summary
        .get("files")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    if let Some(v) = verdict
        && !["allow", "deny", "redact", "require_approval"].contains(&v)
    {
        return Err(MeshError::Invalid {
            field: "verdict".into(),
            message: format!("{v:?}; expected allow, deny, redact or require_approval"),
        });
    }
    let decisions = mesh
        .store()
        .latest_decisions(&p.tenant, verdict, FEED_SIZE)
        .await
        .map_err(store_error)?
        .into_iter()
        .map(|(d, index)| DecisionRow {
            id: d.id,
            ledger_index: index,
            agent_id: d.agent_id,
            action: d.action,
            decision: d.decision.as_str().to_string(),
            reasons: d
                .reasons
                .iter()
                .map(|r| serde_json::json!({ "policy_id": r.policy_id, "message": r.message }))
                .collect(),
            at: when(d.created_at_ms),
        })
        .collect();
    Ok(PolicyView {
        version: summary
            .get("version")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        policies: summary.get("policies").cloned().unwrap_or(Value::Null),
        files,
        decisions,
        verdict: verdict.map(str::to_string),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_added_next_to_every_millisecond_field() {
        let v = with_times(serde_json::json!({
            "at_ms": 0, "opened_at_ms": 86_400_000, "resolved_at_ms": null, "data": 1,
        }));
        assert_eq!(v["at"], "1970-01-01 00:00:00 UTC");
        assert_eq!(v["opened_at"], "1970-01-02 00:00:00 UTC");
        assert!(v.get("resolved_at").is_none() && v.get("data_at").is_none());
    }
}
