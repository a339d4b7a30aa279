"""Witness cosigning (C2SP tlog-witness, tlog-cosignature): `meshos witness serve` cosigns what
`meshos serve --witness` submits, `audit verify --witness-key` requires it, and a store rolled
back behind the witness's back gets no cosignature (the one rewrite no local check can see)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import sqlite3
import stat
import time

import pytest

from meshos_e2e import (
    WitnessServer,
    bearer,
    call_ok,
    describe,
    free_port,
    http_client,
    http_request,
    verify_cosignature,
    verify_evidence,
)

pytestmark = pytest.mark.anyio

WITNESS_NAME = "witness.test/w1"


def generate_key(meshos, path, name=WITNESS_NAME) -> str:
    proc = meshos.run("witness", "key", "generate", "--name", name, "--key-file", str(path), store=False)
    assert proc.returncode == 0, describe(proc)
    vkey = proc.stdout.strip()
    assert vkey.startswith(f"{name}+") and "\n" not in vkey, describe(proc)
    return vkey


def post_events(server, token, n: int, agent: str = "worker") -> None:
    events = [{"agent_id": agent, "kind": "tool.call", "outcome": "ok"} for _ in range(n)]
    status, _, raw = http_request(
        "POST", f"{server.base_url}/v1/events", json.dumps({"events": events}),
        {**bearer(token), "Content-Type": "application/json"},
    )
    assert status == 200, f"POST /v1/events: {status} {raw[:300]!r}"


def audit(meshos, *args: str):
    return meshos.run("audit", "verify", *args)


def wait_until(predicate, what: str, timeout: float = 30):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(0.3)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")


def audit_passes(meshos, *args: str):
    """A predicate for wait_until: the audit's result when it passes, else False."""
    def check():
        proc = audit(meshos, *args)
        return proc if proc.returncode == 0 else False
    return check


def ledger_size(meshos, tenant: str) -> int:
    db = sqlite3.connect(meshos.data_dir / "meshos.db")
    try:
        (size,) = db.execute("SELECT size FROM ledger_heads WHERE tenant = ?", (tenant,)).fetchone()
        return size
    finally:
        db.close()


def latest_checkpoint_note(meshos, tenant: str) -> str:
    db = sqlite3.connect(meshos.data_dir / "meshos.db")
    try:
        (note,) = db.execute(
            "SELECT note FROM checkpoints WHERE tenant = ? ORDER BY size DESC LIMIT 1", (tenant,)
        ).fetchone()
        return note
    finally:
        db.close()


def sign_note(text: str, name: str, seed: bytes) -> str:
    """A C2SP signed note (Ed25519, type 0x01) made here, not by Mesh OS."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    sk = Ed25519PrivateKey.from_private_bytes(seed)
    pub = sk.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    key_id = hashlib.sha256(name.encode() + b"\n\x01" + pub).digest()[:4]
    sig = base64.b64encode(key_id + sk.sign(text.encode())).decode()
    return f"{text}\n\u2014 {name} {sig}\n"


def ledger_seed(meshos) -> tuple[str, bytes]:
    """The name and seed of the data directory's ledger key (`PRIVATE+KEY+<name>+<id>+<b64>`)."""
    _, _, name, _, key = (meshos.data_dir / "ledger.key").read_text().strip().split("+", 4)
    raw = base64.b64decode(key)
    assert raw[0] == 0x01
    return name, raw[1:]


