//! OTLP/HTTP trace ingest, as pure functions: decode an `ExportTraceServiceRequest` (binary
//! protobuf or OTLP/JSON, optionally gzip- or deflate-compressed), map every span onto one
//! [`EventInput`], and encode the OTLP/HTTP replies (`ExportTraceServiceResponse`,
//! `google.rpc.Status`). It owns no transport, no authorisation and no storage: the HTTP handler
//! decides who may record which agent and stores the events.
//!
//! # Mapping: one span → one event
//!
//! Span attributes are looked up first and resource attributes second (a span attribute wins
//! when both carry the same key). Conventions covered: the OpenTelemetry GenAI semantic
//! conventions (current names and the pre-`gen_ai.provider.name` ones) and OpenInference's.
//!
//! | event field     | source, first present wins |
//! |-----------------|----------------------------|
//! | `agent_id`      | `gen_ai.agent.id`, `gen_ai.agent.name`, `agent.name` (OpenInference), the `{agent}` of a span named `invoke_agent {agent}` / `create_agent {agent}`, resource `service.name` unless it is the SDK default `unknown_service…`. None → the span is rejected; a value that is not a valid id (1-128 of letters, digits, `._-:@/`) → rejected, never silently attributed to another agent. |
//! | `kind`          | see the table below |
//! | `outcome`       | `error` when the span status is ERROR or `error.type` is set, else `ok`; an explicit `meshos.outcome` (`ok`, `error`, `violation`) overrides, any other value rejects the span. |
//! | `latency_ms`    | end − start (absent when either time is missing or end < start) |
//! | `input_tokens`  | `gen_ai.usage.input_tokens`, `gen_ai.usage.prompt_tokens` (old), `llm.token_count.prompt` (OpenInference) |
//! | `output_tokens` | `gen_ai.usage.output_tokens`, `gen_ai.usage.completion_tokens` (old), `llm.token_count.completion` (OpenInference) |
//! | `cost_usd`      | `llm.cost.total` (OpenInference, USD), `gen_ai.usage.cost` (not in the OpenTelemetry conventions, which define no cost attribute; some SDKs emit it in USD) |
//! | `model`         | `gen_ai.response.model`, `gen_ai.request.model`, `llm.response.model_name`, `llm.model_name`, `llm.request.model_name`, `embedding.model_name` |
//! | `tool`          | `gen_ai.tool.name`, `tool.name` (OpenInference), the `{tool}` of a span named `execute_tool {tool}` |
//! | `region`        | resource `cloud.provider` + `:` + `cloud.region` (e.g. `aws:eu-west-1`) when both are set |
//!
//! Token and cost values must be numbers ≥ 0 (integers, whole doubles or numeric strings for
//! tokens); anything else rejects the span with the attribute named. A `model`, `tool` or `region`
//! value that is not a valid id is left out of the typed field (it stays in `attributes`).
//!
//! Kind: the operation is `gen_ai.operation.name`, else the first word of the span name when it
//! is a GenAI operation (`{operation} {target}` is the conventions' span name).
//!
//! | operation                                        | kind               |
//! |--------------------------------------------------|--------------------|
//! | `chat`, `text_completion`, `generate_content`    | `llm_call`         |
//! | `execute_tool`                                   | `tool_call`        |
//! | `invoke_agent`, `create_agent`                   | `agent_invocation` |
//! | `embeddings`                                     | `embedding`        |
//! | without an operation, `openinference.span.kind` `LLM` / `TOOL` / `AGENT` / `EMBEDDING` / `EVALUATOR` | `llm_call` / `tool_call` / `agent_invocation` / `embedding` / `eval` |
//! | any other operation or OpenInference kind, else the span name | lower-cased, characters outside `a-z0-9._-:` → `_`, at most 128 (`span` if nothing is left) |
//!
//! `attributes` keeps every resource and span attribute (values as JSON: arrays, objects for
//! key-value lists, bytes as standard base64), except the span attributes whose value became a
//! typed field above (`service.name` and `cloud.*` stay), plus `otel.trace_id`, `otel.span_id`,
//! `otel.parent_span_id` (hex), `otel.span_name`, `otel.span_kind`, `otel.scope.name`,
//! `otel.status_description` and `otel.start_time_unix_nano` where the span has them.
//!
//! # Content is withheld
//!
//! Events and their attributes go into the evidence ledger, which never holds what agents
//! said or read (policy_check keeps only a keyed hash of content). Attributes that carry
//! prompts, completions, messages, tool arguments/results or retrieved documents
//! ([`CONTENT_KEYS`], [`CONTENT_PREFIXES`]) are therefore replaced by
//! `{"withheld": "content", "bytes": <length of the value as JSON>}`: the record still shows
//! that the span had them and how large they were.

