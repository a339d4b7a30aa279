"""Helpers for the end-to-end suite: run the real binary, talk to it with real MCP clients.

Nothing here mocks Mesh OS: every call goes to a `meshos` process over stdio or HTTP.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, AsyncIterator

import anyio
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

REPO_ROOT = Path(__file__).resolve().parents[2]

FIVE_TOOLS = {"policy_check", "trust_score", "evidence_fetch", "carbon_route", "record_event"}
# Operator tools added with the policy engine (issue 3): answering require_approval decisions
# and re-identifying pseudonyms.
OPERATOR_TOOLS = {"approval_decide", "approvals_pending", "pseudonym_reveal"}
# Incident tools added with the healing runtime (issue 6).
INCIDENT_TOOLS = {"incident_list", "incident_show", "incident_approve", "incident_deny", "incident_release"}
# Eval tools added with evals on cron (issue 17).
EVAL_TOOLS = {"eval_run", "eval_results"}
ALL_TOOLS = FIVE_TOOLS | OPERATOR_TOOLS | INCIDENT_TOOLS | EVAL_TOOLS
VERDICTS = {"allow", "deny", "redact", "require_approval"}

# How long one MCP session (connect + all calls of a test) may take before the test fails.
SESSION_TIMEOUT_S = 120
CALL_TIMEOUT_S = 60


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for a meshos process: ours without any MESHOS_* setting, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MESHOS_")}
    env.setdefault("RUST_BACKTRACE", "1")
    if extra:
        env.update(extra)
    return env


def inspector_path() -> Path:
    if os.environ.get("MESHOS_INSPECTOR"):
        return Path(os.environ["MESHOS_INSPECTOR"])
    node_dir = os.environ.get("MESHOS_NODE_DIR", str(Path.home() / ".cache" / "meshos-node"))
    return Path(node_dir) / "node_modules" / ".bin" / "mcp-inspector"


def describe(proc: subprocess.CompletedProcess) -> str:
    return (
        f"command: {' '.join(map(str, proc.args))}\nexit: {proc.returncode}\n"
        f"--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}"
    )


class Meshos:
    """The `meshos` CLI bound to one store (a data dir, optionally a PostgreSQL URL)."""

    def __init__(self, binary: Path, data_dir: Path, database_url: str | None = None) -> None:
        self.binary = Path(binary)
        self.data_dir = Path(data_dir)
        self.database_url = database_url

    def store_args(self) -> list[str]:
        args = ["--data-dir", str(self.data_dir)]
        if self.database_url:
            args += ["--database-url", self.database_url]
        return args

    def run(
        self, *args: str, env: dict[str, str] | None = None, timeout: float = 120, store: bool = True
    ) -> subprocess.CompletedProcess:
        cmd = [str(self.binary), *args, *(self.store_args() if store else [])]
        return subprocess.run(
            cmd,
            cwd=REPO_ROOT,
            env=child_env(env),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def token(self, tenant: str, role: str, agent: str | None = None) -> str:
        args = ["token", "create", "--tenant", tenant, "--role", role]
        if agent:
            args += ["--agent", agent]
        proc = self.run(*args)
        assert proc.returncode == 0, f"`meshos token create` failed\n{describe(proc)}"
        lines = proc.stdout.splitlines()
        assert len(lines) == 1 and lines[0].strip(), (
            f"`meshos token create` must print the token alone on stdout\n{describe(proc)}"
        )
        token = lines[0].strip()
        assert " " not in token, f"token contains a space: {token!r}"
        return token

    def stdio_params(self, token: str | None, extra_env: dict[str, str] | None = None) -> StdioServerParameters:
        env = child_env(extra_env)
        if token is not None:
            env["MESHOS_TOKEN"] = token
        return StdioServerParameters(
            command=str(self.binary), args=["mcp", *self.store_args()], env=env, cwd=str(REPO_ROOT)
        )


class MeshosServer:
    """`meshos serve --bind 127.0.0.1:<free port>` as a child process."""

    def __init__(
        self,
        meshos: Meshos,
        extra_args: list[str] | None = None,
        env: dict[str, str] | None = None,
        log_dir: Path | None = None,
    ) -> None:
        self.meshos = meshos
        self.extra_args = extra_args or []
        self.env = env or {}
        self.port = free_port()
        self.log_path = Path(log_dir or meshos.data_dir.parent) / f"serve-{self.port}.log"
        self.proc: subprocess.Popen | None = None
        self.exit_code: int | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def mcp_url(self) -> str:
        return f"{self.base_url}/mcp"

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, n: int = 60) -> str:
        text = re.sub(r"\x1b\[[0-9;]*m", "", self.log())  # drop terminal colours
        return "\n".join(text.splitlines()[-n:])

    def start(self, timeout: float = 60) -> None:
        cmd = [
            str(self.meshos.binary),
            "serve",
            "--bind",
            f"127.0.0.1:{self.port}",
            *self.meshos.store_args(),
            *self.extra_args,
        ]
        log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            cmd,
            cwd=REPO_ROOT,
            env=child_env(self.env),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"`{' '.join(cmd)}` exited with {self.proc.returncode} before /healthz answered\n"
                    f"--- server log ---\n{self.log_tail()}"
                )
            try:
                status, _, _ = http_request("GET", f"{self.base_url}/healthz", timeout=2)
                if status == 200:
                    return
                last = f"status {status}"
            except OSError as e:
                last = str(e)
            time.sleep(0.1)
        self.stop()
        raise AssertionError(
            f"`{' '.join(cmd)}`: /healthz did not answer 200 within {timeout}s (last: {last})\n"
            f"--- server log ---\n{self.log_tail()}"
        )

    def stop(self, timeout: float = 15) -> int | None:
        """SIGTERM, then SIGKILL after `timeout`. Returns the exit code."""
        if self.proc is None:
            return self.exit_code
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.exit_code = self.proc.returncode
        self.proc = None
        return self.exit_code

    def assert_alive(self) -> None:
        assert self.proc is not None and self.proc.poll() is None, (
            f"the server died (exit {None if self.proc is None else self.proc.returncode})\n"
            f"--- server log ---\n{self.log_tail()}"
        )


class WitnessServer:
    """`meshos witness serve --bind 127.0.0.1:<port>` as a child process, with its own data
    directory (key file and state), trusting the given log verifier keys."""

    def __init__(self, binary: Path, data_dir: Path, log_keys: list[str], port: int | None = None) -> None:
        self.binary = Path(binary)
        self.data_dir = Path(data_dir)
        self.log_keys = log_keys
        self.port = port or free_port()
        self.log_path = self.data_dir.parent / f"witness-{self.port}.log"
        self.proc: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        try:
            return re.sub(r"\x1b\[[0-9;]*m", "", self.log_path.read_text(errors="replace"))
        except FileNotFoundError:
            return ""

    def start(self, timeout: float = 30) -> None:
        cmd = [str(self.binary), "witness", "serve", "--bind", f"127.0.0.1:{self.port}",
               "--data-dir", str(self.data_dir)]
        for key in self.log_keys:
            cmd += ["--log-key", key]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(cmd, cwd=REPO_ROOT, env=child_env(), stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"`{' '.join(cmd)}` exited with {self.proc.returncode}\n{self.log()[-3000:]}")
            try:
                if http_request("GET", f"{self.base_url}/healthz", timeout=2)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise AssertionError(f"the witness did not answer /healthz within {timeout}s\n{self.log()[-3000:]}")

    def stop(self, timeout: float = 15) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None

    def add_checkpoint(self, body: str | bytes) -> tuple[int, dict[str, str], bytes]:
        return http_request("POST", f"{self.base_url}/add-checkpoint", body)


def verify_cosignature(note: str, line: str, vkey: str) -> int:
    """Check a C2SP tlog-cosignature/v1 line (`— <name> base64(key id || u64 time || Ed25519
    signature)`) over the text of a signed checkpoint note with a `name+hexid+base64(0x04||key)`
    witness key, independently of Mesh OS. Returns the cosignature's timestamp."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    name, key_id_hex, key_b64 = vkey.split("+", 2)
    key = base64.b64decode(key_b64, validate=True)
    assert len(key) == 33 and key[0] == 0x04, f"witness key {vkey!r} is not an Ed25519 cosignature/v1 (0x04) key"
    key_id = hashlib.sha256(name.encode() + b"\n" + key).digest()[:4]
    assert key_id.hex() == key_id_hex.lower(), f"witness key id {key_id_hex} does not match its key"
    assert line.startswith(f"\u2014 {name} "), f"cosignature line {line!r} is not by {name}"
    raw = base64.b64decode(line.rsplit(" ", 1)[1], validate=True)
    assert len(raw) == 4 + 8 + 64 and raw[:4] == key_id, f"cosignature line {line!r}: {len(raw)} bytes, key id {raw[:4].hex()}"
    timestamp = int.from_bytes(raw[4:12], "big")
    text = note.rsplit("\n\n", 1)[0] + "\n"
    message = f"cosignature/v1\ntime {timestamp}\n".encode() + text.encode()
    Ed25519PublicKey.from_public_bytes(key[1:]).verify(raw[12:], message)
    return timestamp


