use std::io::Write;

use super::common::{AnyValue, ArrayValue, InstrumentationScope, KeyValueList, any_value::Value};
use super::resource::Resource;
use super::trace::{ResourceSpans, ScopeSpans, Status};
use super::*;

const START: u64 = 1_800_000_000_000_000_000;

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

fn i(key: &str, v: i64) -> KeyValue {
    kv(key, Value::IntValue(v))
}

fn span(name: &str, attributes: Vec<KeyValue>) -> Span {
    Span {
        trace_id: vec![0x5b; 16],
        span_id: vec![0xee, 0xe1, 0x9b, 0x7e, 0xc3, 0xc1, 0xb1, 0x74],
        name: name.into(),
        kind: SpanKind::Client as i32,
        start_time_unix_nano: START,
        end_time_unix_nano: START + 250_000_000,
        attributes,
        ..Default::default()
    }
}

fn request(resource: Vec<KeyValue>, spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: resource,
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "test.scope".into(),
                    ..Default::default()
                }),
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// Maps one span under a resource naming a service and a cloud region.
fn map_one(span: Span) -> Result<EventInput, String> {
    let resource = vec![
        s("service.name", "checkout-svc"),
        s("cloud.provider", "aws"),
        s("cloud.region", "eu-west-1"),
    ];
    let mut mapped = map_request(&request(resource, vec![span]));
    match (mapped.events.pop(), mapped.rejected.pop()) {
        (Some(m), None) => Ok(m.event),
        (None, Some(r)) => Err(r.reason),
        other => panic!("one span must give one result: {other:?}"),
    }
}

fn attr<'a>(e: &'a EventInput, key: &str) -> Option<&'a Json> {
    e.attributes.as_ref().and_then(|a| a.get(key))
}

// ---- decoding --------------------------------------------------------------------------------

/// The OTLP repository's own example (examples/trace.json): upper-case hex ids, int64 times as
/// strings, integer enum.
const SPEC_EXAMPLE: &str = r#"{
  "resourceSpans": [{
    "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "my.service"}}]},
    "scopeSpans": [{
      "scope": {"name": "my.library", "version": "1.0.0",
                "attributes": [{"key": "my.scope.attribute", "value": {"stringValue": "some scope attribute"}}]},
      "spans": [{
        "traceId": "5B8EFFF798038103D269B633813FC60C",
        "spanId": "EEE19B7EC3C1B174",
        "parentSpanId": "EEE19B7EC3C1B173",
        "name": "I'm a server span",
        "startTimeUnixNano": "1544712660000000000",
        "endTimeUnixNano": "1544712661000000000",
        "kind": 2,
        "attributes": [{"key": "my.span.attr", "value": {"stringValue": "some value"}}]
      }]
    }]
  }]
}"#;

#[test]
fn the_spec_example_decodes_with_hex_ids_and_string_times() {
    let req = decode_request(SPEC_EXAMPLE.as_bytes(), Encoding::Json).unwrap();
    let span = &req.resource_spans[0].scope_spans[0].spans[0];
    assert_eq!(
        hex::encode_upper(&span.trace_id),
        "5B8EFFF798038103D269B633813FC60C"
    );
    assert_eq!(hex::encode(&span.span_id), "eee19b7ec3c1b174");
    assert_eq!(
        span.end_time_unix_nano - span.start_time_unix_nano,
        1_000_000_000
    );
    let mapped = map_request(&req);
    assert!(mapped.rejected.is_empty(), "{:?}", mapped.rejected);
    let m = &mapped.events[0];
    assert_eq!(m.span.trace_id, "5b8efff798038103d269b633813fc60c");
    let e = &m.event;
    assert_eq!(e.agent_id, "my.service");
    assert_eq!(e.kind, "i_m_a_server_span");
    assert_eq!(e.outcome, Outcome::Ok);
    assert_eq!(e.latency_ms, Some(1000.0));
    assert_eq!(
        attr(e, "otel.span_id"),
        Some(&Json::from("eee19b7ec3c1b174"))
    );
    assert_eq!(
        attr(e, "otel.parent_span_id"),
        Some(&Json::from("eee19b7ec3c1b173"))
    );
    assert_eq!(attr(e, "otel.span_kind"), Some(&Json::from("server")));
    assert_eq!(attr(e, "otel.scope.name"), Some(&Json::from("my.library")));
    assert_eq!(attr(e, "my.span.attr"), Some(&Json::from("some value")));
    assert_eq!(attr(e, "service.name"), Some(&Json::from("my.service")));
}

