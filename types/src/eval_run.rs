//! The ledger's record of a finished eval run: which suite (by digest), on which data, against
//! which target and model, and what it scored. Raw inputs and outputs never enter it.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One finished eval run, as appended to the tenant's ledger.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct EvalRunRecord {
    pub id: String,
    pub tenant: String,
    pub suite_id: String,
    /// SHA-256 of the suite's canonical form.
    pub suite_digest: String,
    /// SHA-256 of the dataset's canonical form (the items the run used).
    pub dataset_digest: String,
    /// The target's kind and identity (e.g. `openai:http://host/v1`), without credentials.
    pub target: String,
    pub model: Option<String>,
    /// The agent whose trust the results feed.
    pub agent_id: String,
    /// `manual`, `schedule:<id>` or `healer:<incident id>`.
    pub trigger: String,
    /// `completed`, `failed` or `cancelled`.
    pub status: String,
    pub items: u64,
    /// Items whose every scorer passed.
    pub items_passed: u64,
    /// Items the target could not answer (after retries).
    pub items_failed: u64,
    /// Per scorer: `{passed, total, pass_rate, mean}`.
    pub scores: serde_json::Value,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cost_usd: f64,
    pub started_at_ms: i64,
    pub finished_at_ms: i64,
}
