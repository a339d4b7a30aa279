//! What a demo run came to: each injected fault matched to the incident the healer opened for
//! it, the incidents that match no fault (false incidents), and the figures the fault-injection
//! benchmark reports.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use super::fleet::{AgentStats, Fault};

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
    pub fleet: BTreeMap<String, AgentStats>,
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
/// slack for clocks) qualify.
pub fn fault_of(view: &Value, faults: &[Fault]) -> Option<usize> {
    let opened = field_i64(view, "opened_at_ms")?;
    let subject = view.get("subject").and_then(Value::as_str);
    let agents = strings_at(view, "/data/affected_agents");
    let eligible = |f: &&Fault| f.started_at_ms <= opened + 1_000;
    if let Some(i) = faults
        .iter()
        .position(|f| eligible(&f) && Some(f.root_cause.as_str()) == subject)
    {
        return Some(i);
    }
    faults
        .iter()
        .enumerate()
        .filter(|(_, f)| eligible(f))
        .map(|(i, f)| (i, f.agents.iter().filter(|a| agents.contains(a)).count()))
        .filter(|(_, n)| *n > 0)
        .max_by_key(|(_, n)| *n)
        .map(|(i, _)| i)
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
        })
        .collect();
    let mut false_incidents = Vec::new();
    let mut ordered: Vec<&Value> = views.iter().collect();
    ordered.sort_by_key(|v| field_i64(v, "opened_at_ms"));
    for view in ordered {
        let id = view
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let Some(i) = fault_of(view, faults) else {
            false_incidents.push(id);
            continue;
        };
        let r = &mut results[i];
        if r.incident.is_some() {
            r.duplicates.push(id);
            continue;
        }
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
        }
        r.state = state;
        r.incident = Some(id);
    }
    Report {
        seed,
        agents,
        duration_seconds,
        faults: results,
        incidents: views.len(),
        false_incidents,
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
        let _ = writeln!(out);
    }
    if !report.false_incidents.is_empty() {
        let _ = writeln!(
            out,
            "incidents matching no injected fault: {}",
            report.false_incidents.join(", ")
        );
    }
    out
}
