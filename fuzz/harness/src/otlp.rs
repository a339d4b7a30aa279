//! `POST /v1/traces` bodies: OTLP protobuf and OTLP/JSON through the decoder the server runs,
//! then the span → event mapping and the reply.
//!
//! The decoder first counts, on the encoded bytes, what a body holds (`otlp_limits.rs`), so
//! that a few bytes cannot decode into gigabytes. The invariant checked here: whatever decodes
//! holds no more spans, and no more repeated items (messages, or scalars in repeated fields),
//! than the limits allow — a body the walker undercounts is an allocation it does not bound.
//! The limits are small so that inputs of a few hundred bytes can cross them. And every span
//! the server goes on to store passes the service's validation (spans are recorded in chunks,
//! all or none, so one that fails would take its whole chunk down with it) and reads back from
//! the store with the ledger leaf it was appended with.

use meshos_service::Limits;
use meshos_service::events::{storable_spans, validate_event};
use meshos_trust::otlp::common::{AnyValue, KeyValue, any_value::Value};
use meshos_trust::otlp::{self, DecodeLimits, Encoding, ExportTraceServiceRequest};

/// Limits small enough for fuzz-sized inputs to cross.
pub const LIMITS: DecodeLimits = DecodeLimits {
    max_spans: 16,
    max_elements: 256,
};

/// A binary protobuf `ExportTraceServiceRequest`.
pub fn protobuf(data: &[u8]) {
    decode_and_map(data, Encoding::Protobuf);
}

/// An OTLP/JSON `ExportTraceServiceRequest`.
pub fn json(data: &[u8]) {
    decode_and_map(data, Encoding::Json);
}

fn decode_and_map(data: &[u8], encoding: Encoding) {
    let Ok(request) = otlp::decode_request_within(data, encoding, &LIMITS) else {
        return;
    };
    let held = Held::of(&request);
    assert!(
        held.spans <= LIMITS.max_spans,
        "decoded {} spans past a limit of {}",
        held.spans,
        LIMITS.max_spans
    );
    assert!(
        held.items <= LIMITS.max_elements,
        "decoded {} repeated items past a limit of {} elements",
        held.items,
        LIMITS.max_elements
    );
    let warning = otlp::empty_export_warning(&request, data.len());
    let mapped = otlp::map_request(&request);
    assert_eq!(
        mapped.events.len() + mapped.rejected.len(),
        held.spans,
        "every span is either an event or a rejection"
    );
    // What `POST /v1/traces` stores after the mapping: the spans the service accepts, each of
    // the others rejected on its own (a chunk of spans is stored all or none).
    let limits = Limits::default();
    let spans = mapped.events.len();
    let (storable, refused) = storable_spans(&limits, mapped.events);
    assert_eq!(storable.len() + refused.len(), spans, "a span was lost");
    for (i, m) in storable.iter().enumerate() {
        if let Err(e) = validate_event(&limits, i, &m.event, true) {
            panic!("{} would fail its whole chunk: {e}", m.span);
        }
        crate::events::assert_leaf_survives_the_store(m.event.clone());
    }
    let mut rejected = mapped.rejected;
    rejected.extend(refused);
    let _ = otlp::rejection_message(&rejected);
    let _ = otlp::encode_export_response(&rejected, warning, encoding);
}

/// What a decoded request holds: spans, and every message or repeated-field item below the
/// request (each costs memory of its own, whatever its encoding cost).
#[derive(Debug, Default)]
struct Held {
    spans: usize,
    items: usize,
}

impl Held {
    fn of(request: &ExportTraceServiceRequest) -> Held {
        let mut held = Held::default();
        for rs in &request.resource_spans {
            held.items += 1;
            if let Some(resource) = &rs.resource {
                held.items += 1;
                held.key_values(&resource.attributes);
                for entity in &resource.entity_refs {
                    held.items += 1 + entity.id_keys.len() + entity.description_keys.len();
                }
            }
            for ss in &rs.scope_spans {
                held.items += 1;
                if let Some(scope) = &ss.scope {
                    held.items += 1;
                    held.key_values(&scope.attributes);
                }
                for span in &ss.spans {
                    held.spans += 1;
                    held.items += 1;
                    held.key_values(&span.attributes);
                    for event in &span.events {
                        held.items += 1;
                        held.key_values(&event.attributes);
                    }
                    for link in &span.links {
                        held.items += 1;
                        held.key_values(&link.attributes);
                    }
                    held.items += usize::from(span.status.is_some());
                }
            }
        }
        held
    }

    fn key_values(&mut self, list: &[KeyValue]) {
        for kv in list {
            self.items += 1;
            if let Some(value) = &kv.value {
                self.any_value(value);
            }
        }
    }

    fn any_value(&mut self, value: &AnyValue) {
        self.items += 1;
        match &value.value {
            Some(Value::ArrayValue(array)) => {
                self.items += 1;
                for v in &array.values {
                    self.any_value(v);
                }
            }
            Some(Value::KvlistValue(list)) => {
                self.items += 1;
                self.key_values(&list.values);
            }
            _ => {}
        }
    }
}
