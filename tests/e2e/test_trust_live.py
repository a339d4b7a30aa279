"""Live trust telemetry through the real binary: scores move with ingest, SLA breaches and
recoveries are stored, pushed to MCP subscribers and posted to a signed webhook (a real local
HTTP server), the score history gives a trend, and /metrics carries per-agent gauges."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import anyio
import pytest

from meshos_e2e import bearer, call_ok, http_client, http_request

SECRET = "e2e-webhook-secret-0123456789"


class WebhookReceiver:
    """A real HTTP server on loopback that records every POST it gets."""

    def __init__(self, fail_first: int = 0) -> None:
        self.requests: list[dict] = []
        self.fail_first = fail_first
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver.lock:
                    receiver.requests.append(
                        {"headers": {k.lower(): v for k, v in self.headers.items()}, "body": body}
                    )
                    failing = len(receiver.requests) <= receiver.fail_first
                self.send_response(503 if failing else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/meshos"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def delivered(self, kind: str, agent: str) -> list[dict]:
        """Distinct deliveries (by delivery id) of alerts of `kind` for `agent`."""
        with self.lock:
            seen: dict[str, dict] = {}
            for r in self.requests:
                payload = json.loads(r["body"])
                if payload.get("type") == kind and payload.get("agent_id") == agent:
                    seen[r["headers"].get("x-meshos-delivery", "")] = r
            return list(seen.values())


def wait_for(predicate, what: str, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def post_events(server, token: str, events: list[dict]) -> dict:
    status, _, raw = http_request(
        "POST", f"{server.base_url}/v1/events", {"events": events}, bearer(token)
    )
    assert status == 200, f"POST /v1/events: {status} {raw[:400]!r}"
    return json.loads(raw)


def events(agent: str, n: int, outcome: str, **fields) -> list[dict]:
    return [
        {"agent_id": agent, "kind": "tool_call", "outcome": outcome, "latency_ms": 40.0, **fields}
        for _ in range(n)
    ]


@pytest.fixture
def receiver():
    r = WebhookReceiver(fail_first=1)
    yield r
    r.close()


@pytest.fixture
def sla_server(make_server, tmp_path, receiver):
    config = tmp_path / "meshos.toml"
    config.write_text(
        "[trust]\n"
        "sla_threshold = 70\n"
        "webhook_retry_base_ms = 20\n"
        "[[trust.sla]]\n"
        'tenant = "strict"\n'
        "threshold = 90\n"
        "[[trust.webhooks]]\n"
        f'url = "{receiver.url}"\n'
        'secret_env = "MESHOS_WEBHOOK_SECRET"\n'
    )
    return make_server("--config", str(config), env={"MESHOS_WEBHOOK_SECRET": SECRET})


def verify_signature(request: dict) -> bool:
    headers = request["headers"]
    timestamp = headers["x-meshos-timestamp"]
    expected = hmac.new(
        SECRET.encode(), timestamp.encode() + b"." + request["body"], hashlib.sha256
    ).hexdigest()
    return hmac.compare_digest(headers["x-meshos-signature"], f"sha256={expected}")


@pytest.mark.anyio
async def test_sla_breach_and_recovery_are_stored_signed_and_posted(sla_server, receiver, uid):
    operator = sla_server.meshos.token("acme", "operator")
    agent = f"sla-{uid}"
    post_events(sla_server, operator, events(agent, 60, "ok"))
    async with http_client(sla_server.mcp_url, operator) as client:
        healthy = await call_ok(client, "trust_score", {"agent_id": agent})
        assert healthy["score"] >= 70 and not healthy["sla"]["breached"], healthy

        post_events(sla_server, operator, events(agent, 40, "violation"))
        breached = await call_ok(client, "trust_score", {"agent_id": agent})
        assert breached["score"] < 70 and breached["sla"]["breached"], breached
        assert any("violation" in line for line in breached["explanation"]), breached

        # The receiver answered 503 once: the delivery was retried and signed the same way.
        hits = wait_for(lambda: receiver.delivered("sla.breach", agent), "the breach webhook")
        assert len(hits) == 1, hits
        assert verify_signature(hits[0]), hits[0]["headers"]
        payload = json.loads(hits[0]["body"])
        assert payload["threshold"] == 70 and payload["score"] < 70, payload
        assert payload["scope"] == "fleet default", payload
        delivery_id = hits[0]["headers"]["x-meshos-delivery"]

        def attempts() -> list[dict]:
            with receiver.lock:
                return [
                    r for r in receiver.requests
                    if r["headers"].get("x-meshos-delivery") == delivery_id
                ]

        # The first attempt got a 503; the retry carries the same delivery id.
        retried = wait_for(lambda: len(attempts()) >= 2 and attempts(), "the retried delivery")
        assert all(verify_signature(r) for r in retried)
        tampered = {**hits[0], "body": hits[0]["body"].replace(b"sla.breach", b"sla.recovery")}
        assert not verify_signature(tampered)

        # Enough good outcomes bring it back above the threshold plus the recovery margin.
        for _ in range(10):
            post_events(sla_server, operator, events(agent, 200, "ok"))
            now = await call_ok(client, "trust_score", {"agent_id": agent})
            if not now["sla"]["breached"]:
                break
        assert not now["sla"]["breached"], now
        recovered = wait_for(lambda: receiver.delivered("sla.recovery", agent), "the recovery webhook")
        assert verify_signature(recovered[0])

        # Both alerts are stored, with the webhook outcome, and readable as a resource.
        kinds = None
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            alerts = [a for a in await read_alerts_in(client) if a["agent_id"] == agent]
            kinds = [a["kind"] for a in alerts]
            if len(alerts) == 2 and all(a["deliveries"] for a in alerts):
                break
            await anyio.sleep(0.1)
        assert kinds == ["sla.recovery", "sla.breach"], alerts
        assert alerts[1]["deliveries"][0]["attempts"] >= 2, alerts[1]


async def read_alerts_in(client) -> list[dict]:
    result = await client.read_resource("trust://alerts")
    return json.loads(result.contents[0].text)


@pytest.mark.anyio
async def test_a_tenant_rule_sets_a_stricter_threshold(sla_server, uid):
    token = sla_server.meshos.token("strict", "operator")
    agent = f"strict-{uid}"
    post_events(sla_server, token, events(agent, 30, "ok") + events(agent, 2, "error"))
    async with http_client(sla_server.mcp_url, token) as client:
        ts = await call_ok(client, "trust_score", {"agent_id": agent})
        assert ts["sla"]["threshold"] == 90, ts


@pytest.mark.anyio
async def test_subscribers_hear_of_score_changes(fleet, uid):
    agent = f"watch-{uid}"
    post_events(fleet.server, fleet.operator, events(agent, 3, "ok"))
    uri = f"trust://agents/{agent}"
    async with http_client(fleet.server.mcp_url, fleet.operator) as client:
        async with client.listen(resource_subscriptions=[uri]) as sub:
            assert uri in (sub.honored.resource_subscriptions or []), sub.honored
            # Another session (an agent's own REST ingest) moves the score.
            post_events(fleet.server, fleet.operator, events(agent, 5, "error"))
            with anyio.fail_after(10):
                async for event in sub:
                    assert event.uri == uri
                    break
        ts = await call_ok(client, "trust_score", {"agent_id": agent})
        assert ts["basis"]["error_events"] == 5, ts


@pytest.mark.anyio
async def test_agent_tokens_cannot_watch_other_agents(fleet, uid):
    token = fleet.tokens["acme-agent-a1"]
    async with http_client(fleet.server.mcp_url, token) as client:
        # The acknowledgement precedes the server's check of who may watch what, so the refusal
        # ends the subscription rather than the handshake.
        with pytest.raises(Exception) as err:
            with anyio.fail_after(10):
                async with client.listen(resource_subscriptions=[f"trust://agents/other-{uid}"]) as sub:
                    async for _ in sub:
                        pass
        # Refused at once (not a timeout): the stream ends with the server's error.
        assert not isinstance(err.value, TimeoutError), err.value
        assert "a1" in str(err.value) or "subscription" in str(err.value), err.value


@pytest.mark.anyio
async def test_history_gives_a_trend_and_metrics_carry_the_gauge(meshos, make_server, uid):
    # Per-agent series are opt-in (issue 16: clients choose agent ids).
    server = make_server("--metrics-agent-labels")
    operator = meshos.token("acme", "operator")
    agent = f"trend-{uid}"
    post_events(server, operator, events(agent, 20, "ok"))
    async with http_client(server.mcp_url, operator) as client:
        deadline = time.monotonic() + 10
        while True:
            ts = await call_ok(client, "trust_score", {"agent_id": agent})
            if ts["trend"]["points"] or time.monotonic() > deadline:
                break
            await anyio.sleep(0.2)
    assert ts["trend"]["points"], ts["trend"]
    assert ts["trend"]["direction"] in {"rising", "falling", "steady"}
    status, _, raw = http_request("GET", f"{server.base_url}/metrics", headers=bearer(operator))
    assert status == 200
    text = raw.decode()
    gauge = [
        line for line in text.splitlines()
        if line.startswith("meshos_trust_score{") and f'agent="{agent}"' in line
    ]
    assert gauge, "no meshos_trust_score gauge for the agent"
    assert abs(float(gauge[0].rsplit(" ", 1)[1]) - ts["score"]) < 5, (gauge, ts["score"])
    assert 'meshos_ingest_events_total{door="rest"}' in text
    assert "meshos_trust_freshness_seconds_bucket" in text