use std::borrow::Cow;
use std::io::Read;

use base64::Engine as _;
use meshos_types::{Outcome, validate_id};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::{Span, span::SpanKind, status::StatusCode};
use prost::Message as _;
use serde_json::{Map, Value as Json};

use crate::EventInput;
pub use crate::otlp_limits::{Counts, DecodeLimits};

pub use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
/// The OTLP message types, for callers that build requests (tests, benches, clients).
pub use opentelemetry_proto::tonic::{
    common::v1 as common, resource::v1 as resource, trace::v1 as trace,
};

/// How an OTLP/HTTP body is encoded; the reply uses the same encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// `application/x-protobuf`: binary protobuf.
    Protobuf,
    /// `application/json`: OTLP/JSON (lowerCamelCase keys, hex trace/span ids, integer enums).
    Json,
}

impl Encoding {
    /// The encoding of a request from its `Content-Type` (parameters such as `charset` ignored).
    pub fn from_content_type(content_type: Option<&str>) -> Result<Self, OtlpError> {
        let raw = content_type.unwrap_or("");
        let media = raw.split(';').next().unwrap_or("").trim();
        if media.eq_ignore_ascii_case("application/x-protobuf")
            || media.eq_ignore_ascii_case("application/protobuf")
        {
            Ok(Encoding::Protobuf)
        } else if media.eq_ignore_ascii_case("application/json") {
            Ok(Encoding::Json)
        } else {
            Err(OtlpError::UnsupportedContentType(raw.to_string()))
        }
    }

    /// The `Content-Type` of a reply in this encoding.
    pub fn content_type(self) -> &'static str {
        match self {
            Encoding::Protobuf => "application/x-protobuf",
            Encoding::Json => "application/json",
        }
    }
}

/// Why an OTLP payload could not be read at all (the whole request fails; compare
/// [`RejectedSpan`], which fails one span).
#[derive(Debug, thiserror::Error)]
pub enum OtlpError {
    #[error("unsupported Content-Type {0:?}; expected application/x-protobuf or application/json")]
    UnsupportedContentType(String),
    #[error("unsupported Content-Encoding {0:?}; expected gzip, deflate or none")]
    UnsupportedContentEncoding(String),
    #[error("body is not valid {coding} data: {message}")]
    Decompress {
        coding: &'static str,
        message: String,
    },
    #[error("body decompresses to more than {limit} bytes; send smaller batches")]
    TooLarge { limit: usize },
    #[error("request holds more than {limit} {what}; send smaller batches")]
    TooManyElements { what: &'static str, limit: usize },
    #[error("body is not a protobuf ExportTraceServiceRequest: {0}")]
    Protobuf(#[from] prost::DecodeError),
    #[error("body is not an OTLP/JSON ExportTraceServiceRequest: {0}")]
    Json(String),
}

impl OtlpError {
    /// The request used a media type or content coding this receiver does not speak
    /// (HTTP 415), as opposed to a body that does not decode (HTTP 400).
    pub fn is_unsupported_media(&self) -> bool {
        matches!(
            self,
            OtlpError::UnsupportedContentType(_) | OtlpError::UnsupportedContentEncoding(_)
        )
    }
}

/// Undoes `Content-Encoding` (`gzip`, `deflate`, `identity` or none), refusing to inflate past
/// `limit` bytes so a small compressed body cannot exhaust memory.
pub fn decompress<'a>(
    body: &'a [u8],
    content_encoding: Option<&str>,
    limit: usize,
) -> Result<Cow<'a, [u8]>, OtlpError> {
    let coding = content_encoding.map(str::trim).unwrap_or("");
    let (name, reader): (&'static str, Box<dyn Read + 'a>) =
        if coding.is_empty() || coding.eq_ignore_ascii_case("identity") {
            return Ok(Cow::Borrowed(body));
        } else if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
            ("gzip", Box::new(flate2::read::MultiGzDecoder::new(body)))
        } else if coding.eq_ignore_ascii_case("deflate") {
            // HTTP's "deflate" is the zlib format (RFC 9110 §8.4.1.2).
            ("deflate", Box::new(flate2::read::ZlibDecoder::new(body)))
        } else {
            return Err(OtlpError::UnsupportedContentEncoding(coding.to_string()));
        };
    let mut out = Vec::with_capacity(body.len().saturating_mul(4).min(limit));
    reader
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| OtlpError::Decompress {
            coding: name,
            message: e.to_string(),
        })?;
    if out.len() > limit {
        return Err(OtlpError::TooLarge { limit });
    }
    Ok(Cow::Owned(out))
}

