//! Recording what agents did: validation, durable append to the ledger, live trust, and the spend counters budgets read.

use meshos_policy::{Bundle, Scope};
use meshos_store::{Settle, SpendChange, UsageIncrement};
use meshos_trust::otlp::{MappedSpan, RejectedSpan};
use meshos_types::{EventRecord, Principal, new_id, now_ms, rfc3339_ms};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::mesh::{
    Limits, Mesh, MeshError, check_amount, check_count, check_id_at, check_json_key,
    check_json_storable, check_no_nul, ensure_object, invalid,
};

// ---- inputs and outputs ---------------------------------------------------------------

pub use meshos_trust::EventInput;

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct RecordedEvent {
    /// Identifier of the stored event.
    pub event_id: String,
    /// Position of the event in the tenant's evidence ledger.
    pub ledger_index: u64,
    /// When the event was stored (RFC 3339).
    pub recorded_at: String,
}

/// Where events came in; names fields in errors and labels the ingest metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IngestDoor {
    /// The MCP `record_event` tool: one event, fields named plainly.
    Mcp,
    /// `POST /v1/events`: a batch, fields named `events[i].field`.
    Rest,
    /// `POST /v1/traces`: spans mapped to events.
    Otlp,
    /// An eval run's results, recorded for the suite's agent.
    Eval,
    /// A tool call through `meshos gateway`, recorded for the calling agent.
    Gateway,
}

impl IngestDoor {
    pub fn as_str(self) -> &'static str {
        match self {
            IngestDoor::Mcp => "mcp",
            IngestDoor::Rest => "rest",
            IngestDoor::Otlp => "otlp",
            IngestDoor::Eval => "eval",
            IngestDoor::Gateway => "gateway",
        }
    }

    fn is_batch(self) -> bool {
        !matches!(self, IngestDoor::Mcp | IngestDoor::Gateway)
    }
}

/// Whole micro-dollars, so counters add up exactly.
pub(crate) fn micro_usd(usd: f64) -> i64 {
    (usd * 1_000_000.0).round() as i64
}

/// Checks one event against `limits` before anything is stored: ids, `kind`, the reported
/// amounts, the size of `attributes` and text PostgreSQL cannot store. `batch` names fields
/// `events[i].field` (REST, OTLP) instead of plainly (MCP).
pub fn validate_event(
    limits: &Limits,
    i: usize,
    ev: &EventInput,
    batch: bool,
) -> Result<(), MeshError> {
    let at = |f: &str| {
        if batch {
            format!("events[{i}].{f}")
        } else {
            f.to_string()
        }
    };
    check_id_at(at("agent_id"), &ev.agent_id)?;
    if ev.kind.trim().is_empty() || ev.kind.len() > 128 {
        return Err(invalid(
            at("kind"),
            "expected 1-128 characters, e.g. `tool_call`",
        ));
    }
    check_no_nul(at("kind"), &ev.kind)?;
    check_amount(at("latency_ms"), ev.latency_ms, limits.max_latency_ms)?;
    check_amount(at("cost_usd"), ev.cost_usd, limits.max_cost_usd)?;
    check_count(at("input_tokens"), ev.input_tokens, limits.max_tokens)?;
    check_count(at("output_tokens"), ev.output_tokens, limits.max_tokens)?;
    if let Some(attributes) = &ev.attributes {
        let size = json_size(attributes);
        if size > limits.max_attributes_bytes {
            return Err(invalid(
                at("attributes"),
                format!(
                    "{size} bytes of JSON; expected at most {}",
                    limits.max_attributes_bytes
                ),
            ));
        }
        for (k, v) in attributes {
            check_json_key(format!("{} key {k:?}", at("attributes")), k)?;
            check_json_storable(&format!("{}.{k}", at("attributes")), v)?;
        }
    }
    for (name, v) in [
        ("model", &ev.model),
        ("tool", &ev.tool),
        ("region", &ev.region),
        ("decision_id", &ev.decision_id),
    ] {
        if let Some(v) = v {
            check_id_at(at(name), v)?;
        }
    }
    Ok(())
}

