//! Eval schedules: cron expressions per suite, kept in the store and fired by one replica (the
//! holder of the `evals-scheduler` leader lease). A fire is claimed in the store before its run
//! starts (two replicas cannot both claim it), a schedule's runs never overlap, missed fires
//! follow the schedule's catch-up rule, and a run left unfinished by a replica that died is
//! closed as failed and its fire run again — so a failover neither loses nor doubles a run.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use meshos_evals::schedule::{CronSchedule, Due};
use meshos_store::StoredEvalSchedule;
use meshos_types::{Principal, Role, new_id, now_ms};
use tokio_util::sync::CancellationToken;

use crate::evals::EvalRunOptions;
use crate::incidents::{may_act, may_read};
use crate::mesh::{Mesh, MeshError, invalid};

/// The lease the scheduling replica holds.
const LEASE: &str = "evals-scheduler";

/// Runs this process started and has not seen end: a schedule whose running run is not among
/// them, while this process holds the lease, was left by a replica that is gone.
#[derive(Default)]
pub struct InFlight(Mutex<HashSet<String>>);

impl InFlight {
    fn set(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        match self.0.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}

impl Mesh {
    /// Adds a schedule of suite `suite_id` (which must load) for the principal's tenant.
    pub async fn add_eval_schedule(
        &self,
        principal: &Principal,
        suite_id: &str,
        cron: &str,
        timezone: &str,
        catch_up: &str,
    ) -> Result<StoredEvalSchedule, MeshError> {
        may_act(principal, "schedule evals")?;
        self.eval_suite(suite_id)?;
        CronSchedule::parse(cron, timezone, catch_up)
            .map_err(|e| invalid("cron", e.to_string()))?;
        let schedule = StoredEvalSchedule {
            id: new_id("evs"),
            tenant: principal.tenant.clone(),
            suite_id: suite_id.to_string(),
            cron: cron.to_string(),
            timezone: timezone.to_string(),
            catch_up: catch_up.to_string(),
            created_at_ms: now_ms(),
            last_fire_ms: None,
            running_run_id: None,
            version: 0,
        };
        self.store.insert_eval_schedule(&schedule).await?;
        Ok(schedule)
    }

    pub async fn eval_schedules(
        &self,
        principal: &Principal,
    ) -> Result<Vec<StoredEvalSchedule>, MeshError> {
        may_read(principal)?;
        Ok(self.store.eval_schedules(Some(&principal.tenant)).await?)
    }

    pub async fn remove_eval_schedule(
        &self,
        principal: &Principal,
        id: &str,
    ) -> Result<(), MeshError> {
        may_act(principal, "remove eval schedules")?;
        if self
            .store
            .remove_eval_schedule(&principal.tenant, id)
            .await?
        {
            Ok(())
        } else {
            Err(MeshError::NotFound(format!("no eval schedule {id:?}")))
        }
    }
}

/// Who a scheduled run acts as.
fn scheduler_principal(s: &StoredEvalSchedule) -> Principal {
    Principal {
        token_id: format!("schedule:{}", s.id),
        tenant: s.tenant.clone(),
        role: Role::Operator,
        agent_id: None,
    }
}

/// One pass over every schedule at `now`: releases schedules whose run ended, closes runs
/// orphaned by a dead replica, claims due fires and starts their runs (in the background).
/// Returns the runs started.
pub async fn tick(mesh: &Arc<Mesh>, in_flight: &Arc<InFlight>, now: i64) -> Vec<String> {
    let schedules = match mesh.store.eval_schedules(None).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "eval scheduler: cannot read schedules");
            return Vec::new();
        }
    };
    let mut started = Vec::new();
    for s in schedules {
        match tick_one(mesh, in_flight, s, now).await {
            Ok(Some(run)) => started.push(run),
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "eval scheduler: schedule skipped this tick"),
        }
    }
    started
}

