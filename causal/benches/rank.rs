//! Timing and a sanity accuracy check of every ranking method on synthetic cases built inline.
//!
//! `cargo bench -p meshos-causal --bench rank` (add `-- quick` for fewer cases).
//!
//! Cases: a random DAG (each node's parents drawn from earlier nodes, edge weights 0.6–1.6 with
//! random sign so faults amplify along most paths), linear structural equations with N(0,1) noise,
//! 500 baseline rows and 100 anomalous rows, one root cause with a shift (+3–6 σ of its noise),
//! a noise-weight fault (noise ×3–5) or a parent-weight fault (its incoming weights ×2–3 with sign
//! flipped on half), always on a node with at least one child. Scenarios: exact graph and start;
//! start 30 rows late, 30 / 60 rows early; 20% of edges removed from the graph given to the
//! methods; a nonlinear variant (each equation gains a bounded quadratic term).
//! This is the crate's own check; the benchmark against PyRCA/RCAEval lives elsewhere.

use std::hint::black_box;
use std::time::Instant;

use meshos_causal::{CausalGraph, Method, MetricSeries, rank};

struct Rng(u64);
impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E3779B97F4A7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58476D1CE4E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D049BB133111EB);
        z ^ (z >> 31)
    }
    fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.uniform()
    }
    fn normal(&mut self) -> f64 {
        let u1 = self.uniform().max(1e-300);
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
}

#[derive(Clone, Copy, Debug)]
enum Fault {
    Shift,
    Noise,
    ParentWeight,
}

struct Case {
    graph: CausalGraph,
    series: MetricSeries,
    start: i64,
    root: String,
}

const BASE: usize = 500;
const WIN: usize = 100;

fn make_case(rng: &mut Rng, n: usize, fault: Fault, drop_edges: f64, nonlinear: bool) -> Case {
    // parents[j] ⊂ 0..j, at least one parent for most non-first nodes.
    let mut parents: Vec<Vec<(usize, f64)>> = vec![Vec::new(); n];
    for (j, ps) in parents.iter_mut().enumerate().skip(1) {
        let k = if j < 3 {
            1
        } else {
            1 + (rng.uniform() * 2.0) as usize
        };
        for _ in 0..k {
            let p = (rng.uniform() * j as f64) as usize;
            if ps.iter().all(|&(q, _)| q != p) {
                let w = rng.range(0.6, 1.6) * if rng.uniform() < 0.3 { -1.0 } else { 1.0 };
                ps.push((p, w));
            }
        }
    }
    let has_child: Vec<bool> = (0..n)
        .map(|i| parents.iter().any(|ps| ps.iter().any(|&(p, _)| p == i)))
        .collect();
    let root = loop {
        let r = (rng.uniform() * n as f64) as usize;
        let ok = has_child[r] && (!matches!(fault, Fault::ParentWeight) || !parents[r].is_empty());
        if ok {
            break r;
        }
    };
    let rows = BASE + WIN;
    let mut cols = vec![vec![0.0; rows]; n];
    let shift = rng.range(3.0, 6.0);
    let noise_mult = rng.range(3.0, 5.0);
    let weight_mult = rng.range(2.0, 3.0) * if rng.uniform() < 0.5 { -1.0 } else { 1.0 };
    // Row by row: every node at time t reads its parents at the same t.
    #[allow(clippy::needless_range_loop)]
    for t in 0..rows {
        let faulty = t >= BASE;
        for j in 0..n {
            let mut e = rng.normal();
            let mut wm = 1.0;
            if faulty && j == root {
                match fault {
                    Fault::Shift => e += shift,
                    Fault::Noise => e *= noise_mult,
                    Fault::ParentWeight => wm = weight_mult,
                }
            }
            let v: f64 = parents[j]
                .iter()
                .map(|&(p, w)| wm * w * cols[p][t])
                .sum::<f64>();
            // The nonlinear variant adds a bounded quadratic term: linear regressions fit the
            // baseline well but extrapolate badly once a fault moves the parents far.
            let v = if nonlinear && !parents[j].is_empty() {
                v + 0.1 * v.clamp(-10.0, 10.0).powi(2)
            } else {
                v
            };
            cols[j][t] = v + e;
        }
    }
    let names: Vec<String> = (0..n).map(|i| format!("svc{i}_latency_ms")).collect();
    let mut edges = Vec::new();
    for (j, ps) in parents.iter().enumerate() {
        for &(p, _) in ps {
            if rng.uniform() >= drop_edges {
                edges.push((names[p].clone(), names[j].clone()));
            }
        }
    }
    let graph = CausalGraph::new(names.clone(), edges).expect("valid synthetic graph");
    let timestamps: Vec<i64> = (0..rows as i64).map(|t| 1_700_000_000 + t).collect();
    let start = timestamps[BASE];
    Case {
        graph,
        series: MetricSeries {
            timestamps,
            columns: names.iter().cloned().zip(cols).collect(),
        },
        start,
        root: names[root].clone(),
    }
}

