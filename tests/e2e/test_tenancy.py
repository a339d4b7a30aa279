"""Every read and write is scoped to the token's tenant; agent tokens act only for their own agent."""

import pytest

from meshos_e2e import bearer, call_ok, http_client, http_request, tool_error

pytestmark = pytest.mark.anyio


async def test_tenant_b_cannot_read_tenant_a(fleet, uid):
    agent = f"secret-agent-{uid}"
    async with http_client(fleet.server.mcp_url, fleet.tokens["acme-operator"]) as a:
        ev = await call_ok(a, "record_event", {"agent_id": agent, "kind": "tool.call", "outcome": "violation"})
        d = await call_ok(a, "policy_check", {"agent_id": agent, "action": "shell.exec"})
        assert (await call_ok(a, "trust_score", {"agent_id": agent}))["score"] >= 0
        own = await call_ok(a, "evidence_fetch", {"decision_id": d["decision_id"]})
        assert len(own["records"]) == 1

    async with http_client(fleet.server.mcp_url, fleet.tokens["globex-operator"]) as b:
        r = await b.call_tool("trust_score", {"agent_id": agent})
        msg = tool_error(r, "tenant B reading tenant A's trust score")
        assert "agent" in msg.lower(), msg
        r = await b.call_tool("evidence_fetch", {"decision_id": d["decision_id"]})
        msg = tool_error(r, "tenant B fetching tenant A's decision")
        assert "decision_id" in msg or "not found" in msg.lower(), msg
        r = await b.call_tool("evidence_fetch", {"agent_id": agent})
        if not r.is_error:
            records = (r.structured_content or {}).get("records")
            assert records == [], f"tenant B sees tenant A's records: {records}"
        # Tenant B's ledger does not contain A's records either.
        r = await b.call_tool("evidence_fetch", {"agent_id": agent, "limit": 100})
        if not r.is_error:
            assert ev["event_id"] not in str(r.structured_content)
            assert d["decision_id"] not in str(r.structured_content)


async def test_tenant_b_writes_do_not_touch_tenant_a(fleet, uid):
    agent = f"shared-name-{uid}"
    async with http_client(fleet.server.mcp_url, fleet.tokens["acme-operator"]) as a:
        for _ in range(4):
            await call_ok(a, "record_event", {"agent_id": agent, "kind": "tool.call", "outcome": "ok"})
        before = await call_ok(a, "trust_score", {"agent_id": agent})
    async with http_client(fleet.server.mcp_url, fleet.tokens["globex-operator"]) as b:
        for _ in range(6):
            await call_ok(b, "record_event", {"agent_id": agent, "kind": "tool.call", "outcome": "violation"})
        theirs = await call_ok(b, "trust_score", {"agent_id": agent})
    async with http_client(fleet.server.mcp_url, fleet.tokens["acme-operator"]) as a:
        after = await call_ok(a, "trust_score", {"agent_id": agent})
    # Equal up to the time decay of the score between the two reads.
    assert after["score"] == pytest.approx(before["score"], abs=1.0), (before, after)
    assert after["components"]["policy_adherence"] == before["components"]["policy_adherence"], (before, after)
    assert theirs["score"] < after["score"], (theirs, after)


async def test_rest_ingest_is_tenant_scoped(fleet, uid):
    agent = f"rest-scope-{uid}"
    status, _, body = http_request(
        "POST",
        f"{fleet.server.base_url}/v1/events",
        {"events": [{"agent_id": agent, "kind": "tool.call", "outcome": "ok"}]},
        bearer(fleet.tokens["globex-operator"]),
    )
    assert status == 200, body
    async with http_client(fleet.server.mcp_url, fleet.tokens["acme-operator"]) as a:
        r = await a.call_tool("trust_score", {"agent_id": agent})
        tool_error(r, "tenant A reading an agent only tenant B has")
    async with http_client(fleet.server.mcp_url, fleet.tokens["globex-operator"]) as b:
        assert (await call_ok(b, "trust_score", {"agent_id": agent}))["score"] >= 0


async def test_agent_token_cannot_act_for_another_agent(fleet):
    token = fleet.tokens["acme-agent-a1"]
    async with http_client(fleet.server.mcp_url, token) as client:
        mine = await call_ok(client, "record_event", {"agent_id": "a1", "kind": "tool.call", "outcome": "ok"})
        assert mine["event_id"]
        r = await client.call_tool("record_event", {"agent_id": "a2", "kind": "tool.call", "outcome": "ok"})
        msg = tool_error(r, "agent a1 recording an event for a2")
        assert "a2" in msg or "agent" in msg.lower(), msg
        # Still serving, still able to act for itself.
        assert (await call_ok(client, "trust_score", {"agent_id": "a1"}))["score"] >= 0


async def test_auditor_cannot_write(fleet, uid):
    async with http_client(fleet.server.mcp_url, fleet.tokens["acme-auditor"]) as client:
        r = await client.call_tool("record_event", {"agent_id": f"aud-{uid}", "kind": "tool.call", "outcome": "ok"})
        tool_error(r, "auditor recording an event")
