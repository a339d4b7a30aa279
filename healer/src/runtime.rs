//! The loop: one `tick(now_ms)` detects, correlates, diagnoses and moves every open incident one
//! step; `decide` records an operator's approval or denial.

use std::collections::{BTreeMap, VecDeque};
use std::future::Future;

use meshos_playbooks::{
    IncidentFacts, Library, Plan, PlanContext, PlannedStep, RootCauseKind, Subject,
};
use meshos_store::{Store, StoredControl, StoredHealAction, StoredIncident, readable_controls};
use meshos_types::{
    CapScope, Control, EventRecord, IncidentTransitionRecord, Outcome, Role, new_id,
};
use serde::Serialize;
use serde_json::{Value, json};

use crate::actions::{agents_held_by, control_of, harm_guards};
use crate::alarm::{AlarmPolicy, RawMetric, Verdict, alpha_for, confirm_shift, is_work};
use crate::detect::{failed_evals, from_alert, from_signal, violation_bursts};
use crate::diagnose::diagnose_each;
use crate::strata::diagnose_symptom;
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
    /// Which drift alarms may open an incident (fleet-level false-alarm budget, effect floors).
    pub alarm: AlarmPolicy,
    /// When and how the controls of a resolved incident are released.
    pub release: ReleasePolicy,
}

/// Releasing controls on evidence: after `probation_ms` from resolution, a share of the
/// controlled traffic is let through (`canary_share`); if the canary's telemetry is back at the
/// pre-fault baseline over `canary_ms` the control is cleared, else it is restored in full and
/// probation starts again, twice as long.
#[derive(Debug, Clone, PartialEq)]
pub struct ReleasePolicy {
    pub probation_ms: i64,
    pub canary_share: f64,
    pub canary_ms: i64,
    /// Fewest canary events a release needs.
    pub canary_min_events: usize,
}

impl Default for ReleasePolicy {
    fn default() -> Self {
        ReleasePolicy {
            probation_ms: 120_000,
            canary_share: 0.25,
            canary_ms: 30_000,
            canary_min_events: 5,
        }
    }
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
            alarm: AlarmPolicy::default(),
            release: ReleasePolicy::default(),
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
    pub(crate) store: Store,
    library: Library,
    ports: P,
    pub(crate) config: HealerConfig,
    /// Newest SLA alert / eval already turned into symptoms, per tenant.
    watermarks: BTreeMap<String, i64>,
    /// Drift signals and SLA breaches waiting for evidence (see `confirm_pending`).
    pending: Vec<Pending>,
    /// When each tenant's drift alarms arrived over the last hour: the rate the confirmation
    /// test's level is scaled by.
    alarm_times: BTreeMap<String, VecDeque<i64>>,
    started_ms: Option<i64>,
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
    /// The metric's raw values after the alarm are significantly and materially worse than
    /// those before it (`alarm::confirm_shift`).
    Drift(RawMetric),
    /// The agent's trust score is still below this threshold, on enough recent events.
    TrustBelow(f64),
    /// Confirmed; waiting until the fleet has shown enough telemetry since the change to tell
    /// co-moving causes apart (`DIAGNOSIS_DATA_MS`).
    Confirmed,
}

