#!/usr/bin/env python3
"""The injection screen on the held-out (blind) sets, side by side in one run with the rules
alone and with AGT's PromptInjectionDetector; writes bench/detectors/injection_blind.md.

    bash bench/detectors/injection_tables.sh        # from a fresh clone: venvs, build, this

Per blind set: TPR and FPR at the shipped operating point; TPR at FPR <= 1% and <= 5% (each
detector's own score, thresholds read off the set's own benign rows, or off all blind benign
rows pooled for a set that has none: such a threshold is a measurement, never shipped); AUROC;
and the over-defense rate (benign texts full of trigger words flagged). Then per category and
per language at the operating point. Nothing here feeds back into training.

Scores: meshos screen = max(model probability, rules' score where it reaches the floor);
rules alone = the rules' score (flagged at 0.5, as the screen without a model); AGT = its
confidence, plus 1 when it says `is_injection`.
"""
from __future__ import annotations

import argparse
import json
import os
import struct
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(HERE))
import injection_blind as blind  # noqa: E402

# The indirect sets are documents and tool output: scanned a second time as such.
DATA_SOURCE = {"protectrag": "retrieved_document", "agent-injection-bench": "tool_result"}


def model_header(path: Path) -> dict:
    b = path.read_bytes()[:36]
    _, _, _, _, _, t_user, t_data, floor = struct.unpack("<8sIIfffff", b)
    return {"threshold_user": t_user, "threshold_data": t_data, "rule_floor": floor}


def meshos_scan(binary: str, rows: list[dict], sources: dict[str, str]) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False, encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps({"id": r["id"], "text": r["text"], "source": sources.get(r["source"], "user")},
                               ensure_ascii=False) + "\n")
        path = f.name
    p = subprocess.run([binary, "policy", "scan", path], capture_output=True, text=True)
    os.unlink(path)
    if p.returncode != 0:
        sys.exit(f"meshos policy scan failed: {p.stderr[-2000:]}")
    return {o["id"]: o["injection"] for o in map(json.loads, p.stdout.splitlines())}


def agt_scan(python: str, rows: list[dict]) -> dict:
    payload = "".join(json.dumps({"id": r["id"], "text": r["text"]}, ensure_ascii=False) + "\n" for r in rows)
    p = subprocess.run([python, str(HERE / "agt_injection.py")], input=payload, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"AGT scan failed: {p.stderr[-2000:]}")
    return {o["id"]: o for o in map(json.loads, p.stdout.splitlines())}


def tpr_at_fpr(pos: np.ndarray, neg: np.ndarray, fpr: float) -> float:
    """TPR at the lowest threshold whose FPR on `neg` is <= fpr (flag when score > t)."""
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    s = np.sort(neg)[::-1]
    k = int(np.floor(fpr * len(s)))
    t = s[k] if k < len(s) else -np.inf
    return float((pos > t).mean())


