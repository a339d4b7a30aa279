//! Verification: whether a fix worked. Owns the pre-fault baseline an incident is judged
//! against, each verification evaluation (only on fresh telemetry from what the incident
//! touched; a canary when the controls leave nothing to judge), and the outcome: resolved,
//! rolled back, or escalated when nothing can be verified.

use meshos_playbooks::Plan;
use meshos_store::StoredIncident;
use meshos_types::{EventRecord, Outcome};
use serde_json::{Value, json};

use crate::alarm::is_work;
use crate::lifecycle::{Move, Next, current_plan, with_data};
use crate::{
    Healer, HealerError, HealerPorts, IncidentData, IncidentState, MetricRecovery, TickReport,
};

/// Telemetry before a fault that gives a verification its baseline.
const BASELINE_MS: i64 = 120_000;
const BASELINE_MIN_EVENTS: usize = 10;
/// How long a verification may keep retrying canaries while its controls contain the fault,
/// before a human is asked.
const CONTAINED_VERIFY_MS: i64 = 600_000;

impl<P: HealerPorts> Healer<P> {
    /// Verifying: one evaluation, and what it concluded: resolved (a passing canary releases
    /// the controls at once), escalated (nothing to verify by, or a canary still failing: the
    /// controls stay), rolled back (a failed fix), or wait.
    pub(crate) async fn on_verifying(
        &self,
        inc: StoredIncident,
        mut data: IncidentData,
        now_ms: i64,
        report: &mut TickReport,
    ) -> Result<Next, HealerError> {
        let plan = current_plan(&inc, &data, "verifying")?;
        let canary = |data: &IncidentData| data.verification.as_ref().is_some_and(|v| v.canary);
        match self.verify_step(&inc, &mut data, &plan, now_ms).await? {
            VerifyOutcome::Pending => {
                self.save_data(inc, &data, now_ms).await?;
                Ok(Next::Stop)
            }
            VerifyOutcome::Passed => {
                let on_canary = canary(&data);
                if on_canary {
                    // The canary already proved the fault gone: nothing to hold.
                    self.rollback_controls(&inc, &plan, now_ms).await?;
                }
                let inputs = json!(data.verification);
                let inc = with_data(inc, &data, now_ms);
                let reason = if on_canary {
                    "verification passed on canary traffic: the triggering metric is back at its pre-fault baseline; the controls are released"
                } else {
                    "verification passed: the triggering metric is back at its pre-fault baseline"
                };
                let mv = Move::healer(IncidentState::Resolved, reason, inputs);
                self.end(inc, mv, now_ms, report).await
            }
            VerifyOutcome::Unverifiable(why) => {
                // The controls stay: they contain the fault; a human decides.
                let inputs = json!(data.verification);
                let inc = with_data(inc, &data, now_ms);
                let reason = format!(
                    "not verifiable: {why}; the controls stay in force until an operator releases them"
                );
                let mv = Move::healer(IncidentState::Escalated, reason, inputs);
                self.end(inc, mv, now_ms, report).await
            }
            VerifyOutcome::Failed if canary(&data) => {
                // The canary shows the fault is still there: the control contains it, so it
                // stays in full and a human decides.
                self.set_canary(&inc, None).await?;
                let inputs = json!(data.verification);
                let inc = with_data(inc, &data, now_ms);
                let mv = Move::healer(
                    IncidentState::Escalated,
                    "the canary traffic is still off its pre-fault baseline: the controls are restored in full and stay until an operator releases them",
                    inputs,
                );
                self.end(inc, mv, now_ms, report).await
            }
            VerifyOutcome::Failed => {
                self.rollback(&inc, &data, &plan, now_ms).await?;
                let inputs = json!(data.verification);
                let inc = with_data(inc, &data, now_ms);
                let mv = Move::healer(
                    IncidentState::RolledBack,
                    "verification failed; controls cleared and rollback steps run",
                    inputs,
                );
                self.go(inc, mv, now_ms, report).await
            }
        }
    }

