//! What a planned step changes: a control row on the mesh (quarantine, revoked tool, policy
//! overlay, model pin, avoided region, budget cap) or a delivery through the server (webhook,
//! notification, eval request). Controls are undone by clearing them.

use meshos_playbooks::{ActionKind, PlannedStep};
use serde_json::Value;

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

/// Agents a step touches, for the blast-radius guard: the named agent, or every affected agent
/// for fleet-wide (`*`) controls and tenant-wide budget caps.
pub(crate) fn agents_touched(step: &PlannedStep, affected: &[String]) -> Vec<String> {
    let agent = step.params.get("agent").and_then(Value::as_str);
    match (step.action, agent) {
        (
            ActionKind::QuarantineAgent | ActionKind::RevokeTool | ActionKind::PolicyOverlay,
            Some(a),
        ) if a != "*" => {
            vec![a.to_string()]
        }
        (ActionKind::CapBudget, _) => match (
            step.params.get("scope").and_then(Value::as_str),
            step.params.get("subject").and_then(Value::as_str),
        ) {
            (Some("agent"), Some(s)) => vec![s.to_string()],
            _ => affected.to_vec(),
        },
        (ActionKind::Notify | ActionKind::Webhook | ActionKind::RunEval, _) => Vec::new(),
        _ => affected.to_vec(),
    }
}
