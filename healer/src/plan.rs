//! Planning: choosing the playbook for a diagnosed (or rolled back) incident. Owns the group
//! wait before a shared cause is planned, the playbook candidates with their guards (attempts,
//! rate limit, blast radius, and the harm guards of `actions` that send a plan to an operator),
//! and the spend cap a cost incident's budget cap is set to.

use meshos_playbooks::{IncidentFacts, Plan, PlanContext, RootCauseKind, Subject};
use meshos_store::StoredIncident;
use meshos_types::EventRecord;
use serde_json::json;

use crate::actions::{agents_held_by, harm_guards};
use crate::intake::root_kind;
use crate::lifecycle::{Move, Next, with_data};
use crate::{Diagnosis, Healer, HealerError, HealerPorts, IncidentData, IncidentState, TickReport};

/// How long an incident with a shared root cause gathers symptoms before it is planned.
const GROUP_WAIT_MS: i64 = 5_000;

impl<P: HealerPorts> Healer<P> {
    /// Diagnosed or rolled back: plan the next playbook, or escalate when none is left. A
    /// shared cause (tool, model, region) shows up in several agents within seconds, so its
    /// first plan waits for their symptoms to join: playbooks are chosen by how many agents
    /// are affected.
    pub(crate) async fn on_diagnosed(
        &self,
        inc: StoredIncident,
        state: IncidentState,
        mut data: IncidentData,
        now_ms: i64,
        report: &mut TickReport,
    ) -> Result<Next, HealerError> {
        if state == IncidentState::Diagnosed
            && now_ms - inc.opened_at_ms < GROUP_WAIT_MS
            && !inc.correlation_key.starts_with("agent:")
        {
            return Ok(Next::Stop);
        }
        match self.plan_next(&inc, &mut data, now_ms).await? {
            Ok((plan, refused)) => {
                let inputs = json!({
                    "playbook": plan.playbook_id,
                    "version": plan.playbook_version,
                    "digest": plan.digest,
                    "steps": plan.steps,
                    "dry_run": plan.dry_run,
                    "refused": refused,
                });
                let reason = format!("playbook {} v{}", plan.playbook_id, plan.playbook_version);
                data.tried_playbooks.push(plan.playbook_id.clone());
                data.plan = Some(plan);
                data.approval = None;
                data.verification = None;
                data.step_results.clear();
                let inc = with_data(inc, &data, now_ms);
                let mv = Move::healer(IncidentState::Planned, reason, inputs);
                self.go(inc, mv, now_ms, report).await
            }
            Err(why) => {
                let inc = with_data(inc, &data, now_ms);
                let inputs = json!({"tried": data.tried_playbooks});
                let mv = Move::healer(IncidentState::Escalated, why, inputs);
                self.end(inc, mv, now_ms, report).await
            }
        }
    }

    /// The lowest current trust score among `agents` (`None` if none is known).
    pub(crate) async fn lowest_trust(&self, tenant: &str, agents: &[String]) -> Option<f64> {
        let mut lowest: Option<f64> = None;
        for a in agents {
            if let Some(s) = self.ports.trust_score(tenant, a).await {
                lowest = Some(lowest.map_or(s, |l| l.min(s)));
            }
        }
        lowest
    }

