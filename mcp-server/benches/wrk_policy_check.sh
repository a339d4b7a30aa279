#!/usr/bin/env bash
# Second opinion on policy_check throughput with wrk (Debian package `wrk`), next to
# `cargo bench -p meshos-mcp-server --bench policy_throughput`.
#
# Starts `meshos serve` on a fresh data directory, opens one MCP session per wrk thread
# (initialize + notifications/initialized, with curl) and runs wrk with wrk_policy_check.lua,
# which sends tools/call policy_check on every connection in a closed loop. wrk runs on the same
# machine as the server, so the two share its cores.
#
# Usage: mcp-server/benches/wrk_policy_check.sh [plain|pii]
# Env:   MESHOS_BIN (default $CARGO_TARGET_DIR/release/meshos, else target/release/meshos),
#        WRK_THREADS (default 1), WRK_CONNECTIONS (default 16), WRK_DURATION (default 10s)
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
scenario="${1:-plain}"
bin="${MESHOS_BIN:-${CARGO_TARGET_DIR:-$here/../../target}/release/meshos}"
threads="${WRK_THREADS:-1}"
connections="${WRK_CONNECTIONS:-16}"
duration="${WRK_DURATION:-10s}"

for tool in wrk curl; do
    command -v "$tool" >/dev/null || { echo "$tool is not installed (apt-get install $tool)" >&2; exit 1; }
done
[ -x "$bin" ] || { echo "no meshos binary at $bin: cargo build --release -p meshos-mcp-server" >&2; exit 1; }

data="$(mktemp -d)"
server_pid=""
cleanup() {
    if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
    rm -rf "$data"
}
trap cleanup EXIT

token="$("$bin" token create --tenant bench --role operator --data-dir "$data")"
port=$((40000 + RANDOM % 20000))
"$bin" serve --bind "127.0.0.1:$port" --data-dir "$data" --log warn >/dev/null &
server_pid=$!
url="http://127.0.0.1:$port"
for _ in $(seq 100); do
    curl -fsS "$url/healthz" >/dev/null 2>&1 && break
    sleep 0.1
done

mcp_post() { # session-id body -> response headers on stdout
    curl -sS -D - -o /dev/null -X POST "$url/mcp" \
        -H "Authorization: Bearer $token" -H "Content-Type: application/json" \
        -H "Accept: application/json, text/event-stream" -H "Mcp-Protocol-Version: 2025-06-18" \
        ${1:+-H "Mcp-Session-Id: $1"} --data "$2"
}

sessions=""
for _ in $(seq "$threads"); do
    init='{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"wrk","version":"1"}}}'
    sid="$(mcp_post "" "$init" | tr -d '\r' | awk -F': ' 'tolower($1)=="mcp-session-id"{print $2}')"
    [ -n "$sid" ] || { echo "initialize did not return an Mcp-Session-Id" >&2; exit 1; }
    mcp_post "$sid" '{"jsonrpc":"2.0","method":"notifications/initialized"}' >/dev/null
    sessions="$sessions $sid"
done

echo "wrk: $threads thread(s), $connections connections, $duration, scenario $scenario, server $bin"
MESHOS_TOKEN="$token" MESHOS_SESSIONS="$sessions" MESHOS_SCENARIO="$scenario" \
    wrk -t "$threads" -c "$connections" -d "$duration" --latency -s "$here/wrk_policy_check.lua" "$url/mcp"
