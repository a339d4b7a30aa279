"""record_event, trust_score, evidence_fetch and carbon_route: structured results per the contract."""

import json
from datetime import datetime

import pytest

from meshos_e2e import (
    REPO_ROOT,
    call_ok,
    http_client,
    stdio_client_for,
    verify_evidence,
)

pytestmark = pytest.mark.anyio


async def test_record_event_returns_id_and_ledger_index(fleet, uid):
    agent = f"ev-{uid}"
    async with http_client(fleet.server.mcp_url, fleet.operator) as client:
        first = await call_ok(client, "record_event", {"agent_id": agent, "kind": "tool.call", "outcome": "ok"})
        second = await call_ok(
            client,
            "record_event",
            {
                "agent_id": agent,
                "kind": "llm.chat",
                "outcome": "error",
                "latency_ms": 812.5,
                "input_tokens": 1200,
                "output_tokens": 300,
                "cost_usd": 0.0042,
                "model": "gpt-4o-mini",
                "tool": "search",
                "region": "aws:eu-west-1",
                "attributes": {"ticket": "T-1", "retries": 2},
            },
        )
    for ev in (first, second):
        assert isinstance(ev.get("event_id"), str) and ev["event_id"], ev
        assert isinstance(ev.get("ledger_index"), int) and ev["ledger_index"] >= 0, ev
    assert first["event_id"] != second["event_id"]
    assert second["ledger_index"] > first["ledger_index"]


async def test_trust_score_contract_and_violations_lower_it(fleet, uid):
    agent = f"ts-{uid}"
    async with http_client(fleet.server.mcp_url, fleet.operator) as client:
        for _ in range(6):
            await call_ok(client, "record_event", {"agent_id": agent, "kind": "tool.call", "outcome": "ok"})
        before = await call_ok(client, "trust_score", {"agent_id": agent})
        for _ in range(6):
            await call_ok(client, "record_event", {"agent_id": agent, "kind": "tool.call", "outcome": "violation"})
        after = await call_ok(client, "trust_score", {"agent_id": agent})
    for ts in (before, after):
        assert isinstance(ts.get("score"), (int, float)) and 0 <= ts["score"] <= 100, ts
        comps = ts.get("components")
        assert isinstance(comps, dict), ts
        for key in ("policy_adherence", "agent_reputation", "response_integrity", "risk_exposure"):
            assert isinstance(comps.get(key), (int, float)), f"component {key} missing: {comps}"
        sla = ts.get("sla")
        assert isinstance(sla, dict) and "threshold" in sla and isinstance(sla.get("breached"), bool), ts
        updated = ts.get("updated_at")
        assert isinstance(updated, (str, int, float)) and updated, ts
        if isinstance(updated, str):
            datetime.fromisoformat(updated.replace("Z", "+00:00"))  # RFC 3339
    assert after["score"] < before["score"], f"violations did not lower the score: {before['score']} -> {after['score']}"


async def test_denied_decisions_lower_trust(fleet, uid):
    agent = f"tsd-{uid}"
    async with http_client(fleet.server.mcp_url, fleet.operator) as client:
        for _ in range(4):
            await call_ok(client, "policy_check", {"agent_id": agent, "action": "email.send"})
        before = await call_ok(client, "trust_score", {"agent_id": agent})
        for _ in range(4):
            await call_ok(client, "policy_check", {"agent_id": agent, "action": "shell.exec"})
        after = await call_ok(client, "trust_score", {"agent_id": agent})
    assert after["components"]["policy_adherence"] < before["components"]["policy_adherence"], (before, after)
    assert after["score"] < before["score"], (before["score"], after["score"])


async def test_evidence_fetch_by_decision_id_verifies(fleet, uid):
    agent = f"evd-{uid}"
    async with http_client(fleet.server.mcp_url, fleet.operator) as client:
        for i in range(3):
            await call_ok(client, "record_event", {"agent_id": agent, "kind": f"step.{i}", "outcome": "ok"})
        d = await call_ok(client, "policy_check", {"agent_id": agent, "action": "shell.exec"})
        await call_ok(client, "record_event", {"agent_id": agent, "kind": "after", "outcome": "ok"})
        ev = await call_ok(client, "evidence_fetch", {"decision_id": d["decision_id"]})
    assert len(ev["records"]) == 1, f"expected the one decision: {ev['records']}"
    note = verify_evidence(ev)
    assert note.size >= 5


