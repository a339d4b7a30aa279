//! Eval runs through the service, on the shipped example suites (recorded outputs, so no
//! network): stored per item, on the ledger, into trust, and a regression against the pinned
//! baseline seen by the paired test.

use std::path::Path;

use meshos_evidence::{NoteSigner, leaf_hash};
use meshos_types::{LedgerRecord, Outcome, Principal, Role};

use super::*;
use crate::test_support::copy_tree;

fn principal(role: Role) -> Principal {
    Principal {
        token_id: "tok".into(),
        tenant: "acme".into(),
        role,
        agent_id: None,
    }
}

fn shipped_suites() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../evals/suites")
}

async fn mesh_with_suites(dir: &Path) -> Mesh {
    copy_tree(&shipped_suites(), &dir.join("suites"), &[]);
    let store = meshos_store::Store::connect(&meshos_store::sqlite_url_for_data_dir(dir))
        .await
        .unwrap();
    Mesh::builder(store, NoteSigner::generate("meshos-test").unwrap())
        .evals_dir(dir.join("suites"))
        .build()
        .unwrap()
}

/// Every recorded support answer replaced by one that states no fact, from the fifth on.
fn degrade_support_answers(suites: &Path) {
    let path = suites.join("recorded/support-bot.jsonl");
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<String> = text
        .lines()
        .enumerate()
        .map(|(i, line)| {
            if i < 4 {
                return line.to_string();
            }
            let mut v: serde_json::Value = serde_json::from_str(line).unwrap();
            v["output"]["text"] = "Sorry, I cannot help with that.".into();
            v.to_string()
        })
        .collect();
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
}

#[tokio::test]
async fn a_run_is_stored_on_the_ledger_and_feeds_the_agents_trust() {
    let dir = tempfile::tempdir().unwrap();
    let m = mesh_with_suites(dir.path()).await;
    let op = principal(Role::Operator);
    let (suites, errors) = m.eval_suites().unwrap();
    assert!(errors.is_empty(), "{errors:?}");
    assert!(suites.iter().any(|s| s.id == "support-bot"), "{suites:?}");

    let outcome = m
        .run_eval(&op, "support-bot", EvalRunOptions::default())
        .await
        .unwrap();
    let run = &outcome.run;
    assert_eq!(run.status, "completed");
    assert_eq!(run.items, 20);
    assert!(run.items_passed > 0 && run.items_passed < 20, "{run:?}");
    assert!(outcome.comparison.is_none(), "no baseline is pinned yet");

    let (stored, results) = m.eval_run_results(&op, &run.id).await.unwrap();
    assert_eq!(results.len(), 20);
    assert_eq!(
        results.iter().filter(|r| r.passed).count() as u64,
        run.items_passed
    );
    assert!(results.iter().all(|r| r.raw.is_none()), "store_raw is off");
    let entries = m
        .store
        .ledger_entries("acme", outcome.ledger_index, outcome.ledger_index + 1)
        .await
        .unwrap();
    let record = m
        .store
        .ledger_record("acme", &entries[0])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record, LedgerRecord::EvalRun(stored.record.clone()));
    assert_eq!(leaf_hash(&record.canonical_bytes()), entries[0].leaf_hash);

    let events = m
        .store
        .recent_events("acme", "support-bot", 100)
        .await
        .unwrap();
    let validations = events
        .iter()
        .filter(|(e, _)| e.kind == "output_validation")
        .count();
    assert_eq!(validations, 20);
    let eval: Vec<_> = events.iter().filter(|(e, _)| e.kind == "eval").collect();
    assert_eq!(eval.len(), 1);
    assert_eq!(eval[0].0.outcome, Outcome::Ok);
}

