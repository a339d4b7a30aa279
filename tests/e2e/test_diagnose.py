"""`meshos diagnose`: the real binary on user-supplied graph and metrics files.

A small fleet where a degraded region slows a shared tool, the tool's latency is amplified by
retries in the agents that call it, and the agents' latency is the loudest symptom. The CLI must
name the region, with evidence, from the files alone; and every kind of bad file gets an error
that names the line or field.
"""

from __future__ import annotations

import json
import random
import subprocess
from pathlib import Path

import pytest

from meshos_e2e import REPO_ROOT, child_env

START = 1_700_000_000
FAULT_AT = START + 400
ROWS = 600

REGION = "region:eu-west-1.latency"
TOOL = "tool:crm.latency"
MODEL = "model:gpt-4o.latency"
AGENTS = [f"agent:support-{i}.latency" for i in range(4)]
NODES = [REGION, MODEL, TOOL, *AGENTS]
EDGES = [[REGION, TOOL], [MODEL, AGENTS[0]], [MODEL, AGENTS[1]]] + [[TOOL, a] for a in AGENTS]


def fleet_metrics(seed: int = 7) -> list[dict[str, float]]:
    """Linear structural equations with measurement noise that does not propagate: the region
    adds 40 ms from FAULT_AT, the tool passes it on doubled, and each agent retries the tool
    (weight 3). The region's own reading is noisy, so in units of each metric's baseline noise
    the agents move more than the region: the loudest symptom is not the cause."""
    rng = random.Random(seed)
    rows = []
    for i in range(ROWS):
        t = START + i
        region = 20 + (40 if t >= FAULT_AT else 0) + rng.gauss(0, 4)
        model = 300 + rng.gauss(0, 20)
        tool = 50 + 2 * region + rng.gauss(0, 1)
        row = {"timestamp": t, REGION: region + rng.gauss(0, 5), MODEL: model + rng.gauss(0, 2),
               TOOL: tool + rng.gauss(0, 2)}
        for k, agent in enumerate(AGENTS):
            row[agent] = 100 + 3 * tool + (0.5 * model if k < 2 else 0) + rng.gauss(0, 2) + rng.gauss(0, 2)
        rows.append(row)
    return rows


def write_case(tmp: Path, rows=None, nodes=None, edges=None) -> tuple[Path, Path]:
    rows = fleet_metrics() if rows is None else rows
    graph = tmp / "graph.json"
    graph.write_text(json.dumps({"nodes": nodes or NODES, "edges": EDGES if edges is None else edges}))
    metrics = tmp / "metrics.csv"
    cols = ["timestamp", *NODES]
    lines = [",".join(cols)]
    for r in rows:
        lines.append(",".join(str(r[c]) for c in cols))
    metrics.write_text("\n".join(lines) + "\n")
    return graph, metrics


def diagnose(meshos_bin: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(meshos_bin), "diagnose", *args],
        cwd=REPO_ROOT,
        env=child_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )


def ok(proc: subprocess.CompletedProcess) -> dict:
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout:{proc.stdout}\nstderr:{proc.stderr}"
    return json.loads(proc.stdout)


@pytest.mark.parametrize("method", ["ensemble", "pagerank"])
def test_graph_methods_name_the_region_not_the_loudest_symptom(meshos_bin: Path, tmp_path: Path, method: str):
    graph, metrics = write_case(tmp_path)
    out = ok(diagnose(meshos_bin, "--graph", str(graph), "--metrics", str(metrics),
                      "--anomaly-start", str(FAULT_AT), "--method", method, "--top", "3"))
    assert out["method"] == method
    assert len(out["ranking"]) == 3
    assert out["ranking"][0]["node"] == REGION, out["ranking"]
    assert out["seconds"] >= 0
    evidence = out["ranking"][0]["evidence"]
    # The evidence says what moved and by how much against the baseline (about +40 ms).
    assert evidence["metric"] == REGION
    assert evidence["anomaly_start"] == FAULT_AT
    assert 25 < evidence["shift"] < 55, evidence


