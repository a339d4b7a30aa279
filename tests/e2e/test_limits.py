"""Issue 16: every limit is configurable (`[limits]`), /metrics needs a token and shows only the
token's tenant, a trickled header is cut off, and request bodies share a bounded budget."""

from __future__ import annotations

import socket
import time
from pathlib import Path

from meshos_e2e import Meshos, MeshosServer, bearer, free_port, http_request
from test_auth import INITIALIZE, MCP_HEADERS



def events(agent: str, n: int) -> dict:
    return {"events": [{"agent_id": agent, "kind": "tool.call", "outcome": "ok"} for _ in range(n)]}


def write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "meshos.toml"
    path.write_text(text)
    return path


def metric_lines(raw: bytes, agent: str) -> list[str]:
    return [l for l in raw.decode().splitlines() if l.startswith("meshos_trust_score{") and f'agent="{agent}"' in l]


def test_metrics_needs_a_token_and_has_no_agent_series_by_default(fleet, uid):
    agent = f"metrics-{uid}"
    status, _, raw = http_request("POST", f"{fleet.server.base_url}/v1/events", events(agent, 3), bearer(fleet.operator))
    assert status == 200, raw
    url = f"{fleet.server.base_url}/metrics"
    status, headers, _ = http_request("GET", url)
    assert status == 401 and headers.get("www-authenticate") == "Bearer", status
    status, _, raw = http_request("GET", url, headers=bearer(fleet.tokens["acme-agent-a1"]))
    assert status == 403 and b"operator, admin or auditor" in raw, (status, raw)
    status, _, raw = http_request("GET", url, headers=bearer(fleet.tokens["acme-auditor"]))
    assert status == 200, raw[:200]
    assert b"meshos_events_ingested_total" in raw
    assert not metric_lines(raw, agent), "a per-agent series without --metrics-agent-labels"


def test_agent_series_are_shown_to_their_own_tenant_only(meshos: Meshos, make_server, uid):
    server = make_server("--metrics-agent-labels")
    acme, globex = meshos.token("acme", "operator"), meshos.token("globex", "operator")
    agent = f"labelled-{uid}"
    status, _, raw = http_request("POST", f"{server.base_url}/v1/events", events(agent, 5), bearer(acme))
    assert status == 200, raw
    deadline = time.monotonic() + 10
    while True:
        _, _, mine = http_request("GET", f"{server.base_url}/metrics", headers=bearer(acme))
        if metric_lines(mine, agent) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert metric_lines(mine, agent), "acme's operator does not see its agent's series"
    _, _, theirs = http_request("GET", f"{server.base_url}/metrics", headers=bearer(globex))
    assert not metric_lines(theirs, agent), "another tenant sees acme's agent"
    assert b'tenant="acme"' not in theirs


def test_a_separate_metrics_address_serves_every_series_without_a_token(meshos: Meshos, make_server, uid):
    port = free_port()
    server = make_server("--metrics-bind", f"127.0.0.1:{port}", "--metrics-agent-labels")
    agent = f"scraped-{uid}"
    http_request("POST", f"{server.base_url}/v1/events", events(agent, 2), bearer(meshos.token("acme", "operator")))
    deadline = time.monotonic() + 10
    while True:
        status, _, raw = http_request("GET", f"http://127.0.0.1:{port}/metrics")
        if (status == 200 and metric_lines(raw, agent)) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert status == 200 and metric_lines(raw, agent), (status, raw[:300])
    # Only /metrics is on that address.
    status, _, _ = http_request("GET", f"http://127.0.0.1:{port}/v1/whoami")
    assert status == 404


