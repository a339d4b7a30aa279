"""`meshos gateway` (issue 18) in front of real MCP servers: the reference servers from npm
(`@modelcontextprotocol/server-everything`, `@modelcontextprotocol/server-filesystem` on a temp
folder) and the poisoned test server (bench/toolscan/poisoned_server.py), driven by the official
Python SDK over streamable HTTP (`meshos serve --gateway-config`, /gateway/mcp) and by the MCP
Inspector CLI over stdio (`meshos gateway stdio`)."""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import anyio
import pytest

from meshos_e2e import (
    REPO_ROOT,
    bearer,
    describe,
    http_client,
    http_request,
    run_inspector,
    wait_for,
)

pytestmark = pytest.mark.anyio

NODE_MODULES = Path(os.environ.get("MESHOS_NODE_DIR", str(Path.home() / ".cache" / "meshos-node"))) / "node_modules"
POISONED = REPO_ROOT / "bench/toolscan/poisoned_server.py"


def npm_server(name: str) -> Path:
    path = NODE_MODULES / f"@modelcontextprotocol/server-{name}/dist/index.js"
    if not path.exists():
        pytest.fail(f"{path} is missing: run scripts/setup-test-deps.sh")
    return path


def gateway_toml(tmp: Path, workspace: Path, extra: str = "") -> Path:
    text = f"""
[[upstream]]
name = "everything"
command = "node"
args = ["{npm_server('everything')}", "stdio"]

[[upstream]]
name = "fs"
command = "node"
args = ["{npm_server('filesystem')}", "{workspace}"]
{extra}
"""
    path = tmp / "gateway.toml"
    path.write_text(text)
    return path


def decision_in(text: str) -> str:
    m = re.search(r"dec_[0-9a-f]+", text)
    assert m, f"no decision id in {text!r}"
    return m.group(0)


def result_text(result) -> str:
    return "".join(getattr(c, "text", "") for c in result.content)


def approve(meshos, decision_id: str) -> None:
    proc = meshos.run("gateway", "approve", decision_id, "--tenant", "acme", "--note", "e2e")
    assert proc.returncode == 0, describe(proc)


async def test_the_gateway_governs_real_servers_over_http(meshos, make_server, tmp_path):
    workspace = tmp_path / "workspace"
    (workspace / ".ssh").mkdir(parents=True)
    (workspace / "notes.txt").write_text("Call back Jane at jane.doe@example.com about the invoice.\n")
    (workspace / ".ssh" / "id_rsa").write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk=\n")
    config = gateway_toml(tmp_path, workspace)
    agent = meshos.token("acme", "agent", agent="coder-1")
    server = make_server("--gateway-config", str(config))
    url = f"{server.base_url}/gateway/mcp"

    async with http_client(url, agent) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        assert {"everything__echo", "fs__read_text_file", "fs__write_file"} <= names, sorted(names)
        assert all("__" in n for n in names), names

        # A client the gateway has not seen waits for an operator.
        first = await client.call_tool("everything__echo", {"message": "hello"})
        assert first.is_error and "waits for an operator" in result_text(first), result_text(first)
        approve(meshos, decision_in(result_text(first)))

        # The gateway looks at a held client's decision again within a second.
        for _ in range(30):
            r = await client.call_tool("everything__echo", {"message": "hello"})
            if not r.is_error:
                break
            await anyio.sleep(0.2)
        assert not r.is_error and "hello" in result_text(r), result_text(r)

        # Arguments are checked before the call goes upstream: a credential file is refused.
        key = await client.call_tool("fs__read_text_file", {"path": str(workspace / ".ssh" / "id_rsa")})
        assert key.is_error and "gateway-credential-files" in result_text(key), result_text(key)
        # And results on the way back: personal data in a file is redacted.
        notes = await client.call_tool("fs__read_text_file", {"path": str(workspace / "notes.txt")})
        text = result_text(notes)
        assert not notes.is_error and "jane.doe@example.com" not in text and "EMAIL" in text, text
        # A secret in the arguments never reaches the server.
        leak = await client.call_tool(
            "fs__write_file", {"path": str(workspace / "out.txt"), "content": "key AKIAIOSFODNN7EXAMPLE"}
        )
        assert leak.is_error and "secrets-block" in result_text(leak), result_text(leak)
        assert not (workspace / "out.txt").exists()

    # Every call moved the agent's trust and is on the ledger; the pins are evidence too.
    operator = meshos.token("acme", "operator")
    status, _, raw = http_request("GET", f"{server.base_url}/v1/agents/coder-1/trust", None, bearer(operator))
    assert status == 200, raw
    trust = json.loads(raw)
    assert trust["basis"]["events"] >= 4, trust["basis"]
    pins = json.loads(meshos.run("gateway", "pins", "--tenant", "acme").stdout)["pins"]
    by_tool = {p["tool"]: p for p in pins}
    assert by_tool["everything__echo"]["status"] == "pinned" and by_tool["everything__echo"]["change"] == "first_seen"
    clients = json.loads(meshos.run("gateway", "clients", "--tenant", "acme").stdout)
    wait_for(
        lambda: json.loads(meshos.run("gateway", "clients", "--tenant", "acme").stdout)[0]["calls"] >= 4,
        "the client's calls to be counted",
        timeout=15,
    )
    assert clients[0]["agent_id"] == "coder-1", clients
    server.stop()
    audit = meshos.run("audit", "verify")
    assert audit.returncode == 0, describe(audit)


