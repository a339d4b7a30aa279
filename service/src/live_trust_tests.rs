//! The live trust runtime against a real SQLite file and a real local webhook receiver:
//! rebuilds count each record once, SLA transitions become stored alerts, signed webhooks and
//! notifications, and drift signals reach the store.

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::HeaderMap;
use meshos_trust::sla::{SlaPolicy, SlaRule};
use meshos_types::{Outcome, Principal, Role};

use crate::live_trust::{ALERTS_URI, trust_uri};
use crate::mesh::tests::{mesh, mesh_with_trust, test_trust_setup};
use crate::webhook::{WebhookEndpoint, WebhookSecret, verify_signature};
use crate::{EventInput, IngestDoor, Mesh};

fn operator(tenant: &str) -> Principal {
    Principal {
        token_id: "tok".into(),
        tenant: tenant.into(),
        role: Role::Operator,
        agent_id: None,
    }
}

fn events(agent: &str, n: usize, outcome: Outcome, latency_ms: f64) -> Vec<EventInput> {
    (0..n)
        .map(|_| {
            serde_json::from_value(serde_json::json!({
                "agent_id": agent, "kind": "tool_call", "outcome": outcome, "latency_ms": latency_ms
            }))
            .unwrap()
        })
        .collect()
}

/// A Mesh whose live runtime has the given SLA rules and webhooks, on a fresh SQLite file.
async fn mesh_with(
    dir: &std::path::Path,
    sla: SlaPolicy,
    webhooks: Vec<WebhookEndpoint>,
) -> Arc<Mesh> {
    mesh_with_trust(dir, test_trust_setup(sla, webhooks)).await
}

#[tokio::test]
async fn a_restart_rebuilds_the_score_without_counting_anything_twice() {
    let dir = tempfile::tempdir().unwrap();
    let p = operator("t");
    let before = {
        let m = mesh(dir.path()).await;
        m.record_events(&p, events("a", 30, Outcome::Ok, 20.0), IngestDoor::Rest)
            .await
            .unwrap();
        m.record_events(&p, events("a", 3, Outcome::Error, 20.0), IngestDoor::Rest)
            .await
            .unwrap();
        m.trust_score(&p, "a").await.unwrap()
    };
    // A new process: the first ingest for the agent rebuilds from the store, then observes
    // its own batch, which the rebuild already saw (it was committed first).
    let m = mesh(dir.path()).await;
    m.record_events(
        &p,
        events("a", 1, Outcome::Violation, 20.0),
        IngestDoor::Rest,
    )
    .await
    .unwrap();
    let after = m.trust_score(&p, "a").await.unwrap();
    assert_eq!(after.basis.events, 34, "{:?}", after.basis);
    assert_eq!(after.basis.violation_events, 1);
    assert_eq!(after.basis.error_events, 3);
    assert!(after.score < before.score);
    // A read-only rebuild (a third process) agrees with the live one.
    let fresh = mesh(dir.path()).await;
    let rebuilt = fresh.trust_score(&p, "a").await.unwrap();
    assert_eq!(rebuilt.basis, after.basis);
    assert!(
        (rebuilt.score - after.score).abs() < 0.5,
        "{} vs {}",
        rebuilt.score,
        after.score
    );
}

#[derive(Clone, Default)]
struct Received(Arc<Mutex<Vec<(HeaderMap, Bytes)>>>);

