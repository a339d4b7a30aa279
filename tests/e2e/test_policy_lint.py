"""`meshos policy lint DIR`: the real binary, the real cvc5 solver (scripts/setup-test-deps.sh
installs it). Exit status and JSON report on the shipped bundle, the planted-conflicts fixture,
a bundle that does not validate, and a missing solver."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from meshos_e2e import REPO_ROOT, child_env

DEFAULT_BUNDLE = REPO_ROOT / "policies" / "default"
PLANTED = REPO_ROOT / "policies" / "fixtures" / "planted-conflicts"

# Every planted finding of the fixture: (kind, subject policy).
PLANTED_FINDINGS = {
    ("never-matches", "planted-never-matches"),
    ("never-matches", "planted-apac-no-teams"),
    ("shadowed-permit", "planted-shadowed-db-drop"),
    ("unreachable-obligation", "planted-unreachable-refund-approval"),
    ("conflicting-obligations", "planted-conflicting-payment-approver"),
    ("redundant", "planted-redundant-large-secrets"),
    ("redundant", "planted-redundant-unknown-region"),
}


def lint(meshos_bin: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(meshos_bin), "policy", "lint", *args],
        cwd=REPO_ROOT,
        env=child_env(env),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_default_bundle_is_clean(meshos_bin):
    done = lint(meshos_bin, "--json", str(DEFAULT_BUNDLE))
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["findings"] == []
    assert report["errors"] == 0 and report["warnings"] == 0
    assert report["queries"] > 0
    assert report["solver"]["version"]


def test_planted_conflicts_are_found_with_exit_1(meshos_bin):
    done = lint(meshos_bin, "--json", str(PLANTED))
    assert done.returncode == 1, done.stdout + done.stderr
    report = json.loads(done.stdout)
    found = {(f["kind"], f["policy_ids"][0]) for f in report["findings"]}
    assert found == PLANTED_FINDINGS
    for f in report["findings"]:
        assert f["severity"] == ("warning" if f["kind"] == "redundant" else "error")
        assert len(f["files"]) == len(f["policy_ids"])
    conflict = next(f for f in report["findings"] if f["kind"] == "conflicting-obligations")
    assert conflict["policy_ids"] == ["planted-conflicting-payment-approver", "payments-need-approval"]
    assert conflict["witness"]["resource"] == 'MeshOS::Operation::"payments.transfer"'
    assert all(s["team"] == "billing" for s in conflict["slices"])


def test_human_output_names_kind_policy_and_file(meshos_bin):
    done = lint(meshos_bin, str(PLANTED))
    assert done.returncode == 1, done.stderr
    assert "error[shadowed-permit]: planted-shadowed-db-drop (global/actions.cedar)" in done.stdout
    assert "related: denied-actions" in done.stdout
    assert "5 error(s), 2 warning(s)" in done.stdout


def test_invalid_bundle_exits_2_with_its_errors(meshos_bin, tmp_path):
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    shutil.copy(DEFAULT_BUNDLE / "schema.cedarschema", bundle / "schema.cedarschema")
    (bundle / "typo.cedar").write_text(
        '@id("typo") forbid (principal, action, resource) when { context.modle == "x" };\n'
    )
    done = lint(meshos_bin, "--json", str(bundle))
    assert done.returncode == 2, done.stdout + done.stderr
    assert "modle" in done.stderr
    assert json.loads(done.stdout)["error"]["kind"] == "bundle"


def test_missing_solver_exits_3_and_says_what_to_install(meshos_bin, tmp_path):
    done = lint(meshos_bin, str(DEFAULT_BUNDLE), env={"CVC5": str(tmp_path / "no-such-cvc5")})
    assert done.returncode == 3, done.stdout + done.stderr
    assert "apt-get install cvc5" in done.stderr