/// Counts, on the encoded bytes, the spans and messages a request holds, refusing one past
/// `limits`; what decoding it will cost can be estimated from the counts before it is decoded.
pub fn count_request(
    body: &[u8],
    encoding: Encoding,
    limits: &DecodeLimits,
) -> Result<crate::otlp_limits::Counts, OtlpError> {
    match encoding {
        Encoding::Protobuf => crate::otlp_limits::check_protobuf(body, limits),
        Encoding::Json => crate::otlp_limits::check_json(body, limits),
    }
}

/// Decodes an `ExportTraceServiceRequest` within the default [`DecodeLimits`].
pub fn decode_request(
    body: &[u8],
    encoding: Encoding,
) -> Result<ExportTraceServiceRequest, OtlpError> {
    decode_request_within(body, encoding, &DecodeLimits::default())
}

/// Decodes an `ExportTraceServiceRequest` after counting, on the encoded bytes, that it holds
/// no more than `limits` allows. OTLP/JSON errors name the JSON path of the bad field.
pub fn decode_request_within(
    body: &[u8],
    encoding: Encoding,
    limits: &DecodeLimits,
) -> Result<ExportTraceServiceRequest, OtlpError> {
    count_request(body, encoding, limits)?;
    match encoding {
        Encoding::Protobuf => Ok(ExportTraceServiceRequest::decode(body)?),
        Encoding::Json => {
            if let Ok(request) = serde_json::from_slice(body) {
                return Ok(request);
            }
            // Off the fast path: proto3 JSON writers omit empty repeated fields
            // (`"arrayValue": {}`), which the generated serde code refuses, so fill them in and
            // try again; failing that, decode once more tracking the path for the message.
            if let Ok(mut value) = serde_json::from_slice::<Json>(body)
                && fill_omitted_values(&mut value)
                && let Ok(request) = serde_json::from_value(value)
            {
                return Ok(request);
            }
            let mut de = serde_json::Deserializer::from_slice(body);
            let request: ExportTraceServiceRequest =
                serde_path_to_error::deserialize(&mut de).map_err(json_error)?;
            de.end().map_err(|e| OtlpError::Json(e.to_string()))?;
            // Unreachable in practice (the fast path failed on the same bytes); keep the result.
            Ok(request)
        }
    }
}

fn json_error<E: std::fmt::Display>(e: serde_path_to_error::Error<E>) -> OtlpError {
    let path = e.path().to_string();
    if path == "." {
        OtlpError::Json(e.inner().to_string())
    } else {
        OtlpError::Json(format!("at {path}: {}", e.inner()))
    }
}

/// Adds the `values: []` that proto3 JSON leaves out of empty `arrayValue` / `kvlistValue`
/// objects. Returns whether anything changed.
fn fill_omitted_values(value: &mut Json) -> bool {
    let mut changed = false;
    match value {
        Json::Object(map) => {
            for (key, child) in map.iter_mut() {
                if (key == "arrayValue" || key == "kvlistValue")
                    && let Json::Object(list) = child
                    && !list.contains_key("values")
                {
                    list.insert("values".into(), Json::Array(Vec::new()));
                    changed = true;
                }
                changed |= fill_omitted_values(child);
            }
        }
        Json::Array(items) => {
            for item in items {
                changed |= fill_omitted_values(item);
            }
        }
        _ => {}
    }
    changed
}

