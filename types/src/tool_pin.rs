//! The ledger's record of what `meshos gateway` decided about an upstream tool's definition:
//! pinned on first sight, held back for an operator (added later, changed, shadowing another
//! server's tool, or suspicious), blocked (poisoned), approved or refused, or removed upstream.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ToolPinRecord {
    pub id: String,
    pub tenant: String,
    /// The upstream server, as the gateway's configuration names it.
    pub server: String,
    /// The tool's own name on that server.
    pub tool: String,
    /// SHA-256 (hex) of the definition's canonical JSON (name, title, description, input and
    /// output schemas, annotations); empty for a removal.
    pub digest: String,
    /// Why this record: `first_seen`, `added`, `changed`, `shadowing`, `suspicious`, `poisoned`,
    /// `approved`, `refused` or `removed`.
    pub change: String,
    /// What agents get now: `pinned` (callable), `held` (waits for an operator), `blocked` or
    /// `removed`.
    pub status: String,
    /// What the poisoning scan and the name checks found: `[{rule, category, severity,
    /// location, excerpt, message}]`.
    pub findings: serde_json::Value,
    /// The policy decision behind a held or blocked pin (answered through the approval flow).
    pub decision_id: Option<String>,
    pub created_at_ms: i64,
}