#[test]
fn json_accepts_numbers_for_int64_ignores_unknown_fields_and_keeps_every_value_type() {
    let body = r#"{"resourceSpans":[{"resource":{"attributes":[]},"scopeSpans":[{"spans":[{
        "traceId":"0102030405060708090a0b0c0d0e0f10","spanId":"0102030405060708",
        "name":"chat gpt-4o","kind":3,
        "startTimeUnixNano":1800000000000000000,"endTimeUnixNano":"1800000000500000000",
        "someFutureField":{"x":1},
        "status":{"code":2,"message":"upstream 500"},
        "attributes":[
          {"key":"gen_ai.agent.id","value":{"stringValue":"planner"}},
          {"key":"gen_ai.usage.input_tokens","value":{"intValue":"1200"}},
          {"key":"gen_ai.usage.output_tokens","value":{"intValue":80}},
          {"key":"gen_ai.request.temperature","value":{"doubleValue":0.2}},
          {"key":"gen_ai.request.stop_sequences","value":{"arrayValue":{"values":[{"stringValue":"END"},{"intValue":"7"}]}}},
          {"key":"app.meta","value":{"kvlistValue":{"values":[{"key":"team","value":{"stringValue":"search"}},{"key":"on","value":{"boolValue":true}}]}}},
          {"key":"app.blob","value":{"bytesValue":"AAEC"}},
          {"key":"app.empty","value":{}}
        ]}]}]}]}"#;
    let mapped = map_request(&decode_request(body.as_bytes(), Encoding::Json).unwrap());
    assert!(mapped.rejected.is_empty(), "{:?}", mapped.rejected);
    let e = &mapped.events[0].event;
    assert_eq!(e.agent_id, "planner");
    assert_eq!(
        e.kind, "llm_call",
        "operation from the span name `chat gpt-4o`"
    );
    assert_eq!(e.outcome, Outcome::Error, "status code 2 is ERROR");
    assert_eq!(e.latency_ms, Some(500.0));
    assert_eq!((e.input_tokens, e.output_tokens), (Some(1200), Some(80)));
    assert_eq!(
        attr(e, "gen_ai.request.temperature"),
        Some(&Json::from(0.2))
    );
    assert_eq!(
        attr(e, "gen_ai.request.stop_sequences"),
        Some(&serde_json::json!(["END", 7]))
    );
    assert_eq!(
        attr(e, "app.meta"),
        Some(&serde_json::json!({"team": "search", "on": true}))
    );
    assert_eq!(attr(e, "app.blob"), Some(&Json::from("AAEC")));
    assert_eq!(attr(e, "app.empty"), Some(&Json::Null));
    assert_eq!(attr(e, "otel.span_kind"), Some(&Json::from("client")));
    assert_eq!(
        attr(e, "otel.status_description"),
        Some(&Json::from("upstream 500"))
    );
    assert!(attr(e, "someFutureField").is_none());
}

