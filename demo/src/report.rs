//! What a demo run came to: each injected fault matched to the incident the healer opened for
//! it, the incidents that match no fault (false incidents), and the figures the fault-injection
//! benchmark reports.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use crate::fleet::{AgentStats, Fault};

/// One injected fault and what the healer did about it.
#[derive(Debug, Clone, Serialize)]
pub struct FaultResult {
    pub fault: String,
    pub root_cause: String,
    pub agents: Vec<String>,
    pub started_at_ms: i64,
    /// The first incident opened for it (by subject, else by the agents it touches).
    pub incident: Option<String>,
    pub diagnosed_root_cause: Option<String>,
    pub diagnosis_correct: bool,
    pub state: Option<String>,
    /// Fault start → verified close.
    pub mttr_seconds: Option<f64>,
    /// Fault start → incident opened.
    pub detection_seconds: Option<f64>,
    pub playbooks: Vec<String>,
    /// Transitions made by someone other than the healer (approvals, denials).
    pub human_steps: usize,
    pub self_resolved: bool,
    /// Every step of the first playbook planned is `approval: auto`.
    pub first_playbook_auto: bool,
    /// Further incidents opened for the same fault.
    pub duplicates: Vec<String>,
    /// An incident was opened for it.
    pub detected: bool,
    /// Its first incident was resolved (verified), with or without a human.
    pub resolved: bool,
    /// Only a human step can fix it (a leak that bypasses `policy_check`).
    pub human_fix_expected: bool,
    /// No incident for it settled before the fault's time limit (random fleets).
    pub timed_out: bool,
    pub ended_at_ms: Option<i64>,
    pub magnitude: Value,
    /// Controls its incidents placed (`kind subject`), and those on entities it did not affect.
    pub controls: Vec<String>,
    pub healthy_controls: Vec<String>,
}

/// A control an incident placed on an entity no fault affected.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct HealthyControl {
    pub incident: String,
    pub control: String,
    pub subject: String,
    /// The fault the incident was matched to (`None`: a false incident).
    pub fault: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub seed: u64,
    pub agents: usize,
    pub duration_seconds: f64,
    pub faults: Vec<FaultResult>,
    pub incidents: usize,
    /// Incidents that match no injected fault.
    pub false_incidents: Vec<String>,
    /// False incidents per hour of the run.
    pub false_incidents_per_hour: f64,
    /// Controls placed on entities no fault affected, over every incident.
    pub healthy_controls: Vec<HealthyControl>,
    /// Incidents the server marks as observations (a state or kind naming one): neither matched
    /// to faults nor counted as false.
    pub observations: Vec<String>,
    /// Every incident in brief (id, subject, state, the fault it was matched to or `false`, its
    /// symptoms, playbooks tried and controls), for reading the failures without the server.
    pub incident_briefs: Vec<Value>,
    /// `classic` or `random`.
    pub fleet_kind: String,
    /// The drawn fleet (random fleets).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fleet_spec: Option<Value>,
    pub fleet: BTreeMap<String, AgentStats>,
}

/// Seconds after a fault ended during which an incident may still be matched to it.
pub const LATE_MATCH_MS: i64 = 30_000;

/// Whether the server marks this incident as an observation rather than an incident (tolerant
/// of how: a state, a kind, or a flag in its data).
pub fn is_observation(view: &Value) -> bool {
    let names = |v: Option<&Value>| {
        v.and_then(Value::as_str)
            .is_some_and(|s| s.to_ascii_lowercase().contains("observ"))
    };
    names(view.get("state"))
        || names(view.get("kind"))
        || names(view.pointer("/data/kind"))
        || view
            .pointer("/data/observation")
            .and_then(Value::as_bool)
            .unwrap_or(false)
}

