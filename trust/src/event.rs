//! The telemetry event model: one thing an agent did, as every ingest door (REST batches,
//! the MCP `record_event` tool, OTLP spans) delivers it before it is validated and stored.

use meshos_types::Outcome;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One thing an agent did.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EventInput {
    /// The agent that acted (1-128 chars: letters, digits, `._-:@/`).
    pub agent_id: String,
    /// What kind of thing happened, e.g. `tool_call`, `llm_call`, `output_validation`, `eval`.
    pub kind: String,
    /// `ok`, `error` or `violation` (the action broke a rule).
    pub outcome: Outcome,
    /// Wall-clock latency of the action in milliseconds.
    #[serde(default)]
    pub latency_ms: Option<f64>,
    /// Prompt tokens used.
    #[serde(default)]
    pub input_tokens: Option<i64>,
    /// Completion tokens used.
    #[serde(default)]
    pub output_tokens: Option<i64>,
    /// Cost of the action in US dollars.
    #[serde(default)]
    pub cost_usd: Option<f64>,
    /// Model used, if any.
    #[serde(default)]
    pub model: Option<String>,
    /// Tool used, if any.
    #[serde(default)]
    pub tool: Option<String>,
    /// Cloud region where it ran, if known (e.g. `aws:eu-west-1`).
    #[serde(default)]
    pub region: Option<String>,
    /// Any other attributes, kept as given (a JSON object).
    #[serde(default)]
    pub attributes: Option<serde_json::Map<String, serde_json::Value>>,
    /// The `decision_id` of the `policy_check` this event reports on: its spend settles that
    /// check's budget reservation. Without it, the agent's oldest open reservation is settled.
    #[serde(default)]
    pub decision_id: Option<String>,
}