fn main() {
    let quick = std::env::args().any(|a| a == "quick");
    let per_fault = if quick { 10 } else { 40 };

    // Timing: one 50-node, 600-row case per method, many repetitions.
    let mut rng = Rng(42);
    let case = make_case(&mut rng, 50, Fault::Shift, 0.0, false);
    println!("timing: 50 nodes, {} rows", BASE + WIN);
    for method in Method::ALL {
        let reps = if quick { 20 } else { 200 };
        let t0 = Instant::now();
        for _ in 0..reps {
            black_box(rank(&case.graph, &case.series, Some(case.start), method).expect("rank"));
        }
        let given = t0.elapsed().as_secs_f64() / reps as f64;
        let t0 = Instant::now();
        for _ in 0..reps {
            black_box(rank(&case.graph, &case.series, None, method).expect("rank"));
        }
        let detect = t0.elapsed().as_secs_f64() / reps as f64;
        println!(
            "  {:9} {:8.3} ms/case with start, {:8.3} ms/case detecting it",
            method.as_str(),
            given * 1e3,
            detect * 1e3
        );
    }

    // Accuracy sanity check.
    let scenarios: [(&str, i64, f64, bool); 6] = [
        ("exact", 0, 0.0, false),
        ("start +30 rows late", 30, 0.0, false),
        ("start -30 rows early", -30, 0.0, false),
        ("start -60 rows early", -60, 0.0, false),
        ("20% edges missing", 0, 0.2, false),
        ("nonlinear (quadratic)", 0, 0.0, true),
    ];
    for n in [20, 50] {
        for (label, offset, drop, nonlinear) in scenarios {
            let mut hits1 = [0usize; 4];
            let mut hits3 = [0usize; 4];
            let mut total = 0;
            let mut per_fault_hits = [[0usize; 4]; 3];
            for (fi, fault) in [Fault::Shift, Fault::Noise, Fault::ParentWeight]
                .into_iter()
                .enumerate()
            {
                let mut rng = Rng(1000 + fi as u64 * 7919 + n as u64);
                for _ in 0..per_fault {
                    let case = make_case(&mut rng, n, fault, drop, nonlinear);
                    total += 1;
                    for (mi, method) in Method::ALL.into_iter().enumerate() {
                        let r = rank(&case.graph, &case.series, Some(case.start + offset), method)
                            .expect("rank");
                        let pos = r.iter().position(|c| c.node == case.root);
                        if pos == Some(0) {
                            hits1[mi] += 1;
                            per_fault_hits[fi][mi] += 1;
                        }
                        if pos.is_some_and(|p| p < 3) {
                            hits3[mi] += 1;
                        }
                    }
                }
            }
            print!("{n:2} nodes, {label:22}");
            for (mi, method) in Method::ALL.into_iter().enumerate() {
                print!(
                    " {}: AC@1 {:.2} AC@3 {:.2} |",
                    method.as_str(),
                    hits1[mi] as f64 / total as f64,
                    hits3[mi] as f64 / total as f64
                );
            }
            println!();
            for (fi, name) in ["shift", "noise", "weight"].iter().enumerate() {
                print!("      {name:7}");
                for (mi, method) in Method::ALL.into_iter().enumerate() {
                    print!(
                        " {} {:.2}",
                        method.as_str(),
                        per_fault_hits[fi][mi] as f64 / per_fault as f64
                    );
                }
                println!();
            }
        }
    }
}
