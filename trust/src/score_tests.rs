use super::*;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

const NOW: i64 = 1_800_000_000_000;
const HOUR: i64 = 3_600_000;

fn event(at_ms: i64, kind: &str, outcome: Outcome) -> EventSample {
    EventSample {
        at_ms,
        kind: kind.into(),
        outcome,
        latency_ms: None,
        input_tokens: None,
        output_tokens: None,
        cost_usd: None,
    }
}

fn events(n: usize, outcome: Outcome, at_ms: i64) -> Vec<EventSample> {
    (0..n).map(|_| event(at_ms, "tool_call", outcome)).collect()
}

fn decision(at_ms: i64, verdict: Verdict, action: &str, kinds: &[&str]) -> DecisionSample {
    DecisionSample {
        at_ms,
        verdict,
        finding_kinds: kinds.iter().map(|k| k.to_string()).collect(),
        action: action.into(),
    }
}

fn decisions(n: usize, verdict: Verdict) -> Vec<DecisionSample> {
    (0..n).map(|_| decision(NOW, verdict, "", &[])).collect()
}

fn score_of(events: Vec<EventSample>, decisions: Vec<DecisionSample>) -> TrustScore {
    compute(
        &TrustInputs {
            decisions,
            events,
            open_incidents: 0,
            now_ms: NOW,
        },
        &TrustParams::default(),
    )
}

#[test]
fn new_agent_is_not_trusted_yet_and_its_breach_is_provisional() {
    let t = score_of(vec![], vec![]);
    assert_eq!(t.score, 10.0);
    assert_eq!(t.components.agent_reputation, 0.1);
    assert_eq!(t.details.reputation_mean, 0.5);
    assert!(t.sla.breached);
    assert!(t.sla.provisional);
    assert!(
        t.explanation[1].contains("provisional"),
        "{:?}",
        t.explanation
    );
}

#[test]
fn six_good_outcomes_clear_the_default_sla_and_five_do_not() {
    let p = TrustParams::default();
    assert_eq!(p.good_outcomes_to_clear_sla(), Some(6));
    let five = score_of(events(5, Outcome::Ok, NOW), vec![]);
    let six = score_of(events(6, Outcome::Ok, NOW), vec![]);
    assert!(five.sla.breached && five.sla.provisional, "{five:?}");
    assert!(!six.sla.breached && !six.sla.provisional, "{six:?}");
    assert!((six.score - 100.0 * 0.1f64.powf(1.0 / 7.0)).abs() < 0.01);
}

#[test]
fn good_outcomes_to_clear_sla_follows_threshold_and_quantile() {
    let with = |sla_threshold, reputation_quantile| TrustParams {
        sla_threshold,
        reputation_quantile,
        ..TrustParams::default()
    };
    assert_eq!(with(0.0, 0.1).good_outcomes_to_clear_sla(), Some(0));
    assert_eq!(with(100.0, 0.1).good_outcomes_to_clear_sla(), None);
    // q^(1/(n+1)) >= 0.9 needs n+1 >= ln 0.1 / ln 0.9 = 21.85.
    assert_eq!(with(90.0, 0.1).good_outcomes_to_clear_sla(), Some(21));
    // A milder gate: 0.25^(1/4) = 0.707.
    assert_eq!(with(70.0, 0.25).good_outcomes_to_clear_sla(), Some(3));
}

#[test]
fn good_history_earns_trust_and_violations_cost_more_than_errors() {
    let good = score_of(events(40, Outcome::Ok, NOW), vec![]);
    assert!(good.score > 90.0, "{good:?}");
    let mut with_errors = events(40, Outcome::Ok, NOW);
    with_errors.extend(events(4, Outcome::Error, NOW));
    let mut with_violations = events(40, Outcome::Ok, NOW);
    with_violations.extend(events(4, Outcome::Violation, NOW));
    let e = score_of(with_errors, vec![]);
    let v = score_of(with_violations, vec![]);
    assert!(
        good.score > e.score && e.score > v.score,
        "{} {} {}",
        good.score,
        e.score,
        v.score
    );
    assert_eq!(v.details.bad_outcome_weight, 12.0);
    assert!(v.components.agent_reputation < v.details.reputation_mean);
}

