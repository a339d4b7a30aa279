#!/usr/bin/env python3
"""Trains the learned prompt-injection classifier and writes policy/model/injection.bin.

    bash bench/detectors/setup.sh && bash bench/detectors/injection_setup.sh   # once
    ~/.cache/meshos-bench-venv/bin/python policy/train/train_injection.py

Deterministic: the corpus is assembled from pinned packages in a fixed order (the script
re-runs itself with PYTHONHASHSEED=0, which the generator's texts need), features come
from the Rust screen itself (examples/injection_features.rs), liblinear's solver is seeded,
and the weights are quantised with a fixed rule. Two runs write byte-identical files.

What it does:
  1. assembles the training rows (injection_corpus.py) and drops every row that overlaps a
     held-out test set (injection_blind.py lists them; none is ever trained or tuned on);
  2. asks the Rust screen for each row's features (hashed n-grams of its word view + the
     rules' dense signals), so training and scoring share one implementation;
  3. fits an L2 logistic regression (liblinear), each source's weight growing with the square
     root of its size so that one large corpus cannot drown the rest;
  4. chooses, on out-of-fold predictions over the training data only: the user threshold
     (FPR <= 1% on all benign rows and <= 3% on each benign source), the data threshold (FPR
     <= 1% on benign tool output and documents, <= 2% per source; never above the user one) and
     the rules' floor (the lowest rule score that alone has
     FPR <= 0.5%);
  5. reports leave-one-source-out and per-language results (policy/train/report.md);
  6. quantises the hashed weights to one byte each and writes the model file.
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import re
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(HERE))
import injection_blind as blind  # noqa: E402
import injection_corpus as corpus  # noqa: E402

BITS = 18
N_DENSE = 7
MAGIC = b"MOSINJ01"
# Inverse regularisation strength: the best out-of-fold AUROC of the grid 0.5, 1, 2, 4, 8, 16
# on the training data (0.9882, 0.9903, 0.9919, 0.9930, 0.9938, 0.9942), 2026-12-06.
C = 16.0
DATA_SOURCES = {"agentdojo", "raginject", "ours-business", "debian-manpages"}


def feature_binary() -> Path:
    target = Path(os.environ.get("CARGO_TARGET_DIR", Path.home() / ".cache" / "meshos-target"))
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "meshos-policy", "--example", "injection_features"],
                   cwd=ROOT, check=True)
    return target / "release" / "examples" / "injection_features"


def features(binary: Path, rows: list[dict]) -> sp.csr_matrix:
    payload = "".join(json.dumps({"id": i, "text": r["text"]}, ensure_ascii=False) + "\n" for i, r in enumerate(rows))
    p = subprocess.run([str(binary)], input=payload.encode(), capture_output=True, check=True)
    indptr, indices, values = [0], [], []
    for line in p.stdout.decode().splitlines():
        o = json.loads(line)
        idx = o["idx"] + [(1 << BITS) + j for j in range(N_DENSE)]
        val = o["val"] + o["dense"]
        indices.extend(idx)
        values.extend(val)
        indptr.append(len(indices))
    return sp.csr_matrix((np.array(values, dtype=np.float64), np.array(indices), np.array(indptr)),
                         shape=(len(rows), (1 << BITS) + N_DENSE))


def sample_weights(rows: list[dict]) -> np.ndarray:
    groups = collections.Counter((r["source"], r["label"]) for r in rows)
    w = np.array([np.sqrt(groups[(r["source"], r["label"])]) / groups[(r["source"], r["label"])] for r in rows])
    y = np.array([r["label"] for r in rows])
    # Classes balanced after the per-source weighting.
    for lab in (True, False):
        m = y == lab
        w[m] *= 0.5 * len(rows) / w[m].sum()
    return w


def fit(X, y, w) -> LogisticRegression:
    m = LogisticRegression(C=C, solver="liblinear", max_iter=1000, random_state=0, tol=1e-5)
    m.fit(X, y, sample_weight=w)
    return m


def threshold_at(scores: np.ndarray, fpr: float) -> float:
    """The lowest threshold whose false-positive rate over these benign scores is <= fpr."""
    s = np.sort(scores)[::-1]
    k = int(np.floor(fpr * len(s)))
    # Flag p >= t: at most k benign scores may reach t.
    t = s[k] + 1e-6 if k < len(s) else 0.0
    return float(min(max(t, 0.05), 0.99))


def strict_threshold(scores, benign, src, pooled_fpr: float, per_source_fpr: float) -> float:
    """The lowest threshold with FPR <= pooled_fpr over all these benign rows and <=
    per_source_fpr on each of their sources with 50 rows or more: a large easy source (program
    messages) must not buy a threshold that a small hard one (benign text full of trigger
    words) pays for."""
    t = threshold_at(scores[benign], pooled_fpr)
    for s in sorted(set(src[benign])):
        m = benign & (src == s)
        if m.sum() >= 50:
            t = max(t, threshold_at(scores[m], per_source_fpr))
    return t


def tpr_fpr(y, s, t):
    y = np.asarray(y, bool)
    pos, neg = y.sum(), (~y).sum()
    return ((s[y] >= t).sum() / pos if pos else float("nan"), (s[~y] >= t).sum() / neg if neg else float("nan"))


def pct(x):
    return "—" if x != x else f"{100 * x:.1f}%"


def main():
    # String hashing is salted per process unless fixed, and the bench generator's texts (the
    # `ours-business` rows) depend on it: two runs gave two corpora. Fixed here, for every run.
    if os.environ.get("PYTHONHASHSEED") != "0":
        os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, "PYTHONHASHSEED": "0"})
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(ROOT / "policy" / "model" / "injection.bin"))
    ap.add_argument("--report", default=str(HERE / "report.md"))
    ap.add_argument("--skip-loso", action="store_true", help="no leave-one-source-out report (faster)")
    a = ap.parse_args()

    test = blind.all_blind_rows()
    rows, stats = corpus.training_rows(test)
    print(f"training rows: {len(rows)} ({stats})", file=sys.stderr)
    binary = feature_binary()
    X = features(binary, rows)
    y = np.array([r["label"] for r in rows])
    w = sample_weights(rows)
    src = np.array([r["source"] for r in rows])

    # Out-of-fold predictions for the thresholds.
    oof = np.zeros(len(rows))
    for tr, te in StratifiedKFold(5, shuffle=True, random_state=0).split(X, y):
        oof[te] = fit(X[tr], y[tr], w[tr]).predict_proba(X[te])[:, 1]
    # The screen lets the model vote only on texts of 32 bytes or more of word view
    # (learned.rs, MIN_MODEL_BYTES); the thresholds are chosen on what it votes on.
    long_enough = np.array([len(" ".join(re.findall(r"\w+", r["text"]))) + 2 >= 32 for r in rows])
    oof = np.where(long_enough, oof, 0.0)
    benign = ~y
    data_benign = benign & np.isin(src, list(DATA_SOURCES))
    t_user = strict_threshold(oof, benign, src, 0.01, 0.03)
    t_data = min(t_user, strict_threshold(oof, data_benign, src, 0.01, 0.02))
    rule = X[:, (1 << BITS)].toarray().ravel()
    floor = next((f for f in (0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99) if (rule[benign] >= f).mean() <= 0.005), 1.0)
    screen_oof = np.maximum(oof, np.where(rule >= floor, rule, 0))

    lines = ["# Learned injection classifier: training report", "",
             "Generated by `policy/train/train_injection.py`; training data only (the held-out test",
             "figures are in `bench/detectors/results.md`).", "",
             f"Rows: {len(rows)} ({int(y.sum())} attacks, {int((~y).sum())} benign). Loaded per source "
             f"group before de-duplication: {stats}.", "",
             f"Thresholds chosen on 5-fold out-of-fold predictions: user {t_user:.3f} (FPR ≤ 1% on all benign, "
             f"≤ 3% on each benign source), tool output / documents {t_data:.3f} (FPR ≤ 1% on benign data "
             f"sources, ≤ 2% on each), rules' floor {floor}.", "",
             f"Out-of-fold AUROC of the model: {roc_auc_score(y, oof):.4f}; of the screen (model + rules' floor): "
             f"{roc_auc_score(y, screen_oof):.4f}.", ""]
    lines += ["## Out-of-fold, per source", "", "| source | rows | TPR | FPR |", "|---|---:|---:|---:|"]
    for s in sorted(set(src)):
        m = src == s
        tp, fp = tpr_fpr(y[m], screen_oof[m], t_user)
        lines.append(f"| {s} | {m.sum()} | {pct(tp)} | {pct(fp)} |")
    lines += ["", "## Out-of-fold, per language", "", "| language | rows | TPR | FPR |", "|---|---:|---:|---:|"]
    lang = np.array([r["lang"] for r in rows])
    for l in sorted(set(lang)):
        m = lang == l
        tp, fp = tpr_fpr(y[m], screen_oof[m], t_user)
        lines.append(f"| {l} | {m.sum()} | {pct(tp)} | {pct(fp)} |")

    if not a.skip_loso:
        lines += ["", "## Leave one source out", "",
                  "Each source scored by a model trained on all the others (the user threshold above).", "",
                  "| left out | rows | TPR | FPR | AUROC |", "|---|---:|---:|---:|---:|"]
        for s in sorted(set(src)):
            m = src == s
            p = fit(X[~m], y[~m], w[~m]).predict_proba(X[m])[:, 1]
            p = np.where(long_enough[m], p, 0.0)
            p = np.maximum(p, np.where(rule[m] >= floor, rule[m], 0))
            tp, fp = tpr_fpr(y[m], p, t_user)
            auc = roc_auc_score(y[m], p) if 0 < y[m].sum() < m.sum() else float("nan")
            lines.append(f"| {s} | {m.sum()} | {pct(tp)} | {pct(fp)} | {'—' if auc != auc else f'{auc:.3f}'} |")
            print(lines[-1], file=sys.stderr)

    model = fit(X, y, w)
    coef = model.coef_.ravel()
    hashed, dense = coef[: 1 << BITS], coef[1 << BITS:]
    scale = float(np.abs(hashed).max() / 127.0) or 1.0
    q = np.clip(np.rint(hashed / scale), -127, 127).astype(np.int8)
    out = bytearray(MAGIC)
    out += struct.pack("<II", BITS, N_DENSE)
    out += struct.pack("<fffff", float(model.intercept_[0]), scale, t_user, t_data, floor)
    out += struct.pack(f"<{N_DENSE}f", *map(float, dense))
    out += q.tobytes()
    Path(a.out).write_bytes(bytes(out))
    nz = int((q != 0).sum())
    lines += ["", "## The model", "",
              f"{1 << BITS} hashed weights (one byte each, scale {scale:.6f}; {nz} non-zero), dense weights "
              + ", ".join(f"{n} {v:+.3f}" for n, v in zip(
                  ["rule_score", "instruction_override", "role_play", "delimiter", "exfiltration",
                   "encoded_payload", "distinct_signals"], dense))
              + f", bias {model.intercept_[0]:+.3f}, C = {C}.", ""]
    Path(a.report).write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    print(f"wrote {a.out} ({len(out)} bytes) and {a.report}", file=sys.stderr)


if __name__ == "__main__":
    main()
