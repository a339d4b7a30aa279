#!/usr/bin/env bash
# Run every test of the project: the one command the README gives, and what CI runs.
#
#   1. install the test dependencies (scripts/setup-test-deps.sh)
#   2. start a throwaway PostgreSQL (stopped again on exit) and export MESHOS_TEST_DATABASE_URL
#   3. cargo build, cargo nextest (Rust tests, store tests against SQLite and PostgreSQL)
#   4. cargo fmt --check, cargo clippy -D warnings
#   5. the end-to-end suite (tests/e2e, pytest) against the real `meshos` binary
#
# Every step runs even when an earlier one failed (except the ones that need a build); the exit code
# is non-zero when any step failed.
#
# Environment: CARGO_TARGET_DIR (default $HOME/.cache/meshos-target), MESHOS_VENV, MESHOS_NODE_DIR,
# MESHOS_PG_PORT; extra pytest arguments can be passed as arguments to this script.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT" || exit 1

export MESHOS_VENV="${MESHOS_VENV:-$HOME/.cache/meshos-venv}"
export MESHOS_NODE_DIR="${MESHOS_NODE_DIR:-$HOME/.cache/meshos-node}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/meshos-target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

log() { printf '\n[test.sh] %s\n' "$*"; }

FAILED=()
step() {
    local name="$1"
    shift
    log "== $name: $*"
    local start=$SECONDS
    if "$@"; then
        log "ok: $name ($((SECONDS - start)) s)"
        return 0
    else
        local rc=$?
        log "FAILED: $name (exit $rc, $((SECONDS - start)) s)"
        FAILED+=("$name")
        return "$rc"
    fi
}

step "setup-test-deps" "$ROOT/scripts/setup-test-deps.sh" || {
    log "cannot install the test dependencies"
    exit 1
}

PG_ENV="$("$ROOT/scripts/pg-start.sh")" || {
    log "cannot start PostgreSQL"
    exit 1
}
trap '"$ROOT/scripts/pg-stop.sh" || true' EXIT
eval "$PG_ENV"
export MESHOS_TEST_DATABASE_URL
log "MESHOS_TEST_DATABASE_URL set (PostgreSQL on 127.0.0.1:${MESHOS_PG_PORT:-55432})"

# The evals crate's SciPy test writes its values here; tests/e2e/test_evals_scipy.py checks them
# against SciPy live.
export MESHOS_SCIPY_DUMP="$CARGO_TARGET_DIR/meshos-evals-scipy.json"
rm -f "$MESHOS_SCIPY_DUMP"

BUILT=1
step "cargo build" cargo build --workspace || BUILT=0
if [ "$BUILT" -eq 1 ]; then
    step "cargo nextest" cargo nextest run --workspace --no-fail-fast
fi
step "cargo fmt" cargo fmt --all -- --check
step "cargo clippy" cargo clippy --workspace --all-targets -- -D warnings

MESHOS_BIN="$CARGO_TARGET_DIR/debug/meshos"
export MESHOS_BIN
export MESHOS_INSPECTOR="$MESHOS_NODE_DIR/node_modules/.bin/mcp-inspector"
if [ "$BUILT" -eq 1 ]; then
    PYTEST_LOG="$(mktemp /tmp/meshos-pytest.XXXXXX.log)"
    log "== pytest: tests/e2e (MESHOS_BIN=$MESHOS_BIN)"
    start=$SECONDS
    "$MESHOS_VENV/bin/python" -m pytest "$ROOT/tests/e2e" -ra -p no:cacheprovider "$@" 2>&1 | tee "$PYTEST_LOG"
    rc=${PIPESTATUS[0]}
    if [ "$rc" -eq 0 ]; then
        log "ok: pytest ($((SECONDS - start)) s)"
    else
        log "FAILED: pytest (exit $rc, $((SECONDS - start)) s)"
        FAILED+=("pytest")
    fi
    summary="$(grep -E '^=+ .*(passed|failed|error|no tests ran).* =+$' "$PYTEST_LOG" | tail -n 1 || true)"
    rm -f "$PYTEST_LOG"
else
    log "skipping nextest and pytest: the build failed"
    summary=""
fi

if [ "${#FAILED[@]}" -ne 0 ]; then
    log "failed steps: ${FAILED[*]}"
    [ -n "$summary" ] && printf '%s\n' "$summary"
    exit 1
fi
log "all steps passed"
printf '%s\n' "$summary"
exit 0
