//! The live trust runtime: every agent's trust score, drift detectors and SLA state, kept in
//! memory and moved by each committed event and decision, so a score is current the moment the
//! write that changed it is acknowledged.
//!
//! Why in memory: recomputing from the store on every read cost a query of up to 2,000 rows
//! and could not notice a breach between reads. Here each observation is O(1)
//! (`meshos_trust::AgentTrust`), drift detectors see every event, and SLA transitions fire as
//! they happen. The store stays the source of truth: an agent's state is rebuilt from its
//! stored records the first time it is touched after a start, and the watermarks below make
//! sure a record is never counted twice (once by the rebuild, once by its own observation).
//!
//! Side effects that need I/O (history points, drift signals, alerts, webhooks, MCP
//! notifications) are queued here and carried out by `run_flusher`, so ingest never waits
//! for a webhook.
//!
//! Scale-out caveat: each replica's live state sees the records it ingests plus what was
//! stored when it rebuilt an agent; records ingested by another replica reach it only at the
//! next rebuild.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use meshos_store::{Store, StoreError, StoredAlert, StoredSignal, TrustPoint};
use meshos_trust::drift::{AgentDrift, DriftConfig, DriftSignal};
use meshos_trust::sla::{BREACH_EVENT, SlaPolicy, SlaTracker, SlaTransition};
use meshos_trust::{
    AgentTrust, Components, DecisionSample, EventSample, ScoreSummary, TrustParams, TrustScore,
};
use meshos_types::{DecisionRecord, EventRecord, new_id, now_ms, rfc3339_ms};
use tokio::sync::{Notify, OnceCell, mpsc};

use crate::metrics::Metrics;
use crate::webhook::{DeliveryOutcome, WebhookEndpoint, WebhookSender};

/// How far back a rebuild reads an agent's records: older ones weigh less than 2^-10 at the
/// default 24 h half-life.
const REBUILD_LOOKBACK_HALF_LIVES: f64 = 10.0;
/// Most records of each kind a rebuild reads.
const REBUILD_MAX_RECORDS: u32 = 20_000;
/// Agents held in memory by default: about 2.6 KB each, so some 50 MB at most. One token
/// inventing agent ids used to grow the server without bound.
pub const DEFAULT_MAX_LIVE_AGENTS: usize = 20_000;
/// How often a changed score is written to the history.
const HISTORY_INTERVAL: Duration = Duration::from_secs(1);
/// Notifications are coalesced over this long, so a burst of events is one update per agent.
const NOTIFY_COALESCE: Duration = Duration::from_millis(50);

type AgentKey = (String, String);

fn key(tenant: &str, agent: &str) -> AgentKey {
    (tenant.to_string(), agent.to_string())
}

/// One agent's live state.
#[derive(Debug, Default)]
struct AgentLive {
    trust: AgentTrust,
    drift: AgentDrift,
    sla: SlaTracker,
    /// Records at or below these ledger indexes were folded in by the rebuild.
    event_watermark: Option<u64>,
    decision_watermark: Option<u64>,
    /// Whether SLA transitions are reported for this agent yet; see `arms_sla`.
    sla_armed: bool,
    /// The score as of the last observation, and when that was.
    last: Option<ScoreSummary>,
    newest_ms: i64,
}

#[derive(Debug, Default)]
struct Pending {
    /// Agents whose score changed since the last history write.
    history: HashSet<AgentKey>,
    /// Agents whose subscribers have not been told of the change yet.
    notify: HashSet<AgentKey>,
    signals: Vec<StoredSignal>,
    alerts: Vec<(StoredAlert, serde_json::Value)>,
}

/// A listener's id and the channel that wakes it with the changed URI.
type Listener = (u64, mpsc::UnboundedSender<String>);

/// Who listens to which `trust://` resource.
#[derive(Debug, Default)]
struct Subscribers {
    next_id: u64,
    /// (tenant, uri) → listeners.
    by_uri: HashMap<(String, String), Vec<Listener>>,
}