async def test_evidence_fetch_by_agent_with_limit_verifies(fleet, uid):
    agent = f"eva-{uid}"
    async with http_client(fleet.server.mcp_url, fleet.operator) as client:
        recorded = []
        for i in range(5):
            r = await call_ok(client, "record_event", {"agent_id": agent, "kind": f"step.{i}", "outcome": "ok"})
            recorded.append(r["ledger_index"])
        limited = await call_ok(client, "evidence_fetch", {"agent_id": agent, "limit": 2})
        everything = await call_ok(client, "evidence_fetch", {"agent_id": agent, "limit": 50})
    assert 1 <= len(limited["records"]) <= 2, limited["records"]
    verify_evidence(limited)
    verify_evidence(everything)
    got = {r["ledger_index"] for r in everything["records"]}
    assert set(recorded) <= got, f"recorded ledger indexes {recorded} not all in {sorted(got)}"


async def test_carbon_route_eu(fleet):
    args = {"model": "gpt-4o-mini", "input_tokens": 1000, "output_tokens": 500, "residency": ["EU"]}
    async with http_client(fleet.server.mcp_url, fleet.operator) as client:
        r = await call_ok(client, "carbon_route", args)
    for key in ("choice", "alternatives", "tradeoff", "data"):
        assert key in r, f"carbon_route lacks {key!r}: {r}"
    assert isinstance(r["alternatives"], list) and r["alternatives"], r
    for opt in [r["choice"], *r["alternatives"]]:
        for key in ("region", "cost_usd", "gco2e", "latency_ms"):
            assert key in opt, f"option lacks {key!r}: {opt}"
    tradeoff = r["tradeoff"]
    assert (isinstance(tradeoff, dict) and tradeoff.get("text")) or (isinstance(tradeoff, str) and tradeoff), tradeoff
    assert isinstance(r["data"], dict) and r["data"].get("source") and r["data"].get("signal_type"), r["data"]
    # Residency: every option is in an EU region of the shipped dataset.
    dataset = json.loads((REPO_ROOT / "carbon" / "data" / "regions.json").read_text())
    jurisdictions = {reg["id"]: set(reg["jurisdiction"]) for reg in dataset["regions"]}
    for opt in [r["choice"], *r["alternatives"]]:
        assert "EU" in jurisdictions.get(opt["region"], set()), f"{opt['region']} is not an EU region"


async def test_stdio_and_http_share_the_data_dir(fleet, uid, tmp_path):
    """Events recorded through `meshos mcp` (stdio) are visible to `meshos serve` on the same data."""
    agent = f"share-{uid}"
    token = fleet.tokens["stdio-operator"]
    async with stdio_client_for(fleet.meshos, token, tmp_path / "mcp.log") as client:
        ev = await call_ok(client, "record_event", {"agent_id": agent, "kind": "tool.call", "outcome": "ok"})
        ts = await call_ok(client, "trust_score", {"agent_id": agent})
        assert 0 <= ts["score"] <= 100
        stdio_evidence = await call_ok(client, "evidence_fetch", {"agent_id": agent})
        verify_evidence(stdio_evidence)
    async with http_client(fleet.server.mcp_url, token) as client:
        ts = await call_ok(client, "trust_score", {"agent_id": agent})
        assert 0 <= ts["score"] <= 100
        evidence = await call_ok(client, "evidence_fetch", {"agent_id": agent})
    verify_evidence(evidence)
    assert ev["ledger_index"] in {r["ledger_index"] for r in evidence["records"]}


async def test_operator_answers_a_require_approval_decision_over_http(fleet):
    """A payment needs approval; an operator sees it pending, approves it once, and the answer is evidence."""
    async with http_client(fleet.server.mcp_url, fleet.operator) as client:
        decision = await client.call_tool(
            "policy_check", {"agent_id": "billing-bot", "action": "payments.transfer"}
        )
        assert not decision.is_error, decision
        decision_id = decision.structured_content["decision_id"]
        assert decision.structured_content["decision"] == "require_approval"

        pending = await client.call_tool("approvals_pending", {})
        assert decision_id in [p["decision_id"] for p in pending.structured_content["pending"]]

        approved = await client.call_tool(
            "approval_decide", {"decision_id": decision_id, "approve": True, "note": "invoice checked"}
        )
        assert not approved.is_error, approved
        assert approved.structured_content["approved"] is True

        again = await client.call_tool("approval_decide", {"decision_id": decision_id, "approve": False})
        assert again.is_error and "already approved" in again.content[0].text

        evidence = await client.call_tool("evidence_fetch", {"decision_id": decision_id})
        kinds = [r["record_type"] for r in evidence.structured_content["records"]]
        assert kinds == ["decision", "approval"], kinds