/// Which span a mapped event or a rejection came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpanRef {
    /// Hex, as OTLP/JSON writes it.
    pub trace_id: String,
    /// Hex, as OTLP/JSON writes it.
    pub span_id: String,
    pub name: String,
}

impl std::fmt::Display for SpanRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Span names are unbounded; a reply message quotes only their start.
        const SHOWN: usize = 80;
        match self.name.char_indices().nth(SHOWN) {
            Some((cut, _)) => write!(f, "span {} ({:?}…)", self.span_id, &self.name[..cut]),
            None => write!(f, "span {} ({:?})", self.span_id, self.name),
        }
    }
}

/// A span that became an event.
#[derive(Debug, Clone)]
pub struct MappedSpan {
    pub span: SpanRef,
    pub event: EventInput,
}

/// A span that could not become a valid event, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedSpan {
    pub span: SpanRef,
    pub reason: String,
}

/// The result of mapping one export request: every span is either in `events` or `rejected`.
#[derive(Debug, Clone, Default)]
pub struct MappedSpans {
    pub events: Vec<MappedSpan>,
    pub rejected: Vec<RejectedSpan>,
}

/// Maps every span of the request (see the module docs for the rules).
pub fn map_request(request: &ExportTraceServiceRequest) -> MappedSpans {
    let mut out = MappedSpans::default();
    for resource_spans in &request.resource_spans {
        let resource_attributes: &[KeyValue] = resource_spans
            .resource
            .as_ref()
            .map_or(&[], |r| r.attributes.as_slice());
        let resource = ResourceContext::new(resource_attributes);
        for scope_spans in &resource_spans.scope_spans {
            let scope_name = scope_spans
                .scope
                .as_ref()
                .map(|s| s.name.as_str())
                .filter(|n| !n.is_empty());
            for span in &scope_spans.spans {
                let span_ref = SpanRef {
                    trace_id: hex::encode(&span.trace_id),
                    span_id: hex::encode(&span.span_id),
                    name: span.name.clone(),
                };
                match map_span(&resource, scope_name, span, &span_ref) {
                    Ok(event) => out.events.push(MappedSpan {
                        span: span_ref,
                        event,
                    }),
                    Err(reason) => out.rejected.push(RejectedSpan {
                        span: span_ref,
                        reason,
                    }),
                }
            }
        }
    }
    out
}

/// What every span of one resource shares, computed once per resource.
struct ResourceContext {
    attributes: Map<String, Json>,
    region: Option<String>,
}

impl ResourceContext {
    fn new(attributes: &[KeyValue]) -> Self {
        let attributes = attributes_to_json(attributes);
        let region = match (
            attributes.get("cloud.provider").and_then(Json::as_str),
            attributes.get("cloud.region").and_then(Json::as_str),
        ) {
            (Some(provider), Some(region)) => {
                let id = format!("{provider}:{region}");
                validate_id("region", &id).is_ok().then_some(id)
            }
            _ => None,
        };
        ResourceContext { attributes, region }
    }
}

const GENAI_OPERATIONS: &[(&str, &str)] = &[
    ("chat", "llm_call"),
    ("text_completion", "llm_call"),
    ("generate_content", "llm_call"),
    ("execute_tool", "tool_call"),
    ("invoke_agent", "agent_invocation"),
    ("create_agent", "agent_invocation"),
    ("embeddings", "embedding"),
];

const OPENINFERENCE_KINDS: &[(&str, &str)] = &[
    ("LLM", "llm_call"),
    ("TOOL", "tool_call"),
    ("AGENT", "agent_invocation"),
    ("EMBEDDING", "embedding"),
    ("EVALUATOR", "eval"),
];