    /// The pre-fault baseline every verification is judged against: the metric that opened
    /// the incident, over the faulty entity's and the affected agents' telemetry in the two
    /// minutes before the fault (or, with too little of it, the unaffected rest of the fleet's
    /// since then). `None` when the metric is not one the telemetry carries (trust score, eval).
    pub(crate) async fn recovery_target(
        &self,
        inc: &StoredIncident,
        data: &IncidentData,
    ) -> Result<Option<MetricRecovery>, HealerError> {
        let Some(diag) = &data.diagnosis else {
            return Ok(None);
        };
        if !["latency", "error_rate", "violation_rate", "cost"].contains(&diag.metric.as_str()) {
            return Ok(None);
        }
        let fault_start = inc.fault_started_at_ms.min(diag.anomaly_start_ms);
        let now_ms = data.executing_since_ms.unwrap_or(inc.updated_at_ms);
        let events = self
            .store
            .events_between(&inc.tenant, fault_start - BASELINE_MS, now_ms + 1, 200_000)
            .await?;
        let in_scope = |e: &&EventRecord| touches(e, inc.subject.as_deref(), &data.affected_agents);
        let before_fault: Vec<&EventRecord> = events
            .iter()
            .filter(|e| e.created_at_ms < fault_start - 5_000)
            .filter(in_scope)
            .filter(|e| counts_for(&diag.metric, e))
            .collect();
        // Too little history of its own (a new agent, a fault soon after start): the rest of
        // the fleet over the same time is the baseline.
        let sample = if before_fault.len() >= BASELINE_MIN_EVENTS {
            before_fault
        } else {
            events
                .iter()
                .filter(|e| !in_scope(e) && counts_for(&diag.metric, e))
                .collect()
        };
        if sample.len() < BASELINE_MIN_EVENTS {
            return Ok(None);
        }
        Ok(MetricRecovery::from_baseline(
            &diag.metric,
            metric_over(&diag.metric, &sample),
        ))
    }

