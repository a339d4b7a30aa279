//! The loop end to end on a real SQLite store with a chosen clock: faults in telemetry open an
//! incident, the diagnosis names the cause, a playbook runs (or waits for approval), the
//! verification decides, and every transition is on the ledger.

use std::sync::{Arc, Mutex};

use meshos_healer::{Decision, Healer, HealerConfig, HealerPorts, IncidentData};
use meshos_playbooks::{Library, PlannedStep};
use meshos_store::{Store, StoredSignal, sqlite_url_for_data_dir};
use meshos_types::{EventRecord, LedgerRecord, Outcome, Role, new_id};
use serde_json::{Value, json};

#[derive(Clone, Default)]
struct Ports {
    trust: Arc<Mutex<f64>>,
    deliveries: Arc<Mutex<Vec<(String, String)>>>,
    fail_deliveries: Arc<Mutex<bool>>,
}

impl HealerPorts for Ports {
    async fn trust_score(&self, _tenant: &str, _agent: &str) -> Option<f64> {
        Some(*self.trust.lock().unwrap())
    }
    async fn deliver(
        &self,
        _tenant: &str,
        _incident_id: &str,
        step: &PlannedStep,
        delivery_id: &str,
    ) -> Result<Value, String> {
        if *self.fail_deliveries.lock().unwrap() {
            return Err("receiver answered 503".into());
        }
        self.deliveries
            .lock()
            .unwrap()
            .push((step.action.to_string(), delivery_id.to_string()));
        Ok(json!({"delivered": true}))
    }
    fn policy_version(&self) -> String {
        "sha256:test".into()
    }
}

const T0: i64 = 1_800_000_000_000;

async fn store() -> (Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::connect(&sqlite_url_for_data_dir(dir.path()))
        .await
        .unwrap();
    (store, dir)
}

fn event(tenant: &str, agent: &str, at_ms: i64, outcome: Outcome) -> EventRecord {
    EventRecord {
        id: new_id("evt"),
        tenant: tenant.into(),
        agent_id: agent.into(),
        kind: "llm_call".into(),
        outcome,
        latency_ms: Some(200.0),
        input_tokens: None,
        output_tokens: None,
        cost_usd: Some(0.001),
        model: Some("gpt-4o".into()),
        tool: None,
        region: Some("eu-west-1".into()),
        attributes: json!({}),
        created_at_ms: at_ms,
    }
}

/// Ten agents, one event per agent per second from `from_s` to `to_s` (seconds after T0);
/// `leaky` emits violations with the given share.
async fn traffic(store: &Store, tenant: &str, from_s: i64, to_s: i64, leaky: Option<(&str, f64)>) {
    fleet_traffic(store, tenant, 10, from_s, to_s, leaky).await
}

/// [`traffic`] from a fleet of `agents` agents.
async fn fleet_traffic(
    store: &Store,
    tenant: &str,
    agents: i64,
    from_s: i64,
    to_s: i64,
    leaky: Option<(&str, f64)>,
) {
    let mut batch = Vec::new();
    for s in from_s..to_s {
        for a in 0..agents {
            let agent = format!("agent-{a}");
            let violation = leaky
                .is_some_and(|(l, share)| l == agent && ((s * 7919) % 100) as f64 / 100.0 < share);
            let outcome = if violation {
                Outcome::Violation
            } else {
                Outcome::Ok
            };
            batch.push(event(tenant, &agent, T0 + s * 1000 + a * 10, outcome));
        }
    }
    store.append_events(&batch).await.unwrap();
}

fn healer(store: &Store, ports: &Ports) -> Healer<Ports> {
    Healer::new(
        store.clone(),
        Library::builtin().unwrap(),
        ports.clone(),
        HealerConfig::default(),
    )
}

async fn only_incident(store: &Store, tenant: &str) -> meshos_store::StoredIncident {
    let all = store.incidents(Some(tenant), &[], 10).await.unwrap();
    assert_eq!(all.len(), 1, "{all:#?}");
    all.into_iter().next().unwrap()
}