const AGENT_KEYS: &[&str] = &["gen_ai.agent.id", "gen_ai.agent.name", "agent.name"];
const MODEL_KEYS: &[&str] = &[
    "gen_ai.response.model",
    "gen_ai.request.model",
    "llm.response.model_name",
    "llm.model_name",
    "llm.request.model_name",
    "embedding.model_name",
];
const TOOL_KEYS: &[&str] = &["gen_ai.tool.name", "tool.name"];
const INPUT_TOKEN_KEYS: &[&str] = &[
    "gen_ai.usage.input_tokens",
    "gen_ai.usage.prompt_tokens",
    "llm.token_count.prompt",
];
const OUTPUT_TOKEN_KEYS: &[&str] = &[
    "gen_ai.usage.output_tokens",
    "gen_ai.usage.completion_tokens",
    "llm.token_count.completion",
];
const COST_KEYS: &[&str] = &["llm.cost.total", "gen_ai.usage.cost"];
const OUTCOME_KEY: &str = "meshos.outcome";

/// Attributes whose value is conversation or document content (GenAI conventions, their older
/// names, OpenInference).
pub const CONTENT_KEYS: &[&str] = &[
    "gen_ai.input.messages",
    "gen_ai.output.messages",
    "gen_ai.system_instructions",
    "gen_ai.tool.call.arguments",
    "gen_ai.tool.call.result",
    "gen_ai.prompt",
    "gen_ai.completion",
    "input.value",
    "output.value",
    "llm.prompts",
    "tool_call.function.arguments",
    "message.content",
];

/// Attribute prefixes of indexed content (`gen_ai.prompt.0.content`,
/// `llm.input_messages.0.message.content`, …).
pub const CONTENT_PREFIXES: &[&str] = &[
    "gen_ai.prompt.",
    "gen_ai.completion.",
    "llm.input_messages.",
    "llm.output_messages.",
    "llm.prompt_template.variables",
    "retrieval.documents.",
    "reranker.input_documents.",
    "reranker.output_documents.",
    "embedding.embeddings.",
];

fn is_content_key(key: &str) -> bool {
    CONTENT_KEYS.contains(&key) || CONTENT_PREFIXES.iter().any(|p| key.starts_with(p))
}

/// Replaces content-bearing attribute values by a marker with their size.
fn withhold_content(attrs: &mut Map<String, Json>) {
    for (key, value) in attrs.iter_mut() {
        if is_content_key(key) {
            let bytes = serde_json::to_string(value).map_or(0, |t| t.len());
            *value = serde_json::json!({ "withheld": "content", "bytes": bytes });
        }
    }
}