    /// One verification evaluation. An evaluation counts only on enough fresh telemetry from
    /// what the incident touched: refused actions and a paused agent are no data, so they can
    /// never pass a fix, and a verification that saw no data by its deadline is unverifiable.
    pub(crate) async fn verify_step(
        &self,
        inc: &StoredIncident,
        data: &mut IncidentData,
        plan: &Plan,
        now_ms: i64,
    ) -> Result<VerifyOutcome, HealerError> {
        let Some(mut v) = data.verification.clone() else {
            return Err(HealerError::Corrupt(format!(
                "incident {} has no verification",
                inc.id
            )));
        };
        if let Some(next) = v.next_canary_ms {
            if now_ms < next {
                // The controls hold in full after a failed canary: nothing to judge yet.
                return Ok(VerifyOutcome::Pending);
            }
            self.set_canary(inc, Some(self.config.release.canary_share))
                .await?;
            v.next_canary_ms = None;
            v.consecutive_passes = 0;
            v.failures = 0;
            v.round_since_ms = Some(now_ms);
            v.deadline_ms = now_ms + 2 * self.config.release.canary_ms;
            v.observations.push(json!({
                "at_ms": now_ms, "canary": self.config.release.canary_share,
                "why": format!("canary again after {} failed", v.canary_failures),
            }));
        }
        // Events since the last evaluation that counted: a quiet agent's telemetry accumulates
        // over skipped evaluations until there is enough to judge.
        let last_eval = v
            .observations
            .iter()
            .rev()
            .find(|o| o.get("pass").is_some())
            .and_then(|o| o.get("at_ms"))
            .and_then(Value::as_i64)
            .unwrap_or(v.started_at_ms);
        if now_ms - last_eval < self.config.verify_interval_ms && !v.observations.is_empty() {
            return Ok(VerifyOutcome::Pending);
        }
        let spec = &plan.verify;
        let judged = v
            .recovery
            .as_ref()
            .map(|r| r.metric.clone())
            .or_else(|| spec.metric.as_ref().map(|m| m.name.clone()));
        let events = self
            .store
            .events_between(
                &inc.tenant,
                v.round_since_ms.unwrap_or(v.started_at_ms),
                now_ms + 1,
                100_000,
            )
            .await?;
        let in_round: Vec<&EventRecord> = events
            .iter()
            .filter(|e| touches(e, inc.subject.as_deref(), &data.affected_agents))
            .filter(|e| judged.as_deref().is_none_or(|m| counts_for(m, e)))
            .collect();
        // Judge the newest data: everything since the last evaluation, or the newest
        // `verify_min_events` events if that is fewer (a quiet or backing-off agent), so that
        // what happened before the fix took hold does not linger in every later evaluation.
        // A canary round is judged on all of its traffic instead (the controls held before it
        // began, so all of it is evidence), and a rate on twice as many events: a share of an
        // intermittent fault's traffic shows clean runs of a few events by chance (a leak in 6
        // of 10 replies gave two clean evaluations of 5 events now and then, and was resolved).
        let fresh = in_round
            .iter()
            .filter(|e| e.created_at_ms >= last_eval)
            .count();
        let judged_rate = judged
            .as_deref()
            .is_some_and(|m| m == "error_rate" || m == "violation_rate");
        let (scope, min_events): (Vec<&EventRecord>, usize) = if v.canary {
            let factor = if judged_rate { 2 } else { 1 };
            (in_round.clone(), factor * self.config.verify_min_events)
        } else {
            let take = fresh.max(self.config.verify_min_events);
            (
                in_round[in_round.len().saturating_sub(take)..].to_vec(),
                self.config.verify_min_events,
            )
        };
        let counted = fresh >= 1 && scope.len() >= min_events;
        if counted {
            let mut trust_ok = true;
            let mut min_trust: Option<f64> = None;
            if let Some(threshold) = spec.trust_score_at_least {
                min_trust = self.lowest_trust(&inc.tenant, &data.affected_agents).await;
                trust_ok = min_trust.is_some_and(|m| m >= threshold);
            }
            let mut metric_value = None;
            let mut metric_ok = true;
            if let Some(m) = spec
                .metric
                .as_ref()
                .filter(|m| m.below.is_some() || m.above.is_some())
            {
                let value = metric_over(&m.name, &scope);
                metric_value = Some(value);
                metric_ok = m.below.is_none_or(|b| value < b) && m.above.is_none_or(|a| value > a);
            }
            let mut recovered = None;
            let mut recovery_ok = true;
            if let Some(r) = &v.recovery {
                let value = metric_over(&r.metric, &scope);
                recovered = Some(json!({"metric": r.metric, "value": value,
                                        "baseline": r.baseline, "limit": r.limit}));
                recovery_ok = value <= r.limit;
            }
            let pass = trust_ok && metric_ok && recovery_ok;
            v.observations.push(json!({
                "at_ms": now_ms, "events": scope.len(), "trust_min": min_trust,
                "metric": metric_value, "recovery": recovered, "pass": pass,
            }));
            if pass {
                v.consecutive_passes += 1;
            } else {
                v.consecutive_passes = 0;
                // A control such as a budget cap bites only once the agent reaches it: a metric
                // on its way back is given the first half of the window before it counts.
                let half = v.started_at_ms + (v.deadline_ms - v.started_at_ms) / 2;
                if !(trust_ok && metric_ok) || now_ms >= half {
                    v.failures += 1;
                }
            }
        } else {
            // One note for a run of skipped evaluations, not one per tick.
            if v.observations
                .last()
                .is_some_and(|o| o.get("skipped").is_some())
            {
                v.observations.pop();
            }
            v.observations.push(json!({
                "at_ms": now_ms, "events": scope.len(),
                "skipped": "not verifiable yet: too little fresh telemetry from what the incident touched",
            }));
        }
        let needed = spec.metric.as_ref().map_or(2, |m| m.samples);
        let failure_limit = spec.metric.as_ref().map_or(3, |m| m.failure_limit);
        let round = v.round_since_ms.unwrap_or(v.started_at_ms);
        let judged_once = v.observations.iter().any(|o| {
            o.get("pass").is_some() && o.get("at_ms").and_then(Value::as_i64) >= Some(round)
        });
        let nothing_to_judge = v.recovery.is_none()
            && spec.trust_score_at_least.is_none()
            && spec
                .metric
                .as_ref()
                .is_none_or(|m| m.below.is_none() && m.above.is_none());
        let verdict = if nothing_to_judge && now_ms >= v.deadline_ms {
            VerifyOutcome::Unverifiable("no pre-fault baseline to verify against".into())
        } else if v.consecutive_passes >= needed && !nothing_to_judge {
            VerifyOutcome::Passed
        } else if v.failures >= failure_limit || (now_ms >= v.deadline_ms && judged_once) {
            VerifyOutcome::Failed
        } else if (now_ms >= v.deadline_ms
            || now_ms >= v.started_at_ms + (v.deadline_ms - v.started_at_ms) / 2)
            && !judged_once
            && !v.canary
            && self
                .set_canary(inc, Some(self.config.release.canary_share))
                .await?
        {
            // Half the window without any data to judge: the controls stopped the work itself.
            // Let a share through to have something to judge by.
            v.canary = true;
            v.deadline_ms = now_ms + 2 * self.config.release.canary_ms;
            v.observations.push(json!({
                "at_ms": now_ms,
                "canary": self.config.release.canary_share,
                "why": "no telemetry while the controls hold all the work; a share is let through to verify",
            }));
            VerifyOutcome::Pending
        } else if now_ms >= v.deadline_ms {
            VerifyOutcome::Unverifiable(format!(
                "no fresh telemetry from what the incident touched in {} s{}",
                (v.deadline_ms - v.started_at_ms) / 1000,
                if v.canary { ", even with a canary" } else { "" }
            ))
        } else {
            VerifyOutcome::Pending
        };
        let verdict = if verdict == VerifyOutcome::Failed
            && v.canary
            && now_ms - v.started_at_ms < CONTAINED_VERIFY_MS
        {
            // The canary shows the fault still there: hold in full and look again later, the
            // wait doubling; the controls contain the fault meanwhile.
            self.set_canary(inc, None).await?;
            v.canary_failures += 1;
            // Each canary exposes a share of the traffic to the fault: look less often, but
            // at least every two minutes, so a fault that ended is seen soon.
            let wait = (self.config.release.canary_ms << v.canary_failures.min(4)).min(120_000);
            v.next_canary_ms = Some(now_ms + wait);
            v.observations.push(json!({
                "at_ms": now_ms, "canary_failed": v.canary_failures,
                "next_canary_ms": now_ms + wait,
            }));
            VerifyOutcome::Pending
        } else {
            verdict
        };
        v.passed = match verdict {
            VerifyOutcome::Passed => Some(true),
            VerifyOutcome::Failed => Some(false),
            _ => None,
        };
        data.verification = Some(v);
        Ok(verdict)
    }
}