def pct(x) -> str:
    return "—" if x != x else f"{100 * x:.1f}%"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    target = Path(os.environ.get("CARGO_TARGET_DIR", Path.home() / ".cache" / "meshos-target"))
    ap.add_argument("--meshos-bin", default=os.environ.get("MESHOS_BIN", str(target / "release" / "meshos")))
    ap.add_argument("--agt-python", default=os.path.expanduser("~/.cache/meshos-agt-venv/bin/python"))
    ap.add_argument("--out", default=str(ROOT / "bench" / "detectors" / "injection_blind.md"))
    a = ap.parse_args()

    hdr = model_header(ROOT / "policy" / "model" / "injection.bin")
    sets = {name: load() for name, load in blind.BLIND_LOADERS.items()}
    rows = [r for rs in sets.values() for r in rs]
    as_user = meshos_scan(a.meshos_bin, rows, {})
    as_data = meshos_scan(a.meshos_bin, [r for r in rows if r["source"] in DATA_SOURCE], DATA_SOURCE)
    agt = agt_scan(a.agt_python, rows)

    def scores(verdicts, r):
        v = verdicts[r["id"]]
        rule = v["score"]
        ms = v.get("model_score")
        screen = max(ms if ms is not None else 0.0, rule if rule >= hdr["rule_floor"] else 0.0)
        g = agt[r["id"]]
        return {
            "meshos": (screen, bool(v["flagged"])),
            "rules": (rule, rule >= 0.5),
            "AGT": (g["confidence"] + (1.0 if g["flagged"] else 0.0), bool(g["flagged"])),
        }

    sc = {r["id"]: scores(as_user, r) for r in rows}
    sc_data = {r["id"]: scores(as_data, r) for r in rows if r["id"] in as_data}
    detectors = ["meshos", "rules", "AGT"]
    pooled_neg = {d: np.array([sc[r["id"]][d][0] for r in rows if not r["label"]]) for d in detectors}

    def block(name, rs, table):
        out = []
        pos = [r for r in rs if r["label"]]
        neg = [r for r in rs if not r["label"]]
        for d in detectors:
            ps = np.array([table[r["id"]][d][0] for r in pos])
            ns = np.array([table[r["id"]][d][0] for r in neg])
            ref = ns if len(neg) >= 20 else pooled_neg[d]
            tp = np.mean([table[r["id"]][d][1] for r in pos]) if pos else float("nan")
            fp = np.mean([table[r["id"]][d][1] for r in neg]) if neg else float("nan")
            auc = roc_auc_score([1] * len(ps) + [0] * len(ref), np.concatenate([ps, ref])) if len(ps) and len(ref) else float("nan")
            out.append(f"| {name} | {d} | {len(pos)}/{len(neg)} | {pct(tp)} | {pct(fp)} | "
                       f"{pct(tpr_at_fpr(ps, ref, 0.01))} | {pct(tpr_at_fpr(ps, ref, 0.05))} | "
                       f"{'—' if auc != auc else f'{auc:.3f}'} |")
        return out

    head = ["| set | detector | attacks/benign | TPR (operating point) | FPR (operating point) | "
            "TPR @ FPR ≤ 1% | TPR @ FPR ≤ 5% | AUROC |", "|---|---|---:|---:|---:|---:|---:|---:|"]
    lines = ["# Prompt injection on blind sets: meshos (model + rules) vs rules alone vs AGT", "",
             "Generated by `policy/train/eval_injection.py` (run by `bench/detectors/injection_tables.sh`);",
             "do not edit. None of these sets was trained on or used to choose a threshold; training rows",
             "overlapping them were dropped (`policy/train/injection_corpus.py`).", "",
             f"Shipped thresholds (chosen on training data): model ≥ {hdr['threshold_user']:.3f} for user "
             f"content, ≥ {hdr['threshold_data']:.3f} for tool results and retrieved documents; rules alone "
             f"flag at ≥ {hdr['rule_floor']:.2f}. AGT: `PromptInjectionDetector()` defaults (balanced).", "",
             "TPR @ FPR ≤ x: each detector's own score, threshold read off the set's benign rows (or off all",
             "blind benign rows pooled, for a set with fewer than 20) — a measurement of ranking, not a",
             "shipped setting. AUROC against the same benign rows.", "", "## Scanned as user content", ""] + head
    for name, rs in sets.items():
        lines += block(name, rs, sc)
    lines += block("**all blind sets**", rows, sc)
    lines += ["", "## The indirect sets scanned as what they are (`content_source`)", "",
              "protectrag as `retrieved_document`, agent-injection-bench as `tool_result` (rules and AGT",
              "have no notion of source; their rows repeat the figures above).", ""] + head
    for name, rs in sets.items():
        if rs and rs[0]["source"] in DATA_SOURCE:
            lines += block(name, rs, sc_data)
    # Over-defense.
    od = sets.get("ours: over-defense (trigger words)", [])
    lines += ["", "## Over-defense: benign texts full of trigger words, flagged", "",
              "| detector | " + " | ".join(sorted({r['lang'] for r in od})) + " | all |",
              "|---|" + "---:|" * (len({r['lang'] for r in od}) + 1)]
    for d in detectors:
        cells = []
        for lang in sorted({r["lang"] for r in od}):
            rs = [r for r in od if r["lang"] == lang]
            cells.append(f"{sum(sc[r['id']][d][1] for r in rs)}/{len(rs)}")
        cells.append(pct(np.mean([sc[r["id"]][d][1] for r in od])) if od else "—")
        lines.append(f"| {d} | " + " | ".join(cells) + " |")
    # Per category and language, operating point.
    lines += ["", "## Per category (operating point, as user content): flagged / rows", "",
              "| set | category | label | meshos | rules | AGT |", "|---|---|---|---:|---:|---:|"]
    for name, rs in sets.items():
        cats = defaultdict(list)
        for r in rs:
            cats[(r["kind"] or "-", r["label"])].append(r)
        for (kind, lab), cr in sorted(cats.items(), key=lambda kv: (not kv[0][1], kv[0][0])):
            cells = [f"{sum(sc[r['id']][d][1] for r in cr)}/{len(cr)}" for d in detectors]
            lines.append(f"| {name} | {kind} | {'attack' if lab else 'benign'} | " + " | ".join(cells) + " |")
    lines += ["", "## Per language (operating point, as user content): TPR / FPR", "",
              "| language | rows | meshos | rules | AGT |", "|---|---:|---|---|---|"]
    by_lang = defaultdict(list)
    for r in rows:
        by_lang[r["lang"]].append(r)
    for lang, rs in sorted(by_lang.items()):
        cells = []
        for d in detectors:
            pos = [sc[r["id"]][d][1] for r in rs if r["label"]]
            neg = [sc[r["id"]][d][1] for r in rs if not r["label"]]
            cells.append(f"{pct(np.mean(pos)) if pos else '—'} / {pct(np.mean(neg)) if neg else '—'}")
        lines.append(f"| {lang} | {len(rs)} | " + " | ".join(cells) + " |")
    Path(a.out).write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    print(f"\nwrote {a.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
