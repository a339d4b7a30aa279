"""The same binary on PostgreSQL (`--database-url`), the scale-out store.

Needs MESHOS_TEST_DATABASE_URL (scripts/test.sh starts a throwaway cluster and sets it). Each test
gets its own fresh database on that server.
"""

import os
import secrets
import shutil
import subprocess
from urllib.parse import urlsplit, urlunsplit

import pytest

from meshos_e2e import Meshos, MeshosServer, call_ok, describe, http_client, verify_evidence


def psql_binary() -> str:
    found = shutil.which("psql")
    if found:
        return found
    import glob

    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/psql"))
    assert candidates, "psql not found"
    return candidates[-1]


@pytest.fixture
def pg_url() -> str:
    base = os.environ.get("MESHOS_TEST_DATABASE_URL")
    if not base:
        pytest.fail("MESHOS_TEST_DATABASE_URL is not set: run the suite through scripts/test.sh (it starts PostgreSQL)")
    name = f"meshos_e2e_{secrets.token_hex(4)}"
    parts = urlsplit(base)
    admin = urlunsplit(parts._replace(path="/postgres"))
    proc = subprocess.run(
        [psql_binary(), "-X", "-q", "-v", "ON_ERROR_STOP=1", admin, "-c", f"CREATE DATABASE {name}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, f"cannot create database {name}\n{describe(proc)}"
    yield urlunsplit(parts._replace(path=f"/{name}"))
    subprocess.run(
        [psql_binary(), "-X", "-q", admin, "-c", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.anyio
async def test_serve_on_postgres(meshos_bin, tmp_path, pg_url):
    data = tmp_path / "data"
    data.mkdir()
    cli = Meshos(meshos_bin, data, database_url=pg_url)
    token = cli.token("pg-tenant", "operator")
    other = cli.token("pg-other", "operator")
    server = MeshosServer(cli, log_dir=tmp_path)
    server.start()
    try:
        async with http_client(server.mcp_url, token) as client:
            ev = await call_ok(client, "record_event", {"agent_id": "pg-agent", "kind": "tool.call", "outcome": "ok"})
            d = await call_ok(client, "policy_check", {"agent_id": "pg-agent", "action": "shell.exec"})
            assert d["decision"] == "deny"
            ts = await call_ok(client, "trust_score", {"agent_id": "pg-agent"})
            assert 0 <= ts["score"] <= 100
            evidence = await call_ok(client, "evidence_fetch", {"agent_id": "pg-agent"})
            verify_evidence(evidence)
            assert ev["ledger_index"] in {r["ledger_index"] for r in evidence["records"]}
            by_id = await call_ok(client, "evidence_fetch", {"decision_id": d["decision_id"]})
            verify_evidence(by_id)
        async with http_client(server.mcp_url, other) as client:
            r = await client.call_tool("evidence_fetch", {"decision_id": d["decision_id"]})
            assert r.is_error, "another tenant read a decision on PostgreSQL"
    finally:
        server.stop()

    # Data survives a restart (it lives in PostgreSQL), and the audit passes.
    server = MeshosServer(cli, log_dir=tmp_path)
    server.start()
    try:
        async with http_client(server.mcp_url, token) as client:
            again = await call_ok(client, "evidence_fetch", {"decision_id": d["decision_id"]})
            assert len(again["records"]) == 1
            verify_evidence(again)
    finally:
        server.stop()
    proc = cli.run("audit", "verify")
    assert proc.returncode == 0, f"audit verify on PostgreSQL failed\n{describe(proc)}"


def drop_database(url: str) -> None:
    parts = urlsplit(url)
    admin = urlunsplit(parts._replace(path="/postgres"))
    proc = subprocess.run(
        [psql_binary(), "-X", "-q", admin, "-c", f"DROP DATABASE {parts.path.lstrip('/')} WITH (FORCE)"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, describe(proc)


@pytest.mark.anyio
@pytest.mark.parametrize("transport", ["http", "stdio"])
async def test_database_lost_during_a_run_is_a_tool_error(meshos_bin, tmp_path, pg_url, transport):
    """The database disappears under a running server: tool calls give isError, promptly, and the
    process keeps serving (issue 2: "during a run it is a tool error, never a hang")."""
    import time

    from meshos_e2e import stdio_client_for

    data = tmp_path / "data"
    data.mkdir()
    cli = Meshos(meshos_bin, data, database_url=pg_url)
    token = cli.token("pg-lost", "operator")
    server = None
    if transport == "http":
        server = MeshosServer(cli, log_dir=tmp_path)
        server.start()
        session = http_client(server.mcp_url, token)
    else:
        session = stdio_client_for(cli, token, tmp_path / "mcp.log")
    try:
        async with session as client:
            await call_ok(client, "record_event", {"agent_id": "pg-agent", "kind": "tool.call", "outcome": "ok"})
            drop_database(pg_url)
            start = time.monotonic()
            try:
                r = await client.call_tool("record_event", {"agent_id": "pg-agent", "kind": "tool.call", "outcome": "ok"})
            except Exception as e:
                log = server.log_tail(15) if server else (tmp_path / "mcp.log").read_text(errors="replace")[-2000:]
                raise AssertionError(f"a protocol/HTTP error instead of a tool error: {e!r}\n--- server log ---\n{log}") from e
            elapsed = time.monotonic() - start
            assert r.is_error, f"record_event succeeded without a database: {r.structured_content}"
            assert elapsed < 30, f"the tool error took {elapsed:.1f}s"
        if server:
            server.assert_alive()
    finally:
        if server:
            server.stop()
