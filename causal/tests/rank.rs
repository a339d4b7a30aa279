//! Behaviour of the public API: ranking on propagating faults, cycles, and bad input.

use meshos_causal::{CausalError, CausalGraph, Method, MetricSeries, detect_anomaly_start, rank};

/// Deterministic roughly-normal noise (sum of four uniforms), no dependency.
struct Noise(u64);
impl Noise {
    fn next(&mut self) -> f64 {
        (0..4)
            .map(|_| {
                self.0 = self
                    .0
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((self.0 >> 11) as f64 / (1u64 << 53) as f64) - 0.5
            })
            .sum::<f64>()
            * 1.7
    }
}

const T0: i64 = 1_700_000_000;
const BASE: usize = 300;
const WIN: usize = 60;

/// a → b → c → d → e, each node = 2 × parent + noise, so a fault at `a` is amplified 16× at `e`.
/// The fault: `a` shifts by 4 σ from row BASE on.
fn chain() -> (CausalGraph, MetricSeries) {
    let names: Vec<String> = ["a", "b", "c", "d", "e"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let edges = names
        .windows(2)
        .map(|w| (w[0].clone(), w[1].clone()))
        .collect();
    let graph = CausalGraph::new(names.clone(), edges).expect("valid chain");
    let mut noise = Noise(11);
    let mut cols = vec![Vec::new(); 5];
    for t in 0..BASE + WIN {
        let mut parent = 0.0;
        for (j, col) in cols.iter_mut().enumerate() {
            let fault = if j == 0 && t >= BASE { 4.0 } else { 0.0 };
            let v = 2.0 * parent + noise.next() + fault + 10.0;
            col.push(v);
            parent = v - 10.0;
        }
    }
    let series = MetricSeries {
        timestamps: (0..(BASE + WIN) as i64).map(|t| T0 + 10 * t).collect(),
        columns: names.into_iter().zip(cols).collect(),
    };
    (graph, series)
}

fn start() -> i64 {
    T0 + 10 * BASE as i64
}

#[test]
fn graph_methods_find_the_root_of_an_amplified_chain_where_baro_picks_the_symptom() {
    let (graph, series) = chain();
    let top = |m| {
        rank(&graph, &series, Some(start()), m).expect("rank")[0]
            .node
            .clone()
    };
    assert_eq!(top(Method::Circa), "a");
    assert_eq!(top(Method::Ensemble), "a");
    assert_eq!(top(Method::PageRank), "a");
    // The graph-free score sees the leaf move most: this is why the graph is there.
    assert_ne!(top(Method::Baro), "a");

    let ranking = rank(&graph, &series, Some(start()), Method::Ensemble).expect("rank");
    assert_eq!(ranking.len(), 5, "every node is ranked");
    let a = &ranking[0].evidence;
    assert_eq!(a.metric, "a");
    assert_eq!((a.baseline_rows, a.window_rows), (BASE, WIN));
    assert!(
        (a.shift - 4.0).abs() < 1.0,
        "shift of a ≈ 4, got {}",
        a.shift
    );
    assert!(a.residual_z.is_some_and(|z| z > 10.0));
    assert!(a.residual_p.is_some_and(|p| p < 1e-6));
    assert!(a.anomalous_parents.is_empty());
    let b = ranking.iter().find(|c| c.node == "b").expect("b ranked");
    assert_eq!(b.evidence.anomalous_parents, vec!["a".to_string()]);
}

#[test]
fn the_anomaly_start_is_found_when_not_given() {
    let (graph, series) = chain();
    let found = detect_anomaly_start(&series).expect("a change point");
    assert!(
        (found - start()).abs() <= 30,
        "found {found}, true {}",
        start()
    );
    let ranking = rank(&graph, &series, None, Method::Ensemble).expect("rank");
    assert_eq!(ranking[0].node, "a");
    assert_eq!(ranking[0].evidence.anomaly_start, found);
}

#[test]
fn mutual_calls_do_not_crash_and_the_cause_still_wins() {
    // a ⇄ b in the graph (mutual calls) but data flows a → b → c; the fault is at a.
    let (_, series) = chain();
    let graph = CausalGraph::from_json(
        r#"{"nodes":["a","b","c","d","e"],
            "edges":[["a","b"],["b","a"],["b","c"],["c","d"],["d","e"],["e","c"]]}"#,
    )
    .expect("cyclic graph loads");
    assert_eq!(graph.cycles(), vec![vec!["a", "b"], vec!["c", "d", "e"]]);
    for m in Method::ALL {
        let r = rank(&graph, &series, Some(start()), m).expect("rank on a cyclic graph");
        assert_eq!(r.len(), 5);
        assert!(r.iter().all(|c| c.score.is_finite()), "{m}: finite scores");
    }
    let r = rank(&graph, &series, Some(start()), Method::Ensemble).expect("rank");
    assert_eq!(r[0].node, "a");
}

