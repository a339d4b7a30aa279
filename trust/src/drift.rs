//! Drift detection over one agent's telemetry: a two-sided, standardised CUSUM per metric
//! (latency, error rate, cost per 1k tokens, violation rate, token use) that says when a metric
//! has left the baseline it learnt, in which direction, and by how much. Pure and O(1) per
//! event; it allocates only when it raises a signal. Storing signals and acting on them belong
//! to the caller (the server stores them, the healer consumes them).
//!
//! # What a sample is
//! - **Latency** (`latency_ms`), **token use** (`input_tokens + output_tokens`) and **cost per
//!   1k tokens** (`cost_usd / tokens × 1000`, only when tokens > 0): one sample per event that
//!   carries the value. At the end of warm-up each picks the linear or the log scale,
//!   `ln(x + offset)` (offsets 1 ms, 1 token, $0.000001), whichever makes the warm-up sample
//!   more symmetric (smaller |skewness|): latencies are heavy-tailed (log-normal-ish) and need
//!   the log, while the log of a near-normal metric is left-skewed and would raise false "down"
//!   alarms. Non-finite or negative values are ignored.
//! - **Error rate** and **violation rate**: every event is a Bernoulli trial; `n` consecutive
//!   events (`rate_window_events`, 100) make one sample, the window's rate `k/n`, taken through
//!   Anscombe's variance-stabilising transform `asin(sqrt((k + 3/8)/(n + 3/4)))`, which is much
//!   closer to normal than the raw rate. The window must hold about one expected hit (n·p ≳ 1):
//!   at 20 events a 1 % violation rate false-alarmed 4× more often than `arl0` promises.
//!   Detection delays for rates are in windows: multiply by `n` for events.
//!
//! # Baseline
//! The first `warmup_samples` (50) samples of a metric give its mean and standard deviation
//! (Welford). While no alarm is pending (both CUSUM sides below h/2) later samples keep
//! refining it, up to `baseline_max_samples` (1000): a 50-sample estimate alone makes false
//! alarms several times likelier than `arl0` promises, and the bound keeps a slow drift from
//! being absorbed for ever. The deviation is floored so a near-constant metric cannot make every wiggle an
//! alarm: at 5 % of the mean (a 5 % relative change per σ) on log and linear scales, and for
//! rates at the exact σ of the arcsine value of binomial windows at the baseline rate (with
//! half a pseudo-hit, so an agent that never failed still has σ > 0); over-dispersed real rates
//! keep their larger empirical deviation.
//!
//! # Detector
//! Each sample is standardised, `z = (x - mean) / sd`, clipped at ±`clip_sigmas` (4) so that
//! one outlier cannot raise an alarm on its own, and fed to
//! `S⁺ = max(0, S⁺ + z - k)`, `S⁻ = max(0, S⁻ - z - k)` with `k = 0.5` (optimal for a 1σ
//! shift). An alarm is raised when either exceeds `h`. The user-facing knob is the in-control
//! average run length `arl0` (samples between false alarms per metric, 1000 by default); `h` is
//! derived from it with Siegmund's approximation for the one-sided ARL,
//! `ARL(Δ) ≈ (e^(-2Δb) + 2Δb - 1) / (2Δ²)`, `Δ = δ - k`, `b = h + 1.166`, and the two sides
//! combined as `1/ARL0 = 1/ARL⁺ + 1/ARL⁻` (so each side gets `2 × arl0`). `arl0 = 1000` gives
//! `h ≈ 5.75`; `h = 5` gives ARL0 ≈ 469.
//!
//! # After an alarm
//! The statistic is reset and the metric re-learns its baseline from the next `warmup_samples`
//! samples: a step change that persists then becomes the new normal after one signal instead
//! of alarming again every few samples. The signal carries the old baseline and the mean since
//! the change began (the samples since the alarming side was last at zero).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::EventSample;
use meshos_types::Outcome;

/// A metric watched for drift.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    Latency,
    ErrorRate,
    #[serde(rename = "cost_per_1k_tokens")]
    CostPer1kTokens,
    ViolationRate,
    TokenUse,
}

