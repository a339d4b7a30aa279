"""Smoke tests of poisoned_server.py over raw JSON-RPC (what a gateway sends), stdio and
streamable HTTP. Not part of CI (bench/ is run by hand):

    ~/.cache/meshos-venv/bin/python -m pytest -q bench/toolscan/test_poisoned_server.py
"""

import json
import pathlib
import socket
import subprocess
import sys
import time
import urllib.request

HERE = pathlib.Path(__file__).resolve().parent
SERVER = HERE / "poisoned_server.py"
CORPUS = json.loads((HERE / "corpus.json").read_text())
PROTOCOL = "2025-06-18"


def corpus_tool(entry_id):
    return next(e["tool"] for e in CORPUS if e["id"] == entry_id)


class Stdio:
    def __init__(self, *args):
        self.proc = subprocess.Popen(
            [sys.executable, str(SERVER), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
        )
        self.next_id = 0
        self.notifications = []

    def send(self, message):
        self.proc.stdin.write(json.dumps(message) + "\n")
        self.proc.stdin.flush()

    def request(self, method, params=None):
        self.next_id += 1
        self.send({"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params or {}})
        while True:
            line = self.proc.stdout.readline()
            assert line, self.proc.stderr.read()
            msg = json.loads(line)
            if msg.get("id") == self.next_id:
                return msg
            self.notifications.append(msg)

    def initialize(self):
        r = self.request(
            "initialize",
            {"protocolVersion": PROTOCOL, "capabilities": {},
             "clientInfo": {"name": "test", "version": "0"}},
        )
        self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        return r

    def close(self):
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def test_serves_one_servers_definitions_verbatim_and_echoes_calls():
    s = Stdio("--server", "calc")
    try:
        init = s.initialize()
        assert init["result"]["capabilities"]["tools"]["listChanged"] is True
        tools = s.request("tools/list")["result"]["tools"]
        assert tools == [corpus_tool("sh-invariant-recipient-swap")]
        r = s.request("tools/call", {"name": "add", "arguments": {"a": 1, "b": 2}})
        assert r["result"]["content"][0]["text"] == 'add called with {"a": 1, "b": 2}'
        r = s.request("tools/call", {"name": "nope", "arguments": {}})
        assert r["result"]["isError"] is True
    finally:
        s.close()


def test_hidden_characters_survive_the_wire():
    s = Stdio("--server", "weather")
    try:
        s.initialize()
        tools = s.request("tools/list")["result"]["tools"]
        assert tools == [corpus_tool("tp-unicode-tags")]
        assert any(0xE0000 <= ord(c) <= 0xE007F for c in tools[0]["description"])
    finally:
        s.close()


def test_rug_pull_switches_to_v2_and_notifies():
    s = Stdio("--server", "facts", "--rug-pull-after", "1")
    try:
        s.initialize()
        first = s.request("tools/list")["result"]["tools"]
        assert first == [corpus_tool("rp-whatsapp-fact-v1")]
        time.sleep(0.3)
        s.request("ping")
        assert any(n.get("method") == "notifications/tools/list_changed" for n in s.notifications)
        second = s.request("tools/list")["result"]["tools"]
        assert second == [corpus_tool("rp-whatsapp-fact-v2")]
    finally:
        s.close()


def test_without_rug_pull_v1_is_served_forever():
    s = Stdio("--server", "facts")
    try:
        s.initialize()
        for _ in range(3):
            assert s.request("tools/list")["result"]["tools"] == [corpus_tool("rp-whatsapp-fact-v1")]
        assert not s.notifications
    finally:
        s.close()


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def post(url, message, session=None):
    headers = {
        "Content-Type": "application/json",
        "Accept": "application/json, text/event-stream",
        "MCP-Protocol-Version": PROTOCOL,
    }
    if session:
        headers["Mcp-Session-Id"] = session
    req = urllib.request.Request(url, json.dumps(message).encode(), headers)
    with urllib.request.urlopen(req, timeout=10) as resp:
        body = resp.read().decode()
        sid = resp.headers.get("Mcp-Session-Id") or session
    if not body:
        return None, sid
    if body.lstrip().startswith("{"):
        return json.loads(body), sid
    data = [line[5:].strip() for line in body.splitlines() if line.startswith("data:")]
    return json.loads(data[-1]), sid


def test_streamable_http_lists_all_servers_tools():
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, str(SERVER), "--server", "all", "--http", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    url = f"http://127.0.0.1:{port}/mcp"
    try:
        deadline = time.time() + 20
        while True:
            try:
                init, sid = post(url, {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                    "protocolVersion": PROTOCOL, "capabilities": {},
                    "clientInfo": {"name": "test", "version": "0"}}})
                break
            except OSError:
                assert time.time() < deadline, "server did not start"
                time.sleep(0.2)
        assert init["result"]["capabilities"]["tools"]["listChanged"] is True
        post(url, {"jsonrpc": "2.0", "method": "notifications/initialized"}, sid)
        listed, _ = post(url, {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}, sid)
        names = [t["name"] for t in listed["result"]["tools"]]
        assert len(names) == len(set(names))
        assert "send_email" in names and "get_fact_of_the_day" in names
    finally:
        proc.terminate()
        proc.wait(timeout=10)
