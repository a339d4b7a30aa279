//! Paired comparison of two runs of a suite on the same items: did the candidate get worse than
//! the baseline, by how much, and could this dataset have seen it?
//!
//! Items are matched by id; items in only one run are listed, not compared. Per scorer:
//! - pass/fail: McNemar's exact test (a two-sided binomial test at ½ on the discordant pairs,
//!   exact p-value), both pass rates with Wilson intervals, their difference with Agresti and
//!   Min's interval for paired proportions, and the minimum detectable difference.
//! - values, when they say more than pass/fail (judge scores, latency, cost, numeric error): the
//!   Wilcoxon signed-rank test exactly as `scipy.stats.wilcoxon` with its defaults (see
//!   [`wilcoxon_signed_rank`]), a seeded paired bootstrap percentile interval and a t interval
//!   of the mean difference, the matched-pairs rank-biserial correlation and Cohen's d_z as
//!   effect sizes, and the minimum detectable mean difference.
//!
//! A scorer *regressed* when one of its tests is significant at α after Holm's correction over
//! all tests in the comparison, in the worse direction (lower pass rate; values lower, or higher
//! for scorers where lower is better). The comparison regressed when any scorer did.
//!
//! Every p-value here is checked against SciPy in `tests/stats_scipy.rs` (reference numbers from
//! `tests/scipy_reference.py`).

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, Normal, StudentsT};
use statrs::function::beta::beta_reg;
use statrs::function::factorial::ln_binomial;

use crate::rng::SeededRng;
use crate::scorers::ItemScores;

/// Why statistics could not be computed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StatsError {
    #[error("{what} is not a finite number")]
    NotFinite { what: String },
    #[error("item `{item}` appears twice in the {run} run")]
    DuplicateItem { run: &'static str, item: String },
    #[error("item `{item}` has two scores named `{scorer}` in the {run} run")]
    DuplicateScore {
        run: &'static str,
        item: String,
        scorer: String,
    },
    #[error("{0}")]
    BadOption(String),
}

/// A two-sided interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    pub low: f64,
    pub high: f64,
}

impl Interval {
    pub fn contains(&self, x: f64) -> bool {
        self.low <= x && x <= self.high
    }
}

fn standard_normal() -> Normal {
    // Mean 0 and sd 1 are valid parameters; statrs only refuses NaN or sd <= 0.
    Normal::standard()
}

/// The standard normal quantile.
pub fn normal_quantile(p: f64) -> f64 {
    standard_normal().inverse_cdf(p)
}

/// Inverts an increasing CDF on `[lo, hi]` by bisection to machine precision; used where
/// statrs's own inverses are less accurate than the tests against SciPy require.
fn invert(cdf: impl Fn(f64) -> f64, target: f64, mut lo: f64, mut hi: f64) -> f64 {
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if mid <= lo || mid >= hi {
            break;
        }
        if cdf(mid) < target {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

// ---------------------------------------------------------------------------------------------
// McNemar
// ---------------------------------------------------------------------------------------------

/// McNemar's exact test on the discordant pairs: `b` items the baseline passed and the
/// candidate failed, `c` the other way round. The two-sided p-value of a binomial test of `b`
/// successes in `b + c` trials at ½ (`scipy.stats.binomtest(b, b + c).pvalue`); 1 when there
/// are no discordant pairs.
pub fn mcnemar_exact(b: u64, c: u64) -> f64 {
    let n = b + c;
    let k = b.min(c);
    if n == 0 || 2 * k == n {
        return 1.0;
    }
    // P(X <= k) for X ~ Bin(n, ½), summed from the largest term down: pmf(i-1) = pmf(i)·i/(n-i+1).
    let mut term = (ln_binomial(n, k) - n as f64 * std::f64::consts::LN_2).exp();
    let mut tail = 0.0;
    let mut i = k;
    loop {
        tail += term;
        if i == 0 || term < tail * 1e-17 {
            break;
        }
        term *= i as f64 / (n - i + 1) as f64;
        i -= 1;
    }
    (2.0 * tail).min(1.0)
}

// ---------------------------------------------------------------------------------------------
// Wilcoxon signed-rank
// ---------------------------------------------------------------------------------------------

/// How a Wilcoxon p-value was computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WilcoxonMethod {
    /// The exact null distribution (no ties, no zero differences, n ≤ 50).
    Exact,
    /// All 2^n sign assignments with average ranks (ties or zeros, n ≤ 13): SciPy's
    /// permutation test, which is exhaustive and so deterministic at that size.
    ExactWithTies,
    /// The normal approximation with the tie correction of the variance (and the continuity
    /// correction when asked for).
    Normal,
    /// No non-zero difference: nothing to test, p = 1.
    NoDifferences,
}

impl WilcoxonMethod {
    /// For people: `exact`, `exact with ties`, `normal approximation`, `no differences`.
    pub fn label(self) -> &'static str {
        match self {
            WilcoxonMethod::Exact => "exact",
            WilcoxonMethod::ExactWithTies => "exact with ties",
            WilcoxonMethod::Normal => "normal approximation",
            WilcoxonMethod::NoDifferences => "no differences",
        }
    }
}

