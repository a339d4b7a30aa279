//! Ranks benchmark case directories in process (no CLI start-up), for quick iteration on the
//! methods: `cargo run --release -p meshos-causal --example rank_cases -- GRAPH_FILE METHOD,... < dirs`
//! reads case directories (bench/rca/generate.py layout) one per line on stdin and prints one JSON
//! line per case and method: the case, the method, the top 5 and the ranking time in seconds.
//! The anomaly start is read from the case's truth.json (as the benchmark harness passes it to
//! `meshos diagnose`); the roots in it are not read.

use std::io::BufRead;
use std::time::Instant;

use meshos_causal::{CausalGraph, Method, MetricSeries, rank};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let graph_file = args.get(1).map_or("graph.json", String::as_str);
    let methods: Vec<Method> = args
        .get(2)
        .map_or("ensemble", String::as_str)
        .split(',')
        .filter_map(|m| m.parse().ok())
        .collect();
    for line in std::io::stdin().lock().lines().map_while(Result::ok) {
        let dir = line.trim();
        if dir.is_empty() {
            continue;
        }
        let read = |f: &str| std::fs::read_to_string(format!("{dir}/{f}")).unwrap_or_default();
        let truth: serde_json::Value =
            serde_json::from_str(&read("truth.json")).unwrap_or_default();
        let start = truth["anomaly_start"].as_i64();
        let (graph, series) = match (
            CausalGraph::from_json(&read(graph_file)),
            MetricSeries::from_csv(&read("metrics.csv")),
        ) {
            (Ok(g), Ok(s)) => (g, s),
            (g, s) => {
                eprintln!("{dir}: {:?} {:?}", g.err(), s.err());
                continue;
            }
        };
        for &m in &methods {
            let t0 = Instant::now();
            let out = rank(&graph, &series, start, m);
            let secs = t0.elapsed().as_secs_f64();
            match out {
                Ok(r) => {
                    let top: Vec<&str> = r.iter().take(5).map(|c| c.node.as_str()).collect();
                    if args.get(3).is_some_and(|a| a == "evidence") {
                        for c in r.iter().take(5) {
                            let e = &c.evidence;
                            eprintln!(
                                "  {} score={:.3} mz={:.1} msz={:.1} rz={:.1} rsz={:.1} anomalous_parents={:?}",
                                c.node,
                                c.score,
                                e.marginal_z,
                                e.marginal_scale_z,
                                e.residual_z.unwrap_or(f64::NAN),
                                e.residual_scale_z.unwrap_or(f64::NAN),
                                e.anomalous_parents
                            );
                        }
                    }
                    println!(
                        "{}",
                        serde_json::json!({"dir": dir, "method": m.as_str(), "top5": top, "secs": secs})
                    );
                }
                Err(e) => eprintln!("{dir} {m}: {e}"),
            }
        }
    }
}
