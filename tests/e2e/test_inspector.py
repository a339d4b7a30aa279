"""The MCP Inspector CLI (an independent MCP client, Node) against stdio and streamable HTTP."""

import json

import pytest

from meshos_e2e import ALL_TOOLS, VERDICTS, describe, run_inspector


def stdio_target(fleet) -> list[str]:
    return [
        "-e",
        f"MESHOS_TOKEN={fleet.tokens['stdio-operator']}",
        "--",
        str(fleet.meshos.binary),
        "mcp",
        *fleet.meshos.store_args(),
    ]


def http_target(fleet, token: str | None) -> list[str]:
    args = [fleet.server.mcp_url, "--transport", "http"]
    if token:
        args += ["--header", f"Authorization: Bearer {token}"]
    return args


def inspect(inspector, target: list[str], method_args: list[str]) -> dict:
    # Options first, then the target: after `--` everything is the server command.
    if "--" in target:
        cut = target.index("--")
        args = [*target[:cut], *method_args, *target[cut:]]
    else:
        args = [*target, *method_args]
    proc = run_inspector(args)
    assert proc.returncode == 0, f"inspector failed\n{describe(proc)}"
    try:
        return json.loads(proc.stdout)
    except json.JSONDecodeError as e:
        raise AssertionError(f"inspector did not print JSON ({e})\n{describe(proc)}") from e


LIST = ["--method", "tools/list"]
CALL = ["--method", "tools/call", "--tool-name", "policy_check", "--tool-arg", "agent_id=a1", "--tool-arg", "action=email.send"]


@pytest.mark.parametrize("transport", ["stdio", "http"])
def test_inspector_lists_the_five_tools(inspector, fleet, transport):
    target = stdio_target(fleet) if transport == "stdio" else http_target(fleet, fleet.operator)
    out = inspect(inspector, target, LIST)
    names = {t["name"] for t in out["tools"]}
    assert names == ALL_TOOLS, names
    for t in out["tools"]:
        assert "inputSchema" in t, f"{t['name']}: no inputSchema"
        assert "outputSchema" in t, f"{t['name']}: no outputSchema (keys: {sorted(t)})"


@pytest.mark.parametrize("transport", ["stdio", "http"])
def test_inspector_calls_policy_check(inspector, fleet, transport):
    target = stdio_target(fleet) if transport == "stdio" else http_target(fleet, fleet.operator)
    out = inspect(inspector, target, CALL)
    assert out.get("isError") in (False, None), out
    sc = out.get("structuredContent")
    assert isinstance(sc, dict), f"no structuredContent: {out}"
    assert sc.get("decision") in VERDICTS, sc
    assert sc["decision"] == "allow", sc
    assert sc.get("decision_id"), sc


def test_inspector_http_without_token_fails(inspector, fleet):
    proc = run_inspector([*http_target(fleet, None), *LIST])
    assert proc.returncode != 0, f"inspector listed tools without a token\n{describe(proc)}"
    assert "policy_check" not in proc.stdout