/// The Wilcoxon signed-rank test of paired differences against a zero median shift.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WilcoxonResult {
    /// Pairs, zero differences included.
    pub n: usize,
    pub zeros: usize,
    /// Rank sums of the positive and negative differences (zeros dropped, ties averaged).
    pub r_plus: f64,
    pub r_minus: f64,
    /// min(r_plus, r_minus): SciPy's two-sided statistic.
    pub statistic: f64,
    pub p_value: f64,
    pub method: WilcoxonMethod,
    /// The z statistic of the normal approximation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub z: Option<f64>,
    pub continuity_correction: bool,
}

/// Average ranks (1-based) of `values` and the sizes of their tie groups.
fn average_ranks(values: &[f64]) -> (Vec<f64>, Vec<usize>) {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    let mut ranks = vec![0.0; values.len()];
    let mut groups = Vec::new();
    let mut i = 0;
    while i < order.len() {
        let mut j = i + 1;
        while j < order.len() && values[order[j]] == values[order[i]] {
            j += 1;
        }
        // Positions i..j (0-based) share the average of ranks i+1..=j.
        let rank = (i + 1 + j) as f64 / 2.0;
        for &k in &order[i..j] {
            ranks[k] = rank;
        }
        groups.push(j - i);
        i = j;
    }
    (ranks, groups)
}

/// The Wilcoxon signed-rank test on `differences` (candidate − baseline), two-sided, matching
/// `scipy.stats.wilcoxon(differences)` with its defaults — `zero_method="wilcox"` (zero
/// differences are dropped from the ranking), `correction=False`, `method="auto"`:
/// - n ≤ 50 (counting zeros), no ties and no zeros: the exact distribution;
/// - n ≤ 13 with ties or zeros: exact over all 2^n sign assignments (SciPy's permutation test);
/// - otherwise: the normal approximation with the tie-corrected variance.
///
/// `continuity_correction: true` is SciPy's `correction=True` (normal approximation only).
/// One difference from SciPy: when every difference is zero SciPy gives NaN (n > 13) and this
/// gives p = 1 with [`WilcoxonMethod::NoDifferences`].
pub fn wilcoxon_signed_rank(
    differences: &[f64],
    continuity_correction: bool,
) -> Result<WilcoxonResult, StatsError> {
    if let Some(i) = differences.iter().position(|d| !d.is_finite()) {
        return Err(StatsError::NotFinite {
            what: format!("difference {i}"),
        });
    }
    let n = differences.len();
    let nonzero: Vec<f64> = differences.iter().copied().filter(|d| *d != 0.0).collect();
    let zeros = n - nonzero.len();
    let magnitudes: Vec<f64> = nonzero.iter().map(|d| d.abs()).collect();
    let (ranks, groups) = average_ranks(&magnitudes);
    let r_plus: f64 = nonzero
        .iter()
        .zip(&ranks)
        .filter(|(d, _)| **d > 0.0)
        .map(|(_, r)| r)
        .sum();
    let r_minus: f64 = nonzero
        .iter()
        .zip(&ranks)
        .filter(|(d, _)| **d < 0.0)
        .map(|(_, r)| r)
        .sum();
    let mut result = WilcoxonResult {
        n,
        zeros,
        r_plus,
        r_minus,
        statistic: r_plus.min(r_minus),
        p_value: 1.0,
        method: WilcoxonMethod::NoDifferences,
        z: None,
        continuity_correction,
    };
    if nonzero.is_empty() {
        return Ok(result);
    }
    let ties = groups.iter().any(|&g| g > 1);
    let method = if n > 50 {
        WilcoxonMethod::Normal
    } else if !ties && zeros == 0 {
        WilcoxonMethod::Exact
    } else if n <= 13 {
        WilcoxonMethod::ExactWithTies
    } else {
        WilcoxonMethod::Normal
    };
    result.method = method;
    if method == WilcoxonMethod::Normal {
        let count = nonzero.len() as f64;
        let mean = count * (count + 1.0) / 4.0;
        let tie_term: f64 = groups.iter().map(|&t| (t * t * t - t) as f64).sum();
        let se = ((count * (count + 1.0) * (2.0 * count + 1.0) - tie_term / 2.0) / 24.0).sqrt();
        let mut z = (r_plus - mean) / se;
        if continuity_correction {
            z -= z.signum() * 0.5 / se;
        }
        result.z = Some(z);
        result.p_value = (2.0 * standard_normal().cdf(-z.abs())).min(1.0);
    } else {
        result.p_value = exact_signed_rank_p(&ranks, r_plus);
    }
    Ok(result)
}