/// Splits spans mapped from an OTLP export into those `validate_event` accepts and a rejection,
/// with its reason, for each of the rest. The server stores spans in chunks, all or none, so
/// a span the service refuses must be rejected on its own before it can fail its neighbours.
pub fn storable_spans(
    limits: &Limits,
    spans: Vec<MappedSpan>,
) -> (Vec<MappedSpan>, Vec<RejectedSpan>) {
    let mut rejected = Vec::new();
    let storable = spans
        .into_iter()
        .filter_map(|m| match validate_event(limits, 0, &m.event, false) {
            Ok(()) => Some(m),
            Err(e) => {
                rejected.push(RejectedSpan {
                    span: m.span,
                    reason: e.to_string(),
                });
                None
            }
        })
        .collect();
    (storable, rejected)
}

impl Mesh {
    /// Validates and durably stores a batch of events: all or none.
    pub async fn record_events(
        &self,
        principal: &Principal,
        inputs: Vec<EventInput>,
        door: IngestDoor,
    ) -> Result<Vec<RecordedEvent>, MeshError> {
        let received = std::time::Instant::now();
        let batch = door.is_batch();
        if inputs.is_empty() {
            return Err(invalid("events", "expected at least one event"));
        }
        if inputs.len() > self.limits.max_batch_events {
            return Err(invalid(
                "events",
                format!(
                    "{} events in one batch; expected at most {}",
                    inputs.len(),
                    self.limits.max_batch_events
                ),
            ));
        }
        for (i, ev) in inputs.iter().enumerate() {
            validate_event(&self.limits, i, ev, batch)?;
            principal
                .may_act_for(&ev.agent_id, "record events")
                .map_err(|e| MeshError::Forbidden(e.to_string()))?;
        }
        let at = now_ms();
        let bundle = self.bundle.current();
        let mut settle = Vec::new();
        let mut records: Vec<EventRecord> = Vec::with_capacity(inputs.len());
        for ev in inputs {
            let spends =
                ev.input_tokens.is_some() || ev.output_tokens.is_some() || ev.cost_usd.is_some();
            match ev.decision_id {
                Some(id) => settle.push(Settle::Decision(id)),
                None if spends => settle.push(Settle::OldestOf(ev.agent_id.clone())),
                None => {}
            }
            records.push(EventRecord {
                id: new_id("evt"),
                tenant: principal.tenant.clone(),
                agent_id: ev.agent_id,
                kind: ev.kind,
                outcome: ev.outcome,
                latency_ms: ev.latency_ms,
                input_tokens: ev.input_tokens,
                output_tokens: ev.output_tokens,
                cost_usd: ev.cost_usd,
                model: ev.model,
                tool: ev.tool,
                region: ev.region,
                attributes: ensure_object(ev.attributes),
                created_at_ms: at,
            });
        }
        let spend = SpendChange {
            tenant: principal.tenant.clone(),
            increments: spend_of(&bundle, &principal.tenant, &records),
            settle,
        };
        let indexes = self
            .store
            .append_events_with_spend(&records, (!spend.is_empty()).then_some(spend))
            .await?;
        self.metrics.record_ingest(
            door.as_str(),
            records.len() as u64,
            received.elapsed().as_secs_f64(),
        );
        let team_of = |agent: &str| bundle.placement(agent).team.map(str::to_string);
        self.live
            .observe_events(&principal.tenant, &records, &indexes, &team_of, received)
            .await;
        Ok(records
            .iter()
            .zip(indexes)
            .map(|(r, ledger_index)| RecordedEvent {
                event_id: r.id.clone(),
                ledger_index,
                recorded_at: rfc3339_ms(r.created_at_ms),
            })
            .collect())
    }
}

