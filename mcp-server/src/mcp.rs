//! The MCP surface: five agent tools, three operator tools (approvals, re-identification), five
//! incident tools (list, show, approve, deny, release), two eval tools (run, results), three
//! resources plus one per eval suite, and the `self_check` prompt, over any rmcp transport.
//! Handlers only resolve the caller and translate results; the work is in `Mesh`.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Instant;

use futures_util::FutureExt as _;
use meshos_carbon::{RouteDecision, RouteRequest};
use meshos_types::Principal;
use rmcp::handler::server::prompt::PromptContext;
use rmcp::handler::server::router::prompt::PromptRouter;
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::{Json, Parameters};
use rmcp::model::{
    CacheScope, GetPromptRequestParams, GetPromptResponse, ListPromptsResult,
    ListResourceTemplatesResult, ListResourcesResult, ListToolsResult, PaginatedRequestParams,
    PromptMessage, ProtocolVersion, ReadResourceRequestParams, ReadResourceResponse,
    ReadResourceResult, Resource, ResourceContents, ResourceTemplate, Role as PromptRole,
    ServerCapabilities, ServerConfig,
};
use rmcp::model::{
    ResourceUpdatedNotification, ResourceUpdatedNotificationParam, ServerNotification,
    SubscribeRequestParams, SubscriptionFilter, UnsubscribeRequestParams,
};
use rmcp::service::{RequestContext, SubscriptionContext};
use rmcp::{
    ErrorData as McpError, RoleServer, ServerHandler, prompt, prompt_router, tool, tool_handler,
    tool_router,
};
use schemars::JsonSchema;
use serde::Deserialize;

use crate::checked::Checked;
use meshos_service::eval_api::{EvalResultsInput, EvalResultsOutput, EvalRunInput, EvalRunOutput};
use meshos_service::incidents::{
    IncidentDecideInput, IncidentListInput, IncidentListOutput, IncidentOutput,
    IncidentReleaseInput, IncidentShowInput,
};
use meshos_service::live_trust::{ALERTS_URI, TRUST_PREFIX};
use meshos_service::{
    ApprovalDecideInput, ApprovalOutput, ApprovalsPendingInput, ApprovalsPendingOutput, EventInput,
    EvidenceFetchInput, EvidenceFetchOutput, IngestDoor, Mesh, MeshError, PolicyCheckInput,
    PolicyCheckOutput, PseudonymRevealInput, PseudonymRevealOutput, RecordedEvent, TrustScoreInput,
    TrustScoreOutput,
};

#[derive(Clone)]
pub struct MeshMcp {
    mesh: Arc<Mesh>,
    /// Set for stdio, where the token is given once at start; HTTP resolves it per request.
    fixed_principal: Option<Principal>,
    tool_router: ToolRouter<Self>,
    prompt_router: PromptRouter<Self>,
    /// This session's `resources/subscribe` subscriptions (pre-2026-07-28 clients): URI → ids.
    legacy_subscriptions: Arc<std::sync::Mutex<HashMap<String, Vec<u64>>>>,
}

/// Arguments of the `self_check` prompt.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct SelfCheckArgs {
    /// Your agent id.
    pub agent_id: Option<String>,
    /// The action you are about to take.
    pub action: Option<String>,
}

/// What every tool returns. Tool signatures spell it out in full because the `#[tool]` macro
/// derives the output schema from a literal `Json<T>` in the return type, not through an alias.
type ToolResult<T> = Result<Json<T>, String>;

impl MeshMcp {
    fn principal(&self, ctx: &RequestContext<RoleServer>) -> Result<Principal, String> {
        if let Some(p) = &self.fixed_principal {
            return Ok(p.clone());
        }
        ctx.extensions
            .get::<http::request::Parts>()
            .and_then(|parts| parts.extensions.get::<Principal>())
            .cloned()
            .ok_or_else(|| "unauthenticated: send Authorization: Bearer <token>".to_string())
    }

