//! The healer on a small heterogeneous fleet, on a real SQLite store with a chosen clock: agents
//! with their own tools, models and regions, noisy latency and token counts, and drift alarms
//! as the server's detectors would raise them. Pins what issue 14 asks: a quiet fleet opens
//! nothing, a model regression is not blamed on its region, verification without data does not
//! pass, a healthy agent is never capped, and a control is released on evidence.

use std::sync::{Arc, Mutex};

use meshos_healer::{Healer, HealerConfig, HealerPorts, IncidentData, ReleasePolicy};
use meshos_playbooks::{Library, PlannedStep};
use meshos_store::{Store, StoredIncident, StoredSignal, sqlite_url_for_data_dir};
use meshos_types::{EventRecord, Outcome, new_id};
use serde_json::{Value, json};

#[derive(Clone)]
struct Ports {
    trust: Arc<Mutex<f64>>,
}

impl HealerPorts for Ports {
    async fn trust_score(&self, _tenant: &str, _agent: &str) -> Option<f64> {
        Some(*self.trust.lock().unwrap())
    }
    async fn deliver(
        &self,
        _tenant: &str,
        _incident_id: &str,
        _step: &PlannedStep,
        _delivery_id: &str,
    ) -> Result<Value, String> {
        Ok(json!({"delivered": true}))
    }
    fn policy_version(&self) -> String {
        "sha256:test".into()
    }
}

const T0: i64 = 1_800_000_000_000;
const TENANT: &str = "fleet";

/// (agent, tool, model, region): the new model runs in two regions, each region hosts several
/// models and tools, and every tool is used with several models.
const AGENTS: [(&str, &str, &str, &str); 8] = [
    ("a1", "search", "gpt-new", "eu"),
    ("a2", "crm", "gpt-new", "us"),
    ("a3", "search", "claude", "eu"),
    ("a4", "crm", "claude", "eu"),
    ("a5", "kb", "gpt-new", "eu"),
    ("a6", "kb", "llama", "us"),
    ("a7", "search", "llama", "us"),
    ("a8", "crm", "llama", "eu"),
];

/// What the world does to a call: (latency factor, cost factor).
type World = dyn Fn(&str, &str, &str, &str, i64) -> (f64, f64);

/// A deterministic pseudo-random value in [0, 1) per (second, agent, salt).
fn noise(s: i64, a: usize, salt: i64) -> f64 {
    let x = (s * 7919 + a as i64 * 104_729 + salt * 1_299_709) as u64;
    let x = x
        .wrapping_mul(6_364_136_223_846_793_005)
        .wrapping_add(1_442_695_040_888_963_407);
    (x >> 11) as f64 / (1u64 << 53) as f64
}

/// Agent `i`'s call at second `s`, with noisy latency (×0.7-1.3) and tokens (600-1800), the
/// world's factors applied.
fn call(s: i64, i: usize, lat_f: f64, cost_f: f64) -> EventRecord {
    let (agent, tool, model, region) = AGENTS[i];
    let tokens = 600 + (noise(s, i, 1) * 1200.0) as i64;
    EventRecord {
        id: new_id("evt"),
        tenant: TENANT.into(),
        agent_id: agent.to_string(),
        kind: "tool_call".into(),
        outcome: Outcome::Ok,
        latency_ms: Some(250.0 * (0.7 + 0.6 * noise(s, i, 2)) * lat_f),
        input_tokens: Some(tokens),
        output_tokens: Some(0),
        cost_usd: Some(tokens as f64 * 2e-6 * cost_f),
        model: Some(model.to_string()),
        tool: Some(tool.to_string()),
        region: Some(region.to_string()),
        attributes: json!({}),
        created_at_ms: T0 + s * 1000 + i as i64 * 7,
    }
}

/// One event per agent per second from `from_s` to `to_s`, shaped by `world`.
async fn traffic(store: &Store, from_s: i64, to_s: i64, world: &World) {
    let mut batch = Vec::new();
    for s in from_s..to_s {
        for (i, (agent, tool, model, region)) in AGENTS.iter().enumerate() {
            let (lat_f, cost_f) = world(agent, tool, model, region, s);
            batch.push(call(s, i, lat_f, cost_f));
        }
    }
    store.append_events(&batch).await.unwrap();
}