async fn tick_one(
    mesh: &Arc<Mesh>,
    in_flight: &Arc<InFlight>,
    s: StoredEvalSchedule,
    now: i64,
) -> Result<Option<String>, MeshError> {
    if let Some(run_id) = s.running_run_id.clone() {
        if in_flight.set().contains(&run_id) {
            return Ok(None);
        }
        // Not ours: finished (release it) or orphaned by a replica that is gone.
        let run = mesh.store.eval_run(&s.tenant, &run_id).await?;
        let orphaned_fire = match run {
            Some(r) if !r.is_finished() => {
                let mut record = r.record;
                record.status = "failed".into();
                record.finished_at_ms = now.max(record.started_at_ms);
                mesh.store.finish_eval_run(&record).await?;
                tracing::warn!(schedule = %s.id, run = %run_id,
                               "eval scheduler: a run left unfinished by another replica is closed as failed; its fire runs again");
                s.last_fire_ms
            }
            _ => None,
        };
        mesh.store
            .release_eval_schedule(&s.tenant, &s.id, &run_id)
            .await?;
        let Some(fire_ms) = orphaned_fire else {
            return Ok(None);
        };
        // Re-read for the version the release moved to, then run the same fire again.
        let Some(fresh) = mesh
            .store
            .eval_schedules(Some(&s.tenant))
            .await?
            .into_iter()
            .find(|x| x.id == s.id)
        else {
            return Ok(None);
        };
        return start(mesh, in_flight, fresh, fire_ms).await;
    }
    let cron = CronSchedule::parse(&s.cron, &s.timezone, &s.catch_up)
        .map_err(|e| invalid("cron", e.to_string()))?;
    match cron.due(s.last_fire_ms.unwrap_or(s.created_at_ms), now) {
        Due::No => Ok(None),
        Due::Skip { fire_ms, missed } => {
            if mesh
                .store
                .claim_eval_schedule_fire(&s, fire_ms, None)
                .await?
            {
                tracing::info!(schedule = %s.id, missed, "eval scheduler: missed fires skipped (catch_up = skip)");
            }
            Ok(None)
        }
        Due::Run { fire_ms, missed } => {
            if missed > 0 {
                tracing::info!(schedule = %s.id, missed, "eval scheduler: missed fires caught up with one run");
            }
            start(mesh, in_flight, s, fire_ms).await
        }
    }
}

/// Claims `fire_ms` for a new run and starts it; None when another claimed it first.
async fn start(
    mesh: &Arc<Mesh>,
    in_flight: &Arc<InFlight>,
    s: StoredEvalSchedule,
    fire_ms: i64,
) -> Result<Option<String>, MeshError> {
    let run_id = new_id("evr");
    if !mesh
        .store
        .claim_eval_schedule_fire(&s, fire_ms, Some(&run_id))
        .await?
    {
        return Ok(None);
    }
    in_flight.set().insert(run_id.clone());
    let (mesh, in_flight, id) = (mesh.clone(), in_flight.clone(), run_id.clone());
    tokio::spawn(async move {
        let principal = scheduler_principal(&s);
        let options = EvalRunOptions {
            trigger: Some(format!("schedule:{}", s.id)),
            run_id: Some(id.clone()),
            ..EvalRunOptions::default()
        };
        match mesh.run_eval(&principal, &s.suite_id, options).await {
            Ok(outcome) => {
                tracing::info!(schedule = %s.id, run = %id, status = %outcome.run.status,
                                          regressed = outcome.regressed(), "scheduled eval run finished")
            }
            Err(e) => {
                tracing::warn!(schedule = %s.id, run = %id, error = %e, "scheduled eval run failed")
            }
        }
        if let Err(e) = mesh
            .store
            .release_eval_schedule(&s.tenant, &s.id, &id)
            .await
        {
            tracing::warn!(schedule = %s.id, error = %e, "eval scheduler: cannot release the schedule");
        }
        in_flight.set().remove(&id);
    });
    Ok(Some(run_id))
}

/// Runs the scheduler while this process holds the `evals-scheduler` lease, ticking every
/// `every`; competes for the lease again when it is lost. Ends on `shutdown`.
pub async fn run(mesh: Arc<Mesh>, every: Duration, shutdown: CancellationToken) {
    let in_flight = Arc::new(InFlight::default());
    let retry = Duration::from_secs(5);
    while !shutdown.is_cancelled() {
        let mut lease = match mesh.store.try_leader_lease(LEASE).await {
            Ok(Some(lease)) => lease,
            Ok(None) => {
                tokio::select! { _ = shutdown.cancelled() => return, _ = tokio::time::sleep(retry) => continue }
            }
            Err(e) => {
                tracing::warn!(error = %e, "eval scheduler: cannot take the leader lease");
                tokio::select! { _ = shutdown.cancelled() => return, _ = tokio::time::sleep(retry) => continue }
            }
        };
        tracing::info!(
            "eval scheduler: this replica holds the evals-scheduler lease; schedules fire here"
        );
        loop {
            if !lease.is_held().await {
                tracing::warn!("eval scheduler: leader lease lost");
                break;
            }
            tick(&mesh, &in_flight, now_ms()).await;
            tokio::select! {
                _ = shutdown.cancelled() => {
                    if let Err(e) = lease.release().await {
                        tracing::warn!(error = %e, "eval scheduler: releasing the lease failed");
                    }
                    return;
                }
                _ = tokio::time::sleep(every) => {}
            }
        }
    }
}

#[cfg(test)]
#[path = "eval_scheduler_tests.rs"]
mod tests;
