"""Evals over the network (issue 17): the MCP tools `eval_run` (with progress notifications) and
`eval_results`, the `evals://suites/{id}` resources, and their REST twins, through the official
MCP SDK and plain HTTP against `meshos serve` with the shipped suites."""

from __future__ import annotations

import json

import pytest

from meshos_e2e import bearer, call_ok, http_client, http_request, tool_error

@pytest.mark.anyio
async def test_eval_tools_and_suite_resources_over_mcp(meshos, make_server):
    operator = meshos.token("acme", "operator")
    auditor = meshos.token("acme", "auditor")
    agent = meshos.token("acme", "agent", agent="invoice-extractor")
    server = make_server()

    progress: list[tuple[float, float | None, str | None]] = []

    async def on_progress(done: float, total: float | None, message: str | None) -> None:
        progress.append((done, total, message))

    async with http_client(server.mcp_url, operator) as client:
        resources = {str(r.uri) for r in (await client.list_resources()).resources}
        assert {"evals://suites/support-bot", "evals://suites/json-extraction", "evals://suites/safety"} <= resources
        before = json.loads((await client.read_resource("evals://suites/json-extraction")).contents[0].text)
        assert before["baseline_run_id"] is None and before["recent_runs"] == [], before

        result = await client.call_tool(
            "eval_run", {"suite": "json-extraction", "pin_baseline": True}, progress_callback=on_progress
        )
        assert not result.is_error, result
        run = result.structured_content
        assert run["run"]["status"] == "completed" and run["pinned_as_baseline"] is True, run
        items = run["run"]["items"]
        assert items == before["suite"]["items"] > 10 and run["ledger_index"] >= 0, run
        # Told of the run as it went, ending with every item answered.
        assert progress, "no notifications/progress for a call that sent a progressToken"
        assert progress[-1][0] == items and progress[-1][1] == items, progress
        assert [p[0] for p in progress] == sorted(p[0] for p in progress), progress

        # A second run is compared with the pinned one, item by item: the same answers, no regression.
        again = await call_ok(client, "eval_run", {"suite": "json-extraction"})
        assert again["baseline_run_id"] == run["run"]["id"] and again["regressed"] is False, again
        assert again["comparison"]["items"]["paired"] == items, again["comparison"]

        # A key variable the server keeps for itself is not sent to a URL the caller names.
        refused = await client.call_tool(
            "eval_run",
            {
                "suite": "json-extraction",
                "target": {"base_url": "http://127.0.0.1:9/v1", "model": "m", "api_key_env": "MESHOS_ADMIN_TOKEN"},
            },
        )
        assert "MESHOS_EVALS_" in tool_error(refused, "a secret as the key")
        unknown = await client.call_tool("eval_run", {"suite": "no-such-suite"})
        assert "no suite" in tool_error(unknown, "an unknown suite")

    async with http_client(server.mcp_url, auditor) as client:
        listed = await call_ok(client, "eval_results", {"suite": "json-extraction"})
        assert [r["run"]["id"] for r in listed["runs"]] == [again["run"]["id"], run["run"]["id"]], listed
        first_page = await call_ok(client, "eval_results", {"run_id": again["run"]["id"], "limit": 10})
        assert len(first_page["results"]) == 10 and first_page["next_after"], first_page
        assert first_page["compared_with"] == run["run"]["id"] and first_page["comparison"]["regressed"] is False
        second_page = await call_ok(
            client, "eval_results", {"run_id": again["run"]["id"], "after": first_page["next_after"], "limit": 10}
        )
        assert len(second_page["results"]) == items - 10 and "next_after" not in second_page, second_page
        ids = [r["item_id"] for r in first_page["results"] + second_page["results"]]
        assert ids == sorted(set(ids)), ids
        # Auditors read; they do not run.
        assert "forbidden" in tool_error(await client.call_tool("eval_run", {"suite": "safety"}), "auditor runs")
        view = json.loads((await client.read_resource("evals://suites/json-extraction")).contents[0].text)
        assert view["suite"]["items"] == items and view["baseline_run_id"] == run["run"]["id"], view
        assert view["recent_runs"][0]["run"]["id"] == again["run"]["id"], view

    async with http_client(server.mcp_url, agent) as client:
        denied = await client.call_tool("eval_results", {})
        assert "forbidden" in tool_error(denied, "an agent reads eval results")


def rest(server, token, method, path, body=None):
    status, _, raw = http_request(method, f"{server.base_url}{path}", body, headers=bearer(token), timeout=120)
    return status, json.loads(raw) if raw else None


def test_eval_rest_twins(meshos, make_server):
    operator = meshos.token("acme", "operator")
    auditor = meshos.token("acme", "auditor")
    server = make_server()

    status, suites = rest(server, auditor, "GET", "/v1/evals/suites")
    assert status == 200 and {s["id"] for s in suites["suites"]} == {"support-bot", "json-extraction", "safety"}

    status, run = rest(server, operator, "POST", "/v1/evals/runs", {"suite": "safety"})
    assert status == 200 and run["run"]["status"] == "completed", (status, run)
    assert run["baseline_run_id"] is None and run["regressed"] is False, run
    status, pinned = rest(server, operator, "POST", f"/v1/evals/runs/{run['run']['id']}/baseline")
    assert status == 200 and pinned["run"]["id"] == run["run"]["id"], pinned

    status, shown = rest(server, auditor, "GET", f"/v1/evals/runs/{run['run']['id']}?limit=3")
    assert status == 200 and len(shown["results"]) == 3 and shown["next_after"], shown
    status, listed = rest(server, auditor, "GET", "/v1/evals/runs?suite=safety")
    assert status == 200 and listed["runs"][0]["run"]["id"] == run["run"]["id"], listed
    status, view = rest(server, auditor, "GET", "/v1/evals/suites/safety")
    assert status == 200 and view["baseline_run_id"] == run["run"]["id"], view

    # Clear refusals that name what is wrong.
    status, err = rest(server, operator, "POST", "/v1/evals/runs", {"suite": "safety", "pin": True})
    assert status == 400 and "pin" in err["error"], err
    status, err = rest(server, operator, "POST", "/v1/evals/runs", {"suite": "nope"})
    assert status == 404 and "no suite" in err["error"], err
    status, err = rest(server, auditor, "POST", "/v1/evals/runs", {"suite": "safety"})
    assert status == 403, err
    status, err = rest(server, auditor, "GET", "/v1/evals/runs/evr-missing")
    assert status == 404, err
    status, err = rest(server, auditor, "POST", f"/v1/evals/runs/{run['run']['id']}/baseline")
    assert status == 403, err