/// The two-sided p-value of R+ under the exact null (each rank's sign + or − with probability
/// ½), computed on doubled ranks so that average ranks (x.5) stay integers: 2·min(P(T ≤ t),
/// P(T ≥ t)), at most 1.
fn exact_signed_rank_p(ranks: &[f64], r_plus: f64) -> f64 {
    let doubled: Vec<usize> = ranks.iter().map(|r| (2.0 * r).round() as usize).collect();
    let total: usize = doubled.iter().sum();
    let mut dist = vec![0.0f64; total + 1];
    dist[0] = 1.0;
    let mut reach = 0;
    for &r in &doubled {
        reach += r;
        for s in (0..=reach).rev() {
            let with = if s >= r { dist[s - r] } else { 0.0 };
            dist[s] = 0.5 * (dist[s] + with);
        }
    }
    let observed = (2.0 * r_plus).round() as usize;
    let less: f64 = dist[..=observed.min(total)].iter().sum();
    let greater: f64 = dist[observed.min(total + 1)..].iter().sum();
    (2.0 * less.min(greater)).min(1.0)
}

// ---------------------------------------------------------------------------------------------
// Intervals, effect sizes, detectable effects
// ---------------------------------------------------------------------------------------------

/// The Wilson score interval of a pass rate `passed / n` (`None` for n = 0); matches
/// `scipy.stats.binomtest(k, n).proportion_ci(method="wilson")`.
pub fn wilson_interval(passed: u64, n: u64, confidence: f64) -> Option<Interval> {
    if n == 0 || passed > n {
        return None;
    }
    let z = normal_quantile(1.0 - (1.0 - confidence) / 2.0);
    let (k, nf) = (passed as f64, n as f64);
    let p = k / nf;
    let denom = 2.0 * (nf + z * z);
    let center = (2.0 * nf * p + z * z) / denom;
    let delta = z * (z * z + 4.0 * nf * p * (1.0 - p)).sqrt() / denom;
    Some(Interval {
        low: if passed == 0 {
            0.0
        } else {
            (center - delta).max(0.0)
        },
        high: if passed == n {
            1.0
        } else {
            (center + delta).min(1.0)
        },
    })
}

/// The exact (Clopper–Pearson) interval of a pass rate (`None` for n = 0); matches
/// `proportion_ci(method="exact")`.
pub fn clopper_pearson_interval(passed: u64, n: u64, confidence: f64) -> Option<Interval> {
    if n == 0 || passed > n {
        return None;
    }
    let alpha = 1.0 - confidence;
    let (k, nf) = (passed as f64, n as f64);
    let beta_quantile = |a: f64, b: f64, q: f64| invert(|x| beta_reg(a, b, x), q, 0.0, 1.0);
    Some(Interval {
        low: if passed == 0 {
            0.0
        } else {
            beta_quantile(k, nf - k + 1.0, alpha / 2.0)
        },
        high: if passed == n {
            1.0
        } else {
            beta_quantile(k + 1.0, nf - k, 1.0 - alpha / 2.0)
        },
    })
}

