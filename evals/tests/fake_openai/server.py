#!/usr/bin/env python3
"""A small, real OpenAI-compatible HTTP server for the evals tests and bench (stdlib only).

    python3 server.py [--port 0] [--delay-ms 0] [--scenarios FILE.json]

Prints `listening on PORT` on stdout once bound (port 0 picks a free one).

POST /v1/chat/completions
  The answer is deterministic. The last user message picks it:
  - a key of the scenario table (`--scenarios`, a JSON object message -> reply) answers its reply;
  - `CALL name {json}` with tools given answers a tool call to `name` with those arguments
    (`name` must be one of the tools);
  - anything else is echoed back.
  With `response_format` json_schema named `judge_grade` or `judge_pairwise` it plays a judge
  (see `judge()`). `stream: true` answers with SSE chunks (`data: {...}`), the content a word at
  a time, tool calls in pieces, a usage chunk when `stream_options.include_usage`, then
  `data: [DONE]`. Usage counts words.

Fault injection, in the last user message (counted per distinct message, so a retry of the same
request sees the next count):
  [[429 xN retry-after=S]]   the first N requests get 429 with `Retry-After: S` (S may be
                             `date:S` for an HTTP-date S seconds ahead)
  [[500 xN]]                 the first N requests get 500
  [[sleep MS]]               every request waits MS milliseconds before answering
  [[big N]]                  the answer's text is N bytes
Or for every request: `--delay-ms`, or the admin endpoints (`POST /admin/config {"delay_ms"}`,
`POST /admin/scenarios {"scenarios": {message: reply}}` replaces the scenario table, and with
`"for_requests": N` only for the next N answers it gives, `POST /admin/reset`).

POST /agent        an agent endpoint for the HTTP target: {item_id, messages, tools?} ->
                   {text: "ITEM_ID: LAST USER MESSAGE [key=<X-Agent-Key header>]", tool_calls, ...}
GET  /stats        {"requests", "chat_requests", "max_concurrent", "in_flight", "statuses",
                    "last_authorization"}
POST /admin/reset  zero the counters
POST /admin/config {"delay_ms": N}
POST /admin/scenarios {"scenarios": {message: reply}, "for_requests": N?}
"""

import argparse
import email.utils
import json
import re
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_BODY = 16 * 1024 * 1024
FAULT = re.compile(r"\[\[(429|500) x(\d+)(?: retry-after=(date:)?(\d+))?\]\]")
SLEEP = re.compile(r"\[\[sleep (\d+)\]\]")
BIG = re.compile(r"\[\[big (\d+)\]\]")
CALL = re.compile(r"CALL (\w+) (\{.*\})", re.S)


class State:
    def __init__(self, delay_ms, scenarios):
        self.lock = threading.Lock()
        self.delay_ms = delay_ms
        self.scenarios = scenarios
        # A temporary table for the next `flaky_left` scenario answers (a flaky model).
        self.flaky = {}
        self.flaky_left = 0
        self.reset()

    def scenario(self, message):
        with self.lock:
            if self.flaky_left > 0 and message in self.flaky:
                self.flaky_left -= 1
                return self.flaky[message]
        return self.scenarios.get(message, message)

    def reset(self):
        with self.lock:
            self.requests = 0
            self.chat_requests = 0
            self.in_flight = 0
            self.max_concurrent = 0
            self.statuses = {}
            self.seen = {}
            self.last_authorization = None

    def enter(self, chat):
        with self.lock:
            self.requests += 1
            if chat:
                self.chat_requests += 1
                self.in_flight += 1
                self.max_concurrent = max(self.max_concurrent, self.in_flight)

    def leave(self, status):
        with self.lock:
            self.in_flight -= 1
            key = str(status)
            self.statuses[key] = self.statuses.get(key, 0) + 1

    def count(self, message):
        with self.lock:
            n = self.seen.get(message, 0) + 1
            self.seen[message] = n
            return n

    def stats(self):
        with self.lock:
            return {
                "requests": self.requests,
                "chat_requests": self.chat_requests,
                "in_flight": self.in_flight,
                "max_concurrent": self.max_concurrent,
                "statuses": dict(self.statuses),
                "last_authorization": self.last_authorization,
            }


def words(text):
    return len(text.split())


