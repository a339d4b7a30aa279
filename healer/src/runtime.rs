//! The loop: one `tick(now_ms)` detects, correlates, diagnoses and moves every open incident one
//! step; `decide` records an operator's approval or denial.

use std::collections::BTreeMap;
use std::future::Future;

use meshos_playbooks::{
    IncidentFacts, Library, Plan, PlanContext, PlannedStep, RootCauseKind, Subject,
};
use meshos_store::{Store, StoredControl, StoredHealAction, StoredIncident};
use meshos_types::{EventRecord, IncidentTransitionRecord, Outcome, Role, new_id};
use serde::Serialize;
use serde_json::{Value, json};

use crate::actions::{agents_touched, control_of};
use crate::detect::{failed_evals, from_alert, from_signal, violation_bursts};
use crate::diagnose::diagnose_each;
use crate::{
    ApprovalRequest, Diagnosis, HealerError, IncidentData, IncidentState, MetricRecovery, Symptom,
    Verification,
};

/// What the healer needs from the server it runs in.
pub trait HealerPorts: Send + Sync {
    /// The agent's current trust score (0-100), if known.
    fn trust_score(&self, tenant: &str, agent: &str) -> impl Future<Output = Option<f64>> + Send;
    /// Performs a delivery action (`webhook`, `notify`, `run_eval`) for an incident.
    /// `delivery_id` is stable across retries and replays (receivers dedupe on it).
    fn deliver(
        &self,
        tenant: &str,
        incident_id: &str,
        step: &PlannedStep,
        delivery_id: &str,
    ) -> impl Future<Output = Result<Value, String>> + Send;
    /// The policy bundle version in force (part of every plan digest).
    fn policy_version(&self) -> String;
}

/// Tuning of the loop.
#[derive(Debug, Clone)]
pub struct HealerConfig {
    /// Telemetry the diagnosis looks at, before the symptom.
    pub diagnosis_window_ms: i64,
    /// Violation bursts: the window, and how many events / what share of violations make one.
    pub burst_window_ms: i64,
    pub burst_min_events: usize,
    pub burst_min_share: f64,
    /// Shortest time between two verification evaluations of one incident.
    pub verify_interval_ms: i64,
    /// Fewest events an evaluation needs to count.
    pub verify_min_events: usize,
}

impl Default for HealerConfig {
    fn default() -> Self {
        HealerConfig {
            diagnosis_window_ms: 10 * 60_000,
            burst_window_ms: 30_000,
            burst_min_events: 10,
            burst_min_share: 0.2,
            verify_interval_ms: 2_000,
            verify_min_events: 5,
        }
    }
}

/// What one tick did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TickReport {
    pub symptoms: usize,
    pub opened: Vec<String>,
    pub transitions: usize,
}

/// An operator's answer to an approval request.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub approve: bool,
    /// The plan digest the operator saw; must match the current plan.
    pub digest: String,
    pub actor: String,
    pub role: Role,
    pub note: Option<String>,
}

/// An incident as operators see it: the row, its data and its timeline.
#[derive(Debug, Clone, Serialize)]
pub struct IncidentView {
    pub id: String,
    pub tenant: String,
    pub kind: String,
    pub severity: String,
    pub state: String,
    pub subject: Option<String>,
    pub fault_started_at_ms: i64,
    pub opened_at_ms: i64,
    pub updated_at_ms: i64,
    pub resolved_at_ms: Option<i64>,
    pub data: Value,
    pub timeline: Vec<Value>,
}

pub struct Healer<P: HealerPorts> {
    store: Store,
    library: Library,
    ports: P,
    config: HealerConfig,
    /// Newest SLA alert / eval already turned into symptoms, per tenant.
    watermarks: BTreeMap<String, i64>,
    /// Drift signals and SLA breaches waiting for evidence (see `confirm_pending`).
    pending: Vec<Pending>,
}

/// A symptom that opens nothing until the telemetry confirms it.
#[derive(Debug, Clone)]
struct Pending {
    tenant: String,
    symptom: Symptom,
    confirm: Confirmation,
    since_ms: i64,
}

#[derive(Debug, Clone, Copy)]
enum Confirmation {
    /// The metric's raw values after the alarm sit well above those before it.
    Drift,
    /// The agent's trust score is still below this threshold, on enough recent events.
    TrustBelow(f64),
}

/// How long an incident with a shared root cause gathers symptoms before it is planned.
const GROUP_WAIT_MS: i64 = 5_000;
/// Telemetry read to confirm pending symptoms.
const CONFIRM_LOOKBACK_MS: i64 = 180_000;
/// A drift that the telemetry does not (yet) bear out is given this long...
const DRIFT_CONFIRM_MIN_MS: i64 = 6_000;
/// ...and dropped after this long without enough data.
const DRIFT_CONFIRM_MAX_MS: i64 = 20_000;
/// An SLA breach counts once the agent has this many events in the window.
const SLA_MIN_EVENTS: usize = 20;
/// A low score is the trust model reacting to something more direct (a burst, a drift), which
/// is given this long to open the incident the breach then joins.
const SLA_CONFIRM_DELAY_MS: i64 = 15_000;
const SLA_EVIDENCE_WINDOW_MS: i64 = 120_000;
/// Telemetry before a fault that gives a trust-only verification its metric baseline.
const BASELINE_MS: i64 = 120_000;
const BASELINE_MIN_EVENTS: usize = 10;

