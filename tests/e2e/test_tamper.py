"""`meshos audit verify` re-derives every leaf and names the first record that does not match."""

import sqlite3

import pytest

from meshos_e2e import call_ok, describe, http_client

pytestmark = pytest.mark.anyio


async def populate(make_server, meshos, tenant: str) -> tuple[list[str], list[str]]:
    token = meshos.token(tenant, "operator")
    server = make_server()
    events, decisions = [], []
    async with http_client(server.mcp_url, token) as client:
        for i in range(3):
            ev = await call_ok(client, "record_event", {"agent_id": "worker-1", "kind": f"tool.call.{i}", "outcome": "ok"})
            events.append(ev["event_id"])
            d = await call_ok(client, "policy_check", {"agent_id": "worker-1", "action": "shell.exec"})
            decisions.append(d["decision_id"])
    server.stop()
    return events, decisions


def flip_one_byte(value: str) -> str:
    last = value[-1]
    return value[:-1] + ("X" if last != "X" else "Y")


def verify(meshos):
    return meshos.run("audit", "verify")


async def test_untouched_store_verifies(make_server, meshos):
    await populate(make_server, meshos, "tamper-none")
    proc = verify(meshos)
    assert proc.returncode == 0, f"audit verify failed on an untouched store\n{describe(proc)}"


async def test_changed_event_is_named(make_server, meshos):
    events, _ = await populate(make_server, meshos, "tamper-event")
    proc = verify(meshos)
    assert proc.returncode == 0, describe(proc)

    victim = events[1]
    db = sqlite3.connect(meshos.data_dir / "meshos.db")
    (kind,) = db.execute("SELECT kind FROM events WHERE id = ?", (victim,)).fetchone()
    db.execute("UPDATE events SET kind = ? WHERE id = ?", (flip_one_byte(kind), victim))
    db.commit()
    db.close()

    proc = verify(meshos)
    assert proc.returncode != 0, f"audit verify passed a tampered store\n{describe(proc)}"
    assert victim in proc.stdout + proc.stderr, f"audit verify does not name event {victim}\n{describe(proc)}"


async def test_changed_decision_is_named(make_server, meshos):
    _, decisions = await populate(make_server, meshos, "tamper-decision")
    victim = decisions[0]
    db = sqlite3.connect(meshos.data_dir / "meshos.db")
    (action,) = db.execute("SELECT action FROM decisions WHERE id = ?", (victim,)).fetchone()
    db.execute("UPDATE decisions SET action = ? WHERE id = ?", (flip_one_byte(action), victim))
    db.commit()
    db.close()

    proc = verify(meshos)
    assert proc.returncode != 0, f"audit verify passed a tampered store\n{describe(proc)}"
    assert victim in proc.stdout + proc.stderr, f"audit verify does not name decision {victim}\n{describe(proc)}"


async def test_changed_verdict_is_named(make_server, meshos):
    """Turning a deny into an allow after the fact is exactly what the ledger must catch."""
    _, decisions = await populate(make_server, meshos, "tamper-verdict")
    victim = decisions[2]
    db = sqlite3.connect(meshos.data_dir / "meshos.db")
    db.execute("UPDATE decisions SET decision = 'allow' WHERE id = ?", (victim,))
    db.commit()
    db.close()

    proc = verify(meshos)
    assert proc.returncode != 0, f"audit verify passed a tampered store\n{describe(proc)}"
    assert victim in proc.stdout + proc.stderr, f"audit verify does not name decision {victim}\n{describe(proc)}"