#[test]
fn reputation_quantile_is_the_beta_quantile() {
    let beta = |a, b| Beta::new(a, b).unwrap();
    for (r, s) in [(10.0, 2.0), (0.5, 7.3), (300.0, 12.0), (3.0, 0.25)] {
        let ar = reputation_lower_quantile(r, s, 0.1);
        let cdf = beta(r + 1.0, s + 1.0).cdf(ar);
        assert!((cdf - 0.1).abs() < 1e-9, "r={r} s={s} ar={ar} cdf={cdf}");
    }
    // The closed forms agree with the general inverse.
    for (r, s) in [(0.0, 4.0), (9.0, 0.0)] {
        let closed = reputation_lower_quantile(r, s, 0.1);
        let general = beta(r + 1.0, s + 1.0).inverse_cdf(0.1);
        assert!((closed - general).abs() < 1e-9, "{closed} {general}");
    }
    // The fast Newton path agrees with statrs' general inverse across shapes and quantiles.
    for r in [0.01, 0.3, 1.0, 2.5, 10.0, 77.0, 1e3, 5e4] {
        for s in [0.01, 0.7, 3.0, 12.0, 400.0, 2e4] {
            for q in [0.01, 0.1, 0.5, 0.9] {
                let fast = reputation_lower_quantile(r, s, q);
                let general = beta(r + 1.0, s + 1.0).inverse_cdf(q);
                assert!(
                    (fast - general).abs() < 1e-9,
                    "r={r} s={s} q={q}: {fast} {general}"
                );
            }
        }
    }
    // Very large decayed sums (a busy agent) stay finite and sensible.
    let busy = reputation_lower_quantile(3e9, 1e7, 0.1);
    assert!(busy > 0.99 && busy < 0.9968, "{busy}");
}

#[test]
fn denials_lower_adherence_and_old_denials_fade() {
    let mut ds = decisions(5, Verdict::Allow);
    ds.extend(decisions(5, Verdict::Deny));
    let fresh = score_of(vec![], ds.clone());
    assert!((fresh.components.policy_adherence - 6.0 / 11.0).abs() < 1e-4);
    let week = 7 * 24 * HOUR;
    for d in ds.iter_mut().filter(|d| d.verdict == Verdict::Deny) {
        d.at_ms = NOW - week;
    }
    let faded = score_of(vec![], ds);
    assert!(faded.components.policy_adherence > 0.95, "{faded:?}");
}

#[test]
fn one_deny_halves_adherence_instead_of_zeroing_it() {
    let t = score_of(vec![], decisions(1, Verdict::Deny));
    assert_eq!(t.components.policy_adherence, 0.5);
}

#[test]
fn sensitive_data_and_incidents_raise_risk() {
    let d = decision(NOW, Verdict::Redact, "", &["EMAIL", "AWS_ACCESS_KEY"]);
    let t = compute(
        &TrustInputs {
            decisions: vec![d],
            open_incidents: 1,
            now_ms: NOW,
            ..Default::default()
        },
        &TrustParams::default(),
    );
    assert!((t.components.risk_exposure - 1.55).abs() < 1e-9);
    assert_eq!(
        t.basis.sensitive_data_classes,
        vec!["AWS_ACCESS_KEY", "EMAIL"]
    );
    assert_eq!(t.details.risk_incidents, 0.25);
}

#[test]
fn privileged_actions_weigh_more_and_each_risk_part_is_capped() {
    let plain = score_of(
        vec![],
        vec![decision(NOW, Verdict::Allow, "search.web", &[])],
    );
    let privileged = score_of(
        vec![],
        vec![decision(NOW, Verdict::Allow, "payments.refund", &[])],
    );
    assert!((plain.components.risk_exposure - 1.01).abs() < 1e-9);
    assert!((privileged.components.risk_exposure - 1.05).abs() < 1e-9);
    assert_eq!(
        privileged.details.privileged_actions,
        vec!["payments.refund"]
    );

    // A denied action is not a privilege the agent holds.
    let denied = score_of(
        vec![],
        vec![decision(NOW, Verdict::Deny, "shell.exec", &[])],
    );
    assert_eq!(denied.components.risk_exposure, 1.0);

    // Caps: 20 privileged actions, 20 credential classes, 9 incidents → 1 + 0.3 + 1 + 1.
    let many: Vec<DecisionSample> = (0..20)
        .map(|i| decision(NOW, Verdict::Allow, &format!("iam.role{i}"), &[]))
        .chain(
            meshos_types::CREDENTIAL_ENTITIES
                .iter()
                .map(|c| decision(NOW, Verdict::Redact, "", &[c])),
        )
        .collect();
    let t = compute(
        &TrustInputs {
            decisions: many,
            open_incidents: 9,
            now_ms: NOW,
            ..Default::default()
        },
        &TrustParams::default(),
    );
    assert_eq!(t.components.risk_exposure, 3.3);
}