async def test_checkpoints_are_cosigned_and_audit_verify_requires_the_witness(meshos, make_server, tmp_path):
    key_file = tmp_path / "witness" / "witness.key"
    witness_vkey = generate_key(meshos, key_file)
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    again = meshos.run("witness", "key", "generate", "--name", "x", "--key-file", str(key_file), store=False)
    assert again.returncode != 0, "an existing witness key must never be overwritten"
    shown = meshos.run("witness", "key", "show", "--key-file", str(key_file), store=False)
    assert shown.stdout.strip() == witness_vkey, describe(shown)

    # The log is configured with the witness before the witness runs: signing goes on.
    port = free_port()
    server = make_server("--witness", f"http://127.0.0.1:{port} {witness_vkey}")
    acme, globex = meshos.token("acme", "operator"), meshos.token("globex", "operator")
    post_events(server, acme, 3)
    wait_until(audit_passes(meshos, "--max-unsigned-leaves", "0"), "checkpoints signed while the witness is down")
    wait_until(lambda: "checkpoint not cosigned" in server.log(), "a warning that the witness is unreachable")

    log_vkey = meshos.run("audit", "verifier-key").stdout.strip()
    assert log_vkey.startswith("meshos-ledger+"), log_vkey
    witness = WitnessServer(meshos.binary, key_file.parent, [log_vkey], port=port)
    witness.start()
    try:
        post_events(server, globex, 2)
        strict = ("--witness-key", witness_vkey, "--max-uncosigned-leaves", "0")
        proc = wait_until(audit_passes(meshos, *strict), "every tenant's newest checkpoint cosigned")
        assert "2 tenant ledger(s)" in proc.stdout and "witness cosignatures verified" in proc.stdout, describe(proc)

        # evidence_fetch serves the cosignature, which verifies over the checkpoint it serves.
        async with http_client(server.mcp_url, acme) as client:
            out = await call_ok(client, "evidence_fetch", {"agent_id": "worker", "limit": 3})
        verify_evidence(out)
        cp = out["checkpoint"]
        assert len(cp["cosignatures"]) == 1, cp
        cosigned_at = verify_cosignature(cp["text"], cp["cosignatures"][0], witness_vkey)
        assert abs(cosigned_at - time.time()) < 120, cosigned_at

        status, _, metrics = http_request("GET", f"{server.base_url}/metrics", headers=bearer(acme))
        if status == 200:
            assert b'meshos_witness_submissions_total{witness="witness.test/w1+' in metrics, metrics[-2000:]

        # A second witness key that never cosigned: missing, and named. A short uncosigned tail
        # passes with a warning (as a short unsigned one does); none at all is allowed with 0.
        other = generate_key(meshos, tmp_path / "other.key", "witness.test/other")
        both = ("--witness-key", witness_vkey, "--witness-key", other)
        proc = audit(meshos, *both, "--max-uncosigned-leaves", "0")
        assert proc.returncode == 1 and proc.stdout.startswith("FAIL: tenant "), describe(proc)
        assert "witness.test/other+" in proc.stdout and "lacks the cosignature" in proc.stdout, describe(proc)
        proc = audit(meshos, *both)
        assert proc.returncode == 0 and "WARN: tenant acme:" in proc.stderr, describe(proc)
        assert "not witnessed yet" in proc.stderr, describe(proc)
        proc = audit(meshos, *both, "--witnesses-required", "1", "--max-uncosigned-leaves", "0")
        assert proc.returncode == 0 and not proc.stderr, describe(proc)
        # Asked directly, the witness holds nothing this store contradicts.
        witness_flag = ("--witness", f"http://127.0.0.1:{port} {witness_vkey}")
        proc = audit(meshos, *strict, *witness_flag, "--ask-witnesses")
        assert proc.returncode == 0 and "2 witness views consistent" in proc.stdout, describe(proc)
        bad = audit(meshos, "--witness-key", log_vkey)
        assert bad.returncode == 2 and "witness verifier key" in bad.stderr, describe(bad)

        # A clean stop cosigns the last checkpoint too.
        post_events(server, acme, 4)
        server.stop()
        proc = audit(meshos, *strict)
        assert proc.returncode == 0, describe(proc)
        assert ledger_size(meshos, "acme") == 7
    finally:
        witness.stop()


