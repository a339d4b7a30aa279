//! Intake: from telemetry to incidents. Owns detection (drift signals, SLA alerts, violation
//! bursts, failed evals → symptoms), confirmation against fresh telemetry (a drift alarm or a
//! low score opens nothing until the raw data bears it out), correlation (a symptom joins the
//! open incident of its agent or root cause), the secondary-effect filter (our own controls'
//! effects are not faults), diagnosis, and the records it writes: `observed` incidents for
//! symptoms that call for no action, and newly opened, diagnosed incidents.

use std::collections::{BTreeMap, VecDeque};

use meshos_playbooks::{IncidentFacts, RootCauseKind};
use meshos_store::{StoredControl, StoredIncident, readable_controls};
use meshos_types::{CapScope, Control, EventRecord, Outcome, new_id};
use serde_json::{Value, json};

use crate::alarm::{AlarmPolicy, RawMetric, Verdict, alpha_for, confirm_shift, is_work};
use crate::detect::{failed_evals, from_alert, from_signal, violation_bursts};
use crate::diagnose::diagnose_each;
use crate::lifecycle::{self, Move, opening};
use crate::strata::diagnose_symptom;
use crate::{
    Diagnosis, Healer, HealerError, HealerPorts, IncidentData, IncidentState, Symptom, TickReport,
};

/// A symptom that opens nothing until the telemetry confirms it.
#[derive(Debug, Clone)]
pub(crate) struct Pending {
    tenant: String,
    symptom: Symptom,
    confirm: Confirmation,
    since_ms: i64,
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Confirmation {
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
/// A symptom of an agent that one of our controls holds, starting this soon after the control
/// was set, is the control's own effect (a slower fallback tool, refused work), not a fault.
const SECONDARY_EFFECT_MS: i64 = 60_000;
/// A symptom diagnosed to the root cause of an incident closed this recently, and begun before
/// it closed, is that incident's late symptom, not a new fault.
const LATE_SYMPTOM_MS: i64 = 60_000;
/// Observations of the same agent and metric within this long share one record.
const OBSERVATION_MERGE_MS: i64 = 600_000;

pub(crate) fn root_kind(entity: &str) -> Option<RootCauseKind> {
    entity.split_once(':').and_then(|(k, _)| k.parse().ok())
}

impl<P: HealerPorts> Healer<P> {
    /// Turns this tick's telemetry into symptoms, confirms them, and files each into an
    /// incident or an observation.
    pub(crate) async fn intake(
        &mut self,
        now_ms: i64,
        report: &mut TickReport,
    ) -> Result<(), HealerError> {
        let mut by_tenant = self.detect(now_ms).await?;
        let mut observations = Observations::default();
        self.confirm_pending(now_ms, &mut by_tenant, &mut observations)
            .await?;
        for (tenant, symptoms) in by_tenant {
            report.symptoms += symptoms.len();
            let opened = self
                .absorb(&tenant, symptoms, now_ms, report, &mut observations)
                .await?;
            report.opened.extend(opened);
        }
        for (tenant, list) in observations.0 {
            for (symptom, why) in list {
                self.observe(&tenant, symptom, &why, None, now_ms).await?;
            }
        }
        Ok(())
    }

    /// New symptoms per tenant: drift signals and SLA breaches go to `pending` (they need
    /// confirmation); violation bursts that beat the agent's own history and failed evals are
    /// returned.
    async fn detect(&mut self, now_ms: i64) -> Result<BTreeMap<String, Vec<Symptom>>, HealerError> {
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
        Ok(by_tenant)
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
        let mv = Move::healer(IncidentState::Observed, reason, json!(data.symptoms));
        let record = opening(&inc, mv, now_ms);
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
        let mv = Move::healer(IncidentState::Open, opened_reason, symptoms_json);
        self.store
            .open_incident(&inc, &opening(&inc, mv, now_ms))
            .await?;
        let mv = Move::healer(IncidentState::Diagnosed, diag_note, diag_json);
        let inc = lifecycle::apply(&self.store, inc, mv, now_ms, report).await?;
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