def test_limits_from_the_config_file_apply(meshos: Meshos, make_server, tmp_path: Path, uid):
    config = write_config(
        tmp_path,
        "[limits]\nmax_batch_events = 3\nmax_sessions_per_token = 1\nmax_cost_usd = 5.0\n",
    )
    server = make_server("--config", str(config))
    token = meshos.token("acme", "operator")
    url = f"{server.base_url}/v1/events"
    status, _, raw = http_request("POST", url, events(f"cfg-{uid}", 4), bearer(token))
    assert status == 400 and b"3" in raw, (status, raw)
    status, _, raw = http_request("POST", url, events(f"cfg-{uid}", 3), bearer(token))
    assert status == 200, raw
    pricey = {"events": [{"agent_id": f"cfg-{uid}", "kind": "llm.call", "outcome": "ok", "cost_usd": 6.0}]}
    status, _, raw = http_request("POST", url, pricey, bearer(token))
    assert status == 400 and b"cost_usd" in raw, (status, raw)
    headers = {**MCP_HEADERS, **bearer(token)}
    status, _, _ = http_request("POST", server.mcp_url, INITIALIZE, headers)
    assert status == 200
    status, _, raw = http_request("POST", server.mcp_url, INITIALIZE, headers)
    assert status == 429 and b"limit 1" in raw, (status, raw)


def test_a_zero_limit_is_refused_at_start_naming_the_key(meshos: Meshos, tmp_path: Path):
    config = write_config(tmp_path, "[limits]\nmax_connections = 0\n")
    srv = MeshosServer(meshos, extra_args=["--config", str(config)], log_dir=tmp_path)
    try:
        srv.start(timeout=20)
    except AssertionError as e:
        assert "max_connections must be at least 1" in str(e), str(e)
    else:
        srv.stop()
        raise AssertionError("a server with max_connections = 0 started")


def test_a_trickled_header_is_cut_off(meshos: Meshos, make_server, tmp_path: Path):
    """Slowloris: one header line every 300 ms, never finished, kept a connection forever."""
    config = write_config(tmp_path, "[limits]\nheader_read_timeout_ms = 1000\n")
    server = make_server("--config", str(config))
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        started = time.monotonic()
        closed = False
        while time.monotonic() - started < 8:
            time.sleep(0.3)
            try:
                s.sendall(b"X-Slow: y\r\n")
                s.settimeout(0.01)
                data = s.recv(512)
                if data == b"" or b"408" in data:
                    closed = True
                    break
            except socket.timeout:
                continue
            except OSError:
                closed = True
                break
        assert closed, "the server kept a connection whose header never ended"
        assert time.monotonic() - started < 5
    # And the server still answers.
    status, _, _ = http_request("GET", f"{server.base_url}/healthz")
    assert status == 200


def test_request_bodies_share_a_bounded_budget(meshos: Meshos, make_server, tmp_path: Path, uid):
    """Thousands of connections each sending a large body were all buffered at once; now a body
    that finds no room within the wait gets a 503 with Retry-After, and nothing is stored."""
    mib = 1 << 20
    config = write_config(
        tmp_path,
        "[limits]\n"
        f"max_request_body_bytes = {mib}\nmax_mcp_body_bytes = {mib}\nmax_otlp_body_bytes = {mib}\n"
        f"max_inflight_body_bytes = {mib}\nbody_wait_ms = 300\n",
    )
    server = make_server("--config", str(config))
    token = meshos.token("acme", "operator")
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as slow:
        # A body that declares the whole budget and sends a little of it: it holds all the room.
        slow.sendall(
            (
                "POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                f"Authorization: Bearer {token}\r\nContent-Length: {mib}\r\n\r\n"
            ).encode()
            + b'{"events":['
        )
        time.sleep(0.3)
        status, headers, raw = http_request("POST", f"{server.base_url}/v1/events", events(f"budget-{uid}", 1), bearer(token))
        assert status == 503 and headers.get("retry-after") == "1", (status, raw)
        assert b"no room" in raw, raw
    # The slow client hung up: its room is given back.
    deadline = time.monotonic() + 10
    while True:
        status, _, raw = http_request("POST", f"{server.base_url}/v1/events", events(f"budget-{uid}", 1), bearer(token))
        if status == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert status == 200, (status, raw)
