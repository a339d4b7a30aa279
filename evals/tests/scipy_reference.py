#!/usr/bin/env python3
"""Reference values for the evals crate's paired statistics, computed with SciPy.

`evals/tests/stats_scipy.rs` holds these numbers and checks `meshos_evals::stats` against them.
Regenerate (and paste into that file) after changing a case here:

    python3 -m venv /tmp/scipy-venv && /tmp/scipy-venv/bin/pip install scipy
    /tmp/scipy-venv/bin/python evals/tests/scipy_reference.py

With `--check FILE`, reads the JSON that `stats_scipy.rs` writes when MESHOS_SCIPY_DUMP=FILE is
set (our values for every case) and compares them with SciPy live, exiting 1 on a mismatch.
`tests/e2e/test_evals_scipy.py` does the same in CI (scripts/test.sh sets MESHOS_SCIPY_DUMP
before `cargo nextest`, and the test venv has SciPy).
"""

import json
import math
import sys

import numpy as np
import scipy
from scipy import stats

# McNemar's exact test: (b, c) = discordant pairs (baseline passed and candidate failed, and the
# other way round). Two-sided binomial test of b successes in b + c trials at p = 1/2.
MCNEMAR = [(0, 0), (1, 0), (5, 1), (10, 2), (12, 3), (3, 14), (25, 10), (40, 60), (100, 130), (7, 7), (0, 6), (0, 5)]