fn healthy(_: &str, _: &str, _: &str, _: &str, _: i64) -> (f64, f64) {
    (1.0, 1.0)
}

async fn signal(store: &Store, agent: &str, metric: &str, direction: &str, at_s: i64, sigmas: f64) {
    store
        .insert_drift_signals(&[StoredSignal {
            id: new_id("sig"),
            tenant: TENANT.into(),
            agent_id: agent.into(),
            metric: metric.into(),
            detector: "cusum".into(),
            direction: direction.into(),
            baseline_mean: 1.0,
            baseline_sd: 0.1,
            observed_mean: 1.0,
            shift_sigmas: sigmas,
            samples: 5,
            explanation: format!("{metric} {direction}"),
            at_ms: T0 + at_s * 1000,
            consumed_at_ms: None,
        }])
        .await
        .unwrap();
}

async fn setup() -> (Store, tempfile::TempDir, Healer<Ports>) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::connect(&sqlite_url_for_data_dir(dir.path()))
        .await
        .unwrap();
    let ports = Ports {
        trust: Arc::new(Mutex::new(90.0)),
    };
    let config = HealerConfig {
        release: ReleasePolicy {
            probation_ms: 20_000,
            canary_share: 0.5,
            canary_ms: 10_000,
            canary_min_events: 5,
        },
        ..HealerConfig::default()
    };
    let healer = Healer::new(store.clone(), Library::builtin().unwrap(), ports, config);
    (store, dir, healer)
}

/// Runs the fleet from `from_s` to `to_s`, a tick a second.
async fn run(store: &Store, h: &mut Healer<Ports>, from_s: i64, to_s: i64, world: &World) {
    for s in from_s..to_s {
        traffic(store, s, s + 1, world).await;
        h.tick(T0 + (s + 1) * 1000).await.unwrap();
    }
}

/// Whether a tool is revoked, and whether some control is on canary (lets a share through).
async fn revocation(store: &Store) -> (bool, bool) {
    let controls = store.active_controls(Some(TENANT)).await.unwrap();
    (
        controls.iter().any(|c| c.kind == "tool_revoked"),
        controls
            .iter()
            .any(|c| c.spec.get("canary_share").is_some()),
    )
}

async fn incidents(store: &Store) -> Vec<StoredIncident> {
    store.incidents(Some(TENANT), &[], 100).await.unwrap()
}

fn acted_on(list: &[StoredIncident]) -> Vec<&StoredIncident> {
    list.iter().filter(|i| i.state != "observed").collect()
}

