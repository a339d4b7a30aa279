//! The ranking methods and the shared per-node statistics they start from.

use std::cmp::Ordering;
use std::collections::HashMap;

use statrs::distribution::{ContinuousCDF, Normal};

use crate::stats::{self, Robust};
use crate::{
    Candidate, CausalError, CausalGraph, Evidence, MIN_BASELINE_ROWS, Method, MetricSeries,
};

/// PageRank damping: probability of following an edge rather than teleporting back to the
/// anomaly-weighted personalisation vector.
const DAMPING: f64 = 0.85;

/// A parent whose anomaly (in z) is below this share of its child's is not a plausible sole
/// cause of it: it would take a 5× amplification in units of each metric's own noise.
const WEAK_PARENT_RATIO: f64 = 0.2;

/// Ranks every graph node as a candidate root cause, best first.
///
/// `anomaly_start`: rows with `timestamp < start` are the baseline, the rest the anomalous window;
/// with `None` the start is found by [`crate::detect_anomaly_start`] over the graph's columns.
/// Every graph node needs a metric column of the same name (else [`CausalError::MissingColumns`]);
/// columns not in the graph are ignored. Values must be finite (the CSV reader fills gaps; see
/// [`MetricSeries::fill_missing`]).
///
/// Every method starts from one change test per series (`stats::two_sample`), run on a node's
/// plain values (the *marginal* test) and on its residuals given its parents (the *residual*
/// test): the larger of a median-shift z and a log-σ-ratio z (σ = 1.4826·MAD), both divided by
/// √((1+ρ)/(1−ρ)) for the baseline's lag-1 autocorrelation ρ. Medians and MADs keep heavy-tailed
/// noise from faking changes; the scale part sees a variance fault whose mean stays put.
///
/// Methods (all share the per-node statistics in [`Evidence`]):
/// - **baro**: score = max over the window of |x − baseline median| / (IQR/1.349). Graph-free,
///   so on a propagating fault it tends to pick the loudest downstream symptom.
/// - **circa**: each node's mechanism is fitted on its parents over the baseline (ridge least
///   squares with intercept, additive and piecewise linear in each parent: the parent plus hinges
///   at its baseline quartiles, so tanh-like, threshold and convex links are followed; linear
///   only beyond six parents) and the residual test is run on the residuals of every row; score
///   = its z. A node moved only by its parents has residuals that do not change; the node where
///   the fault entered does not. Nodes without parents get the marginal test. Cycles: a node is
///   fitted on *all* its direct parents, including those in its own strongly connected
///   component; the test is a per-node conditional one and needs no topological order.
/// - **pagerank**: the anomalous subgraph is the nodes whose marginal test exceeds the
///   significance threshold (Bonferroni 1% over the nodes, at least z = 3), or the three most
///   anomalous nodes if none does. A random walk goes from each node to its anomalous parents
///   (effect → cause) with probability proportional to their marginal z, stays put at nodes with
///   no anomalous parent (so mass collects at the upstream end), and teleports with probability
///   0.15 to the personalisation vector ∝ marginal z. Score = stationary probability; nodes
///   outside the subgraph score 0 and follow in BARO order.
/// - **ensemble**: the PageRank walk gated by CIRCA's residuals, then an explanation test. At a
///   node with anomalous parents the walk stays with probability (residual z / marginal z)⁴
///   (capped at 1; scaled down when every anomalous parent moved less than a fifth as much) and
///   moves on to the parents with the rest: plain PageRank always hands a symptom's mass to its
///   anomalous parents, so a root whose equation changed loses to a barely-moved parent; plain
///   CIRCA over-scores a downstream symptom when its parent is observed with noise (the slope is
///   attenuated, so an amplified upstream shift leaves large residuals), and there the residual
///   share stays well below 1 and the fourth power sends most of the mass on. The walk runs over
///   the nodes whose marginal *or* residual test passes the threshold (a fault at a node driven
///   mostly by its parents can leave its plain values almost still). Score = the walk's
///   mass, plus 1 for every node whose residual test is itself significant at the anomaly
///   threshold: a node its parents explain never ranks above one they do not, so two or three
///   independent roots take the top places ahead of partly explained descendants. Between mutual
///   callers the walk only climbs toward more unexplained movement (see
///   [`orient_mutual_pairs`]). Nodes outside the anomalous subgraph score 0; ties are broken by
///   the marginal z, then by BARO's score.
pub fn rank(
    graph: &CausalGraph,
    series: &MetricSeries,
    anomaly_start: Option<i64>,
    method: Method,
) -> Result<Vec<Candidate>, CausalError> {
    let names: Vec<&str> = graph.node_names().collect();
    let cols = resolve_columns(&names, series)?;
    let start = match anomaly_start {
        Some(s) => s,
        None => crate::changepoint::detect_in(&series.timestamps, &cols).ok_or_else(|| {
            CausalError::NoChangePoint {
                message: format!(
                    "{} rows; need at least 11 and a metric that varies",
                    series.timestamps.len()
                ),
            }
        })?,
    };
    let split = series.timestamps.partition_point(|&t| t < start);
    let n = series.timestamps.len();
    if split < MIN_BASELINE_ROWS {
        return Err(CausalError::Window {
            start,
            message: format!("{split} baseline rows before it; need at least {MIN_BASELINE_ROWS}"),
        });
    }
    if split == n {
        return Err(CausalError::Window {
            start,
            message: format!(
                "no rows at or after it (last timestamp {})",
                series.timestamps[n - 1]
            ),
        });
    }

    let mut scratch = Vec::with_capacity(n);
    let marg: Vec<Marginal> = cols
        .iter()
        .map(|c| marginal(c, split, &mut scratch))
        .collect();
    let parents = graph.parent_lists();
    let tau = threshold(names.len());
    let anomalous: Vec<bool> = marg.iter().map(|m| m.z >= tau).collect();

    let resid: Option<Vec<Residual>> =
        matches!(method, Method::Circa | Method::Ensemble).then(|| {
            (0..names.len())
                .map(|j| residual(&cols, j, &parents[j], split, &marg[j], &mut scratch))
                .collect()
        });

    let scores: Vec<f64> = match method {
        Method::Baro => marg.iter().map(|m| m.robust_z).collect(),
        Method::Circa => resid.iter().flatten().map(|r| r.z).collect(),
        Method::PageRank => pagerank(&parents, &marg, &anomalous, None),
        Method::Ensemble => {
            let resid = resid.as_deref().unwrap_or_default();
            let walk_parents = orient_mutual_pairs(&parents, resid);
            let stay: Vec<f64> = (0..names.len())
                .map(|v| {
                    let strongest_parent = walk_parents[v]
                        .iter()
                        .filter(|&&u| anomalous[u])
                        .map(|&u| marg[u].z)
                        .fold(0.0, f64::max);
                    stay_probability(resid[v].z, marg[v].z, strongest_parent)
                })
                .collect();
            // The explanation test: a node whose own change survives its parents (residual test
            // significant at the same Bonferroni level as the anomaly screen) ranks above every
            // node its parents explain, whatever the walk's mass; within each tier the mass
            // orders. So two or three independent roots are not pushed down by a partly
            // explained, loud descendant that keeps some of the walk's mass.
            // A node whose own mechanism changed significantly is anomalous even when its plain
            // values hardly move (a noise or weight fault at a node most of whose variance comes
            // from its parents): it joins the walk's subgraph.
            let own: Vec<bool> = resid.iter().map(|r| r.z >= tau).collect();
            let screened: Vec<bool> = (0..names.len()).map(|v| anomalous[v] || own[v]).collect();
            let mass = pagerank(&walk_parents, &marg, &screened, Some(&stay));
            (0..names.len())
                .map(|v| mass[v] + if screened[v] && own[v] { 1.0 } else { 0.0 })
                .collect()
        }
    };

    let mut order: Vec<usize> = (0..names.len()).collect();
    order.sort_by(|&a, &b| {
        cmp_desc(scores[a], scores[b])
            .then_with(|| cmp_desc(marg[a].z, marg[b].z))
            .then_with(|| cmp_desc(marg[a].robust_z, marg[b].robust_z))
            .then_with(|| a.cmp(&b))
    });
    Ok(order
        .into_iter()
        .map(|j| {
            let m = &marg[j];
            let r = resid.as_ref().map(|r| &r[j]);
            Candidate {
                node: names[j].to_string(),
                score: scores[j],
                evidence: Evidence {
                    metric: names[j].to_string(),
                    baseline_rows: split,
                    window_rows: n - split,
                    anomaly_start: start,
                    baseline_median: m.robust.median,
                    baseline_mean: m.mean,
                    baseline_iqr: m.robust.iqr,
                    anomalous_value: m.anomalous_value,
                    window_median: m.window_median,
                    shift: m.window_median - m.robust.median,
                    robust_z: m.robust_z,
                    marginal_z: m.z,
                    marginal_p: m.p,
                    marginal_scale_z: m.scale_z,
                    residual_z: r.map(|r| r.z),
                    residual_shift: r.map(|r| r.shift),
                    residual_p: r.map(|r| r.p),
                    residual_scale_z: r.map(|r| r.scale_z),
                    anomalous_parents: parents[j]
                        .iter()
                        .filter(|&&p| anomalous[p])
                        .map(|&p| names[p].to_string())
                        .collect(),
                },
            }
        })
        .collect())
}

