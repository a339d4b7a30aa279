"""OTLP/HTTP trace ingest (POST /v1/traces): the official OpenTelemetry Python SDK and plain HTTP.

Spans follow the OpenTelemetry GenAI semantic conventions (current and older names) and
OpenInference's; each becomes one event of the token's tenant, which moves the agent's trust score.
"""

from __future__ import annotations

import gzip
import json
import secrets

import pytest
from google.rpc import status_pb2
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExportResult
from opentelemetry.trace import SpanKind, Status, StatusCode

from meshos_e2e import bearer, call, call_ok, http_client, http_request, tool_error


class RecordingExporter(OTLPSpanExporter):
    """The SDK's OTLP/HTTP (protobuf) exporter, remembering what each export returned."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.results: list[SpanExportResult] = []

    def export(self, spans):
        result = super().export(spans)
        self.results.append(result)
        return result


class OtelPipeline:
    """A TracerProvider of its own (not the global one) exporting to a meshos server."""

    def __init__(self, server, token: str, service: str = "otel-e2e-svc", compression=Compression.NoCompression):
        self.exporter = RecordingExporter(
            endpoint=f"{server.base_url}/v1/traces",
            headers=bearer(token),
            timeout=30,
            compression=compression,
        )
        resource = Resource.create(
            {"service.name": service, "cloud.provider": "aws", "cloud.region": "eu-west-1"}
        )
        self.provider = TracerProvider(resource=resource)
        self.provider.add_span_processor(BatchSpanProcessor(self.exporter))
        self.tracer = self.provider.get_tracer("meshos.e2e", "1.0")

    def span(self, name: str, attributes: dict, error: str | None = None) -> None:
        with self.tracer.start_as_current_span(name, kind=SpanKind.CLIENT, attributes=attributes) as span:
            if error:
                span.set_attribute("error.type", error)
                span.set_status(Status(StatusCode.ERROR, error))

    def flush(self) -> None:
        assert self.provider.force_flush(30_000), "force_flush timed out"
        assert self.exporter.results, "the exporter sent nothing"
        assert all(r == SpanExportResult.SUCCESS for r in self.exporter.results), self.exporter.results
        self.exporter.results.clear()

    def shutdown(self) -> None:
        self.provider.shutdown()


def chat_attributes(agent: str, input_tokens: int = 1200, output_tokens: int = 150) -> dict:
    return {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o",
        "gen_ai.response.model": "gpt-4o-2024-08-06",
        "gen_ai.usage.input_tokens": input_tokens,
        "gen_ai.usage.output_tokens": output_tokens,
        "gen_ai.agent.id": agent,
        "gen_ai.conversation.id": "conv_e2e",
        "gen_ai.request.temperature": 0.2,
        "gen_ai.response.finish_reasons": ["stop"],
    }


async def events_of(server, token: str, agent: str) -> list[dict]:
    async with http_client(server.mcp_url, token) as client:
        ev = await call_ok(client, "evidence_fetch", {"agent_id": agent, "limit": 200})
    return [r["record"] for r in ev["records"] if r["record_type"] == "event"]


def post_traces(server, token: str | None, body: bytes | str, content_type: str, extra: dict | None = None):
    headers = {"Content-Type": content_type, **(bearer(token) if token else {}), **(extra or {})}
    return http_request("POST", f"{server.base_url}/v1/traces", body, headers)


@pytest.mark.anyio
async def test_sdk_genai_spans_move_the_trust_score_and_errors_lower_it(fleet, uid):
    agent = f"otel-{uid}"
    otel = OtelPipeline(fleet.server, fleet.operator)
    try:
        for n in range(3):
            otel.span("chat gpt-4o", chat_attributes(agent, input_tokens=1000 + n))
        for _ in range(2):
            otel.span(
                "execute_tool get_weather",
                {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "get_weather", "gen_ai.agent.id": agent},
            )
        otel.span(f"invoke_agent {agent}", {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.id": agent})
        otel.flush()

        async with http_client(fleet.server.mcp_url, fleet.operator) as client:
            before = await call_ok(client, "trust_score", {"agent_id": agent})
        assert before["agent_id"] == agent
        assert before["basis"]["events"] == 6, before
        assert before["basis"]["error_events"] == 0, before

        for _ in range(4):
            otel.span("chat gpt-4o", chat_attributes(agent), error="rate_limited")
        otel.flush()
        async with http_client(fleet.server.mcp_url, fleet.operator) as client:
            after = await call_ok(client, "trust_score", {"agent_id": agent})
    finally:
        otel.shutdown()

    assert after["basis"]["events"] == 10, after
    assert after["basis"]["error_events"] == 4, after
    assert after["components"]["agent_reputation"] < before["components"]["agent_reputation"], (before, after)
    assert after["score"] < before["score"], (before["score"], after["score"])
    assert any("error" in line and "4" in line for line in after["explanation"]), after["explanation"]

    events = await events_of(fleet.server, fleet.operator, agent)
    kinds = sorted(e["kind"] for e in events)
    assert kinds == ["agent_invocation"] + ["llm_call"] * 7 + ["tool_call"] * 2, kinds
    chats = [e for e in events if e["kind"] == "llm_call"]
    assert {e["outcome"] for e in chats} == {"ok", "error"}
    assert sorted(e["input_tokens"] for e in chats if e["outcome"] == "ok") == [1000, 1001, 1002]
    for e in chats:
        assert e["model"] == "gpt-4o-2024-08-06", e
        assert e["output_tokens"] == 150, e
        assert e["region"] == "aws:eu-west-1", e
        assert e["latency_ms"] is not None and e["latency_ms"] >= 0, e
        attrs = e["attributes"]
        assert attrs["gen_ai.provider.name"] == "openai", attrs
        assert attrs["gen_ai.response.finish_reasons"] == ["stop"], attrs
        assert attrs["service.name"] == "otel-e2e-svc", attrs
        assert len(attrs["otel.trace_id"]) == 32 and len(attrs["otel.span_id"]) == 16, attrs
    tools = [e for e in events if e["kind"] == "tool_call"]
    assert all(e["tool"] == "get_weather" for e in tools), tools
    failed = [e for e in chats if e["outcome"] == "error"]
    assert all(e["attributes"]["error.type"] == "rate_limited" for e in failed), failed


@pytest.mark.anyio
async def test_sdk_older_genai_and_openinference_names_land_with_tokens(fleet, uid):
    old_agent, oi_agent = f"otel-old-{uid}", f"otel-oi-{uid}"
    otel = OtelPipeline(fleet.server, fleet.operator, compression=Compression.Gzip)
    try:
        otel.span(
            "chat claude-3-5-sonnet",
            {
                "gen_ai.system": "anthropic",
                "gen_ai.operation.name": "chat",
                "gen_ai.request.model": "claude-3-5-sonnet-20240620",
                "gen_ai.usage.prompt_tokens": 321,
                "gen_ai.usage.completion_tokens": 45,
                "gen_ai.agent.name": old_agent,
            },
        )
        otel.span(
            "ChatCompletion",
            {
                "openinference.span.kind": "LLM",
                "llm.model_name": "gpt-4-0613",
                "llm.system": "openai",
                "llm.token_count.prompt": 25,
                "llm.token_count.completion": 8,
                "llm.token_count.total": 33,
                "llm.cost.total": 0.0066,
                "agent.name": oi_agent,
            },
        )
        otel.span("web_search", {"openinference.span.kind": "TOOL", "tool.name": "web_search", "agent.name": oi_agent})
        otel.flush()
    finally:
        otel.shutdown()

    (old,) = await events_of(fleet.server, fleet.operator, old_agent)
    assert (old["kind"], old["input_tokens"], old["output_tokens"]) == ("llm_call", 321, 45), old
    assert old["model"] == "claude-3-5-sonnet-20240620", old
    assert old["attributes"]["gen_ai.system"] == "anthropic", old

    oi = {e["kind"]: e for e in await events_of(fleet.server, fleet.operator, oi_agent)}
    assert set(oi) == {"llm_call", "tool_call"}, oi
    llm = oi["llm_call"]
    assert (llm["input_tokens"], llm["output_tokens"], llm["model"]) == (25, 8, "gpt-4-0613"), llm
    assert llm["cost_usd"] == pytest.approx(0.0066), llm
    assert llm["attributes"]["llm.token_count.total"] == 33, llm
    assert oi["tool_call"]["tool"] == "web_search", oi


def json_span(trace_id: str, span_id: str, name: str, attributes: dict) -> dict:
    def value(v):
        if isinstance(v, bool):
            return {"boolValue": v}
        if isinstance(v, int):
            return {"intValue": str(v)}
        if isinstance(v, float):
            return {"doubleValue": v}
        return {"stringValue": v}

    return {
        "traceId": trace_id,
        "spanId": span_id,
        "name": name,
        "kind": 3,
        "startTimeUnixNano": "1800000000000000000",
        "endTimeUnixNano": "1800000000420000000",
        "attributes": [{"key": k, "value": value(v)} for k, v in attributes.items()],
    }


def json_export(spans: list[dict], resource: dict | None = None) -> dict:
    return {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [{"key": k, "value": {"stringValue": v}} for k, v in (resource or {}).items()]
                },
                "scopeSpans": [{"scope": {"name": "hand-written"}, "spans": spans}],
            }
        ]
    }


@pytest.mark.anyio
async def test_otlp_json_with_hex_ids_and_partial_success(fleet, uid):
    agent = f"otel-json-{uid}"
    trace_id = secrets.token_hex(16).upper()  # OTLP/JSON ids are case-insensitive hex
    body = json_export(
        [
            json_span(trace_id, "00F067AA0BA902B7", "chat gpt-4o-mini", {
                "gen_ai.agent.id": agent,
                "gen_ai.usage.input_tokens": 77,
                "gen_ai.request.model": "gpt-4o-mini",
            }),
            json_span(trace_id, "00F067AA0BA902B8", "chat orphan", {"gen_ai.request.model": "gpt-4o-mini"}),
        ]
    )
    status, headers, raw = post_traces(fleet.server, fleet.operator, json.dumps(body), "application/json")
    assert status == 200, (status, raw[:500])
    assert headers.get("content-type", "").startswith("application/json"), headers
    reply = json.loads(raw)
    partial = reply["partialSuccess"]
    assert int(partial["rejectedSpans"]) == 1, reply
    assert "no agent" in partial["errorMessage"] and "00f067aa0ba902b8" in partial["errorMessage"], reply

    (event,) = await events_of(fleet.server, fleet.operator, agent)
    assert event["input_tokens"] == 77 and event["model"] == "gpt-4o-mini", event
    assert event["latency_ms"] == pytest.approx(420.0), event
    assert event["attributes"]["otel.trace_id"] == trace_id.lower(), event
    assert event["attributes"]["otel.span_id"] == "00f067aa0ba902b7", event

    # A fully accepted export leaves partialSuccess unset.
    full = json_export([json_span(trace_id, "00F067AA0BA902B9", "chat x", {"gen_ai.agent.id": agent})])
    status, _, raw = post_traces(fleet.server, fleet.operator, json.dumps(full), "application/json")
    assert status == 200 and json.loads(raw) == {}, (status, raw)


@pytest.mark.anyio
async def test_a_span_the_service_refuses_is_rejected_alone(fleet, uid):
    """Spans are stored in chunks, all or none: one span whose event the service refuses (a NUL
    in an attribute key, found by fuzzing; a cost over the limit) once failed its whole chunk."""
    agent = f"otel-refused-{uid}"
    trace_id = secrets.token_hex(16)
    spans = [
        json_span(trace_id, "00000000000000a1", "chat ok", {"gen_ai.agent.id": agent}),
        json_span(trace_id, "00000000000000a2", "chat nul", {"gen_ai.agent.id": agent, "bad\u0000key": "x"}),
        json_span(trace_id, "00000000000000a3", "chat dear", {"gen_ai.agent.id": agent, "llm.cost.total": 1e300}),
        json_span(trace_id, "00000000000000a4", "chat ok too", {"gen_ai.agent.id": agent}),
    ]
    status, _, raw = post_traces(fleet.server, fleet.operator, json.dumps(json_export(spans)), "application/json")
    assert status == 200, (status, raw[:500])
    partial = json.loads(raw)["partialSuccess"]
    assert int(partial["rejectedSpans"]) == 2, partial
    assert "NUL" in partial["errorMessage"] and "cost_usd" in partial["errorMessage"], partial
    stored = await events_of(fleet.server, fleet.operator, agent)
    assert sorted(e["attributes"]["otel.span_id"] for e in stored) == ["00000000000000a1", "00000000000000a4"], stored


def protobuf_export(agents: list[str]) -> ExportTraceServiceRequest:
    spans = []
    for n, agent in enumerate(agents):
        spans.append(
            Span(
                trace_id=bytes(range(16)),
                span_id=bytes([n + 1] * 8),
                name="chat gpt-4o",
                kind=Span.SPAN_KIND_CLIENT,
                start_time_unix_nano=1_800_000_000_000_000_000,
                end_time_unix_nano=1_800_000_000_100_000_000,
                attributes=[
                    KeyValue(key="gen_ai.agent.id", value=AnyValue(string_value=agent)),
                    KeyValue(key="gen_ai.usage.input_tokens", value=AnyValue(int_value=10)),
                ],
            )
        )
    return ExportTraceServiceRequest(resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=spans)])])


@pytest.mark.anyio
async def test_agent_token_may_only_report_its_own_agent(meshos, make_server, uid):
    own = f"otel-own-{uid}"
    token = meshos.token("acme", "agent", agent=own)
    operator = meshos.token("acme", "operator")
    server = make_server()
    body = gzip.compress(protobuf_export([own, f"someone-else-{uid}", own]).SerializeToString())
    status, headers, raw = post_traces(
        server, token, body, "application/x-protobuf", {"Content-Encoding": "gzip"}
    )
    assert status == 200, (status, raw[:500])
    assert headers.get("content-type") == "application/x-protobuf", headers
    reply = ExportTraceServiceResponse.FromString(raw)
    assert reply.partial_success.rejected_spans == 1, reply
    assert f"someone-else-{uid}" in reply.partial_success.error_message, reply
    assert len(await events_of(server, operator, own)) == 2
    async with http_client(server.mcp_url, operator) as client:
        other = await call(client, "evidence_fetch", {"agent_id": f"someone-else-{uid}"})
    assert "unknown agent_id" in tool_error(other, "the rejected span's agent"), "nothing stored for it"


@pytest.mark.parametrize(
    "body,content_type,needle",
    [
        pytest.param(b"\xff\xff\xff\xff not protobuf", "application/x-protobuf", "protobuf", id="protobuf-garbage"),
        pytest.param(b"this is not json", "application/json", "JSON", id="json-garbage"),
        pytest.param(
            json.dumps(json_export([json_span("zz" * 16, "00f067aa0ba902b7", "x", {})])).encode(),
            "application/json",
            "traceId",
            id="json-bad-hex-id",
        ),
    ],
)
def test_malformed_payload_is_400_with_a_status_naming_the_problem(fleet, body, content_type, needle):
    status, headers, raw = post_traces(fleet.server, fleet.operator, body, content_type)
    assert status == 400, (status, raw[:500])
    assert headers.get("content-type", "").startswith(content_type), headers
    if content_type == "application/json":
        message = json.loads(raw)["message"]
    else:
        message = status_pb2.Status.FromString(raw).message
    assert needle in message, message
    fleet.server.assert_alive()


def test_unsupported_content_type_is_415_and_no_token_is_401(fleet):
    status, _, raw = post_traces(fleet.server, fleet.operator, b"hello", "text/plain")
    assert status == 415, (status, raw)
    assert "application/x-protobuf" in json.loads(raw)["message"], raw
    status, _, raw = post_traces(fleet.server, None, json.dumps(json_export([])), "application/json")
    assert status == 401, (status, raw)


def test_json_with_snake_case_keys_is_acknowledged_with_a_warning(fleet, uid):
    body = {"resource_spans": [{"scope_spans": [{"spans": [json_span("ab" * 16, "cd" * 8, "chat", {"gen_ai.agent.id": f"snake-{uid}"})]}]}]}
    status, _, raw = post_traces(fleet.server, fleet.operator, json.dumps(body), "application/json")
    assert status == 200, (status, raw)
    partial = json.loads(raw)["partialSuccess"]
    assert int(partial["rejectedSpans"]) == 0 and "lowerCamelCase" in partial["errorMessage"], partial


def _peak_rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def _empty_spans_body(n: int) -> bytes:
    """`resource_spans { scope_spans { spans × n } }` with every span empty (2 bytes each)."""

    def ld(field: int, payload: bytes) -> bytes:
        out, length = bytearray([field << 3 | 2]), len(payload)
        while True:
            byte, length = length & 0x7F, length >> 7
            out.append(byte | (0x80 if length else 0))
            if not length:
                return bytes(out) + payload

    return ld(1, ld(2, b"\x12\x00" * n))


@pytest.mark.parametrize("spans", [2_000_000, 33_000_000], ids=["2M", "33M"])
def test_a_small_gzip_body_full_of_empty_spans_is_refused_without_the_memory(fleet, spans):
    """A 64 KB gzip body inflating to 33M empty spans once made the server ask for 8.8 GB and
    abort; its spans are now counted on the encoded bytes and the request refused."""
    body = gzip.compress(_empty_spans_body(spans), compresslevel=9)
    assert len(body) < 100_000
    status, _, raw = post_traces(
        fleet.server, fleet.operator, body, "application/x-protobuf", {"Content-Encoding": "gzip"}
    )
    assert status == 413, (status, raw[:300])
    assert "spans" in status_pb2.Status.FromString(raw).message
    fleet.server.assert_alive()
    assert _peak_rss_kib(fleet.server.proc.pid) < 256 * 1024


def test_json_full_of_empty_spans_is_refused(fleet):
    body = ('{"resourceSpans":[{"scopeSpans":[{"spans":[' + ",".join(["{}"] * 60_000) + "]}]}]}").encode()
    status, _, raw = post_traces(fleet.server, fleet.operator, body, "application/json")
    assert status == 413, (status, raw[:300])
    assert "spans" in json.loads(raw)["message"]
    fleet.server.assert_alive()
