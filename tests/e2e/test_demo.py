"""`meshos demo`: a 24-agent fleet against a `meshos serve --healer` it starts itself, through
REST. Two faults: a tool outage (healed with no human) and a PII leak that only an operator-
approved quarantine contains (the demo approves over REST, as an operator)."""

from __future__ import annotations

import json


def test_demo_heals_a_tool_outage_alone_and_a_leak_with_an_approval(meshos):
    proc = meshos.run(
        "demo", "--seed", "7", "--faults", "tool_outage,pii_leak", "--warmup-secs", "25",
        "--timeout-secs", "100", "--json", timeout=400, store=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout)
    assert report["agents"] == 24
    faults = {f["fault"]: f for f in report["faults"]}
    assert set(faults) == {"tool_outage", "pii_leak"}, report
    outage = faults["tool_outage"]
    assert outage["state"] == "resolved" and outage["self_resolved"], outage
    assert outage["diagnosis_correct"] and outage["root_cause"] == "tool:search", outage
    assert outage["playbooks"][0] == "revoke-failing-tool", outage
    leak = faults["pii_leak"]
    assert leak["diagnosis_correct"], leak
    # The demo's leak never stops on its own: the approved quarantine contains it, and since a
    # paused agent is no evidence, canaries keep showing the leak is still there while the
    # quarantine holds; it is never "resolved" on silence.
    assert leak["state"] in ("verifying", "escalated") and leak["human_steps"] >= 1, leak
    assert "quarantine-agent" in leak["playbooks"], leak
    assert report["false_incidents"] == [], report
    # The fleet reacted to the server: agents left the revoked tool.
    assert sum(s["tool_switches"] for s in report["fleet"].values()) >= 1
    assert "operator approved quarantine-agent" in proc.stderr


def test_demo_rejects_bad_arguments(meshos):
    few = meshos.run("demo", "--agents", "5", store=False)
    assert few.returncode != 0 and "at least 20" in few.stderr, few.stderr
    bogus = meshos.run("demo", "--faults", "tool_outage,meteor", store=False)
    assert bogus.returncode != 0 and "meteor" in bogus.stderr and "pii_leak" in bogus.stderr, bogus.stderr