/// What one verification evaluation concluded.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum VerifyOutcome {
    Pending,
    Passed,
    Failed,
    /// No data to judge by the deadline: never a pass.
    Unverifiable(String),
}

/// Whether an event is data for a verified metric: spend is judged over every attempt (a cap
/// that refuses work holds the spend), everything else only over work that ran.
pub(crate) fn counts_for(metric: &str, e: &EventRecord) -> bool {
    metric == "cost" || is_work(e)
}

/// Whether an event is in a verification's scope: it touches the blamed entity, or comes from
/// an affected agent.
pub(crate) fn touches(e: &EventRecord, subject: Option<&str>, agents: &[String]) -> bool {
    if agents.contains(&e.agent_id) {
        return true;
    }
    let Some((kind, name)) = subject.and_then(|s| s.split_once(':')) else {
        return false;
    };
    match kind {
        "agent" => e.agent_id == name,
        "tool" => e.tool.as_deref() == Some(name),
        "model" => e.model.as_deref() == Some(name),
        "region" => e.region.as_deref() == Some(name),
        _ => false,
    }
}

/// A metric over a set of events, in the units the playbooks use.
pub(crate) fn metric_over(name: &str, events: &[&EventRecord]) -> f64 {
    let n = events.len().max(1) as f64;
    match name {
        "error_rate" => {
            events
                .iter()
                .filter(|e| e.outcome == Outcome::Error)
                .count() as f64
                / n
        }
        "violation_rate" => {
            events
                .iter()
                .filter(|e| e.outcome == Outcome::Violation)
                .count() as f64
                / n
        }
        "latency" => {
            let l: Vec<f64> = events.iter().filter_map(|e| e.latency_ms).collect();
            if l.is_empty() {
                0.0
            } else {
                l.iter().sum::<f64>() / l.len() as f64
            }
        }
        "cost" => events.iter().filter_map(|e| e.cost_usd).sum::<f64>() / n,
        _ => 0.0,
    }
}
