//! The loop and its handles: [`Healer`] with what it needs from its server ([`HealerPorts`]),
//! its tuning, and `tick(now_ms)`, which runs one pass of every job in order: intake (new
//! symptoms into incidents), every open incident moved as far as it can go (`lifecycle`), and
//! the release of resolved incidents' controls (`release`). Each job lives in its own module;
//! this one owns only the loop's state and the order of the jobs.

use std::collections::{BTreeMap, VecDeque};
use std::future::Future;

use meshos_playbooks::{Library, PlannedStep};
use meshos_store::Store;
use serde::Serialize;
use serde_json::{Value, json};

use crate::alarm::AlarmPolicy;
use crate::intake::Pending;
use crate::{HealerError, IncidentState};

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
    pub(crate) library: Library,
    pub(crate) ports: P,
    pub(crate) config: HealerConfig,
    /// Newest SLA alert / eval already turned into symptoms, per tenant.
    pub(crate) watermarks: BTreeMap<String, i64>,
    /// Drift signals and SLA breaches waiting for evidence (see `confirm_pending`).
    pub(crate) pending: Vec<Pending>,
    /// When each tenant's drift alarms arrived over the last hour: the rate the confirmation
    /// test's level is scaled by.
    pub(crate) alarm_times: BTreeMap<String, VecDeque<i64>>,
    pub(crate) started_ms: Option<i64>,
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
        self.intake(now_ms, &mut report).await?;
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