/// Two minutes of clean traffic, then 30 s in which agent-3 leaks (60 % violations); the
/// healer has not ticked yet. `trust` is what every agent's score reads.
async fn leak_burst(store: &Store, ports: &Ports, trust: f64) -> Healer<Ports> {
    *ports.trust.lock().unwrap() = trust;
    traffic(store, "acme", 0, 120, None).await;
    traffic(store, "acme", 120, 150, Some(("agent-3", 0.6))).await;
    healer(store, ports)
}

/// The leak goes on for 30 s more, with a tick every 6 s.
async fn keep_leaking(store: &Store, h: &mut Healer<Ports>) {
    let mut now = 150;
    for _ in 0..5 {
        traffic(store, "acme", now, now + 6, Some(("agent-3", 0.6))).await;
        now += 6;
        h.tick(T0 + now * 1000).await.unwrap();
    }
}

#[tokio::test]
async fn a_pii_leak_burst_is_redacted_verified_and_resolved_without_a_human() {
    let (store, _dir) = store().await;
    let ports = Ports::default();
    let t = "acme";
    let mut h = leak_burst(&store, &ports, 55.0).await;
    let report = h.tick(T0 + 150_000).await.unwrap();
    assert_eq!(report.opened.len(), 1, "{report:?}");
    let inc = only_incident(&store, t).await;
    assert_eq!(inc.kind, "violation_burst");
    assert_eq!(inc.subject.as_deref(), Some("agent:agent-3"));
    // redact-pii-leak is automatic: the overlay is set and verification is under way.
    assert_eq!(inc.state, "verifying", "{:#?}", inc.data);
    let controls = store.active_controls(Some(t)).await.unwrap();
    assert_eq!(controls.len(), 1);
    assert_eq!(controls[0].kind, "policy_overlay");
    assert_eq!(controls[0].subject, "agent-3/*/redact");

    // The leak stops; verification needs two passing evaluations.
    traffic(&store, t, 150, 160, None).await;
    h.tick(T0 + 155_000).await.unwrap();
    h.tick(T0 + 160_000).await.unwrap();
    let inc = only_incident(&store, t).await;
    assert_eq!(inc.state, "resolved", "{:#?}", inc.data);
    assert_eq!(inc.resolved_at_ms, Some(T0 + 160_000));
    let data = IncidentData::from_json(&inc.data).unwrap();
    assert_eq!(
        data.verification.as_ref().and_then(|v| v.passed),
        Some(true)
    );

    // The whole timeline is on the ledger, in order.
    let timeline = store.incident_transitions(t, &inc.id).await.unwrap();
    let states: Vec<&str> = timeline.iter().map(|(r, _)| r.to_state.as_str()).collect();
    assert_eq!(
        states,
        [
            "open",
            "diagnosed",
            "planned",
            "executing",
            "verifying",
            "resolved"
        ]
    );
    let (last, index) = timeline.last().unwrap();
    let entries = store.ledger_entries(t, *index, index + 1).await.unwrap();
    assert_eq!(
        store.ledger_record(t, &entries[0]).await.unwrap(),
        Some(LedgerRecord::IncidentTransition(last.clone()))
    );
    // Nothing reopens on the next tick (the burst's source is remembered).
    h.tick(T0 + 161_000).await.unwrap();
    assert_eq!(store.incidents(Some(t), &[], 10).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_failed_verification_rolls_back_and_tries_the_next_playbook_then_escalates() {
    let (store, _dir) = store().await;
    let ports = Ports::default();
    let t = "acme";
    let mut h = leak_burst(&store, &ports, 30.0).await;
    h.tick(T0 + 150_000).await.unwrap();
    // The leak goes on: verification fails (failure_limit 3) and the overlay is cleared.
    keep_leaking(&store, &mut h).await;
    let inc = only_incident(&store, t).await;
    let data = IncidentData::from_json(&inc.data).unwrap();
    assert_eq!(
        data.tried_playbooks.first().map(String::as_str),
        Some("redact-pii-leak")
    );
    let states: Vec<String> = store
        .incident_transitions(t, &inc.id)
        .await
        .unwrap()
        .into_iter()
        .map(|(r, _)| r.to_state)
        .collect();
    assert!(states.contains(&"rolled_back".to_string()), "{states:?}");
    // The next candidate (quarantine, which needs an operator) is waiting.
    assert_eq!(inc.state, "awaiting_approval", "{states:?}");
    assert_eq!(
        data.plan.as_ref().map(|p| p.playbook_id.as_str()),
        Some("quarantine-agent")
    );
    assert!(
        store
            .active_controls(Some(t))
            .await
            .unwrap()
            .iter()
            .all(|c| c.kind != "policy_overlay"),
        "the failed overlay was cleared"
    );
}

async fn awaiting_quarantine(store: &Store, ports: &Ports) -> (Healer<Ports>, String, String) {
    let t = "acme";
    let mut h = leak_burst(store, ports, 30.0).await;
    h.tick(T0 + 150_000).await.unwrap();
    keep_leaking(store, &mut h).await;
    let inc = only_incident(store, t).await;
    assert_eq!(inc.state, "awaiting_approval");
    let digest = IncidentData::from_json(&inc.data)
        .unwrap()
        .approval
        .unwrap()
        .digest;
    (h, inc.id, digest)
}

fn decision(approve: bool, digest: &str, role: Role) -> Decision {
    Decision {
        approve,
        digest: digest.into(),
        actor: "tok_operator".into(),
        role,
        note: Some("checked the plan".into()),
    }
}

#[tokio::test]
async fn approvals_are_bound_to_the_plan_digest_and_role_and_start_execution() {
    let (store, _dir) = store().await;
    let ports = Ports::default();
    let (mut h, id, digest) = awaiting_quarantine(&store, &ports).await;
    let now = T0 + 170_000;
    let wrong = h
        .decide("acme", &id, &decision(true, "0000", Role::Operator), now)
        .await
        .unwrap_err();
    assert!(
        wrong.to_string().contains("review the current plan"),
        "{wrong}"
    );
    let auditor = h
        .decide("acme", &id, &decision(true, &digest, Role::Auditor), now)
        .await
        .unwrap_err();
    assert!(
        auditor.to_string().contains("operator approval"),
        "{auditor}"
    );
    let view = h
        .decide("acme", &id, &decision(true, &digest, Role::Operator), now)
        .await
        .unwrap();
    assert_eq!(view.state, "executing");
    let approved = view.timeline.last().unwrap();
    assert_eq!(approved["actor"], "tok_operator");
    assert_eq!(approved["actor_role"], "operator");
    h.tick(now + 1).await.unwrap();
    let controls = store.active_controls(Some("acme")).await.unwrap();
    assert!(
        controls
            .iter()
            .any(|c| c.kind == "agent_quarantine" && c.subject == "agent-3"),
        "{controls:?}"
    );
}

#[tokio::test]
async fn a_denial_or_an_expiry_escalates() {
    let (store, _dir) = store().await;
    let ports = Ports::default();
    let (h, id, digest) = awaiting_quarantine(&store, &ports).await;
    let view = h
        .decide(
            "acme",
            &id,
            &decision(false, &digest, Role::Operator),
            T0 + 170_000,
        )
        .await
        .unwrap();
    assert_eq!(view.state, "escalated");
    assert!(
        view.timeline.last().unwrap()["reason"]
            .as_str()
            .unwrap()
            .contains("denied: checked the plan")
    );

    let (store2, _dir2) = self::store().await;
    let (mut h2, id2, _) = awaiting_quarantine(&store2, &ports).await;
    // Quarantine approvals expire after 900 s.
    h2.tick(T0 + 180_000 + 901_000).await.unwrap();
    let inc = store2.incident("acme", &id2).await.unwrap().unwrap();
    assert_eq!(inc.state, "escalated");
    assert!(
        store2
            .active_controls(Some("acme"))
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn replayed_actions_change_nothing_twice() {
    let (store, _dir) = store().await;
    let ports = Ports::default();
    let t = "acme";
    let mut h = leak_burst(&store, &ports, 55.0).await;
    h.tick(T0 + 150_000).await.unwrap();
    // A second healer (a failover) replays the same incident from the store.
    let mut h2 = healer(&store, &ports);
    h2.tick(T0 + 150_500).await.unwrap();
    assert_eq!(store.active_controls(Some(t)).await.unwrap().len(), 1);
    assert_eq!(store.incidents(Some(t), &[], 10).await.unwrap().len(), 1);
}

/// `n` earlier applications of redact-pii-leak in the last hour (other incidents' runs).
async fn earlier_redactions(store: &Store, n: usize) {
    for i in 0..n {
        store
            .record_heal_action(&meshos_store::StoredHealAction {
                idempotency_key: format!("inc_old{i}:digest:redact-outputs:apply"),
                tenant: "acme".into(),
                incident_id: format!("inc_old{i}"),
                playbook_id: "redact-pii-leak".into(),
                step_id: "redact-outputs".into(),
                action: "policy_overlay".into(),
                params: json!({"agent": format!("agent-{i}"), "effect": "redact"}),
                status: "applied".into(),
                result: json!({}),
                created_at_ms: T0 + 60_000 + i as i64 * 1000,
            })
            .await
            .unwrap();
    }
}

/// The reasons the ledger gives, state by state.
async fn timeline(store: &Store, id: &str) -> Vec<(String, String, Value)> {
    store
        .incident_transitions("acme", id)
        .await
        .unwrap()
        .into_iter()
        .map(|(r, _)| (r.to_state, r.reason, r.inputs))
        .collect()
}

#[tokio::test]
async fn a_rate_limited_playbook_is_passed_over_for_the_next_candidate() {
    let (store, _dir) = store().await;
    let ports = Ports::default();
    // redact-pii-leak allows 20 runs an hour; 19 leave room for one more, 20 do not.
    earlier_redactions(&store, 19).await;
    let mut h = leak_burst(&store, &ports, 30.0).await;
    h.tick(T0 + 150_000).await.unwrap();
    let inc = only_incident(&store, "acme").await;
    let data = IncidentData::from_json(&inc.data).unwrap();
    assert_eq!(data.plan.unwrap().playbook_id, "redact-pii-leak");

    let (store, _dir) = self::store().await;
    earlier_redactions(&store, 20).await;
    let mut h = leak_burst(&store, &ports, 30.0).await;
    h.tick(T0 + 150_000).await.unwrap();
    let inc = only_incident(&store, "acme").await;
    let data = IncidentData::from_json(&inc.data).unwrap();
    // The kill switch is next; it waits for an operator, and the planned step says why the
    // redaction was skipped.
    assert_eq!(inc.state, "awaiting_approval");
    assert_eq!(data.plan.unwrap().playbook_id, "quarantine-agent");
    let steps = timeline(&store, &inc.id).await;
    let (_, _, planned) = steps.iter().find(|(s, _, _)| s == "planned").unwrap();
    assert_eq!(
        planned["refused"],
        json!(["redact-pii-leak: rate limit (20 runs in 3600 s)"])
    );
    assert!(
        store
            .active_controls(Some("acme"))
            .await
            .unwrap()
            .is_empty(),
        "nothing was applied"
    );
}

#[tokio::test]
async fn a_playbook_over_its_blast_radius_is_refused_and_the_incident_escalates() {
    let (store, _dir) = store().await;
    let ports = Ports::default();
    *ports.trust.lock().unwrap() = 30.0;
    // A fleet of five: quarantining one agent is 20 % of it, over quarantine-agent's 10 %.
    earlier_redactions(&store, 20).await;
    fleet_traffic(&store, "acme", 5, 0, 120, None).await;
    fleet_traffic(&store, "acme", 5, 120, 150, Some(("agent-3", 0.6))).await;
    let mut h = healer(&store, &ports);
    h.tick(T0 + 150_000).await.unwrap();
    let inc = only_incident(&store, "acme").await;
    assert_eq!(inc.state, "escalated", "{:#?}", inc.data);
    let steps = timeline(&store, &inc.id).await;
    let (_, reason, _) = steps.last().unwrap();
    assert_eq!(
        reason,
        "every candidate playbook was refused: redact-pii-leak: rate limit (20 runs in 3600 s); \
         quarantine-agent: blast radius (1 of 5 agents)"
    );
    assert!(
        store
            .active_controls(Some("acme"))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(ports.deliveries.lock().unwrap().is_empty());
}

/// Clean traffic for two minutes, then agent-1's cost per call jumps twentyfold; a cost drift
/// alarm fires at 125 s and the spike lasts until `spike_until_s`. Ticks every 3 s up to `to_s`.
async fn cost_spike(store: &Store, h: &mut Healer<Ports>, spike_until_s: i64, to_s: i64) {
    let t = "acme";
    traffic(store, t, 0, 120, None).await;
    let mut signalled = false;
    let mut now = 120;
    while now < to_s {
        let mut batch = Vec::new();
        for s in now..now + 3 {
            for a in 0..10 {
                let mut e = event(
                    t,
                    &format!("agent-{a}"),
                    T0 + s * 1000 + a * 10,
                    Outcome::Ok,
                );
                if a == 1 && s < spike_until_s {
                    e.cost_usd = Some(0.02 + (s % 3) as f64 * 0.001);
                }
                batch.push(e);
            }
        }
        store.append_events(&batch).await.unwrap();
        now += 3;
        if !signalled && now >= 126 {
            signalled = true;
            store
                .insert_drift_signals(&[StoredSignal {
                    id: new_id("sig"),
                    tenant: t.into(),
                    agent_id: "agent-1".into(),
                    metric: "cost_usd".into(),
                    detector: "cusum".into(),
                    direction: "up".into(),
                    baseline_mean: 0.001,
                    baseline_sd: 0.0001,
                    observed_mean: 0.02,
                    shift_sigmas: 190.0,
                    samples: 5,
                    explanation: "cost per call up".into(),
                    at_ms: T0 + 125_000,
                    consumed_at_ms: None,
                }])
                .await
                .unwrap();
        }
        h.tick(T0 + now * 1000).await.unwrap();
    }
}

#[tokio::test]
async fn a_trust_only_verification_passes_only_once_the_triggering_metric_is_back() {
    // The trust score never fell (80 throughout): before, cap-cost-spike's `trust_score_at_least`
    // passed on its first evaluation whatever the spend did.
    let (store, _dir) = store().await;
    let ports = Ports::default();
    *ports.trust.lock().unwrap() = 80.0;
    let mut h = healer(&store, &ports);
    cost_spike(&store, &mut h, 400, 200).await;
    let inc = only_incident(&store, "acme").await;
    let data = IncidentData::from_json(&inc.data).unwrap();
    assert_eq!(
        data.tried_playbooks.first().map(String::as_str),
        Some("cap-cost-spike"),
        "{:#?}",
        inc.data
    );
    assert_ne!(inc.state, "resolved", "{:#?}", inc.data);
    // The cap's verification failed on the spend and the cap was rolled back.
    let transitions = store.incident_transitions("acme", &inc.id).await.unwrap();
    let (rolled_back, _) = transitions
        .iter()
        .find(|(r, _)| r.to_state == "rolled_back")
        .unwrap_or_else(|| panic!("the cap was not rolled back: {transitions:#?}"));
    let verification = &rolled_back.inputs;
    assert_eq!(verification["recovery"]["metric"], "cost");
    let baseline = verification["recovery"]["baseline"].as_f64().unwrap();
    assert!((baseline - 0.001).abs() < 1e-4, "{verification:#?}");
    let observations = verification["observations"].as_array().unwrap();
    assert!(
        observations.iter().all(|o| o["pass"] != json!(true)),
        "{observations:#?}"
    );
    assert!(
        !store
            .active_controls(Some("acme"))
            .await
            .unwrap()
            .iter()
            .any(|c| c.kind == "budget_cap")
    );

    // Same fault, but the cap works: spend is back to normal once the cap is on.
    let (store, _dir) = self::store().await;
    let mut h = healer(&store, &ports);
    cost_spike(&store, &mut h, 140, 180).await;
    let inc = only_incident(&store, "acme").await;
    assert_eq!(inc.state, "resolved", "{:#?}", inc.data);
    let v = IncidentData::from_json(&inc.data)
        .unwrap()
        .verification
        .unwrap();
    let counted: Vec<&Value> = v
        .observations
        .iter()
        .filter(|o| o.get("pass").is_some())
        .collect();
    assert!(counted.len() >= 2, "{:#?}", v.observations);
    assert!(counted.iter().all(|o| o["events"].as_u64() >= Some(5)));
}