#[test]
fn malformed_json_names_the_field() {
    let bad_id = SPEC_EXAMPLE.replace("EEE19B7EC3C1B174", "not-hex!");
    let err = decode_request(bad_id.as_bytes(), Encoding::Json).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("resourceSpans[0].scopeSpans[0].spans[0].spanId"),
        "{msg}"
    );
    let bad_time = SPEC_EXAMPLE.replace("\"1544712660000000000\"", "\"soon\"");
    let msg = decode_request(bad_time.as_bytes(), Encoding::Json)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("startTimeUnixNano"), "{msg}");
    for garbage in [&b"not json"[..], b"{\"resourceSpans\": 5}", b"{} trailing"] {
        assert!(matches!(
            decode_request(garbage, Encoding::Json),
            Err(OtlpError::Json(_))
        ));
    }
}

#[test]
fn protobuf_round_trips_and_garbage_is_an_error() {
    let req = request(
        vec![s("service.name", "svc")],
        vec![span(
            "chat gpt-4o",
            vec![
                s("gen_ai.agent.name", "writer"),
                i("gen_ai.usage.input_tokens", 5),
            ],
        )],
    );
    let decoded = decode_request(&req.encode_to_vec(), Encoding::Protobuf).unwrap();
    assert_eq!(decoded, req);
    let mapped = map_request(&decoded);
    assert_eq!(mapped.events[0].event.agent_id, "writer");
    assert_eq!(mapped.events[0].event.input_tokens, Some(5));
    let err = decode_request(b"\xff\xff\xff\xff garbage", Encoding::Protobuf).unwrap_err();
    assert!(matches!(err, OtlpError::Protobuf(_)), "{err}");
    assert!(err.to_string().contains("protobuf"), "{err}");
    // An empty body is an empty export, which the spec says to accept.
    assert!(
        decode_request(b"", Encoding::Protobuf)
            .unwrap()
            .resource_spans
            .is_empty()
    );
}

#[test]
fn gzip_and_deflate_bodies_inflate_within_the_limit() {
    let payload = SPEC_EXAMPLE.as_bytes();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(payload).unwrap();
    let gz = gz.finish().unwrap();
    assert_eq!(&*decompress(&gz, Some("gzip"), 1 << 20).unwrap(), payload);
    let mut zl = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    zl.write_all(payload).unwrap();
    let zl = zl.finish().unwrap();
    assert_eq!(
        &*decompress(&zl, Some("deflate"), 1 << 20).unwrap(),
        payload
    );
    assert!(matches!(
        decompress(payload, None, 10).unwrap(),
        Cow::Borrowed(_)
    ));
    assert!(matches!(
        decompress(&gz, Some("gzip"), 100),
        Err(OtlpError::TooLarge { limit: 100 })
    ));
    assert!(matches!(
        decompress(payload, Some("gzip"), 1 << 20),
        Err(OtlpError::Decompress { coding: "gzip", .. })
    ));
    let err = decompress(payload, Some("br"), 1 << 20).unwrap_err();
    assert!(err.is_unsupported_media() && err.to_string().contains("\"br\""));
}

#[test]
fn content_types_choose_the_encoding() {
    assert_eq!(
        Encoding::from_content_type(Some("application/x-protobuf")).unwrap(),
        Encoding::Protobuf
    );
    assert_eq!(
        Encoding::from_content_type(Some("Application/JSON; charset=utf-8")).unwrap(),
        Encoding::Json
    );
    for bad in [None, Some("text/plain"), Some("application/grpc")] {
        let err = Encoding::from_content_type(bad).unwrap_err();
        assert!(err.is_unsupported_media(), "{err}");
    }
}

// ---- mapping families ------------------------------------------------------------------------

