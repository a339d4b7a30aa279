//! Writes the seed inputs the fuzz corpora started from, for the targets whose seeds are not
//! files already in the repository: `cargo run -p meshos-fuzz --example seed_corpus -- DIR`
//! writes `DIR/<target>/<name>`. The committed corpora under `fuzz/corpus/` are these seeds
//! grown by fuzzing and minimised (see fuzz/README.md).

use std::path::Path;

use meshos_evidence::{Checkpoint, LogList, LogListEntry, NoteSigner};
use meshos_trust::otlp::ExportTraceServiceRequest;
use meshos_trust::otlp::common::{
    AnyValue, ArrayValue, EntityRef, InstrumentationScope, KeyValue, KeyValueList, any_value::Value,
};
use meshos_trust::otlp::resource::Resource;
use meshos_trust::otlp::trace::{ResourceSpans, ScopeSpans, Span, Status, span};
use prost::Message as _;

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

fn span(name: &str, attributes: Vec<KeyValue>) -> Span {
    let start = 1_800_000_000_000_000_000;
    Span {
        trace_id: vec![0x5b; 16],
        span_id: vec![0xee, 0xe1, 0x9b, 0x7e, 0xc3, 0xc1, 0xb1, 0x74],
        name: name.into(),
        kind: 3,
        start_time_unix_nano: start,
        end_time_unix_nano: start + 250_000_000,
        attributes,
        ..Default::default()
    }
}

fn request(resource: Vec<KeyValue>, entity: bool, spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: resource,
                entity_refs: if entity {
                    vec![EntityRef {
                        r#type: "service".into(),
                        id_keys: vec!["service.name".into()],
                        description_keys: vec!["cloud.region".into()],
                        ..Default::default()
                    }]
                } else {
                    Vec::new()
                },
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "openinference.instrumentation".into(),
                    version: "1.0.0".into(),
                    attributes: vec![s("scope.attr", "x")],
                    ..Default::default()
                }),
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn otlp_requests() -> Vec<(&'static str, ExportTraceServiceRequest)> {
    let cloud = || {
        vec![
            s("service.name", "checkout-svc"),
            s("cloud.provider", "aws"),
            s("cloud.region", "eu-west-1"),
        ]
    };
    let chat = span(
        "chat gpt-4o-mini",
        vec![
            s("gen_ai.operation.name", "chat"),
            s("gen_ai.agent.id", "support-bot"),
            s("gen_ai.request.model", "gpt-4o-mini"),
            kv("gen_ai.usage.input_tokens", Value::IntValue(120)),
            kv("gen_ai.usage.output_tokens", Value::IntValue(48)),
            kv("gen_ai.usage.cost", Value::DoubleValue(0.0021)),
            s("gen_ai.prompt", "what is my balance?"),
        ],
    );
    let mut tool = span(
        "execute_tool refund",
        vec![
            s("gen_ai.tool.name", "refund"),
            s("meshos.outcome", "violation"),
            s("error.type", "denied"),
            kv(
                "tags",
                Value::ArrayValue(ArrayValue {
                    values: vec![
                        AnyValue {
                            value: Some(Value::BoolValue(true)),
                        },
                        AnyValue {
                            value: Some(Value::BytesValue(vec![1, 2, 3])),
                        },
                    ],
                }),
            ),
            kv(
                "nested",
                Value::KvlistValue(KeyValueList {
                    values: vec![kv("n", Value::IntValue(-1))],
                }),
            ),
        ],
    );
    tool.parent_span_id = vec![1; 8];
    tool.status = Some(Status {
        code: 2,
        message: "tool failed".into(),
    });
    tool.events = vec![span::Event {
        name: "exception".into(),
        attributes: vec![s("exception.message", "boom")],
        ..Default::default()
    }];
    tool.links = vec![span::Link {
        trace_id: vec![7; 16],
        span_id: vec![8; 8],
        attributes: vec![s("link.kind", "follows")],
        ..Default::default()
    }];
    let openinference = span(
        "LLM",
        vec![
            s("openinference.span.kind", "LLM"),
            s("agent.name", "research-bot"),
            s("llm.model_name", "claude-3-5-sonnet"),
            kv("llm.token_count.prompt", Value::StringValue("400".into())),
            kv("llm.cost.total", Value::DoubleValue(0.01)),
        ],
    );
    vec![
        ("genai_chat", request(cloud(), true, vec![chat.clone()])),
        (
            "tool_with_events_links",
            request(cloud(), false, vec![tool]),
        ),
        ("openinference", request(vec![], false, vec![openinference])),
        (
            "invoke_agent",
            request(
                vec![s("service.name", "unknown_service:python")],
                false,
                vec![span("invoke_agent planner", vec![]), chat],
            ),
        ),
        ("empty", ExportTraceServiceRequest::default()),
    ]
}

