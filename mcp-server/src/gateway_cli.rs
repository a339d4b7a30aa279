//! `meshos gateway …`: the gateway on stdio (for Claude Desktop, Claude Code and other local
//! clients), and the operator's side of it — pins, clients, approving what is held, and the
//! poisoning scan of tool definitions offline. Over HTTP the gateway is served by
//! `meshos serve --gateway-config F` at `/gateway/mcp`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use clap::Subcommand;
use meshos_gateway::{Gateway, GatewayConfig, GatewayMcp};
use meshos_service::{ApprovalDecideInput, Mesh};
use rmcp::ServiceExt;
use serde_json::{Value, json};

#[derive(Debug, Subcommand)]
pub enum GatewayCommand {
    /// Serve the gateway over stdin/stdout, acting as the agent of MESHOS_TOKEN.
    Stdio {
        /// The gateway's TOML file: the upstream MCP servers.
        #[arg(long, env = "MESHOS_GATEWAY_CONFIG")]
        gateway_config: PathBuf,
        /// Bearer token to act as (an agent token).
        #[arg(long, env = "MESHOS_TOKEN", hide_env_values = true)]
        token: Option<String>,
    },
    /// The tenant's tool pins: every tool's newest record (pinned, held, blocked, removed).
    Pins {
        #[arg(long)]
        tenant: String,
        /// Also the history of one tool, `<server>__<tool>`.
        #[arg(long)]
        tool: Option<String>,
    },
    /// The clients the gateway has seen in the tenant.
    Clients {
        #[arg(long)]
        tenant: String,
    },
    /// Approve (or with --refuse, refuse) a held tool or client by its decision id.
    Approve {
        decision_id: String,
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        refuse: bool,
        #[arg(long)]
        note: Option<String>,
    },
    /// Scan tool definitions (a JSON array of tools, or a `tools/list` result) for poisoning.
    Scan { file: PathBuf },
}

