//! `meshos_evals::stats` against SciPy on fixed data.
//!
//! The constants below are printed by `tests/scipy_reference.py` (SciPy 1.17.1); the data sets
//! are the same as the script's. To check against the SciPy installed here instead of the
//! pasted numbers, run this test with `MESHOS_SCIPY_DUMP=/tmp/ours.json` and then
//! `python evals/tests/scipy_reference.py --check /tmp/ours.json` (CI does when the test venv
//! has SciPy).

use meshos_evals::stats::{
    Interval, WilcoxonMethod, clopper_pearson_interval, cohens_dz, mcnemar_exact,
    mean_difference_t_interval, normal_quantile, rank_biserial, wilcoxon_signed_rank,
    wilson_interval,
};
use serde_json::json;

// SciPy 1.17.1: evals/tests/scipy_reference.py
const MCNEMAR: &[(u64, u64, f64)] = &[
    (0, 0, 1.0),
    (1, 0, 1.0),
    (5, 1, 0.21875),
    (10, 2, 0.03857421875),
    (12, 3, 0.03515625),
    (3, 14, 0.012725830078125),
    (25, 10, 0.016673847800120715),
    (40, 60, 0.05688793364098089),
    (100, 130, 0.05561357778139238),
    (7, 7, 1.0),
    (0, 6, 0.03125),
    (0, 5, 0.0625),
];
const WILCOXON: &[(&str, f64, f64)] = &[
    ("exact_n10", 7.0, 0.037109375),
    ("exact_n20", 34.0, 0.006389617919921875),
    ("ties_zero_n10", 10.0, 0.17578125),
    ("ties_n13", 13.5, 0.026611328125),
    ("ties_zero_n30", 68.0, 0.005719216846290557),
    ("normal_n60", 563.0, 0.009561847457563917),
    ("binary_n24", 4.5, 0.033894853524689246),
];
const WILCOXON_CC: &[(&str, f64, f64)] = &[
    ("exact_n10", 7.0, 0.037109375),
    ("exact_n20", 34.0, 0.006389617919921875),
    ("ties_zero_n10", 10.0, 0.17578125),
    ("ties_n13", 13.5, 0.026611328125),
    ("ties_zero_n30", 68.0, 0.00594850845632472),
    ("normal_n60", 563.0, 0.009664616887370442),
    ("binary_n24", 4.5, 0.04107690290648808),
];
const WILSON: &[(u64, u64, f64, f64)] = &[
    (0, 10, 0.0, 0.27753279986288926),
    (3, 10, 0.10779126740630102, 0.6032218525388546),
    (10, 10, 0.7224672001371109, 1.0),
    (17, 25, 0.48410269273102247, 0.8279480969309202),
    (45, 50, 0.7863976856252034, 0.9565242350681095),
    (1, 1, 0.20654931437723745, 1.0),
    (120, 200, 0.5308367203926201, 0.6653942143319267),
];
const CLOPPER_PEARSON: &[(u64, u64, f64, f64)] = &[
    (0, 10, 0.0, 0.30849710781876294),
    (3, 10, 0.06673951117773447, 0.652452850060008),
    (10, 10, 0.6915028921812371, 1.0),
    (17, 25, 0.46499928250261535, 0.8505045773864304),
    (45, 50, 0.7818646335657977, 0.9667249064109785),
    (1, 1, 0.025000000000000022, 1.0),
    (120, 200, 0.5285356727970459, 0.6684537362643607),
];
// DIFFS: mean, t interval low, high, p, Cohen's d_z, rank-biserial
const T_INTERVAL: [f64; 6] = [
    0.04583333333333334,
    0.011408219962696205,
    0.08025844670397048,
    0.013681242257293674,
    0.845926354861617,
    0.7878787878787878,
];
const NORMAL_QUANTILES: &[(f64, f64)] = &[
    (0.975, 1.959963984540054),
    (0.8, 0.8416212335729143),
    (0.95, 1.6448536269514722),
    (0.5, 0.0),
];

const DIFFS: &[f64] = &[
    0.05, -0.02, 0.08, -0.04, 0.07, 0.09, 0.03, 0.13, 0.06, -0.01, 0.0, 0.11,
];

