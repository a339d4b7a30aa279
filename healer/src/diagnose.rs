//! Diagnosis of a group of symptoms: the fleet topology seen in the window's events, the
//! telemetry bucketed into the matching series, and the causal ensemble ranking.

use std::collections::{BTreeMap, BTreeSet};

use meshos_causal::{
    FleetTopology, Method, Observation, PointOutcome, SeriesBuilder, TelemetryPoint, provider_of,
    rank,
};
use meshos_types::{EventRecord, Outcome};

use crate::{Diagnosis, Symptom};

/// Width of the series buckets: fine enough to see a fault within a minute, coarse enough that
/// each bucket of a busy agent holds several calls.
const BUCKET_SECONDS: u32 = 5;

fn observation(e: &EventRecord) -> Observation {
    Observation {
        agent: e.agent_id.clone(),
        tool: e.tool.clone(),
        model: e.model.clone(),
        provider: provider_of(e.model.as_deref(), e.attributes.as_object()),
        region: e.region.clone(),
    }
}

/// Ranks root causes once over `events` (the diagnosis window, oldest first) and diagnoses
/// each symptom: the best-ranked candidate that can explain it, i.e. its agent or something the
/// agent depends on (tool, model, provider, region), in the symptom's metric family when it
/// names one. Without enough telemetry to rank, a symptom's own agent is blamed and the note
/// says why.
pub(crate) fn diagnose_each(symptoms: &[Symptom], events: &[EventRecord]) -> Vec<Diagnosis> {
    let start_ms = symptoms
        .iter()
        .map(|s| s.started_at_ms)
        .min()
        .unwrap_or_default();
    let fallback = |s: &Symptom, note: String| Diagnosis {
        root_cause: format!("agent:{}", s.agent_id),
        metric: s.metric.clone(),
        ranking: Vec::new(),
        method: "none".into(),
        anomaly_start_ms: start_ms,
        ranked: false,
        note,
        confident: false,
        evidence: Vec::new(),
        explains_agents: vec![s.agent_id.clone()],
    };
    let mut topology = FleetTopology::new();
    for e in events {
        topology.observe(&observation(e), e.created_at_ms);
    }
    let mut builder = SeriesBuilder::new(BUCKET_SECONDS);
    for e in events {
        builder.push(
            &topology,
            &TelemetryPoint {
                at_ms: e.created_at_ms,
                observation: observation(e),
                outcome: match e.outcome {
                    Outcome::Ok => PointOutcome::Ok,
                    Outcome::Error => PointOutcome::Error,
                    Outcome::Violation => PointOutcome::Violation,
                },
                latency_ms: e.latency_ms,
                cost_usd: e.cost_usd,
            },
        );
    }
    let all_fallback = |note: String| symptoms.iter().map(|s| fallback(s, note.clone())).collect();
    let graph = match topology.causal_graph() {
        Ok(g) => g,
        Err(e) => return all_fallback(format!("no topology to rank on: {e}")),
    };
    let series = match builder.build(&topology, &graph) {
        Ok(s) => s,
        Err(e) => return all_fallback(format!("no series to rank on: {e}")),
    };
    // The change began at the earliest symptom's start, but detectors fire after a few samples:
    // start the window one bucket earlier so the first anomalous bucket is not in the baseline.
    let start_s = start_ms / 1000 - i64::from(BUCKET_SECONDS);
    let ranking = match rank(&graph, &series, Some(start_s), Method::Ensemble) {
        Ok(r) => r,
        Err(e) => return all_fallback(format!("ranking refused the window: {e}")),
    };
    let mut depends_on: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (dependent, dependency, _) in topology.dependencies() {
        depends_on
            .entry(dependent.to_string())
            .or_default()
            .push(dependency.to_string());
    }
    symptoms
        .iter()
        .map(|s| {
            let explains = upstream_of(&format!("agent:{}", s.agent_id), &depends_on);
            let family = ["latency", "error_rate", "violation_rate", "cost"]
                .contains(&s.metric.as_str())
                .then_some(s.metric.as_str());
            let relevant: Vec<_> = ranking
                .iter()
                .filter(|c| {
                    c.node.rsplit_once('.').is_some_and(|(entity, m)| {
                        explains.contains(entity) && family.is_none_or(|f| f == m)
                    })
                })
                .collect();
            let Some(top) = relevant.first() else {
                return fallback(s, format!("no candidate upstream of agent {} ranked", s.agent_id));
            };
            let Some((entity, metric)) = top.node.rsplit_once('.') else {
                return fallback(s, format!("unexpected node name `{}`", top.node));
            };
            Diagnosis {
                root_cause: entity.to_string(),
                metric: metric.to_string(),
                ranking: relevant
                    .iter()
                    .take(5)
                    .map(|c| (c.node.clone(), c.score))
                    .collect(),
                method: "ensemble".into(),
                anomaly_start_ms: start_s * 1000,
                ranked: true,
                note: format!(
                    "{} ranked first of the {} candidates upstream of agent {} ({} metric nodes, {} events)",
                    top.node,
                    relevant.len(),
                    s.agent_id,
                    ranking.len(),
                    events.len()
                ),
                confident: false,
                evidence: Vec::new(),
                explains_agents: vec![s.agent_id.clone()],
            }
        })
        .collect()
}

/// `entity` and everything it depends on, directly or not.
fn upstream_of(entity: &str, depends_on: &BTreeMap<String, Vec<String>>) -> BTreeSet<String> {
    let mut seen = BTreeSet::from([entity.to_string()]);
    let mut stack = vec![entity.to_string()];
    while let Some(e) = stack.pop() {
        for d in depends_on.get(&e).into_iter().flatten() {
            if seen.insert(d.clone()) {
                stack.push(d.clone());
            }
        }
    }
    seen
}