# Wilcoxon signed-rank, SciPy defaults (zero_method="wilcox", correction=False, method="auto"):
# (name, baseline, candidate); the test is on candidate - baseline.
WILCOXON = [
    # n = 10, no ties, no zeros: exact null distribution.
    ("exact_n10", [0.51, 0.62, 0.33, 0.74, 0.45, 0.90, 0.28, 0.67, 0.55, 0.81],
                  [0.56, 0.60, 0.41, 0.70, 0.52, 0.99, 0.31, 0.80, 0.61, 0.80]),
    # n = 20, no ties: still exact (SciPy's auto is exact up to n = 50).
    ("exact_n20", [float(i) for i in range(20)],
                  [i + d for i, d in enumerate([0.5, -1.25, 2.0, 3.5, -0.75, 1.5, 4.25, 2.75, -2.5, 5.0,
                                                6.5, -0.25, 3.0, 7.5, 1.0, -4.0, 8.0, 5.5, 9.0, 0.125])]),
    # n = 10 with ties and a zero: SciPy runs an exact permutation test (2^10 sign flips).
    ("ties_zero_n10", [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
                      [2, 3, 3, 2, 7, 7, 9, 9, 8, 13]),
    # n = 13, ties: the largest n for the permutation branch.
    ("ties_n13", [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
                 [1, 1, -1, 2, 2, 3, -2, 1, 4, 2, -1, 3, 5]),
    # n = 30 with ties and zeros: normal approximation with the tie correction.
    ("ties_zero_n30", [0.0] * 30,
                      [0.5, 1.0, 0.0, -0.5, 1.0, 1.5, 0.5, -1.0, 0.0, 2.0, 1.0, 0.5, -0.5, 1.5, 0.5,
                       1.0, 0.0, 2.5, -1.5, 1.0, 0.5, 1.0, -0.5, 2.0, 0.5, 1.5, 0.0, 1.0, 0.5, -1.0]),
    # n = 60, no ties: normal approximation (n > 50).
    ("normal_n60", [0.0] * 60,
                   [((i * 37) % 61 - 27) / 10.0 + 0.013 * i for i in range(60)]),
    # Pass/fail scores as 0/1 values: ties everywhere, many zeros (n = 24).
    ("binary_n24", [1, 1, 1, 0, 1, 1, 0, 1, 1, 1, 1, 0, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1, 0, 1],
                   [1, 0, 1, 0, 0, 1, 0, 0, 1, 1, 0, 0, 1, 0, 1, 1, 1, 1, 0, 1, 1, 0, 0, 1]),
]

# Pass-rate intervals: (passed, n).
PROPORTIONS = [(0, 10), (3, 10), (10, 10), (17, 25), (45, 50), (1, 1), (120, 200)]

# Paired differences for the t interval of the mean difference and the effect sizes.
DIFFS = [0.05, -0.02, 0.08, -0.04, 0.07, 0.09, 0.03, 0.13, 0.06, -0.01, 0.0, 0.11]


def fmt(x):
    return repr(float(x))


def mcnemar(b, c):
    n = b + c
    if n == 0:
        return 1.0
    return stats.binomtest(b, n, 0.5).pvalue


def wilcoxon(base, cand, correction=False):
    d = np.asarray(cand, dtype=float) - np.asarray(base, dtype=float)
    res = stats.wilcoxon(d, correction=correction)
    return float(res.statistic), float(res.pvalue)


def reference():
    out = {"scipy": scipy.__version__, "mcnemar": [], "wilcoxon": [], "wilcoxon_cc": [],
           "wilson": [], "clopper_pearson": [], "t_interval": None, "normal_quantiles": []}
    for b, c in MCNEMAR:
        out["mcnemar"].append({"b": b, "c": c, "p": mcnemar(b, c)})
    for name, base, cand in WILCOXON:
        s, p = wilcoxon(base, cand)
        out["wilcoxon"].append({"name": name, "statistic": s, "p": p})
        s, p = wilcoxon(base, cand, correction=True)
        out["wilcoxon_cc"].append({"name": name, "statistic": s, "p": p})
    for k, n in PROPORTIONS:
        r = stats.binomtest(k, n)
        w = r.proportion_ci(confidence_level=0.95, method="wilson")
        e = r.proportion_ci(confidence_level=0.95, method="exact")
        out["wilson"].append({"k": k, "n": n, "low": w.low, "high": w.high})
        out["clopper_pearson"].append({"k": k, "n": n, "low": e.low, "high": e.high})
    d = np.asarray(DIFFS)
    t = stats.ttest_1samp(d, 0.0)
    ci = t.confidence_interval(0.95)
    out["t_interval"] = {"mean": float(d.mean()), "low": ci.low, "high": ci.high, "p": t.pvalue,
                         "cohens_dz": float(d.mean() / d.std(ddof=1))}
    nz = d[d != 0]
    ranks = stats.rankdata(np.abs(nz))
    rplus, rminus = ranks[nz > 0].sum(), ranks[nz < 0].sum()
    out["t_interval"]["rank_biserial"] = float((rplus - rminus) / (rplus + rminus))
    for q in [0.975, 0.8, 0.95, 0.5]:
        out["normal_quantiles"].append({"q": q, "z": stats.norm.ppf(q)})
    return out


def print_rust(ref):
    print(f"// SciPy {ref['scipy']}: evals/tests/scipy_reference.py")
    print("const MCNEMAR: &[(u64, u64, f64)] = &[")
    for r in ref["mcnemar"]:
        print(f"    ({r['b']}, {r['c']}, {fmt(r['p'])}),")
    print("];")
    for key in ["wilcoxon", "wilcoxon_cc"]:
        print(f"const {key.upper()}: &[(&str, f64, f64)] = &[")
        for r in ref[key]:
            print(f"    (\"{r['name']}\", {fmt(r['statistic'])}, {fmt(r['p'])}),")
        print("];")
    for key in ["wilson", "clopper_pearson"]:
        print(f"const {key.upper()}: &[(u64, u64, f64, f64)] = &[")
        for r in ref[key]:
            print(f"    ({r['k']}, {r['n']}, {fmt(r['low'])}, {fmt(r['high'])}),")
        print("];")
    t = ref["t_interval"]
    print(f"// DIFFS: mean, t interval low, high, p, Cohen's d_z, rank-biserial")
    print(f"const T_INTERVAL: [f64; 6] = [{fmt(t['mean'])}, {fmt(t['low'])}, {fmt(t['high'])}, "
          f"{fmt(t['p'])}, {fmt(t['cohens_dz'])}, {fmt(t['rank_biserial'])}];")
    print("const NORMAL_QUANTILES: &[(f64, f64)] = &[")
    for r in ref["normal_quantiles"]:
        print(f"    ({fmt(r['q'])}, {fmt(r['z'])}),")
    print("];")


def close(ours, theirs, rel=1e-9, abs_=1e-12):
    return math.isclose(ours, theirs, rel_tol=rel, abs_tol=abs_)


def mismatches(path):
    """Our values (written by the Rust test) against SciPy's, live: (problems, values compared)."""
    with open(path) as f:
        ours = json.load(f)
    ref = reference()
    bad = []
    compared = 0
    for key in ["mcnemar", "wilcoxon", "wilcoxon_cc", "wilson", "clopper_pearson"]:
        if len(ours[key]) != len(ref[key]):
            bad.append(f"{key}: {len(ours[key])} cases, SciPy has {len(ref[key])}")
    for o, r in zip(ours["mcnemar"], ref["mcnemar"]):
        compared += 1
        if not close(o["p"], r["p"]):
            bad.append(f"mcnemar b={r['b']} c={r['c']}: ours {o['p']} scipy {r['p']}")
    for key in ["wilcoxon", "wilcoxon_cc"]:
        for o, r in zip(ours[key], ref[key]):
            compared += 2
            if not (close(o["statistic"], r["statistic"]) and close(o["p"], r["p"])):
                bad.append(f"{key} {r['name']}: ours ({o['statistic']}, {o['p']}) "
                           f"scipy ({r['statistic']}, {r['p']})")
    for key in ["wilson", "clopper_pearson"]:
        for o, r in zip(ours[key], ref[key]):
            compared += 2
            if not (close(o["low"], r["low"], 1e-9) and close(o["high"], r["high"], 1e-9)):
                bad.append(f"{key} {r['k']}/{r['n']}: ours ({o['low']}, {o['high']}) "
                           f"scipy ({r['low']}, {r['high']})")
    return bad, compared


def check(path):
    bad, compared = mismatches(path)
    if bad:
        print("\n".join(bad))
        print(f"scipy cross-check: {len(bad)} of {compared} differ (SciPy {scipy.__version__})")
        return 1
    print(f"scipy cross-check: {compared} values agree (SciPy {scipy.__version__})")
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--check":
        sys.exit(check(sys.argv[2]))
    print_rust(reference())