/// NaN-safe descending order (NaN cannot occur with finite input, but never panic on it).
fn cmp_desc(a: f64, b: f64) -> Ordering {
    b.total_cmp(&a)
}

/// z above which a node counts as anomalous: Bonferroni 1% (two-sided) over `n` nodes, at least 3.
fn threshold(n: usize) -> f64 {
    let alpha = 0.01 / (2.0 * n.max(1) as f64);
    Normal::new(0.0, 1.0)
        .map(|d| d.inverse_cdf(1.0 - alpha))
        .unwrap_or(3.0)
        .max(3.0)
}

fn resolve_columns<'a>(
    names: &[&str],
    series: &'a MetricSeries,
) -> Result<Vec<&'a [f64]>, CausalError> {
    let by_name: HashMap<&str, &[f64]> = series
        .columns
        .iter()
        .map(|(n, c)| (n.as_str(), c.as_slice()))
        .collect();
    let mut missing = Vec::new();
    let mut cols = Vec::with_capacity(names.len());
    for &name in names {
        match by_name.get(name) {
            Some(c) => cols.push(*c),
            None => missing.push(name.to_string()),
        }
    }
    if !missing.is_empty() {
        return Err(CausalError::MissingColumns { nodes: missing });
    }
    let n = series.timestamps.len();
    for (name, col) in names.iter().zip(&cols) {
        if col.len() != n {
            return Err(CausalError::Series {
                column: name.to_string(),
                message: format!("{} values for {n} timestamps", col.len()),
            });
        }
        if let Some(i) = col.iter().position(|v| !v.is_finite()) {
            return Err(CausalError::Series {
                column: name.to_string(),
                message: format!(
                    "non-finite value at row {i}; fill gaps first (MetricSeries::fill_missing)"
                ),
            });
        }
    }
    Ok(cols)
}

