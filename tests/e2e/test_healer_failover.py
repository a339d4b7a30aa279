"""One healer per deployment: two `meshos serve --healer` replicas on one PostgreSQL database.

The first replica takes the leader lease (a PostgreSQL advisory lock) and runs the healing loop;
the second serves requests and waits. A PII leak sent through the *standby* is healed by the
leader (they share the database). The leader is killed with SIGKILL while the incident is being
verified: its connection dies, the lock frees itself, the standby takes over and finishes the
same incident without applying its action again, then heals a second fault on its own.

Needs MESHOS_TEST_DATABASE_URL (scripts/test.sh starts PostgreSQL).
"""

from __future__ import annotations

import json
import time

from meshos_e2e import Meshos, MeshosServer, bearer, http_request, wait_for
from test_postgres import pg_url  # noqa: F401  (a fixture)

TENANT = "heal-ha"


def healthz(server: MeshosServer) -> dict:
    status, _, raw = http_request("GET", f"{server.base_url}/healthz", None, {})
    assert status == 200, raw
    return json.loads(raw)


def traffic(server: MeshosServer, token: str, leaky: str | None, i: int) -> None:
    """One second of a ten-agent fleet; `leaky` leaks PII in 70 % of its calls."""
    events = []
    for a in range(10):
        agent = f"agent-{a}"
        for k in range(3):
            violation = agent == leaky and ((i * 3 + k) * 37 % 100) / 100 < 0.7
            events.append({"agent_id": agent, "kind": "llm_call",
                           "outcome": "violation" if violation else "ok",
                           "model": "gpt-4o-mini", "latency_ms": 200, "cost_usd": 0.001})
    status, _, raw = http_request(
        "POST", f"{server.base_url}/v1/events", json.dumps({"events": events}),
        {**bearer(token), "Content-Type": "application/json"},
    )
    assert status == 200, raw


def incidents(cli: Meshos) -> list[dict]:
    proc = cli.run("incidents", "list", "--tenant", TENANT)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def show(cli: Meshos, incident_id: str) -> dict:
    proc = cli.run("incidents", "show", "--tenant", TENANT, incident_id)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def lease_taken(server: MeshosServer) -> int:
    return server.log().count("leader lease taken")


def test_one_leader_heals_and_a_standby_takes_over_when_it_dies(meshos_bin, tmp_path, pg_url):  # noqa: F811
    data = tmp_path / "data"
    data.mkdir()
    cli = Meshos(meshos_bin, data, database_url=pg_url)
    token = cli.token(TENANT, "operator")
    args = ["--healer", "--sla-threshold", "5"]
    first = MeshosServer(cli, extra_args=args, log_dir=tmp_path)
    second = MeshosServer(cli, extra_args=args, log_dir=tmp_path)
    first.start()
    try:
        wait_for(lambda: healthz(first)["healer_leader"], "the first replica to lead", timeout=30)
        second.start()
        # The standby competes for the lease every 5 s and never gets it while the leader lives.
        time.sleep(7)
        assert healthz(first)["healer_leader"] is True
        assert healthz(second)["healer_leader"] is False
        assert lease_taken(second) == 0, second.log_tail()

        # Clean traffic, then agent-3 leaks, all through the standby.
        for i in range(5):
            traffic(second, token, None, i)
            time.sleep(0.2)
        opened = wait_for(lambda: incidents(cli), "an incident", timeout=60,
                          step=lambda i: traffic(second, token, "agent-3", 100 + i))
        assert len(opened) == 1, opened
        inc = opened[0]
        assert inc["subject"] == "agent:agent-3", inc

        def verifying():
            view = show(cli, inc["id"])
            return view if view["state"] in ("verifying", "resolved") else None

        view = wait_for(verifying, "the redaction to be applied", timeout=30)
        assert view["state"] == "verifying", view["timeline"]

        # The leader dies mid-verification; the leak has stopped.
        first.proc.kill()
        first.proc.wait(timeout=10)
        killed_at = time.monotonic()
        wait_for(lambda: healthz(second)["healer_leader"], "the standby to take the lease",
                 timeout=30, step=lambda i: traffic(second, token, None, 200 + i))
        takeover_s = time.monotonic() - killed_at
        assert lease_taken(second) == 1, second.log_tail()

        def resolved(incident_id):
            def check():
                v = show(cli, incident_id)
                assert v["state"] not in ("escalated", "rolled_back"), v["timeline"]
                return v if v["state"] == "resolved" else None
            return check

        done = wait_for(resolved(inc["id"]), "the new leader to finish the incident", timeout=60,
                        step=lambda i: traffic(second, token, None, 300 + i))
        states = [t["to"] for t in done["timeline"]]
        # Each step happened once: the new leader resumed at verification and applied nothing.
        assert states == ["open", "diagnosed", "planned", "executing", "verifying", "resolved"], states
        applied = done["timeline"][4]["inputs"]["steps"]
        assert len(applied) == 1 and applied[0]["result"]["newly_set"] is True, applied

        # A second fault after the failover is the new leader's alone.
        opened = wait_for(lambda: [i for i in incidents(cli) if i["id"] != inc["id"]], "a second incident",
                          timeout=60, step=lambda i: traffic(second, token, "agent-6", 400 + i))
        assert opened[0]["subject"] == "agent:agent-6", opened
        wait_for(resolved(opened[0]["id"]), "the second incident to resolve", timeout=60,
                 step=lambda i: traffic(second, token, None, 500 + i))
        assert len(incidents(cli)) == 2
        print(f"failover: the standby led {takeover_s:.1f} s after SIGKILL")
    finally:
        first.stop()
        second.stop()
    audit = cli.run("audit", "verify", timeout=300)
    assert audit.returncode == 0, audit.stderr
