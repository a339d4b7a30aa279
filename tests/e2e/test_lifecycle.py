"""The server process: starts on a fresh data dir, stops promptly on SIGTERM even with clients attached."""

import os
import signal
import time

import anyio
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from meshos_e2e import bearer

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("mode", ["auto", "legacy"], ids=["protocol-2026-07-28", "protocol-2025-11-25"])
async def test_sigterm_with_an_open_mcp_session(make_server, meshos, mode):
    """`legacy` is the initialize handshake (2025-11-25) that keeps a GET SSE stream open, as the
    MCP Inspector and many desktop clients do; shutdown must not wait for such clients forever."""
    token = meshos.token("lifecycle", "operator")
    server = make_server()
    pid = server.proc.pid
    elapsed = None
    with anyio.fail_after(60):
        async with create_mcp_http_client(headers=bearer(token)) as hc:
            try:
                async with Client(streamable_http_client(server.mcp_url, http_client=hc), mode=mode) as client:
                    await client.list_tools()
                    os.kill(pid, signal.SIGTERM)
                    start = time.monotonic()
                    while time.monotonic() - start < 10:
                        if server.proc.poll() is not None:
                            elapsed = time.monotonic() - start
                            break
                        await anyio.sleep(0.1)
            except Exception:
                pass  # the session breaks when the server goes away: expected
    code = server.proc.poll() if server.proc else server.exit_code
    assert elapsed is not None, (
        f"`meshos serve` still running 10 s after SIGTERM with an open {mode} MCP session\n"
        f"--- server log ---\n{server.log_tail(20)}"
    )
    assert code == 0, f"`meshos serve` exited with {code} on SIGTERM\n{server.log_tail(20)}"


def test_data_dir_is_created(meshos_bin, tmp_path):
    """`serve` on a data dir that does not exist yet creates it (first run of the README command)."""
    from meshos_e2e import Meshos, MeshosServer

    cli = Meshos(meshos_bin, tmp_path / "does" / "not" / "exist")
    server = MeshosServer(cli, log_dir=tmp_path)
    server.start()
    try:
        assert (tmp_path / "does" / "not" / "exist").is_dir()
    finally:
        server.stop()