/// Whether a drift alarm's metric moved up and stayed there: the median of the agent's values
/// since the alarm against the median and MAD before it. `None`: too few values since.
/// Downward shifts (faster, cheaper) are not incidents.
fn drift_persists(symptom: &Symptom, events: &[&EventRecord]) -> Option<bool> {
    let value = |e: &EventRecord| match symptom.metric.as_str() {
        "latency" => e.latency_ms,
        "cost" => e.cost_usd,
        _ => None,
    };
    let at = symptom.at_ms;
    let before: Vec<f64> = events
        .iter()
        .filter(|e| e.created_at_ms >= at - 120_000 && e.created_at_ms < at - 3_000)
        .filter_map(|e| value(e))
        .collect();
    let after: Vec<f64> = events
        .iter()
        .filter(|e| e.created_at_ms >= at - 1_000)
        .filter_map(|e| value(e))
        .collect();
    if after.len() < 8 {
        return None;
    }
    if before.len() < 10 {
        // No baseline to compare with: the detector's word stands.
        return Some(true);
    }
    let base = median(&before);
    let deviations: Vec<f64> = before.iter().map(|v| (v - base).abs()).collect();
    let scale = (1.4826 * median(&deviations))
        .max(0.05 * base.abs())
        .max(f64::MIN_POSITIVE);
    Some((median(&after) - base) / scale >= 3.0)
}

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

const ACTOR: &str = "healer";

fn root_kind(entity: &str) -> Option<RootCauseKind> {
    entity.split_once(':').and_then(|(k, _)| k.parse().ok())
}

impl<P: HealerPorts> Healer<P> {
    pub fn new(store: Store, library: Library, ports: P, config: HealerConfig) -> Self {
        Healer {
            store,
            library,
            ports,
            config,
            watermarks: BTreeMap::new(),
            pending: Vec::new(),
        }
    }

    pub fn library(&self) -> &Library {
        &self.library
    }

    /// One pass of the loop at `now_ms`.
    pub async fn tick(&mut self, now_ms: i64) -> Result<TickReport, HealerError> {
        let mut report = TickReport::default();
        let mut by_tenant: BTreeMap<String, Vec<Symptom>> = BTreeMap::new();
        for s in self.store.unconsumed_drift_signals(500).await? {
            if self.store.consume_drift_signal(&s.id, now_ms).await? {
                let symptom = from_signal(&s);
                if ["latency", "cost"].contains(&symptom.metric.as_str()) {
                    self.pending.push(Pending {
                        tenant: s.tenant.clone(),
                        symptom,
                        confirm: Confirmation::Drift,
                        since_ms: now_ms,
                    });
                } else {
                    by_tenant.entry(s.tenant.clone()).or_default().push(symptom);
                }
            }
        }
        for tenant in self.store.ledger_tenants().await? {
            let since = *self
                .watermarks
                .entry(tenant.clone())
                .or_insert(now_ms - self.config.burst_window_ms);
            for a in self.store.alerts(&tenant, None, 200).await? {
                if a.at_ms > since
                    && let Some(symptom) = from_alert(&a)
                {
                    self.pending.push(Pending {
                        tenant: tenant.clone(),
                        symptom,
                        confirm: Confirmation::TrustBelow(a.threshold),
                        since_ms: now_ms,
                    });
                }
            }
            let window_start = now_ms - self.config.burst_window_ms;
            let recent = self
                .store
                .events_between(&tenant, window_start.min(since), now_ms + 1, 100_000)
                .await?;
            let syms = by_tenant.entry(tenant.clone()).or_default();
            syms.extend(violation_bursts(
                &recent,
                window_start,
                self.config.burst_window_ms,
                self.config.burst_min_events,
                self.config.burst_min_share,
            ));
            syms.extend(failed_evals(&recent, since));
            self.watermarks.insert(tenant, now_ms);
        }
        self.confirm_pending(now_ms, &mut by_tenant).await?;
        for (tenant, symptoms) in by_tenant {
            report.symptoms += symptoms.len();
            let opened = self.absorb(&tenant, symptoms, now_ms, &mut report).await?;
            report.opened.extend(opened);
        }
        for inc in self
            .store
            .incidents(None, &IncidentState::OPEN_NAMES, 1_000)
            .await?
        {
            self.advance(inc, now_ms, &mut report).await?;
        }
        Ok(report)
    }