pub struct LiveTrust {
    store: Store,
    metrics: Arc<Metrics>,
    params: TrustParams,
    drift_config: DriftConfig,
    sla: SlaPolicy,
    agents: Mutex<HashMap<AgentKey, Arc<OnceCell<Mutex<AgentLive>>>>>,
    /// At most this many agents are held; the least recently active are evicted past it and
    /// rebuilt from the store when they are next touched.
    max_agents: usize,
    pending: Mutex<Pending>,
    wake: Notify,
    subscribers: Mutex<Subscribers>,
    webhooks: Vec<WebhookEndpoint>,
    sender: WebhookSender,
}

impl std::fmt::Debug for LiveTrust {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LiveTrust")
    }
}

/// A poisoned lock only means another thread panicked mid-update of plain numbers; the state
/// is still usable, and refusing every later request would be worse.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub fn event_sample(e: &EventRecord) -> EventSample {
    EventSample {
        at_ms: e.created_at_ms,
        kind: e.kind.clone(),
        outcome: e.outcome,
        latency_ms: e.latency_ms,
        input_tokens: e.input_tokens,
        output_tokens: e.output_tokens,
        cost_usd: e.cost_usd,
    }
}

pub fn decision_sample(d: &DecisionRecord) -> DecisionSample {
    DecisionSample {
        at_ms: d.created_at_ms,
        verdict: d.decision,
        finding_kinds: d.findings.iter().map(|f| f.entity.clone()).collect(),
        action: d.action.clone(),
    }
}

pub const TRUST_PREFIX: &str = "trust://agents/";

/// The URI of an agent's trust resource.
pub fn trust_uri(agent: &str) -> String {
    format!("{TRUST_PREFIX}{agent}")
}

/// The URI of the tenant's SLA alert feed.
pub const ALERTS_URI: &str = "trust://alerts";

impl LiveTrust {
    /// `store` and `metrics` are the Mesh's own handles (both are shared, cheap clones).
    pub fn new(
        store: Store,
        metrics: Arc<Metrics>,
        params: TrustParams,
        drift_config: DriftConfig,
        sla: SlaPolicy,
        webhooks: Vec<WebhookEndpoint>,
        sender: WebhookSender,
    ) -> LiveTrust {
        LiveTrust {
            store,
            metrics,
            params,
            drift_config,
            sla,
            agents: Mutex::new(HashMap::new()),
            max_agents: DEFAULT_MAX_LIVE_AGENTS,
            pending: Mutex::new(Pending::default()),
            wake: Notify::new(),
            subscribers: Mutex::new(Subscribers::default()),
            webhooks,
            sender,
        }
    }

    /// Holds at most `n` agents in memory (at least 1).
    pub fn with_max_agents(mut self, n: usize) -> LiveTrust {
        self.max_agents = n.max(1);
        self
    }

    /// How many agents are held in memory now.
    pub fn agents_held(&self) -> usize {
        lock(&self.agents).len()
    }

    /// Makes room for one more agent: drops the least recently active tenth of those held.
    /// Eviction loses nothing: every record is in the store, a rebuild skips nothing it has
    /// not counted (watermarks), and the SLA state resumes from the last stored alert.
    fn evict_for_one_more(&self, agents: &mut HashMap<AgentKey, Arc<OnceCell<Mutex<AgentLive>>>>) {
        if agents.len() < self.max_agents {
            return;
        }
        let mut by_age: Vec<(i64, AgentKey)> = agents
            .iter()
            .filter_map(|(k, cell)| cell.get().map(|live| (lock(live).newest_ms, k.clone())))
            .collect();
        by_age.sort_unstable();
        let drop = (self.max_agents / 10).max(agents.len() + 1 - self.max_agents);
        for (_, k) in by_age.into_iter().take(drop) {
            agents.remove(&k);
            self.metrics.forget_trust_score(&k.0, &k.1);
        }
    }