fn mean(xs: &[f64]) -> f64 {
    xs.iter().sum::<f64>() / xs.len() as f64
}

/// Sample standard deviation (n − 1).
fn sample_sd(xs: &[f64]) -> Option<f64> {
    if xs.len() < 2 {
        return None;
    }
    let m = mean(xs);
    let ss: f64 = xs.iter().map(|x| (x - m) * (x - m)).sum();
    Some((ss / (xs.len() - 1) as f64).sqrt())
}

/// Student's t quantile with `df` degrees of freedom.
fn t_quantile(p: f64, df: f64) -> Option<f64> {
    let t = StudentsT::new(0.0, 1.0, df).ok()?;
    // The bracket covers df = 1 at p = 0.9995 (636.6); bisection to machine precision.
    Some(invert(|x| t.cdf(x), p, -1e4, 1e4))
}

/// The t interval of the mean of paired differences (n ≥ 2), as
/// `scipy.stats.ttest_1samp(d, 0).confidence_interval()`.
pub fn mean_difference_t_interval(differences: &[f64], confidence: f64) -> Option<Interval> {
    let sd = sample_sd(differences)?;
    let n = differences.len() as f64;
    let m = mean(differences);
    let t = t_quantile(1.0 - (1.0 - confidence) / 2.0, n - 1.0)?;
    let half = t * sd / n.sqrt();
    Some(Interval {
        low: m - half,
        high: m + half,
    })
}

/// A seeded paired bootstrap of the mean difference.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BootstrapResult {
    pub mean: f64,
    /// The percentile interval (linear interpolation between order statistics, as NumPy's
    /// default quantile).
    pub interval: Interval,
    pub resamples: usize,
    pub seed: u64,
}

/// Resamples the pairs (their differences) with replacement `resamples` times with
/// [`SeededRng`] seeded by `seed`: the same inputs and seed give the same interval in every
/// build. `None` without differences or resamples.
pub fn paired_bootstrap(
    differences: &[f64],
    resamples: usize,
    seed: u64,
    confidence: f64,
) -> Option<BootstrapResult> {
    if differences.is_empty() || resamples == 0 {
        return None;
    }
    let n = differences.len();
    let mut rng = SeededRng::new(seed);
    let mut means: Vec<f64> = (0..resamples)
        .map(|_| {
            let total: f64 = (0..n)
                .map(|_| differences[rng.below(n as u64) as usize])
                .sum();
            total / n as f64
        })
        .collect();
    means.sort_by(f64::total_cmp);
    let alpha = 1.0 - confidence;
    Some(BootstrapResult {
        mean: mean(differences),
        interval: Interval {
            low: percentile(&means, alpha / 2.0),
            high: percentile(&means, 1.0 - alpha / 2.0),
        },
        resamples,
        seed,
    })
}

/// The q-quantile of sorted values with linear interpolation (NumPy's default).
fn percentile(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    sorted[lo] + (pos - lo as f64) * (sorted[hi] - sorted[lo])
}

/// The four cells of a paired pass/fail table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairedCounts {
    pub both_passed: u64,
    /// Passed in the baseline, failed in the candidate: regressions.
    pub baseline_only: u64,
    /// Failed in the baseline, passed in the candidate: fixes.
    pub candidate_only: u64,
    pub both_failed: u64,
}

impl PairedCounts {
    pub fn n(&self) -> u64 {
        self.both_passed + self.baseline_only + self.candidate_only + self.both_failed
    }
    pub fn baseline_passed(&self) -> u64 {
        self.both_passed + self.baseline_only
    }
    pub fn candidate_passed(&self) -> u64 {
        self.both_passed + self.candidate_only
    }
}