/// A drift is diagnosed only once this much telemetry since its alarm exists: a few seconds
/// give the quieter users of a tool, model or region too few calls to rule it in or out.
const DIAGNOSIS_DATA_MS: i64 = 12_000;
/// How long an incident with a shared root cause gathers symptoms before it is planned.
const GROUP_WAIT_MS: i64 = 5_000;
/// Telemetry read to confirm pending symptoms.
const CONFIRM_LOOKBACK_MS: i64 = 180_000;
/// A drift alarm waits at most this long for enough fresh telemetry to be tested (a quiet
/// agent at one call every two seconds reaches the second look in a minute).
const DRIFT_CONFIRM_MAX_MS: i64 = 90_000;
/// An SLA breach counts once the agent has this many events in the window.
const SLA_MIN_EVENTS: usize = 20;
/// A low score is the trust model reacting to something more direct (a burst, a drift), which
/// is given this long to open the incident the breach then joins.
const SLA_CONFIRM_DELAY_MS: i64 = 15_000;
const SLA_EVIDENCE_WINDOW_MS: i64 = 120_000;
/// Telemetry before a fault that gives a verification its baseline.
const BASELINE_MS: i64 = 120_000;
const BASELINE_MIN_EVENTS: usize = 10;
/// A symptom of an agent that one of our controls holds, starting this soon after the control
/// was set, is the control's own effect (a slower fallback tool, refused work), not a fault.
const SECONDARY_EFFECT_MS: i64 = 60_000;
/// A symptom diagnosed to the root cause of an incident closed this recently, and begun before
/// it closed, is that incident's late symptom, not a new fault.
const LATE_SYMPTOM_MS: i64 = 60_000;
/// How long a verification may keep retrying canaries while its controls contain the fault,
/// before a human is asked.
const CONTAINED_VERIFY_MS: i64 = 600_000;
/// Observations of the same agent and metric within this long share one record.
const OBSERVATION_MERGE_MS: i64 = 600_000;

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
            alarm_times: BTreeMap::new(),
            started_ms: None,
        }
    }

    pub fn library(&self) -> &Library {
        &self.library
    }

    /// One pass of the loop at `now_ms`.
    pub async fn tick(&mut self, now_ms: i64) -> Result<TickReport, HealerError> {
        let mut report = TickReport::default();
        self.started_ms.get_or_insert(now_ms);
        let mut by_tenant: BTreeMap<String, Vec<Symptom>> = BTreeMap::new();
        for s in self.store.unconsumed_drift_signals(500).await? {
            if !self.store.consume_drift_signal(&s.id, now_ms).await? {
                continue;
            }
            let times = self.alarm_times.entry(s.tenant.clone()).or_default();
            times.push_back(now_ms);
            while times.front().is_some_and(|t| *t < now_ms - 3_600_000) {
                times.pop_front();
            }
            let Some(raw) = RawMetric::from_signal(&s.metric) else {
                continue;
            };
            // Faster, cheaper, fewer errors: good news is not an incident.
            let down = s.is_down();
            if down && (raw.is_rate() || !self.config.alarm.watch_decreases) {
                continue;
            }
            let mut symptom = from_signal(&s);
            symptom.metric = raw.family().to_string();
            self.pending.push(Pending {
                tenant: s.tenant.clone(),
                symptom,
                confirm: Confirmation::Drift(raw),
                since_ms: now_ms,
            });
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
            let bursts = violation_bursts(
                &recent,
                window_start,
                self.config.burst_window_ms,
                self.config.burst_min_events,
                self.config.burst_min_share,
            );
            if !bursts.is_empty() {
                // A burst is a fault only against the agent's own history: an agent that
                // always had some violations bursts by chance now and then.
                let history = self
                    .store
                    .events_between(&tenant, window_start - 300_000, window_start, 200_000)
                    .await?;
                let alpha = self.alpha(&tenant, now_ms, distinct_agents(&history));
                syms.extend(
                    bursts
                        .into_iter()
                        .filter(|b| burst_beats_history(b, &recent, &history, window_start, alpha)),
                );
            }
            syms.extend(failed_evals(&recent, since));
            self.watermarks.insert(tenant, now_ms);
        }
        let mut observations = Observations::default();
        self.confirm_pending(now_ms, &mut by_tenant, &mut observations)
            .await?;
        for (tenant, symptoms) in by_tenant {
            report.symptoms += symptoms.len();
            let opened = self
                .absorb(&tenant, symptoms, now_ms, &mut report, &mut observations)
                .await?;
            report.opened.extend(opened);
        }
        for (tenant, list) in observations.0 {
            for (symptom, why) in list {
                self.observe(&tenant, symptom, &why, None, now_ms).await?;
            }
        }
        for inc in self
            .store
            .incidents(None, &IncidentState::OPEN_NAMES, 1_000)
            .await?
        {
            self.advance(inc, now_ms, &mut report).await?;
        }
        self.release_controls(now_ms).await?;
        Ok(report)
    }

    /// The confirmation test's level for a tenant (see `alarm.rs`): the budget over the
    /// tenant's drift alarms per hour, at least one per monitored series.
    fn alpha(&self, tenant: &str, now_ms: i64, agents: usize) -> f64 {
        let uptime = (now_ms - self.started_ms.unwrap_or(now_ms)).clamp(600_000, 3_600_000);
        let recent = self.alarm_times.get(tenant).map_or(0, VecDeque::len) as f64;
        let per_hour = recent * 3_600_000.0 / uptime as f64;
        alpha_for(&self.config.alarm, per_hour, agents.max(1) * 5)
    }

    /// Moves the pending symptoms that the evidence now confirms into `by_tenant`, those that
    /// are real but call for no action into `observations`, and drops those it refutes. Why:
    /// every agent runs a drift detector per metric, so a fleet sees false alarms in proportion
    /// to its size, and a new agent's first trust score is low on little evidence. A shift
    /// that the raw telemetry bears out, or a low score with a fault in its telemetry, is what
    /// opens an incident.
    async fn confirm_pending(
        &mut self,
        now_ms: i64,
        by_tenant: &mut BTreeMap<String, Vec<Symptom>>,
        observations: &mut Observations,
    ) -> Result<(), HealerError> {
        let pending = std::mem::take(&mut self.pending);
        let mut events: BTreeMap<String, Vec<EventRecord>> = BTreeMap::new();
        for mut p in pending {
            if !events.contains_key(&p.tenant) {
                let rows = self
                    .store
                    .events_between(&p.tenant, now_ms - CONFIRM_LOOKBACK_MS, now_ms + 1, 200_000)
                    .await?;
                events.insert(p.tenant.clone(), rows);
            }
            let tenant_events = events.get(&p.tenant).map(Vec::as_slice).unwrap_or(&[]);
            let agent_events: Vec<&EventRecord> = tenant_events
                .iter()
                .filter(|e| e.agent_id == p.symptom.agent_id)
                .collect();
            let waited = now_ms - p.since_ms;
            let verdict = match p.confirm {
                Confirmation::Confirmed if now_ms < p.symptom.at_ms + DIAGNOSIS_DATA_MS => None,
                Confirmation::Confirmed => Some(Ok(())),
                Confirmation::Drift(raw) => {
                    let alpha = self.alpha(&p.tenant, now_ms, distinct_agents(tenant_events));
                    match confirm_shift(
                        raw,
                        p.symptom.at_ms,
                        &agent_events,
                        &self.config.alarm,
                        alpha,
                        waited >= DRIFT_CONFIRM_MAX_MS,
                    ) {
                        Verdict::Confirmed(effect) => {
                            // Severity from the confirmed effect, not the detector's σ: a
                            // confirmed fault is at least medium.
                            let big = if raw.is_rate() {
                                effect.after - effect.before >= 0.3
                            } else {
                                effect.after >= 3.0 * effect.before
                            };
                            p.symptom.severity = p.symptom.severity.max(if big {
                                meshos_playbooks::Severity::High
                            } else {
                                meshos_playbooks::Severity::Medium
                            });
                            p.symptom.detail = format!(
                                "{}; confirmed on fresh telemetry: {} {:.4} → {:.4} ({} → {} values), p = {:.2e} < α = {:.2e}",
                                p.symptom.detail,
                                if raw.is_rate() { "rate" } else { "median" },
                                effect.before,
                                effect.after,
                                effect.n_before,
                                effect.n_after,
                                effect.p_value,
                                effect.alpha
                            );
                            Some(Ok(()))
                        }
                        Verdict::Refuted(effect) => Some(Err(format!(
                            "not confirmed: {:.4} → {:.4}, p = {:.2e} (α = {:.2e}), floor met: {}",
                            effect.before,
                            effect.after,
                            effect.p_value,
                            effect.alpha,
                            effect.floor_met
                        ))),
                        Verdict::Pending => None,
                    }
                }
                Confirmation::TrustBelow(threshold) => {
                    let recent = agent_events
                        .iter()
                        .filter(|e| e.created_at_ms >= now_ms - SLA_EVIDENCE_WINDOW_MS)
                        .count();
                    let score = self.ports.trust_score(&p.tenant, &p.symptom.agent_id).await;
                    match score {
                        Some(s) if s >= threshold => Some(Err("trust recovered".to_string())),
                        Some(_) if recent >= SLA_MIN_EVENTS && waited >= SLA_CONFIRM_DELAY_MS => {
                            let alpha =
                                self.alpha(&p.tenant, now_ms, distinct_agents(tenant_events));
                            match outcome_fault(
                                &p.symptom.agent_id,
                                tenant_events,
                                now_ms - SLA_EVIDENCE_WINDOW_MS,
                                alpha,
                                &self.config.alarm,
                            ) {
                                Some((metric, why)) => {
                                    p.symptom.metric = metric.to_string();
                                    p.symptom.detail = format!("{}; {why}", p.symptom.detail);
                                    Some(Ok(()))
                                }
                                None => {
                                    observations.note(
                                        &p.tenant,
                                        p.symptom.clone(),
                                        "trust below its threshold, but the agent's telemetry shows no \
                                         error or violation rate above the rest of the fleet's"
                                            .to_string(),
                                    );
                                    continue;
                                }
                            }
                        }
                        _ if waited >= SLA_EVIDENCE_WINDOW_MS => {
                            Some(Err("too few events to judge".to_string()))
                        }
                        _ => None,
                    }
                }
            };
            match verdict {
                Some(Ok(()))
                    if matches!(p.confirm, Confirmation::Drift(_))
                        && now_ms < p.symptom.at_ms + DIAGNOSIS_DATA_MS =>
                {
                    p.confirm = Confirmation::Confirmed;
                    self.pending.push(p);
                }
                Some(Ok(())) => by_tenant
                    .entry(p.tenant.clone())
                    .or_default()
                    .push(p.symptom),
                Some(Err(why)) => tracing::debug!(
                    agent = %p.symptom.agent_id, metric = %p.symptom.metric, %why,
                    "healer: symptom dropped"
                ),
                None => self.pending.push(p),
            }
        }
        Ok(())
    }

    /// Attaches new symptoms to the open incidents they belong to; diagnoses the rest and opens
    /// one incident per root cause (or joins the open one with that cause). Symptoms our own
    /// controls explain, and symptoms no playbook applies to, become observations.
    async fn absorb(
        &mut self,
        tenant: &str,
        symptoms: Vec<Symptom>,
        now_ms: i64,
        report: &mut TickReport,
        observations: &mut Observations,
    ) -> Result<Vec<String>, HealerError> {
        let open = self
            .store
            .incidents(Some(tenant), &IncidentState::OPEN_NAMES, 1_000)
            .await?;
        let closed = self
            .store
            .incidents(Some(tenant), &["resolved", "escalated"], 200)
            .await?;
        let controls = self.store.active_controls(Some(tenant)).await?;
        let mut fresh = Vec::new();
        'symptom: for s in symptoms {
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
        // Secondary effects: an agent a control holds (it was moved off a tool, model or
        // region, or is quarantined or capped) looks unwell for a while; that is the remedy
        // working, not a new fault. Violation bursts are the agent's own doing and still count.
        let readable: Vec<(&StoredControl, Control)> = readable_controls(&controls).collect();
        let mut kept = Vec::new();
        for s in fresh {
            let held = readable.iter().find(|(c, control)| {
                control_holds(control, &s.agent_id, &events)
                    && (s.kind == meshos_playbooks::IncidentKind::SlaBreach
                        || s.started_at_ms >= c.created_at_ms - 5_000
                            && s.started_at_ms <= c.created_at_ms + SECONDARY_EFFECT_MS)
            });
            match held {
                Some((c, _)) if s.kind != meshos_playbooks::IncidentKind::ViolationBurst => {
                    let why = format!(
                        "secondary effect of control {} on {} (incident {})",
                        c.kind, c.subject, c.incident_id
                    );
                    observations.note(tenant, s, why);
                }
                _ => kept.push(s),
            }
        }
        if kept.is_empty() {
            return Ok(Vec::new());
        }
        // One incident per root cause: symptoms blamed on the same entity go together, and
        // join the open incident already filed under it.
        let ranked = diagnose_each(&kept, &events);
        let mut groups: BTreeMap<String, (Diagnosis, Vec<Symptom>)> = BTreeMap::new();
        'kept: for (s, ranked) in kept.into_iter().zip(ranked) {
            let d = self.diagnose(&s, ranked, &events);
            let Some(d) = d else {
                let why = format!(
                    "no entity agent {} depends on moved in {}: nothing to act on",
                    s.agent_id, s.metric
                );
                observations.note(tenant, s, why);
                continue;
            };
            // A late symptom of a fault whose incident just closed.
            for inc in &closed {
                if inc.correlation_key == d.root_cause
                    && now_ms - inc.updated_at_ms <= LATE_SYMPTOM_MS
                    && s.started_at_ms <= inc.updated_at_ms
                {
                    self.attach(inc, s, now_ms).await?;
                    continue 'kept;
                }
            }
            let facts = self.facts_for(&s, &d, None);
            if self.library.candidates(&facts).is_empty() {
                let why = format!(
                    "no playbook applies to {} {} ({} symptom)",
                    d.root_cause, d.metric, s.kind
                );
                observations.note(tenant, s, why);
                continue;
            }
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

    /// The stratified diagnosis of one symptom, with the causal ranking for the record.
    /// `None`: nothing the agent depends on moved, so nothing can be blamed.
    fn diagnose(
        &self,
        s: &Symptom,
        ranked: Diagnosis,
        events: &[EventRecord],
    ) -> Option<Diagnosis> {
        let telemetry_metric =
            ["latency", "error_rate", "violation_rate", "cost"].contains(&s.metric.as_str());
        if !telemetry_metric {
            // Evals and trust carry no per-call metric: the agent is the subject.
            return Some(Diagnosis {
                confident: true,
                ..ranked
            });
        }
        let st = diagnose_symptom(
            &s.agent_id,
            &s.metric,
            s.started_at_ms,
            events,
            &self.config.alarm.floors,
        );
        let root = st.root?;
        Some(Diagnosis {
            root_cause: root,
            metric: s.metric.clone(),
            ranking: ranked.ranking,
            method: "strata".into(),
            anomaly_start_ms: s.started_at_ms,
            ranked: true,
            note: st.note,
            confident: st.confident,
            evidence: st.candidates,
            explains_agents: st.affected_agents,
        })
    }

    /// What the playbook library is matched on.
    fn facts_for(&self, s: &Symptom, d: &Diagnosis, trust: Option<f64>) -> IncidentFacts {
        IncidentFacts {
            kind: s.kind,
            severity: s.severity,
            root_cause_kind: root_kind(&d.root_cause),
            metric: Some(d.metric.clone()),
            trust_score: trust,
            affected_agents: d.explains_agents.len().max(1) as u32,
        }
    }

    /// Records a symptom that calls for no action: an incident row in the terminal state
    /// `observed`, on the ledger like any incident, or one more symptom of the recent
    /// observation of the same agent and metric.
    async fn observe(
        &self,
        tenant: &str,
        symptom: Symptom,
        why: &str,
        diagnosis: Option<Diagnosis>,
        now_ms: i64,
    ) -> Result<(), HealerError> {
        let key = format!("observe:{}:{}", symptom.agent_id, symptom.metric);
        let recent = self
            .store
            .incidents(Some(tenant), &["observed"], 200)
            .await?
            .into_iter()
            .find(|i| i.correlation_key == key && now_ms - i.updated_at_ms <= OBSERVATION_MERGE_MS);
        if let Some(inc) = recent {
            return self.attach(&inc, symptom, now_ms).await;
        }
        let mut data = IncidentData::default();
        let kind = symptom.kind;
        let severity = symptom.severity;
        let started = symptom.started_at_ms;
        let reason = format!(
            "observed {} {} of {}: {why}",
            symptom.kind, symptom.metric, symptom.agent_id
        );
        data.add_symptom(symptom);
        data.diagnosis = diagnosis;
        let inc = StoredIncident {
            id: new_id("inc"),
            tenant: tenant.to_string(),
            kind: kind.to_string(),
            severity: severity.to_string(),
            state: IncidentState::Observed.to_string(),
            correlation_key: key,
            subject: Some(format!("agent:{}", data.affected_agents.join(","))),
            data: data.to_json(),
            fault_started_at_ms: started,
            opened_at_ms: now_ms,
            updated_at_ms: now_ms,
            resolved_at_ms: None,
            version: 1,
        };
        let record = Self::transition(
            &inc,
            None,
            IncidentState::Observed,
            ACTOR,
            None,
            &reason,
            json!(data.symptoms),
            now_ms,
        );
        self.store.open_incident(&inc, &record).await?;
        Ok(())
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
        for a in &diagnosis.explains_agents {
            if !data.affected_agents.contains(a) {
                data.affected_agents.push(a.clone());
            }
        }
        data.affected_agents.sort();
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

    /// The ledger record of something that happened to an incident without moving it (a
    /// release of its controls): from its state to the same state.
    pub(crate) fn transition_record(
        inc: &StoredIncident,
        actor: &str,
        role: Option<Role>,
        reason: &str,
        inputs: Value,
        now_ms: i64,
    ) -> IncidentTransitionRecord {
        let state = inc.state.parse().unwrap_or(IncidentState::Resolved);
        Self::transition(inc, Some(state), state, actor, role, reason, inputs, now_ms)
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
                            let recovery = self.recovery_target(&inc, &data).await?;
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
                        VerifyOutcome::Pending => {
                            self.save_data(inc, &data, now_ms).await?;
                            return Ok(());
                        }
                        VerifyOutcome::Passed => {
                            let canary = data.verification.as_ref().is_some_and(|v| v.canary);
                            if canary {
                                // The canary already proved the fault gone: nothing to hold.
                                self.rollback_controls(&inc, &plan, now_ms).await?;
                            }
                            let inputs = json!(data.verification);
                            let inc = with_data(inc, &data, now_ms);
                            return self
                                .finish(
                                    inc,
                                    IncidentState::Resolved,
                                    if canary {
                                        "verification passed on canary traffic: the triggering metric is back at its pre-fault baseline; the controls are released"
                                    } else {
                                        "verification passed: the triggering metric is back at its pre-fault baseline"
                                    },
                                    inputs,
                                    now_ms,
                                    report,
                                )
                                .await;
                        }
                        VerifyOutcome::Unverifiable(why) => {
                            // The controls stay: they contain the fault; a human decides.
                            let inputs = json!(data.verification);
                            let inc = with_data(inc, &data, now_ms);
                            return self
                                .finish(
                                    inc,
                                    IncidentState::Escalated,
                                    &format!("not verifiable: {why}; the controls stay in force until an operator releases them"),
                                    inputs,
                                    now_ms,
                                    report,
                                )
                                .await;
                        }
                        VerifyOutcome::Failed
                            if data.verification.as_ref().is_some_and(|v| v.canary) =>
                        {
                            // The canary shows the fault is still there: the control contains
                            // it, so it stays in full and a human decides.
                            self.set_canary(&inc, None).await?;
                            let inputs = json!(data.verification);
                            let inc = with_data(inc, &data, now_ms);
                            return self
                                .finish(
                                    inc,
                                    IncidentState::Escalated,
                                    "the canary traffic is still off its pre-fault baseline: the controls are restored in full and stay until an operator releases them",
                                    inputs,
                                    now_ms,
                                    report,
                                )
                                .await;
                        }
                        VerifyOutcome::Failed => {
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
                IncidentState::Resolved | IncidentState::Escalated | IncidentState::Observed => {
                    return Ok(());
                }
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

    /// A spend cap for an agent blamed for a cost rise: what it spent today plus five minutes
    /// of its pre-fault spend, so the cap bites at once (a runaway at k× its normal rate
    /// reaches it within 5/k minutes) and no healthy spend is refused before the cap is
    /// released on evidence. `None` for other incidents.
    async fn spend_cap(
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
    async fn rollback_controls(
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
    async fn rollback(
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

    /// The pre-fault baseline every verification is judged against: the metric that opened
    /// the incident, over the faulty entity's and the affected agents' telemetry in the two
    /// minutes before the fault (or, with too little of it, the unaffected rest of the fleet's
    /// since then). `None` when the metric is not one the telemetry carries (trust score, eval).
    async fn recovery_target(
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
    async fn verify_step(
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
        let fresh = in_round
            .iter()
            .filter(|e| e.created_at_ms >= last_eval)
            .count();
        let take = fresh.max(self.config.verify_min_events);
        let scope: Vec<&EventRecord> = in_round[in_round.len().saturating_sub(take)..].to_vec();
        let counted = fresh >= 1 && scope.len() >= self.config.verify_min_events;
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

/// Symptoms to record as observations this tick, per tenant, with why.
#[derive(Default)]
struct Observations(BTreeMap<String, Vec<(Symptom, String)>>);

impl Observations {
    fn note(&mut self, tenant: &str, symptom: Symptom, why: String) {
        self.0
            .entry(tenant.to_string())
            .or_default()
            .push((symptom, why));
    }
}

/// What one verification evaluation concluded.
#[derive(Debug, Clone, PartialEq)]
enum VerifyOutcome {
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

/// Agents with events in `events`.
fn distinct_agents(events: &[EventRecord]) -> usize {
    events
        .iter()
        .map(|e| e.agent_id.as_str())
        .collect::<std::collections::BTreeSet<_>>()
        .len()
}

/// Whether a violation burst stands out against the agent's own previous five minutes
/// (a two-proportion test at the fleet's level `alpha`). An agent with no history passes.
fn burst_beats_history(
    burst: &Symptom,
    recent: &[EventRecord],
    history: &[EventRecord],
    window_start: i64,
    alpha: f64,
) -> bool {
    let tally = |events: &mut dyn Iterator<Item = &EventRecord>| {
        events.fold((0usize, 0usize), |(n, k), e| {
            (n + 1, k + usize::from(e.outcome == Outcome::Violation))
        })
    };
    let (n1, k1) = tally(
        &mut recent
            .iter()
            .filter(|e| e.agent_id == burst.agent_id && e.created_at_ms >= window_start),
    );
    let (n0, k0) = tally(&mut history.iter().filter(|e| e.agent_id == burst.agent_id));
    if n0 < 20 {
        return true;
    }
    crate::alarm::two_proportion_greater(k1, n1, k0, n0) < alpha
}

/// Whether an agent's recent work fails more than the rest of the fleet's: the error or
/// violation rate since `since_ms` against every other agent's over the same time, at level
/// `alpha` and above the effect floor. Returns the metric and the evidence.
fn outcome_fault(
    agent: &str,
    events: &[EventRecord],
    since_ms: i64,
    alpha: f64,
    policy: &AlarmPolicy,
) -> Option<(&'static str, String)> {
    let work: Vec<&EventRecord> = events
        .iter()
        .filter(|e| e.created_at_ms >= since_ms && is_work(e))
        .collect();
    for (metric, outcome, floor) in [
        (
            "violation_rate",
            Outcome::Violation,
            policy.floors.violation_rate_increase,
        ),
        (
            "error_rate",
            Outcome::Error,
            policy.floors.error_rate_increase,
        ),
    ] {
        let count = |mine: bool| {
            work.iter()
                .filter(|e| (e.agent_id == agent) == mine)
                .fold((0usize, 0usize), |(n, k), e| {
                    (n + 1, k + usize::from(e.outcome == outcome))
                })
        };
        let ((n1, k1), (n0, k0)) = (count(true), count(false));
        if n1 < 10 {
            continue;
        }
        let (r1, r0) = (k1 as f64 / n1 as f64, k0 as f64 / n0.max(1) as f64);
        let p = crate::alarm::two_proportion_greater(k1, n1, k0, n0.max(1));
        if r1 - r0 >= floor && p < alpha {
            return Some((
                metric,
                format!(
                    "its {metric} is {:.0}% against the fleet's {:.0}% (p = {p:.2e})",
                    r1 * 100.0,
                    r0 * 100.0
                ),
            ));
        }
    }
    None
}

/// Whether a control holds `agent`: it names the agent (quarantine, agent budget cap, a
/// per-agent overlay), or the agent's work in `events` touched what the control blocks (a
/// revoked tool, a pinned model, an avoided region).
fn control_holds(c: &Control, agent: &str, events: &[EventRecord]) -> bool {
    let used = |pick: &dyn Fn(&EventRecord) -> Option<&str>, name: &str| {
        events
            .iter()
            .any(|e| e.agent_id == agent && pick(e) == Some(name))
    };
    match c {
        Control::Quarantine { agent: a } => a == agent,
        Control::BudgetCap {
            scope: CapScope::Agent,
            subject,
            ..
        } => subject == agent,
        Control::BudgetCap { .. } => true,
        Control::PolicyOverlay { agent: Some(a), .. } => a == agent,
        // A fleet-wide overlay on `tool.*` holds the agents that use that tool, not everyone.
        Control::PolicyOverlay {
            agent: None,
            action,
            ..
        } => match action.strip_suffix(".*") {
            Some(tool) if !tool.contains('*') => used(&|e| e.tool.as_deref(), tool),
            _ => action == "*",
        },
        Control::ToolRevoked { agent: a, tool } => {
            a.as_deref().is_none_or(|a| a == agent) && used(&|e| e.tool.as_deref(), tool)
        }
        Control::ModelPin { model, .. } => used(&|e| e.model.as_deref(), model),
        Control::RegionAvoid { region, .. } => used(&|e| e.region.as_deref(), region),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn call(agent: &str, tool: &str) -> EventRecord {
        serde_json::from_value(json!({
            "id": new_id("evt"), "tenant": "t", "agent_id": agent, "kind": "tool_call",
            "outcome": "ok", "latency_ms": 200.0, "tool": tool, "created_at_ms": 1_000,
            "attributes": {},
        }))
        .unwrap()
    }

    fn overlay(agent: &str, action: &str) -> Control {
        Control::PolicyOverlay {
            agent: (agent != "*").then(|| agent.to_string()),
            action: action.into(),
            effect: meshos_types::OverlayEffect::Deny,
            entities: None,
        }
    }

    /// A fleet-wide deny overlay on one tool's actions holds that tool's users only: a model
    /// regression right after an injection campaign was once filed as its secondary effect.
    #[test]
    fn a_fleet_wide_overlay_on_a_tool_holds_only_its_users() {
        let events = [call("a1", "linkhound"), call("a2", "kb")];
        let c = overlay("*", "linkhound.*");
        assert!(control_holds(&c, "a1", &events));
        assert!(!control_holds(&c, "a2", &events));
        assert!(control_holds(&overlay("a2", "*"), "a2", &events));
        assert!(!control_holds(&overlay("a2", "*"), "a1", &events));
    }
}