    /// Moves the pending symptoms that the evidence now confirms into `by_tenant`; drops those
    /// it refutes or that waited too long. Why: every agent runs a drift detector per metric, so
    /// a fleet sees a false alarm every few seconds at the detectors' ARL0 of 1,000 samples, and
    /// a new agent's first trust score is low on little evidence. A shift that persists in the
    /// raw telemetry, or a low score on enough events, is what opens an incident.
    async fn confirm_pending(
        &mut self,
        now_ms: i64,
        by_tenant: &mut BTreeMap<String, Vec<Symptom>>,
    ) -> Result<(), HealerError> {
        let pending = std::mem::take(&mut self.pending);
        let mut events: BTreeMap<String, Vec<EventRecord>> = BTreeMap::new();
        for p in pending {
            if !events.contains_key(&p.tenant) {
                let rows = self
                    .store
                    .events_between(&p.tenant, now_ms - CONFIRM_LOOKBACK_MS, now_ms + 1, 200_000)
                    .await?;
                events.insert(p.tenant.clone(), rows);
            }
            let agent_events: Vec<&EventRecord> = events
                .get(&p.tenant)
                .map(|v| {
                    v.iter()
                        .filter(|e| e.agent_id == p.symptom.agent_id)
                        .collect()
                })
                .unwrap_or_default();
            let waited = now_ms - p.since_ms;
            let verdict = match p.confirm {
                Confirmation::Drift => match drift_persists(&p.symptom, &agent_events) {
                    Some(true) => Some(true),
                    Some(false) if waited >= DRIFT_CONFIRM_MIN_MS => Some(false),
                    _ if waited >= DRIFT_CONFIRM_MAX_MS => Some(false),
                    _ => None,
                },
                Confirmation::TrustBelow(threshold) => {
                    let recent = agent_events
                        .iter()
                        .filter(|e| e.created_at_ms >= now_ms - SLA_EVIDENCE_WINDOW_MS)
                        .count();
                    let score = self.ports.trust_score(&p.tenant, &p.symptom.agent_id).await;
                    match score {
                        Some(s) if s >= threshold => Some(false),
                        Some(_) if recent >= SLA_MIN_EVENTS && waited >= SLA_CONFIRM_DELAY_MS => {
                            Some(true)
                        }
                        _ if waited >= SLA_EVIDENCE_WINDOW_MS => Some(false),
                        _ => None,
                    }
                }
            };
            match verdict {
                Some(true) => by_tenant
                    .entry(p.tenant.clone())
                    .or_default()
                    .push(p.symptom),
                Some(false) => tracing::debug!(
                    agent = %p.symptom.agent_id, metric = %p.symptom.metric,
                    "healer: symptom not confirmed by the telemetry; dropped"
                ),
                None => self.pending.push(p),
            }
        }
        Ok(())
    }

