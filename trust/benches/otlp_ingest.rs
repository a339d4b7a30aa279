//! Ingest throughput on one core, normalise + score: decode an `ExportTraceServiceRequest` and
//! map its spans onto events, for binary protobuf, protobuf + gzip and OTLP/JSON bodies of
//! realistic GenAI spans (16 span attributes, 6 resource attributes, 512 spans per export as the
//! SDKs' batch processors send by default); then the same with each event folded into its
//! agent's live trust state and drift detectors and every touched agent re-scored once per
//! batch, as the server does. The REST door (a JSON array of the same events, parsed straight
//! into `EventInput`s as the server parses a well-formed batch) is measured the same way.
//!
//! Run: `cargo bench -p meshos-trust --bench otlp_ingest` (optionally `-- <seconds per case>`).
//! Rates are per CPU-second of the benchmark thread, so a busy machine slows the run, not the
//! figure (much).

use std::collections::HashMap;
use std::hint::black_box;
use std::io::Write;
use std::time::{Duration, Instant};

use meshos_trust::drift::{AgentDrift, DriftConfig};
use meshos_trust::otlp::common::{AnyValue, InstrumentationScope, KeyValue, any_value::Value};
use meshos_trust::otlp::resource::Resource;
use meshos_trust::otlp::trace::{ResourceSpans, ScopeSpans, Span, Status};
use meshos_trust::otlp::{
    Encoding, ExportTraceServiceRequest, decode_request, decompress, map_request,
};
use meshos_trust::{AgentTrust, EventInput, EventSample, TrustParams};
use prost::Message;

const SPANS_PER_EXPORT: usize = 512;

fn kv(key: &str, value: Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

fn s(key: &str, v: &str) -> KeyValue {
    kv(key, Value::StringValue(v.into()))
}

fn genai_span(n: usize) -> Span {
    let start = 1_800_000_000_000_000_000u64 + n as u64 * 1_000_000;
    let (name, op_attrs) = if n % 4 == 3 {
        (
            "execute_tool get_weather".to_string(),
            vec![
                s("gen_ai.operation.name", "execute_tool"),
                s("gen_ai.tool.name", "get_weather"),
                s("gen_ai.tool.call.id", "call_mszuSIzqtI65i1wAUOE8w5H4"),
                s("gen_ai.tool.type", "function"),
            ],
        )
    } else {
        (
            "chat gpt-4o".to_string(),
            vec![
                s("gen_ai.operation.name", "chat"),
                s("gen_ai.request.model", "gpt-4o"),
                s("gen_ai.response.model", "gpt-4o-2024-08-06"),
                kv("gen_ai.request.temperature", Value::DoubleValue(0.2)),
            ],
        )
    };
    let mut attributes = vec![
        s("gen_ai.provider.name", "openai"),
        s("gen_ai.agent.id", &format!("agent-{}", n % 16)),
        s("gen_ai.agent.name", "travel-planner"),
        s("gen_ai.conversation.id", &format!("conv_{:08x}", n / 8)),
        kv(
            "gen_ai.usage.input_tokens",
            Value::IntValue(1200 + n as i64),
        ),
        kv("gen_ai.usage.output_tokens", Value::IntValue(180)),
        kv("gen_ai.request.max_tokens", Value::IntValue(1024)),
        s("gen_ai.response.id", &format!("chatcmpl-{n:012}")),
        s("gen_ai.response.finish_reasons", "stop"),
        s("server.address", "api.openai.com"),
        kv("server.port", Value::IntValue(443)),
        s("gen_ai.output.type", "text"),
    ];
    attributes.extend(op_attrs);
    Span {
        trace_id: (0..16).map(|b| (b * 7 + n) as u8).collect(),
        span_id: (0..8).map(|b| (b * 13 + n) as u8).collect(),
        parent_span_id: (0..8).map(|b| (b * 3 + n) as u8).collect(),
        name,
        kind: 3,
        start_time_unix_nano: start,
        end_time_unix_nano: start + 850_000_000,
        attributes,
        status: (n % 10 == 9).then(|| Status {
            code: 2,
            message: "rate limited".into(),
        }),
        ..Default::default()
    }
}

fn export() -> ExportTraceServiceRequest {
    let resource = vec![
        s("service.name", "travel-planner"),
        s("service.version", "1.4.2"),
        s("deployment.environment.name", "prod"),
        s("cloud.provider", "aws"),
        s("cloud.region", "eu-west-1"),
        s("telemetry.sdk.language", "python"),
    ];
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: resource,
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "opentelemetry.instrumentation.openai_v2".into(),
                    version: "2.1b0".into(),
                    ..Default::default()
                }),
                spans: (0..SPANS_PER_EXPORT).map(genai_span).collect(),
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// Nanoseconds this thread has spent on a CPU (Linux schedstat), so that figures stay "per core"
/// when other processes compete for the machine; wall time where that is not available.
fn thread_cpu_ns() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

/// Runs `ingest` for about `budget` of wall time and returns spans per CPU-second of this thread
/// (per wall second without schedstat), and the rounds run.
fn measure(budget: Duration, mut ingest: impl FnMut() -> usize) -> (f64, usize) {
    // Warm-up: caches, allocator.
    for _ in 0..3 {
        black_box(ingest());
    }
    let started = Instant::now();
    let cpu_start = thread_cpu_ns();
    let (mut spans, mut rounds) = (0usize, 0usize);
    while started.elapsed() < budget {
        spans += ingest();
        rounds += 1;
    }
    let seconds = match (cpu_start, thread_cpu_ns()) {
        (Some(a), Some(b)) if b > a => (b - a) as f64 / 1e9,
        _ => started.elapsed().as_secs_f64(),
    };
    (spans as f64 / seconds, rounds)
}