/// The paired data of the Wilcoxon cases, as in the script: (name, baseline, candidate).
fn wilcoxon_cases() -> Vec<(&'static str, Vec<f64>, Vec<f64>)> {
    let ints = |v: &[i32]| v.iter().map(|&x| f64::from(x)).collect::<Vec<f64>>();
    let exact_n20_shift = [
        0.5, -1.25, 2.0, 3.5, -0.75, 1.5, 4.25, 2.75, -2.5, 5.0, 6.5, -0.25, 3.0, 7.5, 1.0, -4.0,
        8.0, 5.5, 9.0, 0.125,
    ];
    vec![
        (
            "exact_n10",
            vec![0.51, 0.62, 0.33, 0.74, 0.45, 0.90, 0.28, 0.67, 0.55, 0.81],
            vec![0.56, 0.60, 0.41, 0.70, 0.52, 0.99, 0.31, 0.80, 0.61, 0.80],
        ),
        (
            "exact_n20",
            (0..20).map(f64::from).collect(),
            exact_n20_shift
                .iter()
                .enumerate()
                .map(|(i, d)| i as f64 + d)
                .collect(),
        ),
        (
            "ties_zero_n10",
            ints(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]),
            ints(&[2, 3, 3, 2, 7, 7, 9, 9, 8, 13]),
        ),
        (
            "ties_n13",
            vec![0.0; 13],
            ints(&[1, 1, -1, 2, 2, 3, -2, 1, 4, 2, -1, 3, 5]),
        ),
        (
            "ties_zero_n30",
            vec![0.0; 30],
            vec![
                0.5, 1.0, 0.0, -0.5, 1.0, 1.5, 0.5, -1.0, 0.0, 2.0, 1.0, 0.5, -0.5, 1.5, 0.5, 1.0,
                0.0, 2.5, -1.5, 1.0, 0.5, 1.0, -0.5, 2.0, 0.5, 1.5, 0.0, 1.0, 0.5, -1.0,
            ],
        ),
        (
            "normal_n60",
            vec![0.0; 60],
            (0..60)
                .map(|i: i32| f64::from((i * 37) % 61 - 27) / 10.0 + 0.013 * f64::from(i))
                .collect(),
        ),
        (
            "binary_n24",
            ints(&[
                1, 1, 1, 0, 1, 1, 0, 1, 1, 1, 1, 0, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1, 0, 1,
            ]),
            ints(&[
                1, 0, 1, 0, 0, 1, 0, 0, 1, 1, 0, 0, 1, 0, 1, 1, 1, 1, 0, 1, 1, 0, 0, 1,
            ]),
        ),
    ]
}

fn differences(base: &[f64], cand: &[f64]) -> Vec<f64> {
    cand.iter().zip(base).map(|(c, b)| c - b).collect()
}

fn assert_close(what: &str, ours: f64, scipy: f64, rel: f64) {
    let tol = rel * scipy.abs().max(1e-300) + 1e-15;
    assert!(
        (ours - scipy).abs() <= tol,
        "{what}: ours {ours:e}, SciPy {scipy:e} (|Δ| = {:e})",
        (ours - scipy).abs()
    );
}

#[test]
fn mcnemar_exact_matches_scipy_binomtest() {
    for &(b, c, p) in MCNEMAR {
        assert_close(
            &format!("mcnemar b={b} c={c}"),
            mcnemar_exact(b, c),
            p,
            1e-12,
        );
        // The test is symmetric in which side regressed.
        assert_eq!(mcnemar_exact(b, c), mcnemar_exact(c, b));
    }
}

#[test]
fn wilcoxon_matches_scipy_defaults() {
    let cases = wilcoxon_cases();
    for ((name, base, cand), &(ref_name, statistic, p)) in cases.iter().zip(WILCOXON) {
        assert_eq!(*name, ref_name);
        let w = wilcoxon_signed_rank(&differences(base, cand), false).unwrap();
        assert_close(&format!("{name} statistic"), w.statistic, statistic, 1e-12);
        assert_close(&format!("{name} p"), w.p_value, p, 1e-9);
    }
}

#[test]
fn wilcoxon_with_continuity_correction_matches_scipy() {
    let cases = wilcoxon_cases();
    for ((name, base, cand), &(ref_name, statistic, p)) in cases.iter().zip(WILCOXON_CC) {
        assert_eq!(*name, ref_name);
        let w = wilcoxon_signed_rank(&differences(base, cand), true).unwrap();
        assert_close(&format!("{name} statistic"), w.statistic, statistic, 1e-12);
        assert_close(&format!("{name} p"), w.p_value, p, 1e-9);
    }
}