/// Graph-free statistics of one column.
struct Marginal {
    robust: Robust,
    mean: f64,
    shift_sigma: f64,
    /// Scale part of the change test (log σ ratio in standard errors).
    scale_z: f64,
    robust_z: f64,
    anomalous_value: f64,
    window_median: f64,
    z: f64,
    p: f64,
}

fn marginal(col: &[f64], split: usize, scratch: &mut Vec<f64>) -> Marginal {
    let (base, win) = col.split_at(split);
    let robust = stats::robust(base, scratch);
    let (mut robust_z, mut anomalous_value) = (0.0, win[0]);
    for &x in win {
        let d = (x - robust.median).abs() / robust.sigma;
        if d > robust_z {
            robust_z = d;
            anomalous_value = x;
        }
    }
    scratch.clear();
    scratch.extend_from_slice(win);
    let window_median = stats::quantile_select(scratch, 0.5);
    let mean = stats::mean(base);
    let change = stats::two_sample(col, split, scratch);
    let (z, p) = (change.z, change.p);
    Marginal {
        shift_sigma: change.shift,
        scale_z: change.z_scale,
        robust,
        mean,
        robust_z,
        anomalous_value,
        window_median,
        z,
        p,
    }
}

struct Residual {
    z: f64,
    shift: f64,
    p: f64,
    scale_z: f64,
}

fn residual(
    cols: &[&[f64]],
    j: usize,
    parents: &[usize],
    split: usize,
    marg: &Marginal,
    scratch: &mut Vec<f64>,
) -> Residual {
    if parents.is_empty() {
        // No regressors: the residual test is the marginal test.
        return Residual {
            z: marg.z,
            shift: marg.shift_sigma,
            p: marg.p,
            scale_z: marg.scale_z,
        };
    }
    let xs: Vec<&[f64]> = parents.iter().map(|&p| cols[p]).collect();
    let e = stats::mechanism_residuals(cols[j], &xs, split, true, scratch);
    let c = stats::two_sample(&e, split, scratch);
    Residual {
        z: c.z,
        shift: c.shift,
        p: c.p,
        scale_z: c.z_scale,
    }
}

