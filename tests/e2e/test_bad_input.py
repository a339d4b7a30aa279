"""Bad input gives a tool result with isError: true naming the field, never a protocol error or a crash."""

import pytest

from meshos_e2e import call_ok, http_client, stdio_client_for, tool_error

pytestmark = pytest.mark.anyio

BAD_CALLS = [
    pytest.param("record_event", {"kind": "tool.call", "outcome": "ok"}, "agent_id", id="record_event-missing-agent_id"),
    pytest.param(
        "record_event", {"agent_id": "{a}", "kind": "tool.call", "outcome": "maybe"}, "outcome", id="record_event-outcome-maybe"
    ),
    pytest.param("record_event", {"agent_id": "{a}", "outcome": "ok"}, "kind", id="record_event-missing-kind"),
    pytest.param("policy_check", {"action": "email.send"}, "agent_id", id="policy_check-missing-agent_id"),
    pytest.param(
        "policy_check", {"agent_id": "{a}", "action": "email.send", "region": "mars:olympus-1"}, "region", id="policy_check-unknown-region"
    ),
    pytest.param("trust_score", {"agent_id": "never-seen-{a}"}, "agent_id", id="trust_score-unknown-agent"),
    pytest.param(
        "carbon_route", {"model": "no-such-model-9000", "input_tokens": 1000, "output_tokens": 500}, "model", id="carbon_route-unknown-model"
    ),
    pytest.param(
        "carbon_route", {"model": "gpt-4o-mini", "input_tokens": -5, "output_tokens": 500}, "input_tokens", id="carbon_route-negative-tokens"
    ),
    pytest.param("evidence_fetch", {"decision_id": "no-such-decision"}, "decision_id", id="evidence_fetch-unknown-decision"),
]


def fill(args: dict, uid: str) -> dict:
    return {k: (v.replace("{a}", f"bad-{uid}") if isinstance(v, str) else v) for k, v in args.items()}


@pytest.mark.parametrize("tool,args,field", BAD_CALLS)
async def test_bad_input_is_a_tool_error_naming_the_field(fleet, uid, tool, args, field):
    async with http_client(fleet.server.mcp_url, fleet.operator) as client:
        # Make the agent known, so only the bad field is wrong.
        await call_ok(client, "record_event", {"agent_id": f"bad-{uid}", "kind": "setup", "outcome": "ok"})
        result = await client.call_tool(tool, fill(args, uid))  # a protocol error raises here and fails the test
        message = tool_error(result, f"{tool}({args})")
        assert field in message, f"{tool}: the error message does not name {field!r}: {message!r}"
        # The server keeps serving on the same session.
        ok = await call_ok(client, "policy_check", {"agent_id": f"bad-{uid}", "action": "email.send"})
        assert ok["decision"] == "allow"
    fleet.server.assert_alive()


async def test_bad_input_over_stdio(fleet, uid, tmp_path):
    async with stdio_client_for(fleet.meshos, fleet.tokens["stdio-operator"], tmp_path / "mcp.log") as client:
        result = await client.call_tool("record_event", {"agent_id": f"bad-{uid}", "kind": "x", "outcome": "maybe"})
        assert "outcome" in tool_error(result, "record_event outcome=maybe")
        result = await client.call_tool("record_event", {"kind": "x", "outcome": "ok"})
        assert "agent_id" in tool_error(result, "record_event without agent_id")
        ok = await call_ok(client, "record_event", {"agent_id": f"bad-{uid}", "kind": "x", "outcome": "ok"})
        assert ok["event_id"]


@pytest.mark.parametrize("how", ["flag", "env"])
async def test_content_over_the_size_limit(make_server, meshos, uid, how):
    if how == "flag":
        server = make_server("--max-content-bytes", "1000")
    else:
        server = make_server(env={"MESHOS_MAX_CONTENT_BYTES": "1000"})
    token = meshos.token("limits", "operator")
    async with http_client(server.mcp_url, token) as client:
        at_limit = "é" * 500  # 1000 bytes in UTF-8 (500 characters)
        ok = await call_ok(client, "policy_check", {"agent_id": f"big-{uid}", "action": "llm.chat", "content": at_limit})
        assert ok["decision"] in {"allow", "redact"}
        over = "é" * 500 + "x"  # 1001 bytes
        result = await client.call_tool("policy_check", {"agent_id": f"big-{uid}", "action": "llm.chat", "content": over})
        message = tool_error(result, "policy_check with 1001 bytes of content")
        assert "content" in message, message
        ok = await call_ok(client, "policy_check", {"agent_id": f"big-{uid}", "action": "email.send"})
        assert ok["decision"] == "allow"
    server.assert_alive()


def test_unreachable_database_is_a_clear_error(meshos):
    """`meshos serve` with a PostgreSQL URL nobody listens on exits non-zero with a message, promptly."""
    from meshos_e2e import Meshos, free_port

    cli = Meshos(meshos.binary, meshos.data_dir, database_url=f"postgres://meshos:x@127.0.0.1:{free_port()}/nope")
    proc = cli.run("serve", "--bind", f"127.0.0.1:{free_port()}", timeout=90)
    assert proc.returncode != 0, f"serve with an unreachable database exited 0\n{proc.stderr}"
    out = (proc.stdout + proc.stderr).lower()
    assert "database" in out or "postgres" in out, f"no clear error: {proc.stdout}\n{proc.stderr}"
