//! The healing loop inside `meshos serve`: the server's side of `meshos_healer::HealerPorts`
//! (live trust scores, signed webhooks, the bundle version) and the leader-lease loop that keeps
//! one healer per deployment.

use std::sync::Arc;
use std::time::Duration;

use meshos_healer::{Healer, HealerConfig, HealerPorts};
use meshos_playbooks::{ActionKind, Library, PlannedStep};
use meshos_types::now_ms;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::mesh::Mesh;
use crate::webhook::{DeliveryOutcome, WebhookEndpoint, WebhookSecret, WebhookSender};

/// The lease name every replica competes for.
pub const LEASE: &str = "meshos-healer";

/// What the healer reaches through the server.
pub struct ServerPorts {
    pub mesh: Arc<Mesh>,
    pub sender: WebhookSender,
    /// The `[trust]` webhooks; `notify` steps go to those that accept `incident.notify`.
    pub alert_webhooks: Vec<WebhookEndpoint>,
}

impl ServerPorts {
    /// A playbook's `run_eval` step: runs the named suite, or with `suite: default` every suite
    /// of the agent, and waits for the results. The step fails when a run fails or still
    /// regresses against its baseline, so the incident is not resolved on a suite that is
    /// still worse.
    async fn run_evals(
        &self,
        tenant: &str,
        incident_id: &str,
        suite: Option<String>,
        agent: Option<String>,
    ) -> Result<Value, String> {
        let suites: Vec<String> = match suite.as_deref() {
            Some(id) if id != "default" => vec![id.to_string()],
            _ => {
                let (all, _) = self.mesh.eval_suites().map_err(|e| e.to_string())?;
                all.into_iter()
                    .filter(|s| agent.as_deref().is_none_or(|a| s.agent_id == a))
                    .map(|s| s.id)
                    .collect()
            }
        };
        if suites.is_empty() {
            return Err(format!(
                "no eval suite to run for agent {}",
                agent.as_deref().unwrap_or("(any)")
            ));
        }
        let principal = meshos_types::Principal {
            token_id: format!("healer:{incident_id}"),
            tenant: tenant.to_string(),
            role: meshos_types::Role::Operator,
            agent_id: None,
        };
        let mut runs = Vec::new();
        for id in suites {
            let options = crate::evals::EvalRunOptions {
                trigger: Some(format!("healer:{incident_id}")),
                ..Default::default()
            };
            let outcome = self
                .mesh
                .run_eval(&principal, &id, options)
                .await
                .map_err(|e| format!("eval suite {id}: {e}"))?;
            if outcome.run.status != "completed" || outcome.regressed() {
                return Err(format!(
                    "eval suite {id} re-run {} is {}{}",
                    outcome.run.id,
                    outcome.run.status,
                    if outcome.regressed() {
                        " and still regressed against its baseline"
                    } else {
                        ""
                    }
                ));
            }
            runs.push(json!({
                "suite": id,
                "run_id": outcome.run.id,
                "items": outcome.run.items,
                "items_passed": outcome.run.items_passed,
                "ledger_index": outcome.ledger_index,
                "regressed": false,
            }));
        }
        Ok(json!({ "runs": runs }))
    }
}

impl HealerPorts for ServerPorts {
    async fn trust_score(&self, tenant: &str, agent: &str) -> Option<f64> {
        let team = self
            .mesh
            .bundle
            .current()
            .placement(agent)
            .team
            .map(str::to_string);
        match self
            .mesh
            .live
            .score_now(tenant, agent, team.as_deref())
            .await
        {
            Ok(score) => score.map(|(s, _)| s.score),
            Err(e) => {
                tracing::warn!(error = %e, tenant, agent, "healer: trust score unavailable");
                None
            }
        }
    }