#[test]
fn current_genai_names_map_onto_the_event() {
    let e = map_one(span(
        "chat gpt-4o",
        vec![
            s("gen_ai.operation.name", "chat"),
            s("gen_ai.provider.name", "openai"),
            s("gen_ai.request.model", "gpt-4o"),
            s("gen_ai.response.model", "gpt-4o-2024-08-06"),
            i("gen_ai.usage.input_tokens", 1500),
            i("gen_ai.usage.output_tokens", 230),
            s("gen_ai.agent.id", "asst_5j66"),
            s("gen_ai.agent.name", "Math Tutor"),
            s("gen_ai.conversation.id", "conv_1"),
        ],
    ))
    .unwrap();
    assert_eq!(e.agent_id, "asst_5j66", "the id wins over the name");
    assert_eq!(e.kind, "llm_call");
    assert_eq!(e.outcome, Outcome::Ok);
    assert_eq!(
        e.model.as_deref(),
        Some("gpt-4o-2024-08-06"),
        "the model that answered"
    );
    assert_eq!((e.input_tokens, e.output_tokens), (Some(1500), Some(230)));
    assert_eq!(e.region.as_deref(), Some("aws:eu-west-1"));
    assert_eq!(e.latency_ms, Some(250.0));
    assert_eq!(e.cost_usd, None, "no cost attribute, no cost");
    // Mapped attributes are not repeated; the rest are kept.
    for gone in [
        "gen_ai.agent.id",
        "gen_ai.response.model",
        "gen_ai.usage.input_tokens",
    ] {
        assert!(attr(&e, gone).is_none(), "{gone} should be consumed");
    }
    for kept in [
        "gen_ai.provider.name",
        "gen_ai.request.model",
        "gen_ai.agent.name",
        "gen_ai.conversation.id",
        "gen_ai.operation.name",
        "service.name",
        "cloud.region",
    ] {
        assert!(attr(&e, kept).is_some(), "{kept} should be kept");
    }
}

#[test]
fn agent_and_tool_spans_take_their_target_from_the_span_name() {
    let tool = map_one(span(
        "execute_tool get_weather",
        vec![s("gen_ai.agent.name", "travel-agent")],
    ))
    .unwrap();
    assert_eq!(tool.kind, "tool_call");
    assert_eq!(tool.tool.as_deref(), Some("get_weather"));
    assert_eq!(tool.agent_id, "travel-agent");

    let attr_tool = map_one(span(
        "execute_tool",
        vec![
            s("gen_ai.operation.name", "execute_tool"),
            s("gen_ai.tool.name", "Flights"),
        ],
    ))
    .unwrap();
    assert_eq!(attr_tool.tool.as_deref(), Some("Flights"));
    assert_eq!(
        attr_tool.agent_id, "checkout-svc",
        "no agent attribute: the service"
    );

    let invoke = map_one(span(
        "invoke_agent researcher",
        vec![s("gen_ai.operation.name", "invoke_agent")],
    ))
    .unwrap();
    assert_eq!(invoke.kind, "agent_invocation");
    assert_eq!(invoke.agent_id, "researcher");

    let create = map_one(span("create_agent builder", vec![])).unwrap();
    assert_eq!(create.kind, "agent_invocation");
    assert_eq!(create.agent_id, "builder");

    let embed = map_one(span(
        "embeddings text-embedding-3-small",
        vec![s("gen_ai.request.model", "text-embedding-3-small")],
    ))
    .unwrap();
    assert_eq!(embed.kind, "embedding");
    assert_eq!(embed.model.as_deref(), Some("text-embedding-3-small"));
}

#[test]
fn older_genai_names_still_map() {
    let e = map_one(span(
        "chat claude-3-5-sonnet",
        vec![
            s("gen_ai.system", "anthropic"),
            s("gen_ai.operation.name", "text_completion"),
            s("gen_ai.request.model", "claude-3-5-sonnet@20240620"),
            i("gen_ai.usage.prompt_tokens", 42),
            i("gen_ai.usage.completion_tokens", 7),
            s("gen_ai.agent.name", "support-bot"),
        ],
    ))
    .unwrap();
    assert_eq!(e.agent_id, "support-bot");
    assert_eq!(e.kind, "llm_call");
    assert_eq!((e.input_tokens, e.output_tokens), (Some(42), Some(7)));
    assert_eq!(e.model.as_deref(), Some("claude-3-5-sonnet@20240620"));
    assert_eq!(attr(&e, "gen_ai.system"), Some(&Json::from("anthropic")));
    assert!(attr(&e, "gen_ai.usage.prompt_tokens").is_none());
}

