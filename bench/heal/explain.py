#!/usr/bin/env python3
"""Reads the JSON `run.py --out` wrote and explains the failures: false incidents grouped by their
first symptom (kind, metric, direction, how many σ), what they ended in, and per fault the
incidents matched to it. Needs reports with `incident_briefs` (meshos demo after f5d42ed).

    python3 bench/heal/explain.py /tmp/heal.json
"""

import collections
import json
import re
import sys


def first_symptom(b):
    s = (b.get("symptoms") or [{}])[0]
    detail = s.get("detail") or ""
    direction = "up" if "drifted up" in detail else "down" if "drifted down" in detail else ""
    sigma = re.search(r"\(([+-]?[\d.]+)σ", detail)
    return s.get("kind"), s.get("metric"), direction, float(sigma.group(1)) if sigma else None


def main():
    data = json.load(open(sys.argv[1]))
    groups = collections.defaultdict(list)
    for r in data["runs"] + data["controls"]:
        tag = f"{'control' if r.get('control') else 'seed'} {r['seed']}"
        for b in r.get("incident_briefs", []):
            if b.get("fault") is None and not b.get("observation"):
                kind, metric, direction, sigma = first_symptom(b)
                groups[(kind, metric, direction)].append((tag, b, sigma))
    print("False incidents by first symptom:")
    for key, items in sorted(groups.items(), key=lambda kv: -len(kv[1])):
        sig = sorted(abs(s) for _, _, s in items if s is not None)
        states = collections.Counter(b["state"] for _, b, _ in items)
        subjects = collections.Counter((b["subject"] or "?").split(":")[0] for _, b, _ in items)
        print(f"  {key[0]} {key[1]} {key[2]}: {len(items)}; |σ| "
              f"{'-' if not sig else f'{sig[0]:.1f}..{sig[-1]:.1f} (median {sig[len(sig) // 2]:.1f})'}"
              f"; ended {dict(states)}; blamed {dict(subjects)}")
        for tag, b, _ in items[:3]:
            print(f"      e.g. {tag} {b['id']} {b['subject']} {b['state']}: "
                  f"{(b['symptoms'] or [{}])[0].get('detail', '')[:140]}")
    print("\nFaults and their incidents:")
    for r in data["runs"]:
        for f in r["faults"]:
            mine = [b for b in r.get("incident_briefs", [])
                    if b.get("fault") == f["fault"]]
            print(f"  seed {r['seed']} {f['fault']} at {f['root_cause']} "
                  f"({'resolved' if f['resolved'] else f['state']}"
                  f"{', timed out' if f.get('timed_out') else ''}):")
            for b in mine:
                kind, metric, direction, sigma = first_symptom(b)
                print(f"      {b['id']} {b['subject']} {b['state']} "
                      f"playbooks {b.get('tried_playbooks')} controls {b.get('controls')} "
                      f"first symptom {kind} {metric} {direction}; "
                      f"{(b.get('last_reason') or '')[:120]}")


if __name__ == "__main__":
    main()