pub async fn gateway_cli(
    mesh: Mesh,
    limits_mcp_bytes: usize,
    command: GatewayCommand,
) -> anyhow::Result<i32> {
    match command {
        GatewayCommand::Stdio {
            gateway_config,
            token,
        } => {
            stdio(Arc::new(mesh), &gateway_config, token, limits_mcp_bytes).await?;
            Ok(0)
        }
        GatewayCommand::Pins { tenant, tool } => {
            let store = mesh.store();
            let pins = store.tool_pins(&tenant).await?;
            let mut out = json!({
                "pins": pins.iter().map(|p| json!({
                    "tool": meshos_gateway::config::namespaced(&p.record.server, &p.record.tool),
                    "status": p.record.status,
                    "change": p.record.change,
                    "digest": p.record.digest,
                    "decision_id": p.record.decision_id,
                    "findings": p.record.findings,
                    "ledger_index": p.ledger_index,
                    "at": meshos_types::rfc3339_ms(p.record.created_at_ms),
                })).collect::<Vec<_>>(),
            });
            if let Some(name) = tool {
                let (server, tool) = meshos_gateway::config::split_namespaced(&name)
                    .with_context(|| format!("{name:?} is not <server>__<tool>"))?;
                let history = store.tool_pin_history(&tenant, server, tool).await?;
                out["history"] = json!(
                    history
                        .iter()
                        .map(|p| json!({
                            "change": p.record.change,
                            "status": p.record.status,
                            "digest": p.record.digest,
                            "decision_id": p.record.decision_id,
                            "ledger_index": p.ledger_index,
                            "definition": p.definition.as_deref().and_then(|d| serde_json::from_str::<Value>(d).ok()),
                        }))
                        .collect::<Vec<_>>()
                );
            }
            println!("{}", serde_json::to_string_pretty(&out)?);
            Ok(0)
        }
        GatewayCommand::Clients { tenant } => {
            let clients = mesh.store().gateway_clients(&tenant).await?;
            let out: Vec<Value> = clients
                .iter()
                .map(|c| {
                    json!({
                        "agent_id": c.agent_id,
                        "client": c.client_name,
                        "version": c.client_version,
                        "first_seen": meshos_types::rfc3339_ms(c.first_seen_ms),
                        "last_seen": meshos_types::rfc3339_ms(c.last_seen_ms),
                        "calls": c.calls,
                        "tools_used": c.tools_used,
                        "decision_id": c.decision_id,
                    })
                })
                .collect();
            println!("{}", serde_json::to_string_pretty(&out)?);
            Ok(0)
        }
        GatewayCommand::Approve {
            decision_id,
            tenant,
            refuse,
            note,
        } => {
            let out = mesh
                .approval_decide(
                    &crate::cli_admin(&tenant),
                    ApprovalDecideInput {
                        decision_id,
                        approve: !refuse,
                        note,
                    },
                )
                .await?;
            println!("{}", serde_json::to_string_pretty(&out)?);
            Ok(0)
        }
        GatewayCommand::Scan { file } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let value: Value = serde_json::from_str(&text)
                .with_context(|| format!("{} is not JSON", file.display()))?;
            let tools = match value {
                Value::Array(items) => items,
                Value::Object(ref o) if o.get("tools").is_some_and(Value::is_array) => o
                    .get("tools")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default(),
                _ => anyhow::bail!(
                    "{}: expected a JSON array of tool definitions or an object with `tools`",
                    file.display()
                ),
            };
            let scanner = meshos_toolscan::Scanner::new();
            let catalog: Vec<(String, Value)> =
                tools.iter().map(|t| (String::new(), t.clone())).collect();
            let mut worst = meshos_toolscan::Verdict::Clean;
            let mut out = Vec::new();
            for (i, tool) in tools.iter().enumerate() {
                let mut findings = meshos_toolscan::scan_tool(&scanner, tool);
                findings.extend(
                    meshos_toolscan::scan_catalog(&scanner, &catalog)
                        .into_iter()
                        .filter(|(j, _)| *j == i)
                        .map(|(_, f)| f),
                );
                let verdict = meshos_toolscan::verdict(&findings);
                worst = worst.max(verdict);
                out.push(json!({
                    "tool": tool.get("name"),
                    "verdict": verdict,
                    "findings": findings,
                }));
            }
            println!("{}", serde_json::to_string_pretty(&out)?);
            Ok(if worst == meshos_toolscan::Verdict::Poisoned {
                1
            } else {
                0
            })
        }
    }
}

async fn stdio(
    mesh: Arc<Mesh>,
    config: &Path,
    token: Option<String>,
    mcp_bytes: usize,
) -> anyhow::Result<()> {
    let Some(token) = token else {
        anyhow::bail!(
            "meshos gateway stdio needs a token: set MESHOS_TOKEN or pass --token (an agent token: meshos token create --role agent --agent ID)"
        );
    };
    let config = GatewayConfig::load(config)?;
    let principal = crate::auth::authenticate(mesh.store(), token.trim())
        .await?
        .context("the token given to meshos gateway is not valid for this database")?;
    tracing::info!(tenant = %principal.tenant, role = %principal.role, upstreams = config.upstreams.len(), "meshos gateway on stdio");
    crate::spawn_trust_flusher(&mesh);
    crate::spawn_upkeep(&mesh);
    let shutdown = tokio_util::sync::CancellationToken::new();
    let gateway = Gateway::new(mesh.clone(), &config);
    gateway.start(shutdown.clone()).await;
    let service = GatewayMcp::new(gateway.clone(), Some(principal))
        .serve(crate::stdio::StdioTransport::new(
            tokio::io::stdin(),
            tokio::io::stdout(),
            mcp_bytes,
        ))
        .await
        .context("MCP handshake on stdio failed")?;
    service.waiting().await?;
    shutdown.cancel();
    gateway.flush_activity().await;
    for u in gateway.upstreams() {
        u.close().await;
    }
    mesh.shut_down().await;
    Ok(())
}
