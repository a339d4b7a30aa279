#!/usr/bin/env python3
"""Fault-injection benchmark of the healing loop: `meshos demo --json` over several seeds and
fault-free control runs, aggregated into the figures issue 14 asks for.

    # a fleet drawn per seed, one fault at a time, 10-minute control runs (issue 14)
    python3 bench/heal/run.py --fleet random --seeds 1 2 3 4 5 6 7 8 9 10 --controls 2 --parallel 2
    # the fixed 24-agent fleet, six faults 8 s apart (issue 6)
    python3 bench/heal/run.py --fleet classic --seeds 1 2 3 4 5 --controls 2

Per fault: detected (an incident was opened), root cause right (the first incident for it names
the injected root entity), resolved (that incident was verified and closed), self-resolved (and
no human step on any of its incidents), whether the first planned playbook was automatic, MTTR
(fault start -> verified close). Duplicates: further incidents matched to one fault. False
incidents: incidents matching no fault (per fleet-hour in control runs). Controls on healthy
entities: controls whose subject is neither the faulty entity nor an agent the fault affected
(every control of a false incident).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import math
import os
import subprocess
import sys
import time

KINDS = ["pii_leak", "injection_campaign", "model_regression", "cost_spike", "region_latency",
         "tool_outage"]


def quantile(values, p):
    if not values:
        return None
    v = sorted(values)
    return v[max(1, math.ceil(p * len(v))) - 1]


def run_demo(meshos, fleet, seed, faults, extra, log_dir):
    cmd = [meshos, "demo", "--fleet", fleet, "--seed", str(seed), "--faults", faults, "--json",
           *extra]
    started = time.monotonic()
    name = f"{fleet}-{'control' if faults == 'none' else 'faults'}-{seed}"
    err_path = os.path.join(log_dir, name + ".log") if log_dir else None
    with open(err_path or os.devnull, "w") as err:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=err, text=True)
    if proc.returncode != 0:
        if err_path:
            with open(err_path) as fh:
                sys.stderr.write(fh.read()[-4000:])
        raise SystemExit(f"{' '.join(cmd)} failed with {proc.returncode}")
    report = json.loads(proc.stdout)
    report["wall_seconds"] = time.monotonic() - started
    report["control"] = faults == "none"
    report["log"] = err_path
    return report


def brief(r):
    if r["control"]:
        return (f"control {r['seed']}: {r['agents']} agents, {r['incidents']} incident(s) in "
                f"{r['duration_seconds'] / 60:.1f} min, false {len(r['false_incidents'])}, "
                f"healthy controls {len(r.get('healthy_controls', []))}")
    return (f"seed {r['seed']} ({r['agents']} agents): " + ", ".join(
        f"{f['fault']}={f['state']}{'' if f['diagnosis_correct'] else '(dx wrong)'}"
        f"{'(timeout)' if f.get('timed_out') else ''}" for f in r["faults"])
        + f"; false {len(r['false_incidents'])}; healthy controls "
        f"{len(r.get('healthy_controls', []))}")


def pct(a, b):
    return f"{100 * a / b:.0f} % ({a}/{b})" if b else "-"


def sec(v):
    return "-" if v is None else f"{v:.1f} s"


def summarize(runs, controls, fleet):
    faults = [f for r in runs for f in r["faults"]]
    resolved = [f for f in faults if f["state"] == "resolved"]
    auto = [f for f in faults if f["first_playbook_auto"]]
    auto_self = [f for f in auto if f["self_resolved"]]
    auto_machine = [f for f in auto if not f.get("human_fix_expected")]
    auto_machine_self = [f for f in auto_machine if f["self_resolved"]]
    # Resolved, and some incident for the fault placed a control on it (the faulty entity or an
    # agent it affected): a verification that passed after a fix elsewhere does not count.
    fixed = [f for f in resolved
             if len(f.get("controls", [])) > len(f.get("healthy_controls", []))]
    mttr = [f["mttr_seconds"] for f in resolved if f["mttr_seconds"] is not None]
    detected = [f for f in faults if f["incident"]]
    correct = [f for f in faults if f["diagnosis_correct"]]
    duplicates = sum(len(f["duplicates"]) for f in faults)
    incidents = sum(r["incidents"] for r in runs)
    false_in_runs = sum(len(r["false_incidents"]) for r in runs)
    run_hours = sum(r["duration_seconds"] for r in runs) / 3600
    control_hours = sum(r["duration_seconds"] for r in controls) / 3600
    control_false = sum(len(r["false_incidents"]) for r in controls)
    healthy = [h for r in runs + controls for h in r.get("healthy_controls", [])]
    healthy_faults = [h for h in healthy if h.get("fault")]
    observations = sum(len(r.get("observations", [])) for r in runs + controls)
    timed_out = sum(1 for f in faults if f.get("timed_out"))
    agents = sorted({r["agents"] for r in runs + controls})

    print(f"\n{fleet} fleet: {len(runs)} fault run(s), {len(faults)} faults; {len(controls)} "
          f"control run(s) ({control_hours * 60:.1f} min); agents per fleet: "
          f"{', '.join(map(str, agents))}\n")
    print("| Measure | Result | Goal |")
    print("|---|---|---|")
    print(f"| Self-resolution, faults whose first playbook is automatic | "
          f"{pct(len(auto_self), len(auto))} | ≥ 90 % |")
    print(f"| … of those, leaving out faults only a human can fix (a leak that bypasses "
          f"policy_check) | {pct(len(auto_machine_self), len(auto_machine))} | — |")
    print(f"| Resolved in total (with or without a human) | {pct(len(resolved), len(faults))} "
          f"| ≥ 98 % |")
    print(f"| … resolved with a control on the faulty entity or its agents | "
          f"{pct(len(fixed), len(faults))} | — |")
    print(f"| Root cause right (first incident names the injected root) | "
          f"{pct(len(correct), len(faults))} | ≥ 95 % |")
    ctl = (f"{control_false} in {control_hours:.2f} h = {control_false / control_hours:.1f}/h"
           if control_hours else "no control run")
    print(f"| False incidents per fleet-hour, control runs | {ctl} | ≤ 1 |")
    print(f"| False incidents in fault runs | {false_in_runs} of {incidents} incidents "
          f"({false_in_runs / run_hours if run_hours else 0:.1f}/h) | — |")
    print(f"| Duplicate incidents (more than one for a fault) | {duplicates} | 0 |")
    print(f"| Controls placed on healthy entities | {len(healthy)} ({len(healthy_faults)} in "
          f"incidents matched to a fault, {len(healthy) - len(healthy_faults)} in false "
          f"incidents) | 0 |")
    print(f"| MTTR p50 / p95 (fault start → verified close) | {sec(quantile(mttr, 0.5))} / "
          f"{sec(quantile(mttr, 0.95))} | p50 ≤ 30 s |")
    print(f"| Detected (an incident was opened) | {pct(len(detected), len(faults))} | — |")
    print(f"| Faults whose incidents had not settled at the time limit | {timed_out} | — |")
    print(f"| Observations (incidents the server marks as such) | {observations} | — |")

    by_fault = {}
    for f in faults:
        b = by_fault.setdefault(f["fault"], {"n": 0, "det": 0, "dx": 0, "res": 0, "self": 0,
                                             "auto": 0, "dup": 0, "healthy": 0, "mttr": []})
        b["n"] += 1
        b["det"] += bool(f["incident"])
        b["dx"] += f["diagnosis_correct"]
        b["res"] += f["state"] == "resolved"
        b["self"] += f["self_resolved"]
        b["auto"] += f["first_playbook_auto"]
        b["dup"] += len(f["duplicates"])
        b["healthy"] += len(f.get("healthy_controls", []))
        if f["mttr_seconds"] is not None:
            b["mttr"].append(f["mttr_seconds"])
    print("\n| Fault | Detected | Root cause right | Resolved | Without a human | First playbook "
          "auto | Duplicates | Healthy controls | MTTR p50 |")
    print("|---|---|---|---|---|---|---|---|---|")
    for k in sorted(by_fault):
        b = by_fault[k]
        n = b["n"]
        print(f"| {k} | {b['det']}/{n} | {b['dx']}/{n} | {b['res']}/{n} | {b['self']}/{n} | "
              f"{b['auto']}/{n} | {b['dup']} | {b['healthy']} | {sec(quantile(b['mttr'], 0.5))} |")

    print("\n| Run | Agents | Minutes | Root cause right | Resolved | Without a human | "
          "Duplicates | False | Healthy controls |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in runs + controls:
        n = len(r["faults"])
        name = f"control {r['seed']}" if r["control"] else f"seed {r['seed']}"
        print(f"| {name} | {r['agents']} | {r['duration_seconds'] / 60:.1f} | "
              f"{sum(f['diagnosis_correct'] for f in r['faults'])}/{n} | "
              f"{sum(f['state'] == 'resolved' for f in r['faults'])}/{n} | "
              f"{sum(f['self_resolved'] for f in r['faults'])}/{n} | "
              f"{sum(len(f['duplicates']) for f in r['faults'])} | {len(r['false_incidents'])} | "
              f"{len(r.get('healthy_controls', []))} |")

    if healthy:
        print("\nControls on healthy entities:")
        for r in runs + controls:
            for h in r.get("healthy_controls", []):
                tag = "control" if r["control"] else "seed"
                print(f"  {tag} {r['seed']}: {h['incident']} ({h.get('fault') or 'false incident'})"
                      f": {h['control']} {h['subject']}")
    wrong = [(r["seed"], f) for r in runs for f in r["faults"] if not f["diagnosis_correct"]]
    if wrong:
        print("\nRoot cause wrong:")
        for seed, f in wrong:
            print(f"  seed {seed}: {f['fault']} at {f['root_cause']}: "
                  f"{f['incident'] or 'no incident'} named {f['diagnosed_root_cause']} "
                  f"({f['state']})")


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--meshos", default=None,
                    help="the meshos binary [default: $CARGO_TARGET_DIR or target/release/meshos]")
    ap.add_argument("--fleet", choices=["classic", "random"], default="classic")
    ap.add_argument("--seeds", type=int, nargs="+", default=None,
                    help="fault runs [default: 1-10 random, 1-5 classic]")
    ap.add_argument("--faults", default="all", help="all, or a comma-separated list of "
                    + ", ".join(KINDS))
    ap.add_argument("--controls", type=int, default=2, help="fault-free runs (seeds 1000, 1001, …)")
    ap.add_argument("--control-minutes", type=float, default=None,
                    help="length of a control run after the warm-up [default: 10 random, 2.5 "
                         "classic]")
    ap.add_argument("--parallel", type=int, default=1,
                    help="demo processes at once (each starts its own server); on 2 cores "
                         "timings stretch")
    ap.add_argument("--demo-arg", action="append", default=[],
                    help="extra argument for every `meshos demo` (repeatable), e.g. "
                         "--demo-arg=--warmup-secs=90")
    ap.add_argument("--logs", default=None, help="directory for each run's progress log")
    ap.add_argument("--out", default=None, help="write every run's report here (JSON)")
    args = ap.parse_args()

    meshos = args.meshos or os.path.join(os.environ.get("CARGO_TARGET_DIR", "target"),
                                         "release", "meshos")
    seeds = args.seeds or (list(range(1, 11)) if args.fleet == "random" else [1, 2, 3, 4, 5])
    minutes = args.control_minutes
    if minutes is None:
        minutes = 10 if args.fleet == "random" else 2.5
    if args.logs:
        os.makedirs(args.logs, exist_ok=True)
    if args.parallel > 1 and (os.cpu_count() or 1) <= 2 * args.parallel:
        print(f"note: {args.parallel} demo processes on {os.cpu_count()} cores: each runs its "
              "own server and fleet, so latencies and detection times stretch", file=sys.stderr)
    jobs = [(seed, args.faults, list(args.demo_arg)) for seed in seeds]
    jobs += [(1000 + i, "none", ["--timeout-secs", str(int(minutes * 60)), *args.demo_arg])
             for i in range(args.controls)]
    runs, controls = [], []
    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.parallel)) as pool:
        futures = {pool.submit(run_demo, meshos, args.fleet, seed, faults, extra, args.logs):
                   (seed, faults) for seed, faults, extra in jobs}
        for fut in concurrent.futures.as_completed(futures):
            r = fut.result()
            (controls if r["control"] else runs).append(r)
            print(f"[{(time.monotonic() - started) / 60:5.1f} min] {brief(r)}", file=sys.stderr)
    runs.sort(key=lambda r: r["seed"])
    controls.sort(key=lambda r: r["seed"])
    summarize(runs, controls, args.fleet)
    if args.out:
        with open(args.out, "w") as fh:
            json.dump({"fleet": args.fleet, "runs": runs, "controls": controls}, fh, indent=1)


if __name__ == "__main__":
    main()
