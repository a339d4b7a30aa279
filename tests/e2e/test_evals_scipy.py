"""The evals crate's paired statistics against SciPy, live (issue 17).

`evals/tests/stats_scipy.rs` checks McNemar, Wilcoxon (with and without continuity correction),
Wilson and Clopper-Pearson against numbers pasted from SciPy; when MESHOS_SCIPY_DUMP is set it
also writes the values it computed. scripts/test.sh sets that variable before `cargo nextest`, and
this test compares the file with SciPy installed in the test venv, so a SciPy upgrade or a change
in our code cannot drift from the pasted numbers unnoticed.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from meshos_e2e import REPO_ROOT


def test_paired_statistics_match_scipy() -> None:
    dump = os.environ.get("MESHOS_SCIPY_DUMP")
    if not dump:
        pytest.skip("MESHOS_SCIPY_DUMP is not set (scripts/test.sh sets it before cargo nextest)")
    assert Path(dump).is_file(), (
        f"{dump} is missing: the Rust test stats_scipy::dump_our_values_for_a_live_scipy_check "
        "writes it during `cargo nextest` when MESHOS_SCIPY_DUMP is set"
    )
    sys.path.insert(0, str(Path(REPO_ROOT) / "evals" / "tests"))
    import scipy_reference

    problems, compared = scipy_reference.mismatches(dump)
    assert not problems, "\n".join(problems)
    assert compared >= 40
