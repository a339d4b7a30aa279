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


def attacker(meshos) -> sqlite3.Connection:
    """A connection with the append-only triggers dropped, as someone with write access would."""
    db = sqlite3.connect(meshos.data_dir / "meshos.db")
    for trigger in ("checkpoints_no_update", "checkpoints_no_delete", "tenant_log_lists_no_update",
                    "tenant_log_lists_no_delete"):
        db.execute(f"DROP TRIGGER IF EXISTS {trigger}")
    return db


async def test_deleted_tenant_is_named(make_server, meshos):
    """Issue 16 item 4 (c): a whole tenant deleted is still named by the signed tenant log list."""
    await populate(make_server, meshos, "tamper-keep")
    await populate(make_server, meshos, "tamper-gone")
    proc = verify(meshos)
    assert proc.returncode == 0, describe(proc)
    assert "signed tenant log lists verified" in proc.stdout, describe(proc)

    db = attacker(meshos)
    for table in ("events", "decisions", "ledger", "ledger_heads", "checkpoints"):
        db.execute(f"DELETE FROM {table} WHERE tenant = 'tamper-gone'")
    db.commit()
    db.close()

    proc = verify(meshos)
    assert proc.returncode == 1, f"audit verify passed a store with a tenant deleted\n{describe(proc)}"
    assert proc.stdout.startswith("FAIL: tenant tamper-gone: signed tenant log list #"), describe(proc)
    assert "the log is gone (deleted)" in proc.stdout, describe(proc)


async def test_log_cut_back_with_its_checkpoints_is_named(make_server, meshos):
    """Issue 16 item 4 (b): truncating a log together with its checkpoints fails."""
    await populate(make_server, meshos, "tamper-cut")
    db = attacker(meshos)
    (size,) = db.execute("SELECT size FROM ledger_heads WHERE tenant = 'tamper-cut'").fetchone()
    keep = size - 2
    db.execute("DELETE FROM events WHERE tenant = 'tamper-cut' AND ledger_index >= ?", (keep,))
    db.execute("DELETE FROM decisions WHERE tenant = 'tamper-cut' AND ledger_index >= ?", (keep,))
    db.execute("DELETE FROM ledger WHERE tenant = 'tamper-cut' AND idx >= ?", (keep,))
    db.execute("UPDATE ledger_heads SET size = ? WHERE tenant = 'tamper-cut'", (keep,))
    db.execute("DELETE FROM checkpoints WHERE tenant = 'tamper-cut' AND size > ?", (keep,))
    db.commit()
    db.close()

    proc = verify(meshos)
    assert proc.returncode == 1, f"audit verify passed a truncated log\n{describe(proc)}"
    assert f"names its log with {size} leaves but the ledger has {keep}: the log was cut back" in proc.stdout, \
        describe(proc)


async def test_a_stdio_session_longer_than_the_unsigned_tail_verifies(meshos, tmp_path):
    """`meshos mcp` signs checkpoints as `serve` does, so a store an agent has worked on over
    stdio for longer than the audit's unsigned-tail allowance verifies — while the session is
    still open, not only after a clean exit."""
    import anyio

    from meshos_e2e import stdio_client_for

    token = meshos.token("stdio-tail", "operator")
    async with stdio_client_for(meshos, token, tmp_path / "mcp.log") as client:
        await call_ok(client, "record_event", {"agent_id": "w", "kind": "tool.call", "outcome": "ok"})
        await anyio.sleep(12)
        await call_ok(client, "record_event", {"agent_id": "w", "kind": "tool.call", "outcome": "ok"})
        await anyio.sleep(2.5)
        proc = verify(meshos)
    assert proc.returncode == 0, describe(proc)
