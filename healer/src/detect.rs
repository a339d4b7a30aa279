//! Turning stored telemetry into symptoms: pure functions over store rows.

use std::collections::BTreeMap;

use meshos_playbooks::{IncidentKind, Severity};
use meshos_types::{DriftSignal, EventRecord, Outcome, SlaAlert};

use crate::Symptom;

/// The metric family a drift metric belongs to (the causal graph's metric names).
pub(crate) fn metric_family(metric: &str) -> &str {
    match metric {
        "cost_per_1k_tokens" | "tokens" | "cost" => "cost",
        other => other,
    }
}

pub(crate) fn from_signal(s: &DriftSignal) -> Symptom {
    let severity = match s.shift_sigmas.abs() {
        x if x >= 6.0 => Severity::High,
        x if x >= 3.0 => Severity::Medium,
        _ => Severity::Low,
    };
    // A drift in violations is a violation problem whatever its size.
    let severity = if s.metric == "violation_rate" {
        severity.max(Severity::High)
    } else {
        severity
    };
    Symptom {
        source_id: s.id.clone(),
        kind: IncidentKind::Drift,
        severity,
        agent_id: s.agent_id.clone(),
        metric: metric_family(&s.metric).to_string(),
        at_ms: s.at_ms,
        started_at_ms: s.at_ms,
        detail: s.explanation.clone(),
    }
}

pub(crate) fn from_alert(a: &SlaAlert) -> Option<Symptom> {
    a.is_breach().then(|| Symptom {
        source_id: a.id.clone(),
        kind: IncidentKind::SlaBreach,
        severity: if a.score < a.threshold / 2.0 {
            Severity::Critical
        } else {
            Severity::High
        },
        agent_id: a.agent_id.clone(),
        metric: "trust_score".into(),
        at_ms: a.at_ms,
        started_at_ms: a.at_ms,
        detail: format!(
            "trust score {:.1} below the {} threshold {:.1}",
            a.score, a.scope, a.threshold
        ),
    })
}

/// Violation bursts: agents whose share of `violation` outcomes over the window is at least
/// `min_share` with at least `min_events` events. The source id names the agent and the window
/// bucket, so one burst opens one symptom however many ticks see it.
pub(crate) fn violation_bursts(
    events: &[EventRecord],
    window_start_ms: i64,
    window_ms: i64,
    min_events: usize,
    min_share: f64,
) -> Vec<Symptom> {
    let mut per_agent: BTreeMap<&str, (usize, usize, i64)> = BTreeMap::new();
    for e in events.iter().filter(|e| e.created_at_ms >= window_start_ms) {
        let entry = per_agent
            .entry(e.agent_id.as_str())
            .or_insert((0, 0, i64::MAX));
        entry.0 += 1;
        if e.outcome == Outcome::Violation {
            entry.1 += 1;
            entry.2 = entry.2.min(e.created_at_ms);
        }
    }
    per_agent
        .into_iter()
        .filter(|(_, (n, v, _))| *n >= min_events && *v as f64 / *n as f64 >= min_share)
        .map(|(agent, (n, v, first))| {
            let share = v as f64 / n as f64;
            Symptom {
                source_id: format!(
                    "burst:{agent}:{}",
                    window_start_ms.div_euclid(window_ms.max(1))
                ),
                kind: IncidentKind::ViolationBurst,
                severity: if share >= 0.3 {
                    Severity::Critical
                } else {
                    Severity::High
                },
                agent_id: agent.to_string(),
                metric: "violation_rate".into(),
                at_ms: window_start_ms + window_ms,
                started_at_ms: first,
                detail: format!(
                    "{v} of {n} events were policy violations ({:.0}%)",
                    share * 100.0
                ),
            }
        })
        .collect()
}

/// Failed evals: events of kind `eval` with outcome `error` or `violation`.
pub(crate) fn failed_evals(events: &[EventRecord], since_ms: i64) -> Vec<Symptom> {
    events
        .iter()
        .filter(|e| e.kind == "eval" && e.outcome != Outcome::Ok && e.created_at_ms >= since_ms)
        .map(|e| Symptom {
            source_id: e.id.clone(),
            kind: IncidentKind::EvalFailure,
            severity: Severity::Medium,
            agent_id: e.agent_id.clone(),
            metric: "eval".into(),
            at_ms: e.created_at_ms,
            started_at_ms: e.created_at_ms,
            detail: format!(
                "eval failed ({})",
                e.attributes
                    .get("suite")
                    .and_then(|s| s.as_str())
                    .unwrap_or("suite not named")
            ),
        })
        .collect()
}
