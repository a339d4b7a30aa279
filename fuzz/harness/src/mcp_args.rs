//! MCP tool arguments: arbitrary JSON through `parse_named` (what `Checked<T>` runs for every
//! tool) into each tool's input type, then the same checks the server runs.
//!
//! An input is one byte choosing the tool, one choosing the caller's role, then the JSON
//! arguments. `record_event` and `policy_check` run their pure checks (`validate_event`, and
//! `evaluate_check`: validation plus the whole decision, content scanning included) because the
//! tools themselves append to the ledger; every other tool runs for real on a `Mesh` over an
//! empty SQLite store, where no argument can make it write. Invariant beyond "no panic": an
//! argument is the caller's fault, so it may be invalid, forbidden or not found, but never an
//! internal or storage error.

use std::sync::OnceLock;

use meshos_carbon::Dataset;
use meshos_evidence::NoteSigner;
use meshos_mcp_server::checked::parse_named;
use meshos_policy::{Bundle, Detectors};
use meshos_service::events::validate_event;
use meshos_service::incidents;
use meshos_service::{CheckControls, Limits, Mesh, MeshError, PolicyContext, evaluate_check};
use meshos_store::{Store, sqlite_url_for_data_dir};
use meshos_types::{Principal, Role};
use serde::de::DeserializeOwned;

/// The tools, in the order the first input byte picks them.
pub const TOOLS: &[&str] = &[
    "record_event",
    "policy_check",
    "trust_score",
    "evidence_fetch",
    "carbon_route",
    "approval_decide",
    "approvals_pending",
    "incident_list",
    "incident_show",
    "incident_approve",
    "incident_deny",
    "incident_release",
    "pseudonym_reveal",
];

const ROLES: [Role; 4] = [Role::Agent, Role::Operator, Role::Auditor, Role::Admin];

struct Server {
    runtime: tokio::runtime::Runtime,
    mesh: Mesh,
    bundle: Bundle,
    detectors: Detectors,
    dataset: Dataset,
    /// Holds the store's files for the life of the process.
    _data_dir: tempfile::TempDir,
}

fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let data_dir = tempfile::Builder::new()
            .prefix("meshos-fuzz-mcp-args-")
            .tempdir()
            .expect("a temporary directory");
        let mesh = runtime.block_on(async {
            let store = Store::connect(&sqlite_url_for_data_dir(data_dir.path()))
                .await
                .expect("an empty SQLite store");
            let signer = NoteSigner::from_seed("meshos.fuzz/ledger", &[9; 32])
                .expect("a valid key name and seed");
            Mesh::builder(store, signer).build().expect("a mesh")
        });
        Server {
            runtime,
            mesh,
            bundle: Bundle::embedded_default().expect("the shipped bundle loads"),
            detectors: Detectors::new(),
            dataset: Dataset::embedded().expect("the shipped region dataset loads"),
            _data_dir: data_dir,
        }
    })
}

pub fn args(data: &[u8]) {
    let [tool, role, json @ ..] = data else {
        return;
    };
    let tool = TOOLS[usize::from(*tool) % TOOLS.len()];
    let role = ROLES[usize::from(*role) % ROLES.len()];
    // rmcp hands tools a JSON object; anything that is not JSON fails before them.
    let Ok(arguments) = serde_json::from_slice::<serde_json::Value>(json) else {
        return;
    };
    let principal = Principal {
        token_id: "tok_fuzz".into(),
        tenant: "acme".into(),
        role,
        agent_id: (role == Role::Agent).then(|| "support-bot".into()),
    };
    let server = server();
    let result = match tool {
        "record_event" => parsed(arguments).and_then(|ev| {
            validate_event(&server.mesh.limits(), 0, &ev, false)?;
            principal
                .may_act_for(&ev.agent_id, "record events")
                .map_err(|e| MeshError::Forbidden(e.to_string()))
        }),
        "policy_check" => parsed(arguments).and_then(|input: meshos_service::PolicyCheckInput| {
            principal
                .may_act_for(&input.agent_id, "request policy decisions")
                .map_err(|e| MeshError::Forbidden(e.to_string()))?;
            let ctx = PolicyContext {
                bundle: &server.bundle,
                detectors: &server.detectors,
                dataset: &server.dataset,
                limits: Limits::default(),
            };
            evaluate_check(&ctx, &principal.tenant, &input, &CheckControls::default()).map(drop)
        }),
        _ => server
            .runtime
            .block_on(on_mesh(&server.mesh, &principal, tool, arguments)),
    };
    if let Err(e @ (MeshError::Internal(_) | MeshError::Store(_))) = result {
        panic!("{tool} answered a client's arguments with a server error: {e}");
    }
}

/// The arguments as `T`, as `Checked<T>` parses them; a parse failure is an invalid argument.
fn parsed<T: DeserializeOwned>(arguments: serde_json::Value) -> Result<T, MeshError> {
    parse_named(arguments).map_err(|message| MeshError::Invalid {
        field: "arguments".into(),
        message,
    })
}

/// The tools that read the store, called as the MCP handlers call them.
async fn on_mesh(
    mesh: &Mesh,
    p: &Principal,
    tool: &str,
    arguments: serde_json::Value,
) -> Result<(), MeshError> {
    match tool {
        "trust_score" => {
            let input: meshos_service::TrustScoreInput = parsed(arguments)?;
            mesh.trust_score(p, &input.agent_id).await.map(drop)
        }
        "evidence_fetch" => mesh.evidence_fetch(p, parsed(arguments)?).await.map(drop),
        "carbon_route" => mesh.carbon_route(p, parsed(arguments)?).await.map(drop),
        "approval_decide" => mesh.approval_decide(p, parsed(arguments)?).await.map(drop),
        "approvals_pending" => mesh
            .approvals_pending(p, parsed(arguments)?)
            .await
            .map(drop),
        "incident_list" => incidents::list(mesh, p, parsed(arguments)?).await.map(drop),
        "incident_show" => incidents::show(mesh, p, parsed(arguments)?).await.map(drop),
        "incident_approve" => incidents::decide(mesh, p, parsed(arguments)?, true)
            .await
            .map(drop),
        "incident_deny" => incidents::decide(mesh, p, parsed(arguments)?, false)
            .await
            .map(drop),
        "incident_release" => incidents::release(mesh, p, parsed(arguments)?)
            .await
            .map(drop),
        "pseudonym_reveal" => mesh.pseudonym_reveal(p, parsed(arguments)?).await.map(drop),
        other => unreachable!("{other} is not a store tool"),
    }
}