    async fn deliver(
        &self,
        tenant: &str,
        incident_id: &str,
        step: &PlannedStep,
        delivery_id: &str,
    ) -> Result<Value, String> {
        let param = |k: &str| {
            step.params
                .get(k)
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        match step.action {
            ActionKind::Webhook => {
                let url = match (param("url"), param("url_env")) {
                    (Some(url), _) => url,
                    (None, Some(var)) => std::env::var(&var).map_err(|_| {
                        format!("environment variable {var} (the webhook URL) is not set")
                    })?,
                    (None, None) => return Err("the step names no url or url_env".into()),
                };
                let url = reqwest::Url::parse(&url)
                    .map_err(|e| format!("webhook url {url:?} is not a URL: {e}"))?;
                let secret = match param("secret_env") {
                    Some(var) => std::env::var(&var).map_err(|_| {
                        format!("environment variable {var} (the signing secret) is not set")
                    })?,
                    None => {
                        return Err(
                            "the step names no secret_env; heal webhooks are always signed".into(),
                        );
                    }
                };
                let endpoint = WebhookEndpoint {
                    url,
                    secret: WebhookSecret::new(secret.into_bytes()),
                    tenant: None,
                    events: None,
                };
                let payload = json!({
                    "event": param("event"),
                    "tenant": tenant,
                    "incident_id": incident_id,
                    "delivery_id": delivery_id,
                    "payload": step.params.get("payload").cloned().unwrap_or(Value::Null),
                });
                let delivery = self
                    .sender
                    .deliver_as(&endpoint, &payload, delivery_id)
                    .await;
                match &delivery.outcome {
                    DeliveryOutcome::Delivered { .. } => Ok(json!(delivery)),
                    DeliveryOutcome::Failed { reason } => Err(format!(
                        "webhook {} failed after {} attempt(s): {reason}",
                        delivery.url, delivery.attempts
                    )),
                }
            }
            ActionKind::Notify => {
                let message = param("message").unwrap_or_default();
                tracing::warn!(tenant, incident_id, %message, "healer notification");
                let payload = json!({"event": "incident.notify", "tenant": tenant,
                                     "incident_id": incident_id, "message": message});
                let mut delivered = Vec::new();
                for hook in self
                    .alert_webhooks
                    .iter()
                    .filter(|h| h.accepts(tenant, "incident.notify"))
                {
                    delivered.push(self.sender.deliver_as(hook, &payload, delivery_id).await);
                }
                Ok(json!({"message": message, "deliveries": delivered}))
            }
            ActionKind::RunEval => {
                self.run_evals(tenant, incident_id, param("suite"), param("agent"))
                    .await
            }
            other => Err(format!("`{other}` is not a delivery action")),
        }
    }

    fn policy_version(&self) -> String {
        self.mesh.bundle.current().version().to_string()
    }
}

/// Runs the healer while this process holds the leader lease; competes for it again whenever
/// it is lost (another replica took over after this one's connection dropped). Ends on
/// `shutdown`.
pub async fn run(
    healer: Arc<tokio::sync::Mutex<Healer<ServerPorts>>>,
    mesh: Arc<Mesh>,
    tick: Duration,
    shutdown: CancellationToken,
) {
    let store = &mesh.store;
    let leader = &mesh.metrics.healer_leader;
    let retry = Duration::from_secs(5);
    while !shutdown.is_cancelled() {
        let lease = match store.try_leader_lease(LEASE).await {
            Ok(Some(lease)) => lease,
            Ok(None) => {
                tracing::debug!("healer: another replica holds the lease");
                tokio::select! { _ = shutdown.cancelled() => return, _ = tokio::time::sleep(retry) => continue }
            }
            Err(e) => {
                tracing::warn!(error = %e, "healer: cannot take the leader lease");
                tokio::select! { _ = shutdown.cancelled() => return, _ = tokio::time::sleep(retry) => continue }
            }
        };
        tracing::info!("healer: leader lease taken; the healing loop runs here");
        leader.set(1);
        let mut lease = lease;
        loop {
            if !lease.is_held().await {
                tracing::warn!("healer: leader lease lost");
                leader.set(0);
                break;
            }
            if let Err(e) = healer.lock().await.tick(now_ms()).await {
                tracing::warn!(error = %e, "healer tick failed");
            }
            mesh.metrics.healer_ticks.inc();
            tokio::select! {
                _ = shutdown.cancelled() => {
                    leader.set(0);
                    if let Err(e) = lease.release().await {
                        tracing::warn!(error = %e, "healer: releasing the lease failed");
                    }
                    return;
                }
                _ = tokio::time::sleep(tick) => {}
            }
        }
    }
}

/// The healer for a server: the shipped playbook library and default tuning.
pub fn build(
    mesh: Arc<Mesh>,
    sender: WebhookSender,
    alert_webhooks: Vec<WebhookEndpoint>,
) -> Result<Healer<ServerPorts>, meshos_playbooks::PlaybookError> {
    let library = Library::builtin()?;
    let store = mesh.store.clone();
    Ok(Healer::new(
        store,
        library,
        ServerPorts {
            mesh,
            sender,
            alert_webhooks,
        },
        HealerConfig::default(),
    ))
}

/// Ports for the command line, which records approvals and reads incidents but never runs a
/// step: every delivery is refused and no trust score is known.
pub struct OfflinePorts {
    pub policy_version: String,
}

impl HealerPorts for OfflinePorts {
    async fn trust_score(&self, _tenant: &str, _agent: &str) -> Option<f64> {
        None
    }

    async fn deliver(
        &self,
        _tenant: &str,
        _incident_id: &str,
        step: &PlannedStep,
        _delivery_id: &str,
    ) -> Result<Value, String> {
        Err(format!(
            "`{}` runs only in a server started with --healer",
            step.action
        ))
    }

    fn policy_version(&self) -> String {
        self.policy_version.clone()
    }
}
