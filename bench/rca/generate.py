#!/usr/bin/env python3
"""Synthetic root-cause cases for the Mesh OS RCA benchmark (numpy only, deterministic by seed).

PyRCA-style linear structural equations on random DAGs (PyRCA's `pyrca/simulation/data_gen.py`
is the model: x_i = sum_j w_ji f(x_j) + n_i * eps_i, faults after a start time), with fleet-like
node names (`agent:support-bot.latency`, `tool:crm.error_rate`, `model:gpt-4o.latency`,
`region:eu-west-1.error_rate`, ...) ordered region < provider < model < tool < agent so edges run
from infrastructure towards the agents that depend on it.

Two things differ from PyRCA on purpose:
- Every metric is *observed* with its own measurement noise that does not propagate (a p95 latency
  estimated from a few requests, an error rate from a small window). In a purely linear SEM a
  downstream node can never show a larger z-score than the root (its variance contains the
  root's); with measurement noise and edge weights > 1 it can, which is what real fleets do
  (retries and fan-out amplify a slow dependency). The `shift` family requires the loudest
  symptom (largest |z| after the start) NOT to be the root, so per-metric z-scores fail there.
- Levels are not centred: metrics have positive baselines, so a parent-weight fault (an agent
  that now calls a tool twice) moves the mean, not only the variance.

Fault kinds (applied from the anomaly start on):
  shift          mean shift at the root that propagates and is amplified downstream
  noise          the root's noise weight goes up (variance up), PyRCA anomaly_type 1
  parent_weight  the root's dependence on one of its parents changes, PyRCA anomaly_type 2
                 (the root is the child whose equation changed, as in PyRCA)
  multi_root     two independent roots (neither an ancestor of the other), each a shift or noise
  attenuate      mean shift at the root, every edge below it attenuating (|w| 0.2-0.7)
  variance       noise sd at the root x3-8, mean unchanged, root in the middle of the graph
  roots3         three independent roots (pairwise not ancestors), each a shift, noise or
                 parent-weight fault; all three are the answer
  nonlinear      links through tanh / square / threshold terms and products of two parents;
                 the fault is a shift or a variance change at a node with children

Two generator styles (--styles):
  a   the model above: Gaussian noise, measurement noise, 600 samples 1 s apart, a step fault
      between 55% and 72% of the series, a tree + 0.6 n extra forward edges.
  b   structurally different on purpose: Erdos-Renyi DAG over a random order (expected in-degree
      1-2.5), heavy-tailed process noise (Laplace or Student-t with 3-5 dof) with AR(1) memory in
      every node, no measurement noise, 400-1000 samples 5-30 s apart, the fault starting between
      35% and 80% of the series and ramping in over 0-30 samples, edge weights |w| 0.3-1.5 with 30%
      negative (amplify/attenuate families override the edges below the root as in style a).

Output per case directory:
  graph.json            {"nodes":[...], "edges":[[cause, effect], ...]}  the true DAG
  graph_missing20.json  the same graph with 20% of its edges removed (robustness study)
  graph_cycle.json      the true graph plus back-edges (mutual calls) -- the data stay a DAG's
  graph_extra20.json    the true graph plus 20% spurious forward edges (the data do not use them)
  metrics.csv           timestamp (unix seconds, 1 s apart) + one column per node
  truth.json            root causes, fault kind, anomaly start (the "start off by 30/60 s"
                        variants are the true start + offset, applied by the harness)

Usage: python bench/rca/generate.py --out DIR [--cases 20] [--seed 1] [--families shift,noise,...]
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

# The first four are the original families (issue 5); their cases are unchanged for style "a".
FAMILIES = ("shift", "noise", "parent_weight", "multi_root",
            "attenuate", "variance", "roots3", "nonlinear")
STYLES = ("a", "b")

# Entity kinds in causal order: a dependency is always of an earlier (or the same) kind.
KINDS = {
    "region": ["us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-south-1", "ap-northeast-1"],
    "provider": ["openai", "anthropic", "azure-openai", "bedrock", "vertex"],
    "model": ["gpt-4o", "gpt-4o-mini", "claude-sonnet", "claude-haiku", "llama-3-70b", "mistral-large",
              "gemini-pro"],
    "tool": ["crm", "search", "billing", "kb", "email", "calendar", "vector-db", "payments", "tickets",
             "web-fetch", "sql", "sandbox"],
    "agent": ["support-bot", "sales-bot", "triage-agent", "coder", "researcher", "billing-agent",
              "onboarding-bot", "sre-agent", "legal-review", "hr-assistant", "summarizer", "planner"],
}
KIND_ORDER = list(KINDS)
METRICS = {
    # metric -> (baseline level, unit scale) used to turn standardised values into plausible numbers
    "latency": (250.0, 40.0),
    "error_rate": (0.02, 0.004),
    "violation_rate": (0.005, 0.001),
    "cost": (0.8, 0.1),
}
# How many nodes of each kind a graph gets, as fractions (agents and tools dominate a fleet).
KIND_SHARE = {"region": 0.1, "provider": 0.1, "model": 0.2, "tool": 0.3, "agent": 0.3}

START_TS = 1_767_225_600  # 2026-01-01T00:00:00Z


def fleet_names(n: int, rng: np.random.Generator) -> list[str]:
    """n distinct metric names, in an order that is a valid causal (topological) order."""
    counts = {k: max(1, int(round(KIND_SHARE[k] * n))) for k in KIND_ORDER}
    while sum(counts.values()) > n:
        counts[max(counts, key=counts.get)] -= 1
    while sum(counts.values()) < n:
        counts["agent"] += 1
    names: list[str] = []
    for kind in KIND_ORDER:
        entities = list(KINDS[kind])
        copy = 2
        while len(entities) * len(METRICS) < counts[kind]:  # large graphs: more of each kind
            entities += [f"{e}-{copy}" for e in KINDS[kind]]
            copy += 1
        pool = [f"{kind}:{e}.{m}" for e in entities for m in METRICS]
        pick = rng.choice(len(pool), size=counts[kind], replace=False)
        names += sorted(pool[i] for i in pick)  # sorted within a kind: order stays deterministic
    return names


def random_dag(n: int, rng: np.random.Generator, extra_edge_ratio: float = 0.6) -> np.ndarray:
    """Adjacency A[i, j] = 1 means i causes j, with i < j (so index order is topological).

    Like PyRCA's DAGGen: a spanning tree (every non-first node gets one earlier parent), then extra
    random forward edges. Parents are drawn preferring nearby earlier nodes so paths get long.
    """
    a = np.zeros((n, n), dtype=np.int8)
    for j in range(1, n):
        lo = max(0, j - max(3, n // 3))
        a[rng.integers(lo, j), j] = 1
    extra = int(extra_edge_ratio * n)
    tries = 0
    while extra > 0 and tries < 50 * n:
        tries += 1
        j = int(rng.integers(1, n))
        i = int(rng.integers(0, j))
        if not a[i, j]:
            a[i, j] = 1
            extra -= 1
    return a


def descendants(a: np.ndarray, i: int) -> set[int]:
    seen, stack = set(), [i]
    while stack:
        u = stack.pop()
        for v in np.nonzero(a[u])[0]:
            v = int(v)
            if v not in seen:
                seen.add(v)
                stack.append(v)
    return seen


def weight(rng: np.random.Generator, lo: float = 0.4, hi: float = 1.0) -> float:
    """PyRCA's uniform weight generator shape: |w| in [lo, hi], random sign (mostly positive:
    a slower tool makes its callers slower)."""
    w = rng.uniform(lo, hi)
    return w if rng.random() < 0.85 else -w


def pairwise_unrelated(a: np.ndarray, k: int, rng: np.random.Generator, pool=None) -> list[int] | None:
    """k nodes, none an ancestor of another (drawn from `pool`, default all nodes), or None."""
    n = a.shape[0]
    desc = [descendants(a, i) for i in range(n)]
    chosen: list[int] = []
    pool = list(range(n)) if pool is None else list(pool)
    for _ in range(k):
        cand = [j for j in pool if j not in chosen
                and all(j not in desc[r] and r not in desc[j] for r in chosen)]
        if not cand:
            return None
        chosen.append(int(rng.choice(cand)))
    return sorted(chosen)


NONLINEAR = ("linear", "tanh", "square", "threshold")


def link_terms(a: np.ndarray, rng: np.random.Generator, nonlinear: bool) -> dict:
    """Per node: one link function per incoming edge and, for nonlinear cases, sometimes a product
    of two standardised parents."""
    n = a.shape[0]
    terms = {}
    for j in range(n):
        parents = [int(i) for i in np.nonzero(a[:, j])[0]]
        fs = {i: (str(rng.choice(NONLINEAR)) if nonlinear else "linear") for i in parents}
        prod = None
        if nonlinear and len(parents) >= 2 and rng.random() < 0.4:
            i1, i2 = rng.choice(parents, size=2, replace=False)
            prod = (int(i1), int(i2), float(rng.uniform(0.4, 1.0)) * (1 if rng.random() < 0.8 else -1))
        terms[j] = (fs, prod)
    return terms


def apply_link(f: str, z: np.ndarray) -> np.ndarray:
    """z is a parent standardised on its baseline; every f keeps roughly unit scale near 0..2 sd."""
    if f == "tanh":
        return 1.5 * np.tanh(z)
    if f == "square":
        return 0.5 * z * z
    if f == "threshold":
        return np.where(z > 0.5, 1.5 * (z - 0.5) + 0.5, 0.2 * z)
    return z


def simulate(a, w, noise_w, base, obs_noise, n_samples, start, faults, rng):
    """Run the SEM. `faults` is a list of (kind, node, params); the change applies from `start`."""
    n = a.shape[0]
    x = np.zeros((n_samples, n))
    after = np.arange(n_samples) >= start
    for j in range(n):
        parents = np.nonzero(a[:, j])[0]
        nw = np.full(n_samples, noise_w[j])
        wj = np.tile(w[:, j], (n_samples, 1))  # per-sample weights so parent-weight faults can switch
        shift = np.zeros(n_samples)
        for kind, node, p in faults:
            if node != j:
                continue
            if kind == "shift":
                shift[after] += p["delta"]
            elif kind == "noise":
                nw[after] *= p["factor"]
            elif kind == "parent_weight":
                wj[after, p["parent"]] += p["delta_w"]
        eps = rng.standard_normal(n_samples)
        val = base[j] + nw * eps + shift
        if len(parents):
            val += (x[:, parents] * wj[:, parents]).sum(axis=1)
        x[:, j] = val
    # Observation noise: measured, not propagated (see the module docstring).
    return x + obs_noise * rng.standard_normal((n_samples, n))


def simulate_general(a, w, noise_w, base, obs_noise, n_samples, start, faults, rng, terms,
                     noise="gauss", ar=None, ramp=0):
    """The general simulator (new families, style b): link functions from `terms` applied to parents
    standardised on their own baseline, optional heavy-tailed noise with AR(1) memory, a fault that
    ramps in over `ramp` samples. Faults: shift (delta, in units of the node's noise weight),
    noise (factor on the noise sd), parent_weight (delta_w added to one incoming weight)."""
    n = a.shape[0]
    x = np.zeros((n_samples, n))
    ramp_w = np.clip((np.arange(n_samples) - start + 1) / max(ramp, 1), 0.0, 1.0)
    for j in range(n):
        parents = [int(i) for i in np.nonzero(a[:, j])[0]]
        if noise == "laplace":
            eps = rng.laplace(0.0, 1.0 / np.sqrt(2.0), n_samples)
        elif noise.startswith("t"):
            dof = int(noise[1:])
            eps = rng.standard_t(dof, n_samples) / np.sqrt(dof / (dof - 2.0))
        else:
            eps = rng.standard_normal(n_samples)
        if ar is not None and ar[j] > 0:
            e = np.empty(n_samples)
            prev = 0.0
            scale = np.sqrt(1.0 - ar[j] ** 2)
            for t in range(n_samples):
                prev = ar[j] * prev + scale * eps[t]
                e[t] = prev
            eps = e
        nw = np.full(n_samples, noise_w[j])
        shift = np.zeros(n_samples)
        dw = {}
        for kind, node, p in faults:
            if node != j:
                continue
            if kind == "shift":
                shift += p["delta"] * noise_w[j] * ramp_w
            elif kind == "noise":
                nw = nw * (1.0 + (p["factor"] - 1.0) * ramp_w)
            elif kind == "parent_weight":
                dw[p["parent"]] = p["delta_w"] * ramp_w
        val = base[j] + nw * eps + shift
        fs, prod = terms[j]
        zs = {}
        for i in parents:
            ref = x[:start, i]
            zs[i] = (x[:, i] - ref.mean()) / (ref.std() + 1e-9)
            val = val + (w[i, j] + dw.get(i, 0.0)) * apply_link(fs[i], zs[i])
        if prod is not None:
            i1, i2, c = prod
            val = val + c * zs[i1] * zs[i2]
        x[:, j] = val
    if obs_noise is None:
        return x
    return x + obs_noise * rng.standard_normal((n_samples, n))


def er_dag(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Style b: Erdos-Renyi DAG over a random order; returns (adjacency in index order, order).
    Index order is re-labelled to be topological so names can follow the fleet layering."""
    deg = rng.uniform(1.0, 2.5)
    p = min(1.0, 2.0 * deg / max(n - 1, 1))
    a = (rng.random((n, n)) < p).astype(np.int8)
    a = np.triu(a, 1)
    # connect isolated nodes to something earlier/later so every node is in the graph's story
    for j in range(1, n):
        if not a[:, j].any() and not a[j].any():
            a[int(rng.integers(0, j)), j] = 1
    return a


def zscores(y: np.ndarray, start: int) -> np.ndarray:
    """|mean shift| after the start in units of the baseline std, per column (what n-sigma sees)."""
    pre, post = y[:start], y[start:]
    sd = pre.std(axis=0) + 1e-12
    return np.abs(post.mean(axis=0) - pre.mean(axis=0)) / sd


def make_case(family: str, n: int, seed: int, n_samples: int = 600, max_tries: int = 200) -> dict:
    """One case, deterministic in (family, n, seed). Retries (with the same rng stream) until the
    fault is visible at the root and, for `shift`, the loudest symptom is not the root."""
    rng = np.random.default_rng(seed)
    names = fleet_names(n, rng)
    a = random_dag(n, rng)
    start = int(rng.integers(int(n_samples * 0.55), int(n_samples * 0.72)))
    for _attempt in range(max_tries):
        w = np.zeros((n, n))
        for i, j in zip(*np.nonzero(a)):
            w[i, j] = weight(rng)
        noise_w = rng.uniform(0.5, 1.5, n)
        base = rng.uniform(1.0, 3.0, n)  # uncentred: parent-weight faults move means
        obs_noise = rng.uniform(0.3, 1.2, n)
        has_parents = [j for j in range(n) if a[:, j].any()]
        has_children = [i for i in range(n) if a[i].any()]

        faults = []
        if family == "shift":
            root = int(rng.choice(has_children))
            # Amplify along downstream paths: weights > 1 on edges below the root (fan-out, retries).
            for d in [root] + sorted(descendants(a, root)):
                for c in np.nonzero(a[d])[0]:
                    if rng.random() < 0.7:
                        w[d, c] = rng.uniform(1.5, 3.0)
            obs_noise[root] = rng.uniform(1.0, 2.0)
            faults.append(("shift", root, {"delta": float(rng.uniform(2.0, 4.0))}))
            roots = [root]
        elif family == "noise":
            root = int(rng.integers(0, n))
            faults.append(("noise", root, {"factor": float(rng.uniform(4.0, 8.0))}))
            roots = [root]
        elif family == "parent_weight":
            root = int(rng.choice(has_parents))
            parent = int(rng.choice(np.nonzero(a[:, root])[0]))
            dw = float(rng.uniform(1.0, 2.5)) * (1 if rng.random() < 0.8 else -1)
            faults.append(("parent_weight", root, {"parent": parent, "delta_w": dw}))
            roots = [root]
        elif family == "multi_root":
            r1 = int(rng.integers(0, n))
            related = descendants(a, r1) | {r1} | {i for i in range(n) if r1 in descendants(a, i)}
            cand = [j for j in range(n) if j not in related]
            if not cand:
                continue
            r2 = int(rng.choice(cand))
            roots = sorted([r1, r2])
            for r in roots:
                if rng.random() < 0.7:
                    faults.append(("shift", r, {"delta": float(rng.uniform(2.5, 4.0))}))
                else:
                    faults.append(("noise", r, {"factor": float(rng.uniform(4.0, 8.0))}))
        else:
            raise ValueError(f"unknown family {family!r}; expected one of {FAMILIES}")

        y = simulate(a, w, noise_w, base, obs_noise, n_samples, start, faults, rng)
        z = zscores(y, start)
        sd_ratio = y[start:].std(axis=0) / (y[:start].std(axis=0) + 1e-12)
        # Visible at every root: a mean shift of >= 1.5 baseline sd or variance up >= 2x.
        visible = all(z[r] >= 1.5 or sd_ratio[r] >= 1.5 for r in roots)
        loudest = int(np.argmax(z))
        if not visible:
            continue
        if family == "shift" and loudest == roots[0]:
            continue
        break
    else:
        raise RuntimeError(f"could not make a valid {family} case (n={n}, seed={seed})")

    # Plausible units per metric kind; a per-column affine map changes nothing for the methods.
    level = np.array([METRICS[nm.rsplit(".", 1)[1]][0] for nm in names])
    unit = np.array([METRICS[nm.rsplit(".", 1)[1]][1] for nm in names])
    values = level + unit * (y - y[:start].mean(axis=0))

    edges = [[names[i], names[j]] for i, j in zip(*np.nonzero(a))]
    fault_desc = []
    for kind, node, p in faults:
        d = {"kind": kind, "node": names[node]}
        if kind == "parent_weight":
            d.update(parent=names[p["parent"]], delta_w=round(p["delta_w"], 4))
        else:
            d.update({k: round(v, 4) for k, v in p.items()})
        fault_desc.append(d)
    return {
        "names": names,
        "edges": edges,
        "values": values,
        "timestamps": START_TS + np.arange(n_samples),
        "truth": {
            "family": family,
            "seed": seed,
            "n_nodes": n,
            "n_edges": len(edges),
            "root_causes": [names[r] for r in roots],
            "fault_kind": family if family != "multi_root" else "multi_root",
            "faults": fault_desc,
            "anomaly_start": int(START_TS + start),
            "anomaly_start_index": start,
            "n_samples": n_samples,
            "loudest_symptom": names[loudest],
            "loudest_is_root": names[loudest] in [names[r] for r in roots],
            "root_z": [round(float(z[r]), 3) for r in roots],
            "loudest_z": round(float(z[loudest]), 3),
        },
        "rng": rng,
    }


def _pack(names, a, values, timestamps, start, family, seed, n, roots, faults, z, style, extra_truth):
    loudest = int(np.argmax(z))
    edges = [[names[i], names[j]] for i, j in zip(*np.nonzero(a))]
    fault_desc = []
    for kind, node, p in faults:
        d = {"kind": kind, "node": names[node]}
        if kind == "parent_weight":
            d.update(parent=names[p["parent"]], delta_w=round(p["delta_w"], 4))
        else:
            d.update({k: round(v, 4) for k, v in p.items()})
        fault_desc.append(d)
    truth = {
        "family": family, "style": style, "seed": seed, "n_nodes": n, "n_edges": len(edges),
        "root_causes": [names[r] for r in roots], "fault_kind": family, "faults": fault_desc,
        "anomaly_start": int(timestamps[start]), "anomaly_start_index": start,
        "n_samples": len(timestamps), "loudest_symptom": names[loudest],
        "loudest_is_root": loudest in roots, "root_z": [round(float(z[r]), 3) for r in roots],
        "loudest_z": round(float(z[loudest]), 3),
    }
    truth.update(extra_truth)
    return {"names": names, "edges": edges, "values": values, "timestamps": timestamps, "truth": truth}


def make_case_general(family: str, n: int, seed: int, style: str, max_tries: int = 200) -> dict:
    """New families (style a) and every family in style b. Deterministic in (family, n, seed, style)."""
    rng = np.random.default_rng(seed)
    names = fleet_names(n, rng)
    if style == "a":
        a = random_dag(n, rng)
        n_samples, spacing = 600, 1
        start = int(rng.integers(int(n_samples * 0.55), int(n_samples * 0.72)))
        noise_kind, ar, ramp = "gauss", None, 0
    else:
        a = er_dag(n, rng)
        n_samples = int(rng.integers(400, 1001))
        spacing = int(rng.choice([5, 10, 15, 30]))
        start = int(rng.integers(int(n_samples * 0.35), int(n_samples * 0.80)))
        noise_kind = str(rng.choice(["laplace", "t3", "t4", "t5"]))
        ar = rng.uniform(0.0, 0.6, n)
        ramp = int(rng.integers(0, 31))
    nonlinear = family == "nonlinear"
    has_parents = [j for j in range(n) if a[:, j].any()]
    has_children = [i for i in range(n) if a[i].any()]
    for _attempt in range(max_tries):
        w = np.zeros((n, n))
        for i, j in zip(*np.nonzero(a)):
            if style == "a":
                w[i, j] = weight(rng)
            else:
                m = rng.uniform(0.3, 1.5)
                w[i, j] = m if rng.random() < 0.7 else -m
        noise_w = rng.uniform(0.5, 1.5, n)
        base = rng.uniform(1.0, 3.0, n) if style == "a" else rng.lognormal(1.0, 0.8, n)
        obs_noise = rng.uniform(0.3, 1.2, n) if style == "a" else None
        terms = link_terms(a, rng, nonlinear)

        def fault_at(r, kinds):
            k = str(rng.choice(kinds))
            if k == "parent_weight" and not a[:, r].any():
                k = "shift"
            if k == "shift":
                return ("shift", r, {"delta": float(rng.uniform(2.0, 4.0)) * (1 if rng.random() < 0.85 else -1)})
            if k == "noise":
                return ("noise", r, {"factor": float(rng.uniform(3.0, 8.0))})
            parent = int(rng.choice(np.nonzero(a[:, r])[0]))
            return ("parent_weight", r, {"parent": parent,
                                         "delta_w": float(rng.uniform(1.0, 2.5)) * (1 if rng.random() < 0.8 else -1)})

        faults = []
        if family in ("shift", "attenuate"):
            root = int(rng.choice(has_children))
            lo, hi = (1.5, 3.0) if family == "shift" else (0.2, 0.7)
            for d in [root] + sorted(descendants(a, root)):
                for c in np.nonzero(a[d])[0]:
                    if family == "attenuate" or rng.random() < 0.7:
                        w[d, c] = rng.uniform(lo, hi) * np.sign(w[d, c])
            faults.append(fault_at(root, ["shift"]))
            roots = [root]
        elif family in ("noise", "variance"):
            pool = list(range(n)) if family == "noise" else (
                [j for j in has_children if a[:, j].any()] or has_children)
            root = int(rng.choice(pool))
            lo = 4.0 if family == "noise" else 3.0
            faults.append(("noise", root, {"factor": float(rng.uniform(lo, 8.0))}))
            roots = [root]
        elif family == "parent_weight":
            root = int(rng.choice(has_parents))
            faults.append(fault_at(root, ["parent_weight"]))
            roots = [root]
        elif family in ("multi_root", "roots3"):
            k = 2 if family == "multi_root" else 3
            roots = pairwise_unrelated(a, k, rng)
            if roots is None:
                continue
            kinds = ["shift", "shift", "noise"] if family == "multi_root" else ["shift", "noise", "parent_weight"]
            faults = [fault_at(r, kinds) for r in roots]
        elif family == "nonlinear":
            root = int(rng.choice(has_children))
            faults.append(fault_at(root, ["shift", "shift", "noise"]))
            roots = [root]
        else:
            raise ValueError(f"unknown family {family!r}; expected one of {FAMILIES}")

        y = simulate_general(a, w, noise_w, base, obs_noise, n_samples, start, faults, rng, terms,
                             noise=noise_kind, ar=ar, ramp=ramp)
        if not np.isfinite(y).all():
            continue
        z = zscores(y, start)
        sd_ratio = y[start:].std(axis=0) / (y[:start].std(axis=0) + 1e-12)
        if not all(z[r] >= 1.5 or sd_ratio[r] >= 1.5 for r in roots):
            continue
        if family == "shift" and style == "a" and int(np.argmax(z)) in roots:
            continue
        break
    else:
        raise RuntimeError(f"could not make a valid {family}/{style} case (n={n}, seed={seed})")

    level = np.array([METRICS[nm.rsplit(".", 1)[1]][0] for nm in names])
    unit = np.array([METRICS[nm.rsplit(".", 1)[1]][1] for nm in names])
    values = level + unit * (y - y[:start].mean(axis=0)) / (y[:start].std(axis=0) + 1e-9)
    timestamps = START_TS + spacing * np.arange(n_samples)
    extra = {"noise": noise_kind, "ramp": ramp, "spacing_s": spacing,
             "nonlinear_links": bool(nonlinear)}
    case = _pack(names, a, values, timestamps, start, family, seed, n, roots, faults, z, style, extra)
    case["rng"] = rng
    return case


def make_any(family: str, n: int, seed: int, style: str = "a") -> dict:
    if style == "a" and family in FAMILIES[:4]:
        case = make_case(family, n, seed)
        case["truth"]["style"] = "a"
        return case
    return make_case_general(family, n, seed, style)


def drop_edges(edges: list, frac: float, rng: np.random.Generator) -> list:
    k = int(round(frac * len(edges)))
    drop = set(rng.choice(len(edges), size=k, replace=False).tolist()) if k else set()
    return [e for i, e in enumerate(edges) if i not in drop]


def add_back_edges(names: list, edges: list, rng: np.random.Generator, k: int = 2) -> list:
    """Mutual calls: reverse k existing edges (keeping the originals), so the file has 2-cycles."""
    pick = rng.choice(len(edges), size=min(k, len(edges)), replace=False)
    return edges + [[edges[i][1], edges[i][0]] for i in sorted(pick.tolist())]


def add_spurious_edges(names: list, edges: list, frac: float, rng: np.random.Generator) -> list:
    """20% more edges that the data do not use, each forward in the names' causal order (so the
    file stays a DAG): dependencies someone declared that carry no effect."""
    have = {tuple(e) for e in edges}
    n = len(names)
    k = max(1, int(round(frac * len(edges))))
    out = list(edges)
    tries = 0
    while k > 0 and tries < 100 * n:
        tries += 1
        i, j = sorted(int(v) for v in rng.choice(n, size=2, replace=False))
        e = (names[i], names[j])
        if e not in have:
            have.add(e)
            out.append(list(e))
            k -= 1
    return out


def write_case(case: dict, out_dir: str) -> None:
    os.makedirs(out_dir, exist_ok=True)
    names, edges, rng = case["names"], case["edges"], case["rng"]

    def dump(fname, obj):
        with open(os.path.join(out_dir, fname), "w") as f:
            json.dump(obj, f, indent=1)
            f.write("\n")

    dump("graph.json", {"nodes": names, "edges": edges})
    dump("graph_missing20.json", {"nodes": names, "edges": drop_edges(edges, 0.2, rng)})
    dump("graph_cycle.json", {"nodes": names, "edges": add_back_edges(names, edges, rng)})
    dump("graph_extra20.json", {"nodes": names, "edges": add_spurious_edges(names, edges, 0.2, rng)})
    dump("truth.json", case["truth"])
    with open(os.path.join(out_dir, "metrics.csv"), "w") as f:
        f.write("timestamp," + ",".join(names) + "\n")
        for ts, row in zip(case["timestamps"], case["values"]):
            f.write(f"{int(ts)}," + ",".join(f"{v:.6g}" for v in row) + "\n")


def case_seed(base_seed: int, family: str, idx: int, style: str = "a") -> int:
    # Stable across runs and Python versions (no hash()): family index * 10^6 + case index;
    # style b adds 500 000 (style a keeps the original seeds, so old cases are unchanged).
    return (base_seed * 10_000_000 + FAMILIES.index(family) * 1_000_000 + idx
            + (500_000 if style == "b" else 0))


def generate(out: str, cases: int, seed: int, families=FAMILIES, sizes=(20, 50), styles=("a",)) -> list[str]:
    """Writes `cases` cases per family and style (sizes alternate) under
    out/<family>/<family>-NNN-nN (style a) or out/<family>-b/<family>-b-NNN-nN (style b)."""
    dirs = []
    for style in styles:
        for fam in families:
            tag = fam if style == "a" else f"{fam}-{style}"
            for idx in range(cases):
                n = sizes[idx % len(sizes)]
                d = os.path.join(out, tag, f"{tag}-s{seed}-{idx:03d}-n{n}")
                dirs.append(d)
                if os.path.exists(os.path.join(d, "truth.json")):
                    continue  # deterministic: a case already written is the same case
                case = make_any(fam, n, case_seed(seed, fam, idx, style), style)
                write_case(case, d)
    return dirs


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, help="output directory")
    ap.add_argument("--cases", type=int, default=20, help="cases per family (default 20)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--families", default=",".join(FAMILIES))
    ap.add_argument("--sizes", default="20,50", help="graph sizes, alternating per case")
    ap.add_argument("--styles", default="a", help="generator styles, a and/or b")
    args = ap.parse_args(argv)
    fams = [f for f in args.families.split(",") if f]
    bad = [f for f in fams if f not in FAMILIES]
    if bad:
        print(f"generate: unknown family {bad}; expected {FAMILIES}", file=sys.stderr)
        return 2
    sizes = tuple(int(s) for s in args.sizes.split(","))
    styles = tuple(x for x in args.styles.split(",") if x)
    if any(x not in STYLES for x in styles):
        print(f"generate: unknown style in {styles}; expected {STYLES}", file=sys.stderr)
        return 2
    dirs = generate(args.out, args.cases, args.seed, fams, sizes, styles)
    print(f"generate: wrote {len(dirs)} cases under {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