def test_graph_free_baro_is_fooled_by_the_amplified_symptom(meshos_bin: Path, tmp_path: Path):
    """Why the graph matters: the robust z-score alone ranks an agent (the amplified symptom)
    above the region."""
    graph, metrics = write_case(tmp_path)
    out = ok(diagnose(meshos_bin, "--graph", str(graph), "--metrics", str(metrics),
                      "--anomaly-start", str(FAULT_AT), "--method", "baro", "--top", "7"))
    names = [c["node"] for c in out["ranking"]]
    assert names.index(REGION) > 0, names


def test_without_anomaly_start_the_change_point_is_found(meshos_bin: Path, tmp_path: Path):
    graph, metrics = write_case(tmp_path)
    out = ok(diagnose(meshos_bin, "--graph", str(graph), "--metrics", str(metrics)))
    assert abs(out["anomaly_start"] - FAULT_AT) <= 15, out["anomaly_start"]
    assert out["method"] == "ensemble"
    assert out["ranking"][0]["node"] == REGION


def test_mutual_calls_in_the_graph_are_handled(meshos_bin: Path, tmp_path: Path):
    # Two agents that call each other: a 2-cycle in the graph file.
    edges = EDGES + [[AGENTS[0], AGENTS[1]], [AGENTS[1], AGENTS[0]]]
    graph, metrics = write_case(tmp_path, edges=edges)
    out = ok(diagnose(meshos_bin, "--graph", str(graph), "--metrics", str(metrics),
                      "--anomaly-start", str(FAULT_AT)))
    assert out["ranking"][0]["node"] == REGION


