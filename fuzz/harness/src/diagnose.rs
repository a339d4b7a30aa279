//! `meshos diagnose` and `meshos topology` inputs: the causal graph file, the metrics CSV and
//! the fleet topology file, parsed and ranked as the commands do.
//!
//! An input is `<graph JSON>\n---\n<metrics CSV>`; without the separator the whole input is
//! tried as each of the three files. The causal crate promises that bad graphs, CSVs and windows
//! are typed errors, never panics; beyond that, no ranked candidate has a NaN score (it would
//! serialise as `null` and sort nowhere in particular).

use meshos_causal::{
    CausalGraph, FleetTopology, Method, MetricSeries, Observation, detect_anomaly_start,
    provider_of, rank,
};

const SEPARATOR: &str = "\n---\n";

pub fn files(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (graph_text, metrics_text) = text.split_once(SEPARATOR).unwrap_or((text, text));
    topology(graph_text);
    let graph = CausalGraph::from_json(graph_text);
    let series = MetricSeries::from_csv(metrics_text);
    if let Ok(graph) = &graph {
        let _ = graph.cycles();
        let _ = graph.to_json();
    }
    let (Ok(graph), Ok(series)) = (graph, series) else {
        return;
    };
    let detected = detect_anomaly_start(&series);
    let given = series.timestamps.get(series.len() / 2).copied();
    for start in [detected, given] {
        for method in Method::ALL {
            let Ok(ranking) = rank(&graph, &series, start, method) else {
                continue;
            };
            for candidate in &ranking {
                assert!(
                    !candidate.score.is_nan(),
                    "{method} ranked {} with a NaN score",
                    candidate.node
                );
            }
        }
    }
}

/// The topology file of `meshos topology`, with one observed call added as the command adds
/// the relations it finds in the store.
fn topology(text: &str) {
    let Ok(mut topology) = FleetTopology::from_json(text) else {
        return;
    };
    let model = Some("gpt-4o-mini");
    topology.observe_repeated(
        &Observation {
            agent: "support-bot".into(),
            tool: Some("web-search".into()),
            model: model.map(str::to_string),
            provider: provider_of(model, None),
            region: Some("aws:eu-west-1".into()),
        },
        3,
        1_800_000_000_000,
    );
    if let Ok(graph) = topology.causal_graph() {
        let _ = graph.to_json();
    }
    let _ = topology.cycles();
}