impl Metric {
    pub const ALL: [Metric; 5] = [
        Metric::Latency,
        Metric::ErrorRate,
        Metric::CostPer1kTokens,
        Metric::ViolationRate,
        Metric::TokenUse,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Metric::Latency => "latency",
            Metric::ErrorRate => "error_rate",
            Metric::CostPer1kTokens => "cost_per_1k_tokens",
            Metric::ViolationRate => "violation_rate",
            Metric::TokenUse => "token_use",
        }
    }

    /// The metric a signal is about (`None` for a name this build does not watch).
    pub fn of_signal(signal: &DriftSignal) -> Option<Metric> {
        Metric::ALL
            .into_iter()
            .find(|m| m.as_str() == signal.metric)
    }

    fn unit(self) -> &'static str {
        match self {
            Metric::Latency => " ms",
            Metric::ErrorRate | Metric::ViolationRate => "",
            Metric::CostPer1kTokens => " USD",
            Metric::TokenUse => " tokens",
        }
    }

    /// The offset of the log scale, or `None` for the rate metrics (arcsine scale).
    fn log_offset(self) -> Option<f64> {
        match self {
            Metric::Latency | Metric::TokenUse => Some(1.0),
            Metric::CostPer1kTokens => Some(1e-6),
            Metric::ErrorRate | Metric::ViolationRate => None,
        }
    }
}

/// A [`DriftConfig`] value outside its meaningful range.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid drift parameter {field} = {value}: expected {expected}")]
pub struct DriftConfigError {
    pub field: &'static str,
    pub value: f64,
    pub expected: &'static str,
}

/// Tuning of the drift detectors; build with [`DriftConfig::new`] (the threshold is derived
/// from `arl0`, so the fields are private to keep them consistent).
#[derive(Clone, Debug, PartialEq)]
pub struct DriftConfig {
    arl0: f64,
    reference_k: f64,
    threshold_h: f64,
    warmup_samples: u32,
    rate_window_events: u32,
    clip_sigmas: f64,
    min_relative_sd: f64,
    baseline_max_samples: u32,
}

/// Reference value k of the CUSUM, in σ: half the 1σ shift it is tuned to catch fastest.
pub const CUSUM_REFERENCE_K: f64 = 0.5;
/// Default in-control average run length, in samples per metric.
pub const DEFAULT_ARL0: f64 = 1000.0;

impl Default for DriftConfig {
    fn default() -> Self {
        DriftConfig {
            arl0: DEFAULT_ARL0,
            reference_k: CUSUM_REFERENCE_K,
            threshold_h: cusum_threshold_for_arl0(DEFAULT_ARL0, CUSUM_REFERENCE_K),
            warmup_samples: 50,
            rate_window_events: 100,
            clip_sigmas: 4.0,
            min_relative_sd: 0.05,
            baseline_max_samples: 1000,
        }
    }
}

impl DriftConfig {
    /// The documented tuning with the given in-control average run length (samples between
    /// false alarms per metric and agent; 2 ≤ arl0 ≤ 10⁹).
    pub fn new(arl0: f64) -> Result<DriftConfig, DriftConfigError> {
        if !(2.0..=1e9).contains(&arl0) {
            return Err(DriftConfigError {
                field: "arl0",
                value: arl0,
                expected: "an average run length between 2 and 1e9 samples",
            });
        }
        Ok(DriftConfig {
            arl0,
            threshold_h: cusum_threshold_for_arl0(arl0, CUSUM_REFERENCE_K),
            ..DriftConfig::default()
        })
    }

    /// Samples that make a baseline (at start and after each alarm), 10–100000.
    pub fn with_warmup_samples(mut self, n: u32) -> Result<DriftConfig, DriftConfigError> {
        if !(10..=100_000).contains(&n) {
            return Err(DriftConfigError {
                field: "warmup_samples",
                value: f64::from(n),
                expected: "between 10 and 100000 samples",
            });
        }
        self.warmup_samples = n;
        Ok(self)
    }

