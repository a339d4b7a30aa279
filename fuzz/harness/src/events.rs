//! `POST /v1/events` bodies: the batch formats the server accepts (`{"events":[…]}`, a JSON
//! array, JSON lines), then the validation `record_events` runs on every event.
//!
//! Invariant beyond "no panic": an event that passes validation can be stored and audited —
//! its ledger leaf, re-derived from the attributes the store reads back from their JSON text
//! (what `meshos audit verify` does), is the leaf it was appended with.

use meshos_mcp_server::event_batch::parse_event_batch;
use meshos_service::events::validate_event;
use meshos_service::{EventInput, Limits};
use meshos_types::{EventRecord, LedgerRecord};

pub fn body(data: &[u8]) {
    let Ok(events) = parse_event_batch(data) else {
        return;
    };
    let limits = Limits::default();
    for (i, ev) in events.into_iter().enumerate() {
        if validate_event(&limits, i, &ev, true).is_ok() {
            assert_leaf_survives_the_store(ev);
        }
    }
}

/// The event `record_events` appends for `ev` (ids and time fixed: they are not input) has the
/// same ledger leaf when its attributes are read back from the JSON text the store keeps.
pub fn assert_leaf_survives_the_store(ev: EventInput) {
    let record = EventRecord {
        id: "evt_fuzz".into(),
        tenant: "acme".into(),
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
        attributes: serde_json::Value::Object(ev.attributes.unwrap_or_default()),
        created_at_ms: 1_800_000_000_000,
    };
    let stored = serde_json::to_string(&record.attributes).expect("attributes serialise");
    let read_back = EventRecord {
        attributes: serde_json::from_str(&stored).expect("stored attributes parse back"),
        ..record.clone()
    };
    assert_eq!(
        LedgerRecord::Event(record).canonical_bytes(),
        LedgerRecord::Event(read_back).canonical_bytes(),
        "an event's leaf changes when its attributes are read back from the store"
    );
}
