#!/usr/bin/env python3
"""Issue 16's attacks against a real `meshos serve`, one fresh server per attack.

For each attack: create tokens, start `meshos serve` on a free port and a fresh data directory
(under an address-space limit, so a runaway allocation aborts instead of eating the machine),
run the attack while sampling the server's memory (VmHWM/VmRSS from /proc) and probing
/healthz, then record whether the server survived, its peak RSS, /healthz latency during the
attack and what the attack achieved. Prints a markdown table and writes JSON.

    python3 bench/attacks/run.py --bin /tmp/meshos-after [--only NAME[,NAME]] [--out F.json]
    python3 bench/attacks/run.py --compare before.json after.json   # side-by-side table

Python 3.11 standard library only. See bench/attacks/README.md for what each attack is.
"""

from __future__ import annotations

import argparse
import errno
import http.client
import json
import multiprocessing
import os
import resource
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from pathlib import Path

MIB = 1024 * 1024
ROOT = Path(__file__).resolve().parents[2]
GOAL_MB = 256
IP_BIND_ADDRESS_NO_PORT = 24  # Linux: pick the source port at connect(), not bind()
FLOOD_SOURCES = [f"127.0.0.{i}" for i in range(2, 10)]  # spread floods over source addresses


# ---- the server under test ------------------------------------------------------------------


def proc_status(pid: int) -> dict[str, int]:
    """VmHWM/VmRSS (KiB) of a live process, {} once it is gone."""
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(("VmHWM:", "VmRSS:")):
                    out[line.split(":")[0]] = int(line.split()[1])
    except OSError:
        pass
    return out


def open_fds(pid: int) -> int | None:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A `meshos serve` on a fresh data directory, with the tokens an attack asked for."""

    def __init__(self, bin_path, tokens, extra_args=(), as_bytes=6_000_000_000, setup=None):
        self.bin = bin_path
        self.dir = Path(tempfile.mkdtemp(prefix="meshos-attack-"))
        self.data = self.dir / "data"
        self.port = free_port()
        self.proc = self.log = None
        try:
            self._start(tokens, extra_args, as_bytes, setup)
        except BaseException:
            self.stop()
            self.cleanup()
            raise

    def _start(self, tokens, extra_args, as_bytes, setup):
        self.tokens = {name: self.token(*spec) for name, spec in tokens.items()}
        args = list(extra_args)
        if setup:
            args += setup(self)  # e.g. a policy directory copied under self.dir
        self.log = open(self.dir / "serve.log", "wb")
        cmd = [self.bin, "serve", "--bind", f"127.0.0.1:{self.port}",
               "--data-dir", str(self.data), "--log", "warn", *args]

        def limit():  # in the child, before exec: a runaway allocation fails instead
            resource.setrlimit(resource.RLIMIT_AS, (as_bytes, as_bytes))

        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, preexec_fn=limit)
        self.pid = self.proc.pid
        deadline = time.time() + 60
        while True:
            st, _, _ = request(self.port, "GET", "/healthz", timeout=2)
            if st == 200:
                break
            if self.proc.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"meshos serve did not start: {self.log_tail()}")
            time.sleep(0.1)
        self.baseline = proc_status(self.pid)

    def token(self, tenant, role, agent=None):
        cmd = [self.bin, "token", "create", "--data-dir", str(self.data),
               "--tenant", tenant, "--role", role]
        if agent:
            cmd += ["--agent", agent]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        if out.returncode != 0:
            raise RuntimeError(f"token create: {out.stderr.strip()}")
        return out.stdout.strip().splitlines()[-1]

    def alive(self):
        return self.proc.poll() is None

    def log_tail(self, n=600):
        try:
            if self.log is not None and not self.log.closed:
                self.log.flush()
            return (self.dir / "serve.log").read_bytes()[-n:].decode(errors="replace")
        except OSError:
            return ""

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.log is not None:
            self.log.close()

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


class Sampler(threading.Thread):
    """Samples the server's VmHWM, VmRSS and open descriptors every 100 ms."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.stop_flag = pid, threading.Event()
        self.hwm_kib = self.rss_kib = 0
        self.fds = 0

    def sample(self):
        st = proc_status(self.pid)
        self.hwm_kib = max(self.hwm_kib, st.get("VmHWM", 0))
        self.rss_kib = max(self.rss_kib, st.get("VmRSS", 0))
        self.fds = max(self.fds, open_fds(self.pid) or 0)

    def run(self):
        while not self.stop_flag.wait(0.1):
            self.sample()


