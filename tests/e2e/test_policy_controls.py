"""Redaction modes, re-identification, budgets, model versions and explicit reloads, end to end:
the real binary over streamable HTTP with the official SDK, and its CLI."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from meshos_e2e import REPO_ROOT, bearer, describe, http_client, http_request

pytestmark = pytest.mark.anyio

PSEUDONYM = re.compile(r"\[EMAIL:(psn_[0-9a-f]{20})\]")


async def call(client, tool: str, args: dict) -> dict:
    result = await client.call_tool(tool, args)
    assert not result.is_error, f"{tool}({args}) failed: {result.content}"
    return result.structured_content


async def test_pseudonyms_are_revealed_only_to_operators_with_an_audited_reason(meshos, make_server):
    server = make_server()
    agent = meshos.token("acme", "agent", agent="support-bot")
    operator = meshos.token("acme", "operator")
    content = "Please call back Jane.Roe@example.org about ticket 4411"
    async with http_client(server.mcp_url, agent) as client:
        out = await call(client, "policy_check", {"agent_id": "support-bot", "action": "llm.complete", "content": content})
        assert out["decision"] == "redact"
        redacted = out["redacted_content"]
        assert "Jane" not in redacted, redacted
        pseudonym = PSEUDONYM.search(redacted).group(1)
        assert out["obligations"][0]["detail"] == "mode: pseudonym; entities: all findings"
        denied = await client.call_tool("pseudonym_reveal", {"pseudonym": pseudonym, "reason": "I want to see it please"})
        assert denied.is_error and "operator" in denied.content[0].text

    async with http_client(server.mcp_url, operator) as client:
        short = await client.call_tool("pseudonym_reveal", {"pseudonym": pseudonym, "reason": "why"})
        assert short.is_error and "reason" in short.content[0].text
        revealed = await call(
            client, "pseudonym_reveal", {"pseudonym": pseudonym, "reason": "customer asked for a callback, ticket 4411"}
        )
        assert revealed["value"] == "Jane.Roe@example.org"
        assert revealed["entity"] == "EMAIL"

    # The CLI reveals too, with the same audit trail, and the ledger still verifies.
    server.stop()
    cli = meshos.run("pseudonym", "reveal", pseudonym, "--tenant", "acme", "--reason", "regulator request 2026-17")
    assert cli.returncode == 0, describe(cli)
    assert json.loads(cli.stdout)["value"] == "Jane.Roe@example.org"
    wrong_tenant = meshos.run("pseudonym", "reveal", pseudonym, "--tenant", "globex", "--reason", "regulator request 2026-17")
    assert wrong_tenant.returncode != 0 and "no pseudonym" in wrong_tenant.stderr, describe(wrong_tenant)
    audit = meshos.run("audit", "verify")
    assert audit.returncode == 0, describe(audit)


async def test_reported_spend_exhausts_the_budget_and_model_versions_resolve(meshos, make_server):
    server = make_server()
    operator = meshos.token("acme", "operator")
    async with http_client(server.mcp_url, operator) as client:
        await call(
            client,
            "record_event",
            {"agent_id": "billing-bot", "kind": "llm_call", "outcome": "ok", "input_tokens": 900, "output_tokens": 100, "cost_usd": 19.9},
        )
        ok = await call(client, "policy_check", {"agent_id": "billing-bot", "action": "llm.complete", "model": "gpt-4o-2024-11-20"})
        assert ok["decision"] == "allow", ok
        assert ok["model"] == {"status": "approved", "family": "gpt-4o", "version": "2024-11-20"}
        spent = {f"{b['scope']}:{b['period']}:{b['metric']}": b for b in ok["budgets"]}
        assert spent["agent:day:cost_usd"]["used"] == pytest.approx(19.9)
        assert spent["team:day:cost_usd"]["used"] == pytest.approx(19.9)

        over = await call(
            client, "policy_check", {"agent_id": "billing-bot", "action": "llm.complete", "estimated_cost_usd": 0.5}
        )
        assert over["decision"] == "deny"
        assert [r["policy_id"] for r in over["reasons"]] == ["budget-exceeded"]

        retired = await call(client, "policy_check", {"agent_id": "support-bot", "action": "llm.complete", "model": "gpt-4o-2024-05-13"})
        assert retired["decision"] == "deny" and retired["model"]["status"] == "retired"

        bad = await client.call_tool("policy_check", {"agent_id": "billing-bot", "action": "x", "estimated_cost_usd": -1})
        assert bad.is_error and "estimated_cost_usd" in bad.content[0].text


def test_policy_reload_swaps_a_valid_bundle_and_reports_a_broken_one(meshos, make_server, tmp_path: Path):
    bundle = tmp_path / "bundle"
    shutil.copytree(REPO_ROOT / "policies" / "default", bundle)
    server = make_server("--policy-dir", str(bundle))
    admin = meshos.token("acme", "admin")
    agent = meshos.token("acme", "agent", agent="a1")
    url = ["--url", server.base_url]

    same = meshos.run("policy", "reload", *url, "--token", admin, store=False)
    assert same.returncode == 0, describe(same)
    first = json.loads(same.stdout)
    assert first["outcome"] == "unchanged"

    (bundle / "global" / "fax.cedar").write_text(
        '@id("no-fax") @reason("fax is obsolete")\n'
        'forbid (principal, action, resource == MeshOS::Operation::"fax.send");\n'
    )
    swapped = meshos.run("policy", "reload", *url, "--token", admin, store=False)
    assert swapped.returncode == 0, describe(swapped)
    body = json.loads(swapped.stdout)
    assert body["outcome"] in {"reloaded", "unchanged"}  # the 2 s watcher may have been first
    assert body["serving"] != first["serving"]

    (bundle / "global" / "fax.cedar").write_text('@id("broken") forbid (principal, action, resource) when { context.nope };\n')
    rejected = meshos.run("policy", "reload", *url, "--token", admin, store=False)
    assert rejected.returncode == 1, describe(rejected)
    report = json.loads(rejected.stdout)
    assert report["outcome"] == "rejected" and "nope" in report["errors"], report
    assert report["serving"] == body["serving"], "the last good bundle keeps serving"

    status, _, text = http_request("POST", f"{server.base_url}/v1/policy/reload", headers=bearer(agent))
    assert status == 403 and b"operator or admin" in text


def test_a_truncated_policy_file_is_refused_and_the_last_good_bundle_keeps_denying(meshos, make_server, tmp_path: Path):
    """A policy file cut short between two policies used to load: `shell.exec` and
    `payments.transfer` became `allow`. With a manifest the cut file is refused; the last good
    bundle keeps serving."""
    bundle = tmp_path / "bundle"
    shutil.copytree(REPO_ROOT / "policies" / "default", bundle)
    manifest = meshos.run("policy", "manifest", str(bundle), store=False)
    assert manifest.returncode == 0, describe(manifest)
    server = make_server("--policy-dir", str(bundle))
    admin = meshos.token("acme", "admin")
    actions = bundle / "global" / "actions.cedar"
    text = actions.read_text()
    actions.write_text(text[: text.index("\n@id") + 1])
    rejected = meshos.run("policy", "reload", "--url", server.base_url, "--token", admin, store=False)
    assert rejected.returncode == 1, describe(rejected)
    report = json.loads(rejected.stdout)
    assert report["outcome"] == "rejected" and "actions.cedar" in report["errors"], report
    status, _, raw = http_request(
        "POST",
        f"{server.base_url}/v1/policy/check",
        json.dumps({"agent_id": "a1", "action": "shell.exec"}),
        {**bearer(admin), "Content-Type": "application/json"},
    )
    assert status == 200 and json.loads(raw)["decision"] == "deny", (status, raw)


def test_an_emptied_policy_file_is_refused_without_a_manifest(meshos, make_server, tmp_path: Path):
    bundle = tmp_path / "bundle"
    shutil.copytree(REPO_ROOT / "policies" / "default", bundle)
    server = make_server("--policy-dir", str(bundle))
    admin = meshos.token("acme", "admin")
    (bundle / "global" / "actions.cedar").write_text("")
    rejected = meshos.run("policy", "reload", "--url", server.base_url, "--token", admin, store=False)
    assert rejected.returncode == 1, describe(rejected)
    assert "holds no policy" in json.loads(rejected.stdout)["errors"]