    /// The agent's state, rebuilt from the store on first touch. Concurrent first touches
    /// share one rebuild; a failed rebuild is not cached, so the next touch tries again.
    async fn slot(
        &self,
        tenant: &str,
        agent: &str,
    ) -> Result<Arc<OnceCell<Mutex<AgentLive>>>, StoreError> {
        let cell = {
            let mut agents = lock(&self.agents);
            let k = key(tenant, agent);
            if !agents.contains_key(&k) {
                self.evict_for_one_more(&mut agents);
            }
            agents.entry(k).or_default().clone()
        };
        cell.get_or_try_init(|| async { self.rebuild(tenant, agent).await.map(Mutex::new) })
            .await?;
        Ok(cell)
    }

    async fn rebuild(&self, tenant: &str, agent: &str) -> Result<AgentLive, StoreError> {
        let store = &self.store;
        let now = now_ms();
        let since =
            now - (self.params.half_life_hours * REBUILD_LOOKBACK_HALF_LIVES * 3_600_000.0) as i64;
        let mut decisions = store
            .recent_decisions(tenant, agent, REBUILD_MAX_RECORDS)
            .await?;
        let mut events = store
            .recent_events(tenant, agent, REBUILD_MAX_RECORDS)
            .await?;
        let last_alert = store.alerts(tenant, Some(agent), 1).await?;
        // The watermarks cover every stored record, even those too old to fold in.
        let decision_watermark = decisions.iter().map(|(_, i)| *i).max();
        let event_watermark = events.iter().map(|(_, i)| *i).max();
        decisions.retain(|(d, _)| d.created_at_ms >= since);
        events.retain(|(e, _)| e.created_at_ms >= since);
        // Oldest first, as they happened, so drift detectors learn the baseline in order.
        decisions.reverse();
        events.reverse();
        let mut live = AgentLive {
            event_watermark,
            decision_watermark,
            ..AgentLive::default()
        };
        for (d, _) in &decisions {
            live.trust
                .observe_decision(&decision_sample(d), &self.params);
            live.newest_ms = live.newest_ms.max(d.created_at_ms);
        }
        for (e, _) in &events {
            let sample = event_sample(e);
            live.trust.observe_event(&sample, &self.params);
            // Replaying history only teaches the detectors; alarms were raised at the time.
            let _ = live.drift.observe(&sample, &self.drift_config);
            live.newest_ms = live.newest_ms.max(e.created_at_ms);
        }
        // Resume the SLA state the last alert left, so a restart does not re-announce a
        // breach that is already on record (or miss a recovery).
        if let Some(a) = last_alert.first() {
            live.sla = SlaTracker::resumed(a.kind == BREACH_EVENT);
            live.sla_armed = true;
        }
        live.last = Some(live.trust.summary(0, now, &self.params));
        Ok(live)
    }

    /// Folds freshly committed events into their agents' state. Called after the commit and
    /// before the acknowledgement, so the acknowledged write is already in the score.
    /// A store failure while rebuilding an agent is logged, not returned: the events are
    /// committed, and the next rebuild will include them.
    pub async fn observe_events(
        &self,
        tenant: &str,
        records: &[EventRecord],
        indexes: &[u64],
        team_of: &(dyn Fn(&str) -> Option<String> + Sync),
        received: Instant,
    ) {
        let mut by_agent: HashMap<&str, Vec<(&EventRecord, u64)>> = HashMap::new();
        for (r, i) in records.iter().zip(indexes) {
            by_agent.entry(&r.agent_id).or_default().push((r, *i));
        }
        for (agent, recs) in by_agent {
            let team = team_of(agent);
            self.observe_agent(tenant, agent, team.as_deref(), |live, p, d| {
                let mut signals = Vec::new();
                for (r, index) in &recs {
                    if live.event_watermark.is_some_and(|w| *index <= w) {
                        continue;
                    }
                    let sample = event_sample(r);
                    live.trust.observe_event(&sample, p);
                    signals.extend(live.drift.observe(&sample, d));
                    live.newest_ms = live.newest_ms.max(r.created_at_ms);
                }
                signals
            })
            .await;
        }
        self.metrics
            .trust_freshness
            .observe(received.elapsed().as_secs_f64());
    }

