"""`meshos evals` (issue 17): a shipped suite run against a real local OpenAI-compatible server,
a regression against the pinned baseline caught by the paired test (and the exit code for CI),
and a cron schedule fired by `meshos serve`."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from meshos_e2e import REPO_ROOT, Meshos, http_request

FAKE_SERVER = REPO_ROOT / "evals/tests/fake_openai/server.py"
SUITES = REPO_ROOT / "evals/suites"


def support_scenarios(degrade_from: int | None = None) -> dict[str, str]:
    """The support suite's questions mapped to the recorded answers (or, from item
    `degrade_from` on, to an answer that states nothing)."""
    questions = [json.loads(l) for l in (SUITES / "datasets/support-bot.jsonl").read_text().splitlines() if l.strip()]
    answers = {
        r["id"]: r["output"]["text"]
        for r in (json.loads(l) for l in (SUITES / "recorded/support-bot.jsonl").read_text().splitlines() if l.strip())
    }
    out = {}
    for i, q in enumerate(questions):
        good = answers[q["id"]]
        out[q["question"]] = "Sorry, I cannot help with that." if degrade_from is not None and i >= degrade_from else good
    return out


class FakeOpenAI:
    """evals/tests/fake_openai/server.py as a child process."""

    def __init__(self, tmp: Path, scenarios: dict[str, str], delay_ms: int = 0) -> None:
        path = tmp / f"scenarios-{time.monotonic_ns()}.json"
        path.write_text(json.dumps(scenarios))
        self.proc = subprocess.Popen(
            [sys.executable, str(FAKE_SERVER), "--port", "0", "--scenarios", str(path), "--delay-ms", str(delay_ms)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert "listening on" in line, line
        self.url = f"http://127.0.0.1:{int(line.split()[-1])}/v1"

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


def run_suite(meshos: Meshos, url: str, *extra: str) -> subprocess.CompletedProcess:
    return meshos.run(
        "evals", "run", "support-bot", "--tenant", "acme", "--target-url", url, "--model", "fake-model", *extra
    )


def test_a_shipped_suite_against_a_local_server_prints_a_report_and_a_regression_fails_ci(meshos: Meshos, tmp_path: Path):
    good = FakeOpenAI(tmp_path, support_scenarios())
    try:
        first = run_suite(meshos, good.url, "--pin-baseline")
    finally:
        good.stop()
    assert first.returncode == 0, first.stderr[-2000:]
    assert "suite support-bot" in first.stdout and "(fake-model)" in first.stdout, first.stdout
    assert "states-the-fact" in first.stdout and "items passing every scorer" in first.stdout, first.stdout

    worse = FakeOpenAI(tmp_path, support_scenarios(degrade_from=4))
    try:
        second = run_suite(meshos, worse.url, "--fail-on-regression", "--json")
    finally:
        worse.stop()
    assert second.returncode == 1, (second.returncode, second.stdout[-1500:], second.stderr[-1500:])
    outcome = json.loads(second.stdout)
    assert outcome["comparison"]["regressed"] is True, outcome["comparison"]
    assert outcome["baseline_run_id"], outcome

    listed = meshos.run("evals", "list", "--tenant", "acme")
    assert listed.returncode == 0, listed.stderr
    runs = json.loads(listed.stdout)["runs"]
    assert len(runs) == 2 and all(r["ledger_index"] is not None for r in runs), runs
    compared = meshos.run(
        "evals", "compare", runs[1]["run"]["id"], runs[0]["run"]["id"], "--tenant", "acme", "--fail-on-regression"
    )
    assert compared.returncode == 1, compared.stdout + compared.stderr
    # The run and its items are evidence like any other record.
    audit = meshos.run("audit", "verify")
    assert audit.returncode == 0, audit.stdout + audit.stderr


def test_a_bad_suite_file_is_refused_naming_file_line_and_field(meshos: Meshos, tmp_path: Path):
    suite = tmp_path / "broken.yaml"
    text = (SUITES / "support-bot.yaml").read_text().replace("pattern: '(?i)", "pattern: '(?i)(", 1)
    suite.write_text(text.replace("dataset: datasets/", f"dataset: {SUITES}/datasets/").replace(
        "path: recorded/", f"path: {SUITES}/recorded/"))
    out = meshos.run("evals", "run", str(suite), "--tenant", "acme")
    assert out.returncode != 0
    assert "broken.yaml:" in out.stderr and "pattern" in out.stderr, out.stderr[-1500:]


def test_a_schedule_fires_from_serve(meshos: Meshos, make_server):
    added = meshos.run(
        "evals", "schedule", "add", "json-extraction", "--cron", "*/2 * * * * *", "--tenant", "acme"
    )
    assert added.returncode == 0, added.stderr
    schedule = json.loads(added.stdout)
    make_server()
    deadline = time.monotonic() + 30
    runs: list = []
    while time.monotonic() < deadline:
        listed = meshos.run("evals", "list", "--tenant", "acme", "--suite", "json-extraction")
        runs = [r for r in json.loads(listed.stdout)["runs"] if r["run"]["status"] == "completed"]
        if runs:
            break
        time.sleep(0.5)
    assert runs, "no scheduled run completed within 30 s"
    assert runs[0]["run"]["trigger"] == f"schedule:{schedule['id']}"
    removed = meshos.run("evals", "schedule", "remove", schedule["id"], "--tenant", "acme")
    assert removed.returncode == 0, removed.stderr


def test_a_cached_rerun_asks_the_target_nothing(meshos: Meshos, tmp_path: Path):
    model = FakeOpenAI(tmp_path, support_scenarios())

    def chat_requests() -> int:
        status, _, raw = http_request("GET", model.url.removesuffix("/v1") + "/stats")
        assert status == 200, raw
        return json.loads(raw)["chat_requests"]

    try:
        first = run_suite(meshos, model.url, "--cache")
        assert first.returncode == 0, first.stderr[-2000:]
        assert "0 answers from the cache, 20 from the target" in first.stdout, first.stdout
        second = run_suite(meshos, model.url, "--cache")
        assert second.returncode == 0, second.stderr[-2000:]
        assert "20 answers from the cache, 0 from the target" in second.stdout, second.stdout
        assert chat_requests() == 20
        # Without --cache the target is asked again.
        third = run_suite(meshos, model.url)
        assert third.returncode == 0 and "from the cache" not in third.stdout, third.stdout
        assert chat_requests() == 40
    finally:
        model.stop()