/// The live trust state of the agents a run touches, as the server keeps it.
#[derive(Default)]
struct Live {
    agents: HashMap<String, (AgentTrust, AgentDrift)>,
    params: TrustParams,
    drift: DriftConfig,
    clock_ms: i64,
}

impl Live {
    /// Folds a batch into its agents' state and re-scores each touched agent once.
    fn score_batch<'a>(&mut self, events: impl Iterator<Item = &'a EventInput>) -> usize {
        let mut touched: Vec<&'a str> = Vec::new();
        let mut n = 0;
        self.clock_ms += 1_000;
        for e in events {
            n += 1;
            let sample = EventSample {
                at_ms: self.clock_ms,
                kind: e.kind.clone(),
                outcome: e.outcome,
                latency_ms: e.latency_ms,
                input_tokens: e.input_tokens,
                output_tokens: e.output_tokens,
                cost_usd: e.cost_usd,
            };
            let (trust, drift) = self.agents.entry(e.agent_id.clone()).or_default();
            trust.observe_event(&sample, &self.params);
            black_box(drift.observe(&sample, &self.drift));
            if !touched.contains(&e.agent_id.as_str()) {
                touched.push(&e.agent_id);
            }
        }
        for agent in touched {
            if let Some((trust, _)) = self.agents.get(agent) {
                black_box(trust.summary(0, self.clock_ms, &self.params));
            }
        }
        n
    }
}

fn main() {
    let seconds: f64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(3.0);
    let budget = Duration::from_secs_f64(seconds);
    let request = export();
    let protobuf = request.encode_to_vec();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&protobuf).expect("gzip into memory");
    let gzipped = gz.finish().expect("gzip into memory");
    let json = serde_json::to_vec(&request).expect("the request serialises as OTLP/JSON");

    // Sanity: every span maps.
    let mapped = map_request(&decode_request(&json, Encoding::Json).expect("own JSON decodes"));
    assert_eq!(
        mapped.events.len(),
        SPANS_PER_EXPORT,
        "{:?}",
        mapped.rejected
    );

    let decoded = decode_request(&protobuf, Encoding::Protobuf).expect("own protobuf decodes");
    let (map_only, _) = measure(budget, || {
        let mapped = map_request(&decoded);
        let n = mapped.events.len();
        black_box(mapped);
        n
    });
    println!(
        "OTLP ingest, decode + map, one core, {SPANS_PER_EXPORT} spans/export, {} attributes/span",
        request.resource_spans[0].scope_spans[0].spans[0]
            .attributes
            .len()
    );
    let cases: [(&str, &[u8], Encoding, Option<&str>); 3] = [
        ("protobuf", &protobuf, Encoding::Protobuf, None),
        ("protobuf+gzip", &gzipped, Encoding::Protobuf, Some("gzip")),
        ("json", &json, Encoding::Json, None),
    ];
    println!(
        "{:>14}: map only (already decoded) {map_only:>9.0} spans/s",
        "map"
    );
    for (name, body, encoding, coding) in cases {
        let (decode_only, _) = measure(budget, || {
            let raw = decompress(body, coding, 64 << 20).expect("decompresses");
            let req = decode_request(&raw, encoding).expect("decodes");
            black_box(&req);
            SPANS_PER_EXPORT
        });
        let (full, rounds) = measure(budget, || {
            let raw = decompress(body, coding, 64 << 20).expect("decompresses");
            let req = decode_request(&raw, encoding).expect("decodes");
            let mapped = map_request(&req);
            black_box(&mapped);
            mapped.events.len()
        });
        let mut live = Live::default();
        let (scored, _) = measure(budget, || {
            let raw = decompress(body, coding, 64 << 20).expect("decompresses");
            let req = decode_request(&raw, encoding).expect("decodes");
            let mapped = map_request(&req);
            live.score_batch(mapped.events.iter().map(|m| &m.event))
        });
        println!(
            "{name:>14}: {:>7} bytes/export ({:>4} B/span)  decode {:>9.0}  decode+map {:>9.0}  \
             decode+map+score {:>9.0} spans/s  ({rounds} exports)",
            body.len(),
            body.len() / SPANS_PER_EXPORT,
            decode_only,
            full,
            scored,
        );
    }

    // The REST door: the same events as a JSON array, parsed as the server parses a batch.
    let events: Vec<EventInput> = mapped.events.into_iter().map(|m| m.event).collect();
    let rest_body = serde_json::to_vec(&events).expect("events serialise");
    let mut live = Live::default();
    let (rest, _) = measure(budget, || {
        let parsed: Vec<EventInput> = serde_json::from_slice(&rest_body).expect("the batch parses");
        live.score_batch(parsed.iter())
    });
    println!(
        "{:>14}: {:>7} bytes/batch  ({:>4} B/event) parse+score {rest:>9.0} events/s",
        "REST JSON",
        rest_body.len(),
        rest_body.len() / events.len(),
    );
}