#[test]
fn privileges_and_data_classes_leave_risk_after_the_exposure_window() {
    let p = TrustParams::default();
    let mut t = AgentTrust::new();
    t.observe_decision(
        &decision(NOW, Verdict::Allow, "deploy.prod", &["CREDIT_CARD"]),
        &p,
    );
    assert!((t.score(0, NOW, &p).components.risk_exposure - 1.15).abs() < 1e-9);
    let eight_days_later = NOW + 8 * 24 * HOUR;
    let later = t.score(0, eight_days_later, &p);
    assert_eq!(later.components.risk_exposure, 1.0);
    assert!(later.basis.sensitive_data_classes.is_empty());
}

#[test]
fn failed_evals_lower_integrity() {
    let mut evs = events(10, Outcome::Ok, NOW);
    evs.extend((0..10).map(|i| {
        event(
            NOW,
            "eval",
            if i < 3 { Outcome::Ok } else { Outcome::Error },
        )
    }));
    let t = score_of(evs, vec![]);
    // Wilson(7 of 14) / Wilson(14 of 14) at z = 1.96, 4 prior pseudo-passes.
    assert!(
        (t.components.response_integrity - 0.341_524_8).abs() < 1e-4,
        "{t:?}"
    );
    assert_eq!(t.details.integrity_pass_rate, Some(0.3));
}

#[test]
fn integrity_is_neutral_without_results_and_passes_never_lower_it() {
    let p = TrustParams::default();
    assert_eq!(response_integrity(0.0, 0.0, &p), 1.0);
    // No cliff: one passed eval keeps RI at 1 (a bare Wilson bound would give 0.21).
    assert_eq!(response_integrity(1.0, 1.0, &p), 1.0);
    assert!(response_integrity(500.0, 500.0, &p) > 0.999);
    assert!(response_integrity(0.0, 50.0, &p) < 0.1);
    // One failure lowers RI but does not zero it.
    let one_failure = response_integrity(0.0, 1.0, &p);
    assert!(one_failure > 0.6 && one_failure < 0.7, "{one_failure}");
    for fails in [1.0, 3.0, 10.0, 40.0] {
        let mut previous = 0.0;
        for passes in 0..300 {
            let passes = f64::from(passes);
            let ri = response_integrity(passes, passes + fails, &p);
            assert!(
                ri >= previous,
                "fails {fails}: passes {passes} gave {ri} < {previous}"
            );
            assert!(ri < 1.0);
            previous = ri;
        }
        assert!(previous > 0.8, "fails {fails}: {previous}");
    }
    // More failures at the same passes: lower.
    let mut previous = 1.0;
    for fails in 0..100 {
        let ri = response_integrity(20.0, 20.0 + f64::from(fails), &p);
        assert!(ri <= previous);
        previous = ri;
    }
}

#[test]
fn out_of_order_observations_weigh_by_their_own_age() {
    let p = TrustParams::default();
    let mut in_order = AgentTrust::new();
    let mut reversed = AgentTrust::new();
    let day_old = event(NOW - 24 * HOUR, "tool_call", Outcome::Violation);
    let fresh = event(NOW, "tool_call", Outcome::Ok);
    in_order.observe_event(&day_old, &p);
    in_order.observe_event(&fresh, &p);
    reversed.observe_event(&fresh, &p);
    reversed.observe_event(&day_old, &p);
    let (a, b) = (in_order.score(0, NOW, &p), reversed.score(0, NOW, &p));
    assert_eq!(a, b);
    // The day-old violation counts half: s = 3 × 0.5.
    assert_eq!(b.details.bad_outcome_weight, 1.5);
    assert_eq!(b.details.good_outcome_weight, 1.0);
}

