use super::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn normal(rng: &mut StdRng) -> f64 {
    // Box–Muller; rand's distributions crate is not a dependency.
    let u1: f64 = rng.gen_range(f64::MIN_POSITIVE..1.0);
    let u2: f64 = rng.r#gen();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

fn bare(at_ms: i64) -> EventSample {
    EventSample {
        at_ms,
        kind: "llm_call".into(),
        outcome: Outcome::Ok,
        latency_ms: None,
        input_tokens: None,
        output_tokens: None,
        cost_usd: None,
    }
}

/// A plausible stationary agent: log-normal latency around 200 ms, ~800 tokens, $0.01 per 1k
/// tokens, 5 % errors, 1 % violations; `latency_factor` and `error_p` let a test shift it.
fn agent_event(rng: &mut StdRng, i: i64, latency_factor: f64, error_p: f64) -> EventSample {
    let tokens = (800.0 + 150.0 * normal(rng)).max(1.0).round();
    let outcome = if rng.gen_bool(error_p) {
        Outcome::Error
    } else if rng.gen_bool(0.01) {
        Outcome::Violation
    } else {
        Outcome::Ok
    };
    EventSample {
        latency_ms: Some(latency_factor * (200f64.ln() + 0.5 * normal(rng)).exp()),
        input_tokens: Some(tokens as i64 - 100),
        output_tokens: Some(100),
        cost_usd: Some(tokens / 1000.0 * (0.01 + 0.001 * normal(rng))),
        outcome,
        ..bare(i)
    }
}

#[test]
fn threshold_follows_siegmunds_arl() {
    // DESIGN.md: k = 0.5, h = 5 → ARL0 ≈ 465 (Siegmund gives 469 two-sided).
    let h = cusum_threshold_for_arl0(469.0, 0.5);
    assert!((h - 5.0).abs() < 0.01, "{h}");
    assert!((cusum_arl(5.0, 0.5, 0.0) / 2.0 - 469.0).abs() < 1.0);
    let default_h = DriftConfig::default().threshold_h();
    assert!((default_h - 5.75).abs() < 0.01, "{default_h}");
    // Bigger ARL0, higher threshold; a 2σ shift is still caught within a few samples.
    let strict = DriftConfig::new(10_000.0).unwrap();
    assert!(strict.threshold_h() > default_h);
    assert!(cusum_arl(strict.threshold_h(), 0.5, 2.0) < 7.0);
}

#[test]
fn a_latency_step_up_is_detected_as_latency_up() {
    let cfg = DriftConfig::default();
    let mut rng = StdRng::seed_from_u64(11);
    let mut drift = AgentDrift::new();
    let mut quiet = 0;
    for i in 0..250 {
        quiet += drift
            .observe(&agent_event(&mut rng, i, 1.0, 0.05), &cfg)
            .len();
    }
    assert!(drift.has_baseline(Metric::Latency));
    assert_eq!(quiet, 0);
    // Latency ×e (2σ on the log scale, σ = 0.5).
    let mut found = None;
    for i in 250..300 {
        let signals = drift.observe(&agent_event(&mut rng, i, 1f64.exp(), 0.05), &cfg);
        if let Some(s) = signals
            .into_iter()
            .find(|s| s.metric == Metric::Latency.as_str())
        {
            found = Some((i - 250, s));
            break;
        }
    }
    let (delay, s) = found.expect("a 2σ latency step raised no signal in 50 samples");
    assert!(delay < 20, "{delay}");
    assert_eq!(s.direction, "up");
    assert_eq!(s.detector, "cusum");
    assert!(s.baseline_mean > 150.0 && s.baseline_mean < 260.0, "{s:?}");
    assert!(s.observed_mean > 1.5 * s.baseline_mean, "{s:?}");
    assert!(s.shift_sigmas > 1.0, "{s:?}");
    assert!(
        s.explanation.starts_with("latency drifted up"),
        "{}",
        s.explanation
    );
    // Re-learning after the alarm: no baseline until a new warm-up has passed.
    assert!(!drift.has_baseline(Metric::Latency));
}

#[test]
fn fewer_tokens_is_detected_as_token_use_down() {
    let cfg = DriftConfig::default();
    let mut drift = AgentDrift::new();
    let mut rng = StdRng::seed_from_u64(3);
    let tokens = |rng: &mut StdRng, mean: f64| EventSample {
        output_tokens: Some((mean * (0.2 * normal(rng)).exp()) as i64),
        ..bare(0)
    };
    for _ in 0..100 {
        assert!(drift.observe(&tokens(&mut rng, 1000.0), &cfg).is_empty());
    }
    let signal = (0..40)
        .flat_map(|_| drift.observe(&tokens(&mut rng, 500.0), &cfg))
        .next()
        .expect("halving token use raised nothing");
    assert_eq!(signal.metric, Metric::TokenUse.as_str());
    assert_eq!(signal.direction, "down");
    assert!(signal.observed_mean < 700.0, "{signal:?}");
}

#[test]
fn an_error_burst_is_detected_as_error_rate_up_in_windows() {
    let cfg = DriftConfig::default();
    let mut rng = StdRng::seed_from_u64(5);
    let mut drift = AgentDrift::new();
    let windows = |events: u64| events / u64::from(cfg.rate_window_events());
    let mut i = 0;
    while windows(i) < 60 {
        let signals = drift.observe(&agent_event(&mut rng, i as i64, 1.0, 0.05), &cfg);
        assert!(
            signals
                .iter()
                .all(|s| s.metric != Metric::ErrorRate.as_str()),
            "{signals:?}"
        );
        i += 1;
    }
    let mut found = None;
    for _ in 0..20 * cfg.rate_window_events() {
        i += 1;
        let signals = drift.observe(&agent_event(&mut rng, i as i64, 1.0, 0.3), &cfg);
        if let Some(s) = signals
            .into_iter()
            .find(|s| s.metric == Metric::ErrorRate.as_str())
        {
            found = Some(s);
            break;
        }
    }
    let s = found.expect("a jump from 5 % to 30 % errors raised nothing in 20 windows");
    assert!(s.samples <= 20, "{s:?}");
    assert_eq!(s.direction, "up");
    assert!(s.explanation.contains("on the arcsine scale"), "{s:?}");
    assert!(s.baseline_mean < 0.1 && s.observed_mean > 0.2, "{s:?}");
}

#[test]
fn a_stationary_agent_raises_nothing() {
    // ARL0 10^6 samples: 5 × 6000 events make ~90,000 samples, so about 0.09 false alarms
    // are expected; the default ARL0's false-alarm rate is measured by `benches/drift.rs`.
    let cfg = DriftConfig::new(1_000_000.0).unwrap();
    for seed in 0..5 {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut drift = AgentDrift::new();
        for i in 0..6000 {
            let signals = drift.observe(&agent_event(&mut rng, i, 1.0, 0.05), &cfg);
            assert!(signals.is_empty(), "seed {seed} event {i}: {signals:?}");
        }
        assert!(Metric::ALL.iter().all(|&m| drift.has_baseline(m)));
    }
}

#[test]
fn a_constant_metric_gets_a_floor_deviation_and_still_sees_a_real_change() {
    let cfg = DriftConfig::default();
    let mut drift = AgentDrift::new();
    let at = |ms| EventSample {
        latency_ms: Some(ms),
        ..bare(0)
    };
    for _ in 0..500 {
        assert!(drift.observe(&at(100.0), &cfg).is_empty());
    }
    // 100 → 101 ms is 0.2σ of the floor (5 % of the mean on the linear scale, which a
    // constant metric keeps as the more symmetric one): nothing.
    for _ in 0..500 {
        assert!(drift.observe(&at(101.0), &cfg).is_empty());
    }
    let s = (0..20)
        .flat_map(|_| drift.observe(&at(130.0), &cfg))
        .next()
        .expect("a 30 % latency rise on a constant baseline raised nothing");
    assert_eq!((s.metric.as_str(), s.direction.as_str()), ("latency", "up"));
    assert!(s.explanation.contains("on the linear scale"), "{s:?}");
    assert!((s.baseline_sd - 5.0).abs() < 0.1, "{s:?}");
}

#[test]
fn invalid_numbers_are_ignored_without_panicking() {
    let cfg = DriftConfig::default();
    let mut drift = AgentDrift::new();
    let junk = [
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        -1.0,
        -0.0,
        f64::MAX,
    ];
    for (i, v) in junk.iter().cycle().take(6000).enumerate() {
        let e = EventSample {
            latency_ms: Some(*v),
            input_tokens: Some(if i % 2 == 0 { -5 } else { i64::MIN }),
            output_tokens: Some(i64::MAX),
            cost_usd: Some(*v),
            outcome: Outcome::Violation,
            ..bare(i as i64)
        };
        let _ = drift.observe(&e, &cfg);
    }
    // -0.0 and f64::MAX are valid (non-negative, finite) latencies; the others were dropped.
    assert!(drift.has_baseline(Metric::Latency));
    assert!(!drift.has_baseline(Metric::TokenUse));
    assert!(!drift.has_baseline(Metric::CostPer1kTokens));
    // Every event still counts toward the rates.
    assert!(drift.has_baseline(Metric::ViolationRate));
}

#[test]
fn bad_config_is_rejected_with_the_field_named() {
    assert_eq!(DriftConfig::new(f64::NAN).unwrap_err().field, "arl0");
    assert_eq!(DriftConfig::new(1.0).unwrap_err().field, "arl0");
    let err = DriftConfig::default().with_warmup_samples(3).unwrap_err();
    assert_eq!(err.field, "warmup_samples");
    assert!(err.to_string().contains("between 10 and 100000"));
    assert_eq!(
        DriftConfig::default()
            .with_rate_window_events(0)
            .unwrap_err()
            .field,
        "rate_window_events"
    );
}

#[test]
fn metrics_serialise_in_snake_case() {
    for m in Metric::ALL {
        assert_eq!(
            serde_json::to_value(m).unwrap(),
            serde_json::Value::String(m.as_str().to_string())
        );
    }
    assert_eq!(Metric::CostPer1kTokens.as_str(), "cost_per_1k_tokens");
}

#[test]
fn rate_sigma_is_exact_for_rare_events_and_matches_the_delta_method_for_common_ones() {
    // At 1 % over 20 events most windows are empty: σ ≈ 0.053, half the delta method's 0.112.
    let rare = binomial_arcsine_sd(20, 0.01);
    assert!((rare - 0.0528).abs() < 0.001, "{rare}");
    let common = binomial_arcsine_sd(200, 0.4);
    assert!((common - 0.5 / 200f64.sqrt()).abs() < 0.002, "{common}");
    // Long windows where (1-p)^n underflows fall back to the delta method.
    assert_eq!(binomial_arcsine_sd(10_000, 0.9), 0.005);
}