/// Every control an incident view records as applied: any `{"control": .., "subject": ..}`
/// object anywhere in it (step results of the current plan and those kept in the timeline),
/// once per (control, subject).
pub fn controls_in(view: &Value) -> Vec<(String, String)> {
    fn walk(v: &Value, out: &mut Vec<(String, String)>) {
        match v {
            Value::Object(m) => {
                if let (Some(Value::String(c)), Some(Value::String(s))) =
                    (m.get("control"), m.get("subject"))
                {
                    let pair = (c.clone(), s.clone());
                    if !out.contains(&pair) {
                        out.push(pair);
                    }
                }
                for x in m.values() {
                    walk(x, out);
                }
            }
            Value::Array(a) => {
                for x in a {
                    walk(x, out);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(view, &mut out);
    out
}

/// Whether a control (kind and subject as `healer/src/actions.rs` `control_of` writes them)
/// sits on the fault's root entity or on an agent the fault affected. With no fault (a false
/// incident), every control is on a healthy entity.
pub fn control_on_fault(control: &str, subject: &str, fault: Option<&Fault>) -> bool {
    let Some(f) = fault else {
        return false;
    };
    let (root_kind, root_name) = f.root_cause.split_once(':').unwrap_or(("", ""));
    let affected =
        |a: &str| f.agents.iter().any(|x| x == a) || (root_kind == "agent" && a == root_name);
    match control {
        "agent_quarantine" => affected(subject),
        "tool_revoked" => {
            let (agent, tool) = subject.split_once('/').unwrap_or(("*", subject));
            (root_kind == "tool" && tool == root_name) || (agent != "*" && affected(agent))
        }
        "policy_overlay" => {
            let mut parts = subject.splitn(3, '/');
            let agent = parts.next().unwrap_or("*");
            let action = parts.next().unwrap_or("*");
            if agent != "*" {
                return affected(agent);
            }
            // Fleet-wide: only an overlay on the faulty tool's actions stays on the fault.
            root_kind == "tool"
                && (action == root_name
                    || action
                        .strip_prefix(root_name)
                        .is_some_and(|rest| rest.starts_with('.')))
        }
        "model_pin" => root_kind == "model" && subject == root_name,
        "region_avoid" => root_kind == "region" && subject == root_name,
        "budget_cap" => match subject.split_once(':') {
            Some(("agent", a)) => affected(a),
            _ => false,
        },
        // A control kind this report does not know: count it unless it names the root.
        _ => subject == root_name || subject.ends_with(&format!("/{root_name}")),
    }
}

/// The strings of the array at `pointer` (empty when absent).
fn strings_at(view: &Value, pointer: &str) -> Vec<String> {
    view.pointer(pointer)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

fn field_i64(view: &Value, k: &str) -> Option<i64> {
    view.get(k).and_then(Value::as_i64)
}

/// Which fault an incident belongs to: the one whose root cause it names, else the one whose
/// agents it shares most with; only faults already injected when it opened (with a second of
/// slack for clocks) and not ended more than [`LATE_MATCH_MS`] before qualify. Among equals, the
/// fault in the world when it opened wins, then the later one.
pub fn fault_of(view: &Value, faults: &[Fault]) -> Option<usize> {
    let opened = field_i64(view, "opened_at_ms")?;
    let subject = view.get("subject").and_then(Value::as_str);
    let agents = strings_at(view, "/data/affected_agents");
    let eligible = |f: &Fault| {
        f.started_at_ms <= opened + 1_000
            && f.ended_at_ms.is_none_or(|e| opened <= e + LATE_MATCH_MS)
    };
    let active = |f: &Fault| f.ended_at_ms.is_none_or(|e| opened <= e);
    faults
        .iter()
        .enumerate()
        .filter(|(_, f)| eligible(f))
        .map(|(i, f)| {
            let named = Some(f.root_cause.as_str()) == subject;
            let shared = f.agents.iter().filter(|a| agents.contains(a)).count();
            (i, named, shared, active(f))
        })
        .filter(|(_, named, shared, _)| *named || *shared > 0)
        .max_by_key(|(_, named, shared, active)| (*named, *active, *shared))
        .map(|(i, ..)| i)
}

/// One incident in brief (see [`Report::incident_briefs`]).
fn brief(view: &Value, fault: Option<&Fault>, observation: bool) -> Value {
    let symptoms: Vec<Value> = view
        .pointer("/data/symptoms")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|s| {
                    serde_json::json!({
                        "agent": s.get("agent_id"), "kind": s.get("kind"),
                        "metric": s.get("metric"), "severity": s.get("severity"),
                        "detail": s.get("detail"),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    serde_json::json!({
        "id": view.get("id"),
        "subject": view.get("subject"),
        "state": view.get("state"),
        "opened_at_ms": view.get("opened_at_ms"),
        "resolved_at_ms": view.get("resolved_at_ms"),
        "fault": fault.map(|f| f.kind.as_str()),
        "observation": observation,
        "affected_agents": view.pointer("/data/affected_agents"),
        "diagnosis_metric": view.pointer("/data/diagnosis/metric"),
        "tried_playbooks": view.pointer("/data/tried_playbooks"),
        "controls": controls_in(view)
            .into_iter()
            .map(|(c, s)| format!("{c} {s}"))
            .collect::<Vec<_>>(),
        "last_reason": view
            .get("timeline")
            .and_then(Value::as_array)
            .and_then(|t| t.last())
            .and_then(|t| t.get("reason")),
        "symptoms": symptoms,
    })
}

/// Builds the report from the faults injected and every incident's full view.
pub fn build(
    seed: u64,
    agents: usize,
    duration_seconds: f64,
    faults: &[Fault],
    views: &[Value],
    fleet: BTreeMap<String, AgentStats>,
) -> Report {
    build_with(
        seed,
        agents,
        duration_seconds,
        faults,
        views,
        fleet,
        "classic",
        None,
    )
}

/// [`build`] for a named fleet kind, with the drawn fleet's description.
#[allow(clippy::too_many_arguments)]
pub fn build_with(
    seed: u64,
    agents: usize,
    duration_seconds: f64,
    faults: &[Fault],
    views: &[Value],
    fleet: BTreeMap<String, AgentStats>,
    fleet_kind: &str,
    fleet_spec: Option<Value>,
) -> Report {
    let mut results: Vec<FaultResult> = faults
        .iter()
        .map(|f| FaultResult {
            fault: f.kind.as_str().to_string(),
            root_cause: f.root_cause.clone(),
            agents: f.agents.clone(),
            started_at_ms: f.started_at_ms,
            incident: None,
            diagnosed_root_cause: None,
            diagnosis_correct: false,
            state: None,
            mttr_seconds: None,
            detection_seconds: None,
            playbooks: Vec::new(),
            human_steps: 0,
            self_resolved: false,
            first_playbook_auto: false,
            duplicates: Vec::new(),
            detected: false,
            resolved: false,
            human_fix_expected: f.human_fix_expected,
            timed_out: f.timed_out,
            ended_at_ms: f.ended_at_ms,
            magnitude: f.magnitude.clone(),
            controls: Vec::new(),
            healthy_controls: Vec::new(),
        })
        .collect();
    let mut false_incidents = Vec::new();
    let mut healthy_controls = Vec::new();
    let mut observations = Vec::new();
    let mut incident_briefs = Vec::new();
    let mut ordered: Vec<&Value> = views.iter().collect();
    ordered.sort_by_key(|v| field_i64(v, "opened_at_ms"));
    for view in ordered {
        let id = view
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let matched = fault_of(view, faults);
        incident_briefs.push(brief(
            view,
            matched.map(|i| &faults[i]),
            is_observation(view),
        ));
        if is_observation(view) {
            observations.push(id);
            continue;
        }
        for (control, subject) in controls_in(view) {
            let on_fault = control_on_fault(&control, &subject, matched.map(|i| &faults[i]));
            if let Some(i) = matched {
                results[i].controls.push(format!("{control} {subject}"));
                if !on_fault {
                    results[i]
                        .healthy_controls
                        .push(format!("{id}: {control} {subject}"));
                }
            }
            if !on_fault {
                healthy_controls.push(HealthyControl {
                    incident: id.clone(),
                    control,
                    subject,
                    fault: matched.map(|i| faults[i].kind.as_str().to_string()),
                });
            }
        }
        let Some(i) = matched else {
            false_incidents.push(id);
            continue;
        };
        let r = &mut results[i];
        if r.incident.is_some() {
            // A duplicate's human steps still count against self-resolution.
            let humans = view
                .get("timeline")
                .and_then(Value::as_array)
                .map(|t| {
                    t.iter()
                        .filter(|x| x.get("actor").and_then(Value::as_str) != Some("healer"))
                        .count()
                })
                .unwrap_or(0);
            r.human_steps += humans;
            if humans > 0 {
                r.self_resolved = false;
            }
            r.duplicates.push(id);
            continue;
        }
        r.detected = true;
        let subject = view
            .get("subject")
            .and_then(Value::as_str)
            .map(str::to_string);
        let state = view
            .get("state")
            .and_then(Value::as_str)
            .map(str::to_string);
        let timeline = view
            .get("timeline")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        r.human_steps = timeline
            .iter()
            .filter(|t| t.get("actor").and_then(Value::as_str) != Some("healer"))
            .count();
        r.playbooks = strings_at(view, "/data/tried_playbooks");
        r.first_playbook_auto = timeline
            .iter()
            .find(|t| t.get("to").and_then(Value::as_str) == Some("planned"))
            .and_then(|t| t.pointer("/inputs/steps"))
            .and_then(Value::as_array)
            .is_some_and(|steps| {
                steps
                    .iter()
                    .all(|s| s.get("approval").and_then(Value::as_str) == Some("auto"))
            });
        r.diagnosis_correct = subject.as_deref() == Some(r.root_cause.as_str());
        r.diagnosed_root_cause = subject;
        r.detection_seconds =
            field_i64(view, "opened_at_ms").map(|t| (t - r.started_at_ms).max(0) as f64 / 1000.0);
        if state.as_deref() == Some("resolved") {
            r.mttr_seconds = field_i64(view, "resolved_at_ms")
                .map(|t| (t - r.started_at_ms).max(0) as f64 / 1000.0);
            r.self_resolved = r.human_steps == 0;
            r.resolved = true;
        }
        r.state = state;
        r.incident = Some(id);
    }
    let hours = duration_seconds / 3600.0;
    Report {
        seed,
        agents,
        duration_seconds,
        faults: results,
        incidents: views.len(),
        false_incidents_per_hour: if hours > 0.0 {
            false_incidents.len() as f64 / hours
        } else {
            0.0
        },
        false_incidents,
        healthy_controls,
        observations,
        incident_briefs,
        fleet_kind: fleet_kind.to_string(),
        fleet_spec,
        fleet,
    }
}

/// The `p`-quantile (0..=1) of `values` by the nearest-rank method.
pub fn quantile(values: &[f64], p: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = ((p * v.len() as f64).ceil() as usize).clamp(1, v.len());
    Some(v[rank - 1])
}

/// The human-readable end of a run: per fault, its incident's timeline.
pub fn render(report: &Report, views: &[Value], t0_ms: i64) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let rel = |ms: i64| (ms - t0_ms) as f64 / 1000.0;
    let by_id: BTreeMap<&str, &Value> = views
        .iter()
        .filter_map(|v| Some((v.get("id")?.as_str()?, v)))
        .collect();
    let _ = writeln!(
        out,
        "\nMesh OS demo: {} agents, seed {}, {:.0} s, {} incident(s)\n",
        report.agents, report.seed, report.duration_seconds, report.incidents
    );
    for r in &report.faults {
        let _ = writeln!(
            out,
            "== {}  (root cause {}, {} agent(s), injected at +{:.1}s)",
            r.fault,
            r.root_cause,
            r.agents.len(),
            rel(r.started_at_ms)
        );
        let Some(id) = &r.incident else {
            let _ = writeln!(out, "   no incident was opened\n");
            continue;
        };
        let _ = writeln!(
            out,
            "   {id}: {}{}; diagnosis {} {}; {}",
            r.state.as_deref().unwrap_or("?"),
            r.mttr_seconds
                .map(|s| format!(" {s:.1} s after the fault began"))
                .unwrap_or_default(),
            r.diagnosed_root_cause.as_deref().unwrap_or("?"),
            if r.diagnosis_correct {
                "(correct)"
            } else {
                "(WRONG)"
            },
            if r.human_steps == 0 {
                "no human step".to_string()
            } else {
                format!("{} human step(s)", r.human_steps)
            }
        );
        if let Some(timeline) = by_id
            .get(id.as_str())
            .and_then(|v| v.get("timeline"))
            .and_then(Value::as_array)
        {
            for t in timeline {
                let at = t.get("at_ms").and_then(Value::as_i64).unwrap_or(t0_ms);
                let reason: String = t
                    .get("reason")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .chars()
                    .take(110)
                    .collect();
                let _ = writeln!(
                    out,
                    "   +{:>6.1}s  {:<18} {:<14} {}",
                    rel(at),
                    t.get("to").and_then(Value::as_str).unwrap_or("?"),
                    t.get("actor").and_then(Value::as_str).unwrap_or("?"),
                    reason
                );
            }
        }
        if !r.duplicates.is_empty() {
            let _ = writeln!(out, "   also opened for it: {}", r.duplicates.join(", "));
        }
        if !r.healthy_controls.is_empty() {
            let _ = writeln!(
                out,
                "   controls on healthy entities: {}",
                r.healthy_controls.join("; ")
            );
        }
        let _ = writeln!(out);
    }
    if !report.false_incidents.is_empty() {
        let _ = writeln!(
            out,
            "incidents matching no injected fault: {}",
            report.false_incidents.join(", ")
        );
        for id in &report.false_incidents {
            if let Some(v) = by_id.get(id.as_str()) {
                let _ = writeln!(
                    out,
                    "   {id} +{:.1}s {} {}: {}",
                    rel(field_i64(v, "opened_at_ms").unwrap_or(t0_ms)),
                    v.get("subject").and_then(Value::as_str).unwrap_or("?"),
                    v.get("state").and_then(Value::as_str).unwrap_or("?"),
                    strings_at(v, "/data/affected_agents").join(", ")
                );
            }
        }
    }
    if !report.observations.is_empty() {
        let _ = writeln!(out, "observations: {}", report.observations.join(", "));
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::fleet::FaultKind;

    fn fault(kind: FaultKind, root: &str, agents: &[&str], start: i64, end: Option<i64>) -> Fault {
        Fault {
            kind,
            root_cause: root.into(),
            agents: agents.iter().map(|a| a.to_string()).collect(),
            started_at_ms: start,
            ended_at_ms: end,
            human_fix_expected: false,
            magnitude: Value::Null,
            timed_out: false,
        }
    }

    /// An incident view shaped like `GET /v1/incidents/{id}`'s `incident`, with controls applied
    /// by its executed plan (kept in the timeline's `inputs.steps`).
    fn incident(
        id: &str,
        subject: &str,
        opened: i64,
        state: &str,
        agents: &[&str],
        controls: &[(&str, &str)],
    ) -> Value {
        let steps: Vec<Value> = controls
            .iter()
            .map(|(c, s)| json!({"step": "x", "status": "applied", "result": {"control": c, "subject": s, "newly_set": true}}))
            .collect();
        json!({
            "id": id, "subject": subject, "state": state, "opened_at_ms": opened,
            "resolved_at_ms": if state == "resolved" { json!(opened + 9_000) } else { Value::Null },
            "some_new_field": {"the lead": "adds these"},
            "data": {"affected_agents": agents, "tried_playbooks": ["p"], "step_results": []},
            "timeline": [
                {"to": "open", "actor": "healer", "at_ms": opened},
                {"to": "planned", "actor": "healer", "at_ms": opened + 1, "inputs": {"steps": [{"approval": "auto"}]}},
                {"to": "verifying", "actor": "healer", "at_ms": opened + 2, "inputs": {"steps": steps}},
                {"to": state, "actor": "healer", "at_ms": opened + 3},
            ],
        })
    }

    fn report(faults: &[Fault], views: &[Value]) -> Report {
        build_with(
            1,
            20,
            3600.0,
            faults,
            views,
            BTreeMap::new(),
            "random",
            None,
        )
    }

    #[test]
    fn a_control_on_a_healthy_region_is_counted_and_one_on_the_faulty_tool_is_not() {
        let faults = [fault(
            FaultKind::ToolOutage,
            "tool:atlas",
            &["a", "b"],
            1_000,
            Some(60_000),
        )];
        let views = [incident(
            "inc-1",
            "region:aws:us-east-1",
            5_000,
            "resolved",
            &["a", "b"],
            &[
                ("region_avoid", "aws:us-east-1"),
                ("tool_revoked", "*/atlas"),
            ],
        )];
        let r = report(&faults, &views);
        assert_eq!(r.healthy_controls.len(), 1, "{:?}", r.healthy_controls);
        assert_eq!(r.healthy_controls[0].control, "region_avoid");
        assert_eq!(r.healthy_controls[0].fault.as_deref(), Some("tool_outage"));
        assert_eq!(r.faults[0].controls.len(), 2);
        assert_eq!(r.faults[0].healthy_controls.len(), 1);
        assert!(!r.faults[0].diagnosis_correct);
        assert!(r.faults[0].resolved && r.faults[0].self_resolved);
        assert_eq!(r.faults[0].mttr_seconds, Some(13.0));
    }

    #[test]
    fn controls_are_judged_by_their_subject_format() {
        let tool = fault(
            FaultKind::InjectionCampaign,
            "tool:atlas",
            &["a", "b"],
            0,
            None,
        );
        let agent = fault(FaultKind::CostSpike, "agent:c", &["c"], 0, None);
        let model = fault(
            FaultKind::ModelRegression,
            "model:gpt-4o-2025-05-01",
            &["a"],
            0,
            None,
        );
        let cases = [
            (&tool, "policy_overlay", "*/atlas.*/deny", true),
            (&tool, "policy_overlay", "*/atlasx.*/deny", false),
            (&tool, "policy_overlay", "*/*/deny", false),
            (&tool, "policy_overlay", "a/*/redact", true),
            (&tool, "tool_revoked", "*/beacon", false),
            (&tool, "agent_quarantine", "a", true),
            (&tool, "agent_quarantine", "z", false),
            (&agent, "budget_cap", "agent:c", true),
            (&agent, "budget_cap", "agent:d", false),
            (&agent, "budget_cap", "tenant:*", false),
            (&model, "model_pin", "gpt-4o-2025-05-01", true),
            (&model, "model_pin", "gpt-4o-2024-11-20", false),
            (&model, "region_avoid", "aws:eu-west-1", false),
        ];
        for (f, control, subject, on_fault) in cases {
            assert_eq!(
                control_on_fault(control, subject, Some(f)),
                on_fault,
                "{control} {subject} for {}",
                f.root_cause
            );
        }
        assert!(!control_on_fault("model_pin", "gpt-4o-2025-05-01", None));
    }

    #[test]
    fn a_second_incident_for_one_fault_is_a_duplicate_and_an_unrelated_one_is_false() {
        let faults = [
            fault(
                FaultKind::ModelRegression,
                "model:m-1",
                &["a", "b", "c"],
                1_000,
                Some(50_000),
            ),
            fault(
                FaultKind::CostSpike,
                "agent:d",
                &["d"],
                100_000,
                Some(150_000),
            ),
        ];
        let views = [
            incident("inc-1", "region:r1", 5_000, "escalated", &["a", "b"], &[]),
            incident(
                "inc-2",
                "model:m-1",
                9_000,
                "resolved",
                &["c"],
                &[("model_pin", "m-1")],
            ),
            // Opened during the quiet gap long after the model fault ended, on its agents.
            incident(
                "inc-3",
                "agent:a",
                95_000,
                "resolved",
                &["a"],
                &[("agent_quarantine", "a")],
            ),
            incident(
                "inc-4",
                "agent:d",
                104_000,
                "resolved",
                &["d"],
                &[("budget_cap", "agent:d")],
            ),
            incident(
                "inc-5",
                "tool:t",
                120_000,
                "resolved",
                &["x"],
                &[("tool_revoked", "*/t")],
            ),
            json!({"id": "inc-6", "state": "observing", "subject": "agent:y", "opened_at_ms": 130_000,
                   "data": {"affected_agents": ["y"]}}),
        ];
        let r = report(&faults, &views);
        let model = &r.faults[0];
        assert_eq!(model.incident.as_deref(), Some("inc-1"));
        assert_eq!(model.duplicates, vec!["inc-2".to_string()]);
        assert!(!model.diagnosis_correct && !model.resolved);
        assert_eq!(r.faults[1].duplicates.len(), 0);
        assert!(r.faults[1].diagnosis_correct && r.faults[1].self_resolved);
        assert_eq!(
            r.false_incidents,
            vec!["inc-3".to_string(), "inc-5".to_string()]
        );
        assert_eq!(r.observations, vec!["inc-6".to_string()]);
        assert_eq!(r.false_incidents_per_hour, 2.0);
        // The false incidents' controls are on healthy entities; the duplicate's pin is not.
        let healthy: Vec<&str> = r
            .healthy_controls
            .iter()
            .map(|h| h.incident.as_str())
            .collect();
        assert_eq!(healthy, vec!["inc-3", "inc-5"]);
    }

    #[test]
    fn a_human_step_on_a_duplicate_takes_self_resolution_away() {
        let faults = [fault(
            FaultKind::PiiLeak,
            "agent:a",
            &["a"],
            0,
            Some(80_000),
        )];
        let mut second = incident("inc-2", "agent:a", 20_000, "resolved", &["a"], &[]);
        second["timeline"]
            .as_array_mut()
            .expect("timeline")
            .push(json!({"to": "executing", "actor": "operator:demo", "at_ms": 25_000}));
        let views = [
            incident("inc-1", "agent:a", 5_000, "resolved", &["a"], &[]),
            second,
        ];
        let r = report(&faults, &views);
        assert!(r.faults[0].resolved);
        assert!(!r.faults[0].self_resolved);
        assert_eq!(r.faults[0].human_steps, 1);
    }
}