/// The interval of candidate pass rate − baseline pass rate on paired data: Agresti and Min's
/// (2005) adjusted Wald interval, the Wald interval after adding ½ to each of the four cells.
/// Chosen over the plain Wald interval (zero width with no discordant pairs, poor coverage near
/// 0 and 1) and over Newcombe's hybrid score interval (also zero width when the runs agree on
/// every item and the pass rate is ½); its coverage is close to nominal even for small n.
pub fn paired_difference_interval(counts: PairedCounts, confidence: f64) -> Option<Interval> {
    if counts.n() == 0 {
        return None;
    }
    let z = normal_quantile(1.0 - (1.0 - confidence) / 2.0);
    let b = counts.baseline_only as f64 + 0.5;
    let c = counts.candidate_only as f64 + 0.5;
    let n = counts.n() as f64 + 2.0;
    let theta = (c - b) / n;
    let variance = ((b + c) - (c - b) * (c - b) / n) / (n * n);
    let half = z * variance.max(0.0).sqrt();
    Some(Interval {
        low: (theta - half).max(-1.0),
        high: (theta + half).min(1.0),
    })
}

/// The matched-pairs rank-biserial correlation (Kerby 2014): (R+ − R−)/(R+ + R−) over the
/// non-zero differences, in −1..1; 0 when every difference is zero.
pub fn rank_biserial(w: &WilcoxonResult) -> f64 {
    let total = w.r_plus + w.r_minus;
    if total == 0.0 {
        0.0
    } else {
        (w.r_plus - w.r_minus) / total
    }
}

/// Cohen's d_z: the mean difference over the standard deviation of the differences (`None`
/// for fewer than two pairs or no spread).
pub fn cohens_dz(differences: &[f64]) -> Option<f64> {
    let sd = sample_sd(differences)?;
    (sd > 0.0).then(|| mean(differences) / sd)
}

/// The smallest difference in pass rate a two-sided McNemar test at `alpha` detects with
/// probability `power` on `n` pairs whose share of discordant pairs is `discordant_rate`
/// (Connor 1987's normal approximation: n = (z_α/2·√ψ + z_β·√(ψ − δ²))² / δ²). `None` when
/// even δ = ψ (every discordant pair in one direction) is out of reach, or ψ = 0.
pub fn mde_paired_proportions(n: u64, discordant_rate: f64, alpha: f64, power: f64) -> Option<f64> {
    let psi = discordant_rate;
    if n == 0 || !(psi > 0.0 && psi <= 1.0) {
        return None;
    }
    let za = normal_quantile(1.0 - alpha / 2.0);
    let zb = normal_quantile(power);
    let root_n = (n as f64).sqrt();
    // Decreasing in δ on (0, ψ]: how many standard errors δ spans at this n.
    let needed =
        |delta: f64| (za * psi.sqrt() + zb * (psi - delta * delta).max(0.0).sqrt()) / delta;
    if needed(psi) > root_n {
        return None;
    }
    Some(invert(|delta| -needed(delta), -root_n, 0.0, psi))
}

/// The smallest mean difference a two-sided paired test at `alpha` detects with probability
/// `power` on `n` pairs whose differences have standard deviation `sd` (normal approximation:
/// (z_α/2 + z_β)·sd/√n; the Wilcoxon test needs about 5% more pairs for normal data).
pub fn mde_mean_difference(n: usize, sd: f64, alpha: f64, power: f64) -> Option<f64> {
    if n == 0 || !sd.is_finite() {
        return None;
    }
    let z = normal_quantile(1.0 - alpha / 2.0) + normal_quantile(power);
    Some(z * sd / (n as f64).sqrt())
}

/// Holm's step-down adjustment of p-values (each at most 1, order kept).
pub fn holm_adjust(p_values: &[f64]) -> Vec<f64> {
    let m = p_values.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&a, &b| p_values[a].total_cmp(&p_values[b]));
    let mut adjusted = vec![0.0; m];
    let mut running: f64 = 0.0;
    for (rank, &i) in order.iter().enumerate() {
        running = running.max(((m - rank) as f64 * p_values[i]).min(1.0));
        adjusted[i] = running;
    }
    adjusted
}

// ---------------------------------------------------------------------------------------------
// Comparing two runs
// ---------------------------------------------------------------------------------------------

/// Multiple-testing adjustment across all tests of a comparison.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Adjustment {
    #[default]
    Holm,
    None,
}

