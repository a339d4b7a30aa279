//! Prometheus metrics (OpenMetrics text on `/metrics`).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use meshos_types::Verdict;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DecisionLabels {
    pub decision: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ToolLabels {
    pub tool: String,
    pub result: String,
}

pub struct Metrics {
    registry: Registry,
    pub events_ingested: Counter,
    pub decisions: Family<DecisionLabels, Counter>,
    pub tool_calls: Family<ToolLabels, Counter>,
    pub tool_seconds: Family<ToolLabels, Histogram>,
    /// Pseudonyms revealed to operators (each one is also a ledger record).
    pub reidentifications: Counter,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("meshos");
        let events_ingested = Counter::default();
        let decisions = Family::<DecisionLabels, Counter>::default();
        let tool_calls = Family::<ToolLabels, Counter>::default();
        let reidentifications = Counter::default();
        registry.register(
            "pseudonym_reidentifications",
            "Pseudonyms revealed to operators",
            reidentifications.clone(),
        );
        let tool_seconds = Family::<ToolLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.000_05, 2.0, 16))
        });
        registry.register(
            "events_ingested",
            "Events accepted and stored",
            events_ingested.clone(),
        );
        registry.register(
            "policy_decisions",
            "Policy decisions by verdict",
            decisions.clone(),
        );
        registry.register("tool_calls", "MCP tool calls by result", tool_calls.clone());
        registry.register(
            "tool_duration_seconds",
            "MCP tool call duration",
            tool_seconds.clone(),
        );
        Metrics {
            registry,
            events_ingested,
            decisions,
            tool_calls,
            tool_seconds,
            reidentifications,
        }
    }

    pub fn record_decision(&self, verdict: Verdict) {
        self.decisions
            .get_or_create(&DecisionLabels {
                decision: verdict.as_str().to_string(),
            })
            .inc();
    }

    pub fn record_tool(&self, tool: &str, ok: bool, seconds: f64) {
        let labels = ToolLabels {
            tool: tool.to_string(),
            result: if ok { "ok" } else { "error" }.to_string(),
        };
        self.tool_calls.get_or_create(&labels).inc();
        self.tool_seconds.get_or_create(&labels).observe(seconds);
    }

    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}
