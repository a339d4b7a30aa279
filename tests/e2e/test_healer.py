"""The healing loop in the real server (`meshos serve --healer`), driven through REST ingest, the
`meshos incidents` CLI and the official MCP SDK.

A PII-leak burst from one agent of a ten-agent fleet opens an incident; the redaction overlay is
applied with no human; while the leak goes on the verification fails, the overlay is rolled back
and the next playbook (quarantine) waits for an operator; a wrong digest is refused, the right one
starts it; policy_check then refuses the agent; the timeline is on the ledger and `audit verify`
passes.
"""

from __future__ import annotations

import json
import re
import sys
import time

import pytest

from meshos_e2e import (
    REPO_ROOT, bearer, call_ok, http_client, http_request, leaky_fleet_second, tool_error, wait_for,
)

TENANT = "heal"


def incidents(meshos) -> list[dict]:
    proc = meshos.run("incidents", "list", "--tenant", TENANT)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def show(meshos, incident_id) -> dict:
    proc = meshos.run("incidents", "show", "--tenant", TENANT, incident_id)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


async def gateway_call(server, token: str) -> str:
    """agent-3 reads a file through the gateway (/gateway/mcp): the text of the answer, prefixed
    `ERROR: ` when the gateway refused it."""
    async with http_client(f"{server.base_url}/gateway/mcp", token) as client:
        r = await client.call_tool("fs__read_file", {"path": "/srv/docs/runbook.md"})
        text = "".join(getattr(c, "text", "") for c in r.content)
        return f"ERROR: {text}" if r.is_error else text


