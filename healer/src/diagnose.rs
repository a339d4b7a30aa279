//! Diagnosis of a group of symptoms: the fleet topology seen in the window's events, the
//! telemetry bucketed into the matching series, and the causal ensemble ranking.

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

/// Ranks root causes for `symptoms` over `events` (the diagnosis window, oldest first).
/// Candidates are limited to the symptoms' metric families when they name one; without enough
/// telemetry to rank, the first symptom's agent is blamed and the note says why.
pub(crate) fn diagnose(symptoms: &[Symptom], events: &[EventRecord]) -> Diagnosis {
    let first = &symptoms[0];
    let start_ms = symptoms
        .iter()
        .map(|s| s.started_at_ms)
        .min()
        .unwrap_or(first.at_ms);
    let fallback = |note: String| Diagnosis {
        root_cause: format!("agent:{}", first.agent_id),
        metric: first.metric.clone(),
        ranking: Vec::new(),
        method: "none".into(),
        anomaly_start_ms: start_ms,
        ranked: false,
        note,
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
    let graph = match topology.causal_graph() {
        Ok(g) => g,
        Err(e) => return fallback(format!("no topology to rank on: {e}")),
    };
    let series = match builder.build(&topology, &graph) {
        Ok(s) => s,
        Err(e) => return fallback(format!("no series to rank on: {e}")),
    };
    // The change began at the earliest symptom's start, but detectors fire after a few samples:
    // start the window one bucket earlier so the first anomalous bucket is not in the baseline.
    let start_s = start_ms / 1000 - i64::from(BUCKET_SECONDS);
    let ranking = match rank(&graph, &series, Some(start_s), Method::Ensemble) {
        Ok(r) => r,
        Err(e) => return fallback(format!("ranking refused the window: {e}")),
    };
    let families: Vec<&str> = symptoms
        .iter()
        .map(|s| s.metric.as_str())
        .filter(|m| ["latency", "error_rate", "violation_rate", "cost"].contains(m))
        .collect();
    let relevant: Vec<_> = ranking
        .iter()
        .filter(|c| {
            families.is_empty()
                || c.node
                    .rsplit_once('.')
                    .is_some_and(|(_, m)| families.contains(&m))
        })
        .collect();
    let Some(top) = relevant.first() else {
        return fallback("no candidate in the symptoms' metrics".into());
    };
    let Some((entity, metric)) = top.node.rsplit_once('.') else {
        return fallback(format!("unexpected node name `{}`", top.node));
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
            "{} ranked first of {} metric nodes ({} entities seen in {} events)",
            top.node,
            ranking.len(),
            topology.entities().count(),
            events.len()
        ),
    }
}