#[test]
fn wilcoxon_picks_the_method_scipy_picks() {
    let expected = [
        ("exact_n10", WilcoxonMethod::Exact),
        ("exact_n20", WilcoxonMethod::Exact),
        ("ties_zero_n10", WilcoxonMethod::ExactWithTies),
        ("ties_n13", WilcoxonMethod::ExactWithTies),
        ("ties_zero_n30", WilcoxonMethod::Normal),
        ("normal_n60", WilcoxonMethod::Normal),
        ("binary_n24", WilcoxonMethod::Normal),
    ];
    for ((name, base, cand), (ref_name, method)) in wilcoxon_cases().iter().zip(expected) {
        assert_eq!(*name, ref_name);
        let w = wilcoxon_signed_rank(&differences(base, cand), false).unwrap();
        assert_eq!(w.method, method, "{name}");
    }
}

fn check_intervals(
    name: &str,
    cases: &[(u64, u64, f64, f64)],
    f: fn(u64, u64, f64) -> Option<Interval>,
) {
    for &(k, n, low, high) in cases {
        let i = f(k, n, 0.95).unwrap();
        assert_close(&format!("{name} {k}/{n} low"), i.low, low, 1e-9);
        assert_close(&format!("{name} {k}/{n} high"), i.high, high, 1e-9);
    }
}

#[test]
fn wilson_intervals_match_scipy() {
    check_intervals("wilson", WILSON, wilson_interval);
}

#[test]
fn clopper_pearson_intervals_match_scipy() {
    check_intervals("clopper-pearson", CLOPPER_PEARSON, clopper_pearson_interval);
}

#[test]
fn t_interval_and_effect_sizes_match_scipy() {
    let [mean, low, high, _p, dz, rb] = T_INTERVAL;
    let i = mean_difference_t_interval(DIFFS, 0.95).unwrap();
    assert_close("t interval low", i.low, low, 1e-9);
    assert_close("t interval high", i.high, high, 1e-9);
    assert_close("t interval centre", (i.low + i.high) / 2.0, mean, 1e-12);
    assert_close("cohen's d_z", cohens_dz(DIFFS).unwrap(), dz, 1e-12);
    let w = wilcoxon_signed_rank(DIFFS, false).unwrap();
    assert_close("rank-biserial", rank_biserial(&w), rb, 1e-12);
}

#[test]
fn normal_quantiles_match_scipy() {
    for &(q, z) in NORMAL_QUANTILES {
        assert_close(&format!("z({q})"), normal_quantile(q), z, 1e-12);
    }
}

/// With `MESHOS_SCIPY_DUMP=FILE`, writes our value for every case, for
/// `scipy_reference.py --check FILE` to compare with SciPy live.
#[test]
fn dump_our_values_for_a_live_scipy_check() {
    let Ok(path) = std::env::var("MESHOS_SCIPY_DUMP") else {
        return;
    };
    let wilcoxon = |cc: bool| -> Vec<serde_json::Value> {
        wilcoxon_cases()
            .iter()
            .map(|(name, base, cand)| {
                let w = wilcoxon_signed_rank(&differences(base, cand), cc).unwrap();
                json!({"name": name, "statistic": w.statistic, "p": w.p_value})
            })
            .collect()
    };
    let intervals = |cases: &[(u64, u64, f64, f64)], f: fn(u64, u64, f64) -> Option<Interval>| {
        cases
            .iter()
            .map(|&(k, n, _, _)| {
                let i = f(k, n, 0.95).unwrap();
                json!({"k": k, "n": n, "low": i.low, "high": i.high})
            })
            .collect::<Vec<_>>()
    };
    let dump = json!({
        "mcnemar": MCNEMAR.iter().map(|&(b, c, _)| json!({"b": b, "c": c, "p": mcnemar_exact(b, c)})).collect::<Vec<_>>(),
        "wilcoxon": wilcoxon(false),
        "wilcoxon_cc": wilcoxon(true),
        "wilson": intervals(WILSON, wilson_interval),
        "clopper_pearson": intervals(CLOPPER_PEARSON, clopper_pearson_interval),
    });
    std::fs::write(&path, serde_json::to_string_pretty(&dump).unwrap()).unwrap();
}