/// The spend each event reports, counted towards its agent, its team and the tenant.
fn spend_of(bundle: &Bundle, tenant: &str, records: &[EventRecord]) -> Vec<UsageIncrement> {
    records
        .iter()
        .filter(|r| r.input_tokens.is_some() || r.output_tokens.is_some() || r.cost_usd.is_some())
        .map(|r| {
            let mut scopes = vec![
                (Scope::Agent.as_str().to_string(), r.agent_id.clone()),
                (Scope::Tenant.as_str().to_string(), tenant.to_string()),
            ];
            if let Some(team) = bundle.placement(&r.agent_id).team {
                scopes.push((Scope::Team.as_str().to_string(), team.to_string()));
            }
            UsageIncrement {
                scopes,
                at_ms: r.created_at_ms,
                tokens: r
                    .input_tokens
                    .unwrap_or(0)
                    .saturating_add(r.output_tokens.unwrap_or(0)),
                cost_micro_usd: r.cost_usd.map_or(0, micro_usd),
            }
        })
        .collect()
}

/// The size of a value's JSON, counted as it is written rather than built (every event pays
/// for this check).
fn json_size(value: &impl Serialize) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    match serde_json::to_writer(&mut count, value) {
        Ok(()) => count.0,
        Err(_) => usize::MAX,
    }
}

#[cfg(test)]
mod tests {
    use meshos_trust::otlp::SpanRef;
    use meshos_types::Outcome;

    use super::*;

    fn span(n: usize, attributes: serde_json::Value) -> MappedSpan {
        MappedSpan {
            span: SpanRef {
                trace_id: "5b".repeat(16),
                span_id: format!("{n:016x}"),
                name: "chat".into(),
            },
            event: EventInput {
                agent_id: "support-bot".into(),
                kind: "llm_call".into(),
                outcome: Outcome::Ok,
                latency_ms: Some(12.0),
                input_tokens: None,
                output_tokens: None,
                cost_usd: None,
                model: None,
                tool: None,
                region: None,
                attributes: attributes.as_object().cloned(),
                decision_id: None,
            },
        }
    }

    #[test]
    fn attributes_that_would_not_read_back_are_refused() {
        // Found by fuzzing (fuzz/regressions/events_body/): stored as text, an object whose
        // first key is serde_json's raw-value marker reads back as something else, or not at
        // all, so the event's leaf could not be re-derived.
        let token = "$serde_json::private::RawValue";
        let top = serde_json::json!({ token: 300 });
        assert!(serde_json::from_str::<serde_json::Value>(&top.to_string()).is_err());
        let nested = serde_json::json!({"otel": { token: "[1]" }});
        let read_back: serde_json::Value = serde_json::from_str(&nested.to_string()).unwrap();
        assert_ne!(read_back, nested);
        for attributes in [top, nested] {
            let m = span(1, attributes);
            let err = validate_event(&Limits::default(), 0, &m.event, false).unwrap_err();
            assert!(err.to_string().contains("reserved"), "{err}");
        }
        let fine = span(1, serde_json::json!({"otel": {"x": [token]}}));
        assert!(validate_event(&Limits::default(), 0, &fine.event, false).is_ok());
    }

    #[test]
    fn a_span_the_service_refuses_is_rejected_alone() {
        // Found by fuzzing (fuzz/regressions/otlp_protobuf/): a NUL in one span's attribute
        // key, or a cost over the limit, failed every span of its chunk of up to 10,000.
        let mut expensive = span(3, serde_json::json!({}));
        expensive.event.cost_usd = Some(1e308);
        let spans = vec![
            span(1, serde_json::json!({"gen_ai.prompt": "fine"})),
            span(2, serde_json::json!({"ope\u{0}n": "x"})),
            expensive,
            span(4, serde_json::json!({})),
        ];
        let (storable, rejected) = storable_spans(&Limits::default(), spans);
        let ids = |s: &[MappedSpan]| s.iter().map(|m| m.span.span_id.clone()).collect::<Vec<_>>();
        assert_eq!(
            ids(&storable),
            [format!("{:016x}", 1), format!("{:016x}", 4)]
        );
        assert_eq!(rejected.len(), 2);
        assert!(rejected[0].reason.contains("NUL"), "{:?}", rejected[0]);
        assert!(rejected[1].reason.contains("cost_usd"), "{:?}", rejected[1]);
    }
}
