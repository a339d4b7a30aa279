//! The gateway: upstream connections, each tenant's pinned catalog, the registry of clients,
//! and the governed tool call. Transport-free: `server.rs` puts MCP in front of it.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use meshos_service::{ContentSource, EventInput, IngestDoor, Mesh, MeshError, PolicyCheckInput};
use meshos_store::GatewayClientActivity;
use meshos_toolscan::Scanner;
use meshos_types::{Outcome, Principal, Role, Verdict, now_ms};
use rmcp::model::{CallToolResult, ContentBlock, Tool};
use serde_json::{Map, Value, json};
use tokio::sync::Mutex as AsyncMutex;

use crate::config::{GatewayConfig, namespaced, split_namespaced};
use crate::pins::{Listed, PinState, ScanCache, reconcile};
use crate::upstream::{Upstream, UpstreamError};

/// Client programs one agent may register: each new one costs a decision and a row.
const MAX_CLIENTS_PER_AGENT: u32 = 16;
/// How often a held tool or client is looked at again for an operator's answer.
const RECHECK_HELD: Duration = Duration::from_secs(1);
/// How often counted client activity is written to the store.
const FLUSH_ACTIVITY: Duration = Duration::from_secs(5);
/// Separates the text parts of a tool result in the one content the data rules read; the
/// detectors never match across it, so the redacted text splits back into the same parts.
const PART_SEPARATOR: &str = "\n\u{1e}\n";
/// Result text read by the data rules at most; a longer result is withheld (it could not be
/// vouched for).
const MAX_RESULT_BYTES: usize = 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The call was refused (by policy, pinning or the client's admission): a tool error for
    /// the agent, not a protocol error.
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    #[error(transparent)]
    Mesh(#[from] MeshError),
}

/// A tenant's view of the catalog, as last reconciled.
struct TenantCatalog {
    generation: u64,
    reconciled_at: Instant,
    /// Namespaced name → (index of the upstream, the definition offered, its state).
    tools: HashMap<String, (usize, Tool, PinState)>,
    any_held: bool,
}

/// Whether a client may call tools.
#[derive(Debug, Clone, PartialEq)]
enum Admission {
    Admitted,
    Held {
        decision_id: String,
        checked: Instant,
    },
    Refused {
        reason: String,
    },
}

/// A client as the gateway knows it: an agent running a program.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientKey {
    pub tenant: String,
    pub agent_id: String,
    pub client_name: String,
}

#[derive(Default)]
struct Activity {
    calls: u64,
    tools: BTreeSet<String>,
    last_seen_ms: i64,
}

pub struct Gateway {
    mesh: Arc<Mesh>,
    upstreams: Vec<Arc<Upstream>>,
    scanner: Scanner,
    scans: AsyncMutex<ScanCache>,
    /// Bumped whenever an upstream's listing changes; a tenant's catalog older than it is
    /// reconciled again.
    generation: AtomicU64,
    catalogs: AsyncMutex<HashMap<String, Arc<TenantCatalog>>>,
    /// One reconciliation per tenant at a time (two would record the same pin twice).
    reconciling: AsyncMutex<HashMap<String, Arc<AsyncMutex<()>>>>,
    admissions: AsyncMutex<HashMap<ClientKey, Admission>>,
    activity: std::sync::Mutex<HashMap<ClientKey, Activity>>,
}

impl Gateway {
    pub fn new(mesh: Arc<Mesh>, config: &GatewayConfig) -> Arc<Gateway> {
        Arc::new(Gateway {
            mesh,
            upstreams: config
                .upstreams
                .iter()
                .cloned()
                .map(|c| Arc::new(Upstream::new(c)))
                .collect(),
            scanner: Scanner::new(),
            scans: AsyncMutex::new(ScanCache::default()),
            generation: AtomicU64::new(1),
            catalogs: AsyncMutex::new(HashMap::new()),
            reconciling: AsyncMutex::new(HashMap::new()),
            admissions: AsyncMutex::new(HashMap::new()),
            activity: std::sync::Mutex::new(HashMap::new()),
        })
    }

    pub fn mesh(&self) -> &Arc<Mesh> {
        &self.mesh
    }

    pub fn upstreams(&self) -> &[Arc<Upstream>] {
        &self.upstreams
    }