/// How to compare.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompareOptions {
    /// Significance level of the regression decision.
    pub alpha: f64,
    /// Power for the minimum detectable effect.
    pub power: f64,
    /// Level of the intervals.
    pub confidence: f64,
    pub bootstrap_resamples: usize,
    pub seed: u64,
    /// Scorers whose smaller values are better (`Suite::lower_is_better`).
    pub lower_is_better: Vec<String>,
    /// Per scorer, the smallest change of the mean value that counts as a regression or an
    /// improvement when its test is significant (`Suite::compare_options`: 5% of a latency or
    /// cost limit). A few milliseconds more on a 3-second limit can be significant over many
    /// pairs and still mean nothing; absent, any significant change counts.
    #[serde(default)]
    pub min_value_change: std::collections::BTreeMap<String, f64>,
    /// SciPy's `correction` of the Wilcoxon normal approximation (default false, as SciPy).
    pub continuity_correction: bool,
    pub adjustment: Adjustment,
}

impl Default for CompareOptions {
    fn default() -> Self {
        CompareOptions {
            alpha: 0.05,
            power: 0.8,
            confidence: 0.95,
            bootstrap_resamples: 2000,
            seed: 0,
            lower_is_better: Vec::new(),
            min_value_change: std::collections::BTreeMap::new(),
            continuity_correction: false,
            adjustment: Adjustment::Holm,
        }
    }
}

/// Which items the two runs share.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemPairing {
    pub paired: usize,
    pub only_in_baseline: Vec<String>,
    pub only_in_candidate: Vec<String>,
}

/// Pass/fail of one scorer, baseline against candidate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PassComparison {
    pub counts: PairedCounts,
    pub baseline_rate: f64,
    pub baseline_interval: Option<Interval>,
    pub candidate_rate: f64,
    pub candidate_interval: Option<Interval>,
    /// Candidate pass rate − baseline pass rate.
    pub difference: f64,
    pub difference_interval: Option<Interval>,
    /// McNemar's exact test.
    pub p_value: f64,
    pub p_adjusted: f64,
    /// The smallest pass-rate difference this many pairs detects (α, power) at the observed
    /// share of discordant pairs; `None` when there are none or it is out of reach.
    pub mde: Option<f64>,
}

/// Values of one scorer, baseline against candidate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValueComparison {
    pub higher_is_better: bool,
    pub baseline_mean: f64,
    pub candidate_mean: f64,
    /// Mean of candidate − baseline.
    pub mean_difference: f64,
    pub t_interval: Option<Interval>,
    pub bootstrap: Option<BootstrapResult>,
    pub wilcoxon: WilcoxonResult,
    pub p_adjusted: f64,
    /// Positive: the candidate's values are higher.
    pub rank_biserial: f64,
    pub cohens_dz: Option<f64>,
    /// The smallest mean difference detectable at this n and the observed spread.
    pub mde: Option<f64>,
    /// The same in units of the differences' standard deviation.
    pub mde_dz: Option<f64>,
}

/// One scorer, baseline against candidate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScorerComparison {
    pub scorer: String,
    /// Items scored by this scorer in both runs.
    pub pairs: usize,
    /// Paired items this scorer scored in only one run (an errored judge, say).
    pub unpaired: usize,
    pub pass: PassComparison,
    /// Absent when the values are just pass/fail as 1/0.
    pub value: Option<ValueComparison>,
    pub regressed: bool,
    pub improved: bool,
}

/// Two runs compared.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    pub items: ItemPairing,
    pub scorers: Vec<ScorerComparison>,
    /// Scorers present in only one run.
    pub only_in_baseline_scorers: Vec<String>,
    pub only_in_candidate_scorers: Vec<String>,
    pub alpha: f64,
    pub adjustment: Adjustment,
    /// Some scorer is significantly worse (after adjustment).
    pub regressed: bool,
    /// Some scorer is significantly better.
    pub improved: bool,
}

/// One score as the statistics see it: (passed, value).
type Scored = (bool, f64);
/// One item's score from the baseline and from the candidate.
type Pair = (Scored, Scored);

type ScoreIndex<'a> = HashMap<&'a str, HashMap<&'a str, Scored>>;