async def test_a_rolled_back_store_is_refused_by_the_witness_and_fails_the_audit(meshos, make_server, tmp_path):
    key_file = tmp_path / "witness" / "witness.key"
    witness_vkey = generate_key(meshos, key_file)
    port = free_port()
    flag = ("--witness", f"http://127.0.0.1:{port} {witness_vkey}")
    strict = ("--witness-key", witness_vkey, "--max-uncosigned-leaves", "0")

    server = make_server(*flag)
    log_vkey = meshos.run("audit", "verifier-key").stdout.strip()
    witness = WitnessServer(meshos.binary, key_file.parent, [log_vkey], port=port)
    witness.start()
    try:
        token = meshos.token("acme", "operator")
        post_events(server, token, 4)
        wait_until(audit_passes(meshos, *strict), "the first checkpoint cosigned")
        server.stop()
        held = ledger_size(meshos, "acme")

        # A backup of the store as it is now...
        backup = tmp_path / "backup"
        backup.mkdir()
        for f in meshos.data_dir.glob("meshos.db*"):
            shutil.copy2(f, backup / f.name)

        # ... the log goes on and the witness cosigns it ...
        server = make_server(*flag)
        post_events(server, token, 6)
        wait_until(audit_passes(meshos, *strict), "the longer log cosigned")
        server.stop()
        witnessed = ledger_size(meshos, "acme")
        assert witnessed == held + 6

        # ... the witness restarts (its state is on disk) ...
        witness.stop()
        witness.start()

        # ... and the store is rolled back to the backup: locally an honest earlier store.
        for f in meshos.data_dir.glob("meshos.db*"):
            f.unlink()
        for f in backup.iterdir():
            shutil.copy2(f, meshos.data_dir / f.name)
        proc = audit(meshos, *strict)
        assert proc.returncode == 0, f"the rolled-back store should pass every local check\n{describe(proc)}"
        # Only the witness knows better: asked, it holds more than the store.
        proc = audit(meshos, *strict, *flag, "--ask-witnesses")
        assert proc.returncode == 1, describe(proc)
        assert f"the witness has cosigned size {witnessed} but this log's newest checkpoint has size {held}" \
            in proc.stdout and "rolled back" in proc.stdout, describe(proc)

        # The log signs a different history; the witness holds a larger tree: 409, nothing cosigned.
        server = make_server(*flag)
        post_events(server, token, 2, agent="forked")
        wait_until(lambda: "the log was rolled back" in server.log(), "the witness's 409 reported as a rollback")
        # Once the forked log is longer than what the witness holds, its proof fails: 422.
        post_events(server, token, 6, agent="forked")
        wait_until(lambda: "refuses the consistency proof from size" in server.log(), "the witness's 422 reported")
        server.stop()

        proc = audit(meshos, *strict)
        assert proc.returncode == 1, f"audit verify passed a store the witness refused\n{describe(proc)}"
        assert "not covered by a checkpoint cosigned" in proc.stdout, describe(proc)
        assert f"the newest cosigned checkpoint has size {held}" in proc.stdout, describe(proc)
        assert "witness.test/w1+" in proc.stdout, describe(proc)
        # Without the witness key the rollback is invisible, which is why the witness exists.
        assert audit(meshos, "--max-unsigned-leaves", "0").returncode == 0

        # What the witness answers, asked directly.
        forked = latest_checkpoint_note(meshos, "acme")
        size = ledger_size(meshos, "acme")
        assert size == held + 8
        status, headers, body = witness.add_checkpoint(f"old {held}\n\n{forked}")
        assert (status, body) == (409, f"{witnessed}\n".encode()), (status, body)
        assert headers.get("content-type") == "text/x.tlog.size", headers
        bogus = "".join(base64.b64encode(bytes([i]) * 32).decode() + "\n" for i in range(3))
        status, _, body = witness.add_checkpoint(f"old {witnessed}\n{bogus}\n{forked}")
        assert status == 422, (status, body)
        stranger = sign_note(forked.split("\n\n")[0] + "\n", "meshos-ledger", bytes(range(32)))
        status, _, body = witness.add_checkpoint(f"old {witnessed}\n\n{stranger}")
        assert status == 403, (status, body)
        name, seed = ledger_seed(meshos)
        root = base64.b64encode(hashlib.sha256(b"").digest()).decode()
        elsewhere = sign_note(f"other.example/log\n0\n{root}\n", name, seed)
        status, _, body = witness.add_checkpoint(f"old 0\n\n{elsewhere}")
        assert status == 404, (status, body)
        assert witness.add_checkpoint("old 01\n\n")[0] == 400
        assert witness.add_checkpoint(b"old 0\n\n" + b"x" * (70 * 1024))[0] == 413
        # Still holding what it cosigned: the honest continuation is all it would accept.
        status, _, body = witness.add_checkpoint(f"old 0\n\n{forked}")
        assert (status, body) == (409, f"{witnessed}\n".encode())
        assert "contradicts what this witness cosigned" in witness.log(), witness.log()[-2000:]
    finally:
        witness.stop()
