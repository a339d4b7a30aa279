use super::*;
use crate::scorers::Score;

/// (scorer, passed, value)
type Row<'a> = (&'a str, bool, f64);

fn run(rows: &[(&str, &[Row<'_>])]) -> Vec<ItemScores> {
    rows.iter()
        .map(|(id, scores)| ItemScores {
            item_id: id.to_string(),
            scores: scores
                .iter()
                .map(|(s, p, v)| Score {
                    scorer: s.to_string(),
                    passed: *p,
                    value: *v,
                    detail: String::new(),
                })
                .collect(),
        })
        .collect()
}

/// A run of `n` items scored by `exact` (pass/fail) where the items in `failing` fail.
fn pass_fail_run(n: usize, failing: impl Fn(usize) -> bool) -> Vec<ItemScores> {
    (0..n)
        .map(|i| {
            let passed = !failing(i);
            ItemScores {
                item_id: format!("q{i}"),
                scores: vec![Score {
                    scorer: "exact".into(),
                    passed,
                    value: f64::from(u8::from(passed)),
                    detail: String::new(),
                }],
            }
        })
        .collect()
}

#[test]
fn the_exact_signed_rank_distribution_equals_enumerating_every_sign() {
    let diffs = [1.0, -2.0, 2.0, 3.0, -3.0, 3.0, 0.0, 5.0, -1.0];
    let w = wilcoxon_signed_rank(&diffs, false).unwrap();
    assert_eq!(w.method, WilcoxonMethod::ExactWithTies);
    let nonzero: Vec<f64> = diffs.iter().copied().filter(|d| *d != 0.0).collect();
    let (ranks, _) = average_ranks(&nonzero.iter().map(|d| d.abs()).collect::<Vec<_>>());
    let (mut le, mut ge) = (0u32, 0u32);
    let total = 1u32 << ranks.len();
    for signs in 0..total {
        let r: f64 = ranks
            .iter()
            .enumerate()
            .filter(|(i, _)| signs & (1 << i) != 0)
            .map(|(_, r)| r)
            .sum();
        le += u32::from(r <= w.r_plus + 1e-9);
        ge += u32::from(r >= w.r_plus - 1e-9);
    }
    let brute = (2.0 * f64::from(le.min(ge)) / f64::from(total)).min(1.0);
    assert!(
        (w.p_value - brute).abs() < 1e-12,
        "{} vs {brute}",
        w.p_value
    );
}

#[test]
fn average_ranks_share_ties() {
    let (ranks, groups) = average_ranks(&[3.0, 1.0, 3.0, 2.0, 3.0]);
    assert_eq!(ranks, vec![4.0, 1.0, 4.0, 2.0, 4.0]);
    assert_eq!(groups, vec![1, 1, 3]);
}

#[test]
fn wilcoxon_of_nothing_but_zeros_is_p_one_and_refuses_nan() {
    let w = wilcoxon_signed_rank(&[0.0; 20], false).unwrap();
    assert_eq!((w.method, w.p_value), (WilcoxonMethod::NoDifferences, 1.0));
    assert!(wilcoxon_signed_rank(&[], false).unwrap().p_value == 1.0);
    assert!(matches!(
        wilcoxon_signed_rank(&[1.0, f64::NAN], false),
        Err(StatsError::NotFinite { .. })
    ));
}

#[test]
fn mcnemar_is_one_without_discordance_and_small_with_one_sided_flips() {
    assert_eq!(mcnemar_exact(0, 0), 1.0);
    assert_eq!(mcnemar_exact(3, 3), 1.0);
    // Five flips one way are not enough at α = 0.05 (p = 1/16), six are (1/32).
    assert!(mcnemar_exact(5, 0) > 0.05);
    assert!(mcnemar_exact(6, 0) < 0.05);
    // Large n stays accurate and in range.
    let p = mcnemar_exact(5000, 5300);
    assert!(p > 0.0 && p < 0.01, "{p}");
}

#[test]
fn the_paired_difference_interval_contains_the_difference_and_narrows_with_n() {
    let counts = PairedCounts {
        both_passed: 30,
        baseline_only: 8,
        candidate_only: 2,
        both_failed: 10,
    };
    let i = paired_difference_interval(counts, 0.95).unwrap();
    let diff = (2.0 - 8.0) / 50.0;
    assert!(i.contains(diff) && i.high < 0.0 + 0.05, "{i:?}");
    let big = PairedCounts {
        both_passed: 300,
        baseline_only: 80,
        candidate_only: 20,
        both_failed: 100,
    };
    let j = paired_difference_interval(big, 0.95).unwrap();
    assert!(j.high - j.low < i.high - i.low);
    assert!(j.high < 0.0, "{j:?}");
    // Agresti–Min on a worked case: b = 8, c = 2 → cells 8.5 and 2.5 of n = 52.
    let (b, c, n): (f64, f64, f64) = (8.5, 2.5, 52.0);
    let half = normal_quantile(0.975) * (((b + c) - (c - b) * (c - b) / n) / (n * n)).sqrt();
    assert!((i.low - ((c - b) / n - half)).abs() < 1e-15);
    // No discordant pairs: the interval still straddles zero with a width.
    let same = PairedCounts {
        both_passed: 10,
        both_failed: 10,
        ..PairedCounts::default()
    };
    let k = paired_difference_interval(same, 0.95).unwrap();
    assert!(k.low < 0.0 && k.high > 0.0 && k.low >= -1.0 && k.high <= 1.0);
    assert!(paired_difference_interval(PairedCounts::default(), 0.95).is_none());
}

#[test]
fn the_bootstrap_is_reproducible_by_seed_and_close_to_the_t_interval() {
    let diffs: Vec<f64> = (0..200)
        .map(|i| f64::from((i * 7919) % 101) / 100.0 - 0.4)
        .collect();
    let a = paired_bootstrap(&diffs, 4000, 11, 0.95).unwrap();
    let b = paired_bootstrap(&diffs, 4000, 11, 0.95).unwrap();
    let c = paired_bootstrap(&diffs, 4000, 12, 0.95).unwrap();
    assert_eq!(a, b);
    assert_ne!(a.interval, c.interval);
    let t = mean_difference_t_interval(&diffs, 0.95).unwrap();
    assert!(a.interval.contains(a.mean));
    assert!((a.interval.low - t.low).abs() < 0.01, "{a:?} vs {t:?}");
    assert!((a.interval.high - t.high).abs() < 0.01, "{a:?} vs {t:?}");
    assert!(paired_bootstrap(&[], 10, 0, 0.95).is_none());
}

#[test]
fn the_minimum_detectable_effect_solves_connors_formula() {
    let (n, psi) = (200u64, 0.2);
    let delta = mde_paired_proportions(n, psi, 0.05, 0.8).unwrap();
    let (za, zb) = (normal_quantile(0.975), normal_quantile(0.8));
    let needed = (za * psi.sqrt() + zb * (psi - delta * delta).sqrt()).powi(2) / (delta * delta);
    assert!((needed - n as f64).abs() < 1e-6, "{needed}");
    assert!(delta > 0.0 && delta < psi);
    // More items detect smaller effects; too few detect none.
    assert!(mde_paired_proportions(2000, psi, 0.05, 0.8).unwrap() < delta);
    assert_eq!(mde_paired_proportions(5, 0.2, 0.05, 0.8), None);
    assert_eq!(mde_paired_proportions(100, 0.0, 0.05, 0.8), None);
    let m = mde_mean_difference(100, 0.5, 0.05, 0.8).unwrap();
    assert!((m - (za + zb) * 0.5 / 10.0).abs() < 1e-12);
}

#[test]
fn holm_adjusts_step_down_and_keeps_order() {
    let adjusted = holm_adjust(&[0.01, 0.04, 0.03, 0.5]);
    assert_eq!(adjusted, vec![0.04, 0.09, 0.09, 0.5]);
    assert!(holm_adjust(&[]).is_empty());
}

#[test]
fn a_significant_drop_in_pass_rate_is_a_regression() {
    let baseline = pass_fail_run(60, |i| i % 10 == 0);
    // The candidate breaks 12 more items and fixes none.
    let candidate = pass_fail_run(60, |i| i % 10 == 0 || i % 5 == 1);
    let c = compare(&baseline, &candidate, &CompareOptions::default()).unwrap();
    let s = &c.scorers[0];
    assert_eq!(s.pass.counts.baseline_only, 12);
    assert_eq!(s.pass.counts.candidate_only, 0);
    assert!((s.pass.p_value - mcnemar_exact(12, 0)).abs() < 1e-15);
    assert!(s.value.is_none(), "1/0 values add no second test");
    assert!(s.regressed && c.regressed && !c.improved);
    assert!(s.pass.difference < 0.0);
    assert!(s.pass.difference_interval.unwrap().high < 0.0);
    // The other way round it is an improvement.
    let back = compare(&candidate, &baseline, &CompareOptions::default()).unwrap();
    assert!(back.improved && !back.regressed);
}

#[test]
fn a_small_drop_is_not_a_regression_and_reports_what_could_be_detected() {
    let baseline = pass_fail_run(40, |i| i % 10 == 0);
    let candidate = pass_fail_run(40, |i| i % 10 == 0 || i == 3 || i == 7);
    let c = compare(&baseline, &candidate, &CompareOptions::default()).unwrap();
    assert!(!c.regressed);
    assert_eq!(c.scorers[0].pass.mde, None, "two discordant pairs of 40");
}

#[test]
fn values_are_compared_in_the_direction_that_is_better() {
    let base: Vec<(String, f64)> = (0..30)
        .map(|i| (format!("q{i}"), 100.0 + f64::from(i)))
        .collect();
    let make = |shift: f64| -> Vec<ItemScores> {
        base.iter()
            .map(|(id, ms)| ItemScores {
                item_id: id.clone(),
                scores: vec![
                    Score {
                        scorer: "latency".into(),
                        passed: true,
                        value: ms + shift * (1.0 + (ms % 5.0) / 10.0),
                        detail: String::new(),
                    },
                    Score {
                        scorer: "judge".into(),
                        passed: true,
                        value: 0.9 - shift / 1000.0 * (1.0 + (ms % 3.0) / 10.0),
                        detail: String::new(),
                    },
                ],
            })
            .collect()
    };
    let options = CompareOptions {
        lower_is_better: vec!["latency".into()],
        ..CompareOptions::default()
    };
    // The candidate is slower (worse) and its judge scores lower (worse).
    let c = compare(&make(0.0), &make(50.0), &options).unwrap();
    let latency = c.scorers.iter().find(|s| s.scorer == "latency").unwrap();
    let judge = c.scorers.iter().find(|s| s.scorer == "judge").unwrap();
    let lv = latency.value.as_ref().unwrap();
    assert!(!lv.higher_is_better && lv.mean_difference > 0.0 && lv.rank_biserial == 1.0);
    assert!(latency.regressed && judge.regressed && c.regressed);
    assert!(lv.wilcoxon.p_value < 1e-5);
    assert!(lv.bootstrap.as_ref().unwrap().interval.low > 0.0);
    assert!(lv.mde.unwrap() > 0.0 && lv.mde_dz.unwrap() > 0.0);
    // Faster is an improvement, not a regression.
    let c = compare(&make(50.0), &make(0.0), &options).unwrap();
    assert!(!c.regressed && c.improved);
    // A shift below the scorer's practical floor is reported, significant, but is no
    // regression (a few milliseconds on a limit of seconds).
    let floored = CompareOptions {
        min_value_change: [("latency".to_string(), 100.0)].into_iter().collect(),
        ..options.clone()
    };
    let c = compare(&make(0.0), &make(50.0), &floored).unwrap();
    let latency = c.scorers.iter().find(|s| s.scorer == "latency").unwrap();
    assert!(latency.value.as_ref().unwrap().p_adjusted < 0.05);
    assert!(
        !latency.regressed,
        "a 50 ms shift under a 100 ms floor regressed"
    );
    assert!(c.regressed, "the judge's drop still counts");
}

#[test]
fn items_and_scorers_in_one_run_only_are_listed_not_compared() {
    let baseline = run(&[
        ("a", &[("exact", true, 1.0), ("old", true, 1.0)]),
        ("b", &[("exact", true, 1.0)]),
        ("c", &[("exact", false, 0.0), ("judge", true, 0.8)]),
    ]);
    let candidate = run(&[
        ("b", &[("exact", false, 0.0)]),
        ("c", &[("exact", true, 1.0)]),
        ("d", &[("exact", true, 1.0), ("new", true, 1.0)]),
        ("c2", &[("judge", true, 0.7)]),
    ]);
    let c = compare(&baseline, &candidate, &CompareOptions::default()).unwrap();
    assert_eq!(c.items.paired, 2);
    assert_eq!(c.items.only_in_baseline, vec!["a"]);
    assert_eq!(c.items.only_in_candidate, vec!["d", "c2"]);
    assert_eq!(c.only_in_baseline_scorers, vec!["old"]);
    assert_eq!(c.only_in_candidate_scorers, vec!["new"]);
    let exact = c.scorers.iter().find(|s| s.scorer == "exact").unwrap();
    assert_eq!(exact.pairs, 2);
    let judge = c.scorers.iter().find(|s| s.scorer == "judge").unwrap();
    assert_eq!((judge.pairs, judge.unpaired), (0, 1));
}

#[test]
fn duplicates_and_bad_options_are_errors() {
    let dup = run(&[
        ("a", &[("exact", true, 1.0)]),
        ("a", &[("exact", true, 1.0)]),
    ]);
    let ok = run(&[("a", &[("exact", true, 1.0)])]);
    assert_eq!(
        compare(&dup, &ok, &CompareOptions::default()).unwrap_err(),
        StatsError::DuplicateItem {
            run: "baseline",
            item: "a".into()
        }
    );
    let twice = run(&[("a", &[("exact", true, 1.0), ("exact", false, 0.0)])]);
    assert!(matches!(
        compare(&ok, &twice, &CompareOptions::default()),
        Err(StatsError::DuplicateScore {
            run: "candidate",
            ..
        })
    ));
    let nan = run(&[("a", &[("exact", true, f64::NAN)])]);
    assert!(compare(&ok, &nan, &CompareOptions::default()).is_err());
    let bad = CompareOptions {
        alpha: 0.0,
        ..CompareOptions::default()
    };
    assert!(matches!(
        compare(&ok, &ok, &bad),
        Err(StatsError::BadOption(_))
    ));
}

#[test]
fn a_comparison_serialises() {
    let baseline = pass_fail_run(10, |i| i == 0);
    let candidate = pass_fail_run(10, |i| i < 3);
    let c = compare(&baseline, &candidate, &CompareOptions::default()).unwrap();
    let json = serde_json::to_string(&c).unwrap();
    let back: Comparison = serde_json::from_str(&json).unwrap();
    assert_eq!(back, c);
    let text = crate::report::render_comparison(&c);
    assert!(text.contains("pass rate 90.0% → 70.0%"), "{text}");
    assert!(
        text.contains("verdict: no significant regression"),
        "{text}"
    );
}