def content_text(content):
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def judge(kind, schema, prompt):
    """A deterministic judge over the prompt our judge client sends.

    grade: passes when the output section contains PASS; the score is the schema's maximum
    then, its minimum otherwise.
    pairwise: the output containing BETTER wins; when an output contains BIAS the judge always
    answers "A" (a position bias the swap must catch).
    """
    output = prompt.split("<output>", 1)[-1]
    if kind == "judge_grade":
        score = schema.get("properties", {}).get("score", {})
        hi, lo = score.get("maximum", 1), score.get("minimum", 0)
        ok = "PASS" in output
        return {"score": hi if ok else lo, "passed": ok, "reason": "contains PASS" if ok else "no PASS"}
    a = prompt.split("<output_a>", 1)[-1].split("</output_a>", 1)[0]
    b = prompt.split("<output_b>", 1)[-1].split("</output_b>", 1)[0]
    if "BIAS" in a or "BIAS" in b:
        return {"winner": "A", "reason": "always A"}
    if "BETTER" in a and "BETTER" not in b:
        return {"winner": "A", "reason": "A is better"}
    if "BETTER" in b and "BETTER" not in a:
        return {"winner": "B", "reason": "B is better"}
    return {"winner": "tie", "reason": "equal"}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-openai/1"
    # Headers and body go out in separate writes: with Nagle on, the body waits for the
    # client's delayed ACK (~40 ms per answer on Linux).
    disable_nagle_algorithm = True

    def log_message(self, *args):
        pass

    def done(self, status):
        """Counts the request as finished, once; called just before the last bytes of its
        answer go out, so a client that starts its next request on receiving them is never
        counted twice (max_concurrent is then exact, not one over)."""
        if getattr(self, "counted", True):
            return
        self.counted = True
        self.server.state.leave(status)

    def send_json(self, status, body, headers=None):
        self.done(status)
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def read_body(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            raise ValueError("body too large")
        return self.rfile.read(length) if length else b""

    def do_GET(self):
        state = self.server.state
        state.enter(False)
        if self.path == "/stats":
            self.send_json(200, state.stats())
        else:
            self.send_json(404, {"error": {"message": "not found"}})

    def do_POST(self):
        state = self.server.state
        chat = self.path in ("/v1/chat/completions", "/agent")
        state.enter(chat)
        if chat:
            state.last_authorization = self.headers.get("Authorization")
        self.counted = not chat
        if not chat:
            try:
                body = json.loads(self.read_body() or b"{}")
            except ValueError:
                body = {}
            if self.path == "/admin/reset":
                state.reset()
                self.send_json(200, {"ok": True})
            elif self.path == "/admin/scenarios":
                # The "model" changes under a running server: for good, or with `for_requests`
                # only for the next N answers from the table (then the old table answers again).
                with state.lock:
                    if "for_requests" in body:
                        state.flaky = body.get("scenarios", {})
                        state.flaky_left = int(body["for_requests"])
                    else:
                        state.scenarios = body.get("scenarios", {})
                self.send_json(200, {"ok": True})
            elif self.path == "/admin/config":
                if "delay_ms" in body:
                    state.delay_ms = int(body["delay_ms"])
                self.send_json(200, {"ok": True})
            else:
                self.send_json(404, {"error": {"message": "not found"}})
            return
        status = 200
        try:
            status = self.agent(state) if self.path == "/agent" else self.chat(state)
        except (ValueError, KeyError, TypeError) as e:
            status = 400
            self.send_json(400, {"error": {"message": str(e), "type": "invalid_request_error"}})
        except (BrokenPipeError, ConnectionResetError):
            status = 499
        finally:
            self.done(status)

    def agent(self, state):
        """An agent's endpoint: {item_id, messages} -> {text, tool_calls, tokens, model}; the
        text is `ITEM_ID: LAST USER MESSAGE [key=X-Agent-Key]`."""
        req = json.loads(self.read_body())
        users = [m for m in req["messages"] if m.get("role") == "user"]
        last = content_text(users[-1]["content"]) if users else ""
        text = f"{req['item_id']}: {last} [key={self.headers.get('X-Agent-Key', '')}]"
        calls = [{"name": t["function"]["name"], "arguments": {"item": req["item_id"]}} for t in req.get("tools") or []]
        self.send_json(200, {"text": text, "tool_calls": calls, "input_tokens": words(last), "output_tokens": words(text), "model": "agent-1"})
        return 200

    def chat(self, state):
        req = json.loads(self.read_body())
        messages = req["messages"]
        users = [m for m in messages if m.get("role") == "user"]
        last = content_text(users[-1]["content"]) if users else ""
        n = state.count(last)

        delay = state.delay_ms
        m = SLEEP.search(last)
        if m:
            delay = int(m.group(1))
        if delay:
            time.sleep(delay / 1000.0)

        for m in FAULT.finditer(last):
            code, times = int(m.group(1)), int(m.group(2))
            if n <= times:
                headers = {}
                if m.group(4) is not None:
                    secs = int(m.group(4))
                    if m.group(3):
                        headers["Retry-After"] = email.utils.formatdate(time.time() + secs, usegmt=True)
                    else:
                        headers["Retry-After"] = str(secs)
                kind = "rate_limit_exceeded" if code == 429 else "server_error"
                self.send_json(code, {"error": {"message": f"injected {code} ({n}/{times})", "type": kind}}, headers)
                return code

        text, tool_calls = "", []
        fmt = req.get("response_format") or {}
        big = BIG.search(last)
        call = CALL.search(last)
        if fmt.get("type") == "json_schema":
            js = fmt.get("json_schema", {})
            text = json.dumps(judge(js.get("name"), js.get("schema", {}), "\n".join(content_text(x.get("content")) for x in messages)))
        elif big:
            text = "x" * int(big.group(1))
        elif call and req.get("tools"):
            names = [t.get("function", {}).get("name") for t in req["tools"]]
            name = call.group(1)
            if name not in names:
                raise ValueError(f"no tool named {name}")
            tool_calls = [{"id": f"call_{n}", "type": "function", "function": {"name": name, "arguments": json.dumps(json.loads(call.group(2)))}}]
        else:
            text = state.scenario(last)

        prompt_tokens = sum(words(content_text(x.get("content"))) for x in messages)
        completion_tokens = words(text) + sum(words(c["function"]["arguments"]) for c in tool_calls)
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens, "total_tokens": prompt_tokens + completion_tokens}
        model = req.get("model", "fake")
        created = int(time.time())
        finish = "tool_calls" if tool_calls else "stop"
        if req.get("stream"):
            self.stream(model, created, text, tool_calls, finish, usage, (req.get("stream_options") or {}).get("include_usage"))
            return 200
        message = {"role": "assistant", "content": text if not tool_calls else None}
        if tool_calls:
            message["tool_calls"] = tool_calls
        self.send_json(200, {
            "id": "chatcmpl-fake", "object": "chat.completion", "created": created, "model": model,
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": usage,
        })
        return 200

    def stream(self, model, created, text, tool_calls, finish, usage, include_usage):
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

        def chunk(choices, usage=None):
            body = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": created, "model": model, "choices": choices}
            if include_usage:
                body["usage"] = usage
            self.write_chunk(("data: " + json.dumps(body) + "\n\n").encode())

        chunk([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}])
        pieces = re.findall(r"\S+\s*|\s+", text)
        for p in pieces:
            chunk([{"index": 0, "delta": {"content": p}, "finish_reason": None}])
        for i, call in enumerate(tool_calls):
            args = call["function"]["arguments"]
            half = len(args) // 2
            chunk([{"index": 0, "delta": {"tool_calls": [{"index": i, "id": call["id"], "type": "function", "function": {"name": call["function"]["name"], "arguments": ""}}]}, "finish_reason": None}])
            for part in (args[:half], args[half:]):
                chunk([{"index": 0, "delta": {"tool_calls": [{"index": i, "function": {"arguments": part}}]}, "finish_reason": None}])
        chunk([{"index": 0, "delta": {}, "finish_reason": finish}])
        if include_usage:
            chunk([], usage)
        self.done(200)
        self.write_chunk(b"data: [DONE]\n\n")
        self.write_chunk(b"")

    def write_chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--delay-ms", type=int, default=0)
    ap.add_argument("--scenarios")
    args = ap.parse_args()
    scenarios = {}
    if args.scenarios:
        with open(args.scenarios) as f:
            scenarios = json.load(f)
    server = Server((args.host, args.port), Handler)
    server.state = State(args.delay_ms, scenarios)
    print(f"listening on {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
