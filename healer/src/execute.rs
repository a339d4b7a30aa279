//! Execution: applying a plan's steps and undoing them. Owns the idempotent application of a
//! step (a control row in the store, or a delivery through the ports, each recorded once under
//! its idempotency key), rollback (clearing the plan's controls, running its rollback steps),
//! and putting an incident's controls on canary or back in full.

use meshos_playbooks::{Plan, PlannedStep};
use meshos_store::{StoredControl, StoredHealAction, StoredIncident};
use meshos_types::new_id;
use serde_json::{Value, json};

use crate::actions::control_of;
use crate::lifecycle::{Move, Next, current_plan, with_data};
use crate::{
    Healer, HealerError, HealerPorts, IncidentData, IncidentState, TickReport, Verification,
};

impl<P: HealerPorts> Healer<P> {
    /// Executing: apply every step; then verify, or (a dry run) escalate with the plan on
    /// record, or (a step failed) roll back.
    pub(crate) async fn on_executing(
        &self,
        inc: StoredIncident,
        mut data: IncidentData,
        now_ms: i64,
        report: &mut TickReport,
    ) -> Result<Next, HealerError> {
        let plan = current_plan(&inc, &data, "executing")?;
        match self.execute(&inc, &mut data, &plan, now_ms).await? {
            Ok(()) if plan.dry_run => {
                let inc = with_data(inc, &data, now_ms);
                let mv = Move::healer(
                    IncidentState::Escalated,
                    "dry run: the plan was recorded and nothing was applied",
                    json!({"steps": data.step_results}),
                );
                self.end(inc, mv, now_ms, report).await
            }
            Ok(()) => {
                let window = (plan.verify.window_seconds as i64) * 1000;
                let recovery = self.recovery_target(&inc, &data).await?;
                data.verification = Some(Verification {
                    started_at_ms: now_ms,
                    deadline_ms: now_ms + window,
                    recovery,
                    ..Verification::default()
                });
                let inputs = json!({"steps": data.step_results});
                let inc = with_data(inc, &data, now_ms);
                let mv = Move::healer(IncidentState::Verifying, "all steps applied", inputs);
                self.go(inc, mv, now_ms, report).await
            }
            Err(why) => {
                self.rollback(&inc, &data, &plan, now_ms).await?;
                let inputs = json!({"steps": data.step_results});
                let inc = with_data(inc, &data, now_ms);
                let mv = Move::healer(IncidentState::RolledBack, why, inputs);
                self.go(inc, mv, now_ms, report).await
            }
        }
    }

    /// Puts every active control of the incident on canary (`Some(share)`) or back in full
    /// (`None`). Returns whether there was any.
    pub(crate) async fn set_canary(
        &self,
        inc: &StoredIncident,
        share: Option<f64>,
    ) -> Result<bool, HealerError> {
        let controls: Vec<StoredControl> = self
            .store
            .active_controls(Some(&inc.tenant))
            .await?
            .into_iter()
            .filter(|c| c.incident_id == inc.id)
            .collect();
        for c in &controls {
            let Some(spec) = c.spec_with_canary(share) else {
                continue;
            };
            self.store
                .update_control_spec(&c.tenant, &c.id, &spec)
                .await?;
        }
        Ok(!controls.is_empty())
    }

    /// Applies every step once (idempotency keys make replays no-ops). `Err` names the step
    /// that failed.
    pub(crate) async fn execute(
        &self,
        inc: &StoredIncident,
        data: &mut IncidentData,
        plan: &Plan,
        now_ms: i64,
    ) -> Result<Result<(), String>, HealerError> {
        data.step_results.clear();
        for step in &plan.steps {
            let result = self
                .apply_step(inc, plan, step, "apply", plan.dry_run, now_ms)
                .await?;
            let failed = result.get("status").and_then(Value::as_str) == Some("failed");
            data.step_results.push(result.clone());
            if failed {
                return Ok(Err(format!(
                    "step {} ({}) failed: {}",
                    step.id,
                    step.action,
                    result
                        .get("error")
                        .and_then(Value::as_str)
                        .unwrap_or("unknown error")
                )));
            }
        }
        Ok(Ok(()))
    }

    pub(crate) async fn apply_step(
        &self,
        inc: &StoredIncident,
        plan: &Plan,
        step: &PlannedStep,
        phase: &str,
        dry_run: bool,
        now_ms: i64,
    ) -> Result<Value, HealerError> {
        let key = format!("{}:{}:{}:{phase}", inc.id, plan.digest, step.id);
        if let Some(done) = self.store.heal_action(&key).await? {
            return Ok(
                json!({"step": step.id, "action": step.action, "status": done.status,
                             "result": done.result, "replayed": true}),
            );
        }
        let (status, result) = if dry_run {
            ("skipped_dry_run", json!({"would": step.params}))
        } else {
            match control_of(step) {
                Ok(Some(control)) => {
                    let row =
                        StoredControl::new(new_id("ctl"), &inc.tenant, &inc.id, &control, now_ms);
                    let set = self.store.set_control(&row).await?;
                    (
                        "applied",
                        json!({"control": row.kind, "subject": row.subject, "newly_set": set}),
                    )
                }
                Ok(None) => match self.ports.deliver(&inc.tenant, &inc.id, step, &key).await {
                    Ok(v) => ("applied", v),
                    Err(e) => ("failed", json!({"error": e})),
                },
                Err(e) => ("failed", json!({"error": e.to_string()})),
            }
        };
        let action = StoredHealAction {
            idempotency_key: key,
            tenant: inc.tenant.clone(),
            incident_id: inc.id.clone(),
            playbook_id: plan.playbook_id.clone(),
            step_id: step.id.clone(),
            action: step.action.to_string(),
            params: Value::Object(step.params.clone()),
            status: status.to_string(),
            result: result.clone(),
            created_at_ms: now_ms,
        };
        self.store.record_heal_action(&action).await?;
        let mut out =
            json!({"step": step.id, "action": step.action, "status": status, "result": result});
        if status == "failed" {
            out["error"] = result.get("error").cloned().unwrap_or(Value::Null);
        }
        Ok(out)
    }

    /// Clears every control the plan set, in reverse order.
    pub(crate) async fn rollback_controls(
        &self,
        inc: &StoredIncident,
        plan: &Plan,
        now_ms: i64,
    ) -> Result<(), HealerError> {
        for step in plan.steps.iter().rev() {
            // A step whose control does not parse set nothing (`apply_step` failed it).
            if let Ok(Some(control)) = control_of(step) {
                self.store
                    .clear_control(
                        &inc.tenant,
                        control.kind().as_str(),
                        &control.subject(),
                        &inc.id,
                        now_ms,
                    )
                    .await?;
            }
        }
        Ok(())
    }

    /// Clears every control the plan set (in reverse order) and runs its rollback steps.
    pub(crate) async fn rollback(
        &self,
        inc: &StoredIncident,
        _data: &IncidentData,
        plan: &Plan,
        now_ms: i64,
    ) -> Result<(), HealerError> {
        self.rollback_controls(inc, plan, now_ms).await?;
        for step in &plan.rollback {
            self.apply_step(inc, plan, step, "rollback", plan.dry_run, now_ms)
                .await?;
        }
        Ok(())
    }
}
