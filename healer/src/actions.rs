//! What a planned step changes: a control row on the mesh (quarantine, revoked tool, policy
//! overlay, model pin, avoided region, budget cap) or a delivery through the server (webhook,
//! notification, eval request). Controls are undone by clearing them.

use meshos_playbooks::{Plan, PlannedStep};
use meshos_store::StoredControl;
use meshos_types::{CapScope, Control, ControlError, EventRecord};

use crate::strata::entities_of;
use crate::{Diagnosis, IncidentData};

/// The control a step sets; `Ok(None)` for delivery actions (webhook, eval, notify).
pub(crate) fn control_of(step: &PlannedStep) -> Result<Option<Control>, ControlError> {
    step.action
        .control_kind()
        .map(|kind| Control::from_params(kind, &serde_json::Value::Object(step.params.clone())))
        .transpose()
}

/// The entity a planned control blocks, as `kind:name` (`None` for controls on agents or
/// budgets). An overlay on a tool's actions (`tool.*`) counts as blocking the tool.
fn blocked_entity(control: &Control) -> Option<String> {
    match control {
        Control::PolicyOverlay { action, .. } => {
            action.strip_suffix(".*").map(|t| format!("tool:{t}"))
        }
        other => controlled_entity(other),
    }
}

/// The entity an active control blocks, as `kind:name`. Overlays leave the tool itself usable,
/// so they strand nobody.
fn controlled_entity(control: &Control) -> Option<String> {
    match control {
        Control::ToolRevoked { tool, .. } => Some(format!("tool:{tool}")),
        Control::ModelPin { model, .. } => Some(format!("model:{model}")),
        Control::RegionAvoid { region, .. } => Some(format!("region:{region}")),
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
    let control = match control_of(step) {
        Ok(Some(c)) => c,
        Ok(None) => return Vec::new(),
        // A step that sets nothing holds nobody new; the affected agents stay counted.
        Err(_) => return affected.to_vec(),
    };
    let named = |a: &str| (a != "*").then(|| vec![a.to_string()]);
    let one = match &control {
        Control::Quarantine { agent } => named(agent),
        Control::ToolRevoked { agent: Some(a), .. }
        | Control::PolicyOverlay { agent: Some(a), .. } => named(a),
        Control::BudgetCap {
            scope: CapScope::Agent,
            subject,
            ..
        } => Some(vec![subject.clone()]),
        Control::BudgetCap { .. } => return affected.to_vec(),
        _ => None,
    };
    if let Some(agents) = one {
        return agents;
    }
    let mut out: Vec<String> = affected.to_vec();
    if let Some(entity) = blocked_entity(&control) {
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
    let acts = plan.steps.iter().any(|s| s.action.control_kind().is_some());
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
    let planned: Vec<Control> = plan
        .steps
        .iter()
        .filter_map(|s| control_of(s).ok().flatten())
        .collect();
    let blocked: Vec<String> = planned.iter().filter_map(blocked_entity).collect();
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
    let controlled: Vec<String> = meshos_store::readable_controls(controls)
        .filter_map(|(_, c)| controlled_entity(&c))
        .collect();
    for control in &planned {
        let Some(entity) = blocked_entity(control) else {
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