#[tokio::test]
async fn a_quiet_fleet_opens_nothing_whatever_its_detectors_say() {
    let (store, _dir, mut h) = setup().await;
    run(&store, &mut h, 0, 120, &healthy).await;
    // The detectors' false alarms on noise, both directions, every metric, as a fleet of
    // detectors raises them: none is a fault.
    for (i, (agent, ..)) in AGENTS.iter().enumerate() {
        let at = 121 + i as i64 * 3;
        signal(
            &store,
            agent,
            "token_use",
            if i % 2 == 0 { "up" } else { "down" },
            at,
            1.6,
        )
        .await;
        signal(&store, agent, "latency", "up", at + 1, 2.0).await;
        signal(&store, agent, "cost_per_1k_tokens", "down", at + 1, 1.2).await;
        signal(&store, agent, "error_rate", "up", at + 2, 1.5).await;
    }
    run(&store, &mut h, 120, 200, &healthy).await;
    let all = incidents(&store).await;
    assert!(all.is_empty(), "{:#?}", all);
    assert!(
        store
            .active_controls(Some(TENANT))
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn a_model_regression_is_blamed_on_the_model_not_the_region_it_runs_in() {
    let (store, _dir, mut h) = setup().await;
    run(&store, &mut h, 0, 120, &healthy).await;
    let regressed = |_: &str, _: &str, model: &str, _: &str, s: i64| {
        (
            if model == "gpt-new" && s >= 120 {
                2.5
            } else {
                1.0
            },
            1.0,
        )
    };
    run(&store, &mut h, 120, 124, &regressed).await;
    // a1 runs the new model in the eu, next to other models and tools that stay fast.
    signal(&store, "a1", "latency", "up", 123, 4.0).await;
    run(&store, &mut h, 124, 140, &regressed).await;
    let all = incidents(&store).await;
    let acted = acted_on(&all);
    assert_eq!(acted.len(), 1, "{all:#?}");
    let inc = acted[0];
    assert_eq!(
        inc.subject.as_deref(),
        Some("model:gpt-new"),
        "{:#?}",
        inc.data
    );
    let data = IncidentData::from_json(&inc.data).unwrap();
    let diagnosis = data.diagnosis.unwrap();
    assert!(diagnosis.confident, "{}", diagnosis.note);
    // The evidence says why not the region: its other models did not move.
    let region = diagnosis
        .evidence
        .iter()
        .find(|c| c.entity == "region:eu")
        .expect("the region was a candidate");
    assert!(!region.unaffected.is_empty(), "{region:#?}");
    assert_eq!(data.affected_agents, ["a1", "a2", "a5"]);
    assert_eq!(
        data.tried_playbooks.first().map(String::as_str),
        Some("rollback-model-version")
    );
    // The pin is the only control, and it is on the model.
    let controls = store.active_controls(Some(TENANT)).await.unwrap();
    assert_eq!(controls.len(), 1, "{controls:?}");
    assert_eq!(controls[0].kind, "model_pin");
    assert_eq!(controls[0].subject, "gpt-new");
}

#[tokio::test]
async fn a_cost_runaway_caps_only_its_agent_and_resolves_with_the_cap_alone() {
    let (store, _dir, mut h) = setup().await;
    run(&store, &mut h, 0, 120, &healthy).await;
    // a6 starts spending 40x per call. Once capped it is refused, reports each refusal and
    // backs off (one attempt every 4 s): the cap holds the spend.
    let runaway = |agent: &str, _: &str, _: &str, _: &str, s: i64| {
        (1.0, if agent == "a6" && s >= 120 { 40.0 } else { 1.0 })
    };
    run(&store, &mut h, 120, 123, &runaway).await;
    signal(&store, "a6", "cost_per_1k_tokens", "up", 122, 9.0).await;
    // Meanwhile a healthy agent's tokens wobble and its detector fires.
    signal(&store, "a3", "token_use", "up", 122, 1.8).await;
    let a6 = AGENTS.iter().position(|a| a.0 == "a6").unwrap();
    for s in 123..220 {
        let caps = store.active_controls(Some(TENANT)).await.unwrap();
        let capped = caps.iter().any(|c| c.kind == "budget_cap");
        let mut events: Vec<EventRecord> = AGENTS
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != a6 || !capped)
            .map(|(i, (agent, tool, model, region))| {
                let (lat_f, cost_f) = runaway(agent, tool, model, region, s);
                call(s, i, lat_f, cost_f)
            })
            .collect();
        if capped && s % 4 == 0 {
            let mut refused = call(s, a6, 1.0, 1.0);
            refused.kind = "action_refused".into();
            (refused.latency_ms, refused.cost_usd) = (None, None);
            (refused.tool, refused.model, refused.region) = (None, None, None);
            (refused.input_tokens, refused.output_tokens) = (None, None);
            events.push(refused);
        }
        store.append_events(&events).await.unwrap();
        h.tick(T0 + (s + 1) * 1000).await.unwrap();
    }
    let all = incidents(&store).await;
    let acted = acted_on(&all);
    assert_eq!(acted.len(), 1, "{all:#?}");
    let inc = acted[0];
    assert_eq!(inc.subject.as_deref(), Some("agent:a6"));
    assert_eq!(inc.state, "resolved", "{:#?}", inc.data);
    let data = IncidentData::from_json(&inc.data).unwrap();
    assert_eq!(data.tried_playbooks, ["cap-cost-spike"], "no quarantine");
    let plan = data.plan.unwrap();
    let cap = plan.steps[0].params["max_cost_usd_per_day"]
        .as_f64()
        .unwrap();
    assert!(
        cap > 0.0 && cap < 1.0,
        "a cap near today's spend, not a flat $5: {cap}"
    );
    // No control on anyone else, ever.
    let touched: Vec<String> = store
        .active_controls(Some(TENANT))
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.subject)
        .collect();
    assert!(touched.iter().all(|s| s == "agent:a6"), "{touched:?}");
}

