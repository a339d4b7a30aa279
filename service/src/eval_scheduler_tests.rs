//! The scheduler on one store: a due fire starts one run, runs of a schedule never overlap, a
//! run orphaned by a replica that died is closed as failed and its fire runs again.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use meshos_evidence::NoteSigner;
use meshos_types::{Principal, Role};

use super::*;
use crate::test_support::copy_tree;

async fn mesh(dir: &Path) -> Arc<Mesh> {
    copy_tree(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../evals/suites"),
        &dir.join("suites"),
        &[],
    );
    let store = meshos_store::Store::connect(&meshos_store::sqlite_url_for_data_dir(dir))
        .await
        .unwrap();
    Arc::new(
        Mesh::builder(store, NoteSigner::generate("meshos-test").unwrap())
            .evals_dir(dir.join("suites"))
            .build()
            .unwrap(),
    )
}

fn operator() -> Principal {
    Principal {
        token_id: "tok".into(),
        tenant: "acme".into(),
        role: Role::Operator,
        agent_id: None,
    }
}

async fn wait_released(m: &Mesh, id: &str) {
    // Up to 30 s: a run takes well under a second alone, but seconds on a loaded CI machine.
    for _ in 0..600 {
        let s = m.eval_schedules(&operator()).await.unwrap();
        if s.iter().any(|x| x.id == id && x.running_run_id.is_none()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the schedule's run never ended");
}

#[tokio::test]
async fn a_due_fire_runs_once_and_runs_never_overlap() {
    let dir = tempfile::tempdir().unwrap();
    let m = mesh(dir.path()).await;
    let err = m
        .add_eval_schedule(&operator(), "support-bot", "*/5 * * *", "UTC", "skip")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("seconds first"), "{err}");
    let s = m
        .add_eval_schedule(&operator(), "support-bot", "0 * * * * *", "UTC", "once")
        .await
        .unwrap();
    let in_flight = Arc::new(InFlight::default());
    assert!(
        tick(&m, &in_flight, s.created_at_ms).await.is_empty(),
        "nothing due yet"
    );
    let minute_later = s.created_at_ms + 61_000;
    let started = tick(&m, &in_flight, minute_later).await;
    assert_eq!(started.len(), 1);
    // The same tick again, or another replica's: the fire is taken and its run still going.
    assert!(tick(&m, &in_flight, minute_later).await.is_empty());
    wait_released(&m, &s.id).await;
    assert!(
        tick(&m, &in_flight, minute_later + 1_000).await.is_empty(),
        "that fire is done"
    );
    let runs = m
        .eval_runs(&operator(), Some("support-bot"), 10)
        .await
        .unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].record.trigger, format!("schedule:{}", s.id));
    assert_eq!(runs[0].record.status, "completed");
    // The next minute fires again.
    assert_eq!(tick(&m, &in_flight, minute_later + 60_000).await.len(), 1);
    wait_released(&m, &s.id).await;
    assert_eq!(m.eval_runs(&operator(), None, 10).await.unwrap().len(), 2);
}

#[tokio::test]
async fn a_run_orphaned_by_a_dead_replica_is_closed_and_its_fire_runs_again() {
    let dir = tempfile::tempdir().unwrap();
    let m = mesh(dir.path()).await;
    let s = m
        .add_eval_schedule(&operator(), "json-extraction", "0 * * * * *", "UTC", "skip")
        .await
        .unwrap();
    let fire = s.created_at_ms + 61_000;
    // Another replica claimed the fire, started its run and died.
    let dead = Arc::new(InFlight::default());
    let read = m
        .store
        .eval_schedules(Some("acme"))
        .await
        .unwrap()
        .remove(0);
    let orphan = meshos_types::EvalRunRecord {
        id: "evr_orphan".into(),
        tenant: "acme".into(),
        suite_id: "json-extraction".into(),
        suite_digest: "x".into(),
        dataset_digest: "y".into(),
        target: "recorded".into(),
        model: None,
        agent_id: "invoice-extractor".into(),
        trigger: format!("schedule:{}", s.id),
        status: "running".into(),
        items: 0,
        items_passed: 0,
        items_failed: 0,
        scores: serde_json::json!({}),
        input_tokens: 0,
        output_tokens: 0,
        cost_usd: 0.0,
        started_at_ms: fire,
        finished_at_ms: 0,
    };
    m.store.insert_eval_run(&orphan).await.unwrap();
    assert!(
        m.store
            .claim_eval_schedule_fire(&read, fire, Some("evr_orphan"))
            .await
            .unwrap()
    );
    drop(dead);
    // This replica takes over.
    let in_flight = Arc::new(InFlight::default());
    let started = tick(&m, &in_flight, fire + 2_000).await;
    assert_eq!(started.len(), 1, "the orphaned fire runs again");
    wait_released(&m, &s.id).await;
    let closed = m
        .store
        .eval_run("acme", "evr_orphan")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(closed.record.status, "failed");
    assert!(closed.is_finished());
    let runs = m.eval_runs(&operator(), None, 10).await.unwrap();
    let completed: Vec<_> = runs
        .iter()
        .filter(|r| r.record.status == "completed")
        .collect();
    assert_eq!(
        completed.len(),
        1,
        "one completed run for the fire, not two"
    );
}
