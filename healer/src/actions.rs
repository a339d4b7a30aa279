//! What a planned step changes: a control row on the mesh (quarantine, revoked tool, policy
//! overlay, model pin, avoided region, budget cap) or a delivery through the server (webhook,
//! notification, eval request). Controls are undone by clearing them.

use meshos_playbooks::{ActionKind, Plan, PlannedStep};
use meshos_store::StoredControl;
use meshos_types::EventRecord;
use serde_json::Value;

use crate::strata::entities_of;
use crate::{Diagnosis, IncidentData};

/// The control an action sets: `(kind, subject)`; `None` for delivery actions.
pub(crate) fn control_of(step: &PlannedStep) -> Option<(&'static str, String)> {
    let p = |k: &str| {
        step.params
            .get(k)
            .map(|v| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .unwrap_or_else(|| "*".to_string())
    };
    Some(match step.action {
        ActionKind::QuarantineAgent => ("agent_quarantine", p("agent")),
        ActionKind::RevokeTool => ("tool_revoked", format!("{}/{}", p("agent"), p("tool"))),
        ActionKind::PolicyOverlay => (
            "policy_overlay",
            format!("{}/{}/{}", p("agent"), p("action"), p("effect")),
        ),
        ActionKind::PinModel => ("model_pin", p("model")),
        ActionKind::AvoidRegion => ("region_avoid", p("region")),
        ActionKind::CapBudget => ("budget_cap", format!("{}:{}", p("scope"), p("subject"))),
        ActionKind::Webhook | ActionKind::RunEval | ActionKind::Notify => return None,
    })
}

/// The entity a control blocks, as `kind:name` (`None` for controls on agents or budgets).
fn blocked_entity(step: &PlannedStep) -> Option<String> {
    let p = |k: &str| step.params.get(k).and_then(Value::as_str);
    match step.action {
        ActionKind::RevokeTool => p("tool").map(|t| format!("tool:{t}")),
        ActionKind::PinModel => p("model").map(|m| format!("model:{m}")),
        ActionKind::AvoidRegion => p("region").map(|r| format!("region:{r}")),
        ActionKind::PolicyOverlay => p("action")
            .and_then(|a| a.strip_suffix(".*"))
            .map(|t| format!("tool:{t}")),
        _ => None,
    }
}

/// Work this recent says who uses an entity now.
const CURRENT_USE_MS: i64 = 60_000;
/// Events on an entity that make an unaffected agent's use of it evidence of health.
const HEALTHY_MIN_EVENTS: usize = 8;

/// Agents a step would hold, for the blast-radius guard: the named agent; for fleet-wide
/// controls every agent whose recent work used what the control blocks (healthy ones
/// included), plus the affected agents; for tenant-wide budget caps the affected agents.
pub(crate) fn agents_held_by(
    step: &PlannedStep,
    affected: &[String],
    recent: &[EventRecord],
    now_ms: i64,
) -> Vec<String> {
    let agent = step.params.get("agent").and_then(Value::as_str);
    match (step.action, agent) {
        (
            ActionKind::QuarantineAgent | ActionKind::RevokeTool | ActionKind::PolicyOverlay,
            Some(a),
        ) if a != "*" => vec![a.to_string()],
        (ActionKind::CapBudget, _) => match (
            step.params.get("scope").and_then(Value::as_str),
            step.params.get("subject").and_then(Value::as_str),
        ) {
            (Some("agent"), Some(s)) => vec![s.to_string()],
            _ => affected.to_vec(),
        },
        (ActionKind::Notify | ActionKind::Webhook | ActionKind::RunEval, _) => Vec::new(),
        _ => {
            let mut out: Vec<String> = affected.to_vec();
            if let Some(entity) = blocked_entity(step) {
                out.extend(
                    recent
                        .iter()
                        .filter(|e| e.created_at_ms >= now_ms - CURRENT_USE_MS)
                        .filter(|e| entities_of(e).contains(&entity))
                        .map(|e| e.agent_id.clone()),
                );
            }
            out.sort();
            out.dedup();
            out
        }
    }
}

/// Why a plan must not run on its own (empty: it may). First, do no harm:
/// - the diagnosis is ambiguous (its root does not dominate the other explanations);
/// - the plan would hold agents the fault did not affect (healthy users of a tool, model or
///   region);
/// - a control would cut an agent's last working option: the agent already had to leave
///   every other tool, model or region it used because of an active control.
pub(crate) fn harm_guards(
    diagnosis: &Diagnosis,
    plan: &Plan,
    held: &[String],
    data: &IncidentData,
    controls: &[StoredControl],
    recent: &[EventRecord],
    now_ms: i64,
) -> Vec<String> {
    let mut out = Vec::new();
    let acts = plan.steps.iter().any(|s| control_of(s).is_some());
    if !acts {
        return out;
    }
    if !diagnosis.confident {
        out.push(format!(
            "the diagnosis is ambiguous: {}",
            diagnosis
                .note
                .rsplit_once("AMBIGUOUS: ")
                .map_or(diagnosis.note.as_str(), |(_, r)| r)
        ));
    }
    // Healthy: not affected, and working on what the plan blocks right now, plenty of it.
    let blocked: Vec<String> = plan.steps.iter().filter_map(blocked_entity).collect();
    let healthy: Vec<&String> = held
        .iter()
        .filter(|a| !data.affected_agents.contains(a))
        .filter(|a| {
            blocked.is_empty()
                || recent
                    .iter()
                    .filter(|e| &e.agent_id == *a && e.created_at_ms >= now_ms - CURRENT_USE_MS)
                    .filter(|e| entities_of(e).iter().any(|x| blocked.contains(x)))
                    .count()
                    >= HEALTHY_MIN_EVENTS
        })
        .collect();
    if !healthy.is_empty() {
        out.push(format!(
            "{} healthy agent(s) would be held: {}",
            healthy.len(),
            healthy
                .iter()
                .map(|a| a.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let controlled: Vec<String> = controls.iter().filter_map(controlled_entity).collect();
    for step in &plan.steps {
        let Some(entity) = blocked_entity(step) else {
            continue;
        };
        let kind = entity.split_once(':').map_or("", |(k, _)| k);
        let mut stranded = Vec::new();
        for agent in held {
            let used: std::collections::BTreeSet<String> = recent
                .iter()
                .filter(|e| &e.agent_id == agent)
                .flat_map(entities_of)
                .filter(|e| e.starts_with(kind) && e.as_bytes().get(kind.len()) == Some(&b':'))
                .collect();
            let others: Vec<&String> = used.iter().filter(|e| **e != entity).collect();
            let moved_off = others.iter().any(|e| controlled.contains(e));
            if moved_off && others.iter().all(|e| controlled.contains(e)) {
                stranded.push(agent.as_str());
            }
        }
        if !stranded.is_empty() {
            out.push(format!(
                "blocking {entity} would leave {} without a working {kind}: {}",
                stranded.len(),
                stranded.join(", ")
            ));
        }
    }
    out
}

/// The entity an active control blocks, as `kind:name`.
fn controlled_entity(c: &StoredControl) -> Option<String> {
    let spec = |k: &str| c.spec.get(k).and_then(Value::as_str);
    match c.kind.as_str() {
        "tool_revoked" => spec("tool").map(|t| format!("tool:{t}")),
        "model_pin" => spec("model").map(|m| format!("model:{m}")),
        "region_avoid" => Some(format!("region:{}", c.subject)),
        _ => None,
    }
}