    pub async fn observe_decision(&self, record: &DecisionRecord, index: u64, team: Option<&str>) {
        self.observe_agent(&record.tenant, &record.agent_id, team, |live, p, _| {
            if live.decision_watermark.is_none_or(|w| index > w) {
                live.trust.observe_decision(&decision_sample(record), p);
                live.newest_ms = live.newest_ms.max(record.created_at_ms);
            }
            Vec::new()
        })
        .await;
    }

    async fn observe_agent(
        &self,
        tenant: &str,
        agent: &str,
        team: Option<&str>,
        apply: impl FnOnce(&mut AgentLive, &TrustParams, &DriftConfig) -> Vec<DriftSignal>,
    ) {
        let metrics = &self.metrics;
        let started = Instant::now();
        let cell = match self.slot(tenant, agent).await {
            Ok(cell) => cell,
            Err(e) => {
                tracing::warn!(%tenant, %agent, error = %e,
                    "cannot rebuild the agent's trust state; its live score will catch up at the next rebuild");
                metrics.trust_rebuild_failures.inc();
                return;
            }
        };
        let Some(state) = cell.get() else { return };
        let now = now_ms();
        let rule = self.sla.resolve(tenant, team, agent);
        let (signals, score, transition) = {
            let mut live = lock(state);
            let signals = apply(&mut live, &self.params, &self.drift_config);
            // The summary (no strings, closed-form where possible) on every batch; the full,
            // explained score only when an alert needs it.
            let score = live.trust.summary(0, now, &self.params);
            live.sla_armed |= arms_sla(&score, rule.threshold);
            let transition = if live.sla_armed {
                live.sla.update(score.score, &rule)
            } else {
                None
            };
            let transition =
                transition.map(|t| (t, live.trust.score(0, now, &self.params).explanation));
            live.last = Some(score.clone());
            (signals, score, transition)
        };
        metrics.set_trust_score(tenant, agent, score.score);
        metrics
            .trust_scoring
            .observe(started.elapsed().as_secs_f64());
        let k = key(tenant, agent);
        {
            let mut pending = lock(&self.pending);
            pending.history.insert(k.clone());
            pending.notify.insert(k);
            for s in signals {
                metrics.record_drift_signal(s.metric.as_str());
                pending.signals.push(s.of(new_id("sig"), tenant, agent));
            }
            if let Some((t, explanation)) = transition {
                let kind = t.event_name();
                let threshold = match t {
                    SlaTransition::Breach { threshold, .. }
                    | SlaTransition::Recovery { threshold, .. } => threshold,
                };
                metrics.record_sla_alert(kind);
                let alert = StoredAlert {
                    id: new_id("alr"),
                    tenant: tenant.to_string(),
                    agent_id: agent.to_string(),
                    kind: kind.to_string(),
                    score: score.score,
                    threshold,
                    scope: rule.scope.to_string(),
                    at_ms: now,
                    deliveries: serde_json::json!([]),
                };
                let payload = alert_payload(&alert, &score.components, &explanation);
                pending.alerts.push((alert, payload));
            }
        }
        self.wake.notify_one();
    }

    /// The agent's score now (decayed to this instant), or None if it has no stored records.
    pub async fn score_now(
        &self,
        tenant: &str,
        agent: &str,
        team: Option<&str>,
    ) -> Result<Option<(TrustScore, i64)>, StoreError> {
        let cell = self.slot(tenant, agent).await?;
        Ok(cell
            .get()
            .and_then(|state| self.score_of(&lock(state), tenant, agent, team)))
    }