fn map_span(
    resource: &ResourceContext,
    scope_name: Option<&str>,
    span: &Span,
    span_ref: &SpanRef,
) -> Result<EventInput, String> {
    let mut attrs = resource.attributes.clone();
    for kv in &span.attributes {
        attrs.insert(kv.key.clone(), any_to_json(kv.value.as_ref()));
    }
    withhold_content(&mut attrs);

    // The conventions name spans `{operation} {target}`, e.g. `execute_tool get_weather`.
    let (name_head, name_subject) = match span.name.trim().split_once(' ') {
        Some((head, rest)) => (head, Some(rest.trim()).filter(|s| !s.is_empty())),
        None => (span.name.trim(), None),
    };
    let operation: Option<String> = attrs
        .get("gen_ai.operation.name")
        .and_then(Json::as_str)
        .map(str::to_string)
        .or_else(|| {
            GENAI_OPERATIONS
                .iter()
                .any(|(op, _)| *op == name_head)
                .then(|| name_head.to_string())
        });
    let kind = match &operation {
        Some(op) => GENAI_OPERATIONS
            .iter()
            .find(|(name, _)| name == op)
            .map_or_else(|| sanitise_kind(op), |(_, kind)| (*kind).to_string()),
        None => match attrs.get("openinference.span.kind").and_then(Json::as_str) {
            Some(oi) => OPENINFERENCE_KINDS
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case(oi))
                .map_or_else(|| sanitise_kind(oi), |(_, kind)| (*kind).to_string()),
            None => sanitise_kind(&span.name),
        },
    };
    let subject_for = |ops: &[&str]| {
        operation
            .as_deref()
            .filter(|op| ops.contains(op) && *op == name_head)
            .and(name_subject)
    };

    let agent_id = agent_of(&mut attrs, subject_for(&["invoke_agent", "create_agent"]))?;

    let mut outcome = if span
        .status
        .as_ref()
        .is_some_and(|s| s.code == StatusCode::Error as i32)
        || attrs
            .get("error.type")
            .is_some_and(|v| !v.is_null() && v.as_str() != Some(""))
    {
        Outcome::Error
    } else {
        Outcome::Ok
    };
    if let Some(explicit) = attrs.remove(OUTCOME_KEY) {
        outcome = match explicit.as_str() {
            Some("ok") => Outcome::Ok,
            Some("error") => Outcome::Error,
            Some("violation") => Outcome::Violation,
            _ => {
                return Err(format!(
                    "{OUTCOME_KEY} {explicit}: expected \"ok\", \"error\" or \"violation\""
                ));
            }
        };
    }

    let input_tokens = take_count(&mut attrs, INPUT_TOKEN_KEYS)?;
    let output_tokens = take_count(&mut attrs, OUTPUT_TOKEN_KEYS)?;
    let cost_usd = take_cost(&mut attrs)?;
    let model = take_id(&mut attrs, MODEL_KEYS);
    let tool = take_id(&mut attrs, TOOL_KEYS).or_else(|| {
        subject_for(&["execute_tool"])
            .filter(|t| validate_id("tool", t).is_ok())
            .map(str::to_string)
    });

    let latency_ms = (span.start_time_unix_nano > 0
        && span.end_time_unix_nano >= span.start_time_unix_nano)
        .then(|| (span.end_time_unix_nano - span.start_time_unix_nano) as f64 / 1_000_000.0);

    attrs.insert(
        "otel.trace_id".into(),
        Json::String(span_ref.trace_id.clone()),
    );
    attrs.insert(
        "otel.span_id".into(),
        Json::String(span_ref.span_id.clone()),
    );
    if !span.parent_span_id.is_empty() {
        attrs.insert(
            "otel.parent_span_id".into(),
            Json::String(hex::encode(&span.parent_span_id)),
        );
    }
    attrs.insert("otel.span_name".into(), Json::String(span.name.clone()));
    if let Some(kind) = SpanKind::try_from(span.kind)
        .ok()
        .filter(|k| *k != SpanKind::Unspecified)
    {
        let name = kind.as_str_name().trim_start_matches("SPAN_KIND_");
        attrs.insert(
            "otel.span_kind".into(),
            Json::String(name.to_ascii_lowercase()),
        );
    }
    if let Some(scope) = scope_name {
        attrs.insert("otel.scope.name".into(), Json::String(scope.to_string()));
    }
    if let Some(status) = span.status.as_ref().filter(|s| !s.message.is_empty()) {
        attrs.insert(
            "otel.status_description".into(),
            Json::String(status.message.clone()),
        );
    }
    if span.start_time_unix_nano > 0 {
        attrs.insert(
            "otel.start_time_unix_nano".into(),
            Json::from(span.start_time_unix_nano),
        );
    }

    // A span may name the policy check it reports on, so its spend settles that reservation.
    let decision_id = attrs
        .get("meshos.decision_id")
        .and_then(Json::as_str)
        .map(str::to_string);
    Ok(EventInput {
        agent_id,
        kind,
        outcome,
        latency_ms,
        input_tokens,
        output_tokens,
        cost_usd,
        model,
        tool,
        region: resource.region.clone(),
        attributes: Some(attrs),
        decision_id,
    })
}

/// The agent the span is about; its source attribute is consumed (except `service.name`).
fn agent_of(attrs: &mut Map<String, Json>, name_subject: Option<&str>) -> Result<String, String> {
    let from_attribute = AGENT_KEYS.iter().find_map(|key| {
        let value = attrs.get(*key)?;
        let text = match value {
            Json::String(s) if !s.is_empty() => s.clone(),
            Json::Number(n) => n.to_string(),
            _ => return None,
        };
        Some((*key, text))
    });
    let (source, agent, consumed) = if let Some((key, agent)) = from_attribute {
        (key.to_string(), agent, Some(key))
    } else if let Some(subject) = name_subject {
        ("the span name".to_string(), subject.to_string(), None)
    } else if let Some(service) = attrs
        .get("service.name")
        .and_then(Json::as_str)
        // The SDKs' stand-in when no service name was configured: not an agent anyone named.
        .filter(|s| !s.is_empty() && !s.starts_with("unknown_service"))
    {
        (
            "resource service.name".to_string(),
            service.to_string(),
            None,
        )
    } else {
        return Err(
            "no agent: set gen_ai.agent.id or gen_ai.agent.name on the span, \
                    or service.name on the resource"
                .to_string(),
        );
    };
    validate_id("agent_id", &agent).map_err(|e| {
        format!(
            "{source} {agent:?} cannot be an agent id: {}; expected {}",
            e.problem, e.expected
        )
    })?;
    if let Some(key) = consumed {
        attrs.remove(key);
    }
    Ok(agent)
}