#[test]
fn openinference_names_map() {
    let llm = map_one(span(
        "ChatCompletion",
        vec![
            s("openinference.span.kind", "LLM"),
            s("llm.model_name", "gpt-4-0613"),
            s("llm.system", "openai"),
            i("llm.token_count.prompt", 25),
            i("llm.token_count.completion", 8),
            i("llm.token_count.total", 33),
            kv("llm.cost.total", Value::DoubleValue(0.0066)),
            s("agent.name", "oi-agent"),
            s("input.value", "{\"q\": \"hi\"}"),
        ],
    ))
    .unwrap();
    assert_eq!(llm.agent_id, "oi-agent");
    assert_eq!(llm.kind, "llm_call");
    assert_eq!(llm.model.as_deref(), Some("gpt-4-0613"));
    assert_eq!((llm.input_tokens, llm.output_tokens), (Some(25), Some(8)));
    assert_eq!(llm.cost_usd, Some(0.0066));
    assert_eq!(attr(&llm, "llm.token_count.total"), Some(&Json::from(33)));
    assert_eq!(attr(&llm, "llm.system"), Some(&Json::from("openai")));

    let tool = map_one(span(
        "search",
        vec![
            s("openinference.span.kind", "TOOL"),
            s("tool.name", "web_search"),
        ],
    ))
    .unwrap();
    assert_eq!(
        (tool.kind.as_str(), tool.tool.as_deref()),
        ("tool_call", Some("web_search"))
    );
    let eval = map_one(span(
        "judge",
        vec![s("openinference.span.kind", "EVALUATOR")],
    ))
    .unwrap();
    assert_eq!(eval.kind, "eval");
    let chain = map_one(span("rag", vec![s("openinference.span.kind", "CHAIN")])).unwrap();
    assert_eq!(chain.kind, "chain");
}

#[test]
fn other_operations_and_plain_spans_get_a_sanitised_kind() {
    let retrieval = map_one(span(
        "retrieval docs",
        vec![s("gen_ai.operation.name", "retrieval")],
    ))
    .unwrap();
    assert_eq!(retrieval.kind, "retrieval");
    let http = map_one(span("GET /users/{id}", vec![])).unwrap();
    assert_eq!(http.kind, "get__users__id");
    let unnamed = map_one(span("  ", vec![])).unwrap();
    assert_eq!(unnamed.kind, "span");
    let long = map_one(span(&"x".repeat(300), vec![])).unwrap();
    assert_eq!(long.kind.len(), 128);
}

// ---- outcome -------------------------------------------------------------------------------

#[test]
fn error_status_or_error_type_make_an_error_and_meshos_outcome_overrides() {
    let mut failed = span("chat m", vec![]);
    failed.status = Some(Status {
        code: StatusCode::Error as i32,
        message: "timeout".into(),
    });
    assert_eq!(map_one(failed.clone()).unwrap().outcome, Outcome::Error);
    let mut ok_status = failed.clone();
    ok_status.status = Some(Status {
        code: StatusCode::Ok as i32,
        message: String::new(),
    });
    assert_eq!(map_one(ok_status).unwrap().outcome, Outcome::Ok);
    let typed = span("chat m", vec![s("error.type", "rate_limited")]);
    let e = map_one(typed).unwrap();
    assert_eq!(e.outcome, Outcome::Error);
    assert_eq!(attr(&e, "error.type"), Some(&Json::from("rate_limited")));

    failed.attributes.push(s("meshos.outcome", "violation"));
    let v = map_one(failed.clone()).unwrap();
    assert_eq!(v.outcome, Outcome::Violation);
    assert!(attr(&v, "meshos.outcome").is_none());
    let explicit_ok = map_one(span("chat m", vec![s("meshos.outcome", "ok")])).unwrap();
    assert_eq!(explicit_ok.outcome, Outcome::Ok);

    let bad = map_one(span("chat m", vec![s("meshos.outcome", "maybe")])).unwrap_err();
    assert!(
        bad.contains("meshos.outcome") && bad.contains("violation"),
        "{bad}"
    );
}