    /// Picks the next playbook for an incident, with the candidates a guard (rate limit, blast
    /// radius) refused before it; or says why there is none.
    pub(crate) async fn plan_next(
        &self,
        inc: &StoredIncident,
        data: &mut IncidentData,
        now_ms: i64,
    ) -> Result<Result<(Plan, Vec<String>), String>, HealerError> {
        let Some(diag) = data.diagnosis.clone() else {
            return Ok(Err("no diagnosis to plan from".into()));
        };
        let trust = self.lowest_trust(&inc.tenant, &data.affected_agents).await;
        let facts = IncidentFacts {
            kind: inc
                .kind
                .parse()
                .map_err(|e: String| HealerError::Corrupt(e))?,
            severity: data.severity(),
            root_cause_kind: root_kind(&diag.root_cause),
            metric: Some(diag.metric.clone()),
            trust_score: trust,
            affected_agents: data.affected_agents.len() as u32,
        };
        let fleet = self.store.known_agents(&inc.tenant).await? as usize;
        let recent = self
            .store
            .events_between(
                &inc.tenant,
                now_ms - self.config.diagnosis_window_ms,
                now_ms + 1,
                200_000,
            )
            .await?;
        let controls = self.store.active_controls(Some(&inc.tenant)).await?;
        let spend_cap = self.spend_cap(inc, &diag, &recent, now_ms).await?;
        let mut refused = Vec::new();
        for pb in self.library.candidates(&facts) {
            let attempts = data.tried_playbooks.iter().filter(|p| **p == pb.id).count() as u32;
            if attempts >= pb.max_attempts {
                continue;
            }
            if let Some(r) = pb.rate_limit {
                let first = pb.steps.first().map(|s| s.id.as_str()).unwrap_or("");
                let runs = self
                    .store
                    .playbook_runs_since(
                        &inc.tenant,
                        &pb.id,
                        first,
                        now_ms - (r.per_seconds as i64) * 1000,
                    )
                    .await?;
                if !pb.rate_limit_allows(runs) {
                    refused.push(format!(
                        "{}: rate limit ({runs} runs in {} s)",
                        pb.id, r.per_seconds
                    ));
                    continue;
                }
            }
            let Some((kind, name)) = diag.root_cause.split_once(':') else {
                return Ok(Err(format!(
                    "root cause `{}` is not kind:name",
                    diag.root_cause
                )));
            };
            let Some(kind) = kind.parse::<RootCauseKind>().ok() else {
                return Ok(Err(format!("root cause kind `{kind}` is unknown")));
            };
            let mut ctx = PlanContext {
                incident_id: inc.id.clone(),
                tenant: inc.tenant.clone(),
                incident_kind: facts.kind,
                subject: Subject {
                    kind,
                    name: name.to_string(),
                },
                metric: Some(diag.metric.clone()),
                affected_agents: data.affected_agents.clone(),
                policy_version: self.ports.policy_version(),
                spend_cap_usd_per_day: spend_cap,
                require_approval: None,
            };
            let plan = match pb.plan(&ctx) {
                Ok(p) => p,
                Err(e) => {
                    refused.push(format!("{}: {e}", pb.id));
                    data.tried_playbooks.push(pb.id.clone());
                    continue;
                }
            };
            // Every agent the plan's controls would hold, not only the affected ones.
            let mut touched: Vec<String> = plan
                .steps
                .iter()
                .flat_map(|s| agents_held_by(s, &data.affected_agents, &recent, now_ms))
                .collect();
            touched.sort();
            touched.dedup();
            if !pb.blast_radius_allows(touched.len(), fleet) {
                refused.push(format!(
                    "{}: blast radius ({} of {fleet} agents)",
                    pb.id,
                    touched.len()
                ));
                data.tried_playbooks.push(pb.id.clone());
                continue;
            }
            let guards = harm_guards(&diag, &plan, &touched, data, &controls, &recent, now_ms);
            if guards.is_empty() || plan.requires_approval().is_some() {
                data.guards = guards;
                return Ok(Ok((plan, refused)));
            }
            // First, do no harm: a human decides, with the reasons shown.
            ctx.require_approval = Some(meshos_playbooks::RequiredApproval {
                role: "operator".into(),
                expires_after_seconds: 900,
            });
            let plan = pb.plan(&ctx)?;
            data.guards = guards;
            return Ok(Ok((plan, refused)));
        }
        Ok(Err(if refused.is_empty() {
            format!(
                "no playbook left for {} {} (tried: {})",
                diag.root_cause,
                diag.metric,
                if data.tried_playbooks.is_empty() {
                    "none".to_string()
                } else {
                    data.tried_playbooks.join(", ")
                }
            )
        } else {
            format!(
                "every candidate playbook was refused: {}",
                refused.join("; ")
            )
        }))
    }

    /// A spend cap for an agent blamed for a cost rise: what it spent today plus five minutes
    /// of its pre-fault spend, so the cap bites at once (a runaway at k× its normal rate
    /// reaches it within 5/k minutes) and no healthy spend is refused before the cap is
    /// released on evidence. `None` for other incidents.
    pub(crate) async fn spend_cap(
        &self,
        inc: &StoredIncident,
        diag: &Diagnosis,
        recent: &[EventRecord],
        now_ms: i64,
    ) -> Result<Option<f64>, HealerError> {
        let Some(agent) = diag.root_cause.strip_prefix("agent:") else {
            return Ok(None);
        };
        if diag.metric != "cost" {
            return Ok(None);
        }
        let [day, _] = meshos_store::usage_periods(now_ms);
        let spent_micro = self
            .store
            .usage(
                &inc.tenant,
                &[meshos_store::UsageKey {
                    scope: "agent".into(),
                    scope_id: agent.to_string(),
                    period: day,
                }],
            )
            .await?
            .first()
            .map_or(0, |(_, _, micro)| *micro);
        let fault = inc.fault_started_at_ms;
        let before: Vec<&EventRecord> = recent
            .iter()
            .filter(|e| e.agent_id == agent && e.created_at_ms < fault - 5_000)
            .collect();
        let span_ms = before
            .iter()
            .map(|e| e.created_at_ms)
            .min()
            .map_or(0, |first| fault - 5_000 - first)
            .max(60_000);
        let five_minutes =
            before.iter().filter_map(|e| e.cost_usd).sum::<f64>() * 300_000.0 / span_ms as f64;
        Ok(Some(spent_micro as f64 / 1e6 + five_minutes.max(0.01)))
    }
}
