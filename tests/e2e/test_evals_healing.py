"""Evals feeding trust and healing, and schedules under failover (issue 17), against a real local
OpenAI-compatible server (evals/tests/fake_openai/server.py) standing in for the agent's model.

1. A flaky model answers a run badly: the paired test against the pinned baseline calls it a
   regression, the agent's trust shows the `eval_pass_rate` drift signal, an `eval_failure`
   incident opens, and the healer's `rerun-eval-suite` playbook re-runs the suite; the re-run
   passes, so the incident is verified and resolved.
2. Two `meshos serve` replicas on one PostgreSQL with a 1-second schedule: only the lease holder
   fires it; when it is killed mid-run, the standby closes the orphaned run, runs its fire again,
   and goes on — no fire is lost, none runs twice, no two runs of the schedule overlap.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

from meshos_e2e import Meshos, MeshosServer, bearer, http_request, wait_for
from test_evals import SUITES, FakeOpenAI, support_scenarios
from test_postgres import pg_url  # noqa: F401  (a fixture)


def live_support_suite(tmp: Path, model_url: str) -> Path:
    """A suites directory holding the shipped support-bot suite aimed at `model_url`."""
    suites = tmp / "suites"
    suites.mkdir(exist_ok=True)
    text = (SUITES / "support-bot.yaml").read_text()
    text = text.replace("dataset: datasets/", f"dataset: {SUITES}/datasets/")
    text, n = re.subn(
        r"target:\n  type: recorded\n  path: recorded/support-bot.jsonl\n",
        f"target:\n  type: openai\n  base_url: {model_url}\n  model: fake-model\n",
        text,
    )
    assert n == 1, "the shipped support-bot suite no longer has the recorded target this test replaces"
    (suites / "support-bot.yaml").write_text(text)
    return suites


def rest(server: MeshosServer, token: str, method: str, path: str, body=None):
    status, _, raw = http_request(method, f"{server.base_url}{path}", body, headers=bearer(token), timeout=120)
    return status, json.loads(raw) if raw else None


def serve_customers(server: MeshosServer, token: str, n: int) -> None:
    """`n` chats the support bot answered in production: the evidence its trust rests on
    besides the evals."""
    events = [
        {"agent_id": "support-bot", "kind": "llm_call", "outcome": "ok", "model": "fake-model", "latency_ms": 300}
        for _ in range(n)
    ]
    status, _, raw = http_request("POST", f"{server.base_url}/v1/events", {"events": events}, bearer(token))
    assert status == 200, raw


def make_model_flaky(model: FakeOpenAI, degraded: dict[str, str], answers: int) -> None:
    status, _, raw = http_request(
        "POST", model.url.removesuffix("/v1") + "/admin/scenarios", {"scenarios": degraded, "for_requests": answers}
    )
    assert status == 200, raw


def test_a_regression_lowers_trust_opens_an_incident_and_the_healer_resolves_it_by_rerunning(
    meshos, make_server, tmp_path
):
    good = support_scenarios()
    model = FakeOpenAI(tmp_path, good)
    try:
        suites = live_support_suite(tmp_path, model.url)
        operator = meshos.token("acme", "operator")
        server = make_server("--healer", "--evals-dir", str(suites))

        serve_customers(server, operator, 300)
        status, base = rest(server, operator, "POST", "/v1/evals/runs", {"suite": "support-bot", "pin_baseline": True})
        assert status == 200 and base["run"]["status"] == "completed" and base["pinned_as_baseline"], base
        status, trust_before = rest(server, operator, "GET", "/v1/agents/support-bot/trust")
        assert status == 200, trust_before
        assert not [s for s in trust_before["drift_signals"] if s["metric"] == "eval_pass_rate"], trust_before

        # The model answers 10 of the next run's 20 questions badly, then recovers (a flaky run).
        degraded = {q: a for q, a in support_scenarios(degrade_from=10).items() if a != good[q]}
        assert len(degraded) == 10, degraded
        make_model_flaky(model, degraded, answers=len(degraded))
        status, worse = rest(server, operator, "POST", "/v1/evals/runs", {"suite": "support-bot"})
        assert status == 200 and worse["regressed"] is True, json.dumps(worse["comparison"])[:3000]
        assert worse["baseline_run_id"] == base["run"]["id"], worse

        # The regression is in the agent's trust ...
        status, trust_after = rest(server, operator, "GET", "/v1/agents/support-bot/trust")
        signals = [s for s in trust_after["drift_signals"] if s["metric"] == "eval_pass_rate"]
        assert signals, trust_after["drift_signals"]
        assert trust_after["components"]["response_integrity"] < trust_before["components"]["response_integrity"], (
            trust_before["components"],
            trust_after["components"],
        )

        # ... and an incident the healer verifies by re-running the suite.
        def eval_incident():
            _, listed = rest(server, operator, "GET", "/v1/incidents")
            found = [i for i in listed["incidents"] if i["kind"] == "eval_failure"]
            return found[0] if found else None

        incident = wait_for(eval_incident, "an eval_failure incident", timeout=60)
        assert incident["subject"] == "agent:support-bot", incident

        def settled():
            _, shown = rest(server, operator, "GET", f"/v1/incidents/{incident['id']}")
            view = shown["incident"]
            return view if view["state"] in ("resolved", "escalated", "failed", "rolled_back") else None

        # The bot keeps serving customers while the healer verifies.
        view = wait_for(settled, "the incident to be resolved", timeout=90, step=lambda i: serve_customers(server, operator, 10))
        states = [t["to"] for t in view["timeline"]]
        assert view["state"] == "resolved", json.dumps(view["timeline"][-3:])[-2500:]
        assert "verifying" in states, states

        _, runs = rest(server, operator, "GET", "/v1/evals/runs?suite=support-bot")
        rerun = [r for r in runs["runs"] if r["run"]["trigger"] == f"healer:{incident['id']}"]
        assert len(rerun) == 1 and rerun[0]["run"]["status"] == "completed", runs
        _, shown = rest(server, operator, "GET", f"/v1/evals/runs/{rerun[0]['run']['id']}")
        assert shown["compared_with"] == base["run"]["id"] and shown["comparison"]["regressed"] is False, shown
        assert meshos.run("audit", "verify").returncode == 0
    finally:
        model.stop()


def support_bot_runs(cli: Meshos) -> list[dict]:
    """The tenant acme's runs of support-bot, newest first."""
    proc = cli.run("evals", "list", "--tenant", "acme", "--suite", "support-bot", "--limit", "500")
    assert proc.returncode == 0, proc.stderr
    return [r["run"] for r in json.loads(proc.stdout)["runs"]]