    /// The agent's score now if it is held in memory, without reading the store: for a page
    /// of many agents, where those not held are shown from their stored score instead.
    pub fn peek_score(
        &self,
        tenant: &str,
        agent: &str,
        team: Option<&str>,
    ) -> Option<(TrustScore, i64)> {
        let cell = lock(&self.agents).get(&key(tenant, agent)).cloned()?;
        let state = cell.get()?;
        self.score_of(&lock(state), tenant, agent, team)
    }

    fn score_of(
        &self,
        live: &AgentLive,
        tenant: &str,
        agent: &str,
        team: Option<&str>,
    ) -> Option<(TrustScore, i64)> {
        if live.event_watermark.is_none()
            && live.decision_watermark.is_none()
            && live.newest_ms == 0
        {
            return None;
        }
        let mut score = live.trust.score(0, now_ms(), &self.params);
        let rule = self.sla.resolve(tenant, team, agent);
        score.sla.threshold = rule.threshold;
        // Once watched, the tracker's state (with its recovery margin) is what alerts said.
        score.sla.breached = if live.sla_armed {
            live.sla.breached()
        } else {
            score.score < rule.threshold
        };
        Some((score, live.newest_ms))
    }

    /// The SLA threshold that applies to an agent.
    pub fn sla_threshold(&self, tenant: &str, agent: &str, team: Option<&str>) -> f64 {
        self.sla.resolve(tenant, team, agent).threshold
    }

    /// Registers a listener for `uri` in `tenant`: `tx` gets the URI on every change. Returns
    /// the id to unsubscribe with.
    pub fn subscribe(&self, tenant: &str, uri: &str, tx: mpsc::UnboundedSender<String>) -> u64 {
        let mut subs = lock(&self.subscribers);
        subs.next_id += 1;
        let id = subs.next_id;
        subs.by_uri
            .entry((tenant.to_string(), uri.to_string()))
            .or_default()
            .push((id, tx));
        id
    }

    pub fn unsubscribe(&self, tenant: &str, uri: &str, id: u64) {
        let mut subs = lock(&self.subscribers);
        if let Some(list) = subs.by_uri.get_mut(&(tenant.to_string(), uri.to_string())) {
            list.retain(|(i, _)| *i != id);
        }
    }

    fn publish(&self, tenant: &str, uri: &str) {
        let mut subs = lock(&self.subscribers);
        if let Some(list) = subs.by_uri.get_mut(&(tenant.to_string(), uri.to_string())) {
            // A closed receiver means its session ended: forget it.
            list.retain(|(_, tx)| tx.send(uri.to_string()).is_ok());
        }
    }

    /// Carries out queued side effects until the process ends: notifications as soon as
    /// possible (coalesced), history once a second, signals and alerts when they appear,
    /// webhooks in their own tasks.
    pub async fn run_flusher(self: Arc<Self>) {
        let mut last_history = Instant::now();
        loop {
            tokio::select! {
                () = self.wake.notified() => {}
                () = tokio::time::sleep(HISTORY_INTERVAL) => {}
            }
            tokio::time::sleep(NOTIFY_COALESCE).await;
            let write_history = last_history.elapsed() >= HISTORY_INTERVAL;
            if write_history {
                last_history = Instant::now();
            }
            if let Err(e) = self.flush_once(write_history).await {
                tracing::warn!(error = %e, "trust flush failed; will retry");
            }
        }
    }

