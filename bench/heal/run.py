#!/usr/bin/env python3
"""Fault-injection benchmark of the healing loop: `meshos demo --json` over several seeds (all
six faults each) and fault-free control runs, aggregated into the figures issue 6 asks for.

    python3 bench/heal/run.py --meshos target/release/meshos --seeds 1 2 3 4 5 --controls 2

Self-resolution: faults whose incident was resolved with no human step, over all faults (and
over the faults whose first planned playbook is fully automatic). MTTR: fault start → verified
close, over resolved faults. False incidents: incidents that match no injected fault, in fault
runs (share of all incidents) and in control runs (per hour). Diagnosis AC@1: the first
incident for a fault names its root cause.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time


def quantile(values, p):
    if not values:
        return None
    v = sorted(values)
    return v[max(1, math.ceil(p * len(v))) - 1]


def run_demo(meshos, seed, faults, extra):
    cmd = [meshos, "demo", "--seed", str(seed), "--faults", faults, "--json", *extra]
    started = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-4000:])
        raise SystemExit(f"{' '.join(cmd)} failed with {proc.returncode}")
    report = json.loads(proc.stdout)
    report["wall_seconds"] = time.monotonic() - started
    return report


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--meshos", default="target/release/meshos")
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    ap.add_argument("--controls", type=int, default=2, help="fault-free runs")
    ap.add_argument("--control-seconds", type=int, default=150)
    ap.add_argument("--out", default=None, help="write every run's report here (JSON)")
    args = ap.parse_args()

    runs, controls = [], []
    for seed in args.seeds:
        r = run_demo(args.meshos, seed, "all", [])
        runs.append(r)
        print(f"seed {seed}: " + ", ".join(
            f"{f['fault']}={f['state']}{'' if f['diagnosis_correct'] else '(dx wrong)'}"
            for f in r["faults"]) + f"; false {len(r['false_incidents'])}", file=sys.stderr)
    for i in range(args.controls):
        seed = 1000 + i
        r = run_demo(args.meshos, seed, "none", ["--timeout-secs", str(args.control_seconds)])
        controls.append(r)
        print(f"control {seed}: {r['incidents']} incident(s) in {r['duration_seconds']:.0f} s",
              file=sys.stderr)

    faults = [f for r in runs for f in r["faults"]]
    resolved = [f for f in faults if f["state"] == "resolved"]
    self_resolved = [f for f in faults if f["self_resolved"]]
    auto = [f for f in faults if f["first_playbook_auto"]]
    auto_self = [f for f in auto if f["self_resolved"]]
    mttr = [f["mttr_seconds"] for f in resolved]
    detected = [f for f in faults if f["incident"]]
    correct = [f for f in faults if f["diagnosis_correct"]]
    incidents = sum(r["incidents"] for r in runs)
    false_in_runs = sum(len(r["false_incidents"]) for r in runs)
    duplicates = sum(len(f["duplicates"]) for f in faults)
    control_hours = sum(r["duration_seconds"] for r in controls) / 3600
    control_incidents = sum(r["incidents"] for r in controls)
    by_fault = {}
    for f in faults:
        b = by_fault.setdefault(f["fault"], {"n": 0, "resolved": 0, "self": 0, "dx": 0, "mttr": []})
        b["n"] += 1
        b["resolved"] += f["state"] == "resolved"
        b["self"] += f["self_resolved"]
        b["dx"] += f["diagnosis_correct"]
        if f["mttr_seconds"] is not None:
            b["mttr"].append(f["mttr_seconds"])

    pct = lambda a, b: f"{100 * a / b:.0f} % ({a}/{b})" if b else "-"
    sec = lambda v: "-" if v is None else f"{v:.1f} s"
    print(f"\n{len(runs)} fault runs × {len(runs[0]['faults']) if runs else 0} faults, "
          f"{len(controls)} control runs ({control_hours * 60:.1f} min)\n")
    print("| Measure | Result | Anchor (seeds) | Goal |")
    print("|---|---|---|---|")
    print(f"| Self-resolution, all faults | {pct(len(self_resolved), len(faults))} | 80 % | ≥ 95 % |")
    print(f"| Self-resolution, faults whose first playbook is auto | {pct(len(auto_self), len(auto))} | 80 % | ≥ 95 % |")
    print(f"| Resolved (with or without a human) | {pct(len(resolved), len(faults))} | — | — |")
    print(f"| MTTR p50 / p95 (fault start → verified close) | {sec(quantile(mttr, 0.5))} / {sec(quantile(mttr, 0.95))} | 4.2 min | p50 ≤ 30 s |")
    print(f"| False incidents in fault runs | {pct(false_in_runs, incidents)} of incidents | < 2 % | ≤ 1 % |")
    print(f"| Duplicate incidents for one fault | {duplicates} | — | — |")
    print(f"| False incidents in control runs | {control_incidents} ({control_incidents / control_hours if control_hours else 0:.1f}/h) | — | — |")
    print(f"| Diagnosis AC@1 (first incident names the root cause) | {pct(len(correct), len(faults))} | — | report |")
    print(f"| Detected (an incident was opened) | {pct(len(detected), len(faults))} | — | — |")
    print("\n| Fault | Resolved | Without a human | Diagnosis correct | MTTR p50 |")
    print("|---|---|---|---|---|")
    for k, b in sorted(by_fault.items()):
        print(f"| {k} | {b['resolved']}/{b['n']} | {b['self']}/{b['n']} | {b['dx']}/{b['n']} | {sec(quantile(b['mttr'], 0.5))} |")
    if args.out:
        with open(args.out, "w") as fh:
            json.dump({"runs": runs, "controls": controls}, fh, indent=1)


if __name__ == "__main__":
    main()