def runs_in_log(server: MeshosServer) -> set[str]:
    """Run ids this replica's log says it finished."""
    return set(re.findall(r"scheduled eval run finished.*?run=(evr_[0-9a-f]+)", server.log()))


def test_a_one_second_schedule_fires_on_the_leader_only_and_survives_its_death(meshos_bin, tmp_path, pg_url):  # noqa: F811
    # Each answer takes 1.5 s: a run of 20 questions, 8 at a time, lasts about 4.5 s, so the
    # 1-second schedule always has a run going, and the leader is killed well inside one.
    model = FakeOpenAI(tmp_path, support_scenarios(), delay_ms=1500)
    first = second = None
    try:
        suites = live_support_suite(tmp_path, model.url)
        data = tmp_path / "data"
        data.mkdir()
        cli = Meshos(meshos_bin, data, database_url=pg_url)
        args = ["--evals-dir", str(suites)]
        added = cli.run("evals", "schedule", "add", "support-bot", "--cron", "* * * * * *",
                        "--catch-up", "once", "--tenant", "acme", "--evals-dir", str(suites))
        assert added.returncode == 0, added.stderr
        schedule = json.loads(added.stdout)["id"]

        first = MeshosServer(cli, extra_args=args, log_dir=tmp_path)
        first.start()
        wait_for(lambda: "holds the evals-scheduler lease" in first.log(), "the first replica to lead", timeout=30)
        second = MeshosServer(cli, extra_args=args, log_dir=tmp_path)
        second.start()
        wait_for(lambda: len(runs_in_log(first)) >= 3, "three scheduled runs on the leader", timeout=60)
        # The standby never fires while the leader lives (it asks for the lease every 5 s).
        assert "holds the evals-scheduler lease" not in second.log(), second.log_tail()
        assert not runs_in_log(second), second.log_tail()

        # Kill the leader mid-run.
        wait_for(lambda: any(r["status"] == "running" for r in support_bot_runs(cli)), "a run in flight",
                 timeout=30, interval=0.1)
        first.proc.kill()
        first.proc.wait(timeout=10)
        wait_for(lambda: "holds the evals-scheduler lease" in second.log(), "the standby to take the lease", timeout=30)
        wait_for(lambda: len(runs_in_log(second)) >= 3, "three scheduled runs on the new leader", timeout=60)
        second.stop()

        runs = sorted(support_bot_runs(cli), key=lambda r: (r["started_at_ms"], r["id"]))
        assert all(r["trigger"] == f"schedule:{schedule}" for r in runs), runs
        # The run the stopped replica had going stays open for the next leader to close and redo.
        if runs[-1]["status"] == "running":
            runs.pop()
        assert all(r["status"] in ("completed", "failed") for r in runs), [r["status"] for r in runs]
        by_first, by_second = runs_in_log(first), runs_in_log(second)
        # Every completed run was run by exactly one replica; none was run twice.
        completed = {r["id"] for r in runs if r["status"] == "completed"}
        assert completed == by_first | by_second and not by_first & by_second, (completed, by_first, by_second)
        # The run the leader died in was closed as failed by the new leader, and its fire ran again.
        orphans = [r for r in runs if r["status"] == "failed"]
        assert len(orphans) == 1, runs
        assert "closed as failed; its fire runs again" in second.log(), second.log_tail()
        after = [r for r in runs if r["started_at_ms"] >= orphans[0]["finished_at_ms"]]
        assert after and after[0]["status"] == "completed" and after[0]["id"] in by_second, runs
        # No two runs of the schedule overlapped (the orphan ends when the new leader closes it).
        for earlier, later in zip(runs, runs[1:]):
            assert later["started_at_ms"] >= earlier["finished_at_ms"], (earlier, later)
    finally:
        for srv in (first, second):
            if srv is not None:
                srv.stop()
        model.stop()