#[test]
fn extreme_timestamps_do_not_panic() {
    let p = TrustParams::default();
    let mut t = AgentTrust::new();
    for at in [i64::MAX, i64::MIN, 0, NOW, i64::MIN, -5] {
        t.observe_event(&event(at, "eval", Outcome::Error), &p);
        t.observe_decision(&decision(at, Verdict::Deny, "x", &["EMAIL"]), &p);
    }
    for now in [i64::MIN, 0, NOW, i64::MAX] {
        let s = t.score(u32::MAX, now, &p);
        assert!(
            s.score.is_finite() && (0.0..=100.0).contains(&s.score),
            "{s:?}"
        );
    }
    // A clock behind the newest observation scores at that observation's time.
    let mut skewed = AgentTrust::new();
    skewed.observe_event(&event(NOW + HOUR, "tool_call", Outcome::Ok), &p);
    assert_eq!(skewed.score(0, NOW, &p).details.good_outcome_weight, 1.0);
}

#[test]
fn invalid_params_are_rejected_with_the_field_named() {
    assert_eq!(TrustParams::default().validate(), Ok(()));
    let bad = TrustParams {
        reputation_quantile: 1.0,
        ..TrustParams::default()
    };
    let err = bad.validate().unwrap_err();
    assert_eq!(err.field, "reputation_quantile");
    assert!(err.to_string().contains("strictly between 0 and 1"));
    let bad = TrustParams {
        half_life_hours: f64::NAN,
        ..TrustParams::default()
    };
    assert_eq!(bad.validate().unwrap_err().field, "half_life_hours");
}

/// The definition, summed directly: every observation weighted by 2^(-(T - at)/H).
fn reference_score(inputs: &TrustInputs, p: &TrustParams) -> RawScore {
    let newest = inputs
        .decisions
        .iter()
        .map(|d| d.at_ms)
        .chain(inputs.events.iter().map(|e| e.at_ms))
        .max();
    let t = newest.map_or(inputs.now_ms, |n| n.max(inputs.now_ms));
    let hl = p.half_life_hours * HOUR as f64;
    let w = |at: i64| (-((t - at) as f64) / hl).exp2();
    let (mut c, mut d) = (0.0, 0.0);
    let mut actions: BTreeMap<&str, (i64, f64)> = BTreeMap::new();
    let mut classes: BTreeMap<&str, (i64, f64)> = BTreeMap::new();
    for x in &inputs.decisions {
        d += w(x.at_ms);
        if x.verdict.is_compliant() {
            c += w(x.at_ms);
            if !x.action.is_empty() {
                let risk = if p.is_privileged(&x.action) {
                    0.05
                } else {
                    0.01
                };
                let e = actions.entry(&x.action).or_insert((x.at_ms, risk));
                e.0 = e.0.max(x.at_ms);
            }
        }
        for k in &x.finding_kinds {
            let risk = if meshos_types::CREDENTIAL_ENTITIES.contains(&k.as_str()) {
                0.2
            } else {
                0.1
            };
            let e = classes.entry(k).or_insert((x.at_ms, risk));
            e.0 = e.0.max(x.at_ms);
        }
    }
    let (mut r, mut s, mut pass, mut checks) = (0.0, 0.0, 0.0, 0.0);
    for e in &inputs.events {
        let wt = w(e.at_ms);
        match e.outcome {
            Outcome::Ok => r += wt,
            Outcome::Error => s += wt,
            Outcome::Violation => s += 3.0 * wt,
        }
        if e.kind == "eval" || e.kind == "output_validation" {
            checks += wt;
            if e.outcome == Outcome::Ok {
                pass += wt;
            }
        }
    }
    let window = p.exposure_window_hours * HOUR as f64;
    let part = |m: &BTreeMap<&str, (i64, f64)>, cap: f64| {
        m.values()
            .filter(|(at, _)| ((t - at) as f64) <= window)
            .map(|(_, r)| r)
            .sum::<f64>()
            .min(cap)
    };
    let pa = (c + 1.0) / (d + 1.0);
    let ar = reputation_lower_quantile(r, s, p.reputation_quantile);
    let ri = response_integrity(pass, checks, p);
    let re = 1.0
        + part(&actions, 0.3)
        + part(&classes, 1.0)
        + (0.25 * f64::from(inputs.open_incidents)).min(1.0);
    RawScore {
        score: (100.0 * pa * ar * ri / re).clamp(0.0, 100.0),
        pa,
        ar,
        ar_mean: (r + 1.0) / (r + s + 2.0),
        ri,
        re,
    }
}