async def test_a_rug_pull_is_held_and_poisoned_tools_are_never_offered(meshos, make_server, tmp_path):
    py = sys.executable
    config = tmp_path / "gateway.toml"
    config.write_text(
        f"""
[[upstream]]
name = "facts"
command = "{py}"
args = ["{POISONED}", "--server", "facts", "--rug-pull-after", "1"]
relist_seconds = 1

[[upstream]]
name = "calc"
command = "{py}"
args = ["{POISONED}", "--server", "calc"]
"""
    )
    agent = meshos.token("acme", "agent", agent="helper")
    server = make_server("--gateway-config", str(config))
    url = f"{server.base_url}/gateway/mcp"
    async with http_client(url, agent) as client:
        first = {t.name for t in (await client.list_tools()).tools}
        # Invariant Labs' poisoned `add` (reads ~/.ssh/id_rsa into a hidden parameter) is blocked.
        assert "calc__add" not in first, first
        held_client = await client.call_tool("calc__add", {"a": 1, "b": 2, "sidenote": ""})
        approve(meshos, decision_in(result_text(held_client)))
        await anyio.sleep(1.1)
        blocked = await client.call_tool("calc__add", {"a": 1, "b": 2, "sidenote": ""})
        assert blocked.is_error and "poisoned" in result_text(blocked), result_text(blocked)

    pins = json.loads(meshos.run("gateway", "pins", "--tenant", "acme").stdout)["pins"]
    add = next(p for p in pins if p["tool"] == "calc__add")
    assert add["status"] == "blocked" and add["findings"], add

    # The fact tool changes definition upstream after its first listing (a rug pull): the gateway
    # lists again within a second and holds the new definition for an operator.
    def held():
        proc = meshos.run("gateway", "pins", "--tenant", "acme")
        pins = json.loads(proc.stdout)["pins"]
        fact = [p for p in pins if p["tool"] == "facts__get_fact_of_the_day"]
        return fact[0] if fact and fact[0]["status"] in ("held", "blocked") else None

    async with http_client(url, agent) as client:
        # The tenant's catalog is reconciled when a client asks; ask until the change shows.
        for _ in range(40):
            await client.list_tools()
            got = held()
            if got:
                break
            await anyio.sleep(0.25)
        fact = held()
        assert fact is not None, "the changed definition was not held"
        assert fact["change"] in ("changed", "poisoned", "suspicious"), fact
        names = {t.name for t in (await client.list_tools()).tools}
        assert "facts__get_fact_of_the_day" not in names, names


def test_the_inspector_cli_lists_and_calls_through_the_gateway_on_stdio(meshos, tmp_path):
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "hello.txt").write_text("hello from the workspace\n")
    config = gateway_toml(tmp_path, workspace)
    agent = meshos.token("acme", "agent", agent="inspector-bot")
    target = [
        "-e",
        f"MESHOS_TOKEN={agent}",
        "--",
        str(meshos.binary),
        "gateway",
        "stdio",
        "--gateway-config",
        str(config),
        *meshos.store_args(),
    ]

    def inspect(method_args: list[str], tool_error: bool = False) -> dict:
        cut = target.index("--")
        proc = run_inspector([*target[:cut], *method_args, *target[cut:]])
        # The Inspector exits non-zero when the tool answered with isError.
        assert (proc.returncode != 0) == tool_error, describe(proc)
        return json.loads(proc.stdout)

    listed = inspect(["--method", "tools/list"])
    names = {t["name"] for t in listed["tools"]}
    assert {"everything__echo", "fs__read_text_file"} <= names, sorted(names)

    call = ["--method", "tools/call", "--tool-name", "fs__read_text_file", "--tool-arg", f"path={workspace / 'hello.txt'}"]
    first = inspect(call, tool_error=True)
    assert first.get("isError") and "waits for an operator" in json.dumps(first), first
    approve(meshos, decision_in(json.dumps(first)))
    second = inspect(call)
    assert not second.get("isError") and "hello from the workspace" in json.dumps(second), second
