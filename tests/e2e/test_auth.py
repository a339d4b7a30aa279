"""HTTP answers 401 without a valid bearer token: /mcp and the REST endpoints."""

import json

import pytest

from meshos_e2e import ALL_TOOLS, bearer, http_client, http_request

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "meshos-e2e", "version": "0"},
    },
}
MCP_HEADERS = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
EVENTS = {"events": [{"agent_id": "auth-probe", "kind": "tool.call", "outcome": "ok"}]}


@pytest.mark.parametrize(
    "auth",
    [None, "Bearer not-a-real-token", "Bearer ", "Basic dXNlcjpwYXNz"],
    ids=["no-token", "wrong-token", "empty-bearer", "basic-auth"],
)
def test_mcp_rejects_missing_or_wrong_token(fleet, auth):
    headers = dict(MCP_HEADERS)
    if auth is not None:
        headers["Authorization"] = auth
    status, _, body = http_request("POST", fleet.server.mcp_url, INITIALIZE, headers)
    assert status == 401, f"POST /mcp with Authorization={auth!r}: {status} {body[:300]!r}"


def test_mcp_accepts_a_valid_token(fleet):
    """Control for the 401 tests: the same request with a valid token gets past authentication."""
    headers = {**MCP_HEADERS, **bearer(fleet.operator)}
    status, _, body = http_request("POST", fleet.server.mcp_url, INITIALIZE, headers)
    assert status not in (401, 403), f"POST /mcp with a valid token: {status} {body[:300]!r}"
    assert status == 200, f"POST /mcp initialize with a valid token: {status} {body[:300]!r}"


def test_token_of_another_tenant_is_still_a_valid_token(fleet):
    headers = {**MCP_HEADERS, **bearer(fleet.tokens["globex-operator"])}
    status, _, _ = http_request("POST", fleet.server.mcp_url, INITIALIZE, headers)
    assert status == 200


@pytest.mark.parametrize("auth", [None, "Bearer not-a-real-token"], ids=["no-token", "wrong-token"])
def test_rest_events_rejects_missing_or_wrong_token(fleet, auth):
    headers = {} if auth is None else {"Authorization": auth}
    status, _, body = http_request("POST", f"{fleet.server.base_url}/v1/events", EVENTS, headers)
    assert status == 401, f"POST /v1/events with Authorization={auth!r}: {status} {body[:300]!r}"


@pytest.mark.anyio
async def test_sdk_http_client_without_token_fails(fleet):
    """The SDK client cannot list tools without a token (the status itself is checked above)."""
    with pytest.raises(Exception):  # the SDK reports a non-2xx answer as a generic MCPError
        async with http_client(fleet.server.mcp_url, None) as client:
            await client.list_tools()


@pytest.mark.anyio
async def test_token_created_while_serving_is_accepted(server, meshos):
    token = meshos.token("late-tenant", "operator")
    headers = {**MCP_HEADERS, **bearer(token)}
    status, _, body = http_request("POST", server.mcp_url, INITIALIZE, headers)
    assert status == 200, f"a token created after start is refused: {status} {body[:300]!r}"
    async with http_client(server.mcp_url, token) as client:
        assert {t.name for t in (await client.list_tools()).tools} == ALL_TOOLS


@pytest.mark.parametrize("host", ["evil.example.com", "evil.example.com:80"])
def test_dns_rebinding_protection_rejects_foreign_host(fleet, host):
    """rmcp's allowed_hosts stays on: a valid token with a foreign Host header is refused."""
    headers = {**MCP_HEADERS, **bearer(fleet.operator), "Host": host}
    status, _, body = http_request("POST", fleet.server.mcp_url, INITIALIZE, headers)
    assert status == 403, f"POST /mcp with Host: {host}: {status} {body[:300]!r}"


def test_loopback_host_names_are_accepted(fleet):
    headers = {**MCP_HEADERS, **bearer(fleet.operator), "Host": f"localhost:{fleet.server.port}"}
    status, _, body = http_request("POST", fleet.server.mcp_url, INITIALIZE, headers)
    assert status == 200, f"POST /mcp with Host: localhost: {status} {body[:300]!r}"


def test_a_foreign_origin_is_refused_with_403_and_a_loopback_one_accepted(fleet):
    """The MCP transport: a present, invalid Origin MUST get 403 (the Host was valid)."""
    headers = {**MCP_HEADERS, **bearer(fleet.operator), "Origin": "http://evil.example.com"}
    status, _, body = http_request("POST", fleet.server.mcp_url, INITIALIZE, headers)
    assert status == 403 and b"Origin" in body, f"{status} {body[:300]!r}"
    headers["Origin"] = f"http://localhost:{fleet.server.port}"
    status, _, body = http_request("POST", fleet.server.mcp_url, INITIALIZE, headers)
    assert status == 200, f"{status} {body[:300]!r}"


def _open_session(fleet, token: str) -> tuple[int, str | None]:
    status, headers, _ = http_request("POST", fleet.server.mcp_url, INITIALIZE, {**MCP_HEADERS, **bearer(token)})
    return status, headers.get("mcp-session-id")


def test_an_mcp_session_answers_only_the_token_that_opened_it(fleet):
    """Another token (here another tenant's) holding a session id could receive that session's
    notifications and delete it; to any other token the session does not exist."""
    owner, other = fleet.meshos.token("acme", "operator"), fleet.tokens["globex-operator"]
    status, session = _open_session(fleet, owner)
    assert status == 200 and session, status
    listing = {"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}}
    for method, body in [("POST", listing), ("GET", None), ("DELETE", None)]:
        headers = {**MCP_HEADERS, **bearer(other), "Mcp-Session-Id": session}
        status, _, raw = http_request(method, fleet.server.mcp_url, body, headers)
        assert status == 404, (method, status, raw[:200])
    initialized = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    headers = {**MCP_HEADERS, **bearer(owner), "Mcp-Session-Id": session}
    status, _, _ = http_request("POST", fleet.server.mcp_url, initialized, headers)
    assert status in (200, 202), status
    status, _, raw = http_request("POST", fleet.server.mcp_url, listing, headers)
    assert status == 200 and b"policy_check" in raw, (status, raw[:200])
    status, _, _ = http_request("DELETE", fleet.server.mcp_url, None, headers)
    assert status in (200, 202, 204), status


def test_one_token_cannot_open_unbounded_mcp_sessions(fleet):
    token = fleet.meshos.token("acme", "agent", agent="session-hog")
    opened = [_open_session(fleet, token) for _ in range(64)]
    assert all(status == 200 for status, _ in opened), [s for s, _ in opened]
    status, _ = _open_session(fleet, token)
    assert status == 429, status
    # Closing one makes room again.
    headers = {**MCP_HEADERS, **bearer(token), "Mcp-Session-Id": opened[0][1]}
    status, _, _ = http_request("DELETE", fleet.server.mcp_url, None, headers)
    assert status in (200, 202, 204), status
    status, _ = _open_session(fleet, token)
    assert status == 200, status
    # Other tokens are not affected.
    assert _open_session(fleet, fleet.operator)[0] == 200


def test_malformed_json_on_mcp_is_a_jsonrpc_parse_error(fleet):
    headers = {**MCP_HEADERS, **bearer(fleet.operator)}
    status, _, raw = http_request("POST", fleet.server.mcp_url, b'{"jsonrpc": "2.0", "id": 1, "meth', headers)
    assert status == 400, (status, raw[:200])
    body = json.loads(raw)
    assert body["error"]["code"] == -32700 and body["id"] is None, body