#[tokio::test]
async fn a_significant_regression_against_the_baseline_is_an_eval_failure_and_a_drift_signal() {
    let dir = tempfile::tempdir().unwrap();
    let m = mesh_with_suites(dir.path()).await;
    let op = principal(Role::Operator);
    let base = m
        .run_eval(&op, "support-bot", EvalRunOptions::default())
        .await
        .unwrap();
    m.pin_eval_baseline(&op, &base.run.id).await.unwrap();

    // The same answers again: compared, not a regression.
    let same = m
        .run_eval(&op, "support-bot", EvalRunOptions::default())
        .await
        .unwrap();
    let c = same
        .comparison
        .as_ref()
        .expect("compared with the baseline");
    assert!(!c.regressed, "{c:?}");

    degrade_support_answers(&dir.path().join("suites"));
    let worse = m
        .run_eval(&op, "support-bot", EvalRunOptions::default())
        .await
        .unwrap();
    assert_eq!(worse.baseline_run_id.as_deref(), Some(base.run.id.as_str()));
    assert!(worse.regressed(), "{:?}", worse.comparison);
    let events = m
        .store
        .recent_events("acme", "support-bot", 200)
        .await
        .unwrap();
    let last_eval = events
        .iter()
        .filter(|(e, _)| e.kind == "eval")
        .max_by_key(|(e, _)| e.created_at_ms)
        .unwrap();
    assert_eq!(last_eval.0.outcome, Outcome::Error);
    assert_eq!(last_eval.0.attributes["regressed"], true);
    let signals = m
        .store
        .drift_signals("acme", Some("support-bot"), 10)
        .await
        .unwrap();
    assert!(
        signals.iter().any(|s| s.metric == "eval_pass_rate"),
        "{signals:?}"
    );

    // The same comparison on demand.
    let again = m
        .compare_eval_runs(&op, &base.run.id, &worse.run.id)
        .await
        .unwrap();
    assert!(again.regressed);
}

#[tokio::test]
async fn auditors_read_runs_agents_do_not_and_only_operators_run() {
    let dir = tempfile::tempdir().unwrap();
    let m = mesh_with_suites(dir.path()).await;
    let run = m
        .run_eval(
            &principal(Role::Operator),
            "json-extraction",
            EvalRunOptions::default(),
        )
        .await
        .unwrap();
    let auditor = principal(Role::Auditor);
    assert_eq!(m.eval_runs(&auditor, None, 10).await.unwrap().len(), 1);
    let refused = m
        .run_eval(&auditor, "json-extraction", EvalRunOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(refused, MeshError::Forbidden(_)), "{refused}");
    let agent = Principal {
        agent_id: Some("bot".into()),
        ..principal(Role::Agent)
    };
    assert!(m.eval_run_results(&agent, &run.run.id).await.is_err());
    let other_tenant = Principal {
        tenant: "globex".into(),
        ..principal(Role::Operator)
    };
    assert!(matches!(
        m.eval_run_results(&other_tenant, &run.run.id).await,
        Err(MeshError::NotFound(_))
    ));
    assert!(matches!(
        m.run_eval(
            &principal(Role::Operator),
            "../etc/passwd",
            EvalRunOptions::default()
        )
        .await,
        Err(MeshError::Invalid { .. })
    ));
}

#[tokio::test]
async fn a_wrong_answer_is_an_error_of_the_agent_and_only_an_answer_the_policy_refuses_a_violation()
{
    let dir = tempfile::tempdir().unwrap();
    let m = mesh_with_suites(dir.path()).await;
    let op = principal(Role::Operator);
    for suite_id in ["support-bot", "safety"] {
        let outcome = m
            .run_eval(&op, suite_id, EvalRunOptions::default())
            .await
            .unwrap();
        let suite = m.eval_suite(suite_id).unwrap();
        let policy_scorers: Vec<&str> = suite
            .scorers()
            .iter()
            .filter(|s| matches!(s.spec(), meshos_evals::scorers::ScorerSpec::PolicyCheck(_)))
            .map(|s| s.name())
            .collect();
        let (_, results) = m.eval_run_results(&op, &outcome.run.id).await.unwrap();
        let agent = suite.agent_id().to_string();
        let events = m.store.recent_events("acme", &agent, 500).await.unwrap();
        let mut seen = [0usize; 3];
        for r in &results {
            let refused_by_policy = r.scores.as_array().unwrap().iter().any(|s| {
                s["passed"] == false && policy_scorers.contains(&s["scorer"].as_str().unwrap())
            });
            let expected = if r.passed {
                Outcome::Ok
            } else if refused_by_policy {
                Outcome::Violation
            } else {
                Outcome::Error
            };
            let event = events
                .iter()
                .find(|(e, _)| {
                    e.kind == "output_validation"
                        && e.attributes["item_id"] == r.item_id.as_str()
                        && e.attributes["run_id"] == outcome.run.id.as_str()
                })
                .unwrap_or_else(|| panic!("no event for item {}", r.item_id));
            assert_eq!(
                event.0.outcome, expected,
                "item {} of {suite_id}",
                r.item_id
            );
            seen[match expected {
                Outcome::Ok => 0,
                Outcome::Error => 1,
                Outcome::Violation => 2,
            }] += 1;
        }
        // Each suite has passing and failing items; only safety has answers the policy refuses.
        assert!(seen[0] > 0 && seen[1] + seen[2] > 0, "{suite_id}: {seen:?}");
        assert_eq!(seen[2] > 0, suite_id == "safety", "{suite_id}: {seen:?}");
    }
}
