"""The MCP surface: the five agent tools plus the approval tools, with input and output schemas, over HTTP and stdio."""

import pytest

from meshos_e2e import ALL_TOOLS, http_client, stdio_client_for

pytestmark = pytest.mark.anyio


def check_tools(listing) -> None:
    names = [t.name for t in listing.tools]
    assert sorted(names) == sorted(ALL_TOOLS), f"tools listed: {names}"
    for tool in listing.tools:
        assert isinstance(tool.input_schema, dict) and tool.input_schema.get("type") == "object", (
            f"{tool.name}: inputSchema must be an object schema: {tool.input_schema}"
        )
        assert isinstance(tool.output_schema, dict) and tool.output_schema, f"{tool.name}: no outputSchema"
        assert tool.description, f"{tool.name}: no description"


async def test_http_lists_the_five_tools(fleet):
    async with http_client(fleet.server.mcp_url, fleet.operator) as client:
        check_tools(await client.list_tools())


async def test_stdio_lists_the_five_tools(fleet, tmp_path):
    async with stdio_client_for(fleet.meshos, fleet.tokens["stdio-operator"], tmp_path / "mcp.log") as client:
        check_tools(await client.list_tools())


async def test_required_inputs_are_declared(fleet):
    async with http_client(fleet.server.mcp_url, fleet.operator) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    required = {
        "record_event": {"agent_id", "kind", "outcome"},
        "policy_check": {"agent_id", "action"},
        "trust_score": {"agent_id"},
        "carbon_route": {"model", "input_tokens", "output_tokens"},
    }
    for name, fields in required.items():
        schema = tools[name].input_schema
        assert fields <= set(schema.get("required", [])), f"{name}: required {schema.get('required')}"
        assert fields <= set(schema.get("properties", {})), f"{name}: properties {list(schema.get('properties', {}))}"
    assert {"decision_id", "agent_id", "limit"} <= set(tools["evidence_fetch"].input_schema.get("properties", {}))


async def test_resources_and_self_check_prompt(fleet, uid):
    """The issue's resources (trust://, evidence://checkpoint, policy://bundle) and the self_check prompt."""
    agent = f"res-{uid}"
    async with http_client(fleet.server.mcp_url, fleet.operator) as client:
        await client.call_tool("record_event", {"agent_id": agent, "kind": "tool.call", "outcome": "ok"})
        resources = await client.list_resources()
        uris = {str(r.uri) for r in resources.resources}
        templates = await client.list_resource_templates()
        template_uris = {t.uri_template for t in templates.resource_templates}
        assert "evidence://checkpoint" in uris, f"resources: {uris}"
        assert "policy://bundle" in uris, f"resources: {uris}"
        assert "trust://agents/{agent_id}" in template_uris, f"templates: {template_uris}"
        for uri in ("evidence://checkpoint", "policy://bundle", f"trust://agents/{agent}"):
            res = await client.read_resource(uri)
            assert res.contents, f"{uri}: no contents"
            assert any(getattr(c, "text", "") for c in res.contents), f"{uri}: empty"
        prompts = await client.list_prompts()
        by_name = {p.name: p for p in prompts.prompts}
        assert "self_check" in by_name, f"prompts: {list(by_name)}"
        args = {a.name: agent for a in (by_name["self_check"].arguments or []) if a.required}
        prompt = await client.get_prompt("self_check", args)
        assert prompt.messages, "self_check prompt has no messages"


async def test_stdio_token_flag(fleet, tmp_path):
    """`meshos mcp --token T` works like MESHOS_TOKEN."""
    from mcp import Client, StdioServerParameters
    from mcp.client.stdio import stdio_client

    from meshos_e2e import REPO_ROOT, child_env

    params = StdioServerParameters(
        command=str(fleet.meshos.binary),
        args=["mcp", "--token", fleet.tokens["stdio-operator"], *fleet.meshos.store_args()],
        env=child_env(),
        cwd=str(REPO_ROOT),
    )
    with open(tmp_path / "mcp.log", "w") as errlog:
        async with Client(stdio_client(params, errlog=errlog), read_timeout_seconds=60) as client:
            check_tools(await client.list_tools())


async def test_stdio_with_a_wrong_token_is_refused(fleet, tmp_path):
    """`meshos mcp` with a token the store does not know serves nothing."""
    try:
        async with stdio_client_for(fleet.meshos, "not-a-real-token", tmp_path / "mcp.log") as client:
            result = await client.call_tool("policy_check", {"agent_id": "x", "action": "email.send"})
    except Exception:
        return  # refused at start or on the call: both fine
    assert result.is_error, f"a wrong token got a decision over stdio: {result.structured_content}"


async def test_annotations_are_truthful(fleet):
    """Reads are read-only; the two tools that append to the store and ledger are not; nothing destroys."""
    async with http_client(fleet.server.mcp_url, fleet.operator) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    expected_read_only = {
        "trust_score": True,
        "evidence_fetch": True,
        "carbon_route": True,
        "policy_check": False,  # stores the decision and appends it to the ledger
        "record_event": False,
    }
    for name, read_only in expected_read_only.items():
        ann = tools[name].annotations
        assert ann is not None, f"{name}: no annotations"
        assert ann.read_only_hint is read_only, f"{name}: readOnlyHint={ann.read_only_hint}, expected {read_only}"
        assert ann.destructive_hint is False, f"{name}: destructiveHint={ann.destructive_hint} (append-only store)"


async def test_an_unknown_resource_is_an_error_naming_its_uri(fleet):
    """The MCP spec's resource-not-found error carries the URI in `data`."""
    from mcp.shared.exceptions import MCPError

    async with http_client(fleet.server.mcp_url, fleet.operator) as client:
        with pytest.raises(MCPError) as raised:
            await client.read_resource("trust://nowhere")
        assert raised.value.error.data == {"uri": "trust://nowhere"}, raised.value.error
