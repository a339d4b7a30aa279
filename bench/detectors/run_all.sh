#!/usr/bin/env bash
# Detector benchmark end to end: build meshos (release), generate texts, compare with
# Presidio, evaluate the prompt-injection screen. Writes bench/detectors/results.md.
#   bash bench/detectors/setup.sh && bash bench/detectors/run_all.sh
# Env: MESHOS_BIN (default: $CARGO_TARGET_DIR/release/meshos, built here unless MESHOS_BIN is
# set), MESHOS_DETECTOR_BENCH (the meshos-policy `evaluate` bench binary, built here unless set),
# MESHOS_BENCH_VENV (default ~/.cache/meshos-bench-venv), REPS (default 5).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
VENV="${MESHOS_BENCH_VENV:-$HOME/.cache/meshos-bench-venv}"
PY="$VENV/bin/python"
[ -x "$PY" ] || { echo "no venv at $VENV: run bash bench/detectors/setup.sh first" >&2; exit 1; }

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/meshos-target}"
if [ -z "${MESHOS_BIN:-}" ]; then
  (cd "$ROOT" && cargo build --release --bin meshos)
  export MESHOS_BIN="$CARGO_TARGET_DIR/release/meshos"
fi
# The detectors alone, in process (no process start, JSON or injection screen): compare.py runs
# this bench binary over the same texts.
if [ -z "${MESHOS_DETECTOR_BENCH:-}" ]; then
  MESHOS_DETECTOR_BENCH="$(cd "$ROOT" && cargo bench -p meshos-policy --bench evaluate --no-run \
    --message-format json 2>/dev/null | "$PY" -c 'import json,sys
for l in sys.stdin:
    o = json.loads(l)
    if o.get("reason") == "compiler-artifact" and o.get("executable") and o["target"]["name"] == "evaluate":
        print(o["executable"])')" || true
  export MESHOS_DETECTOR_BENCH
fi

"$PY" "$HERE/generate.py" --n "${N_TEXTS:-1000}"
"$PY" "$HERE/compare.py" --reps "${REPS:-5}"
"$PY" "$HERE/injection_eval.py"
echo "results: $HERE/results.md"