def failing(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode != 0, f"expected a failure, got: {proc.stdout}"
    assert proc.stdout.strip() == "", "no partial JSON on stdout when the input is bad"
    return proc.stderr


def test_bad_metrics_line_is_named(meshos_bin: Path, tmp_path: Path):
    graph, metrics = write_case(tmp_path)
    lines = metrics.read_text().splitlines()
    cells = lines[10].split(",")
    cells[3] = "fast"
    lines[10] = ",".join(cells)
    metrics.write_text("\n".join(lines) + "\n")
    err = failing(diagnose(meshos_bin, "--graph", str(graph), "--metrics", str(metrics)))
    assert "line 11" in err and "fast" in err, err


def test_graph_edge_to_unknown_node_is_named(meshos_bin: Path, tmp_path: Path):
    graph, metrics = write_case(tmp_path, edges=[[REGION, TOOL], [TOOL, "agent:ghost.latency"]])
    err = failing(diagnose(meshos_bin, "--graph", str(graph), "--metrics", str(metrics)))
    assert "edges[1]" in err and "agent:ghost.latency" in err, err


def test_graph_that_is_not_the_expected_shape_says_what_is_expected(meshos_bin: Path, tmp_path: Path):
    graph, metrics = write_case(tmp_path)
    graph.write_text('{"nodes": ["a"], "edges": [["a"]]}')
    err = failing(diagnose(meshos_bin, "--graph", str(graph), "--metrics", str(metrics)))
    assert '"edges":[[cause,effect]' in err and "line 1" in err, err


def test_graph_node_without_a_metrics_column_is_named(meshos_bin: Path, tmp_path: Path):
    graph, metrics = write_case(tmp_path, nodes=[*NODES, "provider:openai.latency"])
    err = failing(diagnose(meshos_bin, "--graph", str(graph), "--metrics", str(metrics),
                           "--anomaly-start", str(FAULT_AT)))
    assert "provider:openai.latency" in err and "column" in err, err


def test_unknown_method_lists_the_methods(meshos_bin: Path, tmp_path: Path):
    graph, metrics = write_case(tmp_path)
    err = failing(diagnose(meshos_bin, "--graph", str(graph), "--metrics", str(metrics), "--method", "magic"))
    for m in ("baro", "circa", "pagerank", "ensemble"):
        assert m in err, err


def test_anomaly_start_outside_the_data_is_refused(meshos_bin: Path, tmp_path: Path):
    graph, metrics = write_case(tmp_path)
    err = failing(diagnose(meshos_bin, "--graph", str(graph), "--metrics", str(metrics),
                           "--anomaly-start", str(START + 10 * ROWS)))
    assert "anomaly start" in err and "no rows at or after it" in err, err


def test_missing_file_is_named(meshos_bin: Path, tmp_path: Path):
    graph, _ = write_case(tmp_path)
    err = failing(diagnose(meshos_bin, "--graph", str(graph), "--metrics", str(tmp_path / "nope.csv")))
    assert "nope.csv" in err, err


def test_topology_from_stored_events_feeds_diagnose(meshos, server, tmp_path: Path):
    """Events posted to a running server → `meshos topology --tenant` builds the metric graph from
    the calls they show → `meshos diagnose` ranks on that graph."""
    from meshos_e2e import bearer, http_request

    token = meshos.token("topo", "operator")
    events = []
    for agent in ("support-a", "support-b"):
        events.append({"agent_id": agent, "kind": "tool_call", "outcome": "ok", "tool": "crm",
                       "region": "aws:eu-west-1", "latency_ms": 120})
        events.append({"agent_id": agent, "kind": "llm_call", "outcome": "ok", "model": "openai/gpt-4o",
                       "region": "aws:eu-west-1", "latency_ms": 300})
    # Two agents that call each other: a cycle, reported, not fatal.
    events.append({"agent_id": "planner", "kind": "tool_call", "outcome": "ok", "tool": "agent:coder"})
    events.append({"agent_id": "coder", "kind": "tool_call", "outcome": "ok", "tool": "agent:planner"})
    status, _, raw = http_request("POST", f"{server.base_url}/v1/events", json.dumps({"events": events}),
                                  {**bearer(token), "Content-Type": "application/json"})
    assert status == 200, raw

    proc = meshos.run("topology", "--tenant", "topo")
    assert proc.returncode == 0, proc.stderr
    graph = json.loads(proc.stdout)
    edges = {tuple(e) for e in graph["edges"]}
    assert ("tool:crm.latency", "agent:support-a.latency") in edges
    assert ("region:aws:eu-west-1.latency", "tool:crm.latency") in edges
    assert ("provider:openai.latency", "model:openai/gpt-4o.latency") in edges
    assert ("agent:coder.latency", "agent:planner.latency") in edges
    assert ("agent:planner.latency", "agent:coder.latency") in edges
    assert "agent:coder ⇄ agent:planner" in proc.stderr
    graph_file = tmp_path / "fleet.json"
    graph_file.write_text(proc.stdout)

    # Metrics for that graph: the CRM tool slows down at FAULT_AT and its callers follow.
    rng = random.Random(3)
    nodes = graph["nodes"]
    lines = [",".join(["timestamp", *nodes])]
    for i in range(ROWS):
        t = START + i
        crm = 120 + (150 if t >= FAULT_AT else 0) + rng.gauss(0, 10)
        row = []
        for n in nodes:
            if n == "tool:crm.latency":
                v = crm
            elif n.startswith("agent:support") and n.endswith(".latency"):
                v = 300 + crm + rng.gauss(0, 10)
            else:
                v = 50 + rng.gauss(0, 5)
            row.append(f"{v:.3f}")
        lines.append(",".join([str(t), *row]))
    metrics = tmp_path / "fleet.csv"
    metrics.write_text("\n".join(lines) + "\n")
    out = ok(diagnose(meshos.binary, "--graph", str(graph_file), "--metrics", str(metrics)))
    assert out["ranking"][0]["node"] == "tool:crm.latency", [c["node"] for c in out["ranking"]]


def test_topology_file_errors_name_the_entry(meshos, tmp_path: Path):
    bad = tmp_path / "topology.json"
    bad.write_text(json.dumps({"entities": ["agent:a", "queue:q"]}))
    proc = meshos.run("topology", "--file", str(bad))
    assert proc.returncode != 0 and proc.stdout.strip() == ""
    assert "entities[1]" in proc.stderr and "unknown kind `queue`" in proc.stderr, proc.stderr
    proc = meshos.run("topology")
    assert proc.returncode != 0 and "--file, --tenant" in proc.stderr, proc.stderr
