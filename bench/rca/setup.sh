#!/usr/bin/env bash
# Creates the Python environment for the RCA benchmark baselines (PyRCA and RCAEval from PyPI).
#
# Why the packages are installed the way they are (read from the packages' own metadata):
# - sfr-pyrca 1.0.1 declares `javabridge`, which needs a JDK to build and is only used by its
#   Tetrad wrapper (pyrca/thirdparty/pycausal), never by the HT / RandomWalk / epsilon-Diagnosis
#   analyzers we run. So PyRCA goes in with --no-deps and we install the dependencies those
#   analyzers import. It also pins scikit-learn<1.2, hence scikit-learn 1.1.3 (has cp311 wheels).
# - RCAEval 1.8.1 puts every dependency behind extras ([default] pins ~200 packages incl. torch).
#   On CPython 3.11 its `RCAEval.e2e` package imports rcd/mmrcd/torai eagerly, which need
#   matplotlib + causal-learn; circa needs causal-learn (PC). We install exactly those.
# - dowhy 0.12 (gcm.distribution_change, the DoWhy baseline) is the last release whose
#   scikit-learn requirement (>1.0) accepts the 1.1.3 that sfr-pyrca pins; it pulls cvxpy, numba,
#   sympy and cython<3, pinned here to versions with CPython 3.11 wheels.
# Usage: bash bench/rca/setup.sh            (venv at $MESHOS_RCA_VENV or ~/.cache/meshos-rca-venv)
set -euo pipefail

VENV="${MESHOS_RCA_VENV:-$HOME/.cache/meshos-rca-venv}"
PY="${PYTHON:-python3.11}"
if ! command -v "$PY" >/dev/null 2>&1; then PY=python3; fi

if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip install --disable-pip-version-check -q)

"${PIP[@]}" --upgrade "pip==24.3.1"
# setuptools < 81 still ships pkg_resources, which pyrca/__init__.py imports.
"${PIP[@]}" \
  "setuptools==69.5.1" \
  "numpy==1.26.4" \
  "pandas==2.1.4" \
  "scipy==1.11.4" \
  "scikit-learn==1.1.3" \
  "networkx==3.2.1" \
  "matplotlib==3.8.4" \
  "statsmodels==0.14.1" \
  "causal-learn==0.1.3.8" \
  "pyyaml==6.0.1" "schema==0.7.7" "dill==0.3.8" "tqdm==4.66.4" "packaging==24.0" "requests==2.31.0"

status=0
if "${PIP[@]}" "dowhy==0.12" "cvxpy==1.4.2" "numba==0.59.1" "llvmlite==0.42.0" "cython==0.29.37" \
    "sympy==1.12" "numpy==1.26.4" "scipy==1.11.4" "scikit-learn==1.1.3" "pandas==2.1.4" \
    "networkx==3.2.1" "statsmodels==0.14.1" "causal-learn==0.1.3.8"; then
  echo "setup: dowhy 0.12 installed"
else
  echo "setup: dowhy could not be installed; run.py will skip the DoWhy baseline" >&2
  status=1
fi
if "${PIP[@]}" --no-deps "sfr-pyrca==1.0.1"; then
  echo "setup: sfr-pyrca 1.0.1 installed (without javabridge; see the comment at the top)"
else
  echo "setup: sfr-pyrca could not be installed; run.py will skip the PyRCA baselines" >&2
  status=1
fi
if "${PIP[@]}" --no-deps "RCAEval==1.8.1"; then
  echo "setup: RCAEval 1.8.1 installed"
else
  echo "setup: RCAEval could not be installed; run.py will skip the RCAEval baselines" >&2
  status=1
fi

# Smoke-import what run.py uses, so a broken environment is reported here, not mid-benchmark.
"$VENV/bin/python" - <<'PY' || status=1
import importlib, sys
ok = True
for mod, names in [("dowhy.gcm", ["distribution_change"]), ("pyrca.analyzers.ht", ["HT"]), ("pyrca.analyzers.random_walk", ["RandomWalk"]),
                   ("pyrca.analyzers.epsilon_diagnosis", ["EpsilonDiagnosis"]),
                   ("RCAEval.e2e", ["nsigma"]), ("RCAEval.e2e.baro", ["baro"]), ("RCAEval.e2e.circa", ["circa"])]:
    try:
        m = importlib.import_module(mod)
        for n in names:
            getattr(m, n)
        print(f"setup: import {mod}: ok")
    except Exception as e:  # report every failure, keep going
        ok = False
        print(f"setup: import {mod} FAILED: {type(e).__name__}: {e}", file=sys.stderr)
sys.exit(0 if ok else 1)
PY
echo "setup: venv ready at $VENV (python: $VENV/bin/python)"
exit $status