def test_network_runs_are_bounded_and_a_client_that_hangs_up_cancels_its_run(meshos, make_server, tmp_path):
    import http.client
    import threading

    # Each answer takes 1.5 s, so a run lasts about 4.5 s.
    model = FakeOpenAI(tmp_path, support_scenarios(), delay_ms=1500)
    try:
        suites = live_support_suite(tmp_path, model.url)
        operator = meshos.token("acme", "operator")
        server = make_server("--evals-dir", str(suites))
        body = json.dumps({"suite": "support-bot"})
        headers = {**bearer(operator), "Content-Type": "application/json"}

        # A client that hangs up half-way.
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        conn.request("POST", "/v1/evals/runs", body, headers)
        wait_for(lambda: any(r["status"] == "running" for r in support_bot_runs(meshos)), "the run to start",
                 timeout=20, interval=0.1)
        conn.sock.close()

        def cancelled():
            runs = support_bot_runs(meshos)
            return runs if runs and runs[0]["status"] == "cancelled" else None

        runs = wait_for(cancelled, "the run to be cancelled", timeout=20, interval=0.2)
        assert runs[0]["items"] < 20, runs[0]
        # Cancelled, it is still a finished record on the ledger.
        assert meshos.run("audit", "verify").returncode == 0

        # Four runs at once over the network; a fifth is refused as busy, not queued.
        answers: list[int] = []

        def run_one():
            status, _ = rest(server, operator, "POST", "/v1/evals/runs", {"suite": "support-bot"})
            answers.append(status)

        threads = [threading.Thread(target=run_one) for _ in range(4)]
        for t in threads:
            t.start()
        wait_for(lambda: sum(r["status"] == "running" for r in support_bot_runs(meshos)) == 4, "four runs going",
                 timeout=20, interval=0.1)
        status, err = rest(server, operator, "POST", "/v1/evals/runs", {"suite": "support-bot"})
        assert status == 429 and "retry" in err["error"], (status, err)
        for t in threads:
            t.join(timeout=60)
        assert answers == [200] * 4, answers
    finally:
        model.stop()