fn index<'a>(run: &'static str, items: &'a [ItemScores]) -> Result<ScoreIndex<'a>, StatsError> {
    let mut out: ScoreIndex<'a> = HashMap::with_capacity(items.len());
    for item in items {
        let mut scores = HashMap::with_capacity(item.scores.len());
        for s in &item.scores {
            if !s.value.is_finite() {
                return Err(StatsError::NotFinite {
                    what: format!("the value of `{}` for item `{}`", s.scorer, item.item_id),
                });
            }
            if scores
                .insert(s.scorer.as_str(), (s.passed, s.value))
                .is_some()
            {
                return Err(StatsError::DuplicateScore {
                    run,
                    item: item.item_id.clone(),
                    scorer: s.scorer.clone(),
                });
            }
        }
        if out.insert(item.item_id.as_str(), scores).is_some() {
            return Err(StatsError::DuplicateItem {
                run,
                item: item.item_id.clone(),
            });
        }
    }
    Ok(out)
}

/// Compares a candidate run with a baseline run of the same suite, item by item.
pub fn compare(
    baseline: &[ItemScores],
    candidate: &[ItemScores],
    options: &CompareOptions,
) -> Result<Comparison, StatsError> {
    let in_unit = |x: f64| x > 0.0 && x < 1.0;
    if !in_unit(options.alpha) || !in_unit(options.power) || !in_unit(options.confidence) {
        return Err(StatsError::BadOption(
            "alpha, power and confidence must each be strictly between 0 and 1".into(),
        ));
    }
    let base = index("baseline", baseline)?;
    let cand = index("candidate", candidate)?;

    // Items in run order, so the output is stable.
    let paired_ids: Vec<&str> = baseline
        .iter()
        .map(|i| i.item_id.as_str())
        .filter(|id| cand.contains_key(id))
        .collect();
    let items = ItemPairing {
        paired: paired_ids.len(),
        only_in_baseline: baseline
            .iter()
            .filter(|i| !cand.contains_key(i.item_id.as_str()))
            .map(|i| i.item_id.clone())
            .collect(),
        only_in_candidate: candidate
            .iter()
            .filter(|i| !base.contains_key(i.item_id.as_str()))
            .map(|i| i.item_id.clone())
            .collect(),
    };

    let scorer_names = |items: &[ItemScores]| -> Vec<String> {
        let mut seen = HashSet::new();
        items
            .iter()
            .flat_map(|i| i.scores.iter().map(|s| s.scorer.clone()))
            .filter(|s| seen.insert(s.clone()))
            .collect()
    };
    let base_names = scorer_names(baseline);
    let cand_names = scorer_names(candidate);
    let lower: HashSet<&str> = options.lower_is_better.iter().map(String::as_str).collect();

    let mut scorers = Vec::new();
    for name in base_names.iter().filter(|n| cand_names.contains(n)) {
        let mut pairs: Vec<Pair> = Vec::new();
        let mut unpaired = 0;
        for id in &paired_ids {
            match (base[id].get(name.as_str()), cand[id].get(name.as_str())) {
                (Some(b), Some(c)) => pairs.push((*b, *c)),
                (None, None) => {}
                _ => unpaired += 1,
            }
        }
        scorers.push(compare_scorer(
            name,
            &pairs,
            unpaired,
            !lower.contains(name.as_str()),
            options,
        )?);
    }

    // Holm over every test of the comparison.
    let mut p: Vec<f64> = Vec::new();
    for s in &scorers {
        p.push(s.pass.p_value);
        if let Some(v) = &s.value {
            p.push(v.wilcoxon.p_value);
        }
    }
    let adjusted = match options.adjustment {
        Adjustment::Holm => holm_adjust(&p),
        Adjustment::None => p.clone(),
    };
    let mut next = adjusted.into_iter();
    for s in &mut scorers {
        s.pass.p_adjusted = next.next().unwrap_or(1.0);
        let pass_significant = s.pass.p_adjusted < options.alpha;
        let mut regressed = pass_significant && s.pass.difference < 0.0;
        let mut improved = pass_significant && s.pass.difference > 0.0;
        let floor = options
            .min_value_change
            .get(&s.scorer)
            .copied()
            .unwrap_or(0.0);
        if let Some(v) = &mut s.value {
            v.p_adjusted = next.next().unwrap_or(1.0);
            if v.p_adjusted < options.alpha
                && v.rank_biserial != 0.0
                && v.mean_difference.abs() >= floor
            {
                // The direction the test saw: the ranks, not the mean.
                let better = (v.rank_biserial > 0.0) == v.higher_is_better;
                regressed |= !better;
                improved |= better;
            }
        }
        s.regressed = regressed;
        s.improved = improved;
    }

    Ok(Comparison {
        items,
        only_in_baseline_scorers: base_names
            .iter()
            .filter(|n| !cand_names.contains(n))
            .cloned()
            .collect(),
        only_in_candidate_scorers: cand_names
            .iter()
            .filter(|n| !base_names.contains(n))
            .cloned()
            .collect(),
        regressed: scorers.iter().any(|s| s.regressed),
        improved: scorers.iter().any(|s| s.improved),
        scorers,
        alpha: options.alpha,
        adjustment: options.adjustment,
    })
}

