//! What a target answered for one item: the text, the tool calls, and what it cost. Scorers read
//! this; runners produce it.

use serde::{Deserialize, Serialize};

/// One tool call in an answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    pub name: String,
    /// The arguments as JSON (an object for well-formed calls; kept as sent otherwise).
    pub arguments: serde_json::Value,
}

/// A target's answer to one item.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Output {
    /// The answer's text (the assistant message content; empty when it only called tools).
    pub text: String,
    #[serde(default)]
    pub tool_calls: Vec<ToolCall>,
    /// Wall time from sending the request to the whole answer, in milliseconds.
    pub latency_ms: f64,
    #[serde(default)]
    pub input_tokens: u64,
    #[serde(default)]
    pub output_tokens: u64,
    /// What the answer cost, in US dollars, when the target's price is known.
    #[serde(default)]
    pub cost_usd: f64,
    /// The model that answered, as the target reported it.
    #[serde(default)]
    pub model: Option<String>,
}