/// A real HTTP server on loopback that records what it is sent.
async fn receiver() -> (String, Received) {
    let got = Received::default();
    let sink = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let sink = sink.clone();
            async move {
                sink.0.lock().unwrap().push((headers, body));
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/hook"), got)
}

#[tokio::test]
async fn a_breach_is_stored_signed_posted_and_announced_then_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let (url, got) = receiver().await;
    let secret = b"test-secret".to_vec();
    let hook = WebhookEndpoint {
        url: url.parse().unwrap(),
        secret: WebhookSecret::new(secret.clone()),
        tenant: Some("t".into()),
        events: None,
    };
    let rule = SlaRule {
        tenant: "t".into(),
        team: None,
        agent: Some("a".into()),
        threshold: 60.0,
        recovery_margin: None,
    };
    let m = mesh_with(
        dir.path(),
        SlaPolicy::new(70.0, vec![rule]).unwrap(),
        vec![hook],
    )
    .await;
    let p = operator("t");
    let (tx, mut agent_updates) = tokio::sync::mpsc::unbounded_channel();
    m.live.subscribe("t", &trust_uri("a"), tx);
    let (tx, mut alert_updates) = tokio::sync::mpsc::unbounded_channel();
    m.live.subscribe("t", ALERTS_URI, tx);

    m.record_events(&p, events("a", 60, Outcome::Ok, 20.0), IngestDoor::Rest)
        .await
        .unwrap();
    let ok = m.trust_score(&p, "a").await.unwrap();
    assert!(!ok.sla.breached && ok.sla.threshold == 60.0, "{:?}", ok.sla);
    m.record_events(
        &p,
        events("a", 40, Outcome::Violation, 20.0),
        IngestDoor::Rest,
    )
    .await
    .unwrap();
    let bad = m.trust_score(&p, "a").await.unwrap();
    assert!(bad.sla.breached, "{} {:?}", bad.score, bad.sla);

    m.live.flush_once(true).await.unwrap();
    assert_eq!(
        agent_updates.recv().await.as_deref(),
        Some("trust://agents/a")
    );
    assert_eq!(alert_updates.recv().await.as_deref(), Some(ALERTS_URI));
    let alerts = m.store.alerts("t", Some("a"), 10).await.unwrap();
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].kind, "sla.breach");
    assert_eq!(alerts[0].threshold, 60.0);
    assert_eq!(alerts[0].scope, "agent a of tenant t");

    // The webhook arrives signed, and its outcome is written back to the alert.
    let mut delivered = None;
    for _ in 0..200 {
        if let Some(d) = got.0.lock().unwrap().first().cloned() {
            delivered = Some(d);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let (headers, body) = delivered.expect("no webhook arrived");
    let header = |n: &str| headers.get(n).unwrap().to_str().unwrap().to_string();
    assert!(verify_signature(
        &secret,
        &header("x-meshos-timestamp"),
        &body,
        &header("x-meshos-signature")
    ));
    let payload: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(payload["type"], "sla.breach");
    assert_eq!(payload["agent_id"], "a");
    for _ in 0..200 {
        let stored = m.store.alerts("t", Some("a"), 1).await.unwrap();
        if stored[0]
            .deliveries
            .as_array()
            .is_some_and(|d| !d.is_empty())
        {
            assert_eq!(stored[0].deliveries[0]["outcome"]["result"], "delivered");
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }

    // No second breach while it stays low; a recovery once it climbs back.
    m.record_events(
        &p,
        events("a", 5, Outcome::Violation, 20.0),
        IngestDoor::Rest,
    )
    .await
    .unwrap();
    for _ in 0..20 {
        m.record_events(&p, events("a", 100, Outcome::Ok, 20.0), IngestDoor::Rest)
            .await
            .unwrap();
    }
    m.live.flush_once(true).await.unwrap();
    let kinds: Vec<String> = m
        .store
        .alerts("t", Some("a"), 10)
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.kind)
        .collect();
    assert_eq!(kinds, vec!["sla.recovery", "sla.breach"]);
    assert!(!m.trust_score(&p, "a").await.unwrap().sla.breached);
}

#[tokio::test]
async fn a_new_agent_below_threshold_is_provisional_not_alerted() {
    let dir = tempfile::tempdir().unwrap();
    let m = mesh(dir.path()).await;
    let p = operator("t");
    m.record_events(&p, events("new", 2, Outcome::Ok, 20.0), IngestDoor::Rest)
        .await
        .unwrap();
    let ts = m.trust_score(&p, "new").await.unwrap();
    assert!(ts.sla.breached && ts.sla.provisional, "{ts:?}");
    m.live.flush_once(true).await.unwrap();
    assert!(m.store.alerts("t", None, 10).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_latency_shift_becomes_a_stored_drift_signal() {
    let dir = tempfile::tempdir().unwrap();
    let m = mesh(dir.path()).await;
    let p = operator("t");
    // A steady baseline with some noise, then latency ten times higher.
    let steady: Vec<EventInput> = (0..200)
        .map(|i| {
            serde_json::from_value(serde_json::json!({
                "agent_id": "d", "kind": "tool_call", "outcome": "ok",
                "latency_ms": 100.0 + f64::from(i % 7) * 3.0
            }))
            .unwrap()
        })
        .collect();
    for chunk in steady.chunks(100) {
        m.record_events(&p, chunk.to_vec(), IngestDoor::Rest)
            .await
            .unwrap();
    }
    m.record_events(&p, events("d", 40, Outcome::Ok, 1_000.0), IngestDoor::Rest)
        .await
        .unwrap();
    m.live.flush_once(true).await.unwrap();
    let signals = m.store.drift_signals("t", Some("d"), 10).await.unwrap();
    assert!(
        signals
            .iter()
            .any(|s| s.metric == "latency" && s.direction == "up"),
        "{signals:?}"
    );
    let ts = m.trust_score(&p, "d").await.unwrap();
    assert!(ts.drift_signals.iter().any(|s| s.metric == "latency"));
    assert!(!ts.trend.points.is_empty());
}

/// One token inventing agent ids used to grow the server forever (~2.6 KB of live state and a
/// metrics series per id). Past the limit the least recently active agents are evicted, and an
/// evicted agent's score is rebuilt from the store, counting everything exactly once.
#[tokio::test]
async fn live_state_is_bounded_and_an_evicted_agent_rebuilds_its_score() {
    let dir = tempfile::tempdir().unwrap();
    let store = meshos_store::Store::connect(&meshos_store::sqlite_url_for_data_dir(dir.path()))
        .await
        .unwrap();
    let m = Mesh::builder(store, meshos_evidence::NoteSigner::generate("t").unwrap())
        .limits(crate::Limits {
            max_live_agents: 10,
            ..crate::Limits::default()
        })
        .agent_metrics(true)
        .build()
        .unwrap();
    let p = operator("t");
    m.record_events(&p, events("first", 20, Outcome::Ok, 20.0), IngestDoor::Rest)
        .await
        .unwrap();
    m.record_events(
        &p,
        events("first", 20, Outcome::Error, 20.0),
        IngestDoor::Rest,
    )
    .await
    .unwrap();
    let before = m.trust_score(&p, "first").await.unwrap();
    for i in 0..40 {
        m.record_events(
            &p,
            events(&format!("invented-{i}"), 1, Outcome::Ok, 20.0),
            IngestDoor::Rest,
        )
        .await
        .unwrap();
        assert!(
            m.live().agents_held() <= 10,
            "{} held",
            m.live().agents_held()
        );
    }
    let series = m.metrics().encode();
    let gauges = series
        .lines()
        .filter(|l| l.starts_with("meshos_trust_score{"))
        .count();
    assert!((1..=10).contains(&gauges), "{gauges} trust score series");
    let after = m.trust_score(&p, "first").await.unwrap();
    assert!(
        (after.score - before.score).abs() < 1.0,
        "rebuilt {} vs live {}",
        after.score,
        before.score
    );
}