class HealthProbe(threading.Thread):
    """GET /healthz on a new connection every 500 ms (5 s timeout): latency or failure."""

    def __init__(self, port, timeout=5.0):
        super().__init__(daemon=True)
        self.port, self.timeout, self.stop_flag = port, timeout, threading.Event()
        self.samples = []  # (ms, ok, bundle version or None)

    def run(self):
        while not self.stop_flag.is_set():
            t = time.monotonic()
            st, _, body = request(self.port, "GET", "/healthz", timeout=self.timeout)
            ms = (time.monotonic() - t) * 1000
            self.samples.append((round(ms, 1), st == 200))
            self.stop_flag.wait(max(0.0, 0.5 - ms / 1000))

    def summary(self):
        ok = sorted(ms for ms, good in self.samples if good)
        return {
            "probes": len(self.samples),
            "ok": len(ok),
            "p50_ms": ok[len(ok) // 2] if ok else None,
            "max_ms": max((ms for ms, _ in self.samples), default=None),
        }


# ---- HTTP helpers -----------------------------------------------------------------------------


def request(port, method, path, body=None, headers=None, timeout=30.0, conn=None):
    """(status, headers, body) — status is an error string when there is no answer."""
    own = conn is None
    try:
        c = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        data = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data
    except Exception as e:  # noqa: BLE001 - every failure is an outcome here
        return type(e).__name__, {}, b""  # RemoteDisconnected, ConnectionResetError, timeout…
    finally:
        if own and "c" in locals():
            c.close()


def bearer(token, **more):
    return {"Authorization": f"Bearer {token}", **more}


def post_json(port, path, token, obj, timeout=60.0, **hdrs):
    st, h, body = request(port, "POST", path, json.dumps(obj).encode(),
                          bearer(token, **{"Content-Type": "application/json", **hdrs}), timeout)
    return st, body


def excerpt(body, n=160):
    """The start of a body, printable (an OTLP error is a protobuf google.rpc.Status)."""
    text = body[:n].decode(errors="replace")
    return "".join(c if c.isprintable() else " " for c in text).strip()


def summary(body):
    """`accepted N` or the error of a JSON answer, else its start."""
    try:
        obj = json.loads(body)
        if isinstance(obj, dict) and "accepted" in obj:
            return f"accepted {obj['accepted']}"
        if isinstance(obj, dict) and "error" in obj:
            return str(obj["error"])[:120]
    except ValueError:
        pass
    return excerpt(body, 120)


def flood_socket(i):
    """A non-blocking socket bound to one of several loopback source addresses."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setblocking(False)
    try:
        s.setsockopt(socket.SOL_IP, IP_BIND_ADDRESS_NO_PORT, 1)
        s.bind((FLOOD_SOURCES[i % len(FLOOD_SOURCES)], 0))
    except OSError:
        pass
    return s


def connect_many(port, n, deadline_s=10.0):
    """Opens n non-blocking connections; returns (sockets, connected count)."""
    socks = []
    for i in range(n):
        s = flood_socket(i)
        err = s.connect_ex(("127.0.0.1", port))
        if err not in (0, errno.EINPROGRESS):
            s.close()
            continue
        socks.append(s)
    sel = selectors.DefaultSelector()
    pending = set()
    for s in socks:
        sel.register(s, selectors.EVENT_WRITE)
        pending.add(s)
    end = time.monotonic() + deadline_s
    while pending and time.monotonic() < end:
        for key, _ in sel.select(0.5):
            sel.unregister(key.fileobj)
            pending.discard(key.fileobj)
    for s in pending:
        sel.unregister(s)
    sel.close()
    connected = sum(1 for s in socks if s not in pending
                    and s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0)
    return socks, connected


def count_closed(socks):
    """Connections the server closed (EOF, reset) or answered, without blocking."""
    closed = answered = 0
    statuses = {}
    for s in socks:
        try:
            data = s.recv(65536)
            if data == b"":
                closed += 1
            else:
                answered += 1
                line = data.split(b"\r\n", 1)[0].decode(errors="replace")
                code = line.split(" ")[1] if line.startswith("HTTP/") else "?"
                statuses[code] = statuses.get(code, 0) + 1
        except BlockingIOError:
            pass
        except OSError:
            closed += 1
    return closed, answered, statuses


# ---- protobuf by hand -------------------------------------------------------------------------


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field(num, payload):  # length-delimited field
    return varint(num << 3 | 2) + varint(len(payload)) + payload


def fixed64(num, value):
    return varint(num << 3 | 1) + value.to_bytes(8, "little")


def kv(key, value):  # KeyValue{key, value: AnyValue{string_value}}
    return field(1, key.encode()) + field(2, field(1, value.encode()))


def empty_spans_gzip(n):
    """ExportTraceServiceRequest{ResourceSpans{ScopeSpans{n × Span{}}}}, gzip, built in chunks."""
    scope_len = 2 * n
    head_ss = varint(2 << 3 | 2) + varint(scope_len)  # ResourceSpans.scope_spans (field 2)
    rs_len = len(head_ss) + scope_len
    head = varint(1 << 3 | 2) + varint(rs_len) + head_ss  # Request.resource_spans (field 1)
    co = zlib.compressobj(9, zlib.DEFLATED, 31)
    out = [co.compress(head)]
    chunk = b"\x12\x00" * 1_000_000
    full, rest = divmod(n, 1_000_000)
    for _ in range(full):
        out.append(co.compress(chunk))
    out.append(co.compress(b"\x12\x00" * rest))
    out.append(co.flush())
    return b"".join(out), len(head) + scope_len


def legit_otlp(spans, elements_limit, target_bytes):
    """The largest OTLP export a limit set admits: `spans` spans, as close to `elements_limit`
    messages and to `target_bytes` encoded as fits. Returns (body, elements)."""
    resource_ = field(1, field(1, kv("service.name", "otlp-agent")))  # ResourceSpans.resource
    fixed_elems = 1 + 1 + 2 + 1  # ResourceSpans, Resource, its KeyValue + AnyValue, ScopeSpans
    per_span_min = 1 + 9 * 2  # Span + 9 × (KeyValue + AnyValue)
    # Spans with a Status message have one element more: give as many spans one as fit.
    with_status = min(spans, elements_limit - fixed_elems - spans * per_span_min)
    elements = fixed_elems + spans * per_span_min + with_status
    status = field(15, varint(3 << 3 | 0) + varint(1))  # Status{code: OK}

    def span(i, vlen, st):
        body = (field(1, i.to_bytes(16, "big")) + field(2, (i + 1).to_bytes(8, "big"))
                + field(5, b"tool.call") + fixed64(7, 1_700_000_000_000_000_000 + i)
                + fixed64(8, 1_700_000_000_050_000_000 + i))
        pad = ("x%07d" % i) * (vlen // 8 + 1)
        for a in range(9):
            body += field(9, kv(f"app.field{a}", pad[:vlen]))
        return field(2, body + (status if st else b""))  # ScopeSpans.spans

    def total(vlen):
        s1, s0 = len(span(10**9, vlen, True)), len(span(10**9, vlen, False))
        ss = with_status * s1 + (spans - with_status) * s0
        return ss + len(resource_) + 32  # + the three enclosing headers, generously

    lo, hi = 1, 1 << 16
    while lo < hi:  # the longest attribute value that keeps the body under target_bytes
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if total(mid) <= target_bytes else (lo, mid - 1)
    ss = b"".join(span(i, lo, i < with_status) for i in range(spans))
    body = field(1, resource_ + field(2, ss))
    return body, elements


def pb_fields(buf):
    """Top-level fields of a protobuf message: {number: [int or bytes, …]}."""
    out, i = {}, 0

    def rv():
        nonlocal i
        v = shift = 0
        while True:
            b = buf[i]
            i += 1
            v |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return v

    while i < len(buf):
        key = rv()
        if key & 7 == 0:
            val = rv()
        elif key & 7 == 2:
            ln = rv()
            val, i = buf[i:i + ln], i + ln
        else:
            raise ValueError("wire type")
        out.setdefault(key >> 3, []).append(val)
    return out


def otlp_response(body, status):
    """An ExportTraceServiceResponse's partial success, or a google.rpc.Status's message."""
    try:
        f = pb_fields(body)
        if status != 200:  # google.rpc.Status{code = 1, message = 2}
            return f.get(2, [b""])[0].decode(errors="replace")[:120]
        if not f:
            return "all spans accepted"
        ps = pb_fields(f[1][0])  # partial_success{rejected_spans = 1, error_message = 2}
        msg = ps.get(2, [b""])[0].decode(errors="replace")[:80]
        return f"rejected_spans={ps.get(1, [0])[0]} {msg}".strip()
    except (ValueError, IndexError, KeyError):
        return excerpt(body)


# ---- the attacks -------------------------------------------------------------------------------
# Each takes the running Server and returns (outcome: str, details: dict).

OPERATOR = {"op": ("acme", "operator")}


def otlp_post(srv, body, gzip_):
    hdrs = bearer(srv.tokens["op"], **{"Content-Type": "application/x-protobuf"})
    if gzip_:
        hdrs["Content-Encoding"] = "gzip"
    t = time.monotonic()
    st, _, resp = request(srv.port, "POST", "/v1/traces", body, hdrs, timeout=120)
    return st, resp, round(time.monotonic() - t, 2)


def otlp_bomb(n):
    def attack(srv):
        body, decoded = empty_spans_gzip(n)
        st, resp, secs = otlp_post(srv, body, True)
        ans = otlp_response(resp, st)
        return (f"HTTP {st} in {secs} s" + (f" ({ans[:70]})" if ans else ""),
                {"spans": n, "wire_bytes": len(body), "decoded_bytes": decoded, "status": st,
                 "response": ans})
    return attack


def otlp_largest_legit(gzip_):
    def attack(srv):
        target = 64 * MIB - 4096 if gzip_ else 16 * MIB - 4096
        body, elements = legit_otlp(50_000, 1_000_000, target)
        wire = zlib.compress(body, 6, wbits=31) if gzip_ else body
        st, resp, secs = otlp_post(srv, wire, gzip_)
        ans = otlp_response(resp, st)
        return (f"HTTP {st} in {secs} s" + (f" ({ans})" if ans else ""),
                {"spans": 50_000, "elements": elements, "decoded_bytes": len(body),
                 "wire_bytes": len(wire), "status": st, "response": ans})
    return attack


def event_batch(n, target_bytes):
    """n events whose JSON is close to target_bytes."""
    def ev(i, pad):
        return {"agent_id": f"bot-{i % 8}", "kind": "tool_call", "outcome": "ok",
                "latency_ms": 120, "tool": "search", "attributes": {"note": "y" * pad}}
    base = len(json.dumps({"events": [ev(i, 0) for i in range(n)]}))
    pad = max(0, (target_bytes - base) // n)
    return json.dumps({"events": [ev(i, pad) for i in range(n)]}).encode()


def events_largest_legit(gzip_):
    def attack(srv):
        body = event_batch(10_000, 8 * MIB - 4096 if gzip_ else 2 * MIB - 4096)
        hdrs = bearer(srv.tokens["op"], **{"Content-Type": "application/json"})
        wire = body
        if gzip_:
            wire = zlib.compress(body, 6, wbits=31)
            hdrs["Content-Encoding"] = "gzip"
        t = time.monotonic()
        st, _, resp = request(srv.port, "POST", "/v1/events", wire, hdrs, timeout=120)
        secs = round(time.monotonic() - t, 2)
        return (f"HTTP {st} in {secs} s: {summary(resp)}",
                {"events": 10_000, "decoded_bytes": len(body), "wire_bytes": len(wire),
                 "status": st, "response": summary(resp)})
    return attack


def concurrently(n, send):
    """n threads call send() -> (status, body) at the same moment; returns ({status: count},
    seconds, the first answer that was not a 200)."""
    barrier, counts, other, lock = threading.Barrier(n), {}, [], threading.Lock()

    def one():
        barrier.wait()
        st, body = send()
        with lock:
            counts[str(st)] = counts.get(str(st), 0) + 1
            if st != 200 and not other:
                other.append(f"{st}: {summary(body)}")

    t = time.monotonic()
    ts = [threading.Thread(target=one) for _ in range(n)]
    for th in ts:
        th.start()
    for th in ts:
        th.join()
    return counts, round(time.monotonic() - t, 1), (other or [None])[0]


def otlp_legit_concurrent(n, gzip_):
    """n clients each send the largest admitted export at once: the limits are per request, the
    in-flight body budget (64 MiB of Content-Length) is what bounds them together."""
    def attack(srv):
        body, _ = legit_otlp(50_000, 1_000_000, (64 if gzip_ else 16) * MIB - 4096)
        wire = zlib.compress(body, 6, wbits=31) if gzip_ else body
        def send():
            st, resp, _ = otlp_post(srv, wire, gzip_)
            return st, otlp_response(resp, st).encode()

        counts, secs, other = concurrently(n, send)
        return (f"{n} at once ({len(wire) / 1e6:.1f} MB on the wire, {len(body) / 1e6:.1f} MB "
                f"inflated, 50,000 spans each) → {counts} in {secs} s",
                {"clients": n, "wire_bytes": len(wire), "decoded_bytes": len(body),
                 "statuses": counts, "seconds": secs, "first_non_200": other})
    return attack


def events_legit_concurrent(n, gzip_):
    def attack(srv):
        body = event_batch(10_000, (8 if gzip_ else 2) * MIB - 4096)
        hdrs = bearer(srv.tokens["op"], **{"Content-Type": "application/json"})
        wire = body
        if gzip_:
            wire = zlib.compress(body, 6, wbits=31)
            hdrs["Content-Encoding"] = "gzip"
        counts, secs, other = concurrently(n, lambda: request(srv.port, "POST", "/v1/events",
                                                              wire, hdrs, timeout=120)[::2])
        return (f"{n} at once ({len(wire) / 1e6:.2f} MB on the wire, {len(body) / 1e6:.1f} MB "
                f"inflated, 10,000 events each) → {counts} in {secs} s",
                {"clients": n, "wire_bytes": len(wire), "decoded_bytes": len(body),
                 "statuses": counts, "seconds": secs, "first_non_200": other})
    return attack


def cost_saturation(srv):
    st, body = post_json(srv.port, "/v1/events", srv.tokens["a1"],
                         {"events": [{"agent_id": "bot-1", "kind": "llm.chat", "outcome": "ok",
                                      "latency_ms": 100, "cost_usd": 1e308}]})
    time.sleep(1.5)  # let a facts cache catch up
    st2, check = post_json(srv.port, "/v1/policy/check", srv.tokens["op"],
                           {"agent_id": "bot-2", "action": "email.send", "model": "gpt-4o-mini"})
    try:
        c = json.loads(check)
        decision = c.get("decision")
        reasons = json.dumps(c.get("reasons", c.get("reason", "")))[:200]
    except ValueError:
        decision, reasons = None, excerpt(check)
    blind = decision not in ("allow", None) and "budget" in reasons
    outcome = (f"ingest HTTP {st}; other agent's check: {decision}"
               + (" (budget-exceeded: tenant blinded)" if blind else ""))
    return outcome, {"ingest_status": st, "ingest_response": summary(body),
                     "check_status": st2, "decision": decision, "reasons": reasons,
                     "tenant_blinded": blind}


INIT = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": "2025-06-18", "capabilities": {},
    "clientInfo": {"name": "attack", "version": "1"}}}).encode()


def mcp_session_flood(n_tokens, total=20_000, threads=4, max_secs=60):
    """`initialize` POSTs over `threads` keep-alive connections. A connection the server closed
    (it may close one after a 429 without saying `Connection: close`) is reopened and the
    request sent again, counted in `reconnects`."""
    def attack(srv):
        tokens = [srv.tokens[f"t{i}"] for i in range(n_tokens)]
        counts, lock = {}, threading.Lock()
        sent, reconnects = [0], [0]
        end = time.monotonic() + max_secs

        def worker():
            conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
            while True:
                with lock:
                    if sent[0] >= total or time.monotonic() > end:
                        conn.close()
                        return
                    i = sent[0]
                    sent[0] += 1
                hdrs = bearer(tokens[i % len(tokens)], **{
                    "Content-Type": "application/json",
                    "Accept": "application/json, text/event-stream"})
                for attempt in range(2):
                    st, h, _ = request(srv.port, "POST", "/mcp", INIT, hdrs, conn=conn)
                    if isinstance(st, int):
                        break
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
                    with lock:
                        reconnects[0] += 1
                key = "opened" if st == 200 and "mcp-session-id" in h else str(st)
                with lock:
                    counts[key] = counts.get(key, 0) + 1

        ts = [threading.Thread(target=worker) for _ in range(threads)]
        t0 = time.monotonic()
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        secs = round(time.monotonic() - t0, 1)
        shown = ", ".join(f"{k}: {v}" for k, v in sorted(counts.items()))
        limit = f" (limit {64 * n_tokens if n_tokens * 64 < 2000 else 2000} in the fixed server)"
        return (f"{sent[0]} initialize in {secs} s, {threads} at a time → {shown}{limit}",
                {"tokens": n_tokens, "threads": threads, "sent": sent[0], "seconds": secs,
                 "answers": counts, "reconnects": reconnects[0]})
    return attack


def idle_worker(port, n, hold_s, first, pipe):
    """In a child process (each process has its own descriptor limit): n connections that send
    `first` (maybe nothing) and then stay silent."""
    socks, connected = connect_many(port, n)
    if first:
        for s in socks:
            try:
                s.send(first)
            except OSError:
                pass
    pipe.send(connected)
    time.sleep(hold_s)
    pipe.send(count_closed(socks))
    for s in socks:
        s.close()


def idle_connection_flood(partial=False, n=20_000, hold_s=30, procs=4):
    def attack(srv):
        first = b""
        if partial:
            first = f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{srv.port}\r\n".encode()
        ctx = multiprocessing.get_context("fork")
        pipes, workers = [], []
        for _ in range(procs):
            mine, theirs = ctx.Pipe()
            w = ctx.Process(target=idle_worker, args=(srv.port, n // procs, hold_s, first, theirs),
                            daemon=True)
            w.start()
            pipes.append(mine)
            workers.append(w)
        connected = sum(p.recv() for p in pipes)
        closed = answered = 0
        statuses = {}
        for p in pipes:
            c, a, st = p.recv()
            closed, answered = closed + c, answered + a
            for k, v in st.items():
                statuses[k] = statuses.get(k, 0) + v
        for w in workers:
            w.join(30)
        return (f"{connected}/{n} connected within 10 s; {closed} closed by the server within "
                f"{hold_s} s" + (f", {answered} answered {statuses}" if answered else ""),
                {"connections": n, "connected": connected, "closed_by_server": closed,
                 "answered": answered, "statuses": statuses})
    return attack


def slowloris(srv, n=2_000, secs=30, every=5):
    socks, connected = connect_many(srv.port, n)
    dead = set()

    def send_all(data):
        for s in socks:
            if s in dead:
                continue
            try:
                s.send(data)
            except BlockingIOError:
                pass
            except OSError:
                dead.add(s)

    send_all(f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{srv.port}\r\n".encode())
    start = time.monotonic()
    k = 0
    while time.monotonic() - start < secs:
        time.sleep(every)
        k += 1
        send_all(f"X-Slow-{k}: {k}\r\n".encode())
    closed, answered, statuses = count_closed([s for s in socks if s not in dead])
    still_open = len(socks) - len(dead) - closed - answered
    for s in socks:
        s.close()
    return (f"{still_open}/{connected} still open after {secs} s "
            f"({len(dead) + closed} closed, {answered} answered {statuses})",
            {"connections": n, "connected": connected, "still_open": still_open,
             "closed": len(dead) + closed, "answered": answered, "statuses": statuses})


def body_flood(srv, n=2_000, secs=40, chunk=4096, length=2_000_000):
    socks, connected = connect_many(srv.port, n)
    head = (f"POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1:{srv.port}\r\n"
            f"Authorization: Bearer {srv.tokens['op']}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {length}\r\n\r\n").encode()
    filler = b" " * chunk
    dead, sent_bytes, statuses = set(), 0, {}
    for s in socks:
        try:
            s.send(head)
        except OSError:
            dead.add(s)
    start = time.monotonic()
    while time.monotonic() - start < secs:
        tick = time.monotonic()
        for s in socks:
            if s in dead:
                continue
            try:
                sent_bytes += s.send(filler)
            except BlockingIOError:
                pass
            except OSError:
                dead.add(s)
        for s in socks:  # answers so far (503 past the body wait, 413, …)
            if s in dead:
                continue
            try:
                data = s.recv(4096)
                if data.startswith(b"HTTP/"):
                    code = data.split(b" ", 2)[1].decode()
                    statuses[code] = statuses.get(code, 0) + 1
                dead.add(s)
            except BlockingIOError:
                pass
            except OSError:
                dead.add(s)
        time.sleep(max(0.0, 1.0 - (time.monotonic() - tick)))
    for s in socks:
        s.close()
    return (f"{connected} bodies trickled {secs} s ({sent_bytes // MIB} MiB sent); "
            f"answers {statuses or '{}'}; {len(dead)} ended",
            {"connections": n, "connected": connected, "bytes_sent": sent_bytes,
             "statuses": statuses, "ended": len(dead)})


def agent_id_flood(srv, n=200_000, batch=10_000):
    statuses = {}
    t = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=120)
    for b in range(n // batch):
        events = [{"agent_id": f"inv-{b * batch + i}", "kind": "tool_call", "outcome": "ok",
                   "latency_ms": 10} for i in range(batch)]
        st, _, _ = request(srv.port, "POST", "/v1/events", json.dumps({"events": events}).encode(),
                           bearer(srv.tokens["op"], **{"Content-Type": "application/json"}),
                           conn=conn)
        statuses[str(st)] = statuses.get(str(st), 0) + 1
        if not isinstance(st, int):
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=120)
    conn.close()
    secs = round(time.monotonic() - t, 1)
    st, _, text = request(srv.port, "GET", "/metrics", headers=bearer(srv.tokens["op"]))
    series = sum(1 for line in text.splitlines() if line.startswith(b"meshos_trust_score{"))
    return (f"{n} ids in {secs} s (batches {statuses}); /metrics HTTP {st}: {series} "
            f"meshos_trust_score series, {len(text) // 1024} KiB",
            {"events": n, "batches": statuses, "seconds": secs, "metrics_status": st,
             "trust_score_series": series, "metrics_bytes": len(text)})


def keepalive_idle(srv, wait=30):
    """Not an attack: how long the server keeps an idle keep-alive connection after a response
    (README: `idle_timeout_ms`, 300 s by default)."""
    s = socket.create_connection(("127.0.0.1", srv.port))
    s.sendall(f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{srv.port}\r\n\r\n".encode())
    first = s.recv(65536).split(b"\r\n", 1)[0].decode(errors="replace")
    s.settimeout(wait)
    t = time.monotonic()
    try:
        closed = s.recv(65536) == b""
    except (socket.timeout, OSError):
        closed = False
    secs = round(time.monotonic() - t, 1)
    s.close()
    if closed:
        return f"{first}; then closed by the server after {secs} s idle", {"closed_after_s": secs}
    return f"{first}; still open after {wait} s idle", {"closed_after_s": None}


def metrics_unauthenticated(srv):
    out = {}
    for who, hdrs in [("none", {}), ("agent", bearer(srv.tokens["a1"])),
                      ("operator", bearer(srv.tokens["op"]))]:
        st, _, body = request(srv.port, "GET", "/metrics", headers=hdrs)
        out[who] = st
    return (f"no token → {out['none']}, agent token → {out['agent']}, "
            f"operator → {out['operator']}", out)


def copy_policies(srv):
    dst = srv.dir / "policies"
    shutil.copytree(ROOT / "policies" / "default", dst)
    return ["--policy-dir", str(dst)]


def copy_policies_with_manifest(srv):
    args = copy_policies(srv)
    subprocess.run([srv.bin, "policy", "manifest", args[1]], check=True, capture_output=True)
    return args


def healthz_bundle(srv):
    st, _, body = request(srv.port, "GET", "/healthz")
    try:
        return json.loads(body).get("policy_bundle")
    except ValueError:
        return f"HTTP {st}"


def check(srv, action, agent="ops-bot"):
    st, body = post_json(srv.port, "/v1/policy/check", srv.tokens["op"],
                         {"agent_id": agent, "action": action})
    try:
        c = json.loads(body)
        return c.get("decision"), c
    except ValueError:
        return f"HTTP {st}", {}


def truncated_policy(srv):
    before_dec, _ = check(srv, "shell.exec")
    v0 = healthz_bundle(srv)
    (srv.dir / "policies" / "global" / "actions.cedar").write_bytes(b"")
    time.sleep(3)
    after_dec, _ = check(srv, "shell.exec")
    v1 = healthz_bundle(srv)
    return (f"shell.exec {before_dec} → {after_dec} after actions.cedar emptied; bundle "
            f"{'unchanged' if v0 == v1 else 'reloaded'}",
            {"decision_before": before_dec, "decision_after": after_dec,
             "bundle_before": v0, "bundle_after": v1})


def truncated_policy_cut(srv):
    """actions.cedar cut between two policies (the approval rule for payments is lost)."""
    path = srv.dir / "policies" / "global" / "actions.cedar"
    text = path.read_text()
    dec0, c0 = check(srv, "payments.transfer", "billing-bot")
    v0 = healthz_bundle(srv)
    path.write_text(text[:text.index("// Money leaves")])
    time.sleep(3)
    dec1, c1 = check(srv, "payments.transfer", "billing-bot")
    v1 = healthz_bundle(srv)

    def ob(c):
        return [o.get("kind", o) if isinstance(o, dict) else o for o in c.get("obligations", [])]

    return (f"payments.transfer {dec0} {ob(c0)} → {dec1} {ob(c1)}; bundle "
            f"{'unchanged' if v0 == v1 else 'reloaded'}",
            {"decision_before": dec0, "obligations_before": ob(c0), "decision_after": dec1,
             "obligations_after": ob(c1), "bundle_before": v0, "bundle_after": v1})


# name → (attack, tokens, extra serve args, setup)
MANY = {f"t{i}": (f"tenant{i % 5}", "operator") for i in range(50)}
AGENT = {"op": ("acme", "operator"), "a1": ("acme", "agent", "bot-1")}
ATTACKS = {
    "otlp-gzip-bomb": (otlp_bomb(33_000_000), OPERATOR, [], None),
    "otlp-2m-spans": (otlp_bomb(2_000_000), OPERATOR, [], None),
    "otlp-largest-legit": (otlp_largest_legit(False), OPERATOR, [], None),
    "otlp-largest-legit-gzip": (otlp_largest_legit(True), OPERATOR, [], None),
    "otlp-legit-x4": (otlp_legit_concurrent(4, False), OPERATOR, [], None),
    "otlp-legit-gzip-x8": (otlp_legit_concurrent(8, True), OPERATOR, [], None),
    "otlp-legit-gzip-x16": (otlp_legit_concurrent(16, True), OPERATOR, [], None),
    "events-largest-legit": (events_largest_legit(False), OPERATOR, [], None),
    "events-largest-legit-gzip": (events_largest_legit(True), OPERATOR, [], None),
    "events-legit-x32": (events_legit_concurrent(32, False), OPERATOR, [], None),
    "events-legit-gzip-x32": (events_legit_concurrent(32, True), OPERATOR, [], None),
    "events-legit-gzip-x128": (events_legit_concurrent(128, True), OPERATOR, [], None),
    "cost-saturation": (cost_saturation, AGENT, [], None),
    "mcp-session-flood-1-token": (mcp_session_flood(1), {"t0": ("acme", "operator")}, [], None),
    "mcp-session-flood-50-tokens": (mcp_session_flood(50), MANY, [], None),
    "mcp-session-race": (mcp_session_flood(1, total=5_000, threads=64),
                         {"t0": ("acme", "operator")}, [], None),
    "idle-connection-flood": (idle_connection_flood(), OPERATOR, [], None),
    "idle-partial-header-flood": (idle_connection_flood(partial=True), OPERATOR, [], None),
    "slowloris": (slowloris, OPERATOR, [], None),
    "body-flood": (body_flood, OPERATOR, [], None),
    "agent-id-flood": (agent_id_flood, OPERATOR, [], None),
    "agent-id-flood-labels": (agent_id_flood, OPERATOR, ["--metrics-agent-labels"], None),
    "metrics-unauthenticated": (metrics_unauthenticated, AGENT, [], None),
    "keepalive-idle": (keepalive_idle, OPERATOR, [], None),
    "truncated-policy": (truncated_policy, OPERATOR, [], copy_policies),
    "truncated-policy-cut": (truncated_policy_cut, OPERATOR, [], copy_policies),
    "truncated-policy-cut-manifest": (truncated_policy_cut, OPERATOR, [],
                                      copy_policies_with_manifest),
}


def supports(bin_path, flag, command="serve"):
    out = subprocess.run([bin_path, command, "--help"], capture_output=True, text=True)
    return flag in out.stdout


def run_one(bin_path, name, as_bytes):
    attack, tokens, extra, setup = ATTACKS[name]
    extra = [a for a in extra if supports(bin_path, a)] if extra else []
    result = {"attack": name, "extra_args": extra,
              "nofile": resource.getrlimit(resource.RLIMIT_NOFILE)[0]}
    if name == "agent-id-flood-labels" and not extra:
        result.update(skipped="the binary has no --metrics-agent-labels (it always labels)")
        return result
    if setup is copy_policies_with_manifest and not supports(bin_path, "manifest", "policy"):
        result.update(skipped="the binary has no `meshos policy manifest`")
        return result
    srv = Server(bin_path, tokens, extra, as_bytes, setup)
    try:
        return measure(srv, attack, result)
    finally:  # also on Ctrl-C or SIGTERM: no server or temp dir is left behind
        srv.stop()
        srv.cleanup()


def measure(srv, attack, result):
    sampler, probe = Sampler(srv.pid), HealthProbe(srv.port)
    sampler.sample()
    sampler.start()
    probe.start()
    t = time.monotonic()
    try:
        outcome, details = attack(srv)
    except Exception as e:  # noqa: BLE001 - a harness failure is reported, not fatal
        outcome, details = f"harness error: {type(e).__name__}: {e}", {}
    result["seconds"] = round(time.monotonic() - t, 1)
    time.sleep(1)  # what the attack left behind (a delayed abort, …)
    sampler.sample()
    sampler.stop_flag.set()
    probe.stop_flag.set()
    probe.join(10)
    sampler.join(1)
    alive = srv.alive()
    after = request(srv.port, "GET", "/healthz", timeout=10)[0] if alive else None
    final = proc_status(srv.pid)
    hwm = max(sampler.hwm_kib, final.get("VmHWM", 0))
    result.update(
        survived=alive,
        exit=None if alive else srv.proc.returncode,
        healthz_after=after,
        baseline_rss_mb=round(srv.baseline.get("VmRSS", 0) / 1024, 1),
        peak_rss_mb=round(hwm / 1024, 1),
        final_hwm_mb=round(final.get("VmHWM", 0) / 1024, 1) if final else None,
        peak_fds=sampler.fds,
        healthz_during=probe.summary(),
        outcome=outcome,
        details=details,
    )
    if not alive:  # why it died: the panic or allocation failure line, and the log's end
        log = srv.log_tail(1 << 20)
        result["died_of"] = [line for line in log.splitlines()
                             if "panicked" in line or "memory allocation" in line
                             or "fatal" in line.lower()][:3]
        result["log_tail"] = log[-400:]
    return result


def fmt_health(r):
    h = r.get("healthz_during") or {}
    if not h:
        return ""
    return f"{h['ok']}/{h['probes']} ok, p50 {h['p50_ms']:.0f} ms, max {h['max_ms']:.0f} ms" \
        if h["p50_ms"] is not None else f"0/{h['probes']} ok"


def fmt_cell(r):
    if r is None:
        return "—", "", "", ""
    if r.get("skipped"):
        return "—", "skipped", "", r["skipped"]
    rss = f"{r['peak_rss_mb']:.0f}" + (" ⚠" if r["peak_rss_mb"] > GOAL_MB else "")
    alive = "yes" if r["survived"] else f"**no** (exit {r['exit']})"
    return rss, alive, fmt_health(r), r["outcome"].replace("|", "/")


def table(results):
    lines = ["| attack | peak RSS MB | survived | /healthz during | outcome |",
             "| --- | ---: | --- | --- | --- |"]
    for r in results:
        lines.append(f"| {r['attack']} | " + " | ".join(fmt_cell(r)) + " |")
    return "\n".join(lines)


def compare(before_path, after_path):
    b = {r["attack"]: r for r in json.loads(Path(before_path).read_text())["results"]}
    a = {r["attack"]: r for r in json.loads(Path(after_path).read_text())["results"]}
    lines = ["| attack | before: peak RSS MB | survived | /healthz during | outcome | "
             "after: peak RSS MB | survived | /healthz during | outcome |",
             "| --- | ---: | --- | --- | --- | ---: | --- | --- | --- |"]
    for name in [n for n in ATTACKS if n in a or n in b]:
        cells = [name, *fmt_cell(b.get(name)), *fmt_cell(a.get(name))]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def raise_fd_limit(want=65_536):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    for lim in ((want, max(want, hard)), (min(want, hard), hard)):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, lim)
            break
        except (ValueError, OSError):
            continue
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bin", help="the meshos binary to attack")
    p.add_argument("--only", help="comma-separated attack names (default: all)")
    p.add_argument("--out", help="JSON results file (default attacks-<bin name>.json)")
    p.add_argument("--as-limit", type=float, default=6e9,
                   help="address-space limit of the server in bytes (default 6e9)")
    p.add_argument("--list", action="store_true", help="list the attacks")
    p.add_argument("--compare", nargs=2, metavar=("BEFORE", "AFTER"),
                   help="print a side-by-side table of two result files")
    args = p.parse_args()
    if args.list:
        print("\n".join(ATTACKS))
        return
    if args.compare:
        print(compare(*args.compare))
        return
    if not args.bin:
        p.error("--bin is required")
    names = args.only.split(",") if args.only else list(ATTACKS)
    unknown = [n for n in names if n not in ATTACKS]
    if unknown:
        p.error(f"unknown attack(s) {unknown}; --list shows them")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the cleanups
    fds = raise_fd_limit()  # the server inherits it
    if fds < 21_000:  # the flood's client sockets are spread over processes; the server is not
        print(f"note: the server runs with {fds} file descriptors (ulimit -n)", file=sys.stderr)
    bin_path = str(Path(args.bin).resolve())
    out = Path(args.out or f"attacks-{Path(bin_path).name}.json")
    results = []
    for name in names:
        print(f"== {name}", file=sys.stderr, flush=True)
        r = run_one(bin_path, name, int(args.as_limit))
        print(f"   {json.dumps({k: v for k, v in r.items() if k != 'details'})}", file=sys.stderr,
              flush=True)
        results.append(r)
        out.write_text(json.dumps({"bin": bin_path, "results": results}, indent=1))
        time.sleep(2)  # let sockets in TIME_WAIT and the page cache settle
    print(table(results))


if __name__ == "__main__":
    main()