#[tokio::test]
async fn verification_without_data_does_not_pass_and_a_canary_decides() {
    let (store, _dir, mut h) = setup().await;
    run(&store, &mut h, 0, 120, &healthy).await;
    // The search tool goes down until second 200; once it is revoked nobody calls it, and its
    // users go quiet (no fallback in this test): there is nothing to verify on.
    let outage = |_: &str, tool: &str, _: &str, _: &str, s: i64| {
        let down = tool == "search" && (120..200).contains(&s);
        (if down { 12.0 } else { 1.0 }, 1.0)
    };
    run(&store, &mut h, 120, 123, &outage).await;
    signal(&store, "a3", "latency", "up", 122, 8.0).await;
    // One second of traffic: users of a revoked tool send nothing, except through a canary.
    let second = |s: i64, revoked: bool, on_canary: bool| -> Vec<EventRecord> {
        AGENTS
            .iter()
            .enumerate()
            .filter(|(_, (_, tool, ..))| *tool != "search" || !revoked || on_canary)
            .map(|(i, (agent, tool, model, region))| {
                call(s, i, outage(agent, tool, model, region, s).0, 1.0)
            })
            .collect()
    };
    let mut during_outage = None;
    for s in 123..320 {
        let (revoked, on_canary) = revocation(&store).await;
        store
            .append_events(&second(s, revoked, on_canary))
            .await
            .unwrap();
        h.tick(T0 + (s + 1) * 1000).await.unwrap();
        if s == 199 {
            during_outage = acted_on(&incidents(&store).await)
                .first()
                .map(|i| (*i).clone());
        }
    }
    // While the tool was down: never resolved on silence; the canary let some calls through,
    // they were still slow, so the revocation held in full and waited to look again.
    let inc = during_outage.expect("an incident during the outage");
    assert_eq!(
        inc.subject.as_deref(),
        Some("tool:search"),
        "{:#?}",
        inc.data
    );
    assert_eq!(inc.state, "verifying", "{:#?}", inc.data);
    let v = IncidentData::from_json(&inc.data)
        .unwrap()
        .verification
        .unwrap();
    assert!(v.canary_failures >= 1, "{v:#?}");
    assert_ne!(v.passed, Some(true));
    // Once the tool is back, a later canary shows it: resolved, and the revocation released.
    let all = incidents(&store).await;
    let acted = acted_on(&all);
    assert_eq!(acted.len(), 1, "{all:#?}");
    assert_eq!(acted[0].state, "resolved", "{:#?}", acted[0].data);
    assert!(
        store
            .active_controls(Some(TENANT))
            .await
            .unwrap()
            .is_empty()
    );
}