@pytest.mark.anyio
async def test_leak_is_redacted_then_escalated_to_an_approved_quarantine(meshos, make_server, tmp_path):
    # The SLA threshold is set low so that the burst, not the trust score reacting to it, opens
    # the incident.
    gateway = tmp_path / "gateway.toml"
    gateway.write_text(
        f'[[upstream]]\nname = "fs"\ncommand = "{sys.executable}"\n'
        f'args = ["{REPO_ROOT / "bench/toolscan/poisoned_server.py"}", "--server", "filesystem"]\n'
    )
    server = make_server("--healer", "--sla-threshold", "5", "--gateway-config", str(gateway))
    token = meshos.token(TENANT, "operator")
    for i in range(5):
        leaky_fleet_second(server, token, 0.0, i)
        time.sleep(0.2)

    # agent-3 also works through the gateway; its client is admitted once by an operator.
    agent3 = meshos.token(TENANT, "agent", agent="agent-3")
    held = await gateway_call(server, agent3)
    assert "waits for an operator" in held, held
    decision = re.search(r"dec_[0-9a-f]+", held).group(0)
    assert meshos.run("gateway", "approve", decision, "--tenant", TENANT).returncode == 0
    time.sleep(1.1)
    assert not (await gateway_call(server, agent3)).startswith("ERROR"), "admitted client refused"

    def leak(i):
        leaky_fleet_second(server, token, 0.7, 100 + i)

    opened = wait_for(lambda: incidents(meshos), "an incident", step=leak)
    assert len(opened) == 1, opened
    inc = opened[0]
    assert inc["kind"] == "violation_burst"
    assert inc["subject"] == "agent:agent-3", inc

    # The leak goes on: the redaction overlay fails its verification, is rolled back, and the
    # quarantine waits for an operator.
    def awaiting():
        view = show(meshos, inc["id"])
        return view if view["state"] == "awaiting_approval" else None

    view = wait_for(awaiting, "awaiting_approval", timeout=90, step=leak)
    states = [t["to"] for t in view["timeline"]]
    assert states[:4] == ["open", "diagnosed", "planned", "executing"], states
    assert "rolled_back" in states, states
    assert view["data"]["plan"]["playbook_id"] == "quarantine-agent"
    assert view["data"]["tried_playbooks"][0] == "redact-pii-leak"
    applied = [t for t in view["timeline"] if t["to"] == "verifying"]
    assert applied and applied[0]["inputs"]["steps"][0]["result"]["control"] == "policy_overlay"
    assert all(isinstance(t["ledger_index"], int) for t in view["timeline"])
    digest = view["data"]["approval"]["digest"]

    wrong = meshos.run("incidents", "approve", "--tenant", TENANT, inc["id"], "--digest", "0" * 64)
    assert wrong.returncode != 0 and "review the current plan" in wrong.stderr, wrong.stderr

    # The same incident over MCP with the official SDK: operators see the plan and its digest; a
    # wrong digest is an error result; an agent token may not even list incidents.
    async with http_client(server.mcp_url, token) as client:
        listed = await call_ok(client, "incident_list", {"states": ["awaiting_approval"]})
        assert [i["id"] for i in listed["incidents"]] == [inc["id"]]
        shown = await call_ok(client, "incident_show", {"incident_id": inc["id"]})
        assert shown["incident"]["data"]["approval"]["digest"] == digest
        refused = await client.call_tool("incident_approve", {"incident_id": inc["id"], "digest": "f" * 64})
        assert "review the current plan" in tool_error(refused, "wrong digest")
        bad = await client.call_tool("incident_list", {"states": ["sleeping"]})
        assert "states[0]" in tool_error(bad, "unknown state")
    agent_token = meshos.token(TENANT, "agent", agent="agent-3")
    async with http_client(server.mcp_url, agent_token) as client:
        forbidden = await client.call_tool("incident_list", {})
        assert "agents cannot read incidents" in tool_error(forbidden, "agent token")
    # And over REST: the same list and plan; wrong digests, agents and unknown ids are refused
    # with a status and a message that says why.
    def rest(method, path, body=None, tok=token):
        status, _, raw = http_request(
            method, f"{server.base_url}{path}", json.dumps(body) if body is not None else None,
            {**bearer(tok), "Content-Type": "application/json"},
        )
        return status, json.loads(raw)

    status, listed = rest("GET", "/v1/incidents?state=awaiting_approval,executing")
    assert status == 200 and [i["id"] for i in listed["incidents"]] == [inc["id"]], listed
    status, shown = rest("GET", f"/v1/incidents/{inc['id']}")
    assert status == 200 and shown["incident"]["data"]["approval"]["digest"] == digest
    status, body = rest("POST", f"/v1/incidents/{inc['id']}/approve", {"digest": "e" * 64})
    assert status == 400 and "review the current plan" in body["error"], body
    status, body = rest("POST", f"/v1/incidents/{inc['id']}/approve", {"digets": digest})
    assert status == 400 and "digets" in body["error"], body
    status, body = rest("POST", f"/v1/incidents/{inc['id']}/approve", {"digest": digest},
                        tok=meshos.token(TENANT, "agent", agent="agent-3"))
    assert status == 403, body
    status, body = rest("GET", "/v1/incidents/inc_nope")
    assert status == 404 and "inc_nope" in body["error"], body

    ok = meshos.run("incidents", "approve", "--tenant", TENANT, inc["id"], "--digest", digest,
                    "--note", "leak confirmed")
    assert ok.returncode == 0, ok.stderr
    approved = json.loads(ok.stdout)
    assert approved["state"] == "executing"
    assert approved["timeline"][-1]["actor"].startswith("cli:")

    # The quarantine reaches policy_check: agent-3 is refused, agent-4 is not.
    async with http_client(server.mcp_url, token) as client:
        async def decision(agent):
            out = await call_ok(client, "policy_check", {"agent_id": agent, "action": "email.send"})
            return out["decision"], [r["policy_id"] for r in out["reasons"]]

        deadline = time.monotonic() + 30
        while True:
            verdict, policies = await decision("agent-3")
            if verdict == "deny" or time.monotonic() > deadline:
                break
            time.sleep(1)
        assert verdict == "deny" and "heal-quarantine" in policies, (verdict, policies)
        other, _ = await decision("agent-4")
        assert other != "deny"
        # The quarantine holds in the path too: the gateway refuses agent-3's next tool call.
        quarantined = await gateway_call(server, agent3)
        assert quarantined.startswith("ERROR") and "heal-quarantine" in quarantined, quarantined

        # An auditor may not release it; an operator can (REST), with a note on the ledger, and
        # agent-3 may act again.
        auditor = meshos.token(TENANT, "auditor")
        status, body = rest("POST", f"/v1/incidents/{inc['id']}/release", {"note": "x"}, tok=auditor)
        assert status == 403, body
        status, body = rest("POST", f"/v1/incidents/{inc['id']}/release",
                            {"note": "output filter fixed"})
        assert status == 200, body
        released = [t for t in body["incident"]["timeline"] if t["reason"].startswith("released by")]
        assert released and "agent_quarantine agent-3" in released[0]["reason"], body
        assert isinstance(released[0]["ledger_index"], int)
        verdict, policies = await decision("agent-3")
        assert "heal-quarantine" not in policies, (verdict, policies)
        assert not (await gateway_call(server, agent3)).startswith("ERROR")
        again = await client.call_tool("incident_release", {"incident_id": inc["id"]})
        assert "holds no active control" in tool_error(again, "nothing left to release")

    audit = meshos.run("audit", "verify", timeout=300)
    assert audit.returncode == 0, audit.stderr


def test_incidents_cli_errors_are_clear(meshos):
    proc = meshos.run("incidents", "show", "--tenant", TENANT, "inc_nope")
    assert proc.returncode != 0 and "inc_nope" in proc.stderr and "not found" in proc.stderr, proc.stderr
    proc = meshos.run("incidents", "approve", "--tenant", TENANT, "inc_nope", "--digest", "x")
    assert proc.returncode != 0 and "not found" in proc.stderr, proc.stderr