// ---- rejection -----------------------------------------------------------------------------

#[test]
fn spans_that_cannot_be_events_are_rejected_one_by_one() {
    let spans = vec![
        span("chat ok", vec![s("gen_ai.agent.id", "good-agent")]),
        span("chat nobody", vec![]),
        span("chat spaced", vec![s("gen_ai.agent.name", "Math Tutor")]),
        span(
            "chat negative",
            vec![
                s("gen_ai.agent.id", "a"),
                i("gen_ai.usage.input_tokens", -1),
            ],
        ),
        span(
            "chat words",
            vec![
                s("gen_ai.agent.id", "a"),
                s("gen_ai.usage.output_tokens", "many"),
            ],
        ),
        span(
            "chat cost",
            vec![
                s("gen_ai.agent.id", "a"),
                kv("llm.cost.total", Value::DoubleValue(f64::NAN)),
            ],
        ),
        span(
            "chat as string",
            vec![
                s("gen_ai.agent.id", "b"),
                s("gen_ai.usage.input_tokens", "12"),
                kv("gen_ai.usage.output_tokens", Value::DoubleValue(3.0)),
            ],
        ),
    ];
    // The SDK default service name is not an agent.
    let mapped = map_request(&request(
        vec![s("service.name", "unknown_service:python")],
        spans,
    ));
    let names: Vec<&str> = mapped.events.iter().map(|m| m.span.name.as_str()).collect();
    assert_eq!(names, ["chat ok", "chat as string"]);
    let strings = &mapped.events[1].event;
    assert_eq!(
        (strings.input_tokens, strings.output_tokens),
        (Some(12), Some(3))
    );
    let reasons: Vec<(&str, &str)> = mapped
        .rejected
        .iter()
        .map(|r| (r.span.name.as_str(), r.reason.as_str()))
        .collect();
    assert_eq!(reasons.len(), 5, "{reasons:?}");
    assert!(reasons[0].1.starts_with("no agent"), "{reasons:?}");
    assert!(
        reasons[1].1.contains("gen_ai.agent.name \"Math Tutor\"") && reasons[1].1.contains("' '"),
        "{reasons:?}"
    );
    assert!(
        reasons[2].1.contains("gen_ai.usage.input_tokens -1"),
        "{reasons:?}"
    );
    assert!(
        reasons[3].1.contains("gen_ai.usage.output_tokens \"many\""),
        "{reasons:?}"
    );
    assert!(reasons[4].1.contains("llm.cost.total"), "{reasons:?}");
    assert_eq!(mapped.rejected[0].span.span_id, "eee19b7ec3c1b174");
}

#[test]
fn a_model_or_tool_that_is_not_an_id_stays_only_in_the_attributes() {
    let e = map_one(span(
        "execute_tool",
        vec![
            s("gen_ai.operation.name", "execute_tool"),
            s("gen_ai.tool.name", "Search The Web"),
            s("gen_ai.request.model", "my model"),
            s("gen_ai.agent.id", "a"),
        ],
    ))
    .unwrap();
    assert_eq!((&e.tool, &e.model), (&None, &None));
    assert_eq!(
        attr(&e, "gen_ai.tool.name"),
        Some(&Json::from("Search The Web"))
    );
    assert_eq!(
        attr(&e, "gen_ai.request.model"),
        Some(&Json::from("my model"))
    );
}