/// Notes from outside (Go's reference note, the C2SP spec's example, a Go checksum database
/// checkpoint: public test vectors, also in evidence/tests/note.rs) and notes our log signs.
fn notes() -> Result<Vec<(&'static str, String)>, Box<dyn std::error::Error>> {
    let signer = NoteSigner::from_seed("meshos.fuzz/log", &[7; 32])?;
    let checkpoint = Checkpoint {
        origin: "meshos.example/acme".into(),
        size: 42,
        root: [0xab; 32],
    };
    let list = LogList {
        origin: "meshos.example/logs".into(),
        seq: 3,
        time_ms: 1_800_000_000_000,
        logs: vec![
            LogListEntry {
                name: "meshos.example/acme".into(),
                size: 42,
                root: [0xab; 32],
            },
            LogListEntry {
                name: "meshos.example/globex".into(),
                size: 7,
                root: [0x01; 32],
            },
        ],
    };
    let other = NoteSigner::from_seed("witness.example", &[8; 32])?;
    let cosigned = format!(
        "{}{}",
        signer.sign_checkpoint(&checkpoint)?,
        other
            .sign_checkpoint(&checkpoint)?
            .rsplit_once("\n\n")
            .map_or("", |(_, sig)| sig)
    );
    Ok(vec![
        ("our-checkpoint", signer.sign_checkpoint(&checkpoint)?),
        ("our-checkpoint-cosigned", cosigned),
        ("our-log-list", signer.sign_note(&list.body()?)?),
        ("checkpoint-body", checkpoint.body()),
        ("log-list-body", list.body()?),
        ("verifier-key", signer.verifier_key()),
        (
            "go-reference-note",
            "If you think cryptography is the answer to your problem,\n\
             then you don't know what your problem is.\n\n\
             \u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n\
             \u{2014} EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n"
                .into(),
        ),
        (
            "c2sp-spec-note",
            "This is an example message.\n\n\u{2014} example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n".into(),
        ),
        (
            "go-sumdb-checkpoint",
            "go.sum database tree\n31700353\nqINS1GRFhWHwdkUeqLEoP4yEMkTBBzxBkGwGQlVlVcs=\n\n\u{2014} sum.golang.org Az3grnmrIUEDFqHzAElIQCPNoRFRAAdFo47fooyWKMHb89k11GJh5zHIfNCOBmwn/C3YI8oW9/C8DJ87F61QqspBYwM=\n".into(),
        ),
        (
            "go-sumdb-vkey",
            "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8".into(),
        ),
    ])
}

fn write(dir: &Path, target: &str, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    let folder = dir.join(target);
    std::fs::create_dir_all(&folder)?;
    std::fs::write(folder.join(name), bytes)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args()
        .nth(1)
        .ok_or("usage: seed_corpus DIR (writes DIR/<target>/<seed>)")?;
    let dir = Path::new(&dir);
    for (name, request) in otlp_requests() {
        write(dir, "otlp_protobuf", name, &request.encode_to_vec())?;
        write(dir, "otlp_json", name, &serde_json::to_vec(&request)?)?;
    }
    for (name, note) in notes()? {
        write(dir, "signed_note", name, note.as_bytes())?;
    }
    Ok(())
}