    /// Events per error/violation-rate sample, 5–10000.
    pub fn with_rate_window_events(mut self, n: u32) -> Result<DriftConfig, DriftConfigError> {
        if !(5..=10_000).contains(&n) {
            return Err(DriftConfigError {
                field: "rate_window_events",
                value: f64::from(n),
                expected: "between 5 and 10000 events",
            });
        }
        self.rate_window_events = n;
        Ok(self)
    }

    pub fn arl0(&self) -> f64 {
        self.arl0
    }
    pub fn reference_k(&self) -> f64 {
        self.reference_k
    }
    /// The alarm threshold h (in σ) derived from `arl0`.
    pub fn threshold_h(&self) -> f64 {
        self.threshold_h
    }
    pub fn warmup_samples(&self) -> u32 {
        self.warmup_samples
    }
    pub fn rate_window_events(&self) -> u32 {
        self.rate_window_events
    }
    /// Samples after which a baseline stops refining itself.
    pub fn baseline_max_samples(&self) -> u32 {
        self.baseline_max_samples
    }
}

/// Siegmund's approximation of a one-sided standardised CUSUM's average run length with
/// reference `k` and threshold `h` when the mean has shifted by `shift` σ.
pub fn cusum_arl(h: f64, k: f64, shift: f64) -> f64 {
    let delta = shift - k;
    let b = h + 1.166;
    if delta.abs() < 1e-9 {
        return b * b;
    }
    ((-2.0 * delta * b).exp() + 2.0 * delta * b - 1.0) / (2.0 * delta * delta)
}

