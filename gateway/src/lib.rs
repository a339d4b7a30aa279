//! Mesh OS gateway: an MCP server in front of other MCP servers, so that what agents do with
//! tools is governed in the path rather than on the agents' word.
//!
//! Owns: the upstream configuration (`config.rs`), the client connections to upstreams
//! (`upstream.rs`, rmcp's client over stdio children and streamable HTTP), tool pinning
//! (`pins.rs`: canonical digests on the ledger, changes put to policy, the poisoning scan of
//! `meshos-toolscan`), the governed call and the client registry (`gateway.rs`), and the MCP
//! server clients talk to (`server.rs`). Decisions, events, approvals and the ledger are the
//! service's (`meshos-service`); this crate only calls it.
//!
//! One `tools/call`, in order — each step can refuse it with a tool error that names why:
//! 1. the caller is an agent token; its client (agent + program name) is admitted by policy
//!    (`mcp.client`; the shipped bundle holds a new client for an operator);
//! 2. the tool is in the tenant's pinned catalog (not held, blocked or unknown);
//! 3. `policy_check` of `mcp.tool` with the tool, its arguments typed for Cedar and their text
//!    scanned (secrets, personal data, injection), the agent's controls, budgets and rate —
//!    recorded on the ledger before anything goes upstream; `redact` forwards redacted arguments;
//! 4. the upstream call, with the upstream's timeout;
//! 5. the result's text through the same data rules (`mcp.tool_result`): redacted or withheld
//!    as policy says, the decision recorded when it is not `allow`;
//! 6. a `tool_call` event of the agent (outcome, latency, both verdicts), which moves its trust.
//!
//! The healer's controls act here with no change: a quarantined agent or a revoked tool is
//! refused at step 3 of the next call.

pub mod config;
pub mod gateway;
pub mod pins;
pub mod server;
pub mod upstream;

pub use config::{GatewayConfig, UpstreamConfig};
pub use gateway::{Gateway, GatewayError};
pub use server::GatewayMcp;