    /// Attaches new symptoms to the open incidents they belong to; diagnoses the rest and opens
    /// one incident per root cause (or joins the open one with that cause).
    async fn absorb(
        &mut self,
        tenant: &str,
        symptoms: Vec<Symptom>,
        now_ms: i64,
        report: &mut TickReport,
    ) -> Result<Vec<String>, HealerError> {
        let open = self
            .store
            .incidents(Some(tenant), &IncidentState::OPEN_NAMES, 1_000)
            .await?;
        let closed = self
            .store
            .incidents(Some(tenant), &["resolved", "escalated"], 200)
            .await?;
        // Agents a healer control holds (quarantined, budget-capped) are expected to look
        // unwell (refused work lowers trust); that is the remedy working, not a new incident.
        let contained: Vec<String> = self
            .store
            .active_controls(Some(tenant))
            .await?
            .into_iter()
            .filter_map(|c| match c.kind.as_str() {
                "agent_quarantine" => Some(c.subject),
                "budget_cap" => c.subject.strip_prefix("agent:").map(str::to_string),
                _ => None,
            })
            .collect();
        let mut fresh = Vec::new();
        'symptom: for s in symptoms {
            if contained.contains(&s.agent_id)
                && s.kind != meshos_playbooks::IncidentKind::ViolationBurst
            {
                continue 'symptom;
            }
            // A burst that began before an incident about this agent was closed is that
            // incident's burst still inside the detection window, not a new one.
            for inc in &closed {
                if s.kind == meshos_playbooks::IncidentKind::ViolationBurst
                    && s.started_at_ms <= inc.updated_at_ms
                    && IncidentData::from_json(&inc.data)?
                        .affected_agents
                        .contains(&s.agent_id)
                {
                    continue 'symptom;
                }
            }
            for inc in &open {
                let data = IncidentData::from_json(&inc.data)?;
                if data.symptoms.iter().any(|x| x.source_id == s.source_id) {
                    continue 'symptom;
                }
                // Same agent, incident still open: the same cause until the incident says
                // otherwise (it is verified or escalated).
                if data.affected_agents.contains(&s.agent_id) {
                    self.attach(inc, s, now_ms).await?;
                    continue 'symptom;
                }
            }
            // Closed incidents keep their sources: a replayed alert does not reopen anything.
            fresh.push(s);
        }
        if fresh.is_empty() {
            return Ok(Vec::new());
        }
        let window_start = fresh
            .iter()
            .map(|s| s.started_at_ms)
            .min()
            .unwrap_or(now_ms)
            - self.config.diagnosis_window_ms;
        let events = self
            .store
            .events_between(tenant, window_start, now_ms + 1, 200_000)
            .await?;
        // One incident per root cause: symptoms blamed on the same entity go together, and
        // join the open incident already filed under it.
        let diagnoses = diagnose_each(&fresh, &events);
        let mut groups: BTreeMap<String, (Diagnosis, Vec<Symptom>)> = BTreeMap::new();
        for (s, d) in fresh.into_iter().zip(diagnoses) {
            groups
                .entry(d.root_cause.clone())
                .or_insert_with(|| (d, Vec::new()))
                .1
                .push(s);
        }
        let mut opened = Vec::new();
        for (diagnosis, group) in groups.into_values() {
            if let Some(id) = self
                .open_for_root_cause(tenant, diagnosis, group, now_ms, report)
                .await?
            {
                opened.push(id);
            }
        }
        Ok(opened)
    }

    /// Files symptoms diagnosed to one root cause: into the open incident with that cause, or
    /// a new one (returned).
    async fn open_for_root_cause(
        &mut self,
        tenant: &str,
        diagnosis: Diagnosis,
        symptoms: Vec<Symptom>,
        now_ms: i64,
        report: &mut TickReport,
    ) -> Result<Option<String>, HealerError> {
        if let Some(inc) = self
            .store
            .open_incident_by_correlation(tenant, &diagnosis.root_cause)
            .await?
        {
            for s in symptoms {
                self.attach(&inc, s, now_ms).await?;
            }
            return Ok(None);
        }
        let mut data = IncidentData::default();
        for s in symptoms {
            data.add_symptom(s);
        }
        let inc = StoredIncident {
            id: new_id("inc"),
            tenant: tenant.to_string(),
            kind: primary_kind(&data.symptoms).to_string(),
            severity: data.severity().to_string(),
            state: IncidentState::Open.to_string(),
            correlation_key: diagnosis.root_cause.clone(),
            subject: Some(diagnosis.root_cause.clone()),
            data: Value::Null,
            fault_started_at_ms: data
                .symptoms
                .iter()
                .map(|s| s.started_at_ms)
                .min()
                .unwrap_or(now_ms),
            opened_at_ms: now_ms,
            updated_at_ms: now_ms,
            resolved_at_ms: None,
            version: 1,
        };
        let opened_reason = format!(
            "{} symptom(s): {}",
            data.symptoms.len(),
            data.symptoms
                .iter()
                .map(|s| format!("{} {} of {}", s.kind, s.metric, s.agent_id))
                .collect::<Vec<_>>()
                .join("; ")
        );
        let symptoms_json = json!(data.symptoms);
        let diag_json = json!(diagnosis);
        let diag_note = diagnosis.note.clone();
        data.diagnosis = Some(diagnosis);
        let inc = StoredIncident {
            data: data.to_json(),
            ..inc
        };
        let opened = Self::transition(
            &inc,
            None,
            IncidentState::Open,
            ACTOR,
            None,
            &opened_reason,
            symptoms_json,
            now_ms,
        );
        self.store.open_incident(&inc, &opened).await?;
        let inc = self
            .move_to(
                inc,
                IncidentState::Diagnosed,
                &diag_note,
                diag_json,
                now_ms,
                report,
            )
            .await?;
        Ok(Some(inc.id))
    }

    async fn attach(
        &self,
        inc: &StoredIncident,
        s: Symptom,
        now_ms: i64,
    ) -> Result<(), HealerError> {
        // Re-read: another symptom of this tick may have bumped the version.
        let Some(current) = self.store.incident(&inc.tenant, &inc.id).await? else {
            return Ok(());
        };
        let mut data = IncidentData::from_json(&current.data)?;
        if !data.add_symptom(s) {
            return Ok(());
        }
        let updated = StoredIncident {
            severity: data.severity().to_string(),
            data: data.to_json(),
            updated_at_ms: now_ms,
            ..current.clone()
        };
        self.store
            .update_incident(&updated, current.version)
            .await?;
        Ok(())
    }

    /// The ledger record of a move.
    #[allow(clippy::too_many_arguments)]
    fn transition(
        inc: &StoredIncident,
        from: Option<IncidentState>,
        to: IncidentState,
        actor: &str,
        role: Option<Role>,
        reason: &str,
        inputs: Value,
        now_ms: i64,
    ) -> IncidentTransitionRecord {
        IncidentTransitionRecord {
            id: new_id("itr"),
            tenant: inc.tenant.clone(),
            incident_id: inc.id.clone(),
            from_state: from.map(|s| s.to_string()),
            to_state: to.to_string(),
            actor: actor.to_string(),
            actor_role: role,
            reason: reason.to_string(),
            inputs,
            created_at_ms: now_ms,
        }
    }

    /// Moves an incident (checked against the lifecycle), stores it, and records the transition.
    async fn move_to(
        &self,
        inc: StoredIncident,
        to: IncidentState,
        reason: &str,
        inputs: Value,
        now_ms: i64,
        report: &mut TickReport,
    ) -> Result<StoredIncident, HealerError> {
        self.move_as(inc, to, ACTOR, None, reason, inputs, now_ms, report)
            .await
    }

    /// [`Healer::move_to`] for the last move of a pass (the caller has nothing more to do).
    async fn finish(
        &self,
        inc: StoredIncident,
        to: IncidentState,
        reason: &str,
        inputs: Value,
        now_ms: i64,
        report: &mut TickReport,
    ) -> Result<(), HealerError> {
        self.move_to(inc, to, reason, inputs, now_ms, report)
            .await
            .map(|_| ())
    }

    #[allow(clippy::too_many_arguments)]
    async fn move_as(
        &self,
        inc: StoredIncident,
        to: IncidentState,
        actor: &str,
        role: Option<Role>,
        reason: &str,
        inputs: Value,
        now_ms: i64,
        report: &mut TickReport,
    ) -> Result<StoredIncident, HealerError> {
        let from: IncidentState = inc.state.parse()?;
        if !from.can_move_to(to) {
            return Err(HealerError::Refused(format!(
                "incident {} cannot move from {from} to {to}",
                inc.id
            )));
        }
        let next = StoredIncident {
            state: to.to_string(),
            updated_at_ms: now_ms,
            resolved_at_ms: (to == IncidentState::Resolved).then_some(now_ms),
            ..inc.clone()
        };
        let record = Self::transition(&inc, Some(from), to, actor, role, reason, inputs, now_ms);
        let (stored, _) = self
            .store
            .move_incident(&next, inc.version, &record)
            .await?;
        report.transitions += 1;
        Ok(stored)
    }

    async fn save_data(
        &self,
        inc: StoredIncident,
        data: &IncidentData,
        now_ms: i64,
    ) -> Result<StoredIncident, HealerError> {
        let version = inc.version;
        Ok(self
            .store
            .update_incident(&with_data(inc, data, now_ms), version)
            .await?)
    }

    /// Moves one incident as far as it can go now.
    async fn advance(
        &self,
        mut inc: StoredIncident,
        now_ms: i64,
        report: &mut TickReport,
    ) -> Result<(), HealerError> {
        // Bounded: each pass either moves the incident or returns.
        for _ in 0..8 {
            let state: IncidentState = inc.state.parse()?;
            let mut data = IncidentData::from_json(&inc.data)?;
            inc = match state {
                IncidentState::Open => {
                    // Opened without a diagnosis (should not happen): escalate rather than guess.
                    return self
                        .finish(
                            inc,
                            IncidentState::Escalated,
                            "no diagnosis",
                            Value::Null,
                            now_ms,
                            report,
                        )
                        .await;
                }
                IncidentState::Diagnosed
                    if now_ms - inc.opened_at_ms < GROUP_WAIT_MS
                        && !inc.correlation_key.starts_with("agent:") =>
                {
                    // A shared cause (tool, model, region) shows up in several agents within
                    // seconds: let their symptoms join before choosing a playbook by how many
                    // agents are affected.
                    return Ok(());
                }
                IncidentState::Diagnosed | IncidentState::RolledBack => {
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
                            let reason =
                                format!("playbook {} v{}", plan.playbook_id, plan.playbook_version);
                            data.tried_playbooks.push(plan.playbook_id.clone());
                            data.plan = Some(plan);
                            data.approval = None;
                            data.verification = None;
                            data.step_results.clear();
                            let inc = with_data(inc, &data, now_ms);
                            self.move_to(
                                inc,
                                IncidentState::Planned,
                                &reason,
                                inputs,
                                now_ms,
                                report,
                            )
                            .await?
                        }
                        Err(why) => {
                            let inc = with_data(inc, &data, now_ms);
                            return self
                                .finish(
                                    inc,
                                    IncidentState::Escalated,
                                    &why,
                                    json!({"tried": data.tried_playbooks}),
                                    now_ms,
                                    report,
                                )
                                .await;
                        }
                    }
                }
                IncidentState::Planned => {
                    let plan = current_plan(&inc, &data, "planned")?;
                    match plan.requires_approval() {
                        Some((role, expires)) => {
                            let req = ApprovalRequest {
                                digest: plan.digest.clone(),
                                role: role.clone(),
                                requested_at_ms: now_ms,
                                expires_at_ms: now_ms + (expires as i64) * 1000,
                                decided_by: None,
                                approved: None,
                                note: None,
                            };
                            let inputs = json!(req);
                            data.approval = Some(req);
                            let inc = with_data(inc, &data, now_ms);
                            let reason = format!(
                                "plan {} needs {role} approval (expires in {expires} s)",
                                plan.digest
                            );
                            self.move_to(
                                inc,
                                IncidentState::AwaitingApproval,
                                &reason,
                                inputs,
                                now_ms,
                                report,
                            )
                            .await?
                        }
                        None => {
                            data.executing_since_ms = Some(now_ms);
                            let inc = with_data(inc, &data, now_ms);
                            self.move_to(
                                inc,
                                IncidentState::Executing,
                                "every step is automatic",
                                json!({"digest": plan.digest}),
                                now_ms,
                                report,
                            )
                            .await?
                        }
                    }
                }
                IncidentState::AwaitingApproval => {
                    let Some(req) = data.approval.clone() else {
                        return Err(HealerError::Corrupt(format!(
                            "incident {} awaits no approval",
                            inc.id
                        )));
                    };
                    if now_ms < req.expires_at_ms {
                        return Ok(());
                    }
                    let reason = format!("approval for plan {} expired unanswered", req.digest);
                    return self
                        .finish(
                            inc,
                            IncidentState::Escalated,
                            &reason,
                            json!(req),
                            now_ms,
                            report,
                        )
                        .await;
                }
                IncidentState::Executing => {
                    let plan = current_plan(&inc, &data, "executing")?;
                    let outcome = self.execute(&inc, &mut data, &plan, now_ms).await?;
                    match outcome {
                        Ok(()) if plan.dry_run => {
                            let inc = with_data(inc, &data, now_ms);
                            return self
                                .finish(
                                    inc,
                                    IncidentState::Escalated,
                                    "dry run: the plan was recorded and nothing was applied",
                                    json!({"steps": data.step_results}),
                                    now_ms,
                                    report,
                                )
                                .await;
                        }
                        Ok(()) => {
                            let window = (plan.verify.window_seconds as i64) * 1000;
                            let recovery = if plan.verify.metric.is_none() {
                                self.recovery_target(&inc, &data).await?
                            } else {
                                None
                            };
                            data.verification = Some(Verification {
                                started_at_ms: now_ms,
                                deadline_ms: now_ms + window,
                                recovery,
                                ..Verification::default()
                            });
                            let inputs = json!({"steps": data.step_results});
                            let inc = with_data(inc, &data, now_ms);
                            self.move_to(
                                inc,
                                IncidentState::Verifying,
                                "all steps applied",
                                inputs,
                                now_ms,
                                report,
                            )
                            .await?
                        }
                        Err(why) => {
                            self.rollback(&inc, &data, &plan, now_ms).await?;
                            let inc = with_data(inc, &data, now_ms);
                            self.move_to(
                                inc,
                                IncidentState::RolledBack,
                                &why,
                                json!({"steps": data.step_results}),
                                now_ms,
                                report,
                            )
                            .await?
                        }
                    }
                }
                IncidentState::Verifying => {
                    let plan = current_plan(&inc, &data, "verifying")?;
                    match self.verify_step(&inc, &mut data, &plan, now_ms).await? {
                        None => {
                            self.save_data(inc, &data, now_ms).await?;
                            return Ok(());
                        }
                        Some(true) => {
                            let inputs = json!(data.verification);
                            let inc = with_data(inc, &data, now_ms);
                            return self
                                .finish(
                                    inc,
                                    IncidentState::Resolved,
                                    "verification passed",
                                    inputs,
                                    now_ms,
                                    report,
                                )
                                .await;
                        }
                        Some(false) => {
                            self.rollback(&inc, &data, &plan, now_ms).await?;
                            let inputs = json!(data.verification);
                            let inc = with_data(inc, &data, now_ms);
                            self.move_to(
                                inc,
                                IncidentState::RolledBack,
                                "verification failed; controls cleared and rollback steps run",
                                inputs,
                                now_ms,
                                report,
                            )
                            .await?
                        }
                    }
                }
                IncidentState::Resolved | IncidentState::Escalated => return Ok(()),
            };
        }
        Ok(())
    }

    /// The lowest current trust score among `agents` (`None` if none is known).
    async fn lowest_trust(&self, tenant: &str, agents: &[String]) -> Option<f64> {
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
    async fn plan_next(
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
            let ctx = PlanContext {
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
            };
            let plan = pb.plan(&ctx)?;
            let mut touched: Vec<String> = plan
                .steps
                .iter()
                .flat_map(|s| agents_touched(s, &data.affected_agents))
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

    /// Applies every step once (idempotency keys make replays no-ops). `Err` names the step
    /// that failed.
    async fn execute(
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

    async fn apply_step(
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
        } else if let Some((kind, subject)) = control_of(step) {
            let set = self
                .store
                .set_control(&StoredControl {
                    id: new_id("ctl"),
                    tenant: inc.tenant.clone(),
                    kind: kind.to_string(),
                    subject: subject.clone(),
                    spec: Value::Object(step.params.clone()),
                    incident_id: inc.id.clone(),
                    created_at_ms: now_ms,
                    cleared_at_ms: None,
                })
                .await?;
            (
                "applied",
                json!({"control": kind, "subject": subject, "newly_set": set}),
            )
        } else {
            match self.ports.deliver(&inc.tenant, &inc.id, step, &key).await {
                Ok(v) => ("applied", v),
                Err(e) => ("failed", json!({"error": e})),
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

    /// Clears every control the plan set (in reverse order) and runs its rollback steps.
    async fn rollback(
        &self,
        inc: &StoredIncident,
        _data: &IncidentData,
        plan: &Plan,
        now_ms: i64,
    ) -> Result<(), HealerError> {
        for step in plan.steps.iter().rev() {
            if let Some((kind, subject)) = control_of(step) {
                self.store
                    .clear_control(&inc.tenant, kind, &subject, &inc.id, now_ms)
                    .await?;
            }
        }
        for step in &plan.rollback {
            self.apply_step(inc, plan, step, "rollback", plan.dry_run, now_ms)
                .await?;
        }
        Ok(())
    }

    /// What a trust-only verification also asks of the metric that triggered the incident: to be
    /// back near its level in the two minutes before the fault. `None` when the metric is not
    /// one the telemetry carries (trust score, eval) or there was too little telemetry before.
    async fn recovery_target(
        &self,
        inc: &StoredIncident,
        data: &IncidentData,
    ) -> Result<Option<MetricRecovery>, HealerError> {
        let Some(diag) = &data.diagnosis else {
            return Ok(None);
        };
        let fault_start = inc.fault_started_at_ms.min(diag.anomaly_start_ms);
        let events = self
            .store
            .events_between(&inc.tenant, fault_start - BASELINE_MS, fault_start, 100_000)
            .await?;
        let scope: Vec<&EventRecord> = events
            .iter()
            .filter(|e| touches(e, inc.subject.as_deref(), &data.affected_agents))
            .collect();
        if scope.len() < BASELINE_MIN_EVENTS {
            return Ok(None);
        }
        Ok(MetricRecovery::from_baseline(
            &diag.metric,
            metric_over(&diag.metric, &scope),
        ))
    }

    /// One verification evaluation: `Some(true)` passed, `Some(false)` failed, `None` not yet.
    /// An evaluation counts only on enough fresh telemetry from what the incident touched, so a
    /// trust score that never moved cannot pass a fix on its own.
    async fn verify_step(
        &self,
        inc: &StoredIncident,
        data: &mut IncidentData,
        plan: &Plan,
        now_ms: i64,
    ) -> Result<Option<bool>, HealerError> {
        let Some(mut v) = data.verification.clone() else {
            return Err(HealerError::Corrupt(format!(
                "incident {} has no verification",
                inc.id
            )));
        };
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
            return Ok(None);
        }
        let spec = &plan.verify;
        let events = self
            .store
            .events_between(&inc.tenant, last_eval, now_ms + 1, 100_000)
            .await?;
        let scope: Vec<&EventRecord> = events
            .iter()
            .filter(|e| touches(e, inc.subject.as_deref(), &data.affected_agents))
            .collect();
        let counted = scope.len() >= self.config.verify_min_events;
        if counted {
            let mut trust_ok = true;
            let mut min_trust: Option<f64> = None;
            if let Some(threshold) = spec.trust_score_at_least {
                min_trust = self.lowest_trust(&inc.tenant, &data.affected_agents).await;
                trust_ok = min_trust.is_some_and(|m| m >= threshold);
            }
            let mut metric_value = None;
            let mut metric_ok = true;
            if let Some(m) = &spec.metric {
                let value = metric_over(&m.name, &scope);
                metric_value = Some(value);
                metric_ok = m.below.is_none_or(|b| value < b) && m.above.is_none_or(|a| value > a);
            }
            let mut recovered = None;
            let mut recovery_ok = true;
            if let Some(r) = &v.recovery {
                let value = metric_over(&r.metric, &scope);
                recovered = Some(json!({"metric": r.metric, "value": value, "limit": r.limit}));
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
                // still on its way back is given the whole window, a trust or metric
                // condition that fails counts toward the failure limit.
                if !(trust_ok && metric_ok) {
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
                "at_ms": now_ms, "events": scope.len(), "skipped": "too few events",
            }));
        }
        // Trust alone must hold on two evaluations, like the library's metric conditions.
        let needed = spec.metric.as_ref().map_or(2, |m| m.samples);
        let failure_limit = spec.metric.as_ref().map_or(3, |m| m.failure_limit);
        let verdict = if v.consecutive_passes >= needed {
            Some(true)
        } else if v.failures >= failure_limit || now_ms >= v.deadline_ms {
            Some(false)
        } else {
            None
        };
        v.passed = verdict;
        data.verification = Some(v);
        Ok(verdict)
    }

    /// Records an operator's approval or denial of the plan awaiting one. The approval must name
    /// the current plan's digest, come from the role the plan asks for (or admin), and arrive
    /// before expiry. A denial escalates at once.
    pub async fn decide(
        &self,
        tenant: &str,
        incident_id: &str,
        decision: &Decision,
        now_ms: i64,
    ) -> Result<IncidentView, HealerError> {
        let inc = self
            .store
            .incident(tenant, incident_id)
            .await?
            .ok_or_else(|| HealerError::NotFound(incident_id.to_string()))?;
        let state: IncidentState = inc.state.parse()?;
        if state != IncidentState::AwaitingApproval {
            return Err(HealerError::Refused(format!(
                "incident {incident_id} is {state}, not awaiting approval"
            )));
        }
        let mut data = IncidentData::from_json(&inc.data)?;
        let Some(mut req) = data.approval.clone() else {
            return Err(HealerError::Corrupt(format!(
                "incident {incident_id} awaits no approval"
            )));
        };
        if decision.digest != req.digest {
            return Err(HealerError::Refused(format!(
                "the approval names plan {} but the plan awaiting approval is {}; review the current plan",
                decision.digest, req.digest
            )));
        }
        let allowed = match req.role.as_str() {
            "admin" => decision.role == Role::Admin,
            _ => matches!(decision.role, Role::Operator | Role::Admin),
        };
        if !allowed {
            return Err(HealerError::Refused(format!(
                "this plan needs {} approval; {} cannot decide it",
                req.role,
                decision.role.as_str()
            )));
        }
        let mut report = TickReport::default();
        if now_ms >= req.expires_at_ms {
            let reason = format!("approval for plan {} expired unanswered", req.digest);
            self.move_to(
                inc,
                IncidentState::Escalated,
                &reason,
                json!(req),
                now_ms,
                &mut report,
            )
            .await?;
            return Err(HealerError::Refused(format!(
                "the approval request expired at {} ms; the incident was escalated",
                req.expires_at_ms
            )));
        }
        req.decided_by = Some(decision.actor.clone());
        req.approved = Some(decision.approve);
        req.note = decision.note.clone();
        data.approval = Some(req.clone());
        if decision.approve {
            data.executing_since_ms = Some(now_ms);
        }
        let inc = with_data(inc, &data, now_ms);
        let (to, reason) = if decision.approve {
            (
                IncidentState::Executing,
                format!("plan {} approved", req.digest),
            )
        } else {
            (
                IncidentState::Escalated,
                format!(
                    "plan {} denied{}",
                    req.digest,
                    decision
                        .note
                        .as_deref()
                        .map(|n| format!(": {n}"))
                        .unwrap_or_default()
                ),
            )
        };
        let inc = self
            .move_as(
                inc,
                to,
                &decision.actor,
                Some(decision.role),
                &reason,
                json!(req),
                now_ms,
                &mut report,
            )
            .await?;
        self.view(&inc.tenant, &inc.id).await
    }

    /// An incident with its timeline.
    pub async fn view(&self, tenant: &str, id: &str) -> Result<IncidentView, HealerError> {
        view(&self.store, tenant, id).await
    }
}

/// An incident with its timeline, straight from the store (usable without a running healer).
pub async fn view(store: &Store, tenant: &str, id: &str) -> Result<IncidentView, HealerError> {
    let inc = store
        .incident(tenant, id)
        .await?
        .ok_or_else(|| HealerError::NotFound(id.to_string()))?;
    let timeline = store
        .incident_transitions(tenant, id)
        .await?
        .into_iter()
        .map(|(t, index)| {
            json!({
                "at_ms": t.created_at_ms, "from": t.from_state, "to": t.to_state,
                "actor": t.actor, "actor_role": t.actor_role.map(|r| r.as_str()),
                "reason": t.reason, "inputs": t.inputs, "ledger_index": index,
            })
        })
        .collect();
    Ok(IncidentView {
        id: inc.id,
        tenant: inc.tenant,
        kind: inc.kind,
        severity: inc.severity,
        state: inc.state,
        subject: inc.subject,
        fault_started_at_ms: inc.fault_started_at_ms,
        opened_at_ms: inc.opened_at_ms,
        updated_at_ms: inc.updated_at_ms,
        resolved_at_ms: inc.resolved_at_ms,
        data: inc.data,
        timeline,
    })
}

/// The kind an incident is filed under when several symptoms open it together: the most direct
/// evidence first. An SLA breach is the trust score reacting to the others, so it names the
/// incident only when nothing else does.
fn primary_kind(symptoms: &[Symptom]) -> meshos_playbooks::IncidentKind {
    use meshos_playbooks::IncidentKind::*;
    let rank = |k: &meshos_playbooks::IncidentKind| match k {
        ViolationBurst => 0,
        EvalFailure => 1,
        Drift => 2,
        SlaBreach => 3,
    };
    symptoms
        .iter()
        .map(|s| s.kind)
        .min_by_key(rank)
        .unwrap_or(SlaBreach)
}

/// The plan an incident in a planning-or-later state must carry.
fn current_plan(
    inc: &StoredIncident,
    data: &IncidentData,
    state: &str,
) -> Result<Plan, HealerError> {
    data.plan
        .clone()
        .ok_or_else(|| HealerError::Corrupt(format!("incident {} {state} without a plan", inc.id)))
}

/// The incident with new data, not yet written: the move that follows writes both together.
fn with_data(inc: StoredIncident, data: &IncidentData, now_ms: i64) -> StoredIncident {
    StoredIncident {
        data: data.to_json(),
        updated_at_ms: now_ms,
        ..inc
    }
}

/// Whether an event is in a verification's scope: it touches the blamed entity, or comes from
/// an affected agent.
fn touches(e: &EventRecord, subject: Option<&str>, agents: &[String]) -> bool {
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
fn metric_over(name: &str, events: &[&EventRecord]) -> f64 {
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

#[cfg(test)]
mod tests {
    use super::*;
    use meshos_playbooks::{IncidentKind, Severity};

    fn latency_event(agent: &str, at_ms: i64, latency: f64) -> EventRecord {
        serde_json::from_value(json!({
            "id": new_id("evt"), "tenant": "t", "agent_id": agent, "kind": "tool_call",
            "outcome": "ok", "latency_ms": latency, "created_at_ms": at_ms, "attributes": {},
        }))
        .unwrap()
    }

    fn drift(at_ms: i64) -> Symptom {
        Symptom {
            source_id: "sig".into(),
            kind: IncidentKind::Drift,
            severity: Severity::Medium,
            agent_id: "a".into(),
            metric: "latency".into(),
            at_ms,
            started_at_ms: at_ms,
            detail: String::new(),
        }
    }

    #[test]
    fn a_drift_is_confirmed_only_by_a_lasting_rise() {
        let at = 100_000;
        let before: Vec<EventRecord> = (0..40)
            .map(|i| latency_event("a", at - 60_000 + i * 1000, 200.0 + (i % 7) as f64 * 10.0))
            .collect();
        let with_after = |level: f64, n: i64| -> Vec<EventRecord> {
            let mut v = before.clone();
            v.extend((0..n).map(|i| latency_event("a", at + i * 300, level + (i % 5) as f64)));
            v
        };
        let check = |events: &[EventRecord]| {
            let refs: Vec<&EventRecord> = events.iter().collect();
            drift_persists(&drift(at), &refs)
        };
        assert_eq!(check(&with_after(2_500.0, 10)), Some(true));
        // The detector fired on noise: the values since look like those before.
        assert_eq!(check(&with_after(230.0, 10)), Some(false));
        // Faster is not an incident.
        assert_eq!(check(&with_after(5.0, 10)), Some(false));
        // Too little since the alarm to say.
        assert_eq!(check(&with_after(2_500.0, 3)), None);
    }
}