    /// Runs one tool call: resolves the caller, unwraps checked arguments, times and counts it.
    async fn run<I, O, F, Fut>(
        &self,
        tool: &str,
        ctx: &RequestContext<RoleServer>,
        args: Checked<I>,
        work: F,
    ) -> ToolResult<O>
    where
        F: FnOnce(Arc<Mesh>, Principal, I) -> Fut,
        Fut: Future<Output = Result<O, MeshError>>,
    {
        let started = Instant::now();
        let result = async {
            let principal = self.principal(ctx)?;
            let input = args.0?;
            // A panic fails this call alone, closed: nothing was decided or stored for it.
            match AssertUnwindSafe(work(self.mesh.clone(), principal, input))
                .catch_unwind()
                .await
            {
                Ok(done) => done.map_err(|e| e.to_string()),
                Err(_) => {
                    tracing::error!(tool, "tool call panicked; answered as an error");
                    Err(format!(
                        "internal error: {tool} failed unexpectedly and decided nothing; retry, and report it if it persists"
                    ))
                }
            }
        }
        .await;
        self.mesh
            .metrics()
            .record_tool(tool, result.is_ok(), started.elapsed().as_secs_f64());
        if let Err(message) = &result {
            tracing::info!(tool, %message, "tool call rejected");
        }
        result.map(Json)
    }
}

/// Wraps the one event of `record_event` for the batch path.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, JsonSchema)]
pub struct RecordEventOutput {
    #[serde(flatten)]
    pub event: RecordedEvent,
}

#[tool_router]
impl MeshMcp {
    pub fn new(mesh: Arc<Mesh>, fixed_principal: Option<Principal>) -> Self {
        Self {
            mesh,
            fixed_principal,
            tool_router: Self::tool_router() + Self::approval_router() + Self::eval_router(),
            prompt_router: Self::prompt_router(),
            legacy_subscriptions: Default::default(),
        }
    }

