"""REST: POST /v1/events batch ingest, /metrics, /healthz."""

import json

import pytest

from meshos_e2e import bearer, call_ok, http_client, http_request


def post_events(server, token, body, content_type="application/json"):
    headers = {**bearer(token), "Content-Type": content_type}
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return http_request("POST", f"{server.base_url}/v1/events", data, headers)


@pytest.mark.anyio
async def test_events_batch_is_accepted_and_stored(fleet, uid):
    agent = f"rest-{uid}"
    body = {
        "events": [
            {"agent_id": agent, "kind": "tool.call", "outcome": "ok", "latency_ms": 120, "tool": "search"},
            {
                "agent_id": agent,
                "kind": "llm.chat",
                "outcome": "violation",
                "model": "gpt-4o-mini",
                "input_tokens": 900,
                "output_tokens": 120,
                "cost_usd": 0.001,
                "region": "aws:eu-west-1",
                "attributes": {"source": "rest"},
            },
        ]
    }
    status, _, raw = post_events(fleet.server, fleet.operator, body)
    assert status == 200, f"POST /v1/events: {status} {raw[:500]!r}"
    reply = json.loads(raw)
    assert reply.get("accepted") == 2, reply
    # The ids, either as a plain list or as one object per stored event.
    if "ids" in reply:
        ids = reply["ids"]
    else:
        assert isinstance(reply.get("events"), list), f"no ids in the reply: {reply}"
        ids = [e.get("event_id") for e in reply["events"]]
    assert isinstance(ids, list) and len(ids) == 2 and len(set(ids)) == 2 and all(ids), reply
    async with http_client(fleet.server.mcp_url, fleet.operator) as client:
        ts = await call_ok(client, "trust_score", {"agent_id": agent})
        assert 0 <= ts["score"] <= 100
        ev = await call_ok(client, "evidence_fetch", {"agent_id": agent, "limit": 10})
        assert len(ev["records"]) == 2, ev["records"]


@pytest.mark.parametrize(
    "body,field",
    [
        pytest.param(b"this is not json", None, id="not-json"),
        pytest.param({"evnts": []}, "events", id="no-events-key"),
        pytest.param({"events": [{"agent_id": "x", "kind": "tool.call"}]}, "outcome", id="missing-outcome"),
        pytest.param({"events": [{"agent_id": "x", "kind": "tool.call", "outcome": "maybe"}]}, "outcome", id="bad-outcome"),
        pytest.param({"events": [{"kind": "tool.call", "outcome": "ok"}]}, "agent_id", id="missing-agent_id"),
    ],
)
def test_malformed_events_are_400_with_a_message(fleet, body, field):
    status, _, raw = post_events(fleet.server, fleet.operator, body)
    assert status == 400, f"POST /v1/events with {body!r}: {status} {raw[:500]!r}"
    text = raw.decode(errors="replace")
    assert text.strip(), "400 without a message"
    if field:
        assert field in text, f"the 400 message does not name {field!r}: {text!r}"
    fleet.server.assert_alive()


def test_bad_batch_stores_nothing(fleet, uid):
    """A batch with one bad event is rejected whole: the good one is not half-stored."""
    agent = f"rest-atomic-{uid}"
    body = {
        "events": [
            {"agent_id": agent, "kind": "tool.call", "outcome": "ok"},
            {"agent_id": agent, "kind": "tool.call", "outcome": "maybe"},
        ]
    }
    status, _, raw = post_events(fleet.server, fleet.operator, body)
    assert status == 400, raw

    import anyio

    async def check():
        async with http_client(fleet.server.mcp_url, fleet.operator) as client:
            r = await client.call_tool("trust_score", {"agent_id": agent})
            assert r.is_error, f"half of a rejected batch was stored: {r.structured_content}"

    anyio.run(check)


def test_healthz(fleet):
    status, _, _ = http_request("GET", f"{fleet.server.base_url}/healthz")
    assert status == 200


def test_gzip_event_batches_are_accepted_and_bombs_refused(fleet, uid):
    import gzip

    body = json.dumps({"events": [{"agent_id": f"gz-{uid}", "kind": "tool.call", "outcome": "ok"}] * 3}).encode()
    headers = {**bearer(fleet.operator), "Content-Type": "application/json", "Content-Encoding": "gzip"}
    status, _, raw = http_request("POST", f"{fleet.server.base_url}/v1/events", gzip.compress(body), headers)
    assert status == 200 and json.loads(raw)["accepted"] == 3, raw
    bomb = gzip.compress(b" " * (64 << 20), compresslevel=9)
    status, _, raw = http_request("POST", f"{fleet.server.base_url}/v1/events", bomb, headers)
    assert status == 413 and "decompresses to more than" in json.loads(raw)["error"], raw
    headers["Content-Encoding"] = "br"
    status, _, raw = http_request("POST", f"{fleet.server.base_url}/v1/events", body, headers)
    assert status == 415, raw
    fleet.server.assert_alive()


def test_whoami_names_the_tokens_tenant_role_and_agent(fleet):
    status, _, raw = http_request("GET", f"{fleet.server.base_url}/v1/whoami", headers=bearer(fleet.operator))
    assert status == 200, raw
    assert json.loads(raw) == {"tenant": "acme", "role": "operator", "agent_id": None}
    status, _, _ = http_request("GET", f"{fleet.server.base_url}/v1/whoami")
    assert status == 401


def test_metrics_is_prometheus_text(fleet):
    # Some traffic first, so there is something to count.
    post_events(fleet.server, fleet.operator, {"events": [{"agent_id": "metrics-probe", "kind": "k", "outcome": "ok"}]})
    # /metrics needs a token (issue 16): an operator's shows its tenant's view.
    status, headers, raw = http_request("GET", f"{fleet.server.base_url}/metrics", headers=bearer(fleet.operator))
    assert status == 200, raw[:300]
    ctype = headers.get("content-type", "")
    assert ctype.startswith("text/plain") or ctype.startswith("application/openmetrics-text"), ctype
    text = raw.decode()
    type_lines = [l for l in text.splitlines() if l.startswith("# TYPE ")]
    assert type_lines, f"no '# TYPE' lines in /metrics:\n{text[:1000]}"
    samples = [l for l in text.splitlines() if l and not l.startswith("#")]
    assert samples, "no samples in /metrics"
    for line in samples:
        name_part, _, value = line.rpartition(" ")
        assert name_part, f"bad sample line {line!r}"
        float(value.split(" ")[0])
    assert "meshos" in text, "no meshos_* metric"
