"""Fixtures for the end-to-end suite: the real `meshos` binary, real MCP clients.

The binary is taken from $MESHOS_BIN (scripts/test.sh sets it to $CARGO_TARGET_DIR/debug/meshos).
Every process gets its own temporary data directory; servers listen on free loopback ports.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import pytest

from meshos_e2e import (
    Meshos,
    MeshosServer,
    REPO_ROOT,
    inspector_path,
)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "anyio: run the test on an event loop (anyio plugin)")


def pytest_sessionstart(session: pytest.Session) -> None:
    binary = os.environ.get("MESHOS_BIN")
    if not binary:
        pytest.exit(
            "MESHOS_BIN is not set: point it at the meshos binary "
            "(scripts/test.sh sets it to $CARGO_TARGET_DIR/debug/meshos)",
            returncode=3,
        )
    if not (Path(binary).is_file() and os.access(binary, os.X_OK)):
        pytest.exit(f"MESHOS_BIN={binary} is not an executable file: build it first (cargo build)", returncode=3)


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def meshos_bin() -> Path:
    return Path(os.environ["MESHOS_BIN"]).resolve()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    d = tmp_path / "data"
    d.mkdir()
    return d


@pytest.fixture
def meshos(meshos_bin: Path, data_dir: Path) -> Meshos:
    """A `meshos` CLI bound to a fresh, empty data directory."""
    return Meshos(meshos_bin, data_dir)


@pytest.fixture
def make_server(meshos: Meshos, tmp_path: Path):
    """Start `meshos serve` on the test's data directory (optionally with extra flags/env).

    Every server started through this is stopped at teardown.
    """
    servers: list[MeshosServer] = []

    def start(*extra_args: str, env: dict[str, str] | None = None, cli: Meshos | None = None) -> MeshosServer:
        srv = MeshosServer(cli or meshos, extra_args=list(extra_args), env=env, log_dir=tmp_path)
        servers.append(srv)
        srv.start()
        return srv

    yield start
    for srv in servers:
        srv.stop()


@pytest.fixture
def server(make_server) -> MeshosServer:
    """A running `meshos serve` on a fresh data directory, default settings."""
    return make_server()


class Fleet:
    """One shared server with a few tenants' tokens, for the tests that only read and append.

    Tenant `acme` (operator, admin, auditor, agents a1/a2) and tenant `globex` (operator). Tests
    use agent ids with a per-test suffix so that their records do not mix.
    """

    def __init__(self, meshos: Meshos) -> None:
        self.meshos = meshos
        self.tokens: dict[str, str] = {
            "acme-operator": meshos.token("acme", "operator"),
            "acme-admin": meshos.token("acme", "admin"),
            "acme-auditor": meshos.token("acme", "auditor"),
            "acme-agent-a1": meshos.token("acme", "agent", agent="a1"),
            "globex-operator": meshos.token("globex", "operator"),
            "stdio-operator": meshos.token("stdio-co", "operator"),
        }
        self.server: MeshosServer | None = None

    @property
    def operator(self) -> str:
        return self.tokens["acme-operator"]


@pytest.fixture(scope="session")
def fleet(meshos_bin: Path, tmp_path_factory: pytest.TempPathFactory):
    base = tmp_path_factory.mktemp("fleet")
    data = base / "data"
    data.mkdir()
    cli = Meshos(meshos_bin, data)
    f = Fleet(cli)
    f.server = MeshosServer(cli, extra_args=[], env=None, log_dir=base)
    f.server.start()
    yield f
    f.server.stop()


@pytest.fixture
def uid() -> str:
    """A short unique suffix for agent ids, so tests sharing a server do not see each other's records."""
    return secrets.token_hex(4)


@pytest.fixture(scope="session")
def inspector() -> Path:
    p = inspector_path()
    if not p.exists():
        pytest.fail(
            f"MCP Inspector CLI not found at {p}: run scripts/setup-test-deps.sh "
            "(or set MESHOS_INSPECTOR / MESHOS_NODE_DIR)"
        )
    return p


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT
