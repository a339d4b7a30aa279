"""Durability of acknowledged events: `meshos serve` is SIGKILLed under concurrent REST ingest.

The promise (issue 4, and store/src/group_commit.rs): `POST /v1/events` answers only after the
events' rows and their ledger leaves are committed, so an acknowledged event survives the process
being killed at any instant. The test drives the real binary with several keep-alive writers
posting batches of 1..200 events, records every acknowledged (event_id, ledger_index), kills the
server with SIGKILL while requests are in flight, restarts it on the same store, and checks from
the store itself and through `evidence_fetch` that every acknowledged event is there at the index
it was acknowledged with, that the ledger has no gap, and that `meshos audit verify` passes. It
does that three times on one store (kill, restart, more load, kill, ...).

Why this can fail: the kill is sent the moment an acknowledgement reaches a writer, while other
requests are being served. If replies went out before their transaction committed, the batch
just acknowledged (or one queued behind it) would still be uncommitted at the kill and the
presence check names the lost events; an index handed out and then lost shows as a gap or as an
event stored under another index. Demonstrated while writing the test: with group_commit.rs
patched to answer once indexes were reserved but before the rows were inserted, the SQLite run
failed on the second kill (206 of 21,192 acknowledged events missing); the unpatched binary
passes. Its limit: a reply sent after the rows are written but just before `COMMIT` is not
caught, because SIGKILL ends the process, not the OS, and the commit record reaches the page
cache microseconds later; only a power cut exposes that window, which needs a VM to test.

Events posted but not acknowledged (in flight at the kill) may or may not be stored; both are
correct, and the test only requires that whatever is stored is consistent (each stored event
has its leaf, the head counts them all).
"""

from __future__ import annotations

import http.client
import json
import os
import random
import signal
import sqlite3
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from meshos_e2e import Meshos, MeshosServer, call_ok, describe, http_client, verify_evidence
from test_postgres import pg_url, psql_binary  # noqa: F401  (pg_url is a fixture used below)

TENANT = "durable"
WRITERS = 8
ROUNDS = 3
# Load per round before the kill: at least this long and at least this many acknowledged events,
# so every kill lands on a store that is busy committing (not a readiness guess: no assertion
# depends on these durations).
LOAD_SECONDS = 2.0
MIN_ACKED_PER_ROUND = 500
# Requests time out long after any healthy answer; a hang fails the writer instead of the suite.
REQUEST_TIMEOUT_S = 60


@dataclass
class Ack:
    ledger_index: int
    agent_id: str
    tag: str


@dataclass
class Load:
    """The state shared by the writer threads of one round."""

    port: int
    token: str
    round_no: int
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    acked: dict[str, Ack] = field(default_factory=dict)
    in_flight: int = 0
    # Set by a writer the moment an acknowledgement arrives: the kill follows at once, which is
    # when a reply sent ahead of its commit would still have that commit pending.
    just_acked: threading.Event = field(default_factory=threading.Event)
    # Anything but a 200 or a dropped connection: the server refused a well-formed batch.
    failures: list[str] = field(default_factory=list)

    def acked_count(self) -> int:
        with self.lock:
            return len(self.acked)


def batch_body(events: list[dict], shape: int) -> tuple[bytes, str]:
    """The three body shapes `POST /v1/events` accepts, so each is exercised under the kill."""
    if shape == 0:
        return json.dumps({"events": events}).encode(), "application/json"
    if shape == 1:
        return json.dumps(events).encode(), "application/json"
    return "\n".join(json.dumps(e) for e in events).encode(), "application/x-ndjson"


def writer(load: Load, n: int) -> None:
    rng = random.Random(f"{load.round_no}-{n}")
    conn = http.client.HTTPConnection("127.0.0.1", load.port, timeout=REQUEST_TIMEOUT_S)
    seq = 0
    try:
        while not load.stop.is_set():
            size = rng.randint(1, 200)
            events = []
            for _ in range(size):
                seq += 1
                events.append(
                    {
                        "agent_id": f"dur-agent-{rng.randrange(4)}",
                        "kind": rng.choice(["tool.call", "llm.chat"]),
                        "outcome": rng.choice(["ok", "ok", "ok", "error"]),
                        "latency_ms": rng.randint(1, 900),
                        "attributes": {"tag": f"r{load.round_no}-w{n}-{seq}"},
                    }
                )
            # A one-line JSON-lines body is refused (http.rs reads a single line as a whole-body
            # document), so JSON lines carry two events or more.
            body, content_type = batch_body(events, rng.randrange(3 if size > 1 else 2))
            headers = {
                "Authorization": f"Bearer {load.token}",
                "Content-Type": content_type,
            }
            with load.lock:
                load.in_flight += 1
            try:
                conn.request("POST", "/v1/events", body, headers)
                resp = conn.getresponse()
                raw = resp.read()
                if resp.status == 200:
                    load.just_acked.set()
            except (OSError, http.client.HTTPException):
                # The server is gone: this batch was never acknowledged.
                return
            finally:
                with load.lock:
                    load.in_flight -= 1
            if resp.status != 200:
                with load.lock:
                    load.failures.append(f"HTTP {resp.status}: {raw[:300]!r}")
                return
            reply = json.loads(raw)
            recorded = reply.get("events")
            if reply.get("accepted") != size or not isinstance(recorded, list) or len(recorded) != size:
                with load.lock:
                    load.failures.append(f"a batch of {size} got {str(reply)[:300]}")
                return
            with load.lock:
                for sent, got in zip(events, recorded):
                    load.acked[got["event_id"]] = Ack(
                        ledger_index=got["ledger_index"],
                        agent_id=sent["agent_id"],
                        tag=sent["attributes"]["tag"],
                    )
    finally:
        conn.close()


def run_until_killed(server: MeshosServer, load: Load) -> None:
    """Writers post until the server is SIGKILLed in the middle of their requests."""
    threads = [threading.Thread(target=writer, args=(load, n), daemon=True) for n in range(WRITERS)]
    for t in threads:
        t.start()
    started = time.monotonic()
    while time.monotonic() - started < LOAD_SECONDS or load.acked_count() < MIN_ACKED_PER_ROUND:
        server.assert_alive()
        assert not load.failures, f"the server refused batches under load: {load.failures[:3]}"
        assert time.monotonic() - started < 120, (
            f"only {load.acked_count()} events acknowledged in 120 s\n{server.log_tail()}"
        )
        time.sleep(0.05)
    # Kill right after an acknowledgement arrives while other requests are being served: a
    # reply that went out ahead of its commit would leave that commit pending at the kill.
    while True:
        load.just_acked.clear()
        assert load.just_acked.wait(timeout=60), f"no acknowledgement for 60 s\n{server.log_tail()}"
        with load.lock:
            if load.in_flight > 0:
                os.kill(server.proc.pid, signal.SIGKILL)
                break
    server.proc.wait(timeout=30)
    assert server.proc.returncode == -signal.SIGKILL, f"server exit {server.proc.returncode}, expected SIGKILL"
    server.proc = None
    load.stop.set()
    for t in threads:
        t.join(timeout=REQUEST_TIMEOUT_S + 10)
        assert not t.is_alive(), "a writer is still waiting on a killed server"
    assert not load.failures, f"the server refused batches under load: {load.failures[:3]}"


@dataclass
class Stored:
    events: dict[str, tuple[int, str, str]]  # id -> (ledger_index, agent_id, attributes JSON)
    ledger: list[tuple[int, str, str]]  # (idx, record_type, record_id), by idx
    head: int


def stored_in_sqlite(data_dir: Path) -> Stored:
    # Read-only, beside the running server (WAL lets a reader see every committed transaction).
    db = sqlite3.connect(f"file:{data_dir / 'meshos.db'}?mode=ro", uri=True, timeout=30)
    try:
        events = {
            r[0]: (r[1], r[2], r[3])
            for r in db.execute(
                "SELECT id, ledger_index, agent_id, attributes FROM events WHERE tenant = ?", (TENANT,)
            )
        }
        ledger = list(
            db.execute("SELECT idx, record_type, record_id FROM ledger WHERE tenant = ? ORDER BY idx", (TENANT,))
        )
        head = db.execute("SELECT size FROM ledger_heads WHERE tenant = ?", (TENANT,)).fetchone()
    finally:
        db.close()
    return Stored(events=events, ledger=ledger, head=head[0] if head else 0)


def psql_rows(url: str, sql: str) -> list[list[str]]:
    proc = subprocess.run(
        [psql_binary(), "-X", "-q", "-A", "-t", "-F", "\t", "-v", "ON_ERROR_STOP=1", url, "-c", sql],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, f"psql failed\n{describe(proc)}"
    return [line.split("\t") for line in proc.stdout.splitlines() if line]


def stored_in_postgres(url: str) -> Stored:
    events = {
        r[0]: (int(r[1]), r[2], r[3])
        for r in psql_rows(
            url, f"SELECT id, ledger_index, agent_id, attributes FROM events WHERE tenant = '{TENANT}'"
        )
    }
    ledger = [
        (int(r[0]), r[1], r[2])
        for r in psql_rows(url, f"SELECT idx, record_type, record_id FROM ledger WHERE tenant = '{TENANT}' ORDER BY idx")
    ]
    head = psql_rows(url, f"SELECT size FROM ledger_heads WHERE tenant = '{TENANT}'")
    return Stored(events=events, ledger=ledger, head=int(head[0][0]) if head else 0)


def check_store(stored: Stored, acked: dict[str, Ack], kills: int) -> None:
    missing = [eid for eid in acked if eid not in stored.events]
    assert not missing, (
        f"after {kills} SIGKILL(s), {len(missing)} of {len(acked)} acknowledged events are not in the store "
        f"(first: {missing[:5]})"
    )
    moved = [
        (eid, a.ledger_index, stored.events[eid][0]) for eid, a in acked.items() if stored.events[eid][0] != a.ledger_index
    ]
    assert not moved, f"acknowledged events stored under another ledger index (id, acked, stored): {moved[:5]}"
    altered = [
        eid
        for eid, a in acked.items()
        if stored.events[eid][1] != a.agent_id or json.loads(stored.events[eid][2]).get("tag") != a.tag
    ]
    assert not altered, f"acknowledged events stored with other content: {altered[:5]}"

    indexes = [idx for idx, _, _ in stored.ledger]
    assert indexes == list(range(len(indexes))), (
        f"ledger indexes are not gap-free: first gap after {next((i for i, x in enumerate(indexes) if x != i), None)}"
    )
    assert stored.head == len(indexes), f"ledger head says {stored.head} leaves, {len(indexes)} are stored"
    leaf_of = {rid: idx for idx, kind, rid in stored.ledger if kind == "event"}
    assert len(leaf_of) == len(stored.ledger), "the tenant's ledger holds leaves that are not events"
    # Every stored event (acknowledged or caught in flight) has exactly its own leaf.
    unmatched = [eid for eid, (idx, _, _) in stored.events.items() if leaf_of.get(eid) != idx]
    assert not unmatched and len(stored.events) == len(leaf_of), (
        f"{len(stored.events)} events and {len(leaf_of)} event leaves; mismatched: {unmatched[:5]}"
    )


async def check_evidence(server: MeshosServer, token: str, acked: dict[str, Ack], rng: random.Random) -> None:
    """A sample of acknowledged events, fetched through the product with their proofs."""
    sample = rng.sample(sorted(acked), k=min(8, len(acked)))
    async with http_client(server.mcp_url, token) as client:
        for eid in sample:
            ev = await call_ok(client, "evidence_fetch", {"event_id": eid})
            verify_evidence(ev)
            [rec] = ev["records"]
            assert rec["record_id"] == eid and rec["ledger_index"] == acked[eid].ledger_index, rec


def audit_verify(cli: Meshos) -> None:
    proc = cli.run("audit", "verify", timeout=600)
    assert proc.returncode == 0, f"`meshos audit verify` failed on the store a SIGKILL left\n{describe(proc)}"


@pytest.fixture(params=["sqlite", "postgres"])
def store_cli(request, meshos_bin, tmp_path) -> Meshos:
    data = tmp_path / "data"
    data.mkdir()
    if request.param == "postgres":
        return Meshos(meshos_bin, data, database_url=request.getfixturevalue("pg_url"))
    return Meshos(meshos_bin, data)


@pytest.mark.anyio
async def test_acknowledged_events_survive_sigkill_under_load(store_cli: Meshos, tmp_path: Path):
    cli = store_cli
    token = cli.token(TENANT, "operator")
    acked: dict[str, Ack] = {}
    rng = random.Random(4)
    server = MeshosServer(cli, extra_args=["--log", "warn"], log_dir=tmp_path)
    server.start()
    try:
        for round_no in range(1, ROUNDS + 1):
            load = Load(port=server.port, token=token, round_no=round_no)
            run_until_killed(server, load)
            overlap = acked.keys() & load.acked.keys()
            assert not overlap, f"event ids handed out twice: {sorted(overlap)[:5]}"
            acked.update(load.acked)

            # The store exactly as the kill left it (recovered by opening it) verifies.
            audit_verify(cli)

            server = MeshosServer(cli, extra_args=["--log", "warn"], log_dir=tmp_path)
            server.start()
            if cli.database_url:
                stored = stored_in_postgres(cli.database_url)
            else:
                stored = stored_in_sqlite(cli.data_dir)
            check_store(stored, acked, kills=round_no)
            await check_evidence(server, token, load.acked, rng)
    finally:
        server.stop()
    audit_verify(cli)