# --- plain HTTP -----------------------------------------------------------------------------------


def http_request(
    method: str,
    url: str,
    body: bytes | str | dict | list | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 30,
) -> tuple[int, dict[str, str], bytes]:
    """One HTTP request with urllib; returns (status, headers, body) for any status."""
    data: bytes | None
    hdrs = dict(headers or {})
    if isinstance(body, (dict, list)):
        data = json.dumps(body).encode()
        hdrs.setdefault("Content-Type", "application/json")
    elif isinstance(body, str):
        data = body.encode()
    else:
        data = body
    req = urllib.request.Request(url, data=data, headers=hdrs, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


def wait_for(predicate, what: str, timeout: float = 60, step=None, interval: float = 1.0):
    """Calls `step(i)` (if given) then `predicate()` every `interval` seconds until the predicate
    returns something truthy, which is returned; fails the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    i = 0
    while time.monotonic() < deadline:
        if step:
            step(i)
        i += 1
        got = predicate()
        if got:
            return got
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# --- MCP clients ----------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def http_client(url: str, token: str | None) -> AsyncIterator[Client]:
    """The official SDK's streamable HTTP client, with a bearer token."""
    headers = bearer(token) if token else {}
    try:
        with anyio.fail_after(SESSION_TIMEOUT_S):
            async with create_mcp_http_client(headers=headers) as hc:
                async with Client(
                    streamable_http_client(url, http_client=hc), read_timeout_seconds=CALL_TIMEOUT_S
                ) as client:
                    yield client
    except BaseExceptionGroup as group:
        raise unwrap(group) from None


@contextlib.asynccontextmanager
async def stdio_client_for(meshos: Meshos, token: str | None, log_path: Path) -> AsyncIterator[Client]:
    """The official SDK's stdio client, spawning `meshos mcp` with MESHOS_TOKEN."""
    params = meshos.stdio_params(token)
    try:
        with anyio.fail_after(SESSION_TIMEOUT_S), open(log_path, "a") as errlog:
            async with Client(stdio_client(params, errlog=errlog), read_timeout_seconds=CALL_TIMEOUT_S) as client:
                yield client
    except BaseExceptionGroup as group:
        error = unwrap(group)
        if not isinstance(error, AssertionError):
            log = Path(log_path).read_text(errors="replace")[-3000:] if Path(log_path).exists() else ""
            raise AssertionError(f"stdio session failed: {error!r}\n--- meshos mcp stderr ---\n{log}") from error
        raise error from None
    except Exception as error:
        if isinstance(error, AssertionError):
            raise
        log = Path(log_path).read_text(errors="replace")[-3000:] if Path(log_path).exists() else ""
        raise AssertionError(f"stdio session failed: {error!r}\n--- meshos mcp stderr ---\n{log}") from error


def unwrap(group: BaseException) -> BaseException:
    """The single leaf of a (nested) exception group, so a failing assertion reads plainly."""
    while isinstance(group, BaseExceptionGroup) and len(group.exceptions) == 1:
        group = group.exceptions[0]
    return group


def result_text(result: Any) -> str:
    parts = []
    for block in result.content or []:
        text = getattr(block, "text", None)
        if text is not None:
            parts.append(text)
    return "\n".join(parts)


def structured(result: Any, what: str = "") -> dict:
    """The structured content of a successful tool result (fails the test otherwise)."""
    assert not result.is_error, f"{what}: expected a result, got isError: {result_text(result)}"
    sc = result.structured_content
    assert isinstance(sc, dict), f"{what}: structuredContent missing or not an object: {sc!r}; text: {result_text(result)}"
    return sc


def tool_error(result: Any, what: str = "") -> str:
    """The message of a tool error result (fails the test if the call succeeded)."""
    assert result.is_error, (
        f"{what}: expected isError: true, got a result: "
        f"{json.dumps(result.structured_content) if result.structured_content is not None else result_text(result)}"
    )
    text = result_text(result)
    assert text.strip(), f"{what}: isError result without a message"
    return text


async def call(client: Client, tool: str, args: dict[str, Any]) -> Any:
    return await client.call_tool(tool, args)


async def call_ok(client: Client, tool: str, args: dict[str, Any]) -> dict:
    return structured(await client.call_tool(tool, args), f"{tool}({json.dumps(args)})")


# --- evidence verification (RFC 9162 / C2SP) -----------------------------------------------------


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def decode_hash(s: str) -> bytes:
    """A hash as the server writes it: 64 hex digits (or standard base64)."""
    if len(s) == 64:
        return bytes.fromhex(s)
    raw = base64.b64decode(s, validate=True)
    assert len(raw) == 32, f"hash {s!r} is not 32 bytes"
    return raw


def root_from_inclusion_proof(leaf: bytes, index: int, size: int, path: list[bytes]) -> bytes:
    """RFC 9162 section 2.1.3.2: the root an inclusion proof leads to."""
    if index >= size:
        raise ValueError(f"leaf index {index} >= tree size {size}")
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            raise ValueError("inclusion proof is too long")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ValueError("inclusion proof is too short")
    return r


def merkle_root(leaves: list[bytes]) -> bytes:
    """RFC 6962 MTH over leaf hashes (used to self-check the verifier)."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return node_hash(merkle_root(leaves[:k]), merkle_root(leaves[k:]))


def inclusion_path(leaves: list[bytes], index: int) -> list[bytes]:
    """RFC 6962 PATH(m, D[n]) (used to self-check the verifier)."""
    if len(leaves) <= 1:
        return []
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    if index < k:
        return inclusion_path(leaves[:k], index) + [merkle_root(leaves[k:])]
    return inclusion_path(leaves[k:], index - k) + [merkle_root(leaves[:k])]


@dataclass
class SignedCheckpoint:
    origin: str
    size: int
    root: bytes
    signatures: list[tuple[str, bytes]]  # (key name, key id + signature)


def parse_signed_checkpoint(text: str) -> SignedCheckpoint:
    """Parse a C2SP signed note whose body is a C2SP tlog-checkpoint."""
    assert "\n\n" in text, f"signed note has no blank line between body and signatures: {text!r}"
    body, sigs = text.split("\n\n", 1)
    lines = body.split("\n")
    assert len(lines) >= 3, f"checkpoint body needs origin, size and root lines: {body!r}"
    origin, size_line, root_line = lines[0], lines[1], lines[2]
    assert origin, "checkpoint origin is empty"
    assert size_line.isdigit() and (size_line == "0" or not size_line.startswith("0")), f"bad size line {size_line!r}"
    root = base64.b64decode(root_line, validate=True)
    assert len(root) == 32, f"root hash line {root_line!r} is not a base64 SHA-256"
    signatures = []
    for line in sigs.split("\n"):
        if not line:
            continue
        assert line.startswith("\u2014 "), f"signature line must start with an em dash and a space: {line!r}"
        name, _, sig_b64 = line[2:].rpartition(" ")
        assert name and sig_b64, f"signature line {line!r} must be '— <name> <base64>'"
        raw = base64.b64decode(sig_b64, validate=True)
        signatures.append((name, raw))
    assert text.endswith("\n"), "signed note must end with a newline"
    assert signatures, "signed note carries no signature"
    return SignedCheckpoint(origin=origin, size=int(size_line), root=root, signatures=signatures)


def verify_note_signature(text: str, vkey: str) -> None:
    """Check a C2SP signed note's Ed25519 signature against a `name+hexid+base64(0x01||key)` verifier key."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    # The name holds no '+'; the base64 key may.
    name, key_id_hex, key_b64 = vkey.split("+", 2) if vkey.count("+") >= 2 else (None, None, None)
    assert name and key_id_hex and key_b64, f"verifier key {vkey!r} is not name+keyid+key"
    key = base64.b64decode(key_b64, validate=True)
    assert len(key) == 33 and key[0] == 0x01, f"verifier key {vkey!r} is not an Ed25519 (0x01) key"
    key_id = hashlib.sha256(name.encode() + b"\n" + key).digest()[:4]
    assert key_id.hex() == key_id_hex.lower(), f"verifier key id {key_id_hex} does not match its key ({key_id.hex()})"
    body = text.split("\n\n", 1)[0] + "\n"
    note = parse_signed_checkpoint(text)
    matching = [raw for signer, raw in note.signatures if signer == name and raw[:4] == key_id]
    assert matching, f"no signature by {name}+{key_id_hex} on the checkpoint: {note.signatures}"
    Ed25519PublicKey.from_public_bytes(key[1:]).verify(matching[0][4:], body.encode())


def verify_evidence(result: dict) -> SignedCheckpoint:
    """Check every record of an evidence_fetch result against its checkpoint. Returns the checkpoint."""
    assert "records" in result and isinstance(result["records"], list), f"no records: {result}"
    cp = result.get("checkpoint")
    assert isinstance(cp, dict), f"no checkpoint object: {result}"
    for key in ("text", "size", "root_hash"):
        assert key in cp, f"checkpoint lacks {key!r}: {cp}"
    note = parse_signed_checkpoint(cp["text"])
    assert note.size == cp["size"], f"checkpoint size {cp['size']} differs from the signed text's {note.size}"
    assert note.root == decode_hash(cp["root_hash"]), "checkpoint root_hash differs from the signed text's root"
    # Ed25519 signed-note signatures: 4-byte key id + 64-byte signature.
    assert any(len(raw) == 68 for _, raw in note.signatures), (
        f"no Ed25519 signed-note signature (4-byte key id + 64 bytes): {[len(r) for _, r in note.signatures]}"
    )
    if cp.get("verifier_key"):
        verify_note_signature(cp["text"], cp["verifier_key"])
    for rec in result["records"]:
        for key in ("ledger_index", "leaf_hash", "inclusion_proof"):
            assert key in rec, f"record lacks {key!r}: {rec}"
        proof = rec["inclusion_proof"]
        for key in ("leaf_index", "tree_size", "leaf_hash", "audit_path"):
            assert key in proof, f"inclusion_proof lacks {key!r}: {proof}"
        assert proof["leaf_index"] == rec["ledger_index"], f"leaf_index != ledger_index: {rec}"
        assert decode_hash(proof["leaf_hash"]) == decode_hash(rec["leaf_hash"]), f"leaf hashes differ: {rec}"
        assert proof["tree_size"] == note.size, (
            f"proof is for tree size {proof['tree_size']} but the checkpoint is for {note.size}"
        )
        root = root_from_inclusion_proof(
            decode_hash(proof["leaf_hash"]),
            proof["leaf_index"],
            proof["tree_size"],
            [decode_hash(h) for h in proof["audit_path"]],
        )
        assert root == note.root, (
            f"inclusion proof of ledger index {rec['ledger_index']} leads to {root.hex()}, "
            f"checkpoint root is {note.root.hex()}"
        )
    return note


# --- MCP Inspector CLI -----------------------------------------------------------------------------


def run_inspector(args: list[str], timeout: float = 180) -> subprocess.CompletedProcess:
    cmd = [str(inspector_path()), "--cli", *args]
    return subprocess.run(
        cmd,
        cwd=REPO_ROOT,
        env=child_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def post_events(server, token: str, events: list[dict]) -> None:
    """POST /v1/events with a batch; fails the test unless it is accepted."""
    status, _, raw = http_request(
        "POST", f"{server.base_url}/v1/events", json.dumps({"events": events}),
        {**bearer(token), "Content-Type": "application/json"},
    )
    assert status == 200, raw


def leaky_fleet_second(server, token: str, leak_share: float, i: int) -> None:
    """One second of a ten-agent fleet's traffic (agent-0 … agent-9, three calls each), where
    `leak_share` of agent-3's calls are violations (deterministic in `i`)."""
    events = []
    for a in range(10):
        agent = f"agent-{a}"
        for k in range(3):
            violation = agent == "agent-3" and ((i * 3 + k) * 37 % 100) / 100 < leak_share
            events.append({"agent_id": agent, "kind": "llm_call",
                           "outcome": "violation" if violation else "ok",
                           "model": "gpt-4o-mini", "latency_ms": 200, "cost_usd": 0.001})
    post_events(server, token, events)
