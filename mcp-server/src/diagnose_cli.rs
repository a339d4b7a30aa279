//! `meshos diagnose`: rank root-cause candidates for an anomaly from a dependency graph file and
//! a metrics CSV, offline. Reads the files, calls `meshos_causal::rank`, shapes the JSON.
//! `meshos topology`: the fleet's metric graph in the same file format, from a topology file and
//! the relations observed in a tenant's stored events.

use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use meshos_causal::{
    CausalGraph, FleetTopology, Method, MetricSeries, Observation, provider_of, rank,
};
use meshos_store::CallRelation;
use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct DiagnoseOutput {
    pub ranking: Vec<meshos_causal::Candidate>,
    pub method: String,
    /// Anomaly start used (unix seconds): given, or found by change-point detection.
    pub anomaly_start: Option<i64>,
    /// Time spent ranking (files already read).
    pub seconds: f64,
}

/// Reads both files and ranks the top `top` candidates with `method`.
pub fn diagnose(
    graph_path: &Path,
    metrics_path: &Path,
    anomaly_start: Option<i64>,
    method: &str,
    top: usize,
) -> anyhow::Result<DiagnoseOutput> {
    let method: Method = method
        .parse()
        .map_err(|e| anyhow::anyhow!("--method {method:?}: {e}"))?;
    let graph_text = std::fs::read_to_string(graph_path)
        .with_context(|| format!("cannot read the graph file {}", graph_path.display()))?;
    let graph = CausalGraph::from_json(&graph_text)
        .with_context(|| format!("graph file {}", graph_path.display()))?;
    let metrics_text = std::fs::read_to_string(metrics_path)
        .with_context(|| format!("cannot read the metrics file {}", metrics_path.display()))?;
    let series = MetricSeries::from_csv(&metrics_text)
        .with_context(|| format!("metrics file {}", metrics_path.display()))?;
    let started = Instant::now();
    let start = anomaly_start.or_else(|| meshos_causal::detect_anomaly_start(&series));
    let mut ranking = rank(&graph, &series, start, method)?;
    let seconds = started.elapsed().as_secs_f64();
    ranking.truncate(top.max(1));
    Ok(DiagnoseOutput {
        ranking,
        method: method.as_str().to_string(),
        anomaly_start: start,
        seconds,
    })
}

/// The fleet topology from an optional topology file plus observed call relations, as the graph
/// file `meshos diagnose --graph` reads, with the entity-level cycles (mutual calls) beside it.
pub fn topology_graph(
    file: Option<&Path>,
    relations: &[CallRelation],
) -> anyhow::Result<(serde_json::Value, Vec<Vec<String>>)> {
    let mut topology = match file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the topology file {}", path.display()))?;
            FleetTopology::from_json(&text)
                .with_context(|| format!("topology file {}", path.display()))?
        }
        None => FleetTopology::new(),
    };
    for r in relations {
        let observation = Observation {
            agent: r.agent_id.clone(),
            tool: r.tool.clone(),
            model: r.model.clone(),
            provider: provider_of(r.model.as_deref(), None),
            region: r.region.clone(),
        };
        topology.observe_repeated(&observation, r.events, r.last_seen_ms);
    }
    let graph = topology.causal_graph()?;
    Ok((graph.to_json(), topology.cycles()))
}
