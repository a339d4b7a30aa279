//! The transport-free service core of Mesh OS, in the role rust-analyzer's `ide` crate plays:
//! everything an agent or operator can ask of the mesh, as plain async functions over typed
//! inputs and outputs. MCP, REST, OTLP and the CLI (crate `meshos-mcp-server`) authenticate,
//! check arguments and call into [`Mesh`]; nothing here knows about a transport.
//!
//! It owns the state that lives between requests: the live trust of every agent, the per-tenant
//! keys (derived from the ledger key in one place), the rate limiter, the policy bundle in force
//! and its hot reload, signed webhook delivery, checkpoint signing and their submission to
//! witnesses, the healer host (leader lease and the server's side of `HealerPorts`) and ledger
//! audit.

pub mod approvals;
pub mod audit;
pub mod bundle_source;
pub mod checkpoints;
pub mod eval_api;
pub mod eval_scheduler;
pub mod evals;
pub mod events;
pub mod evidence;
pub mod healer_host;
pub mod incidents;
pub mod keys;
pub mod live_trust;
pub mod mesh;
pub mod metrics;
pub mod policy_check;
pub mod pseudonyms;
pub mod rate_limit;
pub mod routing;
pub mod trust;
pub mod vault;
pub mod webhook;
pub mod witnesses;

#[doc(hidden)]
pub mod test_support;

pub use approvals::*;
pub use checkpoints::*;
pub use events::*;
pub use evidence::*;
pub use mesh::{Limits, Mesh, MeshBuilder, MeshError, TrustSetup};
/// The type of `PolicyCheckInput::content_source`, for callers that do not depend on the policy
/// crate (the gateway).
pub use meshos_policy::ContentSource;
pub use policy_check::*;
pub use pseudonyms::*;
pub use trust::*;
pub use witnesses::WitnessEndpoint;
