//! Fault shapes beyond a propagating mean shift, which a user would notice if they regressed:
//! variance faults, several simultaneous roots, nonlinear (saturating, threshold) links, heavy
//! tails. Each case is a small structural equation model simulated inline, deterministic by seed.

use meshos_causal::{Candidate, CausalGraph, Method, MetricSeries, rank};

struct Rng(u64);
impl Rng {
    fn uniform(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E3779B97F4A7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58476D1CE4E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D049BB133111EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }
    fn normal(&mut self) -> f64 {
        let u1 = self.uniform().max(1e-300);
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
    /// Student-t with 2 degrees of freedom: infinite variance, the heaviest tail we test.
    fn t2(&mut self) -> f64 {
        let chi2 = self.normal().powi(2) + self.normal().powi(2);
        self.normal() / (chi2 / 2.0).sqrt().max(1e-9)
    }
}

#[derive(Clone, Copy)]
enum Link {
    Linear,
    /// 3·tanh(x): saturates, so a baseline-only linear fit is wrong far from the mean.
    Tanh,
    /// 0 below 0, then 3x: a threshold (a retry storm that only starts past a latency).
    Threshold,
}

#[derive(Clone, Copy)]
enum Fault {
    Shift(f64),
    NoiseTimes(f64),
}

struct Node {
    name: &'static str,
    parents: Vec<(usize, f64, Link)>,
    noise: f64,
    /// Measured with this much extra noise that does not propagate.
    measurement: f64,
    fault: Option<Fault>,
    heavy_tailed: bool,
}

fn node(name: &'static str, parents: Vec<(usize, f64, Link)>) -> Node {
    Node {
        name,
        parents,
        noise: 1.0,
        measurement: 0.0,
        fault: None,
        heavy_tailed: false,
    }
}

const T0: i64 = 1_800_000_000;
const BASE: usize = 400;
const WIN: usize = 150;

fn simulate(nodes: &[Node], seed: u64) -> (CausalGraph, MetricSeries) {
    let mut rng = Rng(seed);
    let rows = BASE + WIN;
    let mut truth: Vec<Vec<f64>> = vec![Vec::with_capacity(rows); nodes.len()];
    for t in 0..rows {
        for (j, n) in nodes.iter().enumerate() {
            let after = t >= BASE;
            let mut sd = n.noise;
            let mut v = 5.0;
            if let (true, Some(f)) = (after, n.fault) {
                match f {
                    Fault::Shift(d) => v += d * n.noise,
                    Fault::NoiseTimes(k) => sd *= k,
                }
            }
            v += sd
                * if n.heavy_tailed {
                    rng.t2()
                } else {
                    rng.normal()
                };
            for &(p, w, link) in &n.parents {
                let x = truth[p][t] - 5.0;
                v += w * match link {
                    Link::Linear => x,
                    Link::Tanh => 3.0 * (x / 3.0).tanh(),
                    Link::Threshold => 3.0 * x.max(0.0),
                };
            }
            truth[j].push(v);
        }
    }
    let cols = nodes
        .iter()
        .zip(truth)
        .map(|(n, col)| {
            let observed = col
                .into_iter()
                .map(|v| v + n.measurement * rng.normal())
                .collect();
            (n.name.to_string(), observed)
        })
        .collect();
    let edges = nodes
        .iter()
        .flat_map(|n| {
            n.parents
                .iter()
                .map(|&(p, _, _)| (nodes[p].name.to_string(), n.name.to_string()))
        })
        .collect();
    let names = nodes.iter().map(|n| n.name.to_string()).collect();
    let graph = CausalGraph::new(names, edges).expect("valid graph");
    let series = MetricSeries {
        timestamps: (0..rows as i64).map(|t| T0 + 15 * t).collect(),
        columns: cols,
    };
    (graph, series)
}

fn ranked(nodes: &[Node], seed: u64, m: Method) -> Vec<Candidate> {
    let (graph, series) = simulate(nodes, seed);
    rank(&graph, &series, Some(T0 + 15 * BASE as i64), m).expect("rank")
}

fn top(r: &[Candidate], k: usize) -> Vec<&str> {
    r.iter().take(k).map(|c| c.node.as_str()).collect()
}

/// region → tool → agent → agent2, weights 2: the tool's noise grows fivefold with its mean
/// unchanged, and its amplified callers' variance grows more in absolute terms.
fn variance_fault() -> Vec<Node> {
    let mut v = vec![
        node("region", vec![]),
        node("tool", vec![(0, 0.8, Link::Linear)]),
        node("agent", vec![(1, 2.0, Link::Linear)]),
        node("agent2", vec![(2, 2.0, Link::Linear)]),
        node("other", vec![(0, 1.0, Link::Linear)]),
    ];
    v[1].fault = Some(Fault::NoiseTimes(5.0));
    v
}

#[test]
fn a_noise_variance_root_is_found_not_its_amplified_callers() {
    for seed in [1, 2, 3] {
        for m in [Method::Ensemble, Method::Circa] {
            let r = ranked(&variance_fault(), seed, m);
            assert_eq!(r[0].node, "tool", "{m} seed {seed}: {:?}", top(&r, 5));
        }
        let r = ranked(&variance_fault(), seed, Method::Ensemble);
        let tool = &r[0].evidence;
        // It is the scale test that sees it: the median hardly moves.
        assert!(tool.marginal_scale_z > 10.0, "{tool:?}");
        assert!(tool.shift.abs() < 0.5, "{tool:?}");
    }
}

/// Two roots in separate subtrees plus a collider fed by both, amplified.
fn two_roots() -> Vec<Node> {
    let mut v = vec![
        node("r1", vec![]),
        node("a1", vec![(0, 2.5, Link::Linear)]),
        node("r2", vec![]),
        node("a2", vec![(2, 2.5, Link::Linear)]),
        node(
            "collider",
            vec![(1, 2.0, Link::Linear), (3, 2.0, Link::Linear)],
        ),
        node("quiet", vec![]),
    ];
    v[0].fault = Some(Fault::Shift(3.0));
    v[2].fault = Some(Fault::NoiseTimes(4.0));
    for n in &mut v {
        n.measurement = 0.5;
    }
    v
}

#[test]
fn two_independent_roots_both_rank_in_the_top_two() {
    for seed in [4, 5, 6] {
        let r = ranked(&two_roots(), seed, Method::Ensemble);
        let mut t = top(&r, 2);
        t.sort();
        assert_eq!(t, ["r1", "r2"], "seed {seed}: {:?}", top(&r, 6));
    }
}

#[test]
fn three_independent_roots_are_the_top_three() {
    let mut v = two_roots();
    v.push(node("r3", vec![]));
    v.push(node("a3", vec![(6, 3.0, Link::Linear)]));
    v.push(node("a3b", vec![(7, 2.0, Link::Linear)]));
    v[6].fault = Some(Fault::Shift(-2.5));
    for seed in [7, 8] {
        let r = ranked(&v, seed, Method::Ensemble);
        let mut t = top(&r, 3);
        t.sort();
        assert_eq!(t, ["r1", "r2", "r3"], "seed {seed}: {:?}", top(&r, 8));
    }
}

#[test]
fn a_symptom_behind_a_saturating_or_threshold_link_is_not_blamed() {
    for (link, seed) in [(Link::Tanh, 11), (Link::Threshold, 12), (Link::Tanh, 13)] {
        let mut v = vec![
            node("db", vec![]),
            node("api", vec![(0, 1.0, link)]),
            node("agent", vec![(1, 2.0, Link::Linear)]),
            node("unrelated", vec![]),
        ];
        v[0].fault = Some(Fault::Shift(2.5));
        for m in [Method::Ensemble, Method::Circa] {
            let r = ranked(&v, seed, m);
            assert_eq!(r[0].node, "db", "{m} seed {seed}: {:?}", top(&r, 4));
        }
    }
}

#[test]
fn heavy_tailed_noise_does_not_outrank_a_real_change() {
    // Ten independent services with t(2) noise (occasional huge spikes) and one with Gaussian
    // noise that shifts by 1 σ: a mean-and-variance test on raw values would flag the spikes.
    let mut v: Vec<Node> = ["s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9"]
        .into_iter()
        .map(|n| {
            let mut x = node(n, vec![]);
            x.heavy_tailed = true;
            x
        })
        .collect();
    let mut real = node("real", vec![]);
    real.fault = Some(Fault::Shift(1.0));
    v.push(real);
    for seed in [21, 22, 23] {
        for m in [Method::Ensemble, Method::Circa, Method::PageRank] {
            let r = ranked(&v, seed, m);
            assert_eq!(r[0].node, "real", "{m} seed {seed}: {:?}", top(&r, 4));
        }
    }
}

#[test]
fn a_noise_fault_hidden_in_a_node_driven_by_its_parent_is_found() {
    // tool = 3·region + 0.3·noise: the tool's own noise is 1% of its variance, so four times more
    // of it barely moves the tool's plain values (no marginal alarm), while its residual given
    // the region changes sharply. No measurement noise: the regression is exact.
    let mut v = vec![
        node("region", vec![]),
        node("tool", vec![(0, 3.0, Link::Linear)]),
        node("agent", vec![(1, 2.0, Link::Linear)]),
        node("other", vec![(0, 1.0, Link::Linear)]),
    ];
    v[1].noise = 0.3;
    v[1].fault = Some(Fault::NoiseTimes(4.0));
    for seed in [31, 32, 33] {
        for m in [Method::Ensemble, Method::Circa] {
            let r = ranked(&v, seed, m);
            assert_eq!(r[0].node, "tool", "{m} seed {seed}: {:?}", top(&r, 4));
        }
    }
}
