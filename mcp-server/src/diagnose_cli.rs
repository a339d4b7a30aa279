//! `meshos diagnose`: rank root-cause candidates for an anomaly from a dependency graph file and
//! a metrics CSV, offline. Reads the files, calls `meshos_causal::rank`, shapes the JSON.

use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use meshos_causal::{CausalGraph, Method, MetricSeries, rank};
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