/// The threshold h whose two-sided in-control ARL (both sides, `1/ARL0 = 2/ARL_one_sided`) is
/// `arl0`, by bisection on Siegmund's approximation (monotone in h).
pub fn cusum_threshold_for_arl0(arl0: f64, k: f64) -> f64 {
    let target = 2.0 * arl0.max(1.0);
    let (mut lo, mut hi) = (0.0_f64, 60.0_f64);
    for _ in 0..100 {
        let mid = 0.5 * (lo + hi);
        if cusum_arl(mid, k, 0.0) < target {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// A metric of an agent left its baseline: the one signal type the store keeps and the healer
/// reads. The detector leaves `id`, `tenant` and `agent_id` empty (it does not know whose
/// samples it sees); the caller names the signal with [`DriftSignal::of`].
pub use meshos_types::DriftSignal;

/// The scale a metric is watched on.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
enum Scale {
    #[default]
    Linear,
    Log,
    Arcsine,
}

impl Scale {
    fn as_str(self) -> &'static str {
        match self {
            Scale::Linear => "linear",
            Scale::Log => "log",
            Scale::Arcsine => "arcsine",
        }
    }
}

/// Running mean and second/third central moments (Welford/Terriberry), O(1) per sample.
#[derive(Clone, Copy, Debug, Default)]
struct Moments {
    n: f64,
    mean: f64,
    m2: f64,
    m3: f64,
}

impl Moments {
    fn push(&mut self, x: f64) {
        let n1 = self.n;
        self.n += 1.0;
        let delta = x - self.mean;
        let delta_n = delta / self.n;
        let term = delta * delta_n * n1;
        self.mean += delta_n;
        self.m3 += term * delta_n * (self.n - 2.0) - 3.0 * delta_n * self.m2;
        self.m2 += term;
    }

    fn sd(&self) -> f64 {
        if self.n < 2.0 {
            0.0
        } else {
            (self.m2 / (self.n - 1.0)).max(0.0).sqrt()
        }
    }

    fn skewness(&self) -> f64 {
        if self.m2 <= 0.0 {
            0.0
        } else {
            self.n.sqrt() * self.m3 / self.m2.powf(1.5)
        }
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct Baseline {
    scale: Scale,
    moments: Moments,
    /// Mean in the metric's unit (used for rates, where the arcsine mean does not map back).
    natural_sum: f64,
    sd: f64,
}

impl Baseline {
    fn natural_mean(&self, metric: Metric) -> f64 {
        to_natural(
            metric,
            self.scale,
            self.moments.mean,
            self.natural_sum / self.moments.n,
        )
    }
}

fn to_natural(metric: Metric, scale: Scale, mean_x: f64, natural_mean: f64) -> f64 {
    match (scale, metric.log_offset()) {
        (Scale::Log, Some(offset)) => mean_x.exp() - offset,
        (Scale::Linear, _) => mean_x,
        _ => natural_mean,
    }
}

/// One side of the CUSUM and the samples since it last left zero.
#[derive(Clone, Copy, Debug, Default)]
struct Side {
    statistic: f64,
    samples: u64,
    sum: f64,
    natural_sum: f64,
}

impl Side {
    fn step(&mut self, increment: f64, x: f64, natural: f64) {
        self.statistic += increment;
        if self.statistic <= 0.0 {
            *self = Side::default();
        } else {
            self.samples += 1;
            self.sum += x;
            self.natural_sum += natural;
        }
    }
}

/// A sample of one metric: its value in the metric's unit and, for rates, its arcsine value.
#[derive(Clone, Copy, Debug)]
struct Sample {
    natural: f64,
    arcsine: Option<f64>,
}

#[derive(Clone, Copy, Debug, Default)]
struct MetricDrift {
    /// Warm-up moments on the linear and the log scale (or the arcsine scale for rates).
    warmup: [Moments; 2],
    warmup_natural_sum: f64,
    baseline: Option<Baseline>,
    up: Side,
    down: Side,
}

impl MetricDrift {
    fn observe(
        &mut self,
        metric: Metric,
        sample: Sample,
        at_ms: i64,
        cfg: &DriftConfig,
    ) -> Option<DriftSignal> {
        let Some(mut base) = self.baseline else {
            self.learn(metric, sample, cfg);
            return None;
        };
        let x = match (base.scale, metric.log_offset(), sample.arcsine) {
            (Scale::Arcsine, _, Some(a)) => a,
            (Scale::Log, Some(offset), _) => (sample.natural + offset).ln(),
            _ => sample.natural,
        };
        let z = ((x - base.moments.mean) / base.sd).clamp(-cfg.clip_sigmas, cfg.clip_sigmas);
        self.up.step(z - cfg.reference_k, x, sample.natural);
        self.down.step(-z - cfg.reference_k, x, sample.natural);
        let (side, direction) = if self.up.statistic > cfg.threshold_h {
            (self.up, "up")
        } else if self.down.statistic > cfg.threshold_h {
            (self.down, "down")
        } else {
            // Refine the baseline with samples the detector considers in control, up to a
            // bound: a 50-sample estimate alone makes false alarms several times likelier
            // than `arl0` promises, and a bound keeps a slow drift from being absorbed forever.
            let quiet = cfg.threshold_h / 2.0;
            if base.moments.n < f64::from(cfg.baseline_max_samples)
                && self.up.statistic < quiet
                && self.down.statistic < quiet
            {
                base.moments.push(x);
                base.natural_sum += sample.natural;
                base.sd = base.moments.sd().max(sd_floor(
                    base.scale,
                    &base.moments,
                    base.natural_sum,
                    cfg,
                ));
                self.baseline = Some(base);
            }
            return None;
        };
        *self = MetricDrift::default();
        Some(signal(metric, direction, base, side, at_ms, cfg))
    }

    fn learn(&mut self, metric: Metric, sample: Sample, cfg: &DriftConfig) {
        match (sample.arcsine, metric.log_offset()) {
            (Some(a), _) => self.warmup[0].push(a),
            (None, Some(offset)) => {
                self.warmup[0].push(sample.natural);
                self.warmup[1].push((sample.natural + offset).ln());
            }
            (None, None) => self.warmup[0].push(sample.natural),
        }
        self.warmup_natural_sum += sample.natural;
        if self.warmup[0].n < f64::from(cfg.warmup_samples) {
            return;
        }
        // The scale whose warm-up looks most symmetric: log for log-normal-like latencies,
        // linear for a near-normal metric (whose log would be left-skewed).
        let (scale, moments) = if sample.arcsine.is_some() {
            (Scale::Arcsine, self.warmup[0])
        } else if metric.log_offset().is_some()
            && self.warmup[1].skewness().abs() < self.warmup[0].skewness().abs()
        {
            (Scale::Log, self.warmup[1])
        } else {
            (Scale::Linear, self.warmup[0])
        };
        self.baseline = Some(Baseline {
            scale,
            moments,
            natural_sum: self.warmup_natural_sum,
            sd: moments
                .sd()
                .max(sd_floor(scale, &moments, self.warmup_natural_sum, cfg)),
        });
    }
}

/// The smallest σ a baseline may have: 5 % relative on log and linear scales (so a constant
/// metric does not turn every wiggle into an alarm); for rates, the exact σ of the arcsine
/// value of Binomial(n, p̃) windows at the baseline rate with half a pseudo-hit,
/// p̃ = (hits + ½)/(events + 1). The delta method's 1/(2√n) overstates σ badly when n·p is
/// small (0.11 against 0.053 at 1 % over 20 events), which would blunt the detector, and the
/// pseudo-hit keeps σ positive for an agent that has never failed.
fn sd_floor(scale: Scale, moments: &Moments, natural_sum: f64, cfg: &DriftConfig) -> f64 {
    let floor = match scale {
        Scale::Arcsine => {
            let n = f64::from(cfg.rate_window_events);
            let p = (natural_sum * n + 0.5) / (moments.n * n + 1.0);
            binomial_arcsine_sd(cfg.rate_window_events, p)
        }
        Scale::Log => cfg.min_relative_sd,
        Scale::Linear => cfg.min_relative_sd * moments.mean.abs(),
    };
    // A metric that was exactly zero throughout still needs a positive σ.
    floor.max(1e-12)
}

/// Standard deviation of asin(sqrt((K + 3/8)/(n + 3/4))) for K ~ Binomial(n, p), summed over
/// the pmf (O(n), once per rate window at most).
fn binomial_arcsine_sd(n: u32, p: f64) -> f64 {
    let delta_method = 0.5 / f64::from(n).sqrt();
    if !(p > 0.0 && p < 1.0) {
        return delta_method;
    }
    let nf = f64::from(n);
    let odds = p / (1.0 - p);
    let mut pmf = (1.0 - p).powf(nf);
    let (mut total, mut mean, mut square) = (0.0, 0.0, 0.0);
    for k in 0..=n {
        let kf = f64::from(k);
        let x = ((kf + 0.375) / (nf + 0.75)).sqrt().asin();
        total += pmf;
        mean += pmf * x;
        square += pmf * x * x;
        pmf *= (nf - kf) / (kf + 1.0) * odds;
    }
    // (1-p)^n underflows for long windows with a high rate; the delta method is good there.
    if !(total > 0.99 && total.is_finite()) {
        return delta_method;
    }
    let variance = square / total - (mean / total).powi(2);
    if variance > 0.0 {
        variance.sqrt()
    } else {
        delta_method
    }
}

fn signal(
    metric: Metric,
    direction: &str,
    base: Baseline,
    side: Side,
    at_ms: i64,
    cfg: &DriftConfig,
) -> DriftSignal {
    let n = side.samples.max(1) as f64;
    let mean_x = side.sum / n;
    let baseline_mean = base.natural_mean(metric);
    let observed_mean = to_natural(metric, base.scale, mean_x, side.natural_sum / n);
    let shift_sigmas = (mean_x - base.moments.mean) / base.sd;
    let explanation = format!(
        "{} drifted {direction}: {} {:.4}{unit} → {:.4}{unit} over the last {} samples \
         ({shift_sigmas:+.1}σ on the {} scale); CUSUM {:.2} > h {:.2} (in-control ARL {} samples)",
        metric.as_str(),
        if base.scale == Scale::Arcsine {
            "rate"
        } else {
            "typical"
        },
        baseline_mean,
        observed_mean,
        side.samples,
        base.scale.as_str(),
        side.statistic,
        cfg.threshold_h,
        cfg.arl0,
        unit = metric.unit(),
    );
    DriftSignal {
        id: String::new(),
        tenant: String::new(),
        agent_id: String::new(),
        metric: metric.as_str().to_string(),
        detector: "cusum".to_string(),
        direction: direction.to_string(),
        baseline_mean,
        baseline_sd: base.sd,
        observed_mean,
        shift_sigmas,
        samples: side.samples,
        at_ms,
        explanation,
        consumed_at_ms: None,
    }
}

/// The drift state of one agent: a detector per metric plus the open rate window.
#[derive(Clone, Debug, Default)]
pub struct AgentDrift {
    latency: MetricDrift,
    error_rate: MetricDrift,
    cost: MetricDrift,
    violation_rate: MetricDrift,
    tokens: MetricDrift,
    window_events: u32,
    window_errors: u32,
    window_violations: u32,
}

/// A continuous sample, if the value is one (finite, not negative).
fn continuous(value: f64) -> Option<Sample> {
    (value.is_finite() && value >= 0.0).then_some(Sample {
        natural: value,
        arcsine: None,
    })
}

/// A rate window's sample: the rate, and Anscombe's arcsine transform of it.
fn rate_sample(hits: u32, n: u32) -> Sample {
    let (k, n) = (f64::from(hits), f64::from(n));
    Sample {
        natural: k / n,
        arcsine: Some(((k + 0.375) / (n + 0.75)).sqrt().asin()),
    }
}

impl AgentDrift {
    pub fn new() -> AgentDrift {
        AgentDrift::default()
    }

    /// Folds one event in; returns the signals it raised (usually none, without allocating).
    pub fn observe(&mut self, e: &EventSample, cfg: &DriftConfig) -> Vec<DriftSignal> {
        let mut signals = Vec::new();
        let mut push = |s: Option<DriftSignal>| {
            if let Some(s) = s {
                signals.push(s);
            }
        };
        if let Some(sample) = e.latency_ms.and_then(continuous) {
            push(self.latency.observe(Metric::Latency, sample, e.at_ms, cfg));
        }
        let tokens = match (e.input_tokens, e.output_tokens) {
            (None, None) => None,
            (i, o) if i.unwrap_or(0) < 0 || o.unwrap_or(0) < 0 => None,
            (i, o) => Some(i.unwrap_or(0) as f64 + o.unwrap_or(0) as f64),
        };
        if let Some(t) = tokens {
            if let Some(sample) = continuous(t) {
                push(self.tokens.observe(Metric::TokenUse, sample, e.at_ms, cfg));
            }
            if t > 0.0
                && let Some(cost) = e.cost_usd
                && let Some(sample) = continuous(cost / t * 1000.0)
            {
                push(
                    self.cost
                        .observe(Metric::CostPer1kTokens, sample, e.at_ms, cfg),
                );
            }
        }
        self.window_events += 1;
        self.window_errors += u32::from(e.outcome == Outcome::Error);
        self.window_violations += u32::from(e.outcome == Outcome::Violation);
        let n = cfg.rate_window_events;
        if self.window_events >= n {
            push(self.error_rate.observe(
                Metric::ErrorRate,
                rate_sample(self.window_errors, n),
                e.at_ms,
                cfg,
            ));
            push(self.violation_rate.observe(
                Metric::ViolationRate,
                rate_sample(self.window_violations, n),
                e.at_ms,
                cfg,
            ));
            self.window_events = 0;
            self.window_errors = 0;
            self.window_violations = 0;
        }
        signals
    }

    /// Whether `metric` has a baseline yet (warm-up done).
    pub fn has_baseline(&self, metric: Metric) -> bool {
        self.state(metric).baseline.is_some()
    }

    fn state(&self, metric: Metric) -> &MetricDrift {
        match metric {
            Metric::Latency => &self.latency,
            Metric::ErrorRate => &self.error_rate,
            Metric::CostPer1kTokens => &self.cost,
            Metric::ViolationRate => &self.violation_rate,
            Metric::TokenUse => &self.tokens,
        }
    }
}

#[cfg(test)]
#[path = "drift_tests.rs"]
mod tests;