    /// Connects every upstream (those that fail are retried in the background), and starts the
    /// tasks that follow upstream changes and flush client activity. Ends them on `shutdown`.
    pub async fn start(self: &Arc<Self>, shutdown: tokio_util::sync::CancellationToken) {
        for u in &self.upstreams {
            if let Err(e) = u.connect().await {
                tracing::warn!(upstream = %u.name(), error = %e, "gateway: upstream not connected; retrying in the background");
            }
        }
        self.generation.fetch_add(1, Ordering::SeqCst);
        for (i, u) in self.upstreams.iter().enumerate() {
            let (gw, u, stop) = (self.clone(), u.clone(), shutdown.clone());
            tokio::spawn(async move { gw.follow_upstream(i, u, stop).await });
        }
        let (gw, stop) = (self.clone(), shutdown.clone());
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = stop.cancelled() => { gw.flush_activity().await; return; }
                    _ = tokio::time::sleep(FLUSH_ACTIVITY) => gw.flush_activity().await,
                }
            }
        });
    }

    /// Reconnects an upstream that went down and re-lists one that says its tools changed.
    async fn follow_upstream(
        self: Arc<Self>,
        _index: usize,
        upstream: Arc<Upstream>,
        stop: tokio_util::sync::CancellationToken,
    ) {
        let retry = Duration::from_secs(5).min(Duration::from_secs(upstream.config.relist_seconds));
        let relist = Duration::from_secs(upstream.config.relist_seconds);
        let mut listed_at = Instant::now();
        loop {
            tokio::select! {
                _ = stop.cancelled() => { upstream.close().await; return; }
                _ = upstream.tools_changed.notified() => {
                    listed_at = Instant::now();
                    match upstream.refresh().await {
                        Ok(changed) => {
                            tracing::info!(upstream = %upstream.name(), changed, "gateway: upstream says its tools changed; listed again");
                            self.generation.fetch_add(1, Ordering::SeqCst);
                        }
                        Err(e) => tracing::warn!(upstream = %upstream.name(), error = %e, "gateway: re-listing failed"),
                    }
                }
                _ = tokio::time::sleep(retry) => {
                    if upstream.is_connected().await && listed_at.elapsed() >= relist {
                        listed_at = Instant::now();
                        match upstream.refresh().await {
                            // A definition changed without a notice: pinning sees it now.
                            Ok(true) => {
                                tracing::warn!(upstream = %upstream.name(), "gateway: upstream tools changed without a notice");
                                self.generation.fetch_add(1, Ordering::SeqCst);
                            }
                            Ok(false) => {}
                            Err(e) => tracing::warn!(upstream = %upstream.name(), error = %e, "gateway: re-listing failed"),
                        }
                    } else if !upstream.is_connected().await {
                        match upstream.connect().await {
                            Ok(()) => {
                                tracing::info!(upstream = %upstream.name(), "gateway: upstream connected");
                                self.generation.fetch_add(1, Ordering::SeqCst);
                            }
                            Err(e) => tracing::debug!(upstream = %upstream.name(), error = %e, "gateway: upstream still down"),
                        }
                    }
                }
            }
        }
    }

    /// Lists every upstream again now (what the background task does on a change notice).
    pub async fn refresh_all(&self) {
        for u in &self.upstreams {
            if u.is_connected().await
                && let Err(e) = u.refresh().await
            {
                tracing::warn!(upstream = %u.name(), error = %e, "gateway: re-listing failed");
            }
        }
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    /// The tenant's catalog, reconciled if the upstreams changed since, or if something held
    /// may have been answered.
    async fn catalog(&self, tenant: &str) -> Result<Arc<TenantCatalog>, GatewayError> {
        let generation = self.generation.load(Ordering::SeqCst);
        let fresh = |c: &TenantCatalog| {
            c.generation == generation && (!c.any_held || c.reconciled_at.elapsed() < RECHECK_HELD)
        };
        if let Some(c) = self.catalogs.lock().await.get(tenant)
            && fresh(c)
        {
            return Ok(c.clone());
        }
        let lock = self
            .reconciling
            .lock()
            .await
            .entry(tenant.to_string())
            .or_default()
            .clone();
        let _one_at_a_time = lock.lock().await;
        if let Some(c) = self.catalogs.lock().await.get(tenant)
            && fresh(c)
        {
            return Ok(c.clone());
        }
        let mut listed = Vec::new();
        let mut offered: Vec<(usize, Tool)> = Vec::new();
        let mut connected = BTreeSet::new();
        for (i, u) in self.upstreams.iter().enumerate() {
            if !u.is_connected().await {
                continue;
            }
            connected.insert(u.name().to_string());
            for tool in u.listing().await.tools {
                listed.push(Listed {
                    server: u.name().to_string(),
                    definition: serde_json::to_value(&tool).unwrap_or(Value::Null),
                });
                offered.push((i, tool));
            }
        }
        let states = {
            let mut scans = self.scans.lock().await;
            reconcile(
                &self.mesh,
                &self.scanner,
                &mut scans,
                tenant,
                &listed,
                &connected,
            )
            .await?
        };
        let mut tools = HashMap::new();
        let mut any_held = false;
        for state in states {
            any_held |= state.status == "held";
            if let Some((i, tool)) = offered
                .iter()
                .find(|(i, t)| self.upstreams[*i].name() == state.server && t.name == state.tool)
            {
                let mut exposed = tool.clone();
                exposed.name = namespaced(&state.server, &state.tool).into();
                tools.insert(exposed.name.to_string(), (*i, exposed, state));
            }
        }
        let catalog = Arc::new(TenantCatalog {
            generation,
            reconciled_at: Instant::now(),
            tools,
            any_held,
        });
        self.catalogs
            .lock()
            .await
            .insert(tenant.to_string(), catalog.clone());
        Ok(catalog)
    }

    /// The tools the principal's tenant may call now (pinned definitions only), by name.
    pub async fn list_tools(&self, principal: &Principal) -> Result<Vec<Tool>, GatewayError> {
        let catalog = self.catalog(&principal.tenant).await?;
        let mut tools: Vec<Tool> = catalog
            .tools
            .values()
            .filter(|(_, _, s)| s.status == "pinned")
            .map(|(_, t, _)| t.clone())
            .collect();
        tools.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(tools)
    }

    /// Every listed tool's pin state in the tenant (held and blocked ones too).
    pub async fn pin_states(&self, tenant: &str) -> Result<Vec<PinState>, GatewayError> {
        let catalog = self.catalog(tenant).await?;
        let mut states: Vec<PinState> = catalog.tools.values().map(|(_, _, s)| s.clone()).collect();
        states.sort_by(|a, b| (&a.server, &a.tool).cmp(&(&b.server, &b.tool)));
        Ok(states)
    }

    /// Admits a client on its first call, as policy says (`mcp.client`), and remembers it.
    async fn admit(
        &self,
        key: &ClientKey,
        principal: &Principal,
        version: &str,
    ) -> Result<(), GatewayError> {
        let current = self.admissions.lock().await.get(key).cloned();
        match current {
            Some(Admission::Admitted) => return Ok(()),
            Some(Admission::Refused { reason }) => return Err(GatewayError::Refused(reason)),
            Some(Admission::Held {
                decision_id,
                checked,
            }) if checked.elapsed() < RECHECK_HELD => {
                return Err(GatewayError::Refused(held_client_message(
                    key,
                    &decision_id,
                )));
            }
            _ => {}
        }
        let store = self.mesh.store();
        let Some((client, _new)) = store
            .gateway_client_seen(
                &key.tenant,
                &key.agent_id,
                &key.client_name,
                version,
                now_ms(),
                MAX_CLIENTS_PER_AGENT,
            )
            .await
            .map_err(MeshError::from)?
        else {
            return Err(GatewayError::Refused(format!(
                "agent {} already has {MAX_CLIENTS_PER_AGENT} client programs registered with this gateway; \
                 connect with one of them (meshos gateway clients --tenant {})",
                key.agent_id, key.tenant
            )));
        };
        let admission = match client.decision_id {
            None => {
                let out = self
                    .mesh
                    .policy_check(
                        principal,
                        PolicyCheckInput {
                            agent_id: key.agent_id.clone(),
                            action: "mcp.client".into(),
                            tool: Some(client_tool_id(&key.client_name)),
                            ..PolicyCheckInput::default()
                        },
                    )
                    .await?;
                store
                    .set_gateway_client_decision(
                        &key.tenant,
                        &key.agent_id,
                        &key.client_name,
                        &out.decision_id,
                    )
                    .await
                    .map_err(MeshError::from)?;
                admission_of(out.decision, &out.decision_id, policy_reasons(&out.reasons))
            }
            Some(decision_id) => self.answered_admission(&key.tenant, &decision_id).await?,
        };
        self.admissions
            .lock()
            .await
            .insert(key.clone(), admission.clone());
        match admission {
            Admission::Admitted => Ok(()),
            Admission::Held { decision_id, .. } => Err(GatewayError::Refused(held_client_message(
                key,
                &decision_id,
            ))),
            Admission::Refused { reason } => Err(GatewayError::Refused(reason)),
        }
    }

    /// A client's stored decision, with an operator's answer if it has one.
    async fn answered_admission(
        &self,
        tenant: &str,
        decision_id: &str,
    ) -> Result<Admission, GatewayError> {
        let store = self.mesh.store();
        let Some((decision, _)) = store
            .decision(tenant, decision_id)
            .await
            .map_err(MeshError::from)?
        else {
            return Ok(Admission::Refused {
                reason: format!("the client's admission decision {decision_id} is missing"),
            });
        };
        if decision.decision != Verdict::RequireApproval {
            return Ok(admission_of(
                decision.decision,
                decision_id,
                policy_reasons(&decision.reasons),
            ));
        }
        Ok(
            match store
                .approval_for_decision(tenant, decision_id)
                .await
                .map_err(MeshError::from)?
            {
                Some((a, _)) if a.approved => Admission::Admitted,
                Some((a, _)) => Admission::Refused {
                    reason: format!(
                        "an operator refused this client ({}): decision {decision_id}",
                        a.note.unwrap_or_default()
                    ),
                },
                None => Admission::Held {
                    decision_id: decision_id.to_string(),
                    checked: Instant::now(),
                },
            },
        )
    }

    /// One governed `tools/call`: see the crate doc for the order of checks.
    pub async fn call_tool(
        &self,
        principal: &Principal,
        client: (&str, &str),
        name: &str,
        arguments: Option<Map<String, Value>>,
    ) -> Result<CallToolResult, GatewayError> {
        let started = Instant::now();
        let agent_id = match (&principal.role, &principal.agent_id) {
            (Role::Agent, Some(a)) => a.clone(),
            _ => {
                return Err(GatewayError::Refused(
                    "the gateway calls tools for an agent: connect with an agent token (meshos token create --role agent --agent ID)".into(),
                ));
            }
        };
        let key = ClientKey {
            tenant: principal.tenant.clone(),
            agent_id: agent_id.clone(),
            client_name: client.0.to_string(),
        };
        self.admit(&key, principal, client.1).await?;
        // Every call of an admitted client counts, refused ones too.
        self.count_activity(&key, name);

        let catalog = self.catalog(&principal.tenant).await?;
        let Some((index, _, state)) = catalog.tools.get(name) else {
            let hint = if split_namespaced(name).is_none() {
                " (tools are named <server>__<tool>; see tools/list)"
            } else {
                ""
            };
            return Err(GatewayError::Refused(format!(
                "unknown tool {name:?}{hint}"
            )));
        };
        match state.status.as_str() {
            "pinned" => {}
            "held" => {
                return Err(GatewayError::Refused(format!(
                    "tool {name} is held for review ({}): an operator answers decision {} (approval_decide, or meshos gateway approve)",
                    state.change,
                    state.decision_id.as_deref().unwrap_or("?")
                )));
            }
            other => {
                return Err(GatewayError::Refused(format!(
                    "tool {name} is {other} ({}); decision {}",
                    state.change,
                    state.decision_id.as_deref().unwrap_or("-")
                )));
            }
        }
        let upstream = &self.upstreams[*index];
        let arguments = arguments.unwrap_or_default();
        let args_value = Value::Object(arguments.clone());

        // 1. The call, decided and recorded before anything goes upstream.
        let decision = self
            .mesh
            .policy_check(
                principal,
                PolicyCheckInput {
                    agent_id: agent_id.clone(),
                    action: "mcp.tool".into(),
                    content: Some(args_value.to_string()),
                    tool: Some(name.to_string()),
                    arguments: Some(args_value),
                    ..PolicyCheckInput::default()
                },
            )
            .await?;
        let forwarded = match decision.decision {
            Verdict::Allow => arguments,
            Verdict::Redact => {
                let redacted = decision.redacted_content.as_deref().unwrap_or("");
                match serde_json::from_str::<Value>(redacted) {
                    Ok(Value::Object(map)) => map,
                    _ => {
                        self.record(
                            principal,
                            &agent_id,
                            name,
                            Outcome::Violation,
                            started,
                            &decision.decision_id,
                            json!({"refused": "redaction broke the arguments"}),
                        )
                        .await?;
                        return Err(GatewayError::Refused(format!(
                            "the arguments needed redacting and could not be redacted as JSON; decision {}",
                            decision.decision_id
                        )));
                    }
                }
            }
            Verdict::Deny | Verdict::RequireApproval => {
                self.record(
                    principal,
                    &agent_id,
                    name,
                    Outcome::Violation,
                    started,
                    &decision.decision_id,
                    json!({"verdict": decision.decision}),
                )
                .await?;
                let what = if decision.decision == Verdict::Deny {
                    "refused by policy"
                } else {
                    "waits for an operator's approval"
                };
                return Err(GatewayError::Refused(format!(
                    "{name}: {what} — {}; decision {}",
                    policy_reasons(&decision.reasons),
                    decision.decision_id
                )));
            }
        };

        // 2. Upstream.
        let result = match upstream.call_tool(&state.tool, Some(forwarded)).await {
            Ok(r) => r,
            Err(e) => {
                self.record(
                    principal,
                    &agent_id,
                    name,
                    Outcome::Error,
                    started,
                    &decision.decision_id,
                    json!({"upstream_error": e.to_string()}),
                )
                .await?;
                return Err(e.into());
            }
        };

        // 3. The result, through the same data rules.
        let (result, result_verdict, result_decision) = self
            .check_result(principal, &agent_id, name, result)
            .await?;
        let outcome = match (&result_verdict, result.is_error) {
            (Verdict::Deny, _) => Outcome::Violation,
            (_, Some(true)) => Outcome::Error,
            _ => Outcome::Ok,
        };
        let mut attrs = json!({"result": result_verdict});
        if let Some(d) = &result_decision {
            attrs["result_decision_id"] = json!(d);
        }
        self.record(
            principal,
            &agent_id,
            name,
            outcome,
            started,
            &decision.decision_id,
            attrs,
        )
        .await?;
        self.count_activity(&key, name);
        if result_verdict == Verdict::Deny {
            return Err(GatewayError::Refused(match &result_decision {
                Some(d) => format!("{name}: the result was withheld by policy; decision {d}"),
                None => format!(
                    "{name}: the result is over the {MAX_RESULT_BYTES} bytes the gateway screens; withheld"
                ),
            }));
        }
        Ok(result)
    }

    /// Screens a tool's result; redacts it or withholds it as policy says. The decision is
    /// recorded only when it is not `allow` (the event of the call carries the verdict).
    async fn check_result(
        &self,
        principal: &Principal,
        agent_id: &str,
        name: &str,
        mut result: CallToolResult,
    ) -> Result<(CallToolResult, Verdict, Option<String>), GatewayError> {
        let mut parts: Vec<String> = result
            .content
            .iter()
            .filter_map(|c| match c {
                ContentBlock::Text(t) => Some(t.text.clone()),
                _ => None,
            })
            .collect();
        if let Some(s) = &result.structured_content {
            parts.push(s.to_string());
        }
        let text = parts.join(PART_SEPARATOR);
        if text.len() > MAX_RESULT_BYTES {
            // What cannot be screened is not passed on; the call's event says why.
            tracing::warn!(
                tool = name,
                bytes = text.len(),
                "gateway: a result over the screening limit was withheld"
            );
            return Ok((result, Verdict::Deny, None));
        }
        if text.is_empty() {
            return Ok((result, Verdict::Allow, None));
        }
        let input = PolicyCheckInput {
            agent_id: agent_id.to_string(),
            action: "mcp.tool_result".into(),
            content: Some(text),
            // What a tool returns is data: instructions aimed at the model in it are screened
            // more strictly than the arguments, which stay the agent's own content.
            content_source: Some(ContentSource::ToolResult),
            tool: Some(name.to_string()),
            ..PolicyCheckInput::default()
        };
        let screened = self.mesh.evaluate_unrecorded(&principal.tenant, &input)?;
        if screened.decision == Verdict::Allow {
            return Ok((result, Verdict::Allow, None));
        }
        let decided = self.mesh.policy_check(principal, input).await?;
        match decided.decision {
            Verdict::Allow => Ok((result, Verdict::Allow, Some(decided.decision_id))),
            Verdict::Redact => {
                let redacted = decided.redacted_content.unwrap_or_default();
                let new_parts: Vec<&str> = redacted.split(PART_SEPARATOR).collect();
                if new_parts.len() != parts.len() {
                    return Ok((result, Verdict::Deny, Some(decided.decision_id)));
                }
                let mut next = new_parts.into_iter();
                for c in result.content.iter_mut() {
                    if let ContentBlock::Text(t) = c
                        && let Some(p) = next.next()
                    {
                        t.text = p.to_string();
                    }
                }
                if result.structured_content.is_some() {
                    result.structured_content =
                        next.next().and_then(|p| serde_json::from_str(p).ok());
                }
                Ok((result, Verdict::Redact, Some(decided.decision_id)))
            }
            other => Ok((result, other, Some(decided.decision_id))),
        }
    }

    /// The call as an event of the agent (it moves trust) and on the ledger.
    #[allow(clippy::too_many_arguments)]
    async fn record(
        &self,
        principal: &Principal,
        agent_id: &str,
        name: &str,
        outcome: Outcome,
        started: Instant,
        decision_id: &str,
        mut attributes: Value,
    ) -> Result<(), GatewayError> {
        if let Some((server, tool)) = split_namespaced(name) {
            attributes["server"] = json!(server);
            attributes["upstream_tool"] = json!(tool);
        }
        // The link from the event to the call's decision, kept on the record (the input's
        // `decision_id` only settles the check's reservation).
        attributes["decision_id"] = json!(decision_id);
        let event = EventInput {
            agent_id: agent_id.to_string(),
            kind: "tool_call".into(),
            outcome,
            latency_ms: Some(started.elapsed().as_secs_f64() * 1000.0),
            input_tokens: None,
            output_tokens: None,
            cost_usd: None,
            model: None,
            tool: Some(name.to_string()),
            region: None,
            attributes: attributes.as_object().cloned(),
            decision_id: Some(decision_id.to_string()),
        };
        self.mesh
            .record_events(principal, vec![event], IngestDoor::Gateway)
            .await?;
        Ok(())
    }

    fn count_activity(&self, key: &ClientKey, tool: &str) {
        let mut map = match self.activity.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let a = map.entry(key.clone()).or_default();
        a.calls += 1;
        a.last_seen_ms = now_ms();
        if a.tools.len() < 256 {
            a.tools.insert(tool.to_string());
        }
    }

    /// Writes the calls counted since the last flush to the client registry.
    pub async fn flush_activity(&self) {
        let drained: Vec<(ClientKey, Activity)> = {
            let mut map = match self.activity.lock() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            map.drain().collect()
        };
        if drained.is_empty() {
            return;
        }
        let rows: Vec<GatewayClientActivity> = drained
            .iter()
            .map(|(k, a)| GatewayClientActivity {
                tenant: k.tenant.clone(),
                agent_id: k.agent_id.clone(),
                client_name: k.client_name.clone(),
                last_seen_ms: a.last_seen_ms,
                calls: a.calls,
                tools_used: a.tools.iter().cloned().collect(),
            })
            .collect();
        if let Err(e) = self.mesh.store().add_gateway_client_activity(&rows).await {
            // Kept for the next flush rather than lost (another writer may hold the database).
            tracing::warn!(error = %e, "gateway: client activity not written yet; kept for the next flush");
            let mut map = match self.activity.lock() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            for (k, a) in drained {
                let slot = map.entry(k).or_default();
                slot.calls += a.calls;
                slot.last_seen_ms = slot.last_seen_ms.max(a.last_seen_ms);
                slot.tools.extend(a.tools);
            }
        }
    }
}

