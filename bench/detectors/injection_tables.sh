#!/usr/bin/env bash
# Reproduces the prompt-injection tables on the blind sets (bench/detectors/injection_blind.md)
# from a fresh clone: the bench venv and the pinned data wheels, AGT in a venv of its own, a
# release build of meshos with the committed model, then policy/train/eval_injection.py.
#   bash bench/detectors/injection_tables.sh
# Retraining the model is a separate command (policy/train/train_injection.py; see its README).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
VENV="${MESHOS_BENCH_VENV:-$HOME/.cache/meshos-bench-venv}"
AGT_VENV="${MESHOS_AGT_VENV:-$HOME/.cache/meshos-agt-venv}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/meshos-target}"

[ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "import sklearn, pyarrow" 2>/dev/null || bash "$HERE/setup.sh"
bash "$HERE/injection_setup.sh" >/dev/null
if ! "$AGT_VENV/bin/python" -c "import agent_os.prompt_injection" 2>/dev/null; then
  python3 -m venv "$AGT_VENV"
  "$AGT_VENV/bin/pip" install --quiet agent-governance-toolkit-core==5.0.0
fi
if [ -z "${MESHOS_BIN:-}" ]; then
  (cd "$ROOT" && cargo build --release --quiet -p meshos-mcp-server)
  MESHOS_BIN="$CARGO_TARGET_DIR/release/meshos"
fi
"$VENV/bin/python" "$ROOT/policy/train/eval_injection.py" --meshos-bin "$MESHOS_BIN" \
  --agt-python "$AGT_VENV/bin/python" --out "$HERE/injection_blind.md"