/// A canary on an intermittent fault: the tool stays down, but right after the canary opens
/// a few seconds of its calls happen to be fast. The newest few events alone would pass twice
/// and resolve an incident whose fault is still there; the canary round as a whole does not.
#[tokio::test]
async fn a_clean_streak_on_canary_traffic_does_not_resolve_a_fault_that_is_still_there() {
    let (store, _dir, mut h) = setup().await;
    run(&store, &mut h, 0, 120, &healthy).await;
    let slow = |tool: &str, s: i64, clean_from: Option<i64>| -> f64 {
        let lucky = clean_from.is_some_and(|c| (c + 1..c + 6).contains(&s));
        if tool == "search" && (120..400).contains(&s) && !lucky {
            12.0
        } else {
            1.0
        }
    };
    for s in 120..123 {
        let batch: Vec<EventRecord> = AGENTS
            .iter()
            .enumerate()
            .map(|(i, (_, tool, ..))| call(s, i, slow(tool, s, None), 1.0))
            .collect();
        store.append_events(&batch).await.unwrap();
        h.tick(T0 + (s + 1) * 1000).await.unwrap();
    }
    signal(&store, "a3", "latency", "up", 122, 8.0).await;
    let mut first_canary: Option<i64> = None;
    let mut before_recovery = None;
    for s in 123..620 {
        let (revoked, on_canary) = revocation(&store).await;
        if on_canary && first_canary.is_none() {
            first_canary = Some(s);
        }
        let batch: Vec<EventRecord> = AGENTS
            .iter()
            .enumerate()
            .filter(|(_, (_, tool, ..))| *tool != "search" || !revoked || on_canary)
            .map(|(i, (_, tool, ..))| call(s, i, slow(tool, s, first_canary), 1.0))
            .collect();
        store.append_events(&batch).await.unwrap();
        h.tick(T0 + (s + 1) * 1000).await.unwrap();
        if s == 399 {
            before_recovery = acted_on(&incidents(&store).await)
                .first()
                .map(|i| (*i).clone());
        }
    }
    assert!(first_canary.is_some_and(|c| c < 390), "{first_canary:?}");
    let inc = before_recovery.expect("an incident while the tool was down");
    assert_eq!(
        inc.subject.as_deref(),
        Some("tool:search"),
        "{:#?}",
        inc.data
    );
    assert_eq!(inc.state, "verifying", "{:#?}", inc.data);
    // Once the tool is back for good, a later canary resolves it.
    let all = incidents(&store).await;
    let acted = acted_on(&all);
    assert_eq!(acted.len(), 1, "{all:#?}");
    assert_eq!(acted[0].state, "resolved", "{:#?}", acted[0].data);
}

#[tokio::test]
async fn a_control_is_released_on_evidence_after_probation() {
    let (store, _dir, mut h) = setup().await;
    run(&store, &mut h, 0, 120, &healthy).await;
    // The eu region degrades for 40 s; agents there are moved (simulated: while the region is
    // avoided their calls are fast again), then the region recovers.
    let avoided = Arc::new(Mutex::new(false));
    let a = avoided.clone();
    let degraded = move |_: &str, _: &str, _: &str, region: &str, s: i64| {
        let bad = region == "eu" && (120..160).contains(&s) && !*a.lock().unwrap();
        (if bad { 6.0 } else { 1.0 }, 1.0)
    };
    run(&store, &mut h, 120, 123, &degraded).await;
    signal(&store, "a4", "latency", "up", 122, 7.0).await;
    for s in 123..260 {
        let controls = store.active_controls(Some(TENANT)).await.unwrap();
        *avoided.lock().unwrap() = controls
            .iter()
            .any(|c| c.kind == "region_avoid" && c.spec.get("canary_share").is_none());
        traffic(&store, s, s + 1, &degraded).await;
        h.tick(T0 + (s + 1) * 1000).await.unwrap();
    }
    let all = incidents(&store).await;
    let acted = acted_on(&all);
    assert_eq!(acted.len(), 1, "{all:#?}");
    let inc = acted[0];
    assert_eq!(inc.subject.as_deref(), Some("region:eu"), "{:#?}", inc.data);
    assert_eq!(inc.state, "resolved", "{:#?}", inc.data);
    // Released: no control left, and the release is on the ledger.
    assert!(
        store
            .active_controls(Some(TENANT))
            .await
            .unwrap()
            .is_empty()
    );
    let timeline = store.incident_transitions(TENANT, &inc.id).await.unwrap();
    let reasons: Vec<&str> = timeline.iter().map(|(r, _)| r.reason.as_str()).collect();
    assert!(
        reasons.iter().any(|r| r.starts_with("canary:")),
        "{reasons:#?}"
    );
    assert!(
        reasons
            .iter()
            .any(|r| r.starts_with("released on evidence")),
        "{reasons:#?}"
    );
}
