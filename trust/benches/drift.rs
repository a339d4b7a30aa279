//! Drift detectors on synthetic data: false alarms per 1,000 samples per metric on stationary
//! streams, and the mean delay to detect a 2σ step. Run with
//! `cargo bench -p meshos-trust --bench drift`. A "sample" is one event for latency, token use
//! and cost per 1k tokens, and one window of `rate_window_events` events for the rates.

use meshos_trust::EventSample;
use meshos_trust::drift::{AgentDrift, DriftConfig, Metric};
use meshos_types::Outcome;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn normal(rng: &mut StdRng) -> f64 {
    let u1: f64 = rng.gen_range(f64::MIN_POSITIVE..1.0);
    let u2: f64 = rng.r#gen();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// Stationary levels, and the 2σ step of each metric, σ being the standard deviation of one
/// sample (for rates: of one window's rate, sqrt(p(1-p)/n)).
const LATENCY_LOG_MEAN: f64 = 5.298_317_366_548_036; // ln 200 ms
const LATENCY_LOG_SD: f64 = 0.5; // log-normal
const TOKENS_MEAN: f64 = 800.0; // normal
const TOKENS_SD: f64 = 150.0;
const COST_MEAN: f64 = 0.01; // normal, USD per 1k tokens
const COST_SD: f64 = 0.001;
const ERROR_P: f64 = 0.05; // Bernoulli per event
const VIOLATION_P: f64 = 0.01;

struct Shift {
    metric: Metric,
    sigmas: f64,
}

fn event(rng: &mut StdRng, i: i64, window: u32, shift: Option<&Shift>) -> EventSample {
    let by = |m: Metric| match shift {
        Some(s) if s.metric == m => s.sigmas,
        _ => 0.0,
    };
    let rate_sd = |p: f64| (p * (1.0 - p) / f64::from(window)).sqrt();
    let error_p = ERROR_P + by(Metric::ErrorRate) * rate_sd(ERROR_P);
    let violation_p = VIOLATION_P + by(Metric::ViolationRate) * rate_sd(VIOLATION_P);
    let u: f64 = rng.r#gen();
    let outcome = if u < error_p {
        Outcome::Error
    } else if u < error_p + violation_p {
        Outcome::Violation
    } else {
        Outcome::Ok
    };
    let tokens = (TOKENS_MEAN + TOKENS_SD * (normal(rng) + by(Metric::TokenUse))).max(1.0);
    let cost_per_1k = (COST_MEAN + COST_SD * (normal(rng) + by(Metric::CostPer1kTokens))).max(0.0);
    let latency = (LATENCY_LOG_MEAN + LATENCY_LOG_SD * (normal(rng) + by(Metric::Latency))).exp();
    EventSample {
        at_ms: i,
        kind: "llm_call".to_string(),
        outcome,
        latency_ms: Some(latency),
        input_tokens: Some(tokens.round() as i64),
        output_tokens: Some(0),
        cost_usd: Some(cost_per_1k * tokens.round() / 1000.0),
    }
}

fn is_rate(m: Metric) -> bool {
    matches!(m, Metric::ErrorRate | Metric::ViolationRate)
}

/// Events per sample of metric `m`.
fn events_per_sample(m: Metric, cfg: &DriftConfig) -> u64 {
    if is_rate(m) {
        u64::from(cfg.rate_window_events())
    } else {
        1
    }
}

#[derive(Default, Clone, Copy)]
struct Alarms {
    samples: u64,
    monitored: u64,
    alarms: u64,
}

/// Stationary runs: every agent sees `samples` samples of every metric.
fn false_alarms(cfg: &DriftConfig, seeds: u64, samples: u64) -> [Alarms; 5] {
    let mut out = [Alarms::default(); 5];
    let window = u64::from(cfg.rate_window_events());
    for seed in 0..seeds {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut drift = AgentDrift::new();
        for i in 0..samples * window {
            let e = event(&mut rng, i as i64, cfg.rate_window_events(), None);
            let completes_window = (i + 1) % window == 0;
            for (k, &m) in Metric::ALL.iter().enumerate() {
                if !is_rate(m) || completes_window {
                    // Continuous metrics: count only the first `samples` events per agent.
                    if !is_rate(m) && i >= samples {
                        continue;
                    }
                    out[k].samples += 1;
                    out[k].monitored += u64::from(drift.has_baseline(m));
                }
            }
            if i >= samples {
                // Past the continuous metrics' budget: only the rates are still counted, so
                // strip the other fields to keep their detectors (uncounted) out of the way.
                let e = EventSample {
                    latency_ms: None,
                    input_tokens: None,
                    output_tokens: None,
                    cost_usd: None,
                    ..e
                };
                for m in drift.observe(&e, cfg).iter().filter_map(Metric::of_signal) {
                    if is_rate(m) {
                        out[index(m)].alarms += 1;
                    }
                }
            } else {
                for m in drift.observe(&e, cfg).iter().filter_map(Metric::of_signal) {
                    out[index(m)].alarms += 1;
                }
            }
        }
    }
    out
}

fn index(m: Metric) -> usize {
    Metric::ALL.iter().position(|&x| x == m).unwrap_or(0)
}

#[derive(Default)]
struct Delay {
    trials: u64,
    false_before: u64,
    detected: u64,
    wrong_direction: u64,
    delays: Vec<u64>,
}

/// Step of `sigmas` in metric `m` after `in_control` monitored samples; delay counted in
/// samples from the first shifted one (1 = alarm on the first shifted sample).
fn detection_delay(cfg: &DriftConfig, m: Metric, sigmas: f64, seeds: u64) -> Delay {
    let per = events_per_sample(m, cfg);
    let in_control = u64::from(cfg.warmup_samples()) + 250;
    let horizon = 500;
    let mut d = Delay::default();
    for seed in 0..seeds {
        let mut rng = StdRng::seed_from_u64(1_000_000 + seed);
        let mut drift = AgentDrift::new();
        d.trials += 1;
        let mut spoiled = false;
        for i in 0..in_control * per {
            if drift
                .observe(
                    &event(&mut rng, i as i64, cfg.rate_window_events(), None),
                    cfg,
                )
                .iter()
                .any(|s| s.metric == m.as_str())
            {
                spoiled = true;
            }
        }
        if spoiled {
            d.false_before += 1;
            continue;
        }
        let shift = Shift { metric: m, sigmas };
        'run: for j in 0..horizon * per {
            let i = in_control * per + j;
            let e = event(&mut rng, i as i64, cfg.rate_window_events(), Some(&shift));
            for s in drift.observe(&e, cfg) {
                if s.metric == m.as_str() {
                    let want = if sigmas > 0.0 { "up" } else { "down" };
                    if s.direction == want {
                        d.detected += 1;
                        d.delays.push(j / per + 1);
                    } else {
                        d.wrong_direction += 1;
                    }
                    break 'run;
                }
            }
        }
    }
    d.delays.sort_unstable();
    d
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else to parse.
    let arl0s = [500.0, 1000.0, 2000.0];
    println!("Drift detectors: two-sided CUSUM, k = 0.5, h from ARL0 (Siegmund).");
    println!(
        "Stationary data: latency log-normal(ln 200 ms, 0.5), tokens normal(800, 150), cost per 1k \
         normal($0.01, $0.001), errors Bernoulli(0.05), violations Bernoulli(0.01); rate sample = \
         window of {} events.\n",
        DriftConfig::default().rate_window_events()
    );
    println!("## False alarms per 1,000 samples per metric (goal ≤ 2)\n");
    println!(
        "| ARL0 | h | run length (samples/agent) × agents | metric | samples | alarms | per 1k samples | per 1k monitored |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for arl0 in arl0s {
        let cfg = DriftConfig::new(arl0).expect("valid ARL0");
        let runs: &[(u64, u64)] = if arl0 == 1000.0 {
            &[(1_000, 1_000), (10_000, 100)]
        } else {
            &[(1_000, 1_000)]
        };
        for &(len, seeds) in runs {
            let fa = false_alarms(&cfg, seeds, len);
            for (k, m) in Metric::ALL.iter().enumerate() {
                let a = fa[k];
                println!(
                    "| {arl0} | {:.2} | {len} × {seeds} | {} | {} | {} | {:.2} | {:.2} |",
                    cfg.threshold_h(),
                    m.as_str(),
                    a.samples,
                    a.alarms,
                    1000.0 * a.alarms as f64 / a.samples as f64,
                    1000.0 * a.alarms as f64 / a.monitored.max(1) as f64,
                );
            }
        }
    }
    println!("\n## Detection delay for a +2σ step (goal ≤ 10 samples)\n");
    println!(
        "| ARL0 | metric | trials | false alarm before step | detected ≤ 500 | mean delay | median | p90 |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for arl0 in arl0s {
        let cfg = DriftConfig::new(arl0).expect("valid ARL0");
        for m in Metric::ALL {
            let d = detection_delay(&cfg, m, 2.0, 2_000);
            let mean = d.delays.iter().sum::<u64>() as f64 / d.delays.len().max(1) as f64;
            let pct = |q: f64| {
                d.delays
                    .get(
                        ((d.delays.len() as f64 * q) as usize)
                            .min(d.delays.len().saturating_sub(1)),
                    )
                    .copied()
                    .unwrap_or(0)
            };
            println!(
                "| {arl0} | {} | {} | {} | {} ({} wrong direction) | {mean:.2} | {} | {} |",
                m.as_str(),
                d.trials,
                d.false_before,
                d.detected,
                d.wrong_direction,
                pct(0.5),
                pct(0.9)
            );
        }
    }
}
