#!/usr/bin/env python3
"""Side-by-side detection and false-positive rates of the Mesh OS tool poisoning scan
(meshos-toolscan) and AGT's MCPSecurityScanner on the same tool definitions.

    python3 bench/toolscan/compare.py                       # corpus.json, Markdown to stdout
    python3 bench/toolscan/compare.py --json results.json   # also keep every verdict

Needs: cargo (our scanner runs as `cargo run -p meshos-toolscan --example scan`, or pass a
built binary with --scan-bin) and the AGT virtual environment (README.md; --agt-python).

What counts as "flagged":
* ours, strict: verdict `poisoned` (a high or critical finding);
  ours, lenient: verdict `suspicious` or `poisoned` (any medium finding too).
* AGT, strict: at least one threat of severity `critical`;
  AGT, lenient: any threat at all (its severities are info, warning, critical).
An attack counts as detected when flagged; a benign definition flagged is a false positive.
Each entry is judged in the catalog corpus_catalog.py builds (its targets, then its own
server's tools), by both scanners.
"""

import argparse
import json
import os
import pathlib
import subprocess
import sys
from collections import defaultdict

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent.parent
FAMILIES = ["tool_poisoning", "rug_pull", "shadowing", "typosquatting", "benign"]
SPLITS = ["dev", "heldout"]


def run_ours(corpus, scan_bin):
    if scan_bin:
        cmd = [scan_bin, str(corpus)]
    else:
        cmd = ["cargo", "run", "-q", "-p", "meshos-toolscan", "--example", "scan", "--", str(corpus)]
    out = subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True).stdout
    return {r["id"]: r for r in map(json.loads, out.splitlines())}


def run_agt(corpus, python):
    cmd = [python, str(HERE / "agt_scan.py"), str(corpus)]
    out = subprocess.run(cmd, cwd=HERE, check=True, capture_output=True, text=True).stdout
    return {r["id"]: r for r in map(json.loads, out.splitlines())}


def flags(ours, agt):
    return {
        "ours_strict": ours["verdict"] == "poisoned",
        "ours_lenient": ours["verdict"] != "clean",
        "agt_strict": any(t["severity"] == "critical" for t in agt["threats"]),
        "agt_lenient": bool(agt["threats"]),
    }


def cell(k, n):
    return f"{k}/{n} ({100 * k / n:.0f}%)" if n else "–"


COLUMNS = ["ours_strict", "ours_lenient", "agt_strict", "agt_lenient"]


def table(rows):
    """rows: [(entry, flags)] -> Markdown lines."""
    groups = defaultdict(list)
    for entry, f in rows:
        groups[(entry["family"], entry["split"])].append((entry, f))
        groups[("all", entry["split"])].append((entry, f))
        groups[("all", "dev + heldout")].append((entry, f))
    lines = [
        "| family | split | attacks | ours strict | ours lenient | AGT strict | AGT lenient "
        "| benign | FP ours strict | FP ours lenient | FP AGT strict | FP AGT lenient |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    keys = [(fam, s) for fam in FAMILIES for s in SPLITS] + [
        ("all", "dev"), ("all", "heldout"), ("all", "dev + heldout")
    ]
    for key in keys:
        members = groups.get(key, [])
        if not members:
            continue
        attacks = [f for e, f in members if e["label"] == "attack"]
        benign = [f for e, f in members if e["label"] == "benign"]
        detected = [cell(sum(f[c] for f in attacks), len(attacks)) for c in COLUMNS]
        fps = [cell(sum(f[c] for f in benign), len(benign)) for c in COLUMNS]
        name = f"**{key[0]}**" if key[0] == "all" else key[0]
        lines.append(
            f"| {name} | {key[1]} | {len(attacks)} | " + " | ".join(detected)
            + f" | {len(benign)} | " + " | ".join(fps) + " |"
        )
    return lines


def top_ours(r, n=3):
    return ", ".join(f"{f['rule']} ({f['severity']})" for f in r["findings"][:n]) or "no finding"


def top_agt(r, n=2):
    msgs = [f"{t['severity']}: {t['message'][:70]}" for t in r["threats"][:n]]
    return "; ".join(msgs) or "no threat"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", default=str(HERE / "corpus.json"))
    ap.add_argument("--scan-bin", help="a built `scan` example binary (else cargo run)")
    ap.add_argument(
        "--agt-python",
        default=os.path.expanduser("~/.cache/meshos-agt-venv/bin/python"),
        help="Python of the venv with agent-governance-toolkit-core",
    )
    ap.add_argument("--json", help="write every entry's verdicts here")
    args = ap.parse_args()

    corpus = pathlib.Path(args.corpus).resolve()
    entries = json.loads(corpus.read_text())
    ours = run_ours(corpus, args.scan_bin)
    agt = run_agt(corpus, args.agt_python)
    rows = [(e, flags(ours[e["id"]], agt[e["id"]])) for e in entries]

    out = ["## Detection and false positives", ""]
    out += table(rows)
    out += ["", "## Disagreements (strict reading)", ""]
    out += ["| entry | label | family | split | ours | AGT |", "|---|---|---|---|---|---|"]
    for e, f in rows:
        if f["ours_strict"] != f["agt_strict"]:
            o, a = ours[e["id"]], agt[e["id"]]
            out.append(
                f"| {e['id']} | {e['label']} | {e['family']} | {e['split']} "
                f"| {o['verdict']}: {top_ours(o)} | {top_agt(a)} |"
            )
    out += ["", "## Misses and false positives of ours (lenient and strict)", ""]
    out += ["| entry | label | family | split | ours |", "|---|---|---|---|---|"]
    for e, f in rows:
        wrong_strict = f["ours_strict"] != (e["label"] == "attack")
        wrong_lenient = f["ours_lenient"] != (e["label"] == "attack")
        if wrong_strict or wrong_lenient:
            o = ours[e["id"]]
            out.append(
                f"| {e['id']} | {e['label']} | {e['family']} | {e['split']} "
                f"| {o['verdict']}: {top_ours(o)} |"
            )
    print("\n".join(out))

    if args.json:
        dump = [
            {"id": e["id"], "label": e["label"], "family": e["family"], "split": e["split"],
             **f, "ours": ours[e["id"]], "agt": agt[e["id"]]}
            for e, f in rows
        ]
        pathlib.Path(args.json).write_text(json.dumps(dump, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
