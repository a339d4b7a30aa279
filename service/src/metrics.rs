//! Prometheus metrics (OpenMetrics text on `/metrics`).
//!
//! Every label takes its values from a fixed set (verdicts, tool names, doors, signal kinds),
//! except the per-agent trust gauge, whose `tenant` and `agent` labels a client chooses. That
//! gauge is therefore off unless the deployment asks for it ([`Metrics::with_agent_series`]),
//! bounded by the agents held live when on, and served to a token only for its own tenant
//! ([`Metrics::encode_for_tenant`]).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
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

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AgentLabels {
    pub tenant: String,
    pub agent: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DoorLabels {
    /// `rest`, `mcp` or `otlp`.
    pub door: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WitnessLabels {
    /// The witness's `<key name>+<hex key id>` (configured, so bounded).
    pub witness: String,
    /// `cosigned`, `conflict`, `refused`, `unreachable`, `invalid` or `error`.
    pub outcome: String,
}

fn latency_histogram() -> Histogram {
    // 10 µs … ~5 s.
    Histogram::new(exponential_buckets(0.000_01, 2.0, 20))
}

pub struct Metrics {
    registry: Registry,
    pub events_ingested: Counter,
    pub decisions: Family<DecisionLabels, Counter>,
    pub tool_calls: Family<ToolLabels, Counter>,
    pub tool_seconds: Family<ToolLabels, Histogram>,
    /// Pseudonyms revealed to operators (each one is also a ledger record).
    pub reidentifications: Counter,
    /// Live trust score per agent.
    pub trust_scores: Family<AgentLabels, Gauge<f64, std::sync::atomic::AtomicU64>>,
    /// Events accepted per ingest door.
    pub ingest_events: Family<DoorLabels, Counter>,
    /// OTLP spans refused (reported to the exporter as partial success).
    pub otlp_spans_rejected: Counter,
    /// Request received → events durably committed, per batch.
    pub ingest_seconds: Family<DoorLabels, Histogram>,
    /// Request received → the agents' live scores include the batch.
    pub trust_freshness: Histogram,
    /// Time to fold one agent's share of a batch into its score.
    pub trust_scoring: Histogram,
    pub trust_rebuild_failures: Counter,
    pub drift_signals: Family<KindLabels, Counter>,
    pub sla_alerts: Family<KindLabels, Counter>,
    pub webhook_deliveries: Family<KindLabels, Counter>,
    /// 1 while this process holds the healer's leader lease and runs the healing loop.
    pub healer_leader: Gauge,
    pub healer_ticks: Counter,
    /// Checkpoint submissions to witnesses, by witness and outcome.
    pub witness_submissions: Family<WitnessLabels, Counter>,
    /// Whether `trust_scores` carries one series per agent.
    agent_series: bool,
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
    /// Metrics without per-agent series.
    pub fn new() -> Metrics {
        Self::with_agent_series(false)
    }

    /// `agent_series`: export each live agent's trust score as a `meshos_trust_score` series
    /// labelled with its tenant and agent id.
    pub fn with_agent_series(agent_series: bool) -> Metrics {
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
        let trust_scores =
            Family::<AgentLabels, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
        registry.register(
            "trust_score",
            "Live trust score per agent (0-100)",
            trust_scores.clone(),
        );
        let ingest_events = Family::<DoorLabels, Counter>::default();
        registry.register(
            "ingest_events",
            "Events accepted per ingest door",
            ingest_events.clone(),
        );
        let otlp_spans_rejected = Counter::default();
        registry.register(
            "otlp_spans_rejected",
            "OTLP spans refused and reported as partial success",
            otlp_spans_rejected.clone(),
        );
        let ingest_seconds =
            Family::<DoorLabels, Histogram>::new_with_constructor(latency_histogram);
        registry.register(
            "ingest_duration_seconds",
            "Ingest request received to events durably committed",
            ingest_seconds.clone(),
        );
        let trust_freshness = latency_histogram();
        registry.register(
            "trust_freshness_seconds",
            "Ingest request received to the live trust scores including it",
            trust_freshness.clone(),
        );
        let trust_scoring = latency_histogram();
        registry.register(
            "trust_scoring_seconds",
            "Folding one agent's events of a batch into its live score",
            trust_scoring.clone(),
        );
        let trust_rebuild_failures = Counter::default();
        registry.register(
            "trust_rebuild_failures",
            "Agent trust states that could not be rebuilt from the store",
            trust_rebuild_failures.clone(),
        );
        let drift_signals = Family::<KindLabels, Counter>::default();
        registry.register(
            "drift_signals",
            "Drift signals raised, by metric",
            drift_signals.clone(),
        );
        let sla_alerts = Family::<KindLabels, Counter>::default();
        registry.register(
            "sla_alerts",
            "SLA alerts raised, by kind",
            sla_alerts.clone(),
        );
        let webhook_deliveries = Family::<KindLabels, Counter>::default();
        registry.register(
            "webhook_deliveries",
            "Webhook deliveries by outcome (delivered, failed)",
            webhook_deliveries.clone(),
        );
        let healer_leader = Gauge::default();
        registry.register(
            "healer_leader",
            "1 while this process holds the healer's leader lease",
            healer_leader.clone(),
        );
        let healer_ticks = Counter::default();
        registry.register(
            "healer_ticks",
            "Healing loop ticks run by this process",
            healer_ticks.clone(),
        );
        let witness_submissions = Family::<WitnessLabels, Counter>::default();
        registry.register(
            "witness_submissions",
            "Checkpoints submitted to witnesses, by witness and outcome (cosigned, conflict, refused, unreachable, invalid, error)",
            witness_submissions.clone(),
        );
        Metrics {
            registry,
            events_ingested,
            decisions,
            tool_calls,
            tool_seconds,
            reidentifications,
            trust_scores,
            ingest_events,
            otlp_spans_rejected,
            ingest_seconds,
            trust_freshness,
            trust_scoring,
            trust_rebuild_failures,
            drift_signals,
            sla_alerts,
            webhook_deliveries,
            healer_leader,
            healer_ticks,
            witness_submissions,
            agent_series,
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

    /// Drops an agent's trust gauge (it is no longer held live), so the series count stays
    /// bounded by the agents held.
    pub fn forget_trust_score(&self, tenant: &str, agent: &str) {
        self.trust_scores.remove(&AgentLabels {
            tenant: tenant.to_string(),
            agent: agent.to_string(),
        });
    }

    pub fn set_trust_score(&self, tenant: &str, agent: &str, score: f64) {
        if !self.agent_series {
            return;
        }
        self.trust_scores
            .get_or_create(&AgentLabels {
                tenant: tenant.to_string(),
                agent: agent.to_string(),
            })
            .set(score);
    }

    pub fn record_ingest(&self, door: &str, events: u64, seconds: f64) {
        let labels = DoorLabels {
            door: door.to_string(),
        };
        self.events_ingested.inc_by(events);
        self.ingest_events.get_or_create(&labels).inc_by(events);
        self.ingest_seconds.get_or_create(&labels).observe(seconds);
    }

    fn count(family: &Family<KindLabels, Counter>, kind: &str) {
        family
            .get_or_create(&KindLabels {
                kind: kind.to_string(),
            })
            .inc();
    }

    pub fn record_drift_signal(&self, metric: &str) {
        Self::count(&self.drift_signals, metric);
    }

    pub fn record_sla_alert(&self, kind: &str) {
        Self::count(&self.sla_alerts, kind);
    }

    pub fn record_webhook(&self, delivered: bool) {
        Self::count(
            &self.webhook_deliveries,
            if delivered { "delivered" } else { "failed" },
        );
    }

    pub fn record_witness(&self, witness: &str, outcome: &str) {
        self.witness_submissions
            .get_or_create(&WitnessLabels {
                witness: witness.to_string(),
                outcome: outcome.to_string(),
            })
            .inc();
    }

    /// Every series, for a scraper on the metrics address.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }

    /// Every series except those labelled with another tenant: what a tenant's token sees.
    pub fn encode_for_tenant(&self, tenant: &str) -> String {
        let all = self.encode();
        // Tenant and agent ids are restricted to `[A-Za-z0-9._:@/-]` (`validate_id`), so a label
        // value never holds a quote or a newline and a line test is exact.
        let mine = format!("{{tenant=\"{tenant}\"");
        let mut out = String::with_capacity(all.len());
        for line in all.lines() {
            let labelled = !line.starts_with('#') && line.contains("{tenant=\"");
            if !labelled || line.contains(&mine) {
                out.push_str(line);
                out.push('\n');
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_series_are_off_unless_asked_for() {
        let off = Metrics::new();
        off.set_trust_score("acme", "bot-1", 80.0);
        assert!(!off.encode().contains("bot-1"));
        let on = Metrics::with_agent_series(true);
        on.set_trust_score("acme", "bot-1", 80.0);
        assert!(on.encode().contains("agent=\"bot-1\""));
    }

    #[test]
    fn a_tenant_sees_its_own_agent_series_and_no_other_tenants() {
        let m = Metrics::with_agent_series(true);
        m.set_trust_score("acme", "bot-1", 80.0);
        m.set_trust_score("acme2", "bot-2", 70.0);
        m.record_ingest("rest", 3, 0.01);
        let acme = m.encode_for_tenant("acme");
        assert!(acme.contains("agent=\"bot-1\""), "{acme}");
        assert!(!acme.contains("bot-2"), "{acme}");
        assert!(
            acme.contains("meshos_ingest_events_total{door=\"rest\"} 3"),
            "{acme}"
        );
        let other = m.encode_for_tenant("acme2");
        assert!(
            other.contains("bot-2") && !other.contains("bot-1"),
            "{other}"
        );
    }
}