fn compare_scorer(
    name: &str,
    pairs: &[Pair],
    unpaired: usize,
    higher_is_better: bool,
    options: &CompareOptions,
) -> Result<ScorerComparison, StatsError> {
    let mut counts = PairedCounts::default();
    for ((b, _), (c, _)) in pairs {
        match (b, c) {
            (true, true) => counts.both_passed += 1,
            (true, false) => counts.baseline_only += 1,
            (false, true) => counts.candidate_only += 1,
            (false, false) => counts.both_failed += 1,
        }
    }
    let n = counts.n();
    let rate = |k: u64| if n == 0 { 0.0 } else { k as f64 / n as f64 };
    let discordant = counts.baseline_only + counts.candidate_only;
    let pass = PassComparison {
        counts,
        baseline_rate: rate(counts.baseline_passed()),
        baseline_interval: wilson_interval(counts.baseline_passed(), n, options.confidence),
        candidate_rate: rate(counts.candidate_passed()),
        candidate_interval: wilson_interval(counts.candidate_passed(), n, options.confidence),
        difference: rate(counts.candidate_passed()) - rate(counts.baseline_passed()),
        difference_interval: paired_difference_interval(counts, options.confidence),
        p_value: mcnemar_exact(counts.baseline_only, counts.candidate_only),
        p_adjusted: 1.0,
        mde: mde_paired_proportions(n, rate(discordant), options.alpha, options.power),
    };

    // Values that are only the pass/fail bit say nothing McNemar has not said.
    let just_pass_fail = pairs.iter().all(|((bp, bv), (cp, cv))| {
        *bv == f64::from(u8::from(*bp)) && *cv == f64::from(u8::from(*cp))
    });
    let value = if pairs.is_empty() || just_pass_fail {
        None
    } else {
        Some(compare_values(pairs, higher_is_better, options)?)
    };
    Ok(ScorerComparison {
        scorer: name.to_string(),
        pairs: pairs.len(),
        unpaired,
        pass,
        value,
        regressed: false,
        improved: false,
    })
}

fn compare_values(
    pairs: &[Pair],
    higher_is_better: bool,
    options: &CompareOptions,
) -> Result<ValueComparison, StatsError> {
    let base: Vec<f64> = pairs.iter().map(|((_, b), _)| *b).collect();
    let cand: Vec<f64> = pairs.iter().map(|(_, (_, c))| *c).collect();
    let diffs: Vec<f64> = cand.iter().zip(&base).map(|(c, b)| c - b).collect();
    let wilcoxon = wilcoxon_signed_rank(&diffs, options.continuity_correction)?;
    let sd = sample_sd(&diffs);
    Ok(ValueComparison {
        higher_is_better,
        baseline_mean: mean(&base),
        candidate_mean: mean(&cand),
        mean_difference: mean(&diffs),
        t_interval: mean_difference_t_interval(&diffs, options.confidence),
        bootstrap: paired_bootstrap(
            &diffs,
            options.bootstrap_resamples,
            options.seed,
            options.confidence,
        ),
        rank_biserial: rank_biserial(&wilcoxon),
        wilcoxon,
        p_adjusted: 1.0,
        cohens_dz: cohens_dz(&diffs),
        mde: sd.and_then(|sd| mde_mean_difference(diffs.len(), sd, options.alpha, options.power)),
        mde_dz: mde_mean_difference(diffs.len(), 1.0, options.alpha, options.power),
    })
}

#[cfg(test)]
#[path = "stats_tests.rs"]
mod tests;