/// The ensemble walk's parents: in a mutual pair (A is a parent of B and B of A) the walk only
/// climbs from one to the other toward more unexplained movement (residual z). Each of the pair
/// explains much of the other, so both residual shares are small and an unoriented walk would
/// pass the mass back and forth; the residuals still differ sharply (the cause keeps what the
/// effect cannot explain), and that difference orients the pair. Longer cycles are left as they
/// are: orienting every strongly connected component toward its largest residual traps the mass
/// there even when the component's anomaly entered from outside it.
fn orient_mutual_pairs(parents: &[Vec<usize>], resid: &[Residual]) -> Vec<Vec<usize>> {
    parents
        .iter()
        .enumerate()
        .map(|(v, ps)| {
            ps.iter()
                .copied()
                .filter(|&u| parents[u].binary_search(&v).is_err() || resid[u].z > resid[v].z)
                .collect()
        })
        .collect()
}

/// Probability that the ensemble's walk stays at a node whose parents moved too. Two pieces of
/// evidence say the movement is the node's own: the share of it (marginal z) its parents leave
/// unexplained (residual z), taken to the fourth power so that only a node most of whose movement
/// is its own keeps the mass; and parents too weak to have caused it (the strongest anomalous
/// parent moved less than a fifth as much, in z, as the node), for which moving on is scaled down.
fn stay_probability(residual_z: f64, marginal_z: f64, strongest_parent_z: f64) -> f64 {
    if marginal_z <= 0.0 {
        return 1.0;
    }
    let unexplained = (residual_z / marginal_z).clamp(0.0, 1.0).powi(4);
    let plausible_cause = (strongest_parent_z / (WEAK_PARENT_RATIO * marginal_z)).clamp(0.0, 1.0);
    1.0 - (1.0 - unexplained) * plausible_cause
}

/// Personalised PageRank from effects toward causes over the anomalous subgraph. `stay`: per
/// node, the probability of staying put instead of moving to anomalous parents (`None`: always
/// move when there is an anomalous parent).
fn pagerank(
    parents: &[Vec<usize>],
    marg: &[Marginal],
    anomalous: &[bool],
    stay: Option<&[f64]>,
) -> Vec<f64> {
    let n = marg.len();
    let mut in_sub: Vec<bool> = anomalous.to_vec();
    if !in_sub.iter().any(|&a| a) {
        let mut by_z: Vec<usize> = (0..n).collect();
        by_z.sort_by(|&a, &b| cmp_desc(marg[a].z, marg[b].z));
        for &j in by_z.iter().take(3) {
            in_sub[j] = true;
        }
    }
    // Weights are the marginal z (positive; a floor keeps a zero-z fallback node walkable).
    let w: Vec<f64> = (0..n)
        .map(|j| if in_sub[j] { marg[j].z.max(1e-6) } else { 0.0 })
        .collect();
    let total: f64 = w.iter().sum();
    let pers: Vec<f64> = w.iter().map(|x| x / total).collect();
    let sub_parents: Vec<Vec<usize>> = (0..n)
        .map(|j| {
            if in_sub[j] {
                parents[j].iter().copied().filter(|&p| in_sub[p]).collect()
            } else {
                Vec::new()
            }
        })
        .collect();
    let out_w: Vec<f64> = sub_parents
        .iter()
        .map(|ps| ps.iter().map(|&p| w[p]).sum())
        .collect();
    let mut r = pers.clone();
    let mut next = vec![0.0; n];
    for _ in 0..200 {
        for (x, p) in next.iter_mut().zip(&pers) {
            *x = (1.0 - DAMPING) * p;
        }
        for v in 0..n {
            if r[v] == 0.0 {
                continue;
            }
            if sub_parents[v].is_empty() {
                // No anomalous cause upstream: the walk stays here.
                next[v] += DAMPING * r[v];
            } else {
                let kept = stay.map_or(0.0, |s| s[v]);
                next[v] += DAMPING * r[v] * kept;
                let moved = DAMPING * r[v] * (1.0 - kept);
                for &u in &sub_parents[v] {
                    next[u] += moved * w[u] / out_w[v];
                }
            }
        }
        let delta: f64 = r.iter().zip(&next).map(|(a, b)| (a - b).abs()).sum();
        std::mem::swap(&mut r, &mut next);
        if delta < 1e-12 {
            break;
        }
    }
    r
}