#[test]
fn region_needs_both_cloud_attributes() {
    let only_provider = map_request(&request(
        vec![s("service.name", "svc"), s("cloud.provider", "gcp")],
        vec![span("x", vec![])],
    ));
    assert_eq!(only_provider.events[0].event.region, None);
    let both = map_request(&request(
        vec![
            s("service.name", "svc"),
            s("cloud.provider", "gcp"),
            s("cloud.region", "europe-west1"),
        ],
        vec![span("x", vec![])],
    ));
    assert_eq!(
        both.events[0].event.region.as_deref(),
        Some("gcp:europe-west1")
    );
}

#[test]
fn span_attributes_win_over_resource_attributes() {
    let mapped = map_request(&request(
        vec![
            s("service.name", "svc"),
            s("deployment.environment", "prod"),
        ],
        vec![span("x", vec![s("deployment.environment", "canary")])],
    ));
    assert_eq!(
        attr(&mapped.events[0].event, "deployment.environment"),
        Some(&Json::from("canary"))
    );
}

#[test]
fn nested_values_convert_to_json() {
    let nested = Value::ArrayValue(ArrayValue {
        values: vec![AnyValue {
            value: Some(Value::KvlistValue(KeyValueList {
                values: vec![kv("b", Value::BytesValue(vec![0xff, 0x00]))],
            })),
        }],
    });
    let json = any_to_json(Some(&AnyValue {
        value: Some(nested),
    }));
    assert_eq!(json, serde_json::json!([{"b": "/wA="}]));
    assert_eq!(
        any_to_json(Some(&AnyValue {
            value: Some(Value::DoubleValue(f64::INFINITY))
        })),
        Json::from("inf")
    );
}

// ---- replies -------------------------------------------------------------------------------

#[test]
fn full_success_leaves_partial_success_unset() {
    let pb = encode_export_response(&[], None, Encoding::Protobuf);
    let resp = ExportTraceServiceResponse::decode(pb.as_slice()).unwrap();
    assert_eq!(resp.partial_success, None);
    assert_eq!(encode_export_response(&[], None, Encoding::Json), b"{}");
}

#[test]
fn partial_success_counts_and_explains_the_rejections() {
    let rejected: Vec<RejectedSpan> = (0..7)
        .map(|n| RejectedSpan {
            span: SpanRef {
                trace_id: "t".into(),
                span_id: format!("s{n}"),
                name: "chat".into(),
            },
            reason: "no agent".into(),
        })
        .collect();
    let pb = encode_export_response(&rejected, None, Encoding::Protobuf);
    let partial = ExportTraceServiceResponse::decode(pb.as_slice())
        .unwrap()
        .partial_success
        .unwrap();
    assert_eq!(partial.rejected_spans, 7);
    assert!(
        partial
            .error_message
            .starts_with("7 spans rejected: span s0 (\"chat\"): no agent"),
        "{}",
        partial.error_message
    );
    assert!(
        partial.error_message.ends_with("; and 2 more"),
        "{}",
        partial.error_message
    );
    let json: Json = serde_json::from_slice(&encode_export_response(
        &rejected[..1],
        None,
        Encoding::Json,
    ))
    .unwrap();
    assert_eq!(json["partialSuccess"]["rejectedSpans"], "1");
    assert_eq!(
        json["partialSuccess"]["errorMessage"],
        "1 span rejected: span s0 (\"chat\"): no agent"
    );
}

#[test]
fn status_bodies_decode_as_google_rpc_status() {
    let pb = encode_status(RpcCode::InvalidArgument, "bad body", Encoding::Protobuf);
    let status = RpcStatus::decode(pb.as_slice()).unwrap();
    assert_eq!((status.code, status.message.as_str()), (3, "bad body"));
    let json: Json =
        serde_json::from_slice(&encode_status(RpcCode::Unavailable, "db", Encoding::Json)).unwrap();
    assert_eq!(json, serde_json::json!({"code": 14, "message": "db"}));
}