fn random_inputs(rng: &mut StdRng) -> TrustInputs {
    let span = 10 * 24 * HOUR;
    let verdicts = [
        Verdict::Allow,
        Verdict::Deny,
        Verdict::Redact,
        Verdict::RequireApproval,
    ];
    let action_names = ["search.web", "payments.refund", "db.read", "shell.exec", ""];
    let kinds = ["EMAIL", "AWS_ACCESS_KEY", "PHONE", "GITHUB_TOKEN"];
    let outcomes = [Outcome::Ok, Outcome::Ok, Outcome::Error, Outcome::Violation];
    let event_kinds = ["tool_call", "eval", "output_validation", "llm_call"];
    let decisions = (0..rng.gen_range(0..200))
        .map(|_| {
            let found: Vec<&str> = kinds
                .iter()
                .copied()
                .filter(|_| rng.gen_bool(0.1))
                .collect();
            decision(
                NOW - rng.gen_range(0..span),
                verdicts[rng.gen_range(0..4)],
                action_names[rng.gen_range(0..5)],
                &found,
            )
        })
        .collect();
    let events = (0..rng.gen_range(0..400))
        .map(|_| {
            event(
                NOW - rng.gen_range(0..span),
                event_kinds[rng.gen_range(0..4)],
                outcomes[rng.gen_range(0..4)],
            )
        })
        .collect();
    TrustInputs {
        decisions,
        events,
        open_incidents: rng.gen_range(0..3),
        now_ms: NOW - rng.gen_range(-HOUR..HOUR),
    }
}

#[test]
fn incremental_state_equals_the_direct_sum_in_any_arrival_order() {
    let p = TrustParams::default();
    let mut rng = StdRng::seed_from_u64(7);
    for case in 0..200 {
        let inputs = random_inputs(&mut rng);
        let want = reference_score(&inputs, &p);
        // Interleave decisions and events in a random arrival order.
        let mut arrivals: Vec<(bool, usize)> = (0..inputs.decisions.len())
            .map(|i| (true, i))
            .chain((0..inputs.events.len()).map(|i| (false, i)))
            .collect();
        arrivals.shuffle(&mut rng);
        let mut live = AgentTrust::new();
        for (is_decision, i) in arrivals {
            if is_decision {
                live.observe_decision(&inputs.decisions[i], &p);
            } else {
                live.observe_event(&inputs.events[i], &p);
            }
        }
        let got = live.raw(inputs.open_incidents, inputs.now_ms, &p);
        let batch = fold(&inputs, &p).raw(inputs.open_incidents, inputs.now_ms, &p);
        for (name, a, b, c) in [
            ("score", got.score, want.score, batch.score),
            ("pa", got.pa, want.pa, batch.pa),
            ("ar", got.ar, want.ar, batch.ar),
            ("ri", got.ri, want.ri, batch.ri),
            ("re", got.re, want.re, batch.re),
        ] {
            assert!(
                (a - b).abs() < 1e-9 && (c - b).abs() < 1e-9,
                "case {case} {name}: live {a} batch {c} direct {b}"
            );
        }
        let (a, b) = (
            compute(&inputs, &p),
            live.score(inputs.open_incidents, inputs.now_ms, &p),
        );
        assert!((a.score - b.score).abs() <= 0.011 && a.basis == b.basis);
        let summary = live.summary(inputs.open_incidents, inputs.now_ms, &p);
        assert!((summary.score - want.score).abs() < 1e-9);
        assert_eq!(summary.sla.provisional, b.sla.provisional);
        assert_eq!(summary.sla.breached, b.sla.breached);
    }
}