/// A token count from the first of `keys` present (consumed); wrong types reject the span.
fn take_count(attrs: &mut Map<String, Json>, keys: &[&str]) -> Result<Option<i64>, String> {
    let Some(key) = keys.iter().find(|k| attrs.contains_key(**k)) else {
        return Ok(None);
    };
    let value = &attrs[*key];
    let count = match value {
        Json::Number(n) => n.as_i64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f <= i64::MAX as f64)
                .map(|f| f as i64)
        }),
        Json::String(s) => s.trim().parse::<i64>().ok(),
        _ => None,
    }
    .filter(|n| *n >= 0);
    match count {
        Some(n) => {
            attrs.remove(*key);
            Ok(Some(n))
        }
        None => Err(format!("{key} {value}: expected a whole number ≥ 0")),
    }
}

/// A cost in USD from the first cost attribute present (consumed); wrong types reject the span.
fn take_cost(attrs: &mut Map<String, Json>) -> Result<Option<f64>, String> {
    let Some(key) = COST_KEYS.iter().find(|k| attrs.contains_key(**k)) else {
        return Ok(None);
    };
    let value = &attrs[*key];
    let cost = match value {
        Json::Number(n) => n.as_f64(),
        Json::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    }
    .filter(|c| c.is_finite() && *c >= 0.0);
    match cost {
        Some(c) => {
            attrs.remove(*key);
            Ok(Some(c))
        }
        None => Err(format!("{key} {value}: expected a finite number ≥ 0 (USD)")),
    }
}

/// An id-like value (model, tool) from the first of `keys` present; consumed only when it is a
/// valid id, otherwise it stays in the attributes and the typed field is left empty.
fn take_id(attrs: &mut Map<String, Json>, keys: &[&str]) -> Option<String> {
    let key = keys
        .iter()
        .find(|k| attrs.get(**k).and_then(Json::as_str).is_some())?;
    let value = attrs.get(*key).and_then(Json::as_str)?;
    if validate_id("id", value).is_err() {
        return None;
    }
    match attrs.remove(*key) {
        Some(Json::String(s)) => Some(s),
        _ => None,
    }
}

fn sanitise_kind(raw: &str) -> String {
    let mapped: String = raw
        .trim()
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | ':') {
                c
            } else {
                '_'
            }
        })
        .take(128)
        .collect();
    let trimmed = mapped.trim_matches('_');
    if trimmed.is_empty() {
        "span".to_string()
    } else {
        trimmed.to_string()
    }
}

/// Attributes as a JSON object (a later duplicate key wins, as in the SDKs).
pub fn attributes_to_json(attributes: &[KeyValue]) -> Map<String, Json> {
    attributes
        .iter()
        .map(|kv| (kv.key.clone(), any_to_json(kv.value.as_ref())))
        .collect()
}

/// An OTLP `AnyValue` as JSON: arrays stay arrays, key-value lists become objects, bytes become
/// standard base64, non-finite doubles become their text (`NaN`, `inf`), an empty value `null`.
pub fn any_to_json(value: Option<&AnyValue>) -> Json {
    use any_value::Value;
    match value.and_then(|v| v.value.as_ref()) {
        None => Json::Null,
        Some(Value::StringValue(s)) => Json::String(s.clone()),
        Some(Value::BoolValue(b)) => Json::Bool(*b),
        Some(Value::IntValue(i)) => Json::from(*i),
        Some(Value::DoubleValue(d)) => serde_json::Number::from_f64(*d)
            .map(Json::Number)
            .unwrap_or_else(|| Json::String(d.to_string())),
        Some(Value::ArrayValue(a)) => {
            Json::Array(a.values.iter().map(|v| any_to_json(Some(v))).collect())
        }
        Some(Value::KvlistValue(kv)) => Json::Object(attributes_to_json(&kv.values)),
        Some(Value::BytesValue(b)) => {
            Json::String(base64::engine::general_purpose::STANDARD.encode(b))
        }
        // Only meaningful against a profiles string table, which traces do not carry.
        Some(Value::StringValueStrindex(i)) => Json::from(*i),
    }
}