#[test]
fn bad_graph_json_names_the_field_or_edge() {
    let err = |t: &str| {
        CausalGraph::from_json(t)
            .expect_err("must fail")
            .to_string()
    };
    assert!(err(r#"{"nodes":["a"],"edgs":[]}"#).contains("unknown field `edgs`"));
    assert!(err(r#"{"edges":[]}"#).contains("missing field `nodes`"));
    let e = err(r#"{"nodes":["a","b"],"edges":[["a","b"],["a","x"]]}"#);
    assert!(e.contains("edges[1]") && e.contains("effect `x`"), "{e}");
    let e = err(r#"{"nodes":["a","a"]}"#);
    assert!(e.contains("nodes[1]") && e.contains("duplicate"), "{e}");
    let e = err(r#"{"nodes":["a"],"edges":[["a","a"]]}"#);
    assert!(e.contains("edges[0]") && e.contains("self-loop"), "{e}");
    let e = err(r#"{"nodes":["a"],"edges":[["a","b","c"]]}"#);
    assert!(e.contains("line 1"), "{e}");
}

#[test]
fn bad_csv_names_line_and_column() {
    let err = |t: &str| {
        MetricSeries::from_csv(t)
            .expect_err("must fail")
            .to_string()
    };
    let e = err("time,a\n1,2\n");
    assert!(e.contains("line 1") && e.contains("timestamp"), "{e}");
    let e = err("timestamp,a,b\n1,2,3\n2,x,4\n");
    assert!(
        e.contains("line 3") && e.contains("column `a`") && e.contains("not a number"),
        "{e}"
    );
    let e = err("timestamp,a\n1,2\n2,3,4\n");
    assert!(e.contains("line 3") && e.contains("3 fields"), "{e}");
    let e = err("timestamp,a\n2,1\n1,1\n");
    assert!(e.contains("line 3") && e.contains("increasing"), "{e}");
    let e = err("timestamp,a\n1,inf\n");
    assert!(e.contains("line 2") && e.contains("not finite"), "{e}");
    let e = err("timestamp,a\n1,\n2,NaN\n");
    assert!(
        e.contains("column `a`") && e.contains("no finite value"),
        "{e}"
    );
}

#[test]
fn csv_gaps_are_filled_forward_then_backward() {
    let s =
        MetricSeries::from_csv("\"timestamp\", a ,b\r\n1,,5\r\n2,3,\r\n\r\n3,NaN,7\r\n4.0,4,8\r\n")
            .expect("parses");
    assert_eq!(s.timestamps, vec![1, 2, 3, 4]);
    assert_eq!(s.column("a"), Some(&[3.0, 3.0, 3.0, 4.0][..]));
    assert_eq!(s.column("b"), Some(&[5.0, 5.0, 7.0, 8.0][..]));
}

#[test]
fn a_graph_node_without_a_column_is_a_clear_error() {
    let (_, series) = chain();
    let graph = CausalGraph::new(
        vec!["a".into(), "b".into(), "tool_x_errors".into()],
        vec![("a".into(), "b".into())],
    )
    .expect("valid graph");
    let e = rank(&graph, &series, Some(start()), Method::Circa).expect_err("must fail");
    assert_eq!(
        e,
        CausalError::MissingColumns {
            nodes: vec!["tool_x_errors".into()]
        }
    );
    assert!(e.to_string().contains("tool_x_errors"));
}

#[test]
fn windows_without_enough_data_are_rejected() {
    let (graph, series) = chain();
    let e = rank(&graph, &series, Some(T0 + 10), Method::Baro).expect_err("1 baseline row");
    assert!(e.to_string().contains("baseline rows"), "{e}");
    let e = rank(&graph, &series, Some(T0 + 10_000_000), Method::Baro).expect_err("empty window");
    assert!(e.to_string().contains("no rows at or after"), "{e}");
}

#[test]
fn method_names_round_trip() {
    for m in Method::ALL {
        assert_eq!(m.as_str().parse::<Method>(), Ok(m));
    }
    assert!(
        "zscore"
            .parse::<Method>()
            .is_err_and(|e| e.to_string().contains("baro, circa"))
    );
}

#[test]
fn candidates_serialize_with_node_score_evidence() {
    let (graph, series) = chain();
    let r = rank(&graph, &series, Some(start()), Method::Baro).expect("rank");
    let v = serde_json::to_value(&r[0]).expect("serializes");
    assert!(v["node"].is_string() && v["score"].is_number());
    assert!(v["evidence"]["robust_z"].is_number());
    assert!(
        v["evidence"]["residual_z"].is_null(),
        "baro does not regress"
    );
}
