"""JSON-RPC errors per the spec on both transports (issue 16, item 9), and cursors refused.

Input that is not a JSON-RPC message gets the JSON-RPC 2.0 error for it: -32700 (`"id": null`) for
input that is not JSON, -32600 for JSON that is not one JSON-RPC message (with its id when
readable), -32602 for an MCP request whose params do not fit. Over stdio each such line is
answered and the session goes on; over HTTP the answer is a 400 with the error. Every reply is
read with the official MCP SDK's own JSON-RPC types. A list cursor this server never issued is
refused with -32602 instead of being read as "the first page".
"""

from __future__ import annotations

import json
import queue
import subprocess
import threading

import pytest
from mcp.shared.exceptions import MCPError
from mcp.types.jsonrpc import JSONRPCError, JSONRPCResponse, jsonrpc_message_adapter

from meshos_e2e import REPO_ROOT, bearer, http_client, http_request, stdio_client_for

MCP_HEADERS = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}

# (what is sent, the error code, the id the error must carry)
MALFORMED: list[tuple[bytes, int, int | str | None]] = [
    (b"not json", -32700, None),
    (b'{"jsonrpc": "2.0", "id": 1, "meth', -32700, None),
    (b"\xff\xfe", -32700, None),
    (b"[]", -32600, None),
    (b'[{"jsonrpc": "2.0", "id": 1, "method": "ping"}]', -32600, None),
    (b"42", -32600, None),
    (b"{}", -32600, None),
    (b'{"jsonrpc": "2.0", "method": 1, "params": "bar"}', -32600, None),
    (b'{"jsonrpc": "2.0", "id": 5, "method": 123}', -32600, 5),
    (b'{"jsonrpc": "1.0", "id": "six", "method": "ping"}', -32600, "six"),
    (b'{"jsonrpc": "2.0", "id": {"a": 1}, "method": "ping"}', -32600, None),
    (b'{"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": 5}', -32600, 9),
    (b'{"jsonrpc": "2.0", "id": 10, "method": "tools/call", "params": {"name": 5}}', -32602, 10),
]


def check_error(raw: bytes | str, code: int, id_: int | str | None, sent: bytes) -> JSONRPCError:
    """The reply parses as a JSON-RPC error with the official SDK's types, with this code and id."""
    message = jsonrpc_message_adapter.validate_json(raw)
    assert isinstance(message, JSONRPCError), f"{sent!r}: expected a JSON-RPC error, got {raw!r}"
    assert message.error.code == code, f"{sent!r}: {raw!r}"
    assert message.id == id_, f"{sent!r}: {raw!r}"
    assert message.error.message, f"{sent!r}: the error says nothing: {raw!r}"
    return message


class RawStdio:
    """`meshos mcp` driven line by line, so that it can be sent what no SDK would send."""

    def __init__(self, fleet, log_path) -> None:
        params = fleet.meshos.stdio_params(fleet.tokens["stdio-operator"])
        self.log = open(log_path, "ab")
        self.proc = subprocess.Popen(
            [params.command, *params.args],
            cwd=REPO_ROOT,
            env=params.env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
        )
        self.lines: queue.Queue[bytes] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)

    def send(self, line: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + b"\n")
        self.proc.stdin.flush()

    def receive(self, what: str, timeout: float = 30) -> bytes:
        try:
            return self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no reply to {what} within {timeout}s (server alive: {self.proc.poll() is None})")

    def request(self, id_: int, method: str, params: dict | None = None) -> dict:
        message = {"jsonrpc": "2.0", "id": id_, "method": method}
        if params is not None:
            message["params"] = params
        self.send(json.dumps(message).encode())
        raw = self.receive(method)
        reply = jsonrpc_message_adapter.validate_json(raw)
        assert isinstance(reply, JSONRPCResponse) and reply.id == id_, f"{method}: {raw!r}"
        return reply.result

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.log.close()


@pytest.fixture
def raw_stdio(fleet, tmp_path):
    session = RawStdio(fleet, tmp_path / "mcp.log")
    init = session.request(
        0,
        "initialize",
        {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}},
    )
    assert init["serverInfo"]["name"] == "meshos", init
    session.send(b'{"jsonrpc": "2.0", "method": "notifications/initialized"}')
    yield session
    session.close()


def test_stdio_answers_every_malformed_line_and_keeps_the_session(raw_stdio):
    for sent, code, id_ in MALFORMED:
        raw_stdio.send(sent)
        check_error(raw_stdio.receive(repr(sent)), code, id_, sent)
    # The session still works: the next request is answered as usual.
    tools = raw_stdio.request(100, "tools/list")
    assert "policy_check" in {t["name"] for t in tools["tools"]}, tools


def test_stdio_never_answers_a_notification_or_a_response(raw_stdio):
    for sent in [
        b'{"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": {"x": 1}}}',
        b'{"jsonrpc": "2.0", "method": "no/such/notification"}',
        b'{"jsonrpc": "2.0", "id": 1, "error": 5}',
        b'{"jsonrpc": "2.0", "id": null, "error": {"code": -32700, "message": "echoed"}}',
        b"",
    ]:
        raw_stdio.send(sent)
    # The first line back answers the ping: nothing was written for the lines before it.
    assert raw_stdio.request(101, "ping") == {}


def test_stdio_refuses_an_over_long_line_and_goes_on(raw_stdio):
    # Over [limits] max_mcp_body_bytes (4 MiB by default), the bound of one POST /mcp body too.
    huge = b'{"jsonrpc": "2.0", "id": 1, "method": "ping", "pad": "' + b"x" * (5 << 20) + b'"}'
    raw_stdio.send(huge)
    check_error(raw_stdio.receive("a 5 MiB line"), -32600, None, b"<5 MiB line>")
    assert raw_stdio.request(102, "ping") == {}


@pytest.mark.parametrize("sent,code,id_", MALFORMED, ids=[repr(m[0])[:48] for m in MALFORMED])
def test_http_answers_malformed_bodies_with_a_jsonrpc_error(fleet, sent, code, id_):
    headers = {**MCP_HEADERS, **bearer(fleet.operator)}
    status, hdrs, raw = http_request("POST", fleet.server.mcp_url, sent, headers)
    assert status == 400, (status, raw[:200])
    assert hdrs.get("content-type", "").startswith("application/json"), hdrs
    check_error(raw, code, id_, sent)


LISTS = ["list_tools", "list_prompts", "list_resources", "list_resource_templates"]


async def check_cursors_refused(client) -> None:
    for name in LISTS:
        listing = getattr(client, name)
        await listing()  # without a cursor: the one and only page
        with pytest.raises(MCPError) as raised:
            await listing(cursor="bogus-cursor")
        assert raised.value.code == -32602, f"{name}: {raised.value.error}"
        assert "cursor" in raised.value.message, f"{name}: {raised.value.error}"


@pytest.mark.anyio
async def test_http_refuses_cursors_it_never_issued(fleet):
    async with http_client(fleet.server.mcp_url, fleet.operator) as client:
        await check_cursors_refused(client)


@pytest.mark.anyio
async def test_stdio_refuses_cursors_it_never_issued(fleet, tmp_path):
    async with stdio_client_for(fleet.meshos, fleet.tokens["stdio-operator"], tmp_path / "mcp.log") as client:
        await check_cursors_refused(client)
