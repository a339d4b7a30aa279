//! Budgets under concurrency, end to end through the service: many agents of one team race
//! for the team's daily limit with `policy_check` estimates and then report what they spent.

use std::sync::Arc;

use meshos_evidence::NoteSigner;
use meshos_store::{Store, UsageKey, sqlite_url_for_data_dir, usage_periods};
use meshos_types::{Principal, Role, Verdict, now_ms};

use crate::bundle_source::PolicyBundle;
use crate::test_support::{copy_tree, shipped_bundle_dir};
use crate::{EventInput, IngestDoor, Mesh, PolicyCheckInput};

const AGENTS: usize = 64;
const TEAM_LIMIT_USD: f64 = 10.0;

/// The shipped bundle with `AGENTS` agents in team billing, whose daily limit is $10.
fn racing_bundle(dir: &std::path::Path) -> PolicyBundle {
    copy_tree(
        &shipped_bundle_dir(),
        dir,
        &["tests", meshos_policy::MANIFEST_FILE],
    );
    let mut org = std::fs::read_to_string(dir.join("org.toml")).unwrap();
    for i in 0..AGENTS {
        org.push_str(&format!("racer-{i} = \"billing\"\n"));
    }
    std::fs::write(dir.join("org.toml"), org).unwrap();
    let budgets = std::fs::read_to_string(dir.join("budgets.toml"))
        .unwrap()
        .replace(
            "[teams.billing]\ncost_usd_per_day = 40.0",
            &format!("[teams.billing]\ncost_usd_per_day = {TEAM_LIMIT_USD}"),
        );
    assert!(budgets.contains(&format!("cost_usd_per_day = {TEAM_LIMIT_USD}")));
    std::fs::write(dir.join("budgets.toml"), budgets).unwrap();
    PolicyBundle::from_dir(dir.to_path_buf()).unwrap()
}

fn agent(tenant: &str, id: &str) -> Principal {
    Principal {
        token_id: format!("tok-{id}"),
        tenant: tenant.into(),
        role: Role::Agent,
        agent_id: Some(id.into()),
    }
}

fn check(agent: &str, estimate_usd: f64) -> PolicyCheckInput {
    PolicyCheckInput {
        agent_id: agent.into(),
        action: "llm.call".into(),
        content: None,
        content_source: None,
        model: None,
        tool: None,
        region: None,
        estimated_tokens: None,
        estimated_cost_usd: Some(estimate_usd),
        arguments: None,
    }
}

fn spent(agent: &str, usd: f64, decision_id: Option<String>) -> EventInput {
    let mut ev: EventInput = serde_json::from_value(serde_json::json!({
        "agent_id": agent, "kind": "llm_call", "outcome": "ok", "cost_usd": usd
    }))
    .unwrap();
    ev.decision_id = decision_id;
    ev
}

async fn racing_mesh(dir: &std::path::Path) -> Arc<Mesh> {
    let store = Store::connect(&sqlite_url_for_data_dir(dir)).await.unwrap();
    Arc::new(
        Mesh::builder(store, NoteSigner::generate("meshos-test").unwrap())
            .bundle(racing_bundle(&dir.join("bundle")))
            .build()
            .unwrap(),
    )
}

async fn team_spend_usd(mesh: &Mesh, tenant: &str) -> f64 {
    let [day, _] = usage_periods(now_ms());
    let key = UsageKey {
        scope: "team".into(),
        scope_id: "billing".into(),
        period: day,
    };
    let counters = mesh.store.counters(tenant, &[key]).await.unwrap();
    counters[0].1.cost_micro_usd as f64 / 1e6
}

/// Every agent checks, and when allowed spends exactly its estimate, until refused.
async fn race(mesh: Arc<Mesh>, tenant: &str, estimate: f64, name_decisions: bool) -> usize {
    let mut racers = Vec::new();
    for i in 0..AGENTS {
        let mesh = mesh.clone();
        let id = format!("racer-{i}");
        let p = agent(tenant, &id);
        racers.push(tokio::spawn(async move {
            let mut allowed = 0;
            loop {
                let out = mesh.policy_check(&p, check(&id, estimate)).await.unwrap();
                if out.decision != Verdict::Allow {
                    assert!(
                        out.reasons.iter().any(|r| r.policy_id == "budget-exceeded"),
                        "{:?}",
                        out.reasons
                    );
                    return allowed;
                }
                allowed += 1;
                let named = name_decisions.then(|| out.decision_id.clone());
                mesh.record_events(&p, vec![spent(&id, estimate, named)], IngestDoor::Mcp)
                    .await
                    .unwrap();
            }
        }));
    }
    let mut allowed = 0;
    for r in racers {
        allowed += r.await.unwrap();
    }
    allowed
}

#[tokio::test]
async fn sixty_four_agents_racing_a_team_limit_never_pass_it() {
    let dir = tempfile::tempdir().unwrap();
    let mesh = racing_mesh(dir.path()).await;
    let allowed = race(mesh.clone(), "acme", 0.25, true).await;
    let spend = team_spend_usd(&mesh, "acme").await;
    assert!(spend <= TEAM_LIMIT_USD + 1e-9, "team spent ${spend}");
    // And the limit is used, not merely guarded: 40 checks of $0.25 fit in $10.
    assert_eq!(allowed, 40, "allowed {allowed} checks, spent ${spend}");
}

#[tokio::test]
async fn events_without_a_decision_id_settle_the_agents_oldest_reservation() {
    let dir = tempfile::tempdir().unwrap();
    let mesh = racing_mesh(dir.path()).await;
    let allowed = race(mesh.clone(), "acme", 0.5, false).await;
    let spend = team_spend_usd(&mesh, "acme").await;
    assert!(spend <= TEAM_LIMIT_USD + 1e-9, "team spent ${spend}");
    assert_eq!(allowed, 20);
}

#[tokio::test]
async fn a_refused_check_holds_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mesh = racing_mesh(dir.path()).await;
    let p = agent("acme", "racer-0");
    // An estimate over the whole limit is refused and reserves nothing, so the whole limit
    // is still there for the next check.
    let out = mesh
        .policy_check(&p, check("racer-0", TEAM_LIMIT_USD + 1.0))
        .await
        .unwrap();
    assert_eq!(out.decision, Verdict::Deny);
    let out = mesh
        .policy_check(&p, check("racer-0", TEAM_LIMIT_USD))
        .await
        .unwrap();
    assert_eq!(out.decision, Verdict::Allow, "{:?}", out.reasons);
}