    /// One round of side effects; also used by tests and at shutdown.
    pub async fn flush_once(&self, write_history: bool) -> Result<(), StoreError> {
        let store = &self.store;
        let (history, notify, signals, alerts) = {
            let mut p = lock(&self.pending);
            let history = if write_history {
                std::mem::take(&mut p.history)
            } else {
                HashSet::new()
            };
            (
                history,
                std::mem::take(&mut p.notify),
                std::mem::take(&mut p.signals),
                std::mem::take(&mut p.alerts),
            )
        };
        for (tenant, agent) in &notify {
            self.publish(tenant, &trust_uri(agent));
        }
        let points: Vec<TrustPoint> = history
            .iter()
            .filter_map(|(tenant, agent)| {
                let cell = lock(&self.agents).get(&key(tenant, agent)).cloned()?;
                let state = cell.get()?;
                let live = lock(state);
                let s = live.last.as_ref()?;
                Some(TrustPoint {
                    tenant: tenant.clone(),
                    agent_id: agent.clone(),
                    at_ms: now_ms(),
                    score: s.score,
                    policy_adherence: s.components.policy_adherence,
                    agent_reputation: s.components.agent_reputation,
                    response_integrity: s.components.response_integrity,
                    risk_exposure: s.components.risk_exposure,
                })
            })
            .collect();
        let requeue = |p: &mut Pending, what: &str| {
            tracing::debug!(what, "requeued after a failed flush");
            p.history.extend(history.iter().cloned());
        };
        if let Err(e) = store.insert_trust_points(&points).await {
            requeue(&mut lock(&self.pending), "history");
            return Err(e);
        }
        if let Err(e) = store.insert_drift_signals(&signals).await {
            lock(&self.pending).signals.extend(signals);
            return Err(e);
        }
        let mut alerts = alerts.into_iter();
        while let Some((alert, payload)) = alerts.next() {
            if let Err(e) = store.insert_alert(&alert).await {
                let mut p = lock(&self.pending);
                p.alerts.push((alert, payload));
                p.alerts.extend(alerts);
                return Err(e);
            }
            self.publish(&alert.tenant, ALERTS_URI);
            self.deliver(alert, payload);
        }
        Ok(())
    }

    fn deliver(&self, alert: StoredAlert, payload: serde_json::Value) {
        let (store, metrics) = (self.store.clone(), self.metrics.clone());
        let endpoints: Vec<WebhookEndpoint> = self
            .webhooks
            .iter()
            .filter(|w| w.accepts(&alert.tenant, &alert.kind))
            .cloned()
            .collect();
        if endpoints.is_empty() {
            return;
        }
        let sender = self.sender.clone();
        tokio::spawn(async move {
            let mut outcomes = Vec::new();
            for endpoint in &endpoints {
                let delivery = sender.deliver(endpoint, &payload).await;
                metrics.record_webhook(matches!(
                    delivery.outcome,
                    DeliveryOutcome::Delivered { .. }
                ));
                match serde_json::to_value(&delivery) {
                    Ok(v) => outcomes.push(v),
                    Err(e) => tracing::warn!(error = %e, "cannot serialise a webhook delivery"),
                }
            }
            let outcomes = serde_json::Value::Array(outcomes);
            if let Err(e) = store
                .set_alert_deliveries(&alert.tenant, &alert.id, &outcomes)
                .await
            {
                tracing::warn!(alert = %alert.id, error = %e, "cannot record webhook outcomes");
            }
        });
    }
}

/// An agent's SLA is watched once it has met its threshold or its reputation no longer rests
/// on too little evidence (`sla.provisional` is false). Before that it is unproven, not
/// breaching: the reputation gate keeps every new agent below a typical threshold on purpose,
/// and alerting on each new agent would bury the real breaches. `trust_score` still reports
/// `sla.breached` for it, with `provisional: true`.
fn arms_sla(score: &ScoreSummary, threshold: f64) -> bool {
    score.score >= threshold || !score.sla.provisional
}

/// The body of an SLA webhook and of the alert feed.
fn alert_payload(
    alert: &StoredAlert,
    components: &Components,
    explanation: &[String],
) -> serde_json::Value {
    serde_json::json!({
        "type": alert.kind,
        "alert_id": alert.id,
        "tenant": alert.tenant,
        "agent_id": alert.agent_id,
        "score": alert.score,
        "threshold": alert.threshold,
        "scope": alert.scope,
        "at": rfc3339_ms(alert.at_ms),
        "components": components,
        "explanation": explanation,
    })
}

#[cfg(test)]
#[path = "live_trust_tests.rs"]
mod tests;