#[test]
fn json_from_proto3_serialisers_that_omit_empty_fields_decodes() {
    // proto3 JSON writers leave out empty repeated fields, so an empty array attribute arrives
    // as `{"arrayValue":{}}`; the generated serde code wants `values`.
    let body = r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{
        "traceId":"0102030405060708090a0b0c0d0e0f10","spanId":"0102030405060708","name":"chat m",
        "attributes":[
          {"key":"gen_ai.agent.id","value":{"stringValue":"a"}},
          {"key":"empty.list","value":{"arrayValue":{}}},
          {"key":"nested","value":{"arrayValue":{"values":[{"arrayValue":{}}]}}},
          {"key":"empty.map","value":{"kvlistValue":{}}}
        ]}]}]}]}"#;
    let mapped = map_request(&decode_request(body.as_bytes(), Encoding::Json).unwrap());
    let e = &mapped.events[0].event;
    assert_eq!(attr(e, "empty.list"), Some(&serde_json::json!([])));
    assert_eq!(attr(e, "empty.map"), Some(&serde_json::json!({})));
    assert_eq!(attr(e, "nested"), Some(&serde_json::json!([[]])));
}

#[test]
fn long_span_names_are_cut_in_messages() {
    let rejected = RejectedSpan {
        span: SpanRef {
            trace_id: "t".into(),
            span_id: "s".into(),
            name: "é".repeat(500),
        },
        reason: "no agent".into(),
    };
    let message = rejection_message(&[rejected]);
    assert!(message.len() < 300, "{message}");
    assert!(
        message.contains(&format!("\"{}\"…", "é".repeat(80))),
        "{message}"
    );
}

#[test]
fn an_export_whose_keys_were_all_ignored_gets_a_warning() {
    let snake = br#"{"resource_spans":[{"scope_spans":[{"spans":[{"name":"chat"}]}]}]}"#;
    let req = decode_request(snake, Encoding::Json).unwrap();
    let warning = empty_export_warning(&req, snake.len()).expect("a warning");
    assert!(warning.contains("resourceSpans"), "{warning}");
    let json: Json =
        serde_json::from_slice(&encode_export_response(&[], Some(warning), Encoding::Json))
            .unwrap();
    assert_eq!(json["partialSuccess"]["rejectedSpans"], "0");
    assert_eq!(json["partialSuccess"]["errorMessage"], warning);
    // A truly empty export is a plain success, as the spec asks.
    assert_eq!(empty_export_warning(&req, 2), None);
    let spec = decode_request(SPEC_EXAMPLE.as_bytes(), Encoding::Json).unwrap();
    assert_eq!(empty_export_warning(&spec, SPEC_EXAMPLE.len()), None);
}

#[test]
fn conversation_content_is_withheld_with_its_size() {
    let e = map_one(span(
        "chat gpt-4o",
        vec![
            s("gen_ai.operation.name", "chat"),
            s("gen_ai.agent.id", "bot"),
            s(
                "gen_ai.input.messages",
                r#"[{"role":"user","content":"my SSN is 123-45-6789"}]"#,
            ),
            s(
                "llm.input_messages.0.message.content",
                "call me at +1 415 555 0100",
            ),
            s("input.value", "secret prompt"),
            s("gen_ai.request.temperature", "0.2"),
        ],
    ))
    .unwrap();
    let text = serde_json::to_string(&e.attributes).unwrap();
    assert!(!text.contains("123-45-6789") && !text.contains("555") && !text.contains("secret"));
    let marker = attr(&e, "gen_ai.input.messages").unwrap();
    assert_eq!(marker["withheld"], "content");
    assert!(marker["bytes"].as_u64().unwrap() > 40);
    assert!(attr(&e, "llm.input_messages.0.message.content").is_some());
    // Other attributes are kept as sent.
    assert_eq!(attr(&e, "gen_ai.request.temperature").unwrap(), "0.2");
}