/// How many rejection reasons a partial-success message spells out before summarising.
const REASONS_SHOWN: usize = 5;

/// A human-readable English summary of the rejected spans, for `partial_success.error_message`.
pub fn rejection_message(rejected: &[RejectedSpan]) -> String {
    let mut message = format!(
        "{} span{} rejected: ",
        rejected.len(),
        if rejected.len() == 1 { "" } else { "s" }
    );
    let shown: Vec<String> = rejected
        .iter()
        .take(REASONS_SHOWN)
        .map(|r| format!("{}: {}", r.span, r.reason))
        .collect();
    message.push_str(&shown.join("; "));
    if rejected.len() > REASONS_SHOWN {
        message.push_str(&format!("; and {} more", rejected.len() - REASONS_SHOWN));
    }
    message
}

/// A warning for an export that carried no span although its body was not empty: OTLP/JSON with
/// snake_case keys (`resource_spans`) decodes to nothing, since receivers must ignore unknown
/// fields, and would otherwise be acknowledged in silence.
pub fn empty_export_warning(
    request: &ExportTraceServiceRequest,
    body_len: usize,
) -> Option<&'static str> {
    let spans: usize = request
        .resource_spans
        .iter()
        .flat_map(|r| &r.scope_spans)
        .map(|s| s.spans.len())
        .sum();
    (spans == 0 && body_len > 2).then_some(
        "the export carried no spans; OTLP/JSON keys are lowerCamelCase \
         (resourceSpans, scopeSpans, spans, traceId, …), other keys are ignored",
    )
}

/// The `ExportTraceServiceResponse` body: `partial_success` unset when nothing was rejected and
/// there is no warning (the spec requires it), else the count and [`rejection_message`], or
/// `rejected_spans` 0 with the warning (the spec's way to warn on a full success).
pub fn encode_export_response(
    rejected: &[RejectedSpan],
    warning: Option<&str>,
    encoding: Encoding,
) -> Vec<u8> {
    let partial = if !rejected.is_empty() {
        Some(ExportTracePartialSuccess {
            rejected_spans: rejected.len() as i64,
            error_message: rejection_message(rejected),
        })
    } else {
        warning.map(|w| ExportTracePartialSuccess {
            rejected_spans: 0,
            error_message: w.to_string(),
        })
    };
    match encoding {
        Encoding::Protobuf => ExportTraceServiceResponse {
            partial_success: partial,
        }
        .encode_to_vec(),
        Encoding::Json => {
            // Written by hand for the proto3 JSON mapping's int64-as-string, which the
            // generated serde code does not follow.
            let body = match partial {
                None => serde_json::json!({}),
                Some(p) => serde_json::json!({
                    "partialSuccess": {
                        "rejectedSpans": p.rejected_spans.to_string(),
                        "errorMessage": p.error_message,
                    }
                }),
            };
            body.to_string().into_bytes()
        }
    }
}

/// `google.rpc.Status` codes used in OTLP/HTTP failure bodies (the spec lets clients ignore
/// them; they are set for troubleshooting).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum RpcCode {
    InvalidArgument = 3,
    PermissionDenied = 7,
    ResourceExhausted = 8,
    Internal = 13,
    Unavailable = 14,
    Unauthenticated = 16,
}

/// `google.rpc.Status` without `details` (field numbers as in google/rpc/status.proto).
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

/// A `google.rpc.Status` failure body in the given encoding.
pub fn encode_status(code: RpcCode, message: &str, encoding: Encoding) -> Vec<u8> {
    match encoding {
        Encoding::Protobuf => RpcStatus {
            code: code as i32,
            message: message.to_string(),
        }
        .encode_to_vec(),
        Encoding::Json => serde_json::json!({ "code": code as i32, "message": message })
            .to_string()
            .into_bytes(),
    }
}

#[cfg(test)]
#[path = "otlp_tests.rs"]
mod tests;