fn admission_of(verdict: Verdict, decision_id: &str, reasons: String) -> Admission {
    match verdict {
        Verdict::Allow | Verdict::Redact => Admission::Admitted,
        Verdict::RequireApproval => Admission::Held {
            decision_id: decision_id.to_string(),
            checked: Instant::now(),
        },
        Verdict::Deny => Admission::Refused {
            reason: format!("this client is refused by policy — {reasons}; decision {decision_id}"),
        },
    }
}

fn held_client_message(key: &ClientKey, decision_id: &str) -> String {
    format!(
        "client {:?} of agent {} is new to this gateway and waits for an operator's approval: decision {decision_id} (approval_decide, or meshos gateway approve {decision_id} --tenant {})",
        key.client_name, key.agent_id, key.tenant
    )
}

fn policy_reasons(reasons: &[meshos_types::Reason]) -> String {
    reasons
        .iter()
        .map(|r| format!("{}: {}", r.policy_id, r.message))
        .collect::<Vec<_>>()
        .join("; ")
}

/// A client's program name as a policy sees it in `context.tool` (an id: letters, digits and
/// `._-:@/`; anything else becomes `_`).
pub fn client_tool_id(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .take(64)
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-:@/".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if cleaned.is_empty() {
        "unknown".into()
    } else {
        cleaned
    }
}

/// A text result, for refusals the agent should read.
pub fn refusal(message: &str) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(message.to_string())])
}