    #[tool(
        description = "Record what an agent did (after acting). Stored durably and appended to the \
                       evidence ledger before the reply; feeds the agent's trust score.",
        annotations(
            title = "Record event",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = false
        )
    )]
    async fn record_event(
        &self,
        Parameters(args): Parameters<Checked<EventInput>>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<RecordEventOutput>, String> {
        self.run("record_event", &ctx, args, |mesh, p, input| async move {
            let mut recorded = mesh.record_events(&p, vec![input], IngestDoor::Mcp).await?;
            recorded
                .pop()
                .map(|event| RecordEventOutput { event })
                .ok_or_else(|| MeshError::Internal("event was not recorded".into()))
        })
        .await
    }

    #[tool(
        description = "Ask before acting: may this agent take this action with this content, model, \
                       tool and region? Returns allow, deny, redact (use redacted_content) or \
                       require_approval, with the deciding policies, content findings and obligations. \
                       Also screen a tool's result or a retrieved document before the model reads it: \
                       set content_source to tool_result or retrieved_document. \
                       Every decision is stored and appended to the evidence ledger.",
        annotations(
            title = "Policy check",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = false
        )
    )]
    async fn policy_check(
        &self,
        Parameters(args): Parameters<Checked<PolicyCheckInput>>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<PolicyCheckOutput>, String> {
        self.run("policy_check", &ctx, args, |mesh, p, input| async move {
            mesh.policy_check(&p, input).await
        })
        .await
    }

    #[tool(
        description = "The live trust score (0-100) of an agent with its components (policy adherence, \
                       agent reputation, response integrity, risk exposure), SLA status and an \
                       explanation of each component.",
        annotations(
            title = "Trust score",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn trust_score(
        &self,
        Parameters(args): Parameters<Checked<TrustScoreInput>>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<TrustScoreOutput>, String> {
        self.run("trust_score", &ctx, args, |mesh, p, input| async move {
            mesh.trust_score(&p, &input.agent_id).await
        })
        .await
    }

    #[tool(
        description = "Tamper-evident proof of what happened: stored decisions/events with their RFC 6962 \
                       ledger index, leaf hash and inclusion proof, plus the Ed25519-signed checkpoint \
                       (C2SP tlog-checkpoint). Give exactly one of decision_id, event_id or agent_id.",
        annotations(
            title = "Evidence fetch",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn evidence_fetch(
        &self,
        Parameters(args): Parameters<Checked<EvidenceFetchInput>>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<EvidenceFetchOutput>, String> {
        self.run("evidence_fetch", &ctx, args, |mesh, p, input| async move {
            mesh.evidence_fetch(&p, input).await
        })
        .await
    }

    #[tool(
        description = "Where should this model call run? Ranks the regions offering the model by cost, \
                       grid carbon (gCO2e, annual-average signal) and latency under residency and \
                       latency limits; returns the choice, the Pareto set and the trade-off against the \
                       cheapest feasible option.",
        annotations(
            title = "Carbon-aware route",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn carbon_route(
        &self,
        Parameters(args): Parameters<Checked<RouteRequest>>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<RouteDecision>, String> {
        self.run("carbon_route", &ctx, args, |mesh, p, input| async move {
            mesh.carbon_route(&p, input).await
        })
        .await
    }
}

#[tool_router(router = eval_router)]
impl MeshMcp {
    #[tool(
        description = "Operators and admins: run an eval suite of the server (see the evals://suites \
                       resources) against its target, or against another OpenAI-compatible endpoint. \
                       Answers when the run ends, with per-scorer results, the paired comparison with \
                       the suite's pinned baseline and whether it regressed; send a progressToken in \
                       _meta to be told of every item. The run is stored, appended to the evidence \
                       ledger and fed into the agent's trust score.",
        annotations(
            title = "Run eval suite",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = true
        )
    )]
    async fn eval_run(
        &self,
        Parameters(args): Parameters<Checked<EvalRunInput>>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<EvalRunOutput>, String> {
        let (progress, notifier) = match ctx.meta.get_progress_token() {
            Some(token) => {
                let (sink, notifier) = progress_notifier(ctx.peer.clone(), token);
                (Some(sink), Some(notifier))
            }
            None => (None, None),
        };
        // A client that cancels the call, or goes away, stops the run.
        let cancel = ctx.ct.clone();
        let result = self
            .run("eval_run", &ctx, args, |mesh, p, input| async move {
                mesh.eval_run_requested(&p, input, progress, Some(cancel))
                    .await
            })
            .await;
        if let Some(notifier) = notifier {
            // The last progress goes out before the answer; a stuck peer does not hold it up.
            let _ = tokio::time::timeout(std::time::Duration::from_secs(1), notifier).await;
        }
        result
    }

    #[tool(
        description = "Operators, admins and auditors: eval runs and their results. With run_id: the \
                       run, a page of its item results (scores per scorer) and its paired comparison \
                       with the pinned baseline or with compare_with; without: the tenant's runs, \
                       newest first (optionally of one suite).",
        annotations(
            title = "Eval results",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn eval_results(
        &self,
        Parameters(args): Parameters<Checked<EvalResultsInput>>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<EvalResultsOutput>, String> {
        self.run("eval_results", &ctx, args, |mesh, p, input| async move {
            mesh.eval_results(&p, input).await
        })
        .await
    }
}

/// Turns a run's progress into `notifications/progress` for `token`. The sink only stores the
/// newest count; the task sends it at most every 100 ms, so a fast run does not flood the peer,
/// and ends after sending the last count once the run drops the sink.
fn progress_notifier(
    peer: rmcp::Peer<RoleServer>,
    token: rmcp::model::ProgressToken,
) -> (
    Arc<dyn meshos_evals::run::ProgressSink>,
    tokio::task::JoinHandle<()>,
) {
    use meshos_evals::run::Progress;
    let (tx, mut rx) = tokio::sync::watch::channel(None::<Progress>);
    let task = tokio::spawn(async move {
        while rx.changed().await.is_ok() {
            let Some(p) = *rx.borrow_and_update() else {
                continue;
            };
            let param = rmcp::model::ProgressNotificationParam::new(token.clone(), p.done as f64)
                .with_total(p.total as f64)
                .with_message(format!(
                    "{} of {} items answered, {} unanswered",
                    p.done, p.total, p.failed
                ));
            if peer.notify_progress(param).await.is_err() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    });
    let sink = Arc::new(move |p: Progress| {
        let _ = tx.send(Some(p));
    });
    (sink, task)
}

#[tool_router(router = approval_router)]
impl MeshMcp {
    #[tool(
        description = "Operators only: approve or refuse a require_approval decision (once). The answer \
                       is stored and appended to the evidence ledger.",
        annotations(
            title = "Decide approval",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = false
        )
    )]
    async fn approval_decide(
        &self,
        Parameters(args): Parameters<Checked<ApprovalDecideInput>>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<ApprovalOutput>, String> {
        self.run("approval_decide", &ctx, args, |mesh, p, input| async move {
            mesh.approval_decide(&p, input).await
        })
        .await
    }

    #[tool(
        description = "Operators and auditors: require_approval decisions still waiting for an answer, \
                       oldest first.",
        annotations(
            title = "Pending approvals",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn approvals_pending(
        &self,
        Parameters(args): Parameters<Checked<ApprovalsPendingInput>>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<ApprovalsPendingOutput>, String> {
        self.run(
            "approvals_pending",
            &ctx,
            args,
            |mesh, p, input| async move { mesh.approvals_pending(&p, input).await },
        )
        .await
    }

    #[tool(
        description = "Operators, admins and auditors: the tenant's healing incidents, newest first \
                       (optionally only some states, e.g. awaiting_approval).",
        annotations(
            title = "List incidents",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn incident_list(
        &self,
        Parameters(args): Parameters<Checked<IncidentListInput>>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<IncidentListOutput>, String> {
        self.run("incident_list", &ctx, args, |mesh, p, input| async move {
            meshos_service::incidents::list(&mesh, &p, input).await
        })
        .await
    }

    #[tool(
        description = "Operators, admins and auditors: one incident with its symptoms, diagnosis, plan \
                       (and the digest an approval must name), verification and timeline.",
        annotations(
            title = "Show incident",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn incident_show(
        &self,
        Parameters(args): Parameters<Checked<IncidentShowInput>>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<IncidentOutput>, String> {
        self.run("incident_show", &ctx, args, |mesh, p, input| async move {
            meshos_service::incidents::show(&mesh, &p, input).await
        })
        .await
    }

    #[tool(
        description = "Operators only: approve the heal plan an incident is waiting on. The digest must \
                       be the plan's (incident_show: data.approval.digest); the approval is recorded \
                       on the evidence ledger and the healer then executes the plan.",
        annotations(
            title = "Approve incident plan",
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = false,
            open_world_hint = false
        )
    )]
    async fn incident_approve(
        &self,
        Parameters(args): Parameters<Checked<IncidentDecideInput>>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<IncidentOutput>, String> {
        self.run(
            "incident_approve",
            &ctx,
            args,
            |mesh, p, input| async move {
                meshos_service::incidents::decide(&mesh, &p, input, true).await
            },
        )
        .await
    }

    #[tool(
        description = "Operators only: refuse the heal plan an incident is waiting on; the incident \
                       escalates to a human.",
        annotations(
            title = "Deny incident plan",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = false
        )
    )]
    async fn incident_deny(
        &self,
        Parameters(args): Parameters<Checked<IncidentDecideInput>>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<IncidentOutput>, String> {
        self.run("incident_deny", &ctx, args, |mesh, p, input| async move {
            meshos_service::incidents::decide(&mesh, &p, input, false).await
        })
        .await
    }

    #[tool(
        description = "Operators only: release every control an incident set (quarantine, budget \
                       cap, revoked tool, pinned model, avoided region) now, instead of waiting \
                       for the healer's canary release. Recorded on the evidence ledger with who \
                       and why.",
        annotations(
            title = "Release incident controls",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = false
        )
    )]
    async fn incident_release(
        &self,
        Parameters(args): Parameters<Checked<IncidentReleaseInput>>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<IncidentOutput>, String> {
        self.run(
            "incident_release",
            &ctx,
            args,
            |mesh, p, input| async move { meshos_service::incidents::release(&mesh, &p, input).await },
        )
        .await
    }

    #[tool(
        description = "Operators only: reveal the original value behind a pseudonym from redacted \
                       content (`[EMAIL:psn_…]`). Needs a reason; every reveal is appended to the \
                       evidence ledger (who, which pseudonym, why — never the value) before the \
                       value is returned.",
        annotations(
            title = "Re-identify pseudonym",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = false
        )
    )]
    async fn pseudonym_reveal(
        &self,
        Parameters(args): Parameters<Checked<PseudonymRevealInput>>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<PseudonymRevealOutput>, String> {
        self.run(
            "pseudonym_reveal",
            &ctx,
            args,
            |mesh, p, input| async move { mesh.pseudonym_reveal(&p, input).await },
        )
        .await
    }
}

#[prompt_router]
impl MeshMcp {
    /// How an agent should use Mesh OS around every action.
    #[prompt(
        name = "self_check",
        description = "Instructions for an agent: check policy before acting, honour the decision, \
                       record what happened, and watch its trust score."
    )]
    async fn self_check(&self, Parameters(args): Parameters<SelfCheckArgs>) -> Vec<PromptMessage> {
        let agent = args.agent_id.unwrap_or_else(|| "<your agent id>".into());
        let action = args.action.unwrap_or_else(|| "<the action>".into());
        vec![PromptMessage::new_text(
            PromptRole::User,
            format!(
                "You are agent `{agent}` and are governed by Mesh OS. Before you take the action \
                 `{action}`:\n\
                 1. Call `policy_check` with agent_id, action, and the content, model, tool and region \
                 you will use.\n\
                 2. Obey the decision: `deny` - do not act, tell the user why (quote the reasons); \
                 `redact` - act only with `redacted_content` instead of the original; \
                 `require_approval` - stop and ask an operator, quoting decision_id; `allow` - proceed.\n\
                 3. After acting, call `record_event` with the outcome (`ok`, `error` or `violation`), \
                 latency, tokens and cost.\n\
                 4. If unsure whether you are trusted for a sensitive step, call `trust_score`; if its \
                 `sla.breached` is true, ask for human review first.\n\
                 5. When asked to prove what you did, call `evidence_fetch` with the decision_id."
            ),
        )]
    }
}

/// Whether the principal may watch a `trust://` URI; the error says what is expected.
fn check_trust_uri(principal: &Principal, uri: &str) -> Result<(), McpError> {
    if uri == ALERTS_URI {
        return match principal.role {
            meshos_types::Role::Agent => Err(McpError::invalid_params(
                format!(
                    "{ALERTS_URI} lists every agent's alerts; agent tokens may watch only {TRUST_PREFIX}<their id>"
                ),
                None,
            )),
            _ => Ok(()),
        };
    }
    let Some(agent) = uri.strip_prefix(TRUST_PREFIX) else {
        return Err(McpError::invalid_params(
            format!(
                "cannot subscribe to {uri:?}; expected {TRUST_PREFIX}{{agent_id}} or {ALERTS_URI}"
            ),
            None,
        ));
    };
    meshos_types::validate_id("uri", agent)
        .map_err(|e| McpError::invalid_params(format!("{uri:?}: {e}"), None))?;
    principal
        .may_read_agent(agent)
        .map_err(|e| McpError::invalid_params(e.to_string(), None))
}

fn resource_updated(uri: String) -> ServerNotification {
    ServerNotification::ResourceUpdatedNotification(ResourceUpdatedNotification::new(
        ResourceUpdatedNotificationParam::new(uri),
    ))
}

fn watchable(uri: &str) -> bool {
    uri == ALERTS_URI || uri.starts_with(TRUST_PREFIX)
}

const CHECKPOINT_URI: &str = "evidence://checkpoint";
const BUNDLE_URI: &str = "policy://bundle";
const EVAL_SUITE_PREFIX: &str = "evals://suites/";

fn json_contents(
    uri: &str,
    value: &impl serde::Serialize,
) -> Result<ReadResourceResponse, McpError> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| McpError::internal_error(e.to_string(), None))?;
    Ok(ReadResourceResult::new(vec![
        ResourceContents::text(text, uri).with_mime_type("application/json"),
    ])
    .into())
}

/// Every list we serve fits in one page, so we issue no cursor, and any cursor a client sends is
/// one we did not issue: refused with -32602, as the spec asks of servers (they SHOULD validate
/// cursors), rather than ignored as if it were the first page.
fn refuse_cursor(request: Option<&PaginatedRequestParams>) -> Result<(), McpError> {
    match request.and_then(|r| r.cursor.as_deref()) {
        Some(cursor) => Err(McpError::invalid_params(
            format!(
                "invalid cursor {cursor:?}: this server issues no cursors (every list is one page)"
            ),
            Some(serde_json::json!({ "cursor": cursor })),
        )),
        None => Ok(()),
    }
}

/// The cache hints rmcp's generated list handlers give a 2026-07-28 peer: the tool and prompt
/// lists are the same for every caller and change only with the binary.
fn public_cache_hints(ctx: &RequestContext<RoleServer>) -> Option<(u64, CacheScope)> {
    ctx.protocol_version()
        .is_some_and(|v| v >= ProtocolVersion::V_2026_07_28)
        .then_some((0, CacheScope::Public))
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for MeshMcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_resources()
                .enable_resources_subscribe()
                .enable_prompts()
                .build(),
        )
        .with_server_info(rmcp::model::Implementation::new(
            "meshos",
            env!("CARGO_PKG_VERSION"),
        ))
        .with_instructions(
            "Mesh OS governs AI agents. Call policy_check before acting and record_event after; \
             trust_score explains how trusted an agent is; evidence_fetch proves what happened; \
             carbon_route picks where a model call should run. See the self_check prompt.",
        )
    }

    async fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        refuse_cursor(request.as_ref())?;
        let mut result = ListToolsResult::with_all_items(self.tool_router.list_all());
        if let Some((ttl_ms, scope)) = public_cache_hints(&ctx) {
            result = result.with_ttl_ms(ttl_ms).with_cache_scope(scope);
        }
        Ok(result)
    }

    async fn list_prompts(
        &self,
        request: Option<PaginatedRequestParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, McpError> {
        refuse_cursor(request.as_ref())?;
        let mut result = ListPromptsResult::with_all_items(self.prompt_router.list_all());
        if let Some((ttl_ms, scope)) = public_cache_hints(&ctx) {
            result = result.with_ttl_ms(ttl_ms).with_cache_scope(scope);
        }
        Ok(result)
    }

    // Written out rather than generated by `#[prompt_handler]`, which would also replace the
    // `list_prompts` above with one that ignores the cursor.
    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, McpError> {
        let prompt = PromptContext::new(self, request.name, request.arguments, ctx);
        self.prompt_router.get_prompt(prompt).await
    }

    async fn list_resources(
        &self,
        request: Option<PaginatedRequestParams>,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        refuse_cursor(request.as_ref())?;
        let mut resources = vec![
            Resource::new(CHECKPOINT_URI, "evidence-checkpoint")
                .with_description("The latest signed checkpoint of your tenant's evidence ledger")
                .with_mime_type("application/json"),
            Resource::new(BUNDLE_URI, "policy-bundle")
                .with_description("The policy bundle in force: version, policy ids and sources")
                .with_mime_type("application/json"),
            Resource::new(ALERTS_URI, "trust-alerts")
                .with_description(
                    "Your tenant's SLA alerts (trust score breaches and recoveries), newest first; \
                     subscribe to be told of new ones",
                )
                .with_mime_type("application/json"),
        ];
        // A deployment without a suites directory has no suites, not an error.
        let (suites, _invalid) = self.mesh.eval_suites().unwrap_or_default();
        resources.extend(suites.into_iter().map(|suite| {
            Resource::new(
                format!("{EVAL_SUITE_PREFIX}{}", suite.id),
                format!("eval-suite-{}", suite.id),
            )
            .with_description(format!(
                "Eval suite {}: {} ({} items; its baseline and latest runs)",
                suite.id, suite.description, suite.items
            ))
            .with_mime_type("application/json")
        }));
        Ok(ListResourcesResult::with_all_items(resources))
    }

    async fn list_resource_templates(
        &self,
        request: Option<PaginatedRequestParams>,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, McpError> {
        refuse_cursor(request.as_ref())?;
        Ok(ListResourceTemplatesResult::with_all_items(vec![
            ResourceTemplate::new("trust://agents/{agent_id}", "agent-trust")
                .with_description("The live trust score of an agent, with its components")
                .with_mime_type("application/json"),
            ResourceTemplate::new(format!("{EVAL_SUITE_PREFIX}{{suite_id}}"), "eval-suite")
                .with_description("An eval suite, its pinned baseline and its latest runs")
                .with_mime_type("application/json"),
        ]))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        let principal = self
            .principal(&ctx)
            .map_err(|m| McpError::invalid_request(m, None))?;
        let uri = request.uri.as_str();
        let to_mcp = |e: MeshError| match e {
            // The spec's resource-not-found error names the URI in `data`.
            MeshError::NotFound(m) => {
                McpError::resource_not_found(m, Some(serde_json::json!({ "uri": uri })))
            }
            MeshError::Invalid { .. } | MeshError::Forbidden(_) => {
                McpError::invalid_params(e.to_string(), None)
            }
            other => McpError::internal_error(other.to_string(), None),
        };
        if uri == CHECKPOINT_URI {
            let store = self.mesh.store();
            let size = store
                .ledger_size(&principal.tenant)
                .await
                .map_err(|e| to_mcp(e.into()))?;
            let leaves = store
                .ledger_leaf_hashes(&principal.tenant, size)
                .await
                .map_err(|e| to_mcp(e.into()))?;
            let cp = self
                .mesh
                .checkpoint_for(&principal.tenant, &leaves)
                .await
                .map_err(to_mcp)?;
            let out = self.mesh.checkpoint_output(&cp).await.map_err(to_mcp)?;
            json_contents(uri, &out)
        } else if uri == BUNDLE_URI {
            json_contents(uri, &self.mesh.bundle_summary())
        } else if uri == ALERTS_URI {
            check_trust_uri(&principal, uri)?;
            let alerts = self.mesh.alerts(&principal).await.map_err(to_mcp)?;
            json_contents(uri, &alerts)
        } else if let Some(agent) = uri.strip_prefix(TRUST_PREFIX) {
            let score = self
                .mesh
                .trust_score(&principal, agent)
                .await
                .map_err(to_mcp)?;
            json_contents(uri, &score)
        } else if let Some(suite) = uri.strip_prefix(EVAL_SUITE_PREFIX) {
            let view = self
                .mesh
                .eval_suite_view(&principal, suite)
                .await
                .map_err(to_mcp)?;
            json_contents(uri, &view)
        } else {
            Err(McpError::resource_not_found(
                format!(
                    "unknown resource {uri:?}; expected {CHECKPOINT_URI}, {BUNDLE_URI}, {ALERTS_URI}, {TRUST_PREFIX}{{agent_id}} or {EVAL_SUITE_PREFIX}{{suite_id}}"
                ),
                Some(serde_json::json!({ "uri": uri })),
            ))
        }
    }

    /// `subscriptions/listen` (2026-07-28): `trust://agents/{id}` and `trust://alerts`.
    fn accepted_subscription_filter(
        &self,
        requested: &SubscriptionFilter,
    ) -> Option<SubscriptionFilter> {
        let mut accepted = SubscriptionFilter::new();
        accepted.resource_subscriptions = requested
            .resource_subscriptions
            .as_ref()
            .map(|uris| uris.iter().filter(|u| watchable(u)).cloned().collect());
        Some(accepted)
    }

    async fn listen(&self, context: SubscriptionContext) -> Result<(), McpError> {
        let principal = self
            .principal(context.request_context())
            .map_err(|m| McpError::invalid_request(m, None))?;
        let uris = context
            .accepted()
            .resource_subscriptions
            .clone()
            .unwrap_or_default();
        for uri in &uris {
            check_trust_uri(&principal, uri)?;
        }
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let live = self.mesh.live();
        let ids: Vec<(String, u64)> = uris
            .iter()
            .map(|uri| {
                (
                    uri.clone(),
                    live.subscribe(&principal.tenant, uri, tx.clone()),
                )
            })
            .collect();
        drop(tx);
        loop {
            tokio::select! {
                () = context.cancelled() => break,
                changed = rx.recv() => match changed {
                    Some(uri) => {
                        if context.sink().send(resource_updated(uri)).await.is_err() {
                            break;
                        }
                    }
                    None => break,
                },
            }
        }
        for (uri, id) in ids {
            live.unsubscribe(&principal.tenant, &uri, id);
        }
        Ok(())
    }

    /// `resources/subscribe` for clients of earlier protocol versions.
    #[allow(deprecated)]
    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        let principal = self
            .principal(&ctx)
            .map_err(|m| McpError::invalid_request(m, None))?;
        check_trust_uri(&principal, &request.uri)?;
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
        let id = self
            .mesh
            .live()
            .subscribe(&principal.tenant, &request.uri, tx);
        if let Ok(mut subs) = self.legacy_subscriptions.lock() {
            subs.entry(request.uri.clone()).or_default().push(id);
        }
        let peer = ctx.peer.clone();
        let live = self.mesh.live().clone();
        let (tenant, uri) = (principal.tenant, request.uri);
        tokio::spawn(async move {
            while let Some(changed) = rx.recv().await {
                if peer
                    .notify_resource_updated(ResourceUpdatedNotificationParam::new(changed))
                    .await
                    .is_err()
                {
                    break;
                }
            }
            live.unsubscribe(&tenant, &uri, id);
        });
        Ok(())
    }

    #[allow(deprecated)]
    async fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        let principal = self
            .principal(&ctx)
            .map_err(|m| McpError::invalid_request(m, None))?;
        let ids = self
            .legacy_subscriptions
            .lock()
            .ok()
            .and_then(|mut subs| subs.remove(&request.uri))
            .unwrap_or_default();
        for id in ids {
            self.mesh
                .live()
                .unsubscribe(&principal.tenant, &request.uri, id);
        }
        Ok(())
    }
}
